//! Expressions: the PromQL subset of docs/design.md §2 "Expressions", parsed once at config load
//! and evaluated per droplet over that droplet's scraped series.
//!
//! The text is parsed by `promql-parser` (so what an operator copies from a dashboard is read
//! the way Prometheus reads it) and converted into a small AST of our own; anything we do not
//! evaluate is refused at that point with an error that names it. Evaluation is ours:
//!
//! * a selector yields the droplet's series that match it (a vector);
//! * `rate(x[R])` / `increase(x[R])` compare the droplet's current scrape with its previous
//!   one, which must be at most `R` older (`R` is the longest gap allowed, not a window);
//!   counter resets count from zero as in Prometheus;
//! * `sum avg min max count` reduce a vector to one element; `+ - * /` work between scalars,
//!   element-wise between a scalar and a vector, and between two vectors on identical label
//!   sets (the metric name dropped), as PromQL's one-to-one matching;
//! * the result must be a scalar or a vector of exactly one element; anything else is
//!   [`NoData`] with the reason, never a silent zero.
//!
//! Decisions where PromQL leaves room or does not apply:
//!
//! * an aggregation over no series is no data (as in PromQL, where `count()` of nothing is
//!   empty, not 0), and so is a result that is not finite (a division by zero);
//! * a selector of a do-agent family with one series per instance (cpu, device, mount point,
//!   process — see `families`) outside an aggregation is refused at load unless `=` matchers
//!   single it out; a mount point or a pid is enough on its own;
//! * regex matchers are anchored as `^(?:re)$`, so `a|b` stays anchored (promql-parser's own
//!   regex is `^a|b$`), and label values are unescaped as PromQL strings before matching;
//! * a selector needs a metric name (`{__name__="x"}` counts), so the scrape knows what to keep.
//!
//! Evaluation allocates little: series keys are borrowed from the droplet's map, label values
//! are read straight from the key text, and regexes are compiled once at parse time.

pub mod families;
pub mod group;
mod locate;

use std::borrow::Cow;
use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self as pp, Expr as PExpr};
use regex::Regex;
use smallvec::SmallVec;

use crate::series::SeriesMap;
use locate::{Kind, Tok};

/// A parsed, validated expression.
#[derive(Debug, Clone)]
pub struct Expr {
    text: String,
    root: Node,
    selectors: Vec<Selector>,
    names: BTreeSet<String>,
}

/// A parse or validation error. `offset` is the byte offset inside the expression text of
/// the offending part (0 when unknown); `Display` quotes the expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("in expression `{expr}`: {msg}")]
pub struct ExprError {
    pub expr: String,
    pub offset: usize,
    pub msg: String,
}

impl ExprError {
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// One scrape of one droplet, as the evaluator sees it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// When the scrape was taken, milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub series: &'a SeriesMap,
}

/// Why an expression has no value for a droplet (never a silent zero).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct NoData(pub String);

// ---------------------------------------------------------------------------------------
// Our AST.

