//! `dr failback`: the protected namespaces go back from the cluster that took over (the
//! acting cluster, `--from`, by default the plan's active one) to the original
//! (`--to`, by default the plan's first standby). A fresh backup of the acting cluster is
//! written to a location both read; it is restored into the original over what fencing
//! left there (existing objects updated to the backup's state, fenced workloads scaled to
//! their kept counts); the original is verified; traffic moves in the guides' weighted
//! steps (10/30/50/70/90/100 through the plan's `trafficSwitch` hooks, with the step in
//! `LIFEBOAT_DR_WEIGHT`), the plan's checks run after each; then the acting cluster
//! returns to standby (fenced: schedules paused, workloads at 0 with their counts kept)
//! and the original's schedules that fencing paused are resumed.
//!
//! When a step before the acting cluster is fenced fails, the failback is undone: traffic
//! sent back (`trafficSwitch` with weight 0) when some had moved, the original fenced
//! again, the namespaces this run's restore created there deleted. The acting cluster
//! was not touched and keeps serving.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use lifeboat_engine::backup::{BackupOptions, Progress, run_backup};
use lifeboat_engine::catalog;
use lifeboat_engine::error::chain;
use lifeboat_engine::restore::Outcome as ItemOutcome;
use lifeboat_engine::storage::Store;
use lifeboat_engine::verify::cleanup_scratch;
use lifeboat_types::api::selector::Selector;
use lifeboat_types::api::velero::{Backup, BackupPhase, BackupSpec};
use lifeboat_types::dr::failover::{FAILBACK_WEIGHTS, Start, failback_may_start, valid_weights};
use lifeboat_types::dr::plan::{HookPoint, Plan};
use lifeboat_types::dr::status::not_ready;

use crate::fence::{Fenced, fence, resume_schedules, running};
use crate::hooks::{HookTargets, run_at};
use crate::report::{list_section, steps_table, warnings_and_place};
use crate::status::quick_readiness;
use crate::steps::{FailoverError, Outcome};
use crate::steps::{
    Recorder, RestoreInto, Step, named_cluster, restore_protected, restored_by, run_checks, verify,
};
use crate::target::{LocalLocations, Target, reach};

/// How a failback is run.
#[derive(Debug, Clone, Default)]
pub struct FailbackOptions {
    /// The cluster serving now (default: the plan's active one).
    pub from: Option<String>,
    /// The original cluster to return to (default: the plan's first standby).
    pub to: Option<String>,
    /// The traffic steps in percent (default: the guides' 10/30/50/70/90/100).
    pub weights: Option<Vec<u8>>,
    /// Print the steps and what each would change; touch nothing.
    pub dry_run: bool,
    /// The id in the backup's and restore's names (default: from the clock).
    pub id: Option<String>,
}

/// A failback's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailbackReport {
    /// The plan.
    pub plan: String,
    /// The acting cluster (it returns to standby).
    pub from: String,
    /// The original cluster (it serves again).
    pub to: String,
    /// The run's id (in its backup's and restore's names).
    pub id: String,
    /// The fresh backup of the acting cluster.
    pub backup: String,
    /// Where it was written and read.
    pub location: String,
    /// When the failback started.
    pub started: DateTime<Utc>,
    /// How it ended.
    pub outcome: Outcome,
    /// From the start until all traffic was on the original, in seconds.
    pub seconds: Option<f64>,
    /// Objects the restore created or updated.
    pub objects_restored: u64,
    /// The traffic steps that were taken (percent on the original).
    pub weights_moved: Vec<u8>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// What an undo could not undo.
    pub not_undone: Vec<String>,
    /// What the run could not make safe.
    pub warnings: Vec<String>,
    /// What to do next.
    pub next: String,
    /// Where the report is stored (None: a dry run, or not stored: see warnings).
    pub stored_at: Option<String>,
}

fn refuse(plan: &Plan, why: String) -> FailoverError {
    FailoverError::Refused {
        plan: plan.name.clone(),
        why,
    }
}

