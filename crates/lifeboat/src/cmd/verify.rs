//! `backup verify`.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use lifeboat_engine::catalog;
use lifeboat_engine::verify::{VerifyOptions, verify};
use lifeboat_types::GoDuration;
use lifeboat_types::rules::backups::{FINISHED, newest};

use crate::cli::{Cli, LocationArg, Output};
use crate::common::{Mode, connect, cronjob_api_version, mode, open_store};
use crate::exit::Exit;
use crate::output;

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
    /// The id in the scratch namespaces' names (default: from the clock); for tests.
    #[arg(long, hide = true, requires = "test_restore")]
    pub test_restore_id: Option<String>,
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

/// `backup verify`: exit 0 when every check passed, 1 otherwise.
pub async fn backup_verify(cli: &Cli, v: &BackupVerify) -> Result<Exit> {
    let max_age = v
        .max_age
        .as_deref()
        .map(|s| {
            s.parse::<GoDuration>()
                .map_err(|e| anyhow!("--max-age: {e}"))
        })
        .transpose()?;
    if v.print_cronjob {
        // The job runs in the cluster with the server's ServiceAccount: through the
        // server's objects of this namespace (its storage locations and their Secrets).
        let mut args = vec![
            "-n".to_string(),
            cli.namespace.clone(),
            "backup".to_string(),
            "verify".to_string(),
        ];
        match &v.name {
            Some(n) => args.push(n.clone()),
            None => args.push("--latest".into()),
        }
        if let Some(s) = &v.schedule {
            args.extend(["--schedule".into(), s.clone()]);
        }
        if let Some(m) = &v.max_age {
            args.extend(["--max-age".into(), m.clone()]);
        }
        if v.test_restore {
            args.push("--test-restore".into());
        }
        if let Some(l) = &v.location.storage_location {
            args.extend(["--storage-location".into(), l.clone()]);
        }
        let api = cronjob_api_version(cli)
            .await
            .unwrap_or_else(|_| "batch/v1".into());
        let job = lifeboat_types::manifests::install::verify_cronjob(
            &cli.namespace,
            &api,
            &v.cron,
            &v.image,
            &args,
        );
        // A test restore deletes the scratch namespaces it made: the one right the server's
        // roles lack, granted with the CronJob that needs it.
        let mut docs = vec![job];
        if v.test_restore {
            docs.extend(lifeboat_types::manifests::install::verify_cleanup_rbac(
                &cli.namespace,
            ));
        }
        let texts = docs
            .iter()
            .map(serde_yaml_ng::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        print!("{}", texts.join("---\n"));
        return Ok(Exit::Ok);
    }
    // Through the cluster (lifeboat installed in the kube context, or in the verify
    // CronJob's pod): the server's location and credentials; else this machine's.
    let location = v.location.storage_location.as_deref();
    let store = match mode(cli, location, false).await? {
        Mode::Cluster(s) => s.location(location).await?.0,
        Mode::Local => open_store(location)?,
    };
    let name = match &v.name {
        Some(n) => n.clone(),
        None => {
            let all = catalog::list_backups(&store).await?;
            let Some(newest) = newest(&all, v.schedule.as_deref(), FINISHED) else {
                bail!(
                    "no backup{} in location {:?}",
                    v.schedule
                        .as_ref()
                        .map(|s| format!(" of schedule {s:?}"))
                        .unwrap_or_default(),
                    store.name()
                );
            };
            newest.metadata.name.clone()
        }
    };
    let cluster = if v.test_restore {
        Some(connect(cli).await?)
    } else {
        None
    };
    let opts = VerifyOptions {
        max_age: max_age.map(|d| d.0),
        test_restore: v.test_restore.then(|| {
            v.test_restore_id.clone().unwrap_or_else(|| {
                let t = chrono::Utc::now().timestamp() as u64;
                format!("{:x}", t % 0xfffff)
            })
        }),
    };
    let report = verify(cluster.as_ref(), &store, &name, &opts).await?;
    if !matches!(v.output, Output::Table) {
        output::print_structured(&report, &v.output)?;
    } else {
        let rows: Vec<Vec<String>> = report
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.check.clone(),
                    if c.ok { "ok" } else { "FAILED" }.into(),
                    c.detail.clone(),
                ]
            })
            .collect();
        println!("Backup {}:", report.backup);
        print!("{}", output::table(&["CHECK", "RESULT", "DETAIL"], &rows));
        println!(
            "{}",
            if report.ok {
                "Every check passed."
            } else {
                "Verification FAILED."
            }
        );
    }
    Ok(Exit::of_check(report.ok))
}
