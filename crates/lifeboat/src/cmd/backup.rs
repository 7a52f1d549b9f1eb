//! `backup create|get|describe|logs|delete|download|wait` (`verify` is in `verify.rs`),
//! and `create backup` / `get backups`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use lifeboat_engine::backup::{BackupOptions, Progress, run_backup};
use lifeboat_engine::catalog;
use lifeboat_engine::objects;
use lifeboat_engine::storage::Store;
use lifeboat_types::api::crd::{BackupResource, DeleteBackupRequestResource, to_velero};
use lifeboat_types::api::names::validate_name;
use lifeboat_types::api::selector::Selector;
use lifeboat_types::api::velero::{
    Backup, BackupSpec, BackupStorageLocation, DeleteBackupRequestSpec,
};

use crate::cli::{
    Cli, DeleteArgs, DescribeArgs, FilterArgs, LocationArg, NameArgs, Output, SelectorArgs,
    SortArg, WaitArgs, parse_opt_bool,
};
use crate::cmd::verify::{self, BackupVerify};
use crate::common::{
    Mode, Server, connect, load_config, mode, open_store, parse_duration, parse_kv, progress_bar,
    resolve_location,
};
use crate::confirm::{confirm, counted};
use crate::exit::Exit;
use crate::output;

/// `backup ...` commands.
#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Back up cluster resources into a storage location.
    #[command(after_help = "\
Examples:
  lifeboat backup create shop --include-namespaces shop --wait
  lifeboat backup create all --exclude-namespaces kube-system --ttl 168h
  lifeboat backup create web --selector app=web --include-resources deployments,services
  lifeboat backup create b1 --storage-location file:///var/backups/lifeboat")]
    Create(Box<BackupCreate>),
    /// List backups.
    #[command(after_help = "\
Examples:
  lifeboat backup get
  lifeboat backup get --sort-by=.metadata.creationTimestamp | tail -5
  lifeboat backup get -l velero.io/schedule-name=daily --sort-by expiration
  lifeboat backup get nightly -o jsonpath='{.status.phase}'")]
    Get(BackupGet),
    /// Describe backups.
    #[command(
        mut_arg("names", |a| a.help("Backup names (all when none)")),
        mut_arg("details", |a| a.help("Show the resource list and every error and warning")),
    )]
    Describe(DescribeArgs),
    /// Print a backup's logs.
    #[command(mut_arg("name", |a| a.help("The backup")))]
    Logs(NameArgs),
    /// Delete backups from the storage location.
    #[command(
        mut_arg("names", |a| a.help("Backup names")),
        mut_arg("all", |a| a.help("Delete every backup")),
    )]
    Delete(DeleteArgs),
    /// Check that a backup is usable: phase, age, location, archive integrity, contents
    /// against its resource list, and (--test-restore) a restore into mapped namespaces
    /// that is checked and removed. Exit 0 when every check passes, 1 otherwise.
    #[command(after_help = "\
Examples:
  lifeboat backup verify nightly-20260101020000
  lifeboat backup verify --latest --schedule nightly --max-age 26h --test-restore -o json
  lifeboat backup verify --latest --max-age 26h --print-cronjob | kubectl apply -f -")]
    Verify(Box<BackupVerify>),
    /// Download a backup's tarball.
    Download(DownloadArgs),
    /// Wait until backups end (Completed, PartiallyFailed, Failed, FailedValidation).
    /// A backup of `backup create` is read from its storage location, where it appears when
    /// stored; with --server, the cluster's Backup objects that `lifeboat server` runs.
    /// Exit code: 0 Completed, 3 PartiallyFailed, 1 Failed or FailedValidation (or an
    /// error), 4 --timeout passed first; with several backups the largest.
    #[command(
        mut_arg("names", |a| a.help("The backups")),
        after_help = "\
Examples:
  lifeboat backup wait nightly
  lifeboat backup wait b1 b2 --timeout 30m
  lifeboat -n velero backup wait b1 --server       # a Backup run by the in-cluster server"
    )]
    Wait(WaitArgs),
    /// Copy backups (and etcd snapshots and volume repositories) to another location,
    /// for a standby that reads the copy read-only: every file streamed and checked by
    /// SHA-256 (read from the source, then read back from the destination), each backup's
    /// record copied last so that a copy cut short is no backup there. Runs are
    /// idempotent: what is there with the same contents is skipped; nothing at the
    /// destination is replaced or deleted (other contents there are a conflict, named).
    /// Exit 0 when everything asked for is there, 3 when something conflicts or failed.
    #[command(after_help = "\
