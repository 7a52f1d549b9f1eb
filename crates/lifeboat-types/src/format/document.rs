//! Reading velero.io/v1 YAML (or JSON) documents, as `lifeboat apply -f` does.

use serde::Deserialize;

use crate::api::names::{NameError, validate_name};
use crate::api::velero::{
    API_VERSION, Backup, BackupStorageLocation, Restore, Schedule, VolumeSnapshotLocation,
};

/// One velero.io/v1 document.
#[derive(Debug, Clone, PartialEq)]
pub enum VeleroDocument {
    /// A Backup: run it.
    Backup(Box<Backup>),
    /// A storage location: save it.
    BackupStorageLocation(Box<BackupStorageLocation>),
    /// A Restore: run it.
    Restore(Box<Restore>),
    /// A Schedule (run by `lifeboat server`).
    Schedule(Box<Schedule>),
    /// A volume snapshot location: save it (kept and shown; no volume is snapshotted yet).
    VolumeSnapshotLocation(Box<VolumeSnapshotLocation>),
}

/// Why a document was rejected. Each message says which document and what to change.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not YAML.
    #[error("document {index}: not valid YAML")]
    Yaml {
        /// 1-based position of the document in the stream.
        index: usize,
        /// The parser's error (with line and column).
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// The document is not a velero.io/v1 object lifeboat knows.
    #[error(
        "document {index} ({kind} {name:?}): apiVersion {api_version:?} is not supported; lifeboat reads velero.io/v1 Backup, Restore, Schedule, BackupStorageLocation and VolumeSnapshotLocation"
    )]
    Unsupported {
        /// 1-based position.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// A field is unknown, of the wrong type, or missing.
    #[error("document {index} ({kind} {name:?})")]
    Field {
        /// 1-based position.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// What serde said: the field and what was expected.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// The object's name is invalid.
    #[error("document {index}")]
    Name {
        /// 1-based position.
        index: usize,
        /// The name error.
        #[source]
        source: NameError,
    },
}

/// Parses every document in `text`. Empty documents (a lone `---`) are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<VeleroDocument>, DocumentError> {
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = serde_yaml_ng::Value::deserialize(de)
            .map_err(|source| DocumentError::Yaml { index, source })?;
        if value.is_null() {
            continue;
        }
        let field = |v: &serde_yaml_ng::Value, k: &str| {
            v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned()
        };
        let kind = field(&value, "kind");
        let api_version = field(&value, "apiVersion");
        let name = value
            .get("metadata")
            .map(|m| field(m, "name"))
            .unwrap_or_default();
        let typed_err = |source| DocumentError::Field {
            index,
            kind: kind.clone(),
            name: name.clone(),
            source,
        };
        let doc = match (api_version.as_str(), kind.as_str()) {
            (API_VERSION, "Backup") => VeleroDocument::Backup(Box::new(
                serde_yaml_ng::from_value(value.clone()).map_err(typed_err)?,
            )),
            (API_VERSION, "BackupStorageLocation") => VeleroDocument::BackupStorageLocation(
                Box::new(serde_yaml_ng::from_value(value.clone()).map_err(typed_err)?),
            ),
            (API_VERSION, "Restore") => VeleroDocument::Restore(Box::new(
                serde_yaml_ng::from_value(value.clone()).map_err(typed_err)?,
            )),
            (API_VERSION, "Schedule") => VeleroDocument::Schedule(Box::new(
                serde_yaml_ng::from_value(value.clone()).map_err(typed_err)?,
            )),
            (API_VERSION, "VolumeSnapshotLocation") => VeleroDocument::VolumeSnapshotLocation(
                Box::new(serde_yaml_ng::from_value(value.clone()).map_err(typed_err)?),
            ),
            _ => {
                return Err(DocumentError::Unsupported {
                    index,
                    kind: if kind.is_empty() {
                        "<no kind>".into()
                    } else {
                        kind
                    },
                    name,
                    api_version,
                });
            }
        };
        let what = match &doc {
            VeleroDocument::Backup(_) => "backup",
            VeleroDocument::BackupStorageLocation(_) => "backup storage location",
            VeleroDocument::Restore(_) => "restore",
            VeleroDocument::Schedule(_) => "schedule",
            VeleroDocument::VolumeSnapshotLocation(_) => "volume snapshot location",
        };
        validate_name(what, &name).map_err(|source| DocumentError::Name { index, source })?;
        out.push(doc);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_backup_with_hooks() {
        let docs = parse_documents(
            r#"
apiVersion: velero.io/v1
kind: Backup
metadata:
  name: mysql-backup-with-hooks
  namespace: velero
spec:
  includedNamespaces: [production]
  labelSelector:
    matchLabels: {app: mysql}
  ttl: 168h
  hooks:
    resources:
      - name: h
        pre:
          - exec:
              container: mysql
              command: [/bin/sh, -c, "true"]
              onError: Fail
              timeout: 60s
"#,
        )
        .unwrap();
        let [VeleroDocument::Backup(b)] = docs.as_slice() else {
            panic!("{docs:?}")
        };
        assert_eq!(b.metadata.name, "mysql-backup-with-hooks");
        assert_eq!(b.spec.ttl.unwrap().to_string(), "168h0m0s");
        assert_eq!(b.spec.hooks.resources[0].pre[0].exec.command.len(), 3);
    }

    /// The error and its causes, as the CLI shows it (`lifeboat_engine::error::chain`).
    fn shown(e: &DocumentError) -> String {
        let mut out = e.to_string();
        let mut cur = std::error::Error::source(e);
        while let Some(c) = cur {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cur = c.source();
        }
        out
    }

    /// Each error says its cause once: the message leaves it to the chain (it was said
    /// twice in `lifeboat`'s output, "document 1 (...): X; fix or remove it: document 1
    /// (...): X").
    #[rstest::rstest]
    #[case::yaml("apiVersion: velero.io/v1\nkind: Backup\n  bad: [")]
    #[case::field(
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nspec:\n  includeNamespaces: [a]\n"
    )]
    #[case::name("apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: Bad_Name}\n")]
    fn regression_a_cause_is_shown_once(#[case] text: &str) {
        let err = parse_documents(text).unwrap_err();
        let cause = std::error::Error::source(&err)
            .expect("a cause")
            .to_string();
        assert_eq!(
            shown(&err).matches(cause.as_str()).count(),
            1,
            "{}",
            shown(&err)
        );
    }

    #[test]
    fn unknown_field_names_the_object_and_field() {
        let err = parse_documents(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nspec:\n  includeNamespaces: [a]\n",
        )
        .unwrap_err();
        let err = shown(&err);
        assert!(err.contains("Backup \"b1\""), "{err}");
        assert!(err.contains("includeNamespaces"), "{err}");
    }

    /// Issue 13: a guide's file holds a BackupStorageLocation and a VolumeSnapshotLocation;
    /// the VSL made the whole file refused.
    #[test]
    fn a_storage_and_a_snapshot_location_in_one_file() {
        let docs = parse_documents(
            r#"
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
spec:
  provider: alibabacloud
  objectStorage: {bucket: velero-backup-bucket, prefix: cluster-prod}
  config: {region: cn-hangzhou}
---
apiVersion: velero.io/v1
kind: VolumeSnapshotLocation
metadata: {name: default, namespace: velero}
spec:
  provider: alibabacloud
  config: {region: cn-hangzhou}
"#,
        )
        .unwrap();
        let [
            VeleroDocument::BackupStorageLocation(b),
            VeleroDocument::VolumeSnapshotLocation(v),
        ] = docs.as_slice()
        else {
            panic!("{docs:?}")
        };
        assert_eq!(b.spec.object_storage.prefix, "cluster-prod");
        assert_eq!(v.metadata.name, "default");
        assert_eq!(v.spec.provider, "alibabacloud");
        assert_eq!(v.spec.config["region"], "cn-hangzhou");
    }

    #[rstest::rstest]
    #[case::in_spec("spec:\n  provider: aws\n  regoin: x\n", "regoin")]
    #[case::in_credential(
        "spec:\n  provider: aws\n  credential: {name: s, key: k, file: f}\n",
        "file"
    )]
    #[case::top_level("spec: {provider: aws}\nspecs: {}\n", "specs")]
    #[case::no_provider("spec: {config: {region: x}}\n", "provider")]
    fn a_snapshot_location_with_an_unknown_field_names_it(#[case] body: &str, #[case] field: &str) {
        let err = parse_documents(&format!(
            "apiVersion: velero.io/v1\nkind: VolumeSnapshotLocation\nmetadata: {{name: vsl1}}\n{body}"
        ))
        .unwrap_err();
        assert!(matches!(err, DocumentError::Field { .. }), "{err}");
        let err = shown(&err);
        assert!(err.contains("VolumeSnapshotLocation \"vsl1\""), "{err}");
        assert!(err.contains(&format!("`{field}`")), "{err}");
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        let err = parse_documents("apiVersion: velero.io/v1\nkind: Backup\n  bad: [").unwrap_err();
        assert!(matches!(err, DocumentError::Yaml { index: 1, .. }), "{err}");
    }

    #[test]
    fn other_kinds_are_refused() {
        let err = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ConfigMap"), "{err}");
    }

    #[test]
    fn bad_name_is_refused() {
        let err = shown(
            &parse_documents(
                "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: Bad_Name}\n",
            )
            .unwrap_err(),
        );
        assert!(err.contains("Bad_Name"), "{err}");
    }
}

/// Property tests of the document reader (issue 11, item 4: no panic on any input).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_never_panics(t in "\\PC{0,200}") {
            let _ = parse_documents(&t);
        }

        #[test]
        fn document_like_text_never_panics(
            kind in "(Backup|Restore|Schedule|BackupStorageLocation|VolumeSnapshotLocation|Other)",
            body in "[a-zA-Z:{}\\[\\] ,\\n-]{0,120}",
        ) {
            let _ = parse_documents(&format!("apiVersion: velero.io/v1\nkind: {kind}\nmetadata: {{name: x}}\n{body}"));
        }
    }
}
