//! Restoring a Velero-layout backup into a cluster, in parallel.
//!
//! Flow: the backup's tarball is streamed from the location and extracted into a private
//! temporary directory, validated entry by entry (nothing touches the cluster until the
//! whole archive has passed); items are indexed and planned (a pure function,
//! `lifeboat_types::plan::restore_plan::plan`); then phases run in Velero's priority order, each phase's
//! objects created concurrently with bounded parallelism. CRDs are waited for until
//! Established, namespaces until Active, before what depends on them.
//!
//! Invariants:
//! - A damaged or hostile archive is refused before the first object is created.
//! - Every planned object gets an outcome, recorded in the results; a failure never
//!   aborts the other objects silently.
//! - `--dry-run` creates and changes nothing in the cluster and writes nothing to the
//!   location.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, stream};
use lifeboat_types::api::names::{NameError, validate_name};
use lifeboat_types::api::velero::{
    BackupPhase, BackupResults, Restore, RestorePhase, RestoreProgress, RestoreStatus, Time,
};
use lifeboat_types::format::layout::{PREFERRED_VERSION_SUFFIX, RestorePaths};
use lifeboat_types::format::resource_list::ResourceList;
use lifeboat_types::plan::backup::{ApiResource, PlanError};
use lifeboat_types::plan::restore::{
    BACKUP_NAME_LABEL, RESTORE_NAME_LABEL, RestoreFilter, SanitizeOptions, sanitize,
};
use lifeboat_types::plan::restore_plan::{self, Step, Wait};
use serde_json::Value;

use crate::archive::gzip;
use crate::catalog::{self, CatalogError};
use crate::cluster::{ApiErrorKind, Cluster, ClusterError, Created};
use crate::error::chain;
use crate::extract::{ArchiveError, Limits, check_room, extract_validated};
use crate::modifiers::Modifiers;
use crate::runlog::RunLog;
use crate::storage::{StorageError, Store};

/// Default number of objects created at once.
pub const DEFAULT_PARALLELISM: usize = 32;

/// Why a restore could not run. Nothing was created in the cluster in these cases, except
/// for [`RestoreError::Cluster`] raised mid-way (reported with what was done).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// `spec.hooks` is malformed.
    #[error("restore {restore:?}: {reason}")]
    Hooks {
        /// The restore.
        restore: String,
        /// What is wrong (names the field).
        reason: String,
    },
    /// The restore's name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The backup cannot be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The backup is not in a restorable phase.
    #[error(
        "backup {backup:?} is {phase}; only Completed or PartiallyFailed backups can be restored"
    )]
    NotRestorable {
        /// The backup.
        backup: String,
        /// Its phase.
        phase: BackupPhase,
    },
    /// No backup was named.
    #[error("no backup to restore: name the backup (or a schedule of backups) to restore from")]
    NoBackup,
    /// The filters are invalid.
    #[error("restore {restore:?}")]
    Plan {
        /// The restore.
        restore: String,
        /// Why.
        #[source]
        source: PlanError,
    },
    /// A namespace mapping names an invalid namespace.
    #[error("restore {restore:?}: invalid namespace mapping {from}:{to}: {reason}")]
    BadMapping {
        /// The restore.
        restore: String,
        /// Source namespace.
        from: String,
        /// Target namespace.
        to: String,
        /// Why.
        reason: String,
    },
    /// The archive is damaged or hostile.
    #[error("backup {backup:?}")]
    Archive {
        /// The backup.
        backup: String,
        /// Why.
        #[source]
        source: ArchiveError,
    },
    /// The cluster could not be read.
    #[error("restore {restore:?}")]
    Cluster {
        /// The restore.
        restore: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// The location could not be written.
    #[error("restore {restore:?}")]
    Storage {
        /// The restore.
        restore: String,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// A restore with this name exists.
    #[error("restore {0:?} already exists in the storage location; choose another name")]
    AlreadyExists(String),
    /// Local I/O (the temporary directory).
    #[error("restore {restore:?}")]
    Io {
        /// The restore.
        restore: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RestoreError {
    /// Whether trying again later can help: the cluster, the location or the local disk
    /// failed for a moment. A bad spec, name or archive stays one.
    pub fn is_retryable(&self) -> bool {
        match self {
            RestoreError::Catalog(e) => e.is_retryable(),
            RestoreError::Cluster { source, .. } => source.is_retryable(),
            RestoreError::Storage { source, .. } => source.is_retryable(),
            RestoreError::Archive { source, .. } => source.is_retryable(),
            RestoreError::Io { .. } => true,
            RestoreError::Hooks { .. }
            | RestoreError::Name(_)
            | RestoreError::NotRestorable { .. }
            | RestoreError::NoBackup
            | RestoreError::Plan { .. }
            | RestoreError::BadMapping { .. }
            | RestoreError::AlreadyExists(_) => false,
        }
    }
}

/// `existingResourcePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingPolicy {
    /// Leave existing objects alone (warn when they differ).
    #[default]
    None,
    /// Patch existing objects to the backed-up state.
    Update,
}

impl ExistingPolicy {
    /// Parses `none` / `update`.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("none") {
            "" | "none" => Ok(ExistingPolicy::None),
            "update" => Ok(ExistingPolicy::Update),
            other => Err(format!(
                "invalid existing resource policy {other:?}: use none or update"
            )),
        }
    }
}

/// Options of one restore run.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Objects created at once.
    pub parallelism: usize,
    /// Only report what would happen.
    pub dry_run: bool,
    /// Resource modifiers to apply.
    pub modifiers: Option<Modifiers>,
    /// Where the node agents take pod volume work; `None`: no volume data is restored
    /// (the pods with backed-up volumes are named in a warning).
    pub pod_volumes: Option<crate::pod_volumes::PodVolumeSettings>,
    /// A warm standby's sync: every object held as `types::dr::standby::hold` says
    /// (the plan's label, workloads at 0 with their count kept, CronJobs suspended).
    pub standby: Option<StandbyHold>,
    /// With the existing-resource policy `update`, update only objects in namespaces:
    /// cluster-scoped ones that exist (CRDs other applications share) are left as they are.
    pub update_namespaced_only: bool,
}

