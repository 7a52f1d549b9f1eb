//! Command-line definitions: Velero's verbs and flags, so that scripts work with the
//! binary name swapped. This file holds the top level (global flags, the verbs) and the
//! flags several verbs share; each verb group's own flags live with its handler in
//! `cmd/<group>.rs`. Every subcommand carries a named `Args` struct.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use lifeboat_types::api::selector::Selector;
use lifeboat_types::api::velero::LabelSelector;
use lifeboat_types::rules::list_sort::{SortKey, Sortable, sort_by};

use crate::cmd::alerts::AlertsArgs;
use crate::cmd::apply::ApplyArgs;
use crate::cmd::audit::AuditArgs;
use crate::cmd::backup::{BackupCmd, BackupCreate, BackupGet};
use crate::cmd::completion::CompletionArgs;
use crate::cmd::dr::DrCmd;
use crate::cmd::etcd::EtcdCmd;
use crate::cmd::location::LocationCmd;
use crate::cmd::node_agent::{NodeAgentArgs, RestoreWaitArgs};
use crate::cmd::restore::{RestoreCmd, RestoreCreate, RestoreGet};
use crate::cmd::schedule::ScheduleCmd;
use crate::cmd::server::{InstallArgs, ServerArgs, UninstallArgs};
use crate::cmd::snapshot_location::SnapshotLocationCmd;
use crate::cmd::volume::VolumeCmd;

/// Kubernetes backup, restore and disaster recovery, Velero-compatible.
#[derive(Parser, Debug)]
#[command(
    name = "lifeboat",
    version,
    propagate_version = true,
    after_help = "\
Examples:
  lifeboat backup create nightly --include-namespaces shop --wait
  lifeboat backup get --sort-by=.metadata.creationTimestamp
  lifeboat backup wait nightly --timeout 1h
  lifeboat backup describe nightly --details
  lifeboat location create s3 --provider aws --bucket velero \\
      --config region=us-east-1,s3Url=http://127.0.0.1:9000,s3ForcePathStyle=true --credential ./credentials-velero
  lifeboat apply -f backup.yaml

Exit codes: 0 success, 1 error, 2 usage error, 3 backup ended PartiallyFailed,
4 backup|restore wait timed out."
)]
pub struct Cli {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the local dev cluster).
    #[arg(long, global = true, env = "LIFEBOAT_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, global = true)]
    pub kubecontext: Option<String>,
    /// Velero namespace (accepted for compatibility; lifeboat writes it into stored metadata).
    #[arg(short = 'n', long, global = true, default_value = "velero")]
    pub namespace: String,
    /// Whether -n was given on the command line (`audit` reads it as the namespaces to
    /// audit, and only when given).
    #[arg(skip)]
    pub namespace_given: bool,
    /// Where backup, restore and location verbs work: auto (through the lifeboat server
    /// when the kube context has lifeboat installed, else from this machine), local (this
    /// machine and its storage locations), cluster (the server, or an error).
    #[arg(
        long,
        global = true,
        env = "LIFEBOAT_MODE",
        default_value = "auto",
        value_name = "auto|local|cluster"
    )]
    pub mode: lifeboat_types::rules::cli_mode::Requested,
    /// More logs on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses a command line in two steps: clap's matches (which know whether a flag was
    /// given or defaulted), then the typed flags, with [`Cli::namespace_given`] set.
    pub fn read<I, T>(argv: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut m = Cli::command().try_get_matches_from(argv)?;
        let given = m.value_source("namespace") == Some(clap::parser::ValueSource::CommandLine);
        let mut cli = Cli::from_arg_matches_mut(&mut m)?;
        cli.namespace_given = given;
        Ok(cli)
    }
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with backups.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Create things, Velero style (`lifeboat create backup NAME`).
    #[command(subcommand)]
    Create(CreateCmd),
    /// Get things, Velero style (`lifeboat get backups`).
    #[command(subcommand)]
    Get(GetCmd),
    /// Restore backups into a cluster.
    #[command(subcommand)]
    Restore(RestoreCmd),
    /// etcd snapshots (files): status and verify.
    #[command(subcommand)]
    Etcd(EtcdCmd),
    /// Volume data in restic-format repositories that plain restic reads: back a directory
    /// up, restore a snapshot, list snapshots (on the node the data is on).
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Work with storage locations.
    #[command(subcommand, visible_alias = "backup-location")]
    Location(LocationCmd),
    /// Volume snapshot locations (kept and shown; lifeboat takes no volume snapshots yet).
    #[command(subcommand, name = "snapshot-location")]
    SnapshotLocation(SnapshotLocationCmd),
    /// Run velero.io/v1 documents: here, a Backup or Restore is run and a
    /// BackupStorageLocation or VolumeSnapshotLocation saved locally; with --server they
    /// become lifeboat.dev objects the in-cluster server runs (or keeps). A Schedule always
    /// goes to the server.
    #[command(after_help = "\
