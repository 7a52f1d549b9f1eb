//! `backup replicate`: copies backups (and etcd snapshots and volume repositories)
//! between storage locations, checked, idempotently (`engine::replicate`).

use anyhow::Result;
use clap::Args;

use lifeboat_engine::replicate::{BackupOutcome, ReplicateOptions, replicate};
use lifeboat_engine::storage::Store;

use crate::cli::{Cli, Output};
use crate::common::{parse_duration, resolve_location};
use crate::exit::Exit;
use crate::output;

/// `backup replicate` flags.
#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// The location copied from (a name of the locations file, or a URL); only read.
    #[arg(long)]
    pub from: String,
    /// The location copied to (a name or a URL); nothing there is replaced or deleted.
    #[arg(long)]
    pub to: String,
    /// Only backups completed within this duration (`24h`); default every one.
    #[arg(long)]
    pub since: Option<String>,
    /// Only these backups (repeat or comma-separate); default every one.
    #[arg(long = "backup", value_delimiter = ',')]
    pub backups: Vec<String>,
    /// Leave the etcd snapshots (`metadata/etcd/`) out.
    #[arg(long)]
    pub no_etcd: bool,
    /// Leave the volume repositories (`restic/`) out.
    #[arg(long)]
    pub no_volumes: bool,
    /// Say what would be copied; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format: table, json or yaml.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
}

/// Runs `backup replicate`. Exit 0 when everything asked for is at the destination, 3
/// when a backup or file conflicts or failed (the next run retries what failed), 1 when
/// the run could not start.
pub async fn run(_cli: &Cli, a: &ReplicateArgs) -> Result<Exit> {
    let from = Store::open(&resolve_location(Some(&a.from))?)?;
    let to = Store::open(&resolve_location(Some(&a.to))?)?;
    let since = parse_duration("since", a.since.as_deref())?.map(|d| {
        chrono::Utc::now()
            .checked_sub_signed(chrono::Duration::from_std(d.0).unwrap_or_default())
            .unwrap_or_default()
    });
    let opts = ReplicateOptions {
        since,
        backups: a.backups.clone(),
        etcd: !a.no_etcd,
        volumes: !a.no_volumes,
        dry_run: a.dry_run,
    };
    let r = replicate(&from, &to, &opts).await?;
    let structured = match &a.output {
        Some(o) => output::print_structured(&r, o)?,
        None => false,
    };
    if !structured {
        println!(
            "{:<40} {:<13} {:>6} {:>12}  DETAIL",
            "BACKUP", "OUTCOME", "FILES", "BYTES"
        );
        for b in &r.backups {
            let outcome = serde_json::to_value(b.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            println!(
                "{:<40} {:<13} {:>6} {:>12}  {}",
                b.name,
                outcome,
                b.files,
                b.bytes,
                b.detail.as_deref().unwrap_or("")
            );
        }
        for (what, t) in [
            ("etcd snapshots", &r.etcd),
            ("volume repositories", &r.volumes),
        ] {
            if let Some(t) = t {
                println!(
                    "{what}: {} copied ({} bytes), {} there already, {} conflicts, {} failed",
                    t.copied,
                    t.bytes,
                    t.already_there,
                    t.conflicts.len(),
                    t.failed.len()
                );
                for c in &t.conflicts {
                    println!("  conflict (left alone): {c}");
                }
                for f in &t.failed {
                    println!("  failed: {f}");
                }
            }
        }
        let copied = r
            .backups
            .iter()
            .filter(|b| matches!(b.outcome, BackupOutcome::Copied | BackupOutcome::WouldCopy))
            .count();
        println!(
            "{} {copied} backups from {} to {}{}.",
            if r.dry_run { "Would copy" } else { "Copied" },
            r.from,
            r.to,
            if r.complete() {
                ""
            } else {
                "; some were not: see above (a failed copy is retried by the next run)"
            }
        );
    }
    Ok(if r.complete() {
        Exit::Ok
    } else {
        Exit::PartiallyFailed
    })
}
