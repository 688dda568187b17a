//! Wording helpers for reasons: durations and numbers as an operator reads them.

use chrono::{DateTime, Utc};

pub(crate) use crate::units::{dur, num, since};

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