Examples:
  lifeboat apply -f backup.yaml                 # run the Backup now, from here
  lifeboat apply -f restore.yaml                # run the Restore now, from here
  lifeboat apply -f schedule.yaml               # a Schedule for the server
  lifeboat apply -f locations.yaml              # a BackupStorageLocation and a VolumeSnapshotLocation, saved
  lifeboat -n lifeboat apply -f dr.yaml --server  # every document to the server")]
    Apply(ApplyArgs),
    /// Install the server into the cluster: CRDs, RBAC, Deployment, metrics Service and
    /// (with --provider/--bucket) a default storage location.
    #[command(after_help = "\
Examples:
  lifeboat install --dry-run -o yaml                    # review everything first
  lifeboat install --image registry.example/lifeboat:0.1 --provider aws --bucket backups \\
      --backup-location-config region=eu-west-1 --secret-file ./credentials-velero
  lifeboat install --backup-only                        # no cluster-wide write role
  lifeboat install --provider alibabacloud --plugins IMAGE --bucket velero-backup-bucket \\
      --secret-file ./credentials-velero --backup-location-config region=cn-hangzhou \\
      --snapshot-location-config region=cn-hangzhou --use-volume-snapshots=true --use-node-agent
      # a DR guide's velero line: --plugins ignored, volume flags warned (not supported yet)")]
    Install(InstallArgs),
    /// Remove what install created (stored backups are not touched).
    Uninstall(UninstallArgs),
    /// Run the in-cluster server: Backup, Schedule, DeleteBackupRequest and
    /// BackupStorageLocation controllers, metrics and health endpoints.
    Server(ServerArgs),
    /// Run the node agent (the DaemonSet of `install --use-node-agent`): it copies the
    /// files of this node's pod volumes for backups and restores (PodVolumeBackup and
    /// PodVolumeRestore objects in the server's namespace).
    NodeAgent(NodeAgentArgs),
    /// Wait until the node agent restored this pod's volumes (the init container a
    /// restore adds to pods whose volume data it restores; not for direct use).
    #[command(hide = true)]
    RestoreWait(RestoreWaitArgs),
    /// Scheduled backups (needs `lifeboat server` running for the cluster).
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Disaster recovery across clusters from a DR plan file: validate it, see its RPO
    /// and readiness, drill a failover.
    #[command(subcommand)]
    Dr(DrCmd),
    /// Audit the cluster's readiness for a disaster: single replicas, zone spread,
    /// anti-affinity the nodes cannot meet, disruption budgets that block drains or select
    /// nothing, storage that deletes data or binds across zones, volumes no snapshot class
    /// covers, namespaces no schedule covers or not within the RPO, one location only, old
    /// etcd snapshots, missing readiness probes. Each finding with its severity, why it
    /// matters and the fix.
    Audit(AuditArgs),
    /// Print the DR guides' Prometheus alerts over the server's metrics (backup age
    /// against each schedule's interval, failures, locations, etcd snapshots, DR plans'
    /// RPO, readiness, lag, drills, syncs): a PrometheusRule, a rule file, or the promtool
    /// tests that prove each rule fires.
    Alerts(AlertsArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Print the version.
    Version,
}

