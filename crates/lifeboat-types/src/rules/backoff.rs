//! The one backoff policy of every retry loop: how long to wait before trying again
//! something that failed for a moment (a transient API server or object-store error).
//!
//! Waits grow from `initial` by `factor` up to `max`. Where loops differ, they differ in
//! these parameters only, and each named policy below says why. The waits are computed
//! here (pure, exact); [`Backoff::builder`] hands the same policy to `backon` (the async
//! retry loops) and its parameters go to OpenDAL's retry layer.

use std::time::Duration;

/// A backoff policy: waits of `initial`, `initial * factor`, ... at most `max`, for at most
/// `retries` tries after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub initial: Duration,
    /// Each wait is the previous one times this.
    pub factor: u32,
    /// No wait is longer than this.
    pub max: Duration,
    /// Tries after the first one; `None` when the caller decides when to stop (a
    /// controller requeues a failed object for as long as it exists).
    pub retries: Option<usize>,
    /// Adds a random part (up to the wait itself) to each wait, so that clients that
    /// failed together do not come back together. The computed waits ([`Backoff::delay`])
    /// are always without it.
    pub jitter: bool,
}

impl Backoff {
    /// An API server request that failed for a moment (429, 5xx, a broken connection:
    /// `rules::api_retry`): 0.25 s doubling to 8 s, 8 retries (about 32 s), with jitter —
    /// enough to ride out an etcd leader change or an API server restart, and the
    /// requests of a parallel LIST or restore that failed together do not come back
    /// together.
    pub const API: Backoff = Backoff {
        initial: Duration::from_millis(250),
        factor: 2,
        max: Duration::from_secs(8),
        retries: Some(8),
        jitter: true,
    };

    /// A pod created in a namespace made a moment ago, refused until the token controller
    /// made the namespace's ServiceAccount token (500 ServerTimeout, clusters before
    /// 1.24): 1 s doubling to 5 s, 45 retries (about 3.6 minutes). With hundreds of
    /// namespaces restored at once on a small control plane the token controller lags by
    /// minutes, not seconds.
    pub const TOKEN_WAIT: Backoff = Backoff {
        initial: Duration::from_secs(1),
        factor: 2,
        max: Duration::from_secs(5),
        retries: Some(45),
        jitter: false,
    };

    /// A status write that failed for a moment (an API server restart, a timeout):
    /// 0.5 s doubling to 2 s, 4 retries (5.5 s). A lost terminal status would make a
    /// stored backup look orphaned, but a reconcile must not hang on a dead API server.
    pub const STATUS_WRITE: Backoff = Backoff {
        initial: Duration::from_millis(500),
        factor: 2,
        max: Duration::from_secs(2),
        retries: Some(4),
        jitter: false,
    };

    /// The discovery of one group version that failed for a moment: 0.25 s doubling to
    /// 1 s, 5 retries (3.75 s). An aggregated API whose service is down answers 503 for
    /// as long as it is down; [`Backoff::API`] would hold every backup and restore half
    /// a minute on it before the run records the group as an error. Five retries still
    /// ride out a server that fails one request in ten (one group version in a million
    /// lost).
    pub const DISCOVERY: Backoff = Backoff {
        initial: Duration::from_millis(250),
        factor: 2,
        max: Duration::from_secs(1),
        retries: Some(5),
        jitter: false,
    };

    /// A failed reconcile, requeued by the controller: 5 s doubling to 5 minutes, with no
    /// end — a broken object does not hammer the API server, a fixed one is seen soon.
    pub const RECONCILE: Backoff = Backoff {
        initial: Duration::from_secs(5),
        factor: 2,
        max: Duration::from_secs(300),
        retries: None,
        jitter: false,
    };

    /// Object-store requests that failed with a temporary error (OpenDAL's retry layer):
    /// 0.2 s doubling to 10 s, 5 retries, with jitter — the parts of an upload fail
    /// together on a store's hiccup and should not all come back at once.
    pub const STORAGE: Backoff = Backoff {
        initial: Duration::from_millis(200),
        factor: 2,
        max: Duration::from_secs(10),
        retries: Some(5),
        jitter: true,
    };

    /// The wait before retry number `retry` (1 for the first retry), without jitter:
    /// `initial * factor^(retry - 1)`, at most `max`. Saturates; never panics.
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1);
        let grown = self
            .factor
            .checked_pow(exponent)
            .and_then(|f| self.initial.checked_mul(f));
        match grown {
            Some(d) => d.min(self.max),
            None => self.max.max(self.initial),
        }
    }

    /// Every wait of the policy in order, without jitter (endless when `retries` is
    /// `None`).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        (1..)
            .take(self.retries.unwrap_or(usize::MAX))
            .map(|n| self.delay(n))
    }

    /// The policy as a `backon` builder, for async retry loops
    /// (`backon::Retryable::retry`). Its waits are [`Backoff::delays`] (plus jitter when
    /// the policy has it).
    pub fn builder(&self) -> backon::ExponentialBuilder {
        let b = backon::ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_factor(self.factor as f32)
            .with_max_delay(self.max);
        let b = match self.retries {
            Some(n) => b.with_max_times(n),
            None => b.without_max_times(),
        };
        if self.jitter { b.with_jitter() } else { b }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;
    use rstest::rstest;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[rstest]
    #[case::api(Backoff::API, &[250, 500, 1000, 2000, 4000, 8000, 8000, 8000])]
    #[case::status_write(Backoff::STATUS_WRITE, &[500, 1000, 2000, 2000])]
    #[case::storage(Backoff::STORAGE, &[200, 400, 800, 1600, 3200])]
    #[case::discovery(Backoff::DISCOVERY, &[250, 500, 1000, 1000, 1000])]
    fn bounded_policies_wait_these_times(#[case] policy: Backoff, #[case] waits: &[u64]) {
        assert_eq!(policy.delays().collect::<Vec<_>>(), ms(waits));
    }

    #[test]
    fn reconcile_requeues_back_off_to_five_minutes_and_never_end() {
        let secs: Vec<u64> = (1..=9)
            .map(|n| Backoff::RECONCILE.delay(n).as_secs())
            .collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(
            Backoff::RECONCILE.delays().nth(1000),
            Some(Duration::from_secs(300))
        );
    }

    #[rstest]
    #[case::zeroth_is_the_first(0, 5)]
    #[case::overflowing_factor(64, 300)]
    #[case::largest(u32::MAX, 300)]
    fn delays_saturate_and_never_panic(#[case] retry: u32, #[case] secs: u64) {
        assert_eq!(Backoff::RECONCILE.delay(retry), Duration::from_secs(secs));
    }

    #[rstest]
    #[case(Backoff::TOKEN_WAIT)]
    #[case(Backoff::STATUS_WRITE)]
    #[case(Backoff::DISCOVERY)]
    fn the_backon_builder_waits_the_same(#[case] policy: Backoff) {
        let theirs: Vec<Duration> = policy.builder().build().collect();
        assert_eq!(theirs, policy.delays().collect::<Vec<_>>());
    }

    #[test]
    fn jitter_only_adds() {
        let waits: Vec<Duration> = Backoff::STORAGE.builder().build().collect();
        assert_eq!(waits.len(), 5);
        for (w, exact) in waits.iter().zip(Backoff::STORAGE.delays()) {
            assert!(*w >= exact && *w <= exact * 2, "{w:?} vs {exact:?}");
        }
    }
}
