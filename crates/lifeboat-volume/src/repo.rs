//! One restic-format repository: open it (or create it on the first backup), back a
//! directory up into it, restore a snapshot into a directory, list its snapshots.
//!
//! Everything here blocks (rustic_core is synchronous): run it on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lifeboat_types::rules::disk_space;
use rustic_core::{
    BackupOptions, ConfigOptions, Credentials, FileType, KeyOptions, NoProgressBars, OpenStatus,
    ParentOptions, PathList, ProgressBars, ReadBackend, Repository, RepositoryBackends,
    RepositoryOptions, SnapshotOptions, repofile::SnapshotFile,
};
use serde::Serialize;

use crate::backend::StoreBackend;
use crate::error::VolumeError;
use crate::key::RepoKey;
use crate::restorer::{self, FailedFile};

/// A repository in a storage location, with the key that opens it.
#[derive(Debug, Clone)]
pub struct Repo<P = NoProgressBars> {
    backend: StoreBackend,
    key: RepoKey,
    name: String,
    progress: P,
}

/// What a backup of one directory is, besides its content.
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// The snapshot's host (restic's `--host`); a volume's snapshots share one, so that
    /// each finds the previous as its parent.
    pub host: Option<String>,
    /// The path the snapshot records instead of the directory's own (restic shows it; the
    /// node agent records a stable name, not the kubelet's per-pod directory).
    pub as_path: Option<String>,
    /// Tags (`key=value`, as Velero tags its snapshots).
    pub tags: Vec<String>,
    /// Read every file again, with no parent.
    pub force: bool,
}

/// Creations of repositories in this process, one at a time.
static INIT_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long a writer waits for another to finish creating the repository.
const INIT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A snapshot, as listed and as a backup reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    /// The snapshot id (64 hex digits; restic accepts any unique prefix).
    pub id: String,
    /// When it was taken (RFC 3339).
    pub time: String,
    /// Its host.
    pub host: String,
    /// The paths it holds.
    pub paths: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// The snapshot it was made against (unchanged files were not read again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// What the backup that made it counted (restic before 0.17 records none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// What a backup counted.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Files in the snapshot.
    pub files: u64,
    /// Bytes of the files in it.
    pub bytes: u64,
    /// Files read because they were new or changed (the rest came from the parent).
    pub files_read: u64,
    /// Bytes this snapshot added to the repository (after deduplication and compression).
    pub bytes_added: u64,
}

impl SnapshotInfo {
    fn of(s: &SnapshotFile) -> SnapshotInfo {
        SnapshotInfo {
            id: s.id.to_hex().as_str().to_owned(),
            time: s.time.timestamp().to_string(),
            host: s.hostname.clone(),
            paths: s.paths.iter().cloned().collect(),
            tags: s.tags.iter().cloned().collect(),
            parent: s.parent.map(|p| p.to_hex().as_str().to_owned()),
            summary: s.summary.as_ref().map(|m| Summary {
                files: m.total_files_processed,
                bytes: m.total_bytes_processed,
                files_read: m.files_new.saturating_add(m.files_changed),
                bytes_added: m.data_added_packed,
            }),
        }
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// The snapshot restored.
    pub snapshot: String,
    /// The path in the snapshot that was restored.
    pub path: String,
    /// Where it was written.
    pub target: String,
    /// Files written whole.
    pub files_restored: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Files not restored (their data could not be read, or written), each with why; the
    /// rest was restored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedFile>,
}

impl Repo<NoProgressBars> {
    /// The repository of `backend`, opened with `key`.
    pub fn new(backend: StoreBackend, key: RepoKey) -> Repo<NoProgressBars> {
        Repo::with_progress(backend, key, NoProgressBars)
    }
}

impl<P: ProgressBars + Clone> Repo<P> {
    /// The same, reporting progress through `progress`.
    pub fn with_progress(backend: StoreBackend, key: RepoKey, progress: P) -> Repo<P> {
        let name = backend.location();
        Repo {
            backend,
            key,
            name,
            progress,
        }
    }

