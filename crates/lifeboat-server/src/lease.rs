//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection:
//! the holder renews every [`RENEW`] and gives up leading when it could not renew for
//! [`RENEW_DEADLINE`]; a Lease whose record has not changed for [`DURATION`] — timed on
//! the follower's own monotonic clock, as client-go does, so clock skew between nodes
//! does not matter — may be taken. Writes use the object's resourceVersion, so two
//! replicas never both win. `RENEW_DEADLINE < DURATION`: a leader stops before anyone may
//! take over.

use std::time::Duration;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use lifeboat_engine::cluster::ApiErrorKind;
use serde_json::json;

/// The Lease's name.
pub const LEASE_NAME: &str = "lifeboat-server";
/// How long a Lease holds without renewal.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews.
pub const RENEW: Duration = Duration::from_secs(5);
/// How often a follower tries.
pub const RETRY: Duration = Duration::from_secs(2);
/// How long a leader keeps leading without a successful renewal.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How long one Lease request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Clone)]
pub(crate) struct Elector {
    api: Api<DynamicObject>,
    identity: String,
    /// The Lease record last seen (holder, renewTime) and when, on this process's clock.
    observed: std::sync::Arc<std::sync::Mutex<Option<(String, tokio::time::Instant)>>>,
}

fn now_micro() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Elector {
    pub(crate) fn new(client: kube::Client, ns: &str, identity: &str) -> Self {
        let gvk = GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "leases");
        Elector {
            api: Api::namespaced_with(client, ns, &ar),
            identity: identity.to_string(),
            observed: Default::default(),
        }
    }

    /// Takes or renews the Lease; `Ok(true)` when this replica holds it.
    pub(crate) async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = now_micro();
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            let mut obj = DynamicObject::new(LEASE_NAME, &self.ar());
            obj.data = json!({ "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": DURATION.as_secs(),
                "acquireTime": now, "renewTime": now, "leaseTransitions": 0
            }});
            return match self.api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok(true),
                Err(e) if e.is_already_exists() => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.data["spec"].clone();
        let holder = spec["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let duration = spec["leaseDurationSeconds"]
            .as_i64()
            .unwrap_or(DURATION.as_secs() as i64);
        // Expired when the record has not changed for its duration, on our clock.
        let record = format!(
            "{holder}@{}",
            spec["renewTime"].as_str().unwrap_or_default()
        );
        let seen_since = {
            let mut o = self.observed.lock().unwrap_or_else(|e| e.into_inner());
            match &*o {
                Some((r, at)) if *r == record => *at,
                _ => {
                    let now = tokio::time::Instant::now();
                    *o = Some((record, now));
                    now
                }
            }
        };
        let expired = seen_since.elapsed() > Duration::from_secs(duration.max(0) as u64);
        if holder != self.identity && !holder.is_empty() && !expired {
            return Ok(false);
        }
        let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
        let mut new_spec = spec.clone();
        new_spec["holderIdentity"] = json!(self.identity);
        new_spec["leaseDurationSeconds"] = json!(DURATION.as_secs());
        new_spec["renewTime"] = json!(now);
        if holder != self.identity {
            new_spec["acquireTime"] = json!(now);
            new_spec["leaseTransitions"] = json!(transitions + 1);
        }
        lease.data["spec"] = new_spec;
        match self
            .api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (on shutdown) so that a standby takes over at once.
    pub(crate) async fn release(&self) -> Result<(), kube::Error> {
        if let Some(mut lease) = self.api.get_opt(LEASE_NAME).await?
            && lease.data["spec"]["holderIdentity"].as_str() == Some(self.identity.as_str())
        {
            lease.data["spec"]["holderIdentity"] = json!("");
            lease.data["spec"]["leaseDurationSeconds"] = json!(1);
            self.api
                .replace(LEASE_NAME, &PostParams::default(), &lease)
                .await?;
        }
        Ok(())
    }

    fn ar(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"),
            "leases",
        )
    }
}
