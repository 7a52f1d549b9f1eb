//! Where things live: Velero's object-store layout and the paths inside a backup tarball.
//!
//! Invariant: every path lifeboat writes to a storage location comes from this module, so
//! that the layout stays the one Velero reads (`pkg/persistence/object_store_layout.go`,
//! `pkg/archive`).

/// The tarball format version lifeboat writes (and the newest it reads).
pub const FORMAT_VERSION: &str = "1.1.0";
/// The first entry of every tarball.
pub const VERSION_ENTRY: &str = "metadata/version";
/// The suffix Velero adds to an API version directory inside the tarball.
pub const PREFERRED_VERSION_SUFFIX: &str = "-preferredversion";

/// Top-level directories Velero accepts under a location's prefix.
pub const TOP_LEVEL_DIRS: &[&str] = &[
    "backups", "restores", "restic", "kopia", "metadata", "plugins",
];

/// The object-store paths of one backup, relative to the location's root (prefix included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPaths {
    dir: String,
    name: String,
}

/// Joins a location prefix and a relative path without doubled or leading slashes.
pub fn join_prefix(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    }
}

impl BackupPaths {
    /// Paths of backup `name` under `prefix` (which may be empty).
    pub fn new(prefix: &str, name: &str) -> Self {
        BackupPaths {
            dir: join_prefix(prefix, &format!("backups/{name}/")),
            name: name.to_owned(),
        }
    }

    /// `backups/<b>/`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn file(&self, suffix: &str) -> String {
        format!("{}{}{}", self.dir, self.name, suffix)
    }

    /// `velero-backup.json`: the Backup resource. Written last; its presence makes a
    /// backup visible.
    pub fn metadata(&self) -> String {
        format!("{}velero-backup.json", self.dir)
    }
    /// `<b>.tar.gz`: the resources.
    pub fn contents(&self) -> String {
        self.file(".tar.gz")
    }
    /// `<b>-logs.gz`.
    pub fn logs(&self) -> String {
        self.file("-logs.gz")
    }
    /// `<b>-podvolumebackups.json.gz`.
    pub fn pod_volume_backups(&self) -> String {
        self.file("-podvolumebackups.json.gz")
    }
    /// `<b>-volumesnapshots.json.gz`.
    pub fn volume_snapshots(&self) -> String {
        self.file("-volumesnapshots.json.gz")
    }
    /// `<b>-itemoperations.json.gz`.
    pub fn item_operations(&self) -> String {
        self.file("-itemoperations.json.gz")
    }
    /// `<b>-resource-list.json.gz`.
    pub fn resource_list(&self) -> String {
        self.file("-resource-list.json.gz")
    }
    /// `<b>-results.gz`.
    pub fn results(&self) -> String {
        self.file("-results.gz")
    }
    /// `<b>-volumeinfo.json.gz`.
    pub fn volume_info(&self) -> String {
        self.file("-volumeinfo.json.gz")
    }
    /// Legacy `<b>-csi-volumesnapshots.json.gz` (written up to Velero 1.16, still read).
    pub fn csi_volume_snapshots(&self) -> String {
        self.file("-csi-volumesnapshots.json.gz")
    }
    /// Legacy `<b>-csi-volumesnapshotcontents.json.gz`.
    pub fn csi_volume_snapshot_contents(&self) -> String {
        self.file("-csi-volumesnapshotcontents.json.gz")
    }
    /// Legacy `<b>-csi-volumesnapshotclasses.json.gz`.
    pub fn csi_volume_snapshot_classes(&self) -> String {
        self.file("-csi-volumesnapshotclasses.json.gz")
    }
}

/// The object-store paths of one restore's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePaths {
    dir: String,
    name: String,
}

