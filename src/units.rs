//! Numbers and durations as an operator reads them, in one place: every message, reason and
//! table of doscale formats a measured value with [`num`], a duration with [`dur`] and an age
//! (a coarse "how long ago") with [`age`]. Core code: imports nothing of the project's.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A measured value: integers without decimals, others to at most 4 decimals without float
/// noise (`0.6000000001` → `0.6`), tiny ones in scientific notation; `NaN`, `inf` as is.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    if v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A duration to the second, as written in the configuration: `4m12s`, `1h`, `1h30m`, `0s`;
/// below a second in milliseconds (`250ms`).
pub fn dur(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        let ms = d.subsec_millis();
        return if ms == 0 {
            "0s".into()
        } else {
            format!("{ms}ms")
        };
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// An age for tables, two units at most: `42s`, `4m12s`, `3h5m`, `2d4h` (negative: `0s`).
/// An instant to the second, in UTC: `2026-12-03T06:51:10Z`.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    if s >= 86_400 {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Time from `at` to `now`; zero when `at` lies in the future (clock skew counts as "just now",
/// which keeps cooldowns on the safe side).
pub fn since(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (now - at).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for (v, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (2.0, "2"),
            (-3.0, "-3"),
            (0.6000000001, "0.6"),
            (2.82, "2.82"),
            (1.0 / 3.0, "0.3333"),
            (-0.00004, "-4.000e-5"),
            (0.0004, "4.000e-4"),
            (-0.00004999, "-4.999e-5"),
            (1e20, "100000000000000000000"),
            (0.8, "0.8"),
            (0.21345, "0.2135"),
            (2068099072.0, "2068099072"),
            (0.00001, "1.000e-5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(num(v), s, "{v}");
        }
    }

    #[test]
    fn durations() {
        for (ms, s) in [
            (0, "0s"),
            (250, "250ms"),
            (1000, "1s"),
            (1250, "1s"),
            (252_000, "4m12s"),
            (3_600_000, "1h"),
            (5_400_000, "1h30m"),
            (3_723_000, "1h2m3s"),
        ] {
            assert_eq!(dur(Duration::from_millis(ms)), s, "{ms}");
        }
        for (secs, s) in [
            (-5, "0s"),
            (42, "42s"),
            (252, "4m12s"),
            (11_100, "3h5m"),
            (187_200, "2d4h"),
        ] {
            assert_eq!(age(chrono::Duration::seconds(secs)), s, "{secs}");
        }
        let now = Utc::now();
        assert_eq!(
            since(now, now + chrono::Duration::seconds(5)),
            Duration::ZERO
        );
        assert_eq!(
            since(now, now - chrono::Duration::seconds(5)),
            Duration::from_secs(5)
        );
    }
}
