//! The in-cluster mode (issue 5): `lifeboat install` applied to the real control plane and
//! `lifeboat server` run out-of-cluster with the installed ServiceAccount's token — the
//! shared fixture of `server_fixture.rs`, installed once per run. One behaviour per test;
//! each names its own objects (and its own schedule, location or namespace where it
//! needs one), so they run in parallel on the one server.
//!
//! The last test, `zz_standby_takes_the_lease_then_uninstall_removes_everything`, ends
//! the shared state: it waits for every other test of the fixture to finish (the
//! fixture's write lock; its name sorts it after them, so in a full run none starts
//! after it), stops the leader so that a standby takes over, then uninstalls.
//! Bugs found in this mode have their own tests in `regression.rs`.

use std::process::Command;
use std::time::Duration;

use lifeboat_types::format::document::VeleroDocument;

use crate::server_fixture::*;
use crate::support::*;

/// `install --dry-run` prints every object it would apply.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn install_dry_run_prints_every_object() {
    let env = Env::new();
    let dry = env.ok(&[
        "-n",
        "lifeboat-dry-run",
        "install",
        "--dry-run",
        "-o",
        "yaml",
        "--provider",
        "file",
        "--bucket",
        env.dir.path().to_str().unwrap(),
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
}

/// `install` applies the CRDs, with the printer columns `kubectl get` shows.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn install_applies_crds_with_printer_columns() {
    let fx = shared();
    assert!(
        fx.install_output
            .contains("CustomResourceDefinition/schedules.lifeboat.dev: applied"),
        "{}",
        fx.install_output
    );
    let crd = json(&fx.env, &["get", "crd", "backups.lifeboat.dev"]);
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
}

/// A velero.io/v1 Schedule document becomes a lifeboat.dev Schedule.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn velero_schedule_document_becomes_a_lifeboat_schedule() {
    let fx = shared();
    let doc = fx.env.dir.path().join("from-velero.yaml");
    std::fs::write(
        &doc,
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: from-velero\nspec:\n  schedule: \"0 3 * * *\"\n  paused: true\n  template:\n    includedNamespaces: [\"*\"]\n    ttl: 168h0m0s\n",
    )
    .unwrap();
    let out = fx.env.ok(&["-n", NS, "apply", "-f", doc.to_str().unwrap()]);
    assert!(out.contains("Schedule \"from-velero\" created"), "{out}");
    let got: serde_json::Value = serde_json::from_str(&fx.env.ok(&[
        "-n",
        NS,
        "schedule",
        "get",
        "from-velero",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(got["spec"]["template"]["ttl"], "168h0m0s");
    assert_eq!(got["spec"]["paused"], true);
}

/// A typo in a Schedule document is refused, naming the field.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn schedule_document_with_a_typo_is_refused() {
    let fx = shared();
    let doc = fx.env.dir.path().join("typo-schedule.yaml");
    std::fs::write(&doc, "apiVersion: velero.io/v1\nkind: Schedule\nmetadata:\n  name: typo\nspec:\n  schedule: \"0 3 * * *\"\n  pasued: true\n").unwrap();
    let err = fx
        .env
        .fails(&["-n", NS, "apply", "-f", doc.to_str().unwrap()]);
    assert!(err.contains("pasued"), "{err}");
    let listed = fx.get(&["schedules.lifeboat.dev"]);
    assert!(
        !listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metadata"]["name"] == "typo"),
        "{listed}"
    );
}

/// A Backup found InProgress when the server starts (its server crashed) is failed, with
/// a reason.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn orphaned_backup_is_failed_on_start() {
    let fx = shared();
    let orphan = fx.backup_in("orphan", &["Failed"], 30);
    assert!(
        orphan["status"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("stopped while this backup ran"),
        "{orphan}"
    );
}

/// `apply -f --server`: velero.io/v1 documents become lifeboat.dev objects the server
/// runs (a location as the guides write it; a Backup with its labels).
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn apply_server_sends_velero_documents_as_objects_the_server_runs() {
    let fx = shared();
    let doc = fx.env.dir.path().join("to-server.yaml");
    std::fs::write(
        &doc,
        format!(
            "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata:\n  name: applied\nspec:\n  provider: file\n  objectStorage:\n    bucket: {}\n  validationFrequency: 0s\n  backupSyncPeriod: 0s\n---\napiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: applied-backup\n  labels: {{team: dr}}\nspec:\n  includedNamespaces: [{APP}]\n  ttl: 24h0m0s\n",
            fx.store.display()
        ),
    )
    .unwrap();
    let out = fx
        .env
        .ok(&["-n", NS, "apply", "-f", doc.to_str().unwrap(), "--server"]);
    assert!(
        out.contains("BackupStorageLocation \"applied\" created")
            && out.contains("Backup \"applied-backup\" created"),
        "{out}"
    );
    let applied = fx.backup_in("applied-backup", &["Completed"], 60);
    assert_eq!(applied["metadata"]["labels"]["team"], "dr");
    assert!(
        fx.store
            .join("backups/applied-backup/velero-backup.json")
            .exists()
    );
    let applied_bsl = fx.get(&["backupstoragelocations.lifeboat.dev", "applied"]);
    assert_eq!(applied_bsl["spec"]["validationFrequency"], "0s");
}

/// A typo in a document for the server is refused before anything is created.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn apply_server_refuses_a_typo_before_creating_anything() {
    let fx = shared();
    let doc = fx.env.dir.path().join("typo-backup.yaml");
    std::fs::write(&doc, "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: typo-backup\nspec:\n  includeNamespaces: [x]\n").unwrap();
    let err = fx
        .env
        .fails(&["-n", NS, "apply", "-f", doc.to_str().unwrap(), "--server"]);
    assert!(err.contains("includeNamespaces"), "{err}");
    assert!(!fx.backup_exists("typo-backup"));
}

