//! The server's Prometheus metrics: Velero's names and labels (so Velero's dashboards and
//! alert rules work unchanged), plus lifeboat's own. Names, help texts and types come
//! from the one table in `lifeboat_types::metrics` (which also says why four Velero names
//! have a promlint alternative); this module holds the live values and registers them.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use lifeboat_types::metrics::MetricNames;
use lifeboat_types::metrics::{self as table, Metric as MetricDef};

/// Registers `metric` under its name from the table.
fn reg(
    r: &mut Registry,
    def: MetricDef,
    names: MetricNames,
    metric: impl prometheus_client::registry::Metric,
) {
    r.register(def.registered(names), def.help, metric);
}

/// The `schedule` label ("" for backups made by hand).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabel {
    /// The schedule's name.
    pub schedule: String,
}

/// The `backup_location_name` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocationLabel {
    /// The location's name.
    pub backup_location_name: String,
}

/// The `plan` label of the DR metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabel {
    /// The DRPlan's name.
    pub plan: String,
}

/// The `plan` and `cluster` labels of the DR metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanClusterLabel {
    /// The DRPlan's name.
    pub plan: String,
    /// The plan's name for the cluster.
    pub cluster: String,
}

/// The `backup_location_name` and `cluster` labels of the etcd snapshot metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocationClusterLabel {
    /// The location's name.
    pub backup_location_name: String,
    /// The cluster the snapshots are of ("" for those stored before paths named it).
    pub cluster: String,
}

type ByPlan = Family<PlanLabel, Gauge<f64, AtomicU64>>;
type ByPlanCluster = Family<PlanClusterLabel, Gauge<f64, AtomicU64>>;

type ByScheduleC = Family<ScheduleLabel, Counter>;
type ByScheduleG = Family<ScheduleLabel, Gauge>;
type ByScheduleF = Family<ScheduleLabel, Gauge<f64, AtomicU64>>;

fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        1.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
        14400.0,
    ]
    .into_iter()
}

/// Every metric the server exports.
pub struct Metrics {
    /// The registry they are encoded from.
    pub registry: Registry,
    /// velero_backup_total: Backup objects known.
    pub backup_total: Gauge,
    /// velero_backup_attempt_total.
    pub backup_attempt: ByScheduleC,
    /// velero_backup_success_total.
    pub backup_success: ByScheduleC,
    /// velero_backup_partial_failure_total.
    pub backup_partial_failure: ByScheduleC,
    /// velero_backup_failure_total.
    pub backup_failure: ByScheduleC,
    /// velero_backup_validation_failure_total.
    pub backup_validation_failure: ByScheduleC,
    /// velero_backup_duration_seconds.
    pub backup_duration: Family<ScheduleLabel, Histogram>,
    /// velero_backup_last_successful_timestamp (Unix seconds).
    pub backup_last_successful: ByScheduleG,
    /// velero_backup_last_status: 1 after a success, 0 after a failure.
    pub backup_last_status: ByScheduleG,
    /// velero_backup_items_total of the last backup.
    pub backup_items: ByScheduleG,
    /// velero_backup_items_errors of the last backup.
    pub backup_items_errors: ByScheduleG,
    /// velero_backup_warning_total.
    pub backup_warning: ByScheduleC,
    /// velero_backup_tarball_size_bytes of the last backup.
    pub backup_tarball_size: ByScheduleG,
    /// velero_backup_deletion_success_total.
    pub backup_deletion_success: ByScheduleC,
    /// velero_backup_deletion_failure_total.
    pub backup_deletion_failure: ByScheduleC,
    /// velero_backup_location_status_gauge: 1 Available, 0 Unavailable.
    pub location_status: Family<LocationLabel, Gauge>,
    /// velero_restore_total: Restore objects known.
    pub restore_total: Gauge,
    /// velero_restore_attempt_total.
    pub restore_attempt: ByScheduleC,
    /// velero_restore_success_total.
    pub restore_success: ByScheduleC,
    /// velero_restore_partial_failure_total.
    pub restore_partial_failure: ByScheduleC,
    /// velero_restore_failed_total.
    pub restore_failed: ByScheduleC,
    /// velero_restore_validation_failed_total.
    pub restore_validation_failed: ByScheduleC,
    /// lifeboat_restore_duration_seconds.
    pub restore_duration: Family<ScheduleLabel, Histogram>,
    /// lifeboat_restore_items_per_second of the last restore.
    pub restore_items_per_second: ByScheduleF,
    /// lifeboat_backup_items_per_second of the last backup.
    pub backup_items_per_second: ByScheduleF,
    /// lifeboat_leader: 1 on the replica that runs the controllers.
    pub leader: Gauge,
    /// The DR plans' metrics (`lifeboat_dr_*`).
    pub dr: DrMetrics,
    /// lifeboat_schedule_interval_seconds of each unpaused schedule.
    pub schedule_interval: ByScheduleF,
    /// lifeboat_etcd_snapshot_last_timestamp per location and cluster.
    pub etcd_snapshot_last: Family<LocationClusterLabel, Gauge<f64, AtomicU64>>,
    /// The clusters each location's etcd series were last set for (a series whose
    /// snapshots were all pruned goes).
    pub etcd_series: std::sync::Mutex<std::collections::BTreeMap<String, Vec<String>>>,
}

