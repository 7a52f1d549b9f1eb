//! `lifeboat`: a thin binary over lifeboat-engine. Parses the command line, picks the
//! cluster and the storage location, runs the command, maps outcomes to exit codes.

mod cli;
mod config;
mod output;
mod restore_cmd;
mod server_cmd;
mod verify_cmd;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{CommandFactory, Parser};
use config::{Config, default_path};
use lifeboat_engine::backup::{BackupOptions, Progress, run_backup};
use lifeboat_engine::catalog;
use lifeboat_engine::cluster::{
    Cluster, ClusterOptions, dev_cluster_kubeconfig, kubeconfig_configured,
};
use lifeboat_engine::storage::{Store, location_from_url};
use lifeboat_types::GoDuration;
use lifeboat_types::api::names::validate_name;
use lifeboat_types::api::selector::Selector;
use lifeboat_types::api::velero::{
    Backup, BackupPhase, BackupSpec, BackupStorageLocation, BackupStorageLocationSpec,
    LabelSelector, ObjectStorageLocation, SecretKeySelector,
};
use lifeboat_types::format::document::{VeleroDocument, parse_documents};

use cli::{
    BackupCmd, BackupCreate, BackupGet, Cli, Command, CreateCmd, GetCmd, LocationCmd, Output,
};

/// Exit code of a backup that ended PartiallyFailed.
const EXIT_PARTIAL: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its work by default; CLI commands only their warnings.
    let server = matches!(cli.command, Command::Server(_));
    let filter = match cli.verbose {
        0 if server => "info,kube_runtime=warn",
        0 => "warn",
        1 => "info,lifeboat=info",
        _ => "debug,hyper=info,rustls=info,tower=info,h2=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// already carries (many of lifeboat's errors quote their source next to the fix).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Backup { cmd } => backup_cmd(&cli, cmd).await,
        Command::Create {
            cmd: CreateCmd::Backup(c),
        } => backup_create(&cli, c).await,
        Command::Get {
            cmd: GetCmd::Backups(g),
        } => backup_get(g).await,
        Command::Get {
            cmd: GetCmd::Restores(g),
        } => restore_cmd::restore_get(g).await,
        Command::Create {
            cmd: CreateCmd::Restore(c),
        } => restore_cmd::restore_create(&cli, c).await,
        Command::Restore { cmd } => restore_cmd::restore_cmd(&cli, cmd).await,
        Command::Location { cmd } => location_cmd(cmd).await,
        Command::Etcd {
            cmd: cli::EtcdCmd::Snapshot { cmd },
        } => etcd_snapshot(&cli, cmd).await,
        Command::Apply {
            file,
            storage_location,
            server,
        } => apply(&cli, file, storage_location.as_deref(), *server).await,
        Command::Completion { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "lifeboat",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Install(a) => server_cmd::install(&cli, a).await,
        Command::Uninstall { force } => server_cmd::uninstall(&cli, *force).await,
        Command::Server(a) => server_cmd::server(&cli, a).await,
        Command::Schedule { cmd } => server_cmd::schedule(&cli, cmd).await,
        Command::Version => {
            println!("lifeboat {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    }
}

fn load_config() -> Result<Config> {
    Ok(Config::load(&default_path())?)
}

/// Resolves `--storage-location` (a name, or a URL) to a location.
fn resolve_location(arg: Option<&str>) -> Result<BackupStorageLocation> {
    match arg {
        Some(s) if s.contains("://") || s.starts_with('/') => Ok(location_from_url(s)?),
        other => Ok(load_config()?.resolve(other)?),
    }
}

pub(crate) fn open_store(arg: Option<&str>) -> Result<Store> {
    Ok(Store::open(&resolve_location(arg)?)?)
}

/// The cluster: --kubeconfig/--kubecontext, else the usual kubeconfig, else the local dev
/// cluster started by scripts/dev-cluster.sh.
pub(crate) async fn connect(cli: &Cli) -> Result<Cluster> {
    Ok(Cluster::connect(&cluster_options(cli)?).await?)
}

/// The kube config of `connect`, for the server's own clients.
pub(crate) async fn kube_config(cli: &Cli) -> Result<kube::Config> {
    Ok(Cluster::load_config(&cluster_options(cli)?).await?)
}

fn cluster_options(cli: &Cli) -> Result<ClusterOptions> {
    let mut opts = ClusterOptions {
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.kubecontext.clone(),
    };
    if opts.kubeconfig.is_none()
        && !kubeconfig_configured()
        && std::env::var_os("KUBERNETES_SERVICE_HOST").is_none()
    {
        match dev_cluster_kubeconfig() {
            Some(p) => {
                tracing::info!(
                    "no kubeconfig configured; using the local dev cluster at {}",
                    p.display()
                );
                opts.kubeconfig = Some(p);
            }
            None => bail!(
                "no cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or start the local dev cluster with scripts/dev-cluster.sh up"
            ),
        }
    }
    Ok(opts)
}

pub(crate) fn parse_kv(items: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| anyhow!("invalid {what} {s:?}: expected key=value"))
        })
        .collect()
}

