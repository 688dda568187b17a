//! The SPEC Research Group's elasticity metrics (Herbst et al., "Ready for Rain? A View from
//! SPEC Research on the Future of Cloud Metrics", 2016; the BUNGEE benchmark), computed from a
//! backtest's timeline and nothing else, so anyone can recompute them from `--output json`.
//!
//! Pass `i` (of `n`) at time `t_i` has demand `d_i` (droplets) and supply `s_i` (active
//! droplets); it lasts `Δt_i = t_{i+1} − t_i`, the last one the pass interval; `T = Σ Δt_i`:
//!
//! * `θU = 100/T · Σ max(d_i − s_i, 0) / max(d_i, 1) · Δt_i` — under-provisioning accuracy (%)
//! * `θO = 100/T · Σ max(s_i − d_i, 0) / max(d_i, 1) · Δt_i` — over-provisioning accuracy (%)
//! * `τU = 100/T · Σ [s_i < d_i] · Δt_i`, `τO = 100/T · Σ [s_i > d_i] · Δt_i` — timeshares (%)
//! * instability `= 100 · #{i ≥ 1 : (s_i − s_{i−1}) · (d_i − d_{i−1}) < 0} / (n − 1)` (%)
//! * jitter `= (#{i ≥ 1 : s_i ≠ s_{i−1}} − #{i ≥ 1 : d_i ≠ d_{i−1}}) / (T / 3600 s)` (per hour;
//!   negative: supply adapts less often than demand changes, positive: more often)
//! * droplet-hours `= Σ p_i · Δt_i / 3600 s` with `p_i` the provisioned droplets (new and
//!   active: what is billed); oracle droplet-hours `= Σ max(d_i, min) · Δt_i / 3600 s`
//! * creates, destroys: droplets created and destroyed over the run (`Σ created_i`, `Σ destroyed_i`)

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One pass of a backtest, as the JSON timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The pass's (virtual) time.
    pub t: DateTime<Utc>,
    /// The trace's load in force at `t`.
    pub load: f64,
    /// `ceil(load / capacity)`.
    pub demand: u32,
    /// Supply: droplets active when the pass starts.
    pub active: u32,
    /// Droplets new or active when the pass starts (billed).
    pub provisioned: u32,
    /// The plan's desired size in this pass.
    pub desired: u32,
    /// Droplets this pass created (healthy) and destroyed.
    pub created: u32,
    pub destroyed: u32,
    /// Why the pass failed or what went wrong in it (as the command would have said).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The metrics of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub passes: usize,
    /// `T` in hours.
    pub hours: f64,
    /// θU, %.
    pub theta_u: f64,
    /// θO, %.
    pub theta_o: f64,
    /// τU, %.
    pub tau_u: f64,
    /// τO, %.
    pub tau_o: f64,
    /// %.
    pub instability: f64,
    /// Per hour.
    pub jitter: f64,
    pub droplet_hours: f64,
    pub oracle_droplet_hours: f64,
    pub creates: u64,
    pub destroys: u64,
    /// Passes with an error.
    pub errors: u64,
}

