//! Issue 11, item 3 ("secrets stay secret"): a Secret holding a marker value goes through
//! backup, describe, logs, restore dry runs (text and JSON, which diff the Secret against
//! a changed live copy), a restore, verify and the in-cluster server; the marker (plain, as
//! kubectl's last-applied annotation holds it, or base64, as `data` does) never appears in
//! any output, log or stored file except the backup's tarball.

use std::path::Path;

use base64::Engine as _;

use crate::server_fixture::*;
use crate::support::*;

/// The value the tests hide, and what it becomes after a change on the live side.
const MARKER: &str = "lifeboat-leak-marker-5e1f";
const CHANGED: &str = "lifeboat-leak-changed-9b2c";

fn secret(ns: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {ns}}}\nstringData: {{password: {value}}}\n"
    )
}

/// Every form in which `value` could leak.
fn forms(value: &str) -> [String; 2] {
    [
        value.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(value),
    ]
}

/// Fails naming `what` if `text` holds either marker in any form.
fn assert_clean(what: &str, text: &str) {
    for v in [MARKER, CHANGED] {
        for f in forms(v) {
            assert!(
                !text.contains(&f),
                "{what} shows a secret value ({f}):\n{text}"
            );
        }
    }
}

/// Every stored file below `dir` but the backups' tarballs (`backups/NAME/NAME.tar.gz`),
/// gunzipped where gzip'd, is free of the markers.
fn assert_store_clean(dir: &Path) {
    let files = files_below(dir);
    assert!(!files.is_empty(), "nothing stored in {}", dir.display());
    for f in files {
        let p = dir.join(&f);
        let parts: Vec<&str> = f.split('/').collect();
        if let ["backups", name, file] = parts[..]
            && *file == format!("{name}.tar.gz")
        {
            continue;
        }
        let raw = std::fs::read(&p).unwrap();
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut s)
                .unwrap();
            s
        } else {
            raw
        };
        assert_clean(&f, &String::from_utf8_lossy(&text));
    }
}

/// Stdout and stderr of a command that must succeed.
fn ok_all(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "lifeboat {args:?} failed:\n{text}");
    text
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_secret_value_never_leaves_the_tarball_on_the_cli() {
    let env = Env::new();
    let ns = "it-leak";
    env.apply(&secret(ns, MARKER));
    let mut shown = String::new();
    let mut run = |args: &[&str]| shown.push_str(&ok_all(&env, args));
    run(&["backup", "create", "leak", "--include-namespaces", ns]);
    run(&["backup", "describe", "leak", "--details"]);
    run(&["backup", "describe", "leak", "-o", "json"]);
    run(&["backup", "logs", "leak"]);
    // The live Secret changes (kubectl apply: its last-applied annotation changes too), so
    // the dry runs diff it against the backup.
    env.apply(&secret(ns, CHANGED));
    let dry = ok_all(
        &env,
        &["restore", "create", "--from-backup", "leak", "--dry-run"],
    );
    assert!(
        dry.contains("-  password: (redacted live value)")
            && dry.contains("+  password: (redacted backup value)"),
        "the dry run no longer shows which key changed:\n{dry}"
    );
    shown.push_str(&dry);
    let mut run = |args: &[&str]| shown.push_str(&ok_all(&env, args));
    run(&[
        "restore",
        "create",
        "--from-backup",
        "leak",
        "--dry-run",
        "--existing-resource-policy",
        "update",
        "-o",
        "json",
    ]);
    run(&[
        "restore",
        "create",
        "leak-r",
        "--from-backup",
        "leak",
        "--namespace-mappings",
        &format!("{ns}:{ns}-restored"),
        "--wait",
    ]);
    run(&["restore", "describe", "leak-r", "--details"]);
    run(&["restore", "logs", "leak-r"]);
    run(&["backup", "verify", "leak", "--test-restore", "-o", "json"]);
    assert_clean("the CLI's output", &shown);
    assert_store_clean(&env.storage());
    // The restore itself brought the value back.
    let restored = env.kubectl(
        &[
            "get",
            "secret",
            "-n",
            &format!("{ns}-restored"),
            "db",
            "-o",
            "jsonpath={.data.password}",
        ],
        None,
    );
    assert_eq!(restored, forms(MARKER)[1]);
    env.kubectl(
        &[
            "delete",
            "namespace",
            ns,
            &format!("{ns}-restored"),
            "--wait=false",
        ],
        None,
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn a_secret_value_never_leaves_the_tarball_through_the_server() {
    let fx = shared();
    let ns = "srv-it-secret";
    fx.apply(&secret(ns, MARKER));
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {{name: leak-srv, namespace: {NS}}}\nspec:\n  includedNamespaces: [{ns}]\n"
    ));
    let b = fx.backup_in("leak-srv", &["Completed", "PartiallyFailed", "Failed"], 60);
    assert_eq!(phase(&b), "Completed", "{b}");
    fx.apply(&secret(ns, CHANGED));
    fx.apply(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Restore\nmetadata: {{name: leak-srv-r, namespace: {NS}}}\nspec:\n  backupName: leak-srv\n  namespaceMapping: {{{ns}: {ns}-restored}}\n"
    ));
    let r = eventually(60, "the restore to end", || {
        let r = fx.get(&["restores.lifeboat.dev", "leak-srv-r"]);
        ["Completed", "PartiallyFailed", "Failed"]
            .contains(&phase(&r))
            .then_some(r)
    });
    assert_eq!(phase(&r), "Completed", "{r}");
    let objects = fx.env.kubectl(
        &[
            "-n",
            NS,
            "get",
            "backups.lifeboat.dev,restores.lifeboat.dev",
            "-o",
            "yaml",
        ],
        None,
    );
    assert_clean("the Backup and Restore objects", &objects);
    assert_clean(
        "the server's log",
        &std::fs::read_to_string(&fx.server.log).unwrap(),
    );
    assert_clean("the metrics", &fx.metrics());
    assert_store_clean(&fx.store);
}
