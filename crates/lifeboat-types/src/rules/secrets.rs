//! What may be shown of a Secret: which keys changed, never a value. Applied to both
//! sides of a diff before it is rendered (restore dry runs, the only ones that render
//! diffs), so neither the text nor the JSON output carries a value.

use serde_json::Value;

/// A URL as reports, logs and runbooks show it: its scheme and host only (user info, path
/// and query may hold a token: chat webhooks carry theirs in the path).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}/…")
}

/// Shown for a value that is the same on both sides.
pub const SAME: &str = "(redacted)";
/// Shown for the live side of a value that differs.
pub const LIVE: &str = "(redacted live value)";
/// Shown for the backup's side of a value that differs.
pub const BACKUP: &str = "(redacted backup value)";

/// The annotation `kubectl apply` keeps the whole last applied object in, values included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether objects of the resource `gr` (`secrets`, or `secrets.<group>` never) hold
/// values that must not be shown: core Secrets.
pub fn is_secret(gr: &str) -> bool {
    gr == "secrets"
}

/// Replaces every value of `data` and `stringData`, and the last-applied annotation, on
/// both sides of a diff of a Secret: the same placeholder where the two sides agree, and
/// different placeholders where they differ, so a diff still shows which keys changed (and
/// which were added or removed) but no value. Other objects are left as they are.
pub fn redact_for_diff(gr: &str, live: &mut Value, backup: &mut Value) {
    if !is_secret(gr) {
        return;
    }
    for field in ["/data", "/stringData"] {
        let empty = serde_json::Map::new();
        let l = live
            .pointer(field)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .clone();
        let b = backup
            .pointer(field)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .clone();
        redact_map(live.pointer_mut(field), &l, &b, LIVE);
        redact_map(backup.pointer_mut(field), &b, &l, BACKUP);
    }
    let annotation = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .cloned()
    };
    let (l, b) = (annotation(live), annotation(backup));
    for (side, mine, other, differs) in [(live, &l, &b, LIVE), (backup, &b, &l, BACKUP)] {
        if let (Some(Value::Object(a)), Some(v)) = (side.pointer_mut("/metadata/annotations"), mine)
        {
            let shown = if Some(v) == other.as_ref() {
                SAME
            } else {
                differs
            };
            a.insert(LAST_APPLIED.into(), Value::String(shown.into()));
        }
    }
}

/// Replaces the values of `side` (whose content is `mine`) against `other`.
fn redact_map(
    side: Option<&mut Value>,
    mine: &serde_json::Map<String, Value>,
    other: &serde_json::Map<String, Value>,
    differs: &str,
) {
    let Some(Value::Object(m)) = side else {
        // Not a map (null, or a malformed object): nothing keyed to keep, no value shown.
        if let Some(v) = side
            && !v.is_null()
        {
            *v = Value::String(differs.into());
        }
        return;
    };
    for (k, v) in m.iter_mut() {
        let shown = if other.get(k) == mine.get(k) {
            SAME
        } else {
            differs
        };
        *v = Value::String(shown.into());
    }
}

#[cfg(test)]
mod tests {
    #[rstest::rstest]
    #[case("https://hooks.example/dr", "https://hooks.example/…")]
    #[case(
        "https://user:token@hooks.example/dr?key=s3cret#x",
        "https://hooks.example/…"
    )]
    #[case("http://127.0.0.1:8080/n?t=1", "http://127.0.0.1:8080/…")]
    #[case(
        "https://hooks.slack.example/services/T0/B0/s3cret",
        "https://hooks.slack.example/…"
    )]
    fn a_webhook_url_is_shown_without_its_secrets(#[case] url: &str, #[case] shown: &str) {
        assert_eq!(super::redact_url(url), shown);
    }

    use super::*;
    use rstest::rstest;
    use serde_json::json;

    const MARK: &str = "czNjcjN0"; // base64 of "s3cr3t"

    #[rstest]
    // Same key, same value: both sides show the same placeholder (no diff line).
    #[case(json!({"data": {"k": MARK}}), json!({"data": {"k": MARK}}),
        json!({"data": {"k": SAME}}), json!({"data": {"k": SAME}}))]
    // Changed value: the key shows as changed.
    #[case(json!({"data": {"k": MARK}}), json!({"data": {"k": "b3RoZXI="}}),
        json!({"data": {"k": LIVE}}), json!({"data": {"k": BACKUP}}))]
    // Added and removed keys; stringData too.
    #[case(json!({"data": {"a": MARK}, "stringData": {"s": "plain"}}),
        json!({"data": {"b": MARK}}),
        json!({"data": {"a": LIVE}, "stringData": {"s": LIVE}}),
        json!({"data": {"b": BACKUP}}))]
    // The last applied configuration holds the values too.
    #[case(json!({"metadata": {"annotations": {LAST_APPLIED: format!("{{\"data\":{{\"k\":\"{MARK}\"}}}}"), "x": "y"}}}),
        json!({"metadata": {"annotations": {LAST_APPLIED: "{}", "x": "y"}}}),
        json!({"metadata": {"annotations": {LAST_APPLIED: LIVE, "x": "y"}}}),
        json!({"metadata": {"annotations": {LAST_APPLIED: BACKUP, "x": "y"}}}))]
    // A malformed data field is not shown either.
    #[case(json!({"data": MARK}), json!({"data": {"k": MARK}}),
        json!({"data": LIVE}), json!({"data": {"k": BACKUP}}))]
    fn secret_values_become_placeholders(
        #[case] mut live: Value,
        #[case] mut backup: Value,
        #[case] want_live: Value,
        #[case] want_backup: Value,
    ) {
        redact_for_diff("secrets", &mut live, &mut backup);
        assert_eq!((live, backup), (want_live, want_backup));
    }

    #[test]
    fn other_resources_are_left_as_they_are() {
        let cm = json!({"data": {"k": "v"}});
        for gr in ["configmaps", "secrets.example.com"] {
            let (mut l, mut b) = (cm.clone(), cm.clone());
            redact_for_diff(gr, &mut l, &mut b);
            assert_eq!((l, b), (cm.clone(), cm.clone()), "{gr}");
        }
    }
}
