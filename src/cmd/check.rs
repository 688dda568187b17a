//! `doscale check`: validates the configuration offline and opens every file it names.
//!
//! Errors (exit 2): what loading refuses (the first one, with file:line:column and key), a
//! `user_data_file` that cannot be read (droplets could not be created), a hook program that
//! is not there or not executable. Warnings, errors with `--strict`: a metric name do-agent
//! does not serve and `extra_metrics` does not list, a token source that is set but cannot be
//! used. A missing token source stays a warning even with `--strict`: configurations are
//! checked on build machines, and the service gets its token as a systemd credential that a
//! shell does not see.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use color_eyre::Result;

use crate::cli::CheckArgs;
use crate::config::{FileKind, NamedFile};
use crate::error::UsageError;

pub use crate::config::USER_DATA_MAX;

/// What `check` found: errors fail it, warnings are printed.
#[derive(Debug, Default)]
struct Findings {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    /// A warning, or an error under `--strict`.
    fn warn(&mut self, strict: bool, msg: String) {
        if strict {
            self.errors.push(msg);
        } else {
            self.warnings.push(msg);
        }
    }
}

pub fn run(ctx: &super::Ctx, args: &CheckArgs) -> Result<()> {
    let c = &ctx.config;
    let mut found = Findings::default();
    for w in &c.warnings {
        found.warn(args.strict, w.to_string());
    }
    for f in &c.files {
        check_file(f, args.strict, &mut found);
    }
    check_token_sources(c, args.strict, &mut found);
    for w in &found.warnings {
        tracing::warn!("{w}");
    }
    for g in &c.groups {
        if g.template.is_none() {
            tracing::info!(
                "group {}: no [group.template]: it can shrink but never grow",
                g.name
            );
        }
    }
    let ok = found.errors.is_empty();
    if ctx.json {
        let groups: Vec<_> = c.groups.iter().map(|g| {
            let mut v = serde_json::json!({"name": g.name, "tag": g.tag, "min": g.min, "max": g.max, "policies": g.policies.len(), "target": g.target.is_some()});
            if let crate::config::Source::DigitalOcean(d) = &g.metrics.source {
                v["monitoring_requests_per_droplet"] = crate::sources::digitalocean::needs(g, false).len().into();
                v["monitoring_cost"] = crate::sources::digitalocean::cost_line(g, d).into();
            }
            v
        }).collect();
        crate::output::print(&format!(
            "{}\n",
            serde_json::json!({"config": c.path, "ok": ok, "strict": args.strict, "groups": groups,
                "warnings": found.warnings, "errors": found.errors})
        ));
    } else if ok {
        let names: Vec<_> = c
            .groups
            .iter()
            .map(|g| format!("{} (tag {}, {}..{})", g.name, g.tag, g.min, g.max))
            .collect();
        let warned = match found.warnings.len() {
            0 => String::new(),
            1 => " (1 warning above)".to_string(),
            n => format!(" ({n} warnings above)"),
        };
        crate::output::print(&format!(
            "{}: ok — {} group(s): {}{warned}\n",
            c.path.display(),
            c.groups.len(),
            names.join(", ")
        ));
        // What a pass costs in API requests, for groups on the monitoring API.
        for g in &c.groups {
            if let crate::config::Source::DigitalOcean(d) = &g.metrics.source {
                crate::output::print(&format!(
                    "{}\n",
                    crate::sources::digitalocean::cost_line(g, d)
                ));
            }
        }
    }
    if ok {
        return Ok(());
    }
    let n = found.errors.len();
    Err(UsageError(format!(
        "{}: {n} problem{} found{}:\n  {}",
        c.path.display(),
        if n == 1 { "" } else { "s" },
        if args.strict { " (--strict)" } else { "" },
        found.errors.join("\n  ")
    ))
    .into())
}