/// `lifeboat create ...`.
#[derive(Subcommand, Debug)]
pub enum CreateCmd {
    /// Same as `lifeboat backup create`.
    Backup(Box<BackupCreate>),
    /// Same as `lifeboat restore create`.
    Restore(Box<RestoreCreate>),
}

/// `lifeboat get ...`.
#[derive(Subcommand, Debug)]
pub enum GetCmd {
    /// Same as `lifeboat backup get`.
    #[command(alias = "backup")]
    Backups(BackupGet),
    /// Same as `lifeboat restore get`.
    #[command(alias = "restore")]
    Restores(RestoreGet),
}

/// Output formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A table.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// `jsonpath=TEMPLATE`.
    JsonPath(String),
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" | "" => Ok(Output::Table),
            "json" => Ok(Output::Json),
            "yaml" => Ok(Output::Yaml),
            _ => match s.strip_prefix("jsonpath=") {
                Some(t) => Ok(Output::JsonPath(t.to_owned())),
                None => Err(format!(
                    "unknown output format {s:?}; use table, json, yaml or jsonpath=TEMPLATE"
                )),
            },
        }
    }
}

/// Where backups are read from or written to.
#[derive(Args, Debug, Clone, Default)]
pub struct LocationArg {
    /// Storage location: a name from `lifeboat location get`, or a URL (file:///dir,
    /// s3://bucket/prefix?region=..&s3Url=..&s3ForcePathStyle=true&credential=FILE).
    #[arg(long)]
    pub storage_location: Option<String>,
}

/// `--confirm` of every destructive verb (see `confirm.rs` for the policy).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ConfirmArg {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub confirm: bool,
}

/// `describe` of stored objects (backups, restores). The verb words its own help for
/// `names` and `details`.
#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Names (all when none).
    pub names: Vec<String>,
    /// Show every error and warning.
    #[arg(long)]
    pub details: bool,
    /// Output format.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub location: LocationArg,
}

/// One stored object by name (`logs`, `wait`). The verb words its own help for `name`.
#[derive(Args, Debug)]
pub struct NameArgs {
    /// The name.
    pub name: String,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `backup wait` / `restore wait`. The verb words its own help for `names`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// The names.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Stop waiting after this long (a Go duration; 0s: no limit). Exit code 4 then: the
    /// run goes on.
    #[arg(long, default_value = "4h")]
    pub timeout: String,
    /// Follow the cluster's lifeboat.dev objects (namespace -n), run by `lifeboat server`,
    /// instead of the storage location (where a run of the CLI appears when it ends).
    #[arg(long)]
    pub server: bool,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `--sort-by` of `get` (backups, restores, schedules).
#[derive(Args, Debug, Clone, Default)]
pub struct SortArg {
    /// Sort by a field, ascending: .metadata.name (name), .metadata.creationTimestamp
    /// (created), .status.phase (status), and for backups and restores .status.startTimestamp,
    /// .status.completionTimestamp, for backups .status.expiration (expires), for schedules
    /// .status.lastBackup. Default: creation time.
    #[arg(long)]
    pub sort_by: Option<String>,
}

impl SortArg {
    /// The key of `--sort-by` for a list of `T` (creation time when unset); checked before
    /// anything is read.
    pub fn key<T: Sortable>(&self) -> Result<SortKey> {
        Ok(match &self.sort_by {
            Some(v) => SortKey::parse(v, T::KIND, T::KEYS)?,
            None => SortKey::Created,
        })
    }

