//! Whose stored data is whose (issue 11, item 1: a cluster deletes only what it wrote).
//!
//! A Backup object is either **own** — created here, run (or to be run) by this cluster's
//! server — or a **record**: made by location sync from a `velero-backup.json` found in a
//! bucket (annotated with the location and the stored backup's uid). Several clusters may
//! share one bucket (a standby reading the primary's); a record stands for data another
//! cluster wrote and expires on the writer's TTL, so:
//!
//! - deleting an own object deletes its stored data — only when the stored
//!   `velero-backup.json` carries its uid (or nothing but its own partial upload is there);
//! - deleting a record (`kubectl delete`, TTL garbage collection) removes the record only;
//!   the data stays. Its data goes only when the deletion was explicitly requested (a
//!   DeleteBackupRequest: `velero backup delete`) or the location says this cluster owns
//!   what is synced from it (the annotation [`OWNS_SYNCED_DATA`] on the
//!   BackupStorageLocation, for a cluster re-installed over its own bucket) — and then
//!   only when the record's uid is the stored backup's: a backup re-created under the same
//!   name (another uid) is never deleted through an old record;
//! - sync keeps records true to the bucket: a record whose data disappeared is pruned, a
//!   record of an older backup of the same name is replaced.
//!
//! Why an explicit request and a per-location opt-in, and nothing else: losing a record
//! costs nothing (sync brings it back while its data is there), losing the primary's data
//! costs the disaster recovery it was kept for. An opt-in per location (not a server flag)
//! because ownership is a property of a bucket, and an annotation (not a spec field) so
//! that the velero.io/v1 spec stays Velero's.

use crate::api::velero::{BackupPhase, Time};

/// The annotation on a BackupStorageLocation by which this cluster takes ownership of the
/// backups synced from it: their records then expire and delete like own backups (as
/// Velero does for every backup). Only the value `"true"` opts in.
pub const OWNS_SYNCED_DATA: &str = "lifeboat.dev/owns-synced-data";

/// On a record: the uid of the stored backup it was synced from (absent when that backup
/// carries none, as the CLI's do).
pub const SYNCED_UID: &str = "lifeboat.dev/synced-uid";

/// On a Backup object: its deletion was explicitly requested (the value names the
/// DeleteBackupRequest), so a record may delete its data (see [`on_delete`]).
pub const DELETE_REQUESTED: &str = "lifeboat.dev/delete-requested";

/// Whether a location's annotations opt in to owning its synced data.
pub fn owns_synced_data<'a>(mut annotations: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    annotations.any(|(k, v)| k == OWNS_SYNCED_DATA && v == "true")
}

/// What a Backup object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// Created here; its uid, and its phase.
    Own {
        /// Its uid.
        uid: Option<String>,
        /// Its phase.
        phase: BackupPhase,
    },
    /// A record made by sync, carrying the stored uid it was synced from (none for a
    /// stored backup without a uid, or a record made before records carried it).
    Record {
        /// The synced uid.
        uid: Option<String>,
    },
}

/// What the location holds under the object's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// No `velero-backup.json` (nothing, or a partial upload).
    Nothing,
    /// A stored backup, with the uid it carries.
    Backup {
        /// Its `metadata.uid`.
        uid: Option<String>,
    },
}

/// Everything [`on_delete`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The object being deleted.
    pub object: Object,
    /// What is stored under its name.
    pub stored: Stored,
    /// Its location opts in to owning synced data ([`OWNS_SYNCED_DATA`]).
    pub owns_synced: bool,
    /// The deletion was explicitly requested ([`DELETE_REQUESTED`]).
    pub requested: bool,
}

/// Why stored data is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// The object never ran: it wrote nothing.
    NeverRan,
    /// The stored backup was written for another object (this uid).
    AnotherBackup(Option<String>),
    /// A record: the data is the writer's (no explicit request, no opt-in).
    NotOwned,
    /// A record whose uid is not the stored backup's (re-created under the same name), or
    /// which cannot say (no uid on either side).
    NotTheSameBackup {
        /// The record's uid.
        record: Option<String>,
        /// The stored backup's uid.
        stored: Option<String>,
    },
}

