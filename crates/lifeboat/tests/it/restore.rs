//! Restores on the real control plane: backup → delete → restore → objects equal after
//! normalisation; mapping, existing-resource policy, dry run, modifiers, hostile archives.

use serde_json::Value;

use crate::support::*;

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: NS, labels: {team: dr}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS, labels: {app: shop}}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: NS}
stringData: {password: hunter2}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: shop, namespace: NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: NS}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: shop, namespace: NS}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: NS, labels: {app: shop}}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec: {serviceAccountName: shop, containers: [{name: web, image: "nginx:1.25"}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: NS}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:16"}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: NS}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: "busybox:1.36"}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: NS}
spec: {selector: {app: shop}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop-np, namespace: NS}
spec: {type: NodePort, selector: {app: shop}, ports: [{port: 80, nodePort: NODEPORT}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: NS}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: NS}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}]}
---
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: report, namespace: NS}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec: {template: {spec: {restartPolicy: Never, containers: [{name: r, image: "busybox:1.36"}]}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: NS}
spec:
  template: {spec: {restartPolicy: Never, containers: [{name: m, image: "busybox:1.36"}]}}
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: shop, namespace: NS}
spec: {minAvailable: 1, selector: {matchLabels: {app: shop}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: NS}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, storageClassName: manual, volumeName: pv-NS}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-NS}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /tmp/pv-NS}
  claimRef: {namespace: NS, name: data}
"#;

fn workloads(ns: &str, node_port: u16) -> String {
    WORKLOADS
        .replace("NS", ns)
        .replace("NODEPORT", &node_port.to_string())
}

/// An object as `kubectl get -o json` shows it, without what the cluster assigns.
fn normalized(env: &Env, kind: &str, ns: &str, name: &str) -> Value {
    let text = if ns.is_empty() {
        env.kubectl(&["get", kind, name, "-o", "json"], None)
    } else {
        env.kubectl(&["get", kind, "-n", ns, name, "-o", "json"], None)
    };
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let m = v["metadata"].as_object_mut().unwrap();
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "selfLink",
        "ownerReferences",
    ] {
        m.remove(k);
    }
    if let Some(l) = m.get_mut("labels").and_then(Value::as_object_mut) {
        l.remove("velero.io/backup-name");
        l.remove("velero.io/restore-name");
        if l.is_empty() {
            m.remove("labels");
        }
    }
    if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a.remove("deployment.kubernetes.io/revision");
        a.remove("pv.kubernetes.io/bind-completed");
        if a.is_empty() {
            m.remove("annotations");
        }
    }
    let o = v.as_object_mut().unwrap();
    o.remove("status");
    // A ServiceAccount's token Secret is made anew by the cluster, under a new name.
    if kind == "serviceaccounts" {
        o.remove("secrets");
    }
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    v
}

