//! The velero.io/v1 resources lifeboat reads and writes, field for field as Velero 1.18
//! serialises them. Specs reject unknown fields so that a typo in a user's YAML is an
//! error, not a silently ignored filter.

// kube's printcolumn(...) attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::duration::GoDuration;

/// The API group and version of every Velero resource.
pub const API_VERSION: &str = "velero.io/v1";
/// The namespace Velero keeps its resources in; lifeboat writes it into stored metadata.
pub const DEFAULT_NAMESPACE: &str = "velero";
/// The label Velero puts on a backup naming its storage location.
pub const STORAGE_LOCATION_LABEL: &str = "velero.io/storage-location";
/// The default TTL of a backup (30 days), as Velero.
pub const DEFAULT_TTL: GoDuration = GoDuration::hours(720);

/// A timestamp as Kubernetes writes it: RFC 3339, whole seconds, `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    /// The current time truncated to whole seconds.
    pub fn now() -> Self {
        let now = Utc::now();
        Time(DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Time {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Time".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| Time(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("invalid timestamp {s:?}: {e}")))
    }
}

/// The parts of Kubernetes object metadata that Velero resources use. Other fields are
/// kept as they are so that nothing is lost on a round trip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Server-set UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Server-set resource version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Server-set generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Time>,
    /// Every other metadata field, kept verbatim.
    #[serde(flatten)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must all be equal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based label requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Labels to put on the stored backup (`spec.metadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A reference to an object in the same namespace, such as a resource policy ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypedLocalObjectReference {
    /// The API group of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// The kind of the referent.
    pub kind: String,
    /// The name of the referent.
    pub name: String,
}

/// What a failing hook does to the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HookErrorMode {
    /// Log and go on.
    Continue,
    /// Fail the backup.
    Fail,
}

/// A command run in a container of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecHook {
    /// The container; the pod's first when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// What a failure does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<HookErrorMode>,
    /// How long the command may run (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
}

/// A hook: only `exec` hooks exist for backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupResourceHook {
    /// The command to run.
    pub exec: ExecHook,
}

/// Which pods a set of hooks runs in, and the hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupResourceHookSpec {
    /// The name of this hook set (for logs).
    pub name: String,
    /// Namespaces whose pods run the hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_namespaces: Vec<String>,
    /// Namespaces whose pods do not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_namespaces: Vec<String>,
    /// Resources the hooks apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_resources: Vec<String>,
    /// Resources they do not apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_resources: Vec<String>,
    /// Pods whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Hooks run before the pod is backed up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<BackupResourceHook>,
    /// Hooks run after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<BackupResourceHook>,
}

/// `spec.hooks` of a Backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupHooks {
    /// The hook sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<BackupResourceHookSpec>,
}

/// Options of the file-system uploader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploaderConfig {
    /// Files uploaded in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_files_upload: Option<u32>,
}

