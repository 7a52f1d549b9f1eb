//! `etcd snapshot save|list|download|prune|schedule|status|restore|verify`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lifeboat_engine::storage::Store;
use lifeboat_etcd::receive::{Form, Received, Receiver, is_gzip};
use lifeboat_etcd::{restore, save, snapshot};
use lifeboat_types::api::names::validate_name;
use lifeboat_types::format::layout;
use lifeboat_types::rules::etcd_snapshots::{
    Freshness, PickError, Verdict, Which, check_newest, pick,
};
use lifeboat_types::rules::retention::{StoredSnapshot, only_cluster, prunable};
use lifeboat_types::{ByteSize, GoDuration};

use crate::cli::{Cli, ConfirmArg, Output};
use crate::common::{Mode, byte_bar, cronjob_api_version, mode, open_store, resolve_location};
use crate::confirm::{confirm, counted};
use crate::exit::Exit;
use crate::output;

/// `etcd ...`.
#[derive(Subcommand, Debug)]
pub enum EtcdCmd {
    /// etcd snapshot files.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
}

/// `etcd snapshot ...`.
#[derive(Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Stream a snapshot from a live etcd into a file or a storage location; published
    /// only after etcd's sha256 checksum matched.
    #[command(
        after_help = "Examples:\n  lifeboat etcd snapshot save --endpoints https://127.0.0.1:2379 \\\n      --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt \\\n      --key /etc/kubernetes/pki/etcd/server.key --to /var/backups/etcd/snapshot.db\n  lifeboat etcd snapshot save --endpoints http://127.0.0.1:2379 --storage-location default"
    )]
    Save(SaveArgs),
    /// List the snapshots stored in a location (metadata/etcd/<cluster>/), with the
    /// cluster each was taken from; with --max-age/--min-size, check the newest one.
    #[command(
        after_help = "Exit codes: 0 listed (and with --max-age/--min-size: the newest snapshot passed every\ncheck); 1 a check failed (each check is printed: which one and why; -o json carries the\nverdict), or the location could not be read; 2 a flag was not understood.\n\nExamples:\n  lifeboat etcd snapshot list --storage-location default\n  # a DR validator: the newest snapshot is younger than 24 h and larger than 1 MB\n  lifeboat etcd snapshot list --storage-location default --max-age 24h --min-size 1MB\n  lifeboat etcd snapshot list --cluster-name prod-eu --max-age 30m --min-size 512KiB -o json"
    )]
    List(ListArgs),
    /// Fetch a stored snapshot into a local file (0600), streamed; published only after
    /// the snapshot's sha256 trailer matched (a gzip-compressed snapshot is decompressed on
    /// the way to check it, and its CRC checked). A damaged or truncated snapshot is
    /// refused and leaves no file.
    #[command(
        after_help = "A snapshot stored gzip-compressed (told by its magic bytes) is written as stored unless\n--decompress is given; a plain one is written as it is.\n\nExamples:\n  lifeboat etcd snapshot download etcd-snapshot-20261202080509.db --storage-location default\n  lifeboat etcd snapshot download --latest --storage-location s3 --cluster-name prod-eu -o /var/backups/etcd/latest.db\n  lifeboat etcd snapshot download before-upgrade.db.gz --decompress   # ./before-upgrade.db"
    )]
    Download(DownloadArgs),
    /// Delete one cluster's stored snapshots beyond its newest N and/or older than an age;
    /// its newest is always kept. Other clusters' snapshots in the location are neither
    /// counted nor deleted.
    #[command(
        after_help = "Examples:\n  lifeboat etcd snapshot prune --storage-location default --keep 14 --max-age 336h\n  lifeboat etcd snapshot prune --storage-location shared --cluster-name prod-eu --keep 14\n  # snapshots stored directly under metadata/etcd/ (before paths named the cluster)\n  lifeboat etcd snapshot prune --storage-location default --unnamed-cluster --max-age 720h"
    )]
    Prune(PruneArgs),
    /// Print a CronJob that saves snapshots on a control-plane node and prunes old ones.
    #[command(
        after_help = "Example:\n  lifeboat etcd snapshot schedule --storage-location default --keep 10 | kubectl apply -f -"
    )]
    Schedule(ScheduleArgs),
    /// Hash, revision, total keys and size, as `etcdctl snapshot status` reports them.
    #[command(
        after_help = "Example:\n  lifeboat etcd snapshot status /var/backups/etcd/snapshot.db -o json"
    )]
    Status(StatusArgs),
    /// Turn a snapshot into the data directory of a new etcd member (what `etcdctl
    /// snapshot restore` writes for etcd 3.4): membership rewritten, consistent index reset,
    /// a raft snapshot and a WAL with the new members. Refuses a snapshot that fails
    /// verify (unless --skip-hash-check) and a data directory that is not empty. The
    /// snapshot is a local file, or with --storage-location a stored one (NAME or
    /// --latest), streamed and checked before anything is written to the data directory;
    /// gzip-compressed snapshots (told by their magic bytes) are read as well.
    #[command(
        after_help = "A stored or gzip-compressed snapshot is first written, decompressed, to a private (0600)\ntemporary file next to the data directory (it needs that much free space there) and removed\nafterwards.\n\nExamples:\n  # one member, then start etcd with the same --name and --data-dir\n  lifeboat etcd snapshot restore snapshot.db --data-dir /var/lib/etcd-restored \\\n      --name m1 --initial-cluster m1=https://10.0.0.1:2380 \\\n      --initial-advertise-peer-urls https://10.0.0.1:2380\n  # three members: run once per member, each with its own --name and peer URL\n  lifeboat etcd snapshot restore snapshot.db --data-dir /var/lib/etcd-restored --name m2 \\\n      --initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380 \\\n      --initial-advertise-peer-urls https://10.0.0.2:2380 --initial-cluster-token restored-1\n  # the newest snapshot stored in a location (of its only cluster, or --cluster-name)\n  lifeboat etcd snapshot restore --storage-location default --latest --data-dir /var/lib/etcd-restored\n  lifeboat etcd snapshot restore snapshot.db.gz --data-dir /var/lib/etcd-restored"
    )]
    Restore(RestoreArgs),
    /// Check the sha256 trailer and walk the whole bbolt tree; exit 1 with the reason when
    /// the file is truncated, damaged or not an etcd snapshot.
    Verify(VerifyArgs),
}

