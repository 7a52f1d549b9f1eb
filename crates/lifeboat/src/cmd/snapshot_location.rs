//! `snapshot-location create|get`: velero.io/v1 VolumeSnapshotLocations, kept in the
//! user's config file beside the storage locations, or (`--server`) as lifeboat.dev
//! objects in the cluster. lifeboat takes no volume snapshots yet: the locations are kept
//! and shown so that the guides' documents and commands go through, and a backup records
//! the ones it names.

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use lifeboat_engine::objects;
use lifeboat_types::api::crd::VolumeSnapshotLocationResource;
use lifeboat_types::api::names::validate_name;
use lifeboat_types::api::velero::{
    ObjectMeta, SecretKeySelector, VolumeSnapshotLocation, VolumeSnapshotLocationSpec,
};

use crate::cli::{Cli, Output};
use crate::common::{connect, load_config, parse_kv};
use crate::exit::Exit;
use crate::output;

/// `snapshot-location ...` commands.
#[derive(Subcommand, Debug)]
pub enum SnapshotLocationCmd {
    /// Save a volume snapshot location (kept and shown; lifeboat takes no volume snapshots
    /// yet).
    #[command(after_help = "\
Examples:
  lifeboat snapshot-location create default --provider aws --config region=us-east-1
  lifeboat -n velero snapshot-location create default --provider alibabacloud \\
      --config region=cn-hangzhou --server          # a lifeboat.dev object in the cluster")]
    Create(SnapshotLocationCreate),
    /// List volume snapshot locations.
    #[command(after_help = "\
Examples:
  lifeboat snapshot-location get
  lifeboat snapshot-location get default -o yaml
  lifeboat -n velero snapshot-location get --server")]
    Get(SnapshotLocationGet),
}

/// `snapshot-location create`.
#[derive(Args, Debug)]
pub struct SnapshotLocationCreate {
    /// The location's name.
    pub name: String,
    /// The volume snapshot provider (aws, gcp, azure, alibabacloud, ...).
    #[arg(long)]
    pub provider: String,
    /// Provider options: k=v,k2=v2 (region, apiTimeout, ...).
    #[arg(long, value_delimiter = ',')]
    pub config: Vec<String>,
    /// Credentials: SECRET=KEY, a key of a Secret in the namespace (as Velero's).
    #[arg(long)]
    pub credential: Option<String>,
    /// Labels: k=v,...
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Create it in the cluster (lifeboat.dev, namespace -n) instead of the config file.
    #[arg(long)]
    pub server: bool,
    /// Print the location (json, yaml) instead of saving it.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
}

/// `snapshot-location get`.
#[derive(Args, Debug)]
pub struct SnapshotLocationGet {
    /// Names (all when none).
    pub names: Vec<String>,
    /// Output format: table, json, yaml, jsonpath=TEMPLATE.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    /// List the cluster's (namespace -n) instead of the config file's.
    #[arg(long)]
    pub server: bool,
}

/// `snapshot-location ...`.
pub async fn run(cli: &Cli, cmd: &SnapshotLocationCmd) -> Result<Exit> {
    match cmd {
        SnapshotLocationCmd::Create(c) => create(cli, c).await,
        SnapshotLocationCmd::Get(g) => get(cli, g).await,
    }
}

