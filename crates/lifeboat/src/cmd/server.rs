//! `install`, `uninstall` and `server` (the in-cluster mode).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use lifeboat_server::{self as server, ServerOptions};
use lifeboat_types::GoDuration;
use lifeboat_types::manifests::install::{
    InstallOptions, LocationOptions, NodeAgentOptions, REPO_KEY_KEY, REPO_KEY_SECRET,
    SnapshotLocationOptions, manifests,
};
use lifeboat_types::manifests::rbac::{self, ApiScope};
use serde_json::json;

use crate::cli::{Cli, Output, parse_opt_bool};
use crate::common::{connect, kube_config, parse_kv};
use crate::confirm::confirm;
use crate::exit::Exit;

/// `install` flags (Velero's names).
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// lifeboat's container image.
    #[arg(long, default_value = "lifeboat:latest")]
    pub image: String,
    /// Server replicas (one is active at a time; the others wait on a Lease).
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// Bind only the read role: the server can back up but not restore.
    #[arg(long)]
    pub backup_only: bool,
    /// Do not bind the exec-hooks role (pods/exec): backup and restore exec hooks are then
    /// refused by the API server.
    #[arg(long)]
    pub no_exec_hooks: bool,
    /// Provider of a default storage location to create (aws, gcp, azure, alibabacloud, file).
    #[arg(long, requires = "bucket")]
    pub provider: Option<String>,
    /// Its bucket.
    #[arg(long, requires = "provider")]
    pub bucket: Option<String>,
    /// Its prefix.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Its provider config: key=value,...
    #[arg(long, value_delimiter = ',')]
    pub backup_location_config: Vec<String>,
    /// A credentials file, stored as Secret cloud-credentials (key cloud).
    #[arg(long, conflicts_with = "no_secret")]
    pub secret_file: Option<std::path::PathBuf>,
    /// Create no credentials Secret (the provider's environment or workload identity
    /// gives access). Accepted as Velero's confirmation; lifeboat does not require it.
    #[arg(long)]
    pub no_secret: bool,
    /// Create no default storage location (Velero's confirmation when --provider and
    /// --bucket are not given; lifeboat does not require it).
    #[arg(long, conflicts_with_all = ["provider", "bucket"])]
    pub no_default_backup_location: bool,
    /// Velero plugin images. Accepted and ignored with a warning: lifeboat's providers
    /// (aws, gcp, azure, alibabacloud, file) are built in.
    #[arg(long, value_delimiter = ',')]
    pub plugins: Vec<String>,
    /// Create volume snapshot location `default` (Velero's default: true). Not supported
    /// yet: with a provider, the location is recorded (warned); no volume is snapshotted.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub use_volume_snapshots: Option<bool>,
    /// Config of volume snapshot location `default`: key=value,... Not supported yet:
    /// recorded with a warning.
    #[arg(long, value_delimiter = ',')]
    pub snapshot_location_config: Vec<String>,
    /// Install the node agent: a DaemonSet that copies pod volumes' files into
    /// restic-format repositories (backups choose volumes with Velero's annotations or
    /// --default-volumes-to-fs-backup; docs/volumes.md).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub use_node_agent: Option<bool>,
    /// The kubelet's root directory on the nodes (the node agent reads `<dir>/pods`).
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub kubelet_root_dir: String,
    /// A file holding the key of the volume data repositories, stored as Secret
    /// lifeboat-repo-credentials for the node agent. There is no default key: without one
    /// (here or in that Secret) volume backups fail, saying so. Keep a copy: without the
    /// key no snapshot can be read.
    #[arg(long)]
    pub repo_password_file: Option<std::path::PathBuf>,
    /// Copy every pod volume's files (the node agent) in backups that do not say
    /// (their --default-volumes-to-fs-backup, or a Schedule's template): the installed
    /// server's --default-volumes-to-fs-backup.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// How long the node agents may take for the volumes of one backup or restore (the
    /// installed server's --fs-backup-timeout; default 4h).
    #[arg(long)]
    pub fs_backup_timeout: Option<String>,
    /// Uploader of pod volume data: kopia or restic. Not supported yet: warned.
    #[arg(long, value_parser = ["kopia", "restic"])]
    pub uploader_type: Option<String>,
    /// Wait until the server's Deployment is available (at most --wait-timeout).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "5m", requires = "wait")]
    pub wait_timeout: String,
    /// Port of /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 8085)]
    pub metrics_port: u16,
    /// Print the objects instead of applying them. The cluster is not asked, so the backup
    /// and restore roles cover Kubernetes' built-in API groups, velero.io, lifeboat.dev and
    /// snapshot.storage.k8s.io only (an install grants every group served too).
    #[arg(long)]
    pub dry_run: bool,
    /// Output format with --dry-run: yaml or json.
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: Output,
}

