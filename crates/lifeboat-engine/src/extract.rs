//! Reading a backup tarball safely: validated while it streams, extracted into a private
//! directory, refused as a whole at the first sign of damage or hostility — before anything
//! is created in a cluster.
//!
//! Invariant: nothing outside the destination directory is ever written, and only regular
//! files whose path is `metadata/version` or a Velero item path are extracted; every item's
//! names are ones the API server accepts (none reaches a REST path that could mean
//! something else) and its apiVersion, kind, namespace and name agree with its path
//! (`lifeboat_types::rules::archive`).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use lifeboat_types::format::layout::{ItemPath, VERSION_ENTRY, parse_item_path};
use lifeboat_types::rules::archive::{ArchiveCheck, ItemHead, ItemProblem};
use lifeboat_types::rules::disk_space::{self, Shortfall};

/// Limits that keep a hostile archive from exhausting disk or memory. A restore uses the
/// defaults (documented in README.md, "Using lifeboat"); besides them, extraction stops
/// when the disk's free space falls under `rules::disk_space::RESERVE`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single entry (a Kubernetes object is at most ~1.5 MiB in etcd).
    pub max_entry: u64,
    /// Largest total of extracted bytes.
    pub max_total: u64,
    /// Most entries.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry: 16 << 20,
            max_total: 64 << 30,
            max_entries: 20_000_000,
        }
    }
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not gzip, or the gzip/tar stream ends early or is corrupt.
    #[error(
        "the backup tarball is corrupt or truncated ({0}); the backup cannot be restored as stored"
    )]
    Corrupt(String),
    /// The first entry is not `metadata/version`.
    #[error(
        "the backup tarball has no metadata/version as its first entry (found {0:?}); it is not a Velero backup"
    )]
    MissingVersion(String),
    /// A format version lifeboat does not read.
    #[error(
        "the backup tarball has format version {0:?}; lifeboat reads Velero's formats 1 and 1.x"
    )]
    UnsupportedVersion(String),
    /// A path that escapes, is absolute, or is not a Velero path.
    #[error("the backup tarball holds a hostile or unexpected path {0:?}; refused")]
    BadPath(String),
    /// A link, device or other non-regular entry.
    #[error("the backup tarball holds a {kind} entry at {path:?}; only regular files are allowed")]
    BadEntryType {
        /// The entry's path.
        path: String,
        /// Its type.
        kind: String,
    },
    /// An entry or the whole archive is too large.
    #[error(
        "the backup tarball is too large: {what} (limit {limit} bytes); refused as a possible decompression bomb"
    )]
    TooLarge {
        /// What exceeded the limit.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// An item is not valid JSON.
    #[error("the backup tarball holds invalid JSON at {path:?}: {reason}")]
    BadJson {
        /// The entry.
        path: String,
        /// The parse error.
        reason: String,
    },
    /// An item with a name the API server would not accept, or that contradicts its path.
    #[error(
        "the backup tarball's item {path:?} cannot be restored: {problem}; the archive is refused before anything is created"
    )]
    BadItem {
        /// The entry.
        path: String,
        /// What is wrong.
        problem: ItemProblem,
    },
    /// The disk the archive is extracted to has too little room: found before the archive
    /// is read, or while it is extracted.
    #[error(
        "not enough free disk space to extract the backup into {}: {free} bytes ({}) free, {needed} bytes ({}) needed ({detail}); free space there or point TMPDIR at a directory on a larger disk",
        dir.display(), mib(*free), mib(*needed)
    )]
    NoSpace {
        /// The destination.
        dir: PathBuf,
        /// Bytes free there.
        free: u64,
        /// Bytes needed there (the reserve that must stay free included).
        needed: u64,
        /// What the need is made of.
        detail: String,
    },
    /// Writing the extracted files failed.
    #[error("cannot extract the backup into {}", dir.display())]
    Io {
        /// The destination.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ArchiveError {
    /// Whether trying again later can help: never for the archive itself (it is what it
    /// is); a local disk that was full or failed may have room later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ArchiveError::Io { .. } | ArchiveError::NoSpace { .. })
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Bytes free (to this user) on the filesystem holding `dir`; `None` where it cannot be
/// known (not unix): then no room is checked and a full disk fails the write.
pub fn free_space(dir: &Path) -> std::io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(dir)?;
        Ok(Some(s.f_bavail.saturating_mul(s.f_frsize)))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// Refuses to extract an archive of `compressed` bytes (as stored) into `dir` when the disk
/// there cannot hold it ([`disk_space::least_needed`]) and keep
/// [`disk_space::RESERVE`] free: called before the archive is read, so that a restore
/// onto a full disk fails at once, naming the directory, the numbers and the fix.
pub fn check_room(dir: &Path, compressed: u64, limits: Limits) -> Result<(), ArchiveError> {
    let needed = disk_space::least_needed(compressed, limits.max_total);
    room(
        dir,
        needed,
        format!(
            "the archive's {compressed} compressed bytes at least, and {} bytes kept free",
            disk_space::RESERVE
        ),
    )
}

fn room(dir: &Path, needed: u64, detail: String) -> Result<(), ArchiveError> {
    let io = |source| ArchiveError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let Some(free) = free_space(dir).map_err(io)? else {
        return Ok(());
    };
    disk_space::check(free, needed, disk_space::RESERVE).map_err(|Shortfall { free, needed }| {
        ArchiveError::NoSpace {
            dir: dir.to_path_buf(),
            free,
            needed,
            detail,
        }
    })
}

/// What an extraction found.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// The format version.
    pub version: String,
    /// Item files extracted.
    pub items: u64,
    /// Bytes extracted.
    pub bytes: u64,
}

