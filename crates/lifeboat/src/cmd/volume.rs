//! `volume backup|restore|snapshots`: volume data in restic-format repositories, from the
//! machine the data is on (a node, for people without the server's node agent).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lifeboat_engine::storage::Store;
use lifeboat_types::format::layout;
use lifeboat_volume::{BackupRequest, Repo, RepoKey, StoreBackend};
use lifeboat_volume::{Progress, ProgressBars, ProgressType, RusticProgress};

use crate::cli::{Cli, Output};
use crate::common::{is_location_url, progress_bar, resolve_location};
use crate::exit::Exit;
use crate::output;

/// `volume ...`.
#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Back a directory up into a restic-format repository (created on first use), as a
    /// new snapshot whose parent is the previous snapshot of the same host and path: files
    /// whose size, modification time and inode are unchanged are not read again.
    #[command(after_help = "\
The repository key comes from --password-file, else LIFEBOAT_REPO_PASSWORD_FILE (a file), else
LIFEBOAT_REPO_PASSWORD. There is no default key: without one nothing is read or written.
Plain restic opens the same repository with the same key (restic -r <dir> snapshots).

Examples:
  export LIFEBOAT_REPO_PASSWORD_FILE=/etc/lifeboat/repo-key
  # the namespace's repository in a storage location: <prefix>/restic/<namespace>
  lifeboat volume backup --path /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~empty-dir/data \\
      --storage-location default --namespace shop
  # any directory, into a repository at a location URL
  lifeboat volume backup --path /srv/data --repo file:///backups/repo -o json")]
    Backup(BackupArgs),
    /// Restore a snapshot into a directory (created when missing). Without `:PATH` a
    /// snapshot of one directory is restored from that directory, so its files land
    /// directly in --target. Snapshots written by plain restic restore the same way.
    #[command(after_help = "\
Exit codes: 0 restored whole; 1 nothing restored (the error says why: key, snapshot, room on
the disk); 2 usage; 3 some files could not be restored (a damaged or missing pack): each is
named with why and removed, and every other file was restored.

Examples:
  lifeboat volume restore latest --target /srv/data --storage-location default --namespace shop
  lifeboat volume restore 4f2a91c0 --target /tmp/check --repo file:///backups/repo
  lifeboat volume restore 4f2a91c0:/srv/data/sub --target /tmp/sub --repo file:///backups/repo
  # a repository Velero's restic uploader wrote (its static key), to migrate its data
  lifeboat volume restore latest --target /tmp/migrate --storage-location velero --namespace shop \
      --velero-legacy-key")]
    Restore(RestoreArgs),
    /// List a repository's snapshots, oldest first.
    #[command(after_help = "\
Examples:
  lifeboat volume snapshots --storage-location default --namespace shop
  lifeboat volume snapshots --repo s3://backups/team-a?region=eu-west-1 -o json")]
    Snapshots(SnapshotsArgs),
}

/// Which repository, and its key.
#[derive(Args, Debug)]
pub struct RepoArgs {
    /// A repository at the root of this location URL (file:///dir, /dir, s3://bucket/prefix?...,
    /// gs://..., azure://...).
    #[arg(long, conflicts_with_all = ["storage_location", "namespace"])]
    pub repo: Option<String>,
    /// The storage location (a name, or a URL) whose `restic/<namespace>` repository to use
    /// (default: the default location).
    #[arg(long)]
    pub storage_location: Option<String>,
    /// The namespace whose repository to use (`<prefix>/restic/<namespace>`, as Velero lays
    /// repositories out).
    #[arg(long, required_unless_present = "repo")]
    pub namespace: Option<String>,
    /// A file holding the repository key (one trailing newline is ignored).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Reading a repository Velero wrote.
#[derive(Args, Debug)]
pub struct LegacyArg {
    /// Open the repository with Velero's static key (`static-passw0rd`, public in Velero's
    /// source), to read or migrate a repository Velero's restic uploader wrote. Anyone with
    /// the bucket can read such a repository: restore its data and back it up again into a
    /// repository with your own key.
    #[arg(long, conflicts_with = "password_file")]
    pub velero_legacy_key: bool,
}

/// `volume backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The directory to back up.
    #[arg(long)]
    pub path: PathBuf,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The snapshot's host (default: this machine's name).
    #[arg(long)]
    pub host: Option<String>,
    /// Record this path in the snapshot instead of --path.
    #[arg(long)]
    pub as_path: Option<String>,
    /// A tag for the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Read every file, ignoring the parent snapshot.
    #[arg(long)]
    pub force: bool,
    /// Output format: table, json, yaml.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

