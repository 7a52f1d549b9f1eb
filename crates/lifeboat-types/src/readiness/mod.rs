//! Being ready before the bad day: the readiness audit's rules, and the alert rules
//! generated from the server's metric table.

pub mod alerts;
pub mod audit;
pub mod console;
pub mod notify;
