//! lifeboat-server: `lifeboat server`, the in-cluster controllers, and `lifeboat
//! install` (`install.rs`: server-side apply of the install manifests).
#![warn(missing_docs)]
//!
//! One replica at a time runs the controllers (a `coordination.k8s.io/v1` Lease decides
//! which; the others wait, ready to take over). The leader runs:
//! - the **Backup** controller (`backups.rs`): a new Backup is validated, marked
//!   InProgress, run by the same engine as `lifeboat backup create`, and its status kept;
//!   a finalizer deletes the stored data before the object goes (TTL expiry and
//!   `DeleteBackupRequest` both delete the object and let the finalizer work);
//! - the **Restore** controller (`restores.rs`): a new Restore is run by the engine of
//!   `lifeboat restore create`, from its backup's location;
//! - the **Schedule** controller (`schedules.rs`): creates `<schedule>-YYYYMMDDhhmmss`
//!   Backups when due (pure rules in `lifeboat_types::rules::schedule`);
//! - the **location** loop (`locations.rs`): validates each BackupStorageLocation
//!   (Available/Unavailable with a reason) and syncs backups found in it into Backup
//!   objects, so a cluster that did not make them can restore them;
//! - garbage collection of expired backups.
//!
//! Every replica serves `/metrics` (Velero's metric names), `/healthz` and `/readyz`.
//!
//! Invariants: a Backup is Completed only after the engine wrote `velero-backup.json`;
//! a Backup or Restore is InProgress only while this process runs it — one seen
//! InProgress *in the API server* (never in the controller's cache, which lags behind the
//! server's own writes) when a reconcile starts was orphaned by a previous process and
//! becomes Failed with a reason; on SIGTERM no new work starts, running backups get a
//! grace period and are otherwise marked Failed, and the Lease is released.

mod backups;
pub mod install;
mod lease;
mod locations;
pub mod metrics;
mod restores;
mod schedules;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Api;
use lifeboat_types::api::crd::BackupStorageLocationResource;
use lifeboat_types::api::velero::{self, SecretKeySelector};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use lifeboat_engine::cluster::Cluster;
use lifeboat_engine::storage::Store;

pub use metrics::Metrics;

/// The finalizer that makes deleting a Backup delete its stored data first.
pub const BACKUP_FINALIZER: &str = "lifeboat.dev/stored-data";

/// On a Backup object made by location sync: the location it was found in.
pub const SYNCED_ANNOTATION: &str = "lifeboat.dev/synced-from";

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The namespace of the lifeboat.dev resources.
    pub namespace: String,
    /// Where /metrics, /healthz and /readyz listen.
    pub metrics_address: SocketAddr,
    /// Backups run at once.
    pub concurrent_backups: usize,
    /// Restores run at once (each restores its objects in parallel already).
    pub concurrent_restores: usize,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// How often locations are validated, unless they say (`0`: never).
    pub validation_every: Duration,
    /// How often backups are synced from locations, unless they say (`0`: never).
    pub sync_every: Duration,
    /// How often expired backups are looked for.
    pub gc_every: Duration,
    /// How long a running backup may finish after SIGTERM before it is marked Failed.
    pub shutdown_grace: Duration,
    /// Velero's metric names, or promtool-clean ones.
    pub metric_names: metrics::MetricNames,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The API server could not be used.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another replica took the Lease while this one led.
    #[error("lost the leader lease {0}; exiting so that the new leader runs alone")]
    LostLease(String),
    /// A resource did not convert (should not happen: same fields).
    #[error("cannot convert {what}: {source}")]
    Convert {
        /// The object.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A storage location cannot be used.
    #[error("{0}")]
    Location(String),
    /// The engine failed (message already names the object).
    #[error("{0}")]
    Engine(String),
}

/// State shared by the controllers.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub cluster: Cluster,
    pub ns: String,
    pub metrics: Arc<Metrics>,
    pub backup_slots: tokio::sync::Semaphore,
    pub restore_slots: tokio::sync::Semaphore,
    pub shutdown: CancellationToken,
    pub grace: Duration,
    /// Credentials of locations, written from their Secrets (0600, removed on exit).
    pub secrets_dir: tempfile::TempDir,
}

/// A lifeboat.dev object as its velero.io/v1 twin (same fields; managedFields dropped).
pub(crate) fn to_velero<T: DeserializeOwned>(
    obj: &impl Serialize,
    what: &str,
) -> Result<T, ServerError> {
    let conv = |source| ServerError::Convert {
        what: what.to_string(),
        source,
    };
    let mut v = serde_json::to_value(obj).map_err(conv)?;
    v["apiVersion"] = serde_json::Value::String(velero::API_VERSION.into());
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    serde_json::from_value(v).map_err(conv)
}

