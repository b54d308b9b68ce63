//! What the sender wrote in a message, without the history it quotes or their signature.
//!
//! A reply usually quotes our pitch, whose words ("guest post", "rate", "unsubscribe") would
//! otherwise decide its class. Plain text marks quotes with `>` and an attribution line; HTML
//! mail marks them with elements that flattening to text loses, so HTML is cut first.

use mail_parser::decoders::html::html_to_text;

/// Where mail clients start the quoted history in HTML: Gmail, Outlook desktop and web, Apple
/// Mail, Thunderbird, Yahoo. Lowercase; matched against lowercased HTML.
const HTML_QUOTE_MARKERS: &[&str] = &[
    "class=\"gmail_quote",
    "id=\"divrplyfwdmsg\"",
    "id=\"appendonsend\"",
    "<blockquote",
    "class=\"moz-cite-prefix\"",
    "class=\"yahoo_quoted\"",
    "<hr",
];

/// The text of an HTML body up to its quoted history, then as for plain text.
pub(crate) fn fresh_html(html: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so a position found in `lower` is valid in `html`.
    let lower = html.to_ascii_lowercase();
    let cut = HTML_QUOTE_MARKERS.iter().filter_map(|m| lower.find(m)).min().unwrap_or(html.len());
    fresh_text(&html_to_text(&html[..cut]))
}

/// What the sender wrote in this message: quoted lines, the quoted history after an attribution
/// line ("On … wrote:", Outlook's "-----Original Message-----" or "From: … Sent: …") and the
/// signature after "-- " are dropped.
pub(crate) fn fresh_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = vec![];
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let lower = t.to_lowercase();
        let next = lines.get(i + 1).map(|l| l.trim().to_lowercase()).unwrap_or_default();
        let attribution = (lower.starts_with("on ") && (lower.ends_with("wrote:") || next == "wrote:"))
            || lower.ends_with("a écrit :")
            || lower.ends_with("schrieb:")
            || lower.starts_with("-----original message-----")
            || (t.starts_with("________________") && next.starts_with("from:"))
            || (lower.starts_with("from:") && next.starts_with("sent:"));
        if attribution || *line == "-- " || t == "--" {
            break;
        }
        if !t.starts_with('>') {
            kept.push(*line);
        }
    }
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_history_and_signature_are_dropped() {
        let text = "Sounds good!\n\n-- \nJane, Editor\n\nOn Mon, 3 Mar 2025 at 10:00, Dana <dana@x.com> wrote:\n> rate";
        assert_eq!(fresh_text(text), "Sounds good!\n");
        let outlook = "No thanks.\n\n-----Original Message-----\nFrom: Dana\nSubject: guest post";
        assert_eq!(fresh_text(outlook), "No thanks.\n");
        assert_eq!(fresh_text("Yes\n> unsubscribe\nThanks"), "Yes\nThanks");
    }

    #[test]
    fn html_is_cut_where_the_quote_starts() {
        let html = "<div>Yes, send it.</div><div class=\"gmail_quote\">On Mon Dana wrote:<blockquote>rates?</blockquote></div>";
        assert_eq!(fresh_html(html).trim(), "Yes, send it.");
        let outlook =
            "<p>No thanks.</p><hr style=\"display:inline-block\"><div id=\"divRplyFwdMsg\"><b>From:</b> Dana</div>";
        assert_eq!(fresh_html(outlook).trim(), "No thanks.");
    }
}
