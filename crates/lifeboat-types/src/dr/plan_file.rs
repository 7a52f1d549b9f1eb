//! Editing a plan file after a failover or failback (pure): the cluster that took over
//! becomes the plan's active one. The file is the user's — comments, order and style
//! stay as written: the edit changes one `active:` value, or adds `active: true` beside
//! the cluster's `name:`, and is kept only when the edited file reads as the same plan
//! with only `active` moved; otherwise the user is told what to change by hand.

use serde_yaml_ng::Value;

/// `text` (a plan file) with cluster `to` active and every other cluster not; `Ok(None)`
/// when `to` is active already. An error says why the file was left as it is.
pub fn move_active(text: &str, to: &str) -> Result<Option<String>, String> {
    let by_hand = |why: &str| {
        format!("{why}; set `active: true` on cluster {to} and remove it from the others by hand")
    };
    let original: Value = serde_yaml_ng::from_str(text).map_err(|e| by_hand(&e.to_string()))?;
    let clusters =
        clusters_of(&original).ok_or_else(|| by_hand("the file has no spec.clusters"))?;
    let names: Vec<Option<&str>> = clusters.iter().map(|c| name_of(c)).collect();
    if !names.contains(&Some(to)) {
        return Err(by_hand(&format!("the plan has no cluster named {to}")));
    }
    let active: Vec<&str> = clusters
        .iter()
        .filter(|c| is_active(c))
        .filter_map(name_of)
        .collect();
    if active == [to] {
        return Ok(None);
    }
    let want = normalized(&original, Some(to));
    // Each `active: true` set to false, then `to` made active; the first that reads as
    // the wanted plan is the edit.
    let mut texts = vec![text.to_owned()];
    for at in value_positions(text, "true") {
        let mut t = text.to_owned();
        t.replace_range(at..at + "true".len(), "false");
        texts.push(t);
    }
    for t in &texts {
        for candidate in activations(t, to) {
            let Ok(v) = serde_yaml_ng::from_str::<Value>(&candidate) else {
                continue;
            };
            if normalized(&v, None) == want {
                return Ok(Some(candidate));
            }
        }
    }
    Err(by_hand(
        "the file is written in a way this edit does not follow",
    ))
}

/// The texts that may make cluster `to` active in `text`: each `active: false` set to
/// true, and `active: true` added after each `name: <to>`.
fn activations(text: &str, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    for at in value_positions(text, "false") {
        let mut t = text.to_owned();
        t.replace_range(at..at + "false".len(), "true");
        out.push(t);
    }
    for (start, end) in name_values(text, to) {
        let rest = text[end..].trim_start_matches([' ', '\t']);
        let mut t = text.to_owned();
        if rest.starts_with(',') || rest.starts_with('}') {
            // A flow mapping: `{name: west, ...}`.
            t.insert_str(end, ", active: true");
        } else {
            // A block mapping: a line of its own, at the column of `name:`.
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let key = text[line_start..start]
                .rfind("name:")
                .map_or(0, |i| i + line_start);
            let column = text[line_start..key].chars().count();
            let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
            // A file with CRLF line ends keeps them.
            let (at, eol) = match text[..line_end].strip_suffix('\r') {
                Some(before) => (before.len(), "\r\n"),
                None => (line_end, "\n"),
            };
            t.insert_str(at, &format!("{eol}{}active: true", " ".repeat(column)));
        }
        out.push(t);
    }
    out
}

/// Byte offsets of each `value` that follows an `active:` key.
fn value_positions(text: &str, value: &str) -> Vec<usize> {
    text.match_indices("active:")
        .filter(|(i, _)| {
            text[..*i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '-')
        })
        .filter_map(|(i, k)| {
            let after = i + k.len();
            let skipped = text[after..].len() - text[after..].trim_start_matches([' ', '\t']).len();
            let at = after + skipped;
            let ends = text[at..]
                .strip_prefix(value)
                .is_some_and(|r| r.chars().next().is_none_or(|c| !c.is_alphanumeric()));
            ends.then_some(at)
        })
        .collect()
}

/// Byte ranges of each value `to` (plain or quoted) of a `name:` key.
fn name_values(text: &str, to: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, k) in text.match_indices("name:") {
        let after = i + k.len();
        let rest = text[after..].trim_start_matches([' ', '\t']);
        let at = text.len() - rest.len();
        for quoted in [to.to_owned(), format!("\"{to}\""), format!("'{to}'")] {
            if rest.starts_with(&quoted)
                && rest[quoted.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_whitespace() || c == ',' || c == '}' || c == '#')
            {
                out.push((at, at + quoted.len()));
            }
        }
    }
    out
}

fn clusters_of(doc: &Value) -> Option<&Vec<Value>> {
    doc.get("spec")?.get("clusters")?.as_sequence()
}

