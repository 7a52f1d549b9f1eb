//! `etcd snapshot restore` (issue 4): the member directory is what etcdctl writes, a real
//! etcd 3.4 starts on it with exactly the new members and serves every key, writes after
//! the restore survive a restart (the consistent index was reset), three restored members
//! form a cluster, and a kube-apiserver on a restored etcd serves the snapshot's objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

pub(crate) fn etcdctl(endpoint: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--command-timeout", "5s"])
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A child process (etcd, kube-apiserver) stopped when dropped.
pub(crate) struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One etcd member: name, data dir, client and peer URLs.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) data: PathBuf,
    pub(crate) client: String,
    pub(crate) peer: String,
}

impl Member {
    pub(crate) fn new(dir: &Path, name: &str) -> Member {
        Member {
            name: name.into(),
            data: dir.join(format!("{name}.etcd")),
            client: format!("http://127.0.0.1:{}", free_port()),
            peer: format!("http://127.0.0.1:{}", free_port()),
        }
    }

    /// Starts etcd on this member's data dir (the cluster flags only matter for a new dir).
    pub(crate) fn start(&self, initial_cluster: &str, log: &Path) -> Proc {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("etcd")
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--listen-client-urls", &self.client])
            .args(["--advertise-client-urls", &self.client])
            .args(["--listen-peer-urls", &self.peer])
            .args(["--initial-advertise-peer-urls", &self.peer])
            .args(["--initial-cluster", initial_cluster])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc(child)
    }

