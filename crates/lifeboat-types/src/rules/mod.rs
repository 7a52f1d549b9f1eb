//! Decisions as pure functions, tested as tables: which API requests are retried and how
//! long (within a budget), schedules, retention of stored snapshots, which stored etcd
//! snapshot is meant and whether the newest is fresh and big enough, when a storage
//! location is validated and synced, how retries back off, what a diff may show of a Secret, whose stored data a deletion may delete and what sync
//! makes of a bucket, which volumes a restore creates, which archive items may be restored,
//! whether an archive fits on the disk it is extracted to, how a LIST goes on when its
//! continue token expired, whether a backup lists a type per namespace or cluster-wide,
//! whether the CLI works through the cluster's server or from this machine, whether a
//! restored workload serves again, which pod volumes have their files backed up and where
//! they are on the node, which backups and files `backup replicate` copies.

pub mod api_retry;
pub mod archive;
pub mod backoff;
pub mod backup_controller;
pub mod backups;
pub mod cli_mode;
pub mod csi;
pub mod disk_space;
pub mod etcd_snapshots;
pub mod fs_backup;
pub mod list_resume;
pub mod list_sort;
pub mod location;
pub mod namespaced_list;
pub mod replicate;
pub mod retention;
pub mod schedule;
pub mod secrets;
pub mod stored_data;
pub mod volumes;
pub mod workload_ready;
