//! `dr runbook` against a real cluster: the last drill and failover read from the plan's
//! DRPlan resource, the audit of the protected namespaces, the HTML page; and a runbook
//! printed anyway, saying so, when the active cluster cannot be reached.

use crate::server_fixture::{STANDBY_NS, standby_cluster};

const NS: &str = "runbook-it-shop";

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_runbook_from_the_plans_resource_and_an_audit() {
    let (_alone, env) = standby_cluster();
    env.delete_namespace(NS);
    let bucket = env.dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    crate::server_fixture::install_file_location(&env, &bucket);
    env.kubectl(&["create", "namespace", NS], None);
    env.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {NS}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - {{name: c, image: busybox, readinessProbe: {{tcpSocket: {{port: 80}}}}}}\n"
    ));
    let kubeconfig = env.kubeconfig.display().to_string();
    let plan = format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DRPlan\nmetadata: {{name: shop}}\nspec:\n  namespaces: [{NS}]\n  tier: tier-2\n  clusters:\n  - {{name: east, kubeconfig: {kubeconfig}, namespace: {STANDBY_NS}, active: true, locations: [default]}}\n  - {{name: west, kubeconfig: {kubeconfig}, namespace: {STANDBY_NS}, locations: [default]}}\n  runbook:\n    contacts: [{{role: on-call, name: Platform rotation, reach: '#platform-oncall'}}]\n"
    );
    let file = env.dir.path().join("shop-dr.yaml");
    std::fs::write(&file, &plan).unwrap();
    // The plan as a resource, its status as the server writes it after a drill and a
    // failover (no server runs here to overwrite it).
    let resource = plan.replace(
        "metadata: {name: shop}",
        &format!("metadata: {{name: shop, namespace: {STANDBY_NS}}}"),
    );
    env.apply(&resource);
    env.kubectl(
        &[
            "-n",
            STANDBY_NS,
            "patch",
            "drplans.lifeboat.dev",
            "shop",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"lastDrill":{"id":"q4","cluster":"west","started":"2026-10-01T03:00:00Z","outcome":"Passed","rtoSeconds":412.4},"lastFailover":{"id":"f1","started":"2026-11-02T04:00:00Z","outcome":"Succeeded","from":"east","to":"west","rtoSeconds":95.0}}}"#,
        ],
        None,
    );
    let md = env.ok(&["dr", "runbook", file.to_str().unwrap()]);
    for want in [
        "# DR runbook: shop\n",
        "| on-call | Platform rotation | #platform-oncall |",
        "| tier-2 (this plan) | 1h0m0s | 4h0m0s |",
        &format!(
            "| - | {NS} | {NS} | - | 1h0m0s | 4h0m0s | 412s (Passed, drill q4 on west) | - | - |"
        ),
        "Last failover: f1 from east to west on 2026-11-02 04:00 UTC, Succeeded, RTO 95s.",
        &format!(
            "lifeboat dr failover {} --to west --dry-run",
            file.display()
        ),
        // The audit ran on the active cluster: no schedule covers the namespace yet, one
        // replica.
        &format!("| critical | namespace-not-covered | Namespace {NS} |"),
        &format!("| medium | single-replica | Deployment {NS}/web |"),
    ] {
        assert!(md.contains(want), "missing {want:?} in:\n{md}");
    }
    let html = env.ok(&["dr", "runbook", file.to_str().unwrap(), "-o", "html"]);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<title>DR runbook: shop</title>"), "{html}");
    assert!(html.contains("<td>#platform-oncall</td>"), "{html}");

    // The active cluster unreachable: the runbook is printed, saying what it lacks.
    let gone = env.dir.path().join("gone.yaml");
    std::fs::write(
        &gone,
        plan.replace(
            &format!("name: east, kubeconfig: {kubeconfig}"),
            "name: east, kubeconfig: /nonexistent/kubeconfig",
        ),
    )
    .unwrap();
    let md = env.ok(&["dr", "runbook", gone.to_str().unwrap()]);
    assert!(
        md.contains("The audit did not run: cluster east cannot be reached: "),
        "{md}"
    );
    assert!(
        md.contains("unknown: cluster east cannot be reached"),
        "{md}"
    );

    env.delete_namespace(NS);
    let _ = env.run(&["-n", STANDBY_NS, "uninstall", "--force"]);
}
