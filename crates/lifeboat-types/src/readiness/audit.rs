//! `lifeboat audit`: what would go wrong on the bad day, judged from the objects of a
//! cluster before it comes. Every rule is a pure function over [`Observed`] (the objects
//! as the API server sent them, raw JSON, and the few facts read from storage) that
//! yields [`Finding`]s; [`audit`] runs them all. The rules come from the DR guides: high
//! availability (replicas, zone spread, anti-affinity, disruption budgets), stateful data
//! (reclaim policy, volume binding, snapshot classes), and protection (schedules, their
//! pace against the RPO, a second location, etcd snapshots).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::selector::Selector;
use crate::api::velero::{LabelSelector, ScheduleSpec};
use crate::dr::status::{ScheduleView, coverage};
use crate::format::markdown::cell;

/// How much a finding matters. Ordered: `--fail-on high` fails on High and Critical.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth mending when next there.
    #[default]
    Low,
    /// Makes a bad day worse.
    Medium,
    /// Breaks a recovery or an outage's containment.
    High,
    /// Nothing to recover from.
    Critical,
}

impl Severity {
    /// Its lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity {s:?}; use low, medium, high or critical"
            )),
        }
    }
}

/// The audit's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A Deployment or StatefulSet with one replica.
    SingleReplica,
    /// A workload with several replicas and neither zone spread nor anti-affinity.
    NoZoneSpread,
    /// Required pod anti-affinity needing more topology domains than the nodes have.
    AntiAffinityUnsatisfiable,
    /// A PodDisruptionBudget that allows no eviction.
    PdbBlocksDrain,
    /// A PodDisruptionBudget that selects no pod.
    PdbSelectsNothing,
    /// A StatefulSet no PodDisruptionBudget covers.
    StatefulSetWithoutPdb,
    /// A StorageClass of stateful data that deletes volumes with their claims.
    ReclaimDelete,
    /// A StorageClass binding volumes at once in a cluster of several zones.
    ImmediateBindingMultiZone,
    /// A claim whose driver has no VolumeSnapshotClass.
    NoSnapshotClass,
    /// A protected namespace no Schedule backs up.
    NamespaceNotCovered,
    /// Schedules of a namespace all further apart than the RPO.
    ScheduleSlowerThanRpo,
    /// Backups kept in one location only.
    NoSecondLocation,
    /// No etcd snapshot, or the newest older than allowed.
    EtcdSnapshotOld,
    /// A container without a readiness probe.
    NoReadinessProbe,
}

impl Rule {
    /// Every rule, in the order findings are listed.
    pub const ALL: &'static [Rule] = &[
        Rule::NamespaceNotCovered,
        Rule::ScheduleSlowerThanRpo,
        Rule::NoSecondLocation,
        Rule::EtcdSnapshotOld,
        Rule::SingleReplica,
        Rule::NoZoneSpread,
        Rule::AntiAffinityUnsatisfiable,
        Rule::PdbBlocksDrain,
        Rule::PdbSelectsNothing,
        Rule::StatefulSetWithoutPdb,
        Rule::ReclaimDelete,
        Rule::ImmediateBindingMultiZone,
        Rule::NoSnapshotClass,
        Rule::NoReadinessProbe,
    ];

    /// Its id, as printed and as `--skip` takes it.
    pub fn id(self) -> &'static str {
        match self {
            Rule::SingleReplica => "single-replica",
            Rule::NoZoneSpread => "no-zone-spread",
            Rule::AntiAffinityUnsatisfiable => "anti-affinity-unsatisfiable",
            Rule::PdbBlocksDrain => "pdb-blocks-drain",
            Rule::PdbSelectsNothing => "pdb-selects-nothing",
            Rule::StatefulSetWithoutPdb => "statefulset-without-pdb",
            Rule::ReclaimDelete => "reclaim-delete",
            Rule::ImmediateBindingMultiZone => "immediate-binding-multi-zone",
            Rule::NoSnapshotClass => "no-snapshot-class",
            Rule::NamespaceNotCovered => "namespace-not-covered",
            Rule::ScheduleSlowerThanRpo => "schedule-slower-than-rpo",
            Rule::NoSecondLocation => "no-second-location",
            Rule::EtcdSnapshotOld => "etcd-snapshot-old",
            Rule::NoReadinessProbe => "no-readiness-probe",
        }
    }

    /// The rule of an id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.id() == id)
    }

    /// How much its findings matter.
    pub fn severity(self) -> Severity {
        match self {
            Rule::NamespaceNotCovered => Severity::Critical,
            Rule::AntiAffinityUnsatisfiable
            | Rule::PdbBlocksDrain
            | Rule::ReclaimDelete
            | Rule::ScheduleSlowerThanRpo
            | Rule::EtcdSnapshotOld => Severity::High,
            Rule::SingleReplica
            | Rule::NoZoneSpread
            | Rule::StatefulSetWithoutPdb
            | Rule::ImmediateBindingMultiZone
            | Rule::NoSnapshotClass
            | Rule::NoSecondLocation => Severity::Medium,
            Rule::PdbSelectsNothing | Rule::NoReadinessProbe => Severity::Low,
        }
    }

    /// Why it matters, in one line.
    pub fn why(self) -> &'static str {
        match self {
            Rule::SingleReplica => {
                "one pod: a node drain, crash or eviction takes the service down until it is rescheduled"
            }
            Rule::NoZoneSpread => {
                "nothing keeps the replicas apart: they may all run in one zone (or on one node) and go down with it"
            }
            Rule::AntiAffinityUnsatisfiable => {
                "the required anti-affinity needs more distinct nodes or zones than the cluster has: replicas stay Pending, here and on a standby restored from it"
            }
            Rule::PdbBlocksDrain => {
                "the budget allows no voluntary eviction: node drains and upgrades hang on it"
            }
            Rule::PdbSelectsNothing => {
                "the budget selects no pod, so it protects nothing (its selector is likely stale)"
            }
            Rule::StatefulSetWithoutPdb => {
                "nothing limits evictions: a drain may take several members down at once and lose quorum"
            }
            Rule::ReclaimDelete => {
                "deleting the claim or its namespace deletes the volume and its data with it"
            }
            Rule::ImmediateBindingMultiZone => {
                "volumes are provisioned before the pod is scheduled, possibly in a zone the pod cannot run in"
            }
            Rule::NoSnapshotClass => {
                "no VolumeSnapshotClass names the volume's driver: no CSI snapshot of it can be taken"
            }
            Rule::NamespaceNotCovered => {
                "no schedule backs the namespace up: after a disaster there is nothing to restore"
            }
            Rule::ScheduleSlowerThanRpo => {
                "backups are further apart than the RPO: a disaster just before the next one loses more than the RPO allows"
            }
            Rule::NoSecondLocation => {
                "every backup is in one location: losing it (region, account, bucket) loses every backup"
            }
            Rule::EtcdSnapshotOld => {
                "without a recent etcd snapshot the control plane cannot be rebuilt to a recent state"
            }
            Rule::NoReadinessProbe => {
                "pods count as ready before they serve: traffic, rollouts and a failover's verification trust them too early"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// One thing that would go wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// The rule broken.
    pub rule: Rule,
    /// The object: `Deployment shop/web`, `StorageClass standard`, `Namespace shop`.
    pub object: String,
    /// What was seen.
    pub detail: String,
    /// Why it matters (the rule's line).
    pub why: String,
    /// What to do.
    pub fix: String,
}

impl Finding {
    fn new(rule: Rule, object: String, detail: String, fix: String) -> Finding {
        Finding {
            severity: rule.severity(),
            rule,
            object,
            detail,
            why: rule.why().to_owned(),
            fix,
        }
    }
}

/// A Schedule as the audit sees it.
#[derive(Debug, Clone)]
pub struct SeenSchedule {
    /// `namespace/name`.
    pub name: String,
    /// Its spec.
    pub spec: ScheduleSpec,
}

/// The newest etcd snapshot found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEtcd {
    /// The location it is in.
    pub location: String,
    /// Its name.
    pub name: String,
    /// When it was stored.
    pub taken: DateTime<Utc>,
}

