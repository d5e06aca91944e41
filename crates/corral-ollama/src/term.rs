//! Text a host or an input chose (a scanned server's version, a process name, an environment
//! value, a model path, an event's field, a file name), made safe to print on a terminal.
//!
//! Control characters (ESC and so escape sequences, BEL, carriage return, newline, DEL, the C1
//! controls such as U+009B CSI) are written escaped (`\u{1b}`, `\n`, `\r`) instead of as they
//! are, so such text can neither move the cursor, clear the screen, retitle the window, write
//! the clipboard (OSC 52) nor forge a line of the report. So are the Unicode bidirectional and
//! invisible format characters that can reorder or hide text (U+061C, U+200B–U+200F,
//! U+202A–U+202E, U+2060–U+2069, U+FEFF). Everything else, including non-ASCII letters, is kept.

use std::borrow::Cow;

/// `s` with every character a terminal acts on escaped; borrowed when there is none.
pub fn term(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts_on_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s.chars());
    Cow::Owned(out)
}

/// [`term`], cut to `max` characters (an ellipsis marks the cut).
pub fn term_cut(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    push_escaped(&mut out, s.chars().take(max));
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn push_escaped(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        if acts_on_terminal(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

fn acts_on_terminal(c: char) -> bool {
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
    use super::{term, term_cut};
    use std::borrow::Cow;

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        assert!(matches!(term("llama3 ü 8B"), Cow::Borrowed(_)));
        assert!(matches!(term("8.8.8.8 café"), Cow::Borrowed(_)));
        assert_eq!(term("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(term("x\ny\rz\t"), "x\\ny\\rz\\t");
        assert_eq!(term("\u{9b}1m\u{7f}\u{7}"), "\\u{9b}1m\\u{7f}\\u{7}");
        assert_eq!(
            term("\u{1b}[2J\u{1b}[1;1Hall clear\n"),
            "\\u{1b}[2J\\u{1b}[1;1Hall clear\\n"
        );
        let hostile = "\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\n[INFO] all good";
        assert!(!term(hostile).chars().any(char::is_control));
    }

    #[test]
    fn bidi_and_invisible_characters_are_escaped() {
        assert_eq!(term("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(
            term("a\u{200b}b\u{2066}c\u{feff}"),
            "a\\u{200b}b\\u{2066}c\\u{feff}"
        );
    }

    #[test]
    fn a_cut_is_marked_and_escapes_what_it_keeps() {
        assert_eq!(term_cut("ab\ncd", 3), "ab\\n…");
        assert_eq!(term_cut("abc", 3), "abc");
        assert_eq!(term_cut("", 0), "");
    }
}
