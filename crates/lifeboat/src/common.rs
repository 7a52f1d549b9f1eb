//! What the commands share: the cluster to connect to, the storage location to open, the
//! user's config, `key=value` lists, and progress bars.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, Result, anyhow, bail};
use lifeboat_engine::cluster::{
    Cluster, ClusterOptions, dev_cluster_kubeconfig, kubeconfig_configured,
};
use lifeboat_engine::storage::{Store, location_from_url};
use lifeboat_types::GoDuration;
use lifeboat_types::api::velero::BackupStorageLocation;

use crate::cli::Cli;
use crate::config::{Config, default_path};

/// The user's locations file.
pub fn load_config() -> Result<Config> {
    Ok(Config::load(&default_path())?)
}

/// Resolves `--storage-location` (a name, or a URL) to a location.
pub fn resolve_location(arg: Option<&str>) -> Result<BackupStorageLocation> {
    match arg {
        Some(s) if s.contains("://") || s.starts_with('/') => Ok(location_from_url(s)?),
        other => Ok(load_config()?.resolve(other)?),
    }
}

/// Opens `--storage-location` (the default location when none).
pub fn open_store(arg: Option<&str>) -> Result<Store> {
    Ok(Store::open(&resolve_location(arg)?)?)
}

/// The cluster: --kubeconfig/--kubecontext, else the usual kubeconfig, else the local dev
/// cluster started by scripts/dev-cluster.sh.
pub async fn connect(cli: &Cli) -> Result<Cluster> {
    Ok(Cluster::connect(&cluster_options(cli)?).await?)
}

/// The kube config of `connect`, for the server's own clients.
pub async fn kube_config(cli: &Cli) -> Result<kube::Config> {
    Ok(Cluster::load_config(&cluster_options(cli)?).await?)
}

fn cluster_options(cli: &Cli) -> Result<ClusterOptions> {
    let mut opts = ClusterOptions {
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.kubecontext.clone(),
    };
    if opts.kubeconfig.is_none()
        && !kubeconfig_configured()
        && std::env::var_os("KUBERNETES_SERVICE_HOST").is_none()
    {
        match dev_cluster_kubeconfig() {
            Some(p) => {
                tracing::info!(
                    "no kubeconfig configured; using the local dev cluster at {}",
                    p.display()
                );
                opts.kubeconfig = Some(p);
            }
            None => bail!(
                "no cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or start the local dev cluster with scripts/dev-cluster.sh up"
            ),
        }
    }
    Ok(opts)
}

/// `batch/v1` when the cluster serves CronJobs there, else `batch/v1beta1` (Kubernetes < 1.21).
pub async fn cronjob_api_version(cli: &Cli) -> Result<String> {
    let cluster = connect(cli).await?;
    let (served, failures) = cluster.discover().await?;
    if let Some(f) = failures.iter().find(|f| f.group == "batch") {
        bail!(
            "discovery of {} failed ({}), so which CronJob version the cluster serves is unknown; make the API server serve it and try again",
            f.path,
            f.answer()
        );
    }
    let v1 = served
        .iter()
        .any(|r| r.group == "batch" && r.plural == "cronjobs" && r.version == "v1");
    Ok(if v1 { "batch/v1" } else { "batch/v1beta1" }.to_owned())
}

/// `k=v` items (`--labels`, `--config`, ...); `what` names them in the error.
pub fn parse_kv(items: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| anyhow!("invalid {what} {s:?}: expected key=value"))
        })
        .collect()
}

/// An optional Go duration flag (`--csi-snapshot-timeout 10m`); `flag` names it in the error.
pub fn parse_duration(flag: &str, s: Option<&str>) -> Result<Option<GoDuration>> {
    s.map(|v| v.parse::<GoDuration>().with_context(|| format!("--{flag}")))
        .transpose()
}

/// A progress bar on a terminal's stderr (none when stderr is not a terminal or `show`
/// is false), drawn with `template`.
pub fn progress_bar(show: bool, template: &str) -> Option<indicatif::ProgressBar> {
    (show && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb
    })
}

/// A progress bar in bytes on a terminal's stderr (none when stderr is not a terminal).
pub fn byte_bar() -> Option<indicatif::ProgressBar> {
    progress_bar(
        true,
        "{spinner} {elapsed_precise} [{bar:30}] {bytes}/{total_bytes}",
    )
}