/// What the audit looked at. Kubernetes objects are raw JSON as listed (any version).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// When.
    pub now: DateTime<Utc>,
    /// The protected namespaces (those audited).
    pub namespaces: Vec<String>,
    /// Deployments, StatefulSets and DaemonSets of those namespaces (`kind` set).
    pub workloads: Vec<Value>,
    /// Their pods.
    pub pods: Vec<Value>,
    /// Their PodDisruptionBudgets.
    pub pdbs: Vec<Value>,
    /// Their PersistentVolumeClaims.
    pub claims: Vec<Value>,
    /// The PersistentVolumes bound to them (their reclaim policy is what counts once bound).
    pub volumes: Vec<Value>,
    /// The cluster's nodes.
    pub nodes: Vec<Value>,
    /// The cluster's StorageClasses.
    pub storage_classes: Vec<Value>,
    /// The cluster's VolumeSnapshotClasses (None: the snapshot API is not served).
    pub snapshot_classes: Option<Vec<Value>>,
    /// The Schedules (None: lifeboat is not installed, so none can run).
    pub schedules: Option<Vec<SeenSchedule>>,
    /// The RPO the schedules are held to.
    pub rpo: Duration,
    /// Where the RPO comes from (`plan shop-dr (tier-1)`, `the default`).
    pub rpo_source: String,
    /// Every location backups are kept in or copied to.
    pub locations: BTreeSet<String>,
    /// The newest etcd snapshot in any location (None: none found), when looked for.
    pub etcd: Option<Option<SeenEtcd>>,
    /// How old the newest etcd snapshot may be.
    pub etcd_max_age: Duration,
}

/// The zone label keys, newest first.
pub const ZONE_KEYS: &[&str] = &[
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
];