/// `etcd snapshot save`.
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// etcd client URLs, tried in order.
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// CA bundle that signed etcd's serving certificate.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate for mTLS.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client key for mTLS.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The file to write.
    #[arg(long, required_unless_present = "storage_location")]
    pub to: Option<PathBuf>,
    /// Upload to this storage location (under metadata/etcd/) instead of (or as well as) --to.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Object name in the location (default: etcd-snapshot-<UTC timestamp>.db).
    #[arg(long)]
    pub name: Option<String>,
    /// The cluster the snapshot is stored under (metadata/etcd/<cluster>/), so that
    /// clusters sharing a location never prune each other's snapshots. Default: etcd's
    /// cluster id (16 hex digits, as `etcdctl member list` prints it).
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// After storing, delete this cluster's older snapshots in the location, keeping the
    /// newest N (the one just stored included); as `prune --keep N --confirm`.
    #[arg(long, requires = "storage_location")]
    pub keep: Option<usize>,
}

/// `etcd snapshot list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// The storage location.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Only this cluster's snapshots (needed with --max-age/--min-size when the location
    /// holds several clusters' snapshots).
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Fail (exit 1) unless the newest snapshot was stored at most this long ago (a Go
    /// duration: 24h, 30m, 1h30m).
    #[arg(long)]
    pub max_age: Option<GoDuration>,
    /// Fail (exit 1) unless the newest snapshot is at least this big: 1MB, 512KB (powers
    /// of 1000), 1MiB, 512KiB (powers of 1024), or bytes.
    #[arg(long, value_parser = parse_size)]
    pub min_size: Option<ByteSize>,
    /// Output format: table, json, yaml (with checks: {snapshots, verdict}).
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

fn parse_size(s: &str) -> Result<ByteSize, String> {
    s.parse()
        .map_err(|e: lifeboat_types::api::size::SizeError| e.to_string())
}

/// `etcd snapshot download`.
#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// The stored snapshot's name (as `etcd snapshot list` shows it).
    #[arg(required_unless_present = "latest")]
    pub name: Option<String>,
    /// The newest stored snapshot (of --cluster-name, or of the only cluster).
    #[arg(long, conflicts_with = "name")]
    pub latest: bool,
    /// The storage location (default: the default location).
    #[arg(long)]
    pub storage_location: Option<String>,
    /// The cluster the snapshot was stored under, when several clusters' are in the location.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// The file to write (default: ./NAME, without .gz when decompressing).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Write a gzip-compressed snapshot decompressed (a plain one is written as it is).
    #[arg(long)]
    pub decompress: bool,
}

/// `etcd snapshot prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// The storage location.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Keep this many newest snapshots.
    #[arg(long)]
    pub keep: Option<usize>,
    /// Delete snapshots older than this (e.g. 168h).
    #[arg(long)]
    pub max_age: Option<String>,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The cluster whose snapshots are counted and pruned (as `save --cluster-name`, or
    /// etcd's cluster id). Needed when the location holds several clusters' snapshots.
    #[arg(long, conflicts_with = "unnamed_cluster")]
    pub cluster_name: Option<String>,
    /// Prune the snapshots stored directly under metadata/etcd/, before paths named the
    /// cluster (they are never counted otherwise).
    #[arg(long)]
    pub unnamed_cluster: bool,
    #[command(flatten)]
    pub confirm: ConfirmArg,
}

