//! `dr status`: per plan and cluster, the RPO now (the age of the newest Completed
//! backup of the protected namespaces that the cluster can read) against the plan's,
//! schedule coverage of the protected namespaces, readiness to take over (API server,
//! Ready nodes, lifeboat installed, locations readable), and how far each cluster's
//! newest backup lags behind the newest any cluster sees, and which images of the
//! protected workloads (as the active cluster runs them) no Ready node of a standby
//! holds. The decisions are
//! `lifeboat_types::dr::status`'s; this module only looks.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::Serialize;

use lifeboat_engine::cluster::Cluster;
use lifeboat_types::dr::images::{missing_images, node_images, workload_images};
use lifeboat_types::dr::plan::Plan;
use lifeboat_types::dr::status::{
    Coverage, Health, Readiness, Rpo, ScheduleView, coverage, health, not_ready, recovery_point,
    rpo_now,
};

use crate::target::{ASK_TIMEOUT, LocalLocations, Target, reach};

/// The newest usable backup a cluster sees.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeenBackup {
    /// Its name.
    pub name: String,
    /// The location it was read from.
    pub location: String,
    /// When its data is from.
    pub recovery_point: DateTime<Utc>,
}

/// One cluster's part of the status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The plan's name for it.
    pub name: String,
    /// Whether it is the active cluster.
    pub active: bool,
    /// What was seen of it.
    pub readiness: Readiness,
    /// Why it cannot take over (empty: it can).
    pub not_ready: Vec<String>,
    /// The backup a failover to it would restore.
    pub backup: Option<SeenBackup>,
    /// The RPO it would achieve now.
    pub rpo: Rpo,
    /// Completed backups of the protected namespaces it can read.
    pub backups: usize,
    /// Seconds its newest backup is behind the newest any cluster of the plan sees
    /// (replication lag between locations); None without a backup.
    pub lag_seconds: Option<u64>,
    /// The schedules of its lifeboat server that protect each namespace (None: not
    /// installed there or unreadable).
    pub coverage: Option<Vec<Coverage>>,
    /// A standby's: the images the protected workloads run on the active cluster that
    /// none of its Ready nodes holds (None: not known, or the active cluster). Said, not
    /// judged: a warm standby runs nothing, so it pulls nothing until a failover.
    pub missing_images: Option<Vec<String>>,
}

/// The status of a plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    /// The plan.
    pub plan: String,
    /// Its RPO, in seconds.
    pub rpo_seconds: u64,
    /// Its RTO, in seconds.
    pub rto_seconds: u64,
    /// Its strategy.
    pub strategy: String,
    /// The verdict.
    pub health: Health,
    /// What erodes it, each a sentence naming the cluster or namespace.
    pub findings: Vec<String>,
    /// Each cluster, in the plan's order.
    pub clusters: Vec<ClusterStatus>,
    /// When it was taken.
    pub observed_at: DateTime<Utc>,
}

