//! Synthetic demand traces (`doscale backtest --synth KIND`): reproducible from their seed,
//! written as the CSV `backtest --trace` reads. The shipped `traces/*.csv` are made by these.
//!
//! Loads are in "droplets at target" for `--capacity 1`; `peak` scales them.
//! * `diurnal`: a day's sine between 20 % of the peak (04:00) and the peak (16:00), ±3 % noise.
//! * `bursty`: `diurnal` plus bursts (about three a day at random times): within 2 minutes the
//!   load rises by 50–120 % of the peak, holds 10–30 minutes, falls within 5.
//! * `growth`: steady growth from 20 % of the peak to the peak over the span, with a mild
//!   daily swing (±15 %).
//! * `flash-crowd`: a quiet 25 % of the peak; at a third of the span, within 2 minutes, 4×
//!   the peak, decaying back over about an hour.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The kinds of trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Diurnal,
    Bursty,
    Growth,
    FlashCrowd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Diurnal => "diurnal",
            Kind::Bursty => "bursty",
            Kind::Growth => "growth",
            Kind::FlashCrowd => "flash-crowd",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub span: Duration,
    pub step: Duration,
    pub peak: f64,
    pub seed: u64,
}

/// Monday 2026-01-05, midnight UTC: where every synthetic trace starts.
pub fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_571_200, 0).expect("a valid time")
}

/// The trace as CSV text: a comment saying how it was made, a header, a line per step.
pub fn generate(spec: &Spec) -> String {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let step = spec.step.as_secs_f64().max(1.0);
    let span = spec.span.as_secs_f64();
    let n = (span / step).floor() as u64 + 1;
    let day = 86_400.0;
    let diurnal = |t: f64| {
        let phase = 2.0 * std::f64::consts::PI * (t / day - 4.0 / 24.0);
        0.2 + 0.8 * (1.0 - phase.cos()) / 2.0
    };
    // Bursts: (start, rise, hold, fall, height) in seconds and peaks.
    let mut bursts = Vec::new();
    if spec.kind == Kind::Bursty {
        let count = ((span / day) * 3.0).round().max(1.0) as usize;
        for _ in 0..count {
            bursts.push((
                rng.gen_range(0.0..span.max(1.0)),
                120.0,
                rng.gen_range(600.0..1800.0),
                300.0,
                rng.gen_range(0.5..1.2),
            ));
        }
    }
    let mut out = String::with_capacity(n as usize * 28 + 200);
    let _ = writeln!(
        out,
        "# doscale backtest --synth {} --days {} --step {} --peak {} --seed {}",
        spec.kind.name(),
        crate::units::num(span / day),
        humantime::format_duration(spec.step),
        crate::units::num(spec.peak),
        spec.seed
    );
    out.push_str("time,load\n");
    for i in 0..n {
        let t = i as f64 * step;
        let shape = match spec.kind {
            Kind::Diurnal => diurnal(t),
            Kind::Bursty => {
                diurnal(t)
                    + bursts
                        .iter()
                        .map(|&(s, rise, hold, fall, h)| {
                            let x = t - s;
                            if x < 0.0 || x > rise + hold + fall {
                                0.0
                            } else if x < rise {
                                h * x / rise
                            } else if x < rise + hold {
                                h
                            } else {
                                h * (1.0 - (x - rise - hold) / fall)
                            }
                        })
                        .sum::<f64>()
            }
            Kind::Growth => {
                let trend = 0.2 + 0.8 * t / span.max(1.0);
                let swing = (2.0 * std::f64::consts::PI * (t / day - 10.0 / 24.0)).sin();
                trend * (1.0 + 0.15 * swing)
            }
            Kind::FlashCrowd => {
                let s = span / 3.0;
                let x = t - s;
                0.25 + if x < 0.0 {
                    0.0
                } else if x < 120.0 {
                    4.0 * x / 120.0
                } else {
                    4.0 * (-(x - 120.0) / 1200.0).exp()
                }
            }
        };
        let noise = 1.0 + rng.gen_range(-0.03..0.03);
        let load = (spec.peak * shape * noise).max(0.0);
        let at = epoch() + chrono::Duration::milliseconds((t * 1000.0) as i64);
        let _ = writeln!(
            out,
            "{},{:.2}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            load
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind) -> Spec {
        Spec {
            kind,
            span: Duration::from_secs(2 * 86_400),
            step: Duration::from_secs(60),
            peak: 20.0,
            seed: 7,
        }
    }

    fn read(text: &str) -> crate::backtest::trace::Trace {
        crate::backtest::trace::parse("synth", text.as_bytes()).unwrap()
    }

    #[test]
    fn every_kind_reads_back_as_a_trace_and_is_reproducible() {
        for kind in [Kind::Diurnal, Kind::Bursty, Kind::Growth, Kind::FlashCrowd] {
            let text = generate(&spec(kind));
            assert_eq!(text, generate(&spec(kind)), "{kind:?}");
            let t = read(&text);
            assert_eq!(t.points.len(), 2 * 1440 + 1, "{kind:?}");
            assert_eq!(t.start(), epoch());
            assert!(t.points.iter().all(|p| p.load >= 0.0));
        }
        let other = Spec {
            seed: 8,
            ..spec(Kind::Bursty)
        };
        assert_ne!(generate(&other), generate(&spec(Kind::Bursty)));
    }

    #[test]
    fn shapes_are_what_they_say() {
        let max =
            |t: &crate::backtest::trace::Trace| t.points.iter().map(|p| p.load).fold(0.0, f64::max);
        let at_h = |t: &crate::backtest::trace::Trace, h: usize| t.points[h * 60].load;
        let d = read(&generate(&spec(Kind::Diurnal)));
        assert!(
            at_h(&d, 4) < 5.0 && at_h(&d, 16) > 18.0,
            "{} {}",
            at_h(&d, 4),
            at_h(&d, 16)
        );
        assert!(max(&d) <= 20.0 * 1.03 + 0.01);
        let b = read(&generate(&spec(Kind::Bursty)));
        assert!(
            max(&b) > 20.0 * 1.3,
            "bursts rise above the diurnal peak: {}",
            max(&b)
        );
        let g = read(&generate(&spec(Kind::Growth)));
        assert!(g.points.last().unwrap().load > 2.5 * g.points[0].load);
        let f = read(&generate(&spec(Kind::FlashCrowd)));
        assert!(f.points[0].load < 6.0 && max(&f) > 70.0);
    }
}