#[derive(Debug, Clone)]
enum Node {
    Num(f64),
    /// Index into `Expr::selectors`.
    Sel(usize),
    Range {
        increase: bool,
        sel: usize,
        range_ms: i64,
    },
    Agg {
        op: AggOp,
        arg: Box<Node>,
    },
    Neg(Box<Node>),
    Bin {
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

#[derive(Debug, Clone)]
struct Selector {
    name: String,
    matchers: Vec<LabelMatcher>,
    /// The argument of `rate`/`increase`: read from the previous scrape too.
    ranged: bool,
    /// The selector in PromQL syntax, for messages.
    text: String,
}

#[derive(Debug, Clone)]
struct LabelMatcher {
    label: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

impl Test {
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Eq(s) => v == s,
            Test::Ne(s) => v != s,
            Test::Re(r) => r.is_match(v),
            Test::NotRe(r) => !r.is_match(v),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsing.

/// Parses and validates `text`. Errors quote the expression and point at the offending part.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let err = |offset: usize, msg: String| ExprError {
        expr: text.to_string(),
        offset,
        msg,
    };
    if text.trim().is_empty() {
        return Err(err(
            0,
            "the expression is empty: expected e.g. `node_load1`".into(),
        ));
    }
    let toks = locate::lex(text);
    if let Some((offset, what)) = locate::unrepresentable_duration(text, &toks) {
        return Err(err(
            offset,
            format!(
                "the duration `{what}` is out of range: write it with a unit, e.g. `5m` or `300s`"
            ),
        ));
    }
    // promql-parser has panicked on input it should refuse (see unrepresentable_duration); a
    // panic left in it becomes an error naming the expression rather than a crash.
    let parsed = std::panic::catch_unwind(|| pp::parse(text)).map_err(|_| {
        err(
            0,
            "the PromQL parser failed on this expression (a bug in promql-parser): \
             rewrite it, e.g. give every duration a unit"
                .into(),
        )
    })?;
    let ast = parsed.map_err(|msg| match locate::syntax_error(text, &toks) {
        Some((offset, what)) => err(offset, format!("syntax error: {what}")),
        None => {
            // A refusal of promql-parser beyond plain syntax (a type error, an unknown
            // function): point at what it quotes when we can.
            let offset = msg
                .split(['\'', '"', '`'])
                .skip(1)
                .step_by(2)
                .find_map(|q| {
                    toks.iter()
                        .find(|t| !t.nested && t.text(text) == q)
                        .map(|t| t.start)
                })
                .unwrap_or(0);
            err(offset, format!("not a valid PromQL expression: {msg}"))
        }
    })?;
    let mut b = Builder {
        text,
        toks,
        cursor: 0,
        selectors: Vec::new(),
    };
    let root = b.node(&ast, false)?;
    let names = b.selectors.iter().map(|s| s.name.clone()).collect();
    Ok(Expr {
        text: text.to_string(),
        root,
        selectors: b.selectors,
        names,
    })
}

/// Converts promql-parser's AST into ours, refusing what we do not evaluate. `cursor` follows
/// the walk through the tokens (nodes are visited in text order) so errors can point at the
/// construct they name.
struct Builder<'t> {
    text: &'t str,
    toks: Vec<Tok>,
    cursor: usize,
    selectors: Vec<Selector>,
}

const AGG_HELP: &str = "use sum, avg, min, max or count";

impl Builder<'_> {
    fn err(&self, offset: usize, msg: impl Into<String>) -> ExprError {
        ExprError {
            expr: self.text.to_string(),
            offset,
            msg: msg.into(),
        }
    }

    /// The next token at or after the cursor that satisfies `pred` (outside label matchers
    /// and ranges unless `nested`); moves the cursor past it and returns its offset.
    fn seek(&mut self, nested: bool, pred: impl Fn(&Tok, &str) -> bool) -> Option<usize> {
        let i = (self.cursor..self.toks.len()).find(|&i| {
            (nested || !self.toks[i].nested) && pred(&self.toks[i], self.toks[i].text(self.text))
        })?;
        self.cursor = i + 1;
        Some(self.toks[i].start)
    }

    /// Like `seek`, without moving the cursor; 0 when not found.
    fn peek(&self, nested: bool, pred: impl Fn(&Tok, &str) -> bool) -> usize {
        (self.cursor..self.toks.len())
            .find(|&i| {
                (nested || !self.toks[i].nested)
                    && pred(&self.toks[i], self.toks[i].text(self.text))
            })
            .map(|i| self.toks[i].start)
            .unwrap_or(0)
    }

    fn seek_word(&mut self, word: &str) -> usize {
        let at = self.cursor;
        match self.seek(false, |t, s| {
            t.kind == Kind::Ident && s.eq_ignore_ascii_case(word)
        }) {
            Some(o) => o,
            None => {
                self.cursor = at;
                0
            }
        }
    }