    pub(crate) fn wait_healthy(&self, log: &Path) {
        for _ in 0..150 {
            if etcdctl(&self.client, &["endpoint", "health"]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd {} did not become healthy:\n{}",
            self.name,
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// Every key and value etcd serves (`get --prefix ""`), decoded.
pub(crate) fn all_keys(endpoint: &str) -> BTreeMap<String, String> {
    let out = etcdctl(endpoint, &["get", "", "--prefix", "-w", "json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let b64 = |s: &serde_json::Value| {
        use base64::Engine as _;
        String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(s.as_str().unwrap())
                .unwrap(),
        )
        .into_owned()
    };
    v["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| (b64(&kv["key"]), b64(&kv["value"])))
                .collect()
        })
        .unwrap_or_default()
}

/// Members as `member list -w json` gives them: (name, peer URLs), sorted.
fn member_list(endpoint: &str) -> Vec<(String, Vec<String>)> {
    let out = etcdctl(endpoint, &["member", "list", "-w", "json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut m: Vec<(String, Vec<String>)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["peerURLs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    m.sort();
    m
}

type Buckets = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn buckets(db: &Path) -> Buckets {
    let mut out = Buckets::new();
    lifeboat_etcd::snapshot::for_each_key(db, &mut |b, k, v| {
        out.entry(String::from_utf8_lossy(b).into_owned())
            .or_default()
            .insert(k.to_vec(), v.to_vec());
    })
    .unwrap();
    out
}

pub(crate) fn restore_args<'a>(
    snap: &'a str,
    data: &'a str,
    m: &'a Member,
    cluster: &'a str,
    token: &'a str,
) -> Vec<&'a str> {
    vec![
        "snapshot",
        "restore",
        snap,
        "--data-dir",
        data,
        "--name",
        &m.name,
        "--initial-cluster",
        cluster,
        "--initial-advertise-peer-urls",
        &m.peer,
        "--initial-cluster-token",
        token,
    ]
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_is_what_etcdctl_writes_and_etcd_serves_it_across_restarts() {
    let env = Env::new();
    let dir = env.dir.path();
    // A source etcd with keys, overwrites, deletes and a lease.
    let src = Member::new(dir, "src");
    let src_log = dir.join("src.log");
    let src_proc = src.start(&format!("src={}", src.peer), &src_log);
    src.wait_healthy(&src_log);
    for i in 0..200 {
        etcdctl(
            &src.client,
            &[
                "put",
                &format!("/app/k{i:03}"),
                &format!("v{i}").repeat(i % 50 + 1),
            ],
        )
        .unwrap();
    }
    for i in 0..20 {
        etcdctl(
            &src.client,
            &["put", &format!("/app/k{i:03}"), "overwritten"],
        )
        .unwrap();
        etcdctl(&src.client, &["del", &format!("/app/k{:03}", 100 + i)]).unwrap();
    }
    let big = "x".repeat(20_000);
    etcdctl(&src.client, &["put", "/app/big", &big]).unwrap();
    let before = all_keys(&src.client);
    assert_eq!(before.len(), 181);

    let snap = dir.join("s.db");
    env.ok(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        &src.client,
        "--to",
        snap.to_str().unwrap(),
    ]);
    drop(src_proc);

    let new = Member::new(dir, "r1");
    let cluster = format!("r1={}", new.peer);
    let ours = new.data.clone();
    let theirs = dir.join("theirs.etcd");
    let mut args = vec!["etcd"];
    args.extend(restore_args(
        snap.to_str().unwrap(),
        ours.to_str().unwrap(),
        &new,
        &cluster,
        "restored-1",
    ));
    let out = env.ok(&args);
    assert!(out.contains("Restored") && out.contains("r1"), "{out}");
    etcdctl(
        "http://127.0.0.1:1",
        &restore_args(
            snap.to_str().unwrap(),
            theirs.to_str().unwrap(),
            &new,
            &cluster,
            "restored-1",
        ),
    )
    .unwrap();

    // The WAL and the raft snapshot are byte-for-byte etcdctl's.
    let wal = "member/wal/0000000000000000-0000000000000000.wal";
    let snapfile = "member/snap/0000000000000001-0000000000000001.snap";
    for f in [wal, snapfile] {
        assert!(
            std::fs::read(ours.join(f)).unwrap() == std::fs::read(theirs.join(f)).unwrap(),
            "{f} differs from etcdctl's"
        );
    }
    // The database: every bucket equal, except that the members buckets hold exactly the
    // new member (etcdctl 3.4 leaves the old cluster's entries there).
    let mut a = buckets(&ours.join("member/snap/db"));
    let mut b = buckets(&theirs.join("member/snap/db"));
    let members = a.remove("members").unwrap_or_default();
    assert_eq!(members.len(), 1, "{members:?}");
    let (id, value) = members.into_iter().next().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&value).unwrap();
    assert_eq!(value["name"], "r1");
    assert_eq!(value["peerURLs"][0], new.peer.as_str());
    assert_eq!(
        format!("{:x}", value["id"].as_u64().unwrap()).into_bytes(),
        id
    );
    assert!(a.remove("members_removed").unwrap_or_default().is_empty());
    b.remove("members");
    b.remove("members_removed");
    assert_eq!(a, b, "database contents differ from etcdctl's restore");
    assert_eq!(
        a["meta"][b"consistent_index".as_slice()],
        1u64.to_be_bytes()
    );

    // Real etcd starts on it, serves every key, and lists exactly the new member.
    let log = dir.join("r1.log");
    let p = new.start(&cluster, &log);
    new.wait_healthy(&log);
    assert_eq!(all_keys(&new.client), before);
    assert_eq!(
        member_list(&new.client),
        vec![("r1".to_string(), vec![new.peer.clone()])]
    );
    // A write after the restore survives a restart: with the old consistent index etcd
    // would skip applying it to the database and it would be gone after the restart.
    etcdctl(&new.client, &["put", "/after/restore", "kept"]).unwrap();
    drop(p);
    let log2 = dir.join("r1-again.log");
    let _p = new.start(&cluster, &log2);
    new.wait_healthy(&log2);
    let after = all_keys(&new.client);
    assert_eq!(
        after.get("/after/restore").map(String::as_str),
        Some("kept")
    );
    assert_eq!(after.len(), before.len() + 1);
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn three_restored_members_form_a_cluster() {
    let env = Env::new();
    let dir = env.dir.path();
    let snap = dir.join("s.db");
    let source = std::env::var("LIFEBOAT_IT_ETCD").expect(NEEDS);
    env.ok(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        &source,
        "--to",
        snap.to_str().unwrap(),
    ]);
    let members: Vec<Member> = ["m1", "m2", "m3"]
        .iter()
        .map(|n| Member::new(dir, n))
        .collect();
    let cluster = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    for m in &members {
        let mut args = vec!["etcd"];
        args.extend(restore_args(
            snap.to_str().unwrap(),
            m.data.to_str().unwrap(),
            m,
            &cluster,
            "three",
        ));
        env.ok(&args);
    }
    let procs: Vec<(Proc, PathBuf)> = members
        .iter()
        .map(|m| {
            let log = dir.join(format!("{}.log", m.name));
            (m.start(&cluster, &log), log)
        })
        .collect();
    for (m, (_, log)) in members.iter().zip(&procs) {
        m.wait_healthy(log);
    }
    let want: Vec<(String, Vec<String>)> = members
        .iter()
        .map(|m| (m.name.clone(), vec![m.peer.clone()]))
        .collect();
    for m in &members {
        assert_eq!(member_list(&m.client), want);
    }
    // A write through one member is read (linearizably) through another.
    etcdctl(&members[0].client, &["put", "/three/k", "v"]).unwrap();
    let got = etcdctl(
        &members[2].client,
        &["get", "/three/k", "--print-value-only"],
    )
    .unwrap();
    assert_eq!(got.trim(), "v");
    // The Kubernetes data of the snapshot is there on every member.
    let ns = etcdctl(
        &members[1].client,
        &["get", "/registry/namespaces/default", "--keys-only"],
    )
    .unwrap();
    assert!(ns.contains("/registry/namespaces/default"), "{ns}");
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn kube_apiserver_on_a_restored_etcd_serves_the_snapshot_objects() {
    let env = Env::new();
    let dir = env.dir.path();
    let ns = "etcd-restore-it";
    env.kubectl(&["create", "namespace", ns], None);
    env.kubectl(
        &[
            "-n",
            ns,
            "create",
            "configmap",
            "before-snapshot",
            "--from-literal=answer=42",
        ],
        None,
    );
    let snap = dir.join("s.db");
    let source = std::env::var("LIFEBOAT_IT_ETCD").expect(NEEDS);
    env.ok(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        &source,
        "--to",
        snap.to_str().unwrap(),
    ]);
    // Made after the snapshot: must not be there.
    env.kubectl(
        &[
            "-n",
            ns,
            "create",
            "configmap",
            "after-snapshot",
            "--from-literal=answer=0",
        ],
        None,
    );

    let m = Member::new(dir, "restored");
    let cluster = format!("restored={}", m.peer);
    let mut args = vec!["etcd"];
    args.extend(restore_args(
        snap.to_str().unwrap(),
        m.data.to_str().unwrap(),
        &m,
        &cluster,
        "apiserver",
    ));
    env.ok(&args);
    let log = dir.join("etcd.log");
    let _etcd = m.start(&cluster, &log);
    m.wait_healthy(&log);

    // A kube-apiserver of its own (self-signed serving cert, a token, a fresh SA key).
    let bin = PathBuf::from(std::env::var("LIFEBOAT_IT_CP_BIN").expect(NEEDS));
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let sa = pki.join("sa.key");
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&sa)
        .arg("2048")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(
        pki.join("tokens.csv"),
        "restore-it-token,admin,admin,system:masters\n",
    )
    .unwrap();
    let port = free_port();
    let api_log = std::fs::File::create(dir.join("apiserver.log")).unwrap();
    let _api = Proc(
        Command::new(bin.join("kube-apiserver"))
            .arg(format!("--etcd-servers={}", m.client))
            .args(["--bind-address=127.0.0.1", &format!("--secure-port={port}")])
            .arg(format!("--cert-dir={}", pki.display()))
            .arg(format!(
                "--token-auth-file={}",
                pki.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!("--service-account-key-file={}", sa.display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                sa.display()
            ))
            .args([
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--advertise-address=127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(api_log)
            .spawn()
            .unwrap(),
    );
    let server = format!("https://127.0.0.1:{port}");
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(["--server", &server, "--token", "restore-it-token"])
            .args(["--insecure-skip-tls-verify", "--kubeconfig", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    };
    let mut got = None;
    for _ in 0..300 {
        let out = kubectl(&[
            "-n",
            ns,
            "get",
            "configmap",
            "before-snapshot",
            "-o",
            "json",
        ]);
        if out.status.success() {
            got = Some(out.stdout);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = got.unwrap_or_else(|| {
        panic!(
            "kube-apiserver on the restored etcd never served the ConfigMap:\n{}",
            std::fs::read_to_string(dir.join("apiserver.log")).unwrap_or_default()
        )
    });
    let cm: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(cm["data"]["answer"], "42");
    let after = kubectl(&["-n", ns, "get", "configmap", "after-snapshot"]);
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("NotFound"));
    env.kubectl(&["delete", "namespace", ns, "--wait=false"], None);
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn restore_refuses_damaged_snapshots_bad_flags_and_used_directories() {
    let env = Env::new();
    let dir = env.dir.path();
    let snap = dir.join("s.db");
    let source = std::env::var("LIFEBOAT_IT_ETCD").expect(NEEDS);
    env.ok(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        &source,
        "--to",
        snap.to_str().unwrap(),
    ]);
    let data = dir.join("d.etcd");
    let restore = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "etcd",
            "snapshot",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // A flipped bit: refused with the reason, no data directory left behind.
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let flipped = dir.join("flipped.db");
    std::fs::write(&flipped, &bytes).unwrap();
    let out = restore(&flipped, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("hash mismatch"), "{}", stderr(&out));
    assert!(!data.exists());
    // Truncated: refused.
    let cut = dir.join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = restore(&cut, &["--skip-hash-check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
    assert!(!data.exists());
    // Bad flags: named, nothing created.
    let out = restore(&snap, &["--name", "nope"]);
    assert!(
        stderr(&out).contains("couldn't find local name \"nope\""),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists());

    // A good restore; then the same directory again is refused and left as it was.
    let out = restore(&snap, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = data.join("member/snap/db");
    let db_before = std::fs::read(&db).unwrap();
    let out = restore(&snap, &[]);
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&db).unwrap(), db_before);
    // An empty existing directory (a mounted volume) is fine; so is a raw database file
    // (no sha256 trailer) with --skip-hash-check, which is refused without it.
    let raw = dir.join("raw.db");
    std::fs::copy(&db, &raw).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    let out = restore(&raw, &[]);
    assert!(
        stderr(&out).contains("no sha256 trailer"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read_dir(&data).unwrap().next().is_none());
    let out = restore(&raw, &["--skip-hash-check", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["membership"]["members"][0]["name"], "default");
    assert!(
        data.join("member/wal/0000000000000000-0000000000000000.wal")
            .exists()
    );
}
