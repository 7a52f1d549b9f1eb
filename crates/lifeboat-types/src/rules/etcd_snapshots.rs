//! Which stored etcd snapshot a `download` or `restore --storage-location` means (by name,
//! or the newest, of one cluster), and whether the newest passes `list --max-age
//! --min-size` (a DR guide's "latest snapshot younger than 24 h and larger than 1 MB").
//! Pure: the clock is a parameter.
//!
//! Invariant: the newest snapshot is always one cluster's. A location shared by several
//! clusters answers "which cluster?" rather than mixing them (as a prune does, see
//! [`super::retention`]).

use chrono::{DateTime, Utc};

use super::retention::StoredSnapshot;
use crate::GoDuration;
use crate::api::size::ByteSize;

/// Which snapshot is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which<'a> {
    /// The one with this object name.
    Named(&'a str),
    /// The newest (by the time it was stored; the greater name on a tie).
    Newest,
}

/// Why no single snapshot was picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// Nothing matches.
    #[error("no etcd snapshot{} is stored in the location{}", named(.name), of_cluster(.cluster))]
    NotFound {
        /// The name asked for (`None`: the newest).
        name: Option<String>,
        /// The cluster asked for.
        cluster: Option<String>,
    },
    /// Several clusters have snapshots (of that name) and none was named.
    #[error("etcd snapshots{} of several clusters are stored in the location ({}); say which cluster", named(.name), clusters.join(", "))]
    SeveralClusters {
        /// The name asked for (`None`: the newest).
        name: Option<String>,
        /// The clusters, sorted.
        clusters: Vec<String>,
    },
}

fn named(name: &Option<String>) -> String {
    name.as_ref()
        .map(|n| format!(" named {n:?}"))
        .unwrap_or_default()
}

fn of_cluster(cluster: &Option<String>) -> String {
    cluster
        .as_ref()
        .map(|c| format!(" for cluster {c:?}"))
        .unwrap_or_default()
}

fn newest_of<'s>(it: impl Iterator<Item = &'s StoredSnapshot>) -> Option<&'s StoredSnapshot> {
    it.max_by(|a, b| a.taken.cmp(&b.taken).then_with(|| a.name.cmp(&b.name)))
}

/// The snapshot meant by `which` among `snapshots`, within `cluster` when given.
///
/// Without a cluster: a name must be stored for one cluster only (or only directly under
/// `metadata/etcd/`); the newest is the newest of the only cluster with snapshots, else —
/// when no snapshot names a cluster — the newest of those stored before paths named it.
pub fn pick<'s>(
    snapshots: &'s [StoredSnapshot],
    cluster: Option<&str>,
    which: Which<'_>,
) -> Result<&'s StoredSnapshot, PickError> {
    let name = match which {
        Which::Named(n) => Some(n),
        Which::Newest => None,
    };
    let candidates: Vec<&StoredSnapshot> = snapshots
        .iter()
        .filter(|s| cluster.is_none_or(|c| s.cluster.as_deref() == Some(c)))
        .filter(|s| name.is_none_or(|n| s.name == n))
        .collect();
    let mut clusters: Vec<Option<&str>> = candidates.iter().map(|s| s.cluster.as_deref()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let several = |clusters: Vec<Option<&str>>| PickError::SeveralClusters {
        name: name.map(str::to_owned),
        clusters: clusters
            .into_iter()
            .map(|c| {
                c.unwrap_or("(none: stored directly under metadata/etcd/)")
                    .to_owned()
            })
            .collect(),
    };
    let chosen = match (which, clusters.as_slice()) {
        (_, []) => None,
        (_, [one]) => newest_of(
            candidates
                .iter()
                .copied()
                .filter(|s| s.cluster.as_deref() == *one),
        ),
        // By name: the same name in two places is ambiguous, stored before paths named
        // the cluster or not.
        (Which::Named(_), _) => return Err(several(clusters)),
        // The newest: snapshots stored before paths named the cluster are never chosen
        // over a named cluster's (as a prune never counts them).
        (Which::Newest, _) => {
            let named: Vec<Option<&str>> = clusters.into_iter().filter(Option::is_some).collect();
            if named.len() > 1 {
                return Err(several(named));
            }
            newest_of(
                candidates
                    .iter()
                    .copied()
                    .filter(|s| s.cluster.as_deref() == named[0]),
            )
        }
    };
    chosen.ok_or_else(|| PickError::NotFound {
        name: name.map(str::to_owned),
        cluster: cluster.map(str::to_owned),
    })
}

/// What `list --max-age --min-size` asks of the newest snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// It was stored at most this long ago.
    pub max_age: Option<GoDuration>,
    /// It holds at least this many bytes.
    pub min_size: Option<ByteSize>,
}

impl Freshness {
    /// Whether anything is asked.
    pub fn is_set(&self) -> bool {
        self.max_age.is_some() || self.min_size.is_some()
    }
}

