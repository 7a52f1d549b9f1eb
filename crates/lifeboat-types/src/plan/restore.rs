//! Restore planning, pure: Velero's resource priorities and "never restored" list, which
//! items a Restore's filters keep, and how each object is made fit to be created again
//! (metadata reset, status, per-kind sanitizing, namespace mapping, labels).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::api::selector::Selector;
use crate::api::velero::RestoreSpec;
use crate::plan::backup::{NamespaceFilter, PlanError};
use crate::rules::volumes::{self, PvScope};

/// Label naming the backup an object was restored from.
pub const BACKUP_NAME_LABEL: &str = "velero.io/backup-name";
/// Label naming the restore that created an object.
pub const RESTORE_NAME_LABEL: &str = "velero.io/restore-name";

/// Velero 1.18's default restore priorities: these go first, in this order.
pub const HIGH_PRIORITIES: &[&str] = &[
    "customresourcedefinitions",
    "namespaces",
    "storageclasses",
    "volumesnapshotclass.snapshot.storage.k8s.io",
    "volumesnapshotcontents.snapshot.storage.k8s.io",
    "volumesnapshots.snapshot.storage.k8s.io",
    "datauploads.velero.io",
    "persistentvolumes",
    "persistentvolumeclaims",
    "clusterroles",
    "roles",
    "serviceaccounts",
    "clusterrolebindings",
    "rolebindings",
    "secrets",
    "configmaps",
    "limitranges",
    "priorityclasses",
    "pods",
    "replicasets.apps",
    "clusterclasses.cluster.x-k8s.io",
    "endpoints",
    "services",
];

/// These go last, in this order.
pub const LOW_PRIORITIES: &[&str] = &[
    "clusterbootstraps.run.tanzu.vmware.com",
    "clusters.cluster.x-k8s.io",
    "clusterresourcesets.addons.cluster.x-k8s.io",
];

/// Resources Velero never restores.
pub const NEVER_RESTORED: &[&str] = &[
    "nodes",
    "events",
    "events.events.k8s.io",
    "backups.velero.io",
    "restores.velero.io",
    "resticrepositories.velero.io",
    "backuprepositories.velero.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
];

fn plural_of(gr: &str) -> &str {
    gr.split('.').next().unwrap_or(gr)
}

/// Whether priority entry `entry` names group-resource `gr` (`clusterroles` names
/// `clusterroles.rbac.authorization.k8s.io`; a dotted entry must match exactly).
fn entry_matches(entry: &str, gr: &str) -> bool {
    if entry.contains('.') {
        entry == gr
    } else {
        plural_of(gr) == entry
    }
}

/// The phase of `gr`: high priorities first (one phase each), then every other resource
/// together, then the low priorities.
pub fn phase_of(gr: &str) -> usize {
    if let Some(i) = HIGH_PRIORITIES.iter().position(|e| entry_matches(e, gr)) {
        return i;
    }
    if let Some(i) = LOW_PRIORITIES.iter().position(|e| entry_matches(e, gr)) {
        return HIGH_PRIORITIES.len() + 1 + i;
    }
    HIGH_PRIORITIES.len()
}

/// Whether `gr` is never restored.
pub fn never_restored(gr: &str) -> bool {
    NEVER_RESTORED.contains(&gr)
}

/// What to do with an object: create it, or skip it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create it in `namespace` (the mapped one; `None` for cluster-scoped).
    Restore {
        /// Target namespace.
        namespace: Option<String>,
    },
    /// Leave it out.
    Skip(SkipReason),
}

