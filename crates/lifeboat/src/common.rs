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
        Some(s) if is_location_url(s) => Ok(location_from_url(s)?),
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
    if let Some(c) = CONNECTED.get() {
        return Ok(c.clone());
    }
    let c = Cluster::connect(&cluster_options(cli)?).await?;
    Ok(CONNECTED.get_or_init(|| c).clone())
}

/// The command's one connection to its cluster (the flags do not change while it runs):
/// `mode`'s question and the verb's work share it.
static CONNECTED: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();

/// Where a verb works (`types::rules::cli_mode`): here, or through the cluster's server.
pub enum Mode {
    /// On this machine, with the storage locations of the user's config file.
    Local,
    /// Through the lifeboat.dev objects of the cluster, which its server runs.
    Cluster(Box<Server>),
}

/// The lifeboat server of a cluster, as the CLI reaches it.
pub struct Server {
    /// The cluster.
    pub cluster: Cluster,
    /// The namespace of its objects (`-n`).
    pub ns: String,
    /// How to name it in messages: `the lifeboat server in namespace velero (context x)`.
    pub label: String,
    /// A private directory for the credentials of locations opened from here, removed
    /// when the command ends.
    secrets: tempfile::TempDir,
}

impl Server {
    /// Opens the storage location `name` (the default when `None`) as the server does: its
    /// BackupStorageLocation object, with the credentials of the Secret it names (which
    /// the user must be allowed to read).
    pub async fn location(&self, name: Option<&str>) -> Result<(Store, BackupStorageLocation)> {
        lifeboat_engine::location_object::open(
            self.cluster.client(),
            &self.ns,
            name,
            self.secrets.path(),
        )
        .await
        .with_context(|| {
            format!(
                "cannot read storage location {} of {} from here",
                name.map(|n| format!("{n:?}"))
                    .unwrap_or_else(|| "(the default)".into()),
                self.label
            )
        })
    }

    /// The storage location where the server stores backup `name` (its Backup object
    /// names it), opened.
    pub async fn backup_store(&self, name: &str) -> Result<(Store, BackupStorageLocation)> {
        let b: lifeboat_types::api::crd::BackupResource =
            lifeboat_engine::objects::get(&self.cluster, &self.ns, "backup", name).await?;
        self.location(b.spec.storage_location.as_deref()).await
    }
}

/// Decides where a verb works (`--mode`, and whether lifeboat is installed in the kube
/// context's cluster); `location` is the verb's `--storage-location`. A warning of the
/// decision is printed on stderr.
///
/// `server` is a verb's own `--server` flag (older than `--mode`): it means
/// `--mode cluster`.
pub async fn mode(cli: &Cli, location: Option<&str>, server: bool) -> Result<Mode> {
    use lifeboat_types::rules::cli_mode::{Installed, Observed, Requested, Step, decide};
    let mut o = Observed {
        requested: if server { Requested::Cluster } else { cli.mode },
        cluster: cluster_source(cli),
        location_is_url: location.is_some_and(is_location_url),
        installed: None,
    };
    let step = match decide(&o) {
        Step::Ask => {
            let asked = async {
                let cluster = connect(cli).await?;
                let installed = tokio::time::timeout(
                    std::time::Duration::from_secs(20),
                    lifeboat_engine::objects::lifeboat_installed(&cluster),
                )
                .await
                .map_err(|_| anyhow!("the API server did not answer within 20s"))??;
                anyhow::Ok((cluster, installed))
            }
            .await;
            let why;
            let (cluster, answer) = match asked {
                Ok((c, true)) => (Some(c), Installed::Yes),
                Ok((_, false)) => (None, Installed::No),
                Err(e) => {
                    why = format!("{e:#}");
                    (None, Installed::Unknown(&why))
                }
            };
            o.installed = Some(answer);
            match (decide(&o), cluster) {
                (Step::Cluster, Some(cluster)) => {
                    let context = match &cli.kubecontext {
                        Some(c) => format!("context {c:?}"),
                        None => "the current kube context".to_owned(),
                    };
                    return Ok(Mode::Cluster(Box::new(Server {
                        cluster,
                        label: format!(
                            "the lifeboat server in namespace {} ({context})",
                            cli.namespace
                        ),
                        ns: cli.namespace.clone(),
                        secrets: tempfile::tempdir()
                            .context("cannot create a private directory for credentials")?,
                    })));
                }
                (step, _) => step,
            }
        }
        step => step,
    };
    match step {
        Step::Local { warning } => {
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            Ok(Mode::Local)
        }
        Step::Refuse(m) => bail!("{m}"),
        Step::Ask | Step::Cluster => bail!("internal error: the CLI mode was not decided"),
    }
}

/// A `--storage-location` that is a URL or a path, opened here (not a location's name).
pub fn is_location_url(s: &str) -> bool {
    s.contains("://") || s.starts_with('/')
}

/// The kube config of `connect`, for the server's own clients.
pub async fn kube_config(cli: &Cli) -> Result<kube::Config> {
    Ok(Cluster::load_config(&cluster_options(cli)?).await?)
}

/// Which cluster `connect` would use (for `mode`).
fn cluster_source(cli: &Cli) -> lifeboat_types::rules::cli_mode::ClusterSource {
    use lifeboat_types::rules::cli_mode::ClusterSource as Source;
    if cli.kubeconfig.is_some()
        || kubeconfig_configured()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
    {
        Source::Configured
    } else if dev_cluster_kubeconfig().is_some() {
        Source::DevFallback
    } else {
        Source::None
    }
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
