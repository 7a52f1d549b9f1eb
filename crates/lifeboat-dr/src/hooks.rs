//! A plan's hooks, run at their points: a local command (the run's facts in
//! `LIFEBOAT_DR_*` variables), a command in a pod's container (`exec`, through the API
//! server), or an HTTP POST of the run's facts as JSON (`webhook`). Each is recorded as
//! a step; one with `onError: Fail` that fails stops the run (a failover then rolls back).
//!
//! Where an exec hook runs: at `beforeFence` and `afterFence` in the cluster being
//! fenced (the old active: a database flushed before it stops), at every other point in
//! the cluster taking over. When that cluster cannot be reached, the hook is skipped and
//! the step says so (a down primary must not stop its own failover).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;

use lifeboat_engine::cluster::Cluster;
use lifeboat_engine::hooks::KubeExec;
use lifeboat_types::dr::plan::{ExecHook, HookPoint, OnError, Plan, PlanCluster, PlanHook};

use crate::steps::{Recorder, run_command};

/// How long a hook may take when its plan gives no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a run's hooks act.
#[derive(Clone, Copy)]
pub struct HookTargets<'a> {
    /// The cluster a command's `LIFEBOAT_DR_KUBECONFIG`/`_CONTEXT` name: the one taking over.
    pub target: &'a PlanCluster,
    /// Where exec hooks at the fence points run (None: it cannot be reached).
    pub fenced: Option<&'a Cluster>,
    /// Where exec hooks at the other points run.
    pub taking_over: Option<&'a Cluster>,
    /// The run's facts (`PLAN`, `FROM`, `TO`, `BACKUP`, …).
    pub facts: &'a BTreeMap<String, String>,
    /// Record what would run; run nothing.
    pub dry: bool,
}

