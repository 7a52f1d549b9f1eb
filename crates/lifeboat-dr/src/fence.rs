//! Fencing a cluster (a failover's old active, a failback's acting cluster): the
//! Schedules that back the plan's namespaces up paused, their Deployments and
//! StatefulSets scaled to 0 with the count kept in the plan's annotation; each change
//! recorded so that a rollback undoes exactly it; its DaemonSets held off every node
//! (`types::dr::failover::HELD_OFF_NODES`) and its CronJobs suspended too. Also what lets a fenced cluster serve
//! again: its workloads scaled back to their kept counts, its paused schedules resumed.
//! Decisions are `lifeboat_types::dr::failover`'s.

use lifeboat_engine::cluster::{Cluster, v1_resource};
use lifeboat_engine::error::chain;
use lifeboat_types::dr::failover::{
    FenceRecord, daemonset_held, fence_patch, hold_daemonset_patch, pause_schedule_patch, pauses,
    release_daemonset_patch, resume_schedule_patch, resumes, rollback_patch, unfence_patch,
};
use lifeboat_types::dr::plan::{Plan, PlanCluster};
use lifeboat_types::dr::standby::{ORIGINAL_SUSPEND, PROMOTED};

/// A change fencing made, to undo on rollback.
#[derive(Debug, Clone)]
pub enum Fenced {
    /// A Schedule paused.
    Schedule {
        /// Its namespace (lifeboat's in that cluster).
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A Deployment or StatefulSet scaled to 0.
    Workload {
        /// Its resource (`deployments`).
        plural: &'static str,
        /// Its kind.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its count and annotation before.
        was: FenceRecord,
    },
    /// A DaemonSet held off every node.
    DaemonSet {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A CronJob suspended (it would start Jobs on a cluster that does not serve).
    CronJob {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

pub(crate) const WORKLOADS: &[(&str, &str)] = &[
    ("deployments", "Deployment"),
    ("statefulsets", "StatefulSet"),
];

fn daemonsets() -> lifeboat_types::plan::backup::ApiResource {
    v1_resource("apps", "daemonsets", "DaemonSet", true)
}

/// Patches each of the plan's DaemonSets `decide` returns a merge patch for (none with
/// `dry`): the namespace and name of each patched, and Err naming what failed first
/// (`doing`: "holding", "releasing") — the ones patched before it are in the list, to undo.
async fn patch_daemonsets(
    plan: &Plan,
    cluster: &Cluster,
    dry: bool,
    doing: &str,
    decide: impl Fn(&serde_json::Value) -> Option<serde_json::Value>,
) -> (Vec<(String, String)>, Result<(), String>) {
    let mut out = Vec::new();
    for ns in &plan.spec.namespaces {
        let listed = match cluster.list_json(&daemonsets(), Some(ns), None).await {
            Ok(l) => l,
            Err(e) => return (out, Err(chain(&e))),
        };
        for d in listed {
            let Some(patch) = decide(&d) else {
                continue;
            };
            let name = name_of(&d);
            if !dry
                && let Err(e) = cluster
                    .merge_patch(
                        &daemonsets(),
                        Some(ns),
                        &name,
                        serde_json::to_vec(&patch).unwrap_or_default(),
                    )
                    .await
            {
                return (
                    out,
                    Err(format!("{doing} DaemonSet {ns}/{name}: {}", chain(&e))),
                );
            }
            out.push((ns.clone(), name));
        }
    }
    (out, Ok(()))
}

pub(crate) fn name_of(v: &serde_json::Value) -> String {
    v.pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Fences the old active cluster (or, with `dry`, says what fencing would do). Returns
/// what it changed, and Err with what failed.
pub async fn fence(
    plan: &Plan,
    active: &PlanCluster,
    cluster: &Cluster,
    installed: Option<bool>,
    dry: bool,
    done: &mut Vec<Fenced>,
) -> Result<String, String> {
    let mut said = Vec::new();
    let schedules = lifeboat_engine::objects::Schedules::new(cluster, &active.namespace);
    let listed = if installed == Some(false) {
        said.push("lifeboat is not installed there: no schedule to pause".to_owned());
        Ok(Vec::new())
    } else {
        schedules.list().await
    };
    match listed {
        Ok(list) => {
            for s in list {
                if !pauses(&s.spec, &plan.spec.namespaces) {
                    continue;
                }
                let name = s.metadata.name.clone().unwrap_or_default();
                if !dry {
                    let r = v1_resource_lifeboat("schedules", "Schedule");
                    cluster
                        .merge_patch(
                            &r,
                            Some(&active.namespace),
                            &name,
                            serde_json::to_vec(&pause_schedule_patch(&plan.name))
                                .unwrap_or_default(),
                        )
                        .await
                        .map_err(|e| format!("pausing schedule {name}: {}", chain(&e)))?;
                    done.push(Fenced::Schedule {
                        namespace: active.namespace.clone(),
                        name: name.clone(),
                    });
                }
                said.push(format!("schedule {name} paused"));
            }
        }
        // Its backups would go on landing where the standby reads: never carry on.
        Err(e) => {
            return Err(format!(
                "the schedules in namespace {} could not be read, so they could not be paused: {e}",
                active.namespace
            ));
        }
    }
    let key = &plan.spec.replicas.annotation;
    for ns in &plan.spec.namespaces {
        for (plural, kind) in WORKLOADS {
            let all = cluster
                .list_json(&v1_resource("apps", plural, kind, true), Some(ns), None)
                .await
                .map_err(|e| chain(&e))?;
            for w in all {
                let Some((patch, was)) = fence_patch(&w, key) else {
                    continue;
                };
                let name = name_of(&w);
                let count = was.count;
                if !dry {
                    cluster
                        .merge_patch(
                            &v1_resource("apps", plural, kind, true),
                            Some(ns),
                            &name,
                            serde_json::to_vec(&patch).unwrap_or_default(),
                        )
                        .await
                        .map_err(|e| format!("scaling {kind} {ns}/{name} to 0: {}", chain(&e)))?;
                    done.push(Fenced::Workload {
                        plural,
                        kind,
                        namespace: ns.clone(),
                        name: name.clone(),
                        was,
                    });
                }
                said.push(format!("{kind} {ns}/{name} {count} → 0"));
            }
        }
    }
    let (held, failed) = patch_daemonsets(plan, cluster, dry, "holding", |d| {
        hold_daemonset_patch(d, &plan.name)
    })
    .await;
    for (ns, name) in held {
        said.push(format!("DaemonSet {ns}/{name} held off its nodes"));
        if !dry {
            done.push(Fenced::DaemonSet {
                namespace: ns,
                name,
            });
        }
    }
    failed?;
    if !dry {
        // A fenced cluster serves no more: a promotion's mark goes.
        let r = v1_resource("", "namespaces", "Namespace", false);
        let unmark = serde_json::json!({"metadata": {"annotations": {PROMOTED: null}}});
        for ns in &plan.spec.namespaces {
            if let Err(e) = cluster
                .merge_patch(
                    &r,
                    None,
                    ns,
                    serde_json::to_vec(&unmark).unwrap_or_default(),
                )
                .await
                && !lifeboat_engine::cluster::ApiErrorKind::is_not_found(&e)
            {
                return Err(format!("unmarking namespace {ns}: {}", chain(&e)));
            }
        }
    }
    if let Some(r) = cronjobs(cluster).await? {
        let patch = serde_json::json!({
            "metadata": {"annotations": {ORIGINAL_SUSPEND: "false"}},
            "spec": {"suspend": true}
        });
        for ns in &plan.spec.namespaces {
            for c in cluster
                .list_json(&r, Some(ns), None)
                .await
                .map_err(|e| chain(&e))?
            {
                if c.pointer("/spec/suspend")
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
                {
                    continue;
                }
                let name = name_of(&c);
                if !dry {
                    cluster
                        .merge_patch(
                            &r,
                            Some(ns),
                            &name,
                            serde_json::to_vec(&patch).unwrap_or_default(),
                        )
                        .await
                        .map_err(|e| format!("suspending CronJob {ns}/{name}: {}", chain(&e)))?;
                    done.push(Fenced::CronJob {
                        namespace: ns.clone(),
                        name: name.clone(),
                    });
                }
                said.push(format!("CronJob {ns}/{name} suspended"));
            }
        }
    }
    Ok(if said.is_empty() {
        "nothing to fence".into()
    } else {
        said.join(", ")
    })
}

/// CronJobs as the cluster serves them (batch/v1, or batch/v1beta1 before 1.21); None
/// when it serves none.
pub(crate) async fn cronjobs(
    cluster: &Cluster,
) -> Result<Option<lifeboat_types::plan::backup::ApiResource>, String> {
    let (resources, _) = cluster.discover().await.map_err(|e| chain(&e))?;
    Ok(resources
        .into_iter()
        .find(|r| r.group == "batch" && r.plural == "cronjobs"))
}

/// The plan's Deployments and StatefulSets that run replicas on `cluster`
/// (`Deployment shop/web (2 replicas)`): what says a cluster serves.
pub async fn running(plan: &Plan, cluster: &Cluster) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for ns in &plan.spec.namespaces {
        for (plural, kind) in WORKLOADS {
            for w in cluster
                .list_json(&v1_resource("apps", plural, kind, true), Some(ns), None)
                .await
                .map_err(|e| chain(&e))?
            {
                let n = w
                    .pointer("/spec/replicas")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(1);
                if n > 0 {
                    out.push(format!("{kind} {ns}/{} ({n} replicas)", name_of(&w)));
                }
            }
        }
        for d in cluster
            .list_json(&daemonsets(), Some(ns), None)
            .await
            .map_err(|e| chain(&e))?
        {
            let n = d
                .pointer("/status/desiredNumberScheduled")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            if !daemonset_held(&d) && n > 0 {
                out.push(format!("DaemonSet {ns}/{} ({n} pods)", name_of(&d)));
            }
        }
    }
    Ok(out)
}

pub(crate) fn v1_resource_lifeboat(
    plural: &str,
    kind: &str,
) -> lifeboat_types::plan::backup::ApiResource {
    let mut r = v1_resource(lifeboat_types::api::crd::GROUP, plural, kind, true);
    r.version = lifeboat_types::api::crd::VERSION.into();
    r
}

/// Undoes fencing, newest change first; returns what could not be undone.
pub async fn unfence(plan: &Plan, cluster: &Cluster, done: &[Fenced]) -> Vec<String> {
    let mut left = Vec::new();
    let key = &plan.spec.replicas.annotation;
    for f in done.iter().rev() {
        match f {
            Fenced::Schedule { namespace, name } => {
                let r = v1_resource_lifeboat("schedules", "Schedule");
                if let Err(e) = cluster
                    .merge_patch(
                        &r,
                        Some(namespace),
                        name,
                        serde_json::to_vec(&resume_schedule_patch()).unwrap_or_default(),
                    )
                    .await
                {
                    left.push(format!(
                        "schedule {namespace}/{name} is still paused: {}",
                        chain(&e)
                    ));
                }
            }
            Fenced::DaemonSet { namespace, name } => {
                let path = format!(
                    "{}/{}",
                    lifeboat_engine::cluster::collection_path(&daemonsets(), Some(namespace)),
                    name
                );
                let released = match cluster.get_path_opt(&path, "daemonsets").await {
                    Ok(Some(text)) => {
                        match serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|d| release_daemonset_patch(&d, &plan.name))
                        {
                            Some(patch) => cluster
                                .merge_patch(
                                    &daemonsets(),
                                    Some(namespace),
                                    name,
                                    serde_json::to_vec(&patch).unwrap_or_default(),
                                )
                                .await
                                .map(|_| ())
                                .map_err(|e| chain(&e)),
                            None => Ok(()),
                        }
                    }
                    Ok(None) => Err("it is gone".into()),
                    Err(e) => Err(chain(&e)),
                };
                if let Err(e) = released {
                    left.push(format!(
                        "DaemonSet {namespace}/{name} is still held off its nodes: {e}"
                    ));
                }
            }
            Fenced::CronJob { namespace, name } => {
                let released = match cronjobs(cluster).await {
                    Ok(Some(r)) => cluster
                        .merge_patch(
                            &r,
                            Some(namespace),
                            name,
                            serde_json::to_vec(&serde_json::json!({
                                "metadata": {"annotations": {ORIGINAL_SUSPEND: null}},
                                "spec": {"suspend": false}
                            }))
                            .unwrap_or_default(),
                        )
                        .await
                        .map_err(|e| chain(&e)),
                    Ok(None) => Err("CronJobs are not served".into()),
                    Err(e) => Err(e),
                };
                if let Err(e) = released {
                    left.push(format!(
                        "CronJob {namespace}/{name} is still suspended: {e}"
                    ));
                }
            }
            Fenced::Workload {
                plural,
                kind,
                namespace,
                name,
                was,
            } => {
                let r = v1_resource("apps", plural, kind, true);
                let path = format!(
                    "{}/{}",
                    lifeboat_engine::cluster::collection_path(&r, Some(namespace)),
                    name
                );
                let live = match cluster.get_path_opt(&path, plural).await {
                    Ok(Some(text)) => serde_json::from_str::<serde_json::Value>(&text).ok(),
                    Ok(None) => {
                        left.push(format!("{kind} {namespace}/{name} is gone"));
                        continue;
                    }
                    Err(e) => {
                        left.push(format!("{kind} {namespace}/{name}: {}", chain(&e)));
                        continue;
                    }
                };
                let Some(patch) = live.and_then(|l| rollback_patch(&l, key, was)) else {
                    continue;
                };
                if let Err(e) = cluster
                    .merge_patch(
                        &r,
                        Some(namespace),
                        name,
                        serde_json::to_vec(&patch).unwrap_or_default(),
                    )
                    .await
                {
                    left.push(format!(
                        "{kind} {namespace}/{name} is still at 0 replicas: {}",
                        chain(&e)
                    ));
                }
            }
        }
    }
    left
}

/// Lets a fenced cluster's workloads serve again (a failback's original cluster): its
/// protected Deployments and StatefulSets at 0 scaled to their kept counts
/// (`types::dr::failover::unfence_patch`). With `dry`, says what it would do. Err names
/// what failed.
pub async fn scale_up(plan: &Plan, cluster: &Cluster, dry: bool) -> Result<String, String> {
    let mut said = Vec::new();
    let key = &plan.spec.replicas.annotation;
    for ns in &plan.spec.namespaces {
        for (plural, kind) in WORKLOADS {
            let r = v1_resource("apps", plural, kind, true);
            let all = cluster
                .list_json(&r, Some(ns), None)
                .await
                .map_err(|e| chain(&e))?;
            for w in all {
                let Some(patch) = unfence_patch(&w, key, plan.spec.replicas.default_replicas)
                else {
                    continue;
                };
                let name = name_of(&w);
                let count = patch["spec"]["replicas"].as_i64().unwrap_or_default();
                if !dry {
                    cluster
                        .merge_patch(
                            &r,
                            Some(ns),
                            &name,
                            serde_json::to_vec(&patch).unwrap_or_default(),
                        )
                        .await
                        .map_err(|e| format!("scaling {kind} {ns}/{name} up: {}", chain(&e)))?;
                }
                said.push(format!("{kind} {ns}/{name} 0 → {count}"));
            }
        }
    }
    let (released, failed) = patch_daemonsets(plan, cluster, dry, "releasing", |d| {
        release_daemonset_patch(d, &plan.name)
    })
    .await;
    for (ns, name) in released {
        said.push(format!("DaemonSet {ns}/{name} released onto its nodes"));
    }
    failed?;
    Ok(if said.is_empty() {
        "every workload runs already".into()
    } else {
        said.join(", ")
    })
}

/// Resumes the Schedules that fencing paused for this plan in cluster `at`
/// (`types::dr::failover::resumes`: one a person paused stays paused). With `dry`, says
/// what it would do.
pub async fn resume_schedules(
    plan: &Plan,
    at: &PlanCluster,
    cluster: &Cluster,
    installed: Option<bool>,
    dry: bool,
) -> Result<String, String> {
    if installed == Some(false) {
        return Ok("lifeboat is not installed there: no schedule to resume".into());
    }
    let schedules = lifeboat_engine::objects::Schedules::new(cluster, &at.namespace);
    let list = schedules.list().await.map_err(|e| {
        format!(
            "the schedules in namespace {} could not be read, so they could not be resumed: {e}",
            at.namespace
        )
    })?;
    let mut said = Vec::new();
    for s in list {
        if !resumes(s.metadata.annotations.as_ref(), &s.spec, &plan.name) {
            continue;
        }
        let name = s.metadata.name.clone().unwrap_or_default();
        if !dry {
            cluster
                .merge_patch(
                    &v1_resource_lifeboat("schedules", "Schedule"),
                    Some(&at.namespace),
                    &name,
                    serde_json::to_vec(&resume_schedule_patch()).unwrap_or_default(),
                )
                .await
                .map_err(|e| format!("resuming schedule {name}: {}", chain(&e)))?;
        }
        said.push(format!("schedule {name} resumed"));
    }
    Ok(if said.is_empty() {
        "no schedule was paused for this plan".into()
    } else {
        said.join(", ")
    })
}