    /// Sorts `items` by `--sort-by` (creation time when unset).
    pub fn sort<T: Sortable>(&self, items: &mut [T]) -> Result<()> {
        sort_by(items, self.key::<T>()?);
        Ok(())
    }
}

/// `delete` of stored objects (backups, restores). The verb words its own help for
/// `names` and `all`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Names.
    pub names: Vec<String>,
    /// Delete every one.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub confirm: ConfirmArg,
    #[command(flatten)]
    pub location: LocationArg,
}

/// Namespace and resource filters of `backup create`, `schedule create` and `restore
/// create` (restore words its own help for the include flags).
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Namespaces to include (globs; `*` for all).
    #[arg(long, value_delimiter = ',')]
    pub include_namespaces: Vec<String>,
    /// Namespaces to exclude (globs).
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,
    /// Resources to include (`deployments`, `deployments.apps`, `*`).
    #[arg(long, value_delimiter = ',')]
    pub include_resources: Vec<String>,
    /// Resources to exclude.
    #[arg(long, value_delimiter = ',')]
    pub exclude_resources: Vec<String>,
}

/// `--selector` and `--or-selector` (restore words its own help for `--selector`).
#[derive(Args, Debug, Clone, Default)]
pub struct SelectorArgs {
    /// Only back up objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Objects matching any of these selectors: "app=a or app=b".
    #[arg(long)]
    pub or_selector: Option<String>,
}

impl SelectorArgs {
    /// `--selector` and `--or-selector "a=b or c=d"`, as label selectors.
    pub fn parse(&self) -> Result<(Option<LabelSelector>, Vec<LabelSelector>)> {
        let one = self
            .selector
            .as_deref()
            .map(|s| Selector::parse(s).map(|s| s.to_label_selector()))
            .transpose()?;
        let any = match &self.or_selector {
            Some(s) => s
                .split(" or ")
                .map(|p| Selector::parse(p).map(|s| s.to_label_selector()))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![],
        };
        Ok((one, any))
    }
}

/// A Velero tri-state flag: `--flag`, `--flag=true`, `--flag=false`.
pub fn parse_opt_bool(s: &str) -> Result<bool, String> {
    // Go's strconv.ParseBool, which Velero's flags use.
    match s {
        "true" | "True" | "TRUE" | "t" | "T" | "1" => Ok(true),
        "false" | "False" | "FALSE" | "f" | "F" | "0" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

/// For unit tests: `lifeboat VERB... ARGS...` parsed, or the test fails with clap's message.
#[cfg(test)]
pub fn parse_for_test(verb: &[&str], args: &[&str]) -> Command {
    let argv = std::iter::once(&"lifeboat")
        .chain(verb)
        .chain(args)
        .copied();
    match <Cli as clap::Parser>::try_parse_from(argv) {
        Ok(cli) => cli.command,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[rstest::rstest]
    #[case("true", Ok(true))]
    #[case("TRUE", Ok(true))]
    #[case("t", Ok(true))]
    #[case("1", Ok(true))]
    #[case("False", Ok(false))]
    #[case("F", Ok(false))]
    #[case("0", Ok(false))]
    #[case("yes", Err("expected true or false, got \"yes\"".to_string()))]
    fn bool_flags_take_what_go_takes(#[case] s: &str, #[case] want: Result<bool, String>) {
        assert_eq!(parse_opt_bool(s), want);
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[rstest::rstest]
    #[case::defaulted(&["lifeboat", "audit"], false, "velero")]
    #[case::before_the_verb(&["lifeboat", "-n", "shop", "audit"], true, "shop")]
    #[case::after_the_verb(&["lifeboat", "audit", "-n", "shop,web"], true, "shop,web")]
    #[case::long_form(&["lifeboat", "audit", "--namespace=velero"], true, "velero")]
    fn read_notes_whether_the_namespace_was_given(
        #[case] argv: &[&str],
        #[case] given: bool,
        #[case] ns: &str,
    ) {
        let cli = Cli::read(argv).unwrap();
        assert_eq!((cli.namespace_given, cli.namespace.as_str()), (given, ns));
    }
}
