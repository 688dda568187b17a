//! Expressions: the PromQL subset of DESIGN.md §2 "Expressions", parsed once at config load
//! and evaluated per droplet over that droplet's scraped series.
//!
//! STUB: the real parser/evaluator replaces this file (interface below is the contract).

use std::collections::BTreeSet;

use crate::series::SeriesMap;

/// A parsed, validated expression.
#[derive(Debug, Clone)]
pub struct Expr {
    text: String,
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

pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let names = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains('_'))
        .map(String::from)
        .collect();
    Ok(Expr {
        text: text.to_string(),
        names,
    })
}

impl Expr {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Metric names referenced by any selector.
    pub fn metric_names(&self) -> BTreeSet<String> {
        self.names.clone()
    }

    /// Whether a series (name + labels) is matched by any selector of this expression: the
    /// scrape keeps only those.
    pub fn wants(&self, name: &str, _labels: &[(&str, &str)]) -> bool {
        self.names.contains(name)
    }

    /// The value for one droplet: `cur` is its latest scrape, `prev` the one before (for
    /// `rate`/`increase`).
    pub fn eval(&self, cur: Sample<'_>, _prev: Option<Sample<'_>>) -> Result<f64, NoData> {
        let name = self
            .names
            .iter()
            .next()
            .ok_or_else(|| NoData("no selector".into()))?;
        cur.series
            .get(name.as_str())
            .copied()
            .ok_or_else(|| NoData(format!("no series {name}")))
    }
}
