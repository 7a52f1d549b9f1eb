//! The streaming resource backup.
//!
//! Data flow: paginated LISTs (several resource types at once) → pages of raw items →
//! one writer thread (tar + gzip) → chunks → one uploader task (multipart upload). Each
//! stage hands the next a bounded channel, so memory stays flat whatever the cluster size.
//!
//! Invariants:
//! - `velero-backup.json` is written last, after the tarball and every other file are
//!   stored; a crash before that leaves nothing that lists as a backup.
//! - An item that cannot be read is recorded in the results and the backup ends
//!   PartiallyFailed; nothing is dropped silently.
//! - Nothing is written before the spec, the location and the permissions are checked.
//! - Every file is created conditionally ([`Store::create`], [`Store::upload`]): a file
//!   another writer stored first under the same name is never overwritten, and the run
//!   fails naming it. A failed run deletes exactly the files it wrote ([`Written`]), never
//!   the whole `backups/<name>/` directory, which may hold another writer's files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use lifeboat_types::api::names::{NameError, validate_name};
use lifeboat_types::api::velero::{
    Backup, BackupPhase, BackupProgress, BackupStatus, STORAGE_LOCATION_LABEL, Time,
};
use lifeboat_types::format::layout::FORMAT_VERSION;
use lifeboat_types::format::resource_list::ResourceList;
use lifeboat_types::plan::backup::{
    ApiResource, BackupPlan, ListScope, PlanError, PlannedResource, plan_backup,
};
use lifeboat_types::rules::backups::{TtlOverflow, expiration};
use lifeboat_types::rules::list_resume::{ListPager, ListResume, list_key};
use lifeboat_types::rules::namespaced_list::{
    NAMESPACE_CONCURRENCY, NamespacedList, after_first_page, complete_in_first_page, worth_asking,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::archive::{ArchiveWriter, ChunkSink, gzip};
use crate::cluster::{ApiErrorKind, Cluster, ClusterError, check_list_permissions, split_list};
use crate::error::chain;
use crate::pod_volumes::{PodVolumeSettings, PodVolumes};
use crate::runlog::RunLog;
use crate::storage::{StorageError, Store};

/// Items per LIST page.
pub const PAGE_SIZE: u32 = 500;
/// gzip level of tarballs: level 1 keeps compression off the critical path of a backup
/// (100k ConfigMaps: 1.24x the raw LIST at level 1, 1.44x at level 6) for an archive that
/// can be much larger (302 vs 191 MiB on random text; see docs/benchmarks.md). Users who
/// pay for storage more than for time pass --compression-level 6.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// Resource types listed at the same time.
pub const LIST_CONCURRENCY: usize = 4;
/// LIST pages a backup holds at most at once, asked for or being converted, over all the
/// types and namespaces it lists at the same time (a page is at most `--page-size`
/// objects). A page asked for ahead is given up when none is free. With the writer's
/// channel (a few converted batches), this bounds the backup's memory.
pub const PAGES_IN_FLIGHT: usize = 16;

/// Why a backup could not be made. Nothing is left in the location in these cases.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The backup's name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The spec cannot be planned against this cluster.
    #[error("backup {backup:?}")]
    Plan {
        /// The backup.
        backup: String,
        /// Why.
        #[source]
        source: PlanError,
    },
    /// The cluster could not be read.
    #[error("backup {backup:?}")]
    Cluster {
        /// The backup.
        backup: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// The location could not be written.
    #[error("backup {backup:?}")]
    Storage {
        /// The backup.
        backup: String,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// A backup with this name is already stored, or another writer stored one of its
    /// files while this run was writing (nothing of it was overwritten).
    #[error(
        "backup {backup:?} already exists in storage location {location:?}{}; choose another name or delete it first",
        object.as_ref().map(|o| format!(" ({o:?} was stored by another writer first; nothing of it was overwritten, and this run's files were removed)")).unwrap_or_default()
    )]
    AlreadyExists {
        /// The backup.
        backup: String,
        /// The location.
        location: String,
        /// The object another writer stored first, when the collision happened while
        /// writing (`None`: found by the checks before the first write).
        object: Option<String>,
    },
    /// The TTL cannot be added to the start time.
    #[error("backup {backup:?}")]
    Ttl {
        /// The backup.
        backup: String,
        /// Why.
        #[source]
        source: TtlOverflow,
    },
    /// The run was told to stop (the server is shutting down) before it ended: it stopped
    /// after the item it was writing, and the files it had stored were removed.
    #[error(
        "backup {backup:?} was interrupted before it ended; the files it had written were removed; create the backup again"
    )]
    Interrupted {
        /// The backup.
        backup: String,
    },
    /// The tarball could not be produced.
    #[error("backup {backup:?}: writing the tarball failed")]
    Archive {
        /// The backup.
        backup: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl BackupError {
    /// Whether trying again later can help: the cluster or the location failed for a
    /// moment. A bad name or spec, a taken name, or a TTL that overflows stays one.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackupError::Cluster { source, .. } => source.is_retryable(),
            BackupError::Storage { source, .. } => source.is_retryable(),
            BackupError::Name(_)
            | BackupError::Plan { .. }
            | BackupError::AlreadyExists { .. }
            | BackupError::Ttl { .. }
            | BackupError::Interrupted { .. }
            | BackupError::Archive { .. } => false,
        }
    }
}

/// Live counters of a running backup, for progress bars.
#[derive(Debug, Default)]
pub struct Progress {
    /// Items found so far.
    pub total: AtomicU64,
    /// Items written so far.
    pub done: AtomicU64,
    /// Resource types listed completely.
    pub types_done: AtomicU64,
    /// Resource types planned.
    pub types_total: AtomicU64,
}

/// Options of one backup run.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// gzip level of the tarball (Velero reads any level).
    pub gzip_level: u32,
    /// LIST page size.
    pub page_size: u32,
    /// Resource types listed concurrently.
    pub concurrency: usize,
    /// Cancelled to stop the run at the next item: it lists nothing more, runs the post
    /// hooks, aborts the upload, removes what it wrote and ends with
    /// [`BackupError::Interrupted`].
    pub stop: CancellationToken,
    /// Where the node agents take pod volume work; `None`: no volume data is copied
    /// (the chosen volumes are named in a warning).
    pub pod_volumes: Option<PodVolumeSettings>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            pod_volumes: None,
            gzip_level: DEFAULT_GZIP_LEVEL,
            page_size: PAGE_SIZE,
            concurrency: LIST_CONCURRENCY,
            stop: CancellationToken::new(),
        }
    }
}

/// The pods the backup includes (namespace and label filters of the plan), as the hook
/// planner needs them; listed in pages where the backup lists pods (`scope`: per
/// namespace, or cluster-wide), so that the hooks need no other permission than the
/// backup's LISTs — through the cluster's retry loop, and resumed as every LIST is when
/// its continue token expires (`types::rules::list_resume`).
async fn hook_pods(
    cluster: &Cluster,
    plan: &BackupPlan,
    scope: &ListScope,
) -> Result<PodsSeen, ClusterError> {
    let (scopes, keep): (Vec<Option<&str>>, _) = match scope {
        ListScope::Namespaces(list) => (list.iter().map(|n| Some(n.as_str())).collect(), None),
        ListScope::AllNamespacesKeeping(keep) => (vec![None], Some(keep)),
        ListScope::Cluster | ListScope::AllNamespaces => (vec![None], None),
    };
    let mut out = PodsSeen::default();
    for ns in scopes {
        hook_pods_of(cluster, ns, plan, keep, &mut out).await?;
    }
    Ok(out)
}

/// The backup's pods as the hooks and the volume choice need them.
#[derive(Default)]
struct PodsSeen {
    hooks: Vec<lifeboat_types::plan::backup_hooks::PodInfo>,
    /// Pods that have volumes other than cluster state.
    volumes: Vec<PodVolumes>,
}

