//! The file-level backup and restore of pod volumes, as the backup and restore runs hand
//! them to the node agents: one PodVolumeBackup per chosen volume (by
//! `types::rules::fs_backup::choose`), waited for, recorded in the backup's
//! `<b>-podvolumebackups.json.gz`; one PodVolumeRestore per restored volume of a pod the
//! restore created, with the restore-wait init container in the pod
//! (`types::api::pod_volume::add_restore_wait`).
//!
//! The objects are made in the server's namespace (where the node agents watch). This
//! needs the server's ServiceAccount or a user who may create them there; a backup run
//! without [`PodVolumeSettings`] (the CLI on its own) copies no volume data and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::Api;
use kube::api::{ListParams, PostParams};
use lifeboat_types::api::pod_volume::{
    self as pv, PodRef, PodVolumeBackupResource, PodVolumeBackupSpec, PodVolumeRestoreResource,
    PodVolumeRestoreSpec, VolumePhase,
};
use lifeboat_types::rules::fs_backup::{self, Decision, Source};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::error::chain;
use crate::runlog::RunLog;

/// Where the node agents take their work, and how long a volume may take.
#[derive(Debug, Clone)]
pub struct PodVolumeSettings {
    /// The server's namespace (PodVolumeBackups and PodVolumeRestores are made there).
    pub namespace: String,
    /// The image of the restore-wait init container (the server's own). Without it, a
    /// restore restores no volume data and says so.
    pub image: Option<String>,
    /// How long the run waits for all its volumes (Velero's `--fs-backup-timeout`, 4h).
    pub timeout: Duration,
}

impl PodVolumeSettings {
    /// Velero's default time for the volumes of one backup.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4 * 3600);
}

/// The node agents of the lifeboat installed in namespace `ns` of `cluster`, for a
/// restore run outside that server (a DR failover, failback or drill from the CLI): the
/// agents' DaemonSet ([`NODE_AGENT_DAEMONSET`]) runs lifeboat's image, which then runs
/// the restore-wait container too. `None` when no node agent is installed there: the
/// restore then brings back no volume data and says so, as any restore without one.
///
/// [`NODE_AGENT_DAEMONSET`]: lifeboat_types::manifests::install::NODE_AGENT_DAEMONSET
pub async fn installed_agents(
    cluster: &Cluster,
    ns: &str,
    timeout: Duration,
) -> Result<Option<PodVolumeSettings>, crate::cluster::ClusterError> {
    let daemonsets = crate::cluster::v1_resource("apps", "daemonsets", "DaemonSet", true);
    let Some(raw) = cluster
        .get_raw(
            &daemonsets,
            Some(ns),
            lifeboat_types::manifests::install::NODE_AGENT_DAEMONSET,
        )
        .await?
    else {
        return Ok(None);
    };
    let ds: Value = serde_json::from_str(&raw).unwrap_or_default();
    // Another tool's DaemonSet of that name (Velero's is `node-agent` too) is not ours.
    if ds
        .pointer("/spec/template/metadata/labels/app.kubernetes.io~1name")
        .and_then(Value::as_str)
        != Some(lifeboat_types::manifests::install::NODE_AGENT_APP)
    {
        return Ok(None);
    }
    Ok(Some(PodVolumeSettings {
        namespace: ns.to_owned(),
        image: ds
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .filter(|i| !i.is_empty())
            .map(str::to_owned),
        timeout,
    }))
}

/// What the backup needs of a pod to choose its volumes.
#[derive(Debug, Clone)]
pub struct PodVolumes {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid.
    pub uid: String,
    /// The node it runs on (empty: not scheduled).
    pub node: String,
    /// `status.phase`.
    pub phase: String,
    /// The pod as `fs_backup::choose` reads it: annotations and volumes only.
    pub shape: Value,
}

/// How often a run looks at its objects while it waits.
const POLL: Duration = Duration::from_secs(2);

/// One volume to back up.
struct Chosen<'a> {
    pod: &'a PodVolumes,
    volume: String,
    claim: Option<String>,
}

