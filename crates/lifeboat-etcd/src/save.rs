//! `etcd snapshot save`: streams etcd's Maintenance/Snapshot RPC into a temporary file,
//! checks the SHA-256 etcd sends as its last message, and only then publishes the file
//! under its name (rename) — a half-written or damaged snapshot never carries the final
//! name.
//!
//! The RPC is spoken natively: gRPC is HTTP/2 with length-prefixed protobuf messages, and
//! this call has an empty request and one three-field response message, so a plain
//! HTTP/2 client and a few lines of protobuf decoding do (no code generation). etcd's JSON
//! gateway (`/v3/maintenance/snapshot`) would also serve it, at 1.6x the time (base64 and
//! JSON on both sides).

use std::io::Write;
use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
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

/// Which TLS file a [`SaveError::TlsFile`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// [`EtcdEndpoint::cacert`].
    CaBundle,
    /// [`EtcdEndpoint::cert`].
    ClientCert,
    /// [`EtcdEndpoint::key`].
    ClientKey,
    /// The certificate and key together (they do not form an identity, or one is missing).
    ClientPair,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::CaBundle => "the CA bundle",
            TlsFile::ClientCert => "the client certificate",
            TlsFile::ClientKey => "the client key",
            TlsFile::ClientPair => "the client certificate and key",
        })
    }
}

/// What went wrong in the TLS handshake, when that is why etcd could not be reached;
/// read from rustls' typed error, never from message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// etcd's server certificate is not signed by the trusted CA bundle.
    UnknownIssuer,
    /// etcd's server certificate has expired.
    ServerCertExpired,
    /// etcd's server certificate is not valid yet (a clock problem, or a new certificate).
    ServerCertNotYetValid,
    /// etcd refused the client certificate, or wanted one and got none.
    ClientCertRefused,
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsProblem::UnknownIssuer => {
                "etcd's server certificate is not signed by the trusted CA bundle"
            }
            TlsProblem::ServerCertExpired => "etcd's server certificate has expired; renew it",
            TlsProblem::ServerCertNotYetValid => {
                "etcd's server certificate is not valid yet; check this machine's clock"
            }
            TlsProblem::ClientCertRefused => {
                "etcd refused the client certificate (missing, expired or not signed by a CA etcd trusts)"
            }
        })
    }
}

impl TlsProblem {
    /// The TLS problem behind `e`, if its chain holds a rustls error that names one.
    /// rustls' error travels inside an `io::Error` (itself inside another one, as hyper
    /// hands it on), whose `source()` skips what it wraps, so each `io::Error` of the
    /// chain is opened with `get_ref()` down to what it carries.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Option<TlsProblem> {
        let mut cur = Some(e);
        while let Some(link) = cur {
            let mut inner = link;
            while let Some(io) = inner.downcast_ref::<std::io::Error>() {
                match io.get_ref() {
                    Some(wrapped) => inner = wrapped,
                    None => break,
                }
            }
            if let Some(problem) = inner
                .downcast_ref::<rustls::Error>()
                .and_then(Self::from_rustls)
            {
                return Some(problem);
            }
            cur = link.source();
        }
        None
    }

    fn from_rustls(e: &rustls::Error) -> Option<TlsProblem> {
        use rustls::AlertDescription as A;
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer => Some(TlsProblem::UnknownIssuer),
                C::Expired | C::ExpiredContext { .. } => Some(TlsProblem::ServerCertExpired),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    Some(TlsProblem::ServerCertNotYetValid)
                }
                _ => None,
            },
            rustls::Error::AlertReceived(
                A::BadCertificate
                | A::CertificateExpired
                | A::CertificateRequired
                | A::UnknownCA
                | A::CertificateUnknown
                | A::UnsupportedCertificate
                | A::CertificateRevoked,
            ) => Some(TlsProblem::ClientCertRefused),
            _ => None,
        }
    }
}

