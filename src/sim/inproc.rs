//! The simulated fleet in-process, on a virtual clock: the fleet of `doscale sim` (the same
//! droplets, load model, ids and exposition text) behind the [`DoApi`] and [`MetricSource`]
//! traits instead of HTTP on loopback, so `doscale backtest` can run a month of passes in
//! seconds through the very pipeline production runs.
//!
//! Time is the [`Clock`]'s: a created droplet is `new` until `activate` has passed on that
//! clock, then `active` (its counters start at that instant). The metric source renders each
//! active droplet's do-agent page with the simulator's renderer and reads it with the same
//! parser and keep-filter as a real scrape (`scrape::listed`, `scrape::read_page`,
//! `scrape::GroupKeep`); only the HTTP fetch is left out.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use color_eyre::Result;
use indicatif::ProgressBar;

use super::fleet::{self, State, Status};
use super::metrics;
use crate::clock::Clock;
use crate::config::Group;
use crate::do_api::model::{
    Action, ActionLink, CreateLinks, CreateRequest, CreateResponse, Droplet,
};
use crate::do_api::{ApiError, Deleted, DoApi};
use crate::model::Scrape;
use crate::sources::MetricSource;

/// A simulated fleet on a virtual clock.
pub struct InProc {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    /// Time 0 of the load model.
    start: DateTime<Utc>,
    activate: chrono::Duration,
}

impl std::fmt::Debug for InProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProc")
            .field("start", &self.start)
            .field("activate", &self.activate)
            .finish_non_exhaustive()
    }
}

