//! The in-cluster mode (issue 5): `lifeboat install` applied to the real control plane,
//! then `lifeboat server` run out-of-cluster with the installed ServiceAccount's token
//! (so the least-privilege RBAC is what is exercised), driving a per-minute Schedule end
//! to end: the immediate backup, its TTL expiry (stored data deleted first, then the
//! object), the next minute's backup; a Restore and a DeleteBackupRequest as objects; an
//! orphaned InProgress backup failed on start; /metrics checked by promtool and scraped
//! by a real Prometheus; a standby replica that takes over when the leader gets SIGTERM;
//! uninstall removes it all.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_types::format::document::VeleroDocument;

use crate::support::*;

/// A process the test started, killed when dropped; when the test is failing, the end
/// of its log is printed first (the temporary directory goes with the test).
struct Server(Child, Option<std::path::PathBuf>);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking()
            && let Some(log) = &self.1
        {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- last lines of {} ---", log.display());
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// `promtool check metrics` of `text`: its exit code and what it printed.
fn promtool_check_metrics(text: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&env.kubectl(&a, None)).unwrap()
}

/// Polls `f` every 500 ms until it returns Some, or panics after `secs` with `what`.
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn backups_of(env: &Env, ns: &str, schedule: &str) -> Vec<serde_json::Value> {
    let v = json(
        env,
        &[
            "-n",
            ns,
            "get",
            "backups.lifeboat.dev",
            "-l",
            &format!("velero.io/schedule-name={schedule}"),
        ],
    );
    v["items"].as_array().cloned().unwrap_or_default()
}

fn phase(b: &serde_json::Value) -> &str {
    b["status"]["phase"].as_str().unwrap_or("")
}

