//! lifeboat-node: the node agent (`lifeboat node-agent`), one per node (the DaemonSet
//! of `install --use-node-agent`).
#![warn(missing_docs)]
//!
//! It takes the pod volume work of its node from the server's namespace:
//! - a **PodVolumeBackup** labelled with its node: the pod's volume directory under the
//!   kubelet's pods directory (`types::rules::fs_backup::node_path`) is backed up into the
//!   repository `<prefix>/restic/<namespace>` of the named storage location, with the
//!   previous snapshot of the same volume as parent (unchanged files are not read again);
//! - a **PodVolumeRestore** whose pod runs on its node: once the kubelet made the restored
//!   pod's volume directory (the pod waits in its restore-wait init container), the
//!   snapshot's files are written into it, then a marker that lets the init container
//!   end (`types::api::pod_volume::marker`); on failure the marker says why and the pod
//!   does not start on partial data.
//!
//! `status.progress` says how many bytes are done while it copies. The repository key is
//! the user's (`LIFEBOAT_REPO_PASSWORD_FILE`, the mounted Secret); without it each volume
//! fails naming the fix. Invariant: an object is InProgress only while this process
//! copies it — one found InProgress in the API server that this process does not run was
//! left by an agent that stopped: a backup becomes Failed (run the backup again), a
//! restore is started again (writing files again is harmless).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use lifeboat_engine::controller;
use lifeboat_engine::objects::patch_status;
use lifeboat_types::api::pod_volume::{
    self as pv, PodVolumeBackupResource, PodVolumeRestoreResource, VolumePhase,
};
use lifeboat_types::api::velero::Time;
use lifeboat_types::format::layout;
use lifeboat_types::rules::fs_backup::{self, Decision, Source, VolumeChoice};
use lifeboat_volume::{BackupRequest, Progress, ProgressBars, ProgressType, Repo, RepoKey};
use serde_json::json;

/// What went wrong in one reconcile (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The API server.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The private directory for location credentials.
    #[error("cannot make a private directory for location credentials: {0}")]
    PrivateDir(std::io::Error),
}

/// Options of `lifeboat node-agent`.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The server's namespace, where the work is.
    pub namespace: String,
    /// This node's name.
    pub node: String,
    /// The kubelet's root directory as mounted here (its `pods` directory is read).
    pub kubelet_root: PathBuf,
}

struct Ctx {
    client: kube::Client,
    opts: AgentOptions,
    secrets_dir: tempfile::TempDir,
    /// Objects this process is copying.
    running: Mutex<BTreeSet<String>>,
}

/// How often a running copy's `status.progress` is written.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long a restore waits for the kubelet to make the pod's volume directory.
const VOLUME_DIR_WAIT: Duration = Duration::from_secs(600);

/// Runs the agent until `shutdown`.
pub async fn run(
    config: kube::Config,
    opts: AgentOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    lifeboat_engine::cluster::install_tls_provider();
    let mut watch_config = config;
    watch_config.read_timeout = None;
    let client = kube::Client::try_from(watch_config)?;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        opts: opts.clone(),
        secrets_dir: tempfile::tempdir().map_err(AgentError::PrivateDir)?,
        running: Mutex::default(),
    });
    tracing::info!(node = %opts.node, namespace = %opts.namespace, kubelet = %opts.kubelet_root.display(), "node agent started");
    let stop = controller::stop_on(shutdown);
    let backups = controller::run(
        Controller::new(
            Api::<PodVolumeBackupResource>::namespaced(client.clone(), &opts.namespace),
            watcher::Config::default().labels(&format!("{}={}", pv::NODE_LABEL, opts.node)),
        ),
        stop.clone(),
        reconcile_backup,
        on_error,
        ctx.clone(),
    );
    let restores = controller::run(
        Controller::new(
            Api::<PodVolumeRestoreResource>::namespaced(client, &opts.namespace),
            watcher::Config::default(),
        ),
        stop,
        reconcile_restore,
        on_error,
        ctx,
    );
    tokio::join!(backups, restores);
    tracing::info!("node agent stopped");
    Ok(())
}

