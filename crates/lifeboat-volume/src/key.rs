//! The repository key: always the user's. lifeboat has no built-in key (Velero encrypts
//! every repository with one static password, so anyone with the bucket reads the data);
//! without a key volume work is refused before anything is read or written.

use std::path::Path;

use crate::error::VolumeError;

/// The environment variable holding the key (CLI mode).
pub const KEY_ENV: &str = "LIFEBOAT_REPO_PASSWORD";
/// The environment variable naming a file that holds the key (CLI mode; a mounted Secret
/// in the server and the node agent).
pub const KEY_FILE_ENV: &str = "LIFEBOAT_REPO_PASSWORD_FILE";

/// Velero's static repository password (public, in its source).
const VELERO_STATIC_KEY: &str = "static-passw0rd";

/// A repository key. Its `Debug` never shows the value, so it cannot reach a log.
#[derive(Clone)]
pub struct RepoKey(String);

impl std::fmt::Debug for RepoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepoKey(<redacted>)")
    }
}

impl RepoKey {
    /// A key given directly (a Secret's value).
    pub fn new(value: impl Into<String>) -> Result<RepoKey, VolumeError> {
        let value = value.into();
        if value.is_empty() {
            return Err(VolumeError::NoKey {
                reason: "the key given is empty".into(),
            });
        }
        Ok(RepoKey(value))
    }

    /// The key in `file` (one trailing newline is not part of it, as restic reads a
    /// password file).
    pub fn from_file(file: &Path) -> Result<RepoKey, VolumeError> {
        let text = std::fs::read_to_string(file).map_err(|e| VolumeError::NoKey {
            reason: format!("cannot read the key file {}: {e}", file.display()),
        })?;
        let value = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        RepoKey::new(value).map_err(|_| VolumeError::NoKey {
            reason: format!("the key file {} is empty", file.display()),
        })
    }

    /// The key from `--password-file` when given, else from the environment
    /// ([`KEY_FILE_ENV`], then [`KEY_ENV`]); never a default.
    pub fn resolve(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RepoKey, VolumeError> {
        if let Some(file) = file {
            return RepoKey::from_file(file);
        }
        if let Some(file) = env(KEY_FILE_ENV).filter(|f| !f.is_empty()) {
            return RepoKey::from_file(Path::new(&file));
        }
        match env(KEY_ENV) {
            Some(v) if !v.is_empty() => RepoKey::new(v),
            _ => Err(VolumeError::NoKey {
                reason: format!(
                    "no repository key given; lifeboat has no built-in key. Set {KEY_ENV}, or {KEY_FILE_ENV} or --password-file to a file holding it"
                ),
            }),
        }
    }

    /// The one key Velero encrypted every repository with (`static-passw0rd`, its
    /// `pkg/repository/keys`), to read repositories Velero wrote when migrating. It is
    /// public: anyone with the bucket reads such a repository. Never a default; callers
    /// offer it for reading only, on an explicit flag.
    pub fn velero_legacy() -> RepoKey {
        RepoKey(VELERO_STATIC_KEY.to_owned())
    }

    /// The key's value, for the repository code only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[rstest]
    #[case::nothing(&[])]
    #[case::empty_value(&[(KEY_ENV, "")])]
    fn without_a_key_volume_work_is_refused(#[case] vars: &[(&str, &str)]) {
        let err = RepoKey::resolve(None, env(vars)).expect_err("no key");
        assert!(matches!(err, VolumeError::NoKey { .. }), "{err:?}");
        assert!(err.to_string().contains(KEY_ENV), "{err}");
    }

    #[test]
    fn the_file_wins_over_the_environment_and_loses_its_newline() {
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), "from-file\n").expect("write");
        let k = RepoKey::resolve(Some(tmp.path()), env(&[(KEY_ENV, "from-env")])).expect("key");
        assert_eq!(k.expose(), "from-file");
        let k = RepoKey::resolve(None, env(&[(KEY_ENV, "from-env")])).expect("key");
        assert_eq!(k.expose(), "from-env");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = RepoKey::new("s3cr3t").expect("key");
        assert!(!format!("{k:?}").contains("s3cr3t"));
    }
}
