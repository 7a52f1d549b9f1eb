//! Stored etcd snapshots come back (issue 13, item 4): `download` writes exactly what was
//! stored (0600, checked, never over a file), `restore --storage-location` restores the
//! newest one into a member etcd serves, gzip-compressed snapshots are read, a damaged
//! stored snapshot is refused with nothing written, and `list --max-age --min-size`
//! passes or fails with the project's exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::etcd_restore::{Member, all_keys, etcdctl, restore_args};
use crate::s3::{s3_endpoint, s3_location};
use crate::support::*;

fn etcd_endpoint() -> String {
    std::env::var("LIFEBOAT_IT_ETCD").expect(NEEDS)
}

/// Runs a boto3 snippet on moto with `args`; panics on failure.
fn boto(script: &str, args: &[&str]) {
    let prelude = format!(
        "import boto3, sys\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n",
        s3_endpoint()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_object(bucket: &str, key: &str, to: &Path) -> Vec<u8> {
    boto(
        "s3.download_file(sys.argv[1], sys.argv[2], sys.argv[3])",
        &[bucket, key, to.to_str().unwrap()],
    );
    std::fs::read(to).unwrap()
}

fn put_object(bucket: &str, key: &str, bytes: &[u8], scratch: &Path) {
    std::fs::write(scratch, bytes).unwrap();
    boto(
        "s3.upload_file(sys.argv[3], sys.argv[1], sys.argv[2])",
        &[bucket, key, scratch.to_str().unwrap()],
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `etcd snapshot save` from `endpoint` into `location`, as `cluster`'s snapshot `name`.
pub fn save(env: &Env, endpoint: &str, location: &str, cluster: &str, name: &str) {
    env.ok(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        endpoint,
        "--storage-location",
        location,
        "--cluster-name",
        cluster,
        "--name",
        name,
    ]);
}

/// Files in `dir` (names), sorted: a refused download or restore leaves none behind.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn download_writes_what_was_stored_privately_and_refuses_damage() {
    let env = Env::new();
    // moto keeps buckets between runs: one per run.
    let bucket = &format!("lifeboat-it-etcd-download-{}", std::process::id());
    s3_location(&env, "s3", bucket, "p");
    save(&env, &etcd_endpoint(), "s3", "it", "e1.db");
    let scratch = env.dir.path().join("scratch");
    let stored = get_object(bucket, "p/metadata/etcd/it/e1.db", &scratch);

    // Into ./e1.db: byte for byte what the bucket holds, owner-only.
    let dl = env.dir.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    let out = env.ok(&[
        "etcd",
        "snapshot",
        "download",
        "e1.db",
        "--storage-location",
        "s3",
        "-o",
        dl.to_str().unwrap(),
    ]);
    assert!(
        out.contains("p/metadata/etcd/it/e1.db") && out.contains("sha256 trailer matches"),
        "{out}"
    );
    let file = dl.join("e1.db");
    assert!(std::fs::read(&file).unwrap() == stored);
    assert_eq!(mode(&file), 0o600);

    // An existing file is left alone unless --force.
    std::fs::write(&file, b"mine").unwrap();
    let args = [
        "etcd",
        "snapshot",
        "download",
        "--latest",
        "--storage-location",
        "s3",
        "-o",
        file.to_str().unwrap(),
    ];
    let err = env.fails(&args);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    let mut forced = args.to_vec();
    forced.push("--force");
    env.ok(&forced);
    assert!(std::fs::read(&file).unwrap() == stored);
    assert_eq!(mode(&file), 0o600);

    // Stored gzip-compressed: kept as stored, or decompressed to the snapshot itself.
    let gz = gzip(&stored);
    put_object(bucket, "p/metadata/etcd/it/e1.db.gz", &gz, &scratch);
    env.ok(&[
        "etcd",
        "snapshot",
        "download",
        "e1.db.gz",
        "--storage-location",
        "s3",
        "-o",
        dl.to_str().unwrap(),
    ]);
    assert!(std::fs::read(dl.join("e1.db.gz")).unwrap() == gz);
    let plain = dl.join("plain.db");
    let out = env.ok(&[
        "etcd",
        "snapshot",
        "download",
        "e1.db.gz",
        "--storage-location",
        "s3",
        "--decompress",
        "-o",
        plain.to_str().unwrap(),
    ]);
    assert!(out.contains("decompressed from gzip"), "{out}");
    assert!(std::fs::read(&plain).unwrap() == stored);
    assert_eq!(mode(&plain), 0o600);

    // Damaged in the bucket: a flipped bit, a cut, a cut gzip. Refused naming the object
    // and the fix; no file, no temporary file.
    let before = names_in(&dl);
    let mut flipped = stored.clone();
    flipped[stored.len() / 3] ^= 0x08;
    let mut cut_gz = gz.clone();
    cut_gz.truncate(gz.len() - 100);
    for (name, bytes, want) in [
        ("flipped.db", flipped, "hash mismatch"),
        ("cut.db", stored[..stored.len() / 2].to_vec(), "truncated"),
        ("cut.db.gz", cut_gz, "gzip stream is damaged or truncated"),
    ] {
        put_object(
            bucket,
            &format!("p/metadata/etcd/it/{name}"),
            &bytes,
            &scratch,
        );
        for decompress in [false, true] {
            let mut args = vec![
                "etcd",
                "snapshot",
                "download",
                name,
                "--storage-location",
                "s3",
                "-o",
                dl.to_str().unwrap(),
            ];
            if decompress {
                args.push("--decompress");
            }
            let err = env.fails(&args);
            assert!(
                err.contains(&format!(
                    "cannot download etcd snapshot p/metadata/etcd/it/{name} from storage location \"s3\"; nothing was written"
                )) && err.contains(want)
                    && err.contains("use another snapshot (`lifeboat etcd snapshot list`)"),
                "{name}: {err}"
            );
            assert_eq!(names_in(&dl), before, "{name}");
        }
    }

    // A name that is not stored: named, with where to look.
    let err = env.fails(&[
        "etcd",
        "snapshot",
        "download",
        "nope.db",
        "--storage-location",
        "s3",
    ]);
    assert!(
        err.contains("no etcd snapshot named \"nope.db\"")
            && err.contains("lifeboat etcd snapshot list"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_from_a_location_gzip_and_damage() {
    let env = Env::new();
    let dir = env.dir.path();
    let bucket = &format!("lifeboat-it-etcd-restore-{}", std::process::id());
    s3_location(&env, "s3", bucket, "p");
    // A source etcd whose keys change between two stored snapshots.
    let src = Member::new(dir, "src");
    let src_log = dir.join("src.log");
    let src_proc = src.start(&format!("src={}", src.peer), &src_log);
    src.wait_healthy(&src_log);
    etcdctl(&src.client, &["put", "/app/a", "1"]).unwrap();
    save(&env, &src.client, "s3", "src", "old.db");
    etcdctl(&src.client, &["put", "/app/b", "2"]).unwrap();
    etcdctl(&src.client, &["put", "/app/a", "changed"]).unwrap();
    // Stored a second later: the newest by the time the bucket gives it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    save(&env, &src.client, "s3", "src", "new.db");
    let want = all_keys(&src.client);
    drop(src_proc);

    // --latest: new.db, restored into a member etcd starts on and serves.
    let m = Member::new(dir, "r1");
    let cluster = format!("r1={}", m.peer);
    let data = m.data.to_str().unwrap().to_owned();
    let mut args = vec!["etcd"];
    args.extend(restore_args("--latest", &data, &m, &cluster, "from-s3"));
    args.extend(["--storage-location", "s3"]);
    let out = env.ok(&args);
    assert!(
        out.contains("Restored p/metadata/etcd/src/new.db of storage location \"s3\""),
        "{out}"
    );
    let log = dir.join("r1.log");
    let p = m.start(&cluster, &log);
    m.wait_healthy(&log);
    assert_eq!(all_keys(&m.client), want);
    drop(p);
    // Nothing but the data directory was left next to it.
    let beside: Vec<String> = names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(".lifeboat"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");

    // The same snapshot gzip-compressed, local and stored: the same member database.
    let scratch = dir.join("scratch");
    let stored = get_object(bucket, "p/metadata/etcd/src/new.db", &scratch);
    let gz = dir.join("new.db.gz");
    std::fs::write(&gz, gzip(&stored)).unwrap();
    put_object(
        bucket,
        "p/metadata/etcd/src/new.db.gz",
        &gzip(&stored),
        &scratch,
    );
    let restore_to =
        |name: &str, snapshot: &str, location: bool| -> (PathBuf, std::process::Output) {
            let data = dir.join(name);
            let d = data.to_str().unwrap().to_owned();
            let mut args = vec!["etcd"];
            args.extend(restore_args(snapshot, &d, &m, &cluster, "from-s3"));
            if location {
                args.extend(["--storage-location", "s3"]);
            }
            let out = env.run(&args);
            (data, out)
        };
    // (r1.etcd has been written by etcd since: compare with a fresh restore.)
    let db = |d: &Path| std::fs::read(d.join("member/snap/db")).unwrap();
    let (plain, out) = restore_to("plain.etcd", "new.db", true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (local_gz, out) = restore_to("local-gz.etcd", gz.to_str().unwrap(), false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (stored_gz, out) = restore_to("stored-gz.etcd", "new.db.gz", true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        db(&local_gz) == db(&plain),
        "a local .gz restores differently"
    );
    assert!(
        db(&stored_gz) == db(&plain),
        "a stored .gz restores differently"
    );

    // Damaged in the bucket, plain or gzip: refused naming the object; no data directory,
    // no temporary file.
    let mut flipped = stored.clone();
    flipped[stored.len() / 2] ^= 0x01;
    put_object(bucket, "p/metadata/etcd/src/bad.db", &flipped, &scratch);
    put_object(
        bucket,
        "p/metadata/etcd/src/bad.db.gz",
        &gzip(&flipped),
        &scratch,
    );
    for name in ["bad.db", "bad.db.gz"] {
        let (data, out) = restore_to("bad.etcd", name, true);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "refusing to restore etcd snapshot p/metadata/etcd/src/{name} from storage location \"s3\"; nothing was written to"
            )) && err.contains("hash mismatch"),
            "{err}"
        );
        assert!(!data.exists());
        assert!(
            !names_in(dir).iter().any(|n| n.starts_with(".lifeboat")),
            "{:?}",
            names_in(dir)
        );
    }
    // A used data directory is refused before anything is fetched.
    let (_, out) = restore_to("r1.etcd", "new.db", true);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn list_checks_the_age_and_size_of_the_newest_snapshot() {
    let env = Env::new();
    let list = |extra: &[&str]| {
        let mut args = vec!["etcd", "snapshot", "list"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // Nothing stored: the check fails (exit 1), saying so.
    let out = list(&["--max-age", "24h", "--min-size", "1MB"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exists: no etcd snapshot is stored"),
        "{}",
        stderr(&out)
    );

    save(&env, &etcd_endpoint(), "default", "it", "old.db");
    save(&env, &etcd_endpoint(), "default", "it", "new.db");
    let dir = env.storage().join("metadata/etcd/it");
    let size = std::fs::metadata(dir.join("new.db")).unwrap().len();
    // The dev cluster's snapshot is a few hundred KB (a production one is far over 1 MB).
    assert!(size > 100_000, "a Kubernetes etcd snapshot: {size} bytes");
    // old.db is a day old; new.db is the newest.
    let day_ago = std::time::SystemTime::now()
        .checked_sub(std::time::Duration::from_secs(25 * 3600))
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(dir.join("old.db"))
        .unwrap()
        .set_modified(day_ago)
        .unwrap();

    // The DR guide's validator ("younger than 24 h and larger than 1 MB"), scaled to the
    // dev cluster.
    let out = list(&["--max-age", "24h", "--min-size", "100KB"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("max-age") && table.contains("min-size") && !table.contains("FAILED"),
        "{table}"
    );
    // Exactly its size passes; a byte more fails, naming the check.
    let exact = format!("{size}");
    let out = list(&["--min-size", &exact, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let more = format!("{}B", size + 1);
    let out = list(&["--min-size", &more, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed: min-size:") && stderr(&out).contains("smaller than"),
        "{}",
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"]["ok"], false);
    assert_eq!(v["verdict"]["newest"]["name"], "new.db");
    assert_eq!(v["verdict"]["checks"][1]["check"], "min-size");
    assert_eq!(v["verdict"]["checks"][1]["ok"], false);
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 2);

    // The newest a day old: --max-age 24h fails, 26h passes.
    std::fs::File::options()
        .write(true)
        .open(dir.join("new.db"))
        .unwrap()
        .set_modified(day_ago)
        .unwrap();
    let out = list(&["--max-age", "24h"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed: max-age: stored 25h")
            && stderr(&out).contains("older than 24h0m0s"),
        "{}",
        stderr(&out)
    );
    let out = list(&["--max-age", "26h", "--min-size", "64KiB"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A second cluster in the location: whose newest? Asked, not guessed.
    save(&env, &etcd_endpoint(), "default", "other", "o.db");
    let out = list(&["--max-age", "24h"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("several clusters are stored in the location (it, other)")
            && stderr(&out).contains("--cluster-name"),
        "{}",
        stderr(&out)
    );
    let out = list(&["--max-age", "24h", "--cluster-name", "other"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = list(&["--max-age", "24h", "--cluster-name", "it"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A bad size is a usage error.
    let out = list(&["--min-size", "1XB"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