impl InProc {
    /// A fleet of `droplets` active droplets tagged `tag` (created a day before the clock's
    /// now, so out of any warm-up), ids and load reproducible from `seed`.
    pub fn new(
        seed: u64,
        tag: &str,
        droplets: u32,
        clock: Arc<dyn Clock>,
        activate: Duration,
    ) -> InProc {
        let start = clock.now();
        let state = State::new(seed, tag, droplets, fleet::address_base(seed, 0, 0), start);
        InProc {
            state: Mutex::new(state),
            clock,
            start,
            activate: chrono::Duration::from_std(activate).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// The fleet at the clock's now: every droplet whose activation is due is active.
    fn now(&self) -> (MutexGuard<'_, State>, f64, DateTime<Utc>) {
        let now = self.clock.now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut due: Vec<(DateTime<Utc>, u64)> = st
            .droplets
            .values()
            .filter(|d| d.status == Status::New && !d.never_active)
            .map(|d| (d.created_at + self.activate, d.id))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort_unstable();
        for (at, id) in due {
            st.activate(id, self.t(at), at);
        }
        let t = self.t(now);
        (st, t, now)
    }

    /// Seconds of the load model at `at`.
    fn t(&self, at: DateTime<Utc>) -> f64 {
        ((at - self.start).num_milliseconds() as f64 / 1000.0).max(0.0)
    }

    /// Sets the fleet's demand in fully busy droplets (`PUT /_sim/load`): each active
    /// droplet's utilization is `min(demand / active, 1)`.
    pub fn set_demand(&self, demand: f64) {
        let d = if demand.is_finite() {
            demand.max(0.0)
        } else {
            0.0
        };
        let (mut st, t, _) = self.now();
        st.set_demand(d, t);
    }

    /// Droplets active, and new or active (billed), tagged `tag`, at the clock's now.
    pub fn counts(&self, tag: &str) -> (u32, u32) {
        let (st, _, _) = self.now();
        let tagged = st
            .droplets
            .values()
            .filter(|d| d.tags.iter().any(|t| t == tag));
        let (mut active, mut all) = (0, 0);
        for d in tagged {
            all += 1;
            active += u32::from(d.status == Status::Active);
        }
        (active, all)
    }

    /// Whether droplet `id` is active now (the health check's answer: an active simulated
    /// droplet serves its metrics port).
    pub fn is_active(&self, id: u64) -> bool {
        let (st, _, _) = self.now();
        st.droplets
            .get(&id)
            .is_some_and(|d| d.status == Status::Active)
    }
}

fn status(method: &str, path: String, status: u16, id: &str, message: &str) -> ApiError {
    ApiError::Status {
        method: method.into(),
        path,
        status,
        id: Some(id.into()),
        message: Some(message.into()),
        request_id: None,
    }
}

impl DoApi for InProc {
    fn list_by_tag(
        &self,
        tag: &str,
        on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> Result<(), ApiError> {
        let page: Vec<Droplet> = {
            let (st, _, _) = self.now();
            st.droplets
                .values()
                .filter(|d| d.tags.iter().any(|t| t == tag))
                .map(|d| st.droplet(d))
                .collect()
        };
        on_page(page);
        Ok(())
    }

    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError> {
        let (st, _, _) = self.now();
        Ok(st.droplets.get(&id).map(|d| st.droplet(d)))
    }

    fn create(&self, req: &CreateRequest) -> Result<CreateResponse, ApiError> {
        let body = serde_json::to_value(req).map_err(|e| ApiError::Decode {
            method: "POST".into(),
            path: "/v2/droplets".into(),
            msg: e.to_string(),
        })?;
        let spec = super::api::validate_create(&body).map_err(|m| {
            status(
                "POST",
                "/v2/droplets".into(),
                422,
                "unprocessable_entity",
                &m,
            )
        })?;
        let (mut st, _, now) = self.now();
        let made = st.create(&spec, now);
        let droplets = made
            .iter()
            .filter_map(|(id, _)| st.droplets.get(id))
            .map(|d| st.droplet(d))
            .collect();
        let actions = made
            .iter()
            .map(|(_, a)| ActionLink {
                id: *a,
                rel: "create".into(),
                href: format!("inproc:/v2/actions/{a}"),
            })
            .collect();
        Ok(CreateResponse {
            droplets,
            links: CreateLinks { actions },
        })
    }

    fn delete(&self, id: u64) -> Result<Deleted, ApiError> {
        let (mut st, t, now) = self.now();
        Ok(match st.remove(id, t, now) {
            Some(_) => Deleted::Deleted,
            None => Deleted::AlreadyGone,
        })
    }

    fn get_action(&self, id: u64) -> Result<Action, ApiError> {
        let (st, _, _) = self.now();
        let Some(a) = st.actions.get(&id) else {
            return Err(status(
                "GET",
                format!("/v2/actions/{id}"),
                404,
                "not_found",
                "The resource you were accessing could not be found.",
            ));
        };
        serde_json::from_value(st.action_json(a)).map_err(|e| ApiError::Decode {
            method: "GET".into(),
            path: format!("/v2/actions/{id}"),
            msg: e.to_string(),
        })
    }
}

impl MetricSource for InProc {
    /// Lists the group through `api` and reads every active droplet's page as a scrape does.
    fn scrape(
        &self,
        api: &dyn DoApi,
        group: &Group,
        all: bool,
        _progress: Option<&ProgressBar>,
        clock: &dyn Clock,
    ) -> Result<Scrape> {
        let at = clock.now();
        let keep = crate::scrape::GroupKeep::new(group, all);
        let listing = crate::sources::list_group(api, group)?;
        let limits = crate::exposition::Limits {
            max_series: group.metrics.max_series,
            deadline: None,
        };
        let mut droplets = Vec::with_capacity(listing.len());
        let (mut bad_lines, mut bad_line_example) = (0, None);
        // The fleet at one instant for the whole scrape: one lock, one look for due activations.
        let (mut st, t, _) = self.now();
        for d in listing {
            let (mut out, ip) =
                crate::scrape::listed(&d, &group.metrics, group.protect_tag.as_deref());
            if ip.is_some() {
                let body = st
                    .snapshot(d.id, t)
                    .map(|s| metrics::render(&s).into_bytes())
                    .ok_or_else(|| "connection refused".to_string());
                let (bad, example) =
                    crate::scrape::read_page(&mut out, body, &keep, limits, || {
                        "timed out".to_string()
                    });
                bad_lines += bad;
                if bad_line_example.is_none() {
                    bad_line_example = example;
                }
            }
            droplets.push(out);
        }
        Ok(Scrape {
            at,
            droplets,
            bad_lines,
            bad_line_example,
        })
    }
}
