//! Errors for the terminal: the error and its causes on one line, plus a hint in the
//! CLI's own words (its flags, its commands, the dev cluster script). Library errors name
//! the object and a fix anyone can apply (a server user too); the CLI's advice lives here,
//! chosen by the error's type and kind, never by its text.

use lifeboat_engine::backup::BackupError;
use lifeboat_engine::catalog::CatalogError;
use lifeboat_engine::cluster::ClusterError;
use lifeboat_engine::objects::ObjectError;
use lifeboat_engine::restore::RestoreError;
use lifeboat_engine::storage::StorageError;

/// `e` for the terminal: its chain joined by `": "` (each cause once), then a line
/// `hint: ...` when one of the errors in the chain has CLI advice.
pub fn render(e: &anyhow::Error) -> String {
    let text = lifeboat_server::chain(e.as_ref());
    match e.chain().find_map(hint) {
        Some(h) => format!("{text}\nhint: {h}"),
        None => text,
    }
}

/// The CLI's advice for one error, if it has any.
fn hint(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = e.downcast_ref::<ClusterError>() {
        return match e {
            ClusterError::Kubeconfig { .. } => Some(
                "pass --kubeconfig FILE, set KUBECONFIG, or start the local dev cluster with scripts/dev-cluster.sh up".into(),
            ),
            ClusterError::Unreachable { .. } => Some(
                "check that the cluster is up and that --kubeconfig/--kubecontext point at it (the local dev cluster: scripts/dev-cluster.sh up)".into(),
            ),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<StorageError>() {
        return match e {
            StorageError::NoCredentials { .. } => Some(
                "pass --credential FILE (a Velero credentials file), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ),
            StorageError::ReadOnly { location } => Some(format!(
                "lifeboat location set {location} --access-mode ReadWrite allows writes"
            )),
            StorageError::MissingBucket { .. } => {
                Some("create the bucket, or correct the location's --bucket".into())
            }
            StorageError::Missing {
                setting: "bucket", ..
            } => Some("pass --bucket".into()),
            StorageError::Missing { setting, .. } => {
                Some(format!("pass --config {setting}=VALUE"))
            }
            _ => None,
        };
    }
    if let Some(CatalogError::NotFound { what, .. }) = e.downcast_ref::<CatalogError>() {
        return Some(format!(
            "`lifeboat {what} get` lists them; --storage-location names another location"
        ));
    }
    if let Some(BackupError::AlreadyExists { backup, .. }) = e.downcast_ref::<BackupError>() {
        return Some(format!("`lifeboat backup delete {backup}` deletes it"));
    }
    if let Some(ObjectError::NotInstalled { .. }) = e.downcast_ref::<ObjectError>() {
        return Some("run `lifeboat install` first".into());
    }
    if let Some(RestoreError::NoBackup) = e.downcast_ref::<RestoreError>() {
        return Some("pass --from-backup NAME".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> ClusterError {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        ClusterError::Unreachable {
            server: "https://127.0.0.1:1/".into(),
            source: kube::Error::Service(Box::new(io)),
        }
    }

    #[test]
    fn an_unreachable_server_is_named_once_with_its_cause_and_the_cli_hint() {
        let e = anyhow::Error::new(BackupError::Cluster {
            backup: "b1".into(),
            source: unreachable(),
        });
        assert_eq!(
            render(&e),
            "backup \"b1\": cannot reach the API server at https://127.0.0.1:1/: ServiceError: Connection refused\n\
             hint: check that the cluster is up and that --kubeconfig/--kubecontext point at it (the local dev cluster: scripts/dev-cluster.sh up)"
        );
    }

    #[test]
    fn a_missing_kubeconfig_names_the_file_the_cause_and_the_flags() {
        let e = anyhow::Error::new(ClusterError::Kubeconfig {
            path: Some("/nonexistent/kubeconfig".into()),
            source: Box::new(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "No such file or directory",
            )),
        });
        let text = render(&e);
        assert!(
            text.starts_with(
                "cannot load a kubeconfig from /nonexistent/kubeconfig: No such file or directory\nhint: pass --kubeconfig FILE"
            ),
            "{text}"
        );
    }

    #[test]
    fn context_added_by_the_binary_comes_first() {
        let e = anyhow::Error::new(CatalogError::NotFound {
            what: "backup",
            name: "nope".into(),
            location: "default".into(),
        })
        .context("cannot describe backup nope");
        assert_eq!(
            render(&e),
            "cannot describe backup nope: backup \"nope\" not found in storage location \"default\"\n\
             hint: `lifeboat backup get` lists them; --storage-location names another location"
        );
    }

    #[test]
    fn storage_hints() {
        for (e, hint) in [
            (
                StorageError::NoCredentials {
                    location: "s3".into(),
                },
                "pass --credential FILE",
            ),
            (
                StorageError::ReadOnly {
                    location: "ro".into(),
                },
                "lifeboat location set ro --access-mode ReadWrite",
            ),
            (
                StorageError::Missing {
                    location: "x".into(),
                    setting: "bucket",
                },
                "pass --bucket",
            ),
            (
                StorageError::Missing {
                    location: "x".into(),
                    setting: "region",
                },
                "pass --config region=VALUE",
            ),
        ] {
            let text = render(&anyhow::Error::new(e));
            assert!(text.contains(&format!("\nhint: {hint}")), "{text}");
        }
    }

    #[test]
    fn library_messages_carry_no_cli_flags() {
        for e in [
            anyhow::Error::new(StorageError::NoCredentials {
                location: "s3".into(),
            }),
            anyhow::Error::new(StorageError::ReadOnly {
                location: "ro".into(),
            }),
            anyhow::Error::new(unreachable()),
            anyhow::Error::new(RestoreError::NoBackup),
        ] {
            let message = e.to_string();
            assert!(!message.contains("--"), "{message}");
            assert!(!message.contains("scripts/"), "{message}");
        }
    }
}
