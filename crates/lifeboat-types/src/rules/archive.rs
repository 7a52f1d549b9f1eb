//! Whether an item of a backup tarball may be restored at all, decided before the first
//! create (issue 11 item 4, issue 12 item 4): every name that will reach a REST path is
//! one the API server accepts (no `/`, `..`, `%`, `?`, spaces...), and every item's
//! apiVersion, kind, namespace and name agree with its path in the tarball (an item under
//! `resources/secrets/namespaces/x/` that holds a ClusterRoleBinding is refused, not half
//! restored).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::format::layout::ItemPath;

/// What is wrong with an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemProblem {
    /// A name that cannot be an object's (and must never reach a REST path).
    #[error("{what} {value:?} is not a valid Kubernetes name ({rule})")]
    BadName {
        /// What it names (`name`, `namespace`, `resource`, `version`, `group`, `kind`).
        what: &'static str,
        /// The value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The object contradicts its path.
    #[error("{field} is {found:?} but its path says {expected}")]
    Contradicts {
        /// The object's field.
        field: &'static str,
        /// What the object holds.
        found: String,
        /// What the path says (values quoted).
        expected: String,
    },
}

/// What the check reads of an item: `apiVersion`, `kind`, `metadata.name` and
/// `metadata.namespace`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemHead {
    /// `apiVersion`.
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// `kind`.
    #[serde(default)]
    pub kind: String,
    /// `metadata`.
    #[serde(default)]
    pub metadata: HeadMeta,
}

/// `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeadMeta {
    /// `metadata.name`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
}

const DNS_LABEL: &str =
    "at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit";
const DNS_SUBDOMAIN: &str = "at most 253 characters of lower-case letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit";
const PATH_SEGMENT: &str =
    "no '/', '%', '?', '#', spaces or control characters, and not '.' or '..'";
const KIND: &str = "a letter, then letters, digits or '-'";

/// A DNS-1123 label: namespaces, and the plural of a resource.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// A DNS-1123 subdomain: the name of almost every object, API groups. Each dot-separated
/// part is shaped as a label but, as the API server's `IsDNS1123Subdomain` has it, of any
/// length within the 253 (a 190-character ConfigMap name without dots is valid).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && p.as_bytes()[0].is_ascii_alphanumeric()
                && p.as_bytes()[p.len() - 1].is_ascii_alphanumeric()
        })
}

/// Whether lifeboat reads a tarball whose `metadata/version` says `version`: Velero's
/// format 1.x (`1.1.0` since Velero 1.4), and `1`, which Velero wrote before (its items
/// once, unversioned).
pub fn is_supported_format(version: &str) -> bool {
    version == "1" || version.starts_with("1.")
}

/// A name the API server accepts as a path segment (RBAC objects' names, as
/// `system:aggregate-to-admin`), without anything that means something in a URL.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'%' | b'?' | b'#'))
}

/// Whether objects of `gr` are named by the path-segment rule (RBAC), not as DNS
/// subdomains.
fn path_segment_named(gr: &str) -> bool {
    matches!(
        gr,
        "roles.rbac.authorization.k8s.io"
            | "rolebindings.rbac.authorization.k8s.io"
            | "clusterroles.rbac.authorization.k8s.io"
            | "clusterrolebindings.rbac.authorization.k8s.io"
    )
}

fn bad(what: &'static str, value: &str, rule: &'static str) -> ItemProblem {
    ItemProblem::BadName {
        what,
        value: value.to_owned(),
        rule,
    }
}

/// Checks the name of an object of `gr` as the API server would: namespaces are DNS
/// labels, RBAC objects path segments, every other object a DNS subdomain.
pub fn check_object_name(gr: &str, name: &str) -> Result<(), ItemProblem> {
    let (ok, rule) = if gr == "namespaces" {
        (is_dns_label(name), DNS_LABEL)
    } else if path_segment_named(gr) {
        (is_path_segment(name), PATH_SEGMENT)
    } else {
        (is_dns_subdomain(name), DNS_SUBDOMAIN)
    };
    if ok {
        Ok(())
    } else {
        Err(bad("name", name, rule))
    }
}

