//! The DRPlan controller: every `--dr-frequency` it looks at each plan of the server's
//! namespace as `dr status` does and writes what it saw into the plan's status and the
//! `lifeboat_dr_*` metrics; it syncs each standby of a warm-standby plan (`dr sync`);
//! and it drills the plan when its calendar says so (`dr drill`, the rule in
//! `lifeboat_types::dr::server::drill_due`), keeping the result in the status and the
//! `lifeboat_dr_last_drill_*` metrics.
//!
//! The plan's verification commands run as processes of the server only when it was
//! started with `--dr-allow-local-commands` (`types::dr::server::drill_refused`): whoever
//! may create a DRPlan could otherwise run anything with the server's credentials.
//!
//! The plan's clusters are reached as the plan says (its kubeconfig paths and contexts,
//! which the server's pod mounts; a cluster with neither is the one the server runs in,
//! with the server's own credentials). A location the plan names is looked up in that
//! cluster's lifeboat server; the server has no locations file to fall back on.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use lifeboat_dr::drill::{DrillOptions, DrillReport, drill};
use lifeboat_dr::standby::{SyncOptions, SyncOutcome, sync};
use lifeboat_dr::status::{ClusterStatus, PlanStatus, status};
use lifeboat_dr::steps::Step;
use lifeboat_types::api::velero::{BackupStorageLocation, Time};
use lifeboat_types::dr::plan::{DrPlanResource, Plan, PlanError, Strategy, validate};
use lifeboat_types::dr::server::{
    ClusterSeen, DrPlanStatus, DrillDue, LastDrill, LastSync, drill_due, drill_refused,
    health_gauge, next_look, plan_rpo,
};
use lifeboat_types::dr::status::Rpo;
use lifeboat_types::rules::schedule::Cron;

use crate::metrics::{DrMetrics, PlanClusterLabel, PlanLabel};
use crate::{Ctx, ServerError, patch_status};

pub(crate) async fn run(ctx: Arc<Ctx>, every: Duration) {
    if every.is_zero() {
        return;
    }
    let api: Api<DrPlanResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let controller = super::run_controller(
        ctx.clone(),
        api.clone(),
        "DR plan reconcile",
        move |p, ctx| reconcile(p, ctx, every),
    );
    tokio::join!(controller, sweep(ctx, api, every));
}

/// A deleted plan is not reconciled (kube-runtime reconciles the objects it has), and a
/// finalizer would hold a plan's deletion while no server runs: every `every`, the
/// series of plans that are gone are dropped.
async fn sweep(ctx: Arc<Ctx>, api: Api<DrPlanResource>, every: Duration) {
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        // The known plans first: one made while the list is read is in the list.
        let known: Vec<String> = ctx
            .dr_series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        let Ok(list) = api.list(&Default::default()).await else {
            continue;
        };
        let live: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        for gone in known.iter().filter(|k| !live.contains(k)) {
            forget(&ctx, gone);
        }
    }
}

/// The server resolves a plan's location names only through the clusters' servers.
fn no_local(name: &str) -> Result<BackupStorageLocation, String> {
    Err(format!(
        "location {name:?} is not a BackupStorageLocation of that cluster's lifeboat server (the server has no locations file): install lifeboat there or give the location as a URL"
    ))
}