fn name_of(c: &Value) -> Option<&str> {
    c.get("name")?.as_str()
}

fn is_active(c: &Value) -> bool {
    c.get("active").and_then(Value::as_bool) == Some(true)
}

/// `doc` with every cluster's `active` key removed, then (with `to`) `active: true` on
/// cluster `to` alone; with `None`, `active: true` kept where it is.
fn normalized(doc: &Value, to: Option<&str>) -> Value {
    let mut doc = doc.clone();
    if let Some(clusters) = doc
        .get_mut("spec")
        .and_then(|s| s.get_mut("clusters"))
        .and_then(Value::as_sequence_mut)
    {
        for c in clusters {
            let active = match to {
                Some(to) => name_of(c) == Some(to),
                None => is_active(c),
            };
            if let Some(m) = c.as_mapping_mut() {
                m.remove("active");
                if active {
                    m.insert(Value::from("active"), Value::from(true));
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const BLOCK: &str = "\
apiVersion: lifeboat.dev/v1alpha1
kind: DRPlan
metadata: {name: shop}   # the shop
spec:
  namespaces: [shop]
  clusters:
  # where it runs today
  - name: east
    kubeconfig: /k/east
    active: true
  - name: west   # the standby
    kubeconfig: /k/west
";

    #[rstest]
    #[case::block_style(
        BLOCK,
        "west",
        Some(
            "\
apiVersion: lifeboat.dev/v1alpha1
kind: DRPlan
metadata: {name: shop}   # the shop
spec:
  namespaces: [shop]
  clusters:
  # where it runs today
  - name: east
    kubeconfig: /k/east
    active: false
  - name: west   # the standby
    active: true
    kubeconfig: /k/west
"
        )
    )]
    #[case::flow_style(
        "spec:\n  clusters:\n  - {name: east, kubeconfig: /k/e, active: true, locations: [s3]}\n  - {name: west, kubeconfig: /k/w}\n",
        "west",
        Some(
            "spec:\n  clusters:\n  - {name: east, kubeconfig: /k/e, active: false, locations: [s3]}\n  - {name: west, active: true, kubeconfig: /k/w}\n"
        )
    )]
    #[case::an_explicit_false(
        "spec:\n  clusters:\n  - name: east\n    active: true\n  - name: \"west\"\n    active: false\n",
        "west",
        Some(
            "spec:\n  clusters:\n  - name: east\n    active: false\n  - name: \"west\"\n    active: true\n"
        )
    )]
    // A name that only starts like the target, and an `inactive:` key, are not it.
    #[case::lookalikes(
        "spec:\n  clusters:\n  - name: west2\n    active: true\n    labels: {inactive: true}\n  - name: west\n",
        "west",
        Some(
            "spec:\n  clusters:\n  - name: west2\n    active: false\n    labels: {inactive: true}\n  - name: west\n    active: true\n"
        )
    )]
    // Regression (review): text other than ASCII right after an `active:` (here in a
    // comment) panicked on a byte offset inside a character.
    #[case::not_ascii(
        "# active: 現用系\nspec:\n  clusters:\n  - name: east  # 東\n    active: true\n  - name: west\n",
        "west",
        Some(
            "# active: 現用系\nspec:\n  clusters:\n  - name: east  # 東\n    active: false\n  - name: west\n    active: true\n"
        )
    )]
    #[case::crlf(
        "spec:\r\n  clusters:\r\n  - name: east\r\n    active: true\r\n  - name: west\r\n    kubeconfig: /k\r\n",
        "west",
        Some(
            "spec:\r\n  clusters:\r\n  - name: east\r\n    active: false\r\n  - name: west\r\n    active: true\r\n    kubeconfig: /k\r\n"
        )
    )]
    #[case::already_active(BLOCK, "east", None)]
    fn the_cluster_that_took_over_becomes_active(
        #[case] text: &str,
        #[case] to: &str,
        #[case] want: Option<&str>,
    ) {
        assert_eq!(move_active(text, to).unwrap().as_deref(), want);
    }

    #[rstest]
    #[case::no_such_cluster(BLOCK, "north", "the plan has no cluster named north")]
    #[case::no_clusters("spec: {}\n", "west", "the file has no spec.clusters")]
    // A name written in a way the edit does not look for: the file is left, and the user
    // told.
    #[case::folded_name(
        "spec:\n  clusters:\n  - {name: east, active: true}\n  - name: >-\n      west\n",
        "west",
        "the file is written in a way this edit does not follow"
    )]
    fn a_file_the_edit_cannot_follow_is_left(
        #[case] text: &str,
        #[case] to: &str,
        #[case] why: &str,
    ) {
        let err = move_active(text, to).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{why}; set `active: true` on cluster {to} and remove it from the others by hand"
            )
        );
    }
}
