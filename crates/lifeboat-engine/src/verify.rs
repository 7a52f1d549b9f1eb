//! `lifeboat backup verify`: is a backup usable on the day it is needed? Checks, each
//! reported with its evidence: the phase, the age, the location, the archive (every
//! entry valid, streamed, nothing written), the archive against the resource list and the
//! item count, and optionally a test restore into mapped namespaces that is checked and
//! removed again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use lifeboat_types::api::velero::{BackupPhase, Restore, RestorePhase, RestoreSpec};

use crate::catalog;
use crate::cluster::Cluster;
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
    let suffix = format!("-verify-{id}");
    let keep = 63usize.saturating_sub(suffix.len()).min(ns.len());
    format!("{}{suffix}", ns[..keep].trim_end_matches('-'))
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
    // Clean up: the mapped namespaces (with everything in them) and the restore's files.
    let mut left = Vec::new();
    for ns in mapping.values() {
        if let Err(e) = cluster
            .delete_raw("/api/v1/namespaces", ns, "namespaces", None)
            .await
        {
            left.push(format!("{ns}: {}", chain(&e)));
        }
    }
    let _ = store.delete_restore(&restore_name).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_namespaces_fit_the_name_limit() {
        assert_eq!(verify_namespace("shop", "ab12"), "shop-verify-ab12");
        let long = "n".repeat(70);
        let v = verify_namespace(&long, "ab12");
        assert_eq!(v.len(), 63);
        assert!(v.ends_with("-verify-ab12"));
    }
}
