//! `lifeboat backup verify`: is a backup usable on the day it is needed? Checks, each
//! reported with its evidence: the phase, the age, the location, the archive (every
//! entry valid, streamed, nothing written), the archive against the resource list and the
//! item count, and optionally a test restore into mapped namespaces that is checked and
//! removed again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use lifeboat_types::api::velero::{BackupPhase, Restore, RestorePhase, RestoreSpec};
use lifeboat_types::rules::csi;

use crate::catalog;
use crate::cluster::{ApiErrorKind, Cluster, collection_path, namespace_path, split_list};
use crate::error::chain;
use crate::extract::{Limits, scan_validated};
use crate::restore::{RestoreOptions, RestoreProgressCounters, run_restore};
use crate::storage::Store;

/// One check and what it found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// The evidence.
    pub detail: String,
}

/// Every check of one backup.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    /// The backup.
    pub backup: String,
    /// Whether every check passed.
    pub ok: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Fail when the backup completed longer ago than this.
    pub max_age: Option<Duration>,
    /// Restore into `<ns>-verify-<id>` namespaces, check, and delete them.
    pub test_restore: Option<String>,
}

fn check(checks: &mut Vec<Check>, name: &str, ok: bool, detail: impl Into<String>) {
    checks.push(Check {
        check: name.into(),
        ok,
        detail: detail.into(),
    });
}

/// The mapped name of namespace `ns` for a test restore (at most 63 characters).
pub fn verify_namespace(ns: &str, id: &str) -> String {
    lifeboat_types::dr::drill::scratch_namespace(ns, "verify", id)
}

/// Runs the checks on backup `name`. Errors only when the backup cannot be read at all;
/// everything else is a failed check in the report.
pub async fn verify(
    cluster: Option<&Cluster>,
    store: &Store,
    name: &str,
    opts: &VerifyOptions,
) -> Result<VerifyReport, catalog::CatalogError> {
    let mut checks = Vec::new();
    let backup = catalog::get_backup(store, name).await?;
    let phase = backup.phase();
    check(
        &mut checks,
        "phase",
        phase == BackupPhase::Completed,
        phase.to_string(),
    );

    let done = backup
        .status
        .as_ref()
        .and_then(|s| s.completion_timestamp.or(s.start_timestamp));
    match (opts.max_age, done) {
        (Some(max), Some(t)) => {
            let age = chrono::Utc::now()
                .signed_duration_since(t.0)
                .to_std()
                .unwrap_or_default();
            check(
                &mut checks,
                "age",
                age <= max,
                format!(
                    "completed {} ago (limit {})",
                    lifeboat_types::GoDuration(Duration::from_secs(age.as_secs())),
                    lifeboat_types::GoDuration(max)
                ),
            );
        }
        (Some(_), None) => check(
            &mut checks,
            "age",
            false,
            "the backup has no completion time",
        ),
        (None, _) => {}
    }

    match store.check(false).await {
        Ok(()) => check(
            &mut checks,
            "location",
            true,
            format!("{} is reachable", store.name()),
        ),
        Err(e) => check(&mut checks, "location", false, chain(&e)),
    }

    // The archive, streamed through the same validation a restore applies.
    let mut in_archive: BTreeSet<(String, String)> = BTreeSet::new();
    let scanned = match store.reader(&store.backup_paths(name).contents()).await {
        Ok(reader) => tokio::task::spawn_blocking(move || {
            let sync = tokio_util::io::SyncIoBridge::new(
                tokio_util::compat::FuturesAsyncReadCompatExt::compat(reader),
            );
            let mut seen = BTreeSet::new();
            let r = scan_validated(sync, Limits::default(), &mut |item| {
                if item.version.is_none() {
                    let id = match item.namespace {
                        Some(ns) => format!("{ns}/{}", item.name),
                        None => item.name.to_string(),
                    };
                    seen.insert((item.group_resource.to_string(), id));
                }
            });
            (r, seen)
        })
        .await
        .map_err(|e| e.to_string()),
        Err(e) => Err(chain(&e)),
    };
    match scanned {
        Ok((Ok(ex), seen)) => {
            in_archive = seen;
            check(
                &mut checks,
                "archive",
                true,
                format!(
                    "format {}, {} entries valid, {} objects",
                    ex.version,
                    ex.items,
                    in_archive.len()
                ),
            );
        }
        Ok((Err(e), _)) => check(&mut checks, "archive", false, chain(&e)),
        Err(e) => check(&mut checks, "archive", false, e),
    }

    let listed: usize = match catalog::resource_list(store, name).await {
        Ok(list) => list.values().map(Vec::len).sum(),
        Err(_) => 0,
    };
    let counted = backup
        .status
        .as_ref()
        .and_then(|s| s.progress)
        .map(|p| p.items_backed_up as usize);
    let consistent = listed == in_archive.len() && counted.is_none_or(|c| c == listed);
    check(
        &mut checks,
        "contents",
        consistent && !in_archive.is_empty(),
        format!(
            "{} objects in the archive, {listed} in the resource list, {} counted by the backup",
            in_archive.len(),
            counted
                .map(|c| c.to_string())
                .unwrap_or_else(|| "none".into())
        ),
    );

    if let Some(id) = &opts.test_restore {
        match cluster {
            None => check(
                &mut checks,
                "test restore",
                false,
                "no cluster to restore into",
            ),
            Some(cluster) => test_restore(cluster, store, name, id, &in_archive, &mut checks).await,
        }
    }
    let ok = checks.iter().all(|c| c.ok);
    Ok(VerifyReport {
        backup: name.to_string(),
        ok,
        checks,
    })
}

