//! etcd snapshot files read without etcd: `status` equals etcdctl's, `verify` catches damage.

use std::process::Command;

use crate::support::*;

fn etcd_endpoint() -> String {
    std::env::var("LIFEBOAT_IT_ETCD").expect(NEEDS)
}

fn etcdctl(args: &[&str]) -> String {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn status_matches_etcdctl_and_verify_catches_damage() {
    let env = Env::new();
    let snap = env.dir.path().join("snap.db");
    etcdctl(&[
        "--endpoints",
        &etcd_endpoint(),
        "snapshot",
        "save",
        snap.to_str().unwrap(),
    ]);

    let ours: serde_json::Value = serde_json::from_str(&env.ok(&[
        "etcd",
        "snapshot",
        "status",
        snap.to_str().unwrap(),
        "-o",
        "json",
    ]))
    .unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&etcdctl(&[
        "snapshot",
        "status",
        snap.to_str().unwrap(),
        "-w",
        "json",
    ]))
    .unwrap();
    assert_eq!(ours, theirs);
    assert!(
        ours["totalKey"].as_u64().unwrap() > 100,
        "a Kubernetes etcd has many keys: {ours}"
    );
    let table = env.ok(&["etcd", "snapshot", "status", snap.to_str().unwrap()]);
    assert!(
        table.contains(&format!("{:x}", ours["hash"].as_u64().unwrap())),
        "{table}"
    );

    let out = env.ok(&["etcd", "snapshot", "verify", snap.to_str().unwrap()]);
    assert!(
        out.contains("intact") && out.contains("sha256 trailer matches"),
        "{out}"
    );

    let data = std::fs::read(&snap).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = env.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let truncated = write("truncated.db", &data[..data.len() / 2]);
    let err = env.fails(&["etcd", "snapshot", "verify", &truncated]);
    assert!(err.contains("truncated"), "{err}");
    let mut flipped = data.clone();
    flipped[data.len() / 3] ^= 0x40;
    let flipped = write("flipped.db", &flipped);
    let err = env.fails(&["etcd", "snapshot", "verify", &flipped]);
    assert!(err.contains("hash mismatch"), "{err}");
    let not_etcd = write("not-etcd.db", &vec![0x42u8; 8192 + 32]);
    let err = env.fails(&["etcd", "snapshot", "verify", &not_etcd, "--skip-hash-check"]);
    assert!(err.contains("not an etcd snapshot"), "{err}");
    // A member's raw db has no trailer: refused unless asked, then walked.
    let raw = write("raw.db", &data[..data.len() - 32]);
    let err = env.fails(&["etcd", "snapshot", "verify", &raw]);
    assert!(err.contains("no sha256 trailer"), "{err}");
    env.ok(&["etcd", "snapshot", "verify", &raw, "--skip-hash-check"]);
    // Truncated inside the database itself (trailer skipped): the tree walk notices.
    let cut = write("cut.db", &data[..(data.len() - 32) / 2]);
    let err = env.fails(&["etcd", "snapshot", "verify", &cut, "--skip-hash-check"]);
    assert!(
        err.contains("truncated") || err.contains("integrity"),
        "{err}"
    );
}
