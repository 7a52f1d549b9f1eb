//! A warm standby (`strategy: warm-standby`): `dr sync` restores the newest backup of
//! the plan into a standby cluster and keeps it held — every object labelled
//! `lifeboat.dev/standby-of: <plan>`, Deployments and StatefulSets at 0 replicas with
//! their counts kept, CronJobs suspended, pods, ReplicaSets and Jobs left out — updating
//! what an earlier sync restored and deleting the plan's objects the backup no longer
//! holds (never an object without the plan's label). Each protected namespace records
//! the backup it holds (`lifeboat.dev/standby-backup`), so that a sync of the same backup
//! again does nothing. A failover to a warm standby then only scales up
//! ([`promote`]). Decisions are `lifeboat_types::dr::standby`'s.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use lifeboat_engine::cluster::{Cluster, collection_path, namespace_path, v1_resource};
use lifeboat_engine::error::chain;
use lifeboat_engine::restore::Outcome as ItemOutcome;
use lifeboat_engine::storage::Store;
use lifeboat_types::dr::plan::{Plan, Strategy};
use lifeboat_types::dr::standby::{
    LEFT_OUT, Labelled, ORIGINAL_SUSPEND, ObjectId, PROMOTED, STANDBY_OF, prunes_against,
    release_cronjob_patch, to_prune,
};

use crate::fence::scale_up;
use crate::report::steps_table;
use crate::steps::FailoverError;
use crate::steps::{Recorder, RestoreInto, Step, restore_protected};
use crate::target::{LocalLocations, reach};

/// The annotation on each protected namespace of a warm standby: the backup it holds.
pub const STANDBY_BACKUP: &str = "lifeboat.dev/standby-backup";

/// How a sync is run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// The standby (default: the plan's first).
    pub on: Option<String>,
    /// The id in the sync's restore name (default: from the clock).
    pub id: Option<String>,
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncOutcome {
    /// The standby holds the newest backup now.
    Synced,
    /// It held it already.
    UpToDate,
    /// A step failed (the standby holds what it held, or part of the new backup).
    Failed,
}

/// A sync's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// The plan.
    pub plan: String,
    /// The standby.
    pub cluster: String,
    /// The backup it holds now (or was to hold).
    pub backup: String,
    /// Where it was read.
    pub location: String,
    /// When the sync started.
    pub started: DateTime<Utc>,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// How it ended.
    pub outcome: SyncOutcome,
    /// Objects created or updated.
    pub objects_restored: u64,
    /// The plan's objects deleted because the backup no longer holds them.
    pub pruned: Vec<String>,
    /// Every step.
    pub steps: Vec<Step>,
}

fn refuse(plan: &Plan, why: String) -> FailoverError {
    FailoverError::Refused {
        plan: plan.name.clone(),
        why,
    }
}

/// What a standby's protected namespaces say: None when one is missing; else whether
/// each carries the plan's label, and the backup each holds.
pub(crate) async fn held(
    plan: &Plan,
    cluster: &Cluster,
) -> Result<Vec<(String, Option<serde_json::Value>)>, String> {
    let mut out = Vec::new();
    for ns in &plan.spec.namespaces {
        let text = cluster
            .get_path_opt(&namespace_path(ns), "namespaces")
            .await
            .map_err(|e| chain(&e))?;
        out.push((
            ns.clone(),
            text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()),
        ));
    }
    Ok(out)
}

fn label_of<'a>(ns: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    ns.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(serde_json::Value::as_str)
}

fn annotation_of<'a>(ns: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    ns.pointer("/metadata/annotations")
        .and_then(|l| l.get(key))
        .and_then(serde_json::Value::as_str)
}

/// Whether every protected namespace on the cluster is the plan's warm copy; Err names
/// one that exists without being it (a sync or promotion would touch what the plan does
/// not own).
pub(crate) fn is_warm(
    plan: &Plan,
    cluster_name: &str,
    namespaces: &[(String, Option<serde_json::Value>)],
) -> Result<bool, String> {
    let mut all = true;
    for (ns, obj) in namespaces {
        match obj {
            None => all = false,
            Some(o) if annotation_of(o, PROMOTED).is_some() => {
                return Err(format!(
                    "namespace {ns} on cluster {cluster_name} was promoted ({}): it serves, and is no standby copy to hold or promote; fail back first",
                    annotation_of(o, PROMOTED).unwrap_or_default()
                ));
            }
            Some(o) if label_of(o, STANDBY_OF) == Some(plan.name.as_str()) => {}
            Some(_) => {
                return Err(format!(
                    "namespace {ns} exists on cluster {cluster_name} but is not plan {}'s standby copy (it has no {STANDBY_OF}={} label): delete it, or leave it out of the plan",
                    plan.name, plan.name
                ));
            }
        }
    }
    Ok(all)
}