/// What a test restore's cleanup does with one scratch namespace.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Not there (never made, or deleted already).
    Gone,
    /// Made by this restore: delete it, if its uid is still this one.
    Delete {
        /// Its uid.
        uid: String,
    },
    /// Not this restore's: leave it, and say why.
    Keep(String),
}

/// Decides the cleanup of a scratch namespace from its live JSON (pure): only one labelled
/// with this restore's name is deleted.
pub fn scratch_cleanup(restore_name: &str, live: Option<&str>) -> Cleanup {
    let Some(live) = live else {
        return Cleanup::Gone;
    };
    let v: serde_json::Value = match serde_json::from_str(live) {
        Ok(v) => v,
        Err(e) => return Cleanup::Keep(format!("its JSON is unreadable ({e})")),
    };
    let label = v
        .pointer("/metadata/labels")
        .and_then(|l| l.get(lifeboat_types::plan::restore::RESTORE_NAME_LABEL))
        .and_then(serde_json::Value::as_str);
    if label != Some(restore_name) {
        return Cleanup::Keep(format!(
            "it was not made by restore {restore_name} (its restore label is {label:?})"
        ));
    }
    match v
        .pointer("/metadata/uid")
        .and_then(serde_json::Value::as_str)
    {
        Some(uid) if !uid.is_empty() => Cleanup::Delete { uid: uid.into() },
        _ => Cleanup::Keep("it has no uid".into()),
    }
}

