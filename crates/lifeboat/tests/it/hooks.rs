//! Backup exec hooks on the real API server (issue 5). This control plane has no
//! kubelet, so no command ever runs in a container: what is covered here is that the
//! right pods get the right hooks (annotations and spec), that the exec request really
//! goes to the API server's pods/exec subresource, and that its refusal is reported per
//! onError (Fail: error, PartiallyFailed; Continue: warning). Ordering, timeouts, waits
//! and success paths are covered with a scripted executor (lifeboat-engine's hooks.rs
//! tests) and the selection rules as tables (lifeboat-types' hooks.rs and
//! restore_hooks.rs tests).

use crate::support::*;

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_hooks_reach_the_api_server_and_failures_follow_on_error() {
    let env = Env::new();
    let ns = "hooks-it";
    env.apply(&format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: {ns}
  labels: {{app: db}}
  annotations:
    pre.hook.backup.velero.io/command: '["/bin/sh","-c","mysql -e \"FLUSH TABLES WITH READ LOCK\""]'
    pre.hook.backup.velero.io/container: main
spec:
  containers: [{{name: main, image: mysql}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  containers: [{{name: main, image: nginx}}]
"#
    ));
    let spec = format!(
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: hk1\nspec:\n  includedNamespaces: [{ns}]\n  hooks:\n    resources:\n    - name: web-sync\n      labelSelector: {{matchLabels: {{app: web}}}}\n      post:\n      - exec:\n          command: [\"/bin/sync\"]\n          onError: Continue\n          timeout: 10s\n"
    );
    let file = env.dir.path().join("backup.yaml");
    std::fs::write(&file, spec).unwrap();
    let out = env.run(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.storage().join("backups/hk1/velero-backup.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["status"]["phase"], "PartiallyFailed");
    assert_eq!(meta["status"]["hookStatus"]["hooksAttempted"], 2);
    assert_eq!(meta["status"]["hookStatus"]["hooksFailed"], 2);
    let results = read_json_gz(&env.storage().join("backups/hk1/hk1-results.gz"));
    let errors = results["errors"]["namespaces"][ns].as_array().unwrap();
    let warnings = results["warnings"]["namespaces"][ns].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{results}");
    let e = errors[0].as_str().unwrap();
    assert!(
        e.contains("pre hook <annotations>")
            && e.contains(&format!("pod {ns}/db"))
            && e.contains("in container main"),
        "{e}"
    );
    // The API server's own answer for a pod no kubelet runs.
    assert!(
        e.contains("the API server refused the exec")
            && e.contains("does not have a host assigned"),
        "{e}"
    );
    let w = warnings
        .iter()
        .map(|w| w.as_str().unwrap())
        .find(|w| w.contains("web-sync"))
        .expect("web-sync warning");
    assert!(
        w.contains("post hook web-sync") && w.contains(&format!("pod {ns}/web")),
        "{w}"
    );
    let described = env.ok(&["backup", "describe", "hk1"]);
    assert!(
        described.contains("HooksAttempted:  2") && described.contains("HooksFailed:     2"),
        "{described}"
    );
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

/// Restore hooks: init containers are added to the restored pod; exec hooks wait for
/// their container and then go to the API server. No kubelet runs pods here, so the test
/// plays the kubelet's part for one pod (it writes a Running container status through the
/// status subresource): that pod's hook passes the wait and its exec reaches the API
/// server, whose refusal is reported per onError (Fail: an error); the other pod's
/// container never runs, so its hook fails its wait timeout (Continue: a warning).
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_hooks_init_containers_and_exec_after_the_container_runs() {
    let env = Env::new();
    let ns = "rhooks-it";
    let target = format!("{ns}-restored");
    // A previous run that failed leaves its namespaces; pods that exist get no hooks.
    env.kubectl(
        &[
            "delete",
            "namespace",
            ns,
            &target,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );
    env.apply(&format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: {ns}
  labels: {{app: db}}
spec:
  initContainers: [{{name: own, image: busybox}}]
  containers: [{{name: main, image: mysql}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: cache
  namespace: {ns}
  labels: {{app: cache}}
  annotations:
    post.hook.restore.velero.io/command: '["/bin/sh","-c","redis-cli ping"]'
    post.hook.restore.velero.io/container: redis
    post.hook.restore.velero.io/on-error: Fail
    post.hook.restore.velero.io/wait-timeout: 60s
spec:
  containers: [{{name: redis, image: redis}}]
"#
    ));
    env.ok(&["backup", "create", "rh1", "--include-namespaces", ns]);
    let doc = format!(
        r#"apiVersion: velero.io/v1
kind: Restore
metadata:
  name: rh1-r
spec:
  backupName: rh1
  namespaceMapping: {{{ns}: {target}}}
  hooks:
    resources:
    - name: fetch-data
      includedNamespaces: ["{ns}-*"]
      labelSelector: {{matchLabels: {{app: db}}}}
      postHooks:
      - init:
          initContainers:
          - name: fetch
            image: alpine:3
            command: ["/bin/sh", "-c", "echo restoring"]
      - exec:
          command: ["/bin/check"]
          waitTimeout: 1s
"#
    );
    let file = env.dir.path().join("restore.yaml");
    std::fs::write(&file, doc).unwrap();
    let log = env.dir.path().join("restore.log");
    let mut child = env
        .cmd()
        .args(["apply", "-f", file.to_str().unwrap()])
        .stdout(std::fs::File::create(env.dir.path().join("restore.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // If the restore ends before its pods appear, say why.
    for _ in 0..300 {
        let listed = std::process::Command::new("kubectl")
            .env("KUBECONFIG", &env.kubeconfig)
            .args(["-n", &target, "get", "pod", "cache", "-o", "name"])
            .output()
            .unwrap();
        if listed.status.success() {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let results = env
                .storage()
                .join("restores/rh1-r/restore-rh1-r-results.gz");
            panic!(
                "the restore ended ({st}) before pod cache appeared:\n{}\n{}\n{}",
                std::fs::read_to_string(env.dir.path().join("restore.out")).unwrap_or_default(),
                std::fs::read_to_string(&log).unwrap_or_default(),
                if results.exists() {
                    read_json_gz(&results).to_string()
                } else {
                    String::new()
                }
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The kubelet's part: once the pod is restored, its container runs — a few seconds
    // later, after db's hook has given up waiting (a Fail stops every hook not yet done,
    // so db's must end first for both outcomes to show).
    env.wait_for(&["-n", &target, "pod", "cache"], 1);
    std::thread::sleep(std::time::Duration::from_secs(3));
    env.kubectl(
        &[
            "-n",
            &target,
            "patch",
            "pod",
            "cache",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running","containerStatuses":[{"name":"redis","image":"redis","imageID":"","ready":true,"restartCount":0,"state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}]}}"#,
        ],
        None,
    );
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(3), "{stderr}");

    let pod: serde_json::Value = serde_json::from_str(
        &env.kubectl(&["-n", &target, "get", "pod", "db", "-o", "json"], None),
    )
    .unwrap();
    let names: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fetch", "own"]);

    let results = read_json_gz(
        &env.storage()
            .join("restores/rh1-r/restore-rh1-r-results.gz"),
    );
    let errors = results["errors"]["namespaces"][&target].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{results}");
    let e = errors[0].as_str().unwrap();
    assert!(
        e.contains(&format!("restore exec hook <annotations> (\"/bin/sh -c redis-cli ping\" in container redis) of pod {target}/cache failed"))
            && e.contains("the API server refused the exec")
            && e.contains("does not have a host assigned"),
        "{e}"
    );
    let warnings = results["warnings"]["namespaces"][&target]
        .as_array()
        .unwrap();
    let w = warnings
        .iter()
        .map(|w| w.as_str().unwrap())
        .find(|w| w.contains("fetch-data"))
        .unwrap_or_else(|| panic!("{results}"));
    assert!(
        w.contains(&format!("restore exec hook fetch-data (\"/bin/check\" in container main) of pod {target}/db failed: container main was not running within the wait timeout 1s")),
        "{w}"
    );
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.storage().join("restores/rh1-r/velero-restore.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["status"]["phase"], "PartiallyFailed");
    assert_eq!(meta["status"]["hookStatus"]["hooksAttempted"], 2);
    assert_eq!(meta["status"]["hookStatus"]["hooksFailed"], 2);
    let described = env.ok(&["restore", "describe", "rh1-r"]);
    assert!(
        described.contains("HooksAttempted:  2") && described.contains("HooksFailed:     2"),
        "{described}"
    );

    // A typo in the hooks is refused before anything is created.
    let bad = env.dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: velero.io/v1\nkind: Restore\nmetadata:\n  name: rh1-bad\nspec:\n  backupName: rh1\n  hooks:\n    resources:\n    - name: x\n      postHooks:\n      - exec: {command: [a], timeout: 1m}\n").unwrap();
    let err = env.fails(&["apply", "-f", bad.to_str().unwrap()]);
    assert!(err.contains("timeout"), "{err}");
    assert!(!env.storage().join("restores/rh1-bad").exists());
    env.kubectl(&["delete", "namespace", ns, &target, "--wait=false"], None);
}
