//! Storage locations: validation (Available/Unavailable with the reason) and sync —
//! backups found in a location that have no Backup object here get one (a record), with
//! the stored status and uid, so that a cluster that did not make them can restore them;
//! records whose data disappeared are pruned (`lifeboat_types::rules::stored_data`). Each location is
//! validated every `validationFrequency` and synced every `backupSyncPeriod` (the server's
//! defaults when unset, never when `0s`), timed from its own status clocks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeboat_types::api::crd::{BackupResource, BackupStorageLocationResource};
use lifeboat_types::api::velero::{self, Time};
use lifeboat_types::rules::{location, stored_data};
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
                match store.etcd_snapshots().await {
                    Ok(snaps) => record_etcd_snapshots(ctx, name, &snaps),
                    Err(e) => {
                        tracing::warn!(location = %name, "etcd snapshots: {}", crate::chain(&e))
                    }
                }
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

/// Sets `lifeboat_etcd_snapshot_last_timestamp` of location `name`: the newest snapshot
/// of each cluster stored there (the etcd-snapshot-age alert reads it), and drops the
/// series of clusters that have none any more. Snapshots of the first layout (no cluster
/// in their path) are not counted: which cluster they are of is not known.
fn record_etcd_snapshots(
    ctx: &Ctx,
    name: &str,
    snaps: &[lifeboat_types::rules::retention::StoredSnapshot],
) {
    let mut newest: std::collections::BTreeMap<&str, chrono::DateTime<chrono::Utc>> =
        std::collections::BTreeMap::new();
    for s in snaps {
        if let Some(cluster) = s.cluster.as_deref() {
            let at = newest.entry(cluster).or_insert(s.taken);
            *at = (*at).max(s.taken);
        }
    }
    let label = |cluster: &str| super::metrics::LocationClusterLabel {
        backup_location_name: name.to_owned(),
        cluster: cluster.to_owned(),
    };
    let m = &ctx.metrics;
    let mut series = m.etcd_series.lock().unwrap_or_else(|e| e.into_inner());
    for gone in series
        .get(name)
        .into_iter()
        .flatten()
        .filter(|c| !newest.contains_key(c.as_str()))
    {
        m.etcd_snapshot_last.remove(&label(gone));
    }
    for (cluster, at) in &newest {
        m.etcd_snapshot_last
            .get_or_create(&label(cluster))
            .set(at.timestamp() as f64);
    }
    series.insert(
        name.to_owned(),
        newest.keys().map(|c| (*c).to_owned()).collect(),
    );
}

/// Keeps the records of the backups stored in a location true to it
/// ([`stored_data::sync_step`]): a stored backup with no Backup object here gets a record
/// (annotated with the location and the stored uid); a record whose data disappeared is
/// pruned, one of an older backup of the same name replaced (the object only, never any
/// data: the records' finalizer keeps it). Returns how many records were made.
async fn sync(
    ctx: &Ctx,
    store: &lifeboat_engine::storage::Store,
    loc: &velero::BackupStorageLocation,
) -> Result<usize, ServerError> {
    let api: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let lname = &loc.metadata.name;
    let objects: BTreeMap<String, BackupResource> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|b| (b.name_any(), b))
        .collect();
    let listed: BTreeSet<String> = store.list_backups().await?.into_iter().collect();
    let owns = stored_data::owns_synced_data(
        loc.metadata
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let here = |name: &str| match objects.get(name) {
        None => stored_data::Here::Nothing,
        Some(b)
            if b.metadata.deletion_timestamp.is_none()
                && b.annotations().get(super::SYNCED_ANNOTATION) == Some(lname) =>
        {
            stored_data::Here::Record {
                uid: b.annotations().get(stored_data::SYNCED_UID).cloned(),
            }
        }
        // An own backup, another location's record, or an object on its way out.
        Some(_) => stored_data::Here::Other,
    };
    let records = objects
        .keys()
        .filter(|n| matches!(here(n), stored_data::Here::Record { .. }));
    let names: BTreeSet<&String> = listed.iter().chain(records).collect();
    let now = Time::now();
    let mut made = 0;
    for name in names {
        let here = here(name);
        if here == stored_data::Here::Other {
            continue;
        }
        let stored = if listed.contains(name) {
            match catalog::get_backup(store, name).await {
                Ok(b) => Some(b),
                // Deleted since the listing.
                Err(catalog::CatalogError::NotFound { .. }) => None,
                Err(e) => {
                    tracing::warn!(backup = %name, "not synced: {}", crate::chain(&e));
                    continue;
                }
            }
        } else {
            None
        };
        let view = stored.as_ref().map(|b| stored_data::StoredBackup {
            uid: b.metadata.uid.clone(),
            phase: b.phase(),
            expiration: b.status.as_ref().and_then(|s| s.expiration),
        });
        match stored_data::sync_step(&here, view.as_ref(), owns, now) {
            stored_data::SyncStep::Leave => {}
            stored_data::SyncStep::Prune | stored_data::SyncStep::Replace => {
                let why = if stored.is_none() {
                    "its stored data is no longer in the location"
                } else {
                    "the location now holds another backup of that name (its record is made at the next sync)"
                };
                match api.delete(name, &Default::default()).await {
                    Ok(_) => {
                        tracing::info!(backup = %name, location = %lname, "synced record removed: {why}")
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            stored_data::SyncStep::Create => {
                if let Some(b) = &stored {
                    made += usize::from(create_record(ctx, &api, name, b, loc).await?);
                }
            }
        }
    }
    Ok(made)
}

/// Creates the record of the stored backup `b` (found in `loc`); false when an object of
/// that name appeared meanwhile.
async fn create_record(
    ctx: &Ctx,
    api: &Api<BackupResource>,
    name: &str,
    b: &velero::Backup,
    loc: &velero::BackupStorageLocation,
) -> Result<bool, ServerError> {
    let mut labels = b.metadata.labels.clone();
    labels.insert(
        velero::STORAGE_LOCATION_LABEL.into(),
        loc.metadata.name.clone(),
    );
    let mut spec = b.spec.clone();
    spec.storage_location = Some(loc.metadata.name.clone());
    let mut obj = BackupResource::new(name, spec);
    obj.metadata.namespace = Some(ctx.ns.clone());
    obj.metadata.labels = Some(labels);
    // Marks the object as a record of a stored backup: the Backup controller adopts its
    // stored status instead of running it, and deleting it keeps the data unless the uid
    // it carries is the stored one and the deletion was requested or the location is owned
    // (`stored_data::on_delete`).
    let mut annotations = std::collections::BTreeMap::from([(
        super::SYNCED_ANNOTATION.to_string(),
        loc.metadata.name.clone(),
    )]);
    if let Some(uid) = &b.metadata.uid {
        annotations.insert(stored_data::SYNCED_UID.to_string(), uid.clone());
    }
    obj.metadata.annotations = Some(annotations);
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let status = serde_json::to_value(b.status.clone().unwrap_or_default()).unwrap_or_default();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    tracing::info!(backup = %name, location = %loc.metadata.name, "synced from the location");
    Ok(true)
}
