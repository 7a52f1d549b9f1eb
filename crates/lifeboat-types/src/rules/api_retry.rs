//! Whether a failed API server request is tried again, and after how long (issue 12,
//! item 1): the one rule behind every request lifeboat sends to an API server.
//!
//! - **What is transient.** 429, 500, 502, 503 and 504 answers, a connection reset or a
//!   timeout. A 500 is what a real API server answers during an etcd leader change or
//!   an etcd timeout; one such answer must not cost a backup. Every other answer (a
//!   refusal, a 404, a 409, a 410 Expired, which has its own rule in
//!   [`super::list_resume`]) is the caller's to read.
//! - **How long.** Per request, waits by the request's [`Backoff`] policy
//!   ([`Backoff::API`] for most, [`Backoff::DISCOVERY`] for discovery), with jitter; a
//!   `Retry-After` the server sent (header or the Status's `retryAfterSeconds`) is
//!   honoured when longer, up to [`RETRY_AFTER_CAP`].
//! - **Within a budget.** Retries spend from a [`RetryBudget`] shared by everything one
//!   connection sends: each request earns a fraction of a retry, so a server that fails
//!   now and then is retried as often as needed, and one that fails most of the time is
//!   not hammered — requests then fail at once, saying how often the server failed.
//! - **A server not yet seen.** A connection refused before the API server ever answered
//!   is a wrong address or a server that is down, and fails at once; after the server
//!   has answered, it is a server restarting, and is retried.
//! - **A ServiceAccount token not made yet.** A pod created in a namespace made moments
//!   ago is refused with 500 ServerTimeout until the token controller made the
//!   namespace's ServiceAccount token (clusters before 1.24). That is a wait, not a
//!   failing server: it follows [`Backoff::TOKEN_WAIT`], for minutes, and spends no
//!   budget.

use std::time::Duration;

use super::backoff::Backoff;

/// The longest `Retry-After` honoured: a server asking for more is retried sooner.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

/// What the API server's ServiceAccount admission says while a namespace's token does not
/// exist yet (kube-apiserver's `serviceaccount` admission plugin, before 1.24).
const TOKEN_PENDING: &str = "No API token found for service account";

/// How a request failed, as far as the rule needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// The server answered with this status.
    Status {
        /// The HTTP status code.
        code: u16,
        /// The Status's reason (`""` when the answer was no Status).
        reason: &'a str,
        /// The Status's message.
        message: &'a str,
        /// How long the server asked to wait (`Retry-After`, or the Status's
        /// `details.retryAfterSeconds`).
        retry_after: Option<Duration>,
    },
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The connection broke or timed out after it was made (a reset, a read timeout, a
    /// body cut short).
    Broken,
}

/// Why a request is not tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The answer is not a transient one: the caller reads it.
    NotTransient,
    /// The request's own retries are spent.
    Retries,
    /// The connection's retry budget is spent: the server fails too often.
    Budget,
}

/// Which wait a transient failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The server failed for a moment: the request's policy, from the budget.
    Transient,
    /// A pod waits for its namespace's ServiceAccount token: [`Backoff::TOKEN_WAIT`],
    /// outside the budget.
    TokenPending,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wait this long, then send the request again.
    Retry {
        /// The wait.
        wait: Duration,
        /// Which wait it is (a token wait spends no budget).
        class: Class,
    },
    /// Give up: the failure is the request's result.
    Stop(Stop),
}

/// Which failures may be tried again, and which wait they call for; `None` when the
/// failure is the caller's to read. `answered_before`: whether the API server has answered
/// anything on this connection (a refused connection then means a restart).
pub fn classify(failure: &Failure<'_>, answered_before: bool) -> Option<Class> {
    match *failure {
        Failure::Status {
            code: 500,
            reason: "ServerTimeout",
            message,
            ..
        } if message.contains(TOKEN_PENDING) => Some(Class::TokenPending),
        Failure::Status { code, .. } => {
            matches!(code, 429 | 500 | 502 | 503 | 504).then_some(Class::Transient)
        }
        Failure::Broken => Some(Class::Transient),
        Failure::Connect => answered_before.then_some(Class::Transient),
    }
}

