//! Every velero.io/v1 document in the DR guides (shared/seeds) is a test case.

use std::path::PathBuf;

use lifeboat_types::format::document::{VeleroDocument, parse_documents};

use crate::support::*;

/// shared/seeds: `$LIFEBOAT_SHARED_DIR/seeds`, else `../shared/seeds` beside the clone.
/// A clone that does not sit next to shared/ has no seeds: the seed checks are then
/// skipped with a note, except in CI (`CI=true`), where shared/ is always laid out.
fn seeds_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LIFEBOAT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("seeds");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no seeds at {}: set LIFEBOAT_SHARED_DIR",
        dir.display()
    );
    eprintln!(
        "note: no seeds at {}; the seed checks are skipped (set LIFEBOAT_SHARED_DIR)",
        dir.display()
    );
    None
}

/// The guides (`*.txt` in shared/seeds) in name order, each with its text; none when no
/// shared/ sits beside this clone (see [`seeds_dir`]).
pub fn seed_texts() -> Vec<(PathBuf, String)> {
    let Some(dir) = seeds_dir() else {
        return Vec::new();
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

/// Cuts every velero.io/v1 YAML document out of the guides' text: from its `apiVersion`
/// line, as long as lines stay indented at least as deep.
pub fn seed_documents() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (f, text) in seed_texts() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() != "apiVersion: velero.io/v1" {
                continue;
            }
            let indent = l.len() - l.trim_start().len();
            let mut doc = String::new();
            for m in &lines[i..] {
                let t = m.trim_start();
                let ind = m.len() - t.len();
                if !doc.is_empty()
                    && (t.starts_with("```")
                        || t == "---"
                        || t.starts_with("EOF")
                        || (!t.is_empty() && ind < indent))
                {
                    break;
                }
                doc.push_str(m.get(indent..).unwrap_or(""));
                doc.push('\n');
            }
            out.push((
                format!("{}:{}", f.file_name().unwrap().to_string_lossy(), i + 1),
                doc,
            ));
        }
    }
    out
}

