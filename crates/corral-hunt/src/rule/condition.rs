//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of sel*`, `all of sel*`,
//! `1 of them`, `all of them`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Sel(String),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// `1 of pattern` (`any == true`) or `all of pattern`; pattern `them` = every selection.
    Of {
        any: bool,
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Word(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            '(' => {
                out.push(Tok::LParen);
                chars.next();
            }
            ')' => {
                out.push(Tok::RParen);
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '|' => {
                return Err(
                    "aggregations (`| count() ...`) are not supported; use `corral: threshold:`"
                        .into(),
                )
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_alphanumeric() || matches!(d, '_' | '*' | '-' | '.' | '?') {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(s[i..end].to_string()));
            }
            other => return Err(format!("unexpected character {other:?} in condition")),
        }
    }
    Ok(out)
}

pub fn parse(s: &str) -> Result<Cond, String> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Err("empty condition".into());
    }
    let mut p = P { toks, pos: 0 };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {} in condition", p.describe()));
    }
    Ok(c)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self.toks.get(self.pos) {
            Some(Tok::LParen) => "`(`".into(),
            Some(Tok::RParen) => "`)`".into(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            None => "end".into(),
        }
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("or"))
        {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("and"))
        {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("not"))
        {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let c = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err(format!("expected `)`, found {}", self.describe()));
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Word(w)) => {
                let quant = if w == "1" || w.eq_ignore_ascii_case("any") {
                    Some(true)
                } else if w.eq_ignore_ascii_case("all") {
                    Some(false)
                } else {
                    None
                };
                let next_is_of = matches!(self.toks.get(self.pos + 1), Some(Tok::Word(o)) if o.eq_ignore_ascii_case("of"));
                if let (Some(any), true) = (quant, next_is_of) {
                    self.pos += 2;
                    let Some(Tok::Word(pattern)) = self.toks.get(self.pos).cloned() else {
                        return Err("expected a selection pattern or `them` after `of`".into());
                    };
                    self.pos += 1;
                    return Ok(Cond::Of { any, pattern });
                }
                if next_is_of {
                    return Err(format!(
                        "only `1 of` and `all of` are supported, not `{w} of`"
                    ));
                }
                if ["and", "or", "not", "of"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
                {
                    return Err(format!("unexpected `{w}` in condition"));
                }
                self.pos += 1;
                Ok(Cond::Sel(w))
            }
            _ => Err(format!("expected a selection, found {}", self.describe())),
        }
    }
}

/// Sigma selection-name patterns: `*` wildcard, `them` = all.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern == "them" {
        return !name.starts_with('_');
    }
    crate::rule::matcher::glob(pattern.as_bytes(), name.as_bytes(), false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_quantifiers() {
        let c = parse("sel and not (f1 or f2) or 1 of x*").unwrap();
        let want = Cond::Or(vec![
            Cond::And(vec![
                Cond::Sel("sel".into()),
                Cond::Not(Box::new(Cond::Or(vec![
                    Cond::Sel("f1".into()),
                    Cond::Sel("f2".into()),
                ]))),
            ]),
            Cond::Of {
                any: true,
                pattern: "x*".into(),
            },
        ]);
        assert_eq!(c, want);
        assert_eq!(
            parse("all of them").unwrap(),
            Cond::Of {
                any: false,
                pattern: "them".into()
            }
        );
    }

    #[test]
    fn errors() {
        assert!(parse("").is_err());
        assert!(parse("sel and").is_err());
        assert!(parse("(sel").is_err());
        assert!(parse("sel)").is_err());
        assert!(parse("2 of sel*").is_err());
        assert!(parse("sel | count() > 5")
            .unwrap_err()
            .contains("threshold"));
        assert!(parse("sel & x").is_err());
    }
}
