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

/// The backups a cluster can read, and the one a failover or drill restores.
pub struct Backups {
    /// Every stored backup, with the location (plan name) it was read from and that
    /// location's store (a backup in two locations counts once, from the first).
    pub all: Vec<(String, Store, lifeboat_types::api::velero::Backup)>,
    /// Each location: None when read, else why not.
    pub locations: std::collections::BTreeMap<String, Option<String>>,
    /// The newest Completed backup whose contents hold objects of every protected
    /// namespace: its index in `all`, and how many objects of those namespaces it holds.
    pub usable: Option<(usize, usize)>,
    /// How many Completed backups cover every protected namespace
    /// (`types::dr::status::covering_count`).
    pub covering: usize,
    /// The usable backup's resource list: its keys (`group/version/Kind`) and the names
    /// of the CustomResourceDefinitions it holds.
    pub usable_types: (Vec<String>, Vec<String>),
}

impl Backups {
    /// The usable backup: location, store, record and objects of the protected namespaces.
    pub fn chosen(&self) -> Option<(&str, &Store, &lifeboat_types::api::velero::Backup, usize)> {
        self.usable.map(|(i, n)| {
            let (l, s, b) = &self.all[i];
            (l.as_str(), s, b, n)
        })
    }

    /// What each location said, for an error message.
    pub fn said(&self) -> String {
        self.locations
            .iter()
            .map(|(l, e)| match e {
                None => format!(
                    "{l}: {} backups",
                    self.all.iter().filter(|(x, _, _)| x == l).count()
                ),
                Some(e) => format!("{l}: {e}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Reads the backups of every location `t` reads and chooses the one to restore
/// (`types::dr::status::covering_newest_first`, then the first whose resource list holds
/// every protected namespace).
pub async fn backups(t: &Target, namespaces: &[String]) -> Backups {
    use lifeboat_types::dr::status::{
        covering_count, covering_newest_first, holds_every_namespace,
    };
    let mut all: Vec<(String, Store, lifeboat_types::api::velero::Backup)> = Vec::new();
    let mut locations = std::collections::BTreeMap::new();
    for (name, store) in &t.stores {
        let store = match store {
            Ok(s) => s,
            Err(e) => {
                locations.insert(name.clone(), Some(e.clone()));
                continue;
            }
        };
        match tokio::time::timeout(ASK_TIMEOUT, lifeboat_engine::catalog::list_backups(store)).await
        {
            Ok(Ok(list)) => {
                locations.insert(name.clone(), None);
                for b in list {
                    if !all
                        .iter()
                        .any(|(_, _, x)| x.metadata.name == b.metadata.name)
                    {
                        all.push((name.clone(), store.clone(), b));
                    }
                }
            }
            Ok(Err(e)) => {
                locations.insert(name.clone(), Some(chain(&e)));
            }
            Err(_) => {
                locations.insert(
                    name.clone(),
                    Some(format!("no answer within {}s", ASK_TIMEOUT.as_secs())),
                );
            }
        }
    }
    let records: Vec<lifeboat_types::api::velero::Backup> =
        all.iter().map(|(_, _, b)| b.clone()).collect();
    let mut usable = None;
    let mut usable_types = (Vec::new(), Vec::new());
    for candidate in covering_newest_first(&records, namespaces) {
        let Some(i) = all
            .iter()
            .position(|(_, _, b)| b.metadata.name == candidate.metadata.name)
        else {
            continue;
        };
        let (_, store, b) = &all[i];
        let Ok(list) = lifeboat_engine::catalog::resource_list(store, &b.metadata.name).await
        else {
            continue;
        };
        let ids = list.values().flatten().map(String::as_str);
        if holds_every_namespace(ids.clone(), namespaces) {
            let objects = ids
                .filter(|id| {
                    id.split_once('/')
                        .is_some_and(|(ns, _)| namespaces.iter().any(|p| p == ns))
                })
                .count();
            usable = Some((i, objects));
            let crds = list
                .iter()
                .filter(|(k, _)| k.ends_with("/CustomResourceDefinition"))
                .flat_map(|(_, names)| names.iter().cloned())
                .collect();
            usable_types = (list.keys().cloned().collect(), crds);
            break;
        }
    }
    Backups {
        covering: covering_count(&records, namespaces),
        all,
        locations,
        usable,
        usable_types,
    }
}
