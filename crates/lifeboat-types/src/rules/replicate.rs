//! `backup replicate`: which backups and files are copied from one location to another.
//! A copy never replaces nor deletes anything at the destination: what is there with the
//! same contents is skipped (a run is idempotent), what is there with other contents is
//! a conflict that is named and left alone.

use chrono::{DateTime, Utc};

use crate::api::velero::{Backup, BackupPhase};

/// What happens to one backup of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupAction {
    /// Copy it (its files first, `velero-backup.json` last: it appears whole or not at all).
    Copy,
    /// The destination holds the same record: copied before.
    AlreadyThere,
    /// Not copied, and why (still running, failed, older than `--since`).
    Skip(String),
    /// The destination holds a different backup of that name: not replaced.
    Conflict,
}

/// Decides what happens to `backup` of the source: `dest_record` is the destination's
/// `velero-backup.json` of that name (None: absent), `source_record` the source's bytes,
/// `since` the oldest completion time copied (None: all).
pub fn decide_backup(
    backup: &Backup,
    source_record: &[u8],
    dest_record: Option<&[u8]>,
    since: Option<DateTime<Utc>>,
) -> BackupAction {
    let status = backup.status.clone().unwrap_or_default();
    match status.phase {
        BackupPhase::Completed | BackupPhase::PartiallyFailed => {}
        BackupPhase::Failed | BackupPhase::FailedValidation => {
            return BackupAction::Skip(format!("{}: nothing to restore from", status.phase));
        }
        other => {
            return BackupAction::Skip(format!("{other}: not finished, copied by a later run"));
        }
    }
    if let (Some(cutoff), Some(done)) = (since, status.completion_timestamp.as_ref())
        && done.0 < cutoff
    {
        return BackupAction::Skip(format!(
            "completed {} (before --since)",
            done.0.to_rfc3339()
        ));
    }
    match dest_record {
        None => BackupAction::Copy,
        Some(d) if d == source_record => BackupAction::AlreadyThere,
        Some(_) => BackupAction::Conflict,
    }
}

/// What happens to one file (a backup's, an etcd snapshot, a volume repository's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// Absent at the destination: copy it.
    Copy,
    /// Present with the same size: compare checksums (same: skip; else a conflict).
    Compare,
    /// Present with another size: a conflict, left alone.
    Conflict,
    /// Present with the same size and a name that is its content's hash: the same.
    Same,
}

/// Decides what happens to a source file of `size` bytes whose destination has
/// `dest_size` (None: absent); `content_addressed`: its name is its content's hash.
pub fn decide_file(size: u64, dest_size: Option<u64>, content_addressed: bool) -> FileAction {
    match dest_size {
        None => FileAction::Copy,
        Some(d) if d == size && content_addressed => FileAction::Same,
        Some(d) if d == size => FileAction::Compare,
        Some(_) => FileAction::Conflict,
    }
}

