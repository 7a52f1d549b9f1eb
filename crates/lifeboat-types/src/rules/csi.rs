//! CSI snapshots of claims, as Velero takes and restores them (its CSI plugin,
//! `pkg/util/csi`): which VolumeSnapshotClass a claim's snapshot uses, the objects a
//! backup makes, what it records, and the objects a restore makes — a pre-provisioned
//! VolumeSnapshotContent found by its `snapshotHandle` (how a snapshot is imported into
//! another cluster), its VolumeSnapshot, and the claim with that snapshot as `dataSource`.
//!
//! No CSI driver runs in lifeboat's test clusters: the tests play the snapshot
//! controller and the driver (they make the contents and set `readyToUse`).

use serde_json::{Value, json};

/// The API group of CSI snapshots.
pub const GROUP: &str = "snapshot.storage.k8s.io";
/// Its version lifeboat speaks.
pub const API_VERSION: &str = "snapshot.storage.k8s.io/v1";
/// The label marking the VolumeSnapshotClass Velero uses for a driver.
pub const CLASS_LABEL: &str = "velero.io/csi-volumesnapshot-class";
/// The claim annotation naming the class for its snapshot (Velero's).
pub const CLAIM_CLASS_ANNOTATION: &str = "velero.io/csi-volumesnapshot-class";
/// The annotation marking a driver's default VolumeSnapshotClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";
/// The `backupMethod` of a CSI snapshot in `<b>-volumeinfo.json.gz` (Velero's).
pub const METHOD: &str = "CSISnapshot";

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn is_true(v: &Value, pointer: &str) -> bool {
    text(v, pointer) == Some("true")
}

/// The VolumeSnapshotClass for a snapshot of `claim`, whose volume's CSI driver is
/// `driver`, among `classes` (VolumeSnapshotClass objects), as Velero chooses: the class
/// the claim names in [`CLAIM_CLASS_ANNOTATION`], else the driver's class labelled
/// [`CLASS_LABEL`]`=true`, else the driver's default class. An error says what to label.
pub fn choose_class(driver: &str, claim: &Value, classes: &[Value]) -> Result<String, String> {
    let of_driver: Vec<&Value> = classes
        .iter()
        .filter(|c| text(c, "/driver") == Some(driver))
        .collect();
    let name = |c: &&Value| text(c, "/metadata/name").unwrap_or_default().to_owned();
    let claim_name = text(claim, "/metadata/name").unwrap_or_default();
    if let Some(wanted) = claim
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLAIM_CLASS_ANNOTATION))
        .and_then(Value::as_str)
    {
        return of_driver
            .iter()
            .find(|c| name(c) == wanted)
            .map(name)
            .ok_or_else(|| {
                format!(
                    "claim {claim_name} names VolumeSnapshotClass {wanted:?} ({CLAIM_CLASS_ANNOTATION}), which does not exist for driver {driver}"
                )
            });
    }
    for (what, pick) in [
        (
            format!("labelled {CLASS_LABEL}=true"),
            &(|c: &&Value| {
                is_true(
                    c,
                    &format!("/metadata/labels/{}", CLASS_LABEL.replace('/', "~1")),
                )
            }) as &dyn Fn(&&Value) -> bool,
        ),
        (
            format!("marked default ({DEFAULT_CLASS_ANNOTATION})"),
            &|c: &&Value| {
                is_true(
                    c,
                    &format!(
                        "/metadata/annotations/{}",
                        DEFAULT_CLASS_ANNOTATION.replace('/', "~1")
                    ),
                )
            },
        ),
    ] {
        let found: Vec<String> = of_driver.iter().filter(|c| pick(c)).map(name).collect();
        match found.as_slice() {
            [one] => return Ok(one.clone()),
            [] => continue,
            many => {
                return Err(format!(
                    "several VolumeSnapshotClasses of driver {driver} are {what}: {}; keep one, or name the class in the claim's {CLAIM_CLASS_ANNOTATION} annotation",
                    many.join(", ")
                ));
            }
        }
    }
    Err(format!(
        "no VolumeSnapshotClass for driver {driver}: label one {CLASS_LABEL}=true (or mark one the driver's default)"
    ))
}

/// The VolumeSnapshot a backup makes of claim `namespace/claim`.
pub fn volume_snapshot(
    name: &str,
    namespace: &str,
    claim: &str,
    class: &str,
    backup: &str,
) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "VolumeSnapshot",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": { "velero.io/backup-name": backup }
        },
        "spec": {
            "volumeSnapshotClassName": class,
            "source": { "persistentVolumeClaimName": claim }
        }
    })
}

