//! The process's exit codes, one type: 0 success, 1 error, 2 usage error, 3 a backup or
//! restore that ran to its end but ended PartiallyFailed (its data is stored), 4 `wait`
//! gave up before the backup or restore ended (it goes on).

use std::process::ExitCode;

use lifeboat_types::api::velero::{BackupPhase, RestorePhase};

/// How a command ended. Ordered by code: when one command runs several things (`apply -f`
/// with several documents) the largest code wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// An error (printed on stderr), or a run that failed or a check that did not pass.
    Error = 1,
    /// The command line was not understood.
    Usage = 2,
    /// The run ended PartiallyFailed: stored, with errors recorded in its results.
    PartiallyFailed = 3,
    /// `backup wait` / `restore wait` stopped at its `--timeout` before the run ended.
    TimedOut = 4,
}

impl Exit {
    /// The exit of a backup run that ended in `phase`.
    pub fn of_backup(phase: BackupPhase) -> Exit {
        match phase {
            BackupPhase::Completed => Exit::Ok,
            BackupPhase::PartiallyFailed => Exit::PartiallyFailed,
            _ => Exit::Error,
        }
    }

    /// The exit of a restore run that ended in `phase`.
    pub fn of_restore(phase: RestorePhase) -> Exit {
        match phase {
            RestorePhase::Completed => Exit::Ok,
            RestorePhase::PartiallyFailed => Exit::PartiallyFailed,
            _ => Exit::Error,
        }
    }

    /// `Ok` when a check passed, else `Error`.
    pub fn of_check(passed: bool) -> Exit {
        if passed { Exit::Ok } else { Exit::Error }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(BackupPhase::Completed, Exit::Ok)]
    #[case(BackupPhase::PartiallyFailed, Exit::PartiallyFailed)]
    #[case(BackupPhase::Failed, Exit::Error)]
    #[case(BackupPhase::FailedValidation, Exit::Error)]
    #[case(BackupPhase::InProgress, Exit::Error)]
    fn backup_phases(#[case] phase: BackupPhase, #[case] exit: Exit) {
        assert_eq!(Exit::of_backup(phase), exit);
    }

    #[rstest]
    #[case(RestorePhase::Completed, Exit::Ok)]
    #[case(RestorePhase::PartiallyFailed, Exit::PartiallyFailed)]
    #[case(RestorePhase::Failed, Exit::Error)]
    #[case(RestorePhase::FailedValidation, Exit::Error)]
    fn restore_phases(#[case] phase: RestorePhase, #[case] exit: Exit) {
        assert_eq!(Exit::of_restore(phase), exit);
    }

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(
            [
                Exit::Ok,
                Exit::Error,
                Exit::Usage,
                Exit::PartiallyFailed,
                Exit::TimedOut
            ]
            .map(|e| e as u8),
            [0, 1, 2, 3, 4]
        );
        // `apply -f` with several documents: a partial failure outranks a failure, as
        // the numeric maximum did.
        assert_eq!(
            Exit::Error.max(Exit::PartiallyFailed),
            Exit::PartiallyFailed
        );
        assert_eq!(Exit::Ok.max(Exit::Error), Exit::Error);
    }
}
