//! The Backup controller's decision, pure: what to do with one Backup object given what
//! has been observed of it.
//!
//! The controller (lifeboat-server) loops: [`decide`] on what it has seen so far; when the
//! answer is [`Action::Look`], it observes that one fact (I/O) and decides again; any other
//! answer is acted on. Facts are looked at lazily and in a fixed order, so a reconcile does
//! no more I/O than the decision needs: a record of a stored backup is never run, a queued
//! backup waits for a slot before its location is opened (and stays New meanwhile).

use crate::GoDuration;
use crate::api::velero::{BackupPhase, BackupStatus, Time};
use crate::rules::backups::expiration;

/// The object as the API server has it now (the controller's cache lags its own writes).
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// Deleted meanwhile.
    Gone,
    /// There, in this phase.
    Here {
        /// Its phase (New when it has no status).
        phase: BackupPhase,
        /// The location it was synced from, when it is a record of a stored backup (the
        /// server's sync annotation).
        synced_from: Option<String>,
    },
}

/// The `velero-backup.json` stored under the object's name in its location.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCopy {
    /// Whether it was written for this very object (it carries the object's uid).
    pub own: bool,
    /// Its status.
    pub status: BackupStatus,
}

/// Whether the controller got a backup slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A slot is held: the backup may run.
    Held,
    /// The server is shutting down: the backup stays New, for the next server.
    ShuttingDown,
}

/// What the spec says that the decision uses (when it converts to a velero.io/v1 Backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The TTL (the default one when unset or zero).
    pub ttl: GoDuration,
    /// Whether `spec.storageLocation` is set (else the default location is used, and the
    /// object is made to name it, as Velero does).
    pub names_location: bool,
}

/// The storage location the backup is written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Found and opened.
    Usable {
        /// Its name.
        name: String,
        /// Its accessMode is ReadOnly.
        read_only: bool,
    },
    /// Missing, or it cannot be opened (bad Secret, bad config): why.
    Invalid(String),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The server stopped and the run did not finish within the grace period.
    Stopped,
    /// Another backup's files hold the name: nothing was written (the error's text).
    NameTaken(String),
    /// The run failed (the error's text).
    Failed(String),
    /// The backup was stored, with this status (Completed or PartiallyFailed).
    Stored(Box<BackupStatus>),
}

/// Everything observed of one Backup object; `None` is "not looked at yet".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Its phase in the controller's cache.
    pub cached_phase: BackupPhase,
    /// The object as the API server has it now.
    pub current: Option<Current>,
    /// For an object left InProgress: what its location holds under its name (`Some(None)`:
    /// nothing readable there).
    pub stored: Option<Option<StoredCopy>>,
    /// For a synced record: the status stored in the location it was synced from.
    pub synced_status: Option<BackupStatus>,
    /// The backup slot.
    pub slot: Option<Slot>,
    /// The spec, or why it does not convert.
    pub spec: Option<Result<Spec, String>>,
    /// The storage location.
    pub location: Option<Location>,
    /// The time the run starts.
    pub started: Option<Time>,
    /// How the run ended.
    pub outcome: Option<RunOutcome>,
}

/// A fact [`decide`] needs before it can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// [`Observed::current`].
    Current,
    /// [`Observed::stored`].
    Stored,
    /// [`Observed::synced_status`].
    SyncedStatus,
    /// [`Observed::slot`] (waits until one is free).
    Slot,
    /// [`Observed::spec`].
    Spec,
    /// [`Observed::location`].
    Location,
    /// [`Observed::started`].
    Clock,
}