/// Chooses the volumes of `pods`, makes their PodVolumeBackups, waits until every one
/// ended (or `settings.timeout`, or `stop`), and returns them as Velero stores them
/// (`velero.io/v1` objects) for `<b>-podvolumebackups.json.gz`. Problems are the run's
/// errors (a volume not copied) or warnings (a pod not running, an opt-in name the pod
/// does not have), each naming the pod and volume.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn back_up(
    cluster: &Cluster,
    settings: Option<&PodVolumeSettings>,
    backup: &str,
    backup_uid: Option<&str>,
    location: &str,
    default_volumes_to_fs_backup: bool,
    pods: &[PodVolumes],
    stop: &CancellationToken,
    log: &RunLog,
) -> Vec<Value> {
    let mut chosen = Vec::new();
    for pod in pods {
        let choices = fs_backup::choose(&pod.shape, default_volumes_to_fs_backup, |claim| {
            // Decided below with the claim read; a named claim is a candidate here.
            !claim.is_empty()
        });
        for c in choices {
            let what = format!("pod {}/{} volume {}", pod.namespace, pod.name, c.name);
            match c.decision {
                Decision::Backup => {}
                Decision::NoSuchVolume => {
                    log.warn(
                        Some(&pod.namespace),
                        format!(
                            "{what}: named in {} but the pod has no such volume",
                            fs_backup::BACKUP_VOLUMES
                        ),
                    );
                    continue;
                }
                _ => continue,
            }
            if pod.phase != "Running" || pod.node.is_empty() {
                log.warn(
                    Some(&pod.namespace),
                    format!(
                        "{what}: its files are not backed up: the pod is {} (only a running pod's volumes are on a node)",
                        if pod.phase.is_empty() { "not running" } else { &pod.phase }
                    ),
                );
                continue;
            }
            let claim = match &c.source {
                Source::Claim(claim) => Some(claim.clone()),
                _ => None,
            };
            chosen.push(Chosen {
                pod,
                volume: c.name,
                claim,
            });
        }
    }
    if chosen.is_empty() {
        return Vec::new();
    }
    let Some(settings) = settings else {
        log.warn(
            None,
            format!(
                "{} pod volume(s) chosen for file-system backup were not copied: volume data is copied by lifeboat's node agent — back up through the server (lifeboat install --use-node-agent), or copy them with `lifeboat volume backup` on the node (docs/volumes.md)",
                chosen.len()
            ),
        );
        return Vec::new();
    };
    let api: Api<PodVolumeBackupResource> =
        Api::namespaced(cluster.client().clone(), &settings.namespace);
    let mut made = BTreeSet::new();
    for c in &chosen {
        let pod = c.pod;
        let what = format!("pod {}/{} volume {}", pod.namespace, pod.name, c.volume);
        if let Some(claim) = &c.claim {
            match claim_bound(cluster, &pod.namespace, claim).await {
                Ok(true) => {}
                Ok(false) => {
                    log.warn(
                        Some(&pod.namespace),
                        format!("{what}: claim {claim} is not bound; it has no data to back up"),
                    );
                    continue;
                }
                Err(e) => {
                    log.error(
                        Some(&pod.namespace),
                        format!("{what}: cannot read claim {claim}: {e}"),
                    );
                    continue;
                }
            }
        }
        let name = pv::backup_object_name(backup, &pod.namespace, &pod.name, &c.volume);
        let mut tags = BTreeMap::from([
            ("backup".to_owned(), backup.to_owned()),
            ("ns".to_owned(), pod.namespace.clone()),
            ("pod".to_owned(), pod.name.clone()),
            ("pod-uid".to_owned(), pod.uid.clone()),
            ("volume".to_owned(), c.volume.clone()),
        ]);
        if let Some(uid) = backup_uid {
            tags.insert("backup-uid".into(), uid.to_owned());
        }
        if let Some(claim) = &c.claim {
            tags.insert("pvc".into(), claim.clone());
        }
        let mut obj = PodVolumeBackupResource::new(
            &name,
            PodVolumeBackupSpec {
                node: pod.node.clone(),
                pod: PodRef {
                    kind: "Pod".into(),
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    uid: pod.uid.clone(),
                },
                volume: c.volume.clone(),
                backup_storage_location: location.to_owned(),
                repo_identifier: format!("restic/{}", pod.namespace),
                uploader_type: pv::UPLOADER.into(),
                tags,
            },
        );
        obj.metadata.labels = Some(BTreeMap::from([
            (pv::BACKUP_NAME_LABEL.to_owned(), backup.to_owned()),
            (pv::NODE_LABEL.to_owned(), pod.node.clone()),
        ]));
        match create_once(&api, &obj).await {
            Ok(()) => {
                made.insert(name);
            }
            Err(e) => log.error(
                Some(&pod.namespace),
                format!(
                    "{what}: its PodVolumeBackup could not be made in namespace {}: {}",
                    settings.namespace,
                    chain(&e)
                ),
            ),
        }
    }
    log.info(
        &format!(
            "waiting for {} pod volume backup(s) by the node agents",
            made.len()
        ),
        &[],
    );
    let done = wait_all(
        &api,
        pv::BACKUP_NAME_LABEL,
        backup,
        &made,
        settings.timeout,
        stop,
        |o: &PodVolumeBackupResource| o.status.as_ref().is_some_and(|s| s.phase.is_done()),
    )
    .await;
    let mut stored = Vec::new();
    for name in &made {
        let Some(o) = done.get(name) else {
            log.error(
                None,
                format!("PodVolumeBackup {name} disappeared before it ended"),
            );
            continue;
        };
        let what = format!(
            "pod {}/{} volume {}",
            o.spec.pod.namespace, o.spec.pod.name, o.spec.volume
        );
        let status = o.status.clone().unwrap_or_default();
        match status.phase {
            VolumePhase::Completed => log.info(
                &format!(
                    "{what}: backed up as snapshot {} ({} bytes)",
                    status.snapshot_id, status.progress.total_bytes
                ),
                &[],
            ),
            VolumePhase::Failed => log.error(
                Some(&o.spec.pod.namespace),
                format!("{what}: its files were not backed up: {}", status.message),
            ),
            _ => log.error(
                Some(&o.spec.pod.namespace),
                format!(
                    "{what}: its files were not backed up within {}s (PodVolumeBackup {name} is {:?}; is the node agent running on node {}?)",
                    settings.timeout.as_secs(),
                    status.phase,
                    o.spec.node
                ),
            ),
        }
        let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
        v["apiVersion"] = Value::String(lifeboat_types::api::velero::API_VERSION.into());
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        stored.push(v);
    }
    stored
}

