//! Receiving a snapshot as a stream of bytes — from a storage location, or a local `.gz`
//! file — into a private temporary file, checked on the way.
//!
//! - gzip is recognised by its magic bytes (`1f 8b`), never by a name: a bbolt database
//!   starts with page 0's id (zero bytes), so the two cannot be confused. A gzip stream
//!   is decompressed as it arrives (every member of a multi-member file), its CRC-32 and
//!   length checked at the end; the file keeps what was stored or the snapshot itself,
//!   as asked ([`Form`]).
//! - The snapshot's sha256 trailer (what etcd sends and `etcdctl snapshot save` stores:
//!   SHA-256 over everything before the last 32 bytes) is computed while the bytes pass
//!   ([`TrailerCheck`]), without a second read of the file: a truncated or damaged
//!   snapshot is refused by [`Receiver::finish`], as [`crate::snapshot::verify`] would
//!   refuse it.
//! - The file is created `0600` (it holds every Secret of the cluster) in the directory
//!   given — the destination's, so that publishing is a rename on one filesystem — and
//!   removed when dropped unless [`Received::persist`]ed; a failed or refused receive
//!   leaves nothing behind.
//!
//! Memory: one chunk at a time plus the decompressor's window.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::snapshot::SnapshotError;

/// The first bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `head` (the first bytes of a file or object) starts a gzip stream.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC)
}

const SHA_LEN: usize = 32;

/// The sha256 trailer check of a snapshot fed in pieces: the same answer as the whole
/// file's check ([`crate::snapshot::verify`]'s first step), whatever the pieces.
#[derive(Clone, Default)]
pub struct TrailerCheck {
    hasher: Sha256,
    /// The last (at most 32) bytes seen: the trailer, once the stream ends.
    tail: Vec<u8>,
    len: u64,
}