/// The DR plans' metrics, each named in `lifeboat_types::metrics`.
#[derive(Default)]
pub struct DrMetrics {
    /// lifeboat_dr_rpo_seconds.
    pub rpo: ByPlan,
    /// lifeboat_dr_cluster_rpo_seconds.
    pub cluster_rpo: ByPlanCluster,
    /// lifeboat_dr_rpo_objective_seconds.
    pub rpo_objective: ByPlan,
    /// lifeboat_dr_rto_objective_seconds.
    pub rto_objective: ByPlan,
    /// lifeboat_dr_health.
    pub health: ByPlan,
    /// lifeboat_dr_cluster_ready.
    pub cluster_ready: ByPlanCluster,
    /// lifeboat_dr_replication_lag_seconds.
    pub replication_lag: ByPlanCluster,
    /// lifeboat_dr_last_drill_timestamp.
    pub last_drill_timestamp: ByPlan,
    /// lifeboat_dr_last_drill_success.
    pub last_drill_success: ByPlan,
    /// lifeboat_dr_last_drill_rto_seconds.
    pub last_drill_rto: ByPlan,
    /// lifeboat_dr_last_sync_timestamp.
    pub last_sync_timestamp: ByPlanCluster,
    /// lifeboat_dr_last_sync_success.
    pub last_sync_success: ByPlanCluster,
}

impl DrMetrics {
    /// Drops every series of plan `plan` (clusters: the cluster names it had).
    pub fn forget(&self, plan: &str, clusters: &[String]) {
        let p = PlanLabel { plan: plan.into() };
        for f in [
            &self.rpo,
            &self.rpo_objective,
            &self.rto_objective,
            &self.health,
            &self.last_drill_timestamp,
            &self.last_drill_success,
            &self.last_drill_rto,
        ] {
            f.remove(&p);
        }
        self.forget_clusters(plan, clusters);
    }

