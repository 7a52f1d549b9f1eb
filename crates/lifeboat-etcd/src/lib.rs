//! lifeboat-etcd: etcd snapshots without etcdctl — saving from a live etcd (`save`),
//! reading snapshot files (`snapshot`: status, verify) through a read-only map (`mmap`,
//! the workspace's only `unsafe`), receiving a stored (possibly gzip) snapshot as a
//! checked stream into a private file (`receive`), restoring them into a new member
//! directory (`restore`, over a bbolt writer, `bolt_write`).
//!
//! Of lifeboat it depends only on the pure lifeboat-types; storing a snapshot in a storage
//! location, or reading one from there, is the caller's (the binary uploads the saved
//! file through `lifeboat_engine::storage`, and feeds a stored one's bytes to `receive`).
#![warn(missing_docs)]

pub(crate) mod bolt_write;
mod mmap;
pub mod receive;
pub mod restore;
pub mod save;
pub mod snapshot;
