//! Velero's resource modifiers (format v1): rules with conditions (group-resource glob,
//! name regex, namespaces, label selector, field matches) and patches (JSON patches,
//! merge patches, strategic merge patches), applied to objects before they are restored.
//!
//! Strategic merge patches are applied with the common subset of Kubernetes' semantics:
//! maps merge recursively, `null` deletes, lists of objects that carry a `name` merge by
//! name, other lists are replaced. Patch directives (`$patch`, `$retainKeys`) are not
//! supported and are refused when the document is read.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use lifeboat_types::api::selector::Selector;
use lifeboat_types::api::velero::LabelSelector;
use serde::Deserialize;
use serde_json::Value;

/// Why a modifier document was refused or could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ModifierError {
    /// Not valid YAML, or a field is unknown or of the wrong type (line and column named).
    #[error("resource modifier document")]
    Parse(#[source] serde_yaml_ng::Error),
    /// A version other than v1.
    #[error("resource modifier document: version {0:?} is not supported; use version: v1")]
    Version(String),
    /// A rule is invalid.
    #[error("resource modifier rule {rule}: {reason}")]
    Rule {
        /// 1-based rule index.
        rule: usize,
        /// What is wrong.
        reason: String,
    },
    /// A patch could not be applied to an object.
    #[error("rule {rule}: {reason}")]
    Apply {
        /// 1-based rule index.
        rule: usize,
        /// What failed.
        reason: String,
    },
}

