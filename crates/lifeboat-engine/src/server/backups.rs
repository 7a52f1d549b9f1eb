//! The Backup controller, DeleteBackupRequests and TTL garbage collection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};
use lifeboat_types::crd::{BackupResource, DeleteBackupRequestResource};
use lifeboat_types::velero::{self, BackupPhase, Time};
use serde_json::json;

use super::metrics::{ScheduleLabel, schedule_of};
use super::{BACKUP_FINALIZER, Ctx, ServerError, to_velero};
use crate::backup::{BackupOptions, Progress, run_backup};

fn backups(ctx: &Ctx) -> Api<BackupResource> {
    Api::namespaced(ctx.client.clone(), &ctx.ns)
}

async fn set_status(ctx: &Ctx, name: &str, status: serde_json::Value) -> Result<(), ServerError> {
    super::patch_status(&backups(ctx), name, status).await
}

/// The spec cannot be run (it does not convert, or its location cannot be opened).
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
        .backup_validation_failure
        .get_or_create(sched)
        .inc();
    Ok(Action::await_change())
}

/// Runs the Backup controller until shutdown.
pub(crate) async fn run_backups(ctx: Arc<Ctx>) {
    let api = backups(&ctx);
    super::run_controller(ctx, api, "backup reconcile", reconcile).await;
}

/// Errors of one reconcile (the finalizer helper's, wrapping ours).
type ReconcileError = kube::runtime::finalizer::Error<ServerError>;

async fn reconcile(b: Arc<BackupResource>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let api = backups(&ctx);
    finalizer(&api, BACKUP_FINALIZER, b, |event| async {
        match event {
            Finalizer::Apply(b) => apply(&b, &ctx).await,
            Finalizer::Cleanup(b) => cleanup(&b, &ctx).await,
        }
    })
    .await
}

