//! Command-line definitions: Velero's verbs and flags, so that scripts work with the
//! binary name swapped.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kubernetes backup, restore and disaster recovery, Velero-compatible.
#[derive(Parser, Debug)]
#[command(
    name = "lifeboat",
    version,
    propagate_version = true,
    after_help = "\
Examples:
  lifeboat backup create nightly --include-namespaces shop --wait
  lifeboat backup get
  lifeboat backup describe nightly --details
  lifeboat location create s3 --provider aws --bucket velero \\
      --config region=us-east-1,s3Url=http://127.0.0.1:9000,s3ForcePathStyle=true --credential ./credentials-velero
  lifeboat apply -f backup.yaml

Exit codes: 0 success, 1 error, 2 usage error, 3 backup ended PartiallyFailed."
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
    /// More logs on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with backups.
    Backup {
        /// The backup command.
        #[command(subcommand)]
        cmd: BackupCmd,
    },
    /// Create things, Velero style (`lifeboat create backup NAME`).
    Create {
        /// What to create.
        #[command(subcommand)]
        cmd: CreateCmd,
    },
    /// Get things, Velero style (`lifeboat get backups`).
    Get {
        /// What to get.
        #[command(subcommand)]
        cmd: GetCmd,
    },
    /// Restore backups into a cluster.
    Restore {
        /// The restore command.
        #[command(subcommand)]
        cmd: RestoreCmd,
    },
    /// etcd snapshots (files): status and verify.
    Etcd {
        /// The etcd command.
        #[command(subcommand)]
        cmd: EtcdCmd,
    },
    /// Work with storage locations.
    #[command(visible_alias = "backup-location")]
    Location {
        /// The location command.
        #[command(subcommand)]
        cmd: LocationCmd,
    },
    /// Run velero.io/v1 documents: here, a Backup or Restore is run and a
    /// BackupStorageLocation saved locally; with --server they become lifeboat.dev objects
    /// the in-cluster server runs. A Schedule always goes to the server.
    #[command(after_help = "\
Examples:
  lifeboat apply -f backup.yaml                 # run the Backup now, from here
  lifeboat apply -f restore.yaml                # run the Restore now, from here
  lifeboat apply -f schedule.yaml               # a Schedule for the server
  lifeboat -n lifeboat apply -f dr.yaml --server  # every document to the server")]
    Apply {
        /// File with one or more YAML documents (`-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Override the storage location of every Backup in the file.
        #[arg(long)]
        storage_location: Option<String>,
        /// Hand Backups, Restores and BackupStorageLocations to the lifeboat server in the
        /// cluster (created as lifeboat.dev objects in their namespace, else -n) instead of
        /// running them here / saving the location locally. Schedules always go to the
        /// server.
        #[arg(long)]
        server: bool,
    },
    /// Install the server into the cluster: CRDs, RBAC, Deployment, metrics Service and
    /// (with --provider/--bucket) a default storage location.
    #[command(after_help = "\
