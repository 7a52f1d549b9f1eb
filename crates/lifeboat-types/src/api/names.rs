//! Validation of names lifeboat puts into paths and Kubernetes objects.

/// Why a backup (or restore, schedule, location) name was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid {what} name {name:?}: use at most 63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit (e.g. nightly-2026-01-01)"
)]
pub struct NameError {
    /// What kind of object was being named.
    pub what: &'static str,
    /// The rejected name.
    pub name: String,
}

/// Checks `name` as a Kubernetes DNS-1123 subdomain short enough to be a label value
/// (Velero labels restores and items with backup names).
pub fn validate_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(NameError {
            what,
            name: name.to_owned(),
        })
    }
}

/// Eight hex digits of FNV-1a over the parts (separated): stable across versions.
pub fn short_hash(parts: &[&str]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0193);
        }
        for b in p.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    format!("{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("nightly", true)]
    #[case("daily-full-backup-20260118", true)]
    #[case("a.b", true)]
    #[case("", false)]
    #[case("Nightly", false)]
    #[case("-x", false)]
    #[case("x-", false)]
    #[case("a/b", false)]
    #[case("../etc", false)]
    #[case("a..b", false)]
    #[case("a b", false)]
    fn names(#[case] name: &str, #[case] ok: bool) {
        let want = if ok {
            Ok(())
        } else {
            Err(NameError {
                what: "backup",
                name: name.into(),
            })
        };
        assert_eq!(validate_name("backup", name), want, "{name:?}");
    }

    #[test]
    fn too_long() {
        let long = "a".repeat(64);
        let err = validate_name("schedule", &long).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("invalid schedule name \"{long}\": use at most 63")),
            "{err}"
        );
        assert!(validate_name("backup", &"a".repeat(63)).is_ok());
    }
}
