//! Every metric the server exports, as one table: name, help, type and labels. The
//! server registers exactly these (`lifeboat-server/src/metrics.rs`); alert rules,
//! dashboards and docs read the same table, so a name lives in one place.
//!
//! Velero's names are kept so that Velero's dashboards and alert rules work unchanged.
//! Four of them break Prometheus' naming lint (`promtool check metrics`): the gauges
//! `velero_backup_total`, `velero_restore_total` and `velero_backup_items_total` end in
//! `_total` (which is for counters) and `velero_backup_location_status_gauge` names its
//! type. Those four carry a [`Metric::promlint_name`], exported instead under
//! `--metric-names promlint`.

/// A metric's type, as Prometheus reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up; exposed with a `_total` suffix.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

/// Which names the server exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricNames {
    /// Velero's own names (dashboards and alert rules written for Velero work).
    #[default]
    Velero,
    /// Names that pass `promtool check metrics`.
    Promlint,
}

/// One metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The name as exposed (counters with their `_total`), with Velero's names.
    pub name: &'static str,
    /// The name under [`MetricNames::Promlint`], for the four Velero misnames.
    pub promlint_name: Option<&'static str>,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Its type.
    pub kind: MetricType,
    /// Its label names.
    pub labels: &'static [&'static str],
}

impl Metric {
    /// The name as exposed under `names`.
    pub fn exposed(&self, names: MetricNames) -> &'static str {
        match (names, self.promlint_name) {
            (MetricNames::Promlint, Some(n)) => n,
            _ => self.name,
        }
    }

    /// The name to register with an encoder that adds `_total` to counters itself
    /// (prometheus-client does).
    pub fn registered(&self, names: MetricNames) -> &'static str {
        let n = self.exposed(names);
        match self.kind {
            MetricType::Counter => n.strip_suffix("_total").unwrap_or(n),
            _ => n,
        }
    }
}

const SCHEDULE: &[&str] = &["schedule"];
const LOCATION: &[&str] = &["backup_location_name"];
const PLAN: &[&str] = &["plan"];
const PLAN_CLUSTER: &[&str] = &["plan", "cluster"];
const LOCATION_CLUSTER: &[&str] = &["backup_location_name", "cluster"];

const fn m(
    name: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        promlint_name: None,
        help,
        kind,
        labels,
    }
}

const fn renamed(
    name: &'static str,
    promlint_name: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    let mut metric = m(name, kind, labels, help);
    metric.promlint_name = Some(promlint_name);
    metric
}

use MetricType::{Counter, Gauge, Histogram};

