//! `restore create|get|describe|logs|delete`, and `create restore` / `get restores`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use lifeboat_engine::catalog;
use lifeboat_engine::modifiers::Modifiers;
use lifeboat_engine::restore::{
    ItemReport, Outcome, RestoreOptions, RestoreProgressCounters, RestoreReport, run_restore,
};
use lifeboat_engine::storage::Store;
use lifeboat_types::api::names::validate_name;
use lifeboat_types::api::velero::{BackupResults, Restore, RestoreSpec, RestoreStatusSpec};
use lifeboat_types::rules::backups::{COMPLETED, newest};

use crate::cli::{
    Cli, DeleteArgs, DescribeArgs, FilterArgs, LocationArg, NameArgs, Output, SelectorArgs,
    SortArg, WaitArgs, parse_opt_bool,
};
use crate::common::{Mode, Server, connect, mode, open_store, progress_bar};
use crate::confirm::{confirm, counted};
use crate::exit::Exit;
use crate::output;
use lifeboat_engine::objects;
use lifeboat_types::api::crd::{RestoreResource, to_velero};

/// `restore ...` commands.
#[derive(Subcommand, Debug)]
pub enum RestoreCmd {
    /// Restore a backup into the cluster.
    #[command(after_help = "\
Examples:
  lifeboat restore create --from-backup nightly --wait
  lifeboat restore create r1 --from-backup nightly --include-namespaces shop --namespace-mappings shop:shop-restored
  lifeboat restore create --from-backup nightly --dry-run          # what would change, with diffs
  lifeboat restore create --from-backup nightly --existing-resource-policy update")]
    Create(Box<RestoreCreate>),
    /// List restores.
    #[command(after_help = "\
Examples:
  lifeboat restore get
  lifeboat restore get --sort-by .status.completionTimestamp
  lifeboat restore get r1 -o jsonpath='{.status.phase}'")]
    Get(RestoreGet),
    /// Describe restores.
    #[command(
        mut_arg("names", |a| a.help("Restore names (all when none)")),
        mut_arg("details", |a| a.help("Show every error and warning and the restored resource list")),
    )]
    Describe(DescribeArgs),
    /// Print a restore's logs.
    #[command(mut_arg("name", |a| a.help("The restore")))]
    Logs(NameArgs),
    /// Delete restores' records (restored objects stay in the cluster).
    #[command(
        mut_arg("names", |a| a.help("Restore names")),
        mut_arg("all", |a| a.help("Delete every restore record")),
    )]
    Delete(DeleteArgs),
    /// Wait until restores end (Completed, PartiallyFailed, Failed, FailedValidation).
    /// A restore of `restore create` is read from the storage location, where it appears
    /// when it ends; with --server, the cluster's Restore objects that `lifeboat server`
    /// runs. Exit code: 0 Completed, 3 PartiallyFailed, 1 Failed or FailedValidation (or an
    /// error), 4 --timeout passed first; with several restores the largest.
    #[command(
        mut_arg("names", |a| a.help("The restores")),
        after_help = "\
Examples:
  lifeboat restore wait r1
  lifeboat restore wait r1 --timeout 1h
  lifeboat -n velero restore wait r1 --server      # a Restore run by the in-cluster server"
    )]
    Wait(WaitArgs),
}

