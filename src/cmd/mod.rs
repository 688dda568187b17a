//! One file per subcommand, each with one entry point; this module dispatches and maps
//! errors to exit codes (0 done, 1 runtime error, 2 usage or configuration error, 3 plan
//! changes something under `--detailed-exitcode`).

pub mod apply;
pub mod check;
pub mod completions;
pub mod demo;
pub mod evaluate;
pub mod import_seed;
pub mod plan;
pub mod rename_group;
pub mod run;
pub mod scrape;
pub mod sim;
pub mod status;

use std::io::IsTerminal;
use std::time::Duration;

use color_eyre::Result;

use crate::cli::{Cli, Command, Global};
use crate::config::{self, Config};
use crate::error::{exit_code_of, ExitCode, UsageError};
use crate::state::Store;

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Writes the metrics textfile (if configured) for a pass that got this far.
pub fn write_textfile(ctx: &Ctx, state: &crate::state::State, api: &dyn crate::do_api::DoApi) {
    let secs = STARTED
        .get()
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    crate::textfile::write(&ctx.config, state, secs, api.error_count(), true);
}

/// Runs the command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    STARTED.get_or_init(std::time::Instant::now);
    install_error_theme();
    crate::logging::init(cli.global.verbose, cli.global.quiet);
    let result = dispatch(&cli);
    match result {
        Ok(()) => 0,
        Err(report) => {
            if let Some(ExitCode(code)) = report.downcast_ref::<ExitCode>() {
                return *code;
            }
            let code = exit_code_of(&report);
            eprintln!("error: {}", render_error(&report));
            code
        }
    }
}

fn render_error(report: &color_eyre::Report) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in report.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    crate::output::sanitize_multiline(&parts.join(": "))
}

fn install_error_theme() {
    // color-eyre ignores NO_COLOR and pipes: only colour a terminal.
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let _ = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_env_section(false)
        .install();
}

fn dispatch(cli: &Cli) -> Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Scrape(a) => scrape::run(&Ctx::load(g)?, a),
        Command::Evaluate => evaluate::run(&Ctx::load(g)?),
        Command::Plan(a) => plan::run(&Ctx::load(g)?, a),
        Command::Apply(a) => apply::run(&Ctx::load(g)?, a),
        Command::Run(a) => run::run(&Ctx::load(g)?, a),
        Command::Demo(a) => demo::run(g, a),
        Command::Sim(a) => sim::run(a),
        Command::Check => check::run(&Ctx::load(g)?),
        Command::Status => status::run(&Ctx::load(g)?),
        Command::RenameGroup(a) => rename_group::run(&Ctx::load(g)?, a),
        Command::ImportSeed(a) => import_seed::run(a),
        Command::Completions(a) => completions::run(a),
    }
}

/// What every configured command needs: the validated config and the global flags.
pub struct Ctx {
    pub config: Config,
    pub json: bool,
    pub wait: Option<Duration>,
}

impl Ctx {
    pub fn load(g: &Global) -> Result<Ctx> {
        let path = config::locate(g.config.as_deref());
        let config = config::load(&path)?;
        let wait = match &g.wait {
            Some(s) => {
                Some(config::parse_duration(s).map_err(|m| UsageError(format!("--wait: {m}")))?)
            }
            None => None,
        };
        Ok(Ctx {
            config,
            json: g.output == crate::cli::Output::Json,
            wait,
        })
    }

    /// The API client (needs a token).
    pub fn api(&self) -> Result<Box<dyn crate::do_api::DoApi>> {
        let token = config::require_token(&self.config.api)?;
        Ok(Box::new(crate::do_api::HttpApi::new(
            &self.config.api.url,
            token,
            self.config.api.timeout,
        )?))
    }

    /// The state file, locked for the rest of the command.
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.config.state_file, self.wait)
    }
}
