//! The server's lifeboat.dev objects, as the CLI's in-cluster verbs use them: Schedule
//! CRUD (`schedule create|get|describe|pause|unpause|delete`), creating the objects
//! `apply --server` hands to the server, and what `uninstall` needs before the CRDs go
//! (finalizers released, CRDs waited gone). `cluster.rs` speaks raw JSON for any
//! resource; this module speaks kube's typed API for the types of
//! `lifeboat_types::api::crd`. The binary only formats and prints.

use std::time::Duration;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::core::NamespaceResourceScope;
use kube::{Api, Resource, ResourceExt};
use lifeboat_types::api::crd::{BackupResource, ScheduleResource};
use lifeboat_types::api::velero::{ObjectMeta, ScheduleSpec, Time};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::cluster::{ApiErrorKind, Cluster};

/// Errors about lifeboat.dev objects. Each names the object (or the missing resource type).
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The cluster does not serve the resource type: lifeboat is not installed.
    #[error("the cluster has no lifeboat.dev {kind} resource: lifeboat is not installed")]
    NotInstalled {
        /// The kind (`Schedule`).
        kind: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The named object does not exist.
    #[error("{what} {name:?} not found in namespace {namespace}")]
    NotFound {
        /// How the object is called (`schedule`).
        what: String,
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// An object of that name exists already.
    #[error("{what} {name:?} already exists in namespace {namespace}")]
    AlreadyExists {
        /// How the object is called (`schedule`, `Backup`).
        what: String,
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// The API server refused the object (422): its message says which field.
    #[error("{kind} {name:?} was refused by the API server: {message}")]
    Invalid {
        /// The kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// Any other answer of the API server.
    #[error(transparent)]
    Api(#[from] kube::Error),
}

impl ObjectError {
    /// Whether trying again later can help (the API server failed for a moment).
    pub fn is_retryable(&self) -> bool {
        match self {
            ObjectError::Api(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// The error of a request that names no object (a LIST).
fn of_list(kind: &str, e: kube::Error) -> ObjectError {
    if e.is_unserved() {
        ObjectError::NotInstalled {
            kind: kind.to_owned(),
            source: e,
        }
    } else {
        ObjectError::Api(e)
    }
}

/// The error of a request about object `name`: a 404 names the object.
fn of_named(kind: &str, what: &str, ns: &str, name: &str, e: kube::Error) -> ObjectError {
    if e.is_not_found() && !e.is_unserved() {
        ObjectError::NotFound {
            what: what.to_owned(),
            name: name.to_owned(),
            namespace: ns.to_owned(),
        }
    } else {
        of_list(kind, e)
    }
}

/// The schedules of a namespace, by Schedule CRUD.
pub struct Schedules {
    api: Api<ScheduleResource>,
    namespace: String,
}

const SCHEDULE: &str = "Schedule";
const SCHEDULE_WHAT: &str = "schedule";

impl Schedules {
    /// The schedules in namespace `ns`.
    pub fn new(cluster: &Cluster, ns: &str) -> Schedules {
        Schedules {
            api: Api::namespaced(cluster.client().clone(), ns),
            namespace: ns.to_owned(),
        }
    }

    fn named(&self, name: &str, e: kube::Error) -> ObjectError {
        of_named(SCHEDULE, SCHEDULE_WHAT, &self.namespace, name, e)
    }

    /// Creates schedule `name`.
    pub async fn create(
        &self,
        name: &str,
        spec: ScheduleSpec,
    ) -> Result<ScheduleResource, ObjectError> {
        let mut s = ScheduleResource::new(name, spec);
        s.metadata.namespace = Some(self.namespace.clone());
        self.api
            .create(&PostParams::default(), &s)
            .await
            .map_err(|e| {
                if e.is_already_exists() {
                    ObjectError::AlreadyExists {
                        what: SCHEDULE_WHAT.into(),
                        name: name.to_owned(),
                        namespace: self.namespace.clone(),
                    }
                } else {
                    of_list(SCHEDULE, e)
                }
            })
    }

    /// Every schedule of the namespace.
    pub async fn list(&self) -> Result<Vec<ScheduleResource>, ObjectError> {
        Ok(self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|e| of_list(SCHEDULE, e))?
            .items)
    }

    /// One schedule.
    pub async fn get(&self, name: &str) -> Result<ScheduleResource, ObjectError> {
        self.api.get(name).await.map_err(|e| self.named(name, e))
    }

    /// The named schedules, or every one when `names` is empty.
    pub async fn get_or_list(
        &self,
        names: &[String],
    ) -> Result<Vec<ScheduleResource>, ObjectError> {
        if names.is_empty() {
            return self.list().await;
        }
        let mut v = Vec::new();
        for n in names {
            v.push(self.get(n).await?);
        }
        Ok(v)
    }

    /// `names`, or the names of every schedule with `all`.
    pub async fn names_or_all(
        &self,
        names: &[String],
        all: bool,
    ) -> Result<Vec<String>, ObjectError> {
        if all {
            Ok(self.list().await?.iter().map(|s| s.name_any()).collect())
        } else {
            Ok(names.to_vec())
        }
    }

    /// Pauses or unpauses a schedule. Unpausing one that skips immediately records the
    /// time as skipped, so that the server does not back up at once.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<(), ObjectError> {
        let s = self
            .api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"paused": paused}})),
            )
            .await
            .map_err(|e| self.named(name, e))?;
        if !paused && s.spec.skip_immediately == Some(true) {
            self.api
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"lastSkipped": Time::now()}})),
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes a schedule; its backups stay. Backups a schedule owns
    /// (useOwnerReferencesInBackup) are orphaned, not garbage-collected with it: their
    /// finalizer would delete their data.
    ///
    /// The backups are released here first (their reference to this schedule removed),
    /// not left to the garbage collector's orphaning: a collector that does not yet watch
    /// the Backup kind (it discovers new CRDs every 30 s) lets the schedule go without
    /// orphaning them, then deletes them as dependents of a missing owner.
    pub async fn delete(&self, name: &str) -> Result<(), ObjectError> {
        let uid = match self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.named(name, e))?
        {
            Some(s) => s.uid(),
            None => None,
        };
        if let Some(uid) = uid {
            let backups: Api<BackupResource> =
                Api::namespaced(self.api.clone().into_client(), &self.namespace);
            let selector = format!("{}={name}", lifeboat_types::rules::schedule::SCHEDULE_LABEL);
            let owned = backups
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| self.named(name, e))?;
            for b in owned.items {
                let refs = b.metadata.owner_references.clone().unwrap_or_default();
                if !refs.iter().any(|r| r.uid == uid) {
                    continue;
                }
                let kept: Vec<_> = refs.into_iter().filter(|r| r.uid != uid).collect();
                // Guarded by the resourceVersion: a concurrent change is retried by a
                // second `schedule delete`, never overwritten.
                let patch = json!({"metadata": {
                    "ownerReferences": kept,
                    "resourceVersion": b.metadata.resource_version,
                }});
                backups
                    .patch(
                        &b.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(|e| self.named(name, e))?;
            }
        }
        let orphan = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        };
        self.api
            .delete(name, &orphan)
            .await
            .map_err(|e| self.named(name, e))?;
        Ok(())
    }
}

