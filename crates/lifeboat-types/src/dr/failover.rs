//! A failover's decisions (pure): whether it may start, how the old active cluster's
//! workloads are fenced (scaled to 0, their count kept in an annotation) and how that is
//! undone (rollback and failback), and which schedules fencing pauses.

use serde_json::{Value, json};

use crate::api::velero::ScheduleSpec;
use crate::dr::plan::READ_ORIGINAL_REPLICAS;
use crate::dr::status::backup_covers;

/// Whether a failover may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Go on.
    Go,
    /// Refused, and why (with the way to go on anyway, where there is one).
    Refuse(String),
}

/// What was seen of the active cluster before a failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSeen<'a> {
    /// Its name.
    pub name: &'a str,
    /// Why it cannot serve (empty: it is healthy: API answers, nodes Ready).
    pub not_ready: &'a [String],
}

/// Decides whether a failover from `active` to `to` may start: never to the active
/// cluster itself; not away from a healthy active cluster unless forced (it would cut a
/// working service off).
pub fn may_start(active: &ActiveSeen<'_>, to: &str, force: bool) -> Start {
    if to == active.name {
        return Start::Refuse(format!(
            "cluster {to} is the active cluster already; fail over to a standby (--to)"
        ));
    }
    if active.not_ready.is_empty() && !force {
        return Start::Refuse(format!(
            "the active cluster {} is healthy (its API server answers and its nodes are Ready): a failover would move a working service; pass --force to fail over anyway (a planned switch)",
            active.name
        ));
    }
    Start::Go
}

fn replicas(obj: &Value) -> Option<i64> {
    obj.pointer("/spec/replicas").and_then(Value::as_i64)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// What fencing did to one workload, to undo it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceRecord {
    /// Its replica count before.
    pub count: i64,
    /// The annotation's value before (None: it had none).
    pub previous: Option<String>,
}

/// The merge patch that fences a Deployment or StatefulSet — 0 replicas, its current
/// count written to `annotation_key` — and what to undo. None when it runs no replica
/// (nothing to fence: its annotation, if any, is left as it is).
pub fn fence_patch(obj: &Value, annotation_key: &str) -> Option<(Value, FenceRecord)> {
    let now = replicas(obj).unwrap_or(1);
    if now == 0 {
        return None;
    }
    Some((
        json!({
            "metadata": {"annotations": {annotation_key: now.to_string()}},
            "spec": {"replicas": 0}
        }),
        FenceRecord {
            count: now,
            previous: annotation(obj, annotation_key).map(str::to_owned),
        },
    ))
}

/// The merge patch that undoes a fence (a failover's rollback): the count it had, the
/// annotation as it was. None when the workload runs replicas again (someone scaled it
/// meanwhile: it is left as it is).
pub fn rollback_patch(live: &Value, annotation_key: &str, fenced: &FenceRecord) -> Option<Value> {
    if replicas(live).unwrap_or(1) != 0 {
        return None;
    }
    Some(json!({
        "metadata": {"annotations": {annotation_key: fenced.previous}},
        "spec": {"replicas": fenced.count}
    }))
}

/// The node-selector key that holds a DaemonSet off every node (a fenced cluster, a warm
/// standby): no node carries it, so the DaemonSet runs no pod, and taking it out lets the
/// DaemonSet run where it ran. Its value is the plan's name.
pub const HELD_OFF_NODES: &str = "lifeboat.dev/held-by-plan";

fn node_selector(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    obj.pointer("/spec/template/spec/nodeSelector")
        .and_then(Value::as_object)
}

/// Whether a DaemonSet is held off its nodes.
pub fn daemonset_held(obj: &Value) -> bool {
    node_selector(obj).is_some_and(|s| s.contains_key(HELD_OFF_NODES))
}

/// The merge patch that holds a DaemonSet off every node for `plan` (its own node
/// selector kept beside it). None when it is held already.
pub fn hold_daemonset_patch(obj: &Value, plan: &str) -> Option<Value> {
    (!daemonset_held(obj))
        .then(|| json!({"spec": {"template": {"spec": {"nodeSelector": {HELD_OFF_NODES: plan}}}}}))
}

/// The merge patch that lets a DaemonSet `plan` held run on its nodes again. None when
/// it is not held, or held by another plan.
pub fn release_daemonset_patch(obj: &Value, plan: &str) -> Option<Value> {
    let by = node_selector(obj)
        .and_then(|s| s.get(HELD_OFF_NODES))
        .and_then(Value::as_str);
    (by == Some(plan))
        .then(|| json!({"spec": {"template": {"spec": {"nodeSelector": {HELD_OFF_NODES: null}}}}}))
}