fn parse_ordered(s: &str) -> Result<BTreeMap<String, String>> {
    s.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    anyhow!("invalid --ordered-resources {p:?}: expected resource=ns/name,ns/name;resource2=...")
                })
        })
        .collect()
}

fn parse_duration(flag: &str, s: &Option<String>) -> Result<Option<GoDuration>> {
    s.as_deref()
        .map(|v| v.parse::<GoDuration>().with_context(|| format!("--{flag}")))
        .transpose()
}

/// `--selector` and `--or-selector "a=b or c=d"`, as label selectors.
pub(crate) fn parse_selectors(
    selector: Option<&str>,
    or_selector: Option<&str>,
) -> Result<(Option<LabelSelector>, Vec<LabelSelector>)> {
    let one = selector
        .map(|s| Selector::parse(s).map(|s| s.to_label_selector()))
        .transpose()?;
    let any = match or_selector {
        Some(s) => s
            .split(" or ")
            .map(|p| Selector::parse(p).map(|s| s.to_label_selector()))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![],
    };
    Ok((one, any))
}

/// Builds the Backup a `backup create` command line describes.
pub(crate) fn backup_from_flags(c: &BackupCreate, namespace: &str) -> Result<Backup> {
    validate_name("backup", &c.name)?;
    let (label_selector, or_label_selectors) =
        parse_selectors(c.selector.as_deref(), c.or_selector.as_deref())?;
    let spec = BackupSpec {
        included_namespaces: c.include_namespaces.clone(),
        excluded_namespaces: c.exclude_namespaces.clone(),
        included_resources: c.include_resources.clone(),
        excluded_resources: c.exclude_resources.clone(),
        included_cluster_scoped_resources: c.include_cluster_scoped_resources.clone(),
        excluded_cluster_scoped_resources: c.exclude_cluster_scoped_resources.clone(),
        included_namespace_scoped_resources: c.include_namespace_scoped_resources.clone(),
        excluded_namespace_scoped_resources: c.exclude_namespace_scoped_resources.clone(),
        include_cluster_resources: c.include_cluster_resources,
        label_selector,
        or_label_selectors,
        ordered_resources: c
            .ordered_resources
            .as_deref()
            .map(parse_ordered)
            .transpose()?
            .unwrap_or_default(),
        ttl: Some(c.ttl.parse().context("--ttl")?),
        snapshot_volumes: c.snapshot_volumes,
        default_volumes_to_fs_backup: c.default_volumes_to_fs_backup,
        volume_snapshot_locations: c.volume_snapshot_locations.clone(),
        csi_snapshot_timeout: parse_duration("csi-snapshot-timeout", &c.csi_snapshot_timeout)?,
        item_operation_timeout: parse_duration(
            "item-operation-timeout",
            &c.item_operation_timeout,
        )?,
        storage_location: c.location.storage_location.clone(),
        ..Default::default()
    };
    let mut b = Backup::new(&c.name, spec);
    b.metadata.namespace = Some(namespace.to_owned());
    b.metadata.labels = parse_kv(&c.labels, "label")?;
    b.metadata.annotations = parse_kv(&c.annotations, "annotation")?;
    Ok(b)
}

