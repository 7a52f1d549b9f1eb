//! Notifications: the controllers hand events to a bounded queue ([`Notifier::send`]
//! never waits); one task posts each to the receivers of the `--notifications-secret`
//! Secret that want it (read at each event, so a changed Secret counts at once), each
//! post tried again on a transport error, 408, 429 or 5xx (`types::readiness::notify`:
//! payloads, retry policy). Receivers' URLs are never logged whole.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use lifeboat_types::readiness::notify::{
    Config, Event, RETRY, Receiver, SECRET_KEY, parse_config, payload, retryable, wants,
};
use tokio::sync::mpsc;

use crate::Ctx;

/// Events waiting to be posted; more are dropped with a warning.
const QUEUE: usize = 256;
/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Posts at once.
const PARALLEL: usize = 8;

/// The controllers' side of the queue.
pub(crate) struct Notifier {
    tx: mpsc::Sender<Event>,
}

impl Notifier {
    /// A queue and its receiving end (for [`run`]).
    pub(crate) fn new() -> (Notifier, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Notifier { tx }, rx)
    }

    /// Queues `e`; never waits.
    pub(crate) fn send(&self, e: Event) {
        if let Err(e) = self.tx.try_send(e) {
            tracing::warn!("notification dropped (the queue of {QUEUE} is full or closed): {e}");
        }
    }
}

/// The receivers of Secret `name` (none when it does not exist).
async fn receivers(ctx: &Ctx, name: &str) -> Result<Config, String> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let Some(s) = api
        .get_opt(name)
        .await
        .map_err(|e| format!("cannot read Secret {}/{name}: {}", ctx.ns, crate::chain(&e)))?
    else {
        return Ok(Config::default());
    };
    let text = s
        .data
        .as_ref()
        .and_then(|d| d.get(SECRET_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .ok_or_else(|| format!("Secret {}/{name} has no key {SECRET_KEY}", ctx.ns))?;
    parse_config(&text).map_err(|e| format!("Secret {}/{name}: {e}", ctx.ns))
}

/// Posts `body` to `r`, with retries.
async fn deliver(r: Receiver, body: serde_json::Value, what: String) {
    let mut waits = RETRY.delays();
    loop {
        match lifeboat_dr::hooks::post_json(&r.url, &body, POST_TIMEOUT).await {
            Ok(_) => {
                tracing::info!(receiver = %r.name, "notified: {what}");
                return;
            }
            Err((status, e)) => match waits.next().filter(|_| retryable(status)) {
                Some(wait) => {
                    tracing::debug!(receiver = %r.name, "{e}; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                None => {
                    tracing::warn!(receiver = %r.name, "notification not delivered: {e} ({what})");
                    return;
                }
            },
        }
    }
}

/// Posts queued events until shutdown (what is queued then is dropped, said in the log).
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    mut rx: mpsc::Receiver<Event>,
    secret: String,
    source: String,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    loop {
        let e = tokio::select! {
            e = rx.recv() => match e { Some(e) => e, None => return },
            _ = ctx.shutdown.cancelled() => {
                rx.close();
                let left = std::iter::from_fn(|| rx.try_recv().ok()).count();
                if left > 0 {
                    tracing::warn!("{left} notifications not sent: the server is stopping");
                }
                return;
            }
        };
        let config = match receivers(&ctx, &secret).await {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!("notification of {:?} not sent: {why}", e.kind);
                continue;
            }
        };
        for r in config.receivers.into_iter().filter(|r| wants(r, e.kind)) {
            let body = payload(&r, &e, &source);
            let what = format!("{:?} of {}", e.kind, e.object);
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            tokio::spawn(async move {
                deliver(r, body, what).await;
                drop(slot);
            });
        }
    }
}