/// How a warm standby's sync holds what it restores.
#[derive(Debug, Clone)]
pub struct StandbyHold {
    /// The DR plan (the value of the `lifeboat.dev/standby-of` label).
    pub plan: String,
    /// The annotation the replica counts are kept in.
    pub annotation: String,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            parallelism: DEFAULT_PARALLELISM,
            dry_run: false,
            modifiers: None,
            pod_volumes: None,
            standby: None,
            update_namespaced_only: false,
        }
    }
}

/// What happened (or, in a dry run, would happen) to one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Outcome {
    /// Created.
    Created,
    /// Would be created (dry run).
    WouldCreate,
    /// Patched to the backed-up state (existing policy update).
    Updated,
    /// Would be patched (dry run).
    WouldUpdate {
        /// Unified diff, live → backed-up.
        diff: String,
    },
    /// Exists and matches the backup.
    SkipIdentical,
    /// Exists and differs; left alone.
    SkipDiffers {
        /// Unified diff, live → backed-up: in a dry run only. A restore compares for
        /// equality alone, so that re-restoring over a full cluster renders and keeps no
        /// text per object.
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
    },
    /// Failed.
    Failed {
        /// Why.
        error: String,
    },
}

/// One object's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemReport {
    /// `deployments.apps`.
    pub resource: String,
    /// Target namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The result of a restore run.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The Restore, with its status.
    pub restore: Restore,
    /// Every planned object's outcome, in execution order.
    pub items: Vec<ItemReport>,
    /// Errors and warnings.
    pub results: BackupResults,
}

/// Live counters for progress bars.
#[derive(Debug, Default)]
pub struct RestoreProgressCounters {
    /// Objects planned.
    pub total: AtomicU64,
    /// Objects done (any outcome).
    pub done: AtomicU64,
}

/// One item file of the extracted backup.
#[derive(Debug, Clone)]
struct ItemFile {
    gr: String,
    namespace: Option<String>,
    name: String,
    path: PathBuf,
}

