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

use crate::api::duration::GoDuration;
use crate::api::selector::Selector;
use crate::api::velero::{HookErrorMode, LabelSelector};
use crate::plan::backup_hooks::{matches_ns, names_pods};

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

/// Whether `spec` selects a pod restored into `ns` with `labels`.
fn selects(spec: &RestoreResourceHookSpec, ns: &str, labels: &BTreeMap<String, String>) -> bool {
    (spec.included_namespaces.is_empty() || matches_ns(&spec.included_namespaces, ns))
        && !matches_ns(&spec.excluded_namespaces, ns)
        && (spec.included_resources.is_empty() || names_pods(&spec.included_resources))
        && !names_pods(&spec.excluded_resources)
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

fn first_container(pod: &Value) -> Option<String> {
    pod.pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A duration field: unset and zero both mean the default (a Restore read back from a
/// Velero cluster carries `execTimeout: 0s` and `waitTimeout: 0s`, which Velero treats as
/// unset).
fn or_default(d: Option<Duration>, default: Duration) -> Duration {
    d.filter(|d| !d.is_zero()).unwrap_or(default)
}

/// Go's `strconv.ParseBool`, which Velero uses for `wait-for-ready`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The exec hooks planned for one pod, and what was wrong with how they were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodExecPlan {
    /// The hooks to run, in order.
    pub hooks: Vec<PlannedRestoreExec>,
    /// Problems found (a bad annotation value, a hook with no command): warnings of the
    /// restore, each naming the annotation or hook and what was used instead.
    pub warnings: Vec<String>,
}

fn exec_from_annotations(pod: &Value, warnings: &mut Vec<String>) -> Option<PlannedRestoreExec> {
    let key = |k: &str| format!("post.hook.restore.velero.io/{k}");
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(key(k)))
            .and_then(Value::as_str)
    };
    // An empty command is no command: the spec's hooks apply (as Velero).
    let raw = ann("command").filter(|c| !c.trim().is_empty())?;
    let mut duration = |k: &str, default: Duration| match ann(k) {
        None => default,
        Some(t) => match t.parse::<GoDuration>() {
            Ok(d) => or_default(Some(d.0), default),
            Err(e) => {
                warnings.push(format!(
                    "annotation {}: {e}; using {}",
                    key(k),
                    GoDuration(default)
                ));
                default
            }
        },
    };
    let exec_timeout = duration("exec-timeout", DEFAULT_EXEC_TIMEOUT);
    let wait_timeout = duration("wait-timeout", DEFAULT_WAIT_TIMEOUT);
    let command: Vec<String> = if raw.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<String>>(raw) {
            Ok(c) if !c.is_empty() => c,
            _ => {
                warnings.push(format!(
                    "annotation {}: not a JSON list of strings; run as one word",
                    key("command")
                ));
                vec![raw.to_string()]
            }
        }
    } else {
        vec![raw.to_string()]
    };
    let container = match ann("container") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => match first_container(pod) {
            Some(c) => c,
            None => {
                warnings.push("the pod has no containers; its exec hook is skipped".into());
                return None;
            }
        },
    };
    let on_error = match ann("on-error") {
        Some("Fail") => HookErrorMode::Fail,
        None | Some("Continue") => HookErrorMode::Continue,
        Some(other) => {
            warnings.push(format!(
                "annotation {}: {other:?} is not Continue or Fail; using Continue",
                key("on-error")
            ));
            HookErrorMode::Continue
        }
    };
    let wait_for_ready = match ann("wait-for-ready") {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            warnings.push(format!(
                "annotation {}: {v:?} is not a boolean; using false",
                key("wait-for-ready")
            ));
            false
        }),
    };
    Some(PlannedRestoreExec {
        source: "<annotations>".into(),
        container,
        command,
        on_error,
        exec_timeout,
        wait_timeout,
        wait_for_ready,
    })
}