/// The first location the acting cluster writes that the original reads too: its name,
/// the acting cluster's store (written) and the original's (read).
fn shared_location(from: &Target, to: &Target) -> Result<(String, Store, Store), String> {
    let mut said = Vec::new();
    for (name, store) in &from.stores {
        let Some((_, theirs)) = to.stores.iter().find(|(n, _)| n == name) else {
            continue;
        };
        match (store, theirs) {
            (Ok(w), Ok(r)) if !w.is_read_only() => {
                return Ok((name.clone(), w.clone(), r.clone()));
            }
            (Ok(_), Ok(_)) => said.push(format!("{name}: read-only for {}", from.name)),
            (Err(e), _) => said.push(format!("{name}: {e}")),
            (_, Err(e)) => said.push(format!("{name} (from {}): {e}", to.name)),
        }
    }
    Err(if said.is_empty() {
        format!(
            "clusters {} and {} share no location: list one location under both, which {} can write",
            from.name, to.name, from.name
        )
    } else {
        format!("no shared location can be used: {}", said.join("; "))
    })
}

/// Runs a failback of `plan` (see the module's doc).
pub async fn failback(
    plan: &Plan,
    opts: &FailbackOptions,
    local: LocalLocations<'_>,
) -> Result<FailbackReport, FailoverError> {
    let from_plan = match &opts.from {
        Some(n) => named_cluster(plan, n)?,
        None => plan.active(),
    };
    let to_plan = match &opts.to {
        Some(n) => named_cluster(plan, n)?,
        None => plan
            .standbys()
            .find(|c| c.name != from_plan.name)
            .unwrap_or(from_plan),
    };
    if from_plan.name == to_plan.name {
        return Err(refuse(
            plan,
            format!(
                "--from and --to both name cluster {}: fail back from the cluster serving now to the original",
                to_plan.name
            ),
        ));
    }
    let weights = opts
        .weights
        .clone()
        .unwrap_or_else(|| FAILBACK_WEIGHTS.to_vec());
    valid_weights(&weights).map_err(|e| refuse(plan, format!("--weights: {e}")))?;
    let id = opts.id.clone().unwrap_or_else(crate::steps::clock_id);
    lifeboat_types::dr::drill::valid_run_id(&id).map_err(|e| refuse(plan, e))?;
    let started = Utc::now();
    let clock = Instant::now();
    let mut rec = Recorder::default();
    let dry = opts.dry_run;

    // Assess: nothing changes until every check here passed.
    let at = rec.start();
    let (from, to): (Target, Target) =
        futures::join!(reach(from_plan, local), reach(to_plan, local));
    let unreachable = |t: &Target| match &t.cluster {
        Ok(c) => Ok(c.clone()),
        Err(why) => Err(FailoverError::Unreachable {
            plan: plan.name.clone(),
            name: t.name.clone(),
            why: why.clone(),
        }),
    };
    let from_cluster = unreachable(&from)?;
    let to_cluster = unreachable(&to)?;
    let unanswered = |name: &str, why: String| FailoverError::Unreachable {
        plan: plan.name.clone(),
        name: name.to_owned(),
        why,
    };
    let from_running = running(plan, &from_cluster)
        .await
        .map_err(|e| unanswered(&from_plan.name, e))?;
    let to_running = running(plan, &to_cluster)
        .await
        .map_err(|e| unanswered(&to_plan.name, e))?;
    if let Start::Refuse(why) = failback_may_start(
        &from_plan.name,
        from_running.len(),
        &to_plan.name,
        &to_running,
    ) {
        return Err(refuse(plan, why));
    }
    let to_not_ready = not_ready(&quick_readiness(&to).await, false);
    if !to_not_ready.is_empty() {
        return Err(refuse(
            plan,
            format!(
                "cluster {} cannot serve again: {}",
                to_plan.name,
                to_not_ready.join("; ")
            ),
        ));
    }
    let (location, write_store, read_store) =
        shared_location(&from, &to).map_err(|e| refuse(plan, e))?;
    let name = lifeboat_types::dr::drill::scratch_namespace(&plan.name, "failback", &id);
    if write_store
        .exists(&write_store.backup_paths(&name).metadata())
        .await
        .unwrap_or(false)
    {
        return Err(refuse(
            plan,
            format!("backup {name} exists already in location {location}: run with another --id"),
        ));
    }
    if catalog::get_restore(&read_store, &name).await.is_ok() {
        return Err(refuse(
            plan,
            format!("restore {name} exists already in location {location}: run with another --id"),
        ));
    }
    rec.done(
        "assess",
        at,
        true,
        format!(
            "{} serves; {} is ready; backing up {} to location {location} as {name}",
            from_plan.name,
            to_plan.name,
            plan.spec.namespaces.join(", ")
        ),
    );

    let mut facts = std::collections::BTreeMap::from([
        ("PLAN".to_owned(), plan.name.clone()),
        ("FROM".to_owned(), from_plan.name.clone()),
        ("TO".to_owned(), to_plan.name.clone()),
        ("CLUSTER".to_owned(), to_plan.name.clone()),
        ("NAMESPACES".to_owned(), plan.spec.namespaces.join(",")),
        ("BACKUP".to_owned(), name.clone()),
    ]);
    let mut objects_restored = 0;
    let mut created: Option<Vec<String>> = None;
    let mut moved: Vec<u8> = Vec::new();
    let mut all_moved_at = None;
    let mut fenced_from: Vec<Fenced> = Vec::new();
    // The original's CronJobs released with its workloads.
    let mut released: Vec<crate::standby::Released> = Vec::new();
    // Up to here a failure is undone; after the acting cluster's fence it is reported.
    let mut past_fence = false;

    let run = async {
        let on = HookTargets {
            target: to_plan,
            fenced: Some(&from_cluster),
            taking_over: Some(&to_cluster),
            facts: &facts,
            dry,
        };
        run_at(plan, HookPoint::Notify, &on, &mut rec).await?;
        let at = rec.start();
        let step = format!("backup on {}", from_plan.name);
        if dry {
            rec.done(
                &step,
                at,
                true,
                format!(
                    "would back up {} to location {location} as {name}",
                    plan.spec.namespaces.join(", ")
                ),
            );
        } else {
            let spec = BackupSpec {
                included_namespaces: plan.spec.namespaces.clone(),
                label_selector: plan
                    .spec
                    .selector
                    .as_deref()
                    .and_then(|s| Selector::parse(s).ok())
                    .map(|s| s.to_label_selector()),
                storage_location: Some(write_store.name().to_owned()),
                ..Default::default()
            };
            let r = run_backup(
                &from_cluster,
                &write_store,
                Backup::new(&name, spec),
                &BackupOptions::default(),
                Arc::new(Progress::default()),
            )
            .await;
            let (ok, detail) = match &r {
                Ok(b) => {
                    let s = b.status.clone().unwrap_or_default();
                    let p = s.progress.unwrap_or_default();
                    (
                        s.phase == BackupPhase::Completed,
                        format!(
                            "backup {name}: {}, {} items, {} errors, {} warnings",
                            s.phase, p.items_backed_up, s.errors, s.warnings
                        ),
                    )
                }
                Err(e) => (false, format!("backup {name}: {}", chain(e))),
            };
            rec.done(&step, at, ok, detail.clone());
            if !ok {
                return Err(detail);
            }
        }
        run_at(plan, HookPoint::BeforePromote, &on, &mut rec).await?;
        let at = rec.start();
        let step = format!("restore on {}", to_plan.name);
        if dry {
            rec.done(
                &step,
                at,
                true,
                format!("would restore backup {name} over the fenced objects (existing ones updated to its state)"),
            );
        } else {
            let restored = restore_protected(
                plan,
                &to_cluster,
                &read_store,
                &name,
                &name,
                RestoreInto {
                    update_existing: true,
                    volume_agents: Some(to_plan.namespace.clone()),
                    ..Default::default()
                },
            )
            .await;
            created = restored.report.as_ref().map(|report| {
                report
                    .items
                    .iter()
                    .filter(|i| {
                        i.resource == "namespaces" && matches!(i.outcome, ItemOutcome::Created)
                    })
                    .map(|i| i.name.clone())
                    .collect()
            });
            objects_restored = restored.restored;
            rec.done(&step, at, restored.completed, restored.detail.clone());
            if !restored.completed {
                return Err(restored.detail);
            }
        }
        let at = rec.start();
        let step = format!("scale up on {}", to_plan.name);
        let r = crate::standby::promote(plan, &to_cluster, dry, &mut released).await;
        rec.done(&step, at, r.is_ok(), r.clone().unwrap_or_else(|e| e));
        r?;
        if !dry {
            let verified = verify(plan, to_plan, &to_cluster, &restored_by(&name), &facts, &mut rec).await;
            if !verified.ok() {
                return Err("verification failed".to_owned());
            }
        }
        run_at(plan, HookPoint::AfterPromote, &on, &mut rec).await?;
        let switches = plan
            .spec
            .hooks
            .iter()
            .any(|h| h.at == HookPoint::TrafficSwitch);
        if !switches {
            let at = rec.start();
            rec.done(
                "traffic",
                at,
                true,
                "the plan has no trafficSwitch hook: move traffic to the original yourself".into(),
            );
        } else {
            for w in &weights {
                let mut step_facts = facts.clone();
                step_facts.insert("WEIGHT".into(), w.to_string());
                let on = HookTargets {
                    facts: &step_facts,
                    ..on
                };
                run_at(plan, HookPoint::TrafficSwitch, &on, &mut rec).await?;
                moved.push(*w);
                if !dry {
                    // Each step verified before the next: the plan's checks, with the weight.
                    let label = format!(" at {w}%");
                    let checks = run_checks(plan, to_plan, &step_facts, &label, &mut rec).await;
                    if checks.iter().any(|(_, r)| r.is_err()) {
                        return Err(format!("a check failed with {w}% of traffic on {}", to_plan.name));
                    }
                }
            }
        }
        all_moved_at = Some(clock.elapsed().as_secs_f64());
        // The acting cluster returns to standby.
        past_fence = true;
        run_at(plan, HookPoint::BeforeFence, &on, &mut rec).await?;
        let at = rec.start();
        let step = format!("fence {}", from_plan.name);
        let r = fence(plan, from_plan, &from_cluster, from.installed, dry, &mut fenced_from).await;
        rec.done(&step, at, r.is_ok(), r.clone().unwrap_or_else(|e| e));
        r?;
        run_at(plan, HookPoint::AfterFence, &on, &mut rec).await?;
        let at = rec.start();
        let step = format!("resume schedules on {}", to_plan.name);
        let r = resume_schedules(plan, to_plan, &to_cluster, to.installed, dry).await;
        rec.done(&step, at, r.is_ok(), r.clone().unwrap_or_else(|e| e));
        r?;
        Ok::<(), String>(())
    }
    .await;

    let mut not_undone = Vec::new();
    let mut warnings = Vec::new();
    let outcome = match (&run, dry) {
        (_, true) => Outcome::DryRun,
        (Ok(()), false) => Outcome::Succeeded,
        (Err(e), false) if past_fence => {
            not_undone.push(format!(
                "all traffic is on {} but {} did not return to standby ({e}): pause its schedules and scale its workloads to 0 by hand, or run the failback's last steps again",
                to_plan.name, from_plan.name
            ));
            Outcome::Failed
        }
        (Err(_), false) => {
            let at = rec.start();
            let mut left = Vec::new();
            if !moved.is_empty() {
                let mut back = facts.clone();
                back.insert("WEIGHT".into(), "0".into());
                let on = HookTargets {
                    target: to_plan,
                    fenced: Some(&from_cluster),
                    taking_over: Some(&to_cluster),
                    facts: &back,
                    dry,
                };
                if run_at(plan, HookPoint::TrafficSwitch, &on, &mut rec)
                    .await
                    .is_err()
                {
                    left.push(format!(
                        "traffic could not be sent back to {}: move it by hand",
                        from_plan.name
                    ));
                }
            }
            if let Some(made) = &created {
                left.extend(cleanup_scratch(&to_cluster, &read_store, &name, made, false).await);
            }
            // The original goes back to standby: its workloads at 0 with their counts, its
            // CronJobs suspended as they were (its schedules were not resumed yet).
            left.extend(crate::standby::hold_again(plan, to_plan, &to_cluster, &released).await);
            rec.done(
                "undo",
                at,
                left.is_empty(),
                if left.is_empty() {
                    format!(
                        "{} fenced again{}; {} serves as before (objects the restore updated on {} keep {}'s state)",
                        to_plan.name,
                        if moved.is_empty() {
                            ""
                        } else {
                            ", traffic sent back"
                        },
                        from_plan.name,
                        to_plan.name,
                        from_plan.name
                    )
                } else {
                    left.join("; ")
                },
            );
            not_undone = left;
            if not_undone.is_empty() {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            }
        }
    };
    facts.insert(
        "OUTCOME".into(),
        serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    );
    let on = HookTargets {
        target: to_plan,
        fenced: Some(&from_cluster),
        taking_over: Some(&to_cluster),
        facts: &facts,
        dry,
    };
    let _ = run_at(plan, HookPoint::Notify, &on, &mut rec).await;
    if let Err(e) = &run
        && !dry
    {
        warnings.push(format!("failed: {e}"));
    }
    let next = match outcome {
        Outcome::Succeeded => format!(
            "{} serves the plan's namespaces again and {} is a standby: make {} the plan's active cluster again (active: true on {}, false on {}; `dr failback --update-plan` does it in a plan file)",
            to_plan.name, from_plan.name, to_plan.name, to_plan.name, from_plan.name
        ),
        Outcome::RolledBack => format!(
            "{} still serves; fix the failed step and run again with another --id",
            from_plan.name
        ),
        Outcome::Failed => "undo what is listed in notUndone by hand before running again".into(),
        Outcome::DryRun => "nothing was changed; run without --dry-run to fail back".into(),
    };
    let mut report = FailbackReport {
        plan: plan.name.clone(),
        from: from_plan.name.clone(),
        to: to_plan.name.clone(),
        id,
        backup: name,
        location,
        started,
        outcome,
        seconds: all_moved_at.filter(|_| !dry),
        objects_restored,
        weights_moved: moved,
        steps: rec.steps,
        not_undone,
        warnings,
        next,
        stored_at: None,
    };
    if !dry {
        let base = format!("{}-failback-{}", report.plan, report.id);
        crate::report::store_and_record(
            &write_store,
            &base,
            &mut report,
            plan,
            "lastFailback",
            |r| lifeboat_types::dr::server::LastRun {
                id: r.id.clone(),
                started: lifeboat_types::api::velero::Time(r.started),
                outcome: crate::steps::outcome_name(r.outcome),
                from: r.from.clone(),
                to: r.to.clone(),
                rto_seconds: r.seconds,
                rpo_seconds: None,
                report: r.stored_at.clone(),
            },
        )
        .await;
    }
    Ok(report)
}

/// `dr failback` as Markdown.
pub fn failback_markdown(r: &FailbackReport) -> String {
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
    list_section(&mut out, "Not undone", &r.not_undone);
    warnings_and_place(&mut out, &r.warnings, r.stored_at.as_deref(), Some(&r.next));
    out
}

impl crate::report::Stored for FailbackReport {
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
