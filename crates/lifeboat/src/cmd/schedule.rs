//! `schedule create|get|describe|pause|unpause|delete`: Schedule objects for the
//! in-cluster server (the requests are `lifeboat_engine::objects::Schedules`).

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use kube::ResourceExt;
use lifeboat_engine::objects::Schedules;
use lifeboat_types::api::crd::ScheduleResource;
use lifeboat_types::api::velero::ScheduleSpec;
use lifeboat_types::rules::schedule::Cron;

use crate::cli::{Cli, ConfirmArg, Output};
use crate::cmd::backup::{BackupCreate, backup_from_flags};
use crate::common::connect;
use crate::confirm::{confirm, counted};
use crate::exit::Exit;
use crate::output;

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
    Get(ScheduleGet),
    /// Describe schedules.
    Describe(ScheduleDescribe),
    /// Stop making backups.
    Pause(ScheduleNames),
    /// Resume making backups.
    Unpause(ScheduleNames),
    /// Delete schedules (their backups stay).
    Delete(ScheduleDelete),
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

/// `schedule get`.
#[derive(Args, Debug)]
pub struct ScheduleGet {
    /// Names (all when none).
    pub names: Vec<String>,
    /// Output format: table, json, yaml.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub sort: crate::cli::SortArg,
}

/// `schedule describe`.
#[derive(Args, Debug)]
pub struct ScheduleDescribe {
    /// Names (all when none).
    pub names: Vec<String>,
}

/// `schedule pause|unpause`.
#[derive(Args, Debug)]
pub struct ScheduleNames {
    /// Names.
    #[arg(required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every schedule.
    #[arg(long)]
    pub all: bool,
}

/// `schedule delete`.
#[derive(Args, Debug)]
pub struct ScheduleDelete {
    #[command(flatten)]
    pub names: ScheduleNames,
    #[command(flatten)]
    pub confirm: ConfirmArg,
}

/// The ScheduleSpec a `schedule create` command line describes.
fn spec_from_flags(c: &ScheduleCreate, namespace: &str) -> Result<ScheduleSpec> {
    Cron::parse(&c.schedule).map_err(|e| anyhow!("{e}"))?;
    let backup = backup_from_flags(&c.template, namespace)?;
    let mut template = backup.spec;
    template.metadata.labels = backup.metadata.labels;
    Ok(ScheduleSpec {
        template,
        schedule: c.schedule.clone(),
        use_owner_references_in_backup: c.use_owner_references_in_backup.then_some(true),
        paused: c.paused,
        skip_immediately: c.skip_immediately.then_some(true),
    })
}

/// The namespace's schedules in the cluster.
async fn open(cli: &Cli) -> Result<Schedules> {
    Ok(Schedules::new(&connect(cli).await?, &cli.namespace))
}

/// `schedule ...`.
pub async fn run(cli: &Cli, cmd: &ScheduleCmd) -> Result<Exit> {
    match cmd {
        ScheduleCmd::Create(c) => {
            // The command line is checked before anything is sent.
            let spec = spec_from_flags(c, &cli.namespace)?;
            let name = &c.template.name;
            let made = open(cli).await?.create(name, spec).await?;
            match &c.template.output {
                Some(o) => {
                    output::print_structured(&made, o)?;
                }
                None => println!(
                    "Schedule {name:?} created successfully. Its backups are named {name}-YYYYMMDDhhmmss; see them with `lifeboat backup get -l velero.io/schedule-name={name}`."
                ),
            }
        }
        ScheduleCmd::Get(g) => {
            g.sort.key::<ScheduleResource>()?;
            let mut items = open(cli).await?.get_or_list(&g.names).await?;
            g.sort.sort(&mut items)?;
            if matches!(g.output, Output::Table) {
                print!("{}", table(&items));
            } else {
                output::print_one_or_list(&items, "ScheduleList", g.names.len() == 1, &g.output)?;
            }
        }
        ScheduleCmd::Describe(d) => {
            for s in open(cli).await?.get_or_list(&d.names).await? {
                print!("{}", describe(&s)?);
            }
        }
        ScheduleCmd::Pause(n) | ScheduleCmd::Unpause(n) => {
            let pause = matches!(cmd, ScheduleCmd::Pause(_));
            let schedules = open(cli).await?;
            for name in schedules.names_or_all(&n.names, n.all).await? {
                schedules.set_paused(&name, pause).await?;
                println!(
                    "Schedule {name:?} {}.",
                    if pause { "paused" } else { "unpaused" }
                );
            }
        }
        ScheduleCmd::Delete(d) => {
            let schedules = open(cli).await?;
            let targets = schedules.names_or_all(&d.names.names, d.names.all).await?;
            if !confirm(
                &format!("delete {}", counted("schedule", &targets)),
                "Their backups stay.",
                d.confirm.confirm,
            )? {
                return Ok(Exit::Ok);
            }
            for name in targets {
                schedules.delete(&name).await?;
                println!("Schedule {name:?} deleted.");
            }
        }
    }
    Ok(Exit::Ok)
}

