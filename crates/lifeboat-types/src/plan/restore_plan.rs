//! A restore's plan, pure: from the items of an extracted backup (as plain data) and the
//! Restore's filters to what is created, in which phase (Velero's priority order), which
//! items are left out and why, which namespaces must be created first, and which volumes
//! are created and which claims provision new ones (`rules::volumes`).
//!
//! The engine reads the archive and does what the plan says; every decision is here.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::plan::restore::{
    Decision, RestoreFilter, SkipReason, controller_uid, is_service_account_token, phase_of,
};
use crate::rules::volumes::{self, PvDecision};

/// What the plan reads of one backed-up item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Its group-resource (`deployments.apps`).
    pub gr: String,
    /// Its namespace in the backup (`None` for cluster-scoped items).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: Option<String>,
    /// The uid of the controller owning it.
    pub controller: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// A Secret holding a ServiceAccount token (the cluster makes a new one).
    pub service_account_token: bool,
    /// A PersistentVolume's `spec.persistentVolumeReclaimPolicy`.
    pub reclaim_policy: Option<String>,
    /// A PersistentVolumeClaim's `spec.volumeName` (the volume it is bound to).
    pub volume_name: Option<String>,
}

impl Item {
    /// The item `gr` `namespace`/`name` of the backup, whose stored object is `obj`
    /// (`Value::Null` when it does not parse).
    pub fn new(gr: &str, namespace: Option<&str>, name: &str, obj: &Value) -> Self {
        Item {
            gr: gr.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            uid: obj
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            controller: controller_uid(obj).map(str::to_owned),
            labels: obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            service_account_token: is_service_account_token(gr, obj),
            reclaim_policy: match gr {
                "persistentvolumes" => spec_str(obj, "persistentVolumeReclaimPolicy"),
                _ => None,
            },
            volume_name: match gr {
                "persistentvolumeclaims" => spec_str(obj, "volumeName"),
                _ => None,
            },
        }
    }
}

fn spec_str(obj: &Value, field: &str) -> Option<String> {
    obj.get("spec")?
        .get(field)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// One item to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// Its index in the items given to [`plan`].
    pub index: usize,
    /// The namespace it is created in (mapped; `None` for cluster-scoped).
    pub namespace: Option<String>,
    /// A claim whose volume this restore does not create: it loses `spec.volumeName` and
    /// provisions a new volume ([`volumes::provision_fresh`]).
    pub provision_fresh: bool,
}

/// What a phase waits for once its objects are created (not in a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Wait {
    /// The CRDs it created or updated are Established (and discovery serves them).
    CrdsEstablished,
    /// The namespaces it created are Active.
    NamespacesActive,
}

/// One step of a restore, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Step {
    /// Create (and wait Active for) the namespaces objects land in that the backup does not
    /// restore — before the namespaces' phase, so that they exist before what is in them
    /// (not in a dry run).
    EnsureNamespaces(BTreeSet<String>),
    /// Create these objects, concurrently.
    Phase {
        /// The priority ([`phase_of`]).
        priority: usize,
        /// The objects, in backup order.
        items: Vec<Planned>,
        /// What to wait for afterwards.
        wait: Option<Wait>,
    },
}

/// A restore's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestorePlan {
    /// What to do, in order.
    pub steps: Vec<Step>,
    /// How many items are left out, by reason (as the restore's log names them).
    pub skipped: BTreeMap<&'static str, u64>,
    /// What the restore's results warn about, each naming the object: volumes left out
    /// whose claims provision new (empty) volumes.
    pub warnings: Vec<String>,
}

impl RestorePlan {
    /// The number of objects to restore.
    pub fn len(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Phase { items, .. } => items.len(),
                Step::EnsureNamespaces(_) => 0,
            })
            .sum()
    }

    /// Whether nothing is restored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a skip reason is counted in the restore's log.
