//! `dr ...`: disaster recovery across clusters from a DR plan file (`kind: DRPlan`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lifeboat_dr::drill::drill_markdown;
use lifeboat_dr::drill::{DrillOptions, drill};
use lifeboat_dr::report::status_markdown;
use lifeboat_dr::status::status;
use lifeboat_types::api::velero::BackupStorageLocation;
use lifeboat_types::dr::plan::{Plan, parse};
use lifeboat_types::dr::status::Health;

use crate::cli::Cli;
use crate::exit::Exit;
use crate::output;

/// `dr ...`.
#[derive(Subcommand, Debug)]
pub enum DrCmd {
    /// Read and check a DR plan: every broken rule is named by its field.
    #[command(after_help = "\
Examples:
  lifeboat dr validate shop-dr.yaml")]
    Validate(ValidateArgs),
    /// Per cluster of the plan: the RPO now (age of the newest Completed backup of the
    /// protected namespaces that the cluster can read) against the plan's, readiness to
    /// take over (API server, Ready nodes, lifeboat installed, locations readable),
    /// schedule coverage of the protected namespaces on the active cluster, and how far
    /// each cluster's newest backup lags behind.
    #[command(after_help = "\
Exit codes (for cron and monitoring): 0 healthy; 3 warning (it would work today, but something
erodes it: a namespace no schedule covers often enough, too few backups, a standby not ready
while another is); 1 critical (no standby can take over within the RPO) or an error.

Examples:
  lifeboat dr status shop-dr.yaml
  lifeboat dr status shop-dr.yaml -o json | jq .clusters[].rpo
  lifeboat dr status shop-dr.yaml -o markdown > status.md")]
    Status(StatusArgs),
    /// Rehearse a failover without touching what runs: restore the newest backup of the
    /// protected namespaces into new <ns>-drill-<id> namespaces on a standby (cluster-wide
    /// objects left out), wait until the workloads are Available, run the plan's checks,
    /// measure RTO and RPO, compare object counts, delete everything the drill made, and
    /// judge it by the plan's criteria. The active cluster and its schedules go on.
    #[command(after_help = "\
Exit codes: 0 passed; 1 failed (the report names each failed criterion) or could not run.

Examples:
  lifeboat dr drill shop-dr.yaml                       # on the plan's first standby
  lifeboat dr drill shop-dr.yaml --on dr-west --report-dir ./drills
  lifeboat dr drill shop-dr.yaml -o json")]
    Drill(DrillArgs),
    /// The plan as a runbook a person follows at 3 a.m.: contacts and escalation, the
    /// tier table, each service's RPO/RTO (and the business impact analysis the plan
    /// carries) with the RTO the last drill measured, the exact commands to assess, fail
    /// over, verify and fail back, and the audit's findings on the active cluster. An
    /// active cluster that cannot be reached is said so in the runbook, which is printed
    /// anyway.
    #[command(after_help = "\
Examples:
  lifeboat dr runbook shop-dr.yaml > RUNBOOK.md
  lifeboat dr runbook shop-dr.yaml -o html > runbook.html
  lifeboat dr runbook shop-dr.yaml --offline          # from the plan alone, no cluster asked")]
    Runbook(RunbookArgs),
    /// Move the protected namespaces to a standby: refused while the active cluster is
    /// healthy (unless --force); the old active fenced when reachable (its schedules of
    /// the namespaces paused, Deployments and StatefulSets scaled to 0 with their counts
    /// kept in an annotation); the newest backup the standby reads restored there; the
    /// plan's hooks and verification run. When a step fails, what was done is undone
    /// (the namespaces the restore made deleted, the old active scaled back and its
    /// schedules resumed) and what could not be is named.
    #[command(after_help = "\
Exit codes: 0 succeeded (or --dry-run); 1 rolled back, failed, refused or an error.

Examples:
  lifeboat dr failover shop-dr.yaml --dry-run          # every step and what it would change
  lifeboat dr failover shop-dr.yaml --to dr-west       # the active cluster is down
  lifeboat dr failover shop-dr.yaml --force            # a planned switch from a healthy cluster
  lifeboat dr failover shop-dr.yaml -o json --report-dir ./failovers")]
    Failover(FailoverArgs),
    /// Return the protected namespaces to the original cluster after a failover: a fresh
    /// backup of the acting cluster written to a location both read, restored into the
    /// original over what fencing left there (existing objects updated, fenced workloads
    /// scaled to their kept counts) and verified; traffic moved in weighted steps through
    /// the plan's trafficSwitch hooks (LIFEBOAT_DR_WEIGHT), the plan's checks after each;
    /// then the acting cluster back to standby (schedules paused, workloads at 0, counts
    /// kept) and the original's schedules that fencing paused resumed. When a step before
    /// the acting cluster is fenced fails, the failback is undone and the acting cluster
    /// keeps serving.
    #[command(after_help = "\
Exit codes: 0 succeeded (or --dry-run); 1 undone, failed, refused or an error.

Examples:
  lifeboat dr failback shop-dr.yaml --dry-run
  lifeboat dr failback shop-dr.yaml --from dr-west --to prod-east
  lifeboat dr failback shop-dr.yaml --weights 50,100 -o json --report-dir ./failbacks")]
    Failback(FailbackArgs),
    /// Keep a warm standby (strategy: warm-standby): restore the newest backup of the
    /// protected namespaces into the standby, held — Deployments and StatefulSets at 0
    /// replicas with their counts kept, CronJobs suspended, pods, ReplicaSets and Jobs
    /// left out, every object labelled lifeboat.dev/standby-of=<plan> — updating what an
    /// earlier sync restored and deleting the plan's objects the backup no longer holds
    /// (never an object without the label). A failover to the standby then only scales
    /// up. Refused on the active cluster.
    #[command(after_help = "\
Exit codes: 0 synced or up to date; 1 failed, refused or an error.

Examples:
  lifeboat dr sync shop-dr.yaml                      # the plan's first standby
  lifeboat dr sync shop-dr.yaml --on dr-west -o json
  while sleep 300; do lifeboat dr sync shop-dr.yaml; done")]
    Sync(SyncArgs),
}