/// `restore get`.
#[derive(Args, Debug)]
pub struct RestoreGet {
    /// Restore names (all when none).
    pub names: Vec<String>,
    /// Output format: table, json, yaml, jsonpath=TEMPLATE.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub sort: SortArg,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `restore create`.
#[derive(Args, Debug, Default)]
#[command(
    mut_arg("include_namespaces", |a| a.help("Namespaces to include (globs)")),
    mut_arg("include_resources", |a| a.help("Resources to include")),
    mut_arg("selector", |a| a.help("Only restore objects matching this label selector")),
)]
pub struct RestoreCreate {
    /// The restore's name (default: <backup>-<timestamp>).
    pub name: Option<String>,
    /// The backup to restore.
    #[arg(long)]
    pub from_backup: Option<String>,
    /// Restore the newest completed backup of this schedule.
    #[arg(long)]
    pub from_schedule: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Namespace mappings: src1:dst1,src2:dst2.
    #[arg(long, value_delimiter = ',')]
    pub namespace_mappings: Vec<String>,
    #[command(flatten)]
    pub selectors: SelectorArgs,
    /// Include cluster-scoped resources (unset: only for a whole-cluster restore, and the
    /// PersistentVolumes of restored claims; a restore with --namespace-mappings creates
    /// PersistentVolumes only when this is set).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub include_cluster_resources: Option<bool>,
    /// Restore volumes from snapshots (recorded; volume data is not restored by this version).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub restore_volumes: Option<bool>,
    /// Keep Services' node ports.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub preserve_nodeports: Option<bool>,
    /// Resources whose status is restored too.
    #[arg(long, value_delimiter = ',')]
    pub status_include_resources: Vec<String>,
    /// Resources whose status is not restored.
    #[arg(long, value_delimiter = ',')]
    pub status_exclude_resources: Vec<String>,
    /// What to do with objects that exist: none (default) or update.
    #[arg(long)]
    pub existing_resource_policy: Option<String>,
    /// A ConfigMap (in --namespace) holding resource modifier rules.
    #[arg(long)]
    pub resource_modifier_configmap: Option<String>,
    /// A local file holding resource modifier rules.
    #[arg(long)]
    pub resource_modifier_file: Option<PathBuf>,
    /// Objects created at once.
    #[arg(long, default_value_t = 32)]
    pub parallelism: usize,
    /// Show what would be created, updated or skipped, with diffs; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Show progress and wait (lifeboat always runs the restore to the end).
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// After the restore, wait until the Deployments, StatefulSets and DaemonSets it made
    /// serve again (Available / all replicas ready), reporting each with the time it took;
    /// exit 4 naming the ones that are not when --wait-ready-timeout passes.
    #[arg(long)]
    pub wait_ready: bool,
    /// How long --wait-ready waits.
    #[arg(long, default_value = "10m", requires = "wait_ready")]
    pub wait_ready_timeout: lifeboat_types::GoDuration,
    /// Output format (json, yaml) instead of messages.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub location: LocationArg,
}

/// Builds the Restore a `restore create` command line describes.
pub fn restore_from_flags(c: &RestoreCreate, namespace: &str, backup: &str) -> Result<Restore> {
    let name = c
        .name
        .clone()
        .unwrap_or_else(|| format!("{backup}-{}", chrono::Utc::now().format("%Y%m%d%H%M%S")));
    validate_name("restore", &name)?;
    let mut mapping = BTreeMap::new();
    for m in &c.namespace_mappings {
        let (a, b) = m
            .split_once(':')
            .ok_or_else(|| anyhow!("invalid --namespace-mappings {m:?}: expected src:dst"))?;
        mapping.insert(a.trim().to_owned(), b.trim().to_owned());
    }
    let (label_selector, or_label_selectors) = c.selectors.parse()?;
    let restore_status = (!c.status_include_resources.is_empty()
        || !c.status_exclude_resources.is_empty())
    .then(|| RestoreStatusSpec {
        included_resources: c.status_include_resources.clone(),
        excluded_resources: c.status_exclude_resources.clone(),
    });
    let spec = RestoreSpec {
        backup_name: backup.to_owned(),
        schedule_name: c.from_schedule.clone(),
        included_namespaces: c.filter.include_namespaces.clone(),
        excluded_namespaces: c.filter.exclude_namespaces.clone(),
        included_resources: c.filter.include_resources.clone(),
        excluded_resources: c.filter.exclude_resources.clone(),
        namespace_mapping: mapping,
        label_selector,
        or_label_selectors,
        restore_pvs: c.restore_volumes,
        restore_status,
        preserve_node_ports: c.preserve_nodeports,
        include_cluster_resources: c.include_cluster_resources,
        existing_resource_policy: c.existing_resource_policy.clone(),
        resource_modifier: c.resource_modifier_configmap.as_ref().map(|n| {
            lifeboat_types::api::velero::TypedLocalObjectReference {
                api_group: None,
                kind: "ConfigMap".into(),
                name: n.clone(),
            }
        }),
        ..Default::default()
    };
    let mut r = Restore::new(name, spec);
    r.metadata.namespace = Some(namespace.to_owned());
    Ok(r)
}

/// The backup --from-backup names (the flags' errors when it is not the one given).
fn resolve_backup_name(c: &RestoreCreate) -> Result<String> {
    match (&c.from_backup, &c.from_schedule) {
        (Some(b), None) => Ok(b.clone()),
        (Some(_), Some(_)) => bail!("use either --from-backup or --from-schedule, not both"),
        _ => bail!("name the backup to restore: --from-backup NAME (or --from-schedule NAME)"),
    }
}

