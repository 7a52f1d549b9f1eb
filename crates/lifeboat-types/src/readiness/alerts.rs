//! `lifeboat alerts`: the DR guides' alerts as Prometheus alerting rules over the metrics
//! the server exports (every name from [`crate::metrics`], under the naming the server
//! was started with), and for each rule a `promtool test rules` case where it fires and
//! one where it does not. The rules are data: a PrometheusRule, a plain rule file and the
//! tests are three renderings of the same list.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::metrics::{self, Metric, MetricNames};

/// What the rules are generated for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The metric names the server exports (`--metric-names`).
    pub names: MetricNames,
    /// A DR plan's numbers: its rules then name the plan and use its objectives.
    pub plan: Option<PlanNumbers>,
    /// How old the newest etcd snapshot may be before its alert.
    pub etcd_max_age: Duration,
    /// How long since the last drill before its alert, without a plan's calendar.
    pub drill_every: Duration,
    /// Whether the DR plans' rules are included (always with a plan, which has only them).
    pub dr: bool,
}

/// A DR plan's numbers the rules use.
#[derive(Debug, Clone)]
pub struct PlanNumbers {
    /// Its name (the `plan` label of `lifeboat_dr_*`).
    pub name: String,
    /// Its RPO.
    pub rpo: Duration,
    /// The longest gap of its drill calendar, when it has one.
    pub drill_every: Option<Duration>,
}

/// One series of a test's input: its selector and its values in promtool's notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// `name{label="value"}`.
    pub series: String,
    /// `0+60x100`.
    pub values: String,
}

/// A rule's test: input series where it fires, and where it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTest {
    /// The sample interval.
    pub interval: String,
    /// When the rule is evaluated (after `for`).
    pub eval_time: String,
    /// Series under which it fires.
    pub firing: Vec<Series>,
    /// Series under which it stays quiet.
    pub quiet: Vec<Series>,
    /// The labels of the alert it fires with (besides `severity`).
    pub labels: BTreeMap<String, String>,
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `alert:`.
    pub name: String,
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// The PromQL expression.
    pub expr: String,
    /// `for:` (a Prometheus duration; "0m" fires at once).
    pub for_: String,
    /// The summary annotation.
    pub summary: String,
    /// The description annotation (`{{ $labels.x }}` only: its tests expect it rendered).
    pub description: String,
    /// Its promtool test.
    pub test: RuleTest,
}

/// A duration as Prometheus writes one: whole seconds in the largest exact unit.
pub fn prom_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s > 0 && s.is_multiple_of(n) {
            return format!("{}{unit}", s.checked_div(n).unwrap_or_default());
        }
    }
    format!("{s}s")
}

fn name(m: Metric, o: &Options) -> &'static str {
    m.exposed(o.names)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn series(metric: &str, labels: &[(&str, &str)], values: &str) -> Series {
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    Series {
        series: format!("{metric}{{{}}}", l.join(",")),
        values: values.to_owned(),
    }
}

/// The plan matcher of DR selectors: `{plan="shop"}` with a plan, else nothing.
fn plan_matcher(o: &Options) -> String {
    o.plan
        .as_ref()
        .map(|p| format!("{{plan=\"{}\"}}", p.name))
        .unwrap_or_default()
}

