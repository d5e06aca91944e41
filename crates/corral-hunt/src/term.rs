//! Text from inputs made safe for a terminal: event values, rule texts and file names reach
//! the table and stderr, and a hostile record must not move the cursor, clear the screen,
//! forge a line or reorder what follows.

use std::borrow::Cow;

/// `s` with control characters (C0, DEL, C1: ESC, CR, LF, BEL...) written as Rust escapes
/// (`\u{1b}`, `\n`) and the Unicode bidirectional and invisible format characters that can
/// reorder or hide text on a terminal (U+061C, U+200B-U+200F, U+202A-U+202E, U+2060-U+2069,
/// U+FEFF) as `\u{...}`. Text without them is returned as is.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`printable`], cut to `max` characters (an ellipsis marks the cut).
pub fn printable_cut(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(
            printable("\u{1b}[2J\u{1b}[1;1Hall clear\n"),
            "\\u{1b}[2J\\u{1b}[1;1Hall clear\\n"
        );
        assert_eq!(printable("a\rb\u{7}c\u{9b}d"), "a\\rb\\u{7}c\\u{9b}d");
        assert_eq!(printable("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert!(matches!(printable("8.8.8.8 café"), Cow::Borrowed(_)));
        assert_eq!(printable_cut("ab\ncd", 3), "ab\\n…");
    }
}
