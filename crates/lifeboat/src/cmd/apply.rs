//! `apply -f`: velero.io/v1 documents run here (Backup, Restore), saved locally
//! (BackupStorageLocation, VolumeSnapshotLocation), or handed to the in-cluster server
//! (Schedule always; the others with `--server`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lifeboat_engine::backup::BackupOptions;
use lifeboat_engine::objects;
use lifeboat_types::format::document::{VeleroDocument, parse_documents};
use lifeboat_types::rules::schedule::Cron;

use crate::cli::Cli;
use crate::cmd::backup::run_one_backup;
use crate::cmd::restore::{RestoreCreate, run_one_restore};
use crate::cmd::snapshot_location::save_in_cluster;
use crate::common::{connect, load_config, open_store};
use crate::exit::Exit;

/// `apply` flags.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// File with one or more YAML documents (`-` for standard input).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Override the storage location of every Backup in the file.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Hand Backups, Restores, BackupStorageLocations and VolumeSnapshotLocations to the
    /// lifeboat server in the cluster (created as lifeboat.dev objects in their namespace,
    /// else -n) instead of running them here / saving the location locally. Schedules
    /// always go to the server.
    #[arg(long)]
    pub server: bool,
}

/// `apply -f FILE`.
pub async fn run(cli: &Cli, a: &ApplyArgs) -> Result<Exit> {
    let (file, location, to_server) = (&a.file, a.storage_location.as_deref(), a.server);
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let docs = parse_documents(&text).with_context(|| format!("{}", file.display()))?;
    if docs.is_empty() {
        bail!("{} holds no documents", file.display());
    }
    // Checked before anything is sent.
    if to_server
        && location.is_some()
        && let Some(VeleroDocument::Restore(r)) = docs
            .iter()
            .find(|d| matches!(d, VeleroDocument::Restore(_)))
    {
        bail!(
            "Restore {:?}: --storage-location does not apply to a Restore run by the server (it reads its backup's location); drop the flag or send the Restore separately",
            r.metadata.name
        );
    }
    let mut code = Exit::Ok;
    for d in docs {
        match d {
            VeleroDocument::Schedule(sch) => {
                apply_to_server(cli, ServerDocument::Schedule(*sch)).await?;
            }
            VeleroDocument::Backup(mut b) if to_server => {
                if let Some(l) = location {
                    b.spec.storage_location = Some(l.to_owned());
                }
                apply_to_server(cli, ServerDocument::Backup(*b)).await?;
            }
            VeleroDocument::Restore(r) if to_server => {
                apply_to_server(cli, ServerDocument::Restore(*r)).await?;
            }
            VeleroDocument::BackupStorageLocation(l) if to_server => {
                apply_to_server(cli, ServerDocument::Location(*l)).await?;
            }
            VeleroDocument::BackupStorageLocation(l) => {
                let mut cfg = load_config()?;
                let name = l.metadata.name.clone();
                cfg.add(*l)?;
                cfg.save()?;
                println!("Backup storage location \"{name}\" configured successfully.");
            }
            VeleroDocument::VolumeSnapshotLocation(l) if to_server => {
                let name = l.metadata.name.clone();
                save_in_cluster(cli, *l).await?;
                println!(
                    "VolumeSnapshotLocation {name:?} created in namespace {}; kept (lifeboat takes no volume snapshots yet).",
                    cli.namespace
                );
            }
            VeleroDocument::VolumeSnapshotLocation(l) => {
                let mut cfg = load_config()?;
                let name = l.metadata.name.clone();
                cfg.add_snapshot_location(*l)?;
                cfg.save()?;
                println!(
                    "Volume snapshot location \"{name}\" configured successfully (kept; lifeboat takes no volume snapshots yet)."
                );
            }
            VeleroDocument::Restore(mut r) => {
                let store = open_store(location)?;
                r.status = None;
                let c = RestoreCreate {
                    parallelism: lifeboat_engine::restore::DEFAULT_PARALLELISM,
                    wait: true,
                    ..Default::default()
                };
                code = code.max(run_one_restore(cli, &store, *r, &c).await?);
            }
            VeleroDocument::Backup(mut b) => {
                if let Some(l) = location {
                    b.spec.storage_location = Some(l.to_owned());
                }
                b.status = None;
                code =
                    code.max(run_one_backup(cli, *b, true, None, &BackupOptions::default()).await?);
            }
        }
    }
    Ok(code)
}

