//! etcd snapshots. This session's slice: reading snapshot files (`status`, `verify`);
//! saving, restoring and retention are still to come (issue 4).

pub mod snapshot;
