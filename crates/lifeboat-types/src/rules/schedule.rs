//! When a Schedule makes its next backup, as data: Velero's rules, pure and tested.
//!
//! - The expression is a 5-field cron line in UTC (`0 2 * * *`), a macro (`@daily`,
//!   `@hourly`, ...), or `@every <Go duration>` (`@every 6h`).
//! - A schedule with no backup yet is due at once, unless `skipImmediately`: then the
//!   first due time is skipped (recorded as `lastSkipped`) and the next one counts.
//! - Otherwise the next backup is the first cron time after the later of `lastBackup`
//!   and `lastSkipped`; it is due once that time has passed. Missed runs are not made up:
//!   one backup, then the next time after it.
//! - Backups are named `<schedule>-YYYYMMDDhhmmss` (UTC) and labelled
//!   `velero.io/schedule-name=<schedule>`.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::api::duration::GoDuration;
use crate::api::velero::{ScheduleSpec, ScheduleStatus};

/// The label naming a backup's schedule (Velero's).
pub const SCHEDULE_LABEL: &str = "velero.io/schedule-name";

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum Cron {
    /// `@every <duration>`.
    Every(std::time::Duration),
    /// A cron line or macro.
    Line(Box<croner::Cron>),
}

impl Cron {
    /// Parses a schedule expression; the error says what is accepted.
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let e = expr.trim();
        if let Some(d) = e.strip_prefix("@every") {
            let d: GoDuration = d.trim().parse().map_err(|err| {
                format!("invalid schedule {expr:?}: @every needs a duration like 6h or 30m ({err})")
            })?;
            if d.0.is_zero() {
                return Err(format!(
                    "invalid schedule {expr:?}: @every needs a positive duration"
                ));
            }
            return Ok(Cron::Every(d.0));
        }
        if !e.starts_with('@') && e.split_whitespace().count() != 5 {
            return Err(format!(
                "invalid schedule {expr:?}: want 5 cron fields (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"), a macro like @daily, or @every 6h"
            ));
        }
        croner::Cron::from_str(e)
            .map(|c| Cron::Line(Box::new(c)))
            .map_err(|err| format!("invalid schedule {expr:?}: {err}"))
    }

    /// The first run strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cron::Every(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| t.checked_add_signed(d)),
            Cron::Line(c) => c.find_next_occurrence(&t, false).ok(),
        }
    }
}

/// What a schedule should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Paused: nothing until unpaused.
    Paused,
    /// Make a backup now.
    BackupNow,
    /// Record this due time as skipped (skipImmediately), then wait.
    SkipNow,
    /// Nothing until this time.
    WaitUntil(DateTime<Utc>),
}

/// Decides, from the spec, the status and the current time.
pub fn decide(
    spec: &ScheduleSpec,
    status: Option<&ScheduleStatus>,
    now: DateTime<Utc>,
) -> Result<Decision, String> {
    let cron = Cron::parse(&spec.schedule)?;
    if spec.paused {
        return Ok(Decision::Paused);
    }
    let last_backup = status.and_then(|s| s.last_backup).map(|t| t.0);
    let last_skipped = status.and_then(|s| s.last_skipped).map(|t| t.0);
    let since = match (last_backup, last_skipped) {
        (None, None) => {
            return Ok(if spec.skip_immediately == Some(true) {
                Decision::SkipNow
            } else {
                Decision::BackupNow
            });
        }
        (a, b) => a.max(b).unwrap_or(now),
    };
    match cron.next_after(since) {
        Some(next) if next <= now => Ok(Decision::BackupNow),
        Some(next) => Ok(Decision::WaitUntil(next)),
        None => Err(format!("schedule {:?} never fires again", spec.schedule)),
    }
}