/// What deleting the object does to the stored data of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delete it (the finalizer holds the object until it is gone).
    Delete,
    /// Nothing is stored under the name: nothing to do.
    NothingStored,
    /// Keep it, for this reason.
    Keep(Kept),
}

/// What deleting a Backup object does to the stored data of its name.
pub fn on_delete(d: &Deletion) -> Verdict {
    match (&d.object, &d.stored) {
        (
            Object::Own {
                phase: BackupPhase::New | BackupPhase::FailedValidation,
                ..
            },
            _,
        ) => Verdict::Keep(Kept::NeverRan),
        (Object::Own { uid, .. }, Stored::Backup { uid: stored }) => {
            if uid.is_some() && uid == stored {
                Verdict::Delete
            } else {
                Verdict::Keep(Kept::AnotherBackup(stored.clone()))
            }
        }
        // A stored backup is Completed or PartiallyFailed once its velero-backup.json is
        // written; without one, what is there can only be the partial upload of this
        // object's own run.
        (
            Object::Own {
                phase: BackupPhase::Completed | BackupPhase::PartiallyFailed,
                ..
            },
            Stored::Nothing,
        ) => Verdict::NothingStored,
        (Object::Own { .. }, Stored::Nothing) => Verdict::Delete,
        // A record never ran: it has no partial upload; its data has gone already.
        (Object::Record { .. }, Stored::Nothing) => Verdict::NothingStored,
        (Object::Record { uid }, Stored::Backup { uid: stored }) => {
            if uid.is_none() || uid != stored {
                Verdict::Keep(Kept::NotTheSameBackup {
                    record: uid.clone(),
                    stored: stored.clone(),
                })
            } else if d.requested || d.owns_synced {
                Verdict::Delete
            } else {
                Verdict::Keep(Kept::NotOwned)
            }
        }
    }
}

/// A stored backup as sync sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// Its `metadata.uid`.
    pub uid: Option<String>,
    /// Its phase.
    pub phase: BackupPhase,
    /// Its `status.expiration`.
    pub expiration: Option<Time>,
}

/// The Backup object of a stored backup's name, as sync sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Here {
    /// No object of that name.
    Nothing,
    /// An object that is not a record of this location (an own backup, or another
    /// location's record): sync leaves it alone.
    Other,
    /// A record of this location, with its synced uid.
    Record {
        /// Its [`SYNCED_UID`].
        uid: Option<String>,
    },
}

/// What sync does for one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStep {
    /// Create a record of the stored backup.
    Create,
    /// Leave things as they are.
    Leave,
    /// Delete the record: its data disappeared from the location.
    Prune,
    /// Delete the record: it stands for an older backup of the same name (a later sync
    /// makes the new one's record once the old one is gone).
    Replace,
}

