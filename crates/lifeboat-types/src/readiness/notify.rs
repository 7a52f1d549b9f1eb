//! Notifications: what the server posts, and where. Receivers are configured once, in a
//! Secret of the server's namespace (their URLs and keys are secrets themselves); each gets
//! the events it asks for as generic JSON, a Slack-compatible message or a PagerDuty
//! Events v2 event. An event carries names, phases, reasons and numbers — never a value
//! of a Secret, a credential or a receiver's URL. Pure: the server sends what this builds.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dr::server::{DrPlanStatus, LastDrill, LastRun, Notified};

/// The Secret the server reads its receivers from (`--notifications-secret`).
pub const SECRET: &str = "lifeboat-notifications";
/// Its key holding the YAML.
pub const SECRET_KEY: &str = "notifications.yaml";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// A backup ended Failed or FailedValidation.
    BackupFailed,
    /// A backup ended PartiallyFailed.
    BackupPartiallyFailed,
    /// A DR plan's RPO is breached: no standby reads a backup recent enough.
    RpoBreached,
    /// A breached RPO is met again.
    RpoRestored,
    /// A drill the server ran ended.
    DrillOutcome,
    /// A failover ended (recorded in the plan by the CLI that ran it).
    FailoverOutcome,
    /// A failback ended.
    FailbackOutcome,
}

/// How a receiver wants its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// lifeboat's own JSON ([`generic`]).
    Generic,
    /// A Slack incoming webhook's `{"text": ...}` (Mattermost and others take it too).
    Slack,
    /// PagerDuty Events API v2 (`routingKey` needed).
    Pagerduty,
}

/// One receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receiver {
    /// Its name (in logs).
    pub name: String,
    /// Its format.
    pub format: Format,
    /// Where to POST (http or https).
    pub url: String,
    /// The events it gets (all when empty).
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// PagerDuty's integration key.
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// The receivers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Each receiver.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
}

/// Reads the receivers' YAML; the error names the field and the fix (never a value).
pub fn parse_config(text: &str) -> Result<Config, String> {
    let c: Config = serde_yaml_ng::from_str(text).map_err(|e| format!("{SECRET_KEY}: {e}"))?;
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in c.receivers.iter().enumerate() {
        if !names.insert(r.name.as_str()) {
            return Err(format!(
                "{SECRET_KEY}: receivers[{i}].name {:?} names two receivers",
                r.name
            ));
        }
        if !(r.url.starts_with("https://") || r.url.starts_with("http://")) {
            return Err(format!(
                "{SECRET_KEY}: receivers[{i}].url of {:?} is not an http(s) URL",
                r.name
            ));
        }
        if r.format == Format::Pagerduty && r.routing_key.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "{SECRET_KEY}: receivers[{i}] ({:?}) is pagerduty and needs routingKey (the integration key)",
                r.name
            ));
        }
    }
    Ok(c)
}

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Act now.
    Critical,
    /// Look soon.
    Warning,
    /// For the record.
    Info,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// How bad.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// The object: `Backup velero/nightly-20261205010000`, `DRPlan velero/shop`.
    pub object: String,
    /// When.
    pub time: DateTime<Utc>,
    /// Names and numbers (no secrets).
    pub details: BTreeMap<String, String>,
    /// Events with the same key are one incident (PagerDuty's dedup_key).
    pub dedup_key: String,
    /// This event ends the incident of its key.
    pub resolves: bool,
}

/// Whether `r` wants events of `kind`.
pub fn wants(r: &Receiver, kind: EventKind) -> bool {
    r.events.is_empty() || r.events.contains(&kind)
}

/// lifeboat's own JSON: the event, with `source` (the server's identity).
pub fn generic(e: &Event, source: &str) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    v["source"] = json!(source);
    v["app"] = json!("lifeboat");
    v
}

/// A Slack incoming webhook's message.
pub fn slack(e: &Event, source: &str) -> Value {
    let mark = match (e.resolves, e.severity) {
        (true, _) => ":white_check_mark:",
        (false, Severity::Critical) => ":red_circle:",
        (false, Severity::Warning) => ":warning:",
        (false, Severity::Info) => ":information_source:",
    };
    let details: Vec<String> = e.details.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    json!({"text": format!(
        "{mark} *lifeboat* ({source}): {}\n{}{}",
        e.summary,
        e.object,
        if details.is_empty() { String::new() } else { format!("\n{}", details.join("\n")) }
    )})
}

