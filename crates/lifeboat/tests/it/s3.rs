//! The same backups into S3 on a real S3 HTTP server (moto).

use std::process::Command;

use crate::support::*;

pub(crate) fn s3_endpoint() -> String {
    std::env::var("LIFEBOAT_IT_S3").expect(NEEDS)
}

pub(crate) fn boto(script: &str, args: &[&str]) -> String {
    let prelude = format!(
        "import boto3, sys, json\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n",
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
    String::from_utf8(out.stdout).unwrap()
}

/// A location `name` on moto's bucket `bucket` (created) under prefix `prefix`; returns
/// the Velero credentials file it uses.
pub(crate) fn s3_location(env: &Env, name: &str, bucket: &str, prefix: &str) -> std::path::PathBuf {
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[bucket]);
    let creds = env.dir.path().join("credentials-velero");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let config = format!(
        "region=us-east-1,s3Url={},s3ForcePathStyle=true",
        s3_endpoint()
    );
    env.ok(&[
        "location",
        "create",
        name,
        "--provider",
        "aws",
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--config",
        &config,
        "--credential",
        creds.to_str().unwrap(),
    ]);
    creds
}

pub(crate) fn list_keys(bucket: &str) -> Vec<String> {
    let out = boto(
        "p = s3.get_paginator('list_objects_v2')\nkeys = [o['Key'] for page in p.paginate(Bucket=sys.argv[1]) for o in page.get('Contents', [])]\nprint(json.dumps(sorted(keys)))",
        &[bucket],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn backup_to_s3_matches_directory_layout() {
    let env = Env::new();
    let bucket = "lifeboat-it";
    env.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: it-s3}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: it-s3}\ndata: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s1, namespace: it-s3}\nstringData: {k: v}\n",
    );
    // What the controllers add to a new namespace is there before the first backup: the
    // two backups below are compared, and a busy control plane adds it between them.
    env.wait_for(&["configmaps", "-n", "it-s3"], 2);
    env.wait_for(&["serviceaccounts", "-n", "it-s3"], 1);
    let creds = s3_location(&env, "s3", bucket, "cluster-a");
    let locs = env.ok(&["location", "get"]);
    assert!(locs.contains("s3") && locs.contains("Available"), "{locs}");

    env.ok(&[
        "backup",
        "create",
        "s1",
        "--include-namespaces",
        "it-s3",
        "--storage-location",
        "s3",
    ]);
    env.ok(&["backup", "create", "d1", "--include-namespaces", "it-s3"]);

    let keys = list_keys(bucket);
    let expected: Vec<String> = files_below(&env.storage().join("backups/d1"))
        .into_iter()
        .map(|f| format!("cluster-a/backups/s1/{}", f.replace("d1", "s1")))
        .collect();
    assert_eq!(keys, expected);

    // The tarball read back from S3 holds the same items as the directory one.
    let tar = env.dir.path().join("s1.tar.gz");
    boto(
        "s3.download_file(sys.argv[1], sys.argv[2], sys.argv[3])",
        &[
            bucket,
            "cluster-a/backups/s1/s1.tar.gz",
            tar.to_str().unwrap(),
        ],
    );
    let from_s3 = read_tarball(&tar);
    let from_dir = read_tarball(&env.storage().join("backups/d1/d1.tar.gz"));
    // Resource types are listed concurrently, so entries may interleave differently.
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert_eq!(from_s3.names[0], "metadata/version");
    assert_eq!(sorted(&from_s3.names), sorted(&from_dir.names));
    assert_eq!(
        from_s3.json.keys().collect::<Vec<_>>(),
        from_dir.json.keys().collect::<Vec<_>>()
    );

    let phase = env.ok(&[
        "backup",
        "get",
        "s1",
        "--storage-location",
        "s3",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Completed");
    // The ad-hoc URL form reaches the same backups.
    let url = format!(
        "s3://{bucket}/cluster-a?region=us-east-1&s3ForcePathStyle=true&s3Url={}&credential={}",
        s3_endpoint(),
        creds.display()
    );
    assert!(
        env.ok(&["backup", "get", "--storage-location", &url])
            .contains("s1")
    );
    // Download streams it back.
    env.ok(&[
        "backup",
        "download",
        "s1",
        "--storage-location",
        "s3",
        "-o",
        "dl.tar.gz",
    ]);
    assert_eq!(
        std::fs::read(env.dir.path().join("dl.tar.gz")).unwrap(),
        std::fs::read(&tar).unwrap()
    );
    env.ok(&[
        "backup",
        "delete",
        "s1",
        "--storage-location",
        "s3",
        "--confirm",
    ]);
    assert!(list_keys(bucket).is_empty());
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn missing_bucket_is_named() {
    let env = Env::new();
    let creds = env.dir.path().join("c");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id=a\naws_secret_access_key=b\n",
    )
    .unwrap();
    let url = format!(
        "s3://no-such-bucket-lifeboat/p?region=us-east-1&s3ForcePathStyle=true&s3Url={}&credential={}",
        s3_endpoint(),
        creds.display()
    );
    let err = env.fails(&["backup", "create", "m1", "--storage-location", &url]);
    assert!(
        err.contains("no-such-bucket-lifeboat") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn missing_credentials_are_named() {
    let env = Env::new();
    let url = format!(
        "s3://any-bucket/p?region=us-east-1&s3ForcePathStyle=true&s3Url={}",
        s3_endpoint()
    );
    let err = env
        .cmd()
        .args(["backup", "create", "m2", "--storage-location", &url])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(1));
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains("no credentials found") && err.contains("--credential"),
        "{err}"
    );
}

/// The strict S3 server (s3s-fs): checks signatures and checksums.
pub(crate) fn strict() -> (String, std::path::PathBuf) {
    (
        std::env::var("LIFEBOAT_IT_S3_STRICT").expect(NEEDS),
        std::path::PathBuf::from(std::env::var("LIFEBOAT_IT_S3_STRICT_ROOT").expect(NEEDS)),
    )
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn wrong_credentials_are_refused_and_right_ones_work() {
    let env = Env::new();
    let (endpoint, root) = strict();
    // A prefix of its own, so that a re-run against the same server starts empty.
    let prefix = &format!(
        "wrong-creds-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    env.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: it-strict}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: it-strict}\ndata: {k: v}\n");
    let creds = env.dir.path().join("bad");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = lifeboat-it\naws_secret_access_key = not-the-secret\n",
    )
    .unwrap();
    let url = format!(
        "s3://lifeboat-strict/{prefix}?region=us-east-1&s3ForcePathStyle=true&s3Url={endpoint}&credential={}",
        creds.display()
    );
    let err = env.fails(&[
        "backup",
        "create",
        "w1",
        "--include-namespaces",
        "it-strict",
        "--storage-location",
        &url,
    ]);
    assert!(
        err.contains("access denied") && err.contains("credentials"),
        "{err}"
    );
    assert!(files_below(&root.join("lifeboat-strict").join(prefix)).is_empty());

    // With the right secret the same backup is stored, signatures and checksums verified.
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = lifeboat-it\naws_secret_access_key = lifeboat-it-secret\n",
    )
    .unwrap();
    env.ok(&[
        "backup",
        "create",
        "w1",
        "--include-namespaces",
        "it-strict",
        "--storage-location",
        &url,
    ]);
    let tar = root
        .join("lifeboat-strict")
        .join(prefix)
        .join("backups/w1/w1.tar.gz");
    let t = read_tarball(&tar);
    assert!(
        t.json
            .contains_key("resources/configmaps/namespaces/it-strict/c.json")
    );
    let phase = env.ok(&[
        "backup",
        "get",
        "w1",
        "--storage-location",
        &url,
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Completed");
}

/// A moto server of its own over HTTPS, with a certificate signed by the test CA of
/// `etcd::make_certs` (`ca.crt`; `other-ca.crt` signed nothing here). Stopped on drop.
struct TlsMoto {
    child: std::process::Child,
    url: String,
}

impl Drop for TlsMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tls_moto(certs: &std::path::Path) -> TlsMoto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .arg("--ssl-cert")
        .arg(certs.join("server.crt"))
        .arg("--ssl-key")
        .arg(certs.join("server.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto_server");
    let url = format!("https://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg("import boto3, sys\nboto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test', verify=sys.argv[2]).create_bucket(Bucket='tls')")
        .arg(&url)
        .arg(certs.join("ca.crt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    TlsMoto { child, url }
}

/// Issue 11, item 9: a location's caCert is honoured (a self-signed S3 endpoint works with
/// its CA, and is refused without it or with another CA); insecureSkipTLSVerify works and
/// is warned about on every use; an http:// s3Url is warned about.
#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_locations_ca_cert_and_insecure_skip_are_honoured() {
    let env = Env::new();
    let certs = env.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crate::etcd::make_certs(&certs);
    let moto = start_tls_moto(&certs);
    env.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: it-s3-tls}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: it-s3-tls}\ndata: {k: v}\n");
    let creds = env.dir.path().join("credentials-velero");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let create = |name: &str, extra_config: &str, cacert: Option<&str>| {
        let config = format!(
            "region=us-east-1,s3Url={},s3ForcePathStyle=true{extra_config}",
            moto.url
        );
        let mut args = vec![
            "location",
            "create",
            name,
            "--provider",
            "aws",
            "--bucket",
            "tls",
            "--prefix",
            name,
            "--config",
            &config,
            "--credential",
            creds.to_str().unwrap(),
        ];
        let ca;
        if let Some(f) = cacert {
            ca = certs.join(f).to_str().unwrap().to_owned();
            args.extend(["--cacert", &ca]);
        }
        env.run(&args)
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // With the CA that signed the server's certificate: it works, quietly.
    let out = create("with-ca", "", Some("ca.crt"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&[
        "backup",
        "create",
        "tls1",
        "--include-namespaces",
        "it-s3-tls",
        "--storage-location",
        "with-ca",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("WARN"), "{}", stderr(&out));
    env.ok(&[
        "backup",
        "describe",
        "tls1",
        "--storage-location",
        "with-ca",
    ]);

    // Without it, or with another CA, the server is not trusted: its use is refused.
    for (name, ca) in [("no-ca", None), ("wrong-ca", Some("other-ca.crt"))] {
        let out = create(name, "", ca);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let backup = format!("tls-{name}");
        let out = env.run(&[
            "backup",
            "create",
            &backup,
            "--include-namespaces",
            "it-s3-tls",
            "--storage-location",
            name,
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("invalid peer certificate: UnknownIssuer"),
            "{name}: {}",
            stderr(&out)
        );
    }

    // Skipping verification works, and says so on every use.
    let out = create("insecure", ",insecureSkipTLSVerify=true", None);
    assert!(out.status.success(), "{}", stderr(&out));
    for _ in 0..2 {
        let out = env.run(&["backup", "get", "--storage-location", "insecure"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out)
                .contains("location \"insecure\" does not verify its server's TLS certificate"),
            "{}",
            stderr(&out)
        );
    }

    // An http:// endpoint is warned about.
    let config = format!(
        "region=us-east-1,s3Url={},s3ForcePathStyle=true",
        s3_endpoint()
    );
    let out = env.run(&[
        "location",
        "create",
        "plain",
        "--provider",
        "aws",
        "--bucket",
        "lifeboat-it",
        "--config",
        &config,
        "--credential",
        creds.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("location \"plain\" sends its backups and credentials unencrypted"),
        "{}",
        stderr(&out)
    );
    env.kubectl(&["delete", "namespace", "it-s3-tls", "--wait=false"], None);
    drop(moto);
}
