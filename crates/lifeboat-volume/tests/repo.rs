//! A repository in a local storage location: back up, back up again (incremental),
//! restore, and the key's refusals.

use std::path::Path;

use lifeboat_engine::storage::{Store, location_from_url};
use lifeboat_volume::{BackupRequest, Repo, RepoKey, StoreBackend, VolumeError};

fn repo(root: &Path, key: &str, rt: &tokio::runtime::Runtime) -> Repo {
    let bsl = location_from_url(&format!("file://{}", root.display())).expect("location");
    let store = Store::open(&bsl).expect("store");
    Repo::new(
        StoreBackend::new(store, "restic/app/", rt.handle().clone()),
        RepoKey::new(key).expect("key"),
    )
}

fn write_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("a.txt"), "alpha\n").expect("write");
    std::fs::write(dir.join("sub/b.bin"), vec![7u8; 300_000]).expect("write");
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("rel").display().to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_directory_comes_back_whole_and_a_second_backup_reads_only_what_changed() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let loc = tempfile::tempdir().expect("loc");
    let src = tempfile::tempdir().expect("src");
    write_tree(src.path());
    let r = repo(loc.path(), "k1", &rt);
    let first = r
        .backup(src.path(), &BackupRequest::default())
        .expect("backup");
    let sum = first.summary.expect("summary");
    assert_eq!((sum.files, sum.files_read), (2, 2));
    assert!(loc.path().join("restic/app/config").is_file());

    std::fs::write(src.path().join("c.txt"), "new\n").expect("write");
    let second = r
        .backup(src.path(), &BackupRequest::default())
        .expect("backup");
    assert_eq!(second.parent.as_deref(), Some(first.id.as_str()));
    let sum = second.summary.expect("summary");
    assert_eq!(
        (sum.files, sum.files_read),
        (3, 1),
        "only the new file is read"
    );

    let out = tempfile::tempdir().expect("out");
    let report = r.restore(&second.id[..8], out.path()).expect("restore");
    assert_eq!(report.files_restored, 3);
    assert_eq!(files(out.path()), files(src.path()));
    assert_eq!(r.snapshots().expect("list").len(), 2);
}

#[test]
fn the_wrong_key_is_refused_by_name_and_writes_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let loc = tempfile::tempdir().expect("loc");
    let src = tempfile::tempdir().expect("src");
    write_tree(src.path());
    repo(loc.path(), "right", &rt)
        .backup(src.path(), &BackupRequest::default())
        .expect("backup");
    let before = files(loc.path());
    std::fs::write(src.path().join("c.txt"), "new\n").expect("write");
    let err = repo(loc.path(), "wrong", &rt)
        .backup(src.path(), &BackupRequest::default())
        .expect_err("wrong key");
    assert!(matches!(err, VolumeError::WrongKey { .. }), "{err:?}");
    assert_eq!(files(loc.path()), before, "nothing was written");
}

#[test]
fn restoring_from_no_repository_says_so() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let loc = tempfile::tempdir().expect("loc");
    let out = tempfile::tempdir().expect("out");
    let err = repo(loc.path(), "k", &rt)
        .restore("latest", out.path())
        .expect_err("none");
    assert!(matches!(err, VolumeError::NoRepository { .. }), "{err:?}");
}

/// Regression (found by the node agent's end-to-end test): two volumes of one namespace
/// backed up at the same time into a repository that did not exist yet each created it;
/// the second replaced the first's config and key, and every later open failed ("Data
/// decryption failed, MAC check failed" on the first writer's index). Now one writer
/// creates it and the others open it: every snapshot of every writer reads back.
#[test]
fn regression_writers_that_find_no_repository_at_once_create_one_together() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let loc = tempfile::tempdir().expect("loc");
    let sources: Vec<tempfile::TempDir> = (0..4)
        .map(|i| {
            let d = tempfile::tempdir().expect("src");
            write_tree(d.path());
            std::fs::write(d.path().join("which"), format!("writer {i}\n")).expect("write");
            d
        })
        .collect();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| {
                let r = repo(loc.path(), "k1", &rt);
                s.spawn(move || {
                    r.backup(src.path(), &BackupRequest::default())
                        .expect("backup")
                        .id
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let keys = std::fs::read_dir(loc.path().join("restic/app/keys"))
        .expect("keys")
        .count();
    assert_eq!(keys, 1, "one key: one writer created the repository");
    assert!(
        !loc.path().join("restic/app.lifeboat-init").exists(),
        "the creation marker is removed"
    );
    let r = repo(loc.path(), "k1", &rt);
    assert_eq!(r.snapshots().expect("list").len(), 4);
    for (id, src) in ids.iter().zip(&sources) {
        let out = tempfile::tempdir().expect("out");
        r.restore(id, out.path()).expect("restore");
        assert_eq!(files(out.path()), files(src.path()));
    }
}
