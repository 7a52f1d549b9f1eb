//! Writing a bbolt database: a compacting copy of an existing one, with edits.
//!
//! Restoring an etcd snapshot changes a handful of keys (the consistent index, the
//! membership) in a database that may hold gigabytes. Rather than patch pages in place
//! (bbolt's copy-on-write transactions), [`rewrite`] streams every bucket of the source,
//! in key order, into a fresh file built bottom-up: leaf pages are written as they fill,
//! branch pages once a bucket ends. The result is what `bbolt compact` would give —
//! the same buckets, keys and values, densely packed — and bbolt or etcd opens it as any
//! other database.
//!
//! Layout of the output: page 0 and 1 are the meta pages (written last), page 2 an empty
//! freelist, then the pages of every bucket, children before their parents.
//!
//! Invariants: page ids are handed out in increasing order and each page is written
//! exactly once, so the file is written sequentially; the only seek is back to page 0
//! for the meta pages, after every other page is on disk. Memory holds one leaf node (up to four pages)
//! per open bucket and one (first key, page id) pair per page of the bucket being built.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::snapshot::{
    BRANCH, BUCKET_LEAF, Db, ELEMENT, FREELIST, LEAF, MAGIC, META, PAGE_HEADER, VERSION,
    bucket_header, fnv64a, u64_at, walk_bucket,
};

/// What to change in one top-level bucket while copying it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Edit {
    /// Drop every key the source bucket has (the puts are still written).
    pub clear: bool,
    /// Keys to write (`Some`) or drop (`None`), in key order.
    pub puts: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// Edits by top-level bucket name; a bucket named here that the source lacks is created.
pub(crate) type Edits = BTreeMap<Vec<u8>, Edit>;

/// Pages one leaf node may span. Kubernetes objects are often 1-3 KiB: one page per
/// leaf would waste up to half of each page; a node spanning up to four pages (bbolt's
/// overflow pages) wastes at most part of its last page. bbolt splits such nodes back to
/// page size when etcd next writes to them.
const LEAF_PAGES: usize = 4;

/// Page ids are handed out in order; pages go to the file in the same order.
struct PageWriter<'p> {
    out: BufWriter<File>,
    page_size: usize,
    next: u64,
    /// Told the bytes written so far, every 256 pages.
    progress: &'p dyn Fn(u64),
}

impl PageWriter<'_> {
    /// Writes one node (leaf or branch) and returns its page id.
    fn write_node(&mut self, flags: u16, elems: &[Elem<'_>]) -> std::io::Result<u64> {
        let data: usize = elems.iter().map(Elem::data_len).sum();
        let size = PAGE_HEADER + elems.len() * ELEMENT + data;
        let pages = size.div_ceil(self.page_size).max(1);
        let mut buf = vec![0u8; pages * self.page_size];
        let id = self.next;
        buf[0..8].copy_from_slice(&id.to_le_bytes());
        buf[8..10].copy_from_slice(&flags.to_le_bytes());
        let count =
            u16::try_from(elems.len()).map_err(|_| std::io::Error::other("page too full"))?;
        buf[10..12].copy_from_slice(&count.to_le_bytes());
        buf[12..16].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
        let mut at = PAGE_HEADER + elems.len() * ELEMENT;
        for (i, e) in elems.iter().enumerate() {
            let el = PAGE_HEADER + i * ELEMENT;
            let pos = (at - el) as u32;
            match e {
                Elem::Leaf { flags, key, value } => {
                    buf[el..el + 4].copy_from_slice(&flags.to_le_bytes());
                    buf[el + 4..el + 8].copy_from_slice(&pos.to_le_bytes());
                    buf[el + 8..el + 12].copy_from_slice(&(key.len() as u32).to_le_bytes());
                    buf[el + 12..el + 16].copy_from_slice(&(value.len() as u32).to_le_bytes());
                    buf[at..at + key.len()].copy_from_slice(key);
                    at += key.len();
                    buf[at..at + value.len()].copy_from_slice(value);
                    at += value.len();
                }
                Elem::Branch { key, page } => {
                    buf[el..el + 4].copy_from_slice(&pos.to_le_bytes());
                    buf[el + 4..el + 8].copy_from_slice(&(key.len() as u32).to_le_bytes());
                    buf[el + 8..el + 16].copy_from_slice(&page.to_le_bytes());
                    buf[at..at + key.len()].copy_from_slice(key);
                    at += key.len();
                }
            }
        }
        self.out.write_all(&buf)?;
        if (self.next / 256) != (self.next + pages as u64) / 256 {
            (self.progress)((self.next + pages as u64) * self.page_size as u64);
        }
        self.next += pages as u64;
        Ok(id)
    }
}

