//! `backup replicate`: copies backups (and etcd snapshots and volume repositories)
//! from one location to another, for a standby that reads the copy (read-only) in another
//! region. Every file is streamed (never whole in memory) and checked: its SHA-256 while
//! it is read from the source, again read back from the destination. A backup's
//! `velero-backup.json` is copied last (and only when the volume repositories were
//! copied whole), so that a copy cut short is not a backup at the destination; the next
//! run completes it. Nothing at the destination is replaced or
//! deleted: the same contents are skipped (runs are idempotent), other contents are a
//! conflict, named and left alone. The source is only read. Decisions are
//! `lifeboat_types::rules::replicate`'s.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest;

use lifeboat_types::api::velero::Backup;
use lifeboat_types::rules::replicate::{
    BackupAction, FileAction, content_addressed, copies_repository_file, decide_backup, decide_file,
};

use crate::error::chain;
use crate::storage::{StorageError, Store};

/// What a run copies.
#[derive(Debug, Clone, Default)]
pub struct ReplicateOptions {
    /// Only backups completed at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only these backups (empty: every one).
    pub backups: Vec<String>,
    /// Also the etcd snapshots (`metadata/etcd/`).
    pub etcd: bool,
    /// Also the volume repositories (`restic/`, `kopia/`), without their locks.
    pub volumes: bool,
    /// Say what would be copied; write nothing.
    pub dry_run: bool,
}

/// What happened to one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BackupOutcome {
    /// Copied and checked.
    Copied,
    /// Would be copied (`--dry-run`).
    WouldCopy,
    /// The destination holds it already.
    AlreadyThere,
    /// Not copied (see detail).
    Skipped,
    /// The destination holds a different backup of that name: left alone.
    Conflict,
    /// The copy failed (see detail); the next run tries again.
    Failed,
}

/// One backup's copy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupCopy {
    /// The backup.
    pub name: String,
    /// What happened.
    pub outcome: BackupOutcome,
    /// Files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Why it was skipped, conflicts or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Files of a tree (etcd snapshots, volume repositories) copied.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilesCopied {
    /// Copied and checked (or, in a dry run, would be).
    pub copied: u64,
    /// There already with the same contents.
    pub already_there: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// There with other contents: left alone.
    pub conflicts: Vec<String>,
    /// Failed copies (the next run tries again).
    pub failed: Vec<String>,
}

/// A run's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicateReport {
    /// The source location.
    pub from: String,
    /// The destination location.
    pub to: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Each backup of the source, in name order.
    pub backups: Vec<BackupCopy>,
    /// The etcd snapshots (None: not asked for).
    pub etcd: Option<FilesCopied>,
    /// The volume repositories (None: not asked for).
    pub volumes: Option<FilesCopied>,
}

impl ReplicateReport {
    /// Whether everything asked for is at the destination (nothing failed, no conflict).
    pub fn complete(&self) -> bool {
        let trees_ok = [&self.etcd, &self.volumes]
            .into_iter()
            .flatten()
            .all(|t| t.conflicts.is_empty() && t.failed.is_empty());
        trees_ok
            && self
                .backups
                .iter()
                .all(|b| !matches!(b.outcome, BackupOutcome::Conflict | BackupOutcome::Failed))
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    /// Source and destination are the same place.
    #[error(
        "locations {from} and {to} are the same place; replicate to a location in another bucket or prefix"
    )]
    SameLocation {
        /// The source.
        from: String,
        /// The destination.
        to: String,
    },
    /// The source cannot be read or the destination not written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Copies `src` of `from` to `dst` of `to` as [`decide_file`] says; Ok with the bytes