async fn apply(cached: &BackupResource, ctx: &Ctx) -> Result<Action, ServerError> {
    let name = cached.name_any();
    let cached_phase = cached.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if !matches!(cached_phase, BackupPhase::New | BackupPhase::InProgress) {
        return Ok(Action::await_change());
    }
    // The controller's cache can lag behind this server's own status writes: a reconcile
    // queued while the backup ran may see it New or InProgress after it Completed (and
    // would run it again, or fail it as orphaned). Decide on the object as it is now.
    let Some(fresh) = backups(ctx).get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let b = &fresh;
    let phase = b.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let sched = schedule_of(b.metadata.labels.as_ref());
    match phase {
        BackupPhase::New => {}
        BackupPhase::InProgress => {
            // No reconcile of this object runs concurrently with another, ours write a
            // terminal phase before returning, and the phase was just read from the API
            // server: InProgress here was left by a process that stopped while it ran.
            tracing::warn!(backup = %name, "found InProgress with no server running it; marking it Failed");
            set_status(ctx, &name, json!({
                "phase": "Failed",
                "failureReason": "the lifeboat server stopped while this backup ran; create the backup again",
                "completionTimestamp": Time::now(),
            }))
            .await?;
            ctx.metrics.backup_failure.get_or_create(&sched).inc();
            return Ok(Action::await_change());
        }
        _ => return Ok(Action::await_change()),
    }
    if let Some(loc) = b.annotations().get(super::SYNCED_ANNOTATION) {
        // A record of a backup already stored: take its status from the store, never run it.
        let (store, _) = ctx.store(Some(loc)).await?;
        let stored = crate::catalog::get_backup(&store, &name)
            .await
            .map_err(|e| ServerError::Location(e.to_string()))?;
        set_status(
            ctx,
            &name,
            serde_json::to_value(stored.status.unwrap_or_default()).unwrap_or_default(),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let _slot = tokio::select! {
        s = ctx.backup_slots.acquire() => s.map_err(|e| ServerError::Engine(e.to_string()))?,
        _ = ctx.shutdown.cancelled() => return Ok(Action::await_change()),
    };
    let mut backup: velero::Backup = match to_velero(b, &format!("Backup {name}")) {
        Ok(v) => v,
        Err(e) => {
            return fail_validation(ctx, &name, &sched, e.to_string()).await;
        }
    };
    let (store, location) = match ctx.store(backup.spec.storage_location.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            return fail_validation(ctx, &name, &sched, e.to_string()).await;
        }
    };
    if location.is_read_only() {
        return fail_validation(
            ctx,
            &name,
            &sched,
            format!(
                "backup storage location {:?} is ReadOnly: no backup can be written to it; choose another location or set its accessMode to ReadWrite",
                location.metadata.name
            ),
        )
        .await;
    }
    if b.spec.storage_location.is_none() {
        // As Velero: the object names the location it was stored in.
        backups(ctx)
            .patch(&name, &PatchParams::default(), &Patch::Merge(json!({
                "metadata": { "labels": { velero::STORAGE_LOCATION_LABEL: location.metadata.name } },
                "spec": { "storageLocation": location.metadata.name },
            })))
            .await?;
    }
    backup.spec.storage_location = Some(location.metadata.name.clone());
    backup.metadata.labels.insert(
        velero::STORAGE_LOCATION_LABEL.into(),
        location.metadata.name.clone(),
    );
    let started = Time::now();
    let expiration = chrono::Duration::from_std(backup.ttl().0)
        .ok()
        .map(|ttl| Time(started.0 + ttl));
    set_status(
        ctx,
        &name,
        json!({
            "phase": "InProgress",
            "startTimestamp": started,
            "expiration": expiration,
            "formatVersion": "1.1.0",
            "version": 1,
        }),
    )
    .await?;
    ctx.metrics.backup_attempt.get_or_create(&sched).inc();
    tracing::info!(backup = %name, location = %location.metadata.name, "backup started");

    let clock = Instant::now();
    let progress = Arc::new(Progress::default());
    let opts = BackupOptions::default();
    let run = run_backup(&ctx.cluster, &store, backup, &opts, progress.clone());
    let mut reported = (0, 0);
    let outcome = super::drive(&ctx.shutdown, ctx.grace, run, || {
        let now = (
            progress.total.load(Ordering::Relaxed),
            progress.done.load(Ordering::Relaxed),
        );
        let changed = std::mem::replace(&mut reported, now) != now;
        let (ctx, name) = (&ctx, &name);
        async move {
            if changed
                && let Err(e) = set_status(
                    ctx,
                    name,
                    json!({ "progress": { "totalItems": now.0, "itemsBackedUp": now.1 } }),
                )
                .await
            {
                tracing::warn!(backup = %name, "progress not recorded: {e}");
            }
        }
    })
    .await;
    let secs = clock.elapsed().as_secs_f64();
    ctx.metrics
        .backup_duration
        .get_or_create(&sched)
        .observe(secs);
    match outcome {
        None => {
            set_status(ctx, &name, json!({
                "phase": "Failed",
                "failureReason": format!("the lifeboat server was stopped; the backup did not finish within the {}s grace period", ctx.grace.as_secs()),
                "completionTimestamp": Time::now(),
            }))
            .await?;
            ctx.metrics.backup_failure.get_or_create(&sched).inc();
            ctx.metrics.backup_last_status.get_or_create(&sched).set(0);
        }
        Some(Err(e)) => {
            tracing::warn!(backup = %name, "backup failed: {e}");
            set_status(
                ctx,
                &name,
                json!({
                    "phase": "Failed",
                    "failureReason": e.to_string(),
                    "completionTimestamp": Time::now(),
                }),
            )
            .await?;
            ctx.metrics.backup_failure.get_or_create(&sched).inc();
            ctx.metrics.backup_last_status.get_or_create(&sched).set(0);
        }
        Some(Ok(stored)) => {
            let status = stored.status.clone().unwrap_or_default();
            let items = status.progress.map(|p| p.items_backed_up).unwrap_or(0);
            set_status(
                ctx,
                &name,
                serde_json::to_value(&status).unwrap_or_default(),
            )
            .await?;
            let m = &ctx.metrics;
            match status.phase {
                BackupPhase::Completed => {
                    m.backup_success.get_or_create(&sched).inc();
                    m.backup_last_status.get_or_create(&sched).set(1);
                    m.backup_last_successful
                        .get_or_create(&sched)
                        .set(chrono::Utc::now().timestamp());
                }
                _ => {
                    m.backup_partial_failure.get_or_create(&sched).inc();
                    m.backup_last_status.get_or_create(&sched).set(0);
                }
            }
            m.backup_items.get_or_create(&sched).set(items as i64);
            m.backup_items_errors
                .get_or_create(&sched)
                .set(status.errors as i64);
            if status.warnings > 0 {
                m.backup_warning.get_or_create(&sched).inc();
            }
            if secs > 0.0 {
                m.backup_items_per_second
                    .get_or_create(&sched)
                    .set(items as f64 / secs);
            }
            if let Ok(size) = store.size(&store.backup_paths(&name).contents()).await {
                m.backup_tarball_size.get_or_create(&sched).set(size as i64);
            }
            tracing::info!(backup = %name, phase = %status.phase, items, "backup done");
        }
    }
    Ok(Action::await_change())
}

/// The object is being deleted: delete its stored data first (the finalizer holds the
/// object until this succeeds).
async fn cleanup(b: &BackupResource, ctx: &Ctx) -> Result<Action, ServerError> {
    let name = b.name_any();
    let sched = schedule_of(b.metadata.labels.as_ref());
    let location = b
        .spec
        .storage_location
        .clone()
        .or_else(|| b.labels().get(velero::STORAGE_LOCATION_LABEL).cloned());
    let result = async {
        let (store, loc) = ctx.store(location.as_deref()).await?;
        if loc.is_read_only() {
            return Err(ServerError::Location(format!(
                "storage location {:?} is ReadOnly: backup {name}'s data cannot be deleted; set it ReadWrite, or remove the finalizer {BACKUP_FINALIZER} to forget the backup",
                loc.metadata.name
            )));
        }
        store
            .delete_backup(&name)
            .await
            .map_err(|e| ServerError::Location(e.to_string()))
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(backup = %name, "stored data deleted");
            ctx.metrics
                .backup_deletion_success
                .get_or_create(&sched)
                .inc();
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.metrics
                .backup_deletion_failure
                .get_or_create(&sched)
                .inc();
            Err(e)
        }
    }
}