/// `spec` of a velero.io/v1 Backup (and of lifeboat.dev/v1alpha1 Backup, the server's CRD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Backup",
    root = "BackupResource",
    namespaced,
    status = "BackupStatus",
    category = "lifeboat",
    doc = "A backup of Kubernetes resources, run by `lifeboat server` (fields as velero.io/v1 Backup).",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Errors", type_ = "integer", json_path = ".status.errors"),
    printcolumn(name = "Warnings", type_ = "integer", json_path = ".status.warnings"),
    printcolumn(name = "Created", type_ = "date", json_path = ".status.startTimestamp"),
    printcolumn(name = "Expires", type_ = "date", json_path = ".status.expiration"),
    printcolumn(
        name = "Storage Location",
        type_ = "string",
        json_path = ".spec.storageLocation"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupSpec {
    /// Labels for the stored backup.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: BackupMetadata,
    /// Namespace globs to include (empty or `*`: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_namespaces: Vec<String>,
    /// Namespace globs to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_namespaces: Vec<String>,
    /// Resources to include (old-style filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_resources: Vec<String>,
    /// Resources to exclude (old-style filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_resources: Vec<String>,
    /// Cluster-scoped resources to include (new-style filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_cluster_scoped_resources: Vec<String>,
    /// Cluster-scoped resources to exclude (new-style filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_cluster_scoped_resources: Vec<String>,
    /// Namespaced resources to include (new-style filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_namespace_scoped_resources: Vec<String>,
    /// Namespaced resources to exclude (new-style filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_namespace_scoped_resources: Vec<String>,
    /// Only objects whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Objects matching any one of these (exclusive with `labelSelector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub or_label_selectors: Vec<LabelSelector>,
    /// Take volume snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_volumes: Option<bool>,
    /// How long the backup is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<GoDuration>,
    /// Include cluster-scoped resources: unset means "when all namespaces are included".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cluster_resources: Option<bool>,
    /// Hooks.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hooks: BackupHooks,
    /// The storage location's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
    /// Volume snapshot locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_snapshot_locations: Vec<String>,
    /// Deprecated name of `defaultVolumesToFsBackup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_volumes_to_restic: Option<bool>,
    /// Back up every pod volume with the file-system uploader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// Per resource, the `ns/name` (or `name`) list to back up first, in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ordered_resources: BTreeMap<String, String>,
    /// Timeout of CSI snapshots (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi_snapshot_timeout: Option<GoDuration>,
    /// Timeout of asynchronous item operations (default 4h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_operation_timeout: Option<GoDuration>,
    /// A resource policy ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<TypedLocalObjectReference>,
    /// Move snapshot data to the storage location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_move_data: Option<bool>,
    /// The data mover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datamover: Option<String>,
    /// Uploader options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploader_config: Option<UploaderConfig>,
    /// Label key grouping volumes into one volume group snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_label_key: Option<String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The phase of a backup, as Velero names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, JsonSchema)]
pub enum BackupPhase {
    /// Just created.
    #[default]
    New,
    /// Waiting for a worker.
    Queued,
    /// About to start.
    ReadyToStart,
    /// The spec was rejected.
    FailedValidation,
    /// Running.
    InProgress,
    /// Waiting for asynchronous operations.
    WaitingForPluginOperations,
    /// Waiting for asynchronous operations, with errors so far.
    WaitingForPluginOperationsPartiallyFailed,
    /// Writing the last files.
    Finalizing,
    /// Writing the last files, with errors so far.
    FinalizingPartiallyFailed,
    /// Every item stored.
    Completed,
    /// Stored, but some items failed.
    PartiallyFailed,
    /// Nothing usable stored.
    Failed,
    /// Being deleted.
    Deleting,
}

impl BackupPhase {
    /// Whether the backup will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BackupPhase::Completed
                | BackupPhase::PartiallyFailed
                | BackupPhase::Failed
                | BackupPhase::FailedValidation
        )
    }
}

impl fmt::Display for BackupPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Item counts of a backup in progress or done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    /// Items found to back up.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_items: u64,
    /// Items stored so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub items_backed_up: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Hook counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookStatus {
    /// Hooks run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hooks_attempted: u64,
    /// Hooks that failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hooks_failed: u64,
}

/// `status` of a velero.io/v1 Backup. Unknown fields are kept so that a backup written by
/// a newer Velero reads back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// Deprecated version field; Velero writes 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The tarball format version, `1.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_version: Option<String>,
    /// When the backup may be garbage collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Time>,
    /// The phase.
    #[serde(default)]
    pub phase: BackupPhase,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
    /// When the backup started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    /// Volume snapshots attempted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub volume_snapshots_attempted: u64,
    /// Volume snapshots completed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub volume_snapshots_completed: u64,
    /// Why the backup failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Warnings counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings: u64,
    /// Errors counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Item counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<BackupProgress>,
    /// Hook counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_status: Option<HookStatus>,
    /// Every other status field, kept verbatim.
    #[serde(flatten)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A velero.io/v1 Backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// Always `Backup`.
    pub kind: String,
    /// Always `velero.io/v1`.
    pub api_version: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// What to back up.
    #[serde(default)]
    pub spec: BackupSpec,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BackupStatus>,
}

