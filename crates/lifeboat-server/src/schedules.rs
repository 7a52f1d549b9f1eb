//! The Schedule controller: makes a Backup when one is due (rules in
//! `lifeboat_types::rules::schedule`), and sleeps until the next due time.

use std::sync::Arc;
use std::time::Duration;

use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use lifeboat_types::api::crd::{BackupResource, ScheduleResource};
use lifeboat_types::api::velero::Time;
use lifeboat_types::rules::schedule::{Decision, SCHEDULE_LABEL, backup_name, decide};
use serde_json::json;

use crate::{Ctx, ServerError, patch_status};
use lifeboat_engine::cluster::ApiErrorKind;

pub(crate) async fn run(ctx: Arc<Ctx>) {
    let api: Api<ScheduleResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    super::run_controller(ctx, api, "schedule reconcile", reconcile).await;
}

/// What a server that just started knows of a schedule's backups: its failure counters at
/// 0 (so that a first failure is an increase to Prometheus), and its last success from
/// the newest Completed backup it made (so that backup-age alerts hold across restarts).
/// Never a made-up time: a schedule with no Completed backup has no last success.
async fn seed_metrics(ctx: &Ctx, name: &str, label: &crate::metrics::ScheduleLabel) {
    let m = &ctx.metrics;
    m.count_failures_from_zero(label);
    if m.backup_last_successful.get(label).is_some() {
        return;
    }
    let backups: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let listed = backups
        .list(&kube::api::ListParams::default().labels(&format!("{SCHEDULE_LABEL}={name}")))
        .await;
    let newest = match listed {
        Ok(l) => l
            .items
            .iter()
            .filter_map(|b| b.status.as_ref())
            .filter(|s| s.phase == lifeboat_types::api::velero::BackupPhase::Completed)
            .filter_map(|s| s.completion_timestamp.as_ref().map(|t| t.0))
            .max(),
        Err(e) => {
            tracing::debug!(schedule = %name, "cannot list its backups: {}", crate::chain(&e));
            None
        }
    };
    if let Some(t) = newest
        && m.backup_last_successful.get(label).is_none()
    {
        m.backup_last_successful
            .get_or_create(label)
            .set(t.timestamp());
    }
}

async fn reconcile(s: Arc<ScheduleResource>, ctx: Arc<Ctx>) -> Result<Action, ServerError> {
    let api: Api<ScheduleResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let name = s.name_any();
    // The watch cache can lag behind our own status patches: decide on the object as the
    // API server has it now, or a due backup could be made twice.
    let label = crate::metrics::ScheduleLabel {
        schedule: name.clone(),
    };
    let Some(s) = api.get_opt(&name).await? else {
        ctx.metrics.schedule_interval.remove(&label);
        return Ok(Action::await_change());
    };
    // The interval backup-age alerts compare against; none while paused or unreadable.
    let now = chrono::Utc::now();
    match (
        s.spec.paused,
        lifeboat_types::dr::status::longest_gap(&s.spec.schedule, now, 48),
    ) {
        (false, Some(gap)) => {
            ctx.metrics
                .schedule_interval
                .get_or_create(&label)
                .set(gap.as_secs_f64());
        }
        _ => {
            ctx.metrics.schedule_interval.remove(&label);
        }
    }
    seed_metrics(&ctx, &name, &label).await;
    let phase = s.status.as_ref().map(|st| st.phase.to_string());
    let decision = match decide(&s.spec, s.status.as_ref(), now) {
        Ok(d) => d,
        Err(e) => {
            patch_status(
                &api,
                &name,
                json!({ "phase": "FailedValidation", "validationErrors": [e] }),
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    if phase.as_deref() != Some("Enabled") {
        patch_status(
            &api,
            &name,
            json!({ "phase": "Enabled", "validationErrors": null }),
        )
        .await?;
    }
    match decision {
        Decision::Paused => Ok(Action::await_change()),
        Decision::SkipNow => {
            patch_status(&api, &name, json!({ "lastSkipped": Time::now() })).await?;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Decision::WaitUntil(t) => Ok(crate::requeue_at(t)),
        Decision::BackupNow => {
            let at = Time::now();
            let bname = backup_name(&name, at.0);
            let mut labels = s.spec.template.metadata.labels.clone();
            labels.insert(SCHEDULE_LABEL.into(), name.clone());
            let mut backup = BackupResource::new(&bname, s.spec.template.clone());
            backup.metadata.namespace = Some(ctx.ns.clone());
            backup.metadata.labels = Some(labels);
            if s.spec.use_owner_references_in_backup == Some(true)
                && let Some(owner) = s.controller_owner_ref(&())
            {
                backup.metadata.owner_references = Some(vec![owner]);
            }
            let backups: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
            match backups.create(&PostParams::default(), &backup).await {
                Ok(_) => {
                    tracing::info!(schedule = %name, backup = %bname, "scheduled backup created")
                }
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(e.into()),
            }
            patch_status(&api, &name, json!({ "lastBackup": at })).await?;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
    }
}