/// The name of the VolumeSnapshot of `namespace/claim` in `backup` (fixed: a create sent
/// twice finds the first).
pub fn snapshot_name(backup: &str, namespace: &str, claim: &str) -> String {
    format!(
        "velero-{claim}-{}",
        crate::api::names::short_hash(&[backup, namespace, claim])
    )
}

/// What a snapshot's record in `<b>-volumeinfo.json.gz` holds (Velero's
/// `BackupVolumeInfo` with `csiSnapshotInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The claim's namespace.
    pub namespace: String,
    /// The claim.
    pub claim: String,
    /// Its volume.
    pub volume: String,
    /// The VolumeSnapshot.
    pub snapshot: String,
    /// Its class.
    pub class: String,
    /// The CSI driver.
    pub driver: String,
    /// The storage system's id of the snapshot.
    pub handle: String,
    /// Bytes.
    pub size: u64,
    /// The VolumeSnapshotContent in the backed-up cluster.
    pub content: String,
}

impl SnapshotRecord {
    /// As Velero's volume info entry.
    pub fn to_volume_info(&self) -> Value {
        json!({
            "pvcName": self.claim,
            "pvcNamespace": self.namespace,
            "pvName": self.volume,
            "backupMethod": METHOD,
            "snapshotDataMoved": false,
            "result": "succeeded",
            "csiSnapshotInfo": {
                "snapshotHandle": self.handle,
                "size": self.size,
                "driver": self.driver,
                "vscName": self.content,
                "volumeSnapshotName": self.snapshot,
                "volumeSnapshotClass": self.class,
                "readyToUse": true,
            }
        })
    }

    /// Read back from a volume info entry; `None` for other methods or failed ones.
    pub fn from_volume_info(v: &Value) -> Option<SnapshotRecord> {
        if text(v, "/backupMethod") != Some(METHOD) || text(v, "/result") == Some("failed") {
            return None;
        }
        let s = |p: &str| text(v, p).unwrap_or_default().to_owned();
        let rec = SnapshotRecord {
            namespace: s("/pvcNamespace"),
            claim: s("/pvcName"),
            volume: s("/pvName"),
            snapshot: s("/csiSnapshotInfo/volumeSnapshotName"),
            class: s("/csiSnapshotInfo/volumeSnapshotClass"),
            driver: s("/csiSnapshotInfo/driver"),
            handle: s("/csiSnapshotInfo/snapshotHandle"),
            size: v
                .pointer("/csiSnapshotInfo/size")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            content: s("/csiSnapshotInfo/vscName"),
        };
        (!rec.handle.is_empty() && !rec.claim.is_empty() && !rec.driver.is_empty()).then_some(rec)
    }

    /// Velero's item operation of the snapshot (`<b>-itemoperations.json.gz`).
    pub fn to_item_operation(&self, backup: &str, backup_uid: &str, at: &str) -> Value {
        json!({
            "spec": {
                "backupName": backup,
                "backupUID": backup_uid,
                "backupItemAction": "velero.io/csi-pvc-backupper",
                "resourceIdentifier": {
                    "Group": "", "Resource": "persistentvolumeclaims",
                    "Namespace": self.namespace, "Name": self.claim
                },
                "operationID": format!("{}/{}/{at}", self.namespace, self.snapshot)
            },
            "status": { "phase": "Completed", "created": at, "updated": at }
        })
    }

    /// The pre-provisioned VolumeSnapshotContent a restore makes for the snapshot in
    /// namespace `namespace`: found by its handle, kept when deleted (`Retain`: the
    /// snapshot belongs to the backed-up cluster's storage).
    pub fn restored_content(&self, name: &str, namespace: &str, restore: &str) -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": "VolumeSnapshotContent",
            "metadata": { "name": name, "labels": { "velero.io/restore-name": restore } },
            "spec": {
                "deletionPolicy": "Retain",
                "driver": self.driver,
                "source": { "snapshotHandle": self.handle },
                "volumeSnapshotClassName": self.class,
                "volumeSnapshotRef": { "namespace": namespace, "name": self.snapshot }
            }
        })
    }

    /// The VolumeSnapshot a restore makes in `namespace`, bound to `content`.
    pub fn restored_snapshot(&self, namespace: &str, content: &str, restore: &str) -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": "VolumeSnapshot",
            "metadata": {
                "name": self.snapshot, "namespace": namespace,
                "labels": { "velero.io/restore-name": restore }
            },
            "spec": {
                "volumeSnapshotClassName": self.class,
                "source": { "volumeSnapshotContentName": content }
            }
        })
    }
}