/// `dr runbook` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunbookFormat {
    /// Markdown.
    Markdown,
    /// A self-contained HTML page.
    Html,
}

/// `dr runbook` flags.
#[derive(Args, Debug)]
pub struct RunbookArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "markdown")]
    pub output: RunbookFormat,
    /// Do not ask the active cluster (no last drill, no audit).
    #[arg(long)]
    pub offline: bool,
}

/// `dr sync` flags.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The standby to sync (default: the plan's first standby).
    #[arg(long)]
    pub on: Option<String>,
    /// The id in the sync's restore name (default: from the clock).
    #[arg(long)]
    pub id: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: ReportFormat,
}

/// `dr failback` flags.
#[derive(Args, Debug)]
pub struct FailbackArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The cluster serving now (default: the plan's active cluster).
    #[arg(long)]
    pub from: Option<String>,
    /// The original cluster to return to (default: the plan's first standby).
    #[arg(long)]
    pub to: Option<String>,
    /// The traffic steps, percent on the original (default: 10,30,50,70,90,100).
    #[arg(long, value_delimiter = ',')]
    pub weights: Option<Vec<u8>>,
    /// Print every step and what it would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The id in the backup's and restore's names (default: from the clock).
    #[arg(long)]
    pub id: Option<String>,
    /// Also write the report there as <plan>-failback-<id>.md and .json (files 0600).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// When the failback succeeded, mark the original cluster active in the plan file
    /// again, and no other (one value changed or added; comments and layout kept).
    #[arg(long)]
    pub update_plan: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: ReportFormat,
}

/// `dr failover` flags.
#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The cluster to fail over to (default: the plan's first standby).
    #[arg(long)]
    pub to: Option<String>,
    /// Print every step and what it would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail over from a healthy active cluster (a planned switch).
    #[arg(long)]
    pub force: bool,
    /// The id in the restore's name (default: from the clock).
    #[arg(long)]
    pub id: Option<String>,
    /// Also write the report there as <plan>-failover-<id>.md and .json (files 0600).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// When the failover succeeded, mark the cluster that took over active in the plan
    /// file, and no other (one value changed or added; comments and layout kept). Left
    /// out, the file is not touched: whatever else reads it (a `dr sync` loop, a `dr
    /// status` cron) goes on seeing the old active until someone changes it.
    #[arg(long)]
    pub update_plan: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: ReportFormat,
}

