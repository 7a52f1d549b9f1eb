//! Storage locations: validation (Available/Unavailable with the reason) and sync —
//! backups found in a location that have no Backup object here get one, with the stored
//! status, so that a cluster that did not make them can restore them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lifeboat_types::crd::{BackupResource, BackupStorageLocationResource};
use lifeboat_types::velero::{self, Time};
use serde_json::json;

use super::{Ctx, ServerError};
use crate::catalog;

pub(crate) async fn run(ctx: Arc<Ctx>, every: Duration) {
    loop {
        if let Err(e) = once(&ctx).await {
            tracing::warn!("storage locations: {e}");
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn once(ctx: &Ctx) -> Result<(), ServerError> {
    let api: Api<BackupStorageLocationResource> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    for bsl in api.list(&ListParams::default()).await?.items {
        let name = bsl.name_any();
        let checked = async {
            let (store, loc) = ctx.store(Some(&name)).await?;
            store
                .check(false)
                .await
                .map_err(|e| ServerError::Location(e.to_string()))?;
            Ok::<_, ServerError>((store, loc))
        }
        .await;
        let label = super::metrics::LocationLabel {
            backup_location_name: name.clone(),
        };
        match checked {
            Ok((store, loc)) => {
                ctx.metrics.location_status.get_or_create(&label).set(1);
                let synced = sync(ctx, &store, &loc).await;
                let mut status = json!({ "phase": "Available", "lastValidationTime": Time::now(), "message": null });
                match synced {
                    Ok(_) => status["lastSyncedTime"] = json!(Time::now()),
                    Err(e) => tracing::warn!(location = %name, "sync: {e}"),
                }
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await?;
            }
            Err(e) => {
                ctx.metrics.location_status.get_or_create(&label).set(0);
                tracing::warn!(location = %name, "unavailable: {e}");
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({ "status": {
                    "phase": "Unavailable", "lastValidationTime": Time::now(), "message": e.to_string()
                }})))
                .await?;
            }
        }
    }
    Ok(())
}

/// Creates Backup objects for stored backups that have none; returns how many.
async fn sync(
    ctx: &Ctx,
    store: &crate::storage::Store,
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
    let stored = store
        .list_backups()
        .await
        .map_err(|e| ServerError::Location(e.to_string()))?;
    let mut made = 0;
    for name in stored.into_iter().filter(|n| !known.contains(n)) {
        let b = match catalog::get_backup(store, &name).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(backup = %name, "not synced: {e}");
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
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
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
