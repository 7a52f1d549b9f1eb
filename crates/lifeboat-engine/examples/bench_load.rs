//! Loads the benchmark's objects: COUNT ConfigMaps of about SIZE bytes each in NAMESPACE,
//! named cm-000000..., created with bounded concurrency. Existing ones are kept, so the
//! load can grow step by step (10k, then 100k). With SPREAD > 1 they are spread evenly
//! over SPREAD namespaces NAMESPACE-00, NAMESPACE-01, ... (object i in namespace i mod
//! SPREAD).
//!
//! Usage: bench_load KUBECONFIG NAMESPACE COUNT [SIZE] [configmaps|secrets] [SPREAD]

use futures::{StreamExt, stream};
use lifeboat_engine::cluster::{Cluster, ClusterOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let kubeconfig = args.get(1).ok_or(
        "usage: bench_load KUBECONFIG NAMESPACE COUNT [SIZE] [configmaps|secrets] [SPREAD]",
    )?;
    let ns = args.get(2).ok_or("missing NAMESPACE")?.clone();
    let count: usize = args.get(3).ok_or("missing COUNT")?.parse()?;
    let size: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(3072);
    let kind = args
        .get(5)
        .map(String::as_str)
        .unwrap_or("configmaps")
        .to_owned();
    if kind != "configmaps" && kind != "secrets" {
        return Err(format!("unknown kind {kind:?}: configmaps or secrets").into());
    }
    let spread: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let namespace_of = |i: usize| -> String {
        if spread > 1 {
            let width = (spread - 1).to_string().len().max(2);
            format!("{ns}-{:0width$}", i % spread)
        } else {
            ns.clone()
        }
    };
    let cluster = Cluster::connect(&ClusterOptions {
        kubeconfig: Some(kubeconfig.into()),
        context: None,
    })
    .await?;
    let client = cluster.client().clone();
    let post = |path: String, body: serde_json::Value| {
        let client = client.clone();
        async move {
            let req = http::Request::post(path)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            match client.request_text(req).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    for i in 0..spread.max(1) {
        post(
            "/api/v1/namespaces".into(),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace_of(i)}}),
        )
        .await?;
    }
    // Pseudo-random payload so that gzip does not make the archive trivially small.
    let payload = |i: usize| -> String {
        let mut x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    };
    let started = std::time::Instant::now();
    let errors = stream::iter(0..count)
        .map(|i| {
            let (k, prefix, field) = if kind == "secrets" {
                ("Secret", "secret", "stringData")
            } else {
                ("ConfigMap", "cm", "data")
            };
            let body = serde_json::json!({
                "apiVersion": "v1", "kind": k,
                "metadata": {"name": format!("{prefix}-{i:06}"), "labels": {"bench": "lifeboat", "shard": (i % 10).to_string()}},
                field: {"payload": payload(i)}
            });
            post(format!("/api/v1/namespaces/{}/{kind}", namespace_of(i)), body)
        })
        .buffer_unordered(48)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    eprintln!(
        "loaded {count} {kind} into {} in {:.1}s ({errors} errors)",
        if spread > 1 {
            format!("{spread} namespaces {ns}-*")
        } else {
            ns.clone()
        },
        started.elapsed().as_secs_f64()
    );
    if errors > 0 {
        return Err(format!("{errors} creates failed").into());
    }
    Ok(())
}
