//! What every run's report shares: storing it beside the backups ([`store_in`]), the
//! Markdown of its steps, warnings and place; and `dr status` as Markdown. Each run's
//! own Markdown lives with the run (`drill::drill_markdown`, …). The JSON renderings are
//! their serde forms.

use std::fmt::Write;

use lifeboat_types::GoDuration;
use lifeboat_types::dr::status::{Health, Rpo};

use crate::status::PlanStatus;

/// Stores a run's report in `store` as `metadata/dr/<plan>/<base>.json` and `.md`
/// (never replacing one: a run's id is its own). Ok with the JSON's path; Err says why
/// it could not be stored (a read-only location, an unreachable bucket).
pub async fn store_report<T: serde::Serialize>(
    store: &lifeboat_engine::storage::Store,
    plan: &str,
    base: &str,
    report: &T,
    markdown: &str,
) -> Result<String, String> {
    use lifeboat_types::format::layout::dr_report;
    let json_path = dr_report(store.prefix(), plan, &format!("{base}.json"));
    let md_path = dr_report(store.prefix(), plan, &format!("{base}.md"));
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    let said = |e: lifeboat_engine::storage::StorageError| {
        format!(
            "the report was not stored in location {}: {}",
            store.name(),
            lifeboat_engine::error::chain(&e)
        )
    };
    store.create(&json_path, json).await.map_err(said)?;
    store
        .create(&md_path, markdown.as_bytes().to_vec())
        .await
        .map_err(said)?;
    Ok(json_path)
}

/// A report that can be stored beside the backups.
pub trait Stored: serde::Serialize {
    /// Its plan's name.
    fn plan(&self) -> &str;
    /// Its Markdown rendering.
    fn markdown(&self) -> String;
    /// Where it is stored.
    fn stored_at(&mut self) -> &mut Option<String>;
    /// Where a failure to store it is told.
    fn warnings(&mut self) -> &mut Vec<String>;
}

/// Stores `report` in `store` as `<base>.json` and `.md` ([`store_report`]); its
/// `storedAt` says where, or a warning why not.
pub async fn store_in<T: Stored>(
    store: &lifeboat_engine::storage::Store,
    base: &str,
    report: &mut T,
) {
    let path = lifeboat_types::format::layout::dr_report(
        store.prefix(),
        report.plan(),
        &format!("{base}.json"),
    );
    *report.stored_at() = Some(format!("{}: {path}", store.name()));
    let md = report.markdown();
    let plan = report.plan().to_owned();
    if let Err(e) = store_report(store, &plan, base, &*report, &md).await {
        *report.stored_at() = None;
        report.warnings().push(e);
    }
}

/// Stores a failover's or failback's report ([`store_in`]), then records it in the
/// plan's resources under `field` ([`record_in_plan_resources`]) as `summary` makes it
/// from the stored report; what could not be recorded joins its warnings.
pub async fn store_and_record<T: Stored>(
    store: &lifeboat_engine::storage::Store,
    base: &str,
    report: &mut T,
    plan: &lifeboat_types::dr::plan::Plan,
    field: &str,
    summary: impl FnOnce(&T) -> lifeboat_types::dr::server::LastRun,
) {
    store_in(store, base, report).await;
    let run = summary(report);
    let more = record_in_plan_resources(plan, field, &run).await;
    report.warnings().extend(more);
}

/// How long recording a run in one cluster's plan resource may take (the old active
/// may be down).
const RECORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Records a run in the plan's `DRPlan` resource (`field`: `lastFailover`,
/// `lastFailback`), in each of the plan's clusters that holds one in its lifeboat
/// namespace. A plan run from a file with no resource anywhere records nothing, and a
/// cluster that does not answer is passed over; the warnings name a resource that is
/// there but could not be written.
async fn record_in_plan_resources(
    plan: &lifeboat_types::dr::plan::Plan,
    field: &str,
    run: &lifeboat_types::dr::server::LastRun,
) -> Vec<String> {
    let patch = serde_json::json!({ "status": { field: run } });
    futures::future::join_all(
        plan.spec
            .clusters
            .iter()
            .map(|c| record_in_one(&plan.name, c, field, &patch)),
    )
    .await
    .into_iter()
    .flatten()
    .collect()
}

