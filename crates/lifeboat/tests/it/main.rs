//! lifeboat's integration tests: one binary, run by scripts/test.sh against a real
//! control plane (etcd + kube-apiserver + kube-controller-manager) and a real S3 HTTP
//! server (moto). They are `#[ignore]`d for a plain `cargo test`, which runs only the
//! unit tests.
// The tests are synchronous processes that drive the binary: a blocking sleep while
// polling is right here (the rule against it is for async code).
#![allow(clippy::disallowed_methods)]

mod alerts;
mod audit;
mod backup;
mod cli_mode;
mod console;
mod csi;
mod dr;
mod dropin;
mod errors;
mod etcd;
mod etcd_restore;
mod etcd_stored;
mod failures;
mod faults;
mod guide_lines;
mod hooks;
mod image;
mod many_namespaces;
mod node;
mod notify;
mod rbac;
mod regression;
mod replicate;
mod restore;
mod runbook;
mod s3;
mod secrets;
mod seeds;
mod server;
mod server_fixture;
mod server_lease;
mod support;
mod tcp_proxy;
mod velero_made;
mod verify;
mod volume;
mod webhook_receiver;
mod writes;