/// Why an object is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Velero never restores this resource.
    NeverRestored,
    /// Filtered out by namespace, resource or label.
    Filtered,
    /// A controller that is also restored will create it.
    OwnedByRestoredController,
    /// A ServiceAccount token Secret: the cluster makes a new one.
    ServiceAccountToken,
    /// A PersistentVolume of a namespace-mapped restore that does not include cluster
    /// resources (it would point the new namespace at the original disk).
    VolumeOfMappedRestore,
    /// A PersistentVolume whose data is not restored and whose reclaim policy is `Delete`:
    /// its claim provisions a new volume.
    VolumeWithoutData,
    /// A PersistentVolume whose files are in the backup: its claim provisions a new volume,
    /// which the node agent fills.
    VolumeWithFiles,
    /// A PersistentVolume whose claim is restored from its CSI snapshot.
    VolumeFromSnapshot,
    /// A VolumeSnapshot or VolumeSnapshotContent of a CSI snapshot the restore imports by
    /// its handle (it makes its own).
    SnapshotImported,
    /// The API server serves the resource but does not allow creating it (its discovery
    /// verbs lack `create`: `componentstatuses`): no restore can create it.
    NotCreatable,
}

/// A Restore spec, compiled for deciding item by item.
#[derive(Debug, Clone)]
pub struct RestoreFilter {
    namespaces: NamespaceFilter,
    include_all_resources: bool,
    included_resources: BTreeSet<String>,
    excluded_resources: BTreeSet<String>,
    selectors: Vec<Selector>,
    cluster_resources: Option<bool>,
    mapping: BTreeMap<String, String>,
    pv_scope: PvScope,
    not_creatable: BTreeSet<String>,
    claims_with_files: BTreeSet<(String, String)>,
    pods_with_files: BTreeSet<(String, String)>,
    csi: CsiImports,
}

/// The CSI snapshots of a backup a restore imports by their handles
/// (`types::rules::csi`): their claims provision from them; the backed-up VolumeSnapshots
/// and contents are not restored as they were (the restore makes its own).
#[derive(Debug, Clone, Default)]
pub struct CsiImports {
    /// Claims (namespace, name in the backup).
    pub claims: BTreeSet<(String, String)>,
    /// VolumeSnapshots (namespace, name in the backup).
    pub snapshots: BTreeSet<(String, String)>,
    /// VolumeSnapshotContents (name).
    pub contents: BTreeSet<String>,
}

/// Whether a user's resource name (`deployments`, `deployments.apps`, `deploy` is not
/// known without discovery) designates `gr`.
fn resource_matches(name: &str, gr: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name == gr || (!name.contains('.') && plural_of(gr) == name)
}

impl RestoreFilter {
    /// Compiles the filters of `spec`.
    pub fn new(spec: &RestoreSpec) -> Result<Self, PlanError> {
        if spec.label_selector.is_some() && !spec.or_label_selectors.is_empty() {
            return Err(PlanError::BothSelectors);
        }
        let mut selectors = Vec::new();
        if let Some(ls) = &spec.label_selector {
            selectors.push(Selector::from_label_selector(ls)?);
        }
        for ls in &spec.or_label_selectors {
            selectors.push(Selector::from_label_selector(ls)?);
        }
        let namespaces =
            NamespaceFilter::new(&spec.included_namespaces, &spec.excluded_namespaces)?;
        let pv_scope = volumes::pv_scope(
            spec.include_cluster_resources,
            namespaces.includes_everything(),
            spec.namespace_mapping.iter().any(|(from, to)| from != to),
        );
        Ok(RestoreFilter {
            namespaces,
            include_all_resources: spec.included_resources.is_empty()
                || spec.included_resources.iter().any(|r| r == "*"),
            included_resources: spec.included_resources.iter().cloned().collect(),
            excluded_resources: spec.excluded_resources.iter().cloned().collect(),
            selectors,
            cluster_resources: spec.include_cluster_resources,
            mapping: spec.namespace_mapping.clone(),
            pv_scope,
            not_creatable: BTreeSet::new(),
            claims_with_files: BTreeSet::new(),
            pods_with_files: BTreeSet::new(),
            csi: CsiImports::default(),
        })
    }

    /// The resources (group-resource) the target cluster serves without the `create` verb:
    /// skipped as [`SkipReason::NotCreatable`], never tried.
    pub fn with_not_creatable(mut self, not_creatable: BTreeSet<String>) -> Self {
        self.not_creatable = not_creatable;
        self
    }

