//! The audit's reading of a cluster: one LIST per type (per protected namespace when
//! namespaces are named, else cluster-wide), pods kept as their labels only, and the
//! newest etcd snapshot of each location lifeboat's server holds. What cannot be read is
//! a warning of the run, never a finding made up from nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use lifeboat_engine::cluster::{Cluster, v1_resource};
use lifeboat_engine::error::chain;
use lifeboat_types::api::crd::{BackupStorageLocationResource, ScheduleResource};
use lifeboat_types::plan::backup::ApiResource;
use lifeboat_types::readiness::audit::{Observed, SeenEtcd, SeenSchedule};
use lifeboat_types::rules::replicate::REPLICATE_TO;
use serde_json::{Value, json};

/// Namespaces an audit of every namespace leaves out: Kubernetes' own.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// What to audit.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The protected namespaces (None: every namespace but [`SYSTEM_NAMESPACES`]).
    pub namespaces: Option<Vec<String>>,
    /// The RPO Schedules are held to, and where it comes from.
    pub rpo: (Duration, String),
    /// Locations known besides the cluster's own (a DR plan's).
    pub locations: Vec<String>,
    /// How old the newest etcd snapshot may be (None: not looked for).
    pub etcd_max_age: Option<Duration>,
}

impl Scope {
    /// A DR plan's audit: its protected namespaces, its RPO (named by its tier) and the
    /// locations its clusters read, with the etcd snapshot age `etcd_max_age`.
    pub fn of_plan(plan: &lifeboat_types::dr::plan::Plan, etcd_max_age: Option<Duration>) -> Scope {
        let tier = plan.spec.tier.as_deref().unwrap_or("custom objectives");
        Scope {
            namespaces: Some(plan.spec.namespaces.clone()),
            rpo: (plan.rpo, format!("plan {}, {tier}", plan.name)),
            locations: plan
                .spec
                .clusters
                .iter()
                .flat_map(|c| c.locations.iter().cloned())
                .collect(),
            etcd_max_age,
        }
    }
}

/// What was read, and what could not be.
pub struct Read {
    /// The objects and facts, for the rules.
    pub observed: Observed,
    /// What could not be read (the rules then judge without it).
    pub warnings: Vec<String>,
}

/// The one error that ends an audit: the cluster cannot be read at all.
pub type Error = lifeboat_engine::cluster::ClusterError;

/// Items of a LIST carry neither kind nor apiVersion: both from the resource listed (the
/// rules read them: a PodDisruptionBudget's empty selector means one thing in
/// policy/v1beta1 and another in policy/v1).
fn with_kind(mut items: Vec<Value>, r: &ApiResource) -> Vec<Value> {
    let api_version = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    for i in &mut items {
        if i.get("kind").is_none_or(Value::is_null) {
            i["kind"] = json!(r.kind);
        }
        if i.get("apiVersion").is_none_or(Value::is_null) {
            i["apiVersion"] = json!(api_version);
        }
    }
    items
}

/// The objects of `r` in the protected namespaces: one LIST per namespace, or one
/// cluster-wide keeping the protected ones.
async fn list_in(
    cluster: &Cluster,
    r: &ApiResource,
    namespaces: &[String],
    per_namespace: bool,
) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    if per_namespace {
        for ns in namespaces {
            out.extend(cluster.list_json(r, Some(ns), None).await?);
        }
    } else {
        let keep: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
        out = cluster.list_json(r, None, None).await?;
        out.retain(|o| {
            keep.contains(
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
        });
    }
    Ok(with_kind(out, r))
}

/// A pod as the rules need it: kind, name, namespace and labels.
fn pod_labels(p: &Value) -> Value {
    json!({"kind": "Pod", "metadata": {
        "name": p.pointer("/metadata/name"),
        "namespace": p.pointer("/metadata/namespace"),
        "labels": p.pointer("/metadata/labels"),
    }})
}

