//! The DigitalOcean monitoring API as a metric source (`[group.metrics] source =
//! "digitalocean"`): the group is listed through the API as for a scrape, then every active
//! droplet's series come from `GET /v2/monitoring/metrics/droplet/*`, one request per
//! endpoint the group's expressions need, mapped to the do-agent names
//! (`config::digitalocean::SERIES`) so that the same expressions evaluate unchanged.
//!
//! The requests of a pass are planned within a budget before the first one is sent
//! ([`plan`]): at most `budget_per_minute` in the pass, and never past `budget_per_hour` of
//! the token's hourly use as the API's `ratelimit-*` headers report it. A droplet that does
//! not fit gets the error "no data: request budget exhausted …", never zeros, so the plan
//! cannot shrink the group on it. A 429 is not waited out: it stops the pass the same way.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use color_eyre::Result;
use indicatif::ProgressBar;

use super::MetricSource;
use crate::clock::Clock;
use crate::config::digitalocean::{DoMonitoring, Kind, Mapped, SERIES};
use crate::config::{Group, Source};
use crate::do_api::model::Droplet;
use crate::do_api::monitoring::{MetricQuery, Metrics, RateLimit};
use crate::do_api::{DoApi, PER_PAGE};
use crate::exposition::Keep;
use crate::model::series::{self, SeriesMap};
use crate::model::{Scrape, ScrapedDroplet};
use crate::scrape::GroupKeep;

/// Most droplets fetched at once (each one's requests go one after the other).
const WORKERS: usize = 8;

/// One request a droplet costs in a pass: an endpoint, and for bandwidth the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub mapped: &'static Mapped,
    /// `public` (do-agent's `eth0`) or `private` (`eth1`), bandwidth only.
    pub interface: Option<&'static str>,
}

impl Need {
    /// The endpoint as written in messages: `cpu`, `bandwidth (public, inbound)`.
    pub fn label(&self) -> String {
        match (self.interface, self.mapped.direction) {
            (Some(i), Some(d)) => format!("{} ({i}, {d})", self.mapped.endpoint),
            _ => self.mapped.endpoint.to_string(),
        }
    }
}

/// do-agent's name of a bandwidth interface.
fn device(interface: &str) -> &'static str {
    if interface == "public" {
        "eth0"
    } else {
        "eth1"
    }
}

/// The requests one droplet costs in a pass of `group`: one per mapped family its
/// expressions read (each bandwidth family once per interface a selector can match);
/// with `all`, every endpoint.
pub fn needs(group: &Group, all: bool) -> Vec<Need> {
    let keep = GroupKeep::new(group, all);
    let families = group.referenced_families();
    let mut out = Vec::new();
    for m in SERIES.iter() {
        if !all && !families.contains(m.family) {
            continue;
        }
        match m.kind {
            Kind::BandwidthCounter => {
                for interface in ["public", "private"] {
                    if keep.series(m.family, &[("device", device(interface))]) {
                        out.push(Need {
                            mapped: m,
                            interface: Some(interface),
                        });
                    }
                }
            }
            _ => out.push(Need {
                mapped: m,
                interface: None,
            }),
        }
    }
    out
}

/// Requests of the listing of `droplets` droplets (pages of [`PER_PAGE`], at least one).
pub fn listing_requests(droplets: u64) -> u64 {
    droplets.div_ceil(u64::from(PER_PAGE)).max(1)
}

/// What a pass may fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Requests the droplets may use (the listing's already taken off).
    pub allowed: u64,
    /// Droplets whose requests fit.
    pub droplets: u64,
    /// Why not every droplet fits (`None` if they do).
    pub short: Option<String>,
}

/// Plans a pass: `active` droplets of `per_droplet` requests each, after `listed` requests of
/// listing, within `cfg`'s budgets and what the API's headers (`limits`, if it sent any) say
/// is left of the hour.
pub fn plan(
    cfg: &DoMonitoring,
    listed: u64,
    limits: Option<RateLimit>,
    per_droplet: u64,
    active: u64,
) -> Plan {
    let minute = u64::from(cfg.budget_per_minute).saturating_sub(listed);
    let hour = match limits {
        Some(l) => u64::from(cfg.budget_per_hour)
            .min(l.limit)
            .saturating_sub(l.used()),
        None => u64::from(cfg.budget_per_hour).saturating_sub(listed),
    };
    let allowed = minute.min(hour);
    let fit = allowed.checked_div(per_droplet).unwrap_or(active);
    let droplets = fit.min(active);
    let short = (droplets < active).then(|| {
        let what = if hour < minute {
            match limits {
                Some(l) => format!(
                    "the token has used {} of budget_per_hour = {} requests this hour (ratelimit-remaining {} of {})",
                    l.used(),
                    cfg.budget_per_hour,
                    l.remaining,
                    l.limit
                ),
                None => format!("budget_per_hour = {}", cfg.budget_per_hour),
            }
        } else {
            format!(
                "budget_per_minute = {} ({listed} for the listing)",
                cfg.budget_per_minute
            )
        };
        format!(
            "{droplets} of {active} droplets fit at {per_droplet} requests each within {what}"
        )
    });
    Plan {
        allowed,
        droplets,
        short,
    }
}

