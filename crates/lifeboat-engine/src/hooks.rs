//! Running exec hooks (planned by `lifeboat_types::hooks`) in pods, through the API
//! server's `pods/exec` subresource.
//!
//! The executor is a trait so that selection, ordering, timeouts and error handling are
//! tested with a scripted executor (unit tests below). The real one ([`KubeExec`]) opens
//! the exec WebSocket; on the test control plane there is no kubelet, so a real exec
//! always ends in the API server's error, which the integration tests check is reported.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use lifeboat_types::hooks::{Phase, PlannedHook, PodHooks};
use lifeboat_types::velero::HookErrorMode;
use tokio::io::AsyncReadExt;

/// Runs a command in a container.
pub trait PodExec: Send + Sync {
    /// Runs `command` in `container` of `ns/pod`; `Err` with the reason when it cannot
    /// run or exits non-zero.
    fn exec<'a>(
        &'a self,
        ns: &'a str,
        pod: &'a str,
        container: &'a str,
        command: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Exec through the API server (`pods/exec`, WebSocket).
pub struct KubeExec {
    client: kube::Client,
}

impl KubeExec {
    /// An executor using `client`.
    pub fn shared(client: kube::Client) -> Arc<dyn PodExec> {
        Arc::new(KubeExec { client })
    }
}

impl PodExec for KubeExec {
    fn exec<'a>(
        &'a self,
        ns: &'a str,
        pod: &'a str,
        container: &'a str,
        command: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let ap = AttachParams::default()
                .container(container)
                .stdin(false)
                .stdout(true)
                .stderr(true);
            let mut proc = api
                .exec(pod, command.to_vec(), &ap)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) => {
                        format!("the API server refused the exec: {}", s.message)
                    }
                    e => e.to_string(),
                })?;
            let mut stderr = String::new();
            if let Some(mut err) = proc.stderr() {
                let _ = err.read_to_string(&mut stderr).await;
            }
            if let Some(mut out) = proc.stdout() {
                let mut sink = Vec::new();
                let _ = out.read_to_end(&mut sink).await;
            }
            let status = match proc.take_status() {
                Some(s) => s.await,
                None => None,
            };
            let _ = proc.join().await;
            match status {
                Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
                Some(s) => Err(format!(
                    "exited with {}: {}",
                    s.message.unwrap_or_else(|| "an error".into()),
                    stderr.trim()
                )),
                None => Err(format!("no exit status ({})", stderr.trim())),
            }
        })
    }
}

/// What running the hooks of a phase did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookRun {
    /// Hooks started.
    pub attempted: u64,
    /// Hooks that failed (either mode).
    pub failed: u64,
    /// (namespace, message) of failures with onError Fail: errors of the backup.
    pub errors: Vec<(String, String)>,
    /// (namespace, message) of failures with onError Continue: warnings.
    pub warnings: Vec<(String, String)>,
}

async fn run_one(exec: &dyn PodExec, ns: &str, pod: &str, h: &PlannedHook) -> Result<(), String> {
    match tokio::time::timeout(h.timeout, exec.exec(ns, pod, &h.container, &h.command)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {}",
            lifeboat_types::GoDuration(h.timeout)
        )),
    }
}

