//! The driver: one pass of the real pipeline (`pipeline::pass`, what `doscale run` calls) per
//! step of the trace, against the in-process simulated fleet on a virtual clock, with seeded
//! randomness. Nothing here decides anything about scaling: it sets the load, reads the
//! fleet's size, runs the pass and writes down what the pass decided.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use color_eyre::Result;
use indicatif::ProgressBar;

use super::metrics::{self, Step};
use super::trace::Trace;
use super::{demand, Run};
use crate::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::pipeline::{self, Env};
use crate::sim::inproc::InProc;
use crate::state::State;

/// How to replay a trace.
#[derive(Debug, Clone)]
pub struct Options {
    /// Load one droplet serves at its target.
    pub capacity: f64,
    /// Time between two passes.
    pub interval: Duration,
    /// A created droplet turns active this long after its creation.
    pub activate: Duration,
    /// The first pass (counted from the trace's first point) and how many to run.
    pub start: u64,
    pub steps: u64,
    /// Seed of the fleet (ids, jitter) and of the planner's randomness.
    pub seed: u64,
}

impl Options {
    /// The scheduled time of pass `k` (from `start`).
    pub fn pass_time(&self, trace: &Trace, k: u64) -> DateTime<Utc> {
        let ms = self.interval.as_millis().saturating_mul(u128::from(self.start + k));
        trace.start() + chrono::Duration::milliseconds(ms.min(i64::MAX as u128) as i64)
    }
}

/// Runs `config` (one group, already narrowed to it, hooks removed) over `trace`.
pub fn run(
    config: &Config,
    label: &str,
    trace: &Trace,
    opts: &Options,
    progress: Option<&ProgressBar>,
) -> Result<Run> {
    let g = &config.groups[0];
    let t0 = opts.pass_time(trace, 0);
    let clock = Arc::new(ManualClock::new(t0));
    // The group starts at the size the first step's demand needs, within its bounds.
    let initial = demand(trace.load_at(t0), opts.capacity).clamp(g.min, g.max);
    let fleet = InProc::new(opts.seed, &g.tag, initial, clock.clone(), opts.activate);
    let env = Env::new(config, clock.as_ref(), &fleet, &fleet).seeded(opts.seed);
    let env = Env {
        progress: false,
        ..env
    };
    let mut state = State::default();
    let mut timeline = Vec::with_capacity(opts.steps.min(10_000_000) as usize);
    for k in 0..opts.steps {
        // A pass that ran over its interval (waiting for droplets) delays the next one, as a
        // timer does; otherwise each pass starts on its schedule.
        let scheduled = opts.pass_time(trace, k);
        if clock.now() < scheduled {
            clock.set(scheduled);
        }
        let t = clock.now();
        let load = trace.load_at(t);
        fleet.set_demand(load / opts.capacity);
        let (active, provisioned) = fleet.counts(&g.tag);
        let mut step = Step {
            t,
            load,
            demand: demand(load, opts.capacity),
            active,
            provisioned,
            desired: provisioned,
            created: 0,
            destroyed: 0,
            error: None,
        };
        match pipeline::pass(&env, &mut state, None, false, false) {
            Ok(pass) => {
                if let Some(p) = pass.plans.first() {
                    step.desired = p.desired;
                }
                if let Some(r) = pass.reports.first() {
                    step.created = r.created.len() as u32;
                    step.destroyed = r.destroyed.len() as u32;
                    if !r.errors.is_empty() {
                        step.error = Some(r.errors.join("; "));
                    }
                }
            }
            Err(e) => {
                // What `doscale run` would have exited with; the next pass goes on, as the
                // next run of the timer would.
                if let Some(p) = state.groups.get(&g.name).and_then(|s| s.plan.as_ref()) {
                    if p.at == t {
                        step.desired = p.desired;
                    }
                }
                step.error = Some(crate::clean::sanitize_multiline(&format!("{e:#}")));
            }
        }
        timeline.push(step);
        if let Some(pb) = progress {
            pb.inc(1);
        }
    }
    let metrics = metrics::compute(&timeline, opts.interval.as_secs_f64(), g.min);
    Ok(Run {
        config: label.to_string(),
        group: g.name.clone(),
        min: g.min,
        max: g.max,
        timeline,
        metrics,
    })
}
