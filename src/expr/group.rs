//! A per-droplet expression turned into one query over a whole group, for a source that
//! evaluates expressions itself (a Prometheus-compatible query API).
//!
//! The rewrite works on promql-parser's AST, never on the text:
//!
//! * every selector (inside `rate`/`increase` too) gains the droplet matcher, e.g.
//!   `droplet_id=~"101|102"`, so the query reads the group's droplets only;
//! * every aggregation gains `by (<label>)`: it aggregates over each droplet's own series, as
//!   doscale's evaluator does, instead of over the whole group;
//! * a binary operation between two vectors where one side went through an aggregation (its
//!   only label is then the droplet label) gains `on (<label>)`: both sides still meet per
//!   droplet, while the raw side keeps its target labels (`job`, `instance`, ...).
//!
//! The result is one series per droplet (its droplet label says which), or a scalar.

use promql_parser::label::{Labels, MatchOp, Matcher};
use promql_parser::parser::{self as pp, Expr as PExpr, LabelModifier};
use regex::Regex;

/// `text` (an expression that [`super::parse`] accepted) as a query over the droplets whose
/// `label` matches the regular expression `values` (anchored by Prometheus), e.g.
/// `101|102`.
pub fn group_query(text: &str, label: &str, values: &str) -> Result<String, String> {
    let mut ast = pp::parse(text).map_err(|e| format!("not a valid PromQL expression: {e}"))?;
    let regex = Regex::new(&format!("^(?:{values})$"))
        .map_err(|e| format!("the droplet matcher is not a valid regular expression: {e}"))?;
    let m = Matcher {
        op: MatchOp::Re(regex),
        name: label.to_string(),
        // promql-parser prints values as they were written: escaped for a double-quoted
        // PromQL string.
        value: values.replace('\\', "\\\\").replace('"', "\\\""),
    };
    rewrite(&mut ast, label, &m);
    let out = ast.to_string();
    // What we print must read back: a value written in single quotes or backquotes in the
    // configuration is printed between double quotes as it was written.
    pp::parse(&out).map_err(|e| {
        format!("the group query cannot be written ({e}): write label values in double quotes")
    })?;
    Ok(out)
}

/// Whether `e` is a scalar (no vector anywhere in it).
fn is_scalar(e: &PExpr) -> bool {
    match e {
        PExpr::NumberLiteral(_) => true,
        PExpr::Paren(p) => is_scalar(&p.expr),
        PExpr::Unary(u) => is_scalar(&u.expr),
        PExpr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}

/// Whether the vector `e` yields carries the droplet label alone (it went through an
/// aggregation, or a matching `on` the droplet label).
fn droplet_only(e: &PExpr) -> bool {
    match e {
        PExpr::Aggregate(_) => true,
        PExpr::Paren(p) => droplet_only(&p.expr),
        PExpr::Unary(u) => droplet_only(&u.expr),
        PExpr::Binary(b) => {
            b.modifier
                .as_ref()
                .is_some_and(|m| matches!(m.matching, Some(LabelModifier::Include(_))))
                || (is_scalar(&b.lhs) && droplet_only(&b.rhs))
                || (is_scalar(&b.rhs) && droplet_only(&b.lhs))
        }
        _ => false,
    }
}

fn rewrite(e: &mut PExpr, label: &str, m: &Matcher) {
    match e {
        PExpr::VectorSelector(vs) => vs.matchers.matchers.push(m.clone()),
        PExpr::MatrixSelector(ms) => ms.vs.matchers.matchers.push(m.clone()),
        PExpr::Aggregate(a) => {
            rewrite(&mut a.expr, label, m);
            a.modifier = Some(LabelModifier::Include(Labels::new(vec![label])));
        }
        PExpr::Call(c) => {
            for arg in &mut c.args.args {
                rewrite(arg, label, m);
            }
        }
        PExpr::Paren(p) => rewrite(&mut p.expr, label, m),
        PExpr::Unary(u) => rewrite(&mut u.expr, label, m),
        PExpr::Binary(b) => {
            rewrite(&mut b.lhs, label, m);
            rewrite(&mut b.rhs, label, m);
            let vectors = !is_scalar(&b.lhs) && !is_scalar(&b.rhs);
            if vectors && (droplet_only(&b.lhs) || droplet_only(&b.rhs)) {
                let mut modifier = b.modifier.clone().unwrap_or_default();
                modifier.matching = Some(LabelModifier::Include(Labels::new(vec![label])));
                b.modifier = Some(modifier);
            }
        }
        PExpr::NumberLiteral(_)
        | PExpr::StringLiteral(_)
        | PExpr::Subquery(_)
        | PExpr::Extension(_) => {}
    }
}

/// The droplet matcher's regular expression for these label values: each one literal,
/// joined by `|`.
pub fn alternatives<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    values
        .into_iter()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> String {
        crate::expr::parse(text).expect("a valid expression");
        group_query(text, "droplet_id", "1|2").unwrap()
    }

    #[test]
    fn selectors_gain_the_droplet_matcher() {
        assert_eq!(q("node_load1"), r#"node_load1{droplet_id=~"1|2"}"#);
        assert_eq!(
            q(r#"node_filesystem_free_bytes{mountpoint="/"}"#),
            r#"node_filesystem_free_bytes{droplet_id=~"1|2",mountpoint="/"}"#
        );
    }

    #[test]
    fn aggregations_gain_by_the_droplet_label() {
        assert_eq!(
            q(r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#),
            r#"1 - avg by (droplet_id) (rate(node_cpu_seconds_total{droplet_id=~"1|2",mode="idle"}[5m]))"#
        );
    }

    #[test]
    fn a_raw_side_meets_an_aggregated_one_on_the_droplet_label() {
        assert_eq!(
            q(r#"node_load5 / count(node_cpu_seconds_total{mode="idle"})"#),
            r#"node_load5{droplet_id=~"1|2"} / on (droplet_id) count by (droplet_id) (node_cpu_seconds_total{droplet_id=~"1|2",mode="idle"})"#
        );
        // Two raw sides match on their own labels, target labels included.
        assert_eq!(
            q("node_memory_MemFree_bytes + node_memory_Cached_bytes"),
            r#"node_memory_MemFree_bytes{droplet_id=~"1|2"} + node_memory_Cached_bytes{droplet_id=~"1|2"}"#
        );
        // A scalar side needs no matching.
        assert_eq!(
            q("2 * sum(node_load1)"),
            r#"2 * sum by (droplet_id) (node_load1{droplet_id=~"1|2"})"#
        );
    }

    #[test]
    fn instance_values_are_literal_and_escaped() {
        let re = alternatives(["10.0.0.1:9110", "10.0.0.2:9110"]);
        assert_eq!(re, r"10\.0\.0\.1:9110|10\.0\.0\.2:9110");
        let out = group_query("node_load1", "instance", &re).unwrap();
        assert_eq!(
            out,
            r#"node_load1{instance=~"10\\.0\\.0\\.1:9110|10\\.0\\.0\\.2:9110"}"#
        );
        // It reads back (PromQL's unescaping) as the same regular expression.
        let back = crate::expr::parse(&out).unwrap();
        assert!(back.wants("node_load1", &[("instance", "10.0.0.1:9110")]));
        assert!(back.wants("node_load1", &[("instance", "10.0.0.2:9110")]));
        assert!(!back.wants("node_load1", &[("instance", "10x0.0.1:9110")]));
    }
}
