//! Markdown lifeboat writes: the one rule for what a table cell may hold.

/// `s` as one Markdown table cell: pipes escaped, lines joined.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cell_stays_one_cell() {
        assert_eq!(super::cell("a|b\nc"), "a\\|b c");
    }
}
