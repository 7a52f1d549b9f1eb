//! Restore hooks (Velero's `spec.hooks` of a Restore), as data: which restored pods get
//! which init containers, and which exec hooks run in which restored pods. Init-container
//! hooks are a change to the pod before it is created, so they are applied here, purely;
//! exec hooks are planned here and run by the engine once the container runs.
//!
//! - `spec.hooks.resources[]`: namespaces (globs, matched against the namespace the pod
//!   is restored into), resources (pods), label selector, `postHooks[]` each `init`
//!   (`initContainers`, `timeout`) or `exec`.
//! - Pod annotations `init.hook.restore.velero.io/container-image`, `/container-name`,
//!   `/command` (a JSON list or one word) add one init container and replace the spec's
//!   init hooks for that pod.
//! - Hook init containers go before the pod's own init containers, in hook order.
//! - Exec hooks: `postHooks[].exec` (`container`, `command`, `onError`, `execTimeout`,
//!   `waitTimeout`, `waitForReady`), or the pod annotations
//!   `post.hook.restore.velero.io/command`, `/container`, `/on-error`, `/exec-timeout`,
//!   `/wait-timeout`, `/wait-for-ready`, which replace the spec's exec hooks for that pod.
//!   Defaults: the pod's first container, onError Continue (Velero's default for restore
//!   exec hooks), execTimeout 30s. Velero waits for the container forever when
//!   `waitTimeout` is unset; lifeboat waits [`DEFAULT_WAIT_TIMEOUT`] so that a restore
//!   always ends.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::duration::GoDuration;
use crate::selector::Selector;
use crate::velero::{HookErrorMode, LabelSelector};

/// How long a command may run when `execTimeout` is unset (Velero's default).
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the container when `waitTimeout` is unset.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// `spec.hooks` of a Restore.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreHooks {
    /// Hook sets.
    #[serde(default)]
    pub resources: Vec<RestoreResourceHookSpec>,
}

/// One hook set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreResourceHookSpec {
    /// Its name.
    pub name: String,
    /// Namespace globs (of the restored pod).
    #[serde(default)]
    pub included_namespaces: Vec<String>,
    /// Namespace globs excluded.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// Resources (only pods have hooks).
    #[serde(default)]
    pub included_resources: Vec<String>,
    /// Resources excluded.
    #[serde(default)]
    pub excluded_resources: Vec<String>,
    /// Label selector.
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    /// The hooks.
    #[serde(default)]
    pub post_hooks: Vec<RestoreResourceHook>,
}

/// One hook: `init` or `exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreResourceHook {
    /// Init containers to add.
    #[serde(default)]
    pub init: Option<InitRestoreHook>,
    /// A command to run once the container runs.
    #[serde(default)]
    pub exec: Option<ExecRestoreHook>,
}

/// An exec hook of a restore.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecRestoreHook {
    /// The container; the pod's first when unset.
    #[serde(default)]
    pub container: Option<String>,
    /// The command.
    pub command: Vec<String>,
    /// What a failure does (default Continue).
    #[serde(default)]
    pub on_error: Option<HookErrorMode>,
    /// How long the command may run.
    #[serde(default)]
    pub exec_timeout: Option<GoDuration>,
    /// How long to wait for the container to run, from the pod's restore.
    #[serde(default)]
    pub wait_timeout: Option<GoDuration>,
    /// Wait for the container to be ready, not only running.
    #[serde(default)]
    pub wait_for_ready: Option<bool>,
}

/// One exec hook to run in a restored pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRestoreExec {
    /// The hook set's name, or `<annotations>`.
    pub source: String,
    /// The container.
    pub container: String,
    /// The command.
    pub command: Vec<String>,
    /// What a failure does.
    pub on_error: HookErrorMode,
    /// How long the command may run.
    pub exec_timeout: Duration,
    /// How long to wait for the container, from the pod's restore.
    pub wait_timeout: Duration,
    /// Wait for readiness, not only running.
    pub wait_for_ready: bool,
}

/// An init-container hook.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitRestoreHook {
    /// Containers (Kubernetes Container objects).
    #[serde(default)]
    pub init_containers: Vec<Value>,
    /// Velero's wait for the init containers (not used: the kubelet runs them).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// Parses `spec.hooks`; an unknown field is an error naming it.