impl RestorePaths {
    /// Paths of restore `name` under `prefix`.
    pub fn new(prefix: &str, name: &str) -> Self {
        RestorePaths {
            dir: join_prefix(prefix, &format!("restores/{name}/")),
            name: name.to_owned(),
        }
    }
    /// `restores/<r>/`.
    pub fn dir(&self) -> &str {
        &self.dir
    }
    /// `restore-<r>-logs.gz`.
    pub fn logs(&self) -> String {
        format!("{}restore-{}-logs.gz", self.dir, self.name)
    }
    /// `restore-<r>-results.gz`.
    pub fn results(&self) -> String {
        format!("{}restore-{}-results.gz", self.dir, self.name)
    }
    /// `restore-<r>-resource-list.json.gz`.
    pub fn resource_list(&self) -> String {
        format!("{}restore-{}-resource-list.json.gz", self.dir, self.name)
    }
    /// `restore-<r>-itemoperations.json.gz`.
    pub fn item_operations(&self) -> String {
        format!("{}restore-{}-itemoperations.json.gz", self.dir, self.name)
    }
    /// `<r>-volumeinfo.json.gz`.
    pub fn volume_info(&self) -> String {
        format!("{}{}-volumeinfo.json.gz", self.dir, self.name)
    }
    /// `velero-restore.json`: the Restore resource itself. Velero keeps it in the
    /// cluster; lifeboat's CLI mode stores it here, last, as `velero-backup.json` is.
    pub fn metadata(&self) -> String {
        format!("{}velero-restore.json", self.dir)
    }
}

/// `restores/` under `prefix`.
pub fn restores_dir(prefix: &str) -> String {
    join_prefix(prefix, "restores/")
}

/// `backups/` under `prefix`: the directory listed to find backups.
pub fn backups_dir(prefix: &str) -> String {
    join_prefix(prefix, "backups/")
}

/// `restic/<namespace>/` under `prefix`: the restic-format repository holding the volume
/// data of one namespace's pods (the layout of Velero's restic uploader).
pub fn restic_repo(prefix: &str, namespace: &str) -> String {
    join_prefix(prefix, &format!("restic/{namespace}/"))
}

/// Where a restic repository keeps one of its files, relative to the repository: `config`,
/// `data/<first two hex digits>/<id>` for packs, `<dir>/<id>` for keys, snapshots and
/// indexes (restic's design document).
pub fn restic_file(dir: &str, id_hex: &str) -> String {
    match dir {
        "config" => "config".to_owned(),
        "data" => format!("data/{}/{id_hex}", id_hex.get(..2).unwrap_or(id_hex)),
        _ => format!("{dir}/{id_hex}"),
    }
}

/// `metadata/etcd/` under `prefix`: where etcd snapshots are stored (a lifeboat
/// addition under Velero's `metadata/` top-level directory, which Velero ignores).
pub fn etcd_snapshots_dir(prefix: &str) -> String {
    join_prefix(prefix, "metadata/etcd/")
}

/// `metadata/etcd/<object>` under `prefix`: one stored etcd snapshot of the first layout,
/// whose path names no cluster (still listed, and pruned only when asked for by name).
pub fn etcd_snapshot(prefix: &str, object: &str) -> String {
    format!("{}{object}", etcd_snapshots_dir(prefix))
}

/// `metadata/etcd/<cluster>/` under `prefix`: the snapshots of one etcd cluster. Clusters
/// sharing a location keep their snapshots apart, so that a prune of one never counts or
/// deletes another's.
pub fn etcd_cluster_snapshots_dir(prefix: &str, cluster: &str) -> String {
    format!("{}{cluster}/", etcd_snapshots_dir(prefix))
}

/// `metadata/etcd/<cluster>/<object>` under `prefix`: one stored snapshot of `cluster`.
pub fn etcd_cluster_snapshot(prefix: &str, cluster: &str, object: &str) -> String {
    format!("{}{object}", etcd_cluster_snapshots_dir(prefix, cluster))
}

