//! The installed server the tests of `server.rs` and `regression.rs` share: `lifeboat
//! install` into [`NS`] (file location `default` on a private directory), an app
//! namespace [`APP`] with one ConfigMap, an InProgress Backup `orphan` left as by a crashed
//! server, and `lifeboat server` run out-of-cluster with the installed ServiceAccount's
//! token (so the least-privilege RBAC is what is exercised), with 2 s validation, sync and
//! GC periods.
//!
//! Installed once per test binary run, by the first test that asks ([`shared`]); every
//! test holds a read lock on it while it runs and names its own objects, so tests run in
//! parallel. One test tears it down ([`exclusive`]: the leader's SIGTERM and uninstall);
//! it waits for the others to end, and a test that asks afterwards installs it again. If
//! no test tears it down (a filtered run), the server stops when the test binary exits
//! (it is started behind a shell that stops it when its stdin, the test binary's pipe,
//! closes), and the next run's install first removes what is left.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::support::*;

/// The namespace lifeboat is installed into.
pub const NS: &str = "lifeboat-srv-it";
/// A namespace with a ConfigMap `settings` (mode=prod) that tests back up.
pub const APP: &str = "srv-it-app";
/// Namespaces tests of the fixture make (deleted by install and teardown).
pub const TEST_NAMESPACES: &[&str] = &[
    "srv-it-app-restored",
    "srv-it-app-metered",
    "srv-it-app-dr",
    "lifeboat-seeds-it",
    "srv-it-rb",
    "srv-it-rb-restored",
    "srv-it-secret",
    "srv-it-secret-restored",
    "srv-it-app-waited",
    "dropin-locations-it",
    "srv-it-app-cli",
    "dr-srv-shop",
    "dr-srv-warm",
    "dr-srv-fence",
];
/// ClusterRoles labelled for lifeboat's backup and restore roles that grant the API groups
/// of the CRDs other tests make (`backup.rs`, `restore.rs`, `failures.rs`: a CRD made while
/// the server runs backups of every type would otherwise fail them as not listable).
const TEST_GROUP_ROLES: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: it-lifeboat-test-groups-backup
  labels: {lifeboat.dev/aggregate-to-backup: "true"}
