//! `audit`: the DR posture of a cluster's workloads, storage and protection, judged by the
//! rules of `lifeboat_types::readiness::audit` over what `lifeboat_readiness` reads.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lifeboat_readiness::audit::{Scope, read};
use lifeboat_types::GoDuration;
use lifeboat_types::readiness::audit::{Finding, Rule, Severity, audit, counts, fails, markdown};

use crate::cli::Cli;
use crate::cmd::dr::ReportFormat;
use crate::exit::Exit;
use crate::output;

/// `audit` flags.
#[derive(Args, Debug)]
#[command(after_help = "\
Which namespaces: -n NS[,NS...] (the global flag, read here as the namespaces to audit), -A for
every namespace but kube-system, kube-public and kube-node-lease, or --plan for a DR plan's
protected namespaces (and its RPO and locations). Without any of them, every namespace.

Rules: namespace-not-covered (critical); schedule-slower-than-rpo, etcd-snapshot-old,
anti-affinity-unsatisfiable, pdb-blocks-drain, reclaim-delete (high); single-replica,
no-zone-spread, statefulset-without-pdb, immediate-binding-multi-zone, no-snapshot-class,
no-second-location (medium); pdb-selects-nothing, no-readiness-probe (low).

Exit codes: 0 no finding at or above --fail-on (or no --fail-on); 1 findings at or above it, or
an error.

Examples:
  lifeboat audit -n shop
  lifeboat audit -A -o markdown > audit.md
  lifeboat audit --plan shop-dr.yaml --fail-on high      # in CI: fail on high and critical
  lifeboat audit -A --skip no-readiness-probe -o json | jq '.findings[] | select(.severity==\"high\")'")]
pub struct AuditArgs {
    /// Audit every namespace but Kubernetes' own.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Audit a DR plan's protected namespaces, with its tier's RPO and its locations.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The RPO schedules are held to without --plan.
    #[arg(long, default_value = "24h")]
    pub rpo: GoDuration,
    /// How old the newest etcd snapshot in lifeboat's locations may be (0s: not checked).
    #[arg(long, default_value = "24h")]
    pub etcd_max_age: GoDuration,
    /// Rules not to run (ids, comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_rule)]
    pub skip: Vec<Rule>,
    /// Exit 1 when a finding is at least this severe: low, medium, high or critical.
    #[arg(long)]
    pub fail_on: Option<Severity>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: ReportFormat,
}

fn parse_rule(s: &str) -> Result<Rule, String> {
    Rule::from_id(s).ok_or_else(|| {
        let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        format!("unknown rule {s:?}; the rules are {}", ids.join(", "))
    })
}

/// What `-o json|yaml` prints.
#[derive(serde::Serialize)]
struct Report<'a> {
    scope: &'a str,
    namespaces: &'a [String],
    findings: &'a [Finding],
    warnings: &'a [String],
}

/// `lifeboat audit`.
pub async fn run(cli: &Cli, a: &AuditArgs) -> Result<Exit> {
    let explicit = cli.namespace_given.then(|| {
        cli.namespace
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    if a.all_namespaces && (explicit.is_some() || a.plan.is_some()) {
        bail!("-A audits every namespace; leave out -n and --plan, or -A");
    }
    let mut scope = Scope {
        namespaces: explicit.clone(),
        rpo: (a.rpo.0, format!("--rpo {}", a.rpo)),
        locations: Vec::new(),
        etcd_max_age: (!a.etcd_max_age.0.is_zero()).then_some(a.etcd_max_age.0),
    };
    let mut label = match &explicit {
        Some(ns) => format!("namespace {}", ns.join(", ")),
        None => "every namespace".to_owned(),
    };
    if let Some(path) = &a.plan {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read DR plan {}", path.display()))?;
        let plan = lifeboat_types::dr::plan::parse(&text, &path.display().to_string())?;
        let of_plan = Scope::of_plan(&plan, scope.etcd_max_age);
        if explicit.is_none() {
            scope.namespaces = of_plan.namespaces;
            label = format!(
                "plan {} (namespace {})",
                plan.name,
                plan.spec.namespaces.join(", ")
            );
        }
        scope.rpo = of_plan.rpo;
        scope.locations = of_plan.locations;
    }
    let cluster = crate::common::connect(cli).await?;
    let seen = read(&cluster, &scope).await?;
    for w in &seen.warnings {
        eprintln!("warning: {w}");
    }
    let skip: BTreeSet<Rule> = a.skip.iter().copied().collect();
    let findings = audit(&seen.observed, &skip);
    match a.output {
        ReportFormat::Markdown => print!("{}", markdown(&findings, &label)),
        ReportFormat::Json | ReportFormat::Yaml => {
            let report = Report {
                scope: &label,
                namespaces: &seen.observed.namespaces,
                findings: &findings,
                warnings: &seen.warnings,
            };
            let o = if a.output == ReportFormat::Json {
                crate::cli::Output::Json
            } else {
                crate::cli::Output::Yaml
            };
            output::print_structured(&report, &o)?;
        }
        ReportFormat::Table => print_table(&findings),
    }
    let summary: Vec<String> = counts(&findings)
        .into_iter()
        .map(|(sev, n)| format!("{n} {sev}"))
        .collect();
    eprintln!(
        "Audited {label}: {} findings ({}).",
        findings.len(),
        summary.join(", ")
    );
    Ok(match a.fail_on {
        Some(level) if fails(&findings, level) => {
            eprintln!("error: findings at or above {level} (--fail-on {level})");
            Exit::Error
        }
        _ => Exit::Ok,
    })
}

fn print_table(findings: &[Finding]) {
    if findings.is_empty() {
        println!("No findings.");
        return;
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.severity.as_str().to_uppercase(),
                f.rule.id().to_owned(),
                f.object.clone(),
                f.detail.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["SEVERITY", "RULE", "OBJECT", "SEEN"], &rows)
    );
    println!("\nWhy and what to do:");
    let mut said = BTreeSet::new();
    for f in findings {
        if said.insert(f.rule) {
            println!("  {}: {}", f.rule, f.why);
        }
        println!("    {}: {}", f.object, f.fix);
    }
}
