//! The CronJob that takes etcd snapshots on a control-plane node with `lifeboat etcd
//! snapshot save` and prunes old ones, as the DR guides' etcdctl CronJobs do. Pure.

use serde_json::{Value, json};

/// What the CronJob does.
#[derive(Debug, Clone)]
pub struct EtcdSchedule {
    /// CronJob name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Cron expression.
    pub schedule: String,
    /// `batch/v1` or `batch/v1beta1`.
    pub api_version: String,
    /// lifeboat's container image.
    pub image: String,
    /// etcd client URL (on the node's network).
    pub endpoints: String,
    /// CA, client certificate and key paths on the node.
    pub cacert: String,
    /// Client certificate path on the node.
    pub cert: String,
    /// Client key path on the node.
    pub key: String,
    /// Storage location (URL, or name of a location in the mounted config).
    pub storage_location: String,
    /// Snapshots to keep.
    pub keep: usize,
    /// ConfigMap with a locations.yaml to mount, when the location is a name.
    pub config_map: Option<String>,
}

/// The CronJob manifest.
pub fn cronjob(s: &EtcdSchedule) -> Value {
    let dir = s
        .cacert
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or("/etc/kubernetes/pki/etcd");
    let script = format!(
        "set -e\nname=etcd-snapshot-$(date -u +%Y%m%d%H%M%S).db\nlifeboat etcd snapshot save --endpoints {} --cacert {} --cert {} --key {} --storage-location '{}' --name \"$name\"\nlifeboat etcd snapshot prune --storage-location '{}' --keep {} --confirm\n",
        s.endpoints, s.cacert, s.cert, s.key, s.storage_location, s.storage_location, s.keep
    );
    let mut mounts = vec![json!({"name": "etcd-certs", "mountPath": dir, "readOnly": true})];
    let mut volumes =
        vec![json!({"name": "etcd-certs", "hostPath": {"path": dir, "type": "Directory"}})];
    let mut env = vec![];
    if let Some(cm) = &s.config_map {
        mounts.push(
            json!({"name": "lifeboat-config", "mountPath": "/etc/lifeboat", "readOnly": true}),
        );
        volumes.push(json!({"name": "lifeboat-config", "configMap": {"name": cm}}));
        env.push(json!({"name": "LIFEBOAT_CONFIG", "value": "/etc/lifeboat/locations.yaml"}));
    }
    json!({
        "apiVersion": s.api_version,
        "kind": "CronJob",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": {"app.kubernetes.io/name": "lifeboat", "app.kubernetes.io/component": "etcd-snapshot"}},
        "spec": {
            "schedule": s.schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"spec": {
                "restartPolicy": "OnFailure",
                "hostNetwork": true,
                "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
                "tolerations": [
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}
                ],
                "containers": [{
                    "name": "etcd-snapshot",
                    "image": s.image,
                    "command": ["/bin/sh", "-c", script],
                    "env": env,
                    "volumeMounts": mounts
                }],
                "volumes": volumes
            }}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_layout() {
        let s = EtcdSchedule {
            name: "etcd-snapshot".into(),
            namespace: "kube-system".into(),
            schedule: "0 */6 * * *".into(),
            api_version: "batch/v1beta1".into(),
            image: "lifeboat:0.1.0".into(),
            endpoints: "https://127.0.0.1:2379".into(),
            cacert: "/etc/kubernetes/pki/etcd/ca.crt".into(),
            cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt".into(),
            key: "/etc/kubernetes/pki/etcd/healthcheck-client.key".into(),
            storage_location: "default".into(),
            keep: 10,
            config_map: Some("lifeboat-locations".into()),
        };
        insta::assert_yaml_snapshot!(cronjob(&s));
    }
}
