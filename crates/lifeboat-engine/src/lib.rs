//! lifeboat's engine: storage locations (OpenDAL), the API server (kube), and the
//! streaming Velero-format backup writer. Binaries use this through `lifeboat`.
#![warn(missing_docs)]

pub mod archive;
pub mod backup;
pub mod catalog;
pub mod cluster;
pub mod controller;
pub mod csi;
pub mod error;
pub mod extract;
pub mod hooks;
pub mod location_object;
pub mod modifiers;
pub mod objects;
pub mod pod_volumes;
pub mod ready;
pub mod replicate;
pub mod restore;
pub mod runlog;
pub mod storage;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod verify;
