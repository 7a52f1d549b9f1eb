//! lifeboat-server: `lifeboat server`, the in-cluster controllers, and `lifeboat
//! install` (`install.rs`: server-side apply of the install manifests).
#![warn(missing_docs)]
//!
//! One replica at a time runs the controllers (a `coordination.k8s.io/v1` Lease decides
//! which; the others wait, ready to take over). The leader runs:
//! - the **Backup** controller (`backups.rs`): a new Backup is validated, marked
//!   InProgress, run by the same engine as `lifeboat backup create`, and its status kept;
//!   a finalizer deletes the stored data before the object goes when it is the object's
//!   (TTL expiry and `DeleteBackupRequest` both delete the object and let the finalizer
//!   work) — never the data of a record synced from a location, unless explicitly
//!   requested or the location is owned (`lifeboat_types::rules::stored_data`);
//! - the **Restore** controller (`restores.rs`): a new Restore is run by the engine of
//!   `lifeboat restore create`, from its backup's location;
//! - the **Schedule** controller (`schedules.rs`): creates `<schedule>-YYYYMMDDhhmmss`
//!   Backups when due (pure rules in `lifeboat_types::rules::schedule`);
//! - the **location** loop (`locations.rs`): validates each BackupStorageLocation
//!   (Available/Unavailable with a reason) and syncs backups found in it into Backup
//!   objects (records), so a cluster that did not make them can restore them; records
//!   whose data disappeared are pruned;
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
mod console;
mod drplans;
pub mod install;
pub mod leader_pod;
mod lease;
mod locations;
pub mod metrics;
mod notify;
mod replicate;
mod restores;
mod schedules;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Api;
use lifeboat_types::api::crd::BackupStorageLocationResource;
use lifeboat_types::api::velero;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use lifeboat_engine::catalog::CatalogError;
use lifeboat_engine::cluster::{Cluster, ClusterError};
use lifeboat_engine::storage::{StorageError, Store};
use lifeboat_types::rules::backoff::Backoff;

pub use metrics::Metrics;

/// The finalizer that makes deleting a Backup delete its stored data first.
pub const BACKUP_FINALIZER: &str = "lifeboat.dev/stored-data";

/// On a Backup object made by location sync (a record): the location it was found in.
/// The stored uid it stands for is in
/// [`lifeboat_types::rules::stored_data::SYNCED_UID`].
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
    /// The pod this server runs in (POD_NAME), labelled while it leads
    /// ([`leader_pod`]); None outside a pod.
    pub own_pod: Option<String>,
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
    /// What a backup whose spec does not set defaultVolumesToFsBackup uses.
    pub default_volumes_to_fs_backup: bool,
    /// How long the node agents may take for the volumes of one backup or restore.
    pub fs_backup_timeout: Duration,
    /// How often each DR plan is looked at, synced and its drills considered (`0`:
    /// never).
    pub dr_every: Duration,
    /// Whether a DR plan's verification commands may run as processes of the server
    /// (`types::dr::server::drill_refused`).
    pub dr_allow_commands: bool,
    /// The Secret of this namespace holding the notification receivers
    /// (`types::readiness::notify::SECRET`).
    pub notifications_secret: String,
    /// How notifications name where they come from (`--cluster-name`).
    pub notify_source: String,
    /// The DR console's bearer token (None: open on a loopback address, refused beyond).
    pub console_token: Option<String>,
    /// How long a DR plan's RPO breach must hold before it is notified.
    pub dr_breach_hold: Duration,
}