/// Lists the items of an extracted backup, choosing per resource the
/// `<version>-preferredversion` directory when there is one (format 1.1.0), else the
/// unversioned one (format 1.0).
fn index_items(root: &Path) -> std::io::Result<Vec<ItemFile>> {
    let mut out = Vec::new();
    let res = root.join("resources");
    if !res.is_dir() {
        return Ok(out);
    }
    let mut grs: Vec<_> = std::fs::read_dir(&res)?.flatten().collect();
    grs.sort_by_key(|e| e.file_name());
    for gr_entry in grs {
        let gr = gr_entry.file_name().to_string_lossy().into_owned();
        let gr_dir = gr_entry.path();
        let preferred = std::fs::read_dir(&gr_dir)?
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(PREFERRED_VERSION_SUFFIX)
            })
            .map(|e| e.path());
        let base = preferred.unwrap_or(gr_dir);
        let cluster = base.join("cluster");
        if cluster.is_dir() {
            for f in sorted_files(&cluster)? {
                if let Some(name) = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".json"))
                {
                    out.push(ItemFile {
                        gr: gr.clone(),
                        namespace: None,
                        name: name.to_owned(),
                        path: f.clone(),
                    });
                }
            }
        }
        let nss = base.join("namespaces");
        if nss.is_dir() {
            let mut dirs: Vec<_> = std::fs::read_dir(&nss)?.flatten().collect();
            dirs.sort_by_key(|e| e.file_name());
            for ns in dirs {
                let ns_name = ns.file_name().to_string_lossy().into_owned();
                for f in sorted_files(&ns.path())? {
                    if let Some(name) = f
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_suffix(".json"))
                    {
                        out.push(ItemFile {
                            gr: gr.clone(),
                            namespace: Some(ns_name.clone()),
                            name: name.to_owned(),
                            path: f.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn sorted_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// The resource to address for an object of `api_version` and group-resource `gr`.
fn target_resource(gr: &str, api_version: &str, kind: &str, namespaced: bool) -> ApiResource {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.to_owned()),
    };
    let plural = gr.split('.').next().unwrap_or(gr).to_owned();
    ApiResource {
        group,
        version,
        plural,
        singular: String::new(),
        kind: kind.to_owned(),
        namespaced,
        short_names: vec![],
        verbs: vec![],
    }
}

/// A live object reduced to what a backup would hold, for comparison and diffs.
fn normalize_live(gr: &str, live: &mut Value, o: &SanitizeOptions) {
    sanitize(gr, live, o);
    strip_restore_labels(live);
}

fn strip_restore_labels(v: &mut Value) {
    if let Some(l) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(BACKUP_NAME_LABEL);
        l.remove(RESTORE_NAME_LABEL);
        if l.is_empty()
            && let Some(m) = v.pointer_mut("/metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
}

/// Whether every field of `want` is present and equal in `have` (the API server adds
/// defaults, so a live object is a superset of what was created).
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        _ => want == have,
    }
}

/// A unified diff of two objects as YAML.
pub fn yaml_diff(live: &Value, wanted: &Value, title: &str) -> String {
    let a = serde_yaml_ng::to_string(live).unwrap_or_default();
    let b = serde_yaml_ng::to_string(wanted).unwrap_or_default();
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{title}"), &format!("backup/{title}"))
        .to_string()
}

/// One planned object.
#[derive(Debug, Clone)]
struct Planned {
    file: ItemFile,
    target_ns: Option<String>,
    /// A claim whose volume is not restored: it provisions a new one.
    provision_fresh: bool,
}

struct Exec<'a> {
    cluster: &'a Cluster,
    sanitize: SanitizeOptions,
    policy: ExistingPolicy,
    opts: &'a RestoreOptions,
    restored: Mutex<ResourceList>,
    log: RunLog,
    progress: Arc<RestoreProgressCounters>,
    hooks: lifeboat_types::plan::restore_hooks::RestoreHooks,
    /// Exec hooks of the pods this restore created, run after the last phase.
    pod_hooks: Mutex<Vec<crate::hooks::RestorePodHooks>>,
    /// The backed-up volumes with files to restore, by source namespace and pod.
    stored_volumes: BTreeMap<(String, String), Vec<crate::pod_volumes::StoredVolume>>,
    /// The image of the restore-wait container (`None`: volume data is not restored).
    wait_image: Option<String>,
    /// The backup's CSI snapshots, by the claim's namespace and name in the backup.
    snapshots: BTreeMap<(String, String), lifeboat_types::rules::csi::SnapshotRecord>,
    /// The volumes of the pods this restore created, for the node agents.
    volume_restores: Mutex<Vec<crate::pod_volumes::PendingRestore>>,
}

impl Exec<'_> {
    fn error(&self, ns: Option<&str>, msg: String) {
        self.log.error(ns, msg);
    }

    fn warn(&self, ns: Option<&str>, msg: String) {
        self.log.warn(ns, msg);
    }

    /// Imports the CSI snapshot `rec` into namespace `ns` before its claim is created: a
    /// pre-provisioned VolumeSnapshotContent found by the snapshot's handle (Retain), and
    /// its VolumeSnapshot. Either found already is taken as it is (a restore run again).
    async fn import_snapshot(
        &self,
        rec: &lifeboat_types::rules::csi::SnapshotRecord,
        ns: &str,
    ) -> Result<(), String> {
        if self.opts.dry_run {
            return Ok(());
        }
        let restore = &self.sanitize.restore_name;
        let content = format!(
            "{restore}-{}",
            lifeboat_types::api::names::short_hash(&[ns, &rec.snapshot])
        );
        let resource = crate::csi::snapshot_resource;
        let what = format!(
            "CSI snapshot {} of claim {}/{}",
            rec.handle, rec.namespace, rec.claim
        );
        for (r, namespace, body) in [
            (
                resource("volumesnapshotcontents", "VolumeSnapshotContent", false),
                None,
                rec.restored_content(&content, ns, restore),
            ),
            (
                resource("volumesnapshots", "VolumeSnapshot", true),
                Some(ns),
                rec.restored_snapshot(ns, &content, restore),
            ),
        ] {
            let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            match self.cluster.create_raw(&r, namespace, body).await {
                Ok(_) => {}
                Err(e) if e.is_unserved() => {
                    return Err(format!(
                        "{what}: the cluster does not serve {}/v1 {}: install the CSI snapshot CRDs and controller first",
                        lifeboat_types::rules::csi::GROUP,
                        r.kind
                    ));
                }
                Err(e) => return Err(format!("{what}: {}", chain(&e))),
            }
        }
        self.log.info(
            &format!(
                "{what}: imported into {ns} (VolumeSnapshot {}, content {content})",
                rec.snapshot
            ),
            &[],
        );
        Ok(())
    }

    /// Restores one object and reports its outcome.
    async fn restore_one(&self, p: &Planned) -> ItemReport {
        let gr = p.file.gr.clone();
        let ns = p.target_ns.clone();
        let mut report = ItemReport {
            resource: gr.clone(),
            namespace: ns.clone(),
            name: p.file.name.clone(),
            outcome: Outcome::Failed {
                error: String::new(),
            },
        };
        let outcome = self.restore_inner(p).await;
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        let what = format!(
            "{gr} {}",
            crate::restore::display_key(ns.as_deref(), &p.file.name)
        );
        match &outcome {
            Ok(o) => {
                match o {
                    Outcome::SkipDiffers { .. } => self.warn(
                        ns.as_deref(),
                        format!("could not restore, {what} already exists. Warning: the in-cluster version is different than the backed-up version"),
                    ),
                    Outcome::SkipIdentical => self.log.info(&format!("{what} already exists and matches the backup"), &[]),
                    Outcome::Updated => self.log.info(&format!("{what} existed and was updated"), &[]),
                    _ => {}
                }
            }
            Err(e) => self.error(ns.as_deref(), format!("error restoring {what}: {e}")),
        }
        report.outcome = outcome.unwrap_or_else(|e| Outcome::Failed { error: e });
        report
    }

    async fn restore_inner(&self, p: &Planned) -> Result<Outcome, String> {
        let gr = &p.file.gr;
        let text = std::fs::read(&p.file.path).map_err(|e| e.to_string())?;
        let mut obj: Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if api_version.is_empty() || kind.is_empty() {
            return Err("the backed-up object has no apiVersion or kind".into());
        }
        sanitize(gr, &mut obj, &self.sanitize);
        if p.provision_fresh {
            lifeboat_types::rules::volumes::provision_fresh(&mut obj);
            self.log.info(
                &format!(
                    "persistentvolumeclaims {}: its volume is not restored; reset for dynamic provisioning",
                    display_key(p.target_ns.as_deref(), &p.file.name)
                ),
                &[],
            );
        }
        if gr == "persistentvolumeclaims"
            && let (Some(ns), Some(source_ns)) =
                (p.target_ns.as_deref(), p.file.namespace.as_deref())
            && let Some(rec) = self
                .snapshots
                .get(&(source_ns.to_owned(), p.file.name.clone()))
        {
            self.import_snapshot(rec, ns).await?;
            lifeboat_types::rules::csi::claim_from_snapshot(&mut obj, &rec.snapshot);
        }
        if let Some(m) = &self.opts.modifiers {
            m.apply(gr, p.target_ns.as_deref(), &p.file.name, &mut obj)
                .map_err(|e| format!("resource modifier: {e}"))?;
        }
        if let Some(h) = &self.opts.standby {
            lifeboat_types::dr::standby::hold(&mut obj, gr, &h.annotation, &h.plan);
        }
        if gr == "pods"
            && let Some(ns) = p.target_ns.as_deref()
        {
            let applied =
                lifeboat_types::plan::restore_hooks::apply_init_hooks(&self.hooks, &mut obj, ns);
            if !applied.is_empty() {
                self.log.info(
                    &format!(
                        "pod {ns}/{}: init-container hooks {applied:?} added",
                        p.file.name
                    ),
                    &[],
                );
            }
        }
        // The pod's backed-up volumes: restored by the node agent of its node while its
        // restore-wait init container holds the application back.
        let mut wait_for: Vec<crate::pod_volumes::StoredVolume> = Vec::new();
        if gr == "pods"
            && let (Some(ns), Some(source_ns)) =
                (p.target_ns.as_deref(), p.file.namespace.as_deref())
            && let Some(vols) = self
                .stored_volumes
                .get(&(source_ns.to_owned(), p.file.name.clone()))
        {
            match &self.wait_image {
                Some(image) => {
                    let names: Vec<String> = vols.iter().map(|v| v.volume.clone()).collect();
                    let mounted = lifeboat_types::api::pod_volume::add_restore_wait(
                        &mut obj,
                        &names,
                        image,
                        &self.sanitize.restore_name,
                    );
                    wait_for = vols
                        .iter()
                        .filter(|v| mounted.contains(&v.volume))
                        .cloned()
                        .collect();
                }
                None => self.warn(
                    Some(ns),
                    format!(
                        "pod {ns}/{}: the files of its volume(s) {} are in the backup but not restored: volume data is restored by lifeboat's node agent — restore through the server (lifeboat install --use-node-agent), or with `lifeboat volume restore` on the node (docs/volumes.md)",
                        p.file.name,
                        vols.iter().map(|v| v.volume.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        // Exec hooks are planned on the pod as it will be created, and kept only if this
        // restore creates it (not for a pod that exists, nor in a dry run).
        let exec_plan = match (gr.as_str(), p.target_ns.as_deref()) {
            ("pods", Some(ns)) if !self.opts.dry_run => {
                lifeboat_types::plan::restore_hooks::plan_exec_hooks(&self.hooks, &obj, ns)
            }
            _ => Default::default(),
        };
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(&p.file.name)
            .to_owned();
        let r = target_resource(gr, &api_version, &kind, p.target_ns.is_some());
        let ns = p.target_ns.as_deref();
        if self.opts.dry_run {
            return match self
                .cluster
                .get_raw(&r, ns, &name)
                .await
                .map_err(|e| chain(&e))?
            {
                None => Ok(Outcome::WouldCreate),
                Some(live) => compare(gr, &obj, &live, &self.sanitize, self.policy, true),
            };
        }
        if gr == "namespaces" {
            wait_not_terminating(self, &name).await?;
        }
        let body = serde_json::to_vec(&obj).map_err(|e| e.to_string())?;
        let created = match self.cluster.create_raw(&r, ns, body).await {
            Ok(c) => c,
            Err(e) if e.is_unserved() => {
                return Err(format!(
                    "the target cluster does not serve {api_version} {kind}; install its CRD or API first (or include the CRD in the restore)"
                ));
            }
            Err(e) => return Err(chain(&e)),
        };
        let (created, maybe_own) = match created {
            Created::New { token_wait } => {
                if !token_wait.is_zero() {
                    self.log.info(
                        &format!(
                            "{gr} {}: waited {} s for the ServiceAccount token of its namespace",
                            display_key(ns, &name),
                            token_wait.as_secs()
                        ),
                        &[],
                    );
                }
                (true, false)
            }
            Created::Exists { maybe_own } => (false, maybe_own),
        };
        // The object found, compared with what was sent (read once) — none when this
        // create made it, or when a create sent again after a try whose answer was lost
        // finds its own object: identical to what was sent, it is this restore's.
        let existing = if created {
            None
        } else {
            let live = self
                .cluster
                .get_raw(&r, ns, &name)
                .await
                .map_err(|e| chain(&e))?
                .ok_or("it exists but cannot be read")?;
            Some(compare(
                gr,
                &obj,
                &live,
                &self.sanitize,
                self.policy,
                false,
            )?)
        }
        .filter(|o| !(maybe_own && *o == Outcome::SkipIdentical));
        let Some(outcome) = existing else {
            if let Ok(mut l) = self.restored.lock() {
                l.add(&format!("{api_version}/{kind}"), ns, &name);
            }
            if let Some(ns) = ns
                && !wait_for.is_empty()
            {
                // The restored pod's uid: the node agent restores into this pod only.
                let uid = self
                    .cluster
                    .get_raw(&r, Some(ns), &name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v.pointer("/metadata/uid")?.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if let Ok(mut l) = self.volume_restores.lock() {
                    for v in wait_for {
                        l.push(crate::pod_volumes::PendingRestore {
                            source_namespace: p.file.namespace.clone().unwrap_or_default(),
                            namespace: ns.to_owned(),
                            pod: name.clone(),
                            uid: uid.clone(),
                            volume: v,
                        });
                    }
                }
            }
            if let Some(ns) = ns {
                for w in &exec_plan.warnings {
                    self.warn(
                        Some(ns),
                        format!("pod {ns}/{name}: restore exec hooks: {w}"),
                    );
                }
                if !exec_plan.hooks.is_empty()
                    && let Ok(mut l) = self.pod_hooks.lock()
                {
                    l.push(crate::hooks::RestorePodHooks {
                        namespace: ns.to_string(),
                        pod: name.clone(),
                        restored_at: tokio::time::Instant::now(),
                        hooks: exec_plan.hooks,
                    });
                }
            }
            return Ok(Outcome::Created);
        };
        if let Outcome::SkipDiffers { .. } = &outcome
            && self.policy == ExistingPolicy::Update
            && (ns.is_some() || !self.opts.update_namespaced_only)
        {
            let mut patch = obj.clone();
            if let Some(m) = patch.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            self.cluster
                .merge_patch(
                    &r,
                    ns,
                    &name,
                    serde_json::to_vec(&patch).map_err(|e| e.to_string())?,
                )
                .await
                .map_err(|e| format!("update of the existing object failed: {}", chain(&e)))?;
            if let Ok(mut l) = self.restored.lock() {
                l.add(&format!("{api_version}/{kind}"), ns, &name);
            }
            return Ok(Outcome::Updated);
        }
        Ok(outcome)
    }
}

/// How the live object (`live`, as the API server sent it) compares with the backed-up one
/// as it would be created (`wanted`). Only a dry run renders a diff (a Secret's redacted by
/// `rules::secrets`); outside one only equality is computed — no YAML rendered, no text kept
/// per object — so that a re-restore over a full cluster stays in memory bounds (issue 11,
/// item 6). The "already exists" warning of a differing object needs no diff.
fn compare(
    gr: &str,
    wanted: &Value,
    live: &str,
    sanitize_options: &SanitizeOptions,
    policy: ExistingPolicy,
    dry_run: bool,
) -> Result<Outcome, String> {
    let mut live: Value = serde_json::from_str(live).map_err(|e| e.to_string())?;
    normalize_live(gr, &mut live, sanitize_options);
    let mut want = wanted.clone();
    strip_restore_labels(&mut want);
    if is_subset(&want, &live) {
        return Ok(Outcome::SkipIdentical);
    }
    if !dry_run {
        return Ok(Outcome::SkipDiffers { diff: None });
    }
    let title = format!(
        "{gr}/{}",
        want.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    // A Secret's diff shows which keys changed, never a value.
    lifeboat_types::rules::secrets::redact_for_diff(gr, &mut live, &mut want);
    let diff = yaml_diff(&live, &want, &title);
    Ok(match policy {
        ExistingPolicy::Update => Outcome::WouldUpdate { diff },
        ExistingPolicy::None => Outcome::SkipDiffers { diff: Some(diff) },
    })
}

/// The API group of a `<plural>.<group>` (`""` for the core group).
fn group_of(gr: &str) -> &str {
    gr.split_once('.').map_or("", |(_, g)| g)
}

/// `ns/name` or `name`.
pub fn display_key(ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(n) => format!("{n}/{name}"),
        None => name.to_owned(),
    }
}

fn valid_namespace(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && ns.as_bytes()[0].is_ascii_alphanumeric()
        && ns.as_bytes()[ns.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err("a namespace is at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit".into())
    }
}

/// Runs `restore` from `store` into `cluster`.
pub async fn run_restore(
    cluster: &Cluster,
    store: &Store,
    mut restore: Restore,
    opts: &RestoreOptions,
    progress: Arc<RestoreProgressCounters>,
) -> Result<RestoreReport, RestoreError> {
    let name = restore.metadata.name.clone();
    validate_name("restore", &name)?;
    let spec = restore.spec.clone();
    if spec.backup_name.is_empty() {
        return Err(RestoreError::NoBackup);
    }
    for (from, to) in &spec.namespace_mapping {
        valid_namespace(to).map_err(|reason| RestoreError::BadMapping {
            restore: name.clone(),
            from: from.clone(),
            to: to.clone(),
            reason,
        })?;
    }
    let policy =
        ExistingPolicy::parse(spec.existing_resource_policy.as_deref()).map_err(|reason| {
            RestoreError::Plan {
                restore: name.clone(),
                source: PlanError::BadValue {
                    field: "existingResourcePolicy",
                    reason,
                },
            }
        })?;
    let filter = RestoreFilter::new(&spec).map_err(|source| RestoreError::Plan {
        restore: name.clone(),
        source,
    })?;
    let backup = catalog::get_backup(store, &spec.backup_name).await?;
    if !matches!(
        backup.phase(),
        BackupPhase::Completed | BackupPhase::PartiallyFailed
    ) {
        return Err(RestoreError::NotRestorable {
            backup: spec.backup_name.clone(),
            phase: backup.phase(),
        });
    }
    let storage_err = |source| RestoreError::Storage {
        restore: name.clone(),
        source,
    };
    let cluster_err = |source| RestoreError::Cluster {
        restore: name.clone(),
        source,
    };
    let paths = RestorePaths::new(store.prefix(), &name);
    // A ReadOnly location (the usual DR-cluster setup) is restored from; the restore's
    // results are then not stored (the run's report and exit code still say everything).
    let record = !opts.dry_run && !store.is_read_only();
    if record {
        store.check(true).await.map_err(storage_err)?;
        if store.exists(&paths.metadata()).await.map_err(storage_err)? {
            return Err(RestoreError::AlreadyExists(name));
        }
    } else if !opts.dry_run {
        store.check(false).await.map_err(storage_err)?;
    }
    // The cluster must answer before the archive is fetched. Group versions it could not
    // discover are recorded once the plan says which groups this restore writes to.
    let (served, discovery_failures) = cluster.discover().await.map_err(cluster_err)?;
    // What the cluster serves but does not allow creating (componentstatuses) is skipped
    // with a note, never tried (issue 12, item 3).
    let not_creatable: BTreeSet<String> = served
        .iter()
        .filter(|r| !r.verbs.is_empty() && !r.verbs.iter().any(|v| v == "create"))
        .map(|r| r.group_resource())
        .collect();
    let filter = filter.with_not_creatable(not_creatable.clone());

    // Extract and validate the whole archive first.
    let tmp = tempfile::Builder::new()
        .prefix("lifeboat-restore-")
        .tempdir()
        .map_err(|source| RestoreError::Io {
            restore: name.clone(),
            source,
        })?;
    // A disk without room for the archive refuses the restore before it is read.
    let contents = store.backup_paths(&spec.backup_name).contents();
    let limits = Limits::default();
    let compressed = store.size(&contents).await.map_err(storage_err)?;
    check_room(tmp.path(), compressed, limits).map_err(|source| RestoreError::Archive {
        backup: spec.backup_name.clone(),
        source,
    })?;
    let reader = store.reader(&contents).await.map_err(storage_err)?;
    let dest = tmp.path().to_path_buf();
    let extracted = tokio::task::spawn_blocking(move || {
        let sync = tokio_util::io::SyncIoBridge::new(
            tokio_util::compat::FuturesAsyncReadCompatExt::compat(reader),
        );
        extract_validated(sync, &dest, limits)
    })
    .await
    .map_err(|e| RestoreError::Io {
        restore: name.clone(),
        source: std::io::Error::other(e),
    })?
    .map_err(|source| RestoreError::Archive {
        backup: spec.backup_name.clone(),
        source,
    })?;
    let files = index_items(tmp.path()).map_err(|source| RestoreError::Io {
        restore: name.clone(),
        source,
    })?;

    // Plan (pure): what each item is, then which are restored, in which phase.
    let start = Time::now();
    let mut index = Vec::with_capacity(files.len());
    for f in &files {
        let text = std::fs::read(&f.path).map_err(|source| RestoreError::Io {
            restore: name.clone(),
            source,
        })?;
        let obj: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        index.push(restore_plan::Item::new(
            &f.gr,
            f.namespace.as_deref(),
            &f.name,
            &obj,
        ));
    }
    // The backed-up pod volumes (none in backups made before they were, or by a tool
    // that wrote none): their claims provision new volumes, which the node agents fill.
    let mut unreadable = Vec::new();
    let stored_volumes = crate::pod_volumes::stored_volumes(
        &catalog::pod_volume_backups(store, &spec.backup_name).await?,
        &mut unreadable,
    );
    // The backup's CSI snapshots: imported by their handles, their claims provisioned
    // from them.
    let snapshots: BTreeMap<(String, String), lifeboat_types::rules::csi::SnapshotRecord> =
        catalog::volume_info(store, &spec.backup_name)
            .await?
            .iter()
            .filter_map(lifeboat_types::rules::csi::SnapshotRecord::from_volume_info)
            .map(|r| ((r.namespace.clone(), r.claim.clone()), r))
            .collect();
    let filter = filter
        .with_claims_with_files(crate::pod_volumes::claims_with_files(&stored_volumes))
        // Their pods are restored only when a node agent will write their data.
        .with_pods_with_files(
            if opts.pod_volumes.as_ref().is_some_and(|s| s.image.is_some()) {
                stored_volumes.keys().cloned().collect()
            } else {
                BTreeSet::new()
            },
        )
        .with_csi_imports(lifeboat_types::plan::restore::CsiImports {
            claims: snapshots.keys().cloned().collect(),
            snapshots: snapshots
                .values()
                .map(|r| (r.namespace.clone(), r.snapshot.clone()))
                .collect(),
            contents: snapshots.values().map(|r| r.content.clone()).collect(),
        });
    let plan = restore_plan::plan(&index, &filter);
    progress.total.store(plan.len() as u64, Ordering::Relaxed);

    let hooks =
        lifeboat_types::plan::restore_hooks::parse(spec.hooks.as_ref()).map_err(|reason| {
            RestoreError::Hooks {
                restore: name.clone(),
                reason,
            }
        })?;
    let exec = Exec {
        cluster,
        sanitize: SanitizeOptions {
            backup_name: spec.backup_name.clone(),
            restore_name: name.clone(),
            namespace_mapping: spec.namespace_mapping.clone(),
            preserve_node_ports: spec.preserve_node_ports == Some(true),
            status_included: spec
                .restore_status
                .as_ref()
                .map(|s| s.included_resources.clone())
                .unwrap_or_default(),
            status_excluded: spec
                .restore_status
                .as_ref()
                .map(|s| s.excluded_resources.clone())
                .unwrap_or_default(),
        },
        policy,
        opts,
        restored: Mutex::new(ResourceList::default()),
        log: RunLog::new("restore", &name),
        progress: progress.clone(),
        hooks,
        pod_hooks: Default::default(),
        stored_volumes,
        snapshots,
        wait_image: opts
            .pod_volumes
            .as_ref()
            .and_then(|s| s.image.clone())
            .filter(|_| !opts.dry_run),
        volume_restores: Default::default(),
    };
    exec.log.info(
        &format!(
            "Restoring backup {} (format {}): {} objects planned, skipped: {:?}",
            spec.backup_name,
            extracted.version,
            plan.len(),
            plan.skipped
        ),
        &[],
    );
    for w in &plan.warnings {
        exec.warn(None, w.clone());
    }
    if !unreadable.is_empty() {
        exec.warn(
            None,
            format!(
                "pod volume backup(s) {} of backup {} do not read as PodVolumeBackups (written by another tool or version); their volumes' files are not restored",
                unreadable.join(", "),
                spec.backup_name
            ),
        );
    }
    let mut uncreatable: BTreeMap<&str, usize> = BTreeMap::new();
    for f in files.iter().filter(|f| not_creatable.contains(&f.gr)) {
        *uncreatable.entry(f.gr.as_str()).or_default() += 1;
    }
    for (gr, n) in uncreatable {
        exec.log.info(
            &format!(
                "{gr}: {n} object(s) not restored: the API server does not allow creating them"
            ),
            &[],
        );
    }
    // A group the cluster could not discover is an error when this restore has objects
    // of it (they may not be restorable, and their results say why); otherwise it does
    // not concern this restore.
    for f in &discovery_failures {
        let objects = plan
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::Phase { items, .. } => items.as_slice(),
                Step::EnsureNamespaces(_) => &[],
            })
            .filter(|p| group_of(&files[p.index].gr) == f.group)
            .count();
        let what = format!("discovery of {} failed ({})", f.path, f.answer());
        if objects > 0 {
            exec.error(
                None,
                format!(
                    "{what}: this restore has {objects} object(s) of {}, which the API server may not serve now; each one's result says whether it was restored — an aggregated API whose service is down answers this way: make it available (`kubectl get apiservices` shows which is not) and restore again",
                    f.group_label()
                ),
            );
        } else {
            exec.warn(
                None,
                format!("{what}: this restore has no objects of {}", f.group_label()),
            );
        }
    }

    let mut items = Vec::new();
    for step in plan.steps {
        let (planned, wait) = match step {
            Step::EnsureNamespaces(needed) => {
                if !opts.dry_run {
                    ensure_namespaces(&exec, &needed).await;
                }
                continue;
            }
            Step::Phase { items, wait, .. } => (items, wait),
        };
        let group: Vec<Planned> = planned
            .into_iter()
            .map(|p| Planned {
                file: files[p.index].clone(),
                target_ns: p.namespace,
                provision_fresh: p.provision_fresh,
            })
            .collect();
        // Unordered, so that one slow create does not hold back the window; reports are put
        // back in plan order afterwards.
        // Boxed futures in a Vec: without the closure in the stream's type, the whole
        // restore future is provably Send (the server spawns it in a reconcile).
        let exec_ref = &exec;
        let futures: Vec<futures::future::BoxFuture<'_, (usize, ItemReport)>> = group
            .iter()
            .enumerate()
            .map(|(i, p)| {
                futures::FutureExt::boxed(async move { (i, exec_ref.restore_one(p).await) })
            })
            .collect();
        let mut indexed: Vec<(usize, ItemReport)> = stream::iter(futures)
            .buffer_unordered(opts.parallelism.max(1))
            .collect()
            .await;
        indexed.sort_by_key(|(i, _)| *i);
        let reports: Vec<ItemReport> = indexed.into_iter().map(|(_, r)| r).collect();
        if !opts.dry_run {
            match wait {
                Some(Wait::CrdsEstablished) => wait_crds(&exec, &reports).await,
                Some(Wait::NamespacesActive) => {
                    let names: BTreeSet<String> = reports
                        .iter()
                        .filter(|r| matches!(r.outcome, Outcome::Created))
                        // A report names the backup's namespace; it was created under
                        // its mapped name.
                        .map(|r| exec.sanitize.map_ns(&r.name))
                        .collect();
                    wait_namespaces_active(&exec, &names).await;
                }
                None => {}
            }
        }
        items.extend(reports);
    }

    // The created pods' volumes, by the node agents; their containers start once done.
    let volume_restores = std::mem::take(
        &mut *exec
            .volume_restores
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    if let Some(settings) = &opts.pod_volumes {
        crate::pod_volumes::restore(
            cluster,
            settings,
            &name,
            store.name(),
            &volume_restores,
            &exec.log,
        )
        .await;
    }
    // Exec hooks of the created pods, once everything is restored (Velero runs them as
    // their containers start; the restore ends when they are done).
    let pod_hooks = std::mem::take(&mut *exec.pod_hooks.lock().unwrap_or_else(|e| e.into_inner()));
    let mut hook_status = None;
    if !pod_hooks.is_empty() {
        let executor = crate::hooks::KubeExec::shared(cluster.client().clone());
        exec.log.info(
            &format!(
                "running the exec hooks of {} restored pod(s) as their containers start",
                pod_hooks.len()
            ),
            &[],
        );
        let run = crate::hooks::run_restore_hooks(&*executor, &pod_hooks, opts.parallelism).await;
        for (ns, e) in run.errors {
            exec.error(Some(&ns), e);
        }
        for (ns, w) in run.warnings {
            exec.warn(Some(&ns), w);
        }
        hook_status = Some(lifeboat_types::api::velero::HookStatus {
            hooks_attempted: run.attempted,
            hooks_failed: run.failed,
        });
    }
    let Exec { restored, log, .. } = exec;
    let results = log.results();
    let restored = restored.into_inner().unwrap_or_default();
    let done = items
        .iter()
        .filter(|i| !matches!(i.outcome, Outcome::Failed { .. }))
        .count() as u64;
    let phase = if results.errors.is_empty() {
        RestorePhase::Completed
    } else {
        RestorePhase::PartiallyFailed
    };
    restore.status = Some(RestoreStatus {
        phase,
        warnings: results.warnings.len() as u64,
        errors: results.errors.len() as u64,
        start_timestamp: Some(start),
        completion_timestamp: Some(Time::now()),
        progress: Some(RestoreProgress {
            total_items: items.len() as u64,
            items_restored: done,
        }),
        hook_status,
        ..Default::default()
    });
    if !opts.dry_run && !record {
        tracing::warn!(restore = %name, location = %store.name(), "the location is ReadOnly: this restore's logs and results are not stored");
    }
    if record {
        let text = log.text();
        let json_gz = |v: &Value| Bytes::from(gzip(&serde_json::to_vec(v).unwrap_or_default()));
        let write = async {
            store
                .write(&paths.logs(), Bytes::from(gzip(text.as_bytes())))
                .await?;
            store
                .write(
                    &paths.results(),
                    json_gz(&serde_json::to_value(&results).unwrap_or_default()),
                )
                .await?;
            store
                .write(
                    &paths.resource_list(),
                    json_gz(&serde_json::to_value(restored.finish()).unwrap_or_default()),
                )
                .await?;
            store
                .write(&paths.item_operations(), json_gz(&Value::Array(vec![])))
                .await?;
            store
                .write(&paths.volume_info(), json_gz(&Value::Array(vec![])))
                .await?;
            store
                .write(
                    &paths.metadata(),
                    Bytes::from(serde_json::to_vec_pretty(&restore).unwrap_or_default()),
                )
                .await
        };
        // Every object is restored by now: a failure to store the report is reported,
        // not turned into a failed restore (which would invite running it again).
        if let Err(e) = write.await {
            tracing::warn!(restore = %name, "the restore's logs and results could not be stored: {}", chain(&e));
        }
    }
    Ok(RestoreReport {
        restore,
        items,
        results,
    })
}

async fn ensure_namespaces(exec: &Exec<'_>, needed: &BTreeSet<String>) {
    let ns_res = target_resource("namespaces", "v1", "Namespace", false);
    let mut ready = BTreeSet::new();
    for ns in needed {
        if let Err(e) = wait_not_terminating(exec, ns).await {
            exec.error(Some(ns), e);
            continue;
        }
        ready.insert(ns.clone());
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            BACKUP_NAME_LABEL: exec.sanitize.backup_name, RESTORE_NAME_LABEL: exec.sanitize.restore_name}}});
        match exec
            .cluster
            .create_raw(&ns_res, None, serde_json::to_vec(&body).unwrap_or_default())
            .await
        {
            Ok(_) => {}
            Err(e) => exec.error(
                Some(ns),
                format!("cannot create namespace {ns}: {}", chain(&e)),
            ),
        }
    }
    wait_namespaces_active(exec, &ready).await;
}

/// How long a restore waits for a terminating target namespace to go (Velero's
/// `--terminating-resource-timeout` default).
const NAMESPACE_TERMINATING_TIMEOUT: Duration = Duration::from_secs(600);

/// Waits while namespace `name` exists and is terminating (the usual case of a restore
/// started right after `kubectl delete namespace`), so that it is created afresh instead of
/// every object in it being refused.
async fn wait_not_terminating(exec: &Exec<'_>, name: &str) -> Result<(), String> {
    let ns_res = target_resource("namespaces", "v1", "Namespace", false);
    let deadline = tokio::time::Instant::now() + NAMESPACE_TERMINATING_TIMEOUT;
    let mut logged = false;
    loop {
        let live = exec
            .cluster
            .get_raw(&ns_res, None, name)
            .await
            .map_err(|e| chain(&e))?;
        let terminating = live.is_some_and(|text| {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            v.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
        });
        if !terminating {
            return Ok(());
        }
        if !logged {
            exec.log.info(
                &format!("namespace {name} is terminating; waiting for it to be deleted"),
                &[],
            );
            logged = true;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "namespace {name} is still terminating after {}; wait until it is gone or restore into another namespace (--namespace-mappings)",
                lifeboat_types::GoDuration(NAMESPACE_TERMINATING_TIMEOUT)
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_namespaces_active(exec: &Exec<'_>, names: &BTreeSet<String>) {
    let ns_res = target_resource("namespaces", "v1", "Namespace", false);
    for ns in names {
        let mut ok = false;
        for _ in 0..100 {
            if let Ok(Some(text)) = exec.cluster.get_raw(&ns_res, None, ns).await {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match v.pointer("/status/phase").and_then(Value::as_str) {
                    Some("Active") => {
                        ok = true;
                        break;
                    }
                    Some("Terminating") => {}
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !ok {
            exec.error(
                Some(ns),
                format!(
                    "namespace {ns} did not become Active within 20s (is it still terminating?)"
                ),
            );
        }
    }
}

async fn wait_crds(exec: &Exec<'_>, reports: &[ItemReport]) {
    let r = target_resource(
        "customresourcedefinitions.apiextensions.k8s.io",
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        false,
    );
    for rep in reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Created | Outcome::Updated))
    {
        let mut established = false;
        for _ in 0..300 {
            if let Ok(Some(text)) = exec.cluster.get_raw(&r, None, &rep.name).await {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                established = v
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    });
                if established {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !established {
            exec.error(
                None,
                format!("CRD {} was not Established within 1 minute", rep.name),
            );
        }
    }
    // Give discovery a moment to serve the new groups.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_server_defaults() {
        let want =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}}});
        let live = json!({"spec": {"replicas": 2, "revisionHistoryLimit": 10,
            "template": {"spec": {"containers": [{"name": "c", "imagePullPolicy": "IfNotPresent"}]}}}});
        assert!(is_subset(&want, &live));
        let changed = json!({"spec": {"replicas": 3}});
        assert!(!is_subset(&changed, &live));
    }

    #[test]
    fn diff_shows_the_change() {
        let d = yaml_diff(
            &json!({"data": {"a": "1"}}),
            &json!({"data": {"a": "2"}}),
            "configmaps/x",
        );
        assert!(d.contains("-  a: '1'") && d.contains("+  a: '2'"), "{d}");
        assert!(d.contains("live/configmaps/x"));
    }

    fn options() -> SanitizeOptions {
        SanitizeOptions {
            backup_name: "b".into(),
            restore_name: "r".into(),
            namespace_mapping: Default::default(),
            preserve_node_ports: false,
            status_included: vec![],
            status_excluded: vec![],
        }
    }

    /// Issue 11, item 6: outside a dry run, an existing object is compared for equality
    /// only — a differing one is reported without a diff (none rendered, none kept), so a
    /// re-restore over a full cluster holds no text per object; a dry run keeps its diff
    /// (a Secret's without values). Before the fix, every differing object carried its
    /// YAML diff in a real restore too.
    #[rstest::rstest]
    #[case::restore_policy_none(false, ExistingPolicy::None, "skip-differs", None)]
    #[case::restore_policy_update(false, ExistingPolicy::Update, "skip-differs", None)]
    #[case::dry_run_policy_none(true, ExistingPolicy::None, "skip-differs", Some("+  v: original"))]
    #[case::dry_run_policy_update(
        true,
        ExistingPolicy::Update,
        "would-update",
        Some("+  v: original")
    )]
    fn a_diff_is_rendered_only_in_a_dry_run(
        #[case] dry_run: bool,
        #[case] policy: ExistingPolicy,
        #[case] action: &str,
        #[case] diff_shows: Option<&str>,
    ) {
        let wanted = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "a"}, "data": {"v": "original"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "namespace": "a", "uid": "u", "resourceVersion": "7"}, "data": {"v": "changed"}})
        .to_string();
        let outcome = compare("configmaps", &wanted, &live, &options(), policy, dry_run).unwrap();
        let shown = serde_json::to_value(&outcome).unwrap();
        assert_eq!(shown["action"], action, "{shown}");
        match diff_shows {
            None => {
                assert_eq!(outcome, Outcome::SkipDiffers { diff: None });
                assert!(shown.get("diff").is_none(), "{shown}");
            }
            Some(line) => {
                let diff = shown["diff"].as_str().unwrap_or_default();
                assert!(
                    diff.contains("-  v: changed") && diff.contains(line),
                    "{diff}"
                );
            }
        }
        // The same object unchanged is identical either way.
        let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "namespace": "a", "uid": "u"}, "data": {"v": "original"}})
        .to_string();
        assert_eq!(
            compare("configmaps", &wanted, &same, &options(), policy, dry_run),
            Ok(Outcome::SkipIdentical)
        );
    }

    /// A dry run's diff of a Secret names the changed key, never a value.
    #[test]
    fn a_dry_run_diff_of_a_secret_shows_no_value() {
        let wanted = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "a"}, "data": {"k": "YmFja3Vw"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "a"}, "data": {"k": "bGl2ZQ=="}})
        .to_string();
        let Ok(Outcome::SkipDiffers { diff: Some(diff) }) = compare(
            "secrets",
            &wanted,
            &live,
            &options(),
            ExistingPolicy::None,
            true,
        ) else {
            panic!("no diff");
        };
        assert!(diff.contains("k: (redacted backup value)"), "{diff}");
        assert!(
            !diff.contains("YmFja3Vw") && !diff.contains("bGl2ZQ=="),
            "{diff}"
        );
    }

    #[test]
    fn index_prefers_the_preferred_version_directory() {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &str| {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "{}").unwrap();
        };
        write("resources/configmaps/namespaces/a/c.json");
        write("resources/configmaps/v1-preferredversion/namespaces/a/c.json");
        write("resources/namespaces/cluster/a.json");
        let items = index_items(dir.path()).unwrap();
        assert_eq!(items.len(), 2);
        assert!(
            items[0]
                .path
                .to_string_lossy()
                .contains("v1-preferredversion")
        );
        assert_eq!(items[1].gr, "namespaces");
    }

    #[test]
    fn policies_and_mappings_are_checked() {
        assert_eq!(
            ExistingPolicy::parse(Some("update")),
            Ok(ExistingPolicy::Update)
        );
        assert_eq!(
            ExistingPolicy::parse(Some("replace")),
            Err("invalid existing resource policy \"replace\": use none or update".into())
        );
        assert!(valid_namespace("prod-restored").is_ok());
        let err = valid_namespace("Prod_Restored").unwrap_err();
        assert!(
            err.starts_with("a namespace is at most 63 lower-case letters"),
            "{err}"
        );
    }
}