impl BackupSpec {
    /// The TTL, Velero's default when unset or zero (Go writes an unset `metav1.Duration`
    /// as `0s`, and Velero reads zero as "the default": never as "expire at once").
    pub fn ttl_or_default(&self) -> GoDuration {
        self.ttl.filter(|t| !t.0.is_zero()).unwrap_or(DEFAULT_TTL)
    }
}

impl Backup {
    /// A new Backup named `name` with `spec`, in Velero's namespace.
    pub fn new(name: impl Into<String>, spec: BackupSpec) -> Self {
        Backup {
            kind: "Backup".into(),
            api_version: API_VERSION.into(),
            metadata: ObjectMeta {
                name: name.into(),
                namespace: Some(DEFAULT_NAMESPACE.into()),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    /// The phase, `New` when there is no status yet.
    pub fn phase(&self) -> BackupPhase {
        self.status.as_ref().map(|s| s.phase).unwrap_or_default()
    }

    /// The TTL ([`BackupSpec::ttl_or_default`]).
    pub fn ttl(&self) -> GoDuration {
        self.spec.ttl_or_default()
    }
}

/// A list of Backups, as `backup get -o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupList {
    /// Always `BackupList`.
    pub kind: String,
    /// Always `velero.io/v1`.
    pub api_version: String,
    /// List metadata (empty).
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// The backups.
    pub items: Vec<Backup>,
}

impl BackupList {
    /// Wraps `items` in a list.
    pub fn new(items: Vec<Backup>) -> Self {
        BackupList {
            kind: "BackupList".into(),
            api_version: API_VERSION.into(),
            metadata: BTreeMap::new(),
            items,
        }
    }
}

/// A list of messages per scope, as stored in `<backup>-results.gz`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResultMessages {
    /// Messages about Velero/lifeboat itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub velero: Vec<String>,
    /// Messages about cluster-scoped items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster: Vec<String>,
    /// Messages about namespaced items, per namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, Vec<String>>,
}

impl ResultMessages {
    /// Adds a message for `namespace` (cluster scope when `None`).
    pub fn add(&mut self, namespace: Option<&str>, message: impl Into<String>) {
        match namespace {
            Some(ns) if !ns.is_empty() => self
                .namespaces
                .entry(ns.to_owned())
                .or_default()
                .push(message.into()),
            _ => self.cluster.push(message.into()),
        }
    }

    /// The number of messages.
    pub fn len(&self) -> usize {
        self.velero.len()
            + self.cluster.len()
            + self.namespaces.values().map(Vec::len).sum::<usize>()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The content of `<backup>-results.gz`: errors and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupResults {
    /// Errors.
    #[serde(default)]
    pub errors: ResultMessages,
    /// Warnings.
    #[serde(default)]
    pub warnings: ResultMessages,
}

/// `accessMode` of a storage location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, JsonSchema)]
pub enum AccessMode {
    /// Backups may be written and deleted.
    #[default]
    ReadWrite,
    /// Backups may only be read.
    ReadOnly,
}

/// `spec.objectStorage` of a BackupStorageLocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectStorageLocation {
    /// The bucket (a directory for the `file` provider).
    pub bucket: String,
    /// A prefix inside the bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// A PEM CA bundle for the object store's TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
}

/// A reference to one key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    /// The Secret's name (for lifeboat's local config: a file path).
    pub name: String,
    /// The key.
    pub key: String,
}

/// `spec` of a velero.io/v1 BackupStorageLocation (and of lifeboat.dev/v1alpha1's).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, CustomResource,
)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "BackupStorageLocation",
    root = "BackupStorageLocationResource",
    namespaced,
    status = "BackupStorageLocationStatus",
    category = "lifeboat",
    shortname = "bsl",
    doc = "Where backups are stored (fields as velero.io/v1 BackupStorageLocation).",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Last Validated",
        type_ = "date",
        json_path = ".status.lastValidationTime"
    ),
    printcolumn(name = "Access Mode", type_ = "string", json_path = ".spec.accessMode"),
    printcolumn(name = "Default", type_ = "boolean", json_path = ".spec.default")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupStorageLocationSpec {
    /// `aws`, `gcp`, `azure`, `alibabacloud` or `file` (Velero's names, also with a
    /// `velero.io/` prefix).
    pub provider: String,
    /// Provider options (`region`, `s3Url`, `s3ForcePathStyle`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeySelector>,
    /// Where backups are stored.
    pub object_storage: ObjectStorageLocation,
    /// The default location.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// ReadWrite or ReadOnly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<AccessMode>,
    /// How often Velero syncs backups from the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_sync_period: Option<GoDuration>,
    /// How often Velero validates the location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_frequency: Option<GoDuration>,
}

