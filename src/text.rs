//! Text from elsewhere (an agent's report, an HTTP body, a file) made fit
//! for a terminal, a log line or an Event: control characters escaped (an
//! agent or a server must not drive the operator's terminal with escape
//! sequences, nor forge lines), then cut.

/// `s` with every control character (escape, newline, carriage return, ...)
/// written as its Rust escape (`\u{1b}`, `\n`).
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The first `max` characters of `s`, with `…` when there were more.
pub fn cut(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// [`printable`], then [`cut`]: escaping can make a text six times longer,
/// so the cut comes after it.
pub fn shown(s: &str, max: usize) -> String {
    cut(&printable(s), max)
}

/// `s` as a URL query parameter's value: every byte but the unreserved
/// ones (RFC 3986: letters, digits, `-._~`) percent-encoded.
pub fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_cut_comes_last() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("\u{1b}[31mred\u{1b}[0m"), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(printable("a\nforged line"), "a\\nforged line");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("abc", 3), "abc");
        let s = shown(&"\u{7f}".repeat(100), 20);
        assert_eq!(s.chars().count(), 21, "{s}");
        assert!(!s.chars().any(char::is_control));
    }
}