/// Seconds as a PromQL number.
fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Every rule, for `o`: with a plan, only the DR rules of that plan (each plan's rules a
/// group of their own, beside the backup rules generated once without a plan).
pub fn alerts(o: &Options) -> Vec<Alert> {
    let mut out = Vec::new();
    if o.plan.is_some() {
        dr_alerts(o, &mut out);
        return out;
    }
    let last = name(metrics::BACKUP_LAST_SUCCESSFUL, o);
    let interval = name(metrics::SCHEDULE_INTERVAL, o);
    let nightly = [("schedule", "nightly")];
    // Backup age per schedule: warning at 2x its interval, critical at 3x. A schedule
    // every hour: a backup 2h10m old is a warning, 3h10m old critical.
    for (alert, severity, times, eval) in [
        ("LifeboatBackupTooOld", "warning", 2, "150m"),
        ("LifeboatBackupCriticallyOld", "critical", 3, "200m"),
    ] {
        out.push(Alert {
            name: alert.into(),
            severity,
            expr: format!("(time() - {last}) > {times} * {interval}"),
            for_: "10m".into(),
            summary: format!("The last successful backup is older than {times}x its schedule's interval"),
            description: format!(
                "Schedule {{{{ $labels.schedule }}}} has had no successful backup for {times} of its intervals: backups keep failing or the server does not run them. Check lifeboat backup get and the server's log."
            ),
            test: RuleTest {
                interval: "1m".into(),
                eval_time: eval.into(),
                firing: vec![
                    series(last, &nightly, "0x240"),
                    series(interval, &nightly, "3600x240"),
                ],
                quiet: vec![
                    series(last, &nightly, "0+60x240"),
                    series(interval, &nightly, "3600x240"),
                ],
                labels: labels(&nightly),
            },
        });
    }
    // Failed backups, validation failures included (a schedule whose backups are all
    // refused protects nothing either); and partial failures.
    let failed = name(metrics::BACKUP_FAILURE, o);
    let refused = name(metrics::BACKUP_VALIDATION_FAILURE, o);
    let partial = name(metrics::BACKUP_PARTIAL_FAILURE, o);
    out.push(Alert {
        name: "LifeboatBackupFailed".into(),
        severity: "critical",
        expr: format!(
            "(sum by (schedule) (increase({failed}[1h])) > 0) or (sum by (schedule) (increase({refused}[1h])) > 0)"
        ),
        for_: "0m".into(),
        summary: "A backup failed in the last hour".into(),
        description: "A backup of schedule {{ $labels.schedule }} failed or was refused (empty: a backup made by hand). lifeboat backup describe NAME --details names the reason.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "10m".into(),
            firing: vec![
                series(failed, &nightly, "0x11"),
                series(refused, &nightly, "0 0 0 1 1 1 1 1 1 1 1 1"),
            ],
            quiet: vec![series(failed, &nightly, "0x11"), series(refused, &nightly, "1x11")],
            labels: labels(&nightly),
        },
    });
    out.push(Alert {
        name: "LifeboatBackupPartiallyFailed".into(),
        severity: "warning",
        expr: format!("increase({partial}[1h]) > 0"),
        for_: "0m".into(),
        summary: "A backup partially failed in the last hour".into(),
        description: "A backup of schedule {{ $labels.schedule }} partially failed: it is stored, with errors. lifeboat backup describe NAME --details names each one.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "10m".into(),
            firing: vec![series(partial, &nightly, "0 0 0 1 1 1 1 1 1 1 1 1")],
            quiet: vec![series(partial, &nightly, "0x11")],
            labels: labels(&nightly),
        },
    });
    let location = name(metrics::LOCATION_STATUS, o);
    let default = [("backup_location_name", "default")];
    out.push(Alert {
        name: "LifeboatLocationUnavailable".into(),
        severity: "critical",
        expr: format!("{location} == 0"),
        for_: "5m".into(),
        summary: "A backup storage location is unavailable".into(),
        description: "Location {{ $labels.backup_location_name }} failed its validation: no backup can be stored in it or read from it. lifeboat location get shows the message.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "10m".into(),
            firing: vec![series(location, &default, "0x11")],
            quiet: vec![series(location, &default, "1x11")],
            labels: labels(&default),
        },
    });
    let etcd = name(metrics::ETCD_SNAPSHOT_LAST, o);
    let max = o.etcd_max_age;
    let prod = [("backup_location_name", "default"), ("cluster", "prod")];
    let other = [("backup_location_name", "offsite"), ("cluster", "prod")];
    // The last snapshot an hour older than the limit at the start (a negative time),
    // against one written every minute; an old one-off in another location does not
    // count while a recent one exists.
    let stale = format!("-{}x40", secs(max).saturating_add(3_600));
    out.push(Alert {
        name: "LifeboatEtcdSnapshotTooOld".into(),
        severity: "critical",
        expr: format!("(time() - max by (cluster) ({etcd})) > {}", secs(max)),
        for_: "10m".into(),
        summary: format!("The newest etcd snapshot is older than {}", prom_duration(max)),
        description: "Cluster {{ $labels.cluster }} has no etcd snapshot in any location newer than the limit: the control plane could only be rebuilt to an old state. Check the etcd snapshot CronJob.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "30m".into(),
            firing: vec![series(etcd, &prod, &stale)],
            quiet: vec![series(etcd, &prod, "0+60x40"), series(etcd, &other, &stale)],
            labels: labels(&[("cluster", "prod")]),
        },
    });
    if o.dr {
        dr_alerts(o, &mut out);
    }
    out
}