/// The annotation marking the cluster's default StorageClass.
pub const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// It, and the beta one clusters still carry.
pub const DEFAULT_CLASS_ANNOTATIONS: &[&str] = &[
    DEFAULT_CLASS,
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// A number of seconds as a Go duration (`1h0m0s`).
fn go(secs: u64) -> String {
    crate::GoDuration(Duration::from_secs(secs)).to_string()
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn labels(v: &Value, ptr: &str) -> BTreeMap<String, String> {
    v.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// `Kind namespace/name` (or `Kind name` for a cluster-scoped object).
pub fn object_name(v: &Value) -> String {
    let (kind, ns, name) = (
        s(v, "/kind"),
        s(v, "/metadata/namespace"),
        s(v, "/metadata/name"),
    );
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

fn replicas(w: &Value) -> i64 {
    w.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn is_kind(w: &Value, kinds: &[&str]) -> bool {
    kinds.contains(&s(w, "/kind"))
}

fn selector(v: Option<&Value>) -> Option<Selector> {
    let ls: LabelSelector = serde_json::from_value(v?.clone()).ok()?;
    Selector::from_label_selector(&ls).ok()
}

fn template_labels(w: &Value) -> BTreeMap<String, String> {
    labels(w, "/spec/template/metadata/labels")
}

fn same_namespace(a: &Value, b: &Value) -> bool {
    s(a, "/metadata/namespace") == s(b, "/metadata/namespace")
}

/// Which pods a PodDisruptionBudget selects by its selector: None when it selects none
/// at all (no selector; an empty one in policy/v1beta1), else the selector (an empty one
/// in policy/v1 selects every pod of the namespace).
fn pdb_selector(pdb: &Value) -> Option<Selector> {
    let raw = pdb.pointer("/spec/selector")?;
    let sel = selector(Some(raw))?;
    if sel.is_empty() && s(pdb, "/apiVersion") == "policy/v1beta1" {
        return None;
    }
    Some(sel)
}

/// The workloads of `pdb`'s namespace whose pod template it selects.
fn pdb_workloads<'a>(pdb: &Value, workloads: &'a [Value]) -> Vec<&'a Value> {
    let Some(sel) = pdb_selector(pdb) else {
        return Vec::new();
    };
    workloads
        .iter()
        .filter(|w| same_namespace(w, pdb) && is_kind(w, &["Deployment", "StatefulSet"]))
        .filter(|w| sel.matches(&template_labels(w)))
        .collect()
}

/// An IntOrString of a PDB: a count, or a percent of `total` (rounded up, as the
/// disruption controller does for minAvailable).
fn count_of(v: &Value, total: i64) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let p: i64 = v.as_str()?.strip_suffix('%')?.trim().parse().ok()?;
    let scaled = p.checked_mul(total)?;
    scaled.checked_add(99)?.checked_div(100)
}

fn rule_replicas(o: &Observed, out: &mut Vec<Finding>) {
    for w in o
        .workloads
        .iter()
        .filter(|w| is_kind(w, &["Deployment", "StatefulSet"]))
    {
        let n = replicas(w);
        if n == 1 {
            out.push(Finding::new(
                Rule::SingleReplica,
                object_name(w),
                "1 replica".into(),
                format!(
                    "run at least 2 replicas (kubectl -n {} scale {} --replicas=2) with a PodDisruptionBudget of maxUnavailable: 1",
                    s(w, "/metadata/namespace"),
                    format!("{}/{}", s(w, "/kind"), s(w, "/metadata/name")).to_lowercase()
                ),
            ));
        }
        if n > 1 && !spread_or_anti_affinity(w) {
            out.push(Finding::new(
                Rule::NoZoneSpread,
                object_name(w),
                format!("{n} replicas, no topologySpreadConstraints and no podAntiAffinity"),
                format!(
                    "add a topologySpreadConstraint on {} (whenUnsatisfiable: ScheduleAnyway) or a preferred podAntiAffinity to the pod template",
                    ZONE_KEYS[0]
                ),
            ));
        }
    }
}

fn spread_or_anti_affinity(w: &Value) -> bool {
    let spec = w.pointer("/spec/template/spec");
    let spread = spec
        .and_then(|p| p.get("topologySpreadConstraints"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let anti = spec
        .and_then(|p| p.pointer("/affinity/podAntiAffinity"))
        .and_then(Value::as_object)
        .is_some_and(|m| {
            m.values()
                .any(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        });
    spread || anti
}

/// Whether a node takes pods: Ready and not cordoned.
pub fn schedulable(node: &Value) -> bool {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    ready
        && !node
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

fn rule_anti_affinity(o: &Observed, out: &mut Vec<Finding>) {
    let nodes: Vec<&Value> = o.nodes.iter().filter(|n| schedulable(n)).collect();
    for w in o
        .workloads
        .iter()
        .filter(|w| is_kind(w, &["Deployment", "StatefulSet"]))
    {
        let n = replicas(w);
        let own = template_labels(w);
        let terms = w
            .pointer("/spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in &terms {
            // Only a term that keeps the workload's own pods apart limits its replicas.
            if !selector(t.get("labelSelector")).is_some_and(|sel| sel.matches(&own)) {
                continue;
            }
            let key = s(t, "/topologyKey");
            // A node without the key's label takes any number of the pods.
            if nodes.iter().any(|n| {
                n.pointer("/metadata/labels")
                    .and_then(|l| l.get(key))
                    .is_none()
            }) {
                continue;
            }
            let domains: BTreeSet<&str> = nodes
                .iter()
                .filter_map(|n| n.pointer("/metadata/labels").and_then(|l| l.get(key)))
                .filter_map(Value::as_str)
                .collect();
            let have = i64::try_from(domains.len()).unwrap_or(i64::MAX);
            if n > have {
                out.push(Finding::new(
                    Rule::AntiAffinityUnsatisfiable,
                    object_name(w),
                    format!(
                        "{n} replicas must each have their own {key}, and the schedulable nodes have {have}"
                    ),
                    "make the anti-affinity preferred (preferredDuringSchedulingIgnoredDuringExecution), or add nodes; check the standby has as many too".into(),
                ));
                break;
            }
        }
    }
}

fn rule_pdbs(o: &Observed, out: &mut Vec<Finding>) {
    for pdb in &o.pdbs {
        let selected = pdb_workloads(pdb, &o.workloads);
        let sel = pdb_selector(pdb);
        let pods_selected = sel.as_ref().is_some_and(|sel| {
            o.pods
                .iter()
                .any(|p| same_namespace(p, pdb) && sel.matches(&labels(p, "/metadata/labels")))
        });
        if selected.is_empty() && !pods_selected {
            out.push(Finding::new(
                Rule::PdbSelectsNothing,
                object_name(pdb),
                "its selector matches no pod and no workload's pod template".into(),
                "point spec.selector at the pods' labels, or delete the budget".into(),
            ));
            continue;
        }
        let mut total: i64 = selected.iter().map(|w| replicas(w)).sum();
        if selected.is_empty() {
            // Only pods of other owners (DaemonSets, operators' own kinds, bare pods).
            total = sel.as_ref().map_or(0, |sel| {
                let n = o
                    .pods
                    .iter()
                    .filter(|p| {
                        same_namespace(p, pdb) && sel.matches(&labels(p, "/metadata/labels"))
                    })
                    .count();
                i64::try_from(n).unwrap_or(i64::MAX)
            });
        }
        let spec = pdb.get("spec").cloned().unwrap_or_default();
        let blocks = if total == 0 {
            false
        } else if let Some(max) = spec.get("maxUnavailable") {
            count_of(max, total) == Some(0)
        } else if let Some(min) = spec.get("minAvailable") {
            count_of(min, total).is_some_and(|m| total > 0 && m >= total)
        } else {
            false
        };
        if blocks {
            let what = spec
                .get("maxUnavailable")
                .map(|v| format!("maxUnavailable {v}"))
                .or_else(|| {
                    spec.get("minAvailable")
                        .map(|v| format!("minAvailable {v}"))
                })
                .unwrap_or_default();
            out.push(Finding::new(
                Rule::PdbBlocksDrain,
                object_name(pdb),
                format!("{what} of {total} replicas: no pod may be evicted"),
                "allow one eviction: maxUnavailable: 1 (and run enough replicas to afford it)"
                    .into(),
            ));
        }
    }
    for w in o.workloads.iter().filter(|w| is_kind(w, &["StatefulSet"])) {
        let own = template_labels(w);
        let covered = o.pdbs.iter().any(|pdb| {
            same_namespace(pdb, w) && pdb_selector(pdb).is_some_and(|sel| sel.matches(&own))
        });
        if !covered {
            out.push(Finding::new(
                Rule::StatefulSetWithoutPdb,
                object_name(w),
                "no PodDisruptionBudget selects its pods".into(),
                format!(
                    "add a PodDisruptionBudget in {} selecting its pods, with maxUnavailable: 1",
                    s(w, "/metadata/namespace")
                ),
            ));
        }
    }
}

/// The StorageClass a claim uses: its own, else the default class's.
fn claim_class<'a>(claim: &'a Value, classes: &'a [Value]) -> Option<&'a Value> {
    let named = claim
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str);
    match named {
        Some("") => None,
        Some(n) => classes.iter().find(|c| s(c, "/metadata/name") == n),
        None => default_class(classes),
    }
}

/// The default StorageClass: marked by either annotation; of several, the newest (as the
/// API server's admission picks).
pub fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| {
            DEFAULT_CLASS_ANNOTATIONS.iter().any(|a| {
                s(
                    c,
                    &format!("/metadata/annotations/{}", a.replace('/', "~1")),
                ) == "true"
            })
        })
        .max_by(|a, b| {
            s(a, "/metadata/creationTimestamp")
                .cmp(s(b, "/metadata/creationTimestamp"))
                .then_with(|| s(b, "/metadata/name").cmp(s(a, "/metadata/name")))
        })
}

/// The reclaim policy a claim's data has: its bound volume's, else its class's.
fn claim_reclaim(claim: &Value, class: &Value, volumes: &[Value]) -> String {
    let bound = claim
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .and_then(|v| volumes.iter().find(|pv| s(pv, "/metadata/name") == v));
    match bound {
        Some(pv) => pv
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Delete")
            .to_owned(),
        None => class_reclaim(class).to_owned(),
    }
}

fn class_reclaim(class: &Value) -> &str {
    class
        .get("reclaimPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Delete")
}

/// The StorageClasses stateful data uses: those of the claims and of StatefulSets'
/// volumeClaimTemplates, each with the users whose data deleting the claim would delete
/// (a bound claim: its volume's policy; a template: the class's).
fn stateful_classes<'a>(o: &'a Observed) -> BTreeMap<String, (&'a Value, Vec<String>)> {
    let mut out: BTreeMap<String, (&Value, Vec<String>)> = BTreeMap::new();
    let mut add = |class: Option<&'a Value>, user: String, deletes: bool| {
        if let Some(c) = class {
            let e = out
                .entry(s(c, "/metadata/name").to_owned())
                .or_insert((c, Vec::new()));
            if deletes {
                e.1.push(user);
            }
        }
    };
    for c in &o.claims {
        let class = claim_class(c, &o.storage_classes);
        let deletes = class.is_some_and(|k| claim_reclaim(c, k, &o.volumes) == "Delete");
        add(class, object_name(c), deletes);
    }
    for w in o.workloads.iter().filter(|w| is_kind(w, &["StatefulSet"])) {
        for t in w
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let class = claim_class(t, &o.storage_classes);
            let deletes = class.is_some_and(|k| class_reclaim(k) == "Delete");
            add(class, object_name(w), deletes);
        }
    }
    for (_, deleting) in out.values_mut() {
        deleting.sort();
        deleting.dedup();
    }
    out
}