async fn test_restore(
    cluster: &Cluster,
    store: &Store,
    name: &str,
    id: &str,
    in_archive: &BTreeSet<(String, String)>,
    checks: &mut Vec<Check>,
) {
    let namespaces: BTreeSet<&str> = in_archive
        .iter()
        .filter_map(|(_, id)| id.split_once('/').map(|(ns, _)| ns))
        .collect();
    if namespaces.is_empty() {
        check(
            checks,
            "test restore",
            false,
            "the backup holds no namespaced objects to restore",
        );
        return;
    }
    let mapping: BTreeMap<String, String> = namespaces
        .iter()
        .map(|ns| (ns.to_string(), verify_namespace(ns, id)))
        .collect();
    let restore_name = format!("{name}-verify-{id}");
    // A scratch namespace must be new: restoring into (and then deleting) one that exists
    // would touch what this run did not make.
    match cluster
        .first_existing_namespace(mapping.values().map(String::as_str))
        .await
    {
        Ok(None) => {}
        Ok(Some(ns)) => {
            return check(
                checks,
                "test restore",
                false,
                format!(
                    "namespace {ns} already exists: a test restore only uses (and deletes) namespaces it makes; delete it or run again"
                ),
            );
        }
        Err(e) => return check(checks, "test restore", false, chain(&e)),
    }
    let spec = RestoreSpec {
        backup_name: name.to_string(),
        namespace_mapping: mapping.clone(),
        // Only the namespaced objects: a test must not touch cluster-wide ones.
        include_cluster_resources: Some(false),
        ..Default::default()
    };
    let result = run_restore(
        cluster,
        store,
        Restore::new(&restore_name, spec),
        &RestoreOptions::default(),
        Arc::new(RestoreProgressCounters::default()),
    )
    .await;
    match result {
        Ok(report) => {
            let status = report.restore.status.clone().unwrap_or_default();
            let restored = status.progress.map(|p| p.items_restored).unwrap_or(0);
            check(
                checks,
                "test restore",
                status.phase == RestorePhase::Completed,
                format!(
                    "{} into {}: {restored} objects, {} errors, {} warnings",
                    status.phase,
                    mapping.values().cloned().collect::<Vec<_>>().join(","),
                    status.errors,
                    status.warnings
                ),
            );
        }
        Err(e) => check(checks, "test restore", false, chain(&e)),
    }
    let left = cleanup_scratch(cluster, store, &restore_name, mapping.values(), true).await;
    check(
        checks,
        "cleanup",
        left.is_empty(),
        if left.is_empty() {
            format!(
                "deleted namespaces {}",
                mapping.values().cloned().collect::<Vec<_>>().join(",")
            )
        } else {
            left.join("; ")
        },
    );
}

/// Deletes what scratch restore `restore_name` made: its namespaces (with everything in
/// them) — only those labelled with the restore, by uid, so one re-created meanwhile by
/// someone else is left —, the VolumeSnapshotContents it imported for them and the
/// PersistentVolumes it made for them (cluster-scoped, not deleted with the namespaces;
/// only those kept on deletion: their disks stay), and, with `forget_restore`, the restore's files in
/// `store` (a failover's rollback keeps them: they say why it failed). Returns what it
/// could not delete, and why (empty: everything is gone).
pub async fn cleanup_scratch<'a>(
    cluster: &Cluster,
    store: &Store,
    restore_name: &str,
    scratch: impl IntoIterator<Item = &'a String>,
    forget_restore: bool,
) -> Vec<String> {
    let scratch: Vec<&str> = scratch.into_iter().map(String::as_str).collect();
    let mut left = Vec::new();
    // The namespaces gone or deleted now: only their volumes and snapshot contents go.
    let mut cleared: Vec<&str> = Vec::new();
    for ns in &scratch {
        let live = match cluster
            .get_path_opt(&namespace_path(ns), "namespaces")
            .await
        {
            Ok(live) => live,
            Err(e) => {
                left.push(format!("{ns}: {}", chain(&e)));
                continue;
            }
        };
        match scratch_cleanup(restore_name, live.as_deref()) {
            Cleanup::Gone => cleared.push(ns),
            Cleanup::Keep(why) => left.push(format!("{ns}: not deleted: {why}")),
            Cleanup::Delete { uid } => {
                match cluster
                    .delete_if_uid("/api/v1/namespaces", ns, "namespaces", &uid)
                    .await
                {
                    Ok(_) => cleared.push(ns),
                    Err(e) => left.push(format!("{ns}: {}", chain(&e))),
                }
            }
        }
    }
    delete_imported_contents(cluster, restore_name, &cleared, &mut left).await;
    delete_restored_volumes(cluster, restore_name, &cleared, &mut left).await;
    if forget_restore {
        let _ = store.delete_restore(restore_name).await;
    }
    left
}

/// Deletes the VolumeSnapshotContents test restore `restore_name` imported for its scratch
/// namespaces (`csi::scratch_content` decides which), recording in `left` what it could
/// not delete or read.
async fn delete_imported_contents(
    cluster: &Cluster,
    restore_name: &str,
    scratch: &[&str],
    left: &mut Vec<String>,
) {
    let contents =
        crate::csi::snapshot_resource("volumesnapshotcontents", "VolumeSnapshotContent", false);
    delete_labelled(cluster, &contents, restore_name, left, |c| {
        csi::scratch_content(restore_name, scratch, c).ok_or_else(|| {
            "it is not one this restore made for its namespaces with deletionPolicy Retain"
                .to_owned()
        })
    })
    .await;
}

