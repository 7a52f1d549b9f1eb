//! Reading what a location holds: the stored Backups and Restores, their logs, results and
//! resource lists.

use std::collections::BTreeMap;
use std::io::Read;

use lifeboat_types::api::velero::{Backup, BackupResults, Restore};
use lifeboat_types::format::layout::RestorePaths;
use serde::de::DeserializeOwned;

use crate::storage::{StorageError, Store};

/// Errors reading stored backups and restores.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The location failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such backup or restore.
    #[error("{what} {name:?} not found in storage location {location:?}")]
    NotFound {
        /// `backup` or `restore`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The location.
        location: String,
    },
    /// A stored file is damaged.
    #[error("{what} {name:?}: {file} is damaged: {reason}")]
    Damaged {
        /// `backup` or `restore`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

impl CatalogError {
    /// Whether trying again later can help (only a location that failed for a moment).
    pub fn is_retryable(&self) -> bool {
        match self {
            CatalogError::Storage(e) => e.is_retryable(),
            CatalogError::NotFound { .. } | CatalogError::Damaged { .. } => false,
        }
    }
}

/// Gzip'd files are read up to this size uncompressed.
const GUNZIP_LIMIT: u64 = 4 << 30;

/// What a stored file belongs to, for error messages.
#[derive(Clone, Copy)]
struct Owner<'a> {
    what: &'static str,
    name: &'a str,
}

impl Owner<'_> {
    fn damaged(self, file: &str, reason: impl ToString) -> CatalogError {
        CatalogError::Damaged {
            what: self.what,
            name: self.name.into(),
            file: file.into(),
            reason: reason.to_string(),
        }
    }

    fn not_found(self, store: &Store) -> CatalogError {
        CatalogError::NotFound {
            what: self.what,
            name: self.name.into(),
            location: store.name().into(),
        }
    }
}

/// Reads a JSON object (the Backup or Restore resource); a missing file means the backup
/// or restore does not exist.
async fn read_json<T: DeserializeOwned>(
    store: &Store,
    path: &str,
    owner: Owner<'_>,
) -> Result<T, CatalogError> {
    let data = match store.read(path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => return Err(owner.not_found(store)),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&data).map_err(|e| owner.damaged(path, e))
}

/// Reads and gunzips a file; `None` when it is missing.
async fn read_gz(
    store: &Store,
    path: &str,
    owner: Owner<'_>,
) -> Result<Option<Vec<u8>>, CatalogError> {
    let data = match store.read(path).await {
        Ok(d) => d,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&data[..])
        .take(GUNZIP_LIMIT)
        .read_to_end(&mut out)
        .map_err(|e| owner.damaged(path, e))?;
    Ok(Some(out))
}

/// Reads a gzip'd JSON file; the default value when it is missing.
async fn read_gz_json<T: DeserializeOwned + Default>(
    store: &Store,
    path: &str,
    owner: Owner<'_>,
) -> Result<T, CatalogError> {
    match read_gz(store, path, owner).await? {
        None => Ok(T::default()),
        Some(text) => serde_json::from_slice(&text).map_err(|e| owner.damaged(path, e)),
    }
}

/// Names whose resource file exists, read; directories without one (still being written,
/// or whose writer died) are skipped, damaged ones are skipped with a warning.
async fn read_all<T, F, Fut>(names: Vec<String>, get: F) -> Result<Vec<T>, CatalogError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, CatalogError>>,
{
    let mut out = Vec::new();
    for name in names {
        match get(name).await {
            Ok(x) => out.push(x),
            Err(CatalogError::NotFound { .. }) => {}
            Err(CatalogError::Damaged {
                what, name, reason, ..
            }) => {
                tracing::warn!("skipping {what} {name}: {reason}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn backup_owner(name: &str) -> Owner<'_> {
    Owner {
        what: "backup",
        name,
    }
}

fn restore_owner(name: &str) -> Owner<'_> {
    Owner {
        what: "restore",
        name,
    }
}

/// Reads the stored Backup `name`.
pub async fn get_backup(store: &Store, name: &str) -> Result<Backup, CatalogError> {
    read_json(
        store,
        &store.backup_paths(name).metadata(),
        backup_owner(name),
    )
    .await
}

/// Every stored Backup. Directories without `velero-backup.json` (a backup still being
/// written, or one whose upload died) are not backups and are skipped.
pub async fn list_backups(store: &Store) -> Result<Vec<Backup>, CatalogError> {
    read_all(store.list_backups().await?, |n| async move {
        get_backup(store, &n).await
    })
    .await
}

/// The backup's log text.
pub async fn backup_logs(store: &Store, name: &str) -> Result<String, CatalogError> {
    get_backup(store, name).await?;
    let path = store.backup_paths(name).logs();
    let text = read_gz(store, &path, backup_owner(name))
        .await?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The backup's errors and warnings.
pub async fn backup_results(store: &Store, name: &str) -> Result<BackupResults, CatalogError> {
    read_gz_json(
        store,
        &store.backup_paths(name).results(),
        backup_owner(name),
    )
    .await
}

/// The backup's resource list (`<gvk>` → `ns/name` list).
pub async fn resource_list(
    store: &Store,
    name: &str,
) -> Result<BTreeMap<String, Vec<String>>, CatalogError> {
    read_gz_json(
        store,
        &store.backup_paths(name).resource_list(),
        backup_owner(name),
    )
    .await
}

/// The backup's PodVolumeBackups (`<b>-podvolumebackups.json.gz`, as Velero stores
/// them); none when the file is missing (older backups).
pub async fn pod_volume_backups(
    store: &Store,
    name: &str,
) -> Result<Vec<serde_json::Value>, CatalogError> {
    let list: Option<Vec<serde_json::Value>> = read_gz_json(
        store,
        &store.backup_paths(name).pod_volume_backups(),
        backup_owner(name),
    )
    .await?;
    Ok(list.unwrap_or_default())
}

/// The backup's volume records (`<b>-volumeinfo.json.gz`, Velero's `BackupVolumeInfo`
/// list); none when the file is missing.
pub async fn volume_info(
    store: &Store,
    name: &str,
) -> Result<Vec<serde_json::Value>, CatalogError> {
    let list: Option<Vec<serde_json::Value>> = read_gz_json(
        store,
        &store.backup_paths(name).volume_info(),
        backup_owner(name),
    )
    .await?;
    Ok(list.unwrap_or_default())
}

/// Reads the stored Restore `name`.
pub async fn get_restore(store: &Store, name: &str) -> Result<Restore, CatalogError> {
    read_json(
        store,
        &RestorePaths::new(store.prefix(), name).metadata(),
        restore_owner(name),
    )
    .await
}

/// Every stored Restore.
pub async fn list_restores(store: &Store) -> Result<Vec<Restore>, CatalogError> {
    read_all(store.list_restores().await?, |n| async move {
        get_restore(store, &n).await
    })
    .await
}

/// A restore's log text.
pub async fn restore_logs(store: &Store, name: &str) -> Result<String, CatalogError> {
    get_restore(store, name).await?;
    let path = RestorePaths::new(store.prefix(), name).logs();
    let text = read_gz(store, &path, restore_owner(name))
        .await?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// A restore's errors and warnings.
pub async fn restore_results(store: &Store, name: &str) -> Result<BackupResults, CatalogError> {
    read_gz_json(
        store,
        &RestorePaths::new(store.prefix(), name).results(),
        restore_owner(name),
    )
    .await
}
