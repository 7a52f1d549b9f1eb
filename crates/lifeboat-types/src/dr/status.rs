//! What `dr status` decides from what it observed (pure): which stored backup a cluster
//! would restore, the RPO now against the plan's, which schedules protect which
//! namespaces (and whether they run often enough for the RPO), whether a cluster is ready
//! to take over, and the run's verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::velero::{Backup, BackupPhase, BackupSpec, ScheduleSpec};
use crate::plan::backup::NamespaceFilter;
use crate::rules::schedule::Cron;

/// Whether a backup spec's namespace filters take in namespace `ns` (Velero's rules: an
/// empty include list is every namespace; excludes win).
pub fn backup_covers(spec: &BackupSpec, ns: &str) -> bool {
    NamespaceFilter::new(&spec.included_namespaces, &spec.excluded_namespaces)
        .map(|f| f.includes(ns))
        .unwrap_or(false)
}

/// The time a stored backup's data is from: its start (objects are read after it), for a
/// backup that completed.
pub fn recovery_point(b: &Backup) -> Option<DateTime<Utc>> {
    let s = b.status.as_ref()?;
    (s.phase == BackupPhase::Completed)
        .then_some(())
        .and(s.start_timestamp.or(s.completion_timestamp).map(|t| t.0))
}

/// The Completed backups whose filters take in every protected namespace, newest
/// recovery point first (then by name): the candidates a failover or drill restores. A
/// candidate is usable only when its contents hold objects of every protected namespace
/// ([`holds_every_namespace`]): an all-namespaces backup of another cluster may hold none.
pub fn covering_newest_first<'a>(backups: &'a [Backup], namespaces: &[String]) -> Vec<&'a Backup> {
    let mut v: Vec<(DateTime<Utc>, &Backup)> = backups
        .iter()
        .filter(|b| namespaces.iter().all(|ns| backup_covers(&b.spec, ns)))
        .filter_map(|b| recovery_point(b).map(|t| (t, b)))
        .collect();
    v.sort_by(|(ta, a), (tb, b)| tb.cmp(ta).then(b.metadata.name.cmp(&a.metadata.name)));
    v.into_iter().map(|(_, b)| b).collect()
}

/// Whether a backup's resource list (ids `ns/name` and cluster-scoped `name`) holds an
/// object of every protected namespace.
pub fn holds_every_namespace<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    namespaces: &[String],
) -> bool {
    let mut missing: std::collections::BTreeSet<&str> =
        namespaces.iter().map(String::as_str).collect();
    for id in ids {
        if let Some((ns, _)) = id.split_once('/') {
            missing.remove(ns);
        }
        if missing.is_empty() {
            return true;
        }
    }
    missing.is_empty()
}

/// How many Completed backups cover every protected namespace.
pub fn covering_count(backups: &[Backup], namespaces: &[String]) -> usize {
    backups
        .iter()
        .filter(|b| recovery_point(b).is_some())
        .filter(|b| namespaces.iter().all(|ns| backup_covers(&b.spec, ns)))
        .count()
}

/// The RPO of a cluster now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Rpo {
    /// The newest usable backup is recent enough.
    Met {
        /// Its name.
        backup: String,
        /// Seconds since its recovery point.
        age_seconds: u64,
    },
    /// It is older than the plan allows.
    Breached {
        /// Its name.
        backup: String,
        /// Seconds since its recovery point.
        age_seconds: u64,
    },
    /// No Completed backup of the protected namespaces can be read.
    NoBackup,
}

impl Rpo {
    /// Whether the objective holds.
    pub fn met(&self) -> bool {
        matches!(self, Rpo::Met { .. })
    }
}