/// velero_backup_total: Backup objects known.
pub const BACKUP_TOTAL: Metric = renamed(
    "velero_backup_total",
    "velero_backups",
    Gauge,
    &[],
    "Current number of existent backups",
);
/// velero_backup_attempt_total.
pub const BACKUP_ATTEMPT: Metric = m(
    "velero_backup_attempt_total",
    Counter,
    SCHEDULE,
    "Total number of attempted backups",
);
/// velero_backup_success_total.
pub const BACKUP_SUCCESS: Metric = m(
    "velero_backup_success_total",
    Counter,
    SCHEDULE,
    "Total number of successful backups",
);
/// velero_backup_partial_failure_total.
pub const BACKUP_PARTIAL_FAILURE: Metric = m(
    "velero_backup_partial_failure_total",
    Counter,
    SCHEDULE,
    "Total number of partially failed backups",
);
/// velero_backup_failure_total.
pub const BACKUP_FAILURE: Metric = m(
    "velero_backup_failure_total",
    Counter,
    SCHEDULE,
    "Total number of failed backups",
);
/// velero_backup_validation_failure_total.
pub const BACKUP_VALIDATION_FAILURE: Metric = m(
    "velero_backup_validation_failure_total",
    Counter,
    SCHEDULE,
    "Total number of validation failed backups",
);
/// velero_backup_duration_seconds.
pub const BACKUP_DURATION: Metric = m(
    "velero_backup_duration_seconds",
    Histogram,
    SCHEDULE,
    "Time taken to complete backup, in seconds",
);
/// velero_backup_last_successful_timestamp (Unix seconds).
pub const BACKUP_LAST_SUCCESSFUL: Metric = m(
    "velero_backup_last_successful_timestamp",
    Gauge,
    SCHEDULE,
    "Last time a backup ran successfully, Unix timestamp in seconds",
);
/// velero_backup_last_status: 1 after a success, 0 after a failure.
pub const BACKUP_LAST_STATUS: Metric = m(
    "velero_backup_last_status",
    Gauge,
    SCHEDULE,
    "Last status of the backup. A value of 1 is success, 0 is failure",
);
/// velero_backup_items_total of the last backup.
pub const BACKUP_ITEMS: Metric = renamed(
    "velero_backup_items_total",
    "velero_backup_items",
    Gauge,
    SCHEDULE,
    "Total number of items backed up",
);
/// velero_backup_items_errors of the last backup.
pub const BACKUP_ITEMS_ERRORS: Metric = m(
    "velero_backup_items_errors",
    Gauge,
    SCHEDULE,
    "Total number of errors encountered during backup",
);
/// velero_backup_warning_total.
pub const BACKUP_WARNING: Metric = m(
    "velero_backup_warning_total",
    Counter,
    SCHEDULE,
    "Total number of warned backups",
);
/// velero_backup_tarball_size_bytes of the last backup.
pub const BACKUP_TARBALL_SIZE: Metric = m(
    "velero_backup_tarball_size_bytes",
    Gauge,
    SCHEDULE,
    "Size, in bytes, of a backup",
);
/// velero_backup_deletion_success_total.
pub const BACKUP_DELETION_SUCCESS: Metric = m(
    "velero_backup_deletion_success_total",
    Counter,
    SCHEDULE,
    "Total number of successful backup deletions",
);
/// velero_backup_deletion_failure_total.
pub const BACKUP_DELETION_FAILURE: Metric = m(
    "velero_backup_deletion_failure_total",
    Counter,
    SCHEDULE,
    "Total number of failed backup deletions",
);
/// velero_backup_location_status_gauge: 1 Available, 0 Unavailable.
pub const LOCATION_STATUS: Metric = renamed(
    "velero_backup_location_status_gauge",
    "velero_backup_location_status",
    Gauge,
    LOCATION,
    "The status of backup storage locations. 1 is Available, 0 is Unavailable",
);
/// velero_restore_total: Restore objects known.
pub const RESTORE_TOTAL: Metric = renamed(
    "velero_restore_total",
    "velero_restores",
    Gauge,
    &[],
    "Current number of existent restores",
);
/// velero_restore_attempt_total.
pub const RESTORE_ATTEMPT: Metric = m(
    "velero_restore_attempt_total",
    Counter,
    SCHEDULE,
    "Total number of attempted restores",
);
/// velero_restore_success_total.
pub const RESTORE_SUCCESS: Metric = m(
    "velero_restore_success_total",
    Counter,
    SCHEDULE,
    "Total number of successful restores",
);
/// velero_restore_partial_failure_total.
pub const RESTORE_PARTIAL_FAILURE: Metric = m(
    "velero_restore_partial_failure_total",
    Counter,
    SCHEDULE,
    "Total number of partially failed restores",
);
/// velero_restore_failed_total.
pub const RESTORE_FAILED: Metric = m(
    "velero_restore_failed_total",
    Counter,
    SCHEDULE,
    "Total number of failed restores",
);
/// velero_restore_validation_failed_total.
pub const RESTORE_VALIDATION_FAILED: Metric = m(
    "velero_restore_validation_failed_total",
    Counter,
    SCHEDULE,
    "Total number of failed restores failing validations",
);
/// lifeboat_restore_duration_seconds.
pub const RESTORE_DURATION: Metric = m(
    "lifeboat_restore_duration_seconds",
    Histogram,
    SCHEDULE,
    "Time taken to complete a restore, in seconds",
);
/// lifeboat_restore_items_per_second of the last restore.
pub const RESTORE_ITEMS_PER_SECOND: Metric = m(
    "lifeboat_restore_items_per_second",
    Gauge,
    SCHEDULE,
    "Items restored per second by the last restore",
);
/// lifeboat_backup_items_per_second of the last backup.
pub const BACKUP_ITEMS_PER_SECOND: Metric = m(
    "lifeboat_backup_items_per_second",
    Gauge,
    SCHEDULE,
    "Items backed up per second by the last backup",
);
/// lifeboat_leader: 1 on the replica that runs the controllers.
pub const LEADER: Metric = m(
    "lifeboat_leader",
    Gauge,
    &[],
    "1 when this replica holds the leader lease and runs the controllers",
);
/// lifeboat_dr_rpo_seconds: per plan, the RPO a failover would achieve now.
pub const DR_RPO: Metric = m(
    "lifeboat_dr_rpo_seconds",
    Gauge,
    PLAN,
    "Seconds of data a failover of the DR plan would lose now: the age of the newest Completed backup a standby can read (+Inf when none can)",
);
/// lifeboat_dr_cluster_rpo_seconds: per plan and cluster.
pub const DR_CLUSTER_RPO: Metric = m(
    "lifeboat_dr_cluster_rpo_seconds",
    Gauge,
    PLAN_CLUSTER,
    "Age in seconds of the newest Completed backup of the DR plan the cluster can read (+Inf when it reads none)",
);
/// lifeboat_dr_rpo_objective_seconds.
pub const DR_RPO_OBJECTIVE: Metric = m(
    "lifeboat_dr_rpo_objective_seconds",
    Gauge,
    PLAN,
    "The DR plan's recovery point objective in seconds",
);
/// lifeboat_dr_rto_objective_seconds.
pub const DR_RTO_OBJECTIVE: Metric = m(
    "lifeboat_dr_rto_objective_seconds",
    Gauge,
    PLAN,
    "The DR plan's recovery time objective in seconds",
);
/// lifeboat_dr_health: 2 ok, 1 warning, 0 critical.
pub const DR_HEALTH: Metric = m(
    "lifeboat_dr_health",
    Gauge,
    PLAN,
    "The DR plan's health as dr status judges it: 2 ok, 1 warning, 0 critical",
);
/// lifeboat_dr_cluster_ready: 1 when the cluster could take over.
pub const DR_CLUSTER_READY: Metric = m(
    "lifeboat_dr_cluster_ready",
    Gauge,
    PLAN_CLUSTER,
    "1 when the cluster could take over the DR plan now (API reachable, nodes Ready, a location open, a backup readable)",
);
/// lifeboat_dr_replication_lag_seconds.
pub const DR_REPLICATION_LAG: Metric = m(
    "lifeboat_dr_replication_lag_seconds",
    Gauge,
    PLAN_CLUSTER,
    "Seconds the newest backup the cluster reads is behind the newest any cluster of the DR plan reads",
);
/// lifeboat_dr_last_drill_timestamp.
pub const DR_LAST_DRILL_TIMESTAMP: Metric = m(
    "lifeboat_dr_last_drill_timestamp",
    Gauge,
    PLAN,
    "Unix time the server's last drill of the DR plan started",
);
/// lifeboat_dr_last_drill_success.
pub const DR_LAST_DRILL_SUCCESS: Metric = m(
    "lifeboat_dr_last_drill_success",
    Gauge,
    PLAN,
    "1 when the server's last drill of the DR plan passed every criterion, 0 when it did not",
);
/// lifeboat_dr_last_drill_rto_seconds.
pub const DR_LAST_DRILL_RTO: Metric = m(
    "lifeboat_dr_last_drill_rto_seconds",
    Gauge,
    PLAN,
    "The RTO the server's last drill of the DR plan measured, in seconds",
);
/// lifeboat_dr_last_sync_timestamp.
pub const DR_LAST_SYNC_TIMESTAMP: Metric = m(
    "lifeboat_dr_last_sync_timestamp",
    Gauge,
    PLAN_CLUSTER,
    "Unix time the warm standby's last sync ended",
);
/// lifeboat_dr_last_sync_success.
pub const DR_LAST_SYNC_SUCCESS: Metric = m(
    "lifeboat_dr_last_sync_success",
    Gauge,
    PLAN_CLUSTER,
    "1 when the warm standby's last sync left it holding the newest backup, 0 when it failed",
);
/// lifeboat_schedule_interval_seconds.
pub const SCHEDULE_INTERVAL: Metric = m(
    "lifeboat_schedule_interval_seconds",
    Gauge,
    SCHEDULE,
    "The longest gap between two runs of the unpaused schedule's cron line, in seconds (backup-age alerts compare against it)",
);
/// lifeboat_etcd_snapshot_last_timestamp.
pub const ETCD_SNAPSHOT_LAST: Metric = m(
    "lifeboat_etcd_snapshot_last_timestamp",
    Gauge,
    LOCATION_CLUSTER,
    "Unix time the newest etcd snapshot of the cluster stored in the location was written",
);

