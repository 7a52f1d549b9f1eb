//! `--sort-by` of `backup get`, `restore get` and `schedule get`: the keys kubectl and
//! Velero users write (`.metadata.creationTimestamp`, `name`, `status`, ...) and the one
//! order they give. Velero's own `get` has no `--sort-by` (a DR guide writes
//! `velero backup get --sort-by=.metadata.creationTimestamp`, kubectl's form); lifeboat
//! takes it.

use std::cmp::Ordering;

use crate::api::crd::ScheduleResource;
use crate::api::velero::{Backup, Restore, Time};

/// What a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `metadata.name`.
    Name,
    /// `metadata.creationTimestamp` (a stored object without one: its start).
    Created,
    /// `status.startTimestamp`.
    Started,
    /// `status.completionTimestamp`.
    Completed,
    /// `status.expiration`.
    Expiration,
    /// `status.phase`.
    Phase,
    /// `status.lastBackup` (schedules).
    LastBackup,
}

impl SortKey {
    /// Every key with the words that name it (the first is the JSONPath kubectl takes).
    const WORDS: &'static [(SortKey, &'static [&'static str])] = &[
        (SortKey::Name, &[".metadata.name", "name"]),
        (
            SortKey::Created,
            &[
                ".metadata.creationTimestamp",
                "creationTimestamp",
                "created",
            ],
        ),
        (
            SortKey::Started,
            &[".status.startTimestamp", "startTimestamp", "started"],
        ),
        (
            SortKey::Completed,
            &[
                ".status.completionTimestamp",
                "completionTimestamp",
                "completed",
            ],
        ),
        (
            SortKey::Expiration,
            &[".status.expiration", "expiration", "expires"],
        ),
        (SortKey::Phase, &[".status.phase", "phase", "status"]),
        (
            SortKey::LastBackup,
            &[".status.lastBackup", "lastBackup", "last-backup"],
        ),
    ];