/// Decides after a failure. `retries`: how many times this request was tried again
/// already; `token_retries`: how many of those were token waits; `budget_left`: whether
/// the connection's budget holds a retry; `jitter`: a random number in `[0, 1)`, the
/// part of the wait added when the policy has jitter.
pub fn decide(
    policy: &Backoff,
    failure: &Failure<'_>,
    answered_before: bool,
    retries: u32,
    token_retries: u32,
    budget_left: bool,
    jitter: f64,
) -> Verdict {
    let Some(class) = classify(failure, answered_before) else {
        return Verdict::Stop(Stop::NotTransient);
    };
    let (policy, done) = match class {
        Class::TokenPending => (&Backoff::TOKEN_WAIT, token_retries),
        Class::Transient => (policy, retries.saturating_sub(token_retries)),
    };
    if policy.retries.is_some_and(|n| done as usize >= n) {
        return Verdict::Stop(Stop::Retries);
    }
    if class == Class::Transient && !budget_left {
        return Verdict::Stop(Stop::Budget);
    }
    let base = policy.delay(done.saturating_add(1));
    let base = if policy.jitter {
        base.saturating_add(base.mul_f64(jitter.clamp(0.0, 1.0)))
    } else {
        base
    };
    let asked = match failure {
        Failure::Status {
            retry_after: Some(d),
            ..
        } => (*d).min(RETRY_AFTER_CAP),
        _ => Duration::ZERO,
    };
    Verdict::Retry {
        wait: base.max(asked),
        class,
    }
}

/// A token bucket of retries shared by every request of one connection (Finagle's and
/// gRPC's retry budgets): it starts with `reserve` retries, each request sent earns
/// `per_request` of one (in thousandths), at most `cap` retries are kept, and each retry
/// spends one. A server failing less often than `per_request` is retried without end; one
/// failing more often is retried until the reserve is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryBudget {
    /// In thousandths of a retry.
    balance: u64,
    per_request: u64,
    cap: u64,
}

impl RetryBudget {
    /// The API server budget: 100 retries in reserve, a fifth of a retry earned per
    /// request, at most 1,000 kept. At 10% of requests failing it never runs dry; a
    /// server failing every request exhausts it after about 125 requests.
    pub const fn api() -> RetryBudget {
        RetryBudget::new(100, 200, 1_000)
    }

    /// `reserve` retries to start with, `per_request` thousandths of one earned by each
    /// request, at most `cap` retries kept.
    pub const fn new(reserve: u64, per_request: u64, cap: u64) -> RetryBudget {
        RetryBudget {
            balance: reserve.saturating_mul(1000),
            per_request,
            cap: cap.saturating_mul(1000),
        }
    }

    /// A request is being sent (its first try).
    pub fn earn(&mut self) {
        self.balance = self.balance.saturating_add(self.per_request).min(self.cap);
    }

    /// Whether a retry is left (without spending it).
    pub fn has_retry(&self) -> bool {
        self.balance >= 1000
    }