/// A PagerDuty Events API v2 event (trigger, or resolve for an event that ends its
/// incident).
pub fn pagerduty(e: &Event, source: &str, routing_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": if e.resolves { "resolve" } else { "trigger" },
        "dedup_key": e.dedup_key,
        "payload": {
            "summary": e.summary,
            "source": source,
            "severity": match e.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
                Severity::Info => "info",
            },
            "timestamp": e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "component": e.object,
            "group": "lifeboat",
            "class": format!("{:?}", e.kind),
            "custom_details": e.details,
        },
    })
}

/// What `r` is sent of `e`.
pub fn payload(r: &Receiver, e: &Event, source: &str) -> Value {
    match r.format {
        Format::Generic => generic(e, source),
        Format::Slack => slack(e, source),
        Format::Pagerduty => pagerduty(e, source, r.routing_key.as_deref().unwrap_or_default()),
    }
}

/// Whether a post that ended so is tried again: a transport error (`None`), a timeout,
/// 429 or a 5xx. Any other answer is final.
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

/// The retries of a post: 1 s doubling to 30 s, 5 retries (about a minute).
pub const RETRY: crate::rules::backoff::Backoff = crate::rules::backoff::Backoff {
    initial: Duration::from_secs(1),
    factor: 2,
    max: Duration::from_secs(30),
    retries: Some(5),
    jitter: true,
};

