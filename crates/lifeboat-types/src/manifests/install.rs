//! What `lifeboat install` puts into a cluster, as data: the namespace, the CRDs, a
//! ServiceAccount, least-privilege RBAC, the server Deployment and its metrics Service,
//! and optionally a default BackupStorageLocation and its credentials Secret.
//!
//! RBAC is split so that each permission has one reason:
//! - ClusterRole `lifeboat-backup`: get/list/watch on every object — what a backup reads.
//! - ClusterRole `lifeboat-restore`: create/patch/update on every object — what a restore
//!   writes; not bound with `--backup-only`.
//! - ClusterRole `lifeboat-exec-hooks`: `pods/exec`; not bound with `--no-exec-hooks`.
//! - Role `lifeboat-server` in the install namespace: the lifeboat.dev resources, Leases
//!   (leader election), Events, and the Secrets/ConfigMaps a location or a restore names.
//!
//! "Every object" is enumerated, never `*` (which also matches `pods/exec`, `nodes/proxy`
//! and `serviceaccounts/token`): see [`rbac`]. The backup and restore roles aggregate
//! `lifeboat-backup-base` / `lifeboat-restore-base` and any ClusterRole labelled for them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::crd;
use crate::manifests::rbac::{self, ApiScope};

/// Options of `lifeboat install`.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Namespace of the server and its resources.
    pub namespace: String,
    /// lifeboat's container image.
    pub image: String,
    /// Server replicas (one leads at a time).
    pub replicas: u32,
    /// Bind only the backup (read) role, not the restore (write) role.
    pub backup_only: bool,
    /// Do not bind the exec-hooks role (`pods/exec`): backup and restore exec hooks then
    /// fail as forbidden.
    pub no_exec_hooks: bool,
    /// Port of /metrics, /healthz and /readyz.
    pub metrics_port: u16,
    /// What the backup and restore roles cover: the served core resources and API groups
    /// when install can ask the cluster, else the built-in ones ([`ApiScope::builtin`]).
    pub api: ApiScope,
    /// A default storage location to create (provider, bucket, prefix, config).
    pub location: Option<LocationOptions>,
    /// A default volume snapshot location to record (kept; no volume is snapshotted yet).
    pub snapshot_location: Option<SnapshotLocationOptions>,
    /// The node agent DaemonSet (`--use-node-agent`), which copies pod volumes' files.
    pub node_agent: Option<NodeAgentOptions>,
    /// The server's `--default-volumes-to-fs-backup`: backups that do not say copy every
    /// pod volume's files.
    pub default_volumes_to_fs_backup: bool,
    /// The server's `--fs-backup-timeout` (its default, 4h, when `None`).
    pub fs_backup_timeout: Option<std::time::Duration>,
}

/// The node agent `install --use-node-agent` runs on every node.
#[derive(Debug, Clone)]
pub struct NodeAgentOptions {
    /// The kubelet's root directory on the nodes (`--kubelet-root-dir`); its `pods`
    /// directory is mounted into the agent.
    pub kubelet_root: String,
    /// The repository key (`--repo-password-file`), stored as Secret
    /// [`REPO_KEY_SECRET`] (key [`REPO_KEY_KEY`]) and mounted into the agent. `None`
    /// keeps a Secret made earlier; without any, volume backups fail naming the fix.
    pub repo_key: Option<String>,
}

/// The Secret holding the repository key of pod volume data.
pub const REPO_KEY_SECRET: &str = "lifeboat-repo-credentials";
/// Its key.
pub const REPO_KEY_KEY: &str = "repository-password";
/// Where the node agent finds the kubelet's root directory (the node's `<root>/pods` is
/// mounted at `<this>/pods`).
pub const AGENT_KUBELET_ROOT: &str = "/host_kubelet";
/// Where the node agent finds the repository key.
pub const AGENT_KEY_FILE: &str = "/credentials/repository-password";
/// The node agent's DaemonSet, in the server's namespace.
pub const NODE_AGENT_DAEMONSET: &str = "node-agent";
/// The node agent pods' `app.kubernetes.io/name` label (also the name of its
/// ServiceAccount and roles): how a reader tells lifeboat's DaemonSet from another
/// tool's of the same name.
pub const NODE_AGENT_APP: &str = "lifeboat-node-agent";
/// The environment variable naming the image of the restore-wait init container (the
/// server's own image).
pub const IMAGE_ENV: &str = "LIFEBOAT_IMAGE";