/// The count a fenced or standby workload runs when it serves again: lifeboat's
/// annotation (`annotation_key`), else the annotations the guides' scripts use, else
/// `default`. A count that does not read as a non-negative number is not used.
pub fn original_replicas(obj: &Value, annotation_key: &str, default: i32) -> i64 {
    std::iter::once(annotation_key)
        .chain(READ_ORIGINAL_REPLICAS.iter().copied())
        .filter_map(|k| annotation(obj, k))
        .find_map(|v| v.trim().parse::<i64>().ok().filter(|n| *n >= 0))
        .unwrap_or(i64::from(default))
}

/// The merge patch that lets a fenced (or standby) workload serve again: its original
/// count, lifeboat's annotation removed. None when it runs replicas already (someone
/// scaled it: leave it).
pub fn unfence_patch(obj: &Value, annotation_key: &str, default: i32) -> Option<Value> {
    if replicas(obj).unwrap_or(1) != 0 {
        return None;
    }
    Some(json!({
        "metadata": {"annotations": {annotation_key: null}},
        "spec": {"replicas": original_replicas(obj, annotation_key, default)}
    }))
}

/// Whether fencing pauses a schedule: an unpaused one whose backups take in a protected
/// namespace (the old active must stop writing backups a standby would read as newer).
pub fn pauses(spec: &ScheduleSpec, namespaces: &[String]) -> bool {
    !spec.paused
        && namespaces
            .iter()
            .any(|ns| backup_covers(&spec.template, ns))
}

/// The annotation fencing writes on a Schedule it pauses: the plan's name. Only
/// Schedules that carry it are resumed by a failback or a rollback (one paused by a
/// person stays paused).
pub const PAUSED_BY: &str = "lifeboat.dev/paused-by-dr-plan";

/// The merge patch that pauses a Schedule for `plan`.
pub fn pause_schedule_patch(plan: &str) -> Value {
    json!({"metadata": {"annotations": {PAUSED_BY: plan}}, "spec": {"paused": true}})
}

/// The merge patch that resumes a Schedule fencing paused.
pub fn resume_schedule_patch() -> Value {
    json!({"metadata": {"annotations": {PAUSED_BY: null}}, "spec": {"paused": false}})
}

/// Whether a failback resumes a Schedule (its `metadata.annotations` and spec): paused,
/// by fencing for `plan`.
pub fn resumes(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    spec: &ScheduleSpec,
    plan: &str,
) -> bool {
    spec.paused
        && annotations
            .and_then(|a| a.get(PAUSED_BY))
            .map(String::as_str)
            == Some(plan)
}

/// Decides whether a failback from `from` to `to` may start: the acting cluster must run
/// some of the plan's workloads (`from_running`), and the original must run none
/// (`to_running` names those it runs): restoring the acting cluster's state over a
/// cluster that serves — or from one that does not — would be the wrong way round.
pub fn failback_may_start(
    from: &str,
    from_running: usize,
    to: &str,
    to_running: &[String],
) -> Start {
    if let Some(first) = to_running.first() {
        return Start::Refuse(format!(
            "cluster {to} runs {first}{}: it serves, so it is not the fenced original; fail back from the cluster serving now (--from) to the fenced one (--to)",
            if to_running.len() > 1 {
                format!(" and {} more", to_running.len() - 1)
            } else {
                String::new()
            }
        ));
    }
    if from_running == 0 {
        return Start::Refuse(format!(
            "cluster {from} runs none of the plan's workloads: it does not serve; fail back from the cluster serving now (--from)"
        ));
    }
    Start::Go
}

/// The guides' weighted steps of a failback: the share of traffic (percent) sent to the
/// original cluster at each step, each verified before the next.
pub const FAILBACK_WEIGHTS: &[u8] = &[10, 30, 50, 70, 90, 100];