/// Creates `obj`. One found under its name is taken as made: the names are fixed per
/// backup (or restore) and volume, so it is this run's, from a try whose answer was lost.
async fn create_once<K>(api: &Api<K>, obj: &K) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether claim `namespace/name` exists and is bound.
async fn claim_bound(cluster: &Cluster, namespace: &str, name: &str) -> Result<bool, String> {
    let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(cluster.client().clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(c)) => Ok(c.status.and_then(|s| s.phase).as_deref() == Some("Bound")),
        Ok(None) => Ok(false),
        Err(e) => Err(chain(&e)),
    }
}

/// Lists the objects labelled `label=value` every [`POLL`] until each of `names` is
/// `done`, the time is up, or `stop`; returns the last seen of each.
async fn wait_all<K>(
    api: &Api<K>,
    label: &str,
    value: &str,
    names: &BTreeSet<String>,
    timeout: Duration,
    stop: &CancellationToken,
    done: impl Fn(&K) -> bool,
) -> BTreeMap<String, K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let params = ListParams::default().labels(&format!("{label}={value}"));
    let mut seen: BTreeMap<String, K> = BTreeMap::new();
    loop {
        match api.list(&params).await {
            Ok(list) => {
                for o in list.items {
                    let n = o.meta().name.clone().unwrap_or_default();
                    if names.contains(&n) {
                        seen.insert(n, o);
                    }
                }
            }
            Err(e) => tracing::warn!("listing {label}={value}: {}", chain(&e)),
        }
        if names.iter().all(|n| seen.get(n).is_some_and(&done)) {
            return seen;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return seen,
            _ = stop.cancelled() => return seen,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A volume of a backed-up pod whose files can be restored.
#[derive(Debug, Clone)]
pub struct StoredVolume {
    /// The volume's name in the pod.
    pub volume: String,
    /// The snapshot.
    pub snapshot_id: String,
    /// The claim the volume came from (the `pvc` tag), if any.
    pub claim: Option<String>,
}

/// The claims (namespace, name) whose volume's files are among `stored`.
pub fn claims_with_files(
    stored: &BTreeMap<(String, String), Vec<StoredVolume>>,
) -> BTreeSet<(String, String)> {
    stored
        .iter()
        .flat_map(|((ns, _), vols)| {
            vols.iter()
                .filter_map(|v| Some((ns.clone(), v.claim.clone()?)))
        })
        .collect()
}

/// The completed pod volume backups of a stored backup, by source namespace and pod name.
/// Entries that do not read as PodVolumeBackups (another tool's newer fields) are
/// skipped, each named in `skipped`.
pub fn stored_volumes(
    list: &[Value],
    skipped: &mut Vec<String>,
) -> BTreeMap<(String, String), Vec<StoredVolume>> {
    let mut out: BTreeMap<(String, String), Vec<StoredVolume>> = BTreeMap::new();
    for v in list {
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let Ok(o) = serde_json::from_value::<PodVolumeBackupResource>(v.clone()) else {
            skipped.push(name);
            continue;
        };
        let Some(s) = o.status.filter(|s| s.phase == VolumePhase::Completed) else {
            continue;
        };
        if s.snapshot_id.is_empty() {
            continue;
        }
        out.entry((o.spec.pod.namespace, o.spec.pod.name))
            .or_default()
            .push(StoredVolume {
                claim: o.spec.tags.get("pvc").cloned(),
                volume: o.spec.volume,
                snapshot_id: s.snapshot_id,
            });
    }
    out
}

/// One PodVolumeRestore to make for a pod a restore created.
#[derive(Debug, Clone)]
pub struct PendingRestore {
    /// Namespace of the backed-up pod (its repository).
    pub source_namespace: String,
    /// Namespace of the restored pod.
    pub namespace: String,
    /// The restored pod.
    pub pod: String,
    /// Its uid.
    pub uid: String,
    /// The volume and its snapshot.
    pub volume: StoredVolume,
}

/// Makes the PodVolumeRestores of `pending`, waits until every one ended, and records
/// each outcome in `log`.
pub(crate) async fn restore(
    cluster: &Cluster,
    settings: &PodVolumeSettings,
    restore: &str,
    location: &str,
    pending: &[PendingRestore],
    log: &RunLog,
) {
    if pending.is_empty() {
        return;
    }
    let api: Api<PodVolumeRestoreResource> =
        Api::namespaced(cluster.client().clone(), &settings.namespace);
    let mut made = BTreeSet::new();
    for p in pending {
        let name = pv::restore_object_name(restore, &p.namespace, &p.pod, &p.volume.volume);
        let mut obj = PodVolumeRestoreResource::new(
            &name,
            PodVolumeRestoreSpec {
                pod: PodRef {
                    kind: "Pod".into(),
                    namespace: p.namespace.clone(),
                    name: p.pod.clone(),
                    uid: p.uid.clone(),
                },
                volume: p.volume.volume.clone(),
                backup_storage_location: location.to_owned(),
                repo_identifier: format!("restic/{}", p.source_namespace),
                uploader_type: pv::UPLOADER.into(),
                snapshot_id: p.volume.snapshot_id.clone(),
                source_namespace: p.source_namespace.clone(),
            },
        );
        obj.metadata.labels = Some(BTreeMap::from([(
            pv::RESTORE_NAME_LABEL.to_owned(),
            restore.to_owned(),
        )]));
        match create_once(&api, &obj).await {
            Ok(()) => {
                made.insert(name);
            }
            Err(e) => log.error(
                Some(&p.namespace),
                format!(
                    "pod {}/{} volume {}: its PodVolumeRestore could not be made in namespace {}: {} (the pod waits in its restore-wait init container)",
                    p.namespace,
                    p.pod,
                    p.volume.volume,
                    settings.namespace,
                    chain(&e)
                ),
            ),
        }
    }
    log.info(
        &format!(
            "waiting for {} pod volume restore(s) by the node agents",
            made.len()
        ),
        &[],
    );
    let never = CancellationToken::new();
    let done = wait_all(
        &api,
        pv::RESTORE_NAME_LABEL,
        restore,
        &made,
        settings.timeout,
        &never,
        |o: &PodVolumeRestoreResource| o.status.as_ref().is_some_and(|s| s.phase.is_done()),
    )
    .await;
    for name in &made {
        let Some(o) = done.get(name) else {
            log.error(
                None,
                format!("PodVolumeRestore {name} disappeared before it ended"),
            );
            continue;
        };
        let what = format!(
            "pod {}/{} volume {}",
            o.spec.pod.namespace, o.spec.pod.name, o.spec.volume
        );
        let status = o.status.clone().unwrap_or_default();
        match status.phase {
            VolumePhase::Completed => log.info(
                &format!(
                    "{what}: restored from snapshot {} ({} bytes)",
                    o.spec.snapshot_id, status.progress.bytes_done
                ),
                &[],
            ),
            VolumePhase::Failed => log.error(
                Some(&o.spec.pod.namespace),
                format!("{what}: its files were not restored: {}", status.message),
            ),
            _ => log.error(
                Some(&o.spec.pod.namespace),
                format!(
                    "{what}: its files were not restored within {}s (PodVolumeRestore {name} is {:?}; is the node agent running on the pod's node?)",
                    settings.timeout.as_secs(),
                    status.phase
                ),
            ),
        }
    }
}