Examples:
  lifeboat backup replicate --from primary --to dr-west
  lifeboat backup replicate --from primary --to s3://dr-west-backups/cluster-a?region=us-west-2 --since 24h
  lifeboat backup replicate --from primary --to dr-west --backup nightly-20260101020000 --dry-run -o json")]
    Replicate(crate::cmd::replicate::ReplicateArgs),
}

/// `backup create`.
#[derive(Args, Debug, Default)]
pub struct BackupCreate {
    /// The backup's name.
    pub name: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Include cluster-scoped resources (unset: only for a whole-cluster backup).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub include_cluster_resources: Option<bool>,
    /// Cluster-scoped resources to include (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub include_cluster_scoped_resources: Vec<String>,
    /// Cluster-scoped resources to exclude (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub exclude_cluster_scoped_resources: Vec<String>,
    /// Namespaced resources to include (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub include_namespace_scoped_resources: Vec<String>,
    /// Namespaced resources to exclude (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespace_scoped_resources: Vec<String>,
    #[command(flatten)]
    pub selectors: SelectorArgs,
    /// Objects to back up first: "pods=ns1/pod1,ns1/pod2;persistentvolumeclaims=ns1/pvc4".
    #[arg(long)]
    pub ordered_resources: Option<String>,
    /// How long to keep the backup.
    #[arg(long, default_value = "720h0m0s")]
    pub ttl: String,
    /// Labels for the backup: k=v,k2=v2.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Annotations for the backup: k=v,k2=v2.
    #[arg(long, value_delimiter = ',')]
    pub annotations: Vec<String>,
    /// Take volume snapshots (recorded in the spec; volume data is not backed up by this
    /// command yet).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub snapshot_volumes: Option<bool>,
    /// Back up pod volumes with the file-system uploader (recorded in the spec).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// Volume snapshot locations (recorded in the spec).
    #[arg(long, value_delimiter = ',')]
    pub volume_snapshot_locations: Vec<String>,
    /// CSI snapshot timeout (recorded in the spec).
    #[arg(long)]
    pub csi_snapshot_timeout: Option<String>,
    /// Item operation timeout (recorded in the spec).
    #[arg(long)]
    pub item_operation_timeout: Option<String>,
    /// gzip level of the tarball, 0-9 (1: fastest; 6: Velero's, smaller and slower; Velero reads any).
    #[arg(long, default_value_t = lifeboat_engine::backup::DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// Items per LIST page (hidden: for tests that need many pages, and benchmarks).
    #[arg(long, hide = true, default_value_t = lifeboat_engine::backup::PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Show progress and wait for the backup (lifeboat always runs it to the end).
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// Output format of the stored Backup (json, yaml) instead of messages.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `backup get`.
#[derive(Args, Debug)]
pub struct BackupGet {
    /// Backup names (all when none).
    pub names: Vec<String>,
    /// Only backups whose labels match.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Output format: table, json, yaml, jsonpath=TEMPLATE.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub sort: SortArg,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `backup download`.
#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// The backup.
    pub name: String,
    /// File to write (default: ./<name>-data.tar.gz).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `backup ...`.
pub async fn run(cli: &Cli, cmd: &BackupCmd) -> Result<Exit> {
    match cmd {
        BackupCmd::Create(c) => create(cli, c).await,
        BackupCmd::Get(g) => get(cli, g).await,
        BackupCmd::Describe(d) => describe(cli, d).await,
        BackupCmd::Logs(a) => {
            let store = match mode(cli, a.location.storage_location.as_deref(), false).await? {
                Mode::Local => open_store(a.location.storage_location.as_deref())?,
                Mode::Cluster(s) => s.backup_store(&a.name).await?.0,
            };
            print!("{}", catalog::backup_logs(&store, &a.name).await?);
            Ok(Exit::Ok)
        }
        BackupCmd::Delete(d) => delete(cli, d).await,
        BackupCmd::Verify(v) => verify::backup_verify(cli, v).await,
        BackupCmd::Download(d) => download(cli, d).await,
        BackupCmd::Wait(a) => wait(cli, a).await,
        BackupCmd::Replicate(a) => crate::cmd::replicate::run(cli, a).await,
    }
}

/// `--ordered-resources "pods=ns1/p1,ns1/p2;persistentvolumeclaims=ns1/c"`.
fn parse_ordered(s: &str) -> Result<std::collections::BTreeMap<String, String>> {
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

/// Builds the Backup a `backup create` command line describes.
pub fn backup_from_flags(c: &BackupCreate, namespace: &str) -> Result<Backup> {
    validate_name("backup", &c.name)?;
    let (label_selector, or_label_selectors) = c.selectors.parse()?;
    let spec = BackupSpec {
        included_namespaces: c.filter.include_namespaces.clone(),
        excluded_namespaces: c.filter.exclude_namespaces.clone(),
        included_resources: c.filter.include_resources.clone(),
        excluded_resources: c.filter.exclude_resources.clone(),
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
        csi_snapshot_timeout: parse_duration(
            "csi-snapshot-timeout",
            c.csi_snapshot_timeout.as_deref(),
        )?,
        item_operation_timeout: parse_duration(
            "item-operation-timeout",
            c.item_operation_timeout.as_deref(),
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

/// `backup create` / `create backup`.
pub async fn create(cli: &Cli, c: &BackupCreate) -> Result<Exit> {
    let backup = backup_from_flags(c, &cli.namespace)?;
    if let Mode::Cluster(s) = mode(cli, c.location.storage_location.as_deref(), false).await? {
        return submit_backup(&s, backup, c.wait, c.output.as_ref()).await;
    }
    let opts = BackupOptions {
        gzip_level: c.compression_level,
        page_size: c.page_size.max(1),
        ..Default::default()
    };
    run_one_backup(cli, backup, c.wait, c.output.as_ref(), &opts).await
}

/// Runs a Backup (from flags or a document) and prints the outcome.
pub async fn run_one_backup(
    cli: &Cli,
    backup: Backup,
    wait: bool,
    output: Option<&Output>,
    opts: &BackupOptions,
) -> Result<Exit> {
    let name = backup.metadata.name.clone();
    let location = resolve_location(backup.spec.storage_location.as_deref())?;
    let store = Store::open(&location)?;
    let cluster = connect(cli).await?;
    let progress = Arc::new(Progress::default());
    let quiet = output.is_some();
    if !quiet {
        println!("Backup request \"{name}\" submitted successfully.");
    }
    let bar = progress_bar(
        wait,
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} items, {msg}",
    );
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
    Ok(Exit::of_backup(stored.phase()))
}

/// A Backup handed to the cluster's server (`backup create` through the cluster): the
/// object is created; with `wait`, its status is followed to the end with a progress bar.
pub async fn submit_backup(
    s: &Server,
    backup: Backup,
    wait: bool,
    output: Option<&Output>,
) -> Result<Exit> {
    let name = backup.metadata.name.clone();
    let obj = BackupResource::new(&name, backup.spec.clone());
    objects::create(&s.cluster, &s.ns, obj, &backup.metadata).await?;
    let read = || async {
        let o: BackupResource = objects::get(&s.cluster, &s.ns, "backup", &name).await?;
        anyhow::Ok(to_velero::<Backup>(&o)?)
    };
    if output.is_none() {
        println!(
            "Backup request \"{name}\" submitted successfully to {}.",
            s.label
        );
    }
    if !wait {
        match output {
            Some(o) => {
                output::print_structured(&read().await?, o)?;
            }
            None => println!(
                "Run `lifeboat backup describe {name}` or `lifeboat backup logs {name}` for more details."
            ),
        }
        return Ok(Exit::Ok);
    }
    if output.is_none() {
        println!(
            "Waiting for backup to complete. You may safely press ctrl-c to stop waiting - your backup will continue in the background."
        );
    }
    let stored = crate::wait::follow(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} items",
        read,
        Backup::phase,
        |b| {
            let p = b.status.as_ref()?.progress?;
            Some((p.items_backed_up, p.total_items))
        },
    )
    .await?;
    if let Some(o) = output {
        output::print_structured(&stored, o)?;
    } else {
        let st = stored.status.clone().unwrap_or_default();
        let items = st.progress.map(|p| p.items_backed_up).unwrap_or(0);
        println!(
            "Backup completed with status: {}. {items} items stored in location {:?}. You may check for more information using the commands `lifeboat backup describe {name}` and `lifeboat backup logs {name}`.",
            stored.phase(),
            stored.spec.storage_location.as_deref().unwrap_or("default")
        );
        if let Some(msg) = st.failure_reason.filter(|m| !m.is_empty()) {
            println!("Failure reason: {msg}");
        }
    }
    Ok(Exit::of_backup(stored.phase()))
}

/// The cluster's Backup objects (`names`, or all), as velero.io/v1 Backups.
pub async fn cluster_backups(s: &Server, names: &[String]) -> Result<Vec<Backup>> {
    let objs: Vec<BackupResource> =
        objects::get_or_list(&s.cluster, &s.ns, "backup", names).await?;
    objs.iter()
        .map(|o| {
            to_velero(o).with_context(|| format!("backup {:?} cannot be read", o.metadata.name))
        })
        .collect()
}

fn print_backups(backups: &[Backup], output: &Output, single: bool) -> Result<()> {
    output::print_one_or_list(backups, "BackupList", single, output)
}

/// `backup get` / `get backups`.
pub async fn get(cli: &Cli, g: &BackupGet) -> Result<Exit> {
    g.sort.key::<Backup>()?;
    if let Mode::Cluster(s) = mode(cli, g.location.storage_location.as_deref(), false).await? {
        let mut backups = cluster_backups(&s, &g.names).await?;
        if let Some(l) = &g.location.storage_location {
            backups.retain(|b| b.spec.storage_location.as_deref().unwrap_or("default") == l);
        }
        return print_got(g, backups, &s.label);
    }
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
                    "warning: storage location {:?} skipped: {}",
                    l.metadata.name,
                    lifeboat_engine::error::chain(&e)
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
    print_got(g, backups, "")
}

/// Filters, sorts and prints what `backup get` found (`place`: where, when it is the
/// cluster's server, for the message of an empty table).
fn print_got(g: &BackupGet, mut backups: Vec<Backup>, place: &str) -> Result<Exit> {
    if let Some(sel) = &g.selector {
        let s = Selector::parse(sel)?;
        backups.retain(|b| s.matches(&b.metadata.labels));
    }
    g.sort.sort(&mut backups)?;
    if g.output == Output::Table {
        if backups.is_empty() && !place.is_empty() {
            eprintln!("No backups found in {place}.");
        }
        print!("{}", output::backups_table(&backups));
    } else {
        print_backups(&backups, &g.output, g.names.len() == 1)?;
    }
    Ok(Exit::Ok)
}

/// `backup wait`.
async fn wait(cli: &Cli, a: &WaitArgs) -> Result<Exit> {
    use crate::wait::{Seen, each, parse_timeout};
    let timeout = parse_timeout(&a.timeout)?;
    if let Mode::Cluster(s) = mode(cli, a.location.storage_location.as_deref(), a.server).await? {
        let (cluster, ns) = (&s.cluster, s.ns.as_str());
        return each(
            "Backup",
            &a.names,
            &s.label,
            timeout,
            &a.timeout,
            |name| async move {
                let o: lifeboat_types::api::crd::BackupResource =
                    lifeboat_engine::objects::get(cluster, ns, "backup", &name).await?;
                Ok(Seen::Phase(o.status.map(|s| s.phase).unwrap_or_default()))
            },
            |_| {},
        )
        .await;
    }
    let store = &open_store(a.location.storage_location.as_deref())?;
    each(
        "Backup",
        &a.names,
        &format!("storage location {:?}", store.name()),
        timeout,
        &a.timeout,
        |name| async move {
            match catalog::get_backup(store, &name).await {
                Ok(r) => Ok(Seen::Phase(r.phase())),
                Err(catalog::CatalogError::NotFound { .. }) => Ok(Seen::Absent),
                Err(e) => Err(e.into()),
            }
        },
        |name| {
            eprintln!(
                "Backup {name:?} is not in storage location {:?} yet; waiting for it to be stored (a backup appears there when it ends).",
                store.name()
            )
        },
    )
    .await
}

async fn describe(cli: &Cli, d: &DescribeArgs) -> Result<Exit> {
    if let Mode::Cluster(s) = mode(cli, d.location.storage_location.as_deref(), false).await? {
        let backups = cluster_backups(&s, &d.names).await?;
        // What the server stored (results, the resource list) is read from the backup's
        // location; a backup still running has none yet.
        return print_described(&backups, d, async |b: &Backup| {
            if !b.phase().is_terminal() {
                return Ok((Default::default(), None));
            }
            match s.location(b.spec.storage_location.as_deref()).await {
                Ok((store, _)) => stored_details(&store, &b.metadata.name, d.details).await,
                Err(e) => {
                    eprintln!(
                        "warning: {e:#}; describing backup {:?} without its stored results",
                        b.metadata.name
                    );
                    Ok((Default::default(), None))
                }
            }
        })
        .await;
    }
    let store = open_store(d.location.storage_location.as_deref())?;
    let backups = if d.names.is_empty() {
        catalog::list_backups(&store).await?
    } else {
        let mut v = Vec::new();
        for n in &d.names {
            v.push(catalog::get_backup(&store, n).await?);
        }
        v
    };
    print_described(&backups, d, async |b: &Backup| {
        stored_details(&store, &b.metadata.name, d.details).await
    })
    .await
}

/// What a stored backup's describe shows beside the object: its results and (with
/// `--details`) its resource list.
type Details = (
    lifeboat_types::api::velero::BackupResults,
    Option<std::collections::BTreeMap<String, Vec<String>>>,
);

/// Prints `backup describe` of `backups` (here or through the cluster: `details_of`
/// reads what was stored of each).
async fn print_described(
    backups: &[Backup],
    d: &DescribeArgs,
    details_of: impl AsyncFn(&Backup) -> Result<Details>,
) -> Result<Exit> {
    if d.output != Output::Table {
        print_backups(backups, &d.output, d.names.len() == 1)?;
        return Ok(Exit::Ok);
    }
    for (i, b) in backups.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let (results, rl) = details_of(b).await?;
        print!(
            "{}",
            output::describe_backup(b, &results, rl.as_ref(), d.details)
        );
    }
    Ok(Exit::Ok)
}

/// A stored backup's results, and (`details`) its resource list.
async fn stored_details(store: &Store, name: &str, details: bool) -> Result<Details> {
    let results = catalog::backup_results(store, name).await?;
    let rl = if details {
        Some(catalog::resource_list(store, name).await?)
    } else {
        None
    };
    Ok((results, rl))
}

async fn delete(cli: &Cli, d: &DeleteArgs) -> Result<Exit> {
    if let Mode::Cluster(s) = mode(cli, d.location.storage_location.as_deref(), false).await? {
        return delete_in_cluster(&s, d).await;
    }
    let store = open_store(d.location.storage_location.as_deref())?;
    let targets: Vec<String> = if d.all {
        store.list_backups().await?
    } else if d.names.is_empty() {
        bail!("name the backups to delete, or pass --all");
    } else {
        d.names.clone()
    };
    if !confirm(
        &format!("delete {}", counted("backup", &targets)),
        "",
        d.confirm.confirm,
    )? {
        return Ok(Exit::Ok);
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
    Ok(Exit::Ok)
}

/// `backup delete` through the cluster: a DeleteBackupRequest per backup, as Velero's
/// CLI makes; the server deletes the stored data (when it is the cluster's own), then
/// the Backup object.
async fn delete_in_cluster(s: &Server, d: &DeleteArgs) -> Result<Exit> {
    let targets: Vec<String> = if d.all {
        cluster_backups(s, &[])
            .await?
            .into_iter()
            .map(|b| b.metadata.name)
            .collect()
    } else if d.names.is_empty() {
        bail!("name the backups to delete, or pass --all");
    } else {
        // Each must exist: a request for a name that is not there would wait forever.
        cluster_backups(s, &d.names).await?;
        d.names.clone()
    };
    if !confirm(
        &format!("delete {} through {}", counted("backup", &targets), s.label),
        "",
        d.confirm.confirm,
    )? {
        return Ok(Exit::Ok);
    }
    for n in &targets {
        let req = DeleteBackupRequestResource::new(
            &delete_request_name(n),
            DeleteBackupRequestSpec {
                backup_name: n.clone(),
            },
        );
        let meta = lifeboat_types::api::velero::ObjectMeta {
            name: req.metadata.name.clone().unwrap_or_default(),
            labels: [("velero.io/backup-name".to_owned(), label_value(n))].into(),
            ..Default::default()
        };
        objects::create(&s.cluster, &s.ns, req, &meta).await?;
        println!(
            "Request to delete backup \"{n}\" submitted successfully to {}.\nThe server deletes its stored data (when that data is this cluster's own), then the Backup object.",
            s.label
        );
    }
    Ok(Exit::Ok)
}

/// The name of a DeleteBackupRequest for `backup`: the backup's name and a time stamp,
/// cut to the 253 characters a name may have.
fn delete_request_name(backup: &str) -> String {
    let suffix = format!("-{}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"));
    let keep = 253usize.saturating_sub(suffix.len()).min(backup.len());
    let mut cut = keep;
    while !backup.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", backup[..cut].trim_end_matches(['-', '.']))
}

/// A label value for a name (at most 63 characters, as Velero cuts them).
fn label_value(name: &str) -> String {
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_owned()
}

async fn download(cli: &Cli, d: &DownloadArgs) -> Result<Exit> {
    let name = &d.name;
    let store = match mode(cli, d.location.storage_location.as_deref(), false).await? {
        Mode::Local => open_store(d.location.storage_location.as_deref())?,
        Mode::Cluster(s) => s.backup_store(name).await?.0,
    };
    catalog::get_backup(&store, name).await?;
    let path = d
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}-data.tar.gz")));
    if path.exists() && !d.force {
        bail!(
            "file {} already exists; pass --force to overwrite",
            path.display()
        );
    }
    let tmp = path.with_extension("part");
    let reader = store.reader(&store.backup_paths(name).contents()).await?;
    // The tarball holds the backup's Secrets: readable by its owner only.
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .await
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    // A leftover part file keeps its mode through open(): set it.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .await
        .with_context(|| format!("cannot make {} private", tmp.display()))?;
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
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    fn create(args: &[&str]) -> BackupCreate {
        match crate::cli::parse_for_test(&["backup", "create"], args) {
            Command::Backup(BackupCmd::Create(c)) => *c,
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
    fn delete_requests_are_named_after_their_backup_and_fit_a_name() {
        let short = delete_request_name("nightly");
        assert!(
            short.starts_with("nightly-") && short.len() == "nightly-".len() + 17,
            "{short}"
        );
        let long = delete_request_name(&"a".repeat(253));
        assert!(long.len() <= 253, "{}", long.len());
        assert!(long.starts_with("aaa"));
        assert!(
            long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{long}"
        );
        assert_eq!(label_value(&"b".repeat(70)).len(), 63);
        assert_eq!(label_value("x-"), "x");
    }

    #[rstest::rstest]
    #[case::name(&["Bad_Name"], "invalid backup name \"Bad_Name\"")]
    #[case::ttl(&["b", "--ttl", "3 days"], "--ttl: invalid duration \"3 days\"")]
    #[case::selector(&["b", "--selector", "app in web"], "invalid label selector \"app in web\"")]
    #[case::label(&["b", "--labels", "novalue"], "invalid label \"novalue\": expected key=value")]
    fn bad_flags_are_errors(#[case] args: &[&str], #[case] want: &str) {
        let err = backup_from_flags(&create(args), "velero").unwrap_err();
        assert!(format!("{err:#}").contains(want), "{err:#}");
    }
}
