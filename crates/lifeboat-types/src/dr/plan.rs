//! A DR plan: which clusters take part (any number, one active), the storage locations
//! each reads, what is protected, the tier's RPO/RTO, the strategy, how standby replicas
//! are kept, hooks at named points, verification and success criteria.
//!
//! The same spec is a YAML file for the CLI (`kind: DRPlan`) and the `DRPlan` custom
//! resource of the server. Reading one is two steps: serde refuses unknown fields and
//! wrong types (naming the line), then [`validate`] checks the rules that span fields and
//! names each offending field by its path (`spec.clusters[1].name`).

// kube's printcolumn(...) attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::GoDuration;
use crate::api::names::validate_name;
use crate::api::selector::Selector;
use crate::rules::schedule::Cron;

pub use super::server::DrPlanStatus;

/// The annotation lifeboat writes on a standby's workload: its replica count on the
/// active cluster.
pub const ORIGINAL_REPLICAS: &str = "lifeboat.dev/original-replicas";

/// Annotations other tools and the guides' scripts keep the original count in, read
/// (never written) when lifeboat's own is missing.
pub const READ_ORIGINAL_REPLICAS: &[&str] = &[ORIGINAL_REPLICAS, "dr-original-replicas"];

/// `spec` of a DR plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "DRPlan",
    root = "DrPlanResource",
    namespaced,
    category = "lifeboat",
    doc = "A disaster-recovery plan: clusters, locations, protected namespaces, RPO/RTO, strategy, hooks, checks.",
    status = "DrPlanStatus",
    printcolumn(name = "Tier", type_ = "string", json_path = ".spec.tier"),
    printcolumn(name = "Health", type_ = "string", json_path = ".status.health"),
    printcolumn(name = "RPO", type_ = "integer", json_path = ".status.rpoSeconds"),
    printcolumn(
        name = "Last drill",
        type_ = "string",
        json_path = ".status.lastDrill.outcome"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrPlanSpec {
    /// The clusters, exactly one of them `active`.
    pub clusters: Vec<PlanCluster>,
    /// The protected namespaces (names, no globs: a drill maps each one).
    pub namespaces: Vec<String>,
    /// Only objects with these labels are protected (kubectl syntax), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// A named tier ([`TIERS`]); `rpo` and `rto` override its numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Recovery point objective: the most data, in time, the plan may lose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<GoDuration>,
    /// Recovery time objective: the longest a failover may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<GoDuration>,
    /// How the standby clusters wait.
    #[serde(default)]
    pub strategy: Strategy,
    /// How a standby keeps workloads' replica counts.
    #[serde(default)]
    pub replicas: ReplicaHandling,
    /// Hooks at named points of a failover, failback or drill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<PlanHook>,
    /// What is checked after a restore.
    #[serde(default)]
    pub verification: Verification,
    /// What a failover or drill must achieve to pass.
    #[serde(default)]
    pub success_criteria: SuccessCriteria,
    /// When the lifeboat server drills the plan on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<DrillCalendar>,
    /// What `dr runbook` prints besides the plan itself: who to call, when to escalate,
    /// and the business impact analysis of the services the plan protects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<RunbookSpec>,
}

/// The people and the business facts of a plan's runbook (the guides' BCP/BIA fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunbookSpec {
    /// Who to call, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Who else to call when the recovery runs long.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<Escalation>,
    /// The services the plan protects, as the business impact analysis sees them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
}

/// A person or rotation to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    /// Their part (`on-call`, `backup owner`, `incident commander`).
    pub role: String,
    /// Who (`PagerDuty rotation k8s-platform`, a name).
    pub name: String,
    /// How to reach them (a phone number, a channel, an address).
    pub reach: String,
}

/// A step of the escalation: after how long, to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Escalation {
    /// How long into the incident.
    pub after: GoDuration,
    /// Whom to call or where to post.
    pub to: String,
}

/// A service in the business impact analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// The protected namespace it runs in, when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `critical`, `high`, `medium` or `low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
    /// Its own recovery point objective (the plan's when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<GoDuration>,
    /// Its own recovery time objective (the plan's when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<GoDuration>,
    /// What it needs running first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Its impact when down: financial, reputation, regulatory (`high`, `medium`, `low`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub impact: BTreeMap<String, String>,
    /// Its place in the recovery order (1 first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_priority: Option<u32>,
}

