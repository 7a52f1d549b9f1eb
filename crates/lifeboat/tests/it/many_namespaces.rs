//! Backups that select many namespaces (issue 12, item 5): each namespaced type is listed
//! once cluster-wide and only the selected namespaces' objects are kept; a user allowed to
//! LIST only inside the selected namespaces is listed namespace by namespace and still
//! gets every object.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use lifeboat_types::rules::namespaced_list::{MIN_SHARE_PERCENT, NamespacedList, after_first_page};

use crate::support::*;

/// How many namespaces a test selects so that they are well above
/// [`MIN_SHARE_PERCENT`] of the cluster's (whatever other tests made), at least 12.
fn enough_namespaces(env: &Env, label: &str) -> usize {
    let names = env.kubectl(&["get", "namespaces", "-o", "name"], None);
    let others = names.lines().filter(|l| !l.is_empty()).count();
    let share = MIN_SHARE_PERCENT.clamp(1, 99);
    // k / (others + k) >= share, with room for twice as many namespaces as now.
    let needed = (2 * others * share).div_ceil(100 - share);
    eprintln!(
        "{label}: {others} namespaces in the cluster; selecting {}",
        needed.max(12)
    );
    needed.max(12)
}

/// Deletes the namespaces labelled `it-many=<label>` (of an earlier run) and waits.
fn clean(env: &Env, label: &str) {
    env.kubectl(
        &[
            "delete",
            "namespaces",
            "-l",
            &format!("it-many={label}"),
            "--ignore-not-found",
            "--wait",
            "--timeout=120s",
        ],
        None,
    );
}

/// The backup's tarball entries of namespaced objects: namespace -> group-resource ->
/// names.
fn by_namespace(t: &Tarball) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for name in &t.names {
        // resources/<gr>/namespaces/<ns>/<name>.json (not the -preferredversion copies)
        let parts: Vec<&str> = name.split('/').collect();
        if let ["resources", gr, "namespaces", ns, file] = parts[..] {
            out.entry(ns.to_owned())
                .or_default()
                .entry(gr.to_owned())
                .or_default()
                .insert(file.trim_end_matches(".json").to_owned());
        }
    }
    out
}

