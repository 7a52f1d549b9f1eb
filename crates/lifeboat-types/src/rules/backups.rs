//! Rules about backups that several commands and controllers share, each once:
//!
//! - [`expiration`]: when a backup expires — its start plus its TTL; a TTL that carries
//!   the date past what a timestamp can hold is a validation error, never a panic.
//! - [`newest`]: the newest backup (optionally of one schedule) whose phase is allowed —
//!   `restore create --from-schedule` and the server's `scheduleName` restores take
//!   [`COMPLETED`], `backup verify --latest` takes every [`FINISHED`] phase so that a
//!   failed newest backup fails verification instead of being skipped.

use std::collections::BTreeMap;

use crate::GoDuration;
use crate::api::crd::BackupResource;
use crate::api::velero::{Backup, BackupPhase, BackupStatus, Time};
use crate::rules::schedule::SCHEDULE_LABEL;

/// Only Completed backups.
pub const COMPLETED: &[BackupPhase] = &[BackupPhase::Completed];

/// Every phase a stored backup ends in.
pub const FINISHED: &[BackupPhase] = &[
    BackupPhase::Completed,
    BackupPhase::PartiallyFailed,
    BackupPhase::Failed,
    BackupPhase::FailedValidation,
];

/// A TTL that cannot be added to the start time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ttl {ttl} puts the expiration past the latest representable date; use a shorter ttl")]
pub struct TtlOverflow {
    /// The TTL, as Go prints it.
    pub ttl: GoDuration,
}

/// `start + ttl`, checked.
pub fn expiration(start: Time, ttl: GoDuration) -> Result<Time, TtlOverflow> {
    chrono::Duration::from_std(ttl.0)
        .ok()
        .and_then(|d| start.0.checked_add_signed(d))
        .map(Time)
        .ok_or(TtlOverflow { ttl })
}

/// What [`newest`] reads of a backup: stored backups (`velero::Backup`) and the server's
/// Backup objects (`BackupResource`) both answer it.
pub trait BackupView {
    /// The backup's name.
    fn backup_name(&self) -> &str;
    /// Its labels.
    fn backup_labels(&self) -> Option<&BTreeMap<String, String>>;
    /// Its status.
    fn backup_status(&self) -> Option<&BackupStatus>;
}

impl BackupView for Backup {
    fn backup_name(&self) -> &str {
        &self.metadata.name
    }
    fn backup_labels(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.metadata.labels)
    }
    fn backup_status(&self) -> Option<&BackupStatus> {
        self.status.as_ref()
    }
}

impl BackupView for BackupResource {
    fn backup_name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
    fn backup_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn backup_status(&self) -> Option<&BackupStatus> {
        self.status.as_ref()
    }
}