/// The pods of one LIST (in `namespace`, or everywhere) for [`hook_pods`], added to `out`.
async fn hook_pods_of(
    cluster: &Cluster,
    namespace: Option<&str>,
    plan: &BackupPlan,
    keep: Option<&BTreeSet<String>>,
    out: &mut PodsSeen,
) -> Result<(), ClusterError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Meta {
        name: String,
        namespace: String,
        uid: String,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct Container {
        name: String,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Spec {
        containers: Vec<Container>,
        node_name: String,
        volumes: Vec<serde_json::Value>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Status {
        phase: String,
    }
    #[derive(serde::Deserialize)]
    struct Pod {
        #[serde(default)]
        metadata: Meta,
        #[serde(default)]
        spec: Spec,
        #[serde(default)]
        status: Status,
    }
    let pods = ApiResource {
        group: String::new(),
        version: "v1".into(),
        plural: "pods".into(),
        singular: "pod".into(),
        kind: "Pod".into(),
        namespaced: true,
        short_names: vec![],
        verbs: vec![],
    };
    let decode = |source| ClusterError::Decode {
        what: "pods (for their hooks)".into(),
        source,
    };
    let mut pager = ListPager::new();
    loop {
        let page = match cluster
            .list_page(
                &pods,
                namespace,
                plan.server_selector.as_deref(),
                pager.token(),
                500,
            )
            .await
        {
            Ok(p) => p,
            Err(e) => match pager.failed(e.list_failure().as_ref()) {
                ListResume::Continue(_) | ListResume::Restart => continue,
                ListResume::Fail | ListResume::GiveUp(_) => return Err(e),
            },
        };
        let (items, next) = split_list(&page).map_err(decode)?;
        for raw in items {
            let p: Pod = serde_json::from_str(raw.get()).map_err(decode)?;
            let m = p.metadata;
            if !pager.admit(&list_key(Some(&m.namespace), &m.name))
                || !plan.namespaces.includes(&m.namespace)
                || keep.is_some_and(|k| !k.contains(&m.namespace))
                || !plan.selects(&m.labels)
            {
                continue;
            }
            let volumes: Vec<serde_json::Value> = p
                .spec
                .volumes
                .into_iter()
                .filter(|v| {
                    lifeboat_types::rules::fs_backup::source(v)
                        != lifeboat_types::rules::fs_backup::Source::ClusterState
                })
                .collect();
            if !volumes.is_empty() {
                out.volumes.push(PodVolumes {
                    namespace: m.namespace.clone(),
                    name: m.name.clone(),
                    uid: m.uid,
                    node: p.spec.node_name,
                    phase: p.status.phase,
                    shape: serde_json::json!({
                        "metadata": { "annotations": &m.annotations },
                        "spec": { "volumes": volumes },
                    }),
                });
            }
            out.hooks.push(lifeboat_types::plan::backup_hooks::PodInfo {
                namespace: m.namespace,
                name: m.name,
                labels: m.labels,
                annotations: m.annotations,
                containers: p.spec.containers.into_iter().map(|c| c.name).collect(),
            });
        }
        if !pager.advance(next) {
            break;
        }
    }
    Ok(())
}

/// One item on its way to the tarball.
struct Item {
    namespace: Option<String>,
    name: String,
    json: Vec<u8>,
}

/// What goes from the listers to the writer thread.
struct Batch {
    resource: Arc<ApiResource>,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct ItemHead<'a> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    metadata: MetaHead<'a>,
    #[serde(default)]
    spec: Option<SpecHead>,
}

#[derive(Deserialize)]
struct MetaHead<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct SpecHead {
    #[serde(rename = "volumeName", default)]
    volume_name: Option<String>,
}

/// The JSON stored for an item: the object as the server sent it, with `apiVersion` and
/// `kind` filled in (list responses leave them out of each item).
pub fn item_json(raw: &str, api_version: &str, kind: &str, has_type: bool) -> Vec<u8> {
    if has_type {
        return raw.as_bytes().to_vec();
    }
    let body = raw
        .trim_start()
        .strip_prefix('{')
        .unwrap_or(raw)
        .trim_start();
    let mut out = Vec::with_capacity(raw.len() + api_version.len() + kind.len() + 32);
    out.extend_from_slice(b"{\"apiVersion\":");
    out.extend_from_slice(
        serde_json::to_string(api_version)
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b",\"kind\":");
    out.extend_from_slice(serde_json::to_string(kind).unwrap_or_default().as_bytes());
    if !body.starts_with('}') {
        out.push(b',');
    }
    out.extend_from_slice(body.as_bytes());
    out
}

/// The namespace and name of a LIST item, read from its raw JSON up to
/// `metadata.namespace` and `metadata.name` and no further (the API server writes
/// `metadata` first, `name` before `namespace`): a cluster-wide LIST drops the items of
/// namespaces not selected without parsing them. `None` when the item cannot be read this
/// way (no `metadata` object, no `name`, a key or value with escapes, a `null`): the
/// caller then parses it as any other item. `raw` is a JSON value already checked as such
/// (an item of [`split_list`]); anything else gives `None` or a wrong answer, never a
/// panic.
pub fn raw_key(raw: &str) -> Option<(Option<&str>, &str)> {
    let mut s = RawScan { raw, i: 0 };
    s.eat(b'{')?;
    if s.peek()? == b'}' {
        return None;
    }
    loop {
        let key = s.plain_string()?;
        s.eat(b':')?;
        if key == "metadata" {
            s.eat(b'{')?;
            if s.peek()? == b'}' {
                return None;
            }
            let (mut name, mut namespace) = (None, None);
            loop {
                let key = s.plain_string()?;
                s.eat(b':')?;
                match key {
                    "name" => name = Some(s.plain_string()?),
                    "namespace" => namespace = Some(s.plain_string()?),
                    _ => s.skip_value()?,
                }
                if let (Some(name), Some(_)) = (name, namespace) {
                    return Some((namespace, name));
                }
                match s.next()? {
                    b',' => {}
                    b'}' => return name.map(|n| (namespace, n)),
                    _ => return None,
                }
            }
        }
        s.skip_value()?;
        if s.next()? != b',' {
            return None;
        }
    }
}

/// A cursor over a JSON text for [`raw_key`].
struct RawScan<'a> {
    raw: &'a str,
    i: usize,
}

impl<'a> RawScan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.raw.as_bytes()
    }

    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.i) {
            self.i += 1;
        }
        self.bytes().get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// A string without escapes, as it is in the text.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.bytes().get(self.i)? {
                b'"' => break,
                b'\\' => return None,
                _ => self.i += 1,
            }
        }
        let s = self.raw.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    /// Past the string that starts here (escapes included).
    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            match self.bytes().get(self.i)? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                _ => self.i += 1,
            }
        }
    }

    /// Past the value that starts here.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.bytes().get(self.i)? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while let Some(c) = self.bytes().get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

/// How the LIST of one scope ended.
enum Listed {
    /// Listed to the end (failures recorded).
    Done,
    /// The writer is gone or the run was stopped.
    Stopped,
    /// A cluster-wide LIST whose first page said the type has `total` objects in the
    /// cluster, too many for one LIST: only the first page's items of the namespaces it
    /// holds all of (`complete`) were kept; list the others per namespace.
    PerNamespace {
        total: u64,
        complete: BTreeSet<String>,
    },
}

/// The `metadata.remainingItemCount` of a LIST page: how many objects come after it (the
/// API server leaves it out when it cannot tell, as with a label selector).
fn remaining_item_count(body: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Page {
        metadata: Option<PageMeta>,
    }
    #[derive(Deserialize)]
    struct PageMeta {
        #[serde(rename = "remainingItemCount")]
        remaining: Option<u64>,
    }
    serde_json::from_str::<Page>(body).ok()?.metadata?.remaining
}

