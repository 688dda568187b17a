//! Metric sources: where a group's per-droplet series come from. A source turns the group's
//! droplets (listed through the DigitalOcean API) and the series its expressions reference
//! into a [`Scrape`]; `evaluate` and everything after it do not know which source filled it.
//!
//! Today's source is [`DoAgent`]: every droplet's do-agent page, fetched directly (see
//! `scrape`). A new source implements [`MetricSource`] and is picked per group in
//! [`Configured`]; a droplet it has no data for carries an `error` ("no data"), never zeros.

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
        DoAgent.scrape(api, group, all, progress, clock)
    }
}