/// Built-in resources: group-resource, kind, namespaced.
const BUILT_IN: &[(&str, &str, bool)] = &[
    ("configmaps", "ConfigMap", true),
    ("endpoints", "Endpoints", true),
    ("events", "Event", true),
    ("limitranges", "LimitRange", true),
    ("namespaces", "Namespace", false),
    ("nodes", "Node", false),
    ("persistentvolumeclaims", "PersistentVolumeClaim", true),
    ("persistentvolumes", "PersistentVolume", false),
    ("pods", "Pod", true),
    ("podtemplates", "PodTemplate", true),
    ("replicationcontrollers", "ReplicationController", true),
    ("resourcequotas", "ResourceQuota", true),
    ("secrets", "Secret", true),
    ("serviceaccounts", "ServiceAccount", true),
    ("services", "Service", true),
    ("controllerrevisions.apps", "ControllerRevision", true),
    ("daemonsets.apps", "DaemonSet", true),
    ("deployments.apps", "Deployment", true),
    ("replicasets.apps", "ReplicaSet", true),
    ("statefulsets.apps", "StatefulSet", true),
    ("cronjobs.batch", "CronJob", true),
    ("jobs.batch", "Job", true),
    (
        "horizontalpodautoscalers.autoscaling",
        "HorizontalPodAutoscaler",
        true,
    ),
    ("leases.coordination.k8s.io", "Lease", true),
    ("endpointslices.discovery.k8s.io", "EndpointSlice", true),
    ("events.events.k8s.io", "Event", true),
    ("ingresses.networking.k8s.io", "Ingress", true),
    ("ingressclasses.networking.k8s.io", "IngressClass", false),
    ("networkpolicies.networking.k8s.io", "NetworkPolicy", true),
    ("poddisruptionbudgets.policy", "PodDisruptionBudget", true),
    (
        "clusterrolebindings.rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        false,
    ),
    (
        "clusterroles.rbac.authorization.k8s.io",
        "ClusterRole",
        false,
    ),
    (
        "rolebindings.rbac.authorization.k8s.io",
        "RoleBinding",
        true,
    ),
    ("roles.rbac.authorization.k8s.io", "Role", true),
    ("priorityclasses.scheduling.k8s.io", "PriorityClass", false),
    ("csidrivers.storage.k8s.io", "CSIDriver", false),
    ("csinodes.storage.k8s.io", "CSINode", false),
    ("storageclasses.storage.k8s.io", "StorageClass", false),
    (
        "volumeattachments.storage.k8s.io",
        "VolumeAttachment",
        false,
    ),
    (
        "customresourcedefinitions.apiextensions.k8s.io",
        "CustomResourceDefinition",
        false,
    ),
    (
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        false,
    ),
    (
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        false,
    ),
    ("apiservices.apiregistration.k8s.io", "APIService", false),
    (
        "certificatesigningrequests.certificates.k8s.io",
        "CertificateSigningRequest",
        false,
    ),
    ("runtimeclasses.node.k8s.io", "RuntimeClass", false),
];

fn built_in(gr: &str) -> Option<(&'static str, bool)> {
    BUILT_IN
        .iter()
        .find(|(g, _, _)| *g == gr)
        .map(|(_, k, n)| (*k, *n))
}