/// A point's name as a plan writes it (`beforeFence`).
pub fn point_name(point: HookPoint) -> String {
    serde_json::to_value(point)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What a webhook receives: the hook, its point and the run's facts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody<'a> {
    /// The plan.
    pub plan: &'a str,
    /// The hook's name.
    pub hook: &'a str,
    /// Its point (`notify`, `trafficSwitch`, …).
    pub point: &'a str,
    /// The run's facts, as the `LIFEBOAT_DR_*` variables hold them.
    pub facts: &'a BTreeMap<String, String>,
}

/// Runs the plan's hooks at `point`, in the plan's order; Err when one with onError
/// Fail failed (the rest of that point's hooks do not run).
pub async fn run_at(
    plan: &Plan,
    point: HookPoint,
    on: &HookTargets<'_>,
    rec: &mut Recorder,
) -> Result<(), String> {
    let point_name = point_name(point);
    let mut facts = on.facts.clone();
    facts.insert("POINT".into(), point_name.clone());
    for h in plan.spec.hooks.iter().filter(|h| h.at == point) {
        let at = rec.start();
        let name = format!("hook {} ({point_name})", h.name);
        if on.dry {
            rec.done(&name, at, true, format!("would {}", what(h)));
            continue;
        }
        let timeout = h.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        let r = if let Some(exec) = &h.exec {
            let cluster = match point {
                HookPoint::BeforeFence | HookPoint::AfterFence => on.fenced,
                _ => on.taking_over,
            };
            match cluster {
                Some(c) => run_exec(c, exec, timeout).await,
                None => {
                    rec.done(
                        &name,
                        at,
                        true,
                        "skipped: the cluster it runs in cannot be reached".into(),
                    );
                    continue;
                }
            }
        } else if let Some(url) = &h.webhook {
            let body = WebhookBody {
                plan: &plan.name,
                hook: &h.name,
                point: &point_name,
                facts: &facts,
            };
            post(url, &body, timeout).await
        } else {
            run_command(on.target, &facts, &h.command, timeout)
                .await
                .map(|()| "exit 0".to_owned())
        };
        let failed = r.is_err() && h.on_error == OnError::Fail;
        rec.done(
            &name,
            at,
            r.is_ok(),
            match &r {
                Ok(said) => said.clone(),
                Err(e) if h.on_error == OnError::Continue => format!("{e} (onError Continue)"),
                Err(e) => e.clone(),
            },
        );
        if failed {
            return Err(format!("hook {} failed", h.name));
        }
    }
    Ok(())
}

/// What a hook does, for a dry run.
fn what(h: &PlanHook) -> String {
    if let Some(e) = &h.exec {
        format!(
            "run {:?} in a pod of {} matching {}",
            e.command.join(" "),
            e.namespace,
            e.selector
        )
    } else if let Some(url) = &h.webhook {
        format!("POST the run's facts to {}", redact_url(url))
    } else {
        format!("run {:?}", h.command.join(" "))
    }
}

pub use lifeboat_types::rules::secrets::redact_url;

/// Runs an exec hook in the first Running pod its selector finds.
async fn run_exec(cluster: &Cluster, h: &ExecHook, timeout: Duration) -> Result<String, String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().clone(), &h.namespace);
    let list = pods
        .list(&ListParams::default().labels(&h.selector))
        .await
        .map_err(|e| {
            format!(
                "listing pods of {} matching {}: {e}",
                h.namespace, h.selector
            )
        })?;
    let pod = list
        .items
        .iter()
        .find(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        })
        .ok_or_else(|| {
            format!(
                "no Running pod in namespace {} matches {} ({} found)",
                h.namespace,
                h.selector,
                list.items.len()
            )
        })?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let container = h.container.clone().or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
    });
    let Some(container) = container else {
        return Err(format!("pod {}/{pod_name} has no container", h.namespace));
    };
    let exec = KubeExec::shared(cluster.client().clone());
    match tokio::time::timeout(
        timeout,
        exec.exec(&h.namespace, &pod_name, &container, &h.command),
    )
    .await
    {
        Ok(Ok(())) => Ok(format!(
            "exit 0 in {}/{pod_name} ({container})",
            h.namespace
        )),
        Ok(Err(e)) => Err(format!("in {}/{pod_name} ({container}): {e}", h.namespace)),
        Err(_) => Err(format!(
            "in {}/{pod_name} ({container}): still running after {}s: stopped",
            h.namespace,
            timeout.as_secs()
        )),
    }
}

/// POSTs `body` as JSON to `url`; Ok with the status when it is 2xx.
async fn post(url: &str, body: &WebhookBody<'_>, timeout: Duration) -> Result<String, String> {
    let value = serde_json::to_value(body).map_err(|e| e.to_string())?;
    post_json(url, &value, timeout).await.map_err(|(_, e)| e)
}

/// POSTs `body` as JSON to `url` within `timeout`: Ok with what answered (2xx), else
/// the HTTP status (None: no answer) and the error. Every message names the URL without
/// its path, query or user part ([`redact_url`]: webhook URLs carry tokens).
pub async fn post_json(
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<String, (Option<u16>, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let shown = redact_url(url);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| (None, format!("webhook {shown}: {e}")))?;
    let bytes = serde_json::to_vec(body).map_err(|e| (None, e.to_string()))?;
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| {
            (
                None,
                if e.is_timeout() {
                    format!("webhook {shown}: no answer within {}s", timeout.as_secs())
                } else {
                    // The error names the URL, token and all: without it.
                    format!(
                        "webhook {shown}: {}",
                        lifeboat_engine::error::chain(&e.without_url())
                    )
                },
            )
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("{shown} answered {status}"))
    } else {
        Err((
            Some(status.as_u16()),
            format!("webhook {shown} answered {status}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_named_as_plans_write_them() {
        assert_eq!(point_name(HookPoint::BeforeFence), "beforeFence");
        assert_eq!(point_name(HookPoint::TrafficSwitch), "trafficSwitch");
    }
}