/// Reads what the audit judges.
pub async fn read(cluster: &Cluster, scope: &Scope) -> Result<Read, Error> {
    let mut warnings = Vec::new();
    let per_namespace = scope.namespaces.is_some();
    let namespaces = match &scope.namespaces {
        Some(n) => n.clone(),
        None => {
            let all = cluster
                .list_json(
                    &v1_resource("", "namespaces", "Namespace", false),
                    None,
                    None,
                )
                .await?;
            all.iter()
                .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
                .filter(|n| !SYSTEM_NAMESPACES.contains(n))
                .map(str::to_owned)
                .collect()
        }
    };
    let (resources, _) = cluster.discover().await?;
    let find = |group: &str, plural: &str| {
        resources
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .cloned()
    };
    let mut workloads = Vec::new();
    for (plural, kind) in [
        ("deployments", "Deployment"),
        ("statefulsets", "StatefulSet"),
        ("daemonsets", "DaemonSet"),
    ] {
        let r = v1_resource("apps", plural, kind, true);
        workloads.extend(list_in(cluster, &r, &namespaces, per_namespace).await?);
    }
    let pods = list_in(
        cluster,
        &v1_resource("", "pods", "Pod", true),
        &namespaces,
        per_namespace,
    )
    .await?
    .iter()
    .map(pod_labels)
    .collect();
    let claims = list_in(
        cluster,
        &v1_resource("", "persistentvolumeclaims", "PersistentVolumeClaim", true),
        &namespaces,
        per_namespace,
    )
    .await?;
    // policy/v1 from Kubernetes 1.21, policy/v1beta1 before: discovery's preferred one.
    let pdbs = match find("policy", "poddisruptionbudgets") {
        Some(r) => list_in(cluster, &r, &namespaces, per_namespace).await?,
        None => Vec::new(),
    };
    let nodes = cluster
        .list_json(&v1_resource("", "nodes", "Node", false), None, None)
        .await?;
    let classes = v1_resource("storage.k8s.io", "storageclasses", "StorageClass", false);
    let storage_classes = with_kind(cluster.list_json(&classes, None, None).await?, &classes);
    // The volumes bound to the claims: their own reclaim policy is what counts.
    let bound: BTreeSet<&str> = claims
        .iter()
        .filter_map(|c| c.pointer("/spec/volumeName").and_then(Value::as_str))
        .collect();
    let volumes = if bound.is_empty() {
        Vec::new()
    } else {
        let pvs = v1_resource("", "persistentvolumes", "PersistentVolume", false);
        let mut all = cluster.list_json(&pvs, None, None).await?;
        all.retain(|pv| {
            bound.contains(
                pv.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
        });
        all
    };
    let snapshot_classes = match find("snapshot.storage.k8s.io", "volumesnapshotclasses") {
        Some(r) => Some(cluster.list_json(&r, None, None).await?),
        None => None,
    };
    let installed = lifeboat_engine::objects::lifeboat_installed(cluster).await?;
    let mut locations: BTreeSet<String> = scope.locations.iter().cloned().collect();
    let mut schedules = None;
    let mut etcd: Option<Option<SeenEtcd>> = scope.etcd_max_age.map(|_| None);
    if installed {
        let client = cluster.client().clone();
        match Api::<ScheduleResource>::all(client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => {
                let mut seen = Vec::new();
                for s in list.items {
                    let name = format!(
                        "{}/{}",
                        s.metadata.namespace.as_deref().unwrap_or_default(),
                        s.metadata.name.as_deref().unwrap_or_default()
                    );
                    if let Some(to) = s
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(REPLICATE_TO))
                    {
                        locations.extend(
                            to.split(',')
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_owned),
                        );
                    }
                    seen.push(SeenSchedule { name, spec: s.spec });
                }
                schedules = Some(seen);
            }
            Err(e) => warnings.push(format!(
                "cannot list lifeboat's Schedules: {}; schedule coverage is judged as if there were none",
                chain(&e)
            )),
        }
        match Api::<BackupStorageLocationResource>::all(client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => {
                let secrets = tempfile::tempdir().ok();
                for l in list.items {
                    let (ns, name) = (
                        l.metadata.namespace.clone().unwrap_or_default(),
                        l.metadata.name.clone().unwrap_or_default(),
                    );
                    locations.insert(name.clone());
                    let (Some(_), Some(dir)) = (scope.etcd_max_age, &secrets) else {
                        continue;
                    };
                    match newest_etcd(&client, &ns, &name, dir.path()).await {
                        Ok(Some(found)) => {
                            let newer = match &etcd {
                                Some(Some(e)) => found.taken > e.taken,
                                _ => true,
                            };
                            if newer {
                                etcd = Some(Some(found));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => warnings.push(format!(
                            "cannot read the etcd snapshots of location {ns}/{name}: {e}"
                        )),
                    }
                }
            }
            Err(e) => warnings.push(format!(
                "cannot list lifeboat's BackupStorageLocations: {}",
                chain(&e)
            )),
        }
    }
    let (rpo, rpo_source) = scope.rpo.clone();
    Ok(Read {
        observed: Observed {
            now: chrono::Utc::now(),
            namespaces,
            workloads,
            pods,
            pdbs,
            claims,
            volumes,
            nodes,
            storage_classes,
            snapshot_classes,
            schedules,
            rpo,
            rpo_source,
            locations,
            etcd,
            etcd_max_age: scope.etcd_max_age.unwrap_or_default(),
        },
        warnings,
    })
}

/// The newest etcd snapshot of location `ns/name` (its credentials from the server's
/// Secret, written under `secrets`).
async fn newest_etcd(
    client: &kube::Client,
    ns: &str,
    name: &str,
    secrets: &std::path::Path,
) -> Result<Option<SeenEtcd>, String> {
    let (store, _) = lifeboat_engine::location_object::open(client, ns, Some(name), secrets)
        .await
        .map_err(|e| chain(&e))?;
    let snaps = store.etcd_snapshots().await.map_err(|e| chain(&e))?;
    Ok(snaps.into_iter().max_by_key(|s| s.taken).map(|s| SeenEtcd {
        location: name.to_owned(),
        name: s.name,
        taken: s.taken,
    }))
}