async fn reconcile(
    p: Arc<DrPlanResource>,
    ctx: Arc<Ctx>,
    every: Duration,
) -> Result<Action, ServerError> {
    let api: Api<DrPlanResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let name = p.name_any();
    tracing::debug!(plan = %name, "DR plan reconcile");
    let Some(p) = api.get_opt(&name).await? else {
        forget(&ctx, &name);
        return Ok(Action::await_change());
    };
    let plan = match validate(&name, p.spec.clone()) {
        Ok(plan) => plan,
        Err(e) => {
            let errors: Vec<String> = match e {
                PlanError::Invalid { errors, .. } => {
                    errors.iter().map(ToString::to_string).collect()
                }
                other => vec![other.to_string()],
            };
            forget(&ctx, &name);
            // What was seen of the plan before no longer stands.
            patch_status(
                &api,
                &name,
                json!({
                    "phase": "FailedValidation",
                    "validationErrors": errors,
                    "observedGeneration": p.metadata.generation,
                    "health": null,
                    "rpoSeconds": null,
                    "findings": null,
                    "clusters": null,
                }),
            )
            .await?;
            return Ok(Action::await_change());
        }
    };

    // A failover or failback the CLI recorded in the plan, notified of once.
    let mut seen_status = p.status.clone().unwrap_or_default();
    notify_plan(&ctx, &api, &name, &mut seen_status, None).await?;

    // When the calendar drills next, and whether to look now (next_look: the server's
    // own status writes wake this controller too).
    let created = p
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
        .unwrap_or_else(Utc::now);
    let last_drill = p
        .status
        .as_ref()
        .and_then(|s| s.last_drill.as_ref())
        .map(|d| d.started.0);
    // validate() parsed the calendar.
    let calendar = plan
        .spec
        .drills
        .as_ref()
        .and_then(|c| Cron::parse(&c.schedule).ok().map(|cron| (c, cron)));
    let due = |last: Option<chrono::DateTime<Utc>>| match &calendar {
        Some((_, cron)) => drill_due(cron, last, created, Utc::now()),
        None => DrillDue::Never,
    };
    if let Some(t) = next_look(
        p.status.as_ref(),
        p.metadata.generation,
        every,
        due(last_drill),
        Utc::now(),
    ) {
        tracing::debug!(plan = %name, "next look at {t}");
        return Ok(crate::requeue_at(t));
    }
    tracing::debug!(plan = %name, "looking");

    let seen = status(&plan, &no_local).await;
    let clusters: Vec<ClusterSeen> = seen.clusters.iter().map(cluster_seen).collect();
    let rpo = plan_rpo(&clusters);
    let warm = plan.spec.strategy == Strategy::WarmStandby;
    let mut looked = json!({
        "phase": "Ready",
        "validationErrors": null,
        "observedAt": Time::now(),
        "observedGeneration": p.metadata.generation,
        "health": seen.health,
        "rpoSeconds": rpo,
        "findings": seen.findings,
        "clusters": clusters,
    });
    if !warm {
        // Syncs are a warm standby's only: a plan that is no longer one has none.
        looked["lastSyncs"] = serde_json::Value::Null;
    }
    patch_status(&api, &name, looked).await?;
    // Not known when no standby answered: a look that could not see is not a breach.
    let answered = seen
        .clusters
        .iter()
        .any(|c| !c.active && c.readiness.api_error.is_none());
    let look = lifeboat_types::readiness::notify::RpoLook {
        breached: answered.then(|| rpo.is_none_or(|r| r > plan.rpo.as_secs())),
        rpo,
        objective: plan.rpo.as_secs(),
        hold: ctx.dr_breach_hold,
    };
    notify_plan(&ctx, &api, &name, &mut seen_status, Some(look)).await?;
    // The metrics follow what the status says (a plan deleted meanwhile has none).
    remember(&ctx, &name, &plan);
    record_status(&ctx.metrics.dr, &plan, &seen, &clusters, rpo);
    record_history(&ctx.metrics.dr, &plan, p.status.as_ref(), warm);

    if warm {
        let mut syncs = Vec::new();
        for standby in plan.standbys() {
            syncs.push(sync_one(&ctx, &plan, &standby.name).await);
        }
        patch_status(&api, &name, json!({ "lastSyncs": syncs })).await?;
        for s in &syncs {
            record_sync(&ctx.metrics.dr, &plan, s);
        }
    }

    let mut last_drill = last_drill;
    if let (Some((cal, _)), DrillDue::Now) = (&calendar, due(last_drill)) {
        last_drill = Some(drill_now(&ctx, &api, &plan, cal.cluster.clone()).await?);
    }
    let next = match due(last_drill) {
        DrillDue::At(t) => t.min(Utc::now() + every),
        _ => Utc::now() + every,
    };
    Ok(crate::requeue_at(next))
}

/// Queues what a look at plan `name` notifies of (`types::readiness::notify::plan_events`)
/// and records it as notified in the plan's status (and in `status`).
async fn notify_plan(
    ctx: &Ctx,
    api: &Api<DrPlanResource>,
    name: &str,
    status: &mut DrPlanStatus,
    look: Option<lifeboat_types::readiness::notify::RpoLook>,
) -> Result<(), ServerError> {
    let (events, notified) = lifeboat_types::readiness::notify::plan_events(
        &ctx.ns,
        name,
        Some(status),
        look,
        Utc::now(),
    );
    if status.notified.as_ref() != Some(&notified) {
        patch_status(api, name, json!({ "notified": notified })).await?;
        status.notified = Some(notified);
    }
    for e in events {
        ctx.notifier.send(e);
    }
    Ok(())
}