/// `etcd snapshot schedule`.
#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// Cron expression.
    #[arg(long, default_value = "0 */6 * * *")]
    pub schedule: String,
    /// etcd client URL as seen from the node.
    #[arg(long, default_value = "https://127.0.0.1:2379")]
    pub endpoints: String,
    /// CA path on the node.
    #[arg(long, default_value = "/etc/kubernetes/pki/etcd/ca.crt")]
    pub cacert: String,
    /// Client certificate path on the node.
    #[arg(
        long,
        default_value = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
    )]
    pub cert: String,
    /// Client key path on the node.
    #[arg(
        long,
        default_value = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
    )]
    pub key: String,
    /// Storage location (name from `lifeboat location get`, or URL).
    #[arg(long, default_value = "default")]
    pub storage_location: String,
    /// Snapshots to keep (of this cluster).
    #[arg(long, default_value_t = 10)]
    pub keep: usize,
    /// The cluster the job stores its snapshots under and prunes (needed when clusters
    /// share the location; default: etcd's cluster id).
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// lifeboat's container image.
    #[arg(long, default_value = "lifeboat:latest")]
    pub image: String,
    /// Namespace of the CronJob (with lifeboat installed in the kube context: the
    /// server's namespace, and the job uses its ServiceAccount and location).
    #[arg(long, default_value = "kube-system")]
    pub job_namespace: String,
    /// CronJob API version (default: batch/v1 when the cluster serves it, else batch/v1beta1).
    #[arg(long)]
    pub api_version: Option<String>,
    /// Output format: yaml or json.
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: Output,
}

/// `etcd snapshot status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Output format: table or json.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

/// `etcd snapshot restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot file (plain or gzip-compressed); with --storage-location, the stored
    /// snapshot's name (as `etcd snapshot list` shows it).
    #[arg(value_name = "FILE|NAME", required_unless_present = "latest")]
    pub file: Option<String>,
    /// Restore from this storage location (NAME or --latest) instead of a local file.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// With --storage-location: its newest snapshot (of --cluster-name, or of the only
    /// cluster).
    #[arg(long, conflicts_with = "file", requires = "storage_location")]
    pub latest: bool,
    /// With --storage-location: the cluster the snapshot was stored under, when several
    /// clusters' are in the location.
    #[arg(long, requires = "storage_location")]
    pub cluster_name: Option<String>,
    /// Data directory to create (or an empty existing one). Default: <name>.etcd.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Separate WAL directory (default: <data-dir>/member/wal).
    #[arg(long)]
    pub wal_dir: Option<PathBuf>,
    /// This member's name.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Every member of the new cluster: NAME=PEER_URL[,NAME=PEER_URL...].
    #[arg(long, default_value = "default=http://localhost:2380")]
    pub initial_cluster: String,
    /// Token the new member and cluster ids derive from; use a new one per restored
    /// cluster so it can never join the old one.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// This member's peer URLs (as in --initial-cluster).
    #[arg(long, default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,
    /// Accept a file without (or with a wrong) sha256 trailer, e.g. a copied member db.
    #[arg(long)]
    pub skip_hash_check: bool,
    /// Output format: table or json.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

/// `etcd snapshot verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Accept a file without (or with a wrong) sha256 trailer, e.g. a copied member db.
    #[arg(long)]
    pub skip_hash_check: bool,
}

/// `etcd ...`.
pub async fn run(cli: &Cli, cmd: &EtcdCmd) -> Result<Exit> {
    let EtcdCmd::Snapshot(cmd) = cmd;
    match cmd {
        SnapshotCmd::Save(a) => save_cmd(cli, a).await,
        SnapshotCmd::List(a) => list(a).await,
        SnapshotCmd::Download(a) => download(a).await,
        SnapshotCmd::Prune(a) => prune(a).await,
        SnapshotCmd::Schedule(a) => schedule(cli, a).await,
        SnapshotCmd::Status(a) => status(a),
        SnapshotCmd::Restore(a) => restore_cmd(a).await,
        SnapshotCmd::Verify(a) => verify(a),
    }
}

/// SI units, as etcdctl prints sizes ("2.1 MB").
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// Where `save` stores a snapshot: under the cluster named by `--cluster-name`, else under
/// etcd's cluster id, with the name of `--name` or the default one. Pure.
fn snapshot_object(
    cluster_name: Option<&str>,
    cluster_id: Option<u64>,
    name: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, String)> {
    let cluster = match (cluster_name, cluster_id) {
        (Some(c), _) => c.to_owned(),
        (None, Some(id)) => layout::etcd_cluster_id_name(id),
        (None, None) => bail!(
            "etcd sent no cluster id with the snapshot; pass --cluster-name to say which cluster it is"
        ),
    };
    validate_name("etcd cluster", &cluster)?;
    let object = name
        .map(str::to_owned)
        .unwrap_or_else(|| layout::etcd_snapshot_name(now));
    validate_name("etcd snapshot", &object)?;
    Ok((cluster, object))
}

/// The store of `--storage-location` for the verbs a CronJob runs: through the cluster's
/// lifeboat server (its location, credentials from its Secret) when lifeboat is installed
/// in the kube context or the job's pod, else this machine's config.
async fn etcd_store(cli: &Cli, location: &str) -> Result<lifeboat_engine::storage::Store> {
    Ok(match mode(cli, Some(location), false).await? {
        Mode::Cluster(s) => s.location(Some(location)).await?.0,
        Mode::Local => open_store(Some(location))?,
    })
}

