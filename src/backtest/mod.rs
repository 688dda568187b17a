//! `doscale backtest`: replay a demand trace through the real pipeline (scrape → evaluate →
//! plan → apply, the same functions `run` calls) against an in-process simulated fleet on a
//! virtual clock, and score each configuration with the SPEC elasticity metrics.
//!
//! Layout: `trace` (reading and resampling traces), `metrics` (the metrics, a pure function of
//! the timeline), `synth` (synthetic traces), `plot` (the SVG), this module (the report).

pub mod drive;
pub mod metrics;
pub mod plot;
pub mod synth;
pub mod trace;

use serde::Serialize;
use serde_json::json;

use metrics::{Metrics, Step};

/// How a backtest was run (shown in the report, for reproducing it).
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub trace: String,
    pub capacity: f64,
    pub utilization: f64,
    pub interval_s: f64,
    pub activate_s: f64,
    /// The first pass, counted from the trace's first point.
    pub start: u64,
    pub steps: u64,
    pub seed: u64,
}

/// One configuration's run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The configuration file as given.
    pub config: String,
    pub group: String,
    pub min: u32,
    pub max: u32,
    pub timeline: Vec<Step>,
    pub metrics: Metrics,
}

/// Demand in droplets: `ceil(load / capacity)`.
pub fn demand(load: f64, capacity: f64) -> u32 {
    let d = (load / capacity).ceil();
    if d > 0.0 {
        // `as` saturates: an infinite ratio is u32::MAX.
        d.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

/// `--output json`: the setup, and per configuration its metrics and whole timeline.
pub fn render_json(setup: &Setup, runs: &[Run]) -> serde_json::Value {
    json!({
        "setup": setup,
        "configs": runs.iter().map(|r| json!({
            "config": r.config,
            "group": r.group,
            "min": r.min,
            "max": r.max,
            "metrics": r.metrics,
            "timeline": r.timeline,
        })).collect::<Vec<_>>(),
    })
}

/// The rows of the table: label, then the figure of a run.
type Row = (&'static str, fn(&Metrics) -> String);

fn pct(v: f64) -> String {
    format!("{v:.1}")
}

const ROWS: [Row; 12] = [
    ("passes", |m| m.passes.to_string()),
    ("hours", |m| format!("{:.1}", m.hours)),
    ("θU under-provisioning accuracy %", |m| pct(m.theta_u)),
    ("θO over-provisioning accuracy %", |m| pct(m.theta_o)),
    ("τU under-provisioned time %", |m| pct(m.tau_u)),
    ("τO over-provisioned time %", |m| pct(m.tau_o)),
    ("instability %", |m| pct(m.instability)),
    ("jitter (adaptations/h)", |m| format!("{:.2}", m.jitter)),
    ("droplet-hours", |m| format!("{:.1}", m.droplet_hours)),
    ("oracle droplet-hours", |m| {
        format!("{:.1}", m.oracle_droplet_hours)
    }),
    ("creates / destroys", |m| {
        format!("{} / {}", m.creates, m.destroys)
    }),
    ("passes with errors", |m| m.errors.to_string()),
];

/// The table for people: a row per metric, a column per configuration.
pub fn render_table(setup: &Setup, runs: &[Run], style: &crate::output::Style) -> String {
    let mut header = vec!["metric".to_string()];
    header.extend(runs.iter().map(|r| {
        crate::clean::sanitize(&format!("{} ({} {}..{})", r.config, r.group, r.min, r.max))
    }));
    let mut t = style.table(header);
    for (label, f) in ROWS {
        let mut row = vec![label.to_string()];
        row.extend(runs.iter().map(|r| f(&r.metrics)));
        t.add_row(row);
    }
    format!(
        "backtest of {}: {} passes {} apart from pass {}, capacity {} per droplet at {} % CPU, droplets active {} after creation\n{t}\n",
        crate::clean::sanitize(&setup.trace),
        setup.steps,
        crate::units::dur(std::time::Duration::from_secs_f64(setup.interval_s)),
        setup.start,
        crate::units::num(setup.capacity),
        crate::units::num(setup.utilization * 100.0),
        crate::units::dur(std::time::Duration::from_secs_f64(setup.activate_s)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_is_the_ceiling_of_load_over_capacity() {
        assert_eq!(demand(0.0, 1.0), 0);
        assert_eq!(demand(0.01, 1.0), 1);
        assert_eq!(demand(3.0, 1.0), 3);
        assert_eq!(demand(3.2, 1.0), 4);
        assert_eq!(demand(450.0, 100.0), 5);
        assert_eq!(demand(500.0, 100.0), 5);
        assert_eq!(demand(1e300, 1e-300), u32::MAX);
    }
}
