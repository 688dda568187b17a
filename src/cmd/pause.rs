//! `doscale pause GROUP` / `doscale resume GROUP`: take the autoscaler's hand off one group
//! and give it back. A paused group is still scraped and evaluated; its plans change nothing
//! and `apply` sends nothing for it (not even to repair its bounds, nor to finish operations
//! left pending) until it is resumed. Recorded in the state file, under its lock; no network.

use chrono::Utc;
use color_eyre::Result;
use serde_json::json;

use crate::clean::by;
use crate::model::Paused;
use crate::output::{self, sanitize};
use crate::units::instant as at;

pub fn pause(ctx: &super::Ctx, args: &crate::cli::GroupArg) -> Result<()> {
    let group = ctx.group(&args.group)?;
    let store = ctx.store()?;
    let mut state = store.load_latest(&[])?;
    let gs = state.group_mut(&group.name);
    let (paused, changed) = match &gs.paused {
        Some(p) => (p.clone(), false),
        None => {
            let p = Paused {
                since: Utc::now(),
                by: who(),
            };
            gs.paused = Some(p.clone());
            (p, true)
        }
    };
    if changed {
        store.save(&state)?;
    }
    let name = sanitize(&group.name);
    if ctx.json {
        output::print(&format!(
            "{}\n",
            json!({"group": group.name, "paused": true, "since": paused.since, "by": paused.by, "changed": changed})
        ));
    } else if changed {
        output::print(&format!(
            "group {name} paused: it is still scraped and evaluated, but nothing is created or destroyed in it (not even to keep min and max); `doscale resume {name}` to resume\n"
        ));
    } else {
        output::print(&format!(
            "group {name} was already paused since {}{}; `doscale resume {name}` to resume\n",
            at(paused.since),
            by(paused.by.as_deref())
        ));
    }
    Ok(())
}

pub fn resume(ctx: &super::Ctx, args: &crate::cli::GroupArg) -> Result<()> {
    let group = ctx.group(&args.group)?;
    let store = ctx.store()?;
    let mut state = store.load_latest(&[])?;
    let gs = state.group_mut(&group.name);
    let was = gs.paused.take();
    if was.is_some() {
        store.save(&state)?;
    }
    let name = sanitize(&group.name);
    if ctx.json {
        output::print(&format!(
            "{}\n",
            json!({"group": group.name, "paused": false, "was_paused_since": was.as_ref().map(|p| p.since), "changed": was.is_some()})
        ));
    } else {
        match was {
            Some(p) => output::print(&format!(
                "group {name} resumed (paused since {}{}): its policies rule again from the next plan\n",
                at(p.since),
                by(p.by.as_deref())
            )),
            None => output::print(&format!("group {name} was not paused\n")),
        }
    }
    Ok(())
}

/// Who runs this command, as far as the environment says: `$SUDO_USER` (a person behind
/// sudo), else `$USER` / `$LOGNAME`. Shown in status and plan reasons; never trusted.
pub fn who() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| sanitize(v.trim()).chars().take(64).collect::<String>())
        .find(|v| !v.is_empty())
}