fn on_error<K: kube::Resource<DynamicType = ()>>(
    obj: Arc<K>,
    e: &AgentError,
    _: Arc<Ctx>,
) -> Action {
    tracing::warn!(
        "{} {}: {} (retrying)",
        K::kind(&()),
        obj.meta().name.as_deref().unwrap_or_default(),
        lifeboat_engine::error::chain(e)
    );
    Action::requeue(Duration::from_secs(10))
}

/// Counts the bytes rustic_core reports, for `status.progress`.
#[derive(Debug, Clone, Default)]
struct Bytes {
    total: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

impl ProgressBars for Bytes {
    fn progress(&self, kind: ProgressType, _prefix: &str) -> Progress {
        match kind {
            ProgressType::Bytes => Progress::new(self.clone()),
            _ => Progress::hidden(),
        }
    }
}

impl lifeboat_volume::RusticProgress for Bytes {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.total.store(len, Ordering::Relaxed);
    }
    fn set_title(&self, _: &str) {}
    fn inc(&self, inc: u64) {
        self.done.fetch_add(inc, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

/// Writes `bytes`' counts into `name`'s `status.progress` every [`PROGRESS_EVERY`] until
/// dropped.
fn report_progress<K>(api: Api<K>, name: String, bytes: Bytes) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut last = (0, 0);
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            let now = (
                bytes.total.load(Ordering::Relaxed),
                bytes.done.load(Ordering::Relaxed),
            );
            if now != last {
                last = now;
                let _ = patch_status(
                    &api,
                    &name,
                    json!({ "progress": { "totalBytes": now.0, "bytesDone": now.1 } }),
                )
                .await;
            }
        }
    })
}

/// Where a pod's volume is on this node, as this agent sees it, and the claim it comes
/// from; an error says why it cannot be read here.
async fn volume_dir(
    ctx: &Ctx,
    pod: &Pod,
    volume: &str,
) -> Result<(PathBuf, Option<String>), String> {
    let ns = pod.namespace().unwrap_or_default();
    let uid = pod.uid().unwrap_or_default();
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    let v = spec
        .volumes
        .as_ref()
        .and_then(|vs| vs.iter().find(|v| v.name == volume))
        .ok_or_else(|| format!("the pod has no volume {volume:?}"))?;
    let raw = serde_json::to_value(v).map_err(|e| e.to_string())?;
    let source = fs_backup::source(&raw);
    let (claim, pv_obj) = match &source {
        Source::Claim(c) => {
            let pvc = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
                .get_opt(c)
                .await
                .map_err(|e| format!("cannot read claim {c}: {e}"))?
                .ok_or_else(|| format!("claim {c} does not exist"))?;
            let pv_name = pvc
                .spec
                .and_then(|s| s.volume_name)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("claim {c} is not bound to a volume yet"))?;
            let pv = Api::<PersistentVolume>::all(ctx.client.clone())
                .get(&pv_name)
                .await
                .map_err(|e| format!("cannot read volume {pv_name} of claim {c}: {e}"))?;
            (
                Some(c.clone()),
                Some(serde_json::to_value(pv).map_err(|e| e.to_string())?),
            )
        }
        _ => (None, None),
    };
    let root = ctx.opts.kubelet_root.to_string_lossy().into_owned();
    let choice = VolumeChoice {
        name: volume.to_owned(),
        source,
        decision: Decision::Backup,
    };
    let path = fs_backup::node_path(&root, &uid, &choice, pv_obj.as_ref())
        .ok_or_else(|| format!("volume {volume}'s files are not on the node in a form the node agent can read (its content is cluster state, or its plugin keeps no directory)"))?;
    let pods_dir = ctx.opts.kubelet_root.join("pods");
    if !Path::new(&path).starts_with(&pods_dir) {
        return Err(format!(
            "volume {volume}'s files are at {path} on the node, outside the kubelet's pods directory that the node agent reads (a hostPath volume): copy them with `lifeboat volume backup --path {path}` on the node"
        ));
    }
    Ok((PathBuf::from(path), claim))
}

