//! The rules of lifeboat's backup and restore ClusterRoles, as data (issue 11, item 8).
//!
//! RBAC has no deny rule, and its wildcards reach further than they look: a rule with
//! `resources: ["*"]` matches every subresource too (`pods/exec` runs commands in any pod,
//! `nodes/proxy` is the kubelet's API, `serviceaccounts/token` mints a token for any
//! ServiceAccount), and `apiGroups: ["*"]` matches the core group `""`. So the roles name
//! what they grant:
//!
//! - the core group's resources by name, and none of its subresources. The core group
//!   never receives CRDs, so its resources are a known set ([`CORE_RESOURCES`]); `pods/exec`
//!   is granted only by the separate exec-hooks role, bound unless `--no-exec-hooks`.
//! - every other API group by name, each with `resources: ["*"]`: the groups served when
//!   `lifeboat install` ran plus the built-in ones ([`BUILTIN_GROUPS`], [`EXTRA_GROUPS`]).
//!   No subresource of a built-in non-core group is an escalation with these verbs
//!   (`certificatesigningrequests/approval` also needs `approve` on a signer, which no
//!   lifeboat role has); an aggregated API may define one, as KubeVirt's
//!   `subresources.kubevirt.io` does (`virtualmachineinstances/console` and `/vnc` with
//!   `get`), so that group is never granted ([`NEVER_GRANTED_GROUPS`]).
//!
//! The installed ClusterRoles `lifeboat-backup` and `lifeboat-restore` aggregate every
//! ClusterRole labelled [`AGGREGATE_TO_BACKUP`] / [`AGGREGATE_TO_RESTORE`]: install's rules
//! live in `lifeboat-backup-base` / `lifeboat-restore-base` (replaced by each install), and
//! an operator grants a group installed later with a small labelled ClusterRole
//! ([`forbidden_fix`] says how, in the error of a backup or restore that meets one).

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The label that adds a ClusterRole's rules to `lifeboat-backup`.
pub const AGGREGATE_TO_BACKUP: &str = "lifeboat.dev/aggregate-to-backup";
/// The label that adds a ClusterRole's rules to `lifeboat-restore`.
pub const AGGREGATE_TO_RESTORE: &str = "lifeboat.dev/aggregate-to-restore";

/// What a backup does with a resource.
pub const BACKUP_VERBS: [&str; 3] = ["get", "list", "watch"];
/// What a restore does with a resource.
pub const RESTORE_VERBS: [&str; 3] = ["create", "patch", "update"];

/// The core group's resources (not subresources) in Kubernetes 1.20 to 1.33.
pub const CORE_RESOURCES: &[&str] = &[
    "bindings",
    "componentstatuses",
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "podtemplates",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "serviceaccounts",
    "services",
];

/// The core group's subresources in Kubernetes 1.20 to 1.33: none is granted by the backup
/// or restore role (what they read and write are the objects themselves).
pub const CORE_SUBRESOURCES: &[&str] = &[
    "namespaces/finalize",
    "namespaces/status",
    "nodes/proxy",
    "nodes/status",
    "persistentvolumeclaims/status",
    "persistentvolumes/status",
    "pods/attach",
    "pods/binding",
    "pods/ephemeralcontainers",
    "pods/eviction",
    "pods/exec",
    "pods/log",
    "pods/portforward",
    "pods/proxy",
    "pods/resize",
    "pods/status",
    "replicationcontrollers/scale",
    "replicationcontrollers/status",
    "resourcequotas/status",
    "serviceaccounts/token",
    "services/proxy",
    "services/status",
];

/// Core resources a backup does not read: `bindings` is create-only (it schedules a pod).
const CORE_NOT_READ: &[&str] = &["bindings"];

/// Core resources a restore does not write: create-only or read-only ones, and those Velero
/// never restores (`types::plan::restore::NEVER_RESTORED`).
const CORE_NOT_WRITTEN: &[&str] = &["bindings", "componentstatuses", "events", "nodes"];