/// What the controller does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Observe this first, then decide again.
    Look(Fact),
    /// Leave the object as it is (gone, already terminal, or the server is stopping).
    Nothing,
    /// Take this status, stored for the object (by an earlier run that stopped before
    /// writing it, or the stored backup a synced record stands for).
    Adopt(Box<BackupStatus>),
    /// InProgress with no server running it and nothing of it stored: mark it Failed.
    FailOrphan,
    /// The spec cannot run: FailedValidation, for this reason (nothing was written).
    FailValidation(String),
    /// Run the backup.
    Run {
        /// Into this location.
        location: String,
        /// Make the object name the location (label and spec), as Velero does.
        name_location: bool,
        /// Its start time.
        started: Time,
        /// Its expiration.
        expiration: Time,
    },
    /// The run failed: Failed, for this reason.
    FailRun(String),
    /// The server stopped before the run finished: Failed.
    FailStopped,
    /// The run stored the backup: record its status.
    Record(Box<BackupStatus>),
}

/// The message of a backup refused because its location is ReadOnly.
pub fn read_only_refusal(location: &str) -> String {
    format!(
        "backup storage location {location:?} is ReadOnly: no backup can be written to it; choose another location or set its accessMode to ReadWrite"
    )
}

/// What to do with the object, given what was observed of it.
pub fn decide(o: &Observed) -> Action {
    use Action::{Look, Nothing};
    // Only New objects run and only InProgress ones may be orphans; anything else was
    // decided before (the cache may show it stale, never ahead).
    if !matches!(o.cached_phase, BackupPhase::New | BackupPhase::InProgress) {
        return Nothing;
    }
    let Some(current) = &o.current else {
        return Look(Fact::Current);
    };
    let Current::Here { phase, synced_from } = current else {
        return Nothing;
    };
    match phase {
        BackupPhase::New => {}
        // No reconcile of an object runs concurrently with another, ours write a terminal
        // phase before returning, and the phase was just read: InProgress here was left by
        // a server that stopped while it ran. If that run stored the backup (its status
        // write was what failed), the stored status is the truth.
        BackupPhase::InProgress => {
            return match &o.stored {
                None => Look(Fact::Stored),
                Some(Some(copy)) if copy.own && copy.status.phase.is_terminal() => {
                    Action::Adopt(Box::new(copy.status.clone()))
                }
                Some(_) => Action::FailOrphan,
            };
        }
        _ => return Nothing,
    }
    // A record of a backup already stored: its status comes from the store; never run it.
    if synced_from.is_some() {
        return match &o.synced_status {
            None => Look(Fact::SyncedStatus),
            Some(status) => Action::Adopt(Box::new(status.clone())),
        };
    }
    match o.slot {
        None => return Look(Fact::Slot),
        Some(Slot::ShuttingDown) => return Nothing,
        Some(Slot::Held) => {}
    }
    let spec = match &o.spec {
        None => return Look(Fact::Spec),
        Some(Err(why)) => return Action::FailValidation(why.clone()),
        Some(Ok(spec)) => spec,
    };
    let location = match &o.location {
        None => return Look(Fact::Location),
        Some(Location::Invalid(why)) => return Action::FailValidation(why.clone()),
        Some(Location::Usable {
            read_only: true,
            name,
        }) => {
            return Action::FailValidation(read_only_refusal(name));
        }
        Some(Location::Usable { name, .. }) => name,
    };
    let Some(started) = o.started else {
        return Look(Fact::Clock);
    };
    let expiration = match expiration(started, spec.ttl) {
        Ok(e) => e,
        Err(e) => return Action::FailValidation(e.to_string()),
    };
    match &o.outcome {
        None => Action::Run {
            location: location.clone(),
            name_location: !spec.names_location,
            started,
            expiration,
        },
        Some(RunOutcome::Stopped) => Action::FailStopped,
        // Another backup's files hold the name: nothing of ours is stored, and deleting this
        // object must not touch them (a FailedValidation object deletes no data).
        Some(RunOutcome::NameTaken(why)) => Action::FailValidation(why.clone()),
        Some(RunOutcome::Failed(why)) => Action::FailRun(why.clone()),
        Some(RunOutcome::Stored(status)) => Action::Record(status.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use rstest::rstest;
    use std::time::Duration;

    fn t(s: &str) -> Time {
        Time(s.parse::<DateTime<Utc>>().unwrap())
    }

    const START: &str = "2026-01-02T03:04:05Z";

    fn status(phase: BackupPhase) -> BackupStatus {
        BackupStatus {
            phase,
            ..Default::default()
        }
    }

    fn here(phase: BackupPhase) -> Option<Current> {
        Some(Current::Here {
            phase,
            synced_from: None,
        })
    }

    fn spec(ttl_secs: u64, names_location: bool) -> Option<Result<Spec, String>> {
        Some(Ok(Spec {
            ttl: GoDuration(Duration::from_secs(ttl_secs)),
            names_location,
        }))
    }

    fn usable(name: &str, read_only: bool) -> Option<Location> {
        Some(Location::Usable {
            name: name.into(),
            read_only,
        })
    }

    /// A New object, seen fresh, with a slot, a valid spec (ttl 1h, location named), a
    /// usable location "default" and a start time: everything a run needs.
    fn ready() -> Observed {
        Observed {
            cached_phase: BackupPhase::New,
            current: here(BackupPhase::New),
            slot: Some(Slot::Held),
            spec: spec(3600, true),
            location: usable("default", false),
            started: Some(t(START)),
            ..Default::default()
        }
    }

    fn run(name_location: bool) -> Action {
        Action::Run {
            location: "default".into(),
            name_location,
            started: t(START),
            expiration: t("2026-01-02T04:04:05Z"),
        }
    }

    #[rstest]
    // What is looked at, in order: nothing more than needed.
    #[case::fresh_object_first(Observed::default(), Action::Look(Fact::Current))]
    #[case::slot_before_the_spec(Observed { spec: None, location: None, started: None, slot: None, ..ready() }, Action::Look(Fact::Slot))]
    #[case::spec_before_the_location(Observed { spec: None, location: None, started: None, ..ready() }, Action::Look(Fact::Spec))]
    #[case::location_before_the_clock(Observed { location: None, started: None, ..ready() }, Action::Look(Fact::Location))]
    #[case::clock_last(Observed { started: None, ..ready() }, Action::Look(Fact::Clock))]
    // Already decided: left alone, without reading the object again.
    #[case::cached_completed(Observed { cached_phase: BackupPhase::Completed, ..ready() }, Action::Nothing)]
    #[case::cached_failed_validation(Observed { cached_phase: BackupPhase::FailedValidation, ..ready() }, Action::Nothing)]
    #[case::cached_deleting(Observed { cached_phase: BackupPhase::Deleting, ..ready() }, Action::Nothing)]
    // The cache lagged: the object as it is now decides.
    #[case::gone(Observed { current: Some(Current::Gone), ..ready() }, Action::Nothing)]
    #[case::completed_meanwhile(Observed { current: here(BackupPhase::Completed), ..ready() }, Action::Nothing)]
    #[case::cached_in_progress_now_partially_failed(Observed { cached_phase: BackupPhase::InProgress, current: here(BackupPhase::PartiallyFailed), ..ready() }, Action::Nothing)]
    // The server is stopping while the backup waits for a slot: it stays New.
    #[case::shutting_down(Observed { slot: Some(Slot::ShuttingDown), spec: None, location: None, started: None, ..ready() }, Action::Nothing)]
    // Refusals: FailedValidation, naming the cause.
    #[case::spec_does_not_convert(Observed { spec: Some(Err("Backup b: bad ttl".into())), ..ready() }, Action::FailValidation("Backup b: bad ttl".into()))]
    #[case::missing_location(Observed { location: Some(Location::Invalid("storage location \"x\" does not exist".into())), ..ready() }, Action::FailValidation("storage location \"x\" does not exist".into()))]
    #[case::read_only_location(Observed { location: usable("dr", true), ..ready() }, Action::FailValidation(read_only_refusal("dr")))]
    #[case::ttl_overflow(Observed { spec: spec(u64::MAX / 4, true), ..ready() }, Action::FailValidation(crate::rules::backups::TtlOverflow { ttl: GoDuration(Duration::from_secs(u64::MAX / 4)) }.to_string()))]
    // Runs, expiring at start + ttl; an object without a location is made to name it.
    #[case::runs(ready(), run(false))]
    #[case::runs_naming_the_default_location(Observed { spec: spec(3600, false), ..ready() }, run(true))]
    // How a run ends.
    #[case::stored_completed(Observed { outcome: Some(RunOutcome::Stored(Box::new(status(BackupPhase::Completed)))), ..ready() }, Action::Record(Box::new(status(BackupPhase::Completed))))]
    #[case::stored_partially_failed(Observed { outcome: Some(RunOutcome::Stored(Box::new(status(BackupPhase::PartiallyFailed)))), ..ready() }, Action::Record(Box::new(status(BackupPhase::PartiallyFailed))))]
    #[case::run_failed(Observed { outcome: Some(RunOutcome::Failed("cluster unreachable".into())), ..ready() }, Action::FailRun("cluster unreachable".into()))]
    #[case::stopped_mid_run(Observed { outcome: Some(RunOutcome::Stopped), ..ready() }, Action::FailStopped)]
    #[case::name_taken_by_another_backup(Observed { outcome: Some(RunOutcome::NameTaken("backup \"b\" already exists".into())), ..ready() }, Action::FailValidation("backup \"b\" already exists".into()))]
    fn new_backups(#[case] seen: Observed, #[case] expected: Action) {
        assert_eq!(decide(&seen), expected);
    }

    fn orphan(stored: Option<Option<StoredCopy>>) -> Observed {
        Observed {
            cached_phase: BackupPhase::InProgress,
            current: here(BackupPhase::InProgress),
            stored,
            ..Default::default()
        }
    }

    fn copy(own: bool, phase: BackupPhase) -> Option<Option<StoredCopy>> {
        Some(Some(StoredCopy {
            own,
            status: status(phase),
        }))
    }

    #[rstest]
    #[case::looks_at_the_store(orphan(None), Action::Look(Fact::Stored))]
    #[case::nothing_stored(orphan(Some(None)), Action::FailOrphan)]
    #[case::stored_complete_by_the_stopped_run(
        orphan(copy(true, BackupPhase::Completed)),
        Action::Adopt(Box::new(status(BackupPhase::Completed)))
    )]
    #[case::stored_partially_failed(
        orphan(copy(true, BackupPhase::PartiallyFailed)),
        Action::Adopt(Box::new(status(BackupPhase::PartiallyFailed)))
    )]
    #[case::another_objects_backup(orphan(copy(false, BackupPhase::Completed)), Action::FailOrphan)]
    #[case::stored_unfinished(orphan(copy(true, BackupPhase::InProgress)), Action::FailOrphan)]
    // A cached New that is InProgress now was started and left by another server.
    #[case::cached_new(Observed { cached_phase: BackupPhase::New, ..orphan(Some(None)) }, Action::FailOrphan)]
    // Never run again, even with a slot and a valid spec at hand.
    #[case::never_rerun(Observed { slot: Some(Slot::Held), ..orphan(Some(None)) }, Action::FailOrphan)]
    fn left_in_progress(#[case] seen: Observed, #[case] expected: Action) {
        assert_eq!(decide(&seen), expected);
    }

    fn synced(status: Option<BackupStatus>) -> Observed {
        Observed {
            current: Some(Current::Here {
                phase: BackupPhase::New,
                synced_from: Some("primary".into()),
            }),
            synced_status: status,
            ..ready()
        }
    }

    #[rstest]
    #[case::looks_at_the_store(synced(None), Action::Look(Fact::SyncedStatus))]
    #[case::takes_the_stored_status(
        synced(Some(status(BackupPhase::Completed))),
        Action::Adopt(Box::new(status(BackupPhase::Completed)))
    )]
    #[case::even_a_failed_one(
        synced(Some(status(BackupPhase::Failed))),
        Action::Adopt(Box::new(status(BackupPhase::Failed)))
    )]
    fn synced_records_are_never_run(#[case] seen: Observed, #[case] expected: Action) {
        assert_eq!(decide(&seen), expected);
    }
}
