//! Reading etcd 3.4 snapshot files without etcd or etcdctl: a bbolt database (4096-byte
//! pages) followed by a 32-byte SHA-256 trailer over everything before it.
//!
//! - [`status`] reports what `etcdctl snapshot status` reports (hash: CRC-32C over every
//!   bucket name, key and value in order; revision: the main revision of the last key of
//!   the `key` bucket; totalKey: every key of every bucket; totalSize: the database's high
//!   water mark times the page size), after the same integrity check.
//! - [`verify`] checks the trailer and walks the whole B+tree: both meta pages, the
//!   freelist, every reachable page once, and every page either reachable or free.
//!
//! Invariant: the file is only read; every offset is bounds-checked, so a hostile file
//! yields an error, never a panic.

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};

pub(crate) use crate::mmap::{Mapped, RELEASE_EVERY, read_file};

pub(crate) const MAGIC: u32 = 0xED0C_DAED;
pub(crate) const VERSION: u32 = 2;
pub(crate) const PAGE_HEADER: usize = 16;
pub(crate) const BRANCH: u16 = 0x01;
pub(crate) const LEAF: u16 = 0x02;
pub(crate) const META: u16 = 0x04;
pub(crate) const FREELIST: u16 = 0x10;
pub(crate) const BUCKET_LEAF: u32 = 0x01;
pub(crate) const ELEMENT: usize = 16;
const SHA_LEN: usize = 32;
/// The meta page's freelist id when the freelist is not persisted.
const NO_FREELIST: u64 = u64::MAX;

/// Why a snapshot file was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("cannot read snapshot {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Not an etcd (bbolt) database.
    #[error("not an etcd snapshot: {0}")]
    NotEtcd(String),
    /// The SHA-256 trailer does not match the data (bit flip or truncation).
    #[error(
        "snapshot hash mismatch: the sha256 trailer is {expected}, the data hashes to {actual}; the file is damaged or truncated"
    )]
    HashMismatch {
        /// Trailer value.
        expected: String,
        /// Computed value.
        actual: String,
    },
    /// The file has no SHA-256 trailer (a copied db file, or a truncated snapshot).
    #[error(
        "snapshot has no sha256 trailer ({0} bytes is not a whole number of pages plus 32); it was truncated, or it is a raw db file (which is accepted only when the hash check is skipped)"
    )]
    NoTrailer(u64),
    /// The B+tree is inconsistent.
    #[error("snapshot integrity check failed: {0}")]
    Corrupt(String),
}

impl SnapshotError {
    /// Never: the file is what it is.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// What `etcdctl snapshot status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// CRC-32C of bucket names, keys and values.
    pub hash: u32,
    /// The newest main revision.
    pub revision: i64,
    /// Keys in every bucket.
    pub total_key: u64,
    /// Database size in bytes (high water mark × page size).
    pub total_size: u64,
}

/// A read-only view of a bbolt file in memory.
pub(crate) struct Db<'a> {
    data: &'a [u8],
    /// The mapping `data` lives in, released every [`RELEASE_EVERY`] bytes read.
    mapped: Option<&'a Mapped>,
    touched: std::cell::Cell<usize>,
    pub(crate) page_size: usize,
    pub(crate) root: u64,
    pub(crate) root_sequence: u64,
    freelist: u64,
    pub(crate) high_water: u64,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

pub(crate) fn fnv64a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One meta page, validated.
#[derive(Debug, Clone, Copy)]
struct Meta {
    page_size: u32,
    root: u64,
    root_sequence: u64,
    freelist: u64,
    pgid: u64,
    txid: u64,
}