/// The criticalities and impact levels a runbook's services may name.
pub const LEVELS: &[&str] = &["critical", "high", "medium", "low"];

/// The calendar of the drills the server runs (`dr drill`'s restore into scratch
/// namespaces: the guides' functional drill).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrillCalendar {
    /// When: a cron line (`0 3 1 1,4,7,10 *`: quarterly, as the guides drill), a macro
    /// (`@monthly`) or `@every <duration>`.
    pub schedule: String,
    /// The cluster drilled on (default: the first standby). Not `on`: YAML 1.1 readers
    /// (kubectl's among them) take that key for `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// One cluster of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanCluster {
    /// The plan's name for it (DNS-1123: it goes into report and namespace names).
    pub name: String,
    /// Its kubeconfig file (else `$KUBECONFIG` / `~/.kube/config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Its context in that kubeconfig (else the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Whether it serves now. Exactly one cluster is active.
    #[serde(default)]
    pub active: bool,
    /// The storage locations it reads backups from: names (of the lifeboat server's
    /// locations in the cluster, else of the CLI's locations file) or URLs. The first
    /// is where its backups are looked for first.
    pub locations: Vec<String>,
    /// The namespace of lifeboat's objects in it.
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

fn default_namespace() -> String {
    "velero".into()
}

/// How standby clusters wait for a failover.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Nothing runs on the standby; a failover restores the newest backup.
    #[default]
    BackupRestore,
    /// The standby holds the cluster-wide parts (CRDs, namespaces); a failover restores
    /// the rest.
    PilotLight,
    /// The standby restores every new backup continuously, workloads at 0 replicas; a
    /// failover scales them up.
    WarmStandby,
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::BackupRestore => "backup-restore",
            Strategy::PilotLight => "pilot-light",
            Strategy::WarmStandby => "warm-standby",
        })
    }
}

/// How a standby keeps replica counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaHandling {
    /// The annotation the original count is written to (also read first).
    #[serde(default = "default_replica_annotation")]
    pub annotation: String,
    /// The count a workload gets when no annotation holds one.
    #[serde(default = "default_replicas")]
    pub default_replicas: i32,
}

fn default_replica_annotation() -> String {
    ORIGINAL_REPLICAS.into()
}

fn default_replicas() -> i32 {
    1
}

impl Default for ReplicaHandling {
    fn default() -> Self {
        ReplicaHandling {
            annotation: default_replica_annotation(),
            default_replicas: default_replicas(),
        }
    }
}

/// The named points hooks run at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum HookPoint {
    /// Before the old active cluster is fenced.
    BeforeFence,
    /// After it was fenced.
    AfterFence,
    /// Before the new active cluster is promoted (restored or scaled up).
    BeforePromote,
    /// After it was promoted and verified.
    AfterPromote,
    /// To move traffic (once, or once per weighted step of a failback).
    TrafficSwitch,
    /// To tell people: at the start and the end of every run.
    Notify,
}

/// What a hook does when it fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OnError {
    /// The run fails (a failover then rolls back).
    #[default]
    Fail,
    /// The failure is recorded and the run goes on.
    Continue,
}

/// One hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanHook {
    /// Its name in reports.
    pub name: String,
    /// When it runs.
    pub at: HookPoint,
    /// A command run in a pod's container (`exec`), on this machine (`command`), or an
    /// HTTP POST of the run's state (`webhook`): exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHook>,
    /// A local command (argv), run with the run's state in `LIFEBOAT_DR_*` variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A URL the run's state is POSTed to as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// How long it may take (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// What its failure does.
    #[serde(default)]
    pub on_error: OnError,
}

/// A command in a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecHook {
    /// The pod's namespace (one of the protected ones).
    pub namespace: String,
    /// The pods: a label selector; the first running one is used.
    pub selector: String,
    /// The container (else the pod's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The command (argv).
    pub command: Vec<String>,
}

/// What is checked after a restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verification {
    /// Every restored Deployment, StatefulSet and DaemonSet serves again.
    #[serde(default = "yes")]
    pub workloads_available: bool,
    /// How long workloads may take to become available (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Local commands (argv) that must exit 0, with the target's kube context and the
    /// restored namespaces in `LIFEBOAT_DR_*` variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl Default for Verification {
    fn default() -> Self {
        Verification {
            workloads_available: true,
            timeout: None,
            commands: Vec::new(),
        }
    }
}

