//! How an error is printed on the terminal.

/// The error and its causes on one line, leaving out a cause whose text the message
/// already carries (many of lifeboat's errors quote their source next to the fix).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
