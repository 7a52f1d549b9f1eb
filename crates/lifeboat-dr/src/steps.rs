//! What failovers and drills share: their steps, recorded with start, duration and
//! outcome; the plan's verification (workloads Available, check commands); local
//! commands run with the run's facts in `LIFEBOAT_DR_*` variables.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use std::sync::Arc;

use lifeboat_engine::cluster::Cluster;
use lifeboat_engine::error::chain;
use lifeboat_engine::ready::{ReadyOutcome, wait_workloads};
use lifeboat_engine::restore::{
    RestoreOptions, RestoreProgressCounters, RestoreReport, run_restore,
};
use lifeboat_engine::storage::Store;
use lifeboat_types::api::selector::Selector;
use lifeboat_types::api::velero::{Restore, RestorePhase, RestoreSpec};
use lifeboat_types::dr::plan::{Plan, PlanCluster};

/// One step of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// What it did.
    pub name: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Whether it succeeded.
    pub ok: bool,
    /// What it found or why it failed.
    pub detail: String,
}

/// The clock's run id: the Unix time in hex (a new one every second, never repeating).
pub fn clock_id() -> String {
    format!("{:x}", Utc::now().timestamp().unsigned_abs())
}

/// The steps of one run, in order.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every step so far.
    pub steps: Vec<Step>,
}

/// When a step started (wall clock for the report, monotonic for its duration).
pub type Started = (DateTime<Utc>, Instant);

impl Recorder {
    /// Marks a step's start.
    pub fn start(&self) -> Started {
        (Utc::now(), Instant::now())
    }

    /// Records a step that started at `at`.
    pub fn done(&mut self, name: &str, at: Started, ok: bool, detail: String) {
        self.steps.push(Step {
            name: name.into(),
            started: at.0,
            seconds: at.1.elapsed().as_secs_f64(),
            ok,
            detail,
        });
    }
}

/// A restore of a plan's protected namespaces, as a run records it.
pub struct Restored {
    /// The restore's report (None: it could not run).
    pub report: Option<RestoreReport>,
    /// It ended Completed.
    pub completed: bool,
    /// Objects it planned to create.
    pub planned: u64,
    /// Of those, created.
    pub restored: u64,
    /// Its phase, counts and first errors (or why it could not run), for the report.
    pub detail: String,
}

/// Where and how a run restores a plan's namespaces.
#[derive(Debug, Clone, Default)]
pub struct RestoreInto {
    /// Each protected namespace's target (a drill's scratch namespaces); empty: the same.
    pub mapping: BTreeMap<String, String>,
    /// Whether cluster-scoped objects are restored (a drill: false).
    pub include_cluster_resources: Option<bool>,
    /// Existing objects are patched to the backup's state (a failback into the fenced
    /// original, a warm standby's sync), not left as they are.
    pub update_existing: bool,
    /// A warm standby's sync: objects held (`types::dr::standby::hold`), pods,
    /// ReplicaSets and Jobs left out.
    pub standby: bool,
    /// The namespace of the target's lifeboat server: the restored pods' volume data is
    /// written by its node agents when it has them (None: no volume data is restored).
    pub volume_agents: Option<String>,
}