fn cluster_seen(c: &ClusterStatus) -> ClusterSeen {
    let rpo_seconds = match &c.rpo {
        Rpo::Met { age_seconds, .. } | Rpo::Breached { age_seconds, .. } => Some(*age_seconds),
        Rpo::NoBackup => None,
    };
    ClusterSeen {
        name: c.name.clone(),
        active: c.active,
        ready: c.not_ready.is_empty(),
        not_ready: c.not_ready.clone(),
        backup: c.backup.as_ref().map(|b| b.name.clone()),
        rpo_seconds,
        lag_seconds: c.lag_seconds,
        missing_images: c.missing_images.clone().unwrap_or_default(),
    }
}

fn plan_label(plan: &Plan) -> PlanLabel {
    PlanLabel {
        plan: plan.name.clone(),
    }
}

fn cluster_label(plan: &Plan, cluster: &str) -> PlanClusterLabel {
    PlanClusterLabel {
        plan: plan.name.clone(),
        cluster: cluster.to_owned(),
    }
}

fn seconds(v: Option<u64>) -> f64 {
    v.map_or(f64::INFINITY, |s| s as f64)
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn record_status(
    m: &DrMetrics,
    plan: &Plan,
    seen: &PlanStatus,
    clusters: &[ClusterSeen],
    rpo: Option<u64>,
) {
    let p = plan_label(plan);
    m.rpo.get_or_create(&p).set(seconds(rpo));
    m.rpo_objective
        .get_or_create(&p)
        .set(plan.rpo.as_secs_f64());
    m.rto_objective
        .get_or_create(&p)
        .set(plan.rto.as_secs_f64());
    m.health.get_or_create(&p).set(health_gauge(seen.health));
    for c in clusters {
        let pc = cluster_label(plan, &c.name);
        m.cluster_rpo.get_or_create(&pc).set(seconds(c.rpo_seconds));
        m.cluster_ready.get_or_create(&pc).set(flag(c.ready));
        match c.lag_seconds {
            Some(l) => {
                m.replication_lag.get_or_create(&pc).set(l as f64);
            }
            None => {
                m.replication_lag.remove(&pc);
            }
        }
    }
}

/// The last drill's and syncs' metrics from the plan's status (a restarted server has
/// them before its next drill).
fn record_history(m: &DrMetrics, plan: &Plan, status: Option<&DrPlanStatus>, warm: bool) {
    let Some(s) = status else {
        return;
    };
    if let Some(d) = s.last_drill.as_ref().filter(|d| d.outcome != RUNNING) {
        record_drill(m, plan, d);
    }
    for sync in s.last_syncs.iter().filter(|_| warm) {
        record_sync(m, plan, sync);
    }
}

fn record_drill(m: &DrMetrics, plan: &Plan, d: &LastDrill) {
    let p = plan_label(plan);
    m.last_drill_timestamp
        .get_or_create(&p)
        .set(d.started.0.timestamp() as f64);
    m.last_drill_success
        .get_or_create(&p)
        .set(flag(d.outcome == PASSED));
    match d.rto_seconds {
        Some(s) => {
            m.last_drill_rto.get_or_create(&p).set(s);
        }
        None => {
            m.last_drill_rto.remove(&p);
        }
    }
}

fn record_sync(m: &DrMetrics, plan: &Plan, s: &LastSync) {
    let pc = cluster_label(plan, &s.cluster);
    m.last_sync_timestamp
        .get_or_create(&pc)
        .set(s.at.0.timestamp() as f64);
    m.last_sync_success
        .get_or_create(&pc)
        .set(flag(s.outcome != FAILED));
}

/// The clusters each plan's series carry, so that a deleted or renamed one's go too.
fn remember(ctx: &Ctx, name: &str, plan: &Plan) {
    let now: Vec<String> = plan.spec.clusters.iter().map(|c| c.name.clone()).collect();
    let mut seen = ctx.dr_series.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(before) = seen.get(name) {
        let gone: Vec<String> = before
            .iter()
            .filter(|c| !now.contains(c))
            .cloned()
            .collect();
        ctx.metrics.dr.forget_clusters(name, &gone);
    }
    seen.insert(name.to_owned(), now);
}

fn forget(ctx: &Ctx, name: &str) {
    let mut seen = ctx.dr_series.lock().unwrap_or_else(|p| p.into_inner());
    let clusters = seen.remove(name).unwrap_or_default();
    ctx.metrics.dr.forget(name, &clusters);
}

// The outcomes the status says, as text (the CRD's).
const RUNNING: &str = "Running";
const PASSED: &str = "Passed";
const FAILED: &str = "Failed";

/// What failed in a run: each failed step, `name: detail`.
fn failed_steps(steps: &[Step]) -> impl Iterator<Item = String> + '_ {
    steps
        .iter()
        .filter(|s| !s.ok)
        .map(|s| format!("{}: {}", s.name, s.detail))
}

