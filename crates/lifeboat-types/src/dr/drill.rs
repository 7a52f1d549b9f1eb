//! A drill's rules (pure): the scratch namespaces it restores into, and its verdict
//! against the plan's objectives and success criteria from what it measured.

use std::time::Duration;

use serde::Serialize;

use crate::GoDuration;
use crate::dr::plan::ResolvedCriteria;

/// The mapped name of namespace `ns` for a scratch restore of `kind` (`drill`, `verify`)
/// with id `id`: `<ns>-<kind>-<id>`, the namespace part shortened to keep the name within
/// 63 characters (and never ending in `-`).
pub fn scratch_namespace(ns: &str, kind: &str, id: &str) -> String {
    let suffix = format!("-{kind}-{id}");
    let keep = 63usize.saturating_sub(suffix.len()).min(ns.len());
    format!("{}{suffix}", ns[..keep].trim_end_matches('-'))
}

/// Checks a run id (`--id` of a drill or failover): it goes into namespace, restore and
/// report file names, so 1 to 16 lowercase letters, digits and `-`, not first or last.
pub fn valid_run_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 16
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--id {id:?}: use 1 to 16 lowercase letters, digits and '-' (not first or last); it goes into namespace, restore and file names"
        ))
    }
}

/// What a drill measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// The restore ended Completed.
    pub restore_completed: bool,
    /// The restore's phase and counts, for the report.
    pub restore_detail: String,
    /// From the drill's start to every workload available and every check passed: the RTO
    /// a failover from this backup would take. None when it never got there.
    pub rto: Option<Duration>,
    /// The recovery point's age at the drill's start.
    pub rpo: Option<Duration>,
    /// Objects of the protected namespaces in the backup.
    pub objects_in_backup: usize,
    /// Of those, the ones the restore was to create (Velero's rules never restore some:
    /// pods a controller owns, events, ...).
    pub objects_planned: usize,
    /// Of those, restored.
    pub objects_restored: usize,
    /// Workloads: Ok(count available) or why not all.
    pub workloads: Result<usize, String>,
    /// Each verification command: its name and Ok, or how it failed.
    pub checks: Vec<(String, Result<(), String>)>,
    /// Completed backups of the protected namespaces in the location.
    pub backups: usize,
    /// Whether everything the drill made is gone again (else what is left).
    pub cleanup: Result<(), String>,
}

/// One criterion of a drill's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Criterion {
    /// What is judged.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// The evidence.
    pub detail: String,
    /// Whether the plan's success criteria count it (else it is reported only).
    pub required: bool,
}

fn secs(d: Duration) -> String {
    GoDuration(Duration::from_secs(d.as_secs())).to_string()
}

/// The drill's criteria, in the report's order. The drill passes when every required
/// one is ok.
pub fn verdict(rpo: Duration, rto: Duration, c: &ResolvedCriteria, m: &Measured) -> Vec<Criterion> {
    let mut out = Vec::new();
    let mut push = |name: &str, ok: bool, detail: String, required: bool| {
        out.push(Criterion {
            name: name.into(),
            ok,
            detail,
            required,
        })
    };
    push(
        "restore",
        m.restore_completed,
        m.restore_detail.clone(),
        true,
    );
    push(
        "workloads available",
        m.workloads.is_ok(),
        match &m.workloads {
            Ok(0) => "no Deployment, StatefulSet or DaemonSet in the backup".into(),
            Ok(n) => format!("{n} available"),
            Err(e) => e.clone(),
        },
        true,
    );
    for (name, r) in &m.checks {
        push(
            &format!("check {name}"),
            r.is_ok(),
            match r {
                Ok(()) => "passed".into(),
                Err(e) => e.clone(),
            },
            true,
        );
    }
    push(
        "objects",
        m.objects_restored == m.objects_planned && m.objects_planned > 0,
        format!(
            "{} of {} planned objects restored ({} objects of the protected namespaces in the backup; the others are never restored: pods of controllers, events, ...)",
            m.objects_restored, m.objects_planned, m.objects_in_backup
        ),
        c.all_objects_restored,
    );
    push(
        "RTO",
        m.rto.is_some_and(|t| t <= rto),
        match m.rto {
            Some(t) => format!("{} (objective {})", secs(t), secs(rto)),
            None => format!("not reached (objective {})", secs(rto)),
        },
        c.rto_met,
    );
    push(
        "RPO",
        m.rpo.is_some_and(|t| t <= rpo),
        match m.rpo {
            Some(t) => format!(
                "backup {} old at the start (objective {})",
                secs(t),
                secs(rpo)
            ),
            None => "no recovery point".into(),
        },
        c.rpo_met,
    );
    push(
        "backups kept",
        m.backups >= c.min_backups as usize,
        format!(
            "{} Completed backups of the protected namespaces (at least {})",
            m.backups, c.min_backups
        ),
        true,
    );
    push(
        "cleanup",
        m.cleanup.is_ok(),
        match &m.cleanup {
            Ok(()) => "everything the drill made is deleted".into(),
            Err(e) => e.clone(),
        },
        true,
    );
    out
}

