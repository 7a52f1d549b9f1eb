//! What is stored and read: the object-store and tarball layout, the resource list,
//! velero.io/v1 documents, kubectl's JSONPath subset.

pub mod document;
pub mod html;
pub mod jsonpath;
pub mod layout;
pub mod markdown;
pub mod percent;
pub mod resource_list;