impl ModifierError {
    /// Never: a document or a patch is wrong as written.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    version: String,
    #[serde(default)]
    resource_modifier_rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleDoc {
    conditions: ConditionsDoc,
    #[serde(default)]
    patches: Vec<JsonPatchDoc>,
    #[serde(default)]
    merge_patches: Vec<PatchData>,
    #[serde(default)]
    strategic_patches: Vec<PatchData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConditionsDoc {
    group_resource: String,
    #[serde(default)]
    resource_name_regex: Option<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    matches: Vec<MatchDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MatchDoc {
    path: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonPatchDoc {
    operation: String,
    #[serde(default)]
    from: Option<String>,
    path: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PatchData {
    patch_data: String,
}

#[derive(Debug, Clone)]
struct Rule {
    group_resource: GlobMatcher,
    name: Option<regex_lite::Regex>,
    namespaces: Vec<String>,
    selector: Option<Selector>,
    matches: Vec<(String, Value)>,
    json_patch: Option<json_patch::Patch>,
    merge: Vec<Value>,
    strategic: Vec<Value>,
}

/// A compiled modifier document.
#[derive(Debug, Clone, Default)]
pub struct Modifiers {
    rules: Vec<Rule>,
}

/// Velero's reading of a patch value: numbers, booleans, null, objects and arrays are
/// JSON; anything else is a string.
fn patch_value(v: &str) -> Value {
    let t = v.trim();
    if t == "null" {
        return Value::Null;
    }
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return Value::Bool(t.eq_ignore_ascii_case("true"));
    }
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(v) = serde_json::from_str(t)
    {
        return v;
    }
    if t.parse::<f64>().is_ok()
        && let Ok(v) = serde_json::from_str::<Value>(t)
    {
        return v;
    }
    Value::String(v.to_owned())
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.keys().any(|k| k.starts_with('$')) || m.values().any(has_directive),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

impl Modifiers {
    /// Reads a modifier document (YAML or JSON).
    pub fn parse(text: &str) -> Result<Modifiers, ModifierError> {
        let doc: Document = serde_yaml_ng::from_str(text).map_err(ModifierError::Parse)?;
        if doc.version != "v1" {
            return Err(ModifierError::Version(doc.version));
        }
        let mut rules = Vec::new();
        for (i, r) in doc.resource_modifier_rules.into_iter().enumerate() {
            let rule = i + 1;
            let err = |reason: String| ModifierError::Rule { rule, reason };
            let group_resource = Glob::new(&r.conditions.group_resource)
                .map_err(|e| err(format!("conditions.groupResource: {e}")))?
                .compile_matcher();
            let name = r
                .conditions
                .resource_name_regex
                .as_deref()
                .map(regex_lite::Regex::new)
                .transpose()
                .map_err(|e| err(format!("conditions.resourceNameRegex: {e}")))?;
            let selector = r
                .conditions
                .label_selector
                .as_ref()
                .map(Selector::from_label_selector)
                .transpose()
                .map_err(|e| err(format!("conditions.labelSelector: {e}")))?;
            let matches = r
                .conditions
                .matches
                .iter()
                .map(|m| (m.path.clone(), patch_value(&m.value)))
                .collect();
            let json_patch = if r.patches.is_empty() {
                None
            } else {
                let ops: Vec<Value> = r
                    .patches
                    .iter()
                    .map(|p| {
                        let mut op = serde_json::json!({"op": p.operation, "path": p.path});
                        if let Some(f) = &p.from {
                            op["from"] = Value::String(f.clone());
                        }
                        if let Some(v) = &p.value {
                            op["value"] = patch_value(v);
                        }
                        op
                    })
                    .collect();
                Some(
                    serde_json::from_value::<json_patch::Patch>(Value::Array(ops))
                        .map_err(|e| err(format!("patches: {e}")))?,
                )
            };
            let parse_data =
                |list: &[PatchData], field: &str| -> Result<Vec<Value>, ModifierError> {
                    list.iter()
                        .map(|p| {
                            serde_yaml_ng::from_str::<Value>(&p.patch_data)
                                .map_err(|e| err(format!("{field}.patchData: {e}")))
                        })
                        .collect()
                };
            let merge = parse_data(&r.merge_patches, "mergePatches")?;
            let strategic = parse_data(&r.strategic_patches, "strategicPatches")?;
            if strategic.iter().any(has_directive) {
                return Err(err("strategicPatches: patch directives ($patch, $retainKeys, ...) are not supported".into()));
            }
            rules.push(Rule {
                group_resource,
                name,
                namespaces: r.conditions.namespaces,
                selector,
                matches,
                json_patch,
                merge,
                strategic,
            });
        }
        Ok(Modifiers { rules })
    }

    /// Reads the document from a ConfigMap's data (its single key, as Velero).
    pub fn from_configmap_data(
        data: &BTreeMap<String, String>,
    ) -> Result<Modifiers, ModifierError> {
        let text = data.values().next().map(String::as_str).unwrap_or("");
        Modifiers::parse(text)
    }

    /// Applies every matching rule to `obj` (of `gr`, in target namespace `ns`).
    pub fn apply(
        &self,
        gr: &str,
        ns: Option<&str>,
        name: &str,
        obj: &mut Value,
    ) -> Result<(), ModifierError> {
        for (i, r) in self.rules.iter().enumerate() {
            if !r.group_resource.is_match(gr) {
                continue;
            }
            if r.name.as_ref().is_some_and(|re| !re.is_match(name)) {
                continue;
            }
            if !r.namespaces.is_empty() && !ns.is_some_and(|n| r.namespaces.iter().any(|x| x == n))
            {
                continue;
            }
            if let Some(sel) = &r.selector {
                let labels: BTreeMap<String, String> = obj
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                if !sel.matches(&labels) {
                    continue;
                }
            }
            if !r.matches.iter().all(|(p, v)| obj.pointer(p) == Some(v)) {
                continue;
            }
            if let Some(p) = &r.json_patch {
                json_patch::patch(obj, p).map_err(|e| ModifierError::Apply {
                    rule: i + 1,
                    reason: format!("JSON patch: {e}"),
                })?;
            }
            for m in &r.merge {
                json_patch::merge(obj, m);
            }
            for s in &r.strategic {
                strategic_merge(obj, s);
            }
        }
        Ok(())
    }
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                if pv.is_null() {
                    t.remove(k);
                    continue;
                }
                match t.get_mut(k) {
                    Some(tv) => strategic_merge(tv, pv),
                    None => {
                        t.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p))
            if p.iter().all(|x| x.get("name").is_some())
                && t.iter().all(|x| x.get("name").is_some()) =>
        {
            for pv in p {
                match t.iter_mut().find(|x| x.get("name") == pv.get("name")) {
                    Some(tv) => strategic_merge(tv, pv),
                    None => t.push(pv.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = r#"
version: v1
resourceModifierRules:
- conditions:
    groupResource: deployments.apps
    resourceNameRegex: "^web"
    namespaces: [shop]
  patches:
  - operation: replace
    path: "/spec/replicas"
    value: "3"
  - operation: add
    path: "/metadata/labels/restored"
    value: "true"
- conditions:
    groupResource: "*"
    labelSelector:
      matchLabels: {tier: cache}
  mergePatches:
  - patchData: |
      {"metadata": {"annotations": {"note": "from-dr"}}}
- conditions:
    groupResource: deployments.apps
    matches:
    - path: /spec/template/spec/containers/0/image
      value: nginx:1.25
  strategicPatches:
  - patchData: |
      spec:
        template:
          spec:
            containers:
            - name: web
              image: nginx:1.27
"#;

    fn deploy(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "labels": {"tier": "cache"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1.25"}, {"name": "side", "image": "busybox"}]}}}})
    }

    #[test]
    fn rules_apply_in_order() {
        let m = Modifiers::parse(DOC).unwrap();
        let mut d = deploy("web-1");
        m.apply("deployments.apps", Some("shop"), "web-1", &mut d)
            .unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["metadata"]["labels"]["restored"], true);
        assert_eq!(d["metadata"]["annotations"]["note"], "from-dr");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1]["image"],
            "busybox"
        );
        // Name regex and namespace conditions.
        let mut other = deploy("api");
        m.apply("deployments.apps", Some("shop"), "api", &mut other)
            .unwrap();
        assert_eq!(other["spec"]["replicas"], 1);
        let mut elsewhere = deploy("web-2");
        m.apply("deployments.apps", Some("prod"), "web-2", &mut elsewhere)
            .unwrap();
        assert_eq!(elsewhere["spec"]["replicas"], 1);
    }

    #[test]
    fn bad_documents_name_line_and_field() {
        let e = crate::error::chain(
            &Modifiers::parse(
                "version: v1\nresourceModifierRules:\n- conditions:\n    groupResourc: x\n",
            )
            .unwrap_err(),
        );
        assert!(e.contains("groupResourc") && e.contains("line"), "{e}");
        let e = Modifiers::parse("version: v2\n").unwrap_err().to_string();
        assert!(e.contains("v2"), "{e}");
        let e = Modifiers::parse("version: v1\nresourceModifierRules:\n- conditions: {groupResource: x, resourceNameRegex: '('}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule 1") && e.contains("resourceNameRegex"),
            "{e}"
        );
        let e = Modifiers::parse("version: v1\nresourceModifierRules:\n- conditions: {groupResource: x}\n  patches:\n  - {operation: frobnicate, path: /a}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("patches"), "{e}");
    }

    #[test]
    fn failing_patch_is_an_error() {
        let m = Modifiers::parse("version: v1\nresourceModifierRules:\n- conditions: {groupResource: '*'}\n  patches:\n  - {operation: remove, path: /spec/nope}\n").unwrap();
        let mut d = deploy("x");
        let e = m
            .apply("deployments.apps", None, "x", &mut d)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule 1") && e.contains("failed at path '/spec/nope'"),
            "{e}"
        );
    }

    #[test]
    fn velero_value_reading() {
        assert_eq!(patch_value("3"), json!(3));
        assert_eq!(patch_value("true"), json!(true));
        assert_eq!(patch_value("null"), Value::Null);
        assert_eq!(patch_value("nginx"), json!("nginx"));
        assert_eq!(patch_value(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(patch_value(""), json!(""));
    }
}

/// Property tests of the modifier parser (issue 11, item 4: rules from a ConfigMap anyone
/// in the namespace may edit never panic, parsed or applied). The fuzz target
/// `fuzz/fuzz_targets/modifiers.rs` searches raw bytes; these build rule-shaped documents.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_never_panics(t in "\\PC{0,200}") {
            let _ = Modifiers::parse(&t);
        }

        #[test]
        fn rule_shaped_documents_never_panic(
            gr in "[a-z*?.{}\\[\\]!,-]{0,16}",
            name_re in "[a-z.*+?()\\[\\]{}|^$\\\\0-9,-]{0,16}",
            op in "(add|remove|replace|copy|move|test|merge|strategic|bogus)",
            path in "(/[a-z0-9~]{0,6}){0,4}",
            value in "[a-z0-9\"{}\\[\\]:, ]{0,20}",
        ) {
            let doc = format!(
                "version: v1\nresourceModifierRules:\n- conditions:\n    groupResource: {gr:?}\n    resourceNameRegex: {name_re:?}\n  patches:\n  - operation: {op}\n    path: {path:?}\n    value: {value:?}\n"
            );
            if let Ok(m) = Modifiers::parse(&doc) {
                let mut obj = serde_json::json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 1, "list": [1, 2]}});
                let _ = m.apply("deployments.apps", Some("ns"), "a", &mut obj);
            }
        }
    }
}
