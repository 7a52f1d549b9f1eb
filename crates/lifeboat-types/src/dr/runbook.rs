//! `dr runbook`: a DR plan as the page a person follows at 3 a.m. — whom to call, the
//! objectives, each service's numbers and the last drill's measured RTO, the exact
//! commands in order, what to check, and what the audit found. Pure: the facts read from
//! the cluster come in as [`Facts`]; the same Markdown is rendered to HTML by
//! [`crate::format::html`].

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::GoDuration;
use crate::dr::plan::{HookPoint, Plan, Strategy, TIERS};
use crate::dr::server::{LastDrill, LastRun};
use crate::format::markdown::cell;
use crate::readiness::audit::Finding;

/// What was read of the plan's clusters for the runbook.
#[derive(Debug, Clone)]
pub struct Facts {
    /// When the runbook was made.
    pub generated: DateTime<Utc>,
    /// The server's last drill of the plan (from its DRPlan resource), or why it is not
    /// known.
    pub last_drill: Result<Option<LastDrill>, String>,
    /// The last failover recorded in the plan's DRPlan resource.
    pub last_failover: Option<LastRun>,
    /// The audit of the protected namespaces on the active cluster, or why it did not run.
    pub findings: Result<Vec<Finding>, String>,
}

fn go(d: Duration) -> String {
    GoDuration(Duration::from_secs(d.as_secs())).to_string()
}

fn point(p: HookPoint) -> &'static str {
    match p {
        HookPoint::BeforeFence => "before fence",
        HookPoint::AfterFence => "after fence",
        HookPoint::BeforePromote => "before promote",
        HookPoint::AfterPromote => "after promote",
        HookPoint::TrafficSwitch => "traffic switch",
        HookPoint::Notify => "notify",
    }
}

