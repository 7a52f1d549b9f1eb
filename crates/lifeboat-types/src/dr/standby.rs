//! A warm standby's decisions (pure): how a restored object is held on the standby —
//! labelled as the plan's, Deployments and StatefulSets at 0 replicas with their count
//! in the plan's annotation, DaemonSets held off every node, CronJobs suspended — what a sync leaves out (the objects a
//! controller makes from others, and Jobs, which would run), which of the standby's
//! objects a sync deletes (the plan's own that the newest backup no longer holds: never
//! another object), and how a promotion releases CronJobs.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api::velero::BackupSpec;

/// The label every object a warm-standby sync restores carries: the plan's name. A sync
/// deletes only objects that carry it; a failover promotes only namespaces that do.
pub const STANDBY_OF: &str = "lifeboat.dev/standby-of";

/// The annotation a promotion writes on each protected namespace (its time): the copy
/// serves now, and a sync must not hold it again.
pub const PROMOTED: &str = "lifeboat.dev/promoted";

/// What a sync never deletes, even when the backup dropped it: claims hold data.
pub const NEVER_PRUNED: &[&str] = &["persistentvolumeclaims"];

/// The annotation a held CronJob keeps its `spec.suspend` in (`"false"` or `"true"`).
pub const ORIGINAL_SUSPEND: &str = "lifeboat.dev/original-suspend";

/// What a standby sync does not restore: pods and ReplicaSets (their Deployments and
/// StatefulSets make them once promoted) and Jobs (they would run on the standby).
pub const LEFT_OUT: &[&str] = &["pods", "replicasets.apps", "jobs.batch"];

/// Holds a restored object (`gr` its group-resource, `deployments.apps`) on the standby
/// of `plan`: labelled, scaled to 0 with its count in `annotation_key` (a count the
/// backup kept there already — a fenced primary's — is kept), or suspended.
pub fn hold(obj: &mut Value, gr: &str, annotation_key: &str, plan: &str) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(STANDBY_OF.into(), json!(plan));
        }
    }
    match gr {
        "deployments.apps" | "statefulsets.apps" => {
            let count = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            // A count the backup kept already (a fenced primary's) stays; otherwise the
            // count it ran, 0 included (a workload kept at 0 stays at 0 when promoted).
            let kept = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(annotation_key))
                .is_some();
            if count != 0 || !kept {
                set_annotation(obj, annotation_key, &count.to_string());
            }
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(0));
            }
        }
        "daemonsets.apps" => {
            if let Some(patch) = crate::dr::failover::hold_daemonset_patch(obj, plan) {
                merge(obj, &patch);
            }
        }
        "cronjobs.batch" => {
            let suspended = obj
                .pointer("/spec/suspend")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !suspended {
                set_annotation(obj, ORIGINAL_SUSPEND, "false");
            }
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("suspend".into(), json!(true));
            }
        }
        _ => {}
    }
}

/// Applies merge patch `patch` to `obj` (RFC 7386: objects merged, `null` removes, any
/// other value replaces).
fn merge(obj: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *obj = patch.clone();
        return;
    };
    if !obj.is_object() {
        *obj = json!({});
    }
    if let Some(o) = obj.as_object_mut() {
        for (k, v) in p {
            if v.is_null() {
                o.remove(k);
            } else {
                merge(o.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let a = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = a.as_object_mut() {
            a.insert(key.into(), json!(value));
        }
    }
}

/// The merge patch that releases a held CronJob on promotion: its `suspend` as it was,
/// the annotation removed. None when it was not held by a sync.
pub fn release_cronjob_patch(obj: &Value) -> Option<Value> {
    let was = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ORIGINAL_SUSPEND))
        .and_then(Value::as_str)?;
    Some(json!({
        "metadata": {"annotations": {ORIGINAL_SUSPEND: null}},
        "spec": {"suspend": was == "true"}
    }))
}

/// One object on the standby: group-resource, namespace, name.
pub type ObjectId = (String, String, String);

/// Whether a sync may prune against a backup of `spec`: only when the backup takes every
/// object of its namespaces (no resource filter, no label selector). Err says why not:
/// an object a narrower backup leaves out is not gone from the primary.
pub fn prunes_against(spec: &BackupSpec) -> Result<(), String> {
    let all = |l: &[String]| l.is_empty() || l.iter().all(|r| r == "*");
    if !all(&spec.included_resources) || !all(&spec.included_namespace_scoped_resources) {
        return Err("the backup includes only some resources".into());
    }
    if !spec.excluded_resources.is_empty() || !spec.excluded_namespace_scoped_resources.is_empty() {
        return Err("the backup excludes some resources".into());
    }
    if spec.label_selector.is_some() || !spec.or_label_selectors.is_empty() {
        return Err("the backup takes only objects with some labels".into());
    }
    Ok(())
}

/// One labelled object on the standby, as a sync sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// Which object.
    pub id: ObjectId,
    /// It has an owner (`metadata.ownerReferences`): a controller made it, and may have
    /// copied its owner's labels onto it (the EndpointSlices of a Service do).
    pub owned: bool,
}

