//! Whether a restored workload serves again: a Deployment Available with every replica
//! updated and available, a StatefulSet with every replica ready, a DaemonSet ready on
//! every node it should run on — each only once its controller has seen the restored
//! spec (observedGeneration). `restore create --wait-ready` waits on this.

use serde_json::Value;

/// The restored resources `--wait-ready` waits for, with their kind (all apps/v1).
pub const WORKLOADS: &[(&str, &str)] = &[
    ("deployments.apps", "Deployment"),
    ("statefulsets.apps", "StatefulSet"),
    ("daemonsets.apps", "DaemonSet"),
];

/// What a workload's status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Serving.
    Ready,
    /// Not yet, and why ("1/3 replicas available").
    Waiting(String),
}

fn int(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_i64()
}

/// The readiness of `obj`, an object of `resource` (one of [`WORKLOADS`]).
pub fn readiness(resource: &str, obj: &Value) -> Readiness {
    let generation = int(obj, &["metadata", "generation"]).unwrap_or(0);
    let observed = int(obj, &["status", "observedGeneration"]).unwrap_or(0);
    if observed < generation {
        return Readiness::Waiting("its controller has not seen the restored spec yet".into());
    }
    let status = |f: &str| int(obj, &["status", f]).unwrap_or(0);
    match resource {
        "deployments.apps" => {
            let want = int(obj, &["spec", "replicas"]).unwrap_or(1);
            let (updated, available) = (status("updatedReplicas"), status("availableReplicas"));
            let condition = obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
                .map(|c| c["status"] == "True");
            if want == 0 || (updated >= want && available >= want && condition != Some(false)) {
                Readiness::Ready
            } else {
                Readiness::Waiting(format!(
                    "{available}/{want} replicas available, {updated} updated"
                ))
            }
        }
        "statefulsets.apps" => {
            let want = int(obj, &["spec", "replicas"]).unwrap_or(1);
            let ready = status("readyReplicas");
            if ready >= want {
                Readiness::Ready
            } else {
                Readiness::Waiting(format!("{ready}/{want} replicas ready"))
            }
        }
        "daemonsets.apps" => {
            let want = status("desiredNumberScheduled");
            let ready = status("numberReady");
            if ready >= want {
                Readiness::Ready
            } else {
                Readiness::Waiting(format!("{ready}/{want} scheduled pods ready"))
            }
        }
        other => Readiness::Waiting(format!("{other} is not a workload")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case::available(json!({"metadata":{"generation":1},"spec":{"replicas":2},"status":{"observedGeneration":1,"updatedReplicas":2,"availableReplicas":2,"conditions":[{"type":"Available","status":"True"}]}}), None)]
    #[case::replicas_default_to_one(json!({"metadata":{"generation":1},"spec":{},"status":{"observedGeneration":1,"updatedReplicas":1,"availableReplicas":1}}), None)]
    #[case::scaled_to_zero(json!({"metadata":{"generation":1},"spec":{"replicas":0},"status":{"observedGeneration":1}}), None)]
    #[case::some_available(json!({"metadata":{"generation":1},"spec":{"replicas":3},"status":{"observedGeneration":1,"updatedReplicas":3,"availableReplicas":1}}), Some("1/3 replicas available, 3 updated"))]
    #[case::not_observed(json!({"metadata":{"generation":2},"spec":{"replicas":1},"status":{"observedGeneration":1,"updatedReplicas":1,"availableReplicas":1}}), Some("its controller has not seen the restored spec yet"))]
    #[case::fresh_object_without_status(json!({"metadata":{"generation":1},"spec":{"replicas":1}}), Some("its controller has not seen the restored spec yet"))]
    #[case::available_false(json!({"metadata":{"generation":1},"spec":{"replicas":1},"status":{"observedGeneration":1,"updatedReplicas":1,"availableReplicas":1,"conditions":[{"type":"Available","status":"False"}]}}), Some("1/1 replicas available, 1 updated"))]
    fn deployments(#[case] obj: Value, #[case] waiting: Option<&str>) {
        let want = waiting.map_or(Readiness::Ready, |w| Readiness::Waiting(w.into()));
        assert_eq!(readiness("deployments.apps", &obj), want);
    }

    #[rstest]
    #[case::ready(json!({"metadata":{"generation":1},"spec":{"replicas":2},"status":{"observedGeneration":1,"readyReplicas":2}}), None)]
    #[case::not_ready(json!({"metadata":{"generation":1},"spec":{"replicas":2},"status":{"observedGeneration":1,"readyReplicas":1}}), Some("1/2 replicas ready"))]
    fn statefulsets(#[case] obj: Value, #[case] waiting: Option<&str>) {
        let want = waiting.map_or(Readiness::Ready, |w| Readiness::Waiting(w.into()));
        assert_eq!(readiness("statefulsets.apps", &obj), want);
    }

    #[rstest]
    #[case::ready(json!({"metadata":{"generation":1},"status":{"observedGeneration":1,"desiredNumberScheduled":1,"numberReady":1}}), None)]
    #[case::not_ready(json!({"metadata":{"generation":1},"status":{"observedGeneration":1,"desiredNumberScheduled":2,"numberReady":0}}), Some("0/2 scheduled pods ready"))]
    fn daemonsets(#[case] obj: Value, #[case] waiting: Option<&str>) {
        let want = waiting.map_or(Readiness::Ready, |w| Readiness::Waiting(w.into()));
        assert_eq!(readiness("daemonsets.apps", &obj), want);
    }
}
