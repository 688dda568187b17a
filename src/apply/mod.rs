//! Carrying a plan out through the API (docs/design.md §5), crash-safe: the intent of every create
//! and destroy is recorded in state (and the state saved) before the request, the outcome
//! after, so a run killed at any point is reconciled by the next one — pending creates are
//! found again by tag and name (never created twice), pending destroys are finished.
//!
//! A create whose outcome is unknown (killed mid-request, timed out, a server error) is only
//! given up once it is known not to exist: its name missing from `[api] consistency_listings`
//! consecutive listings spanning at least `[api] consistency_window` (the API may list a
//! droplet it just made only after a while). Until then it stays pending and the planner
//! creates nothing more in the group. A droplet whose id the API returned is looked up by id
//! when a listing does not show it (`GET /v2/droplets/{id}` answers at once; a 404 there means
//! it is gone).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::time::Duration;

use color_eyre::Result;
use serde::Serialize;
use serde_json::json;

use crate::clock::Clock;
use crate::config::{Consistency, Group, HookEvent, OnUnhealthy, Scale};
use crate::do_api::model::{CreateRequest, Droplet};
use crate::do_api::{ApiError, Deleted, DoApi};
use crate::model::{PendingKind, PendingOp, Stage};
use crate::plan::GroupPlan;
use crate::state::{GroupState, State, Store};

pub mod fake;
mod health;
mod hooks;
pub mod ledger;
mod record;
#[cfg(test)]
mod tests;

pub use health::{HealthProbe, ProbeError, TcpProbe};
pub use hooks::{hook_env, run_hook, HookVars, HOOK_ENV};
pub use ledger::PENDING_GIVE_UP;
pub use record::Recorder;

use hooks::run_hooks;
use ledger::{CreateOutcome, DestroyOutcome, Seen, Verdict};

/// At most this many names per `POST /v2/droplets`.
pub const CREATE_BATCH: usize = 10;

/// What apply talks to: the API, the clock it reads and waits on, the health probe.
#[derive(Clone, Copy)]
pub struct Io<'a> {
    pub api: &'a dyn DoApi,
    pub clock: &'a dyn Clock,
    pub probe: &'a dyn HealthProbe,
}

/// A request apply sends (or, in a dry run, would send).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShownRequest {
    pub method: String,
    pub path: String,
    pub body: serde_json::Value,
}

/// What apply did for one group (`apply --output json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupReport {
    pub name: String,
    pub requests: Vec<ShownRequest>,
    pub created: Vec<u64>,
    pub destroyed: Vec<u64>,
    pub errors: Vec<String>,
    /// Still pending after this run (waiting for active / health, or destroy not yet seen).
    pub pending: Vec<String>,
    /// Why nothing was done for the group at all (`paused: …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Where state goes after each step: the whole document is saved (atomically) each time.
pub struct Saver<'a> {
    pub store: Option<&'a Store>,
}

impl Saver<'_> {
    pub fn save(&self, state: &State) -> Result<()> {
        match self.store {
            Some(s) => s.save(state),
            None => Ok(()),
        }
    }
}