/// Picks the backup: --from-backup, or the newest completed backup of --from-schedule.
async fn resolve_backup(store: &Store, c: &RestoreCreate) -> Result<String> {
    match (&c.from_backup, &c.from_schedule) {
        (None, Some(s)) => {
            let backups = catalog::list_backups(store).await?;
            newest(&backups, Some(s), COMPLETED)
                .map(|b| b.metadata.name.clone())
                .ok_or_else(|| {
                    anyhow!(
                        "schedule {s:?} has no Completed backup in storage location {:?}",
                        store.name()
                    )
                })
        }
        _ => resolve_backup_name(c),
    }
}

async fn load_modifiers(
    cli: &Cli,
    c: &RestoreCreate,
    cluster: &lifeboat_engine::cluster::Cluster,
) -> Result<Option<Modifiers>> {
    if let Some(f) = &c.resource_modifier_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        return Ok(Some(
            Modifiers::parse(&text).with_context(|| f.display().to_string())?,
        ));
    }
    if let Some(name) = &c.resource_modifier_configmap {
        let r = lifeboat_types::plan::backup::ApiResource {
            group: String::new(),
            version: "v1".into(),
            plural: "configmaps".into(),
            singular: "configmap".into(),
            kind: "ConfigMap".into(),
            namespaced: true,
            short_names: vec![],
            verbs: vec![],
        };
        let text = cluster
            .get_raw(&r, Some(&cli.namespace), name)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "resource modifier ConfigMap {}/{name} not found",
                    cli.namespace
                )
            })?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let data: BTreeMap<String, String> =
            serde_json::from_value(v["data"].clone()).unwrap_or_default();
        return Ok(Some(
            Modifiers::from_configmap_data(&data)
                .with_context(|| format!("ConfigMap {}/{name}", cli.namespace))?,
        ));
    }
    Ok(None)
}

/// `restore create` / `create restore`.
pub async fn create(cli: &Cli, c: &RestoreCreate) -> Result<Exit> {
    if let Mode::Cluster(s) = mode(cli, c.location.storage_location.as_deref(), false).await? {
        return create_in_cluster(cli, &s, c).await;
    }
    let store = open_store(c.location.storage_location.as_deref())?;
    let backup = resolve_backup(&store, c).await?;
    let mut restore = restore_from_flags(c, &cli.namespace, &backup)?;
    if c.name.is_none() {
        // A generated name (<backup>-<timestamp>) taken by a restore of the same second
        // gets the next free suffix: scripts run several unnamed restores of one backup
        // in a row (the guides do). A name the user gave is never changed.
        let base = restore.metadata.name.clone();
        for n in 1..=MAX_NAME_SUFFIX {
            let candidate = generated_name(&base, n);
            match lifeboat_engine::catalog::get_restore(&store, &candidate).await {
                Err(lifeboat_engine::catalog::CatalogError::NotFound { .. }) => {
                    restore.metadata.name = candidate;
                    break;
                }
                _ => continue,
            }
        }
    }
    run_one_restore(cli, &store, restore, c).await
}

