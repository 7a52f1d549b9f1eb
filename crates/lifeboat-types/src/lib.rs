//! Types and pure logic of lifeboat, with no I/O. Grouped by what a module is about:
//!
//! - [`api`]: the objects — velero.io/v1 resources, the lifeboat.dev CRDs derived from
//!   them, names, Go durations, byte sizes, label selectors.
//! - [`format`]: what is stored and read — Velero's object-store and tarball layout, the
//!   resource list, velero.io/v1 YAML documents, kubectl's JSONPath for `-o jsonpath=`.
//! - [`plan`]: turning a spec into work — backup and restore planning, backup and restore
//!   hooks.
//! - [`rules`]: decisions as pure functions — schedules, snapshot retention, storage
//!   location validation/sync timing.
//! - [`manifests`]: Kubernetes objects lifeboat generates — the install manifests and
//!   RBAC, the etcd snapshot CronJob.
//! - [`metrics`]: the one table of metric names, help texts and types the server exports.
//! - [`dr`]: disaster recovery as data — DR plans and their tiers, `dr status`' and a
//!   drill's decisions.
//!
//! - [`readiness`]: being ready before the bad day — the audit's rules over a cluster's
//!   objects, the alert rules generated from the metric table.
#![warn(missing_docs)]

pub mod api;
pub mod dr;
pub mod format;
pub mod manifests;
pub mod metrics;
pub mod plan;
pub mod readiness;
pub mod rules;

pub use api::duration::GoDuration;
pub use api::size::ByteSize;
