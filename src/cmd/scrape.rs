//! `doscale scrape`: list each group's droplets, fetch every active droplet's metrics, store
//! the scrape (the last two per group are kept) and show the load table.

use std::collections::HashMap;

use chrono::Utc;
use color_eyre::Result;
use comfy_table::{Cell, Color};
use serde_json::json;

use crate::model::{Scrape, ScrapedDroplet};
use crate::output::{self, sanitize};
use crate::state::State;

pub fn run(ctx: &super::Ctx, args: &crate::cli::ScrapeArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut state = store.load()?;
    let api = ctx.api()?;
    crate::pipeline::scrape(&ctx.env(api.as_ref()), &mut state, args.all)?;
    store.save(&state)?;
    if ctx.json {
        output::print(&format!("{}\n", render_json(ctx, &state)));
    } else {
        output::print(&render_table(ctx, &state));
    }
    Ok(())
}

/// Load figures of one droplet: load1, CPU utilisation (needs the previous scrape), bytes of
/// memory available.
pub struct Load {
    pub load1: Option<f64>,
    pub cpu: Option<f64>,
    pub mem_avail: Option<f64>,
    pub mem_total: Option<f64>,
}

pub fn load_of(
    cur: &ScrapedDroplet,
    cur_at: chrono::DateTime<Utc>,
    prev: Option<(&ScrapedDroplet, chrono::DateTime<Utc>)>,
) -> Load {
    let idle = |d: &ScrapedDroplet| -> HashMap<crate::series::Key, f64> {
        d.series
            .iter()
            .filter(|(k, _)| {
                crate::series::name_of(k) == "node_cpu_seconds_total" && k.contains("mode=\"idle\"")
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let cpu = prev.and_then(|(p, p_at)| {
        let dt = (cur_at - p_at).num_milliseconds() as f64 / 1000.0;
        if dt <= 0.0 {
            return None;
        }
        let (now, before) = (idle(cur), idle(p));
        let mut busy = 0.0;
        let mut n = 0;
        for (k, v) in &now {
            if let Some(b) = before.get(k) {
                let inc = crate::expr::counter_increase(*b, *v);
                busy += 1.0 - (inc / dt).min(1.0);
                n += 1;
            }
        }
        (n > 0).then(|| busy / n as f64)
    });
    Load {
        load1: cur.series.get("node_load1").copied(),
        cpu,
        mem_avail: cur.series.get("node_memory_MemAvailable_bytes").copied(),
        mem_total: cur.series.get("node_memory_MemTotal_bytes").copied(),
    }
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "—".into())
}

/// The load table of every group's latest scrape: droplet, status, load1, CPU %, memory
/// available and scrape error; `-o wide` adds the address, the age and the number of series
/// kept.
pub fn render_table(ctx: &super::Ctx, state: &State) -> String {
    let style = &ctx.style;
    let mut out = String::new();
    let now = Utc::now();
    for g in &ctx.config.groups {
        let Some(gs) = state.groups.get(&g.name) else {
            continue;
        };
        let Some(cur) = gs.latest_scrape() else {
            continue;
        };
        let prev = gs.previous_scrape();
        let prev_by_id: HashMap<u64, &ScrapedDroplet> = prev
            .map(|p| p.droplets.iter().map(|d| (d.id, d)).collect())
            .unwrap_or_default();
        let header = if style.wide {
            vec![
                "droplet",
                "address",
                "status",
                "age",
                "load1",
                "CPU %",
                "mem available",
                "series",
                "error",
            ]
        } else {
            vec![
                "droplet",
                "status",
                "load1",
                "CPU %",
                "mem available",
                "error",
            ]
        };
        let mut t = style.table(header);
        for d in &cur.droplets {
            let l = load_of(
                d,
                cur.at,
                prev_by_id.get(&d.id).map(|p| (*p, prev.expect("prev").at)),
            );
            let mut row = vec![Cell::new(format!("{} ({})", sanitize(&d.name), d.id))];
            if style.wide {
                row.push(Cell::new(
                    d.address
                        .as_deref()
                        .map(sanitize)
                        .unwrap_or_else(|| "—".into()),
                ));
            }
            row.push(Cell::new(sanitize(&d.status)));
            if style.wide {
                row.push(Cell::new(output::age(now - d.created_at)));
            }
            row.push(Cell::new(fmt_opt(l.load1, |v| format!("{v:.2}"))));
            row.push(Cell::new(fmt_opt(l.cpu, |v| format!("{:.0}%", v * 100.0))));
            row.push(Cell::new(match (l.mem_avail, l.mem_total) {
                (Some(a), Some(t)) if t > 0.0 => {
                    format!("{} ({:.0}%)", output::bytes(a), a / t * 100.0)
                }
                (Some(a), _) => output::bytes(a),
                _ => "—".into(),
            }));
            if style.wide {
                row.push(Cell::new(d.series.len()));
            }
            row.push(output::coloured(
                d.error.as_deref().map(sanitize).unwrap_or_default(),
                Color::Red,
            ));
            t.add_row(row);
        }
        let failed = cur.droplets.iter().filter(|d| d.error.is_some()).count();
        out.push_str(&format!(
            "group {} (tag {}): {} droplets, {} failed to scrape, at {}{}\n",
            sanitize(&g.name),
            sanitize(&g.tag),
            cur.droplets.len(),
            failed,
            cur.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            if prev.is_none() {
                " (CPU % needs a second scrape)"
            } else {
                ""
            }
        ));
        out.push_str(&format!("{t}\n"));
        if cur.bad_lines > 0 {
            out.push_str(&format!(
                "{} metric line(s) could not be read faithfully and were left out, e.g. {}\n",
                cur.bad_lines,
                cur.bad_line_example.as_deref().unwrap_or("?")
            ));
        }
    }
    out
}

/// `scrape --output json` (docs/design.md §6).
pub fn render_json(ctx: &super::Ctx, state: &State) -> serde_json::Value {
    let mut groups = Vec::new();
    let mut at = None;
    for g in &ctx.config.groups {
        let Some(cur) = state.groups.get(&g.name).and_then(|s| s.latest_scrape()) else {
            continue;
        };
        at = Some(cur.at);
        groups.push(group_json(&g.name, &g.tag, cur));
    }
    json!({"at": at.map(|t| t.to_rfc3339()), "groups": groups})
}

fn group_json(name: &str, tag: &str, s: &Scrape) -> serde_json::Value {
    let droplets: Vec<_> = s
        .droplets
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "name": d.name,
                "status": d.status,
                "created_at": d.created_at.to_rfc3339(),
                "address": d.address,
                "error": d.error,
                "protected": d.protected,
                "series": d.series,
            })
        })
        .collect();
    json!({"name": name, "tag": tag, "at": s.at.to_rfc3339(), "droplets": droplets,
           "bad_lines": s.bad_lines, "bad_line_example": s.bad_line_example})
}
