//! Retention of stored snapshots: which ones a `prune --keep N --max-age D` removes. Pure.

use chrono::{DateTime, Utc};

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSnapshot {
    /// Object name.
    pub name: String,
    /// When it was taken (stored).
    pub taken: DateTime<Utc>,
    /// Size in bytes.
    pub size: u64,
}

/// The names to delete: beyond the `keep` newest, or older than `max_age`. The newest
/// snapshot is never deleted, whatever the rules say.
pub fn prunable(
    snapshots: &[StoredSnapshot],
    keep: Option<usize>,
    max_age: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut sorted: Vec<&StoredSnapshot> = snapshots.iter().collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn snaps(now: DateTime<Utc>) -> Vec<StoredSnapshot> {
        (0..5)
            .map(|h| StoredSnapshot {
                name: format!("s{h}"),
                taken: now
                    .checked_sub_signed(chrono::Duration::hours(h * 10))
                    .unwrap(),
                size: 1,
            })
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
            keep,
            hours.map(|h| std::time::Duration::from_secs(h * 3600)),
            now,
        );
        got.sort();
        assert_eq!(got, expected);
    }
}
