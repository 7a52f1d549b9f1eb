//! Storage locations on OpenDAL: a local directory, S3, GCS, Azure Blob and Alibaba OSS,
//! configured with Velero's provider names and config keys. Retries (temporary errors only,
//! with lifeboat's [`Backoff::STORAGE`] policy), timeouts and a concurrency cap come from
//! OpenDAL's layers.
//!
//! Invariants:
//! - a ReadOnly location refuses every write and delete here, before any request leaves
//!   the process;
//! - an object that must not be overwritten ([`Store::create`], [`Store::upload`]) is
//!   written with a conditional create (S3 `If-None-Match: *`, OpenDAL's `if_not_exists`),
//!   so that when another writer got there first the write fails with
//!   [`StorageError::AlreadyExists`] naming the object, and nothing is overwritten;
//! - a local directory never shows a partly written file under its own name: files are
//!   written under a unique name in [`layout::staging_dir`], synced, and renamed into
//!   place (without replacing, for a create).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use lifeboat_types::api::velero::{
    AccessMode, BackupStorageLocation, BackupStorageLocationSpec, ObjectStorageLocation,
    SecretKeySelector,
};
use lifeboat_types::format::layout::{self, BackupPaths, backups_dir, join_prefix};
use lifeboat_types::rules::backoff::Backoff;
use opendal::layers::{ConcurrentLimitLayer, RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator, services};

/// Errors of storage locations. Each message names the location and the fix; the store's
/// own error is the source (render the chain with [`crate::error::chain`]). What the store
/// said is kept typed: [`StorageError::store_kind`] (OpenDAL's kind) and
/// [`StorageError::is_retryable`] (OpenDAL's temporary/persistent status).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The location's configuration is incomplete or contradictory.
    #[error("storage location {location:?}: {reason}")]
    Config {
        /// The location.
        location: String,
        /// What to change.
        reason: String,
    },
    /// A required setting of the location is missing.
    #[error("storage location {location:?}: no {setting} given; set the location's {setting}")]
    Missing {
        /// The location.
        location: String,
        /// The setting: `bucket`, or a config key (`region`, `storageAccount`).
        setting: &'static str,
    },
    /// The store found no credentials to sign requests with.
    #[error(
        "storage location {location:?}: no credentials found; give the location a credentials file (a Velero credentials file with [default] aws_access_key_id=... aws_secret_access_key=...) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials {
        /// The location.
        location: String,
    },
    /// The credentials file could not be read.
    #[error("storage location {location:?}: cannot read credentials file {}", path.display())]
    Credentials {
        /// The location.
        location: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store cannot be set up with this configuration.
    #[error("storage location {location:?}: invalid configuration")]
    Setup {
        /// The location.
        location: String,
        /// The store's error.
        #[source]
        source: Box<opendal::Error>,
    },
    /// A write or delete on a ReadOnly location.
    #[error(
        "storage location {location:?} is ReadOnly; writes are refused (set its access mode to ReadWrite to allow them)"
    )]
    ReadOnly {
        /// The location.
        location: String,
    },
    /// The bucket or directory does not exist.
    #[error(
        "storage location {location:?}: bucket or directory {bucket:?} does not exist; create it or correct the location's bucket"
    )]
    MissingBucket {
        /// The location.
        location: String,
        /// The bucket.
        bucket: String,
        /// The store's error.
        #[source]
        source: Box<opendal::Error>,
    },
    /// The store refused the credentials or the operation.
    #[error(
        "storage location {location:?}: access denied on {path:?}; check the credentials and the bucket policy"
    )]
    Denied {
        /// The location.
        location: String,
        /// The path.
        path: String,
        /// The store's error.
        #[source]
        source: Box<opendal::Error>,
    },
    /// An object that must not exist already does: another writer stored it first. Nothing
    /// was overwritten.
    #[error(
        "storage location {location:?}: {what} already exists (another writer stored it first; nothing was overwritten); choose another name or delete it first"
    )]
    AlreadyExists {
        /// The location.
        location: String,
        /// What exists.
        what: String,
    },
    /// An object was not found.
    #[error("storage location {location:?}: {what} not found")]
    NotFound {
        /// The location.
        location: String,
        /// What is missing.
        what: String,
    },
    /// Any other error of the store.
    #[error("storage location {location:?}: {op} {path:?} failed")]
    Io {
        /// The location.
        location: String,
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// The store's error.
        #[source]
        source: Box<opendal::Error>,
    },
    /// A local file to upload could not be read.
    #[error("storage location {location:?}: cannot read {} to upload it", path.display())]
    LocalFile {
        /// The location.
        location: String,
        /// The local file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run that was writing stopped the upload (a shutdown); nothing was stored.
    #[error(
        "storage location {location:?}: the upload of {path:?} was stopped; nothing of it was stored"
    )]
    Stopped {
        /// The location.
        location: String,
        /// The object that was being written.
        path: String,
    },
}

impl StorageError {
    /// What the store said, as OpenDAL's kind (`None` for errors lifeboat raised itself:
    /// configuration, ReadOnly).
    pub fn store_kind(&self) -> Option<ErrorKind> {
        match self {
            StorageError::Setup { source, .. }
            | StorageError::MissingBucket { source, .. }
            | StorageError::Denied { source, .. }
            | StorageError::Io { source, .. } => Some(source.kind()),
            StorageError::NotFound { .. } => Some(ErrorKind::NotFound),
            StorageError::AlreadyExists { .. } => Some(ErrorKind::AlreadyExists),
            _ => None,
        }
    }

    /// Whether trying again later can help: the store failed for a moment (OpenDAL's
    /// temporary errors, and persistent ones — temporary errors its retries did not get
    /// past), or asked to slow down. A configuration, a refusal or a missing object stays.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => {
                !source.is_permanent() || source.kind() == ErrorKind::RateLimited
            }
            _ => false,
        }
    }
}

/// Whether the store failed because it found no credentials to sign a request with
/// (reqsign's CredentialInvalid, somewhere below OpenDAL's error).
fn no_signing_credential(e: &opendal::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        if c.downcast_ref::<reqsign_core::Error>()
            .is_some_and(|r| r.kind() == reqsign_core::ErrorKind::CredentialInvalid)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// Whether a write may replace an object of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    Yes,
    No,
}

/// A local file system error as the store's error, so that it is mapped (denied, exists,
/// other) and rendered as the stores' errors are.
fn local_error(e: std::io::Error) -> opendal::Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        _ => ErrorKind::Unexpected,
    };
    opendal::Error::new(kind, "local file system").set_source(e)
}

/// The provider names lifeboat accepts, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// A local directory (`bucket` is the path).
    File,
    /// Amazon S3 and compatible stores.
    Aws,
    /// Google Cloud Storage.
    Gcp,
    /// Azure Blob Storage.
    Azure,
    /// Alibaba Cloud OSS.
    AlibabaCloud,
}

