//! What the installed RBAC lets lifeboat's ServiceAccount do, asked of the real API server
//! (issue 11, item 8): SubjectAccessReviews posted as the admin for the ServiceAccount,
//! as `kubectl auth can-i --as` does. The roles are those `lifeboat install` applied for
//! the shared server fixture (its discovery of the served groups, exec hooks on), and the
//! bindings of an `install --dry-run --no-exec-hooks` into a namespace of its own.

use serde_json::{Value, json};

use crate::server_fixture::*;
use crate::support::*;

/// A group no CRD serves: granted only through a labelled ClusterRole the test applies.
const LATE_GROUP: &str = "rbac-late.lifeboat.example";
/// Where the `--no-exec-hooks` bindings go.
const NO_HOOKS_NS: &str = "lifeboat-rbac-it";

/// Whether the API server allows `verb` on `resource` (`pods`, `pods/exec`) of `group` in
/// `namespace` (`""`: cluster-wide) to ServiceAccount `lifeboat` of `sa_ns`.
fn can(env: &Env, sa_ns: &str, verb: &str, group: &str, resource: &str, namespace: &str) -> bool {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": format!("system:serviceaccount:{sa_ns}:lifeboat"),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{sa_ns}"), "system:authenticated"],
            "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource,
                "subresource": subresource, "namespace": namespace
            }
        }
    });
    let out = env.kubectl(
        &["create", "-f", "-", "-o", "json"],
        Some(&review.to_string()),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v["status"]["allowed"] == true
}

/// The escalations a `*` rule used to grant, each refused whatever hooks are set to.
fn assert_no_escalation(env: &Env, sa_ns: &str) {
    for (verb, resource, ns) in [
        ("get", "nodes/proxy", ""),
        ("create", "nodes/proxy", ""),
        ("create", "serviceaccounts/token", APP),
        ("create", "serviceaccounts/token", "kube-system"),
        ("create", "pods/attach", APP),
        ("create", "pods/portforward", APP),
        ("get", "pods/proxy", APP),
        ("get", "services/proxy", APP),
        ("patch", "pods/ephemeralcontainers", APP),
    ] {
        assert!(
            !can(env, sa_ns, verb, "", resource, ns),
            "{verb} {resource} allowed to lifeboat of {sa_ns}"
        );
    }
}

/// Issue 11, item 8: the installed ClusterRoles granted verbs on resources `*` of groups
/// `*`, which also matched `pods/exec`, `nodes/proxy` and `serviceaccounts/token`. Now
/// the installed ServiceAccount (exec hooks on) may exec for hooks but may not reach the
/// kubelet or mint tokens, reads ConfigMaps, Secrets and velero.io objects, and gets a
/// group installed later once an operator applies a ClusterRole labelled for aggregation.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn installed_roles_grant_objects_not_exec_proxy_or_tokens() {
    let fx = shared();
    let env = &fx.env;
    assert!(can(env, NS, "create", "", "pods/exec", APP), "exec hooks");
    assert!(can(env, NS, "get", "", "pods/exec", APP), "exec hooks");
    assert_no_escalation(env, NS);
    for (verb, group, resource) in [
        ("list", "", "configmaps"),
        ("get", "", "configmaps"),
        ("list", "", "secrets"),
        ("get", "", "secrets"),
        ("list", "apps", "deployments"),
        ("list", "velero.io", "backups"),
        ("create", "", "configmaps"),
        ("create", "apps", "deployments"),
        ("create", "velero.io", "schedules"),
    ] {
        assert!(
            can(env, NS, verb, group, resource, APP),
            "{verb} {group}/{resource}"
        );
    }
    // Objects, not subresources: a restore creates pods, it does not evict or bind them.
    assert!(!can(env, NS, "create", "", "pods/eviction", APP));
    assert!(!can(env, NS, "update", "", "pods/status", APP));

    // A group the roles do not name, then granted as docs/server.md says: a ClusterRole
    // labelled for the backup role (reads), another for the restore role (writes).
    assert!(!can(env, NS, "list", LATE_GROUP, "gizmos", APP));
    env.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: it-rbac-late-backup\n  labels: {{lifeboat.dev/aggregate-to-backup: \"true\"}}\nrules: [{{apiGroups: [{LATE_GROUP}], resources: [\"*\"], verbs: [get, list, watch]}}]\n"
    ));
    eventually(
        30,
        "the labelled role aggregated into lifeboat-backup",
        || can(env, NS, "list", LATE_GROUP, "gizmos", APP).then_some(()),
    );
    assert!(can(env, NS, "watch", LATE_GROUP, "gizmos", ""));
    assert!(
        !can(env, NS, "create", LATE_GROUP, "gizmos", APP),
        "reads only"
    );
    env.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: it-rbac-late-restore\n  labels: {{lifeboat.dev/aggregate-to-restore: \"true\"}}\nrules: [{{apiGroups: [{LATE_GROUP}], resources: [\"*\"], verbs: [create, patch, update]}}]\n"
    ));
    eventually(
        30,
        "the labelled role aggregated into lifeboat-restore",
        || can(env, NS, "create", LATE_GROUP, "gizmos", APP).then_some(()),
    );
    // Still nothing of the core group's subresources.
    assert_no_escalation(env, NS);
    env.kubectl(
        &[
            "delete",
            "clusterrole",
            "it-rbac-late-backup",
            "it-rbac-late-restore",
        ],
        None,
    );
    eventually(30, "the late group's grant gone with its roles", || {
        (!can(env, NS, "list", LATE_GROUP, "gizmos", APP)).then_some(())
    });
}

/// Issue 11, item 8: with `--no-exec-hooks`, nothing grants `pods/exec` any more (the
/// backup and restore roles matched it through `*`). The bindings of an `install --dry-run
/// --no-exec-hooks` applied in a namespace of their own, to the roles installed.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn without_exec_hooks_nothing_grants_pods_exec() {
    let fx = shared();
    let env = &fx.env;
    let dry: Value = serde_json::from_str(&env.ok(&[
        "-n",
        NO_HOOKS_NS,
        "install",
        "--dry-run",
        "--no-exec-hooks",
        "-o",
        "json",
    ]))
    .unwrap();
    let items = dry["items"].as_array().unwrap();
    let bindings: Vec<&Value> = items
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding")
        .collect();
    let bound: Vec<&str> = bindings
        .iter()
        .map(|b| b["roleRef"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(bound, ["lifeboat-backup", "lifeboat-restore"]);
    let mine: Vec<Value> = items
        .iter()
        .filter(|o| {
            ["Namespace", "ServiceAccount", "ClusterRoleBinding"]
                .contains(&o["kind"].as_str().unwrap())
        })
        .cloned()
        .collect();
    env.apply(&json!({"apiVersion": "v1", "kind": "List", "items": mine}).to_string());

    for verb in ["create", "get"] {
        assert!(
            !can(env, NO_HOOKS_NS, verb, "", "pods/exec", APP),
            "{verb} pods/exec allowed without exec hooks"
        );
    }
    assert_no_escalation(env, NO_HOOKS_NS);
    assert!(can(env, NO_HOOKS_NS, "list", "", "configmaps", APP));
    assert!(can(env, NO_HOOKS_NS, "create", "", "configmaps", APP));
    assert!(can(env, NO_HOOKS_NS, "list", "velero.io", "backups", APP));

    let names: Vec<&str> = bindings
        .iter()
        .map(|b| b["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut delete = vec!["delete", "clusterrolebinding"];
    delete.extend(&names);
    env.kubectl(&delete, None);
    env.kubectl(&["delete", "namespace", NO_HOOKS_NS, "--wait=true"], None);
}
