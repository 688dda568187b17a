//! apply's bookkeeping, pure: what a group's state records before a create or destroy request
//! (the intent: a history entry and a pending operation) and after it, for every outcome the
//! request, the wait for the droplet, its health check or a later pass can find. No I/O and
//! no clock: the time comes in as `now`, what the API said as an outcome enum. The shell
//! (`apply`) sends the requests and saves the state between the steps; these functions say
//! what the state holds at each of them (docs/reliability.md has the contract).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Consistency, Scale};
use crate::model::{
    ActionOutcome, DropletOutcome, HistoryDroplet, HistoryEntry, PendingKind, PendingOp, Stage,
    Unseen,
};
use crate::state::GroupState;

/// A pending operation older than this is given up (reported, and the droplet destroyed when
/// `on_unhealthy = "destroy"`).
pub const PENDING_GIVE_UP: Duration = Duration::from_secs(30 * 60);

/// Records the intent to create `names`: one history entry (pending) and a pending create
/// (stage `intent`) per name. Saved before the request is sent.
pub fn intend_create(gs: &mut GroupState, names: &[String], reason: &str, now: DateTime<Utc>) {
    gs.push_history(HistoryEntry {
        at: now,
        direction: Scale::Up,
        droplets: names
            .iter()
            .map(|n| HistoryDroplet {
                id: None,
                name: n.clone(),
                outcome: None,
            })
            .collect(),
        reason: reason.into(),
        outcome: ActionOutcome::Pending,
        finished_at: None,
    });
    for n in names {
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

/// Records the intent to destroy droplet `id`: a history entry (pending) and a pending
/// destroy (stage `intent`). Saved before the `DELETE` is sent.
pub fn intend_destroy(gs: &mut GroupState, id: u64, name: &str, reason: &str, now: DateTime<Utc>) {
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

/// Records a scale action a hook refused before any request: a finished history entry,
/// every droplet `cancelled: why`, nothing pending.
pub fn cancelled(
    gs: &mut GroupState,
    direction: Scale,
    droplets: &[(Option<u64>, String)],
    reason: &str,
    why: &str,
    now: DateTime<Utc>,
) {
    gs.push_history(HistoryEntry {
        at: now,
        direction,
        droplets: droplets
            .iter()
            .map(|(id, n)| HistoryDroplet {
                id: *id,
                name: n.clone(),
                outcome: Some(DropletOutcome::Cancelled(why.into())),
            })
            .collect(),
        reason: reason.into(),
        outcome: ActionOutcome::Cancelled(why.into()),
        finished_at: Some(now),
    });
}

/// What became of a create (its request, the wait for its droplet, its health check).
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// The API answered the create with the droplet's id: sent, waited for next.
    Created { name: String, id: u64 },
    /// The request failed, but a listing made after it shows the droplet.
    FoundAfterError { name: String, id: u64 },
    /// The request failed with an answer that says nothing was made (a 4xx): given up.
    Refused { name: String, why: String },
    /// The request failed and a listing made after it does not show the droplet: the outcome
    /// is unknown, the create stays pending and the listing counts as one that missed it.
    NotListed { name: String },
    /// The request failed and so did the listing after it: the outcome is unknown.
    ListingFailed { name: String },
    /// Its id answers 404 before it turned active (its create action errored?): given up.
    Vanished { id: u64 },
    /// It turned active: health-checked next.
    Active { id: u64 },
    /// It passed its health check. Known to a listing (`listed`) it is done; known only by
    /// its id it stays pending (stage `healthy`) until a listing shows it, else the next
    /// plan, made from a listing without it, would create again.
    Healthy { id: u64, name: String, listed: bool },
    /// It failed its health check.
    Unhealthy { id: u64, name: String, why: String },
}

/// Records `outcome` of a pending create.
pub fn create_outcome(gs: &mut GroupState, outcome: CreateOutcome, now: DateTime<Utc>) {
    match outcome {
        CreateOutcome::Created { name, id } | CreateOutcome::FoundAfterError { name, id } => {
            set_pending(gs, &name, Some(id), Stage::Requested);
            set_history_id(gs, &name, id);
        }
        CreateOutcome::Refused { name, why } => {
            drop_create(gs, &name);
            set_history_outcome(gs, &name, DropletOutcome::Failed(why), now);
        }
        CreateOutcome::NotListed { name } => {
            // Settled only by a later pass (`reconcile_create`), never right after the request.
            missed(gs, &name, now);
        }
        CreateOutcome::ListingFailed { name } => set_pending(gs, &name, None, Stage::Unknown),
        CreateOutcome::Vanished { id } => {
            let name = pending_name(gs, id);
            gs.pending.retain(|p| p.id != Some(id));
            set_history_outcome(
                gs,
                &name,
                DropletOutcome::Failed(
                    "the droplet disappeared before turning active (create action errored?)".into(),
                ),
                now,
            );
        }
        CreateOutcome::Active { id } => {
            let name = pending_name(gs, id);
            set_pending(gs, &name, Some(id), Stage::Active);
        }
        CreateOutcome::Healthy { id, name, listed } => {
            if listed {
                gs.pending.retain(|p| p.id != Some(id));
            } else {
                set_pending(gs, &name, Some(id), Stage::Healthy);
            }
            set_history_outcome(gs, &name, DropletOutcome::Healthy, now);
        }
        CreateOutcome::Unhealthy { id, name, why } => {
            gs.pending.retain(|p| p.id != Some(id));
            set_history_outcome(gs, &name, DropletOutcome::Unhealthy(why), now);
        }
    }
}

/// What a later pass found of a pending create's droplet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    /// The listing shows it (by its id, or by its name when no id is known).
    Listed { id: u64, active: bool },
    /// Not listed, but its id answers.
    LookedUp { id: u64, active: bool },
    /// Its id answers 404.
    Gone,
    /// No id known and no droplet of its name listed.
    NotListed,
}

/// What a later pass does with a pending create after [`reconcile_create`].
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Still pending: waited for (it exists), or its outcome is still unknown.
    Pending,
    /// Still pending, outcome unknown: not listed, and fewer listings than the consistency
    /// window asks for missed it so far (no droplet is created in the group meanwhile).
    Unknown,
    /// Done with: listed, healthy, gone, or given up as never made.
    Closed,
    /// It exists but never turned active within [`PENDING_GIVE_UP`]: given up (reported, and
    /// destroyed when `on_unhealthy = "destroy"`).
    NeverActive { id: u64 },
}

