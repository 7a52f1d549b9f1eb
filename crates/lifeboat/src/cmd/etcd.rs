//! `etcd snapshot save|list|prune|schedule|status|restore|verify`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lifeboat_engine::storage::Store;
use lifeboat_etcd::{restore, save, snapshot};
use lifeboat_types::GoDuration;
use lifeboat_types::api::names::validate_name;
use lifeboat_types::format::layout;
use lifeboat_types::rules::retention::{StoredSnapshot, only_cluster, prunable};

use crate::cli::{Cli, ConfirmArg, Output};
use crate::common::{byte_bar, cronjob_api_version, open_store, resolve_location};
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
    /// cluster each was taken from.
    List(ListArgs),
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
    /// verify (unless --skip-hash-check) and a data directory that is not empty.
    #[command(
        after_help = "Examples:\n  # one member, then start etcd with the same --name and --data-dir\n  lifeboat etcd snapshot restore snapshot.db --data-dir /var/lib/etcd-restored \\\n      --name m1 --initial-cluster m1=https://10.0.0.1:2380 \\\n      --initial-advertise-peer-urls https://10.0.0.1:2380\n  # three members: run once per member, each with its own --name and peer URL\n  lifeboat etcd snapshot restore snapshot.db --data-dir /var/lib/etcd-restored --name m2 \\\n      --initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380 \\\n      --initial-advertise-peer-urls https://10.0.0.2:2380 --initial-cluster-token restored-1"
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
}

/// `etcd snapshot list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// The storage location.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Only this cluster's snapshots.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Output format: table, json, yaml.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
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
    /// Namespace of the CronJob.
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
    /// The snapshot file.
    pub file: PathBuf,
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
        SnapshotCmd::Save(a) => save_cmd(a).await,
        SnapshotCmd::List(a) => list(a).await,
        SnapshotCmd::Prune(a) => prune(a).await,
        SnapshotCmd::Schedule(a) => schedule(cli, a).await,
        SnapshotCmd::Status(a) => status(a),
        SnapshotCmd::Restore(a) => restore_cmd(a),
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

/// The etcd snapshots stored in a location: each cluster's under metadata/etcd/<cluster>/,
/// and those stored directly under metadata/etcd/ before paths named the cluster.
async fn stored_snapshots(store: &Store) -> Result<Vec<StoredSnapshot>> {
    let mut dirs = vec![(None, store.etcd_snapshots_dir())];
    for cluster in store.etcd_clusters().await? {
        let dir = store.etcd_cluster_snapshots_dir(&cluster);
        dirs.push((Some(cluster), dir));
    }
    let mut out = Vec::new();
    for (cluster, dir) in dirs {
        for (name, size, modified) in store.list_files(&dir).await? {
            out.push(StoredSnapshot {
                cluster: cluster.clone(),
                name,
                size,
                taken: modified
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .unwrap_or_default(),
            });
        }
    }
    Ok(out)
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

async fn save_cmd(a: &SaveArgs) -> Result<Exit> {
    let ep = save::EtcdEndpoint {
        endpoints: a.endpoints.clone(),
        cacert: a.cacert.clone(),
        cert: a.cert.clone(),
        key: a.key.clone(),
    };
    let store = a
        .storage_location
        .as_deref()
        .map(|l| open_store(Some(l)))
        .transpose()?;
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
    }
    Ok(Exit::Ok)
}

async fn list(a: &ListArgs) -> Result<Exit> {
    let store = open_store(a.storage_location.as_deref())?;
    let mut snaps = stored_snapshots(&store).await?;
    if let Some(c) = &a.cluster_name {
        snaps.retain(|s| s.cluster.as_ref() == Some(c));
    }
    if !output::print_structured(&snaps, &a.output)? {
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
    let snaps = stored_snapshots(&store).await?;
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
    let doomed = prunable(
        &snaps,
        cluster,
        a.keep,
        max_age.map(|d| d.0),
        chrono::Utc::now(),
    );
    if !a.dry_run
        && !doomed.is_empty()
        && !confirm(
            &format!(
                "delete {} of {whose} from storage location {:?}",
                counted("etcd snapshot", &doomed),
                store.name()
            ),
            "",
            a.confirm.confirm,
        )?
    {
        return Ok(Exit::Ok);
    }
    for n in &doomed {
        if a.dry_run {
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
        if a.dry_run {
            "would be deleted"
        } else {
            "deleted"
        }
    );
    Ok(Exit::Ok)
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
    let config_map = if is_url {
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
            namespace: a.job_namespace.clone(),
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

fn restore_cmd(a: &RestoreArgs) -> Result<Exit> {
    let cfg = restore::RestoreConfig {
        snapshot: a.file.clone(),
        data_dir: a
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", a.name))),
        wal_dir: a.wal_dir.clone(),
        name: a.name.clone(),
        initial_cluster: a.initial_cluster.clone(),
        initial_cluster_token: a.initial_cluster_token.clone(),
        initial_advertise_peer_urls: a.initial_advertise_peer_urls.clone(),
        skip_hash_check: a.skip_hash_check,
    };
    let bar = byte_bar();
    let done = restore::restore(&cfg, &|done, total| {
        if let Some(pb) = &bar {
            pb.set_length(total);
            pb.set_position(done);
        }
    });
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let r = done?;
    if !output::print_structured(&r, &a.output)? {
        let m = &r.membership;
        println!(
            "Restored {} (revision {}, {} keys) into {}.",
            a.file.display(),
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
