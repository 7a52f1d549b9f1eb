//! The objects: velero.io/v1 resources, the lifeboat.dev CRDs, names, durations, label
//! selectors.

pub mod crd;
pub mod duration;
pub mod names;
pub mod selector;
pub mod velero;