/// A velero.io/v1 BackupStorageLocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocation {
    /// Always `BackupStorageLocation`.
    pub kind: String,
    /// Always `velero.io/v1`.
    pub api_version: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Where and how.
    pub spec: BackupStorageLocationSpec,
}

impl BackupStorageLocation {
    /// A new location named `name`.
    pub fn new(name: impl Into<String>, spec: BackupStorageLocationSpec) -> Self {
        BackupStorageLocation {
            kind: "BackupStorageLocation".into(),
            api_version: API_VERSION.into(),
            metadata: ObjectMeta {
                name: name.into(),
                namespace: Some(DEFAULT_NAMESPACE.into()),
                ..Default::default()
            },
            spec,
        }
    }

    /// Whether writes are refused.
    pub fn is_read_only(&self) -> bool {
        self.spec.access_mode == Some(AccessMode::ReadOnly)
    }
}

/// `spec` of a velero.io/v1 VolumeSnapshotLocation (and of lifeboat.dev/v1alpha1's): where
/// volume snapshots would be taken. lifeboat keeps and shows these; it takes no volume
/// snapshots yet (a backup records `volumeSnapshotLocations` in its spec only).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, CustomResource,
)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "VolumeSnapshotLocation",
    root = "VolumeSnapshotLocationResource",
    namespaced,
    status = "VolumeSnapshotLocationStatus",
    category = "lifeboat",
    shortname = "vsl",
    doc = "Where volume snapshots are taken (fields as velero.io/v1 VolumeSnapshotLocation; kept, not used yet).",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSnapshotLocationSpec {
    /// The snapshot provider (`aws`, `gcp`, `azure`, `alibabacloud`, a plugin's name).
    pub provider: String,
    /// Provider options (`region`, `apiTimeout`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeySelector>,
}

/// The phase of a volume snapshot location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum VolumeSnapshotLocationPhase {
    /// Usable.
    Available,
    /// Not usable.
    Unavailable,
}

/// `status` of a VolumeSnapshotLocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotLocationStatus {
    /// Available or Unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VolumeSnapshotLocationPhase>,
}

/// A velero.io/v1 VolumeSnapshotLocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSnapshotLocation {
    /// Always `VolumeSnapshotLocation`.
    pub kind: String,
    /// Always `velero.io/v1`.
    pub api_version: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Provider and options.
    pub spec: VolumeSnapshotLocationSpec,
    /// What the server found (kept as read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VolumeSnapshotLocationStatus>,
}

