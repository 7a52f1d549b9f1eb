//! `lifeboat alerts` against the real tools: the rules pass `promtool check rules` and
//! their generated `promtool test rules` cases (each rule firing, and quiet), and loaded
//! into a real Prometheus that scrapes the fixture's server, they evaluate without error
//! and one backup the server refuses makes LifeboatBackupFailed fire.

use std::path::Path;
use std::process::Command;

use crate::server_fixture::{APP, NS, shared};

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (scripts/setup.sh installs it)");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?}:\n{said}");
    said
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn generated_rules_pass_promtool_with_and_without_a_plan() {
    let fx = shared();
    let dir = fx.env.dir.path().join("alerts-promtool");
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DRPlan\nmetadata: {name: shop}\nspec:\n  namespaces: [shop]\n  tier: tier-1\n  drills: {schedule: \"0 3 1 1,4,7,10 *\"}\n  clusters:\n  - {name: primary, active: true, locations: [default]}\n  - {name: dr-west, locations: [default]}\n",
    )
    .unwrap();
    for (names, with_plan) in [("velero", false), ("promlint", false), ("velero", true)] {
        let mut args = vec!["alerts", "--metric-names", names];
        if with_plan {
            args.extend(["--plan", plan.to_str().unwrap()]);
        }
        let mut rules_args = args.clone();
        rules_args.extend(["-o", "rules"]);
        std::fs::write(dir.join("rules.yaml"), fx.env.ok(&rules_args)).unwrap();
        let mut test_args = args.clone();
        test_args.extend(["-o", "tests", "--rule-file", "rules.yaml"]);
        std::fs::write(dir.join("tests.yaml"), fx.env.ok(&test_args)).unwrap();
        // With a plan, only its six DR rules.
        let rules = if with_plan { 6 } else { 12 };
        let checked = promtool(&dir, &["check", "rules", "rules.yaml"]);
        assert!(
            checked.contains(&format!("SUCCESS: {rules} rules found")),
            "{checked}"
        );
        let tested = promtool(&dir, &["test", "rules", "tests.yaml"]);
        assert!(tested.contains("SUCCESS"), "{tested}");
        // The PrometheusRule holds the same rules.
        let pr: serde_json::Value = serde_yaml_ng::from_str(&fx.env.ok(&args)).unwrap();
        assert_eq!(pr["kind"], "PrometheusRule");
        assert_eq!(
            pr["metadata"]["name"],
            if with_plan {
                "lifeboat-plan-shop"
            } else {
                "lifeboat"
            }
        );
        assert_eq!(
            pr["spec"]["groups"][0]["rules"].as_array().unwrap().len(),
            rules
        );
    }
    // A rule file changed by hand fails its tests: the tests test the rules.
    let rules = std::fs::read_to_string(dir.join("rules.yaml")).unwrap();
    std::fs::write(dir.join("rules.yaml"), rules.replace("== 0", "== 1")).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "tests.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn get(port: u16, path: &str) -> Option<serde_json::Value> {
    crate::server_fixture::prometheus_api(port, path)
}

fn refused_backup(fx: &crate::server_fixture::Fixture, name: &str) {
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  includedNamespaces: [{APP}]\n  storageLocation: alerts-it-no-such-location\n"
    ));
    fx.backup_in(name, &["FailedValidation"], 30);
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_refused_backup_fires_in_a_real_prometheus() {
    let fx = shared();
    let dir = fx.env.dir.path().join("alerts-prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        fx.env.ok(&["alerts", "-o", "rules"]),
    )
    .unwrap();
    let (_prometheus, port) =
        crate::server_fixture::prometheus(&dir, fx.metrics_port, Some("rules.yaml"));
    let log_tail = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    crate::server_fixture::eventually(60, "Prometheus to scrape the server", || {
        let t = get(port, "/api/v1/targets")?;
        (t["data"]["activeTargets"][0]["health"] == "up").then_some(())
    });
    // Prometheus has scraped the refusal counter of hand-made backups at what it is now
    // (the server makes it at 0 when it starts): one refusal is an increase. (Regression:
    // a counter born at its first increment made a first failure invisible.)
    crate::server_fixture::eventually(60, "Prometheus to hold the refusal counter", || {
        let q = get(
            port,
            "/api/v1/query?query=velero_backup_validation_failure_total",
        )?;
        (!q["data"]["result"].as_array()?.is_empty()).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    refused_backup(&fx, "alerts-it-refused-1");
    let firing = crate::server_fixture::eventually(60, "LifeboatBackupFailed to fire", || {
        let a = get(port, "/api/v1/alerts")?;
        a["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "LifeboatBackupFailed" && a["state"] == "firing")
            .cloned()
    });
    assert_eq!(firing["labels"]["severity"], "critical", "{firing}");
    // Every rule evaluates against the real server's series without an error (a
    // many-to-many match, a type mismatch would show here).
    let rules = get(port, "/api/v1/rules").unwrap();
    let all: Vec<&serde_json::Value> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(all.len(), 12, "{rules}\n{}", log_tail());
    for r in all {
        assert_eq!(r["health"], "ok", "{r}");
    }
    fx.env.kubectl(
        &[
            "-n",
            NS,
            "delete",
            "backups.lifeboat.dev",
            "alerts-it-refused-1",
            "--ignore-not-found",
        ],
        None,
    );
}

/// The two series only the alerts read: each unpaused schedule's interval (gone when it is
/// paused or deleted), and the newest etcd snapshot per location and cluster.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn the_server_exports_what_the_alerts_read() {
    let etcd = std::env::var("LIFEBOAT_IT_ETCD").expect(crate::support::NEEDS);
    let fx = shared();
    let schedule = |paused: bool| {
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: Schedule\nmetadata: {{name: alerts-it-weekdays, namespace: {NS}}}\nspec:\n  schedule: \"0 2 * * 1-5\"\n  skipImmediately: true\n  paused: {paused}\n  template:\n    includedNamespaces: [{APP}]\n"
        )
    };
    let series = "lifeboat_schedule_interval_seconds{schedule=\"alerts-it-weekdays\"}";
    fx.apply(&schedule(false));
    // Weekdays at 2: the longest gap is the weekend's, three days.
    let v = crate::server_fixture::eventually(30, "the schedule's interval", || {
        crate::server_fixture::sample(&fx.metrics(), series)
    });
    assert_eq!(v, 3.0 * 86_400.0);
    fx.apply(&schedule(true));
    crate::server_fixture::eventually(30, "a paused schedule's interval to go", || {
        crate::server_fixture::sample(&fx.metrics(), series)
            .is_none()
            .then_some(())
    });
    fx.env.kubectl(
        &[
            "-n",
            NS,
            "delete",
            "schedules.lifeboat.dev",
            "alerts-it-weekdays",
        ],
        None,
    );

    // A snapshot stored in the default location is exported after the next sync.
    crate::etcd_stored::save(
        &fx.env,
        &etcd,
        &format!("file://{}", fx.store.display()),
        "alerts-it",
        "alerts-it-snap",
    );
    let stored = std::fs::metadata(fx.store.join("metadata/etcd/alerts-it/alerts-it-snap"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = crate::server_fixture::eventually(30, "the etcd snapshot's time", || {
        crate::server_fixture::sample(
            &fx.metrics(),
            "lifeboat_etcd_snapshot_last_timestamp{backup_location_name=\"default\",cluster=\"alerts-it\"}",
        )
    });
    assert!((at - stored).abs() < 2.0, "{at} vs {stored}");
}
