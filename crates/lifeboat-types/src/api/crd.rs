//! The server's custom resources: group `lifeboat.dev`, version `v1alpha1`, with
//! Velero's kinds, field names and phases. Their Rust types are the velero.io/v1 specs
//! and statuses themselves (see [`crate::api::velero`]), so a velero.io/v1 document and a
//! lifeboat.dev one differ only in `apiVersion`; the CRDs are generated from those types
//! by kube's `CustomResource` derive.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use crate::api::velero::{
    BackupResource, BackupStorageLocationResource, DeleteBackupRequestResource, RestoreResource,
    ScheduleResource, VolumeSnapshotLocationResource,
};

/// The API group.
pub const GROUP: &str = "lifeboat.dev";
/// The version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every lifeboat resource.
pub const API_VERSION: &str = "lifeboat.dev/v1alpha1";

/// Every CRD the server needs, in the order they are installed.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        BackupStorageLocationResource::crd(),
        BackupResource::crd(),
        RestoreResource::crd(),
        ScheduleResource::crd(),
        DeleteBackupRequestResource::crd(),
        VolumeSnapshotLocationResource::crd(),
        crate::api::pod_volume::PodVolumeBackupResource::crd(),
        crate::api::pod_volume::PodVolumeRestoreResource::crd(),
        crate::dr::plan::DrPlanResource::crd(),
    ]
}

/// A lifeboat.dev object as its velero.io/v1 twin (the same fields; `apiVersion` set to
/// velero.io/v1, managedFields dropped): how the server runs an object and how the CLI
/// shows one.
pub fn to_velero<T: serde::de::DeserializeOwned>(
    obj: &impl serde::Serialize,
) -> Result<T, serde_json::Error> {
    let mut v = serde_json::to_value(obj)?;
    v["apiVersion"] = serde_json::Value::String(crate::api::velero::API_VERSION.into());
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    serde_json::from_value(v)
}

/// Schema of a free-form object (restore hooks, uploader options): kept as written.
pub fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifeboat_object_reads_as_its_velero_twin() {
        use crate::api::velero::{Backup, BackupSpec};
        let mut obj = BackupResource::new(
            "b1",
            BackupSpec {
                included_namespaces: vec!["shop".into()],
                ..Default::default()
            },
        );
        obj.metadata.namespace = Some("velero".into());
        obj.metadata.managed_fields = Some(vec![Default::default()]);
        let b: Backup = to_velero(&obj).unwrap();
        assert_eq!(b.api_version, "velero.io/v1");
        assert_eq!(b.kind, "Backup");
        assert_eq!(b.metadata.name, "b1");
        assert_eq!(b.metadata.namespace.as_deref(), Some("velero"));
        assert_eq!(b.spec.included_namespaces, ["shop"]);
        assert!(!serde_json::to_string(&b).unwrap().contains("managedFields"));
    }

    #[test]
    fn crds_are_structural_enough_for_the_api_server() {
        for crd in all() {
            let v = serde_json::to_value(&crd).unwrap();
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            assert!(name.ends_with(".lifeboat.dev"), "{name}");
            let version = &v["spec"]["versions"][0];
            assert_eq!(version["name"], "v1alpha1");
            assert_eq!(
                version["subresources"]["status"],
                serde_json::json!({}),
                "{name}"
            );
            // A structural schema has no $ref anywhere.
            let text = serde_json::to_string(&v).unwrap();
            assert!(!text.contains("$ref"), "{name} has a $ref");
        }
    }
}
