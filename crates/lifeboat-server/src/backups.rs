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
use lifeboat_types::rules::backup_controller as rule;
use lifeboat_types::rules::stored_data;
use serde_json::json;

use crate::metrics::{ScheduleLabel, schedule_of};
use crate::{BACKUP_FINALIZER, Ctx, ServerError, to_velero};
use lifeboat_engine::backup::{BackupOptions, Progress, run_backup};
use lifeboat_engine::storage::Store;

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
        json!({ "phase": "FailedValidation", "validationErrors": [&why], "expiration": expiration }),
    )
    .await?;
    ctx.metrics
        .backup_validation_failure
        .get_or_create(sched)
        .inc();
    notify_failed(ctx, &b.name_any(), sched, "FailedValidation", &why);
    Ok(Action::await_change())
}

/// Queues the notification of a backup that ended `phase` for `reason`.
fn notify_failed(ctx: &Ctx, name: &str, sched: &ScheduleLabel, phase: &str, reason: &str) {
    ctx.notifier
        .send(lifeboat_types::readiness::notify::backup_failed(
            &ctx.ns,
            name,
            &sched.schedule,
            phase,
            reason,
            chrono::Utc::now(),
        ));
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

/// What a reconcile holds between its observations and its actions.
struct Held<'a> {
    name: String,
    /// The object as the API server has it (once read).
    object: Option<BackupResource>,
    sched: ScheduleLabel,
    _slot: Option<tokio::sync::SemaphorePermit<'a>>,
    /// The spec as a velero.io/v1 Backup (once converted).
    backup: Option<velero::Backup>,
    /// The location's store (once opened).
    store: Option<Store>,
    /// How long the run took, in seconds.
    secs: f64,
}

/// One reconcile of a Backup object: observe (I/O) what [`rule::decide`] asks for, until it
/// answers with something to do; do it (I/O). A run's outcome is observed in turn.
async fn apply(cached: &BackupResource, ctx: &Ctx) -> Result<Action, ServerError> {
    let mut seen = rule::Observed {
        cached_phase: cached.status.as_ref().map(|s| s.phase).unwrap_or_default(),
        ..Default::default()
    };
    let mut held = Held {
        name: cached.name_any(),
        object: None,
        sched: schedule_of(cached.metadata.labels.as_ref()),
        _slot: None,
        backup: None,
        store: None,
        secs: 0.0,
    };
    loop {
        match rule::decide(&seen) {
            rule::Action::Look(fact) => observe(ctx, fact, &mut seen, &mut held).await?,
            rule::Action::Run {
                location,
                name_location,
                started,
                expiration,
            } => {
                let outcome = run(
                    ctx,
                    &mut held,
                    &location,
                    name_location,
                    started,
                    expiration,
                )
                .await?;
                seen.outcome = Some(outcome);
            }
            action => return act(ctx, &mut held, action).await,
        }
    }
}

/// Observes `fact` into `seen` (keeping in `held` what the actions need).
async fn observe<'a>(
    ctx: &'a Ctx,
    fact: rule::Fact,
    seen: &mut rule::Observed,
    held: &mut Held<'a>,
) -> Result<(), ServerError> {
    let name = held.name.clone();
    let object = || held.object.as_ref().ok_or_else(|| missing(&name));
    match fact {
        // The controller's cache can lag behind this server's own status writes: a
        // reconcile queued while the backup ran may see it New or InProgress after it
        // Completed (and would run it again, or fail it as orphaned).
        rule::Fact::Current => {
            let fresh = backups(ctx).get_opt(&name).await?;
            seen.current = Some(match &fresh {
                None => rule::Current::Gone,
                Some(b) => rule::Current::Here {
                    phase: b.status.as_ref().map(|s| s.phase).unwrap_or_default(),
                    synced_from: b.annotations().get(super::SYNCED_ANNOTATION).cloned(),
                },
            });
            if let Some(b) = &fresh {
                held.sched = schedule_of(b.metadata.labels.as_ref());
            }
            held.object = fresh;
        }
        rule::Fact::Stored => seen.stored = Some(stored_copy(ctx, object()?).await),
        rule::Fact::SyncedStatus => {
            let loc = object()?
                .annotations()
                .get(super::SYNCED_ANNOTATION)
                .cloned();
            let (store, _) = ctx.store(loc.as_deref()).await?;
            let stored = lifeboat_engine::catalog::get_backup(&store, &name).await?;
            seen.synced_status = Some(stored.status.unwrap_or_default());
        }
        rule::Fact::Slot => {
            tokio::select! {
                s = ctx.backup_slots.acquire() => {
                    held._slot = Some(s?);
                    seen.slot = Some(rule::Slot::Held);
                }
                _ = ctx.shutdown.cancelled() => seen.slot = Some(rule::Slot::ShuttingDown),
            }
        }
        rule::Fact::Spec => {
            let b = object()?;
            seen.spec = Some(
                match to_velero::<velero::Backup>(b, &format!("Backup {name}")) {
                    Ok(v) => {
                        let spec = rule::Spec {
                            ttl: v.ttl(),
                            names_location: b.spec.storage_location.is_some(),
                        };
                        held.backup = Some(v);
                        Ok(spec)
                    }
                    Err(e) => Err(crate::chain(&e)),
                },
            );
        }
        rule::Fact::Location => {
            let wanted = held
                .backup
                .as_ref()
                .and_then(|v| v.spec.storage_location.clone());
            seen.location = Some(match ctx.store(wanted.as_deref()).await {
                Ok((store, location)) => {
                    held.store = Some(store);
                    rule::Location::Usable {
                        read_only: location.is_read_only(),
                        name: location.metadata.name,
                    }
                }
                // The location is wrong (missing, bad Secret, bad config): the spec cannot run.
                Err(e) if e.is_permanent() => rule::Location::Invalid(crate::chain(&e)),
                // The API server did not answer: try again later (the backup stays New).
                Err(e) => return Err(e),
            });
        }
        rule::Fact::Clock => seen.started = Some(Time::now()),
    }
    Ok(())
}

