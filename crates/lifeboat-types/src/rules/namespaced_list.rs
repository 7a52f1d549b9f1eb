//! How a backup that selects namespaces lists a namespaced resource type: one LIST per
//! selected namespace, or one paginated LIST of the whole cluster that keeps only the
//! selected namespaces' objects (issue 12, item 5).
//!
//! Each LIST costs a request whatever it returns, and a backup lists every namespaced type
//! the API server serves (about forty on a bare 1.20 control plane, most of them empty in
//! most namespaces). With many namespaces selected, the requests dominate: 10,000
//! ConfigMaps in 100 namespaces took 2.7–3.1 s as 100 LISTs per type, against 0.5 s for
//! one cluster-wide LIST of them. A cluster-wide LIST pays instead for the objects of the
//! namespaces it drops, so it is worth it only when the selection is a large enough share
//! of the cluster's namespaces — and only when RBAC allows it: a user allowed to LIST only
//! inside the selected namespaces is listed namespace by namespace.

/// How one namespaced resource type is listed for a selection of namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespacedList {
    /// One LIST per selected namespace.
    PerNamespace,
    /// One paginated LIST of the whole cluster, keeping the selected namespaces' objects.
    ClusterWide,
}

/// Fewer selected namespaces than this are always listed one by one: a single
/// namespace's LIST reads nothing it does not keep.
pub const MIN_NAMESPACES: usize = 2;

/// The share of the cluster's namespaces (in percent) from which the selected ones are
/// listed with one cluster-wide LIST. Measured with `scripts/bench.sh` (see
/// [`namespaced_list`]).
pub const MIN_SHARE_PERCENT: usize = 10;

/// How to list a namespaced type for `selected` namespaces in a cluster of `in_cluster`
/// namespaces, `cluster_wide_allowed` being what the preflight's access review answered
/// for a cluster-wide LIST of it.
///
/// Cluster-wide when allowed, at least [`MIN_NAMESPACES`] are selected and they are at
/// least [`MIN_SHARE_PERCENT`] of the cluster's namespaces (a count lower than the
/// selection, as of namespaces named but missing, counts as the selection).
///
/// The share is provisional until measured with scripts/bench.sh.
pub fn namespaced_list(
    selected: usize,
    in_cluster: usize,
    cluster_wide_allowed: bool,
) -> NamespacedList {
    let in_cluster = in_cluster.max(selected);
    if cluster_wide_allowed
        && selected >= MIN_NAMESPACES
        && selected.saturating_mul(100) >= in_cluster.saturating_mul(MIN_SHARE_PERCENT)
    {
        NamespacedList::ClusterWide
    } else {
        NamespacedList::PerNamespace
    }
}

/// Whether a cluster-wide LIST would be chosen if RBAC allowed it: only then does the
/// preflight ask whether it does.
pub fn worth_asking(selected: usize, in_cluster: usize) -> bool {
    namespaced_list(selected, in_cluster, true) == NamespacedList::ClusterWide
}

#[cfg(test)]
mod tests {
    use super::NamespacedList::{ClusterWide, PerNamespace};
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::one_of_a_hundred(1, 100, true, PerNamespace)]
    #[case::one_of_one(1, 1, true, PerNamespace)]
    #[case::none_selected(0, 100, true, PerNamespace)]
    #[case::all_of_a_hundred(100, 100, true, ClusterWide)]
    #[case::all_but_rbac_refuses(100, 100, false, PerNamespace)]
    #[case::two_of_two(2, 2, true, ClusterWide)]
    #[case::just_below_the_share(9, 100, true, PerNamespace)]
    #[case::at_the_share(10, 100, true, ClusterWide)]
    #[case::twelve_of_forty(12, 40, true, ClusterWide)]
    #[case::twelve_of_two_hundred(12, 200, true, PerNamespace)]
    #[case::a_thousand_of_ten_thousand(1_000, 10_000, true, ClusterWide)]
    #[case::more_selected_than_counted(5, 3, true, ClusterWide)]
    #[case::no_overflow(usize::MAX, usize::MAX, true, ClusterWide)]
    fn chooses(
        #[case] selected: usize,
        #[case] in_cluster: usize,
        #[case] allowed: bool,
        #[case] expected: NamespacedList,
    ) {
        assert_eq!(namespaced_list(selected, in_cluster, allowed), expected);
        assert_eq!(
            worth_asking(selected, in_cluster),
            namespaced_list(selected, in_cluster, true) == ClusterWide
        );
    }
}