/// The volume snapshot location `default` that `install` records.
#[derive(Debug, Clone)]
pub struct SnapshotLocationOptions {
    /// Velero provider name.
    pub provider: String,
    /// Provider config (`--snapshot-location-config`).
    pub config: BTreeMap<String, String>,
}

/// The default location `install` creates.
#[derive(Debug, Clone)]
pub struct LocationOptions {
    /// Velero provider name.
    pub provider: String,
    /// Bucket (or directory for `file`).
    pub bucket: String,
    /// Prefix in the bucket.
    pub prefix: String,
    /// Provider config.
    pub config: BTreeMap<String, String>,
    /// Contents of a credentials file, stored as Secret `cloud-credentials`, key `cloud`.
    pub credentials: Option<String>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            namespace: "lifeboat".into(),
            image: "lifeboat:latest".into(),
            replicas: 1,
            backup_only: false,
            no_exec_hooks: false,
            metrics_port: 8085,
            api: ApiScope::builtin(),
            location: None,
            snapshot_location: None,
            node_agent: None,
            default_volumes_to_fs_backup: false,
            fs_backup_timeout: None,
        }
    }
}

/// How long the installed server lets a running backup or restore finish after SIGTERM
/// (`lifeboat server --shutdown-grace-period`, whose default it is): long enough for the
/// backups a cluster usually takes, so that a rollout or a node drain does not cut them
/// (issue 11, item 10). An idle server stops at once; one whose run outlasts it marks the
/// run Failed ("interrupted by shutdown").
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// What the Deployment's `terminationGracePeriodSeconds` adds to [`SHUTDOWN_GRACE`] before
/// the kubelet kills the server: the time to write the Failed status and release the Lease.
pub const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The labels every installed object carries (uninstall finds them by it).
pub const COMPONENT_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "lifeboat");

fn labels() -> Value {
    json!({ COMPONENT_LABEL.0: COMPONENT_LABEL.1 })
}

/// The REST collection path of an installed object's kind, and whether it is namespaced.
pub fn collection(api_version: &str, kind: &str, namespace: &str) -> Option<String> {
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "Secret" => ("secrets", true),
        "Service" => ("services", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Deployment" => ("deployments", true),
        "DaemonSet" => ("daemonsets", true),
        "BackupStorageLocation" => ("backupstoragelocations", true),
        "VolumeSnapshotLocation" => ("volumesnapshotlocations", true),
        _ => return None,
    };
    let root = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    Some(if namespaced {
        format!("{root}/namespaces/{namespace}/{plural}")
    } else {
        format!("{root}/{plural}")
    })
}