fn read_meta(data: &[u8], off: usize) -> Result<Meta, String> {
    let bad = || "meta page out of range".to_string();
    let flags = u16_at(data, off + 8).ok_or_else(bad)?;
    if flags & META == 0 {
        return Err(format!(
            "page at {off} is not a meta page (flags {flags:#x})"
        ));
    }
    let m = off + PAGE_HEADER;
    let magic = u32_at(data, m).ok_or_else(bad)?;
    if magic != MAGIC {
        return Err(format!(
            "bad magic {magic:#x} (a bbolt database starts with {MAGIC:#x})"
        ));
    }
    let version = u32_at(data, m + 4).ok_or_else(bad)?;
    if version != VERSION {
        return Err(format!("unsupported bbolt version {version}"));
    }
    let meta = Meta {
        page_size: u32_at(data, m + 8).ok_or_else(bad)?,
        root: u64_at(data, m + 16).ok_or_else(bad)?,
        root_sequence: u64_at(data, m + 24).ok_or_else(bad)?,
        freelist: u64_at(data, m + 32).ok_or_else(bad)?,
        pgid: u64_at(data, m + 40).ok_or_else(bad)?,
        txid: u64_at(data, m + 48).ok_or_else(bad)?,
    };
    let checksum = u64_at(data, m + 56).ok_or_else(bad)?;
    if fnv64a(data.get(m..m + 56).ok_or_else(bad)?) != checksum {
        return Err("meta page checksum mismatch".into());
    }
    Ok(meta)
}