    /// The claims (namespace and name in the backup) whose volume's files are in the
    /// backup (pod volume backups): their volumes are provisioned afresh
    /// ([`volumes::VolumeData::Files`]).
    pub fn with_claims_with_files(mut self, claims: BTreeSet<(String, String)>) -> Self {
        self.claims_with_files = claims;
        self
    }

    /// The pods (namespace and name in the backup) whose volumes' files are in the backup:
    /// restored even when their controller is, as Velero does — the data is written into
    /// the restored pod, which the controller's new ReplicaSet (same template, same
    /// `pod-template-hash`) then adopts. A pod the controller made afresh would start on
    /// empty volumes.
    pub fn with_pods_with_files(mut self, pods: BTreeSet<(String, String)>) -> Self {
        self.pods_with_files = pods;
        self
    }

    /// Whether pod `namespace/name` of the backup has its volumes' files in it.
    pub fn pod_has_files(&self, namespace: &str, name: &str) -> bool {
        self.pods_with_files
            .contains(&(namespace.to_owned(), name.to_owned()))
    }

    /// The CSI snapshots this restore imports.
    pub fn with_csi_imports(mut self, csi: CsiImports) -> Self {
        self.csi = csi;
        self
    }

    /// The CSI snapshots this restore imports.
    pub fn csi_imports(&self) -> &CsiImports {
        &self.csi
    }

    /// Whether claim `namespace/name` of the backup has its volume's files in it.
    pub fn claim_has_files(&self, namespace: &str, name: &str) -> bool {
        self.claims_with_files
            .contains(&(namespace.to_owned(), name.to_owned()))
    }

    /// Which PersistentVolumes this restore may create ([`volumes::pv_scope`]).
    pub fn pv_scope(&self) -> PvScope {
        self.pv_scope
    }

    fn resource_included(&self, gr: &str) -> bool {
        if self
            .excluded_resources
            .iter()
            .any(|n| resource_matches(n, gr))
        {
            return false;
        }
        self.include_all_resources
            || self
                .included_resources
                .iter()
                .any(|n| resource_matches(n, gr))
    }

    /// The namespace an object of `namespace` lands in.
    pub fn map_namespace<'a>(&'a self, namespace: &'a str) -> &'a str {
        self.mapping
            .get(namespace)
            .map(String::as_str)
            .unwrap_or(namespace)
    }

    /// Decides on one item from the backup.
    pub fn decide(
        &self,
        gr: &str,
        namespace: Option<&str>,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Decision {
        if never_restored(gr) {
            return Decision::Skip(SkipReason::NeverRestored);
        }
        if self.not_creatable.contains(gr) {
            return Decision::Skip(SkipReason::NotCreatable);
        }
        if !self.resource_included(gr) {
            return Decision::Skip(SkipReason::Filtered);
        }
        let is_namespace = gr == "namespaces";
        match namespace {
            Some(ns) => {
                if !self.namespaces.includes(ns) {
                    return Decision::Skip(SkipReason::Filtered);
                }
            }
            None if is_namespace => {
                if !self.namespaces.includes(name) {
                    return Decision::Skip(SkipReason::Filtered);
                }
            }
            // Volumes by their own rule (the plan keeps only those of restored claims when
            // the scope says so): never bind a restored claim to a production disk.
            None if gr == "persistentvolumes" => {
                if self.pv_scope == PvScope::Nothing {
                    return Decision::Skip(if self.cluster_resources.is_none() {
                        SkipReason::VolumeOfMappedRestore
                    } else {
                        SkipReason::Filtered
                    });
                }
            }
            None => {
                let wanted = match self.cluster_resources {
                    Some(v) => v,
                    None => self.namespaces.includes_everything(),
                };
                if !wanted && gr != "customresourcedefinitions.apiextensions.k8s.io" {
                    return Decision::Skip(SkipReason::Filtered);
                }
            }
        }
        if !is_namespace
            && !self.selectors.is_empty()
            && !self.selectors.iter().any(|s| s.matches(labels))
        {
            return Decision::Skip(SkipReason::Filtered);
        }
        Decision::Restore {
            namespace: namespace.map(|n| self.map_namespace(n).to_owned()),
        }
    }
}

/// Options of [`sanitize`].
#[derive(Debug, Clone, Default)]
pub struct SanitizeOptions {
    /// The backup's name (label value).
    pub backup_name: String,
    /// The restore's name (label value).
    pub restore_name: String,
    /// Source → target namespaces.
    pub namespace_mapping: BTreeMap<String, String>,
    /// Keep Services' node ports.
    pub preserve_node_ports: bool,
    /// Resources whose status is kept (`*` for all).
    pub status_included: Vec<String>,
    /// Resources whose status is dropped even if included.
    pub status_excluded: Vec<String>,
}

impl SanitizeOptions {
    fn keeps_status(&self, gr: &str) -> bool {
        if self.status_excluded.iter().any(|n| resource_matches(n, gr)) {
            return false;
        }
        self.status_included
            .iter()
            .any(|n| n == "*" || resource_matches(n, gr))
    }

