//! `doscale plan`: turns the evaluation into a plan per group — desired size, names to create,
//! droplets to destroy — with every rule that moved the recommendation, and stores it.

use chrono::Utc;
use color_eyre::Result;
use comfy_table::{Cell, Color};
use serde_json::json;

use crate::error::ExitCode;
use crate::output::{self, sanitize};
use crate::plan::{self, GroupPlan};

pub fn run(ctx: &super::Ctx, args: &crate::cli::PlanArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load_latest(plan::series_read(&ctx.config.groups))?;
    super::rename_group::check_orphans(&ctx.config, &state)?;
    let plans = crate::pipeline::plan(&ctx.env(&crate::do_api::Offline), &mut state)?;
    store.save(&state)?;
    print(ctx, &plans);
    if args.detailed_exitcode && plans.iter().any(GroupPlan::changes) {
        return Err(ExitCode(3).into());
    }
    Ok(())
}

pub fn print(ctx: &super::Ctx, plans: &[GroupPlan]) {
    if ctx.json {
        output::print(&format!("{}\n", render_json(plans)));
    } else {
        output::print(&render_table(plans, &ctx.style));
    }
}

pub fn render_table(plans: &[GroupPlan], style: &output::Style) -> String {
    let mut out = String::new();
    for p in plans {
        let mut t = style.table(vec![
            "group",
            "current",
            "recommended",
            "desired",
            "create",
            "destroy",
        ]);
        t.add_row(vec![
            Cell::new(sanitize(&p.name)),
            Cell::new(p.current),
            Cell::new(p.recommended),
            Cell::new(p.desired),
            if p.create.is_empty() {
                Cell::new("—")
            } else {
                output::coloured(
                    p.create
                        .iter()
                        .map(|n| sanitize(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Color::Green,
                )
            },
            if p.destroy.is_empty() {
                Cell::new("—")
            } else {
                output::coloured(
                    p.destroy
                        .iter()
                        .map(|d| format!("{} ({}): {}", sanitize(&d.name), d.id, sanitize(&d.why)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Color::Red,
                )
            },
        ]);
        out.push_str(&format!("{t}\n"));
        if p.reasons.is_empty() {
            out.push_str("why: nothing moved the recommendation\n");
        } else {
            out.push_str("why (not):\n");
            for r in &p.reasons {
                out.push_str(&format!("  - {}\n", sanitize(r)));
            }
        }
        out.push('\n');
    }
    out
}

/// `plan --output json` (docs/design.md §6).
pub fn render_json(plans: &[GroupPlan]) -> serde_json::Value {
    json!({"at": Utc::now().to_rfc3339(), "groups": plans})
}