/// copied (0 when the same contents were there).
async fn copy_file(
    from: &Store,
    to: &Store,
    src: &str,
    dst: &str,
    size: u64,
    content_addressed: bool,
    dry: bool,
) -> Result<FileDone, String> {
    let dest_size = if to.exists(dst).await.map_err(|e| chain(&e))? {
        Some(to.size(dst).await.map_err(|e| chain(&e))?)
    } else {
        None
    };
    match decide_file(size, dest_size, content_addressed) {
        FileAction::Conflict => Ok(FileDone::Conflict),
        FileAction::Same => Ok(FileDone::AlreadyThere),
        FileAction::Compare => {
            let (a, b) = tokio::join!(from.checksum(src), to.checksum(dst));
            let (a, b) = (a.map_err(|e| chain(&e))?, b.map_err(|e| chain(&e))?);
            Ok(if a == b {
                FileDone::AlreadyThere
            } else {
                FileDone::Conflict
            })
        }
        FileAction::Copy if dry => Ok(FileDone::Copied(size)),
        FileAction::Copy => {
            use futures::StreamExt;
            let mut hash = sha2::Sha256::new();
            let chunks = from.chunks(src).await.map_err(|e| chain(&e))?;
            let hashed = chunks.map(|c| {
                if let Ok(b) = &c {
                    hash.update(b);
                }
                c
            });
            let written = to
                .upload(dst, hashed)
                .await
                .map_err(|e| format!("{src}: {}", chain(&e)))?;
            let sent: [u8; 32] = hash.finalize().into();
            let (stored_size, stored) = to
                .checksum(dst)
                .await
                .map_err(|e| format!("{dst}: reading the copy back: {}", chain(&e)))?;
            if stored_size != written || stored != sent {
                // The copy is wrong. Removed only where the store created it for this run
                // alone (else the object may be another writer's): the next run copies it
                // again, or names it a conflict.
                let removed = to.creates_exclusively() && to.delete(dst).await.is_ok();
                return Err(format!(
                    "{dst}: the copy's checksum differs from the source's ({stored_size} of {written} bytes){}",
                    if removed {
                        "; removed, run again"
                    } else {
                        "; left as it is: check it"
                    }
                ));
            }
            Ok(FileDone::Copied(written))
        }
    }
}

enum FileDone {
    Copied(u64),
    AlreadyThere,
    Conflict,
}

/// Copies one backup: every file but its record, then the record (read back and
/// checked). Err with the outcome to report (a conflict, or a failure the next run may
/// mend) and why.
async fn copy_backup(
    from: &Store,
    to: &Store,
    name: &str,
    record: &[u8],
    dry: bool,
) -> Result<(u64, u64), (BackupOutcome, String)> {
    let failed = |e: String| (BackupOutcome::Failed, e);
    let (src_paths, dst_paths) = (from.backup_paths(name), to.backup_paths(name));
    let files = from
        .list_sizes(src_paths.dir())
        .await
        .map_err(|e| failed(chain(&e)))?;
    let record_rel = src_paths
        .metadata()
        .strip_prefix(src_paths.dir())
        .unwrap_or("velero-backup.json")
        .to_owned();
    let contents_rel = src_paths
        .contents()
        .strip_prefix(src_paths.dir())
        .unwrap_or_default()
        .to_owned();
    // Velero before 1.11 stores the record before the contents: a record without them is
    // a backup still being written there.
    if !files.iter().any(|(rel, _)| *rel == contents_rel) {
        return Err((
            BackupOutcome::Skipped,
            format!(
                "its contents ({contents_rel}) are not in the source yet: copied by a later run"
            ),
        ));
    }
    let (mut count, mut bytes) = (0u64, 0u64);
    for (rel, size) in files.iter().filter(|(rel, _)| *rel != record_rel) {
        let src = format!("{}{rel}", src_paths.dir());
        let dst = format!("{}{rel}", dst_paths.dir());
        match copy_file(from, to, &src, &dst, *size, false, dry)
            .await
            .map_err(failed)?
        {
            FileDone::Copied(n) => {
                count += 1;
                bytes += n;
            }
            FileDone::AlreadyThere => {}
            FileDone::Conflict => {
                return Err((
                    BackupOutcome::Conflict,
                    format!(
                        "{dst} exists at the destination with other contents: left alone, the backup is not copied"
                    ),
                ));
            }
        }
    }
    if !dry {
        let path = dst_paths.metadata();
        to.create(&path, record.to_vec())
            .await
            .map_err(|e| failed(chain(&e)))?;
        let sent: [u8; 32] = sha2::Sha256::digest(record).into();
        let (size, stored) = to.checksum(&path).await.map_err(|e| failed(chain(&e)))?;
        if size != record.len() as u64 || stored != sent {
            return Err(failed(format!(
                "{path}: the copy's checksum differs from the source's: check it"
            )));
        }
    }
    Ok((count + 1, bytes + record.len() as u64))
}

/// Copies every file under `dir` of `from` (relative paths kept) that `keep` accepts.
async fn copy_tree(
    from: &Store,
    to: &Store,
    dir_from: &str,
    dir_to: &str,
    keep: impl Fn(&str) -> bool,
    addressed: impl Fn(&str) -> bool,
    dry: bool,
) -> Result<FilesCopied, StorageError> {
    let mut out = FilesCopied::default();
    for (rel, size) in from.list_sizes(dir_from).await? {
        if !keep(&rel) {
            continue;
        }
        let (src, dst) = (format!("{dir_from}{rel}"), format!("{dir_to}{rel}"));
        match copy_file(from, to, &src, &dst, size, addressed(&rel), dry).await {
            Ok(FileDone::Copied(n)) => {
                out.copied += 1;
                out.bytes += n;
            }
            Ok(FileDone::AlreadyThere) => out.already_there += 1,
            Ok(FileDone::Conflict) => out.conflicts.push(rel),
            Err(e) => out.failed.push(e),
        }
    }
    Ok(out)
}