/// Why a snapshot could not be saved. Nothing is left under the target name.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// No endpoint was given.
    #[error("no etcd endpoint was given")]
    NoEndpoint,
    /// A TLS file could not be read or parsed.
    #[error("cannot use {what} {}: {reason}", path.display())]
    TlsFile {
        /// Which file.
        what: TlsFile,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP/2 client could not be set up with these TLS settings.
    #[error("cannot set up a TLS client for etcd")]
    Client(#[source] reqwest::Error),
    /// Every endpoint failed; the last error is given.
    #[error("cannot reach etcd at {endpoint}{}", tls.map(|t| format!(" ({t})")).unwrap_or_default())]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The TLS handshake's problem, when that is the reason.
        tls: Option<TlsProblem>,
        /// Why.
        #[source]
        source: reqwest::Error,
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
    /// The stream broke off.
    #[error("the snapshot stream from {endpoint} broke off; nothing was saved")]
    Broken {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// Writing the file failed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SaveError {
    /// Whether trying again later can help: etcd could not be reached (but not for a
    /// certificate problem), or the stream broke off or arrived damaged. Settings,
    /// certificates, etcd's refusal and the local disk stay as they are.
    pub fn is_retryable(&self) -> bool {
        match self {
            SaveError::Unreachable { tls, .. } => tls.is_none(),
            SaveError::Damaged { .. } | SaveError::Broken { .. } => true,
            _ => false,
        }
    }
}

fn read_tls(what: TlsFile, p: &Path) -> Result<Vec<u8>, SaveError> {
    std::fs::read(p).map_err(|e| SaveError::TlsFile {
        what,
        path: p.to_path_buf(),
        reason: e.to_string(),
    })
}

fn client(ep: &EtcdEndpoint) -> Result<reqwest::Client, SaveError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .http2_prior_knowledge();
    if let Some(ca) = &ep.cacert {
        let pem = read_tls(TlsFile::CaBundle, ca)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SaveError::TlsFile {
                what: TlsFile::CaBundle,
                path: ca.clone(),
                reason: e.to_string(),
            })?;
        b = b.tls_certs_only(certs);
    }
    match (&ep.cert, &ep.key) {
        (Some(c), Some(k)) => {
            let mut pem = read_tls(TlsFile::ClientCert, c)?;
            pem.extend_from_slice(b"\n");
            pem.extend_from_slice(&read_tls(TlsFile::ClientKey, k)?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| SaveError::TlsFile {
                what: TlsFile::ClientPair,
                path: c.clone(),
                reason: e.to_string(),
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        (Some(c), None) | (None, Some(c)) => {
            return Err(SaveError::TlsFile {
                what: TlsFile::ClientPair,
                path: c.clone(),
                reason: "client TLS needs both the certificate and its key".into(),
            });
        }
    }
    b.build().map_err(SaveError::Client)
}

/// The fields of etcdserverpb.SnapshotResponse that matter: remaining_bytes (2) and
/// blob (3); the header (1) is skipped.
fn decode_snapshot_response(msg: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut at = 0;
    let varint = |at: &mut usize| -> Result<u64, String> {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = *msg.get(*at).ok_or("message ends inside a number")?;
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err("number too long".into());
            }
        }
    };
    let (mut remaining, mut blob): (u64, &[u8]) = (0, &[]);
    while at < msg.len() {
        let key = varint(&mut at)?;
        match key & 7 {
            0 => {
                let v = varint(&mut at)?;
                if key >> 3 == 2 {
                    remaining = v;
                }
            }
            2 => {
                let len = varint(&mut at)? as usize;
                let field = msg
                    .get(at..at.saturating_add(len))
                    .ok_or("field runs past the message")?;
                at += len;
                if key >> 3 == 3 {
                    blob = field;
                }
            }
            w => return Err(format!("unexpected wire type {w}")),
        }
    }
    Ok((remaining, blob))
}

/// The cluster id in a SnapshotResponse's header (field 1, an etcdserverpb.ResponseHeader
/// whose field 1 is `cluster_id`); `None` when the message has no header or no id.
fn header_cluster_id(msg: &[u8]) -> Option<u64> {
    /// The value of field `number` of a protobuf message: a varint, or the bytes of a
    /// length-delimited field (`None` if absent or unreadable).
    fn field(msg: &[u8], number: u64) -> Option<Result<u64, &[u8]>> {
        let mut at = 0;
        let varint = |at: &mut usize| -> Option<u64> {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let b = *msg.get(*at)?;
                *at += 1;
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return Some(v);
                }
                shift += 7;
                if shift > 63 {
                    return None;
                }
            }
        };
        while at < msg.len() {
            let key = varint(&mut at)?;
            let value = match key & 7 {
                0 => Ok(varint(&mut at)?),
                2 => {
                    let len = usize::try_from(varint(&mut at)?).ok()?;
                    let bytes = msg.get(at..at.checked_add(len)?)?;
                    at += len;
                    Err(bytes)
                }
                _ => return None,
            };
            if key >> 3 == number {
                return Some(value);
            }
        }
        None
    }
    let header = field(msg, 1)?.err()?;
    field(header, 1)?.ok().filter(|id| *id != 0)
}

