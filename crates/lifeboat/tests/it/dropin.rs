//! Issue 13: what a script written for `velero` needs besides the verbs it had —
//! `backup wait` / `restore wait` that really wait, VolumeSnapshotLocation documents and
//! verbs, the DR guides' `install` line, and an orderedResources key the cluster does not
//! serve.

use std::process::Stdio;

use crate::server_fixture::*;
use crate::support::*;

/// A namespace with two ConfigMaps and a Secret.
fn app(env: &Env, ns: &str) {
    env.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm1, namespace: {ns}}}\ndata: {{a: b}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm2, namespace: {ns}}}\ndata: {{a: b}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: db-credentials, namespace: {ns}}}\nstringData: {{password: not-a-real-one}}\n"
    ));
}

/// The local mode: a backup run by `backup create` appears in the storage location when it
/// ends; `backup wait` waits for it (started before the backup), then reads its phase.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_wait_and_restore_wait_follow_the_storage_location() {
    let env = Env::new();
    app(&env, "dropin-wait");
    // The waiter starts first: the backup is not there yet.
    let waiter = env
        .cmd()
        .args(["backup", "wait", "w1", "--timeout", "120s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    env.ok(&[
        "backup",
        "create",
        "w1",
        "--include-namespaces",
        "dropin-wait",
    ]);
    let out = waiter.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "Backup \"w1\": Completed.", "{stderr}");
    assert!(
        stderr.contains("Backup \"w1\" is not in storage location \"default\" yet; waiting"),
        "{stderr}"
    );
    // A stored backup: at once. Several names: one line each.
    let out = env.ok(&["backup", "wait", "w1", "w1"]);
    assert_eq!(out.lines().count(), 2, "{out}");

    // A name that never comes: exit 4 after the timeout, saying what it looked at.
    let start = std::time::Instant::now();
    let out = env.run(&["backup", "wait", "no-such-backup", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(start.elapsed() >= std::time::Duration::from_secs(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .contains("Backup \"no-such-backup\" is not in storage location \"default\" after 2s"),
        "{stdout}"
    );
    // A bad timeout is named.
    let err = env.fails(&["backup", "wait", "w1", "--timeout", "soon"]);
    assert!(err.contains("--timeout: "), "{err}");

    env.ok(&[
        "restore",
        "create",
        "rw1",
        "--from-backup",
        "w1",
        "--namespace-mappings",
        "dropin-wait:dropin-wait-restored",
    ]);
    let out = env.ok(&["restore", "wait", "rw1"]);
    assert_eq!(out.trim(), "Restore \"rw1\": Completed.");
    let out = env.run(&["restore", "wait", "no-such-restore", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(4));
    env.kubectl(
        &[
            "delete",
            "namespace",
            "dropin-wait",
            "dropin-wait-restored",
            "--wait=false",
        ],
        None,
    );
}

/// The in-cluster mode: a Backup and a Restore handed to the server, waited for by name.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_wait_and_restore_wait_follow_the_servers_objects() {
    let fx = shared();
    let env = &fx.env;
    let f = env.dir.path().join("dropin-wait.yaml");
    std::fs::write(
        &f,
        format!(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: waited, namespace: {NS}}}\nspec:\n  includedNamespaces: [{APP}]\n"
        ),
    )
    .unwrap();
    env.ok(&["-n", NS, "apply", "-f", f.to_str().unwrap(), "--server"]);
    let out = env.ok(&[
        "-n",
        NS,
        "backup",
        "wait",
        "waited",
        "--server",
        "--timeout",
        "120s",
    ]);
    assert_eq!(out.trim(), "Backup \"waited\": Completed.");
    assert_eq!(
        phase(&fx.get(&["backups.lifeboat.dev", "waited"])),
        "Completed"
    );

    std::fs::write(
        &f,
        format!(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {{name: waited-r, namespace: {NS}}}\nspec:\n  backupName: waited\n  namespaceMapping: {{{APP}: {APP}-waited}}\n"
        ),
    )
    .unwrap();
    env.ok(&["-n", NS, "apply", "-f", f.to_str().unwrap(), "--server"]);
    let out = env.ok(&[
        "-n",
        NS,
        "restore",
        "wait",
        "waited-r",
        "--server",
        "--timeout",
        "120s",
    ]);
    assert_eq!(out.trim(), "Restore \"waited-r\": Completed.");
    let cm = json(
        env,
        &[
            "-n",
            &format!("{APP}-waited"),
            "get",
            "configmap",
            "settings",
        ],
    );
    assert_eq!(cm["data"]["mode"], "prod");

    // An object that does not exist is an error at once, naming it (not a timeout).
    let err = env.fails(&["-n", NS, "backup", "wait", "nope", "--server"]);
    assert!(
        err.contains(&format!("backup \"nope\" not found in namespace {NS}")),
        "{err}"
    );
}