pub fn parse(v: Option<&Value>) -> Result<RestoreHooks, String> {
    match v {
        None | Some(Value::Null) => Ok(RestoreHooks::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("spec.hooks: {e}")),
    }
}

fn glob(patterns: &[String], ns: &str) -> bool {
    patterns.iter().any(|p| {
        globset::Glob::new(p)
            .map(|g| g.compile_matcher().is_match(ns))
            .unwrap_or(false)
    })
}

fn pods(list: &[String]) -> bool {
    list.iter()
        .any(|r| matches!(r.as_str(), "*" | "pods" | "pod" | "po"))
}

/// Whether `spec` selects a pod restored into `ns` with `labels`.
fn selects(spec: &RestoreResourceHookSpec, ns: &str, labels: &BTreeMap<String, String>) -> bool {
    (spec.included_namespaces.is_empty() || glob(&spec.included_namespaces, ns))
        && !glob(&spec.excluded_namespaces, ns)
        && (spec.included_resources.is_empty() || pods(&spec.included_resources))
        && !pods(&spec.excluded_resources)
        && spec
            .label_selector
            .as_ref()
            .is_none_or(|ls| Selector::from_label_selector(ls).is_ok_and(|s| s.matches(labels)))
}

fn labels(pod: &Value) -> BTreeMap<String, String> {
    pod.pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

/// Adds the init containers of every matching hook (or of the pod's annotations) to
/// `pod` (a Pod object restored into `ns`); returns the names of the hooks applied.
pub fn apply_init_hooks(hooks: &RestoreHooks, pod: &mut Value, ns: &str) -> Vec<String> {
    let labels = labels(pod);
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(format!("init.hook.restore.velero.io/{k}")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut added: Vec<Value> = Vec::new();
    let mut applied = Vec::new();
    if let (Some(image), Some(command)) = (ann("container-image"), ann("command")) {
        let command: Vec<String> = if command.trim_start().starts_with('[') {
            serde_json::from_str(&command).unwrap_or_else(|_| vec![command.clone()])
        } else {
            vec![command]
        };
        let name = ann("container-name").unwrap_or_else(|| "restore-hook".into());
        added.push(json!({ "name": name, "image": image, "command": command }));
        applied.push("<annotations>".to_string());
    } else {
        for spec in hooks.resources.iter().filter(|s| selects(s, ns, &labels)) {
            for h in &spec.post_hooks {
                if let Some(init) = &h.init {
                    added.extend(init.init_containers.iter().cloned());
                    applied.push(spec.name.clone());
                }
            }
        }
    }
    if !added.is_empty() {
        let existing = pod
            .pointer("/spec/initContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        added.extend(existing);
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("initContainers".into(), Value::Array(added));
        }
    }
    applied.dedup();
    applied
}

fn first_container(pod: &Value) -> Result<String, String> {
    pod.pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "the pod has no containers".to_string())
}

fn exec_from_annotations(pod: &Value) -> Option<Result<PlannedRestoreExec, String>> {
    let key = |k: &str| format!("post.hook.restore.velero.io/{k}");
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(key(k)))
            .and_then(Value::as_str)
    };
    let raw = ann("command")?;
    let duration = |k: &str, default: Duration| -> Result<Duration, String> {
        match ann(k) {
            None => Ok(default),
            Some(t) => t
                .parse::<GoDuration>()
                .map(|d| d.0)
                .map_err(|e| format!("annotation {}: {e}", key(k))),
        }
    };
    Some((|| {
        let command: Vec<String> = if raw.trim_start().starts_with('[') {
            serde_json::from_str(raw).map_err(|e| {
                format!(
                    "annotation {}: not a JSON list of strings: {e}",
                    key("command")
                )
            })?
        } else {
            vec![raw.to_string()]
        };
        if command.is_empty() {
            return Err(format!("annotation {} is an empty command", key("command")));
        }
        let container = match ann("container") {
            Some(c) => c.to_string(),
            None => first_container(pod)?,
        };
        let on_error = match ann("on-error") {
            None | Some("Continue") => HookErrorMode::Continue,
            Some("Fail") => HookErrorMode::Fail,
            Some(other) => {
                return Err(format!(
                    "annotation {}: {other:?} is not Continue or Fail",
                    key("on-error")
                ));
            }
        };
        let wait_for_ready = match ann("wait-for-ready") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "annotation {}: {other:?} is not true or false",
                    key("wait-for-ready")
                ));
            }
        };
        Ok(PlannedRestoreExec {
            source: "<annotations>".into(),
            container,
            command,
            on_error,
            exec_timeout: duration("exec-timeout", DEFAULT_EXEC_TIMEOUT)?,
            wait_timeout: duration("wait-timeout", DEFAULT_WAIT_TIMEOUT)?,
            wait_for_ready,
        })
    })())
}