/// Every object of an installation, in the order they are applied.
pub fn manifests(o: &InstallOptions) -> Vec<Value> {
    let ns = &o.namespace;
    let mut out = vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": ns, "labels": labels() }
    })];
    for c in crd::all() {
        let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
        v["apiVersion"] = json!("apiextensions.k8s.io/v1");
        v["kind"] = json!("CustomResourceDefinition");
        v["metadata"]["labels"] = labels();
        out.push(v);
    }
    out.push(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": { "name": "lifeboat", "namespace": ns, "labels": labels() }
    }));
    // The backup and restore roles aggregate their base (replaced by each install) and
    // whatever ClusterRole an operator labels for them: a group installed later is granted
    // without touching lifeboat's objects (`rbac`'s module doc says why the rules name
    // groups and core resources instead of `*`).
    for (role, label, rules) in [
        (
            "lifeboat-backup",
            rbac::AGGREGATE_TO_BACKUP,
            rbac::backup_rules(&o.api),
        ),
        (
            "lifeboat-restore",
            rbac::AGGREGATE_TO_RESTORE,
            rbac::restore_rules(&o.api),
        ),
    ] {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {
                "name": format!("{role}-base"),
                "labels": { COMPONENT_LABEL.0: COMPONENT_LABEL.1, label: "true" }
            },
            "rules": rules
        }));
        // No `rules`: the aggregation controller owns them (an applied empty list would
        // empty the role for a moment on every install).
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": { "name": role, "labels": labels() },
            "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { label: "true" } }] }
        }));
    }
    // Exec hooks run commands in workload pods: their own role, so that it can be left
    // unbound (`--no-exec-hooks`) and audited apart from the read and write roles, which
    // grant no subresource of the core group.
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": { "name": "lifeboat-exec-hooks", "labels": labels() },
        "rules": rbac::exec_hook_rules()
    }));
    let mut bound = vec!["lifeboat-backup"];
    if !o.backup_only {
        bound.push("lifeboat-restore");
    }
    if !o.no_exec_hooks {
        bound.push("lifeboat-exec-hooks");
    }
    for role in bound {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": format!("{role}-{ns}"), "labels": labels() },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
            "subjects": [{ "kind": "ServiceAccount", "name": "lifeboat", "namespace": ns }]
        }));
    }
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": { "name": "lifeboat-server", "namespace": ns, "labels": labels() },
        "rules": [
            { "apiGroups": [crd::GROUP], "resources": ["*"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"] },
            { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"] },
            { "apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"] },
            { "apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get"] },
            // The leader labels its own pod, and unlabels a former leader's, so that the
            // metrics Service selects the leader (lifeboat-server's leader_pod.rs).
            { "apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"] }
        ]
    }));
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "lifeboat-server", "namespace": ns, "labels": labels() },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lifeboat-server" },
        "subjects": [{ "kind": "ServiceAccount", "name": "lifeboat", "namespace": ns }]
    }));
    if let Some(l) = &o.location {
        let mut spec = json!({
            "provider": l.provider,
            "objectStorage": { "bucket": l.bucket },
            "default": true
        });
        if !l.prefix.is_empty() {
            spec["objectStorage"]["prefix"] = json!(l.prefix);
        }
        if !l.config.is_empty() {
            spec["config"] = json!(l.config);
        }
        if let Some(creds) = &l.credentials {
            out.push(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": { "name": "cloud-credentials", "namespace": ns, "labels": labels() },
                "type": "Opaque",
                "stringData": { "cloud": creds }
            }));
            spec["credential"] = json!({ "name": "cloud-credentials", "key": "cloud" });
        }
        out.push(json!({
            "apiVersion": crd::API_VERSION, "kind": "BackupStorageLocation",
            "metadata": { "name": "default", "namespace": ns, "labels": labels() },
            "spec": spec
        }));
    }
    if let Some(v) = &o.snapshot_location {
        let mut spec = json!({ "provider": v.provider });
        if !v.config.is_empty() {
            spec["config"] = json!(v.config);
        }
        if o.location.as_ref().is_some_and(|l| l.credentials.is_some()) {
            spec["credential"] = json!({ "name": "cloud-credentials", "key": "cloud" });
        }
        out.push(json!({
            "apiVersion": crd::API_VERSION, "kind": "VolumeSnapshotLocation",
            "metadata": { "name": "default", "namespace": ns, "labels": labels() },
            "spec": spec
        }));
    }
    let port = o.metrics_port;
    let mut args: Vec<String> = vec![
        "server".into(),
        "--namespace".into(),
        ns.to_string(),
        "--metrics-address".into(),
        format!("0.0.0.0:{port}"),
        "--shutdown-grace-period".into(),
        crate::GoDuration(SHUTDOWN_GRACE).to_string(),
    ];
    if o.default_volumes_to_fs_backup {
        args.push("--default-volumes-to-fs-backup".into());
    }
    if let Some(t) = o.fs_backup_timeout {
        args.extend([
            "--fs-backup-timeout".into(),
            crate::GoDuration(t).to_string(),
        ]);
    }
    out.push(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "lifeboat", "namespace": ns, "labels": labels() },
        "spec": {
            "replicas": o.replicas,
            "selector": { "matchLabels": { "app.kubernetes.io/name": "lifeboat" } },
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "lifeboat", COMPONENT_LABEL.0: COMPONENT_LABEL.1 } },
                "spec": {
                    "serviceAccountName": "lifeboat",
                    "terminationGracePeriodSeconds": (SHUTDOWN_GRACE + STOP_MARGIN).as_secs(),
                    "securityContext": { "runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "lifeboat",
                        "image": o.image,
                        "args": args,
                        "ports": [{ "name": "metrics", "containerPort": port, "protocol": "TCP" }],
                        "livenessProbe": { "httpGet": { "path": "/healthz", "port": "metrics" } },
                        "readinessProbe": { "httpGet": { "path": "/readyz", "port": "metrics" } },
                        "env": [
                            { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                            { "name": IMAGE_ENV, "value": o.image }
                        ],
                        "resources": { "requests": { "cpu": "100m", "memory": "128Mi" }, "limits": { "memory": "512Mi" } },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] }
                        },
                        "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }]
                    }],
                    "volumes": [{ "name": "tmp", "emptyDir": {} }]
                }
            }
        }
    }));
    out.push(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "lifeboat-metrics", "namespace": ns, "labels": labels() },
        "spec": {
            // The leader only: a follower's counters do not move.
            "selector": { "app.kubernetes.io/name": "lifeboat", "lifeboat.dev/role": "leader" },
            "ports": [{ "name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP" }]
        }
    }));
    if let Some(agent) = &o.node_agent {
        out.extend(node_agent(o, agent));
    }
    out
}

