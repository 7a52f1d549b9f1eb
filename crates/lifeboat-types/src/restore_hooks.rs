//! Restore hooks (Velero's `spec.hooks` of a Restore), as data: which restored pods get
//! which init containers. Init-container hooks are a change to the pod before it is
//! created, so they are applied here, purely; post-exec hooks need a running pod.
//!
//! - `spec.hooks.resources[]`: namespaces (globs, matched against the namespace the pod
//!   is restored into), resources (pods), label selector, `postHooks[]` each `init`
//!   (`initContainers`, `timeout`) or `exec`.
//! - Pod annotations `init.hook.restore.velero.io/container-image`, `/container-name`,
//!   `/command` (a JSON list or one word) add one init container and replace the spec's
//!   init hooks for that pod.
//! - Hook init containers go before the pod's own init containers, in hook order.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::selector::Selector;
use crate::velero::LabelSelector;

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
    /// A command to run once the pod runs (kept as written).
    #[serde(default)]
    pub exec: Option<Value>,
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

/// Adds the init containers of every matching hook (or of the pod's annotations) to
/// `pod` (a Pod object restored into `ns`); returns the names of the hooks applied and
/// the number of exec hooks that matched (which are not run).
pub fn apply_init_hooks(hooks: &RestoreHooks, pod: &mut Value, ns: &str) -> (Vec<String>, usize) {
    let labels: BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(format!("init.hook.restore.velero.io/{k}")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut added: Vec<Value> = Vec::new();
    let mut applied = Vec::new();
    let mut exec_hooks = 0;
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
                if h.exec.is_some() {
                    exec_hooks += 1;
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
    (applied, exec_hooks)
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
                {"exec": {"command": ["/bin/check"], "onError": "Continue"}}
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
        let (applied, execs) = apply_init_hooks(&hooks(), &mut p, "shop-eu");
        assert_eq!(applied, ["restore-db"]);
        assert_eq!(execs, 1);
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
            let (applied, _) = apply_init_hooks(&hooks(), &mut p, ns);
            assert!(applied.is_empty());
            assert_eq!(p, before);
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
        let (applied, _) = apply_init_hooks(&hooks(), &mut p, "shop-eu");
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
    }
}