/// The repository of `namespace`'s volumes in location `bsl`, opened with the agent's key.
async fn repo(ctx: &Ctx, bsl: &str, namespace: &str, bytes: Bytes) -> Result<Repo<Bytes>, String> {
    let key = RepoKey::resolve(None, |k| std::env::var(k).ok()).map_err(|e| {
        format!(
            "{e} (the node agent reads Secret {} in namespace {}: give it with `lifeboat install --use-node-agent --repo-password-file FILE`)",
            lifeboat_types::manifests::install::REPO_KEY_SECRET,
            ctx.opts.namespace
        )
    })?;
    lifeboat_types::api::names::validate_name("namespace", namespace).map_err(|e| e.to_string())?;
    let (store, _) = lifeboat_engine::location_object::open(
        &ctx.client,
        &ctx.opts.namespace,
        Some(bsl),
        ctx.secrets_dir.path(),
    )
    .await
    .map_err(|e| lifeboat_engine::error::chain(&e))?;
    let dir = layout::restic_repo(store.prefix(), namespace);
    let backend =
        lifeboat_volume::StoreBackend::new(store, &dir, tokio::runtime::Handle::current());
    Ok(Repo::with_progress(backend, key, bytes))
}

/// Whether `name` is being copied by this process; marks it when `take`.
fn running(ctx: &Ctx, name: &str, take: Option<bool>) -> bool {
    let mut r = ctx.running.lock().unwrap_or_else(|p| p.into_inner());
    match take {
        Some(true) => !r.insert(name.to_owned()),
        Some(false) => r.remove(name),
        None => r.contains(name),
    }
}

async fn reconcile_backup(
    obj: Arc<PodVolumeBackupResource>,
    ctx: Arc<Ctx>,
) -> Result<Action, AgentError> {
    let name = obj.name_any();
    if obj.spec.node != ctx.opts.node {
        return Ok(Action::await_change());
    }
    let api: Api<PodVolumeBackupResource> =
        Api::namespaced(ctx.client.clone(), &ctx.opts.namespace);
    match obj.status.as_ref().map(|s| s.phase).unwrap_or_default() {
        VolumePhase::Completed | VolumePhase::Failed => return Ok(Action::await_change()),
        VolumePhase::InProgress => {
            // The cache may lag behind this process's own writes: ask the API server.
            if running(&ctx, &name, None) {
                return Ok(Action::await_change());
            }
            let fresh = api.get(&name).await?;
            if fresh.status.as_ref().map(|s| s.phase) == Some(VolumePhase::InProgress)
                && !running(&ctx, &name, None)
            {
                patch_status(
                    &api,
                    &name,
                    json!({
                        "phase": "Failed",
                        "message": format!("the node agent on node {} stopped while it copied this volume; run the backup again", ctx.opts.node),
                        "completionTimestamp": Time::now(),
                    }),
                )
                .await?;
            }
            return Ok(Action::await_change());
        }
        VolumePhase::New => {}
    }
    copy(&ctx, &api, &name, |bytes| async {
        match back_up(&ctx, &obj, bytes).await {
            Ok((path, snap)) => {
                let size = snap.summary.as_ref().map(|s| s.bytes).unwrap_or_default();
                tracing::info!(object = %name, snapshot = %snap.id, path = %path.display(), "volume backed up");
                json!({
                    "phase": "Completed",
                    "path": path.to_string_lossy(),
                    "snapshotID": snap.id,
                    "completionTimestamp": Time::now(),
                    "progress": { "totalBytes": size, "bytesDone": size },
                })
            }
            Err(message) => {
                tracing::warn!(object = %name, "volume backup failed: {message}");
                json!({ "phase": "Failed", "message": message, "completionTimestamp": Time::now() })
            }
        }
    })
    .await
}

/// Copies the volume of object `name`: marks it InProgress, writes `status.progress` while
/// `work` runs, then writes the status `work` returns. The object counts as running in
/// this process ([`running`]) from before the first write to after the last.
async fn copy<K, Fut>(
    ctx: &Ctx,
    api: &Api<K>,
    name: &str,
    work: impl FnOnce(Bytes) -> Fut,
) -> Result<Action, AgentError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    Fut: std::future::Future<Output = serde_json::Value>,
{
    if running(ctx, name, Some(true)) {
        return Ok(Action::await_change());
    }
    let result = async {
        patch_status(
            api,
            name,
            json!({ "phase": "InProgress", "startTimestamp": Time::now() }),
        )
        .await?;
        let bytes = Bytes::default();
        let progress = report_progress(api.clone(), name.to_owned(), bytes.clone());
        let status = work(bytes).await;
        progress.abort();
        patch_status(api, name, status).await
    }
    .await;
    running(ctx, name, Some(false));
    result?;
    Ok(Action::await_change())
}

