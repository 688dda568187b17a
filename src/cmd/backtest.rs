//! `doscale backtest`: what would these configurations have done on this trace, and how good
//! is that. Reads the trace and the configurations (every error is exit 2, naming the file and
//! line), runs each through `backtest::drive`, prints the side-by-side table or the JSON, and
//! draws the plot. `--synth KIND` prints a synthetic trace instead.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::WrapErr;
use color_eyre::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backtest::{self, drive, plot, synth, trace};
use crate::cli::{BacktestArgs, Global, Output};
use crate::config::{self, Config};
use crate::error::UsageError;
use crate::output;

/// Most passes one run may have (a year of one-minute passes is 525 600).
const MAX_STEPS: u64 = 10_000_000;

pub fn run(g: &Global, args: &BacktestArgs) -> Result<()> {
    if let Some(kind) = args.synth {
        return synthesize(kind, args);
    }
    let interval = duration("--interval", &args.interval)?;
    if interval < Duration::from_secs(1) {
        return Err(UsageError(format!("--interval {}: at least 1s", args.interval)).into());
    }
    let activate = duration("--activate", &args.activate)?;
    if !(args.capacity.is_finite() && args.capacity > 0.0) {
        return Err(UsageError(format!(
            "--capacity {}: want the load one droplet serves, a number > 0",
            args.capacity
        ))
        .into());
    }
    if !(args.utilization.is_finite() && args.utilization > 0.0 && args.utilization <= 1.0) {
        return Err(UsageError(format!(
            "--utilization {}: want the CPU utilization of a droplet serving --capacity, a \
             number in (0, 1] (0.6 for a 60 % target)",
            args.utilization
        ))
        .into());
    }
    let path = args.trace.clone().unwrap_or_else(|| PathBuf::from("-"));
    let trace = trace::read(&path)?;
    let available = trace.passes(interval);
    if args.start >= available {
        return Err(UsageError(format!(
            "--start {}: the trace {} has {available} passes of {}",
            args.start,
            output::sanitize(&trace.name),
            crate::units::dur(interval)
        ))
        .into());
    }
    let steps = args.steps.unwrap_or(available - args.start);
    if steps == 0 || steps > MAX_STEPS {
        return Err(UsageError(format!("--steps {steps}: want 1 to {MAX_STEPS}")).into());
    }
    let configs = configs(g, args)?;
    let opts = drive::Options {
        capacity: args.capacity,
        utilization: args.utilization,
        interval,
        activate,
        start: args.start,
        steps,
        seed: args.seed,
    };
    let mut runs = Vec::new();
    for (label, config) in &configs {
        let pb = progress(steps, label);
        let r = drive::run(config, label, &trace, &opts, pb.as_ref())?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        runs.push(r);
    }
    let setup = backtest::Setup {
        trace: trace.name.clone(),
        capacity: args.capacity,
        utilization: args.utilization,
        interval_s: interval.as_secs_f64(),
        activate_s: activate.as_secs_f64(),
        start: args.start,
        steps,
        seed: args.seed,
    };
    if let Some(svg_path) = &args.plot {
        let mut lines = vec![plot::Line {
            name: "demand".into(),
            steps: &runs[0].timeline,
            value: |s| s.demand,
        }];
        lines.extend(runs.iter().map(|r| plot::Line {
            name: format!("active droplets: {}", r.config),
            steps: &r.timeline,
            value: |s| s.active,
        }));
        let title = format!(
            "doscale backtest: {} (capacity {} per droplet)",
            trace.name,
            crate::units::num(args.capacity)
        );
        let svg = plot::render(
            &output::sanitize(&title),
            &lines,
            interval.as_secs_f64() / 3600.0,
        )
        .map_err(|e| color_eyre::eyre::eyre!("drawing the plot: {e}"))?;
        std::fs::write(svg_path, svg)
            .wrap_err_with(|| format!("writing the plot to {}", svg_path.display()))?;
    }
    if g.output == Output::Json {
        output::print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&backtest::render_json(&setup, &runs))?
        ));
    } else {
        let style = output::Style::detect(!g.no_headers, g.output == Output::Wide);
        output::print(&backtest::render_table(&setup, &runs, &style));
    }
    Ok(())
}

fn duration(flag: &str, s: &str) -> Result<Duration> {
    config::parse_duration(s)
        .map_err(|m| UsageError(format!("{flag} {}: {m}", output::sanitize(s))).into())
}

/// Each `--config` (or the default one), loaded as production loads it, narrowed to the
/// group to run, its hooks removed (a backtest runs no command of the operator's).
fn configs(g: &Global, args: &BacktestArgs) -> Result<Vec<(String, Config)>> {
    let paths: Vec<PathBuf> = if g.config.is_empty() {
        vec![super::config_path(None)]
    } else {
        g.config.clone()
    };
    let mut out = Vec::new();
    for path in paths {
        let mut config = super::load_config(&path)?;
        let names: Vec<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
        let pick = match (&args.group, names.as_slice()) {
            (Some(n), _) => config
                .groups
                .iter()
                .position(|g| &g.name == n)
                .ok_or_else(|| {
                    UsageError(format!(
                        "--group {}: {} has no such group (it has {})",
                        output::sanitize(n),
                        path.display(),
                        names.join(", ")
                    ))
                })?,
            (None, [_]) => 0,
            (None, _) => {
                return Err(UsageError(format!(
                    "{} has {} groups ({}): pick the one the trace is for with --group NAME",
                    path.display(),
                    names.len(),
                    names.join(", ")
                ))
                .into())
            }
        };
        let mut group = config.groups.swap_remove(pick);
        group.hooks.clear();
        config.groups = vec![group];
        out.push((path.display().to_string(), config));
    }
    Ok(out)
}

fn synthesize(kind: synth::Kind, args: &BacktestArgs) -> Result<()> {
    let step = duration("--synth-step", &args.synth_step)?;
    if !(args.days.is_finite() && args.days > 0.0 && args.days <= 3660.0) {
        return Err(UsageError(format!("--days {}: want 0 < days <= 3660", args.days)).into());
    }
    if !(args.peak.is_finite() && args.peak >= 0.0) {
        return Err(UsageError(format!("--peak {}: want a number >= 0", args.peak)).into());
    }
    let span = Duration::from_secs_f64(args.days * 86_400.0);
    if step < Duration::from_secs(1) || span.as_secs() / step.as_secs() > trace::MAX_POINTS as u64 {
        return Err(UsageError(format!(
            "--synth-step {}: at least 1s, and at most {} points in all",
            args.synth_step,
            trace::MAX_POINTS
        ))
        .into());
    }
    output::print(&synth::generate(&synth::Spec {
        kind,
        span,
        step,
        peak: args.peak,
        seed: args.seed,
    }));
    Ok(())
}

fn progress(steps: u64, label: &str) -> Option<ProgressBar> {
    if steps < 1000 || !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} passes {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(format!("backtest {}", output::sanitize(label)));
    Some(pb)
}
