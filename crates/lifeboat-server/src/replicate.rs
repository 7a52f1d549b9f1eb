//! Copies after a scheduled backup: when a backup of a Schedule annotated
//! `lifeboat.dev/replicate-to: <location>[,<location>...]` is stored Completed, the
//! server copies the schedule's Completed backups (and the volume repositories they use)
//! into each location named, with `backup replicate`'s engine (checksums, nothing
//! replaced, idempotent: what a failed run left is copied by the next). The Backup object
//! says where it was copied (`lifeboat.dev/replicated-to`) or why not
//! (`lifeboat.dev/replication-error`); the backup stays Completed either way: its own
//! location holds it durably.

use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use lifeboat_engine::error::chain;
use lifeboat_engine::replicate::{BackupOutcome, ReplicateOptions, replicate};
use lifeboat_engine::storage::Store;
use lifeboat_types::api::crd::{BackupResource, ScheduleResource};
use lifeboat_types::api::velero::BackupPhase;
use lifeboat_types::rules::replicate::{
    REPLICATE_TO, REPLICATED_TO, REPLICATION_ERROR, replicate_targets,
};
use lifeboat_types::rules::schedule::SCHEDULE_LABEL;

use crate::Ctx;

/// After backup `b` was stored Completed in `from` (see the module's doc).
pub(crate) async fn after_backup(ctx: &Ctx, b: Option<&BackupResource>, from: Option<&Store>) {
    let (Some(b), Some(from)) = (b, from) else {
        return;
    };
    let Some(schedule) = b.labels().get(SCHEDULE_LABEL) else {
        return;
    };
    let name = b.name_any();
    let schedules: Api<ScheduleResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let annotation = match schedules.get_opt(schedule).await {
        Ok(Some(s)) => match s.annotations().get(REPLICATE_TO) {
            Some(a) => a.clone(),
            None => return,
        },
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(backup = %name, "reading schedule {schedule} for {REPLICATE_TO}: {e}");
            return;
        }
    };
    let (done, errors) = match replicate_targets(&annotation, from.name()) {
        // A shutdown gives the copies the grace period; what they did not finish, the
        // schedule's next backup copies.
        Ok(targets) => ctx
            .within_grace(copy_to(ctx, from, schedule, &name, &targets))
            .await
            .unwrap_or_else(|| {
                (
                    Vec::new(),
                    vec![
                    "interrupted by the server's shutdown; the schedule's next backup copies it"
                        .into(),
                ],
                )
            }),
        Err(e) => (Vec::new(), vec![format!("schedule {schedule}: {e}")]),
    };
    for e in &errors {
        tracing::warn!(backup = %name, "copy after backup: {e}");
    }
    if !done.is_empty() {
        tracing::info!(backup = %name, "copied to {}", done.join(", "));
    }
    let api: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let patch = json!({"metadata": {"annotations": {
        REPLICATED_TO: (!done.is_empty()).then(|| done.join(",")),
        REPLICATION_ERROR: (!errors.is_empty()).then(|| errors.join("; ")),
    }}});
    if let Err(e) = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(backup = %name, "recording its copies: {e}");
    }
}

/// Copies the schedule's Completed backups into each target; the targets that now hold
/// backup `name`, and what went wrong, per target.
async fn copy_to(
    ctx: &Ctx,
    from: &Store,
    schedule: &str,
    name: &str,
    targets: &[String],
) -> (Vec<String>, Vec<String>) {
    let api: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let mut names = match api
        .list(&ListParams::default().labels(&format!("{SCHEDULE_LABEL}={schedule}")))
        .await
    {
        Ok(l) => l
            .items
            .iter()
            .filter(|o| o.status.as_ref().map(|s| s.phase) == Some(BackupPhase::Completed))
            .filter(|o| !o.annotations().contains_key(crate::SYNCED_ANNOTATION))
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(backup = %name, "listing the backups of schedule {schedule} (copying this one only): {e}");
            Vec::new()
        }
    };
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
    let opts = ReplicateOptions {
        backups: names,
        volumes: true,
        ..Default::default()
    };
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    for t in targets {
        let to = match ctx.store(Some(t)).await {
            Ok((to, _)) => to,
            Err(e) => {
                errors.push(format!("{t}: {}", chain(&e)));
                continue;
            }
        };
        match replicate(from, &to, &opts).await {
            Ok(r) => {
                match r.backups.iter().find(|c| c.name == name) {
                    Some(c)
                        if matches!(
                            c.outcome,
                            BackupOutcome::Copied | BackupOutcome::AlreadyThere
                        ) =>
                    {
                        done.push(t.clone())
                    }
                    Some(c) => errors.push(format!(
                        "{t}: {:?}{}",
                        c.outcome,
                        c.detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    )),
                    None => errors.push(format!("{t}: backup {name} was not found to copy")),
                }
                if let Some(v) = &r.volumes
                    && !(v.failed.is_empty() && v.conflicts.is_empty())
                {
                    errors.push(format!(
                        "{t}: volume repositories: {} files failed, {} conflict",
                        v.failed.len(),
                        v.conflicts.len()
                    ));
                }
            }
            Err(e) => errors.push(format!("{t}: {}", chain(&e))),
        }
    }
    (done, errors)
}
