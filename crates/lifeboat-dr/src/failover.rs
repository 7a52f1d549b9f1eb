//! `dr failover`: the protected namespaces move from the active cluster to a standby.
//! Refused while the active cluster is healthy unless forced; the old active is fenced
//! when it can be reached (the Schedules that back the namespaces up paused, their
//! Deployments and StatefulSets scaled to 0 with the count kept in the plan's annotation);
//! the newest backup the standby can read is restored there; the plan's hooks run at
//! their points ([`crate::hooks`]); the plan's verification runs. When a step fails, what was done is undone where it can be:
//! the namespaces the restore made on the standby are deleted (only those), the old
//! active's workloads scaled back and its schedules resumed; what could not be undone is
//! named. Every step is recorded with its start, duration and outcome. Decisions are
//! `lifeboat_types::dr::failover`'s.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use lifeboat_engine::catalog;
use lifeboat_engine::restore::Outcome as ItemOutcome;
use lifeboat_engine::verify::cleanup_scratch;
use lifeboat_types::dr::failover::{ActiveSeen, Start, may_start};
use lifeboat_types::dr::plan::{HookPoint, Plan};
use lifeboat_types::dr::status::{not_ready, recovery_point};

use crate::fence::{Fenced, fence, unfence};
use crate::hooks::{HookTargets, run_at};
use crate::report::{dur, list_section, steps_table, warnings_and_place};
use crate::status::quick_readiness;
pub use crate::steps::{FailoverError, Outcome};
use crate::steps::{Recorder, RestoreInto, Step, restore_protected, restored_by, verify};
use crate::target::{LocalLocations, Target, reach};

/// How a failover is run.
#[derive(Debug, Clone, Default)]
pub struct FailoverOptions {
    /// The cluster to fail over to (default: the plan's first standby).
    pub to: Option<String>,
    /// Print the steps and what each would change; touch nothing.
    pub dry_run: bool,
    /// Fail over from a healthy active cluster (a planned switch).
    pub force: bool,
    /// The id in the restore's name (default: from the clock).
    pub id: Option<String>,
}

/// A failover's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverReport {
    /// The plan.
    pub plan: String,
    /// The active cluster before.
    pub from: String,
    /// The cluster failed over to.
    pub to: String,
    /// The run's id (in its restore's name).
    pub id: String,
    /// The backup restored.
    pub backup: String,
    /// Where it was read from.
    pub location: String,
    /// When the failover started.
    pub started: DateTime<Utc>,
    /// How it ended.
    pub outcome: Outcome,
    /// From the start to the standby verified, in seconds (None: not reached).
    pub rto_seconds: Option<f64>,
    /// The plan's RTO, in seconds.
    pub rto_objective_seconds: u64,
    /// The failover's start minus the backup's recovery point, in seconds: the data lost.
    pub rpo_seconds: Option<u64>,
    /// The plan's RPO, in seconds.
    pub rpo_objective_seconds: u64,
    /// Objects the restore created.
    pub objects_restored: u64,
    /// Every step, in order (a dry run's: what each would do).
    pub steps: Vec<Step>,
    /// What a rollback could not undo.
    pub not_undone: Vec<String>,
    /// What the run could not make safe (an old active that was not fenced).
    pub warnings: Vec<String>,
    /// What to do next.
    pub next: String,
    /// Where the report is stored (`metadata/dr/<plan>/…json` in the location the
    /// backup was read from; None: a dry run, or it could not be stored: see warnings).
    pub stored_at: Option<String>,
}

/// A dry run's verification step: what it would wait for and run.
fn would_verify(plan: &Plan, rec: &mut Recorder) {
    let at = rec.start();
    rec.done(
        "verify",
        at,
        true,
        format!(
            "would wait for the restored workloads to be Available{} and run {} checks",
            if plan.spec.verification.workloads_available {
                ""
            } else {
                " (off)"
            },
            plan.spec.verification.commands.len()
        ),
    );
}

fn refuse(plan: &Plan, why: String) -> FailoverError {
    FailoverError::Refused {
        plan: plan.name.clone(),
        why,
    }
}