/// Deletes the PersistentVolumes restore `restore_name` made for the namespaces it
/// deletes (`volumes::rollback_volume` decides which: never one whose deletion could
/// take its disk), recording in `left` what it could not delete or read.
async fn delete_restored_volumes(
    cluster: &Cluster,
    restore_name: &str,
    scratch: &[&str],
    left: &mut Vec<String>,
) {
    let volumes = crate::cluster::v1_resource("", "persistentvolumes", "PersistentVolume", false);
    delete_labelled(cluster, &volumes, restore_name, left, |pv| {
        lifeboat_types::rules::volumes::rollback_volume(restore_name, scratch, pv)
    })
    .await;
}

/// Deletes each cluster-scoped object of `resource` labelled with restore `restore_name`
/// that `decide` gives a uid for (by that uid); records in `left` each it kept (with
/// `decide`'s reason) or could not delete, and a LIST that failed. A resource the cluster
/// does not serve has none.
async fn delete_labelled(
    cluster: &Cluster,
    resource: &lifeboat_types::plan::backup::ApiResource,
    restore_name: &str,
    left: &mut Vec<String>,
    decide: impl Fn(&serde_json::Value) -> Result<String, String>,
) {
    let collection = collection_path(resource, None);
    let selector = format!("velero.io/restore-name={restore_name}");
    let mut token: Option<String> = None;
    loop {
        let page = match cluster
            .list_page(resource, None, Some(&selector), token.as_deref(), 500)
            .await
        {
            Ok(page) => page,
            Err(e) if e.is_unserved() => break,
            Err(e) => {
                left.push(format!("{}: {}", resource.kind, chain(&e)));
                break;
            }
        };
        let (items, next) = match split_list(&page) {
            Ok((items, next)) => (
                items
                    .iter()
                    .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()))
                    .collect::<Result<Vec<_>, _>>(),
                next,
            ),
            Err(e) => {
                left.push(format!("{}: unreadable answer: {e}", resource.kind));
                break;
            }
        };
        let items = match items {
            Ok(items) => items,
            Err(e) => {
                left.push(format!("{}: unreadable item: {e}", resource.kind));
                break;
            }
        };
        for o in items {
            let name = o
                .pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match decide(&o) {
                Ok(uid) => {
                    if let Err(e) = cluster
                        .delete_if_uid(&collection, &name, &resource.plural, &uid)
                        .await
                    {
                        left.push(format!("{} {name}: {}", resource.kind, chain(&e)));
                    }
                }
                Err(why) => left.push(format!("{} {name}: not deleted: {why}", resource.kind)),
            }
        }
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cleanup;

    #[rstest::rstest]
    #[case::gone(None, Cleanup::Gone)]
    #[case::ours(
        Some(r#"{"metadata":{"uid":"u1","labels":{"velero.io/restore-name":"b-verify-x"}}}"#),
        Cleanup::Delete { uid: "u1".into() }
    )]
    #[case::another_restores(
        Some(r#"{"metadata":{"uid":"u1","labels":{"velero.io/restore-name":"other"}}}"#),
        Cleanup::Keep("it was not made by restore b-verify-x (its restore label is Some(\"other\"))".into())
    )]
    #[case::unlabelled(
        Some(r#"{"metadata":{"uid":"u1"}}"#),
        Cleanup::Keep("it was not made by restore b-verify-x (its restore label is None)".into())
    )]
    #[case::no_uid(
        Some(r#"{"metadata":{"labels":{"velero.io/restore-name":"b-verify-x"}}}"#),
        Cleanup::Keep("it has no uid".into())
    )]
    fn only_the_namespaces_this_restore_made_are_deleted(
        #[case] live: Option<&str>,
        #[case] want: Cleanup,
    ) {
        assert_eq!(super::scratch_cleanup("b-verify-x", live), want);
    }
}