/// Whether the cluster serves lifeboat's Backup resource (lifeboat is installed): the
/// CLI's question before it follows the kube context (`types::rules::cli_mode`). One
/// discovery GET, tried again as every request is.
pub async fn lifeboat_installed(cluster: &Cluster) -> Result<bool, crate::cluster::ClusterError> {
    let path = format!("/apis/{}", lifeboat_types::api::crd::API_VERSION);
    let Some(text) = cluster.get_path_opt(&path, "discovery").await? else {
        return Ok(false);
    };
    let list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList =
        serde_json::from_str(&text).map_err(|source| crate::cluster::ClusterError::Decode {
            what: path.clone(),
            source,
        })?;
    Ok(list.resources.iter().any(|r| r.name == "backups"))
}

/// One lifeboat.dev object of namespace `ns` (a Backup or Restore `wait` follows, a
/// VolumeSnapshotLocation); `what` names it in a not-found error (`backup`).
pub async fn get<K>(cluster: &Cluster, ns: &str, what: &str, name: &str) -> Result<K, ObjectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client().clone(), ns);
    api.get(name)
        .await
        .map_err(|e| of_named(&K::kind(&()), what, ns, name, e))
}

/// The named lifeboat.dev objects of namespace `ns`, or every one when `names` is empty.
pub async fn get_or_list<K>(
    cluster: &Cluster,
    ns: &str,
    what: &str,
    names: &[String],
) -> Result<Vec<K>, ObjectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    if names.is_empty() {
        let api: Api<K> = Api::namespaced(cluster.client().clone(), ns);
        return Ok(api
            .list(&ListParams::default())
            .await
            .map_err(|e| of_list(&K::kind(&()), e))?
            .items);
    }
    let mut v = Vec::new();
    for n in names {
        v.push(get(cluster, ns, what, n).await?);
    }
    Ok(v)
}

