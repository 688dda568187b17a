//! Metric sources: where a group's per-droplet series come from. A source turns the group's
//! droplets (listed through the DigitalOcean API) and the series its expressions reference
//! into a [`Scrape`]; `evaluate` and everything after it do not know which source filled it.
//!
//! Sources: [`DoAgent`], every droplet's do-agent page fetched directly (see `scrape`);
//! [`prometheus`], a Prometheus-compatible query API that evaluates the expressions itself;
//! [`digitalocean::DoMonitoringSource`], DigitalOcean's monitoring API.
//! A source implements [`MetricSource`] and is picked per group in [`Configured`] by
//! `[group.metrics] source`; a droplet it has no data for carries an `error` ("no data"),
//! never zeros.

pub mod digitalocean;
pub mod prometheus;

use color_eyre::Result;
use indicatif::ProgressBar;

use crate::clock::Clock;
use crate::config::Group;
use crate::do_api::DoApi;
use crate::model::Scrape;

/// Fills one group's [`Scrape`] at `clock.now()`.
pub trait MetricSource: Send + Sync {
    /// `Err` only when the group cannot be listed; a droplet without data is data (its
    /// `error`). `all` keeps every series, not only those the expressions reference.
    fn scrape(
        &self,
        api: &dyn DoApi,
        group: &Group,
        all: bool,
        progress: Option<&ProgressBar>,
        clock: &dyn Clock,
    ) -> Result<Scrape>;
}

/// do-agent's page on every droplet (port 9110), fetched directly.
#[derive(Debug, Default, Clone, Copy)]
pub struct DoAgent;

impl MetricSource for DoAgent {
    fn scrape(
        &self,
        api: &dyn DoApi,
        group: &Group,
        all: bool,
        progress: Option<&ProgressBar>,
        clock: &dyn Clock,
    ) -> Result<Scrape> {
        crate::scrape::scrape_group(api, group, all, progress, || clock.now())
    }
}

/// Every droplet of the group, each once (a droplet that moved between pages while they were
/// listed is listed twice): what a source that does not page as it goes starts from.
pub fn list_group(api: &dyn DoApi, group: &Group) -> Result<Vec<crate::do_api::model::Droplet>> {
    use color_eyre::eyre::WrapErr;
    let listed = api.list_all(&group.tag).wrap_err_with(|| {
        format!(
            "listing the droplets of group {} (tag {})",
            group.name, group.tag
        )
    })?;
    let mut seen = std::collections::HashSet::new();
    Ok(listed.into_iter().filter(|d| seen.insert(d.id)).collect())
}

/// The source each group's configuration names.
#[derive(Debug, Default, Clone, Copy)]
pub struct Configured;

impl MetricSource for Configured {
    fn scrape(
        &self,
        api: &dyn DoApi,
        group: &Group,
        all: bool,
        progress: Option<&ProgressBar>,
        clock: &dyn Clock,
    ) -> Result<Scrape> {
        match &group.metrics.source {
            crate::config::Source::Scrape => DoAgent.scrape(api, group, all, progress, clock),
            crate::config::Source::Prometheus(cfg) => {
                prometheus::scrape_group(api, group, cfg, progress, clock.now())
            }
            crate::config::Source::DigitalOcean(_) => {
                digitalocean::DoMonitoringSource.scrape(api, group, all, progress, clock)
            }
        }
    }
}
