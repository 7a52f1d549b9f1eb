//! Every `velero` command line of the DR guides runs with the binary name swapped (issue 13,
//! item 5). The lines live in this repository (`tests/fixtures/guide-lines.txt`, in the
//! guides' forms), so a clone anywhere runs them; `docs/guide-lines.md` lists each with its
//! result, and when the guides sit beside the clone (`../shared/seeds`, required in CI)
//! every `velero` line found in them must be one of these.

use std::collections::BTreeMap;

use crate::seeds::seed_texts;
use crate::support::*;

const LINES: &str = include_str!("../fixtures/guide-lines.txt");
const DOCS: &str = include_str!("../../../../docs/guide-lines.md");

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Exit 0.
    Ok,
    /// Needs a public cloud: rendered with `--dry-run -o yaml` (every flag accepted, the
    /// whole install printed), not applied.
    Cloud(String),
}

#[derive(Debug, Clone)]
struct GuideLine {
    expect: Expect,
    /// The line as the guides write it, `velero` first.
    command: String,
}

fn guide_lines() -> Vec<GuideLine> {
    LINES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let at = l
                .find("velero ")
                .unwrap_or_else(|| panic!("no command: {l}"));
            let (expect, command) = (l[..at].trim(), l[at..].trim().to_owned());
            let expect = match expect {
                "ok" => Expect::Ok,
                e => Expect::Cloud(
                    e.strip_prefix("cloud:")
                        .unwrap_or_else(|| panic!("unknown expectation {e:?}: {l}"))
                        .trim()
                        .to_owned(),
                ),
            };
            GuideLine { expect, command }
        })
        .collect()
}

/// A line of the guides reduced to what must match: quotes dropped, a pipe or the end of
/// a command substitution cut off, every placeholder (`$x`, `${x}`, `<x>`, the guides'
/// dated backup names) one `$`.
fn normalized(line: &str) -> String {
    let mut s = line.replace(['"', '\''], "");
    if let Some(i) = s.find(" |") {
        s.truncate(i);
    }
    let s = s
        .trim_end_matches(')')
        .trim()
        .replace("daily-full-backup-", "$");
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '$' {
            let r = rest[1..].strip_prefix('{').unwrap_or(&rest[1..]);
            let r = r.trim_start_matches(word);
            rest = r.strip_prefix('}').unwrap_or(r);
            out.push('$');
        } else if let Some(r) = rest
            .strip_prefix('<')
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_lowercase() || c == '-'))
            .and_then(|r| r.strip_prefix('>'))
        {
            rest = r;
            out.push('$');
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `velero` command lines in the guides' text (continuation lines joined); prose that
/// mentions velero (`velero not installed`, an image name) is not a command line.
fn seed_lines(text: &str) -> Vec<String> {
    const VERBS: &[&str] = &[
        "backup",
        "restore",
        "install",
        "version",
        "backup-location",
        "schedule",
        "snapshot-location",
        "--kubecontext",
    ];
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(at) = l.find("velero ").filter(|&at| {
            at == 0 || !l.as_bytes()[at - 1].is_ascii_alphanumeric() && l.as_bytes()[at - 1] != b'/'
        }) {
            let mut cmd = l[at..].to_owned();
            while cmd.trim_end().ends_with('\\') && i + 1 < lines.len() {
                i += 1;
                cmd = format!(
                    "{} {}",
                    cmd.trim_end().trim_end_matches('\\'),
                    lines[i].trim()
                );
            }
            let cmd = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
            let verb = cmd.split_whitespace().nth(1).unwrap_or("");
            if VERBS
                .iter()
                .any(|v| verb == *v || verb.starts_with("--kubecontext="))
            {
                out.push(cmd);
            }
        }
        i += 1;
    }
    out
}

#[test]
fn the_docs_table_lists_every_guide_line() {
    for l in guide_lines() {
        assert!(
            DOCS.contains(&format!("`{}`", l.command)),
            "docs/guide-lines.md does not list `{}`",
            l.command
        );
    }
}