/// `uninstall` flags.
#[derive(Args, Debug)]
pub struct UninstallArgs {
    /// Do not ask for confirmation.
    #[arg(long, visible_alias = "force")]
    pub confirm: bool,
}

/// `server` flags.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Where /metrics, /healthz and /readyz listen.
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub metrics_address: String,
    /// Backups run at the same time (the others wait, phase New).
    #[arg(long, default_value_t = 1)]
    pub concurrent_backups: usize,
    /// Restores run at the same time (each creates its objects in parallel already).
    #[arg(long, default_value_t = 1)]
    pub concurrent_restores: usize,
    /// This replica's identity in the leader Lease (default: POD_NAME, else host-pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How often a storage location is validated when its validationFrequency is unset
    /// (0s: never).
    #[arg(
        long = "store-validation-frequency",
        visible_alias = "default-validation-frequency",
        default_value = "1m"
    )]
    pub default_validation_frequency: String,
    /// How often backups found in a storage location are synced into Backup objects when
    /// its backupSyncPeriod is unset (0s: never).
    #[arg(long, default_value = "1m")]
    pub backup_sync_period: String,
    /// How often expired backups are looked for.
    #[arg(long, default_value = "1m")]
    pub garbage_collection_frequency: String,
    /// How long a running backup or restore may finish after SIGTERM before it is marked
    /// Failed ("interrupted by shutdown"); an idle server stops at once. The installed
    /// Deployment's terminationGracePeriodSeconds is this plus 30s.
    #[arg(long, default_value = "10m")]
    pub shutdown_grace_period: String,
    /// Metric names: `velero` keeps Velero's exact names (its dashboards and alerts work);
    /// `promlint` renames the four Velero names that fail `promtool check metrics`
    /// (velero_backup_total, velero_restore_total, velero_backup_items_total,
    /// velero_backup_location_status_gauge → velero_backups, velero_restores,
    /// velero_backup_items, velero_backup_location_status).
    #[arg(long, value_enum, default_value = "velero")]
    pub metric_names: MetricNamesArg,
    /// Copy every pod volume's files (through the node agents) in backups whose spec does
    /// not say (defaultVolumesToFsBackup unset); the backup records what it used.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// How long the node agents may take for the volumes of one backup or restore.
    #[arg(long, default_value_t = GoDuration(lifeboat_engine::pod_volumes::PodVolumeSettings::DEFAULT_TIMEOUT).to_string())]
    pub fs_backup_timeout: String,
    /// How often each DRPlan of the namespace is looked at (its status and lifeboat_dr_*
    /// metrics), a warm standby synced, and its drill calendar consulted (0s: never).
    #[arg(long, default_value = "1m")]
    pub dr_frequency: String,
    /// Let the DRPlan controller run the plans' verification commands as processes of
    /// this server, with its credentials and every kubeconfig its pod mounts. Without it,
    /// a scheduled drill of a plan with commands ends in Error, saying so. Grant create
    /// on drplans only to whom you would give a shell in the server.
    #[arg(long)]
    pub dr_allow_local_commands: bool,
    /// How long a DR plan's RPO must stay breached before the breach is notified (a
    /// backup that runs a little past the RPO does not page).
    #[arg(long, default_value = "5m")]
    pub dr_rpo_breach_for: String,
    /// The Secret of the server's namespace holding the notification receivers (key
    /// notifications.yaml: generic JSON, Slack-compatible or PagerDuty Events v2 webhooks;
    /// docs/readiness.md). No Secret: no notifications.
    #[arg(long, default_value = lifeboat_types::readiness::notify::SECRET)]
    pub notifications_secret: String,
    /// The cluster's name in notifications (default: lifeboat in namespace NS).
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// A file holding the DR console's bearer token (/console on the metrics port). Without
    /// one, the console is open when --metrics-address is a loopback address and refused
    /// otherwise.
    #[arg(long, env = "LIFEBOAT_CONSOLE_TOKEN_FILE")]
    pub console_token_file: Option<std::path::PathBuf>,
}