/// Whether a volume repository's file (relative to `restic/`: `<ns>/data/ab/<id>`) is
/// named by the SHA-256 of its content (restic's packs, indexes, snapshots and keys; not
/// its `config`).
pub fn content_addressed(rel: &str) -> bool {
    let mut parts = rel.split('/');
    let _ns = parts.next();
    matches!(parts.next(), Some("data" | "index" | "snapshots" | "keys"))
        && rel
            .rsplit('/')
            .next()
            .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether a file of a volume repository (`restic/<ns>/...`, relative) is copied: every
/// one but its locks (a lock belongs to a process at the source).
pub fn copies_repository_file(rel: &str) -> bool {
    !rel.split('/').any(|p| p == "locks")
}

/// The annotation of a Schedule that names the locations (comma-separated) its backups
/// are copied to, by the server, each time one of them is stored Completed.
pub const REPLICATE_TO: &str = "lifeboat.dev/replicate-to";
/// The annotation the server writes on a Backup object: the locations it was copied to.
pub const REPLICATED_TO: &str = "lifeboat.dev/replicated-to";
/// The annotation the server writes on a Backup object when a copy failed: why, per
/// location (the next backup of the schedule tries again).
pub const REPLICATION_ERROR: &str = "lifeboat.dev/replication-error";

/// The locations a Schedule's [`REPLICATE_TO`] names, in order, each once; the error
/// names what is wrong (a copy into the location the backups are in, an empty name).
pub fn replicate_targets(annotation: &str, own_location: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for t in annotation.split(',').map(str::trim) {
        if t.is_empty() {
            return Err(format!(
                "{REPLICATE_TO} {annotation:?} has an empty location name; give location names separated by commas"
            ));
        }
        if t == own_location {
            return Err(format!(
                "{REPLICATE_TO} names location {t:?}, which the backups are stored in; name another location"
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::{BackupSpec, BackupStatus, Time};
    use rstest::rstest;

    fn before_now(h: i64) -> DateTime<Utc> {
        Utc::now()
            .checked_sub_signed(chrono::Duration::hours(h))
            .unwrap()
    }

    fn backup(phase: BackupPhase, done_hours_ago: i64) -> Backup {
        let mut b = Backup::new("b", BackupSpec::default());
        b.status = Some(BackupStatus {
            phase,
            completion_timestamp: Some(Time(before_now(done_hours_ago))),
            ..Default::default()
        });
        b
    }

    #[rstest]
    #[case::new(BackupPhase::Completed, 1, None, None, BackupAction::Copy)]
    #[case::partially_failed(BackupPhase::PartiallyFailed, 1, None, None, BackupAction::Copy)]
    #[case::copied_before(BackupPhase::Completed, 1, Some(&b"rec"[..]), None, BackupAction::AlreadyThere)]
    #[case::another_of_that_name(BackupPhase::Completed, 1, Some(&b"other"[..]), None, BackupAction::Conflict)]
    #[case::within_since(BackupPhase::Completed, 1, None, Some(2), BackupAction::Copy)]
    fn which_backups_are_copied(
        #[case] phase: BackupPhase,
        #[case] hours_ago: i64,
        #[case] dest: Option<&[u8]>,
        #[case] since_hours: Option<i64>,
        #[case] want: BackupAction,
    ) {
        let since = since_hours.map(before_now);
        assert_eq!(
            decide_backup(&backup(phase, hours_ago), b"rec", dest, since),
            want
        );
    }

    #[rstest]
    #[case::running(BackupPhase::InProgress, 1, None, "InProgress: not finished")]
    #[case::failed(BackupPhase::Failed, 1, None, "Failed: nothing to restore from")]
    #[case::older_than_since(BackupPhase::Completed, 5, Some(2), "before --since")]
    fn which_backups_are_skipped(
        #[case] phase: BackupPhase,
        #[case] hours_ago: i64,
        #[case] since_hours: Option<i64>,
        #[case] why: &str,
    ) {
        let since = since_hours.map(before_now);
        match decide_backup(&backup(phase, hours_ago), b"rec", None, since) {
            BackupAction::Skip(w) => assert!(w.contains(why), "{w}"),
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case::absent(10, None, false, FileAction::Copy)]
    #[case::same_size(10, Some(10), false, FileAction::Compare)]
    #[case::same_size_named_by_its_hash(10, Some(10), true, FileAction::Same)]
    #[case::other_size(10, Some(9), false, FileAction::Conflict)]
    #[case::other_size_named_by_its_hash(10, Some(9), true, FileAction::Conflict)]
    fn which_files_are_copied(
        #[case] size: u64,
        #[case] dest: Option<u64>,
        #[case] addressed: bool,
        #[case] want: FileAction,
    ) {
        assert_eq!(decide_file(size, dest, addressed), want);
    }

    #[rstest]
    #[case(
        "shop/data/ab/ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
        true
    )]
    #[case(
        "shop/snapshots/ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
        true
    )]
    #[case("shop/config", false)]
    #[case("shop/data/ab/short", false)]
    fn which_repository_files_are_named_by_their_hash(#[case] rel: &str, #[case] yes: bool) {
        assert_eq!(content_addressed(rel), yes);
    }

    #[rstest]
    #[case("data/ab/abcdef", true)]
    #[case("config", true)]
    #[case("locks/1234", false)]
    #[case("keys/99", true)]
    fn a_repository_is_copied_without_its_locks(#[case] rel: &str, #[case] copied: bool) {
        assert_eq!(copies_repository_file(rel), copied);
    }

    #[rstest::rstest]
    #[case::one("copy", Ok(vec!["copy"]))]
    #[case::several_once(" copy, dr-west ,copy", Ok(vec!["copy", "dr-west"]))]
    #[case::own(
        "copy,default",
        Err("names location \"default\", which the backups are stored in")
    )]
    #[case::empty("copy,,x", Err("has an empty location name"))]
    fn the_locations_a_schedule_copies_to(
        #[case] annotation: &str,
        #[case] want: Result<Vec<&str>, &str>,
    ) {
        let got = replicate_targets(annotation, "default");
        match want {
            Ok(w) => assert_eq!(got.unwrap(), w),
            Err(e) => assert!(got.unwrap_err().contains(e)),
        }
    }
}