/// Every velero.io/v1 document of the guides is accepted as a lifeboat.dev object and
/// comes back from the API server with its spec whole: parsing refuses unknown fields,
/// and this shows the CRD schemas prune nothing the Rust types keep. Another namespace,
/// which no server watches, so nothing runs.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn every_seed_document_round_trips_through_the_api_server() {
    let fx = shared();
    let env = &fx.env;
    let seeds_ns = "lifeboat-seeds-it";
    env.kubectl(&["create", "namespace", seeds_ns], None);
    let mut sent = 0;
    for (i, (at, doc)) in crate::seeds::seed_documents().into_iter().enumerate() {
        let parsed = lifeboat_types::format::document::parse_documents(&doc)
            .unwrap_or_else(|e| panic!("{at}: {}\n{doc}", lifeboat_engine::error::chain(&e)));
        let name = format!("seed-{i}");
        let (resource, spec) = match &parsed[0] {
            VeleroDocument::Backup(b) => ("backups", serde_json::to_value(&b.spec)),
            VeleroDocument::Restore(r) => ("restores", serde_json::to_value(&r.spec)),
            VeleroDocument::Schedule(s) => ("schedules", serde_json::to_value(&s.spec)),
            VeleroDocument::BackupStorageLocation(l) => {
                ("backupstoragelocations", serde_json::to_value(&l.spec))
            }
            VeleroDocument::VolumeSnapshotLocation(l) => {
                ("volumesnapshotlocations", serde_json::to_value(&l.spec))
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
            env,
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
    assert!(
        sent >= 10 || crate::seeds::seed_documents().is_empty(),
        "only {sent} seed documents sent"
    );
    env.kubectl(&["delete", "namespace", seeds_ns, "--wait=false"], None);
}

/// The ReadOnly location `read-only` (validated once, never synced) on its own directory.
pub fn read_only_location(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.env.dir.path().join("read-only-store");
    std::fs::create_dir_all(&dir).unwrap();
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: read-only, namespace: {NS}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {}}}\n  accessMode: ReadOnly\n  validationFrequency: 1h\n  backupSyncPeriod: 0s\n",
        dir.display()
    ));
    dir
}

