//! etcd snapshots: saving from a live etcd (`save`), and reading snapshot files
//! (`snapshot`: status, verify), restoring them into a new member directory (`restore`,
//! over a bbolt writer, `bolt_write`).

pub(crate) mod bolt_write;
pub mod restore;
pub mod save;
pub mod snapshot;