    /// Drops the series of `clusters` of plan `plan`.
    pub fn forget_clusters(&self, plan: &str, clusters: &[String]) {
        for c in clusters {
            let pc = PlanClusterLabel {
                plan: plan.into(),
                cluster: c.clone(),
            };
            for f in [
                &self.cluster_rpo,
                &self.cluster_ready,
                &self.replication_lag,
                &self.last_sync_timestamp,
                &self.last_sync_success,
            ] {
                f.remove(&pc);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(MetricNames::default())
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new(names: MetricNames) -> Self {
        let hist = || {
            Family::<ScheduleLabel, Histogram>::new_with_constructor(|| {
                Histogram::new(duration_buckets())
            })
        };
        let m = Metrics {
            registry: Registry::default(),
            backup_total: Gauge::default(),
            backup_attempt: Family::default(),
            backup_success: Family::default(),
            backup_partial_failure: Family::default(),
            backup_failure: Family::default(),
            backup_validation_failure: Family::default(),
            backup_duration: hist(),
            backup_last_successful: Family::default(),
            backup_last_status: Family::default(),
            backup_items: Family::default(),
            backup_items_errors: Family::default(),
            backup_warning: Family::default(),
            backup_tarball_size: Family::default(),
            backup_deletion_success: Family::default(),
            backup_deletion_failure: Family::default(),
            location_status: Family::default(),
            restore_total: Gauge::default(),
            restore_attempt: Family::default(),
            restore_success: Family::default(),
            restore_partial_failure: Family::default(),
            restore_failed: Family::default(),
            restore_validation_failed: Family::default(),
            restore_duration: hist(),
            restore_items_per_second: Family::default(),
            backup_items_per_second: Family::default(),
            leader: Gauge::default(),
            dr: DrMetrics::default(),
            schedule_interval: Family::default(),
            etcd_snapshot_last: Family::default(),
            etcd_series: Default::default(),
        };
        let mut m = m;
        // Backups made by hand (schedule ""): their failure counters start at 0, so that
        // the first failure is an increase to Prometheus (schedules' are made by their
        // controller).
        let by_hand = ScheduleLabel {
            schedule: String::new(),
        };
        m.count_failures_from_zero(&by_hand);
        let r = &mut m.registry;
        // Counters get their `_total` suffix from the encoder.
        reg(r, table::BACKUP_TOTAL, names, m.backup_total.clone());
        reg(r, table::BACKUP_ATTEMPT, names, m.backup_attempt.clone());
        reg(r, table::BACKUP_SUCCESS, names, m.backup_success.clone());
        reg(
            r,
            table::BACKUP_PARTIAL_FAILURE,
            names,
            m.backup_partial_failure.clone(),
        );
        reg(r, table::BACKUP_FAILURE, names, m.backup_failure.clone());
        reg(
            r,
            table::BACKUP_VALIDATION_FAILURE,
            names,
            m.backup_validation_failure.clone(),
        );
        reg(r, table::BACKUP_DURATION, names, m.backup_duration.clone());
        reg(
            r,
            table::BACKUP_LAST_SUCCESSFUL,
            names,
            m.backup_last_successful.clone(),
        );
        reg(
            r,
            table::BACKUP_LAST_STATUS,
            names,
            m.backup_last_status.clone(),
        );
        reg(r, table::BACKUP_ITEMS, names, m.backup_items.clone());
        reg(
            r,
            table::BACKUP_ITEMS_ERRORS,
            names,
            m.backup_items_errors.clone(),
        );
        reg(r, table::BACKUP_WARNING, names, m.backup_warning.clone());
        reg(
            r,
            table::BACKUP_TARBALL_SIZE,
            names,
            m.backup_tarball_size.clone(),
        );
        reg(
            r,
            table::BACKUP_DELETION_SUCCESS,
            names,
            m.backup_deletion_success.clone(),
        );
        reg(
            r,
            table::BACKUP_DELETION_FAILURE,
            names,
            m.backup_deletion_failure.clone(),
        );
        reg(r, table::LOCATION_STATUS, names, m.location_status.clone());
        reg(r, table::RESTORE_TOTAL, names, m.restore_total.clone());
        reg(r, table::RESTORE_ATTEMPT, names, m.restore_attempt.clone());
        reg(r, table::RESTORE_SUCCESS, names, m.restore_success.clone());
        reg(
            r,
            table::RESTORE_PARTIAL_FAILURE,
            names,
            m.restore_partial_failure.clone(),
        );
        reg(r, table::RESTORE_FAILED, names, m.restore_failed.clone());
        reg(
            r,
            table::RESTORE_VALIDATION_FAILED,
            names,
            m.restore_validation_failed.clone(),
        );
        reg(
            r,
            table::RESTORE_DURATION,
            names,
            m.restore_duration.clone(),
        );
        reg(
            r,
            table::RESTORE_ITEMS_PER_SECOND,
            names,
            m.restore_items_per_second.clone(),
        );
        reg(
            r,
            table::BACKUP_ITEMS_PER_SECOND,
            names,
            m.backup_items_per_second.clone(),
        );
        reg(r, table::LEADER, names, m.leader.clone());
        let dr = &m.dr;
        reg(r, table::DR_RPO, names, dr.rpo.clone());
        reg(r, table::DR_CLUSTER_RPO, names, dr.cluster_rpo.clone());
        reg(r, table::DR_RPO_OBJECTIVE, names, dr.rpo_objective.clone());
        reg(r, table::DR_RTO_OBJECTIVE, names, dr.rto_objective.clone());
        reg(r, table::DR_HEALTH, names, dr.health.clone());
        reg(r, table::DR_CLUSTER_READY, names, dr.cluster_ready.clone());
        reg(
            r,
            table::DR_REPLICATION_LAG,
            names,
            dr.replication_lag.clone(),
        );
        reg(
            r,
            table::DR_LAST_DRILL_TIMESTAMP,
            names,
            dr.last_drill_timestamp.clone(),
        );
        reg(
            r,
            table::DR_LAST_DRILL_SUCCESS,
            names,
            dr.last_drill_success.clone(),
        );
        reg(
            r,
            table::DR_LAST_DRILL_RTO,
            names,
            dr.last_drill_rto.clone(),
        );
        reg(
            r,
            table::DR_LAST_SYNC_TIMESTAMP,
            names,
            dr.last_sync_timestamp.clone(),
        );
        reg(
            r,
            table::DR_LAST_SYNC_SUCCESS,
            names,
            dr.last_sync_success.clone(),
        );
        reg(
            r,
            table::SCHEDULE_INTERVAL,
            names,
            m.schedule_interval.clone(),
        );
        reg(
            r,
            table::ETCD_SNAPSHOT_LAST,
            names,
            m.etcd_snapshot_last.clone(),
        );
        m
    }

    /// Creates `label`'s failure counters at 0 (a counter's first series is its birth, not
    /// an increase, to Prometheus' `increase`).
    pub fn count_failures_from_zero(&self, label: &ScheduleLabel) {
        for f in [
            &self.backup_failure,
            &self.backup_partial_failure,
            &self.backup_validation_failure,
        ] {
            let _ = f.get_or_create(label);
        }
    }

    /// The exposition in Prometheus' classic text format (0.0.4), which every scraper and
    /// `promtool check metrics` read: see [`openmetrics_to_classic`].
    pub fn encode(&self) -> String {
        let mut om = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut om, &self.registry);
        openmetrics_to_classic(&om)
    }
}

/// Rewrites OpenMetrics text (what prometheus-client encodes) as the classic format:
/// a counter family `x` is announced as `x_total` (its samples' name), and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines are dropped.
pub fn openmetrics_to_classic(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        if let Some((kind, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) && !name.ends_with("_total") {
                out.push_str(&format!("{kind}{name}_total {tail}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The label value of a backup's schedule.
pub fn schedule_of(labels: Option<&std::collections::BTreeMap<String, String>>) -> ScheduleLabel {
    ScheduleLabel {
        schedule: labels
            .and_then(|l| l.get(lifeboat_types::rules::schedule::SCHEDULE_LABEL))
            .cloned()
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_as_their_samples() {
        let m = Metrics::default();
        let sched = ScheduleLabel {
            schedule: "daily".into(),
        };
        m.backup_attempt.get_or_create(&sched).inc();
        m.backup_last_successful
            .get_or_create(&sched)
            .set(1_700_000_000);
        let text = m.encode();
        assert!(
            text.contains("# TYPE velero_backup_attempt_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# HELP velero_backup_attempt_total Total number of attempted backups")
        );
        assert!(text.contains("velero_backup_attempt_total{schedule=\"daily\"} 1"));
        assert!(
            text.contains("velero_backup_last_successful_timestamp{schedule=\"daily\"} 1700000000")
        );
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn promlint_names_replace_only_velero_misnamed_four() {
        let family_names = |names| -> Vec<String> {
            let m = Metrics::new(names);
            // Families with no sample are not exported: give every one a sample.
            let sched = ScheduleLabel {
                schedule: String::new(),
            };
            m.backup_items.get_or_create(&sched).set(1);
            m.location_status
                .get_or_create(&LocationLabel {
                    backup_location_name: "default".into(),
                })
                .set(1);
            m.encode()
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .map(|l| l.split(' ').next().unwrap().to_string())
                .collect()
        };
        let velero = family_names(MetricNames::Velero);
        let promlint = family_names(MetricNames::Promlint);
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|n| !b.contains(n)).cloned().collect()
        };
        assert_eq!(
            only(&velero, &promlint),
            [
                "velero_backup_total",
                "velero_backup_items_total",
                "velero_backup_location_status_gauge",
                "velero_restore_total"
            ]
        );
        assert_eq!(
            only(&promlint, &velero),
            [
                "velero_backups",
                "velero_backup_items",
                "velero_backup_location_status",
                "velero_restores"
            ]
        );
    }

    #[test]
    fn exports_exactly_the_table() {
        for names in [MetricNames::Velero, MetricNames::Promlint] {
            let text = Metrics::new(names).encode();
            let exported: Vec<(String, String)> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .map(|l| {
                    let (n, t) = l.split_once(' ').unwrap();
                    (n.to_string(), t.to_string())
                })
                .collect();
            // Families without samples are exported too, as long as they are gauges or
            // counters without labels; compare what is there with the table.
            for (name, kind) in &exported {
                let def = table::ALL
                    .iter()
                    .find(|d| d.exposed(names) == name)
                    .unwrap_or_else(|| panic!("{name} is exported but not in the table"));
                let want = match def.kind {
                    table::MetricType::Counter => "counter",
                    table::MetricType::Gauge => "gauge",
                    table::MetricType::Histogram => "histogram",
                };
                assert_eq!(kind, want, "{name}");
                assert!(
                    text.contains(&format!("# HELP {name} {}", def.help)),
                    "{name}"
                );
            }
            assert!(exported.len() >= 3, "{text}");
        }
    }
}