/// Shared state of the listers.
struct Run<'a> {
    cluster: &'a Cluster,
    plan: &'a BackupPlan,
    opts: &'a BackupOptions,
    log: &'a RunLog,
    progress: Arc<Progress>,
    tx: mpsc::Sender<Batch>,
    /// PVs bound to backed-up claims.
    bound_pvs: Mutex<BTreeSet<String>>,
    /// The backed-up claims bound to volumes (for CSI snapshots).
    bound_claims: Mutex<Vec<crate::csi::Claim>>,
    /// Custom resource types (group-resource) that had items.
    seen_types: Mutex<BTreeSet<String>>,
    /// Types (group-resource) listed per namespace because RBAC refused a cluster-wide
    /// LIST (the preflight's).
    refused_cluster_wide: BTreeSet<String>,
    /// The cluster's namespace count.
    in_cluster: usize,
    /// The LIST pages held ([`PAGES_IN_FLIGHT`]).
    pages: tokio::sync::Semaphore,
}

impl Run<'_> {
    fn error(&self, ns: Option<&str>, msg: String) {
        self.log.error(ns, msg);
    }

    fn warn(&self, ns: Option<&str>, msg: String) {
        self.log.warn(ns, msg);
    }

    /// Turns raw items into tarball items, applying the namespace and label filters. A
    /// LIST's items pass its `pager` first (before any filter: it follows the server's
    /// position), which drops those a restarted LIST sends again; also returns how many
    /// items the pager took as new. With `keep` (a cluster-wide LIST of a backup that
    /// selects namespaces), an item of another namespace is dropped after reading only its
    /// namespace and name ([`raw_key`]), never parsed further.
    fn convert(
        &self,
        pr: &PlannedResource,
        raws: &[&serde_json::value::RawValue],
        skip: &BTreeSet<String>,
        mut pager: Option<&mut ListPager>,
        keep: Option<&BTreeSet<String>>,
    ) -> (Vec<Item>, usize) {
        let r = &pr.resource;
        let api_version = r.api_version();
        let is_pvc = r.group.is_empty() && r.plural == "persistentvolumeclaims";
        let kept = |ns: Option<&str>| keep.is_none_or(|k| ns.is_some_and(|n| k.contains(n)));
        let mut out = Vec::with_capacity(raws.len());
        let mut new = 0;
        for raw in raws {
            // The pager has seen this item already (by its key, read without parsing).
            let mut admitted = false;
            if keep.is_some()
                && let Some((ns, name)) = raw_key(raw.get())
            {
                let ns = ns.filter(|n| !n.is_empty());
                if let Some(p) = pager.as_deref_mut() {
                    if !p.admit(&list_key(ns, name)) {
                        continue;
                    }
                    new += 1;
                }
                admitted = true;
                if !kept(ns) {
                    continue;
                }
            }
            let head: ItemHead<'_> = match serde_json::from_str(raw.get()) {
                Ok(h) => h,
                Err(e) => {
                    self.error(
                        None,
                        format!("{}: an item could not be read: {e}", r.group_resource()),
                    );
                    continue;
                }
            };
            let ns = head.metadata.namespace.as_deref().filter(|n| !n.is_empty());
            let key = list_key(ns, &head.metadata.name);
            if !admitted && let Some(p) = pager.as_deref_mut() {
                if !p.admit(&key) {
                    continue;
                }
                new += 1;
            }
            if !kept(ns) {
                continue;
            }
            if r.namespaced {
                match ns {
                    Some(n) if self.plan.namespaces.includes(n) => {}
                    _ => continue,
                }
            } else if pr.filter_names_as_namespaces
                && !self.plan.namespaces.includes(&head.metadata.name)
            {
                continue;
            }
            let is_namespace = r.group.is_empty() && r.plural == "namespaces";
            let empty = BTreeMap::new();
            if !is_namespace
                && !self
                    .plan
                    .selects(head.metadata.labels.as_ref().unwrap_or(&empty))
            {
                continue;
            }
            if skip.contains(&key) {
                continue;
            }
            if is_pvc
                && let Some(v) = head
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.clone())
                    .filter(|v| !v.is_empty())
                && let Ok(mut pvs) = self.bound_pvs.lock()
            {
                if let Ok(mut claims) = self.bound_claims.lock() {
                    claims.push(crate::csi::Claim {
                        namespace: ns.unwrap_or_default().to_owned(),
                        name: head.metadata.name.to_string(),
                        volume: v.clone(),
                    });
                }
                pvs.insert(v);
            }
            let has_type = head.api_version.is_some() && head.kind.is_some();
            out.push(Item {
                namespace: ns.map(str::to_owned),
                name: head.metadata.name.into_owned(),
                json: item_json(raw.get(), &api_version, &r.kind, has_type),
            });
        }
        (out, new)
    }

    /// The raw object of a GET's answer, or an error naming the object (`what`) when the
    /// answer is not one: the item is recorded as failed, never dropped silently.
    fn parse_get<'t>(&self, ns: Option<&str>, what: &str, text: &'t str) -> Option<&'t RawValue> {
        let parsed = serde_json::from_str::<&RawValue>(text)
            .and_then(|raw| serde_json::from_str::<ItemHead<'_>>(raw.get()).map(|_| raw));
        match parsed {
            Ok(raw) => Some(raw),
            Err(e) => {
                self.error(
                    ns,
                    format!(
                        "{what}: the API server's answer to its GET is not the object ({e}); it was not backed up from this GET — run the backup again, and if this repeats check what answers at {}",
                        self.cluster.server()
                    ),
                );
                None
            }
        }
    }

    async fn send(&self, resource: &Arc<ApiResource>, items: Vec<Item>) -> bool {
        if self.opts.stop.is_cancelled() {
            return false;
        }
        if items.is_empty() {
            return true;
        }
        if let Ok(mut s) = self.seen_types.lock() {
            s.insert(resource.group_resource());
        }
        self.progress
            .total
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        self.tx
            .send(Batch {
                resource: resource.clone(),
                items,
            })
            .await
            .is_ok()
    }

    /// Lists one resource type completely (all its namespaces), streaming pages out.
    async fn list_resource(&self, pr: &PlannedResource) {
        let r = Arc::new(pr.resource.clone());
        let gr = r.group_resource();
        let how = match &pr.scope {
            ListScope::Cluster => "cluster-scoped".to_owned(),
            ListScope::AllNamespaces => "all namespaces".to_owned(),
            ListScope::Namespaces(ns) if self.refused_cluster_wide.contains(&gr) => format!(
                "per namespace ({}; a cluster-wide LIST is not allowed)",
                ns.len()
            ),
            ListScope::Namespaces(ns) => format!("per namespace ({})", ns.len()),
            ListScope::AllNamespacesKeeping(ns) => {
                format!("all namespaces, keeping {} selected", ns.len())
            }
        };
        self.log
            .info("Listing items", &[("resource", &gr), ("listed", &how)]);
        // Objects named in orderedResources go first, in their order.
        let mut skip = BTreeSet::new();
        if !pr.ordered.is_empty() {
            let mut first = Vec::new();
            for key in &pr.ordered {
                let (ns, name) = match key.split_once('/') {
                    Some((n, m)) => (Some(n), m),
                    None => (None, key.as_str()),
                };
                match self.cluster.get_raw(&r, ns, name).await {
                    Ok(Some(text)) => {
                        let Some(raw) =
                            self.parse_get(ns, &format!("orderedResources: {gr} {key}"), &text)
                        else {
                            continue;
                        };
                        let (items, _) = self.convert(pr, &[raw], &BTreeSet::new(), None, None);
                        if !items.is_empty() {
                            skip.insert(key.clone());
                        }
                        first.extend(items);
                    }
                    Ok(None) => self.warn(ns, format!("orderedResources: {gr} {key} not found")),
                    Err(e) => {
                        self.error(ns, format!("orderedResources: {gr} {key}: {}", chain(&e)))
                    }
                }
            }
            if !self.send(&r, first).await {
                return;
            }
        }
        let keep = match &pr.scope {
            ListScope::AllNamespacesKeeping(ns) => Some(ns),
            _ => None,
        };
        let mut count = 0usize;
        let per_namespace: Vec<&str> = match &pr.scope {
            ListScope::Namespaces(ns) => ns.iter().map(String::as_str).collect(),
            ListScope::Cluster | ListScope::AllNamespaces | ListScope::AllNamespacesKeeping(_) => {
                match self.list_scope(pr, &r, None, keep, &skip, &mut count).await {
                    Listed::Done => Vec::new(),
                    Listed::Stopped => return,
                    Listed::PerNamespace { total, complete } => {
                        let rest: Vec<&str> = keep
                            .into_iter()
                            .flatten()
                            .filter(|n| !complete.contains(*n))
                            .map(String::as_str)
                            .collect();
                        self.log.info(
                            "Listing items per namespace instead",
                            &[
                                ("resource", &gr),
                                ("inCluster", &total.to_string()),
                                ("fromFirstPage", &complete.len().to_string()),
                                ("namespaces", &rest.len().to_string()),
                            ],
                        );
                        rest
                    }
                }
            }
        };
        // The namespaces' LISTs run a few at a time: the API server answers them on every
        // core (`types::rules::namespaced_list::NAMESPACE_CONCURRENCY`).
        let mut namespaces = per_namespace.into_iter();
        let mut running = futures::stream::FuturesUnordered::new();
        loop {
            while running.len() < NAMESPACE_CONCURRENCY {
                let Some(ns) = namespaces.next() else { break };
                running.push(self.list_namespace(pr, &r, ns, &skip));
            }
            let Some((listed, n)) = running.next().await else {
                break;
            };
            count += n;
            if let Listed::Stopped = listed {
                return;
            }
        }
        self.progress.types_done.fetch_add(1, Ordering::Relaxed);
        self.log.info(
            "Listed items",
            &[("resource", &gr), ("count", &count.to_string())],
        );
    }

    /// Lists one namespace of a resource type: how it ended, and how many items it kept.
    async fn list_namespace(
        &self,
        pr: &PlannedResource,
        r: &Arc<ApiResource>,
        ns: &str,
        skip: &BTreeSet<String>,
    ) -> (Listed, usize) {
        let mut n = 0usize;
        let listed = self.list_scope(pr, r, Some(ns), None, skip, &mut n).await;
        (listed, n)
    }

    /// Lists one scope of a resource type (a namespace, or everywhere) page by page,
    /// sending the items out; [`Listed::Stopped`] when the writer is gone or the run was
    /// stopped. A failed page is recorded as an error — except an expired continue token,
    /// which goes on as `types::rules::list_resume` decides: with the Status's fresh
    /// token, else from the start skipping what was taken ([`ListPager`]: constant
    /// memory), else an error naming the resource. With `keep` (a cluster-wide LIST of a
    /// backup that selects namespaces), only the items of those namespaces are kept, and
    /// when the first page says the type is too large for one LIST
    /// (`types::rules::namespaced_list::after_first_page`) nothing of it is kept and the
    /// answer is [`Listed::PerNamespace`].
    async fn list_scope(
        &self,
        pr: &PlannedResource,
        r: &Arc<ApiResource>,
        ns: Option<&str>,
        keep: Option<&BTreeSet<String>>,
        skip: &BTreeSet<String>,
        count: &mut usize,
    ) -> Listed {
        let mut first_page = true;
        let gr = r.group_resource();
        let scope = ns.map(|n| format!(" in namespace {n}")).unwrap_or_default();
        let mut pager = ListPager::new();
        // Items of this scope taken so far (before the filters).
        let mut read = 0usize;
        let expired = |read: usize| {
            format!(
                "listing {gr}{scope}: the continue token expired (410 Gone: the API server's storage compacted the list's resourceVersion) after {read} item(s)"
            )
        };
        // The next page, asked for while this one is converted and handed to the writer
        // when a page of the run's budget is free: the API server prepares it meanwhile.
        let mut prefetched = None;
        loop {
            // A page in flight is given up when the run is stopped: nothing of it was
            // written yet. Each page holds a permit of `pages` until it was handed on.
            let (listed, _page) = match prefetched.take() {
                Some(listed) => listed,
                None => tokio::select! {
                    biased;
                    _ = self.opts.stop.cancelled() => return Listed::Stopped,
                    listed = async {
                        // Never closed: the error cannot happen.
                        let page = self.pages.acquire().await.ok();
                        let listed = self.cluster.list_page(
                            r,
                            ns,
                            self.plan.server_selector.as_deref(),
                            pager.token(),
                            self.opts.page_size,
                        ).await;
                        (listed, page)
                    } => listed,
                },
            };
            let body = match listed {
                Ok(b) => b,
                Err(e) if e.is_unserved() => {
                    // Discovered, then no longer served: its CRD (and with it every
                    // object of it) was deleted while the backup ran.
                    self.warn(
                        ns,
                        format!(
                            "listing {gr}: the API server no longer serves it (its definition was removed while the backup ran); what was read of it is stored"
                        ),
                    );
                    return Listed::Done;
                }
                Err(e) => {
                    match pager.failed(e.list_failure().as_ref()) {
                        ListResume::Fail => {
                            self.error(ns, format!("listing {gr} failed: {}", chain(&e)));
                            return Listed::Done;
                        }
                        ListResume::Continue(_) => {
                            self.warn(
                                ns,
                                format!(
                                    "{}; the rest of the list is read with the server's fresh token, from a newer resourceVersion than its beginning",
                                    expired(read)
                                ),
                            );
                        }
                        ListResume::Restart => {
                            self.warn(
                                ns,
                                format!(
                                    "{} and the server offered none to go on with; the LIST was started again and the items already read were skipped, so the rest of the list is from a newer resourceVersion than its beginning",
                                    expired(read)
                                ),
                            );
                        }
                        ListResume::GiveUp(why) => {
                            self.error(
                                ns,
                                format!("listing {gr}{scope} stopped after {read} item(s): {why}"),
                            );
                            return Listed::Done;
                        }
                    }
                    continue;
                }
            };
            let (raws, next) = match split_list(&body) {
                Ok(x) => x,
                Err(e) => {
                    self.error(ns, format!("listing {gr}: unreadable answer: {e}"));
                    return Listed::Done;
                }
            };
            if first_page
                && let Some(keep) = keep
                && next.is_some()
                && let Some(remaining) = remaining_item_count(&body)
            {
                let total = remaining.saturating_add(raws.len() as u64);
                if after_first_page(total, keep.len(), self.in_cluster)
                    == NamespacedList::PerNamespace
                {
                    // The selected namespaces this page holds all of are kept from it;
                    // the others are listed one by one.
                    let namespaces: Option<Vec<&str>> = raws
                        .iter()
                        .map(|raw| raw_key(raw.get()).and_then(|(ns, _)| ns))
                        .collect();
                    let complete: BTreeSet<String> = namespaces
                        .as_deref()
                        .map(complete_in_first_page)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|n| keep.contains(*n))
                        .map(str::to_owned)
                        .collect();
                    if !complete.is_empty() {
                        let (items, _) = self.convert(pr, &raws, skip, None, Some(&complete));
                        *count += items.len();
                        if !self.send(r, items).await {
                            return Listed::Stopped;
                        }
                    }
                    return Listed::PerNamespace { total, complete };
                }
            }
            first_page = false;
            // `advance` keeps the token it answers for: there is one exactly when `more`.
            let more = pager.advance(next);
            let token = pager.token().map(str::to_owned);
            let fetch_next = async {
                let token = token?;
                let page = self.pages.try_acquire().ok()?;
                tokio::select! {
                    biased;
                    _ = self.opts.stop.cancelled() => None,
                    listed = self.cluster.list_page(
                        r,
                        ns,
                        self.plan.server_selector.as_deref(),
                        Some(&token),
                        self.opts.page_size,
                    ) => Some((listed, Some(page))),
                }
            };
            let process = async {
                let (items, new) = self.convert(pr, &raws, skip, Some(&mut pager), keep);
                read += new;
                *count += items.len();
                self.send(r, items).await
            };
            let (next_page, sent) = tokio::join!(fetch_next, process);
            if !sent {
                return Listed::Stopped;
            }
            if !more {
                return Listed::Done;
            }
            prefetched = next_page;
        }
    }

    /// Items that go in because of others: PVs of claims, CRDs of custom resources.
    /// Adds objects read with GET (`texts`, with their apiVersion and kind) to the tarball
    /// as items of `r` (Velero's additional items: the VolumeSnapshots a backup made).
    pub(crate) async fn add_objects(
        &self,
        r: &ApiResource,
        texts: Vec<(Option<String>, String, String)>,
    ) {
        let items = texts
            .into_iter()
            .map(|(namespace, name, text)| Item {
                namespace,
                name,
                json: text.into_bytes(),
            })
            .collect();
        self.send(&Arc::new(r.clone()), items).await;
    }

    async fn dependents(&self, served: &[ApiResource]) {
        let planned: BTreeSet<String> = self
            .plan
            .resources
            .iter()
            .map(|p| p.resource.group_resource())
            .collect();
        let find = |group: &str, plural: &str| {
            served
                .iter()
                .find(|r| r.group == group && r.plural == plural)
                .cloned()
        };
        let mut wanted: Vec<(ApiResource, String)> = Vec::new();
        if self.plan.dependents.pvs_of_claims
            && let Some(pv) =
                find("", "persistentvolumes").filter(|r| !planned.contains(&r.group_resource()))
        {
            for name in self.bound_pvs.lock().map(|s| s.clone()).unwrap_or_default() {
                wanted.push((pv.clone(), name));
            }
        }
        if self.plan.dependents.crds_of_custom_resources
            && let Some(crd) = find("apiextensions.k8s.io", "customresourcedefinitions")
                .filter(|r| !planned.contains(&r.group_resource()))
        {
            let seen = self
                .seen_types
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            for gr in seen {
                // A custom resource's CRD is named <plural>.<group>; built-in groups have none.
                if let Some(name) = lifeboat_types::api::groups::crd_name_of(&gr) {
                    wanted.push((crd.clone(), name.to_owned()));
                }
            }
        }
        for (r, name) in wanted {
            let r = Arc::new(r);
            match self.cluster.get_raw(&r, None, &name).await {
                Ok(Some(text)) => {
                    let what = format!("{} {name}", r.group_resource());
                    let Some(raw) = self.parse_get(None, &what, &text) else {
                        continue;
                    };
                    let pr = PlannedResource {
                        resource: (*r).clone(),
                        scope: ListScope::Cluster,
                        filter_names_as_namespaces: false,
                        ordered: vec![],
                    };
                    let (items, _) = self.convert(&pr, &[raw], &BTreeSet::new(), None, None);
                    // Dependents are not subject to the label selector.
                    let items = if items.is_empty() {
                        vec![Item {
                            namespace: None,
                            name: name.clone(),
                            json: text.into_bytes(),
                        }]
                    } else {
                        items
                    };
                    self.send(&r, items).await;
                }
                Ok(None) => {} // an aggregated API's group (no CRD), or a PV gone meanwhile
                Err(e) => self.error(
                    None,
                    format!("{} {name}: {}", r.group_resource(), chain(&e)),
                ),
            }
        }
    }
}

