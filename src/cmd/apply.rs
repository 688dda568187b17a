//! `doscale apply`: carries out the stored plan (refusing a missing, stale or already applied
//! one), or with `--dry-run` prints exactly the requests it would send and changes nothing.

use chrono::Utc;
use color_eyre::Result;
use serde_json::json;

use crate::apply::GroupReport;
use crate::error::ExitCode;
use crate::output::{self, sanitize};

pub fn run(ctx: &super::Ctx, args: &crate::cli::ApplyArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load_latest(&[])?;
    super::rename_group::check_orphans(&ctx.config, &state)?;
    let api = ctx.api()?;
    let reports = crate::pipeline::apply(
        &ctx.env(api.as_ref()),
        &mut state,
        Some(&store),
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
