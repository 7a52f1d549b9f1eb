//! The one place lifeboat uses `unsafe`: mapping a snapshot file read-only (memmap2)
//! and telling the kernel it may drop the mapping's resident pages.
//!
//! Why it is sound here: the map is read-only and private to this process, and lifeboat
//! never writes the file while it is mapped. Another process truncating the file while it
//! is mapped would make a read fault (SIGBUS) — as with bbolt and etcdctl, which map
//! snapshot files the same way; a snapshot being restored is not a file anyone else
//! writes. Dropping resident pages (MADV_DONTNEED) of a read-only file mapping loses
//! nothing: the next access re-reads the unchanged file.
#![allow(unsafe_code)]

use std::path::Path;

use crate::snapshot::SnapshotError;

/// Maps a snapshot file read-only: a 1 GiB snapshot is paged in by the kernel as it is
/// walked, never copied onto the heap.
pub(crate) fn read_file(path: &Path) -> Result<Mapped, SnapshotError> {
    let io = |e: std::io::Error| SnapshotError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() == 0 {
        return Ok(Mapped(None));
    }
    // SAFETY: the map is read-only and private to this process; a file truncated while it
    // is mapped would fault, as with bbolt and etcdctl, which map snapshot files the same way.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    Ok(Mapped(Some(map)))
}

/// A mapped file (an empty file cannot be mapped and reads as no bytes).
pub(crate) struct Mapped(Option<memmap2::Mmap>);

/// Bytes read from a mapping between two releases of its resident pages.
pub(crate) const RELEASE_EVERY: usize = 16 << 20;

impl Mapped {
    /// Drops this process's resident copies of the mapped pages: they stay in the page
    /// cache and fault back in when read again. Without it, walking a 1 GiB snapshot
    /// leaves 1 GiB counted in the process's resident set.
    pub(crate) fn release(&self) {
        if let Some(m) = &self.0 {
            // SAFETY: the mapping is read-only and private; dropping its pages loses
            // nothing (they are re-read from the unchanged file on the next access).
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}