/// Runs a replication from `from` to `to` (see the module's doc).
pub async fn replicate(
    from: &Store,
    to: &Store,
    opts: &ReplicateOptions,
) -> Result<ReplicateReport, ReplicateError> {
    if from.same_place(to) {
        return Err(ReplicateError::SameLocation {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
        });
    }
    from.check(false).await?;
    if !opts.dry_run {
        to.check(true).await?;
    }
    let etcd = if opts.etcd {
        Some(
            copy_tree(
                from,
                to,
                &from.etcd_snapshots_dir(),
                &to.etcd_snapshots_dir(),
                |_| true,
                |_| false,
                opts.dry_run,
            )
            .await?,
        )
    } else {
        None
    };
    // Volume repositories before the backups that use them: a backup's record appears
    // at the destination only once its volume data is there.
    let volumes = if opts.volumes {
        let mut all = FilesCopied::default();
        for dir in ["restic/", "kopia/"] {
            let t = copy_tree(
                from,
                to,
                &from.path(dir),
                &to.path(dir),
                copies_repository_file,
                |rel| dir == "restic/" && content_addressed(rel),
                opts.dry_run,
            )
            .await?;
            all.copied += t.copied;
            all.already_there += t.already_there;
            all.bytes += t.bytes;
            all.conflicts
                .extend(t.conflicts.into_iter().map(|c| format!("{dir}{c}")));
            all.failed.extend(t.failed);
        }
        Some(all)
    } else {
        None
    };
    let volumes_whole = volumes
        .as_ref()
        .is_none_or(|v| v.failed.is_empty() && v.conflicts.is_empty());
    let mut names = from.list_backups().await?;
    names.sort();
    if !opts.backups.is_empty() {
        names.retain(|n| opts.backups.contains(n));
    }
    let mut backups = Vec::new();
    for name in names {
        let done = |outcome, detail: Option<String>| BackupCopy {
            name: name.clone(),
            outcome,
            files: 0,
            bytes: 0,
            detail,
        };
        let record_path = from.backup_paths(&name).metadata();
        let record = match from.read(&record_path).await {
            Ok(r) => r,
            // A directory without its record is a backup still being written.
            Err(StorageError::NotFound { .. }) => continue,
            Err(e) => {
                backups.push(done(BackupOutcome::Failed, Some(chain(&e))));
                continue;
            }
        };
        let backup: Backup = match serde_json::from_slice(&record) {
            Ok(b) => b,
            Err(e) => {
                backups.push(done(
                    BackupOutcome::Failed,
                    Some(format!("its velero-backup.json does not read: {e}")),
                ));
                continue;
            }
        };
        let dest_path = to.backup_paths(&name).metadata();
        let dest_record = match to.read(&dest_path).await {
            Ok(r) => Some(r),
            Err(StorageError::NotFound { .. }) => None,
            Err(e) => {
                backups.push(done(BackupOutcome::Failed, Some(chain(&e))));
                continue;
            }
        };
        match decide_backup(&backup, &record, dest_record.as_deref(), opts.since) {
            BackupAction::AlreadyThere => backups.push(done(BackupOutcome::AlreadyThere, None)),
            BackupAction::Skip(why) => backups.push(done(BackupOutcome::Skipped, Some(why))),
            BackupAction::Conflict => backups.push(done(
                BackupOutcome::Conflict,
                Some("the destination holds a different backup of that name: left alone".into()),
            )),
            BackupAction::Copy if !volumes_whole => backups.push(done(
                BackupOutcome::Failed,
                Some("the volume repositories were not copied whole (see volumes): its record is withheld, the next run copies it".into()),
            )),
            BackupAction::Copy => {
                let r = copy_backup(from, to, &name, &record, opts.dry_run).await;
                backups.push(match r {
                    Ok((files, bytes)) => BackupCopy {
                        name: name.clone(),
                        outcome: if opts.dry_run {
                            BackupOutcome::WouldCopy
                        } else {
                            BackupOutcome::Copied
                        },
                        files,
                        bytes,
                        detail: None,
                    },
                    Err((outcome, why)) => done(outcome, Some(why)),
                });
            }
        }
    }
    Ok(ReplicateReport {
        from: from.name().to_owned(),
        to: to.name().to_owned(),
        dry_run: opts.dry_run,
        backups,
        etcd,
        volumes,
    })
}
