//! Restores never bind production disks (issue 11, item 5): which PersistentVolumes a
//! restore creates, and which claims are reset to provision a new volume, as Velero decides
//! it (`pkg/restore/restore.go`: `hasDeleteReclaimPolicy`, `resetVolumeBindingInfo`,
//! `pvsToProvision`; `pkg/restore/actions/pvc_action.go`).
//!
//! A PersistentVolume is a pointer to a disk. Creating it again from a backup points the
//! restored cluster at the original disk: a drill's claim would be bound to production data,
//! and with reclaim policy `Delete` deleting the drill's claim would delete the production
//! disk. lifeboat restores no volume data (yet), so a volume "with restored data" is never
//! seen today; the rules take it as a parameter for the day it is.

use serde_json::{Map, Value};

/// Annotations the PersistentVolume controller uses to track a binding; a restored claim or
/// volume loses them so that the controller binds the two again (Velero's
/// `resetVolumeBindingInfo`).
pub const BINDING_ANNOTATIONS: &[&str] = &[
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
];

/// Annotations every restored claim loses (Velero's `PVCAction`): the binding, the
/// provisioner and node chosen for the old volume, and Velero's own snapshot references.
pub const CLAIM_ANNOTATIONS: &[&str] = &[
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
    "velero.io/volume-snapshot-name",
    "velero.io/data-upload-name",
];

/// Which PersistentVolumes of the backup a restore may create at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvScope {
    /// Every one (a whole-cluster restore, or `--include-cluster-resources`).
    All,
    /// Those claimed by a claim this restore creates (Velero restores them as "additional
    /// items" of their claims when only some namespaces are restored).
    Claimed,
    /// None.
    Nothing,
}

/// Which PersistentVolumes a restore may create, from its `includeClusterResources`,
/// whether its namespace filter takes every namespace, and whether it maps namespaces.
///
/// As Velero: `includeClusterResources: false` creates no cluster-scoped object, `true`
/// every one; unset, a whole-cluster restore creates them all and a namespace-filtered one
/// the volumes of the claims it restores. Unlike Velero, a namespace-mapped restore (a drill,
/// `backup verify --test-restore`) creates none unless `includeClusterResources` is `true`:
/// its claims land in a new namespace of the same (or a standby) cluster, and a volume
/// created for them would point at the original namespace's disk. Asking for it reuses the
/// flag Velero users already pass to get cluster-scoped objects (`--include-cluster-resources`)
/// rather than a new one, so that one flag keeps meaning "cluster-scoped objects too".
pub fn pv_scope(
    include_cluster_resources: Option<bool>,
    all_namespaces: bool,
    namespace_mapped: bool,
) -> PvScope {
    match include_cluster_resources {
        Some(true) => PvScope::All,
        Some(false) => PvScope::Nothing,
        None if namespace_mapped => PvScope::Nothing,
        None if all_namespaces => PvScope::All,
        None => PvScope::Claimed,
    }
}

/// What a restore does with one PersistentVolume of the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvDecision {
    /// Create it (its reclaim policy is not `Delete`, or its data is restored).
    Restore,
    /// Left out by the scope ([`pv_scope`]): not asked for, or not claimed by a restored
    /// claim.
    OutOfScope,
    /// Not created: the backup restores no data for it and its reclaim policy is `Delete`;
    /// its claim provisions a new volume (Velero: "Dynamically re-provisioning persistent
    /// volume because it doesn't have a snapshot and its reclaim policy is Delete").
    ProvisionFresh,
    /// Not created: its files are in the backup; its claim provisions a new volume and the
    /// node agent writes them into it.
    ProvisionForFiles,
    /// Not created: its claim is restored from its CSI snapshot (a new volume provisioned
    /// from it).
    ProvisionFromSnapshot,
}

/// Whether `reclaim_policy` (`spec.persistentVolumeReclaimPolicy`) destroys the volume's
/// data once its claim goes: `Delete`, and the deprecated `Recycle` (which scrubs it — a
/// restored NFS volume of the original would be wiped when a restore's namespace is
/// deleted).
pub fn reclaims_by_delete(reclaim_policy: Option<&str>) -> bool {
    matches!(reclaim_policy, Some("Delete" | "Recycle"))
}

