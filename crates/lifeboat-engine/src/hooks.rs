//! Running exec hooks in pods through the API server's `pods/exec` subresource: backup
//! pre/post hooks (planned by `lifeboat_types::plan::backup_hooks`) and restore exec hooks (planned by
//! `lifeboat_types::plan::restore_hooks`), which first wait for their container to run.
//!
//! The executor is a trait so that selection, ordering, timeouts and error handling are
//! tested with a scripted executor (unit tests below). The real one ([`KubeExec`]) opens
//! the exec WebSocket; on the test control plane there is no kubelet, so a real exec
//! always ends in the API server's error, which the integration tests check is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use lifeboat_types::api::velero::HookErrorMode;
use lifeboat_types::plan::backup_hooks::{Phase, PlannedHook, PodHooks};
use lifeboat_types::plan::restore_hooks::PlannedRestoreExec;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// Where a container of a pod is, as far as a hook cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Not started yet (or no status reported: no kubelet has it).
    Waiting,
    /// Running; `ready` is its readiness.
    Running {
        /// The container's readiness.
        ready: bool,
    },
    /// The pod ended (Succeeded or Failed): the container will never run the hook. (A
    /// container that terminated in a pod that restarts it is `Waiting`.)
    Terminated,
    /// The pod is gone, or has no such container: the hook is skipped with a warning, as
    /// Velero does.
    Missing(String),
}

/// Runs commands in containers, and tells how a container is.
pub trait PodExec: Send + Sync {
    /// The state of `container` in `ns/pod`; `Err` when it cannot be read now (retried
    /// until the hook's wait ends).
    fn container_state<'a>(
        &'a self,
        ns: &'a str,
        pod: &'a str,
        container: &'a str,
    ) -> BoxFuture<'a, Result<ContainerState, String>>;

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
    fn container_state<'a>(
        &'a self,
        ns: &'a str,
        pod: &'a str,
        container: &'a str,
    ) -> BoxFuture<'a, Result<ContainerState, String>> {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let p = api.get_opt(pod).await.map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                e => e.to_string(),
            })?;
            let Some(p) = p else {
                return Ok(ContainerState::Missing(format!("pod {ns}/{pod} is gone")));
            };
            let declared = p
                .spec
                .as_ref()
                .is_some_and(|s| s.containers.iter().any(|c| c.name == container));
            if !declared {
                return Ok(ContainerState::Missing(format!(
                    "pod {ns}/{pod} has no container {container}"
                )));
            }
            let pod_status = p.status.as_ref();
            if matches!(
                pod_status.and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            ) {
                return Ok(ContainerState::Terminated);
            }
            let status = pod_status
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.name == container));
            Ok(match status.and_then(|c| c.state.as_ref()) {
                Some(st) if st.running.is_some() => ContainerState::Running {
                    ready: status.is_some_and(|c| c.ready),
                },
                // Terminated in a running pod: the kubelet restarts it.
                _ => ContainerState::Waiting,
            })
        })
    }

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

/// The exec hooks of one restored pod.
#[derive(Debug, Clone)]
pub struct RestorePodHooks {
    /// Namespace (the restore's target).
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// When the pod was created: the wait timeouts count from here.
    pub restored_at: Instant,
    /// The hooks, in order.
    pub hooks: Vec<PlannedRestoreExec>,
}

/// How often a container's state is read while a hook waits for it.
const POLL: Duration = Duration::from_secs(1);

/// Why a hook did not get to run.
enum NotRun {
    /// It failed (per its onError).
    Failed(String),
    /// Skipped with a warning (its container is missing), not counted as attempted.
    Skipped(String),
    /// Another hook failed with onError Fail: no more hooks run.
    Cancelled,
}

