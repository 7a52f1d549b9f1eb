//! How a backup that selects namespaces lists a namespaced resource type: one LIST per
//! selected namespace, or one paginated LIST of the whole cluster that keeps only the
//! selected namespaces' objects (issue 12, item 5).
//!
//! Each LIST costs a request whatever it returns, and a backup lists every namespaced type
//! the API server serves (about forty on a bare 1.20 control plane, most of them empty in
//! most namespaces). With many namespaces selected, the requests dominate: 10,000
//! ConfigMaps in 100 namespaces took 2.7–3.1 s as 100 LISTs per type, against 0.5 s for
//! one cluster-wide LIST of them. A cluster-wide LIST pays instead for the objects of the
//! namespaces it drops, and on etcd 3.4 for every page a count of the rest of the range,
//! which grows with the square of the type's size. Hence two steps:
//!
//! 1. [`namespaced_list`], before listing, from namespace counts: cluster-wide when RBAC
//!    allows it and the selection is a large enough share of the cluster's namespaces (a
//!    user allowed to LIST only inside the selected namespaces is listed namespace by
//!    namespace).
//! 2. [`after_first_page`], once the cluster-wide LIST's first page told the type's size:
//!    go on, or list the selected namespaces one by one after all. Most types fit in one
//!    page and never get there.

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
/// listed with one cluster-wide LIST (measured: see [`namespaced_list`]).
pub const MIN_SHARE_PERCENT: usize = 10;

/// How to list a namespaced type for `selected` namespaces in a cluster of `in_cluster`
/// namespaces, `cluster_wide_allowed` being what the preflight's access review answered
/// for a cluster-wide LIST of it.
///
/// Cluster-wide when allowed, at least [`MIN_NAMESPACES`] are selected and they are at
/// least [`MIN_SHARE_PERCENT`] of the cluster's namespaces (a count lower than the
/// selection, as of namespaces named but missing, counts as the selection).
///
/// Measured on scripts/bench.sh's 100-namespace cluster (ConfigMaps of ~3 KiB spread
/// evenly, every other type nearly empty; 2 cores shared with the control plane and other
/// work, so ±30%), whole backups, median of 3–5, per namespace against cluster-wide
/// (with [`after_first_page`]):
///
/// | selected of 100 | 10,000 ConfigMaps | 100,000 ConfigMaps |
/// |---:|---:|---:|
/// | 1 | 0.23 s / 0.23 s | 0.30 s / 0.40 s |
/// | 5 | 0.27 s / 0.22 s | 0.66 s / 0.98 s |
/// | 10 | 0.43 s / 0.32 s | 1.27 s / 0.96 s |
/// | 20 | 0.97 s / 0.47 s | 2.50 s / 1.72 s |
/// | 50 | 2.05 s / 0.80 s | 5.43 s / 5.35 s |
/// | 100 | 3.45 s / 1.07 s | 13.9 s / 9.6 s |
///
/// Cluster-wide wins from 5–10 selected namespaces in 100; below that the few
/// per-namespace requests cost less than reading the other namespaces' objects.
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

/// A LIST request costs as much as reading this many objects of ~3 KiB (measured: an
/// empty LIST 0.75–0.93 ms, an object 62 µs when namespaces of 1,000 ConfigMaps are listed
/// one by one).
pub const OBJECTS_PER_REQUEST: u128 = 13;

/// etcd 3.4 counts the rest of the range for every page of a paginated LIST
/// (`remainingItemCount`), so one LIST of `n` objects costs an extra `n² / (2 × 500)` key
/// visits of ~0.32 µs: the first pages of 100,000 ConfigMaps took 60–74 ms, the last
/// ones 33–41 ms. In LIST requests: `n² / QUADRATIC_PER_REQUEST`.
pub const QUADRATIC_PER_REQUEST: u128 = 2_500_000;

/// How many LISTs of one type's namespaces run at once when a type is listed namespace
/// by namespace: the API server answers them on every core, where the pages of one LIST
/// come one after the other. Measured (scripts/bench.sh's cluster: 10,000 ConfigMaps in
/// 100 namespaces, 2 cores shared with the control plane, three rounds): one paginated
/// cluster-wide LIST 0.49–0.65 s; per namespace one at a time 0.59–0.67 s, 2 at a time
/// 0.41–0.53 s, 4 0.30–0.42 s, 8 0.24–0.37 s, 16 0.36–0.42 s.
pub const NAMESPACE_CONCURRENCY: usize = 8;

/// How much faster [`NAMESPACE_CONCURRENCY`] LISTs read objects than the pages of one
/// LIST, as a fraction (numerator, denominator): 3/2, the low end of the measurements
/// above.
pub const PARALLEL_SPEEDUP: (u128, u128) = (3, 2);