/// `metadata/dr/<plan>/<file>` under `prefix`: a DR run's report (a failover's or a
/// drill's, JSON and Markdown), kept beside the backups it restored (a lifeboat addition
/// under `metadata/`, which Velero ignores).
pub fn dr_report(prefix: &str, plan: &str, file: &str) -> String {
    join_prefix(prefix, &format!("metadata/dr/{plan}/{file}"))
}

/// The default object name of an etcd snapshot taken at `taken` (UTC):
/// `etcd-snapshot-<YYYYmmddHHMMSS>.db`.
pub fn etcd_snapshot_name(taken: chrono::DateTime<chrono::Utc>) -> String {
    format!("etcd-snapshot-{}.db", taken.format("%Y%m%d%H%M%S"))
}

/// How an etcd cluster is named in stored paths when no name is given: its cluster id as
/// etcd reports it (`etcdctl member list -w table` prints the same 16 hex digits).
pub fn etcd_cluster_id_name(cluster_id: u64) -> String {
    format!("{cluster_id:016x}")
}

/// `metadata/lifeboat-staging/` under `prefix`: where a local-directory location stages a
/// file while it is written, before it is renamed to its own name (never listed: Velero's
/// `metadata/` holds no backups, and lifeboat lists only `metadata/etcd/`).
pub fn staging_dir(prefix: &str) -> String {
    join_prefix(prefix, "metadata/lifeboat-staging/")
}

/// Where one item goes inside the tarball. `group_resource` is `pods`,
/// `deployments.apps`, ...; `version` the API version of the group (`v1`); `namespace`
/// `None` for cluster-scoped items. With `preferred` the path carries the
/// `<version>-preferredversion` directory.
pub fn item_path(
    group_resource: &str,
    version: Option<&str>,
    namespace: Option<&str>,
    name: &str,
) -> String {
    let mut p = String::with_capacity(64 + group_resource.len() + name.len());
    p.push_str("resources/");
    p.push_str(group_resource);
    p.push('/');
    if let Some(v) = version {
        p.push_str(v);
        p.push_str(PREFERRED_VERSION_SUFFIX);
        p.push('/');
    }
    match namespace {
        Some(ns) => {
            p.push_str("namespaces/");
            p.push_str(ns);
            p.push('/');
        }
        None => p.push_str("cluster/"),
    }
    p.push_str(name);
    p.push_str(".json");
    p
}

/// An item path inside a tarball, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPath<'a> {
    /// `deployments.apps`.
    pub group_resource: &'a str,
    /// The API version directory (without the suffix), when the path has one.
    pub version: Option<&'a str>,
    /// The namespace; `None` when cluster-scoped.
    pub namespace: Option<&'a str>,
    /// The object's name.
    pub name: &'a str,
}