enum Elem<'a> {
    Leaf {
        flags: u32,
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
    },
    Branch {
        key: Vec<u8>,
        page: u64,
    },
}

impl Elem<'_> {
    fn data_len(&self) -> usize {
        match self {
            Elem::Leaf { key, value, .. } => key.len() + value.len(),
            Elem::Branch { key, .. } => key.len(),
        }
    }
}

/// Builds one bucket's B+tree bottom-up from keys given in order.
struct TreeBuilder<'a> {
    leaf: Vec<Elem<'a>>,
    leaf_size: usize,
    /// First key and page id of every leaf written so far.
    leaves: Vec<(Vec<u8>, u64)>,
}

impl<'a> TreeBuilder<'a> {
    fn new() -> Self {
        TreeBuilder {
            leaf: Vec::new(),
            leaf_size: PAGE_HEADER,
            leaves: Vec::new(),
        }
    }

    fn push(
        &mut self,
        w: &mut PageWriter,
        flags: u32,
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
    ) -> std::io::Result<()> {
        let size = ELEMENT + key.len() + value.len();
        if !self.leaf.is_empty() && self.leaf_size + size > LEAF_PAGES * w.page_size {
            self.flush(w)?;
        }
        self.leaf_size += size;
        self.leaf.push(Elem::Leaf { flags, key, value });
        Ok(())
    }

    fn flush(&mut self, w: &mut PageWriter) -> std::io::Result<()> {
        let first = match self.leaf.first() {
            Some(Elem::Leaf { key, .. }) => key.to_vec(),
            _ => Vec::new(),
        };
        let id = w.write_node(LEAF, &self.leaf)?;
        self.leaves.push((first, id));
        self.leaf.clear();
        self.leaf_size = PAGE_HEADER;
        Ok(())
    }

    /// Writes what is left and the branch levels above; returns the root page id.
    fn finish(mut self, w: &mut PageWriter) -> std::io::Result<u64> {
        if !self.leaf.is_empty() || self.leaves.is_empty() {
            self.flush(w)?;
        }
        let mut level = std::mem::take(&mut self.leaves);
        while level.len() > 1 {
            let mut next = Vec::new();
            let mut group: Vec<Elem<'_>> = Vec::new();
            let mut size = PAGE_HEADER;
            let mut first: Option<Vec<u8>> = None;
            for (key, page) in level {
                let esize = ELEMENT + key.len();
                if !group.is_empty() && size + esize > w.page_size {
                    let id = w.write_node(BRANCH, &group)?;
                    next.push((first.take().unwrap_or_default(), id));
                    group.clear();
                    size = PAGE_HEADER;
                }
                if group.is_empty() {
                    first = Some(key.clone());
                }
                size += esize;
                group.push(Elem::Branch { key, page });
            }
            let id = w.write_node(BRANCH, &group)?;
            next.push((first.take().unwrap_or_default(), id));
            level = next;
        }
        Ok(level[0].1)
    }
}

fn bucket_value(root: u64, sequence: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&root.to_le_bytes());
    v.extend_from_slice(&sequence.to_le_bytes());
    v
}