/// The cluster id in the header of etcd's Maintenance/Status answer: a unary call, whose
/// header etcd always fills (the Snapshot stream of etcd 3.4 carries no header). `None`
/// when etcd does not answer it.
async fn status_cluster_id(client: &reqwest::Client, endpoint: &str) -> Option<u64> {
    let url = format!(
        "{}/etcdserverpb.Maintenance/Status",
        endpoint.trim_end_matches('/')
    );
    let resp = client
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8; 5])
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = resp.bytes().await.ok()?;
    // One gRPC message: a compressed flag (0), 4 bytes big-endian length, the message.
    let len = u32::from_be_bytes(body.get(1..5)?.try_into().ok()?) as usize;
    if body.first() != Some(&0) {
        return None;
    }
    header_cluster_id(body.get(5..5usize.checked_add(len)?)?)
}

/// gRPC's status from headers or trailers: Some((code, message)) when present.
fn grpc_status(h: &http::HeaderMap) -> Option<(u32, String)> {
    let code = h.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = h
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(lifeboat_types::format::percent::percent_decode)
        .unwrap_or_default();
    Some((code, message))
}

/// A saved snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Its size in bytes (the sha256 trailer included).
    pub size: u64,
    /// The id of the etcd cluster it was taken from, as etcd's response headers say (the
    /// Snapshot stream's, else the Status call's; `None` if etcd sent none).
    pub cluster_id: Option<u64>,
}