/// Backs the volume of `obj` up; its directory and snapshot, or why not.
async fn back_up(
    ctx: &Ctx,
    obj: &PodVolumeBackupResource,
    bytes: Bytes,
) -> Result<(PathBuf, lifeboat_volume::SnapshotInfo), String> {
    let s = &obj.spec;
    let pod = Api::<Pod>::namespaced(ctx.client.clone(), &s.pod.namespace)
        .get_opt(&s.pod.name)
        .await
        .map_err(|e| format!("cannot read pod {}/{}: {e}", s.pod.namespace, s.pod.name))?
        .ok_or_else(|| format!("pod {}/{} is gone", s.pod.namespace, s.pod.name))?;
    if !s.pod.uid.is_empty() && pod.uid().as_deref() != Some(s.pod.uid.as_str()) {
        return Err(format!(
            "pod {}/{} was replaced since the backup chose it (another uid); run the backup again",
            s.pod.namespace, s.pod.name
        ));
    }
    let (path, claim) = volume_dir(ctx, &pod, &s.volume).await?;
    let repo = repo(ctx, &s.backup_storage_location, &s.pod.namespace, bytes).await?;
    let req = BackupRequest {
        host: Some(ctx.opts.node.clone()),
        as_path: Some(pv::snapshot_path(
            &s.pod.namespace,
            &s.pod.name,
            &s.volume,
            claim.as_deref(),
        )),
        tags: s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        force: false,
    };
    let dir = path.clone();
    let snap = tokio::task::spawn_blocking(move || repo.backup(&dir, &req))
        .await
        .map_err(|e| format!("the backup stopped: {e}"))?
        .map_err(|e| e.to_string())?;
    if !path.is_dir() {
        return Err(format!(
            "the volume's directory {} disappeared while it was backed up (its pod deleted or moved); snapshot {} lacks what was not read by then: back up again",
            path.display(),
            snap.id
        ));
    }
    Ok((path, snap))
}

async fn reconcile_restore(
    obj: Arc<PodVolumeRestoreResource>,
    ctx: Arc<Ctx>,
) -> Result<Action, AgentError> {
    let name = obj.name_any();
    let phase = obj.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase.is_done() || running(&ctx, &name, None) {
        return Ok(Action::await_change());
    }
    let api: Api<PodVolumeRestoreResource> =
        Api::namespaced(ctx.client.clone(), &ctx.opts.namespace);
    let s = &obj.spec;
    let fail = |message: String| json!({ "phase": "Failed", "message": message, "completionTimestamp": Time::now() });
    let pod = Api::<Pod>::namespaced(ctx.client.clone(), &s.pod.namespace)
        .get_opt(&s.pod.name)
        .await?;
    let Some(pod) = pod.filter(|p| s.pod.uid.is_empty() || p.uid().as_deref() == Some(&s.pod.uid))
    else {
        // Any agent may say so; the pod is on no node.
        patch_status(
            &api,
            &name,
            fail(format!(
                "pod {}/{} is gone (deleted or replaced) before its volume was restored",
                s.pod.namespace, s.pod.name
            )),
        )
        .await?;
        return Ok(Action::await_change());
    };
    match pod.spec.as_ref().and_then(|p| p.node_name.as_deref()) {
        None | Some("") => return Ok(Action::requeue(Duration::from_secs(2))),
        Some(n) if n != ctx.opts.node => return Ok(Action::await_change()),
        Some(_) => {}
    }
    if phase == VolumePhase::InProgress {
        let fresh = api.get(&name).await?;
        if fresh.status.as_ref().is_some_and(|s| s.phase.is_done()) {
            return Ok(Action::await_change());
        }
        tracing::info!(object = %name, "restoring again a volume an earlier agent left unfinished");
    }
    copy(&ctx, &api, &name, |bytes| async {
        match restore(&ctx, &obj, &pod, bytes).await {
            Ok(size) => json!({
                "phase": "Completed",
                "completionTimestamp": Time::now(),
                "progress": { "totalBytes": size, "bytesDone": size },
            }),
            Err(message) => {
                tracing::warn!(object = %name, "volume restore failed: {message}");
                fail(message)
            }
        }
    })
    .await
}