    fn node(&mut self, e: &PExpr, aggregated: bool) -> Result<Node, ExprError> {
        match e {
            PExpr::NumberLiteral(n) => {
                let _ = self.seek(false, |t, s| {
                    t.kind == Kind::Number
                        || s.eq_ignore_ascii_case("inf")
                        || s.eq_ignore_ascii_case("nan")
                });
                Ok(Node::Num(n.val))
            }
            PExpr::StringLiteral(_) => {
                let at = self.peek(false, |t, _| t.kind == Kind::Str);
                Err(self.err(
                    at,
                    "string literals are not supported: an expression computes a number",
                ))
            }
            PExpr::Paren(p) => {
                let _ = self.seek(false, |t, _| t.kind == Kind::Open('('));
                self.node(&p.expr, aggregated)
            }
            PExpr::Unary(u) => {
                let _ = self.seek(false, |t, s| t.kind == Kind::Op && s == "-");
                Ok(Node::Neg(Box::new(self.node(&u.expr, aggregated)?)))
            }
            PExpr::Binary(b) => {
                let lhs = self.node(&b.lhs, aggregated)?;
                let sym = b.op.to_string();
                let at = {
                    let start = self.cursor;
                    self.seek(false, |t, s| {
                        (t.kind == Kind::Op || t.kind == Kind::Ident)
                            && s.eq_ignore_ascii_case(&sym)
                    })
                    .unwrap_or_else(|| {
                        self.cursor = start;
                        0
                    })
                };
                let op = match sym.as_str() {
                    "+" => BinOp::Add,
                    "-" => BinOp::Sub,
                    "*" => BinOp::Mul,
                    "/" => BinOp::Div,
                    _ if b.op.is_comparison_operator() => {
                        return Err(self.err(at, format!(
                            "comparison operator `{sym}` is not supported in an expression: put the comparison in the condition's `op` and `threshold`"
                        )))
                    }
                    _ if b.op.is_set_operator() => {
                        return Err(self.err(at, format!(
                            "set operator `{sym}` is not supported: a condition compares one number; combine conditions with the policy's `match`"
                        )))
                    }
                    _ => return Err(self.err(at, format!("operator `{sym}` is not supported: use + - * /"))),
                };
                if let Some(m) = &b.modifier {
                    if m.matching.is_some()
                        || m.return_bool
                        || !matches!(m.card, pp::VectorMatchCardinality::OneToOne)
                    {
                        let at = self.peek(false, |t, s| {
                            t.kind == Kind::Ident
                                && ["on", "ignoring", "group_left", "group_right", "bool"]
                                    .iter()
                                    .any(|w| s.eq_ignore_ascii_case(w))
                        });
                        return Err(self.err(at, format!(
                            "vector matching modifiers (on, ignoring, group_left, group_right, bool) are not supported with `{sym}`: both sides match on identical labels"
                        )));
                    }
                }
                let rhs = self.node(&b.rhs, aggregated)?;
                Ok(Node::Bin {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                })
            }
            PExpr::Aggregate(a) => {
                let name = a.op.to_string();
                let at = self.seek_word(&name);
                let op = match name.as_str() {
                    "sum" => AggOp::Sum,
                    "avg" => AggOp::Avg,
                    "min" => AggOp::Min,
                    "max" => AggOp::Max,
                    "count" => AggOp::Count,
                    _ => {
                        return Err(self.err(
                            at,
                            format!("aggregation `{name}` is not supported: {AGG_HELP}"),
                        ))
                    }
                };
                if a.param.is_some() {
                    return Err(self.err(at, format!("aggregation `{name}` takes no parameter")));
                }
                if let Some(m) = &a.modifier {
                    let word = if m.is_include() { "by" } else { "without" };
                    let at = self.peek(false, |t, s| {
                        t.kind == Kind::Ident && s.eq_ignore_ascii_case(word)
                    });
                    return Err(self.err(at, format!(
                        "`{word}` is not supported: `{name}` aggregates over this droplet's series only; \
                         the condition's `function` aggregates over the group's droplets"
                    )));
                }
                let arg = self.node(&a.expr, true)?;
                Ok(Node::Agg {
                    op,
                    arg: Box::new(arg),
                })
            }
            PExpr::Call(c) => {
                let name = c.func.name;
                let at = self.seek_word(name);
                let increase = match name {
                    "rate" => false,
                    "increase" => true,
                    _ => {
                        return Err(self.err(
                            at,
                            format!("function `{name}` is not supported: use rate or increase"),
                        ))
                    }
                };
                match c.args.args.first().map(|b| b.as_ref()) {
                    Some(PExpr::MatrixSelector(m)) if c.args.args.len() == 1 => {
                        let sel = self.selector(&m.vs, aggregated, true)?;
                        let range_ms = i64::try_from(m.range.as_millis()).unwrap_or(i64::MAX);
                        // Move past the range so a later `[` is not taken for this one.
                        let _ = self.seek(false, |t, _| t.kind == Kind::Close(']'));
                        Ok(Node::Range { increase, sel, range_ms })
                    }
                    Some(PExpr::Subquery(_)) => {
                        let at = self.peek(true, |t, _| t.kind == Kind::Colon);
                        Err(self.err(at, format!("subqueries are not supported: `{name}` takes a range over a metric, e.g. {name}(x[5m])")))
                    }
                    _ => Err(self.err(at, format!("`{name}` takes one range vector, e.g. {name}(node_network_receive_bytes_total{{device=\"eth0\"}}[5m])"))),
                }
            }
            PExpr::VectorSelector(vs) => Ok(Node::Sel(self.selector(vs, aggregated, false)?)),
            PExpr::MatrixSelector(m) => {
                let at = {
                    let _ = self.selector(&m.vs, true, true)?;
                    self.peek(false, |t, _| t.kind == Kind::Open('['))
                };
                Err(self.err(
                    at,
                    format!(
                    "a range vector (`{}[…]`) is only allowed inside rate(...) or increase(...)",
                    m.vs
                ),
                ))
            }
            PExpr::Subquery(_) => {
                let at = self.peek(true, |t, _| t.kind == Kind::Colon);
                Err(self.err(at, "subqueries (`[range:step]`) are not supported"))
            }
            PExpr::Extension(_) => Err(self.err(0, "this construct is not supported")),
        }
    }