/// The source.
#[derive(Debug, Default, Clone, Copy)]
pub struct DoMonitoringSource;

impl MetricSource for DoMonitoringSource {
    fn scrape(
        &self,
        api: &dyn DoApi,
        group: &Group,
        all: bool,
        progress: Option<&ProgressBar>,
        clock: &dyn Clock,
    ) -> Result<Scrape> {
        let cfg = match &group.metrics.source {
            Source::DigitalOcean(c) => c.clone(),
            _ => DoMonitoring::default(),
        };
        // The API takes whole seconds: the samples are as of this second, and so is the
        // scrape (rates between passes divide by the same interval the samples span).
        let now = clock.now();
        let at = DateTime::<Utc>::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let listed: Vec<Droplet> = super::list_group(api, group)?;
        let needs = needs(group, all);
        let keep = GroupKeep::new(group, all);
        let active = listed.iter().filter(|d| d.status == "active").count() as u64;
        let plan = plan(
            &cfg,
            listing_requests(listed.len() as u64),
            api.rate_limit(),
            needs.len() as u64,
            active,
        );
        if let Some(short) = &plan.short {
            tracing::warn!(
                "group {}: monitoring API request budget: {short}; the others are no data this pass",
                group.name
            );
        }
        if let Some(pb) = progress {
            pb.inc_length(listed.len() as u64);
        }
        let protect = group.protect_tag.as_deref();
        let mut out: Vec<ScrapedDroplet> = listed
            .iter()
            .map(|d| crate::scrape::head(d, &group.metrics, protect))
            .collect();
        let todo: Vec<usize> = (0..listed.len())
            .filter(|&i| listed[i].status == "active")
            .collect();
        let budget = AtomicU64::new(plan.allowed);
        let next = AtomicUsize::new(0);
        // Why the pass stopped early (budget, 429): every droplet not begun gets it.
        let stopped: Mutex<Option<String>> = Mutex::new(None);
        let results: Mutex<Vec<(usize, Result<SeriesMap, String>)>> = Mutex::new(Vec::new());
        let per = needs.len() as u64;
        let now = at.timestamp();
        std::thread::scope(|s| {
            for _ in 0..WORKERS.min(todo.len()) {
                s.spawn(|| loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = todo.get(n) else { break };
                    let d = &listed[i];
                    let reason = {
                        let stop = stopped.lock().unwrap_or_else(|e| e.into_inner());
                        stop.clone()
                    };
                    let reserved = reason.is_none()
                        && budget
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(per))
                            .is_ok();
                    // The headers may say that other clients of the token used the hour meanwhile.
                    let hour_left = api
                        .rate_limit()
                        .map(|l| u64::from(cfg.budget_per_hour).min(l.limit).saturating_sub(l.used()));
                    let r = if let Some(why) = reason {
                        Err(why)
                    } else if !reserved {
                        Err(format!(
                            "no data: request budget exhausted ({})",
                            plan.short.clone().unwrap_or_else(|| "budget_per_minute".into())
                        ))
                    } else if hour_left.is_some_and(|left| left < per) {
                        Err(format!(
                            "no data: request budget exhausted (budget_per_hour = {} reached, as the API's ratelimit headers say)",
                            cfg.budget_per_hour
                        ))
                    } else {
                        fetch_droplet(api, &needs, d, &cfg, now, &keep).map_err(|(e, throttled)| {
                            if throttled {
                                let why = format!("no data: request budget exhausted (the API answered 429: {e})");
                                *stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
                                why
                            } else {
                                format!("no data: {e}")
                            }
                        })
                    };
                    if let Some(pb) = progress {
                        pb.inc(1);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
                });
            }
        });
        for (i, r) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            match r {
                Ok(series) => out[i].series = series,
                Err(e) => out[i].error = Some(e),
            }
        }
        Ok(Scrape {
            at,
            droplets: out,
            bad_lines: 0,
            bad_line_example: None,
        })
    }
}

