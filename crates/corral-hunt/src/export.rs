//! Rules translated for the SIEMs that exist: Sigma (verbatim YAML), Elastic EQL, Kibana
//! KQL and Splunk SPL. Field names stay ECS; map them in the SIEM if its data is not ECS.
//!
//! A translation keeps hunt's (and Sigma's) answer for events that lack a field the rule
//! names: a test of a missing field is false, so `not filter` is true there. EQL and SPL
//! evaluate such a test to null instead, `not null` is null, and a query keeps only events
//! for which it is true. Under a `not`, a test whose field may be missing is therefore written
//! guarded, `(field != null and test)` in EQL and `(isnotnull('field') AND test)` in SPL: false,
//! not null, without the field (see [`Ctx`]).

use std::collections::BTreeSet;

use crate::error::ExportError;
use crate::rule::condition::{pattern_matches, Cond};
use crate::rule::value::{self, Piece};
use crate::rule::yaml::Scalar;
use crate::rule::{Item, Op, Rule, Selection};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Sigma,
    Eql,
    Kql,
    Spl,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Sigma => "yml",
            ExportFormat::Eql => "eql",
            ExportFormat::Kql => "kql",
            ExportFormat::Spl => "spl",
        }
    }
}

/// One exported rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub file_name: String,
    pub text: String,
    /// What the target language cannot say (e.g. KQL has no thresholds); shown to the user.
    pub notes: Vec<String>,
}

/// Translates `rule`. `sigma_source` is the rule's YAML text, written as is for Sigma.
pub fn export(
    rule: &Rule,
    stem: &str,
    sigma_source: &str,
    fmt: ExportFormat,
) -> Result<Exported, ExportError> {
    let file_name = format!("{stem}.{}", fmt.extension());
    let mut notes = Vec::new();
    let threshold = rule.threshold.as_ref();
    let text = match fmt {
        ExportFormat::Sigma => sigma_source.to_string(),
        ExportFormat::Eql => {
            let mut out = header("//", rule);
            if let Some(t) = threshold {
                let line = format!(
                    "threshold: more than {} events per {} in {} s; use this query in an Elastic threshold rule",
                    t.gt, t.group_by, t.timespan_ms / 1000
                );
                out.push_str(&format!("// {line}\n"));
                notes.push(format!("{}: EQL has no thresholds ({line})", rule.id));
            }
            for re in regex_values(rule).filter(|re| lucene_unsupported(re)) {
                notes.push(format!(
                    "{}: EQL's regex is Lucene syntax, which has no Perl classes (\\d \\s \\w), \
                     lookaround, inline flags or anchors inside an alternation: check `{re}` \
                     in the export",
                    rule.id
                ));
            }
            out.push_str(&format!(
                "{} where {}\n",
                eql_category(rule),
                expr(rule, &Eql)?
            ));
            out
        }
        ExportFormat::Kql => {
            let folded = kql_case_folded_fields(rule)?;
            if !folded.is_empty() {
                notes.push(format!(
                    "{}: KQL compares keyword fields with their case: {} match(es) here only in \
                     the case written, where the rule ignores case (give those fields a \
                     lowercase normalizer, or use the EQL export, which keeps case-insensitivity)",
                    rule.id,
                    folded.join(", ")
                ));
            }
            if has_one_char_wildcard(rule) {
                notes.push(format!(
                    "{}: KQL has no one-character wildcard; `?` is written `*`, which matches more",
                    rule.id
                ));
            }
            if let Some(t) = threshold {
                notes.push(format!(
                    "{}: KQL has no thresholds; alert on more than {} matches per {} in {} s in the rule that runs this query",
                    rule.id, t.gt, t.group_by, t.timespan_ms / 1000
                ));
            }
            format!("{}\n", expr(rule, &Kql)?)
        }
        ExportFormat::Spl => {
            let mut out = String::new();
            for l in header("", rule).lines() {
                out.push_str(&format!("```{}```\n", l.trim().replace('`', "'")));
            }
            out.push_str(&format!("index=* | where {}", expr(rule, &Spl)?));
            if let Some(t) = threshold {
                out.push_str(&format!(
                    "\n| bin _time span={}s\n| stats count min(_time) as first_seen max(_time) as last_seen by _time, {}\n| where count > {}",
                    t.timespan_ms / 1000, t.group_by, t.gt
                ));
            }
            out.push('\n');
            out
        }
    };
    Ok(Exported {
        file_name,
        text,
        notes,
    })
}