/// `--metric-names`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricNamesArg {
    /// Velero's names.
    Velero,
    /// Names that pass promtool's lint.
    Promlint,
}

impl From<MetricNamesArg> for lifeboat_types::metrics::MetricNames {
    fn from(a: MetricNamesArg) -> Self {
        match a {
            MetricNamesArg::Velero => Self::Velero,
            MetricNamesArg::Promlint => Self::Promlint,
        }
    }
}

/// The one-line warnings of install flags lifeboat takes but does not act on (yet), in
/// flag order. None of them stops the install.
pub fn install_warnings(a: &InstallArgs) -> Vec<String> {
    let mut w = Vec::new();
    if !a.plugins.is_empty() {
        w.push(format!(
            "--plugins {} ignored: lifeboat has no plugins; its providers (aws, gcp, azure, alibabacloud, file) are built in",
            a.plugins.join(",")
        ));
    }
    let snapshots = a.use_volume_snapshots == Some(true) || !a.snapshot_location_config.is_empty();
    if snapshots {
        w.push(format!(
            "not supported yet: volume snapshots (--use-volume-snapshots, --snapshot-location-config): {}; backups store resources only",
            if a.provider.is_some() && a.use_volume_snapshots != Some(false) {
                "volume snapshot location \"default\" is recorded, no volume is snapshotted"
            } else {
                "nothing is installed for them"
            }
        ));
    }
    if a.use_node_agent == Some(true) && a.repo_password_file.is_none() {
        w.push(format!(
            "the node agent has no repository key unless Secret {REPO_KEY_SECRET} (key {REPO_KEY_KEY}) exists already: volume backups fail until it does (give --repo-password-file FILE)"
        ));
    }
    if a.use_node_agent != Some(true) && a.repo_password_file.is_some() {
        w.push(
            "--repo-password-file is kept for the node agent, which --use-node-agent installs"
                .into(),
        );
    }
    if a.default_volumes_to_fs_backup == Some(true) && a.use_node_agent != Some(true) {
        w.push("--default-volumes-to-fs-backup without --use-node-agent: backups copy pod volumes' files only where a node agent runs (installed earlier, or add --use-node-agent)".into());
    }
    if a.uploader_type.as_deref() == Some("kopia") {
        w.push("--uploader-type kopia: lifeboat writes restic-format repositories (plain restic reads them); the volume data is uploaded as restic's".into());
    }
    w
}

/// The volume snapshot location `default` install records: Velero creates it with the
/// provider when volume snapshots are on (its default) and a snapshot location config or
/// --use-volume-snapshots is given.
fn snapshot_location(a: &InstallArgs) -> Result<Option<SnapshotLocationOptions>> {
    let wanted = a.use_volume_snapshots == Some(true) || !a.snapshot_location_config.is_empty();
    match &a.provider {
        Some(provider) if wanted && a.use_volume_snapshots != Some(false) => {
            Ok(Some(SnapshotLocationOptions {
                provider: provider.clone(),
                config: parse_kv(&a.snapshot_location_config, "snapshot-location-config")?,
            }))
        }
        _ => Ok(None),
    }
}

