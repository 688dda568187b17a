//! `doscale evaluate`: computes every condition and policy on the latest scrape (re-evaluating
//! the same scrape is allowed), stores the evaluation and prints a table per group.

use chrono::Utc;
use color_eyre::Result;
use comfy_table::{Cell, Color};
use serde_json::json;

use crate::output::{self, sanitize};
use crate::policy::{Coverage, GroupEvaluation};

pub fn run(ctx: &super::Ctx) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load()?;
    let evals = crate::pipeline::evaluate(&ctx.env(&crate::do_api::Offline), &mut state)?;
    store.save(&state)?;
    if ctx.json {
        output::print_json(&JsonOut {
            at: Utc::now().to_rfc3339(),
            groups: &evals,
        })?;
    } else {
        output::print(&render_table(&evals, &ctx.style));
    }
    Ok(())
}

fn num(v: Option<f64>) -> String {
    v.map(crate::units::num).unwrap_or_else(|| "no data".into())
}

/// One table per group: a row per droplet with each condition's value, then each condition's
/// aggregate against its threshold and each policy's verdict.
pub fn render_table(evals: &[GroupEvaluation], style: &output::Style) -> String {
    // Colour goes through the table's own cell styling, so it is measured and wrapped with
    // the text and never split across lines.
    let verdict = |b: bool, rest: &str| -> Cell {
        let text = format!("{}{rest}", if b { "yes" } else { "no" });
        output::coloured(text, if b { Color::Green } else { Color::Red })
    };
    let mut out = String::new();
    for e in evals {
        out.push_str(&status_line(e));
        let conds: Vec<(String, &crate::policy::ConditionEvaluation)> = e
            .policies
            .iter()
            .flat_map(|p| {
                p.conditions
                    .iter()
                    .map(move |c| (format!("{}/{}", p.name, c.name), c))
            })
            .collect();
        let mut header = vec!["droplet".to_string()];
        header.extend(conds.iter().map(|(n, _)| n.clone()));
        header.push("note".into());
        let mut t = style.table(header);
        for d in &e.droplets {
            let mut row = vec![format!("{} ({})", sanitize(&d.name), d.id)];
            for (_, c) in &conds {
                row.push(match c.per_droplet.get(&d.id) {
                    Some(v) => num(*v),
                    None => "—".into(),
                });
            }
            row.push(d.reason.as_deref().map(sanitize).unwrap_or_default());
            t.add_row(row);
        }
        out.push_str(&format!("{t}\n"));
        // The values each condition had (also on the status line above) only with `-o wide`:
        // nine columns do not fit 80.
        let mut header = vec![
            "policy",
            "scale",
            "condition",
            "function",
            "value",
            "threshold",
        ];
        if style.wide {
            header.push("values");
        }
        header.extend(["holds", "verdict"]);
        let mut v = style.table(header);
        for p in &e.policies {
            for (i, c) in p.conditions.iter().enumerate() {
                let mut row = vec![
                    Cell::new(if i == 0 {
                        sanitize(&p.name)
                    } else {
                        String::new()
                    }),
                    Cell::new(if i == 0 {
                        format!("{:?} +{}", p.scale, p.step)
                            .to_lowercase()
                            .replace("down +", "down -")
                    } else {
                        String::new()
                    }),
                    Cell::new(format!("{} = {}", sanitize(&c.name), sanitize(&c.expr))),
                    Cell::new(&c.function),
                    Cell::new(num(c.value)),
                    Cell::new(format!("{} {}", c.op, c.threshold)),
                ];
                if style.wide {
                    row.push(Cell::new(format!(
                        "{}/{}",
                        c.coverage.with_value, c.coverage.eligible
                    )));
                }
                row.push(verdict(c.satisfied, ""));
                row.push(if i == 0 {
                    verdict(p.satisfied, &format!(" ({:?})", p.match_).to_lowercase())
                } else {
                    Cell::new("")
                });
                v.add_row(row);
            }
        }
        if !e.policies.is_empty() {
            out.push_str(&format!("{v}\n"));
        }
        if let Some(t) = &e.target {
            out.push_str(&format!(
                "target: {} of the group = {} against {} → recommended size {} ({})\n",
                t.function,
                num(t.aggregate),
                t.value,
                t.recommended,
                sanitize(&t.reason)
            ));
        }
        out.push('\n');
    }
    out
}

/// The group's first lines: how many droplets reported, then per condition and target how
/// many eligible droplets gave a value, whether that meets `min_reporting`, and which
/// droplets gave none (a scale-down never rests on a condition without enough values).
fn status_line(e: &GroupEvaluation) -> String {
    let mut items: Vec<(String, &Coverage)> = e
        .policies
        .iter()
        .flat_map(|p| {
            p.conditions.iter().map(move |c| {
                (
                    format!("{}/{}", sanitize(&p.name), sanitize(&c.name)),
                    &c.coverage,
                )
            })
        })
        .collect();
    if let Some(t) = &e.target {
        items.push(("target".into(), &t.coverage));
    }
    let pct = format!("{:.0}%", e.reporting.required * 100.0);
    let mut out = format!(
        "group {}: {} droplets, {} evaluated; reporting {}/{} eligible",
        sanitize(&e.name),
        e.size,
        e.evaluated,
        e.reporting.reporting,
        e.reporting.eligible
    );
    if !items.is_empty() {
        out.push_str("; values: ");
        out.push_str(
            &items
                .iter()
                .map(|(n, c)| format!("{n} {}/{}", c.with_value, c.eligible))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let short: Vec<&str> = items
        .iter()
        .filter(|(_, c)| !c.ok)
        .map(|(n, _)| n.as_str())
        .collect();
    if e.reporting.ok && short.is_empty() {
        out.push_str(&format!(" (min_reporting {pct}: met)\n"));
    } else if !e.reporting.ok {
        out.push_str(&format!(" (min_reporting {pct}: not met: no scale-down)\n"));
    } else {
        out.push_str(&format!(
            " (min_reporting {pct}: not met by {}: no scale-down resting on them)\n",
            short.join(", ")
        ));
    }
    // Who gave no value, once per distinct set of droplets (conditions reading the same
    // expression share it).
    let mut seen: Vec<(String, Vec<&str>)> = Vec::new();
    for (n, c) in &items {
        if c.with_value >= c.eligible {
            continue;
        }
        let mut who = c
            .missing
            .iter()
            .map(|m| format!("{} {} ({})", m.id, sanitize(&m.name), sanitize(&m.why)))
            .collect::<Vec<_>>()
            .join(", ");
        let more = (c.eligible - c.with_value).saturating_sub(c.missing.len());
        if more > 0 {
            who.push_str(&format!(" and {more} more"));
        }
        match seen.iter_mut().find(|(w, _)| *w == who) {
            Some((_, names)) => names.push(n),
            None => seen.push((who, vec![n])),
        }
    }
    for (who, names) in seen {
        out.push_str(&format!("  no value for {}: {who}\n", names.join(", ")));
    }
    out
}

/// `evaluate --output json` written straight from the values (no intermediate JSON tree: a
/// large fleet has tens of thousands of per-droplet values).
#[derive(serde::Serialize)]
struct JsonOut<'a> {
    at: String,
    groups: &'a [GroupEvaluation],
}

/// `evaluate --output json` (docs/design.md §6).
pub fn render_json(evals: &[GroupEvaluation]) -> serde_json::Value {
    json!({"at": Utc::now().to_rfc3339(), "groups": evals})
}