    /// The namespace `ns` of the backup is restored into.
    pub fn map_ns(&self, ns: &str) -> String {
        self.namespace_mapping
            .get(ns)
            .cloned()
            .unwrap_or_else(|| ns.to_owned())
    }
}

const RESET_METADATA: &[&str] = &[
    "generateName",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "managedFields",
];

/// Whether `obj` is a Secret holding a ServiceAccount token (the cluster makes new ones).
pub fn is_service_account_token(gr: &str, obj: &Value) -> bool {
    gr == "secrets"
        && obj.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token")
}

/// The UID of the controller owning `obj`, if any.
pub fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// Makes a backed-up object fit to be created: metadata reset, status dropped (unless
/// kept), per-kind fields the cluster assigns removed, namespaces mapped, restore labels
/// added.
pub fn sanitize(gr: &str, obj: &mut Value, o: &SanitizeOptions) {
    if let Some(meta) = obj_meta(obj) {
        for k in RESET_METADATA {
            meta.remove(*k);
        }
        if let Some(ns) = meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            meta.insert("namespace".into(), Value::String(o.map_ns(&ns)));
        }
        if gr == "namespaces"
            && let Some(name) = meta.get("name").and_then(Value::as_str).map(str::to_owned)
        {
            meta.insert("name".into(), Value::String(o.map_ns(&name)));
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(l) = labels.as_object_mut() {
            l.insert(
                BACKUP_NAME_LABEL.into(),
                Value::String(o.backup_name.clone()),
            );
            l.insert(
                RESTORE_NAME_LABEL.into(),
                Value::String(o.restore_name.clone()),
            );
        }
    }
    if !o.keeps_status(gr)
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match gr {
        "services" => sanitize_service(obj, o.preserve_node_ports),
        "pods" => sanitize_pod(obj),
        "jobs.batch" => sanitize_job(obj),
        "persistentvolumes" => sanitize_pv(obj, o),
        "persistentvolumeclaims" => volumes::reset_claim(obj),
        "rolebindings.rbac.authorization.k8s.io"
        | "clusterrolebindings.rbac.authorization.k8s.io" => map_subjects(obj, o),
        // Token secrets are recreated by the cluster; references to the old ones go.
        "serviceaccounts" => strip_sa_token_refs(obj),
        _ => {}
    }
}

fn m_name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn obj_meta(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("metadata").and_then(Value::as_object_mut)
}

fn strip_sa_token_refs(obj: &mut Value) {
    let name = m_name(obj);
    let prefix = format!("{name}-token-");
    if let Some(secrets) = obj.get_mut("secrets").and_then(Value::as_array_mut) {
        secrets.retain(|s| {
            !s.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(&prefix))
        });
    }
}