/// A Backup into a ReadOnly location fails validation, naming it; nothing is written.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_into_a_read_only_location_is_refused() {
    let fx = shared();
    let dir = read_only_location(&fx);
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {{name: into-readonly, namespace: {NS}}}\nspec:\n  includedNamespaces: [{APP}]\n  storageLocation: read-only\n"
    ));
    let refused = fx.backup_in("into-readonly", &["FailedValidation"], 30);
    assert!(
        refused["status"]["validationErrors"][0]
            .as_str()
            .unwrap()
            .contains("backup storage location \"read-only\" is ReadOnly"),
        "{refused}"
    );
    assert!(files_below(&dir).is_empty(), "{:?}", files_below(&dir));
    assert!(!fx.store.join("backups/into-readonly").exists());
}

/// Each location keeps its own rhythm: after several of the server's 2 s periods, the
/// default has been validated again, `hourly` (1h) not since its first validation,
/// `quiet` (0s) never; neither of them syncs.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn each_location_keeps_its_own_validation_and_sync_rhythm() {
    let fx = shared();
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: quiet, namespace: {NS}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {store}}}\n  validationFrequency: 0s\n  backupSyncPeriod: 0s\n---\napiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: hourly, namespace: {NS}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {store}}}\n  accessMode: ReadOnly\n  validationFrequency: 1h\n  backupSyncPeriod: 0s\n",
        store = fx.store.display()
    ));
    let bsl_status =
        |name: &str| fx.get(&["backupstoragelocations.lifeboat.dev", name])["status"].clone();
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
}

/// `schedule create NAME --schedule=* * * * * --include-namespaces APP --ttl TTL`.
fn create_minutely_schedule(fx: &Fixture, name: &str, ttl: &str, extra: &[&str]) {
    let mut args = vec![
        "-n",
        NS,
        "schedule",
        "create",
        name,
        "--schedule=* * * * *",
        "--include-namespaces",
        APP,
        "--ttl",
        ttl,
    ];
    args.extend(extra);
    let out = fx.env.ok(&args);
    assert!(out.contains("created successfully"), "{out}");
}

/// The first Completed backup of `schedule` (waits up to 40 s).
fn first_completed(fx: &Fixture, schedule: &str) -> serde_json::Value {
    eventually(40, &format!("schedule {schedule}'s first backup"), || {
        backups_of(fx, schedule)
            .into_iter()
            .find(|b| phase(b) == "Completed")
    })
}

fn name_of(o: &serde_json::Value) -> String {
    o["metadata"]["name"].as_str().unwrap().to_string()
}

fn delete_schedule(fx: &Fixture, name: &str) {
    fx.env
        .ok(&["-n", NS, "schedule", "delete", name, "--confirm"]);
}

/// A new schedule backs up at once, into the default location, with Velero's names; the
/// schedule's status says when.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn schedule_backs_up_at_once() {
    let fx = shared();
    create_minutely_schedule(&fx, "at-once", "1h", &[]);
    let first = first_completed(&fx, "at-once");
    let first_name = name_of(&first);
    assert!(
        first_name.starts_with("at-once-") && first_name.len() == "at-once-".len() + 14,
        "{first_name}"
    );
    assert_eq!(first["spec"]["storageLocation"], "default");
    assert!(
        fx.store
            .join("backups")
            .join(&first_name)
            .join("velero-backup.json")
            .exists()
    );
    let listed = fx
        .env
        .ok(&["-n", NS, "schedule", "get", "at-once", "-o", "json"]);
    let sched: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(sched["status"]["phase"], "Enabled");
    assert!(sched["status"]["lastBackup"].is_string(), "{sched}");
    delete_schedule(&fx, "at-once");
}

/// A `* * * * *` schedule backs up again at the next minute.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn schedule_backs_up_again_the_next_minute() {
    let fx = shared();
    create_minutely_schedule(&fx, "each-minute", "1h", &[]);
    let first_name = name_of(&first_completed(&fx, "each-minute"));
    let second = eventually(75, "the next minute's backup", || {
        backups_of(&fx, "each-minute")
            .into_iter()
            .find(|b| phase(b) == "Completed" && b["metadata"]["name"] != first_name.as_str())
    });
    assert!(name_of(&second) > first_name, "{second}");
    delete_schedule(&fx, "each-minute");
}

