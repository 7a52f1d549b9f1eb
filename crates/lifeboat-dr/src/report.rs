//! Markdown renderings of `dr status` and `dr drill` reports (the JSON renderings are
//! their serde forms), for people, chat and tickets.

use std::fmt::Write;

use lifeboat_types::GoDuration;
use lifeboat_types::dr::status::{Health, Rpo};

use crate::drill::DrillReport;
use crate::status::PlanStatus;

/// Stores a run's report in `store` as `metadata/dr/<plan>/<base>.json` and `.md`
/// (never replacing one: a run's id is its own). Ok with the JSON's path; Err says why
/// it could not be stored (a read-only location, an unreachable bucket).
pub async fn store_report<T: serde::Serialize>(
    store: &lifeboat_engine::storage::Store,
    plan: &str,
    base: &str,
    report: &T,
    markdown: &str,
) -> Result<String, String> {
    use lifeboat_types::format::layout::dr_report;
    let json_path = dr_report(store.prefix(), plan, &format!("{base}.json"));
    let md_path = dr_report(store.prefix(), plan, &format!("{base}.md"));
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    let said = |e: lifeboat_engine::storage::StorageError| {
        format!(
            "the report was not stored in location {}: {}",
            store.name(),
            lifeboat_engine::error::chain(&e)
        )
    };
    store.create(&json_path, json).await.map_err(said)?;
    store
        .create(&md_path, markdown.as_bytes().to_vec())
        .await
        .map_err(said)?;
    Ok(json_path)
}

/// A report that can be stored beside the backups.
pub trait Stored: serde::Serialize {
    /// Its plan's name.
    fn plan(&self) -> &str;
    /// Its Markdown rendering.
    fn markdown(&self) -> String;
    /// Where it is stored.
    fn stored_at(&mut self) -> &mut Option<String>;
    /// Where a failure to store it is told.
    fn warnings(&mut self) -> &mut Vec<String>;
}

/// Stores `report` in `store` as `<base>.json` and `.md` ([`store_report`]); its
/// `storedAt` says where, or a warning why not.
pub async fn store_in<T: Stored>(
    store: &lifeboat_engine::storage::Store,
    base: &str,
    report: &mut T,
) {
    let path = lifeboat_types::format::layout::dr_report(
        store.prefix(),
        report.plan(),
        &format!("{base}.json"),
    );
    *report.stored_at() = Some(format!("{}: {path}", store.name()));
    let md = report.markdown();
    let plan = report.plan().to_owned();
    if let Err(e) = store_report(store, &plan, base, &*report, &md).await {
        *report.stored_at() = None;
        report.warnings().push(e);
    }
}

impl Stored for crate::failover::FailoverReport {
    fn plan(&self) -> &str {
        &self.plan
    }
    fn markdown(&self) -> String {
        failover_markdown(self)
    }
    fn stored_at(&mut self) -> &mut Option<String> {
        &mut self.stored_at
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
}

impl Stored for crate::drill::DrillReport {
    fn plan(&self) -> &str {
        &self.plan
    }
    fn markdown(&self) -> String {
        drill_markdown(self)
    }
    fn stored_at(&mut self) -> &mut Option<String> {
        &mut self.stored_at
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
}

impl Stored for crate::failback::FailbackReport {
    fn plan(&self) -> &str {
        &self.plan
    }
    fn markdown(&self) -> String {
        failback_markdown(self)
    }
    fn stored_at(&mut self) -> &mut Option<String> {
        &mut self.stored_at
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
}

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
    warnings_and_place(&mut out, &r.warnings, r.stored_at.as_deref(), None);
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
    warnings_and_place(&mut out, &r.warnings, r.stored_at.as_deref(), Some(&r.next));
    out
}

/// `dr failback` as Markdown.
pub fn failback_markdown(r: &crate::failback::FailbackReport) -> String {
    use crate::failover::Outcome;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DR failback {} of plan {}: {} → {}: {}\n",
        r.id,
        r.plan,
        r.from,
        r.to,
        match r.outcome {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::RolledBack => "UNDONE",
            Outcome::Failed => "FAILED (not everything undone)",
            Outcome::DryRun => "DRY RUN (nothing changed)",
        }
    );
    let _ = writeln!(
        out,
        "Started {}; fresh backup {} in location {}; {} objects restored; traffic steps taken: {}; all traffic on {} after {}.\n",
        r.started.to_rfc3339(),
        r.backup,
        r.location,
        r.objects_restored,
        if r.weights_moved.is_empty() {
            "none".to_owned()
        } else {
            r.weights_moved
                .iter()
                .map(|w| format!("{w}%"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        r.to,
        r.seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "-".into()),
    );
    steps_table(&mut out, &r.steps);
    if !r.not_undone.is_empty() {
        let _ = writeln!(out, "\n## Not undone\n");
        for n in &r.not_undone {
            let _ = writeln!(out, "- {n}");
        }
    }
    warnings_and_place(&mut out, &r.warnings, r.stored_at.as_deref(), Some(&r.next));
    out
}

/// `dr sync` as Markdown.
pub fn sync_markdown(r: &crate::standby::SyncReport) -> String {
    use crate::standby::SyncOutcome;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DR sync of plan {} on {}: {}\n\nBackup {} from location {}; {} objects created or updated; {} pruned; {:.1}s.\n",
        r.plan,
        r.cluster,
        match r.outcome {
            SyncOutcome::Synced => "SYNCED",
            SyncOutcome::UpToDate => "UP TO DATE",
            SyncOutcome::Failed => "FAILED",
        },
        r.backup,
        r.location,
        r.objects_restored,
        r.pruned.len(),
        r.seconds
    );
    steps_table(&mut out, &r.steps);
    out
}

/// A run report's end: its warnings, what to do next, where it is stored.
fn warnings_and_place(
    out: &mut String,
    warnings: &[String],
    stored: Option<&str>,
    next: Option<&str>,
) {
    if !warnings.is_empty() {
        let _ = writeln!(out, "\n## Warnings\n");
        for w in warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    if let Some(next) = next {
        let _ = writeln!(out, "\nNext: {next}");
    }
    if let Some(at) = stored {
        let _ = writeln!(out, "\nStored in location {at}.");
    }
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