async fn backup_cmd(cli: &Cli, cmd: &BackupCmd) -> Result<u8> {
    match cmd {
        BackupCmd::Create(c) => backup_create(cli, c).await,
        BackupCmd::Get(g) => backup_get(g).await,
        BackupCmd::Describe {
            names,
            details,
            output,
            location,
        } => {
            let store = open_store(location.storage_location.as_deref())?;
            let backups = if names.is_empty() {
                catalog::list_backups(&store).await?
            } else {
                let mut v = Vec::new();
                for n in names {
                    v.push(catalog::get_backup(&store, n).await?);
                }
                v
            };
            if output != &Output::Table {
                print_backups(&backups, output, !names.is_empty() && names.len() == 1)?;
                return Ok(0);
            }
            for (i, b) in backups.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                let results = catalog::backup_results(&store, &b.metadata.name).await?;
                let rl = if *details {
                    Some(catalog::resource_list(&store, &b.metadata.name).await?)
                } else {
                    None
                };
                print!(
                    "{}",
                    output::describe_backup(b, &results, rl.as_ref(), *details)
                );
            }
            Ok(0)
        }
        BackupCmd::Logs { name, location } => {
            let store = open_store(location.storage_location.as_deref())?;
            print!("{}", catalog::backup_logs(&store, name).await?);
            Ok(0)
        }
        BackupCmd::Delete {
            names,
            all,
            confirm,
            location,
        } => {
            let store = open_store(location.storage_location.as_deref())?;
            let targets: Vec<String> = if *all {
                store.list_backups().await?
            } else if names.is_empty() {
                bail!("name the backups to delete, or pass --all");
            } else {
                names.clone()
            };
            if !confirm {
                if !std::io::stdin().is_terminal() {
                    bail!("refusing to delete without confirmation: pass --confirm");
                }
                eprint!(
                    "Are you sure you want to delete {} backup(s) ({})? [y/N] ",
                    targets.len(),
                    targets.join(", ")
                );
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    println!("Nothing deleted.");
                    return Ok(0);
                }
            }
            for n in &targets {
                // Only names that are stored backups (or their leftovers) are deleted.
                if !store.list_backups().await?.contains(n) {
                    bail!(
                        "backup {n:?} not found in storage location {:?}",
                        store.name()
                    );
                }
                store.delete_backup(n).await?;
                println!("Backup \"{n}\" deleted.");
            }
            Ok(0)
        }
        BackupCmd::Verify(v) => verify_cmd::backup_verify(cli, v).await,
        BackupCmd::Download {
            name,
            output,
            force,
            location,
        } => {
            let store = open_store(location.storage_location.as_deref())?;
            catalog::get_backup(&store, name).await?;
            let path = output
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{name}-data.tar.gz")));
            if path.exists() && !force {
                bail!(
                    "file {} already exists; pass --force to overwrite",
                    path.display()
                );
            }
            let tmp = path.with_extension("part");
            let reader = store.reader(&store.backup_paths(name).contents()).await?;
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut compat = tokio_util::compat::FuturesAsyncReadCompatExt::compat(reader);
            tokio::io::copy(&mut compat, &mut file)
                .await
                .context("download failed")?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await?;
            let abs = std::fs::canonicalize(&path).unwrap_or(path);
            println!(
                "Backup {name} has been successfully downloaded to {}",
                abs.display()
            );
            Ok(0)
        }
        BackupCmd::Wait { name, location } => {
            let store = open_store(location.storage_location.as_deref())?;
            let b = catalog::get_backup(&store, name).await?;
            println!("Backup {name}: {}", b.phase());
            Ok(phase_exit(b.phase()))
        }
    }
}

