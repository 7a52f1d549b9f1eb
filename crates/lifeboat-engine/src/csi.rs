//! CSI snapshots of the backed-up claims (the rules: `types::rules::csi`): a backup makes
//! a VolumeSnapshot of each claim whose volume is a CSI volume (and whose files are not
//! copied by the node agent), in the class Velero would choose, waits until it is ready
//! (`csiSnapshotTimeout`, 10 minutes by default), stores the snapshot and its content in
//! the tarball, and records it in `<b>-volumeinfo.json.gz` and
//! `<b>-itemoperations.json.gz`. A restore imports each one by its handle: a
//! pre-provisioned VolumeSnapshotContent, its VolumeSnapshot, and the claim with the
//! snapshot as its data source.
//!
//! The snapshot itself is taken by the cluster's snapshot controller and CSI driver; no
//! driver runs in lifeboat's test clusters, where the tests play both.

use std::collections::BTreeSet;
use std::time::Duration;

use lifeboat_types::rules::csi::{self, SnapshotRecord};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, split_list};
use crate::error::chain;
use crate::runlog::RunLog;
use lifeboat_types::plan::backup::ApiResource;

/// A backed-up claim bound to a volume.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The PersistentVolume it is bound to.
    pub volume: String,
}

/// Velero's default `csiSnapshotTimeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

fn served<'a>(served: &'a [ApiResource], plural: &str) -> Option<&'a ApiResource> {
    served
        .iter()
        .find(|r| r.group == csi::GROUP && r.version == "v1" && r.plural == plural)
}

fn core(plural: &str, kind: &str, namespaced: bool) -> ApiResource {
    crate::cluster::v1_resource("", plural, kind, namespaced)
}

/// A resource of the snapshot API (`snapshot.storage.k8s.io/v1`), to address objects a
/// restore made without discovering it.
pub(crate) fn snapshot_resource(plural: &str, kind: &str, namespaced: bool) -> ApiResource {
    crate::cluster::v1_resource(csi::GROUP, plural, kind, namespaced)
}

/// What the snapshots of a backup made.
#[derive(Default)]
pub(crate) struct Taken {
    /// One record per ready snapshot.
    pub records: Vec<SnapshotRecord>,
    /// The VolumeSnapshots and their contents as read (for the tarball), by resource:
    /// (namespace, name, JSON).
    pub snapshots: Vec<(Option<String>, String, String)>,
    /// Contents.
    pub contents: Vec<(Option<String>, String, String)>,
    /// The resources of those.
    pub resources: Option<(ApiResource, ApiResource)>,
}