/// Records what a later pass at `now` found of pending create `p` (left by an earlier run,
/// killed or still waiting) and says what to do next.
pub fn reconcile_create(
    gs: &mut GroupState,
    p: &PendingOp,
    seen: Seen,
    now: DateTime<Utc>,
    c: Consistency,
) -> Verdict {
    if p.stage == Stage::Healthy {
        // Healthy already, waiting only to be listed (or found gone).
        return match seen {
            Seen::Listed { .. } | Seen::Gone => {
                drop_create(gs, &p.name);
                Verdict::Closed
            }
            Seen::LookedUp { .. } | Seen::NotListed => Verdict::Pending,
        };
    }
    match seen {
        Seen::Listed { id, active } | Seen::LookedUp { id, active } => {
            if p.id.is_none() {
                set_history_id(gs, &p.name, id);
            }
            let stage = if active {
                Stage::Active
            } else {
                Stage::Requested
            };
            set_pending(gs, &p.name, Some(id), stage);
            let age = (now - p.since).to_std().unwrap_or_default();
            if age > PENDING_GIVE_UP && !active {
                gs.pending.retain(|x| x.name != p.name);
                set_history_outcome(
                    gs,
                    &p.name,
                    DropletOutcome::Failed("never became active".into()),
                    now,
                );
                return Verdict::NeverActive { id };
            }
            Verdict::Pending
        }
        Seen::Gone => {
            // The API gave its id and now answers 404 for it: gone (its create action
            // errored, or it was destroyed by hand).
            drop_create(gs, &p.name);
            set_history_outcome(
                gs,
                &p.name,
                DropletOutcome::Failed("the droplet disappeared".into()),
                now,
            );
            Verdict::Closed
        }
        Seen::NotListed => {
            // The request may never have been sent (killed before it), have failed, or have
            // made a droplet the API does not list yet. Given up only once enough listings
            // over the consistency window missed it; until then nothing more is created.
            if !missed(gs, &p.name, now).is_some_and(|u| settled(&u, c)) {
                return Verdict::Unknown;
            }
            drop_create(gs, &p.name);
            set_history_outcome(
                gs,
                &p.name,
                DropletOutcome::NotCreated(format!(
                    "not listed in {} listings over {} (the run was interrupted before the request, or it failed)",
                    c.listings,
                    humantime::format_duration(c.window)
                )),
                now,
            );
            Verdict::Closed
        }
    }
}