/// The RPO now: the age of the newest usable backup's recovery point against `objective`.
/// A recovery point in the future (clock skew between clusters) counts as age 0.
pub fn rpo_now(now: DateTime<Utc>, newest: Option<&Backup>, objective: Duration) -> Rpo {
    let Some((b, t)) = newest.and_then(|b| recovery_point(b).map(|t| (b, t))) else {
        return Rpo::NoBackup;
    };
    let age = now.signed_duration_since(t).to_std().unwrap_or_default();
    let backup = b.metadata.name.clone();
    let age_seconds = age.as_secs();
    if age <= objective {
        Rpo::Met {
            backup,
            age_seconds,
        }
    } else {
        Rpo::Breached {
            backup,
            age_seconds,
        }
    }
}

/// One schedule as `dr status` sees it.
#[derive(Debug, Clone)]
pub struct ScheduleView<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its spec.
    pub spec: &'a ScheduleSpec,
}

/// How one protected namespace is covered by schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// The namespace.
    pub namespace: String,
    /// Unpaused schedules whose template takes it in, with their longest gap between runs
    /// in seconds (None when the cron expression cannot be read).
    pub schedules: BTreeMap<String, Option<u64>>,
    /// Whether one of them runs at least once per RPO.
    pub within_rpo: bool,
}

/// The longest gap between two runs of `cron` over the next `runs` runs after `from`
/// (a cron like `0 2 * * 1-5` has a longer weekend gap).
pub fn longest_gap(cron: &str, from: DateTime<Utc>, runs: usize) -> Option<Duration> {
    let c = Cron::parse(cron).ok()?;
    let mut prev = c.next_after(from)?;
    let mut longest = Duration::ZERO;
    for _ in 0..runs {
        let next = c.next_after(prev)?;
        longest = longest.max(next.signed_duration_since(prev).to_std().ok()?);
        prev = next;
    }
    Some(longest)
}

/// Which unpaused schedules back up each protected namespace, and whether one runs often
/// enough to keep the RPO (its longest gap between runs at most the RPO).
pub fn coverage(
    now: DateTime<Utc>,
    schedules: &[ScheduleView<'_>],
    namespaces: &[String],
    rpo: Duration,
) -> Vec<Coverage> {
    namespaces
        .iter()
        .map(|ns| {
            let covering: BTreeMap<String, Option<u64>> = schedules
                .iter()
                .filter(|s| !s.spec.paused && backup_covers(&s.spec.template, ns))
                .map(|s| {
                    (
                        s.name.to_owned(),
                        longest_gap(&s.spec.schedule, now, 48).map(|d| d.as_secs()),
                    )
                })
                .collect();
            let within_rpo = covering
                .values()
                .any(|gap| gap.is_some_and(|g| g <= rpo.as_secs()));
            Coverage {
                namespace: ns.clone(),
                schedules: covering,
                within_rpo,
            }
        })
        .collect()
}

/// What was seen of a cluster's readiness to take over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// Why the API server did not answer (None: it did).
    pub api_error: Option<String>,
    /// Nodes Ready / all nodes.
    pub nodes: Option<(usize, usize)>,
    /// Whether lifeboat's CRDs are served.
    pub crds: Option<bool>,
    /// Each location the cluster reads, with why it cannot be read (None: readable).
    pub locations: BTreeMap<String, Option<String>>,
    /// The API types of the backup it would restore that it does not serve and whose
    /// CRD the backup does not hold (`group/Kind`; None: not asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unserved_kinds: Option<Vec<String>>,
}

/// Why a cluster is not ready to take over (empty: ready). Only a cluster that was asked
/// is judged: `nodes`/`crds` of None mean "not asked". lifeboat's server is needed only
/// where the strategy has it work before a failover (`needs_server`: a warm standby
/// restores every backup as it comes); a restore from the CLI needs none.
pub fn not_ready(r: &Readiness, needs_server: bool) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(e) = &r.api_error {
        why.push(format!("API server unreachable: {e}"));
        return why;
    }
    if let Some((0, total)) = r.nodes {
        why.push(format!("no Ready node (of {total})"));
    }
    if needs_server && r.crds == Some(false) {
        why.push("lifeboat is not installed (its CRDs are not served)".into());
    }
    if let Some(kinds) = r.unserved_kinds.as_ref().filter(|k| !k.is_empty()) {
        why.push(format!(
            "it does not serve {} that the backup holds objects of, and the backup holds no CRD for them: install their CRDs (and operators) first",
            kinds.join(", ")
        ));
    }
    for (l, res) in &r.locations {
        if let Some(e) = res {
            why.push(format!("location {l} unreadable: {e}"));
        }
    }
    if !r.locations.is_empty() && r.locations.values().all(Option::is_some) {
        why.push("no location it reads can be read: it has nothing to restore".into());
    }
    why
}