/// Deletes the lifeboat.dev object `name` of namespace `ns` (a Restore's record; its
/// server does the rest); `what` names it in a not-found error.
pub async fn delete<K>(
    cluster: &Cluster,
    ns: &str,
    what: &str,
    name: &str,
) -> Result<(), ObjectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client().clone(), ns);
    api.delete(name, &DeleteParams::default())
        .await
        .map_err(|e| of_named(&K::kind(&()), what, ns, name, e))?;
    Ok(())
}

/// Merges `patch` into the lifeboat.dev object `name` of namespace `ns` (`backup-location
/// set`); `what` names it in a not-found error.
pub async fn merge_patch<K>(
    cluster: &Cluster,
    ns: &str,
    what: &str,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), ObjectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client().clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| of_named(&K::kind(&()), what, ns, name, e))?;
    Ok(())
}

/// Creates a lifeboat.dev object in namespace `ns` with the name, labels and annotations
/// of `meta` (what `apply --server` does with a velero.io/v1 document).
pub async fn create<K>(
    cluster: &Cluster,
    ns: &str,
    mut obj: K,
    meta: &ObjectMeta,
) -> Result<(), ObjectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    obj.meta_mut().namespace = Some(ns.to_string());
    obj.meta_mut().labels = (!meta.labels.is_empty()).then(|| meta.labels.clone());
    obj.meta_mut().annotations = (!meta.annotations.is_empty()).then(|| meta.annotations.clone());
    let api: Api<K> = Api::namespaced(cluster.client().clone(), ns);
    api.create(&PostParams::default(), &obj)
        .await
        .map_err(|e| {
            if e.is_already_exists() {
                ObjectError::AlreadyExists {
                    what: kind,
                    name: meta.name.clone(),
                    namespace: ns.to_owned(),
                }
            } else if e.is_not_found() {
                ObjectError::NotInstalled { kind, source: e }
            } else if let Some(message) = e.invalid_message() {
                ObjectError::Invalid {
                    kind,
                    name: meta.name.clone(),
                    message: message.to_owned(),
                }
            } else {
                ObjectError::Api(e)
            }
        })?;
    Ok(())
}

/// Drops the server's finalizers from every Backup in the cluster, so that deleting the
/// CRDs does not wait for a server that is gone (stored data stays). Best effort: a
/// cluster without the Backup type has nothing to release.
pub async fn release_backup_finalizers(cluster: &Cluster) {
    let client = cluster.client().clone();
    let all: Api<BackupResource> = Api::all(client.clone());
    let Ok(list) = all.list(&ListParams::default()).await else {
        return;
    };
    for b in list.items {
        let ns = b.namespace().unwrap_or_default();
        let api: Api<BackupResource> = Api::namespaced(client.clone(), &ns);
        let _ = api
            .patch(
                &b.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
}

/// Waits (up to a minute) until none of lifeboat's CRDs is served any more: a CRD goes
/// once the API server has removed its objects, and a new install must not meet a
/// terminating one. Returns the names of those still there after the minute.
pub async fn wait_crds_gone(cluster: &Cluster) -> Vec<String> {
    let crds: Vec<String> = lifeboat_types::api::crd::all()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let mut left = Vec::new();
    for _ in 0..120 {
        left.clear();
        for n in &crds {
            let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}");
            if cluster
                .get_path(&path, "customresourcedefinitions")
                .await
                .is_ok()
            {
                left.push(n.clone());
            }
        }
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    left
}

/// Merge-patches the status subresource of `name`: every controller's status writes (the
/// server's and the node agent's). A write that fails for a moment (an API server
/// restart, a timeout) is tried again (`Backoff::STATUS_WRITE`): a lost terminal status
/// would leave a backup looking orphaned, or a volume's work looking unfinished.
pub async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    use backon::Retryable;
    let patch = Patch::Merge(json!({ "status": status }));
    let params = PatchParams::default();
    let write = || api.patch_status(name, &params, &patch);
    write
        .retry(lifeboat_types::rules::backoff::Backoff::STATUS_WRITE.builder())
        .sleep(tokio::time::sleep)
        .when(kube::Error::is_transient)
        .notify(|e, _| {
            tracing::warn!(object = %name, "status write failed, retrying: {}", crate::error::chain(e));
        })
        .await?;
    Ok(())
}
