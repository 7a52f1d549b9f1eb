//! PodVolumeBackup and PodVolumeRestore: one pod volume's file-level backup or restore,
//! the work the server hands to the node agent of the pod's node. Field names are
//! Velero's (`velero.io/v1` PodVolumeBackup/PodVolumeRestore), so that the stored
//! `<backup>-podvolumebackups.json.gz` reads as Velero's and a user of `velero` finds
//! the fields where they expect them. The objects live in the server's namespace.
//!
//! Velero's PodVolumeRestore names no node: the node agent whose node runs the restored
//! pod takes it. lifeboat does the same, and labels PodVolumeBackups with
//! [`NODE_LABEL`] so that an agent watches only its own node's work (API servers of this
//! age have no field selectors on custom resources).

// kube's printcolumn(...) attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::velero::Time;

/// The label naming the node whose agent runs a PodVolumeBackup.
pub const NODE_LABEL: &str = "lifeboat.dev/node";
/// The label naming the backup of a PodVolumeBackup (Velero's).
pub const BACKUP_NAME_LABEL: &str = "velero.io/backup-name";
/// The label naming the restore of a PodVolumeRestore (Velero's).
pub const RESTORE_NAME_LABEL: &str = "velero.io/restore-name";
/// The uploader lifeboat records: restic's repository format.
pub const UPLOADER: &str = "restic";
/// The init container a restore puts first in a pod whose volumes it restores.
pub const RESTORE_WAIT_CONTAINER: &str = "restore-wait";
/// Where the restore-wait container mounts volume `<name>`: `/restores/<name>`.
pub const RESTORE_MOUNT_ROOT: &str = "/restores";
/// The directory in a restored volume that holds the node agent's markers.
pub const MARKER_DIR: &str = ".lifeboat";

/// A reference to the pod of a volume (Kubernetes' ObjectReference, the fields used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    /// Always `Pod`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid: a pod of the same name made again is another pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// Bytes of a running copy (Velero's DataMoveOperationProgress).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Bytes to copy.
    #[serde(default)]
    pub total_bytes: u64,
    /// Bytes copied.
    #[serde(default)]
    pub bytes_done: u64,
}

/// The phase of a PodVolumeBackup or PodVolumeRestore (Velero's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VolumePhase {
    /// Made, not yet taken by a node agent.
    #[default]
    New,
    /// A node agent is copying.
    InProgress,
    /// Copied.
    Completed,
    /// Not copied; `message` says why.
    Failed,
}

impl VolumePhase {
    /// Whether the work is over.
    pub fn is_done(self) -> bool {
        matches!(self, VolumePhase::Completed | VolumePhase::Failed)
    }
}

/// `spec` of a PodVolumeBackup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "PodVolumeBackup",
    root = "PodVolumeBackupResource",
    namespaced,
    status = "PodVolumeBackupStatus",
    category = "lifeboat",
    doc = "One pod volume's files backed up by the node agent of its node (as velero.io/v1's).",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".spec.pod.namespace"
    ),
    printcolumn(name = "Pod", type_ = "string", json_path = ".spec.pod.name"),
    printcolumn(name = "Volume", type_ = "string", json_path = ".spec.volume"),
    printcolumn(name = "Node", type_ = "string", json_path = ".spec.node")
)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupSpec {
    /// The node whose agent copies the volume.
    pub node: String,
    /// The pod.
    pub pod: PodRef,
    /// The volume's name in the pod.
    pub volume: String,
    /// The storage location of the repository.
    pub backup_storage_location: String,
    /// The repository: `restic/<namespace>` under the location's prefix.
    pub repo_identifier: String,
    /// Always `restic` (the repository format).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uploader_type: String,
    /// Tags of the snapshot (Velero's: backup, backup-uid, ns, pod, pod-uid, volume).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `status` of a PodVolumeBackup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupStatus {
    /// Where the work is.
    #[serde(default)]
    pub phase: VolumePhase,
    /// The volume's directory on the node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The snapshot made.
    #[serde(
        rename = "snapshotID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub snapshot_id: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the agent took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    /// Bytes.
    #[serde(default)]
    pub progress: Progress,
}

