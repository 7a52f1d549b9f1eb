//! lifeboat's disaster recovery across clusters: the I/O of DR plans. The plans, their
//! rules and every decision are `lifeboat_types::dr`'s; this crate reaches the plan's
//! clusters and locations and does the work.
//!
//! - [`target`]: one cluster of a plan, reached — its API server, whether lifeboat is
//!   installed, the storage locations it reads.
//! - [`status`]: `dr status` — RPO, readiness, schedule coverage and lag of every cluster.
//! - [`drill`]: `dr drill` — a restore into scratch namespaces on a standby, measured and
//!   judged, then cleaned up.
//! - [`steps`]: what failovers and drills share — recorded steps, the plan's
//!   verification, local commands with the run's facts.
//! - [`failover`]: `dr failover` — fence, restore, hooks, verify; rollback on failure.
//! - [`failback`]: `dr failback` — a fresh backup of the acting cluster restored into
//!   the original, traffic moved in weighted steps, the acting cluster back to standby.
//! - [`fence`]: fencing a cluster (schedules paused, workloads at 0, counts kept) and
//!   undoing it exactly.
//! - [`hooks`]: a plan's hooks at their points — local commands, exec in pods, webhooks.
//! - [`standby`]: `dr sync` — a warm standby kept holding the newest backup (workloads at
//!   0, the plan's label), and its promotion.
//! - [`report`]: what run reports share — stored beside the backups, their steps as
//!   Markdown — and `dr status` as Markdown.
#![warn(missing_docs)]

pub mod drill;
pub mod failback;
pub mod failover;
pub mod fence;
pub mod hooks;
pub mod report;
pub mod standby;
pub mod status;
pub mod steps;
pub mod target;
