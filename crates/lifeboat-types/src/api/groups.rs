//! Kubernetes' API groups: which are built in, and which CustomResourceDefinition may
//! define a resource.

/// The built-in API groups of Kubernetes 1.20 to 1.33 (`extensions` until 1.21).
pub const BUILTIN_GROUPS: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Whether `group` is one of Kubernetes' built-in API groups (or the core group, `""`).
pub fn is_builtin(group: &str) -> bool {
    group.is_empty() || BUILTIN_GROUPS.contains(&group)
}

/// The name of the CustomResourceDefinition that would define the resource `<plural>.<group>`
/// (as `ApiResource::group_resource` writes it): the same string, when the group is neither
/// the core group nor a built-in one. A built-in group's resources have no CRD: asking
/// the API server for one (`roles.rbac.authorization.k8s.io`) costs a GET, and a 403
/// where the user may not read CRDs.
pub fn crd_name_of(group_resource: &str) -> Option<&str> {
    let (_, group) = group_resource.split_once('.')?;
    (!is_builtin(group)).then_some(group_resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::core("configmaps", None)]
    #[case::apps("deployments.apps", None)]
    #[case::dotted_builtin("roles.rbac.authorization.k8s.io", None)]
    #[case::networking("ingresses.networking.k8s.io", None)]
    #[case::flowcontrol("flowschemas.flowcontrol.apiserver.k8s.io", None)]
    #[case::custom("widgets.example.com", Some("widgets.example.com"))]
    #[case::under_a_builtin_suffix(
        "volumesnapshots.snapshot.storage.k8s.io",
        Some("volumesnapshots.snapshot.storage.k8s.io")
    )]
    #[case::gateway(
        "httproutes.gateway.networking.k8s.io",
        Some("httproutes.gateway.networking.k8s.io")
    )]
    #[case::velero("backups.velero.io", Some("backups.velero.io"))]
    fn crd_name(#[case] gr: &str, #[case] want: Option<&str>) {
        assert_eq!(crd_name_of(gr), want);
    }

    #[rstest]
    #[case("", true)]
    #[case("batch", true)]
    #[case("storage.k8s.io", true)]
    #[case("snapshot.storage.k8s.io", false)]
    #[case("lifeboat.dev", false)]
    fn builtin(#[case] group: &str, #[case] want: bool) {
        assert_eq!(is_builtin(group), want);
    }
}