/// Restores `backup_name` into the standby as held objects, prunes what the backup no
/// longer holds, and records the backup on each protected namespace. Returns objects
/// restored and pruned.
pub(crate) async fn apply_sync(
    plan: &Plan,
    cluster: &Cluster,
    store: &Store,
    backup: &lifeboat_types::api::velero::Backup,
    restore_name: &str,
    rec: &mut Recorder,
) -> Result<(u64, Vec<String>), String> {
    let backup_name = backup.metadata.name.as_str();
    let at = rec.start();
    let restored = restore_protected(
        plan,
        cluster,
        store,
        backup_name,
        restore_name,
        RestoreInto {
            update_existing: true,
            standby: true,
            ..Default::default()
        },
    )
    .await;
    let ok = restored.completed;
    rec.done("restore held", at, ok, restored.detail.clone());
    if !ok {
        return Err(restored.detail);
    }
    let in_backup: BTreeSet<ObjectId> = restored
        .report
        .as_ref()
        .map(|r| {
            r.items
                .iter()
                .filter(|i| !matches!(i.outcome, ItemOutcome::Failed { .. }))
                .map(|i| {
                    (
                        i.resource.clone(),
                        i.namespace.clone().unwrap_or_default(),
                        i.name.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let restored_count = restored
        .report
        .as_ref()
        .map(|r| {
            r.items
                .iter()
                .filter(|i| matches!(i.outcome, ItemOutcome::Created | ItemOutcome::Updated))
                .count() as u64
        })
        .unwrap_or_default();

    let at = rec.start();
    let pruned = match prunes_against(&backup.spec) {
        Ok(()) => {
            let pruned = prune(plan, cluster, &in_backup).await;
            rec.done(
                "prune",
                at,
                pruned.is_ok(),
                match &pruned {
                    Ok(p) if p.is_empty() => "nothing the backup dropped".into(),
                    Ok(p) => format!("deleted {}", p.join(", ")),
                    Err(e) => e.clone(),
                },
            );
            pruned?
        }
        Err(why) => {
            rec.done(
                "prune",
                at,
                true,
                format!("not pruned: {why}, so what it lacks may still be on the primary"),
            );
            Vec::new()
        }
    };

    let at = rec.start();
    let r = v1_resource("", "namespaces", "Namespace", false);
    let patch = serde_json::json!({"metadata": {"annotations": {STANDBY_BACKUP: backup_name}}});
    for ns in &plan.spec.namespaces {
        if let Err(e) = cluster
            .merge_patch(&r, None, ns, serde_json::to_vec(&patch).unwrap_or_default())
            .await
        {
            let e = format!(
                "recording backup {backup_name} on namespace {ns}: {}",
                chain(&e)
            );
            rec.done("record", at, false, e.clone());
            return Err(e);
        }
    }
    rec.done(
        "record",
        at,
        true,
        format!("the namespaces hold backup {backup_name}"),
    );
    Ok((restored_count, pruned))
}

/// Deletes the plan's labelled objects in the protected namespaces that `in_backup` does
/// not hold (each by its uid: one re-created meanwhile is left).
async fn prune(
    plan: &Plan,
    cluster: &Cluster,
    in_backup: &BTreeSet<ObjectId>,
) -> Result<Vec<String>, String> {
    let (resources, _) = cluster.discover().await.map_err(|e| chain(&e))?;
    let selector = format!("{STANDBY_OF}={}", plan.name);
    let mut labelled: Vec<Labelled> = Vec::new();
    let mut uids = std::collections::BTreeMap::new();
    for r in resources.iter().filter(|r| {
        r.namespaced
            && r.verbs.iter().any(|v| v == "list")
            && r.verbs.iter().any(|v| v == "delete")
            && !LEFT_OUT.contains(&r.group_resource().as_str())
            && r.plural != "events"
    }) {
        for ns in &plan.spec.namespaces {
            let objs = cluster
                .list_json(r, Some(ns), Some(&selector))
                .await
                .map_err(|e| format!("listing {} in {ns}: {}", r.group_resource(), chain(&e)))?;
            for o in objs {
                let name = crate::fence::name_of(&o);
                let uid = o
                    .pointer("/metadata/uid")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let id = (r.group_resource(), ns.clone(), name);
                uids.insert(id.clone(), (r.clone(), uid));
                let owned = o
                    .pointer("/metadata/ownerReferences")
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                labelled.push(Labelled { id, owned });
            }
        }
    }
    let mut done = Vec::new();
    for id in to_prune(&labelled, in_backup) {
        let Some((r, uid)) = uids.get(&id) else {
            continue;
        };
        let (gr, ns, name) = &id;
        cluster
            .delete_if_uid(&collection_path(r, Some(ns)), name, &r.plural, uid)
            .await
            .map_err(|e| format!("deleting {gr} {ns}/{name}: {}", chain(&e)))?;
        done.push(format!("{gr} {ns}/{name}"));
    }
    Ok(done)
}

/// Whether every protected namespace records `backup` as the one it holds.
pub(crate) fn holds_backup(
    namespaces: &[(String, Option<serde_json::Value>)],
    backup: &str,
) -> bool {
    namespaces
        .iter()
        .all(|(_, o)| o.as_ref().and_then(|o| annotation_of(o, STANDBY_BACKUP)) == Some(backup))
}

/// A CronJob a promotion released: namespace, name, and its `original-suspend` value.
pub type Released = (String, String, String);

/// Promotes a warm standby (or a failback's fenced original): its workloads scaled to
/// their kept counts, its held CronJobs released, each protected namespace marked
/// [`PROMOTED`] (a sync will not hold it again). What it released is pushed to
/// `released` as it goes, so that an undo after a failure part-way knows it. Returns what
/// it did; Err names what failed.
pub(crate) async fn promote(
    plan: &Plan,
    cluster: &Cluster,
    dry: bool,
    released: &mut Vec<Released>,
) -> Result<String, String> {
    let mut said = vec![scale_up(plan, cluster, dry).await?];
    if let Some(r) = crate::fence::cronjobs(cluster).await? {
        for ns in &plan.spec.namespaces {
            let all = cluster
                .list_json(&r, Some(ns), None)
                .await
                .map_err(|e| chain(&e))?;
            for c in all {
                let Some(patch) = release_cronjob_patch(&c) else {
                    continue;
                };
                let name = crate::fence::name_of(&c);
                let was = annotation_of(&c, ORIGINAL_SUSPEND)
                    .unwrap_or("false")
                    .to_owned();
                if !dry {
                    cluster
                        .merge_patch(
                            &r,
                            Some(ns),
                            &name,
                            serde_json::to_vec(&patch).unwrap_or_default(),
                        )
                        .await
                        .map_err(|e| format!("releasing CronJob {ns}/{name}: {}", chain(&e)))?;
                    released.push((ns.clone(), name.clone(), was));
                }
                said.push(format!("CronJob {ns}/{name} released"));
            }
        }
    }
    if !dry {
        mark_namespaces(plan, cluster, Some(&Utc::now().to_rfc3339())).await?;
    }
    Ok(said.join(", "))
}

/// Writes (`Some`) or removes (`None`) the [`PROMOTED`] mark on the protected namespaces
/// that exist.
async fn mark_namespaces(plan: &Plan, cluster: &Cluster, at: Option<&str>) -> Result<(), String> {
    let r = v1_resource("", "namespaces", "Namespace", false);
    let patch = serde_json::json!({"metadata": {"annotations": {PROMOTED: at}}});
    for ns in &plan.spec.namespaces {
        if cluster
            .get_path_opt(&namespace_path(ns), "namespaces")
            .await
            .map_err(|e| chain(&e))?
            .is_none()
        {
            continue;
        }
        cluster
            .merge_patch(&r, None, ns, serde_json::to_vec(&patch).unwrap_or_default())
            .await
            .map_err(|e| format!("marking namespace {ns}: {}", chain(&e)))?;
    }
    Ok(())
}

/// Undoes a promotion (a failover's rollback): the workloads back to 0 with their counts
/// kept, the CronJobs it released suspended again as they were, the mark removed.
/// Returns what could not be undone.
pub(crate) async fn hold_again(
    plan: &Plan,
    at: &lifeboat_types::dr::plan::PlanCluster,
    cluster: &Cluster,
    released: &[Released],
) -> Vec<String> {
    let mut left = Vec::new();
    let mut fenced = Vec::new();
    // Its schedules are not the plan's to pause here (`installed: Some(false)`); fencing
    // also suspends every CronJob that runs, released ones included.
    if let Err(e) = crate::fence::fence(plan, at, cluster, Some(false), false, &mut fenced).await {
        left.push(format!(
            "{}'s workloads could not be held again: {e}",
            at.name
        ));
    }
    if let Ok(Some(r)) = crate::fence::cronjobs(cluster).await {
        for (ns, name, was) in released {
            let patch = serde_json::json!({"metadata": {"annotations": {ORIGINAL_SUSPEND: was}}});
            if let Err(e) = cluster
                .merge_patch(
                    &r,
                    Some(ns),
                    name,
                    serde_json::to_vec(&patch).unwrap_or_default(),
                )
                .await
            {
                left.push(format!("CronJob {ns}/{name}: {}", chain(&e)));
            }
        }
    }
    if let Err(e) = mark_namespaces(plan, cluster, None).await {
        left.push(e);
    }
    left
}

/// Runs one sync of the plan's warm standby (see the module's doc).
pub async fn sync(
    plan: &Plan,
    opts: &SyncOptions,
    local: LocalLocations<'_>,
) -> Result<SyncReport, FailoverError> {
    if plan.spec.strategy != Strategy::WarmStandby {
        return Err(refuse(
            plan,
            format!(
                "its strategy is {}: a sync keeps a warm standby (set strategy: warm-standby)",
                plan.spec.strategy
            ),
        ));
    }
    let target = match &opts.on {
        Some(n) => crate::steps::named_cluster(plan, n)?,
        None => plan.standbys().next().unwrap_or(plan.active()),
    };
    if target.active {
        return Err(refuse(
            plan,
            format!(
                "cluster {} is the active cluster: a sync would scale what serves to 0; sync a standby (--on)",
                target.name
            ),
        ));
    }
    let id = opts.id.clone().unwrap_or_else(crate::steps::clock_id);
    lifeboat_types::dr::drill::valid_run_id(&id).map_err(|e| refuse(plan, e))?;
    let started = Utc::now();
    let clock = Instant::now();
    let mut rec = Recorder::default();
    let at = rec.start();
    let t = reach(target, local).await;
    let cluster = t
        .cluster
        .as_ref()
        .map_err(|why| FailoverError::Unreachable {
            plan: plan.name.clone(),
            name: target.name.clone(),
            why: why.clone(),
        })?;
    let found = crate::target::backups(&t, &plan.spec.namespaces).await;
    let Some((location, store, backup, _)) = found
        .chosen()
        .map(|(l, s, b, n)| (l.to_owned(), s.clone(), b.clone(), n))
    else {
        return Err(FailoverError::NoBackup {
            plan: plan.name.clone(),
            name: target.name.clone(),
            namespaces: plan.spec.namespaces.join(", "),
            locations: found.said(),
        });
    };
    let namespaces = held(plan, cluster)
        .await
        .map_err(|why| FailoverError::Unreachable {
            plan: plan.name.clone(),
            name: target.name.clone(),
            why,
        })?;
    let warm = is_warm(plan, &target.name, &namespaces).map_err(|e| refuse(plan, e))?;
    let serving =
        crate::fence::running(plan, cluster)
            .await
            .map_err(|why| FailoverError::Unreachable {
                plan: plan.name.clone(),
                name: target.name.clone(),
                why,
            })?;
    if let Some(first) = serving.first() {
        return Err(refuse(
            plan,
            format!(
                "cluster {} runs {first}: a sync holds workloads at 0, and would stop what serves; scale it to 0 first if it is a standby",
                target.name
            ),
        ));
    }
    let newest = &backup.metadata.name;
    let up_to_date = warm && holds_backup(&namespaces, newest);
    rec.done(
        "assess",
        at,
        true,
        if up_to_date {
            format!(
                "{} holds backup {newest}, the newest: nothing to do",
                target.name
            )
        } else {
            format!(
                "restoring backup {newest} from location {location} held on {}",
                target.name
            )
        },
    );
    let mut report = SyncReport {
        plan: plan.name.clone(),
        cluster: target.name.clone(),
        backup: newest.clone(),
        location,
        started,
        seconds: 0.0,
        outcome: SyncOutcome::UpToDate,
        objects_restored: 0,
        pruned: Vec::new(),
        steps: Vec::new(),
    };
    if !up_to_date {
        let restore_name = lifeboat_types::dr::drill::scratch_namespace(&plan.name, "standby", &id);
        match apply_sync(plan, cluster, &store, &backup, &restore_name, &mut rec).await {
            Ok((n, pruned)) => {
                report.outcome = SyncOutcome::Synced;
                report.objects_restored = n;
                report.pruned = pruned;
            }
            Err(_) => report.outcome = SyncOutcome::Failed,
        }
    }
    report.steps = rec.steps;
    report.seconds = clock.elapsed().as_secs_f64();
    Ok(report)
}

/// `dr sync` as Markdown.
pub fn sync_markdown(r: &SyncReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# DR sync of plan {} on {}: {}\n\nBackup {} from location {}; {} objects created or updated; {} pruned; {:.1}s.\n",
        r.plan,
        r.cluster,
        match r.outcome {
            SyncOutcome::Synced => "SYNCED",
            SyncOutcome::UpToDate => "UP TO DATE",
            SyncOutcome::Failed => "FAILED",
        },
        r.backup,
        r.location,
        r.objects_restored,
        r.pruned.len(),
        r.seconds
    );
    steps_table(&mut out, &r.steps);
    out
}