/// The location a `snapshot-location create` command line describes.
fn location_from_flags(
    c: &SnapshotLocationCreate,
    namespace: &str,
) -> Result<VolumeSnapshotLocation> {
    validate_name("volume snapshot location", &c.name)?;
    if c.provider.trim().is_empty() {
        bail!("--provider is required: the volume snapshot provider (aws, gcp, azure, ...)");
    }
    let credential = c
        .credential
        .as_deref()
        .map(|s| match s.split_once('=') {
            Some((name, key)) if !name.is_empty() && !key.is_empty() => Ok(SecretKeySelector {
                name: name.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(anyhow!(
                "invalid --credential {s:?}: expected SECRET=KEY (a key of a Secret in the namespace)"
            )),
        })
        .transpose()?;
    let mut l = VolumeSnapshotLocation::new(
        &c.name,
        VolumeSnapshotLocationSpec {
            provider: c.provider.clone(),
            config: parse_kv(&c.config, "config")?,
            credential,
        },
    );
    l.metadata.namespace = Some(namespace.to_owned());
    l.metadata.labels = parse_kv(&c.labels, "label")?;
    Ok(l)
}

async fn create(cli: &Cli, c: &SnapshotLocationCreate) -> Result<Exit> {
    let l = location_from_flags(c, &cli.namespace)?;
    if let Some(o) = &c.output {
        output::print_structured(&l, o)?;
        return Ok(Exit::Ok);
    }
    let name = l.metadata.name.clone();
    if c.server {
        save_in_cluster(cli, l).await?;
        println!(
            "Volume snapshot location \"{name}\" created in namespace {}. Note: lifeboat takes no volume snapshots yet; the location is kept and shown.",
            cli.namespace
        );
    } else {
        let mut cfg = load_config()?;
        cfg.add_snapshot_location(l)?;
        cfg.save()?;
        println!(
            "Volume snapshot location \"{name}\" configured successfully. Note: lifeboat takes no volume snapshots yet; the location is kept and shown."
        );
    }
    Ok(Exit::Ok)
}

/// Creates `l` as a lifeboat.dev VolumeSnapshotLocation in namespace -n (`apply --server`
/// and `snapshot-location create --server`).
pub async fn save_in_cluster(cli: &Cli, l: VolumeSnapshotLocation) -> Result<()> {
    let meta = l.metadata.clone();
    if let Some(ns) = &meta.namespace
        && *ns != cli.namespace
    {
        bail!(
            "VolumeSnapshotLocation {:?} names namespace {ns:?} but -n is {:?}: pass -n {ns}, or change (or drop) metadata.namespace in the document",
            meta.name,
            cli.namespace
        );
    }
    let cluster = connect(cli).await?;
    objects::create(
        &cluster,
        &cli.namespace,
        VolumeSnapshotLocationResource::new(&meta.name, l.spec),
        &meta,
    )
    .await?;
    Ok(())
}

/// A cluster's lifeboat.dev VolumeSnapshotLocation as the velero.io/v1 document.
fn from_cluster(r: VolumeSnapshotLocationResource) -> VolumeSnapshotLocation {
    let mut l = VolumeSnapshotLocation::new(r.metadata.name.clone().unwrap_or_default(), r.spec);
    l.metadata = ObjectMeta {
        name: l.metadata.name,
        namespace: r.metadata.namespace,
        labels: r.metadata.labels.unwrap_or_default(),
        annotations: r.metadata.annotations.unwrap_or_default(),
        uid: r.metadata.uid,
        resource_version: r.metadata.resource_version,
        ..Default::default()
    };
    l.status = r.status;
    l
}

async fn get(cli: &Cli, g: &SnapshotLocationGet) -> Result<Exit> {
    let mut locs: Vec<VolumeSnapshotLocation> = if g.server {
        let cluster = connect(cli).await?;
        objects::get_or_list::<VolumeSnapshotLocationResource>(
            &cluster,
            &cli.namespace,
            "volume snapshot location",
            &g.names,
        )
        .await?
        .into_iter()
        .map(from_cluster)
        .collect()
    } else {
        load_config()?.snapshot_locations
    };
    if !g.server && !g.names.is_empty() {
        for n in &g.names {
            if !locs.iter().any(|l| &l.metadata.name == n) {
                bail!(
                    "volume snapshot location {n:?} not found in the config file; see `lifeboat snapshot-location get` (or pass --server for the cluster's)"
                );
            }
        }
        locs.retain(|l| g.names.contains(&l.metadata.name));
    }
    if g.output != Output::Table {
        output::print_one_or_list(
            &locs,
            "VolumeSnapshotLocationList",
            g.names.len() == 1,
            &g.output,
        )?;
        return Ok(Exit::Ok);
    }
    print!("{}", table(&locs));
    Ok(Exit::Ok)
}

/// Velero's columns, and the config (provider options are not secret).
fn table(locs: &[VolumeSnapshotLocation]) -> String {
    let rows: Vec<Vec<String>> = locs
        .iter()
        .map(|l| {
            vec![
                l.metadata.name.clone(),
                l.spec.provider.clone(),
                l.spec
                    .config
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    output::table(&["NAME", "PROVIDER", "CONFIG"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    fn create(args: &[&str]) -> SnapshotLocationCreate {
        match crate::cli::parse_for_test(&["snapshot-location", "create"], args) {
            Command::SnapshotLocation(SnapshotLocationCmd::Create(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn velero_flags_become_the_location() {
        let l = location_from_flags(
            &create(&[
                "default",
                "--provider",
                "alibabacloud",
                "--config",
                "region=cn-hangzhou,apiTimeout=5m",
                "--credential",
                "cloud-credentials=cloud",
                "--labels",
                "env=prod",
            ]),
            "velero",
        )
        .unwrap();
        assert_eq!(l.api_version, "velero.io/v1");
        assert_eq!(l.kind, "VolumeSnapshotLocation");
        assert_eq!(l.metadata.namespace.as_deref(), Some("velero"));
        assert_eq!(l.spec.provider, "alibabacloud");
        assert_eq!(l.spec.config["region"], "cn-hangzhou");
        assert_eq!(l.spec.config["apiTimeout"], "5m");
        assert_eq!(
            l.spec.credential,
            Some(SecretKeySelector {
                name: "cloud-credentials".into(),
                key: "cloud".into()
            })
        );
        assert_eq!(l.metadata.labels["env"], "prod");
    }

    #[rstest::rstest]
    #[case::name(&["Bad_Name", "--provider", "aws"], "invalid volume snapshot location name \"Bad_Name\"")]
    #[case::provider(&["v", "--provider", " "], "--provider is required")]
    #[case::config(&["v", "--provider", "aws", "--config", "region"], "invalid config \"region\"")]
    #[case::credential(&["v", "--provider", "aws", "--credential", "secret"], "invalid --credential \"secret\": expected SECRET=KEY")]
    fn bad_flags_name_the_problem(#[case] args: &[&str], #[case] want: &str) {
        let e = format!(
            "{:#}",
            location_from_flags(&create(args), "velero").unwrap_err()
        );
        assert!(e.contains(want), "{e}");
    }

    #[test]
    fn provider_is_required_by_the_parser() {
        let argv = ["lifeboat", "snapshot-location", "create", "v"];
        let e = <crate::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap_err();
        assert!(e.to_string().contains("--provider"), "{e}");
    }
}