fn header(prefix: &str, rule: &Rule) -> String {
    let mut h = format!(
        "{prefix} {}\n{prefix} id: {}  level: {}\n",
        rule.title,
        rule.id,
        rule.level.as_str()
    );
    if !rule.tags.is_empty() {
        h.push_str(&format!("{prefix} tags: {}\n", rule.tags.join(", ")));
    }
    h
}

fn eql_category(rule: &Rule) -> &'static str {
    match rule
        .logsource
        .iter()
        .find(|(k, _)| k == "category")
        .map(|(_, v)| v.as_str())
    {
        Some("network_connection" | "dns_query") => "network",
        Some("process_creation") => "process",
        _ => "any",
    }
}

trait Lang {
    fn item(&self, it: &Item) -> Result<String, ExportError>;
    fn and(&self) -> &'static str;
    fn or(&self) -> &'static str;
    fn not(&self, x: &str) -> String;
    /// `test` of `field`, made false (not null) where the event has no value for the field.
    fn guard(&self, field: &str, test: String) -> String;
}

fn expr(rule: &Rule, lang: &dyn Lang) -> Result<String, ExportError> {
    cond(&rule.condition, &rule.selections, lang, &Ctx::default())
}

/// Where in the condition a test is written.
///
/// Outside any `not`, a null test is as good as a false one: `and` and `or` cannot turn null
/// into true, and the query keeps only what is true. Under a `not` it must be false, as in
/// hunt, so the test is guarded with its field's presence, unless an un-negated conjunction
/// around it already requires that field: where it is missing, that conjunction is false or
/// null whatever the `not` says (`selection and not filter` with `source.ip|exists: true` in
/// the selection keeps `not cidrmatch(source.ip, ...)` as Elastic's rule writes it).
#[derive(Debug, Clone, Default)]
struct Ctx<'r> {
    negated: bool,
    present: BTreeSet<&'r str>,
}

impl<'r> Ctx<'r> {
    fn negated(&self) -> Ctx<'r> {
        Ctx {
            negated: true,
            present: self.present.clone(),
        }
    }

    /// Inside a conjunction whose parts require the fields `required`: those are known present
    /// (only outside a `not`, where a null conjunct is as good as a false one).
    fn within_and(&self, required: impl Iterator<Item = &'r str>) -> Ctx<'r> {
        let mut present = self.present.clone();
        if !self.negated {
            present.extend(required);
        }
        Ctx {
            negated: self.negated,
            present,
        }
    }

    fn needs_guard(&self, it: &Item) -> bool {
        self.negated && !self.present.contains(it.field.as_str()) && null_where_missing(it)
    }
}

fn find<'r>(sels: &'r [Selection], n: &str) -> Result<&'r Selection, ExportError> {
    sels.iter()
        .find(|s| s.name == n)
        .ok_or_else(|| ExportError::UnknownSelection(n.to_string()))
}

fn cond<'r>(
    c: &'r Cond,
    sels: &'r [Selection],
    lang: &dyn Lang,
    ctx: &Ctx<'r>,
) -> Result<String, ExportError> {
    Ok(match c {
        Cond::Sel(n) => selection(find(sels, n)?, lang, ctx)?,
        Cond::Not(x) => lang.not(&cond(x, sels, lang, &ctx.negated())?),
        Cond::And(xs) => {
            let inner = ctx.within_and(xs.iter().flat_map(|x| required(x, sels)));
            join(xs.iter().map(|x| cond(x, sels, lang, &inner)), lang.and())?
        }
        Cond::Or(xs) => join(xs.iter().map(|x| cond(x, sels, lang, ctx)), lang.or())?,
        Cond::Of { any, pattern } => {
            let matched: Vec<&Selection> = sels
                .iter()
                .filter(|s| pattern_matches(pattern, &s.name))
                .collect();
            let inner = if *any {
                ctx.clone()
            } else {
                ctx.within_and(matched.iter().flat_map(|s| selection_required(s)))
            };
            let parts = matched.iter().map(|s| selection(s, lang, &inner));
            join(parts, if *any { lang.or() } else { lang.and() })?
        }
    })
}