async fn save_cmd(cli: &Cli, a: &SaveArgs) -> Result<Exit> {
    let ep = save::EtcdEndpoint {
        endpoints: a.endpoints.clone(),
        cacert: a.cacert.clone(),
        cert: a.cert.clone(),
        key: a.key.clone(),
    };
    let store = match a.storage_location.as_deref() {
        Some(l) => Some(etcd_store(cli, l).await?),
        None => None,
    };
    let tmp = tempfile::tempdir()?;
    let file =
        a.to.clone()
            .unwrap_or_else(|| tmp.path().join("snapshot.db"));
    if let Some(c) = &a.cluster_name {
        validate_name("etcd cluster", c)?;
    }
    if let Some(n) = &a.name {
        validate_name("etcd snapshot", n)?;
    }
    let bar = byte_bar();
    let saved = save::save(&ep, &file, &|done, total| {
        if let Some(pb) = &bar {
            pb.set_length(total);
            pb.set_position(done);
        }
    })
    .await?;
    let size = saved.size;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let st = snapshot::verify(&file, false)?;
    match &a.to {
        Some(t) => println!(
            "Snapshot saved: {} ({size} bytes, revision {}, {} keys; sha256 checked).",
            t.display(),
            st.revision,
            st.total_key
        ),
        None => println!(
            "Snapshot taken ({size} bytes, revision {}, {} keys; sha256 checked).",
            st.revision, st.total_key
        ),
    }
    if let Some(store) = store {
        let (cluster, object) = snapshot_object(
            a.cluster_name.as_deref(),
            saved.cluster_id,
            a.name.as_deref(),
            chrono::Utc::now(),
        )?;
        let path = store.etcd_cluster_snapshot(&cluster, &object);
        if store.exists(&path).await? {
            bail!(
                "{path} already exists in storage location {:?}; choose another --name",
                store.name()
            );
        }
        // Streamed in parts: a snapshot can be gigabytes. Created conditionally: if
        // another writer stored the name meanwhile, this fails and overwrites nothing.
        store.upload_file(&file, &path).await?;
        println!(
            "Uploaded to storage location {:?} as {path} (cluster {cluster}).",
            store.name()
        );
        if let Some(keep) = a.keep {
            let snaps = store.etcd_snapshots().await?;
            prune_cluster(
                &store,
                &snaps,
                Some(&cluster),
                Some(keep),
                None,
                false,
                true,
            )
            .await?;
        }
    }
    Ok(Exit::Ok)
}

fn print_snapshots(snaps: &[StoredSnapshot]) {
    let rows: Vec<Vec<String>> = snaps
        .iter()
        .map(|s| {
            vec![
                s.cluster.clone().unwrap_or_else(|| "-".into()),
                s.name.clone(),
                s.taken.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                human_bytes(s.size),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["CLUSTER", "NAME", "TAKEN", "SIZE"], &rows)
    );
}

/// `list -o json` with --max-age/--min-size: the snapshots and the verdict on the newest.
#[derive(serde::Serialize)]
struct Checked<'a> {
    snapshots: &'a [StoredSnapshot],
    verdict: &'a Verdict,
}

async fn list(a: &ListArgs) -> Result<Exit> {
    let store = open_store(a.storage_location.as_deref())?;
    let mut snaps = store.etcd_snapshots().await?;
    if let Some(c) = &a.cluster_name {
        snaps.retain(|s| s.cluster.as_ref() == Some(c));
    }
    let want = Freshness {
        max_age: a.max_age,
        min_size: a.min_size,
    };
    if !want.is_set() {
        if !output::print_structured(&snaps, &a.output)? {
            print_snapshots(&snaps);
        }
        return Ok(Exit::Ok);
    }
    // The newest of one cluster: several clusters' snapshots are never compared.
    let newest = match pick(&snaps, a.cluster_name.as_deref(), Which::Newest) {
        Ok(s) => Some(s),
        Err(PickError::NotFound { .. }) => None,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot check the newest etcd snapshot of storage location {:?}",
                store.name()
            )));
        }
    };
    let verdict = check_newest(newest, &want, chrono::Utc::now());
    let checked = Checked {
        snapshots: &snaps,
        verdict: &verdict,
    };
    if !output::print_structured(&checked, &a.output)? {
        print_snapshots(&snaps);
        let rows: Vec<Vec<String>> = verdict
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.check.clone(),
                    if c.ok { "ok" } else { "FAILED" }.into(),
                    c.detail.clone(),
                ]
            })
            .collect();
        println!();
        print!("{}", output::table(&["CHECK", "RESULT", "DETAIL"], &rows));
    }
    let whose = a
        .cluster_name
        .as_ref()
        .or(newest.and_then(|s| s.cluster.as_ref()))
        .map(|c| format!(" of cluster {c}"))
        .unwrap_or_default();
    if verdict.ok {
        eprintln!(
            "The newest etcd snapshot{whose} in storage location {:?} passed every check.",
            store.name()
        );
    } else {
        let failed: Vec<String> = verdict
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect();
        eprintln!(
            "error: the newest etcd snapshot{whose} in storage location {:?} failed: {}",
            store.name(),
            failed.join("; ")
        );
    }
    Ok(Exit::of_check(verdict.ok))
}

