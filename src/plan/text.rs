//! Wording helpers for reasons: durations and numbers as an operator reads them.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// `4m12s`, `1h`, `0s`, `1h30m`, `250ms`.
pub(super) fn dur(d: Duration) -> String {
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

/// Time from `at` to `now`; zero when `at` lies in the future (clock skew counts as "just now",
/// which keeps cooldowns on the safe side).
pub(super) fn since(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (now - at).to_std().unwrap_or(Duration::ZERO)
}

/// A measured value: integers without decimals, others to 4 decimals, tiny ones in
/// scientific notation.
pub(crate) fn num(v: f64) -> String {
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
    s.to_string()
}

/// `1 droplet`, `3 droplets`.
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A time in reasons: RFC 3339 to the second, UTC.
pub(super) fn when(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn by(who: Option<&str>) -> String {
    who.map(|w| format!(" by {w}")).unwrap_or_default()
}

/// The reason of a plan that carries out `doscale set`.
pub(super) fn manual(m: &crate::model::ManualSize, current: u32) -> String {
    format!(
        "set: desired {} by `doscale set` at {}{} (current {current}): replaces the policies' recommendation for this change, not held by cooldowns, min_reporting, stabilization or step limits",
        m.desired,
        when(m.at),
        by(m.by.as_deref())
    )
}

/// The reason of a paused group's plan.
pub(super) fn paused(p: &crate::model::Paused, group: &str, current: u32, want: u32) -> String {
    format!(
        "paused: since {}{}, `doscale resume {group}` to resume: nothing is changed{}",
        when(p.since),
        by(p.by.as_deref()),
        if want != current {
            format!(" (wanted {want}, stays {current})")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_text_durations_read_like_config() {
        assert_eq!(dur(Duration::from_secs(252)), "4m12s");
        assert_eq!(dur(Duration::from_secs(3600)), "1h");
        assert_eq!(dur(Duration::ZERO), "0s");
        assert_eq!(dur(Duration::from_secs(5400)), "1h30m");
        assert_eq!(dur(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn plan_text_numbers() {
        assert_eq!(num(0.8), "0.8");
        assert_eq!(num(0.21345), "0.2135");
        assert_eq!(num(2068099072.0), "2068099072");
        assert_eq!(num(-3.0), "-3");
        assert_eq!(num(0.00001), "1.000e-5");
    }
}