/// `restore create` through the cluster: a Restore object the server runs; with
/// `--wait`, its status is followed to the end. A dry run changes nothing, so it runs
/// here, reading the backup from the server's location.
async fn create_in_cluster(cli: &Cli, s: &Server, c: &RestoreCreate) -> Result<Exit> {
    let backup = match (&c.from_backup, &c.from_schedule) {
        (None, Some(sched)) if c.from_backup.is_none() => {
            let backups = crate::cmd::backup::cluster_backups(s, &[]).await?;
            newest(&backups, Some(sched), COMPLETED)
                .map(|b| b.metadata.name.clone())
                .ok_or_else(|| {
                    anyhow!("schedule {sched:?} has no Completed backup in {}", s.label)
                })?
        }
        _ => resolve_backup_name(c)?,
    };
    if c.dry_run {
        let (store, _) = s.backup_store(&backup).await?;
        let restore = restore_from_flags(c, &cli.namespace, &backup)?;
        return run_one_restore(cli, &store, restore, c).await;
    }
    if c.resource_modifier_file.is_some() {
        bail!(
            "--resource-modifier-file is read on this machine, and the restore runs in the cluster: put the rules in a ConfigMap and pass --resource-modifier-configmap NAME, or pass --mode local"
        );
    }
    let mut restore = restore_from_flags(c, &s.ns, &backup)?;
    // A generated name taken already gets the next free suffix, as here.
    let base = restore.metadata.name.clone();
    let tries = if c.name.is_none() { MAX_NAME_SUFFIX } else { 1 };
    let mut n = 1;
    loop {
        restore.metadata.name = generated_name(&base, n);
        let obj = RestoreResource::new(&restore.metadata.name, restore.spec.clone());
        match objects::create(&s.cluster, &s.ns, obj, &restore.metadata).await {
            Ok(()) => break,
            Err(objects::ObjectError::AlreadyExists { .. }) if n < tries => n += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let name = restore.metadata.name.clone();
    let read = || async {
        let o: RestoreResource = objects::get(&s.cluster, &s.ns, "restore", &name).await?;
        anyhow::Ok(to_velero::<Restore>(&o)?)
    };
    if c.output.is_none() {
        println!(
            "Restore request \"{name}\" submitted successfully to {}.",
            s.label
        );
    }
    if !c.wait && !c.wait_ready {
        match &c.output {
            Some(o) => {
                output::print_structured(&read().await?, o)?;
            }
            None => println!(
                "Run `lifeboat restore describe {name}` or `lifeboat restore logs {name}` for more details."
            ),
        }
        return Ok(Exit::Ok);
    }
    let done = crate::wait::follow(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} objects",
        read,
        Restore::phase,
        |r| {
            let p = r.status.as_ref()?.progress?;
            Some((p.items_restored, p.total_items))
        },
    )
    .await?;
    if let Some(o) = &c.output {
        output::print_structured(&done, o)?;
    } else {
        let st = done.status.clone().unwrap_or_default();
        let p = st.progress.unwrap_or_default();
        println!(
            "Restore completed with status: {}. {} of {} objects restored ({} errors, {} warnings). You may check for more information using the commands `lifeboat restore describe {name}` and `lifeboat restore logs {name}`.",
            done.phase(),
            p.items_restored,
            p.total_items,
            st.errors,
            st.warnings
        );
        if let Some(msg) = st.failure_reason.filter(|m| !m.is_empty()) {
            println!("Failure reason: {msg}");
        }
    }
    wait_ready_after(&s.cluster, c, &name, Exit::of_restore(done.phase())).await
}

/// How many generated names `restore create` tries before it lets the name clash be the
/// error.
const MAX_NAME_SUFFIX: u32 = 100;

/// The `n`-th generated restore name: the base itself, then `<base>-2`, `<base>-3`, ...
fn generated_name(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{n}")
    }
}

/// Runs a Restore (from flags or a document) and prints the outcome.
pub async fn run_one_restore(
    cli: &Cli,
    store: &Store,
    restore: Restore,
    c: &RestoreCreate,
) -> Result<Exit> {
    let cluster = connect(cli).await?;
    let modifiers = load_modifiers(cli, c, &cluster).await?;
    let opts = RestoreOptions {
        parallelism: c.parallelism.max(1),
        dry_run: c.dry_run,
        modifiers,
        // Here, without the server, no node agent takes volume work: a backed-up pod's
        // volume data is named in a warning (restore through the server to restore it).
        pod_volumes: None,
        standby: None,
        update_namespaced_only: false,
    };
    let name = restore.metadata.name.clone();
    let quiet = c.output.is_some();
    if !quiet && !c.dry_run {
        println!("Restore request \"{name}\" submitted successfully.");
    }
    let progress = Arc::new(RestoreProgressCounters::default());
    let bar = progress_bar(
        c.wait,
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} objects",
    );
    let job = run_restore(&cluster, store, restore, &opts, progress.clone());
    tokio::pin!(job);
    let result = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(pb) = &bar {
                    pb.set_length(progress.total.load(Ordering::Relaxed));
                    pb.set_position(progress.done.load(Ordering::Relaxed));
                }
            }
        }
    };
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let report = result?;
    if c.dry_run {
        print_dry_run(&report, c.output.as_ref())?;
        return Ok(Exit::of_check(report.results.errors.is_empty()));
    }
    if let Some(o) = &c.output {
        output::print_structured(&report.restore, o)?;
    } else {
        let st = report.restore.status.clone().unwrap_or_default();
        let p = st.progress.unwrap_or_default();
        println!(
            "Restore completed with status: {}. {} of {} objects restored ({} errors, {} warnings). You may check for more information using the commands `lifeboat restore describe {name}` and `lifeboat restore logs {name}`.",
            report.restore.phase(),
            p.items_restored,
            p.total_items,
            st.errors,
            st.warnings
        );
    }
    let exit = Exit::of_restore(report.restore.phase());
    wait_ready_after(&cluster, c, &name, exit).await
}