/// Runs the `phase` hooks of every pod, pods one after another and each pod's hooks in
/// order. A failure with onError Fail stops that pod's remaining hooks of the phase (as
/// Velero) and is an error; with Continue it is a warning and the next hook runs.
pub async fn run_hooks(exec: &dyn PodExec, pods: &[PodHooks], phase: Phase) -> HookRun {
    let mut run = HookRun::default();
    let which = match phase {
        Phase::Pre => "pre",
        Phase::Post => "post",
    };
    for p in pods {
        let hooks = match phase {
            Phase::Pre => &p.pre,
            Phase::Post => &p.post,
        };
        for h in hooks {
            run.attempted += 1;
            if let Err(e) = run_one(exec, &p.namespace, &p.pod, h).await {
                run.failed += 1;
                let msg = format!(
                    "{which} hook {} ({:?} in container {}) of pod {}/{} failed: {e}",
                    h.source,
                    h.command.join(" "),
                    h.container,
                    p.namespace,
                    p.pod
                );
                match h.on_error {
                    HookErrorMode::Fail => {
                        run.errors.push((p.namespace.clone(), msg));
                        break;
                    }
                    HookErrorMode::Continue => run.warnings.push((p.namespace.clone(), msg)),
                }
            }
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records calls; fails commands that start with "fail", sleeps on "sleep".
    #[derive(Default)]
    struct Scripted {
        calls: Mutex<Vec<String>>,
    }

    impl PodExec for Scripted {
        fn exec<'a>(
            &'a self,
            ns: &'a str,
            pod: &'a str,
            container: &'a str,
            command: &'a [String],
        ) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                self.calls
                    .lock()
                    .unwrap()
                    .push(format!("{ns}/{pod}/{container}: {}", command.join(" ")));
                match command[0].as_str() {
                    "fail" => Err("exit code 1".into()),
                    "sleep" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            })
        }
    }

    fn hook(cmd: &str, on_error: HookErrorMode, timeout: Duration) -> PlannedHook {
        PlannedHook {
            source: "h".into(),
            container: "c".into(),
            command: cmd.split(' ').map(String::from).collect(),
            on_error,
            timeout,
        }
    }

    fn pods(pre: Vec<PlannedHook>) -> Vec<PodHooks> {
        vec![
            PodHooks {
                namespace: "a".into(),
                pod: "p1".into(),
                pre: pre.clone(),
                post: vec![],
            },
            PodHooks {
                namespace: "a".into(),
                pod: "p2".into(),
                pre,
                post: vec![],
            },
        ]
    }

    #[tokio::test]
    async fn hooks_run_in_order_pod_by_pod() {
        let x = Scripted::default();
        let t = Duration::from_secs(5);
        let run = run_hooks(
            &x,
            &pods(vec![
                hook("one", HookErrorMode::Fail, t),
                hook("two", HookErrorMode::Fail, t),
            ]),
            Phase::Pre,
        )
        .await;
        assert_eq!(
            run,
            HookRun {
                attempted: 4,
                ..Default::default()
            }
        );
        assert_eq!(
            *x.calls.lock().unwrap(),
            ["a/p1/c: one", "a/p1/c: two", "a/p2/c: one", "a/p2/c: two"]
        );
        // Nothing for the other phase.
        assert_eq!(run_hooks(&x, &pods(vec![]), Phase::Post).await.attempted, 0);
    }

    #[tokio::test]
    async fn fail_stops_the_pods_hooks_and_continue_goes_on() {
        let x = Scripted::default();
        let t = Duration::from_secs(5);
        let run = run_hooks(
            &x,
            &pods(vec![
                hook("fail now", HookErrorMode::Fail, t),
                hook("after", HookErrorMode::Fail, t),
            ]),
            Phase::Pre,
        )
        .await;
        assert_eq!((run.attempted, run.failed, run.errors.len()), (2, 2, 2));
        assert!(
            run.errors[0].1.contains(
                "pre hook h (\"fail now\" in container c) of pod a/p1 failed: exit code 1"
            ),
            "{:?}",
            run.errors
        );
        assert!(!x.calls.lock().unwrap().iter().any(|c| c.ends_with("after")));

        let x = Scripted::default();
        let run = run_hooks(
            &x,
            &pods(vec![
                hook("fail now", HookErrorMode::Continue, t),
                hook("after", HookErrorMode::Fail, t),
            ]),
            Phase::Pre,
        )
        .await;
        assert_eq!(
            (
                run.attempted,
                run.failed,
                run.errors.len(),
                run.warnings.len()
            ),
            (4, 2, 0, 2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hook_that_hangs_times_out() {
        let x = Scripted::default();
        let run = run_hooks(
            &x,
            &pods(vec![hook(
                "sleep",
                HookErrorMode::Fail,
                Duration::from_secs(30),
            )])[..1],
            Phase::Pre,
        )
        .await;
        assert_eq!(run.failed, 1);
        assert!(
            run.errors[0].1.contains("timed out after 30s"),
            "{:?}",
            run.errors
        );
    }
}