/// The plan's objects on the standby (`labelled`: those carrying [`STANDBY_OF`] with
/// the plan's name) that a sync of a backup holding `in_backup` deletes: the ones the
/// backup no longer holds, unless a controller owns them (their owner is what the sync
/// keeps; the controller removes them with it). Objects without the label are never in
/// `labelled`, so never deleted.
pub fn to_prune(labelled: &[Labelled], in_backup: &BTreeSet<ObjectId>) -> Vec<ObjectId> {
    labelled
        .iter()
        .filter(|o| {
            !o.owned && !NEVER_PRUNED.contains(&o.id.0.as_str()) && !in_backup.contains(&o.id)
        })
        .map(|o| o.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const KEY: &str = "lifeboat.dev/original-replicas";

    #[rstest]
    #[case::running(
        "deployments.apps",
        json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}}),
        json!({"metadata": {"name": "web", "labels": {STANDBY_OF: "shop"}, "annotations": {KEY: "3"}}, "spec": {"replicas": 0}})
    )]
    #[case::kept_at_zero(
        "deployments.apps",
        json!({"metadata": {}, "spec": {"replicas": 0}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}, "annotations": {KEY: "0"}}, "spec": {"replicas": 0}})
    )]
    #[case::unset_is_one(
        "statefulsets.apps",
        json!({"metadata": {}, "spec": {}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}, "annotations": {KEY: "1"}}, "spec": {"replicas": 0}})
    )]
    #[case::fenced_primary_keeps_its_count(
        "deployments.apps",
        json!({"metadata": {"annotations": {KEY: "4"}}, "spec": {"replicas": 0}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}, "annotations": {KEY: "4"}}, "spec": {"replicas": 0}})
    )]
    #[case::cronjob_suspended(
        "cronjobs.batch",
        json!({"metadata": {}, "spec": {"schedule": "* * * * *"}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}, "annotations": {ORIGINAL_SUSPEND: "false"}}, "spec": {"schedule": "* * * * *", "suspend": true}})
    )]
    #[case::suspended_already(
        "cronjobs.batch",
        json!({"metadata": {}, "spec": {"suspend": true}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}}, "spec": {"suspend": true}})
    )]
    #[case::daemonset_held_off_its_nodes(
        "daemonsets.apps",
        json!({"metadata": {}, "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}}, "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd", crate::dr::failover::HELD_OFF_NODES: "shop"}}}}})
    )]
    #[case::daemonset_without_a_selector(
        "daemonsets.apps",
        json!({"metadata": {}, "spec": {"template": {"spec": {}}}}),
        json!({"metadata": {"labels": {STANDBY_OF: "shop"}}, "spec": {"template": {"spec": {"nodeSelector": {crate::dr::failover::HELD_OFF_NODES: "shop"}}}}})
    )]
    #[case::other_kinds_only_labelled(
        "configmaps",
        json!({"metadata": {"labels": {"app": "web"}}, "data": {"a": "b"}}),
        json!({"metadata": {"labels": {"app": "web", STANDBY_OF: "shop"}}, "data": {"a": "b"}})
    )]
    fn a_standby_holds_what_it_restores(
        #[case] gr: &str,
        #[case] mut obj: Value,
        #[case] want: Value,
    ) {
        hold(&mut obj, gr, KEY, "shop");
        assert_eq!(obj, want);
    }

    #[rstest]
    #[case::everything(BackupSpec::default(), None)]
    #[case::star(BackupSpec { included_resources: vec!["*".into()], ..Default::default() }, None)]
    #[case::some_resources(BackupSpec { included_resources: vec!["configmaps".into()], ..Default::default() }, Some("only some resources"))]
    #[case::excluded(BackupSpec { excluded_resources: vec!["secrets".into()], ..Default::default() }, Some("excludes"))]
    #[case::labels(BackupSpec { label_selector: Some(Default::default()), ..Default::default() }, Some("some labels"))]
    fn a_sync_prunes_only_against_a_whole_backup(
        #[case] spec: BackupSpec,
        #[case] err: Option<&str>,
    ) {
        match (prunes_against(&spec), err) {
            (Ok(()), None) => {}
            (Err(e), Some(want)) => assert!(e.contains(want), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[rstest]
    #[case::held(json!({"metadata": {"annotations": {ORIGINAL_SUSPEND: "false"}}, "spec": {"suspend": true}}), Some(false))]
    #[case::suspended_on_the_primary_too(json!({"metadata": {"annotations": {ORIGINAL_SUSPEND: "true"}}, "spec": {"suspend": true}}), Some(true))]
    #[case::not_held(json!({"metadata": {}, "spec": {"suspend": true}}), None)]
    fn a_promotion_releases_cronjobs(#[case] obj: Value, #[case] suspend: Option<bool>) {
        let patch = release_cronjob_patch(&obj);
        assert_eq!(
            patch
                .as_ref()
                .map(|p| p["spec"]["suspend"].as_bool().unwrap()),
            suspend
        );
    }

    fn id(gr: &str, name: &str) -> ObjectId {
        (gr.to_owned(), "shop".to_owned(), name.to_owned())
    }

    #[rstest]
    #[case::kept(id("configmaps", "kept"), false, false)]
    #[case::dropped_by_the_backup(id("configmaps", "dropped"), false, true)]
    // Regression: the standby's EndpointSlice controller copies a restored Service's
    // labels (the plan's among them) onto the slices it makes; a sync deleted them.
    #[case::claims_hold_data(id("persistentvolumeclaims", "db"), false, false)]
    #[case::made_by_a_controller_from_a_labelled_owner(
        id("endpointslices.discovery.k8s.io", "web-x7k2p"),
        true,
        false
    )]
    fn a_sync_prunes_only_the_plans_objects_the_backup_dropped(
        #[case] object: ObjectId,
        #[case] owned: bool,
        #[case] pruned: bool,
    ) {
        let in_backup = BTreeSet::from([id("configmaps", "kept"), id("secrets", "new")]);
        let got = to_prune(
            &[Labelled {
                id: object.clone(),
                owned,
            }],
            &in_backup,
        );
        assert_eq!(got, if pruned { vec![object] } else { vec![] });
    }
}
