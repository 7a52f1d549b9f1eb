//! Markdown renderings of `dr status` and `dr drill` reports (the JSON renderings are
//! their serde forms), for people, chat and tickets.

use std::fmt::Write;

use lifeboat_types::GoDuration;
use lifeboat_types::dr::status::{Health, Rpo};

use crate::drill::DrillReport;
use crate::status::PlanStatus;

fn dur(secs: u64) -> String {
    GoDuration(std::time::Duration::from_secs(secs)).to_string()
}

/// `dr status` as Markdown.
pub fn status_markdown(s: &PlanStatus) -> String {
    let mut out = String::new();
    let health = match s.health {
        Health::Ok => "OK",
        Health::Warning => "WARNING",
        Health::Critical => "CRITICAL",
    };
    let _ = writeln!(
        out,
        "# DR plan {}: {health}\n\nRPO {}, RTO {}, strategy {}; observed {}.\n",
        s.plan,
        dur(s.rpo_seconds),
        dur(s.rto_seconds),
        s.strategy,
        s.observed_at.to_rfc3339()
    );
    let _ = writeln!(
        out,
        "| cluster | role | ready | newest backup | RPO now | backups | lag |\n|---|---|---|---|---|---:|---:|"
    );
    for c in &s.clusters {
        let rpo = match &c.rpo {
            Rpo::Met { age_seconds, .. } => format!("{} (met)", dur(*age_seconds)),
            Rpo::Breached { age_seconds, .. } => format!("{} (BREACHED)", dur(*age_seconds)),
            Rpo::NoBackup => "no backup".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            if c.active { "active" } else { "standby" },
            if c.not_ready.is_empty() { "yes" } else { "NO" },
            c.backup
                .as_ref()
                .map(|b| format!("{} ({})", b.name, b.location))
                .unwrap_or_else(|| "-".into()),
            rpo,
            c.backups,
            c.lag_seconds.map(dur).unwrap_or_else(|| "-".into())
        );
    }
    if !s.findings.is_empty() {
        let _ = writeln!(out, "\n## Findings\n");
        for f in &s.findings {
            let _ = writeln!(out, "- {f}");
        }
    }
    out
}

/// `dr drill` as Markdown.
pub fn drill_markdown(r: &DrillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DR drill {} of plan {} on cluster {}: {}\n",
        r.id,
        r.plan,
        r.cluster,
        if r.passed { "PASSED" } else { "FAILED" }
    );
    let _ = writeln!(
        out,
        "Started {}; backup {} from location {}.\n\n- RTO: {} (objective {})\n- RPO: {} (objective {})\n- Namespaces: {}\n",
        r.started.to_rfc3339(),
        r.backup.as_deref().unwrap_or("-"),
        r.location.as_deref().unwrap_or("-"),
        r.rto_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "not reached".into()),
        dur(r.rto_objective_seconds),
        r.rpo_seconds.map(dur).unwrap_or_else(|| "-".into()),
        dur(r.rpo_objective_seconds),
        r.namespaces
            .iter()
            .map(|(k, v)| format!("{k} → {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    steps_table(&mut out, &r.steps);
    let _ = writeln!(
        out,
        "\n## Criteria\n\n| criterion | result | evidence |\n|---|---|---|"
    );
    for c in &r.criteria {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            c.name,
            match (c.ok, c.required) {
                (true, _) => "ok",
                (false, true) => "FAILED",
                (false, false) => "missed (not required)",
            },
            c.detail.replace('|', "\\|")
        );
    }
    out
}

/// `dr failover` as Markdown.
pub fn failover_markdown(r: &crate::failover::FailoverReport) -> String {
    use crate::failover::Outcome;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DR failover {} of plan {}: {} → {}: {}\n",
        r.id,
        r.plan,
        r.from,
        r.to,
        match r.outcome {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::RolledBack => "ROLLED BACK",
            Outcome::Failed => "FAILED (not everything undone)",
            Outcome::DryRun => "DRY RUN (nothing changed)",
        }
    );
    let _ = writeln!(
        out,
        "Started {}; backup {} from location {}; {} objects restored.\n\n- RTO: {} (objective {})\n- RPO: {} (objective {})\n",
        r.started.to_rfc3339(),
        r.backup,
        r.location,
        r.objects_restored,
        r.rto_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "not reached".into()),
        dur(r.rto_objective_seconds),
        r.rpo_seconds.map(dur).unwrap_or_else(|| "-".into()),
        dur(r.rpo_objective_seconds),
    );
    steps_table(&mut out, &r.steps);
    if !r.not_undone.is_empty() {
        let _ = writeln!(out, "\n## Not undone\n");
        for n in &r.not_undone {
            let _ = writeln!(out, "- {n}");
        }
    }
    let _ = writeln!(out, "\nNext: {}", r.next);
    out
}

fn steps_table(out: &mut String, steps: &[crate::steps::Step]) {
    let _ = writeln!(
        out,
        "## Steps\n\n| step | started | took | outcome |\n|---|---|---:|---|"
    );
    for s in steps {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}s | {}: {} |",
            s.name,
            s.started.format("%H:%M:%S"),
            s.seconds,
            if s.ok { "ok" } else { "FAILED" },
            s.detail.replace('|', "\\|")
        );
    }
}