/// `volume restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot: `latest`, an id or a unique prefix of one, optionally `:PATH` in it.
    pub snapshot: String,
    /// The directory to restore into.
    #[arg(long)]
    pub target: PathBuf,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub legacy: LegacyArg,
    /// Output format: table, json, yaml.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

/// `volume snapshots`.
#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub legacy: LegacyArg,
    /// Output format: table, json, yaml.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

/// Runs `volume ...`.
pub async fn run(_cli: &Cli, cmd: &VolumeCmd) -> Result<Exit> {
    match cmd {
        VolumeCmd::Backup(a) => backup(a).await,
        VolumeCmd::Restore(a) => restore(a).await,
        VolumeCmd::Snapshots(a) => snapshots(a).await,
    }
}

/// The repository the flags name, opened with the user's key (checked before anything
/// else is done).
fn open_repo(a: &RepoArgs, legacy: bool) -> Result<Repo<TtyBars>> {
    let key = if legacy {
        eprintln!(
            "warning: opening the repository with Velero's public static key: anyone with the bucket can read it; restore its data and back it up into a repository with your own key"
        );
        RepoKey::velero_legacy()
    } else {
        RepoKey::resolve(a.password_file.as_deref(), |k| std::env::var(k).ok())?
    };
    let (store, dir) = match (&a.repo, &a.namespace) {
        (Some(url), _) => {
            anyhow::ensure!(
                is_location_url(url),
                "--repo {url:?} is not a location URL; give file:///dir, /dir, s3://bucket/prefix, gs://..., azure://..."
            );
            let store = Store::open(&resolve_location(Some(url))?)?;
            let dir = store.path("");
            (store, dir)
        }
        (None, Some(ns)) => {
            lifeboat_types::api::names::validate_name("namespace", ns)?;
            let store = Store::open(&resolve_location(a.storage_location.as_deref())?)?;
            let dir = layout::restic_repo(store.prefix(), ns);
            (store, dir)
        }
        (None, None) => anyhow::bail!("give --repo URL, or --namespace (with --storage-location)"),
    };
    let backend = StoreBackend::new(store, &dir, tokio::runtime::Handle::current());
    Ok(Repo::with_progress(backend, key, TtyBars))
}

/// Runs blocking repository work off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("the repository work stopped")?
}

async fn backup(a: &BackupArgs) -> Result<Exit> {
    let repo = open_repo(&a.repo, false)?;
    let path = a.path.clone();
    let req = BackupRequest {
        host: a.host.clone(),
        as_path: a.as_path.clone(),
        tags: a.tags.clone(),
        force: a.force,
    };
    let skipped_before = SKIPPED.load(std::sync::atomic::Ordering::Relaxed);
    let snap = blocking(move || Ok(repo.backup(&path, &req)?)).await?;
    let skipped = SKIPPED
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(skipped_before);
    if !output::print_structured(&snap, &a.output)? {
        let counted = snap
            .summary
            .map(|m| {
                format!(
                    ": {} files, {}; {} files read ({} new in the repository)",
                    m.files,
                    human(m.bytes),
                    m.files_read,
                    human(m.bytes_added)
                )
            })
            .unwrap_or_default();
        let parent = snap
            .parent
            .as_deref()
            .map(|p| format!(", parent {}", short(p)))
            .unwrap_or_default();
        println!(
            "snapshot {} of {} saved{counted}{parent}",
            short(&snap.id),
            snap.paths.join(", ")
        );
    }
    if skipped > 0 {
        eprintln!(
            "error: snapshot {} lacks {skipped} files or directories that could not be read (each is logged above); the rest is stored",
            short(&snap.id)
        );
        return Ok(Exit::PartiallyFailed);
    }
    Ok(Exit::Ok)
}