/// The node agent: its ServiceAccount and roles, the key's Secret, the DaemonSet.
///
/// What it may do, and why:
/// - in the install namespace: read and update PodVolumeBackups and PodVolumeRestores
///   (its work), read BackupStorageLocations and the Secrets they name (the repository's
///   location);
/// - everywhere: read pods, claims and volumes (where a volume's files are on its node).
///
/// It runs as root, without privilege escalation and with the default capabilities less
/// NET_RAW: the files of a volume belong to whatever user the application runs as, and
/// a restore writes them back with their owners. The kubelet's pods directory is mounted
/// (with HostToContainer propagation, so that volumes mounted after the agent started
/// are seen) and nothing else of the node.
fn node_agent(o: &InstallOptions, agent: &NodeAgentOptions) -> Vec<Value> {
    let ns = &o.namespace;
    let name = NODE_AGENT_APP;
    let mut out = vec![
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": { "name": name, "namespace": ns, "labels": labels() }
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": name, "namespace": ns, "labels": labels() },
            "rules": [
                { "apiGroups": [crd::GROUP], "resources": ["podvolumebackups", "podvolumerestores"], "verbs": ["get", "list", "watch", "update", "patch"] },
                { "apiGroups": [crd::GROUP], "resources": ["podvolumebackups/status", "podvolumerestores/status"], "verbs": ["get", "update", "patch"] },
                { "apiGroups": [crd::GROUP], "resources": ["backupstoragelocations"], "verbs": ["get"] },
                { "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"] }
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": name, "namespace": ns, "labels": labels() },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
            "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns }]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": { "name": name, "labels": labels() },
            "rules": [
                { "apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "persistentvolumes"], "verbs": ["get", "list", "watch"] }
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": format!("{name}-{ns}"), "labels": labels() },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
            "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns }]
        }),
    ];
    if let Some(key) = &agent.repo_key {
        out.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": REPO_KEY_SECRET, "namespace": ns, "labels": labels() },
            "type": "Opaque",
            "stringData": { REPO_KEY_KEY: key }
        }));
    }
    let pods_dir = format!("{}/pods", agent.kubelet_root.trim_end_matches('/'));
    out.push(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": NODE_AGENT_DAEMONSET, "namespace": ns, "labels": labels() },
        "spec": {
            "selector": { "matchLabels": { "app.kubernetes.io/name": NODE_AGENT_APP } },
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": NODE_AGENT_APP, COMPONENT_LABEL.0: COMPONENT_LABEL.1 } },
                "spec": {
                    "serviceAccountName": name,
                    "securityContext": { "runAsUser": 0, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "node-agent",
                        "image": o.image,
                        "args": ["node-agent", "--namespace", ns, "--kubelet-root-dir", AGENT_KUBELET_ROOT],
                        "env": [
                            { "name": "NODE_NAME", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } },
                            { "name": "LIFEBOAT_REPO_PASSWORD_FILE", "value": AGENT_KEY_FILE }
                        ],
                        "resources": { "requests": { "cpu": "100m", "memory": "128Mi" }, "limits": { "memory": "1Gi" } },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["NET_RAW"] }
                        },
                        "volumeMounts": [
                            { "name": "host-pods", "mountPath": format!("{AGENT_KUBELET_ROOT}/pods"), "mountPropagation": "HostToContainer" },
                            { "name": "repo-key", "mountPath": "/credentials", "readOnly": true },
                            { "name": "tmp", "mountPath": "/tmp" }
                        ]
                    }],
                    "volumes": [
                        { "name": "host-pods", "hostPath": { "path": pods_dir } },
                        { "name": "repo-key", "secret": { "secretName": REPO_KEY_SECRET, "optional": true, "defaultMode": 0o400 } },
                        { "name": "tmp", "emptyDir": {} }
                    ]
                }
            }
        }
    }));
    out
}

