//! A fault-injecting reverse proxy in front of the test API server or the test S3 server,
//! for failures real servers do not produce on demand: an expired continue token, an
//! aggregated API that is down, a garbled answer, a steady rate of 5xx/429, an answer
//! lost after the request was carried out, a connection cut mid-answer.
//!
//! [`FaultProxy::start`] listens on 127.0.0.1 (plain HTTP), writes a kubeconfig pointing at
//! it (the client's bearer token is the test cluster's admin token, passed through), and
//! forwards every request to the real API server over HTTPS (its CA from the test
//! kubeconfig), streaming the answers back — except the requests a [`Rule`] picks, which
//! get the rule's [`Fault`] instead. [`FaultProxy::http`] does the same in front of a
//! plain-HTTP server (moto; its URL is [`FaultProxy::url`]). Every request is recorded
//! ([`FaultProxy::seen`]). Random picks come from a seeded generator per rule, so a run
//! injects the same number of faults each time. The proxy stops when dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

/// Prefix of the continue tokens the proxy hands out in a 410 Expired Status: the
/// request's own token behind it, so the proxy can tell a client that resumed with the
/// Status's token (it strips the prefix before forwarding) from one that restarted.
pub const FRESH_TOKEN_PREFIX: &str = "lifeboat-proxy-fresh.";

/// What the proxy answers instead of forwarding.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 410 Gone with a Status of reason `Expired`, as the API server answers a LIST
    /// page whose continue token expired; with `fresh_token`, the Status carries a
    /// `metadata.continue` that goes on from where the request was (the request's own
    /// token behind [`FRESH_TOKEN_PREFIX`]), as the API server's does.
    Expired { fresh_token: bool },
    /// A Status with this code and reason (503 ServiceUnavailable: an aggregated API whose
    /// service is down; 500; 429).
    Status { code: u16, reason: &'static str },
    /// This code and body as they are (a garbled answer).
    Body { code: u16, body: &'static str },
    /// One of these Statuses, picked by the rule's generator.
    OneOf(&'static [(u16, &'static str)]),
    /// The request is forwarded and carried out, and its answer replaced by this Status:
    /// an answer lost on the way back (a create that happened, its client told 500).
    AfterForwarding { code: u16, reason: &'static str },
    /// The request is forwarded, and the answer's body cut off after its first bytes:
    /// a connection that broke mid-answer.
    CutBody,
}

/// Which of the requests a rule matches it answers. Every rule counts every request it
/// matches, also one an earlier rule answered.
#[derive(Clone, Copy, Debug)]
pub enum Hits {
    /// Only the n-th (1 for the first).
    Nth(usize),
    /// Every one.
    All,
    /// Every n-th (n, 2n, ...): a steady rate of transient failures.
    EveryNth(usize),
    /// Each with this chance in percent, drawn from the rule's generator seeded with
    /// `seed`.
    Random { percent: u64, seed: u64 },
}

/// A small seeded generator (SplitMix64): the same seed, the same picks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A request as the rules see it and the log records it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The query string as sent (percent-encoded).
    pub query: String,
    /// The `continue` parameter, decoded.
    pub continue_token: Option<String>,
    /// The rule that answered it, if one did.
    pub fault: Option<String>,
}

type Matcher = dyn Fn(&Seen) -> bool + Send + Sync;

/// One programmable fault: which requests, which of them, what answer.
pub struct Rule {
    name: String,
    matches: Box<Matcher>,
    hits: Hits,
    fault: Fault,
    matched: usize,
    rng: Rng,
}

impl Rule {
    /// A rule named `name` (in the log) answering `fault` to the `hits` of the requests
    /// `matches` picks.
    pub fn new(
        name: &str,
        matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
        hits: Hits,
        fault: Fault,
    ) -> Rule {
        Rule {
            name: name.to_owned(),
            matches: Box::new(matches),
            rng: Rng(match hits {
                Hits::Random { seed, .. } => seed,
                _ => 0,
            }),
            hits,
            fault,
            matched: 0,
        }
    }

    /// Whether this rule answers `req` (counting it when it matches).
    fn fires(&mut self, req: &Seen) -> bool {
        if !(self.matches)(req) {
            return false;
        }
        self.matched += 1;
        match self.hits {
            Hits::Nth(n) => self.matched == n,
            Hits::All => true,
            Hits::EveryNth(n) => n > 0 && self.matched.is_multiple_of(n),
            Hits::Random { percent, .. } => self.rng.next() % 100 < percent,
        }
    }