/// `install`.
pub async fn install(cli: &Cli, a: &InstallArgs) -> Result<Exit> {
    for w in install_warnings(a) {
        eprintln!("warning: {w}");
    }
    let location = match (&a.provider, &a.bucket) {
        (Some(provider), Some(bucket)) => Some(LocationOptions {
            provider: provider.clone(),
            bucket: bucket.clone(),
            prefix: a.prefix.clone(),
            config: parse_kv(&a.backup_location_config, "backup-location-config")?,
            credentials: a
                .secret_file
                .as_ref()
                .filter(|_| !a.no_secret)
                .map(|p| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read --secret-file {}", p.display()))
                })
                .transpose()?,
        }),
        _ => None,
    };
    let mut opts = InstallOptions {
        namespace: cli.namespace.clone(),
        image: a.image.clone(),
        replicas: a.replicas,
        backup_only: a.backup_only,
        no_exec_hooks: a.no_exec_hooks,
        metrics_port: a.metrics_port,
        api: ApiScope::builtin(),
        location,
        snapshot_location: snapshot_location(a)?,
        default_volumes_to_fs_backup: a.default_volumes_to_fs_backup == Some(true),
        fs_backup_timeout: a
            .fs_backup_timeout
            .as_deref()
            .map(fs_backup_timeout)
            .transpose()?,
        node_agent: (a.use_node_agent == Some(true))
            .then_some(())
            .map(|()| -> Result<_> {
                Ok(NodeAgentOptions {
                    kubelet_root: a.kubelet_root_dir.clone(),
                    repo_key: a
                        .repo_password_file
                        .as_ref()
                        .map(|p| {
                            let key = std::fs::read_to_string(p).with_context(|| {
                                format!("cannot read --repo-password-file {}", p.display())
                            })?;
                            let key = key.trim_end_matches(['\n', '\r']).to_owned();
                            anyhow::ensure!(
                                !key.is_empty(),
                                "--repo-password-file {} is empty",
                                p.display()
                            );
                            Ok(key)
                        })
                        .transpose()?,
                })
            })
            .transpose()?,
    };
    if a.dry_run {
        let objs = manifests(&opts);
        match a.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"apiVersion": "v1", "kind": "List", "items": objs})
                )?
            ),
            _ => {
                for o in &objs {
                    println!("---\n{}", serde_yaml_ng::to_string(o)?.trim_end());
                }
            }
        }
        return Ok(Exit::Ok);
    }
    let cluster = connect(cli).await?;
    // The roles name the groups and core resources the cluster serves now, besides the
    // built-in ones (a `*` would also grant pods/exec, nodes/proxy, serviceaccounts/token).
    let (core, groups) = cluster.served_api().await?;
    opts.api = ApiScope::served(
        core.iter().map(String::as_str),
        groups.iter().map(String::as_str),
    );
    let objs = manifests(&opts);
    let done = lifeboat_server::install::apply(&cluster, &objs).await?;
    for d in &done {
        println!("{d}: applied");
    }
    if a.wait {
        let limit = a
            .wait_timeout
            .parse::<GoDuration>()
            .map_err(|e| anyhow::anyhow!("--wait-timeout: {e}"))?;
        println!(
            "Waiting for Deployment {}/lifeboat to be available...",
            cli.namespace
        );
        lifeboat_server::install::wait_available(&cluster, &cli.namespace, limit.0).await?;
        println!("Deployment {}/lifeboat is available.", cli.namespace);
    }
    println!(
        "lifeboat is installed in namespace {:?}. Check the server with `kubectl -n {} logs deploy/lifeboat`.",
        cli.namespace, cli.namespace
    );
    println!(
        "Its backup and restore roles cover {} API groups: those served now and Kubernetes' built-in ones. Grant a group installed later with a ClusterRole labelled {}: \"true\" (reads) or {}: \"true\" (writes), or run install again (docs/server.md, \"Security model\").",
        opts.api.groups.len(),
        rbac::AGGREGATE_TO_BACKUP,
        rbac::AGGREGATE_TO_RESTORE
    );
    Ok(Exit::Ok)
}