/// `dr validate` flags.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The plan file.
    pub plan: PathBuf,
}

/// Report formats of `dr status` and `dr drill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A table for people.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Markdown (for tickets and chat).
    Markdown,
}

/// `dr status` flags.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: ReportFormat,
}

/// `dr drill` flags.
#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The cluster to drill on (default: the plan's first standby).
    #[arg(long)]
    pub on: Option<String>,
    /// The id in the drill namespaces' names (default: from the clock).
    #[arg(long)]
    pub id: Option<String>,
    /// Leave the drill namespaces for a look (the cleanup criterion then fails).
    #[arg(long)]
    pub keep: bool,
    /// Also write the report there as <plan>-drill-<id>.md and .json (files 0600).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: ReportFormat,
}

/// Runs a `dr` subcommand.
pub async fn run(_cli: &Cli, cmd: &DrCmd) -> Result<Exit> {
    match cmd {
        DrCmd::Validate(a) => {
            let plan = read_plan(&a.plan)?;
            println!(
                "DR plan {} is valid: {} clusters (active {}), namespaces {}, RPO {}, RTO {}, strategy {}.",
                plan.name,
                plan.spec.clusters.len(),
                plan.active().name,
                plan.spec.namespaces.join(", "),
                lifeboat_types::GoDuration(plan.rpo),
                lifeboat_types::GoDuration(plan.rto),
                plan.spec.strategy
            );
            Ok(Exit::Ok)
        }
        DrCmd::Runbook(a) => {
            let plan = read_plan(&a.plan)?;
            let facts = runbook_facts(&plan, a.offline).await;
            let file = a.plan.display().to_string();
            let md = lifeboat_types::dr::runbook::markdown(&plan, &file, &facts);
            match a.output {
                RunbookFormat::Markdown => print!("{md}"),
                RunbookFormat::Html => print!(
                    "{}",
                    lifeboat_types::format::html::page(&format!("DR runbook: {}", plan.name), &md)
                ),
            }
            Ok(Exit::Ok)
        }
        DrCmd::Status(a) => {
            let plan = read_plan(&a.plan)?;
            let s = status(&plan, &local_location).await;
            match a.output {
                ReportFormat::Table => print!("{}", status_table(&s)),
                ReportFormat::Markdown => print!("{}", status_markdown(&s)),
                ReportFormat::Json => {
                    output::print_structured(&s, &crate::cli::Output::Json)?;
                }
                ReportFormat::Yaml => {
                    output::print_structured(&s, &crate::cli::Output::Yaml)?;
                }
            }
            Ok(match s.health {
                Health::Ok => Exit::Ok,
                Health::Warning => Exit::PartiallyFailed,
                Health::Critical => Exit::Error,
            })
        }
        DrCmd::Drill(a) => {
            let plan = read_plan(&a.plan)?;
            let opts = DrillOptions {
                on: a.on.clone(),
                id: a.id.clone(),
                keep: a.keep,
            };
            let r = drill(&plan, &opts, &local_location).await?;
            let md = drill_markdown(&r);
            print_report(&r, &md, a.output)?;
            write_reports(a.report_dir.as_deref(), "drill", &r.plan, &r.id, &md, &r)?;
            Ok(Exit::of_check(r.passed))
        }
        DrCmd::Failover(a) => {
            use lifeboat_dr::failover::{FailoverOptions, failover};
            let plan = read_plan(&a.plan)?;
            let opts = FailoverOptions {
                to: a.to.clone(),
                dry_run: a.dry_run,
                force: a.force,
                id: a.id.clone(),
            };
            let r = failover(&plan, &opts, &local_location).await?;
            let md = lifeboat_dr::failover::failover_markdown(&r);
            // The plan file first: it must not depend on the report's output.
            if r.outcome == lifeboat_dr::steps::Outcome::Succeeded && a.update_plan {
                make_active(&a.plan, &r.to);
            }
            print_report(&r, &md, a.output)?;
            write_reports(a.report_dir.as_deref(), "failover", &r.plan, &r.id, &md, &r)?;
            Ok(Exit::of_check(r.outcome.passed(&r.steps)))
        }
        DrCmd::Sync(a) => {
            use lifeboat_dr::standby::{SyncOptions, SyncOutcome, sync};
            let plan = read_plan(&a.plan)?;
            let opts = SyncOptions {
                on: a.on.clone(),
                id: a.id.clone(),
            };
            let r = sync(&plan, &opts, &local_location).await?;
            let md = lifeboat_dr::standby::sync_markdown(&r);
            print_report(&r, &md, a.output)?;
            Ok(Exit::of_check(r.outcome != SyncOutcome::Failed))
        }
        DrCmd::Failback(a) => {
            use lifeboat_dr::failback::{FailbackOptions, failback};
            let plan = read_plan(&a.plan)?;
            let opts = FailbackOptions {
                from: a.from.clone(),
                to: a.to.clone(),
                weights: a.weights.clone(),
                dry_run: a.dry_run,
                id: a.id.clone(),
            };
            let r = failback(&plan, &opts, &local_location).await?;
            let md = lifeboat_dr::failback::failback_markdown(&r);
            // The plan file first: it must not depend on the report's output.
            if r.outcome == lifeboat_dr::steps::Outcome::Succeeded && a.update_plan {
                make_active(&a.plan, &r.to);
            }
            print_report(&r, &md, a.output)?;
            write_reports(a.report_dir.as_deref(), "failback", &r.plan, &r.id, &md, &r)?;
            Ok(Exit::of_check(r.outcome.passed(&r.steps)))
        }
    }
}

