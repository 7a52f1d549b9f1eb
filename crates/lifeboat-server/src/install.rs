//! `lifeboat install` / `uninstall`: applies (server-side apply, field manager
//! `lifeboat`) or deletes the objects of [`lifeboat_types::manifests::install::manifests`].

use std::time::Duration;

use serde_json::Value;

use lifeboat_engine::cluster::{Cluster, ClusterError};
use lifeboat_types::manifests::install::collection;

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
    /// An object of a kind install does not know.
    #[error("install does not know where {0} objects live")]
    UnknownKind(String),
}

impl InstallError {
    /// Whether running it again later can help (the API server failed for a moment).
    pub fn is_retryable(&self) -> bool {
        match self {
            InstallError::Apply { source, .. } => source.is_retryable(),
            InstallError::NotEstablished(_) => true,
            InstallError::UnknownKind(_) => false,
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
/// after them. Returns `kind/name` of each object applied.
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
    Ok(done)
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