/// Applies (or, with `dry_run`, shows) one group's plan. `listing` is what the API lists now
/// for the group's tag.
///
/// A dry run is the same code over a [`Recorder`] that sends nothing and answers as if every
/// request succeeded, on a scratch copy of the group's bookkeeping; it runs no hook, finishes
/// no earlier operation and waits for nothing. It reports the requests and the operations
/// pending before it, never an outcome.
#[allow(clippy::too_many_arguments)]
pub fn apply_group(
    io: Io<'_>,
    group: &Group,
    plan: &GroupPlan,
    state: &mut State,
    saver: &Saver<'_>,
    listing: &[Droplet],
    consistency: Consistency,
    dry_run: bool,
) -> Result<GroupReport> {
    let recorder = Recorder::new(io.api, !dry_run);
    let mut scratch = State::default();
    let no_saver = Saver { store: None };
    let before: Vec<String> = state
        .group_mut(&group.name)
        .pending
        .iter()
        .map(|p| pending_line(p, consistency))
        .collect();
    let (state, saver) = if dry_run {
        let gs = state.group_mut(&group.name);
        let copy = scratch.group_mut(&group.name);
        copy.pending = gs.pending.clone();
        copy.history = gs.history.clone();
        (&mut scratch, &no_saver)
    } else {
        (state, saver)
    };
    let mut a = Apply {
        api: &recorder,
        clock: io.clock,
        probe: io.probe,
        group,
        state,
        saver,
        consistency,
        live: !dry_run,
        rep: GroupReport {
            name: group.name.clone(),
            ..Default::default()
        },
    };
    if a.live {
        a.reconcile(listing)?;
    }
    if !plan.create.is_empty() {
        a.create(plan)?;
    }
    if !plan.destroy.is_empty() {
        a.destroy(plan, listing)?;
    }
    let mut rep = a.rep;
    rep.requests = recorder.requests();
    if dry_run {
        rep.created.clear();
        rep.destroyed.clear();
        rep.pending = before;
    } else {
        rep.pending = state
            .group_mut(&group.name)
            .pending
            .iter()
            .map(|p| pending_line(p, consistency))
            .collect();
    }
    Ok(rep)
}

/// One group's apply under way: what it talks to, the state it keeps, what it reports.
struct Apply<'a> {
    /// The [`Recorder`] around the real API.
    api: &'a dyn DoApi,
    clock: &'a dyn Clock,
    probe: &'a dyn HealthProbe,
    group: &'a Group,
    state: &'a mut State,
    saver: &'a Saver<'a>,
    consistency: Consistency,
    /// False in a dry run: no hook, no failpoint, no wait, no health check.
    live: bool,
    rep: GroupReport,
}