/// The uid of a VolumeSnapshotContent that a test restore named `restore` made and may
/// delete when it cleans up (pure): labelled with that restore, bound to a snapshot in one
/// of its scratch `namespaces` (a restore elsewhere of the same name is not it), and kept
/// on deletion (`Retain`: deleting the object leaves the snapshot, which belongs to the
/// backed-up cluster's storage). Any other content is left alone — one with `Delete` would
/// take the snapshot with it.
pub fn scratch_content(restore: &str, namespaces: &[&str], content: &Value) -> Option<String> {
    let labelled = content
        .pointer("/metadata/labels/velero.io~1restore-name")
        .and_then(Value::as_str)
        == Some(restore)
        && content
            .pointer("/spec/volumeSnapshotRef/namespace")
            .and_then(Value::as_str)
            .is_some_and(|ns| namespaces.contains(&ns));
    let retained = content
        .pointer("/spec/deletionPolicy")
        .and_then(Value::as_str)
        == Some("Retain");
    let uid = content.pointer("/metadata/uid").and_then(Value::as_str)?;
    (labelled && retained && !uid.is_empty()).then(|| uid.to_owned())
}

/// Makes a restored claim provision its volume from snapshot `snapshot`: `dataSource`
/// set, the old volume's name removed.
pub fn claim_from_snapshot(claim: &mut Value, snapshot: &str) {
    if let Some(spec) = claim.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("volumeName");
        spec.insert(
            "dataSource".into(),
            json!({ "apiGroup": GROUP, "kind": "VolumeSnapshot", "name": snapshot }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::ours(json!({"metadata": {"uid": "u1", "labels": {"velero.io/restore-name": "b-verify-x"}}, "spec": {"deletionPolicy": "Retain", "volumeSnapshotRef": {"namespace": "shop-verify-x"}}}), Some("u1"))]
    #[case::another_restores(json!({"metadata": {"uid": "u1", "labels": {"velero.io/restore-name": "other"}}, "spec": {"deletionPolicy": "Retain", "volumeSnapshotRef": {"namespace": "shop-verify-x"}}}), None)]
    #[case::same_name_elsewhere(json!({"metadata": {"uid": "u1", "labels": {"velero.io/restore-name": "b-verify-x"}}, "spec": {"deletionPolicy": "Retain", "volumeSnapshotRef": {"namespace": "shop"}}}), None)]
    #[case::unlabelled(json!({"metadata": {"uid": "u1"}, "spec": {"deletionPolicy": "Retain", "volumeSnapshotRef": {"namespace": "shop-verify-x"}}}), None)]
    #[case::would_delete_the_snapshot(json!({"metadata": {"uid": "u1", "labels": {"velero.io/restore-name": "b-verify-x"}}, "spec": {"deletionPolicy": "Delete", "volumeSnapshotRef": {"namespace": "shop-verify-x"}}}), None)]
    #[case::no_uid(json!({"metadata": {"labels": {"velero.io/restore-name": "b-verify-x"}}, "spec": {"deletionPolicy": "Retain", "volumeSnapshotRef": {"namespace": "shop-verify-x"}}}), None)]
    fn a_test_restore_deletes_only_its_retained_contents(
        #[case] content: Value,
        #[case] expected: Option<&str>,
    ) {
        assert_eq!(
            scratch_content("b-verify-x", &["shop-verify-x"], &content).as_deref(),
            expected
        );
    }

    fn class(name: &str, driver: &str, labelled: bool, default: bool) -> Value {
        let mut c =
            json!({"metadata": {"name": name, "labels": {}, "annotations": {}}, "driver": driver});
        if labelled {
            c["metadata"]["labels"][CLASS_LABEL] = json!("true");
        }
        if default {
            c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] = json!("true");
        }
        c
    }

    fn claim(annotation: Option<&str>) -> Value {
        let mut c = json!({"metadata": {"name": "data", "annotations": {}}});
        if let Some(a) = annotation {
            c["metadata"]["annotations"][CLAIM_CLASS_ANNOTATION] = json!(a);
        }
        c
    }

    #[rstest]
    #[case::labelled(vec![class("a", "d", false, true), class("b", "d", true, false)], None, Ok("b"))]
    #[case::default_when_none_labelled(vec![class("a", "d", false, true), class("b", "d", false, false)], None, Ok("a"))]
    #[case::other_drivers_do_not_count(vec![class("x", "other", true, true), class("a", "d", false, true)], None, Ok("a"))]
    #[case::the_claim_names_it(vec![class("a", "d", true, false), class("b", "d", false, false)], Some("b"), Ok("b"))]
    #[case::named_but_missing(vec![class("a", "d", true, false)], Some("gone"), Err("claim data names VolumeSnapshotClass \"gone\""))]
    #[case::named_of_another_driver(vec![class("x", "other", false, false)], Some("x"), Err("which does not exist for driver d"))]
    #[case::two_labelled(vec![class("a", "d", true, false), class("b", "d", true, false)], None, Err("several VolumeSnapshotClasses of driver d are labelled"))]
    #[case::none(vec![class("x", "other", true, true)], None, Err("no VolumeSnapshotClass for driver d: label one velero.io/csi-volumesnapshot-class=true"))]
    fn which_class_a_snapshot_uses(
        #[case] classes: Vec<Value>,
        #[case] named: Option<&str>,
        #[case] want: Result<&str, &str>,
    ) {
        let got = choose_class("d", &claim(named), &classes);
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w),
            (Err(g), Err(w)) => assert!(g.starts_with(w) || g.contains(w), "{g}"),
            (g, w) => panic!("{g:?} != {w:?}"),
        }
    }

    fn record() -> SnapshotRecord {
        SnapshotRecord {
            namespace: "shop".into(),
            claim: "data".into(),
            volume: "pv-1".into(),
            snapshot: "velero-data-0a1b2c3d".into(),
            class: "csi-snap".into(),
            driver: "ebs.csi.aws.com".into(),
            handle: "snap-0123".into(),
            size: 1 << 30,
            content: "snapcontent-1".into(),
        }
    }

    #[test]
    fn a_record_reads_back_from_its_volume_info() {
        let r = record();
        let v = r.to_volume_info();
        assert_eq!(v["backupMethod"], "CSISnapshot");
        assert_eq!(v["csiSnapshotInfo"]["snapshotHandle"], "snap-0123");
        assert_eq!(SnapshotRecord::from_volume_info(&v), Some(r));
        let mut failed = v.clone();
        failed["result"] = json!("failed");
        assert_eq!(SnapshotRecord::from_volume_info(&failed), None);
        assert_eq!(
            SnapshotRecord::from_volume_info(&json!({"backupMethod": "PodVolumeBackup"})),
            None
        );
    }

    /// The guide's cross-cluster import: a pre-provisioned content by handle (Retain), a
    /// snapshot bound to it, a claim with the snapshot as its data source.
    #[test]
    fn a_restore_imports_the_snapshot_by_its_handle() {
        let r = record();
        let vsc = r.restored_content("r1-x", "shop-dr", "r1");
        assert_eq!(
            vsc["spec"]["source"],
            json!({"snapshotHandle": "snap-0123"})
        );
        assert_eq!(vsc["spec"]["deletionPolicy"], "Retain");
        assert_eq!(vsc["spec"]["driver"], "ebs.csi.aws.com");
        assert_eq!(
            vsc["spec"]["volumeSnapshotRef"],
            json!({"namespace": "shop-dr", "name": "velero-data-0a1b2c3d"})
        );
        let vs = r.restored_snapshot("shop-dr", "r1-x", "r1");
        assert_eq!(
            vs["spec"]["source"],
            json!({"volumeSnapshotContentName": "r1-x"})
        );
        assert_eq!(vs["metadata"]["namespace"], "shop-dr");
        let mut pvc = json!({"spec": {"volumeName": "pv-1", "resources": {}}});
        claim_from_snapshot(&mut pvc, &r.snapshot);
        assert!(pvc["spec"].get("volumeName").is_none());
        assert_eq!(
            pvc["spec"]["dataSource"],
            json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "velero-data-0a1b2c3d"})
        );
    }

    #[test]
    fn snapshot_names_are_fixed_per_claim_and_backup() {
        let a = snapshot_name("b1", "shop", "data");
        assert_eq!(a, snapshot_name("b1", "shop", "data"));
        assert_ne!(a, snapshot_name("b2", "shop", "data"));
        assert!(a.starts_with("velero-data-"), "{a}");
    }
}
