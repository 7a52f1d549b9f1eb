//! Which of a pod's volumes have their files backed up (file-system backup, Velero's
//! "fs-backup"), and where a volume's files are on its node.
//!
//! Velero's rules (`pkg/util/podvolume/pod_volume.go`): without `defaultVolumesToFsBackup`
//! only the volumes a pod names in `backup.velero.io/backup-volumes` (opt-in); with it every
//! volume except those named in `backup.velero.io/backup-volumes-excludes` (opt-out).
//! Volumes whose content is cluster state — Secret, ConfigMap, projected, downward API,
//! service-account tokens — are never copied, in either mode: the objects themselves are
//! in the backup. Unlike Velero, hostPath volumes are backed up when chosen (the node agent
//! mounts the node's root read-only), and a claim that is not bound is reported, not tried:
//! it has no data yet.

use serde_json::Value;

/// The pod annotation naming the volumes to back up (opt-in), comma-separated.
pub const BACKUP_VOLUMES: &str = "backup.velero.io/backup-volumes";
/// The pod annotation naming the volumes not to back up (opt-out), comma-separated.
pub const BACKUP_VOLUMES_EXCLUDES: &str = "backup.velero.io/backup-volumes-excludes";

/// Where a volume's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An emptyDir: the node's `<kubelet>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>`.
    EmptyDir,
    /// A directory of the node.
    HostPath(String),
    /// A claim: its volume holds the data.
    Claim(String),
    /// Cluster state (Secret, ConfigMap, projected, downward API): never copied.
    ClusterState,
    /// Another volume type (its plugin's name), backed up when chosen.
    Other(String),
}

/// What happens to one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its files are backed up.
    Backup,
    /// Opt-in mode and the pod does not name it.
    NotChosen,
    /// Named in the opt-out annotation.
    OptedOut,
    /// Its content is cluster state, in the backup as objects.
    ClusterState,
    /// Its claim is not bound (no data yet) or not in the backup.
    ClaimNotReady,
    /// Named in the opt-in annotation but the pod has no such volume.
    NoSuchVolume,
}

/// One volume of a pod and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeChoice {
    /// The volume's name in the pod.
    pub name: String,
    /// Its source.
    pub source: Source,
    /// The decision.
    pub decision: Decision,
}

/// The source of a pod volume (an item of `spec.volumes`).
pub fn source(volume: &Value) -> Source {
    if volume.get("emptyDir").is_some() {
        return Source::EmptyDir;
    }
    if let Some(p) = volume.pointer("/hostPath/path").and_then(Value::as_str) {
        return Source::HostPath(p.to_owned());
    }
    if let Some(c) = volume
        .pointer("/persistentVolumeClaim/claimName")
        .and_then(Value::as_str)
    {
        return Source::Claim(c.to_owned());
    }
    for state in ["secret", "configMap", "projected", "downwardAPI"] {
        if volume.get(state).is_some() {
            return Source::ClusterState;
        }
    }
    let plugin = volume
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        .unwrap_or_default();
    Source::Other(plugin)
}

fn listed(pod: &Value, annotation: &str) -> Vec<String> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(annotation))
        .and_then(Value::as_str)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What happens to each of `pod`'s volumes, in the pod's order (then names the opt-in
/// annotation lists that the pod does not have). `claim_bound` says whether the pod's
/// namespace has the named claim, bound to a volume.
pub fn choose(
    pod: &Value,
    default_volumes_to_fs_backup: bool,
    claim_bound: impl Fn(&str) -> bool,
) -> Vec<VolumeChoice> {
    let opt_in = listed(pod, BACKUP_VOLUMES);
    let opt_out = listed(pod, BACKUP_VOLUMES_EXCLUDES);
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out: Vec<VolumeChoice> = volumes
        .iter()
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?.to_owned();
            let source = source(v);
            let token = name.starts_with("default-token-");
            let decision = if source == Source::ClusterState || token {
                Decision::ClusterState
            } else if default_volumes_to_fs_backup && opt_out.contains(&name) {
                Decision::OptedOut
            } else if !default_volumes_to_fs_backup && !opt_in.contains(&name) {
                Decision::NotChosen
            } else if matches!(&source, Source::Claim(c) if !claim_bound(c)) {
                Decision::ClaimNotReady
            } else {
                Decision::Backup
            };
            Some(VolumeChoice {
                name,
                source,
                decision,
            })
        })
        .collect();
    if !default_volumes_to_fs_backup {
        for name in opt_in {
            if !out.iter().any(|c| c.name == name) {
                out.push(VolumeChoice {
                    name,
                    source: Source::Other(String::new()),
                    decision: Decision::NoSuchVolume,
                });
            }
        }
    }
    out
}

