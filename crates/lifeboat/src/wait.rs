//! `backup wait` and `restore wait`: poll until a run reaches a terminal phase
//! (Completed, PartiallyFailed, Failed, FailedValidation) or the timeout passes. What is
//! polled — the storage location (runs of the CLI) or the cluster's lifeboat.dev objects
//! (runs of the server) — is the caller's; this module keeps the loop and the exit codes.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use lifeboat_types::GoDuration;
use lifeboat_types::api::velero::{BackupPhase, RestorePhase};

use crate::exit::Exit;

/// How often the phase is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What one read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen<P> {
    /// Not there (yet): a run of the CLI is stored only when it ends.
    Absent,
    /// The run's phase now.
    Phase(P),
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited<P> {
    /// The run ended in this phase.
    Ended(P),
    /// The timeout passed; the last phase read, if the run was seen at all.
    TimedOut(Option<P>),
}

/// A phase a wait can end on.
pub trait Phase: Copy + Display {
    /// Whether the run will not change any more.
    fn is_terminal(self) -> bool;
    /// The exit code of a run that ended in this phase.
    fn exit(self) -> Exit;
}

impl Phase for BackupPhase {
    fn is_terminal(self) -> bool {
        BackupPhase::is_terminal(self)
    }
    fn exit(self) -> Exit {
        Exit::of_backup(self)
    }
}

impl Phase for RestorePhase {
    fn is_terminal(self) -> bool {
        matches!(
            self,
            RestorePhase::Completed
                | RestorePhase::PartiallyFailed
                | RestorePhase::Failed
                | RestorePhase::FailedValidation
        )
    }
    fn exit(self) -> Exit {
        Exit::of_restore(self)
    }
}

/// The exit code of a wait: the run's own (0, 1 or 3), or 4 when the wait timed out.
pub fn exit_of<P: Phase>(w: Waited<P>) -> Exit {
    match w {
        Waited::Ended(p) => p.exit(),
        Waited::TimedOut(_) => Exit::TimedOut,
    }
}

/// `--timeout`: a Go duration; `0s` waits without limit.
pub fn parse_timeout(s: &str) -> Result<Option<Duration>> {
    let d = s
        .parse::<GoDuration>()
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?
        .0;
    Ok((!d.is_zero()).then_some(d))
}

/// Prints how the wait for `kind` (`Backup`, `Restore`) `name` in `place` ended.
pub fn report<P: Phase>(kind: &str, name: &str, place: &str, timeout: &str, w: Waited<P>) {
    match w {
        Waited::Ended(p) => println!("{kind} {name:?}: {p}."),
        Waited::TimedOut(Some(p)) => println!(
            "{kind} {name:?} is still {p} after {timeout}; stopped waiting (it goes on). Wait longer with --timeout."
        ),
        Waited::TimedOut(None) => println!(
            "{kind} {name:?} is not in {place} after {timeout}: not started, still running elsewhere, or another name (see `lifeboat {} get`).",
            kind.to_ascii_lowercase()
        ),
    }
}

/// Waits for each run of `names` in turn (`kind`: `Backup`, `Restore`), reading its phase
/// with `read(name)` every [`POLL_EVERY`]; reports how each wait ended (`place`: where the
/// runs are read) and returns the largest exit code. `on_absent(name)` is called the first
/// time a run is not found.
pub async fn each<P, F, Fut>(
    kind: &str,
    names: &[String],
    place: &str,
    timeout: Option<Duration>,
    timeout_flag: &str,
    mut read: F,
    on_absent: impl Fn(&str),
) -> Result<Exit>
where
    P: Phase,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Seen<P>>>,
{
    let mut code = Exit::Ok;
    for name in names {
        let w = until_terminal(
            timeout,
            POLL_EVERY,
            || read(name.clone()),
            || on_absent(name),
        )
        .await?;
        report(kind, name, place, timeout_flag, w);
        code = code.max(exit_of(w));
    }
    Ok(code)
}

