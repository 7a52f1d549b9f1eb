//! Printing: tables, JSON, YAML and JSONPath, and `backup describe` in Velero's layout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use lifeboat_types::api::velero::{Backup, BackupResults, LabelSelector, Time};
use lifeboat_types::format::jsonpath::render_template;
use serde::Serialize;

use crate::cli::Output;

/// Prints `value` as JSON, YAML or JSONPath. Returns false for `Table`.
pub fn print_structured<T: Serialize>(value: &T, output: &Output) -> Result<bool> {
    match output {
        Output::Table => Ok(false),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(value)?);
            Ok(true)
        }
        Output::Yaml => {
            print!("{}", serde_yaml_ng::to_string(value)?);
            Ok(true)
        }
        Output::JsonPath(t) => {
            let v = serde_json::to_value(value)?;
            print!("{}", render_template(t, &v)?);
            Ok(true)
        }
    }
}

/// Prints one object when one was asked for by name, else a velero.io/v1 `list_kind` of
/// them, as Velero's CLI does (`backup get b1 -o json` is a Backup; `backup get -o json`
/// a BackupList).
pub fn print_one_or_list<T: Serialize>(
    items: &[T],
    list_kind: &str,
    single: bool,
    output: &Output,
) -> Result<()> {
    if single && items.len() == 1 {
        print_structured(&items[0], output)?;
    } else {
        print_structured(
            &serde_json::json!({"apiVersion": "velero.io/v1", "kind": list_kind, "metadata": {}, "items": items}),
            output,
        )?;
    }
    Ok(())
}

/// Aligns rows into columns, kubectl style.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                out.push_str(c);
            } else {
                let _ = write!(out, "{:w$}   ", c, w = widths[i]);
            }
        }
        out.push('\n');
    };
    line(&mut out, header.to_vec());
    for r in rows {
        line(&mut out, r.iter().map(String::as_str).collect());
    }
    out
}

fn fmt_time(t: Option<Time>) -> String {
    t.map(|t| t.0.format("%Y-%m-%d %H:%M:%S %z UTC").to_string())
        .unwrap_or_else(|| "<nil>".into())
}

fn expires_in(b: &Backup) -> String {
    let Some(exp) = b.status.as_ref().and_then(|s| s.expiration) else {
        return "n/a".into();
    };
    let left = exp.0.signed_duration_since(chrono::Utc::now());
    if left.num_seconds() <= 0 {
        "expired".into()
    } else if left.num_days() > 0 {
        format!("{}d", left.num_days())
    } else if left.num_hours() > 0 {
        format!("{}h", left.num_hours())
    } else {
        format!("{}m", left.num_minutes().max(1))
    }
}

fn selector_text(s: &Option<LabelSelector>) -> String {
    match s {
        None => "<none>".into(),
        Some(ls) => {
            let sel = lifeboat_types::api::selector::Selector::from_label_selector(ls)
                .map(|s| s.to_string())
                .unwrap_or_default();
            if sel.is_empty() { "<none>".into() } else { sel }
        }
    }
}

/// A Velero tri-state flag as `describe` prints it: `auto` when unset.
pub fn tri_state(v: Option<bool>, yes: &'static str, no: &'static str) -> &'static str {
    match v {
        None => "auto",
        Some(true) => yes,
        Some(false) => no,
    }
}

/// The `backup get` table, with Velero's columns.
pub fn backups_table(backups: &[Backup]) -> String {
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|b| {
            let st = b.status.clone().unwrap_or_default();
            vec![
                b.metadata.name.clone(),
                b.phase().to_string(),
                st.errors.to_string(),
                st.warnings.to_string(),
                fmt_time(st.start_timestamp.or(b.metadata.creation_timestamp)),
                expires_in(b),
                b.spec.storage_location.clone().unwrap_or_default(),
                selector_text(&b.spec.label_selector),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "STATUS",
            "ERRORS",
            "WARNINGS",
            "CREATED",
            "EXPIRES",
            "STORAGE LOCATION",
            "SELECTOR",
        ],
        &rows,
    )
}

/// The items joined by commas, or `empty` when there are none.
pub fn list_or(v: &[String], empty: &str) -> String {
    if v.is_empty() {
        empty.into()
    } else {
        v.join(", ")
    }
}

fn map_text(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        "<none>".into()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n              ")
    }
}

