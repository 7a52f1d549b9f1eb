//! Helpers of the tests of this crate and of the integration tests (feature
//! `test-support`, which only `crates/lifeboat`'s dev-dependencies turn on).

use std::path::Path;
use std::process::Command;

/// A tmpfs of `bytes` mounted on a fresh directory, unmounted when dropped (also when the
/// test fails): a real filesystem with little room, for what a full disk looks like to
/// statvfs and to writes, nothing simulated. `None` where mounting is not permitted (not
/// root, or no mount rights in this container): the test then skips, printing why.
pub struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Mounts it, for the test named `test` (named in the skip message).
    pub fn mount(bytes: u64, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir)),
            Ok(o) => {
                eprintln!(
                    "SKIPPED {test}: cannot mount a {bytes}-byte tmpfs here (needs root with mount rights): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: cannot run mount: {e}");
                None
            }
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}