fn users_line(users: &[String]) -> String {
    match users {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
    }
}

fn rule_storage(o: &Observed, out: &mut Vec<Finding>) {
    let zones: BTreeSet<&str> = o
        .nodes
        .iter()
        .filter_map(|n| {
            ZONE_KEYS
                .iter()
                .find_map(|k| n.pointer("/metadata/labels").and_then(|l| l.get(*k)))
                .and_then(Value::as_str)
        })
        .collect();
    for (name, (class, deleting)) in stateful_classes(o) {
        if !deleting.is_empty() {
            out.push(Finding::new(
                Rule::ReclaimDelete,
                format!("StorageClass {name}"),
                format!(
                    "reclaimPolicy {}, the data of {} deleted with its claim",
                    class_reclaim(class),
                    users_line(&deleting)
                ),
                "use a StorageClass with reclaimPolicy: Retain for stateful data, or patch the bound volumes: kubectl patch pv PV -p '{\"spec\":{\"persistentVolumeReclaimPolicy\":\"Retain\"}}'".into(),
            ));
        }
        let binding = class
            .get("volumeBindingMode")
            .and_then(Value::as_str)
            .unwrap_or("Immediate");
        if binding == "Immediate" && zones.len() > 1 {
            out.push(Finding::new(
                Rule::ImmediateBindingMultiZone,
                format!("StorageClass {name}"),
                format!(
                    "volumeBindingMode Immediate, nodes in {} zones ({})",
                    zones.len(),
                    zones.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                "use volumeBindingMode: WaitForFirstConsumer (a new StorageClass: the field cannot be changed)".into(),
            ));
        }
    }
    let drivers: Option<BTreeSet<&str>> = o
        .snapshot_classes
        .as_ref()
        .map(|cs| cs.iter().map(|c| s(c, "/driver")).collect());
    for c in &o.claims {
        let Some(class) = claim_class(c, &o.storage_classes) else {
            continue;
        };
        let driver = s(class, "/provisioner");
        let (found, detail) = match &drivers {
            None => (
                false,
                format!(
                    "driver {driver}; the VolumeSnapshotClass API is not served in this cluster"
                ),
            ),
            Some(d) => (
                d.contains(driver),
                format!("driver {driver}; no VolumeSnapshotClass names it"),
            ),
        };
        if !found {
            out.push(Finding::new(
                Rule::NoSnapshotClass,
                object_name(c),
                detail,
                format!(
                    "add a VolumeSnapshotClass with driver: {driver} (labelled velero.io/csi-volumesnapshot-class: \"true\"), or back the volume up with file-system backup (--default-volumes-to-fs-backup)"
                ),
            ));
        }
    }
}

fn rule_protection(o: &Observed, out: &mut Vec<Finding>) {
    let schedules = o.schedules.as_deref().unwrap_or_default();
    let views: Vec<ScheduleView<'_>> = schedules
        .iter()
        .map(|s| ScheduleView {
            name: &s.name,
            spec: &s.spec,
        })
        .collect();
    for c in coverage(o.now, &views, &o.namespaces, o.rpo) {
        let object = format!("Namespace {}", c.namespace);
        if c.schedules.is_empty() {
            let detail = if o.schedules.is_none() {
                "lifeboat is not installed in the cluster, so no Schedule runs".to_owned()
            } else {
                "no unpaused Schedule includes it".to_owned()
            };
            out.push(Finding::new(
                Rule::NamespaceNotCovered,
                object,
                detail,
                format!(
                    "lifeboat schedule create {0}-daily --schedule '0 1 * * *' --include-namespaces {0}",
                    c.namespace
                ),
            ));
        } else if !c.within_rpo {
            let gaps: Vec<String> = c
                .schedules
                .iter()
                .map(|(n, gap)| match gap {
                    Some(g) => format!("{n} every {}", go(*g)),
                    None => format!("{n} (its cron line cannot be read)"),
                })
                .collect();
            out.push(Finding::new(
                Rule::ScheduleSlowerThanRpo,
                object,
                format!(
                    "{}; the RPO is {} ({})",
                    gaps.join(", "),
                    go(o.rpo.as_secs()),
                    o.rpo_source
                ),
                "run a schedule at least once per RPO (its longest gap between runs counts)".into(),
            ));
        }
    }
    if o.locations.len() < 2 {
        let detail = match o.locations.iter().next() {
            Some(l) => format!("every backup is kept in location {l} only"),
            None => "no storage location is configured".into(),
        };
        out.push(Finding::new(
            Rule::NoSecondLocation,
            "Cluster".into(),
            detail,
            "add a location in another region or account, and copy to it: annotate the Schedules lifeboat.dev/replicate-to=LOCATION, or run lifeboat backup replicate --from L1 --to L2".into(),
        ));
    }
    if let Some(etcd) = &o.etcd {
        let max = go(o.etcd_max_age.as_secs());
        let fix = "take etcd snapshots on a schedule: lifeboat etcd snapshot schedule --storage-location LOCATION | kubectl apply -f - (a CronJob on a control-plane node)".to_owned();
        match etcd {
            None => out.push(Finding::new(
                Rule::EtcdSnapshotOld,
                "Cluster".into(),
                "no etcd snapshot is stored in any location".into(),
                fix,
            )),
            Some(e) => {
                let age = o
                    .now
                    .signed_duration_since(e.taken)
                    .to_std()
                    .unwrap_or_default();
                if age > o.etcd_max_age {
                    out.push(Finding::new(
                        Rule::EtcdSnapshotOld,
                        "Cluster".into(),
                        format!(
                            "the newest, {} in location {}, is {} old; allowed {max}",
                            e.name,
                            e.location,
                            go(age.as_secs())
                        ),
                        fix,
                    ));
                }
            }
        }
    }
}

fn rule_probes(o: &Observed, out: &mut Vec<Finding>) {
    for w in &o.workloads {
        let containers = w
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let missing: Vec<&str> = containers
            .filter(|c| c.get("readinessProbe").is_none_or(Value::is_null))
            .map(|c| s(c, "/name"))
            .collect();
        if !missing.is_empty() {
            out.push(Finding::new(
                Rule::NoReadinessProbe,
                object_name(w),
                format!("container {} has no readinessProbe", missing.join(", ")),
                "add a readinessProbe that checks the container serves (an HTTP GET of a health path, a TCP connect)".into(),
            ));
        }
    }
}

/// Every finding, most severe first (then by rule and object). Rules in `skip` are not
/// run.
pub fn audit(o: &Observed, skip: &BTreeSet<Rule>) -> Vec<Finding> {
    let mut out = Vec::new();
    rule_protection(o, &mut out);
    rule_replicas(o, &mut out);
    rule_anti_affinity(o, &mut out);
    rule_pdbs(o, &mut out);
    rule_storage(o, &mut out);
    rule_probes(o, &mut out);
    out.retain(|f| !skip.contains(&f.rule));
    let order = |r: Rule| Rule::ALL.iter().position(|x| *x == r).unwrap_or(usize::MAX);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(order(a.rule).cmp(&order(b.rule)))
            .then(a.object.cmp(&b.object))
    });
    out
}