/// A kubeconfig for the ServiceAccount `lifeboat` in `ns`, from its token Secret.
fn service_account_kubeconfig(env: &Env, ns: &str, out: &Path) {
    use base64::Engine as _;
    let token = eventually(60, "the ServiceAccount's token Secret", || {
        let v = json(
            env,
            &[
                "-n",
                ns,
                "get",
                "secrets",
                "--field-selector",
                "type=kubernetes.io/service-account-token",
            ],
        );
        v["items"].as_array()?.iter().find_map(|s| {
            (s["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "lifeboat")
                .then(|| s["data"]["token"].as_str().map(str::to_string))
                .flatten()
        })
    });
    let token = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap(),
    )
    .unwrap();
    let admin = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let server = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap();
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .unwrap();
    std::fs::write(
        out,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: sa\ncurrent-context: c\n"
        ),
    )
    .unwrap();
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn server_with_installed_rbac_drives_a_minutely_schedule_with_ttl_expiry() {
    let env = Env::new();
    let ns = "lifeboat-srv-it";
    let app = "srv-it-app";
    // A previous run's leftovers (it stops at the first failed assertion): uninstall
    // drops the server's finalizers, which no server is left to remove.
    let _ = env.run(&["-n", ns, "uninstall", "--force"]);
    env.kubectl(
        &[
            "delete",
            "namespace",
            ns,
            app,
            &format!("{app}-restored"),
            "lifeboat-seeds-it",
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );
    let store = env.dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();

    // install --dry-run prints every object; install applies them.
    let dry = env.ok(&[
        "-n",
        ns,
        "install",
        "--dry-run",
        "-o",
        "yaml",
        "--provider",
        "file",
        "--bucket",
        store.to_str().unwrap(),
    ]);
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "Deployment",
        "Service",
        "BackupStorageLocation",
    ] {
        assert!(
            dry.contains(&format!("kind: {kind}")),
            "{kind} missing from the dry run"
        );
    }
    let out = env.ok(&[
        "-n",
        ns,
        "install",
        "--provider",
        "file",
        "--bucket",
        store.to_str().unwrap(),
    ]);
    assert!(
        out.contains("CustomResourceDefinition/schedules.lifeboat.dev: applied"),
        "{out}"
    );
    let crd = json(&env, &["get", "crd", "backups.lifeboat.dev"]);
    let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        columns.contains(&"Status") && columns.contains(&"Expires"),
        "{columns:?}"
    );

    // A velero.io/v1 Schedule document becomes a lifeboat.dev Schedule; a typo is refused.
    let doc = env.dir.path().join("schedule.yaml");
    std::fs::write(
        &doc,
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: from-velero\nspec:\n  schedule: \"0 3 * * *\"\n  paused: true\n  template:\n    includedNamespaces: [\"*\"]\n    ttl: 168h0m0s\n",
    )
    .unwrap();
    let out = env.ok(&["-n", ns, "apply", "-f", doc.to_str().unwrap()]);
    assert!(out.contains("Schedule \"from-velero\" created"), "{out}");
    let got: serde_json::Value =
        serde_json::from_str(&env.ok(&["-n", ns, "schedule", "get", "from-velero", "-o", "json"]))
            .unwrap();
    assert_eq!(got["spec"]["template"]["ttl"], "168h0m0s");
    assert_eq!(got["spec"]["paused"], true);
    std::fs::write(&doc, "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: typo\nspec:\n  schedule: \"0 3 * * *\"\n  pasued: true\n").unwrap();
    let err = env.fails(&["-n", ns, "apply", "-f", doc.to_str().unwrap()]);
    assert!(err.contains("pasued"), "{err}");
    // A schedule that does not exist is named, by every verb.
    for verb in ["get", "describe", "pause", "delete"] {
        let mut args = vec!["-n", ns, "schedule", verb, "nosuch"];
        if verb == "delete" {
            args.push("--confirm");
        }
        let err = env.fails(&args);
        assert!(
            err.contains(&format!("schedule \"nosuch\" not found in namespace {ns}")),
            "{verb}: {err}"
        );
    }

    env.kubectl(&["create", "namespace", app], None);
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

    // An InProgress backup with no server behind it (as left by a crashed server).
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata:\n  name: orphan\n  namespace: {ns}\nspec:\n  includedNamespaces: [{app}]\n"
    ));
    env.kubectl(
        &[
            "-n",
            ns,
            "patch",
            "backups.lifeboat.dev",
            "orphan",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"InProgress"}}"#,
        ],
        None,
    );

    // A backup made by the CLI straight into the location: no object exists for it
    // here, as in a cluster that did not make it. The server's sync must bring it in.
    let url = format!("file://{}", store.display());
    env.ok(&[
        "backup",
        "create",
        "made-elsewhere",
        "--include-namespaces",
        app,
        "--storage-location",
        &url,
    ]);

    // Locations with their own rhythm: `quiet` is never validated nor synced (0s);
    // `hourly` is validated once now and then not for an hour, and never synced.
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: quiet, namespace: {ns}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {store}}}\n  validationFrequency: 0s\n  backupSyncPeriod: 0s\n---\napiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: hourly, namespace: {ns}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {store}}}\n  accessMode: ReadOnly\n  validationFrequency: 1h\n  backupSyncPeriod: 0s\n",
        store = store.display()
    ));

    let sa_config = env.dir.path().join("sa.kubeconfig");
    service_account_kubeconfig(&env, ns, &sa_config);
    let metrics_port = free_port();
    let log = std::fs::File::create(env.dir.path().join("server.log")).unwrap();
    let mut server = Server(
        env.cmd()
            .env(
                "LIFEBOAT_LOG",
                "warn,lifeboat=info,lifeboat_engine=info,lifeboat_server=info",
            )
            .args(["-n", ns, "server", "--kubeconfig"])
            .arg(&sa_config)
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
            .args([
                "--garbage-collection-frequency",
                "2s",
                "--store-validation-frequency",
                "2s",
                "--backup-sync-period",
                "2s",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        Some(env.dir.path().join("server.log")),
    );
    let server_log =
        || std::fs::read_to_string(env.dir.path().join("server.log")).unwrap_or_default();

    // The orphan is failed with a reason.
    let orphan = eventually(30, "the orphaned backup to fail", || {
        let b = json(&env, &["-n", ns, "get", "backups.lifeboat.dev", "orphan"]);
        (phase(&b) == "Failed").then_some(b)
    });
    assert!(
        orphan["status"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("stopped while this backup ran")
    );

    // Sync: the stored backup appears as a Backup object with its stored status, and
    // the location is Available.
    let synced = eventually(30, "the stored backup to be synced", || {
        let v = json(&env, &["-n", ns, "get", "backups.lifeboat.dev"]);
        v["items"]
            .as_array()?
            .iter()
            .find(|b| b["metadata"]["name"] == "made-elsewhere")
            .cloned()
    });
    assert_eq!(phase(&synced), "Completed", "{synced}");
    assert_eq!(
        synced["metadata"]["labels"]["velero.io/storage-location"],
        "default"
    );
    let bsl = json(
        &env,
        &[
            "-n",
            ns,
            "get",
            "backupstoragelocations.lifeboat.dev",
            "default",
        ],
    );
    assert_eq!(bsl["status"]["phase"], "Available", "{bsl}");
    assert!(bsl["status"]["lastSyncedTime"].is_string());
    // `apply -f --server`: velero.io/v1 documents become lifeboat.dev objects the server
    // runs (a location with a Secret credential, as the guides write it; a Backup).
    let doc = env.dir.path().join("to-server.yaml");
    std::fs::write(
        &doc,
        format!(
            "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata:\n  name: applied\nspec:\n  provider: file\n  objectStorage:\n    bucket: {}\n  validationFrequency: 0s\n  backupSyncPeriod: 0s\n---\napiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: applied-backup\n  labels: {{team: dr}}\nspec:\n  includedNamespaces: [{app}]\n  ttl: 24h0m0s\n",
            store.display()
        ),
    )
    .unwrap();
    let out = env.ok(&["-n", ns, "apply", "-f", doc.to_str().unwrap(), "--server"]);
    assert!(
        out.contains("BackupStorageLocation \"applied\" created")
            && out.contains("Backup \"applied-backup\" created"),
        "{out}"
    );
    let applied = eventually(60, "the applied Backup to complete", || {
        let b = json(
            &env,
            &["-n", ns, "get", "backups.lifeboat.dev", "applied-backup"],
        );
        (phase(&b) == "Completed").then_some(b)
    });
    assert_eq!(applied["metadata"]["labels"]["team"], "dr");
    assert!(
        store
            .join("backups/applied-backup/velero-backup.json")
            .exists()
    );
    let applied_bsl = json(
        &env,
        &[
            "-n",
            ns,
            "get",
            "backupstoragelocations.lifeboat.dev",
            "applied",
        ],
    );
    assert_eq!(applied_bsl["spec"]["validationFrequency"], "0s");
    // A typo in a document for the server is refused before anything is created.
    std::fs::write(&doc, "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: typo-backup\nspec:\n  includeNamespaces: [x]\n").unwrap();
    let err = env.fails(&["-n", ns, "apply", "-f", doc.to_str().unwrap(), "--server"]);
    assert!(err.contains("includeNamespaces"), "{err}");
    // A document's namespace must agree with -n (as kubectl).
    std::fs::write(&doc, "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: elsewhere\n  namespace: velero\nspec: {}\n").unwrap();
    let err = env.fails(&["-n", ns, "apply", "-f", doc.to_str().unwrap(), "--server"]);
    assert!(
        err.contains(&format!("names namespace \"velero\" but -n is \"{ns}\"")),
        "{err}"
    );
    let listed = json(&env, &["-n", ns, "get", "backups.lifeboat.dev"]);
    assert!(
        !listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["metadata"]["name"] == "typo-backup"),
        "{listed}"
    );

    // Every velero.io/v1 document of the guides is accepted as a lifeboat.dev object and
    // comes back from the API server with its spec whole: parsing refuses unknown fields,
    // and this shows the CRD schemas prune nothing the Rust types keep. Another namespace,
    // which no server watches, so nothing runs.
    let seeds_ns = "lifeboat-seeds-it";
    env.kubectl(&["create", "namespace", seeds_ns], None);
    let mut sent = 0;
    for (i, (at, doc)) in crate::seeds::seed_documents().into_iter().enumerate() {
        if doc.contains("\nkind: VolumeSnapshotLocation") {
            continue; // a later issue's kind
        }
        let parsed = lifeboat_types::format::document::parse_documents(&doc)
            .unwrap_or_else(|e| panic!("{at}: {e}\n{doc}"));
        let name = format!("seed-{i}");
        let (resource, spec) = match &parsed[0] {
            VeleroDocument::Backup(b) => ("backups", serde_json::to_value(&b.spec)),
            VeleroDocument::Restore(r) => ("restores", serde_json::to_value(&r.spec)),
            VeleroDocument::Schedule(s) => ("schedules", serde_json::to_value(&s.spec)),
            VeleroDocument::BackupStorageLocation(l) => {
                ("backupstoragelocations", serde_json::to_value(&l.spec))
            }
        };
        let mut yaml: serde_json::Value = serde_yaml_ng::from_str(&doc).unwrap();
        yaml["metadata"]["name"] = name.clone().into();
        yaml["metadata"]["namespace"] = seeds_ns.into();
        let f = env.dir.path().join(format!("{name}.json"));
        std::fs::write(&f, yaml.to_string()).unwrap();
        let out = env.run(&[
            "-n",
            seeds_ns,
            "apply",
            "-f",
            f.to_str().unwrap(),
            "--server",
        ]);
        assert!(
            out.status.success(),
            "{at}: {}\n{doc}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = json(
            &env,
            &[
                "-n",
                seeds_ns,
                "get",
                &format!("{resource}.lifeboat.dev"),
                &name,
            ],
        );
        assert_eq!(
            got["spec"],
            spec.unwrap(),
            "{at}: the API server dropped a field\n{doc}"
        );
        sent += 1;
    }
    assert!(sent >= 10, "only {sent} seed documents sent");
    env.kubectl(&["delete", "namespace", seeds_ns, "--wait=false"], None);

    // A backup into a ReadOnly location fails validation, naming it; nothing is written.
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {{name: into-readonly, namespace: {ns}}}\nspec:\n  includedNamespaces: [{app}]\n  storageLocation: hourly\n"
    ));
    let refused = eventually(
        30,
        "the backup into a ReadOnly location to be refused",
        || {
            let b = json(
                &env,
                &["-n", ns, "get", "backups.lifeboat.dev", "into-readonly"],
            );
            (phase(&b) == "FailedValidation").then_some(b)
        },
    );
    assert!(
        refused["status"]["validationErrors"][0]
            .as_str()
            .unwrap()
            .contains("backup storage location \"hourly\" is ReadOnly"),
        "{refused}"
    );
    assert!(!store.join("backups/into-readonly").exists());
    // A refused backup expires too (as Velero), so refusals do not pile up.
    assert!(refused["status"]["expiration"].is_string(), "{refused}");

    // Regression (review): a Backup object whose name is taken in its location by another
    // backup's files is refused, and deleting the object leaves those files alone.
    let other = env.dir.path().join("other-store");
    std::fs::create_dir_all(&other).unwrap();
    env.ok(&[
        "backup",
        "create",
        "clash",
        "--include-namespaces",
        app,
        "--storage-location",
        &format!("file://{}", other.display()),
    ]);
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: other, namespace: {ns}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {}}}\n  backupSyncPeriod: 0s\n---\napiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {{name: clash, namespace: {ns}}}\nspec:\n  includedNamespaces: [{app}]\n  storageLocation: other\n",
        other.display()
    ));
    let clash = eventually(30, "the clashing backup to be refused", || {
        let b = json(&env, &["-n", ns, "get", "backups.lifeboat.dev", "clash"]);
        (phase(&b) == "FailedValidation").then_some(b)
    });
    assert!(
        clash["status"]["validationErrors"][0]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{clash}"
    );
    env.kubectl(
        &[
            "-n",
            ns,
            "delete",
            "backups.lifeboat.dev",
            "clash",
            "--wait=true",
        ],
        None,
    );
    assert!(
        other.join("backups/clash/velero-backup.json").exists(),
        "deleting the refused object deleted another backup's data"
    );

    // Each location keeps its own rhythm: after several of the default's 2 s periods, the
    // default has been validated again, `hourly` not since its first validation, `quiet`
    // never; only the default syncs.
    let bsl_status = |name: &str| {
        json(
            &env,
            &["-n", ns, "get", "backupstoragelocations.lifeboat.dev", name],
        )["status"]
            .clone()
    };
    let hourly_first = eventually(20, "hourly to be validated once", || {
        let st = bsl_status("hourly");
        st["lastValidationTime"].is_string().then_some(st)
    });
    assert_eq!(hourly_first["phase"], "Available", "{hourly_first}");
    let default_first = bsl_status("default")["lastValidationTime"].clone();
    eventually(20, "the default location to be validated again", || {
        (bsl_status("default")["lastValidationTime"] != default_first).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let hourly = bsl_status("hourly");
    assert_eq!(
        hourly["lastValidationTime"], hourly_first["lastValidationTime"],
        "{hourly}"
    );
    assert!(hourly["lastSyncedTime"].is_null(), "{hourly}");
    let quiet = bsl_status("quiet");
    assert!(
        quiet["phase"].is_null()
            && quiet["lastValidationTime"].is_null()
            && quiet["lastSyncedTime"].is_null(),
        "{quiet}"
    );

    // A per-minute schedule: one backup at once, then one each minute.
    let out = env.ok(&[
        "-n",
        ns,
        "schedule",
        "create",
        "minutely",
        "--schedule=* * * * *",
        "--include-namespaces",
        app,
        "--ttl",
        "30s",
    ]);
    assert!(out.contains("created successfully"), "{out}");
    let first = eventually(40, "the schedule's first backup to complete", || {
        backups_of(&env, ns, "minutely")
            .into_iter()
            .find(|b| phase(b) == "Completed")
    });
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    assert!(
        first_name.starts_with("minutely-") && first_name.len() == "minutely-".len() + 14,
        "{first_name}"
    );
    assert_eq!(first["spec"]["storageLocation"], "default");
    let stored = store.join("backups").join(&first_name);
    assert!(
        stored.join("velero-backup.json").exists(),
        "{}",
        server_log()
    );
    let listed = env.ok(&["-n", ns, "schedule", "get", "minutely", "-o", "json"]);
    let sched: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(sched["status"]["phase"], "Enabled");
    assert!(sched["status"]["lastBackup"].is_string());

    // A Restore object, run by the server, into a mapped namespace.
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Restore\nmetadata:\n  name: r1\n  namespace: {ns}\nspec:\n  backupName: {first_name}\n  namespaceMapping:\n    {app}: {app}-restored\n"
    ));
    let r = eventually(60, "the restore to complete", || {
        let r = json(&env, &["-n", ns, "get", "restores.lifeboat.dev", "r1"]);
        matches!(
            r["status"]["phase"].as_str(),
            Some("Completed" | "PartiallyFailed" | "Failed")
        )
        .then_some(r)
    });
    assert_eq!(r["status"]["phase"], "Completed", "{r}\n{}", server_log());
    let cm = json(
        &env,
        &[
            "-n",
            &format!("{app}-restored"),
            "get",
            "configmap",
            "settings",
        ],
    );
    assert_eq!(cm["data"]["mode"], "prod");

    // TTL expiry: the stored backup goes, then the object.
    eventually(45, "the first backup to expire", || {
        let names: Vec<String> = backups_of(&env, ns, "minutely")
            .iter()
            .map(|b| b["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        (!names.contains(&first_name)).then_some(())
    });
    assert!(!stored.exists(), "expired backup's data still stored");

    // The next minute's backup.
    let second = eventually(75, "the next minute's backup", || {
        backups_of(&env, ns, "minutely")
            .into_iter()
            .find(|b| phase(b) == "Completed" && b["metadata"]["name"] != first_name.as_str())
    });
    let second_name = second["metadata"]["name"].as_str().unwrap().to_string();

    // A DeleteBackupRequest deletes it (data first).
    env.kubectl(
        &[
            "-n",
            ns,
            "patch",
            "schedules.lifeboat.dev",
            "minutely",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ],
        None,
    );
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DeleteBackupRequest\nmetadata:\n  name: del-{second_name}\n  namespace: {ns}\nspec:\n  backupName: {second_name}\n"
    ));
    let processed = eventually(40, "the delete request to be processed", || {
        let d = json(
            &env,
            &[
                "-n",
                ns,
                "get",
                "deletebackuprequests.lifeboat.dev",
                &format!("del-{second_name}"),
            ],
        );
        (d["status"]["phase"] == "Processed").then_some(d)
    });
    assert!(
        processed["status"]["errors"]
            .as_array()
            .is_none_or(|e| e.is_empty()),
        "{processed}"
    );
    assert!(!store.join("backups").join(&second_name).exists());
    // A request for a backup with no object here is answered "not found"; nothing is
    // deleted by name.
    env.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DeleteBackupRequest\nmetadata:\n  name: del-nosuch\n  namespace: {ns}\nspec:\n  backupName: nosuch\n"
    ));
    let nosuch = eventually(
        20,
        "the request for a missing backup to be processed",
        || {
            let d = json(
                &env,
                &[
                    "-n",
                    ns,
                    "get",
                    "deletebackuprequests.lifeboat.dev",
                    "del-nosuch",
                ],
            );
            (d["status"]["phase"] == "Processed").then_some(d)
        },
    );
    assert_eq!(
        nosuch["status"]["errors"][0], "backup \"nosuch\" not found",
        "{nosuch}"
    );

    // Metrics with Velero's names (the default); promtool finds nothing but the lint of
    // four of Velero's own names, kept for dashboard compatibility (the standby below runs
    // with --metric-names promlint, which passes).
    let metrics = eventually(10, "/metrics", || {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{metrics_port}/metrics")])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    });
    for want in [
        "velero_backup_success_total{schedule=\"minutely\"}",
        "velero_backup_failure_total{schedule=\"\"} 1",
        "velero_backup_deletion_success_total{schedule=\"minutely\"}",
        "velero_backup_location_status_gauge{backup_location_name=\"default\"} 1",
        "velero_restore_success_total{schedule=\"\"} 1",
        "lifeboat_leader 1",
    ] {
        assert!(metrics.contains(want), "{want} missing from:\n{metrics}");
    }
    let (code, findings) = promtool_check_metrics(&metrics);
    let velero_names = [
        "velero_backup_total ",
        "velero_restore_total ",
        "velero_backup_items_total ",
        "velero_backup_location_status_gauge ",
    ];
    for line in findings.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            velero_names.iter().any(|n| line.starts_with(n)),
            "promtool: {line}"
        );
    }
    assert_eq!(code, Some(3), "promtool: {findings}");

    // A real Prometheus scrapes it.
    let prom_dir = env.dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom_port = free_port();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: lifeboat\n  static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"),
    )
    .unwrap();
    let _prometheus = Server(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (scripts/setup.sh installs it)"),
        None,
    );
    let scraped = eventually(
        60,
        "Prometheus to have scraped velero_backup_success_total",
        || {
            let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{prom_port}/api/v1/query?query=velero_backup_success_total")])
            .output()
            .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let result = v["data"]["result"].as_array()?.clone();
            result
                .into_iter()
                .find(|r| r["metric"]["schedule"] == "minutely")
        },
    );
    assert!(
        scraped["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 1.0,
        "{scraped}"
    );

    // A standby replica waits; when the leader stops (SIGTERM: exit 0, Lease released),
    // the standby takes over.
    let standby_port = free_port();
    let standby_log = std::fs::File::create(env.dir.path().join("standby.log")).unwrap();
    let mut standby = Server(
        env.cmd()
            .env(
                "LIFEBOAT_LOG",
                "warn,lifeboat=info,lifeboat_engine=info,lifeboat_server=info",
            )
            .args(["-n", ns, "server", "--kubeconfig"])
            .arg(&sa_config)
            .args([
                "--metrics-address",
                &format!("127.0.0.1:{standby_port}"),
                "--identity",
                "standby",
                "--metric-names",
                "promlint",
                "--store-validation-frequency",
                "2s",
            ])
            .stdout(Stdio::null())
            .stderr(standby_log)
            .spawn()
            .unwrap(),
        Some(env.dir.path().join("standby.log")),
    );
    let leader_of = |port: u16| -> Option<String> {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .ok()?;
        String::from_utf8(out.stdout)
            .ok()?
            .lines()
            .find(|l| l.starts_with("lifeboat_leader "))
            .map(|l| l[16..].to_string())
    };
    eventually(20, "the standby to serve its metrics", || {
        leader_of(standby_port)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        leader_of(standby_port).as_deref(),
        Some("0"),
        "the standby leads while the leader runs"
    );
    let pid = server.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = eventually(30, "the server to exit after SIGTERM", || {
        server.0.try_wait().unwrap()
    });
    assert!(status.success(), "{}", server_log());
    eventually(20, "the standby to take over", || {
        (leader_of(standby_port).as_deref() == Some("1")).then_some(())
    });
    let lease = json(&env, &["-n", ns, "get", "lease", "lifeboat-server"]);
    assert_eq!(lease["spec"]["holderIdentity"], "standby");
    // The standby runs with --metric-names promlint: once it leads and has validated the
    // location, its whole /metrics passes promtool's lint.
    let standby_metrics = eventually(30, "the standby's location metric", || {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{standby_port}/metrics")])
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        text.contains("velero_backup_location_status{backup_location_name=\"default\"} 1")
            .then_some(text)
    });
    assert!(
        standby_metrics.contains("velero_backups "),
        "{standby_metrics}"
    );
    let (code, findings) = promtool_check_metrics(&standby_metrics);
    assert_eq!(code, Some(0), "promtool: {findings}\n{standby_metrics}");
    Command::new("kill")
        .args(["-TERM", &standby.0.id().to_string()])
        .status()
        .unwrap();
    let status = eventually(30, "the standby to exit after SIGTERM", || {
        standby.0.try_wait().unwrap()
    });
    assert!(status.success());
    let lease = json(&env, &["-n", ns, "get", "lease", "lifeboat-server"]);
    assert_eq!(lease["spec"]["holderIdentity"], "", "lease not released");

    let out = env.ok(&["-n", ns, "uninstall", "--force"]);
    assert!(out.contains("uninstalled"), "{out}");
    let left = Command::new("kubectl")
        .env("KUBECONFIG", &env.kubeconfig)
        .args(["get", "crd", "backups.lifeboat.dev"])
        .output()
        .unwrap();
    assert!(!left.status.success(), "CRD left after uninstall");
    env.kubectl(
        &[
            "delete",
            "namespace",
            app,
            &format!("{app}-restored"),
            "--wait=false",
        ],
        None,
    );
}
