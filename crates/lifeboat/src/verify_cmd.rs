//! `backup verify`.

use anyhow::{Result, anyhow, bail};
use lifeboat_engine::catalog;
use lifeboat_engine::verify::{VerifyOptions, verify};
use lifeboat_types::GoDuration;
use lifeboat_types::rules::backups::{FINISHED, newest};

use crate::cli::{BackupVerify, Cli, Output};
use crate::{connect, open_store, output};

pub(crate) async fn backup_verify(cli: &Cli, v: &BackupVerify) -> Result<u8> {
    let max_age = v
        .max_age
        .as_deref()
        .map(|s| {
            s.parse::<GoDuration>()
                .map_err(|e| anyhow!("--max-age: {e}"))
        })
        .transpose()?;
    if v.print_cronjob {
        let mut args = vec!["backup".to_string(), "verify".to_string()];
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
        let api = crate::cronjob_api_version(cli)
            .await
            .unwrap_or_else(|_| "batch/v1".into());
        let job = lifeboat_types::manifests::install::verify_cronjob(
            &cli.namespace,
            &api,
            &v.cron,
            &v.image,
            &args,
        );
        print!("{}", serde_yaml_ng::to_string(&job)?);
        return Ok(0);
    }
    let store = open_store(v.location.storage_location.as_deref())?;
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
            let t = chrono::Utc::now().timestamp() as u64;
            format!("{:x}", t % 0xfffff)
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
    Ok(if report.ok { 0 } else { 1 })
}
