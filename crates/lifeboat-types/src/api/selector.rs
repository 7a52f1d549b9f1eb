//! Label selectors: parsed from kubectl's string syntax or from a `LabelSelector`,
//! matched against labels, and printed back as the API server's `labelSelector` query.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::velero::{LabelSelector, LabelSelectorRequirement};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value`.
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub Vec<Requirement>);

/// Why a selector was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// The string does not parse.
    #[error(
        "invalid label selector {selector:?}: {reason} (examples: app=web, tier!=db, env in (prod,staging), !legacy)"
    )]
    Syntax {
        /// The selector as given.
        selector: String,
        /// What is wrong.
        reason: String,
    },
    /// A `matchExpressions` entry has an unknown operator or wrong values.
    #[error("invalid matchExpressions entry for key {key:?}: {reason}")]
    Expression {
        /// The key of the entry.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn valid_key(k: &str) -> bool {
    // [prefix/]name; name: up to 63 of [A-Za-z0-9-_.] starting and ending alphanumeric.
    let name = match k.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty()
                || prefix.len() > 253
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return false;
            }
            name
        }
        None => k,
    };
    valid_value(name) && !name.is_empty()
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

impl Selector {
    /// Parses kubectl's selector syntax.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError::Syntax {
            selector: input.to_owned(),
            reason: reason.to_owned(),
        };
        let mut reqs = Vec::new();
        let mut rest = input.trim();
        if rest.is_empty() {
            return Ok(Selector::default());
        }
        loop {
            // Split off one requirement: up to a comma that is not inside parentheses.
            let mut depth = 0i32;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let part = rest[..end].trim();
            if part.is_empty() {
                return Err(err("empty requirement"));
            }
            reqs.push(parse_requirement(part).map_err(|r| err(&r))?);
            if end == rest.len() {
                break;
            }
            rest = &rest[end + 1..];
        }
        Ok(Selector(reqs))
    }

    /// Converts a `LabelSelector` (from YAML).
    pub fn from_label_selector(ls: &LabelSelector) -> Result<Self, SelectorError> {
        let mut reqs: Vec<Requirement> = ls
            .match_labels
            .iter()
            .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
            .collect();
        for LabelSelectorRequirement {
            key,
            operator,
            values,
        } in &ls.match_expressions
        {
            let e = |reason: &str| SelectorError::Expression {
                key: key.clone(),
                reason: reason.to_owned(),
            };
            let req = match operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(e("operators In and NotIn need at least one value"));
                }
                "In" => Requirement::In(key.clone(), values.clone()),
                "NotIn" => Requirement::NotIn(key.clone(), values.clone()),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(e("operators Exists and DoesNotExist take no values"));
                }
                "Exists" => Requirement::Exists(key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(key.clone()),
                other => {
                    return Err(e(&format!(
                        "unknown operator {other:?}; use In, NotIn, Exists or DoesNotExist"
                    )));
                }
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    /// Converts to a `LabelSelector` (for a Backup spec).
    pub fn to_label_selector(&self) -> LabelSelector {
        let mut ls = LabelSelector::default();
        for r in &self.0 {
            let (key, operator, values) = match r {
                Requirement::Equals(k, v) => {
                    ls.match_labels.insert(k.clone(), v.clone());
                    continue;
                }
                Requirement::NotEquals(k, v) => (k, "NotIn", vec![v.clone()]),
                Requirement::In(k, v) => (k, "In", v.clone()),
                Requirement::NotIn(k, v) => (k, "NotIn", v.clone()),
                Requirement::Exists(k) => (k, "Exists", vec![]),
                Requirement::DoesNotExist(k) => (k, "DoesNotExist", vec![]),
            };
            ls.match_expressions.push(LabelSelectorRequirement {
                key: key.clone(),
                operator: operator.into(),
                values,
            });
        }
        ls
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let check_key = |k: &str| -> Result<String, String> {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_owned())
        } else {
            Err(format!("{k:?} is not a valid label key"))
        }
    };
    let check_value = |v: &str| -> Result<String, String> {
        let v = v.trim();
        if valid_value(v) {
            Ok(v.to_owned())
        } else {
            Err(format!("{v:?} is not a valid label value"))
        }
    };
    let set = |k: &str, rest: &str, op: &str| -> Result<(String, Vec<String>), String> {
        let rest = rest.trim();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("expected a parenthesised list after '{op}'"))?;
        let values = inner
            .split(',')
            .map(check_value)
            .collect::<Result<Vec<_>, _>>()?;
        if values.iter().all(String::is_empty) {
            return Err(format!("'{op}' needs at least one value"));
        }
        Ok((check_key(k)?, values))
    };
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(check_key(k)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(check_key(k)?, check_value(v)?));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(Requirement::Equals(check_key(k)?, check_value(v)?));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(Requirement::Equals(check_key(k)?, check_value(v)?));
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [k] => Ok(Requirement::Exists(check_key(k)?)),
        [k, rest] => {
            let rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix("notin") {
                let (k, v) = set(k, r, "notin")?;
                Ok(Requirement::NotIn(k, v))
            } else if let Some(r) = rest.strip_prefix("in") {
                let (k, v) = set(k, r, "in")?;
                Ok(Requirement::In(k, v))
            } else {
                Err(format!(
                    "unexpected {rest:?}; expected =, ==, !=, in or notin"
                ))
            }
        }
        _ => Err("empty requirement".into()),
    }
}