/// What a backup holds of a PersistentVolume's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeData {
    /// Nothing: only the object.
    None,
    /// A snapshot the volume is created from.
    Snapshot,
    /// Its files (a pod volume backup of a pod using its claim), which the node agent
    /// writes into whatever volume the restored claim gets.
    Files,
    /// A CSI snapshot: the restored claim provisions a new volume from it.
    CsiSnapshot,
}

/// Decides on a PersistentVolume: in `scope`, `claimed` when a claim this restore creates
/// names it (`spec.volumeName`), and what the backup holds of its data.
///
/// As Velero: a volume whose files are in the backup is not created — its claim
/// provisions a new volume and the files are written into it — so that the restore never
/// points at the original disk, whatever its reclaim policy.
pub fn pv_decision(
    scope: PvScope,
    claimed: bool,
    reclaim_policy: Option<&str>,
    data: VolumeData,
) -> PvDecision {
    let in_scope = match scope {
        PvScope::All => true,
        PvScope::Claimed => claimed,
        PvScope::Nothing => false,
    };
    if !in_scope {
        PvDecision::OutOfScope
    } else if data == VolumeData::Files {
        PvDecision::ProvisionForFiles
    } else if data == VolumeData::CsiSnapshot {
        PvDecision::ProvisionFromSnapshot
    } else if reclaims_by_delete(reclaim_policy) && data == VolumeData::None {
        PvDecision::ProvisionFresh
    } else {
        PvDecision::Restore
    }
}

/// Whether a restored claim keeps `spec.volumeName` (`volume_name`): only when this restore
/// creates that volume (`volume_restored`). Otherwise the name points at a volume of the
/// original cluster — the production disk — and the claim provisions a new one instead.
pub fn claim_keeps_volume(volume_name: Option<&str>, volume_restored: bool) -> bool {
    volume_name.is_some_and(|v| !v.is_empty()) && volume_restored
}

fn annotations(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
}

/// Removes what binds a restored claim to its old volume and node (every restored claim:
/// [`CLAIM_ANNOTATIONS`]).
pub fn reset_claim(obj: &mut Value) {
    if let Some(ann) = annotations(obj) {
        for k in CLAIM_ANNOTATIONS {
            ann.remove(*k);
        }
    }
}

/// Makes a restored claim provision a new volume: [`reset_claim`], and `spec.volumeName`
/// removed.
pub fn provision_fresh(obj: &mut Value) {
    reset_claim(obj);
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("volumeName");
    }
}

/// Removes what binds a restored volume to its old claim: the claim's uid and
/// resourceVersion and [`BINDING_ANNOTATIONS`] (Velero's `resetVolumeBindingInfo`).
pub fn reset_volume(obj: &mut Value) {
    if let Some(claim) = obj
        .pointer_mut("/spec/claimRef")
        .and_then(Value::as_object_mut)
    {
        claim.remove("uid");
        claim.remove("resourceVersion");
    }
    if let Some(ann) = annotations(obj) {
        for k in BINDING_ANNOTATIONS {
            ann.remove(*k);
        }
    }
}

