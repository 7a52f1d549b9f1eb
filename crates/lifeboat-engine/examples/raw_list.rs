//! The benchmark's baseline: a minimal paginated LIST of one resource in one namespace
//! (or, with NAMESPACE `*`, of the whole cluster), doing nothing with the items but
//! finding the continue token. This is the physical limit of a resource backup: the API
//! server's own LIST.
//!
//! Usage: raw_list KUBECONFIG NAMESPACE|'*' [RESOURCE] [PAGE]

use lifeboat_engine::cluster::{Cluster, ClusterOptions, split_list};
use lifeboat_types::plan::backup::ApiResource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let kubeconfig = args
        .get(1)
        .ok_or("usage: raw_list KUBECONFIG NAMESPACE|'*' [RESOURCE] [PAGE]")?;
    let ns = args.get(2).ok_or("missing NAMESPACE")?;
    let ns = (ns != "*").then_some(ns.as_str());
    let plural = args.get(3).cloned().unwrap_or_else(|| "configmaps".into());
    let page: u32 = args.get(4).map(|p| p.parse()).transpose()?.unwrap_or(500);
    let cluster = Cluster::connect(&ClusterOptions {
        kubeconfig: Some(kubeconfig.into()),
        context: None,
    })
    .await?;
    let r = ApiResource {
        group: String::new(),
        version: "v1".into(),
        plural,
        singular: String::new(),
        kind: String::new(),
        namespaced: true,
        short_names: vec![],
        verbs: vec![],
    };
    let (mut items, mut bytes, mut cont) = (0usize, 0usize, None::<String>);
    loop {
        let body = cluster
            .list_page(&r, ns, None, cont.as_deref(), page)
            .await?;
        bytes += body.len();
        let (raws, next) = split_list(&body)?;
        items += raws.len();
        match next {
            Some(n) => cont = Some(n),
            None => break,
        }
    }
    println!("{items} items, {bytes} bytes");
    Ok(())
}
