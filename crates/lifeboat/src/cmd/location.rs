//! `location create|get|delete|set` (alias `backup-location`): storage locations kept in
//! the user's config file, or — when the CLI works through the cluster (`--mode`) — the
//! BackupStorageLocation objects of the server's namespace.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use lifeboat_engine::storage::Store;
use lifeboat_types::api::names::validate_name;
use lifeboat_types::api::velero::{
    BackupStorageLocation, BackupStorageLocationSpec, ObjectStorageLocation, SecretKeySelector,
};

use lifeboat_engine::objects;
use lifeboat_types::api::crd::{BackupStorageLocationResource, to_velero};

use crate::cli::{Cli, ConfirmArg, Output};
use crate::common::{Mode, Server, load_config, mode, parse_kv};
use crate::confirm::{confirm, counted};
use crate::exit::Exit;
use crate::output;

/// `location ...` commands.
#[derive(Subcommand, Debug)]
pub enum LocationCmd {
    /// Save a storage location.
    #[command(after_help = "\
Examples:
  lifeboat location create local --provider file --bucket /var/backups/lifeboat --default
  lifeboat location create aws --provider aws --bucket velero --prefix cluster-a \\
      --config region=eu-west-1 --credential ~/.aws/credentials")]
    Create(LocationCreate),
    /// List storage locations (and check that each is reachable).
    Get(LocationGet),
    /// Delete storage locations from the config (their backups stay).
    Delete(LocationDelete),
    /// Change a location's access mode or default flag.
    Set(LocationSet),
}

/// `location create`.
#[derive(Args, Debug, Clone)]
pub struct LocationCreate {
    /// The location's name.
    pub name: String,
    /// aws, gcp, azure, alibabacloud or file.
    #[arg(long)]
    pub provider: String,
    /// Bucket (a directory for file).
    #[arg(long)]
    pub bucket: String,
    /// Prefix inside the bucket.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Provider options: k=v,k2=v2 (region, s3Url, s3ForcePathStyle, profile, ...).
    #[arg(long, value_delimiter = ',')]
    pub config: Vec<String>,
    /// Credentials file (Velero style: `[default]` / `aws_access_key_id=...`).
    #[arg(long)]
    pub credential: Option<String>,
    /// A PEM file of the CA that signed the object store's certificate (stored in the
    /// location as `objectStorage.caCert`, base64, as Velero stores it).
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// ReadWrite or ReadOnly.
    #[arg(long, value_enum, default_value = "ReadWrite")]
    pub access_mode: AccessModeArg,
    /// Make it the default location.
    #[arg(long)]
    pub default: bool,
    /// Labels: k=v,...
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
}

/// `location get`.
#[derive(Args, Debug)]
pub struct LocationGet {
    /// Names (all when none).
    pub names: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
}

/// `location delete`.
#[derive(Args, Debug)]
pub struct LocationDelete {
    /// Names.
    pub names: Vec<String>,
    #[command(flatten)]
    pub confirm: ConfirmArg,
}