/// Waits until `container` runs (and is ready, when asked) or `deadline` passes. A read
/// that fails is retried until the deadline; its error is in the final message.
async fn wait_for_container(
    exec: &dyn PodExec,
    ns: &str,
    pod: &str,
    h: &PlannedRestoreExec,
    deadline: Instant,
    cancelled: &AtomicBool,
) -> Result<(), NotRun> {
    let mut last_error = None;
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Err(NotRun::Cancelled);
        }
        let mut what = "running";
        match exec.container_state(ns, pod, &h.container).await {
            Ok(ContainerState::Running { ready }) if ready || !h.wait_for_ready => return Ok(()),
            Ok(ContainerState::Running { .. }) => what = "ready",
            Ok(ContainerState::Waiting) => {}
            Ok(ContainerState::Terminated) => {
                return Err(NotRun::Failed(format!(
                    "pod {ns}/{pod} ended before container {} ran the hook",
                    h.container
                )));
            }
            Ok(ContainerState::Missing(why)) => return Err(NotRun::Skipped(why)),
            Err(e) => last_error = Some(e),
        }
        if Instant::now() + POLL > deadline {
            let mut msg = format!(
                "container {} was not {what} within the wait timeout {}",
                h.container,
                lifeboat_types::GoDuration(h.wait_timeout)
            );
            if let Some(e) = last_error {
                msg.push_str(&format!(" (last error reading the pod: {e})"));
            }
            return Err(NotRun::Failed(msg));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs one pod's hooks in order. `queued` is how long the pod waited for its turn: its
/// wait timeouts are extended by it, so that a pod is not failed for the time other pods'
/// hooks took.
async fn run_restore_pod(
    exec: &dyn PodExec,
    p: &RestorePodHooks,
    queued: Duration,
    cancelled: &AtomicBool,
) -> HookRun {
    let mut run = HookRun::default();
    for h in &p.hooks {
        if cancelled.load(Ordering::Relaxed) {
            break;
        }
        let deadline = p.restored_at + queued + h.wait_timeout;
        let result =
            match wait_for_container(exec, &p.namespace, &p.pod, h, deadline, cancelled).await {
                Ok(()) => {
                    match tokio::time::timeout(
                        h.exec_timeout,
                        exec.exec(&p.namespace, &p.pod, &h.container, &h.command),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(format!(
                            "timed out after {}",
                            lifeboat_types::GoDuration(h.exec_timeout)
                        )),
                    }
                }
                Err(NotRun::Cancelled) => break,
                Err(NotRun::Skipped(why)) => {
                    run.warnings.push((
                        p.namespace.clone(),
                        format!(
                            "restore exec hook {} ({:?}) skipped: {why}",
                            h.source,
                            h.command.join(" ")
                        ),
                    ));
                    continue;
                }
                Err(NotRun::Failed(e)) => Err(e),
            };
        run.attempted += 1;
        if let Err(e) = result {
            run.failed += 1;
            let msg = format!(
                "restore exec hook {} ({:?} in container {}) of pod {}/{} failed: {e}",
                h.source,
                h.command.join(" "),
                h.container,
                p.namespace,
                p.pod
            );
            match h.on_error {
                HookErrorMode::Fail => {
                    run.errors.push((p.namespace.clone(), msg));
                    // As Velero: a Fail stops every hook not yet started, in every pod.
                    cancelled.store(true, Ordering::Relaxed);
                    break;
                }
                HookErrorMode::Continue => run.warnings.push((p.namespace.clone(), msg)),
            }
        }
    }
    run
}

/// Runs the exec hooks of restored pods: up to `concurrency` pods at once, each pod's
/// hooks in order, each after its container runs (Velero's semantics). A failure with
/// onError Fail is an error of the restore and no further hook starts (in any pod); with
/// Continue it is a warning.
pub async fn run_restore_hooks(
    exec: &dyn PodExec,
    pods: &[RestorePodHooks],
    concurrency: usize,
) -> HookRun {
    let began = Instant::now();
    let cancelled = AtomicBool::new(false);
    let cancelled = &cancelled;
    // Boxed futures in a Vec, not a closure in the stream's type: that keeps the caller's
    // future provably Send (the server runs restores in a reconcile).
    let futures: Vec<BoxFuture<'_, HookRun>> = pods
        .iter()
        .map(|p| -> BoxFuture<'_, HookRun> {
            Box::pin(async move { run_restore_pod(exec, p, began.elapsed(), cancelled).await })
        })
        .collect();
    let runs: Vec<HookRun> = stream::iter(futures)
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut total = HookRun::default();
    for r in runs {
        total.attempted += r.attempted;
        total.failed += r.failed;
        total.errors.extend(r.errors);
        total.warnings.extend(r.warnings);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Records calls; fails commands that start with "fail", sleeps on "sleep". Containers
    /// run (ready) unless `states` says otherwise: a list of states per
    /// `ns/pod/container`, one taken per read, the last one kept.
    #[derive(Default)]
    struct Scripted {
        calls: Mutex<Vec<String>>,
        states: Mutex<HashMap<String, Vec<Result<ContainerState, String>>>>,
        reads: Mutex<Vec<(String, Instant)>>,
    }

    impl Scripted {
        /// What reads of `ns/pod/container` answer, in turn (the last one repeats).
        fn script(&self, key: &str, states: Vec<Result<ContainerState, String>>) {
            self.states.lock().unwrap().insert(key.into(), states);
        }
    }

    impl PodExec for Scripted {
        fn container_state<'a>(
            &'a self,
            ns: &'a str,
            pod: &'a str,
            container: &'a str,
        ) -> BoxFuture<'a, Result<ContainerState, String>> {
            Box::pin(async move {
                let key = format!("{ns}/{pod}/{container}");
                self.reads
                    .lock()
                    .unwrap()
                    .push((key.clone(), Instant::now()));
                let mut states = self.states.lock().unwrap();
                match states.get_mut(&key) {
                    Some(list) if list.len() > 1 => list.remove(0),
                    Some(list) => list[0].clone(),
                    None => Ok(ContainerState::Running { ready: true }),
                }
            })
        }

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

    fn rhook(
        cmd: &str,
        container: &str,
        on_error: HookErrorMode,
        wait_s: u64,
        ready: bool,
    ) -> PlannedRestoreExec {
        PlannedRestoreExec {
            source: "h".into(),
            container: container.into(),
            command: cmd.split(' ').map(String::from).collect(),
            on_error,
            exec_timeout: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(wait_s),
            wait_for_ready: ready,
        }
    }

    fn rpod(pod: &str, hooks: Vec<PlannedRestoreExec>) -> RestorePodHooks {
        RestorePodHooks {
            namespace: "a".into(),
            pod: pod.into(),
            restored_at: Instant::now(),
            hooks,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn restore_hooks_wait_for_their_container_then_run_in_order() {
        use ContainerState::*;
        let x = Scripted::default();
        x.script(
            "a/p1/db",
            vec![
                Ok(Waiting),
                Ok(Waiting),
                Ok(Running { ready: false }),
                Ok(Running { ready: true }),
            ],
        );
        let start = Instant::now();
        let run = run_restore_hooks(
            &x,
            &[rpod(
                "p1",
                vec![
                    rhook("first", "db", HookErrorMode::Fail, 60, true),
                    rhook("second", "db", HookErrorMode::Fail, 60, true),
                ],
            )],
            4,
        )
        .await;
        assert_eq!(
            run,
            HookRun {
                attempted: 2,
                ..Default::default()
            }
        );
        assert_eq!(
            *x.calls.lock().unwrap(),
            ["a/p1/db: first", "a/p1/db: second"]
        );
        // Three polls a second apart before it was ready, then one read for the second hook.
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
        assert_eq!(x.reads.lock().unwrap().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn running_is_enough_unless_wait_for_ready() {
        use ContainerState::*;
        let x = Scripted::default();
        x.script("a/p1/db", vec![Ok(Running { ready: false })]);
        let run = run_restore_hooks(
            &x,
            &[rpod(
                "p1",
                vec![rhook("go", "db", HookErrorMode::Fail, 5, false)],
            )],
            1,
        )
        .await;
        assert_eq!(run.failed, 0);
        let run = run_restore_hooks(
            &x,
            &[rpod(
                "p1",
                vec![rhook("go", "db", HookErrorMode::Fail, 5, true)],
            )],
            1,
        )
        .await;
        assert_eq!(run.failed, 1);
        assert!(
            run.errors[0]
                .1
                .ends_with("failed: container db was not ready within the wait timeout 5s"),
            "{:?}",
            run.errors
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_that_never_runs_fails_its_hooks_per_on_error() {
        use ContainerState::*;
        let x = Scripted::default();
        x.script("a/p1/db", vec![Ok(Waiting)]);
        x.script("a/p2/db", vec![Ok(Terminated)]);
        let start = Instant::now();
        let run = run_restore_hooks(
            &x,
            &[
                rpod(
                    "p1",
                    vec![
                        rhook("one", "db", HookErrorMode::Continue, 10, false),
                        rhook("two", "db", HookErrorMode::Continue, 10, false),
                    ],
                ),
                rpod(
                    "p2",
                    vec![rhook("x", "db", HookErrorMode::Continue, 10, false)],
                ),
            ],
            2,
        )
        .await;
        // The wait counts from the pod's restore, not from each hook's turn.
        assert!(Instant::now() - start <= Duration::from_secs(10));
        assert!(x.calls.lock().unwrap().is_empty());
        assert_eq!((run.attempted, run.failed), (3, 3));
        assert!(run.errors.is_empty());
        let w: Vec<&str> = run.warnings.iter().map(|w| w.1.as_str()).collect();
        assert!(w[0].contains("restore exec hook h (\"one\" in container db) of pod a/p1 failed: container db was not running within the wait timeout 10s"), "{w:?}");
        assert!(
            w.iter().any(|w| w
                .ends_with("of pod a/p2 failed: pod a/p2 ended before container db ran the hook")),
            "{w:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fail_stops_every_hook_not_yet_started_in_every_pod() {
        use ContainerState::*;
        let x = Scripted::default();
        x.script("a/p1/db", vec![Ok(Terminated)]);
        x.script("a/p2/db", vec![Ok(Waiting)]);
        let start = Instant::now();
        let run = run_restore_hooks(
            &x,
            &[
                rpod("p1", vec![rhook("x", "db", HookErrorMode::Fail, 60, false)]),
                rpod(
                    "p2",
                    vec![
                        rhook("y", "db", HookErrorMode::Continue, 60, false),
                        rhook("z", "db", HookErrorMode::Continue, 60, false),
                    ],
                ),
            ],
            4,
        )
        .await;
        assert!(
            Instant::now() - start <= Duration::from_secs(2),
            "it waited"
        );
        assert_eq!((run.attempted, run.failed, run.errors.len()), (1, 1, 1));
        assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_container_skips_its_hook_and_read_errors_are_retried() {
        use ContainerState::*;
        let x = Scripted::default();
        x.script(
            "a/p1/gone",
            vec![Ok(Missing("pod a/p1 has no container gone".into()))],
        );
        x.script(
            "a/p2/db",
            vec![
                Err("the server is currently unable to handle the request".into()),
                Err("etcdserver: request timed out".into()),
                Ok(Running { ready: true }),
            ],
        );
        let run = run_restore_hooks(
            &x,
            &[
                rpod(
                    "p1",
                    vec![rhook("x", "gone", HookErrorMode::Fail, 60, false)],
                ),
                rpod("p2", vec![rhook("y", "db", HookErrorMode::Fail, 60, false)]),
            ],
            4,
        )
        .await;
        assert_eq!((run.attempted, run.failed), (1, 0), "{run:?}");
        assert_eq!(run.warnings.len(), 1);
        assert!(
            run.warnings[0]
                .1
                .ends_with("skipped: pod a/p1 has no container gone"),
            "{:?}",
            run.warnings
        );
        assert_eq!(*x.calls.lock().unwrap(), ["a/p2/db: y"]);

        // Errors until the deadline are named in the failure.
        let x = Scripted::default();
        x.script("a/p1/db", vec![Err("connection refused".into())]);
        let run = run_restore_hooks(
            &x,
            &[rpod(
                "p1",
                vec![rhook("x", "db", HookErrorMode::Fail, 3, false)],
            )],
            1,
        )
        .await;
        assert!(
            run.errors[0].1.ends_with(
                "was not running within the wait timeout 3s (last error reading the pod: connection refused)"
            ),
            "{:?}",
            run.errors
        );
    }

    #[tokio::test(start_paused = true)]
    async fn time_queued_behind_other_pods_does_not_count_against_the_wait() {
        use ContainerState::*;
        let x = Scripted::default();
        // p1's container runs after 4 s; p2's after 3 more s of its own wait, at 7 s:
        // beyond its 5 s wait timeout from its restore, but it queued 4 s behind p1.
        x.script(
            "a/p1/db",
            vec![
                Ok(Waiting),
                Ok(Waiting),
                Ok(Waiting),
                Ok(Waiting),
                Ok(Running { ready: true }),
            ],
        );
        x.script(
            "a/p2/db",
            vec![
                Ok(Waiting),
                Ok(Waiting),
                Ok(Waiting),
                Ok(Running { ready: true }),
            ],
        );
        let run = run_restore_hooks(
            &x,
            &[
                rpod("p1", vec![rhook("x", "db", HookErrorMode::Fail, 60, false)]),
                rpod("p2", vec![rhook("y", "db", HookErrorMode::Fail, 5, false)]),
            ],
            1,
        )
        .await;
        assert_eq!((run.attempted, run.failed), (2, 0), "{run:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_restore_hook_that_hangs_times_out_and_continue_goes_on() {
        let x = Scripted::default();
        let run = run_restore_hooks(
            &x,
            &[rpod(
                "p1",
                vec![
                    rhook("sleep", "db", HookErrorMode::Continue, 5, false),
                    rhook("after", "db", HookErrorMode::Fail, 5, false),
                ],
            )],
            1,
        )
        .await;
        assert_eq!((run.attempted, run.failed), (2, 1));
        assert!(
            run.warnings[0].1.ends_with("timed out after 30s"),
            "{:?}",
            run.warnings
        );
        assert_eq!(x.calls.lock().unwrap().last().unwrap(), "a/p1/db: after");
    }
}
