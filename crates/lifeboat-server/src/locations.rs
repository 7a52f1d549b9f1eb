//! Storage locations: validation (Available/Unavailable with the reason) and sync —
//! backups found in a location that have no Backup object here get one, with the stored
//! status, so that a cluster that did not make them can restore them. Each location is
//! validated every `validationFrequency` and synced every `backupSyncPeriod` (the server's
//! defaults when unset, never when `0s`), timed from its own status clocks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeboat_types::api::crd::{BackupResource, BackupStorageLocationResource};
use lifeboat_types::api::velero::{self, Time};
use lifeboat_types::rules::location;
use serde_json::json;

use crate::{Ctx, ServerError};
use lifeboat_engine::catalog;
use lifeboat_engine::cluster::ApiErrorKind;

/// The longest the loop sleeps: new and changed locations are seen within this.
const MAX_SLEEP: Duration = Duration::from_secs(10);

pub(crate) async fn run(ctx: Arc<Ctx>, validation_every: Duration, sync_every: Duration) {
    loop {
        let sleep = match once(&ctx, validation_every, sync_every).await {
            Ok(next) => next
                .unwrap_or(MAX_SLEEP)
                .clamp(Duration::from_secs(1), MAX_SLEEP),
            Err(e) => {
                tracing::warn!("storage locations: {}", crate::chain(&e));
                MAX_SLEEP
            }
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// One pass over the locations: each is validated and synced when its own clocks say so
/// (`lifeboat_types::rules::location`). Returns how long until the next is due.
async fn once(
    ctx: &Ctx,
    validation_every: Duration,
    sync_every: Duration,
) -> Result<Option<Duration>, ServerError> {
    let api: Api<BackupStorageLocationResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let mut next: Option<Duration> = None;
    for bsl in api.list(&ListParams::default()).await?.items {
        let name = bsl.name_any();
        let now = chrono::Utc::now();
        let due = location::due(
            &bsl.spec,
            bsl.status.as_ref(),
            now,
            validation_every,
            sync_every,
        );
        let mut status = bsl.status.clone().unwrap_or_default();
        // The gauge follows the stored phase, so a new leader exports it at once.
        if let Some(phase) = &status.phase {
            ctx.metrics
                .location_status
                .get_or_create(&super::metrics::LocationLabel {
                    backup_location_name: name.clone(),
                })
                .set(i64::from(
                    *phase == velero::BackupStorageLocationPhase::Available,
                ));
        }
        if (due.validate || due.sync)
            && let Err(e) = work(ctx, &api, &name, due, &mut status).await
        {
            // One location's trouble (deleted meanwhile, a refused patch) does not stop
            // the others.
            tracing::warn!(location = %name, "{}", crate::chain(&e));
        }
        let after = location::next_due_in(
            &bsl.spec,
            Some(&status),
            chrono::Utc::now(),
            validation_every,
            sync_every,
        );
        next = match (next, after) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(next)
}

/// Validates and/or syncs one location; records the outcome in its status (and in
/// `status`, this pass's copy).
async fn work(
    ctx: &Ctx,
    api: &Api<BackupStorageLocationResource>,
    name: &str,
    due: location::Due,
    status: &mut velero::BackupStorageLocationStatus,
) -> Result<(), ServerError> {
    let opened = async {
        let (store, loc) = ctx.store(Some(name)).await?;
        if due.validate {
            store.check(false).await?;
        }
        Ok::<_, ServerError>((store, loc))
    }
    .await;
    let label = super::metrics::LocationLabel {
        backup_location_name: name.to_string(),
    };
    let mut patch = serde_json::Map::new();
    match opened {
        Ok((store, loc)) => {
            if due.validate {
                ctx.metrics.location_status.get_or_create(&label).set(1);
                status.last_validation_time = Some(Time::now());
                patch.insert("phase".into(), json!("Available"));
                patch.insert(
                    "lastValidationTime".into(),
                    json!(status.last_validation_time),
                );
                patch.insert("message".into(), json!(null));
            }
            if due.sync {
                // A failed sync is retried at the next period, as Velero does; the
                // location's validity is the validation's to say.
                match sync(ctx, &store, &loc).await {
                    Ok(_) => {}
                    Err(e) => tracing::warn!(location = %name, "sync: {}", crate::chain(&e)),
                }
                status.last_synced_time = Some(Time::now());
                patch.insert("lastSyncedTime".into(), json!(status.last_synced_time));
            }
        }
        Err(e) => {
            let e = crate::chain(&e);
            tracing::warn!(location = %name, "unavailable: {e}");
            // Only a validation says Unavailable; a sync that cannot open the location
            // waits for the next period.
            if due.validate {
                ctx.metrics.location_status.get_or_create(&label).set(0);
                status.last_validation_time = Some(Time::now());
                patch.insert("phase".into(), json!("Unavailable"));
                patch.insert(
                    "lastValidationTime".into(),
                    json!(status.last_validation_time),
                );
                patch.insert("message".into(), json!(e));
            }
            if due.sync {
                // Tried: the next try is a period away, not the next pass.
                status.last_synced_time = Some(Time::now());
                patch.insert("lastSyncedTime".into(), json!(status.last_synced_time));
            }
        }
    }
    if !patch.is_empty() {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": patch })),
        )
        .await?;
    }
    Ok(())
}

/// Creates Backup objects for stored backups that have none; returns how many.
async fn sync(
    ctx: &Ctx,
    store: &lifeboat_engine::storage::Store,
    loc: &velero::BackupStorageLocation,
) -> Result<usize, ServerError> {
    let api: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let known: BTreeSet<String> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|b| b.name_any())
        .collect();
    let stored = store.list_backups().await?;
    let mut made = 0;
    for name in stored.into_iter().filter(|n| !known.contains(n)) {
        let b = match catalog::get_backup(store, &name).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(backup = %name, "not synced: {}", crate::chain(&e));
                continue;
            }
        };
        if !b.phase().is_terminal() {
            continue;
        }
        let mut labels = b.metadata.labels.clone();
        labels.insert(
            velero::STORAGE_LOCATION_LABEL.into(),
            loc.metadata.name.clone(),
        );
        let mut spec = b.spec.clone();
        spec.storage_location = Some(loc.metadata.name.clone());
        let mut obj = BackupResource::new(&name, spec);
        obj.metadata.namespace = Some(ctx.ns.clone());
        obj.metadata.labels = Some(labels);
        // Marks the object as a record of a stored backup: the Backup controller adopts
        // its stored status instead of running it.
        obj.metadata.annotations = Some(
            [(
                super::SYNCED_ANNOTATION.to_string(),
                loc.metadata.name.clone(),
            )]
            .into(),
        );
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => continue,
            Err(e) => return Err(e.into()),
        }
        let status = serde_json::to_value(b.status.clone().unwrap_or_default()).unwrap_or_default();
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        tracing::info!(backup = %name, location = %loc.metadata.name, "synced from the location");
        made += 1;
    }
    Ok(made)
}
