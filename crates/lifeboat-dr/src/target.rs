//! One cluster of a plan, reached: its API server (from the plan's kubeconfig and
//! context), whether lifeboat is installed there, and the storage locations it reads —
//! a URL opened here, a name through the lifeboat server's BackupStorageLocation in the
//! cluster when it has one, else through the caller's (the CLI's locations file).

use std::path::PathBuf;
use std::time::Duration;

use lifeboat_engine::cluster::{Cluster, ClusterOptions};
use lifeboat_engine::error::chain;
use lifeboat_engine::storage::{Store, location_from_url};
use lifeboat_types::api::velero::BackupStorageLocation;
use lifeboat_types::dr::plan::PlanCluster;

/// How long one question to a cluster may take before it counts as unreachable.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// Resolves a location name the cluster's server does not hold (the CLI's locations file).
pub type LocalLocations<'a> = &'a (dyn Fn(&str) -> Result<BackupStorageLocation, String> + Sync);

/// A plan's cluster as reached.
pub struct Target {
    /// The plan's name for it.
    pub name: String,
    /// Its API server, or why it cannot be reached.
    pub cluster: Result<Cluster, String>,
    /// Whether lifeboat's CRDs are served there (None: not known).
    pub installed: Option<bool>,
    /// Its locations, in the plan's order: opened, or why not.
    pub stores: Vec<(String, Result<Store, String>)>,
    /// Credentials of locations opened through the cluster (0600), removed on drop.
    _secrets: Option<tempfile::TempDir>,
}

/// Whether a plan's location is a URL or path (opened here) rather than a name.
pub fn is_url(s: &str) -> bool {
    s.contains("://") || s.starts_with('/')
}

/// Reaches cluster `c`: connects, asks whether lifeboat is installed (which also proves
/// the API server answers), and opens each location.
pub async fn reach(c: &PlanCluster, local: LocalLocations<'_>) -> Target {
    let opts = ClusterOptions {
        kubeconfig: c.kubeconfig.as_ref().map(PathBuf::from),
        context: c.context.clone(),
    };
    let connected = match Cluster::connect(&opts).await {
        Ok(cluster) => {
            match tokio::time::timeout(
                ASK_TIMEOUT,
                lifeboat_engine::objects::lifeboat_installed(&cluster),
            )
            .await
            {
                Ok(Ok(installed)) => Ok((cluster, installed)),
                Ok(Err(e)) => Err(chain(&e)),
                Err(_) => Err(format!(
                    "the API server did not answer within {}s",
                    ASK_TIMEOUT.as_secs()
                )),
            }
        }
        Err(e) => Err(chain(&e)),
    };
    let secrets = tempfile::tempdir().ok();
    let mut stores = Vec::new();
    for l in &c.locations {
        let opened = if is_url(l) {
            location_from_url(l)
                .and_then(|bsl| Store::open(&bsl))
                .map_err(|e| chain(&e))
        } else {
            match (&connected, &secrets) {
                (Ok((cluster, true)), Some(dir)) => lifeboat_engine::location_object::open(
                    cluster.client(),
                    &c.namespace,
                    Some(l),
                    dir.path(),
                )
                .await
                .map(|(store, _)| store)
                .map_err(|e| chain(&e)),
                _ => local(l).and_then(|bsl| Store::open(&bsl).map_err(|e| chain(&e))),
            }
        };
        stores.push((l.clone(), opened));
    }
    let (cluster, installed) = match connected {
        Ok((cluster, installed)) => (Ok(cluster), Some(installed)),
        Err(e) => (Err(e), None),
    };
    Target {
        name: c.name.clone(),
        cluster,
        installed,
        stores,
        _secrets: secrets,
    }
}

impl Target {
    /// Its first location that opened.
    pub fn first_store(&self) -> Option<&Store> {
        self.stores.iter().find_map(|(_, s)| s.as_ref().ok())
    }
}