/// Whether restore `restore`'s rollback may delete PersistentVolume `pv` (pure): the
/// volume's uid when it may, else why not. It may when the restore made it (its
/// `velero.io/restore-name` label), its claim, if any, is in one of the `namespaces` the
/// rollback deletes (a volume someone bound elsewhere since is theirs), and it is kept on
/// deletion (`Retain`: deleting the object leaves the disk, which is the backed-up
/// cluster's data). With `Delete` the disk would go with it: such a volume is left, named.
pub fn rollback_volume(restore: &str, namespaces: &[&str], pv: &Value) -> Result<String, String> {
    let label = pv
        .pointer("/metadata/labels/velero.io~1restore-name")
        .and_then(Value::as_str);
    if label != Some(restore) {
        return Err(format!("it was not made by restore {restore}"));
    }
    if let Some(ns) = pv
        .pointer("/spec/claimRef/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !namespaces.contains(ns))
    {
        return Err(format!(
            "it is claimed in namespace {ns}, which the rollback does not delete"
        ));
    }
    let policy = pv
        .pointer("/spec/persistentVolumeReclaimPolicy")
        .and_then(Value::as_str);
    if policy != Some("Retain") {
        return Err(format!(
            "its reclaim policy is {}, not Retain: deleting it could take its disk with it (set it to Retain, then delete it)",
            policy.unwrap_or("Delete")
        ));
    }
    pv.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "it has no uid".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn restored_pv(label: &str, claim_ns: Option<&str>, policy: Option<&str>) -> Value {
        let mut pv = json!({"metadata": {"uid": "u1", "labels": {"velero.io/restore-name": label}}, "spec": {}});
        if let Some(ns) = claim_ns {
            pv["spec"]["claimRef"] = json!({"namespace": ns, "name": "data"});
        }
        if let Some(p) = policy {
            pv["spec"]["persistentVolumeReclaimPolicy"] = json!(p);
        }
        pv
    }

    #[rstest]
    #[case::made_and_retained(restored_pv("r1", Some("shop"), Some("Retain")), Ok("u1".to_owned()))]
    #[case::unclaimed(restored_pv("r1", None, Some("Retain")), Ok("u1".to_owned()))]
    #[case::another_restores(restored_pv("r2", Some("shop"), Some("Retain")), Err("it was not made by restore r1".to_owned()))]
    #[case::claimed_elsewhere(restored_pv("r1", Some("prod"), Some("Retain")), Err("it is claimed in namespace prod, which the rollback does not delete".to_owned()))]
    #[case::deleted_with_its_disk(restored_pv("r1", Some("shop"), Some("Delete")), Err("its reclaim policy is Delete, not Retain: deleting it could take its disk with it (set it to Retain, then delete it)".to_owned()))]
    #[case::policy_unset(restored_pv("r1", Some("shop"), None), Err("its reclaim policy is Delete, not Retain: deleting it could take its disk with it (set it to Retain, then delete it)".to_owned()))]
    #[case::recycled(restored_pv("r1", Some("shop"), Some("Recycle")), Err("its reclaim policy is Recycle, not Retain: deleting it could take its disk with it (set it to Retain, then delete it)".to_owned()))]
    fn which_restored_volumes_a_rollback_deletes(
        #[case] pv: Value,
        #[case] want: Result<String, String>,
    ) {
        assert_eq!(rollback_volume("r1", &["shop"], &pv), want);
    }

    #[rstest]
    #[case::whole_cluster(None, true, false, PvScope::All)]
    #[case::some_namespaces(None, false, false, PvScope::Claimed)]
    #[case::asked(Some(true), false, false, PvScope::All)]
    #[case::refused(Some(false), true, false, PvScope::Nothing)]
    // Issue 11 item 5: a namespace-mapped restore (drill, verify --test-restore) creates no
    // volume unless asked.
    #[case::mapped(None, true, true, PvScope::Nothing)]
    #[case::mapped_some_namespaces(None, false, true, PvScope::Nothing)]
    #[case::mapped_and_asked(Some(true), true, true, PvScope::All)]
    #[case::mapped_and_refused(Some(false), false, true, PvScope::Nothing)]
    fn which_volumes_a_restore_may_create(
        #[case] include_cluster_resources: Option<bool>,
        #[case] all_namespaces: bool,
        #[case] mapped: bool,
        #[case] want: PvScope,
    ) {
        assert_eq!(
            pv_scope(include_cluster_resources, all_namespaces, mapped),
            want
        );
    }

    #[rstest]
    // Issue 11 item 5: a volume with reclaim policy Delete and no restored data is not
    // created (its claim provisions a new one), whatever asked for it.
    #[case::delete_without_data(
        PvScope::All,
        true,
        Some("Delete"),
        VolumeData::None,
        PvDecision::ProvisionFresh
    )]
    #[case::delete_claimed(
        PvScope::Claimed,
        true,
        Some("Delete"),
        VolumeData::None,
        PvDecision::ProvisionFresh
    )]
    #[case::delete_with_data(
        PvScope::All,
        true,
        Some("Delete"),
        VolumeData::Snapshot,
        PvDecision::Restore
    )]
    #[case::files_retain(
        PvScope::All,
        true,
        Some("Retain"),
        VolumeData::Files,
        PvDecision::ProvisionForFiles
    )]
    #[case::files_delete(
        PvScope::Claimed,
        true,
        Some("Delete"),
        VolumeData::Files,
        PvDecision::ProvisionForFiles
    )]
    #[case::csi_snapshot(
        PvScope::All,
        true,
        Some("Delete"),
        VolumeData::CsiSnapshot,
        PvDecision::ProvisionFromSnapshot
    )]
    #[case::files_not_asked(
        PvScope::Nothing,
        true,
        Some("Retain"),
        VolumeData::Files,
        PvDecision::OutOfScope
    )]
    #[case::retain(
        PvScope::All,
        false,
        Some("Retain"),
        VolumeData::None,
        PvDecision::Restore
    )]
    #[case::no_policy(PvScope::All, false, None, VolumeData::None, PvDecision::Restore)]
    #[case::retain_claimed(
        PvScope::Claimed,
        true,
        Some("Retain"),
        VolumeData::None,
        PvDecision::Restore
    )]
    #[case::retain_unclaimed(
        PvScope::Claimed,
        false,
        Some("Retain"),
        VolumeData::None,
        PvDecision::OutOfScope
    )]
    #[case::retain_not_asked(
        PvScope::Nothing,
        true,
        Some("Retain"),
        VolumeData::None,
        PvDecision::OutOfScope
    )]
    #[case::delete_not_asked(
        PvScope::Nothing,
        true,
        Some("Delete"),
        VolumeData::None,
        PvDecision::OutOfScope
    )]
    // Regression (review): a Recycle volume was restored as it was, pointing at the
    // original's share, which the recycler scrubs once the restored claim goes.
    #[case::recycle_is_not_restored(
        PvScope::All,
        true,
        Some("Recycle"),
        VolumeData::None,
        PvDecision::ProvisionFresh
    )]
    #[case::policy_is_case_sensitive(
        PvScope::All,
        false,
        Some("delete"),
        VolumeData::None,
        PvDecision::Restore
    )]
    fn what_happens_to_a_volume(
        #[case] scope: PvScope,
        #[case] claimed: bool,
        #[case] policy: Option<&str>,
        #[case] data: VolumeData,
        #[case] want: PvDecision,
    ) {
        assert_eq!(pv_decision(scope, claimed, policy, data), want);
    }

    #[rstest]
    #[case::volume_restored(Some("pv-1"), true, true)]
    // Issue 11 item 5: the volume is not restored, so the claim must not name it.
    #[case::volume_not_restored(Some("pv-1"), false, false)]
    #[case::unbound(None, false, false)]
    #[case::empty_name(Some(""), true, false)]
    fn whether_a_claim_keeps_its_volume(
        #[case] volume: Option<&str>,
        #[case] restored: bool,
        #[case] keeps: bool,
    ) {
        assert_eq!(claim_keeps_volume(volume, restored), keeps);
    }

    fn bound_claim() -> Value {
        json!({"metadata": {"name": "data", "namespace": "shop", "annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
            "volume.beta.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
            "volume.kubernetes.io/selected-node": "node-1",
            "velero.io/volume-snapshot-name": "s",
            "velero.io/data-upload-name": "d",
            "team": "shop"}},
            "spec": {"volumeName": "pvc-123", "storageClassName": "gp3", "accessModes": ["ReadWriteOnce"]}})
    }

    #[test]
    fn a_fresh_claim_loses_its_volume_and_bindings() {
        let mut pvc = bound_claim();
        provision_fresh(&mut pvc);
        assert_eq!(pvc["metadata"]["annotations"], json!({"team": "shop"}));
        assert_eq!(
            pvc["spec"],
            json!({"storageClassName": "gp3", "accessModes": ["ReadWriteOnce"]})
        );
    }

    #[test]
    fn a_claim_of_a_restored_volume_keeps_its_name() {
        let mut pvc = bound_claim();
        reset_claim(&mut pvc);
        assert_eq!(pvc["metadata"]["annotations"], json!({"team": "shop"}));
        assert_eq!(pvc["spec"]["volumeName"], "pvc-123");
    }

    #[test]
    fn a_restored_volume_loses_its_old_binding() {
        let mut pv = json!({"metadata": {"name": "pv1", "annotations": {
            "pv.kubernetes.io/bound-by-controller": "yes", "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/provisioned-by": "nfs"}},
            "spec": {"claimRef": {"namespace": "shop", "name": "data", "uid": "u", "resourceVersion": "1"}}});
        reset_volume(&mut pv);
        assert_eq!(
            pv["metadata"]["annotations"],
            json!({"pv.kubernetes.io/provisioned-by": "nfs"})
        );
        assert_eq!(
            pv["spec"]["claimRef"],
            json!({"namespace": "shop", "name": "data"})
        );
    }
}
