//! lifeboat's own restore of a snapshot's tree into a directory, over rustic_core's tree
//! listing and file reads (`Repository::ls`, `Repository::dump`).
//!
//! rustic_core's restorer reads every pack in a pool of 20 threads with nothing bounding
//! what is read ahead of the writes (its memory grows with the data), and panics on a read
//! or write error (a damaged pack, a full disk). Here a few workers each stream one file at
//! a time, so memory stays bounded by the workers' buffers; a file whose data cannot be
//! read (a damaged or missing pack) is removed, named in the outcome, and the rest is
//! restored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustic_core::repofile::{Node, NodeType};
use rustic_core::{IndexedFull, LsOptions, Repository, RusticResult};

/// How many files are written at once.
const WORKERS: usize = 4;

/// A file that could not be restored, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedFile {
    /// Its path under the target.
    pub path: String,
    /// Why (the repository's account, or the local write error).
    pub reason: String,
}

/// What a restore of a tree did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Regular files written whole.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Files not restored.
    pub failed: Vec<FailedFile>,
}

/// The size of every regular file below `node` (for the free-space check before writing).
pub fn total_size<S: IndexedFull>(repo: &Repository<S>, node: &Node) -> RusticResult<u64> {
    if node.is_file() {
        return Ok(node.meta.size);
    }
    let mut total = 0u64;
    for item in repo.ls(node, &LsOptions::default())? {
        let (_, n) = item?;
        if n.is_file() {
            total = total.saturating_add(n.meta.size);
        }
    }
    Ok(total)
}

/// Restores `node` (a directory: its contents; a file: itself) into `target`.
pub fn restore<S: IndexedFull + Sync>(
    repo: &Repository<S>,
    node: &Node,
    target: &Path,
) -> RusticResult<Outcome> {
    let outcome = Mutex::new(Outcome::default());
    if node.is_file() {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        write_file(repo, node, target, target, &outcome);
        return Ok(outcome.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    std::fs::create_dir_all(target).map_err(io_err(target))?;
    let mut dirs: Vec<(PathBuf, Node)> = vec![(target.to_owned(), node.clone())];
    let (tx, rx) = std::sync::mpsc::sync_channel::<(PathBuf, Node)>(WORKERS * 2);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| -> RusticResult<()> {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((path, n)) = job else { break };
                    write_file(repo, &n, &path, target, &outcome);
                }
            });
        }
        let listed = (|| -> RusticResult<()> {
            for item in repo.ls(node, &LsOptions::default())? {
                let (rel, n) = item?;
                let path = target.join(&rel);
                match &n.node_type {
                    NodeType::Dir => {
                        std::fs::create_dir_all(&path).map_err(io_err(&path))?;
                        dirs.push((path, n));
                    }
                    NodeType::File => {
                        if tx.send((path, n)).is_err() {
                            break;
                        }
                    }
                    NodeType::Symlink { linktarget, .. } => {
                        let _ = std::fs::remove_file(&path);
                        if let Err(e) = std::os::unix::fs::symlink(linktarget, &path) {
                            failed(
                                &outcome,
                                &path,
                                target,
                                format!("cannot create the link: {e}"),
                            );
                        } else if let (Some(uid), Some(gid)) = (n.meta.uid, n.meta.gid) {
                            let _ = std::os::unix::fs::lchown(&path, Some(uid), Some(gid));
                        }
                    }
                    other => failed(
                        &outcome,
                        &path,
                        target,
                        format!("a special file ({other}) is not restored"),
                    ),
                }
            }
            Ok(())
        })();
        drop(tx);
        listed
    })?;
    // Directories last, deepest first, so that writing into them does not move their times.
    for (path, n) in dirs.iter().rev() {
        set_metadata(path, n);
    }
    Ok(outcome.into_inner().unwrap_or_else(|p| p.into_inner()))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Box<rustic_core::RusticError> + '_ {
    move |e| {
        rustic_core::RusticError::with_source(
            rustic_core::ErrorKind::InputOutput,
            format!("cannot write {}", path.display()),
            e,
        )
    }
}

fn failed(outcome: &Mutex<Outcome>, path: &Path, target: &Path, reason: String) {
    let rel = path.strip_prefix(target).unwrap_or(path);
    outcome
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .failed
        .push(FailedFile {
            path: rel.display().to_string(),
            reason,
        });
}

/// Writes one file whole, or removes it and records why.
fn write_file<S: IndexedFull>(
    repo: &Repository<S>,
    node: &Node,
    path: &Path,
    target: &Path,
    outcome: &Mutex<Outcome>,
) {
    let written = (|| -> Result<(), String> {
        let file = std::fs::File::create(path).map_err(|e| format!("cannot create it: {e}"))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        repo.dump(node, &mut w).map_err(|e| e.display_log())?;
        w.flush().map_err(|e| format!("cannot write it: {e}"))?;
        Ok(())
    })();
    match written {
        Ok(()) => {
            set_metadata(path, node);
            let mut o = outcome.lock().unwrap_or_else(|p| p.into_inner());
            o.files = o.files.saturating_add(1);
            o.bytes = o.bytes.saturating_add(node.meta.size);
        }
        Err(reason) => {
            let _ = std::fs::remove_file(path);
            failed(outcome, path, target, reason);
        }
    }
}

/// Owner (by number), permissions and modification time, as far as they can be set.
fn set_metadata(path: &Path, node: &Node) {
    use std::os::unix::fs::PermissionsExt;
    if let (Some(uid), Some(gid)) = (node.meta.uid, node.meta.gid) {
        let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
    if let Some(mode) = node.meta.mode {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(unix_mode(mode)));
    }
    if let Some(t) = node.meta.mtime {
        let ft =
            filetime::FileTime::from_unix_time(t.as_second(), t.subsec_nanosecond().unsigned_abs());
        let _ = filetime::set_file_mtime(path, ft);
    }
}

/// The permission bits of a Go `fs.FileMode` (how restic stores modes): the low nine bits,
/// and setuid, setgid and sticky from Go's own bits.
pub fn unix_mode(go_mode: u32) -> u32 {
    const GO_SETUID: u32 = 1 << 23;
    const GO_SETGID: u32 = 1 << 22;
    const GO_STICKY: u32 = 1 << 20;
    let mut mode = go_mode & 0o777;
    if go_mode & GO_SETUID != 0 {
        mode |= 0o4000;
    }
    if go_mode & GO_SETGID != 0 {
        mode |= 0o2000;
    }
    if go_mode & GO_STICKY != 0 {
        mode |= 0o1000;
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain_file(0o644, 0o644)]
    #[case::dir_with_go_dir_bit((1 << 31) | 0o700, 0o700)]
    #[case::setuid((1 << 23) | 0o755, 0o4755)]
    #[case::setgid_dir((1 << 31) | (1 << 22) | 0o2775 & 0o777, 0o2775)]
    #[case::sticky_tmp((1 << 31) | (1 << 20) | 0o777, 0o1777)]
    fn go_modes_become_unix_permissions(#[case] go: u32, #[case] want: u32) {
        assert_eq!(unix_mode(go), want);
    }
}