async fn restore(a: &RestoreArgs) -> Result<Exit> {
    let repo = open_repo(&a.repo, a.legacy.velero_legacy_key)?;
    let (snapshot, target) = (a.snapshot.clone(), a.target.clone());
    let report = blocking(move || Ok(repo.restore(&snapshot, &target)?)).await?;
    if !output::print_structured(&report, &a.output)? {
        println!(
            "restored snapshot {} ({}) into {}: {} files, {}",
            short(&report.snapshot),
            report.path,
            report.target,
            report.files_restored,
            human(report.bytes)
        );
    }
    if report.failed.is_empty() {
        return Ok(Exit::Ok);
    }
    eprintln!(
        "error: {} files could not be restored (removed from {}); the rest was restored:",
        report.failed.len(),
        report.target
    );
    for f in &report.failed {
        eprintln!("  {}: {}", f.path, f.reason);
    }
    Ok(Exit::PartiallyFailed)
}

async fn snapshots(a: &SnapshotsArgs) -> Result<Exit> {
    let repo = open_repo(&a.repo, a.legacy.velero_legacy_key)?;
    let snaps = blocking(move || Ok(repo.snapshots()?)).await?;
    if !output::print_structured(&snaps, &a.output)? {
        let rows: Vec<Vec<String>> = snaps
            .iter()
            .map(|s| {
                vec![
                    short(&s.id).to_owned(),
                    s.time.clone(),
                    s.host.clone(),
                    s.paths.join(","),
                    s.tags.join(","),
                    s.summary.map_or("-".into(), |m| m.files.to_string()),
                    s.summary.map_or("-".into(), |m| human(m.bytes)),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(
                &["ID", "TIME", "HOST", "PATHS", "TAGS", "FILES", "SIZE"],
                &rows
            )
        );
    }
    Ok(Exit::Ok)
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// rustic_core's progress, drawn with indicatif on a terminal's stderr (nothing when
/// stderr is not a terminal).
#[derive(Debug, Clone, Copy)]
pub struct TtyBars;

impl ProgressBars for TtyBars {
    fn progress(&self, kind: ProgressType, prefix: &str) -> Progress {
        let template = match kind {
            ProgressType::Spinner => "{spinner} {prefix} {elapsed}",
            ProgressType::Counter => "{spinner} {prefix} [{bar:30}] {pos}/{len}",
            ProgressType::Bytes => {
                "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            }
        };
        let Some(pb) = progress_bar(true, template) else {
            return Progress::hidden();
        };
        pb.set_prefix(prefix.to_owned());
        pb.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress::new(Bar(pb))
    }
}

#[derive(Debug)]
struct Bar(indicatif::ProgressBar);

impl RusticProgress for Bar {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_prefix(title.to_owned());
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Entries rustic_core skipped while backing up because they could not be read (it logs
/// "ignoring error: ..." and goes on, as restic does). Counted from its log records by
/// [`SkipCounter`], so that `volume backup` can say its snapshot lacks them.
static SKIPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A logging layer counting rustic_core's skipped entries (into [`SKIPPED`]); it sees every
/// event, whatever the log filter shows.
pub struct SkipCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SkipCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() > tracing::Level::WARN {
            return;
        }
        // rustic_core logs through the `log` crate: its records arrive as events whose
        // own target is the bridge's, with the real one in the `log.target` field.
        #[derive(Default)]
        struct Seen {
            target: String,
            skipped: bool,
        }
        impl tracing::field::Visit for Seen {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "log.target" {
                    value.clone_into(&mut self.target);
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.skipped = format!("{value:?}").starts_with("ignoring error:");
                }
            }
        }
        let mut seen = Seen::default();
        event.record(&mut seen);
        let target = if seen.target.is_empty() {
            event.metadata().target()
        } else {
            &seen.target
        };
        if seen.skipped && target.starts_with("rustic_core::archiver") {
            SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
