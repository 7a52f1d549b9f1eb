//! `alerts`: the DR guides' alerting rules over the server's metrics, as a PrometheusRule,
//! a plain rule file, or the `promtool test rules` file that proves each one fires (rules
//! and tests in `lifeboat_types::readiness::alerts`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use lifeboat_types::GoDuration;
use lifeboat_types::readiness::alerts::{
    Options, PlanNumbers, alerts, default_name, group, prometheus_rule, promtool_tests, rule_file,
};

use crate::cmd::server::MetricNamesArg;
use crate::exit::Exit;

/// What `alerts` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertsFormat {
    /// A PrometheusRule (Prometheus Operator), YAML.
    Yaml,
    /// A plain Prometheus rule file (`rule_files:` of prometheus.yml), YAML.
    Rules,
    /// The `promtool test rules` file: each rule firing and not firing.
    Tests,
}

/// `alerts` flags.
#[derive(Args, Debug)]
#[command(after_help = "\
Alerts: LifeboatBackupTooOld (warning, 2x the schedule's interval) and
LifeboatBackupCriticallyOld (critical, 3x), LifeboatBackupFailed, LifeboatBackupPartiallyFailed,
LifeboatLocationUnavailable, LifeboatEtcdSnapshotTooOld, LifeboatDRRPOBreached,
LifeboatDRClusterNotReady, LifeboatDRReplicationLag, LifeboatDRDrillFailed,
LifeboatDRDrillOverdue, LifeboatDRStandbySyncFailed.

Examples:
  lifeboat alerts | kubectl apply -f -                 # a PrometheusRule for the Prometheus Operator
  lifeboat alerts -o rules > lifeboat-rules.yaml        # for prometheus.yml's rule_files
  lifeboat alerts -o tests --rule-file lifeboat-rules.yaml > lifeboat-tests.yaml
  promtool check rules lifeboat-rules.yaml && promtool test rules lifeboat-tests.yaml
  lifeboat alerts --no-dr | kubectl apply -f -          # backup rules only, then per plan:
  lifeboat alerts --plan shop-dr.yaml | kubectl apply -f -   # PrometheusRule lifeboat-plan-shop")]
pub struct AlertsArgs {
    /// Only a DR plan's rules, naming it, with its RPO and drill calendar, as a group
    /// and PrometheusRule of their own (lifeboat-plan-NAME).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Leave out the DR plans' rules (for teams that generate each plan's with --plan).
    #[arg(long, conflicts_with = "plan")]
    pub no_dr: bool,
    /// What to print.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: AlertsFormat,
    /// The metric names the server exports (its --metric-names).
    #[arg(long, value_enum, default_value = "velero")]
    pub metric_names: MetricNamesArg,
    /// How old the newest etcd snapshot may be.
    #[arg(long, default_value = "24h")]
    pub etcd_max_age: GoDuration,
    /// How long without a drill before it is overdue (without a plan's calendar; a day
    /// more is allowed).
    #[arg(long, default_value = "2208h")]
    pub drill_every: GoDuration,
    /// The PrometheusRule's name (default: lifeboat, or lifeboat-plan-NAME with --plan).
    #[arg(long)]
    pub name: Option<String>,
    /// The PrometheusRule's namespace.
    #[arg(long, default_value = "monitoring")]
    pub rule_namespace: String,
    /// The rule file the tests load (-o tests).
    #[arg(long, default_value = "lifeboat-rules.yaml")]
    pub rule_file: String,
}

/// `lifeboat alerts`.
pub fn run(a: &AlertsArgs) -> Result<Exit> {
    let plan = match &a.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read DR plan {}", path.display()))?;
            let plan = lifeboat_types::dr::plan::parse(&text, &path.display().to_string())?;
            let drill_every: Option<Duration> = plan.spec.drills.as_ref().and_then(|d| {
                lifeboat_types::dr::status::longest_gap(&d.schedule, chrono::Utc::now(), 48)
            });
            Some(PlanNumbers {
                name: plan.name.clone(),
                rpo: plan.rpo,
                drill_every,
            })
        }
        None => None,
    };
    let o = Options {
        names: a.metric_names.into(),
        plan,
        etcd_max_age: a.etcd_max_age.0,
        drill_every: a.drill_every.0,
        dr: !a.no_dr,
    };
    let list = alerts(&o);
    let group = group(&o);
    let doc = match a.output {
        AlertsFormat::Yaml => prometheus_rule(
            &list,
            &group,
            a.name.as_deref().unwrap_or(&default_name(&o)),
            &a.rule_namespace,
        ),
        AlertsFormat::Rules => rule_file(&list, &group),
        AlertsFormat::Tests => promtool_tests(&list, &a.rule_file),
    };
    print!("{}", serde_yaml_ng::to_string(&doc)?);
    Ok(Exit::Ok)
}
