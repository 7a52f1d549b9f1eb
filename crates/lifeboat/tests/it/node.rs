//! On a real node (issue 14): the test cluster `it-node` has a kubelet, containerd and
//! kube-proxy (scripts/dev-cluster.sh `--nodes 1`), and images built without a registry
//! (localhost/busybox, lifeboat built from the binary under test). Pods really run here, so
//! hooks execute in real containers and the server runs as its Deployment.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const BUSYBOX: &str = "localhost/busybox:1.35.0";

fn fresh_namespace(env: &Env, ns: &str) {
    env.delete_namespace(ns);
    env.kubectl(&["create", "namespace", ns], None);
}

fn wait_pod_ready(env: &Env, ns: &str, pod: &str) {
    env.kubectl(
        &[
            "-n",
            ns,
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=120s",
        ],
        None,
    );
}

/// Runs `script` with sh in the pod's container; returns its stdout.
fn sh(env: &Env, ns: &str, pod: &str, script: &str) -> String {
    env.kubectl(&["-n", ns, "exec", pod, "--", "sh", "-c", script], None)
}

/// Backup exec hooks run in the container: the pre hook writes a file and logs, the post
/// hook logs and removes it (after the backup, the file is gone and the log says pre then
/// post). A hook that exits non-zero with onError Fail makes the backup PartiallyFailed
/// (Velero's outcome) with an error naming the pod, the container and the exit code.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn backup_hooks_run_in_real_containers() {
    let env = Env::on_node();
    let ns = "node-hooks";
    fresh_namespace(&env, ns);
    env.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: {ns}
  labels: {{app: db}}
  annotations:
    pre.hook.backup.velero.io/container: main
    pre.hook.backup.velero.io/command: '["/bin/sh","-c","date +%s > /data/frozen && echo pre >> /data/hooks.log"]'
    post.hook.backup.velero.io/container: main
    post.hook.backup.velero.io/command: '["/bin/sh","-c","test -f /data/frozen && echo post >> /data/hooks.log && rm /data/frozen"]'
spec:
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#
    ));
    wait_pod_ready(&env, ns, "db");
    let out = env.ok(&[
        "backup",
        "create",
        "node-hk1",
        "--include-namespaces",
        ns,
        "--wait",
    ]);
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(sh(&env, ns, "db", "cat /data/hooks.log"), "pre\npost\n");
    assert_eq!(
        sh(
            &env,
            ns,
            "db",
            "test -e /data/frozen && echo left || echo removed"
        ),
        "removed\n"
    );
    let meta = read_json(&env.storage().join("backups/node-hk1/velero-backup.json"));
    assert_eq!(meta["status"]["phase"], "Completed");
    assert_eq!(meta["status"]["hookStatus"]["hooksAttempted"], 2);
    assert!(
        meta["status"]["hookStatus"]["hooksFailed"].is_null()
            || meta["status"]["hookStatus"]["hooksFailed"] == 0
    );

    // A pre hook that fails, onError Fail.
    env.kubectl(
        &[
            "-n",
            ns,
            "annotate",
            "--overwrite",
            "pod",
            "db",
            r#"pre.hook.backup.velero.io/command=["/bin/sh","-c","echo cannot freeze >&2; exit 7"]"#,
            "pre.hook.backup.velero.io/on-error=Fail",
        ],
        None,
    );
    let err = env.fails_with(
        3,
        &[
            "backup",
            "create",
            "node-hk2",
            "--include-namespaces",
            ns,
            "--wait",
        ],
    );
    let results = read_json_gz(&env.storage().join("backups/node-hk2/node-hk2-results.gz"));
    let errors = results["errors"]["namespaces"][ns]
        .as_array()
        .unwrap_or_else(|| panic!("{results}\n{err}"));
    let e = errors[0].as_str().unwrap();
    assert!(
        e.contains(&format!("pod {ns}/db"))
            && e.contains("in container main")
            && e.contains("exit code 7")
            && e.contains("cannot freeze"),
        "{e}"
    );
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Restore hooks on a real node: the init container the restore adds runs before the
/// pod's own containers (it writes a file into the pod's emptyDir), and the post exec hook
/// runs in the main container once it runs (as Velero: the wait is for the container to be
/// running, not for its readiness probe, which a hook may be what satisfies); it copies
/// what the init container wrote. Both outcomes are read back from the pod, Ready.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn restore_hooks_run_init_containers_then_exec_when_ready() {
    let env = Env::on_node();
    let ns = "node-rhooks";
    let target = "node-rhooks-restored";
    env.kubectl(
        &[
            "delete",
            "namespace",
            target,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );
    fresh_namespace(&env, ns);
    env.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: {ns}
  labels: {{app: app}}
spec:
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "sleep 2; touch /tmp/ready; exec sleep 3600"]
    readinessProbe: {{exec: {{command: [cat, /tmp/ready]}}, periodSeconds: 1}}
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#
    ));
    env.ok(&[
        "backup",
        "create",
        "node-rh1",
        "--include-namespaces",
        ns,
        "--wait",
    ]);
    let doc = format!(
        r#"apiVersion: velero.io/v1
kind: Restore
metadata:
  name: node-rh1-r
spec:
  backupName: node-rh1
  namespaceMapping: {{{ns}: {target}}}
  hooks:
    resources:
    - name: prepare
      includedNamespaces: ["{target}"]
      labelSelector: {{matchLabels: {{app: app}}}}
      postHooks:
      - init:
          initContainers:
          - name: fetch
            image: {BUSYBOX}
            imagePullPolicy: IfNotPresent
            command: ["/bin/sh", "-c", "echo fetched > /data/init"]
            volumeMounts: [{{name: data, mountPath: /data}}]
      - exec:
          container: main
          command: ["/bin/sh", "-c", "cat /data/init > /data/post"]
          waitTimeout: 2m
          onError: Fail
"#
    );
    let file = env.dir.path().join("restore.yaml");
    std::fs::write(&file, doc).unwrap();
    let out = env.run(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        read_json_gz(
            &env.storage()
                .join("restores/node-rh1-r/restore-node-rh1-r-results.gz")
        )
    );
    let pod: serde_json::Value = serde_json::from_str(
        &env.kubectl(&["-n", target, "get", "pod", "app", "-o", "json"], None),
    )
    .unwrap();
    let init = pod["status"]["initContainerStatuses"][0].clone();
    assert_eq!(init["name"], "fetch", "{pod}");
    assert_eq!(init["state"]["terminated"]["exitCode"], 0, "{pod}");
    assert_eq!(sh(&env, target, "app", "cat /data/post"), "fetched\n");
    wait_pod_ready(&env, target, "app");
    for n in [ns, target] {
        env.kubectl(&["delete", "namespace", n, "--wait=false"], None);
    }
}

/// Waits until `check` holds (polling every 500 ms) or panics after `limit` with `what`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: not within {limit:?}");
}