/// The exec hooks to run in `pod` (as it is created, restored into `ns`), in order: the
/// pod's `post.hook.restore.velero.io/*` annotations when it has a command annotation,
/// otherwise every matching hook set's exec hooks. A problem (a bad annotation, a pod
/// without containers, an empty command) is an error naming it.
pub fn plan_exec_hooks(
    hooks: &RestoreHooks,
    pod: &Value,
    ns: &str,
) -> Result<Vec<PlannedRestoreExec>, String> {
    if let Some(h) = exec_from_annotations(pod) {
        return h.map(|h| vec![h]);
    }
    let labels = labels(pod);
    let mut out = Vec::new();
    for spec in hooks.resources.iter().filter(|s| selects(s, ns, &labels)) {
        for e in spec.post_hooks.iter().filter_map(|h| h.exec.as_ref()) {
            if e.command.is_empty() {
                return Err(format!("hook {:?} has an empty command", spec.name));
            }
            out.push(PlannedRestoreExec {
                source: spec.name.clone(),
                container: match &e.container {
                    Some(c) => c.clone(),
                    None => first_container(pod)?,
                },
                command: e.command.clone(),
                on_error: e.on_error.unwrap_or(HookErrorMode::Continue),
                exec_timeout: e.exec_timeout.map_or(DEFAULT_EXEC_TIMEOUT, |d| d.0),
                wait_timeout: e.wait_timeout.map_or(DEFAULT_WAIT_TIMEOUT, |d| d.0),
                wait_for_ready: e.wait_for_ready.unwrap_or(false),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks() -> RestoreHooks {
        parse(Some(&json!({"resources": [{
            "name": "restore-db",
            "includedNamespaces": ["shop-*"],
            "labelSelector": {"matchLabels": {"app": "db"}},
            "postHooks": [
                {"init": {"initContainers": [{"name": "fetch", "image": "alpine", "command": ["/fetch.sh"]}], "timeout": "2m"}},
                {"exec": {"command": ["/bin/check"], "onError": "Fail", "execTimeout": "1m", "waitTimeout": "5m", "waitForReady": true}},
                {"exec": {"container": "sidecar", "command": ["/bin/warm"]}}
            ]
        }]})))
        .unwrap()
    }

    fn pod(labels: Value, annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": labels, "annotations": annotations},
            "spec": {"initContainers": [{"name": "own", "image": "busybox"}], "containers": [{"name": "c", "image": "x"}]}})
    }

    #[test]
    fn matching_pods_get_hook_init_containers_first() {
        let mut p = pod(json!({"app": "db"}), json!({}));
        let applied = apply_init_hooks(&hooks(), &mut p, "shop-eu");
        assert_eq!(applied, ["restore-db"]);
        let names: Vec<&str> = p["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["fetch", "own"]);
    }

    #[test]
    fn other_pods_and_namespaces_are_untouched() {
        for (labels, ns) in [
            (json!({"app": "web"}), "shop-eu"),
            (json!({"app": "db"}), "dev"),
        ] {
            let mut p = pod(labels, json!({}));
            let before = p.clone();
            let applied = apply_init_hooks(&hooks(), &mut p, ns);
            assert!(applied.is_empty());
            assert_eq!(p, before);
            assert_eq!(plan_exec_hooks(&hooks(), &p, ns), Ok(vec![]));
        }
    }

    #[test]
    fn annotations_add_one_init_container_instead() {
        let mut p = pod(
            json!({"app": "db"}),
            json!({
                "init.hook.restore.velero.io/container-image": "alpine:3",
                "init.hook.restore.velero.io/container-name": "restore-data",
                "init.hook.restore.velero.io/command": "[\"/bin/sh\",\"-c\",\"echo hi\"]"
            }),
        );
        let applied = apply_init_hooks(&hooks(), &mut p, "shop-eu");
        assert_eq!(applied, ["<annotations>"]);
        let first = &p["spec"]["initContainers"][0];
        assert_eq!(first["name"], "restore-data");
        assert_eq!(first["command"][2], "echo hi");
        assert_eq!(p["spec"]["initContainers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = parse(Some(&json!({"resources": [{"name": "x", "postHook": []}]}))).unwrap_err();
        assert!(err.contains("postHook"), "{err}");
        let err = parse(Some(&json!({"resources": [{"name": "x", "postHooks": [
            {"exec": {"command": ["a"], "timeout": "1m"}}
        ]}]})))
        .unwrap_err();
        assert!(err.contains("timeout"), "{err}");
    }

    fn planned(
        source: &str,
        container: &str,
        command: &[&str],
        on_error: HookErrorMode,
        exec_s: u64,
        wait_s: u64,
        ready: bool,
    ) -> PlannedRestoreExec {
        PlannedRestoreExec {
            source: source.into(),
            container: container.into(),
            command: command.iter().map(|c| c.to_string()).collect(),
            on_error,
            exec_timeout: Duration::from_secs(exec_s),
            wait_timeout: Duration::from_secs(wait_s),
            wait_for_ready: ready,
        }
    }

    #[test]
    fn spec_exec_hooks_are_planned_in_order_with_defaults() {
        let p = pod(json!({"app": "db"}), json!({}));
        assert_eq!(
            plan_exec_hooks(&hooks(), &p, "shop-eu").unwrap(),
            [
                planned(
                    "restore-db",
                    "c",
                    &["/bin/check"],
                    HookErrorMode::Fail,
                    60,
                    300,
                    true
                ),
                planned(
                    "restore-db",
                    "sidecar",
                    &["/bin/warm"],
                    HookErrorMode::Continue,
                    30,
                    600,
                    false
                ),
            ]
        );
    }

    #[rstest::rstest]
    #[case::json_list(
        json!({"post.hook.restore.velero.io/command": "[\"/bin/sh\",\"-c\",\"ready\"]",
               "post.hook.restore.velero.io/container": "db",
               "post.hook.restore.velero.io/on-error": "Fail",
               "post.hook.restore.velero.io/exec-timeout": "2m",
               "post.hook.restore.velero.io/wait-timeout": "10s",
               "post.hook.restore.velero.io/wait-for-ready": "true"}),
        Ok(vec![planned("<annotations>", "db", &["/bin/sh", "-c", "ready"], HookErrorMode::Fail, 120, 10, true)])
    )]
    #[case::one_word_and_defaults(
        json!({"post.hook.restore.velero.io/command": "/warm"}),
        Ok(vec![planned("<annotations>", "c", &["/warm"], HookErrorMode::Continue, 30, 600, false)])
    )]
    #[case::bad_on_error(
        json!({"post.hook.restore.velero.io/command": "/warm", "post.hook.restore.velero.io/on-error": "Stop"}),
        Err("annotation post.hook.restore.velero.io/on-error: \"Stop\" is not Continue or Fail".to_string())
    )]
    #[case::bad_timeout(
        json!({"post.hook.restore.velero.io/command": "/warm", "post.hook.restore.velero.io/wait-timeout": "soon"}),
        Err("annotation post.hook.restore.velero.io/wait-timeout".to_string())
    )]
    #[case::bad_bool(
        json!({"post.hook.restore.velero.io/command": "/warm", "post.hook.restore.velero.io/wait-for-ready": "yes"}),
        Err("annotation post.hook.restore.velero.io/wait-for-ready: \"yes\" is not true or false".to_string())
    )]
    fn annotations_replace_the_spec_exec_hooks(
        #[case] annotations: Value,
        #[case] want: Result<Vec<PlannedRestoreExec>, String>,
    ) {
        let p = pod(json!({"app": "db"}), annotations);
        match (plan_exec_hooks(&hooks(), &p, "shop-eu"), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.starts_with(&want), "{got}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }
}