#[test]
fn every_velero_line_of_the_guides_is_a_guide_line() {
    // No shared/ beside this clone: no guides, an extra check (required in CI).
    let ours: Vec<String> = guide_lines()
        .iter()
        .map(|l| normalized(&l.command))
        .collect();
    let mut missing = Vec::new();
    for (f, text) in seed_texts() {
        for l in seed_lines(&text) {
            if !ours.contains(&normalized(&l)) {
                missing.push(format!("{}: {l}", f.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "lines of the guides missing from tests/fixtures/guide-lines.txt:\n{}",
        missing.join("\n")
    );
}

#[test]
fn normalizing_keeps_the_command_and_drops_placeholders() {
    assert_eq!(
        normalized(r#"velero restore get "$RESTORE_NAME" -o jsonpath='{.status.phase}')"#),
        "velero restore get $ -o jsonpath={.status.phase}"
    );
    assert_eq!(
        normalized("velero backup get -o json | jq '.items | length')"),
        "velero backup get -o json"
    );
    assert_eq!(
        normalized(
            "velero restore create ${DRILL_ID}-restore --from-backup daily-full-backup-20260118"
        ),
        "velero restore create $-restore --from-backup $"
    );
    assert_eq!(
        seed_lines(
            "x\nvelero backup create a \\\n  --ttl 1h\nif velero not installed\n/usr/local/bin/velero version\n"
        ),
        vec!["velero backup create a --ttl 1h".to_owned()]
    );
}

/// The current context's name in a kubeconfig.
fn current_context(kubeconfig: &std::path::Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("current-context:"))
        .expect("a current context")
        .trim()
        .trim_matches('"')
        .to_owned()
}

#[test]
#[ignore = "needs the dev cluster and moto: run scripts/test.sh"]
fn every_guide_line_runs() {
    let env = Env::new();
    let ctx = current_context(&env.kubeconfig);
    let mut bind: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in [
        ("${DRILL_ID}", "drill1"),
        ("$DRILL_ID", "drill1"),
        ("$backup_name", "guide-nightly"),
        ("$BACKUP_NAME", "guide-nightly"),
        ("$latest_backup", "guide-nightly"),
        ("$LATEST_BACKUP", "guide-nightly"),
        ("$backup", "guide-nightly"),
        ("<name>", "guide-nightly"),
        ("$app_backup", "guide-app"),
        ("$FAILBACK_BACKUP", "guide-failback"),
        ("$daily_backup", "daily-full-backup-20260118"),
        ("$namespace", "production"),
        ("$NAMESPACE", "production"),
        ("$TEST_NAMESPACE", "production-drill"),
        ("$app_name", "web"),
        ("$restore_name2", "guide-restore-2"),
        ("$restore_name", "guide-restore"),
        ("$RESTORE_NAME", "guide-restore-3"),
        ("<restore-name>", "guide-restore"),
        ("$BUCKET_NAME", "lifeboat-guide"),
        ("$REGION", "us-east-1"),
    ] {
        bind.insert(k, v.to_owned());
    }
    // One cluster plays both sides of the failover lines here; two clusters are the DR
    // issue's.
    bind.insert("$STANDBY_CLUSTER", ctx.clone());
    bind.insert("$PRIMARY_CLUSTER", ctx);

    // What the guides' lines act on.
    env.apply(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: production}
---
apiVersion: v1
kind: Namespace
metadata: {name: staging}
---
apiVersion: v1
kind: Namespace
metadata: {name: velero}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: production, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: my-app-config, namespace: production, labels: {app: my-app}}
data: {mode: live}
---
apiVersion: v1
kind: Secret
metadata: {name: guide-db, namespace: production}
stringData: {password: not-a-real-one}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: production}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: staging-settings, namespace: staging}
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: restore-modifier, namespace: velero}
data:
  modifiers.yaml: |
    version: v1
    resourceModifierRules:
    - conditions: {groupResource: configmaps, namespaces: [production]}
      patches: [{operation: add, path: /metadata/labels/restored-by, value: guide}]
"#,
    );
    // The credentials file the install lines read (the guides have the user write it).
    std::fs::write(
        env.dir.path().join("credentials-velero"),
        "[default]\naws_access_key_id = guide-key\naws_secret_access_key = guide-secret\n",
    )
    .unwrap();
    // The daily backup guide 002 restores from.
    env.ok(&[
        "backup",
        "create",
        "daily-full-backup-20260118",
        "--include-namespaces",
        "production",
    ]);

    let mut failed = Vec::new();
    for l in guide_lines() {
        let mut cmd = l.command.clone();
        // Longest placeholders first (`$restore_name2` before `$restore_name`).
        let mut keys: Vec<&&str> = bind.keys().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
        for k in keys {
            cmd = cmd.replace(*k, &bind[*k]);
        }
        let mut args: Vec<String> = cmd.split_whitespace().skip(1).map(str::to_owned).collect();
        if let Expect::Cloud(_) = l.expect {
            args.extend(["--dry-run", "-o", "yaml"].map(str::to_owned));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&args);
        if !out.status.success() {
            failed.push(format!(
                "{} (exit {:?}): {}{}",
                l.command,
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "guide lines that failed:\n{}",
        failed.join("\n")
    );
    // What the lines did is what they say.
    let cm = env.kubectl(
        &[
            "get",
            "configmap",
            "-n",
            "production-restored",
            "my-app-config",
            "-o",
            "jsonpath={.data.mode}",
        ],
        None,
    );
    assert_eq!(cm, "live", "restored under the mapped namespace");
    let staged = env.kubectl(
        &["get", "deployment", "-n", "staging", "web", "-o", "name"],
        None,
    );
    assert_eq!(
        staged.trim(),
        "deployment.apps/web",
        "production:staging mapping"
    );
    for ns in ["production-restored", "production-drill"] {
        env.kubectl(
            &[
                "delete",
                "namespace",
                ns,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}