impl TrailerCheck {
    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail.len() + data.len() <= SHA_LEN {
            self.tail.extend_from_slice(data);
            return;
        }
        // Everything but the last 32 bytes of tail + data is hashed.
        let emit = self.tail.len() + data.len() - SHA_LEN;
        if emit <= self.tail.len() {
            self.hasher.update(&self.tail[..emit]);
            self.tail.drain(..emit);
            self.tail.extend_from_slice(data);
        } else {
            self.hasher.update(&self.tail);
            let from_data = emit - self.tail.len();
            self.hasher.update(&data[..from_data]);
            self.tail.clear();
            self.tail.extend_from_slice(&data[from_data..]);
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The verdict on everything fed: a trailer that matches (or, with `skip`, any file).
    pub fn finish(self, skip: bool) -> Result<(), SnapshotError> {
        if self.len % 512 == SHA_LEN as u64 {
            if !skip {
                let actual = self.hasher.finalize();
                if actual.as_slice() != self.tail.as_slice() {
                    return Err(SnapshotError::HashMismatch {
                        expected: hex(&self.tail),
                        actual: hex(&actual),
                    });
                }
            }
            Ok(())
        } else if skip {
            Ok(())
        } else {
            Err(SnapshotError::NoTrailer(self.len))
        }
    }
}

impl Write for TrailerCheck {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What the received file holds when the stream is gzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The bytes as stored (a `.gz` stays a `.gz`; it is still decompressed and checked
    /// on the way).
    AsStored,
    /// The snapshot itself (a gzip stream is decompressed into the file).
    Decompressed,
}

/// Why a received snapshot was refused, or could not be written. The temporary file is
/// gone.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The local file could not be created or written.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file (or the directory it was to be made in).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The gzip stream is damaged or cut short.
    #[error("the gzip stream is damaged or truncated: {0}")]
    Gzip(String),
    /// The snapshot failed its sha256 trailer check.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Publishing would replace a file and replacing was not asked for.
    #[error("{} already exists; it was left as it was", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

impl ReceiveError {
    /// Never: the bytes or the disk must change first.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// The file, with the sha256 check fed alongside it.
struct Tee {
    file: BufWriter<std::fs::File>,
    check: TrailerCheck,
    /// Whether writing the file failed: behind a decoder, an error is the file's (a full
    /// disk) or else the stream's (damaged gzip).
    file_failed: bool,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self
            .file
            .write(buf)
            .inspect_err(|_| self.file_failed = true)?;
        self.check.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

enum Pipe {
    /// Not yet two bytes: gzip or not is still open.
    Undecided(Tee),
    /// A plain snapshot: file and check see the same bytes.
    Plain(Tee),
    /// gzip kept as stored: the file gets the stream, the check the decompressed bytes.
    GzipKept {
        file: BufWriter<std::fs::File>,
        decoder: flate2::write::MultiGzDecoder<TrailerCheck>,
    },
    /// gzip decompressed into the file.
    GzipDecompressed(flate2::write::MultiGzDecoder<Tee>),
    /// Only while [`Receiver::decide`] rebuilds the pipe.
    Taken,
}

/// A snapshot being received into a private temporary file (see the module doc).
pub struct Receiver {
    temp: tempfile::TempPath,
    pipe: Pipe,
    head: Vec<u8>,
    form: Form,
    skip_hash: bool,
    stored: u64,
}

/// A received snapshot that passed its checks, in its temporary file.
#[derive(Debug)]
pub struct Received {
    temp: tempfile::TempPath,
    /// Whether the stream was gzip.
    pub gzip: bool,
    /// Bytes received (as stored).
    pub stored_bytes: u64,
    /// Bytes of the snapshot itself (decompressed).
    pub snapshot_bytes: u64,
    /// Bytes in the file.
    pub file_bytes: u64,
}

impl Receiver {
    /// Starts a receive into a new `0600` file in `dir`. `skip_hash` accepts a snapshot
    /// without (or with a wrong) sha256 trailer, as `verify --skip-hash-check` does.
    pub fn new(dir: &Path, form: Form, skip_hash: bool) -> Result<Receiver, ReceiveError> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        // tempfile creates its files 0600.
        let named = tempfile::Builder::new()
            .prefix(".lifeboat-snapshot-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| ReceiveError::Write {
                path: dir.to_owned(),
                reason: e.to_string(),
            })?;
        let (file, temp) = named.into_parts();
        Ok(Receiver {
            temp,
            pipe: Pipe::Undecided(Tee {
                file: BufWriter::with_capacity(1 << 20, file),
                check: TrailerCheck::default(),
                file_failed: false,
            }),
            head: Vec::with_capacity(2),
            form,
            skip_hash,
            stored: 0,
        })
    }

