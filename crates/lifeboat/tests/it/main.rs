//! lifeboat's integration tests: one binary, run by scripts/test.sh against a real
//! control plane (etcd + kube-apiserver + kube-controller-manager) and a real S3 HTTP
//! server (moto). They are `#[ignore]`d for a plain `cargo test`, which runs only the
//! unit tests.

mod backup;
mod errors;
mod etcd;
mod etcd_restore;
mod hooks;
mod image;
mod restore;
mod s3;
mod seeds;
mod server;
mod support;
mod verify;