/// Ready nodes / all nodes, and the images the Ready ones hold (canonical).
async fn nodes_ready(cluster: &Cluster) -> Option<((usize, usize), BTreeSet<String>)> {
    let nodes = lifeboat_engine::cluster::v1_resource("", "nodes", "Node", false);
    let all = cluster.list_json(&nodes, None, None).await.ok()?;
    let ready: Vec<&serde_json::Value> = all
        .iter()
        .filter(|v| {
            v.pointer("/status/conditions")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .collect();
    let images = ready.iter().flat_map(|n| node_images(n)).collect();
    Some(((ready.len(), all.len()), images))
}

/// The images the plan's Deployments, StatefulSets, DaemonSets and CronJobs run on
/// `cluster` (None: they could not be listed).
async fn images_run(plan: &Plan, cluster: &Cluster) -> Option<BTreeSet<String>> {
    let mut kinds: Vec<lifeboat_types::plan::backup::ApiResource> = crate::fence::WORKLOADS
        .iter()
        .chain(&[("daemonsets", "DaemonSet")])
        .map(|(p, k)| lifeboat_engine::cluster::v1_resource("apps", p, k, true))
        .collect();
    if let Ok(Some(c)) = crate::fence::cronjobs(cluster).await {
        kinds.push(c);
    }
    let mut out = BTreeSet::new();
    for ns in &plan.spec.namespaces {
        for r in &kinds {
            for w in cluster.list_json(r, Some(ns), None).await.ok()? {
                out.extend(workload_images(&w));
            }
        }
    }
    Some(out)
}

/// The `(group, Kind)` pairs `cluster` serves (None: discovery did not answer).
async fn served_types(cluster: &Cluster) -> Option<BTreeSet<(String, String)>> {
    let (resources, _) = tokio::time::timeout(ASK_TIMEOUT, cluster.discover())
        .await
        .ok()?
        .ok()?;
    Some(resources.into_iter().map(|r| (r.group, r.kind)).collect())
}

/// A cluster's API server, Ready nodes and lifeboat's CRDs (its locations are not read).
pub async fn quick_readiness(t: &Target) -> Readiness {
    readiness_and_images(t).await.0
}

/// [`quick_readiness`], and the images its Ready nodes hold (None: not known).
async fn readiness_and_images(t: &Target) -> (Readiness, Option<BTreeSet<String>>) {
    let mut readiness = Readiness {
        api_error: t.cluster.as_ref().err().cloned(),
        crds: t.installed,
        ..Default::default()
    };
    let mut images = None;
    if let Ok(cluster) = &t.cluster
        && let Ok(Some((nodes, held))) =
            tokio::time::timeout(ASK_TIMEOUT, nodes_ready(cluster)).await
    {
        readiness.nodes = Some(nodes);
        images = Some(held);
    }
    (readiness, images)
}

async fn cluster_status(
    plan: &Plan,
    t: &Target,
    now: DateTime<Utc>,
    needed: Option<&BTreeSet<String>>,
) -> (ClusterStatus, Option<DateTime<Utc>>) {
    let (mut readiness, held_images) = readiness_and_images(t).await;
    let found = crate::target::backups(t, &plan.spec.namespaces).await;
    readiness.locations = found.locations.clone();
    let standby = !plan.cluster(&t.name).is_some_and(|c| c.active);
    if let (true, Ok(cluster), Some(_)) = (standby, &t.cluster, found.usable) {
        readiness.unserved_kinds = served_types(cluster).await.map(|served| {
            lifeboat_types::dr::status::unserved_kinds(
                found.usable_types.0.iter().map(String::as_str),
                &found.usable_types.1,
                &served,
            )
        });
    }
    let newest = found.chosen().map(|(_, _, b, _)| b);
    let seen = found.chosen().and_then(|(location, _, b, _)| {
        Some(SeenBackup {
            name: b.metadata.name.clone(),
            location: location.to_owned(),
            recovery_point: recovery_point(b)?,
        })
    });
    let coverage = match (&t.cluster, t.installed) {
        (Ok(cluster), Some(true)) => {
            let ns = plan
                .cluster(&t.name)
                .map(|c| c.namespace.clone())
                .unwrap_or_default();
            match lifeboat_engine::objects::Schedules::new(cluster, &ns)
                .list()
                .await
            {
                Ok(list) => {
                    let views: Vec<ScheduleView<'_>> = list
                        .iter()
                        .map(|s| ScheduleView {
                            name: s.metadata.name.as_deref().unwrap_or_default(),
                            spec: &s.spec,
                        })
                        .collect();
                    Some(coverage(now, &views, &plan.spec.namespaces, plan.rpo))
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    let active = plan.cluster(&t.name).is_some_and(|c| c.active);
    let missing = match (active, needed, held_images) {
        (false, Some(needed), Some(held)) => Some(missing_images(needed, &held)),
        _ => None,
    };
    let status = ClusterStatus {
        name: t.name.clone(),
        active,
        not_ready: not_ready(
            &readiness,
            !active && plan.spec.strategy == lifeboat_types::dr::plan::Strategy::WarmStandby,
        ),
        readiness,
        rpo: rpo_now(now, newest, plan.rpo),
        backups: found.covering,
        backup: seen.clone(),
        lag_seconds: None,
        coverage,
        missing_images: missing,
    };
    (status, seen.map(|s| s.recovery_point))
}

/// Looks at every cluster of `plan` (at once) and decides its status.
pub async fn status(plan: &Plan, local: LocalLocations<'_>) -> PlanStatus {
    let now = Utc::now();
    let targets = join_all(plan.spec.clusters.iter().map(|c| reach(c, local))).await;
    // The images the protected workloads run, as the active cluster runs them.
    let needed = match targets
        .iter()
        .find(|t| plan.cluster(&t.name).is_some_and(|c| c.active))
        .and_then(|t| t.cluster.as_ref().ok())
    {
        Some(c) => tokio::time::timeout(ASK_TIMEOUT, images_run(plan, c))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let looked = join_all(
        targets
            .iter()
            .map(|t| cluster_status(plan, t, now, needed.as_ref())),
    )
    .await;
    let newest_anywhere = looked.iter().filter_map(|(_, t)| *t).max();
    let mut clusters = Vec::new();
    for (mut c, point) in looked {
        c.lag_seconds = match (newest_anywhere, point) {
            (Some(n), Some(p)) => Some(
                n.signed_duration_since(p)
                    .to_std()
                    .unwrap_or_default()
                    .as_secs(),
            ),
            _ => None,
        };
        clusters.push(c);
    }
    let criteria = plan.spec.success_criteria.resolved();
    let mut findings = Vec::new();
    for c in &clusters {
        let role = if c.active { "active" } else { "standby" };
        for why in &c.not_ready {
            findings.push(format!("{role} cluster {}: {why}", c.name));
        }
        match &c.rpo {
            Rpo::Breached { backup, age_seconds } => findings.push(format!(
                "{role} cluster {}: RPO breached: its newest backup {backup} is {}s old (objective {}s)",
                c.name,
                age_seconds,
                plan.rpo.as_secs()
            )),
            Rpo::NoBackup => findings.push(format!(
                "{role} cluster {}: no Completed backup of {} in the locations it reads",
                c.name,
                plan.spec.namespaces.join(", ")
            )),
            Rpo::Met { .. } => {}
        }
        if c.backups > 0 && c.backups < criteria.min_backups as usize {
            findings.push(format!(
                "{role} cluster {}: {} Completed backups, the plan asks for at least {}",
                c.name, c.backups, criteria.min_backups
            ));
        }
        if c.active {
            match &c.coverage {
                Some(cov) => {
                    for n in cov.iter().filter(|n| !n.within_rpo) {
                        findings.push(if n.schedules.is_empty() {
                            format!(
                                "namespace {}: no unpaused schedule of the active cluster backs it up",
                                n.namespace
                            )
                        } else {
                            format!(
                                "namespace {}: no schedule of the active cluster runs at least every {}s (the RPO)",
                                n.namespace,
                                plan.rpo.as_secs()
                            )
                        });
                    }
                }
                None if c.readiness.api_error.is_none() => findings.push(format!(
                    "active cluster {}: its schedules could not be read (is lifeboat installed in namespace {}?)",
                    c.name,
                    plan.cluster(&c.name).map(|p| p.namespace.as_str()).unwrap_or_default()
                )),
                None => {}
            }
        }
    }
    let ready_standbys = clusters
        .iter()
        .filter(|c| !c.active && c.not_ready.is_empty() && c.rpo.met())
        .count();
    PlanStatus {
        plan: plan.name.clone(),
        rpo_seconds: plan.rpo.as_secs(),
        rto_seconds: plan.rto.as_secs(),
        strategy: plan.spec.strategy.to_string(),
        health: health(ready_standbys, findings.len()),
        findings,
        clusters,
        observed_at: now,
    }
}