/// Why the server stopped, or why a reconcile did not finish. Render it with [`chain`];
/// [`ServerError::is_permanent`] says whether the object's spec cannot run as written
/// (FailedValidation) or the reconcile is tried again.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The API server could not be used.
    #[error("kubernetes API")]
    Kube(#[from] kube::Error),
    /// The engine's connection to the API server could not be set up.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr}")]
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
    #[error("cannot convert {what}")]
    Convert {
        /// The object.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A storage location object could not be opened.
    #[error(transparent)]
    Location(#[from] lifeboat_engine::location_object::LocationError),
    /// The private directory for credentials could not be made.
    #[error("cannot create a private directory for credentials")]
    PrivateDir(#[source] std::io::Error),
    /// A backup's data is in a ReadOnly location, so it cannot be deleted.
    #[error(
        "storage location {location:?} is ReadOnly: backup {backup}'s data cannot be deleted; set it ReadWrite, or remove the finalizer {BACKUP_FINALIZER} to forget the backup"
    )]
    ReadOnlyData {
        /// The location.
        location: String,
        /// The backup.
        backup: String,
    },
    /// A storage location failed (opening it, or reading or writing in it).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored backup could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A controller decided on an object it had not read (a bug: the reconcile is retried).
    #[error("{object}: the object was not read before deciding on it")]
    NotObserved {
        /// The object (`backup NAME`).
        object: String,
    },
    /// No more work is taken (the run slots are closed).
    #[error("the server is shutting down")]
    Closed(#[from] tokio::sync::AcquireError),
}

impl ServerError {
    /// Whether the object's spec cannot run as written — its storage location is missing
    /// or misconfigured, a Secret it needs is missing, it does not convert — so that it
    /// becomes FailedValidation instead of being tried again. Everything that may work
    /// later (the API server, a store that failed for a moment, the local disk) is not.
    pub fn is_permanent(&self) -> bool {
        match self {
            ServerError::ReadOnlyData { .. } | ServerError::Convert { .. } => true,
            ServerError::Storage(e) => !e.is_retryable(),
            ServerError::Location(e) => e.is_permanent(),
            ServerError::Catalog(e) => !e.is_retryable(),
            ServerError::Kube(_)
            | ServerError::Cluster(_)
            | ServerError::Listen { .. }
            | ServerError::LostLease(_)
            | ServerError::PrivateDir(_)
            | ServerError::NotObserved { .. }
            | ServerError::Closed(_) => false,
        }
    }
}

/// An error and its causes on one line ([`lifeboat_engine::error::chain`]), for status
/// fields and logs; also for the errors kube-runtime wraps reconcile errors in.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    lifeboat_engine::error::chain_with(e, &|e| {
        e.is::<kube::runtime::finalizer::Error<ServerError>>()
    })
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
    /// [`ServerOptions::default_volumes_to_fs_backup`].
    pub default_volumes_to_fs_backup: bool,
    /// [`ServerOptions::fs_backup_timeout`].
    pub fs_backup_timeout: Duration,
    /// [`ServerOptions::dr_allow_commands`].
    pub dr_allow_commands: bool,
    /// Each DR plan's cluster names, as its metrics carry them (`drplans`).
    pub dr_series: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// The queue of notifications (`notify`).
    pub notifier: notify::Notifier,
    /// [`ServerOptions::dr_breach_hold`].
    pub dr_breach_hold: Duration,
}

/// A lifeboat.dev object as its velero.io/v1 twin (`types::api::crd::to_velero`); `what`
/// names it in the error.
pub(crate) fn to_velero<T: DeserializeOwned>(
    obj: &impl Serialize,
    what: &str,
) -> Result<T, ServerError> {
    lifeboat_types::api::crd::to_velero(obj).map_err(|source| ServerError::Convert {
        what: what.to_string(),
        source,
    })
}

impl Ctx {
    /// Runs work that reports no progress (a DR drill or sync, copies after a backup)
    /// under [`drive`]: a shutdown gives it the grace period; `None` when it did not end
    /// by then.
    pub(crate) async fn within_grace<T>(&self, run: impl Future<Output = T>) -> Option<T> {
        drive(&self.shutdown, self.grace, None, run, || async {}).await
    }

    /// Where this server's node agents take pod volume work: its own namespace; the
    /// restore-wait container runs the server's own image (the install sets
    /// `LIFEBOAT_IMAGE`).
    pub(crate) fn pod_volume_settings(&self) -> lifeboat_engine::pod_volumes::PodVolumeSettings {
        lifeboat_engine::pod_volumes::PodVolumeSettings {
            namespace: self.ns.clone(),
            image: std::env::var(lifeboat_types::manifests::install::IMAGE_ENV)
                .ok()
                .filter(|i| !i.is_empty()),
            timeout: self.fs_backup_timeout,
        }
    }

    /// Opens the storage location `name` (the default one when `None`): its
    /// BackupStorageLocation object, with credentials from the Secret it names.
    pub(crate) async fn store(
        &self,
        name: Option<&str>,
    ) -> Result<(Store, velero::BackupStorageLocation), ServerError> {
        Ok(lifeboat_engine::location_object::open(
            &self.client,
            &self.ns,
            name,
            self.secrets_dir.path(),
        )
        .await?)
    }
}