/// `spec` of a PodVolumeRestore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "PodVolumeRestore",
    root = "PodVolumeRestoreResource",
    namespaced,
    status = "PodVolumeRestoreStatus",
    category = "lifeboat",
    doc = "One pod volume's files restored by the node agent of the pod's node (as velero.io/v1's).",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".spec.pod.namespace"
    ),
    printcolumn(name = "Pod", type_ = "string", json_path = ".spec.pod.name"),
    printcolumn(name = "Volume", type_ = "string", json_path = ".spec.volume")
)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestoreSpec {
    /// The restored pod (its uid as created by the restore).
    pub pod: PodRef,
    /// The volume's name in the pod.
    pub volume: String,
    /// The storage location of the repository.
    pub backup_storage_location: String,
    /// The repository: `restic/<source namespace>`.
    pub repo_identifier: String,
    /// Always `restic`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uploader_type: String,
    /// The snapshot to restore.
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    /// The namespace the pod was backed up from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_namespace: String,
}

/// `status` of a PodVolumeRestore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestoreStatus {
    /// Where the work is.
    #[serde(default)]
    pub phase: VolumePhase,
    /// Why it failed, or which files could not be restored.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the agent took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    /// Bytes.
    #[serde(default)]
    pub progress: Progress,
}

/// The path a volume's snapshot records, the same for every backup of the same volume so
/// that the previous snapshot is the parent (unchanged files are not read again): a
/// claim's volume by its claim, any other volume by its pod (a pod made again under the
/// same name, as a StatefulSet's, keeps its volumes' history).
pub fn snapshot_path(namespace: &str, pod: &str, volume: &str, claim: Option<&str>) -> String {
    match claim {
        Some(c) => format!("/{namespace}/pvc/{c}"),
        None => format!("/{namespace}/pod/{pod}/{volume}"),
    }
}

/// The marker the node agent writes into a restored volume once its files are all there
/// (`done`), or with the reason when they could not be (`failed`); the restore-wait
/// container waits for one of them. Relative to the volume's root.
pub fn marker(restore_uid: &str, failed: bool) -> String {
    if failed {
        format!("{MARKER_DIR}/{restore_uid}.failed")
    } else {
        format!("{MARKER_DIR}/{restore_uid}")
    }
}

/// The name of the PodVolumeBackup of `volume` of pod `namespace/pod` in `backup`: fixed,
/// so that a create sent twice finds the first; short enough for a label value's 63
/// characters when the backup's name is.
pub fn backup_object_name(backup: &str, namespace: &str, pod: &str, volume: &str) -> String {
    format!(
        "{backup}-{}",
        crate::api::names::short_hash(&[namespace, pod, volume])
    )
}

/// The name of the PodVolumeRestore of `volume` of the restored pod `namespace/pod`.
pub fn restore_object_name(restore: &str, namespace: &str, pod: &str, volume: &str) -> String {
    format!(
        "{restore}-{}",
        crate::api::names::short_hash(&[namespace, pod, volume])
    )
}

