//! lifeboat-etcd: etcd snapshots without etcdctl: saving from a live etcd (`save`), and reading snapshot files
//! (`snapshot`: status, verify), restoring them into a new member directory (`restore`,
//! over a bbolt writer, `bolt_write`).
//!
//! No dependency on the rest of lifeboat: storing a snapshot in a storage location is
//! the caller's (the binary uploads the saved file through `lifeboat_engine::storage`).
#![warn(missing_docs)]

pub(crate) mod bolt_write;
pub mod restore;
pub mod save;
pub mod snapshot;