fn sanitize_service(obj: &mut Value, preserve_node_ports: bool) {
    let Some(spec) = obj_spec(obj) else { return };
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if !headless {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    if !preserve_node_ports && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
    {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    if !preserve_node_ports {
        spec.remove("healthCheckNodePort");
    }
}

fn obj_spec(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("spec").and_then(Value::as_object_mut)
}

fn sanitize_pod(obj: &mut Value) {
    let sa = obj
        .pointer("/spec/serviceAccountName")
        .or_else(|| obj.pointer("/spec/serviceAccount"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let prefix = format!("{sa}-token-");
    let Some(spec) = obj_spec(obj) else { return };
    spec.remove("nodeName");
    spec.remove("priority");
    let mut dropped = BTreeSet::new();
    if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        vols.retain(|v| {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            let keep = !name.starts_with(&prefix);
            if !keep {
                dropped.insert(name.to_owned());
            }
            keep
        });
    }
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(mounts) = c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    mounts.retain(|m| {
                        !m.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| dropped.contains(n))
                    });
                }
            }
        }
    }
}

fn sanitize_job(obj: &mut Value) {
    for ptr in [
        "/spec/selector/matchLabels",
        "/spec/template/metadata/labels",
    ] {
        if let Some(m) = obj.pointer_mut(ptr).and_then(Value::as_object_mut) {
            m.remove("controller-uid");
            m.remove("batch.kubernetes.io/controller-uid");
        }
    }
    // A selector left empty is regenerated by the API server.
    if obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .is_some_and(|m| m.is_empty())
        && let Some(spec) = obj_spec(obj)
    {
        spec.remove("selector");
    }
}

fn sanitize_pv(obj: &mut Value, o: &SanitizeOptions) {
    volumes::reset_volume(obj);
    if let Some(claim) = obj
        .pointer_mut("/spec/claimRef")
        .and_then(Value::as_object_mut)
        && let Some(ns) = claim
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned)
    {
        claim.insert("namespace".into(), Value::String(o.map_ns(&ns)));
    }
}