/// Runs one kube-runtime controller over `api` until shutdown: a failed reconcile is
/// logged (as `what`) and retried with backoff ([`Backoff::RECONCILE`]).
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
    use kube::ResourceExt;
    let stop = ctx.shutdown.clone();
    let stop = lifeboat_engine::controller::stop_on(async move { stop.cancelled().await });
    // Per object: failures in a row and when the last one was. A failure more than
    // twice the longest wait after the previous one starts the count again.
    let failures: std::sync::Mutex<std::collections::HashMap<String, (u32, tokio::time::Instant)>> =
        Default::default();
    lifeboat_engine::controller::run(
        kube::runtime::Controller::new(api, kube::runtime::watcher::Config::default()),
        stop,
        reconcile,
        move |obj, e, _| {
            let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
            let now = tokio::time::Instant::now();
            let entry = f.entry(obj.name_any()).or_insert((0, now));
            if now.duration_since(entry.1) > Backoff::RECONCILE.max * 2 {
                entry.0 = 0;
            }
            entry.0 += 1;
            entry.1 = now;
            let delay = Backoff::RECONCILE.delay(entry.0);
            tracing::warn!(
                "{what} {}: {} (retry in {}s)",
                obj.name_any(),
                chain(e),
                delay.as_secs()
            );
            kube::runtime::controller::Action::requeue(delay)
        },
        ctx,
    )
    .await;
}

/// A controller's requeue for time `t`: a little after it, so that the next reconcile
/// finds it come (never in the past: at once).
pub(crate) fn requeue_at(t: chrono::DateTime<chrono::Utc>) -> kube::runtime::controller::Action {
    let wait = t
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    kube::runtime::controller::Action::requeue(wait + Duration::from_millis(200))
}

/// How often a running backup's or restore's `status.progress` is written.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How long a run told to stop (its `stop` token cancelled when the grace period ran
/// out) gets to end at its next item and remove what it wrote; within
/// [`lifeboat_types::manifests::install::STOP_MARGIN`], which also covers the status write.
pub(crate) const WIND_DOWN: Duration = Duration::from_secs(15);
const _: () = assert!(
    WIND_DOWN.as_secs() < lifeboat_types::manifests::install::STOP_MARGIN.as_secs(),
    "the wind-down and the status write must fit in the Deployment's stop margin"
);

/// Drives a backup or restore `run` to its end, calling `report` every
/// [`PROGRESS_EVERY`] while it runs. Once `shutdown` fires it gets `grace` more; then its
/// `stop` token (if it has one) is cancelled and it gets [`WIND_DOWN`] to end at an item
/// boundary. `None` when it did not end by then (the caller marks it Failed).
pub(crate) async fn drive<T, R>(
    shutdown: &CancellationToken,
    grace: Duration,
    stop: Option<&CancellationToken>,
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
        r = &mut run => return Some(r),
        _ = tokio::time::sleep(grace) => {}
    }
    let stop = stop?;
    stop.cancel();
    tokio::select! {
        r = &mut run => Some(r),
        _ = tokio::time::sleep(WIND_DOWN) => None,
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
    stop: Option<&CancellationToken>,
    run: impl Future<Output = T>,
) -> Option<T>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut reported = (0, 0);
    drive(&ctx.shutdown, ctx.grace, stop, run, || {
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
                tracing::warn!(
                    "{} {name}: progress not recorded: {}",
                    K::kind(&()),
                    chain(&e)
                );
            }
        }
    })
    .await
}

/// Merge-patches the status subresource of `name` (every controller's status writes),
/// tried again when it fails for a moment ([`lifeboat_engine::objects::patch_status`]).
pub(crate) async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), ServerError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(lifeboat_engine::objects::patch_status(api, name, status).await?)
}