/// The CronJob that runs `lifeboat backup verify` on a schedule (as the DR guides'
/// verification CronJobs), with the server's ServiceAccount. `args` follow `lifeboat`.
pub fn verify_cronjob(
    namespace: &str,
    api_version: &str,
    cron: &str,
    image: &str,
    args: &[String],
) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "CronJob",
        "metadata": {
            "name": "lifeboat-backup-verify",
            "namespace": namespace,
            "labels": { COMPONENT_LABEL.0: COMPONENT_LABEL.1, "app.kubernetes.io/component": "backup-verify" }
        },
        "spec": {
            "schedule": cron,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": { "spec": { "backoffLimit": 0, "template": { "spec": {
                "serviceAccountName": "lifeboat",
                "restartPolicy": "Never",
                "securityContext": { "runAsNonRoot": true, "runAsUser": 65532 },
                "containers": [{
                    "name": "verify",
                    "image": image,
                    "args": args,
                    "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] } },
                    "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }]
                }],
                "volumes": [{ "name": "tmp", "emptyDir": {} }]
            }}}}
        }
    })
}

/// What the verification CronJob with `--test-restore` needs besides the server's roles:
/// deleting the scratch namespaces it made. RBAC cannot narrow a delete to namespaces
/// made later under unknown names, so this allows deleting any namespace; the verification
/// itself deletes only namespaces labelled with its own restore, by uid
/// (`lifeboat_engine::verify::scratch_cleanup`), and refuses to restore into one that
/// exists.
pub fn verify_cleanup_rbac(namespace: &str) -> [Value; 2] {
    [
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": { "name": "lifeboat-verify-cleanup", "labels": labels() },
            "rules": [{ "apiGroups": [""], "resources": ["namespaces"], "verbs": ["delete"] }]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": format!("lifeboat-verify-cleanup-{namespace}"), "labels": labels() },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "lifeboat-verify-cleanup" },
            "subjects": [{ "kind": "ServiceAccount", "name": "lifeboat", "namespace": namespace }]
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(objs: &[Value]) -> Vec<String> {
        objs.iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// `install --default-volumes-to-fs-backup --fs-backup-timeout` reach the server
    /// (they were accepted with a "not supported" warning); without them the server runs
    /// its defaults.
    #[rstest::rstest]
    #[case::defaults(false, None, &[])]
    #[case::fs_backup_by_default(true, None, &["--default-volumes-to-fs-backup"])]
    #[case::timeout(false, Some(5400), &["--fs-backup-timeout", "1h30m0s"])]
    #[case::both(true, Some(60), &["--default-volumes-to-fs-backup", "--fs-backup-timeout", "1m0s"])]
    fn the_server_gets_the_volume_defaults(
        #[case] by_default: bool,
        #[case] timeout: Option<u64>,
        #[case] expected: &[&str],
    ) {
        let objs = manifests(&InstallOptions {
            default_volumes_to_fs_backup: by_default,
            fs_backup_timeout: timeout.map(std::time::Duration::from_secs),
            ..Default::default()
        });
        let args = server_args(&objs);
        let at = args
            .iter()
            .position(|a| *a == "--shutdown-grace-period")
            .unwrap();
        assert_eq!(&args[at + 2..], expected);
    }

    /// The server container's arguments in the Deployment of `objs`.
    fn server_args(objs: &[Value]) -> Vec<&str> {
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect()
    }

    /// Issue 11, item 10: the kubelet killed the server 30 s (its default) after SIGTERM,
    /// whatever the backup it ran: the pod now waits for the server's whole grace period
    /// and the status write after it, and the server is told that grace period.
    #[test]
    fn the_pod_outlives_the_servers_shutdown_grace() {
        let objs = manifests(&InstallOptions::default());
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["terminationGracePeriodSeconds"], json!(630));
        let args = server_args(&objs);
        let at = args
            .iter()
            .position(|a| *a == "--shutdown-grace-period")
            .expect("the server is told its grace period");
        let grace: crate::GoDuration = args[at + 1].parse().unwrap();
        assert_eq!(grace.0, SHUTDOWN_GRACE);
        assert!(grace.0 + STOP_MARGIN <= std::time::Duration::from_secs(630));
    }

    #[test]
    fn every_object_has_a_known_path_and_the_label() {
        let objs = manifests(&InstallOptions {
            location: Some(LocationOptions {
                provider: "aws".into(),
                bucket: "b".into(),
                prefix: "p".into(),
                config: [("region".to_string(), "eu-west-1".to_string())].into(),
                credentials: Some("[default]\n".into()),
            }),
            ..Default::default()
        });
        for o in &objs {
            let path = collection(
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                "lifeboat",
            );
            assert!(path.is_some(), "{}", o["kind"]);
            assert_eq!(
                o["metadata"]["labels"][COMPONENT_LABEL.0],
                COMPONENT_LABEL.1
            );
        }
        // The namespace and CRDs come before anything that lives in them.
        let k = kinds(&objs);
        assert_eq!(k[0], "Namespace/lifeboat");
        let crd_last = k
            .iter()
            .rposition(|x| x.starts_with("CustomResourceDefinition/"))
            .unwrap();
        let bsl = k
            .iter()
            .position(|x| x.starts_with("BackupStorageLocation/"))
            .unwrap();
        assert!(crd_last < bsl);
        let secret = objs.iter().find(|o| o["kind"] == "Secret").unwrap();
        assert_eq!(secret["stringData"]["cloud"], "[default]\n");
    }

    #[test]
    fn backup_role_only_reads_and_backup_only_binds_no_write_role() {
        let objs = manifests(&InstallOptions {
            backup_only: true,
            ..Default::default()
        });
        let backup = objs
            .iter()
            .find(|o| o["metadata"]["name"] == "lifeboat-backup-base")
            .unwrap();
        for rule in backup["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                    "{verb}"
                );
            }
        }
        let k = kinds(&objs);
        assert!(k.contains(&"ClusterRoleBinding/lifeboat-backup-lifeboat".to_string()));
        assert!(
            !k.iter()
                .any(|x| x.starts_with("ClusterRoleBinding/lifeboat-restore"))
        );
        let full_objs = manifests(&InstallOptions::default());
        let restore = full_objs
            .iter()
            .find(|o| o["metadata"]["name"] == "lifeboat-restore-base")
            .unwrap();
        assert!(
            restore["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["verbs"] == json!(["bind", "escalate"])),
            "{restore}"
        );
        let full = kinds(&full_objs);
        assert!(full.contains(&"ClusterRoleBinding/lifeboat-restore-lifeboat".to_string()));
        // Exec hooks: only pods/exec, bound unless --no-exec-hooks.
        let hooks = objs
            .iter()
            .find(|o| o["metadata"]["name"] == "lifeboat-exec-hooks")
            .unwrap();
        assert_eq!(
            hooks["rules"],
            json!([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}])
        );
        assert!(full.contains(&"ClusterRoleBinding/lifeboat-exec-hooks-lifeboat".to_string()));
        let no_hooks = kinds(&manifests(&InstallOptions {
            no_exec_hooks: true,
            ..Default::default()
        }));
        assert!(
            !no_hooks
                .iter()
                .any(|x| x.starts_with("ClusterRoleBinding/lifeboat-exec-hooks"))
        );
        // Secrets are readable only in the install namespace (a Role, not a ClusterRole
        // with secret access beyond the backup's read).
        let role = objs.iter().find(|o| o["kind"] == "Role").unwrap();
        assert_eq!(role["metadata"]["namespace"], "lifeboat");
    }

    /// The rules the ServiceAccount holds: those of every ClusterRole bound to it, an
    /// aggregated role's being those the aggregation controller gives it.
    fn effective_rules(objs: &[Value]) -> Vec<Value> {
        let mut rules = Vec::new();
        for b in objs.iter().filter(|o| o["kind"] == "ClusterRoleBinding") {
            let r = objs
                .iter()
                .find(|o| {
                    o["kind"] == "ClusterRole" && o["metadata"]["name"] == b["roleRef"]["name"]
                })
                .unwrap();
            match r["rules"].as_array() {
                Some(own) => rules.extend(own.iter().cloned()),
                None => rules.extend(rbac::aggregated_rules(r, objs)),
            }
        }
        rules
    }

    /// Issue 11, item 8: the installed roles granted verbs on `*` in `*`, which also
    /// matched `pods/exec`, `nodes/proxy` and `serviceaccounts/token`. What the
    /// ServiceAccount may do now, by install flags and the groups install was given.
    #[rstest::rstest]
    #[case::exec_with_hooks("create", "", "pods/exec", false, false, true)]
    #[case::exec_get_with_hooks("get", "", "pods/exec", false, false, true)]
    #[case::exec_without_hooks("create", "", "pods/exec", true, false, false)]
    #[case::exec_get_without_hooks("get", "", "pods/exec", true, false, false)]
    #[case::exec_backup_only_without_hooks("get", "", "pods/exec", true, true, false)]
    #[case::node_proxy("get", "", "nodes/proxy", false, false, false)]
    #[case::node_proxy_create("create", "", "nodes/proxy", false, false, false)]
    #[case::token("create", "", "serviceaccounts/token", false, false, false)]
    #[case::attach("create", "", "pods/attach", false, false, false)]
    #[case::portforward("create", "", "pods/portforward", false, false, false)]
    #[case::pod_proxy("get", "", "pods/proxy", false, false, false)]
    #[case::service_proxy("get", "", "services/proxy", false, false, false)]
    #[case::ephemeral("update", "", "pods/ephemeralcontainers", false, false, false)]
    #[case::read_configmaps("list", "", "configmaps", true, true, true)]
    #[case::read_secrets("get", "", "secrets", true, true, true)]
    #[case::read_velero("list", "velero.io", "backups", true, true, true)]
    #[case::read_served_group("list", "example.com", "widgets", true, true, true)]
    #[case::write_served_group("create", "example.com", "widgets", false, false, true)]
    #[case::write_served_group_backup_only("create", "example.com", "widgets", false, true, false)]
    #[case::read_group_not_served("list", "example.org", "gadgets", false, false, false)]
    #[case::write_pods("create", "", "pods", false, false, true)]
    #[case::write_pods_backup_only("create", "", "pods", false, true, false)]
    fn the_service_account_may(
        #[case] verb: &str,
        #[case] group: &str,
        #[case] resource: &str,
        #[case] no_exec_hooks: bool,
        #[case] backup_only: bool,
        #[case] allowed: bool,
    ) {
        let objs = manifests(&InstallOptions {
            no_exec_hooks,
            backup_only,
            api: ApiScope::served(["configmaps"], ["example.com"]),
            ..Default::default()
        });
        assert_eq!(
            rbac::allows(&effective_rules(&objs), verb, group, resource),
            allowed,
            "{verb} {group}/{resource}"
        );
    }

    /// The bound backup and restore roles hold no rule of their own: they select their
    /// base by its label, and so anything an operator labels likewise.
    #[test]
    fn backup_and_restore_roles_aggregate_their_labelled_base() {
        let objs = manifests(&InstallOptions::default());
        for (role, label) in [
            ("lifeboat-backup", rbac::AGGREGATE_TO_BACKUP),
            ("lifeboat-restore", rbac::AGGREGATE_TO_RESTORE),
        ] {
            let r = objs.iter().find(|o| o["metadata"]["name"] == role).unwrap();
            assert!(r.get("rules").is_none(), "{r}");
            assert_eq!(
                r["aggregationRule"],
                json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]})
            );
            let base = objs
                .iter()
                .find(|o| o["metadata"]["name"] == format!("{role}-base"))
                .unwrap();
            assert_eq!(base["metadata"]["labels"][label], "true");
            assert_eq!(
                base["metadata"]["labels"][COMPONENT_LABEL.0],
                COMPONENT_LABEL.1
            );
            // The base comes first: the aggregated role is applied with its rules there.
            let at = |n: &str| objs.iter().position(|o| o["metadata"]["name"] == n);
            assert!(at(&format!("{role}-base")) < at(role));
        }
    }
}