Examples:
  lifeboat install --dry-run -o yaml                    # review everything first
  lifeboat install --image registry.example/lifeboat:0.1 --provider aws --bucket backups \\
      --backup-location-config region=eu-west-1 --secret-file ./credentials-velero
  lifeboat install --backup-only                        # no cluster-wide write role")]
    Install(InstallArgs),
    /// Remove what install created (stored backups are not touched).
    Uninstall {
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Run the in-cluster server: Backup, Schedule, DeleteBackupRequest and
    /// BackupStorageLocation controllers, metrics and health endpoints.
    Server(ServerArgs),
    /// Scheduled backups (needs `lifeboat server` running for the cluster).
    Schedule {
        /// The schedule command.
        #[command(subcommand)]
        cmd: ScheduleCmd,
    },
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
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

/// `restore ...` commands.
#[derive(Subcommand, Debug)]
pub enum RestoreCmd {
    /// Restore a backup into the cluster.
    #[command(after_help = "\
Examples:
  lifeboat restore create --from-backup nightly --wait
  lifeboat restore create r1 --from-backup nightly --include-namespaces shop --namespace-mappings shop:shop-restored
  lifeboat restore create --from-backup nightly --dry-run          # what would change, with diffs
  lifeboat restore create --from-backup nightly --existing-resource-policy update")]
    Create(Box<RestoreCreate>),
    /// List restores.
    Get(RestoreGet),
    /// Describe restores.
    Describe {
        /// Restore names (all when none).
        names: Vec<String>,
        /// Show every error and warning and the restored resource list.
        #[arg(long)]
        details: bool,
        /// Output format.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Print a restore's logs.
    Logs {
        /// The restore.
        name: String,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Delete restores' records (restored objects stay in the cluster).
    Delete {
        /// Restore names.
        names: Vec<String>,
        /// Delete every restore record.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        confirm: bool,
        #[command(flatten)]
        location: LocationArg,
    },
}

/// `restore get`.
#[derive(Args, Debug)]
pub struct RestoreGet {
    /// Restore names (all when none).
    pub names: Vec<String>,
    /// Output format: table, json, yaml, jsonpath=TEMPLATE.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `restore create`.
#[derive(Args, Debug, Default)]
pub struct RestoreCreate {
    /// The restore's name (default: <backup>-<timestamp>).
    pub name: Option<String>,
    /// The backup to restore.
    #[arg(long)]
    pub from_backup: Option<String>,
    /// Restore the newest completed backup of this schedule.
    #[arg(long)]
    pub from_schedule: Option<String>,
    /// Namespaces to include (globs).
    #[arg(long, value_delimiter = ',')]
    pub include_namespaces: Vec<String>,
    /// Namespaces to exclude (globs).
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,
    /// Resources to include.
    #[arg(long, value_delimiter = ',')]
    pub include_resources: Vec<String>,
    /// Resources to exclude.
    #[arg(long, value_delimiter = ',')]
    pub exclude_resources: Vec<String>,
    /// Namespace mappings: src1:dst1,src2:dst2.
    #[arg(long, value_delimiter = ',')]
    pub namespace_mappings: Vec<String>,
    /// Only restore objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Objects matching any of these selectors: "app=a or app=b".
    #[arg(long)]
    pub or_selector: Option<String>,
    /// Include cluster-scoped resources (unset: only for a whole-cluster restore).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub include_cluster_resources: Option<bool>,
    /// Restore volumes from snapshots (recorded; volume data is not restored by this version).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub restore_volumes: Option<bool>,
    /// Keep Services' node ports.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub preserve_nodeports: Option<bool>,
    /// Resources whose status is restored too.
    #[arg(long, value_delimiter = ',')]
    pub status_include_resources: Vec<String>,
    /// Resources whose status is not restored.
    #[arg(long, value_delimiter = ',')]
    pub status_exclude_resources: Vec<String>,
    /// What to do with objects that exist: none (default) or update.
    #[arg(long)]
    pub existing_resource_policy: Option<String>,
    /// A ConfigMap (in --namespace) holding resource modifier rules.
    #[arg(long)]
    pub resource_modifier_configmap: Option<String>,
    /// A local file holding resource modifier rules.
    #[arg(long)]
    pub resource_modifier_file: Option<PathBuf>,
    /// Objects created at once.
    #[arg(long, default_value_t = 32)]
    pub parallelism: usize,
    /// Show what would be created, updated or skipped, with diffs; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Show progress and wait (lifeboat always runs the restore to the end).
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// Output format (json, yaml) instead of messages.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub location: LocationArg,
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

/// `backup ...` commands.
#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Back up cluster resources into a storage location.
    #[command(after_help = "\
Examples:
  lifeboat backup create shop --include-namespaces shop --wait
  lifeboat backup create all --exclude-namespaces kube-system --ttl 168h
  lifeboat backup create web --selector app=web --include-resources deployments,services
  lifeboat backup create b1 --storage-location file:///var/backups/lifeboat")]
    Create(Box<BackupCreate>),
    /// List backups.
    Get(BackupGet),
    /// Describe backups.
    Describe {
        /// Backup names (all when none).
        names: Vec<String>,
        /// Show the resource list and every error and warning.
        #[arg(long)]
        details: bool,
        /// Output format.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Print a backup's logs.
    Logs {
        /// The backup.
        name: String,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Delete backups from the storage location.
    Delete {
        /// Backup names.
        names: Vec<String>,
        /// Delete every backup.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        confirm: bool,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Check that a backup is usable: phase, age, location, archive integrity, contents
    /// against its resource list, and (--test-restore) a restore into mapped namespaces
    /// that is checked and removed. Exit 0 when every check passes, 1 otherwise.
    #[command(after_help = "\
Examples:
  lifeboat backup verify nightly-20260101020000
  lifeboat backup verify --latest --schedule nightly --max-age 26h --test-restore -o json
  lifeboat backup verify --latest --max-age 26h --print-cronjob | kubectl apply -f -")]
    Verify(Box<BackupVerify>),
    /// Download a backup's tarball.
    Download {
        /// The backup.
        name: String,
        /// File to write (default: ./<name>-data.tar.gz).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Wait until a backup is stored (lifeboat runs backups in the foreground, so this
    /// returns at once with the backup's phase as exit code).
    Wait {
        /// The backup.
        name: String,
        #[command(flatten)]
        location: LocationArg,
    },
}

/// `backup get`.
#[derive(Args, Debug)]
pub struct BackupGet {
    /// Backup names (all when none).
    pub names: Vec<String>,
    /// Only backups whose labels match.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Output format: table, json, yaml, jsonpath=TEMPLATE.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    /// Sort by a field (accepted: .metadata.creationTimestamp, .metadata.name).
    #[arg(long)]
    pub sort_by: Option<String>,
    #[command(flatten)]
    pub location: LocationArg,
}

fn parse_opt_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

/// `backup create`.
#[derive(Args, Debug, Default)]
pub struct BackupCreate {
    /// The backup's name.
    pub name: String,
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
    /// Include cluster-scoped resources (unset: only for a whole-cluster backup).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub include_cluster_resources: Option<bool>,
    /// Cluster-scoped resources to include (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub include_cluster_scoped_resources: Vec<String>,
    /// Cluster-scoped resources to exclude (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub exclude_cluster_scoped_resources: Vec<String>,
    /// Namespaced resources to include (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub include_namespace_scoped_resources: Vec<String>,
    /// Namespaced resources to exclude (scoped filter).
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespace_scoped_resources: Vec<String>,
    /// Only back up objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Objects matching any of these selectors: "app=a or app=b".
    #[arg(long)]
    pub or_selector: Option<String>,
    /// Objects to back up first: "pods=ns1/pod1,ns1/pod2;persistentvolumeclaims=ns1/pvc4".
    #[arg(long)]
    pub ordered_resources: Option<String>,
    /// How long to keep the backup.
    #[arg(long, default_value = "720h0m0s")]
    pub ttl: String,
    /// Labels for the backup: k=v,k2=v2.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Annotations for the backup: k=v,k2=v2.
    #[arg(long, value_delimiter = ',')]
    pub annotations: Vec<String>,
    /// Take volume snapshots (recorded in the spec; volume data is not backed up by this
    /// command yet).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub snapshot_volumes: Option<bool>,
    /// Back up pod volumes with the file-system uploader (recorded in the spec).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_opt_bool)]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// Volume snapshot locations (recorded in the spec).
    #[arg(long, value_delimiter = ',')]
    pub volume_snapshot_locations: Vec<String>,
    /// CSI snapshot timeout (recorded in the spec).
    #[arg(long)]
    pub csi_snapshot_timeout: Option<String>,
    /// Item operation timeout (recorded in the spec).
    #[arg(long)]
    pub item_operation_timeout: Option<String>,
    /// gzip level of the tarball, 0-9 (1: fastest; 6: Velero's, smaller and slower; Velero reads any).
    #[arg(long, default_value_t = lifeboat_engine::backup::DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// Show progress and wait for the backup (lifeboat always runs it to the end).
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// Output format of the stored Backup (json, yaml) instead of messages.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub location: LocationArg,
}

/// `location ...` commands.
#[derive(Subcommand, Debug)]
pub enum LocationCmd {
    /// Save a storage location.
    #[command(after_help = "\
Examples:
  lifeboat location create local --provider file --bucket /var/backups/lifeboat --default
  lifeboat location create aws --provider aws --bucket velero --prefix cluster-a \\
      --config region=eu-west-1 --credential ~/.aws/credentials")]
    Create {
        /// The location's name.
        name: String,
        /// aws, gcp, azure, alibabacloud or file.
        #[arg(long)]
        provider: String,
        /// Bucket (a directory for file).
        #[arg(long)]
        bucket: String,
        /// Prefix inside the bucket.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Provider options: k=v,k2=v2 (region, s3Url, s3ForcePathStyle, profile, ...).
        #[arg(long, value_delimiter = ',')]
        config: Vec<String>,
        /// Credentials file (Velero style: `[default]` / `aws_access_key_id=...`).
        #[arg(long)]
        credential: Option<String>,
        /// ReadWrite or ReadOnly.
        #[arg(long, value_enum, default_value = "ReadWrite")]
        access_mode: AccessModeArg,
        /// Make it the default location.
        #[arg(long)]
        default: bool,
        /// Labels: k=v,...
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
    },
    /// List storage locations (and check that each is reachable).
    Get {
        /// Names (all when none).
        names: Vec<String>,
        /// Output format.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
    },
    /// Delete storage locations from the config (their backups stay).
    Delete {
        /// Names.
        names: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        confirm: bool,
    },
    /// Change a location's access mode or default flag.
    Set {
        /// The location.
        name: String,
        /// ReadWrite or ReadOnly.
        #[arg(long, value_enum)]
        access_mode: Option<AccessModeArg>,
        /// Make it the default.
        #[arg(long)]
        default: bool,
    },
}

/// Access modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccessModeArg {
    /// Writes allowed.
    #[value(name = "ReadWrite")]
    ReadWrite,
    /// Writes refused.
    #[value(name = "ReadOnly")]
    ReadOnly,
}

impl From<AccessModeArg> for lifeboat_types::api::velero::AccessMode {
    fn from(m: AccessModeArg) -> Self {
        match m {
            AccessModeArg::ReadWrite => Self::ReadWrite,
            AccessModeArg::ReadOnly => Self::ReadOnly,
        }
    }
}

/// `etcd ...`.
#[derive(Subcommand, Debug)]
pub enum EtcdCmd {
    /// etcd snapshot files.
    Snapshot {
        /// The snapshot command.
        #[command(subcommand)]
        cmd: SnapshotCmd,
    },
}

/// `etcd snapshot ...`.
#[derive(Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Stream a snapshot from a live etcd into a file or a storage location; published
    /// only after etcd's sha256 checksum matched.
    #[command(
        after_help = "Examples:\n  lifeboat etcd snapshot save --endpoints https://127.0.0.1:2379 \\\n      --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt \\\n      --key /etc/kubernetes/pki/etcd/server.key --to /var/backups/etcd/snapshot.db\n  lifeboat etcd snapshot save --endpoints http://127.0.0.1:2379 --storage-location default"
    )]
    Save {
        /// etcd client URLs, tried in order.
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// CA bundle that signed etcd's serving certificate.
        #[arg(long)]
        cacert: Option<PathBuf>,
        /// Client certificate for mTLS.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Client key for mTLS.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The file to write.
        #[arg(long, required_unless_present = "storage_location")]
        to: Option<PathBuf>,
        /// Upload to this storage location (under metadata/etcd/) instead of (or as well as) --to.
        #[arg(long)]
        storage_location: Option<String>,
        /// Object name in the location (default: etcd-snapshot-<UTC timestamp>.db).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the snapshots stored in a location (metadata/etcd/).
    List {
        /// The storage location.
        #[arg(long)]
        storage_location: Option<String>,
        /// Output format: table, json, yaml.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
    },
    /// Delete stored snapshots beyond the newest N and/or older than an age; the newest is
    /// always kept.
    #[command(
        after_help = "Example:\n  lifeboat etcd snapshot prune --storage-location default --keep 14 --max-age 336h"
    )]
    Prune {
        /// The storage location.
        #[arg(long)]
        storage_location: Option<String>,
        /// Keep this many newest snapshots.
        #[arg(long)]
        keep: Option<usize>,
        /// Delete snapshots older than this (e.g. 168h).
        #[arg(long)]
        max_age: Option<String>,
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a CronJob that saves snapshots on a control-plane node and prunes old ones.
    #[command(
        after_help = "Example:\n  lifeboat etcd snapshot schedule --storage-location default --keep 10 | kubectl apply -f -"
    )]
    Schedule {
        /// Cron expression.
        #[arg(long, default_value = "0 */6 * * *")]
        schedule: String,
        /// etcd client URL as seen from the node.
        #[arg(long, default_value = "https://127.0.0.1:2379")]
        endpoints: String,
        /// CA path on the node.
        #[arg(long, default_value = "/etc/kubernetes/pki/etcd/ca.crt")]
        cacert: String,
        /// Client certificate path on the node.
        #[arg(
            long,
            default_value = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
        )]
        cert: String,
        /// Client key path on the node.
        #[arg(
            long,
            default_value = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
        )]
        key: String,
        /// Storage location (name from `lifeboat location get`, or URL).
        #[arg(long, default_value = "default")]
        storage_location: String,
        /// Snapshots to keep.
        #[arg(long, default_value_t = 10)]
        keep: usize,
        /// lifeboat's container image.
        #[arg(long, default_value = "lifeboat:latest")]
        image: String,
        /// Namespace of the CronJob.
        #[arg(long, default_value = "kube-system")]
        job_namespace: String,
        /// CronJob API version (default: batch/v1 when the cluster serves it, else batch/v1beta1).
        #[arg(long)]
        api_version: Option<String>,
        /// Output format: yaml or json.
        #[arg(short = 'o', long, default_value = "yaml")]
        output: Output,
    },
    /// Hash, revision, total keys and size, as `etcdctl snapshot status` reports them.
    #[command(
        after_help = "Example:\n  lifeboat etcd snapshot status /var/backups/etcd/snapshot.db -o json"
    )]
    Status {
        /// The snapshot file.
        file: PathBuf,
        /// Output format: table or json.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
    },
    /// Turn a snapshot into the data directory of a new etcd member (what `etcdctl
    /// snapshot restore` writes for etcd 3.4): membership rewritten, consistent index reset,
    /// a raft snapshot and a WAL with the new members. Refuses a snapshot that fails
    /// verify (unless --skip-hash-check) and a data directory that is not empty.
    #[command(
        after_help = "Examples:\n  # one member, then start etcd with the same --name and --data-dir\n  lifeboat etcd snapshot restore snapshot.db --data-dir /var/lib/etcd-restored \\\n      --name m1 --initial-cluster m1=https://10.0.0.1:2380 \\\n      --initial-advertise-peer-urls https://10.0.0.1:2380\n  # three members: run once per member, each with its own --name and peer URL\n  lifeboat etcd snapshot restore snapshot.db --data-dir /var/lib/etcd-restored --name m2 \\\n      --initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380 \\\n      --initial-advertise-peer-urls https://10.0.0.2:2380 --initial-cluster-token restored-1"
    )]
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// Data directory to create (or an empty existing one). Default: <name>.etcd.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Separate WAL directory (default: <data-dir>/member/wal).
        #[arg(long)]
        wal_dir: Option<PathBuf>,
        /// This member's name.
        #[arg(long, default_value = "default")]
        name: String,
        /// Every member of the new cluster: NAME=PEER_URL[,NAME=PEER_URL...].
        #[arg(long, default_value = "default=http://localhost:2380")]
        initial_cluster: String,
        /// Token the new member and cluster ids derive from; use a new one per restored
        /// cluster so it can never join the old one.
        #[arg(long, default_value = "etcd-cluster")]
        initial_cluster_token: String,
        /// This member's peer URLs (as in --initial-cluster).
        #[arg(long, default_value = "http://localhost:2380")]
        initial_advertise_peer_urls: String,
        /// Accept a file without (or with a wrong) sha256 trailer, e.g. a copied member db.
        #[arg(long)]
        skip_hash_check: bool,
        /// Output format: table or json.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
    },
    /// Check the sha256 trailer and walk the whole bbolt tree; exit 1 with the reason when
    /// the file is truncated, damaged or not an etcd snapshot.
    Verify {
        /// The snapshot file.
        file: PathBuf,
        /// Accept a file without (or with a wrong) sha256 trailer, e.g. a copied member db.
        #[arg(long)]
        skip_hash_check: bool,
    },
}

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
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Port of /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 8085)]
    pub metrics_port: u16,
    /// Print the objects instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format with --dry-run: yaml or json.
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: Output,
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
    /// Metric names: `velero` keeps Velero's exact names (its dashboards and alerts work);
    /// `promlint` renames the four Velero names that fail `promtool check metrics`
    /// (velero_backup_total, velero_restore_total, velero_backup_items_total,
    /// velero_backup_location_status_gauge → velero_backups, velero_restores,
    /// velero_backup_items, velero_backup_location_status).
    #[arg(long, value_enum, default_value = "velero")]
    pub metric_names: MetricNamesArg,
}