fn details(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A backup that ended Failed or FailedValidation (`schedule` empty when made by hand).
pub fn backup_failed(
    ns: &str,
    name: &str,
    schedule: &str,
    phase: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Event {
    Event {
        kind: EventKind::BackupFailed,
        severity: Severity::Critical,
        summary: format!("Backup {name} ended {phase}: {reason}"),
        object: format!("Backup {ns}/{name}"),
        time: now,
        details: details(&[
            ("backup", name.to_owned()),
            ("schedule", schedule.to_owned()),
            ("phase", phase.to_owned()),
            ("reason", reason.to_owned()),
        ]),
        dedup_key: format!("lifeboat/backup/{ns}/{name}"),
        resolves: false,
    }
}

/// A backup that ended PartiallyFailed with `errors` errors.
pub fn backup_partially_failed(
    ns: &str,
    name: &str,
    schedule: &str,
    errors: u64,
    now: DateTime<Utc>,
) -> Event {
    Event {
        kind: EventKind::BackupPartiallyFailed,
        severity: Severity::Warning,
        summary: format!(
            "Backup {name} ended PartiallyFailed with {errors} errors (stored; lifeboat backup describe {name} --details names them)"
        ),
        object: format!("Backup {ns}/{name}"),
        time: now,
        details: details(&[
            ("backup", name.to_owned()),
            ("schedule", schedule.to_owned()),
            ("errors", errors.to_string()),
        ]),
        dedup_key: format!("lifeboat/backup/{ns}/{name}"),
        resolves: false,
    }
}

/// A drill the server ran, ended.
pub fn drill_outcome(ns: &str, plan: &str, d: &LastDrill, now: DateTime<Utc>) -> Event {
    let passed = d.outcome == "Passed";
    Event {
        kind: EventKind::DrillOutcome,
        severity: if passed {
            Severity::Info
        } else {
            Severity::Warning
        },
        summary: format!(
            "Drill {} of DR plan {plan} on {}: {}{}{}",
            d.id,
            d.cluster,
            d.outcome,
            d.rto_seconds
                .map(|s| format!(", RTO {s:.0}s"))
                .unwrap_or_default(),
            d.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        object: format!("DRPlan {ns}/{plan}"),
        time: now,
        details: details(&[
            ("plan", plan.to_owned()),
            ("drill", d.id.clone()),
            ("cluster", d.cluster.clone()),
            ("outcome", d.outcome.clone()),
            (
                "rtoSeconds",
                d.rto_seconds.map(|s| format!("{s:.1}")).unwrap_or_default(),
            ),
            ("report", d.report.clone().unwrap_or_default()),
        ]),
        dedup_key: format!("lifeboat/drplan/{ns}/{plan}/drill"),
        resolves: passed,
    }
}

fn run_outcome(
    kind: EventKind,
    what: &str,
    ns: &str,
    plan: &str,
    r: &LastRun,
    now: DateTime<Utc>,
) -> Event {
    let ok = r.outcome == "Succeeded";
    Event {
        kind,
        severity: if ok {
            Severity::Info
        } else {
            Severity::Critical
        },
        summary: format!(
            "{what} {} of DR plan {plan} from {} to {}: {}{}",
            r.id,
            r.from,
            r.to,
            r.outcome,
            r.rto_seconds
                .map(|s| format!(", RTO {s:.0}s"))
                .unwrap_or_default()
        ),
        object: format!("DRPlan {ns}/{plan}"),
        time: now,
        details: details(&[
            ("plan", plan.to_owned()),
            ("id", r.id.clone()),
            ("from", r.from.clone()),
            ("to", r.to.clone()),
            ("outcome", r.outcome.clone()),
            (
                "rtoSeconds",
                r.rto_seconds.map(|s| format!("{s:.1}")).unwrap_or_default(),
            ),
            (
                "rpoSeconds",
                r.rpo_seconds.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("report", r.report.clone().unwrap_or_default()),
        ]),
        dedup_key: format!("lifeboat/drplan/{ns}/{plan}/{}", what.to_lowercase()),
        resolves: false,
    }
}

/// How recent a failover or failback must have ended to be notified of when the plan is
/// first seen (a server that starts on a plan does not announce last month's run).
pub const RECENT_RUN: Duration = Duration::from_secs(3600);

/// The RPO as one look at a plan saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpoLook {
    /// Breached now; None when it is not known (no standby answered): nothing changes.
    pub breached: Option<bool>,
    /// The RPO a failover would achieve now, in seconds (None: no backup).
    pub rpo: Option<u64>,
    /// The plan's objective, in seconds.
    pub objective: u64,
    /// How long a breach must hold before it is notified (a backup that runs just past
    /// the RPO does not page).
    pub hold: Duration,
}

/// What a look at a plan notifies of, and what the plan's status then records as
/// notified: a failover or failback not notified of yet (on a plan first seen, only one
/// that ended within [`RECENT_RUN`]), a breach of the RPO that held `hold`, and the RPO
/// met again after a notified breach.
pub fn plan_events(
    ns: &str,
    plan: &str,
    status: Option<&DrPlanStatus>,
    look: Option<RpoLook>,
    now: DateTime<Utc>,
) -> (Vec<Event>, Notified) {
    let first_sight = status.and_then(|s| s.notified.as_ref()).is_none();
    let before = status.and_then(|s| s.notified.clone()).unwrap_or_default();
    let mut after = before.clone();
    let mut out = Vec::new();
    let recent = |r: &LastRun| {
        let ran = chrono::Duration::milliseconds(
            r.rto_seconds
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| (s * 1000.0) as i64)
                .unwrap_or_default(),
        );
        let ended = r.started.0.checked_add_signed(ran).unwrap_or(r.started.0);
        now.signed_duration_since(ended)
            .to_std()
            .map(|age| age <= RECENT_RUN)
            .unwrap_or(true)
    };
    for (kind, what, run, seen) in [
        (
            EventKind::FailoverOutcome,
            "Failover",
            status.and_then(|s| s.last_failover.as_ref()),
            &mut after.failover,
        ),
        (
            EventKind::FailbackOutcome,
            "Failback",
            status.and_then(|s| s.last_failback.as_ref()),
            &mut after.failback,
        ),
    ] {
        if let Some(r) = run
            && seen.as_deref() != Some(r.id.as_str())
        {
            if !first_sight || recent(r) {
                out.push(run_outcome(kind, what, ns, plan, r, now));
            }
            *seen = Some(r.id.clone());
        }
    }
    let Some(look) = look else {
        return (out, after);
    };
    let age = look
        .rpo
        .map(|s| format!("{s}s"))
        .unwrap_or_else(|| "no backup".into());
    let event = |breached: bool| Event {
        kind: if breached {
            EventKind::RpoBreached
        } else {
            EventKind::RpoRestored
        },
        severity: if breached {
            Severity::Critical
        } else {
            Severity::Info
        },
        summary: if breached {
            format!(
                "DR plan {plan}: RPO breached — the newest backup a standby can restore: {age}; the objective is {}s",
                look.objective
            )
        } else {
            format!(
                "DR plan {plan}: RPO met again ({age}, objective {}s)",
                look.objective
            )
        },
        object: format!("DRPlan {ns}/{plan}"),
        time: now,
        details: details(&[
            ("plan", plan.to_owned()),
            (
                "rpoSeconds",
                look.rpo.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("objectiveSeconds", look.objective.to_string()),
        ]),
        dedup_key: format!("lifeboat/drplan/{ns}/{plan}/rpo"),
        resolves: !breached,
    };
    match look.breached {
        None => {}
        Some(true) => {
            let since = before.breach_seen.as_ref().map(|t| t.0).unwrap_or(now);
            after.breach_seen = Some(crate::api::velero::Time(since));
            let held = now
                .signed_duration_since(since)
                .to_std()
                .is_ok_and(|d| d >= look.hold);
            if before.rpo_breached != Some(true) && held {
                out.push(event(true));
                after.rpo_breached = Some(true);
            }
        }
        Some(false) => {
            after.breach_seen = None;
            if before.rpo_breached == Some(true) {
                out.push(event(false));
            }
            after.rpo_breached = Some(false);
        }
    }
    (out, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::Time;
    use rstest::rstest;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-12-05T12:00:00Z";

    fn run(id: &str, started: &str) -> LastRun {
        LastRun {
            id: id.into(),
            started: Time(at(started)),
            outcome: "Succeeded".into(),
            from: "east".into(),
            to: "west".into(),
            rto_seconds: Some(95.0),
            rpo_seconds: Some(300),
            report: None,
        }
    }

    #[test]
    fn the_config_names_what_is_wrong() {
        let ok = parse_config("receivers:\n- {name: chat, format: slack, url: 'https://hooks.example/x'}\n- {name: pd, format: pagerduty, url: 'https://events.example/v2/enqueue', routingKey: k, events: [BackupFailed, RpoBreached]}\n").unwrap();
        assert_eq!(ok.receivers.len(), 2);
        assert!(wants(&ok.receivers[0], EventKind::DrillOutcome));
        assert!(!wants(&ok.receivers[1], EventKind::DrillOutcome));
        for (text, want) in [
            (
                "receivers:\n- {name: pd, format: pagerduty, url: 'https://x'}\n",
                "receivers[0] (\"pd\") is pagerduty and needs routingKey",
            ),
            (
                "receivers:\n- {name: a, format: generic, url: 'ftp://x'}\n",
                "receivers[0].url of \"a\" is not an http(s) URL",
            ),
            (
                "receivers:\n- {name: a, format: generic, url: 'http://x'}\n- {name: a, format: slack, url: 'http://y'}\n",
                "receivers[1].name \"a\" names two receivers",
            ),
            (
                "receivers:\n- {name: a, format: teams, url: 'http://x'}\n",
                "unknown variant `teams`",
            ),
            (
                "receivers:\n- {name: a, format: generic, url: 'http://x', token: t}\n",
                "unknown field `token`",
            ),
        ] {
            let e = parse_config(text).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("ftp://x") || want.contains("ftp"), "{e}");
        }
    }

    #[test]
    fn payloads_in_each_format() {
        let e = backup_failed(
            "velero",
            "nightly-1",
            "nightly",
            "Failed",
            "location default unavailable",
            at(NOW),
        );
        insta::assert_json_snapshot!("generic", generic(&e, "prod-east"));
        insta::assert_json_snapshot!("slack", slack(&e, "prod-east"));
        insta::assert_json_snapshot!("pagerduty", pagerduty(&e, "prod-east", "KEY"));
    }

    #[rstest]
    #[case(None, true)]
    #[case(Some(503), true)]
    #[case(Some(429), true)]
    #[case(Some(408), true)]
    #[case(Some(400), false)]
    #[case(Some(404), false)]
    #[case(Some(200), false)]
    fn which_posts_are_tried_again(#[case] status: Option<u16>, #[case] want: bool) {
        assert_eq!(retryable(status), want);
    }

    fn kinds(v: &[Event]) -> Vec<(EventKind, bool)> {
        v.iter().map(|e| (e.kind, e.resolves)).collect()
    }

    #[test]
    fn each_run_is_notified_once() {
        let mut s = DrPlanStatus {
            last_failover: Some(run("f1", "2026-12-05T11:30:00Z")),
            ..Default::default()
        };
        let (ev, n) = plan_events("velero", "shop", Some(&s), None, at(NOW));
        assert_eq!(kinds(&ev), [(EventKind::FailoverOutcome, false)]);
        assert_eq!(
            ev[0].summary,
            "Failover f1 of DR plan shop from east to west: Succeeded, RTO 95s"
        );
        s.notified = Some(n);
        let (ev, _) = plan_events("velero", "shop", Some(&s), None, at(NOW));
        assert_eq!(kinds(&ev), []);
        // Seen before: a failback is posted however long it ran.
        s.last_failback = Some(run("b1", "2026-12-05T09:00:00Z"));
        let (ev, n) = plan_events("velero", "shop", Some(&s), None, at(NOW));
        assert_eq!(kinds(&ev), [(EventKind::FailbackOutcome, false)]);
        assert_eq!(n.failback.as_deref(), Some("b1"));
    }

    #[test]
    fn a_plan_first_seen_announces_only_recent_runs() {
        let mut long = run("f-long", "2026-12-05T10:30:00Z");
        long.rto_seconds = Some(75.0 * 60.0);
        let s = DrPlanStatus {
            last_failover: Some(long),
            last_failback: Some(run("b-old", "2026-11-01T00:00:00Z")),
            ..Default::default()
        };
        // The failover started 90 minutes ago but ended 15 minutes ago: posted. The
        // failback of last month: recorded, not posted.
        let (ev, n) = plan_events("velero", "shop", Some(&s), None, at(NOW));
        assert_eq!(kinds(&ev), [(EventKind::FailoverOutcome, false)]);
        assert_eq!(n.failback.as_deref(), Some("b-old"));
    }

    fn look(breached: Option<bool>) -> RpoLook {
        RpoLook {
            breached,
            rpo: Some(4000),
            objective: 900,
            hold: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_breach_is_notified_once_it_held() {
        let mut s = DrPlanStatus::default();
        let step = |s: &mut DrPlanStatus, b: Option<bool>, t: &str| {
            let (ev, n) = plan_events("velero", "shop", Some(s), Some(look(b)), at(t));
            s.notified = Some(n);
            kinds(&ev)
        };
        assert_eq!(step(&mut s, Some(true), "2026-12-05T12:00:00Z"), []);
        // Unknown (no standby answered): nothing changes, the breach still counts.
        assert_eq!(step(&mut s, None, "2026-12-05T12:02:00Z"), []);
        assert_eq!(
            step(&mut s, Some(true), "2026-12-05T12:05:00Z"),
            [(EventKind::RpoBreached, false)]
        );
        assert_eq!(step(&mut s, Some(true), "2026-12-05T12:06:00Z"), []);
        assert_eq!(
            step(&mut s, Some(false), "2026-12-05T12:07:00Z"),
            [(EventKind::RpoRestored, true)]
        );
        // A breach shorter than the hold (a backup running past the RPO): no page.
        assert_eq!(step(&mut s, Some(true), "2026-12-05T13:00:00Z"), []);
        assert_eq!(step(&mut s, Some(false), "2026-12-05T13:03:00Z"), []);
        assert_eq!(s.notified.as_ref().unwrap().breach_seen, None);
    }

    #[rstest]
    // (notified before, breached now) -> events, with no hold
    #[case::first_look_breached(None, true, vec![(EventKind::RpoBreached, false)])]
    #[case::first_look_met(None, false, vec![])]
    #[case::still_breached(Some(true), true, vec![])]
    #[case::restored(Some(true), false, vec![(EventKind::RpoRestored, true)])]
    #[case::breached_again(Some(false), true, vec![(EventKind::RpoBreached, false)])]
    #[case::still_met(Some(false), false, vec![])]
    fn the_rpo_is_notified_when_it_changes(
        #[case] before: Option<bool>,
        #[case] now: bool,
        #[case] want: Vec<(EventKind, bool)>,
    ) {
        let s = DrPlanStatus {
            notified: Some(Notified {
                rpo_breached: before,
                ..Default::default()
            }),
            ..Default::default()
        };
        let l = RpoLook {
            hold: Duration::ZERO,
            ..look(Some(now))
        };
        let (ev, n) = plan_events("velero", "shop", Some(&s), Some(l), at(NOW));
        assert_eq!(kinds(&ev), want);
        assert_eq!(n.rpo_breached, Some(now).filter(|_| true).or(before));
        if let Some(e) = ev.first() {
            assert_eq!(e.dedup_key, "lifeboat/drplan/velero/shop/rpo");
        }
    }
}