/// `--wait-ready` after a restore that ended in `exit`: a failed restore is not waited on.
async fn wait_ready_after(
    cluster: &lifeboat_engine::cluster::Cluster,
    c: &RestoreCreate,
    name: &str,
    exit: Exit,
) -> Result<Exit> {
    if !c.wait_ready || c.dry_run || exit == Exit::Error {
        return Ok(exit);
    }
    let timeout = c.wait_ready_timeout.0;
    let waited = crate::wait::workloads_ready(cluster, name, timeout).await?;
    Ok(exit.max(waited))
}

fn action_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Created | Outcome::WouldCreate => "create",
        Outcome::Updated | Outcome::WouldUpdate { .. } => "update",
        Outcome::SkipIdentical => "skip (exists, identical)",
        Outcome::SkipDiffers { .. } => "skip (exists, differs)",
        Outcome::Failed { .. } => "error",
    }
}

fn print_dry_run(report: &RestoreReport, output: Option<&Output>) -> Result<()> {
    let mut summary: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &report.items {
        *summary.entry(action_name(&i.outcome)).or_default() += 1;
    }
    if let Some(o) = output {
        let v = serde_json::json!({"dryRun": true, "items": report.items, "summary": summary,
            "errors": report.results.errors, "warnings": report.results.warnings});
        output::print_structured(&v, o)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = report
        .items
        .iter()
        .map(|i: &ItemReport| {
            vec![
                action_name(&i.outcome).to_string(),
                i.resource.clone(),
                i.namespace.clone().unwrap_or_default(),
                i.name.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["ACTION", "RESOURCE", "NAMESPACE", "NAME"], &rows)
    );
    for i in &report.items {
        match &i.outcome {
            Outcome::SkipDiffers { diff: Some(diff) } | Outcome::WouldUpdate { diff } => {
                println!();
                print!("{diff}");
            }
            Outcome::Failed { error } => println!("\nerror: {} {}: {error}", i.resource, i.name),
            _ => {}
        }
    }
    let parts: Vec<String> = summary.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "\nDry run of restore from backup {:?}: {}. Nothing was changed.",
        report.restore.spec.backup_name,
        parts.join(", ")
    );
    Ok(())
}

fn restores_table(restores: &[Restore]) -> String {
    let rows: Vec<Vec<String>> = restores
        .iter()
        .map(|r| {
            let st = r.status.clone().unwrap_or_default();
            vec![
                r.metadata.name.clone(),
                r.spec.backup_name.clone(),
                r.phase().to_string(),
                st.start_timestamp
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "<nil>".into()),
                st.completion_timestamp
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "<nil>".into()),
                st.errors.to_string(),
                st.warnings.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "BACKUP",
            "STATUS",
            "STARTED",
            "COMPLETED",
            "ERRORS",
            "WARNINGS",
        ],
        &rows,
    )
}

fn describe(r: &Restore, results: &BackupResults, details: bool) -> String {
    let s = &r.spec;
    let st = r.status.clone().unwrap_or_default();
    let mut o = String::new();
    let list = output::list_or;
    let _ = writeln!(o, "Name:         {}", r.metadata.name);
    let _ = writeln!(
        o,
        "Namespace:    {}",
        r.metadata.namespace.as_deref().unwrap_or("velero")
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "Phase:                       {}", r.phase());
    let p = st.progress.unwrap_or_default();
    let _ = writeln!(o, "Total items to be restored:  {}", p.total_items);
    let _ = writeln!(o, "Items restored:              {}", p.items_restored);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Started:    {}",
        st.start_timestamp
            .map(|t| t.to_string())
            .unwrap_or_else(|| "<n/a>".into())
    );
    let _ = writeln!(
        o,
        "Completed:  {}",
        st.completion_timestamp
            .map(|t| t.to_string())
            .unwrap_or_else(|| "<n/a>".into())
    );
    output::write_results(&mut o, results, details);
    let _ = writeln!(o);
    let _ = writeln!(o, "Backup:  {}", s.backup_name);
    let _ = writeln!(o);
    let _ = writeln!(o, "Namespaces:");
    let _ = writeln!(
        o,
        "  Included:  {}",
        list(&s.included_namespaces, "all namespaces found in the backup")
    );
    let _ = writeln!(o, "  Excluded:  {}", list(&s.excluded_namespaces, "<none>"));
    let _ = writeln!(o);
    let _ = writeln!(o, "Resources:");
    let _ = writeln!(o, "  Included:        {}", list(&s.included_resources, "*"));
    let mut excluded: Vec<String> = lifeboat_types::plan::restore::NEVER_RESTORED
        .iter()
        .map(|s| s.to_string())
        .collect();
    excluded.extend(s.excluded_resources.iter().cloned());
    let _ = writeln!(o, "  Excluded:        {}", excluded.join(", "));
    let cs = output::tri_state(s.include_cluster_resources, "included", "excluded");
    let _ = writeln!(o, "  Cluster-scoped:  {cs}");
    let _ = writeln!(o);
    let maps: Vec<String> = s
        .namespace_mapping
        .iter()
        .map(|(a, b)| format!("{a}={b}"))
        .collect();
    let _ = writeln!(o, "Namespace mappings:  {}", list(&maps, "<none>"));
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Existing Resource Policy:    {}",
        s.existing_resource_policy.as_deref().unwrap_or("<none>")
    );
    let np = output::tri_state(s.preserve_node_ports, "true", "false");
    let _ = writeln!(o, "Preserve Service NodePorts:  {np}");
    if let Some(h) = st.hook_status {
        let _ = writeln!(o);
        let _ = writeln!(o, "HooksAttempted:  {}", h.hooks_attempted);
        let _ = writeln!(o, "HooksFailed:     {}", h.hooks_failed);
    }
    o
}

