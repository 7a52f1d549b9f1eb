//! `lifeboat audit` on a real control plane: a namespace that breaks each rule once, on
//! the second control plane (held alone: the rules about the whole cluster — its
//! locations, its etcd snapshots, its StorageClasses — must see only this test's).
//!
//! Not here: `immediate-binding-multi-zone` needs nodes in two zones, and the test
//! clusters have one node at most (and the second control plane none); the rule is
//! tested as a table in `lifeboat_types::readiness::audit`.

use std::collections::BTreeSet;

use crate::server_fixture::{STANDBY_NS, standby_cluster};
use crate::support::NEEDS;

const BAD: &str = "audit-it-bad";
const SLOW: &str = "audit-it-slow";
const CLASS: &str = "audit-it-delete";

fn probe() -> &'static str {
    "readinessProbe: {tcpSocket: {port: 80}}"
}

/// One Deployment (`extra`: more lines of the pod spec, indented 6).
fn deployment(name: &str, replicas: u32, container_extra: &str, pod_extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {BAD}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{pod_extra}      containers:\n      - {{name: c, image: busybox, {container_extra}}}\n"
    )
}

fn spread_preferred(app: &str) -> String {
    format!(
        "      affinity:\n        podAntiAffinity:\n          preferredDuringSchedulingIgnoredDuringExecution:\n          - weight: 100\n            podAffinityTerm: {{topologyKey: kubernetes.io/hostname, labelSelector: {{matchLabels: {{app: {app}}}}}}}\n"
    )
}