impl Apply<'_> {
    fn gs(&mut self) -> &mut GroupState {
        self.state.group_mut(&self.group.name)
    }

    fn save(&self) -> Result<()> {
        self.saver.save(self.state)
    }

    fn failpoint(&self, name: &str) {
        if self.live {
            crate::failpoint::hit(name);
        }
    }

    fn hooks(
        &self,
        event: HookEvent,
        payload: &serde_json::Value,
        vars: &HookVars,
    ) -> Result<(), String> {
        if !self.live {
            return Ok(());
        }
        run_hooks(self.group, event, payload, vars)
    }

    fn create_outcome(&mut self, o: CreateOutcome) {
        let now = self.clock.now();
        ledger::create_outcome(self.gs(), o, now);
    }

    fn destroy_outcome(&mut self, id: u64, o: DestroyOutcome) {
        let now = self.clock.now();
        ledger::destroy_outcome(self.gs(), id, o, now);
    }

    fn create(&mut self, plan: &GroupPlan) -> Result<()> {
        let group = self.group;
        let requests = match create_requests(group, &plan.create) {
            Ok(r) => r,
            Err(e) => {
                self.rep.errors.push(e);
                return Ok(());
            }
        };
        let event = json!({"event": "before_create", "group": group.name, "names": plan.create});
        if let Err(e) = self.hooks(HookEvent::BeforeCreate, &event, &HookVars::group(group)) {
            let msg = format!("create of {} cancelled: {e}", plan.create.join(", "));
            let droplets: Vec<(Option<u64>, String)> =
                plan.create.iter().map(|n| (None, n.clone())).collect();
            let now = self.clock.now();
            ledger::cancelled(self.gs(), Scale::Up, &droplets, &reason_of(plan), &e, now);
            self.save()?;
            self.rep.errors.push(msg);
            return Ok(());
        }
        // Intent first, saved, then the request.
        let now = self.clock.now();
        ledger::intend_create(self.gs(), &plan.create, &reason_of(plan), now);
        self.save()?;
        self.failpoint("after-create-intent");

        for req in requests {
            let created = self.api.create(&req);
            self.failpoint("after-create-request");
            match created {
                Ok(resp) => {
                    for d in resp.droplets {
                        self.create_outcome(CreateOutcome::Created {
                            name: d.name,
                            id: d.id,
                        });
                    }
                }
                Err(e) => self.create_failed(&req, &e),
            }
            self.save()?;
        }
        self.finish_creates()
    }

    /// A create request that failed: never retried blindly; whatever the error, the droplets
    /// are looked for by name. Those found are waited for and health-checked like any other.
    fn create_failed(&mut self, req: &CreateRequest, e: &ApiError) {
        let group = self.group;
        tracing::warn!("create request failed: {e}; looking for the droplets by tag and name");
        let refused = refused_for_sure(e);
        let found = match self.api.list_all(&group.tag) {
            Ok(l) => Some(l),
            Err(le) => {
                tracing::warn!("listing group {} after the failed create: {le}", group.name);
                None
            }
        };
        let mut unknown = Vec::new();
        for n in &req.names {
            let name = n.clone();
            let outcome = match found.as_ref().map(|f| f.iter().find(|d| &d.name == n)) {
                Some(Some(d)) => CreateOutcome::FoundAfterError { name, id: d.id },
                _ if refused => CreateOutcome::Refused {
                    name,
                    why: e.to_string(),
                },
                // It may exist and not be listed yet, or the listing failed: the outcome is
                // unknown, the create stays pending.
                Some(None) => CreateOutcome::NotListed { name },
                None => CreateOutcome::ListingFailed { name },
            };
            if matches!(
                outcome,
                CreateOutcome::NotListed { .. } | CreateOutcome::ListingFailed { .. }
            ) {
                unknown.push(n.clone());
            }
            self.create_outcome(outcome);
        }
        let c = self.consistency;
        self.rep.errors.push(if unknown.is_empty() {
            format!("creating {}: {e}", req.names.join(", "))
        } else {
            format!(
                "creating {}: {e}; the outcome of {} is unknown: kept pending, looked for by name in the next passes; no droplet is created in group {} until they are listed or {} listings over {} have missed them",
                req.names.join(", "),
                unknown.join(", "),
                group.name,
                c.listings,
                humantime::format_duration(c.window)
            )
        });
    }

    /// Waits for this group's pending creates to turn active and pass the health check.
    fn finish_creates(&mut self) -> Result<()> {
        if !self.live {
            return Ok(());
        }
        let group = self.group;
        let waiting: Vec<u64> = self
            .gs()
            .pending
            .iter()
            .filter(|p| p.kind == PendingKind::Create && p.stage != Stage::Healthy)
            .filter_map(|p| p.id)
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let hc = &group.health_check;
        let budget = hc.interval.max(Duration::from_millis(200)) * hc.max_tries;
        let deadline = self.clock.now() + chrono::Duration::from_std(budget).unwrap_or_default();
        let mut active: BTreeMap<u64, Droplet> = BTreeMap::new();
        let mut gone: Vec<u64> = Vec::new();
        // Ids some listing showed: a droplet known only by id stays pending once healthy,
        // until a listing shows it (else the next plan, made from a listing without it,
        // creates again).
        let mut listed: BTreeSet<u64> = Default::default();
        let pb = progress(
            waiting.len() as u64,
            &format!("waiting for {} droplet(s) to turn active", waiting.len()),
        );
        loop {
            self.failpoint("waiting-for-active");
            let listing = self.api.list_all(&group.tag)?;
            let by_id: HashMap<u64, &Droplet> = listing.iter().map(|d| (d.id, d)).collect();
            for id in &waiting {
                if active.contains_key(id) || gone.contains(id) {
                    continue;
                }
                // Not in the listing: the API may not list a new droplet yet; its id says.
                let d = match by_id.get(id) {
                    Some(d) => {
                        listed.insert(*id);
                        (*d).clone()
                    }
                    None => match self.api.get_droplet(*id) {
                        Ok(Some(d)) => d,
                        Ok(None) => {
                            gone.push(*id);
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("looking up droplet {id}: {e}");
                            continue;
                        }
                    },
                };
                if d.status == "active" {
                    active.insert(*id, d);
                    if let Some(pb) = &pb {
                        pb.inc(1);
                    }
                }
            }
            if active.len() + gone.len() == waiting.len() || self.clock.now() >= deadline {
                break;
            }
            self.clock
                .sleep(Duration::from_millis(500).min(hc.interval.max(Duration::from_millis(100))));
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        for id in &gone {
            let name = ledger::pending_name(self.gs(), *id);
            self.create_outcome(CreateOutcome::Vanished { id: *id });
            self.rep.errors.push(format!("droplet {name} ({id}) disappeared before turning active: its create action probably errored"));
        }
        for id in &waiting {
            if !active.contains_key(id) && !gone.contains(id) {
                let name = ledger::pending_name(self.gs(), *id);
                self.rep.errors.push(format!(
                    "droplet {name} ({id}) is not active after {}: still pending, the next pass looks again",
                    humantime::format_duration(budget)
                ));
            }
        }
        for id in active.keys() {
            self.create_outcome(CreateOutcome::Active { id: *id });
        }
        self.save()?;

        if !active.is_empty() {
            self.failpoint("health-check");
        }
        for (id, result) in self.health_checks(&active) {
            let d = &active[&id];
            let name = d.name.clone();
            match result {
                Ok(()) => {
                    self.create_outcome(CreateOutcome::Healthy {
                        id,
                        name: name.clone(),
                        listed: listed.contains(&id),
                    });
                    self.rep.created.push(id);
                    self.save()?;
                    let vars = HookVars::droplet(group, d);
                    let ev = json!({"event": "after_create", "group": group.name, "id": id, "name": name, "private_ip": vars.private_ip});
                    if let Err(e) = self.hooks(HookEvent::AfterCreate, &ev, &vars) {
                        self.rep
                            .errors
                            .push(format!("after_create hook for {name}: {e}"));
                    }
                }
                Err(why) => {
                    self.rep
                        .errors
                        .push(format!("droplet {name} ({id}) is unhealthy: {why}"));
                    self.create_outcome(CreateOutcome::Unhealthy {
                        id,
                        name: name.clone(),
                        why,
                    });
                    self.save()?;
                    if group.on_unhealthy == OnUnhealthy::Destroy {
                        self.destroy_one(id, &name, "unhealthy after creation")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The health check of every droplet in `active`: rounds of one try each (in parallel
    /// threads), `interval` apart on the clock, until each passed or `max_tries` rounds.
    fn health_checks(
        &self,
        active: &BTreeMap<u64, Droplet>,
    ) -> Vec<(u64, std::result::Result<(), String>)> {
        let hc = &self.group.health_check;
        let kind = self.group.metrics.address;
        let mut done: BTreeMap<u64, std::result::Result<(), String>> = BTreeMap::new();
        let mut last: BTreeMap<u64, String> = BTreeMap::new();
        for attempt in 1..=hc.max_tries {
            let round: Vec<(u64, std::result::Result<(), ProbeError>)> = std::thread::scope(|s| {
                let handles: Vec<_> = active
                    .values()
                    .filter(|d| !done.contains_key(&d.id))
                    .map(|d| {
                        let probe = self.probe;
                        s.spawn(move || {
                            let addr = d.address(kind);
                            (d.id, probe.probe(d, addr.as_deref(), hc))
                        })
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            for (id, r) in round {
                match r {
                    Ok(()) => {
                        done.insert(id, Ok(()));
                    }
                    Err(ProbeError::Unusable(why)) => {
                        done.insert(id, Err(why));
                    }
                    Err(ProbeError::Failed(why)) => {
                        last.insert(id, why);
                    }
                }
            }
            if done.len() == active.len() {
                break;
            }
            if attempt < hc.max_tries {
                self.clock.sleep(hc.interval);
            }
        }
        active
            .keys()
            .filter_map(|id| {
                let r = match done.remove(id) {
                    Some(r) => r,
                    // A probe that panicked leaves neither a pass nor a try.
                    None => Err(format!(
                        "{} tries: {}",
                        hc.max_tries,
                        last.remove(id).unwrap_or_default()
                    )),
                };
                Some((*id, r))
            })
            .collect()
    }

    /// Records the intent to destroy droplet `id`, saves it, sends the `DELETE`.
    fn destroy_one(&mut self, id: u64, name: &str, reason: &str) -> Result<()> {
        let now = self.clock.now();
        ledger::intend_destroy(self.gs(), id, name, reason, now);
        self.save()?;
        self.failpoint("after-destroy-intent");
        self.send_destroy(id, name)
    }

    /// The `DELETE` of a droplet whose intent is recorded; the outcome goes to its history
    /// entry.
    fn send_destroy(&mut self, id: u64, name: &str) -> Result<()> {
        let result = self.api.delete(id);
        self.failpoint("after-destroy-request");
        match result {
            Ok(d) => {
                self.destroy_outcome(
                    id,
                    if d == Deleted::AlreadyGone {
                        DestroyOutcome::AlreadyGone
                    } else {
                        DestroyOutcome::Destroyed
                    },
                );
                self.rep.destroyed.push(id);
            }
            Err(e) => {
                self.destroy_outcome(id, DestroyOutcome::Failed);
                self.rep
                    .errors
                    .push(format!("destroying {name} ({id}): {e}"));
            }
        }
        self.save()
    }

    fn destroy(&mut self, plan: &GroupPlan, listing: &[Droplet]) -> Result<()> {
        let group = self.group;
        for d in &plan.destroy {
            if let Err(e) = destroy_allowed(group, listing, d.id) {
                self.rep.errors.push(e);
                continue;
            }
            let listed = listing.iter().find(|x| x.id == d.id).expect("checked");
            let vars = HookVars::droplet(group, listed);
            let ev = json!({"event": "before_destroy", "group": group.name, "id": d.id, "name": d.name, "private_ip": vars.private_ip});
            if let Err(e) = self.hooks(HookEvent::BeforeDestroy, &ev, &vars) {
                self.rep
                    .errors
                    .push(format!("destroy of {} ({}) cancelled: {e}", d.name, d.id));
                let now = self.clock.now();
                ledger::cancelled(
                    self.gs(),
                    Scale::Down,
                    &[(Some(d.id), d.name.clone())],
                    &reason_of(plan),
                    &e,
                    now,
                );
                self.save()?;
                continue;
            }
            let before = self.rep.destroyed.len();
            self.destroy_one(d.id, &d.name, &format!("{} ({})", reason_of(plan), d.why))?;
            if self.rep.destroyed.len() > before {
                let ev = json!({"event": "after_destroy", "group": group.name, "id": d.id, "name": d.name, "private_ip": vars.private_ip});
                if let Err(e) = self.hooks(HookEvent::AfterDestroy, &ev, &vars) {
                    self.rep
                        .errors
                        .push(format!("after_destroy hook for {}: {e}", d.name));
                }
            }
        }
        Ok(())
    }

    /// Brings pending operations left by an earlier run (killed, or still waiting) to an end.
    fn reconcile(&mut self, listing: &[Droplet]) -> Result<()> {
        let group = self.group;
        let c = self.consistency;
        let now = self.clock.now();
        let pending = self.gs().pending.clone();
        if pending.is_empty() {
            return Ok(());
        }
        tracing::info!(group = %group.name, n = pending.len(), "reconciling pending operations");
        let by_name: HashMap<&str, &Droplet> =
            listing.iter().map(|d| (d.name.as_str(), d)).collect();
        let by_id: HashMap<u64, &Droplet> = listing.iter().map(|d| (d.id, d)).collect();
        let mut to_destroy = Vec::new();
        // Destroys recorded but not seen through: the DELETE is sent (again; it is idempotent).
        let mut resend = Vec::new();
        for p in &pending {
            match p.kind {
                PendingKind::Create => {
                    let Some(seen) = self.seen(p, &by_id, &by_name) else {
                        continue;
                    };
                    if p.stage != Stage::Healthy && p.id.is_none() {
                        if let Seen::Listed { id, .. } = seen {
                            tracing::info!(
                                "found droplet {} ({id}) created by an interrupted run",
                                p.name
                            );
                        }
                    }
                    match ledger::reconcile_create(self.gs(), p, seen, now, c) {
                        Verdict::Pending | Verdict::Closed => {}
                        Verdict::NeverActive { id } => {
                            self.rep.errors.push(format!(
                                "droplet {} ({id}) never became active in {}",
                                p.name,
                                humantime::format_duration(PENDING_GIVE_UP)
                            ));
                            if group.on_unhealthy == OnUnhealthy::Destroy {
                                to_destroy.push((id, p.name.clone()));
                            }
                        }
                        Verdict::Unknown => tracing::warn!(
                            "group {}: create of {} outcome unknown (not listed yet): no droplet is created in this group until it is listed or {} listings over {} have missed it",
                            group.name,
                            p.name,
                            c.listings,
                            humantime::format_duration(c.window)
                        ),
                    }
                }
                PendingKind::Destroy => {
                    if let Some(id) = p.id {
                        if by_id.contains_key(&id) {
                            resend.push((id, p.name.clone()));
                        } else {
                            ledger::destroy_outcome(
                                self.gs(),
                                id,
                                DestroyOutcome::NoLongerListed,
                                now,
                            );
                        }
                    }
                }
            }
        }
        self.save()?;
        for (id, name) in resend {
            match destroy_allowed(group, listing, id) {
                Ok(()) => self.send_destroy(id, &name)?,
                Err(why) => {
                    // The droplet changed (protected, left the group) since the intent: on
                    // doubt, nothing is destroyed.
                    self.destroy_outcome(id, DestroyOutcome::NotResent { why: why.clone() });
                    self.rep.errors.push(why);
                    self.save()?;
                }
            }
        }
        for (id, name) in to_destroy {
            if destroy_allowed(group, listing, id).is_ok() {
                self.destroy_one(id, &name, "finishing an interrupted destroy")?;
            }
        }
        self.finish_creates()
    }

    /// What this pass sees of pending create `p`: the listing by its id (looked up by id when
    /// not listed) or, with no id known, by its name. `None` when the lookup failed: still
    /// pending, nothing recorded.
    fn seen(
        &self,
        p: &PendingOp,
        by_id: &HashMap<u64, &Droplet>,
        by_name: &HashMap<&str, &Droplet>,
    ) -> Option<Seen> {
        let seen = |d: &Droplet, listed: bool| {
            let (id, active) = (d.id, d.status == "active");
            if listed {
                Seen::Listed { id, active }
            } else {
                Seen::LookedUp { id, active }
            }
        };
        let Some(id) = p.id else {
            return Some(match by_name.get(p.name.as_str()) {
                Some(d) => seen(d, true),
                None => Seen::NotListed,
            });
        };
        if let Some(d) = by_id.get(&id) {
            return Some(seen(d, true));
        }
        // Not listed (yet?): its id says whether it exists.
        match self.api.get_droplet(id) {
            Ok(Some(d)) => Some(seen(&d, false)),
            Ok(None) => Some(Seen::Gone),
            Err(e) => {
                if p.stage != Stage::Healthy {
                    tracing::warn!("looking up droplet {} ({id}): {e}; still pending", p.name);
                }
                None
            }
        }
    }
}

/// `create web-7 (requested)`, or for a create whose outcome is unknown
/// `create web-7 (outcome unknown: missed 1 of 3 listings)`.
fn pending_line(p: &PendingOp, consistency: Consistency) -> String {
    let kind = match p.kind {
        PendingKind::Create => "create",
        PendingKind::Destroy => "destroy",
    };
    match &p.unseen {
        Some(u) => format!(
            "{kind} {} (outcome unknown: missed {} of {} listings)",
            p.name, u.listings, consistency.listings
        ),
        None => format!("{kind} {} ({})", p.name, p.stage),
    }
}

/// Whether an API error to a create says for sure that nothing was created: the API refused
/// the request (4xx) before doing any work. A timeout, a lost connection, a 5xx or a body that
/// does not read leave the outcome unknown.
fn refused_for_sure(e: &ApiError) -> bool {
    matches!(e.status(), Some(s) if (400..500).contains(&s) && s != 408)
}

/// The `POST /v2/droplets` bodies for `names` (batches of at most 10).
pub fn create_requests(
    group: &Group,
    names: &[String],
) -> std::result::Result<Vec<CreateRequest>, String> {
    let Some(t) = &group.template else {
        return Err(format!(
            "group {}: no [group.template]: cannot create droplets",
            group.name
        ));
    };
    let user_data = match &t.user_data_file {
        // A regular file of at most 64 KiB (what DigitalOcean takes), never a FIFO to wait on.
        Some(p) => Some(
            crate::secret::read_regular_file(p, crate::config::USER_DATA_MAX)
                .and_then(|(b, _)| String::from_utf8(b).map_err(|_| "not UTF-8 text".into()))
                .map_err(|e| {
                    format!(
                        "group {}: reading user_data_file {}: {e}",
                        group.name,
                        p.display()
                    )
                })?,
        ),
        None => None,
    };
    Ok(names
        .chunks(CREATE_BATCH)
        .map(|chunk| CreateRequest {
            names: chunk.to_vec(),
            region: t.region.clone(),
            size: t.size.clone(),
            image: t.image.clone(),
            ssh_keys: t.ssh_keys.clone(),
            backups: t.backups,
            ipv6: t.ipv6,
            monitoring: t.monitoring,
            tags: t.tags.clone(),
            user_data: user_data.clone(),
            vpc_uuid: t.vpc_uuid.clone(),
        })
        .collect())
}

/// A droplet may be destroyed only if the API lists it now in the group, active or new, and
/// it does not carry the protect tag.
fn destroy_allowed(group: &Group, listing: &[Droplet], id: u64) -> std::result::Result<(), String> {
    let Some(d) = listing.iter().find(|d| d.id == id) else {
        return Err(format!(
            "droplet {id} is no longer listed with tag {}: not destroyed",
            group.tag
        ));
    };
    if !d.tags.iter().any(|t| t == &group.tag) {
        return Err(format!(
            "droplet {id} does not carry the group tag {}: not destroyed",
            group.tag
        ));
    }
    if let Some(p) = &group.protect_tag {
        if d.tags.iter().any(|t| t == p) {
            return Err(format!(
                "droplet {id} carries the protect tag {p}: not destroyed"
            ));
        }
    }
    if !crate::plan::is_live_status(&d.status) {
        return Err(format!("droplet {id} is {}: not destroyed", d.status));
    }
    Ok(())
}

fn reason_of(plan: &GroupPlan) -> String {
    let r = plan
        .reasons
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if r.is_empty() {
        format!("plan: {} → {}", plan.current, plan.desired)
    } else {
        format!("plan: {} → {}: {r}", plan.current, plan.desired)
    }
}

fn progress(len: u64, msg: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.set_message(msg.to_string());
    Some(pb)
}