/// Restores the plan's protected namespaces (and label selector) of backup
/// `backup_name` as restore `restore_name`, as `into` says.
pub async fn restore_protected(
    plan: &Plan,
    cluster: &Cluster,
    store: &Store,
    backup_name: &str,
    restore_name: &str,
    into: RestoreInto,
) -> Restored {
    let spec = RestoreSpec {
        backup_name: backup_name.to_owned(),
        included_namespaces: plan.spec.namespaces.clone(),
        namespace_mapping: into.mapping,
        include_cluster_resources: into.include_cluster_resources,
        existing_resource_policy: into.update_existing.then(|| "update".to_owned()),
        excluded_resources: if into.standby {
            lifeboat_types::dr::standby::LEFT_OUT
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            Vec::new()
        },
        // The plan's selector was validated when the plan was read.
        label_selector: plan
            .spec
            .selector
            .as_deref()
            .and_then(|s| Selector::parse(s).ok())
            .map(|s| s.to_label_selector()),
        ..Default::default()
    };
    // Volume data comes back only where node agents run: the target's own lifeboat's.
    let mut agents_note = None;
    let pod_volumes = match &into.volume_agents {
        Some(ns) => {
            match lifeboat_engine::pod_volumes::installed_agents(
                cluster,
                ns,
                volume_timeout(plan.rto),
            )
            .await
            {
                // Without one, the restore warns of each pod whose volume data it left.
                Ok(found) => found,
                Err(e) => {
                    agents_note = Some(format!(
                        "the node agent of namespace {ns} could not be read ({}): pods' volume data is not restored",
                        chain(&e)
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let report = match run_restore(
        cluster,
        store,
        Restore::new(restore_name, spec),
        &RestoreOptions {
            pod_volumes,
            standby: into.standby.then(|| lifeboat_engine::restore::StandbyHold {
                plan: plan.name.clone(),
                annotation: plan.spec.replicas.annotation.clone(),
            }),
            // A DR run updates only the plan's namespaces, never a shared CRD.
            update_namespaced_only: true,
            ..Default::default()
        },
        Arc::new(RestoreProgressCounters::default()),
    )
    .await
    {
        Ok(report) => report,
        Err(e) => {
            return Restored {
                report: None,
                completed: false,
                planned: 0,
                restored: 0,
                detail: chain(&e),
            };
        }
    };
    let s = report.restore.status.clone().unwrap_or_default();
    let p = s.progress.unwrap_or_default();
    let e = &report.results.errors;
    let first: Vec<&str> = e
        .velero
        .iter()
        .chain(&e.cluster)
        .chain(e.namespaces.values().flatten())
        .map(String::as_str)
        .take(3)
        .collect();
    Restored {
        completed: s.phase == RestorePhase::Completed,
        planned: p.total_items,
        restored: p.items_restored,
        detail: format!(
            "restore {restore_name}: {}, {} of {} planned objects, {} errors, {} warnings{}{}",
            s.phase,
            p.items_restored,
            p.total_items,
            s.errors,
            s.warnings,
            if first.is_empty() {
                String::new()
            } else {
                format!(" ({})", first.join("; "))
            },
            agents_note.map(|n| format!("; {n}")).unwrap_or_default()
        ),
        report: Some(report),
    }
}

/// How long a DR restore waits for its pods' volume data: the plan's RTO, at least 10
/// minutes (a server's own restores wait its `--fs-backup-timeout`, 4h by default; a
/// failover has a clock to beat).
fn volume_timeout(rto: Duration) -> Duration {
    rto.max(Duration::from_secs(600))
}

/// What the plan's verification found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Workloads: Ok(count available) or why not all.
    pub workloads: Result<usize, String>,
    /// Each check command: its name and outcome.
    pub checks: Vec<(String, Result<(), String>)>,
}

impl Verified {
    /// Whether everything passed.
    pub fn ok(&self) -> bool {
        self.workloads.is_ok() && self.checks.iter().all(|(_, r)| r.is_ok())
    }
}

/// The label selector of the objects restore `name` made.
pub fn restored_by(name: &str) -> String {
    format!("velero.io/restore-name={name}")
}

/// Runs the plan's verification on `target`: the workloads `selector` selects Available
/// (when the plan asks), then each check command (`facts` in its environment).
pub async fn verify(
    plan: &Plan,
    target: &PlanCluster,
    cluster: &Cluster,
    selector: &str,
    facts: &BTreeMap<String, String>,
    rec: &mut Recorder,
) -> Verified {
    let mut workloads: Result<usize, String> = Ok(0);
    if plan.spec.verification.workloads_available {
        let at = rec.start();
        let timeout = plan.spec.verification.timeout();
        workloads = match wait_workloads(cluster, selector, timeout, |_| {}).await {
            Ok(ReadyOutcome::AllReady(ready)) => Ok(ready.len()),
            Ok(ReadyOutcome::TimedOut(waiting)) => Err(format!(
                "not available after {}s: {}",
                timeout.as_secs(),
                waiting
                    .iter()
                    .map(|(k, why)| format!("{k} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => Err(chain(&e)),
        };
        rec.done(
            "workloads available",
            at,
            workloads.is_ok(),
            match &workloads {
                Ok(n) => format!("{n} Deployments/StatefulSets/DaemonSets available"),
                Err(e) => e.clone(),
            },
        );
    }
    let checks = run_checks(plan, target, facts, "", rec).await;
    Verified { workloads, checks }
}

/// Runs the plan's check commands (`facts` in their environment), each recorded as the
/// step `check <n><label>: <argv>`; returns each one's name and outcome.
pub async fn run_checks(
    plan: &Plan,
    target: &PlanCluster,
    facts: &BTreeMap<String, String>,
    label: &str,
    rec: &mut Recorder,
) -> Vec<(String, Result<(), String>)> {
    let mut checks = Vec::new();
    for (i, argv) in plan.spec.verification.commands.iter().enumerate() {
        let at = rec.start();
        let r = run_command(target, facts, argv, plan.spec.verification.timeout()).await;
        rec.done(
            &format!("check {}{label}: {}", i + 1, argv.join(" ")),
            at,
            r.is_ok(),
            match &r {
                Ok(()) => "exit 0".into(),
                Err(e) => e.clone(),
            },
        );
        checks.push((format!("{} ({})", i + 1, argv.join(" ")), r));
    }
    checks
}

/// Runs a local command (a check or a hook) with `facts` as `LIFEBOAT_DR_<KEY>`
/// variables and the target cluster's `LIFEBOAT_DR_KUBECONFIG` / `LIFEBOAT_DR_CONTEXT`
/// (when the plan names them); stopped after `timeout`. Err says how it failed, with the
/// last line it wrote on stderr.
pub async fn run_command(
    target: &PlanCluster,
    facts: &BTreeMap<String, String>,
    argv: &[String],
    timeout: Duration,
) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in facts {
        cmd.env(format!("LIFEBOAT_DR_{k}"), v);
    }
    if let Some(k) = &target.kubeconfig {
        cmd.env("LIFEBOAT_DR_KUBECONFIG", k);
    }
    if let Some(c) = &target.context {
        cmd.env("LIFEBOAT_DR_CONTEXT", c);
    }
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run {program}: {e}")),
        Err(_) => {
            return Err(format!(
                "still running after {}s: stopped",
                timeout.as_secs()
            ));
        }
    };
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        Err(format!(
            "{}{}",
            out.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ))
    }
}

/// How a failover or failback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The standby serves.
    Succeeded,
    /// A step failed; what was done was undone (the old active serves again).
    RolledBack,
    /// A step failed and not everything could be undone (see `notUndone`).
    Failed,
    /// Nothing was touched (`--dry-run`).
    DryRun,
}

/// An outcome as its report's JSON names it (`succeeded`, `rolledBack`, …).
pub fn outcome_name(o: Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Outcome {
    /// Whether the run did what it was asked: succeeded, or a dry run whose every step
    /// could be planned (a fence that could not list fails it).
    pub fn passed(self, steps: &[Step]) -> bool {
        match self {
            Outcome::Succeeded => true,
            Outcome::DryRun => steps.iter().all(|s| s.ok),
            Outcome::RolledBack | Outcome::Failed => false,
        }
    }
}

/// Why a failover, failback or sync could not start (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// `--to` names no cluster of the plan.
    #[error("plan {plan} has no cluster {name:?} (its clusters: {known})")]
    NoSuchCluster {
        /// The plan.
        plan: String,
        /// The name given.
        name: String,
        /// The plan's cluster names.
        known: String,
    },
    /// The decision refused it.
    #[error("failover of plan {plan} refused: {why}")]
    Refused {
        /// The plan.
        plan: String,
        /// Why (and how to go on).
        why: String,
    },
    /// The target cannot be reached.
    #[error("cluster {name} of plan {plan} cannot be reached: {why}")]
    Unreachable {
        /// The plan.
        plan: String,
        /// The cluster.
        name: String,
        /// Why.
        why: String,
    },
    /// No backup to restore.
    #[error(
        "cluster {name} of plan {plan} reads no Completed backup of {namespaces} (locations: {locations}); nothing to fail over with"
    )]
    NoBackup {
        /// The plan.
        plan: String,
        /// The cluster.
        name: String,
        /// The protected namespaces.
        namespaces: String,
        /// What each location said.
        locations: String,
    },
}

/// The plan's cluster `name` (a `--to`, `--from` or `--on`), or the error naming the
/// plan's clusters.
pub fn named_cluster<'a>(plan: &'a Plan, name: &str) -> Result<&'a PlanCluster, FailoverError> {
    plan.cluster(name)
        .ok_or_else(|| FailoverError::NoSuchCluster {
            plan: plan.name.clone(),
            name: name.to_owned(),
            known: plan.cluster_names(),
        })
}
