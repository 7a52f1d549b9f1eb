//! Readiness before the bad day: what the audit reads of a cluster (its objects, its
//! Schedules and locations, the etcd snapshots stored there) to hand to the pure rules of
//! `lifeboat_types::readiness::audit`. Nothing here writes to a cluster or a location.

pub mod audit;