/// The etcd snapshots stored in a location, under metadata/etcd/.
async fn stored_snapshots(
    location: Option<&str>,
) -> Result<Vec<lifeboat_types::rules::retention::StoredSnapshot>> {
    let store = open_store(location)?;
    let files = store.list_files(&store.etcd_snapshots_dir()).await?;
    Ok(files
        .into_iter()
        .map(
            |(name, size, modified)| lifeboat_types::rules::retention::StoredSnapshot {
                name,
                size,
                taken: modified
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .unwrap_or_default(),
            },
        )
        .collect())
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

/// `batch/v1` when the cluster serves CronJobs there, else `batch/v1beta1` (Kubernetes < 1.21).
pub(crate) async fn cronjob_api_version(cli: &Cli) -> Result<String> {
    let cluster = connect(cli).await?;
    let (served, _) = cluster.discover().await?;
    let v1 = served
        .iter()
        .any(|r| r.group == "batch" && r.plural == "cronjobs" && r.version == "v1");
    Ok(if v1 { "batch/v1" } else { "batch/v1beta1" }.to_owned())
}

async fn etcd_schedule(cli: &Cli, cmd: &cli::SnapshotCmd) -> Result<u8> {
    let cli::SnapshotCmd::Schedule {
        schedule,
        endpoints,
        cacert,
        cert,
        key,
        storage_location,
        keep,
        image,
        job_namespace,
        api_version,
        output: out,
    } = cmd
    else {
        unreachable!("called for schedule only")
    };
    let api_version = match api_version {
        Some(v) => v.clone(),
        None => cronjob_api_version(cli).await.context(
            "cannot ask the cluster which CronJob version it serves; pass --api-version",
        )?,
    };
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
            "metadata": {"name": cm_name, "namespace": job_namespace},
            "data": {"locations.yaml": format!("---\n{}", serde_yaml_ng::to_string(&loc)?)}
        }));
        Some(cm_name)
    };
    items.push(lifeboat_types::manifests::etcd_schedule::cronjob(
        &lifeboat_types::manifests::etcd_schedule::EtcdSchedule {
            name: "lifeboat-etcd-snapshot".into(),
            namespace: job_namespace.clone(),
            schedule: schedule.clone(),
            api_version,
            image: image.clone(),
            endpoints: endpoints.clone(),
            cacert: cacert.clone(),
            cert: cert.clone(),
            key: key.clone(),
            storage_location: storage_location.clone(),
            keep: *keep,
            config_map,
        },
    ));
    let doc = if items.len() == 1 {
        items.remove(0)
    } else {
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
    };
    if !output::print_structured(&doc, out)? {
        print!("{}", serde_yaml_ng::to_string(&doc)?);
    }
    Ok(0)
}

/// A progress bar in bytes on a terminal's stderr (none when stderr is not a terminal).
fn byte_bar() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {bytes}/{total_bytes}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb
    })
}

