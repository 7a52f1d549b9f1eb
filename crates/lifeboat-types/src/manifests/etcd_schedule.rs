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
    /// Snapshots to keep (of this cluster only).
    pub keep: usize,
    /// The cluster the snapshots are stored under and pruned for (`--cluster-name`);
    /// `None`: etcd's cluster id, and a prune refuses when the location holds several
    /// clusters' snapshots.
    pub cluster_name: Option<String>,
    /// ConfigMap with a locations.yaml to mount, when the location is a name.
    pub config_map: Option<String>,
}

/// The job's script; `$1`..`$7` are the endpoints, CA, certificate, key, location, how
/// many snapshots to keep, and the cluster name (empty: none given).
const SCRIPT: &str = "set -e\n\
name=etcd-snapshot-$(date -u +%Y%m%d%H%M%S).db\n\
lifeboat etcd snapshot save --endpoints \"$1\" --cacert \"$2\" --cert \"$3\" --key \"$4\" --storage-location \"$5\" --name \"$name\" ${7:+--cluster-name} ${7:+\"$7\"}\n\
lifeboat etcd snapshot prune --storage-location \"$5\" --keep \"$6\" ${7:+--cluster-name} ${7:+\"$7\"} --confirm\n";

/// The CronJob manifest.
pub fn cronjob(s: &EtcdSchedule) -> Value {
    let dir = s
        .cacert
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or("/etc/kubernetes/pki/etcd");
    // The values reach the shell as positional parameters, never as script text: a path
    // or location name with quotes, `$(...)` or `;` stays one argument (issue 11, item 8).
    let args = [
        s.endpoints.clone(),
        s.cacert.clone(),
        s.cert.clone(),
        s.key.clone(),
        s.storage_location.clone(),
        s.keep.to_string(),
        s.cluster_name.clone().unwrap_or_default(),
    ];
    let mut command = vec![
        "/bin/sh".to_owned(),
        "-c".into(),
        SCRIPT.into(),
        "etcd-snapshot".into(),
    ];
    command.extend(args);
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
                    "command": command,
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
            cluster_name: None,
            config_map: Some("lifeboat-locations".into()),
        };
        insta::assert_yaml_snapshot!(cronjob(&s));
    }

    /// Issue 11, item 8: every value is quoted, a hostile one stays one argument.
    #[test]
    fn values_never_become_script_text() {
        let hostile = "x'; touch /tmp/pwned; echo '$(id)`id`";
        let s = EtcdSchedule {
            name: "etcd-snapshot".into(),
            namespace: "kube-system".into(),
            schedule: "0 * * * *".into(),
            api_version: "batch/v1".into(),
            image: "lifeboat:0.1.0".into(),
            endpoints: hostile.into(),
            cacert: format!("/pki/{hostile}"),
            cert: hostile.into(),
            key: hostile.into(),
            storage_location: hostile.into(),
            keep: 3,
            cluster_name: Some(hostile.into()),
            config_map: None,
        };
        let job = cronjob(&s);
        let command =
            &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"];
        let command: Vec<&str> = command
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(&command[..4], ["/bin/sh", "-c", SCRIPT, "etcd-snapshot"]);
        assert_eq!(
            &command[4..],
            [
                hostile,
                &format!("/pki/{hostile}"),
                hostile,
                hostile,
                hostile,
                "3",
                hostile
            ]
        );
        assert!(!SCRIPT.contains("pwned"));
        // Every positional parameter is used inside double quotes only.
        for n in 1..=7 {
            let p = format!("${n}");
            assert_eq!(
                SCRIPT.matches(&p).count(),
                SCRIPT.matches(&format!("\"{p}\"")).count(),
                "{p}"
            );
        }
    }
}