impl fmt::Display for Selector {
    /// The API server's `labelSelector` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::NotEquals(k, v) => write!(f, "{k}!={v}")?,
                Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(","))?,
                Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(","))?,
                Requirement::Exists(k) => write!(f, "{k}")?,
                Requirement::DoesNotExist(k) => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[rstest]
    #[case("app=web", &[("app", "web")], true)]
    #[case("app=web", &[("app", "db")], false)]
    #[case("app==web", &[("app", "web")], true)]
    #[case("app!=web", &[("app", "db")], true)]
    #[case("app!=web", &[], true)]
    #[case("app in (web, api)", &[("app", "api")], true)]
    #[case("app in (web,api)", &[("app", "db")], false)]
    #[case("app notin (web)", &[], true)]
    #[case("app notin (web)", &[("app", "web")], false)]
    #[case("tier", &[("tier", "x")], true)]
    #[case("!tier", &[("tier", "x")], false)]
    #[case("app=web,tier=fe", &[("app", "web")], false)]
    #[case("app=web,tier=fe", &[("app", "web"), ("tier", "fe")], true)]
    #[case("velero.io/storage-location=default", &[("velero.io/storage-location", "default")], true)]
    #[case("", &[], true)]
    fn matches_like_kubernetes(
        #[case] sel: &str,
        #[case] l: &[(&str, &str)],
        #[case] expected: bool,
    ) {
        let s = Selector::parse(sel).unwrap();
        assert_eq!(s.matches(&labels(l)), expected, "{sel}");
        // Printing and re-parsing keeps the meaning.
        let again = Selector::parse(&s.to_string()).unwrap();
        assert_eq!(again, s);
        // And so does the LabelSelector form.
        let via = Selector::from_label_selector(&s.to_label_selector()).unwrap();
        assert_eq!(via.matches(&labels(l)), expected);
    }

    #[rstest]
    #[case("=web", "\"\" is not a valid label key")]
    #[case("app in web", "expected a parenthesised list after 'in'")]
    #[case("app in ()", "'in' needs at least one value")]
    #[case("a b c", "unexpected \"b c\"; expected =, ==, !=, in or notin")]
    #[case("app=web,", "empty requirement")]
    #[case("app=we b", "\"we b\" is not a valid label value")]
    #[case("-app=web", "\"-app\" is not a valid label key")]
    fn rejects_bad_selectors(#[case] sel: &str, #[case] reason: &str) {
        assert_eq!(
            Selector::parse(sel).map(|_| ()),
            Err(SelectorError::Syntax {
                selector: sel.into(),
                reason: reason.into()
            })
        );
    }

    #[test]
    fn rejects_unknown_operator() {
        let ls = LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Has".into(),
                values: vec![],
            }],
            ..Default::default()
        };
        let err = Selector::from_label_selector(&ls).unwrap_err();
        assert!(err.to_string().contains("unknown operator"));
    }
}

/// Property tests of the parser (issue 11, item 4: no panic on any input).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = String> {
        "([a-z]{1,5}\\.io/)?[a-z][a-z0-9._-]{0,10}[a-z0-9]"
    }

    fn value() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?"
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        prop_oneof![
            (key(), value()).prop_map(|(k, v)| Requirement::Equals(k, v)),
            (key(), value()).prop_map(|(k, v)| Requirement::NotEquals(k, v)),
            (key(), proptest::collection::vec(value(), 1..4))
                .prop_map(|(k, vs)| Requirement::In(k, vs)),
            (key(), proptest::collection::vec(value(), 1..4))
                .prop_map(|(k, vs)| Requirement::NotIn(k, vs)),
            key().prop_map(Requirement::Exists),
            key().prop_map(Requirement::DoesNotExist),
        ]
    }

    proptest! {
        /// Any text is a selector or a syntax error naming it, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,80}") {
            if let Err(SelectorError::Syntax { selector, .. }) = Selector::parse(&s) {
                prop_assert_eq!(selector, s);
            }
        }

        /// Text made of the selector's own characters, in any order.
        #[test]
        fn selector_like_text_never_panics(s in "[a-z0-9=!(), ./_-]{0,60}") {
            let _ = Selector::parse(&s);
        }

        /// What the API server is sent parses back to the same selector.
        #[test]
        fn display_round_trips(reqs in proptest::collection::vec(requirement(), 0..5)) {
            let sel = Selector(reqs);
            let back = Selector::parse(&sel.to_string()).unwrap();
            prop_assert_eq!(back, sel);
        }
    }
}
