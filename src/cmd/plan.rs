//! `doscale plan`: turns the evaluation into a plan per group — desired size, names to create,
//! droplets to destroy — with every rule that moved the recommendation, and stores it.

use chrono::Utc;
use color_eyre::eyre::bail;
use color_eyre::Result;
use comfy_table::{Cell, Color};
use rand::Rng;
use serde_json::json;

use crate::error::ExitCode;
use crate::output::{self, sanitize};
use crate::plan::{self, GroupPlan, PlanInput};
use crate::state::{Reading, State};

pub fn run(ctx: &super::Ctx, args: &crate::cli::PlanArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load_with(Reading::latest(plan::series_read(&ctx.config.groups)))?;
    super::rename_group::check_orphans(&ctx.config, &state)?;
    let plans = stage(ctx, &mut state)?;
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

/// Plans every group from its stored evaluation.
pub fn stage(ctx: &super::Ctx, state: &mut State) -> Result<Vec<GroupPlan>> {
    let now = Utc::now();
    let mut out = Vec::new();
    for g in &ctx.config.groups {
        let gs = state.group_mut(&g.name);
        let Some(eval) = gs.evaluation.clone() else {
            bail!(
                "group {}: there is no evaluation to plan from: run `doscale evaluate` first",
                g.name
            );
        };
        let Some(scrape) = gs.latest_scrape() else {
            bail!(
                "group {}: there is no scrape: run `doscale scrape` first",
                g.name
            );
        };
        if scrape.at != eval.at {
            bail!("group {}: the evaluation is older than the latest scrape: run `doscale evaluate` first", g.name);
        }
        let input = PlanInput {
            group: g,
            eval: &eval,
            members: &scrape.droplets,
            history: &gs.history,
            pending: &gs.pending,
            recommendations: &gs.recommendations,
            operator: plan::Operator {
                paused: gs.paused.as_ref(),
                manual: gs.manual.as_ref(),
            },
            consistency: ctx.config.api.consistency,
            now,
            rand: rand::thread_rng().gen(),
        };
        let started = std::time::Instant::now();
        let p = plan::plan_group(&input);
        tracing::info!(
            "group {}: planned from {} droplets (decision core {:.2} ms)",
            g.name,
            scrape.droplets.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        if let Some(r) = &p.recommendation {
            gs.recommendations.push(r.clone());
        }
        // Keep the recommendations the stabilization window can still use.
        let window = g
            .target
            .as_ref()
            .map(|t| t.stabilization_down)
            .unwrap_or_default();
        let keep_from = now
            - chrono::Duration::from_std(window).unwrap_or_default()
            - chrono::Duration::seconds(1);
        gs.recommendations.retain(|r| r.at >= keep_from);
        gs.plan = Some(p.clone());
        out.push(p);
    }
    Ok(out)
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
