//! Backups that Velero itself wrote restore (issue 13, item 6). The fixtures in
//! `tests/fixtures/velero/backups/` come from `tests/fixtures/velero/gen/main.go`, which
//! writes them with the encoders Velero uses (Go's archive/tar with Velero's headers,
//! compress/gzip, encoding/json of each item, the Kubernetes serializer's layout of the
//! Backup): format 1.1.0 with every item twice (unversioned and `v1-preferredversion`), and
//! the older format 1 with every item once. Velero quirks they carry: `<`, `>` and `&`
//! escaped as `\u003c`, `\u003e`, `\u0026` in the items' JSON; a PAX header for an item
//! path longer than USTAR allows; header times with nanoseconds rounded by Go's tar
//! writer; `spec.metadata: {}` and `spec.hooks: {}` in `velero-backup.json`; gz'd metadata
//! files that hold `null`; a Service's clusterIP from the source cluster's range (outside
//! the dev cluster's 10.96.0.0/16: a restore that kept it would be refused).

use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/velero/backups")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn get(env: &Env, kind: &str, ns: &str, name: &str) -> Value {
    let mut args = vec!["get", kind, name, "-o", "json"];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    serde_json::from_str(&env.kubectl(&args, None)).unwrap()
}

/// Restores the Velero-made backup `name` (namespace `ns`, ClusterRole `role`) and checks
/// every object against what the fixture stored.
fn restores_as_stored(name: &str, ns: &str, role: &str, format: &str) {
    let env = Env::new();
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
    env.kubectl(&["delete", "clusterrole", role, "--ignore-not-found"], None);
    copy_dir(&fixture(name), &env.storage().join("backups").join(name));

    // lifeboat lists and describes it as a backup like its own.
    let listed: Value =
        serde_json::from_str(&env.ok(&["backup", "get", name, "-o", "json"])).unwrap();
    assert_eq!(listed["status"]["phase"], "Completed", "{listed}");
    assert_eq!(listed["spec"]["includedNamespaces"], json!([ns]));
    if !format.is_empty() {
        assert_eq!(listed["status"]["formatVersion"], format);
    }

    let restore = format!("r-{name}");
    let out = env.ok(&[
        "restore",
        "create",
        &restore,
        "--from-backup",
        name,
        "--wait",
    ]);
    assert!(out.contains("Completed"), "{out}");
    let r: Value =
        serde_json::from_str(&env.ok(&["restore", "get", &restore, "-o", "json"])).unwrap();
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    assert_eq!(r["status"]["progress"]["itemsRestored"], 8, "{r}");

    let n = get(&env, "namespace", "", ns);
    assert_eq!(n["metadata"]["labels"]["team"], "shop");
    let cm = get(&env, "configmap", ns, "app-config");
    assert_eq!(
        cm["data"],
        json!({"index.html": "<p>Fish & chips > 3 €</p>", "settings.json": "{\"mode\":\"a<b\"}", "empty": ""}),
        "the escaped <, > and & of Velero's JSON come back as the characters"
    );
    assert_eq!(cm["metadata"]["labels"]["app"], "web");
    assert_eq!(cm["metadata"]["labels"]["velero.io/backup-name"], name);
    assert_eq!(
        cm["metadata"]["labels"]["velero.io/restore-name"],
        restore.as_str()
    );
    assert_ne!(
        cm["metadata"]["uid"], "6a1c54d1-0d2b-4c52-9a55-222222222222",
        "a new object, not the source's uid"
    );
    let long = format!("{}end", "a-very-long-name-".repeat(11));
    assert_eq!(
        get(&env, "configmap", ns, &long)["data"],
        json!({"k": "v"}),
        "the item behind a PAX header"
    );
    assert_eq!(
        get(&env, "secret", ns, "app-secret")["data"]["password"],
        "dmVsZXJvLW1hZGUtbWFya2Vy"
    );
    get(&env, "serviceaccount", ns, "app");
    let svc = get(&env, "service", ns, "web");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert!(
        ip.starts_with("10.96."),
        "the source cluster's clusterIP is dropped, this cluster assigns one: {ip}"
    );
    let d = get(&env, "deployment.apps", ns, "web");
    assert_eq!(d["spec"]["replicas"], 2);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.invalid/web:1.4.2");
    assert_eq!(
        c["env"][0],
        json!({"name": "GREETING", "value": "a<b & c>d"})
    );
    // (Its deployment.kubernetes.io/revision annotation is the controller-manager's to
    // set: a new Deployment starts again at 1, as after a Velero restore.)
    assert_eq!(d["metadata"]["labels"]["app"], "web");
    let cr = get(&env, "clusterrole", "", role);
    assert_eq!(
        cr["rules"],
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}])
    );

    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
    env.kubectl(&["delete", "clusterrole", role], None);
}

#[test]
#[ignore = "needs the dev cluster: scripts/test.sh"]
fn a_backup_velero_wrote_in_format_1_1_0_restores_as_stored() {
    restores_as_stored(
        "velero-made-110",
        "it-velero-made-110",
        "it-velero-made-110-reader",
        "1.1.0",
    );
}

#[test]
#[ignore = "needs the dev cluster: scripts/test.sh"]
fn a_backup_velero_wrote_in_the_older_unversioned_format_restores_as_stored() {
    restores_as_stored(
        "velero-made-100",
        "it-velero-made-100",
        "it-velero-made-100-reader",
        "",
    );
}