    /// The fault for a request this rule answers (a [`Fault::OneOf`] picked).
    fn pick(&mut self) -> Fault {
        match &self.fault {
            Fault::OneOf(choices) if !choices.is_empty() => {
                let (code, reason) = choices[(self.rng.next() % choices.len() as u64) as usize];
                Fault::Status { code, reason }
            }
            f => f.clone(),
        }
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// The running proxy; stopped when dropped.
pub struct FaultProxy {
    /// A kubeconfig whose server is the proxy (for a proxy in front of an API server).
    pub kubeconfig: PathBuf,
    /// The proxy's own URL (`http://127.0.0.1:<port>`).
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// The server, CA bundle (PEM) and bearer token of a kubeconfig like the dev cluster's.
fn read_kubeconfig(path: &Path) -> (String, Vec<u8>, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let kc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let cluster = &kc["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let ca = match (
        cluster["certificate-authority-data"].as_str(),
        cluster["certificate-authority"].as_str(),
    ) {
        (Some(data), _) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap()
        }
        (None, Some(file)) => std::fs::read(file).unwrap(),
        (None, None) => panic!("{}: no certificate authority", path.display()),
    };
    let token = kc["users"][0]["user"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no bearer token", path.display()))
        .to_owned();
    (server, ca, token)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, c) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn continue_param(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("continue="))
        .map(decode)
}

impl FaultProxy {
    /// Starts a proxy in front of the API server of `kubeconfig` with these rules.
    pub fn start(kubeconfig: &Path, rules: Vec<Rule>) -> FaultProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (upstream, ca, token) = read_kubeconfig(kubeconfig);
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        FaultProxy::serve(upstream, client, rules, &token)
    }

    /// Starts a proxy in front of the plain-HTTP server at `upstream` (an S3 server).
    pub fn http(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        let client = reqwest::Client::builder().build().unwrap();
        FaultProxy::serve(
            upstream.trim_end_matches('/').to_owned(),
            client,
            rules,
            "unused",
        )
    }

    fn serve(
        upstream: String,
        client: reqwest::Client,
        rules: Vec<Rule>,
        token: &str,
    ) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream,
            client,
            rules: Mutex::new(rules),
            seen: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kubeconfig");
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: fault-proxy
  cluster:
    server: http://{addr}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: fault-proxy
  context:
    cluster: fault-proxy
    user: admin
current-context: fault-proxy
"
            ),
        )
        .unwrap();
        FaultProxy {
            kubeconfig: kc,
            url: format!("http://{addr}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn status(code: u16, reason: &str, message: &str, cont: Option<&str>) -> Response {
    let mut body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some(c) = cont {
        body["metadata"]["continue"] = c.into();
    }
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let mut seen = Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        continue_token: continue_param(&query),
        query: query.clone(),
        fault: None,
    };
    // Every rule counts the requests it matches; the first that fires answers.
    let fault = {
        let mut rules = shared.rules.lock().unwrap();
        let fired: Vec<bool> = rules.iter_mut().map(|r| r.fires(&seen)).collect();
        match fired.iter().position(|f| *f) {
            Some(i) => {
                let name = rules[i].name.clone();
                Some((name, rules[i].pick()))
            }
            None => None,
        }
    };
    let Some((name, fault)) = fault else {
        shared.seen.lock().unwrap().push(seen);
        return forward(&shared, parts, body, query, None).await;
    };
    seen.fault = Some(name);
    let cont = seen.continue_token.clone();
    shared.seen.lock().unwrap().push(seen);
    match fault {
        Fault::Expired { fresh_token } => {
            let fresh = cont
                .filter(|_| fresh_token)
                .map(|c| format!("{FRESH_TOKEN_PREFIX}{c}"));
            status(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                fresh.as_deref(),
            )
        }
        Fault::Status { code, reason } => status(code, reason, "injected by the test proxy", None),
        Fault::Body { code, body } => Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap(),
        f @ (Fault::AfterForwarding { .. } | Fault::CutBody) => {
            forward(&shared, parts, body, query, Some(f)).await
        }
        Fault::OneOf(_) => unreachable!("a rule picks one of them"),
    }
}

/// Forwards the request upstream and streams the answer back — or, with `after`, replaces
/// the answer (the request was carried out) or cuts its body short.
async fn forward(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: Body,
    mut query: String,
    after: Option<Fault>,
) -> Response {
    let path = parts.uri.path().to_owned();
    // A token the proxy handed out goes upstream as the one behind it.
    if let Some(inner) = continue_param(&query)
        .as_deref()
        .and_then(|c| c.strip_prefix(FRESH_TOKEN_PREFIX))
    {
        query = query
            .split('&')
            .map(|p| {
                if p.starts_with("continue=") {
                    format!("continue={}", encode(inner))
                } else {
                    p.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    let url = if query.is_empty() {
        format!("{}{path}", shared.upstream)
    } else {
        format!("{}{path}?{query}", shared.upstream)
    };
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return status(400, "BadRequest", &format!("proxy: {e}"), None),
    };
    let mut up = shared.client.request(parts.method.clone(), &url).body(body);
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "upgrade"
        ) {
            up = up.header(k, v);
        }
    }
    let answer = match up.send().await {
        Ok(a) => a,
        Err(e) => return status(502, "BadGateway", &format!("proxy: {e}"), None),
    };
    match after {
        Some(Fault::AfterForwarding { code, reason }) => {
            // Carried out upstream; its answer is lost.
            let _ = answer.bytes().await;
            return status(
                code,
                reason,
                "injected by the test proxy after forwarding",
                None,
            );
        }
        Some(Fault::CutBody) => {
            let code = answer.status();
            let whole = answer.bytes().await.unwrap_or_default();
            let cut = whole.slice(..whole.len() / 2);
            // The length promised, half of it sent, then the connection drops.
            let stream = futures::stream::iter(vec![
                Ok::<_, std::io::Error>(cut),
                Err(std::io::Error::other("cut by the test proxy")),
            ]);
            return Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .header("content-length", whole.len())
                .body(Body::from_stream(stream))
                .unwrap();
        }
        _ => {}
    }
    // The length is kept (an S3 client needs it); the body is streamed.
    let mut res = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if !matches!(k.as_str(), "connection" | "transfer-encoding") {
            res = res.header(k, v);
        }
    }
    res.body(Body::from_stream(answer.bytes_stream())).unwrap()
}