/// Saves a snapshot to `to`. `progress(bytes_so_far, total_estimate)` is called as chunks
/// arrive.
pub async fn save(
    ep: &EtcdEndpoint,
    to: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<Saved, SaveError> {
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
) -> Result<Saved, SaveError> {
    let url = format!(
        "{}/etcdserverpb.Maintenance/Snapshot",
        endpoint.trim_end_matches('/')
    );
    let unreachable = |source: reqwest::Error| SaveError::Unreachable {
        endpoint: endpoint.to_owned(),
        tls: TlsProblem::of(&source),
        source,
    };
    // One empty request message: not compressed, length 0.
    let resp = client
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8; 5])
        .send()
        .await
        .map_err(unreachable)?;
    let refused = |message: String| SaveError::Refused {
        endpoint: endpoint.into(),
        message,
    };
    if !resp.status().is_success() {
        return Err(refused(format!("HTTP {}", resp.status())));
    }
    if let Some((code, message)) = grpc_status(resp.headers())
        && code != 0
    {
        return Err(refused(format!("gRPC status {code}: {message}")));
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
    // The snapshot holds every Secret of the cluster: readable by its owner only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&part).map_err(io)?;
    // A leftover part file keeps its mode through open(): set it.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io)?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    let result = async {
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut checksum: Option<Vec<u8>> = None;
        let mut cluster_id = None;
        let mut buf = bytes::BytesMut::new();
        let mut status = None;
        let mut body = http::Response::from(resp).into_body();
        let mut handle = |msg: &[u8]| -> Result<(), SaveError> {
            let (remaining, blob) = decode_snapshot_response(msg)
                .map_err(|e| damaged(format!("unreadable message: {e}")))?;
            cluster_id = cluster_id.or_else(|| header_cluster_id(msg));
            if checksum.is_some() {
                return Err(damaged("data after the checksum".into()));
            }
            if remaining == 0 && blob.len() == 32 && written > 0 {
                // etcd ends the stream with the SHA-256 of everything sent before it.
                checksum = Some(blob.to_vec());
                return Ok(());
            }
            hasher.update(blob);
            file.write_all(blob).map_err(io)?;
            written += blob.len() as u64;
            progress(written, written + remaining);
            Ok(())
        };
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| SaveError::Broken {
                endpoint: endpoint.to_owned(),
                source,
            })?;
            match frame.into_data() {
                Ok(data) => {
                    buf.extend_from_slice(&data);
                    // gRPC framing: 1 byte compressed flag, 4 bytes big-endian length.
                    while buf.len() >= 5 {
                        if buf[0] != 0 {
                            return Err(damaged("etcd sent a compressed message".into()));
                        }
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                        if buf.len() < 5 + len {
                            break;
                        }
                        let msg = buf.split_to(5 + len);
                        handle(&msg[5..])?;
                    }
                }
                Err(frame) => {
                    if let Some(t) = frame.trailers_ref() {
                        status = grpc_status(t);
                    }
                }
            }
        }
        if let Some((code, message)) = status
            && code != 0
        {
            return Err(refused(format!("gRPC status {code}: {message}")));
        }
        if !buf.is_empty() {
            return Err(damaged("the stream ended inside a message".into()));
        }
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
        Ok(Saved {
            size: written + 32,
            cluster_id,
        })
    }
    .await;
    match result {
        Ok(mut n) => {
            std::fs::rename(&part, to).map_err(|source| SaveError::Io {
                path: to.to_path_buf(),
                source,
            })?;
            if n.cluster_id.is_none() {
                n.cluster_id = status_cluster_id(client, endpoint).await;
            }
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use rustls::{AlertDescription, CertificateError};

    /// An error whose source is an `io::Error` carrying `inner`, as hyper hands rustls'
    /// errors on.
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] std::io::Error);

    fn wrapped(inner: rustls::Error) -> Outer {
        // What reqwest 0.13 reports: an io::Error (Other) around tokio-rustls' io::Error
        // (InvalidData) around rustls' error.
        Outer(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            inner,
        )))
    }

    #[rstest]
    #[case(
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        Some(TlsProblem::UnknownIssuer)
    )]
    #[case(
        rustls::Error::InvalidCertificate(CertificateError::Expired),
        Some(TlsProblem::ServerCertExpired)
    )]
    #[case(
        rustls::Error::InvalidCertificate(CertificateError::NotValidYet),
        Some(TlsProblem::ServerCertNotYetValid)
    )]
    #[case(
        rustls::Error::AlertReceived(AlertDescription::BadCertificate),
        Some(TlsProblem::ClientCertRefused)
    )]
    #[case(
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        Some(TlsProblem::ClientCertRefused)
    )]
    #[case(
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
        None
    )]
    #[case(rustls::Error::AlertReceived(AlertDescription::HandshakeFailure), None)]
    fn tls_problems_are_read_from_rustls_inside_an_io_error(
        #[case] inner: rustls::Error,
        #[case] want: Option<TlsProblem>,
    ) {
        assert_eq!(TlsProblem::of(&wrapped(inner.clone())), want);
        // And when the rustls error is itself a link of the chain.
        assert_eq!(TlsProblem::of(&inner), want);
    }

    #[test]
    fn a_plain_io_error_is_no_tls_problem() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(TlsProblem::of(&e), None);
    }

    #[test]
    fn snapshot_response_fields_are_decoded() {
        // remaining_bytes = 300 (field 2, varint), blob = "abc" (field 3, bytes).
        let msg = [0x10, 0xac, 0x02, 0x1a, 3, b'a', b'b', b'c'];
        assert_eq!(decode_snapshot_response(&msg), Ok((300, &b"abc"[..])));
        assert_eq!(
            decode_snapshot_response(&[0x1a, 9, b'a']),
            Err("field runs past the message".into())
        );
        assert_eq!(
            decode_snapshot_response(&[0x10, 0x80]),
            Err("message ends inside a number".into())
        );
    }

    #[rstest::rstest]
    // header { cluster_id = 0x1234 member_id = 7 }, remaining_bytes = 300, blob = "abc"
    #[case::header_first(&[0x0a, 5, 0x08, 0xb4, 0x24, 0x10, 7, 0x10, 0xac, 0x02, 0x1a, 3, b'a', b'b', b'c'], Some(0x1234))]
    // the header after the other fields
    #[case::header_last(&[0x1a, 1, b'a', 0x0a, 3, 0x08, 0xb4, 0x24], Some(0x1234))]
    #[case::no_header(&[0x10, 0xac, 0x02, 0x1a, 3, b'a', b'b', b'c'], None)]
    #[case::header_without_cluster_id(&[0x0a, 2, 0x10, 7], None)]
    #[case::header_runs_past_the_message(&[0x0a, 9, 0x08, 1], None)]
    fn the_cluster_id_is_read_from_the_response_header(
        #[case] msg: &[u8],
        #[case] want: Option<u64>,
    ) {
        assert_eq!(header_cluster_id(msg), want);
    }
}