/// Copies one bucket (recursively), applying `edit`; returns the new root page id.
fn copy_bucket<'a>(
    db: &Db<'a>,
    w: &mut PageWriter,
    source: Option<(u64, Option<&'a [u8]>)>,
    edit: Option<&'a Edit>,
) -> Result<u64, String> {
    let mut tree = TreeBuilder::new();
    let mut puts = edit.map(|e| e.puts.iter().peekable());
    let clear = edit.is_some_and(|e| e.clear);
    let io = |e: std::io::Error| format!("cannot write the restored database: {e}");
    if let Some((root, inline)) = source {
        walk_bucket(db, root, inline, &mut None, &mut |k, v, is_bucket| {
            if let Some(p) = puts.as_mut() {
                while let Some((pk, pv)) = p.next_if(|(pk, _)| pk.as_slice() < k) {
                    if let Some(pv) = pv {
                        tree.push(w, 0, Cow::Borrowed(pk), Cow::Borrowed(pv))
                            .map_err(io)?;
                    }
                }
                if let Some((_, pv)) = p.next_if(|(pk, _)| pk.as_slice() == k) {
                    if is_bucket {
                        return Err(format!(
                            "key {} is a bucket and cannot be replaced by a value",
                            String::from_utf8_lossy(k)
                        ));
                    }
                    if let Some(pv) = pv {
                        tree.push(w, 0, Cow::Borrowed(k), Cow::Borrowed(pv))
                            .map_err(io)?;
                    }
                    return Ok(());
                }
            }
            if clear {
                return Ok(());
            }
            if is_bucket {
                let (root, inline) = bucket_header(v)?;
                let sequence = u64_at(v, 8).ok_or("bucket header too short")?;
                let child = copy_bucket(db, w, Some((root, inline)), None)?;
                tree.push(
                    w,
                    BUCKET_LEAF,
                    Cow::Borrowed(k),
                    Cow::Owned(bucket_value(child, sequence)),
                )
                .map_err(io)?;
            } else {
                tree.push(w, 0, Cow::Borrowed(k), Cow::Borrowed(v))
                    .map_err(io)?;
            }
            Ok(())
        })?;
    }
    if let Some(p) = puts.as_mut() {
        for (pk, pv) in p {
            if let Some(pv) = pv {
                tree.push(w, 0, Cow::Borrowed(pk), Cow::Borrowed(pv))
                    .map_err(io)?;
            }
        }
    }
    tree.finish(w).map_err(io)
}

/// A source bucket: root page, inline page, sequence.
type SourceBucket<'a> = (u64, Option<&'a [u8]>, u64);

/// What [`rewrite`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// Pages in the new file (its size is this times the page size).
    pub pages: u64,
}