/// Whether a drill with these criteria passed.
pub fn passed(criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| c.ok || !c.required)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("shop", "drill", "ab12", "shop-drill-ab12")]
    #[case("shop", "verify", "ab12", "shop-verify-ab12")]
    fn scratch_names(#[case] ns: &str, #[case] kind: &str, #[case] id: &str, #[case] want: &str) {
        assert_eq!(scratch_namespace(ns, kind, id), want);
    }

    #[rstest]
    #[case("t1", true)]
    #[case("19c2f4a7", true)]
    #[case("a-b", true)]
    #[case("", false)]
    #[case("../x", false)]
    #[case("T1", false)]
    #[case("-a", false)]
    #[case("a-", false)]
    #[case("a/b", false)]
    #[case("abcdefghijklmnopq", false)]
    fn run_ids(#[case] id: &str, #[case] ok: bool) {
        assert_eq!(valid_run_id(id).is_ok(), ok, "{id:?}");
    }

    #[test]
    fn scratch_names_fit_the_limit_and_never_end_in_a_dash() {
        let long = "n".repeat(70);
        let v = scratch_namespace(&long, "drill", "ab12");
        assert_eq!(v.len(), 63);
        assert!(v.ends_with("-drill-ab12"));
        let dashed = format!("{}-x", "a".repeat(50));
        let v = scratch_namespace(&dashed, "drill", "0123456789");
        assert!(!v.contains("--"), "{v}");
    }

    fn good() -> Measured {
        Measured {
            restore_completed: true,
            restore_detail: "Completed: 12 objects".into(),
            rto: Some(Duration::from_secs(40)),
            rpo: Some(Duration::from_secs(120)),
            objects_in_backup: 14,
            objects_planned: 12,
            objects_restored: 12,
            workloads: Ok(2),
            checks: vec![("smoke".into(), Ok(()))],
            backups: 3,
            cleanup: Ok(()),
        }
    }

    const ALL: ResolvedCriteria = ResolvedCriteria {
        rto_met: true,
        rpo_met: true,
        all_objects_restored: true,
        min_backups: 1,
    };

    fn failed(m: &Measured, c: &ResolvedCriteria) -> Vec<String> {
        verdict(Duration::from_secs(900), Duration::from_secs(60), c, m)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}{}", c.name, if c.required { "" } else { " (reported)" }))
            .collect()
    }

    #[rstest]
    #[case::all_good(good(), ALL, vec![], true)]
    #[case::slow(Measured { rto: Some(Duration::from_secs(61)), ..good() }, ALL, vec!["RTO"], false)]
    #[case::slow_but_rto_not_required(
        Measured { rto: Some(Duration::from_secs(61)), ..good() },
        ResolvedCriteria { rto_met: false, ..ALL },
        vec!["RTO (reported)"], true
    )]
    #[case::never_ready(
        Measured { rto: None, workloads: Err("web: 0/1 available".into()), ..good() },
        ALL, vec!["workloads available", "RTO"], false
    )]
    #[case::stale_backup(Measured { rpo: Some(Duration::from_secs(901)), ..good() }, ALL, vec!["RPO"], false)]
    #[case::lost_objects(Measured { objects_restored: 11, ..good() }, ALL, vec!["objects"], false)]
    #[case::nothing_to_restore(Measured { objects_planned: 0, objects_restored: 0, ..good() }, ALL, vec!["objects"], false)]
    #[case::failed_check(Measured { checks: vec![("smoke".into(), Err("exit 1".into()))], ..good() }, ALL, vec!["check smoke"], false)]
    #[case::too_few_backups(good(), ResolvedCriteria { min_backups: 4, ..ALL }, vec!["backups kept"], false)]
    #[case::left_something(Measured { cleanup: Err("shop-drill-x: 403".into()), ..good() }, ALL, vec!["cleanup"], false)]
    fn a_drills_verdict(
        #[case] m: Measured,
        #[case] c: ResolvedCriteria,
        #[case] want_failed: Vec<&str>,
        #[case] pass: bool,
    ) {
        assert_eq!(failed(&m, &c), want_failed);
        assert_eq!(
            passed(&verdict(
                Duration::from_secs(900),
                Duration::from_secs(60),
                &c,
                &m
            )),
            pass
        );
    }
}
