//! Waiting until restored workloads serve again: every Deployment, StatefulSet and
//! DaemonSet with a label selector (a restore's `velero.io/restore-name`) judged by
//! `types::rules::workload_ready`, polled until all are ready or the time is up.
//! `restore create --wait-ready` prints from it; a DR drill measures its RTO with it.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat_types::rules::workload_ready::{Readiness, WORKLOADS, readiness};

use crate::cluster::{Cluster, ClusterError};

/// How often the workloads are listed again.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What a wait reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyEvent {
    /// The first look found workloads not ready yet (how many).
    Waiting(usize),
    /// One became ready (`deployments.apps ns/name`), this long after the wait began.
    Ready(String, Duration),
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyOutcome {
    /// Every workload is ready: when each became so, after the wait began (empty: there
    /// were none).
    AllReady(BTreeMap<String, Duration>),
    /// The time ran out: the ones still waiting, and why.
    TimedOut(BTreeMap<String, String>),
}

/// Waits until every workload labelled `selector` is ready, at most `timeout`.
/// `on_event` hears each workload as it becomes ready.
pub async fn wait_workloads(
    cluster: &Cluster,
    selector: &str,
    timeout: Duration,
    mut on_event: impl FnMut(ReadyEvent),
) -> Result<ReadyOutcome, ClusterError> {
    let start = tokio::time::Instant::now();
    let mut ready: BTreeMap<String, Duration> = BTreeMap::new();
    let mut waiting: BTreeMap<String, String> = BTreeMap::new();
    let mut announced = false;
    loop {
        waiting.clear();
        for (resource, kind) in WORKLOADS {
            let plural = resource.trim_end_matches(".apps");
            let r = crate::cluster::v1_resource("apps", plural, kind, true);
            for o in cluster.list_json(&r, None, Some(selector)).await? {
                let key = format!(
                    "{resource} {}/{}",
                    o.pointer("/metadata/namespace")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default(),
                    o.pointer("/metadata/name")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                );
                if ready.contains_key(&key) {
                    continue;
                }
                match readiness(resource, &o) {
                    Readiness::Ready => {
                        let took = start.elapsed();
                        on_event(ReadyEvent::Ready(key.clone(), took));
                        ready.insert(key, took);
                    }
                    Readiness::Waiting(why) => {
                        waiting.insert(key, why);
                    }
                }
            }
        }
        if waiting.is_empty() {
            return Ok(ReadyOutcome::AllReady(ready));
        }
        if !announced {
            on_event(ReadyEvent::Waiting(waiting.len()));
            announced = true;
        }
        if start.elapsed() >= timeout {
            return Ok(ReadyOutcome::TimedOut(waiting));
        }
        tokio::time::sleep(POLL_EVERY.min(timeout.saturating_sub(start.elapsed()))).await;
    }
}
