//! `etcd snapshot save`: streams etcd's Maintenance/Snapshot RPC (through etcd's own
//! gRPC gateway, `POST /v3/maintenance/snapshot`, one JSON message per line) into a
//! temporary file, checks the SHA-256 etcd sends as its last message, and only then
//! publishes the file under its name (rename) — a half-written or damaged snapshot never
//! carries the final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// Where and how to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdEndpoint {
    /// Client URLs, tried in order (`https://10.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// CA bundle to trust (PEM).
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for mTLS.
    pub cert: Option<PathBuf>,
    /// Client key (PEM), for mTLS.
    pub key: Option<PathBuf>,
}

/// Why a snapshot could not be saved. Nothing is left under the target name.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// No endpoint was given.
    #[error("no etcd endpoint: pass --endpoints https://HOST:2379")]
    NoEndpoint,
    /// A TLS file could not be read or parsed.
    #[error("cannot use {what} {}: {reason}", path.display())]
    TlsFile {
        /// cacert, cert or key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Every endpoint failed; the last error is given.
    #[error("cannot reach etcd at {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Why (TLS: unknown issuer → wrong --cacert; expired → renew the certificate).
        reason: String,
    },
    /// etcd answered with an error.
    #[error("etcd at {endpoint} refused the snapshot: {message}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// etcd's message.
        message: String,
    },
    /// The stream ended early or did not match its checksum.
    #[error("the snapshot from {endpoint} is incomplete or damaged: {reason}; nothing was saved")]
    Damaged {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
    /// Writing the file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn read_tls(what: &'static str, p: &Path) -> Result<Vec<u8>, SaveError> {
    std::fs::read(p).map_err(|e| SaveError::TlsFile {
        what,
        path: p.to_path_buf(),
        reason: e.to_string(),
    })
}

fn client(ep: &EtcdEndpoint) -> Result<reqwest::Client, SaveError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10));
    if let Some(ca) = &ep.cacert {
        let pem = read_tls("--cacert", ca)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SaveError::TlsFile {
                what: "--cacert",
                path: ca.clone(),
                reason: e.to_string(),
            })?;
        b = b.tls_certs_only(certs);
    }
    match (&ep.cert, &ep.key) {
        (Some(c), Some(k)) => {
            let mut pem = read_tls("--cert", c)?;
            pem.extend_from_slice(b"\n");
            pem.extend_from_slice(&read_tls("--key", k)?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| SaveError::TlsFile {
                what: "--cert/--key",
                path: c.clone(),
                reason: e.to_string(),
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        (Some(c), None) | (None, Some(c)) => {
            return Err(SaveError::TlsFile {
                what: "--cert and --key",
                path: c.clone(),
                reason: "both --cert and --key are needed for client TLS".into(),
            });
        }
    }
    b.build().map_err(|e| SaveError::Unreachable {
        endpoint: String::new(),
        reason: e.to_string(),
    })
}

/// The error and its causes in one line (reqwest hides the TLS reason in its sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    if s.contains("UnknownIssuer") {
        s.push_str(" (the server certificate is not signed by --cacert)");
    } else if s.contains("Expired") {
        s.push_str(" (a certificate has expired; renew it)");
    }
    s
}

#[derive(serde::Deserialize)]
struct Line {
    result: Option<Chunk>,
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Chunk {
    #[serde(default)]
    remaining_bytes: Option<String>,
    #[serde(default)]
    blob: Option<String>,
}

/// Saves a snapshot to `to`; returns its size. `progress(bytes_so_far, total_estimate)`
/// is called as chunks arrive.
pub async fn save(
    ep: &EtcdEndpoint,
    to: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<u64, SaveError> {
    if ep.endpoints.is_empty() {
        return Err(SaveError::NoEndpoint);
    }
    let client = client(ep)?;
    let mut last = None;
    for endpoint in &ep.endpoints {
        match save_from(&client, endpoint, to, progress).await {
            Ok(n) => return Ok(n),
            Err(e @ SaveError::Unreachable { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(SaveError::NoEndpoint))
}

async fn save_from(
    client: &reqwest::Client,
    endpoint: &str,
    to: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<u64, SaveError> {
    let url = format!("{}/v3/maintenance/snapshot", endpoint.trim_end_matches('/'));
    let unreachable = |e: &dyn std::error::Error| SaveError::Unreachable {
        endpoint: endpoint.to_owned(),
        reason: chain(e),
    };
    let resp = client
        .post(&url)
        .body("{}")
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(SaveError::Refused {
            endpoint: endpoint.into(),
            message: format!(
                "HTTP {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            ),
        });
    }
    let damaged = |reason: String| SaveError::Damaged {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let part = to.with_extension("part");
    let io = |source| SaveError::Io {
        path: part.clone(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&part).map_err(io)?);
    let result = async {
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut checksum: Option<Vec<u8>> = None;
        let mut buf: Vec<u8> = Vec::new();
        let mut stream = resp.bytes_stream();
        let mut handle_line = |line: &[u8]| -> Result<(), SaveError> {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let l: Line = serde_json::from_slice(line)
                .map_err(|e| damaged(format!("unreadable message: {e}")))?;
            if let Some(err) = l.error {
                return Err(SaveError::Refused {
                    endpoint: endpoint.into(),
                    message: err.to_string(),
                });
            }
            let Some(chunk) = l.result else { return Ok(()) };
            let blob = base64::engine::general_purpose::STANDARD
                .decode(chunk.blob.unwrap_or_default())
                .map_err(|e| damaged(format!("bad chunk: {e}")))?;
            if checksum.is_some() {
                return Err(damaged("data after the checksum".into()));
            }
            let remaining: u64 = chunk
                .remaining_bytes
                .as_deref()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0);
            if remaining == 0 && blob.len() == 32 && written > 0 {
                // etcd ends the stream with the SHA-256 of everything sent before it.
                checksum = Some(blob);
                return Ok(());
            }
            hasher.update(&blob);
            file.write_all(&blob).map_err(io)?;
            written += blob.len() as u64;
            progress(written, written + remaining);
            Ok(())
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| damaged(format!("stream broke: {}", chain(&e))))?;
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                handle_line(&line)?;
            }
        }
        let rest = std::mem::take(&mut buf);
        handle_line(&rest)?;
        let Some(sum) = checksum else {
            return Err(damaged("the stream ended without etcd's checksum".into()));
        };
        let actual = hasher.finalize();
        if actual.as_slice() != sum.as_slice() {
            return Err(damaged(
                "sha256 of the data does not match etcd's checksum".into(),
            ));
        }
        // The file is stored as etcdctl stores it: data, then the 32-byte checksum.
        file.write_all(&sum).map_err(io)?;
        file.flush().map_err(io)?;
        file.get_ref().sync_all().map_err(io)?;
        Ok(written + 32)
    }
    .await;
    match result {
        Ok(n) => {
            std::fs::rename(&part, to).map_err(|source| SaveError::Io {
                path: to.to_path_buf(),
                source,
            })?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}