/// Snapshots the CSI volumes of `claims` (except `skip`: claims whose files the node
/// agent copied). Problems are errors of the run naming the claim.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn snapshot_claims(
    cluster: &Cluster,
    served_resources: &[ApiResource],
    backup: &str,
    claims: &[Claim],
    skip: &BTreeSet<(String, String)>,
    timeout: Duration,
    stop: &CancellationToken,
    log: &RunLog,
) -> Taken {
    let mut taken = Taken::default();
    // Which claims have CSI volumes.
    let pvs = core("persistentvolumes", "PersistentVolume", false);
    let mut csi_claims: Vec<(&Claim, String)> = Vec::new();
    for c in claims {
        if skip.contains(&(c.namespace.clone(), c.name.clone())) {
            continue;
        }
        match cluster.get_raw(&pvs, None, &c.volume).await {
            Ok(Some(text)) => {
                let pv: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Some(d) = pv.pointer("/spec/csi/driver").and_then(Value::as_str) {
                    csi_claims.push((c, d.to_owned()));
                }
            }
            Ok(None) => {}
            Err(e) => log.error(
                Some(&c.namespace),
                format!(
                    "claim {}/{}: cannot read its volume {}: {}",
                    c.namespace,
                    c.name,
                    c.volume,
                    chain(&e)
                ),
            ),
        }
    }
    if csi_claims.is_empty() {
        return taken;
    }
    let (Some(vs_r), Some(vsc_r), Some(class_r)) = (
        served(served_resources, "volumesnapshots"),
        served(served_resources, "volumesnapshotcontents"),
        served(served_resources, "volumesnapshotclasses"),
    ) else {
        log.warn(
            None,
            format!(
                "{} CSI volume(s) not snapshotted: the cluster does not serve {}/v1 (install the CSI snapshot CRDs and controller)",
                csi_claims.len(),
                csi::GROUP
            ),
        );
        return taken;
    };
    taken.resources = Some((vs_r.clone(), vsc_r.clone()));
    let classes: Vec<Value> = match cluster.list_page(class_r, None, None, None, 500).await {
        Ok(page) => split_list(&page)
            .map(|(items, _)| {
                items
                    .iter()
                    .filter_map(|r| serde_json::from_str(r.get()).ok())
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            log.error(
                None,
                format!("cannot list VolumeSnapshotClasses: {}", chain(&e)),
            );
            return taken;
        }
    };
    let pvcs = core("persistentvolumeclaims", "PersistentVolumeClaim", true);
    // Made first, all of them, then waited for together.
    let mut made = Vec::new();
    for (c, driver) in csi_claims {
        let what = format!("claim {}/{}", c.namespace, c.name);
        let claim: Value = match cluster.get_raw(&pvcs, Some(&c.namespace), &c.name).await {
            Ok(Some(t)) => serde_json::from_str(&t).unwrap_or(Value::Null),
            Ok(None) => continue,
            Err(e) => {
                log.error(Some(&c.namespace), format!("{what}: {}", chain(&e)));
                continue;
            }
        };
        let class = match csi::choose_class(&driver, &claim, &classes) {
            Ok(class) => class,
            Err(e) => {
                log.error(Some(&c.namespace), format!("{what}: not snapshotted: {e}"));
                continue;
            }
        };
        let name = csi::snapshot_name(backup, &c.namespace, &c.name);
        let body = csi::volume_snapshot(&name, &c.namespace, &c.name, &class, backup);
        match cluster
            .create_raw(
                vs_r,
                Some(&c.namespace),
                serde_json::to_vec(&body).unwrap_or_default(),
            )
            .await
        {
            Ok(_) => made.push((c, driver, class, name)),
            Err(e) => log.error(
                Some(&c.namespace),
                format!(
                    "{what}: its VolumeSnapshot could not be made: {}",
                    chain(&e)
                ),
            ),
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (c, driver, class, name) in made {
        let what = format!("claim {}/{} (VolumeSnapshot {name})", c.namespace, c.name);
        let ready = loop {
            match cluster.get_raw(vs_r, Some(&c.namespace), &name).await {
                Ok(Some(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    if v.pointer("/status/readyToUse") == Some(&Value::Bool(true)) {
                        break Ok((v, t));
                    }
                    if let Some(m) = v.pointer("/status/error/message").and_then(Value::as_str) {
                        break Err(format!("the snapshot failed: {m}"));
                    }
                }
                Ok(None) => break Err("the VolumeSnapshot disappeared".into()),
                Err(e) => tracing::warn!("{what}: {}", chain(&e)),
            }
            if tokio::time::Instant::now() >= deadline || stop.is_cancelled() {
                break Err(format!(
                    "not ready within csiSnapshotTimeout ({}s): is the CSI snapshot controller running, and does driver {driver} take snapshots?",
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let (vs, vs_text) = match ready {
            Ok(r) => r,
            Err(e) => {
                log.error(Some(&c.namespace), format!("{what}: {e}"));
                continue;
            }
        };
        let content = vs
            .pointer("/status/boundVolumeSnapshotContentName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let vsc = match cluster.get_raw(vsc_r, None, &content).await {
            Ok(Some(t)) => t,
            other => {
                log.error(
                    Some(&c.namespace),
                    format!(
                        "{what}: its VolumeSnapshotContent {content:?} cannot be read: {}",
                        other
                            .err()
                            .map(|e| chain(&e))
                            .unwrap_or_else(|| "not found".into())
                    ),
                );
                continue;
            }
        };
        let vsc_v: Value = serde_json::from_str(&vsc).unwrap_or(Value::Null);
        let handle = vsc_v
            .pointer("/status/snapshotHandle")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if handle.is_empty() {
            log.error(
                Some(&c.namespace),
                format!("{what}: its content {content} has no snapshotHandle"),
            );
            continue;
        }
        let size = vsc_v
            .pointer("/status/restoreSize")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        log.info(
            &format!("{what}: snapshot {handle} ready ({size} bytes)"),
            &[],
        );
        taken.records.push(SnapshotRecord {
            namespace: c.namespace.clone(),
            claim: c.name.clone(),
            volume: c.volume.clone(),
            snapshot: name.clone(),
            class,
            driver,
            handle,
            size,
            content: content.clone(),
        });
        taken
            .snapshots
            .push((Some(c.namespace.clone()), name, vs_text));
        taken.contents.push((None, content, vsc));
    }
    taken
}