impl Provider {
    /// Parses Velero's provider names (`aws`, `velero.io/aws`, `gcp`, `azure`,
    /// `alibabacloud`) and `file`.
    pub fn parse(name: &str) -> Option<Provider> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.strip_prefix("velero.io/").unwrap_or(&n);
        Some(match n {
            "file" | "local" | "filesystem" => Provider::File,
            "aws" | "s3" => Provider::Aws,
            "gcp" | "gcs" | "google" => Provider::Gcp,
            "azure" | "azblob" => Provider::Azure,
            "alibabacloud" | "alibaba" | "oss" | "aliyun" => Provider::AlibabaCloud,
            _ => return None,
        })
    }
}

/// Reads an INI-style credentials file (`[profile]` then `key = value`) or an env-style
/// file (`KEY=value`), returning the keys of `profile` (or of the unsectioned part).
pub fn parse_credentials(text: &str, profile: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(s.trim().trim_start_matches("profile ").to_owned());
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let in_scope = match &section {
                None => true,
                Some(s) => s == profile,
            };
            if in_scope {
                out.insert(
                    k.trim().to_owned(),
                    v.trim().trim_matches('"').trim_matches('\'').to_owned(),
                );
            }
        }
    }
    out
}

/// How a location's HTTPS is checked, read from its settings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// A CA bundle (PEM) trusted besides the system's roots: `objectStorage.caCert`.
    pub ca_pem: Option<Vec<u8>>,
    /// `config.insecureSkipTLSVerify: "true"`: the server's certificate is not checked.
    pub insecure: bool,
    /// What to warn about on every use of the location.
    pub warnings: Vec<String>,
}

/// The settings of `spec` that decide its TLS (pure). `caCert` is base64 of a PEM bundle,
/// as Velero stores it; PEM text is accepted as it is. An `http://` endpoint and a skipped
/// verification are warned about.
pub fn tls_settings(
    location: &str,
    spec: &lifeboat_types::api::velero::BackupStorageLocationSpec,
) -> Result<TlsSettings, String> {
    use base64::Engine as _;
    let mut out = TlsSettings::default();
    if let Some(ca) = spec
        .object_storage
        .ca_cert
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        out.ca_pem = Some(if ca.trim_start().starts_with("-----BEGIN") {
            ca.as_bytes().to_vec()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(ca.split_whitespace().collect::<String>())
                .map_err(|e| {
                    format!("objectStorage.caCert is neither PEM nor base64 of a PEM bundle ({e})")
                })?
        });
    }
    match spec.config.get("insecureSkipTLSVerify").map(|v| v.trim()) {
        None | Some("") | Some("false") => {}
        Some("true") => {
            out.insecure = true;
            out.warnings.push(format!(
                "location {location:?} does not verify its server's TLS certificate (insecureSkipTLSVerify): anyone on the network path can read and change its backups; give its CA as caCert instead"
            ));
        }
        Some(other) => {
            return Err(format!(
                "config insecureSkipTLSVerify must be true or false, got {other:?}"
            ));
        }
    }
    for key in ["s3Url", "storageAccountURI", "endpoint"] {
        if let Some(url) = spec.config.get(key)
            && url.trim().to_ascii_lowercase().starts_with("http://")
        {
            out.warnings.push(format!(
                "location {location:?} sends its backups and credentials unencrypted ({key} {url} is http://); use https://"
            ));
        }
    }
    Ok(out)
}

/// An opened storage location.
#[derive(Clone, Debug)]
pub struct Store {
    name: String,
    op: Operator,
    prefix: String,
    bucket: String,
    read_only: bool,
    provider: Provider,
    /// The endpoint setting (`s3Url`, `storageAccountURI`, `endpoint`), if any.
    endpoint: Option<String>,
    /// Part size for streaming uploads.
    pub chunk_size: usize,
}

static INSTALL: Once = Once::new();