async fn etcd_snapshot(cli: &Cli, cmd: &cli::SnapshotCmd) -> Result<u8> {
    use lifeboat_etcd::{restore, save, snapshot};
    match cmd {
        cli::SnapshotCmd::Schedule { .. } => etcd_schedule(cli, cmd).await,
        cli::SnapshotCmd::Save {
            endpoints,
            cacert,
            cert,
            key,
            to,
            storage_location,
            name,
        } => {
            let ep = save::EtcdEndpoint {
                endpoints: endpoints.clone(),
                cacert: cacert.clone(),
                cert: cert.clone(),
                key: key.clone(),
            };
            let store = storage_location
                .as_deref()
                .map(|l| open_store(Some(l)))
                .transpose()?;
            let tmp = tempfile::tempdir()?;
            let file = to.clone().unwrap_or_else(|| tmp.path().join("snapshot.db"));
            let bar = byte_bar();
            let size = save::save(&ep, &file, &|done, total| {
                if let Some(pb) = &bar {
                    pb.set_length(total);
                    pb.set_position(done);
                }
            })
            .await?;
            if let Some(pb) = &bar {
                pb.finish_and_clear();
            }
            let st = snapshot::verify(&file, false)?;
            match to {
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
                let object = name.clone().unwrap_or_else(|| {
                    format!(
                        "etcd-snapshot-{}.db",
                        chrono::Utc::now().format("%Y%m%d%H%M%S")
                    )
                });
                let path = store.etcd_snapshot(&object);
                if store.exists(&path).await? {
                    bail!(
                        "{path} already exists in storage location {:?}; choose another --name",
                        store.name()
                    );
                }
                // Streamed in parts: a snapshot can be gigabytes.
                let mut w = store.writer(&path).await?;
                let mut f = std::fs::File::open(&file)?;
                loop {
                    let mut chunk = vec![0u8; 8 << 20];
                    let n = std::io::Read::read(&mut f, &mut chunk)?;
                    if n == 0 {
                        break;
                    }
                    chunk.truncate(n);
                    w.write(chunk).await?;
                }
                w.close().await?;
                println!("Uploaded to storage location {:?} as {path}.", store.name());
            }
            Ok(0)
        }
        cli::SnapshotCmd::List {
            storage_location,
            output,
        } => {
            let snaps = stored_snapshots(storage_location.as_deref()).await?;
            if !output::print_structured(&snaps, output)? {
                let rows: Vec<Vec<String>> = snaps
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.taken.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                            human_bytes(s.size),
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["NAME", "TAKEN", "SIZE"], &rows));
            }
            Ok(0)
        }
        cli::SnapshotCmd::Prune {
            storage_location,
            keep,
            max_age,
            dry_run,
        } => {
            if keep.is_none() && max_age.is_none() {
                bail!("say what to keep: --keep N and/or --max-age DURATION (e.g. 168h)");
            }
            let max_age = max_age
                .as_deref()
                .map(|a| a.parse::<GoDuration>().context("--max-age"))
                .transpose()?;
            let store = open_store(storage_location.as_deref())?;
            let snaps = stored_snapshots(storage_location.as_deref()).await?;
            let doomed = lifeboat_types::rules::retention::prunable(
                &snaps,
                *keep,
                max_age.map(|d| d.0),
                chrono::Utc::now(),
            );
            for n in &doomed {
                if *dry_run {
                    println!("Would delete {n}");
                } else {
                    store.delete(&store.etcd_snapshot(n)).await?;
                    println!("Deleted {n}");
                }
            }
            println!(
                "{} of {} snapshots {}.",
                doomed.len(),
                snaps.len(),
                if *dry_run {
                    "would be deleted"
                } else {
                    "deleted"
                }
            );
            Ok(0)
        }
        cli::SnapshotCmd::Status { file, output } => {
            let st = snapshot::status(file)?;
            if !output::print_structured(&st, output)? {
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
            Ok(0)
        }
        cli::SnapshotCmd::Restore {
            file,
            data_dir,
            wal_dir,
            name,
            initial_cluster,
            initial_cluster_token,
            initial_advertise_peer_urls,
            skip_hash_check,
            output,
        } => {
            let cfg = restore::RestoreConfig {
                snapshot: file.clone(),
                data_dir: data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("{name}.etcd"))),
                wal_dir: wal_dir.clone(),
                name: name.clone(),
                initial_cluster: initial_cluster.clone(),
                initial_cluster_token: initial_cluster_token.clone(),
                initial_advertise_peer_urls: initial_advertise_peer_urls.clone(),
                skip_hash_check: *skip_hash_check,
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
            if !output::print_structured(&r, output)? {
                let m = &r.membership;
                println!(
                    "Restored {} (revision {}, {} keys) into {}.",
                    file.display(),
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
            Ok(0)
        }
        cli::SnapshotCmd::Verify {
            file,
            skip_hash_check,
        } => {
            let st = snapshot::verify(file, *skip_hash_check)?;
            println!(
                "Snapshot {} is intact: {} keys up to revision {}, {}{}.",
                file.display(),
                st.total_key,
                st.revision,
                human_bytes(st.total_size),
                if *skip_hash_check {
                    " (sha256 trailer not checked)"
                } else {
                    ", sha256 trailer matches"
                }
            );
            Ok(0)
        }
    }
}

fn phase_exit(p: BackupPhase) -> u8 {
    match p {
        BackupPhase::Completed => 0,
        BackupPhase::PartiallyFailed => EXIT_PARTIAL,
        _ => 1,
    }
}

fn print_backups(backups: &[Backup], output: &Output, single: bool) -> Result<()> {
    output::print_one_or_list(backups, "BackupList", single, output)
}

