//! Running a kube-runtime [`Controller`] until shutdown, for the server's controllers and
//! the node agent's.
//!
//! kube-runtime's graceful shutdown ends the watch and then waits for the reconciles in
//! flight. Its runner holds every reconcile until the cache has been listed once, and
//! waits for that even after the watch has ended: a shutdown that comes before the first
//! list answered (a SIGTERM right after a replica took the Lease, an API server slow to
//! answer) would wait forever. [`run`] ends such a controller at once: nothing of it ever
//! ran, so there is nothing to wait for.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryFuture};
use kube::runtime::Controller;
use kube::runtime::controller::Action;

/// A shutdown signal every controller of a process can wait on.
pub type Stop = Shared<BoxFuture<'static, ()>>;

/// `shutdown` as a [`Stop`].
pub fn stop_on(shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Stop {
    shutdown.boxed().shared()
}

/// Runs `controller` until `stop`, then lets the reconciles in flight finish (kube-runtime's
/// graceful shutdown) — or ends at once when its cache was never listed (module docs).
pub async fn run<K, R, F, E, C>(
    controller: Controller<K>,
    stop: Stop,
    reconcile: R,
    error_policy: E,
    ctx: Arc<C>,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Default + Unpin,
    R: FnMut(Arc<K>, Arc<C>) -> F,
    F: TryFuture<Ok = Action> + Send + 'static,
    F::Error: std::error::Error + Send + 'static,
    E: Fn(Arc<K>, &F::Error, Arc<C>) -> Action,
{
    let reader = controller.store();
    let running = controller
        .graceful_shutdown_on(stop.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let never_listed = async move {
        stop.await;
        // Once `stop` has fired the watch is not polled again: a cache that is not
        // ready now never will be.
        if reader.wait_until_ready().now_or_never().is_none() {
            tracing::debug!(
                "{}: stopped before the first list; no reconcile ran",
                K::kind(&Default::default())
            );
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = running => {}
        _ = never_listed => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::time::Duration;

    /// Regression (CI, server_lease): SIGTERM 85 ms after a replica took the Lease, before
    /// its controllers' first list had answered; kube-runtime's graceful shutdown then
    /// waited forever and the server never exited. Here the API server accepts and never
    /// answers: the controller must still end soon after `stop`.
    #[tokio::test]
    async fn regression_a_stop_before_the_first_list_ends_the_controller() {
        crate::cluster::install_tls_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts, reads nothing, answers nothing; holds each connection open.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        config.read_timeout = None;
        let client = kube::Client::try_from(config).unwrap();
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop = stop_on(async move {
            let _ = rx.await;
        });
        let reconciled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let controller = tokio::spawn(run(
            Controller::new(api, kube::runtime::watcher::Config::default()),
            stop,
            |_: Arc<ConfigMap>, seen: Arc<std::sync::atomic::AtomicBool>| async move {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::io::Error>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            reconciled.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!controller.is_finished(), "ended before its stop");
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), controller)
            .await
            .expect("the controller did not end within 5 s of its stop")
            .unwrap();
        assert!(!reconciled.load(std::sync::atomic::Ordering::SeqCst));
        silent.abort();
    }
}
