//! `backup replicate` (issue 16, item 6): backups copied between locations — from a
//! directory to another and to S3 on moto — byte for byte, each backup's record last,
//! idempotently, never replacing what the destination holds; a copy read by a standby
//! restores.

use std::path::Path;

use serde_json::Value;

use crate::s3::{boto, list_keys, s3_location};
use crate::support::*;

const NS: &str = "replicate-shop";

fn app() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {NS}}}\ndata: {{color: blue}}\n"
    )
}

fn replicate(env: &Env, code: i32, args: &[&str]) -> Value {
    let mut all = vec!["backup", "replicate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = env.run(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{all:?}:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn outcomes(r: &Value) -> Vec<(String, String)> {
    r["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// From a directory to another: the copy is byte for byte (backups, etcd snapshots,
/// a volume repository without its locks); a second run copies nothing; a copy cut
/// short before its record is completed by the next run; a different backup of the
/// same name at the destination is a conflict, left as it is; a dry run writes nothing;
/// a restore reads the copy.
#[test]
#[ignore = "needs the dev cluster: run scripts/test.sh"]
fn backups_are_copied_checked_and_never_replaced() {
    let env = Env::new();
    env.delete_namespace(NS);
    env.apply(&app());
    let from = env.storage();
    std::fs::create_dir_all(&from).unwrap();
    let to = env.dir.path().join("copy");
    std::fs::create_dir_all(&to).unwrap();
    let (from_s, to_s) = (from.to_str().unwrap(), to.to_str().unwrap());
    for b in ["rep-1", "rep-2"] {
        env.ok(&[
            "backup",
            "create",
            b,
            "--include-namespaces",
            NS,
            "--storage-location",
            from_s,
            "--wait",
        ]);
    }
    // Other trees the copy carries: stored etcd snapshots and a volume repository (as
    // files: the copy does not read them), whose lock stays behind.
    for (rel, bytes) in [
        (
            "metadata/etcd/c1/etcd-snapshot-20260101000000.db",
            &b"snapshot bytes"[..],
        ),
        ("restic/shop/config", b"repository config"),
        ("restic/shop/data/ab/abcd", b"pack"),
        ("restic/shop/locks/1234", b"a lock of the source's"),
    ] {
        let p = from.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    // A dry run writes nothing.
    let r = replicate(&env, 0, &["--from", from_s, "--to", to_s, "--dry-run"]);
    assert_eq!(
        outcomes(&r),
        [
            ("rep-1".into(), "wouldCopy".into()),
            ("rep-2".into(), "wouldCopy".into())
        ]
    );
    assert!(files_under(&to).is_empty());

    let r = replicate(&env, 0, &["--from", from_s, "--to", to_s]);
    assert_eq!(
        outcomes(&r),
        [
            ("rep-1".into(), "copied".into()),
            ("rep-2".into(), "copied".into())
        ],
        "{r:#}"
    );
    assert_eq!(r["etcd"]["copied"], 1);
    assert_eq!(
        r["volumes"]["copied"], 2,
        "config and the pack, not the lock"
    );
    let mut source = files_under(&from);
    source.retain(|(rel, _)| !rel.contains("locks/") && !rel.starts_with("restores/"));
    assert_eq!(files_under(&to), source, "byte for byte");

    // Again: nothing to do.
    let r = replicate(&env, 0, &["--from", from_s, "--to", to_s]);
    assert_eq!(
        outcomes(&r),
        [
            ("rep-1".into(), "alreadyThere".into()),
            ("rep-2".into(), "alreadyThere".into())
        ]
    );
    assert_eq!(r["etcd"]["alreadyThere"], 1);

    // A copy cut short (its record not written yet) is completed.
    std::fs::remove_file(to.join("backups/rep-2/velero-backup.json")).unwrap();
    let r = replicate(
        &env,
        0,
        &["--from", from_s, "--to", to_s, "--backup", "rep-2"],
    );
    assert_eq!(outcomes(&r), [("rep-2".into(), "copied".into())], "{r:#}");
    assert_eq!(r["backups"][0]["files"], 1, "only the record was missing");

    // Another backup of the same name at the destination: left alone, exit 3.
    let theirs = to.join("backups/rep-1/velero-backup.json");
    let mut other: Value = serde_json::from_slice(&std::fs::read(&theirs).unwrap()).unwrap();
    other["metadata"]["uid"] = "someone-else".into();
    let other = serde_json::to_vec(&other).unwrap();
    std::fs::write(&theirs, &other).unwrap();
    let r = replicate(
        &env,
        3,
        &["--from", from_s, "--to", to_s, "--no-etcd", "--no-volumes"],
    );
    assert_eq!(outcomes(&r)[0], ("rep-1".into(), "conflict".into()));
    assert_eq!(std::fs::read(&theirs).unwrap(), other, "not replaced");
    std::fs::write(
        &theirs,
        std::fs::read(from.join("backups/rep-1/velero-backup.json")).unwrap(),
    )
    .unwrap();

    // The same place twice is refused.
    let err = env.fails(&["backup", "replicate", "--from", from_s, "--to", from_s]);
    assert!(err.contains("are the same place"), "{err}");

    // A standby reading the copy restores from it.
    env.kubectl(&["delete", "namespace", NS, "--wait=true"], None);
    env.ok(&[
        "restore",
        "create",
        "from-copy",
        "--from-backup",
        "rep-2",
        "--storage-location",
        to_s,
        "--wait",
    ]);
    assert_eq!(
        env.kubectl(
            &[
                "-n",
                NS,
                "get",
                "configmap",
                "settings",
                "-o",
                "jsonpath={.data.color}"
            ],
            None
        ),
        "blue"
    );
    env.kubectl(&["delete", "namespace", NS, "--wait=false"], None);
}

/// To another region's bucket (S3 on moto): every object of the backup is there under
/// the destination's prefix, and `backup get` there lists it.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backups_are_copied_to_s3() {
    let env = Env::new();
    let ns = "replicate-s3";
    env.delete_namespace(ns);
    env.apply(&app().replace(NS, ns));
    let from = env.storage();
    std::fs::create_dir_all(&from).unwrap();
    env.ok(&[
        "backup",
        "create",
        "rep-s3",
        "--include-namespaces",
        ns,
        "--storage-location",
        from.to_str().unwrap(),
        "--wait",
    ]);
    // A bucket of this run's own (moto keeps buckets between runs of the tests).
    let bucket = format!("replicate-west-{}", std::process::id());
    s3_location(&env, "west", &bucket, "cluster-a");
    let r = replicate(
        &env,
        0,
        &[
            "--from",
            from.to_str().unwrap(),
            "--to",
            "west",
            "--no-volumes",
        ],
    );
    assert_eq!(outcomes(&r), [("rep-s3".into(), "copied".into())], "{r:#}");
    let keys = list_keys(&bucket);
    let local: Vec<String> = files_under(&from.join("backups/rep-s3"))
        .into_iter()
        .map(|(rel, _)| format!("cluster-a/backups/rep-s3/{rel}"))
        .collect();
    for k in &local {
        assert!(keys.contains(k), "{k} not in {keys:?}");
    }
    let tarball = boto(
        "import hashlib\nprint(hashlib.sha256(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read()).hexdigest())",
        &[&bucket, "cluster-a/backups/rep-s3/rep-s3.tar.gz"],
    );
    let here = std::fs::read(from.join("backups/rep-s3/rep-s3.tar.gz")).unwrap();
    assert_eq!(tarball.trim(), sha256_hex(&here));
    let listed = env.ok(&["backup", "get", "--storage-location", "west"]);
    assert!(listed.contains("rep-s3"), "{listed}");
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(b))
}