/// Whether the listings that missed a create settle it as never made: `listings` misses in a
/// row, first to last at least `window` apart.
pub fn settled(u: &Unseen, c: Consistency) -> bool {
    let span = (u.last - u.first).to_std().unwrap_or_default();
    u.listings >= c.listings && span >= c.window
}

/// What became of a destroy.
#[derive(Debug, Clone, PartialEq)]
pub enum DestroyOutcome {
    /// The `DELETE` succeeded.
    Destroyed,
    /// The `DELETE` answered 404: gone already.
    AlreadyGone,
    /// The `DELETE` failed: still pending (stage `requested`), sent again by the next pass.
    Failed,
    /// A later pass no longer lists the droplet: destroyed.
    NoLongerListed,
    /// A later pass does not send it again: the droplet changed since the intent (protected,
    /// left the group); on doubt nothing is destroyed.
    NotResent { why: String },
}

/// Records `outcome` of the pending destroy of droplet `id`.
pub fn destroy_outcome(gs: &mut GroupState, id: u64, outcome: DestroyOutcome, now: DateTime<Utc>) {
    let done = match outcome {
        DestroyOutcome::Failed => {
            for p in gs
                .pending
                .iter_mut()
                .filter(|p| p.kind == PendingKind::Destroy && p.id == Some(id))
            {
                p.stage = Stage::Requested;
            }
            return;
        }
        DestroyOutcome::Destroyed | DestroyOutcome::NoLongerListed => DropletOutcome::Destroyed,
        DestroyOutcome::AlreadyGone => DropletOutcome::AlreadyGone,
        DestroyOutcome::NotResent { why } => DropletOutcome::NotDestroyed(why),
    };
    gs.pending
        .retain(|p| !(p.kind == PendingKind::Destroy && p.id == Some(id)));
    set_history_outcome_id(gs, id, done, now);
}

/// The name of the pending operation on droplet `id` (its id when none is pending).
pub fn pending_name(gs: &GroupState, id: u64) -> String {
    gs.pending
        .iter()
        .find(|p| p.id == Some(id))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| id.to_string())
}

/// Counts a listing made at `now` that did not show pending create `name` (stage `unknown`);
/// what the misses add up to, `None` when no such create is pending.
fn missed(gs: &mut GroupState, name: &str, now: DateTime<Utc>) -> Option<Unseen> {
    let p = gs
        .pending
        .iter_mut()
        .find(|p| p.kind == PendingKind::Create && p.name == name)?;
    p.stage = Stage::Unknown;
    let u = p.unseen.get_or_insert(Unseen {
        listings: 0,
        first: now,
        last: now,
    });
    u.listings += 1;
    u.last = now;
    Some(u.clone())
}

fn drop_create(gs: &mut GroupState, name: &str) {
    gs.pending
        .retain(|p| !(p.kind == PendingKind::Create && p.name == name));
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

fn set_history_outcome(
    gs: &mut GroupState,
    name: &str,
    outcome: DropletOutcome,
    now: DateTime<Utc>,
) {
    set_outcome_of(gs, |d| d.name == name, outcome, now);
}

fn set_history_outcome_id(
    gs: &mut GroupState,
    id: u64,
    outcome: DropletOutcome,
    now: DateTime<Utc>,
) {
    set_outcome_of(gs, |d| d.id == Some(id), outcome, now);
}

/// Gives the newest droplet without an outcome that `is` picks its outcome, and finishes its
/// entry if that was the last.
fn set_outcome_of(
    gs: &mut GroupState,
    is: impl Fn(&HistoryDroplet) -> bool,
    outcome: DropletOutcome,
    now: DateTime<Utc>,
) {
    for e in gs.history.iter_mut().rev() {
        if let Some(d) = e.droplets.iter_mut().find(|d| is(d) && d.outcome.is_none()) {
            d.outcome = Some(outcome);
            finish_entry(e, now);
            return;
        }
    }
}

/// An entry is finished when every droplet has an outcome: done when all succeeded, failed
/// when none did, partial otherwise.
fn finish_entry(e: &mut HistoryEntry, now: DateTime<Utc>) {
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
    e.finished_at = Some(now);
}

#[cfg(test)]
mod tests;