/// After a failover or failback that succeeded: the plan file names `to` its active
/// cluster (`types::dr::plan_file::move_active`: one value changed or added, comments and
/// style kept), written through a temporary file and a rename, its mode kept. A file
/// that cannot be edited is left as it was; stderr says so and what to change by hand.
/// The run itself succeeded either way.
fn make_active(path: &Path, to: &str) {
    let edit = || -> Result<bool> {
        // A plan reached through a symlink is edited where it is.
        let path = std::fs::canonicalize(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let Some(edited) =
            lifeboat_types::dr::plan_file::move_active(&text, to).map_err(anyhow::Error::msg)?
        else {
            return Ok(false);
        };
        // The edited file must read as a valid plan whose active cluster is `to`.
        let plan = parse(&edited, &path.display().to_string())?;
        anyhow::ensure!(
            plan.active().name == to,
            "the edit would make {} active, not {to}",
            plan.active().name
        );
        let mode = std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions();
        let dir = path.parent().unwrap_or(Path::new("."));
        // A new file of this run's own (never one planted under a known name), removed
        // when anything fails before the rename.
        let mut tmp = tempfile::Builder::new()
            .prefix(".lifeboat-plan-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, edited.as_bytes())
            .and_then(|()| tmp.as_file().set_permissions(mode))
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(true)
    };
    match edit() {
        Ok(true) => eprintln!("DR plan {}: {to} is now its active cluster", path.display()),
        Ok(false) => {}
        Err(e) => eprintln!("warning: DR plan {} not edited: {e:#}", path.display()),
    }
}

/// Writes a run's report into `dir` (when given) as `<plan>-<kind>-<id>.md` and `.json`.
fn write_reports<T: serde::Serialize>(
    dir: Option<&Path>,
    kind: &str,
    plan: &str,
    id: &str,
    md: &str,
    r: &T,
) -> Result<()> {
    if let Some(dir) = dir {
        let base = format!("{plan}-{kind}-{id}");
        write_private(&dir.join(format!("{base}.md")), md.as_bytes())?;
        write_private(
            &dir.join(format!("{base}.json")),
            &serde_json::to_vec_pretty(r)?,
        )?;
    }
    Ok(())
}

fn print_report<T: serde::Serialize>(r: &T, md: &str, format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Table | ReportFormat::Markdown => print!("{md}"),
        ReportFormat::Json => {
            output::print_structured(r, &crate::cli::Output::Json)?;
        }
        ReportFormat::Yaml => {
            output::print_structured(r, &crate::cli::Output::Yaml)?;
        }
    }
    Ok(())
}

/// What the runbook reads of the plan's active cluster: the plan's DRPlan resource there
/// (the server's last drill and the last failover) and an audit of the protected
/// namespaces. Whatever cannot be read is said in the runbook instead.
async fn runbook_facts(plan: &Plan, offline: bool) -> lifeboat_types::dr::runbook::Facts {
    use lifeboat_types::dr::runbook::Facts;
    let mut facts = Facts {
        generated: chrono::Utc::now(),
        last_drill: Err("not asked (--offline)".into()),
        last_failover: None,
        findings: Err("not asked (--offline)".into()),
    };
    if offline {
        return facts;
    }
    let active = plan.active();
    let unreachable = |e: String| format!("cluster {} cannot be reached: {e}", active.name);
    let opts = lifeboat_engine::cluster::ClusterOptions {
        kubeconfig: active.kubeconfig.as_ref().map(PathBuf::from),
        context: active.context.clone(),
    };
    let timeout = lifeboat_dr::target::ASK_TIMEOUT;
    let cluster = match lifeboat_engine::cluster::Cluster::connect(&opts).await {
        Ok(c) => c,
        Err(e) => {
            let why = unreachable(lifeboat_engine::error::chain(&e));
            facts.last_drill = Err(why.clone());
            facts.findings = Err(why);
            return facts;
        }
    };
    let api: kube::Api<lifeboat_types::dr::plan::DrPlanResource> =
        kube::Api::namespaced(cluster.client().clone(), &active.namespace);
    facts.last_drill = match tokio::time::timeout(timeout, api.get_opt(&plan.name)).await {
        Ok(Ok(Some(r))) => {
            let status = r.status.unwrap_or_default();
            facts.last_failover = status.last_failover;
            Ok(status.last_drill)
        }
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) if lifeboat_engine::cluster::ApiErrorKind::is_unserved(&e) => Ok(None),
        Ok(Err(e)) => Err(unreachable(lifeboat_engine::error::chain(&e))),
        Err(_) => Err(unreachable(format!(
            "no answer within {}s",
            timeout.as_secs()
        ))),
    };
    let scope = lifeboat_readiness::audit::Scope::of_plan(
        plan,
        Some(std::time::Duration::from_secs(86_400)),
    );
    facts.findings = match tokio::time::timeout(
        timeout.saturating_mul(3),
        lifeboat_readiness::audit::read(&cluster, &scope),
    )
    .await
    {
        Ok(Ok(read)) => Ok(lifeboat_types::readiness::audit::audit(
            &read.observed,
            &Default::default(),
        )),
        Ok(Err(e)) => Err(unreachable(lifeboat_engine::error::chain(&e))),
        Err(_) => Err(unreachable(
            "the audit did not finish within a minute".into(),
        )),
    };
    facts
}

fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read DR plan {}", path.display()))?;
    Ok(parse(&text, &path.display().to_string())?)
}

/// A location name the cluster's server does not hold: the user's locations file.
fn local_location(name: &str) -> Result<BackupStorageLocation, String> {
    crate::common::resolve_location(Some(name)).map_err(|e| format!("{e:#}"))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // A file that was there keeps its mode through open(): set it.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn status_table(s: &lifeboat_dr::status::PlanStatus) -> String {
    use lifeboat_types::dr::status::Rpo;
    let rows: Vec<Vec<String>> = s
        .clusters
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                if c.active { "active" } else { "standby" }.into(),
                if c.not_ready.is_empty() { "yes" } else { "NO" }.into(),
                c.backup
                    .as_ref()
                    .map(|b| b.name.clone())
                    .unwrap_or_else(|| "-".into()),
                match &c.rpo {
                    Rpo::Met { age_seconds, .. } => format!("{age_seconds}s ok"),
                    Rpo::Breached { age_seconds, .. } => format!("{age_seconds}s BREACHED"),
                    Rpo::NoBackup => "no backup".into(),
                },
                c.backups.to_string(),
                c.lag_seconds
                    .map(|l| format!("{l}s"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = format!(
        "Plan {}: {:?} (RPO {}s, RTO {}s, {})\n",
        s.plan, s.health, s.rpo_seconds, s.rto_seconds, s.strategy
    );
    out.push_str(&output::table(
        &[
            "CLUSTER", "ROLE", "READY", "BACKUP", "RPO NOW", "BACKUPS", "LAG",
        ],
        &rows,
    ));
    for f in &s.findings {
        out.push_str(&format!("- {f}\n"));
    }
    out
}
