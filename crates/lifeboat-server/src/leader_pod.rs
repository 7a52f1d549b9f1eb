//! The leader's pod carries the label `lifeboat.dev/role=leader`, and the metrics Service
//! selects it: with several replicas, a scrape through the Service reaches the replica
//! whose counters move (a follower's are all zero, and a scrape that alternated between
//! them would look like counter resets). The leader labels its own pod when it takes the
//! Lease and takes the label off any other pod (a leader that lost the Lease without
//! stopping, say); it takes its own off when it steps down. A server that does not run in
//! a pod (no POD_NAME) labels nothing. Failures are warnings: leading does not depend on
//! the label, and the leader tries again ([`keep_marked`]) until its own pod is labelled.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};

/// The label.
pub const ROLE_LABEL: &str = "lifeboat.dev/role";

fn patch(value: Option<&str>) -> Patch<serde_json::Value> {
    Patch::Merge(serde_json::json!({"metadata": {"labels": {ROLE_LABEL: value}}}))
}

/// The pods other than `own` that still say they lead.
pub(crate) fn stale<'a>(labelled: &'a [String], own: &str) -> Vec<&'a String> {
    labelled.iter().filter(|p| p.as_str() != own).collect()
}

/// Labels `own` leader and then unlabels every other pod of the namespace, trying again
/// every `retry` until both are done: a refused or lost request (an API server under
/// load) would otherwise leave the Service without the leader for as long as it leads.
/// Runs until done; the caller drops it when it stops leading.
pub(crate) async fn keep_marked(client: kube::Client, ns: String, own: String, retry: Duration) {
    while !mark(&client, &ns, &own).await {
        tokio::time::sleep(retry).await;
    }
}

/// Labels `own` leader and unlabels every other pod of the namespace; `true` when all of
/// it was done.
async fn mark(client: &kube::Client, ns: &str, own: &str) -> bool {
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    if let Err(e) = api
        .patch(own, &PatchParams::default(), &patch(Some("leader")))
        .await
    {
        tracing::warn!("labelling pod {ns}/{own} {ROLE_LABEL}=leader (trying again): {e}");
        return false;
    }
    let listed = match api
        .list(&ListParams::default().labels(&format!("{ROLE_LABEL}=leader")))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("listing pods labelled {ROLE_LABEL}=leader in {ns} (trying again): {e}");
            return false;
        }
    };
    let names: Vec<String> = listed
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let mut done = true;
    for other in stale(&names, own) {
        match api
            .patch(other, &PatchParams::default(), &patch(None))
            .await
        {
            Ok(_) => {}
            // A pod gone meanwhile carries no label.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!("removing {ROLE_LABEL} from pod {ns}/{other} (trying again): {e}");
                done = false;
            }
        }
    }
    done
}

/// Takes the label off `own`.
pub(crate) async fn unmark(client: &kube::Client, ns: &str, own: &str) {
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    if let Err(e) = api.patch(own, &PatchParams::default(), &patch(None)).await {
        tracing::warn!("removing {ROLE_LABEL} from pod {ns}/{own}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_pods_are_stale() {
        let labelled = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(stale(&labelled, "b"), vec!["a", "c"]);
        assert!(stale(&["b".to_string()], "b").is_empty());
        assert!(stale(&[], "b").is_empty());
    }
}