/// A state the decision never asks for an action in (a fact it needs was not observed).
fn missing(name: &str) -> ServerError {
    ServerError::NotObserved {
        object: format!("backup {name}"),
    }
}

/// Runs the backup (the decision said so) and observes how it ended.
async fn run(
    ctx: &Ctx,
    held: &mut Held<'_>,
    location: &str,
    name_location: bool,
    started: Time,
    expiration: Time,
) -> Result<rule::RunOutcome, ServerError> {
    let name = held.name.clone();
    let (Some(mut backup), Some(store)) = (held.backup.take(), held.store.as_ref()) else {
        return Err(missing(&name));
    };
    let sched = &held.sched;
    // As Velero, recorded on the object in one patch: the location it was stored in, and
    // the server's --default-volumes-to-fs-backup for a backup that does not say.
    let fs_backup_default =
        backup.spec.default_volumes_to_fs_backup.is_none() && ctx.default_volumes_to_fs_backup;
    let mut patch = json!({});
    if name_location {
        patch["metadata"] = json!({ "labels": { velero::STORAGE_LOCATION_LABEL: location } });
        patch["spec"]["storageLocation"] = json!(location);
    }
    if fs_backup_default {
        patch["spec"]["defaultVolumesToFsBackup"] = json!(true);
        backup.spec.default_volumes_to_fs_backup = Some(true);
    }
    if name_location || fs_backup_default {
        backups(ctx)
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    backup.spec.storage_location = Some(location.to_owned());
    backup
        .metadata
        .labels
        .insert(velero::STORAGE_LOCATION_LABEL.into(), location.to_owned());
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
    ctx.metrics.backup_attempt.get_or_create(sched).inc();
    tracing::info!(backup = %name, location = %location, "backup started");

    let clock = Instant::now();
    let progress = Arc::new(Progress::default());
    let opts = BackupOptions {
        pod_volumes: Some(ctx.pod_volume_settings()),
        ..Default::default()
    };
    let run = run_backup(&ctx.cluster, store, backup, &opts, progress.clone());
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
        Some(&opts.stop),
        run,
    )
    .await;
    held.secs = clock.elapsed().as_secs_f64();
    ctx.metrics
        .backup_duration
        .get_or_create(sched)
        .observe(held.secs);
    Ok(match outcome {
        None | Some(Err(lifeboat_engine::backup::BackupError::Interrupted { .. })) => {
            rule::RunOutcome::Stopped
        }
        Some(Err(e @ lifeboat_engine::backup::BackupError::AlreadyExists { .. })) => {
            rule::RunOutcome::NameTaken(crate::chain(&e))
        }
        Some(Err(e)) => rule::RunOutcome::Failed(crate::chain(&e)),
        Some(Ok(stored)) => rule::RunOutcome::Stored(Box::new(stored.status.unwrap_or_default())),
    })
}