async fn backup_get(g: &BackupGet) -> Result<u8> {
    // Without --storage-location, every configured location (and the default) is read.
    let locations: Vec<BackupStorageLocation> = match &g.location.storage_location {
        Some(l) => vec![resolve_location(Some(l))?],
        None => load_config()?.all_with_default(),
    };
    let mut backups = Vec::new();
    for l in &locations {
        let store = Store::open(l)?;
        let found = match catalog::list_backups(&store).await {
            Ok(f) => f,
            Err(e) if g.location.storage_location.is_none() => {
                eprintln!(
                    "warning: storage location {:?} skipped: {e}",
                    l.metadata.name
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        backups.extend(found);
    }
    if !g.names.is_empty() {
        for n in &g.names {
            if !backups.iter().any(|b| &b.metadata.name == n) {
                bail!("backup {n:?} not found");
            }
        }
        backups.retain(|b| g.names.contains(&b.metadata.name));
    }
    if let Some(sel) = &g.selector {
        let s = Selector::parse(sel)?;
        backups.retain(|b| s.matches(&b.metadata.labels));
    }
    match g.sort_by.as_deref() {
        Some(".metadata.name") => backups.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name)),
        _ => backups.sort_by_key(|b| (b.metadata.creation_timestamp, b.metadata.name.clone())),
    }
    if g.output == Output::Table {
        print!("{}", output::backups_table(&backups));
    } else {
        print_backups(&backups, &g.output, g.names.len() == 1)?;
    }
    Ok(0)
}

async fn backup_create(cli: &Cli, c: &BackupCreate) -> Result<u8> {
    let backup = backup_from_flags(c, &cli.namespace)?;
    let opts = BackupOptions {
        gzip_level: c.compression_level,
        ..Default::default()
    };
    run_one_backup(cli, backup, c.wait, c.output.as_ref(), &opts).await
}

async fn run_one_backup(
    cli: &Cli,
    backup: Backup,
    wait: bool,
    output: Option<&Output>,
    opts: &BackupOptions,
) -> Result<u8> {
    let name = backup.metadata.name.clone();
    let location = resolve_location(backup.spec.storage_location.as_deref())?;
    let store = Store::open(&location)?;
    let cluster = connect(cli).await?;
    let progress = Arc::new(Progress::default());
    let quiet = output.is_some();
    if !quiet {
        println!("Backup request \"{name}\" submitted successfully.");
    }
    let bar = (wait && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} items, {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb
    });
    if wait && !quiet {
        println!(
            "Waiting for backup to complete. You may safely press ctrl-c to stop waiting - your backup will stop too."
        );
    }
    let job = run_backup(&cluster, &store, backup, opts, progress.clone());
    tokio::pin!(job);
    let result = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(pb) = &bar {
                    pb.set_length(progress.total.load(Ordering::Relaxed));
                    pb.set_position(progress.done.load(Ordering::Relaxed));
                    pb.set_message(format!("{}/{} resource types",
                        progress.types_done.load(Ordering::Relaxed), progress.types_total.load(Ordering::Relaxed)));
                }
            }
        }
    };
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let stored = result?;
    if let Some(o) = output {
        output::print_structured(&stored, o)?;
    } else {
        let items = stored
            .status
            .as_ref()
            .and_then(|s| s.progress)
            .map(|p| p.items_backed_up)
            .unwrap_or(0);
        println!(
            "Backup completed with status: {}. {items} items stored in location {:?}. You may check for more information using the commands `lifeboat backup describe {name}` and `lifeboat backup logs {name}`.",
            stored.phase(),
            store.name()
        );
    }
    Ok(phase_exit(stored.phase()))
}

