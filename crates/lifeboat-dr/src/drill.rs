//! `dr drill`: a failover rehearsed without touching what runs. The newest backup of the
//! protected namespaces that the chosen cluster can read is restored into new
//! `<ns>-drill-<id>` namespaces there (cluster-wide objects left out), while the active
//! cluster and its schedules go on; the drill waits until the restored workloads are
//! Available on real nodes, runs the plan's checks, measures the RTO (start to all
//! available and checked) and the RPO (the backup's age at the start), compares object
//! counts with the backup, deletes everything it made (and only that) and judges the
//! result by the plan's criteria (`lifeboat_types::dr::drill`). Every step is recorded
//! with its start, duration and outcome.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use lifeboat_engine::cluster::Cluster;
use lifeboat_engine::error::chain;
use lifeboat_engine::verify::cleanup_scratch;
use lifeboat_types::dr::drill::{
    Criterion, Measured, passed, scratch_namespace, valid_run_id, verdict,
};
use lifeboat_types::dr::plan::Plan;
use lifeboat_types::dr::status::recovery_point;

use crate::report::{dur, steps_table, warnings_and_place};
use crate::steps::{
    Recorder, RestoreInto, Step, Verified, clock_id, restore_protected, restored_by, verify,
};
use crate::target::{LocalLocations, reach};

/// How a drill is run.
#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// The cluster to drill on (default: the plan's first standby).
    pub on: Option<String>,
    /// The id in the scratch namespaces' names (default: from the clock).
    pub id: Option<String>,
    /// Leave the scratch namespaces for a look (the report says so; cleanup fails).
    pub keep: bool,
}

/// A drill's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillReport {
    /// The plan.
    pub plan: String,
    /// The cluster drilled on.
    pub cluster: String,
    /// The drill's id (in its namespaces' names).
    pub id: String,
    /// The backup restored, and the location it was read from.
    pub backup: Option<String>,
    /// Where it was read from.
    pub location: Option<String>,
    /// The scratch namespaces: protected namespace → drill namespace.
    pub namespaces: BTreeMap<String, String>,
    /// When the drill started.
    pub started: DateTime<Utc>,
    /// The RTO measured, in seconds (None: not reached).
    pub rto_seconds: Option<f64>,
    /// The plan's RTO, in seconds.
    pub rto_objective_seconds: u64,
    /// The backup's age at the start, in seconds.
    pub rpo_seconds: Option<u64>,
    /// The plan's RPO, in seconds.
    pub rpo_objective_seconds: u64,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The criteria and their outcome.
    pub criteria: Vec<Criterion>,
    /// Whether every required criterion passed.
    pub passed: bool,
    /// Where the report is stored (`metadata/dr/<plan>/…json` in the location the
    /// backup was read from; None: it could not be stored, see warnings).
    pub stored_at: Option<String>,
    /// What went wrong beside the drill's criteria (its report not stored).
    pub warnings: Vec<String>,
}

/// Why a drill could not run at all (anything after it started is a failed step).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// `--on` names no cluster of the plan.
    #[error("plan {plan} has no cluster {name:?} (its clusters: {known})")]
    NoSuchCluster {
        /// The plan.
        plan: String,
        /// The name given.
        name: String,
        /// The plan's cluster names.
        known: String,
    },
    /// The cluster cannot be reached.
    #[error("cluster {name} of plan {plan} cannot be reached: {why}")]
    Unreachable {
        /// The plan.
        plan: String,
        /// The cluster.
        name: String,
        /// Why.
        why: String,
    },
    /// No backup to drill with.
    #[error(
        "cluster {name} of plan {plan} reads no Completed backup of {namespaces} (locations: {locations}); back them up first"
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
    /// `--id` cannot go into names (`types::dr::drill::valid_run_id` says why).
    #[error("{0}")]
    BadId(String),
    /// A scratch namespace exists already.
    #[error(
        "namespace {namespace} already exists on cluster {name}: a drill only uses (and deletes) namespaces it makes; delete it or run with another --id"
    )]
    ScratchExists {
        /// The cluster.
        name: String,
        /// The namespace.
        namespace: String,
    },
}