    /// Spends one retry; `false` when none is left.
    pub fn spend(&mut self) -> bool {
        if self.has_retry() {
            self.balance -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn status(code: u16, reason: &'static str) -> Failure<'static> {
        Failure::Status {
            code,
            reason,
            message: "",
            retry_after: None,
        }
    }

    const TOKEN: Failure<'static> = Failure::Status {
        code: 500,
        reason: "ServerTimeout",
        message: "No API token found for service account \"default\", retry after the token is automatically created and added to the service account",
        retry_after: Some(Duration::from_secs(1)),
    };

    #[rstest]
    #[case::too_many_requests(status(429, "TooManyRequests"), Some(Class::Transient))]
    #[case::internal_error(status(500, "InternalError"), Some(Class::Transient))]
    #[case::bad_gateway(status(502, ""), Some(Class::Transient))]
    #[case::unavailable(status(503, "ServiceUnavailable"), Some(Class::Transient))]
    #[case::gateway_timeout(status(504, "Timeout"), Some(Class::Transient))]
    #[case::token_pending(TOKEN, Some(Class::TokenPending))]
    #[case::other_server_timeout(status(500, "ServerTimeout"), Some(Class::Transient))]
    #[case::broken_connection(Failure::Broken, Some(Class::Transient))]
    #[case::not_found(status(404, "NotFound"), None)]
    #[case::forbidden(status(403, "Forbidden"), None)]
    #[case::conflict(status(409, "Conflict"), None)]
    #[case::already_exists(status(409, "AlreadyExists"), None)]
    #[case::expired_continue_token(status(410, "Expired"), None)]
    #[case::invalid(status(422, "Invalid"), None)]
    #[case::not_implemented(status(501, ""), None)]
    fn which_failures_are_tried_again(#[case] f: Failure<'static>, #[case] class: Option<Class>) {
        assert_eq!(classify(&f, true), class);
    }

    #[rstest]
    #[case::never_answered(false, None)]
    #[case::answered_before(true, Some(Class::Transient))]
    fn a_refused_connection_is_retried_only_once_the_server_was_seen(
        #[case] answered: bool,
        #[case] class: Option<Class>,
    ) {
        assert_eq!(classify(&Failure::Connect, answered), class);
    }

    fn wait(v: Verdict) -> Duration {
        match v {
            Verdict::Retry { wait, .. } => wait,
            Verdict::Stop(s) => panic!("stopped: {s:?}"),
        }
    }

    #[test]
    fn transient_failures_wait_by_the_policy_then_stop() {
        let f = status(500, "InternalError");
        let waits: Vec<u64> = (0..8)
            .map(|n| wait(decide(&Backoff::API, &f, true, n, 0, true, 0.0)).as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(
            decide(&Backoff::API, &f, true, 8, 0, true, 0.0),
            Verdict::Stop(Stop::Retries)
        );
    }

    #[rstest]
    #[case::none(0.0, 1000)]
    #[case::half(0.5, 1500)]
    #[case::out_of_range(7.0, 2000)]
    fn jitter_adds_up_to_the_wait_itself(#[case] jitter: f64, #[case] ms: u64) {
        let f = status(503, "ServiceUnavailable");
        assert_eq!(
            wait(decide(&Backoff::API, &f, true, 2, 0, true, jitter)),
            Duration::from_millis(ms)
        );
    }

    #[rstest]
    #[case::longer_than_the_backoff(Some(5), 5000)]
    #[case::shorter_than_the_backoff(Some(0), 250)]
    #[case::capped(Some(3600), 30_000)]
    #[case::none(None, 250)]
    fn retry_after_is_honoured_when_longer(#[case] secs: Option<u64>, #[case] ms: u64) {
        let f = Failure::Status {
            code: 429,
            reason: "TooManyRequests",
            message: "",
            retry_after: secs.map(Duration::from_secs),
        };
        assert_eq!(
            wait(decide(&Backoff::API, &f, true, 0, 0, true, 0.0)),
            Duration::from_millis(ms)
        );
    }

    #[test]
    fn an_empty_budget_stops_transient_retries_but_not_token_waits() {
        let f = status(500, "InternalError");
        assert_eq!(
            decide(&Backoff::API, &f, true, 0, 0, false, 0.0),
            Verdict::Stop(Stop::Budget)
        );
        assert!(matches!(
            decide(&Backoff::API, &TOKEN, true, 0, 0, false, 0.0),
            Verdict::Retry {
                class: Class::TokenPending,
                ..
            }
        ));
    }

    #[test]
    fn token_waits_last_minutes_and_do_not_use_up_the_requests_retries() {
        let total: Duration = (0..)
            .map_while(
                |n| match decide(&Backoff::API, &TOKEN, true, n, n, true, 0.0) {
                    Verdict::Retry { wait, .. } => Some(wait),
                    Verdict::Stop(_) => None,
                },
            )
            .sum();
        assert!(
            total >= Duration::from_secs(180) && total <= Duration::from_secs(300),
            "{total:?}"
        );
        // After 20 token waits, a 500 of another kind still has all its retries.
        let f = status(500, "InternalError");
        assert_eq!(
            wait(decide(&Backoff::API, &f, true, 20, 20, true, 0.0)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn discovery_keeps_its_short_policy() {
        let f = status(503, "ServiceUnavailable");
        assert_eq!(
            decide(&Backoff::DISCOVERY, &f, true, 5, 0, true, 0.0),
            Verdict::Stop(Stop::Retries)
        );
    }

    #[test]
    fn the_budget_starts_with_its_reserve_and_earns_per_request() {
        let mut b = RetryBudget::new(2, 500, 3);
        assert!(b.spend() && b.spend());
        assert!(!b.spend(), "the reserve is spent");
        b.earn();
        assert!(!b.has_retry(), "half a retry");
        b.earn();
        assert!(b.spend());
        for _ in 0..100 {
            b.earn();
        }
        assert!(b.spend() && b.spend() && b.spend());
        assert!(!b.spend(), "at most `cap` retries are kept");
    }

    #[test]
    fn the_api_budget_outlasts_ten_percent_failures() {
        // 100,000 requests of which every tenth fails once and is retried.
        let mut b = RetryBudget::api();
        for n in 0..100_000 {
            b.earn();
            if n % 10 == 0 {
                assert!(b.spend(), "budget ran dry at request {n}");
            }
        }
        // A server that fails every request exhausts it.
        let mut b = RetryBudget::api();
        let spent = (0..10_000)
            .take_while(|_| {
                b.earn();
                b.spend()
            })
            .count();
        assert!((100..200).contains(&spent), "{spent}");
    }
}
