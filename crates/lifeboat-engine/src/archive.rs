//! The backup tarball: gzip(tar) in Velero's format 1.1.0, written as a stream.
//!
//! Invariant: the first entry is `metadata/version`; every item is written twice, at the
//! legacy unversioned path and at the `<version>-preferredversion` path, as Velero does.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use lifeboat_types::format::layout::{FORMAT_VERSION, VERSION_ENTRY, item_path};

/// Writes Velero tarballs into any `Write`.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
    mtime: u64,
    bytes_in: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a tarball (gzip level `level`, 0-9) and writes `metadata/version`.
    pub fn new(out: W, level: u32) -> io::Result<Self> {
        let gz = GzEncoder::new(out, Compression::new(level.min(9)));
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut w = ArchiveWriter {
            tar,
            mtime,
            bytes_in: 0,
        };
        w.entry(VERSION_ENTRY, format!("{FORMAT_VERSION}\n").as_bytes())?;
        Ok(w)
    }

    fn entry(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(self.mtime);
        self.bytes_in += data.len() as u64;
        self.tar.append_data(&mut h, path, data)
    }

    /// Writes one item (its JSON) at both of Velero's paths.
    pub fn add_item(
        &mut self,
        group_resource: &str,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        json: &[u8],
    ) -> io::Result<()> {
        self.entry(&item_path(group_resource, None, namespace, name), json)?;
        self.entry(
            &item_path(group_resource, Some(version), namespace, name),
            json,
        )
    }

    /// Uncompressed item bytes written so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Ends the tar and the gzip stream, returning the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let gz = self.tar.into_inner()?;
        gz.finish()
    }
}

/// A `Write` that cuts the stream into chunks and hands each to an async consumer (the
/// uploader) through a bounded channel, so that at most a few chunks are in memory.
pub struct ChunkSink {
    buf: Vec<u8>,
    chunk: usize,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    written: u64,
}

impl ChunkSink {
    /// A sink sending chunks of `chunk` bytes into `tx`.
    pub fn new(chunk: usize, tx: tokio::sync::mpsc::Sender<Bytes>) -> Self {
        ChunkSink {
            buf: Vec::with_capacity(chunk),
            chunk,
            tx,
            written: 0,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        self.tx
            .blocking_send(Bytes::from(full))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Compressed bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() >= self.chunk {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// gzip-compresses a small buffer (the per-backup JSON files).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn tarball_layout() {
        let mut w = ArchiveWriter::new(Vec::new(), 6).unwrap();
        w.add_item(
            "deployments.apps",
            "v1",
            Some("ns1"),
            "web",
            br#"{"kind":"Deployment"}"#,
        )
        .unwrap();
        let long = "x".repeat(200);
        w.add_item("widgets.example.com", "v1alpha1", None, &long, b"{}")
            .unwrap();
        let gz = w.finish().unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
        let mut entries = vec![];
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(e.header().mode().unwrap(), 0o755);
            entries.push((e.path().unwrap().to_string_lossy().into_owned(), s));
        }
        assert_eq!(entries[0], ("metadata/version".into(), "1.1.0\n".into()));
        assert_eq!(
            entries[1].0,
            "resources/deployments.apps/namespaces/ns1/web.json"
        );
        assert_eq!(
            entries[2].0,
            "resources/deployments.apps/v1-preferredversion/namespaces/ns1/web.json"
        );
        assert_eq!(entries[2].1, r#"{"kind":"Deployment"}"#);
        assert_eq!(
            entries[4].0,
            format!("resources/widgets.example.com/v1alpha1-preferredversion/cluster/{long}.json")
        );
        assert_eq!(entries.len(), 5);
    }

    #[test]
    fn chunk_sink_cuts_and_forwards() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut s = ChunkSink::new(4, tx);
        s.write_all(b"abcdefghij").unwrap();
        s.flush().unwrap();
        drop(s);
        let mut got = vec![];
        while let Ok(b) = rx.try_recv() {
            got.push(b);
        }
        assert_eq!(got, [&b"abcd"[..], b"efgh", b"ij"]);
    }
}
