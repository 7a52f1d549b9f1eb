//! The Restore controller: a new Restore is run by the same engine as `lifeboat restore
//! create`, from the location its backup is stored in; `scheduleName` picks the newest
//! Completed backup of that schedule.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use lifeboat_types::api::crd::{BackupResource, RestoreResource};
use lifeboat_types::api::velero::{self, RestorePhase, Time};
use lifeboat_types::rules;
use lifeboat_types::rules::schedule::SCHEDULE_LABEL;
use serde_json::json;

use crate::metrics::ScheduleLabel;
use crate::{Ctx, ServerError, to_velero};
use lifeboat_engine::modifiers::Modifiers;
use lifeboat_engine::restore::{RestoreOptions, RestoreProgressCounters, run_restore};

fn restores(ctx: &Ctx) -> Api<RestoreResource> {
    Api::namespaced(ctx.client.clone(), &ctx.ns)
}

async fn set_status(ctx: &Ctx, name: &str, status: serde_json::Value) -> Result<(), ServerError> {
    super::patch_status(&restores(ctx), name, status).await
}

pub(crate) async fn run(ctx: Arc<Ctx>) {
    let api = restores(&ctx);
    super::run_controller(ctx, api, "restore reconcile", reconcile).await;
}

async fn fail_validation(
    ctx: &Ctx,
    name: &str,
    sched: &ScheduleLabel,
    why: String,
) -> Result<Action, ServerError> {
    set_status(
        ctx,
        name,
        json!({ "phase": "FailedValidation", "validationErrors": [why] }),
    )
    .await?;
    ctx.metrics
        .restore_validation_failed
        .get_or_create(sched)
        .inc();
    Ok(Action::await_change())
}