/// Where stored snapshot `which` of `cluster` is: its object path and what was listed.
async fn find_stored(
    store: &Store,
    cluster: Option<&str>,
    name: Option<&str>,
) -> Result<(String, StoredSnapshot)> {
    if let Some(c) = cluster {
        validate_name("etcd cluster", c)?;
    }
    if let Some(n) = name {
        validate_name("etcd snapshot", n)?;
    }
    let snaps = store.etcd_snapshots().await?;
    let which = name.map_or(Which::Newest, Which::Named);
    let s = pick(&snaps, cluster, which)
        .with_context(|| format!("storage location {:?}", store.name()))?;
    let path = match &s.cluster {
        Some(c) => store.etcd_cluster_snapshot(c, &s.name),
        None => store.etcd_snapshot(&s.name),
    };
    Ok((path, s.clone()))
}

/// Streams stored object `path` (`size` bytes, for the progress bar) through a
/// [`Receiver`] into a private temporary file in `dir`: checked, and gone on any error.
async fn receive_stored(
    store: &Store,
    path: &str,
    size: u64,
    dir: &Path,
    form: Form,
    skip_hash: bool,
) -> Result<Received> {
    use tokio::io::AsyncReadExt;
    let mut rx = Receiver::new(dir, form, skip_hash)?;
    let reader = store.reader(path).await?;
    let mut reader = tokio_util::compat::FuturesAsyncReadCompatExt::compat(reader);
    let bar = byte_bar();
    if let Some(pb) = &bar {
        pb.set_length(size);
    }
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).await.with_context(|| {
            format!(
                "cannot read {path} from storage location {:?}",
                store.name()
            )
        })?;
        if n == 0 {
            break;
        }
        // Hashing, inflating and writing are blocking work: off the runtime's workers.
        tokio::task::block_in_place(|| rx.write_chunk(&buf[..n]))?;
        if let Some(pb) = &bar {
            pb.inc(n as u64);
        }
    }
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    Ok(tokio::task::block_in_place(|| rx.finish())?)
}

/// The directory a file is written from: its parent (`.` for a bare name).
fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Where a restore stages the snapshot it fetches or decompresses: next to the data
/// directory (the disk it restores onto), in its nearest existing ancestor.
fn staging_dir(data_dir: &Path) -> PathBuf {
    let mut dir = parent_dir(data_dir);
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_owned(),
            _ => return PathBuf::from("."),
        }
    }
    dir
}

/// `download`'s file: `-o` (a directory gets the snapshot's name in it), else `./NAME`;
/// decompressing drops a `.gz` suffix. Pure but for whether `-o` is a directory.
fn download_target(output: Option<&Path>, name: &str, decompress: bool) -> PathBuf {
    let name = if decompress {
        name.strip_suffix(".gz").unwrap_or(name)
    } else {
        name
    };
    match output {
        Some(o) if o.is_dir() => o.join(name),
        Some(o) => o.to_owned(),
        None => PathBuf::from(name),
    }
}

async fn download(a: &DownloadArgs) -> Result<Exit> {
    let store = open_store(a.storage_location.as_deref())?;
    let (path, snap) = find_stored(&store, a.cluster_name.as_deref(), a.name.as_deref()).await?;
    let out = download_target(a.output.as_deref(), &snap.name, a.decompress);
    // Checked first so that nothing is fetched in vain; the final rename checks again.
    if !a.force && out.symlink_metadata().is_ok() {
        bail!(
            "{} already exists; pass --force to replace it, or -o another file",
            out.display()
        );
    }
    let form = if a.decompress {
        Form::Decompressed
    } else {
        Form::AsStored
    };
    let refused = || {
        format!(
            "cannot download etcd snapshot {path} from storage location {:?}; nothing was written",
            store.name()
        )
    };
    let got = receive_stored(&store, &path, snap.size, &parent_dir(&out), form, false)
        .await
        .with_context(refused)?;
    // When the file is the snapshot itself, its whole tree is walked too.
    let status = if !got.gzip || a.decompress {
        Some(
            tokio::task::block_in_place(|| snapshot::verify(got.path(), false))
                .with_context(refused)?,
        )
    } else {
        None
    };
    let (gzip, bytes) = (got.gzip, got.file_bytes);
    let snapshot_bytes = got.snapshot_bytes;
    got.persist(&out, a.force)?;
    let abs = std::fs::canonicalize(&out).unwrap_or(out);
    let checked = match (status, gzip) {
        (Some(st), false) => format!(
            "sha256 trailer matches; revision {}, {} keys",
            st.revision, st.total_key
        ),
        (Some(st), true) => format!(
            "decompressed from gzip; sha256 trailer matches; revision {}, {} keys",
            st.revision, st.total_key
        ),
        (None, _) => format!(
            "gzip-compressed as stored, {snapshot_bytes} bytes decompressed; CRC and sha256 trailer match"
        ),
    };
    println!(
        "Downloaded etcd snapshot {path} from storage location {:?} to {} ({bytes} bytes; {checked}).",
        store.name(),
        abs.display()
    );
    Ok(Exit::Ok)
}