async fn apply(cli: &Cli, file: &PathBuf, location: Option<&str>, to_server: bool) -> Result<u8> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let docs = parse_documents(&text).with_context(|| format!("{}", file.display()))?;
    if docs.is_empty() {
        bail!("{} holds no documents", file.display());
    }
    // Checked before anything is sent.
    if to_server
        && location.is_some()
        && let Some(VeleroDocument::Restore(r)) = docs
            .iter()
            .find(|d| matches!(d, VeleroDocument::Restore(_)))
    {
        bail!(
            "Restore {:?}: --storage-location does not apply to a Restore run by the server (it reads its backup's location); drop the flag or send the Restore separately",
            r.metadata.name
        );
    }
    let mut code = 0;
    for d in docs {
        use server_cmd::{ServerDocument, apply_to_server};
        match d {
            VeleroDocument::Schedule(sch) => {
                apply_to_server(cli, ServerDocument::Schedule(*sch)).await?;
            }
            VeleroDocument::Backup(mut b) if to_server => {
                if let Some(l) = location {
                    b.spec.storage_location = Some(l.to_owned());
                }
                apply_to_server(cli, ServerDocument::Backup(*b)).await?;
            }
            VeleroDocument::Restore(r) if to_server => {
                apply_to_server(cli, ServerDocument::Restore(*r)).await?;
            }
            VeleroDocument::BackupStorageLocation(l) if to_server => {
                apply_to_server(cli, ServerDocument::Location(*l)).await?;
            }
            VeleroDocument::BackupStorageLocation(l) => {
                let mut cfg = load_config()?;
                let name = l.metadata.name.clone();
                cfg.add(*l)?;
                cfg.save()?;
                println!("Backup storage location \"{name}\" configured successfully.");
            }
            VeleroDocument::Restore(mut r) => {
                let store = open_store(location)?;
                r.status = None;
                let c = cli::RestoreCreate {
                    parallelism: lifeboat_engine::restore::DEFAULT_PARALLELISM,
                    wait: true,
                    ..Default::default()
                };
                code = code.max(restore_cmd::run_one_restore(cli, &store, *r, &c).await?);
            }
            VeleroDocument::Backup(mut b) => {
                if let Some(l) = location {
                    b.spec.storage_location = Some(l.to_owned());
                }
                b.status = None;
                code =
                    code.max(run_one_backup(cli, *b, true, None, &BackupOptions::default()).await?);
            }
        }
    }
    Ok(code)
}

