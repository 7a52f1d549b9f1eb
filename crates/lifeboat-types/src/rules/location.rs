//! When the server validates and syncs a storage location (Velero's rules, as data):
//!
//! - `spec.validationFrequency` says how often the location is validated; unset means the
//!   server's `--store-validation-frequency`; `0s` turns validation off (the phase is
//!   left as it is).
//! - `spec.backupSyncPeriod` says how often backups found in it are synced into Backup
//!   objects; unset means the server's `--backup-sync-period`; `0s` turns sync off.
//! - The clocks are the location's own `status.lastValidationTime` and
//!   `status.lastSyncedTime`, so a restarted or new leader keeps the rhythm instead of
//!   starting over. A location never validated (or synced) is due at once.
//!
//! And which location is used when none is named ([`default_index`]): the first marked
//! `spec.default`, else the one named `default` (the CLI then falls back to its embedded
//! local directory; the server refuses).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::velero::{BackupStorageLocationSpec, BackupStorageLocationStatus, Time};

/// What is due for one location now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Validate it (and set Available/Unavailable).
    pub validate: bool,
    /// Sync its backups into Backup objects.
    pub sync: bool,
}

/// The index of the location used when none is named, from `(name, spec.default)`
/// pairs: the first marked default, else the first named `default`.
pub fn default_index<'a>(locations: impl IntoIterator<Item = (&'a str, bool)>) -> Option<usize> {
    let mut named_default = None;
    for (i, (name, marked)) in locations.into_iter().enumerate() {
        if marked {
            return Some(i);
        }
        if name == "default" && named_default.is_none() {
            named_default = Some(i);
        }
    }
    named_default
}

fn is_due(last: Option<&Time>, every: Duration, now: DateTime<Utc>) -> bool {
    if every.is_zero() {
        return false;
    }
    match last {
        None => true,
        Some(t) => {
            now.signed_duration_since(t.0)
                .to_std()
                .is_ok_and(|since| since >= every)
                || t.0 > now
        }
    }
}

/// What is due for a location with `spec` and `status` at `now`, given the server's
/// defaults.
pub fn due(
    spec: &BackupStorageLocationSpec,
    status: Option<&BackupStorageLocationStatus>,
    now: DateTime<Utc>,
    default_validation: Duration,
    default_sync: Duration,
) -> Due {
    let validation = spec
        .validation_frequency
        .map_or(default_validation, |d| d.0);
    let sync = spec.backup_sync_period.map_or(default_sync, |d| d.0);
    Due {
        validate: is_due(
            status.and_then(|s| s.last_validation_time.as_ref()),
            validation,
            now,
        ),
        sync: is_due(status.and_then(|s| s.last_synced_time.as_ref()), sync, now),
    }
}

/// How long until something is next due for this location (`None`: never), so that the
/// server's loop sleeps no longer than needed.
pub fn next_due_in(
    spec: &BackupStorageLocationSpec,
    status: Option<&BackupStorageLocationStatus>,
    now: DateTime<Utc>,
    default_validation: Duration,
    default_sync: Duration,
) -> Option<Duration> {
    let one = |last: Option<&Time>, every: Duration| -> Option<Duration> {
        if every.is_zero() {
            return None;
        }
        let Some(last) = last else {
            return Some(Duration::ZERO);
        };
        let since = now
            .signed_duration_since(last.0)
            .to_std()
            .unwrap_or(Duration::ZERO);
        Some(every.saturating_sub(since))
    };
    let validation = spec
        .validation_frequency
        .map_or(default_validation, |d| d.0);
    let sync = spec.backup_sync_period.map_or(default_sync, |d| d.0);
    [
        one(
            status.and_then(|s| s.last_validation_time.as_ref()),
            validation,
        ),
        one(status.and_then(|s| s.last_synced_time.as_ref()), sync),
    ]
    .into_iter()
    .flatten()
    .min()
}

#[cfg(test)]
mod tests {
    #[rstest::rstest]
    #[case::none(&[], None)]
    #[case::marked_wins_over_the_name(&[("default", false), ("s3", true)], Some(1))]
    #[case::first_marked(&[("a", true), ("b", true)], Some(0))]
    #[case::named_default(&[("a", false), ("default", false)], Some(1))]
    #[case::neither(&[("a", false), ("b", false)], None)]
    fn the_default_location(#[case] locs: &[(&str, bool)], #[case] want: Option<usize>) {
        assert_eq!(super::default_index(locs.iter().copied()), want);
    }

    use super::*;
    use crate::api::duration::GoDuration;
    use rstest::rstest;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn spec(validation: Option<u64>, sync: Option<u64>) -> BackupStorageLocationSpec {
        BackupStorageLocationSpec {
            validation_frequency: validation.map(|s| GoDuration(Duration::from_secs(s))),
            backup_sync_period: sync.map(|s| GoDuration(Duration::from_secs(s))),
            ..Default::default()
        }
    }

    fn status(validated: Option<&str>, synced: Option<&str>) -> BackupStorageLocationStatus {
        BackupStorageLocationStatus {
            last_validation_time: validated.map(|t| Time(at(t))),
            last_synced_time: synced.map(|t| Time(at(t))),
            ..Default::default()
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[rstest]
    #[case::never_checked(spec(None, None), None, "12:00:00", (true, true))]
    #[case::defaults_not_yet(spec(None, None), Some(("11:59:30", "11:59:30")), "12:00:00", (false, false))]
    #[case::defaults_due(spec(None, None), Some(("11:59:00", "11:59:30")), "12:00:00", (true, false))]
    #[case::own_frequency_longer(spec(Some(300), None), Some(("11:57:00", "11:58:00")), "12:00:00", (false, true))]
    #[case::own_frequency_shorter(spec(Some(10), Some(10)), Some(("11:59:49", "11:59:51")), "12:00:00", (true, false))]
    #[case::zero_turns_off(spec(Some(0), Some(0)), None, "12:00:00", (false, false))]
    #[case::clock_went_back(spec(None, None), Some(("12:05:00", "12:05:00")), "12:00:00", (true, true))]
    fn due_follows_the_locations_own_clocks(
        #[case] spec: BackupStorageLocationSpec,
        #[case] times: Option<(&str, &str)>,
        #[case] now: &str,
        #[case] want: (bool, bool),
    ) {
        let day = |t: &str| format!("2026-11-26T{t}Z");
        let st = times.map(|(v, s)| {
            let (v, s) = (day(v), day(s));
            status(Some(&v), Some(&s))
        });
        let got = due(&spec, st.as_ref(), at(&day(now)), MIN, MIN);
        assert_eq!(
            got,
            Due {
                validate: want.0,
                sync: want.1
            }
        );
    }

    #[test]
    fn next_due_is_the_nearest_clock() {
        let st = status(Some("2026-11-26T11:59:30Z"), Some("2026-11-26T11:59:50Z"));
        let now = at("2026-11-26T12:00:00Z");
        assert_eq!(
            next_due_in(&spec(None, None), Some(&st), now, MIN, MIN),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            next_due_in(&spec(Some(0), Some(0)), Some(&st), now, MIN, MIN),
            None
        );
        assert_eq!(
            next_due_in(&spec(None, None), None, now, MIN, MIN),
            Some(Duration::ZERO)
        );
    }
}