/// Restores the volume of `obj` into `pod`'s directory and writes the marker; the bytes
/// written, or why not (also written into the failure marker when the directory exists).
async fn restore(
    ctx: &Ctx,
    obj: &PodVolumeRestoreResource,
    pod: &Pod,
    bytes: Bytes,
) -> Result<u64, String> {
    let s = &obj.spec;
    let restore = obj
        .labels()
        .get(pv::RESTORE_NAME_LABEL)
        .cloned()
        .unwrap_or_default();
    let (path, _) = volume_dir(ctx, pod, &s.volume).await?;
    let start = tokio::time::Instant::now();
    while !path.is_dir() {
        if start.elapsed() > VOLUME_DIR_WAIT {
            return Err(format!(
                "the kubelet did not make the volume's directory {} within {}s",
                path.display(),
                VOLUME_DIR_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outcome = async {
        let source_ns = if s.source_namespace.is_empty() {
            &s.pod.namespace
        } else {
            &s.source_namespace
        };
        let repo = repo(ctx, &s.backup_storage_location, source_ns, bytes).await?;
        let (snapshot, target) = (s.snapshot_id.clone(), path.clone());
        let report = tokio::task::spawn_blocking(move || repo.restore(&snapshot, &target))
            .await
            .map_err(|e| format!("the restore stopped: {e}"))?
            .map_err(|e| e.to_string())?;
        if !report.failed.is_empty() {
            let names: Vec<String> = report
                .failed
                .iter()
                .take(20)
                .map(|f| format!("{} ({})", f.path, f.reason))
                .collect();
            return Err(format!(
                "{} file(s) could not be restored (the others were): {}",
                report.failed.len(),
                names.join(", ")
            ));
        }
        Ok(report.bytes)
    }
    .await;
    let marker = match &outcome {
        Ok(_) => {
            // A failure an earlier try recorded is over.
            let _ = std::fs::remove_file(path.join(pv::marker(&restore, true)));
            let written = write_marker(&path, &pv::marker(&restore, false), "");
            if written.is_ok() {
                tokio::spawn(tidy_markers(path.clone(), restore.clone()));
            }
            written
        }
        Err(m) => write_marker(&path, &pv::marker(&restore, true), m),
    };
    if let Err(e) = marker {
        return Err(format!(
            "{}the marker the pod's restore-wait container waits for could not be written into {}: {e}",
            outcome.err().map(|m| format!("{m}; ")).unwrap_or_default(),
            path.display()
        ));
    }
    outcome
}

/// Removes the marker directory once restore-wait took the marker away (it runs as the
/// pod's user, who may not write the volume's root to remove the directory itself);
/// another restore's marker keeps it.
async fn tidy_markers(volume: PathBuf, restore: String) {
    let marker = volume.join(pv::marker(&restore, false));
    let start = tokio::time::Instant::now();
    while marker.exists() {
        if start.elapsed() > VOLUME_DIR_WAIT {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_dir(volume.join(pv::MARKER_DIR));
}

/// Writes the marker `rel` (with `text`) into the volume at `dir`: the marker directory
/// is left writable by anyone, since the restore-wait container runs as the pod's user
/// and removes it.
fn write_marker(dir: &Path, rel: &str, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join(rel);
    let parent = file.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o777))?;
    let tmp = parent.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666))?;
    std::fs::rename(&tmp, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_marker_directory_goes_once_restore_wait_took_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        write_marker(dir.path(), &pv::marker("r1", false), "").unwrap();
        let tidy = tokio::spawn(tidy_markers(dir.path().to_owned(), "r1".into()));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            dir.path().join(".lifeboat").is_dir(),
            "kept while the marker is there"
        );
        std::fs::remove_file(dir.path().join(".lifeboat/r1")).unwrap();
        tidy.await.unwrap();
        assert!(!dir.path().join(".lifeboat").exists());
    }

    #[test]
    fn markers_are_written_where_restore_wait_looks() {
        let dir = tempfile::tempdir().unwrap();
        write_marker(dir.path(), &pv::marker("r1", false), "").unwrap();
        assert!(dir.path().join(".lifeboat/r1").is_file());
        write_marker(dir.path(), &pv::marker("r1", true), "why").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".lifeboat/r1.failed")).unwrap(),
            "why"
        );
    }
}
