//! The command line: clap definitions only. Doc comments double as `--help` text, the man
//! page (`man/doscale.1`) and the shell completions are generated from the same source.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps groups of DigitalOcean droplets at the size their load needs.
///
/// A group is every droplet with one tag. doscale scrapes each droplet's do-agent metrics,
/// evaluates the group's policies, plans and applies scaling through the DigitalOcean API.
/// Each subcommand does one pass and keeps its state in a small JSON file; a systemd timer
/// chains them (`scrape`, `evaluate`, `plan`, `apply`, or `run` for all four).
#[derive(Debug, Parser)]
#[command(
    name = "doscale",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file [default: $DOSCALE_CONFIG, then /etc/doscale/doscale.toml].
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Output format: a table for people, JSON for programs.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// If another doscale run holds the state lock, wait for it (up to DURATION, default 10m)
    /// instead of failing at once.
    #[arg(long, global = true, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m")]
    pub wait: Option<String>,

    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors in the log.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List each group's droplets and fetch every active droplet's metrics; store the scrape.
    Scrape(ScrapeArgs),
    /// Compute every condition and policy on the latest scrape; store the evaluation.
    Evaluate,
    /// Turn the evaluation into a plan: the desired size, what to create and destroy, and why.
    Plan(PlanArgs),
    /// Carry out the stored plan through the DigitalOcean API.
    Apply(ApplyArgs),
    /// scrape, evaluate, plan and apply in one process (the simple timer).
    Run(RunArgs),
    /// The whole pipeline against an embedded simulated fleet: zero set-up.
    Demo(DemoArgs),
    /// Serve a simulated DigitalOcean API and fleet on loopback (tests, demos, benchmarks).
    Sim(SimArgs),
    /// Validate the configuration without touching the network.
    Check,
    /// Show per group the size, bounds, last actions, cooldowns and pending droplets.
    Status,
    /// Carry a renamed group's state (history, cooldowns, pending operations) over to its new
    /// name; offline, under the state lock.
    RenameGroup(RenameGroupArgs),
    /// Convert a do-scaler scaler file (conf.d/*.cfg) into a doscale TOML group on stdout.
    ImportSeed(ImportSeedArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ScrapeArgs {
    /// Keep every series of every droplet, not only those the policies and the load table use.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 3 when the plan changes something, 0 when it changes nothing (like terraform plan).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Print exactly the requests apply would send; send no mutating request, change no state.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plan as usual, then print the requests instead of sending them; the state keeps the
    /// scrape, evaluation and plan.
    #[arg(long)]
    pub dry_run: bool,
    /// Exit 3 when the plan changes something.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of rounds (each: set demand, scrape twice, evaluate, plan, apply).
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// Initial droplets in the simulated fleet.
    #[arg(long, default_value_t = 3)]
    pub droplets: u32,
    /// Seconds between the two scrapes of a round (rates need two scrapes).
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
}

#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Initial number of droplets.
    #[arg(long, default_value_t = 3)]
    pub droplets: u32,
    /// Address of the API (port 0 picks a free one; the written config says which).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: String,
    /// Port every droplet serves its metrics on (0 picks a free one).
    #[arg(long, default_value_t = 0, value_name = "P")]
    pub metrics_port: u16,
    /// Delay of every metrics and API response, in milliseconds (the network).
    #[arg(long, default_value_t = 0, value_name = "L")]
    pub latency_ms: u64,
    /// A created droplet turns active and serves metrics this long after its creation.
    #[arg(long, default_value_t = 2000, value_name = "T")]
    pub activate_ms: u64,
    /// Seed for reproducible ids, addresses and load.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Tag of the simulated group.
    #[arg(long, default_value = "web")]
    pub tag: String,
    /// Write a ready doscale config pointing at the simulator (plus a token file and the
    /// state file location beside it).
    #[arg(long, value_name = "PATH")]
    pub config_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenameGroupArgs {
    /// The group's name in the state file (no longer in the configuration).
    pub old: String,
    /// The group's name in the configuration now.
    pub new: String,
}

#[derive(Debug, Args)]
pub struct ImportSeedArgs {
    /// The do-scaler scaler file, e.g. /etc/do-scaler/conf.d/web.cfg.
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
