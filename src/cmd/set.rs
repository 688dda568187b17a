//! `doscale set GROUP N`: a one-off desired size set by hand, like `kubectl scale`. Recorded
//! in the state file (under its lock, no network); the next plan takes N instead of the
//! policies' recommendation — not held by cooldowns, stabilization, min_reporting or step
//! limits, still held by pending operations (DESIGN.md §3.6), a pause, and a scrape older
//! than apply's last changes — and applying that plan consumes the request. The creates and
//! destroys it causes are scale actions in the history like any other: cooldowns count from
//! them.

use chrono::Utc;
use color_eyre::Result;
use serde_json::json;

use super::pause::who;
use crate::error::UsageError;
use crate::model::ManualSize;
use crate::output::{self, sanitize};
use crate::units::instant as at;

pub fn run(ctx: &super::Ctx, args: &crate::cli::SetArgs) -> Result<()> {
    let group = ctx.group(&args.group)?;
    let name = sanitize(&group.name);
    if args.size < group.min || args.size > group.max {
        return Err(UsageError(format!(
            "group {name}: size {} is outside its bounds, min {} and max {} (in {}): set a size within them, or change the bounds",
            args.size,
            group.min,
            group.max,
            ctx.config.path.display()
        ))
        .into());
    }
    let store = ctx.store()?;
    let mut state = store.load_latest(&[])?;
    let gs = state.group_mut(&group.name);
    let m = ManualSize {
        desired: args.size,
        at: Utc::now(),
        by: who(),
    };
    let replaced = gs.manual.replace(m.clone());
    // A plan made before this request does not carry it out: `apply` must not act on it.
    let dropped = gs.plan.take_if(|p| p.applied_at.is_none()).is_some();
    let paused = gs.paused.clone();
    store.save(&state)?;
    if ctx.json {
        output::print(&format!(
            "{}\n",
            json!({"group": group.name, "set": m, "replaced": replaced, "plan_dropped": dropped, "paused": paused})
        ));
    } else {
        let mut out = format!(
            "group {name}: desired size {} set at {}; the next plan takes it (not held by cooldowns or step limits), `doscale apply` carries it out, then the policies rule again\n",
            m.desired,
            at(m.at)
        );
        if let Some(r) = replaced {
            out.push_str(&format!(
                "  it replaces the size {} set at {}\n",
                r.desired,
                at(r.at)
            ));
        }
        if dropped {
            out.push_str("  the stored plan, made before, was dropped: run `doscale plan`\n");
        }
        if let Some(p) = paused {
            out.push_str(&format!(
                "  the group is paused (since {}): nothing happens until `doscale resume {name}`\n",
                at(p.since)
            ));
        }
        output::print(&out);
    }
    Ok(())
}