/// Whether hunt's test `it` is true for an event without the field: `null` among its values
/// (all of them with `|all`), or `|exists: false`.
fn matches_missing(it: &Item) -> bool {
    let missing_ok =
        |v: &Scalar| *v == Scalar::Null || (it.mods.op == Op::Exists && *v != Scalar::Bool(true));
    if it.mods.all {
        !it.values.is_empty() && it.values.iter().all(missing_ok)
    } else {
        it.values.iter().any(missing_ok)
    }
}

/// Whether the translation of `it` can be null where hunt's test is false: the field is
/// missing and one of its values is compared (not just tested for null or existence, which
/// every language answers with true or false).
fn null_where_missing(it: &Item) -> bool {
    !matches_missing(it) && it.mods.op != Op::Exists && it.values.iter().any(|v| *v != Scalar::Null)
}

/// The fields `c` is false without (for any event lacking one of them, hunt says false).
fn required<'r>(c: &'r Cond, sels: &'r [Selection]) -> BTreeSet<&'r str> {
    let all_of = |sets: &mut dyn Iterator<Item = BTreeSet<&'r str>>| {
        sets.reduce(|a, b| a.intersection(&b).copied().collect())
            .unwrap_or_default()
    };
    match c {
        Cond::Sel(n) => find(sels, n).map(selection_required).unwrap_or_default(),
        Cond::Not(_) => BTreeSet::new(),
        Cond::And(xs) => xs.iter().flat_map(|x| required(x, sels)).collect(),
        Cond::Or(xs) => all_of(&mut xs.iter().map(|x| required(x, sels))),
        Cond::Of { any, pattern } => {
            let mut each = sels
                .iter()
                .filter(|s| pattern_matches(pattern, &s.name))
                .map(selection_required);
            if *any {
                all_of(&mut each)
            } else {
                each.flatten().collect()
            }
        }
    }
}

/// The fields every alternative of `s` is false without.
fn selection_required(s: &Selection) -> BTreeSet<&str> {
    s.alternatives
        .iter()
        .map(|alt| {
            alt.iter()
                .filter(|it| !matches_missing(it))
                .map(|it| it.field.as_str())
                .collect::<BTreeSet<&str>>()
        })
        .reduce(|a, b| a.intersection(&b).copied().collect())
        .unwrap_or_default()
}

fn join(
    parts: impl Iterator<Item = Result<String, ExportError>>,
    op: &str,
) -> Result<String, ExportError> {
    let v: Vec<String> = parts.collect::<Result<_, _>>()?;
    Ok(if v.len() == 1 {
        v.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", v.join(&format!(" {op} ")))
    })
}

fn selection(s: &Selection, lang: &dyn Lang, ctx: &Ctx<'_>) -> Result<String, ExportError> {
    let item = |it: &Item| {
        let test = lang.item(it)?;
        Ok(if ctx.needs_guard(it) {
            lang.guard(&it.field, test)
        } else {
            test
        })
    };
    join(
        s.alternatives
            .iter()
            .map(|alt| join(alt.iter().map(item), lang.and())),
        lang.or(),
    )
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_num(v: &Scalar) -> bool {
    matches!(v, Scalar::Int(_) | Scalar::Float(_))
}

fn literal(v: &Scalar) -> String {
    match v {
        Scalar::Int(_) | Scalar::Float(_) | Scalar::Bool(_) => v.text(),
        Scalar::Null => "null".into(),
        Scalar::Str(s) => quote(s),
    }
}

/// Sigma wildcards present (unescaped `*` or `?`)?
fn wild(v: &Scalar) -> bool {
    matches!(v, Scalar::Str(s) if value::has_wildcard(s))
}

/// The text a value stands for: a string's escapes resolved (`abc\*def` is `abc*def`).
fn text_of(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => value::unescape(s),
        v => v.text(),
    }
}

/// A literal value (escapes resolved) for `==`, `in` and the like.
fn lit_of(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => quote(&value::unescape(s)),
        v => literal(v),
    }
}

fn combine(parts: Vec<String>, all: bool, and: &str, or: &str) -> String {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    format!("({})", parts.join(if all { and } else { or }))
}

struct Eql;

fn eql_field(f: &str) -> String {
    if f.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        f.to_string()
    } else {
        format!("`{f}`")
    }
}