/// Splits off the SHA-256 trailer, checking it; returns the database bytes.
pub(crate) fn check_trailer<'d>(
    data: &'d [u8],
    skip: bool,
    release: &dyn Fn(),
) -> Result<&'d [u8], SnapshotError> {
    if data.len() % 512 == SHA_LEN {
        let (db, trailer) = data.split_at(data.len() - SHA_LEN);
        if !skip {
            let mut h = Sha256::new();
            for chunk in db.chunks(RELEASE_EVERY) {
                h.update(chunk);
                release();
            }
            let actual = h.finalize();
            if actual.as_slice() != trailer {
                return Err(SnapshotError::HashMismatch {
                    expected: hex(trailer),
                    actual: hex(&actual),
                });
            }
        }
        Ok(db)
    } else if skip {
        Ok(data)
    } else {
        Err(SnapshotError::NoTrailer(data.len() as u64))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl<'a> Db<'a> {
    pub(crate) fn open(data: &'a [u8]) -> Result<Db<'a>, SnapshotError> {
        if data.len() < 2 * PAGE_HEADER + 64 {
            return Err(SnapshotError::NotEtcd(format!("only {} bytes", data.len())));
        }
        let m0 = read_meta(data, 0).map_err(SnapshotError::NotEtcd)?;
        let ps = m0.page_size as usize;
        if !(512..=65536).contains(&ps) || !ps.is_power_of_two() {
            return Err(SnapshotError::NotEtcd(format!(
                "implausible page size {ps}"
            )));
        }
        // Use the newer of the two valid meta pages, as bbolt does.
        let meta = match read_meta(data, ps) {
            Ok(m1) if m1.txid > m0.txid => m1,
            _ => m0,
        };
        // Checked: a crafted page count must not wrap around into a plausible size.
        if (meta.pgid)
            .checked_mul(ps as u64)
            .is_none_or(|size| size > data.len() as u64)
        {
            return Err(SnapshotError::Corrupt(format!(
                "the database claims {} pages of {ps} bytes but the file holds {} bytes (truncated)",
                meta.pgid,
                data.len()
            )));
        }
        Ok(Db {
            data,
            mapped: None,
            touched: std::cell::Cell::new(0),
            page_size: ps,
            root: meta.root,
            root_sequence: meta.root_sequence,
            freelist: meta.freelist,
            high_water: meta.pgid,
        })
    }

    /// Opens `data`, a part of `mapped`, releasing the mapping's resident pages as the
    /// tree is walked, so that reading a large snapshot keeps a bounded resident set.
    pub(crate) fn open_mapped(data: &'a [u8], mapped: &'a Mapped) -> Result<Db<'a>, SnapshotError> {
        let mut db = Db::open(data)?;
        db.mapped = Some(mapped);
        Ok(db)
    }

    /// The page `id`: (flags, count, overflow, bytes of all its pages).
    fn page(&self, id: u64) -> Result<(u16, u16, u32, &'a [u8]), String> {
        if id >= self.high_water {
            return Err(format!(
                "page {id} is beyond the high water mark {}",
                self.high_water
            ));
        }
        let outside = || format!("page {id} is outside the file");
        let ps = self.page_size as u64;
        let off = id
            .checked_mul(ps)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(outside)?;
        let head = self
            .data
            .get(off..off.checked_add(PAGE_HEADER).ok_or_else(outside)?)
            .ok_or_else(outside)?;
        let pid = u64_at(head, 0).unwrap_or(u64::MAX);
        if pid != id {
            return Err(format!("page {id} says it is page {pid}"));
        }
        let flags = u16_at(head, 8).unwrap_or(0);
        let count = u16_at(head, 10).unwrap_or(0);
        let overflow = u32_at(head, 12).unwrap_or(0);
        let last = id
            .checked_add(u64::from(overflow))
            .filter(|last| *last < self.high_water)
            .ok_or(format!("page {id} overflows past the high water mark"))?;
        // Below the high water mark, whose size the file was checked to hold.
        let end = last
            .checked_add(1)
            .and_then(|n| n.checked_mul(ps))
            .and_then(|e| usize::try_from(e).ok())
            .ok_or(format!("page {id} runs past the end of the file"))?;
        let bytes = self
            .data
            .get(off..end)
            .ok_or(format!("page {id} runs past the end of the file"))?;
        if let Some(m) = self.mapped {
            let t = self.touched.get() + bytes.len();
            if t >= RELEASE_EVERY {
                m.release();
                self.touched.set(0);
            } else {
                self.touched.set(t);
            }
        }
        Ok((flags, count, overflow, bytes))
    }

    /// Whether the freelist is persisted (etcd 3.4 sets NoFreelistSync: the meta page then
    /// names no freelist page and free pages are those not reachable).
    fn has_freelist(&self) -> bool {
        self.freelist != NO_FREELIST
    }

    /// The page ids on the freelist.
    fn free_pages(&self) -> Result<BTreeSet<u64>, String> {
        if !self.has_freelist() {
            return Ok(BTreeSet::new());
        }
        let (flags, count, _, bytes) = self.page(self.freelist)?;
        if flags & FREELIST == 0 {
            return Err(format!(
                "page {} is not a freelist page (flags {flags:#x})",
                self.freelist
            ));
        }
        let (mut n, mut start) = (count as usize, PAGE_HEADER);
        if count == 0xFFFF {
            n = u64_at(bytes, PAGE_HEADER).ok_or("freelist count out of range")? as usize;
            start += 8;
        }
        let mut out = BTreeSet::new();
        for i in 0..n {
            let id = u64_at(bytes, start + i * 8).ok_or("freelist runs past its page")?;
            out.insert(id);
        }
        Ok(out)
    }
}

/// How deep branch pages may nest. A B+tree of the smallest pages, each branch holding at
/// least two children, is far shallower for any file that fits a disk; deeper is a crafted
/// or looping page chain.
pub(crate) const MAX_DEPTH: usize = 64;

/// Walks one bucket (its root page, or its inline page), calling `each(key, value,
/// is_bucket)` for every element in key order and marking pages seen.
///
/// Iterative, depth-bounded ([`MAX_DEPTH`]) and visiting at most as many pages as the
/// database holds: a crafted deep, looping or shared page chain is an error, never a stack
/// overflow or an endless walk.
pub(crate) fn walk_bucket<'a>(
    db: &Db<'a>,
    root: u64,
    inline: Option<&'a [u8]>,
    seen: &mut Option<&mut BTreeSet<u64>>,
    each: &mut dyn FnMut(&'a [u8], &'a [u8], bool) -> Result<(), String>,
) -> Result<(), String> {
    let mut visits = 0u64;
    let first = match inline {
        Some(page) => page,
        None => visit(db, root, seen, &mut visits)?,
    };
    // Pages being walked, each with the index of its next element.
    let mut stack: Vec<(&'a [u8], usize)> = vec![(first, 0)];
    while let Some((bytes, next)) = stack.pop() {
        let flags = u16_at(bytes, 8).ok_or("page header out of range")?;
        let count = usize::from(u16_at(bytes, 10).ok_or("page header out of range")?);
        let id = u64_at(bytes, 0).unwrap_or(0);
        if flags & BRANCH != 0 {
            if next >= count {
                continue;
            }
            let e = PAGE_HEADER + next * ELEMENT;
            let child = u64_at(bytes, e + 8)
                .ok_or(format!("branch page {id}: element {next} out of range"))?;
            stack.push((bytes, next + 1));
            if stack.len() >= MAX_DEPTH {
                return Err(format!(
                    "branch pages nest deeper than {MAX_DEPTH} levels below page {id} (a looping or crafted page chain)"
                ));
            }
            stack.push((visit(db, child, seen, &mut visits)?, 0));
        } else if flags & LEAF != 0 {
            for i in 0..count {
                let e = PAGE_HEADER + i * ELEMENT;
                let bad = || format!("leaf page {id}: element {i} out of range");
                let eflags = u32_at(bytes, e).ok_or_else(bad)?;
                let pos = u32_at(bytes, e + 4).ok_or_else(bad)? as usize;
                let ksize = u32_at(bytes, e + 8).ok_or_else(bad)? as usize;
                let vsize = u32_at(bytes, e + 12).ok_or_else(bad)? as usize;
                let kstart = e + pos;
                let key = bytes.get(kstart..kstart + ksize).ok_or_else(bad)?;
                let value = bytes
                    .get(kstart + ksize..kstart + ksize + vsize)
                    .ok_or_else(bad)?;
                each(key, value, eflags & BUCKET_LEAF != 0)?;
            }
        } else {
            return Err(format!(
                "page {id} is neither a branch nor a leaf (flags {flags:#x})"
            ));
        }
    }
    Ok(())
}

/// Reads page `id` for a walk: marks it seen (twice is an error), and counts it against
/// the number of pages the database holds.
fn visit<'a>(
    db: &Db<'a>,
    id: u64,
    seen: &mut Option<&mut BTreeSet<u64>>,
    visits: &mut u64,
) -> Result<&'a [u8], String> {
    let (_, _, overflow, bytes) = db.page(id)?;
    *visits += 1;
    if *visits > db.high_water {
        return Err(format!(
            "the walk reached page {id} after visiting more pages than the database holds ({}): the pages loop",
            db.high_water
        ));
    }
    if let Some(s) = seen.as_deref_mut() {
        for p in id..=id + u64::from(overflow) {
            if !s.insert(p) {
                return Err(format!("page {p} is reachable twice"));
            }
        }
    }
    Ok(bytes)
}