    /// Converts one selector; `aggregated` tells whether an aggregation encloses it (the
    /// multi-series check), `ranged` whether it is the argument of rate/increase.
    fn selector(
        &mut self,
        vs: &pp::VectorSelector,
        aggregated: bool,
        ranged: bool,
    ) -> Result<usize, ExprError> {
        let name_matcher = vs.matchers.matchers.iter().find(|m| m.name == "__name__");
        let name = match (&vs.name, name_matcher) {
            (Some(n), _) => n.clone(),
            (None, Some(m)) if m.op == MatchOp::Equal => m.value.clone(),
            _ => {
                let at = self.peek(false, |t, _| t.kind == Kind::Open('{'));
                return Err(self.err(at, "a selector must name one metric, e.g. node_load1{…}"));
            }
        };
        let at = {
            let start = self.cursor;
            match self.seek(false, |t, s| {
                (t.kind == Kind::Ident && s == name) || t.kind == Kind::Open('{')
            }) {
                Some(o) => o,
                None => {
                    self.cursor = start;
                    0
                }
            }
        };
        if !vs.matchers.or_matchers.is_empty() {
            return Err(self.err(at, "`or` between label matchers is not supported: use a regex matcher, e.g. device=~\"eth0|eth1\""));
        }
        if vs.offset.is_some() {
            let o = self.peek(false, |t, s| {
                t.kind == Kind::Ident && s.eq_ignore_ascii_case("offset")
            });
            return Err(self.err(
                o,
                "`offset` is not supported: expressions read the latest scrape of each droplet",
            ));
        }
        if vs.at.is_some() {
            let o = self.peek(false, |t, s| t.kind == Kind::Op && s == "@");
            return Err(self.err(o, "the `@` modifier is not supported: expressions read the latest scrape of each droplet"));
        }
        // promql-parser keeps label values as written, escapes included: find each matcher's
        // string token (in written order) to unescape it as its quotes say.
        let quoted: Vec<Tok> = if self
            .toks
            .get(self.cursor)
            .is_some_and(|t| t.kind == Kind::Open('{'))
        {
            self.toks[self.cursor..]
                .iter()
                .take_while(|t| t.kind != Kind::Close('}'))
                .filter(|t| t.kind == Kind::Str)
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        let aligned = quoted.len() == vs.matchers.matchers.len();
        let mut matchers = Vec::new();
        let mut text = name.clone();
        let mut shown = Vec::new();
        for (i, m) in vs.matchers.matchers.iter().enumerate() {
            let quote = if aligned {
                quoted[i].text(self.text).chars().next().unwrap_or('"')
            } else {
                '"'
            };
            let value = unescape(&m.value, quote)
                .map_err(|e| self.err(at, format!("label matcher {}: {e}", m.name)))?;
            if m.name == "__name__" {
                if vs.name.is_some() || m.op != MatchOp::Equal {
                    return Err(self.err(
                        at,
                        "matching on `__name__` is not supported: name one metric",
                    ));
                }
                continue;
            }
            let regex = |v: &str| {
                // Fully anchored, as in Prometheus (`^(?:re)$`, so alternations stay anchored).
                Regex::new(&format!("^(?:{v})$")).map_err(|e| {
                    self.err(
                        at,
                        format!("label matcher {}: invalid regular expression: {e}", m.name),
                    )
                })
            };
            let test = match &m.op {
                MatchOp::Equal => Test::Eq(value),
                MatchOp::NotEqual => Test::Ne(value),
                MatchOp::Re(_) => Test::Re(regex(&value)?),
                MatchOp::NotRe(_) => Test::NotRe(regex(&value)?),
            };
            shown.push(format!(
                "{}{}{}",
                m.name,
                m.op,
                quoted
                    .get(i)
                    .filter(|_| aligned)
                    .map(|t| t.text(self.text).to_string())
                    .unwrap_or_else(|| format!("{:?}", m.value))
            ));
            matchers.push(LabelMatcher {
                label: m.name.clone(),
                test,
            });
        }
        if !shown.is_empty() {
            text = format!("{text}{{{}}}", shown.join(","));
        }
        if !aggregated {
            if let Some(fam) = families::per_instance(&name) {
                let pinned: Vec<&str> = matchers
                    .iter()
                    .filter(|m| matches!(m.test, Test::Eq(_)))
                    .map(|m| m.label.as_str())
                    .collect();
                if !fam.pinned_by(&pinned) {
                    let missing = fam.missing(&pinned).join(", ");
                    let example = if ranged {
                        format!("avg(rate({text}[5m]))")
                    } else {
                        format!("avg({text})")
                    };
                    return Err(self.err(at, format!(
                        "`{text}` matches several series on a droplet (do-agent exposes one per {}): \
                         pin {missing} with `=`, or wrap it in sum/avg/min/max/count, e.g. {example}",
                        fam.labels.join(", ")
                    )));
                }
            }
        }
        self.selectors.push(Selector {
            name,
            matchers,
            ranged,
            text,
        });
        Ok(self.selectors.len() - 1)
    }
}

/// Undoes the escapes of a PromQL string literal written between `quote`s (Go's rules:
/// `\n`, `\"`, `\\`, `\x41`, `\u00e9`, octal …); backquoted strings are raw.
fn unescape(raw: &str, quote: char) -> Result<String, String> {
    if quote == '`' || !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    let bad = |what: &str| format!("invalid escape sequence in {raw:?}: {what}");
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(bad("a lone \\ at the end"));
        };
        let mut hex = |n: usize| -> Result<char, String> {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|_| digits.len() == n)
                .and_then(char::from_u32)
                .ok_or_else(|| bad(&format!("\\{e}{digits}")))
        };
        match e {
            'a' => out.push('\u{07}'),
            'b' => out.push('\u{08}'),
            'f' => out.push('\u{0c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{0b}'),
            '\\' | '"' | '\'' => out.push(e),
            'x' => out.push(hex(2)?),
            'u' => out.push(hex(4)?),
            'U' => out.push(hex(8)?),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.next().and_then(|d| d.to_digit(8)) {
                        Some(d) => v = v * 8 + d,
                        None => return Err(bad("an octal escape needs three digits")),
                    }
                }
                out.push(char::from_u32(v).ok_or_else(|| bad("octal escape out of range"))?);
            }
            other => return Err(bad(&format!("\\{other}"))),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Series keys.

