//! Retention of stored snapshots: which ones a `prune --keep N --max-age D` removes. Pure.
//!
//! Invariant: a prune counts and deletes the snapshots of one cluster only. Clusters that
//! share a location keep their snapshots apart (`metadata/etcd/<cluster>/`), so that one
//! cluster's `--keep 3` never deletes another's snapshots, nor counts them.

use chrono::{DateTime, Utc};

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSnapshot {
    /// The cluster it was taken from (the directory under `metadata/etcd/`); `None` for a
    /// snapshot stored directly under `metadata/etcd/`, before paths named the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Object name.
    pub name: String,
    /// When it was taken (stored).
    pub taken: DateTime<Utc>,
    /// Size in bytes.
    pub size: u64,
}

/// The names to delete among the snapshots of `cluster` (`None`: those stored before
/// paths named the cluster): beyond the `keep` newest of that cluster, or older than
/// `max_age`. Snapshots of any other cluster are neither counted nor returned. The newest
/// snapshot of the cluster is never deleted, whatever the rules say.
pub fn prunable(
    snapshots: &[StoredSnapshot],
    cluster: Option<&str>,
    keep: Option<usize>,
    max_age: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut sorted: Vec<&StoredSnapshot> = snapshots
        .iter()
        .filter(|s| s.cluster.as_deref() == cluster)
        .collect();
    sorted.sort_by(|a, b| b.taken.cmp(&a.taken).then_with(|| b.name.cmp(&a.name)));
    let max_age = max_age.and_then(|d| chrono::Duration::from_std(d).ok());
    sorted
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, s)| {
            keep.is_some_and(|k| *i >= k)
                || max_age.is_some_and(|a| now.signed_duration_since(s.taken) > a)
        })
        .map(|(_, s)| s.name.clone())
        .collect()
}

/// A location holds the snapshots of several clusters, and a prune did not say whose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the location holds etcd snapshots of several clusters ({}); say whose to prune",
    clusters.join(", ")
)]
pub struct SeveralClusters {
    /// The clusters, sorted.
    pub clusters: Vec<String>,
}

/// The cluster a prune that names none counts: the only one with snapshots in the
/// location (`None` when no snapshot names a cluster). Snapshots stored before paths
/// named the cluster are never chosen this way; they are pruned only when asked for.
pub fn only_cluster(snapshots: &[StoredSnapshot]) -> Result<Option<&str>, SeveralClusters> {
    let mut clusters: Vec<&str> = snapshots
        .iter()
        .filter_map(|s| s.cluster.as_deref())
        .collect();
    clusters.sort_unstable();
    clusters.dedup();
    match clusters[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(SeveralClusters {
            clusters: clusters.into_iter().map(str::to_owned).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn snap(
        cluster: Option<&str>,
        name: &str,
        hours_ago: i64,
        now: DateTime<Utc>,
    ) -> StoredSnapshot {
        StoredSnapshot {
            cluster: cluster.map(str::to_owned),
            name: name.into(),
            taken: now
                .checked_sub_signed(chrono::Duration::hours(hours_ago))
                .unwrap(),
            size: 1,
        }
    }

    fn snaps(now: DateTime<Utc>) -> Vec<StoredSnapshot> {
        (0..5)
            .map(|h| snap(Some("a"), &format!("s{h}"), h * 10, now))
            .collect()
    }

    #[rstest]
    #[case(Some(3), None, &["s3", "s4"])]
    #[case(None, Some(25), &["s3", "s4"])]
    #[case(Some(4), Some(15), &["s2", "s3", "s4"])]
    #[case(Some(0), None, &["s1", "s2", "s3", "s4"])]
    #[case(None, Some(0), &["s1", "s2", "s3", "s4"])]
    #[case(Some(10), None, &[])]
    #[case(None, None, &[])]
    fn rules(#[case] keep: Option<usize>, #[case] hours: Option<u64>, #[case] expected: &[&str]) {
        let now = Utc::now();
        let mut got = prunable(
            &snaps(now),
            Some("a"),
            keep,
            hours.map(|h| std::time::Duration::from_secs(h * 3600)),
            now,
        );
        got.sort();
        assert_eq!(got, expected);
    }

    /// Issue 11 item 2: two clusters sharing a location; each prune counts its own
    /// snapshots only. `b`'s snapshots are the newest in the location: counted together,
    /// a `--keep 2` run by `a` would delete every snapshot of `a` (and one of `b`'s).
    #[rstest]
    #[case::cluster_a(Some("a"), Some(2), None, &["a3"])]
    #[case::cluster_b(Some("b"), Some(2), None, &["b2"])]
    #[case::cluster_b_by_age(Some("b"), None, Some(2), &["b1", "b2"])]
    #[case::unnamed(None, Some(1), None, &["old1"])]
    #[case::unknown_cluster(Some("c"), Some(0), None, &[])]
    fn a_prune_counts_one_cluster_s_snapshots(
        #[case] cluster: Option<&str>,
        #[case] keep: Option<usize>,
        #[case] max_age_hours: Option<u64>,
        #[case] expected: &[&str],
    ) {
        let now = Utc::now();
        let all = [
            snap(Some("b"), "b0", 0, now),
            snap(Some("b"), "b1", 3, now),
            snap(Some("b"), "b2", 6, now),
            snap(Some("a"), "a1", 10, now),
            snap(Some("a"), "a2", 20, now),
            snap(Some("a"), "a3", 30, now),
            snap(None, "old0", 40, now),
            snap(None, "old1", 50, now),
        ];
        let mut got = prunable(
            &all,
            cluster,
            keep,
            max_age_hours.map(|h| std::time::Duration::from_secs(h * 3600)),
            now,
        );
        got.sort();
        assert_eq!(got, expected);
    }

    #[rstest]
    #[case::empty(&[], Ok(None))]
    #[case::only_unnamed(&[None, None], Ok(None))]
    #[case::one(&[Some("a"), Some("a")], Ok(Some("a")))]
    #[case::one_and_unnamed(&[None, Some("a")], Ok(Some("a")))]
    #[case::two(&[Some("b"), None, Some("a")], Err(vec!["a", "b"]))]
    fn the_only_cluster(
        #[case] clusters: &[Option<&str>],
        #[case] expected: Result<Option<&str>, Vec<&str>>,
    ) {
        let now = Utc::now();
        let all: Vec<StoredSnapshot> = clusters
            .iter()
            .enumerate()
            .map(|(i, c)| snap(*c, &format!("s{i}"), 0, now))
            .collect();
        let got = only_cluster(&all).map_err(|e| e.clusters);
        assert_eq!(
            got,
            expected.map_err(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>())
        );
    }

    #[test]
    fn several_clusters_are_named() {
        let e = SeveralClusters {
            clusters: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "the location holds etcd snapshots of several clusters (a, b); say whose to prune"
        );
    }
}