impl Verification {
    /// The default time workloads may take to become available.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    /// The time workloads may take.
    pub fn timeout(&self) -> Duration {
        self.timeout.map(|t| t.0).unwrap_or(Self::DEFAULT_TIMEOUT)
    }
}

/// What a failover or drill must achieve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuccessCriteria {
    /// The measured RTO is within the plan's RTO (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_met: Option<bool>,
    /// The restored backup is within the plan's RPO (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_met: Option<bool>,
    /// Every object of the backup's protected namespaces is restored (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_objects_restored: Option<bool>,
    /// At least this many Completed backups of the protected namespaces are kept
    /// (the guides ask for a history; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_backups: Option<u32>,
}

impl SuccessCriteria {
    /// The criteria with their defaults filled in.
    pub fn resolved(&self) -> ResolvedCriteria {
        ResolvedCriteria {
            rto_met: self.rto_met.unwrap_or(true),
            rpo_met: self.rpo_met.unwrap_or(true),
            all_objects_restored: self.all_objects_restored.unwrap_or(true),
            min_backups: self.min_backups.unwrap_or(1),
        }
    }
}

/// [`SuccessCriteria`] with defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCriteria {
    /// RTO must be met.
    pub rto_met: bool,
    /// RPO must be met.
    pub rpo_met: bool,
    /// Every object must be restored.
    pub all_objects_restored: bool,
    /// Completed backups that must exist.
    pub min_backups: u32,
}

/// A named tier: the recovery objectives of the DR guides' planning matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Its name in a plan.
    pub name: &'static str,
    /// Recovery point objective.
    pub rpo: Duration,
    /// Recovery time objective.
    pub rto: Duration,
}

const MIN: u64 = 60;
const HOUR: u64 = 3600;

/// The tiers, from the guides' RPO/RTO planning matrix (tier-0 active/active, tier-1 warm
/// standby, tier-2 pilot light, tier-3 backup/restore, tier-4 cold backup). Other numbers
/// are given as `rpo`/`rto`.
pub const TIERS: &[Tier] = &[
    Tier {
        name: "tier-0",
        rpo: Duration::from_secs(MIN),
        rto: Duration::from_secs(5 * MIN),
    },
    Tier {
        name: "tier-1",
        rpo: Duration::from_secs(15 * MIN),
        rto: Duration::from_secs(30 * MIN),
    },
    Tier {
        name: "tier-2",
        rpo: Duration::from_secs(HOUR),
        rto: Duration::from_secs(4 * HOUR),
    },
    Tier {
        name: "tier-3",
        rpo: Duration::from_secs(4 * HOUR),
        rto: Duration::from_secs(24 * HOUR),
    },
    Tier {
        name: "tier-4",
        rpo: Duration::from_secs(24 * HOUR),
        rto: Duration::from_secs(72 * HOUR),
    },
];

/// The tier named `name` (`tier-1`, `Tier 1`, `tier1` and `1` are the same).
pub fn tier(name: &str) -> Option<&'static Tier> {
    let digits: String = name
        .trim()
        .to_ascii_lowercase()
        .trim_start_matches("tier")
        .trim_start_matches(['-', ' ', '_'])
        .to_owned();
    TIERS
        .iter()
        .find(|t| t.name.strip_prefix("tier-") == Some(digits.as_str()))
}

/// One field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's path (`spec.clusters[1].name`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// Why a plan document was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not YAML of a DRPlan (syntax, unknown fields, wrong types).
    #[error("DR plan {source_name}: {source}")]
    Parse {
        /// Where it came from (a file name).
        source_name: String,
        /// The parser's error (it names the line and column).
        source: serde_yaml_ng::Error,
    },
    /// Not a DRPlan document.
    #[error(
        "DR plan {source_name}: expected apiVersion lifeboat.dev/v1alpha1 and kind DRPlan, found {found}"
    )]
    Kind {
        /// Where it came from.
        source_name: String,
        /// What it says it is.
        found: String,
    },
    /// Fields that break the rules.
    #[error("DR plan {plan} is invalid:\n  {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Invalid {
        /// The plan's name.
        plan: String,
        /// Every broken rule, each naming its field.
        errors: Vec<FieldError>,
    },
}