/// A velero.io/v1 document handed to the server: created as the lifeboat.dev object of the
/// same kind in the cluster (its namespace, else `-n`). The spec is the same Rust type, so
/// nothing is translated away; unknown fields were refused when the document was read.
enum ServerDocument {
    /// A Backup, run by the server.
    Backup(lifeboat_types::api::velero::Backup),
    /// A Restore, run by the server.
    Restore(lifeboat_types::api::velero::Restore),
    /// A Schedule.
    Schedule(lifeboat_types::api::velero::Schedule),
    /// A storage location (its credential names a Secret in the namespace).
    Location(lifeboat_types::api::velero::BackupStorageLocation),
}

fn doc_kind(doc: &ServerDocument) -> &'static str {
    match doc {
        ServerDocument::Backup(_) => "Backup",
        ServerDocument::Restore(_) => "Restore",
        ServerDocument::Schedule(_) => "Schedule",
        ServerDocument::Location(_) => "BackupStorageLocation",
    }
}

/// `apply -f` of a document the server runs (a Schedule always; Backup, Restore and
/// BackupStorageLocation with `--server`).
async fn apply_to_server(cli: &Cli, doc: ServerDocument) -> Result<()> {
    use lifeboat_types::api::crd::{
        BackupResource, BackupStorageLocationResource, RestoreResource, ScheduleResource,
    };
    let meta = match &doc {
        ServerDocument::Backup(b) => &b.metadata,
        ServerDocument::Restore(r) => &r.metadata,
        ServerDocument::Schedule(s) => &s.metadata,
        ServerDocument::Location(l) => &l.metadata,
    }
    .clone();
    lifeboat_types::api::names::validate_name("object", &meta.name)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // As kubectl: a document's namespace must agree with -n (whose default is velero, the
    // namespace the guides' documents name).
    let ns = match &meta.namespace {
        Some(doc_ns) if *doc_ns != cli.namespace => bail!(
            "{} {:?} names namespace {doc_ns:?} but -n is {:?}: pass -n {doc_ns}, or change (or drop) metadata.namespace in the document",
            doc_kind(&doc),
            meta.name,
            cli.namespace
        ),
        _ => cli.namespace.clone(),
    };
    // Checked here so that a bad document is named before anything is created.
    let (what, runs) = match &doc {
        ServerDocument::Schedule(s) => {
            Cron::parse(&s.spec.schedule)
                .map_err(|e| anyhow::anyhow!("Schedule {:?}: {e}", meta.name))?;
            ("Schedule", "the lifeboat server makes its backups")
        }
        ServerDocument::Restore(r) => {
            if r.spec.backup_name.is_empty()
                && r.spec.schedule_name.as_deref().unwrap_or("").is_empty()
            {
                bail!(
                    "Restore {:?}: spec.backupName or spec.scheduleName is required",
                    meta.name
                );
            }
            ("Restore", "the lifeboat server runs it")
        }
        ServerDocument::Backup(_) => ("Backup", "the lifeboat server runs it"),
        ServerDocument::Location(_) => {
            ("BackupStorageLocation", "the lifeboat server validates it")
        }
    };
    let cluster = connect(cli).await?;
    match doc {
        ServerDocument::Schedule(s) => {
            objects::create(
                &cluster,
                &ns,
                ScheduleResource::new(&meta.name, s.spec),
                &meta,
            )
            .await?
        }
        ServerDocument::Backup(b) => {
            objects::create(
                &cluster,
                &ns,
                BackupResource::new(&meta.name, b.spec),
                &meta,
            )
            .await?
        }
        ServerDocument::Restore(r) => {
            objects::create(
                &cluster,
                &ns,
                RestoreResource::new(&meta.name, r.spec),
                &meta,
            )
            .await?
        }
        ServerDocument::Location(l) => {
            objects::create(
                &cluster,
                &ns,
                BackupStorageLocationResource::new(&meta.name, l.spec),
                &meta,
            )
            .await?
        }
    }
    println!("{what} {:?} created in namespace {ns}; {runs}.", meta.name);
    Ok(())
}