/// `location set`.
#[derive(Args, Debug)]
pub struct LocationSet {
    /// The location.
    pub name: String,
    /// ReadWrite or ReadOnly.
    #[arg(long, value_enum)]
    pub access_mode: Option<AccessModeArg>,
    /// Make it the default.
    #[arg(long)]
    pub default: bool,
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

/// `location ...`: through the cluster's BackupStorageLocation objects when the kube
/// context has lifeboat installed (`--mode`), else the user's config file.
pub async fn run(cli: &Cli, cmd: &LocationCmd) -> Result<Exit> {
    if let Mode::Cluster(s) = mode(cli, None, false).await? {
        return match cmd {
            LocationCmd::Create(c) => create_in_cluster(&s, c).await,
            LocationCmd::Get(g) => get_in_cluster(&s, g).await,
            LocationCmd::Delete(d) => delete_in_cluster(&s, d).await,
            LocationCmd::Set(a) => set_in_cluster(&s, a).await,
        };
    }
    match cmd {
        LocationCmd::Create(c) => create(c),
        LocationCmd::Get(g) => get(g).await,
        LocationCmd::Delete(d) => delete(d),
        LocationCmd::Set(s) => set(s),
    }
}

/// The location a `location create` command line describes.
fn location_from_flags(c: &LocationCreate) -> Result<BackupStorageLocation> {
    validate_name("backup storage location", &c.name)?;
    let credential = c.credential.as_ref().map(|c| {
        let p = PathBuf::from(c);
        let abs = std::fs::canonicalize(&p).unwrap_or(p);
        SecretKeySelector {
            name: abs.to_string_lossy().into_owned(),
            key: "cloud".into(),
        }
    });
    let mut l = BackupStorageLocation::new(
        &c.name,
        BackupStorageLocationSpec {
            provider: c.provider.clone(),
            config: parse_kv(&c.config, "config")?,
            credential,
            object_storage: ObjectStorageLocation {
                bucket: c.bucket.clone(),
                prefix: c.prefix.clone(),
                ca_cert: c
                    .cacert
                    .as_ref()
                    .map(|p| {
                        std::fs::read(p)
                            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
                            .with_context(|| format!("cannot read --cacert {}", p.display()))
                    })
                    .transpose()?,
            },
            default: c.default,
            access_mode: Some(c.access_mode.into()),
            ..Default::default()
        },
    );
    l.metadata.labels = parse_kv(&c.labels, "label")?;
    Ok(l)
}

/// `--credential` through the cluster: `SECRET=KEY` (Velero's form), a key of a Secret in
/// the server's namespace.
fn secret_credential(arg: &str) -> Result<SecretKeySelector> {
    match arg.split_once('=') {
        Some((name, key)) if !name.trim().is_empty() && !key.trim().is_empty() => {
            Ok(SecretKeySelector {
                name: name.trim().to_owned(),
                key: key.trim().to_owned(),
            })
        }
        _ => bail!(
            "--credential {arg:?}: through the cluster it names a key of a Secret in the server's namespace, SECRET=KEY (e.g. cloud-credentials=cloud); for a credentials file on this machine pass --mode local"
        ),
    }
}

async fn create_in_cluster(s: &Server, c: &LocationCreate) -> Result<Exit> {
    let credential = c.credential.as_deref().map(secret_credential).transpose()?;
    let mut l = location_from_flags(&LocationCreate {
        credential: None,
        ..c.clone()
    })?;
    l.spec.credential = credential;
    let obj = BackupStorageLocationResource::new(&c.name, l.spec.clone());
    objects::create(&s.cluster, &s.ns, obj, &l.metadata).await?;
    println!(
        "Backup storage location \"{}\" configured successfully in {}.",
        c.name, s.label
    );
    Ok(Exit::Ok)
}

/// The server's BackupStorageLocation objects (`names`, or all).
async fn cluster_locations(
    s: &Server,
    names: &[String],
) -> Result<Vec<BackupStorageLocationResource>> {
    Ok(objects::get_or_list(&s.cluster, &s.ns, "storage location", names).await?)
}

async fn get_in_cluster(s: &Server, g: &LocationGet) -> Result<Exit> {
    let objs = cluster_locations(s, &g.names).await?;
    if g.output != Output::Table {
        let locs = objs
            .iter()
            .map(|o| {
                to_velero::<serde_json::Value>(o).with_context(|| {
                    format!("storage location {:?} cannot be read", o.metadata.name)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        output::print_one_or_list(
            &locs,
            "BackupStorageLocationList",
            g.names.len() == 1,
            &g.output,
        )?;
        return Ok(Exit::Ok);
    }
    // The phase is the server's: it validates each location from inside the cluster.
    let mut rows = Vec::new();
    for o in &objs {
        let l: BackupStorageLocation = to_velero(o)
            .with_context(|| format!("storage location {:?} cannot be read", o.metadata.name))?;
        let phase = o
            .status
            .as_ref()
            .and_then(|st| st.phase)
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "Unknown".into());
        rows.push(location_row(&l, phase));
    }
    if rows.is_empty() {
        eprintln!("No storage locations found in {}.", s.label);
    }
    print!("{}", locations_table(&rows));
    Ok(Exit::Ok)
}

async fn delete_in_cluster(s: &Server, d: &LocationDelete) -> Result<Exit> {
    if d.names.is_empty() {
        bail!("name the storage locations to delete");
    }
    cluster_locations(s, &d.names).await?;
    if !confirm(
        &format!(
            "delete {} from {}",
            counted("storage location", &d.names),
            s.label
        ),
        "Their backups stay in the bucket.",
        d.confirm.confirm,
    )? {
        return Ok(Exit::Ok);
    }
    for n in &d.names {
        objects::delete::<BackupStorageLocationResource>(&s.cluster, &s.ns, "storage location", n)
            .await?;
        println!("Backup storage location \"{n}\" deleted. Its backups stay in the bucket.");
    }
    Ok(Exit::Ok)
}

async fn set_in_cluster(s: &Server, a: &LocationSet) -> Result<Exit> {
    let all = cluster_locations(s, &[]).await?;
    let name_of = |l: &BackupStorageLocationResource| l.metadata.name.clone().unwrap_or_default();
    if !all.iter().any(|l| name_of(l) == a.name) {
        bail!("storage location {:?} not found in {}", a.name, s.label);
    }
    if a.default {
        // One default: the others lose the mark first.
        for l in all
            .iter()
            .filter(|l| l.spec.default && name_of(l) != a.name)
        {
            objects::merge_patch::<BackupStorageLocationResource>(
                &s.cluster,
                &s.ns,
                "storage location",
                &name_of(l),
                &serde_json::json!({"spec": {"default": false}}),
            )
            .await?;
        }
    }
    let mut spec = serde_json::Map::new();
    if a.default {
        spec.insert("default".into(), true.into());
    }
    if let Some(m) = a.access_mode {
        let mode: lifeboat_types::api::velero::AccessMode = m.into();
        spec.insert("accessMode".into(), serde_json::to_value(mode)?);
    }
    objects::merge_patch::<BackupStorageLocationResource>(
        &s.cluster,
        &s.ns,
        "storage location",
        &a.name,
        &serde_json::json!({ "spec": spec }),
    )
    .await?;
    println!("Backup storage location \"{}\" updated.", a.name);
    Ok(Exit::Ok)
}

fn create(c: &LocationCreate) -> Result<Exit> {
    let l = location_from_flags(c)?;
    let mut cfg = load_config()?;
    // The location must open (provider, options, credentials file) before it is saved.
    Store::open(&l)?;
    cfg.add(l)?;
    cfg.save()?;
    println!(
        "Backup storage location \"{}\" configured successfully.",
        c.name
    );
    Ok(Exit::Ok)
}

async fn get(g: &LocationGet) -> Result<Exit> {
    let mut locs = load_config()?.all_with_default();
    if !g.names.is_empty() {
        for n in &g.names {
            if !locs.iter().any(|l| &l.metadata.name == n) {
                bail!("storage location {n:?} not found");
            }
        }
        locs.retain(|l| g.names.contains(&l.metadata.name));
    }
    if g.output != Output::Table {
        output::print_one_or_list(
            &locs,
            "BackupStorageLocationList",
            g.names.len() == 1,
            &g.output,
        )?;
        return Ok(Exit::Ok);
    }
    let mut rows = Vec::new();
    for l in &locs {
        let phase = match Store::open(l) {
            Ok(s) => match s.check(false).await {
                Ok(()) => "Available".to_string(),
                Err(_) => "Unavailable".to_string(),
            },
            Err(_) => "Unavailable".to_string(),
        };
        rows.push(location_row(l, phase));
    }
    print!("{}", locations_table(&rows));
    Ok(Exit::Ok)
}

/// A row of `location get`'s table.
fn location_row(l: &BackupStorageLocation, phase: String) -> Vec<String> {
    let bucket = if l.spec.object_storage.prefix.is_empty() {
        l.spec.object_storage.bucket.clone()
    } else {
        format!(
            "{}/{}",
            l.spec.object_storage.bucket, l.spec.object_storage.prefix
        )
    };
    vec![
        l.metadata.name.clone(),
        l.spec.provider.clone(),
        bucket,
        phase,
        format!("{:?}", l.spec.access_mode.unwrap_or_default()),
        if l.spec.default {
            "true".into()
        } else {
            String::new()
        },
    ]
}

fn locations_table(rows: &[Vec<String>]) -> String {
    output::table(
        &[
            "NAME",
            "PROVIDER",
            "BUCKET/PREFIX",
            "PHASE",
            "ACCESS MODE",
            "DEFAULT",
        ],
        rows,
    )
}

fn delete(d: &LocationDelete) -> Result<Exit> {
    if d.names.is_empty() {
        bail!("name the storage locations to delete");
    }
    let mut cfg = load_config()?;
    // Removed in memory first: an unknown name is refused before anything is asked.
    for n in &d.names {
        cfg.remove(n)?;
    }
    if !confirm(
        &format!("delete {}", counted("storage location", &d.names)),
        "Their backups stay in the bucket.",
        d.confirm.confirm,
    )? {
        return Ok(Exit::Ok);
    }
    cfg.save()?;
    for n in &d.names {
        println!("Backup storage location \"{n}\" deleted. Its backups stay in the bucket.");
    }
    Ok(Exit::Ok)
}

fn set(s: &LocationSet) -> Result<Exit> {
    let mut cfg = load_config()?;
    if cfg.get(&s.name).is_none() {
        bail!("storage location {:?} not found", s.name);
    }
    for l in &mut cfg.locations {
        if s.default {
            l.spec.default = l.metadata.name == s.name;
        }
        if l.metadata.name == s.name
            && let Some(m) = s.access_mode
        {
            l.spec.access_mode = Some(m.into());
        }
    }
    cfg.save()?;
    println!("Backup storage location \"{}\" updated.", s.name);
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_through_the_cluster_is_a_secret_and_key() {
        let c = secret_credential("cloud-credentials=cloud").unwrap();
        assert_eq!(
            (c.name.as_str(), c.key.as_str()),
            ("cloud-credentials", "cloud")
        );
        let e = secret_credential("./credentials-velero").unwrap_err();
        assert!(
            format!("{e:#}").contains("SECRET=KEY") && format!("{e:#}").contains("--mode local"),
            "{e:#}"
        );
        assert!(secret_credential("=cloud").is_err());
    }
    use crate::cli::Command;
    use lifeboat_types::api::velero::AccessMode;

    fn create(args: &[&str]) -> LocationCreate {
        match crate::cli::parse_for_test(&["location", "create"], args) {
            Command::Location(LocationCmd::Create(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_location() {
        let l = location_from_flags(&create(&[
            "s3",
            "--provider",
            "aws",
            "--bucket",
            "velero",
            "--prefix",
            "cluster-a",
            "--config",
            "region=us-east-1,s3ForcePathStyle=true",
            "--access-mode",
            "ReadOnly",
            "--default",
            "--labels",
            "env=prod",
        ]))
        .unwrap();
        assert_eq!(l.metadata.name, "s3");
        assert_eq!(l.spec.provider, "aws");
        assert_eq!(l.spec.object_storage.bucket, "velero");
        assert_eq!(l.spec.object_storage.prefix, "cluster-a");
        assert_eq!(l.spec.config["region"], "us-east-1");
        assert_eq!(l.spec.config["s3ForcePathStyle"], "true");
        assert_eq!(l.spec.access_mode, Some(AccessMode::ReadOnly));
        assert!(l.spec.default);
        assert_eq!(l.metadata.labels["env"], "prod");
        assert!(l.spec.credential.is_none());
    }

    #[test]
    fn bad_flags_name_the_problem() {
        let e = location_from_flags(&create(&["Bad_Name", "--provider", "aws", "--bucket", "b"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Bad_Name"), "{e}");
        let e = location_from_flags(&create(&[
            "s3",
            "--provider",
            "aws",
            "--bucket",
            "b",
            "--config",
            "region",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("invalid config \"region\""), "{e}");
    }
}