impl Ctx {
    /// Opens the storage location `name` (the default one when `None`): its
    /// BackupStorageLocation object, with credentials from the Secret it names.
    pub(crate) async fn store(
        &self,
        name: Option<&str>,
    ) -> Result<(Store, velero::BackupStorageLocation), ServerError> {
        let api: Api<BackupStorageLocationResource> =
            Api::namespaced(self.client.clone(), &self.ns);
        let bsl = match name.filter(|n| !n.is_empty()) {
            Some(n) => api.get_opt(n).await?.ok_or_else(|| {
                ServerError::Location(format!(
                    "storage location {n:?} does not exist in namespace {}; create it (kubectl apply) or name another with --storage-location",
                    self.ns
                ))
            })?,
            None => {
                let all = api.list(&Default::default()).await?;
                let mut items = all.items;
                let pick = lifeboat_types::rules::location::default_index(
                    items.iter().map(|l| (l.metadata.name.as_deref().unwrap_or_default(), l.spec.default)),
                )
                .ok_or_else(|| {
                        ServerError::Location(format!(
                            "no default storage location in namespace {}: create a BackupStorageLocation with spec.default: true",
                            self.ns
                        ))
                    })?;
                items.swap_remove(pick)
            }
        };
        let lname = bsl.metadata.name.clone().unwrap_or_default();
        let mut v: velero::BackupStorageLocation =
            to_velero(&bsl, &format!("BackupStorageLocation {lname}"))?;
        if let Some(SecretKeySelector { name, key }) = v.spec.credential.clone() {
            let path = self.secret_file(&name, &key).await?;
            v.spec.credential = Some(SecretKeySelector {
                name: path.to_string_lossy().into_owned(),
                key,
            });
        }
        let store = Store::open(&v).map_err(|e| ServerError::Location(e.to_string()))?;
        Ok((store, v))
    }

    /// Writes key `key` of Secret `name` to a private file; returns its path.
    async fn secret_file(&self, name: &str, key: &str) -> Result<PathBuf, ServerError> {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), &self.ns);
        let secret = api.get_opt(name).await?.ok_or_else(|| {
            ServerError::Location(format!(
                "credentials Secret {name:?} does not exist in namespace {}",
                self.ns
            ))
        })?;
        let data = secret
            .data
            .and_then(|d| d.get(key).map(|b| b.0.clone()))
            .ok_or_else(|| ServerError::Location(format!("Secret {name:?} has no key {key:?}")))?;
        // Many runs open locations at once: each reader must see a whole file, so it is
        // written under a unique name and renamed into place (atomic on one filesystem).
        let path = self.secrets_dir.path().join(format!("{name}-{key}"));
        let staged = self.secrets_dir.path().join(format!(
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
            .map_err(|e| {
                let _ = std::fs::remove_file(&staged);
                ServerError::Location(format!("cannot write credentials of Secret {name:?}: {e}"))
            })?;
        Ok(path)
    }
}

/// Distinct names for staged credential files.
static SECRET_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The longest wait before a failed reconcile is retried.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// The wait before retrying a reconcile that failed `n` times in a row: 5 s, doubling, at
/// most [`RETRY_MAX`] — a broken object does not hammer the API server.
fn retry_delay(n: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1u64 << n.saturating_sub(1).min(10))).min(RETRY_MAX)
}

