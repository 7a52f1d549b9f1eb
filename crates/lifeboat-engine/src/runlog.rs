//! The log and results of one backup or restore run: lines in logrus' text format, as
//! Velero writes `<b>-logs.gz`, and errors/warnings per namespace, as Velero writes
//! `<b>-results.gz`. Shared by listers and workers running concurrently.
//!
//! Invariant: only messages lifeboat composes (names, counts, errors) are logged, never
//! object content, so that secret values cannot reach a log.

use std::sync::Mutex;

use lifeboat_types::api::velero::{BackupResults, Time};

/// Log lines and results of a run.
#[derive(Debug)]
pub struct RunLog {
    kind: &'static str,
    subject: String,
    lines: Mutex<Vec<String>>,
    results: Mutex<BackupResults>,
}

impl RunLog {
    /// A log for run `name` of `kind` (`backup` or `restore`).
    pub fn new(kind: &'static str, name: &str) -> Self {
        RunLog {
            kind,
            subject: format!("velero/{name}"),
            lines: Mutex::new(Vec::new()),
            results: Mutex::new(BackupResults::default()),
        }
    }

    /// Adds a line at `level` (info, warning, error) with extra `fields`.
    pub fn line(&self, level: &str, msg: &str, fields: &[(&str, &str)]) {
        let mut line = format!(
            "time=\"{}\" level={level} msg={msg:?} {}={}",
            Time::now(),
            self.kind,
            self.subject
        );
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v:?}"));
        }
        tracing::debug!(target: "lifeboat::run", "{line}");
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    /// An info line.
    pub fn info(&self, msg: &str, fields: &[(&str, &str)]) {
        self.line("info", msg, fields);
    }

    /// A warning, logged and counted in the results (cluster scope when `ns` is `None`).
    pub fn warn(&self, ns: Option<&str>, msg: String) {
        self.line("warning", &msg, &[]);
        if let Ok(mut r) = self.results.lock() {
            r.warnings.add(ns, msg);
        }
    }

    /// An error, logged and counted in the results.
    pub fn error(&self, ns: Option<&str>, msg: String) {
        self.line("error", &msg, &[]);
        if let Ok(mut r) = self.results.lock() {
            r.errors.add(ns, msg);
        }
    }

    /// The errors and warnings so far.
    pub fn results(&self) -> BackupResults {
        self.results.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The log text.
    pub fn text(&self) -> String {
        let mut s = self.lines.lock().map(|l| l.join("\n")).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_results() {
        let l = RunLog::new("backup", "b1");
        l.info("Listing items", &[("resource", "pods")]);
        l.warn(Some("a"), "w".into());
        l.error(None, "e".into());
        let t = l.text();
        assert!(
            t.contains("level=info msg=\"Listing items\" backup=velero/b1 resource=\"pods\""),
            "{t}"
        );
        assert!(t.contains("level=warning") && t.contains("level=error"));
        let r = l.results();
        assert_eq!(
            (r.warnings.namespaces["a"].len(), r.errors.cluster.len()),
            (1, 1)
        );
    }
}