/// The backup's log.
fn logs(env: &Env, backup: &str) -> String {
    env.ok(&["backup", "logs", backup])
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn many_namespaces_are_listed_once_keeping_only_the_selected() {
    let env = Env::new();
    clean(&env, "wide");
    let k = enough_namespaces(&env, "many_namespaces_are_listed_once");
    let selected: Vec<String> = (0..k).map(|i| format!("it-wide-{i:02}")).collect();
    // Not selected by 'it-wide-*', with the same kinds and names.
    let decoy = "it-wideout";
    let mut yaml = String::new();
    for ns in selected.iter().map(String::as_str).chain([decoy]) {
        yaml.push_str(&format!(
            r#"
---
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {{it-many: wide}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: a, namespace: {ns}}}
data: {{k: "{ns}"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: b, namespace: {ns}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: s, namespace: {ns}}}
stringData: {{k: v}}
"#
        ));
    }
    env.apply(&yaml);

    let out = env.run(&[
        "backup",
        "create",
        "wide",
        "--include-namespaces",
        "it-wide-*",
    ]);
    let dir = env.storage().join("backups/wide");
    if !out.status.success() {
        // What went wrong is in the results (tests that run beside it change the cluster).
        let results = dir.join("wide-results.gz");
        let results = if results.exists() {
            read_json_gz(&results).to_string()
        } else {
            String::new()
        };
        panic!(
            "backup wide: exit {:?}\nstdout: {}\nstderr: {}\nresults: {results}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("velero-backup.json")).unwrap()).unwrap();
    assert_eq!(meta["status"]["phase"], "Completed", "{meta}");
    // It took the cluster-wide path (else this test would not test the filter).
    let log = logs(&env, "wide");
    assert!(
        log.contains(&format!(
            "resource=\"configmaps\" listed=\"all namespaces, keeping {k} selected\""
        )) && log.contains(&format!(
            "resource=\"secrets\" listed=\"all namespaces, keeping {k} selected\""
        )),
        "{log}"
    );

    let t = read_tarball(&dir.join("wide.tar.gz"));
    let found = by_namespace(&t);
    // Exactly the selected namespaces, nothing of the decoy or of any other namespace.
    let namespaces: BTreeSet<&String> = found.keys().collect();
    assert_eq!(
        namespaces,
        selected.iter().collect::<BTreeSet<_>>(),
        "namespaces in the tarball"
    );
    for ns in &selected {
        let cms: BTreeSet<&str> = found[ns]["configmaps"]
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "kube-root-ca.crt")
            .collect();
        assert_eq!(cms, BTreeSet::from(["a", "b"]), "configmaps of {ns}");
        assert!(found[ns]["secrets"].contains("s"), "secret s of {ns}");
        let a = &t.json[&format!("resources/configmaps/namespaces/{ns}/a.json")];
        assert_eq!(a["data"]["k"], ns.as_str());
        assert_eq!(
            (a["apiVersion"].as_str(), a["kind"].as_str()),
            (Some("v1"), Some("ConfigMap"))
        );
    }
    assert!(!t.names.iter().any(|n| n.contains(decoy)));

    // The resource list says the same, per namespace.
    let rl = read_json_gz(&dir.join("wide-resource-list.json.gz"));
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for key in rl["v1/ConfigMap"].as_array().unwrap() {
        let (ns, name) = key.as_str().unwrap().split_once('/').unwrap();
        assert!(
            selected.iter().any(|s| s == ns),
            "{ns}/{name} in the resource list"
        );
        if name != "kube-root-ca.crt" {
            *listed.entry(ns.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(
        listed,
        selected
            .iter()
            .map(|ns| (ns.clone(), 2))
            .collect::<BTreeMap<_, _>>()
    );
    let items: usize = rl
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(meta["status"]["progress"]["itemsBackedUp"], items as u64);
    clean_later(&env, "wide");
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_user_allowed_to_list_only_in_the_selected_namespaces_gets_them_all() {
    let env = Env::new();
    let nobody = std::env::var("LIFEBOAT_IT_KUBECONFIG_NOBODY").expect(NEEDS);
    clean(&env, "nsonly");
    let k = enough_namespaces(&env, "a_user_allowed_to_list_only_in_the_selected");
    let selected: Vec<String> = (0..k).map(|i| format!("it-nsonly-{i:02}")).collect();
    // Cluster-wide: listing namespaces only (needed to expand a wildcard, as with Velero);
    // LIST of anything else only through a Role in each selected namespace. No GET of
    // CRDs: the backup has Roles (roles.rbac.authorization.k8s.io, a built-in group with
    // no CRD) and must not ask for a CRD of that name (regression: it did, and the 403
    // made the backup PartiallyFailed).
    let mut yaml = String::from(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: it-nobody-namespaces-only}
rules:
- {apiGroups: [""], resources: [namespaces], verbs: [list, get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: it-nobody-namespaces-only}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: it-nobody-namespaces-only}
subjects: [{kind: User, name: nobody, apiGroup: rbac.authorization.k8s.io}]
"#,
    );
    for ns in &selected {
        yaml.push_str(&format!(
            r#"
---
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {{it-many: nsonly}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: a, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: lister, namespace: {ns}}}
rules: [{{apiGroups: ["*"], resources: ["*"], verbs: [list, get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: lister, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: lister}}
subjects: [{{kind: User, name: nobody, apiGroup: rbac.authorization.k8s.io}}]
"#
        ));
    }
    env.apply(&yaml);
    // The authorizer's caches follow the new bindings within moments.
    let last = selected.last().unwrap();
    let allowed = || {
        Command::new("kubectl")
            .env("KUBECONFIG", &env.kubeconfig)
            .args([
                "auth",
                "can-i",
                "list",
                "configmaps",
                "-n",
                last,
                "--as",
                "nobody",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .status
            .success()
    };
    for _ in 0..100 {
        if allowed() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(allowed(), "nobody may not list configmaps in {last}");

    env.ok(&[
        "backup",
        "create",
        "nsonly",
        "--kubeconfig",
        &nobody,
        "--include-namespaces",
        "it-nsonly-*",
    ]);
    let dir = env.storage().join("backups/nsonly");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("velero-backup.json")).unwrap()).unwrap();
    assert_eq!(meta["status"]["phase"], "Completed", "{meta}");
    let results = read_json_gz(&dir.join("nsonly-results.gz"));
    assert!(
        results["errors"].as_object().unwrap().is_empty(),
        "{results}"
    );
    // A cluster-wide LIST was asked for, refused, and each namespace listed instead.
    let log = logs(&env, "nsonly");
    assert!(
        log.contains(&format!(
            "resource=\"configmaps\" listed=\"per namespace ({k}; a cluster-wide LIST is not allowed)\""
        )),
        "{log}"
    );
    let t = read_tarball(&dir.join("nsonly.tar.gz"));
    let found = by_namespace(&t);
    assert_eq!(
        found.keys().collect::<BTreeSet<_>>(),
        selected.iter().collect::<BTreeSet<_>>()
    );
    for ns in &selected {
        assert!(found[ns]["configmaps"].contains("a"), "configmap a of {ns}");
        assert!(
            found[ns]["roles.rbac.authorization.k8s.io"].contains("lister"),
            "role of {ns}"
        );
    }
    clean_later(&env, "nsonly");
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_type_too_large_for_one_list_is_listed_per_namespace_after_its_first_page() {
    let env = Env::new();
    clean(&env, "large");
    let k = enough_namespaces(&env, "a_type_too_large_for_one_list");
    // Named to come first in the API server's order (then the decoy's): the first page
    // holds selected objects, which must end up in the backup once each.
    let selected: Vec<String> = (0..k).map(|i| format!("0-it-large-{i:02}")).collect();
    let decoy = "0-it-largeout";
    // Enough ConfigMaps in the decoy namespace for the rule to give up the cluster-wide
    // LIST after its first page (with room for namespaces other tests delete meanwhile).
    let namespaces = env
        .kubectl(&["get", "namespaces", "-o", "name"], None)
        .lines()
        .count()
        + k
        + 1;
    let many = (1..)
        .map(|i| i * 50)
        .find(|m| after_first_page(*m, k, namespaces / 2) == NamespacedList::PerNamespace)
        .unwrap();
    eprintln!("{many} configmaps in {decoy}");
    let mut yaml = String::new();
    for ns in &selected {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{it-many: large}}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a, namespace: {ns}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: b, namespace: {ns}}}\n"
        ));
    }
    yaml.push_str(&format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {decoy}, labels: {{it-many: large}}}}\n"
    ));
    env.apply(&yaml);
    let mut bulk = String::new();
    for i in 0..many {
        bulk.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bulk-{i:04}, namespace: {decoy}}}\n"
        ));
    }
    env.kubectl(&["create", "-f", "-"], Some(&bulk));

    env.ok(&[
        "backup",
        "create",
        "large",
        "--include-namespaces",
        "0-it-large-*",
        "--page-size",
        "100",
    ]);
    let dir = env.storage().join("backups/large");
    let log = logs(&env, "large");
    assert!(
        log.contains(&format!(
            "resource=\"configmaps\" listed=\"all namespaces, keeping {k} selected\""
        )) && log.contains(
            "msg=\"Listing items per namespace instead\" backup=velero/large resource=\"configmaps\""
        ),
        "{log}"
    );
    // The first page (100 items, in key order: the selected namespaces first) holds all
    // of several selected namespaces; those are kept from it, not listed again.
    let from_first_page: usize = log
        .split("fromFirstPage=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fromFirstPage in\n{log}"));
    assert!((1..=k).contains(&from_first_page), "{log}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("velero-backup.json")).unwrap()).unwrap();
    assert_eq!(meta["status"]["phase"], "Completed", "{meta}");
    let t = read_tarball(&dir.join("large.tar.gz"));
    // Each item once: nothing of the first page twice, nothing missing.
    let unique: BTreeSet<&String> = t.names.iter().collect();
    assert_eq!(
        unique.len(),
        t.names.len(),
        "an entry is in the tarball twice"
    );
    let found = by_namespace(&t);
    assert_eq!(
        found.keys().collect::<BTreeSet<_>>(),
        selected.iter().collect::<BTreeSet<_>>()
    );
    for ns in &selected {
        let cms: BTreeSet<&str> = found[ns]["configmaps"]
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "kube-root-ca.crt")
            .collect();
        assert_eq!(cms, BTreeSet::from(["a", "b"]), "configmaps of {ns}");
    }
    let rl = read_json_gz(&dir.join("large-resource-list.json.gz"));
    let cms = rl["v1/ConfigMap"].as_array().unwrap();
    assert_eq!(
        cms.len(),
        found.values().map(|f| f["configmaps"].len()).sum::<usize>()
    );
    let listed_count = format!(
        "msg=\"Listed items\" backup=velero/large resource=\"configmaps\" count=\"{}\"",
        cms.len()
    );
    assert!(log.contains(&listed_count), "{listed_count}\n{log}");
    clean_later(&env, "large");
}

/// Deletes a test's namespaces without waiting.
fn clean_later(env: &Env, label: &str) {
    env.kubectl(
        &[
            "delete",
            "namespaces",
            "-l",
            &format!("it-many={label}"),
            "--wait=false",
        ],
        None,
    );
}