fn wait_gone(env: &Env, ns: &str) {
    for _ in 0..600 {
        let out = env.kubectl(&["get", "namespaces", "-o", "name"], None);
        if !out.lines().any(|l| l == format!("namespace/{ns}")) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("namespace {ns} was not deleted");
}

const KINDS: &[(&str, &str)] = &[
    ("configmaps", "settings"),
    ("secrets", "db"),
    ("serviceaccounts", "shop"),
    ("roles.rbac.authorization.k8s.io", "reader"),
    ("deployments.apps", "shop"),
    ("statefulsets.apps", "db"),
    ("daemonsets.apps", "agent"),
    ("services", "db"),
    ("ingresses.networking.k8s.io", "shop"),
    ("cronjobs.batch", "report"),
    ("poddisruptionbudgets.policy", "shop"),
    ("persistentvolumeclaims", "data"),
];

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_delete_restore_round_trip() {
    let env = Env::new();
    let ns = "it-rt";
    // Start clean, also when re-run on a cluster that kept a previous run's objects.
    env.kubectl(
        &[
            "delete",
            "namespace",
            ns,
            "it-rt-copy",
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    );
    env.kubectl(
        &[
            "delete",
            "persistentvolume",
            "pv-it-rt",
            "--ignore-not-found",
        ],
        None,
    );
    wait_gone(&env, ns);
    wait_gone(&env, "it-rt-copy");
    env.apply(&workloads(ns, 30081));
    env.wait_for(&["replicasets.apps", "-n", ns], 1);
    env.wait_for(&["pods", "-n", ns, "-l", "app=shop"], 2);
    let before: Vec<Value> = KINDS
        .iter()
        .map(|(k, n)| normalized(&env, k, ns, n))
        .collect();
    let np_before = normalized(&env, "services", ns, "shop-np");
    let pv_before = normalized(&env, "persistentvolumes", "", "pv-it-rt");
    let rb_before = normalized(&env, "rolebindings.rbac.authorization.k8s.io", ns, "reader");

    env.ok(&["backup", "create", "rt", "--include-namespaces", ns]);
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
    env.kubectl(&["delete", "persistentvolume", "pv-it-rt"], None);
    wait_gone(&env, ns);

    let out = env.ok(&[
        "restore",
        "create",
        "rt-1",
        "--from-backup",
        "rt",
        "--preserve-nodeports",
        "--wait",
    ]);
    assert!(out.contains("Completed"), "{out}");
    for ((k, n), b) in KINDS.iter().zip(&before) {
        assert_eq!(
            &normalized(&env, k, ns, n),
            b,
            "{k} {n} differs after restore"
        );
    }
    assert_eq!(
        normalized(&env, "services", ns, "shop-np"),
        np_before,
        "NodePort kept with --preserve-nodeports"
    );
    assert_eq!(
        normalized(&env, "rolebindings.rbac.authorization.k8s.io", ns, "reader"),
        rb_before
    );
    // The PV bound to the claim came along (auto cluster resources) and is back.
    let mut pv_after = normalized(&env, "persistentvolumes", "", "pv-it-rt");
    let mut pv_b = pv_before.clone();
    for v in [&mut pv_after, &mut pv_b] {
        v["spec"]["claimRef"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k == "namespace" || k == "name");
    }
    assert_eq!(pv_after, pv_b);
    // The Job is restored without its old controller-uid; the API server gives it a new one.
    let job: Value = serde_json::from_str(
        &env.kubectl(&["get", "job", "-n", ns, "migrate", "-o", "json"], None),
    )
    .unwrap();
    assert_eq!(job["metadata"]["labels"]["velero.io/restore-name"], "rt-1");
    // One Deployment → one ReplicaSet: its children were not created twice.
    env.wait_for(&["replicasets.apps", "-n", ns], 1);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let rs = env.kubectl(&["get", "replicasets.apps", "-n", ns, "-o", "name"], None);
    assert_eq!(rs.lines().count(), 1, "{rs}");
    let secret: Value =
        serde_json::from_str(&env.kubectl(&["get", "secret", "-n", ns, "db", "-o", "json"], None))
            .unwrap();
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");

    // The results are stored in Velero's layout and readable.
    let dir = env.storage().join("restores/rt-1");
    for f in [
        "restore-rt-1-logs.gz",
        "restore-rt-1-results.gz",
        "restore-rt-1-resource-list.json.gz",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    let rl = read_json_gz(&dir.join("restore-rt-1-resource-list.json.gz"));
    assert!(
        rl["apps/v1/Deployment"]
            .as_array()
            .unwrap()
            .contains(&Value::String(format!("{ns}/shop"))),
        "{rl}"
    );
    let phase = env.ok(&["restore", "get", "rt-1", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Completed");
    let describe = env.ok(&["restore", "describe", "rt-1"]);
    assert!(describe.contains("Backup:  rt"), "{describe}");
    assert!(!env.ok(&["restore", "logs", "rt-1"]).contains("hunter2"));

    // Without --preserve-nodeports the node port is given anew (restore into another namespace).
    env.ok(&[
        "restore",
        "create",
        "rt-2",
        "--from-backup",
        "rt",
        "--namespace-mappings",
        &format!("{ns}:it-rt-copy"),
    ]);
    let np: Value = serde_json::from_str(&env.kubectl(
        &["get", "svc", "-n", "it-rt-copy", "shop-np", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_ne!(np["spec"]["ports"][0]["nodePort"], 30081);
    let rb: Value = serde_json::from_str(&env.kubectl(
        &[
            "get",
            "rolebinding",
            "-n",
            "it-rt-copy",
            "reader",
            "-o",
            "json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(rb["subjects"][0]["namespace"], "it-rt-copy");
    let headless: Value = serde_json::from_str(&env.kubectl(
        &["get", "svc", "-n", "it-rt-copy", "db", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(headless["spec"]["clusterIP"], "None");
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn crds_and_cluster_scoped_objects() {
    let env = Env::new();
    env.apply(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.org}
spec:
  group: example.org
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: it-gadget-reader, labels: {it: crd}}
rules: [{apiGroups: [example.org], resources: [gadgets], verbs: [get]}]
"#,
    );
    env.wait_established("gadgets.example.org");
    env.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: it-crd}\n");
    for _ in 0..100 {
        if env
            .kubectl(
                &["api-resources", "--api-group=example.org", "-o", "name"],
                None,
            )
            .contains("gadgets")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    env.apply("apiVersion: example.org/v1\nkind: Gadget\nmetadata: {name: g1, namespace: it-crd}\nspec: {size: 7}\n");
    env.ok(&["backup", "create", "crd", "--include-namespaces", "it-crd"]);
    env.ok(&[
        "backup",
        "create",
        "cr",
        "--include-resources",
        "clusterroles",
        "--selector",
        "it=crd",
    ]);
    env.kubectl(&["delete", "namespace", "it-crd"], None);
    env.kubectl(&["delete", "crd", "gadgets.example.org"], None);
    env.kubectl(&["delete", "clusterrole", "it-gadget-reader"], None);
    wait_gone(&env, "it-crd");

    // Without its CRD, a custom resource cannot be created: named, and the restore ends
    // PartiallyFailed (exit code 3) without stopping the other objects.
    let out = env.run(&[
        "restore",
        "create",
        "crd-0",
        "--from-backup",
        "crd",
        "--exclude-resources",
        "customresourcedefinitions",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let describe = env.ok(&["restore", "describe", "crd-0"]);
    assert!(
        describe.contains("does not serve example.org/v1 Gadget"),
        "{describe}"
    );
    env.kubectl(&["get", "namespace", "it-crd"], None);
    // The CRD comes back first and is Established before its custom resources.
    env.ok(&["restore", "create", "crd-1", "--from-backup", "crd"]);
    let g: Value = serde_json::from_str(&env.kubectl(
        &[
            "get",
            "gadgets.example.org",
            "-n",
            "it-crd",
            "g1",
            "-o",
            "json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(g["spec"]["size"], 7);
    env.ok(&["restore", "create", "cr-1", "--from-backup", "cr"]);
    env.kubectl(&["get", "clusterrole", "it-gadget-reader"], None);
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn existing_objects_policy_and_dry_run() {
    let env = Env::new();
    let ns = "it-policy";
    env.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: {ns}}}\ndata: {{v: original}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: same, namespace: {ns}}}\ndata: {{v: same}}\n"
    ));
    env.ok(&[
        "backup",
        "create",
        "pol",
        "--include-namespaces",
        ns,
        "--include-resources",
        "configmaps,namespaces",
    ]);
    env.kubectl(
        &[
            "patch",
            "configmap",
            "-n",
            ns,
            "c",
            "-p",
            r#"{"data":{"v":"changed"}}"#,
        ],
        None,
    );
    env.kubectl(&["delete", "configmap", "-n", ns, "same"], None);
    let rv_before = env.kubectl(
        &[
            "get",
            "configmaps",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ],
        None,
    );

    // Dry run: per-object actions with a diff, and nothing changes.
    let out = env.ok(&["restore", "create", "--from-backup", "pol", "--dry-run"]);
    assert!(
        out.contains("skip (exists, differs)") && out.contains("skip (exists, identical)"),
        "{out}"
    );
    assert!(
        out.contains("-  v: changed") && out.contains("+  v: original"),
        "{out}"
    );
    assert!(out.contains("Nothing was changed"), "{out}");
    let json: Value = serde_json::from_str(&env.ok(&[
        "restore",
        "create",
        "--from-backup",
        "pol",
        "--dry-run",
        "--existing-resource-policy",
        "update",
        "-o",
        "json",
    ]))
    .unwrap();
    let actions: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"would-update") && actions.contains(&"would-create"),
        "{json}"
    );
    let rv_after = env.kubectl(
        &[
            "get",
            "configmaps",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ],
        None,
    );
    assert_eq!(rv_before, rv_after, "a dry run changed the cluster");
    assert!(
        !env.storage().join("restores").exists(),
        "a dry run wrote results"
    );

    // Policy none: the changed object stays, with a warning.
    env.ok(&["restore", "create", "pol-none", "--from-backup", "pol"]);
    assert_eq!(
        env.kubectl(
            &["get", "cm", "-n", ns, "c", "-o", "jsonpath={.data.v}"],
            None
        ),
        "changed"
    );
    let results = read_json_gz(
        &env.storage()
            .join("restores/pol-none/restore-pol-none-results.gz"),
    );
    assert_eq!(
        results["warnings"]["namespaces"][ns],
        serde_json::json!([
            "could not restore, configmaps it-policy/c already exists. Warning: the in-cluster version is different than the backed-up version"
        ]),
        "{results}"
    );
    // Issue 11, item 6: a re-restore over existing, changed objects compares them for
    // equality only (no diff is rendered or kept outside a dry run, so a re-restore over a
    // full cluster stays in memory bounds); the warning says it differs, and no diff text
    // reaches the results, the logs or the output.
    let logs = env.ok(&["restore", "logs", "pol-none"]);
    let details = env.ok(&["restore", "describe", "pol-none", "--details"]);
    let structured = env.ok(&[
        "restore",
        "create",
        "pol-none-json",
        "--from-backup",
        "pol",
        "-o",
        "json",
    ]);
    assert!(
        logs.contains("the in-cluster version is different than the backed-up version"),
        "{logs}"
    );
    for (what, text) in [
        ("results", results.to_string()),
        ("logs", logs),
        ("describe", details),
        ("-o json", structured),
    ] {
        assert!(
            !text.contains("changed") && !text.contains("original") && !text.contains("live/"),
            "{what} of a restore (not a dry run) carries a diff: {text}"
        );
    }
    // Policy update: it goes back to the backed-up state.
    env.ok(&[
        "restore",
        "create",
        "pol-up",
        "--from-backup",
        "pol",
        "--existing-resource-policy",
        "update",
    ]);
    assert_eq!(
        env.kubectl(
            &["get", "cm", "-n", ns, "c", "-o", "jsonpath={.data.v}"],
            None
        ),
        "original"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn resource_modifiers_from_file_and_configmap() {
    let env = Env::new();
    let ns = "it-mod";
    env.apply(&workloads(ns, 30082));
    env.ok(&[
        "backup",
        "create",
        "mod",
        "--include-namespaces",
        ns,
        "--include-resources",
        "deployments,configmaps,namespaces",
    ]);
    let rules = "version: v1\nresourceModifierRules:\n- conditions:\n    groupResource: deployments.apps\n    resourceNameRegex: ^shop$\n  patches:\n  - operation: replace\n    path: /spec/replicas\n    value: \"5\"\n";
    let f = env.dir.path().join("mods.yaml");
    std::fs::write(&f, rules).unwrap();
    env.ok(&[
        "restore",
        "create",
        "mod-1",
        "--from-backup",
        "mod",
        "--namespace-mappings",
        &format!("{ns}:it-mod-a"),
        "--resource-modifier-file",
        f.to_str().unwrap(),
    ]);
    assert_eq!(
        env.kubectl(
            &[
                "get",
                "deploy",
                "-n",
                "it-mod-a",
                "shop",
                "-o",
                "jsonpath={.spec.replicas}"
            ],
            None
        ),
        "5"
    );
    // The same rules from a ConfigMap in the lifeboat namespace, as Velero reads them.
    env.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: velero}\n");
    env.kubectl(
        &[
            "delete",
            "configmap",
            "-n",
            "velero",
            "it-mods",
            "--ignore-not-found",
        ],
        None,
    );
    env.kubectl(
        &[
            "create",
            "configmap",
            "-n",
            "velero",
            "it-mods",
            &format!("--from-file=rules.yaml={}", f.display()),
        ],
        None,
    );
    env.ok(&[
        "restore",
        "create",
        "mod-2",
        "--from-backup",
        "mod",
        "--namespace-mappings",
        &format!("{ns}:it-mod-b"),
        "--resource-modifier-configmap",
        "it-mods",
    ]);
    assert_eq!(
        env.kubectl(
            &[
                "get",
                "deploy",
                "-n",
                "it-mod-b",
                "shop",
                "-o",
                "jsonpath={.spec.replicas}"
            ],
            None
        ),
        "5"
    );
    // An invalid document is refused with its line and field, before anything is created.
    std::fs::write(
        &f,
        "version: v1\nresourceModifierRules:\n- conditions:\n    groupResourc: deployments.apps\n",
    )
    .unwrap();
    let err = env.fails(&[
        "restore",
        "create",
        "mod-3",
        "--from-backup",
        "mod",
        "--namespace-mappings",
        &format!("{ns}:it-mod-c"),
        "--resource-modifier-file",
        f.to_str().unwrap(),
    ]);
    assert!(
        err.contains("groupResourc") && err.contains("line 4"),
        "{err}"
    );
    let nss = env.kubectl(&["get", "namespaces", "-o", "name"], None);
    assert!(!nss.contains("it-mod-c"));
}

fn fake_backup(env: &Env, name: &str, phase: &str, tarball: &[u8]) {
    let dir = env.storage().join(format!("backups/{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.tar.gz")), tarball).unwrap();
    std::fs::write(
        dir.join("velero-backup.json"),
        format!(r#"{{"kind":"Backup","apiVersion":"velero.io/v1","metadata":{{"name":"{name}","namespace":"velero"}},"spec":{{}},"status":{{"phase":"{phase}"}}}}"#),
    )
    .unwrap();
}

/// A gzip'd tar of regular files, names written byte for byte (hostile ones included).
fn gz_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

const VERSION: (&str, &[u8]) = ("metadata/version", b"1.1.0\n");
const HOSTILE_NS: (&str, &[u8]) = (
    "resources/namespaces/cluster/it-hostile.json",
    br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"it-hostile"}}"#,
);

/// Each hostile or damaged archive is refused by `restore create` with its reason, and
/// nothing is created: the namespace that comes first in the archive does not appear.
/// (Every kind of hostile entry is a row of the extractor's own table in
/// lifeboat-engine's extract.rs; these rows show the refusal reaches the user whole.)
#[rstest::rstest]
#[case::path_traversal(
    "trav",
    gz_tar(&[VERSION, HOSTILE_NS, ("resources/configmaps/namespaces/it-hostile/../../../../x.json", b"{}")]),
    "hostile or unexpected path \"resources/configmaps/namespaces/it-hostile/../../../../x.json\""
)]
#[case::absolute_path(
    "abs",
    gz_tar(&[VERSION, HOSTILE_NS, ("/tmp/x.json", b"{}")]),
    "hostile or unexpected path \"/tmp/x.json\""
)]
#[case::bad_json(
    "badjson",
    gz_tar(&[VERSION, HOSTILE_NS, ("resources/configmaps/namespaces/it-hostile/c.json", b"{nope")]),
    "invalid JSON at \"resources/configmaps/namespaces/it-hostile/c.json\""
)]
#[case::no_version(
    "nover",
    gz_tar(&[HOSTILE_NS]),
    "no metadata/version as its first entry"
)]
#[case::unsupported_version(
    "v2",
    gz_tar(&[("metadata/version", b"2.0.0\n"), HOSTILE_NS]),
    "format version \"2.0.0\""
)]
#[case::truncated(
    "trunc",
    gz_tar(&[VERSION, HOSTILE_NS])[..40].to_vec(),
    "corrupt or truncated"
)]
// Issue 12 item 4 / issue 11 item 4: an item contradicting its path (a ClusterRoleBinding
// stored as a Secret) refuses the archive before the namespace before it is created.
#[case::item_contradicting_its_path(
    "contra",
    gz_tar(&[VERSION, HOSTILE_NS, ("resources/secrets/namespaces/it-hostile/evil.json", br#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"evil"}}"#)]),
    "item \"resources/secrets/namespaces/it-hostile/evil.json\" cannot be restored: apiVersion is \"rbac.authorization.k8s.io/v1\" but its path says group \"\""
)]
// Issue 11 item 4: a name that would change the meaning of a REST path.
#[case::name_not_a_kubernetes_name(
    "qname",
    gz_tar(&[VERSION, HOSTILE_NS, ("resources/configmaps/namespaces/it-hostile/x?dryRun=All.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x?dryRun=All","namespace":"it-hostile"}}"#)]),
    "name \"x?dryRun=All\" is not a valid Kubernetes name"
)]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn hostile_backup_is_refused_and_creates_nothing(
    #[case] name: &str,
    #[case] tarball: Vec<u8>,
    #[case] want: &str,
) {
    let env = Env::new();
    fake_backup(&env, name, "Completed", &tarball);
    let err = env.fails(&["restore", "create", "--from-backup", name]);
    assert!(err.contains(want), "{name}: {err}");
    let nss = env.kubectl(&["get", "namespaces", "-o", "name"], None);
    assert!(
        !nss.contains("it-hostile"),
        "{name}: a namespace was created from a refused archive"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_of_an_unfinished_backup_is_refused() {
    let env = Env::new();
    fake_backup(&env, "running", "InProgress", &gz_tar(&[VERSION]));
    let err = env.fails(&["restore", "create", "--from-backup", "running"]);
    assert!(
        err.contains("InProgress") && err.contains("Completed"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_of_a_missing_backup_names_it() {
    let env = Env::new();
    let err = env.fails(&["restore", "create", "--from-backup", "no-such-backup"]);
    assert!(
        err.contains("no-such-backup") && err.contains("not found"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_into_an_invalid_namespace_name_is_refused() {
    let env = Env::new();
    fake_backup(&env, "fine", "Completed", &gz_tar(&[VERSION, HOSTILE_NS]));
    let err = env.fails(&[
        "restore",
        "create",
        "--from-backup",
        "fine",
        "--namespace-mappings",
        "it-hostile:Bad_NS",
    ]);
    assert!(
        err.contains("invalid namespace mapping it-hostile:Bad_NS")
            && err.contains("lower-case letters"),
        "{err}"
    );
    let nss = env.kubectl(&["get", "namespaces", "-o", "name"], None);
    assert!(!nss.contains("it-hostile"), "{nss}");
}

/// Issue 12, item 2: a restore of ~200 namespaces at once lost pods — 500 ServerTimeout
/// "No API token found for service account default", the create's retry (14 s) over
/// before the token controller of a small control plane caught up. A pod now waits for
/// its namespace's token (for minutes, reported in the restore's log): 200 namespaces
/// with a pod each restore in one run with no pod error.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn two_hundred_new_namespaces_get_their_pods() {
    const N: usize = 200;
    let env = Env::new();
    let source: Vec<String> = (0..N).map(|i| format!("it-many-{i:03}")).collect();
    let target: Vec<String> = (0..N).map(|i| format!("it-manyr-{i:03}")).collect();
    let tokens_in = |prefix: &str| {
        env.kubectl(
            &[
                "get",
                "secrets",
                "-A",
                "--field-selector",
                "type=kubernetes.io/service-account-token",
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}{\"\\n\"}{end}",
            ],
            None,
        )
        .lines()
        .filter(|ns| ns.strip_prefix(prefix).is_some_and(|r| r.len() == 3))
        .count()
    };
    let mut yaml = String::new();
    for ns in &source {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        ));
    }
    env.apply(&yaml);
    // The source pods need their namespaces' tokens too (kubectl does not wait for them).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while tokens_in("it-many-") < N {
        assert!(
            std::time::Instant::now() < deadline,
            "the token controller made {} of {N} tokens in 5 minutes",
            tokens_in("it-many-")
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let mut pods = String::new();
    for ns in &source {
        pods.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: app, namespace: {ns}, labels: {{it: many}}}}\nspec: {{containers: [{{name: app, image: registry.invalid/app:1}}]}}\n"
        ));
    }
    env.apply(&pods);

    env.ok(&[
        "backup",
        "create",
        "many",
        "--include-namespaces",
        "it-many-*",
        "--include-resources",
        "pods",
        "--wait",
    ]);
    let mappings = source
        .iter()
        .zip(&target)
        .map(|(s, t)| format!("{s}:{t}"))
        .collect::<Vec<_>>()
        .join(",");
    let out = env.run(&[
        "restore",
        "create",
        "many-r",
        "--from-backup",
        "many",
        "--namespace-mappings",
        &mappings,
        "--wait",
    ]);
    let logs = env.ok(&["restore", "logs", "many-r"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}\nlogs:\n{logs}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = env.kubectl(
        &[
            "get",
            "pods",
            "-A",
            "-l",
            "it=many",
            "-o",
            "jsonpath={range .items[*]}{.metadata.namespace}{\"\\n\"}{end}",
        ],
        None,
    );
    let in_targets = restored
        .lines()
        .filter(|ns| ns.starts_with("it-manyr-"))
        .count();
    assert_eq!(in_targets, N, "pods restored");
    for ns in source.iter().chain(&target) {
        env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
    }
}

/// Issue 12, item 3: a restore of a backup with cluster resources reported errors for
/// `componentstatuses` (405 MethodNotAllowed), which no restore can create. What the
/// cluster serves without `create` is now skipped with a one-line note; what it serves
/// without `list` is left out of a backup with a note.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn what_cannot_be_created_is_skipped_with_a_note() {
    let env = Env::new();
    env.ok(&[
        "backup",
        "create",
        "cs",
        "--include-resources",
        "componentstatuses",
        "--include-cluster-resources=true",
        "--wait",
    ]);
    let backup_logs = env.ok(&["backup", "logs", "cs"]);
    assert!(
        backup_logs.contains("not backed up, the API server does not allow listing them:")
            && backup_logs.contains("tokenreviews.authentication.k8s.io"),
        "{backup_logs}"
    );
    let tar = read_tarball(&env.storage().join("backups/cs/cs.tar.gz"));
    let stored = tar
        .names
        .iter()
        .filter(|n| n.starts_with("resources/componentstatuses/cluster/"))
        .count();
    assert!(stored > 0, "{:?}", tar.names);

    let out = env.run(&["restore", "create", "cs-r", "--from-backup", "cs", "--wait"]);
    let logs = env.ok(&["restore", "logs", "cs-r"]);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(
        logs.contains(&format!(
            "componentstatuses: {stored} object(s) not restored: the API server does not allow creating them"
        )),
        "{logs}"
    );
    assert!(!logs.contains("405"), "{logs}");
}