async fn record_in_one(
    plan: &str,
    c: &lifeboat_types::dr::plan::PlanCluster,
    field: &str,
    patch: &serde_json::Value,
) -> Option<String> {
    use kube::api::{Patch, PatchParams};
    use lifeboat_types::dr::plan::DrPlanResource;
    let opts = lifeboat_engine::cluster::ClusterOptions {
        kubeconfig: c.kubeconfig.as_ref().map(std::path::PathBuf::from),
        context: c.context.clone(),
    };
    let cluster = lifeboat_engine::cluster::Cluster::connect(&opts)
        .await
        .ok()?;
    let api: kube::Api<DrPlanResource> =
        kube::Api::namespaced(cluster.client().clone(), &c.namespace);
    let wrote = tokio::time::timeout(
        RECORD_TIMEOUT,
        api.patch_status(plan, &PatchParams::default(), &Patch::Merge(patch)),
    )
    .await
    .ok()?;
    match wrote {
        Ok(_) => None,
        // No such resource there, or no lifeboat.
        Err(kube::Error::Api(e)) if e.code == 404 => None,
        Err(e) => Some(format!(
            "the {field} of DRPlan {}/{plan} in cluster {} was not written: {e}",
            c.namespace, c.name
        )),
    }
}

pub(crate) fn dur(secs: u64) -> String {
    GoDuration(std::time::Duration::from_secs(secs)).to_string()
}

/// `dr status` as Markdown.
pub fn status_markdown(s: &PlanStatus) -> String {
    let mut out = String::new();
    let health = match s.health {
        Health::Ok => "OK",
        Health::Warning => "WARNING",
        Health::Critical => "CRITICAL",
    };
    let _ = writeln!(
        out,
        "# DR plan {}: {health}\n\nRPO {}, RTO {}, strategy {}; observed {}.\n",
        s.plan,
        dur(s.rpo_seconds),
        dur(s.rto_seconds),
        s.strategy,
        s.observed_at.to_rfc3339()
    );
    let _ = writeln!(
        out,
        "| cluster | role | ready | newest backup | RPO now | backups | lag |\n|---|---|---|---|---|---:|---:|"
    );
    for c in &s.clusters {
        let rpo = match &c.rpo {
            Rpo::Met { age_seconds, .. } => format!("{} (met)", dur(*age_seconds)),
            Rpo::Breached { age_seconds, .. } => format!("{} (BREACHED)", dur(*age_seconds)),
            Rpo::NoBackup => "no backup".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            if c.active { "active" } else { "standby" },
            if c.not_ready.is_empty() { "yes" } else { "NO" },
            c.backup
                .as_ref()
                .map(|b| format!("{} ({})", b.name, b.location))
                .unwrap_or_else(|| "-".into()),
            rpo,
            c.backups,
            c.lag_seconds.map(dur).unwrap_or_else(|| "-".into())
        );
    }
    list_section(&mut out, "Findings", &s.findings);
    let missing: Vec<String> = s
        .clusters
        .iter()
        .filter_map(|c| {
            let m = c.missing_images.as_ref().filter(|m| !m.is_empty())?;
            Some(format!("{}: {}", c.name, m.join(", ")))
        })
        .collect();
    list_section(
        &mut out,
        "Images a failover would pull (no Ready node holds them)",
        &missing,
    );
    out
}

/// A run report's end: its warnings, what to do next, where it is stored.
pub(crate) fn warnings_and_place(
    out: &mut String,
    warnings: &[String],
    stored: Option<&str>,
    next: Option<&str>,
) {
    list_section(out, "Warnings", warnings);
    if let Some(next) = next {
        let _ = writeln!(out, "\nNext: {next}");
    }
    if let Some(at) = stored {
        let _ = writeln!(out, "\nStored in location {at}.");
    }
}

/// A `## <title>` section listing `items`, when there are any.
pub(crate) fn list_section(out: &mut String, title: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "\n## {title}\n");
        for i in items {
            let _ = writeln!(out, "- {i}");
        }
    }
}

pub(crate) fn steps_table(out: &mut String, steps: &[crate::steps::Step]) {
    let _ = writeln!(
        out,
        "## Steps\n\n| step | started | took | outcome |\n|---|---|---:|---|"
    );
    for s in steps {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}s | {}: {} |",
            s.name,
            s.started.format("%H:%M:%S"),
            s.seconds,
            if s.ok { "ok" } else { "FAILED" },
            s.detail.replace('|', "\\|")
        );
    }
}