fn skip_label(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::NeverRestored => "never restored",
        SkipReason::Filtered => "filtered out",
        SkipReason::OwnedByRestoredController => "owned by a restored controller",
        SkipReason::ServiceAccountToken => "service account tokens",
        SkipReason::VolumeOfMappedRestore => "persistent volumes of a namespace-mapped restore",
        SkipReason::VolumeWithoutData => {
            "persistent volumes without restored data and reclaim policy Delete"
        }
        SkipReason::VolumeFromSnapshot => {
            "persistent volumes whose claims are restored from their CSI snapshots"
        }
        SkipReason::SnapshotImported => {
            "CSI snapshot objects of the backup (the restore imports the snapshots by handle)"
        }
        SkipReason::VolumeWithFiles => {
            "persistent volumes whose files are in the backup (their claims provision new ones)"
        }
        SkipReason::NotCreatable => "resources the API server does not allow creating",
    }
}

/// Plans the restore of `items` (in backup order) through `filter`: ServiceAccount tokens
/// and what the filters leave out are skipped; an item whose controller is restored too is
/// left to that controller to create; volumes go by `rules::volumes` (never one without
/// its data and with reclaim policy Delete; a claim whose volume is not created provisions
/// a new one); the rest goes into phases by priority.
pub fn plan(items: &[Item], filter: &RestoreFilter) -> RestorePlan {
    let mut skipped: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut skip = |reason: SkipReason| *skipped.entry(skip_label(&reason)).or_default() += 1;
    let mut warnings = Vec::new();
    let mut chosen = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if item.service_account_token {
            skip(SkipReason::ServiceAccountToken);
            continue;
        }
        let csi = filter.csi_imports();
        let key = || {
            (
                item.namespace.clone().unwrap_or_default(),
                item.name.clone(),
            )
        };
        if (item.gr == "volumesnapshots.snapshot.storage.k8s.io" && csi.snapshots.contains(&key()))
            || (item.gr == "volumesnapshotcontents.snapshot.storage.k8s.io"
                && csi.contents.contains(&item.name))
        {
            skip(SkipReason::SnapshotImported);
            continue;
        }
        match filter.decide(
            &item.gr,
            item.namespace.as_deref(),
            &item.name,
            &item.labels,
        ) {
            Decision::Restore { namespace } => chosen.push(Planned {
                index,
                namespace,
                provision_fresh: false,
            }),
            Decision::Skip(reason) => {
                if reason == SkipReason::VolumeOfMappedRestore {
                    warnings.push(format!(
                        "persistent volume {} not restored: a namespace-mapped restore creates no persistent volumes unless it includes cluster resources (includeClusterResources: true); its claim provisions a new, empty volume",
                        item.name
                    ));
                }
                skip(reason)
            }
        }
    }
    // Controllers restored take their children with them (the children are created again
    // by the controllers, with new uids) — except pods carrying volume data, which only
    // the restored pod gets.
    let restored_uids: BTreeMap<&str, &str> = chosen
        .iter()
        .filter_map(|p| Some((items[p.index].uid.as_deref()?, items[p.index].gr.as_str())))
        .collect();
    let mut kept = Vec::with_capacity(chosen.len());
    for p in chosen {
        let item = &items[p.index];
        let controller = item
            .controller
            .as_deref()
            .and_then(|c| restored_uids.get(c).copied());
        // Only a ReplicaSet's or StatefulSet's pod: those adopt a restored pod by its
        // labels (a Job's new selector would not, and its work would run twice).
        let carries_files = item.gr == "pods"
            && matches!(controller, Some("replicasets.apps" | "statefulsets.apps"))
            && filter.pod_has_files(item.namespace.as_deref().unwrap_or_default(), &item.name);
        if !carries_files && controller.is_some() {
            skip(SkipReason::OwnedByRestoredController);
        } else {
            kept.push(p);
        }
    }

    // Volumes: those the restored claims name, then which of them are created (no restore
    // binds a claim to a production disk), then which claims provision new volumes.
    let claimed: BTreeSet<&str> = kept
        .iter()
        .map(|p| &items[p.index])
        .filter(|i| i.gr == "persistentvolumeclaims")
        .filter_map(|i| i.volume_name.as_deref())
        .collect();
    // Volumes whose files are in the backup (a pod volume backup of their claim's pod).
    let with_files: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.gr == "persistentvolumeclaims")
        .filter(|i| filter.claim_has_files(i.namespace.as_deref().unwrap_or_default(), &i.name))
        .filter_map(|i| i.volume_name.as_deref())
        .collect();
    // Volumes whose claims are restored from their CSI snapshots.
    let from_snapshot: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.gr == "persistentvolumeclaims")
        .filter(|i| {
            filter
                .csi_imports()
                .claims
                .contains(&(i.namespace.clone().unwrap_or_default(), i.name.clone()))
        })
        .filter_map(|i| i.volume_name.as_deref())
        .collect();
    let mut restored_volumes = BTreeSet::new();
    kept.retain(|p| {
        let item = &items[p.index];
        if item.gr != "persistentvolumes" {
            return true;
        }
        // Volume snapshots are not restored (yet): a volume has its files or nothing.
        let data = if with_files.contains(item.name.as_str()) {
            volumes::VolumeData::Files
        } else if from_snapshot.contains(item.name.as_str()) {
            volumes::VolumeData::CsiSnapshot
        } else {
            volumes::VolumeData::None
        };
        match volumes::pv_decision(
            filter.pv_scope(),
            claimed.contains(item.name.as_str()),
            item.reclaim_policy.as_deref(),
            data,
        ) {
            PvDecision::ProvisionFromSnapshot => {
                warnings.push(format!(
                    "persistent volume {} not restored: its claim is restored from its CSI snapshot (a new volume provisioned from it)",
                    item.name
                ));
                skip(SkipReason::VolumeFromSnapshot);
                false
            }
            PvDecision::ProvisionForFiles => {
                warnings.push(format!(
                    "persistent volume {} not restored: its files are in the backup; its claim provisions a new volume and the node agent writes them into it",
                    item.name
                ));
                skip(SkipReason::VolumeWithFiles);
                false
            }
            PvDecision::Restore => {
                restored_volumes.insert(item.name.as_str());
                true
            }
            PvDecision::OutOfScope => {
                skip(SkipReason::Filtered);
                false
            }
            PvDecision::ProvisionFresh => {
                warnings.push(format!(
                    "persistent volume {} not restored: the backup holds no data for it and its reclaim policy is {}; its claim provisions a new, empty volume",
                    item.name,
                    item.reclaim_policy.as_deref().unwrap_or("Delete")
                ));
                skip(SkipReason::VolumeWithoutData);
                false
            }
        }
    });
    for p in &mut kept {
        let item = &items[p.index];
        if item.gr == "persistentvolumeclaims" {
            let volume = item.volume_name.as_deref();
            p.provision_fresh = volume.is_some()
                && !volumes::claim_keeps_volume(
                    volume,
                    volume.is_some_and(|v| restored_volumes.contains(v)),
                );
        }
    }

    let mut by_phase: BTreeMap<usize, Vec<Planned>> = BTreeMap::new();
    for p in kept {
        by_phase
            .entry(phase_of(&items[p.index].gr))
            .or_default()
            .push(p);
    }

    // Namespaces that objects land in but that the backup does not restore.
    let ns_phase = phase_of("namespaces");
    let restored_namespaces: BTreeSet<&str> = by_phase
        .get(&ns_phase)
        .into_iter()
        .flatten()
        .filter(|p| items[p.index].gr == "namespaces")
        .map(|p| filter.map_namespace(&items[p.index].name))
        .collect();
    let needed: BTreeSet<String> = by_phase
        .values()
        .flatten()
        .filter_map(|p| p.namespace.as_deref())
        .filter(|n| !restored_namespaces.contains(n))
        .map(str::to_owned)
        .collect();

    let crd_phase = phase_of("customresourcedefinitions");
    let mut steps = Vec::new();
    let mut namespaces_ensured = false;
    for (priority, items) in by_phase {
        if priority >= ns_phase && !namespaces_ensured {
            namespaces_ensured = true;
            steps.push(Step::EnsureNamespaces(needed.clone()));
        }
        let wait = if priority == crd_phase {
            Some(Wait::CrdsEstablished)
        } else if priority == ns_phase {
            Some(Wait::NamespacesActive)
        } else {
            None
        };
        steps.push(Step::Phase {
            priority,
            items,
            wait,
        });
    }
    if !namespaces_ensured {
        steps.push(Step::EnsureNamespaces(needed));
    }
    RestorePlan {
        steps,
        skipped,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::RestoreSpec;
    use rstest::rstest;
    use serde_json::json;

    /// A backed-up object of `gr` `ns`/`name`; `owner` is its controller's uid, `uid` its own.
    fn item(gr: &str, ns: Option<&str>, name: &str, uid: &str, owner: Option<&str>) -> Item {
        let mut obj = json!({"metadata": {"name": name, "uid": uid, "labels": {"app": "web"}}});
        if let Some(o) = owner {
            obj["metadata"]["ownerReferences"] = json!([{"uid": o, "controller": true}]);
        }
        Item::new(gr, ns, name, &obj)
    }

    fn ns_item(name: &str) -> Item {
        item("namespaces", None, name, &format!("ns-{name}"), None)
    }

    /// `gr ns/name -> target` for each planned object, `ensure [..]` for namespaces made first.
    fn show(items: &[Item], plan: &RestorePlan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::EnsureNamespaces(n) => format!("ensure namespaces {n:?}"),
                Step::Phase {
                    priority,
                    items: planned,
                    wait,
                } => {
                    let objs: Vec<String> = planned
                        .iter()
                        .map(|p| {
                            let i = &items[p.index];
                            let from = i
                                .namespace
                                .as_deref()
                                .map(|n| format!("{n}/"))
                                .unwrap_or_default();
                            let to = p
                                .namespace
                                .as_deref()
                                .map(|n| format!(" -> {n}"))
                                .unwrap_or_default();
                            format!("{} {from}{}{to}", i.gr, i.name)
                        })
                        .collect();
                    format!("phase {priority}: {objs:?}, then {wait:?}")
                }
            })
            .collect()
    }

    fn plan_of(items: &[Item], spec: RestoreSpec) -> RestorePlan {
        plan(items, &RestoreFilter::new(&spec).unwrap())
    }

    #[test]
    fn item_reads_what_the_plan_needs() {
        let obj = json!({"type": "kubernetes.io/service-account-token", "metadata": {
            "uid": "u1", "labels": {"a": "b", "n": 1},
            "ownerReferences": [{"uid": "x", "controller": false}, {"uid": "rs1", "controller": true}]}});
        let i = Item::new("secrets", Some("app"), "tok", &obj);
        assert_eq!(i.uid.as_deref(), Some("u1"));
        assert_eq!(i.controller.as_deref(), Some("rs1"));
        assert_eq!(i.labels, [("a".to_string(), "b".to_string())].into());
        assert!(i.service_account_token);
        let unparsable = Item::new("configmaps", Some("app"), "c", &Value::Null);
        assert_eq!((unparsable.uid, unparsable.controller), (None, None));
        assert!(!unparsable.service_account_token);
    }

    #[test]
    fn a_whole_backup_in_velero_order() {
        let items = vec![
            item("configmaps", Some("app"), "cfg", "c1", None),
            item(
                "customresourcedefinitions.apiextensions.k8s.io",
                None,
                "widgets.example.com",
                "crd1",
                None,
            ),
            item("deployments.apps", Some("app"), "web", "d1", None),
            item("events", Some("app"), "web.1", "e1", None),
            ns_item("app"),
            item("pods", Some("app"), "web-1-a", "p1", Some("rs1")),
            item("pods", Some("other"), "solo", "p2", None),
            item("replicasets.apps", Some("app"), "web-1", "rs1", Some("d1")),
            Item::new(
                "secrets",
                Some("app"),
                "default-token",
                &json!({"type": "kubernetes.io/service-account-token"}),
            ),
            item("widgets.example.com", Some("app"), "w", "w1", None),
        ];
        let spec = RestoreSpec {
            namespace_mapping: [("other".to_string(), "other-restored".to_string())].into(),
            ..Default::default()
        };
        let plan = plan_of(&items, spec);
        assert_eq!(plan.len(), 6);
        let text = format!(
            "{}\nskipped: {:?}",
            show(&items, &plan).join("\n"),
            plan.skipped
        );
        insta::assert_snapshot!(text, @r#"
        phase 0: ["customresourcedefinitions.apiextensions.k8s.io widgets.example.com"], then Some(CrdsEstablished)
        ensure namespaces {"other-restored"}
        phase 1: ["namespaces app"], then Some(NamespacesActive)
        phase 15: ["configmaps app/cfg -> app"], then None
        phase 18: ["pods other/solo -> other-restored"], then None
        phase 23: ["deployments.apps app/web -> app", "widgets.example.com app/w -> app"], then None
        skipped: {"never restored": 1, "owned by a restored controller": 2, "service account tokens": 1}
        "#);
    }

    #[rstest]
    // A child of a restored controller is left to it; the controller's own controller
    // (here a Deployment) takes the ReplicaSet too.
    #[case::children_of_restored_controllers(
        vec![item("replicasets.apps", Some("a"), "rs", "rs1", Some("d1")), item("deployments.apps", Some("a"), "d", "d1", None), item("pods", Some("a"), "p", "p1", Some("rs1"))],
        RestoreSpec::default(),
        &["deployments.apps a/d"],
        &[("owned by a restored controller", 2)],
    )]
    // A controller that is filtered out does not take its children.
    #[case::children_of_filtered_controllers(
        vec![item("replicasets.apps", Some("a"), "rs", "rs1", None), item("pods", Some("a"), "p", "p1", Some("rs1"))],
        RestoreSpec { excluded_resources: vec!["replicasets".into()], ..Default::default() },
        &["pods a/p"],
        &[("filtered out", 1)],
    )]
    #[case::service_account_tokens(
        vec![Item::new("secrets", Some("a"), "t", &json!({"type": "kubernetes.io/service-account-token"})), item("secrets", Some("a"), "s", "s1", None)],
        RestoreSpec::default(),
        &["secrets a/s"],
        &[("service account tokens", 1)],
    )]
    #[case::never_restored(
        vec![item("nodes", None, "n1", "n1", None), item("events", Some("a"), "e", "e1", None)],
        RestoreSpec::default(),
        &[],
        &[("never restored", 2)],
    )]
    #[case::namespace_filters(
        vec![item("configmaps", Some("a"), "c", "c1", None), item("configmaps", Some("b"), "c", "c2", None)],
        RestoreSpec { included_namespaces: vec!["b".into()], ..Default::default() },
        &["configmaps b/c"],
        &[("filtered out", 1)],
    )]
    fn what_is_restored(
        #[case] items: Vec<Item>,
        #[case] spec: RestoreSpec,
        #[case] restored: &[&str],
        #[case] skipped: &[(&'static str, u64)],
    ) {
        let plan = plan_of(&items, spec);
        let got: Vec<String> = plan
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::Phase { items: p, .. } => p.clone(),
                Step::EnsureNamespaces(_) => vec![],
            })
            .map(|p| {
                let i = &items[p.index];
                format!(
                    "{} {}/{}",
                    i.gr,
                    i.namespace.as_deref().unwrap_or_default(),
                    i.name
                )
            })
            .collect();
        assert_eq!(got, restored);
        assert_eq!(plan.skipped, skipped.iter().copied().collect());
    }

    fn pv(name: &str, policy: &str) -> Item {
        Item::new(
            "persistentvolumes",
            None,
            name,
            &json!({"metadata": {"name": name, "uid": format!("u-{name}")},
                "spec": {"persistentVolumeReclaimPolicy": policy, "claimRef": {"namespace": "a", "name": "data"}}}),
        )
    }

    fn pvc(name: &str, volume: Option<&str>) -> Item {
        let mut obj = json!({"metadata": {"name": name, "uid": format!("u-{name}")}, "spec": {}});
        if let Some(v) = volume {
            obj["spec"]["volumeName"] = json!(v);
        }
        Item::new("persistentvolumeclaims", Some("a"), name, &obj)
    }

    fn mapped() -> RestoreSpec {
        RestoreSpec {
            namespace_mapping: [("a".to_string(), "a-drill".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn item_reads_volume_facts() {
        assert_eq!(pv("v", "Delete").reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(pvc("c", Some("v")).volume_name.as_deref(), Some("v"));
        assert_eq!(pvc("c", Some("")).volume_name, None);
        assert_eq!(
            item("configmaps", Some("a"), "c", "c1", None).volume_name,
            None
        );
    }

    /// Issue 11 item 5, "restores never bind production disks": which volumes a restore
    /// creates, which claims provision new volumes (`fresh`), what is skipped and warned.
    #[rstest]
    #[case::delete_policy_is_not_restored(
        vec![pv("v1", "Delete"), pvc("data", Some("v1"))],
        RestoreSpec::default(),
        &["persistentvolumeclaims a/data fresh"],
        &[("persistent volumes without restored data and reclaim policy Delete", 1)],
        &["persistent volume v1 not restored: the backup holds no data for it and its reclaim policy is Delete"],
    )]
    #[case::retain_policy_is_restored_with_its_claim(
        vec![pv("v1", "Retain"), pvc("data", Some("v1"))],
        RestoreSpec::default(),
        &["persistentvolumes v1", "persistentvolumeclaims a/data"],
        &[],
        &[],
    )]
    #[case::a_claim_whose_volume_is_not_in_the_backup(
        vec![pvc("data", Some("v1")), pvc("unbound", None)],
        RestoreSpec::default(),
        &["persistentvolumeclaims a/data fresh", "persistentvolumeclaims a/unbound"],
        &[],
        &[],
    )]
    // Some namespaces: only the volumes of the claims restored (Velero's additional items).
    #[case::some_namespaces_take_their_claims_volumes(
        vec![pv("v1", "Retain"), pv("v2", "Retain"), pvc("data", Some("v1"))],
        RestoreSpec { included_namespaces: vec!["a".into()], ..Default::default() },
        &["persistentvolumes v1", "persistentvolumeclaims a/data"],
        &[("filtered out", 1)],
        &[],
    )]
    #[case::namespace_mapped_restores_create_no_volume(
        vec![pv("v1", "Retain"), pvc("data", Some("v1"))],
        mapped(),
        &["persistentvolumeclaims a/data -> a-drill fresh"],
        &[("persistent volumes of a namespace-mapped restore", 1)],
        &["persistent volume v1 not restored: a namespace-mapped restore creates no persistent volumes unless it includes cluster resources"],
    )]
    #[case::namespace_mapped_restores_create_volumes_when_asked(
        vec![pv("v1", "Retain"), pvc("data", Some("v1"))],
        RestoreSpec { include_cluster_resources: Some(true), ..mapped() },
        &["persistentvolumes v1", "persistentvolumeclaims a/data -> a-drill"],
        &[],
        &[],
    )]
    #[case::asked_still_not_a_delete_volume(
        vec![pv("v1", "Delete"), pvc("data", Some("v1"))],
        RestoreSpec { include_cluster_resources: Some(true), ..mapped() },
        &["persistentvolumeclaims a/data -> a-drill fresh"],
        &[("persistent volumes without restored data and reclaim policy Delete", 1)],
        &["persistent volume v1 not restored: the backup holds no data"],
    )]
    // verify --test-restore: mapped, includeClusterResources false.
    #[case::no_cluster_resources(
        vec![pv("v1", "Retain"), pvc("data", Some("v1"))],
        RestoreSpec { include_cluster_resources: Some(false), ..mapped() },
        &["persistentvolumeclaims a/data -> a-drill fresh"],
        &[("filtered out", 1)],
        &[],
    )]
    // A claim left to its restored controller takes no volume with it.
    #[case::claims_of_restored_controllers(
        vec![pv("v1", "Retain"), Item { controller: Some("ss1".into()), ..pvc("data", Some("v1")) }, item("statefulsets.apps", Some("a"), "db", "ss1", None)],
        RestoreSpec { included_namespaces: vec!["a".into()], ..Default::default() },
        &["statefulsets.apps a/db"],
        &[("filtered out", 1), ("owned by a restored controller", 1)],
        &[],
    )]
    fn volumes_and_claims(
        #[case] items: Vec<Item>,
        #[case] spec: RestoreSpec,
        #[case] restored: &[&str],
        #[case] skipped: &[(&'static str, u64)],
        #[case] warnings: &[&str],
    ) {
        let plan = plan_of(&items, spec);
        let got: Vec<String> = plan
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::Phase { items: p, .. } => p.clone(),
                Step::EnsureNamespaces(_) => vec![],
            })
            .map(|p| {
                let i = &items[p.index];
                let from = i
                    .namespace
                    .as_deref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                let to = match (&i.namespace, &p.namespace) {
                    (Some(a), Some(b)) if a != b => format!(" -> {b}"),
                    _ => String::new(),
                };
                let fresh = if p.provision_fresh { " fresh" } else { "" };
                format!("{} {from}{}{to}{fresh}", i.gr, i.name)
            })
            .collect();
        assert_eq!(got, restored);
        assert_eq!(plan.skipped, skipped.iter().copied().collect());
        assert_eq!(plan.warnings.len(), warnings.len(), "{:?}", plan.warnings);
        for (got, want) in plan.warnings.iter().zip(warnings) {
            assert!(got.starts_with(want), "{got}");
        }
    }

    /// The planned items in order: each one's name and whether it provisions afresh.
    fn names_and_fresh(items: &[Item], plan: &RestorePlan) -> Vec<(String, bool)> {
        plan.steps
            .iter()
            .flat_map(|s| match s {
                Step::Phase { items: p, .. } => p.clone(),
                Step::EnsureNamespaces(_) => vec![],
            })
            .map(|p| (items[p.index].name.clone(), p.provision_fresh))
            .collect()
    }

    /// Issue 15 item 4: a claim whose volume's files are in the backup provisions a new
    /// volume (the node agent fills it), whatever the old volume's reclaim policy; the old
    /// volume is not created (it would point at the original disk).
    #[test]
    fn a_volume_whose_files_are_in_the_backup_is_provisioned_afresh() {
        let items = vec![
            pv("v1", "Retain"),
            pvc("data", Some("v1")),
            pv("v2", "Retain"),
            pvc("logs", Some("v2")),
        ];
        let filter = RestoreFilter::new(&RestoreSpec::default())
            .unwrap()
            .with_claims_with_files([("a".to_string(), "data".to_string())].into());
        let plan = plan(&items, &filter);
        let got = names_and_fresh(&items, &plan);
        assert_eq!(
            got,
            [
                ("v2".to_string(), false),
                ("data".to_string(), true),
                ("logs".to_string(), false)
            ]
        );
        assert_eq!(
            plan.skipped,
            [(
                "persistent volumes whose files are in the backup (their claims provision new ones)",
                1
            )]
            .into_iter()
            .collect()
        );
        assert!(
            plan.warnings[0]
                .starts_with("persistent volume v1 not restored: its files are in the backup"),
            "{:?}",
            plan.warnings
        );
    }

    /// Regression (issue 16, a failover of a Deployment with a claim's data): the pod of a
    /// restored Deployment was left to the Deployment, which made a new pod without the
    /// restore-wait container — its volume data was never written. A pod whose volumes'
    /// files are in the backup is restored; its ReplicaSet, without files, is still left
    /// to the Deployment.
    #[test]
    fn a_pod_with_volume_data_is_restored_beside_its_restored_controller() {
        let items = vec![
            item("deployments.apps", Some("a"), "d", "d1", None),
            item("replicasets.apps", Some("a"), "rs", "rs1", Some("d1")),
            item("pods", Some("a"), "p", "p1", Some("rs1")),
            item("pods", Some("a"), "q", "p2", Some("rs1")),
            // A Job's pod stays with its Job, files or not: the restored Job's new
            // selector would not adopt it, and its work would run twice.
            item("jobs.batch", Some("a"), "j", "j1", None),
            item("pods", Some("a"), "jp", "p3", Some("j1")),
        ];
        let filter = RestoreFilter::new(&RestoreSpec::default())
            .unwrap()
            .with_pods_with_files(
                [
                    ("a".to_string(), "p".to_string()),
                    ("a".to_string(), "jp".to_string()),
                ]
                .into(),
            );
        let plan = plan(&items, &filter);
        let restored: Vec<String> = show(&items, &plan)
            .into_iter()
            .filter(|s| s.starts_with("phase"))
            .collect();
        assert_eq!(
            restored,
            [
                r#"phase 18: ["pods a/p -> a"], then None"#,
                r#"phase 23: ["deployments.apps a/d -> a", "jobs.batch a/j -> a"], then None"#
            ]
        );
        assert_eq!(
            plan.skipped,
            [("owned by a restored controller", 3)]
                .into_iter()
                .collect()
        );
    }

    /// Issue 15 item 6: a claim restored from its CSI snapshot provisions a new volume;
    /// the old volume and the backup's own snapshot objects are not restored (the restore
    /// imports the snapshot by its handle); other snapshot objects are restored as usual.
    #[test]
    fn a_claim_with_a_csi_snapshot_is_restored_from_it() {
        let vs = |ns: &str, name: &str| {
            Item::new(
                "volumesnapshots.snapshot.storage.k8s.io",
                Some(ns),
                name,
                &json!({"metadata": {"name": name}}),
            )
        };
        let vsc = |name: &str| {
            Item::new(
                "volumesnapshotcontents.snapshot.storage.k8s.io",
                None,
                name,
                &json!({"metadata": {"name": name}}),
            )
        };
        let items = vec![
            pv("v1", "Delete"),
            pvc("data", Some("v1")),
            vs("a", "velero-data-1"),
            vsc("snapcontent-1"),
            vs("a", "users-own"),
        ];
        let csi = crate::plan::restore::CsiImports {
            claims: [("a".to_string(), "data".to_string())].into(),
            snapshots: [("a".to_string(), "velero-data-1".to_string())].into(),
            contents: ["snapcontent-1".to_string()].into(),
        };
        let filter = RestoreFilter::new(&RestoreSpec::default())
            .unwrap()
            .with_csi_imports(csi);
        let plan = plan(&items, &filter);
        let got = names_and_fresh(&items, &plan);
        assert_eq!(
            got,
            // Snapshots come before claims in Velero's priorities.
            [("users-own".to_string(), false), ("data".to_string(), true)]
        );
        assert_eq!(
            plan.skipped,
            [
                ("CSI snapshot objects of the backup (the restore imports the snapshots by handle)", 2),
                ("persistent volumes whose claims are restored from their CSI snapshots", 1)
            ]
            .into_iter()
            .collect()
        );
    }

    #[rstest]
    // Namespaces the backup restores are created in their phase, not beforehand.
    #[case::restored_by_the_backup(vec![ns_item("a"), item("configmaps", Some("a"), "c", "c1", None)], RestoreSpec::default(), &[])]
    #[case::not_in_the_backup(vec![item("configmaps", Some("a"), "c", "c1", None)], RestoreSpec::default(), &["a"])]
    // Mapped: the target namespace is what must exist.
    #[case::mapped_and_restored(vec![ns_item("a"), item("configmaps", Some("a"), "c", "c1", None)], RestoreSpec { namespace_mapping: [("a".to_string(), "z".to_string())].into(), ..Default::default() }, &[])]
    #[case::mapped_not_in_the_backup(vec![item("configmaps", Some("a"), "c", "c1", None)], RestoreSpec { namespace_mapping: [("a".to_string(), "z".to_string())].into(), ..Default::default() }, &["z"])]
    // The namespace object filtered out (by resource), its objects kept: it is created.
    #[case::namespace_object_filtered(vec![ns_item("a"), item("configmaps", Some("a"), "c", "c1", None)], RestoreSpec { excluded_resources: vec!["namespaces".into()], ..Default::default() }, &["a"])]
    #[case::cluster_scoped_only(vec![item("clusterroles.rbac.authorization.k8s.io", None, "r", "r1", None)], RestoreSpec::default(), &[])]
    fn namespaces_created_first(
        #[case] items: Vec<Item>,
        #[case] spec: RestoreSpec,
        #[case] needed: &[&str],
    ) {
        let plan = plan_of(&items, spec);
        let ensured: Vec<&BTreeSet<String>> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::EnsureNamespaces(n) => Some(n),
                Step::Phase { .. } => None,
            })
            .collect();
        let want: BTreeSet<String> = needed.iter().map(|s| s.to_string()).collect();
        assert_eq!(ensured, [&want], "exactly one step makes the namespaces");
    }

    #[rstest]
    // Before the namespaces' phase (after the CRDs'), so that objects find them.
    #[case::after_crds(vec![item("customresourcedefinitions.apiextensions.k8s.io", None, "w", "crd", None), item("configmaps", Some("a"), "c", "c1", None)], 1)]
    #[case::first(vec![item("configmaps", Some("a"), "c", "c1", None)], 0)]
    // With nothing at or after the namespaces' phase, at the end.
    #[case::last(vec![item("customresourcedefinitions.apiextensions.k8s.io", None, "w", "crd", None)], 1)]
    fn namespaces_step_position(#[case] items: Vec<Item>, #[case] at: usize) {
        let plan = plan_of(&items, RestoreSpec::default());
        assert!(
            matches!(plan.steps[at], Step::EnsureNamespaces(_)),
            "{:?}",
            plan.steps
        );
    }
}
