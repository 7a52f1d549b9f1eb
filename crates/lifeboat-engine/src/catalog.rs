//! Reading what a location holds: the stored Backups, their logs and results.

use std::io::Read;

use lifeboat_types::layout::RestorePaths;
use lifeboat_types::velero::{Backup, BackupResults, Restore};

use crate::storage::{StorageError, Store};

/// Errors reading stored backups.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The location failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such backup.
    #[error(
        "backup {backup:?} not found in storage location {location:?}; see `lifeboat backup get`"
    )]
    NotFound {
        /// The backup.
        backup: String,
        /// The location.
        location: String,
    },
    /// A stored file is damaged.
    #[error("backup {backup:?}: {file} is damaged: {reason}")]
    Damaged {
        /// The backup.
        backup: String,
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

fn gunzip(data: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Reads the stored Backup `name`.
pub async fn get_backup(store: &Store, name: &str) -> Result<Backup, CatalogError> {
    let path = store.backup_paths(name).metadata();
    let data = match store.read(&path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => {
            return Err(CatalogError::NotFound {
                backup: name.into(),
                location: store.name().into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&data).map_err(|e| CatalogError::Damaged {
        backup: name.into(),
        file: path,
        reason: e.to_string(),
    })
}

/// Every stored Backup, by name. Directories without `velero-backup.json` (a backup
/// still being written, or one whose upload died) are not backups and are skipped.
pub async fn list_backups(store: &Store) -> Result<Vec<Backup>, CatalogError> {
    let mut out = Vec::new();
    for name in store.list_backups().await? {
        match get_backup(store, &name).await {
            Ok(b) => out.push(b),
            Err(CatalogError::NotFound { .. }) => {}
            Err(CatalogError::Damaged { backup, reason, .. }) => {
                tracing::warn!("skipping backup {backup}: {reason}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The backup's log text.
pub async fn backup_logs(store: &Store, name: &str) -> Result<String, CatalogError> {
    get_backup(store, name).await?;
    let path = store.backup_paths(name).logs();
    let data = store.read(&path).await?;
    let text = gunzip(&data, 1 << 30).map_err(|e| CatalogError::Damaged {
        backup: name.into(),
        file: path,
        reason: e.to_string(),
    })?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The backup's errors and warnings.
pub async fn backup_results(store: &Store, name: &str) -> Result<BackupResults, CatalogError> {
    let path = store.backup_paths(name).results();
    let data = match store.read(&path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => return Ok(BackupResults::default()),
        Err(e) => return Err(e.into()),
    };
    let damaged = |reason: String| CatalogError::Damaged {
        backup: name.into(),
        file: path.clone(),
        reason,
    };
    let text = gunzip(&data, 1 << 30).map_err(|e| damaged(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))
}

/// The backup's resource list (`<gvk>` → `ns/name` list).
pub async fn resource_list(
    store: &Store,
    name: &str,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, CatalogError> {
    let path = store.backup_paths(name).resource_list();
    let data = match store.read(&path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    let damaged = |reason: String| CatalogError::Damaged {
        backup: name.into(),
        file: path.clone(),
        reason,
    };
    let text = gunzip(&data, 1 << 32).map_err(|e| damaged(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))
}

/// Reads the stored Restore `name`.
pub async fn get_restore(store: &Store, name: &str) -> Result<Restore, CatalogError> {
    let path = RestorePaths::new(store.prefix(), name).metadata();
    let data = match store.read(&path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => {
            return Err(CatalogError::NotFound {
                backup: format!("restore {name}"),
                location: store.name().into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&data).map_err(|e| CatalogError::Damaged {
        backup: name.into(),
        file: path,
        reason: e.to_string(),
    })
}

/// Every stored Restore.
pub async fn list_restores(store: &Store) -> Result<Vec<Restore>, CatalogError> {
    let mut out = Vec::new();
    for name in store.list_restores().await? {
        match get_restore(store, &name).await {
            Ok(r) => out.push(r),
            Err(CatalogError::NotFound { .. }) => {}
            Err(CatalogError::Damaged { backup, reason, .. }) => {
                tracing::warn!("skipping restore {backup}: {reason}")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A restore's log text.
pub async fn restore_logs(store: &Store, name: &str) -> Result<String, CatalogError> {
    get_restore(store, name).await?;
    let path = RestorePaths::new(store.prefix(), name).logs();
    let data = store.read(&path).await?;
    let text = gunzip(&data, 1 << 30).map_err(|e| CatalogError::Damaged {
        backup: name.into(),
        file: path,
        reason: e.to_string(),
    })?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// A restore's errors and warnings.
pub async fn restore_results(store: &Store, name: &str) -> Result<BackupResults, CatalogError> {
    let path = RestorePaths::new(store.prefix(), name).results();
    let data = match store.read(&path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => return Ok(BackupResults::default()),
        Err(e) => return Err(e.into()),
    };
    let damaged = |reason: String| CatalogError::Damaged {
        backup: name.into(),
        file: path.clone(),
        reason,
    };
    let text = gunzip(&data, 1 << 30).map_err(|e| damaged(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))
}
