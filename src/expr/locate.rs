//! Positions inside an expression's text, for error messages.
//!
//! `promql-parser` reports syntax errors without a position ("invalid promql query") and its
//! AST carries no spans. This module tokenizes the text with a small PromQL-shaped scanner so
//! that (a) the offending token of a syntax error can be found by walking the tokens with an
//! "operand expected / operator expected" automaton, and (b) the converter can point at the
//! construct it rejects (`offset`, `irate`, `>` …) by searching forward from a cursor that
//! follows the AST walk, which visits nodes in text order.

/// What a token is, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Ident,
    Number,
    Str,
    /// `+ - * / % ^ == != >= <= > < = =~ !~ @`
    Op,
    Open(char),
    Close(char),
    Comma,
    Colon,
    /// A character PromQL does not know, or an unterminated string.
    Bad,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// Inside `{...}` (label matchers) or `[...]` (ranges): not part of the expression grammar.
    pub nested: bool,
}

impl Tok {
    pub fn text<'t>(&self, src: &'t str) -> &'t str {
        &src[self.start..self.end]
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Splits `src` into tokens; never fails (unknown characters become [`Kind::Bad`]).
pub(super) fn lex(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut braces = 0usize;
    let mut brackets = 0usize;
    while i < b.len() {
        let c = src[i..].chars().next().expect("in bounds");
        let start = i;
        let nested = braces > 0 || brackets > 0;
        let push = |out: &mut Vec<Tok>, kind, end| {
            out.push(Tok {
                kind,
                start,
                end,
                nested,
            })
        };
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c == '#' {
            // A comment runs to the end of the line.
            i = src[i..].find('\n').map(|n| i + n).unwrap_or(b.len());
            continue;
        }
        if brackets > 0 && c == ':' {
            push(&mut out, Kind::Colon, i + 1);
            i += 1;
            continue;
        }
        if is_ident_start(c) {
            let mut j = i + 1;
            while j < b.len() && is_ident_char(b[j] as char) {
                j += 1;
            }
            push(&mut out, Kind::Ident, j);
            i = j;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let mut j = i + 1;
            while j < b.len() {
                let d = b[j] as char;
                // Digits, letters (hex, durations, exponents), and the sign of an exponent.
                let exponent_sign = (d == '+' || d == '-')
                    && matches!(b[j - 1], b'e' | b'E')
                    && !src[i..].starts_with("0x");
                if d.is_ascii_alphanumeric() || d == '.' || d == '_' || exponent_sign {
                    j += 1;
                } else {
                    break;
                }
            }
            push(&mut out, Kind::Number, j);
            i = j;
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let mut j = i + 1;
            let mut closed = false;
            while j < b.len() {
                let d = b[j] as char;
                if d == '\\' && c != '`' {
                    j += 2;
                    continue;
                }
                if d == c {
                    closed = true;
                    j += 1;
                    break;
                }
                j += 1;
            }
            let j = j.min(b.len());
            push(&mut out, if closed { Kind::Str } else { Kind::Bad }, j);
            i = j;
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        if matches!(two, "==" | "!=" | ">=" | "<=" | "=~" | "!~") {
            push(&mut out, Kind::Op, i + 2);
            i += 2;
            continue;
        }
        let kind = match c {
            '+' | '-' | '*' | '/' | '%' | '^' | '>' | '<' | '=' | '@' => Kind::Op,
            '(' | '{' | '[' => Kind::Open(c),
            ')' | '}' | ']' => Kind::Close(c),
            ',' => Kind::Comma,
            _ => Kind::Bad,
        };
        match c {
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        // `}` and `]` close the nested part: they belong to the outer level.
        let nested = if matches!(c, '}' | ']') {
            braces > 0 || brackets > 0
        } else {
            nested
        };
        out.push(Tok {
            kind,
            start,
            end: i + c.len_utf8(),
            nested,
        });
        i += c.len_utf8();
    }
    out
}

const BINARY_WORDS: &[&str] = &["and", "or", "unless", "atan2"];
const AGGREGATORS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

fn is_binary_op(src: &str, t: &Tok) -> bool {
    match t.kind {
        Kind::Op => !matches!(t.text(src), "=" | "=~" | "!~" | "@"),
        Kind::Ident => BINARY_WORDS
            .iter()
            .any(|w| t.text(src).eq_ignore_ascii_case(w)),
        _ => false,
    }
}

fn is_word(src: &str, t: Option<&Tok>, words: &[&str]) -> bool {
    t.is_some_and(|t| {
        t.kind == Kind::Ident && words.iter().any(|w| t.text(src).eq_ignore_ascii_case(w))
    })
}

/// Index after the token closing the group opened at `open` (`(`, `{` or `[`), or `None`
/// when it is never closed.
fn skip_group(toks: &[Tok], open: usize) -> Option<usize> {
    let Kind::Open(o) = toks[open].kind else {
        return Some(open + 1);
    };
    let close = match o {
        '(' => ')',
        '{' => '}',
        _ => ']',
    };
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Open(c) if c == o => depth += 1,
            Kind::Close(c) if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn describe(src: &str, t: &Tok) -> String {
    format!("`{}`", t.text(src))
}

/// Finds where a text that `promql-parser` refused goes wrong: the byte offset of the
/// offending token and what was expected there. `None` when the walk finds nothing.
pub(super) fn syntax_error(src: &str, toks: &[Tok]) -> Option<(usize, String)> {
    const OPERAND: &str = "expected a number, a metric name, a function or `(`";
    const OPERATOR: &str = "expected an operator (+ - * /) or the end of the expression";
    if let Some(t) = toks.iter().find(|t| t.kind == Kind::Bad) {
        let text = t.text(src);
        let msg = if text.starts_with(['"', '\'', '`']) {
            "this string is never closed".to_string()
        } else {
            format!("unexpected character {}", describe(src, t))
        };
        return Some((t.start, msg));
    }
    // Stack of open parentheses: (token index, is a function call).
    let mut parens: Vec<(usize, bool)> = Vec::new();
    let mut want_operand = true;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if want_operand {
            match t.kind {
                Kind::Number | Kind::Str => {
                    want_operand = false;
                    i += 1;
                }
                Kind::Ident
                    if BINARY_WORDS
                        .iter()
                        .any(|w| t.text(src).eq_ignore_ascii_case(w)) =>
                {
                    return Some((
                        t.start,
                        format!("unexpected {}: {OPERAND}", describe(src, t)),
                    ));
                }
                Kind::Ident => {
                    let mut j = i + 1;
                    let is_agg = AGGREGATORS
                        .iter()
                        .any(|a| t.text(src).eq_ignore_ascii_case(a));
                    if is_agg && is_word(src, toks.get(j), &["by", "without"]) {
                        // `sum by (a) (x)`
                        j += 1;
                        if matches!(toks.get(j).map(|t| t.kind), Some(Kind::Open('('))) {
                            j = skip_group(toks, j)?;
                        }
                    }
                    match toks.get(j).map(|t| t.kind) {
                        Some(Kind::Open('(')) => {
                            parens.push((j, true));
                            i = j + 1;
                        }
                        Some(Kind::Open('{')) => {
                            let Some(after) = skip_group(toks, j) else {
                                return Some((toks[j].start, "this `{` is never closed".into()));
                            };
                            i = after;
                            want_operand = false;
                        }
                        _ => {
                            i = j;
                            want_operand = false;
                        }
                    }
                }
                Kind::Open('{') => {
                    let Some(after) = skip_group(toks, i) else {
                        return Some((t.start, "this `{` is never closed".into()));
                    };
                    i = after;
                    want_operand = false;
                }
                Kind::Open('(') => {
                    parens.push((i, false));
                    i += 1;
                }
                Kind::Op if matches!(t.text(src), "+" | "-") => i += 1,
                Kind::Close(')')
                    if i > 0
                        && toks[i - 1].kind == Kind::Open('(')
                        && parens.last().is_some_and(|p| p.1) =>
                {
                    // An empty argument list: `time()`.
                    parens.pop();
                    want_operand = false;
                    i += 1;
                }
                _ => {
                    return Some((
                        t.start,
                        format!("unexpected {}: {OPERAND}", describe(src, t)),
                    ))
                }
            }
        } else {
            match t.kind {
                _ if is_binary_op(src, t) => {
                    i += 1;
                    // Modifiers of a binary operator: bool, on(...)/ignoring(...), group_left(...).
                    if is_word(src, toks.get(i), &["bool"]) {
                        i += 1;
                    }
                    for words in [&["on", "ignoring"][..], &["group_left", "group_right"][..]] {
                        if is_word(src, toks.get(i), words) {
                            i += 1;
                            if matches!(toks.get(i).map(|t| t.kind), Some(Kind::Open('('))) {
                                i = skip_group(toks, i)?;
                            }
                        }
                    }
                    want_operand = true;
                }
                Kind::Open('[') => {
                    let Some(after) = skip_group(toks, i) else {
                        return Some((t.start, "this `[` is never closed".into()));
                    };
                    i = after;
                }
                Kind::Ident if is_word(src, Some(t), &["offset"]) => {
                    i += 1;
                    if toks.get(i).is_some_and(|t| t.text(src) == "-") {
                        i += 1;
                    }
                    i += 1;
                }
                Kind::Op if t.text(src) == "@" => {
                    i += 1;
                    if is_word(src, toks.get(i), &["start", "end"]) {
                        i += 1;
                        if matches!(toks.get(i).map(|t| t.kind), Some(Kind::Open('('))) {
                            i = skip_group(toks, i)?;
                        }
                    } else {
                        i += 1;
                    }
                }
                Kind::Ident if is_word(src, Some(t), &["by", "without"]) => {
                    // `sum(x) by (a)`
                    i += 1;
                    if matches!(toks.get(i).map(|t| t.kind), Some(Kind::Open('('))) {
                        i = skip_group(toks, i)?;
                    }
                }
                Kind::Close(')') => {
                    if parens.pop().is_none() {
                        return Some((t.start, "this `)` closes nothing".into()));
                    }
                    i += 1;
                }
                Kind::Comma if parens.last().is_some_and(|p| p.1) => {
                    want_operand = true;
                    i += 1;
                }
                _ => {
                    return Some((
                        t.start,
                        format!("unexpected {}: {OPERATOR}", describe(src, t)),
                    ));
                }
            }
        }
    }
    if let Some((open, _)) = parens.last() {
        return Some((toks[*open].start, "this `(` is never closed".into()));
    }
    if want_operand {
        let end = toks.last().map(|t| t.end).unwrap_or(0);
        let after = toks
            .last()
            .map(|t| format!(" after {}", describe(src, t)))
            .unwrap_or_default();
        return Some((
            end,
            format!("the expression ends too early{after}: {OPERAND}"),
        ));
    }
    None
}

/// The first duration written without a unit (`x[300]`, `x offset 1e20`, `x[5m:Inf]`) whose
/// number of seconds no `Duration` can hold (infinite, not a number, or beyond `u64::MAX`
/// seconds): `(offset, text)`. promql-parser 0.5 panics on these (it calls
/// `Duration::from_secs_f64`), so they are refused before the text reaches it.
pub(super) fn unrepresentable_duration(src: &str, toks: &[Tok]) -> Option<(usize, String)> {
    for (i, t) in toks.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &toks[p]);
        // A duration follows `[` or a subquery's `:`, or `offset` with an optional sign.
        let after_offset = |p: Option<&Tok>| is_word(src, p, &["offset"]);
        let in_duration_place = match prev {
            Some(p) if matches!(p.kind, Kind::Open('[') | Kind::Colon) => true,
            Some(p) if after_offset(Some(p)) => true,
            Some(p) if p.kind == Kind::Op && matches!(p.text(src), "+" | "-") => {
                after_offset(i.checked_sub(2).map(|q| &toks[q]))
            }
            _ => false,
        };
        if !in_duration_place || !matches!(t.kind, Kind::Number | Kind::Ident) {
            continue;
        }
        let text = t.text(src);
        let lower = text.to_ascii_lowercase();
        // Hexadecimal and octal numbers are read as i64 by promql-parser: always representable.
        // Its rule for octal: a leading 0, no `.`, no 8 or 9 (`0999` is decimal).
        let radix = lower.contains('x')
            || (lower.starts_with('0') && lower != "0" && !lower.contains(['.', '8', '9']));
        if radix {
            continue;
        }
        if let Ok(secs) = lower.parse::<f64>() {
            if std::time::Duration::try_from_secs_f64(secs).is_err() {
                return Some((t.start, text.to_string()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(src: &str) -> Option<(usize, String)> {
        syntax_error(src, &lex(src))
    }

    #[test]
    fn finds_the_offending_token() {
        assert_eq!(at("node_load1 + * 2").unwrap().0, 13);
        assert_eq!(at("node_load1 node_load5").unwrap().0, 11);
        assert_eq!(at("(node_load1 + 2").unwrap().0, 0);
        assert_eq!(at("node_load1 + 2)").unwrap().0, 14);
        assert_eq!(at("node_load1 +").unwrap().0, 12);
        assert_eq!(at("node_load1 $ 2").unwrap().0, 11);
        assert_eq!(at("foo{a=\"b}").unwrap().0, 6);
        assert!(at("foo{a=\"b\"} + sum by (x) (rate(y[5m])) / 2").is_none());
        assert!(at("sum(rate(x[5m])) by (a) - count(x offset 5m)").is_none());
        assert!(at("a > bool on(x) group_left(y) b").is_none());
    }

    #[test]
    fn nested_tokens_are_marked() {
        let src = "rate(x{a=\"b\"}[5m])";
        let toks = lex(src);
        let nested: Vec<&str> = toks
            .iter()
            .filter(|t| t.nested)
            .map(|t| t.text(src))
            .collect();
        assert_eq!(nested, vec!["a", "=", "\"b\"", "5m"]);
    }
}
