//! One module per verb group: each holds its subcommands' flags (named `Args` structs)
//! and their handlers, which return an [`Exit`](crate::exit::Exit).

pub mod alerts;
pub mod apply;
pub mod audit;
pub mod backup;
pub mod completion;
pub mod dr;
pub mod etcd;
pub mod location;
pub mod node_agent;
pub mod replicate;
pub mod restore;
pub mod schedule;
pub mod server;
pub mod snapshot_location;
pub mod verify;
pub mod volume;