/// `restore ...`.
pub async fn run(cli: &Cli, cmd: &RestoreCmd) -> Result<Exit> {
    match cmd {
        RestoreCmd::Create(c) => create(cli, c).await,
        RestoreCmd::Get(g) => get(cli, g).await,
        RestoreCmd::Describe(d) => describe_cmd(cli, d).await,
        RestoreCmd::Logs(a) => {
            let store = match mode(cli, a.location.storage_location.as_deref(), false).await? {
                Mode::Local => open_store(a.location.storage_location.as_deref())?,
                Mode::Cluster(s) => restore_store(&s, &a.name).await?,
            };
            print!("{}", catalog::restore_logs(&store, &a.name).await?);
            Ok(Exit::Ok)
        }
        RestoreCmd::Delete(d) => delete(cli, d).await,
        RestoreCmd::Wait(a) => wait(cli, a).await,
    }
}

/// `restore wait`.
async fn wait(cli: &Cli, a: &WaitArgs) -> Result<Exit> {
    use crate::wait::{Seen, each, parse_timeout};
    let timeout = parse_timeout(&a.timeout)?;
    if let Mode::Cluster(s) = mode(cli, a.location.storage_location.as_deref(), a.server).await? {
        let (cluster, ns) = (&s.cluster, s.ns.as_str());
        return each(
            "Restore",
            &a.names,
            &s.label,
            timeout,
            &a.timeout,
            |name| async move {
                let o: lifeboat_types::api::crd::RestoreResource =
                    lifeboat_engine::objects::get(cluster, ns, "restore", &name).await?;
                Ok(Seen::Phase(o.status.map(|s| s.phase).unwrap_or_default()))
            },
            |_| {},
        )
        .await;
    }
    let store = &open_store(a.location.storage_location.as_deref())?;
    each(
        "Restore",
        &a.names,
        &format!("storage location {:?}", store.name()),
        timeout,
        &a.timeout,
        |name| async move {
            match catalog::get_restore(store, &name).await {
                Ok(r) => Ok(Seen::Phase(r.phase())),
                Err(catalog::CatalogError::NotFound { .. }) => Ok(Seen::Absent),
                Err(e) => Err(e.into()),
            }
        },
        |name| {
            eprintln!(
                "Restore {name:?} is not in storage location {:?} yet; waiting for it to be stored (a restore appears there when it ends).",
                store.name()
            )
        },
    )
    .await
}

/// The cluster's Restore objects (`names`, or all), as velero.io/v1 Restores.
async fn cluster_restores(s: &Server, names: &[String]) -> Result<Vec<Restore>> {
    let objs: Vec<RestoreResource> =
        objects::get_or_list(&s.cluster, &s.ns, "restore", names).await?;
    objs.iter()
        .map(|o| {
            to_velero(o).with_context(|| format!("restore {:?} cannot be read", o.metadata.name))
        })
        .collect()
}

/// The storage location where the server stores restore `name`'s logs and results: its
/// backup's.
async fn restore_store(s: &Server, name: &str) -> Result<Store> {
    let r: RestoreResource = objects::get(&s.cluster, &s.ns, "restore", name).await?;
    Ok(s.backup_store(&r.spec.backup_name).await?.0)
}