/// The API types (`group/Kind`) of a backup's resource list (keys `group/version/Kind`,
/// `v1/Kind` for the core group) that a cluster does not serve (`served`: its discovered
/// `(group, Kind)` pairs) and that no CustomResourceDefinition in the backup (`crds`:
/// their names, `<plural>.<group>`) defines: a restore there would fail for their
/// objects. Built-in groups are never missing for want of a CRD.
pub fn unserved_kinds<'a>(
    backup_keys: impl IntoIterator<Item = &'a str>,
    crds: &[String],
    served: &std::collections::BTreeSet<(String, String)>,
) -> Vec<String> {
    let mut out: Vec<String> = backup_keys
        .into_iter()
        .filter_map(|key| {
            let mut parts = key.rsplitn(3, '/');
            let kind = parts.next()?;
            let _version = parts.next()?;
            let group = parts.next().unwrap_or("");
            Some((group, kind))
        })
        .filter(|(group, _)| !crate::api::groups::is_builtin(group))
        .filter(|(group, kind)| !served.contains(&((*group).to_owned(), (*kind).to_owned())))
        .filter(|(group, _)| {
            !crds
                .iter()
                .any(|c| c.split_once('.').is_some_and(|(_, g)| g == *group))
        })
        .map(|(group, kind)| format!("{group}/{kind}"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The verdict of `dr status` for one plan, from what was decided per cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// Every standby can take over within the RPO, and the schedules keep it.
    Ok,
    /// It would work today, but something erodes it (a namespace no schedule covers often
    /// enough, fewer backups than the criteria ask, a standby not ready while another is).
    Warning,
    /// The RPO is breached or no standby can take over.
    Critical,
}

/// The plan's health: `Critical` when no standby could take over within the RPO, else
/// `Warning` when any finding erodes it, else `Ok`.
pub fn health(standbys_ready_within_rpo: usize, findings: usize) -> Health {
    if standbys_ready_within_rpo == 0 {
        Health::Critical
    } else if findings > 0 {
        Health::Warning
    } else {
        Health::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::{BackupStatus, ObjectMeta, Time};
    use rstest::rstest;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn backup(name: &str, ns: &[&str], phase: BackupPhase, start: &str) -> Backup {
        Backup {
            kind: "Backup".into(),
            api_version: "velero.io/v1".into(),
            metadata: ObjectMeta {
                name: name.into(),
                ..Default::default()
            },
            spec: BackupSpec {
                included_namespaces: ns.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            status: Some(BackupStatus {
                phase,
                start_timestamp: Some(Time(at(start))),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_newest_completed_backup_of_every_protected_namespace_is_chosen() {
        let backups = [
            backup(
                "old",
                &["shop", "pay"],
                BackupPhase::Completed,
                "2026-01-01T00:00:00Z",
            ),
            backup(
                "shop-only",
                &["shop"],
                BackupPhase::Completed,
                "2026-01-03T00:00:00Z",
            ),
            backup(
                "failed",
                &["shop", "pay"],
                BackupPhase::PartiallyFailed,
                "2026-01-04T00:00:00Z",
            ),
            backup("all", &[], BackupPhase::Completed, "2026-01-02T00:00:00Z"),
            backup(
                "glob",
                &["sh*", "pay"],
                BackupPhase::InProgress,
                "2026-01-05T00:00:00Z",
            ),
        ];
        let ns = ["shop".to_string(), "pay".to_string()];
        let names = |ns: &[String], of: &[Backup]| -> Vec<String> {
            covering_newest_first(of, ns)
                .iter()
                .map(|b| b.metadata.name.clone())
                .collect()
        };
        assert_eq!(names(&ns, &backups), ["all", "old"]);
        assert_eq!(covering_count(&backups, &ns), 2);
        assert_eq!(
            names(&["shop".into()], &backups),
            ["shop-only", "all", "old"]
        );
        assert_eq!(names(&["other".into(), "pay".into()], &backups), ["all"]);
        assert!(names(&["other".into()], &backups[..3]).is_empty());
    }

    #[rstest]
    #[case::all(&["shop/a", "pay/b", "c"], true)]
    #[case::one_missing(&["shop/a", "shop/b", "c"], false)]
    #[case::none(&[], false)]
    fn a_backup_holds_every_protected_namespace(#[case] ids: &[&str], #[case] want: bool) {
        let ns = ["shop".to_string(), "pay".to_string()];
        assert_eq!(holds_every_namespace(ids.iter().copied(), &ns), want);
    }

    #[rstest]
    #[case::fresh("2026-01-01T00:10:00Z", Rpo::Met { backup: "b".into(), age_seconds: 600 })]
    #[case::on_the_limit("2026-01-01T00:15:00Z", Rpo::Met { backup: "b".into(), age_seconds: 900 })]
    #[case::stale("2026-01-01T00:15:01Z", Rpo::Breached { backup: "b".into(), age_seconds: 901 })]
    #[case::skewed_clock("2025-12-31T23:59:00Z", Rpo::Met { backup: "b".into(), age_seconds: 0 })]
    fn rpo_is_the_age_of_the_recovery_point(#[case] now: &str, #[case] want: Rpo) {
        let b = backup(
            "b",
            &["shop"],
            BackupPhase::Completed,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(rpo_now(at(now), Some(&b), Duration::from_secs(900)), want);
    }

    #[test]
    fn no_backup_is_no_rpo() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(rpo_now(now, None, Duration::from_secs(60)), Rpo::NoBackup);
        let b = backup("b", &["shop"], BackupPhase::Failed, "2026-01-01T00:00:00Z");
        assert_eq!(
            rpo_now(now, Some(&b), Duration::from_secs(60)),
            Rpo::NoBackup
        );
    }

    #[rstest]
    #[case::hourly("0 * * * *", 3600)]
    #[case::every("@every 15m", 900)]
    #[case::weekdays("0 2 * * 1-5", 3 * 86400)]
    fn a_schedules_longest_gap(#[case] cron: &str, #[case] secs: u64) {
        let from = at("2026-01-01T00:30:00Z");
        assert_eq!(longest_gap(cron, from, 48), Some(Duration::from_secs(secs)));
    }

    #[test]
    fn coverage_names_the_schedules_of_each_namespace_and_their_pace() {
        let hourly = ScheduleSpec {
            schedule: "0 * * * *".into(),
            template: BackupSpec {
                included_namespaces: vec!["shop".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let daily_all = ScheduleSpec {
            schedule: "0 3 * * *".into(),
            ..Default::default()
        };
        let paused = ScheduleSpec {
            schedule: "*/5 * * * *".into(),
            paused: true,
            ..Default::default()
        };
        let views = [
            ScheduleView {
                name: "hourly",
                spec: &hourly,
            },
            ScheduleView {
                name: "daily",
                spec: &daily_all,
            },
            ScheduleView {
                name: "paused",
                spec: &paused,
            },
        ];
        let c = coverage(
            at("2026-01-01T00:00:00Z"),
            &views,
            &["shop".into(), "pay".into()],
            Duration::from_secs(3600),
        );
        assert_eq!(c[0].namespace, "shop");
        assert_eq!(
            c[0].schedules,
            BTreeMap::from([("daily".into(), Some(86400)), ("hourly".into(), Some(3600))])
        );
        assert!(c[0].within_rpo);
        assert_eq!(c[1].schedules.keys().collect::<Vec<_>>(), ["daily"]);
        assert!(
            !c[1].within_rpo,
            "a daily schedule does not keep an hourly RPO"
        );
    }

    #[rstest]
    #[case::ready(Readiness { api_error: None, nodes: Some((1, 1)), crds: Some(true), locations: BTreeMap::from([("l".into(), None)]), unserved_kinds: Some(vec![]) }, false, vec![])]
    #[case::unserved_kinds(Readiness { api_error: None, nodes: Some((1, 1)), crds: Some(true), unserved_kinds: Some(vec!["example.com/Widget".into()]), ..Default::default() }, false, vec!["it does not serve example.com/Widget that the backup holds objects of, and the backup holds no CRD for them: install their CRDs (and operators) first"])]
    #[case::down(Readiness { api_error: Some("connection refused".into()), ..Default::default() }, false, vec!["API server unreachable: connection refused"])]
    #[case::no_nodes(Readiness { api_error: None, nodes: Some((0, 2)), crds: Some(true), ..Default::default() }, false, vec!["no Ready node (of 2)"])]
    #[case::not_installed(Readiness { api_error: None, nodes: Some((1, 1)), crds: Some(false), ..Default::default() }, true, vec!["lifeboat is not installed (its CRDs are not served)"])]
    #[case::no_server_needed(Readiness { api_error: None, nodes: Some((1, 1)), crds: Some(false), ..Default::default() }, false, vec![])]
    #[case::one_location_of_two(
        Readiness { api_error: None, nodes: None, crds: None, locations: BTreeMap::from([("a".into(), None), ("b".into(), Some("403".into()))]), unserved_kinds: None },
        false,
        vec!["location b unreadable: 403"]
    )]
    #[case::no_location(
        Readiness { api_error: None, nodes: None, crds: None, locations: BTreeMap::from([("b".into(), Some("403".into()))]), unserved_kinds: None },
        false,
        vec!["location b unreadable: 403", "no location it reads can be read: it has nothing to restore"]
    )]
    fn why_a_cluster_cannot_take_over(
        #[case] r: Readiness,
        #[case] needs_server: bool,
        #[case] want: Vec<&str>,
    ) {
        assert_eq!(not_ready(&r, needs_server), want);
    }

    #[rstest]
    #[case(0, 0, Health::Critical)]
    #[case(0, 3, Health::Critical)]
    #[case(1, 1, Health::Warning)]
    #[case(2, 0, Health::Ok)]
    fn plan_health(#[case] ready: usize, #[case] findings: usize, #[case] want: Health) {
        assert_eq!(health(ready, findings), want);
    }

    #[rstest]
    #[case::built_in_types_never(&["v1/ConfigMap", "apps/v1/Deployment", "batch/v1beta1/CronJob"], &[], &[], vec![])]
    #[case::a_custom_type_not_served(&["example.com/v1/Widget", "v1/Secret"], &[], &[], vec!["example.com/Widget"])]
    #[case::served_in_any_version(&["example.com/v1beta1/Widget"], &[], &[("example.com", "Widget")], vec![])]
    #[case::its_crd_in_the_backup(&["example.com/v1/Widget"], &["widgets.example.com"], &[], vec![])]
    #[case::another_groups_crd(&["example.com/v1/Widget"], &["gadgets.example.org"], &[], vec!["example.com/Widget"])]
    #[case::once_each(&["example.com/v1/Widget", "example.com/v2/Widget"], &[], &[], vec!["example.com/Widget"])]
    fn kinds_a_target_cannot_take(
        #[case] keys: &[&str],
        #[case] crds: &[&str],
        #[case] served: &[(&str, &str)],
        #[case] want: Vec<&str>,
    ) {
        let crds: Vec<String> = crds.iter().map(|c| (*c).to_owned()).collect();
        let served = served
            .iter()
            .map(|(g, k)| ((*g).to_owned(), (*k).to_owned()))
            .collect();
        assert_eq!(unserved_kinds(keys.iter().copied(), &crds, &served), want);
    }
}
