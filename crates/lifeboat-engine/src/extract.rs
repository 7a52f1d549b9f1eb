//! Reading a backup tarball safely: validated while it streams, extracted into a private
//! directory, refused as a whole at the first sign of damage or hostility — before anything
//! is created in a cluster.
//!
//! Invariant: nothing outside the destination directory is ever written, and only regular
//! files whose path is `metadata/version` or a Velero item path are extracted.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use lifeboat_types::format::layout::{ItemPath, VERSION_ENTRY, parse_item_path};

/// Limits that keep a hostile archive from exhausting disk or memory.
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
    #[error("the backup tarball has format version {0:?}; lifeboat reads 1.x")]
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
    /// Writing the extracted files failed.
    #[error("cannot extract the backup into {}: {source}", dir.display())]
    Io {
        /// The destination.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
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
            if !v.starts_with("1.") {
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
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&data) {
            return Err(ArchiveError::BadJson {
                path: shown,
                reason: e.to_string(),
            });
        }
        on_item(&item);
        if let Some(dest) = dest {
            let target = dest.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&target, &data).map_err(io)?;
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
    use super::*;
    use crate::archive::ArchiveWriter;
    use std::io::Write;

    fn good() -> Vec<u8> {
        let mut w = ArchiveWriter::new(Vec::new(), 6).unwrap();
        w.add_item(
            "configmaps",
            "v1",
            Some("a"),
            "c",
            br#"{"kind":"ConfigMap"}"#,
        )
        .unwrap();
        w.finish().unwrap()
    }

    type Entry<'a> = (&'a str, &'a [u8], tar::EntryType);

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
            // Write the name bytes directly so that hostile names are not refused here.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn extract(data: &[u8]) -> Result<Extracted, ArchiveError> {
        let dir = tempfile::tempdir().unwrap();
        let r = extract_validated(data, dir.path(), Limits::default());
        // Nothing ever lands outside the destination.
        assert!(!dir.path().parent().unwrap().join("escaped.json").exists());
        r
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
    }

    #[test]
    fn truncated_and_garbage_are_refused() {
        let g = good();
        assert!(matches!(
            extract(&g[..g.len() / 2]),
            Err(ArchiveError::Corrupt(_))
        ));
        assert!(matches!(
            extract(b"not gzip at all"),
            Err(ArchiveError::Corrupt(_))
        ));
    }

    #[test]
    fn hostile_entries_are_refused() {
        let v = ("metadata/version", &b"1.1.0\n"[..], tar::EntryType::Regular);
        let cases: Vec<(Vec<Entry<'_>>, &str)> = vec![
            (
                vec![
                    v,
                    (
                        "resources/pods/cluster/../../../escaped.json",
                        b"{}",
                        tar::EntryType::Regular,
                    ),
                ],
                "hostile",
            ),
            (
                vec![v, ("/etc/passwd", b"x", tar::EntryType::Regular)],
                "hostile",
            ),
            (
                vec![
                    v,
                    (
                        "resources/pods/cluster/l.json",
                        b"",
                        tar::EntryType::Symlink,
                    ),
                ],
                "Symlink",
            ),
            (
                vec![
                    v,
                    ("resources/pods/cluster/h.json", b"", tar::EntryType::Link),
                ],
                "Link",
            ),
            (
                vec![
                    v,
                    (
                        "resources/pods/cluster/bad.json",
                        b"{not json",
                        tar::EntryType::Regular,
                    ),
                ],
                "invalid JSON",
            ),
            (
                vec![(
                    "resources/pods/cluster/p.json",
                    b"{}",
                    tar::EntryType::Regular,
                )],
                "no metadata/version",
            ),
            (
                vec![("metadata/version", b"2.0.0\n", tar::EntryType::Regular)],
                "format version",
            ),
            (
                vec![v, ("evil.sh", b"rm -rf", tar::EntryType::Regular)],
                "hostile",
            ),
        ];
        for (entries, needle) in cases {
            let err = extract(&raw_tar(&entries)).unwrap_err().to_string();
            assert!(err.contains(needle), "{entries:?}: {err}");
        }
        assert!(matches!(
            extract(&raw_tar(&[])),
            Err(ArchiveError::MissingVersion(_))
        ));
    }

    #[test]
    fn bombs_are_refused() {
        // 64 MiB of zeros compresses to ~64 KiB.
        let zeros = vec![b' '; 64 << 20];
        let data = raw_tar(&[
            ("metadata/version", b"1.1.0\n", tar::EntryType::Regular),
            (
                "resources/configmaps/cluster/big.json",
                &zeros,
                tar::EntryType::Regular,
            ),
        ]);
        assert!(data.len() < 1 << 20);
        let err = extract(&data).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let small = Limits {
            max_total: 10,
            ..Limits::default()
        };
        let err = extract_validated(&good()[..], dir.path(), small).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
        let _ = std::io::sink().write(b"");
    }
}