    /// The temporary file's path (removed on drop).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Receives the next bytes.
    pub fn write_chunk(&mut self, data: &[u8]) -> Result<(), ReceiveError> {
        self.stored += data.len() as u64;
        if let Pipe::Undecided(_) = self.pipe {
            let take = (2 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            if self.head.len() < 2 {
                return Ok(());
            }
            self.decide();
            let head = std::mem::take(&mut self.head);
            self.feed(&head)?;
            return self.feed(&data[take..]);
        }
        self.feed(data)
    }

    /// Builds the pipe for what the first bytes say (gzip or not).
    fn decide(&mut self) {
        if let Pipe::Undecided(tee) = std::mem::replace(&mut self.pipe, Pipe::Taken) {
            self.pipe = match (is_gzip(&self.head), self.form) {
                (false, _) => Pipe::Plain(tee),
                (true, Form::AsStored) => Pipe::GzipKept {
                    file: tee.file,
                    decoder: flate2::write::MultiGzDecoder::new(tee.check),
                },
                (true, Form::Decompressed) => {
                    Pipe::GzipDecompressed(flate2::write::MultiGzDecoder::new(tee))
                }
            };
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), ReceiveError> {
        if data.is_empty() {
            return Ok(());
        }
        let path = self.temp.to_path_buf();
        let werr = |e: std::io::Error| ReceiveError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };
        match &mut self.pipe {
            Pipe::Undecided(tee) | Pipe::Plain(tee) => tee.write_all(data).map_err(werr),
            Pipe::Taken => Err(taken(&path)),
            Pipe::GzipKept { file, decoder } => {
                file.write_all(data).map_err(werr)?;
                decoder
                    .write_all(data)
                    .map_err(|e| ReceiveError::Gzip(e.to_string()))
            }
            // An error of the file is told apart from a damaged stream by its kind: the
            // decoder reports a bad stream as InvalidInput/InvalidData.
            Pipe::GzipDecompressed(decoder) => decoder
                .write_all(data)
                .map_err(|e| gzip_or_write(decoder.get_ref(), &path, e)),
        }
    }

    /// Ends the stream: the gzip stream's end and CRC, the sha256 trailer, then the file
    /// synced to disk. An error removes the file.
    pub fn finish(mut self) -> Result<Received, ReceiveError> {
        if let Pipe::Undecided(_) = self.pipe {
            // Fewer than two bytes in all: certainly not gzip.
            self.decide();
            let head = std::mem::take(&mut self.head);
            self.feed(&head)?;
        }
        let path = self.temp.to_path_buf();
        let werr = |e: std::io::Error| ReceiveError::Write {
            path: path.clone(),
            reason: e.to_string(),
        };
        let (gzip, mut file, check) = match self.pipe {
            Pipe::Undecided(tee) | Pipe::Plain(tee) => (false, tee.file, tee.check),
            Pipe::Taken => return Err(taken(&path)),
            Pipe::GzipKept { file, decoder } => {
                let check = decoder
                    .finish()
                    .map_err(|e| ReceiveError::Gzip(e.to_string()))?;
                (true, file, check)
            }
            Pipe::GzipDecompressed(mut decoder) => {
                decoder
                    .try_finish()
                    .map_err(|e| gzip_or_write(decoder.get_ref(), &path, e))?;
                let tee = decoder.finish().map_err(&werr)?;
                (true, tee.file, tee.check)
            }
        };
        let snapshot_bytes = check.len();
        check.finish(self.skip_hash)?;
        file.flush().map_err(&werr)?;
        let file = file.into_inner().map_err(|e| werr(e.into_error()))?;
        file.sync_all().map_err(&werr)?;
        let file_bytes = file.metadata().map_err(&werr)?.len();
        Ok(Received {
            gzip,
            stored_bytes: self.stored,
            snapshot_bytes,
            file_bytes,
            temp: self.temp,
        })
    }
}

/// A decoder's error: the file's when writing it failed, else the gzip stream's.
fn gzip_or_write(tee: &Tee, path: &Path, e: std::io::Error) -> ReceiveError {
    if tee.file_failed {
        ReceiveError::Write {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    } else {
        ReceiveError::Gzip(e.to_string())
    }
}

/// A write after an earlier one failed half-way (the pipe was being rebuilt).
fn taken(path: &Path) -> ReceiveError {
    ReceiveError::Write {
        path: path.to_owned(),
        reason: "an earlier write failed; start the receive again".into(),
    }
}

impl Received {
    /// The file's path (removed when this is dropped, unless persisted).
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Moves the file to `to` (in the same directory it was received into, or at least on
    /// the same filesystem). Without `replace`, an existing `to` is left alone and the
    /// receive fails with [`ReceiveError::Exists`] (checked by the rename itself, so no
    /// file that appeared meanwhile is replaced either).
    pub fn persist(self, to: &Path, replace: bool) -> Result<PathBuf, ReceiveError> {
        let done = if replace {
            self.temp.persist(to)
        } else {
            self.temp.persist_noclobber(to)
        };
        match done {
            Ok(()) => Ok(to.to_owned()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(ReceiveError::Exists {
                    path: to.to_owned(),
                })
            }
            Err(e) => Err(ReceiveError::Write {
                path: to.to_owned(),
                reason: e.error.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::os::unix::fs::PermissionsExt;

    /// A file shaped like a snapshot: whole 512-byte blocks and their sha256.
    fn snapshot_like(blocks: usize) -> Vec<u8> {
        let mut data: Vec<u8> = (0..blocks * 512).map(|i| (i * 7 % 251) as u8).collect();
        let sum = Sha256::digest(&data);
        data.extend_from_slice(&sum);
        data
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn receive(
        dir: &Path,
        bytes: &[u8],
        chunk: usize,
        form: Form,
    ) -> Result<(Received, Vec<u8>), ReceiveError> {
        let mut r = Receiver::new(dir, form, false)?;
        for c in bytes.chunks(chunk.max(1)) {
            r.write_chunk(c)?;
        }
        let got = r.finish()?;
        let content = std::fs::read(got.path()).unwrap();
        Ok((got, content))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[rstest]
    #[case::gzip_magic(&[0x1f, 0x8b, 8], true)]
    #[case::bbolt_page_0(&[0, 0, 0, 0], false)]
    #[case::one_byte(&[0x1f], false)]
    #[case::empty(&[], false)]
    fn gzip_is_told_by_its_magic(#[case] head: &[u8], #[case] want: bool) {
        assert_eq!(is_gzip(head), want);
    }

    /// What is stored, as what the file holds: a plain snapshot as it is; gzip kept or
    /// decompressed; chunked at any size (1 byte splits the magic and the trailer).
    #[rstest]
    #[case::plain(false, Form::AsStored, 1)]
    #[case::plain_asked_decompressed(false, Form::Decompressed, 7)]
    #[case::gzip_kept(true, Form::AsStored, 1)]
    #[case::gzip_kept_big_chunks(true, Form::AsStored, 1 << 20)]
    #[case::gzip_decompressed(true, Form::Decompressed, 1)]
    #[case::gzip_decompressed_odd_chunks(true, Form::Decompressed, 333)]
    fn a_whole_snapshot_is_received(#[case] gz: bool, #[case] form: Form, #[case] chunk: usize) {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot_like(9);
        let stored = if gz { gzip(&snap) } else { snap.clone() };
        let (got, content) = receive(dir.path(), &stored, chunk, form).unwrap();
        let want = if gz && form == Form::Decompressed {
            &snap
        } else {
            &stored
        };
        assert!(&content == want);
        assert_eq!(got.gzip, gz);
        assert_eq!(got.stored_bytes, stored.len() as u64);
        assert_eq!(got.snapshot_bytes, snap.len() as u64);
        assert_eq!(got.file_bytes, want.len() as u64);
        // It holds every Secret of the cluster.
        let mode = std::fs::metadata(got.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A multi-member gzip file (`cat a.gz b.gz`) is one stream.
    #[test]
    fn every_gzip_member_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot_like(4);
        let mut stored = gzip(&snap[..1000]);
        stored.extend(gzip(&snap[1000..]));
        let (_, content) = receive(dir.path(), &stored, 100, Form::Decompressed).unwrap();
        assert!(content == snap);
    }

    enum Damage {
        CutInHalf,
        CutTrailer,
        FlipInData,
        FlipInGzip,
        GzipCut,
        GzipCutInData,
        GarbageAfterMagic,
        Empty,
    }

    #[rstest]
    #[case::truncated(false, Damage::CutInHalf, "no sha256 trailer")]
    #[case::trailer_cut(false, Damage::CutTrailer, "no sha256 trailer")]
    #[case::bit_flip(false, Damage::FlipInData, "hash mismatch")]
    #[case::bit_flip_then_gzipped(true, Damage::FlipInData, "hash mismatch")]
    #[case::damaged_gzip(true, Damage::FlipInGzip, "gzip stream is damaged")]
    #[case::gzip_cut_short(true, Damage::GzipCut, "gzip stream is damaged")]
    #[case::gzip_cut_in_its_data(true, Damage::GzipCutInData, "gzip stream is damaged")]
    #[case::gzip_magic_then_garbage(true, Damage::GarbageAfterMagic, "gzip stream is damaged")]
    #[case::nothing(false, Damage::Empty, "no sha256 trailer (0 bytes")]
    fn a_damaged_snapshot_is_refused_and_leaves_nothing(
        #[case] gz: bool,
        #[case] damage: Damage,
        #[case] want: &str,
    ) {
        let mut snap = snapshot_like(9);
        if let Damage::FlipInData = damage {
            snap[1000] ^= 0x40;
        }
        let mut stored = if gz { gzip(&snap) } else { snap };
        match damage {
            Damage::CutInHalf => stored.truncate(stored.len() / 2),
            Damage::CutTrailer => stored.truncate(stored.len() - 1),
            Damage::FlipInGzip => {
                let at = stored.len() / 2;
                stored[at] ^= 0xff;
            }
            Damage::GzipCut => stored.truncate(stored.len() - 4),
            Damage::GzipCutInData => stored.truncate(stored.len() / 2),
            Damage::GarbageAfterMagic => {
                stored = vec![0x1f, 0x8b, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 2]
            }
            Damage::Empty => stored.clear(),
            Damage::FlipInData => {}
        }
        for form in [Form::AsStored, Form::Decompressed] {
            let dir = tempfile::tempdir().unwrap();
            let err = receive(dir.path(), &stored, 4096, form).unwrap_err();
            assert!(err.to_string().contains(want), "{form:?}: {err}");
            assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
        }
    }

    #[test]
    fn skip_hash_accepts_a_raw_database() {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot_like(3);
        let raw = &snap[..snap.len() - 32];
        let mut r = Receiver::new(dir.path(), Form::AsStored, true).unwrap();
        r.write_chunk(raw).unwrap();
        assert_eq!(r.finish().unwrap().file_bytes, raw.len() as u64);
    }

    #[test]
    fn persisting_replaces_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("s.db");
        std::fs::write(&to, b"mine").unwrap();
        let snap = snapshot_like(2);
        let (got, _) = receive(dir.path(), &snap, 512, Form::AsStored).unwrap();
        let err = got.persist(&to, false).unwrap_err();
        assert!(matches!(err, ReceiveError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), b"mine");
        // The refused temporary file is gone too.
        assert_eq!(entries(dir.path()), ["s.db"]);
        let (got, _) = receive(dir.path(), &snap, 512, Form::AsStored).unwrap();
        got.persist(&to, true).unwrap();
        assert!(std::fs::read(&to).unwrap() == snap);
        assert_eq!(entries(dir.path()), ["s.db"]);
        let mode = std::fs::metadata(&to).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    proptest::proptest! {
        /// Fed in any pieces, the trailer check answers as the whole file's check does.
        #[test]
        fn the_streamed_check_is_the_whole_file_check(
            blocks in 0usize..5,
            extra in proptest::sample::select(vec![0usize, 1, 31, 32, 33, 100]),
            flip in proptest::option::of(0usize..3000),
            cuts in proptest::collection::vec(1usize..700, 0..8),
        ) {
            let mut data = snapshot_like(blocks);
            data.truncate(data.len().saturating_sub(32));
            data.extend(std::iter::repeat_n(9u8, extra));
            if extra == 32 {
                let n = data.len() - 32;
                let sum = Sha256::digest(&data[..n]);
                data[n..].copy_from_slice(&sum);
            }
            if let Some(f) = flip.filter(|f| *f < data.len()) {
                data[f] ^= 1;
            }
            let whole = crate::snapshot::check_trailer(&data, false, &|| {}).map(|_| ());
            let mut check = TrailerCheck::default();
            let mut rest = data.as_slice();
            for c in cuts {
                let (a, b) = rest.split_at(c.min(rest.len()));
                check.update(a);
                rest = b;
            }
            check.update(rest);
            proptest::prop_assert_eq!(check.finish(false), whole);
        }
    }
}
