//! `backup verify` (issue 5): every check on a good backup, a stale one, a damaged
//! archive, a test restore that cleans up after itself, and the CronJob form.

use crate::support::*;

fn report(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn failed_checks(r: &serde_json::Value) -> Vec<String> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn verify_checks_a_backup_and_test_restores_it() {
    let env = Env::new();
    let ns = "verify-it";
    env.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c1, namespace: {ns}}}\ndata: {{k: v}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s1, namespace: {ns}}}\nstringData: {{p: q}}\n"
    ));
    env.ok(&["backup", "create", "vb1", "--include-namespaces", ns]);

    let r = report(&env.ok(&["backup", "verify", "vb1", "-o", "json"]));
    assert_eq!(r["ok"], true, "{r}");
    let names: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["phase", "location", "archive", "contents"]);

    // Too old: exit 1 and the age check names it.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = env.run(&[
        "backup",
        "verify",
        "--latest",
        "--max-age",
        "1s",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(failed_checks(&r), ["age"], "{r}");

    // A test restore into <ns>-verify-<id>, checked, then removed.
    let r = report(&env.ok(&["backup", "verify", "vb1", "--test-restore", "-o", "json"]));
    assert_eq!(r["ok"], true, "{r}");
    let detail = r["checks"][4]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Completed into verify-it-verify-"),
        "{detail}"
    );
    let mapped = detail
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':');
    let phase = std::process::Command::new("kubectl")
        .env("KUBECONFIG", &env.kubeconfig)
        .args(["get", "namespace", mapped, "-o", "jsonpath={.status.phase}"])
        .output()
        .unwrap();
    let phase = String::from_utf8_lossy(&phase.stdout);
    assert!(
        phase.is_empty() || phase == "Terminating",
        "{mapped} left behind: {phase}"
    );
    assert!(
        !env.storage()
            .join("restores")
            .join(format!("vb1-verify-{}", mapped.rsplit('-').next().unwrap()))
            .exists()
    );

    // Issue 11, item 8: a scratch namespace that exists already (not made by this run) is
    // neither restored into nor deleted.
    let taken = "verify-it-verify-taken";
    env.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {taken}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: mine, namespace: {taken}}}\ndata: {{k: v}}\n"
    ));
    let out = env.run(&[
        "backup",
        "verify",
        "vb1",
        "--test-restore",
        "--test-restore-id",
        "taken",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&String::from_utf8_lossy(&out.stdout));
    let failed = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ok"] == false)
        .unwrap();
    assert_eq!(failed["check"], "test restore", "{r}");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("namespace {taken} already exists")),
        "{r}"
    );
    env.kubectl(&["get", "configmap", "-n", taken, "mine"], None);
    env.kubectl(&["delete", "namespace", taken, "--wait=false"], None);

    // A damaged archive: the archive check fails with the reason, exit 1.
    let tarball = env.storage().join("backups/vb1/vb1.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    let cut = bytes.len() / 2;
    bytes.truncate(cut);
    std::fs::write(&tarball, &bytes).unwrap();
    let out = env.run(&["backup", "verify", "vb1"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("archive    FAILED") && text.contains("Verification FAILED"),
        "{text}"
    );

    // With --test-restore the CronJob comes with the one right it needs beyond the
    // server's roles (deleting namespaces), and the API server accepts all of it.
    let job = env.ok(&[
        "-n",
        "default",
        "backup",
        "verify",
        "--latest",
        "--test-restore",
        "--print-cronjob",
    ]);
    assert!(
        job.contains("kind: CronJob")
            && job.contains("kind: ClusterRole\n")
            && job.contains("name: lifeboat-verify-cleanup")
            && job.contains("- delete"),
        "{job}"
    );
    env.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&job));

    // The CronJob form is accepted by the API server.
    let job = env.ok(&[
        "backup",
        "verify",
        "--latest",
        "--max-age",
        "26h",
        "--print-cronjob",
    ]);
    assert!(
        job.contains("--max-age") && job.contains("kind: CronJob"),
        "{job}"
    );
    env.kubectl(
        &["apply", "--dry-run=server", "-n", "default", "-f", "-"],
        Some(&job.replace("namespace: velero", "namespace: default")),
    );
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}