/// The value of `want` in the label part of a series key (`{a="x",b="y"}`), reading the key
/// text in place; `None` when the label is absent (PromQL then sees "").
fn label_value<'k>(labels: &'k str, want: &str) -> Option<Cow<'k, str>> {
    let body = labels.strip_prefix('{')?;
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let eq = body[i..].find('=')? + i;
        let name = &body[i..eq];
        if b.get(eq + 1) != Some(&b'"') {
            return None;
        }
        let vstart = eq + 2;
        let mut j = vstart;
        let mut escaped = false;
        while j < b.len() && b[j] != b'"' {
            if b[j] == b'\\' {
                escaped = true;
                j += 1;
            }
            j += 1;
        }
        if name == want {
            let raw = &body[vstart..j.min(b.len())];
            if !escaped {
                return Some(Cow::Borrowed(raw));
            }
            let mut v = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some(c) => v.push(c),
                        None => {}
                    },
                    c => v.push(c),
                }
            }
            return Some(Cow::Owned(v));
        }
        // Past the closing quote and the comma.
        i = j + 2;
    }
    None
}

impl Selector {
    /// Whether this selector matches the series `name{labels}`.
    fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && self.matchers.iter().all(|m| {
                let v = labels
                    .iter()
                    .find(|(k, _)| *k == m.label)
                    .map(|(_, v)| *v)
                    .unwrap_or("");
                m.test.matches(v)
            })
    }

    fn matches_labels(&self, labels: &str) -> bool {
        self.matchers.iter().all(|m| {
            let v = label_value(labels, &m.label);
            m.test.matches(v.as_deref().unwrap_or(""))
        })
    }

    /// Calls `f(key, labels, value)` for every series of `series` this selector matches;
    /// `labels` is the `{…}` part of the key ("" when the series has none).
    fn each<'a>(
        &self,
        series: &'a SeriesMap,
        memo: &mut Memo,
        mut f: impl FnMut(&'a str, &'a str, f64),
    ) {
        for (k, rest, v) in crate::series::with_name(series, &self.name) {
            if self.matchers.is_empty() || memo.matches(k, || self.matches_labels(rest)) {
                f(k, rest, v);
            }
        }
    }
}