/// A scheduled backup whose TTL has passed is collected: its stored data goes, then the
/// object.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn ttl_expiry_deletes_the_stored_backup_then_the_object() {
    let fx = shared();
    create_minutely_schedule(&fx, "expiring", "10s", &[]);
    let first_name = name_of(&first_completed(&fx, "expiring"));
    delete_schedule(&fx, "expiring");
    let stored = fx.store.join("backups").join(&first_name);
    assert!(stored.join("velero-backup.json").exists());
    eventually(45, "the backup to expire", || {
        (!fx.backup_exists(&first_name)).then_some(())
    });
    assert!(!stored.exists(), "expired backup's data still stored");
}

/// A Restore object, run by the server, into a mapped namespace.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_object_restores_into_a_mapped_namespace() {
    let fx = shared();
    fx.completed_backup("for-restore", "");
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Restore\nmetadata:\n  name: r1\n  namespace: {NS}\nspec:\n  backupName: for-restore\n  namespaceMapping:\n    {APP}: {APP}-restored\n"
    ));
    let r = eventually(60, "the restore to end", || {
        let r = fx.get(&["restores.lifeboat.dev", "r1"]);
        ["Completed", "PartiallyFailed", "Failed"]
            .contains(&phase(&r))
            .then_some(r)
    });
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    let cm = json(
        &fx.env,
        &[
            "-n",
            &format!("{APP}-restored"),
            "get",
            "configmap",
            "settings",
        ],
    );
    assert_eq!(cm["data"]["mode"], "prod");
}

/// A DeleteBackupRequest deletes the backup: its stored data, then the object.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn delete_backup_request_deletes_the_data_then_the_object() {
    let fx = shared();
    fx.completed_backup("doomed", "");
    assert!(fx.store.join("backups/doomed/velero-backup.json").exists());
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DeleteBackupRequest\nmetadata:\n  name: del-doomed\n  namespace: {NS}\nspec:\n  backupName: doomed\n"
    ));
    let processed = eventually(40, "the delete request to be processed", || {
        let d = fx.get(&["deletebackuprequests.lifeboat.dev", "del-doomed"]);
        (d["status"]["phase"] == "Processed").then_some(d)
    });
    assert!(
        processed["status"]["errors"]
            .as_array()
            .is_none_or(|e| e.is_empty()),
        "{processed}"
    );
    assert!(!fx.store.join("backups/doomed").exists());
    eventually(20, "the backup object to go", || {
        (!fx.backup_exists("doomed")).then_some(())
    });
}

/// Counts of the objects in the fixture's namespace: Failed backups without a schedule,
/// Completed restores.
fn failed_unscheduled_backups_and_completed_restores(fx: &Fixture) -> (f64, f64) {
    let backups = fx.get(&["backups.lifeboat.dev"]);
    let failed = backups["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            phase(b) == "Failed" && b["metadata"]["labels"]["velero.io/schedule-name"].is_null()
        })
        .count();
    let restores = fx.get(&["restores.lifeboat.dev"]);
    let completed = restores["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| phase(r) == "Completed")
        .count();
    (failed as f64, completed as f64)
}

/// /metrics with Velero's names (the default) counts what the server did: a schedule's
/// backup and its TTL deletion, the orphan's failure, restores, the location's status, and
/// that this replica leads.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn metrics_count_what_the_server_did() {
    let fx = shared();
    fx.backup_in("orphan", &["Failed"], 30);
    create_minutely_schedule(&fx, "metered", "8s", &[]);
    first_completed(&fx, "metered");
    delete_schedule(&fx, "metered");
    fx.completed_backup("metered-src", "");
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Restore\nmetadata:\n  name: metered-r\n  namespace: {NS}\nspec:\n  backupName: metered-src\n  namespaceMapping:\n    {APP}: {APP}-metered\n"
    ));
    eventually(60, "the restore to complete", || {
        (phase(&fx.get(&["restores.lifeboat.dev", "metered-r"])) == "Completed").then_some(())
    });
    let metrics = eventually(60, "the metered backup's deletion to be counted", || {
        let m = fx.metrics();
        m.contains("velero_backup_deletion_success_total{schedule=\"metered\"}")
            .then_some(m)
    });
    for series in [
        "velero_backup_success_total{schedule=\"metered\"}",
        "velero_backup_deletion_success_total{schedule=\"metered\"}",
    ] {
        assert!(
            sample(&metrics, series).is_some_and(|v| v >= 1.0),
            "{series} missing from:\n{metrics}"
        );
    }
    for want in [
        "velero_backup_location_status_gauge{backup_location_name=\"default\"} 1",
        "lifeboat_leader 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "{want} missing from:\n{metrics}"
        );
    }
    // The counters of objects other tests make too equal what the API server holds.
    eventually(
        20,
        "the failure and restore counters to match the objects",
        || {
            let m = fx.metrics();
            let counted = (
                sample(&m, "velero_backup_failure_total{schedule=\"\"}").unwrap_or(0.0),
                sample(&m, "velero_restore_success_total{schedule=\"\"}").unwrap_or(0.0),
            );
            let objects = failed_unscheduled_backups_and_completed_restores(&fx);
            (counted == objects && objects.0 >= 1.0 && objects.1 >= 1.0).then_some(())
        },
    );
}