/// Runs one kube-runtime controller over `api` until shutdown: a failed reconcile is
/// logged (as `what`) and retried with backoff ([`retry_delay`]).
pub(crate) async fn run_controller<K, F>(
    ctx: Arc<Ctx>,
    api: Api<K>,
    what: &'static str,
    reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> F,
) where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + std::fmt::Debug + Unpin,
    F: futures::TryFuture<Ok = kube::runtime::controller::Action> + Send + 'static,
    F::Error: std::error::Error + Send + 'static,
{
    use futures::StreamExt;
    use kube::ResourceExt;
    let stop = ctx.shutdown.clone();
    // Per object: failures in a row and when the last one was. A failure more than
    // RETRY_MAX after the previous one starts the count again.
    let failures: std::sync::Mutex<std::collections::HashMap<String, (u32, tokio::time::Instant)>> =
        Default::default();
    kube::runtime::Controller::new(api, kube::runtime::watcher::Config::default())
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(
            reconcile,
            move |obj, e, _| {
                let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
                let now = tokio::time::Instant::now();
                let entry = f.entry(obj.name_any()).or_insert((0, now));
                if now.duration_since(entry.1) > RETRY_MAX * 2 {
                    entry.0 = 0;
                }
                entry.0 += 1;
                entry.1 = now;
                let delay = retry_delay(entry.0);
                tracing::warn!(
                    "{what} {}: {e} (retry in {}s)",
                    obj.name_any(),
                    delay.as_secs()
                );
                kube::runtime::controller::Action::requeue(delay)
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// How often a running backup's or restore's `status.progress` is written.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Drives a backup or restore `run` to its end, calling `report` every
/// [`PROGRESS_EVERY`] while it runs. Once `shutdown` fires it gets `grace` more; `None`
/// when it did not end by then (the caller marks it Failed).
pub(crate) async fn drive<T, R>(
    shutdown: &CancellationToken,
    grace: Duration,
    run: impl Future<Output = T>,
    mut report: impl FnMut() -> R,
) -> Option<T>
where
    R: Future<Output = ()>,
{
    tokio::pin!(run);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // A report in flight is polled beside the run, never instead of it: a slow API server
    // delays the progress, not the backup. One report at a time.
    let mut pending: Option<std::pin::Pin<Box<R>>> = None;
    loop {
        tokio::select! {
            r = &mut run => return Some(r),
            _ = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                pending = None;
            }
            _ = tick.tick(), if pending.is_none() => pending = Some(Box::pin(report())),
            _ = shutdown.cancelled() => break,
        }
    }
    tokio::select! {
        r = &mut run => Some(r),
        _ = tokio::time::sleep(grace) => None,
    }
}

/// Drives a backup or restore `run` ([`drive`]) while writing `status.progress` of the
/// object `name` — `totalItems` and `done_field`, as `sample` counts them — each time they
/// changed since the last write.
pub(crate) async fn drive_with_progress<T, K>(
    ctx: &Ctx,
    api: &Api<K>,
    name: &str,
    done_field: &'static str,
    sample: impl Fn() -> (u64, u64),
    run: impl Future<Output = T>,
) -> Option<T>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut reported = (0, 0);
    drive(&ctx.shutdown, ctx.grace, run, || {
        let now = sample();
        let changed = std::mem::replace(&mut reported, now) != now;
        async move {
            if changed
                && let Err(e) = patch_status(
                    api,
                    name,
                    serde_json::json!({ "progress": { "totalItems": now.0, done_field: now.1 } }),
                )
                .await
            {
                tracing::warn!("{} {name}: progress not recorded: {e}", K::kind(&()));
            }
        }
    })
    .await
}

/// Merge-patches the status subresource of `name` (every controller's status writes).
pub(crate) async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), ServerError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    // A status write that fails for a moment (an API server restart, a timeout) is tried
    // again: a lost terminal status would make a stored backup look orphaned.
    let patch = kube::api::Patch::Merge(serde_json::json!({ "status": status }));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match api
            .patch_status(name, &kube::api::PatchParams::default(), &patch)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
                return Err(kube::Error::Api(e).into());
            }
            Err(e) if attempt >= 5 => return Err(e.into()),
            Err(e) => {
                tracing::warn!(object = %name, "status write failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
    }
}

/// Serves /metrics, /healthz and /readyz until `stop`.
async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    stop: CancellationToken,
) -> Result<(), ServerError> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        m.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.clone();
                async move {
                    if r.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|source| ServerError::Listen { addr, source })
}