/// The facts a drill's commands get (`LIFEBOAT_DR_PLAN`, `_CLUSTER`, `_NAMESPACES`: the
/// drill namespaces, comma-separated, `_NAMESPACE_MAP`: `ns=drill-ns,...`).
fn facts(
    plan: &Plan,
    cluster: &str,
    mapping: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PLAN".to_owned(), plan.name.clone()),
        ("CLUSTER".to_owned(), cluster.to_owned()),
        (
            "NAMESPACES".to_owned(),
            mapping.values().cloned().collect::<Vec<_>>().join(","),
        ),
        (
            "NAMESPACE_MAP".to_owned(),
            mapping
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
    ])
}

/// Runs a drill of `plan` (see the module's doc).
pub async fn drill(
    plan: &Plan,
    opts: &DrillOptions,
    local: LocalLocations<'_>,
) -> Result<DrillReport, DrillError> {
    let target = match &opts.on {
        Some(n) => plan.cluster(n).ok_or_else(|| DrillError::NoSuchCluster {
            plan: plan.name.clone(),
            name: n.clone(),
            known: plan.cluster_names(),
        })?,
        None => plan.default_drill_cluster(),
    };
    let started = Utc::now();
    let clock = Instant::now();
    let mut rec = Recorder::default();

    let at = rec.start();
    let t = reach(target, local).await;
    let cluster: &Cluster = match &t.cluster {
        Ok(c) => c,
        Err(why) => {
            return Err(DrillError::Unreachable {
                plan: plan.name.clone(),
                name: target.name.clone(),
                why: why.clone(),
            });
        }
    };
    let found = crate::target::backups(&t, &plan.spec.namespaces).await;
    let Some((location, store, backup, in_backup)) = found
        .chosen()
        .map(|(l, s, b, n)| (l.to_owned(), s.clone(), b.clone(), n))
    else {
        return Err(DrillError::NoBackup {
            plan: plan.name.clone(),
            name: target.name.clone(),
            namespaces: plan.spec.namespaces.join(", "),
            locations: found.said(),
        });
    };
    let backups_kept = found.covering;
    let rpo = recovery_point(&backup).map(|p| {
        started
            .signed_duration_since(p)
            .to_std()
            .unwrap_or_default()
    });
    rec.done(
        "choose backup",
        at,
        true,
        format!(
            "{} from location {location} on cluster {} ({backups_kept} usable backups)",
            backup.metadata.name, target.name
        ),
    );

    let id = opts.id.clone().unwrap_or_else(clock_id);
    valid_run_id(&id).map_err(DrillError::BadId)?;
    let mapping: BTreeMap<String, String> = plan
        .spec
        .namespaces
        .iter()
        .map(|ns| (ns.clone(), scratch_namespace(ns, "drill", &id)))
        .collect();
    match cluster
        .first_existing_namespace(mapping.values().map(String::as_str))
        .await
    {
        Ok(None) => {}
        Ok(Some(ns)) => {
            return Err(DrillError::ScratchExists {
                name: target.name.clone(),
                namespace: ns.to_owned(),
            });
        }
        Err(e) => {
            return Err(DrillError::Unreachable {
                plan: plan.name.clone(),
                name: target.name.clone(),
                why: chain(&e),
            });
        }
    }

    // The restore: only the protected namespaces, into their drill namespaces, nothing
    // cluster-wide (a drill must not touch what the cluster runs).
    let at = rec.start();
    let restore_name = scratch_namespace(&plan.name, "drill", &id);
    let restored = restore_protected(
        plan,
        cluster,
        &store,
        &backup.metadata.name,
        &restore_name,
        RestoreInto {
            mapping: mapping.clone(),
            include_cluster_resources: Some(false),
            volume_agents: Some(target.namespace.clone()),
            ..Default::default()
        },
    )
    .await;
    let (restore_completed, restore_detail) = (restored.completed, restored.detail.clone());
    rec.done("restore", at, restore_completed, restore_detail.clone());

    let facts = facts(plan, &target.name, &mapping);
    let verified = if restored.report.is_some() {
        verify(
            plan,
            target,
            cluster,
            &restored_by(&restore_name),
            &facts,
            &mut rec,
        )
        .await
    } else {
        Verified {
            workloads: Err("not looked at: the restore failed".into()),
            checks: Vec::new(),
        }
    };
    let reached = restore_completed && verified.ok();
    let rto = reached.then(|| clock.elapsed());

    let at = rec.start();
    let cleanup = if opts.keep {
        Err(format!(
            "kept for a look (--keep): delete namespaces {} when done",
            mapping.values().cloned().collect::<Vec<_>>().join(", ")
        ))
    } else {
        let left = cleanup_scratch(cluster, &store, &restore_name, mapping.values(), true).await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("; "))
        }
    };
    rec.done(
        "cleanup",
        at,
        cleanup.is_ok(),
        match &cleanup {
            Ok(()) => format!(
                "deleted namespaces {}",
                mapping.values().cloned().collect::<Vec<_>>().join(", ")
            ),
            Err(e) => e.clone(),
        },
    );

    let measured = Measured {
        restore_completed,
        restore_detail,
        rto,
        rpo,
        objects_in_backup: in_backup,
        objects_planned: restored.planned as usize,
        objects_restored: restored.restored as usize,
        workloads: verified.workloads,
        checks: verified.checks,
        backups: backups_kept,
        cleanup,
    };
    let criteria = verdict(
        plan.rpo,
        plan.rto,
        &plan.spec.success_criteria.resolved(),
        &measured,
    );
    let mut report = DrillReport {
        plan: plan.name.clone(),
        cluster: target.name.clone(),
        id,
        backup: Some(backup.metadata.name.clone()),
        location: Some(location),
        namespaces: mapping,
        started,
        rto_seconds: rto.map(|d| d.as_secs_f64()),
        rto_objective_seconds: plan.rto.as_secs(),
        rpo_seconds: rpo.map(|d| d.as_secs()),
        rpo_objective_seconds: plan.rpo.as_secs(),
        steps: rec.steps,
        passed: passed(&criteria),
        criteria,
        stored_at: None,
        warnings: Vec::new(),
    };
    let base = format!("{}-drill-{}", report.plan, report.id);
    crate::report::store_in(&store, &base, &mut report).await;
    Ok(report)
}

