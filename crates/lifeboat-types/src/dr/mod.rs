//! Disaster recovery across clusters, as data and decisions (no I/O; `lifeboat-dr` does
//! the work):
//!
//! - [`plan`]: the DR plan — clusters, locations, protected namespaces, tiers with their
//!   RPO/RTO, strategy, replica handling, hooks, verification, success criteria — read
//!   from YAML (or the `DRPlan` resource) and validated with errors naming the field.
//! - [`status`]: `dr status`' decisions — the backup a cluster would restore, the RPO now,
//!   schedule coverage, a cluster's readiness to take over, the plan's health.
//! - [`drill`]: a drill's scratch namespaces and its verdict against the plan.
//! - [`failover`]: whether a failover may start, fencing and its undoing (replica counts
//!   kept in an annotation), which schedules fencing pauses, a failback's traffic steps.
//! - [`standby`]: a warm standby — how restored objects are held (0 replicas, CronJobs
//!   suspended, the plan's label), what a sync leaves out and prunes.
//! - [`plan_file`]: a plan file edited after a failover or failback — the cluster that
//!   took over made active, the user's comments and style kept.
//! - [`images`]: whether a standby's nodes hold the images the plan's workloads run.
//! - [`server`]: the `DRPlan` resource's status as the server keeps it, and when the
//!   server drills a plan next.

pub mod drill;
pub mod failover;
pub mod images;
pub mod plan;
pub mod plan_file;
pub mod runbook;
pub mod server;
pub mod standby;
pub mod status;