rules: [{apiGroups: [example.com, example.org, faults.example.com], resources: ["*"], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: it-lifeboat-test-groups-restore
  labels: {lifeboat.dev/aggregate-to-restore: "true"}
rules: [{apiGroups: [example.com, example.org, faults.example.com], resources: ["*"], verbs: [create, patch, update]}]
"#;
const LOG_FILTER: &str = "warn,lifeboat=info,lifeboat_engine=info,lifeboat_server=info";

/// A `lifeboat server` the tests started, stopped with SIGTERM when the test binary
/// exits even if nothing stops it before (see the module doc).
pub struct ServerProcess {
    shell: Child,
    /// The server's own process id (not the shell's).
    pub pid: u32,
    /// Its log (stderr, info level).
    pub log: PathBuf,
    _stdin: ChildStdin,
}

impl ServerProcess {
    /// Runs `lifeboat ARGS` (with `env`'s configuration) as a server.
    pub fn start(env: &Env, args: &[&str], log: PathBuf) -> ServerProcess {
        let lifeboat = env.cmd();
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(
                // The server in the background; its pid on stdout; a watcher that stops it
                // when stdin reaches EOF; the shell ends with the server's exit code.
                r#"exec 3<&0; "$@" </dev/null >/dev/null & p=$!; echo "$p"
                { cat <&3 >/dev/null; kill -TERM "$p" 2>/dev/null; } & w=$!
                wait "$p"; s=$?; kill "$w" 2>/dev/null; exit "$s""#,
            )
            .arg("sh")
            .arg(lifeboat.get_program())
            .args(args);
        for (k, v) in lifeboat.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(dir) = lifeboat.get_current_dir() {
            c.current_dir(dir);
        }
        let mut shell = c
            .env("LIFEBOAT_LOG", LOG_FILTER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(shell.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().unwrap();
        let stdin = shell.stdin.take().unwrap();
        ServerProcess {
            shell,
            pid,
            log,
            _stdin: stdin,
        }
    }

    /// Sends SIGTERM and waits (up to 30 s) for the server to exit; returns whether it
    /// exited with 0.
    pub fn terminate(&mut self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.shell.try_wait().unwrap() {
                return status.success();
            }
            // Its own log says where its shutdown stands (the fixture's log is another
            // server's).
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out after 30s waiting for the server to exit after SIGTERM; its log ({}) ends:\n{}",
                self.log.display(),
                self.log_tail(60)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.shell.try_wait().unwrap()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }
}

fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The installed lifeboat and its running leader.
pub struct Fixture {
    /// The admin's view (kubectl, the CLI).
    pub env: Env,
    /// The default location's directory.
    pub store: PathBuf,
    /// A kubeconfig of the installed ServiceAccount.
    pub sa_config: PathBuf,
    /// What `lifeboat install` printed.
    pub install_output: String,
    /// The leader's /metrics port.
    pub metrics_port: u16,
    /// The leader.
    pub server: ServerProcess,
}

impl Fixture {
    fn install() -> Fixture {
        let env = Env::new();
        // A previous run's leftovers: uninstall drops the server's finalizers, which no
        // server is left to remove.
        let _ = env.run(&["-n", NS, "uninstall", "--force"]);
        let mut leftovers = vec!["delete", "namespace", NS, APP];
        leftovers.extend(TEST_NAMESPACES);
        leftovers.extend(["--ignore-not-found", "--wait=true"]);
        env.kubectl(&leftovers, None);
        let store = env.dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let install_output = env.ok(&[
            "-n",
            NS,
            "install",
            "--provider",
            "file",
            "--bucket",
            store.to_str().unwrap(),
        ]);
        // Other tests' CRD groups, made while this server runs (its roles name the groups
        // served at install): granted as an operator grants a group installed later
        // (docs/server.md, "Security model"), so that a backup of [`APP`] can list them.
        env.apply(TEST_GROUP_ROLES);
        env.kubectl(&["create", "namespace", APP], None);
        env.kubectl(
            &[
                "-n",
                APP,
                "create",
                "configmap",
                "settings",
                "--from-literal=mode=prod",
            ],
            None,
        );
        // An InProgress backup with no server behind it (as left by a crashed server).
        env.apply(&format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata:\n  name: orphan\n  namespace: {NS}\nspec:\n  includedNamespaces: [{APP}]\n"
        ));
        env.kubectl(
            &[
                "-n",
                NS,
                "patch",
                "backups.lifeboat.dev",
                "orphan",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"InProgress"}}"#,
            ],
            None,
        );
        let sa_config = env.dir.path().join("sa.kubeconfig");
        service_account_kubeconfig(&env, NS, &sa_config);
        let metrics_port = free_port();
        let metrics_address = format!("127.0.0.1:{metrics_port}");
        let server = ServerProcess::start(
            &env,
            &[
                "-n",
                NS,
                "server",
                "--kubeconfig",
                sa_config.to_str().unwrap(),
                "--metrics-address",
                &metrics_address,
                "--garbage-collection-frequency",
                "2s",
                "--store-validation-frequency",
                "2s",
                "--backup-sync-period",
                "2s",
                "--dr-frequency",
                "2s",
                "--dr-rpo-breach-for",
                "2s",
                // The DR tests' plans check restores with kubectl.
                "--dr-allow-local-commands",
                // A running backup does not hold a test's SIGTERM for the default 10m.
                "--shutdown-grace-period",
                "20s",
            ],
            env.dir.path().join("server.log"),
        );
        Fixture {
            env,
            store,
            sa_config,
            install_output,
            metrics_port,
            server,
        }
    }

    /// `kubectl get ARGS -o json` in the fixture's namespace.
    pub fn get(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["-n", NS, "get"];
        a.extend(args);
        json(&self.env, &a)
    }

    /// Applies a YAML document (kubectl apply).
    pub fn apply(&self, yaml: &str) {
        self.env.apply(yaml)
    }

    /// Waits up to `secs` for the lifeboat.dev Backup `name` to exist and reach one of
    /// `phases`.
    pub fn backup_in(&self, name: &str, phases: &[&str], secs: u64) -> serde_json::Value {
        eventually(secs, &format!("backup {name} to be {phases:?}"), || {
            if !self.backup_exists(name) {
                return None;
            }
            let b = self.get(&["backups.lifeboat.dev", name]);
            phases.contains(&phase(&b)).then_some(b)
        })
    }

    /// Creates a Backup object of [`APP`] (extra spec lines, indented two spaces) and
    /// waits for it to complete.
    pub fn completed_backup(&self, name: &str, spec: &str) -> serde_json::Value {
        self.apply(&format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  includedNamespaces: [{APP}]\n{spec}"
        ));
        let b = self.backup_in(name, &["Completed", "PartiallyFailed", "Failed"], 60);
        assert_eq!(phase(&b), "Completed", "{b}\n{}", self.server.log_tail(40));
        b
    }

    /// Whether `kubectl get` finds the lifeboat.dev Backup `name`.
    pub fn backup_exists(&self, name: &str) -> bool {
        Command::new("kubectl")
            .env("KUBECONFIG", &self.env.kubeconfig)
            .args(["-n", NS, "get", "backups.lifeboat.dev", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// The leader's /metrics.
    pub fn metrics(&self) -> String {
        eventually(10, "/metrics", || metrics_of(self.metrics_port))
    }
}

static FIXTURE: RwLock<Option<Fixture>> = RwLock::new(None);

/// The namespace lifeboat is installed into on the second control plane.
pub const STANDBY_NS: &str = "lifeboat-standby-it";

/// lifeboat installed on the second control plane (`LIFEBOAT_IT_KUBECONFIG_STANDBY`) with
/// its default location on `bucket` (ReadWrite: what a careless standby would have), and
/// its server (as the installed ServiceAccount) validating, syncing and collecting every
/// 2 s. A cluster of its own, so nothing of the primary's fixture is shared but the bucket.
/// The server stops when this is dropped.
pub struct Standby {
    /// The standby cluster's admin view.
    pub env: Env,
    /// Its server.
    pub server: ServerProcess,
    /// One test at a time on the second control plane (install and uninstall are
    /// cluster-wide: CRDs, ClusterRoles).
    _alone: std::sync::MutexGuard<'static, ()>,
}

pub static STANDBY_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The second control plane to oneself (one test at a time: install and uninstall are
/// cluster-wide), without an install: for tests of `install` itself. Its namespace
/// [`STANDBY_NS`] is uninstalled and deleted first.
pub fn standby_cluster() -> (std::sync::MutexGuard<'static, ()>, Env) {
    let alone = STANDBY_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        kubeconfig: PathBuf::from(std::env::var("LIFEBOAT_IT_KUBECONFIG_STANDBY").expect(NEEDS)),
    };
    let _ = env.run(&["-n", STANDBY_NS, "uninstall", "--force"]);
    env.kubectl(
        &[
            "delete",
            "namespace",
            STANDBY_NS,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );
    (alone, env)
}

/// `lifeboat install` into [`STANDBY_NS`] of `env`'s cluster, its default location the
/// directory `bucket` (no server is started).
pub fn install_file_location(env: &Env, bucket: &Path) {
    env.ok(&[
        "-n",
        STANDBY_NS,
        "install",
        "--provider",
        "file",
        "--bucket",
        bucket.to_str().unwrap(),
    ]);
}

/// A Prometheus of the test's own in `dir`, scraping the server on `target_port` every
/// second and evaluating `rules` (a rule file's name in `dir`) every second; killed when
/// dropped. Returns it and its port.
pub fn prometheus(dir: &Path, target_port: u16, rules: Option<&str>) -> (Killed, u16) {
    let port = free_port();
    let rule_files = rules
        .map(|r| format!("rule_files: [{r}]\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n{rule_files}scrape_configs:\n- job_name: lifeboat\n  static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .args([
            "--config.file=prometheus.yml",
            "--storage.tsdb.path=data",
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus (scripts/setup.sh installs Debian's package)");
    (Killed(child), port)
}

/// GET `path` of the Prometheus API on `port`, as JSON (None: no answer yet).
pub fn prometheus_api(port: u16, path: &str) -> Option<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

impl Standby {
    /// Installs lifeboat (after removing a previous run's leftovers) and starts its server.
    pub fn install(bucket: &Path) -> Standby {
        Standby::install_with_grace(bucket, "20s")
    }

    /// [`Standby::install`], its server given `grace` (`--shutdown-grace-period`).
    pub fn install_with_grace(bucket: &Path, grace: &str) -> Standby {
        Standby::install_through(bucket, grace, None)
    }

    /// [`Standby::install_with_grace`], its server reaching the API server through
    /// `proxy` (one made with [`crate::tcp_proxy::Proxy::to_api_server`] of
    /// `LIFEBOAT_IT_KUBECONFIG_STANDBY`).
    pub fn install_through(
        bucket: &Path,
        grace: &str,
        proxy: Option<&crate::tcp_proxy::Proxy>,
    ) -> Standby {
        let alone = STANDBY_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            kubeconfig: PathBuf::from(
                std::env::var("LIFEBOAT_IT_KUBECONFIG_STANDBY").expect(NEEDS),
            ),
        };
        let _ = env.run(&["-n", STANDBY_NS, "uninstall", "--force"]);
        env.kubectl(
            &[
                "delete",
                "namespace",
                STANDBY_NS,
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
        install_file_location(&env, bucket);
        let mut sa_config = env.dir.path().join("sa.kubeconfig");
        service_account_kubeconfig(&env, STANDBY_NS, &sa_config);
        if let Some(p) = proxy {
            let through = env.dir.path().join("sa-proxied.kubeconfig");
            p.kubeconfig(&sa_config, &through);
            sa_config = through;
        }
        let metrics_address = format!("127.0.0.1:{}", free_port());
        let server = ServerProcess::start(
            &env,
            &[
                "-n",
                STANDBY_NS,
                "server",
                "--kubeconfig",
                sa_config.to_str().unwrap(),
                "--metrics-address",
                &metrics_address,
                "--identity",
                "standby-cluster",
                "--garbage-collection-frequency",
                "2s",
                "--store-validation-frequency",
                "2s",
                "--backup-sync-period",
                "2s",
                "--shutdown-grace-period",
                grace,
            ],
            env.dir.path().join("standby-server.log"),
        );
        Standby {
            env,
            server,
            _alone: alone,
        }
    }

    /// The standby's Backup object `name`, if it has one.
    pub fn backup(&self, name: &str) -> Option<serde_json::Value> {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", &self.env.kubeconfig)
            .args([
                "-n",
                STANDBY_NS,
                "get",
                "backups.lifeboat.dev",
                name,
                "-o",
                "json",
            ])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ---\n{}",
                self.server.log.display(),
                self.server.log_tail(60)
            );
        }
        // Stops the server first, then its objects go (their finalizers with it).
        self.server.terminate();
        let _ = self.env.run(&["-n", STANDBY_NS, "uninstall", "--force"]);
    }
}

/// A test's hold on the shared fixture. When the test fails, the end of the server's log
/// is printed (its temporary directory outlives the test, but is hard to find).
pub struct Shared(RwLockReadGuard<'static, Option<Fixture>>);

impl std::ops::Deref for Shared {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        self.0.as_ref().expect("installed")
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(fx) = self.0.as_ref()
        {
            eprintln!(
                "--- last lines of {} ---\n{}",
                fx.server.log.display(),
                fx.server.log_tail(60)
            );
        }
    }
}

/// The fixture, installed if it is not.
pub fn shared() -> Shared {
    loop {
        {
            let read = FIXTURE.read().unwrap_or_else(|e| e.into_inner());
            if read.is_some() {
                return Shared(read);
            }
        }
        let mut write = FIXTURE.write().unwrap_or_else(|e| e.into_inner());
        if write.is_none() {
            *write = Some(Fixture::install());
        }
    }
}

/// The fixture for a test that ends it: waits until no other test holds it, then hands
/// it over (installed if it was not); the lock stays held until the returned guard
/// drops, and the next test that asks installs a new one.
pub fn exclusive() -> (RwLockWriteGuard<'static, Option<Fixture>>, Fixture) {
    let mut write = FIXTURE.write().unwrap_or_else(|e| e.into_inner());
    let fx = write.take().unwrap_or_else(Fixture::install);
    (write, fx)
}

/// `kubectl ARGS -o json`.
pub fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&env.kubectl(&a, None)).unwrap()
}

/// Polls `f` every 500 ms until it returns Some, or panics after `secs` with `what`.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An object's `status.phase` ("" without one).
pub fn phase(b: &serde_json::Value) -> &str {
    b["status"]["phase"].as_str().unwrap_or("")
}

/// The Backup objects of `schedule` (by the velero.io/schedule-name label).
pub fn backups_of(fx: &Fixture, schedule: &str) -> Vec<serde_json::Value> {
    let v = fx.get(&[
        "backups.lifeboat.dev",
        "-l",
        &format!("velero.io/schedule-name={schedule}"),
    ]);
    v["items"].as_array().cloned().unwrap_or_default()
}

/// GET /metrics on `port`, if it answers.
pub fn metrics_of(port: u16) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// The value of the sample `series` (name with labels, as printed) in `metrics`.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// `promtool check metrics` of `text`: its exit code and what it printed.
pub fn promtool_check_metrics(text: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A kubeconfig for the ServiceAccount `lifeboat` in `ns`, from its token Secret.
pub fn service_account_kubeconfig(env: &Env, ns: &str, out: &Path) {
    use base64::Engine as _;
    let token = eventually(60, "the ServiceAccount's token Secret", || {
        let v = json(
            env,
            &[
                "-n",
                ns,
                "get",
                "secrets",
                "--field-selector",
                "type=kubernetes.io/service-account-token",
            ],
        );
        v["items"].as_array()?.iter().find_map(|s| {
            (s["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "lifeboat")
                .then(|| s["data"]["token"].as_str().map(str::to_string))
                .flatten()
        })
    });
    let token = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap(),
    )
    .unwrap();
    let admin = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let server = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap();
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .unwrap();
    std::fs::write(
        out,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: sa\ncurrent-context: c\n"
        ),
    )
    .unwrap();
}