/// A Sigma glob in EQL: `like` (`*` and `?` wildcards, every other character itself,
/// backslashes included); a glob with a literal `*` or `?`, which `like` cannot write, as a
/// `regex` (Lucene syntax: anchored at both ends, `\` escapes any character).
fn eql_glob(f: &str, pieces: &[Piece], cased: bool) -> String {
    let tilde = if cased { "" } else { "~" };
    if pieces
        .iter()
        .any(|p| matches!(p, Piece::Lit('*') | Piece::Lit('?')))
    {
        let mut re = String::new();
        for p in pieces {
            match p {
                Piece::Star => re.push_str(".*"),
                Piece::One => re.push('.'),
                Piece::Lit(c) => lucene_lit(&mut re, *c),
            }
        }
        return format!("{f} regex{tilde} {}", quote(&re));
    }
    let pat: String = pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(c) => *c,
            Piece::Star => '*',
            Piece::One => '?',
        })
        .collect();
    format!("{f} like{tilde} {}", quote(&pat))
}

/// A `re` value (a search anywhere in the text, `^` and `$` anchors) as EQL's Lucene regular
/// expression, which must match the whole text and has no anchors: `.*` where the pattern is
/// not anchored, the anchors dropped where it is. A top-level alternation is kept whole in a
/// group, open at both ends. Lucene lacks Perl classes (`\d`, `\s`, `\w`), lookaround and
/// inline flags: see [`lucene_unsupported`].
fn lucene_regex(re: &str) -> String {
    if re.contains('|') {
        return format!(".*({re}).*");
    }
    let (start, body) = match re.strip_prefix('^') {
        Some(b) => ("", b),
        None => (".*", re),
    };
    let ends_anchored = body.ends_with('$') && !body.ends_with("\\$");
    let (body, end) = if ends_anchored {
        (&body[..body.len() - 1], "")
    } else {
        (body, ".*")
    };
    format!("{start}{body}{end}")
}

/// Syntax of a `re` value that Lucene (EQL's `regex`) reads otherwise or not at all.
fn lucene_unsupported(re: &str) -> bool {
    [
        "\\d", "\\D", "\\s", "\\S", "\\w", "\\W", "\\b", "(?", "\\A", "\\z",
    ]
    .iter()
    .any(|x| re.contains(x))
        || (re.contains('|') && (re.contains('^') || re.contains('$')))
}