/// Checks a failback's traffic steps: percentages from 1 to 100, rising, the last 100
/// (every step moves traffic towards the original, and all of it arrives).
pub fn valid_weights(weights: &[u8]) -> Result<(), String> {
    let how = "give rising percentages from 1 to 100 that end at 100, like 10,30,50,70,90,100 (or 100 for one step)";
    if weights.last() != Some(&100) {
        return Err(format!("the traffic steps must end at 100: {how}"));
    }
    if weights.iter().any(|w| *w == 0 || *w > 100) {
        return Err(format!("a traffic step is outside 1..100: {how}"));
    }
    if weights.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("the traffic steps must rise: {how}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::BackupSpec;
    use rstest::rstest;

    #[rstest]
    #[case::down(&["API server unreachable: refused"], "b", false, Start::Go)]
    #[case::healthy_forced(&[], "b", true, Start::Go)]
    #[case::healthy(&[], "b", false, Start::Refuse("the active cluster a is healthy (its API server answers and its nodes are Ready): a failover would move a working service; pass --force to fail over anyway (a planned switch)".into()))]
    #[case::to_itself(&["down"], "a", true, Start::Refuse("cluster a is the active cluster already; fail over to a standby (--to)".into()))]
    fn when_a_failover_may_start(
        #[case] not_ready: &[&str],
        #[case] to: &str,
        #[case] force: bool,
        #[case] want: Start,
    ) {
        let not_ready: Vec<String> = not_ready.iter().map(|s| s.to_string()).collect();
        let seen = ActiveSeen {
            name: "a",
            not_ready: &not_ready,
        };
        assert_eq!(may_start(&seen, to, force), want);
    }

    const KEY: &str = "lifeboat.dev/original-replicas";

    #[rstest]
    #[case::three(json!({"spec": {"replicas": 3}}), Some((json!({"metadata": {"annotations": {KEY: "3"}}, "spec": {"replicas": 0}}), 3, None)))]
    #[case::unset_means_one(json!({"spec": {}}), Some((json!({"metadata": {"annotations": {KEY: "1"}}, "spec": {"replicas": 0}}), 1, None)))]
    #[case::already_zero(json!({"metadata": {"annotations": {KEY: "5"}}, "spec": {"replicas": 0}}), None)]
    #[case::stale_annotation_is_replaced_and_remembered(
        json!({"metadata": {"annotations": {KEY: "5"}}, "spec": {"replicas": 2}}),
        Some((json!({"metadata": {"annotations": {KEY: "2"}}, "spec": {"replicas": 0}}), 2, Some("5")))
    )]
    fn fencing(#[case] obj: Value, #[case] want: Option<(Value, i64, Option<&str>)>) {
        let got = fence_patch(&obj, KEY);
        assert_eq!(
            got.map(|(p, r)| (p, r.count, r.previous)),
            want.map(|(p, c, prev)| (p, c, prev.map(str::to_owned)))
        );
    }

    #[rstest]
    #[case::back_to_its_count(json!({"spec": {"replicas": 0}}), None, Some(json!({"metadata": {"annotations": {KEY: null}}, "spec": {"replicas": 2}})))]
    #[case::annotation_as_it_was(json!({"spec": {"replicas": 0}}), Some("5"), Some(json!({"metadata": {"annotations": {KEY: "5"}}, "spec": {"replicas": 2}})))]
    #[case::scaled_meanwhile(json!({"spec": {"replicas": 4}}), None, None)]
    fn rolling_a_fence_back(
        #[case] live: Value,
        #[case] previous: Option<&str>,
        #[case] want: Option<Value>,
    ) {
        let fenced = FenceRecord {
            count: 2,
            previous: previous.map(str::to_owned),
        };
        assert_eq!(rollback_patch(&live, KEY, &fenced), want);
    }

    #[rstest]
    #[case::ours(json!({"metadata": {"annotations": {KEY: "3"}}, "spec": {"replicas": 0}}), Some(3))]
    #[case::the_guides(json!({"metadata": {"annotations": {"dr-original-replicas": "4"}}, "spec": {"replicas": 0}}), Some(4))]
    #[case::ours_first(json!({"metadata": {"annotations": {KEY: "2", "dr-original-replicas": "4"}}, "spec": {"replicas": 0}}), Some(2))]
    #[case::garbage_then_default(json!({"metadata": {"annotations": {KEY: "-1"}}, "spec": {"replicas": 0}}), Some(1))]
    #[case::none_then_default(json!({"spec": {"replicas": 0}}), Some(1))]
    #[case::scaled_by_someone(json!({"metadata": {"annotations": {KEY: "3"}}, "spec": {"replicas": 2}}), None)]
    fn unfencing(#[case] obj: Value, #[case] want: Option<i64>) {
        let patch = unfence_patch(&obj, KEY, 1);
        assert_eq!(
            patch
                .as_ref()
                .map(|p| p["spec"]["replicas"].as_i64().unwrap()),
            want
        );
        if let Some(p) = patch {
            assert_eq!(p["metadata"]["annotations"][KEY], Value::Null);
        }
    }

    #[test]
    fn fencing_pauses_the_schedules_of_protected_namespaces() {
        let ns = ["shop".to_string()];
        let of = |included: &[&str], paused: bool| ScheduleSpec {
            schedule: "@every 1h".into(),
            paused,
            template: BackupSpec {
                included_namespaces: included.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(pauses(&of(&["shop"], false), &ns));
        assert!(pauses(&of(&[], false), &ns), "an all-namespaces schedule");
        assert!(!pauses(&of(&["other"], false), &ns));
        assert!(
            !pauses(&of(&["shop"], true), &ns),
            "paused already: not ours to unpause"
        );
    }

    #[rstest]
    #[case::paused_by_this_plan(true, Some("shop"), true)]
    #[case::paused_by_a_person(true, None, false)]
    #[case::paused_for_another_plan(true, Some("other"), false)]
    #[case::running(false, Some("shop"), false)]
    fn a_failback_resumes_only_what_fencing_paused(
        #[case] paused: bool,
        #[case] by: Option<&str>,
        #[case] want: bool,
    ) {
        let spec = ScheduleSpec {
            schedule: "@every 1h".into(),
            paused,
            ..Default::default()
        };
        let ann: Option<std::collections::BTreeMap<String, String>> =
            by.map(|p| [(PAUSED_BY.to_owned(), p.to_owned())].into());
        assert_eq!(resumes(ann.as_ref(), &spec, "shop"), want);
    }

    #[rstest]
    #[case::fenced_original(3, &[], None)]
    #[case::original_serves(3, &["Deployment shop/web (2 replicas)"], Some("cluster east runs Deployment shop/web (2 replicas): it serves"))]
    #[case::acting_does_not_serve(0, &[], Some("cluster west runs none of the plan's workloads"))]
    fn when_a_failback_may_start(
        #[case] from_running: usize,
        #[case] to_running: &[&str],
        #[case] refused: Option<&str>,
    ) {
        let to_running: Vec<String> = to_running.iter().map(|s| s.to_string()).collect();
        match (
            failback_may_start("west", from_running, "east", &to_running),
            refused,
        ) {
            (Start::Go, None) => {}
            (Start::Refuse(why), Some(want)) => assert!(why.contains(want), "{why}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[rstest]
    #[case::the_guides(FAILBACK_WEIGHTS, None)]
    #[case::one_step(&[100], None)]
    #[case::empty(&[], Some("must end at 100"))]
    #[case::stops_short(&[10, 50], Some("must end at 100"))]
    #[case::zero(&[0, 100], Some("outside 1..100"))]
    #[case::over(&[50, 150, 100], Some("outside 1..100"))]
    #[case::falls(&[50, 30, 100], Some("must rise"))]
    #[case::repeats(&[50, 50, 100], Some("must rise"))]
    fn failback_traffic_steps(#[case] weights: &[u8], #[case] err: Option<&str>) {
        match (valid_weights(weights), err) {
            (Ok(()), None) => {}
            (Err(e), Some(want)) => assert!(e.contains(want), "{e}"),
            (got, want) => panic!("{weights:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn pausing_names_the_plan_and_resuming_removes_it() {
        assert_eq!(
            pause_schedule_patch("shop"),
            json!({"metadata": {"annotations": {PAUSED_BY: "shop"}}, "spec": {"paused": true}})
        );
        assert_eq!(
            resume_schedule_patch()["metadata"]["annotations"][PAUSED_BY],
            Value::Null
        );
        assert_eq!(resume_schedule_patch()["spec"]["paused"], false);
    }

    #[rstest::rstest]
    #[case::free(json!({"spec": {"template": {"spec": {}}}}), false)]
    #[case::own_selector(json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}}), false)]
    #[case::held(json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd", "lifeboat.dev/held-by-plan": "shop"}}}}}), true)]
    fn a_daemonset_is_held_off_its_nodes_and_released(#[case] ds: Value, #[case] held: bool) {
        assert_eq!(daemonset_held(&ds), held);
        assert_eq!(hold_daemonset_patch(&ds, "shop").is_none(), held);
        assert_eq!(release_daemonset_patch(&ds, "shop").is_some(), held);
        assert!(release_daemonset_patch(&ds, "another-plan").is_none());
        if let Some(p) = hold_daemonset_patch(&ds, "shop") {
            // A merge patch adds the key beside the DaemonSet's own selector.
            assert_eq!(
                p,
                json!({"spec": {"template": {"spec": {"nodeSelector": {HELD_OFF_NODES: "shop"}}}}})
            );
        }
        if let Some(p) = release_daemonset_patch(&ds, "shop") {
            assert_eq!(
                p,
                json!({"spec": {"template": {"spec": {"nodeSelector": {HELD_OFF_NODES: null}}}}})
            );
        }
    }
}