#[test]
fn seed_backups_and_locations_parse() {
    let docs = seed_documents();
    if docs.is_empty() {
        return; // no shared/ beside this clone (seeds_dir said so)
    }
    assert!(docs.len() >= 20, "found only {} documents", docs.len());
    let mut checked = 0;
    let mut schedules = 0;
    for (at, doc) in &docs {
        let kind = doc
            .lines()
            .find_map(|l| l.strip_prefix("kind: "))
            .unwrap_or("")
            .trim();
        if ![
            "Backup",
            "BackupStorageLocation",
            "Restore",
            "Schedule",
            "VolumeSnapshotLocation",
        ]
        .contains(&kind)
        {
            continue;
        }
        let parsed = parse_documents(doc)
            .unwrap_or_else(|e| panic!("{at}: {}\n{doc}", lifeboat_engine::error::chain(&e)));
        assert_eq!(parsed.len(), 1, "{at}");
        match (&parsed[0], kind) {
            (VeleroDocument::Backup(_), "Backup")
            | (VeleroDocument::BackupStorageLocation(_), "BackupStorageLocation")
            | (VeleroDocument::Restore(_), "Restore")
            | (VeleroDocument::VolumeSnapshotLocation(_), "VolumeSnapshotLocation") => {}
            (VeleroDocument::Schedule(s), "Schedule") => {
                // Every seed schedule's cron line is one the server accepts.
                lifeboat_types::rules::schedule::Cron::parse(&s.spec.schedule)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                schedules += 1;
            }
            other => panic!("{at}: parsed as {other:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked}");
    assert!(
        schedules >= 5,
        "only {schedules} Schedule documents checked"
    );
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn seed_backup_document_runs() {
    let env = Env::new();
    let docs = seed_documents();
    if docs.is_empty() {
        return; // no shared/ beside this clone
    }
    let (at, doc) = docs
        .into_iter()
        .find(|(_, d)| d.contains("kind: Backup\n"))
        .expect("the seeds hold a Backup");
    env.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: mysql-config, namespace: production, labels: {app: mysql}}\ndata: {my.cnf: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config, namespace: production, labels: {app: web}}\ndata: {a: b}\n",
    );
    let f = env.dir.path().join("seed.yaml");
    std::fs::write(&f, &doc).unwrap();
    let out = env.ok(&["apply", "-f", f.to_str().unwrap()]);
    assert!(out.contains("Completed"), "{at}: {out}");
    let name = doc
        .lines()
        .find_map(|l| l.trim().strip_prefix("name: "))
        .unwrap()
        .trim()
        .to_owned();
    let t = read_tarball(&env.storage().join(format!("backups/{name}/{name}.tar.gz")));
    assert!(
        t.json
            .contains_key("resources/configmaps/namespaces/production/mysql-config.json")
    );
    assert!(
        !t.json
            .contains_key("resources/configmaps/namespaces/production/web-config.json")
    );
    // The hooks it asks for cannot run here (no kubelet): the backup says so.
    let describe = env.ok(&["backup", "describe", &name, "--details"]);
    assert!(describe.contains("hooks"), "{describe}");
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn seed_command_lines_run() {
    // `velero backup create $backup_name --include-namespaces production,staging --snapshot-volumes --ttl 720h`
    let env = Env::new();
    env.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n");
    env.ok(&[
        "backup",
        "create",
        "seed-cli",
        "--include-namespaces",
        "production,staging",
        "--snapshot-volumes",
        "--ttl",
        "720h",
    ]);
    let ttl = env.ok(&["backup", "get", "seed-cli", "-o", "jsonpath={.spec.ttl}"]);
    assert_eq!(ttl, "720h0m0s");
    // `velero backup get -o json | jq -r '.items[] | ...'` and `velero backup-location get`
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["backup", "get", "-o", "json"])).unwrap();
    assert_eq!(list["items"][0]["status"]["phase"], "Completed");
    assert!(env.ok(&["backup-location", "get"]).contains("default"));
    env.ok(&["backup", "describe", "seed-cli", "--details"]);
    env.ok(&["backup", "delete", "seed-cli", "--confirm"]);
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn seed_restore_document_runs() {
    // 004's "Single Resource Restore": one Deployment by label from hourly-critical-20260209150000.
    let env = Env::new();
    let docs = seed_documents();
    if docs.is_empty() {
        return; // no shared/ beside this clone
    }
    let (at, doc) = docs
        .into_iter()
        .find(|(_, d)| d.contains("name: restore-single-deployment"))
        .expect("the seeds hold restore-single-deployment");
    env.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: production}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api-gateway, namespace: production, labels: {app: api-gateway}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api-gateway}}\n  template:\n    metadata: {labels: {app: api-gateway}}\n    spec: {containers: [{name: gw, image: \"envoy:v1\"}]}\n",
    );
    env.ok(&[
        "backup",
        "create",
        "hourly-critical-20260209150000",
        "--include-namespaces",
        "production",
    ]);
    env.kubectl(
        &["delete", "deployment", "-n", "production", "api-gateway"],
        None,
    );
    let f = env.dir.path().join("restore.yaml");
    std::fs::write(&f, &doc).unwrap();
    let out = env.ok(&["apply", "-f", f.to_str().unwrap()]);
    assert!(out.contains("Completed"), "{at}: {out}");
    let img = env.kubectl(
        &[
            "get",
            "deploy",
            "-n",
            "production",
            "api-gateway",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
        None,
    );
    assert_eq!(img, "envoy:v1");
    assert_eq!(
        env.ok(&[
            "restore",
            "get",
            "restore-single-deployment",
            "-o",
            "jsonpath={.status.phase}"
        ]),
        "Completed"
    );
}