fn findings(out: &str) -> BTreeSet<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(r, o)| ((*r).to_owned(), (*o).to_owned()))
        .collect()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn audit_finds_each_broken_rule_once() {
    let etcd = std::env::var("LIFEBOAT_IT_NODE_ETCD").expect(NEEDS);
    let (_alone, env) = standby_cluster();
    for ns in [BAD, SLOW] {
        env.delete_namespace(ns);
    }
    env.kubectl(
        &["delete", "storageclass", CLASS, "--ignore-not-found"],
        None,
    );
    let bucket = env.dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    crate::server_fixture::install_file_location(&env, &bucket);
    for ns in [BAD, SLOW] {
        env.kubectl(&["create", "namespace", ns], None);
    }
    // Each object breaks one rule; everything else about it is as the rules want.
    let p = probe();
    let mut docs = vec![
        deployment("single", 1, p, ""),
        deployment("clumped", 2, p, ""),
        deployment(
            "apart",
            2,
            p,
            "      affinity:\n        podAntiAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n          - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: apart}}}\n",
        ),
        deployment("noprobe", 2, "", &spread_preferred("noprobe")),
        format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db, namespace: {BAD}}}\nspec:\n  replicas: 2\n  serviceName: db\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec:\n{}      containers:\n      - {{name: c, image: busybox, {p}}}\n",
            spread_preferred("db")
        ),
        format!(
            "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {{name: blocker, namespace: {BAD}}}\nspec:\n  maxUnavailable: 0\n  selector: {{matchLabels: {{app: clumped}}}}\n"
        ),
        format!(
            "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {{name: stale, namespace: {BAD}}}\nspec:\n  maxUnavailable: 1\n  selector: {{matchLabels: {{app: gone}}}}\n"
        ),
        format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {CLASS}}}\nprovisioner: audit.example.com\nvolumeBindingMode: WaitForFirstConsumer\n"
        ),
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data, namespace: {BAD}}}\nspec:\n  storageClassName: {CLASS}\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n"
        ),
        // The slow namespace: covered once a day, against an RPO of an hour.
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: Schedule\nmetadata: {{name: daily, namespace: {STANDBY_NS}}}\nspec:\n  schedule: \"0 1 * * *\"\n  template:\n    includedNamespaces: [{SLOW}]\n"
        ),
    ];
    docs.push(String::new());
    env.apply(&docs.join("---\n"));

    let args = ["audit", "-n", &format!("{BAD},{SLOW}"), "--rpo", "1h"];
    let json_args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
    let want = pairs(&[
        ("namespace-not-covered", &format!("Namespace {BAD}")),
        ("schedule-slower-than-rpo", &format!("Namespace {SLOW}")),
        ("no-second-location", "Cluster"),
        ("etcd-snapshot-old", "Cluster"),
        ("single-replica", &format!("Deployment {BAD}/single")),
        ("no-zone-spread", &format!("Deployment {BAD}/clumped")),
        (
            "anti-affinity-unsatisfiable",
            &format!("Deployment {BAD}/apart"),
        ),
        (
            "pdb-blocks-drain",
            &format!("PodDisruptionBudget {BAD}/blocker"),
        ),
        (
            "pdb-selects-nothing",
            &format!("PodDisruptionBudget {BAD}/stale"),
        ),
        ("statefulset-without-pdb", &format!("StatefulSet {BAD}/db")),
        ("reclaim-delete", &format!("StorageClass {CLASS}")),
        (
            "no-snapshot-class",
            &format!("PersistentVolumeClaim {BAD}/data"),
        ),
        ("no-readiness-probe", &format!("Deployment {BAD}/noprobe")),
    ]);
    let got = findings(&env.ok(&json_args));
    assert_eq!(got, want);

    // The detail names what was seen.
    let v: serde_json::Value = serde_json::from_str(&env.ok(&json_args)).unwrap();
    let detail = |rule: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .map(|f| f["detail"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(
        detail("schedule-slower-than-rpo"),
        format!("{STANDBY_NS}/daily every 24h0m0s; the RPO is 1h0m0s (--rpo 1h0m0s)")
    );
    assert_eq!(
        detail("no-second-location"),
        "every backup is kept in location default only"
    );
    assert_eq!(
        detail("etcd-snapshot-old"),
        "no etcd snapshot is stored in any location"
    );
    assert_eq!(
        detail("pdb-blocks-drain"),
        "maxUnavailable 0 of 2 replicas: no pod may be evicted"
    );

    // CI's gate: a critical finding fails --fail-on critical, and passes once skipped.
    let mut gate: Vec<&str> = args.to_vec();
    gate.extend(["--fail-on", "critical"]);
    let err = env.fails(&gate);
    assert!(
        err.contains("error: findings at or above critical (--fail-on critical)"),
        "{err}"
    );
    gate.extend(["--skip", "namespace-not-covered"]);
    env.ok(&gate);
    let mut high = args.to_vec();
    high.extend(["--skip", "namespace-not-covered", "--fail-on", "high"]);
    env.fails(&high);

    // The table and the Markdown name the same findings, with the fix.
    let table = env.ok(&args);
    assert!(table.starts_with("SEVERITY   RULE"), "{table}");
    assert!(
        table.contains(&format!(
            "lifeboat schedule create {BAD}-daily --schedule '0 1 * * *' --include-namespaces {BAD}"
        )),
        "{table}"
    );
    let mut md_args = args.to_vec();
    md_args.extend(["-o", "markdown"]);
    let md = env.ok(&md_args);
    assert!(
        md.starts_with(&format!(
            "# Readiness audit: namespace {BAD}, {SLOW}\n\n13 findings: 1 critical, 5 high, 5 medium, 2 low.\n"
        )),
        "{md}"
    );

    // An etcd snapshot in the location clears its finding; too old for --etcd-max-age, it
    // is named.
    crate::etcd_stored::save(
        &env,
        &etcd,
        &format!("file://{}", bucket.display()),
        "audit-it",
        "snap-1",
    );
    let got = findings(&env.ok(&json_args));
    assert!(
        !got.iter().any(|(r, _)| r == "etcd-snapshot-old"),
        "{got:?}"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut strict = json_args.clone();
    strict.extend(["--etcd-max-age", "1s"]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&strict)).unwrap();
    let old = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "etcd-snapshot-old")
        .map(|f| f["detail"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(
        old.starts_with("the newest, snap-1 in location default, is ")
            && old.ends_with("old; allowed 1s"),
        "{old}"
    );

    // Mended, a rule's finding goes: two replicas and a budget for the single one.
    env.kubectl(
        &["-n", BAD, "scale", "deployment/single", "--replicas=2"],
        None,
    );
    let got = findings(&env.ok(&json_args));
    assert!(
        !got.contains(&(
            "single-replica".to_owned(),
            format!("Deployment {BAD}/single")
        )),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            "no-zone-spread".to_owned(),
            format!("Deployment {BAD}/single")
        )),
        "{got:?}"
    );

    for ns in [BAD, SLOW] {
        env.delete_namespace(ns);
    }
    env.kubectl(&["delete", "storageclass", CLASS], None);
    let _ = env.run(&["-n", STANDBY_NS, "uninstall", "--force"]);
}