/// What sync does for a name, given the object here and the backup stored under it
/// (`None`: nothing is stored, or it is not listed any more).
pub fn sync_step(
    here: &Here,
    stored: Option<&StoredBackup>,
    owns_synced: bool,
    now: Time,
) -> SyncStep {
    match (here, stored) {
        (Here::Other, _) => SyncStep::Leave,
        (Here::Record { .. }, None) => SyncStep::Prune,
        (Here::Record { uid }, Some(s)) if *uid != s.uid => SyncStep::Replace,
        (Here::Record { .. }, Some(_)) => SyncStep::Leave,
        (Here::Nothing, None) => SyncStep::Leave,
        (Here::Nothing, Some(s)) => {
            if !s.phase.is_terminal() {
                return SyncStep::Leave;
            }
            // An expired record would be collected at once (the record only, its data
            // being the writer's), then made again by the next sync, and so on. A location
            // whose data this cluster owns makes it: its collection deletes the data.
            let expired = s.expiration.is_some_and(|e| e.0 <= now.0);
            if expired && !owns_synced {
                SyncStep::Leave
            } else {
                SyncStep::Create
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use rstest::rstest;

    fn own(uid: Option<&str>, phase: BackupPhase) -> Object {
        Object::Own {
            uid: uid.map(str::to_string),
            phase,
        }
    }

    fn record(uid: Option<&str>) -> Object {
        Object::Record {
            uid: uid.map(str::to_string),
        }
    }

    fn stored(uid: Option<&str>) -> Stored {
        Stored::Backup {
            uid: uid.map(str::to_string),
        }
    }

    fn del(object: Object, stored: Stored, owns_synced: bool, requested: bool) -> Deletion {
        Deletion {
            object,
            stored,
            owns_synced,
            requested,
        }
    }

    fn not_same(record: Option<&str>, stored: Option<&str>) -> Verdict {
        Verdict::Keep(Kept::NotTheSameBackup {
            record: record.map(str::to_string),
            stored: stored.map(str::to_string),
        })
    }

    use BackupPhase::{Completed, Failed, FailedValidation, InProgress, New, PartiallyFailed};

    #[rstest]
    // Own objects: their own data goes, another backup's stays.
    #[case::own_backup(
        del(own(Some("u1"), Completed), stored(Some("u1")), false, false),
        Verdict::Delete
    )]
    #[case::own_partially_failed(
        del(own(Some("u1"), PartiallyFailed), stored(Some("u1")), false, false),
        Verdict::Delete
    )]
    #[case::another_objects_backup(del(own(Some("u1"), Completed), stored(Some("u2")), false, false), Verdict::Keep(Kept::AnotherBackup(Some("u2".into()))))]
    #[case::a_cli_backup_of_the_same_name(
        del(own(Some("u1"), Failed), stored(None), false, false),
        Verdict::Keep(Kept::AnotherBackup(None))
    )]
    #[case::explicit_request_changes_nothing_for_another_backup(del(own(Some("u1"), Completed), stored(Some("u2")), true, true), Verdict::Keep(Kept::AnotherBackup(Some("u2".into()))))]
    #[case::own_failed_run_leftovers(
        del(own(Some("u1"), Failed), Stored::Nothing, false, false),
        Verdict::Delete
    )]
    #[case::own_in_progress_leftovers(
        del(own(Some("u1"), InProgress), Stored::Nothing, false, false),
        Verdict::Delete
    )]
    #[case::own_completed_data_gone(
        del(own(Some("u1"), Completed), Stored::Nothing, false, false),
        Verdict::NothingStored
    )]
    #[case::never_ran(
        del(own(Some("u1"), New), stored(Some("u2")), false, false),
        Verdict::Keep(Kept::NeverRan)
    )]
    #[case::refused(
        del(own(Some("u1"), FailedValidation), Stored::Nothing, false, false),
        Verdict::Keep(Kept::NeverRan)
    )]
    // Records (the defect: a standby's GC or kubectl delete deleted the primary's data).
    #[case::record_gc_or_kubectl_delete_keeps_the_data(
        del(record(Some("u1")), stored(Some("u1")), false, false),
        Verdict::Keep(Kept::NotOwned)
    )]
    #[case::record_explicit_request(
        del(record(Some("u1")), stored(Some("u1")), false, true),
        Verdict::Delete
    )]
    #[case::record_in_an_owned_location(
        del(record(Some("u1")), stored(Some("u1")), true, false),
        Verdict::Delete
    )]
    #[case::record_of_an_older_backup_of_the_name(
        del(record(Some("u1")), stored(Some("u2")), true, true),
        not_same(Some("u1"), Some("u2"))
    )]
    #[case::record_without_uid(
        del(record(None), stored(Some("u2")), true, true),
        not_same(None, Some("u2"))
    )]
    #[case::record_of_a_backup_without_uid(
        del(record(None), stored(None), true, true),
        not_same(None, None)
    )]
    #[case::record_stored_uid_dropped(
        del(record(Some("u1")), stored(None), true, true),
        not_same(Some("u1"), None)
    )]
    #[case::record_whose_data_is_gone(
        del(record(Some("u1")), Stored::Nothing, true, true),
        Verdict::NothingStored
    )]
    #[case::failed_record_has_no_leftovers(
        del(record(Some("u1")), Stored::Nothing, false, false),
        Verdict::NothingStored
    )]
    fn what_deleting_an_object_does_to_stored_data(#[case] d: Deletion, #[case] expected: Verdict) {
        assert_eq!(on_delete(&d), expected);
    }

    fn t(s: &str) -> Time {
        Time(s.parse::<DateTime<Utc>>().unwrap())
    }

    const NOW: &str = "2026-01-02T03:04:05Z";

    fn backup(uid: Option<&str>, phase: BackupPhase, expiration: &str) -> Option<StoredBackup> {
        Some(StoredBackup {
            uid: uid.map(str::to_string),
            phase,
            expiration: Some(t(expiration)),
        })
    }

    fn rec(uid: Option<&str>) -> Here {
        Here::Record {
            uid: uid.map(str::to_string),
        }
    }

    const LATER: &str = "2026-01-03T00:00:00Z";
    const EARLIER: &str = "2026-01-01T00:00:00Z";

    #[rstest]
    #[case::new_stored_backup(
        Here::Nothing,
        backup(Some("u1"), Completed, LATER),
        false,
        SyncStep::Create
    )]
    #[case::partially_failed(
        Here::Nothing,
        backup(Some("u1"), PartiallyFailed, LATER),
        false,
        SyncStep::Create
    )]
    #[case::without_expiration(Here::Nothing, Some(StoredBackup { uid: None, phase: Completed, expiration: None }), false, SyncStep::Create)]
    #[case::unfinished(
        Here::Nothing,
        backup(Some("u1"), InProgress, LATER),
        false,
        SyncStep::Leave
    )]
    #[case::expired_not_owned(
        Here::Nothing,
        backup(Some("u1"), Completed, EARLIER),
        false,
        SyncStep::Leave
    )]
    #[case::expiring_now_not_owned(
        Here::Nothing,
        backup(Some("u1"), Completed, NOW),
        false,
        SyncStep::Leave
    )]
    #[case::expired_owned(
        Here::Nothing,
        backup(Some("u1"), Completed, EARLIER),
        true,
        SyncStep::Create
    )]
    #[case::own_object_of_the_name(
        Here::Other,
        backup(Some("u1"), Completed, LATER),
        false,
        SyncStep::Leave
    )]
    #[case::own_object_whose_data_is_gone(Here::Other, None, false, SyncStep::Leave)]
    #[case::record_up_to_date(
        rec(Some("u1")),
        backup(Some("u1"), Completed, LATER),
        false,
        SyncStep::Leave
    )]
    #[case::record_up_to_date_expired(
        rec(Some("u1")),
        backup(Some("u1"), Completed, EARLIER),
        false,
        SyncStep::Leave
    )]
    #[case::record_of_a_backup_without_uid(
        rec(None),
        backup(None, Completed, LATER),
        false,
        SyncStep::Leave
    )]
    #[case::record_whose_data_disappeared(rec(Some("u1")), None, false, SyncStep::Prune)]
    #[case::record_of_an_older_backup(
        rec(Some("u1")),
        backup(Some("u2"), Completed, LATER),
        false,
        SyncStep::Replace
    )]
    #[case::record_made_before_records_carried_the_uid(
        rec(None),
        backup(Some("u2"), Completed, LATER),
        false,
        SyncStep::Replace
    )]
    #[case::nothing_at_all(Here::Nothing, None, false, SyncStep::Leave)]
    fn what_sync_does_for_a_name(
        #[case] here: Here,
        #[case] stored: Option<StoredBackup>,
        #[case] owns: bool,
        #[case] expected: SyncStep,
    ) {
        assert_eq!(sync_step(&here, stored.as_ref(), owns, t(NOW)), expected);
    }

    #[rstest]
    #[case::opted_in(&[(OWNS_SYNCED_DATA, "true")], true)]
    #[case::other_value(&[(OWNS_SYNCED_DATA, "yes")], false)]
    #[case::false_value(&[(OWNS_SYNCED_DATA, "false")], false)]
    #[case::no_annotation(&[("team", "dr")], false)]
    fn location_opt_in(#[case] annotations: &[(&str, &str)], #[case] expected: bool) {
        assert_eq!(
            owns_synced_data(annotations.iter().map(|(k, v)| (*k, *v))),
            expected
        );
    }
}