/// Opens a file the configuration names, as the command that needs it will.
fn check_file(f: &NamedFile, strict: bool, found: &mut Findings) {
    let place = |msg: String| {
        let mut p = f.place.clone();
        p.msg = msg;
        p.to_string()
    };
    let path = f.path.display();
    match f.kind {
        FileKind::TokenFile => {
            if let Err(reason) = crate::secret::read_token_file(&f.path) {
                found.warn(strict, place(format!(
                    "token_file is set but {path} cannot be used: {reason}; commands that call the API will fail unless $DIGITALOCEAN_TOKEN or the systemd credential gives a token"
                )));
            }
        }
        FileKind::UserData => match crate::secret::read_regular_file(&f.path, USER_DATA_MAX) {
            Err(reason) => found.errors.push(place(format!(
                "{path}: {reason}: droplets of this group could not be created"
            ))),
            Ok((bytes, _)) if std::str::from_utf8(&bytes).is_err() => found.errors.push(place(
                format!("{path} is not UTF-8 text: DigitalOcean takes user data as text"),
            )),
            Ok(_) => {}
        },
        FileKind::HookProgram => {
            if let Some(msg) = hook_program_problem(&f.path) {
                found.errors.push(place(msg));
            }
        }
        FileKind::PrometheusSecret => {
            if let Err(reason) = crate::sources::prometheus::read_credential(&f.path) {
                found.errors.push(place(format!(
                    "{reason}: every scrape of this group would find no data"
                )));
            }
        }
        FileKind::CaFile => {
            let certs =
                crate::secret::read_regular_file(&f.path, 4 * 1024 * 1024).and_then(|(pem, _)| {
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
                });
            match certs {
                Err(reason) => found.errors.push(place(format!(
                    "{path}: {reason}: every scrape of this group would find no data"
                ))),
                Ok(c) if c.is_empty() => found.errors.push(place(format!(
                    "{path} holds no PEM certificate: every scrape of this group would find no data"
                ))),
                Ok(_) => {}
            }
        }
    }
}

/// Why a hook program could not be started, as `Command::new` would look for it: a path
/// (with a `/`) as it is, a bare name on `PATH`.
fn hook_program_problem(program: &Path) -> Option<String> {
    let text = program.to_string_lossy();
    if text.contains('{') {
        // `{id}` and the like are substituted when the hook runs: nothing to look at now.
        return None;
    }
    if !text.contains('/') {
        return match which::which(program) {
            Ok(_) => None,
            Err(_) => Some(format!(
                "hook program `{text}` is not found on PATH ({}): give its absolute path",
                std::env::var("PATH").unwrap_or_default()
            )),
        };
    }
    if program.is_relative() {
        return Some(format!(
            "hook program {text} is relative to the working directory of the run (/ under systemd): give its absolute path"
        ));
    }
    match std::fs::metadata(program) {
        Err(e) => Some(format!("hook program {text}: {e}")),
        Ok(md) if !md.is_file() => Some(format!("hook program {text} is not a regular file")),
        Ok(md) if md.permissions().mode() & 0o111 == 0 => Some(format!(
            "hook program {text} is not executable: chmod +x it"
        )),
        Ok(_) => None,
    }
}

/// Which token source the API commands would use; `token_file` itself is opened by
/// `check_file` (so that it is looked at even when a variable wins).
fn check_token_sources(c: &crate::config::Config, strict: bool, found: &mut Findings) {
    let lookup = crate::secret::token_lookup(c.api.token_file.as_deref());
    for p in &lookup.problems {
        if p.source != "[api] token_file" {
            found.warn(strict, p.to_string());
        }
    }
    match &lookup.token {
        Some((_, source)) => tracing::info!("the API token would come from {source}"),
        None if c.api.token_file.is_none() && lookup.problems.is_empty() => found.warnings.push(
            "no API token source is set ($DIGITALOCEAN_TOKEN, $DIGITALOCEAN_ACCESS_TOKEN, [api] token_file, or the systemd credential digitalocean-token): commands that call the API will refuse to run".to_string(),
        ),
        None => {}
    }
}
