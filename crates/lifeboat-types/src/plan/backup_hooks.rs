//! Which exec hooks run in which pods around a backup, as data (Velero's rules):
//!
//! - Pod annotations `pre.hook.backup.velero.io/command` (a JSON array, or one word),
//!   `/container`, `/on-error` (Continue|Fail), `/timeout` (Go duration), and the same with
//!   `post.` — when a pod has the command annotation for a phase, it replaces the spec's
//!   hooks for that phase in that pod.
//! - Otherwise every `spec.hooks.resources[]` entry whose namespaces, resources (pods)
//!   and label selector match the pod contributes its `pre`/`post` exec hooks, in order.
//! - Defaults: the pod's first container, onError Fail, timeout 30s.

use std::collections::BTreeMap;
use std::time::Duration;

use globset::Glob;

use crate::api::duration::GoDuration;
use crate::api::selector::Selector;
use crate::api::velero::{BackupHooks, ExecHook, HookErrorMode};

/// What the planner needs of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Container names, in order.
    pub containers: Vec<String>,
}

/// Before or after the backup of the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `pre`.
    Pre,
    /// `post`.
    Post,
}

impl Phase {
    fn prefix(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
        }
    }
}

/// One hook to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHook {
    /// The spec entry's name, or `<annotations>`.
    pub source: String,
    /// The container.
    pub container: String,
    /// The command.
    pub command: Vec<String>,
    /// What a failure does.
    pub on_error: HookErrorMode,
    /// How long it may run.
    pub timeout: Duration,
}

/// The hooks of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHooks {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Before.
    pub pre: Vec<PlannedHook>,
    /// After.
    pub post: Vec<PlannedHook>,
}

/// The default hook timeout (Velero's).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether any namespace glob of `patterns` matches `ns` (backup and restore hooks).
pub(crate) fn matches_ns(patterns: &[String], ns: &str) -> bool {
    patterns.iter().any(|p| {
        Glob::new(p)
            .map(|g| g.compile_matcher().is_match(ns))
            .unwrap_or(false)
    })
}

/// Whether a hook's resource list names pods (backup and restore hooks).
pub(crate) fn names_pods(resources: &[String]) -> bool {
    resources
        .iter()
        .any(|r| matches!(r.as_str(), "*" | "pods" | "pod" | "po"))
}

fn from_annotations(pod: &PodInfo, phase: Phase) -> Option<Result<PlannedHook, String>> {
    let key = |k: &str| format!("{}.hook.backup.velero.io/{k}", phase.prefix());
    let raw = pod.annotations.get(&key("command"))?;
    Some((|| {
        let command: Vec<String> = if raw.trim_start().starts_with('[') {
            serde_json::from_str(raw).map_err(|e| {
                format!(
                    "annotation {}: not a JSON list of strings: {e}",
                    key("command")
                )
            })?
        } else {
            vec![raw.clone()]
        };
        if command.is_empty() {
            return Err(format!("annotation {} is an empty command", key("command")));
        }
        let container = match pod.annotations.get(&key("container")) {
            Some(c) => c.clone(),
            None => pod
                .containers
                .first()
                .cloned()
                .ok_or("the pod has no containers")?,
        };
        let on_error = match pod.annotations.get(&key("on-error")).map(String::as_str) {
            None | Some("Fail") => HookErrorMode::Fail,
            Some("Continue") => HookErrorMode::Continue,
            Some(other) => {
                return Err(format!(
                    "annotation {}: {other:?} is not Continue or Fail",
                    key("on-error")
                ));
            }
        };
        let timeout = match pod.annotations.get(&key("timeout")) {
            Some(t) => {
                t.parse::<GoDuration>()
                    .map_err(|e| format!("annotation {}: {e}", key("timeout")))?
                    .0
            }
            None => DEFAULT_TIMEOUT,
        };
        Ok(PlannedHook {
            source: "<annotations>".into(),
            container,
            command,
            on_error,
            timeout,
        })
    })())
}

