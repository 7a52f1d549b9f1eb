//! lifeboat's user config file: storage and volume snapshot locations kept locally when no
//! cluster CRDs are used. The file holds velero.io/v1 BackupStorageLocation and
//! VolumeSnapshotLocation documents, so it can be applied to a cluster running Velero
//! unchanged.

use std::path::{Path, PathBuf};

use lifeboat_types::api::velero::{
    BackupStorageLocation, BackupStorageLocationSpec, ObjectStorageLocation, VolumeSnapshotLocation,
};
use lifeboat_types::format::document::{DocumentError, VeleroDocument, parse_documents};

/// Errors of the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("config file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("config file {} is not valid (fix or remove it)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DocumentError,
    },
    /// A location with this name exists.
    #[error("storage location {0:?} already exists; delete it first or choose another name")]
    Exists(String),
    /// No location has this name.
    #[error("storage location {0:?} not found; see `lifeboat location get`")]
    NotFound(String),
    /// A volume snapshot location with this name exists.
    #[error(
        "volume snapshot location {0:?} already exists; choose another name (or edit the config file)"
    )]
    SnapshotLocationExists(String),
}

/// The locations of the config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    path: PathBuf,
    /// The locations, in file order.
    pub locations: Vec<BackupStorageLocation>,
    /// The volume snapshot locations, in file order.
    pub snapshot_locations: Vec<VolumeSnapshotLocation>,
}

/// The config file's path: `$LIFEBOAT_CONFIG`, else `~/.config/lifeboat/locations.yaml`.
pub fn default_path() -> PathBuf {
    std::env::var_os("LIFEBOAT_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::config_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("lifeboat/locations.yaml")
        })
}

/// The embedded default storage: a local directory, `$LIFEBOAT_STORAGE_DIR` or
/// `~/.local/share/lifeboat/storage`.
pub fn embedded_default() -> BackupStorageLocation {
    let dir = std::env::var_os("LIFEBOAT_STORAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::data_local_dir()
                .unwrap_or_else(|| PathBuf::from("/tmp"))
                .join("lifeboat/storage")
        });
    BackupStorageLocation::new(
        "default",
        BackupStorageLocationSpec {
            provider: "file".into(),
            object_storage: ObjectStorageLocation {
                bucket: dir.to_string_lossy().into_owned(),
                ..Default::default()
            },
            default: true,
            ..Default::default()
        },
    )
}