/// What a cluster-wide LIST chosen by [`namespaced_list`] does once its first page said
/// how many objects the type has in the whole cluster (`total`: the page's items and its
/// `remainingItemCount`): go on, or list the `selected` namespaces one by one instead,
/// [`NAMESPACE_CONCURRENCY`] at a time.
///
/// Per namespace when that costs less. The cluster-wide LIST reads all `total` objects,
/// page after page, plus etcd's per-page count ([`QUADRATIC_PER_REQUEST`]). The
/// per-namespace LISTs read only the selected namespaces' objects (assumed spread evenly
/// over the `in_cluster` namespaces) and pay [`OBJECTS_PER_REQUEST`] for each request,
/// all of it [`PARALLEL_SPEEDUP`] faster. A type of a few objects in many namespaces
/// stays cluster-wide (the requests would cost more than its pages); a type of many
/// pages goes per namespace: 10,000 ConfigMaps in 100 namespaces took 0.49–0.65 s as one
/// paginated LIST and 0.24–0.37 s as 100 LISTs, 8 at a time; 100,000 took 11.9–12.7 s as
/// one LIST, 6.2–7.3 s as 300 per-namespace pages one at a time.
pub fn after_first_page(total: u64, selected: usize, in_cluster: usize) -> NamespacedList {
    let (n, k) = (u128::from(total), selected as u128);
    let namespaces = (in_cluster.max(selected) as u128).max(1);
    let (fast, slow) = PARALLEL_SPEEDUP;
    // Both costs in objects, times namespaces x QUADRATIC_PER_REQUEST x `fast`, to stay
    // in integers.
    let cluster_wide = fast.saturating_mul(
        n.saturating_mul(namespaces)
            .saturating_mul(QUADRATIC_PER_REQUEST)
            .saturating_add(
                n.saturating_mul(n)
                    .saturating_mul(OBJECTS_PER_REQUEST)
                    .saturating_mul(namespaces),
            ),
    );
    let per_namespace = slow.saturating_mul(
        n.saturating_mul(k)
            .saturating_mul(QUADRATIC_PER_REQUEST)
            .saturating_add(
                k.saturating_mul(OBJECTS_PER_REQUEST)
                    .saturating_mul(namespaces)
                    .saturating_mul(QUADRATIC_PER_REQUEST),
            ),
    );
    if per_namespace < cluster_wide {
        NamespacedList::PerNamespace
    } else {
        NamespacedList::ClusterWide
    }
}

/// The namespaces whose objects the first page of a cluster-wide LIST holds all of:
/// those before the namespace of its last item. A LIST goes through its objects in key
/// order (`<namespace>/<name>`; its continue token is the next key), so once a page has
/// reached namespace X, no object of an earlier namespace comes later. Keys compare with
/// the `/` after the namespace: `shop-dr/...` comes before `shop/...`. `page` is the
/// page's items' namespaces in order; when they are not in key order (an API server that
/// lists otherwise), none is taken as complete.
pub fn complete_in_first_page<'a>(page: &[&'a str]) -> Vec<&'a str> {
    let key = |ns: &str| format!("{ns}/");
    if page.windows(2).any(|w| key(w[0]) > key(w[1])) {
        return Vec::new();
    }
    let Some(last) = page.last().map(|l| key(l)) else {
        return Vec::new();
    };
    let mut out: Vec<&str> = page.iter().copied().filter(|n| key(n) < last).collect();
    out.dedup();
    out
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
    #[case::bench_10k_all_selected(10_100, 100, 100, PerNamespace)]
    #[case::bench_100k_all_selected(100_100, 100, 100, PerNamespace)]
    #[case::bench_10k_half_selected(10_100, 50, 100, PerNamespace)]
    #[case::a_thousand_pods_all_selected(1_000, 100, 100, ClusterWide)]
    #[case::three_hundred_secrets_a_quarter_selected(300, 25, 100, PerNamespace)]
    #[case::a_thousand_pods_a_quarter_selected(1_000, 25, 100, PerNamespace)]
    #[case::five_thousand_pods_a_quarter_selected(5_000, 25, 100, PerNamespace)]
    #[case::forty_thousand_in_a_thousand_namespaces(40_000, 1_000, 1_000, PerNamespace)]
    #[case::six_hundred_in_five_thousand_namespaces(600, 5_000, 5_000, ClusterWide)]
    // etcd's per-page count weighs as requests, not objects (it once was left at 1/13).
    #[case::hundred_thousand_in_five_thousand_namespaces(100_000, 5_000, 5_000, PerNamespace)]
    #[case::two_thousand_in_a_thousand_namespaces(2_000, 1_000, 1_000, ClusterWide)]
    #[case::fifty_thousand_in_a_hundred_namespaces(50_000, 100, 100, PerNamespace)]
    #[case::nothing_counted(0, 2, 2, ClusterWide)]
    #[case::no_overflow(u64::MAX, 2, 2, PerNamespace)]
    #[case::no_overflow_anywhere(u64::MAX, usize::MAX, usize::MAX, ClusterWide)]
    fn after_the_first_page(
        #[case] total: u64,
        #[case] selected: usize,
        #[case] in_cluster: usize,
        #[case] expected: NamespacedList,
    ) {
        assert_eq!(after_first_page(total, selected, in_cluster), expected);
    }

    #[rstest]
    #[case::in_order(&["a", "a", "b", "c", "c"], &["a", "b"])]
    #[case::one_namespace(&["a", "a"], &[])]
    #[case::empty(&[], &[])]
    #[case::out_of_order(&["a", "c", "b", "d"], &[])]
    #[case::last_alone(&["a", "b"], &["a"])]
    #[case::key_order_not_name_order(&["shop-dr", "shop", "shop"], &["shop-dr"])]
    #[case::name_order_is_not_key_order(&["shop", "shop-dr"], &[])]
    fn complete_namespaces(#[case] page: &[&str], #[case] expected: &[&str]) {
        assert_eq!(complete_in_first_page(page), expected);
    }

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