/// The metrics of `steps`, the last pass lasting `interval_s` seconds; `min` is the group's
/// lower bound (the oracle never goes below it).
pub fn compute(steps: &[Step], interval_s: f64, min: u32) -> Metrics {
    let n = steps.len();
    let dt = |i: usize| -> f64 {
        if i + 1 < n {
            (steps[i + 1].t - steps[i].t).num_milliseconds() as f64 / 1000.0
        } else {
            interval_s
        }
    };
    let mut total = 0.0;
    let (mut under, mut over, mut under_t, mut over_t) = (0.0, 0.0, 0.0, 0.0);
    let (mut billed, mut oracle) = (0.0, 0.0);
    let (mut opposite, mut supply_changes, mut demand_changes) = (0u64, 0i64, 0i64);
    let (mut creates, mut destroys, mut errors) = (0u64, 0u64, 0u64);
    for (i, s) in steps.iter().enumerate() {
        let w = dt(i);
        let (d, a) = (f64::from(s.demand), f64::from(s.active));
        total += w;
        under += (d - a).max(0.0) / d.max(1.0) * w;
        over += (a - d).max(0.0) / d.max(1.0) * w;
        if a < d {
            under_t += w;
        }
        if a > d {
            over_t += w;
        }
        billed += f64::from(s.provisioned) * w;
        oracle += d.max(f64::from(min)) * w;
        creates += u64::from(s.created);
        destroys += u64::from(s.destroyed);
        errors += u64::from(s.error.is_some());
        if i > 0 {
            let p = &steps[i - 1];
            let ds = i64::from(s.active) - i64::from(p.active);
            let dd = i64::from(s.demand) - i64::from(p.demand);
            if ds * dd < 0 {
                opposite += 1;
            }
            supply_changes += i64::from(ds != 0);
            demand_changes += i64::from(dd != 0);
        }
    }
    let pct = |x: f64| if total > 0.0 { 100.0 * x / total } else { 0.0 };
    let hours = total / 3600.0;
    Metrics {
        passes: n,
        hours,
        theta_u: pct(under),
        theta_o: pct(over),
        tau_u: pct(under_t),
        tau_o: pct(over_t),
        instability: if n > 1 {
            100.0 * opposite as f64 / (n - 1) as f64
        } else {
            0.0
        },
        jitter: if hours > 0.0 {
            (supply_changes - demand_changes) as f64 / hours
        } else {
            0.0
        },
        droplet_hours: billed / 3600.0,
        oracle_droplet_hours: oracle / 3600.0,
        creates,
        destroys,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(secs: i64, demand: u32, active: u32, provisioned: u32) -> Step {
        Step {
            t: DateTime::from_timestamp(1_767_600_000 + secs, 0).unwrap(),
            load: f64::from(demand),
            demand,
            active,
            provisioned,
            desired: provisioned,
            created: 0,
            destroyed: 0,
            error: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Three passes a minute apart, by hand: d = 2 4 1, s = 2 2 5, p = 2 5 5, T = 180 s.
    /// θU = 100/180 · (2/4 · 60) = 16.67; θO = 100/180 · (4/1 · 60) = 133.33;
    /// τU = τO = 100 · 60/180 = 33.33; instability: (0, +2) no, (+3, −3) yes → 1 of 2 = 50;
    /// jitter = (1 supply change − 2 demand changes) / 0.05 h = −20;
    /// droplet-hours = 12 · 60/3600 = 0.2; oracle (min 2) = (2 + 4 + 2) · 60/3600 = 0.1333.
    #[test]
    fn three_passes_by_hand() {
        let mut steps = vec![step(0, 2, 2, 2), step(60, 4, 2, 5), step(120, 1, 5, 5)];
        steps[1].created = 3;
        steps[2].error = Some("x".into());
        let m = compute(&steps, 60.0, 2);
        assert_eq!(m.passes, 3);
        assert!(close(m.hours, 0.05));
        assert!(close(m.theta_u, 100.0 / 180.0 * 30.0), "{}", m.theta_u);
        assert!(close(m.theta_o, 100.0 / 180.0 * 240.0), "{}", m.theta_o);
        assert!(close(m.tau_u, 100.0 / 3.0) && close(m.tau_o, 100.0 / 3.0));
        assert!(close(m.instability, 50.0));
        assert!(close(m.jitter, -20.0), "{}", m.jitter);
        assert!(close(m.droplet_hours, 0.2));
        assert!(close(m.oracle_droplet_hours, 8.0 / 60.0));
        assert_eq!((m.creates, m.destroys, m.errors), (3, 0, 1));
    }

    /// Unequal steps weigh by their length: 30 s under by 1 of 2, then 90 s exact.
    #[test]
    fn unequal_steps_weigh_by_duration() {
        let steps = vec![step(0, 2, 1, 1), step(30, 2, 2, 2)];
        let m = compute(&steps, 90.0, 1);
        assert!(close(m.theta_u, 100.0 / 120.0 * 0.5 * 30.0));
        assert!(close(m.tau_u, 25.0));
        assert!(close(m.theta_o, 0.0) && close(m.tau_o, 0.0));
        // Demand 0 counts against 1: 3 idle droplets are 300 % over.
        let m = compute(&[step(0, 0, 3, 3)], 60.0, 1);
        assert!(close(m.theta_o, 300.0) && close(m.tau_o, 100.0));
        assert!(close(m.oracle_droplet_hours, 1.0 / 60.0));
    }

    #[test]
    fn no_passes_no_division_by_zero() {
        let m = compute(&[], 60.0, 1);
        assert_eq!(m.passes, 0);
        assert!(m.theta_u == 0.0 && m.jitter == 0.0 && m.instability == 0.0);
    }
}
