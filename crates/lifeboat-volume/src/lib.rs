//! Volume data in restic-format repositories.
//!
//! The format is restic's (through rustic_core, not written by hand), so plain `restic`
//! lists, checks and restores what lifeboat wrote, and lifeboat restores what restic wrote.
//! A repository lives in a directory of a storage location — `<prefix>/restic/<namespace>`
//! for a namespace's pod volumes, the layout of Velero's restic uploader — and is reached
//! through lifeboat's storage layer ([`backend::StoreBackend`]). Its key is always the
//! user's ([`key::RepoKey`]); there is no default.
//!
//! - `backend`: rustic_core's backend traits over `lifeboat_engine::storage::Store`.
//! - `key`: where the key comes from; refused when there is none.
//! - `repo`: open or create, back up a directory, restore a snapshot, list snapshots.
//! - `restorer`: a snapshot's tree written into a directory, a few files at a time, naming
//!   the files that could not be restored.
//! - `error`: what went wrong, naming the repository, and whether to retry.

pub mod backend;
pub mod error;
pub mod key;
pub mod repo;
pub mod restorer;

pub use backend::StoreBackend;
pub use error::VolumeError;
pub use key::RepoKey;
pub use repo::{BackupRequest, Repo, RestoreReport, SnapshotInfo, Summary};
/// rustic_core's progress reporting, for callers that draw it (the CLI's bars).
pub use rustic_core::{Progress, ProgressBars, ProgressType, RusticProgress};
