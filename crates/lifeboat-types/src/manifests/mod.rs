//! Kubernetes objects lifeboat generates: the install manifests and RBAC, the etcd
//! snapshot CronJob.

pub mod etcd_schedule;
pub mod install;
pub mod rbac;