/// Serves /metrics, /healthz, /readyz and the DR console until `stop`.
async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    console: Arc<console::Console>,
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
        .route("/console", get(console::page))
        .route(
            "/console/api/state",
            get(move |headers: axum::http::HeaderMap| {
                let c = console.clone();
                async move { console::state(c, headers).await }
            }),
        )
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
    let cluster = Cluster::from_config(config.clone())?;
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
    let console = Arc::new(console::Console::new(
        cluster.clone(),
        opts.namespace.clone(),
        opts.console_token.clone(),
        opts.metrics_address.ip().is_loopback(),
    ));
    let http = tokio::spawn(serve_http(
        opts.metrics_address,
        metrics.clone(),
        ready.clone(),
        console,
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
    let acquired = loop {
        if token.is_cancelled() {
            let _ = http.await;
            return Ok(());
        }
        // Leadership counts from the start of the attempt that won (a follower saw the
        // record no earlier), and an attempt never hangs: the API may not answer.
        let attempt = tokio::time::Instant::now();
        match tokio::time::timeout(lease::REQUEST_TIMEOUT, elector.try_acquire()).await {
            Ok(Ok(true)) => break attempt,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!("leader lease: {}", chain(&e)),
            Err(_) => tracing::warn!(
                "leader lease: no answer within {:?}",
                lease::REQUEST_TIMEOUT
            ),
        }
        tokio::select! {
            _ = token.cancelled() => {}
            _ = tokio::time::sleep(lease::RETRY) => {}
        }
    };
    tracing::info!("leading: running the controllers");
    metrics.leader.set(1);
    let marking = opts.own_pod.clone().map(|pod| {
        tokio::spawn(leader_pod::keep_marked(
            client.clone(),
            opts.namespace.clone(),
            pod,
            lease::RETRY,
        ))
    });

    let (notifier, notices) = notify::Notifier::new();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cluster,
        ns: opts.namespace.clone(),
        metrics: metrics.clone(),
        backup_slots: tokio::sync::Semaphore::new(opts.concurrent_backups.max(1)),
        restore_slots: tokio::sync::Semaphore::new(opts.concurrent_restores.max(1)),
        shutdown: token.clone(),
        grace: opts.shutdown_grace,
        secrets_dir: tempfile::tempdir().map_err(ServerError::PrivateDir)?,
        default_volumes_to_fs_backup: opts.default_volumes_to_fs_backup,
        fs_backup_timeout: opts.fs_backup_timeout,
        dr_allow_commands: opts.dr_allow_commands,
        dr_series: Default::default(),
        notifier,
        dr_breach_hold: opts.dr_breach_hold,
    });

    // Renewal goes on through the shutdown grace period (running work still leads) and
    // stops only once the controllers are done. Losing the Lease — refused, or not renewed
    // by the renew deadline — ends all work at once, without a status write: the next
    // leader finds it InProgress and fails it with a reason. Each attempt ends by the
    // deadline and the loop wakes up at it (`lease::renew_budget`, `lease::next_attempt`),
    // so the controllers stop before a follower may take the Lease.
    let lost = CancellationToken::new();
    let renew = {
        let (lost, elector) = (lost.clone(), elector.clone());
        tokio::spawn(async move {
            lease::keep_leading(acquired, move || {
                let elector = elector.clone();
                async move { elector.try_acquire().await }
            })
            .await;
            lost.cancel();
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
            drplans::run(ctx.clone(), opts.dr_every),
            notify::run(
                ctx.clone(),
                notices,
                opts.notifications_secret.clone(),
                opts.notify_source.clone()
            ),
        )
    };
    tokio::select! {
        _ = work => {}
        // Dropping the controllers' futures cancels every reconcile in flight.
        _ = lost.cancelled() => token.cancel(),
    }
    renew.abort();
    metrics.leader.set(0);
    if let Some(marking) = marking {
        // Ended before the label comes off: a patch in flight cannot land after it.
        marking.abort();
        let _ = marking.await;
    }
    if let Some(pod) = &opts.own_pod {
        leader_pod::unmark(&client, &opts.namespace, pod).await;
    }
    if lost.is_cancelled() {
        let _ = http.await;
        return Err(ServerError::LostLease(lease::LEASE_NAME.into()));
    }
    tracing::info!("controllers stopped; releasing the leader lease");
    if let Err(e) = elector.release().await {
        tracing::warn!("releasing the leader lease: {}", chain(&e));
    }
    tracing::info!("stopping the metrics endpoint");
    let _ = http.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_engine::location_object::LocationError;
    use rstest::rstest;
    use std::sync::atomic::AtomicU64;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: format!("{code} {reason}"),
            ..Default::default()
        }))
    }

    fn store_io(temporary: bool) -> StorageError {
        let e = opendal::Error::new(opendal::ErrorKind::Unexpected, "connection reset");
        StorageError::Io {
            location: "s3".into(),
            op: "write",
            path: "p".into(),
            source: Box::new(if temporary { e.set_temporary() } else { e }),
        }
    }

    fn disk() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device")
    }

    /// FailedValidation (true) is for what the spec says; everything that may work later
    /// is retried by the controller (false).
    #[rstest]
    #[case::location_missing(ServerError::Location(LocationError::Missing { name: "l".into(), namespace: "velero".into() }), true)]
    #[case::no_default(ServerError::Location(LocationError::NoDefault { namespace: "velero".into() }), true)]
    #[case::secret_missing(ServerError::Location(LocationError::SecretMissing { name: "s".into(), namespace: "velero".into() }), true)]
    #[case::secret_key_missing(ServerError::Location(LocationError::SecretKeyMissing { name: "s".into(), key: "cloud".into() }), true)]
    #[case::location_store_failed_for_a_moment(
        ServerError::Location(LocationError::Storage(store_io(true))),
        false
    )]
    #[case::read_only_data(ServerError::ReadOnlyData { location: "l".into(), backup: "b".into() }, true)]
    #[case::location_misconfigured(ServerError::Storage(StorageError::Missing { location: "l".into(), setting: "region" }), true)]
    #[case::location_read_only(ServerError::Storage(StorageError::ReadOnly { location: "l".into() }), true)]
    #[case::store_failed_for_a_moment(ServerError::Storage(store_io(true)), false)]
    #[case::store_refused_for_good(ServerError::Storage(store_io(false)), true)]
    #[case::stored_backup_missing(ServerError::Catalog(CatalogError::NotFound { what: "backup", name: "b".into(), location: "l".into() }), true)]
    #[case::stored_backup_unreadable_for_a_moment(
        ServerError::Catalog(CatalogError::Storage(store_io(true))),
        false
    )]
    #[case::local_disk_while_staging_a_secret(ServerError::Location(LocationError::StageCredentials { secret: "s".into(), source: disk() }), false)]
    #[case::private_dir(ServerError::PrivateDir(disk()), false)]
    #[case::api_server_unavailable(ServerError::Kube(api(503, "ServiceUnavailable")), false)]
    #[case::api_server_refused(ServerError::Kube(api(403, "Forbidden")), false)]
    fn permanent_or_retried(#[case] e: ServerError, #[case] permanent: bool) {
        assert_eq!(e.is_permanent(), permanent, "{}", chain(&e));
    }

    #[test]
    fn a_reconcile_error_wrapped_by_the_finalizer_prints_each_cause_once() {
        let e: kube::runtime::finalizer::Error<ServerError> =
            kube::runtime::finalizer::Error::ApplyFailed(ServerError::Location(
                LocationError::StageCredentials {
                    secret: "creds".into(),
                    source: disk(),
                },
            ));
        assert_eq!(
            chain(&e),
            "failed to apply object: cannot write credentials of Secret \"creds\" to the local disk: No space left on device"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drive_reports_progress_while_the_run_goes_on() {
        let reports = AtomicU64::new(0);
        let stop = CancellationToken::new();
        let out = drive(
            &stop,
            Duration::from_secs(20),
            None,
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
            None,
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
            None,
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
            None,
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "done"
            },
            || async {},
        )
        .await;
        assert_eq!(done, Some("done"));
    }

    /// Issue 11, item 10: a run still going when the grace period ran out was dropped
    /// where it stood (its tarball writer and uploader went on, detached, and left files
    /// behind). Now its stop token is cancelled and it gets [`WIND_DOWN`] to end at an
    /// item boundary and clean up; its own result is kept.
    #[tokio::test(start_paused = true)]
    async fn a_run_past_its_grace_is_told_to_stop_and_may_wind_down() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let run_stop = CancellationToken::new();
        let seen = run_stop.clone();
        let start = tokio::time::Instant::now();
        let out = drive(
            &shutdown,
            Duration::from_secs(20),
            Some(&run_stop),
            async move {
                seen.cancelled().await;
                // The next item boundary, and the clean-up.
                tokio::time::sleep(Duration::from_secs(2)).await;
                "interrupted"
            },
            || async {},
        )
        .await;
        assert_eq!(out, Some("interrupted"));
        assert_eq!(start.elapsed(), Duration::from_secs(22));
        // One that does not end within the wind-down is given up.
        let run_stop = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let out = drive(
            &shutdown,
            Duration::from_secs(20),
            Some(&run_stop),
            std::future::pending::<()>(),
            || async {},
        )
        .await;
        assert_eq!(out, None);
        assert!(run_stop.is_cancelled());
        assert_eq!(start.elapsed(), Duration::from_secs(20) + WIND_DOWN);
    }
}