fn dr_alerts(o: &Options, out: &mut Vec<Alert>) {
    let pm = plan_matcher(o);
    let plan = o.plan.as_ref().map(|p| p.name.as_str()).unwrap_or("shop");
    let pl = [("plan", plan)];
    let pc = [("plan", plan), ("cluster", "dr-west")];
    let rpo = name(metrics::DR_RPO, o);
    let objective = name(metrics::DR_RPO_OBJECTIVE, o);
    let (rpo_expr, rpo_quiet, rpo_series) = match &o.plan {
        Some(p) => (
            format!("{rpo}{pm} > {}", secs(p.rpo)),
            vec![series(rpo, &pl, &format!("{}x20", secs(p.rpo)))],
            vec![series(
                rpo,
                &pl,
                &format!("{}x20", secs(p.rpo).saturating_add(1)),
            )],
        ),
        None => (
            format!("{rpo} > on(plan) {objective}"),
            vec![
                series(rpo, &pl, "3600x20"),
                series(objective, &pl, "3600x20"),
            ],
            vec![
                series(rpo, &pl, "3601x20"),
                series(objective, &pl, "3600x20"),
            ],
        ),
    };
    out.push(Alert {
        name: "LifeboatDRRPOBreached".into(),
        severity: "critical",
        expr: rpo_expr,
        for_: "5m".into(),
        summary: "No standby can restore a backup within the DR plan's RPO".into(),
        description: "DR plan {{ $labels.plan }}: the newest backup a standby can restore is older than the RPO. lifeboat dr status names what is missing.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "10m".into(),
            firing: rpo_series,
            quiet: rpo_quiet,
            labels: labels(&pl),
        },
    });
    let ready = name(metrics::DR_CLUSTER_READY, o);
    out.push(Alert {
        name: "LifeboatDRClusterNotReady".into(),
        severity: "critical",
        expr: format!("{ready}{pm} == 0"),
        for_: "10m".into(),
        summary: "A cluster of a DR plan cannot take over".into(),
        description: "DR plan {{ $labels.plan }}: cluster {{ $labels.cluster }} is not ready (API server, Ready nodes, lifeboat, its locations). lifeboat dr status says why.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "15m".into(),
            firing: vec![series(ready, &pc, "0x16")],
            quiet: vec![series(ready, &pc, "1x16")],
            labels: labels(&pc),
        },
    });
    let lag = name(metrics::DR_REPLICATION_LAG, o);
    let (lag_expr, lag_firing, lag_quiet) = match &o.plan {
        Some(p) => (
            format!("{lag}{pm} > {}", secs(p.rpo)),
            vec![series(
                lag,
                &pc,
                &format!("{}x30", secs(p.rpo).saturating_add(1)),
            )],
            vec![series(lag, &pc, "0x30")],
        ),
        None => (
            format!("{lag} > on(plan) group_left {objective}"),
            vec![
                series(lag, &pc, "3601x30"),
                series(objective, &pl, "3600x30"),
            ],
            vec![series(lag, &pc, "60x30"), series(objective, &pl, "3600x30")],
        ),
    };
    out.push(Alert {
        name: "LifeboatDRReplicationLag".into(),
        severity: "warning",
        expr: lag_expr,
        for_: "15m".into(),
        summary: "A cluster's newest backup lags behind by more than the RPO".into(),
        description: "DR plan {{ $labels.plan }}: the newest backup cluster {{ $labels.cluster }} reads is behind the newest of the plan by more than the RPO. Check the copies between locations (lifeboat.dev/replicate-to, backup replicate).".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "20m".into(),
            firing: lag_firing,
            quiet: lag_quiet,
            labels: labels(&pc),
        },
    });
    let drill_ok = name(metrics::DR_LAST_DRILL_SUCCESS, o);
    out.push(Alert {
        name: "LifeboatDRDrillFailed".into(),
        severity: "warning",
        expr: format!("{drill_ok}{pm} == 0"),
        for_: "0m".into(),
        summary: "The last DR drill failed".into(),
        description: "DR plan {{ $labels.plan }}: the server's last drill did not pass its criteria. kubectl get drplan shows its message and report.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "5m".into(),
            firing: vec![series(drill_ok, &pl, "0x6")],
            quiet: vec![series(drill_ok, &pl, "1x6")],
            labels: labels(&pl),
        },
    });
    let drill_at = name(metrics::DR_LAST_DRILL_TIMESTAMP, o);
    let every = o
        .plan
        .as_ref()
        .and_then(|p| p.drill_every)
        .unwrap_or(o.drill_every);
    // Overdue a day after the calendar's longest gap.
    let overdue = secs(every).saturating_add(86_400);
    // The last drill an hour further back than that at the start, against one a minute ago.
    let stale = format!("-{}x150", overdue.saturating_add(3_600));
    out.push(Alert {
        name: "LifeboatDRDrillOverdue".into(),
        severity: "warning",
        expr: format!("(time() - {drill_at}{pm}) > {overdue}"),
        for_: "1h".into(),
        summary: format!("No DR drill for more than {}", prom_duration(Duration::from_secs(overdue))),
        description: "DR plan {{ $labels.plan }} has not been drilled on its calendar. Run lifeboat dr drill, or check the plan's spec.drills.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "2h".into(),
            firing: vec![series(drill_at, &pl, &stale)],
            quiet: vec![series(drill_at, &pl, "0+60x150")],
            labels: labels(&pl),
        },
    });
    let sync_ok = name(metrics::DR_LAST_SYNC_SUCCESS, o);
    out.push(Alert {
        name: "LifeboatDRStandbySyncFailed".into(),
        severity: "warning",
        expr: format!("{sync_ok}{pm} == 0"),
        for_: "15m".into(),
        summary: "A warm standby's sync failed".into(),
        description: "DR plan {{ $labels.plan }}: warm standby {{ $labels.cluster }} does not hold the newest backup; a failover to it would restore older data. kubectl get drplan shows the sync's message.".into(),
        test: RuleTest {
            interval: "1m".into(),
            eval_time: "20m".into(),
            firing: vec![series(sync_ok, &pc, "0x21")],
            quiet: vec![series(sync_ok, &pc, "1x21")],
            labels: labels(&pc),
        },
    });
}

