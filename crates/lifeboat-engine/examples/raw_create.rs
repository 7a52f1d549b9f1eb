//! The restore benchmark's baseline: creates the ConfigMaps and Secrets of an extracted
//! backup (`resources/<r>/v1-preferredversion/namespaces/<ns>/*.json`) into namespaces
//! `<ns>-<SUFFIX>`, with the same concurrency as lifeboat, doing only the minimum (drop the
//! server-set metadata, POST). This is the limit of a parallel restore.
//!
//! Usage: raw_create KUBECONFIG EXTRACTED_DIR SUFFIX CONCURRENCY

use futures::{StreamExt, stream};
use lifeboat_engine::cluster::{Cluster, ClusterOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: raw_create KUBECONFIG EXTRACTED_DIR SUFFIX CONCURRENCY";
    let kubeconfig = args.get(1).ok_or(usage)?;
    let dir = std::path::PathBuf::from(args.get(2).ok_or(usage)?);
    let suffix = args.get(3).ok_or(usage)?.clone();
    let concurrency: usize = args.get(4).ok_or(usage)?.parse()?;
    let cluster = Cluster::connect(&ClusterOptions {
        kubeconfig: Some(kubeconfig.into()),
        context: None,
    })
    .await?;
    let client = cluster.client().clone();
    let mut work = Vec::new();
    let mut namespaces = std::collections::BTreeSet::new();
    for res in ["configmaps", "secrets"] {
        let base = dir.join(format!("resources/{res}/v1-preferredversion/namespaces"));
        let Ok(nss) = std::fs::read_dir(&base) else {
            continue;
        };
        for ns in nss.flatten() {
            let target = format!("{}-{suffix}", ns.file_name().to_string_lossy());
            namespaces.insert(target.clone());
            for f in std::fs::read_dir(ns.path())?.flatten() {
                work.push((res, target.clone(), f.path()));
            }
        }
    }
    let post = |path: String, body: Vec<u8>| {
        let client = client.clone();
        async move {
            let req = http::Request::post(path)
                .header("content-type", "application/json")
                .body(body)
                .unwrap();
            match client.request_text(req).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    for ns in &namespaces {
        let body =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        post("/api/v1/namespaces".into(), serde_json::to_vec(&body)?).await?;
    }
    let errors = stream::iter(work)
        .map(|(res, ns, path)| {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            if let Some(m) = v["metadata"].as_object_mut() {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                    "selfLink",
                ] {
                    m.remove(k);
                }
                m.insert("namespace".into(), serde_json::Value::String(ns.clone()));
            }
            post(
                format!("/api/v1/namespaces/{ns}/{res}"),
                serde_json::to_vec(&v).unwrap(),
            )
        })
        .buffer_unordered(concurrency.max(1))
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    if errors > 0 {
        return Err(format!("{errors} creates failed").into());
    }
    Ok(())
}
