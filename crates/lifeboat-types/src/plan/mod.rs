//! From a spec to work: backup and restore planning, backup and restore hooks.

pub mod backup;
pub mod backup_hooks;
pub mod restore;
pub mod restore_hooks;
pub mod restore_plan;