impl Config {
    /// Loads the config at `path` (empty when the file does not exist).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        let docs = parse_documents(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        let mut locations = Vec::new();
        let mut snapshot_locations = Vec::new();
        for d in docs {
            match d {
                VeleroDocument::BackupStorageLocation(l) => locations.push(*l),
                VeleroDocument::VolumeSnapshotLocation(l) => snapshot_locations.push(*l),
                _ => {}
            }
        }
        Ok(Config {
            path: path.into(),
            locations,
            snapshot_locations,
        })
    }

    /// Writes the config back (atomically: a temporary file, then a rename).
    pub fn save(&self) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut text = String::new();
        for l in &self.locations {
            text.push_str("---\n");
            text.push_str(&serde_yaml_ng::to_string(l).unwrap_or_default());
        }
        for l in &self.snapshot_locations {
            text.push_str("---\n");
            text.push_str(&serde_yaml_ng::to_string(l).unwrap_or_default());
        }
        let tmp = self.path.with_extension("yaml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// Adds a location; a new default clears the others' default flag.
    pub fn add(&mut self, l: BackupStorageLocation) -> Result<(), ConfigError> {
        if self.get(&l.metadata.name).is_some() {
            return Err(ConfigError::Exists(l.metadata.name));
        }
        if l.spec.default {
            for o in &mut self.locations {
                o.spec.default = false;
            }
        }
        self.locations.push(l);
        Ok(())
    }

    /// Adds a volume snapshot location.
    pub fn add_snapshot_location(&mut self, l: VolumeSnapshotLocation) -> Result<(), ConfigError> {
        if self
            .snapshot_locations
            .iter()
            .any(|o| o.metadata.name == l.metadata.name)
        {
            return Err(ConfigError::SnapshotLocationExists(l.metadata.name));
        }
        self.snapshot_locations.push(l);
        Ok(())
    }

    /// Removes a location.
    pub fn remove(&mut self, name: &str) -> Result<BackupStorageLocation, ConfigError> {
        let i = self
            .locations
            .iter()
            .position(|l| l.metadata.name == name)
            .ok_or_else(|| ConfigError::NotFound(name.into()))?;
        Ok(self.locations.remove(i))
    }

    /// A location by name; `default` also finds the embedded default.
    pub fn get(&self, name: &str) -> Option<&BackupStorageLocation> {
        self.locations.iter().find(|l| l.metadata.name == name)
    }

    /// The location to use when none is named: the one marked default, else one named
    /// `default`, else the embedded local directory.
    pub fn default_location(&self) -> BackupStorageLocation {
        lifeboat_types::rules::location::default_index(
            self.locations
                .iter()
                .map(|l| (l.metadata.name.as_str(), l.spec.default)),
        )
        .map(|i| self.locations[i].clone())
        .unwrap_or_else(embedded_default)
    }

    /// Every configured location, and the embedded default when none of them is the
    /// default: what `backup get` and `location get` list.
    pub fn all_with_default(&self) -> Vec<BackupStorageLocation> {
        let mut v = self.locations.clone();
        let has_default = lifeboat_types::rules::location::default_index(
            v.iter().map(|l| (l.metadata.name.as_str(), l.spec.default)),
        )
        .is_some();
        if !has_default {
            v.push(embedded_default());
        }
        v
    }

    /// Resolves a location name (with the embedded default for `default`).
    pub fn resolve(&self, name: Option<&str>) -> Result<BackupStorageLocation, ConfigError> {
        match name {
            None => Ok(self.default_location()),
            Some(n) => match self.get(n) {
                Some(l) => Ok(l.clone()),
                None if n == "default" => Ok(self.default_location()),
                None => Err(ConfigError::NotFound(n.into())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_get_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/locations.yaml");
        let mut c = Config::load(&path).unwrap();
        assert_eq!(c.default_location().spec.provider, "file");
        let mut a = embedded_default();
        a.metadata.name = "a".into();
        a.spec.default = true;
        c.add(a.clone()).unwrap();
        assert!(matches!(c.add(a), Err(ConfigError::Exists(n)) if n == "a"));
        c.save().unwrap();
        let mut c2 = Config::load(&path).unwrap();
        assert_eq!(c2.default_location().metadata.name, "a");
        c2.remove("a").unwrap();
        assert!(matches!(c2.remove("a"), Err(ConfigError::NotFound(_))));
    }

    /// Issue 13: both kinds of location live in one file; saving keeps both.
    #[test]
    fn snapshot_locations_are_kept_beside_storage_locations() {
        use lifeboat_types::api::velero::VolumeSnapshotLocationSpec;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locations.yaml");
        let mut c = Config::load(&path).unwrap();
        c.add(embedded_default()).unwrap();
        let vsl = VolumeSnapshotLocation::new(
            "default",
            VolumeSnapshotLocationSpec {
                provider: "aws".into(),
                config: [("region".into(), "us-east-1".into())].into(),
                credential: None,
            },
        );
        c.add_snapshot_location(vsl.clone()).unwrap();
        assert!(matches!(
            c.add_snapshot_location(vsl.clone()),
            Err(ConfigError::SnapshotLocationExists(n)) if n == "default"
        ));
        c.save().unwrap();
        let c2 = Config::load(&path).unwrap();
        assert_eq!(c2.locations.len(), 1);
        assert_eq!(c2.snapshot_locations, [vsl]);
    }

    #[test]
    fn broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locations.yaml");
        std::fs::write(
            &path,
            "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nspec: [",
        )
        .unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("locations.yaml"), "{e}");
    }
}
