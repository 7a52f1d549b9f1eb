//! The CronJob that takes etcd snapshots on a control-plane node with `lifeboat etcd
//! snapshot save --keep N` (stores one, prunes this cluster's older ones), as the DR
//! guides' etcdctl CronJobs do. It runs lifeboat directly, with no shell: lifeboat's
//! image has none, and every value is one argument, never script text. Pure.

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
    /// Through the lifeboat server's objects: its ServiceAccount in `namespace`, and
    /// `-n namespace` (the location is one of the server's, credentials from its Secret).
    pub through_server: bool,
}

/// Whether the job talks TLS to etcd (then it mounts the certificates' directory).
fn tls(endpoints: &str) -> bool {
    endpoints
        .split(',')
        .any(|e| e.trim().starts_with("https://"))
}

/// The CronJob manifest.
pub fn cronjob(s: &EtcdSchedule) -> Value {
    let dir = s
        .cacert
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or("/etc/kubernetes/pki/etcd");
    let mut command: Vec<String> = vec!["lifeboat".into()];
    if s.through_server {
        command.extend(["-n".into(), s.namespace.clone()]);
    }
    command.extend(["etcd", "snapshot", "save", "--endpoints"].map(String::from));
    command.push(s.endpoints.clone());
    let tls = tls(&s.endpoints);
    if tls {
        command.extend([
            "--cacert".into(),
            s.cacert.clone(),
            "--cert".into(),
            s.cert.clone(),
            "--key".into(),
            s.key.clone(),
        ]);
    }
    command.extend([
        "--storage-location".into(),
        s.storage_location.clone(),
        "--keep".into(),
        s.keep.to_string(),
    ]);
    if let Some(c) = &s.cluster_name {
        command.extend(["--cluster-name".into(), c.clone()]);
    }
    let (mut mounts, mut volumes) = (vec![], vec![]);
    if tls {
        mounts.push(json!({"name": "etcd-certs", "mountPath": dir, "readOnly": true}));
        volumes.push(json!({"name": "etcd-certs", "hostPath": {"path": dir, "type": "Directory"}}));
    }
    let mut env = vec![];
    if let Some(cm) = &s.config_map {
        mounts.push(
            json!({"name": "lifeboat-config", "mountPath": "/etc/lifeboat", "readOnly": true}),
        );
        volumes.push(json!({"name": "lifeboat-config", "configMap": {"name": cm}}));
        env.push(json!({"name": "LIFEBOAT_CONFIG", "value": "/etc/lifeboat/locations.yaml"}));
    }
    let mut pod = json!({
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
    });
    if s.through_server {
        pod["serviceAccountName"] = json!("lifeboat");
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
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"spec": pod}}}
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
            through_server: false,
        };
        insta::assert_yaml_snapshot!(cronjob(&s));
    }

    fn command_of(job: &Value) -> Vec<String> {
        job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// Issue 11, item 8: a hostile value stays one argument. Issue 14: lifeboat runs
    /// directly (its image has no shell).
    #[test]
    fn values_are_arguments_never_script_text() {
        let hostile = "https://x'; touch /tmp/pwned; echo '$(id)`id`";
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
            through_server: false,
        };
        let pki = format!("/pki/{hostile}");
        assert_eq!(
            command_of(&cronjob(&s)),
            [
                "lifeboat",
                "etcd",
                "snapshot",
                "save",
                "--endpoints",
                hostile,
                "--cacert",
                &pki,
                "--cert",
                hostile,
                "--key",
                hostile,
                "--storage-location",
                hostile,
                "--keep",
                "3",
                "--cluster-name",
                hostile,
            ]
        );
    }

    /// Plain-HTTP etcd: no certificates passed or mounted. Through the server: its
    /// ServiceAccount and namespace, no config to mount.
    #[test]
    fn plain_etcd_through_the_server() {
        let s = EtcdSchedule {
            name: "lifeboat-etcd-snapshot".into(),
            namespace: "lifeboat".into(),
            schedule: "* * * * *".into(),
            api_version: "batch/v1beta1".into(),
            image: "lifeboat:dev".into(),
            endpoints: "http://10.0.0.1:2379".into(),
            cacert: "/etc/kubernetes/pki/etcd/ca.crt".into(),
            cert: "c".into(),
            key: "k".into(),
            storage_location: "default".into(),
            keep: 2,
            cluster_name: None,
            config_map: None,
            through_server: true,
        };
        let job = cronjob(&s);
        assert_eq!(
            command_of(&job),
            [
                "lifeboat",
                "-n",
                "lifeboat",
                "etcd",
                "snapshot",
                "save",
                "--endpoints",
                "http://10.0.0.1:2379",
                "--storage-location",
                "default",
                "--keep",
                "2",
            ]
        );
        let pod = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "lifeboat");
        assert_eq!(pod["volumes"], json!([]));
    }
}