/// A bucket: its root page id, or (root 0) its inline page.
pub(crate) type BucketRef<'a> = (u64, Option<&'a [u8]>);

/// A sub-bucket's root page id and inline page, from its value in the parent.
pub(crate) fn bucket_header(value: &[u8]) -> Result<BucketRef<'_>, String> {
    let root = u64_at(value, 0).ok_or("bucket header too short")?;
    if root == 0 {
        Ok((0, Some(value.get(16..).ok_or("inline bucket too short")?)))
    } else {
        Ok((root, None))
    }
}

/// Walks every page of `db`: reachable pages (each once) plus free pages plus the meta
/// and freelist pages must be exactly the pages below the high water mark.
pub(crate) fn check_tree(db: &Db<'_>) -> Result<(), SnapshotError> {
    let corrupt = SnapshotError::Corrupt;
    let mut seen = BTreeSet::new();
    seen.insert(0);
    seen.insert(1);
    if db.has_freelist() {
        let (_, _, fl_overflow, _) = db.page(db.freelist).map_err(corrupt)?;
        for p in db.freelist..=db.freelist + u64::from(fl_overflow) {
            seen.insert(p);
        }
    }
    let free = db.free_pages().map_err(corrupt)?;
    // Buckets nest: walk the root bucket, then every bucket found in it, recursively.
    let mut pending: Vec<BucketRef<'_>> = vec![(db.root, None)];
    while let Some((root, inline)) = pending.pop() {
        let mut found = Vec::new();
        {
            let mut seen_ref = Some(&mut seen);
            walk_bucket(db, root, inline, &mut seen_ref, &mut |_, v, is_bucket| {
                if is_bucket {
                    found.push(bucket_header(v)?);
                }
                Ok(())
            })
            .map_err(corrupt)?;
        }
        pending.extend(found);
    }
    if let Some(p) = free.iter().find(|p| seen.contains(p)) {
        return Err(SnapshotError::Corrupt(format!(
            "page {p} is both in use and free"
        )));
    }
    // Without a persisted freelist, unreachable pages are free by definition.
    let missing: Vec<u64> = (0..db.high_water)
        .filter(|p| !seen.contains(p) && !free.contains(p))
        .take(5)
        .collect();
    if db.has_freelist() && !missing.is_empty() {
        return Err(SnapshotError::Corrupt(format!(
            "pages {missing:?} are neither reachable nor free"
        )));
    }
    Ok(())
}