/// 002's storage section: a BackupStorageLocation and a VolumeSnapshotLocation in one
/// file. Both are kept — locally, and in the cluster with --server — and shown.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn apply_of_a_storage_and_a_snapshot_location() {
    let fx = shared(); // the CRDs are installed
    let env = Env::new();
    let doc = "apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata:
  name: default
  namespace: velero
spec:
  provider: alibabacloud
  objectStorage:
    bucket: velero-backup-bucket
    prefix: cluster-prod
  config:
    region: cn-hangzhou
---
apiVersion: velero.io/v1
kind: VolumeSnapshotLocation
metadata:
  name: default
  namespace: velero
spec:
  provider: alibabacloud
  config:
    region: cn-hangzhou
";
    // Not `locations.yaml`: that is this Env's config file.
    let f = env.dir.path().join("bsl-vsl.yaml");
    std::fs::write(&f, doc).unwrap();
    let out = env.ok(&["apply", "-f", f.to_str().unwrap()]);
    assert!(
        out.contains("Backup storage location \"default\" configured"),
        "{out}"
    );
    assert!(
        out.contains("Volume snapshot location \"default\" configured"),
        "{out}"
    );
    let bsl = env.ok(&[
        "location",
        "get",
        "default",
        "-o",
        "jsonpath={.spec.objectStorage.prefix}",
    ]);
    assert_eq!(bsl, "cluster-prod");
    let vsl: serde_json::Value =
        serde_json::from_str(&env.ok(&["snapshot-location", "get", "default", "-o", "json"]))
            .unwrap();
    assert_eq!(vsl["apiVersion"], "velero.io/v1");
    assert_eq!(vsl["kind"], "VolumeSnapshotLocation");
    assert_eq!(vsl["spec"]["config"]["region"], "cn-hangzhou");
    // Velero's verbs beside the document.
    env.ok(&[
        "snapshot-location",
        "create",
        "aws-east",
        "--provider",
        "aws",
        "--config",
        "region=us-east-1",
    ]);
    let table = env.ok(&["snapshot-location", "get"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("aws-east") && table.contains("region=us-east-1"),
        "{table}"
    );
    assert!(table.contains("alibabacloud"), "{table}");
    let err = env.fails(&[
        "snapshot-location",
        "create",
        "aws-east",
        "--provider",
        "aws",
    ]);
    assert!(
        err.contains("volume snapshot location \"aws-east\" already exists"),
        "{err}"
    );

    // A field Velero does not have is named, and nothing of the file is saved.
    let typo = env.dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: velero.io/v1\nkind: VolumeSnapshotLocation\nmetadata: {name: typo}\nspec:\n  provider: aws\n  regoin: us-east-1\n",
    )
    .unwrap();
    let err = env.fails(&["apply", "-f", typo.to_str().unwrap()]);
    assert!(err.contains("VolumeSnapshotLocation \"typo\""), "{err}");
    assert!(err.contains("unknown field `regoin`"), "{err}");
    env.fails(&["snapshot-location", "get", "typo"]);

    // The same file to the cluster.
    let ns = "dropin-locations-it";
    let _ = fx;
    env.kubectl(&["create", "namespace", ns], None);
    let in_ns = doc.replace("namespace: velero", &format!("namespace: {ns}"));
    std::fs::write(&f, in_ns).unwrap();
    env.ok(&["-n", ns, "apply", "-f", f.to_str().unwrap(), "--server"]);
    let got = json(
        &env,
        &[
            "-n",
            ns,
            "get",
            "volumesnapshotlocations.lifeboat.dev",
            "default",
        ],
    );
    assert_eq!(got["spec"]["provider"], "alibabacloud");
    let bsl = json(
        &env,
        &[
            "-n",
            ns,
            "get",
            "backupstoragelocations.lifeboat.dev",
            "default",
        ],
    );
    assert_eq!(
        bsl["spec"]["objectStorage"]["bucket"],
        "velero-backup-bucket"
    );
    let listed: serde_json::Value = serde_json::from_str(&env.ok(&[
        "-n",
        ns,
        "snapshot-location",
        "get",
        "--server",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(listed["items"][0]["metadata"]["name"], "default");
    assert_eq!(
        listed["items"][0]["spec"]["config"]["region"],
        "cn-hangzhou"
    );
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

/// 002's `velero install` line (and 003's flags): accepted; the flags lifeboat does not act
/// on warn one line each and do not stop the install; bucket, prefix, provider, config and
/// credentials configure the location it installs.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn install_takes_the_guides_flags() {
    let (_alone, env) = standby_cluster();
    let creds = env.dir.path().join("credentials-velero");
    std::fs::write(
        &creds,
        "ALIBABA_CLOUD_ACCESS_KEY_ID=not-a-key\nALIBABA_CLOUD_ACCESS_KEY_SECRET=not-a-secret\n",
    )
    .unwrap();
    let out = env.run(&[
        "-n",
        STANDBY_NS,
        "install",
        "--provider",
        "alibabacloud",
        "--plugins",
        "registry.cn-hangzhou.aliyuncs.com/acs/velero-plugin-alibabacloud:v1.8",
        "--bucket",
        "velero-backup-bucket",
        "--prefix",
        "cluster-prod",
        "--secret-file",
        creds.to_str().unwrap(),
        "--backup-location-config",
        "region=cn-hangzhou",
        "--snapshot-location-config",
        "region=cn-hangzhou",
        "--use-volume-snapshots=true",
        "--use-node-agent",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{stderr}");
    assert!(warnings[0].contains("--plugins"), "{stderr}");
    assert!(
        warnings[1].starts_with("warning: not supported yet: volume snapshots"),
        "{stderr}"
    );
    // The node agent is installed; the guide's line gives no repository key, which is
    // said (volume backups fail until one is given).
    assert!(
        warnings[2].starts_with("warning: the node agent has no repository key"),
        "{stderr}"
    );
    let ds = json(&env, &["-n", STANDBY_NS, "get", "daemonset", "node-agent"]);
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "node-agent"
    );
    // No secret value on the terminal.
    assert!(!stdout.contains("not-a-secret") && !stderr.contains("not-a-secret"));

    let bsl = json(
        &env,
        &[
            "-n",
            STANDBY_NS,
            "get",
            "backupstoragelocations.lifeboat.dev",
            "default",
        ],
    );
    assert_eq!(bsl["spec"]["provider"], "alibabacloud");
    assert_eq!(
        bsl["spec"]["objectStorage"]["bucket"],
        "velero-backup-bucket"
    );
    assert_eq!(bsl["spec"]["objectStorage"]["prefix"], "cluster-prod");
    assert_eq!(bsl["spec"]["config"]["region"], "cn-hangzhou");
    assert_eq!(bsl["spec"]["credential"]["name"], "cloud-credentials");
    let secret = json(
        &env,
        &["-n", STANDBY_NS, "get", "secret", "cloud-credentials"],
    );
    assert!(secret["data"]["cloud"].is_string());
    let vsl = env.ok(&["-n", STANDBY_NS, "snapshot-location", "get", "--server"]);
    assert!(
        vsl.contains("default") && vsl.contains("region=cn-hangzhou"),
        "{vsl}"
    );

    // Uninstall finds the snapshot location too.
    env.ok(&["-n", STANDBY_NS, "uninstall", "--force"]);
    let left = env.kubectl(&["get", "crd", "-o", "name"], None);
    assert!(
        !left.contains("volumesnapshotlocations.lifeboat.dev"),
        "{left}"
    );
    let agent = env.kubectl(
        &[
            "-n",
            STANDBY_NS,
            "get",
            "daemonset",
            "node-agent",
            "--ignore-not-found",
            "-o",
            "name",
        ],
        None,
    );
    assert!(
        agent.trim().is_empty(),
        "uninstall removes the node agent: {agent}"
    );
}

/// 004's hourly-critical Schedule writes `orderedResources: {v1/Secret: ..., v1/ConfigMap:
/// ...}`; Velero orders by plural names and ignores such keys. A backup with them, and a
/// key the cluster does not serve, is Completed with warnings, ordered as asked.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn ordered_resources_with_a_key_not_served_is_completed_with_warnings() {
    let env = Env::new();
    app(&env, "dropin-order");
    let f = env.dir.path().join("ordered.yaml");
    std::fs::write(
        &f,
        "apiVersion: velero.io/v1
kind: Backup
metadata: {name: ordered, namespace: velero}
spec:
  includedNamespaces: [dropin-order]
  orderedResources:
    v1/Secret: \"dropin-order/db-credentials\"
    sprockets.unserved.example.com: \"dropin-order/w1\"
    configmaps: \"dropin-order/cm2,dropin-order/cm1\"
",
    )
    .unwrap();
    let out = env.ok(&["apply", "-f", f.to_str().unwrap()]);
    assert!(
        out.contains("Backup completed with status: Completed"),
        "{out}"
    );
    let b: serde_json::Value =
        serde_json::from_str(&env.ok(&["backup", "get", "ordered", "-o", "json"])).unwrap();
    assert_eq!(b["status"]["phase"], "Completed");
    let results = read_json_gz(&env.storage().join("backups/ordered/ordered-results.gz"));
    // The two keys' warnings; other tests running at the same time can add one of their
    // own (a CRD of theirs removed while this backup lists every type).
    assert!(
        b["status"]["warnings"].as_u64().is_some_and(|n| n >= 2),
        "{b}\n{results}"
    );
    let warnings = results["warnings"]["cluster"].to_string();
    assert!(
        warnings.contains("orderedResources key \\\"sprockets.unserved.example.com\\\" names no resource the cluster serves; it is ignored"),
        "{warnings}"
    );
    assert!(
        warnings.contains("orderedResources key \\\"v1/Secret\\\" is read as secrets; Velero matches only plural resource names"),
        "{warnings}"
    );
    let describe = env.ok(&["backup", "describe", "ordered", "--details"]);
    assert!(
        describe.contains("sprockets.unserved.example.com"),
        "{describe}"
    );
    let log = env.ok(&["backup", "logs", "ordered"]);
    assert!(log.contains("sprockets.unserved.example.com"), "{log}");
    // Ordered as asked: cm2 before cm1.
    let t = read_tarball(&env.storage().join("backups/ordered/ordered.tar.gz"));
    let cms: Vec<&String> = t
        .names
        .iter()
        .filter(|n| {
            n.starts_with("resources/configmaps/namespaces/dropin-order/") && n.contains("/cm")
        })
        .collect();
    assert!(
        cms[0].ends_with("/cm2.json") && cms[1].ends_with("/cm1.json"),
        "{cms:?}"
    );
    assert!(
        t.names
            .iter()
            .any(|n| n.ends_with("secrets/namespaces/dropin-order/db-credentials.json"))
    );
    env.kubectl(
        &["delete", "namespace", "dropin-order", "--wait=false"],
        None,
    );
}

/// `backup get --sort-by`, as a guide writes it, and the error of a key it does not take.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_get_sorts_as_asked() {
    let env = Env::new();
    app(&env, "dropin-sort");
    for n in ["s-b", "s-a", "s-c"] {
        env.ok(&["backup", "create", n, "--include-namespaces", "dropin-sort"]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let names = |args: &[&str]| {
        let mut a = vec!["backup", "get"];
        a.extend(args);
        a.extend(["-o", "jsonpath={.items[*].metadata.name}"]);
        env.ok(&a)
    };
    assert_eq!(
        names(&["--sort-by=.metadata.creationTimestamp"]),
        "s-b s-a s-c"
    );
    assert_eq!(names(&["--sort-by", "name"]), "s-a s-b s-c");
    assert_eq!(names(&[]), "s-b s-a s-c");
    let table = env.ok(&["backup", "get", "--sort-by=.metadata.name"]);
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(rows, ["s-a", "s-b", "s-c"]);
    let err = env.fails(&["backup", "get", "--sort-by", ".status.size"]);
    assert!(
        err.contains("--sort-by \".status.size\": a backup list sorts by .metadata.name (name)"),
        "{err}"
    );
    let restores = env.fails(&["restore", "get", "--sort-by", "expiration"]);
    assert!(restores.contains("a restore list sorts by"), "{restores}");
    env.kubectl(
        &["delete", "namespace", "dropin-sort", "--wait=false"],
        None,
    );
}
