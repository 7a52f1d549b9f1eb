//! `location create|get|delete|set`: storage locations kept in the user's config file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use lifeboat_engine::storage::Store;
use lifeboat_types::api::names::validate_name;
use lifeboat_types::api::velero::{
    BackupStorageLocation, BackupStorageLocationSpec, ObjectStorageLocation, SecretKeySelector,
};

use crate::cli::{ConfirmArg, Output};
use crate::common::{load_config, parse_kv};
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
#[derive(Args, Debug)]
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

/// `location ...`.
pub async fn run(cmd: &LocationCmd) -> Result<Exit> {
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
        let bucket = if l.spec.object_storage.prefix.is_empty() {
            l.spec.object_storage.bucket.clone()
        } else {
            format!(
                "{}/{}",
                l.spec.object_storage.bucket, l.spec.object_storage.prefix
            )
        };
        rows.push(vec![
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
        ]);
    }
    print!(
        "{}",
        output::table(
            &[
                "NAME",
                "PROVIDER",
                "BUCKET/PREFIX",
                "PHASE",
                "ACCESS MODE",
                "DEFAULT"
            ],
            &rows
        )
    );
    Ok(Exit::Ok)
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