fn rule_json(a: &Alert) -> Value {
    let mut r = json!({
        "alert": a.name,
        "expr": a.expr,
        "labels": {"severity": a.severity},
        "annotations": {"summary": a.summary, "description": a.description},
    });
    if a.for_ != "0m" {
        r["for"] = json!(a.for_);
    }
    r
}

/// The group name of the rules of `o`: `lifeboat`, or `lifeboat.plan.<plan>`.
pub fn group(o: &Options) -> String {
    match &o.plan {
        Some(p) => format!("lifeboat.plan.{}", p.name),
        None => "lifeboat".into(),
    }
}

/// The PrometheusRule's default name for `o`: `lifeboat`, or `lifeboat-plan-<plan>` (so
/// that each plan's rules are an object of their own).
pub fn default_name(o: &Options) -> String {
    match &o.plan {
        Some(p) => format!("lifeboat-plan-{}", p.name),
        None => "lifeboat".into(),
    }
}

/// A Prometheus rule file: `groups: [{name, rules}]`.
pub fn rule_file(alerts: &[Alert], group: &str) -> Value {
    json!({"groups": [{"name": group, "rules": alerts.iter().map(rule_json).collect::<Vec<_>>()}]})
}

/// The same rules as a PrometheusRule of the Prometheus Operator.
pub fn prometheus_rule(alerts: &[Alert], group: &str, name: &str, namespace: &str) -> Value {
    let mut doc = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "lifeboat"}},
    });
    doc["spec"] = rule_file(alerts, group);
    doc
}