/// What the writer thread reports when the tarball is finished.
struct WriterReport {
    resource_list: ResourceList,
    items: u64,
}

fn writer_thread(
    mut rx: mpsc::Receiver<Batch>,
    sink: ChunkSink,
    level: u32,
    progress: Arc<Progress>,
) -> std::io::Result<WriterReport> {
    let mut w = ArchiveWriter::new(sink, level)?;
    let mut list = ResourceList::default();
    let mut items = 0u64;
    while let Some(batch) = rx.blocking_recv() {
        let gr = batch.resource.group_resource();
        let gvk = batch.resource.gvk_key();
        for it in batch.items {
            w.add_item(
                &gr,
                &batch.resource.version,
                it.namespace.as_deref(),
                &it.name,
                &it.json,
            )?;
            list.add(&gvk, it.namespace.as_deref(), &it.name);
            items += 1;
            progress.done.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut sink = w.finish()?;
    std::io::Write::flush(&mut sink)?;
    Ok(WriterReport {
        resource_list: list,
        items,
    })
}

/// Runs a backup of `backup.spec` from `cluster` into `store`, returning the stored
/// Backup (phase Completed or PartiallyFailed).
pub async fn run_backup(
    cluster: &Cluster,
    store: &Store,
    mut backup: Backup,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<Backup, BackupError> {
    let began = std::time::Instant::now();
    let name = backup.metadata.name.clone();
    validate_name("backup", &name)?;
    let storage_err = |source| storage_error(&name, source);
    let cluster_err = |source| BackupError::Cluster {
        backup: name.clone(),
        source,
    };

    // Checks first; nothing is written until they pass. The location's (writable, the
    // name not taken) run while the cluster is discovered.
    let paths = store.backup_paths(&name);
    let location_checks = async {
        store.check(true).await?;
        let (metadata_path, contents_path) = (paths.metadata(), paths.contents());
        let (metadata, contents) =
            tokio::join!(store.exists(&metadata_path), store.exists(&contents_path));
        Ok::<_, StorageError>(metadata? || contents?)
    };
    let (taken, discovered, namespaces) =
        tokio::join!(location_checks, cluster.discover(), cluster.namespaces());
    if taken.map_err(storage_err)? {
        return Err(BackupError::AlreadyExists {
            backup: name.clone(),
            location: store.name().to_owned(),
            object: None,
        });
    }
    let (served, discovery_failures) = discovered.map_err(cluster_err)?;
    tracing::debug!(
        "backup {name}: discovered {} resource types in {} ms",
        served.len(),
        began.elapsed().as_millis()
    );
    let namespaces = namespaces.map_err(cluster_err)?;
    let mut plan =
        plan_backup(&backup.spec, &served, &namespaces).map_err(|source| BackupError::Plan {
            backup: name.clone(),
            source,
        })?;
    let refused_cluster_wide = preflight(cluster, &mut plan, namespaces.len())
        .await
        .map_err(cluster_err)?;
    tracing::debug!(
        "backup {name}: access checked at {} ms",
        began.elapsed().as_millis()
    );

    let start = Time::now();
    // Checked before anything is written: a TTL past the last date is refused.
    let expiration = expiration(start, backup.ttl()).map_err(|source| BackupError::Ttl {
        backup: name.clone(),
        source,
    })?;
    let log = RunLog::new("backup", &name);
    log.info("Starting backup", &[("storageLocation", store.name())]);
    progress
        .types_total
        .store(plan.resources.len() as u64, Ordering::Relaxed);

    let (tx, rx) = mpsc::channel::<Batch>(4);
    let (chunk_tx, chunk_rx) = mpsc::channel::<Bytes>(2);
    let sink = ChunkSink::new(store.chunk_size, chunk_tx);
    let level = opts.gzip_level;
    let wprogress = progress.clone();
    let writer = tokio::task::spawn_blocking(move || writer_thread(rx, sink, level, wprogress));

    let written = Written::new(store);
    let contents_path = paths.contents();
    let upload_store = store.clone();
    let upload_path = contents_path.clone();
    let stop = opts.stop.clone();
    let mut uploader = tokio::spawn(async move {
        // The chunks until the run is stopped; then one error, which aborts the upload.
        let location = upload_store.name().to_owned();
        let stopped_path = upload_path.clone();
        let chunks = futures::stream::unfold(Some(chunk_rx), move |rx| {
            let stop = stop.clone();
            let (location, path) = (location.clone(), stopped_path.clone());
            async move {
                let mut rx = rx?;
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => Some((Err(StorageError::Stopped { location, path }), None)),
                    c = rx.recv() => c.map(|c| (Ok(c), Some(rx))),
                }
            }
        });
        upload_store.upload(&upload_path, Box::pin(chunks)).await
    });

    let run = Run {
        cluster,
        plan: &plan,
        opts,
        log: &log,
        progress: progress.clone(),
        tx,
        bound_pvs: Default::default(),
        bound_claims: Default::default(),
        seen_types: Default::default(),
        refused_cluster_wide,
        in_cluster: namespaces.len(),
        pages: tokio::sync::Semaphore::new(PAGES_IN_FLIGHT),
    };
    // A group version that could not be discovered may hold resources this backup
    // should have: an error (the backup ends PartiallyFailed), never a warning.
    for f in &discovery_failures {
        let missing = if f.other_version_served {
            format!(
                "the resources only {} serves are not in this backup (those of its group's other versions are)",
                f.group_version()
            )
        } else {
            format!(
                "the resources of {} are not in this backup",
                f.group_version()
            )
        };
        run.error(
            None,
            format!(
                "discovery of {} failed ({}): {missing}; an aggregated API whose service is down answers this way — make it available (`kubectl get apiservices` shows which is not) and run the backup again",
                f.path,
                f.answer()
            ),
        );
    }
    // Exec hooks of the pods in the backup (spec hooks and pod annotations), all pre
    // hooks before the first LIST and all post hooks after the last item: the pods stay
    // quiesced for the whole resource backup.
    let pods = plan
        .resources
        .iter()
        .find(|r| r.resource.group.is_empty() && r.resource.plural == "pods");
    let (pod_hooks, pod_volumes) = if let Some(pods) = pods {
        match hook_pods(cluster, &plan, &pods.scope).await {
            Ok(pods) => {
                let (planned, problems) = lifeboat_types::plan::backup_hooks::plan_backup_hooks(
                    &backup.spec.hooks,
                    &pods.hooks,
                );
                for (ns, p) in problems {
                    run.error(Some(&ns), p);
                }
                (planned, pods.volumes)
            }
            Err(e) => {
                run.error(
                    None,
                    format!(
                        "cannot list pods for their hooks and volumes: {}",
                        chain(&e)
                    ),
                );
                (Vec::new(), Vec::new())
            }
        }
    } else {
        (Vec::new(), Vec::new())
    };
    let executor = crate::hooks::KubeExec::shared(cluster.client().clone());
    let mut hook_status = lifeboat_types::api::velero::HookStatus::default();
    let mut record_hooks = |r: crate::hooks::HookRun, run: &Run<'_>| {
        hook_status.hooks_attempted += r.attempted;
        hook_status.hooks_failed += r.failed;
        for (ns, m) in r.errors {
            run.error(Some(&ns), m);
        }
        for (ns, m) in r.warnings {
            run.warn(Some(&ns), m);
        }
    };
    if !pod_hooks.is_empty() {
        let pre = crate::hooks::run_hooks(
            &*executor,
            &pod_hooks,
            lifeboat_types::plan::backup_hooks::Phase::Pre,
        )
        .await;
        record_hooks(pre, &run);
    }
    if !plan.not_listable.is_empty() {
        run.log.info(
            &format!(
                "not backed up, the API server does not allow listing them: {}",
                plan.not_listable.join(", ")
            ),
            &[],
        );
    }
    for w in &plan.warnings {
        run.warn(None, w.clone());
    }
    for ns in &plan.missing_namespaces {
        run.warn(
            None,
            format!("namespace {ns:?} does not exist; nothing backed up from it"),
        );
    }
    tracing::debug!(
        "backup {name}: listing {} resource types from {} ms",
        plan.resources.len(),
        began.elapsed().as_millis()
    );
    stream::iter(plan.resources.iter())
        .for_each_concurrent(opts.concurrency.max(1), |pr| run.list_resource(pr))
        .await;
    run.dependents(&served).await;
    tracing::debug!(
        "backup {name}: listed at {} ms",
        began.elapsed().as_millis()
    );
    // The pods' volumes, after their objects and before their post hooks (the guides'
    // pre hooks make a database consistent on disk; the post hooks undo it).
    let pod_volume_backups = crate::pod_volumes::back_up(
        cluster,
        opts.pod_volumes.as_ref(),
        &name,
        backup.metadata.uid.as_deref(),
        store.name(),
        backup.spec.default_volumes_to_fs_backup == Some(true),
        &pod_volumes,
        &opts.stop,
        &log,
    )
    .await;
    // CSI snapshots of the claims whose files were not copied, stored with the objects.
    let copied: BTreeSet<(String, String)> = pod_volume_backups
        .iter()
        .filter_map(|v| {
            Some((
                v.pointer("/spec/pod/namespace")?.as_str()?.to_owned(),
                v.pointer("/spec/tags/pvc")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let csi_taken = if backup.spec.snapshot_volumes != Some(false) {
        let claims = run
            .bound_claims
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        crate::csi::snapshot_claims(
            cluster,
            &served,
            &name,
            &claims,
            &copied,
            backup
                .spec
                .csi_snapshot_timeout
                .map(|d| d.0)
                .filter(|d| !d.is_zero())
                .unwrap_or(crate::csi::DEFAULT_TIMEOUT),
            &opts.stop,
            &log,
        )
        .await
    } else {
        Default::default()
    };
    if let Some((vs, vsc)) = &csi_taken.resources
        && !csi_taken.snapshots.is_empty()
    {
        run.add_objects(vs, csi_taken.snapshots.clone()).await;
        run.add_objects(vsc, csi_taken.contents.clone()).await;
    }
    if !pod_hooks.is_empty() {
        let post = crate::hooks::run_hooks(
            &*executor,
            &pod_hooks,
            lifeboat_types::plan::backup_hooks::Phase::Post,
        )
        .await;
        record_hooks(post, &run);
    }
    // Claims whose data no PodVolumeBackup and no CSI snapshot carries.
    let claims = run
        .bound_pvs
        .lock()
        .map(|s| s.len())
        .unwrap_or(0)
        .saturating_sub(copied.len())
        .saturating_sub(csi_taken.records.len());
    if claims > 0 && backup.spec.snapshot_volumes != Some(false) {
        run.warn(
            None,
            format!("{claims} bound volume(s) were backed up as objects only: they are not CSI volumes (only those are snapshotted); choose their pods' volumes for file-system backup (backup.velero.io/backup-volumes, --default-volumes-to-fs-backup) to copy their data"),
        );
    }
    let Run { tx, .. } = run;
    drop(tx);

    let report = writer.await.map_err(|e| BackupError::Archive {
        backup: name.clone(),
        source: std::io::Error::other(e),
    });
    // A stopped run does not wait for an upload that hangs (a store that stopped answering).
    let upload = tokio::select! {
        r = &mut uploader => r,
        _ = opts.stop.cancelled() => {
            uploader.abort();
            uploader.await
        }
    };
    if let Ok(Ok(_)) = &upload {
        written.record(contents_path);
    }
    if opts.stop.is_cancelled() {
        return Err(written
            .failed(BackupError::Interrupted {
                backup: name.clone(),
            })
            .await);
    }
    let report = match (report, upload) {
        (Ok(Ok(r)), Ok(Ok(_size))) => r,
        (_, Ok(Err(e))) => return Err(written.failed(storage_err(e)).await),
        (Ok(Err(e)), _) | (Err(BackupError::Archive { source: e, .. }), _) => {
            return Err(written
                .failed(BackupError::Archive {
                    backup: name.clone(),
                    source: e,
                })
                .await);
        }
        (Err(e), _) => return Err(written.failed(e).await),
        (_, Err(join)) => {
            return Err(written
                .failed(BackupError::Archive {
                    backup: name.clone(),
                    source: std::io::Error::other(join),
                })
                .await);
        }
    };
    let results = log.results();
    let errors = results.errors.len() as u64;
    let warnings = results.warnings.len() as u64;
    let phase = if errors > 0 {
        BackupPhase::PartiallyFailed
    } else {
        BackupPhase::Completed
    };
    log.info(
        "Backup completed",
        &[
            ("phase", &phase.to_string()),
            ("items", &report.items.to_string()),
        ],
    );

    // The other files, then velero-backup.json last.
    let json_gz = |v: &serde_json::Value| {
        Bytes::from(gzip(serde_json::to_vec(v).unwrap_or_default().as_slice()))
    };
    let rl = serde_json::to_vec(&report.resource_list.finish()).unwrap_or_default();
    let empty = serde_json::Value::Array(vec![]);
    let files = vec![
        (paths.logs(), Bytes::from(gzip(log.text().as_bytes()))),
        (paths.resource_list(), Bytes::from(gzip(&rl))),
        (
            paths.results(),
            json_gz(&serde_json::to_value(&results).unwrap_or_default()),
        ),
        (
            paths.pod_volume_backups(),
            json_gz(&serde_json::Value::Array(pod_volume_backups)),
        ),
        (paths.volume_snapshots(), json_gz(&empty)),
        (
            paths.item_operations(),
            json_gz(&serde_json::Value::Array(
                csi_taken
                    .records
                    .iter()
                    .map(|r| {
                        r.to_item_operation(
                            &name,
                            backup.metadata.uid.as_deref().unwrap_or_default(),
                            &start.to_string(),
                        )
                    })
                    .collect(),
            )),
        ),
        (
            paths.volume_info(),
            json_gz(&serde_json::Value::Array(
                csi_taken
                    .records
                    .iter()
                    .map(|r| r.to_volume_info())
                    .collect(),
            )),
        ),
    ];
    if let Err(e) = written.create_all(files).await {
        return Err(written.failed(storage_err(e)).await);
    }

    backup
        .metadata
        .labels
        .insert(STORAGE_LOCATION_LABEL.into(), store.name().to_owned());
    backup.spec.storage_location = Some(store.name().to_owned());
    backup.spec.ttl = Some(backup.ttl());
    if backup.metadata.creation_timestamp.is_none() {
        backup.metadata.creation_timestamp = Some(start);
    }
    let done = Time::now();
    backup.status = Some(BackupStatus {
        version: Some(1),
        format_version: Some(FORMAT_VERSION.into()),
        expiration: Some(expiration),
        phase,
        start_timestamp: Some(start),
        completion_timestamp: Some(done),
        warnings,
        errors,
        progress: Some(BackupProgress {
            total_items: report.items,
            items_backed_up: report.items,
        }),
        hook_status: (hook_status.hooks_attempted > 0).then_some(hook_status),
        ..Default::default()
    });
    let meta = serde_json::to_vec_pretty(&backup).unwrap_or_default();
    if let Err(e) = written
        .create_all([(paths.metadata(), Bytes::from(meta))])
        .await
    {
        return Err(written.failed(storage_err(e)).await);
    }
    tracing::debug!(
        "backup {name}: stored at {} ms",
        began.elapsed().as_millis()
    );
    Ok(backup)
}

/// A storage error of backup `name`'s run; an object another writer stored first is the
/// name being taken.
fn storage_error(name: &str, source: StorageError) -> BackupError {
    match source {
        StorageError::AlreadyExists { location, what } => BackupError::AlreadyExists {
            backup: name.to_owned(),
            location,
            object: Some(what),
        },
        source => BackupError::Storage {
            backup: name.to_owned(),
            source,
        },
    }
}

/// The files one backup run stored, so that a failed run deletes exactly those: never a
/// file another writer stored under the same `backups/<name>/` (not even one this run
/// collided with), never the whole directory.
struct Written<'a> {
    store: &'a Store,
    paths: Mutex<Vec<String>>,
}

impl<'a> Written<'a> {
    fn new(store: &'a Store) -> Self {
        Written {
            store,
            paths: Mutex::new(Vec::new()),
        }
    }

    /// Records a file this run stored.
    fn record(&self, path: String) {
        if let Ok(mut p) = self.paths.lock() {
            p.push(path);
        }
    }

    /// Creates `files` at once (each conditionally: see [`Store::create`]; the store's
    /// concurrency limit bounds them), recording each one stored; the first error is
    /// returned once all have ended, so that every file stored is recorded for
    /// [`Written::failed`]. What must come after them is created by a later call.
    async fn create_all(
        &self,
        files: impl IntoIterator<Item = (String, Bytes)>,
    ) -> Result<(), StorageError> {
        let ended = futures::future::join_all(files.into_iter().map(|(path, data)| async move {
            let r = self.store.create(&path, data).await;
            (path, r)
        }))
        .await;
        let mut first = None;
        for (path, r) in ended {
            match r {
                Ok(()) => self.record(path),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Deletes the files this run stored (best effort, each failure logged) and returns
    /// `e`, the error that failed the run.
    async fn failed(self, e: BackupError) -> BackupError {
        let paths = self.paths.into_inner().unwrap_or_else(|p| p.into_inner());
        for path in paths.iter().rev() {
            if let Err(d) = self.store.delete(path).await {
                tracing::warn!("removing {path} of a failed backup: {}", chain(&d));
            }
        }
        e
    }
}

/// Checks LIST permission on every planned resource before anything is written, and
/// chooses how each namespaced type of a backup that selects namespaces is listed
/// ([`ListScope::chosen`], by `types::rules::namespaced_list`; `in_cluster`: the cluster's
/// namespace count). Where a cluster-wide LIST would be chosen, the access review asks
/// for that first; when it is refused, the type is listed per namespace and every selected
/// namespace is checked as before — a user allowed to LIST only inside the selected
/// namespaces gets a complete backup.
///
/// Returns the group-resources whose cluster-wide LIST was asked for and refused.
async fn preflight(
    cluster: &Cluster,
    plan: &mut BackupPlan,
    in_cluster: usize,
) -> Result<BTreeSet<String>, ClusterError> {
    let ask: Vec<usize> = plan
        .resources
        .iter()
        .enumerate()
        .filter(|(_, pr)| {
            matches!(&pr.scope, ListScope::Namespaces(list) if worth_asking(list.len(), in_cluster))
        })
        .map(|(i, _)| i)
        .collect();
    let resources = &plan.resources;
    let answers: Vec<(usize, bool)> = stream::iter(ask)
        .map(|i| async move {
            cluster
                .can_i("list", &resources[i].resource, None)
                .await
                .map(|allowed| (i, allowed))
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let mut refused = BTreeSet::new();
    for (i, allowed) in answers {
        let pr = &mut plan.resources[i];
        if !allowed {
            refused.insert(pr.resource.group_resource());
        }
        let planned = std::mem::replace(&mut pr.scope, ListScope::Cluster);
        pr.scope = planned.chosen(in_cluster, allowed);
    }
    let mut checks = Vec::new();
    for pr in &plan.resources {
        match &pr.scope {
            ListScope::Cluster | ListScope::AllNamespaces => {
                checks.push((pr.resource.clone(), None))
            }
            ListScope::Namespaces(list) => {
                for ns in list {
                    checks.push((pr.resource.clone(), Some(ns.clone())));
                }
            }
            // Allowed: the access review above said so.
            ListScope::AllNamespacesKeeping(_) => {}
        }
    }
    check_list_permissions(cluster, checks).await?;
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_store(dir: &std::path::Path) -> Store {
        let l = crate::storage::location_from_url(&format!("file://{}", dir.display())).unwrap();
        Store::open(&l).unwrap()
    }

    /// Issue 11 item 2: a backup that fails after some of its files were stored deletes
    /// those files only — not a file another writer stored under the same
    /// `backups/<name>/` before (here the very one this run collided with), not the
    /// directory.
    #[tokio::test]
    async fn a_failed_backup_removes_only_the_files_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path());
        let paths = store.backup_paths("b");
        // Another writer's files, stored before this run.
        let foreign = [
            (paths.results(), Bytes::from_static(b"theirs")),
            (
                format!("{}notes.txt", paths.dir()),
                Bytes::from_static(b"theirs too"),
            ),
        ];
        for (p, d) in &foreign {
            store.create(p, d.clone()).await.unwrap();
        }
        let written = Written::new(&store);
        store
            .upload(
                &paths.contents(),
                futures::stream::iter([Ok(Bytes::from_static(b"tarball"))]),
            )
            .await
            .unwrap();
        written.record(paths.contents());
        let e = written
            .create_all([
                (paths.logs(), Bytes::from_static(b"logs")),
                (paths.resource_list(), Bytes::from_static(b"list")),
                (paths.results(), Bytes::from_static(b"ours")),
                (paths.volume_info(), Bytes::from_static(b"never written")),
            ])
            .await
            .unwrap_err();
        let e = written.failed(storage_error("b", e)).await;
        assert!(
            matches!(&e, BackupError::AlreadyExists { object: Some(o), .. } if *o == paths.results()),
            "{e}"
        );
        assert!(
            e.to_string().contains("stored by another writer first"),
            "{e}"
        );
        for (p, d) in &foreign {
            assert_eq!(&store.read(p).await.unwrap(), d, "{p}");
        }
        for p in [
            paths.contents(),
            paths.logs(),
            paths.resource_list(),
            paths.volume_info(),
        ] {
            assert!(!store.exists(&p).await.unwrap(), "{p} left behind");
        }
    }

    #[test]
    fn a_taken_name_found_before_writing_names_no_object() {
        let e = BackupError::AlreadyExists {
            backup: "b".into(),
            location: "default".into(),
            object: None,
        };
        assert_eq!(
            e.to_string(),
            "backup \"b\" already exists in storage location \"default\"; choose another name or delete it first"
        );
        assert!(!e.is_retryable());
    }

    /// Issue 12, item 5: a cluster-wide LIST reads an item's namespace and name without
    /// parsing it; what it cannot read that way is left to the full parse (`None`).
    #[rstest::rstest]
    #[case::as_the_api_server_writes(r#"{"metadata":{"name":"cm-1","namespace":"load-07","uid":"u"},"data":{"k":"v"}}"#, Some((Some("load-07"), "cm-1")))]
    #[case::namespace_first(r#"{"metadata":{"namespace":"a","name":"b"}}"#, Some((Some("a"), "b")))]
    #[case::metadata_last(r#"{"kind":"ConfigMap","data":{"x":"}\"{[","y":[1,{"z":null}]},"n":-1.5e3,"t":true,"metadata":{"labels":{"name":"no"},"name":"b","namespace":"a"}}"#, Some((Some("a"), "b")))]
    #[case::whitespace(" {\n \"metadata\" : { \"name\" : \"b\" ,\t\"namespace\" : \"a\" } } ", Some((Some("a"), "b")))]
    #[case::cluster_scoped(r#"{"metadata":{"name":"pv-1","uid":"u"},"spec":{}}"#, Some((None, "pv-1")))]
    #[case::nested_namespace_is_not_it(r#"{"metadata":{"name":"b","ownerReferences":[{"namespace":"x"}],"labels":{"namespace":"y"}}}"#, Some((None, "b")))]
    #[case::escaped_value(r#"{"metadata":{"name":"b","namespace":"a\u0062"}}"#, None)]
    #[case::escaped_key(r#"{"metadata":{"n\u0061me":"b","namespace":"a"}}"#, None)]
    #[case::escaped_top_key(r#"{"met\u0061data":{"name":"b","namespace":"a"}}"#, None)]
    #[case::no_name(r#"{"metadata":{"namespace":"a"}}"#, None)]
    #[case::null_name(r#"{"metadata":{"name":null,"namespace":"a"}}"#, None)]
    #[case::empty_metadata(r#"{"metadata":{}}"#, None)]
    #[case::no_metadata(r#"{"kind":"X"}"#, None)]
    #[case::empty(r#"{}"#, None)]
    #[case::not_an_object(r#"[1]"#, None)]
    #[case::truncated(r#"{"metadata":{"name":"b","namesp"#, None)]
    fn raw_keys(#[case] raw: &str, #[case] expected: Option<(Option<&str>, &str)>) {
        assert_eq!(raw_key(raw), expected);
    }

    proptest::proptest! {
        /// Whatever the order and content of the other fields, the key read without
        /// parsing is the parsed one, or none.
        #[test]
        fn raw_key_agrees_with_the_parser(
            fields in proptest::collection::vec(("[a-z]{1,9}|name|namespace|metadata", any_json()), 0..6),
            mut meta in proptest::collection::vec(("[a-z]{1,9}|name|namespace", any_json()), 0..6),
            name in "[a-z0-9.-]{1,12}|.{0,4}",
            namespace in proptest::option::of("[a-z0-9-]{1,12}|.{0,4}"),
            at in 0usize..6,
        ) {
            meta.push(("name".into(), serde_json::Value::String(name)));
            if let Some(ns) = namespace {
                meta.push(("namespace".into(), serde_json::Value::String(ns)));
            }
            let mut object = serde_json::Map::new();
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i == at {
                    object.insert("metadata".into(), serde_json::Value::Object(meta.clone().into_iter().collect()));
                }
                object.insert(k, v);
            }
            object
                .entry("metadata")
                .or_insert_with(|| serde_json::Value::Object(meta.into_iter().collect()));
            let text = serde_json::Value::Object(object).to_string();
            #[derive(Deserialize)]
            struct Meta { name: String, namespace: Option<String> }
            #[derive(Deserialize)]
            struct Head { metadata: Meta }
            if let Some((ns, name)) = raw_key(&text) {
                let head: Head = serde_json::from_str(&text).unwrap();
                proptest::prop_assert_eq!(name, head.metadata.name);
                proptest::prop_assert_eq!(ns.map(str::to_owned), head.metadata.namespace);
            }
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<String>().prop_map(serde_json::Value::String),
            "[a-z\"\\\\{}\\[\\],: ]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}|name|namespace", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[rstest::rstest]
    #[case::counted(r#"{"kind":"ConfigMapList","metadata":{"continue":"x","remainingItemCount":99500},"items":[{"metadata":{"name":"a"}}]}"#, Some(99_500))]
    #[case::last_page(r#"{"metadata":{"resourceVersion":"1"},"items":[]}"#, None)]
    #[case::no_metadata(r#"{"items":[]}"#, None)]
    #[case::not_json("<html>", None)]
    fn remaining_items(#[case] body: &str, #[case] expected: Option<u64>) {
        assert_eq!(remaining_item_count(body), expected);
    }

    #[test]
    fn item_json_adds_type() {
        let out = item_json(r#"{"metadata":{"name":"a"}}"#, "v1", "ConfigMap", false);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "ConfigMap");
        assert_eq!(v["metadata"]["name"], "a");
        assert_eq!(
            item_json("{}", "v1", "X", false),
            br#"{"apiVersion":"v1","kind":"X"}"#
        );
        let typed = r#"{"apiVersion":"example.com/v1","kind":"W","metadata":{"name":"a"}}"#;
        assert_eq!(
            item_json(typed, "example.com/v1", "W", true),
            typed.as_bytes()
        );
    }
}