fn is_kind(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_version(s: &str) -> bool {
    is_dns_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Checks every item of one archive, in order: each on its own, and all items of one
/// resource against each other (one kind, one scope).
#[derive(Debug, Default)]
pub struct ArchiveCheck {
    /// Per group-resource: the kind and scope of its first item.
    seen: BTreeMap<String, (String, bool)>,
}

impl ArchiveCheck {
    /// Checks the item at `path` whose object reads `head`.
    pub fn check(&mut self, path: &ItemPath<'_>, head: &ItemHead) -> Result<(), ItemProblem> {
        let gr = path.group_resource;
        // The path's own names first: they become URL segments.
        let (plural, group) = gr.split_once('.').unwrap_or((gr, ""));
        if !is_dns_label(plural) {
            return Err(bad("resource", gr, DNS_LABEL));
        }
        if !group.is_empty() && !is_dns_subdomain(group) {
            return Err(bad("group", gr, DNS_SUBDOMAIN));
        }
        if let Some(v) = path.version
            && !is_version(v)
        {
            return Err(bad("version", v, DNS_LABEL));
        }
        if let Some(ns) = path.namespace
            && !is_dns_label(ns)
        {
            return Err(bad("namespace", ns, DNS_LABEL));
        }
        check_object_name(gr, path.name)?;

        // The object agrees with its path.
        let contradicts = |field, found: &str, expected: &str| ItemProblem::Contradicts {
            field,
            found: found.to_owned(),
            expected: expected.to_owned(),
        };
        let (api_group, api_version) = head
            .api_version
            .split_once('/')
            .unwrap_or(("", head.api_version.as_str()));
        if api_group != group {
            return Err(contradicts(
                "apiVersion",
                &head.api_version,
                &format!("group {group:?}"),
            ));
        }
        if !is_version(api_version) {
            return Err(bad("version", &head.api_version, DNS_LABEL));
        }
        if let Some(v) = path.version
            && v != api_version
        {
            return Err(contradicts(
                "apiVersion",
                &head.api_version,
                &format!("version {v:?}"),
            ));
        }
        if !is_kind(&head.kind) {
            return Err(bad("kind", &head.kind, KIND));
        }
        if head.metadata.name != path.name {
            return Err(contradicts(
                "metadata.name",
                &head.metadata.name,
                &format!("{:?}", path.name),
            ));
        }
        let namespace = head.metadata.namespace.as_deref().filter(|n| !n.is_empty());
        if namespace != path.namespace {
            return Err(contradicts(
                "metadata.namespace",
                namespace.unwrap_or("<none>"),
                &path
                    .namespace
                    .map(|n| format!("{n:?}"))
                    .unwrap_or_else(|| "none (cluster-scoped)".into()),
            ));
        }
        let namespaced = path.namespace.is_some();
        let scope = |n: bool| if n { "namespaced" } else { "cluster-scoped" };
        if let Some((kind, built_in_namespaced)) = built_in(gr) {
            if head.kind != kind {
                return Err(contradicts("kind", &head.kind, &format!("{kind:?}")));
            }
            if namespaced != built_in_namespaced {
                return Err(contradicts(
                    "scope",
                    scope(namespaced),
                    &format!("{:?}", scope(built_in_namespaced)),
                ));
            }
        }
        match self.seen.get(gr) {
            Some((kind, n)) => {
                if *kind != head.kind {
                    return Err(contradicts(
                        "kind",
                        &head.kind,
                        &format!("{kind:?} (as the other items of {gr})"),
                    ));
                }
                if *n != namespaced {
                    return Err(contradicts(
                        "scope",
                        scope(namespaced),
                        &format!("{:?} (as the other items of {gr})", scope(*n)),
                    ));
                }
            }
            None => {
                self.seen
                    .insert(gr.to_owned(), (head.kind.clone(), namespaced));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::layout::parse_item_path;
    use rstest::rstest;

    fn head(json: &str) -> ItemHead {
        serde_json::from_str(json).unwrap()
    }

    fn check(path: &str, json: &str) -> Result<(), ItemProblem> {
        let p = parse_item_path(path).unwrap();
        ArchiveCheck::default().check(&p, &head(json))
    }

    #[rstest]
    #[case::configmap(
        "resources/configmaps/v1-preferredversion/namespaces/shop/settings.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"shop"}}"#
    )]
    #[case::format_1_0(
        "resources/deployments.apps/namespaces/shop/web.json",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"}}"#
    )]
    #[case::cluster_scoped(
        "resources/namespaces/v1-preferredversion/cluster/shop.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}"#
    )]
    #[case::rbac_system_name(
        "resources/clusterroles.rbac.authorization.k8s.io/v1-preferredversion/cluster/system:aggregate-to-admin.json",
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"system:aggregate-to-admin"}}"#
    )]
    #[case::custom_resource(
        "resources/widgets.example.com/v1alpha1-preferredversion/namespaces/shop/w.1.json",
        r#"{"apiVersion":"example.com/v1alpha1","kind":"Widget","metadata":{"name":"w.1","namespace":"shop"}}"#
    )]
    #[case::empty_namespace_field_of_a_cluster_item(
        "resources/persistentvolumes/v1-preferredversion/cluster/pv-1.json",
        r#"{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv-1","namespace":""}}"#
    )]
    fn consistent_items_pass(#[case] path: &str, #[case] json: &str) {
        assert_eq!(check(path, json), Ok(()));
    }

    /// Issue 11 item 4 and issue 12 item 4: each row an item that must be refused before
    /// the first create, with the part of the message that says why.
    #[rstest]
    // Hostile names never reach a REST path.
    #[case::name_with_a_question_mark(
        "resources/configmaps/namespaces/shop/a?b.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a?b","namespace":"shop"}}"#,
        r#"name "a?b" is not a valid Kubernetes name"#
    )]
    #[case::name_with_a_percent(
        "resources/configmaps/namespaces/shop/a%2Fb.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a%2Fb","namespace":"shop"}}"#,
        r#"name "a%2Fb" is not a valid"#
    )]
    #[case::name_with_a_space(
        "resources/configmaps/namespaces/shop/a b.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a b","namespace":"shop"}}"#,
        r#"name "a b" is not a valid"#
    )]
    #[case::name_of_dots(
        "resources/configmaps/namespaces/shop/...json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"..","namespace":"shop"}}"#,
        r#"name ".." is not a valid"#
    )]
    #[case::upper_case_name(
        "resources/configmaps/namespaces/shop/Settings.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Settings","namespace":"shop"}}"#,
        r#"name "Settings" is not a valid"#
    )]
    #[case::rbac_name_with_a_slash_encoded(
        "resources/roles.rbac.authorization.k8s.io/namespaces/shop/a%2F..%2Fb.json",
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"a%2F..%2Fb","namespace":"shop"}}"#,
        r#"name "a%2F..%2Fb" is not a valid Kubernetes name (no '/', '%'"#
    )]
    #[case::namespace_with_a_question_mark(
        "resources/configmaps/namespaces/a?x=1/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a?x=1"}}"#,
        r#"namespace "a?x=1" is not a valid"#
    )]
    #[case::namespace_with_a_dot(
        "resources/configmaps/namespaces/a.b/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a.b"}}"#,
        r#"namespace "a.b" is not a valid"#
    )]
    #[case::resource_with_a_percent(
        "resources/config%3Fmaps/namespaces/shop/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"}}"#,
        r#"resource "config%3Fmaps" is not a valid"#
    )]
    #[case::group_with_a_space(
        "resources/widgets.exa mple.com/namespaces/shop/c.json",
        r#"{"apiVersion":"exa mple.com/v1","kind":"Widget","metadata":{"name":"c","namespace":"shop"}}"#,
        r#"group "widgets.exa mple.com" is not a valid"#
    )]
    #[case::api_version_escaping_its_path(
        "resources/configmaps/namespaces/shop/c.json",
        r#"{"apiVersion":"../../v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"}}"#,
        r#"apiVersion is "../../v1" but its path says group """#
    )]
    #[case::version_not_a_label(
        "resources/widgets.example.com/namespaces/shop/c.json",
        r#"{"apiVersion":"example.com/v1?x","kind":"Widget","metadata":{"name":"c","namespace":"shop"}}"#,
        r#"version "example.com/v1?x" is not a valid"#
    )]
    // The object contradicts its path (issue 12's example: a ClusterRoleBinding under
    // secrets).
    #[case::cluster_role_binding_under_secrets(
        "resources/secrets/namespaces/x/evil.json",
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"evil"}}"#,
        r#"apiVersion is "rbac.authorization.k8s.io/v1" but its path says group """#
    )]
    #[case::wrong_kind_of_the_group(
        "resources/secrets/namespaces/x/evil.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"evil","namespace":"x"}}"#,
        r#"kind is "ConfigMap" but its path says "Secret""#
    )]
    #[case::other_namespace(
        "resources/configmaps/namespaces/allowed/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"kube-system"}}"#,
        r#"metadata.namespace is "kube-system" but its path says "allowed""#
    )]
    #[case::namespace_of_a_cluster_path(
        "resources/configmaps/cluster/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"kube-system"}}"#,
        r#"metadata.namespace is "kube-system" but its path says none (cluster-scoped)"#
    )]
    #[case::no_namespace(
        "resources/configmaps/namespaces/shop/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
        r#"metadata.namespace is "<none>" but its path says "shop""#
    )]
    #[case::cluster_scoped_kind_in_a_namespace(
        "resources/clusterroles.rbac.authorization.k8s.io/namespaces/shop/r.json",
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"r","namespace":"shop"}}"#,
        r#"scope is "namespaced" but its path says "cluster-scoped""#
    )]
    #[case::other_name(
        "resources/configmaps/namespaces/shop/c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"prod-db","namespace":"shop"}}"#,
        r#"metadata.name is "prod-db" but its path says "c""#
    )]
    #[case::other_version(
        "resources/deployments.apps/v1-preferredversion/namespaces/shop/web.json",
        r#"{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"}}"#,
        r#"apiVersion is "apps/v1beta1" but its path says version "v1""#
    )]
    #[case::no_api_version(
        "resources/configmaps/namespaces/shop/c.json",
        r#"{"kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"}}"#,
        r#"version "" is not a valid"#
    )]
    #[case::no_kind(
        "resources/configmaps/namespaces/shop/c.json",
        r#"{"apiVersion":"v1","metadata":{"name":"c","namespace":"shop"}}"#,
        r#"kind "" is not a valid"#
    )]
    fn inconsistent_or_unsafe_items_are_refused(
        #[case] path: &str,
        #[case] json: &str,
        #[case] want: &str,
    ) {
        let err = check(path, json).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }

    #[test]
    fn the_items_of_one_resource_agree() {
        let mut c = ArchiveCheck::default();
        let p = |s| parse_item_path(s).unwrap();
        let w = |ns: &str, kind: &str| {
            head(&format!(
                r#"{{"apiVersion":"example.com/v1","kind":"{kind}","metadata":{{"name":"w","namespace":"{ns}"}}}}"#
            ))
        };
        c.check(
            &p("resources/widgets.example.com/namespaces/a/w.json"),
            &w("a", "Widget"),
        )
        .unwrap();
        c.check(
            &p("resources/widgets.example.com/namespaces/b/w.json"),
            &w("b", "Widget"),
        )
        .unwrap();
        let err = c
            .check(
                &p("resources/widgets.example.com/namespaces/c/w.json"),
                &w("c", "Gadget"),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"kind is "Gadget" but its path says "Widget" (as the other items of widgets.example.com)"#
        );
        let cluster =
            head(r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}"#);
        let err = c
            .check(&p("resources/widgets.example.com/cluster/w.json"), &cluster)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                r#"scope is "cluster-scoped" but its path says "namespaced" (as the other items"#
            ),
            "{err}"
        );
    }

    #[rstest]
    #[case::plain("web", true)]
    #[case::dotted("web.v2.example", true)]
    // Regression: a 190-character ConfigMap name without dots (valid for the API server)
    // was refused as if each part were a 63-character label.
    #[case::a_long_part(&format!("{}end", "a-very-long-name-".repeat(11)), true)]
    #[case::at_the_limit(&"a".repeat(253), true)]
    #[case::over_the_limit(&"a".repeat(254), false)]
    #[case::empty_part("a..b", false)]
    #[case::part_ending_with_a_dash("a-.b", false)]
    #[case::upper_case("Web", false)]
    #[case::underscore("a_b", false)]
    fn dns_subdomains(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(is_dns_subdomain(name), ok, "{name}");
    }

    #[rstest]
    #[case::velero_before_1_4("1", true)]
    #[case::velero_1_4_and_later("1.1.0", true)]
    #[case::a_later_minor("1.2.0", true)]
    #[case::major_2("2.0.0", false)]
    #[case::ten("10", false)]
    #[case::empty("", false)]
    fn formats(#[case] version: &str, #[case] ok: bool) {
        assert_eq!(is_supported_format(version), ok, "{version:?}");
    }
}
