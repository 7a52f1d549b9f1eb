//! etcd snapshots: saving from a live etcd (`save`), and reading snapshot files
//! (`snapshot`: status, verify). Restore and retention are still to come (issue 4).

pub mod save;
pub mod snapshot;