fn kubectl_maybe(env: &Env, args: &[&str]) -> Option<String> {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", &env.kubeconfig)
        .args(args)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn node_host() -> String {
    std::env::var("LIFEBOAT_IT_NODE_HOST").expect(NEEDS)
}

/// Builds lifeboat's image from the binary under test (scripts/build-image.py) and
/// imports it into the node's containerd: no registry is reachable.
fn import_lifeboat_image(env: &Env, tag: &str) {
    let image = build_lifeboat_image(env.dir.path(), &["--tag", tag]);
    import_image(
        &std::env::var("LIFEBOAT_IT_NODE_CONTAINERD").expect(NEEDS),
        &image,
    );
}

/// Imports the image tarball `image` into the containerd of each socket of `sockets`
/// (`a:b`, as `dev-cluster.sh sockets` prints them).
fn import_image(sockets: &str, image: &std::path::Path) {
    for sock in sockets.split(':') {
        let out = Command::new("ctr")
            .args(["-a", sock, "-n", "k8s.io", "images", "import"])
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The tests that install lifeboat on the node's cluster, one at a time: an install or
/// uninstall applies or deletes the cluster-wide CRDs, which would delete the other test's
/// Backups and PodVolumeBackups under it. Regression: run side by side, the node agent's
/// test lost its objects when the server test began with `uninstall`.
fn installs_on_the_node() -> std::sync::MutexGuard<'static, ()> {
    static NODE_INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    NODE_INSTALL.lock().unwrap_or_else(|e| e.into_inner())
}

fn lease_holder(env: &Env, ns: &str) -> Option<String> {
    kubectl_maybe(
        env,
        &[
            "-n",
            ns,
            "get",
            "lease",
            "lifeboat-server",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    )
    .filter(|h| !h.is_empty())
}

/// `lifeboat install` with the image built here: the server runs as its Deployment on
/// the node (2 replicas, one leading), reaches the S3 location (moto on the host, at the
/// cluster's host address), and a Schedule makes a Completed backup through it; its
/// /metrics answers through the Service's ClusterIP from another pod (kube-proxy); when
/// the leading pod is deleted, the other replica takes the Lease within its duration.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn installed_server_runs_as_its_deployment() {
    let _alone = installs_on_the_node();
    let env = Env::on_node();
    let ns = "lifeboat-node";
    let app = "node-app";
    let _ = env.run(&["-n", ns, "uninstall", "--force"]);
    env.kubectl(
        &[
            "delete",
            "namespace",
            ns,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );
    fresh_namespace(&env, app);
    env.kubectl(
        &[
            "-n",
            app,
            "create",
            "configmap",
            "settings",
            "--from-literal=mode=prod",
        ],
        None,
    );
    let tag = "lifeboat:it-node";
    import_lifeboat_image(&env, tag);
    let bucket = "lifeboat-node";
    crate::s3::boto(
        "try:\n    s3.create_bucket(Bucket=sys.argv[1])\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass",
        &[bucket],
    );
    let moto_port = crate::s3::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let creds = env.dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let config = format!(
        "region=us-east-1,s3ForcePathStyle=true,s3Url=http://{}:{moto_port}",
        node_host()
    );
    let out = env.ok(&[
        "-n",
        ns,
        "install",
        "--image",
        tag,
        "--replicas",
        "2",
        "--provider",
        "aws",
        "--bucket",
        bucket,
        "--secret-file",
        creds.to_str().unwrap(),
        "--backup-location-config",
        &config,
        "--wait",
    ]);
    assert!(!out.contains("aws_secret_access_key"), "{out}");
    let pods = || -> Vec<String> {
        kubectl_maybe(
            &env,
            &[
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=lifeboat",
                "--field-selector=status.phase=Running",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        )
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
    };
    eventually(Duration::from_secs(120), "2 server pods Running", || {
        pods().len() == 2
    });
    let leader = {
        let mut holder = None;
        eventually(Duration::from_secs(60), "a leader", || {
            holder = lease_holder(&env, ns);
            holder.is_some()
        });
        holder.unwrap()
    };
    assert!(
        pods().contains(&leader),
        "leader {leader} is not one of {:?}",
        pods()
    );

    // A Schedule backs up through the in-cluster server.
    let out = env.ok(&[
        "-n",
        ns,
        "schedule",
        "create",
        "nightly",
        "--schedule=* * * * *",
        "--include-namespaces",
        app,
    ]);
    assert!(out.contains("created successfully"), "{out}");
    let mut completed = String::new();
    eventually(
        Duration::from_secs(150),
        "a Completed backup of schedule nightly",
        || {
            let listed = kubectl_maybe(
                &env,
                &[
                    "-n",
                    ns,
                    "get",
                    "backups.lifeboat.dev",
                    "-l",
                    "velero.io/schedule-name=nightly",
                    "-o",
                    "json",
                ],
            )
            .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&listed).unwrap_or_default();
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if let Some(b) = items.iter().find(|b| b["status"]["phase"] == "Completed") {
                completed = b["metadata"]["name"].as_str().unwrap().to_string();
                return true;
            }
            if let Some(b) = items.iter().find(|b| {
                b["status"]["phase"] == "Failed" || b["status"]["phase"] == "PartiallyFailed"
            }) {
                panic!("schedule backup did not complete: {b}");
            }
            false
        },
    );
    let keys = crate::s3::list_keys(bucket);
    assert!(
        keys.contains(&format!("backups/{completed}/velero-backup.json"))
            && keys.contains(&format!("backups/{completed}/{completed}.tar.gz")),
        "{keys:?}"
    );

    // /metrics through the Service, from another pod on the node.
    let ip = env.kubectl(
        &[
            "-n",
            ns,
            "get",
            "service",
            "lifeboat-metrics",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
        None,
    );
    env.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: scraper, namespace: {app}}}\nspec:\n  containers: [{{name: c, image: {BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}}]\n"
    ));
    wait_pod_ready(&env, app, "scraper");
    // The label, the Service's endpoints and kube-proxy's rules follow each other within
    // moments of the leader taking the Lease.
    let scrape = format!("wget -qO- http://{ip}:8085/metrics");
    let mut metrics = String::new();
    eventually(
        Duration::from_secs(30),
        "/metrics through the Service",
        || {
            metrics = kubectl_maybe(
                &env,
                &["-n", app, "exec", "scraper", "--", "sh", "-c", &scrape],
            )
            .unwrap_or_default();
            !metrics.is_empty()
        },
    );
    assert!(
        metrics.lines().any(
            |l| l.starts_with("velero_backup_success_total{schedule=\"nightly\"}")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    // The leader's pod goes: another replica (the waiting one, or the Deployment's
    // replacement: whichever asks first) takes the Lease within its duration, and the
    // Service follows the label to it.
    assert!(metrics.contains("lifeboat_leader 1"), "{metrics}");
    env.kubectl(&["-n", ns, "delete", "pod", &leader, "--wait=false"], None);
    let mut next = String::new();
    let took = eventually(
        Duration::from_secs(20),
        "another replica leading",
        || match lease_holder(&env, ns) {
            Some(h) if h != leader && pods().contains(&h) => {
                next = h;
                true
            }
            _ => false,
        },
    );
    eprintln!("leadership moved from {leader} to {next} in {took:?}");
    // A replacement pod that took the Lease is in the Service once its readiness probe
    // passed (every 10 s) and kube-proxy wrote its rules: on a loaded machine that is
    // tens of seconds. What the pods and endpoints were is printed when it fails.
    let reached = (0..120).any(|_| {
        let ok = kubectl_maybe(
            &env,
            &["-n", app, "exec", "scraper", "--", "sh", "-c", &scrape],
        )
        .is_some_and(|m| m.contains("lifeboat_leader 1"));
        if !ok {
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    });
    assert!(
        reached,
        "the Service did not reach the new leader {next} within 60 s\npods:\n{}\nendpoints:\n{}",
        kubectl_maybe(
            &env,
            &["-n", ns, "get", "pods", "-o", "wide", "--show-labels"]
        )
        .unwrap_or_default(),
        kubectl_maybe(
            &env,
            &[
                "-n",
                ns,
                "get",
                "endpoints",
                "lifeboat-metrics",
                "-o",
                "yaml"
            ]
        )
        .unwrap_or_default(),
    );

    // The `backup verify` CronJob runs as a Job on the node (every minute here), with the
    // server's ServiceAccount, through the server's location, and passes.
    let cronjob = env.ok(&[
        "-n",
        ns,
        "backup",
        "verify",
        "--latest",
        "--schedule",
        "nightly",
        "--print-cronjob",
        "--image",
        tag,
        "--cron",
        "* * * * *",
    ]);
    env.apply(&cronjob);
    let logs = cronjob_ran(&env, ns, "lifeboat-backup-verify");
    assert!(logs.contains("nightly-"), "{logs}");
    env.kubectl(
        &["-n", ns, "delete", "cronjob", "lifeboat-backup-verify"],
        None,
    );

    // The etcd snapshot CronJob (`etcd snapshot schedule`, through the installed server:
    // its namespace, ServiceAccount and location) runs as a Job on the control-plane node
    // — here the dev node, labelled so — and stores a snapshot of this cluster's etcd.
    let node = env.kubectl(
        &["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"],
        None,
    );
    env.kubectl(
        &[
            "label",
            "node",
            &node,
            "node-role.kubernetes.io/control-plane=",
            "--overwrite",
        ],
        None,
    );
    let etcd = std::env::var("LIFEBOAT_IT_NODE_ETCD").expect(NEEDS);
    let mut schedule = env.cmd();
    let out = schedule
        .env("LIFEBOAT_MODE", "auto")
        .args([
            "-n",
            ns,
            "etcd",
            "snapshot",
            "schedule",
            "--endpoints",
            &etcd,
            "--storage-location",
            "default",
            "--keep",
            "2",
            "--cluster-name",
            "it-node",
            "--image",
            tag,
            "--schedule",
            "* * * * *",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cronjob = String::from_utf8(out.stdout).unwrap();
    assert!(!cronjob.contains("kind: ConfigMap"), "{cronjob}");
    env.apply(&cronjob);
    let logs = cronjob_ran(&env, ns, "lifeboat-etcd-snapshot");
    env.kubectl(
        &["-n", ns, "delete", "cronjob", "lifeboat-etcd-snapshot"],
        None,
    );
    let stored: Vec<String> = crate::s3::list_keys(bucket)
        .into_iter()
        .filter(|k| k.starts_with("metadata/etcd/it-node/") && k.ends_with(".db"))
        .collect();
    assert!((1..=2).contains(&stored.len()), "{stored:?}\n{logs}");

    env.ok(&["-n", ns, "schedule", "delete", "nightly", "--confirm"]);
    let _ = env.run(&["-n", ns, "uninstall", "--force"]);
    env.kubectl(&["delete", "namespace", app, "--wait=false"], None);
}

/// `restore create --wait-ready`: the restored Deployment's pods really start, and the
/// restore waits until it is Available, reporting it with the time it took; a restored
/// Deployment that cannot start (its image is on no node and no registry is reachable)
/// is named with why when --wait-ready-timeout passes, exit 4.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn restore_waits_until_restored_deployments_are_available() {
    let env = Env::on_node();
    let ns = "node-ready";
    let (target, target2) = ("node-ready-restored", "node-ready-again");
    for n in [target, target2] {
        env.kubectl(
            &[
                "delete",
                "namespace",
                n,
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
    }
    fresh_namespace(&env, ns);
    env.apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {BUSYBOX}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "sleep 1; touch /tmp/ok; exec sleep 3600"]
        readinessProbe: {{exec: {{command: [cat, /tmp/ok]}}, periodSeconds: 1}}
"#
    ));
    env.ok(&[
        "backup",
        "create",
        "node-ready1",
        "--include-namespaces",
        ns,
        "--wait",
    ]);
    let out = env.ok(&[
        "restore",
        "create",
        "node-ready1-r",
        "--from-backup",
        "node-ready1",
        "--namespace-mappings",
        &format!("{ns}:{target}"),
        "--wait-ready",
    ]);
    assert!(
        out.contains(&format!("deployments.apps {target}/web: ready "))
            && out.contains("All 1 restored workload(s) ready."),
        "{out}"
    );
    let available = env.kubectl(
        &[
            "-n",
            target,
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        None,
    );
    assert_eq!(available, "2");

    // The same Deployment pointing at an image no node has.
    env.kubectl(
        &[
            "-n",
            ns,
            "set",
            "image",
            "deployment/web",
            "web=localhost/not-imported:1",
        ],
        None,
    );
    env.ok(&[
        "backup",
        "create",
        "node-ready2",
        "--include-namespaces",
        ns,
        "--wait",
    ]);
    let err = env.fails_with(
        4,
        &[
            "restore",
            "create",
            "node-ready2-r",
            "--from-backup",
            "node-ready2",
            "--namespace-mappings",
            &format!("{ns}:{target2}"),
            "--wait-ready",
            "--wait-ready-timeout",
            "8s",
        ],
    );
    assert!(
        err.contains("1 restored workload(s) not ready 8s after the restore")
            && err.contains(&format!(
                "deployments.apps {target2}/web: 0/2 replicas available"
            )),
        "{err}"
    );
    for n in [ns, target, target2] {
        env.kubectl(&["delete", "namespace", n, "--wait=false"], None);
    }
}

fn dev_cluster(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dev-cluster.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .env("LIFEBOAT_DEV_HOME", home)
        .output()
        .unwrap()
}

/// Two dev clusters, each with a node, at the same time — here both named `it-node`,
/// as two test runs' are (regression: the second's node took the first's network
/// namespace, named after the cluster, and its `down` deleted it). Pods run in both,
/// with their own addresses; the second's `down` leaves the first's pods running.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn two_dev_clusters_with_nodes_run_side_by_side() {
    let env = Env::on_node();
    let kubeconfig = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let port: u16 = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .expect("the node cluster's port");
    let home = tempfile::tempdir().unwrap();
    let second_port = (port + 100).to_string();
    let up = dev_cluster(
        home.path(),
        &["up", "it-node", &second_port, "--nodes", "1"],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let second = Env {
        dir: tempfile::tempdir().unwrap(),
        kubeconfig: home.path().join("it-node/kubeconfig"),
    };
    let pod = |env: &Env, ns: &str| {
        fresh_namespace(env, ns);
        env.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {ns}}}\nspec:\n  containers: [{{name: c, image: {BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}}]\n"
        ));
        wait_pod_ready(env, ns, "p");
        env.kubectl(
            &[
                "-n",
                ns,
                "get",
                "pod",
                "p",
                "-o",
                "jsonpath={.status.podIP}",
            ],
            None,
        )
    };
    let ip1 = pod(&env, "node-side-a");
    let ip2 = pod(&second, "node-side-b");
    assert_ne!(ip1, ip2);
    assert_eq!(sh(&env, "node-side-a", "p", "echo a"), "a\n");
    assert_eq!(sh(&second, "node-side-b", "p", "echo b"), "b\n");
    let down = dev_cluster(home.path(), &["down", "it-node", "--purge"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(sh(&env, "node-side-a", "p", "echo still"), "still\n");
    env.kubectl(
        &["delete", "namespace", "node-side-a", "--wait=false"],
        None,
    );
}

/// The PostgreSQL image made from Debian's binaries (scripts/build-image.py --image
/// postgres) runs as a pod: it makes its database in an emptyDir as user 999, becomes
/// Ready, keeps rows, and checks passwords over TCP (the volume issue backs up such a
/// database).
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn postgres_image_runs_a_database() {
    let env = Env::on_node();
    let ns = "node-postgres";
    fresh_namespace(&env, ns);
    let postgres = postgres_image(&env);
    env.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: db, namespace: {ns}}}
spec:
  containers:
  - name: postgres
    image: {postgres}
    imagePullPolicy: IfNotPresent
    env: [{{name: POSTGRES_PASSWORD, value: not-a-real-password}}, {{name: POSTGRES_DB, value: shop}}]
    readinessProbe: {{exec: {{command: [pg_isready, -h, /tmp]}}, periodSeconds: 1}}
    volumeMounts: [{{name: data, mountPath: /var/lib/postgresql/data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#
    ));
    wait_pod_ready(&env, ns, "db");
    let rows = sh(
        &env,
        ns,
        "db",
        "PGPASSWORD=not-a-real-password psql -h 127.0.0.1 -U postgres -d shop -Atc \
         'create table t(x int); insert into t values (42); select x from t'",
    );
    assert_eq!(rows.lines().last(), Some("42"), "{rows}");
    let wrong = sh(
        &env,
        ns,
        "db",
        "PGPASSWORD=wrong psql -h 127.0.0.1 -U postgres -d shop -Atc 'select 1' 2>&1 || true",
    );
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

/// The PostgreSQL image on the node (scripts/build-image.py --image postgres).
fn postgres_image(env: &Env) -> String {
    let image = env.kubectl(
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.images[*].names}",
        ],
        None,
    );
    image
        .split(['[', ']', ',', '"', ' '])
        .find(|n| n.starts_with("localhost/postgres:") && !n.ends_with(":latest"))
        .unwrap_or_else(|| panic!("no localhost/postgres image on the node: {image}"))
        .to_string()
}

/// The node's kubelet root directory on this machine (beside its containerd socket).
fn kubelet_root() -> std::path::PathBuf {
    let sock = std::env::var("LIFEBOAT_IT_NODE_CONTAINERD").expect(NEEDS);
    let first = sock.split(':').next().unwrap_or_default().to_owned();
    std::path::Path::new(&first)
        .parent()
        .expect("the node's directory")
        .join("kubelet")
}

/// Where volume `volume` (an emptyDir) of pod `pod` is on the node, by the rule the node
/// agent uses.
fn empty_dir_on_node(env: &Env, ns: &str, pod: &str, volume: &str) -> String {
    use lifeboat_types::rules::fs_backup::{Decision, Source, VolumeChoice, node_path};
    let uid = env.kubectl(
        &[
            "-n",
            ns,
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    let choice = VolumeChoice {
        name: volume.to_owned(),
        source: Source::EmptyDir,
        decision: Decision::Backup,
    };
    node_path(kubelet_root().to_str().unwrap(), uid.trim(), &choice, None).unwrap()
}

/// A database on the real node, without the server (`lifeboat volume` on the node, as the
/// docs tell people who run no node agent): PostgreSQL writes 1,000 rows into an emptyDir;
/// the guides' two pre hooks run (CHECKPOINT, and pg_dump into the volume); the volume is
/// backed up; the post hook removes the dump; the namespace is deleted. The pod comes back
/// with an init container that waits for the data (the test plays the restore's wait: the
/// init container the restore will inject is not built yet), `volume restore` writes the
/// volume into the new pod's directory, and PostgreSQL starts on it: every row is there,
/// and the dump removed after the backup is in the snapshot.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn a_database_volume_comes_back_on_the_real_node() {
    let env = Env::on_node();
    let ns = "node-vol-db";
    fresh_namespace(&env, ns);
    let postgres = postgres_image(&env);
    let pod = |name: &str, wait: bool| {
        let init = if wait {
            format!(
                "  initContainers:\n  - name: restore-wait\n    image: {BUSYBOX}\n    imagePullPolicy: IfNotPresent\n    command: [sh, -c, 'until [ -f /var/lib/postgresql/data/.lifeboat-restored ]; do sleep 0.2; done; rm /var/lib/postgresql/data/.lifeboat-restored']\n    volumeMounts: [{{name: data, mountPath: /var/lib/postgresql/data}}]\n"
            )
        } else {
            String::new()
        };
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  annotations: {{backup.velero.io/backup-volumes: data}}
spec:
{init}  containers:
  - name: postgres
    image: {postgres}
    imagePullPolicy: IfNotPresent
    env: [{{name: POSTGRES_PASSWORD, value: not-a-real-password}}, {{name: POSTGRES_DB, value: shop}}]
    readinessProbe: {{exec: {{command: [pg_isready, -h, /tmp]}}, periodSeconds: 1}}
    volumeMounts: [{{name: data, mountPath: /var/lib/postgresql/data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#
        )
    };
    env.apply(&pod("db", false));
    wait_pod_ready(&env, ns, "db");
    let psql = "PGPASSWORD=not-a-real-password psql -h 127.0.0.1 -U postgres -d shop -Atc";
    sh(
        &env,
        ns,
        "db",
        &format!("{psql} 'create table t(x int); insert into t select generate_series(1, 1000)'"),
    );
    // The pre hooks of the guides: a checkpoint, and a dump into the volume.
    sh(&env, ns, "db", &format!("{psql} CHECKPOINT"));
    sh(
        &env,
        ns,
        "db",
        "PGPASSWORD=not-a-real-password pg_dump -h 127.0.0.1 -U postgres shop > /var/lib/postgresql/data/shop.sql",
    );
    let path = empty_dir_on_node(&env, ns, "db", "data");
    assert!(
        std::path::Path::new(&path)
            .join("pgdata/PG_VERSION")
            .is_file(),
        "the emptyDir is where the rule says: {path}"
    );
    let location = format!("file://{}", env.dir.path().join("bucket").display());
    let volume = |args: &[&str]| {
        let mut all = vec!["volume"];
        all.extend_from_slice(args);
        all.extend(["--storage-location", &location, "--namespace", ns]);
        crate::volume::ok_with_key(&env, "node-key", &all)
    };
    volume(&[
        "backup",
        "--path",
        &path,
        "--as-path",
        "/db/data",
        "--tag",
        "volume=data",
    ]);
    // The post hook.
    sh(&env, ns, "db", "rm /var/lib/postgresql/data/shop.sql");

    env.kubectl(&["delete", "namespace", ns, "--wait=true"], None);
    assert!(
        !std::path::Path::new(&path).exists(),
        "the old volume is gone"
    );
    env.kubectl(&["create", "namespace", ns], None);
    env.apply(&pod("db", true));
    // The new pod's volume exists once its init container runs.
    let mut new_path = String::new();
    eventually(
        Duration::from_secs(90),
        "the new pod's volume exists",
        || {
            let uid = kubectl_maybe(
                &env,
                &[
                    "-n",
                    ns,
                    "get",
                    "pod",
                    "db",
                    "-o",
                    "jsonpath={.metadata.uid}",
                ],
            )
            .unwrap_or_default();
            if uid.trim().is_empty() {
                return false;
            }
            new_path = empty_dir_on_node(&env, ns, "db", "data");
            std::path::Path::new(&new_path).is_dir()
        },
    );
    assert_ne!(new_path, path);
    volume(&["restore", "latest", "--target", &new_path]);
    std::fs::write(
        std::path::Path::new(&new_path).join(".lifeboat-restored"),
        "",
    )
    .unwrap();
    wait_pod_ready(&env, ns, "db");
    let count = sh(
        &env,
        ns,
        "db",
        &format!("{psql} 'select count(*), sum(x) from t'"),
    );
    assert_eq!(
        count.trim(),
        "1000|500500",
        "every row written before the backup"
    );

    // The dump the post hook removed is in the snapshot.
    let dump_dir = env.dir.path().join("dump");
    volume(&[
        "restore",
        "latest:/db/data/shop.sql",
        "--target",
        dump_dir.join("shop.sql").to_str().unwrap(),
    ]);
    let dump = std::fs::read_to_string(dump_dir.join("shop.sql")).unwrap();
    assert!(
        dump.contains("COPY public.t (x) FROM stdin;"),
        "{}",
        &dump[..dump.len().min(400)]
    );
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

/// Waits (up to 150 s) for the first Job of CronJob `cronjob` in `ns` to finish, asserts
/// that it succeeded, and returns its log.
fn cronjob_ran(env: &Env, ns: &str, cronjob: &str) -> String {
    let mut job = String::new();
    let done = eventually(
        Duration::from_secs(150),
        &format!("a Job of CronJob {cronjob} finished"),
        || {
            let listed =
                kubectl_maybe(env, &["-n", ns, "get", "jobs", "-o", "json"]).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&listed).unwrap_or_default();
            let items = v["items"].as_array().cloned().unwrap_or_default();
            match items.iter().find(|j| {
                j["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(cronjob)
                    && (j["status"]["succeeded"].as_i64() == Some(1)
                        || j["status"]["failed"].as_i64().unwrap_or(0) > 0)
            }) {
                Some(j) => {
                    job = j["metadata"]["name"].as_str().unwrap().to_string();
                    true
                }
                None => false,
            }
        },
    );
    let logs = env.kubectl(&["-n", ns, "logs", &format!("job/{job}")], None);
    let succeeded = env.kubectl(
        &[
            "-n",
            ns,
            "get",
            "job",
            &job,
            "-o",
            "jsonpath={.status.succeeded}",
        ],
        None,
    );
    assert_eq!(
        succeeded, "1",
        "Job {job} of CronJob {cronjob} failed:\n{logs}"
    );
    eprintln!("Job {job} of CronJob {cronjob} done {done:?} after the CronJob was made");
    logs
}

/// Runs lifeboat through the installed server (`LIFEBOAT_MODE=cluster`) and returns its
/// stdout, asserting success.
fn through_server(env: &Env, args: &[&str]) -> String {
    let out = env
        .cmd()
        .env("LIFEBOAT_MODE", "cluster")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lifeboat {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Issue 15, items 3–5, end to end on the real node through the server: `install
/// --use-node-agent` runs the node agent as a DaemonSet (the lifeboat image built here,
/// the kubelet's pods directory mounted, the key from --repo-password-file), and with
/// --default-volumes-to-fs-backup the server copies every volume of a PostgreSQL pod
/// without Velero's annotation — an emptyDir, and a claim on a static local
/// PersistentVolume (read through the kubelet's bind mount); the guides' pre hook
/// makes the data consistent (CHECKPOINT) and writes a dump into the volume, the post hook
/// removes it. `backup create` through the server makes a PodVolumeBackup per volume that
/// the agent completes (bytes in its status, recorded in the backup's podvolumebackups
/// file); a second backup has the first snapshot as parent. The namespace and the old
/// volume are deleted; `restore create` brings the pod back with the restore-wait init
/// container first, the agent writes the volumes, and PostgreSQL starts: every row is
/// there, and so is the dump. The claim is restored without its old volume (the test plays
/// the provisioner with a new local one) and its files are written into the new one.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn a_database_comes_back_through_the_server_and_its_node_agent() {
    let _alone = installs_on_the_node();
    let env = Env::on_node();
    let ns = "lifeboat-vol";
    let app = "node-vol-app";
    let _ = env.run(&["-n", ns, "uninstall", "--force"]);
    for n in [ns, app] {
        env.kubectl(
            &[
                "delete",
                "namespace",
                n,
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
    }
    let tag = "lifeboat:it-node-agent";
    import_lifeboat_image(&env, tag);
    let bucket = "lifeboat-vol";
    crate::s3::boto(
        "try:\n    s3.create_bucket(Bucket=sys.argv[1])\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\nfor o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []):\n    s3.delete_object(Bucket=sys.argv[1], Key=o['Key'])",
        &[bucket],
    );
    let moto_port = crate::s3::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let creds = env.dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let key = env.dir.path().join("repo-key");
    std::fs::write(&key, "node-agent-key\n").unwrap();
    let config = format!(
        "region=us-east-1,s3ForcePathStyle=true,s3Url=http://{}:{moto_port}",
        node_host()
    );
    let kubelet = kubelet_root();
    let out = env.ok(&[
        "-n",
        ns,
        "install",
        "--image",
        tag,
        "--provider",
        "aws",
        "--bucket",
        bucket,
        "--secret-file",
        creds.to_str().unwrap(),
        "--backup-location-config",
        &config,
        "--use-node-agent",
        "--repo-password-file",
        key.to_str().unwrap(),
        "--kubelet-root-dir",
        kubelet.to_str().unwrap(),
        "--default-volumes-to-fs-backup",
        "--wait",
    ]);
    let server_args = env.kubectl(
        &[
            "-n",
            ns,
            "get",
            "deployment",
            "lifeboat",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ],
        None,
    );
    assert!(
        server_args.contains("--default-volumes-to-fs-backup"),
        "{server_args}"
    );
    assert!(!out.contains("node-agent-key"), "{out}");
    assert!(out.contains("DaemonSet"), "{out}");
    eventually(Duration::from_secs(120), "the node agent Running", || {
        kubectl_maybe(
            &env,
            &[
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=lifeboat-node-agent",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ],
        )
        .is_some_and(|p| p.trim() == "Running")
    });

    env.kubectl(&["create", "namespace", app], None);
    // A claim on a static local volume (the dev cluster has no provisioner).
    let local_pv = |name: &str| {
        let dir = env.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        // The application writes as its own user.
        std::fs::set_permissions(
            &dir,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o777),
        )
        .unwrap();
        env.kubectl(
            &["delete", "pv", name, "--ignore-not-found", "--wait=true"],
            None,
        );
        env.apply(&format!(
            r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: it-local
  local: {{path: {}}}
  nodeAffinity: {{required: {{nodeSelectorTerms: [{{matchExpressions: [{{key: kubernetes.io/hostname, operator: Exists}}]}}]}}}}
"#,
            dir.display()
        ));
        dir
    };
    let dir_a = local_pv("vol-it-local-a");
    env.apply(&format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: files, namespace: {app}}}\nspec: {{accessModes: [ReadWriteOnce], storageClassName: it-local, resources: {{requests: {{storage: 1Gi}}}}}}\n"
    ));
    eventually(Duration::from_secs(60), "claim files Bound", || {
        kubectl_maybe(
            &env,
            &[
                "-n",
                app,
                "get",
                "pvc",
                "files",
                "-o",
                "jsonpath={.status.phase}",
            ],
        )
        .is_some_and(|p| p == "Bound")
    });
    let postgres = postgres_image(&env);
    let psql = "PGPASSWORD=not-a-real-password psql -h 127.0.0.1 -U postgres -d shop -Atc";
    let data = "/var/lib/postgresql/data";
    env.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: {app}
  annotations:
    pre.hook.backup.velero.io/container: postgres
    pre.hook.backup.velero.io/command: '["/bin/sh","-c","{psql} CHECKPOINT && PGPASSWORD=not-a-real-password pg_dump -h 127.0.0.1 -U postgres shop > {data}/shop.sql"]'
    post.hook.backup.velero.io/container: postgres
    post.hook.backup.velero.io/command: '["/bin/sh","-c","rm {data}/shop.sql"]'
spec:
  containers:
  - name: postgres
    image: {postgres}
    imagePullPolicy: IfNotPresent
    env: [{{name: POSTGRES_PASSWORD, value: not-a-real-password}}, {{name: POSTGRES_DB, value: shop}}]
    readinessProbe: {{exec: {{command: [pg_isready, -h, /tmp]}}, periodSeconds: 1}}
    volumeMounts: [{{name: data, mountPath: {data}}}, {{name: files, mountPath: /files}}]
  volumes: [{{name: data, emptyDir: {{}}}}, {{name: files, persistentVolumeClaim: {{claimName: files}}}}]
"#
    ));
    wait_pod_ready(&env, app, "db");
    sh(
        &env,
        app,
        "db",
        "echo uploaded-invoice > /files/invoice.txt",
    );
    sh(
        &env,
        app,
        "db",
        &format!("{psql} 'create table t(x int); insert into t select generate_series(1, 1000)'"),
    );

    let out = through_server(
        &env,
        &[
            "-n",
            ns,
            "backup",
            "create",
            "vol-b1",
            "--include-namespaces",
            app,
            "--wait",
        ],
    );
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(
        sh(
            &env,
            app,
            "db",
            &format!("test -e {data}/shop.sql && echo left || echo removed")
        ),
        "removed\n",
        "the post hook ran after the volume was copied"
    );
    let pvbs = |backup: &str| -> Vec<serde_json::Value> {
        let list = json_of(&env.kubectl(
            &[
                "-n",
                ns,
                "get",
                "podvolumebackups.lifeboat.dev",
                "-l",
                &format!("velero.io/backup-name={backup}"),
                "-o",
                "json",
            ],
            None,
        ));
        list["items"].as_array().cloned().unwrap_or_default()
    };
    // No annotation picks the volumes: the server's --default-volumes-to-fs-backup
    // does (both, never the service account token's projected volume), and the backup
    // records it.
    let b1 = json_of(&env.kubectl(
        &[
            "-n",
            ns,
            "get",
            "backups.lifeboat.dev",
            "vol-b1",
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(b1["spec"]["defaultVolumesToFsBackup"], true, "{b1}");
    let first = pvbs("vol-b1");
    assert_eq!(first.len(), 2, "{first:?}");
    let of = |list: &[serde_json::Value], volume: &str| -> serde_json::Value {
        list.iter()
            .find(|p| p["spec"]["volume"] == volume)
            .cloned()
            .unwrap_or_else(|| panic!("no {volume}: {list:?}"))
    };
    let files = of(&first, "files");
    assert_eq!(files["status"]["phase"], "Completed", "{files}");
    assert_eq!(files["spec"]["tags"]["pvc"], "files");
    assert!(
        files["status"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/volumes/kubernetes.io~local-volume/vol-it-local-a"),
        "{files}"
    );
    let pvb = &of(&first, "data");
    assert_eq!(pvb["status"]["phase"], "Completed", "{pvb}");
    assert_eq!(pvb["spec"]["volume"], "data");
    assert_eq!(pvb["spec"]["pod"]["name"], "db");
    assert_eq!(pvb["spec"]["repoIdentifier"], format!("restic/{app}"));
    assert!(
        pvb["status"]["progress"]["bytesDone"].as_u64().unwrap_or(0) > 1_000_000,
        "{pvb}"
    );
    let snap1 = pvb["status"]["snapshotID"].as_str().unwrap().to_owned();
    let keys = crate::s3::list_keys(bucket);
    assert!(
        keys.contains(&"backups/vol-b1/vol-b1-podvolumebackups.json.gz".to_owned())
            && keys.contains(&format!("restic/{app}/config")),
        "{keys:?}"
    );

    // Incremental: the second backup's snapshot has the first as parent.
    through_server(
        &env,
        &[
            "-n",
            ns,
            "backup",
            "create",
            "vol-b2",
            "--include-namespaces",
            app,
            "--wait",
        ],
    );
    let second = of(&pvbs("vol-b2"), "data");
    assert_eq!(second["status"]["phase"], "Completed", "{second}");
    let snap2 = second["status"]["snapshotID"].as_str().unwrap().to_owned();
    crate::s3::s3_location(&env, "vol", bucket, "");
    let snaps = json_of(&crate::volume::ok_with_key(
        &env,
        "node-agent-key",
        &[
            "volume",
            "snapshots",
            "--storage-location",
            "vol",
            "--namespace",
            app,
            "-o",
            "json",
        ],
    ));
    let parent = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == snap2.as_str())
        .unwrap_or_else(|| panic!("{snaps}"))["parent"]
        .clone();
    assert_eq!(parent, snap1.as_str(), "{snaps}");

    env.kubectl(&["delete", "namespace", app, "--wait=true"], None);
    // The old volume goes; the test plays the provisioner with a new, empty one.
    env.kubectl(&["delete", "pv", "vol-it-local-a", "--wait=true"], None);
    let dir_b = local_pv("vol-it-local-b");
    let out = through_server(
        &env,
        &[
            "-n",
            ns,
            "restore",
            "create",
            "vol-r1",
            "--from-backup",
            "vol-b1",
            "--wait",
        ],
    );
    assert!(out.contains("Completed"), "{out}");
    let init = env.kubectl(
        &[
            "-n",
            app,
            "get",
            "pod",
            "db",
            "-o",
            "jsonpath={.spec.initContainers[0].name}",
        ],
        None,
    );
    assert_eq!(init, "restore-wait");
    wait_pod_ready(&env, app, "db");
    let count = sh(
        &env,
        app,
        "db",
        &format!("{psql} 'select count(*), sum(x) from t'"),
    );
    assert_eq!(
        count.trim(),
        "1000|500500",
        "every row written before the backup"
    );
    let dump = sh(&env, app, "db", &format!("cat {data}/shop.sql"));
    assert!(
        dump.contains("COPY public.t (x) FROM stdin;"),
        "{}",
        &dump[..dump.len().min(400)]
    );
    // restore-wait removes its marker; the agent then removes the empty directory.
    eventually(
        Duration::from_secs(10),
        "the marker directory removed",
        || {
            sh(
                &env,
                app,
                "db",
                &format!("test -e {data}/.lifeboat && echo left || echo removed"),
            ) == "removed\n"
        },
    );
    // The claim's files, in the new volume; the old one was not created again.
    assert_eq!(
        sh(&env, app, "db", "cat /files/invoice.txt"),
        "uploaded-invoice\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir_b.join("invoice.txt")).unwrap(),
        "uploaded-invoice\n"
    );
    assert_eq!(
        env.kubectl(
            &[
                "-n",
                app,
                "get",
                "pvc",
                "files",
                "-o",
                "jsonpath={.spec.volumeName}"
            ],
            None
        ),
        "vol-it-local-b"
    );
    assert!(
        env.kubectl(
            &[
                "get",
                "pv",
                "vol-it-local-a",
                "--ignore-not-found",
                "-o",
                "name"
            ],
            None
        )
        .trim()
        .is_empty(),
        "the restore does not point at the original disk"
    );
    assert!(dir_a.join("invoice.txt").is_file());
    let pvr = json_of(&env.kubectl(
        &[
            "-n",
            ns,
            "get",
            "podvolumerestores.lifeboat.dev",
            "-l",
            "velero.io/restore-name=vol-r1",
            "-o",
            "json",
        ],
        None,
    ));
    let restores = pvr["items"].as_array().unwrap();
    assert_eq!(restores.len(), 2, "{pvr}");
    assert!(
        restores.iter().all(|r| r["status"]["phase"] == "Completed"),
        "{pvr}"
    );
    assert_eq!(of(restores, "data")["spec"]["snapshotID"], snap1.as_str());

    let _ = env.run(&["-n", ns, "uninstall", "--force"]);
    env.kubectl(&["delete", "namespace", app, "--wait=true"], None);
    env.kubectl(
        &["delete", "pv", "vol-it-local-b", "--ignore-not-found"],
        None,
    );
}

/// The admin kubeconfig's API port of `env`'s cluster.
fn api_port(env: &Env) -> u16 {
    std::fs::read_to_string(&env.kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .expect("the cluster's port")
}

/// Stops the primary of the failover test however the test ends, and removes its data.
struct ClusterDown(std::path::PathBuf, &'static str);

impl Drop for ClusterDown {
    fn drop(&mut self) {
        let _ = dev_cluster(&self.0, &["down", self.1, "--purge"]);
    }
}

/// Issue 16 item 7, with a claim's data: a failover between two clusters that each have
/// a real node, the primary stopped. The primary (`dr-east`, a second node cluster started
/// here) runs lifeboat with its node agent and a Deployment whose claim, on a local
/// volume, holds a file; its server backs the namespace up with the claim's files into the
/// shared bucket. The primary is then stopped. `dr failover` from the CLI, with the
/// standby's lifeboat (and node agent) reading the same bucket, restores the application
/// there: the pod carries the restore-wait container, the standby's node agent writes the
/// claim's files into a new volume (the test plays the provisioner), the Deployment's new
/// ReplicaSet adopts the pod, and the file reads back in the running container.
#[test]
#[ignore = "needs the dev cluster with a node: run scripts/test.sh"]
fn a_failover_brings_a_claims_data_to_the_standby_with_the_primary_stopped() {
    let _alone = installs_on_the_node();
    let west = Env::on_node();
    let ns = "lifeboat-drvol";
    let app = "drvol-app";
    let class = "it-drvol";
    let _ = west.run(&["-n", ns, "uninstall", "--force"]);
    for n in [ns, app] {
        west.kubectl(
            &[
                "delete",
                "namespace",
                n,
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
    }
    west.kubectl(
        &[
            "delete",
            "pv",
            "drvol-west",
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );

    // The primary: a cluster with a node of its own, beside the node cluster.
    let home = tempfile::tempdir().unwrap();
    let port = (api_port(&west) + 130).to_string();
    let _down = ClusterDown(home.path().to_owned(), "dr-east");
    let up = dev_cluster(home.path(), &["up", "dr-east", &port, "--nodes", "1"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let east = Env {
        dir: tempfile::tempdir().unwrap(),
        kubeconfig: home.path().join("dr-east/kubeconfig"),
    };
    let printed = |args: &[&str]| {
        let out = dev_cluster(home.path(), args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let east_host = printed(&["hostip", "dr-east"]);
    let east_sockets = printed(&["sockets", "dr-east"]);
    let east_kubelet = std::path::Path::new(east_sockets.split(':').next().unwrap())
        .parent()
        .unwrap()
        .join("kubelet");

    let tag = "lifeboat:it-dr-volumes";
    let image = build_lifeboat_image(west.dir.path(), &["--tag", tag]);
    import_image(
        &std::env::var("LIFEBOAT_IT_NODE_CONTAINERD").expect(NEEDS),
        &image,
    );
    import_image(&east_sockets, &image);

    let bucket = "lifeboat-drvol";
    crate::s3::boto(
        "try:\n    s3.create_bucket(Bucket=sys.argv[1])\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\nfor o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []):\n    s3.delete_object(Bucket=sys.argv[1], Key=o['Key'])",
        &[bucket],
    );
    let moto_port = crate::s3::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let creds = west.dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let key = west.dir.path().join("repo-key");
    std::fs::write(&key, "dr-volume-key\n").unwrap();
    // The same bucket and repository key on both, each reaching moto at its own host
    // address.
    let install = |env: &Env, host: &str, kubelet: &std::path::Path| {
        let config =
            format!("region=us-east-1,s3ForcePathStyle=true,s3Url=http://{host}:{moto_port}");
        env.ok(&[
            "-n",
            ns,
            "install",
            "--image",
            tag,
            "--provider",
            "aws",
            "--bucket",
            bucket,
            "--secret-file",
            creds.to_str().unwrap(),
            "--backup-location-config",
            &config,
            "--use-node-agent",
            "--repo-password-file",
            key.to_str().unwrap(),
            "--kubelet-root-dir",
            kubelet.to_str().unwrap(),
            "--wait",
        ]);
        eventually(Duration::from_secs(120), "the node agent Running", || {
            kubectl_maybe(
                env,
                &[
                    "-n",
                    ns,
                    "get",
                    "pods",
                    "-l",
                    "app.kubernetes.io/name=lifeboat-node-agent",
                    "-o",
                    "jsonpath={.items[*].status.phase}",
                ],
            )
            .is_some_and(|p| p.trim() == "Running")
        });
    };
    install(&east, &east_host, &east_kubelet);
    install(&west, &node_host(), &kubelet_root());

    // A claim on a static local volume (the dev clusters have no provisioner).
    let local_pv = |env: &Env, name: &str| {
        let dir = env.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(
            &dir,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o777),
        )
        .unwrap();
        env.apply(&format!(
            r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: {class}
  local: {{path: {}}}
  nodeAffinity: {{required: {{nodeSelectorTerms: [{{matchExpressions: [{{key: kubernetes.io/hostname, operator: Exists}}]}}]}}}}
"#,
            dir.display()
        ));
        dir
    };
    local_pv(&east, "drvol-east");
    east.apply(&format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {app}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {app}}}
data: {{color: green}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-password, namespace: {app}}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {app}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: orders, namespace: {app}}}
spec: {{accessModes: [ReadWriteOnce], storageClassName: {class}, resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {app}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{backup.velero.io/backup-volumes: orders}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {BUSYBOX}
        imagePullPolicy: IfNotPresent
        command: [sleep, "3600"]
        volumeMounts: [{{name: orders, mountPath: /orders}}]
      volumes: [{{name: orders, persistentVolumeClaim: {{claimName: orders}}}}]
"#
    ));
    east.kubectl(
        &[
            "-n",
            app,
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=120s",
        ],
        None,
    );
    east.kubectl(
        &[
            "-n",
            app,
            "exec",
            "deploy/web",
            "--",
            "sh",
            "-c",
            "echo order-1138 > /orders/open.txt",
        ],
        None,
    );
    let out = through_server(
        &east,
        &[
            "-n",
            ns,
            "backup",
            "create",
            "drvol-1",
            "--include-namespaces",
            app,
            "--wait",
        ],
    );
    assert!(out.contains("Completed"), "{out}");
    let keys = crate::s3::list_keys(bucket);
    assert!(
        keys.contains(&"backups/drvol-1/drvol-1-podvolumebackups.json.gz".to_owned())
            && keys.contains(&format!("restic/{app}/config")),
        "{keys:?}"
    );

    // The primary goes down: its API server, etcd and node are stopped.
    let down = dev_cluster(home.path(), &["down", "dr-east"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    // The standby's volume for the claim (the test plays the provisioner).
    let west_dir = local_pv(&west, "drvol-west");
    let plan_file = west.dir.path().join("drvol.yaml");
    std::fs::write(
        &plan_file,
        format!(
            r#"apiVersion: lifeboat.dev/v1alpha1
kind: DRPlan
metadata: {{name: drvol}}
spec:
  namespaces: [{app}]
  rpo: 1h
  rto: 10m
  clusters:
  - {{name: east, kubeconfig: {}, active: true, locations: [default], namespace: {ns}}}
  - {{name: west, kubeconfig: {}, locations: [default], namespace: {ns}}}
  verification: {{timeout: 3m}}
"#,
            east.kubeconfig.display(),
            west.kubeconfig.display(),
        ),
    )
    .unwrap();
    let out = west.run(&[
        "dr",
        "failover",
        plan_file.to_str().unwrap(),
        "--id",
        "v1",
        "--update-plan",
        "-o",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["outcome"], "succeeded", "{r:#}");
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str(), r["backup"].as_str()),
        (Some("east"), Some("west"), Some("drvol-1"))
    );
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("active east is down"),
        "{r:#}"
    );
    // The plan file (written in flow style) names west its active cluster now.
    let validated = west.ok(&["dr", "validate", plan_file.to_str().unwrap()]);
    assert!(
        validated.contains("2 clusters (active west)"),
        "{validated}"
    );

    // The file, in the running container on the standby, and in its new volume.
    assert_eq!(
        west.kubectl(
            &[
                "-n",
                app,
                "exec",
                "deploy/web",
                "--",
                "cat",
                "/orders/open.txt"
            ],
            None
        ),
        "order-1138\n"
    );
    assert_eq!(
        std::fs::read_to_string(west_dir.join("open.txt")).unwrap(),
        "order-1138\n"
    );
    let pod = json_of(&west.kubectl(
        &["-n", app, "get", "pods", "-l", "app=web", "-o", "json"],
        None,
    ));
    let pods = pod["items"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "one pod: the restored one, {pod:#}");
    assert_eq!(
        pods[0]["spec"]["initContainers"][0]["name"], "restore-wait",
        "{pod:#}"
    );
    assert_eq!(
        pods[0]["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet",
        "the Deployment's ReplicaSet adopted it: {pod:#}"
    );
    let pvrs = json_of(&west.kubectl(
        &[
            "-n",
            ns,
            "get",
            "podvolumerestores.lifeboat.dev",
            "-o",
            "json",
        ],
        None,
    ));
    let phases: Vec<&str> = pvrs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"]["phase"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(phases, ["Completed"], "{pvrs:#}");
    assert_eq!(
        west.kubectl(
            &[
                "-n",
                app,
                "get",
                "configmap",
                "settings",
                "-o",
                "jsonpath={.data.color}"
            ],
            None
        ),
        "green"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));

    west.kubectl(&["delete", "namespace", app, "--wait=true"], None);
    let _ = west.run(&["-n", ns, "uninstall", "--force"]);
    west.kubectl(
        &[
            "delete",
            "pv",
            "drvol-west",
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    );
}
