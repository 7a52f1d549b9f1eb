//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection:
//! the holder renews every [`RENEW`] and gives up leading when it could not renew for
//! [`RENEW_DEADLINE`]; a Lease whose record has not changed for [`DURATION`] — timed on
//! the follower's own monotonic clock, as client-go does, so clock skew between nodes
//! does not matter — may be taken. Writes use the object's resourceVersion, so two
//! replicas never both win.
//!
//! A leader stops before anyone may take over: its renew deadline counts from the *start*
//! of its last successful attempt (the record it wrote cannot have been seen earlier), each
//! attempt is bounded by the time left before that deadline ([`renew_budget`]), and the
//! controllers stop when it passes. A follower waits [`DURATION`] from when it saw the
//! record, so `RENEW_DEADLINE + REQUEST_TIMEOUT < DURATION` leaves a write the old leader
//! had in flight when it stopped time to land before the new leader starts.

use std::time::Duration;

use tokio::time::Instant;

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
/// How long one Lease request may take at most (less when the renew deadline is nearer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// How long the leader's next renew attempt may take: the time left before the renew
/// deadline (`last_success`, the start of the last attempt that renewed, plus
/// [`RENEW_DEADLINE`]), at most [`REQUEST_TIMEOUT`]; `None` once the deadline has come:
/// the leader steps down.
pub(crate) fn renew_budget(last_success: Instant, now: Instant) -> Option<Duration> {
    let left = (last_success + RENEW_DEADLINE).saturating_duration_since(now);
    (!left.is_zero()).then(|| left.min(REQUEST_TIMEOUT))
}

/// When the leader tries next, after an attempt that started at `attempt` and renewed or
/// not: [`RENEW`] after a renewal, [`RETRY`] after a failure — never after the renew
/// deadline, so that the leader steps down on time.
pub(crate) fn next_attempt(last_success: Instant, attempt: Instant, renewed: bool) -> Instant {
    let wait = if renewed { RENEW } else { RETRY };
    (attempt + wait).min(last_success + RENEW_DEADLINE)
}

#[derive(Clone)]
pub(crate) struct Elector {
    api: Api<DynamicObject>,
    identity: String,
    /// The Lease record last seen (holder, renewTime) and when, on this process's clock.
    observed: std::sync::Arc<std::sync::Mutex<Option<(String, Instant)>>>,
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
                    let now = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const S: Duration = Duration::from_secs(1);

    /// Issue 11, item 7 (leadership without overlap): a follower may take over
    /// [`DURATION`] after it saw the leader's last record, which is no earlier than the
    /// start of the attempt that wrote it; the leader stops [`RENEW_DEADLINE`] after that
    /// start, and a write it had in flight then has [`REQUEST_TIMEOUT`] to land.
    #[test]
    fn a_leader_stops_with_a_margin_before_a_follower_may_take_over() {
        assert!(RENEW_DEADLINE + REQUEST_TIMEOUT < DURATION);
        // Renewals well inside the deadline: a failed renewal is retried more than once.
        assert!(RENEW + REQUEST_TIMEOUT < RENEW_DEADLINE);
        assert!(RENEW + 2 * RETRY < RENEW_DEADLINE);
    }

    /// Issue 11, item 7: each renew attempt is bounded by the time left before the renew
    /// deadline (a fixed 4 s timeout let an attempt started at 9 s end at 13 s, and the
    /// leader, checking only after its 5 s sleep, stepped down at 18 s — after a follower
    /// could take over at 15 s).
    #[rstest]
    #[case::just_renewed(0, Some(4_000))]
    #[case::well_before(5_000, Some(4_000))]
    #[case::deadline_nearer_than_a_request(7_500, Some(2_500))]
    #[case::deadline_nearly_there(9_999, Some(1))]
    #[case::deadline_reached(10_000, None)]
    #[case::deadline_passed(18_000, None)]
    fn renew_attempts_end_by_the_deadline(#[case] since_ms: u64, #[case] budget_ms: Option<u64>) {
        let last = Instant::now();
        let now = last + Duration::from_millis(since_ms);
        assert_eq!(
            renew_budget(last, now),
            budget_ms.map(Duration::from_millis)
        );
    }

    /// Issue 11, item 7: the leader renews every 5 s, retries a failure after 2 s, and
    /// never sleeps past its renew deadline (it wakes up to step down on time).
    #[rstest]
    #[case::renewed(0, true, 5)]
    #[case::failed_first_time(5, false, 7)]
    #[case::failed_again(7, false, 9)]
    #[case::failed_near_the_deadline(9, false, 10)]
    fn the_next_attempt(#[case] attempt_s: u32, #[case] renewed: bool, #[case] next_s: u32) {
        let last = Instant::now();
        assert_eq!(
            next_attempt(last, last + S * attempt_s, renewed),
            last + S * next_s
        );
    }
}
