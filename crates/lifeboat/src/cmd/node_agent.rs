//! `node-agent` (the DaemonSet's process) and `restore-wait` (the init container a
//! restore puts into pods whose volumes it restores).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use lifeboat_types::api::pod_volume;

use crate::cli::Cli;
use crate::common::kube_config;
use crate::exit::Exit;

/// `node-agent` flags.
#[derive(Args, Debug)]
pub struct NodeAgentArgs {
    /// This node's name (the DaemonSet gives it from spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// The kubelet's root directory as mounted here: its `pods` directory holds the
    /// volumes read and written.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub kubelet_root_dir: PathBuf,
}

/// `restore-wait` flags.
#[derive(Args, Debug)]
pub struct RestoreWaitArgs {
    /// The restore whose markers to wait for.
    #[arg(long)]
    pub restore: String,
    /// How long to wait (0s: without end, as Velero's restore helper).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// The restored volumes, as mounted in this container.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

/// `node-agent`.
pub async fn node_agent(cli: &Cli, a: &NodeAgentArgs) -> Result<Exit> {
    if a.node_name.is_empty() {
        bail!("--node-name (or NODE_NAME) is empty: the agent must know its node");
    }
    let config = kube_config(cli).await?;
    lifeboat_node::run(
        config,
        lifeboat_node::AgentOptions {
            namespace: cli.namespace.clone(),
            node: a.node_name.clone(),
            kubelet_root: a.kubelet_root_dir.clone(),
        },
        crate::cmd::server::shutdown_signal(),
    )
    .await?;
    Ok(Exit::Ok)
}

/// What one restored volume's markers say.
#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Waiting,
    Done,
    Failed(String),
}

fn marker(dir: &Path, restore: &str) -> Marker {
    let failed = dir.join(pod_volume::marker(restore, true));
    if let Ok(why) = std::fs::read_to_string(&failed) {
        return Marker::Failed(why);
    }
    if dir.join(pod_volume::marker(restore, false)).is_file() {
        Marker::Done
    } else {
        Marker::Waiting
    }
}

/// `restore-wait`: returns once the node agent wrote every volume's files (each one's
/// marker), removing the markers; fails naming a volume whose restore failed.
pub async fn restore_wait(a: &RestoreWaitArgs) -> Result<Exit> {
    let limit = a
        .timeout
        .parse::<lifeboat_types::GoDuration>()
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?
        .0;
    let start = Instant::now();
    let mut told = false;
    loop {
        let states: Vec<(&PathBuf, Marker)> =
            a.dirs.iter().map(|d| (d, marker(d, &a.restore))).collect();
        if let Some((d, Marker::Failed(why))) =
            states.iter().find(|(_, m)| matches!(m, Marker::Failed(_)))
        {
            eprintln!(
                "error: the files of volume {} were not restored by restore {}: {why}",
                d.display(),
                a.restore
            );
            return Ok(Exit::Error);
        }
        let waiting: Vec<String> = states
            .iter()
            .filter(|(_, m)| *m == Marker::Waiting)
            .map(|(d, _)| d.display().to_string())
            .collect();
        if waiting.is_empty() {
            break;
        }
        if !told {
            println!(
                "waiting for the node agent to restore {} (restore {})",
                waiting.join(", "),
                a.restore
            );
            told = true;
        }
        if !limit.is_zero() && start.elapsed() > limit {
            eprintln!(
                "error: {} not restored within {}",
                waiting.join(", "),
                a.timeout
            );
            return Ok(Exit::Error);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for d in &a.dirs {
        let m = d.join(pod_volume::marker(&a.restore, false));
        if let Err(e) = std::fs::remove_file(&m) {
            eprintln!("warning: cannot remove {}: {e}", m.display());
        }
        // Removed only when empty (another restore's marker may be there).
        let _ = std::fs::remove_dir(d.join(pod_volume::MARKER_DIR));
    }
    println!("restore {}: {} volume(s) restored", a.restore, a.dirs.len());
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn restore_wait_ends_on_every_marker_and_removes_them() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join(".lifeboat")).unwrap();
            std::fs::write(d.join(".lifeboat/r1"), "").unwrap();
        }
        // Another restore's marker stays.
        std::fs::write(b.path().join(".lifeboat/r0"), "").unwrap();
        let args = RestoreWaitArgs {
            restore: "r1".into(),
            timeout: "5s".into(),
            dirs: vec![a.path().into(), b.path().into()],
        };
        assert_eq!(restore_wait(&args).await.unwrap(), Exit::Ok);
        assert!(!a.path().join(".lifeboat").exists());
        assert!(b.path().join(".lifeboat/r0").exists());
        assert!(!b.path().join(".lifeboat/r1").exists());
    }

    #[tokio::test]
    async fn restore_wait_fails_on_a_failed_volume_and_times_out_on_a_missing_one() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join(".lifeboat")).unwrap();
        std::fs::write(
            a.path().join(".lifeboat/r1.failed"),
            "2 file(s) could not be restored",
        )
        .unwrap();
        let args = RestoreWaitArgs {
            restore: "r1".into(),
            timeout: "5s".into(),
            dirs: vec![a.path().into()],
        };
        assert_eq!(restore_wait(&args).await.unwrap(), Exit::Error);
        let empty = tempfile::tempdir().unwrap();
        let args = RestoreWaitArgs {
            restore: "r1".into(),
            timeout: "1s".into(),
            dirs: vec![empty.path().into()],
        };
        assert_eq!(restore_wait(&args).await.unwrap(), Exit::Error);
    }
}