/// Whether findings at or above `fail_on` were made (the exit code of `--fail-on`).
pub fn fails(findings: &[Finding], fail_on: Severity) -> bool {
    findings.iter().any(|f| f.severity >= fail_on)
}

/// How many findings of each severity, most severe first (all four, zeros included).
pub fn counts(findings: &[Finding]) -> Vec<(Severity, usize)> {
    [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .into_iter()
    .map(|sev| (sev, findings.iter().filter(|f| f.severity == sev).count()))
    .collect()
}

/// The findings as Markdown: a heading, the counts by severity, and one table row per
/// finding (what was seen, why it matters, the fix). `scope` says what was audited.
pub fn markdown(findings: &[Finding], scope: &str) -> String {
    let mut out = format!("# Readiness audit: {}\n\n", cell(scope));
    let counts: Vec<String> = counts(findings)
        .into_iter()
        .map(|(sev, n)| format!("{n} {sev}"))
        .collect();
    out.push_str(&format!(
        "{} findings: {}.\n",
        findings.len(),
        counts.join(", ")
    ));
    if findings.is_empty() {
        return out;
    }
    out.push_str(
        "\n| severity | rule | object | seen | why it matters | fix |\n|---|---|---|---|---|---|\n",
    );
    for f in findings {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            f.severity,
            f.rule,
            cell(&f.object),
            cell(&f.detail),
            cell(&f.why),
            cell(&f.fix)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        "2026-12-05T12:00:00Z".parse().unwrap()
    }

    fn deploy(name: &str, replicas: i64, pod: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}})
    }

    fn sts(name: &str, replicas: i64, class: Option<&str>) -> Value {
        let mut t = json!({"metadata": {"name": "data"}, "spec": {}});
        if let Some(c) = class {
            t["spec"]["storageClassName"] = json!(c);
        }
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "volumeClaimTemplates": [t],
                "template": {"metadata": {"labels": {"app": name}}, "spec": probed()}}})
    }

    fn probed() -> Value {
        json!({"containers": [{"name": "c", "readinessProbe": {"tcpSocket": {"port": 80}}}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                "podAffinityTerm": {"topologyKey": ZONE_KEYS[0], "labelSelector": {"matchLabels": {"app": "db"}}}}]}}})
    }

    fn pdb(version: &str, selector: Value, budget: Value) -> Value {
        let mut spec = budget;
        spec["selector"] = selector;
        json!({"apiVersion": version, "kind": "PodDisruptionBudget",
            "metadata": {"name": "budget", "namespace": "shop"}, "spec": spec})
    }

    fn node(name: &str, ready: bool, labels: Value) -> Value {
        let mut labels = labels;
        labels["kubernetes.io/hostname"] = json!(name);
        json!({"kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn class(name: &str, reclaim: Option<&str>, binding: Option<&str>, default: bool) -> Value {
        let mut c = json!({"kind": "StorageClass", "metadata": {"name": name}, "provisioner": "csi.example.com"});
        if let Some(r) = reclaim {
            c["reclaimPolicy"] = json!(r);
        }
        if let Some(b) = binding {
            c["volumeBindingMode"] = json!(b);
        }
        if default {
            c["metadata"]["annotations"] = json!({DEFAULT_CLASS: "true"});
        }
        c
    }

    fn claim(name: &str, class: Option<&str>) -> Value {
        let mut c = json!({"kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "shop"}, "spec": {}});
        if let Some(n) = class {
            c["spec"]["storageClassName"] = json!(n);
        }
        c
    }

    fn schedule(name: &str, cron: &str, namespaces: &[&str]) -> SeenSchedule {
        let spec: ScheduleSpec = serde_json::from_value(json!({
            "schedule": cron, "template": {"includedNamespaces": namespaces}}))
        .unwrap();
        SeenSchedule {
            name: name.into(),
            spec,
        }
    }

    /// A cluster that breaks no rule: the baseline each case changes one thing of.
    fn healthy() -> Observed {
        let spread = json!({"containers": [{"name": "c", "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE_KEYS[0],
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        Observed {
            now: at(),
            namespaces: vec!["shop".into()],
            workloads: vec![deploy("web", 3, spread), sts("db", 3, Some("retain"))],
            pods: vec![],
            pdbs: vec![pdb(
                "policy/v1",
                json!({"matchLabels": {"app": "db"}}),
                json!({"maxUnavailable": 1}),
            )],
            claims: vec![claim("data-db-0", Some("retain"))],
            volumes: vec![],
            nodes: vec![
                node("n1", true, json!({ZONE_KEYS[0]: "a"})),
                node("n2", true, json!({ZONE_KEYS[0]: "a"})),
            ],
            storage_classes: vec![class(
                "retain",
                Some("Retain"),
                Some("WaitForFirstConsumer"),
                true,
            )],
            snapshot_classes: Some(vec![json!({"driver": "csi.example.com"})]),
            schedules: Some(vec![schedule("lifeboat/hourly", "0 * * * *", &["shop"])]),
            rpo: Duration::from_secs(3600),
            rpo_source: "the default".into(),
            locations: ["primary".to_owned(), "dr".to_owned()].into(),
            etcd: Some(Some(SeenEtcd {
                location: "primary".into(),
                name: "etcd-1".into(),
                taken: "2026-12-05T11:00:00Z".parse().unwrap(),
            })),
            etcd_max_age: Duration::from_secs(24 * 3600),
        }
    }

    fn found(o: &Observed) -> Vec<(Rule, String, String)> {
        audit(o, &BTreeSet::new())
            .into_iter()
            .map(|f| (f.rule, f.object, f.detail))
            .collect()
    }

    #[test]
    fn a_healthy_cluster_has_no_finding() {
        assert_eq!(found(&healthy()), vec![]);
    }

    fn one(o: &Observed) -> (Rule, String, String) {
        let f = found(o);
        assert_eq!(f.len(), 1, "{f:#?}");
        f.into_iter().next().unwrap()
    }

    type Change = fn(&mut Observed);

    #[rstest]
    #[case::single_replica(|o: &mut Observed| o.workloads[0]["spec"]["replicas"] = json!(1),
        Rule::SingleReplica, "Deployment shop/web", "1 replica")]
    #[case::replicas_default_to_one(|o: &mut Observed| { o.workloads[0]["spec"].as_object_mut().unwrap().remove("replicas"); },
        Rule::SingleReplica, "Deployment shop/web", "1 replica")]
    #[case::no_spread(|o: &mut Observed| { o.workloads[0]["spec"]["template"]["spec"].as_object_mut().unwrap().remove("topologySpreadConstraints"); },
        Rule::NoZoneSpread, "Deployment shop/web", "3 replicas, no topologySpreadConstraints and no podAntiAffinity")]
    #[case::anti_affinity_on_hostname_with_two_nodes(|o: &mut Observed| o.workloads[0]["spec"]["template"]["spec"]["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        Rule::AntiAffinityUnsatisfiable, "Deployment shop/web", "3 replicas must each have their own kubernetes.io/hostname, and the schedulable nodes have 2")]
    #[case::anti_affinity_on_one_zone(|o: &mut Observed| o.workloads[0]["spec"]["template"]["spec"]["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ZONE_KEYS[0], "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        Rule::AntiAffinityUnsatisfiable, "Deployment shop/web", "3 replicas must each have their own topology.kubernetes.io/zone, and the schedulable nodes have 1")]
    #[case::pdb_max_unavailable_zero(|o: &mut Observed| o.pdbs[0]["spec"] = json!({"selector": {"matchLabels": {"app": "db"}}, "maxUnavailable": 0}),
        Rule::PdbBlocksDrain, "PodDisruptionBudget shop/budget", "maxUnavailable 0 of 3 replicas: no pod may be evicted")]
    #[case::pdb_max_unavailable_zero_percent(|o: &mut Observed| o.pdbs[0]["spec"] = json!({"selector": {"matchLabels": {"app": "db"}}, "maxUnavailable": "0%"}),
        Rule::PdbBlocksDrain, "PodDisruptionBudget shop/budget", "maxUnavailable \"0%\" of 3 replicas: no pod may be evicted")]
    #[case::pdb_min_available_all(|o: &mut Observed| o.pdbs[0]["spec"] = json!({"selector": {"matchLabels": {"app": "db"}}, "minAvailable": 3}),
        Rule::PdbBlocksDrain, "PodDisruptionBudget shop/budget", "minAvailable 3 of 3 replicas: no pod may be evicted")]
    #[case::pdb_min_available_hundred_percent(|o: &mut Observed| o.pdbs[0]["spec"] = json!({"selector": {"matchLabels": {"app": "db"}}, "minAvailable": "100%"}),
        Rule::PdbBlocksDrain, "PodDisruptionBudget shop/budget", "minAvailable \"100%\" of 3 replicas: no pod may be evicted")]
    #[case::pdb_stale_selector(|o: &mut Observed| { o.pdbs.push(pdb("policy/v1", json!({"matchLabels": {"app": "gone"}}), json!({"maxUnavailable": 1}))); },
        Rule::PdbSelectsNothing, "PodDisruptionBudget shop/budget", "its selector matches no pod and no workload's pod template")]
    #[case::v1beta1_empty_selector_selects_nothing(|o: &mut Observed| { o.pdbs.push(pdb("policy/v1beta1", json!({}), json!({"maxUnavailable": 1}))); },
        Rule::PdbSelectsNothing, "PodDisruptionBudget shop/budget", "its selector matches no pod and no workload's pod template")]
    #[case::statefulset_without_pdb(|o: &mut Observed| o.pdbs.clear(),
        Rule::StatefulSetWithoutPdb, "StatefulSet shop/db", "no PodDisruptionBudget selects its pods")]
    #[case::reclaim_delete_by_default(|o: &mut Observed| { o.storage_classes[0].as_object_mut().unwrap().remove("reclaimPolicy"); },
        Rule::ReclaimDelete, "StorageClass retain", "reclaimPolicy Delete, the data of PersistentVolumeClaim shop/data-db-0 and 1 more deleted with its claim")]
    #[case::immediate_in_two_zones(|o: &mut Observed| { o.storage_classes[0]["volumeBindingMode"] = json!("Immediate"); o.nodes[1]["metadata"]["labels"] = json!({ZONE_KEYS[1]: "b"}); },
        Rule::ImmediateBindingMultiZone, "StorageClass retain", "volumeBindingMode Immediate, nodes in 2 zones (a, b)")]
    #[case::no_snapshot_class(|o: &mut Observed| o.snapshot_classes = Some(vec![json!({"driver": "other"})]),
        Rule::NoSnapshotClass, "PersistentVolumeClaim shop/data-db-0", "driver csi.example.com; no VolumeSnapshotClass names it")]
    #[case::snapshot_api_not_served(|o: &mut Observed| o.snapshot_classes = None,
        Rule::NoSnapshotClass, "PersistentVolumeClaim shop/data-db-0", "driver csi.example.com; the VolumeSnapshotClass API is not served in this cluster")]
    #[case::no_schedule(|o: &mut Observed| o.schedules = Some(vec![schedule("lifeboat/other", "0 * * * *", &["web"])]),
        Rule::NamespaceNotCovered, "Namespace shop", "no unpaused Schedule includes it")]
    #[case::paused_schedule(|o: &mut Observed| o.schedules.as_mut().unwrap()[0].spec.paused = true,
        Rule::NamespaceNotCovered, "Namespace shop", "no unpaused Schedule includes it")]
    #[case::not_installed(|o: &mut Observed| o.schedules = None,
        Rule::NamespaceNotCovered, "Namespace shop", "lifeboat is not installed in the cluster, so no Schedule runs")]
    #[case::daily_against_an_hour(|o: &mut Observed| o.schedules = Some(vec![schedule("lifeboat/daily", "0 1 * * *", &[])]),
        Rule::ScheduleSlowerThanRpo, "Namespace shop", "lifeboat/daily every 24h0m0s; the RPO is 1h0m0s (the default)")]
    #[case::one_location(|o: &mut Observed| o.locations = ["primary".to_owned()].into(),
        Rule::NoSecondLocation, "Cluster", "every backup is kept in location primary only")]
    #[case::no_location(|o: &mut Observed| o.locations.clear(),
        Rule::NoSecondLocation, "Cluster", "no storage location is configured")]
    #[case::no_etcd_snapshot(|o: &mut Observed| o.etcd = Some(None),
        Rule::EtcdSnapshotOld, "Cluster", "no etcd snapshot is stored in any location")]
    #[case::old_etcd_snapshot(|o: &mut Observed| o.etcd_max_age = Duration::from_secs(1800),
        Rule::EtcdSnapshotOld, "Cluster", "the newest, etcd-1 in location primary, is 1h0m0s old; allowed 30m0s")]
    #[case::no_readiness_probe(|o: &mut Observed| { o.workloads[1]["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("readinessProbe"); },
        Rule::NoReadinessProbe, "StatefulSet shop/db", "container c has no readinessProbe")]
    fn each_rule_finds_its_one_break(
        #[case] change: Change,
        #[case] rule: Rule,
        #[case] object: &str,
        #[case] detail: &str,
    ) {
        let mut o = healthy();
        change(&mut o);
        assert_eq!(one(&o), (rule, object.to_owned(), detail.to_owned()));
    }

    #[rstest]
    // Pods of a cordoned or NotReady node do not count as places to run.
    #[case::cordoned(json!({"spec": {"unschedulable": true}}), false)]
    #[case::ready(json!({}), true)]
    fn schedulable_nodes(#[case] extra: Value, #[case] want: bool) {
        let mut n = node("n", true, json!({}));
        if let Some(spec) = extra.get("spec") {
            n["spec"] = spec.clone();
        }
        assert_eq!(schedulable(&n), want);
        assert!(!schedulable(&node("n", false, json!({}))));
    }

    #[rstest]
    #[case::hostname_enough_nodes(3, "kubernetes.io/hostname", 0)]
    #[case::hostname_too_few(4, "kubernetes.io/hostname", 1)]
    fn anti_affinity_counts_distinct_values_of_the_key(
        #[case] replicas: i64,
        #[case] key: &str,
        #[case] findings: usize,
    ) {
        let mut o = healthy();
        o.nodes = (0..3)
            .map(|i| {
                node(
                    &format!("n{i}"),
                    true,
                    json!({"kubernetes.io/hostname": format!("n{i}"), ZONE_KEYS[0]: "a"}),
                )
            })
            .collect();
        o.workloads[0]["spec"]["replicas"] = json!(replicas);
        o.workloads[0]["spec"]["template"]["spec"]["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": key, "labelSelector": {"matchLabels": {"app": "web"}}}]}});
        let n = found(&o)
            .iter()
            .filter(|f| f.0 == Rule::AntiAffinityUnsatisfiable)
            .count();
        assert_eq!(n, findings);
    }

    #[test]
    fn anti_affinity_against_other_pods_does_not_limit_replicas() {
        let mut o = healthy();
        o.workloads[0]["spec"]["template"]["spec"]["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}});
        assert_eq!(found(&o), vec![]);
    }

    #[test]
    fn a_pdb_matching_only_pods_is_not_stale() {
        let mut o = healthy();
        o.pdbs.push(pdb(
            "policy/v1",
            json!({"matchLabels": {"run": "x"}}),
            json!({"maxUnavailable": 1}),
        ));
        o.pods.push(json!({"kind": "Pod", "metadata": {"name": "x", "namespace": "shop", "labels": {"run": "x"}}}));
        assert_eq!(found(&o), vec![]);
        // A pod of another namespace is not one the budget selects.
        o.pods[0]["metadata"]["namespace"] = json!("web");
        assert_eq!(one(&o).0, Rule::PdbSelectsNothing);
    }

    #[test]
    fn a_node_without_the_topology_label_takes_any_number() {
        let mut o = healthy();
        o.nodes.push(node("bare", true, json!({})));
        o.workloads[0]["spec"]["template"]["spec"]["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ZONE_KEYS[0], "labelSelector": {"matchLabels": {"app": "web"}}}]}});
        // n1, n2 in zone a; "bare" has no zone label: the scheduler puts any number there.
        o.nodes[2]["metadata"]["labels"] = json!({"kubernetes.io/hostname": "bare"});
        assert_eq!(found(&o), vec![]);
    }

    #[test]
    fn a_percent_budget_over_pods_of_other_owners_counts_the_pods() {
        let mut o = healthy();
        o.pdbs.push(pdb(
            "policy/v1",
            json!({"matchLabels": {"app": "agent"}}),
            json!({"maxUnavailable": "25%"}),
        ));
        for i in 0..4 {
            o.pods.push(json!({"kind": "Pod", "metadata": {"name": format!("agent-{i}"), "namespace": "shop", "labels": {"app": "agent"}}}));
        }
        // 25% of 4 pods is one: not blocking.
        assert_eq!(found(&o), vec![]);
        // 0% blocks whatever the count.
        o.pdbs[1]["spec"]["maxUnavailable"] = json!("0%");
        assert_eq!(one(&o).0, Rule::PdbBlocksDrain);
    }

    #[test]
    fn a_bound_volume_set_to_retain_keeps_its_data() {
        let mut o = healthy();
        o.storage_classes[0]["reclaimPolicy"] = json!("Delete");
        o.workloads[1]["spec"]["volumeClaimTemplates"] = json!([]);
        o.claims[0]["spec"]["volumeName"] = json!("pv-1");
        o.volumes.push(json!({"kind": "PersistentVolume", "metadata": {"name": "pv-1"}, "spec": {"persistentVolumeReclaimPolicy": "Delete"}}));
        assert_eq!(one(&o).0, Rule::ReclaimDelete);
        // The finding's fix, patching the volume, clears it.
        o.volumes[0]["spec"]["persistentVolumeReclaimPolicy"] = json!("Retain");
        assert_eq!(found(&o), vec![]);
    }

    #[test]
    fn the_default_class_is_the_newest_marked_by_either_annotation() {
        let mut old = class("old", Some("Retain"), None, true);
        old["metadata"]["creationTimestamp"] = json!("2020-01-01T00:00:00Z");
        let mut beta = class("beta", Some("Retain"), None, false);
        beta["metadata"]["annotations"] =
            json!({"storageclass.beta.kubernetes.io/is-default-class": "true"});
        beta["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        let plain = class("plain", None, None, false);
        let classes = [old, beta, plain];
        assert_eq!(
            s(default_class(&classes).unwrap(), "/metadata/name"),
            "beta"
        );
        assert!(default_class(&classes[2..]).is_none());
    }

    #[test]
    fn a_claim_without_class_uses_the_default_and_one_with_empty_class_none() {
        let mut o = healthy();
        o.claims.push(claim("defaulted", None));
        o.claims.push(claim("static", Some("")));
        o.snapshot_classes = Some(vec![]);
        let objects: Vec<String> = found(&o)
            .into_iter()
            .filter(|f| f.0 == Rule::NoSnapshotClass)
            .map(|f| f.1)
            .collect();
        assert_eq!(
            objects,
            [
                "PersistentVolumeClaim shop/data-db-0",
                "PersistentVolumeClaim shop/defaulted"
            ]
        );
    }

    #[test]
    fn findings_come_most_severe_first_and_skip_drops_a_rule() {
        let mut o = healthy();
        o.schedules = Some(vec![]);
        o.workloads[0]["spec"]["replicas"] = json!(1);
        o.etcd = Some(None);
        let rules: Vec<Rule> = audit(&o, &BTreeSet::new()).iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [
                Rule::NamespaceNotCovered,
                Rule::EtcdSnapshotOld,
                Rule::SingleReplica
            ]
        );
        let skipped = audit(&o, &[Rule::EtcdSnapshotOld].into());
        assert!(skipped.iter().all(|f| f.rule != Rule::EtcdSnapshotOld));
        assert!(fails(&skipped, Severity::Critical));
        assert!(!fails(&audit(&healthy(), &BTreeSet::new()), Severity::Low));
        assert_eq!(
            counts(&skipped),
            [
                (Severity::Critical, 1),
                (Severity::High, 0),
                (Severity::Medium, 1),
                (Severity::Low, 0)
            ]
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_counts_by_severity() {
        let mut o = healthy();
        o.workloads[0]["spec"]["replicas"] = json!(1);
        o.workloads[0]["metadata"]["name"] = json!("a|b");
        let md = markdown(&audit(&o, &BTreeSet::new()), "namespace shop");
        insta::assert_snapshot!(md);
        assert_eq!(
            markdown(&[], "every namespace"),
            "# Readiness audit: every namespace\n\n0 findings: 0 critical, 0 high, 0 medium, 0 low.\n"
        );
    }

    #[rstest]
    #[case("low", Severity::Low)]
    #[case("HIGH", Severity::High)]
    #[case("critical", Severity::Critical)]
    fn severities_parse(#[case] s: &str, #[case] want: Severity) {
        assert_eq!(s.parse::<Severity>(), Ok(want));
    }

    #[test]
    fn an_unknown_severity_names_the_choices() {
        assert_eq!(
            "urgent".parse::<Severity>(),
            Err("unknown severity \"urgent\"; use low, medium, high or critical".into())
        );
    }

    #[test]
    fn rule_ids_are_unique_and_read_back() {
        let ids: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        for r in Rule::ALL {
            assert_eq!(Rule::from_id(r.id()), Some(*r));
        }
    }
}