/// promtool finds nothing in the default /metrics but the lint of four of Velero's own
/// names, kept for dashboard compatibility (`--metric-names promlint` passes: see the
/// standby in the last test).
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn promtool_finds_only_veleros_own_misnames() {
    let fx = shared();
    let (code, findings) = promtool_check_metrics(&fx.metrics());
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
}

/// A real Prometheus scrapes /metrics and reads a backup counter from it.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn prometheus_scrapes_the_metrics() {
    let fx = shared();
    fx.completed_backup("scraped", "");
    let prom_dir = fx.env.dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let (_prometheus, prom_port) =
        crate::server_fixture::prometheus(&prom_dir, fx.metrics_port, None);
    let scraped = eventually(
        60,
        "Prometheus to have scraped velero_backup_success_total",
        || {
            let v = crate::server_fixture::prometheus_api(
                prom_port,
                "/api/v1/query?query=velero_backup_success_total",
            )?;
            let result = v["data"]["result"].as_array()?.clone();
            result
                .into_iter()
                .find(|r| r["metric"]["schedule"].is_null() || r["metric"]["schedule"] == "")
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
}

/// Last (it ends the shared fixture): a standby replica waits while the leader runs; when
/// the leader stops (SIGTERM: exit 0, Lease released) the standby takes the Lease, and
/// its /metrics with `--metric-names promlint` passes promtool; stopped, it releases the
/// Lease; `uninstall` then removes everything, CRDs included.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn zz_standby_takes_the_lease_then_uninstall_removes_everything() {
    let (_lock, mut fx) = exclusive();
    let env = &fx.env;
    let standby_port = free_port();
    let standby_address = format!("127.0.0.1:{standby_port}");
    let mut standby = ServerProcess::start(
        env,
        &[
            "-n",
            NS,
            "server",
            "--kubeconfig",
            fx.sa_config.to_str().unwrap(),
            "--metrics-address",
            &standby_address,
            "--identity",
            "standby",
            "--metric-names",
            "promlint",
            "--store-validation-frequency",
            "2s",
        ],
        env.dir.path().join("standby.log"),
    );
    let leader_of = |port: u16| -> Option<String> {
        metrics_of(port)?
            .lines()
            .find_map(|l| l.strip_prefix("lifeboat_leader "))
            .map(str::to_string)
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
    assert!(fx.server.terminate(), "{}", fx.server.log_tail(60));
    eventually(20, "the standby to take over", || {
        (leader_of(standby_port).as_deref() == Some("1")).then_some(())
    });
    let lease = json(env, &["-n", NS, "get", "lease", "lifeboat-server"]);
    assert_eq!(lease["spec"]["holderIdentity"], "standby");
    // Once it leads and has validated the location, its whole /metrics passes promtool.
    let standby_metrics = eventually(30, "the standby's location metric", || {
        let text = metrics_of(standby_port)?;
        text.contains("velero_backup_location_status{backup_location_name=\"default\"} 1")
            .then_some(text)
    });
    assert!(
        standby_metrics.contains("velero_backups "),
        "{standby_metrics}"
    );
    let (code, findings) = promtool_check_metrics(&standby_metrics);
    assert_eq!(code, Some(0), "promtool: {findings}\n{standby_metrics}");
    assert!(standby.terminate(), "{}", standby.log_tail(60));
    let lease = json(env, &["-n", NS, "get", "lease", "lifeboat-server"]);
    assert_eq!(lease["spec"]["holderIdentity"], "", "lease not released");

    let out = env.ok(&["-n", NS, "uninstall", "--force"]);
    assert!(out.contains("uninstalled"), "{out}");
    let left = Command::new("kubectl")
        .env("KUBECONFIG", &env.kubeconfig)
        .args(["get", "crd", "backups.lifeboat.dev"])
        .output()
        .unwrap();
    assert!(!left.status.success(), "CRD left after uninstall");
    assert!(
        String::from_utf8_lossy(&left.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&left.stderr)
    );
    let mut namespaces = vec!["delete", "namespace", APP, "--ignore-not-found"];
    namespaces.extend(TEST_NAMESPACES);
    namespaces.push("--wait=false");
    env.kubectl(&namespaces, None);
}

/// A Schedule annotated `lifeboat.dev/replicate-to` (issue 16, item 6): each of its
/// backups, once stored Completed, is copied by the server into the location named —
/// the same bytes — and the Backup object says where it was copied. A schedule that
/// names its own location gets the reason on its backup, which stays Completed.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn scheduled_backups_are_copied_to_another_location() {
    let fx = shared();
    let copy = fx.env.dir.path().join("copy-dst-bucket");
    std::fs::create_dir_all(&copy).unwrap();
    let schedule = |name: &str, to: &str| {
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: Schedule\nmetadata:\n  name: {name}\n  namespace: {NS}\n  annotations: {{lifeboat.dev/replicate-to: '{to}'}}\nspec:\n  schedule: \"0 3 * * *\"\n  template:\n    includedNamespaces: [{APP}]\n    ttl: 1h0m0s\n"
        )
    };
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStorageLocation\nmetadata: {{name: copy-dst, namespace: {NS}}}\nspec:\n  provider: file\n  objectStorage: {{bucket: {}}}\n  backupSyncPeriod: 0s\n",
        copy.display()
    ));
    fx.apply(&schedule("replicated", "copy-dst"));
    let first = name_of(&first_completed(&fx, "replicated"));
    let annotations = eventually(30, "the copy to be recorded", || {
        let b = fx.get(&["backups.lifeboat.dev", &first]);
        let a = b["metadata"]["annotations"].clone();
        (a["lifeboat.dev/replicated-to"].is_string()
            || a["lifeboat.dev/replication-error"].is_string())
        .then_some(a)
    });
    assert_eq!(
        annotations["lifeboat.dev/replicated-to"], "copy-dst",
        "{annotations:#}"
    );
    assert!(
        annotations["lifeboat.dev/replication-error"].is_null(),
        "{annotations:#}"
    );
    for file in ["velero-backup.json", &format!("{first}.tar.gz")] {
        let original = std::fs::read(fx.store.join("backups").join(&first).join(file)).unwrap();
        let copied = std::fs::read(copy.join("backups").join(&first).join(file)).unwrap();
        assert!(original == copied, "{file} differs in the copy");
    }

    // Its own location: named on the backup, which stays Completed.
    fx.apply(&schedule("self-copy", "default"));
    let first = first_completed(&fx, "self-copy");
    let name = name_of(&first);
    let error = eventually(30, "the refusal to be recorded", || {
        let b = fx.get(&["backups.lifeboat.dev", &name]);
        b["metadata"]["annotations"]["lifeboat.dev/replication-error"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(
        error,
        "schedule self-copy: lifeboat.dev/replicate-to names location \"default\", which the backups are stored in; name another location"
    );
    assert_eq!(
        phase(&fx.get(&["backups.lifeboat.dev", &name])),
        "Completed"
    );
    for s in ["replicated", "self-copy"] {
        delete_schedule(&fx, s);
    }
    fx.env.kubectl(
        &[
            "-n",
            NS,
            "delete",
            "backupstoragelocations.lifeboat.dev",
            "copy-dst",
        ],
        None,
    );
}
