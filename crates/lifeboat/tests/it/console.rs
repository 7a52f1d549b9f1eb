//! The DR console in a real headless browser (Debian's Chromium): the page the fixture's
//! server serves loads, runs its script and shows the cluster's backups, a DR plan with
//! its RPO chart; a screenshot is kept under target/test-artifacts/. A second server with a
//! console token refuses the state without it and serves the page that carries it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server_fixture::{APP, NS, ServerProcess, eventually, shared};
use crate::support::free_port;

const PLAN: &str = "console-it-plan";
const BACKUP: &str = "console-it";

/// Where test artifacts are kept (CI keeps the directory).
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("LIFEBOAT_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium with the flags this machine's closed network needs.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            // Let the page's script fetch the state and draw before the DOM is taken.
            "--virtual-time-budget=15000",
        ])
        .args(args)
        .output()
        .expect("chromium (scripts/setup.sh installs Debian's package)");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dom(profile: &Path, url: &str) -> String {
    String::from_utf8(chromium(profile, &["--dump-dom", url]).stdout).unwrap()
}

fn curl(url: &str, header: Option<&str>) -> (String, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", url]);
    if let Some(h) = header {
        c.args(["-H", h]);
    }
    let out = String::from_utf8(c.output().unwrap().stdout).unwrap();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.to_owned(), body.to_owned())
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn the_console_shows_the_clusters_backups_in_a_real_browser() {
    let fx = shared();
    fx.completed_backup(BACKUP, "");
    let kubeconfig = fx.env.kubeconfig.display().to_string();
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DRPlan\nmetadata: {{name: {PLAN}, namespace: {NS}}}\nspec:\n  namespaces: [{APP}]\n  tier: tier-1\n  clusters:\n  - {{name: east, kubeconfig: {kubeconfig}, namespace: {NS}, active: true, locations: [default]}}\n  - {{name: west, kubeconfig: {kubeconfig}, namespace: {NS}, locations: [default]}}\n"
    ));
    let base = format!("http://127.0.0.1:{}", fx.metrics_port);
    // The state, as the page reads it (the fixture listens on loopback: no token).
    let state: serde_json::Value = eventually(60, "the plan looked at", || {
        let (code, body) = curl(&format!("{base}/console/api/state"), None);
        assert_eq!(code, "200", "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let plan = v["plans"].as_array()?.iter().find(|p| p["name"] == PLAN)?;
        plan["health"].is_string().then_some(v.clone())
    });
    let backup = state["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == BACKUP)
        .unwrap();
    assert_eq!(backup["phase"], "Completed", "{backup}");
    let plan = state["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == PLAN)
        .unwrap();
    assert_eq!(plan["objectiveSeconds"], 900);
    assert!(
        !plan["rpoSeries"].as_array().unwrap().is_empty(),
        "the backup of {APP} makes the chart: {plan}"
    );

    // Open without a token only to a loopback Host: another site's name rebound to
    // 127.0.0.1 (DNS rebinding) is refused.
    let (code, body) = curl(
        &format!("{base}/console/api/state"),
        Some("Host: rebound.example:8085"),
    );
    assert_eq!(code, "403", "{body}");
    assert!(body.contains("answers only to a loopback Host"), "{body}");
    // The page in a real browser: its script draws the backups, the plan and its chart.
    let profile = tempfile::tempdir().unwrap();
    let page = dom(profile.path(), &format!("{base}/console"));
    assert!(
        page.contains(&format!(
            "<td>{BACKUP}</td><td class=\"Completed\">Completed</td>"
        )),
        "{page}"
    );
    assert!(page.contains(&format!("data-plan=\"{PLAN}\"")), "{page}");
    assert!(page.contains("<polyline"), "{page}");
    assert!(page.contains("Readiness findings"), "{page}");
    assert!(page.contains("<span id=\"error\"></span>"), "{page}");
    let shot = artifacts().join("console.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
            &format!("{base}/console"),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{}",
        png.len()
    );

    fx.env
        .kubectl(&["-n", NS, "delete", "drplans.lifeboat.dev", PLAN], None);
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_console_with_a_token_refuses_requests_without_it() {
    let fx = shared();
    fx.completed_backup("console-it-token", "");
    let token_file = fx.env.dir.path().join("console-token");
    std::fs::write(&token_file, "console-it-s3cret\n").unwrap();
    let port = free_port();
    // A second replica (it follows the fixture's leader): the console reads the cluster
    // itself, so any replica serves it.
    let mut server = ServerProcess::start(
        &fx.env,
        &[
            "-n",
            NS,
            "server",
            "--kubeconfig",
            fx.sa_config.to_str().unwrap(),
            "--metrics-address",
            &format!("127.0.0.1:{port}"),
            "--identity",
            "console-it",
            "--console-token-file",
            token_file.to_str().unwrap(),
        ],
        fx.env.dir.path().join("console-server.log"),
    );
    let base = format!("http://127.0.0.1:{port}");
    eventually(30, "the second server's port", || {
        (curl(&format!("{base}/healthz"), None).0 == "200").then_some(())
    });
    let (code, body) = curl(&format!("{base}/console/api/state"), None);
    assert_eq!(code, "401", "{body}");
    assert!(
        body.contains("the console needs its bearer token"),
        "{body}"
    );
    let (code, _) = curl(
        &format!("{base}/console/api/state"),
        Some("Authorization: Bearer console-it-wrong"),
    );
    assert_eq!(code, "401");
    let (code, body) = curl(
        &format!("{base}/console/api/state"),
        Some("Authorization: Bearer console-it-s3cret"),
    );
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("console-it-token"), "{body}");
    // The page holds no data: served to anyone, it asks the state with the token of its
    // URL's fragment.
    let profile = tempfile::tempdir().unwrap();
    let without = dom(profile.path(), &format!("{base}/console"));
    assert!(
        without.contains("401: the console needs its bearer token"),
        "{without}"
    );
    let profile = tempfile::tempdir().unwrap();
    let with = dom(
        profile.path(),
        &format!("{base}/console#token=console-it-s3cret"),
    );
    assert!(with.contains("<td>console-it-token</td>"), "{with}");
    assert!(server.terminate());
}