/// `description` with its `{{ $labels.x }}` filled in from `labels`.
fn rendered(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

/// The `promtool test rules` file of `alerts` (the rule file at `rule_file_path`): for
/// each rule, one test where it fires with exactly its labels and annotations, and one
/// where nothing fires.
pub fn promtool_tests(alerts: &[Alert], rule_file_path: &str) -> Value {
    let mut tests = Vec::new();
    for a in alerts {
        let input = |s: &[Series]| {
            s.iter()
                .map(|s| json!({"series": s.series, "values": s.values}))
                .collect::<Vec<_>>()
        };
        let mut exp_labels: BTreeMap<String, String> = a.test.labels.clone();
        exp_labels.insert("severity".into(), a.severity.into());
        let firing = json!({
            "interval": a.test.interval,
            "input_series": input(&a.test.firing),
            "alert_rule_test": [{
                "eval_time": a.test.eval_time,
                "alertname": a.name,
                "exp_alerts": [{
                    "exp_labels": exp_labels,
                    "exp_annotations": {
                        "summary": a.summary,
                        "description": rendered(&a.description, &a.test.labels),
                    },
                }],
            }],
        });
        let quiet = json!({
            "interval": a.test.interval,
            "input_series": input(&a.test.quiet),
            "alert_rule_test": [{"eval_time": a.test.eval_time, "alertname": a.name, "exp_alerts": []}],
        });
        tests.push(firing);
        tests.push(quiet);
    }
    json!({"rule_files": [rule_file_path], "evaluation_interval": "1m", "tests": tests})
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn opts() -> Options {
        Options {
            names: MetricNames::Velero,
            plan: None,
            etcd_max_age: Duration::from_secs(86_400),
            drill_every: Duration::from_secs(92 * 86_400),
            dr: true,
        }
    }

    #[rstest]
    #[case(Duration::from_secs(86_400), "1d")]
    #[case(Duration::from_secs(5_400), "90m")]
    #[case(Duration::from_secs(7_200), "2h")]
    #[case(Duration::from_secs(61), "61s")]
    #[case(Duration::ZERO, "0s")]
    fn durations_as_prometheus_writes_them(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(prom_duration(d), want);
    }

    #[test]
    fn every_metric_a_rule_reads_is_one_the_server_exports() {
        for names in [MetricNames::Velero, MetricNames::Promlint] {
            let exported: Vec<&str> = metrics::ALL.iter().map(|m| m.exposed(names)).collect();
            for a in alerts(&Options { names, ..opts() }) {
                for s in a.test.firing.iter().chain(&a.test.quiet) {
                    let metric = s.series.split('{').next().unwrap();
                    assert!(exported.contains(&metric), "{} reads {metric}", a.name);
                    assert!(
                        a.expr.contains(metric),
                        "{} tests {metric}, which it does not read",
                        a.name
                    );
                }
            }
        }
    }

    #[test]
    fn promlint_names_are_used_under_promlint() {
        let a = alerts(&Options {
            names: MetricNames::Promlint,
            ..opts()
        });
        let loc = a
            .iter()
            .find(|a| a.name == "LifeboatLocationUnavailable")
            .unwrap();
        assert_eq!(loc.expr, "velero_backup_location_status == 0");
        let a = alerts(&opts());
        let loc = a
            .iter()
            .find(|a| a.name == "LifeboatLocationUnavailable")
            .unwrap();
        assert_eq!(loc.expr, "velero_backup_location_status_gauge == 0");
    }

    #[test]
    fn a_plan_names_itself_and_its_numbers() {
        let o = Options {
            plan: Some(PlanNumbers {
                name: "shop-dr".into(),
                rpo: Duration::from_secs(900),
                drill_every: Some(Duration::from_secs(7 * 86_400)),
            }),
            ..opts()
        };
        let a = alerts(&o);
        // Only the plan's DR rules, in a group and object of their own.
        assert!(a.iter().all(|a| a.name.starts_with("LifeboatDR")), "{a:?}");
        assert_eq!(a.len(), 6);
        assert_eq!(group(&o), "lifeboat.plan.shop-dr");
        assert_eq!(default_name(&o), "lifeboat-plan-shop-dr");
        let without_dr = alerts(&Options {
            dr: false,
            ..opts()
        });
        assert!(without_dr.iter().all(|a| !a.name.starts_with("LifeboatDR")));
        assert_eq!(without_dr.len() + 6, alerts(&opts()).len());
        let expr = |n: &str| a.iter().find(|a| a.name == n).unwrap().expr.clone();
        assert_eq!(
            expr("LifeboatDRRPOBreached"),
            "lifeboat_dr_rpo_seconds{plan=\"shop-dr\"} > 900"
        );
        assert_eq!(
            expr("LifeboatDRDrillOverdue"),
            "(time() - lifeboat_dr_last_drill_timestamp{plan=\"shop-dr\"}) > 691200"
        );
        assert_eq!(
            expr("LifeboatDRClusterNotReady"),
            "lifeboat_dr_cluster_ready{plan=\"shop-dr\"} == 0"
        );
    }

    #[test]
    fn the_rule_file_is_what_prometheus_reads() {
        insta::assert_yaml_snapshot!(rule_file(&alerts(&opts()), &group(&opts())));
    }

    #[test]
    fn each_rule_has_a_firing_and_a_quiet_test() {
        let a = alerts(&opts());
        let t = promtool_tests(&a, "rules.yaml");
        let tests = t["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 2 * a.len());
        for (i, alert) in a.iter().enumerate() {
            let firing = &tests[2 * i]["alert_rule_test"][0];
            assert_eq!(firing["alertname"], alert.name.as_str());
            assert_eq!(
                firing["exp_alerts"][0]["exp_labels"]["severity"],
                alert.severity
            );
            assert!(
                !firing["exp_alerts"][0]["exp_annotations"]["description"]
                    .as_str()
                    .unwrap()
                    .contains("{{"),
                "{}: a template left unrendered",
                alert.name
            );
            assert_eq!(
                tests[2 * i + 1]["alert_rule_test"][0]["exp_alerts"],
                json!([])
            );
        }
    }
}