fn safe_relative(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_))) && !p.as_os_str().is_empty()
}

/// Extracts `reader` (gzip'd tar) into `dest`, validating every entry.
pub fn extract_validated<R: Read>(
    reader: R,
    dest: &Path,
    limits: Limits,
) -> Result<Extracted, ArchiveError> {
    walk(reader, Some(dest), limits, &mut |_| {})
}

/// Validates `reader` (gzip'd tar) as [`extract_validated`] does, writing nothing;
/// `on_item` sees every item's parsed path.
pub fn scan_validated<R: Read>(
    reader: R,
    limits: Limits,
    on_item: &mut dyn FnMut(&ItemPath<'_>),
) -> Result<Extracted, ArchiveError> {
    walk(reader, None, limits, on_item)
}

fn walk<R: Read>(
    reader: R,
    dest: Option<&Path>,
    limits: Limits,
    on_item: &mut dyn FnMut(&ItemPath<'_>),
) -> Result<Extracted, ArchiveError> {
    let io = |source| ArchiveError::Io {
        dir: dest.map(Path::to_path_buf).unwrap_or_default(),
        source,
    };
    let corrupt = |e: std::io::Error| ArchiveError::Corrupt(e.to_string());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut out = Extracted::default();
    let mut first = true;
    let mut entries_seen = 0u64;
    let mut items = ArchiveCheck::default();
    // Disk taken since free space was last looked at (whole blocks per file).
    let mut unchecked = 0u64;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(ArchiveError::TooLarge {
                what: format!("more than {} entries", limits.max_entries),
                limit: limits.max_entries,
            });
        }
        let path = entry.path().map_err(corrupt)?.into_owned();
        let shown = path.to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if !safe_relative(&path) {
                return Err(ArchiveError::BadPath(shown));
            }
            continue;
        }
        if !kind.is_file() {
            return Err(ArchiveError::BadEntryType {
                path: shown,
                kind: format!("{kind:?}"),
            });
        }
        if !safe_relative(&path) {
            return Err(ArchiveError::BadPath(shown));
        }
        let size = entry.header().size().map_err(corrupt)?;
        if size > limits.max_entry {
            return Err(ArchiveError::TooLarge {
                what: format!("entry {shown:?} of {size} bytes"),
                limit: limits.max_entry,
            });
        }
        if out.bytes + size > limits.max_total {
            return Err(ArchiveError::TooLarge {
                what: format!("more than {} bytes in all", limits.max_total),
                limit: limits.max_total,
            });
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(limits.max_entry + 1)
            .read_to_end(&mut data)
            .map_err(corrupt)?;
        if data.len() as u64 != size {
            return Err(ArchiveError::Corrupt(format!(
                "entry {shown:?} is shorter than its header says"
            )));
        }
        out.bytes += size;
        if first {
            first = false;
            if shown != VERSION_ENTRY {
                return Err(ArchiveError::MissingVersion(shown));
            }
            let v = String::from_utf8_lossy(&data).trim().to_owned();
            if !lifeboat_types::rules::archive::is_supported_format(&v) {
                return Err(ArchiveError::UnsupportedVersion(v));
            }
            out.version = v;
            continue;
        }
        if shown == VERSION_ENTRY {
            continue;
        }
        let Some(item) = parse_item_path(&shown) else {
            return Err(ArchiveError::BadPath(shown));
        };
        let head: ItemHead = match serde_json::from_slice(&data) {
            Ok(h) => h,
            Err(e) => {
                return Err(ArchiveError::BadJson {
                    path: shown,
                    reason: e.to_string(),
                });
            }
        };
        if let Err(problem) = items.check(&item, &head) {
            return Err(ArchiveError::BadItem {
                path: shown,
                problem,
            });
        }
        on_item(&item);
        if let Some(dest) = dest {
            let target = dest.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&target, &data).map_err(io)?;
            unchecked = unchecked.saturating_add(disk_space::on_disk(size));
            if unchecked >= disk_space::CHECK_EVERY {
                unchecked = 0;
                room(
                    dest,
                    0,
                    format!(
                        "after {} bytes extracted, {} bytes must stay free",
                        out.bytes,
                        disk_space::RESERVE
                    ),
                )?;
            }
        }
        out.items += 1;
    }
    if first {
        return Err(ArchiveError::MissingVersion("<empty archive>".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Every hostile or damaged input is one row of a table, with the part of the message
    //! a user sees that names why it was refused; each row goes through both the extractor
    //! (restore) and the scanner (`backup verify`), which must agree.
    use super::*;
    use crate::archive::ArchiveWriter;
    use crate::test_support::Tmpfs;
    use rstest::rstest;
    use tar::EntryType::{self, Block, Char, Directory, Fifo, Link, Regular, Symlink};

    fn good() -> Vec<u8> {
        let mut w = ArchiveWriter::new(Vec::new(), 6).unwrap();
        w.add_item("configmaps", "v1", Some("a"), "c", CM).unwrap();
        w.finish().unwrap()
    }

    const CM: &[u8] =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a"}}"#;

    type Entry<'a> = (&'a str, &'a [u8], EntryType);

    /// The version entry every Velero tarball starts with.
    const V: Entry<'static> = ("metadata/version", b"1.1.0\n", Regular);

    /// A gzip'd tar of exactly these entries: names are written byte for byte, so hostile
    /// names are not refused (or normalised) by the builder.
    fn raw_tar(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data, kind) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    /// 64 MiB of one byte in one entry: about 64 KiB compressed.
    fn gzip_bomb() -> Vec<u8> {
        let spaces = vec![b' '; 64 << 20];
        let data = raw_tar(&[
            V,
            ("resources/configmaps/cluster/big.json", &spaces, Regular),
        ]);
        assert!(data.len() < 1 << 20, "not a bomb: {} bytes", data.len());
        data
    }

    fn limits(max_entry: u64, max_total: u64, max_entries: u64) -> Limits {
        Limits {
            max_entry,
            max_total,
            max_entries,
        }
    }

    /// Extracts (into a fresh directory) and scans `data`; both must refuse it with the
    /// same message, and nothing may land outside the destination.
    fn refusal(data: &[u8], limits: Limits) -> String {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let extracted = extract_validated(data, &dest, limits);
        assert!(
            !dir.path().join("escaped.json").exists(),
            "an entry was written outside the destination"
        );
        let scanned = scan_validated(data, limits, &mut |_| {});
        let (Err(e), Err(s)) = (extracted, scanned) else {
            panic!("accepted");
        };
        assert_eq!(e.to_string(), s.to_string(), "extract and scan disagree");
        e.to_string()
    }

    #[test]
    fn good_archive_extracts() {
        let dir = tempfile::tempdir().unwrap();
        let e = extract_validated(&good()[..], dir.path(), Limits::default()).unwrap();
        assert_eq!((e.version.as_str(), e.items), ("1.1.0", 2));
        assert!(
            dir.path()
                .join("resources/configmaps/v1-preferredversion/namespaces/a/c.json")
                .exists()
        );
        let mut seen = 0;
        let s = scan_validated(&good()[..], Limits::default(), &mut |_| seen += 1).unwrap();
        assert_eq!((s.items, seen), (2, 2));
    }

    #[rstest]
    #[case::path_traversal(
        raw_tar(&[V, ("resources/pods/cluster/../../escaped.json", b"{}", Regular)]),
        "hostile or unexpected path \"resources/pods/cluster/../../escaped.json\""
    )]
    #[case::absolute_path(
        raw_tar(&[V, ("/etc/passwd", b"x", Regular)]),
        "hostile or unexpected path \"/etc/passwd\""
    )]
    #[case::directory_escaping(
        raw_tar(&[V, ("../outside/", b"", Directory)]),
        "hostile or unexpected path \"../outside/\""
    )]
    #[case::not_a_velero_path(
        raw_tar(&[V, ("evil.sh", b"rm -rf /", Regular)]),
        "hostile or unexpected path \"evil.sh\""
    )]
    #[case::symlink(
        raw_tar(&[V, ("resources/pods/cluster/l.json", b"", Symlink)]),
        "a Symlink entry at \"resources/pods/cluster/l.json\"; only regular files"
    )]
    #[case::hardlink(
        raw_tar(&[V, ("resources/pods/cluster/h.json", b"", Link)]),
        "a Link entry at \"resources/pods/cluster/h.json\"; only regular files"
    )]
    #[case::char_device(
        raw_tar(&[V, ("resources/pods/cluster/tty.json", b"", Char)]),
        "a Char entry at \"resources/pods/cluster/tty.json\""
    )]
    #[case::block_device(
        raw_tar(&[V, ("resources/pods/cluster/sda.json", b"", Block)]),
        "a Block entry at \"resources/pods/cluster/sda.json\""
    )]
    #[case::fifo(
        raw_tar(&[V, ("resources/pods/cluster/f.json", b"", Fifo)]),
        "a Fifo entry at \"resources/pods/cluster/f.json\""
    )]
    #[case::bad_json(
        raw_tar(&[V, ("resources/pods/cluster/bad.json", b"{not json", Regular)]),
        "invalid JSON at \"resources/pods/cluster/bad.json\""
    )]
    #[case::version_not_first(
        raw_tar(&[("resources/pods/cluster/p.json", b"{}", Regular), V]),
        "no metadata/version as its first entry (found \"resources/pods/cluster/p.json\")"
    )]
    #[case::empty_archive(raw_tar(&[]), "no metadata/version as its first entry (found \"<empty archive>\")")]
    #[case::unsupported_version(
        raw_tar(&[("metadata/version", b"2.0.0\n", Regular)]),
        "format version \"2.0.0\"; lifeboat reads Velero's formats 1 and 1.x"
    )]
    #[case::truncated(good()[..good().len() / 2].to_vec(), "corrupt or truncated")]
    #[case::not_gzip(b"not gzip at all".to_vec(), "corrupt or truncated")]
    #[case::gzip_bomb(
        gzip_bomb(),
        "too large: entry \"resources/configmaps/cluster/big.json\" of 67108864 bytes (limit 16777216 bytes)"
    )]
    // Issue 11 item 4: hostile names never reach a REST path (the name, the namespace, the
    // resource); each is refused naming the entry, before anything is extracted after it.
    #[case::name_with_a_question_mark(
        raw_tar(&[V, ("resources/configmaps/namespaces/a/x?dryRun=All.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x?dryRun=All","namespace":"a"}}"#, Regular)]),
        "item \"resources/configmaps/namespaces/a/x?dryRun=All.json\" cannot be restored: name \"x?dryRun=All\" is not a valid Kubernetes name"
    )]
    #[case::name_with_a_space(
        raw_tar(&[V, ("resources/configmaps/namespaces/a/x y.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x y","namespace":"a"}}"#, Regular)]),
        "name \"x y\" is not a valid Kubernetes name"
    )]
    #[case::name_with_a_percent(
        raw_tar(&[V, ("resources/secrets/namespaces/a/%2E%2E.json", br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%2E%2E","namespace":"a"}}"#, Regular)]),
        "name \"%2E%2E\" is not a valid Kubernetes name"
    )]
    #[case::namespace_with_a_percent(
        raw_tar(&[V, ("resources/configmaps/namespaces/a%2Fb/c.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a%2Fb"}}"#, Regular)]),
        "namespace \"a%2Fb\" is not a valid Kubernetes name"
    )]
    // Issue 11 item 4 / issue 12 item 4: an item contradicting its path refuses the archive.
    #[case::cluster_role_binding_under_secrets(
        raw_tar(&[V, ("resources/secrets/namespaces/x/evil.json", br#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"evil"}}"#, Regular)]),
        "item \"resources/secrets/namespaces/x/evil.json\" cannot be restored: apiVersion is \"rbac.authorization.k8s.io/v1\" but its path says group \"\""
    )]
    #[case::namespace_other_than_its_path(
        raw_tar(&[V, ("resources/configmaps/namespaces/allowed/c.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"kube-system"}}"#, Regular)]),
        "metadata.namespace is \"kube-system\" but its path says \"allowed\""
    )]
    #[case::not_an_object(
        raw_tar(&[V, ("resources/configmaps/namespaces/a/c.json", b"[1, 2]", Regular)]),
        "invalid JSON at \"resources/configmaps/namespaces/a/c.json\": invalid type"
    )]
    fn hostile_archive_is_refused(#[case] archive: Vec<u8>, #[case] want: &str) {
        let err = refusal(&archive, Limits::default());
        assert!(err.contains(want), "{err}");
    }

    /// Issue 11, item 6: a restore onto a disk without room for the archive (its
    /// compressed size) and the reserve is refused before the archive is read, naming the
    /// directory, free and needed bytes and the fix; a disk with room passes. Before the
    /// fix, nothing looked at free space.
    #[test]
    fn a_disk_without_room_is_refused_before_extraction() {
        let Some(small) = Tmpfs::mount(2 << 20, "a_disk_without_room_is_refused_before_extraction")
        else {
            return;
        };
        let err = check_room(small.path(), 1 << 20, Limits::default()).unwrap_err();
        let ArchiveError::NoSpace { free, needed, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!((*free, *needed), (2 << 20, (1 << 20) + disk_space::RESERVE));
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "not enough free disk space to extract the backup into {}: 2097152 bytes (2.0 MiB) free, 68157440 bytes (65.0 MiB) needed (the archive's 1048576 compressed bytes at least, and 67108864 bytes kept free); free space there or point TMPDIR at a directory on a larger disk",
                small.path().display()
            )),
            "{msg}"
        );
        assert!(err.is_retryable());
        // Nothing is needed but the reserve: 2 MiB still cannot keep 64 MiB free.
        assert!(check_room(small.path(), 0, Limits::default()).is_err());
        let Some(roomy) = Tmpfs::mount(
            disk_space::RESERVE + (2 << 20),
            "a_disk_without_room_is_refused_before_extraction",
        ) else {
            return;
        };
        check_room(roomy.path(), 1 << 20, Limits::default()).unwrap();
    }

    /// Issue 11, item 6: an archive that passed the check before extraction (it compresses
    /// far better than the disk has room for) is stopped while it is extracted, as soon as
    /// free space falls under the reserve — with the same error, not a full disk's write
    /// error, and long before the disk is full. Before the fix, extraction went on until
    /// the 16 MiB of items were all written (or the disk was full).
    #[test]
    fn extraction_stops_when_free_space_falls_under_the_reserve() {
        let test = "extraction_stops_when_free_space_falls_under_the_reserve";
        let Some(disk) = Tmpfs::mount(disk_space::RESERVE + (6 << 20), test) else {
            return;
        };
        // 16 items of 1 MiB of spaces each: a few KiB compressed.
        let body = |i: usize| {
            format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c{i}","namespace":"a"}},"data":{{"k":"{}"}}}}"#,
                " ".repeat(1 << 20)
            )
        };
        let bodies: Vec<(String, String)> = (0..16)
            .map(|i| {
                (
                    format!("resources/configmaps/namespaces/a/c{i}.json"),
                    body(i),
                )
            })
            .collect();
        let mut entries = vec![V];
        entries.extend(
            bodies
                .iter()
                .map(|(p, b)| (p.as_str(), b.as_bytes(), Regular)),
        );
        let archive = raw_tar(&entries);
        check_room(disk.path(), archive.len() as u64, Limits::default()).unwrap();
        let dest = disk.path().join("dest");
        let err = extract_validated(&archive[..], &dest, Limits::default()).unwrap_err();
        let ArchiveError::NoSpace {
            free,
            needed,
            detail,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        assert!(
            *free < disk_space::RESERVE && *needed == disk_space::RESERVE,
            "{err}"
        );
        assert!(
            detail.starts_with("after ")
                && detail.ends_with(" bytes extracted, 67108864 bytes must stay free"),
            "{err}"
        );
        let written = std::fs::read_dir(dest.join("resources/configmaps/namespaces/a"))
            .unwrap()
            .count();
        // Checked every 8 MiB: stopped at the first check under the reserve.
        // Without the reserve check all 16 MiB would have been written: they fit on the
        // 70 MiB disk.
        assert_eq!(written, 8, "{err}");
    }

    #[rstest]
    #[case::entry_over_the_entry_limit(limits(10, 1 << 20, 100), "entry \"resources/configmaps/namespaces/a/c.json\" of 78 bytes (limit 10 bytes)")]
    #[case::total_over_the_total_limit(limits(1 << 20, 10, 100), "more than 10 bytes in all (limit 10 bytes)")]
    #[case::too_many_entries(limits(1 << 20, 1 << 20, 2), "more than 2 entries")]
    fn archive_over_a_limit_is_refused(#[case] limits: Limits, #[case] want: &str) {
        let err = refusal(&good(), limits);
        assert!(
            err.contains("the backup tarball is too large") && err.contains(want),
            "{err}"
        );
    }
}
