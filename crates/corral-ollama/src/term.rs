//! Text a host chose (a scanned server's version, a process name, an environment value, a
//! model path), made safe to print on a terminal.
//!
//! Control characters (ESC and so escape sequences, BEL, carriage return, newline, DEL, the C1
//! controls such as U+009B CSI) are written escaped (`\u{1b}`, `\n`, `\r`) instead of as they
//! are, so such text can neither move the cursor, clear the screen, retitle the window, write
//! the clipboard (OSC 52) nor forge a line of the report. Everything else, including non-ASCII
//! letters, is kept.

use std::borrow::Cow;

/// `s` with every control character escaped; borrowed when there is none.
pub fn term(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::term;

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        assert!(matches!(term("llama3 ü 8B"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(term("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(term("x\ny\rz\t"), "x\\ny\\rz\\t");
        assert_eq!(term("\u{9b}1m\u{7f}\u{7}"), "\\u{9b}1m\\u{7f}\\u{7}");
        let hostile = "\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\n[INFO] all good";
        assert!(!term(hostile).chars().any(char::is_control));
    }
}
