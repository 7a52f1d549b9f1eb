//! The Backup controller, DeleteBackupRequests and TTL garbage collection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};
use lifeboat_types::api::crd::{
    BackupResource, BackupStorageLocationResource, DeleteBackupRequestResource,
};
use lifeboat_types::api::velero::{self, BackupPhase, Time};
use lifeboat_types::rules;
use serde_json::json;

use crate::metrics::{ScheduleLabel, schedule_of};
use crate::{BACKUP_FINALIZER, Ctx, ServerError, to_velero};
use lifeboat_engine::backup::{BackupOptions, Progress, run_backup};

fn backups(ctx: &Ctx) -> Api<BackupResource> {
    Api::namespaced(ctx.client.clone(), &ctx.ns)
}

async fn set_status(ctx: &Ctx, name: &str, status: serde_json::Value) -> Result<(), ServerError> {
    super::patch_status(&backups(ctx), name, status).await
}

/// The spec cannot be run (it does not convert, or its location cannot be opened).
async fn fail_validation(
    ctx: &Ctx,
    b: &BackupResource,
    sched: &ScheduleLabel,
    why: String,
) -> Result<Action, ServerError> {
    // As Velero, a refused backup expires too (its TTL from now), so refusals of a
    // misconfigured schedule do not pile up forever.
    let expiration = rules::backups::expiration(Time::now(), b.spec.ttl_or_default()).ok();
    set_status(
        ctx,
        &b.name_any(),
        json!({ "phase": "FailedValidation", "validationErrors": [why], "expiration": expiration }),
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
            // If that run got as far as storing the backup (its status write was what
            // failed), the stored status is the truth.
            if let Some(stored) = stored_status_of_this_object(ctx, b).await {
                tracing::warn!(backup = %name, "found InProgress but stored complete by an earlier run; taking the stored status");
                set_status(ctx, &name, serde_json::to_value(stored).unwrap_or_default()).await?;
                return Ok(Action::await_change());
            }
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
        let stored = lifeboat_engine::catalog::get_backup(&store, &name)
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
            return fail_validation(ctx, b, &sched, e.to_string()).await;
        }
    };
    let (store, location) = match ctx.store(backup.spec.storage_location.as_deref()).await {
        Ok(s) => s,
        // The location is wrong (missing, bad Secret, bad config): the spec cannot run.
        Err(ServerError::Location(e)) => {
            return fail_validation(ctx, b, &sched, e).await;
        }
        // The API server did not answer: try again later (the backup stays New).
        Err(e) => return Err(e),
    };
    if location.is_read_only() {
        return fail_validation(ctx, b,
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
    let expiration = match rules::backups::expiration(started, backup.ttl()) {
        Ok(e) => e,
        Err(e) => return fail_validation(ctx, b, &sched, e.to_string()).await,
    };
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
    let outcome = super::drive_with_progress(
        ctx,
        &backups(ctx),
        &name,
        "itemsBackedUp",
        || {
            (
                progress.total.load(Ordering::Relaxed),
                progress.done.load(Ordering::Relaxed),
            )
        },
        run,
    )
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
        Some(Err(e @ lifeboat_engine::backup::BackupError::AlreadyExists { .. })) => {
            // Another backup's files hold the name: nothing was written, nothing of ours
            // is stored (and deleting this object must not touch them).
            return fail_validation(ctx, b, &sched, e.to_string()).await;
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
/// Whether a stored backup was written for the object `b` (it carries `b`'s uid).
fn written_for(stored: &velero::Backup, b: &BackupResource) -> bool {
    b.uid().is_some() && stored.metadata.uid == b.uid()
}

/// The stored status of `b`, when its location holds a `velero-backup.json` written for
/// this very object (same uid) with a terminal phase.
async fn stored_status_of_this_object(
    ctx: &Ctx,
    b: &BackupResource,
) -> Option<velero::BackupStatus> {
    let location = location_of(b);
    let (store, _) = ctx.store(location.as_deref()).await.ok()?;
    let stored = lifeboat_engine::catalog::get_backup(&store, &b.name_any())
        .await
        .ok()?;
    (written_for(&stored, b) && stored.phase().is_terminal())
        .then(|| stored.status.unwrap_or_default())
}

/// The location a Backup object's data is in: its spec, else its location label.
pub(crate) fn location_of(b: &BackupResource) -> Option<String> {
    b.spec
        .storage_location
        .clone()
        .or_else(|| b.labels().get(velero::STORAGE_LOCATION_LABEL).cloned())
}

/// What deleting a Backup object does to the stored files of its name.
enum StoredData {
    /// Ours (the stored `velero-backup.json` carries this object's uid, or the object was
    /// synced from that stored backup), or a partial upload of ours: delete it.
    Delete,
    /// Nothing to delete (never ran, or nothing stored under the name).
    Nothing,
    /// Another backup's files (its uid differs): keep them.
    NotOurs(String),
}

async fn cleanup(b: &BackupResource, ctx: &Ctx) -> Result<Action, ServerError> {
    let name = b.name_any();
    let sched = schedule_of(b.metadata.labels.as_ref());
    let phase = b.status.as_ref().map(|s| s.phase).unwrap_or_default();
    // A backup refused before it ran wrote nothing.
    if matches!(phase, BackupPhase::New | BackupPhase::FailedValidation) {
        return Ok(Action::await_change());
    }
    let location = location_of(b);
    let synced = b.annotations().contains_key(super::SYNCED_ANNOTATION);
    let result = async {
        let (store, loc) = match ctx.store(location.as_deref()).await {
            Ok(s) => s,
            // The location object is gone: its data cannot be reached from here; keeping
            // the Backup object forever would not bring it back.
            Err(ServerError::Location(e)) if e.contains("does not exist") => {
                tracing::warn!(backup = %name, "{e}; the object goes, its stored data (if any) is left");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let verdict = match lifeboat_engine::catalog::get_backup(&store, &name).await {
            Ok(stored) if synced || written_for(&stored, b) => {
                StoredData::Delete
            }
            Ok(stored) => StoredData::NotOurs(format!(
                "the backup stored as {name:?} in location {:?} was written by another Backup object (uid {}), not this one: its data is kept",
                loc.metadata.name,
                stored.metadata.uid.as_deref().unwrap_or("<none>")
            )),
            // No velero-backup.json: at most a partial upload of this object's run.
            Err(lifeboat_engine::catalog::CatalogError::NotFound { .. }) => {
                if phase == BackupPhase::Completed || phase == BackupPhase::PartiallyFailed {
                    StoredData::Nothing
                } else {
                    StoredData::Delete
                }
            }
            Err(e) => return Err(ServerError::Location(e.to_string())),
        };
        match verdict {
            StoredData::Nothing => Ok(false),
            StoredData::NotOurs(why) => {
                tracing::warn!(backup = %name, "{why}");
                Ok(false)
            }
            StoredData::Delete => {
                if loc.is_read_only() {
                    return Err(ServerError::Location(format!(
                        "storage location {:?} is ReadOnly: backup {name}'s data cannot be deleted; set it ReadWrite, or remove the finalizer {BACKUP_FINALIZER} to forget the backup",
                        loc.metadata.name
                    )));
                }
                store
                    .delete_backup(&name)
                    .await
                    .map_err(|e| ServerError::Location(e.to_string()))?;
                Ok(true)
            }
        }
    }
    .await;
    match result {
        Ok(deleted) => {
            if deleted {
                tracing::info!(backup = %name, "stored data deleted");
            }
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
    // As Velero: backups in ReadOnly locations are not expired (their data cannot be
    // deleted; the object would hang on its finalizer).
    let locations: Api<BackupStorageLocationResource> =
        Api::namespaced(ctx.client.clone(), &ctx.ns);
    let read_only: std::collections::BTreeSet<String> = locations
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|l| l.spec.access_mode == Some(velero::AccessMode::ReadOnly))
        .map(|l| l.name_any())
        .collect();
    for b in all.items {
        let Some(st) = &b.status else { continue };
        if b.metadata.deletion_timestamp.is_some() || !st.phase.is_terminal() {
            continue;
        }
        let location = location_of(&b);
        if location.is_some_and(|l| read_only.contains(&l)) {
            continue;
        }
        if st.expiration.is_some_and(|e| e.0 <= now) {
            tracing::info!(backup = %b.name_any(), "expired; deleting it and its stored data");
            if let Err(e) = api.delete(&b.name_any(), &DeleteParams::default()).await {
                tracing::warn!(backup = %b.name_any(), "expiry: {e}");
            }
        }
    }
    Ok(())
}

/// DeleteBackupRequests: delete the named Backup (its finalizer deletes the data).
pub(crate) async fn run_delete_requests(ctx: Arc<Ctx>) {
    let api: Api<DeleteBackupRequestResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    super::run_controller(ctx, api, "delete request", reconcile_delete).await;
}

/// How long a DeleteBackupRequest waits for its Backup (and the data) to go.
const DELETE_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

async fn reconcile_delete(
    r: Arc<DeleteBackupRequestResource>,
    ctx: Arc<Ctx>,
) -> Result<Action, ServerError> {
    let api: Api<DeleteBackupRequestResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let name = r.name_any();
    // Decide on the request as the API server has it (the cache lags our writes).
    let Some(r) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let phase = r
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if phase == "Processed" {
        return Ok(Action::await_change());
    }
    let target = r.spec.backup_name.clone();
    let done = |errors: Vec<String>| {
        let api = api.clone();
        let name = name.clone();
        async move {
            super::patch_status(
                &api,
                &name,
                json!({ "phase": "Processed", "errors": errors }),
            )
            .await?;
            Ok::<_, ServerError>(Action::await_change())
        }
    };
    if let Err(e) = lifeboat_types::api::names::validate_name("backup", &target) {
        return done(vec![format!("spec.backupName: {e}")]).await;
    }
    let backup = backups(&ctx).get_opt(&target).await?;
    match (backup, phase.as_str()) {
        // Gone, after this request deleted it: its finalizer deleted the data first.
        (None, "InProgress") => done(vec![]).await,
        // Never there: as Velero, only Backup objects are deleted through requests (a
        // stored backup with no object here is synced first, or deleted with the CLI).
        (None, _) => done(vec![format!("backup {target:?} not found")]).await,
        (Some(b), _) => {
            let started_secs = r
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or_else(|| chrono::Utc::now().timestamp());
            let waited =
                Duration::from_secs((chrono::Utc::now().timestamp() - started_secs).max(0) as u64);
            if waited > DELETE_REQUEST_TIMEOUT {
                return done(vec![format!(
                    "backup {target:?} is still being deleted after {}: its stored data could not be deleted (see the Backup's location: ReadOnly? unreachable?) — the server log names the cause",
                    lifeboat_types::GoDuration(DELETE_REQUEST_TIMEOUT)
                )])
                .await;
            }
            if b.metadata.deletion_timestamp.is_none() {
                backups(&ctx)
                    .delete(&target, &DeleteParams::default())
                    .await?;
            }
            if phase != "InProgress" {
                super::patch_status(&api, &name, json!({ "phase": "InProgress" })).await?;
            }
            // Look again shortly: the finalizer removes the object once the data is gone.
            Ok(Action::requeue(Duration::from_secs(2)))
        }
    }
}