impl VolumeSnapshotLocation {
    /// A new location named `name`.
    pub fn new(name: impl Into<String>, spec: VolumeSnapshotLocationSpec) -> Self {
        VolumeSnapshotLocation {
            kind: "VolumeSnapshotLocation".into(),
            api_version: API_VERSION.into(),
            metadata: ObjectMeta {
                name: name.into(),
                namespace: Some(DEFAULT_NAMESPACE.into()),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }
}

/// `spec.restoreStatus`: which resources keep their status on restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreStatusSpec {
    /// Resources whose status is restored (`*` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_resources: Vec<String>,
    /// Resources whose status is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_resources: Vec<String>,
}

/// `spec` of a velero.io/v1 Restore (and of lifeboat.dev/v1alpha1's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Restore",
    root = "RestoreResource",
    namespaced,
    status = "RestoreStatus",
    category = "lifeboat",
    doc = "A restore from a backup, run by `lifeboat server` (fields as velero.io/v1 Restore).",
    printcolumn(name = "Backup", type_ = "string", json_path = ".spec.backupName"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Started", type_ = "date", json_path = ".status.startTimestamp"),
    printcolumn(
        name = "Completed",
        type_ = "date",
        json_path = ".status.completionTimestamp"
    ),
    printcolumn(name = "Errors", type_ = "integer", json_path = ".status.errors"),
    printcolumn(name = "Warnings", type_ = "integer", json_path = ".status.warnings")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreSpec {
    /// The backup to restore.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backup_name: String,
    /// Restore the newest backup of this schedule instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_name: Option<String>,
    /// Namespace globs to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_namespaces: Vec<String>,
    /// Namespace globs to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_namespaces: Vec<String>,
    /// Resources to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_resources: Vec<String>,
    /// Resources to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_resources: Vec<String>,
    /// Source namespace → target namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_mapping: BTreeMap<String, String>,
    /// Only objects whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Objects matching any one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub or_label_selectors: Vec<LabelSelector>,
    /// Restore persistent volumes from snapshots.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "restorePVs"
    )]
    pub restore_pvs: Option<bool>,
    /// Which resources keep their status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_status: Option<RestoreStatusSpec>,
    /// Keep Services' node ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_node_ports: Option<bool>,
    /// Include cluster-scoped resources (unset: Velero's automatic choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cluster_resources: Option<bool>,
    /// Restore hooks (kept; not executed by this version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::crd::free_form")]
    pub hooks: Option<serde_json::Value>,
    /// `none` (default) or `update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_resource_policy: Option<String>,
    /// Timeout of asynchronous item operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_operation_timeout: Option<GoDuration>,
    /// A resource-modifier ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_modifier: Option<TypedLocalObjectReference>,
    /// Uploader options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::crd::free_form")]
    pub uploader_config: Option<serde_json::Value>,
}

/// The phase of a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, JsonSchema)]
pub enum RestorePhase {
    /// Just created.
    #[default]
    New,
    /// The spec was rejected.
    FailedValidation,
    /// Running.
    InProgress,
    /// Waiting for asynchronous operations.
    WaitingForPluginOperations,
    /// Waiting, with errors so far.
    WaitingForPluginOperationsPartiallyFailed,
    /// Finishing.
    Finalizing,
    /// Finishing, with errors so far.
    FinalizingPartiallyFailed,
    /// Every object restored or deliberately skipped.
    Completed,
    /// Some objects failed.
    PartiallyFailed,
    /// Nothing restored.
    Failed,
}

impl fmt::Display for RestorePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Item counts of a restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgress {
    /// Items to restore.
    #[serde(default)]
    pub total_items: u64,
    /// Items restored so far.
    #[serde(default)]
    pub items_restored: u64,
}

/// `status` of a velero.io/v1 Restore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// The phase.
    #[serde(default)]
    pub phase: RestorePhase,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
    /// Warnings counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings: u64,
    /// Errors counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    /// Item counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RestoreProgress>,
    /// Exec hooks run in restored pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_status: Option<HookStatus>,
    /// Every other status field, kept verbatim.
    #[serde(flatten)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A velero.io/v1 Restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restore {
    /// Always `Restore`.
    pub kind: String,
    /// Always `velero.io/v1`.
    pub api_version: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// What to restore.
    #[serde(default)]
    pub spec: RestoreSpec,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RestoreStatus>,
}

