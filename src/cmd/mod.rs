//! One file per subcommand, each with one entry point; this module dispatches and maps
//! errors to exit codes (0 done, 1 runtime error, 2 usage or configuration error, 3 plan
//! changes something under `--detailed-exitcode`).

pub mod apply;
pub mod backtest;
pub mod check;
pub mod completions;
pub mod demo;
pub mod evaluate;
pub mod import_seed;
pub mod pause;
pub mod plan;
pub mod rename_group;
pub mod run;
pub mod scrape;
pub mod set;
pub mod sim;
pub mod status;
#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::Result;

use crate::cli::{Cli, Command, Global};
use crate::config::{self, Config};
use crate::error::{exit_code_of, ConfigError, ExitCode, UsageError};
use crate::state::Store;

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Writes the metrics textfile (if configured) for a pass that got this far.
pub fn write_textfile(ctx: &Ctx, state: &crate::state::State, api: &dyn crate::do_api::DoApi) {
    let secs = STARTED
        .get()
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    crate::textfile::write(ctx.whole_config(), state, secs, api.error_count(), true);
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
            crate::logging::eprint(
                crate::logging::ERR,
                &format!("error: {}", render_error(&report)),
            );
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
    let theme = if std::io::stderr().is_terminal() && !crate::output::no_color() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_env_section(false)
        .into_hooks();
    let _ = eyre_hook.install();
    if crate::logging::journald() {
        // Each line of a panic report carries its priority too.
        std::panic::set_hook(Box::new(move |info| {
            crate::logging::eprint(
                crate::logging::CRIT,
                &panic_hook.panic_report(info).to_string(),
            )
        }));
    } else {
        panic_hook.install();
    }
}

fn dispatch(cli: &Cli) -> Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Scrape(a) => scrape::run(&Ctx::load(g)?.select(&a.select)?, a),
        Command::Evaluate(a) => evaluate::run(&Ctx::load(g)?.select(&a.select)?),
        Command::Plan(a) => plan::run(&Ctx::load(g)?.select(&a.select)?, a),
        Command::Apply(a) => apply::run(&Ctx::load(g)?.select(&a.select)?, a),
        Command::Run(a) => run::run(&Ctx::load(g)?.select(&a.select)?, a),
        Command::Demo(a) => demo::run(g, a),
        Command::Sim(a) => sim::run(a),
        Command::Backtest(a) => backtest::run(g, a),
        Command::Check(a) => check::run(&Ctx::load(g)?, a),
        Command::Status(a) => status::run(&Ctx::load(g)?.select(&a.select)?),
        Command::Pause(a) => pause::pause(&Ctx::load(g)?, a),
        Command::Resume(a) => pause::resume(&Ctx::load(g)?, a),
        Command::Set(a) => set::run(&Ctx::load(g)?, a),
        Command::RenameGroup(a) => rename_group::run(&Ctx::load(g)?, a),
        Command::ImportSeed(a) => import_seed::run(a),
        Command::Completions(a) => completions::run(a),
    }
}

/// What every configured command needs: the validated config and the global flags.
pub struct Ctx {
    /// The config, its groups narrowed to those `--group` selected.
    pub config: Config,
    pub json: bool,
    pub wait: Option<Duration>,
    /// The whole config when `--group` narrowed `config` (the metrics textfile still
    /// describes every group).
    pub all: Option<Box<Config>>,
    /// How tables look (colour, width, headers, `-o wide`).
    pub style: crate::output::Style,
    /// `-v` given (`run` then prints the tables).
    pub verbose: bool,
}

/// How long `--wait` waits for the state lock when `--wait-for` does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// The lock wait of `--wait` / `--wait-for DURATION` (the latter wins).
pub fn wait_of(g: &Global) -> Result<Option<Duration>> {
    match &g.wait_for {
        Some(s) => Ok(Some(config::parse_duration(s).map_err(|m| {
            UsageError(format!("--wait-for {}: {m}", crate::output::sanitize(s)))
        })?)),
        None => Ok(g.wait.then_some(DEFAULT_WAIT)),
    }
}

/// Where the configuration comes from: `--config`, `$DOSCALE_CONFIG`, the default path.
pub fn config_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("DOSCALE_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(config::DEFAULT_PATH)
}

/// The one `--config` of a command that takes one (`backtest` alone compares several).
pub fn one_config(g: &Global) -> Result<Option<&Path>, UsageError> {
    match g.config.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.as_path())),
        several => Err(UsageError(format!(
            "--config is given {} times: only `doscale backtest` compares several configurations",
            several.len()
        ))),
    }
}

/// What the configuration takes from this process's environment.
pub fn process_env() -> config::Env {
    config::Env {
        state_directory: std::env::var_os("STATE_DIRECTORY"),
    }
}

/// Reads the file at `path` and validates it with this process's environment.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        key: String::new(),
        msg: format!(
            "cannot read the configuration: {e} (pass --config PATH or set DOSCALE_CONFIG)"
        ),
    })?;
    config::parse(path, &text, &process_env())
}

impl Ctx {
    pub fn load(g: &Global) -> Result<Ctx> {
        let wait = wait_of(g)?;
        let path = config_path(one_config(g)?);
        let config = load_config(&path)?;
        Ok(Ctx {
            config,
            json: g.output == crate::cli::Output::Json,
            wait,
            style: crate::output::Style::detect(
                !g.no_headers,
                g.output == crate::cli::Output::Wide,
            ),
            verbose: g.verbose > 0,
            all: None,
        })
    }

    /// Narrows the groups to those named by `--group` (each once, in config order); an
    /// unknown name is a usage error naming the configured groups. No name: every group.
    pub fn select(mut self, select: &crate::cli::GroupSelect) -> Result<Ctx> {
        if select.groups.is_empty() {
            return Ok(self);
        }
        for name in &select.groups {
            self.group(name)?;
        }
        let whole = self.config.clone();
        self.config
            .groups
            .retain(|g| select.groups.iter().any(|n| n == &g.name));
        self.all = Some(Box::new(whole));
        Ok(self)
    }

    /// The configured group `name`; an unknown name is a usage error (exit 2) naming the
    /// configured groups.
    pub fn group(&self, name: &str) -> Result<&config::Group> {
        let groups = &self.whole_config().groups;
        groups.iter().find(|g| g.name == name).ok_or_else(|| {
            UsageError(format!(
                "there is no group {:?} in {}: the configured groups are {}",
                crate::output::sanitize(name),
                self.whole_config().path.display(),
                groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()
        })
    }

    /// The config with every group, whatever `--group` selected.
    pub fn whole_config(&self) -> &Config {
        self.all.as_deref().unwrap_or(&self.config)
    }

    /// The API client (needs a token).
    pub fn api(&self) -> Result<Box<dyn crate::do_api::DoApi>> {
        let token = crate::secret::require_token(self.config.api.token_file.as_deref())?;
        Ok(Box::new(crate::do_api::HttpApi::new(
            &self.config.api.url,
            token,
            self.config.api.timeout,
        )?))
    }

    /// The pipeline's environment for this command: the wall clock, the configured metric
    /// sources, randomness from the OS.
    pub fn env<'a>(&'a self, api: &'a dyn crate::do_api::DoApi) -> crate::pipeline::Env<'a> {
        crate::pipeline::Env::new(
            &self.config,
            &crate::clock::SystemClock,
            api,
            &crate::sources::Configured,
        )
    }

    /// The state file, locked for the rest of the command.
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.config.state_file, self.wait)
    }
}