/// `--metric-names`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricNamesArg {
    /// Velero's names.
    Velero,
    /// Names that pass promtool's lint.
    Promlint,
}

/// `schedule ...`.
#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// Create a schedule.
    #[command(after_help = "\
Examples:
  lifeboat schedule create daily --schedule=\"0 2 * * *\" --ttl 720h --include-namespaces shop
  lifeboat schedule create often --schedule=\"@every 6h\" --skip-immediately")]
    Create(Box<ScheduleCreate>),
    /// List schedules, or show some.
    Get {
        /// Names (all when none).
        names: Vec<String>,
        /// Output format: table, json, yaml.
        #[arg(short = 'o', long, default_value = "table")]
        output: Output,
    },
    /// Describe schedules.
    Describe {
        /// Names (all when none).
        names: Vec<String>,
    },
    /// Stop making backups.
    Pause {
        /// Names.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every schedule.
        #[arg(long)]
        all: bool,
    },
    /// Resume making backups.
    Unpause {
        /// Names.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every schedule.
        #[arg(long)]
        all: bool,
    },
    /// Delete schedules (their backups stay).
    Delete {
        /// Names.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every schedule.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        confirm: bool,
    },
}

/// `schedule create`: the schedule, then Velero's backup flags for its template (the
/// positional name is the schedule's).
#[derive(Args, Debug)]
pub struct ScheduleCreate {
    /// Cron expression (5 fields, UTC) or @every DURATION / @daily / @hourly.
    #[arg(long)]
    pub schedule: String,
    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
    /// Do not back up at once on creation or unpause.
    #[arg(long)]
    pub skip_immediately: bool,
    /// Make the schedule the owner of its backups.
    #[arg(long)]
    pub use_owner_references_in_backup: bool,
    /// The schedule's name and its backup template.
    #[command(flatten)]
    pub template: BackupCreate,
}

/// `backup verify` flags.
#[derive(Args, Debug)]
pub struct BackupVerify {
    /// The backup (or --latest).
    #[arg(required_unless_present = "latest")]
    pub name: Option<String>,
    /// The newest backup (of --schedule when given).
    #[arg(long, conflicts_with = "name")]
    pub latest: bool,
    /// With --latest: only backups of this schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Fail when the backup completed longer ago (e.g. 26h).
    #[arg(long)]
    pub max_age: Option<String>,
    /// Also restore it into <ns>-verify-<id> namespaces, check, and delete them.
    #[arg(long)]
    pub test_restore: bool,
    /// Output format: table or json.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    /// Print a CronJob that runs this verification instead of running it.
    #[arg(long)]
    pub print_cronjob: bool,
    /// CronJob schedule (with --print-cronjob).
    #[arg(long, default_value = "0 6 * * *")]
    pub cron: String,
    /// lifeboat's container image (with --print-cronjob).
    #[arg(long, default_value = "lifeboat:latest")]
    pub image: String,
    #[command(flatten)]
    pub location: LocationArg,
}