/// The newest backup — by start time, then name — of `schedule` (any backup when `None`)
/// whose phase is one of `allowed`. A backup without a status is in phase New.
pub fn newest<'a, B: BackupView>(
    backups: &'a [B],
    schedule: Option<&str>,
    allowed: &[BackupPhase],
) -> Option<&'a B> {
    backups
        .iter()
        .filter(|b| {
            schedule.is_none_or(|s| {
                b.backup_labels()
                    .and_then(|l| l.get(SCHEDULE_LABEL))
                    .is_some_and(|v| v == s)
            })
        })
        .filter(|b| allowed.contains(&b.backup_status().map(|s| s.phase).unwrap_or_default()))
        .max_by(|a, b| {
            let key = |x: &B| {
                (
                    x.backup_status().and_then(|s| s.start_timestamp),
                    x.backup_name().to_owned(),
                )
            };
            key(a).cmp(&key(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use rstest::rstest;

    fn t(s: &str) -> Time {
        Time(s.parse::<DateTime<Utc>>().unwrap())
    }

    fn backup(
        name: &str,
        schedule: Option<&str>,
        phase: BackupPhase,
        start: Option<&str>,
    ) -> Backup {
        let mut b = Backup::new(name, Default::default());
        if let Some(s) = schedule {
            b.metadata.labels.insert(SCHEDULE_LABEL.into(), s.into());
        }
        b.status = Some(BackupStatus {
            phase,
            start_timestamp: start.map(t),
            ..Default::default()
        });
        b
    }

    #[rstest]
    #[case::thirty_days("2026-01-01T00:00:00Z", "720h", Some("2026-01-31T00:00:00Z"))]
    #[case::zero("2026-01-01T00:00:00Z", "0s", Some("2026-01-01T00:00:00Z"))]
    #[case::a_million_hours("2026-01-01T00:00:00Z", "1000000h", Some("2140-01-30T16:00:00Z"))]
    #[case::past_the_last_date("2026-01-01T00:00:00Z", "2300000000h", None)]
    #[case::beyond_chrono_durations("2026-01-01T00:00:00Z", "3000000000000h", None)]
    fn expiration_is_start_plus_ttl_or_refused(
        #[case] start: &str,
        #[case] ttl: &str,
        #[case] want: Option<&str>,
    ) {
        let ttl: GoDuration = ttl.parse().unwrap();
        match want {
            Some(w) => assert_eq!(expiration(t(start), ttl), Ok(t(w))),
            None => assert_eq!(expiration(t(start), ttl), Err(TtlOverflow { ttl })),
        }
    }

    #[test]
    fn expiration_overflow_names_the_ttl() {
        let ttl = GoDuration(std::time::Duration::from_secs(u64::MAX));
        let e = expiration(t("2026-01-01T00:00:00Z"), ttl).unwrap_err();
        assert!(e.to_string().starts_with(&format!("ttl {ttl} ")), "{e}");
    }

    fn all() -> Vec<Backup> {
        use BackupPhase::*;
        vec![
            backup(
                "d-1",
                Some("daily"),
                Completed,
                Some("2026-01-01T02:00:00Z"),
            ),
            backup(
                "d-2",
                Some("daily"),
                Completed,
                Some("2026-01-02T02:00:00Z"),
            ),
            backup(
                "d-3",
                Some("daily"),
                PartiallyFailed,
                Some("2026-01-03T02:00:00Z"),
            ),
            backup(
                "d-4",
                Some("daily"),
                InProgress,
                Some("2026-01-04T02:00:00Z"),
            ),
            backup("h-1", Some("hourly"), Failed, Some("2026-01-05T02:00:00Z")),
            backup("manual", None, Completed, Some("2026-01-02T12:00:00Z")),
            backup(
                "tie-a",
                Some("tie"),
                Completed,
                Some("2026-01-01T00:00:00Z"),
            ),
            backup(
                "tie-b",
                Some("tie"),
                Completed,
                Some("2026-01-01T00:00:00Z"),
            ),
        ]
    }

    #[rstest]
    #[case::completed_of_a_schedule(Some("daily"), COMPLETED, Some("d-2"))]
    #[case::finished_of_a_schedule(Some("daily"), FINISHED, Some("d-3"))]
    #[case::in_progress_is_never_finished(Some("daily"), &[BackupPhase::InProgress], Some("d-4"))]
    #[case::only_failed_of_hourly_completed(Some("hourly"), COMPLETED, None)]
    #[case::only_failed_of_hourly_finished(Some("hourly"), FINISHED, Some("h-1"))]
    #[case::any_schedule_completed(None, COMPLETED, Some("manual"))]
    #[case::any_schedule_finished(None, FINISHED, Some("h-1"))]
    #[case::unknown_schedule(Some("weekly"), FINISHED, None)]
    #[case::same_start_takes_the_last_name(Some("tie"), COMPLETED, Some("tie-b"))]
    fn newest_backup(
        #[case] schedule: Option<&str>,
        #[case] allowed: &[BackupPhase],
        #[case] want: Option<&str>,
    ) {
        let backups = all();
        assert_eq!(
            newest(&backups, schedule, allowed).map(|b| b.backup_name()),
            want
        );
    }

    #[test]
    fn server_objects_answer_the_same_rule() {
        let objs: Vec<BackupResource> = all()
            .into_iter()
            .map(|b| {
                let mut r = BackupResource::new(&b.metadata.name, b.spec.clone());
                r.metadata.labels = Some(b.metadata.labels.clone());
                r.status = b.status.clone();
                r
            })
            .collect();
        assert_eq!(
            newest(&objs, Some("daily"), COMPLETED).map(|b| b.backup_name()),
            Some("d-2")
        );
        let unlabelled = BackupResource::new("x", Default::default());
        assert!(newest(&[unlabelled], Some("daily"), &[BackupPhase::New]).is_none());
    }
}
