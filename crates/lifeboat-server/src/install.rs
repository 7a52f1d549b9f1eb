//! `lifeboat install` / `uninstall`: applies (server-side apply, field manager
//! `lifeboat`) or deletes the objects of [`lifeboat_types::manifests::install::manifests`].

use std::time::Duration;

use serde_json::Value;

use lifeboat_engine::cluster::{Cluster, ClusterError};
use lifeboat_types::manifests::install::collection;
use lifeboat_types::manifests::rbac;

/// Why an install or uninstall stopped.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The API server refused an object.
    #[error("cannot apply {kind} {name}")]
    Apply {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// A CRD did not become Established.
    #[error("CRD {0} was not Established within 60s; check the API server's log")]
    NotEstablished(String),
    /// An aggregated ClusterRole did not receive the rules of the roles it selects.
    #[error(
        "ClusterRole {0} did not receive the rules of the ClusterRoles labelled for it within 60s; kube-controller-manager's clusterrole-aggregation controller copies them: check that it runs"
    )]
    NotAggregated(String),
    /// An object of a kind install does not know.
    #[error("install does not know where {0} objects live")]
    UnknownKind(String),
    /// A server still leads: uninstall would pull the finalizers from under it.
    #[error(
        "a lifeboat server (identity {holder:?}) still leads in namespace {namespace} {waited}s after its Deployment was deleted; stop it (a server run outside the cluster is stopped by hand) and run uninstall again — nothing else was removed"
    )]
    ServerRunning {
        /// The Lease holder.
        holder: String,
        /// The namespace.
        namespace: String,
        /// How long uninstall waited.
        waited: u64,
    },
    /// `install --wait`: the Deployment had no available replica in time.
    #[error(
        "Deployment {namespace}/lifeboat has no available replica {waited}s after install ({status}); see `kubectl -n {namespace} describe deploy/lifeboat` and its pods' events (image pull, scheduling), then run install --wait again or wait longer with --wait-timeout"
    )]
    NotAvailable {
        /// The namespace.
        namespace: String,
        /// How long install waited.
        waited: u64,
        /// What the Deployment's status said last.
        status: String,
    },
    /// The Deployment could not be read.
    #[error("cannot read Deployment {namespace}/lifeboat")]
    Deployment {
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The Lease could not be read.
    #[error(
        "cannot read the leader Lease {namespace}/{}",
        crate::lease::LEASE_NAME
    )]
    Lease {
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

impl InstallError {
    /// Whether running it again later can help (the API server failed for a moment).
    pub fn is_retryable(&self) -> bool {
        match self {
            InstallError::Apply { source, .. } => source.is_retryable(),
            InstallError::NotEstablished(_) | InstallError::NotAggregated(_) => true,
            InstallError::UnknownKind(_) => false,
            InstallError::ServerRunning { .. } | InstallError::Lease { .. } => true,
            InstallError::NotAvailable { .. } | InstallError::Deployment { .. } => true,
        }
    }
}

fn ident(o: &Value) -> (String, String, String, Option<String>) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&o["apiVersion"]),
        s(&o["kind"]),
        s(&o["metadata"]["name"]),
        o["metadata"]["namespace"].as_str().map(str::to_string),
    )
}

/// Applies `objects` in order; waits for CRDs to be Established before the first object
/// after them, and at the end for each aggregated ClusterRole to hold the rules of the
/// ClusterRoles among `objects` it selects (a server started at once would otherwise be
/// refused what its base role grants). Returns `kind/name` of each object applied.
pub async fn apply(cluster: &Cluster, objects: &[Value]) -> Result<Vec<String>, InstallError> {
    let mut done = Vec::new();
    let mut pending_crds: Vec<String> = Vec::new();
    for o in objects {
        let (api_version, kind, name, ns) = ident(o);
        if kind != "CustomResourceDefinition" {
            for crd in pending_crds.drain(..) {
                wait_established(cluster, &crd).await?;
            }
        }
        let coll = collection(&api_version, &kind, ns.as_deref().unwrap_or_default())
            .ok_or_else(|| InstallError::UnknownKind(kind.clone()))?;
        let body = serde_json::to_vec(o).unwrap_or_default();
        cluster
            .apply_raw(&coll, &name, body, &kind.to_lowercase(), ns.as_deref())
            .await
            .map_err(|source| InstallError::Apply {
                kind: kind.clone(),
                name: name.clone(),
                source,
            })?;
        if kind == "CustomResourceDefinition" {
            pending_crds.push(name.clone());
        }
        done.push(format!("{kind}/{name}"));
    }
    for crd in pending_crds {
        wait_established(cluster, &crd).await?;
    }
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" && o.get("aggregationRule").is_some())
    {
        let want = rbac::aggregated_rules(role, objects);
        wait_aggregated(cluster, &ident(role).2, &want).await?;
    }
    Ok(done)
}