/// `uninstall`: what install created goes; stored backups stay.
pub async fn uninstall(cli: &Cli, a: &UninstallArgs) -> Result<Exit> {
    if !confirm(
        &format!(
            "uninstall lifeboat from namespace {:?} (its CRDs and every Backup/Restore/Schedule object)",
            cli.namespace
        ),
        "Stored backups stay.",
        a.confirm,
    )? {
        return Ok(Exit::Ok);
    }
    let cluster = connect(cli).await?;
    // The objects install would create, with every optional part, so all are found.
    let objs = manifests(&InstallOptions {
        namespace: cli.namespace.clone(),
        location: Some(LocationOptions {
            provider: String::new(),
            bucket: String::new(),
            prefix: String::new(),
            config: Default::default(),
            credentials: Some(String::new()),
        }),
        snapshot_location: Some(SnapshotLocationOptions {
            provider: String::new(),
            config: Default::default(),
        }),
        node_agent: Some(NodeAgentOptions {
            kubelet_root: String::new(),
            repo_key: Some(String::new()),
        }),
        ..Default::default()
    });
    // The server first (issue 11, item 10): one still running would go on working on
    // objects whose finalizers are pulled from under it. Its Deployment goes, and its pods
    // stop within their grace period, releasing the Lease; a server run elsewhere must be
    // stopped by hand, and uninstall stops here until it is.
    let (deployment, rest): (Vec<_>, Vec<_>) =
        objs.into_iter().partition(|o| o["kind"] == "Deployment");
    for d in lifeboat_server::install::delete(&cluster, &deployment).await? {
        println!("{d}: deleted");
    }
    lifeboat_server::install::wait_server_stopped(
        &cluster,
        &cli.namespace,
        lifeboat_server::install::SERVER_STOP_TIMEOUT,
    )
    .await?;
    // Custom resources hold finalizers that only the server removes: drop them first so
    // that deleting the CRDs does not hang (stored data stays).
    lifeboat_engine::objects::release_backup_finalizers(&cluster).await;
    let done = lifeboat_server::install::delete(&cluster, &rest).await?;
    for d in &done {
        println!("{d}: deleted");
    }
    // "Uninstalled" means gone: a new install must not meet a terminating CRD.
    let left = lifeboat_engine::objects::wait_crds_gone(&cluster).await;
    if !left.is_empty() {
        bail!(
            "lifeboat is not uninstalled: the CRDs {} are still there a minute after their deletion (objects of theirs hold finalizers of another controller?); see `kubectl get crd {}` and run uninstall again",
            left.join(", "),
            left[0]
        );
    }
    println!(
        "lifeboat is uninstalled from namespace {:?}; stored backups were not touched.",
        cli.namespace
    );
    Ok(Exit::Ok)
}

/// `server`: runs until SIGTERM or ctrl-c.
pub async fn server(cli: &Cli, a: &ServerArgs) -> Result<Exit> {
    let config = kube_config(cli).await?;
    let identity = a.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "lifeboat".into());
        format!("{host}-{}", std::process::id())
    });
    let opts = ServerOptions {
        namespace: cli.namespace.clone(),
        metrics_address: a.metrics_address.parse().with_context(|| {
            format!("--metrics-address {:?} is not HOST:PORT", a.metrics_address)
        })?,
        concurrent_backups: a.concurrent_backups,
        concurrent_restores: a.concurrent_restores,
        identity,
        own_pod: std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()),
        validation_every: dur(
            "store-validation-frequency",
            &a.default_validation_frequency,
        )?,
        sync_every: dur("backup-sync-period", &a.backup_sync_period)?,
        gc_every: match dur(
            "garbage-collection-frequency",
            &a.garbage_collection_frequency,
        )? {
            d if d.is_zero() => bail!(
                "--garbage-collection-frequency must be more than 0s (expired backups are looked for that often)"
            ),
            d => d,
        },
        shutdown_grace: dur("shutdown-grace-period", &a.shutdown_grace_period)?,
        default_volumes_to_fs_backup: a.default_volumes_to_fs_backup == Some(true),
        fs_backup_timeout: fs_backup_timeout(&a.fs_backup_timeout)?,
        dr_every: dur("dr-frequency", &a.dr_frequency)?,
        dr_allow_commands: a.dr_allow_local_commands,
        notifications_secret: a.notifications_secret.clone(),
        dr_breach_hold: dur("dr-rpo-breach-for", &a.dr_rpo_breach_for)?,
        console_token: match &a.console_token_file {
            Some(f) => {
                let token = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read the console token file {}", f.display()))?
                    .trim()
                    .to_owned();
                if token.is_empty() {
                    bail!(
                        "the console token file {} is empty: put the token in it, or leave out --console-token-file",
                        f.display()
                    );
                }
                Some(token)
            }
            None => None,
        },
        notify_source: a
            .cluster_name
            .clone()
            .unwrap_or_else(|| format!("lifeboat in namespace {}", cli.namespace)),
        metric_names: a.metric_names.into(),
    };
    server::run(config, opts, shutdown_signal()).await?;
    Ok(Exit::Ok)
}

/// A duration flag (Go's form: `90s`, `4h`, `1h30m`), its error naming the flag.
fn dur(flag: &str, v: &str) -> Result<Duration> {
    Ok(v.parse::<GoDuration>()
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?
        .0)
}