/// `dr drill` as Markdown.
pub fn drill_markdown(r: &DrillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DR drill {} of plan {} on cluster {}: {}\n",
        r.id,
        r.plan,
        r.cluster,
        if r.passed { "PASSED" } else { "FAILED" }
    );
    let _ = writeln!(
        out,
        "Started {}; backup {} from location {}.\n\n- RTO: {} (objective {})\n- RPO: {} (objective {})\n- Namespaces: {}\n",
        r.started.to_rfc3339(),
        r.backup.as_deref().unwrap_or("-"),
        r.location.as_deref().unwrap_or("-"),
        r.rto_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "not reached".into()),
        dur(r.rto_objective_seconds),
        r.rpo_seconds.map(dur).unwrap_or_else(|| "-".into()),
        dur(r.rpo_objective_seconds),
        r.namespaces
            .iter()
            .map(|(k, v)| format!("{k} → {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    steps_table(&mut out, &r.steps);
    let _ = writeln!(
        out,
        "\n## Criteria\n\n| criterion | result | evidence |\n|---|---|---|"
    );
    for c in &r.criteria {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            c.name,
            match (c.ok, c.required) {
                (true, _) => "ok",
                (false, true) => "FAILED",
                (false, false) => "missed (not required)",
            },
            c.detail.replace('|', "\\|")
        );
    }
    warnings_and_place(&mut out, &r.warnings, r.stored_at.as_deref(), None);
    out
}

impl crate::report::Stored for DrillReport {
    fn plan(&self) -> &str {
        &self.plan
    }
    fn markdown(&self) -> String {
        drill_markdown(self)
    }
    fn stored_at(&mut self) -> &mut Option<String> {
        &mut self.stored_at
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
}