async fn prune(a: &PruneArgs) -> Result<Exit> {
    if a.keep.is_none() && a.max_age.is_none() {
        bail!("say what to keep: --keep N and/or --max-age DURATION (e.g. 168h)");
    }
    let max_age = a
        .max_age
        .as_deref()
        .map(|a| a.parse::<GoDuration>().context("--max-age"))
        .transpose()?;
    let store = open_store(a.storage_location.as_deref())?;
    let snaps = store.etcd_snapshots().await?;
    // One cluster's snapshots only: the one named, else the only one in the location.
    let cluster = match (&a.cluster_name, a.unnamed_cluster) {
        (Some(c), _) => Some(c.as_str()),
        (None, true) => None,
        (None, false) => match only_cluster(&snaps) {
            Ok(Some(c)) => Some(c),
            Ok(None) => {
                let unnamed = snaps.iter().filter(|s| s.cluster.is_none()).count();
                if unnamed > 0 {
                    println!(
                        "No snapshot names its cluster; {unnamed} snapshot(s) stored directly under metadata/etcd/ are pruned only with --unnamed-cluster."
                    );
                }
                return Ok(Exit::Ok);
            }
            Err(e) => bail!(
                "storage location {:?}: {e}: pass --cluster-name (one of them)",
                store.name()
            ),
        },
    };
    prune_cluster(
        &store,
        &snaps,
        cluster,
        a.keep,
        max_age.map(|d| d.0),
        a.dry_run,
        a.confirm.confirm,
    )
    .await?;
    Ok(Exit::Ok)
}

/// Deletes one cluster's snapshots beyond `keep` / older than `max_age` (`prunable`),
/// after confirmation (`confirmed`: given); `dry_run` only says what.
async fn prune_cluster(
    store: &lifeboat_engine::storage::Store,
    snaps: &[StoredSnapshot],
    cluster: Option<&str>,
    keep: Option<usize>,
    max_age: Option<std::time::Duration>,
    dry_run: bool,
    confirmed: bool,
) -> Result<()> {
    let path = |name: &str| match cluster {
        Some(c) => store.etcd_cluster_snapshot(c, name),
        None => store.etcd_snapshot(name),
    };
    let counted_here = snaps
        .iter()
        .filter(|s| s.cluster.as_deref() == cluster)
        .count();
    let whose = match cluster {
        Some(c) => format!("cluster {c}"),
        None => "no named cluster".to_owned(),
    };
    let doomed = prunable(snaps, cluster, keep, max_age, chrono::Utc::now());
    if !dry_run
        && !doomed.is_empty()
        && !confirm(
            &format!(
                "delete {} of {whose} from storage location {:?}",
                counted("etcd snapshot", &doomed),
                store.name()
            ),
            "",
            confirmed,
        )?
    {
        return Ok(());
    }
    for n in &doomed {
        if dry_run {
            println!("Would delete {n}");
        } else {
            store.delete(&path(n)).await?;
            println!("Deleted {n}");
        }
    }
    println!(
        "{} of {} snapshots of {whose} {}.",
        doomed.len(),
        counted_here,
        if dry_run {
            "would be deleted"
        } else {
            "deleted"
        }
    );
    Ok(())
}

async fn schedule(cli: &Cli, a: &ScheduleArgs) -> Result<Exit> {
    if let Some(c) = &a.cluster_name {
        validate_name("etcd cluster", c)?;
    }
    let api_version = match &a.api_version {
        Some(v) => v.clone(),
        None => cronjob_api_version(cli).await.context(
            "cannot ask the cluster which CronJob version it serves; pass --api-version",
        )?,
    };
    let storage_location = &a.storage_location;
    let is_url = storage_location.contains("://");
    let mut items = Vec::new();
    // With lifeboat installed, the job runs in the server's namespace with its
    // ServiceAccount and stores through the server's location (credentials from its
    // Secret): nothing of this machine's config is copied into the cluster.
    let server_ns = match mode(cli, Some(storage_location), false).await? {
        Mode::Cluster(s) => Some(s.ns.clone()),
        Mode::Local => None,
    };
    let config_map = if is_url || server_ns.is_some() {
        None
    } else {
        let loc = resolve_location(Some(storage_location))?;
        if loc.spec.provider == "file" {
            eprintln!(
                "warning: location {storage_location:?} is a local directory; inside the pod it is the container's own disk"
            );
        }
        if let Some(c) = &loc.spec.credential {
            eprintln!(
                "warning: location {storage_location:?} reads credentials from {}: mount that file into the pod (e.g. from a Secret) at the same path",
                c.name
            );
        }
        let cm_name = "lifeboat-locations".to_string();
        items.push(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cm_name, "namespace": a.job_namespace},
            "data": {"locations.yaml": format!("---\n{}", serde_yaml_ng::to_string(&loc)?)}
        }));
        Some(cm_name)
    };
    items.push(lifeboat_types::manifests::etcd_schedule::cronjob(
        &lifeboat_types::manifests::etcd_schedule::EtcdSchedule {
            name: "lifeboat-etcd-snapshot".into(),
            namespace: server_ns.clone().unwrap_or_else(|| a.job_namespace.clone()),
            schedule: a.schedule.clone(),
            api_version,
            image: a.image.clone(),
            endpoints: a.endpoints.clone(),
            cacert: a.cacert.clone(),
            cert: a.cert.clone(),
            key: a.key.clone(),
            storage_location: storage_location.clone(),
            keep: a.keep,
            cluster_name: a.cluster_name.clone(),
            config_map,
            through_server: server_ns.is_some(),
        },
    ));
    let doc = if items.len() == 1 {
        items.remove(0)
    } else {
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
    };
    if !output::print_structured(&doc, &a.output)? {
        print!("{}", serde_yaml_ng::to_string(&doc)?);
    }
    Ok(Exit::Ok)
}

