//! `doscale rename-group OLD NEW`: carries a group's state (history, pending operations,
//! scrapes, evaluation, plan, recommendations — and with the history its cooldowns) over to
//! the group's new name, under the state lock, without touching the network. Also the check
//! every deciding command makes: a group in the state that the configuration no longer names
//! is refused while it has operations pending (they would be orphaned, and the renamed group
//! would create again what is already on its way), and warned about otherwise.

use color_eyre::Result;

use crate::config::Config;
use crate::error::UsageError;
use crate::model::PendingKind;
use crate::output::sanitize;
use crate::state::State;

pub fn run(ctx: &super::Ctx, args: &crate::cli::RenameGroupArgs) -> Result<()> {
    let (old, new) = (&args.old, &args.new);
    let file = ctx.config.state_file.display();
    if old == new {
        return Err(UsageError(format!("rename-group: OLD and NEW are the same ({old:?})")).into());
    }
    if !ctx.config.groups.iter().any(|g| &g.name == new) {
        return Err(UsageError(format!(
            "rename-group: group {:?} is not in the configuration {}: rename the [[group]] there first, then carry its state over",
            sanitize(new),
            ctx.config.path.display()
        ))
        .into());
    }
    let store = ctx.store()?;
    let mut state = store.load()?;
    let Some(mut gs) = state.groups.remove(old) else {
        let known: Vec<String> = state.groups.keys().map(|k| sanitize(k)).collect();
        return Err(UsageError(format!(
            "rename-group: the state file {file} holds no group {:?} (it holds: {})",
            sanitize(old),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    if let Some(there) = state.groups.get(new) {
        if !there.history.is_empty() || !there.pending.is_empty() {
            return Err(UsageError(format!(
                "rename-group: group {:?} already has a history or pending operations in {file}: nothing was changed (merging two groups' state is not supported)",
                sanitize(new)
            ))
            .into());
        }
    }
    if let Some(p) = gs.plan.as_mut() {
        p.name = new.clone();
    }
    if let Some(e) = gs.evaluation.as_mut() {
        e.name = new.clone();
    }
    let (history, pending) = (gs.history.len(), gs.pending.len());
    state.groups.insert(new.clone(), gs);
    store.save(&state)?;
    crate::output::print(&format!(
        "group {} is now {} in {file}: carried over {} and {} (cooldowns count from that history)\n",
        sanitize(old),
        sanitize(new),
        count(history, "history entry", "history entries"),
        count(pending, "pending operation", "pending operations"),
    ));
    Ok(())
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Groups in the state that the configuration does not name: refused (exit 2) while one has
/// operations pending, a warning while it has a history.
pub fn check_orphans(config: &Config, state: &State) -> Result<()> {
    for (name, gs) in &state.groups {
        if config.groups.iter().any(|g| &g.name == name) {
            continue;
        }
        if !gs.pending.is_empty() {
            let ops: Vec<String> = gs
                .pending
                .iter()
                .map(|p| {
                    let kind = match p.kind {
                        PendingKind::Create => "create",
                        PendingKind::Destroy => "destroy",
                    };
                    format!("{kind} {}", sanitize(&p.name))
                })
                .collect();
            return Err(UsageError(format!(
                "the state file {} holds group {:?} with {} pending ({}), but the configuration {} has no such group (renamed?): nothing was done, as its pending operations would be orphaned and created again. If it was renamed, carry its state over with `doscale rename-group {} NEW`; otherwise put it back until its operations settle",
                config.state_file.display(),
                sanitize(name),
                count(ops.len(), "operation", "operations"),
                ops.join(", "),
                config.path.display(),
                sanitize(name)
            ))
            .into());
        }
        if !gs.history.is_empty() {
            tracing::warn!(
                "the state file {} holds the history of group {:?}, which the configuration has no longer: its history and cooldowns are not carried over to any group (if it was renamed: `doscale rename-group {} NEW`)",
                config.state_file.display(),
                sanitize(name),
                sanitize(name)
            );
        }
    }
    Ok(())
}