/// Does what the decision says.
async fn act(ctx: &Ctx, held: &mut Held<'_>, action: rule::Action) -> Result<Action, ServerError> {
    let name = &held.name;
    let sched = &held.sched;
    let m = &ctx.metrics;
    match action {
        rule::Action::Look(_) | rule::Action::Run { .. } | rule::Action::Nothing => {}
        rule::Action::Adopt(status) => {
            if held
                .object
                .as_ref()
                .and_then(|b| b.status.as_ref())
                .is_some_and(|s| s.phase == BackupPhase::InProgress)
            {
                tracing::warn!(backup = %name, "found InProgress but stored complete by an earlier run; taking the stored status");
            }
            set_status(ctx, name, serde_json::to_value(*status).unwrap_or_default()).await?;
        }
        rule::Action::FailOrphan => {
            tracing::warn!(backup = %name, "found InProgress with no server running it; marking it Failed");
            let reason =
                "the lifeboat server stopped while this backup ran; create the backup again";
            set_status(
                ctx,
                name,
                json!({
                    "phase": "Failed",
                    "failureReason": reason,
                    "completionTimestamp": Time::now(),
                }),
            )
            .await?;
            m.backup_failure.get_or_create(sched).inc();
            notify_failed(ctx, name, sched, "Failed", reason);
        }
        rule::Action::FailValidation(why) => {
            let b = held.object.as_ref().ok_or_else(|| missing(name))?;
            return fail_validation(ctx, b, sched, why).await;
        }
        rule::Action::FailStopped => {
            let reason = format!(
                "interrupted by shutdown: the lifeboat server was stopped and the backup did not finish within its {}s grace period; create the backup again",
                ctx.grace.as_secs()
            );
            set_status(
                ctx,
                name,
                json!({
                    "phase": "Failed",
                    "failureReason": &reason,
                    "completionTimestamp": Time::now(),
                }),
            )
            .await?;
            m.backup_failure.get_or_create(sched).inc();
            notify_failed(ctx, name, sched, "Failed", &reason);
            m.backup_last_status.get_or_create(sched).set(0);
        }
        rule::Action::FailRun(why) => {
            tracing::warn!(backup = %name, "backup failed: {why}");
            set_status(
                ctx,
                name,
                json!({
                    "phase": "Failed",
                    "failureReason": &why,
                    "completionTimestamp": Time::now(),
                }),
            )
            .await?;
            m.backup_failure.get_or_create(sched).inc();
            notify_failed(ctx, name, sched, "Failed", &why);
            m.backup_last_status.get_or_create(sched).set(0);
        }
        rule::Action::Record(status) => {
            let completed = status.phase == BackupPhase::Completed;
            record(ctx, held, *status).await?;
            if completed {
                // The copies do not hold up the next backup.
                drop(held._slot.take());
                crate::replicate::after_backup(ctx, held.object.as_ref(), held.store.as_ref())
                    .await;
            }
        }
    }
    Ok(Action::await_change())
}

/// Writes a stored backup's status to its object, and its metrics.
async fn record(
    ctx: &Ctx,
    held: &Held<'_>,
    status: velero::BackupStatus,
) -> Result<(), ServerError> {
    let (name, sched, secs) = (&held.name, &held.sched, held.secs);
    let items = status.progress.map(|p| p.items_backed_up).unwrap_or(0);
    set_status(ctx, name, serde_json::to_value(&status).unwrap_or_default()).await?;
    let m = &ctx.metrics;
    match status.phase {
        BackupPhase::Completed => {
            m.backup_success.get_or_create(sched).inc();
            m.backup_last_status.get_or_create(sched).set(1);
            m.backup_last_successful
                .get_or_create(sched)
                .set(chrono::Utc::now().timestamp());
        }
        phase => {
            m.backup_partial_failure.get_or_create(sched).inc();
            m.backup_last_status.get_or_create(sched).set(0);
            ctx.notifier.send(if phase == BackupPhase::PartiallyFailed {
                lifeboat_types::readiness::notify::backup_partially_failed(
                    &ctx.ns,
                    name,
                    &sched.schedule,
                    status.errors,
                    chrono::Utc::now(),
                )
            } else {
                lifeboat_types::readiness::notify::backup_failed(
                    &ctx.ns,
                    name,
                    &sched.schedule,
                    &phase.to_string(),
                    status.failure_reason.as_deref().unwrap_or("see its logs"),
                    chrono::Utc::now(),
                )
            });
        }
    }
    m.backup_items.get_or_create(sched).set(items as i64);
    m.backup_items_errors
        .get_or_create(sched)
        .set(status.errors as i64);
    if status.warnings > 0 {
        m.backup_warning.get_or_create(sched).inc();
    }
    if secs > 0.0 {
        m.backup_items_per_second
            .get_or_create(sched)
            .set(items as f64 / secs);
    }
    if let Some(store) = &held.store
        && let Ok(size) = store.size(&store.backup_paths(name).contents()).await
    {
        m.backup_tarball_size.get_or_create(sched).set(size as i64);
    }
    tracing::info!(backup = %name, phase = %status.phase, items, "backup done");
    Ok(())
}