/// Verifies a snapshot file: the sha256 trailer (unless `skip_hash`), then the whole tree.
pub fn verify(path: &Path, skip_hash: bool) -> Result<Status, SnapshotError> {
    let data = read_file(path)?;
    let db_bytes = check_trailer(&data, skip_hash, &|| data.release())?;
    let db = Db::open_mapped(db_bytes, &data)?;
    check_tree(&db)?;
    compute_status(&db)
}

/// [`verify`] of bytes already in memory (the fuzz target's entry; tests).
pub fn verify_bytes(data: &[u8], skip_hash: bool) -> Result<Status, SnapshotError> {
    let db_bytes = check_trailer(data, skip_hash, &|| {})?;
    let db = Db::open(db_bytes)?;
    check_tree(&db)?;
    compute_status(&db)
}

/// What `etcdctl snapshot status` reports (it does not check the trailer either; it
/// does run bbolt's integrity check, as this does).
pub fn status(path: &Path) -> Result<Status, SnapshotError> {
    let data = read_file(path)?;
    let db = Db::open_mapped(&data, &data)?;
    check_tree(&db)?;
    compute_status(&db)
}

/// Called with (bucket, key, value).
pub type KeyVisitor<'a> = dyn FnMut(&[u8], &[u8], &[u8]) + 'a;