async fn location_cmd(cmd: &LocationCmd) -> Result<u8> {
    match cmd {
        LocationCmd::Create {
            name,
            provider,
            bucket,
            prefix,
            config,
            credential,
            access_mode,
            default,
            labels,
        } => {
            validate_name("backup storage location", name)?;
            let mut cfg = load_config()?;
            let credential = credential.as_ref().map(|c| {
                let p = PathBuf::from(c);
                let abs = std::fs::canonicalize(&p).unwrap_or(p);
                SecretKeySelector {
                    name: abs.to_string_lossy().into_owned(),
                    key: "cloud".into(),
                }
            });
            let mut l = BackupStorageLocation::new(
                name,
                BackupStorageLocationSpec {
                    provider: provider.clone(),
                    config: parse_kv(config, "config")?,
                    credential,
                    object_storage: ObjectStorageLocation {
                        bucket: bucket.clone(),
                        prefix: prefix.clone(),
                        ca_cert: None,
                    },
                    default: *default,
                    access_mode: Some((*access_mode).into()),
                    ..Default::default()
                },
            );
            l.metadata.labels = parse_kv(labels, "label")?;
            // The location must open (provider, options, credentials file) before it is saved.
            Store::open(&l)?;
            cfg.add(l)?;
            cfg.save()?;
            println!("Backup storage location \"{name}\" configured successfully.");
            Ok(0)
        }
        LocationCmd::Get { names, output } => {
            let mut locs = load_config()?.all_with_default();
            if !names.is_empty() {
                for n in names {
                    if !locs.iter().any(|l| &l.metadata.name == n) {
                        bail!("storage location {n:?} not found");
                    }
                }
                locs.retain(|l| names.contains(&l.metadata.name));
            }
            if output != &Output::Table {
                output::print_one_or_list(
                    &locs,
                    "BackupStorageLocationList",
                    names.len() == 1,
                    output,
                )?;
                return Ok(0);
            }
            let mut rows = Vec::new();
            for l in &locs {
                let phase = match Store::open(l) {
                    Ok(s) => match s.check(false).await {
                        Ok(()) => "Available".to_string(),
                        Err(_) => "Unavailable".to_string(),
                    },
                    Err(_) => "Unavailable".to_string(),
                };
                let bucket = if l.spec.object_storage.prefix.is_empty() {
                    l.spec.object_storage.bucket.clone()
                } else {
                    format!(
                        "{}/{}",
                        l.spec.object_storage.bucket, l.spec.object_storage.prefix
                    )
                };
                rows.push(vec![
                    l.metadata.name.clone(),
                    l.spec.provider.clone(),
                    bucket,
                    phase,
                    format!("{:?}", l.spec.access_mode.unwrap_or_default()),
                    if l.spec.default {
                        "true".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            print!(
                "{}",
                output::table(
                    &[
                        "NAME",
                        "PROVIDER",
                        "BUCKET/PREFIX",
                        "PHASE",
                        "ACCESS MODE",
                        "DEFAULT"
                    ],
                    &rows
                )
            );
            Ok(0)
        }
        LocationCmd::Delete { names, confirm } => {
            if names.is_empty() {
                bail!("name the storage locations to delete");
            }
            if !confirm && !std::io::stdin().is_terminal() {
                bail!("refusing to delete without confirmation: pass --confirm");
            }
            let mut cfg = load_config()?;
            for n in names {
                cfg.remove(n)?;
            }
            cfg.save()?;
            for n in names {
                println!(
                    "Backup storage location \"{n}\" deleted. Its backups stay in the bucket."
                );
            }
            Ok(0)
        }
        LocationCmd::Set {
            name,
            access_mode,
            default,
        } => {
            let mut cfg = load_config()?;
            if cfg.get(name).is_none() {
                bail!("storage location {name:?} not found");
            }
            for l in &mut cfg.locations {
                if *default {
                    l.spec.default = &l.metadata.name == name;
                }
                if &l.metadata.name == name
                    && let Some(m) = access_mode
                {
                    l.spec.access_mode = Some((*m).into());
                }
            }
            cfg.save()?;
            println!("Backup storage location \"{name}\" updated.");
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(args: &[&str]) -> BackupCreate {
        let mut argv = vec!["lifeboat", "backup", "create"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Backup {
                cmd: BackupCmd::Create(c),
            } => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seed_command_lines_parse() {
        // Lines from the DR guides in shared/seeds.
        let b = backup_from_flags(
            &create(&[
                "b1",
                "--include-namespaces",
                "production,staging",
                "--snapshot-volumes",
                "--ttl",
                "720h",
            ]),
            "velero",
        )
        .unwrap();
        assert_eq!(b.spec.included_namespaces, ["production", "staging"]);
        assert_eq!(b.spec.snapshot_volumes, Some(true));
        assert_eq!(b.spec.ttl.unwrap().to_string(), "720h0m0s");
        let b = backup_from_flags(
            &create(&[
                "b2",
                "--include-namespaces",
                "shop",
                "--selector",
                "app=web",
            ]),
            "velero",
        )
        .unwrap();
        assert_eq!(b.spec.label_selector.unwrap().match_labels["app"], "web");
    }

    #[test]
    fn velero_flag_forms() {
        let c = create(&[
            "b",
            "--include-cluster-resources=false",
            "--or-selector",
            "app=a or app=b",
            "--ordered-resources",
            "pods=ns1/p1,ns1/p2;persistentvolumeclaims=ns1/c",
            "--labels",
            "team=x",
        ]);
        let b = backup_from_flags(&c, "velero").unwrap();
        assert_eq!(b.spec.include_cluster_resources, Some(false));
        assert_eq!(b.spec.or_label_selectors.len(), 2);
        assert_eq!(b.spec.ordered_resources["pods"], "ns1/p1,ns1/p2");
        assert_eq!(b.metadata.labels["team"], "x");
        assert_eq!(
            create(&["b", "--include-cluster-resources"]).include_cluster_resources,
            Some(true)
        );
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(backup_from_flags(&create(&["Bad_Name"]), "velero").is_err());
        assert!(backup_from_flags(&create(&["b", "--ttl", "3 days"]), "velero").is_err());
        assert!(backup_from_flags(&create(&["b", "--selector", "app in web"]), "velero").is_err());
        assert!(backup_from_flags(&create(&["b", "--labels", "novalue"]), "velero").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