/// One droplet's requests, one after the other; the first failure ends it (`true` with a
/// 429: the pass stops).
fn fetch_droplet(
    api: &dyn DoApi,
    needs: &[Need],
    d: &Droplet,
    cfg: &DoMonitoring,
    now: i64,
    keep: &dyn Keep,
) -> std::result::Result<SeriesMap, (String, bool)> {
    let mut series = SeriesMap::new();
    let window = cfg.window.as_secs() as i64;
    let hour_start = now - now.rem_euclid(3600);
    for need in needs {
        let m = need.mapped;
        let start = match m.kind {
            // The counter is the integral since the hour began: ask from there.
            Kind::BandwidthCounter => hour_start.min(now - window),
            _ => now - window,
        };
        let q = MetricQuery {
            endpoint: m.endpoint,
            host_id: d.id,
            start,
            end: now,
            interface: need.interface,
            direction: m.direction,
        };
        let body = api
            .droplet_metric(&q)
            .map_err(|e| (e.to_string(), e.status() == Some(429)))?;
        let got = map(need, &body, hour_start as f64, d.vcpus.unwrap_or(1)).map_err(|e| {
            (
                format!("{}: {e}", q.path().split('?').next().unwrap_or_default()),
                false,
            )
        })?;
        if got.is_empty() {
            return Err((
                format!(
                    "the monitoring API has no {} samples in the last {} (is the droplet's agent running?)",
                    need.label(),
                    crate::units::dur(cfg.window)
                ),
                false,
            ));
        }
        for (k, v) in got {
            let (name, labels) = series::parse(&k).unwrap_or((m.family, Vec::new()));
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            if keep.series(name, &labels) {
                series.insert(k.as_str().into(), v);
            }
        }
    }
    Ok(series)
}

/// The do-agent series (key, value) one response stands for. Pure: the mapping of
/// docs/operations.md, tested below.
pub fn map(
    need: &Need,
    body: &Metrics,
    hour_start: f64,
    vcpus: u32,
) -> std::result::Result<Vec<(String, f64)>, String> {
    if body.status != "success" {
        return Err(format!(
            "status {:?}",
            crate::output::sanitize(&body.status)
        ));
    }
    let m = need.mapped;
    let mut out = Vec::new();
    for r in &body.data.result {
        let mut points: Vec<(f64, f64)> = r
            .values
            .iter()
            .map(|(t, v)| (t.0, v.0))
            .filter(|(t, v)| t.is_finite() && v.is_finite())
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(_, last)) = points.last() else {
            continue;
        };
        let label = |k: &str| r.metric.get(k).map(String::as_str).unwrap_or("");
        match m.kind {
            Kind::Gauge if m.family.starts_with("node_filesystem_") => out.push((
                series::key(
                    m.family,
                    [
                        ("device", label("device")),
                        ("fstype", label("fstype")),
                        ("mountpoint", label("mountpoint")),
                    ],
                ),
                last,
            )),
            Kind::Gauge => out.push((m.family.to_string(), last)),
            Kind::CpuCounter => {
                let n = vcpus.max(1);
                let mode = label("mode");
                for cpu in 0..n {
                    let cpu = cpu.to_string();
                    out.push((
                        series::key(m.family, [("cpu", cpu.as_str()), ("mode", mode)]),
                        last / f64::from(n),
                    ));
                }
            }
            Kind::BandwidthCounter => {
                // Mbps between consecutive samples since the hour began, integrated.
                let mut bytes = 0.0;
                let mut prev: Option<f64> = None;
                for &(t, mbps) in points.iter().filter(|(t, _)| *t >= hour_start) {
                    if let Some(p) = prev {
                        bytes += mbps.max(0.0) * 1e6 / 8.0 * (t - p);
                    }
                    prev = Some(t);
                }
                let dev = device(need.interface.unwrap_or("public"));
                out.push((series::key(m.family, [("device", dev)]), bytes.floor()));
            }
        }
    }
    Ok(out)
}

/// `doscale check`'s line for a group on this source: what a pass costs.
pub fn cost_line(group: &Group, cfg: &DoMonitoring) -> String {
    let needs = needs(group, false);
    let per = needs.len() as u64;
    let sizes: Vec<u64> = [1u64, 10, 50, 100, u64::from(group.max)]
        .into_iter()
        .filter(|&n| n <= u64::from(group.max).max(1))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let costs: Vec<String> = sizes
        .iter()
        .map(|&n| {
            let total = n * per + listing_requests(n);
            let p = plan(cfg, listing_requests(n), None, per, n);
            let fits = if p.droplets < n {
                format!(
                    " (over budget_per_minute = {}: {} fit)",
                    cfg.budget_per_minute, p.droplets
                )
            } else {
                String::new()
            };
            format!("{n} droplets = {total}{fits}")
        })
        .collect();
    let fit = plan(cfg, 1, None, per, u64::MAX).droplets;
    format!(
        "group {}: source digitalocean: {per} requests per droplet per pass ({}) plus 1 per {PER_PAGE} droplets listed: {}; budget_per_minute = {} covers {fit} droplets a pass, budget_per_hour = {} about {} passes an hour at {} droplets",
        group.name,
        needs.iter().map(Need::label).collect::<Vec<_>>().join(", "),
        costs.join(", "),
        cfg.budget_per_minute,
        cfg.budget_per_hour,
        u64::from(cfg.budget_per_hour) / (u64::from(group.max) * per + listing_requests(u64::from(group.max))).max(1),
        group.max,
    )
}

#[cfg(test)]
mod tests;