/// Where a chosen volume's files are on its node, from the kubelet's root directory
/// (`/var/lib/kubelet`): emptyDirs and most plugins under the pod's volumes directory,
/// a claim's volume by its PersistentVolume (`pv`: a hostPath volume is its path on the
/// node; a local volume is bind-mounted at `.../kubernetes.io~local-volume/<pv>`, CSI
/// volumes at `.../kubernetes.io~csi/<pv>/mount`).
/// `None` when the data is not on the node in a form the node agent can read.
pub fn node_path(
    kubelet_root: &str,
    pod_uid: &str,
    choice: &VolumeChoice,
    pv: Option<&Value>,
) -> Option<String> {
    let pod_dir = format!(
        "{}/pods/{pod_uid}/volumes",
        kubelet_root.trim_end_matches('/')
    );
    match &choice.source {
        Source::EmptyDir => Some(format!("{pod_dir}/kubernetes.io~empty-dir/{}", choice.name)),
        Source::HostPath(p) => Some(p.clone()),
        Source::Claim(_) => {
            let pv = pv?;
            let pv_name = pv.pointer("/metadata/name")?.as_str()?;
            if let Some(p) = pv.pointer("/spec/hostPath/path").and_then(Value::as_str) {
                Some(p.to_owned())
            } else if pv.pointer("/spec/local/path").is_some() {
                // The kubelet bind-mounts a local volume into the pod's directory.
                Some(format!("{pod_dir}/kubernetes.io~local-volume/{pv_name}"))
            } else if pv.pointer("/spec/csi").is_some() {
                Some(format!("{pod_dir}/kubernetes.io~csi/{pv_name}/mount"))
            } else {
                let plugin = pv
                    .get("spec")?
                    .as_object()?
                    .keys()
                    .find(|k| {
                        !matches!(
                            k.as_str(),
                            "accessModes"
                                | "capacity"
                                | "claimRef"
                                | "persistentVolumeReclaimPolicy"
                                | "storageClassName"
                                | "volumeMode"
                                | "mountOptions"
                                | "nodeAffinity"
                        )
                    })?
                    .to_lowercase();
                Some(format!("{pod_dir}/kubernetes.io~{plugin}/{pv_name}"))
            }
        }
        Source::ClusterState => None,
        Source::Other(plugin) => Some(format!(
            "{pod_dir}/kubernetes.io~{}/{}",
            plugin.to_lowercase(),
            choice.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn pod(annotations: Value) -> Value {
        json!({
            "metadata": {"name": "db-0", "namespace": "shop", "annotations": annotations},
            "spec": {"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "logs", "hostPath": {"path": "/var/log/db"}},
                {"name": "pending", "persistentVolumeClaim": {"claimName": "not-bound"}},
                {"name": "conf", "configMap": {"name": "db"}},
                {"name": "creds", "secret": {"secretName": "db"}},
                {"name": "kube-api-access-x1", "projected": {"sources": []}},
                {"name": "info", "downwardAPI": {"items": []}},
                {"name": "default-token-abcde", "secret": {"secretName": "default-token-abcde"}},
                {"name": "nfs", "nfs": {"server": "10.0.0.1", "path": "/export"}}
            ]}
        })
    }

    fn decisions(p: &Value, default_fs: bool) -> Vec<(String, Decision)> {
        choose(p, default_fs, |c| c != "not-bound")
            .into_iter()
            .map(|c| (c.name, c.decision))
            .collect()
    }

    use Decision::*;

    #[rstest]
    #[case::opt_in_lists_two(
        json!({BACKUP_VOLUMES: "data, scratch"}), false,
        &[("data", Backup), ("scratch", Backup), ("logs", NotChosen), ("pending", NotChosen),
          ("conf", ClusterState), ("creds", ClusterState), ("kube-api-access-x1", ClusterState),
          ("info", ClusterState), ("default-token-abcde", ClusterState), ("nfs", NotChosen)]
    )]
    #[case::opt_in_without_annotation_backs_up_nothing(
        json!({}), false,
        &[("data", NotChosen), ("scratch", NotChosen), ("logs", NotChosen), ("pending", NotChosen),
          ("conf", ClusterState), ("creds", ClusterState), ("kube-api-access-x1", ClusterState),
          ("info", ClusterState), ("default-token-abcde", ClusterState), ("nfs", NotChosen)]
    )]
    #[case::opt_in_never_takes_cluster_state_nor_a_missing_volume(
        json!({BACKUP_VOLUMES: "conf,ghost,pending"}), false,
        &[("data", NotChosen), ("scratch", NotChosen), ("logs", NotChosen), ("pending", ClaimNotReady),
          ("conf", ClusterState), ("creds", ClusterState), ("kube-api-access-x1", ClusterState),
          ("info", ClusterState), ("default-token-abcde", ClusterState), ("nfs", NotChosen),
          ("ghost", NoSuchVolume)]
    )]
    #[case::opt_out_takes_every_data_volume(
        json!({}), true,
        &[("data", Backup), ("scratch", Backup), ("logs", Backup), ("pending", ClaimNotReady),
          ("conf", ClusterState), ("creds", ClusterState), ("kube-api-access-x1", ClusterState),
          ("info", ClusterState), ("default-token-abcde", ClusterState), ("nfs", Backup)]
    )]
    #[case::opt_out_annotation_excludes(
        json!({BACKUP_VOLUMES_EXCLUDES: "scratch,logs", BACKUP_VOLUMES: "ignored-in-this-mode"}), true,
        &[("data", Backup), ("scratch", OptedOut), ("logs", OptedOut), ("pending", ClaimNotReady),
          ("conf", ClusterState), ("creds", ClusterState), ("kube-api-access-x1", ClusterState),
          ("info", ClusterState), ("default-token-abcde", ClusterState), ("nfs", Backup)]
    )]
    fn which_volumes_are_backed_up(
        #[case] annotations: Value,
        #[case] default_fs: bool,
        #[case] want: &[(&str, Decision)],
    ) {
        let want: Vec<(String, Decision)> = want
            .iter()
            .map(|(n, d)| ((*n).to_owned(), d.clone()))
            .collect();
        assert_eq!(decisions(&pod(annotations), default_fs), want);
    }

    #[test]
    fn a_pod_without_volumes_has_nothing_to_choose() {
        assert_eq!(choose(&json!({"spec": {}}), true, |_| true), vec![]);
    }

    fn choice(name: &str, source: Source) -> VolumeChoice {
        VolumeChoice {
            name: name.into(),
            source,
            decision: Backup,
        }
    }

    #[rstest]
    #[case::empty_dir(
        choice("scratch", Source::EmptyDir),
        None,
        Some("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/scratch")
    )]
    #[case::host_path(choice("logs", Source::HostPath("/var/log/db".into())), None, Some("/var/log/db"))]
    #[case::claim_on_host_path_pv(choice("data", Source::Claim("c".into())),
        Some(json!({"metadata": {"name": "pv1"}, "spec": {"hostPath": {"path": "/srv/pv1"}}})),
        Some("/srv/pv1"))]
    #[case::claim_on_local_pv(choice("data", Source::Claim("c".into())),
        Some(json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {}, "local": {"path": "/mnt/disk1"}}})),
        Some("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~local-volume/pv1"))]
    #[case::claim_on_csi_pv(choice("data", Source::Claim("c".into())),
        Some(json!({"metadata": {"name": "pvc-123"}, "spec": {"csi": {"driver": "x"}}})),
        Some("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc-123/mount"))]
    #[case::claim_on_nfs_pv(choice("data", Source::Claim("c".into())),
        Some(json!({"metadata": {"name": "pv9"}, "spec": {"accessModes": [], "nfs": {"path": "/x"}}})),
        Some("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/pv9"))]
    #[case::claim_without_its_pv(choice("data", Source::Claim("c".into())), None, None)]
    #[case::cluster_state(choice("conf", Source::ClusterState), None, None)]
    fn where_a_volumes_files_are_on_the_node(
        #[case] c: VolumeChoice,
        #[case] pv: Option<Value>,
        #[case] want: Option<&str>,
    ) {
        assert_eq!(
            node_path("/var/lib/kubelet/", "u1", &c, pv.as_ref()).as_deref(),
            want
        );
    }
}