fn table(items: &[ScheduleResource]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            let st = s.status.clone().unwrap_or_default();
            vec![
                s.name_any(),
                st.phase.to_string(),
                s.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                s.spec.schedule.clone(),
                s.spec
                    .template
                    .ttl
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "720h0m0s".into()),
                st.last_backup
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "n/a".into()),
                s.spec.paused.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "STATUS",
            "CREATED",
            "SCHEDULE",
            "BACKUP TTL",
            "LAST BACKUP",
            "PAUSED",
        ],
        &rows,
    )
}

fn describe(s: &ScheduleResource) -> Result<String> {
    use std::fmt::Write as _;
    let st = s.status.clone().unwrap_or_default();
    let mut o = String::new();
    writeln!(o, "Name:         {}", s.name_any())?;
    writeln!(o, "Namespace:    {}", s.namespace().unwrap_or_default())?;
    writeln!(o, "Phase:        {}", st.phase)?;
    for e in &st.validation_errors {
        writeln!(o, "  Validation error: {e}")?;
    }
    writeln!(o, "Paused:       {}", s.spec.paused)?;
    writeln!(o, "Schedule:     {}", s.spec.schedule)?;
    writeln!(
        o,
        "Skip immediately: {}",
        s.spec.skip_immediately.unwrap_or(false)
    )?;
    let template = serde_yaml_ng::to_string(&s.spec.template)?
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    writeln!(o, "Backup template:\n{template}")?;
    writeln!(
        o,
        "Last backup:  {}",
        st.last_backup
            .map(|t| t.to_string())
            .unwrap_or_else(|| "<never>".into())
    )?;
    if let Some(t) = st.last_skipped {
        writeln!(o, "Last skipped: {t}")?;
    }
    writeln!(o)?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use clap::Parser;

    fn create(args: &[&str]) -> ScheduleCreate {
        let mut argv = vec!["lifeboat", "schedule", "create"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Schedule(ScheduleCmd::Create(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_schedule_spec() {
        let c = create(&[
            "daily",
            "--schedule=0 2 * * *",
            "--ttl",
            "168h",
            "--include-namespaces",
            "shop",
            "--labels",
            "team=x",
            "--paused",
            "--skip-immediately",
        ]);
        let s = spec_from_flags(&c, "velero").unwrap();
        assert_eq!(s.schedule, "0 2 * * *");
        assert!(s.paused);
        assert_eq!(s.skip_immediately, Some(true));
        assert_eq!(s.use_owner_references_in_backup, None);
        assert_eq!(s.template.included_namespaces, ["shop"]);
        assert_eq!(s.template.ttl.unwrap().to_string(), "168h0m0s");
        // The backup labels go on the template, which the server copies to each backup.
        assert_eq!(s.template.metadata.labels["team"], "x");
    }

    #[test]
    fn a_bad_cron_expression_is_refused_before_anything_is_sent() {
        let e = spec_from_flags(&create(&["daily", "--schedule", "0 2 * *"]), "velero")
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 2 * *"), "{e}");
    }

    #[test]
    fn delete_needs_names_or_all() {
        let e = Cli::try_parse_from(["lifeboat", "schedule", "delete"]).unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{e}"
        );
        let argv = ["lifeboat", "schedule", "delete", "--all", "--confirm"];
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Schedule(ScheduleCmd::Delete(d)) => {
                assert!(d.names.all && d.confirm.confirm);
            }
            other => panic!("{other:?}"),
        }
    }
}
