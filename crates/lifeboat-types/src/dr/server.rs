//! The `DRPlan` resource as the lifeboat server keeps it: its status (what `dr status`
//! saw last, the last drill, each standby's last sync) and when the server drills next.
//!
//! The server reconciles each plan every `--dr-frequency`: it writes the plan's status
//! and the `lifeboat_dr_*` metrics, syncs a warm standby, and runs a drill when
//! [`drill_due`] says so. A drill is recorded as started before it runs, so a server
//! that stops mid-drill does not drill twice in one period.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::velero::Time;
use crate::rules::schedule::Cron;

/// `status` of a `DRPlan`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrPlanStatus {
    /// `Ready` (the plan is valid and watched) or `FailedValidation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why the plan is not valid, each naming its field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
    /// When the status below was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
    /// The plan's `metadata.generation` the status is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `ok`, `warning` or `critical` (as `dr status` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The RPO a failover would achieve now, in seconds: the smallest of the standbys'
    /// (None: no standby reads a backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<u64>,
    /// What erodes the plan, each a sentence naming the cluster or namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Each cluster as last seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterSeen>,
    /// The last drill the server ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<LastDrill>,
    /// Each warm standby's last sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_syncs: Vec<LastSync>,
    /// The last `dr failover` of the plan (written by the CLI that ran it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<LastRun>,
    /// The last `dr failback` of the plan (written by the CLI that ran it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failback: Option<LastRun>,
    /// What the server has notified of, so that each run and each change of the RPO is
    /// posted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<Notified>,
}

/// What the server has notified the configured receivers of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notified {
    /// The id of the last failover notified of.
    #[serde(default)]
    pub failover: Option<String>,
    /// The id of the last failback notified of.
    #[serde(default)]
    pub failback: Option<String>,
    /// Whether the RPO was breached at the last notice.
    #[serde(default)]
    pub rpo_breached: Option<bool>,
    /// Since when the RPO has been seen breached without a break (a breach is notified
    /// once it held `--dr-rpo-breach-for`).
    #[serde(default)]
    pub breach_seen: Option<Time>,
}

/// A failover or failback as the plan's status keeps it (the whole report is stored in
/// the location, at `report`). Options are written as `null` when unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    /// Its id.
    pub id: String,
    /// When it started.
    pub started: Time,
    /// How it ended (`succeeded`, `rolledBack`, `failed`, as its report says).
    pub outcome: String,
    /// The cluster it moved away from.
    pub from: String,
    /// The cluster it moved to.
    pub to: String,
    /// The RTO achieved, in seconds.
    #[serde(default)]
    pub rto_seconds: Option<f64>,
    /// The data lost (its start minus the backup's recovery point), in seconds.
    #[serde(default)]
    pub rpo_seconds: Option<u64>,
    /// Where its report is stored.
    #[serde(default)]
    pub report: Option<String>,
}

/// One cluster of a plan as the server last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSeen {
    /// The plan's name for it.
    pub name: String,
    /// Whether it is the active cluster.
    #[serde(default)]
    pub active: bool,
    /// Whether it could take over now.
    #[serde(default)]
    pub ready: bool,
    /// Why not, when it could not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// The backup a failover to it would restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// That backup's age, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<u64>,
    /// How far its newest backup is behind the newest any cluster sees, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// Images the protected workloads run that none of its Ready nodes holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_images: Vec<String>,
}

/// A drill the server ran (or runs: `outcome` is `Running`). Its options are written as
/// `null` when unset, so that a merge patch clears what an earlier drill wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDrill {
    /// Its id (in its scratch namespaces' names).
    pub id: String,
    /// The cluster drilled on.
    pub cluster: String,
    /// When it started.
    pub started: Time,
    /// `Running`, `Passed`, `Failed` (a criterion not met) or `Error` (it could not run).
    pub outcome: String,
    /// The RTO it measured, in seconds.
    #[serde(default)]
    pub rto_seconds: Option<f64>,
    /// What failed, when it did.
    #[serde(default)]
    pub message: Option<String>,
    /// Where its report is stored.
    #[serde(default)]
    pub report: Option<String>,
}

/// A warm standby's last sync (options written as `null` when unset, as [`LastDrill`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastSync {
    /// The standby.
    pub cluster: String,
    /// When it ended.
    pub at: Time,
    /// `Synced`, `UpToDate` or `Failed`.
    pub outcome: String,
    /// The backup it holds (or was to hold).
    #[serde(default)]
    pub backup: Option<String>,
    /// What failed, when it did.
    #[serde(default)]
    pub message: Option<String>,
}