/// One literal character in a Lucene regular expression: letters, digits and non-ASCII as
/// they are, `<` and `>` (interval syntax in Lucene, word boundaries elsewhere) in a class,
/// other ASCII escaped.
fn lucene_lit(out: &mut String, c: char) {
    match c {
        c if c.is_alphanumeric() || !c.is_ascii() => out.push(c),
        '<' | '>' => {
            out.push('[');
            out.push(c);
            out.push(']');
        }
        ' ' => out.push(' '),
        c if c.is_ascii_punctuation() => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
}

/// ECS fields of type keyword that hold numbers (`event.code` is "3" for Sysmon's network
/// event, "5158" for the Windows filtering platform's bind). EQL is strictly typed: comparing
/// a keyword field with the number 3 is a verification error that stops the rule from loading,
/// so numbers compared with these fields are written as strings.
const ECS_NUMERIC_KEYWORDS: &[&str] = &["event.code", "winlog.event_id", "winlog.record_id"];

/// ECS fields of type `ip` (`source.ip`, `destination.ip`, `host.ip`, `related.ip`, ...).
fn is_ecs_ip_field(field: &str) -> bool {
    field == "ip" || field.ends_with(".ip")
}

impl Lang for Eql {
    fn item(&self, it: &Item) -> Result<String, ExportError> {
        let f = eql_field(&it.field);
        let m = it.mods;
        let as_text: Vec<Scalar>;
        let mut vals = &it.values;
        if ECS_NUMERIC_KEYWORDS.contains(&it.field.as_str()) && vals.iter().any(is_num) {
            as_text = vals
                .iter()
                .map(|v| {
                    if is_num(v) {
                        Scalar::Str(v.text())
                    } else {
                        v.clone()
                    }
                })
                .collect();
            vals = &as_text;
        }
        if m.op == Op::Exists {
            let want = vals.first() == Some(&Scalar::Bool(true));
            return Ok(format!("{f} {} null", if want { "!=" } else { "==" }));
        }
        // ECS `ip` fields: EQL takes no `:`, `in` or `in~` of strings on them (a verification
        // error); an address compared as a one-address network is what Elastic's own rules do.
        let ip_equality = m.op == Op::Eq
            && is_ecs_ip_field(&it.field)
            && vals
                .iter()
                .all(|v| matches!(v, Scalar::Str(s) if s.parse::<std::net::IpAddr>().is_ok()));
        if m.op == Op::Cidr || ip_equality {
            let nets: Vec<String> = vals.iter().map(literal).collect();
            if m.all {
                return Ok(combine(
                    nets.iter()
                        .map(|n| format!("cidrmatch({f}, {n})"))
                        .collect(),
                    true,
                    " and ",
                    " or ",
                ));
            }
            return Ok(format!("cidrmatch({f}, {})", nets.join(", ")));
        }
        if m.op == Op::Eq
            && !m.all
            && vals.len() > 1
            && vals.iter().all(|v| !wild(v) && *v != Scalar::Null)
        {
            let list: Vec<String> = vals.iter().map(lit_of).collect();
            let op = if m.cased || vals.iter().all(is_num) {
                "in"
            } else {
                "in~"
            };
            return Ok(format!("{f} {op} ({})", list.join(", ")));
        }
        let parts = vals
            .iter()
            .map(|v| {
                let s = text_of(v);
                let tilde = if m.cased { "" } else { "~" };
                match (m.op, v) {
                    (_, Scalar::Null) => format!("{f} == null"),
                    (Op::Eq, Scalar::Str(raw)) if wild(v) => {
                        eql_glob(&f, &value::pieces(raw), m.cased)
                    }
                    (Op::Eq, v) if is_num(v) || matches!(v, Scalar::Bool(_)) => {
                        format!("{f} == {}", literal(v))
                    }
                    (Op::Eq, _) if m.cased => format!("{f} == {}", quote(&s)),
                    // `:` reads `*` and `?` as wildcards; a text holding them literally is
                    // compared by its ends and its length.
                    (Op::Eq, _) if s.contains(['*', '?']) => format!(
                        "(startsWith~({f}, {q}) and endsWith~({f}, {q}) and length({f}) == {})",
                        s.chars().count(),
                        q = quote(&s)
                    ),
                    (Op::Eq, _) => format!("{f} : {}", quote(&s)),
                    (Op::StartsWith | Op::EndsWith | Op::Contains, Scalar::Str(raw)) if wild(v) => {
                        eql_glob(&f, &value::with_op(raw, m.op), m.cased)
                    }
                    (Op::StartsWith, _) => format!("startsWith{tilde}({f}, {})", quote(&s)),
                    (Op::EndsWith, _) => format!("endsWith{tilde}({f}, {})", quote(&s)),
                    (Op::Contains, _) => format!("stringContains{tilde}({f}, {})", quote(&s)),
                    (Op::Re, _) => {
                        let tilde = if m.re.i { "~" } else { "" };
                        format!("{f} regex{tilde} {}", quote(&lucene_regex(&v.text())))
                    }
                    (Op::Cidr | Op::Exists, _) => String::new(),
                }
            })
            .collect();
        Ok(combine(parts, m.all, " and ", " or "))
    }
    fn and(&self) -> &'static str {
        "and"
    }
    fn or(&self) -> &'static str {
        "or"
    }
    fn not(&self, x: &str) -> String {
        format!("not {x}")
    }
    /// EQL's functions return null for a null argument (Elasticsearch's EQL function
    /// reference: `cidrMatch(null, "10.0.0.0/8")`, `endsWith(null, ".exe")` return null), a
    /// missing field is null, and `not null` is null, which no query matches. `field != null` is
    /// how the EQL syntax reference tests that a field has a value ("Check if a field exists");
    /// written first, it makes the test false without one, however the engine evaluates the
    /// `not` around it.
    fn guard(&self, field: &str, test: String) -> String {
        format!("({} != null and {test})", eql_field(field))
    }
}