/// The runbook of `plan`, read from `plan_file` (the commands name it), as Markdown.
pub fn markdown(plan: &Plan, plan_file: &str, facts: &Facts) -> String {
    let mut o = String::new();
    let spec = &plan.spec;
    let active = spec.clusters.iter().find(|c| c.active);
    let standbys: Vec<&str> = spec
        .clusters
        .iter()
        .filter(|c| !c.active)
        .map(|c| c.name.as_str())
        .collect();
    let first_standby = standbys.first().copied().unwrap_or("STANDBY");
    let active_name = active.map(|c| c.name.as_str()).unwrap_or("ACTIVE");
    let _ = writeln!(o, "# DR runbook: {}\n", plan.name);
    let _ = writeln!(
        o,
        "Protects namespace{} {} on cluster {active_name} (active){}. Strategy: {}. Generated {} from {plan_file}; regenerate with `lifeboat dr runbook {plan_file}` after every change of the plan.\n",
        if spec.namespaces.len() == 1 { "" } else { "s" },
        spec.namespaces.join(", "),
        if standbys.is_empty() {
            String::new()
        } else {
            format!(", standby {}", standbys.join(", "))
        },
        spec.strategy,
        facts.generated.format("%Y-%m-%d %H:%M UTC"),
    );

    // Contacts first: the reader's first question.
    o.push_str("## Contacts and escalation\n\n");
    let rb = spec.runbook.clone().unwrap_or_default();
    if rb.contacts.is_empty() {
        o.push_str("The plan names no contacts (`spec.runbook.contacts`): add them before you need them.\n\n");
    } else {
        o.push_str("| role | who | reach |\n|---|---|---|\n");
        for c in &rb.contacts {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                cell(&c.role),
                cell(&c.name),
                cell(&c.reach)
            );
        }
        o.push('\n');
    }
    if !rb.escalation.is_empty() {
        o.push_str("Escalate:\n\n");
        for e in &rb.escalation {
            let _ = writeln!(o, "- after {}: {}", e.after, e.to);
        }
        o.push('\n');
    }

    o.push_str("## Objectives\n\n");
    let tier = spec.tier.as_deref().unwrap_or("custom");
    let _ = writeln!(
        o,
        "This plan: **{tier}**, RPO {} (the most data that may be lost), RTO {} (the longest the services may be down).\n",
        go(plan.rpo),
        go(plan.rto)
    );
    o.push_str("| tier | RPO | RTO |\n|---|---|---|\n");
    for t in TIERS {
        let mark = if spec
            .tier
            .as_deref()
            .and_then(crate::dr::plan::tier)
            .map(|x| x.name)
            == Some(t.name)
        {
            " (this plan)"
        } else {
            ""
        };
        let _ = writeln!(o, "| {}{mark} | {} | {} |", t.name, go(t.rpo), go(t.rto));
    }
    o.push('\n');

    o.push_str("## Services\n\n");
    let measured = match &facts.last_drill {
        Ok(Some(d)) => match d.rto_seconds {
            Some(s) => format!("{s:.0}s ({}, drill {} on {})", d.outcome, d.id, d.cluster),
            None => format!("not measured ({}, drill {})", d.outcome, d.id),
        },
        Ok(None) => "no drill recorded".into(),
        Err(e) => format!("unknown: {e}"),
    };
    let mut services = rb.services.clone();
    services.sort_by_key(|s| (s.recovery_priority.unwrap_or(u32::MAX), s.name.clone()));
    o.push_str("| order | service | namespace | criticality | RPO | RTO | last measured RTO | depends on | impact |\n|---|---|---|---|---|---|---|---|---|\n");
    if services.is_empty() {
        for ns in &spec.namespaces {
            let _ = writeln!(
                o,
                "| - | {ns} | {ns} | - | {} | {} | {} | - | - |",
                go(plan.rpo),
                go(plan.rto),
                cell(&measured)
            );
        }
    } else {
        for s in &services {
            let impact: Vec<String> = s.impact.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.recovery_priority
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                cell(&s.name),
                s.namespace.as_deref().unwrap_or("-"),
                s.criticality.as_deref().unwrap_or("-"),
                s.rpo.map(|d| go(d.0)).unwrap_or_else(|| go(plan.rpo)),
                s.rto.map(|d| go(d.0)).unwrap_or_else(|| go(plan.rto)),
                cell(&measured),
                cell(&if s.dependencies.is_empty() {
                    "-".to_owned()
                } else {
                    s.dependencies.join(", ")
                }),
                if impact.is_empty() {
                    "-".to_owned()
                } else {
                    impact.join(", ")
                },
            );
        }
        for s in &services {
            if let Some(r) = s.rpo.filter(|r| r.0 < plan.rpo) {
                let _ = writeln!(
                    o,
                    "\n> **{}** asks for an RPO of {r}, tighter than the plan's {}: the plan's backups cannot keep it. Give it a plan of its own, or a tier that can.",
                    s.name,
                    go(plan.rpo)
                );
            }
            if let Some(r) = s.rto.filter(|r| r.0 < plan.rto) {
                let _ = writeln!(
                    o,
                    "\n> **{}** asks for an RTO of {r}, tighter than the plan's {}.",
                    s.name,
                    go(plan.rto)
                );
            }
        }
    }
    o.push('\n');

    if let Some(f) = &facts.last_failover {
        let _ = writeln!(
            o,
            "Last failover: {} from {} to {} on {}, {}{}.\n",
            f.id,
            f.from,
            f.to,
            f.started.0.format("%Y-%m-%d %H:%M UTC"),
            f.outcome,
            f.rto_seconds
                .map(|s| format!(", RTO {s:.0}s"))
                .unwrap_or_default()
        );
    }

    o.push_str("## 1. Assess\n\n");
    let _ = writeln!(
        o,
        "```\nlifeboat dr status {plan_file}          # RPO now per cluster, readiness, coverage (exit 0 healthy, 3 warning, 1 critical)\n```\n"
    );
    o.push_str("Fail over when the active cluster cannot serve and will not within the RTO. A failover refuses while the active cluster is healthy; `--force` is for a planned switch.\n\n");

    o.push_str("## 2. Fail over\n\n");
    let _ = writeln!(
        o,
        "```\nlifeboat dr failover {plan_file} --to {first_standby} --dry-run   # every step, and what it would change\nlifeboat dr failover {plan_file} --to {first_standby} --report-dir ./dr-reports\n```\n"
    );
    let what = match spec.strategy {
        Strategy::WarmStandby => {
            "The warm standby already holds the objects at 0 replicas: the failover scales them up to their kept counts."
        }
        Strategy::PilotLight | Strategy::BackupRestore => {
            "The newest backup the standby can read is restored there."
        }
    };
    let _ = writeln!(
        o,
        "The old active cluster is fenced when it answers: the schedules of these namespaces paused, Deployments and StatefulSets at 0 with their counts kept in `{}`, DaemonSets held off their nodes. {what} When a step fails, lifeboat rolls back on its own and names what it could not undo. The report (Markdown and JSON) states the RTO achieved and the data lost (RPO).\n",
        spec.replicas.annotation
    );
    if !spec.hooks.is_empty() {
        o.push_str(
            "Hooks the plan runs:\n\n| point | hook | does | on error |\n|---|---|---|---|\n",
        );
        for h in &spec.hooks {
            let does = if let Some(e) = &h.exec {
                format!(
                    "exec `{}` in pods {} of {}",
                    e.command.join(" "),
                    e.selector,
                    e.namespace
                )
            } else if let Some(w) = &h.webhook {
                format!("POST {}", crate::rules::secrets::redact_url(w))
            } else {
                format!("runs `{}`", h.command.join(" "))
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                point(h.at),
                cell(&h.name),
                cell(&does),
                match h.on_error {
                    crate::dr::plan::OnError::Fail => "fail",
                    crate::dr::plan::OnError::Continue => "continue",
                }
            );
        }
        o.push('\n');
    }

    o.push_str("## 3. Verify\n\n");
    let v = &spec.verification;
    if v.workloads_available {
        let _ = writeln!(
            o,
            "- Every Deployment, StatefulSet and DaemonSet of {} Available (lifeboat waits up to {}).",
            spec.namespaces.join(", "),
            go(v.timeout())
        );
    }
    for c in &v.commands {
        let _ = writeln!(o, "- `{}` succeeds.", c.join(" "));
    }
    let by_hand: Vec<String> = spec
        .namespaces
        .iter()
        .map(|ns| format!("`kubectl -n {ns} get pods,pvc`"))
        .collect();
    let _ = writeln!(
        o,
        "- By hand: {}; the service answers its users.\n",
        by_hand.join(", ")
    );

    o.push_str("## 4. Fail back, once the original cluster is healthy\n\n");
    let _ = writeln!(
        o,
        "```\nlifeboat dr failback {plan_file} --from {first_standby} --to {active_name} --dry-run\nlifeboat dr failback {plan_file} --from {first_standby} --to {active_name}\n```\n"
    );
    o.push_str("A fresh backup of the acting cluster is restored into the original, traffic moves back in steps (10, 30, 50, 70, 90, 100 percent through the plan's traffic-switch hooks, each checked), and the acting cluster returns to standby.\n\n");

    o.push_str("## 5. Afterwards\n\n");
    let _ = writeln!(
        o,
        "- Edit {plan_file}: the cluster now serving is `active: true`.\n- `lifeboat backup get` on the serving cluster: its schedules run and complete.\n- Write the timeline from the failover report; file the post-mortem.\n- Drill again: `lifeboat dr drill {plan_file} --on {first_standby}`.\n"
    );

    o.push_str("## Readiness findings\n\n");
    match &facts.findings {
        Err(e) => {
            let _ = writeln!(o, "The audit did not run: {e}.\n");
        }
        Ok(f) if f.is_empty() => {
            o.push_str("The audit of the protected namespaces found nothing.\n\n")
        }
        Ok(f) => {
            let _ = writeln!(
                o,
                "From `lifeboat audit --plan {plan_file}` on {active_name} when this runbook was made:\n"
            );
            o.push_str("| severity | rule | object | fix |\n|---|---|---|---|\n");
            for x in f {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    x.severity,
                    x.rule,
                    cell(&x.object),
                    cell(&x.fix)
                );
            }
            o.push('\n');
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dr::plan::parse;
    use crate::readiness::audit::{Rule, Severity};

    const PLAN: &str = "apiVersion: lifeboat.dev/v1alpha1
kind: DRPlan
metadata: {name: shop}
spec:
  namespaces: [shop, payments]
  tier: tier-1
  strategy: warm-standby
  clusters:
  - {name: prod-east, context: prod, active: true, locations: [default]}
  - {name: dr-west, kubeconfig: /etc/dr/west.yaml, locations: [default]}
  hooks:
  - {name: dns, at: trafficSwitch, command: [./switch-dns.sh]}
  - {name: chat, at: notify, webhook: 'https://hooks.example/dr', onError: Continue}
  verification:
    commands: [[curl, -sf, 'http://shop.example/health']]
  runbook:
    contacts:
    - {role: on-call, name: PagerDuty rotation k8s-platform, reach: '+1 555 0100'}
    - {role: backup owner, name: Platform team, reach: platform-team@example.com}
    escalation:
    - {after: 15m, to: '#incident-response'}
    - {after: 1h, to: VP Engineering}
    services:
    - {name: payments-api, namespace: payments, criticality: critical, rpo: 5m, rto: 15m, dependencies: [postgres], impact: {financial: high, regulatory: high}, recoveryPriority: 1}
    - {name: storefront, namespace: shop, criticality: high, recoveryPriority: 2}
";

    fn facts() -> Facts {
        Facts {
            generated: "2026-12-05T03:00:00Z".parse().unwrap(),
            last_drill: Ok(Some(LastDrill {
                id: "q4".into(),
                cluster: "dr-west".into(),
                started: crate::api::velero::Time("2026-10-01T03:00:00Z".parse().unwrap()),
                outcome: "Passed".into(),
                rto_seconds: Some(412.4),
                message: None,
                report: None,
            })),
            last_failover: None,
            findings: Ok(vec![Finding {
                severity: Severity::Medium,
                rule: Rule::SingleReplica,
                object: "Deployment shop/web".into(),
                detail: "1 replica".into(),
                why: Rule::SingleReplica.why().into(),
                fix: "run at least 2 replicas".into(),
            }]),
        }
    }

    #[test]
    fn the_runbook_of_a_full_plan() {
        let plan = parse(PLAN, "shop-dr.yaml").unwrap();
        insta::assert_snapshot!(markdown(&plan, "shop-dr.yaml", &facts()));
    }

    #[test]
    fn a_hooks_webhook_is_shown_without_its_token() {
        let plan = parse(
            &PLAN.replace(
                "https://hooks.example/dr",
                "https://hooks.slack.example/services/T0/B0/s3cret",
            ),
            "shop-dr.yaml",
        )
        .unwrap();
        let md = markdown(&plan, "shop-dr.yaml", &facts());
        assert!(
            md.contains("| notify | chat | POST https://hooks.slack.example/… | continue |"),
            "{md}"
        );
        assert!(!md.contains("s3cret"), "{md}");
    }

    #[test]
    fn a_bare_plan_says_what_is_missing() {
        let plan = parse(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: DRPlan\nmetadata: {name: bare}\nspec:\n  namespaces: [shop]\n  rpo: 1h\n  rto: 4h\n  clusters:\n  - {name: a, active: true, locations: [default]}\n  - {name: b, locations: [default]}\n",
            "bare.yaml",
        )
        .unwrap();
        let f = Facts {
            last_drill: Err("cluster a did not answer".into()),
            findings: Err("cluster a did not answer".into()),
            ..facts()
        };
        let md = markdown(&plan, "bare.yaml", &f);
        assert!(
            md.contains("The plan names no contacts (`spec.runbook.contacts`)"),
            "{md}"
        );
        assert!(md.contains("| - | shop | shop | - | 1h0m0s | 4h0m0s | unknown: cluster a did not answer | - | - |"), "{md}");
        assert!(
            md.contains("The audit did not run: cluster a did not answer."),
            "{md}"
        );
        assert!(
            md.contains("lifeboat dr failover bare.yaml --to b --dry-run"),
            "{md}"
        );
    }
}