    /// The repository's name in messages: `<location>:<directory>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn err(
        &self,
        what: &'static str,
    ) -> impl Fn(Box<rustic_core::RusticError>) -> VolumeError + '_ {
        move |e| VolumeError::rustic(&self.name, what, &e)
    }

    fn repository(&self) -> Result<Repository<()>, VolumeError> {
        // No local cache: the node agent runs in a container whose disk is not kept, and
        // the CLI should leave nothing behind on the machine it ran on.
        let opts = RepositoryOptions::default().no_cache(true);
        let backends = RepositoryBackends::new(Arc::new(self.backend.clone()), None);
        Repository::new_with_progress(&opts, &backends, self.progress.clone())
            .map_err(self.err("open"))
    }

    /// Whether a repository exists there (it has a config file).
    pub fn exists(&self) -> Result<bool, VolumeError> {
        let config = self
            .backend
            .list_with_size(FileType::Config)
            .map_err(self.err("open"))?;
        Ok(!config.is_empty())
    }

    fn credentials(&self) -> Credentials {
        Credentials::password(self.key.expose())
    }

    /// Opens the repository; [`VolumeError::NoRepository`] when there is none,
    /// [`VolumeError::WrongKey`] when the key does not open it.
    pub fn open(&self) -> Result<Repository<OpenStatus>, VolumeError> {
        if !self.exists()? {
            return Err(VolumeError::NoRepository {
                repo: self.name.clone(),
            });
        }
        self.open_existing()
    }

    /// Opens the repository known to exist.
    fn open_existing(&self) -> Result<Repository<OpenStatus>, VolumeError> {
        self.repository()?
            .open(&self.credentials())
            .map_err(self.err("open"))
    }

    /// Opens the repository, creating it (format version 2, compressed) when there is
    /// none.
    ///
    /// Writers that find no repository at once (two volumes of a namespace backed up
    /// together, on one node or on several) must not each create one: the second would
    /// replace the first's config and key, and every pack the first wrote would no longer
    /// decrypt. Within a process they take turns; across processes the first to create
    /// the marker [`StoreBackend::init_marker`] (a conditional write) creates the
    /// repository and the others wait for its config, then open it. A store that ignores
    /// conditional writes keeps only the writers of one process apart.
    pub fn open_or_init(&self) -> Result<Repository<OpenStatus>, VolumeError> {
        if self.exists()? {
            return self.open_existing();
        }
        // Writers of this process take turns (a store without conditional writes cannot
        // keep two of them apart); the marker keeps writers of other processes apart.
        let _turn = INIT_TURN.lock().unwrap_or_else(|p| p.into_inner());
        if self.exists()? {
            return self.open_existing();
        }
        let storage = |e: lifeboat_engine::storage::StorageError| VolumeError::Repository {
            repo: self.name.clone(),
            what: "create",
            retryable: e.is_retryable(),
            message: e.to_string(),
        };
        let who = format!(
            "{} pid {}",
            std::env::var("HOSTNAME").unwrap_or_default(),
            std::process::id()
        );
        if !self.backend.claim_init(&who).map_err(storage)? {
            let start = std::time::Instant::now();
            while start.elapsed() < INIT_WAIT {
                if self.exists()? {
                    return self.open_existing();
                }
                // Repository work runs on a blocking thread (rustic_core is synchronous),
                // never on a runtime worker: this crate's documented contract.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            return Err(VolumeError::Repository {
                repo: self.name.clone(),
                what: "create",
                retryable: false,
                message: format!(
                    "another writer began creating it ({} exists) and did not finish within {}s; if no backup is running, delete that object and back up again",
                    self.backend.init_marker(),
                    INIT_WAIT.as_secs()
                ),
            });
        }
        // Another writer may have finished between the first look and the claim.
        let made = if self.exists()? {
            self.open_existing()
        } else {
            self.repository()?
                .init(
                    &self.credentials(),
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
                .map_err(self.err("create"))
        };
        if let Err(e) = self.backend.release_init() {
            // Harmless once the config exists: writers look for it first.
            tracing::warn!(repo = %self.name, "the creation marker stays: {e}");
        }
        let repo = made?;
        tracing::info!(repo = %self.name, "created the repository");
        Ok(repo)
    }

    /// Backs `source` (a directory) up into a new snapshot, creating the repository when
    /// there is none. The latest snapshot of the same host and path is the parent: files
    /// whose size, modification time and inode are unchanged are not read again.
    pub fn backup(&self, source: &Path, req: &BackupRequest) -> Result<SnapshotInfo, VolumeError> {
        let meta = std::fs::metadata(source).map_err(|e| VolumeError::Path {
            path: source.display().to_string(),
            reason: format!("cannot back it up: {e}"),
        })?;
        if !meta.is_dir() {
            return Err(VolumeError::Path {
                path: source.display().to_string(),
                reason: "not a directory; give the volume's directory".into(),
            });
        }
        let source = std::path::absolute(source).map_err(|e| VolumeError::Path {
            path: source.display().to_string(),
            reason: e.to_string(),
        })?;
        let repo = self.open_or_init()?;
        let repo = repo.to_indexed_ids().map_err(self.err("read the index"))?;
        let mut snap_opts = SnapshotOptions::default();
        if let Some(h) = &req.host {
            snap_opts = snap_opts.host(h.clone());
        }
        for t in &req.tags {
            snap_opts = snap_opts.add_tags(t).map_err(self.err("tag"))?;
        }
        let snap = snap_opts.to_snapshot().map_err(self.err("backup"))?;
        let mut opts =
            BackupOptions::default().parent_opts(ParentOptions::default().force(req.force));
        if let Some(p) = &req.as_path {
            opts = opts.as_path(PathBuf::from(p));
        }
        let paths = PathList::from_iter([source.clone()]);
        let snap = repo
            .backup(&opts, &paths, snap)
            .map_err(self.err("backup"))?;
        Ok(SnapshotInfo::of(&snap))
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, VolumeError> {
        let repo = self.open()?;
        let mut snaps = repo
            .get_all_snapshots()
            .map_err(self.err("list snapshots"))?;
        snaps.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(snaps.iter().map(SnapshotInfo::of).collect())
    }

    /// Restores `snapshot` (`latest`, an id or a unique prefix of one, optionally
    /// `:PATH` in it) into `target`. Without `:PATH`, a snapshot of one directory is
    /// restored from that directory, so the volume's files land directly in `target`
    /// (restic itself would recreate the whole recorded path under it).
    pub fn restore(&self, snapshot: &str, target: &Path) -> Result<RestoreReport, VolumeError> {
        let repo = self
            .open()?
            .to_indexed()
            .map_err(self.err("read the index"))?;
        let (id, path) = snapshot.split_once(':').unwrap_or((snapshot, ""));
        let snap =
            repo.get_snapshot_from_str(id, |_| true)
                .map_err(|_| VolumeError::NoSnapshot {
                    repo: self.name.clone(),
                    snapshot: id.to_owned(),
                })?;
        let candidates = if path.is_empty() {
            match snap.paths.iter().collect::<Vec<_>>().as_slice() {
                [one] => restore_roots(one),
                _ => vec!["/".to_owned()],
            }
        } else {
            vec![path.to_owned()]
        };
        let Some((path, node)) = candidates.iter().find_map(|p| {
            repo.node_from_snapshot_and_path(&snap, p)
                .ok()
                .map(|n| (p.clone(), n))
        }) else {
            return Err(VolumeError::NoSnapshot {
                repo: self.name.clone(),
                snapshot: format!("{id}:{path}"),
            });
        };
        let target_str = target.display().to_string();
        let needed = restorer::total_size(&repo, &node).map_err(self.err("restore"))?;
        // Refused before anything is written when the disk cannot hold it.
        let room_at = if node.is_dir() {
            target
        } else {
            target.parent().unwrap_or(target)
        };
        std::fs::create_dir_all(room_at).map_err(|e| VolumeError::Path {
            path: room_at.display().to_string(),
            reason: format!("cannot create the target: {e}"),
        })?;
        if let Ok(Some(free)) = lifeboat_engine::extract::free_space(room_at)
            && let Err(short) = disk_space::check(free, needed, 0)
        {
            return Err(VolumeError::NoRoom {
                target: target_str,
                free: short.free,
                needed: short.needed,
            });
        }
        let outcome = restorer::restore(&repo, &node, target).map_err(self.err("restore"))?;
        let report = RestoreReport {
            snapshot: snap.id.to_hex().as_str().to_owned(),
            path,
            target: target_str,
            files_restored: outcome.files,
            bytes: outcome.bytes,
            failed: outcome.failed,
        };
        Ok(report)
    }
}

/// Where in a snapshot of the one directory `recorded` its files are, most likely first.
/// lifeboat (and restic given an absolute path) store the directory at its whole path;
/// restic given a relative path (`restic backup data/sub`) stores it at that relative path
/// while recording the absolute one, so each shorter tail of the path is tried next; a
/// snapshot of `.` holds the files at its root, the last candidate.
pub fn restore_roots(recorded: &str) -> Vec<String> {
    let parts: Vec<&str> = recorded.split('/').filter(|p| !p.is_empty()).collect();
    let mut out: Vec<String> = (0..parts.len())
        .map(|skip| format!("/{}", parts.get(skip..).unwrap_or_default().join("/")))
        .collect();
    out.push("/".to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::absolute("/tmp/vt/src", &["/tmp/vt/src", "/vt/src", "/src", "/"])]
    #[case::one_part("/data", &["/data", "/"])]
    #[case::root("/", &["/"])]
    fn a_directorys_files_are_looked_for_at_each_tail_of_its_path(
        #[case] recorded: &str,
        #[case] want: &[&str],
    ) {
        assert_eq!(restore_roots(recorded), want);
    }
}
