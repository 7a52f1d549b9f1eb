//! The objects: velero.io/v1 resources, the lifeboat.dev CRDs, names, durations, byte
//! sizes, label selectors, Kubernetes' built-in API groups.

pub mod crd;
pub mod duration;
pub mod groups;
pub mod names;
pub mod pod_volume;
pub mod selector;
pub mod size;
pub mod velero;
