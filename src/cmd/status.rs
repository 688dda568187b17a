//! `doscale status`: per group the size, bounds, last actions, cooldowns remaining, pending
//! operations, a pause and a size set by hand — read from the state file without taking the
//! lock. The size is the planner's own count ([`crate::plan::Members`]): the latest scrape
//! and what apply changed since.

use chrono::Utc;
use color_eyre::Result;
use serde_json::json;

use crate::config::Scale;
use crate::output::{self, sanitize};

pub fn run(ctx: &super::Ctx) -> Result<()> {
    let state =
        crate::state::load_file(&ctx.config.state_file, crate::state::Reading::latest(&[]))?;
    let now = Utc::now();
    let (groups, text) = report(&ctx.config, &state, now, &ctx.style);
    if ctx.json {
        output::print(&format!("{}\n", json!({"at": now, "groups": groups})));
    } else {
        output::print(&text);
    }
    Ok(())
}

/// What `status` shows at `now`, as JSON per group and as text: a pure function of the
/// config and the state, reading them with the planner's own rules (the members it counts,
/// the cooldowns it holds to).
pub fn report(
    config: &crate::config::Config,
    state: &crate::state::State,
    now: chrono::DateTime<Utc>,
    style: &output::Style,
) -> (Vec<serde_json::Value>, String) {
    let mut groups = Vec::new();
    let mut text = String::new();
    let empty = crate::state::GroupState::default();
    for g in &config.groups {
        let gs = state.groups.get(&g.name).unwrap_or(&empty);
        let scrape = gs.latest_scrape();
        let members = scrape.map(|s| crate::plan::Members::of(&s.droplets, s.at, &gs.history));
        let size = members.as_ref().map(crate::plan::Members::count);
        let since_scrape = members
            .as_ref()
            .and_then(crate::plan::Members::changed_since_scrape);
        let failing = scrape
            .map(|s| s.droplets.iter().filter(|d| d.error.is_some()).count())
            .unwrap_or(0);
        let remaining = |cool: std::time::Duration| -> Option<chrono::Duration> {
            let c = crate::plan::cooling(&gs.history, now, cool)?;
            chrono::Duration::from_std(c.left).ok()
        };
        let up = remaining(g.cooldown_up);
        let down = remaining(g.cooldown_down);
        let desired = gs.plan.as_ref().map(|p| p.desired);
        groups.push(json!({
            "name": g.name, "tag": g.tag, "size": size, "min": g.min, "max": g.max, "desired": desired,
            "failing_scrape": failing,
            "last_scrape": scrape.map(|s| s.at),
            "cooldown_up_remaining_s": up.map(|d| d.num_seconds()),
            "cooldown_down_remaining_s": down.map(|d| d.num_seconds()),
            "pending": gs.pending, "history": gs.history.iter().rev().take(10).collect::<Vec<_>>(),
            "paused": gs.paused, "set": gs.manual,
        }));
        text.push_str(&format!(
            "group {} (tag {}): size {} (min {}, max {}), desired {}, {} failing scrape, last scrape {}\n",
            sanitize(&g.name),
            sanitize(&g.tag),
            size.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
            g.min,
            g.max,
            desired.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
            failing,
            scrape.map(|s| format!("{} ago", output::age(now - s.at))).unwrap_or_else(|| "never".into()),
        ));
        if let Some((created, destroyed)) = &since_scrape {
            text.push_str(&format!(
                "  since the last scrape apply created {} and destroyed {} (counted in the size)\n",
                created.len(),
                destroyed.len()
            ));
        }
        if let Some(p) = &gs.paused {
            text.push_str(&format!(
                "  PAUSED since {} ago{}: scraped and evaluated, never changed; `doscale resume {}` to resume\n",
                output::age(now - p.since),
                p.by.as_deref().map(|b| format!(" by {}", sanitize(b))).unwrap_or_default(),
                sanitize(&g.name)
            ));
        }
        if let Some(m) = &gs.manual {
            text.push_str(&format!(
                "  set: desired {} by `doscale set` {} ago{}, not yet applied\n",
                m.desired,
                output::age(now - m.at),
                m.by.as_deref()
                    .map(|b| format!(" by {}", sanitize(b)))
                    .unwrap_or_default(),
            ));
        }
        text.push_str(&format!(
            "  cooldown: up {}, down {}\n",
            up.map(|d| format!("{} left", output::age(d)))
                .unwrap_or_else(|| "clear".into()),
            down.map(|d| format!("{} left", output::age(d)))
                .unwrap_or_else(|| "clear".into()),
        ));
        for p in &gs.pending {
            text.push_str(
                &format!(
                    "  pending {:?} {}{} ({}, since {} ago)\n",
                    p.kind,
                    sanitize(&p.name),
                    p.id.map(|i| format!(" ({i})")).unwrap_or_default(),
                    sanitize(&p.stage.to_string()),
                    output::age(now - p.since)
                )
                .to_lowercase(),
            );
        }
        if !gs.history.is_empty() {
            text.push_str(&history_table(&gs.history, now, style));
        }
    }
    (groups, text)
}

/// The last ten scale actions, newest first: when, direction, droplets, outcome and reason;
/// `-o wide` adds the time itself, how long the action took and the droplets' ids.
pub fn history_table(
    history: &[crate::model::HistoryEntry],
    now: chrono::DateTime<Utc>,
    style: &output::Style,
) -> String {
    let header = if style.wide {
        vec![
            "at",
            "when",
            "direction",
            "droplets",
            "outcome",
            "took",
            "reason",
        ]
    } else {
        vec!["when", "direction", "droplets", "outcome", "reason"]
    };
    let mut t = style.table(header);
    for e in history.iter().rev().take(10) {
        let mut row = Vec::new();
        if style.wide {
            row.push(e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        row.push(format!("{} ago", output::age(now - e.at)));
        row.push(match e.direction {
            Scale::Up => "up".into(),
            Scale::Down => "down".to_string(),
        });
        row.push(
            e.droplets
                .iter()
                .map(|d| match d.id {
                    Some(id) if style.wide => format!("{} ({id})", sanitize(&d.name)),
                    _ => sanitize(&d.name),
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
        row.push(sanitize(&e.outcome.to_string()));
        if style.wide {
            row.push(
                e.finished_at
                    .map(|f| output::age(f - e.at))
                    .unwrap_or_else(|| "—".into()),
            );
        }
        row.push(sanitize(&e.reason));
        t.add_row(row);
    }
    format!("{t}\n")
}