/// Follows a run of the cluster's server (`--wait` of a create through the cluster): reads
/// it with `read` every [`POLL_EVERY`] until its phase is terminal, drawing its progress
/// (`progress`: done and total) on a bar drawn with `template`; returns the last read.
pub async fn follow<T, P, F, Fut>(
    template: &str,
    mut read: F,
    phase: impl Fn(&T) -> P,
    progress: impl Fn(&T) -> Option<(u64, u64)>,
) -> Result<T>
where
    P: Phase,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let bar = crate::common::progress_bar(true, template);
    let last = std::cell::RefCell::new(None);
    until_terminal(
        None,
        POLL_EVERY,
        || {
            let next = read();
            async {
                let run = next.await?;
                let p = phase(&run);
                if let (Some(pb), Some((done, total))) = (&bar, progress(&run)) {
                    pb.set_length(total);
                    pb.set_position(done);
                }
                *last.borrow_mut() = Some(run);
                Ok(Seen::Phase(p))
            }
        },
        || {},
    )
    .await?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    last.into_inner()
        .ok_or_else(|| anyhow::anyhow!("the run was never read"))
}

/// Reads the phase by `poll` every `every` until it is terminal or `timeout` passed.
/// `on_absent` is called once, the first time the run is not found.
pub async fn until_terminal<P, F, Fut>(
    timeout: Option<Duration>,
    every: Duration,
    mut poll: F,
    mut on_absent: impl FnMut(),
) -> Result<Waited<P>>
where
    P: Phase,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Seen<P>>>,
{
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last = None;
    let mut told = false;
    loop {
        match poll().await? {
            Seen::Phase(p) if p.is_terminal() => return Ok(Waited::Ended(p)),
            Seen::Phase(p) => last = Some(p),
            Seen::Absent => {
                if !told {
                    on_absent();
                    told = true;
                }
            }
        }
        let now = tokio::time::Instant::now();
        let pause = match deadline {
            Some(d) if now >= d => return Ok(Waited::TimedOut(last)),
            Some(d) => every.min(d - now),
            None => every,
        };
        tokio::time::sleep(pause).await;
    }
}