/// `backup describe`, laid out as Velero does.
pub fn describe_backup(
    b: &Backup,
    results: &BackupResults,
    resource_list: Option<&BTreeMap<String, Vec<String>>>,
    details: bool,
) -> String {
    let s = &b.spec;
    let st = b.status.clone().unwrap_or_default();
    let mut o = String::new();
    let _ = writeln!(o, "Name:         {}", b.metadata.name);
    let _ = writeln!(
        o,
        "Namespace:    {}",
        b.metadata.namespace.as_deref().unwrap_or("velero")
    );
    let _ = writeln!(o, "Labels:       {}", map_text(&b.metadata.labels));
    let _ = writeln!(o, "Annotations:  {}", map_text(&b.metadata.annotations));
    let _ = writeln!(o);
    let _ = writeln!(o, "Phase:  {}", b.phase());
    let _ = writeln!(o);
    if st.errors > 0 || st.warnings > 0 {
        let _ = writeln!(o, "Errors:    {}", st.errors);
        let _ = writeln!(o, "Warnings:  {}", st.warnings);
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "Namespaces:");
    let _ = writeln!(o, "  Included:  {}", list_or(&s.included_namespaces, "*"));
    let _ = writeln!(
        o,
        "  Excluded:  {}",
        list_or(&s.excluded_namespaces, "<none>")
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "Resources:");
    let scoped = !s.included_cluster_scoped_resources.is_empty()
        || !s.excluded_cluster_scoped_resources.is_empty()
        || !s.included_namespace_scoped_resources.is_empty()
        || !s.excluded_namespace_scoped_resources.is_empty();
    if scoped {
        let _ = writeln!(
            o,
            "  Included cluster-scoped:    {}",
            list_or(&s.included_cluster_scoped_resources, "<none>")
        );
        let _ = writeln!(
            o,
            "  Excluded cluster-scoped:    {}",
            list_or(&s.excluded_cluster_scoped_resources, "<none>")
        );
        let _ = writeln!(
            o,
            "  Included namespace-scoped:  {}",
            list_or(&s.included_namespace_scoped_resources, "*")
        );
        let _ = writeln!(
            o,
            "  Excluded namespace-scoped:  {}",
            list_or(&s.excluded_namespace_scoped_resources, "<none>")
        );
    } else {
        let _ = writeln!(
            o,
            "  Included:        {}",
            list_or(&s.included_resources, "*")
        );
        let _ = writeln!(
            o,
            "  Excluded:        {}",
            list_or(&s.excluded_resources, "<none>")
        );
        let cs = tri_state(s.include_cluster_resources, "included", "excluded");
        let _ = writeln!(o, "  Cluster-scoped:  {cs}");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Label selector:  {}", selector_text(&s.label_selector));
    let _ = writeln!(o);
    if !s.or_label_selectors.is_empty() {
        let ors: Vec<String> = s
            .or_label_selectors
            .iter()
            .map(|l| selector_text(&Some(l.clone())))
            .collect();
        let _ = writeln!(o, "Or label selector:  {}", ors.join(" or "));
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "Storage Location:  {}",
        s.storage_location.as_deref().unwrap_or("default")
    );
    let _ = writeln!(o);
    let snap = tri_state(s.snapshot_volumes, "true", "false");
    let _ = writeln!(o, "Velero-Native Snapshot PVs:  {snap}");
    let _ = writeln!(o);
    let _ = writeln!(o, "TTL:  {}", b.ttl());
    let _ = writeln!(o);
    let hooks = if s.hooks.resources.is_empty() {
        "<none>".to_string()
    } else {
        s.hooks.resources.len().to_string()
    };
    let _ = writeln!(o, "Hooks:  {hooks}");
    if let Some(h) = st.hook_status {
        let _ = writeln!(o, "HooksAttempted:  {}", h.hooks_attempted);
        let _ = writeln!(o, "HooksFailed:     {}", h.hooks_failed);
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Backup Format Version:  {}",
        st.format_version.as_deref().unwrap_or("1.1.0")
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "Started:    {}", fmt_time(st.start_timestamp));
    let _ = writeln!(o, "Completed:  {}", fmt_time(st.completion_timestamp));
    let _ = writeln!(o);
    let _ = writeln!(o, "Expiration:  {}", fmt_time(st.expiration));
    let _ = writeln!(o);
    let p = st.progress.unwrap_or_default();
    let _ = writeln!(o, "Total items to be backed up:  {}", p.total_items);
    let _ = writeln!(o, "Items backed up:              {}", p.items_backed_up);
    if let Some(rl) = resource_list {
        let _ = writeln!(o);
        let _ = writeln!(o, "Resource List:");
        for (k, v) in rl {
            let _ = writeln!(o, "  {k}:");
            for i in v {
                let _ = writeln!(o, "    - {i}");
            }
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Backup Volumes:  <none included>");
    if details || st.errors > 0 || st.warnings > 0 {
        write_results(&mut o, results, true);
    }
    o
}

/// Appends the errors and warnings of a run, Velero style. Without `details`, a long list
/// is summarised by its count.
pub fn write_results(o: &mut String, results: &BackupResults, details: bool) {
    for (title, msgs) in [("Errors", &results.errors), ("Warnings", &results.warnings)] {
        if msgs.is_empty() {
            continue;
        }
        let _ = writeln!(o);
        if !details && msgs.len() > 10 {
            let _ = writeln!(o, "{title}:  {} (use --details to see them)", msgs.len());
            continue;
        }
        let _ = writeln!(o, "{title}:");
        for m in &msgs.velero {
            let _ = writeln!(o, "  Velero:   {m}");
        }
        for m in &msgs.cluster {
            let _ = writeln!(o, "  Cluster:  {m}");
        }
        if !msgs.namespaces.is_empty() {
            let _ = writeln!(o, "  Namespaces:");
            for (ns, ms) in &msgs.namespaces {
                for m in ms {
                    let _ = writeln!(o, "    {ns}:  {m}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let t = table(
            &["NAME", "STATUS"],
            &[vec!["a-long-name".into(), "Completed".into()]],
        );
        assert_eq!(t, "NAME          STATUS\na-long-name   Completed\n");
    }
}