/// The name of the backup a schedule makes at `at`.
pub fn backup_name(schedule: &str, at: DateTime<Utc>) -> String {
    format!("{schedule}-{}", at.format("%Y%m%d%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::Time;
    use rstest::rstest;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn spec(expr: &str) -> ScheduleSpec {
        ScheduleSpec {
            schedule: expr.into(),
            ..Default::default()
        }
    }

    fn status(last_backup: Option<&str>, last_skipped: Option<&str>) -> ScheduleStatus {
        ScheduleStatus {
            last_backup: last_backup.map(|t| Time(at(t))),
            last_skipped: last_skipped.map(|t| Time(at(t))),
            ..Default::default()
        }
    }

    #[rstest]
    #[case("0 2 * * *", "2026-01-01T10:00:00Z", "2026-01-02T02:00:00Z")]
    #[case("*/15 * * * *", "2026-01-01T10:07:00Z", "2026-01-01T10:15:00Z")]
    #[case("@daily", "2026-01-01T10:00:00Z", "2026-01-02T00:00:00Z")]
    #[case("@hourly", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")]
    #[case("@every 6h", "2026-01-01T10:00:00Z", "2026-01-01T16:00:00Z")]
    #[case("@every 90s", "2026-01-01T10:00:00Z", "2026-01-01T10:01:30Z")]
    fn next_runs(#[case] expr: &str, #[case] after: &str, #[case] want: &str) {
        assert_eq!(
            Cron::parse(expr).unwrap().next_after(at(after)),
            Some(at(want))
        );
    }

    #[rstest]
    #[case("0 2 * *", "5 cron fields")]
    #[case("61 * * * *", "invalid schedule")]
    #[case("@every", "@every needs a duration")]
    #[case("@every 0s", "positive")]
    #[case("@sometimes", "invalid schedule")]
    fn bad_expressions_are_named(#[case] expr: &str, #[case] want: &str) {
        let err = Cron::parse(expr).unwrap_err();
        assert!(err.contains(want), "{err}");
    }

    #[test]
    fn first_backup_is_immediate_unless_skipped() {
        let now = at("2026-01-01T10:00:00Z");
        assert_eq!(
            decide(&spec("0 2 * * *"), None, now),
            Ok(Decision::BackupNow)
        );
        let skip = ScheduleSpec {
            skip_immediately: Some(true),
            ..spec("0 2 * * *")
        };
        assert_eq!(decide(&skip, None, now), Ok(Decision::SkipNow));
        // After the skip, the next cron time counts.
        let s = status(None, Some("2026-01-01T10:00:00Z"));
        assert_eq!(
            decide(&skip, Some(&s), now),
            Ok(Decision::WaitUntil(at("2026-01-02T02:00:00Z")))
        );
        assert_eq!(
            decide(&skip, Some(&s), at("2026-01-02T02:00:00Z")),
            Ok(Decision::BackupNow)
        );
    }

    #[test]
    fn due_after_the_next_time_and_missed_runs_are_not_made_up() {
        let s = status(Some("2026-01-01T02:00:00Z"), None);
        let sp = spec("0 2 * * *");
        assert_eq!(
            decide(&sp, Some(&s), at("2026-01-01T12:00:00Z")),
            Ok(Decision::WaitUntil(at("2026-01-02T02:00:00Z")))
        );
        // Three days later: one backup now (then the next is computed from it).
        assert_eq!(
            decide(&sp, Some(&s), at("2026-01-04T12:00:00Z")),
            Ok(Decision::BackupNow)
        );
    }

    #[test]
    fn paused_makes_nothing_and_a_bad_expression_is_an_error() {
        let p = ScheduleSpec {
            paused: true,
            ..spec("@every 1h")
        };
        assert_eq!(decide(&p, None, Utc::now()), Ok(Decision::Paused));
        let err = decide(&spec("nope"), None, Utc::now()).unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn backup_names_are_velero_style() {
        assert_eq!(
            backup_name("daily", at("2026-03-04T05:06:07Z")),
            "daily-20260304050607"
        );
    }
}

/// Property tests of the schedule parser (issue 11, item 4: a cron or `@every` text never
/// panics, neither parsing nor computing the next run, however far it points).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_never_panics(s in "\\PC{0,40}", secs in 0i64..4_102_444_800) {
            if let Ok(c) = Cron::parse(&s) {
                let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
                let _ = c.next_after(t);
            }
        }

        #[test]
        fn cron_like_text_never_panics(s in "[0-9*/,-]{1,6}( [0-9*/,-]{1,6}){4}", secs in 0i64..4_102_444_800) {
            if let Ok(c) = Cron::parse(&s) {
                let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
                let _ = c.next_after(t);
            }
        }

        #[test]
        fn every_never_panics(n in any::<u64>(), unit in "(ns|us|ms|s|m|h)", secs in 0i64..4_102_444_800) {
            if let Ok(c) = Cron::parse(&format!("@every {n}{unit}")) {
                let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
                let _ = c.next_after(t);
            }
        }
    }
}