/// Runs a failover of `plan` (see the module's doc).
pub async fn failover(
    plan: &Plan,
    opts: &FailoverOptions,
    local: LocalLocations<'_>,
) -> Result<FailoverReport, FailoverError> {
    let active_plan = plan.active();
    let target_plan = match &opts.to {
        Some(n) => crate::steps::named_cluster(plan, n)?,
        None => plan.standbys().next().unwrap_or(active_plan),
    };
    let id = opts.id.clone().unwrap_or_else(crate::steps::clock_id);
    lifeboat_types::dr::drill::valid_run_id(&id).map_err(|e| refuse(plan, e))?;
    let started = Utc::now();
    let clock = Instant::now();
    let mut rec = Recorder::default();

    // Assess: nothing changes until every check here passed.
    let at = rec.start();
    let (active, target): (Target, Target) =
        futures::join!(reach(active_plan, local), reach(target_plan, local));
    let active_readiness = quick_readiness(&active).await;
    let active_not_ready = not_ready(&active_readiness, false);
    if let Start::Refuse(why) = may_start(
        &ActiveSeen {
            name: &active_plan.name,
            not_ready: &active_not_ready,
        },
        &target_plan.name,
        opts.force,
    ) {
        return Err(refuse(plan, why));
    }
    let cluster = match &target.cluster {
        Ok(c) => c,
        Err(why) => {
            return Err(FailoverError::Unreachable {
                plan: plan.name.clone(),
                name: target_plan.name.clone(),
                why: why.clone(),
            });
        }
    };
    let target_not_ready = not_ready(&quick_readiness(&target).await, false);
    if !target_not_ready.is_empty() {
        return Err(refuse(
            plan,
            format!(
                "cluster {} cannot take over: {}",
                target_plan.name,
                target_not_ready.join("; ")
            ),
        ));
    }
    let found = crate::target::backups(&target, &plan.spec.namespaces).await;
    let Some((location, store, backup, in_backup)) = found
        .chosen()
        .map(|(l, s, b, n)| (l.to_owned(), s.clone(), b.clone(), n))
    else {
        return Err(FailoverError::NoBackup {
            plan: plan.name.clone(),
            name: target_plan.name.clone(),
            namespaces: plan.spec.namespaces.join(", "),
            locations: found.said(),
        });
    };
    let restore_name = lifeboat_types::dr::drill::scratch_namespace(&plan.name, "failover", &id);
    if catalog::get_restore(&store, &restore_name).await.is_ok() {
        return Err(refuse(
            plan,
            format!(
                "restore {restore_name} exists already in location {location}: run with another --id"
            ),
        ));
    }
    // A failover restores only into namespaces it makes (a rollback deletes what it made
    // and nothing else), or promotes the plan's warm copy of them.
    let held =
        crate::standby::held(plan, cluster)
            .await
            .map_err(|why| FailoverError::Unreachable {
                plan: plan.name.clone(),
                name: target_plan.name.clone(),
                why,
            })?;
    let warm =
        crate::standby::is_warm(plan, &target_plan.name, &held).map_err(|e| refuse(plan, e))?;
    if !warm && let Some((ns, _)) = held.iter().find(|(_, o)| o.is_some()) {
        return Err(refuse(
            plan,
            format!(
                "namespace {ns} exists already on cluster {}: a failover restores only into namespaces it makes, or promotes a warm standby that holds them all (strategy warm-standby, dr sync); delete it first",
                target_plan.name
            ),
        ));
    }
    let synced = warm && crate::standby::holds_backup(&held, &backup.metadata.name);
    let rpo = recovery_point(&backup).map(|p| {
        started
            .signed_duration_since(p)
            .to_std()
            .unwrap_or_default()
    });
    let active_answers = active.cluster.is_ok() && active_readiness.api_error.is_none();
    rec.done(
        "assess",
        at,
        true,
        format!(
            "active {} {}; {} ready; restoring backup {} ({in_backup} objects of the protected namespaces) from location {location}",
            active_plan.name,
            if active_not_ready.is_empty() {
                "is healthy (forced)".to_owned()
            } else {
                format!("is down: {}", active_not_ready.join("; "))
            },
            target_plan.name,
            backup.metadata.name,
        ),
    );

    let mut facts = BTreeMap::from([
        ("PLAN".to_owned(), plan.name.clone()),
        ("FROM".to_owned(), active_plan.name.clone()),
        ("TO".to_owned(), target_plan.name.clone()),
        ("CLUSTER".to_owned(), target_plan.name.clone()),
        ("NAMESPACES".to_owned(), plan.spec.namespaces.join(",")),
        (
            "NAMESPACE_MAP".to_owned(),
            plan.spec
                .namespaces
                .iter()
                .map(|n| format!("{n}={n}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("BACKUP".to_owned(), backup.metadata.name.clone()),
    ]);
    let dry = opts.dry_run;
    let mut fenced: Vec<Fenced> = Vec::new();
    let mut warnings = Vec::new();
    let mut objects_restored = 0;
    // The namespaces this run's restore created (a rollback deletes those only).
    let mut created: Option<Vec<String>> = None;
    // A warm standby's promotion began, and the CronJobs it released.
    let mut promoted = false;
    let mut released: Vec<crate::standby::Released> = Vec::new();

    let fenced_cluster = active.cluster.as_ref().ok().filter(|_| active_answers);
    let on = HookTargets {
        target: target_plan,
        fenced: fenced_cluster,
        taking_over: Some(cluster),
        facts: &facts,
        dry,
    };
    // Everything from here on is undone when a step fails.
    let run = async {
        run_at(plan, HookPoint::Notify, &on, &mut rec).await?;
        // A warm standby behind the newest backup is brought to it first, before the
        // old active is fenced: a sync that fails leaves the standby held, nothing else.
        if warm && !synced {
            if dry {
                let at = rec.start();
                rec.done(
                    &format!("sync on {}", target_plan.name),
                    at,
                    true,
                    format!(
                        "would bring the warm standby to backup {}",
                        backup.metadata.name
                    ),
                );
            } else {
                let (n, _) = crate::standby::apply_sync(
                    plan,
                    cluster,
                    &store,
                    &backup,
                    &restore_name,
                    &mut rec,
                )
                .await?;
                objects_restored = n;
            }
        }
        run_at(plan, HookPoint::BeforeFence, &on, &mut rec).await?;
        let at = rec.start();
        let step = format!("fence {}", active_plan.name);
        match &active.cluster {
            Ok(c) if active_answers => {
                let r = fence(plan, active_plan, c, active.installed, dry, &mut fenced).await;
                rec.done(&step, at, r.is_ok(), r.clone().unwrap_or_else(|e| e));
                r?;
            }
            _ => {
                let w = format!(
                    "{} could not be reached, so it was not fenced: it must not come back serving (keep it down, or pause its schedules and scale its workloads to 0 by hand)",
                    active_plan.name
                );
                rec.done(&step, at, true, w.clone());
                warnings.push(w);
            }
        }
        run_at(plan, HookPoint::AfterFence, &on, &mut rec).await?;
        run_at(plan, HookPoint::BeforePromote, &on, &mut rec).await?;
        let at = rec.start();
        let step = format!("restore on {}", target_plan.name);
        if warm {
            let at = rec.start();
            let step = format!("promote on {}", target_plan.name);
            promoted = true;
            let r = crate::standby::promote(plan, cluster, dry, &mut released).await;
            rec.done(&step, at, r.is_ok(), r.clone().unwrap_or_else(|e| e));
            r?;
            if dry {
                would_verify(plan, &mut rec);
            } else {
                let selector = format!(
                    "{}={}",
                    lifeboat_types::dr::standby::STANDBY_OF,
                    plan.name
                );
                let verified =
                    verify(plan, target_plan, cluster, &selector, &facts, &mut rec).await;
                if !verified.ok() {
                    return Err("verification failed".to_owned());
                }
            }
        } else if dry {
            rec.done(
                &step,
                at,
                true,
                format!(
                    "would restore backup {} ({in_backup} objects of {}) as restore {restore_name}",
                    backup.metadata.name,
                    plan.spec.namespaces.join(", ")
                ),
            );
            would_verify(plan, &mut rec);
        } else {
            let restored = restore_protected(
                plan,
                cluster,
                &store,
                &backup.metadata.name,
                &restore_name,
                RestoreInto {
                    volume_agents: Some(target_plan.namespace.clone()),
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
            // A Completed restore of nothing serves nothing.
            let ok = restored.completed && restored.restored > 0;
            let detail = restored.detail;
            rec.done(&step, at, ok, detail.clone());
            if !ok {
                return Err(detail);
            }
            let verified = verify(
                plan,
                target_plan,
                cluster,
                &restored_by(&restore_name),
                &facts,
                &mut rec,
            )
            .await;
            if !verified.ok() {
                return Err("verification failed".to_owned());
            }
        }
        run_at(plan, HookPoint::AfterPromote, &on, &mut rec).await?;
        run_at(plan, HookPoint::TrafficSwitch, &on, &mut rec).await?;
        Ok::<(), String>(())
    }
    .await;
    let rto = (run.is_ok() && !dry).then(|| clock.elapsed().as_secs_f64());

    let mut not_undone = Vec::new();
    let outcome = match (&run, dry) {
        (_, true) => Outcome::DryRun,
        (Ok(()), false) => Outcome::Succeeded,
        (Err(_), false) => {
            let at = rec.start();
            let mut left = Vec::new();
            if let Some(made) = &created {
                left.extend(cleanup_scratch(cluster, &store, &restore_name, made, false).await);
            }
            if promoted {
                left.extend(
                    crate::standby::hold_again(plan, target_plan, cluster, &released).await,
                );
            }
            if let Ok(c) = &active.cluster {
                left.extend(unfence(plan, c, &fenced).await);
            }
            let serving = if active_not_ready.is_empty() {
                format!("{} serves again", active_plan.name)
            } else {
                format!(
                    "{} was down before the failover and still is: nothing serves the plan's namespaces",
                    active_plan.name
                )
            };
            rec.done(
                "rollback",
                at,
                left.is_empty(),
                if left.is_empty() && warm {
                    format!(
                        "the warm standby {} is held again (workloads at 0, counts kept); {serving}",
                        target_plan.name
                    )
                } else if left.is_empty() {
                    format!(
                        "deleted the namespaces restore {restore_name} made on {} ({}); {serving}",
                        target_plan.name,
                        created.as_deref().unwrap_or_default().join(", ")
                    )
                } else {
                    left.join("; ")
                },
            );
            if !active_not_ready.is_empty() {
                warnings.push(serving);
            }
            not_undone = left;
            if not_undone.is_empty() {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            }
        }
    };
    let outcome_name = serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    facts.insert("OUTCOME".into(), outcome_name);
    // The end is told too (a notify hook's failure here changes nothing).
    let on = HookTargets {
        target: target_plan,
        fenced: fenced_cluster,
        taking_over: Some(cluster),
        facts: &facts,
        dry,
    };
    let _ = run_at(plan, HookPoint::Notify, &on, &mut rec).await;
    let next = match outcome {
        Outcome::Succeeded => format!(
            "{} serves the plan's namespaces: make it the plan's active cluster (active: true on {}, false on {}; `dr failover --update-plan` does it in a plan file)",
            target_plan.name, target_plan.name, active_plan.name
        ),
        Outcome::RolledBack if active_not_ready.is_empty() => format!(
            "{} still serves; fix the failed step and run again",
            active_plan.name
        ),
        Outcome::RolledBack => {
            "nothing serves the plan's namespaces: fix the failed step and run again".into()
        }
        Outcome::Failed => "undo what is listed in notUndone by hand before running again".into(),
        Outcome::DryRun => "nothing was changed; run without --dry-run to fail over".into(),
    };
    let mut report = FailoverReport {
        plan: plan.name.clone(),
        from: active_plan.name.clone(),
        to: target_plan.name.clone(),
        id,
        backup: backup.metadata.name.clone(),
        location,
        started,
        outcome,
        rto_seconds: rto,
        rto_objective_seconds: plan.rto.as_secs(),
        rpo_seconds: rpo.map(|d| d.as_secs()),
        rpo_objective_seconds: plan.rpo.as_secs(),
        objects_restored,
        steps: rec.steps,
        not_undone,
        warnings,
        next,
        stored_at: None,
    };
    if !dry {
        let base = format!("{}-failover-{}", report.plan, report.id);
        crate::report::store_and_record(&store, &base, &mut report, plan, "lastFailover", |r| {
            lifeboat_types::dr::server::LastRun {
                id: r.id.clone(),
                started: lifeboat_types::api::velero::Time(r.started),
                outcome: crate::steps::outcome_name(r.outcome),
                from: r.from.clone(),
                to: r.to.clone(),
                rto_seconds: r.rto_seconds,
                rpo_seconds: r.rpo_seconds,
                report: r.stored_at.clone(),
            }
        })
        .await;
    }
    Ok(report)
}

/// `dr failover` as Markdown.
pub fn failover_markdown(r: &FailoverReport) -> String {
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
    list_section(&mut out, "Not undone", &r.not_undone);
    warnings_and_place(&mut out, &r.warnings, r.stored_at.as_deref(), Some(&r.next));
    out
}

impl crate::report::Stored for FailoverReport {
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