/// Whether a stored backup was written for the object `b` (it carries `b`'s uid).
fn written_for(stored: &velero::Backup, b: &BackupResource) -> bool {
    b.uid().is_some() && stored.metadata.uid == b.uid()
}

/// The `velero-backup.json` stored under `b`'s name in its location, if one can be read.
async fn stored_copy(ctx: &Ctx, b: &BackupResource) -> Option<rule::StoredCopy> {
    let location = location_of(b);
    let (store, _) = ctx.store(location.as_deref()).await.ok()?;
    let stored = lifeboat_engine::catalog::get_backup(&store, &b.name_any())
        .await
        .ok()?;
    Some(rule::StoredCopy {
        own: written_for(&stored, b),
        status: stored.status.unwrap_or_default(),
    })
}

/// The location a Backup object's data is in: its spec, else its location label.
pub(crate) fn location_of(b: &BackupResource) -> Option<String> {
    b.spec
        .storage_location
        .clone()
        .or_else(|| b.labels().get(velero::STORAGE_LOCATION_LABEL).cloned())
}

/// What a Backup object is, for [`stored_data::on_delete`]: a record of a stored backup
/// (made by location sync) or this cluster's own.
fn object_kind(b: &BackupResource) -> stored_data::Object {
    let annotations = b.annotations();
    if annotations.contains_key(super::SYNCED_ANNOTATION) {
        stored_data::Object::Record {
            uid: annotations.get(stored_data::SYNCED_UID).cloned(),
        }
    } else {
        stored_data::Object::Own {
            uid: b.uid(),
            phase: b.status.as_ref().map(|s| s.phase).unwrap_or_default(),
        }
    }
}

/// Why stored data is kept, for the log.
fn kept_because(k: &stored_data::Kept, name: &str, location: &str) -> String {
    use stored_data::Kept;
    match k {
        Kept::NeverRan => format!("backup {name:?} never ran: it stored nothing"),
        Kept::AnotherBackup(uid) => format!(
            "the backup stored as {name:?} in location {location:?} was written by another Backup object (uid {}), not this one: its data is kept",
            uid.as_deref().unwrap_or("<none>")
        ),
        Kept::NotOwned => format!(
            "backup {name:?} was synced from location {location:?}: the record is removed, its stored data is kept (it is the writer's; delete it with a DeleteBackupRequest, `lifeboat backup delete`, or annotate the location {}=true)",
            stored_data::OWNS_SYNCED_DATA
        ),
        Kept::NotTheSameBackup { record, stored } => format!(
            "the record of backup {name:?} was synced from a stored backup with uid {}, location {location:?} now holds uid {}: the record is removed, the stored data is kept",
            record.as_deref().unwrap_or("<none>"),
            stored.as_deref().unwrap_or("<none>")
        ),
    }
}

