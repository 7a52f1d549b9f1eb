//! Types and pure logic of lifeboat, with no I/O: the velero.io/v1 resources, the Velero
//! object-store and tarball layout, label selectors, durations and backup planning.
#![warn(missing_docs)]

pub mod crd;
pub mod document;
pub mod duration;
pub mod etcd_schedule;
pub mod hooks;
pub mod install;
pub mod jsonpath;
pub mod layout;
pub mod location;
pub mod names;
pub mod plan;
pub mod resource_list;
pub mod restore;
pub mod restore_hooks;
pub mod retention;
pub mod schedule;
pub mod selector;
pub mod velero;

pub use duration::GoDuration;
