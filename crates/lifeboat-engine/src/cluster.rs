//! Talking to the API server: connecting from a kubeconfig, discovery, paginated LISTs
//! returned as raw JSON (so that no field of any object is lost or re-encoded), GETs and
//! permission checks.
//!
//! Every request is sent by one retry loop ([`Cluster`]'s `send_with`) that follows
//! `types::rules::api_retry`: 429, 5xx, broken connections and timeouts are tried again
//! with backoff and jitter (honouring Retry-After) within a budget shared by the
//! connection, and a request that keeps failing ends as [`ClusterError::KeptFailing`],
//! saying how often. What an error means (not found, conflict, transient) is answered by
//! [`ApiErrorKind`].

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use http_body_util::BodyExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use lifeboat_types::plan::backup::ApiResource;
use lifeboat_types::rules::api_retry::{self, Class, Failure, RetryBudget, Stop, Verdict};
use lifeboat_types::rules::backoff::Backoff;
use lifeboat_types::rules::list_resume::{ListFailure, ListPager, ListResume, list_key};
use serde::Deserialize;

/// Errors talking to the API server. Each message names the server or object and the fix;
/// the cause is the error's source (render the whole chain with [`crate::error::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig could be loaded.
    #[error(
        "cannot load a kubeconfig{}",
        path.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default()
    )]
    Kubeconfig {
        /// The file, when one was named.
        path: Option<PathBuf>,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The API server did not answer.
    #[error("cannot reach the API server at {server}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The transport error.
        #[source]
        source: kube::Error,
    },
    /// The credentials were rejected.
    #[error(
        "the API server at {server} rejected the credentials (401 Unauthorized); refresh the token or certificate in the kubeconfig"
    )]
    Unauthorized {
        /// The server URL.
        server: String,
    },
    /// RBAC forbids an operation.
    #[error("forbidden: cannot {verb} {resource}{}: {message}; {}",
        namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default(),
        lifeboat_types::manifests::rbac::forbidden_fix(verb, group.as_deref(), resource))]
    Forbidden {
        /// The verb (`list`, `get`).
        verb: String,
        /// The resource (`secrets`, `deployments.apps`).
        resource: String,
        /// Its API group (`""` for core), when known: the fix names it.
        group: Option<String>,
        /// The namespace, if any.
        namespace: Option<String>,
        /// The server's message.
        message: String,
    },
    /// Any other answer from the API server.
    #[error("API server error on {what}")]
    Api {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// A request failed for a moment and again, until its retries or the connection's
    /// retry budget (`types::rules::api_retry`) were spent.
    #[error(transparent)]
    KeptFailing(Box<KeptFailing>),
    /// The server's answer was not what the API promises.
    #[error("unexpected answer from the API server on {what}")]
    Decode {
        /// What was being done.
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// A request the API server kept failing: which, how often, and how the connection
/// fared.
#[derive(Debug, thiserror::Error)]
#[error(
    "the API server at {server} kept failing: {what} failed {tries} times in {secs} s{}; {retried} of the {requests} requests sent so far had to be tried again. Check the API server's health (kubectl get --raw '/readyz?verbose') and run it again",
    if *budget_spent { " (the retry budget is spent: the server fails too often to go on)" } else { "" }
)]
pub struct KeptFailing {
    /// The server URL.
    pub server: String,
    /// The request (`GET /apis`).
    pub what: String,
    /// How many times it was sent.
    pub tries: u32,
    /// Over how many seconds.
    pub secs: u64,
    /// Whether it stopped because the budget was spent (else its own retries were).
    pub budget_spent: bool,
    /// Requests of this connection that needed a retry.
    pub retried: u64,
    /// Requests this connection sent.
    pub requests: u64,
    /// The last failure.
    #[source]
    pub source: kube::Error,
}

/// What an error of the API server means to its caller. This is the one place that reads
/// HTTP status codes and kube's error variants (reasons as client-go reads them); callers
/// ask these questions instead of matching codes.
pub trait ApiErrorKind {
    /// The object (or the namespace it is in, or its resource type) does not exist.
    fn is_not_found(&self) -> bool;
    /// A create found an object of that name already there.
    fn is_already_exists(&self) -> bool;
    /// A write conflicts with the object as it is now (it changed since it was read).
    fn is_conflict(&self) -> bool;
    /// It may work if tried again shortly: the server was unreachable, overloaded, timed
    /// out, restarting (429, 5xx, a transport error).
    fn is_transient(&self) -> bool;
    /// A 404 naming no object: the API server does not serve the resource type at all
    /// (a CRD that is not installed).
    fn is_unserved(&self) -> bool;
    /// The API server's message when it refused the object as invalid (422: it names the
    /// field).
    fn invalid_message(&self) -> Option<&str>;
}

