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
use crate::apply::ProbeError;
use crate::clock::{Clock, ManualClock};
use crate::config::{Config, HealthCheck};
use crate::do_api::model::Droplet;
use crate::pipeline::{self, Env};
use crate::sim::inproc::InProc;
use crate::state::State;

/// How to replay a trace.
#[derive(Debug, Clone)]
pub struct Options {
    /// Load one droplet serves at its target.
    pub capacity: f64,
    /// CPU utilization of a droplet serving `capacity` (1: fully busy).
    pub utilization: f64,
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
        let ms = self
            .interval
            .as_millis()
            .saturating_mul(u128::from(self.start + k));
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
    // A simulated droplet is healthy once active: it then serves every port.
    let probe = |d: &Droplet, _: Option<&str>, _: &HealthCheck| {
        if fleet.is_active(d.id) {
            Ok(())
        } else {
            Err(ProbeError::Failed("not active yet".into()))
        }
    };
    let env = Env::new(config, clock.as_ref(), &fleet, &fleet).seeded(opts.seed);
    let env = Env {
        progress: false,
        probe: &probe,
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
        // The fleet's work in fully busy droplets: `capacity` keeps one at `utilization`.
        fleet.set_demand(opts.utilization * load / opts.capacity);
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

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[api]
url = "http://127.0.0.1:9"
[[group]]
name = "web"
tag = "web"
min = 1
max = 3
cooldown_up = "0s"
cooldown_down = "0s"
warmup = "0s"
max_step_up = 5
max_step_down = 5
[group.template]
name = "web-{n}"
region = "nyc3"
size = "s-2vcpu-4gb"
image = "ubuntu-24-04-x64"
tags = ["web"]
[group.health_check]
ports = [9110]
interval = "1s"
max_tries = 60
[[group.policy]]
name = "hot"
scale = "up"
step = 2
conditions = [ { name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', function = "mean", op = ">", threshold = 0.8 } ]
"#;

    fn config() -> Config {
        crate::config::parse(
            std::path::Path::new("/tmp/bt.toml"),
            CONFIG,
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Three passes, by hand. Pass 0: load 1, the group starts at 1 droplet; no previous
    /// scrape, so no CPU rate: nothing fires. Pass 1: load 3; the CPU over pass 0 → 1 was
    /// 100 % (demand 1 on 1 droplet) > 80 %: `hot` adds 2, created at once and active 30 s
    /// later, within the pass's wait. Pass 2: load 5, demand 5 above max 3: 3 active, desired
    /// stays 3 (max), the shortfall counts as under-provisioning.
    ///
    /// d = 1 3 5, s = 1 1 3, p = 1 1 3, Δt = 60 s, T = 180 s:
    /// θU = 100/180 · (2/3 · 60 + 2/5 · 60) = 35.56 %, τU = 66.67 %, θO = τO = 0,
    /// instability 0 (supply never moves against demand), jitter = (1 − 2) / 0.05 h = −20/h,
    /// droplet-hours = 5 · 60/3600 = 0.0833, oracle = (1 + 3 + 5) · 60/3600 = 0.15.
    /// Loads 1, 3, 5 a minute apart, droplets active 30 s after creation.
    fn three_passes(utilization: f64) -> Run {
        let trace = super::super::trace::parse(
            "t.csv",
            "2026-01-05T00:00:00Z,1\n2026-01-05T00:01:00Z,3\n2026-01-05T00:02:00Z,5\n".as_bytes(),
        )
        .unwrap();
        let opts = Options {
            capacity: 1.0,
            utilization,
            interval: Duration::from_secs(60),
            activate: Duration::from_secs(30),
            start: 0,
            steps: 3,
            seed: 1,
        };
        run(&config(), "bt.toml", &trace, &opts, None).unwrap()
    }

    #[test]
    fn three_passes_by_hand_and_demand_above_max() {
        let r = three_passes(1.0);
        let step = |t: &str, load: f64, demand, active, desired, created| Step {
            t: at(t),
            load,
            demand,
            active,
            provisioned: active,
            desired,
            created,
            destroyed: 0,
            error: None,
        };
        assert_eq!(
            r.timeline,
            [
                step("2026-01-05T00:00:00Z", 1.0, 1, 1, 1, 0),
                step("2026-01-05T00:01:00Z", 3.0, 3, 1, 3, 2),
                step("2026-01-05T00:02:00Z", 5.0, 5, 3, 3, 0),
            ]
        );
        let m = &r.metrics;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(m.theta_u, 100.0 / 180.0 * 64.0), "{m:?}");
        assert!(close(m.tau_u, 200.0 / 3.0), "{m:?}");
        assert!(close(m.theta_o, 0.0) && close(m.tau_o, 0.0), "{m:?}");
        assert!(close(m.instability, 0.0), "{m:?}");
        assert!(close(m.jitter, -20.0), "{m:?}");
        assert!(close(m.droplet_hours, 5.0 / 60.0), "{m:?}");
        assert!(close(m.oracle_droplet_hours, 0.15), "{m:?}");
        assert_eq!((m.creates, m.destroys, m.errors), (2, 0, 0));
    }

    /// `--utilization` scales the work, not the demand: the same three passes with a droplet
    /// serving `capacity` at 50 % CPU. Pass 1's CPU over pass 0 → 1 is 50 % (0.5 · 1 / 1), under
    /// `hot`'s 80 %: nothing is created, while demand is still 1, 3, 5.
    #[test]
    fn utilization_scales_the_fleets_work_not_the_demand() {
        let r = three_passes(0.5);
        let demand: Vec<u32> = r.timeline.iter().map(|s| s.demand).collect();
        let desired: Vec<u32> = r.timeline.iter().map(|s| s.desired).collect();
        assert_eq!(demand, [1, 3, 5]);
        // Pass 2 sees pass 1's 1.5 busy droplets on 1: 100 % (capped), so `hot` fires then.
        assert_eq!(desired, [1, 1, 3], "{:?}", r.timeline);
        assert_eq!(r.metrics.creates, 2);
    }
}