/// A plan that passed [`validate`], with its objectives resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The plan's name.
    pub name: String,
    /// Its spec, as written.
    pub spec: DrPlanSpec,
    /// The RPO (the tier's unless overridden).
    pub rpo: Duration,
    /// The RTO (the tier's unless overridden).
    pub rto: Duration,
}

impl Plan {
    /// The active cluster.
    pub fn active(&self) -> &PlanCluster {
        // validate() checked there is exactly one.
        self.spec
            .clusters
            .iter()
            .find(|c| c.active)
            .unwrap_or(&self.spec.clusters[0])
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&PlanCluster> {
        self.spec.clusters.iter().find(|c| c.name == name)
    }

    /// The clusters' names, comma-separated (for an error naming the choices).
    pub fn cluster_names(&self) -> String {
        self.spec
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The standby clusters, in the plan's order.
    pub fn standbys(&self) -> impl Iterator<Item = &PlanCluster> {
        self.spec.clusters.iter().filter(|c| !c.active)
    }

    /// Where a drill runs when none is named: the first standby (the active cluster when
    /// the plan has none).
    pub fn default_drill_cluster(&self) -> &PlanCluster {
        self.standbys().next().unwrap_or_else(|| self.active())
    }
}

/// Reads a plan document (YAML; `source_name` names it in errors) and validates it.
pub fn parse(text: &str, source_name: &str) -> Result<Plan, PlanError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Document {
        api_version: String,
        kind: String,
        metadata: Meta,
        spec: DrPlanSpec,
    }
    #[derive(Deserialize)]
    struct Meta {
        name: String,
        #[serde(flatten)]
        _rest: BTreeMap<String, serde_yaml_ng::Value>,
    }
    // The kind first: a Backup given by mistake should say so, not list unknown fields.
    let head: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|source| PlanError::Parse {
            source_name: source_name.into(),
            source,
        })?;
    let api_version = head.get("apiVersion").and_then(|v| v.as_str());
    let kind = head.get("kind").and_then(|v| v.as_str());
    // The resource's own apiVersion and kind (its derive's), as the CRD serves them.
    let want_version = <DrPlanResource as kube::Resource>::api_version(&());
    let want_kind = <DrPlanResource as kube::Resource>::kind(&());
    if api_version != Some(want_version.as_ref()) || kind != Some(want_kind.as_ref()) {
        return Err(PlanError::Kind {
            source_name: source_name.into(),
            found: format!(
                "apiVersion {} and kind {}",
                api_version.unwrap_or("(none)"),
                kind.unwrap_or("(none)")
            ),
        });
    }
    let doc: Document = serde_yaml_ng::from_str(text).map_err(|source| PlanError::Parse {
        source_name: source_name.into(),
        source,
    })?;
    let _ = (doc.api_version, doc.kind);
    validate(&doc.metadata.name, doc.spec)
}

