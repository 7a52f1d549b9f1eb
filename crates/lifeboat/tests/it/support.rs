//! Helpers of the integration tests: a private lifeboat config and storage per test, the
//! real `lifeboat` binary, kubectl against the test control plane, and an independent
//! tarball reader (Python's tarfile).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const NEEDS: &str = "needs the dev cluster and moto: run scripts/test.sh";

/// One test's private world.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: {NEEDS}"))
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            kubeconfig: PathBuf::from(required("LIFEBOAT_IT_KUBECONFIG")),
        }
    }

    /// A world on the test cluster that has a real node (kubelet + containerd): pods
    /// there really run (scripts/test.sh starts it: `dev-cluster.sh up it-node ... --nodes 1`).
    pub fn on_node() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            kubeconfig: PathBuf::from(required("LIFEBOAT_IT_NODE_KUBECONFIG")),
        }
    }

    /// A world on the second test cluster with a real node (scripts/test.sh starts it:
    /// `dev-cluster.sh up it-node2 ... --nodes 1`): the other side of the DR tests that
    /// need two clusters whose pods run.
    pub fn on_second_node() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            kubeconfig: PathBuf::from(required("LIFEBOAT_IT_NODE2_KUBECONFIG")),
        }
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.env("LIFEBOAT_CONFIG", self.dir.path().join("locations.yaml"))
            .env("LIFEBOAT_STORAGE_DIR", self.storage())
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("LIFEBOAT_KUBECONFIG")
            // The tests share a cluster where lifeboat is installed: they work from here
            // unless they ask otherwise (`cli_mode.rs` tests following the context).
            .env("LIFEBOAT_MODE", "local")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// Runs lifeboat; returns the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs lifeboat and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs lifeboat, asserts it ended with an error it reported (exit code 1: not a
    /// panic, not a usage error), returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with(1, args)
    }

    /// Runs lifeboat, asserts it ended with exit code `code`, returns stderr.
    pub fn fails_with(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "lifeboat {args:?}: expected exit code {code}:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Deletes namespace `ns` and waits until it is gone (nothing when there is none).
    pub fn delete_namespace(&self, ns: &str) {
        self.kubectl(
            &[
                "delete",
                "namespace",
                ns,
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
    }

    pub fn apply(&self, yaml: &str) {
        self.kubectl(&["apply", "-f", "-"], Some(yaml));
    }

    /// Waits (up to 60 s) until the CustomResourceDefinition `name` is Established: its
    /// resources are served.
    pub fn wait_established(&self, crd: &str) {
        self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}"),
                "--timeout=60s",
            ],
            None,
        );
    }

    /// Waits until `kubectl get ARGS -o name` lists at least `n` objects (a NotFound, as
    /// of a namespace not made yet, counts as none).
    pub fn wait_for(&self, args: &[&str], n: usize) {
        for _ in 0..200 {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", &self.kubeconfig)
                .arg("get")
                .args(args)
                .args(["-o", "name"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && listed.lines().filter(|l| !l.is_empty()).count() >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("timed out waiting for {n} of {args:?}");
    }
}

/// Builds lifeboat's container image from the binary under test with
/// scripts/build-image.py into `dir`/lifeboat-image.tar (`extra`: more flags, as
/// `--tag T`); returns its path.
pub fn build_lifeboat_image(dir: &Path, extra: &[&str]) -> PathBuf {
    let image = dir.join("lifeboat-image.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-image.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--binary", env!("CARGO_BIN_EXE_lifeboat")])
        .args(extra)
        .arg("--out")
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

/// Reads a .tar.gz with Python's tarfile: entry names in order, and the content of every
/// `.json` entry parsed as JSON.
pub struct Tarball {
    pub names: Vec<String>,
    pub json: serde_json::Map<String, serde_json::Value>,
    pub modes: Vec<u32>,
    pub version: String,
}

pub fn read_tarball(path: &Path) -> Tarball {
    let script = r#"
import json, sys, tarfile
names, modes, docs, version = [], [], {}, None
with tarfile.open(sys.argv[1], "r:gz") as t:
    for m in t:
        names.append(m.name); modes.append(m.mode)
        data = t.extractfile(m).read().decode()
        if m.name == "metadata/version": version = data
        elif m.name.endswith(".json"): docs[m.name] = json.loads(data)
print(json.dumps({"names": names, "modes": modes, "json": docs, "version": version}))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python tarfile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Tarball {
        names: serde_json::from_value(v["names"].clone()).unwrap(),
        modes: serde_json::from_value(v["modes"].clone()).unwrap(),
        json: v["json"].as_object().unwrap().clone(),
        version: v["version"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Reads a gzip'd JSON file.
pub fn read_json_gz(path: &Path) -> serde_json::Value {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_reader(flate2::read::GzDecoder::new(f)).unwrap()
}

/// Every file below `dir`, relative.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A TCP port free on 127.0.0.1 (for etcd, Prometheus and servers a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process a test started, killed when dropped (also when the test fails).
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file's permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub use lifeboat_engine::test_support::Tmpfs;