fn api_status(e: &kube::Error) -> Option<&kube::core::Status> {
    match e {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}

// The reason says what happened; the code alone is read when the reason is missing (an
// aggregated API or a proxy may answer without one).
impl ApiErrorKind for kube::Error {
    fn is_not_found(&self) -> bool {
        api_status(self).is_some_and(|s| s.reason == "NotFound" || s.code == 404)
    }

    fn is_already_exists(&self) -> bool {
        api_status(self).is_some_and(|s| s.reason == "AlreadyExists")
    }

    fn is_conflict(&self) -> bool {
        api_status(self).is_some_and(|s| {
            s.reason == "Conflict" || (s.code == 409 && s.reason != "AlreadyExists")
        })
    }

    fn is_transient(&self) -> bool {
        match self {
            kube::Error::Api(s) => {
                s.code == 429
                    || s.code >= 500
                    || matches!(
                        s.reason.as_str(),
                        "ServerTimeout" | "Timeout" | "TooManyRequests" | "ServiceUnavailable"
                    )
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) => true,
            _ => false,
        }
    }

    fn is_unserved(&self) -> bool {
        self.is_not_found()
            && api_status(self)
                .is_some_and(|s| s.details.as_ref().is_none_or(|d| d.name.is_empty()))
    }

    fn invalid_message(&self) -> Option<&str> {
        api_status(self)
            .filter(|s| s.reason == "Invalid" || s.code == 422)
            .map(|s| s.message.as_str())
    }
}

impl ApiErrorKind for ClusterError {
    fn is_not_found(&self) -> bool {
        self.api_source().is_some_and(|e| e.is_not_found())
    }

    fn is_already_exists(&self) -> bool {
        self.api_source().is_some_and(|e| e.is_already_exists())
    }

    fn is_conflict(&self) -> bool {
        self.api_source().is_some_and(|e| e.is_conflict())
    }

    fn is_transient(&self) -> bool {
        match self {
            ClusterError::Unreachable { .. } | ClusterError::KeptFailing(_) => true,
            ClusterError::Api { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    fn is_unserved(&self) -> bool {
        self.api_source().is_some_and(|e| e.is_unserved())
    }

    fn invalid_message(&self) -> Option<&str> {
        self.api_source().and_then(|e| e.invalid_message())
    }
}

impl ClusterError {
    /// A refusal of a resource of API `group` names that group (and so the fix).
    fn in_group(self, group: &str) -> ClusterError {
        match self {
            ClusterError::Forbidden {
                verb,
                resource,
                group: None,
                namespace,
                message,
            } => ClusterError::Forbidden {
                verb,
                resource,
                group: Some(group.to_owned()),
                namespace,
                message,
            },
            other => other,
        }
    }

    fn api_source(&self) -> Option<&kube::Error> {
        match self {
            ClusterError::Api { source, .. } => Some(source),
            ClusterError::KeptFailing(k) => Some(&k.source),
            _ => None,
        }
    }

    /// Whether trying again later can help (the server was unreachable or answered
    /// "try again"); a refusal (RBAC, credentials, a bad request) stays one.
    pub fn is_retryable(&self) -> bool {
        self.is_transient()
    }

    /// The API server's answer to a failed LIST page, as the rule of what a LIST does
    /// next reads it ([`lifeboat_types::rules::list_resume`]): the status code, the
    /// reason and the Status's `metadata.continue` (a 410 Expired carries one that goes on
    /// from the latest resourceVersion). `None` when the server gave no Status.
    pub fn list_failure(&self) -> Option<ListFailure<'_>> {
        let s = api_status(self.api_source()?)?;
        Some(ListFailure {
            code: s.code,
            reason: &s.reason,
            continue_token: s.metadata.as_ref().and_then(|m| m.continue_.as_deref()),
        })
    }
}

/// A group version whose discovery failed (an aggregated API whose service is down
/// answers 503): the resources only it serves are unknown to this run.
#[derive(Debug)]
pub struct DiscoveryFailure {
    /// The API group (`""` for the core group).
    pub group: String,
    /// The version.
    pub version: String,
    /// The discovery path (`/apis/<group>/<version>`).
    pub path: String,
    /// Whether another version of the group was discovered (its resources are known
    /// there, unless only this version serves them).
    pub other_version_served: bool,
    /// Why it failed.
    pub error: ClusterError,
}

impl DiscoveryFailure {
    /// `group/version`, or `v1` for the core group.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `API group "<group>"`, or `the core API group`.
    pub fn group_label(&self) -> String {
        if self.group.is_empty() {
            "the core API group".into()
        } else {
            format!("API group {:?}", self.group)
        }
    }

    /// The status the API server answered, as `503 ServiceUnavailable`, else the error.
    pub fn answer(&self) -> String {
        match self.error.api_source().and_then(api_status) {
            Some(s) if s.reason.is_empty() || s.reason == "Failed to parse error data" => {
                format!("{} {}", s.code, s.message.trim())
            }
            Some(s) => format!("{} {}: {}", s.code, s.reason, s.message.trim()),
            None => crate::error::chain(&self.error),
        }
    }
}

/// A connection to one cluster.
#[derive(Clone)]
pub struct Cluster {
    /// For typed access (watches, exec, typed objects): kube's own retry layer.
    client: kube::Client,
    /// The same connection without kube's retry layer: every request of `send_with`,
    /// which retries by `types::rules::api_retry`.
    bare: kube::Client,
    server: String,
    retry: Arc<Mutex<RetryState>>,
}

/// What the retry loop keeps across the requests of one connection.
#[derive(Debug)]
struct RetryState {
    budget: RetryBudget,
    /// Requests sent (first tries).
    requests: u64,
    /// Requests that needed at least one retry.
    retried: u64,
    /// Whether the API server has answered anything yet.
    answered: bool,
}

/// What a create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object was created.
    New {
        /// How long the create waited for its namespace's ServiceAccount token.
        token_wait: Duration,
    },
    /// An object of that name exists.
    Exists {
        /// The create was sent more than once and an earlier try may have been carried
        /// out (its answer lost): the object may be this create's own. Compare it with
        /// what was sent: identical is a success.
        maybe_own: bool,
    },
}

/// How one request went: its result and what it took.
#[derive(Debug)]
pub(crate) struct Sent {
    /// The body, or the error of the last try.
    pub result: Result<String, ClusterError>,
    /// How many times it was sent again.
    pub retries: u32,
    /// How long it waited for a ServiceAccount token.
    pub token_wait: Duration,
    /// Whether an earlier try may have reached the server and been carried out (it
    /// failed with a 5xx other than 503, or the connection broke after it was made): a
    /// create's AlreadyExists may then be its own object.
    pub maybe_repeated: bool,
}

/// The retry rule's view of a failed try; `None` for an error that is no answer of the
/// server (a bad request built here, an authentication plugin's failure).
fn failure_of(e: &kube::Error, retry_after: Option<Duration>) -> Option<Failure<'_>> {
    match e {
        kube::Error::Api(s) => Some(Failure::Status {
            code: s.code,
            reason: &s.reason,
            message: &s.message,
            retry_after: retry_after.or_else(|| {
                s.details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|&n| n > 0)
                    .map(|n| Duration::from_secs(u64::from(n)))
            }),
        }),
        kube::Error::HyperError(_) | kube::Error::Service(_) => Some(if is_connect(e) {
            Failure::Connect
        } else {
            Failure::Broken
        }),
        _ => None,
    }
}