pub use crate::api::groups::BUILTIN_GROUPS;

/// Groups granted even when not served at install time: Velero's and lifeboat's own, and
/// CSI volume snapshots.
pub const EXTRA_GROUPS: &[&str] = &["lifeboat.dev", "snapshot.storage.k8s.io", "velero.io"];

/// Groups never granted, even when served: aggregated APIs whose subresources act with
/// `get` (KubeVirt's VM consoles). They hold no objects to back up.
pub const NEVER_GRANTED_GROUPS: &[&str] = &["subresources.kubevirt.io"];

/// What the backup and restore roles cover: core resources and non-core API groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiScope {
    /// Core resources (no subresource).
    pub core: BTreeSet<String>,
    /// Non-core API groups.
    pub groups: BTreeSet<String>,
}

impl Default for ApiScope {
    fn default() -> Self {
        ApiScope::builtin()
    }
}

impl ApiScope {
    /// Without a cluster to ask (`install --dry-run`): Kubernetes' own resources and groups
    /// and [`EXTRA_GROUPS`].
    pub fn builtin() -> ApiScope {
        ApiScope::served(std::iter::empty(), std::iter::empty())
    }

    /// [`ApiScope::builtin`] plus what a cluster serves: its core resource names (from
    /// `/api/v1`; subresources are dropped) and its API group names (from `/apis`; the
    /// core group and [`NEVER_GRANTED_GROUPS`] are dropped).
    pub fn served<'a>(
        core: impl IntoIterator<Item = &'a str>,
        groups: impl IntoIterator<Item = &'a str>,
    ) -> ApiScope {
        ApiScope {
            core: CORE_RESOURCES
                .iter()
                .copied()
                .chain(core)
                .filter(|r| !r.is_empty() && !r.contains('/'))
                .map(str::to_owned)
                .collect(),
            groups: BUILTIN_GROUPS
                .iter()
                .chain(EXTRA_GROUPS)
                .copied()
                .chain(groups)
                .filter(|g| !g.is_empty() && *g != "*" && !NEVER_GRANTED_GROUPS.contains(g))
                .map(str::to_owned)
                .collect(),
        }
    }
}

fn scoped_rules(scope: &ApiScope, core_excluded: &[&str], verbs: &[&str]) -> Vec<Value> {
    let core: Vec<&str> = scope
        .core
        .iter()
        .map(String::as_str)
        .filter(|r| !core_excluded.contains(r))
        .collect();
    vec![
        json!({ "apiGroups": [""], "resources": core, "verbs": verbs }),
        json!({ "apiGroups": scope.groups, "resources": ["*"], "verbs": verbs }),
    ]
}

/// The rules of `lifeboat-backup-base`: read every object of `scope`, and discovery.
pub fn backup_rules(scope: &ApiScope) -> Vec<Value> {
    let mut rules = scoped_rules(scope, CORE_NOT_READ, &BACKUP_VERBS);
    rules.push(
        json!({ "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*"], "verbs": ["get"] }),
    );
    rules
}