fn from_exec(source: &str, pod: &PodInfo, e: &ExecHook) -> Result<PlannedHook, String> {
    let container = match &e.container {
        Some(c) => c.clone(),
        None => pod
            .containers
            .first()
            .cloned()
            .ok_or("the pod has no containers")?,
    };
    if e.command.is_empty() {
        return Err(format!("hook {source:?} has an empty command"));
    }
    Ok(PlannedHook {
        source: source.to_string(),
        container,
        command: e.command.clone(),
        on_error: e.on_error.unwrap_or(HookErrorMode::Fail),
        timeout: e.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT),
    })
}

/// The hooks of every pod that has some, in pod order; and the problems found (named
/// per pod), which the backup records as errors.
pub fn plan_backup_hooks(
    spec: &BackupHooks,
    pods: &[PodInfo],
) -> (Vec<PodHooks>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for pod in pods {
        let mut ph = PodHooks {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            pre: vec![],
            post: vec![],
        };
        for phase in [Phase::Pre, Phase::Post] {
            let list = match phase {
                Phase::Pre => &mut ph.pre,
                Phase::Post => &mut ph.post,
            };
            if let Some(h) = from_annotations(pod, phase) {
                match h {
                    Ok(h) => list.push(h),
                    Err(e) => problems.push((
                        pod.namespace.clone(),
                        format!("pod {}/{}: {e}", pod.namespace, pod.name),
                    )),
                }
                continue;
            }
            for r in &spec.resources {
                let ns_ok = (r.included_namespaces.is_empty()
                    || matches_ns(&r.included_namespaces, &pod.namespace))
                    && !matches_ns(&r.excluded_namespaces, &pod.namespace);
                let res_ok = (r.included_resources.is_empty() || names_pods(&r.included_resources))
                    && !names_pods(&r.excluded_resources);
                let sel_ok = match &r.label_selector {
                    None => true,
                    Some(ls) => match Selector::from_label_selector(ls) {
                        Ok(s) => s.matches(&pod.labels),
                        Err(e) => {
                            problems.push((
                                pod.namespace.clone(),
                                format!("hook {:?}: label selector: {e}", r.name),
                            ));
                            false
                        }
                    },
                };
                if !(ns_ok && res_ok && sel_ok) {
                    continue;
                }
                let hooks = match phase {
                    Phase::Pre => &r.pre,
                    Phase::Post => &r.post,
                };
                for h in hooks {
                    match from_exec(&r.name, pod, &h.exec) {
                        Ok(p) => list.push(p),
                        Err(e) => problems.push((
                            pod.namespace.clone(),
                            format!("pod {}/{}: {e}", pod.namespace, pod.name),
                        )),
                    }
                }
            }
        }
        if !ph.pre.is_empty() || !ph.post.is_empty() {
            out.push(ph);
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::velero::{BackupResourceHook, BackupResourceHookSpec, LabelSelector};
    use rstest::rstest;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)], ann: &[(&str, &str)]) -> PodInfo {
        PodInfo {
            namespace: ns.into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: ann
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            containers: vec!["db".into(), "sidecar".into()],
        }
    }

    fn exec(cmd: &[&str]) -> BackupResourceHook {
        BackupResourceHook {
            exec: ExecHook {
                container: None,
                command: cmd.iter().map(|s| s.to_string()).collect(),
                on_error: None,
                timeout: None,
            },
        }
    }

    fn spec() -> BackupHooks {
        BackupHooks {
            resources: vec![
                BackupResourceHookSpec {
                    name: "freeze".into(),
                    included_namespaces: vec!["prod-*".into()],
                    label_selector: Some(LabelSelector {
                        match_labels: [("app".to_string(), "mysql".to_string())].into(),
                        ..Default::default()
                    }),
                    pre: vec![
                        exec(&["fsfreeze", "--freeze", "/var/lib/mysql"]),
                        exec(&["sync"]),
                    ],
                    post: vec![exec(&["fsfreeze", "--unfreeze", "/var/lib/mysql"])],
                    ..Default::default()
                },
                BackupResourceHookSpec {
                    name: "everything-but-pods".into(),
                    excluded_resources: vec!["pods".into()],
                    pre: vec![exec(&["never"])],
                    ..Default::default()
                },
            ],
        }
    }

    #[rstest]
    #[case::selected(pod("prod-eu", "m-0", &[("app", "mysql")], &[]), 2, 1)]
    #[case::wrong_namespace(pod("dev", "m-0", &[("app", "mysql")], &[]), 0, 0)]
    #[case::wrong_labels(pod("prod-eu", "w-0", &[("app", "web")], &[]), 0, 0)]
    fn spec_hooks_select_pods(#[case] p: PodInfo, #[case] pre: usize, #[case] post: usize) {
        let (planned, problems) = plan_backup_hooks(&spec(), &[p]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(planned.first().map_or(0, |h| h.pre.len()), pre);
        assert_eq!(planned.first().map_or(0, |h| h.post.len()), post);
    }

    #[test]
    fn spec_hooks_keep_their_order_and_defaults() {
        let (planned, _) =
            plan_backup_hooks(&spec(), &[pod("prod-eu", "m-0", &[("app", "mysql")], &[])]);
        let pre = &planned[0].pre;
        assert_eq!(pre[0].command, ["fsfreeze", "--freeze", "/var/lib/mysql"]);
        assert_eq!(pre[1].command, ["sync"]);
        assert_eq!(pre[0].container, "db");
        assert_eq!(pre[0].on_error, HookErrorMode::Fail);
        assert_eq!(pre[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(pre[0].source, "freeze");
    }

    #[test]
    fn annotations_replace_spec_hooks_for_their_phase() {
        let p = pod(
            "prod-eu",
            "m-0",
            &[("app", "mysql")],
            &[
                (
                    "pre.hook.backup.velero.io/command",
                    r#"["/bin/sh","-c","mysql -e 'FLUSH TABLES WITH READ LOCK'"]"#,
                ),
                ("pre.hook.backup.velero.io/container", "sidecar"),
                ("pre.hook.backup.velero.io/on-error", "Continue"),
                ("pre.hook.backup.velero.io/timeout", "2m"),
            ],
        );
        let (planned, problems) = plan_backup_hooks(&spec(), &[p]);
        assert!(problems.is_empty());
        let h = &planned[0];
        assert_eq!(h.pre.len(), 1);
        assert_eq!(
            h.pre[0].command[2],
            "mysql -e 'FLUSH TABLES WITH READ LOCK'"
        );
        assert_eq!(h.pre[0].container, "sidecar");
        assert_eq!(h.pre[0].on_error, HookErrorMode::Continue);
        assert_eq!(h.pre[0].timeout, Duration::from_secs(120));
        // The post phase has no annotation: the spec's post hook stays.
        assert_eq!(h.post.len(), 1);
        assert_eq!(h.post[0].source, "freeze");
    }

    #[rstest]
    #[case(
        "pre.hook.backup.velero.io/on-error",
        "Sometimes",
        "not Continue or Fail"
    )]
    #[case("pre.hook.backup.velero.io/timeout", "soon", "timeout")]
    fn bad_annotations_are_named(#[case] key: &str, #[case] value: &str, #[case] want: &str) {
        let p = pod(
            "a",
            "p",
            &[],
            &[("pre.hook.backup.velero.io/command", "sync"), (key, value)],
        );
        let (planned, problems) = plan_backup_hooks(&BackupHooks::default(), &[p]);
        assert!(planned.is_empty());
        assert!(
            problems[0].1.contains(want) && problems[0].1.contains("pod a/p"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_plain_command_annotation_is_one_word() {
        let p = pod(
            "a",
            "p",
            &[],
            &[("post.hook.backup.velero.io/command", "/unfreeze.sh")],
        );
        let (planned, _) = plan_backup_hooks(&BackupHooks::default(), &[p]);
        assert_eq!(planned[0].post[0].command, ["/unfreeze.sh"]);
        assert!(planned[0].pre.is_empty());
    }
}
