//! CSI snapshots (issue 15, item 6). No CSI driver or snapshot controller can run here:
//! the test plays both — it makes the VolumeSnapshotContent of each VolumeSnapshot a
//! backup makes and marks both ready, as a driver would. Everything around it is real: the
//! snapshot CRDs (external-snapshotter v4.2.1, `tests/fixtures/snapshot-crds`) on the test
//! API server, lifeboat's backup and restore.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const DRIVER: &str = "csi.it.lifeboat.dev";

fn json(env: &Env, args: &[&str]) -> Value {
    serde_json::from_str(&env.kubectl(args, None)).unwrap()
}

/// Applies the snapshot CRDs and waits until they are served.
fn snapshot_crds(env: &Env) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-crds");
    for kind in [
        "volumesnapshotclasses",
        "volumesnapshotcontents",
        "volumesnapshots",
    ] {
        let f = dir.join(format!("snapshot.storage.k8s.io_{kind}.yaml"));
        env.kubectl(&["apply", "-f", f.to_str().unwrap()], None);
        env.kubectl(
            &[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                &format!("crd/{kind}.snapshot.storage.k8s.io"),
            ],
            None,
        );
    }
}

/// The snapshot controller and CSI driver, played: every VolumeSnapshot of `ns` not ready
/// gets a content with a handle, and both are marked ready. Runs until `stop`.
fn play_snapshot_controller(
    env: &Env,
    ns: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let kubeconfig = env.kubeconfig.clone();
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let kubectl = |args: &[&str], stdin: Option<&str>| -> Option<String> {
            use std::io::Write;
            let mut c = std::process::Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(s) = stdin {
                c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
            }
            drop(c.stdin.take());
            let out = c.wait_with_output().unwrap();
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        };
        while !stop.load(Ordering::Relaxed) {
            let list: Value = kubectl(&["-n", &ns, "get", "volumesnapshots", "-o", "json"], None)
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            for vs in list["items"].as_array().cloned().unwrap_or_default() {
                if vs["status"]["readyToUse"] == true {
                    continue;
                }
                let name = vs["metadata"]["name"].as_str().unwrap_or_default();
                let uid = vs["metadata"]["uid"].as_str().unwrap_or_default();
                let class = vs["spec"]["volumeSnapshotClassName"]
                    .as_str()
                    .unwrap_or_default();
                let content = format!("snapcontent-{uid}");
                kubectl(
                    &["apply", "-f", "-"],
                    Some(&format!(
                        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: {content}}}\nspec:\n  deletionPolicy: Delete\n  driver: {DRIVER}\n  volumeSnapshotClassName: {class}\n  source: {{volumeHandle: vol-0001}}\n  volumeSnapshotRef: {{namespace: {ns}, name: {name}, uid: {uid}}}\n"
                    )),
                );
                kubectl(
                    &[
                        "patch",
                        "volumesnapshotcontent",
                        &content,
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        &format!(
                            r#"{{"status":{{"snapshotHandle":"snap-{name}","readyToUse":true,"restoreSize":1073741824}}}}"#
                        ),
                    ],
                    None,
                );
                kubectl(
                    &[
                        "-n",
                        &ns,
                        "patch",
                        "volumesnapshot",
                        name,
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        &format!(
                            r#"{{"status":{{"boundVolumeSnapshotContentName":"{content}","readyToUse":true}}}}"#
                        ),
                    ],
                    None,
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

/// A backup snapshots the CSI claim in the class labelled for Velero (not the other
/// driver's default), waits until it is ready, stores the snapshot and its content with
/// the objects, and records it in volumeinfo and itemoperations as Velero does. The
/// namespace and the volume are deleted; the restore imports the snapshot by its handle —
/// a pre-provisioned content (Retain), its VolumeSnapshot — and the claim comes back with
/// the snapshot as its data source, without its old volume.
#[test]
#[ignore = "needs the dev cluster: run scripts/test.sh"]
fn a_csi_claim_is_snapshotted_and_restored_from_its_snapshot() {
    let env = Env::new();
    let ns = "csi-shop";
    env.kubectl(
        &[
            "delete",
            "namespace",
            ns,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );
    env.kubectl(&["delete", "pv", "csi-shop-pv", "--ignore-not-found"], None);
    snapshot_crds(&env);
    env.kubectl(&["create", "namespace", ns], None);
    env.apply(&format!(
        r#"apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: it-csi-snap
  labels: {{velero.io/csi-volumesnapshot-class: "true"}}
driver: {DRIVER}
deletionPolicy: Delete
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: it-other-default
  annotations: {{snapshot.storage.kubernetes.io/is-default-class: "true"}}
driver: other.csi.example
deletionPolicy: Delete
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: csi-shop-pv}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: it-csi
  csi: {{driver: {DRIVER}, volumeHandle: vol-0001}}
  claimRef: {{namespace: {ns}, name: data}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {ns}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: it-csi
  volumeName: csi-shop-pv
  resources: {{requests: {{storage: 1Gi}}}}
"#
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let controller = play_snapshot_controller(&env, ns, stop.clone());
    let out = env.ok(&[
        "backup",
        "create",
        "csi1",
        "--include-namespaces",
        ns,
        "--wait",
    ]);
    stop.store(true, Ordering::Relaxed);
    controller.join().unwrap();
    assert!(out.contains("Completed"), "{out}");

    let dir = env.storage().join("backups/csi1");
    let info = read_json_gz(&dir.join("csi1-volumeinfo.json.gz"));
    let rec = &info[0];
    assert_eq!(rec["backupMethod"], "CSISnapshot", "{info}");
    assert_eq!(rec["pvcName"], "data");
    assert_eq!(rec["pvName"], "csi-shop-pv");
    let snapshot = rec["csiSnapshotInfo"]["volumeSnapshotName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(snapshot.starts_with("velero-data-"), "{rec}");
    assert_eq!(
        rec["csiSnapshotInfo"]["snapshotHandle"],
        format!("snap-{snapshot}")
    );
    assert_eq!(rec["csiSnapshotInfo"]["driver"], DRIVER);
    assert_eq!(rec["csiSnapshotInfo"]["volumeSnapshotClass"], "it-csi-snap");
    let ops = read_json_gz(&dir.join("csi1-itemoperations.json.gz"));
    assert_eq!(
        ops[0]["spec"]["resourceIdentifier"]["Name"], "data",
        "{ops}"
    );
    assert_eq!(ops[0]["status"]["phase"], "Completed");
    let list = read_json_gz(&dir.join("csi1-resource-list.json.gz"));
    assert_eq!(
        list["snapshot.storage.k8s.io/v1/VolumeSnapshot"],
        serde_json::json!([format!("{ns}/{snapshot}")]),
        "{list}"
    );
    assert!(
        list["snapshot.storage.k8s.io/v1/VolumeSnapshotContent"].is_array(),
        "{list}"
    );
    let vs = json(
        &env,
        &["-n", ns, "get", "volumesnapshot", &snapshot, "-o", "json"],
    );
    let source_content = vs["status"]["boundVolumeSnapshotContentName"]
        .as_str()
        .unwrap()
        .to_owned();

    // The disaster: the namespace and its volume are gone.
    env.kubectl(&["delete", "namespace", ns, "--wait=true"], None);
    env.kubectl(&["delete", "pv", "csi-shop-pv", "--ignore-not-found"], None);
    env.kubectl(
        &[
            "delete",
            "volumesnapshotcontent",
            &source_content,
            "--ignore-not-found",
        ],
        None,
    );

    let out = env.ok(&[
        "restore",
        "create",
        "csi1-r",
        "--from-backup",
        "csi1",
        "--wait",
    ]);
    assert!(out.contains("Completed"), "{out}");
    let pvc = json(&env, &["-n", ns, "get", "pvc", "data", "-o", "json"]);
    assert_eq!(
        pvc["spec"]["dataSource"],
        serde_json::json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot}),
        "{pvc}"
    );
    assert!(pvc["spec"].get("volumeName").is_none(), "{pvc}");
    let vs = json(
        &env,
        &["-n", ns, "get", "volumesnapshot", &snapshot, "-o", "json"],
    );
    let content = vs["spec"]["source"]["volumeSnapshotContentName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(content, source_content);
    let vsc = json(
        &env,
        &["get", "volumesnapshotcontent", &content, "-o", "json"],
    );
    assert_eq!(
        vsc["spec"]["source"]["snapshotHandle"],
        format!("snap-{snapshot}"),
        "{vsc}"
    );
    assert_eq!(vsc["spec"]["deletionPolicy"], "Retain");
    assert_eq!(vsc["spec"]["driver"], DRIVER);
    assert_eq!(vsc["spec"]["volumeSnapshotRef"]["namespace"], ns);
    assert!(
        env.kubectl(
            &[
                "get",
                "pv",
                "csi-shop-pv",
                "--ignore-not-found",
                "-o",
                "name"
            ],
            None
        )
        .trim()
        .is_empty(),
        "the old volume is not created again"
    );

    // A test restore makes its own pre-provisioned content, and deletes it when it cleans
    // up (it was left behind: cluster-scoped, it did not go with the scratch namespace).
    let out = env.ok(&[
        "backup",
        "verify",
        "csi1",
        "--test-restore",
        "--test-restore-id",
        "t1",
    ]);
    assert!(out.contains("cleanup"), "{out}");
    let left = env.kubectl(
        &[
            "get",
            "volumesnapshotcontent",
            "-l",
            "velero.io/restore-name=csi1-verify-t1",
            "-o",
            "name",
        ],
        None,
    );
    assert!(left.trim().is_empty(), "left behind: {left}\n{out}");
    // The restore's own content (not the test restore's) is still there.
    json(
        &env,
        &["get", "volumesnapshotcontent", &content, "-o", "json"],
    );
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
    env.kubectl(
        &[
            "delete",
            "volumesnapshotcontent",
            &content,
            "--ignore-not-found",
        ],
        None,
    );
}