fn map_subjects(obj: &mut Value, o: &SanitizeOptions) {
    if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            if let Some(ns) = s
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
                && let Some(m) = s.as_object_mut()
            {
                m.insert("namespace".into(), Value::String(o.map_ns(&ns)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case("customresourcedefinitions.apiextensions.k8s.io", 0)]
    #[case("namespaces", 1)]
    #[case("clusterroles.rbac.authorization.k8s.io", 9)]
    #[case("secrets", 14)]
    #[case("configmaps", 15)]
    #[case("replicasets.apps", 19)]
    #[case("services", 22)]
    #[case("deployments.apps", 23)]
    #[case("widgets.example.com", 23)]
    #[case("clusters.cluster.x-k8s.io", 25)]
    fn priorities_follow_velero(#[case] gr: &str, #[case] phase: usize) {
        assert_eq!(phase_of(gr), phase);
    }

    #[test]
    fn crds_before_namespaces_before_everything() {
        let mut grs = vec![
            "deployments.apps",
            "namespaces",
            "secrets",
            "customresourcedefinitions.apiextensions.k8s.io",
            "pods",
        ];
        grs.sort_by_key(|g| phase_of(g));
        assert_eq!(
            grs,
            [
                "customresourcedefinitions.apiextensions.k8s.io",
                "namespaces",
                "secrets",
                "pods",
                "deployments.apps"
            ]
        );
    }

    fn opts() -> SanitizeOptions {
        SanitizeOptions {
            backup_name: "b1".into(),
            restore_name: "r1".into(),
            namespace_mapping: [("prod".to_string(), "prod-restored".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn metadata_reset_status_dropped_labels_added() {
        let mut o = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "uid": "u", "resourceVersion": "5", "generation": 3,
                         "creationTimestamp": "2026-01-01T00:00:00Z", "selfLink": "/x", "managedFields": [{}],
                         "ownerReferences": [{"uid": "o"}], "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 2}
        });
        sanitize("deployments.apps", &mut o, &opts());
        insta::assert_json_snapshot!(o, @r#"
        {
          "apiVersion": "apps/v1",
          "kind": "Deployment",
          "metadata": {
            "annotations": {
              "a": "b"
            },
            "labels": {
              "app": "web",
              "velero.io/backup-name": "b1",
              "velero.io/restore-name": "r1"
            },
            "name": "web",
            "namespace": "prod-restored"
          },
          "spec": {
            "replicas": 2
          }
        }
        "#);
        let mut keep = opts();
        keep.status_included = vec!["deployments".into()];
        let mut o2 = json!({"metadata": {"name": "x"}, "status": {"a": 1}});
        sanitize("deployments.apps", &mut o2, &keep);
        assert_eq!(o2["status"]["a"], 1);
    }

    #[rstest]
    #[case(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}), false,
           json!({"type": "NodePort", "ports": [{"port": 80}]}))]
    #[case(json!({"clusterIP": "10.96.0.5", "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}), true,
           json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}))]
    #[case(json!({"clusterIP": "None", "ports": [{"port": 80}]}), false, json!({"clusterIP": "None", "ports": [{"port": 80}]}))]
    fn services(#[case] spec: Value, #[case] preserve: bool, #[case] expected: Value) {
        let mut o = json!({"metadata": {"name": "s", "namespace": "a"}, "spec": spec});
        let mut op = opts();
        op.preserve_node_ports = preserve;
        sanitize("services", &mut o, &op);
        assert_eq!(o["spec"], expected);
    }

    #[test]
    fn pods_lose_node_and_token_volume() {
        let mut o = json!({"metadata": {"name": "p", "namespace": "a"}, "spec": {
            "nodeName": "n1", "priority": 0, "serviceAccountName": "app",
            "volumes": [{"name": "app-token-abcde", "secret": {}}, {"name": "data", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "app-token-abcde"}, {"name": "data"}]}]}});
        sanitize("pods", &mut o, &opts());
        assert_eq!(
            o["spec"],
            json!({"serviceAccountName": "app", "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "data"}]}]})
        );
    }

    #[test]
    fn jobs_lose_controller_uid() {
        let mut o = json!({"metadata": {"name": "j", "namespace": "a"}, "spec": {
            "selector": {"matchLabels": {"controller-uid": "x"}},
            "template": {"metadata": {"labels": {"controller-uid": "x", "job-name": "j"}}}}});
        sanitize("jobs.batch", &mut o, &opts());
        assert_eq!(
            o["spec"],
            json!({"template": {"metadata": {"labels": {"job-name": "j"}}}})
        );
    }

    #[test]
    fn pv_claim_ref_and_bindings_are_remapped() {
        let mut pv = json!({"metadata": {"name": "pv1", "annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
            "spec": {"claimRef": {"namespace": "prod", "name": "data", "uid": "u", "resourceVersion": "1"}}});
        sanitize("persistentvolumes", &mut pv, &opts());
        assert_eq!(
            pv["spec"]["claimRef"],
            json!({"namespace": "prod-restored", "name": "data"})
        );
        let mut rb = json!({"metadata": {"name": "rb", "namespace": "prod"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "prod"}, {"kind": "User", "name": "u"}]});
        sanitize("rolebindings.rbac.authorization.k8s.io", &mut rb, &opts());
        assert_eq!(rb["subjects"][0]["namespace"], "prod-restored");
        assert_eq!(rb["metadata"]["namespace"], "prod-restored");
        let mut ns = json!({"metadata": {"name": "prod"}});
        sanitize("namespaces", &mut ns, &opts());
        assert_eq!(ns["metadata"]["name"], "prod-restored");
    }

    #[test]
    fn service_account_tokens() {
        let s = json!({"type": "kubernetes.io/service-account-token"});
        assert!(is_service_account_token("secrets", &s));
        assert!(!is_service_account_token(
            "secrets",
            &json!({"type": "Opaque"})
        ));
        let mut sa = json!({"metadata": {"name": "app", "namespace": "a"}, "secrets": [{"name": "app-token-x"}, {"name": "other"}]});
        sanitize("serviceaccounts", &mut sa, &opts());
        assert_eq!(sa["secrets"], json!([{"name": "other"}]));
        let owned = json!({"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b", "controller": true}]}});
        assert_eq!(controller_uid(&owned), Some("b"));
    }

    #[rstest]
    #[case(RestoreSpec::default(), "configmaps", Some("a"), Decision::Restore { namespace: Some("a".into()) })]
    #[case(
        RestoreSpec::default(),
        "events",
        Some("a"),
        Decision::Skip(SkipReason::NeverRestored)
    )]
    #[case(
        RestoreSpec::default(),
        "nodes",
        None,
        Decision::Skip(SkipReason::NeverRestored)
    )]
    #[case(RestoreSpec { included_namespaces: vec!["b".into()], ..Default::default() }, "configmaps", Some("a"), Decision::Skip(SkipReason::Filtered))]
    #[case(RestoreSpec { included_namespaces: vec!["a".into()], ..Default::default() }, "clusterroles.rbac.authorization.k8s.io", None, Decision::Skip(SkipReason::Filtered))]
    #[case(RestoreSpec { included_namespaces: vec!["a".into()], ..Default::default() }, "customresourcedefinitions.apiextensions.k8s.io", None, Decision::Restore { namespace: None })]
    #[case(RestoreSpec { excluded_resources: vec!["configmaps".into()], ..Default::default() }, "configmaps", Some("a"), Decision::Skip(SkipReason::Filtered))]
    #[case(RestoreSpec { included_resources: vec!["deployments".into()], ..Default::default() }, "deployments.apps", Some("a"), Decision::Restore { namespace: Some("a".into()) })]
    #[case(RestoreSpec { namespace_mapping: [("a".to_string(), "z".to_string())].into(), ..Default::default() }, "secrets", Some("a"), Decision::Restore { namespace: Some("z".into()) })]
    // Issue 11 item 5: volumes are cluster-scoped; a mapped restore creates none unless asked.
    #[case(RestoreSpec::default(), "persistentvolumes", None, Decision::Restore { namespace: None })]
    #[case(RestoreSpec { included_namespaces: vec!["a".into()], ..Default::default() }, "persistentvolumes", None, Decision::Restore { namespace: None })]
    #[case(RestoreSpec { include_cluster_resources: Some(false), ..Default::default() }, "persistentvolumes", None, Decision::Skip(SkipReason::Filtered))]
    #[case(RestoreSpec { namespace_mapping: [("a".to_string(), "z".to_string())].into(), ..Default::default() }, "persistentvolumes", None, Decision::Skip(SkipReason::VolumeOfMappedRestore))]
    #[case(RestoreSpec { namespace_mapping: [("a".to_string(), "a".to_string())].into(), ..Default::default() }, "persistentvolumes", None, Decision::Restore { namespace: None })]
    #[case(RestoreSpec { namespace_mapping: [("a".to_string(), "z".to_string())].into(), include_cluster_resources: Some(true), ..Default::default() }, "persistentvolumes", None, Decision::Restore { namespace: None })]
    fn decisions(
        #[case] spec: RestoreSpec,
        #[case] gr: &str,
        #[case] ns: Option<&str>,
        #[case] expected: Decision,
    ) {
        let f = RestoreFilter::new(&spec).unwrap();
        assert_eq!(f.decide(gr, ns, "x", &BTreeMap::new()), expected);
    }

    /// Issue 12, item 3: a resource the API server does not allow creating
    /// (`componentstatuses`) was tried and reported as 405 errors.
    #[rstest]
    #[case::not_creatable("componentstatuses", None, Decision::Skip(SkipReason::NotCreatable))]
    #[case::never_restored_wins("nodes", None, Decision::Skip(SkipReason::NeverRestored))]
    #[case::others_unchanged("configmaps", Some("a"), Decision::Restore { namespace: Some("a".into()) })]
    fn resources_that_cannot_be_created_are_skipped(
        #[case] gr: &str,
        #[case] ns: Option<&str>,
        #[case] expected: Decision,
    ) {
        let f = RestoreFilter::new(&RestoreSpec::default())
            .unwrap()
            .with_not_creatable(["componentstatuses".to_string(), "nodes".to_string()].into());
        assert_eq!(f.decide(gr, ns, "x", &BTreeMap::new()), expected);
    }
}