fn status(a: &StatusArgs) -> Result<Exit> {
    let st = snapshot::status(&a.file)?;
    if !output::print_structured(&st, &a.output)? {
        print!(
            "{}",
            output::table(
                &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
                &[vec![
                    format!("{:x}", st.hash),
                    st.revision.to_string(),
                    st.total_key.to_string(),
                    human_bytes(st.total_size)
                ]],
            )
        );
    }
    Ok(Exit::Ok)
}

/// Whether a local file starts as gzip does (a file that cannot be read is left to the
/// restore to report).
fn local_is_gzip(file: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| is_gzip(&head))
}

/// Decompresses local gzip file `file` into a checked temporary file in `dir`.
fn receive_local(file: &Path, dir: &Path, skip_hash: bool) -> Result<Received> {
    use std::io::Read;
    let mut rx = Receiver::new(dir, Form::Decompressed, skip_hash)?;
    let mut f = std::fs::File::open(file)
        .with_context(|| format!("cannot read snapshot {}", file.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read snapshot {}", file.display()))?;
        if n == 0 {
            break;
        }
        rx.write_chunk(&buf[..n])?;
    }
    Ok(rx.finish()?)
}

async fn restore_cmd(a: &RestoreArgs) -> Result<Exit> {
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", a.name)));
    let mut cfg = restore::RestoreConfig {
        snapshot: PathBuf::from(a.file.clone().unwrap_or_default()),
        data_dir: data_dir.clone(),
        wal_dir: a.wal_dir.clone(),
        name: a.name.clone(),
        initial_cluster: a.initial_cluster.clone(),
        initial_cluster_token: a.initial_cluster_token.clone(),
        initial_advertise_peer_urls: a.initial_advertise_peer_urls.clone(),
        skip_hash_check: a.skip_hash_check,
    };
    // Settings and target directories first: nothing is fetched or decompressed for a
    // restore that would be refused.
    restore::check_targets(&cfg)?;
    let staging = staging_dir(&data_dir);
    // A stored or gzip-compressed snapshot is streamed into a checked temporary file,
    // removed when `fetched` is dropped; the restore then reads it as a local file.
    let (fetched, source) = match &a.storage_location {
        Some(loc) => {
            let store = open_store(Some(loc))?;
            let (path, snap) =
                find_stored(&store, a.cluster_name.as_deref(), a.file.as_deref()).await?;
            let got = receive_stored(
                &store,
                &path,
                snap.size,
                &staging,
                Form::Decompressed,
                a.skip_hash_check,
            )
            .await
            .with_context(|| {
                format!(
                    "refusing to restore etcd snapshot {path} from storage location {:?}; nothing was written to {}",
                    store.name(),
                    data_dir.display()
                )
            })?;
            (
                Some(got),
                format!("{path} of storage location {:?}", store.name()),
            )
        }
        None if local_is_gzip(&cfg.snapshot) => {
            let file = cfg.snapshot.clone();
            let got =
                tokio::task::block_in_place(|| receive_local(&file, &staging, a.skip_hash_check))
                    .with_context(|| {
                    format!(
                        "refusing to restore {}; nothing was written to {}",
                        file.display(),
                        data_dir.display()
                    )
                })?;
            (Some(got), file.display().to_string())
        }
        None => (None, cfg.snapshot.display().to_string()),
    };
    if let Some(f) = &fetched {
        cfg.snapshot = f.path().to_owned();
    }
    let bar = byte_bar();
    let done = tokio::task::block_in_place(|| {
        restore::restore(&cfg, &|done, total| {
            if let Some(pb) = &bar {
                pb.set_length(total);
                pb.set_position(done);
            }
        })
    });
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    // The temporary file's name means nothing to the user: name where it came from.
    let r = match fetched {
        Some(_) => done.with_context(|| format!("cannot restore {source}"))?,
        None => done?,
    };
    if !output::print_structured(&r, &a.output)? {
        let m = &r.membership;
        println!(
            "Restored {source} (revision {}, {} keys) into {}.",
            r.snapshot.revision,
            r.snapshot.total_key,
            r.data_dir.display()
        );
        println!("Cluster ID: {:x}", m.cluster_id);
        let rows: Vec<Vec<String>> = m
            .members
            .iter()
            .map(|x| {
                vec![
                    format!("{:x}", x.id),
                    x.name.clone(),
                    x.peer_urls.join(","),
                    if x.id == m.local_id { "yes" } else { "" }.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["MEMBER ID", "NAME", "PEER URLS", "THIS DIRECTORY"], &rows)
        );
        println!(
            "Start etcd with --name {} --data-dir {}{} (the membership comes from the data directory; --initial-cluster is not read again).",
            cfg.name,
            r.data_dir.display(),
            cfg.wal_dir
                .as_ref()
                .map(|w| format!(" --wal-dir {}", w.display()))
                .unwrap_or_default()
        );
    }
    Ok(Exit::Ok)
}

fn verify(a: &VerifyArgs) -> Result<Exit> {
    let st = snapshot::verify(&a.file, a.skip_hash_check)?;
    println!(
        "Snapshot {} is intact: {} keys up to revision {}, {}{}.",
        a.file.display(),
        st.total_key,
        st.revision,
        human_bytes(st.total_size),
        if a.skip_hash_check {
            " (sha256 trailer not checked)"
        } else {
            ", sha256 trailer matches"
        }
    );
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-02T08:05:09Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    /// Issue 11 item 2: a stored snapshot's path names its cluster.
    #[rstest]
    #[case::etcd_s_id(None, Some(0xcdf8_1819_4e47_a88d), None, ("cdf818194e47a88d", "etcd-snapshot-20261202080509.db"))]
    #[case::named_cluster(Some("prod-eu"), Some(7), None, ("prod-eu", "etcd-snapshot-20261202080509.db"))]
    #[case::named_object(None, Some(7), Some("before-upgrade.db"), ("0000000000000007", "before-upgrade.db"))]
    fn a_snapshot_is_stored_under_its_cluster(
        #[case] cluster_name: Option<&str>,
        #[case] cluster_id: Option<u64>,
        #[case] name: Option<&str>,
        #[case] want: (&str, &str),
    ) {
        let (cluster, object) = snapshot_object(cluster_name, cluster_id, name, at()).unwrap();
        assert_eq!((cluster.as_str(), object.as_str()), want);
    }

    #[rstest]
    #[case::by_name(None, "s.db", false, "s.db")]
    #[case::gzip_kept(None, "s.db.gz", false, "s.db.gz")]
    #[case::gzip_decompressed(None, "s.db.gz", true, "s.db")]
    #[case::plain_decompressed(None, "s.db", true, "s.db")]
    #[case::named_file(Some("/x/latest.db"), "s.db.gz", true, "/x/latest.db")]
    fn a_download_is_written_to(
        #[case] output: Option<&str>,
        #[case] name: &str,
        #[case] decompress: bool,
        #[case] want: &str,
    ) {
        assert_eq!(
            download_target(output.map(Path::new), name, decompress),
            PathBuf::from(want)
        );
    }

    #[test]
    fn a_download_into_a_directory_keeps_the_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            download_target(Some(dir.path()), "s.db.gz", true),
            dir.path().join("s.db")
        );
    }

    #[test]
    fn a_restore_stages_next_to_its_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(staging_dir(&d.join("m1.etcd")), d);
        assert_eq!(staging_dir(&d.join("not/yet/m1.etcd")), d);
        assert_eq!(staging_dir(Path::new("m1.etcd")), PathBuf::from("."));
    }

    fn parse(args: &[&str]) -> SnapshotCmd {
        match crate::cli::parse_for_test(&["etcd", "snapshot"], args) {
            crate::cli::Command::Etcd(EtcdCmd::Snapshot(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    fn refused(args: &[&str]) -> String {
        let argv = ["lifeboat", "etcd", "snapshot"].iter().chain(args).copied();
        <Cli as clap::Parser>::try_parse_from(argv)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn list_checks_parse_sizes_and_durations() {
        let SnapshotCmd::List(l) = parse(&["list", "--max-age", "24h", "--min-size", "1MB"]) else {
            panic!()
        };
        assert_eq!(l.max_age, Some(GoDuration::hours(24)));
        assert_eq!(l.min_size, Some(ByteSize(1_000_000)));
        let e = refused(&["list", "--min-size", "1XB"]);
        assert!(e.contains("invalid size \"1XB\""), "{e}");
        let e = refused(&["list", "--max-age", "1d"]);
        assert!(e.contains("invalid duration \"1d\""), "{e}");
    }

    #[test]
    fn restore_takes_a_file_or_a_stored_snapshot() {
        let SnapshotCmd::Restore(r) = parse(&["restore", "s.db.gz"]) else {
            panic!()
        };
        assert_eq!(r.file.as_deref(), Some("s.db.gz"));
        let SnapshotCmd::Restore(r) =
            parse(&["restore", "--storage-location", "default", "--latest"])
        else {
            panic!()
        };
        assert!(r.latest && r.file.is_none());
        assert!(refused(&["restore", "--latest"]).contains("--storage-location"));
        assert!(
            refused(&["restore", "--storage-location", "d", "--latest", "x.db"])
                .contains("cannot be used with")
        );
        assert!(refused(&["restore", "--storage-location", "d"]).contains("required"));
        let SnapshotCmd::Download(d) = parse(&["download", "--latest", "-o", "x.db"]) else {
            panic!()
        };
        assert!(d.latest && d.output == Some(PathBuf::from("x.db")));
        assert!(refused(&["download"]).contains("required"));
    }

    #[rstest]
    #[case::no_cluster_id(None, None, None, "pass --cluster-name")]
    #[case::cluster_name_with_a_slash(Some("a/b"), None, None, "invalid etcd cluster name \"a/b\"")]
    #[case::object_leaving_the_directory(
        Some("c"),
        None,
        Some("../x.db"),
        "invalid etcd snapshot name \"../x.db\""
    )]
    fn a_snapshot_path_is_refused(
        #[case] cluster_name: Option<&str>,
        #[case] cluster_id: Option<u64>,
        #[case] name: Option<&str>,
        #[case] want: &str,
    ) {
        let e = snapshot_object(cluster_name, cluster_id, name, at()).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
}