impl Store {
    /// Opens the location described by a BackupStorageLocation. `credentials_file`, when
    /// given, overrides `spec.credential` (for lifeboat's local config the credential is a
    /// file path).
    pub fn open(bsl: &BackupStorageLocation) -> Result<Store, StorageError> {
        INSTALL.call_once(opendal::install_default);
        let name = bsl.metadata.name.clone();
        let spec = &bsl.spec;
        let cfg_err = |reason: String| StorageError::Config {
            location: name.clone(),
            reason,
        };
        let provider = Provider::parse(&spec.provider).ok_or_else(|| {
            cfg_err(format!(
                "unknown provider {:?}; use aws, gcp, azure, alibabacloud or file",
                spec.provider
            ))
        })?;
        let bucket = spec.object_storage.bucket.clone();
        let missing = |setting| StorageError::Missing {
            location: name.clone(),
            setting,
        };
        if bucket.is_empty() {
            return Err(missing("bucket"));
        }
        let creds = match &spec.credential {
            Some(SecretKeySelector { name: path, key }) if !path.is_empty() => {
                let p = PathBuf::from(path);
                let text =
                    std::fs::read_to_string(&p).map_err(|source| StorageError::Credentials {
                        location: name.clone(),
                        path: p.clone(),
                        source,
                    })?;
                let profile = spec.config.get("profile").map(String::as_str).unwrap_or(
                    if key.is_empty() || key == "cloud" {
                        "default"
                    } else {
                        key
                    },
                );
                Some((p, text, profile.to_owned()))
            }
            _ => None,
        };
        let cfg = |k: &str| {
            spec.config
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let op = match provider {
            Provider::File => {
                let root = Path::new(&bucket);
                if !root.is_absolute() {
                    return Err(cfg_err(format!(
                        "the file provider needs an absolute directory, got {bucket:?}"
                    )));
                }
                // OpenDAL's fs service opens (and creates) its root right away.
                if !root.is_dir() {
                    std::fs::create_dir_all(root).map_err(|e| {
                        cfg_err(format!(
                            "cannot create directory {bucket}: {e}; choose a writable directory"
                        ))
                    })?;
                }
                Operator::new(services::Fs::default().root(&bucket))
            }
            Provider::Aws => {
                let mut b = services::S3::default().bucket(&bucket);
                let endpoint = cfg("s3Url");
                if let Some(e) = endpoint {
                    b = b.endpoint(e);
                }
                match cfg("region") {
                    Some(r) => b = b.region(r),
                    None if endpoint.is_some() => b = b.region("us-east-1"),
                    None => match std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")) {
                        Ok(r) => b = b.region(&r),
                        Err(_) => return Err(missing("region")),
                    },
                }
                if cfg("s3ForcePathStyle") != Some("true") {
                    b = b.enable_virtual_host_style();
                }
                if let Some(c) = cfg("checksumAlgorithm") {
                    b = b.checksum_algorithm(c);
                }
                if let Some((p, text, profile)) = &creds {
                    let kv = parse_credentials(text, profile);
                    let (Some(id), Some(secret)) = (kv.get("aws_access_key_id"), kv.get("aws_secret_access_key")) else {
                        return Err(cfg_err(format!(
                            "credentials file {} has no aws_access_key_id/aws_secret_access_key in profile [{profile}]",
                            p.display()
                        )));
                    };
                    b = b.access_key_id(id).secret_access_key(secret).disable_config_load();
                    if let Some(t) = kv.get("aws_session_token") {
                        b = b.session_token(t);
                    }
                } else if let Some(profile) = cfg("profile") {
                    b = b.profile(profile);
                }
                b = b.disable_ec2_metadata();
                Operator::new(b)
            }
            Provider::Gcp => {
                let mut b = services::Gcs::default().bucket(&bucket);
                if let Some((p, _, _)) = &creds {
                    b = b.credential_path(&p.to_string_lossy());
                }
                Operator::new(b)
            }
            Provider::Azure => {
                let account = cfg("storageAccount").ok_or_else(|| missing("storageAccount"))?;
                let endpoint = cfg("storageAccountURI")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                let mut b = services::Azblob::default()
                    .container(&bucket)
                    .account_name(account)
                    .endpoint(&endpoint);
                if let Some((_, text, profile)) = &creds {
                    let kv = parse_credentials(text, profile);
                    let key_var = cfg("storageAccountKeyEnvVar").unwrap_or("AZURE_STORAGE_ACCOUNT_ACCESS_KEY");
                    if let Some(k) = kv.get(key_var) {
                        b = b.account_key(k);
                    }
                }
                Operator::new(b)
            }
            Provider::AlibabaCloud => {
                let region = cfg("region").ok_or_else(|| missing("region"))?;
                let endpoint = cfg("endpoint")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("https://oss-{region}.aliyuncs.com"));
                let mut b = services::Oss::default().bucket(&bucket).endpoint(&endpoint);
                if let Some((_, text, profile)) = &creds {
                    let kv = parse_credentials(text, profile);
                    if let (Some(id), Some(secret)) =
                        (kv.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), kv.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
                    {
                        b = b.access_key_id(id).access_key_secret(secret);
                    }
                }
                Operator::new(b)
            }
        }
        .map_err(|e| StorageError::Setup {
            location: name.clone(),
            source: Box::new(e),
        })?;
        let tls = tls_settings(&name, spec).map_err(cfg_err)?;
        for w in &tls.warnings {
            tracing::warn!("{w}");
        }
        let op = if tls.ca_pem.is_some() || tls.insecure {
            let mut b = reqwest::Client::builder();
            if let Some(pem) = &tls.ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                    cfg_err(format!(
                        "objectStorage.caCert is not a PEM certificate bundle ({e}); give the CA's PEM file"
                    ))
                })?;
                b = b.tls_certs_merge(certs);
            }
            if tls.insecure {
                b = b.tls_danger_accept_invalid_certs(true);
            }
            let client = b
                .build()
                .map_err(|e| cfg_err(format!("cannot set up its TLS client: {e}")))?;
            let transport = opendal::HttpTransporter::new(
                opendal_http_transport_reqwest::ReqwestTransport::new(client),
            );
            op.with_context(opendal::OperationContext::new().with_http_transport(transport))
        } else {
            op
        };
        let retry = Backoff::STORAGE;
        let retry_layer = RetryLayer::new()
            .with_min_delay(retry.initial)
            .with_factor(retry.factor as f32)
            .with_max_delay(retry.max)
            .with_max_times(retry.retries.unwrap_or(0));
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_io_timeout(Duration::from_secs(30)),
            )
            .layer(if retry.jitter {
                retry_layer.with_jitter()
            } else {
                retry_layer
            })
            .layer(ConcurrentLimitLayer::new(16));
        Ok(Store {
            name,
            op,
            prefix: spec.object_storage.prefix.trim_matches('/').to_owned(),
            bucket,
            read_only: spec.access_mode == Some(AccessMode::ReadOnly),
            provider,
            endpoint: ["s3Url", "storageAccountURI", "endpoint"]
                .iter()
                .find_map(|k| spec.config.get(*k).cloned()),
            chunk_size: if provider == Provider::File {
                1 << 20
            } else {
                8 << 20
            },
        })
    }

    /// Whether a new object is created exclusively (a local directory's rename without
    /// replacing, or the store's conditional create): then an object this process created
    /// is its own, and may be removed again.
    pub fn creates_exclusively(&self) -> bool {
        self.provider == Provider::File || self.conditional_create()
    }

    /// Whether `other` is the same place (provider, endpoint, bucket and prefix): a copy
    /// between them would read what it writes.
    pub fn same_place(&self, other: &Store) -> bool {
        self.provider == other.provider
            && self.endpoint == other.endpoint
            && self.bucket == other.bucket
            && self.prefix == other.prefix
    }

    /// The location's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prefix inside the bucket.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Paths of backup `name` in this location.
    pub fn backup_paths(&self, name: &str) -> BackupPaths {
        BackupPaths::new(&self.prefix, name)
    }

    fn map(&self, op: &'static str, path: &str, e: opendal::Error) -> StorageError {
        if no_signing_credential(&e) {
            return StorageError::NoCredentials {
                location: self.name.clone(),
            };
        }
        match e.kind() {
            ErrorKind::PermissionDenied => StorageError::Denied {
                location: self.name.clone(),
                path: path.into(),
                source: Box::new(e),
            },
            ErrorKind::NotFound if op == "check" => StorageError::MissingBucket {
                location: self.name.clone(),
                bucket: self.bucket.clone(),
                source: Box::new(e),
            },
            ErrorKind::NotFound => StorageError::NotFound {
                location: self.name.clone(),
                what: path.into(),
            },
            ErrorKind::ConditionNotMatch | ErrorKind::AlreadyExists => {
                StorageError::AlreadyExists {
                    location: self.name.clone(),
                    what: path.into(),
                }
            }
            _ => StorageError::Io {
                location: self.name.clone(),
                op,
                path: path.into(),
                source: Box::new(e),
            },
        }
    }

    /// Whether the location is ReadOnly (reads only).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn ensure_writable(&self) -> Result<(), StorageError> {
        if self.read_only {
            Err(StorageError::ReadOnly {
                location: self.name.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Checks that the bucket exists and can be listed (and, for a writable local
    /// directory, written to). Writes nothing that stays.
    pub async fn check(&self, for_write: bool) -> Result<(), StorageError> {
        if for_write {
            self.ensure_writable()?;
        }
        if self.provider == Provider::File {
            let root = Path::new(&self.bucket);
            if !root.is_dir() {
                if for_write {
                    std::fs::create_dir_all(root).map_err(|e| StorageError::Config {
                        location: self.name.clone(),
                        reason: format!(
                            "cannot create directory {}: {e}; choose a writable directory",
                            root.display()
                        ),
                    })?;
                } else {
                    return Err(StorageError::Config {
                        location: self.name.clone(),
                        reason: format!("directory {} does not exist", root.display()),
                    });
                }
            }
            if for_write {
                let probe = root.join(format!(".lifeboat-write-probe-{}", std::process::id()));
                std::fs::write(&probe, b"").map_err(|e| StorageError::Config {
                    location: self.name.clone(),
                    reason: format!("directory {} is not writable: {e}; choose a writable directory or fix its permissions", root.display()),
                })?;
                let _ = std::fs::remove_file(&probe);
            }
            return Ok(());
        }
        let dir = backups_dir(&self.prefix);
        self.op
            .list_with(&dir)
            .limit(1)
            .await
            .map(|_| ())
            .or_else(|e| {
                if e.kind() == ErrorKind::NotFound && self.provider == Provider::File {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| self.map("check", &dir, e))
    }

    /// Whether `path` exists.
    pub async fn exists(&self, path: &str) -> Result<bool, StorageError> {
        self.op
            .exists(path)
            .await
            .map_err(|e| self.map("stat", path, e))
    }

    /// The size of an object in bytes.
    pub async fn size(&self, path: &str) -> Result<u64, StorageError> {
        self.op
            .stat(path)
            .await
            .map(|m| m.content_length())
            .map_err(|e| self.map("stat", path, e))
    }

    /// Reads a whole (small) object.
    pub async fn read(&self, path: &str) -> Result<Bytes, StorageError> {
        self.op
            .read(path)
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| self.map("read", path, e))
    }

    /// Reads `len` bytes of an object from `offset` (a ranged GET on object stores).
    pub async fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StorageError> {
        let end = offset.saturating_add(len);
        self.op
            .read_with(path)
            .range(offset..end)
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| self.map("read", path, e))
    }

    /// The object at `path` as a stream of chunks (read in parts, never whole).
    pub async fn chunks(
        &self,
        path: &str,
    ) -> Result<
        impl futures::Stream<Item = Result<Bytes, StorageError>> + Unpin + use<>,
        StorageError,
    > {
        use futures::TryStreamExt;
        let r = self
            .op
            .reader(path)
            .await
            .map_err(|e| self.map("read", path, e))?;
        let s = r
            .into_bytes_stream(..)
            .await
            .map_err(|e| self.map("read", path, e))?;
        let (location, path) = (self.name.clone(), path.to_owned());
        Ok(s.map_err(move |e| StorageError::Io {
            location: location.clone(),
            op: "read",
            path: path.clone(),
            source: Box::new(opendal::Error::new(ErrorKind::Unexpected, e.to_string())),
        }))
    }

    /// The size and SHA-256 of the object at `path`, read streamed.
    pub async fn checksum(&self, path: &str) -> Result<(u64, [u8; 32]), StorageError> {
        use futures::TryStreamExt;
        use sha2::Digest;
        let mut s = self.chunks(path).await?;
        let mut hash = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(b) = s.try_next().await? {
            size += b.len() as u64;
            hash.update(&b);
        }
        Ok((size, hash.finalize().into()))
    }

    /// A streaming reader of a (large) object, as a futures `AsyncRead`.
    pub async fn reader(&self, path: &str) -> Result<opendal::FuturesAsyncReader, StorageError> {
        let r = self
            .op
            .reader(path)
            .await
            .map_err(|e| self.map("read", path, e))?;
        r.into_futures_async_read(..)
            .await
            .map_err(|e| self.map("read", path, e))
    }

    /// Writes a whole (small) object, replacing one of the same name. Objects that must
    /// not be replaced are written with [`Store::create`].
    pub async fn write(&self, path: &str, data: impl Into<Bytes>) -> Result<(), StorageError> {
        self.ensure_writable()?;
        let data = data.into();
        if self.provider == Provider::File {
            return self
                .fs_put(path, futures::stream::iter([Ok(data)]), Replace::Yes)
                .await
                .map(|_| ());
        }
        self.op
            .write(path, data)
            .await
            .map(|_| ())
            .map_err(|e| self.map("write", path, e))
    }

    /// Creates a whole (small) object that must not exist yet: when another writer stored
    /// `path` first, fails with [`StorageError::AlreadyExists`] and overwrites nothing.
    pub async fn create(&self, path: &str, data: impl Into<Bytes>) -> Result<(), StorageError> {
        self.ensure_writable()?;
        let data = data.into();
        if self.provider == Provider::File {
            return self
                .fs_put(path, futures::stream::iter([Ok(data)]), Replace::No)
                .await
                .map(|_| ());
        }
        match self
            .op
            .write_with(path, data.clone())
            .if_not_exists(self.conditional_create())
            .await
            .map_err(|e| self.map("write", path, e))
        {
            Ok(_) => Ok(()),
            // The retry layer sent the write again after a try whose answer was lost: the
            // object found is this write's own when it holds exactly what was sent.
            Err(e @ StorageError::AlreadyExists { .. }) => {
                if self.op.read(path).await.is_ok_and(|b| b.to_bytes() == data) {
                    tracing::debug!("{path}: stored by an earlier try of this write");
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the object at `path` holds `size` bytes whose SHA-256 is `digest` (read
    /// streamed).
    async fn holds(&self, path: &str, size: u64, digest: &[u8]) -> bool {
        use futures::TryStreamExt;
        use sha2::Digest;
        let Ok(reader) = self.op.reader(path).await else {
            return false;
        };
        let Ok(mut stream) = reader.into_bytes_stream(..).await else {
            return false;
        };
        let mut hash = sha2::Sha256::new();
        let mut read = 0u64;
        loop {
            match stream.try_next().await {
                Ok(Some(b)) => {
                    read += b.len() as u64;
                    hash.update(&b);
                }
                Ok(None) => break,
                Err(_) => return false,
            }
        }
        read == size && hash.finalize().as_slice() == digest
    }

    /// Whether the store can refuse to create an object that exists (OpenDAL's capability;
    /// S3, GCS, Azure Blob and OSS can). A store that cannot gets a plain write, after the
    /// callers' existence checks.
    fn conditional_create(&self) -> bool {
        self.op.info().capability().write_with_if_not_exists
    }

    /// Writes the chunks of `chunks` to `path`, a new object, streamed in parts
    /// (multipart where the store has it): at most a few parts are in memory. The object
    /// is created conditionally as [`Store::create`] does: a name another writer took
    /// first is [`StorageError::AlreadyExists`], and its object is left as it is. The first
    /// error of `chunks` or of the store aborts the upload (a multipart upload is aborted;
    /// a local directory drops its staged file), so that no partial object is left.
    /// Returns the bytes written.
    pub async fn upload<S>(&self, path: &str, mut chunks: S) -> Result<u64, StorageError>
    where
        S: futures::Stream<Item = Result<Bytes, StorageError>> + Unpin,
    {
        use futures::StreamExt;
        self.ensure_writable()?;
        if self.provider == Provider::File {
            return self.fs_put(path, chunks, Replace::No).await;
        }
        let mut w = self
            .op
            .writer_with(path)
            .chunk(self.chunk_size)
            .concurrent(2)
            .if_not_exists(self.conditional_create())
            .await
            .map_err(|e| self.upload_error(path, e))?;
        let mut size = 0u64;
        let mut hash = <sha2::Sha256 as sha2::Digest>::new();
        let failed = loop {
            match chunks.next().await {
                None => break None,
                Some(Err(e)) => break Some(e),
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    sha2::Digest::update(&mut hash, &chunk);
                    if let Err(e) = w.write(chunk).await {
                        break Some(self.upload_error(path, e));
                    }
                }
            }
        };
        let failed_before_close = failed.is_some();
        let closed = match failed {
            Some(e) => Err(e),
            None => w
                .close()
                .await
                .map(|_| ())
                .map_err(|e| self.upload_error(path, e)),
        };
        if let Err(e) = closed {
            // Abort the multipart upload (its parts are dropped by the store). Nothing is
            // deleted under `path`: what is there now is another writer's. Best effort: the
            // error to report is the upload's.
            if let Err(abort) = w.abort().await {
                tracing::warn!(
                    "storage location {:?}: aborting the upload of {path:?}: {abort}",
                    self.name
                );
            }
            // ... unless it is this upload's own, completed by a try whose answer was lost
            // and sent again by the retry layer: the same bytes.
            if matches!(e, StorageError::AlreadyExists { .. })
                && !failed_before_close
                && self
                    .holds(path, size, sha2::Digest::finalize(hash).as_slice())
                    .await
            {
                tracing::debug!("{path}: stored by an earlier try of this upload");
                return Ok(size);
            }
            return Err(e);
        }
        Ok(size)
    }

    /// A local directory's write: the chunks go to a new file of a unique name under
    /// [`layout::staging_dir`], which is synced and then renamed to `path` — without
    /// replacing an existing file unless `replace` says so (Linux' `RENAME_NOREPLACE`, or
    /// a hard link, as `tempfile` does it). Any error drops the staged file: no partly
    /// written file is ever seen under `path`. Returns the bytes written.
    async fn fs_put<S>(
        &self,
        path: &str,
        mut chunks: S,
        replace: Replace,
    ) -> Result<u64, StorageError>
    where
        S: futures::Stream<Item = Result<Bytes, StorageError>> + Unpin,
    {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let root = Path::new(&self.bucket);
        let target = root.join(path.trim_start_matches('/'));
        if target.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::RootDir
            )
        }) {
            return Err(StorageError::Config {
                location: self.name.clone(),
                reason: format!("refusing to write {path:?}: it leaves the location's directory"),
            });
        }
        if replace == Replace::No && target.exists() {
            return Err(self.already_exists(path));
        }
        let local = |op: &'static str, at: &Path, e: std::io::Error| {
            self.map(op, &at.to_string_lossy(), local_error(e))
        };
        let staging = root.join(layout::staging_dir(&self.prefix));
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|e| local("write", &staging, e))?;
        let staged = tempfile::Builder::new()
            .prefix(".")
            .suffix(".part")
            .tempfile_in(&staging)
            .map_err(|e| local("write", &staging, e))?;
        let staged_path = staged.path().to_owned();
        let file = staged
            .as_file()
            .try_clone()
            .map_err(|e| local("write", &staged_path, e))?;
        let mut file = tokio::fs::File::from_std(file);
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| local("write", &staged_path, e))?;
        }
        file.flush()
            .await
            .map_err(|e| local("write", &staged_path, e))?;
        file.sync_all()
            .await
            .map_err(|e| local("write", &staged_path, e))?;
        drop(file);
        let parent = target.parent().unwrap_or(root).to_owned();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| local("write", &parent, e))?;
        let to = target.clone();
        let published = tokio::task::spawn_blocking(move || {
            let done = match replace {
                Replace::Yes => staged.persist(&to),
                Replace::No => staged.persist_noclobber(&to),
            };
            // The rename itself is durable once the directory is synced (best effort: not
            // every file system lets a directory be opened for it).
            if done.is_ok()
                && let Ok(dir) = std::fs::File::open(&parent)
            {
                let _ = dir.sync_all();
            }
            // On error the staged file comes back with the error and is removed when dropped.
            done.map(|_| ()).map_err(|e| e.error)
        })
        .await
        .map_err(|e| local("write", &target, std::io::Error::other(e)))?;
        match published {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(self.already_exists(path))
            }
            Err(e) => Err(local("write", &target, e)),
        }
    }

    fn already_exists(&self, path: &str) -> StorageError {
        StorageError::AlreadyExists {
            location: self.name.clone(),
            what: path.to_owned(),
        }
    }

    /// Uploads local file `local` to `path` (see [`Store::upload`]): read in parts of the
    /// location's chunk size into one buffer that is reused once the store has sent a
    /// part. Returns the bytes written.
    pub async fn upload_file(&self, local: &Path, path: &str) -> Result<u64, StorageError> {
        use futures::TryStreamExt;
        let local_err = |source| StorageError::LocalFile {
            location: self.name.clone(),
            path: local.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(local).await.map_err(local_err)?;
        let parts =
            tokio_util::io::ReaderStream::with_capacity(file, self.chunk_size).map_err(local_err);
        self.upload(path, parts).await
    }

    fn upload_error(&self, path: &str, e: opendal::Error) -> StorageError {
        if matches!(
            e.kind(),
            ErrorKind::ConditionNotMatch | ErrorKind::AlreadyExists | ErrorKind::PermissionDenied
        ) || no_signing_credential(&e)
        {
            return self.map("upload", path, e);
        }
        StorageError::Io {
            location: self.name.clone(),
            op: "upload",
            path: path.to_owned(),
            source: Box::new(e),
        }
    }

    /// Names of the backups stored here (directories under `backups/`).
    pub async fn list_backups(&self) -> Result<Vec<String>, StorageError> {
        self.list_dirs(&backups_dir(&self.prefix)).await
    }

    /// Names of the restores whose results are stored here (directories under `restores/`).
    pub async fn list_restores(&self) -> Result<Vec<String>, StorageError> {
        self.list_dirs(&lifeboat_types::format::layout::restores_dir(&self.prefix))
            .await
    }

    /// Deletes a restore's stored results (its metadata first).
    pub async fn delete_restore(&self, name: &str) -> Result<(), StorageError> {
        self.ensure_writable()?;
        let paths = lifeboat_types::format::layout::RestorePaths::new(&self.prefix, name);
        self.delete(&paths.metadata()).await?;
        self.op
            .delete_with(paths.dir())
            .recursive(true)
            .await
            .map_err(|e| self.map("delete", paths.dir(), e))
    }

    /// The files directly under `dir` (relative to the location's root, prefix included):
    /// name, size and last modification.
    pub async fn list_files(
        &self,
        dir: &str,
    ) -> Result<Vec<(String, u64, Option<std::time::SystemTime>)>, StorageError> {
        let entries = match self.op.list(dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.map("list", dir, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            if e.metadata().is_dir() {
                continue;
            }
            let meta = self
                .op
                .stat(e.path())
                .await
                .map_err(|err| self.map("stat", e.path(), err))?;
            let name = e.path().rsplit('/').next().unwrap_or_default().to_owned();
            out.push((
                name,
                meta.content_length(),
                meta.last_modified().map(Into::into),
            ));
        }
        out.sort();
        Ok(out)
    }

    /// Every object under `dir`, at any depth: its path relative to `dir` and its size.
    /// Sizes come from the listing where the store gives them (object stores), else from a
    /// stat of each object (a local directory). Empty when `dir` does not exist.
    pub async fn list_sizes(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let entries = match self.op.list_with(dir).recursive(true).await {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.map("list", dir, e)),
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if e.metadata().is_dir() {
                continue;
            }
            let mut size = e.metadata().content_length();
            if size == 0 {
                size = self
                    .op
                    .stat(e.path())
                    .await
                    .map_err(|err| self.map("stat", e.path(), err))?
                    .content_length();
            }
            let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
            out.push((rel.trim_start_matches('/').to_owned(), size));
        }
        Ok(out)
    }

    async fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let dir = dir.to_owned();
        let entries = match self.op.list(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.map("list", &dir, e)),
        };
        let mut names: Vec<String> = entries
            .into_iter()
            .filter(|e| e.metadata().is_dir())
            .filter_map(|e| {
                let p = e.path().trim_end_matches('/');
                let n = p.rsplit('/').next()?.to_owned();
                (!n.is_empty() && format!("{}/", p) != dir).then_some(n)
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Deletes everything under backup `name`'s directory, its metadata file first so
    /// that a half-deleted backup never lists as whole.
    pub async fn delete_backup(&self, name: &str) -> Result<(), StorageError> {
        self.ensure_writable()?;
        let paths = self.backup_paths(name);
        match self.op.delete(&paths.metadata()).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(self.map("delete", &paths.metadata(), e)),
        }
        self.op
            .delete_with(paths.dir())
            .recursive(true)
            .await
            .map_err(|e| self.map("delete", paths.dir(), e))
    }

    /// Deletes one object (ignoring one that is already gone).
    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        self.ensure_writable()?;
        match self.op.delete(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.map("delete", path, e)),
        }
    }

    /// A path relative to the location's prefix.
    pub fn path(&self, rel: &str) -> String {
        join_prefix(&self.prefix, rel)
    }

    /// Where this location keeps etcd snapshots (`metadata/etcd/`).
    pub fn etcd_snapshots_dir(&self) -> String {
        lifeboat_types::format::layout::etcd_snapshots_dir(&self.prefix)
    }

    /// One stored etcd snapshot of the first layout (directly under `metadata/etcd/`).
    pub fn etcd_snapshot(&self, object: &str) -> String {
        lifeboat_types::format::layout::etcd_snapshot(&self.prefix, object)
    }

    /// Where this location keeps the etcd snapshots of `cluster` (`metadata/etcd/<cluster>/`).
    pub fn etcd_cluster_snapshots_dir(&self, cluster: &str) -> String {
        layout::etcd_cluster_snapshots_dir(&self.prefix, cluster)
    }

    /// One stored etcd snapshot of `cluster`.
    pub fn etcd_cluster_snapshot(&self, cluster: &str, object: &str) -> String {
        layout::etcd_cluster_snapshot(&self.prefix, cluster, object)
    }

    /// The clusters with etcd snapshots here (directories under `metadata/etcd/`).
    pub async fn etcd_clusters(&self) -> Result<Vec<String>, StorageError> {
        self.list_dirs(&self.etcd_snapshots_dir()).await
    }

    /// The etcd snapshots stored here: each cluster's under `metadata/etcd/<cluster>/`,
    /// and those stored directly under `metadata/etcd/` before paths named the cluster.
    pub async fn etcd_snapshots(
        &self,
    ) -> Result<Vec<lifeboat_types::rules::retention::StoredSnapshot>, StorageError> {
        let mut dirs = vec![(None, self.etcd_snapshots_dir())];
        for cluster in self.etcd_clusters().await? {
            let dir = self.etcd_cluster_snapshots_dir(&cluster);
            dirs.push((Some(cluster), dir));
        }
        let mut out = Vec::new();
        for (cluster, dir) in dirs {
            for (name, size, modified) in self.list_files(&dir).await? {
                out.push(lifeboat_types::rules::retention::StoredSnapshot {
                    cluster: cluster.clone(),
                    name,
                    size,
                    taken: modified
                        .map(chrono::DateTime::<chrono::Utc>::from)
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }
}

/// Parses an ad-hoc location URL: `file:///dir`, `/dir`,
/// `s3://bucket/prefix?region=..&s3Url=..&s3ForcePathStyle=true&credential=FILE`,
/// `gs://bucket/prefix`, `azure://container/prefix?storageAccount=..`,
/// `oss://bucket/prefix?region=..`.
pub fn location_from_url(url: &str) -> Result<BackupStorageLocation, StorageError> {
    let err = |reason: String| StorageError::Config {
        location: url.to_owned(),
        reason,
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None if url.starts_with('/') => ("file".to_owned(), url),
        None => {
            return Err(err(
                "expected file:///dir, s3://bucket/prefix, gs://, azure:// or oss:// URL".into(),
            ));
        }
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut config = BTreeMap::new();
    let mut credential = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = lifeboat_types::format::percent::percent_decode(v);
        if k == "credential" {
            credential = Some(SecretKeySelector {
                name: v,
                key: "cloud".into(),
            });
        } else {
            config.insert(k.to_owned(), v);
        }
    }
    let (provider, bucket, prefix) = if scheme == "file" {
        if !path.starts_with('/') {
            return Err(err(
                "file URLs need an absolute path: file:///var/backups".into()
            ));
        }
        ("file", path.trim_end_matches('/').to_owned(), String::new())
    } else {
        let provider = match scheme.as_str() {
            "s3" => "aws",
            "gs" | "gcs" => "gcp",
            "azure" | "azblob" => "azure",
            "oss" => "alibabacloud",
            other => return Err(err(format!("unknown scheme {other:?}"))),
        };
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(err("no bucket in URL".into()));
        }
        (
            provider,
            bucket.to_owned(),
            prefix.trim_matches('/').to_owned(),
        )
    };
    let name = if scheme == "file" {
        "local".to_string()
    } else {
        format!("{scheme}-{bucket}")
    };
    Ok(BackupStorageLocation::new(
        name,
        BackupStorageLocationSpec {
            provider: provider.into(),
            config,
            credential,
            object_storage: ObjectStorageLocation {
                bucket,
                prefix,
                ca_cert: None,
            },
            default: false,
            access_mode: None,
            backup_sync_period: None,
            validation_frequency: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn io(e: opendal::Error) -> StorageError {
        StorageError::Io {
            location: "s3".into(),
            op: "write",
            path: "backups/b/b.tar.gz".into(),
            source: Box::new(e),
        }
    }

    fn store_err(kind: ErrorKind) -> opendal::Error {
        opendal::Error::new(kind, "the store said no")
    }

    #[rstest]
    #[case::temporary(io(store_err(ErrorKind::Unexpected).set_temporary()), true, Some(ErrorKind::Unexpected))]
    #[case::persistent_after_retries(io(store_err(ErrorKind::Unexpected).set_persistent()), true, Some(ErrorKind::Unexpected))]
    #[case::rate_limited(
        io(store_err(ErrorKind::RateLimited)),
        true,
        Some(ErrorKind::RateLimited)
    )]
    #[case::permanent(
        io(store_err(ErrorKind::Unexpected)),
        false,
        Some(ErrorKind::Unexpected)
    )]
    #[case::denied(StorageError::Denied { location: "s3".into(), path: "p".into(), source: Box::new(store_err(ErrorKind::PermissionDenied)) }, false, Some(ErrorKind::PermissionDenied))]
    #[case::not_found(StorageError::NotFound { location: "s3".into(), what: "p".into() }, false, Some(ErrorKind::NotFound))]
    #[case::read_only(StorageError::ReadOnly { location: "s3".into() }, false, None)]
    #[case::no_credentials(StorageError::NoCredentials { location: "s3".into() }, false, None)]
    #[case::missing_region(StorageError::Missing { location: "s3".into(), setting: "region" }, false, None)]
    fn storage_errors_keep_the_store_s_kind(
        #[case] e: StorageError,
        #[case] retryable: bool,
        #[case] kind: Option<ErrorKind>,
    ) {
        assert_eq!((e.is_retryable(), e.store_kind()), (retryable, kind), "{e}");
    }

    #[test]
    fn no_credentials_is_recognised_by_the_signer_s_error_kind() {
        let sign = opendal::Error::new(ErrorKind::Unexpected, "signing http request").set_source(
            reqsign_core::Error::credential_invalid("failed to load signing credential"),
        );
        assert!(no_signing_credential(&sign));
        let other = opendal::Error::new(ErrorKind::Unexpected, "signing http request").set_source(
            reqsign_core::Error::unexpected("failed to load signing credential"),
        );
        assert!(!no_signing_credential(&other));
        assert!(!no_signing_credential(&store_err(
            ErrorKind::PermissionDenied
        )));
    }

    #[test]
    fn a_store_error_is_printed_once() {
        let e =
            io(store_err(ErrorKind::Unexpected).set_source(std::io::Error::other("reset by peer")));
        assert_eq!(
            e.to_string(),
            "storage location \"s3\": write \"backups/b/b.tar.gz\" failed"
        );
        let text = crate::error::chain(&e);
        assert_eq!(text.matches("reset by peer").count(), 1, "{text}");
        assert_eq!(text.matches("write \"backups").count(), 1, "{text}");
    }

    #[test]
    fn credentials_files() {
        let ini = "[default]\naws_access_key_id = AKIA\naws_secret_access_key=s3cr3t\n[other]\naws_access_key_id=B\n";
        let d = parse_credentials(ini, "default");
        assert_eq!(d["aws_access_key_id"], "AKIA");
        assert_eq!(d["aws_secret_access_key"], "s3cr3t");
        assert_eq!(parse_credentials(ini, "other")["aws_access_key_id"], "B");
        let env = "ALIBABA_CLOUD_ACCESS_KEY_ID=id\nALIBABA_CLOUD_ACCESS_KEY_SECRET=\"sec\"\n";
        assert_eq!(
            parse_credentials(env, "default")["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            "sec"
        );
    }

    #[rstest]
    #[case("file:///var/backups", "file", "/var/backups", "")]
    #[case("/var/backups/", "file", "/var/backups", "")]
    #[case("s3://velero/cluster-a?region=eu-west-1", "aws", "velero", "cluster-a")]
    #[case("gs://b", "gcp", "b", "")]
    #[case("azure://c/p/q?storageAccount=acct", "azure", "c", "p/q")]
    #[case("oss://b/p?region=cn-hangzhou", "alibabacloud", "b", "p")]
    fn location_urls(
        #[case] url: &str,
        #[case] provider: &str,
        #[case] bucket: &str,
        #[case] prefix: &str,
    ) {
        let l = location_from_url(url).unwrap();
        assert_eq!(l.spec.provider, provider);
        assert_eq!(l.spec.object_storage.bucket, bucket);
        assert_eq!(l.spec.object_storage.prefix, prefix);
    }

    fn spec_with(
        ca: Option<&str>,
        config: &[(&str, &str)],
    ) -> lifeboat_types::api::velero::BackupStorageLocationSpec {
        lifeboat_types::api::velero::BackupStorageLocationSpec {
            provider: "aws".into(),
            object_storage: lifeboat_types::api::velero::ObjectStorageLocation {
                bucket: "b".into(),
                ca_cert: ca.map(str::to_owned),
                ..Default::default()
            },
            config: config
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// Issue 11, item 9: caCert and insecureSkipTLSVerify are read, never ignored, and
    /// what weakens TLS is warned about.
    #[rstest]
    #[case::nothing(None, &[], Ok((None, false, 0)))]
    #[case::pem_text(Some(PEM), &[], Ok((Some(PEM), false, 0)))]
    // Base64 of the PEM, as Velero stores it (line breaks in it are ignored).
    #[case::base64(Some("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="), &[], Ok((Some(PEM), false, 0)))]
    #[case::base64_wrapped(Some("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1J\nSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="), &[], Ok((Some(PEM), false, 0)))]
    #[case::insecure(None, &[("insecureSkipTLSVerify", "true")], Ok((None, true, 1)))]
    #[case::secure_said(None, &[("insecureSkipTLSVerify", "false")], Ok((None, false, 0)))]
    #[case::http(None, &[("s3Url", "http://127.0.0.1:9000")], Ok((None, false, 1)))]
    #[case::http_and_insecure(None, &[("s3Url", "HTTP://minio:9000"), ("insecureSkipTLSVerify", "true")], Ok((None, true, 2)))]
    #[case::https(None, &[("s3Url", "https://minio:9000")], Ok((None, false, 0)))]
    #[case::bad_bool(None, &[("insecureSkipTLSVerify", "yes")], Err("insecureSkipTLSVerify must be true or false, got \"yes\""))]
    #[case::bad_ca(Some("not base64!"), &[], Err("objectStorage.caCert is neither PEM nor base64"))]
    fn tls_settings_table(
        #[case] ca: Option<&str>,
        #[case] config: &[(&str, &str)],
        #[case] want: Result<(Option<&str>, bool, usize), &str>,
    ) {
        let got = tls_settings("l", &spec_with(ca, config));
        match (got, want) {
            (Ok(t), Ok((pem, insecure, warnings))) => {
                assert_eq!(t.ca_pem.as_deref(), pem.map(str::as_bytes));
                assert_eq!(t.insecure, insecure);
                assert_eq!(t.warnings.len(), warnings, "{:?}", t.warnings);
            }
            (Err(e), Err(part)) => assert!(e.contains(part), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn the_warnings_name_the_location_and_the_risk() {
        let t = tls_settings(
            "minio",
            &spec_with(
                None,
                &[
                    ("s3Url", "http://m:9000"),
                    ("insecureSkipTLSVerify", "true"),
                ],
            ),
        )
        .unwrap();
        assert_eq!(
            t.warnings,
            [
                "location \"minio\" does not verify its server's TLS certificate (insecureSkipTLSVerify): anyone on the network path can read and change its backups; give its CA as caCert instead",
                "location \"minio\" sends its backups and credentials unencrypted (s3Url http://m:9000 is http://); use https://",
            ]
        );
    }

    #[test]
    fn s3_url_options() {
        let l = location_from_url(
            "s3://b/p?s3Url=http%3A%2F%2F127.0.0.1%3A9000&s3ForcePathStyle=true&credential=/tmp/c",
        )
        .unwrap();
        assert_eq!(l.spec.config["s3Url"], "http://127.0.0.1:9000");
        assert_eq!(l.spec.config["s3ForcePathStyle"], "true");
        assert_eq!(l.spec.credential.unwrap().name, "/tmp/c");
    }

    #[rstest]
    #[case("ftp://x", "unknown scheme \"ftp\"")]
    #[case("relative/dir", "expected file:///dir, s3://bucket/prefix")]
    #[case("s3:///p", "no bucket in URL")]
    fn bad_urls(#[case] url: &str, #[case] want: &str) {
        let e = location_from_url(url).unwrap_err().to_string();
        assert!(e.contains(url) && e.contains(want), "{e}");
    }

    #[test]
    fn unknown_provider_and_missing_region() {
        let mut l = location_from_url("s3://b").unwrap();
        l.spec.provider = "ibm".into();
        assert!(
            Store::open(&l)
                .unwrap_err()
                .to_string()
                .contains("unknown provider")
        );
        let mut rel = location_from_url("/x").unwrap();
        rel.spec.object_storage.bucket = "x".into();
        assert!(
            Store::open(&rel)
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
    }

    #[tokio::test]
    async fn read_only_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = location_from_url(&format!("file://{}", dir.path().display())).unwrap();
        l.spec.access_mode = Some(AccessMode::ReadOnly);
        let s = Store::open(&l).unwrap();
        let e = s
            .write("backups/x/velero-backup.json", Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(matches!(e, StorageError::ReadOnly { .. }), "{e}");
        assert!(matches!(
            s.check(true).await.unwrap_err(),
            StorageError::ReadOnly { .. }
        ));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    fn file_store(dir: &Path) -> Store {
        let l = location_from_url(&format!("file://{}", dir.display())).unwrap();
        let mut s = Store::open(&l).unwrap();
        // Small parts, so that a small file is uploaded in several.
        s.chunk_size = 7;
        s
    }

    #[tokio::test]
    async fn upload_file_streams_a_local_file_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(&dir.path().join("store"));
        let local = dir.path().join("snapshot.db");
        let data: Vec<u8> = (0..100u8).collect();
        std::fs::write(&local, &data).unwrap();
        let path = s.etcd_snapshot("e-1.db");
        assert_eq!(s.upload_file(&local, &path).await.unwrap(), 100);
        assert_eq!(s.read(&path).await.unwrap().to_vec(), data);
    }

    #[tokio::test]
    async fn upload_file_names_a_missing_local_file_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(&dir.path().join("store"));
        let missing = dir.path().join("nosuch.db");
        let path = s.etcd_snapshot("e-1.db");
        let e = s.upload_file(&missing, &path).await.unwrap_err();
        assert!(
            matches!(&e, StorageError::LocalFile { path, .. } if *path == missing),
            "{e}"
        );
        assert!(!s.exists(&path).await.unwrap());
    }

    #[tokio::test]
    async fn upload_stops_at_the_first_error_of_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(&dir.path().join("store"));
        let path = s.etcd_snapshot("e-1.db");
        let chunks = futures::stream::iter([
            Ok(Bytes::from_static(b"0123456789")),
            Err(StorageError::LocalFile {
                location: "default".into(),
                path: "x".into(),
                source: std::io::Error::other("disk gone"),
            }),
            Ok(Bytes::from_static(b"never written")),
        ]);
        let e = s.upload(&path, chunks).await.unwrap_err();
        let shown = crate::error::chain(&e);
        assert!(shown.contains("disk gone"), "{shown}");
        assert!(!s.exists(&path).await.unwrap());
    }

    /// Issue 11 item 2: a create never overwrites what another writer stored first.
    #[tokio::test]
    async fn create_refuses_an_object_another_writer_stored_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path());
        let path = s.backup_paths("b").metadata();
        s.create(&path, Bytes::from_static(b"first")).await.unwrap();
        let e = s
            .create(&path, Bytes::from_static(b"second"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, StorageError::AlreadyExists { what, .. } if *what == path),
            "{e}"
        );
        assert!(e.to_string().contains("another writer"), "{e}");
        assert_eq!(s.read(&path).await.unwrap().as_ref(), b"first");
        // A plain write still replaces (restore results are rewritten this way).
        s.write(&path, Bytes::from_static(b"third")).await.unwrap();
        assert_eq!(s.read(&path).await.unwrap().as_ref(), b"third");
    }

    /// Issue 11 item 2: an upload never overwrites, and its failure deletes nothing of the
    /// other writer's object.
    #[tokio::test]
    async fn upload_refuses_an_object_another_writer_stored_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path());
        let path = s.backup_paths("b").contents();
        s.create(&path, Bytes::from_static(b"theirs"))
            .await
            .unwrap();
        let chunks = futures::stream::iter([Ok(Bytes::from_static(b"ours, in several parts"))]);
        let e = s.upload(&path, chunks).await.unwrap_err();
        assert!(
            matches!(&e, StorageError::AlreadyExists { what, .. } if *what == path),
            "{e}"
        );
        assert_eq!(s.read(&path).await.unwrap().as_ref(), b"theirs");
    }

    fn staged_files(root: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(root.join(layout::staging_dir("")))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// Issue 11 item 2: on a local directory a file is never seen under its own name
    /// before it is whole (it is staged under metadata/lifeboat-staging/, then renamed).
    #[tokio::test]
    async fn a_local_upload_is_invisible_until_complete() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path());
        let path = s.etcd_snapshot("e-1.db");
        let target = dir.path().join(&path);
        let seen = std::sync::Mutex::new(Vec::new());
        let chunks = futures::stream::iter(0..4).map(|i| {
            // Looked at while the upload is under way, before each next part.
            seen.lock().unwrap().push(target.exists());
            Ok(Bytes::from(vec![i as u8; 10]))
        });
        use futures::StreamExt;
        assert_eq!(s.upload(&path, chunks).await.unwrap(), 40);
        assert_eq!(*seen.lock().unwrap(), [false; 4]);
        assert_eq!(std::fs::read(&target).unwrap().len(), 40);
        // The listing shows the snapshot only, and nothing stays staged.
        let listed: Vec<String> = s
            .list_files(&s.etcd_snapshots_dir())
            .await
            .unwrap()
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        assert_eq!(listed, ["e-1.db"]);
        assert_eq!(staged_files(dir.path()), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn a_failed_local_upload_leaves_nothing_staged() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path());
        let path = s.etcd_snapshot("e-1.db");
        let chunks = futures::stream::iter([
            Ok(Bytes::from_static(b"0123456789")),
            Err(StorageError::LocalFile {
                location: "default".into(),
                path: "x".into(),
                source: std::io::Error::other("disk gone"),
            }),
        ]);
        s.upload(&path, chunks).await.unwrap_err();
        assert!(!s.exists(&path).await.unwrap());
        assert_eq!(staged_files(dir.path()), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn a_path_leaving_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(&dir.path().join("store"));
        let e = s
            .create(
                "metadata/etcd/../../../escaped.db",
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("leaves the location's directory"),
            "{e}"
        );
        assert!(!dir.path().join("escaped.db").exists());
    }

    #[tokio::test]
    async fn upload_to_a_read_only_location_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = location_from_url(&format!("file://{}", dir.path().display())).unwrap();
        l.spec.access_mode = Some(AccessMode::ReadOnly);
        let s = Store::open(&l).unwrap();
        let local = dir.path().join("snapshot.db");
        std::fs::write(&local, b"data").unwrap();
        let e = s
            .upload_file(&local, &s.etcd_snapshot("e.db"))
            .await
            .unwrap_err();
        assert!(matches!(e, StorageError::ReadOnly { .. }), "{e}");
    }
}
