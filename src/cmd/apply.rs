//! `doscale apply`: carries out the stored plan (refusing a missing, stale or already applied
//! one), or with `--dry-run` prints exactly the requests it would send and changes nothing.

use chrono::Utc;
use color_eyre::eyre::{bail, WrapErr};
use color_eyre::Result;
use serde_json::json;

use crate::apply::{self, GroupReport, Saver};
use crate::do_api::DoApi;
use crate::error::ExitCode;
use crate::output::{self, sanitize};
use crate::state::{Reading, State, Store};

pub fn run(ctx: &super::Ctx, args: &crate::cli::ApplyArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load_with(Reading::latest(&[]))?;
    super::rename_group::check_orphans(&ctx.config, &state)?;
    let api = ctx.api()?;
    let reports = stage(
        ctx,
        api.as_ref(),
        &mut state,
        &store,
        args.dry_run,
        args.force,
    )?;
    super::write_textfile(ctx, &state, api.as_ref());
    finish(ctx, &reports, args.dry_run)
}

/// Prints the reports; exit 1 when something failed.
pub fn finish(ctx: &super::Ctx, reports: &[GroupReport], dry_run: bool) -> Result<()> {
    if ctx.json {
        output::print(&format!("{}\n", render_json(reports, dry_run)));
    } else {
        output::print(&render_text(reports, dry_run));
    }
    report_errors(reports)
}

/// Logs every error of the reports; exit 1 when there is one.
pub fn report_errors(reports: &[GroupReport]) -> Result<()> {
    let errors: Vec<&String> = reports.iter().flat_map(|r| &r.errors).collect();
    for e in &errors {
        tracing::error!("{}", sanitize(e));
    }
    if !errors.is_empty() {
        return Err(ExitCode(1).into());
    }
    Ok(())
}

/// Applies every group's stored plan; `force` lifts the `max_destroy_share` guard.
pub fn stage(
    ctx: &super::Ctx,
    api: &dyn DoApi,
    state: &mut State,
    store: &Store,
    dry_run: bool,
    force: bool,
) -> Result<Vec<GroupReport>> {
    let now = Utc::now();
    // Check every group's plan before touching anything.
    let mut plans = Vec::new();
    let mut reports = Vec::new();
    for g in &ctx.config.groups {
        let gs = state.group_mut(&g.name);
        if let Some(p) = &gs.paused {
            // Nothing is sent for a paused group, whatever its stored plan says (made before
            // the pause, say), and its pending operations wait too.
            reports.push(GroupReport {
                name: g.name.clone(),
                skipped: Some(format!(
                    "paused since {}{}: nothing sent, `doscale resume {}` to resume",
                    super::pause::at(p.since),
                    super::pause::by(p.by.as_deref()),
                    g.name
                )),
                ..Default::default()
            });
            continue;
        }
        let Some(plan) = gs.plan.clone() else {
            bail!(
                "group {}: there is no plan to apply: run `doscale plan` first (or `doscale run --dry-run` for a whole fresh pass)",
                g.name
            );
        };
        if plan.applied_at.is_some() {
            bail!(
                "group {}: the stored plan was already applied: run `doscale plan` for a new one (or `doscale run`)",
                g.name
            );
        }
        let age = (now - plan.at).to_std().unwrap_or_default();
        if age > ctx.config.plan_max_age {
            bail!(
                "group {}: the plan is {} old, older than plan_max_age ({}): run `doscale plan` again (or `doscale run --dry-run` for a whole fresh pass)",
                g.name,
                output::age(now - plan.at),
                humantime::format_duration(ctx.config.plan_max_age)
            );
        }
        // The hard guard (issue 14.10), whatever made the plan: never more than
        // max_destroy_share of the group destroyed in one pass without --force.
        let allowed = crate::plan::destroy_allowed(plan.current, g.max_destroy_share);
        if plan.destroy.len() as u32 > allowed && !force {
            bail!(
                "group {}: the plan destroys {} of {} droplets, more than max_destroy_share {}% allows in one pass ({allowed}): nothing was sent. Check the plan (`doscale plan`); if it is right, run `doscale apply --force`, or raise max_destroy_share or lower max_step_down",
                g.name,
                plan.destroy.len(),
                plan.current,
                g.max_destroy_share * 100.0
            );
        }
        let listing = api
            .list_all(&g.tag)
            .wrap_err_with(|| format!("listing group {} before applying", g.name))?;
        let mut ids: Vec<u64> = listing.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        if ids != plan.based_on {
            let gone: Vec<String> = plan
                .based_on
                .iter()
                .filter(|i| !ids.contains(i))
                .map(u64::to_string)
                .collect();
            let new: Vec<String> = ids
                .iter()
                .filter(|i| !plan.based_on.contains(i))
                .map(u64::to_string)
                .collect();
            bail!(
                "group {}: the droplets changed since the plan was made (gone: {}; new: {}): run `doscale plan` again (or `doscale run --dry-run` for a whole fresh pass)",
                g.name,
                if gone.is_empty() { "none".into() } else { gone.join(", ") },
                if new.is_empty() { "none".into() } else { new.join(", ") }
            );
        }
        plans.push((g, plan, listing));
    }
    let saver = Saver {
        store: if dry_run { None } else { Some(store) },
    };
    for (g, plan, listing) in plans {
        let rep = apply::apply_group(
            api,
            g,
            &plan,
            state,
            &saver,
            &listing,
            ctx.config.api.consistency,
            dry_run,
        )?;
        if !dry_run {
            let gs = state.group_mut(&g.name);
            if let Some(p) = gs.plan.as_mut() {
                p.applied_at = Some(Utc::now());
            }
            // A `doscale set` is consumed by the plan that carried it out (not by one made
            // before a newer `set`): the policies rule again from the next plan.
            if plan.carries_set.is_some() && gs.manual.as_ref().map(|m| m.at) == plan.carries_set {
                gs.manual = None;
            }
            saver.save(state)?;
        }
        reports.push(rep);
    }
    Ok(reports)
}

pub fn render_text(reports: &[GroupReport], dry_run: bool) -> String {
    let mut out = String::new();
    for r in reports {
        if let Some(why) = &r.skipped {
            out.push_str(&format!("group {}: {}\n", sanitize(&r.name), sanitize(why)));
            continue;
        }
        if dry_run {
            out.push_str(&format!(
                "group {}: dry run, {} request(s) would be sent:\n",
                sanitize(&r.name),
                r.requests.len()
            ));
        } else {
            out.push_str(&format!(
                "group {}: {} created, {} destroyed, {} error(s)\n",
                sanitize(&r.name),
                r.created.len(),
                r.destroyed.len(),
                r.errors.len()
            ));
        }
        for q in &r.requests {
            if q.body.is_null() {
                out.push_str(&format!("  {} {}\n", q.method, q.path));
            } else {
                out.push_str(&format!("  {} {} {}\n", q.method, q.path, q.body));
            }
        }
        for p in &r.pending {
            out.push_str(&format!("  pending: {}\n", sanitize(p)));
        }
        for e in &r.errors {
            out.push_str(&format!("  error: {}\n", sanitize(e)));
        }
    }
    out
}

/// `apply --output json` (docs/design.md §6).
pub fn render_json(reports: &[GroupReport], dry_run: bool) -> serde_json::Value {
    json!({"at": Utc::now().to_rfc3339(), "dry_run": dry_run, "groups": reports})
}