/// Deletes backups whose expiration has passed (their data goes first, by the finalizer).
pub(crate) async fn run_gc(ctx: Arc<Ctx>, every: Duration) {
    loop {
        if let Err(e) = gc_once(&ctx).await {
            tracing::warn!("garbage collection: {e}");
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn gc_once(ctx: &Ctx) -> Result<(), ServerError> {
    let api = backups(ctx);
    let all = api.list(&ListParams::default()).await?;
    ctx.metrics.backup_total.set(all.items.len() as i64);
    let now = chrono::Utc::now();
    for b in all.items {
        let Some(st) = &b.status else { continue };
        if b.metadata.deletion_timestamp.is_some() || !st.phase.is_terminal() {
            continue;
        }
        if st.expiration.is_some_and(|e| e.0 <= now) {
            tracing::info!(backup = %b.name_any(), "expired; deleting it and its stored data");
            api.delete(&b.name_any(), &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

/// DeleteBackupRequests: delete the named Backup (its finalizer deletes the data).
pub(crate) async fn run_delete_requests(ctx: Arc<Ctx>) {
    let api: Api<DeleteBackupRequestResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    super::run_controller(ctx, api, "delete request", reconcile_delete).await;
}

async fn reconcile_delete(
    r: Arc<DeleteBackupRequestResource>,
    ctx: Arc<Ctx>,
) -> Result<Action, ServerError> {
    let phase = r
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if phase == "Processed" {
        return Ok(Action::await_change());
    }
    let api: Api<DeleteBackupRequestResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let name = r.name_any();
    let target = r.spec.backup_name.clone();
    let mut errors = Vec::new();
    match backups(&ctx).get_opt(&target).await? {
        Some(_) => {
            backups(&ctx)
                .delete(&target, &DeleteParams::default())
                .await?;
            // Wait for the finalizer: the object goes only after its data.
            for _ in 0..600 {
                if backups(&ctx).get_opt(&target).await?.is_none() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if backups(&ctx).get_opt(&target).await?.is_some() {
                errors.push(format!(
                    "backup {target} is still being deleted; see the server log"
                ));
            }
        }
        None => {
            // No object: delete the data from the default location if it is there.
            match ctx.store(None).await {
                Ok((store, _)) => {
                    if let Err(e) = store.delete_backup(&target).await {
                        errors.push(e.to_string());
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({
            "status": { "phase": "Processed", "errors": errors }
        })),
    )
    .await?;
    Ok(Action::await_change())
}