/// Takes apart a tarball item path; `None` for anything that is not one (such as
/// `metadata/version`), or one that tries to escape with `..` or absolute parts.
pub fn parse_item_path(path: &str) -> Option<ItemPath<'_>> {
    let path = path.strip_prefix("./").unwrap_or(path);
    let rest = path.strip_prefix("resources/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    let (group_resource, rest) = parts.split_first()?;
    let (version, rest) = match rest.first() {
        Some(v) if v.ends_with(PREFERRED_VERSION_SUFFIX) => (
            Some(&v[..v.len() - PREFERRED_VERSION_SUFFIX.len()]),
            &rest[1..],
        ),
        _ => (None, rest),
    };
    let (namespace, file) = match rest {
        ["cluster", file] => (None, *file),
        ["namespaces", ns, file] => (Some(*ns), *file),
        _ => return None,
    };
    let name = file.strip_suffix(".json")?;
    if name.is_empty() {
        return None;
    }
    Some(ItemPath {
        group_resource,
        version,
        namespace,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "",
        "shop",
        "shop-failover-f1.json",
        "metadata/dr/shop/shop-failover-f1.json"
    )]
    #[case(
        "/team-a/",
        "shop",
        "shop-drill-d1.md",
        "team-a/metadata/dr/shop/shop-drill-d1.md"
    )]
    fn dr_reports_live_under_metadata_which_velero_ignores(
        #[case] prefix: &str,
        #[case] plan: &str,
        #[case] file: &str,
        #[case] path: &str,
    ) {
        assert_eq!(dr_report(prefix, plan, file), path);
    }

    #[test]
    fn backup_paths_match_velero() {
        let p = BackupPaths::new("", "nightly");
        insta::assert_debug_snapshot!([
            p.metadata(),
            p.contents(),
            p.logs(),
            p.pod_volume_backups(),
            p.volume_snapshots(),
            p.item_operations(),
            p.resource_list(),
            p.results(),
            p.volume_info(),
            p.csi_volume_snapshots(),
        ]);
        assert_eq!(
            BackupPaths::new("/team-a/", "b1").metadata(),
            "team-a/backups/b1/velero-backup.json"
        );
    }

    #[rstest]
    #[case::config("config", "00ff", "config")]
    #[case::pack_one_dir_down("data", "ab12cd", "data/ab/ab12cd")]
    #[case::snapshot("snapshots", "ab12cd", "snapshots/ab12cd")]
    #[case::index("index", "ab12cd", "index/ab12cd")]
    #[case::key("keys", "ab12cd", "keys/ab12cd")]
    fn restic_files_are_where_restic_keeps_them(
        #[case] dir: &str,
        #[case] id: &str,
        #[case] want: &str,
    ) {
        assert_eq!(restic_file(dir, id), want);
    }

    #[rstest]
    #[case::no_prefix("", "app", "restic/app/")]
    #[case::prefix("/team-a/", "app", "team-a/restic/app/")]
    fn a_namespaces_repository_is_velero_s_restic_directory(
        #[case] prefix: &str,
        #[case] ns: &str,
        #[case] want: &str,
    ) {
        assert_eq!(restic_repo(prefix, ns), want);
    }

    #[rstest]
    #[case::no_prefix("", "s.db", "metadata/etcd/", "metadata/etcd/s.db")]
    #[case::prefix(
        "/cluster-a/",
        "s.db",
        "cluster-a/metadata/etcd/",
        "cluster-a/metadata/etcd/s.db"
    )]
    fn etcd_snapshot_paths(
        #[case] prefix: &str,
        #[case] object: &str,
        #[case] dir: &str,
        #[case] file: &str,
    ) {
        assert_eq!(etcd_snapshots_dir(prefix), dir);
        assert_eq!(etcd_snapshot(prefix, object), file);
    }

    #[rstest]
    #[case::no_prefix("", "c1", "s.db", "metadata/etcd/c1/", "metadata/etcd/c1/s.db")]
    #[case::prefix(
        "/team-a/",
        "00000000cafe0001",
        "s.db",
        "team-a/metadata/etcd/00000000cafe0001/",
        "team-a/metadata/etcd/00000000cafe0001/s.db"
    )]
    fn etcd_snapshots_of_one_cluster_live_apart(
        #[case] prefix: &str,
        #[case] cluster: &str,
        #[case] object: &str,
        #[case] dir: &str,
        #[case] file: &str,
    ) {
        assert_eq!(etcd_cluster_snapshots_dir(prefix, cluster), dir);
        assert_eq!(etcd_cluster_snapshot(prefix, cluster, object), file);
        assert!(file.starts_with(&etcd_snapshots_dir(prefix)));
    }

    #[rstest]
    #[case::small_id(0x1, "0000000000000001")]
    #[case::large_id(0x0cdf_8181_94e4_7a88_u64, "0cdf818194e47a88")]
    #[case::max(u64::MAX, "ffffffffffffffff")]
    fn etcd_cluster_ids_are_named_as_etcd_prints_them(#[case] id: u64, #[case] name: &str) {
        assert_eq!(etcd_cluster_id_name(id), name);
    }

    #[test]
    fn etcd_snapshot_names_carry_the_utc_time() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-02T08:05:09Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(etcd_snapshot_name(t), "etcd-snapshot-20261202080509.db");
    }

    #[rstest]
    #[case::no_prefix("", "metadata/lifeboat-staging/")]
    #[case::prefix("/team-a/", "team-a/metadata/lifeboat-staging/")]
    fn staging_is_outside_every_listed_directory(#[case] prefix: &str, #[case] dir: &str) {
        assert_eq!(staging_dir(prefix), dir);
        for listed in [
            backups_dir(prefix),
            restores_dir(prefix),
            etcd_snapshots_dir(prefix),
        ] {
            assert!(!dir.starts_with(&listed), "{dir} under {listed}");
        }
    }

    #[rstest]
    #[case(
        "pods",
        Some("v1"),
        Some("ns1"),
        "p",
        "resources/pods/v1-preferredversion/namespaces/ns1/p.json"
    )]
    #[case("pods", None, Some("ns1"), "p", "resources/pods/namespaces/ns1/p.json")]
    #[case(
        "deployments.apps",
        None,
        Some("a"),
        "web",
        "resources/deployments.apps/namespaces/a/web.json"
    )]
    #[case(
        "namespaces",
        Some("v1"),
        None,
        "a",
        "resources/namespaces/v1-preferredversion/cluster/a.json"
    )]
    #[case(
        "clusterroles.rbac.authorization.k8s.io",
        None,
        None,
        "admin",
        "resources/clusterroles.rbac.authorization.k8s.io/cluster/admin.json"
    )]
    fn item_paths_round_trip(
        #[case] gr: &str,
        #[case] version: Option<&str>,
        #[case] ns: Option<&str>,
        #[case] name: &str,
        #[case] expected: &str,
    ) {
        let path = item_path(gr, version, ns, name);
        assert_eq!(path, expected);
        let parsed = parse_item_path(&path).unwrap();
        assert_eq!(
            parsed,
            ItemPath {
                group_resource: gr,
                version,
                namespace: ns,
                name
            }
        );
    }

    #[rstest]
    #[case("metadata/version")]
    #[case("resources/pods/namespaces/../../etc/passwd.json")]
    #[case("resources/pods//cluster/x.json")]
    #[case("resources/pods/cluster/x.yaml")]
    #[case("resources/pods/cluster/.json")]
    #[case("/resources/pods/cluster/x.json")]
    #[case("resources/pods/elsewhere/ns/x.json")]
    fn rejects_non_item_paths(#[case] path: &str) {
        assert_eq!(parse_item_path(path), None);
    }
}