async fn describe_cmd(cli: &Cli, d: &DescribeArgs) -> Result<Exit> {
    if let Mode::Cluster(s) = mode(cli, d.location.storage_location.as_deref(), false).await? {
        let restores = cluster_restores(&s, &d.names).await?;
        // The results are stored, in its backup's location, when the restore ends.
        return print_described(&restores, d, async |r: &Restore| {
            if !crate::wait::Phase::is_terminal(r.phase()) {
                return Ok(Default::default());
            }
            match s.backup_store(&r.spec.backup_name).await {
                Ok((store, _)) => Ok(catalog::restore_results(&store, &r.metadata.name).await?),
                Err(e) => {
                    eprintln!(
                        "warning: {e:#}; describing restore {:?} without its stored results",
                        r.metadata.name
                    );
                    Ok(Default::default())
                }
            }
        })
        .await;
    }
    let store = open_store(d.location.storage_location.as_deref())?;
    let restores = if d.names.is_empty() {
        catalog::list_restores(&store).await?
    } else {
        let mut v = Vec::new();
        for n in &d.names {
            v.push(catalog::get_restore(&store, n).await?);
        }
        v
    };
    print_described(&restores, d, async |r: &Restore| {
        Ok(catalog::restore_results(&store, &r.metadata.name).await?)
    })
    .await
}

/// Prints `restore describe` of `restores` (here or through the cluster: `results_of`
/// reads each one's stored results).
async fn print_described(
    restores: &[Restore],
    d: &DescribeArgs,
    results_of: impl AsyncFn(&Restore) -> Result<BackupResults>,
) -> Result<Exit> {
    if d.output != Output::Table {
        output::print_one_or_list(restores, "RestoreList", d.names.len() == 1, &d.output)?;
        return Ok(Exit::Ok);
    }
    for (i, r) in restores.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let results = results_of(r).await?;
        print!("{}", describe(r, &results, d.details));
    }
    Ok(Exit::Ok)
}

async fn delete(cli: &Cli, d: &DeleteArgs) -> Result<Exit> {
    if let Mode::Cluster(s) = mode(cli, d.location.storage_location.as_deref(), false).await? {
        let targets: Vec<String> = if d.all {
            cluster_restores(&s, &[])
                .await?
                .into_iter()
                .map(|r| r.metadata.name)
                .collect()
        } else {
            cluster_restores(&s, &d.names).await?;
            d.names.clone()
        };
        if targets.is_empty() {
            bail!("name the restores to delete, or pass --all");
        }
        if !confirm(
            &format!(
                "delete {} through {}",
                counted("restore", &targets),
                s.label
            ),
            "Restored objects stay in the cluster.",
            d.confirm.confirm,
        )? {
            return Ok(Exit::Ok);
        }
        for n in &targets {
            objects::delete::<RestoreResource>(&s.cluster, &s.ns, "restore", n).await?;
            println!("Restore \"{n}\" deleted.");
        }
        return Ok(Exit::Ok);
    }
    let store = open_store(d.location.storage_location.as_deref())?;
    let targets = if d.all {
        store.list_restores().await?
    } else {
        d.names.clone()
    };
    if targets.is_empty() {
        bail!("name the restores to delete, or pass --all");
    }
    if !confirm(
        &format!("delete {}", counted("restore", &targets)),
        "Restored objects stay in the cluster.",
        d.confirm.confirm,
    )? {
        return Ok(Exit::Ok);
    }
    for n in &targets {
        catalog::get_restore(&store, n).await?;
        store.delete_restore(n).await?;
        println!("Restore \"{n}\" deleted.");
    }
    Ok(Exit::Ok)
}