/// `--fs-backup-timeout` of `install` and `server`: more than 0s (checked at install too,
/// where the installed server would refuse it at every start).
fn fs_backup_timeout(v: &str) -> Result<Duration> {
    match dur("fs-backup-timeout", v)? {
        d if d.is_zero() => bail!(
            "--fs-backup-timeout must be more than 0s (the node agents' time for the volumes of one backup or restore)"
        ),
        d => Ok(d),
    }
}

/// SIGTERM or Ctrl-C: how the kubelet (and a user) stops the server and the node agent.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use clap::Parser;

    fn install(args: &[&str]) -> InstallArgs {
        match crate::cli::parse_for_test(&["install"], args) {
            Command::Install(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// Issue 13: the `velero install` lines of the DR guides (002, 003) parse, configure
    /// the storage location they name, and warn once per flag lifeboat does not act on.
    #[test]
    fn the_guides_install_lines_are_taken() {
        let a = install(&[
            "--provider",
            "alibabacloud",
            "--plugins",
            "registry.cn-hangzhou.aliyuncs.com/acs/velero-plugin-alibabacloud:v1.8",
            "--bucket",
            "velero-backup-bucket",
            "--secret-file",
            "./credentials-velero",
            "--backup-location-config",
            "region=cn-hangzhou",
            "--snapshot-location-config",
            "region=cn-hangzhou",
            "--use-volume-snapshots=true",
            "--use-node-agent",
        ]);
        assert_eq!(a.provider.as_deref(), Some("alibabacloud"));
        assert_eq!(a.bucket.as_deref(), Some("velero-backup-bucket"));
        assert_eq!(a.backup_location_config, ["region=cn-hangzhou"]);
        let w = install_warnings(&a);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("--plugins registry.cn-hangzhou.aliyuncs.com/acs/velero-plugin-alibabacloud:v1.8 ignored"), "{}", w[0]);
        assert!(
            w[1].starts_with("not supported yet: volume snapshots"),
            "{}",
            w[1]
        );
        assert!(
            w[1].contains("volume snapshot location \"default\" is recorded"),
            "{}",
            w[1]
        );
        assert!(
            w[2].starts_with(
                "the node agent has no repository key unless Secret lifeboat-repo-credentials"
            ),
            "{}",
            w[2]
        );
        let vsl = snapshot_location(&a).unwrap().unwrap();
        assert_eq!(vsl.provider, "alibabacloud");
        assert_eq!(vsl.config["region"], "cn-hangzhou");

        let a = install(&[
            "--provider",
            "aws",
            "--bucket",
            "b",
            "--use-volume-snapshots=false",
            "--default-volumes-to-fs-backup",
            "--uploader-type",
            "kopia",
            "--wait",
            "--no-secret",
        ]);
        assert!(snapshot_location(&a).unwrap().is_none());
        let w = install_warnings(&a);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("--default-volumes-to-fs-backup"), "{}", w[0]);
        assert!(w[1].contains("--uploader-type kopia"), "{}", w[1]);
        assert!(a.wait && a.no_secret);
        // Nothing asked for, nothing warned.
        assert!(install_warnings(&install(&[])).is_empty());
    }

    #[rstest::rstest]
    #[case::uploader(&["--uploader-type", "rsync"], "invalid value 'rsync' for '--uploader-type")]
    #[case::bool_value(&["--use-node-agent=yes"], "expected true or false, got \"yes\"")]
    #[case::no_location(&["--provider", "aws", "--bucket", "b", "--no-default-backup-location"], "cannot be used with")]
    #[case::secret(&["--secret-file", "f", "--no-secret"], "cannot be used with")]
    fn bad_install_flags_are_usage_errors(#[case] args: &[&str], #[case] want: &str) {
        let argv = std::iter::once("lifeboat")
            .chain(std::iter::once("install"))
            .chain(args.iter().copied());
        let e = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }

    #[test]
    fn uninstall_keeps_force_as_confirm() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Uninstall(UninstallArgs { confirm }) => confirm,
            other => panic!("{other:?}"),
        };
        assert!(parse(&["lifeboat", "uninstall", "--force"]));
        assert!(parse(&["lifeboat", "uninstall", "--confirm"]));
        assert!(!parse(&["lifeboat", "uninstall"]));
    }
}