/// The fields a rule compares to text with case ignored (Sigma's default), which a KQL query
/// can only compare in the case written. A rule that also compares one of them with `|cased`
/// cannot be exported: in KQL both tests are the same test, so a condition that tells them
/// apart (`selection and not filter_exact`) would never match.
fn kql_case_folded_fields(rule: &Rule) -> Result<Vec<String>, ExportError> {
    let mut folded: Vec<String> = Vec::new();
    let mut cased: Vec<&str> = Vec::new();
    let items = rule
        .selections
        .iter()
        .flat_map(|s| s.alternatives.iter().flatten());
    for it in items {
        let text = matches!(
            it.mods.op,
            Op::Eq | Op::StartsWith | Op::EndsWith | Op::Contains
        ) && it
            .values
            .iter()
            .any(|v| matches!(v, Scalar::Str(t) if t.chars().any(char::is_alphabetic)));
        if !text {
            continue;
        }
        if it.mods.cased {
            cased.push(&it.field);
        } else if !folded.contains(&it.field) {
            folded.push(it.field.clone());
        }
    }
    if let Some(both) = folded.iter().find(|f| cased.contains(&f.as_str())) {
        return Err(ExportError::Unsupported {
            field: both.clone(),
            language: "KQL",
            feature: "way to tell a case-insensitive match from an exact-case one",
        });
    }
    Ok(folded)
}

struct Kql;

/// The `re` values of a rule.
fn regex_values(rule: &Rule) -> impl Iterator<Item = String> + '_ {
    rule.selections
        .iter()
        .flat_map(|s| s.alternatives.iter().flatten())
        .filter(|it| it.mods.op == Op::Re)
        .flat_map(|it| it.values.iter().map(Scalar::text))
}

/// Whether a rule has a `?` wildcard in a value KQL writes as a glob.
fn has_one_char_wildcard(rule: &Rule) -> bool {
    rule.selections
        .iter()
        .flat_map(|s| s.alternatives.iter().flatten())
        .filter(|it| {
            matches!(
                it.mods.op,
                Op::Eq | Op::StartsWith | Op::EndsWith | Op::Contains
            )
        })
        .flat_map(|it| &it.values)
        .any(|v| matches!(v, Scalar::Str(s) if value::pieces(s).contains(&Piece::One)))
}

/// KQL wildcard values are unquoted; escape its special characters (and write whitespace
/// other than a space as KQL's `\t`, `\r`, `\n`).
fn kql_wild(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\t' => {
                out.push_str("\\t");
                continue;
            }
            '\r' => {
                out.push_str("\\r");
                continue;
            }
            '\n' => {
                out.push_str("\\n");
                continue;
            }
            _ => {}
        }
        if matches!(
            c,
            '\\' | '(' | ')' | ':' | '<' | '>' | '"' | ' ' | '{' | '}' | '*'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Lang for Kql {
    fn item(&self, it: &Item) -> Result<String, ExportError> {
        let f = &it.field;
        let m = it.mods;
        if m.op == Op::Re {
            return Err(ExportError::Unsupported {
                field: f.to_string(),
                language: "KQL",
                feature: "regular expressions",
            });
        }
        if m.op == Op::Exists {
            let want = it.values.first() == Some(&Scalar::Bool(true));
            return Ok(if want {
                format!("{f}: *")
            } else {
                format!("not {f}: *")
            });
        }
        let parts: Vec<String> = it
            .values
            .iter()
            .map(|v| {
                let s = text_of(v);
                match (m.op, v) {
                    (_, Scalar::Null) => format!("not {f}: *"),
                    (Op::Eq, Scalar::Str(raw)) if wild(v) => {
                        format!("{f}: {}", kql_glob(&value::pieces(raw)))
                    }
                    (Op::Eq | Op::Cidr, v) if is_num(v) || matches!(v, Scalar::Bool(_)) => {
                        format!("{f}: {}", v.text())
                    }
                    (Op::Eq, _) => format!("{f}: {}", quote(&s)),
                    (Op::Cidr, _) => format!("{f}: {}", quote(&v.text())),
                    (Op::StartsWith | Op::EndsWith | Op::Contains, Scalar::Str(raw)) => {
                        format!("{f}: {}", kql_glob(&value::with_op(raw, m.op)))
                    }
                    (Op::StartsWith | Op::EndsWith | Op::Contains, v) => {
                        format!("{f}: {}", kql_glob(&value::with_op(&v.text(), m.op)))
                    }
                    (Op::Re | Op::Exists, _) => String::new(),
                }
            })
            .collect();
        Ok(combine(parts, m.all, " and ", " or "))
    }
    fn and(&self) -> &'static str {
        "and"
    }
    fn or(&self) -> &'static str {
        "or"
    }
    fn not(&self, x: &str) -> String {
        format!("not {x}")
    }
    /// KQL compiles to Elasticsearch queries, which are true or false: a comparison with a
    /// missing field matches nothing and `not` (a bool `must_not`) matches the documents
    /// without the field, as hunt's `not` does (the contrast with ES|QL's null that
    /// elastic/elasticsearch#114050 documents). Nothing to guard.
    fn guard(&self, _field: &str, test: String) -> String {
        test
    }
}

