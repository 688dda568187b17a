//! doscale's own metrics for node_exporter's textfile collector (`metrics_textfile`), written
//! atomically (0644) after each pass so operators can graph and alert on doscale itself.

use std::fmt::Write;

use crate::config::{Config, Scale};
use crate::state::State;

/// Renders the exposition. `pass_seconds`: how long this pass took; `api_errors`: API errors
/// seen in it; `ok`: whether the pass succeeded.
pub fn render(
    config: &Config,
    state: &State,
    pass_seconds: f64,
    api_errors: u64,
    ok: bool,
    now_unix: f64,
) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP doscale_{name} {help}");
        let _ = writeln!(out, "# TYPE doscale_{name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "doscale_{name}{labels} {}", fmt(v));
        }
    };
    let lbl = |g: &str| format!("{{group=\"{}\"}}", escape(g));
    let groups: Vec<_> = config
        .groups
        .iter()
        .map(|g| (g, state.groups.get(&g.name)))
        .collect();
    fn scrape(gs: Option<&crate::state::GroupState>) -> Option<&crate::model::Scrape> {
        gs.and_then(|s| s.latest_scrape())
    }

    gauge(
        "group_size",
        "Droplets in the group (new and active): the last scrape and what apply changed since.",
        groups
            .iter()
            .filter_map(|(g, gs)| {
                let gs = (*gs)?;
                scrape(Some(gs)).map(|s| {
                    (
                        lbl(&g.name),
                        crate::plan::Members::of(&s.droplets, s.at, &gs.history).count() as f64,
                    )
                })
            })
            .collect(),
    );
    gauge(
        "group_desired",
        "Desired size of the last plan.",
        groups
            .iter()
            .filter_map(|(g, gs)| {
                gs.and_then(|s| s.plan.as_ref())
                    .map(|p| (lbl(&g.name), p.desired as f64))
            })
            .collect(),
    );
    gauge(
        "group_min",
        "Configured minimum size.",
        groups
            .iter()
            .map(|(g, _)| (lbl(&g.name), g.min as f64))
            .collect(),
    );
    gauge(
        "group_max",
        "Configured maximum size.",
        groups
            .iter()
            .map(|(g, _)| (lbl(&g.name), g.max as f64))
            .collect(),
    );
    gauge(
        "group_paused",
        "1 while the group is paused (`doscale pause`), 0 otherwise.",
        groups
            .iter()
            .map(|(g, gs)| {
                let paused = gs.is_some_and(|s| s.paused.is_some());
                (lbl(&g.name), if paused { 1.0 } else { 0.0 })
            })
            .collect(),
    );
    gauge(
        "group_scrape_failures",
        "Droplets whose last scrape failed.",
        groups
            .iter()
            .filter_map(|(g, gs)| {
                scrape(*gs).map(|s| {
                    (
                        lbl(&g.name),
                        s.droplets.iter().filter(|d| d.error.is_some()).count() as f64,
                    )
                })
            })
            .collect(),
    );
    gauge(
        "group_pending_operations",
        "Creates and destroys started and not yet finished.",
        groups
            .iter()
            .map(|(g, gs)| {
                (
                    lbl(&g.name),
                    gs.map(|s| s.pending.len()).unwrap_or(0) as f64,
                )
            })
            .collect(),
    );
    let mut last = Vec::new();
    for (g, gs) in &groups {
        for (dir, name) in [(Scale::Up, "up"), (Scale::Down, "down")] {
            if let Some(e) = gs.and_then(|s| s.history.iter().rev().find(|e| e.direction == dir)) {
                last.push((
                    format!("{{group=\"{}\",direction=\"{name}\"}}", escape(&g.name)),
                    e.at.timestamp() as f64,
                ));
            }
        }
    }
    gauge(
        "group_last_scale_timestamp_seconds",
        "When the last scale action in each direction was started (Unix time).",
        last,
    );
    gauge(
        "pass_duration_seconds",
        "How long the last pass took.",
        vec![(String::new(), pass_seconds)],
    );
    gauge(
        "pass_api_errors",
        "DigitalOcean API errors (including retried ones) in the last pass.",
        vec![(String::new(), api_errors as f64)],
    );
    gauge(
        "pass_success",
        "1 if the last pass succeeded, 0 if it failed.",
        vec![(String::new(), if ok { 1.0 } else { 0.0 })],
    );
    gauge(
        "pass_timestamp_seconds",
        "When the last pass ended (Unix time).",
        vec![(String::new(), now_unix)],
    );
    out
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes the file atomically with mode 0644; failures are logged, never fatal.
pub fn write(config: &Config, state: &State, pass_seconds: f64, api_errors: u64, ok: bool) {
    let Some(path) = &config.metrics_textfile else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let text = render(config, state, pass_seconds, api_errors, ok, now.floor());
    if let Err(e) = crate::state::write_atomic(path, text.as_bytes(), 0o644) {
        tracing::warn!("writing metrics_textfile {}: {e}", path.display());
    }
}