/// What a selector's label matchers said of each series key met so far in one pass over
/// the droplets. The droplets of one scrape share their keys (one copy per scrape), so
/// a key's address identifies its text while the pass lasts, and the matchers run once per
/// distinct key instead of once per droplet.
#[derive(Default)]
struct Memo(Vec<(usize, bool)>);

impl Memo {
    /// Keys remembered at most: beyond, matchers run every time (no unbounded growth).
    const LIMIT: usize = 256;

    fn matches(&mut self, key: &str, test: impl FnOnce() -> bool) -> bool {
        let at = key.as_ptr() as usize;
        if let Some((_, m)) = self.0.iter().find(|(a, _)| *a == at) {
            return *m;
        }
        let m = test();
        if self.0.len() < Self::LIMIT {
            self.0.push((at, m));
        }
        m
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation.

/// An element of a vector: its labels (the `{…}` part of a series key, "" after an
/// aggregation) and value.
#[derive(Debug, Clone, Copy)]
struct Elem<'a> {
    labels: &'a str,
    v: f64,
}

/// A vector's elements: one or two series inline (most selectors), more on the heap.
type Items<'a> = SmallVec<[Elem<'a>; 2]>;

enum Val<'a> {
    Scalar(f64),
    /// The elements and the selector they come from (for messages).
    Vector(Items<'a>, usize),
}

/// How much a counter grew from `before` to `now`. A counter that went down was reset: it
/// counts from zero again (as in Prometheus). The one rule for every rate doscale computes.
pub fn counter_increase(before: f64, now: f64) -> f64 {
    if now < before {
        now
    } else {
        now - before
    }
}

fn fmt_ms(ms: i64) -> String {
    crate::units::dur(std::time::Duration::from_millis(ms.max(0) as u64))
}

impl Expr {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Metric names referenced by any selector.
    pub fn metric_names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// Whether a series (name + labels) is matched by any selector of this expression: the
    /// scrape keeps only those.
    pub fn wants(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.selectors.iter().any(|s| s.matches(name, labels))
    }

    /// Whether a series is read from the *previous* scrape (a selector inside `rate` or
    /// `increase` matches it): only those need to be kept once a scrape becomes the previous
    /// one.
    pub fn wants_previous(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.selectors
            .iter()
            .any(|s| s.ranged && s.matches(name, labels))
    }

