//! Errors of volume work: each names the repository or path and what to do, and says
//! whether trying again can help.

use lifeboat_engine::storage::StorageError;

/// What went wrong with a repository or a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// No key was given (there is no default).
    #[error("volume data needs a repository key: {reason}")]
    NoKey {
        /// What is missing and how to give it.
        reason: String,
    },
    /// The key does not open the repository.
    #[error(
        "repository {repo}: the key given does not open it; give the key this repository was created with (nothing was written)"
    )]
    WrongKey {
        /// The repository.
        repo: String,
    },
    /// There is no repository there (reading), or the location refused to create one.
    #[error(
        "repository {repo} does not exist; back up a volume to it first, or check the location and namespace"
    )]
    NoRepository {
        /// The repository.
        repo: String,
    },
    /// No snapshot matches.
    #[error("repository {repo}: no snapshot {snapshot:?}; `lifeboat volume snapshots` lists them")]
    NoSnapshot {
        /// The repository.
        repo: String,
        /// What was asked for.
        snapshot: String,
    },
    /// A local path cannot be used.
    #[error("{path}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The target's disk has no room for what a restore writes.
    #[error(
        "restoring into {target} needs {needed} bytes and {free} are free there; free space on that disk or restore elsewhere (--target)"
    )]
    NoRoom {
        /// The restore's target.
        target: String,
        /// Bytes free there.
        free: u64,
        /// Bytes the restore writes.
        needed: u64,
    },
    /// The repository work failed.
    #[error("repository {repo}: {what} failed: {message}")]
    Repository {
        /// The repository.
        repo: String,
        /// The step (open, backup, restore, ...).
        what: &'static str,
        /// rustic_core's account of it.
        message: String,
        /// Whether the storage said trying again can help.
        retryable: bool,
    },
}

impl VolumeError {
    /// Whether trying again later can succeed (a transient storage error).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            VolumeError::Repository {
                retryable: true,
                ..
            }
        )
    }

    /// A rustic_core error of step `what` on `repo`.
    pub(crate) fn rustic(repo: &str, what: &'static str, e: &rustic_core::RusticError) -> Self {
        if e.is_incorrect_password() {
            return VolumeError::WrongKey {
                repo: repo.to_owned(),
            };
        }
        let mut retryable = false;
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(c) = cur {
            if let Some(s) = c.downcast_ref::<StorageError>() {
                retryable = s.is_retryable();
                break;
            }
            cur = c.source();
        }
        VolumeError::Repository {
            repo: repo.to_owned(),
            what,
            message: concise(&e.display_log()),
            retryable,
        }
    }
}

/// rustic_core's log form of an error on one line: its first line, and the message of
/// the error it wraps (which rustic_core renders over many lines, with a backtrace).
fn concise(log: &str) -> String {
    let mut lines = log.lines();
    let mut out = lines.next().unwrap_or_default().trim_end().to_owned();
    let mut rest = lines.skip_while(|l| l.trim() != "Message:");
    if rest.next().is_some()
        && let Some(m) = rest.find(|l| !l.trim().is_empty())
    {
        out.push_str(" — ");
        out.push_str(m.trim());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustic_errors_are_told_on_one_line() {
        let log = "Error: error processing Index:8b32 (kind: related to cryptographic operations): caused by: `rustic_core` experienced an error.\n\nMessage:\nData decryption failed, MAC check failed.\n\nFor more information, see: https://x\n\nBacktrace:\ndisabled";
        assert_eq!(
            concise(log),
            "Error: error processing Index:8b32 (kind: related to cryptographic operations): caused by: `rustic_core` experienced an error. — Data decryption failed, MAC check failed."
        );
        assert_eq!(concise("Error: short (kind: x)"), "Error: short (kind: x)");
    }
}