/// A Sigma glob as an unquoted KQL value: literal characters escaped, `*` as KQL's wildcard.
/// KQL has no one-character wildcard, so `?` is written `*` (a wider match; the export notes
/// it).
fn kql_glob(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Star | Piece::One => out.push('*'),
            Piece::Lit(c) => out.push_str(&kql_wild(&c.to_string())),
        }
    }
    out
}

struct Spl;

/// A field name in an SPL eval expression: single-quoted, as names with dots must be.
fn spl_field(f: &str) -> String {
    format!("'{}'", f.replace('\'', "\\'"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sigma glob pieces → anchored regex.
fn glob_regex(pieces: &[Piece]) -> String {
    let mut out = String::from("^");
    for p in pieces {
        match p {
            Piece::Star => out.push_str(".*"),
            Piece::One => out.push('.'),
            Piece::Lit(c) => out.push_str(&regex_escape(&c.to_string())),
        }
    }
    out.push('$');
    out
}

impl Lang for Spl {
    fn item(&self, it: &Item) -> Result<String, ExportError> {
        let f = spl_field(&it.field);
        let m = it.mods;
        let ci = if m.cased { "" } else { "(?i)" };
        let parts: Vec<String> = it
            .values
            .iter()
            .map(|v| {
                let s = text_of(v);
                match (m.op, v) {
                    (Op::Exists, Scalar::Bool(true)) => format!("isnotnull({f})"),
                    (Op::Exists, _) | (_, Scalar::Null) => format!("isnull({f})"),
                    (Op::Eq, Scalar::Str(raw)) if wild(v) => format!(
                        "match({f}, {})",
                        quote(&format!("{ci}{}", glob_regex(&value::pieces(raw))))
                    ),
                    (Op::Eq, v) if is_num(v) => format!("{f}=={s}"),
                    (Op::Eq, _) if m.cased => format!("{f}=={}", quote(&s)),
                    (Op::Eq, _) => format!("lower({f})=={}", quote(&s.to_lowercase())),
                    (Op::StartsWith | Op::EndsWith | Op::Contains, Scalar::Str(raw)) if wild(v) => {
                        format!(
                            "match({f}, {})",
                            quote(&format!("{ci}{}", glob_regex(&value::with_op(raw, m.op))))
                        )
                    }
                    (Op::StartsWith, _) => format!(
                        "match({f}, {})",
                        quote(&format!("{ci}^{}", regex_escape(&s)))
                    ),
                    (Op::EndsWith, _) => format!(
                        "match({f}, {})",
                        quote(&format!("{ci}{}$", regex_escape(&s)))
                    ),
                    (Op::Contains, _) => format!(
                        "match({f}, {})",
                        quote(&format!("{ci}{}", regex_escape(&s)))
                    ),
                    (Op::Re, _) => format!(
                        "match({f}, {})",
                        quote(&format!("{}{}", m.re.inline(), v.text()))
                    ),
                    (Op::Cidr, _) => format!("cidrmatch({}, {f})", quote(&v.text())),
                }
            })
            .collect();
        Ok(combine(parts, m.all, " AND ", " OR "))
    }
    fn and(&self) -> &'static str {
        "AND"
    }
    fn or(&self) -> &'static str {
        "OR"
    }
    fn not(&self, x: &str) -> String {
        format!("NOT {x}")
    }
    /// `where` keeps only "the results for which the evaluation was successful (that is, the
    /// Boolean result was true)" (Splunk Search Reference, `where`). An eval comparison with a
    /// field the event lacks is null, not false, so `NOT` of it is dropped as well, unlike the
    /// search command's `NOT field=value`, which keeps events without the field (Search Manual,
    /// "Difference between != and NOT"). `isnotnull()` is true or false for every event, so the
    /// guarded test is false without the field, whatever the engine makes of the comparison.
    fn guard(&self, field: &str, test: String) -> String {
        format!("(isnotnull({}) AND {test})", spl_field(field))
    }
}

#[cfg(test)]
mod tests;
