//! Text from the traced system (process names, paths, payloads) is hostile: it
//! may hold terminal control sequences (ESC, OSC 52 clipboard writes, CR that
//! rewrites a line) or bidi controls that reorder what a person reads. Before
//! any of it reaches a terminal (headless text, the TUI) it is made visible.

use std::borrow::Cow;

/// Characters shown escaped: C0 controls (tab included), DEL, C1 controls, and
/// the Unicode bidi and zero-width direction marks.
fn needs_escape(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `s` holds a character a terminal acts on (see [`escape_untrusted`]):
/// a scan, no allocation, for the hot path.
pub fn has_terminal_controls(s: &str) -> bool {
    // One pass over the bytes; only text past its first non-ASCII byte (rare
    // in paths and names) is looked at as characters.
    for (i, b) in s.bytes().enumerate() {
        if b < 0x20 || b == 0x7f {
            return true;
        }
        if b >= 0x80 {
            return s[i..].chars().any(needs_escape);
        }
    }
    false
}

/// `s` with every character [`needs_escape`] accepts written by `escape`;
/// unchanged (no allocation) when there is none.
fn replace_controls(s: &str, escape: impl Fn(u32) -> String) -> Cow<'_, str> {
    if !has_terminal_controls(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.push_str(&escape(c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with every control and bidi character written as `\xNN` (below U+0100)
/// or `\uNNNN`; unchanged (no allocation) when there is none.
pub fn escape_untrusted(s: &str) -> Cow<'_, str> {
    replace_controls(s, |n| if n < 0x100 { format!("\\x{n:02x}") } else { format!("\\u{n:04x}") })
}

/// Like [`escape_untrusted`], but line breaks (`\n`) of a multi-line text
/// stay line breaks.
pub fn escape_untrusted_lines(s: &str) -> String {
    s.split('\n').map(escape_untrusted).collect::<Vec<_>>().join("\n")
}

/// JSON text with the characters JSON allows raw but a terminal acts on (DEL,
/// C1 controls, bidi marks) written as `\uXXXX` escapes: the same JSON value,
/// harmless when the stream is read on a terminal. JSON may hold these only
/// inside strings, so replacing them anywhere in the text is exact.
pub fn json_escape_controls(json: &str) -> Cow<'_, str> {
    replace_controls(json, |n| format!("\\u{n:04x}"))
}

/// The candidate nearest to `word` if it is within `max` edits: the "did you
/// mean" of a typo'd name.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>, max: usize) -> Option<&'a str> {
    candidates.into_iter().map(|c| (edit_distance(word, c), c)).min().filter(|(d, _)| *d <= max).map(|(_, c)| c)
}

/// Levenshtein distance, for "did you mean" on short names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_bidi_controls_become_visible() {
        let hostile = "a\u{1b}]52;c;ZXZpbA==\u{7}b\u{1b}[?1049l\r\nc\u{202e}d\u{9b}e\u{7f}";
        let e = escape_untrusted(hostile);
        assert_eq!(e, "a\\x1b]52;c;ZXZpbA==\\x07b\\x1b[?1049l\\x0d\\x0ac\\u202ed\\x9be\\x7f");
        assert!(!e.chars().any(needs_escape));
        assert!(matches!(escape_untrusted("/etc/hosts ünïcode"), Cow::Borrowed(_)));
        assert_eq!(escape_untrusted_lines("a\x1b\nb\r"), "a\\x1b\nb\\x0d");
    }

    #[test]
    fn json_stays_the_same_value_without_raw_controls() {
        let v = serde_json::json!({"p": "a\u{202e}b\u{9b}c\u{7f}\u{1b}"});
        let text = serde_json::to_string(&v).unwrap();
        let safe = json_escape_controls(&text);
        assert!(!safe.chars().any(needs_escape), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("opne", "open"), 2);
        assert_eq!(edit_distance("tcp", "tcp"), 0);
        assert_eq!(edit_distance("sched", "syscall_latency"), 12);
        assert_eq!(closest("opne", ["tcp", "open"], 2), Some("open"));
        assert_eq!(closest("sched", ["syscall_latency"], 2), None);
    }
}