/// The RPO a failover would achieve now: the smallest backup age among the standbys
/// (the active cluster does not count: it is what fails). None when no standby reads a
/// backup.
pub fn plan_rpo(clusters: &[ClusterSeen]) -> Option<u64> {
    clusters
        .iter()
        .filter(|c| !c.active)
        .filter_map(|c| c.rpo_seconds)
        .min()
}

/// `lifeboat_dr_health`'s value: 2 ok, 1 warning, 0 critical.
pub fn health_gauge(h: super::status::Health) -> f64 {
    use super::status::Health;
    match h {
        Health::Ok => 2.0,
        Health::Warning => 1.0,
        Health::Critical => 0.0,
    }
}

/// Whether the server looks at a plan now (`None`) or at the time returned: at once when
/// its spec changed since the status was written (`generation` differs from the status'
/// `observedGeneration`) or it has no status, else when `every` has passed since the last
/// look or a drill falls due, whichever comes first. The server's own status writes wake
/// it too; this keeps them from making it look again.
pub fn next_look(
    status: Option<&DrPlanStatus>,
    generation: Option<i64>,
    every: std::time::Duration,
    drill: DrillDue,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let seen = status.filter(|s| s.observed_generation == generation)?;
    let at = seen.observed_at?.0;
    let by_period = chrono::Duration::from_std(every)
        .ok()
        .and_then(|d| at.checked_add_signed(d));
    let next = match (by_period, drill) {
        (_, DrillDue::Now) => now,
        (Some(p), DrillDue::At(t)) => p.min(t),
        (None, DrillDue::At(t)) => t,
        (Some(p), DrillDue::Never) => p,
        (None, DrillDue::Never) => return None,
    };
    (next > now).then_some(next)
}

/// The flag that lets the server run a plan's local commands.
pub const ALLOW_COMMANDS_FLAG: &str = "--dr-allow-local-commands";

/// Why the server does not drill `spec` (None: it may): its verification commands run
/// as processes of the server, with the server's credentials and every kubeconfig its
/// pod mounts, so whoever may create a DRPlan could run anything there. They run only
/// when the server was started with [`ALLOW_COMMANDS_FLAG`].
pub fn drill_refused(spec: &super::plan::DrPlanSpec, allow_commands: bool) -> Option<String> {
    let n = spec.verification.commands.len();
    (n > 0 && !allow_commands).then(|| {
        format!(
            "the plan's {n} verification command(s) would run inside the lifeboat server, with its credentials; the server runs them only when started with {ALLOW_COMMANDS_FLAG} (grant create on drplans only to whom you would give that), or drill with `lifeboat dr drill`"
        )
    })
}

/// When the server drills next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillDue {
    /// Now: the calendar's time since the last drill has come.
    Now,
    /// At this time.
    At(DateTime<Utc>),
    /// Never (the calendar has no next time).
    Never,
}