/// The rules of `lifeboat-restore-base`: write every object of `scope` a restore creates.
pub fn restore_rules(scope: &ApiScope) -> Vec<Value> {
    let mut rules = scoped_rules(scope, CORE_NOT_WRITTEN, &RESTORE_VERBS);
    // Restoring a Role, ClusterRole or binding that grants more than this role has (an
    // `edit` RoleBinding, a Role with delete) needs bind and escalate: the API server's
    // escalation check refuses it otherwise.
    rules.push(json!({ "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "clusterroles"], "verbs": ["bind", "escalate"] }));
    rules
}

/// The rules of `lifeboat-exec-hooks`: running backup and restore exec hooks.
pub fn exec_hook_rules() -> Vec<Value> {
    vec![json!({ "apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"] })]
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Whether `rules` allow `verb` on `resource` (`pods`, or a subresource `pods/exec`) of
/// API group `group` (`""` for core), matched as the API server's RBAC authorizer does:
/// `*` matches any group, verb or resource (subresources included), `pods/*` any
/// subresource of pods, `*/scale` that subresource of any resource.
pub fn allows(rules: &[Value], verb: &str, group: &str, resource: &str) -> bool {
    let (res, sub) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    let resource_matches = |r: &str| {
        r == "*"
            || r == resource
            || sub.is_some_and(|s| r == format!("{res}/*") || r == format!("*/{s}"))
    };
    rules.iter().any(|rule| {
        strings(&rule["verbs"]).any(|v| v == "*" || v == verb)
            && strings(&rule["apiGroups"]).any(|g| g == "*" || g == group)
            && strings(&rule["resources"]).any(resource_matches)
    })
}

fn canonical(rule: &Value) -> Vec<(String, Vec<String>)> {
    let mut fields: Vec<(String, Vec<String>)> = rule
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let mut items: Vec<String> = strings(v).map(str::to_owned).collect();
            items.sort();
            (!items.is_empty()).then(|| (k.clone(), items))
        })
        .collect();
    fields.sort();
    fields
}

/// Whether every rule of `want` is among `have`, field for field (order within a field and
/// empty fields aside): whether the aggregation controller has copied a labelled
/// ClusterRole's rules into the aggregated one.
pub fn covers(have: &[Value], want: &[Value]) -> bool {
    let have: Vec<_> = have.iter().map(canonical).collect();
    want.iter().all(|w| have.contains(&canonical(w)))
}

/// The rules the aggregation controller gives `role`, a ClusterRole with an
/// `aggregationRule`: those of the ClusterRoles among `objects` that its selectors'
/// `matchLabels` match (lifeboat's selectors use no `matchExpressions`). Empty for a role
/// without an `aggregationRule`.
pub fn aggregated_rules(role: &Value, objects: &[Value]) -> Vec<Value> {
    let mut rules: Vec<Value> = Vec::new();
    let selectors = role["aggregationRule"]["clusterRoleSelectors"].as_array();
    for sel in selectors.into_iter().flatten() {
        let Some(labels) = sel["matchLabels"].as_object() else {
            continue;
        };
        for o in objects.iter().filter(|o| {
            o["kind"] == "ClusterRole"
                && labels.iter().all(|(k, v)| &o["metadata"]["labels"][k] == v)
        }) {
            for r in o["rules"].as_array().into_iter().flatten() {
                if !rules.contains(r) {
                    rules.push(r.clone());
                }
            }
        }
    }
    rules
}

/// What to do about a refused `verb` on `resource` (`pods`, `widgets.example.com`) of API
/// group `group` (`None`: not known): the ClusterRole that grants it to lifeboat's server
/// — labelled for aggregation into its backup role (reads) or restore role (writes) —
/// and, for any other user, a binding of their own.
pub fn forbidden_fix(verb: &str, group: Option<&str>, resource: &str) -> String {
    let generic =
        "grant it with a Role/ClusterRole bound to the user, or exclude the resource".to_owned();
    let Some(group) = group else {
        return generic;
    };
    let (label, verbs) = if BACKUP_VERBS.contains(&verb) {
        (AGGREGATE_TO_BACKUP, BACKUP_VERBS)
    } else if RESTORE_VERBS.contains(&verb) {
        (AGGREGATE_TO_RESTORE, RESTORE_VERBS)
    } else {
        return generic;
    };
    let (what, resources) = if group.is_empty() {
        let plural = resource.split('.').next().unwrap_or(resource);
        (format!("{plural} (core API group)"), format!("[{plural}]"))
    } else {
        (format!("API group {group:?}"), "[\"*\"]".to_owned())
    };
    format!(
        "grant {verb} on {what}: to lifeboat's server with a ClusterRole labelled {label}: \"true\" and the rule {{apiGroups: [{group:?}], resources: {resources}, verbs: [{}]}} (running `lifeboat install` again grants every group served by then), to another user with a Role/ClusterRole bound to it; or exclude the resource",
        verbs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn scope_with_widgets() -> ApiScope {
        ApiScope::served(
            ["pods", "pods/exec", "configmaps", "newthings"],
            ["", "example.com", "subresources.kubevirt.io", "apps"],
        )
    }

    #[test]
    fn served_adds_to_the_builtin_scope_without_subresources_core_or_blocked_groups() {
        let s = scope_with_widgets();
        assert!(s.core.contains("newthings"));
        assert!(s.core.contains("secrets"), "built-in core resources stay");
        assert!(!s.core.iter().any(|r| r.contains('/')), "{:?}", s.core);
        assert!(s.groups.contains("example.com"));
        assert!(s.groups.contains("velero.io") && s.groups.contains("lifeboat.dev"));
        assert!(!s.groups.contains(""));
        assert!(!s.groups.contains("subresources.kubevirt.io"));
        let b = ApiScope::builtin();
        assert_eq!(b.core.len(), CORE_RESOURCES.len());
        assert_eq!(b.groups.len(), BUILTIN_GROUPS.len() + EXTRA_GROUPS.len());
        assert!(!b.groups.contains("example.com"));
    }

    /// No rule of either role names a wildcard group or a core wildcard: that is what
    /// would match `pods/exec`, `nodes/proxy` and `serviceaccounts/token` again.
    #[test]
    fn no_rule_has_a_wildcard_group_or_a_core_wildcard() {
        let s = scope_with_widgets();
        for rule in backup_rules(&s).iter().chain(&restore_rules(&s)) {
            let groups: Vec<&str> = strings(&rule["apiGroups"]).collect();
            let resources: Vec<&str> = strings(&rule["resources"]).collect();
            assert!(!groups.contains(&"*"), "{rule}");
            if groups.contains(&"") {
                assert!(
                    resources
                        .iter()
                        .all(|r| !r.contains('*') && !r.contains('/')),
                    "{rule}"
                );
            }
        }
    }

    /// Every core subresource is refused to both roles, whatever the cluster served.
    #[test]
    fn no_core_subresource_is_granted() {
        let s = scope_with_widgets();
        for sub in CORE_SUBRESOURCES {
            for verb in [
                "get", "list", "watch", "create", "patch", "update", "delete",
            ] {
                assert!(
                    !allows(&backup_rules(&s), verb, "", sub),
                    "backup {verb} {sub}"
                );
                assert!(
                    !allows(&restore_rules(&s), verb, "", sub),
                    "restore {verb} {sub}"
                );
            }
        }
    }

    #[rstest]
    // Reads of objects: core by name, other groups whole.
    #[case::configmaps("list", "", "configmaps", true, false)]
    #[case::secrets("get", "", "secrets", true, false)]
    #[case::served_core("list", "", "newthings", true, false)]
    #[case::served_core_write("create", "", "newthings", false, true)]
    #[case::nodes_read_not_written("get", "", "nodes", true, false)]
    #[case::events_read_not_written("create", "", "events", false, false)]
    #[case::bindings_neither("create", "", "bindings", false, false)]
    #[case::deployments("list", "apps", "deployments", true, false)]
    #[case::deployment_write("create", "apps", "deployments", false, true)]
    #[case::velero("list", "velero.io", "backups", true, false)]
    #[case::velero_write("create", "velero.io", "backups", false, true)]
    #[case::served_group("watch", "example.com", "widgets", true, false)]
    #[case::served_group_write("patch", "example.com", "widgets", false, true)]
    #[case::unknown_group("list", "example.org", "gadgets", false, false)]
    #[case::unknown_group_write("create", "example.org", "gadgets", false, false)]
    #[case::kubevirt_console(
        "get",
        "subresources.kubevirt.io",
        "virtualmachineinstances/console",
        false,
        false
    )]
    // The escalations a `*` used to grant.
    #[case::exec("create", "", "pods/exec", false, false)]
    #[case::exec_get("get", "", "pods/exec", false, false)]
    #[case::node_proxy("get", "", "nodes/proxy", false, false)]
    #[case::token("create", "", "serviceaccounts/token", false, false)]
    #[case::attach("create", "", "pods/attach", false, false)]
    #[case::portforward("create", "", "pods/portforward", false, false)]
    #[case::ephemeral("patch", "", "pods/ephemeralcontainers", false, false)]
    // Not a backup or restore verb.
    #[case::delete("delete", "", "configmaps", false, false)]
    #[case::rbac_escalate("escalate", "rbac.authorization.k8s.io", "clusterroles", false, true)]
    fn roles_grant_exactly(
        #[case] verb: &str,
        #[case] group: &str,
        #[case] resource: &str,
        #[case] backup: bool,
        #[case] restore: bool,
    ) {
        let s = ApiScope::served(["newthings"], ["example.com", "subresources.kubevirt.io"]);
        assert_eq!(allows(&backup_rules(&s), verb, group, resource), backup);
        assert_eq!(allows(&restore_rules(&s), verb, group, resource), restore);
    }

    #[test]
    fn exec_hook_role_is_pods_exec_only() {
        let r = exec_hook_rules();
        assert!(allows(&r, "create", "", "pods/exec"));
        assert!(allows(&r, "get", "", "pods/exec"));
        assert!(!allows(&r, "get", "", "pods"));
        assert!(!allows(&r, "create", "", "pods/attach"));
        assert!(!allows(&r, "get", "", "nodes/proxy"));
    }

    #[rstest]
    #[case::star_all(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}), "create", "", "serviceaccounts/token", true)]
    #[case::star_resource_matches_subresources(json!({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}), "get", "", "nodes/proxy", true)]
    #[case::star_group_matches_core(json!({"apiGroups": ["*"], "resources": ["pods/exec"], "verbs": ["create"]}), "create", "", "pods/exec", true)]
    #[case::sub_wildcard(json!({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}), "create", "", "pods/exec", true)]
    #[case::any_scale(json!({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}), "update", "apps", "deployments/scale", true)]
    #[case::resource_not_subresource(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}), "create", "", "pods/exec", false)]
    #[case::other_group(json!({"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}), "get", "", "pods", false)]
    #[case::other_verb(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}), "list", "", "pods", false)]
    #[case::non_resource(json!({"nonResourceURLs": ["/api"], "verbs": ["get"]}), "get", "", "pods", false)]
    fn allows_matches_as_rbac_does(
        #[case] rule: Value,
        #[case] verb: &str,
        #[case] group: &str,
        #[case] resource: &str,
        #[case] allowed: bool,
    ) {
        assert_eq!(allows(&[rule], verb, group, resource), allowed);
    }

    #[rstest]
    #[case::same_rules_other_order(
        vec![json!({"verbs": ["list", "get"], "apiGroups": ["b", "a"], "resources": ["*"]})],
        vec![json!({"apiGroups": ["a", "b"], "resources": ["*"], "verbs": ["get", "list"]})],
        true
    )]
    #[case::empty_fields_aside(
        vec![json!({"apiGroups": ["a"], "resources": ["*"], "verbs": ["get"], "resourceNames": []})],
        vec![json!({"apiGroups": ["a"], "resources": ["*"], "verbs": ["get"]})],
        true
    )]
    #[case::more_is_fine(
        vec![json!({"apiGroups": ["a"], "resources": ["*"], "verbs": ["get"]}), json!({"nonResourceURLs": ["/api"], "verbs": ["get"]})],
        vec![json!({"nonResourceURLs": ["/api"], "verbs": ["get"]})],
        true
    )]
    #[case::a_group_missing(
        vec![json!({"apiGroups": ["a"], "resources": ["*"], "verbs": ["get"]})],
        vec![json!({"apiGroups": ["a", "b"], "resources": ["*"], "verbs": ["get"]})],
        false
    )]
    #[case::nothing_yet(vec![], vec![json!({"apiGroups": ["a"], "resources": ["*"], "verbs": ["get"]})], false)]
    fn covers_compares_rules_field_for_field(
        #[case] have: Vec<Value>,
        #[case] want: Vec<Value>,
        #[case] covered: bool,
    ) {
        assert_eq!(covers(&have, &want), covered);
    }

    #[test]
    fn aggregated_rules_are_those_of_the_matching_roles_once_each() {
        let rule = |g: &str| json!({"apiGroups": [g], "resources": ["*"], "verbs": ["get"]});
        let role = |name: &str, label: Option<&str>, rules: Vec<Value>| {
            let labels = label.map_or(json!({}), |l| json!({ l: "true" }));
            json!({"kind": "ClusterRole", "metadata": {"name": name, "labels": labels}, "rules": rules})
        };
        let aggregated = json!({
            "kind": "ClusterRole", "metadata": {"name": "lifeboat-backup"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO_BACKUP: "true"}}]}
        });
        let objs = [
            role(
                "base",
                Some(AGGREGATE_TO_BACKUP),
                vec![rule("apps"), rule("batch")],
            ),
            role(
                "operator",
                Some(AGGREGATE_TO_BACKUP),
                vec![rule("example.com"), rule("apps")],
            ),
            role(
                "restore",
                Some(AGGREGATE_TO_RESTORE),
                vec![rule("velero.io")],
            ),
            role("unlabelled", None, vec![rule("example.org")]),
            json!({"kind": "Role", "metadata": {"labels": {AGGREGATE_TO_BACKUP: "true"}}, "rules": [rule("policy")]}),
            aggregated.clone(),
        ];
        assert_eq!(
            aggregated_rules(&aggregated, &objs),
            vec![rule("apps"), rule("batch"), rule("example.com")]
        );
        assert!(aggregated_rules(&objs[0], &objs).is_empty());
    }

    #[rstest]
    #[case::new_group_read(
        "list",
        Some("example.com"),
        "widgets.example.com",
        "grant list on API group \"example.com\": to lifeboat's server with a ClusterRole labelled lifeboat.dev/aggregate-to-backup: \"true\" and the rule {apiGroups: [\"example.com\"], resources: [\"*\"], verbs: [get, list, watch]} (running `lifeboat install` again grants every group served by then), to another user with a Role/ClusterRole bound to it; or exclude the resource"
    )]
    #[case::new_group_write(
        "create",
        Some("example.com"),
        "widgets.example.com",
        "grant create on API group \"example.com\": to lifeboat's server with a ClusterRole labelled lifeboat.dev/aggregate-to-restore: \"true\" and the rule {apiGroups: [\"example.com\"], resources: [\"*\"], verbs: [create, patch, update]} (running `lifeboat install` again grants every group served by then), to another user with a Role/ClusterRole bound to it; or exclude the resource"
    )]
    #[case::core_names_the_resource_never_a_wildcard(
        "get",
        Some(""),
        "secrets",
        "grant get on secrets (core API group): to lifeboat's server with a ClusterRole labelled lifeboat.dev/aggregate-to-backup: \"true\" and the rule {apiGroups: [\"\"], resources: [secrets], verbs: [get, list, watch]} (running `lifeboat install` again grants every group served by then), to another user with a Role/ClusterRole bound to it; or exclude the resource"
    )]
    #[case::group_unknown(
        "list",
        None,
        "discovery",
        "grant it with a Role/ClusterRole bound to the user, or exclude the resource"
    )]
    #[case::other_verb(
        "delete",
        Some("apps"),
        "deployments.apps",
        "grant it with a Role/ClusterRole bound to the user, or exclude the resource"
    )]
    fn forbidden_fix_names_the_group_and_the_label(
        #[case] verb: &str,
        #[case] group: Option<&str>,
        #[case] resource: &str,
        #[case] fix: &str,
    ) {
        assert_eq!(forbidden_fix(verb, group, resource), fix);
    }
}