/// Calls `each(bucket, key, value)` for every plain key of every top-level bucket, in
/// order, streaming from the mapped file (no copy of the data is kept). A file with a
/// sha256 trailer is read without it; a raw database file (`member/snap/db`) as it is.
pub fn for_each_key(path: &Path, each: &mut KeyVisitor<'_>) -> Result<(), SnapshotError> {
    let data = read_file(path)?;
    let bytes = check_trailer(&data, true, &|| {})?;
    let db = Db::open_mapped(bytes, &data)?;
    let corrupt = SnapshotError::Corrupt;
    let mut buckets: Vec<(&[u8], BucketRef<'_>)> = Vec::new();
    walk_bucket(&db, db.root, None, &mut None, &mut |k, v, is_bucket| {
        if is_bucket {
            buckets.push((k, bucket_header(v)?));
        }
        Ok(())
    })
    .map_err(corrupt)?;
    for (name, (root, inline)) in buckets {
        walk_bucket(&db, root, inline, &mut None, &mut |k, v, is_bucket| {
            if !is_bucket {
                each(name, k, v);
            }
            Ok(())
        })
        .map_err(corrupt)?;
    }
    Ok(())
}

pub(crate) fn compute_status(db: &Db<'_>) -> Result<Status, SnapshotError> {
    let corrupt = SnapshotError::Corrupt;
    let mut crc = 0u32;
    let mut total_key = 0u64;
    let mut revision = 0i64;
    let mut buckets: Vec<(&[u8], BucketRef<'_>)> = Vec::new();
    walk_bucket(db, db.root, None, &mut None, &mut |k, v, is_bucket| {
        if is_bucket {
            buckets.push((k, bucket_header(v)?));
        }
        Ok(())
    })
    .map_err(corrupt)?;
    for (name, (root, inline)) in buckets {
        crc = crc32c::crc32c_append(crc, name);
        let is_key = name == b"key";
        walk_bucket(db, root, inline, &mut None, &mut |k, v, is_bucket| {
            crc = crc32c::crc32c_append(crc, k);
            if !is_bucket {
                crc = crc32c::crc32c_append(crc, v);
            }
            if is_key && k.len() >= 8 {
                revision = i64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8]));
            }
            total_key += 1;
            Ok(())
        })
        .map_err(corrupt)?;
    }
    Ok(Status {
        hash: crc,
        revision,
        total_key,
        total_size: db.high_water.saturating_mul(db.page_size as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference() {
        // FNV-1a 64 of "a" (reference value).
        assert_eq!(fnv64a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn non_etcd_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, vec![7u8; 8192 + 32]).unwrap();
        assert!(matches!(
            verify(&f, false),
            Err(SnapshotError::HashMismatch { .. })
        ));
        assert!(matches!(verify(&f, true), Err(SnapshotError::NotEtcd(_))));
        std::fs::write(&f, b"short").unwrap();
        assert!(matches!(
            verify(&f, false),
            Err(SnapshotError::NoTrailer(5))
        ));
        assert!(matches!(
            status(&dir.path().join("missing")),
            Err(SnapshotError::Io { .. })
        ));
    }

    /// A bbolt file of `pages` (page 2 onwards; the root bucket at page 2) with page size
    /// `ps`, its meta pages claiming `pgid` pages, no persisted freelist, and a sha256
    /// trailer.
    fn crafted(ps: usize, pages: &[Vec<u8>], pgid: u64) -> Vec<u8> {
        let mut data = vec![0u8; 2 * ps];
        for (i, txid) in [(0usize, 1u64), (1, 2)] {
            let off = i * ps;
            data[off..off + 8].copy_from_slice(&(i as u64).to_le_bytes());
            data[off + 8..off + 10].copy_from_slice(&META.to_le_bytes());
            let m = off + PAGE_HEADER;
            data[m..m + 4].copy_from_slice(&MAGIC.to_le_bytes());
            data[m + 4..m + 8].copy_from_slice(&VERSION.to_le_bytes());
            data[m + 8..m + 12].copy_from_slice(&(ps as u32).to_le_bytes());
            data[m + 16..m + 24].copy_from_slice(&2u64.to_le_bytes());
            data[m + 32..m + 40].copy_from_slice(&NO_FREELIST.to_le_bytes());
            data[m + 40..m + 48].copy_from_slice(&pgid.to_le_bytes());
            data[m + 48..m + 56].copy_from_slice(&txid.to_le_bytes());
            let sum = fnv64a(&data[m..m + 56]);
            data[m + 56..m + 64].copy_from_slice(&sum.to_le_bytes());
        }
        for p in pages {
            let mut page = p.clone();
            page.resize(ps, 0);
            data.extend_from_slice(&page);
        }
        let sum = Sha256::digest(&data);
        data.extend_from_slice(&sum);
        data
    }

    /// A branch page `id` whose only child is `child`.
    fn branch(id: u64, child: u64) -> Vec<u8> {
        let mut p = vec![0u8; PAGE_HEADER + ELEMENT];
        p[0..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&BRANCH.to_le_bytes());
        p[10..12].copy_from_slice(&1u16.to_le_bytes());
        p[PAGE_HEADER + 8..PAGE_HEADER + 16].copy_from_slice(&child.to_le_bytes());
        p
    }

    /// An empty leaf page `id`.
    fn leaf(id: u64) -> Vec<u8> {
        let mut p = vec![0u8; PAGE_HEADER];
        p[0..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&LEAF.to_le_bytes());
        p
    }

    fn write(dir: &tempfile::TempDir, data: &[u8]) -> std::path::PathBuf {
        let f = dir.path().join("crafted.db");
        std::fs::write(&f, data).unwrap();
        f
    }

    #[test]
    fn a_crafted_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(&dir, &crafted(512, &[branch(2, 3), leaf(3)], 4));
        let st = verify(&f, false).unwrap();
        assert_eq!((st.total_key, st.total_size), (0, 4 * 512));
    }

    /// Issue 11 item 4: a branch chain deeper than any real tree was walked recursively, one
    /// stack frame per page: 20,000 pages overflowed a thread's stack (an abort, not an
    /// error). It is now a clear error, from every reader.
    #[test]
    fn a_deep_page_chain_is_an_error_not_a_stack_overflow() {
        const N: u64 = 20_000;
        let mut pages: Vec<Vec<u8>> = (2..N + 1).map(|id| branch(id, id + 1)).collect();
        pages.push(leaf(N + 1));
        let dir = tempfile::tempdir().unwrap();
        let f = write(&dir, &crafted(512, &pages, N + 2));
        let want = "branch pages nest deeper than 64 levels";
        for err in [
            verify(&f, false).unwrap_err(),
            status(&f).unwrap_err(),
            for_each_key(&f, &mut |_, _, _| {}).unwrap_err(),
        ] {
            assert!(
                matches!(&err, SnapshotError::Corrupt(m) if m.contains(want)),
                "{err}"
            );
        }
    }

    /// Issue 11 item 4: a branch page that is its own child looped forever (recursing until
    /// the stack overflowed) when read without the integrity check (`for_each_key`, used by
    /// `etcd snapshot restore`); with it, it is "reachable twice".
    #[test]
    fn a_looping_page_chain_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(&dir, &crafted(512, &[branch(2, 2)], 3));
        let err = for_each_key(&f, &mut |_, _, _| {}).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::Corrupt(m) if m.contains("visiting more pages than the database holds (3): the pages loop")),
            "{err}"
        );
        let err = verify(&f, false).unwrap_err();
        assert_eq!(
            err,
            SnapshotError::Corrupt("page 2 is reachable twice".into())
        );
    }

    /// Issue 11 item 4: page arithmetic is checked. A meta page claiming 2^62 pages
    /// overflowed `pgid * page size` (a panic in debug builds, a wrong size check in
    /// release ones); a page whose overflow count runs past the end is refused.
    #[test]
    fn huge_page_counts_are_errors_not_overflows() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(&dir, &crafted(512, &[leaf(2)], 1 << 62));
        let err = verify(&f, false).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::Corrupt(m) if m.contains("claims 4611686018427387904 pages")),
            "{err}"
        );
        let mut overflowing = leaf(2);
        overflowing[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let f = write(&dir, &crafted(512, &[overflowing], 3));
        let err = verify(&f, false).unwrap_err();
        assert_eq!(
            err,
            SnapshotError::Corrupt("page 2 overflows past the high water mark".into())
        );
    }

    #[test]
    fn trailer_is_checked() {
        let body = vec![1u8; 4096];
        let mut good = body.clone();
        good.extend_from_slice(&Sha256::digest(&body));
        assert_eq!(check_trailer(&good, false, &|| {}).unwrap().len(), 4096);
        let mut flipped = good.clone();
        flipped[100] ^= 1;
        assert!(matches!(
            check_trailer(&flipped, false, &|| {}),
            Err(SnapshotError::HashMismatch { .. })
        ));
        assert!(check_trailer(&flipped, true, &|| {}).is_ok());
    }
}