    /// The value for one droplet: `cur` is its latest scrape, `prev` the one before (for
    /// `rate`/`increase`).
    pub fn eval(&self, cur: Sample<'_>, prev: Option<Sample<'_>>) -> Result<f64, NoData> {
        self.eval_with(&mut self.memos(), cur, prev)
    }

    /// [`Expr::eval`] for each droplet of one scrape, in order: what the label matchers
    /// find of a series key is worked out once for all the droplets.
    pub fn eval_all<'s>(
        &self,
        droplets: impl IntoIterator<Item = (Sample<'s>, Option<Sample<'s>>)>,
    ) -> Vec<Result<f64, NoData>> {
        let mut memos = self.memos();
        droplets
            .into_iter()
            .map(|(cur, prev)| self.eval_with(&mut memos, cur, prev))
            .collect()
    }

    fn memos(&self) -> Vec<Memo> {
        self.selectors.iter().map(|_| Memo::default()).collect()
    }

    fn eval_with(
        &self,
        memos: &mut [Memo],
        cur: Sample<'_>,
        prev: Option<Sample<'_>>,
    ) -> Result<f64, NoData> {
        let v = match self.node(&self.root, memos, cur, prev)? {
            Val::Scalar(v) => v,
            Val::Vector(items, origin) => match items.as_slice() {
                [one] => one.v,
                [] => {
                    return Err(NoData(format!(
                        "no series matches `{}`",
                        self.sel_text(origin)
                    )))
                }
                many => {
                    return Err(NoData(format!(
                        "`{}` matches {} series; wrap it in sum/avg/min/max/count",
                        self.sel_text(origin),
                        many.len()
                    )))
                }
            },
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(NoData(format!(
                "the value is {v}, not a finite number (a NaN or infinite series, or a division by zero)"
            )))
        }
    }

    fn node<'a>(
        &self,
        n: &Node,
        memos: &mut [Memo],
        cur: Sample<'a>,
        prev: Option<Sample<'_>>,
    ) -> Result<Val<'a>, NoData> {
        Ok(match n {
            Node::Num(v) => Val::Scalar(*v),
            Node::Sel(i) => {
                let sel = &self.selectors[*i];
                let mut items = Items::new();
                sel.each(cur.series, &mut memos[*i], |_, labels, v| {
                    items.push(Elem { labels, v })
                });
                if items.is_empty() {
                    return Err(NoData(format!("no series matches `{}`", sel.text)));
                }
                Val::Vector(items, *i)
            }
            Node::Range {
                increase,
                sel: i,
                range_ms,
            } => {
                let sel = &self.selectors[*i];
                let func = if *increase { "increase" } else { "rate" };
                let Some(prev) = prev else {
                    return Err(NoData(format!(
                        "no previous scrape within {}",
                        fmt_ms(*range_ms)
                    )));
                };
                let gap = cur.at_ms - prev.at_ms;
                if gap > *range_ms {
                    return Err(NoData(format!(
                        "no previous scrape within {} (the previous one is {} older) for {func}",
                        fmt_ms(*range_ms),
                        fmt_ms(gap)
                    )));
                }
                if gap <= 0 {
                    return Err(NoData(format!(
                        "{func}: the previous scrape is not older than the current one"
                    )));
                }
                let secs = gap as f64 / 1000.0;
                let mut items = Items::new();
                let mut seen = 0usize;
                // Both maps are sorted: walk the previous one alongside instead of searching
                // it for every series (fewer keys touched, which is what costs here).
                let before_all = prev.series.as_slice();
                let mut j: Option<usize> = None;
                sel.each(cur.series, &mut memos[*i], |key, labels, now| {
                    seen += 1;
                    let j =
                        j.get_or_insert_with(|| before_all.partition_point(|(k, _)| &**k < key));
                    while before_all.get(*j).is_some_and(|(k, _)| &**k < key) {
                        *j += 1;
                    }
                    if let Some((_, before)) = before_all.get(*j).filter(|(k, _)| &**k == key) {
                        *j += 1;
                        let inc = counter_increase(*before, now);
                        items.push(Elem {
                            labels,
                            v: if *increase { inc } else { inc / secs },
                        });
                    }
                });
                if items.is_empty() {
                    return Err(NoData(if seen == 0 {
                        format!("no series matches `{}`", sel.text)
                    } else {
                        format!("{func}: `{}` is not in the previous scrape", sel.text)
                    }));
                }
                Val::Vector(items, *i)
            }
            Node::Agg { op, arg } => {
                let mut items = match self.node(arg, memos, cur, prev)? {
                    Val::Scalar(v) => smallvec::smallvec![Elem { labels: "", v }],
                    Val::Vector(items, _) => items,
                };
                // NaN and ±Inf are not values: `min`/`max` would skip a NaN (and `max` a
                // -Inf) and hide a broken series behind the others.
                if *op != AggOp::Count {
                    if let Some(bad) = items.iter().find(|e| !e.v.is_finite()) {
                        return Err(NoData(format!(
                            "`{}` has a series whose value is {}, not a finite number",
                            self.sel_text(self.origin_of(arg)),
                            bad.v
                        )));
                    }
                }
                let n = items.len() as f64;
                let vals = items.iter().map(|e| e.v);
                let v = match op {
                    AggOp::Sum => vals.sum(),
                    AggOp::Avg => vals.sum::<f64>() / n,
                    AggOp::Min => vals.fold(f64::INFINITY, f64::min),
                    AggOp::Max => vals.fold(f64::NEG_INFINITY, f64::max),
                    AggOp::Count => n,
                };
                // One element without labels; the vector's allocation is reused.
                items.truncate(1);
                items[0] = Elem { labels: "", v };
                Val::Vector(items, self.origin_of(arg))
            }
            Node::Neg(inner) => match self.node(inner, memos, cur, prev)? {
                Val::Scalar(v) => Val::Scalar(-v),
                Val::Vector(mut items, o) => {
                    items.iter_mut().for_each(|e| e.v = -e.v);
                    Val::Vector(items, o)
                }
            },
            Node::Bin { op, lhs, rhs } => {
                let l = self.node(lhs, memos, cur, prev)?;
                let r = self.node(rhs, memos, cur, prev)?;
                match (l, r) {
                    (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(op.apply(a, b)),
                    (Val::Vector(mut items, o), Val::Scalar(b)) => {
                        items.iter_mut().for_each(|e| e.v = op.apply(e.v, b));
                        Val::Vector(items, o)
                    }
                    (Val::Scalar(a), Val::Vector(mut items, o)) => {
                        items.iter_mut().for_each(|e| e.v = op.apply(a, e.v));
                        Val::Vector(items, o)
                    }
                    (Val::Vector(ls, lo), Val::Vector(rs, ro)) => {
                        let mut out = Items::with_capacity(ls.len().min(rs.len()));
                        for l in &ls {
                            if let Some(r) = rs.iter().find(|r| r.labels == l.labels) {
                                out.push(Elem {
                                    labels: l.labels,
                                    v: op.apply(l.v, r.v),
                                });
                            }
                        }
                        if out.is_empty() {
                            return Err(NoData(format!(
                                "`{}` {} `{}`: no series on both sides with the same labels",
                                self.sel_text(lo),
                                op.symbol(),
                                self.sel_text(ro)
                            )));
                        }
                        Val::Vector(out, if ls.len() > 1 { lo } else { ro })
                    }
                }
            }
        })
    }

    fn sel_text(&self, i: usize) -> &str {
        self.selectors
            .get(i)
            .map(|s| s.text.as_str())
            .unwrap_or("the expression")
    }

    /// The first selector under `n`, for messages about the vectors it produces.
    fn origin_of(&self, n: &Node) -> usize {
        match n {
            Node::Num(_) => usize::MAX,
            Node::Sel(i) | Node::Range { sel: i, .. } => *i,
            Node::Agg { arg, .. } | Node::Neg(arg) => self.origin_of(arg),
            Node::Bin { lhs, rhs, .. } => {
                if matches!(**lhs, Node::Num(_)) {
                    self.origin_of(rhs)
                } else {
                    self.origin_of(lhs)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
