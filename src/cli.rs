//! The command line: clap definitions only. Doc comments double as `--help` text, the man
//! page (`man/doscale.1`) and the shell completions are generated from the same source.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::sim::SimArgs;

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
    /// `backtest` takes it several times and compares the configurations; every other
    /// command takes one.
    #[arg(long, short = 'c', global = true, value_name = "PATH", action = clap::ArgAction::Append)]
    pub config: Vec<PathBuf>,

    /// Output format: tables for people (`wide`: more columns in the load table and
    /// `status`), JSON for programs.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// Tables without their header row (for `grep`, `awk`, `wc -l`).
    #[arg(long, global = true)]
    pub no_headers: bool,

    /// If another doscale run holds the state lock, wait for it (up to 10m) instead of failing
    /// at once.
    #[arg(long, global = true)]
    pub wait: bool,

    /// Like --wait, for up to DURATION (`30s`, `2m`).
    #[arg(long, global = true, value_name = "DURATION")]
    pub wait_for: Option<String>,

    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors in the log.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables of the essential columns.
    Table,
    /// Tables with every column.
    Wide,
    /// One JSON document (DESIGN.md §6).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List each group's droplets and fetch every active droplet's metrics; store the scrape.
    Scrape(ScrapeArgs),
    /// Compute every condition and policy on the latest scrape; store the evaluation.
    Evaluate(EvaluateArgs),
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
    /// Replay a demand trace through the real pipeline against a simulated fleet on a virtual
    /// clock, and score each configuration with the SPEC elasticity metrics.
    #[command(long_about = BACKTEST_ABOUT, after_help = BACKTEST_METRICS)]
    Backtest(BacktestArgs),
    /// Validate the configuration without touching the network: its keys, expressions and
    /// metric names, and every file it names.
    Check(CheckArgs),
    /// Show per group the size, bounds, last actions, cooldowns, pending droplets, a pause and
    /// a size set by hand.
    Status(StatusArgs),
    /// Pause a group: it is still scraped and evaluated, but its plans change nothing and
    /// apply sends nothing for it (not even to repair its bounds) until `doscale resume`.
    Pause(GroupArg),
    /// Resume a paused group: its policies rule again from the next plan.
    Resume(GroupArg),
    /// Set a group's desired size by hand, once (like `kubectl scale`): the next plan takes N
    /// instead of the policies' recommendation, not held by cooldowns, stabilization,
    /// min_reporting or step limits (pending operations still hold it); applying that plan
    /// consumes the request and counts as a scale action for the cooldowns.
    Set(SetArgs),
    /// Carry a renamed group's state (history, cooldowns, pending operations) over to its new
    /// name; offline, under the state lock.
    RenameGroup(RenameGroupArgs),
    /// Convert do-scaler scaler files (conf.d/*.cfg) into one doscale TOML configuration on
    /// stdout, a group per file.
    ImportSeed(ImportSeedArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Which groups a command acts on.
#[derive(Debug, Args, Clone, Default)]
pub struct GroupSelect {
    /// Act on this group only (repeatable; default: every group). The other groups' state
    /// (scrapes, evaluation, plan, history) is left exactly as it was.
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScrapeArgs {
    /// Keep every series of every droplet, not only those the policies and the load table use.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub select: GroupSelect,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub select: GroupSelect,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: GroupSelect,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 3 when the plan changes something, 0 when it changes nothing (like terraform plan).
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub select: GroupSelect,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Print exactly the requests apply would send; send no mutating request, change no state.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply a plan that destroys more than the group's `max_destroy_share` in one pass
    /// (refused without it).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub select: GroupSelect,
}

#[derive(Debug, Args)]
pub struct GroupArg {
    /// The group's name (`name` in its `[[group]]`).
    pub group: String,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The group's name (`name` in its `[[group]]`).
    pub group: String,
    /// The desired size, within the group's `min` and `max`.
    pub size: u32,
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
    /// Print the evaluate and plan tables, as `evaluate` and `plan` do (also with -v),
    /// instead of one summary line per group.
    #[arg(long)]
    pub tables: bool,
    /// Apply a plan that destroys more than the group's `max_destroy_share` in one pass
    /// (refused without it).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub select: GroupSelect,
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

const BACKTEST_ABOUT: &str = "Replay a demand trace through the real pipeline against a \
simulated fleet on a virtual clock, and score each configuration with the SPEC elasticity \
metrics.

Each step of the trace is one pass of the same scrape, evaluate, plan and apply code that \
`doscale run` runs, against an in-process simulated fleet (the one of `doscale sim`: its \
droplets serve do-agent pages read by the same parser), with the time advancing by \
--interval per pass and nothing sleeping: cooldowns, warm-up, stabilization windows, step \
limits, bounds and health checks behave as in production. The load at a pass is the trace's \
load in force at that time; demand is ceil(load / capacity) droplets, a droplet serving \
capacity running at --utilization U (default 1), so each active droplet's CPU utilization is \
min(U × load / (capacity × active), 1) and its load averages and memory follow. The group \
starts with ceil(load / capacity) droplets of the first pass (within min..max), created a day \
before. Hooks are not run. Several --config run on the same \
trace and are shown side by side. Nothing is contacted, no state file is written and no token \
is needed.

The trace is CSV `time,load`: time as RFC 3339 or Unix seconds, strictly increasing, steps \
equal or not; load a number >= 0; `#` starts a comment; a header line is optional.";

const BACKTEST_METRICS: &str = "Metrics, per configuration, over the passes i = 0..n-1 at \
times t_i, with demand d_i = ceil(load_i / capacity), supply s_i = droplets active when the \
pass starts, p_i = droplets new or active (billed), Δt_i = t_{i+1} - t_i (the last one \
--interval) and T = Σ Δt_i:
  θU (under-provisioning accuracy, %) = 100/T · Σ max(d_i - s_i, 0) / max(d_i, 1) · Δt_i
  θO (over-provisioning accuracy, %)  = 100/T · Σ max(s_i - d_i, 0) / max(d_i, 1) · Δt_i
  τU (under-provisioned time, %)      = 100/T · Σ [s_i < d_i] · Δt_i
  τO (over-provisioned time, %)       = 100/T · Σ [s_i > d_i] · Δt_i
  instability (%) = 100 · #{i >= 1: (s_i - s_{i-1}) · (d_i - d_{i-1}) < 0} / (n - 1)
  jitter (per hour) = (#{i >= 1: s_i != s_{i-1}} - #{i >= 1: d_i != d_{i-1}}) / (T / 1 h)
  droplet-hours = Σ p_i · Δt_i / 1 h;  oracle droplet-hours = Σ max(d_i, min) · Δt_i / 1 h
  creates, destroys = droplets created healthy and destroyed over the run.
Lower is better for all but jitter, best near 0 (negative: supply adapts less often than \
demand changes). After Herbst et al., \"Ready for Rain? A View from SPEC Research on the \
Future of Cloud Metrics\" (2016) and the BUNGEE benchmark. `--output json` gives the metrics \
and the whole timeline ([{t, load, demand, active, provisioned, desired, created, destroyed, \
error}], one element per pass), so every figure can be recomputed.";

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The demand trace: CSV `time,load` (`-`: standard input).
    #[arg(long, value_name = "FILE", required_unless_present = "synth")]
    pub trace: Option<PathBuf>,
    /// The group to run (default: the configuration's only group).
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// The load one droplet serves at its target (default 1: the trace is in droplets).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub capacity: f64,
    /// The CPU utilization of a droplet serving --capacity: your target (e.g. 0.6 for a 60 %
    /// CPU target); default 1, a fully busy droplet.
    #[arg(long, default_value_t = 1.0, value_name = "U")]
    pub utilization: f64,
    /// Time between two passes (the timer's interval).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub interval: String,
    /// A created droplet turns active this long after its creation.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub activate: String,
    /// Skip this many passes from the trace's first point.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub start: u64,
    /// Run this many passes (default: to the trace's last point).
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,
    /// Draw demand and each configuration's supply over time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Seed of the simulated fleet and of the planner's randomness (same seed, same result).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Print a synthetic trace of this kind (CSV, on stdout) instead of running one.
    #[arg(long, value_enum, value_name = "KIND", conflicts_with_all = ["trace", "plot", "group"])]
    pub synth: Option<crate::backtest::synth::Kind>,
    /// With --synth: days the trace spans.
    #[arg(long, default_value_t = 7.0, value_name = "N", requires = "synth")]
    pub days: f64,
    /// With --synth: time between two points.
    #[arg(
        long,
        default_value = "1m",
        value_name = "DURATION",
        requires = "synth"
    )]
    pub synth_step: String,
    /// With --synth: the load at the daily peak.
    #[arg(long, default_value_t = 20.0, value_name = "X", requires = "synth")]
    pub peak: f64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Treat the warnings about the configuration as errors (exit 2): metric names do-agent
    /// does not serve and that `extra_metrics` does not list, a token source that is set but
    /// cannot be read. Use it on the host that runs doscale; a missing token source stays a
    /// warning (the service gets its token as a systemd credential).
    #[arg(long)]
    pub strict: bool,
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
    /// The do-scaler scaler files, e.g. /etc/do-scaler/conf.d/*.cfg: one [[group]] each,
    /// in one configuration.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::parser::ValueSource;
    use clap::{Arg, CommandFactory, Parser};

    #[test]
    fn cli_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// A value clap accepts for `arg` (the first possible value of an enum, a duration for
    /// DURATION, else "1", which reads as a number, a name or a path).
    fn sample(arg: &Arg) -> String {
        if let Some(v) = arg.get_possible_values().first() {
            return v.get_name().to_string();
        }
        match arg
            .get_value_names()
            .and_then(|n| n.first())
            .map(|n| n.as_str())
        {
            Some("DURATION") => "5m".into(),
            _ => "1".into(),
        }
    }

    fn takes_value(arg: &Arg) -> bool {
        arg.get_action().takes_values()
    }

    /// Every way to write every global flag: `--long`, `--long VALUE`, `--long=VALUE`, `-s`,
    /// `-s VALUE`, each value of an enum.
    fn global_flag_forms() -> Vec<(String, Vec<String>)> {
        let cmd = super::Cli::command();
        let mut out = Vec::new();
        for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
            let id = arg.get_id().to_string();
            let values: Vec<String> = if !takes_value(arg) {
                vec![]
            } else if arg.get_possible_values().is_empty() {
                vec![sample(arg)]
            } else {
                arg.get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect()
            };
            let long = arg.get_long().map(|l| format!("--{l}"));
            let short = arg.get_short().map(|s| format!("-{s}"));
            for name in long.iter().chain(short.iter()) {
                // A flag, or an option whose value may be left out.
                let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
                if values.is_empty() || optional {
                    out.push((id.clone(), vec![name.clone()]));
                }
                for v in &values {
                    out.push((id.clone(), vec![name.clone(), v.clone()]));
                    if name.starts_with("--") {
                        out.push((id.clone(), vec![format!("{name}={v}")]));
                    }
                }
            }
        }
        out
    }

    /// Each subcommand with its required arguments filled in.
    fn subcommands() -> Vec<(String, Vec<String>)> {
        let cmd = super::Cli::command();
        let mut out = Vec::new();
        for sc in cmd.get_subcommands() {
            let mut args = vec![sc.get_name().to_string()];
            // backtest's --trace is required unless --synth (clap has no getter for that).
            let needed = |a: &&clap::Arg| {
                a.is_required_set() || (sc.get_name() == "backtest" && a.get_id() == "trace")
            };
            for a in sc.get_arguments().filter(needed) {
                match a.get_long() {
                    Some(l) if !a.is_positional() => {
                        args.push(format!("--{l}"));
                        args.push(sample(a));
                    }
                    _ => args.push(sample(a)),
                }
            }
            out.push((sc.get_name().to_string(), args));
        }
        out
    }

    /// Issue 13, point 6: no global flag swallows the subcommand that follows it (`--wait
    /// plan` once read `plan` as the duration), wherever the flag stands.
    #[test]
    fn every_global_flag_before_and_after_every_subcommand_parses() {
        let flags = global_flag_forms();
        let ids: Vec<&str> = flags.iter().map(|(id, _)| id.as_str()).collect();
        for expected in [
            "config",
            "output",
            "wait",
            "wait_for",
            "verbose",
            "quiet",
            "no_headers",
        ] {
            assert!(
                ids.contains(&expected),
                "no global flag {expected}: {ids:?}"
            );
        }
        let subs = subcommands();
        assert!(subs.len() >= 11, "{subs:?}");
        for (id, flag) in &flags {
            for (name, sub) in &subs {
                for before in [true, false] {
                    let mut argv = vec!["doscale".to_string()];
                    if before {
                        argv.extend(flag.iter().cloned());
                        argv.extend(sub.iter().cloned());
                    } else {
                        argv.extend(sub.iter().cloned());
                        argv.extend(flag.iter().cloned());
                    }
                    let m = super::Cli::command()
                        .try_get_matches_from(&argv)
                        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                    assert_eq!(m.subcommand_name(), Some(name.as_str()), "{argv:?}");
                    let (_, sm) = m.subcommand().expect("a subcommand");
                    assert_eq!(
                        sm.value_source(id),
                        Some(ValueSource::CommandLine),
                        "{argv:?}: {id} not taken from the command line"
                    );
                    if let Err(e) = super::Cli::try_parse_from(&argv) {
                        panic!("{argv:?}: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn wait_is_a_plain_flag_and_wait_for_takes_the_duration() {
        let cli = super::Cli::try_parse_from(["doscale", "--wait", "plan"]).unwrap();
        assert!(cli.global.wait);
        assert_eq!(cli.global.wait_for, None);
        assert!(matches!(cli.command, super::Command::Plan(_)));
        let cli = super::Cli::try_parse_from(["doscale", "--wait-for", "5m", "run", "--dry-run"])
            .unwrap();
        assert_eq!(cli.global.wait_for.as_deref(), Some("5m"));
        assert!(matches!(cli.command, super::Command::Run(ref a) if a.dry_run));
        // `--wait=5m` (the old optional value) is refused, not silently ignored.
        assert!(super::Cli::try_parse_from(["doscale", "--wait=5m", "plan"]).is_err());
    }
}
