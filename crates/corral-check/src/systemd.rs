//! systemd unit files, `Environment=` quoting, and environment files (`EnvironmentFile=`,
//! `/etc/environment`). Pure parsing; [`crate::settings`] reads the files.

/// One `Key=value` line of a unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub section: String,
    pub key: String,
    pub value: String,
    /// Line where the directive starts (continuations join following lines).
    pub line: u32,
}

fn line_no(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// Parse unit text: `[Section]` headers, `#`/`;` comments, trailing-backslash continuation.
pub fn parse_unit(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, u32)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some((mut acc, start)) = pending.take() {
            // Comment lines inside a continuation are skipped, as systemd does.
            if line.starts_with('#') || line.starts_with(';') {
                pending = Some((acc, start));
                continue;
            }
            acc.push(' ');
            match line.strip_suffix('\\') {
                Some(head) => {
                    acc.push_str(head);
                    pending = Some((acc, start));
                }
                None => {
                    acc.push_str(line);
                    push_directive(&mut out, &section, &acc, start);
                }
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            if let Some(end) = line.find(']') {
                section = line.get(1..end).unwrap_or_default().to_string();
            }
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending = Some((head.to_string(), line_no(i))),
            None => push_directive(&mut out, &section, line, line_no(i)),
        }
    }
    if let Some((acc, start)) = pending {
        push_directive(&mut out, &section, &acc, start);
    }
    out
}

fn push_directive(out: &mut Vec<Directive>, section: &str, text: &str, line: u32) {
    if let Some((k, v)) = text.split_once('=') {
        let key = k.trim();
        if key.is_empty() {
            return;
        }
        out.push(Directive {
            section: section.to_string(),
            key: key.to_string(),
            value: v.trim().to_string(),
            line,
        });
    }
}

/// Split an `Environment=` value into assignments: words separated by whitespace, single or
/// double quotes anywhere in a word, C escapes. An unbalanced quote ends parsing (systemd
/// ignores the rest of the line). Words that are not `NAME=value` are dropped.
pub fn split_environment(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut ok = true;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => match chars.next() {
                    Some(e) => word.push(unescape(e)),
                    None => {
                        ok = false;
                        break;
                    }
                },
                (Some(_), c) => word.push(c),
                (None, '"') | (None, '\'') => quote = Some(c),
                (None, c) if c.is_whitespace() => break,
                (None, c) => word.push(c),
            }
        }
        if quote.is_some() || !ok {
            break;
        }
        let word = word.replace("%%", "%");
        if let Some((k, v)) = word.split_once('=') {
            if valid_name(k) {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        's' => ' ',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        other => other,
    }
}

pub fn valid_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An environment file: `NAME=value` lines with `#`/`;` comments, an optional `export `, and a
/// value optionally wrapped in single or double quotes. Returns `(name, value, line)`.
pub fn parse_env_file(text: &str) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim).unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if !valid_name(k) {
            continue;
        }
        out.push((k.to_string(), unquote(v.trim()), line_no(i)));
    }
    out
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            let inner = v.get(1..v.len() - 1).unwrap_or_default();
            return if q == '"' {
                inner.replace("\\\"", "\"").replace("\\\\", "\\")
            } else {
                inner.to_string()
            };
        }
    }
    v.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn unit_sections_comments_continuations() {
        let u = "# comment\n[Unit]\nDescription=Ollama\n\n[Service]\nExecStart=/usr/bin/ollama \\\n  # inner comment\n  serve\n; other\nEnvironment=\"OLLAMA_HOST=0.0.0.0\"\nUser = ollama\n";
        let d = parse_unit(u);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].section, "Unit");
        assert_eq!(d[1].key, "ExecStart");
        assert_eq!(d[1].value, "/usr/bin/ollama  serve");
        assert_eq!(d[1].line, 6);
        assert_eq!(d[2].key, "Environment");
        assert_eq!(d[2].line, 10);
        assert_eq!(d[3].value, "ollama");
    }

    #[test]
    fn environment_quoting_rules() {
        assert_eq!(
            split_environment(r#""VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6""#),
            kv(&[
                ("VAR1", "word1 word2"),
                ("VAR2", "word3"),
                ("VAR3", "$word 5 6")
            ])
        );
        assert_eq!(
            split_environment(r#"OLLAMA_HOST='0.0.0.0:11434' A=b\ c X="a\"b""#),
            kv(&[
                ("OLLAMA_HOST", "0.0.0.0:11434"),
                ("A", "b c"),
                ("X", "a\"b")
            ])
        );
        assert_eq!(
            split_environment("OLLAMA_ORIGINS=*"),
            kv(&[("OLLAMA_ORIGINS", "*")])
        );
        // Unbalanced quote: the rest is ignored, earlier words kept.
        assert_eq!(split_environment(r#"A=1 "B=2"#), kv(&[("A", "1")]));
        // Not an assignment, or a bad name: dropped.
        assert_eq!(
            split_environment("junk 1X=2 P%%=3 Y=50%%"),
            kv(&[("Y", "50%")])
        );
        assert!(split_environment("").is_empty());
    }

    #[test]
    fn env_files() {
        let f = "# c\nOLLAMA_HOST=0.0.0.0\nexport OLLAMA_ORIGINS=\"*\"\n bad line\nX='a b'\n9X=1\n";
        let e = parse_env_file(f);
        assert_eq!(
            e,
            vec![
                ("OLLAMA_HOST".into(), "0.0.0.0".into(), 2),
                ("OLLAMA_ORIGINS".into(), "*".into(), 3),
                ("X".into(), "a b".into(), 5)
            ]
        );
    }
}
