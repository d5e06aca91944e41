//! Sigma string values: `*` any run, `?` one character, `\*` `\?` `\\` the characters
//! themselves, any other backslash literal (Windows paths). One reading for every modifier,
//! so `abc\*def` is the text `abc*def` whether the value is a glob, a plain equality or a
//! `contains`, and every export writes what the matcher matches.

/// One element of a Sigma string value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    Lit(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
}

/// The pieces of `s`.
pub fn pieces(s: &str) -> Vec<Piece> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push(Piece::Lit(n));
                }
                _ => out.push(Piece::Lit('\\')),
            },
            '*' => out.push(Piece::Star),
            '?' => out.push(Piece::One),
            c => out.push(Piece::Lit(c)),
        }
    }
    out
}

/// Whether `s` has an unescaped `*` or `?`.
pub fn has_wildcard(s: &str) -> bool {
    pieces(s).iter().any(|p| !matches!(p, Piece::Lit(_)))
}

/// The text a wildcard-free value stands for (escapes resolved).
pub fn unescape(s: &str) -> String {
    pieces(s)
        .into_iter()
        .map(|p| match p {
            Piece::Lit(c) => c,
            Piece::Star => '*',
            Piece::One => '?',
        })
        .collect()
}

/// Pieces written back as a Sigma glob, every literal `*`, `?` and `\` escaped, so that
/// gluing `*` around it cannot change what an earlier backslash means.
pub fn to_glob(pieces: &[Piece]) -> String {
    let mut out = String::with_capacity(pieces.len() + 4);
    for p in pieces {
        match p {
            Piece::Lit(c @ ('*' | '?' | '\\')) => {
                out.push('\\');
                out.push(*c);
            }
            Piece::Lit(c) => out.push(*c),
            Piece::Star => out.push('*'),
            Piece::One => out.push('?'),
        }
    }
    out
}

/// The pieces of a value under `contains` / `startswith` / `endswith` (or none): the value
/// with `*` added where the modifier leaves the text open.
pub fn with_op(s: &str, op: super::Op) -> Vec<Piece> {
    let mut p = pieces(s);
    match op {
        super::Op::Contains => {
            p.insert(0, Piece::Star);
            p.push(Piece::Star);
        }
        super::Op::StartsWith => p.push(Piece::Star),
        super::Op::EndsWith => p.insert(0, Piece::Star),
        _ => {}
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_resolve_the_same_for_every_kind() {
        assert_eq!(unescape(r"abc\*def"), "abc*def");
        assert_eq!(unescape(r"a\?b"), "a?b");
        assert_eq!(unescape(r"Program Files\\Ollama"), r"Program Files\Ollama");
        assert_eq!(unescape(r"C:\Users\x"), r"C:\Users\x");
        assert_eq!(unescape(r"trailing\"), r"trailing\");
        assert!(!has_wildcard(r"abc\*def") && has_wildcard("a*b") && has_wildcard(r"\\*"));
        assert_eq!(
            pieces(r"\\*"),
            [Piece::Lit('\\'), Piece::Star],
            "an escaped backslash, then a wildcard"
        );
        // A literal trailing backslash stays literal once `*` is glued after it.
        assert_eq!(
            to_glob(&with_op(r"C:\Temp\", crate::rule::Op::StartsWith)),
            r"C:\\Temp\\*"
        );
    }
}
