//! Notifications from the fixture's server to a receiver started by the test: a refused
//! backup posted in the three formats (PagerDuty's receiver failing once: tried again), a
//! DR plan's RPO breach and a failover the CLI recorded in the plan, each posted once, and
//! no secret in any payload.

use serde_json::Value;

use crate::server_fixture::{NS, eventually, shared};
use crate::webhook_receiver::Receiver;

const TOKEN: &str = "XOXB-NOTIFY-IT-TOKEN";
const KEY: &str = "NOTIFY-IT-ROUTING-KEY";
const PLAN: &str = "notify-it-shop";
const BACKUP: &str = "notify-it-refused";

fn posts_about<'a>(got: &'a [(String, Value)], path: &str, needle: &str) -> Vec<&'a Value> {
    got.iter()
        .filter(|(p, v)| p.starts_with(path) && v.to_string().contains(needle))
        .map(|(_, v)| v)
        .collect()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn the_server_notifies_each_receiver_in_its_format() {
    let fx = shared();
    let r = Receiver::start();
    let config = format!(
        "receivers:\n- {{name: generic, format: generic, url: '{0}/generic'}}\n- {{name: chat, format: slack, url: '{0}/slack/T000/{TOKEN}', events: [BackupFailed]}}\n- {{name: pager, format: pagerduty, url: '{0}/flaky-pd', routingKey: {KEY}, events: [BackupFailed]}}\n",
        r.url
    );
    fx.env.kubectl(
        &[
            "-n",
            NS,
            "delete",
            "secret",
            "lifeboat-notifications",
            "--ignore-not-found",
        ],
        None,
    );
    fx.env.kubectl(
        &[
            "-n",
            NS,
            "create",
            "secret",
            "generic",
            "lifeboat-notifications",
            &format!("--from-literal=notifications.yaml={config}"),
        ],
        None,
    );

    // A backup the server refuses.
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata:\n  name: {BACKUP}\n  namespace: {NS}\nspec:\n  includedNamespaces: [{PLAN}]\n  storageLocation: notify-it-no-such-location\n"
    ));
    fx.backup_in(BACKUP, &["FailedValidation"], 30);
    let got = eventually(60, "the refusal posted to all three receivers", || {
        let got = r.received();
        let ok = posts_about(&got, "/generic", BACKUP).len() == 1
            && posts_about(&got, "/slack", BACKUP).len() == 1
            && posts_about(&got, "/flaky-pd", BACKUP).len() == 2;
        ok.then_some(got)
    });
    let generic = posts_about(&got, "/generic", BACKUP)[0];
    assert_eq!(generic["kind"], "BackupFailed", "{generic}");
    assert_eq!(generic["severity"], "critical");
    assert_eq!(generic["object"], format!("Backup {NS}/{BACKUP}"));
    assert_eq!(generic["details"]["phase"], "FailedValidation");
    assert_eq!(generic["source"], format!("lifeboat in namespace {NS}"));
    let slack = posts_about(&got, "/slack", BACKUP)[0];
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!(":red_circle: *lifeboat* (lifeboat in namespace {NS}): Backup {BACKUP} ended FailedValidation")),
        "{slack}"
    );
    // The first post to PagerDuty was answered 503 and sent again, the same.
    let pd = posts_about(&got, "/flaky-pd", BACKUP);
    assert_eq!(pd[0], pd[1]);
    assert_eq!(pd[0]["routing_key"], KEY);
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], format!("lifeboat/backup/{NS}/{BACKUP}"));
    assert_eq!(pd[0]["payload"]["severity"], "critical");

    // A DR plan whose standby reads no backup of its namespace: its RPO is breached.
    let kubeconfig = fx.env.kubeconfig.display().to_string();
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: DRPlan\nmetadata: {{name: {PLAN}, namespace: {NS}}}\nspec:\n  namespaces: [{PLAN}]\n  tier: tier-1\n  clusters:\n  - {{name: east, kubeconfig: {kubeconfig}, namespace: {NS}, active: true, locations: [default]}}\n  - {{name: west, kubeconfig: {kubeconfig}, namespace: {NS}, locations: [default]}}\n"
    ));
    eventually(60, "the RPO breach posted", || {
        let got = r.received();
        posts_about(&got, "/generic", "RpoBreached")
            .into_iter()
            .find(|v| v["object"] == format!("DRPlan {NS}/{PLAN}"))
            .cloned()
    });
    // A failover, recorded in the plan as `dr failover` records it.
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    fx.env.kubectl(
        &[
            "-n",
            NS,
            "patch",
            "drplans.lifeboat.dev",
            PLAN,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                r#"{{"status":{{"lastFailover":{{"id":"notify-it-f1","started":"{started}","outcome":"RolledBack","from":"east","to":"west"}}}}}}"#
            ),
        ],
        None,
    );
    let failover = eventually(60, "the failover posted", || {
        let got = r.received();
        posts_about(&got, "/generic", "notify-it-f1")
            .first()
            .map(|v| (*v).clone())
    });
    assert_eq!(failover["kind"], "FailoverOutcome", "{failover}");
    assert_eq!(failover["severity"], "critical");
    assert_eq!(
        failover["summary"],
        "Failover notify-it-f1 of DR plan notify-it-shop from east to west: RolledBack"
    );
    // Several looks later (every 2 s), each was posted once.
    std::thread::sleep(std::time::Duration::from_secs(8));
    let got = r.received();
    let of_plan = |kind: &str| {
        posts_about(&got, "/generic", kind)
            .into_iter()
            .filter(|v| v["object"] == format!("DRPlan {NS}/{PLAN}"))
            .count()
    };
    assert_eq!((of_plan("RpoBreached"), of_plan("FailoverOutcome")), (1, 1));
    let status = fx.get(&["drplans.lifeboat.dev", PLAN]);
    assert_eq!(status["status"]["notified"]["failover"], "notify-it-f1");
    assert_eq!(status["status"]["notified"]["rpoBreached"], true);

    // No payload holds a receiver's token; the routing key only PagerDuty's field.
    for (path, body) in &got {
        let text = body.to_string();
        assert!(!text.contains(TOKEN), "{path}: {text}");
        if !path.starts_with("/flaky-pd") {
            assert!(!text.contains(KEY), "{path}: {text}");
        }
    }

    fx.env.kubectl(
        &["-n", NS, "delete", "secret", "lifeboat-notifications"],
        None,
    );
    fx.env
        .kubectl(&["-n", NS, "delete", "drplans.lifeboat.dev", PLAN], None);
    fx.env
        .kubectl(&["-n", NS, "delete", "backups.lifeboat.dev", BACKUP], None);
}