/// `restore get` / `get restores`.
pub async fn get(cli: &Cli, g: &RestoreGet) -> Result<Exit> {
    g.sort.key::<Restore>()?;
    let (mut restores, place) =
        match mode(cli, g.location.storage_location.as_deref(), false).await? {
            Mode::Cluster(s) => (cluster_restores(&s, &g.names).await?, s.label),
            Mode::Local => {
                let store = open_store(g.location.storage_location.as_deref())?;
                (catalog::list_restores(&store).await?, String::new())
            }
        };
    if !g.names.is_empty() {
        for n in &g.names {
            if !restores.iter().any(|r| &r.metadata.name == n) {
                bail!("restore {n:?} not found");
            }
        }
        restores.retain(|r| g.names.contains(&r.metadata.name));
    }
    g.sort.sort(&mut restores)?;
    if g.output == Output::Table {
        if restores.is_empty() && !place.is_empty() {
            eprintln!("No restores found in {place}.");
        }
        print!("{}", restores_table(&restores));
    } else {
        output::print_one_or_list(&restores, "RestoreList", g.names.len() == 1, &g.output)?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, CreateCmd};
    use clap::Parser;

    fn create(args: &[&str]) -> RestoreCreate {
        match crate::cli::parse_for_test(&["restore", "create"], args) {
            Command::Restore(RestoreCmd::Create(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_restore_spec() {
        let c = create(&[
            "r1",
            "--from-backup",
            "nightly",
            "--include-namespaces",
            "shop,web",
            "--exclude-resources",
            "secrets",
            "--namespace-mappings",
            "shop:shop-restored, web : web-2",
            "--selector",
            "app=web",
            "--or-selector",
            "tier=a or tier=b",
            "--include-cluster-resources=false",
            "--status-include-resources",
            "deployments",
            "--resource-modifier-configmap",
            "mods",
        ]);
        let r = restore_from_flags(&c, "velero", "nightly").unwrap();
        assert_eq!(r.metadata.name, "r1");
        assert_eq!(r.metadata.namespace.as_deref(), Some("velero"));
        let s = &r.spec;
        assert_eq!(s.backup_name, "nightly");
        assert_eq!(s.included_namespaces, ["shop", "web"]);
        assert_eq!(s.excluded_resources, ["secrets"]);
        assert_eq!(s.namespace_mapping["shop"], "shop-restored");
        assert_eq!(s.namespace_mapping["web"], "web-2");
        assert_eq!(
            s.label_selector.as_ref().unwrap().match_labels["app"],
            "web"
        );
        assert_eq!(s.or_label_selectors.len(), 2);
        assert_eq!(s.include_cluster_resources, Some(false));
        assert_eq!(
            s.restore_status.as_ref().unwrap().included_resources,
            ["deployments"]
        );
        assert_eq!(s.resource_modifier.as_ref().unwrap().name, "mods");
    }

    #[test]
    fn unnamed_restore_is_named_after_its_backup() {
        let r = restore_from_flags(&create(&["--from-backup", "b1"]), "velero", "b1").unwrap();
        assert!(r.metadata.name.starts_with("b1-"), "{}", r.metadata.name);
        assert_eq!(r.metadata.name.len(), "b1-".len() + "YYYYmmddHHMMSS".len());
    }

    #[test]
    fn bad_flags_name_the_problem() {
        let e = restore_from_flags(&create(&["--namespace-mappings", "shop"]), "velero", "b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--namespace-mappings \"shop\""), "{e}");
        let e = restore_from_flags(&create(&["Bad_Name"]), "velero", "b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Bad_Name"), "{e}");
        let e =
            restore_from_flags(&create(&["--selector", "app in web"]), "velero", "b").unwrap_err();
        assert!(
            format!("{e:#}").contains("invalid label selector \"app in web\""),
            "{e:#}"
        );
    }

    /// A bad --wait-ready-timeout is refused with the command line, before any restore
    /// runs (it was parsed only after the restore had ended).
    #[test]
    fn wait_ready_timeout_is_checked_before_the_restore() {
        let c = create(&[
            "--from-backup",
            "b",
            "--wait-ready",
            "--wait-ready-timeout",
            "90s",
        ]);
        assert_eq!(c.wait_ready_timeout.0, std::time::Duration::from_secs(90));
        let argv = [
            "lifeboat",
            "restore",
            "create",
            "--from-backup",
            "b",
            "--wait-ready",
            "--wait-ready-timeout",
            "bogus",
        ];
        let e = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("--wait-ready-timeout"), "{e}");
    }

    #[test]
    fn create_restore_is_restore_create() {
        let argv = ["lifeboat", "create", "restore", "--from-backup", "b", "-w"];
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Create(CreateCmd::Restore(c)) => {
                assert_eq!(c.from_backup.as_deref(), Some("b"));
                assert!(c.wait);
                assert_eq!(c.parallelism, 32);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn generated_restore_names_go_on_with_a_suffix() {
        assert_eq!(generated_name("b-20260101000000", 1), "b-20260101000000");
        assert_eq!(generated_name("b-20260101000000", 2), "b-20260101000000-2");
        assert_eq!(
            generated_name("b-20260101000000", 10),
            "b-20260101000000-10"
        );
    }
}
