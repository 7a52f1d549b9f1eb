//! A BackupStorageLocation object of the cluster, opened: the object read (by name, or the
//! default one by `types::rules::location::default_index`), the key of the credentials
//! Secret it names written to a private file, and the store opened with it. The server
//! opens its locations this way; so does the CLI when it works through the cluster and
//! reads what the server stored (logs, results, tarballs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kube::Api;
use lifeboat_types::api::crd::BackupStorageLocationResource;
use lifeboat_types::api::velero::{self, SecretKeySelector};

use crate::storage::{StorageError, Store};

/// Why a location object could not be opened. Each names the object and the fix.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The named storage location does not exist.
    #[error(
        "storage location {name:?} does not exist in namespace {namespace}; create it (a BackupStorageLocation) or name another"
    )]
    Missing {
        /// The location.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// No location is named and none is the default.
    #[error(
        "no default storage location in namespace {namespace}: create a BackupStorageLocation with spec.default: true"
    )]
    NoDefault {
        /// The namespace.
        namespace: String,
    },
    /// The credentials Secret a location names does not exist.
    #[error("credentials Secret {name:?} does not exist in namespace {namespace}")]
    SecretMissing {
        /// The Secret.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// The credentials Secret a location names lacks the key.
    #[error("Secret {name:?} has no key {key:?}")]
    SecretKeyMissing {
        /// The Secret.
        name: String,
        /// The key.
        key: String,
    },
    /// A location's credentials could not be staged on the local disk.
    #[error("cannot write credentials of Secret {secret:?} to the local disk")]
    StageCredentials {
        /// The Secret.
        secret: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The object does not read as a velero.io/v1 BackupStorageLocation.
    #[error("BackupStorageLocation {name:?} cannot be read")]
    Convert {
        /// The location.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl LocationError {
    /// Whether the location as written cannot work (missing, misconfigured), as opposed
    /// to a moment's failure of the API server or the store.
    pub fn is_permanent(&self) -> bool {
        match self {
            LocationError::Missing { .. }
            | LocationError::NoDefault { .. }
            | LocationError::SecretMissing { .. }
            | LocationError::SecretKeyMissing { .. }
            | LocationError::Convert { .. } => true,
            LocationError::Storage(e) => !e.is_retryable(),
            LocationError::StageCredentials { .. } | LocationError::Kube(_) => false,
        }
    }

    /// Whether the location object (or the Secret it names) is gone.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            LocationError::Missing { .. } | LocationError::SecretMissing { .. }
        )
    }
}

/// Opens the storage location `name` of namespace `ns` (the default one when `None`):
/// its BackupStorageLocation object, with the credentials of the Secret it names staged
/// (0600) in `secrets_dir`, a private directory of the caller's.
pub async fn open(
    client: &kube::Client,
    ns: &str,
    name: Option<&str>,
    secrets_dir: &Path,
) -> Result<(Store, velero::BackupStorageLocation), LocationError> {
    let api: Api<BackupStorageLocationResource> = Api::namespaced(client.clone(), ns);
    let bsl = match name.filter(|n| !n.is_empty()) {
        Some(n) => api
            .get_opt(n)
            .await?
            .ok_or_else(|| LocationError::Missing {
                name: n.to_owned(),
                namespace: ns.to_owned(),
            })?,
        None => {
            let mut items = api.list(&Default::default()).await?.items;
            let pick = lifeboat_types::rules::location::default_index(items.iter().map(|l| {
                (
                    l.metadata.name.as_deref().unwrap_or_default(),
                    l.spec.default,
                )
            }))
            .ok_or_else(|| LocationError::NoDefault {
                namespace: ns.to_owned(),
            })?;
            items.swap_remove(pick)
        }
    };
    let lname = bsl.metadata.name.clone().unwrap_or_default();
    let mut v: velero::BackupStorageLocation =
        lifeboat_types::api::crd::to_velero(&bsl).map_err(|source| LocationError::Convert {
            name: lname,
            source,
        })?;
    if let Some(SecretKeySelector { name, key }) = v.spec.credential.clone() {
        let path = secret_file(client, ns, &name, &key, secrets_dir).await?;
        v.spec.credential = Some(SecretKeySelector {
            name: path.to_string_lossy().into_owned(),
            key,
        });
    }
    let store = Store::open(&v)?;
    Ok((store, v))
}

/// Distinct names for staged credential files.
static SECRET_WRITES: AtomicU64 = AtomicU64::new(0);

/// Writes key `key` of Secret `name` to a private file in `dir`; returns its path.
async fn secret_file(
    client: &kube::Client,
    ns: &str,
    name: &str,
    key: &str,
    dir: &Path,
) -> Result<PathBuf, LocationError> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    let secret = api
        .get_opt(name)
        .await?
        .ok_or_else(|| LocationError::SecretMissing {
            name: name.to_owned(),
            namespace: ns.to_owned(),
        })?;
    let data = secret
        .data
        .and_then(|d| d.get(key).map(|b| b.0.clone()))
        .ok_or_else(|| LocationError::SecretKeyMissing {
            name: name.to_owned(),
            key: key.to_owned(),
        })?;
    // Many runs open locations at once: each reader must see a whole file, so it is
    // written under a unique name and renamed into place (atomic on one filesystem).
    let path = dir.join(format!("{name}-{key}"));
    let staged = dir.join(format!(
        ".{name}-{key}.{}",
        SECRET_WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut o = std::fs::File::options();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    use std::io::Write;
    o.open(&staged)
        .and_then(|mut f| f.write_all(&data))
        .and_then(|()| std::fs::rename(&staged, &path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&staged);
            LocationError::StageCredentials {
                secret: name.to_owned(),
                source,
            }
        })?;
    Ok(path)
}