/// Runs the server until `shutdown` resolves (SIGTERM/ctrl-c in the binary).
pub async fn run(
    config: kube::Config,
    opts: ServerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let cluster =
        Cluster::from_config(config.clone()).map_err(|e| ServerError::Engine(e.to_string()))?;
    // Watches are long requests: no read timeout for the controllers' client.
    let mut watch_config = config;
    watch_config.read_timeout = None;
    let client = kube::Client::try_from(watch_config)?;
    let token = CancellationToken::new();
    {
        let t = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new work; running backups get their grace period");
            t.cancel();
        });
    }
    let metrics = Arc::new(Metrics::new(opts.metric_names));
    let ready = Arc::new(AtomicBool::new(false));
    let http = tokio::spawn(serve_http(
        opts.metrics_address,
        metrics.clone(),
        ready.clone(),
        token.clone(),
    ));
    // The listener must be up before anything else counts as started.
    tokio::time::sleep(Duration::from_millis(50)).await;
    if http.is_finished() {
        return match http.await {
            Ok(Err(e)) => Err(e),
            _ => Ok(()),
        };
    }
    // Reach the API server once before saying ready.
    kube::Api::<BackupStorageLocationResource>::namespaced(client.clone(), &opts.namespace)
        .list(&kube::api::ListParams::default().limit(1))
        .await?;
    ready.store(true, Ordering::Relaxed);

    let elector = lease::Elector::new(client.clone(), &opts.namespace, &opts.identity);
    tracing::info!(identity = %opts.identity, "waiting for the leader lease {}/{}", opts.namespace, lease::LEASE_NAME);
    loop {
        if token.is_cancelled() {
            let _ = http.await;
            return Ok(());
        }
        match elector.try_acquire().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!("leader lease: {e}"),
        }
        tokio::select! {
            _ = token.cancelled() => {}
            _ = tokio::time::sleep(lease::RETRY) => {}
        }
    }
    tracing::info!("leading: running the controllers");
    metrics.leader.set(1);

    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cluster,
        ns: opts.namespace.clone(),
        metrics: metrics.clone(),
        backup_slots: tokio::sync::Semaphore::new(opts.concurrent_backups.max(1)),
        restore_slots: tokio::sync::Semaphore::new(opts.concurrent_restores.max(1)),
        shutdown: token.clone(),
        grace: opts.shutdown_grace,
        secrets_dir: tempfile::tempdir().map_err(|e| {
            ServerError::Engine(format!(
                "cannot create a private directory for credentials: {e}"
            ))
        })?,
    });

    // Renewal goes on through the shutdown grace period (running work still leads) and
    // stops only once the controllers are done. Losing the Lease — refused, or not renewed
    // within RENEW_DEADLINE — ends all work at once, without a status write: the next
    // leader finds it InProgress and fails it with a reason.
    let lost = CancellationToken::new();
    let renew = {
        let (lost, elector) = (lost.clone(), elector.clone());
        tokio::spawn(async move {
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(lease::RENEW).await;
                match tokio::time::timeout(lease::REQUEST_TIMEOUT, elector.try_acquire()).await {
                    Ok(Ok(true)) => last_ok = tokio::time::Instant::now(),
                    Ok(Ok(false)) => {
                        tracing::error!("the leader lease was taken by another replica");
                        lost.cancel();
                        return;
                    }
                    Ok(Err(e)) => tracing::warn!("renewing the leader lease: {e}"),
                    Err(_) => tracing::warn!(
                        "renewing the leader lease: no answer within {:?}",
                        lease::REQUEST_TIMEOUT
                    ),
                }
                if last_ok.elapsed() > lease::RENEW_DEADLINE {
                    tracing::error!(
                        "the leader lease could not be renewed for {:?}: stepping down",
                        lease::RENEW_DEADLINE
                    );
                    lost.cancel();
                    return;
                }
            }
        })
    };

    let work = async {
        tokio::join!(
            backups::run_backups(ctx.clone()),
            backups::run_delete_requests(ctx.clone()),
            restores::run(ctx.clone()),
            schedules::run(ctx.clone()),
            locations::run(ctx.clone(), opts.validation_every, opts.sync_every),
            backups::run_gc(ctx.clone(), opts.gc_every),
        )
    };
    tokio::select! {
        _ = work => {}
        // Dropping the controllers' futures cancels every reconcile in flight.
        _ = lost.cancelled() => token.cancel(),
    }
    renew.abort();
    metrics.leader.set(0);
    if lost.is_cancelled() {
        let _ = http.await;
        return Err(ServerError::LostLease(lease::LEASE_NAME.into()));
    }
    if let Err(e) = elector.release().await {
        tracing::warn!("releasing the leader lease: {e}");
    }
    let _ = http.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn retries_back_off_to_five_minutes() {
        let secs: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(1000), RETRY_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn drive_reports_progress_while_the_run_goes_on() {
        let reports = AtomicU64::new(0);
        let stop = CancellationToken::new();
        let out = drive(
            &stop,
            Duration::from_secs(20),
            async {
                tokio::time::sleep(Duration::from_secs(7)).await;
                42
            },
            || async {
                reports.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await;
        assert_eq!(out, Some(42));
        // At 2, 4 and 6 seconds.
        assert_eq!(reports.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_report_does_not_hold_the_run_back() {
        let stop = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let out = drive(
            &stop,
            Duration::from_secs(20),
            async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "done"
            },
            || async { tokio::time::sleep(Duration::from_secs(300)).await },
        )
        .await;
        assert_eq!(out, Some("done"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn drive_gives_up_after_the_grace_period_on_shutdown() {
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        });
        let start = tokio::time::Instant::now();
        let never = drive(
            &stop,
            Duration::from_secs(20),
            std::future::pending::<()>(),
            || async {},
        )
        .await;
        assert_eq!(never, None);
        assert_eq!(start.elapsed(), Duration::from_secs(21));
        // A run that ends within the grace period is kept.
        let stop = CancellationToken::new();
        stop.cancel();
        let done = drive(
            &stop,
            Duration::from_secs(20),
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "done"
            },
            || async {},
        )
        .await;
        assert_eq!(done, Some("done"));
    }
}