/// Whether no connection could be made (as opposed to one that broke).
fn is_connect(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|h| h.is_connect())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Which cluster to talk to.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// A kubeconfig file (else KUBECONFIG, ~/.kube/config, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig.
    pub context: Option<String>,
}

#[derive(Deserialize)]
struct ListHead<'a> {
    #[serde(borrow, default)]
    metadata: Option<ListMetaHead<'a>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct ListMetaHead<'a> {
    #[serde(rename = "continue", borrow, default)]
    cont: Option<std::borrow::Cow<'a, str>>,
}

/// Splits a LIST body into raw items and the continue token.
pub fn split_list(
    body: &str,
) -> Result<(Vec<&serde_json::value::RawValue>, Option<String>), serde_json::Error> {
    let head: ListHead<'_> = serde_json::from_str(body)?;
    let next = head
        .metadata
        .and_then(|m| m.cont)
        .map(|c| c.into_owned())
        .filter(|c| !c.is_empty());
    Ok((head.items.unwrap_or_default(), next))
}

fn url_base(r: &ApiResource) -> String {
    if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    }
}

/// A `v1` resource of `group` (empty: the core group), for objects addressed without
/// discovering them (nodes, apps workloads, the snapshot API).
pub fn v1_resource(group: &str, plural: &str, kind: &str, namespaced: bool) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: "v1".into(),
        plural: plural.into(),
        singular: String::new(),
        kind: kind.into(),
        namespaced,
        short_names: vec![],
        verbs: vec![],
    }
}

/// The URL path of namespace `ns` (percent-encoded).
pub fn namespace_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{}", encode(ns))
}

/// The URL path of a resource collection (in a namespace or cluster-wide). The namespace
/// is percent-encoded like object names: no name from a backup reaches a path unencoded.
pub fn collection_path(r: &ApiResource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if r.namespaced => {
            format!("{}/namespaces/{}/{}", url_base(r), encode(ns), r.plural)
        }
        _ => format!("{}/{}", url_base(r), r.plural),
    }
}

pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Cluster {
    /// Connects using a kubeconfig (or the environment's usual places).
    pub async fn connect(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        Self::from_config(Self::load_config(opts).await?)
    }

    /// The kube config a kubeconfig (or the environment's usual places) describes.
    pub async fn load_config(opts: &ClusterOptions) -> Result<kube::Config, ClusterError> {
        let kc_opts = KubeConfigOptions {
            context: opts.context.clone(),
            ..Default::default()
        };
        let config = match &opts.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                    path: Some(path.clone()),
                    source: Box::new(e),
                })?;
                kube::Config::from_custom_kubeconfig(kc, &kc_opts)
                    .await
                    .map_err(|e| ClusterError::Kubeconfig {
                        path: Some(path.clone()),
                        source: Box::new(e),
                    })?
            }
            None if opts.context.is_some() => kube::Config::from_kubeconfig(&kc_opts)
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    source: Box::new(e),
                })?,
            None => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    source: Box::new(e),
                })?,
        };
        Ok(config)
    }

    /// Connects with a ready kube config.
    pub fn from_config(mut config: kube::Config) -> Result<Self, ClusterError> {
        install_tls_provider();
        let server = config.cluster_url.to_string();
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        config.read_timeout = Some(std::time::Duration::from_secs(120));
        let mut bare = config.clone();
        bare.default_retry = false;
        let client = |config| {
            kube::Client::try_from(config).map_err(|e| ClusterError::Unreachable {
                server: server.clone(),
                source: e,
            })
        };
        Ok(Cluster {
            client: client(config)?,
            bare: client(bare)?,
            server,
            retry: Arc::new(Mutex::new(RetryState {
                budget: RetryBudget::api(),
                requests: 0,
                retried: 0,
                answered: false,
            })),
        })
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn map_err(
        &self,
        what: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
        e: kube::Error,
    ) -> ClusterError {
        match &e {
            kube::Error::Api(s) if s.code == 401 => ClusterError::Unauthorized {
                server: self.server.clone(),
            },
            kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden {
                verb: verb.into(),
                resource: resource.into(),
                group: None,
                namespace: ns.map(str::to_owned),
                message: s.message.clone(),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => ClusterError::Unreachable {
                server: self.server.clone(),
                source: e,
            },
            _ => ClusterError::Api {
                what: what.into(),
                source: e,
            },
        }
    }

    async fn get_text(
        &self,
        path: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> Result<String, ClusterError> {
        self.send(http::Method::GET, path, None, verb, resource, ns)
            .await
    }

    /// Sends one request and returns the body, tried again by [`Backoff::API`] when it
    /// failed for a moment; errors are mapped to name the verb, resource and namespace.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> Result<String, ClusterError> {
        self.send_with(&Backoff::API, method, path, body, verb, resource, ns)
            .await
            .result
    }

    /// How many requests this connection sent, and how many of them needed a retry.
    pub fn retry_counts(&self) -> (u64, u64) {
        self.retry
            .lock()
            .map(|s| (s.requests, s.retried))
            .unwrap_or_default()
    }

    /// The one retry loop of every request to the API server (`types::rules::api_retry`):
    /// sends, reads the answer, and on a transient failure waits as the rule says (from
    /// the connection's budget) and sends again.
    #[allow(clippy::too_many_arguments)]
    async fn send_with(
        &self,
        policy: &Backoff,
        method: http::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> Sent {
        let started = tokio::time::Instant::now();
        let mut sent = Sent {
            result: Ok(String::new()),
            retries: 0,
            token_wait: Duration::ZERO,
            maybe_repeated: false,
        };
        let mut token_retries = 0u32;
        let mut spent_any = false;
        if let Ok(mut st) = self.retry.lock() {
            st.requests += 1;
            st.budget.earn();
        }
        loop {
            let (error, retry_after) = match self.attempt(&method, path, body.as_ref()).await {
                Ok(text) => {
                    self.mark_answered();
                    tracing::trace!(
                        "{method} {path}: answered in {} ms",
                        started.elapsed().as_millis()
                    );
                    sent.result = Ok(text);
                    return sent;
                }
                Err(e) => e,
            };
            if matches!(error, kube::Error::Api(_)) {
                self.mark_answered();
            }
            let failure = failure_of(&error, retry_after);
            let verdict = match &failure {
                None => Verdict::Stop(Stop::NotTransient),
                Some(f) => {
                    let (answered, budget_left) = self
                        .retry
                        .lock()
                        .map(|st| (st.answered, st.budget.has_retry()))
                        .unwrap_or((false, false));
                    api_retry::decide(
                        policy,
                        f,
                        answered,
                        sent.retries,
                        token_retries,
                        budget_left,
                        fastrand::f64(),
                    )
                }
            };
            match verdict {
                Verdict::Retry { wait, class } => {
                    if class == Class::Transient {
                        let spent = self.retry.lock().is_ok_and(|mut st| {
                            let ok = st.budget.spend();
                            if ok && !spent_any {
                                st.retried += 1;
                            }
                            ok
                        });
                        if !spent {
                            sent.result =
                                Err(self.kept_failing(&method, path, &sent, started, true, error));
                            return sent;
                        }
                        spent_any = true;
                    } else {
                        token_retries += 1;
                        sent.token_wait += wait;
                    }
                    // A 503 or 429 was not carried out; a 500, 502, 504 or a connection
                    // that broke after it was made may have been.
                    sent.maybe_repeated |= matches!(
                        failure,
                        Some(
                            Failure::Broken
                                | Failure::Status {
                                    code: 500 | 502 | 504,
                                    ..
                                }
                        )
                    ) && class == Class::Transient;
                    tracing::debug!(
                        "{method} {path}: {}; trying again in {} ms",
                        crate::error::chain(&error),
                        wait.as_millis()
                    );
                    sent.retries += 1;
                    tokio::time::sleep(wait).await;
                }
                Verdict::Stop(Stop::NotTransient) => {
                    sent.result = Err(self.map_err(path, verb, resource, ns, error));
                    return sent;
                }
                Verdict::Stop(Stop::Retries) => {
                    sent.result =
                        Err(self.kept_failing(&method, path, &sent, started, false, error));
                    return sent;
                }
                Verdict::Stop(Stop::Budget) => {
                    sent.result =
                        Err(self.kept_failing(&method, path, &sent, started, true, error));
                    return sent;
                }
            }
        }
    }

    fn mark_answered(&self) {
        if let Ok(mut st) = self.retry.lock() {
            st.answered = true;
        }
    }

    fn kept_failing(
        &self,
        method: &http::Method,
        path: &str,
        sent: &Sent,
        started: tokio::time::Instant,
        budget_spent: bool,
        source: kube::Error,
    ) -> ClusterError {
        let (requests, retried) = self.retry_counts();
        ClusterError::KeptFailing(Box::new(KeptFailing {
            server: self.server.clone(),
            what: format!("{method} {path}"),
            tries: sent.retries + 1,
            secs: started.elapsed().as_secs(),
            budget_spent,
            retried,
            requests,
            source,
        }))
    }

    /// One try: the body of a 2xx answer; else the error (an answer's Status as kube
    /// reads it) and the answer's Retry-After.
    async fn attempt(
        &self,
        method: &http::Method,
        path: &str,
        body: Option<&(&str, Vec<u8>)>,
    ) -> Result<String, (kube::Error, Option<Duration>)> {
        let mut req = http::Request::builder().method(method.clone()).uri(path);
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", *content_type);
                bytes.clone()
            }
            None => Vec::new(),
        };
        let req = req
            .body(kube::client::Body::from(bytes))
            .map_err(|e| (kube::Error::HttpError(e), None))?;
        let res = self.bare.send(req).await.map_err(|e| (e, None))?;
        let code = res.status();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| (e, None))?
            .to_bytes();
        if code.is_client_error() || code.is_server_error() {
            let text = String::from_utf8_lossy(&bytes);
            // As kube reads an error answer: its Status, or one made of the text.
            let mut status =
                serde_json::from_str::<kube::core::Status>(&text).unwrap_or_else(|_| {
                    kube::core::Status::failure(text.trim(), "Failed to parse error data")
                });
            if status.code == 0 {
                status.code = code.as_u16();
            }
            return Err((kube::Error::Api(status.boxed()), retry_after));
        }
        String::from_utf8(bytes.to_vec()).map_err(|e| (kube::Error::FromUtf8(e), None))
    }

    /// A discovery GET of a group version, tried again by [`Backoff::DISCOVERY`] (not
    /// [`Backoff::API`]): an aggregated API that is down answers 503 for as long as it is
    /// down, and every backup and restore would wait half a minute on it before
    /// recording the group as an error.
    async fn get_discovery(&self, path: &str) -> Result<String, ClusterError> {
        self.send_with(
            &Backoff::DISCOVERY,
            http::Method::GET,
            path,
            None,
            "get",
            "discovery",
            None,
        )
        .await
        .result
    }

    /// Every served resource type, at its group's preferred version — or, for a resource
    /// only served in other versions of its group (batch/v1beta1 CronJobs on 1.20), at the
    /// first version that serves it, as client-go's ServerPreferredResources. Group
    /// versions whose discovery fails (an unavailable aggregated API) are returned beside
    /// them, for the caller to record as errors; an unreachable server or rejected
    /// credentials fail the whole discovery.
    pub async fn discover(
        &self,
    ) -> Result<(Vec<ApiResource>, Vec<DiscoveryFailure>), ClusterError> {
        // (group, versions in order of preference)
        let mut groups_v: Vec<(String, Vec<String>)> = vec![("".into(), vec!["v1".into()])];
        let groups: APIGroupList = {
            let text = self.get_text("/apis", "get", "discovery", None).await?;
            serde_json::from_str(&text).map_err(|source| ClusterError::Decode {
                what: "/apis".into(),
                source,
            })?
        };
        for g in groups.groups {
            let mut versions = Vec::new();
            if let Some(p) = g.preferred_version {
                versions.push(p.version);
            }
            for v in g.versions {
                if !versions.contains(&v.version) {
                    versions.push(v.version);
                }
            }
            groups_v.push((g.name, versions));
        }
        let gvs: Vec<(usize, usize, String, String)> = groups_v
            .iter()
            .enumerate()
            .flat_map(|(gi, (g, vs))| {
                vs.iter()
                    .enumerate()
                    .map(move |(vi, v)| (gi, vi, g.clone(), v.clone()))
            })
            .collect();
        let mut results: Vec<_> = stream::iter(gvs)
            .map(|(gi, vi, group, version)| async move {
                let path = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                let res = self.get_discovery(&path).await;
                (gi, vi, group, version, path, res)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        results.sort_by_key(|r| (r.0, r.1));
        let mut out: Vec<ApiResource> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut failures = Vec::new();
        let mut discovered_groups = std::collections::BTreeSet::new();
        for (_, _, group, version, path, res) in results {
            let text = match res {
                Ok(t) => t,
                Err(e @ (ClusterError::Unreachable { .. } | ClusterError::Unauthorized { .. })) => {
                    return Err(e);
                }
                Err(error) => {
                    failures.push(DiscoveryFailure {
                        group,
                        version,
                        path,
                        other_version_served: false,
                        error,
                    });
                    continue;
                }
            };
            let list: APIResourceList = match serde_json::from_str(&text) {
                Ok(l) => l,
                Err(source) => {
                    failures.push(DiscoveryFailure {
                        error: ClusterError::Decode {
                            what: path.clone(),
                            source,
                        },
                        group,
                        version,
                        path,
                        other_version_served: false,
                    });
                    continue;
                }
            };
            discovered_groups.insert(group.clone());
            for r in list.resources {
                if r.name.contains('/') || !seen.insert((group.clone(), r.name.clone())) {
                    continue; // a subresource, or served at a preferred version already
                }
                out.push(ApiResource {
                    group: group.clone(),
                    version: version.clone(),
                    plural: r.name,
                    singular: r.singular_name,
                    kind: r.kind,
                    namespaced: r.namespaced,
                    short_names: r.short_names.unwrap_or_default(),
                    verbs: r.verbs,
                });
            }
        }
        for f in &mut failures {
            f.other_version_served = discovered_groups.contains(&f.group);
        }
        out.sort_by_key(|a| a.group_resource());
        Ok((out, failures))
    }

    /// What the API server serves, for RBAC that names it: the core group's resource names
    /// (`/api/v1`, subresources such as `pods/exec` included) and every API group's name
    /// (`/apis`, whether or not its discovery answers).
    pub async fn served_api(&self) -> Result<(Vec<String>, Vec<String>), ClusterError> {
        let decode = |what: &str| {
            let what = what.to_owned();
            move |source| ClusterError::Decode { what, source }
        };
        let core: APIResourceList =
            serde_json::from_str(&self.get_text("/api/v1", "get", "discovery", None).await?)
                .map_err(decode("/api/v1"))?;
        let groups: APIGroupList =
            serde_json::from_str(&self.get_text("/apis", "get", "discovery", None).await?)
                .map_err(decode("/apis"))?;
        Ok((
            core.resources.into_iter().map(|r| r.name).collect(),
            groups.groups.into_iter().map(|g| g.name).collect(),
        ))
    }

    /// The names of all namespaces.
    pub async fn namespaces(&self) -> Result<Vec<String>, ClusterError> {
        #[derive(Deserialize)]
        struct Meta {
            name: String,
        }
        #[derive(Deserialize)]
        struct Item {
            metadata: Meta,
        }
        let ns = ApiResource {
            group: "".into(),
            version: "v1".into(),
            plural: "namespaces".into(),
            singular: "namespace".into(),
            kind: "Namespace".into(),
            namespaced: false,
            short_names: vec![],
            verbs: vec![],
        };
        let mut names = Vec::new();
        // A continue token that expires is handled as the backup's LISTs handle it
        // (types::rules::list_resume); the restart keeps the names read.
        let mut pager = ListPager::new();
        loop {
            let page = match self.list_page(&ns, None, None, pager.token(), 500).await {
                Ok(p) => p,
                Err(e) => match pager.failed(e.list_failure().as_ref()) {
                    ListResume::Continue(_) | ListResume::Restart => continue,
                    ListResume::Fail | ListResume::GiveUp(_) => return Err(e),
                },
            };
            let (items, next) = split_list(&page).map_err(|source| ClusterError::Decode {
                what: "namespaces".into(),
                source,
            })?;
            for i in items {
                let it: Item =
                    serde_json::from_str(i.get()).map_err(|source| ClusterError::Decode {
                        what: "namespaces".into(),
                        source,
                    })?;
                if pager.admit(&list_key(None, &it.metadata.name)) {
                    names.push(it.metadata.name);
                }
            }
            if !pager.advance(next) {
                break;
            }
        }
        Ok(names)
    }

    /// One page of a LIST of `r` (in `namespace`, or everywhere), as the raw body;
    /// take it apart with [`split_list`].
    pub async fn list_page(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        cont: Option<&str>,
        limit: u32,
    ) -> Result<String, ClusterError> {
        let mut path = format!("{}?limit={limit}", collection_path(r, namespace));
        if let Some(s) = label_selector {
            path.push_str("&labelSelector=");
            path.push_str(&encode(s));
        }
        if let Some(c) = cont {
            path.push_str("&continue=");
            path.push_str(&encode(c));
        }
        self.get_text(&path, "list", &r.group_resource(), namespace)
            .await
            .map_err(|e| e.in_group(&r.group))
    }

    /// Every object of `r` (in `namespace`, or everywhere; with `label_selector`) as JSON,
    /// page by page — for small collections only (nodes, a namespace's workloads, a
    /// restore's objects), never a backup's LISTs. A continue token that expires is
    /// handled as the backup's LISTs handle it (`types::rules::list_resume`).
    pub async fn list_json(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, ClusterError> {
        let decode = |source| ClusterError::Decode {
            what: r.group_resource(),
            source,
        };
        let mut out = Vec::new();
        let mut pager = ListPager::new();
        loop {
            let page = match self
                .list_page(r, namespace, label_selector, pager.token(), 500)
                .await
            {
                Ok(p) => p,
                Err(e) => match pager.failed(e.list_failure().as_ref()) {
                    ListResume::Continue(_) | ListResume::Restart => continue,
                    ListResume::Fail | ListResume::GiveUp(_) => return Err(e),
                },
            };
            let (items, next) = split_list(&page).map_err(decode)?;
            for raw in items {
                let v: serde_json::Value = serde_json::from_str(raw.get()).map_err(decode)?;
                let key = list_key(
                    v.pointer("/metadata/namespace")
                        .and_then(serde_json::Value::as_str),
                    v.pointer("/metadata/name")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default(),
                );
                if pager.admit(&key) {
                    out.push(v);
                }
            }
            if !pager.advance(next) {
                return Ok(out);
            }
        }
    }

    /// The first of `names` that exists as a namespace (None: none does).
    pub async fn first_existing_namespace<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<&'a str>, ClusterError> {
        for ns in names {
            if self
                .get_path_opt(&namespace_path(ns), "namespaces")
                .await?
                .is_some()
            {
                return Ok(Some(ns));
            }
        }
        Ok(None)
    }

    /// Deletes the object `collection/name` only if its uid is still `uid` (a
    /// precondition the API server checks: an object re-created under the name is left);
    /// `false` when it is gone already.
    pub async fn delete_if_uid(
        &self,
        collection: &str,
        name: &str,
        resource: &str,
        uid: &str,
    ) -> Result<bool, ClusterError> {
        let path = format!("{collection}/{}", encode(name));
        let body = serde_json::json!({
            "kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}
        });
        match self
            .send(
                http::Method::DELETE,
                &path,
                Some((
                    "application/json",
                    serde_json::to_vec(&body).unwrap_or_default(),
                )),
                "delete",
                resource,
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A cluster-scoped or core object by REST path, as raw JSON; `None` when it does not
    /// exist.
    pub async fn get_path_opt(
        &self,
        path: &str,
        resource: &str,
    ) -> Result<Option<String>, ClusterError> {
        match self.get_path(path, resource).await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET one object as raw JSON; `None` when it does not exist.
    pub async fn get_raw(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, ClusterError> {
        let path = format!("{}/{}", collection_path(r, namespace), encode(name));
        match self
            .get_text(&path, "get", &r.group_resource(), namespace)
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.in_group(&r.group)),
        }
    }

    /// Creates an object (tried again as every request is, `types::rules::api_retry`;
    /// a pod whose namespace's ServiceAccount token does not exist yet waits for it, for
    /// minutes). [`Created::Exists`] says whether the object found may be this create's
    /// own, made by a try whose answer was lost.
    pub async fn create_raw(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Created, ClusterError> {
        let path = collection_path(r, namespace);
        let sent = self
            .send_with(
                &Backoff::API,
                http::Method::POST,
                &path,
                Some(("application/json", body)),
                "create",
                &r.group_resource(),
                namespace,
            )
            .await;
        match sent.result {
            Ok(_) => Ok(Created::New {
                token_wait: sent.token_wait,
            }),
            Err(e) if e.is_already_exists() => Ok(Created::Exists {
                maybe_own: sent.maybe_repeated,
            }),
            Err(e) => Err(e.in_group(&r.group)),
        }
    }

    /// Applies a JSON merge patch to an object.
    pub async fn merge_patch(
        &self,
        r: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        body: Vec<u8>,
    ) -> Result<(), ClusterError> {
        let path = format!("{}/{}", collection_path(r, namespace), encode(name));
        self.send(
            http::Method::PATCH,
            &path,
            Some(("application/merge-patch+json", body)),
            "patch",
            &r.group_resource(),
            namespace,
        )
        .await
        .map(|_| ())
        .map_err(|e| e.in_group(&r.group))
    }

    /// Server-side apply of `body` (JSON) as `name` in the collection at `collection`
    /// (a REST path), owned by field manager `lifeboat`, taking over conflicting fields.
    pub async fn apply_raw(
        &self,
        collection: &str,
        name: &str,
        body: Vec<u8>,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<String, ClusterError> {
        let path = format!(
            "{collection}/{}?fieldManager=lifeboat&force=true",
            encode(name)
        );
        self.send(
            http::Method::PATCH,
            &path,
            Some(("application/apply-patch+yaml", body)),
            "patch",
            resource,
            namespace,
        )
        .await
    }

    /// Deletes the object at `collection`/`name`; `Ok(false)` when it did not exist.
    pub async fn delete_raw(
        &self,
        collection: &str,
        name: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<bool, ClusterError> {
        let path = format!("{collection}/{}", encode(name));
        match self
            .send(
                http::Method::DELETE,
                &path,
                None,
                "delete",
                resource,
                namespace,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// GET of a REST path, as text.
    pub async fn get_path(&self, path: &str, resource: &str) -> Result<String, ClusterError> {
        self.send(http::Method::GET, path, None, "get", resource, None)
            .await
    }

    /// Asks the API server whether the current user may `verb` the resource `r`
    /// (in `namespace`, or cluster-wide).
    pub async fn can_i(
        &self,
        verb: &str,
        r: &ApiResource,
        namespace: Option<&str>,
    ) -> Result<bool, ClusterError> {
        let body = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "verb": verb,
                "group": r.group,
                "resource": r.plural,
                "namespace": namespace.unwrap_or(""),
            }}
        });
        let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        let text = self
            .send(
                http::Method::POST,
                path,
                Some((
                    "application/json",
                    serde_json::to_vec(&body).unwrap_or_default(),
                )),
                "create",
                "selfsubjectaccessreviews",
                None,
            )
            .await?;
        #[derive(Deserialize)]
        struct Status {
            #[serde(default)]
            allowed: bool,
        }
        #[derive(Deserialize)]
        struct Review {
            status: Option<Status>,
        }
        let review: Review =
            serde_json::from_str(&text).map_err(|source| ClusterError::Decode {
                what: path.into(),
                source,
            })?;
        Ok(review.status.is_some_and(|s| s.allowed))
    }

    /// The kube client, for callers that need typed access.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

/// Paths of the kubeconfig the dev cluster script writes, for "no cluster configured".
pub fn dev_cluster_kubeconfig() -> Option<PathBuf> {
    let base = std::env::var_os("LIFEBOAT_DEV_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::data_local_dir().map(|d| d.join("lifeboat/dev-clusters")))?;
    let p = base.join("dev/kubeconfig");
    p.exists().then_some(p)
}

/// Whether a kubeconfig is configured the usual ways (KUBECONFIG or ~/.kube/config).
pub fn kubeconfig_configured() -> bool {
    std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty())
        || dirs::home_dir().is_some_and(|h| Path::new(&h.join(".kube/config")).exists())
}

/// Fetches several resources' list permissions at once (for a preflight).
pub async fn check_list_permissions(
    cluster: &Cluster,
    checks: Vec<(ApiResource, Option<String>)>,
) -> Result<(), ClusterError> {
    stream::iter(checks)
        .map(|(r, ns)| async move {
            if cluster.can_i("list", &r, ns.as_deref()).await? {
                Ok(())
            } else {
                Err(ClusterError::Forbidden {
                    verb: "list".into(),
                    resource: r.group_resource(),
                    group: Some(r.group.clone()),
                    namespace: ns,
                    message: "the access review denied it".into(),
                })
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Picks the process's TLS backend before any kube client is made: several are linked
/// (kube's and the object stores'), and rustls refuses to guess. Idempotent.
pub fn install_tls_provider() {
    // An error only means one was installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Issue 11 item 4: a hostile namespace (from a backup's paths) never reaches a REST
    /// path unencoded; names of objects neither.
    #[test]
    fn hostile_namespaces_are_encoded_in_paths() {
        let cm = ApiResource {
            group: String::new(),
            version: "v1".into(),
            plural: "configmaps".into(),
            singular: String::new(),
            kind: "ConfigMap".into(),
            namespaced: true,
            short_names: vec![],
            verbs: vec![],
        };
        assert_eq!(
            collection_path(&cm, Some("shop")),
            "/api/v1/namespaces/shop/configmaps"
        );
        assert_eq!(
            collection_path(&cm, Some("a/../../secrets?x=1 #")),
            "/api/v1/namespaces/a%2F..%2F..%2Fsecrets%3Fx%3D1%20%23/configmaps"
        );
        assert_eq!(encode("a/b?c%d e"), "a%2Fb%3Fc%25d%20e");
    }

    fn api(code: u16, reason: &str, details_name: Option<&str>) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: format!("{code} {reason}"),
            details: details_name.map(|n| kube::core::response::StatusDetails {
                name: n.into(),
                kind: "namespaces".into(),
                group: String::new(),
                uid: String::new(),
                causes: vec![],
                retry_after_seconds: 0,
            }),
            ..Default::default()
        }))
    }

    fn transport() -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )))
    }

    /// (not found, already exists, conflict, transient, unserved)
    #[rstest]
    #[case::object_missing(api(404, "NotFound", Some("web")), (true, false, false, false, false))]
    #[case::type_not_served(api(404, "NotFound", None), (true, false, false, false, true))]
    #[case::group_no_longer_served(api(404, "Failed to parse error data", None), (true, false, false, false, true))]
    #[case::already_exists(api(409, "AlreadyExists", Some("web")), (false, true, false, false, false))]
    #[case::changed_meanwhile(api(409, "Conflict", Some("web")), (false, false, true, false, false))]
    #[case::token_not_yet_made(api(500, "ServerTimeout", None), (false, false, false, true, false))]
    #[case::too_many_requests(api(429, "TooManyRequests", None), (false, false, false, true, false))]
    #[case::unavailable(api(503, "ServiceUnavailable", None), (false, false, false, true, false))]
    #[case::invalid(api(422, "Invalid", Some("web")), (false, false, false, false, false))]
    #[case::missing_without_reason(api(404, "", Some("web")), (true, false, false, false, false))]
    #[case::conflict_without_reason(api(409, "", Some("web")), (false, false, true, false, false))]
    #[case::unprocessable_without_reason(api(422, "", None), (false, false, false, false, false))]
    #[case::forbidden(api(403, "Forbidden", None), (false, false, false, false, false))]
    #[case::connection_refused(transport(), (false, false, false, true, false))]
    fn kube_errors_answer_what_they_mean(
        #[case] e: kube::Error,
        #[case] kind: (bool, bool, bool, bool, bool),
    ) {
        let got = (
            e.is_not_found(),
            e.is_already_exists(),
            e.is_conflict(),
            e.is_transient(),
            e.is_unserved(),
        );
        assert_eq!(got, kind, "{e}");
        // The cluster's error wrapping it answers the same.
        let c = ClusterError::Api {
            what: "/api/v1/namespaces/a/pods".into(),
            source: e,
        };
        let wrapped = (
            c.is_not_found(),
            c.is_already_exists(),
            c.is_conflict(),
            c.is_transient(),
            c.is_unserved(),
        );
        assert_eq!(wrapped, kind);
        assert_eq!(c.is_retryable(), kind.3);
    }

    #[test]
    fn an_invalid_object_gives_the_server_s_message() {
        let e = api(422, "Invalid", Some("web"));
        assert_eq!(e.invalid_message(), Some("422 Invalid"));
        assert_eq!(api(422, "", None).invalid_message(), Some("422 "));
        assert_eq!(api(409, "Conflict", None).invalid_message(), None);
    }

    #[rstest]
    #[case::unreachable(ClusterError::Unreachable { server: "s".into(), source: transport() }, true)]
    #[case::unauthorized(ClusterError::Unauthorized { server: "s".into() }, false)]
    #[case::forbidden(ClusterError::Forbidden { verb: "list".into(), resource: "secrets".into(), group: Some(String::new()), namespace: None, message: "no".into() }, false)]
    #[case::decode(ClusterError::Decode { what: "/apis".into(), source: serde_json::from_str::<u8>("x").unwrap_err() }, false)]
    fn cluster_errors_retryable(#[case] e: ClusterError, #[case] retryable: bool) {
        assert_eq!(e.is_retryable(), retryable, "{e}");
    }

    #[test]
    fn messages_do_not_repeat_their_cause() {
        let e = ClusterError::Unreachable {
            server: "https://127.0.0.1:1/".into(),
            source: transport(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach the API server at https://127.0.0.1:1/"
        );
        assert_eq!(
            crate::error::chain(&e),
            "cannot reach the API server at https://127.0.0.1:1/: ServiceError: Connection refused"
        );
    }

    /// Issue 11, item 6: what the LIST rule reads of a failed page — the code, the
    /// reason and the Status's fresh continue token of a 410 Expired.
    #[test]
    fn a_failed_page_exposes_its_status_and_continue_token() {
        let mut gone = kube::core::Status {
            code: 410,
            reason: "Expired".into(),
            message: "The provided continue parameter is too old".into(),
            ..Default::default()
        };
        gone.metadata = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta {
            continue_: Some("fresh".into()),
            ..Default::default()
        });
        let e = ClusterError::Api {
            what: "/api/v1/configmaps".into(),
            source: kube::Error::Api(Box::new(gone)),
        };
        assert_eq!(
            e.list_failure(),
            Some(ListFailure {
                code: 410,
                reason: "Expired",
                continue_token: Some("fresh"),
            })
        );
        let e = ClusterError::Api {
            what: "/api/v1/configmaps".into(),
            source: api(503, "ServiceUnavailable", None),
        };
        assert_eq!(
            e.list_failure(),
            Some(ListFailure {
                code: 503,
                reason: "ServiceUnavailable",
                continue_token: None,
            })
        );
        let e = ClusterError::Unreachable {
            server: "s".into(),
            source: transport(),
        };
        assert_eq!(e.list_failure(), None);
    }

    /// Issue 11, item 6: a group version that cannot be discovered is named with the
    /// server's answer.
    #[rstest]
    #[case::unavailable(
        api(503, "ServiceUnavailable", None),
        "503 ServiceUnavailable: 503 ServiceUnavailable"
    )]
    #[case::plain_text_answer(kube::Error::Api(Box::new(kube::core::Status { code: 503, reason: "Failed to parse error data".into(), message: "service unavailable\n".into(), ..Default::default() })), "503 service unavailable")]
    #[case::unreadable(kube::Error::Api(Box::new(kube::core::Status { code: 500, message: " boom ".into(), ..Default::default() })), "500 boom")]
    fn a_discovery_failure_names_the_answer(#[case] e: kube::Error, #[case] answer: &str) {
        let f = DiscoveryFailure {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            path: "/apis/metrics.k8s.io/v1beta1".into(),
            other_version_served: false,
            error: ClusterError::Api {
                what: "/apis/metrics.k8s.io/v1beta1".into(),
                source: e,
            },
        };
        assert_eq!(f.answer(), answer);
        assert_eq!(f.group_version(), "metrics.k8s.io/v1beta1");
        assert_eq!(f.group_label(), "API group \"metrics.k8s.io\"");
    }

    #[test]
    fn splits_a_list_page() {
        let body = r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"5","continue":"abc"},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"data":{"k":"v\"x"}}]}"#;
        let (items, next) = split_list(body).unwrap();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].get(),
            r#"{"metadata":{"name":"b"},"data":{"k":"v\"x"}}"#
        );
        let (_, none) = split_list(r#"{"metadata":{"continue":""},"items":[]}"#).unwrap();
        assert_eq!(none, None);
        let (empty, _) = split_list(r#"{"metadata":{},"items":null}"#).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("app in (a,b)"), "app%20in%20%28a%2Cb%29");
        assert_eq!(encode("eyJ2Ijoi=="), "eyJ2Ijoi%3D%3D");
    }
}
