//! `doscale run`: scrape, evaluate, plan and apply in one process under one lock — one
//! consistent pass for the simple timer.

use chrono::Utc;
use color_eyre::Result;
use serde_json::json;

use crate::error::ExitCode;
use crate::output;

pub fn run(ctx: &super::Ctx, args: &crate::cli::RunArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load()?;
    super::rename_group::check_orphans(&ctx.config, &state)?;
    let api = ctx.api()?;
    let result = (|| -> Result<_> {
        super::scrape::stage(ctx, api.as_ref(), &mut state, false)?;
        store.save(&state)?;
        let evals = super::evaluate::stage(ctx, &mut state)?;
        store.save(&state)?;
        let plans = super::plan::stage(ctx, &mut state)?;
        store.save(&state)?;
        let reports = super::apply::stage(ctx, api.as_ref(), &mut state, &store, args.dry_run)?;
        Ok((evals, plans, reports))
    })();
    let (evals, plans, reports) = match result {
        Ok(r) => r,
        Err(e) => {
            let secs = 0.0;
            crate::textfile::write(&ctx.config, &state, secs, api.error_count(), false);
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
    } else {
        output::print(&super::evaluate::render_table(&evals));
        output::print(&super::plan::render_table(&plans));
        let ctx_text = super::Ctx {
            config: ctx.config.clone(),
            json: false,
            wait: ctx.wait,
        };
        super::apply::finish(&ctx_text, &reports, args.dry_run)?;
    }
    if args.detailed_exitcode && plans.iter().any(crate::plan::GroupPlan::changes) {
        return Err(ExitCode(3).into());
    }
    Ok(())
}
