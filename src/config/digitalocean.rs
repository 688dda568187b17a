//! `[group.metrics] source = "digitalocean"`: the DigitalOcean monitoring API as a group's
//! metric source, and its options in `[group.metrics.digitalocean]`.
//!
//! This is the pure half (the config layer): which do-agent series the monitoring endpoints
//! stand in for ([`SERIES`]), the validated options ([`DoMonitoring`]), and the check that every
//! expression of the group reads only series this source serves (a config error otherwise,
//! at load and in `check`). The fetching is `sources::digitalocean`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::RawGroup;
use super::validate::Cx;
use crate::error::ConfigError;

/// `[group.metrics.digitalocean]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDigitalOcean {
    pub(super) budget_per_minute: Option<Spanned<i64>>,
    pub(super) budget_per_hour: Option<Spanned<i64>>,
    pub(super) window: Option<Spanned<String>>,
}

/// DigitalOcean's limits of one token (docs: 250 requests a minute, 5000 an hour): the
/// budgets cannot be set above them.
pub const API_PER_MINUTE: u32 = 250;
pub const API_PER_HOUR: u32 = 5000;

/// The options of the monitoring source.
#[derive(Debug, Clone, PartialEq)]
pub struct DoMonitoring {
    /// At most this many API requests in one pass of the group (listing included). A pass
    /// lasts less than a minute, and the timer runs it at most once a minute.
    pub budget_per_minute: u32,
    /// The token's use in the API's current hour (what `ratelimit-limit` minus
    /// `ratelimit-remaining` says, every client of the token counted) is never taken past
    /// this: the rest is left for creates, deletes and other tools.
    pub budget_per_hour: u32,
    /// How far back each request looks for the latest sample (`start = now - window`).
    pub window: Duration,
}

impl Default for DoMonitoring {
    fn default() -> Self {
        DoMonitoring {
            budget_per_minute: 200,
            budget_per_hour: 4000,
            window: Duration::from_secs(300),
        }
    }
}

/// How a do-agent family is read from the monitoring API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gauge: the latest sample, as it is.
    Gauge,
    /// `node_cpu_seconds_total`: the API's cumulative seconds per `mode` (all CPUs
    /// together), extrapolated to the pass time and shared evenly among the droplet's
    /// `vcpus` as `cpu="0"`, `cpu="1"`…
    CpuCounter,
    /// `node_network_*_bytes_total`: the API serves a rate (Mbps per interface and
    /// direction); its integral since the start of the current UTC hour is the counter
    /// (`device="eth0"` for `interface=public`, `eth1` for `private`).
    BandwidthCounter,
}

/// One do-agent family and the endpoint under `/v2/monitoring/metrics/droplet/` that serves
/// it (with `direction` for bandwidth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub family: &'static str,
    pub endpoint: &'static str,
    pub direction: Option<&'static str>,
    pub kind: Kind,
}

const fn gauge(family: &'static str, endpoint: &'static str) -> Mapped {
    Mapped {
        family,
        endpoint,
        direction: None,
        kind: Kind::Gauge,
    }
}

/// Every do-agent family the monitoring source serves (the map documented in
/// docs/operations.md and doscale.toml(5)).
pub const SERIES: [Mapped; 12] = [
    Mapped {
        family: "node_cpu_seconds_total",
        endpoint: "cpu",
        direction: None,
        kind: Kind::CpuCounter,
    },
    gauge("node_filesystem_free_bytes", "filesystem_free"),
    gauge("node_filesystem_size_bytes", "filesystem_size"),
    gauge("node_load1", "load_1"),
    gauge("node_load15", "load_15"),
    gauge("node_load5", "load_5"),
    gauge("node_memory_Cached_bytes", "memory_cached"),
    gauge("node_memory_MemAvailable_bytes", "memory_available"),
    gauge("node_memory_MemFree_bytes", "memory_free"),
    gauge("node_memory_MemTotal_bytes", "memory_total"),
    Mapped {
        family: "node_network_receive_bytes_total",
        endpoint: "bandwidth",
        direction: Some("inbound"),
        kind: Kind::BandwidthCounter,
    },
    Mapped {
        family: "node_network_transmit_bytes_total",
        endpoint: "bandwidth",
        direction: Some("outbound"),
        kind: Kind::BandwidthCounter,
    },
];

/// The mapping of `family`, if the monitoring source serves it.
pub fn mapped(family: &str) -> Option<&'static Mapped> {
    SERIES.iter().find(|m| m.family == family)
}

/// The families served, for messages.
pub fn served() -> Vec<&'static str> {
    SERIES.iter().map(|m| m.family).collect()
}

impl Cx<'_> {
    /// `[group.metrics.digitalocean]`.
    pub(super) fn digitalocean(
        &self,
        d: Option<&RawDigitalOcean>,
        k: &dyn Fn(&str) -> String,
    ) -> Result<DoMonitoring, ConfigError> {
        let mut out = DoMonitoring::default();
        let Some(d) = d else { return Ok(out) };
        if let Some(v) = &d.budget_per_minute {
            out.budget_per_minute = self.count(
                v,
                &k("metrics.digitalocean.budget_per_minute"),
                1,
                i64::from(API_PER_MINUTE),
            )?;
        }
        if let Some(v) = &d.budget_per_hour {
            out.budget_per_hour = self.count(
                v,
                &k("metrics.digitalocean.budget_per_hour"),
                1,
                i64::from(API_PER_HOUR),
            )?;
        }
        if let Some(w) = &d.window {
            let key = k("metrics.digitalocean.window");
            let window = self.duration(w, &key)?;
            if window < Duration::from_secs(60) || window > Duration::from_secs(3600) {
                return Err(self.at(
                    w.span(),
                    &key,
                    "expected a duration from \"1m\" to \"1h\" (the API keeps a sample a minute or so)",
                ));
            }
            out.window = window;
        }
        Ok(out)
    }

    /// With `source = "digitalocean"`, every metric an expression of the group names must be
    /// one the monitoring API serves: a condition on another could never hold.
    pub(super) fn digitalocean_series(&self, g: &RawGroup, group: &str) -> Result<(), ConfigError> {
        let check = |s: &Spanned<String>, key: String| -> Result<(), ConfigError> {
            let e = self.expr(s, &key)?;
            for name in e.metric_names() {
                if mapped(name).is_some() {
                    continue;
                }
                let offset = super::validate::name_offset(s.get_ref(), name).unwrap_or(0);
                let at = s.span().start + 1 + offset;
                return Err(self.at(at..at, &key, format!(
                    "metric `{name}` is not served by the DigitalOcean monitoring API (source = \"digitalocean\"), so this condition could never be evaluated; it serves {}; use one of those, or source = \"scrape\"",
                    served().join(", ")
                )));
            }
            Ok(())
        };
        for p in &g.policy {
            let p = p.get_ref();
            for c in &p.conditions {
                let c = c.get_ref();
                check(
                    &c.expr,
                    format!(
                        "group[{group}].policy[{}].conditions[{}].expr",
                        p.name.get_ref(),
                        c.name.get_ref()
                    ),
                )?;
            }
        }
        if let Some(t) = &g.target {
            check(&t.get_ref().expr, format!("group[{group}].target.expr"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_family_is_a_do_agent_family() {
        for m in served() {
            assert!(crate::expr::families::is_do_agent(m), "{m}");
        }
        assert!(mapped("node_load1").is_some());
        assert!(mapped("node_disk_read_bytes_total").is_none());
        assert!(mapped("node_memory_SwapFree_bytes").is_none());
    }
}