async fn reconcile(cached: Arc<RestoreResource>, ctx: Arc<Ctx>) -> Result<Action, ServerError> {
    let name = cached.name_any();
    let cached_phase = cached.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if !matches!(cached_phase, RestorePhase::New | RestorePhase::InProgress) {
        return Ok(Action::await_change());
    }
    // The cache can lag behind this server's own status writes (see the Backup
    // controller): decide on the object as the API server has it now.
    let Some(r) = restores(&ctx).get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let phase = r.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let sched = ScheduleLabel {
        schedule: r.spec.schedule_name.clone().unwrap_or_default(),
    };
    match phase {
        RestorePhase::New => {}
        RestorePhase::InProgress => {
            set_status(&ctx, &name, json!({
                "phase": "Failed",
                "failureReason": "the lifeboat server stopped while this restore ran; check the target namespaces and create the restore again",
                "completionTimestamp": Time::now(),
            }))
            .await?;
            ctx.metrics.restore_failed.get_or_create(&sched).inc();
            return Ok(Action::await_change());
        }
        _ => return Ok(Action::await_change()),
    }
    let backups: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let mut restore: velero::Restore = match to_velero(&r, &format!("Restore {name}")) {
        Ok(v) => v,
        Err(e) => return fail_validation(&ctx, &name, &sched, crate::chain(&e)).await,
    };
    if restore.spec.backup_name.is_empty() {
        let Some(schedule) = restore.spec.schedule_name.clone() else {
            return fail_validation(
                &ctx,
                &name,
                &sched,
                "either backupName or scheduleName must be set".into(),
            )
            .await;
        };
        let of_schedule = backups
            .list(&ListParams::default().labels(&format!("{SCHEDULE_LABEL}={schedule}")))
            .await?
            .items;
        let newest =
            rules::backups::newest(&of_schedule, Some(&schedule), rules::backups::COMPLETED);
        let Some(b) = newest else {
            return fail_validation(
                &ctx,
                &name,
                &sched,
                format!("schedule {schedule:?} has no Completed backup"),
            )
            .await;
        };
        restore.spec.backup_name = b.name_any();
        restores(&ctx)
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "backupName": restore.spec.backup_name } })),
            )
            .await?;
    }
    let backup_name = restore.spec.backup_name.clone();
    let location = backups
        .get_opt(&backup_name)
        .await?
        .and_then(|b| super::backups::location_of(&b));
    let (store, _) = match ctx.store(location.as_deref()).await {
        Ok(s) => s,
        Err(e) if e.is_permanent() => {
            return fail_validation(&ctx, &name, &sched, crate::chain(&e)).await;
        }
        Err(e) => return Err(e),
    };
    let modifiers = match &restore.spec.resource_modifier {
        Some(m) => {
            let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(ctx.client.clone(), &ctx.ns);
            let Some(cm) = cms.get_opt(&m.name).await? else {
                return fail_validation(
                    &ctx,
                    &name,
                    &sched,
                    format!(
                        "resource modifier ConfigMap {}/{} not found",
                        ctx.ns, m.name
                    ),
                )
                .await;
            };
            match Modifiers::from_configmap_data(&cm.data.unwrap_or_default()) {
                Ok(m) => Some(m),
                Err(e) => {
                    return fail_validation(
                        &ctx,
                        &name,
                        &sched,
                        format!("ConfigMap {}/{}: {}", ctx.ns, m.name, crate::chain(&e)),
                    )
                    .await;
                }
            }
        }
        None => None,
    };
    // Queued restores stay New until a slot is free.
    let _slot = tokio::select! {
        s = ctx.restore_slots.acquire() => s?,
        _ = ctx.shutdown.cancelled() => return Ok(Action::await_change()),
    };
    set_status(
        &ctx,
        &name,
        json!({ "phase": "InProgress", "startTimestamp": Time::now() }),
    )
    .await?;
    ctx.metrics.restore_attempt.get_or_create(&sched).inc();
    tracing::info!(restore = %name, backup = %backup_name, "restore started");
    let clock = Instant::now();
    let opts = RestoreOptions {
        modifiers,
        pod_volumes: Some(ctx.pod_volume_settings()),
        ..Default::default()
    };
    let progress = Arc::new(RestoreProgressCounters::default());
    let run = run_restore(&ctx.cluster, &store, restore, &opts, progress.clone());
    let outcome = super::drive_with_progress(
        &ctx,
        &restores(&ctx),
        &name,
        "itemsRestored",
        || {
            (
                progress.total.load(Ordering::Relaxed),
                progress.done.load(Ordering::Relaxed),
            )
        },
        None,
        run,
    )
    .await;
    let secs = clock.elapsed().as_secs_f64();
    ctx.metrics
        .restore_duration
        .get_or_create(&sched)
        .observe(secs);
    match outcome {
        None => {
            set_status(&ctx, &name, json!({
                "phase": "Failed",
                "failureReason": format!("interrupted by shutdown: the lifeboat server was stopped and the restore did not finish within its {}s grace period; create the restore again", ctx.grace.as_secs()),
                "completionTimestamp": Time::now(),
            }))
            .await?;
            ctx.metrics.restore_failed.get_or_create(&sched).inc();
        }
        Some(Err(e)) => {
            set_status(&ctx, &name, json!({
                "phase": "Failed", "failureReason": crate::chain(&e), "completionTimestamp": Time::now(),
            }))
            .await?;
            ctx.metrics.restore_failed.get_or_create(&sched).inc();
        }
        Some(Ok(report)) => {
            let status = report.restore.status.clone().unwrap_or_default();
            set_status(
                &ctx,
                &name,
                serde_json::to_value(&status).unwrap_or_default(),
            )
            .await?;
            let m = &ctx.metrics;
            match status.phase {
                RestorePhase::Completed => m.restore_success.get_or_create(&sched).inc(),
                _ => m.restore_partial_failure.get_or_create(&sched).inc(),
            };
            let items = status.progress.map(|p| p.items_restored).unwrap_or(0);
            if secs > 0.0 {
                m.restore_items_per_second
                    .get_or_create(&sched)
                    .set(items as f64 / secs);
            }
            tracing::info!(restore = %name, phase = %status.phase, items, "restore done");
        }
    }
    Ok(Action::await_change())
}