/// Checks the rules that span fields; every broken one is reported, each naming its
/// field.
pub fn validate(name: &str, spec: DrPlanSpec) -> Result<Plan, PlanError> {
    let mut errors = Vec::new();
    let mut err = |field: String, reason: String| errors.push(FieldError { field, reason });

    if let Err(e) = validate_name("DR plan", name) {
        err("metadata.name".into(), e.to_string());
    }
    if spec.clusters.is_empty() {
        err(
            "spec.clusters".into(),
            "a plan needs at least one cluster (the active one), and a standby to fail over to"
                .into(),
        );
    }
    let mut names = BTreeSet::new();
    for (i, c) in spec.clusters.iter().enumerate() {
        if let Err(e) = validate_name("cluster", &c.name) {
            err(format!("spec.clusters[{i}].name"), e.to_string());
        } else if !names.insert(c.name.as_str()) {
            err(
                format!("spec.clusters[{i}].name"),
                format!("{:?} names two clusters; give each its own name", c.name),
            );
        }
        if c.locations.is_empty() {
            err(
                format!("spec.clusters[{i}].locations"),
                "name at least one storage location the cluster reads backups from".into(),
            );
        }
        for (j, l) in c.locations.iter().enumerate() {
            if l.trim().is_empty() {
                err(
                    format!("spec.clusters[{i}].locations[{j}]"),
                    "empty: give a location's name or URL".into(),
                );
            }
        }
        if let Err(e) = validate_name("namespace", &c.namespace) {
            err(format!("spec.clusters[{i}].namespace"), e.to_string());
        }
    }
    let active: Vec<&str> = spec
        .clusters
        .iter()
        .filter(|c| c.active)
        .map(|c| c.name.as_str())
        .collect();
    if !spec.clusters.is_empty() && active.len() != 1 {
        err(
            "spec.clusters".into(),
            format!(
                "exactly one cluster is active (active: true); {} are ({})",
                active.len(),
                active.join(", ")
            ),
        );
    }
    if spec.namespaces.is_empty() {
        err(
            "spec.namespaces".into(),
            "name the namespaces the plan protects".into(),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, ns) in spec.namespaces.iter().enumerate() {
        if ns.contains(['*', '?', '[', '{']) {
            err(
                format!("spec.namespaces[{i}]"),
                format!("{ns:?} is a glob; a plan names its namespaces (a drill maps each one)"),
            );
        } else if let Err(e) = validate_name("namespace", ns) {
            err(format!("spec.namespaces[{i}]"), e.to_string());
        } else if !seen.insert(ns.as_str()) {
            err(
                format!("spec.namespaces[{i}]"),
                format!("{ns:?} is named twice"),
            );
        }
    }
    if let Some(s) = &spec.selector
        && let Err(e) = Selector::parse(s)
    {
        err("spec.selector".into(), e.to_string());
    }
    let named = match &spec.tier {
        Some(t) => match tier(t) {
            Some(t) => Some(t),
            None => {
                err(
                    "spec.tier".into(),
                    format!(
                        "unknown tier {t:?}; the tiers are {} (or give rpo and rto)",
                        TIERS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                    ),
                );
                None
            }
        },
        None => None,
    };
    let rpo = spec.rpo.map(|d| d.0).or(named.map(|t| t.rpo));
    let rto = spec.rto.map(|d| d.0).or(named.map(|t| t.rto));
    if spec.tier.is_none() && (rpo.is_none() || rto.is_none()) {
        err(
            "spec.tier".into(),
            "give a tier (tier-0 … tier-4) or both rpo and rto".into(),
        );
    }
    for (field, d) in [("spec.rpo", spec.rpo), ("spec.rto", spec.rto)] {
        if d.is_some_and(|d| d.0.is_zero()) {
            err(
                field.into(),
                "0 cannot be met by backups; give the time you can afford (e.g. 15m)".into(),
            );
        }
    }
    if spec.replicas.default_replicas < 0 {
        err(
            "spec.replicas.defaultReplicas".into(),
            "a replica count is 0 or more".into(),
        );
    }
    for (i, h) in spec.hooks.iter().enumerate() {
        let f = |s: &str| format!("spec.hooks[{i}]{s}");
        if h.name.trim().is_empty() {
            err(f(".name"), "give the hook a name for the reports".into());
        }
        let kinds = usize::from(h.exec.is_some())
            + usize::from(!h.command.is_empty())
            + usize::from(h.webhook.is_some());
        if kinds != 1 {
            err(
                f(""),
                format!("a hook has exactly one of exec, command and webhook; {kinds} are set"),
            );
        }
        if let Some(e) = &h.exec {
            if !spec.namespaces.contains(&e.namespace) {
                err(
                    f(".exec.namespace"),
                    format!(
                        "{:?} is not one of the plan's namespaces; a hook runs in a protected namespace",
                        e.namespace
                    ),
                );
            }
            if let Err(x) = Selector::parse(&e.selector) {
                err(f(".exec.selector"), x.to_string());
            }
            if e.command.is_empty() {
                err(f(".exec.command"), "give the command to run".into());
            }
        }
        if let Some(u) = &h.webhook
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            err(
                f(".webhook"),
                format!("{u:?} is not an http:// or https:// URL"),
            );
        }
        if h.timeout.is_some_and(|t| t.0.is_zero()) {
            err(
                f(".timeout"),
                "0s leaves the hook no time; omit it for 1m".into(),
            );
        }
    }
    if let Some(d) = &spec.drills {
        if let Err(e) = Cron::parse(&d.schedule) {
            err("spec.drills.schedule".into(), e);
        }
        if let Some(on) = &d.cluster
            && !spec.clusters.iter().any(|c| &c.name == on)
        {
            err(
                "spec.drills.cluster".into(),
                format!("{on:?} is not one of the plan's clusters"),
            );
        }
    }
    if let Some(r) = &spec.runbook {
        for (i, c) in r.contacts.iter().enumerate() {
            for (field, v) in [("role", &c.role), ("name", &c.name), ("reach", &c.reach)] {
                if v.trim().is_empty() {
                    err(
                        format!("spec.runbook.contacts[{i}].{field}"),
                        "empty: a runbook's contact needs a role, a name and how to reach them"
                            .into(),
                    );
                }
            }
        }
        for (i, e) in r.escalation.iter().enumerate() {
            if e.to.trim().is_empty() {
                err(
                    format!("spec.runbook.escalation[{i}].to"),
                    "empty: say whom to call or where to post".into(),
                );
            }
            if i > 0 && r.escalation[i - 1].after.0 > e.after.0 {
                err(
                    format!("spec.runbook.escalation[{i}].after"),
                    format!(
                        "{} comes before the step above it ({}); list the steps in time order",
                        e.after,
                        r.escalation[i - 1].after
                    ),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, s) in r.services.iter().enumerate() {
            let f = |rest: &str| format!("spec.runbook.services[{i}]{rest}");
            if s.name.trim().is_empty() {
                err(f(".name"), "empty: name the service".into());
            } else if !seen.insert(s.name.as_str()) {
                err(f(".name"), format!("{:?} is listed twice", s.name));
            }
            if let Some(ns) = &s.namespace
                && !spec.namespaces.contains(ns)
            {
                err(
                    f(".namespace"),
                    format!("{ns:?} is not one of the plan's namespaces"),
                );
            }
            if let Some(c) = &s.criticality
                && !LEVELS.contains(&c.as_str())
            {
                err(
                    f(".criticality"),
                    format!("{c:?}: use {}", LEVELS.join(", ")),
                );
            }
            for (k, v) in &s.impact {
                if !["financial", "reputation", "regulatory"].contains(&k.as_str()) {
                    err(
                        f(&format!(".impact.{k}")),
                        "unknown: the impacts are financial, reputation and regulatory".into(),
                    );
                } else if !LEVELS[1..].contains(&v.as_str()) {
                    err(
                        f(&format!(".impact.{k}")),
                        format!("{v:?}: use high, medium or low"),
                    );
                }
            }
            if s.recovery_priority == Some(0) {
                err(
                    f(".recoveryPriority"),
                    "1 is first; 0 is not a place".into(),
                );
            }
        }
    }
    for (i, c) in spec.verification.commands.iter().enumerate() {
        if c.is_empty() || c[0].trim().is_empty() {
            err(
                format!("spec.verification.commands[{i}]"),
                "empty: give the command and its arguments".into(),
            );
        }
    }
    if spec.verification.timeout.is_some_and(|t| t.0.is_zero()) {
        err(
            "spec.verification.timeout".into(),
            "0s leaves workloads no time; omit it for 10m".into(),
        );
    }
    if errors.is_empty() {
        Ok(Plan {
            name: name.into(),
            rpo: rpo.unwrap_or_default(),
            rto: rto.unwrap_or_default(),
            spec,
        })
    } else {
        Err(PlanError::Invalid {
            plan: name.into(),
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const GOOD: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: DRPlan
metadata:
  name: shop
spec:
  tier: tier-1
  strategy: warm-standby
  namespaces: [shop, payments]
  selector: app in (web,db)
  clusters:
  - name: primary
    context: prod-eu
    active: true
    locations: [default]
  - name: standby
    kubeconfig: /etc/dr/standby.yaml
    locations: [default, s3://dr-copy/lifeboat?region=eu-west-1]
  hooks:
  - name: dns
    at: trafficSwitch
    command: [./switch-dns.sh]
    timeout: 2m
  - name: chat
    at: notify
    webhook: https://hooks.example/dr
    onError: Continue
  - name: promote-db
    at: beforePromote
    exec: {namespace: shop, selector: app=db, command: [pg_ctl, promote]}
  verification:
    timeout: 5m
    commands: [[curl, -sf, http://shop.example/health]]
  successCriteria:
    minBackups: 7
"#;

    #[test]
    fn a_full_plan_reads_with_its_tiers_numbers_and_defaults() {
        let p = parse(GOOD, "shop.yaml").unwrap();
        assert_eq!(p.name, "shop");
        assert_eq!(p.rpo, Duration::from_secs(15 * 60));
        assert_eq!(p.rto, Duration::from_secs(30 * 60));
        assert_eq!(p.active().name, "primary");
        assert_eq!(
            p.standbys().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["standby"]
        );
        assert_eq!(p.spec.strategy, Strategy::WarmStandby);
        assert_eq!(p.spec.clusters[1].namespace, "velero");
        assert_eq!(p.spec.replicas.annotation, ORIGINAL_REPLICAS);
        assert_eq!(p.spec.hooks[1].on_error, OnError::Continue);
        assert!(p.spec.verification.workloads_available);
        assert_eq!(p.spec.verification.timeout(), Duration::from_secs(300));
        let c = p.spec.success_criteria.resolved();
        assert_eq!((c.rto_met, c.rpo_met, c.min_backups), (true, true, 7));
    }

    #[test]
    fn rpo_and_rto_override_the_tier() {
        let text = GOOD.replace("  tier: tier-1\n", "  tier: Tier 3\n  rpo: 2h\n");
        let p = parse(&text, "f").unwrap();
        assert_eq!(p.rpo, Duration::from_secs(7200));
        assert_eq!(p.rto, Duration::from_secs(24 * 3600));
    }

    #[rstest]
    #[case("tier-0", Some("tier-0"))]
    #[case("Tier 2", Some("tier-2"))]
    #[case("tier4", Some("tier-4"))]
    #[case("3", Some("tier-3"))]
    #[case("tier-5", None)]
    #[case("gold", None)]
    fn tier_names(#[case] given: &str, #[case] want: Option<&str>) {
        assert_eq!(tier(given).map(|t| t.name), want);
    }

    fn field_errors(text: &str) -> Vec<String> {
        match parse(text, "plan.yaml") {
            Err(PlanError::Invalid { errors, .. }) => {
                errors.iter().map(|e| e.field.clone()).collect()
            }
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[rstest]
    #[case::two_active(GOOD.replace("    kubeconfig: /etc", "    active: true\n    kubeconfig: /etc"), vec!["spec.clusters"])]
    #[case::none_active(GOOD.replace("    active: true\n", ""), vec!["spec.clusters"])]
    #[case::same_name(GOOD.replace("name: standby", "name: primary"), vec!["spec.clusters[1].name"])]
    #[case::bad_cluster_name(GOOD.replace("name: standby", "name: Standby_1"), vec!["spec.clusters[1].name"])]
    #[case::no_location(GOOD.replace("    locations: [default]\n", "    locations: []\n"), vec!["spec.clusters[0].locations"])]
    #[case::glob_namespace(GOOD.replace("[shop, payments]", "[shop, pay*]"), vec!["spec.namespaces[1]"])]
    #[case::twice(GOOD.replace("[shop, payments]", "[shop, shop]"), vec!["spec.namespaces[1]"])]
    #[case::no_namespaces(GOOD.replace("[shop, payments]", "[]"), vec!["spec.namespaces", "spec.hooks[2].exec.namespace"])]
    #[case::bad_selector(GOOD.replace("app in (web,db)", "app in (web"), vec!["spec.selector"])]
    #[case::unknown_tier(GOOD.replace("tier: tier-1", "tier: gold"), vec!["spec.tier"])]
    #[case::no_objectives(GOOD.replace("  tier: tier-1\n", "  rpo: 1h\n"), vec!["spec.tier"])]
    #[case::zero_rpo(GOOD.replace("  tier: tier-1\n", "  tier: tier-1\n  rpo: 0s\n"), vec!["spec.rpo"])]
    #[case::two_actions(GOOD.replace("    webhook: https://hooks.example/dr\n", "    webhook: https://hooks.example/dr\n    command: [x]\n"), vec!["spec.hooks[1]"])]
    #[case::no_action(GOOD.replace("    command: [./switch-dns.sh]\n", ""), vec!["spec.hooks[0]"])]
    #[case::not_a_url(GOOD.replace("https://hooks.example/dr", "hooks.example/dr"), vec!["spec.hooks[1].webhook"])]
    #[case::hook_elsewhere(GOOD.replace("exec: {namespace: shop", "exec: {namespace: kube-system"), vec!["spec.hooks[2].exec.namespace"])]
    #[case::empty_check(GOOD.replace("commands: [[curl, -sf, http://shop.example/health]]", "commands: [[]]"), vec!["spec.verification.commands[0]"])]
    #[case::negative_replicas(format!("{GOOD}  replicas: {{defaultReplicas: -1}}\n"), vec!["spec.replicas.defaultReplicas"])]
    #[case::bad_drill_calendar(format!("{GOOD}  drills: {{schedule: '0 3 1 1,4,7,10'}}\n"), vec!["spec.drills.schedule"])]
    #[case::drill_elsewhere(format!("{GOOD}  drills: {{schedule: '@every 24h', cluster: nowhere}}\n"), vec!["spec.drills.cluster"])]
    #[case::contact_unreachable(format!("{GOOD}  runbook:\n    contacts: [{{role: on-call, name: ops, reach: ''}}]\n"), vec!["spec.runbook.contacts[0].reach"])]
    #[case::escalation_out_of_order(format!("{GOOD}  runbook:\n    escalation: [{{after: 1h, to: cto}}, {{after: 15m, to: lead}}]\n"), vec!["spec.runbook.escalation[1].after"])]
    #[case::service_twice(format!("{GOOD}  runbook:\n    services: [{{name: orders}}, {{name: orders}}]\n"), vec!["spec.runbook.services[1].name"])]
    #[case::service_elsewhere(format!("{GOOD}  runbook:\n    services: [{{name: orders, namespace: web}}]\n"), vec!["spec.runbook.services[0].namespace"])]
    #[case::bad_criticality(format!("{GOOD}  runbook:\n    services: [{{name: orders, criticality: urgent}}]\n"), vec!["spec.runbook.services[0].criticality"])]
    #[case::bad_impact(format!("{GOOD}  runbook:\n    services: [{{name: orders, impact: {{financial: huge, legal: high}}}}]\n"), vec!["spec.runbook.services[0].impact.financial", "spec.runbook.services[0].impact.legal"])]
    #[case::priority_zero(format!("{GOOD}  runbook:\n    services: [{{name: orders, recoveryPriority: 0}}]\n"), vec!["spec.runbook.services[0].recoveryPriority"])]
    fn each_broken_rule_names_its_field(#[case] text: String, #[case] want: Vec<&str>) {
        assert_eq!(field_errors(&text), want);
    }

    #[test]
    fn every_broken_rule_is_reported_at_once_with_the_fix() {
        let text = GOOD
            .replace("name: standby", "name: primary")
            .replace("tier: tier-1", "tier: gold");
        let e = parse(&text, "plan.yaml").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "DR plan shop is invalid:\n  spec.clusters[1].name: \"primary\" names two clusters"
            ),
            "{e}"
        );
        assert!(e.contains("\n  spec.tier: unknown tier \"gold\"; the tiers are tier-0, tier-1, tier-2, tier-3, tier-4 (or give rpo and rto)"), "{e}");
    }

    /// Regression (stop 31): a field named `on` was read by kubectl (YAML 1.1) as the key
    /// `true`, and the API server dropped it without a word. No field of the DRPlan
    /// resource may be a word YAML 1.1 reads as a boolean.
    #[test]
    fn no_field_is_a_yaml_1_1_boolean() {
        fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::Object(p)) = m.get("properties") {
                        out.extend(p.keys().cloned());
                    }
                    m.values().for_each(|x| keys(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
                _ => {}
            }
        }
        let crd = serde_json::to_value(<DrPlanResource as kube::CustomResourceExt>::crd()).unwrap();
        let mut found = Vec::new();
        keys(&crd["spec"]["versions"][0]["schema"], &mut found);
        assert!(found.contains(&"drills".to_owned()), "{found:?}");
        const BOOLEANS: &[&str] = &["y", "yes", "n", "no", "true", "false", "on", "off"];
        let bad: Vec<&String> = found
            .iter()
            .filter(|k| BOOLEANS.contains(&k.to_lowercase().as_str()))
            .collect();
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn unknown_fields_and_other_kinds_are_refused_by_name() {
        let e = parse(&GOOD.replace("  strategy:", "  stratgy:"), "plan.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("DR plan plan.yaml: spec: unknown field `stratgy`"),
            "{e}"
        );
        let e = parse(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b}\n",
            "b.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "DR plan b.yaml: expected apiVersion lifeboat.dev/v1alpha1 and kind DRPlan, found apiVersion velero.io/v1 and kind Backup"
        );
        let e = parse("spec: [", "x.yaml").unwrap_err().to_string();
        assert!(e.starts_with("DR plan x.yaml: "), "{e}");
    }
}