/// The object is being deleted: delete its stored data first when it is the object's to
/// delete ([`stored_data::on_delete`]; the finalizer holds the object until this succeeds).
async fn cleanup(b: &BackupResource, ctx: &Ctx) -> Result<Action, ServerError> {
    let name = b.name_any();
    let sched = schedule_of(b.metadata.labels.as_ref());
    let object = object_kind(b);
    // A backup refused before it ran wrote nothing (no need to open its location).
    if let stored_data::Object::Own {
        phase: BackupPhase::New | BackupPhase::FailedValidation,
        ..
    } = object
    {
        return Ok(Action::await_change());
    }
    let location = location_of(b);
    let requested = b.annotations().contains_key(stored_data::DELETE_REQUESTED);
    let result = async {
        let (store, loc) = match ctx.store(location.as_deref()).await {
            Ok(s) => s,
            // The location object is gone: its data cannot be reached from here; keeping
            // the Backup object forever would not bring it back.
            Err(ServerError::Location(e)) if e.is_gone() => {
                tracing::warn!(backup = %name, "{e}; the object goes, its stored data (if any) is left");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let stored = match lifeboat_engine::catalog::get_backup(&store, &name).await {
            Ok(stored) => stored_data::Stored::Backup {
                uid: stored.metadata.uid,
            },
            Err(lifeboat_engine::catalog::CatalogError::NotFound { .. }) => {
                stored_data::Stored::Nothing
            }
            Err(e) => return Err(e.into()),
        };
        let verdict = stored_data::on_delete(&stored_data::Deletion {
            object,
            stored,
            owns_synced: stored_data::owns_synced_data(
                loc.metadata.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            requested,
        });
        match verdict {
            stored_data::Verdict::NothingStored => Ok(false),
            stored_data::Verdict::Keep(why) => {
                let why = kept_because(&why, &name, &loc.metadata.name);
                if requested {
                    tracing::warn!(backup = %name, "deletion requested: {why}");
                } else {
                    tracing::info!(backup = %name, "{why}");
                }
                Ok(false)
            }
            stored_data::Verdict::Delete => {
                if loc.is_read_only() {
                    return Err(ServerError::ReadOnlyData {
                        location: loc.metadata.name.clone(),
                        backup: name.clone(),
                    });
                }
                store.delete_backup(&name).await?;
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
            tracing::warn!("garbage collection: {}", crate::chain(&e));
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
    let mut read_only = std::collections::BTreeSet::new();
    let mut owned = std::collections::BTreeSet::new();
    for l in locations.list(&ListParams::default()).await?.items {
        if l.spec.access_mode == Some(velero::AccessMode::ReadOnly) {
            read_only.insert(l.name_any());
        }
        if stored_data::owns_synced_data(
            l.annotations()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ) {
            owned.insert(l.name_any());
        }
    }
    for b in all.items {
        let Some(st) = &b.status else { continue };
        if b.metadata.deletion_timestamp.is_some() || !st.phase.is_terminal() {
            continue;
        }
        let location = location_of(&b);
        if location.as_ref().is_some_and(|l| read_only.contains(l)) {
            continue;
        }
        if st.expiration.is_some_and(|e| e.0 <= now) {
            // A record of another cluster's backup expires on the writer's TTL, here as
            // there; deleting it removes the record only (the finalizer decides, by
            // `stored_data::on_delete`), unless this cluster owns the location's data.
            let record = b.annotations().contains_key(super::SYNCED_ANNOTATION);
            if record && !location.as_ref().is_some_and(|l| owned.contains(l)) {
                tracing::info!(backup = %b.name_any(), "expired; removing the synced record (its stored data is the writer's and stays)");
            } else {
                tracing::info!(backup = %b.name_any(), "expired; deleting it and its stored data");
            }
            if let Err(e) = api.delete(&b.name_any(), &DeleteParams::default()).await {
                tracing::warn!(backup = %b.name_any(), "expiry: {}", crate::chain(&e));
            }
        }
    }
    Ok(())
}

/// Why an explicit deletion of the record `b` would keep its data (its synced uid is not
/// the stored backup's, or either has none), when it would; `None` for an own object, or
/// when the location or the stored backup cannot be read (the finalizer decides then).
async fn record_refusal(ctx: &Ctx, b: &BackupResource) -> Option<String> {
    let stored_data::Object::Record { uid } = object_kind(b) else {
        return None;
    };
    let name = b.name_any();
    let (store, loc) = ctx.store(location_of(b).as_deref()).await.ok()?;
    let stored = lifeboat_engine::catalog::get_backup(&store, &name)
        .await
        .ok()?;
    let verdict = stored_data::on_delete(&stored_data::Deletion {
        object: stored_data::Object::Record { uid: uid.clone() },
        stored: stored_data::Stored::Backup {
            uid: stored.metadata.uid.clone(),
        },
        owns_synced: false,
        requested: true,
    });
    let stored_data::Verdict::Keep(_) = verdict else {
        return None;
    };
    Some(format!(
        "backup {name:?} is a record synced from location {:?} of a stored backup with uid {}, and the location holds uid {}: its data is not deleted through this record and nothing was deleted (sync refreshes the record; `lifeboat backup delete {name}` on the location deletes the data)",
        loc.metadata.name,
        uid.as_deref().unwrap_or("<none>"),
        stored.metadata.uid.as_deref().unwrap_or("<none>")
    ))
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
            // A record whose data cannot be matched to it keeps that data even when asked:
            // say so, instead of a Processed request with the data still stored.
            if b.metadata.deletion_timestamp.is_none()
                && let Some(why) = record_refusal(&ctx, &b).await
            {
                return done(vec![why]).await;
            }
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
                // An explicit request: a record of a stored backup deletes its data too,
                // when it is the same backup (`stored_data::on_delete`).
                if !b.annotations().contains_key(stored_data::DELETE_REQUESTED) {
                    backups(&ctx)
                        .patch(
                            &target,
                            &PatchParams::default(),
                            &Patch::Merge(json!({
                                "metadata": { "annotations": { stored_data::DELETE_REQUESTED: name } },
                            })),
                        )
                        .await?;
                }
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