/// Property tests of the item-path parser (issue 11, item 4: no panic on any input; no
/// path with `.` or `..` parts is ever taken for an item).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn part() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9.-]{0,12}".prop_filter("not a dot part", |p| p != "." && p != "..")
    }

    proptest! {
        #[test]
        fn any_text_never_panics_nor_escapes(s in "(\\./)?(resources/)?[a-z./-]{0,40}") {
            if let Some(p) = parse_item_path(&s) {
                for part in [Some(p.group_resource), p.version, p.namespace, Some(p.name)].into_iter().flatten() {
                    prop_assert!(!part.is_empty() && part != "." && part != ".." && !part.contains('/'));
                }
            }
        }

        #[test]
        fn item_paths_round_trip(
            gr in part(),
            version in proptest::option::of("v[0-9]{1,2}(beta[0-9])?"),
            ns in proptest::option::of(part()),
            name in part(),
        ) {
            let path = item_path(&gr, version.as_deref(), ns.as_deref(), &name);
            let p = parse_item_path(&path).unwrap();
            prop_assert_eq!(p.group_resource, gr.as_str());
            prop_assert_eq!(p.version, version.as_deref());
            prop_assert_eq!(p.namespace, ns.as_deref());
            prop_assert_eq!(p.name, name.as_str());
        }
    }
}
