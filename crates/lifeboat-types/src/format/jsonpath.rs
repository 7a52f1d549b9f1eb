//! The subset of kubectl's JSONPath that scripts use with `-o jsonpath=...`:
//! `{.status.phase}`, `{.items[0].metadata.name}`, `{.items[-1].metadata.name}`,
//! `{.items[*].metadata.name}`, with literal text around the braces.

use serde_json::Value;

/// Why a template was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid jsonpath template {template:?}: {reason} (example: '{{.status.phase}}')")]
pub struct JsonPathError {
    /// The template.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
}

fn parse_expr(expr: &str) -> Result<Vec<Step>, String> {
    let expr = expr.trim();
    let mut rest = expr
        .strip_prefix('.')
        .or_else(|| expr.strip_prefix("$."))
        .ok_or("an expression starts with '.'")?;
    let mut steps = Vec::new();
    if rest.is_empty() {
        return Ok(steps);
    }
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        if end > 0 {
            steps.push(Step::Field(rest[..end].to_owned()));
        }
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or("unclosed '['")?;
            let idx = &r[..close];
            steps.push(if idx == "*" {
                Step::All
            } else {
                Step::Index(idx.parse().map_err(|_| format!("bad index {idx:?}"))?)
            });
            rest = &r[close + 1..];
        }
        if let Some(r) = rest.strip_prefix('.') {
            if r.is_empty() {
                return Err("trailing '.'".into());
            }
            rest = r;
        }
    }
    Ok(steps)
}

fn eval<'a>(v: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = steps.split_first() else {
        out.push(v);
        return;
    };
    match first {
        Step::Field(f) => {
            if let Some(x) = v.get(f) {
                eval(x, rest, out);
            }
        }
        Step::Index(i) => {
            if let Some(a) = v.as_array() {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    eval(x, rest, out);
                }
            }
        }
        Step::All => {
            if let Some(a) = v.as_array() {
                for x in a {
                    eval(x, rest, out);
                }
            }
        }
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders `template` against `value` as kubectl does (several results joined by spaces).
pub fn render_template(template: &str, value: &Value) -> Result<String, JsonPathError> {
    let err = |reason: String| JsonPathError {
        template: template.to_owned(),
        reason,
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| err("unclosed '{'".into()))?
            + open;
        let steps = parse_expr(&rest[open + 1..close]).map_err(err)?;
        let mut hits = Vec::new();
        eval(value, &steps, &mut hits);
        out.push_str(&hits.into_iter().map(render).collect::<Vec<_>>().join(" "));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case("{.status.phase}", "Completed")]
    #[case("{.items[-1].metadata.name}", "b")]
    #[case("{.items[0].metadata.name}", "a")]
    #[case("{.items[*].metadata.name}", "a b")]
    #[case("phase={.status.phase}!", "phase=Completed!")]
    #[case("{.status.progress.totalItems}", "7")]
    #[case("{.missing.field}", "")]
    #[case("{.items[5].metadata.name}", "")]
    fn renders(#[case] t: &str, #[case] expected: &str) {
        let v = json!({"status": {"phase": "Completed", "progress": {"totalItems": 7}},
                       "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]});
        assert_eq!(render_template(t, &v).unwrap(), expected);
    }

    #[rstest]
    #[case("{status}", "an expression starts with '.'")]
    #[case("{.items[}", "unclosed '['")]
    #[case("{.a", "unclosed '{'")]
    #[case("{.items[x]}", "bad index \"x\"")]
    fn rejects(#[case] t: &str, #[case] reason: &str) {
        let err = render_template(t, &json!({})).unwrap_err();
        assert_eq!(err.template, t);
        assert_eq!(err.reason, reason, "{err}");
    }
}

/// Property tests of the template parser (issue 11, item 4: no panic on any input).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_template_never_panics(t in "\\PC{0,60}") {
            let v = serde_json::json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "items": [{"a": 1}, {"a": [2, 3]}]});
            let _ = render_template(&t, &v);
        }

        #[test]
        fn template_like_text_never_panics(t in "[{}.\\[\\]*a-z0-9:@?()'\" ,]{0,40}") {
            let v = serde_json::json!({"metadata": {"name": "a"}, "items": [{"a": 1}, {"a": [2, 3]}]});
            let _ = render_template(&t, &v);
        }
    }
}