    /// Parses a `--sort-by` value for a list of `kind` that has the fields of `keys`.
    /// kubectl's forms are taken too: `{.metadata.name}`, `metadata.name`; key words are
    /// case-insensitive.
    pub fn parse(value: &str, kind: &str, keys: &[SortKey]) -> Result<SortKey, SortKeyError> {
        let v = value.trim();
        let v = v
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(v);
        let dotted = if v.starts_with('.') {
            v.to_owned()
        } else {
            format!(".{v}")
        };
        let found = Self::WORDS.iter().find(|(_, words)| {
            words
                .iter()
                .any(|w| w.eq_ignore_ascii_case(v) || w.eq_ignore_ascii_case(&dotted))
        });
        match found {
            Some((key, _)) if keys.contains(key) => Ok(*key),
            _ => Err(SortKeyError {
                value: value.to_owned(),
                kind: kind.to_owned(),
                accepted: keys
                    .iter()
                    .filter_map(|k| Self::WORDS.iter().find(|(w, _)| w == k))
                    .map(|(_, words)| format!("{} ({})", words[0], words[1..].join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }
}

/// A `--sort-by` value that names no field of the listed objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--sort-by {value:?}: a {kind} list sorts by {accepted}")]
pub struct SortKeyError {
    /// The value given.
    pub value: String,
    /// What is listed.
    pub kind: String,
    /// The keys it takes, with their other names.
    pub accepted: String,
}

/// The fields a list is sorted by, as one object has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortFields {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Option<Time>,
    /// Start time.
    pub started: Option<Time>,
    /// Completion time.
    pub completed: Option<Time>,
    /// Expiration.
    pub expiration: Option<Time>,
    /// Phase, as written.
    pub phase: Option<String>,
    /// Last backup (schedules).
    pub last_backup: Option<Time>,
}

/// Objects a list sorts.
pub trait Sortable {
    /// What the kind is called in messages.
    const KIND: &'static str;
    /// The keys its objects have.
    const KEYS: &'static [SortKey];
    /// The object's fields.
    fn sort_fields(&self) -> SortFields;
}

impl Sortable for Backup {
    const KIND: &'static str = "backup";
    const KEYS: &'static [SortKey] = &[
        SortKey::Name,
        SortKey::Created,
        SortKey::Started,
        SortKey::Completed,
        SortKey::Expiration,
        SortKey::Phase,
    ];
    fn sort_fields(&self) -> SortFields {
        let st = self.status.as_ref();
        let started = st.and_then(|s| s.start_timestamp);
        SortFields {
            name: self.metadata.name.clone(),
            created: self.metadata.creation_timestamp.or(started),
            started,
            completed: st.and_then(|s| s.completion_timestamp),
            expiration: st.and_then(|s| s.expiration),
            phase: st.map(|s| s.phase.to_string()),
            last_backup: None,
        }
    }
}

impl Sortable for Restore {
    const KIND: &'static str = "restore";
    const KEYS: &'static [SortKey] = &[
        SortKey::Name,
        SortKey::Created,
        SortKey::Started,
        SortKey::Completed,
        SortKey::Phase,
    ];
    fn sort_fields(&self) -> SortFields {
        let st = self.status.as_ref();
        let started = st.and_then(|s| s.start_timestamp);
        SortFields {
            name: self.metadata.name.clone(),
            created: self.metadata.creation_timestamp.or(started),
            started,
            completed: st.and_then(|s| s.completion_timestamp),
            phase: st.map(|s| s.phase.to_string()),
            ..Default::default()
        }
    }
}

impl Sortable for ScheduleResource {
    const KIND: &'static str = "schedule";
    const KEYS: &'static [SortKey] = &[
        SortKey::Name,
        SortKey::Created,
        SortKey::Phase,
        SortKey::LastBackup,
    ];
    fn sort_fields(&self) -> SortFields {
        let st = self.status.as_ref();
        SortFields {
            name: self.metadata.name.clone().unwrap_or_default(),
            created: self
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0).map(Time)),
            phase: st.map(|s| s.phase.to_string()),
            last_backup: st.and_then(|s| s.last_backup),
            ..Default::default()
        }
    }
}

/// Compares two objects' fields by `key`, ascending (as kubectl); an object without the
/// field comes after every one that has it; ties (and everything else) go by name.
pub fn compare(a: &SortFields, b: &SortFields, key: SortKey) -> Ordering {
    fn opt<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
        match (a, b) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let first = match key {
        SortKey::Name => Ordering::Equal,
        SortKey::Created => opt(&a.created, &b.created),
        SortKey::Started => opt(&a.started, &b.started),
        SortKey::Completed => opt(&a.completed, &b.completed),
        SortKey::Expiration => opt(&a.expiration, &b.expiration),
        SortKey::Phase => opt(&a.phase, &b.phase),
        SortKey::LastBackup => opt(&a.last_backup, &b.last_backup),
    };
    first.then_with(|| a.name.cmp(&b.name))
}

/// Sorts `items` by `key` ([`compare`]).
pub fn sort_by<T: Sortable>(items: &mut [T], key: SortKey) {
    items.sort_by_cached_key(|i| SortOrder(i.sort_fields(), key));
}

/// [`SortFields`] ordered by [`compare`] (for `sort_by_cached_key`).
#[derive(PartialEq, Eq)]
struct SortOrder(SortFields, SortKey);

impl PartialOrd for SortOrder {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortOrder {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::{BackupPhase, BackupSpec, BackupStatus};
    use rstest::rstest;

