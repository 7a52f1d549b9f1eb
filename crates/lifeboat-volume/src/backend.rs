//! rustic_core's backend traits over lifeboat's storage layer: a restic repository is a
//! directory of a storage location (`<prefix>/restic/<namespace>`, or the root of an ad-hoc
//! location), reached through the same [`Store`] as backups and etcd snapshots — its
//! retries, timeouts, TLS and credentials, and the local directory's durable writes
//! (staged, synced, renamed into place, 0600).
//!
//! rustic_core is synchronous (it runs its own threads) and `Store` is async: every call
//! here blocks on the runtime given at construction. Callers therefore run repository work
//! on a blocking thread (`tokio::task::spawn_blocking`), never on a runtime worker.

use bytes::Bytes;
use lifeboat_engine::storage::{StorageError, Store};
use lifeboat_types::format::layout::{join_prefix, restic_file};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use tokio::runtime::Handle;

/// A restic repository in a directory of a storage location.
#[derive(Clone, Debug)]
pub struct StoreBackend {
    store: Store,
    /// The repository's directory, from the location's root (prefix included), ending in `/`.
    root: String,
    rt: Handle,
}

impl StoreBackend {
    /// The repository at `dir` (relative to the location's root, prefix included).
    pub fn new(store: Store, dir: &str, rt: Handle) -> StoreBackend {
        let mut root = dir.trim_start_matches('/').to_owned();
        if !root.is_empty() && !root.ends_with('/') {
            root.push('/');
        }
        StoreBackend { store, root, rt }
    }

    fn path(&self, tpe: FileType, id: &Id) -> String {
        join_prefix(&self.root, &restic_file(tpe.dirname(), &id.to_hex()))
    }

    fn dir(&self, tpe: FileType) -> String {
        join_prefix(&self.root, &format!("{}/", tpe.dirname()))
    }

    fn block<T>(&self, f: impl Future<Output = Result<T, StorageError>>) -> RusticResult<T> {
        self.rt.block_on(f).map_err(to_rustic)
    }

    /// The object that claims the creation of this repository: beside its directory
    /// (`restic/<namespace>.lifeboat-init`), never inside, where restic would read it.
    pub fn init_marker(&self) -> String {
        format!("{}.lifeboat-init", self.root.trim_end_matches('/'))
    }

    /// Claims the creation of the repository: `true` when this writer made the marker
    /// (it creates the repository, then [`release_init`](Self::release_init)s), `false`
    /// when another writer holds it (created conditionally: S3 `If-None-Match`, a local
    /// directory's rename without replacing).
    pub fn claim_init(&self, who: &str) -> Result<bool, StorageError> {
        match self.rt.block_on(
            self.store
                .create(&self.init_marker(), Bytes::from(who.to_owned())),
        ) {
            Ok(()) => Ok(true),
            Err(StorageError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the creation marker.
    pub fn release_init(&self) -> Result<(), StorageError> {
        self.rt.block_on(self.store.delete(&self.init_marker()))
    }
}

/// A storage error as rustic_core carries it; its text names the location, the object and
/// what to do, as every storage error of lifeboat does.
fn to_rustic(e: StorageError) -> Box<RusticError> {
    let text = e.to_string();
    RusticError::with_source(ErrorKind::Backend, text, e)
}

impl ReadBackend for StoreBackend {
    fn location(&self) -> String {
        format!("{}:/{}", self.store.name(), self.root)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let path = join_prefix(&self.root, "config");
            return self.block(async {
                Ok(if self.store.exists(&path).await? {
                    let size = self.store.size(&path).await?;
                    vec![(Id::default(), u32::try_from(size).unwrap_or(u32::MAX))]
                } else {
                    vec![]
                })
            });
        }
        let dir = self.dir(tpe);
        let files = self.block(self.store.list_sizes(&dir))?;
        Ok(files
            .into_iter()
            .filter_map(|(rel, size)| {
                // `data/` holds packs one directory down (`data/ab/ab12...`); a staged or
                // foreign file whose name is not an id is not part of the repository.
                let name = rel.rsplit('/').next()?;
                let id = name.parse::<Id>().ok()?;
                Some((id, u32::try_from(size).unwrap_or(u32::MAX)))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.block(self.store.read(&path))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.block(
            self.store
                .read_range(&path, u64::from(offset), u64::from(length)),
        )
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id)
    }
}

impl WriteBackend for StoreBackend {
    fn create(&self) -> RusticResult<()> {
        // Object stores and the local store make directories as objects are written.
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let parts = content.into_vec();
        let data = if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            Bytes::from(parts.concat())
        };
        self.block(self.store.write(&path, data))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        self.block(self.store.delete(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> StoreBackend {
        let bsl = lifeboat_engine::storage::location_from_url(&format!("file://{}", dir.display()))
            .expect("location");
        StoreBackend::new(
            Store::open(&bsl).expect("store"),
            "restic/app",
            rt.handle().clone(),
        )
    }

    #[test]
    fn files_land_where_restic_keeps_them_and_list_back_with_sizes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let be = backend(tmp.path(), &rt);
        let id: Id = "ab".repeat(32).parse().expect("id");
        be.write_bytes(
            FileType::Pack,
            &id,
            false,
            Bytes::from_static(b"pack!").into(),
        )
        .expect("write pack");
        be.write_bytes(
            FileType::Snapshot,
            &id,
            true,
            Bytes::from_static(b"{}").into(),
        )
        .expect("write snapshot");
        assert!(
            tmp.path()
                .join(format!("restic/app/data/ab/{}", "ab".repeat(32)))
                .is_file()
        );
        assert!(
            tmp.path()
                .join(format!("restic/app/snapshots/{}", "ab".repeat(32)))
                .is_file()
        );
        assert_eq!(
            be.list_with_size(FileType::Pack).expect("list"),
            vec![(id, 5)]
        );
        assert_eq!(be.list_with_size(FileType::Index).expect("list"), vec![]);
        assert_eq!(
            be.read_partial(FileType::Pack, &id, false, 1, 3)
                .expect("range"),
            Bytes::from_static(b"ack")
        );
        be.remove(FileType::Pack, &id, false).expect("remove");
        assert_eq!(be.list_with_size(FileType::Pack).expect("list"), vec![]);
    }

    #[test]
    fn a_file_that_is_not_an_id_is_not_listed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let be = backend(tmp.path(), &rt);
        std::fs::create_dir_all(tmp.path().join("restic/app/index")).expect("mkdir");
        std::fs::write(tmp.path().join("restic/app/index/README"), "x").expect("write");
        assert_eq!(be.list_with_size(FileType::Index).expect("list"), vec![]);
    }
}