/// One check of a [`Verdict`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `exists`, `max-age` or `min-size` (the flag it comes from).
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was compared, with the values.
    pub detail: String,
}

/// Whether the newest snapshot passed every check asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Every check passed.
    pub ok: bool,
    /// The snapshot checked (`None`: nothing stored).
    pub newest: Option<StoredSnapshot>,
    /// The checks, in order: `exists`, then `max-age` and `min-size` when asked.
    pub checks: Vec<Check>,
}

/// Checks `newest` (the newest stored snapshot, `None` when there is none) against
/// `want` at `now`. A snapshot exactly `max_age` old or exactly `min_size` big passes; one
/// stored "in the future" (clocks apart) is of age zero. No snapshot fails every check.
pub fn check_newest(
    newest: Option<&StoredSnapshot>,
    want: &Freshness,
    now: DateTime<Utc>,
) -> Verdict {
    let mut checks = Vec::new();
    let mut push = |check: &str, ok: bool, detail: String| {
        checks.push(Check {
            check: check.into(),
            ok,
            detail,
        })
    };
    match newest {
        None => push("exists", false, "no etcd snapshot is stored".into()),
        Some(s) => push("exists", true, format!("newest is {}", s.name)),
    }
    if let Some(max) = want.max_age {
        let (ok, detail) = match newest {
            None => (false, format!("nothing stored within {max}")),
            Some(s) => {
                let age = now
                    .signed_duration_since(s.taken)
                    .to_std()
                    .unwrap_or_default();
                let age = GoDuration(std::time::Duration::from_secs(age.as_secs()));
                if age <= max {
                    (true, format!("stored {age} ago, within {max}"))
                } else {
                    (
                        false,
                        format!("stored {age} ago ({}), older than {max}", s.taken),
                    )
                }
            }
        };
        push("max-age", ok, detail);
    }
    if let Some(min) = want.min_size {
        let (ok, detail) = match newest {
            None => (false, format!("nothing stored of at least {min}")),
            Some(s) if s.size >= min.0 => (
                true,
                format!("{} bytes, at least {min} ({} bytes)", s.size, min.0),
            ),
            Some(s) => (
                false,
                format!("{} bytes, smaller than {min} ({} bytes)", s.size, min.0),
            ),
        };
        push("min-size", ok, detail);
    }
    Verdict {
        ok: checks.iter().all(|c| c.ok),
        newest: newest.cloned(),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn snap(cluster: Option<&str>, name: &str, minutes_ago: i64, size: u64) -> StoredSnapshot {
        StoredSnapshot {
            cluster: cluster.map(str::to_owned),
            name: name.into(),
            taken: now()
                .checked_sub_signed(chrono::Duration::minutes(minutes_ago))
                .unwrap(),
            size,
        }
    }

    /// Two clusters share the location; `old/` holds snapshots stored before paths named
    /// the cluster.
    fn shared() -> Vec<StoredSnapshot> {
        vec![
            snap(Some("a"), "s1.db", 60, 1),
            snap(Some("a"), "s2.db", 30, 1),
            snap(Some("b"), "s2.db", 20, 1),
            snap(Some("b"), "b1.db", 10, 1),
            snap(None, "legacy.db", 1, 1),
            snap(None, "s1.db", 500, 1),
        ]
    }

    fn one_cluster() -> Vec<StoredSnapshot> {
        vec![
            snap(Some("a"), "s1.db", 60, 1),
            snap(Some("a"), "s3.db", 30, 1),
            snap(Some("a"), "s2.db", 30, 1),
            snap(None, "legacy.db", 1, 1),
        ]
    }

    type Want = Result<(Option<&'static str>, &'static str), &'static str>;

    #[rstest]
    #[case::named_in_its_cluster(shared(), Some("a"), Which::Named("s2.db"), Ok((Some("a"), "s2.db")))]
    #[case::named_in_the_other(shared(), Some("b"), Which::Named("s2.db"), Ok((Some("b"), "s2.db")))]
    #[case::named_once(shared(), None, Which::Named("b1.db"), Ok((Some("b"), "b1.db")))]
    #[case::named_legacy(shared(), None, Which::Named("legacy.db"), Ok((None, "legacy.db")))]
    #[case::named_twice(
        shared(),
        None,
        Which::Named("s2.db"),
        Err(
            "etcd snapshots named \"s2.db\" of several clusters are stored in the location (a, b); say which cluster"
        )
    )]
    #[case::named_twice_once_legacy(
        shared(),
        None,
        Which::Named("s1.db"),
        Err(
            "etcd snapshots named \"s1.db\" of several clusters are stored in the location ((none: stored directly under metadata/etcd/), a); say which cluster"
        )
    )]
    #[case::named_missing(
        shared(),
        Some("a"),
        Which::Named("b1.db"),
        Err("no etcd snapshot named \"b1.db\" is stored in the location for cluster \"a\"")
    )]
    #[case::newest_of_a(shared(), Some("a"), Which::Newest, Ok((Some("a"), "s2.db")))]
    #[case::newest_of_b(shared(), Some("b"), Which::Newest, Ok((Some("b"), "b1.db")))]
    #[case::newest_of_unknown(
        shared(),
        Some("c"),
        Which::Newest,
        Err("no etcd snapshot is stored in the location for cluster \"c\"")
    )]
    #[case::newest_of_several(
        shared(),
        None,
        Which::Newest,
        Err(
            "etcd snapshots of several clusters are stored in the location (a, b); say which cluster"
        )
    )]
    #[case::newest_of_the_only_cluster_not_legacy(one_cluster(), None, Which::Newest, Ok((Some("a"), "s3.db")))]
    #[case::newest_tie_by_name(one_cluster(), Some("a"), Which::Newest, Ok((Some("a"), "s3.db")))]
    #[case::newest_legacy_only(vec![snap(None, "x.db", 9, 1), snap(None, "y.db", 8, 1)], None, Which::Newest, Ok((None, "y.db")))]
    #[case::empty(vec![], None, Which::Newest, Err("no etcd snapshot is stored in the location"))]
    fn picks(
        #[case] snaps: Vec<StoredSnapshot>,
        #[case] cluster: Option<&str>,
        #[case] which: Which<'_>,
        #[case] want: Want,
    ) {
        let got = pick(&snaps, cluster, which)
            .map(|s| (s.cluster.as_deref(), s.name.as_str()))
            .map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{which:?} of {cluster:?}");
    }

    fn want(max_age: Option<&str>, min_size: Option<&str>) -> Freshness {
        Freshness {
            max_age: max_age.map(|d| d.parse().unwrap()),
            min_size: min_size.map(|s| s.parse().unwrap()),
        }
    }

    /// The DR guide's validator: "latest snapshot younger than 24 h and larger than 1 MB".
    #[rstest]
    #[case::fresh_and_big(Some((60, 2_000_000)), Some("24h"), Some("1MB"), &[("exists", true), ("max-age", true), ("min-size", true)])]
    #[case::too_old(Some((25 * 60, 2_000_000)), Some("24h"), Some("1MB"), &[("exists", true), ("max-age", false), ("min-size", true)])]
    #[case::too_small(Some((60, 999_999)), Some("24h"), Some("1MB"), &[("exists", true), ("max-age", true), ("min-size", false)])]
    #[case::binary_unit(Some((60, 1_000_000)), None, Some("1MiB"), &[("exists", true), ("min-size", false)])]
    #[case::both_fail(Some((25 * 60, 10)), Some("24h"), Some("1MB"), &[("exists", true), ("max-age", false), ("min-size", false)])]
    #[case::exactly_the_limits(Some((24 * 60, 1_000_000)), Some("24h"), Some("1MB"), &[("exists", true), ("max-age", true), ("min-size", true)])]
    #[case::a_minute_over(Some((24 * 60 + 1, 1_000_000)), Some("24h"), None, &[("exists", true), ("max-age", false)])]
    #[case::stored_in_the_future(Some((-5, 1)), Some("30m"), None, &[("exists", true), ("max-age", true)])]
    #[case::nothing_stored(None, Some("24h"), Some("1MB"), &[("exists", false), ("max-age", false), ("min-size", false)])]
    #[case::nothing_asked(Some((10_000, 1)), None, None, &[("exists", true)])]
    #[case::nothing_asked_nothing_stored(None, None, None, &[("exists", false)])]
    fn freshness(
        #[case] newest: Option<(i64, u64)>,
        #[case] max_age: Option<&str>,
        #[case] min_size: Option<&str>,
        #[case] expected: &[(&str, bool)],
    ) {
        let s = newest.map(|(m, size)| snap(Some("a"), "n.db", m, size));
        let v = check_newest(s.as_ref(), &want(max_age, min_size), now());
        let got: Vec<(&str, bool)> = v.checks.iter().map(|c| (c.check.as_str(), c.ok)).collect();
        assert_eq!(got, expected, "{v:?}");
        assert_eq!(v.ok, expected.iter().all(|(_, ok)| *ok));
        assert_eq!(v.newest, s);
    }

    #[test]
    fn a_failed_check_says_what_was_compared() {
        let s = snap(Some("a"), "n.db", 25 * 60, 524_288);
        let v = check_newest(Some(&s), &want(Some("24h"), Some("1MB")), now());
        let details: Vec<&str> = v.checks.iter().map(|c| c.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "newest is n.db",
                "stored 25h0m0s ago (2026-12-01 11:00:00 UTC), older than 24h0m0s",
                "524288 bytes, smaller than 1MB (1000000 bytes)",
            ]
        );
    }
}
