//! HTML pages from the Markdown lifeboat writes (a runbook, a report): one renderer, so a
//! page and its Markdown say the same. A plan's text can hold any characters, so nothing
//! in the Markdown becomes active in the page: raw HTML is shown as text, and links and
//! images (a `javascript:` link, a remote image that reports the reader) as their text.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

/// Escapes `s` for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The body of `markdown` as HTML (tables on; raw HTML escaped).
pub fn body(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES).filter_map(|e| match e {
        Event::Html(s) | Event::InlineHtml(s) => Some(Event::Text(s)),
        Event::Start(Tag::Link { dest_url, .. }) => Some(Event::Text(dest_url)),
        Event::Start(Tag::Image { dest_url, .. }) => Some(Event::Text(dest_url)),
        Event::End(TagEnd::Link | TagEnd::Image) => None,
        e => Some(e),
    });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

/// The style of lifeboat's pages: readable on paper and on a phone at 3 a.m.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72em;margin:1em auto;padding:0 1em;line-height:1.4;color:#111}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eee}code,pre{background:#f4f4f4}pre{padding:.5em;overflow-x:auto}blockquote{border-left:4px solid #c60;margin:.5em 0;padding:.25em 1em;background:#fff4e5}";

/// A whole page: `title` (escaped) and `markdown` rendered.
pub fn page(title: &str, markdown: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        escape(title),
        body(markdown)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_and_raw_html_is_text() {
        let b = body("| a | b |\n|---|---|\n| 1 | <script>x</script> |\n");
        assert!(b.contains("<table>"), "{b}");
        assert!(b.contains("&lt;script&gt;x&lt;/script&gt;"), "{b}");
        assert!(!b.contains("<script>"), "{b}");
    }

    #[test]
    fn links_and_images_are_text() {
        let b = body(
            "[call](javascript:alert(1)) <javascript:alert(2)> ![x](https://track.example/p.png)\n",
        );
        assert!(!b.contains("<a "), "{b}");
        assert!(!b.contains("<img"), "{b}");
        assert!(!b.contains("href"), "{b}");
    }

    #[test]
    fn the_title_is_escaped() {
        let p = page("a <b> & \"c\"", "# x\n");
        assert!(
            p.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"),
            "{p}"
        );
        assert!(p.contains("<h1>x</h1>"), "{p}");
    }
}