/// Whether a drill is due: the calendar's first time after the last drill's start (or,
/// before the first drill, after the plan was made) has come. A server that was down
/// through several due times drills once, not once per missed time.
pub fn drill_due(
    cal: &Cron,
    last: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DrillDue {
    match cal.next_after(last.unwrap_or(created)) {
        Some(t) if t <= now => DrillDue::Now,
        Some(t) => DrillDue::At(t),
        None => DrillDue::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[rstest]
    #[case::first_after_creation(
        "@every 1h",
        None,
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:00:00Z",
        DrillDue::Now
    )]
    #[case::not_yet(
        "@every 1h",
        None,
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:30:00Z",
        DrillDue::At(at("2026-01-01T01:00:00Z"))
    )]
    #[case::counts_from_the_last_drill(
        "@every 1h",
        Some("2026-01-01T05:00:00Z"),
        "2026-01-01T00:00:00Z",
        "2026-01-01T05:30:00Z",
        DrillDue::At(at("2026-01-01T06:00:00Z"))
    )]
    #[case::missed_many_drills_once(
        "@every 1h",
        Some("2026-01-01T05:00:00Z"),
        "2026-01-01T00:00:00Z",
        "2026-01-03T00:00:00Z",
        DrillDue::Now
    )]
    #[case::quarterly(
        "0 3 1 1,4,7,10 *",
        Some("2026-01-01T03:00:00Z"),
        "2025-12-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
        DrillDue::At(at("2026-04-01T03:00:00Z"))
    )]
    fn when_the_server_drills(
        #[case] cal: &str,
        #[case] last: Option<&str>,
        #[case] created: &str,
        #[case] now: &str,
        #[case] want: DrillDue,
    ) {
        let cal = Cron::parse(cal).unwrap();
        assert_eq!(drill_due(&cal, last.map(at), at(created), at(now)), want);
    }

    #[rstest]
    #[case::no_commands(0, false, false)]
    #[case::commands_not_allowed(1, false, true)]
    #[case::commands_allowed(2, true, false)]
    fn the_server_runs_a_plans_commands_only_when_allowed(
        #[case] commands: usize,
        #[case] allow: bool,
        #[case] refused: bool,
    ) {
        let mut spec: crate::dr::plan::DrPlanSpec = serde_json::from_value(serde_json::json!({
            "clusters": [], "namespaces": []
        }))
        .unwrap();
        spec.verification.commands = vec![vec!["true".to_owned()]; commands];
        let why = drill_refused(&spec, allow);
        assert_eq!(why.is_some(), refused);
        if let Some(w) = why {
            assert!(w.contains(ALLOW_COMMANDS_FLAG), "{w}");
        }
    }

    fn looked(at_: &str, generation: i64) -> DrPlanStatus {
        DrPlanStatus {
            observed_at: Some(Time(at(at_))),
            observed_generation: Some(generation),
            ..Default::default()
        }
    }

    const MIN: std::time::Duration = std::time::Duration::from_secs(60);

    #[rstest]
    #[case::never_looked(None, 1, DrillDue::Never, "2026-01-01T00:00:10Z", None)]
    #[case::spec_changed(
        Some(looked("2026-01-01T00:00:00Z", 1)),
        2,
        DrillDue::Never,
        "2026-01-01T00:00:10Z",
        None
    )]
    #[case::own_status_write(
        Some(looked("2026-01-01T00:00:00Z", 1)),
        1,
        DrillDue::Never,
        "2026-01-01T00:00:10Z",
        Some("2026-01-01T00:01:00Z")
    )]
    #[case::period_passed(
        Some(looked("2026-01-01T00:00:00Z", 1)),
        1,
        DrillDue::Never,
        "2026-01-01T00:01:00Z",
        None
    )]
    #[case::drill_first(
        Some(looked("2026-01-01T00:00:00Z", 1)),
        1,
        DrillDue::At(at("2026-01-01T00:00:30Z")),
        "2026-01-01T00:00:10Z",
        Some("2026-01-01T00:00:30Z")
    )]
    #[case::drill_due(
        Some(looked("2026-01-01T00:00:00Z", 1)),
        1,
        DrillDue::Now,
        "2026-01-01T00:00:10Z",
        None
    )]
    fn when_the_server_looks(
        #[case] status: Option<DrPlanStatus>,
        #[case] generation: i64,
        #[case] drill: DrillDue,
        #[case] now: &str,
        #[case] want: Option<&str>,
    ) {
        assert_eq!(
            next_look(status.as_ref(), Some(generation), MIN, drill, at(now)),
            want.map(at)
        );
    }

    fn seen(name: &str, active: bool, rpo: Option<u64>) -> ClusterSeen {
        ClusterSeen {
            name: name.into(),
            active,
            rpo_seconds: rpo,
            ..Default::default()
        }
    }

    #[rstest]
    #[case::best_standby(vec![seen("a", true, Some(1)), seen("b", false, Some(90)), seen("c", false, Some(30))], Some(30))]
    #[case::active_does_not_count(vec![seen("a", true, Some(1)), seen("b", false, None)], None)]
    #[case::no_standby(vec![seen("a", true, Some(1))], None)]
    fn a_plans_rpo_is_its_best_standbys(
        #[case] clusters: Vec<ClusterSeen>,
        #[case] want: Option<u64>,
    ) {
        assert_eq!(plan_rpo(&clusters), want);
    }

    #[test]
    fn status_round_trips_through_json() {
        let s = DrPlanStatus {
            phase: Some("Ready".into()),
            health: Some("ok".into()),
            rpo_seconds: Some(42),
            clusters: vec![ClusterSeen {
                name: "dr".into(),
                ready: true,
                backup: Some("b1".into()),
                rpo_seconds: Some(42),
                ..Default::default()
            }],
            last_drill: Some(LastDrill {
                id: "d1".into(),
                cluster: "dr".into(),
                started: Time(at("2026-01-01T00:00:00Z")),
                outcome: "Passed".into(),
                rto_seconds: Some(12.5),
                message: None,
                report: None,
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["lastDrill"]["rtoSeconds"], 12.5);
        assert_eq!(v["clusters"][0]["rpoSeconds"], 42);
        let back: DrPlanStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