/// The exec hooks to run in `pod` (as it is created, restored into `ns`), in order: the
/// pod's `post.hook.restore.velero.io/*` annotations when it has a (non-empty) command
/// annotation, otherwise every matching hook set's exec hooks. As Velero, a bad value is
/// not fatal: it is reported and the default used (or the hook skipped, when it has no
/// command or the pod no container).
pub fn plan_exec_hooks(hooks: &RestoreHooks, pod: &Value, ns: &str) -> PodExecPlan {
    let mut plan = PodExecPlan::default();
    if let Some(h) = exec_from_annotations(pod, &mut plan.warnings) {
        plan.hooks.push(h);
        return plan;
    }
    if !plan.warnings.is_empty() {
        return plan;
    }
    let labels = labels(pod);
    for spec in hooks.resources.iter().filter(|s| selects(s, ns, &labels)) {
        for e in spec.post_hooks.iter().filter_map(|h| h.exec.as_ref()) {
            if e.command.is_empty() {
                plan.warnings.push(format!(
                    "restore hook {:?} has an exec hook with an empty command; skipped",
                    spec.name
                ));
                continue;
            }
            let Some(container) = e.container.clone().or_else(|| first_container(pod)) else {
                plan.warnings.push(format!(
                    "restore hook {:?}: the pod has no containers; skipped",
                    spec.name
                ));
                continue;
            };
            plan.hooks.push(PlannedRestoreExec {
                source: spec.name.clone(),
                container,
                command: e.command.clone(),
                on_error: e.on_error.unwrap_or(HookErrorMode::Continue),
                exec_timeout: or_default(e.exec_timeout.map(|d| d.0), DEFAULT_EXEC_TIMEOUT),
                wait_timeout: or_default(e.wait_timeout.map(|d| d.0), DEFAULT_WAIT_TIMEOUT),
                wait_for_ready: e.wait_for_ready.unwrap_or(false),
            });
        }
    }
    plan
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
            assert_eq!(plan_exec_hooks(&hooks(), &p, ns), PodExecPlan::default());
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
            plan_exec_hooks(&hooks(), &p, "shop-eu").hooks,
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
        vec![planned("<annotations>", "db", &["/bin/sh", "-c", "ready"], HookErrorMode::Fail, 120, 10, true)],
        &[]
    )]
    #[case::one_word_and_defaults(
        json!({"post.hook.restore.velero.io/command": "/warm"}),
        vec![planned("<annotations>", "c", &["/warm"], HookErrorMode::Continue, 30, 600, false)],
        &[]
    )]
    #[case::go_bool_spellings_and_zero_durations(
        json!({"post.hook.restore.velero.io/command": "/warm",
               "post.hook.restore.velero.io/wait-for-ready": "T",
               "post.hook.restore.velero.io/exec-timeout": "0s",
               "post.hook.restore.velero.io/wait-timeout": "0s"}),
        vec![planned("<annotations>", "c", &["/warm"], HookErrorMode::Continue, 30, 600, true)],
        &[]
    )]
    #[case::bad_values_warn_and_use_defaults(
        json!({"post.hook.restore.velero.io/command": "[not json",
               "post.hook.restore.velero.io/on-error": "Stop",
               "post.hook.restore.velero.io/wait-timeout": "soon",
               "post.hook.restore.velero.io/wait-for-ready": "yes"}),
        vec![planned("<annotations>", "c", &["[not json"], HookErrorMode::Continue, 30, 600, false)],
        &[
            "annotation post.hook.restore.velero.io/wait-timeout",
            "annotation post.hook.restore.velero.io/command: not a JSON list of strings; run as one word",
            "annotation post.hook.restore.velero.io/on-error: \"Stop\" is not Continue or Fail; using Continue",
            "annotation post.hook.restore.velero.io/wait-for-ready: \"yes\" is not a boolean; using false",
        ]
    )]
    #[case::empty_command_means_the_spec_applies(
        json!({"post.hook.restore.velero.io/command": " "}),
        vec![
            planned("restore-db", "c", &["/bin/check"], HookErrorMode::Fail, 60, 300, true),
            planned("restore-db", "sidecar", &["/bin/warm"], HookErrorMode::Continue, 30, 600, false),
        ],
        &[]
    )]
    fn annotations_replace_the_spec_exec_hooks(
        #[case] annotations: Value,
        #[case] want: Vec<PlannedRestoreExec>,
        #[case] warnings: &[&str],
    ) {
        let p = pod(json!({"app": "db"}), annotations);
        let plan = plan_exec_hooks(&hooks(), &p, "shop-eu");
        assert_eq!(plan.hooks, want);
        assert_eq!(plan.warnings.len(), warnings.len(), "{:?}", plan.warnings);
        for (got, want) in plan.warnings.iter().zip(warnings) {
            assert!(got.starts_with(want), "{got}");
        }
    }

    #[test]
    fn spec_zero_durations_are_defaults_and_empty_commands_are_skipped() {
        let h = parse(Some(
            &json!({"resources": [{"name": "velero-readback", "postHooks": [
                {"exec": {"command": ["/a"], "execTimeout": "0s", "waitTimeout": "0s"}},
                {"exec": {"command": []}}
            ]}]}),
        ))
        .unwrap();
        let plan = plan_exec_hooks(&h, &pod(json!({}), json!({})), "x");
        assert_eq!(
            plan.hooks,
            [planned(
                "velero-readback",
                "c",
                &["/a"],
                HookErrorMode::Continue,
                30,
                600,
                false
            )]
        );
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    }
}
