//! Issue 13, item 1: the CLI follows the kube context, as velero's does. Where the
//! context's cluster has lifeboat installed (the shared fixture's), `backup`, `restore`
//! and `backup-location` verbs work through its objects and its server; where it does not,
//! they work from this machine; `--mode` forces either.
//!
//! Every other test pins `LIFEBOAT_MODE=local` (`support::Env::cmd`): they share the
//! fixture's cluster and test the local mode. These tests unset it.

use std::process::Output;

use crate::faults::{Fault, FaultProxy, Hits, Rule};
use crate::server_fixture::{APP, NS, eventually, shared};
use crate::support::{Env, mode};

/// Runs lifeboat with `LIFEBOAT_MODE` unset (the default: follow the context).
fn auto(env: &Env, args: &[&str]) -> Output {
    let mut c = env.cmd();
    c.env_remove("LIFEBOAT_MODE");
    c.args(args).output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A restore of the CLI in the fixture's cluster maps [`APP`] here.
const RESTORED: &str = "srv-it-app-cli";

/// The whole round of a failover script, with the binary's default mode, on a cluster
/// where lifeboat is installed: each verb works through the cluster's objects (the
/// server runs them), and what the server stored is read back.
#[test]
#[ignore]
fn verbs_follow_a_context_where_lifeboat_is_installed() {
    let fx = shared();
    let env = &fx.env;
    let name = "cli-mode-b1";
    let _ = env.kubectl(
        &[
            "delete",
            "namespace",
            RESTORED,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    );

    // backup create --wait: a Backup object, run by the server, followed to the end.
    let out = ok(
        auto(
            env,
            &[
                "-n",
                NS,
                "backup",
                "create",
                name,
                "--include-namespaces",
                APP,
                "--wait",
            ],
        ),
        "backup create",
    );
    assert!(
        out.contains(&format!(
            "Backup request \"{name}\" submitted successfully to the lifeboat server in namespace {NS}"
        )),
        "{out}"
    );
    assert!(
        out.contains("Backup completed with status: Completed"),
        "{out}\n{}",
        fx.server.log_tail(30)
    );
    assert!(fx.backup_exists(name), "the Backup is the cluster's object");
    assert!(
        fx.store
            .join("backups")
            .join(name)
            .join("velero-backup.json")
            .exists(),
        "the server stored it in its location"
    );

    // get, describe: the cluster's objects (the local mode has no such backup).
    let phase = ok(
        auto(
            env,
            &[
                "-n",
                NS,
                "backup",
                "get",
                name,
                "-o",
                "jsonpath={.status.phase}",
            ],
        ),
        "backup get",
    );
    assert_eq!(phase, "Completed");
    let table = ok(auto(env, &["-n", NS, "backup", "get"]), "backup get");
    assert!(table.lines().any(|l| l.starts_with(name)), "{table}");
    let local = env.fails(&["-n", NS, "backup", "get", name]);
    assert!(
        local.contains(&format!("backup {name:?} not found")),
        "{local}"
    );
    let described = ok(
        auto(env, &["-n", NS, "backup", "describe", name, "--details"]),
        "backup describe",
    );
    assert!(described.contains("Phase:  Completed"), "{described}");
    // The resource list is read from the server's location.
    assert!(
        described.contains(&format!("{APP}/settings")),
        "{described}"
    );

    // logs and download: what the server stored, read from its location.
    let logs = ok(
        auto(env, &["-n", NS, "backup", "logs", name]),
        "backup logs",
    );
    assert!(!logs.trim().is_empty(), "the backup's log is printed");
    let file = env.dir.path().join("cli-mode.tar.gz");
    ok(
        auto(
            env,
            &[
                "-n",
                NS,
                "backup",
                "download",
                name,
                "-o",
                file.to_str().unwrap(),
            ],
        ),
        "backup download",
    );
    assert_eq!(mode(&file), 0o600);
    let tar = crate::support::read_tarball(&file);
    assert!(
        tar.names
            .iter()
            .any(|p| p.ends_with(&format!("namespaces/{APP}/settings.json"))),
        "{:?}",
        tar.names
    );

    // restore create --wait: a Restore object, run by the server.
    let mapping = format!("{APP}:{RESTORED}");
    let out = ok(
        auto(
            env,
            &[
                "-n",
                NS,
                "restore",
                "create",
                "cli-mode-r1",
                "--from-backup",
                name,
                "--namespace-mappings",
                &mapping,
                "--wait",
            ],
        ),
        "restore create",
    );
    assert!(
        out.contains("submitted successfully to the lifeboat server")
            && out.contains("Restore completed with status: Completed"),
        "{out}\n{}",
        fx.server.log_tail(30)
    );
    let data = env.kubectl(
        &[
            "-n",
            RESTORED,
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}",
        ],
        None,
    );
    assert_eq!(data, "prod");
    let restores = ok(auto(env, &["-n", NS, "restore", "get"]), "restore get");
    assert!(
        restores.lines().any(|l| l.starts_with("cli-mode-r1")),
        "{restores}"
    );
    let rlogs = ok(
        auto(env, &["-n", NS, "restore", "logs", "cli-mode-r1"]),
        "restore logs",
    );
    assert!(!rlogs.trim().is_empty());

    // backup-location get: the server's locations and their phases.
    let locs = ok(
        auto(env, &["-n", NS, "backup-location", "get"]),
        "backup-location get",
    );
    assert!(
        locs.lines()
            .any(|l| l.starts_with("default") && l.contains("Available")),
        "{locs}"
    );

    // backup delete: a DeleteBackupRequest; the server deletes the data, then the object.
    let out = ok(
        auto(env, &["-n", NS, "backup", "delete", name, "--confirm"]),
        "backup delete",
    );
    assert!(out.contains("Request to delete backup"), "{out}");
    eventually(60, "the backup to be deleted", || {
        (!fx.backup_exists(name)).then_some(())
    });
    assert!(!fx.store.join("backups").join(name).exists());
    // The Restore object stays: the server's metrics count it (`server.rs` compares).
    env.kubectl(
        &[
            "delete",
            "namespace",
            RESTORED,
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    );
}

/// `--mode local` on a cluster where lifeboat is installed works from this machine; a
/// verb's own `--server` means `--mode cluster`.
#[test]
#[ignore]
fn mode_local_works_here_even_where_lifeboat_is_installed() {
    let fx = shared();
    let env = &fx.env;
    let out = ok(
        auto(
            env,
            &[
                "--mode",
                "local",
                "backup",
                "create",
                "cli-mode-local",
                "--include-namespaces",
                APP,
            ],
        ),
        "backup create --mode local",
    );
    assert!(
        out.contains("Backup completed with status: Completed"),
        "{out}"
    );
    assert!(
        !fx.backup_exists("cli-mode-local"),
        "no object in the cluster"
    );
    assert!(
        env.storage()
            .join("backups/cli-mode-local/velero-backup.json")
            .exists()
    );
}

/// Where the cluster does not serve lifeboat's CRDs, the default mode works here and
/// `--mode cluster` refuses, naming why; an API server that cannot be reached is a
/// warning (auto) or the error (cluster).
#[test]
#[ignore]
fn without_lifeboat_in_the_context_the_cli_works_here() {
    let env = Env::new();
    // The proxy answers the lifeboat.dev group's discovery 404: a cluster without it.
    let proxy = FaultProxy::start(
        &env.kubeconfig,
        vec![Rule::new(
            "not installed",
            |r| r.path.starts_with("/apis/lifeboat.dev"),
            Hits::All,
            Fault::Status {
                code: 404,
                reason: "NotFound",
            },
        )],
    );
    let through = |args: &[&str]| {
        let mut c = env.cmd();
        c.env_remove("LIFEBOAT_MODE")
            .env("KUBECONFIG", &proxy.kubeconfig);
        c.args(args).output().unwrap()
    };
    let out = through(&["backup", "get"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy
            .seen()
            .iter()
            .any(|r| r.path == "/apis/lifeboat.dev/v1alpha1"),
        "the CLI asked whether lifeboat is installed"
    );
    let out = through(&["--mode", "cluster", "backup", "get"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lifeboat is not installed in this cluster") && err.contains("--mode local"),
        "{err}"
    );

    // An API server nobody answers at: auto warns and works here; cluster refuses.
    let port = crate::support::free_port();
    let text = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let mut kc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    kc["clusters"][0]["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
    let dead = env.dir.path().join("dead.kubeconfig");
    std::fs::write(&dead, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    let mut c = env.cmd();
    let out = c
        .env_remove("LIFEBOAT_MODE")
        .env("KUBECONFIG", &dead)
        .args(["backup", "get"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: cannot ask the cluster whether lifeboat is installed")
            && err.contains("--mode cluster"),
        "{err}"
    );
    let mut c = env.cmd();
    let out = c
        .env("LIFEBOAT_MODE", "cluster")
        .env("KUBECONFIG", &dead)
        .args(["backup", "get"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot ask the cluster whether lifeboat is installed"),
        "{err}"
    );
}

/// One kubeconfig with two contexts, `primary` and `standby`, made of the two clusters'
/// own kubeconfigs (as an SRE's workstation holds both).
fn two_contexts(primary: &std::path::Path, standby: &std::path::Path, out: &std::path::Path) {
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (p, s) = (read(primary), read(standby));
    let entry = |kc: &serde_json::Value, name: &str| {
        (
            serde_json::json!({"name": name, "cluster": kc["clusters"][0]["cluster"]}),
            serde_json::json!({"name": name, "user": kc["users"][0]["user"]}),
            serde_json::json!({"name": name, "context": {"cluster": name, "user": name}}),
        )
    };
    let (pc, pu, px) = entry(&p, "primary");
    let (sc, su, sx) = entry(&s, "standby");
    let merged = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [pc, sc],
        "users": [pu, su],
        "contexts": [px, sx],
        "current-context": "primary",
    });
    std::fs::write(out, serde_yaml_ng::to_string(&merged).unwrap()).unwrap();
}

/// The failover scripts' first step, `velero --kubecontext=$STANDBY backup get`: on a
/// workstation whose kubeconfig holds both clusters, the default mode lists the Backup
/// objects the standby's server synced from the shared bucket (`synced`), and the
/// primary's context lists the primary's own. Called by the standby test of
/// `regression.rs` once the records exist.
pub fn standby_context_lists_synced_backups(
    primary: &Env,
    standby: &Env,
    standby_ns: &str,
    synced: &[&str],
) {
    let both = primary.dir.path().join("two-contexts.kubeconfig");
    two_contexts(&primary.kubeconfig, &standby.kubeconfig, &both);
    let get = |context: &str, ns: &str| {
        let mut c = primary.cmd();
        c.env_remove("LIFEBOAT_MODE").env("KUBECONFIG", &both);
        ok(
            c.args([
                "--kubecontext",
                context,
                "-n",
                ns,
                "backup",
                "get",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .output()
            .unwrap(),
            "backup get",
        )
    };
    let on_standby = get("standby", standby_ns);
    for name in synced {
        assert!(
            on_standby.split_whitespace().any(|n| n == *name),
            "{name} not in the standby's list: {on_standby}"
        );
    }
    let on_primary = get("primary", NS);
    for name in synced {
        assert!(
            on_primary.split_whitespace().any(|n| n == *name),
            "{name} not in the primary's list: {on_primary}"
        );
    }
    // The standby's namespace does not exist on the primary: nothing there.
    assert_eq!(get("primary", standby_ns).trim(), "");
}
