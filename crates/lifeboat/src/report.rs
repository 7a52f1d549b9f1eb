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
use lifeboat_etcd::receive::ReceiveError;
use lifeboat_etcd::restore::{RestoreError as EtcdRestoreError, Setting};
use lifeboat_etcd::save::{SaveError, TlsFile, TlsProblem};
use lifeboat_etcd::snapshot::SnapshotError;
use lifeboat_types::rules::etcd_snapshots::PickError;

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
    if let Some(e) = e.downcast_ref::<SaveError>() {
        return save_hint(e).map(str::to_owned);
    }
    if let Some(EtcdRestoreError::Config(m)) = e.downcast_ref::<EtcdRestoreError>() {
        return Some(
            match m.setting {
                Setting::Name => "--name must be one of the member names in --initial-cluster",
                Setting::InitialCluster => {
                    "--initial-cluster lists every member as NAME=URL[,NAME=URL...]"
                }
                Setting::InitialAdvertisePeerUrls => {
                    "--initial-advertise-peer-urls must be this member's URLs in --initial-cluster"
                }
            }
            .into(),
        );
    }
    if let Some(e) = e.downcast_ref::<PickError>() {
        return Some(match e {
            PickError::NotFound { .. } => "`lifeboat etcd snapshot list` lists the stored snapshots; --storage-location names another location".into(),
            PickError::SeveralClusters { .. } => "pass --cluster-name (one of them)".into(),
        });
    }
    if let Some(e) = e.downcast_ref::<ReceiveError>() {
        return match e {
            ReceiveError::Exists { .. } => Some("pass --force to replace it, or -o another file".into()),
            ReceiveError::Snapshot(SnapshotError::NoTrailer(_)) => Some(
                "a raw db file (a copied member/snap/db) has no trailer: `etcd snapshot restore --skip-hash-check` accepts it; otherwise use another snapshot (`lifeboat etcd snapshot list`)".into(),
            ),
            ReceiveError::Snapshot(_) | ReceiveError::Gzip(_) => Some(
                "the stored copy is damaged: use another snapshot (`lifeboat etcd snapshot list`), or take a new one with `lifeboat etcd snapshot save`".into(),
            ),
            ReceiveError::Write { .. } => Some(
                "free space there (the snapshot needs its decompressed size), or choose another directory (-o, --data-dir)".into(),
            ),
        };
    }
    if let Some(SnapshotError::NoTrailer(_)) = e.downcast_ref::<SnapshotError>() {
        return Some("--skip-hash-check accepts a raw db file (a copied member/snap/db)".into());
    }
    None
}

/// `etcd snapshot save`'s advice in its flags.
fn save_hint(e: &SaveError) -> Option<&'static str> {
    Some(match e {
        SaveError::NoEndpoint => "pass --endpoints https://HOST:2379",
        SaveError::TlsFile { what, .. } => match what {
            TlsFile::CaBundle => "--cacert must be a readable PEM bundle",
            TlsFile::ClientCert | TlsFile::ClientKey => {
                "--cert and --key must be a readable PEM certificate and its key"
            }
            TlsFile::ClientPair => "pass both --cert and --key (a certificate and its key)",
        },
        SaveError::Unreachable { tls: Some(t), .. } => match t {
            TlsProblem::UnknownIssuer => {
                "the server certificate is not signed by --cacert: pass the CA that signed it (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)"
            }
            TlsProblem::ServerCertExpired => {
                "renew etcd's server certificate (kubeadm: kubeadm certs renew etcd-server)"
            }
            TlsProblem::ServerCertNotYetValid => "check the clocks of this machine and etcd's",
            TlsProblem::ClientCertRefused => {
                "pass with --cert/--key a valid client certificate signed by etcd's CA (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.crt and .key)"
            }
        },
        SaveError::Unreachable { tls: None, .. } => {
            "check --endpoints (etcd's client URL, https://HOST:2379), that etcd is up, and for https that --cacert and --cert/--key are the ones etcd uses"
        }
        _ => return None,
    })
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
            anyhow::Error::new(SaveError::NoEndpoint),
            anyhow::Error::new(client_pair()),
            anyhow::Error::new(SnapshotError::NoTrailer(5)),
            anyhow::Error::new(bad_membership()),
        ] {
            let message = e.to_string();
            assert!(!message.contains("--"), "{message}");
            assert!(!message.contains("scripts/"), "{message}");
        }
    }

    fn client_pair() -> SaveError {
        SaveError::TlsFile {
            what: TlsFile::ClientPair,
            path: "/pki/client.crt".into(),
            reason: "client TLS needs both the certificate and its key".into(),
        }
    }

    fn bad_membership() -> EtcdRestoreError {
        let mut cfg = lifeboat_etcd::restore::RestoreConfig::new("s.db".into());
        cfg.name = "nope".into();
        lifeboat_etcd::restore::membership(&cfg).unwrap_err().into()
    }

    #[test]
    fn etcd_errors_get_their_flags_as_hints() {
        for (e, want) in [
            (
                anyhow::Error::new(SaveError::NoEndpoint),
                "no etcd endpoint was given\nhint: pass --endpoints https://HOST:2379",
            ),
            (
                anyhow::Error::new(client_pair()),
                "cannot use the client certificate and key /pki/client.crt: client TLS needs both the certificate and its key\n\
                 hint: pass both --cert and --key (a certificate and its key)",
            ),
            (
                anyhow::Error::new(bad_membership()),
                "couldn't find local name \"nope\" in the initial cluster configuration; the member name must be one of: default\n\
                 hint: --name must be one of the member names in --initial-cluster",
            ),
            (
                anyhow::Error::new(SnapshotError::NoTrailer(5)),
                "snapshot has no sha256 trailer (5 bytes is not a whole number of pages plus 32); it was truncated, or it is a raw db file (which is accepted only when the hash check is skipped)\n\
                 hint: --skip-hash-check accepts a raw db file (a copied member/snap/db)",
            ),
            (
                anyhow::Error::new(PickError::SeveralClusters {
                    name: None,
                    clusters: vec!["a".into(), "b".into()],
                })
                .context("storage location \"s3\""),
                "storage location \"s3\": etcd snapshots of several clusters are stored in the location (a, b); say which cluster\n\
                 hint: pass --cluster-name (one of them)",
            ),
            (
                anyhow::Error::new(ReceiveError::Exists {
                    path: "s.db".into(),
                }),
                "s.db already exists; it was left as it was\n\
                 hint: pass --force to replace it, or -o another file",
            ),
            (
                anyhow::Error::new(ReceiveError::Gzip("corrupt deflate stream".into()))
                    .context("cannot download etcd snapshot metadata/etcd/c/s.db.gz from storage location \"s3\"; nothing was written"),
                "cannot download etcd snapshot metadata/etcd/c/s.db.gz from storage location \"s3\"; nothing was written: the gzip stream is damaged or truncated: corrupt deflate stream\n\
                 hint: the stored copy is damaged: use another snapshot (`lifeboat etcd snapshot list`), or take a new one with `lifeboat etcd snapshot save`",
            ),
        ] {
            assert_eq!(render(&e), want);
        }
    }
}