/// Writes a compact copy of `db` to `out` (which must not exist), with `edits` applied
/// to top-level buckets, and syncs it. On error the partial file is removed.
pub(crate) fn rewrite(
    db: &Db<'_>,
    out: &Path,
    edits: &Edits,
    progress: &dyn Fn(u64),
) -> Result<Written, String> {
    let result = write_all(db, out, edits, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn write_all(
    db: &Db<'_>,
    out: &Path,
    edits: &Edits,
    progress: &dyn Fn(u64),
) -> Result<Written, String> {
    let io = |e: std::io::Error| format!("cannot write {}: {e}", out.display());
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(out).map_err(io)?;
    let page_size = db.page_size;
    let mut w = PageWriter {
        out: BufWriter::with_capacity(1 << 20, file),
        page_size,
        next: 3,
        progress,
    };
    // Pages 0-2 (meta, meta, freelist) are filled in at the end.
    w.out.write_all(&vec![0u8; 3 * page_size]).map_err(io)?;

    // The top-level buckets of the source, then those only the edits name, in order.
    let mut top: Vec<(&[u8], Option<SourceBucket<'_>>)> = Vec::new();
    walk_bucket(db, db.root, None, &mut None, &mut |k, v, is_bucket| {
        if !is_bucket {
            return Err(format!(
                "the root bucket holds a plain key {}; not a bbolt database bbolt would open",
                String::from_utf8_lossy(k)
            ));
        }
        let (root, inline) = bucket_header(v)?;
        let sequence = u64_at(v, 8).ok_or("bucket header too short")?;
        top.push((k, Some((root, inline, sequence))));
        Ok(())
    })?;
    for name in edits.keys() {
        if !top.iter().any(|(k, _)| *k == name.as_slice()) {
            top.push((name.as_slice(), None));
        }
    }
    top.sort_by(|a, b| a.0.cmp(b.0));

    let mut roots = Vec::with_capacity(top.len());
    for (name, source) in &top {
        let child = copy_bucket(db, &mut w, source.map(|(r, i, _)| (r, i)), edits.get(*name))?;
        roots.push((*name, child, source.map_or(0, |s| s.2)));
    }
    let mut root_tree = TreeBuilder::new();
    for (name, child, sequence) in &roots {
        root_tree
            .push(
                &mut w,
                BUCKET_LEAF,
                Cow::Borrowed(name),
                Cow::Owned(bucket_value(*child, *sequence)),
            )
            .map_err(io)?;
    }
    let root = root_tree.finish(&mut w).map_err(io)?;
    let high_water = w.next;

    // Freelist (empty) and both meta pages, now that everything they point at is written.
    let mut head = vec![0u8; 3 * page_size];
    for (i, txid) in [(0usize, 2u64), (1, 1)] {
        let p = &mut head[i * page_size..(i + 1) * page_size];
        p[0..8].copy_from_slice(&(i as u64).to_le_bytes());
        p[8..10].copy_from_slice(&META.to_le_bytes());
        let m = &mut p[PAGE_HEADER..PAGE_HEADER + 64];
        m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        m[4..8].copy_from_slice(&VERSION.to_le_bytes());
        m[8..12].copy_from_slice(&(page_size as u32).to_le_bytes());
        m[16..24].copy_from_slice(&root.to_le_bytes());
        m[24..32].copy_from_slice(&db.root_sequence.to_le_bytes());
        m[32..40].copy_from_slice(&2u64.to_le_bytes());
        m[40..48].copy_from_slice(&high_water.to_le_bytes());
        m[48..56].copy_from_slice(&txid.to_le_bytes());
        let sum = fnv64a(&m[0..56]);
        m[56..64].copy_from_slice(&sum.to_le_bytes());
    }
    let fl = &mut head[2 * page_size..3 * page_size];
    fl[0..8].copy_from_slice(&2u64.to_le_bytes());
    fl[8..10].copy_from_slice(&FREELIST.to_le_bytes());
    w.out.flush().map_err(io)?;
    let mut file = w.out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&head).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(Written { pages: high_water })
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{check_tree, compute_status};
    use super::*;
    use proptest::prelude::*;

    type Contents = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

    /// Every top-level bucket with its plain keys, as the reader sees them.
    fn read_back(bytes: &[u8]) -> Contents {
        let db = Db::open(bytes).unwrap();
        check_tree(&db).unwrap();
        let mut buckets = Vec::new();
        walk_bucket(&db, db.root, None, &mut None, &mut |k, v, _| {
            buckets.push((k.to_vec(), bucket_header(v)?));
            Ok(())
        })
        .unwrap();
        let mut out = Contents::new();
        for (name, (root, inline)) in buckets {
            let mut kv = BTreeMap::new();
            walk_bucket(&db, root, inline, &mut None, &mut |k, v, _| {
                kv.insert(k.to_vec(), v.to_vec());
                Ok(())
            })
            .unwrap();
            out.insert(name, kv);
        }
        out
    }

    /// Builds a database from contents by rewriting an empty one with edits that create
    /// every bucket: the writer is its own fixture.
    fn build(contents: &Contents, dir: &Path, name: &str) -> Vec<u8> {
        let empty = empty_db();
        let db = Db::open(&empty).unwrap();
        let edits: Edits = contents
            .iter()
            .map(|(b, kv)| {
                let puts = kv
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect();
                (b.clone(), Edit { clear: false, puts })
            })
            .collect();
        let path = dir.join(name);
        rewrite(&db, &path, &edits, &|_| {}).unwrap();
        std::fs::read(&path).unwrap()
    }

    /// A database with no buckets, laid out as bbolt's own init does (meta, meta,
    /// freelist, empty root leaf).
    fn empty_db() -> Vec<u8> {
        let ps = 4096;
        let mut d = vec![0u8; 4 * ps];
        for (i, txid) in [(0usize, 0u64), (1, 1)] {
            let p = &mut d[i * ps..(i + 1) * ps];
            p[0..8].copy_from_slice(&(i as u64).to_le_bytes());
            p[8..10].copy_from_slice(&META.to_le_bytes());
            let m = &mut p[PAGE_HEADER..PAGE_HEADER + 64];
            m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
            m[4..8].copy_from_slice(&VERSION.to_le_bytes());
            m[8..12].copy_from_slice(&(ps as u32).to_le_bytes());
            m[16..24].copy_from_slice(&3u64.to_le_bytes());
            m[32..40].copy_from_slice(&2u64.to_le_bytes());
            m[40..48].copy_from_slice(&4u64.to_le_bytes());
            m[48..56].copy_from_slice(&txid.to_le_bytes());
            let sum = fnv64a(&m[0..56]);
            m[56..64].copy_from_slice(&sum.to_le_bytes());
        }
        d[2 * ps..2 * ps + 8].copy_from_slice(&2u64.to_le_bytes());
        d[2 * ps + 8..2 * ps + 10].copy_from_slice(&FREELIST.to_le_bytes());
        d[3 * ps..3 * ps + 8].copy_from_slice(&3u64.to_le_bytes());
        d[3 * ps + 8..3 * ps + 10].copy_from_slice(&LEAF.to_le_bytes());
        d
    }

    fn contents() -> impl Strategy<Value = Contents> {
        let key = prop::collection::vec(any::<u8>(), 1..40);
        // Mostly small values, sometimes larger than a page (overflow pages).
        let value = prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..300),
            1 => prop::collection::vec(any::<u8>(), 4000..9000),
        ];
        let bucket = prop::collection::btree_map(key, value, 0..400);
        let name = prop::collection::vec(b'a'..=b'z', 1..8);
        prop::collection::btree_map(name, bucket, 1..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn written_databases_read_back_and_pass_the_tree_check(c in contents()) {
            let dir = tempfile::tempdir().unwrap();
            let bytes = build(&c, dir.path(), "a.db");
            prop_assert_eq!(read_back(&bytes), c.clone());
            // A second copy of the copy is byte-identical: the layout is a function of
            // the contents alone.
            let db = Db::open(&bytes).unwrap();
            let again = dir.path().join("b.db");
            rewrite(&db, &again, &Edits::new(), &|_| {}).unwrap();
            prop_assert_eq!(std::fs::read(&again).unwrap(), bytes);
        }
    }

    #[test]
    fn edits_replace_insert_delete_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Contents::new();
        let kv = |pairs: &[(&str, &str)]| -> BTreeMap<Vec<u8>, Vec<u8>> {
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect()
        };
        c.insert(
            b"meta".to_vec(),
            kv(&[("a", "1"), ("consistent_index", "old"), ("z", "2")]),
        );
        c.insert(
            b"members".to_vec(),
            kv(&[("111", "{old}"), ("222", "{old}")]),
        );
        c.insert(b"key".to_vec(), kv(&[("k", "v")]));
        let bytes = build(&c, dir.path(), "src.db");
        let db = Db::open(&bytes).unwrap();
        let before = compute_status(&db).unwrap();

        let mut edits = Edits::new();
        edits.insert(
            b"meta".to_vec(),
            Edit {
                clear: false,
                puts: [
                    (b"consistent_index".to_vec(), Some(b"new".to_vec())),
                    (b"b".to_vec(), Some(b"inserted".to_vec())),
                    (b"z".to_vec(), None),
                ]
                .into(),
            },
        );
        edits.insert(
            b"members".to_vec(),
            Edit {
                clear: true,
                puts: [(b"333".to_vec(), Some(b"{new}".to_vec()))].into(),
            },
        );
        edits.insert(
            b"members_removed".to_vec(),
            Edit {
                clear: true,
                puts: BTreeMap::new(),
            },
        );
        let out = dir.path().join("out.db");
        rewrite(&db, &out, &edits, &|_| {}).unwrap();
        let got = read_back(&std::fs::read(&out).unwrap());
        let mut want = c.clone();
        want.insert(
            b"meta".to_vec(),
            kv(&[("a", "1"), ("b", "inserted"), ("consistent_index", "new")]),
        );
        want.insert(b"members".to_vec(), kv(&[("333", "{new}")]));
        want.insert(b"members_removed".to_vec(), BTreeMap::new());
        assert_eq!(got, want);
        // The untouched bucket kept its bytes, so the status hash moved only because of
        // the edits: rewriting without edits keeps it.
        let plain = dir.path().join("plain.db");
        rewrite(&db, &plain, &Edits::new(), &|_| {}).unwrap();
        let plain_bytes = std::fs::read(&plain).unwrap();
        assert_eq!(
            compute_status(&Db::open(&plain_bytes).unwrap())
                .unwrap()
                .hash,
            before.hash
        );
        // An existing output is never overwritten.
        assert!(
            rewrite(&db, &out, &Edits::new(), &|_| {})
                .unwrap_err()
                .contains("exists")
        );
    }
}