/// Every metric, in the order the server registers them.
pub const ALL: &[Metric] = &[
    BACKUP_TOTAL,
    BACKUP_ATTEMPT,
    BACKUP_SUCCESS,
    BACKUP_PARTIAL_FAILURE,
    BACKUP_FAILURE,
    BACKUP_VALIDATION_FAILURE,
    BACKUP_DURATION,
    BACKUP_LAST_SUCCESSFUL,
    BACKUP_LAST_STATUS,
    BACKUP_ITEMS,
    BACKUP_ITEMS_ERRORS,
    BACKUP_WARNING,
    BACKUP_TARBALL_SIZE,
    BACKUP_DELETION_SUCCESS,
    BACKUP_DELETION_FAILURE,
    LOCATION_STATUS,
    RESTORE_TOTAL,
    RESTORE_ATTEMPT,
    RESTORE_SUCCESS,
    RESTORE_PARTIAL_FAILURE,
    RESTORE_FAILED,
    RESTORE_VALIDATION_FAILED,
    RESTORE_DURATION,
    RESTORE_ITEMS_PER_SECOND,
    BACKUP_ITEMS_PER_SECOND,
    LEADER,
    DR_RPO,
    DR_CLUSTER_RPO,
    DR_RPO_OBJECTIVE,
    DR_RTO_OBJECTIVE,
    DR_HEALTH,
    DR_CLUSTER_READY,
    DR_REPLICATION_LAG,
    DR_LAST_DRILL_TIMESTAMP,
    DR_LAST_DRILL_SUCCESS,
    DR_LAST_DRILL_RTO,
    DR_LAST_SYNC_TIMESTAMP,
    DR_LAST_SYNC_SUCCESS,
    SCHEDULE_INTERVAL,
    ETCD_SNAPSHOT_LAST,
];

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_under_both_namings() {
        for names in [MetricNames::Velero, MetricNames::Promlint] {
            let set: BTreeSet<_> = ALL.iter().map(|m| m.exposed(names)).collect();
            assert_eq!(set.len(), ALL.len(), "{names:?}");
        }
    }

    #[test]
    fn counters_end_in_total_and_only_counters_do_under_promlint() {
        for m in ALL {
            let n = m.exposed(MetricNames::Promlint);
            assert_eq!(n.ends_with("_total"), m.kind == Counter, "{n}");
            assert!(!n.ends_with("_gauge"), "{n}");
        }
    }

    #[test]
    fn exactly_four_velero_names_are_renamed() {
        let renamed: Vec<_> = ALL.iter().filter_map(|m| m.promlint_name).collect();
        assert_eq!(
            renamed,
            [
                "velero_backups",
                "velero_backup_items",
                "velero_backup_location_status",
                "velero_restores"
            ]
        );
    }

    #[rstest]
    #[case::counter(BACKUP_ATTEMPT, MetricNames::Velero, "velero_backup_attempt")]
    #[case::gauge_keeps_velero_total(BACKUP_TOTAL, MetricNames::Velero, "velero_backup_total")]
    #[case::gauge_renamed(BACKUP_TOTAL, MetricNames::Promlint, "velero_backups")]
    #[case::histogram(
        BACKUP_DURATION,
        MetricNames::Promlint,
        "velero_backup_duration_seconds"
    )]
    fn registered_names(#[case] m: Metric, #[case] names: MetricNames, #[case] want: &str) {
        assert_eq!(m.registered(names), want);
    }
}