    #[rstest]
    #[case(".metadata.creationTimestamp", SortKey::Created)]
    #[case("{.metadata.creationTimestamp}", SortKey::Created)]
    #[case("metadata.creationTimestamp", SortKey::Created)]
    #[case("creationtimestamp", SortKey::Created)]
    #[case("created", SortKey::Created)]
    #[case(".metadata.name", SortKey::Name)]
    #[case("name", SortKey::Name)]
    #[case(".status.phase", SortKey::Phase)]
    #[case("status", SortKey::Phase)]
    #[case(".status.expiration", SortKey::Expiration)]
    #[case("expires", SortKey::Expiration)]
    #[case(".status.startTimestamp", SortKey::Started)]
    #[case(".status.completionTimestamp", SortKey::Completed)]
    fn backup_keys(#[case] value: &str, #[case] key: SortKey) {
        assert_eq!(SortKey::parse(value, Backup::KIND, Backup::KEYS), Ok(key));
    }

    #[rstest]
    #[case::unknown("size", Backup::KIND, Backup::KEYS)]
    #[case::not_a_restore_field(".status.expiration", Restore::KIND, Restore::KEYS)]
    #[case::not_a_schedule_field("completed", ScheduleResource::KIND, ScheduleResource::KEYS)]
    #[case::empty("", Backup::KIND, Backup::KEYS)]
    fn other_keys_are_refused_naming_those_taken(
        #[case] value: &str,
        #[case] kind: &str,
        #[case] keys: &[SortKey],
    ) {
        let e = SortKey::parse(value, kind, keys).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--sort-by {value:?}: a {kind} list sorts by .metadata.name (name); .metadata.creationTimestamp")),
            "{e}"
        );
    }

    fn t(s: &str) -> Option<Time> {
        Some(Time(s.parse().unwrap()))
    }

    fn backup(
        name: &str,
        created: Option<Time>,
        phase: Option<BackupPhase>,
        exp: Option<Time>,
    ) -> Backup {
        let mut b = Backup::new(name, BackupSpec::default());
        b.metadata.creation_timestamp = created;
        b.status = phase.map(|phase| BackupStatus {
            phase,
            expiration: exp,
            ..Default::default()
        });
        b
    }

    #[rstest]
    #[case::created(SortKey::Created, &["old", "mid", "new", "twin-a", "twin-b", "undated"])]
    #[case::name(SortKey::Name, &["mid", "new", "old", "twin-a", "twin-b", "undated"])]
    #[case::phase_alphabetical(SortKey::Phase, &["old", "undated", "mid", "new", "twin-a", "twin-b"])]
    #[case::expiration(SortKey::Expiration, &["new", "old", "mid", "twin-a", "twin-b", "undated"])]
    fn backups_sort(#[case] key: SortKey, #[case] want: &[&str]) {
        use BackupPhase::*;
        let mut items = vec![
            backup("twin-b", t("2026-01-04T00:00:00Z"), None, None),
            backup("undated", None, Some(Completed), None),
            backup(
                "new",
                t("2026-01-03T00:00:00Z"),
                Some(PartiallyFailed),
                t("2026-01-05T00:00:00Z"),
            ),
            backup(
                "old",
                t("2026-01-01T00:00:00Z"),
                Some(Completed),
                t("2026-01-06T00:00:00Z"),
            ),
            backup("twin-a", t("2026-01-04T00:00:00Z"), None, None),
            backup(
                "mid",
                t("2026-01-02T00:00:00Z"),
                Some(Failed),
                t("2026-01-07T00:00:00Z"),
            ),
        ];
        sort_by(&mut items, key);
        let got: Vec<&str> = items.iter().map(|b| b.metadata.name.as_str()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_stored_backup_without_creation_time_sorts_by_its_start() {
        let mut a = backup("a", None, Some(BackupPhase::Completed), None);
        a.status.as_mut().unwrap().start_timestamp = t("2026-01-02T00:00:00Z");
        let b = backup("b", t("2026-01-01T00:00:00Z"), None, None);
        let mut items = vec![a, b];
        sort_by(&mut items, SortKey::Created);
        assert_eq!(items[0].metadata.name, "b");
    }
}