impl Restore {
    /// A new Restore named `name`.
    pub fn new(name: impl Into<String>, spec: RestoreSpec) -> Self {
        Restore {
            kind: "Restore".into(),
            api_version: API_VERSION.into(),
            metadata: ObjectMeta {
                name: name.into(),
                namespace: Some(DEFAULT_NAMESPACE.into()),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    /// The phase, `New` when there is no status.
    pub fn phase(&self) -> RestorePhase {
        self.status.as_ref().map(|s| s.phase).unwrap_or_default()
    }
}

/// The phase of a storage location, as Velero's validation loop sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BackupStorageLocationPhase {
    /// The store answered and the prefix holds only Velero's directories.
    Available,
    /// It did not; `message` says why.
    Unavailable,
}

/// `status` of a BackupStorageLocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationStatus {
    /// Available or Unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupStorageLocationPhase>,
    /// When it was last validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validation_time: Option<Time>,
    /// When backups were last synced from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_time: Option<Time>,
    /// Why it is Unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `spec` of a velero.io/v1 Schedule (and of lifeboat.dev/v1alpha1's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Schedule",
    root = "ScheduleResource",
    namespaced,
    status = "ScheduleStatus",
    category = "lifeboat",
    doc = "Backups made on a cron schedule (fields as velero.io/v1 Schedule).",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Last Backup", type_ = "date", json_path = ".status.lastBackup"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The Backup spec of every backup made.
    #[serde(default)]
    pub template: BackupSpec,
    /// A 5-field cron expression (UTC), or `@every <duration>`, `@daily`, `@hourly`...
    pub schedule: String,
    /// Make the schedule the owner of its backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_owner_references_in_backup: Option<bool>,
    /// Make no backups while true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Do not back up at once when the schedule is created or unpaused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_immediately: Option<bool>,
}

/// The phase of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
pub enum SchedulePhase {
    /// Not yet validated.
    #[default]
    New,
    /// Valid and running.
    Enabled,
    /// The cron expression or template was rejected.
    FailedValidation,
}

impl fmt::Display for SchedulePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `status` of a Schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// The phase.
    #[serde(default)]
    pub phase: SchedulePhase,
    /// When the last backup was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<Time>,
    /// When a due backup was last skipped (skipImmediately).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_skipped: Option<Time>,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
}

/// A velero.io/v1 Schedule (as `lifeboat apply -f` reads it; the server keeps it as a
/// lifeboat.dev/v1alpha1 Schedule with the same spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Always `Schedule`.
    pub kind: String,
    /// Always `velero.io/v1`.
    pub api_version: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// When and what.
    pub spec: ScheduleSpec,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ScheduleStatus>,
}

/// `spec` of a DeleteBackupRequest: the server deletes the stored backup, then the object.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, CustomResource,
)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "DeleteBackupRequest",
    root = "DeleteBackupRequestResource",
    namespaced,
    status = "DeleteBackupRequestStatus",
    category = "lifeboat",
    doc = "A request to delete one backup's stored data and its object (as velero.io/v1's).",
    printcolumn(name = "Backup", type_ = "string", json_path = ".spec.backupName"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteBackupRequestSpec {
    /// The backup to delete.
    pub backup_name: String,
}

/// `status` of a DeleteBackupRequest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteBackupRequestStatus {
    /// New, InProgress or Processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_ttl_is_the_default_not_expire_at_once() {
        let mut b = Backup::new("b", BackupSpec::default());
        assert_eq!(b.ttl(), DEFAULT_TTL);
        b.spec.ttl = Some("0s".parse().unwrap());
        assert_eq!(b.ttl(), DEFAULT_TTL);
        b.spec.ttl = Some("1h".parse().unwrap());
        assert_eq!(b.ttl().0.as_secs(), 3600);
    }
}