async fn wait_aggregated(
    cluster: &Cluster,
    name: &str,
    want: &[Value],
) -> Result<(), InstallError> {
    let path = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}");
    for _ in 0..120 {
        if let Ok(text) = cluster.get_path(&path, "clusterroles").await
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && rbac::covers(
                v["rules"].as_array().map(Vec::as_slice).unwrap_or_default(),
                want,
            )
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(InstallError::NotAggregated(name.into()))
}

async fn wait_established(cluster: &Cluster, name: &str) -> Result<(), InstallError> {
    let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
    for _ in 0..120 {
        if let Ok(text) = cluster.get_path(&path, "customresourcedefinitions").await
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && v["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(InstallError::NotEstablished(name.into()))
}

/// Deletes `objects` in reverse order (missing ones are skipped). Returns `kind/name` of
/// each object deleted.
pub async fn delete(cluster: &Cluster, objects: &[Value]) -> Result<Vec<String>, InstallError> {
    let mut done = Vec::new();
    for o in objects.iter().rev() {
        let (api_version, kind, name, ns) = ident(o);
        let coll = collection(&api_version, &kind, ns.as_deref().unwrap_or_default())
            .ok_or_else(|| InstallError::UnknownKind(kind.clone()))?;
        let deleted = cluster
            .delete_raw(&coll, &name, &kind.to_lowercase(), ns.as_deref())
            .await
            .map_err(|source| InstallError::Apply {
                kind: kind.clone(),
                name: name.clone(),
                source,
            })?;
        if deleted {
            done.push(format!("{kind}/{name}"));
        }
    }
    Ok(done)
}

/// How long [`wait_server_stopped`] waits: an idle server given SIGTERM (its Deployment
/// deleted) releases the Lease at once; a server that died leaves a Lease that stops
/// changing and expires after its duration. A server still finishing a backup may take
/// its whole grace period: uninstall then fails, saying so, and is run again.
pub const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(45);

/// Waits until no lifeboat server leads in `namespace` — the Lease is missing or released,
/// or its record has not changed for its duration (timed on this process's clock, as a
/// follower does: its holder is gone) — for up to `timeout`. Uninstall calls it after
/// deleting the Deployment and before releasing any finalizer (issue 11, item 10): a
/// running server would go on working on objects whose finalizers are gone.
pub async fn wait_server_stopped(
    cluster: &Cluster,
    namespace: &str,
    timeout: Duration,
) -> Result<(), InstallError> {
    use k8s_openapi::api::coordination::v1::Lease;
    let api: kube::Api<Lease> = kube::Api::namespaced(cluster.client().clone(), namespace);
    let start = tokio::time::Instant::now();
    let mut seen: Option<(String, tokio::time::Instant)> = None;
    loop {
        let lease = api
            .get_opt(crate::lease::LEASE_NAME)
            .await
            .map_err(|source| InstallError::Lease {
                namespace: namespace.to_owned(),
                source,
            })?;
        let Some(spec) = lease.and_then(|l| l.spec) else {
            return Ok(());
        };
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder.is_empty() {
            return Ok(());
        }
        let record = format!(
            "{holder}@{:?}@{:?}",
            spec.renew_time.as_ref().map(|t| &t.0),
            spec.lease_transitions
        );
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
        let since = match &seen {
            Some((r, at)) if *r == record => *at,
            _ => {
                let now = tokio::time::Instant::now();
                seen = Some((record, now));
                now
            }
        };
        if since.elapsed() > duration {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(InstallError::ServerRunning {
                holder,
                namespace: namespace.to_owned(),
                waited: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `install --wait`: waits until the server's Deployment `lifeboat` in `namespace` has an
/// available replica (as Velero's `install --wait`), for up to `timeout`.
pub async fn wait_available(
    cluster: &Cluster,
    namespace: &str,
    timeout: Duration,
) -> Result<(), InstallError> {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: kube::Api<Deployment> = kube::Api::namespaced(cluster.client().clone(), namespace);
    let start = tokio::time::Instant::now();
    loop {
        let d = api
            .get("lifeboat")
            .await
            .map_err(|source| InstallError::Deployment {
                namespace: namespace.to_owned(),
                source,
            })?;
        let st = d.status.unwrap_or_default();
        if st.available_replicas.unwrap_or(0) > 0 {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(InstallError::NotAvailable {
                namespace: namespace.to_owned(),
                waited: timeout.as_secs(),
                status: format!(
                    "{} replicas, {} updated, {} ready",
                    st.replicas.unwrap_or(0),
                    st.updated_replicas.unwrap_or(0),
                    st.ready_replicas.unwrap_or(0)
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(2).min(timeout)).await;
    }
}
