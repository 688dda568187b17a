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

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use color_eyre::Result;
use serde::Serialize;
use serde_json::json;

use crate::config::{Consistency, Group, HealthCheck, Hook, HookEvent, OnUnhealthy, Scale};
use crate::do_api::model::{CreateRequest, Droplet};
use crate::do_api::{ApiError, Deleted, DoApi};
use crate::model::{
    ActionOutcome, DropletOutcome, HistoryDroplet, HistoryEntry, PendingKind, PendingOp, Stage,
    Unseen,
};
use crate::plan::GroupPlan;
use crate::state::{GroupState, State, Store};

/// At most this many names per `POST /v2/droplets`.
pub const CREATE_BATCH: usize = 10;
/// A pending operation older than this is given up (reported, and the droplet destroyed when
/// `on_unhealthy = "destroy"`).
pub const PENDING_GIVE_UP: Duration = Duration::from_secs(30 * 60);

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
#[allow(clippy::too_many_arguments)]
pub fn apply_group(
    api: &dyn DoApi,
    group: &Group,
    plan: &GroupPlan,
    state: &mut State,
    saver: &Saver<'_>,
    listing: &[Droplet],
    consistency: Consistency,
    dry_run: bool,
) -> Result<GroupReport> {
    let mut rep = GroupReport {
        name: group.name.clone(),
        ..Default::default()
    };

    if dry_run {
        for p in &state.group_mut(&group.name).pending {
            rep.pending.push(pending_line(p, consistency));
        }
        if !plan.create.is_empty() {
            match create_requests(group, &plan.create) {
                Ok(reqs) => {
                    for r in reqs {
                        rep.requests.push(ShownRequest {
                            method: "POST".into(),
                            path: "/v2/droplets".into(),
                            body: serde_json::to_value(&r)?,
                        });
                    }
                }
                Err(e) => rep.errors.push(e),
            }
        }
        for d in &plan.destroy {
            match destroy_allowed(group, listing, d.id) {
                Ok(()) => rep.requests.push(ShownRequest {
                    method: "DELETE".into(),
                    path: format!("/v2/droplets/{}", d.id),
                    body: serde_json::Value::Null,
                }),
                Err(e) => rep.errors.push(e),
            }
        }
        return Ok(rep);
    }

    reconcile(api, group, state, saver, listing, consistency, &mut rep)?;

    if !plan.create.is_empty() {
        create(api, group, plan, state, saver, consistency, &mut rep)?;
    }
    if !plan.destroy.is_empty() {
        destroy(api, group, plan, state, saver, listing, &mut rep)?;
    }
    for p in &state.group_mut(&group.name).pending {
        rep.pending.push(pending_line(p, consistency));
    }
    Ok(rep)
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

/// Records that a listing made at `now` did not show the pending create `name`; true when
/// that settles it as never made (`listings` misses in a row, first to last at least `window`).
fn missed(gs: &mut GroupState, name: &str, now: chrono::DateTime<Utc>, c: Consistency) -> bool {
    let Some(p) = gs
        .pending
        .iter_mut()
        .find(|p| p.kind == PendingKind::Create && p.name == name)
    else {
        return false;
    };
    p.stage = Stage::Unknown;
    let u = p.unseen.get_or_insert(Unseen {
        listings: 0,
        first: now,
        last: now,
    });
    u.listings += 1;
    u.last = now;
    let span = (u.last - u.first).to_std().unwrap_or_default();
    u.listings >= c.listings && span >= c.window
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

fn create(
    api: &dyn DoApi,
    group: &Group,
    plan: &GroupPlan,
    state: &mut State,
    saver: &Saver<'_>,
    consistency: Consistency,
    rep: &mut GroupReport,
) -> Result<()> {
    let requests = match create_requests(group, &plan.create) {
        Ok(r) => r,
        Err(e) => {
            rep.errors.push(e);
            return Ok(());
        }
    };
    let event = json!({"event": "before_create", "group": group.name, "names": plan.create});
    if let Err(e) = run_hooks(
        group,
        HookEvent::BeforeCreate,
        &event,
        &HookVars::group(group),
    ) {
        let msg = format!("create of {} cancelled: {e}", plan.create.join(", "));
        record(
            state,
            group,
            Scale::Up,
            &plan.create,
            None,
            &reason_of(plan),
            &e.to_string(),
        );
        saver.save(state)?;
        rep.errors.push(msg);
        return Ok(());
    }
    // Intent first, saved, then the request.
    let now = Utc::now();
    {
        let gs = state.group_mut(&group.name);
        gs.push_history(HistoryEntry {
            at: now,
            direction: Scale::Up,
            droplets: plan
                .create
                .iter()
                .map(|n| HistoryDroplet {
                    id: None,
                    name: n.clone(),
                    outcome: None,
                })
                .collect(),
            reason: reason_of(plan),
            outcome: ActionOutcome::Pending,
            finished_at: None,
        });
        for n in &plan.create {
            gs.pending.push(PendingOp {
                kind: PendingKind::Create,
                name: n.clone(),
                id: None,
                since: now,
                stage: Stage::Intent,
                unseen: None,
            });
        }
    }
    saver.save(state)?;
    crate::failpoint::hit("after-create-intent");

    for req in requests {
        rep.requests.push(ShownRequest {
            method: "POST".into(),
            path: "/v2/droplets".into(),
            body: serde_json::to_value(&req)?,
        });
        let created = api.create(&req);
        crate::failpoint::hit("after-create-request");
        match created {
            Ok(resp) => {
                let gs = state.group_mut(&group.name);
                for d in &resp.droplets {
                    set_pending(gs, &d.name, Some(d.id), Stage::Requested);
                    set_history_id(gs, &d.name, d.id);
                }
            }
            Err(e) => {
                // Never retried blindly: whatever the error, look for the droplets by name.
                // Those found are waited for and health-checked below like any other.
                tracing::warn!(
                    "create request failed: {e}; looking for the droplets by tag and name"
                );
                let refused = refused_for_sure(&e);
                let listed_at = Utc::now();
                let found = match api.list_all(&group.tag) {
                    Ok(l) => Some(l),
                    Err(le) => {
                        tracing::warn!(
                            "listing group {} after the failed create: {le}",
                            group.name
                        );
                        None
                    }
                };
                let gs = state.group_mut(&group.name);
                let mut unknown = Vec::new();
                for n in &req.names {
                    match found.as_ref().and_then(|f| f.iter().find(|d| &d.name == n)) {
                        Some(d) => {
                            set_pending(gs, n, Some(d.id), Stage::Requested);
                            set_history_id(gs, n, d.id);
                        }
                        None if refused => {
                            gs.pending
                                .retain(|p| !(p.kind == PendingKind::Create && &p.name == n));
                            set_history_outcome(gs, n, DropletOutcome::Failed(e.to_string()));
                        }
                        None => {
                            // It may exist and not be listed yet, or the listing failed: the
                            // outcome is unknown, the create stays pending.
                            if found.is_some() {
                                missed(gs, n, listed_at, consistency);
                            } else {
                                set_pending(gs, n, None, Stage::Unknown);
                            }
                            unknown.push(n.clone());
                        }
                    }
                }
                rep.errors.push(if unknown.is_empty() {
                    format!("creating {}: {e}", req.names.join(", "))
                } else {
                    format!(
                        "creating {}: {e}; the outcome of {} is unknown: kept pending, looked for by name in the next passes; no droplet is created in group {} until they are listed or {} listings over {} have missed them",
                        req.names.join(", "),
                        unknown.join(", "),
                        group.name,
                        consistency.listings,
                        humantime::format_duration(consistency.window)
                    )
                });
            }
        }
        saver.save(state)?;
    }
    finish_creates(api, group, state, saver, rep)
}

/// Waits for this group's pending creates to turn active and pass the health check.
fn finish_creates(
    api: &dyn DoApi,
    group: &Group,
    state: &mut State,
    saver: &Saver<'_>,
    rep: &mut GroupReport,
) -> Result<()> {
    let waiting: Vec<u64> = state
        .group_mut(&group.name)
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
    let deadline = Instant::now() + budget;
    let mut active: BTreeMap<u64, Droplet> = BTreeMap::new();
    let mut gone: Vec<u64> = Vec::new();
    // Ids some listing showed: a droplet known only by id stays pending once healthy, until
    // a listing shows it (else the next plan, made from a listing without it, creates again).
    let mut listed: std::collections::BTreeSet<u64> = Default::default();
    let pb = progress(
        waiting.len() as u64,
        &format!("waiting for {} droplet(s) to turn active", waiting.len()),
    );
    loop {
        crate::failpoint::hit("waiting-for-active");
        let listing = api.list_all(&group.tag)?;
        let by_id: HashMap<u64, &Droplet> = listing.iter().map(|d| (d.id, d)).collect();
        for id in &waiting {
            if active.contains_key(id) || gone.contains(id) {
                continue;
            }
            // Not in the listing: the API may not list a new droplet yet; its id says.
            let looked_up;
            let d = match by_id.get(id) {
                Some(d) => {
                    listed.insert(*id);
                    Some(*d)
                }
                None => match api.get_droplet(*id) {
                    Ok(Some(d)) => {
                        looked_up = d;
                        Some(&looked_up)
                    }
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
            if let Some(d) = d.filter(|d| d.status == "active") {
                active.insert(*id, d.clone());
                if let Some(pb) = &pb {
                    pb.inc(1);
                }
            }
        }
        if active.len() + gone.len() == waiting.len() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(
            Duration::from_millis(500).min(hc.interval.max(Duration::from_millis(100))),
        );
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    {
        let gs = state.group_mut(&group.name);
        for id in &gone {
            let name = pending_name(gs, *id);
            gs.pending.retain(|p| p.id != Some(*id));
            set_history_outcome(
                gs,
                &name,
                DropletOutcome::Failed(
                    "the droplet disappeared before turning active (create action errored?)".into(),
                ),
            );
            rep.errors.push(format!("droplet {name} ({id}) disappeared before turning active: its create action probably errored"));
        }
        for id in &waiting {
            if !active.contains_key(id) && !gone.contains(id) {
                let name = pending_name(gs, *id);
                rep.errors.push(format!(
                    "droplet {name} ({id}) is not active after {}: still pending, the next pass looks again",
                    humantime::format_duration(budget)
                ));
            }
        }
        for id in active.keys() {
            let name = pending_name(gs, *id);
            set_pending(gs, &name, Some(*id), Stage::Active);
        }
    }
    saver.save(state)?;

    // Health check, all droplets in parallel threads.
    if !active.is_empty() {
        crate::failpoint::hit("health-check");
    }
    let checks: Vec<(u64, String, std::result::Result<(), String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = active
            .values()
            .map(|d| {
                let addr = d.address(group.metrics.address);
                let (id, name) = (d.id, d.name.clone());
                s.spawn(move || (id, name, health_check(addr.as_deref(), hc)))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (id, name, result) in checks {
        match result {
            Ok(()) => {
                let gs = state.group_mut(&group.name);
                if listed.contains(&id) {
                    gs.pending.retain(|p| p.id != Some(id));
                } else {
                    set_pending(gs, &name, Some(id), Stage::Healthy);
                }
                set_history_outcome(gs, &name, DropletOutcome::Healthy);
                rep.created.push(id);
                saver.save(state)?;
                let d = &active[&id];
                let vars = HookVars::droplet(group, d);
                let ev = json!({"event": "after_create", "group": group.name, "id": id, "name": name, "private_ip": vars.private_ip});
                if let Err(e) = run_hooks(group, HookEvent::AfterCreate, &ev, &vars) {
                    rep.errors
                        .push(format!("after_create hook for {name}: {e}"));
                }
            }
            Err(why) => {
                rep.errors
                    .push(format!("droplet {name} ({id}) is unhealthy: {why}"));
                let gs = state.group_mut(&group.name);
                gs.pending.retain(|p| p.id != Some(id));
                set_history_outcome(gs, &name, DropletOutcome::Unhealthy(why));
                saver.save(state)?;
                if group.on_unhealthy == OnUnhealthy::Destroy {
                    destroy_one(
                        api,
                        group,
                        state,
                        saver,
                        id,
                        &name,
                        "unhealthy after creation",
                        rep,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// TCP health check: every port must accept a connection; `max_tries` rounds `interval` apart.
pub fn health_check(addr: Option<&str>, hc: &HealthCheck) -> std::result::Result<(), String> {
    let Some(addr) = addr else {
        return Err("no address to check".into());
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("bad address {addr}"))?;
    if let Some(why) = crate::net::forbidden(ip) {
        return Err(format!("address {ip} is {why}"));
    }
    let mut last = String::new();
    for attempt in 1..=hc.max_tries {
        let failed: Vec<String> = hc
            .ports
            .iter()
            .filter_map(|p| {
                TcpStream::connect_timeout(&SocketAddr::new(ip, *p), hc.timeout)
                    .err()
                    .map(|e| format!("port {p}: {e}"))
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        last = failed.join(", ");
        if attempt < hc.max_tries {
            std::thread::sleep(hc.interval);
        }
    }
    Err(format!("{} tries: {last}", hc.max_tries))
}

#[allow(clippy::too_many_arguments)]
fn destroy_one(
    api: &dyn DoApi,
    group: &Group,
    state: &mut State,
    saver: &Saver<'_>,
    id: u64,
    name: &str,
    reason: &str,
    rep: &mut GroupReport,
) -> Result<()> {
    let now = Utc::now();
    {
        let gs = state.group_mut(&group.name);
        gs.push_history(HistoryEntry {
            at: now,
            direction: Scale::Down,
            droplets: vec![HistoryDroplet {
                id: Some(id),
                name: name.into(),
                outcome: None,
            }],
            reason: reason.into(),
            outcome: ActionOutcome::Pending,
            finished_at: None,
        });
        gs.pending.push(PendingOp {
            kind: PendingKind::Destroy,
            name: name.into(),
            id: Some(id),
            since: now,
            stage: Stage::Intent,
            unseen: None,
        });
    }
    saver.save(state)?;
    crate::failpoint::hit("after-destroy-intent");
    send_destroy(api, group, state, saver, id, name, rep)
}

/// The `DELETE` of a droplet whose intent is recorded; the outcome goes to its history entry.
fn send_destroy(
    api: &dyn DoApi,
    group: &Group,
    state: &mut State,
    saver: &Saver<'_>,
    id: u64,
    name: &str,
    rep: &mut GroupReport,
) -> Result<()> {
    rep.requests.push(ShownRequest {
        method: "DELETE".into(),
        path: format!("/v2/droplets/{id}"),
        body: serde_json::Value::Null,
    });
    let result = api.delete(id);
    crate::failpoint::hit("after-destroy-request");
    let gs = state.group_mut(&group.name);
    match result {
        Ok(d) => {
            gs.pending
                .retain(|p| !(p.kind == PendingKind::Destroy && p.id == Some(id)));
            set_history_outcome_id(
                gs,
                id,
                if d == Deleted::AlreadyGone {
                    DropletOutcome::AlreadyGone
                } else {
                    DropletOutcome::Destroyed
                },
            );
            rep.destroyed.push(id);
        }
        Err(e) => {
            for p in gs
                .pending
                .iter_mut()
                .filter(|p| p.kind == PendingKind::Destroy && p.id == Some(id))
            {
                p.stage = Stage::Requested;
            }
            rep.errors.push(format!("destroying {name} ({id}): {e}"));
        }
    }
    saver.save(state)
}

fn destroy(
    api: &dyn DoApi,
    group: &Group,
    plan: &GroupPlan,
    state: &mut State,
    saver: &Saver<'_>,
    listing: &[Droplet],
    rep: &mut GroupReport,
) -> Result<()> {
    for d in &plan.destroy {
        if let Err(e) = destroy_allowed(group, listing, d.id) {
            rep.errors.push(e);
            continue;
        }
        let listed = listing.iter().find(|x| x.id == d.id).expect("checked");
        let vars = HookVars::droplet(group, listed);
        let ev = json!({"event": "before_destroy", "group": group.name, "id": d.id, "name": d.name, "private_ip": vars.private_ip});
        if let Err(e) = run_hooks(group, HookEvent::BeforeDestroy, &ev, &vars) {
            rep.errors
                .push(format!("destroy of {} ({}) cancelled: {e}", d.name, d.id));
            let gs = state.group_mut(&group.name);
            gs.push_history(HistoryEntry {
                at: Utc::now(),
                direction: Scale::Down,
                droplets: vec![HistoryDroplet {
                    id: Some(d.id),
                    name: d.name.clone(),
                    outcome: Some(DropletOutcome::Cancelled(e.to_string())),
                }],
                reason: reason_of(plan),
                outcome: ActionOutcome::Cancelled(e.to_string()),
                finished_at: Some(Utc::now()),
            });
            saver.save(state)?;
            continue;
        }
        let before = rep.destroyed.len();
        destroy_one(
            api,
            group,
            state,
            saver,
            d.id,
            &d.name,
            &format!("{} ({})", reason_of(plan), d.why),
            rep,
        )?;
        if rep.destroyed.len() > before {
            let ev = json!({"event": "after_destroy", "group": group.name, "id": d.id, "name": d.name, "private_ip": vars.private_ip});
            if let Err(e) = run_hooks(group, HookEvent::AfterDestroy, &ev, &vars) {
                rep.errors
                    .push(format!("after_destroy hook for {}: {e}", d.name));
            }
        }
    }
    Ok(())
}

/// Brings pending operations left by an earlier run (killed, or still waiting) to an end.
fn reconcile(
    api: &dyn DoApi,
    group: &Group,
    state: &mut State,
    saver: &Saver<'_>,
    listing: &[Droplet],
    consistency: Consistency,
    rep: &mut GroupReport,
) -> Result<()> {
    let now = Utc::now();
    let pending = state.group_mut(&group.name).pending.clone();
    if pending.is_empty() {
        return Ok(());
    }
    tracing::info!(group = %group.name, n = pending.len(), "reconciling pending operations");
    let by_name: HashMap<&str, &Droplet> = listing.iter().map(|d| (d.name.as_str(), d)).collect();
    let by_id: HashMap<u64, &Droplet> = listing.iter().map(|d| (d.id, d)).collect();
    let mut to_destroy = Vec::new();
    // Destroys recorded but not seen through: the DELETE is sent (again; it is idempotent).
    let mut resend = Vec::new();
    {
        let gs = state.group_mut(&group.name);
        for p in &pending {
            let age = (now - p.since).to_std().unwrap_or_default();
            match p.kind {
                PendingKind::Create => {
                    let looked_up;
                    let listed = p.id.is_some_and(|id| by_id.contains_key(&id))
                        || (p.id.is_none() && by_name.contains_key(p.name.as_str()));
                    if p.stage == Stage::Healthy {
                        // Healthy already, waiting only to be listed.
                        if listed {
                            gs.pending
                                .retain(|x| !(x.kind == PendingKind::Create && x.name == p.name));
                        } else if p
                            .id
                            .is_some_and(|id| matches!(api.get_droplet(id), Ok(None)))
                        {
                            gs.pending
                                .retain(|x| !(x.kind == PendingKind::Create && x.name == p.name));
                        }
                        continue;
                    }
                    let found = match p.id {
                        Some(id) => match by_id.get(&id) {
                            Some(d) => Some(*d),
                            // Not listed (yet?): its id says whether it exists.
                            None => match api.get_droplet(id) {
                                Ok(Some(d)) => {
                                    looked_up = d;
                                    Some(&looked_up)
                                }
                                Ok(None) => None,
                                Err(e) => {
                                    tracing::warn!(
                                        "looking up droplet {} ({id}): {e}; still pending",
                                        p.name
                                    );
                                    continue;
                                }
                            },
                        },
                        None => by_name.get(p.name.as_str()).copied(),
                    };
                    match found {
                        Some(d) => {
                            if p.id.is_none() {
                                tracing::info!(
                                    "found droplet {} ({}) created by an interrupted run",
                                    d.name,
                                    d.id
                                );
                                set_history_id(gs, &p.name, d.id);
                            }
                            set_pending(
                                gs,
                                &p.name,
                                Some(d.id),
                                if d.status == "active" {
                                    Stage::Active
                                } else {
                                    Stage::Requested
                                },
                            );
                            if age > PENDING_GIVE_UP && d.status != "active" {
                                gs.pending.retain(|x| x.name != p.name);
                                set_history_outcome(
                                    gs,
                                    &p.name,
                                    DropletOutcome::Failed("never became active".into()),
                                );
                                rep.errors.push(format!(
                                    "droplet {} ({}) never became active in {}",
                                    d.name,
                                    d.id,
                                    humantime::format_duration(PENDING_GIVE_UP)
                                ));
                                if group.on_unhealthy == OnUnhealthy::Destroy {
                                    to_destroy.push((d.id, d.name.clone()));
                                }
                            }
                        }
                        None if p.id.is_some() => {
                            // The API gave its id and now answers 404 for it: gone (its
                            // create action errored, or it was destroyed by hand).
                            gs.pending
                                .retain(|x| !(x.kind == PendingKind::Create && x.name == p.name));
                            set_history_outcome(
                                gs,
                                &p.name,
                                DropletOutcome::Failed("the droplet disappeared".into()),
                            );
                        }
                        None => {
                            // Not listed by name: the request may never have been sent (killed
                            // before it), have failed, or have made a droplet the API does not
                            // list yet. Given up only once enough listings over the
                            // consistency window missed it; until then nothing more is created.
                            if missed(gs, &p.name, now, consistency) {
                                gs.pending.retain(|x| {
                                    !(x.kind == PendingKind::Create && x.name == p.name)
                                });
                                set_history_outcome(
                                    gs,
                                    &p.name,
                                    DropletOutcome::NotCreated(format!(
                                        "not listed in {} listings over {} (the run was interrupted before the request, or it failed)",
                                        consistency.listings,
                                        humantime::format_duration(consistency.window)
                                    )),
                                );
                            } else {
                                tracing::warn!(
                                    "group {}: create of {} outcome unknown (not listed yet): no droplet is created in this group until it is listed or {} listings over {} have missed it",
                                    group.name,
                                    p.name,
                                    consistency.listings,
                                    humantime::format_duration(consistency.window)
                                );
                            }
                        }
                    }
                }
                PendingKind::Destroy => {
                    if let Some(id) = p.id {
                        if by_id.contains_key(&id) {
                            resend.push((id, p.name.clone()));
                        } else {
                            gs.pending
                                .retain(|x| !(x.kind == PendingKind::Destroy && x.id == Some(id)));
                            set_history_outcome_id(gs, id, DropletOutcome::Destroyed);
                        }
                    }
                }
            }
        }
    }
    saver.save(state)?;
    for (id, name) in resend {
        match destroy_allowed(group, listing, id) {
            Ok(()) => send_destroy(api, group, state, saver, id, &name, rep)?,
            Err(why) => {
                // The droplet changed (protected, left the group) since the intent: on doubt,
                // nothing is destroyed.
                let gs = state.group_mut(&group.name);
                gs.pending
                    .retain(|x| !(x.kind == PendingKind::Destroy && x.id == Some(id)));
                set_history_outcome_id(gs, id, DropletOutcome::NotDestroyed(why.clone()));
                rep.errors.push(why);
                saver.save(state)?;
            }
        }
    }
    for (id, name) in to_destroy {
        if destroy_allowed(group, listing, id).is_ok() {
            destroy_one(
                api,
                group,
                state,
                saver,
                id,
                &name,
                "finishing an interrupted destroy",
                rep,
            )?;
        }
    }
    finish_creates(api, group, state, saver, rep)
}

fn pending_name(gs: &GroupState, id: u64) -> String {
    gs.pending
        .iter()
        .find(|p| p.id == Some(id))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| id.to_string())
}

fn set_pending(gs: &mut GroupState, name: &str, id: Option<u64>, stage: Stage) {
    for p in gs
        .pending
        .iter_mut()
        .filter(|p| p.kind == PendingKind::Create && p.name == name)
    {
        if id.is_some() {
            p.id = id;
            p.unseen = None;
        }
        p.stage = stage.clone();
    }
}

fn set_history_id(gs: &mut GroupState, name: &str, id: u64) {
    for e in gs
        .history
        .iter_mut()
        .rev()
        .filter(|e| e.direction == Scale::Up)
    {
        if let Some(d) = e.droplets.iter_mut().find(|d| d.name == name) {
            d.id = Some(id);
            return;
        }
    }
}

fn set_history_outcome(gs: &mut GroupState, name: &str, outcome: DropletOutcome) {
    for e in gs.history.iter_mut().rev() {
        if let Some(d) = e
            .droplets
            .iter_mut()
            .find(|d| d.name == name && d.outcome.is_none())
        {
            d.outcome = Some(outcome);
            finish_entry(e);
            return;
        }
    }
}

fn set_history_outcome_id(gs: &mut GroupState, id: u64, outcome: DropletOutcome) {
    for e in gs.history.iter_mut().rev() {
        if let Some(d) = e
            .droplets
            .iter_mut()
            .find(|d| d.id == Some(id) && d.outcome.is_none())
        {
            d.outcome = Some(outcome);
            finish_entry(e);
            return;
        }
    }
}

/// An entry is finished when every droplet has an outcome.
fn finish_entry(e: &mut HistoryEntry) {
    if e.droplets.iter().any(|d| d.outcome.is_none()) {
        return;
    }
    let n_good = e
        .droplets
        .iter()
        .filter(|d| d.outcome.as_ref().is_some_and(DropletOutcome::succeeded))
        .count();
    e.outcome = if n_good == e.droplets.len() {
        ActionOutcome::Done
    } else if n_good == 0 {
        ActionOutcome::Failed
    } else {
        ActionOutcome::Partial
    };
    e.finished_at = Some(Utc::now());
}

fn record(
    state: &mut State,
    group: &Group,
    dir: Scale,
    names: &[String],
    id: Option<u64>,
    reason: &str,
    cancelled: &str,
) {
    state.group_mut(&group.name).push_history(HistoryEntry {
        at: Utc::now(),
        direction: dir,
        droplets: names
            .iter()
            .map(|n| HistoryDroplet {
                id,
                name: n.clone(),
                outcome: Some(DropletOutcome::Cancelled(cancelled.into())),
            })
            .collect(),
        reason: reason.into(),
        outcome: ActionOutcome::Cancelled(cancelled.into()),
        finished_at: Some(Utc::now()),
    });
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

// ---------------------------------------------------------------------------------------
// Hooks.

/// Values substituted into hook arguments.
pub struct HookVars {
    pub group: String,
    pub id: String,
    pub name: String,
    pub private_ip: String,
}

impl HookVars {
    fn group(g: &Group) -> Self {
        HookVars {
            group: g.name.clone(),
            id: String::new(),
            name: String::new(),
            private_ip: String::new(),
        }
    }
    fn droplet(g: &Group, d: &Droplet) -> Self {
        HookVars {
            group: g.name.clone(),
            id: d.id.to_string(),
            name: d.name.clone(),
            private_ip: d
                .address(crate::model::AddressKind::Private)
                .unwrap_or_default(),
        }
    }
}

/// Runs every hook of `event`; the first failure stops and is returned.
fn run_hooks(
    group: &Group,
    event: HookEvent,
    payload: &serde_json::Value,
    vars: &HookVars,
) -> std::result::Result<(), String> {
    for h in group.hooks.iter().filter(|h| h.on == event) {
        run_hook(h, payload, vars)?;
    }
    Ok(())
}

/// Variables a hook inherits from doscale's environment, when set (`LC_*` as well). Nothing
/// else is passed on: not the token (`DIGITALOCEAN_TOKEN`), not `CREDENTIALS_DIRECTORY` (where
/// systemd keeps it), not whatever else the service's environment holds.
pub const HOOK_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// The environment of a hook: [`HOOK_ENV`] and `LC_*` from `inherited`, then the event's own
/// `DOSCALE_EVENT`, `DOSCALE_GROUP` and, for a droplet's event, `DOSCALE_DROPLET_ID`,
/// `DOSCALE_DROPLET_NAME`, `DOSCALE_PRIVATE_IP`.
pub fn hook_env(
    inherited: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    event: &str,
    vars: &HookVars,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = inherited
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| HOOK_ENV.contains(&k) || k.starts_with("LC_"))
        })
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    let mut own = vec![("DOSCALE_EVENT", event), ("DOSCALE_GROUP", &vars.group)];
    if !vars.id.is_empty() {
        own.extend([
            ("DOSCALE_DROPLET_ID", vars.id.as_str()),
            ("DOSCALE_DROPLET_NAME", vars.name.as_str()),
            ("DOSCALE_PRIVATE_IP", vars.private_ip.as_str()),
        ]);
    }
    env.extend(own.into_iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// One hook: the event as JSON on stdin, `{id}` `{name}` `{private_ip}` `{group}` in the
/// arguments, a minimal environment ([`hook_env`]), killed after its timeout.
pub fn run_hook(
    h: &Hook,
    payload: &serde_json::Value,
    vars: &HookVars,
) -> std::result::Result<(), String> {
    let subst = |s: &str| {
        s.replace("{id}", &vars.id)
            .replace("{name}", &vars.name)
            .replace("{private_ip}", &vars.private_ip)
            .replace("{group}", &vars.group)
    };
    let program = subst(&h.command[0]);
    let event = payload["event"].as_str().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(h.command[1..].iter().map(|a| subst(a)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_clear()
        .envs(hook_env(std::env::vars_os(), event, vars))
        .spawn()
        .map_err(|e| format!("hook {program}: cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.to_string().as_bytes());
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = (&mut e).take(400).read_to_string(&mut err);
                }
                let err = crate::output::sanitize(err.trim());
                return Err(format!(
                    "hook {program} exited with {}{}",
                    status
                        .code()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "a signal".into()),
                    if err.is_empty() {
                        String::new()
                    } else {
                        format!(": {err}")
                    }
                ));
            }
            Ok(None) if started.elapsed() >= h.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "hook {program} did not finish within {}: killed",
                    humantime::format_duration(h.timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("hook {program}: {e}")),
        }
    }
}