/// Puts the restore-wait init container first in `pod` (a pod object about to be
/// created): it mounts each of `volumes` at `/restores/<name>` and runs
/// `lifeboat restore-wait --restore NAME DIR...` (the image's entrypoint is lifeboat), which returns once the node agent has
/// written each volume's files (its marker is there) and fails on a failed one, so that
/// the application starts on full data or not at all. A restore-wait container already
/// in the pod (a pod restored from a restored pod) is replaced. Volumes the pod does not
/// have are left out; the ones mounted are returned.
pub fn add_restore_wait(
    pod: &mut serde_json::Value,
    volumes: &[String],
    image: &str,
    restore: &str,
) -> Vec<String> {
    use serde_json::{Value, json};
    let present: Vec<String> = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .filter(|n| volumes.iter().any(|w| w == n))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if present.is_empty() {
        return present;
    }
    let mut args = vec![
        "restore-wait".to_owned(),
        "--restore".to_owned(),
        restore.to_owned(),
    ];
    args.extend(present.iter().map(|v| format!("{RESTORE_MOUNT_ROOT}/{v}")));
    let container = json!({
        "name": RESTORE_WAIT_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        // The image's entrypoint is lifeboat.
        "args": args,
        "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "memory": "64Mi" } },
        "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true },
        "volumeMounts": present
            .iter()
            .map(|v| json!({ "name": v, "mountPath": format!("{RESTORE_MOUNT_ROOT}/{v}") }))
            .collect::<Vec<_>>(),
    });
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let inits = spec
        .entry("initContainers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !inits.is_array() {
        *inits = Value::Array(Vec::new());
    }
    if let Some(list) = inits.as_array_mut() {
        list.retain(|c| c.get("name").and_then(Value::as_str) != Some(RESTORE_WAIT_CONTAINER));
        list.insert(0, container);
    }
    present
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn restore_wait_goes_first_and_mounts_the_restored_volumes() {
        let mut pod = serde_json::json!({
            "metadata": {"name": "db"},
            "spec": {
                "initContainers": [{"name": "setup"}, {"name": "restore-wait", "image": "old"}],
                "containers": [{"name": "pg"}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]
            }
        });
        let mounted = add_restore_wait(
            &mut pod,
            &["data".into(), "gone".into()],
            "lifeboat:1",
            "r1",
        );
        assert_eq!(mounted, ["data"]);
        let inits = pod["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(
            inits.len(),
            2,
            "the old restore-wait is replaced: {inits:?}"
        );
        assert_eq!(inits[0]["name"], "restore-wait");
        assert_eq!(inits[0]["image"], "lifeboat:1");
        assert_eq!(
            inits[0]["args"],
            serde_json::json!(["restore-wait", "--restore", "r1", "/restores/data"])
        );
        assert_eq!(inits[0]["volumeMounts"][0]["mountPath"], "/restores/data");
        assert_eq!(inits[1]["name"], "setup");

        let mut plain = serde_json::json!({"spec": {"containers": [], "volumes": [{"name": "data", "emptyDir": {}}]}});
        assert!(add_restore_wait(&mut plain, &["other".into()], "i", "r").is_empty());
        assert!(
            plain["spec"].get("initContainers").is_none(),
            "nothing to wait for, nothing added"
        );
        add_restore_wait(&mut plain, &["data".into()], "i", "r");
        assert_eq!(plain["spec"]["initContainers"][0]["name"], "restore-wait");
    }

    #[rstest]
    #[case("shop", "db-0", "data", None, "/shop/pod/db-0/data")]
    #[case("shop", "db-0", "data", Some("data-db-0"), "/shop/pvc/data-db-0")]
    fn snapshot_paths(
        #[case] ns: &str,
        #[case] pod: &str,
        #[case] vol: &str,
        #[case] claim: Option<&str>,
        #[case] want: &str,
    ) {
        assert_eq!(snapshot_path(ns, pod, vol, claim), want);
    }

    #[test]
    fn object_names_are_fixed_and_tell_volumes_apart() {
        let a = backup_object_name("b1", "shop", "db", "data");
        assert_eq!(a, backup_object_name("b1", "shop", "db", "data"));
        assert_ne!(a, backup_object_name("b1", "shop", "db", "logs"));
        // The separator counts: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            backup_object_name("b1", "ab", "c", "v"),
            backup_object_name("b1", "a", "bc", "v")
        );
        assert!(a.starts_with("b1-") && a.len() == 11, "{a}");
        assert_eq!(
            restore_object_name("r1", "shop", "db", "data")[3..],
            a[3..],
            "the same volume hashes the same"
        );
    }

    #[test]
    fn markers_are_in_the_marker_directory() {
        assert_eq!(marker("u1", false), ".lifeboat/u1");
        assert_eq!(marker("u1", true), ".lifeboat/u1.failed");
    }

    #[test]
    fn a_velero_pod_volume_backup_reads() {
        // As Velero 1.x stores it in <backup>-podvolumebackups.json.gz (fields trimmed).
        let v = serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "PodVolumeBackup",
            "metadata": {"name": "b1-x7k2p", "namespace": "velero"},
            "spec": {
                "node": "n1", "pod": {"kind": "Pod", "namespace": "shop", "name": "db", "uid": "u"},
                "volume": "data", "backupStorageLocation": "default",
                "repoIdentifier": "s3:http://minio/velero/restic/shop", "uploaderType": "restic",
                "tags": {"backup": "b1", "volume": "data"}
            },
            "status": {"phase": "Completed", "path": "/host_pods/u/volumes/kubernetes.io~empty-dir/data",
                       "snapshotID": "abc", "progress": {"totalBytes": 10, "bytesDone": 10}}
        });
        let p: PodVolumeBackupResource = serde_json::from_value(v).unwrap();
        assert_eq!(p.spec.pod.name, "db");
        let s = p.status.unwrap();
        assert_eq!(s.phase, VolumePhase::Completed);
        assert_eq!(s.snapshot_id, "abc");
        assert_eq!(s.progress.bytes_done, 10);
    }
}
