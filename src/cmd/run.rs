//! `doscale run`: scrape, evaluate, plan and apply in one process under one lock — one
//! consistent pass for the simple timer. It prints one line per group (what the journal of a
//! timer wants); `--tables` or `-v` print the tables of `evaluate` and `plan` instead.

use chrono::Utc;
use color_eyre::Result;
use serde_json::json;

use crate::apply::GroupReport;
use crate::error::ExitCode;
use crate::output::{self, sanitize};
use crate::plan::text::num;
use crate::plan::GroupPlan;
use crate::policy::{GroupEvaluation, PolicyEvaluation};

pub fn run(ctx: &super::Ctx, args: &crate::cli::RunArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load()?;
    super::rename_group::check_orphans(&ctx.config, &state)?;
    let api = ctx.api()?;
    let env = ctx.env(api.as_ref());
    let result = crate::pipeline::pass(&env, &mut state, Some(&store), args.dry_run, args.force)
        .map(|p| (p.evaluations, p.plans, p.reports));
    let (evals, plans, reports) = match result {
        Ok(r) => r,
        Err(e) => {
            let secs = 0.0;
            crate::textfile::write(ctx.whole_config(), &state, secs, api.error_count(), false);
            return Err(e);
        }
    };
    super::write_textfile(ctx, &state, api.as_ref());
    if ctx.json {
        output::print(&format!(
            "{}\n",
            json!({
                "at": Utc::now().to_rfc3339(),
                "dry_run": args.dry_run,
                "scrape": super::scrape::render_json(ctx, &state),
                "evaluate": super::evaluate::render_json(&evals),
                "plan": super::plan::render_json(&plans),
                "apply": super::apply::render_json(&reports, args.dry_run),
            })
        ));
        let failed = reports.iter().any(|r| !r.errors.is_empty());
        if failed {
            return Err(ExitCode(1).into());
        }
    } else if args.tables || ctx.verbose {
        output::print(&super::evaluate::render_table(&evals, &ctx.style));
        output::print(&super::plan::render_table(&plans, &ctx.style));
        output::print(&super::apply::render_text(&reports, args.dry_run));
        super::apply::report_errors(&reports)?;
    } else {
        output::print(&render_summary(&evals, &plans, &reports, args.dry_run));
        super::apply::report_errors(&reports)?;
    }
    if args.detailed_exitcode && plans.iter().any(crate::plan::GroupPlan::changes) {
        return Err(ExitCode(3).into());
    }
    Ok(())
}

/// One line per group: size, desired size, the action and why, e.g.
/// `web: size 4, desired 5, create 1 (policy loadavg: load1 mean 2.3 >= 2)`, then what apply
/// did (`: 1 created`); a dry run lists the requests it would send on indented lines.
pub fn render_summary(
    evals: &[GroupEvaluation],
    plans: &[GroupPlan],
    reports: &[GroupReport],
    dry_run: bool,
) -> String {
    let mut out = String::new();
    for p in plans {
        let e = evals.iter().find(|e| e.name == p.name);
        let r = reports.iter().find(|r| r.name == p.name);
        let mut action = Vec::new();
        if !p.create.is_empty() {
            action.push(format!("create {}", p.create.len()));
        }
        if !p.destroy.is_empty() {
            action.push(format!("destroy {}", p.destroy.len()));
        }
        if action.is_empty() {
            action.push("no change".into());
        }
        let mut line = format!(
            "{}: size {}, desired {}, {}",
            sanitize(&p.name),
            p.current,
            p.desired,
            action.join(", ")
        );
        let why = why(e, p);
        if !why.is_empty() {
            line.push_str(&format!(" ({})", why.join("; ")));
        }
        if let Some(why) = r.and_then(|r| r.skipped.as_deref()) {
            // A paused group: apply sent nothing, and says why.
            line.push_str(&format!(": {}", sanitize(why)));
        } else if let Some(r) = r {
            let mut done = Vec::new();
            if dry_run {
                if !r.requests.is_empty() {
                    done.push(format!(
                        "dry run, {} request(s) would be sent",
                        r.requests.len()
                    ));
                }
            } else {
                if !r.created.is_empty() || !p.create.is_empty() {
                    done.push(format!("{} created", r.created.len()));
                }
                if !r.destroyed.is_empty() || !p.destroy.is_empty() {
                    done.push(format!("{} destroyed", r.destroyed.len()));
                }
            }
            if !r.pending.is_empty() {
                done.push(format!("{} pending", r.pending.len()));
            }
            if !r.errors.is_empty() {
                done.push(format!("{} error(s), logged", r.errors.len()));
            }
            if !done.is_empty() {
                line.push_str(&format!(": {}", done.join(", ")));
            }
        }
        out.push_str(&line);
        out.push('\n');
        if dry_run {
            for q in r.map(|r| r.requests.as_slice()).unwrap_or_default() {
                if q.body.is_null() {
                    out.push_str(&format!("  {} {}\n", q.method, q.path));
                } else {
                    out.push_str(&format!("  {} {} {}\n", q.method, q.path, q.body));
                }
            }
        }
    }
    out
}

/// What decided the plan, shortest first: the step policy that fired (its conditions that
/// hold), the target, then every rule that moved or held the recommendation (cooldown,
/// bounds, step limits, pending, missing data) as the planner wrote it.
fn why(e: Option<&GroupEvaluation>, p: &GroupPlan) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(e) = e {
        let fired = |up: bool| -> Option<&PolicyEvaluation> {
            // The largest step wins; the first one on a tie (as the planner decides).
            e.policies
                .iter()
                .filter(|q| q.satisfied && (q.scale == crate::config::Scale::Up) == up)
                .fold(None, |best: Option<&PolicyEvaluation>, q| match best {
                    Some(b) if b.step >= q.step => Some(b),
                    _ => Some(q),
                })
        };
        match fired(true).or_else(|| fired(false)) {
            Some(pol) => {
                let conds: Vec<String> = pol
                    .conditions
                    .iter()
                    .filter(|c| c.satisfied)
                    .map(|c| {
                        format!(
                            "{} {} {} {} {}",
                            sanitize(&c.name),
                            c.function,
                            c.value.map(num).unwrap_or_else(|| "no data".into()),
                            c.op,
                            num(c.threshold)
                        )
                    })
                    .collect();
                why.push(format!(
                    "policy {}: {}",
                    sanitize(&pol.name),
                    conds.join(", ")
                ));
            }
            None if !e.policies.is_empty() => why.push("no policy satisfied".into()),
            None => {}
        }
        if let Some(t) = &e.target {
            why.push(match t.aggregate {
                Some(a) => format!(
                    "target: {} {} for {} → {}",
                    t.function,
                    num(a),
                    num(t.value),
                    t.recommended
                ),
                None => "target: no data".into(),
            });
        }
    }
    // The planner's own lines for the verdicts above are left out: they say the same at length.
    const VERDICTS: [&str; 5] = [
        "policy:",
        "no policy satisfied:",
        "target:",
        "largest step:",
        "scale-up beats scale-down:",
    ];
    why.extend(
        p.reasons
            .iter()
            .filter(|r| !VERDICTS.iter().any(|v| r.starts_with(v)))
            .map(|r| sanitize(r)),
    );
    why
}