/// A shutdown gives a drill or sync the grace period, then abandons it.
const INTERRUPTED: &str = "interrupted by the server's shutdown";

async fn sync_one(ctx: &Ctx, plan: &Plan, standby: &str) -> LastSync {
    let opts = SyncOptions {
        on: Some(standby.to_owned()),
        id: None,
    };
    let ran = ctx.within_grace(sync(plan, &opts, &no_local)).await;
    let (outcome, backup, message) = match ran {
        Some(Ok(r)) => (
            match r.outcome {
                SyncOutcome::Synced => "Synced",
                SyncOutcome::UpToDate => "UpToDate",
                SyncOutcome::Failed => FAILED,
            },
            Some(r.backup.clone()),
            (r.outcome == SyncOutcome::Failed)
                .then(|| failed_steps(&r.steps).collect::<Vec<_>>().join("; ")),
        ),
        Some(Err(e)) => (FAILED, None, Some(e.to_string())),
        None => (FAILED, None, Some(INTERRUPTED.to_owned())),
    };
    if outcome == FAILED {
        tracing::warn!(plan = %plan.name, cluster = standby, "warm standby sync failed: {}", message.as_deref().unwrap_or(""));
    }
    LastSync {
        cluster: standby.to_owned(),
        at: Time::now(),
        outcome: outcome.into(),
        backup,
        message,
    }
}

/// A drill's outcome, RTO, message and report place.
fn drill_result(r: &DrillReport) -> (&'static str, Option<String>) {
    if r.passed {
        return (PASSED, None);
    }
    let failed: Vec<String> = r
        .criteria
        .iter()
        .filter(|c| c.required && !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .chain(failed_steps(&r.steps))
        .collect();
    (FAILED, Some(failed.join("; ")))
}

/// Records a drill's end: the plan's status, then its metrics, then its notification.
async fn finish_drill(
    ctx: &Ctx,
    api: &Api<DrPlanResource>,
    plan: &Plan,
    last: &LastDrill,
) -> Result<(), ServerError> {
    patch_status(api, &plan.name, json!({ "lastDrill": last })).await?;
    record_drill(&ctx.metrics.dr, plan, last);
    ctx.notifier
        .send(lifeboat_types::readiness::notify::drill_outcome(
            &ctx.ns,
            &plan.name,
            last,
            Utc::now(),
        ));
    Ok(())
}

/// Runs a drill, recorded as started first (a server that stops mid-drill does not
/// drill again until the calendar's next time).
async fn drill_now(
    ctx: &Ctx,
    api: &Api<DrPlanResource>,
    plan: &Plan,
    on: Option<String>,
) -> Result<chrono::DateTime<Utc>, ServerError> {
    let id = lifeboat_dr::steps::clock_id();
    let cluster = match &on {
        Some(c) => c.clone(),
        None => plan.default_drill_cluster().name.clone(),
    };
    let mut last = LastDrill {
        id: id.clone(),
        cluster,
        started: Time::now(),
        outcome: RUNNING.into(),
        rto_seconds: None,
        message: None,
        report: None,
    };
    if let Some(why) = drill_refused(&plan.spec, ctx.dr_allow_commands) {
        last.outcome = "Error".into();
        last.message = Some(why);
        finish_drill(ctx, api, plan, &last).await?;
        return Ok(last.started.0);
    }
    patch_status(api, &plan.name, json!({ "lastDrill": last })).await?;
    tracing::info!(plan = %plan.name, drill = %id, cluster = %last.cluster, "drilling");
    let opts = DrillOptions {
        on,
        id: Some(id.clone()),
        keep: false,
    };
    let ran = ctx.within_grace(drill(plan, &opts, &no_local)).await;
    match ran {
        Some(Ok(r)) => {
            let (outcome, message) = drill_result(&r);
            last.outcome = outcome.into();
            last.message = message;
            last.rto_seconds = r.rto_seconds;
            last.report = r.stored_at.clone();
        }
        Some(Err(e)) => {
            last.outcome = "Error".into();
            last.message = Some(e.to_string());
        }
        None => {
            last.outcome = "Error".into();
            last.message = Some(format!(
                "{INTERRUPTED}; its scratch namespaces (*-drill-{id}) may be left on cluster {}: delete them",
                last.cluster
            ));
        }
    }
    tracing::info!(plan = %plan.name, drill = %last.id, outcome = %last.outcome, "drill ended");
    finish_drill(ctx, api, plan, &last).await?;
    Ok(last.started.0)
}