/// `restore create --wait-ready`: waits until every workload restore `restore` made
/// (Deployments, StatefulSets, DaemonSets labelled `velero.io/restore-name`) serves again
/// (`lifeboat_engine::ready`), printing each with the time it took from the end of the
/// restore. Returns Ok when all are ready, TimedOut (naming the ones that are not, and
/// why) after `timeout`.
pub async fn workloads_ready(
    cluster: &lifeboat_engine::cluster::Cluster,
    restore: &str,
    timeout: Duration,
) -> Result<Exit> {
    use lifeboat_engine::ready::{ReadyEvent, ReadyOutcome, wait_workloads};

    let selector = format!("velero.io/restore-name={restore}");
    let outcome = wait_workloads(cluster, &selector, timeout, |e| match e {
        ReadyEvent::Waiting(n) => println!(
            "Waiting for {n} restored workload(s) to be ready (at most {})...",
            GoDuration(timeout)
        ),
        ReadyEvent::Ready(key, took) => {
            println!(
                "  {key}: ready {:.1}s after the restore",
                took.as_secs_f64()
            )
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("listing the workloads restore {restore} made: {e}"))?;
    match outcome {
        ReadyOutcome::AllReady(ready) if ready.is_empty() => {
            println!(
                "No workloads (Deployments, StatefulSets, DaemonSets) were restored: nothing to wait for."
            );
            Ok(Exit::Ok)
        }
        ReadyOutcome::AllReady(ready) => {
            println!("All {} restored workload(s) ready.", ready.len());
            Ok(Exit::Ok)
        }
        ReadyOutcome::TimedOut(waiting) => {
            eprintln!(
                "error: {} restored workload(s) not ready {} after the restore:",
                waiting.len(),
                GoDuration(timeout)
            );
            for (k, why) in &waiting {
                eprintln!("  {k}: {why}");
            }
            Ok(Exit::TimedOut)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::sync::Mutex;

    #[rstest]
    #[case(Waited::Ended(BackupPhase::Completed), Exit::Ok)]
    #[case(Waited::Ended(BackupPhase::PartiallyFailed), Exit::PartiallyFailed)]
    #[case(Waited::Ended(BackupPhase::Failed), Exit::Error)]
    #[case(Waited::Ended(BackupPhase::FailedValidation), Exit::Error)]
    #[case(Waited::TimedOut(Some(BackupPhase::InProgress)), Exit::TimedOut)]
    #[case(Waited::TimedOut(None), Exit::TimedOut)]
    fn backup_wait_exits(#[case] w: Waited<BackupPhase>, #[case] exit: Exit) {
        assert_eq!(exit_of(w), exit);
    }

    #[rstest]
    #[case(Waited::Ended(RestorePhase::Completed), Exit::Ok)]
    #[case(Waited::Ended(RestorePhase::PartiallyFailed), Exit::PartiallyFailed)]
    #[case(Waited::Ended(RestorePhase::Failed), Exit::Error)]
    #[case(Waited::Ended(RestorePhase::FailedValidation), Exit::Error)]
    #[case(Waited::TimedOut(Some(RestorePhase::InProgress)), Exit::TimedOut)]
    fn restore_wait_exits(#[case] w: Waited<RestorePhase>, #[case] exit: Exit) {
        assert_eq!(exit_of(w), exit);
    }

    #[rstest]
    #[case(RestorePhase::New, false)]
    #[case(RestorePhase::InProgress, false)]
    #[case(RestorePhase::WaitingForPluginOperations, false)]
    #[case(RestorePhase::Finalizing, false)]
    #[case(RestorePhase::FinalizingPartiallyFailed, false)]
    #[case(RestorePhase::Completed, true)]
    #[case(RestorePhase::PartiallyFailed, true)]
    #[case(RestorePhase::Failed, true)]
    #[case(RestorePhase::FailedValidation, true)]
    fn terminal_restore_phases(#[case] p: RestorePhase, #[case] terminal: bool) {
        assert_eq!(Phase::is_terminal(p), terminal);
    }

    #[rstest]
    #[case("4h", Some(Duration::from_secs(4 * 3600)))]
    #[case("90s", Some(Duration::from_secs(90)))]
    #[case("0s", None)]
    fn timeouts(#[case] s: &str, #[case] want: Option<Duration>) {
        assert_eq!(parse_timeout(s).unwrap(), want);
    }

    #[test]
    fn a_bad_timeout_names_the_flag() {
        let e = parse_timeout("soon").unwrap_err().to_string();
        assert!(e.starts_with("--timeout: "), "{e}");
    }

    /// Absent, then running, then ended: the wait ends with the run's phase and says
    /// once that the run was not there.
    #[tokio::test(start_paused = true)]
    async fn waits_through_absent_and_running_to_the_end() {
        let seq = Mutex::new(vec![
            Seen::Phase(BackupPhase::Completed),
            Seen::Phase(BackupPhase::InProgress),
            Seen::Absent,
            Seen::Absent,
        ]);
        let mut absent = 0;
        let w = until_terminal(
            Some(Duration::from_secs(60)),
            POLL_EVERY,
            || {
                let next = seq.lock().unwrap().pop().unwrap();
                async move { Ok(next) }
            },
            || absent += 1,
        )
        .await
        .unwrap();
        assert_eq!(w, Waited::Ended(BackupPhase::Completed));
        assert_eq!(absent, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_timeout_with_the_last_phase() {
        let start = tokio::time::Instant::now();
        let w = until_terminal(
            Some(Duration::from_millis(2500)),
            POLL_EVERY,
            || async { Ok(Seen::Phase(RestorePhase::InProgress)) },
            || {},
        )
        .await
        .unwrap();
        assert_eq!(w, Waited::TimedOut(Some(RestorePhase::InProgress)));
        assert_eq!(start.elapsed(), Duration::from_millis(2500));
    }
}
