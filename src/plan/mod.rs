//! Planning (pure): from the evaluation, the config and the history in state, the desired
//! size and the concrete changes, with every rule that moved the recommendation.
//!
//! The rules, in the order they apply (docs/design.md §3, each records `"<rule>: <why>"` in
//! `reasons` when it moves or holds the number):
//!
//! 0. the raw recommendation (`recommended`): step policies (`scale-up beats scale-down`,
//!    `largest step`) combined with target tracking (`target`), the larger size winning;
//! 1. `stabilization`: a scale-down goes no lower than the highest target recommendation of
//!    the window;
//! 2. `max` / `min`: the recommendation is clamped to the bounds (a group outside its bounds
//!    never moves further away from them);
//! 3. `min_reporting`: partial data never shrinks a group;
//! 4. `cooldown_up` / `cooldown_down`, from the last scale action in the history;
//! 5. `pending`: no new scale action while an operation of the group is on its way;
//! 6. `max_step_up` / `max_step_down`;
//! 7. `no template`: a group without a template cannot grow;
//! 8. `repair`: a group below `min` is brought up to `min` regardless of metrics, cooldowns
//!    and step limits; one above `max` down toward `max` regardless of metrics and cooldowns
//!    but at most `max_step_down` a pass; both count operations already on their way so
//!    nothing is done twice;
//! 9. `unknown`: no create at all while a pending create's outcome is unknown (its droplet
//!    missed from a listing: killed mid-request, timed out, server error), repair included,
//!    until a listing shows it or enough listings over `[api] consistency_window` miss it;
//! 10. `protected`: the droplets a scale-down may destroy; `desired` is what will really
//!     happen (`desired = current + create - destroy`);
//! 11. `guard`: a plan destroying more than `max_destroy_share` of the group (rounded up to a
//!     whole droplet) is marked; apply refuses it unless `--force`.
//!
//! The bounds (2) come before the holds (3–5) so that a group at `max` says `max`, not
//! `cooldown_up`; the result is the same in any order (every rule moves toward `current` or
//! clamps to an interval holding it). The holds (3–5) all judge the same wish, so every rule
//! that blocks a change is named, not only the first.
//!
//! Decisions where docs/design.md is silent:
//!
//! * A target without data (`aggregate: null`) has no opinion: it neither grows the group nor
//!   holds a step policy's scale-down, and no recommendation is stored for stabilization.
//! * With a target that has data, any scale-down (target- or step-driven) goes no lower than
//!   the highest target recommendation of the window: the stabilized target is what is
//!   combined with the step policies, "the larger wins".
//! * Repair ignores metrics, cooldowns, `min_reporting` and the step limits (the bounds are
//!   bounds), but counts operations on their way: pending creates whose droplet is not yet a
//!   new/active member count toward `min`, members whose destroy is pending count as gone.
//!   Growth beyond `min` in the same pass still follows every rule.
//! * A `new` droplet whose `error` is set was not scraped; it did not fail. Only `active`
//!   droplets with an `error` go first as "scrape failed".
//! * A member whose destroy is pending is never chosen again.
//! * `least_loaded`: droplets without a `load1` go after those with one; equal loads, the
//!   newest first; every order ends on the id, so plans are deterministic.
//! * A history entry dated in the future (clock skew) counts as "0s ago".

mod choose;
mod members;
mod names;
pub(crate) mod text;

#[cfg(test)]
mod operator_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Group;
use crate::model::{
    HistoryEntry, ManualSize, Paused, PendingKind, PendingOp, Recommendation, Scale, ScrapedDroplet,
};
use crate::policy::{Coverage, GroupEvaluation, PolicyEvaluation};

pub use members::{is_live, is_live_status, Members};

/// The series `remove = "least_loaded"` orders by (from the evaluation, or from the scrape
/// when the stored evaluation has no per-droplet values).
const LOAD1: &str = "node_load1";

/// The series of the latest scrape the planner reads for `groups`: `node_load1` where a group
/// removes the least loaded droplets, none otherwise.
pub fn series_read(groups: &[Group]) -> &'static [&'static str] {
    if groups
        .iter()
        .any(|g| g.remove == crate::config::Remove::LeastLoaded)
    {
        &[LOAD1]
    } else {
        &[]
    }
}

pub use names::is_hostname;

/// Everything the planner looks at. No clock, no I/O: `now` and `rand` are passed in.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub group: &'a Group,
    pub eval: &'a GroupEvaluation,
    /// The group's members as listed by the scrape the evaluation is based on.
    pub members: &'a [ScrapedDroplet],
    pub history: &'a [HistoryEntry],
    pub pending: &'a [PendingOp],
    pub recommendations: &'a [Recommendation],
    /// The operator's hand (`doscale pause` / `doscale set`), from the group's state.
    pub operator: Operator<'a>,
    /// The API's eventual consistency (for the wording of rule 9).
    pub consistency: crate::config::Consistency,
    pub now: DateTime<Utc>,
    /// Randomness for `{rand}` in names.
    pub rand: u64,
}

/// What the operator decided by hand for a group.
#[derive(Debug, Clone, Copy, Default)]
pub struct Operator<'a> {
    /// `doscale pause`: the plan changes nothing.
    pub paused: Option<&'a Paused>,
    /// `doscale set GROUP N`: the desired size of this plan.
    pub manual: Option<&'a ManualSize>,
}

/// One group's plan (stored in state, printed by `plan --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    pub name: String,
    pub at: DateTime<Utc>,
    /// Members now (new + active).
    pub current: u32,
    /// The final desired size.
    pub desired: u32,
    /// The raw recommendation of the policies and target, before bounds, cooldowns, steps.
    pub recommended: u32,
    /// Names of droplets to create.
    pub create: Vec<String>,
    pub destroy: Vec<PlannedDestroy>,
    /// Every rule that moved (or held) the recommendation: "<rule>: <why>".
    pub reasons: Vec<String>,
    /// Sorted ids of the members the plan was made from (apply refuses it if they changed).
    pub based_on: Vec<u64>,
    /// The target-tracking recommendation to remember for stabilization, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<Recommendation>,
    /// When `apply` carried this plan out (a plan is applied once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<DateTime<Utc>>,
    /// The group is paused (`doscale pause`): the plan changes nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The `doscale set` request (its time) this plan carries out: applying the plan
    /// consumes that request. `None` when there is none, or when it is held (paused,
    /// pending operations, a scrape older than apply's last changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carries_set: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedDestroy {
    pub id: u64,
    pub name: String,
    /// Why this droplet was chosen (`scrape failed`, `newest`, …).
    pub why: String,
}

impl GroupPlan {
    /// Whether applying the plan changes anything.
    pub fn changes(&self) -> bool {
        !self.create.is_empty() || !self.destroy.is_empty()
    }
}

/// Operations of the group already on their way.
struct InFlight {
    /// Pending creates whose droplet is not (yet) a new/active member: on top of `current`.
    creates: u32,
    /// New/active members whose destroy is pending: they are going away.
    destroys: BTreeSet<u64>,
}

impl InFlight {
    fn of(pending: &[PendingOp], live: &[&ScrapedDroplet]) -> InFlight {
        let is =
            |op: &PendingOp, d: &ScrapedDroplet| op.id.map_or(op.name == d.name, |id| id == d.id);
        let creates = pending
            .iter()
            .filter(|op| op.kind == PendingKind::Create && !live.iter().any(|d| is(op, d)))
            .count() as u32;
        let destroys = live
            .iter()
            .filter(|d| {
                pending
                    .iter()
                    .any(|op| op.kind == PendingKind::Destroy && is(op, d))
            })
            .map(|d| d.id)
            .collect();
        InFlight { creates, destroys }
    }
}

/// The raw recommendation and the target's share of it.
struct Raw {
    recommended: u32,
    /// The target-tracking recommendation, when the target has data.
    target: Option<u32>,
}

/// Plans one group. Pure: the same input gives the same plan.
pub fn plan_group(input: &PlanInput<'_>) -> GroupPlan {
    let g = input.group;
    let mut why: Vec<String> = Vec::new();

    // Members that count, each id once, with what apply changed since the scrape (the
    // evaluation is of the latest scrape: its time is the scrape's).
    let members = Members::of(input.members, input.eval.at, input.history);
    let live: Vec<&ScrapedDroplet> = members.all();
    let current = live.len() as u32;
    let mut based_on: Vec<u64> = input.members.iter().map(|d| d.id).collect();
    based_on.sort_unstable();
    based_on.dedup();
    let flight = InFlight::of(input.pending, &live);

    let raw = raw_recommendation(input.eval, current, &mut why);
    let recommendation = raw.target.map(|desired| Recommendation {
        at: input.now,
        desired,
    });
    let mut want = raw.recommended;
    let manual = input.operator.manual;

    if let Some(m) = manual {
        // The operator's number replaces the recommendation, like `kubectl scale`.
        why.insert(0, text::manual(m, current));
        want = m.desired;
    } else {
        stabilization(input, current, raw.target, &mut want, &mut why);
    }
    bounds(g, current, &mut want, &mut why);
    // The holds all judge the same wish, so every rule that blocks it is named, not only the
    // first: an operator sees at once everything that stands in the way.
    let wish = want;
    if manual.is_none() {
        min_reporting(input.eval, current, wish, &mut want, &mut why);
        cooldowns(input, current, wish, &mut want, &mut why);
    }
    let held = pending(input.pending, current, wish, &mut want, &mut why);
    if manual.is_none() {
        step_limits(g, current, &mut want, &mut why);
    }
    no_template(g, current, &mut want, &mut why);
    repair(g, current, &flight, &mut want, &mut why);
    unknown(input, current, wish, &mut want, &mut why);
    // Last word: what makes the plan change nothing at all, whatever the rules above said.
    let stale = stale_scrape(&members, current, &mut want, &mut why);
    let paused = paused(input, current, &mut want, &mut why);
    let carries_set = manual.filter(|_| !held && !stale && !paused).map(|m| m.at);

    // Concrete changes.
    let mut create = Vec::new();
    let mut destroy = Vec::new();
    if want > current {
        let template = g
            .template
            .as_ref()
            .expect("no_template keeps a group without one from growing");
        let used: BTreeSet<String> = input
            .members
            .iter()
            .map(|d| d.name.to_string())
            .chain(input.pending.iter().map(|p| p.name.clone()))
            .chain(
                input
                    .history
                    .iter()
                    .flat_map(|h| h.droplets.iter().map(|d| d.name.clone())),
            )
            .collect();
        create = names::new_names(
            &template.name,
            &g.name,
            (want - current) as usize,
            &used,
            input.rand,
        );
    } else if want < current {
        let n = (current - want) as usize;
        let (chosen, held) = choose::choose(&live, &flight.destroys, g.remove, input.eval, n);
        if chosen.len() < n {
            let mut parts = Vec::new();
            if held.protected > 0 {
                let tag = g
                    .protect_tag
                    .as_deref()
                    .map(|t| format!(" {t:?}"))
                    .unwrap_or_default();
                parts.push(format!(
                    "{} the protect tag{tag}",
                    text::count(held.protected, "carries", "carry")
                ));
            }
            if held.in_flight > 0 {
                parts.push(format!(
                    "{} already being destroyed",
                    text::count(held.in_flight, "is", "are")
                ));
            }
            let k = chosen.len() as u32;
            why.push(format!(
                "protected: only {k} of the {n} droplets to remove may be destroyed ({}): desired {} instead of {want}",
                parts.join(", "),
                current - k
            ));
            want = current - k;
        }
        destroy = chosen;
    }

    let allowed = destroy_allowed(current, g.max_destroy_share);
    if destroy.len() as u32 > allowed {
        why.push(format!(
            "guard: {} of {current} droplets to destroy in one pass is more than max_destroy_share {}% allows ({allowed}): apply refuses this plan unless --force",
            destroy.len(),
            g.max_destroy_share * 100.0
        ));
    }

    if why.is_empty() {
        why.push(format!(
            "no policy or target: group {} follows min {} and max {} only",
            g.name, g.min, g.max
        ));
    }

    GroupPlan {
        name: g.name.clone(),
        at: input.now,
        current,
        desired: want,
        recommended: raw.recommended,
        create,
        destroy,
        reasons: why,
        based_on,
        recommendation,
        applied_at: None,
        paused,
        carries_set,
    }
}

/// Apply changed the group after the latest scrape (a manual `apply`, no `scrape` since):
/// the evaluation did not see the droplets it created or destroyed, so nothing changes until
/// a scrape and an evaluation do. `current` already counts them.
fn stale_scrape(members: &Members, current: u32, want: &mut u32, why: &mut Vec<String>) -> bool {
    let Some((created, destroyed)) = members.changed_since_scrape() else {
        return false;
    };
    let mut parts = Vec::new();
    if !created.is_empty() {
        parts.push(format!("created {}", created.join(", ")));
    }
    if !destroyed.is_empty() {
        parts.push(format!("destroyed {}", destroyed.join(", ")));
    }
    why.insert(
        0,
        format!(
            "scrape: apply changed the group after the latest scrape ({}; counted in current {current}): no change until `doscale scrape` and `doscale evaluate` see it{}",
            parts.join("; "),
            if *want != current {
                format!(" (wanted {}, stays {current})", *want)
            } else {
                String::new()
            }
        ),
    );
    *want = current;
    true
}

/// A paused group is scraped and evaluated, but its plan changes nothing: not even the
/// bounds are repaired (the operator's hand is off the group until `doscale resume`).
fn paused(input: &PlanInput<'_>, current: u32, want: &mut u32, why: &mut Vec<String>) -> bool {
    let Some(p) = input.operator.paused else {
        return false;
    };
    why.insert(0, text::paused(p, &input.group.name, current, *want));
    *want = current;
    true
}

fn signed_step(p: &PolicyEvaluation) -> String {
    match p.scale {
        Scale::Up => format!("+{}", p.step),
        Scale::Down => format!("-{}", p.step),
    }
}

/// `cpu 0.21 > 0.8 false`, or `cpu no data (why) false`.
fn conditions(p: &PolicyEvaluation) -> String {
    p.conditions
        .iter()
        .map(|c| match c.value {
            Some(v) => format!(
                "{} {} {} {} {}",
                c.name,
                text::num(v),
                c.op,
                text::num(c.threshold),
                c.satisfied
            ),
            None => match &c.no_data {
                Some(r) => format!("{} no data ({r}) {}", c.name, c.satisfied),
                None => format!("{} no data {}", c.name, c.satisfied),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The largest step among `fired`; the first in evaluation order on a tie.
fn largest<'a>(fired: &[&'a PolicyEvaluation]) -> Option<&'a PolicyEvaluation> {
    fired.iter().copied().fold(None, |best, p| match best {
        Some(b) if b.step >= p.step => Some(b),
        _ => Some(p),
    })
}

fn names_of(ps: &[&PolicyEvaluation]) -> String {
    ps.iter()
        .map(|p| format!("{} ({})", p.name, signed_step(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rule 0: the raw recommendation from the step policies and the target (docs/design.md §3.4).
fn raw_recommendation(eval: &GroupEvaluation, current: u32, why: &mut Vec<String>) -> Raw {
    // One line per verdict, so `doscale plan` answers "why (not)".
    if !eval.policies.is_empty() && eval.policies.iter().all(|p| !p.satisfied) {
        why.push(format!(
            "no policy satisfied: {}",
            eval.policies
                .iter()
                .map(|p| format!("{} ({})", p.name, conditions(p)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    } else {
        for p in &eval.policies {
            let verdict = if p.satisfied {
                "satisfied"
            } else {
                "not satisfied"
            };
            why.push(format!(
                "policy: {} ({}) {verdict} ({} {})",
                p.name,
                signed_step(p),
                match p.match_ {
                    crate::config::Match::All => "all of",
                    crate::config::Match::Any => "any of",
                },
                conditions(p)
            ));
        }
    }

    let ups: Vec<&PolicyEvaluation> = eval
        .policies
        .iter()
        .filter(|p| p.satisfied && p.scale == Scale::Up)
        .collect();
    let downs: Vec<&PolicyEvaluation> = eval
        .policies
        .iter()
        .filter(|p| p.satisfied && p.scale == Scale::Down)
        .collect();
    let step = if let Some(up) = largest(&ups) {
        if ups.len() > 1 {
            why.push(format!(
                "largest step: {} ({}) wins among {}",
                up.name,
                signed_step(up),
                names_of(&ups)
            ));
        }
        if !downs.is_empty() {
            why.push(format!(
                "scale-up beats scale-down: {} is satisfied, so {} {} ignored",
                up.name,
                names_of(&downs),
                if downs.len() == 1 { "is" } else { "are" }
            ));
        }
        Some(current.saturating_add(up.step))
    } else if let Some(down) = largest(&downs) {
        if downs.len() > 1 {
            why.push(format!(
                "largest step: {} ({}) wins among {}",
                down.name,
                signed_step(down),
                names_of(&downs)
            ));
        }
        Some(current.saturating_sub(down.step))
    } else {
        None
    };

    let target = match &eval.target {
        None => None,
        Some(t) => match t.aggregate {
            Some(agg) => {
                why.push(format!(
                    "target: {} {} for a target of {} over {} ready → {} ({})",
                    t.function,
                    text::num(agg),
                    text::num(t.value),
                    text::count(t.ready, "droplet", "droplets"),
                    t.recommended,
                    t.reason
                ));
                Some(t.recommended)
            }
            None => {
                // Without data the target has no opinion: it neither grows nor holds the group.
                why.push(format!("target: no data, no recommendation ({})", t.reason));
                None
            }
        },
    };

    let recommended = match (step, target) {
        (Some(s), Some(t)) => {
            if s != t {
                why.push(format!(
                    "target: step policies say {s}, target tracking says {t}: the larger ({}) wins",
                    s.max(t)
                ));
            }
            s.max(t)
        }
        (Some(s), None) => s,
        (None, Some(t)) => t,
        (None, None) => current,
    };
    Raw {
        recommended,
        target,
    }
}

/// Rule 1: a scale-down goes only to the highest target recommendation of the window
/// (HPA's scale-down stabilization), never above the current size.
fn stabilization(
    input: &PlanInput<'_>,
    current: u32,
    target: Option<u32>,
    want: &mut u32,
    why: &mut Vec<String>,
) {
    let Some(now_rec) = target else { return };
    if *want >= current {
        return;
    }
    let window = input
        .group
        .target
        .as_ref()
        .map(|t| t.stabilization_down)
        .unwrap_or_default();
    let highest = input
        .recommendations
        .iter()
        .filter(|r| r.at <= input.now && text::since(input.now, r.at) <= window)
        .map(|r| r.desired)
        .chain([now_rec])
        .max()
        .unwrap_or(now_rec);
    let floor = highest.min(current);
    if floor > *want {
        why.push(format!(
            "stabilization: a scale-down goes no lower than the highest target recommendation of the last {} ({highest}, now {now_rec}): {} instead of {}",
            text::dur(window),
            floor,
            *want
        ));
        *want = floor;
    }
}

/// Rule 2: clamp to [min, max]. A group already outside its bounds does not move further
/// away (repair, rule 8, brings it back).
fn bounds(g: &Group, current: u32, want: &mut u32, why: &mut Vec<String>) {
    let hi = g.max.max(current);
    let lo = g.min.min(current);
    if *want > hi {
        why.push(if current > g.max {
            format!(
                "max: the group is above max {} ({current}): no scale-up",
                g.max
            )
        } else if current == g.max {
            format!("max: already at max {} (recommended {})", g.max, *want)
        } else {
            format!("max: {} capped at max {}", *want, g.max)
        });
        *want = hi;
    } else if *want < lo {
        why.push(if current < g.min {
            format!(
                "min: the group is below min {} ({current}): no scale-down",
                g.min
            )
        } else if current == g.min {
            format!("min: already at min {} (recommended {})", g.min, *want)
        } else {
            format!("min: {} raised to min {}", *want, g.min)
        });
        *want = lo;
    }
}

/// Rule 3: a scale-down needs enough of the eligible droplets to have reported (§3.3), and
/// enough of them to have a value for every condition and target it rests on: the deciding
/// scale-down policy, the target, and every scale-up policy that a droplet without a value
/// could have fired (scale-up beats scale-down).
fn min_reporting(
    eval: &GroupEvaluation,
    current: u32,
    wish: u32,
    want: &mut u32,
    why: &mut Vec<String>,
) {
    if wish >= current {
        return;
    }
    let pct = |x: f64| text::num((x * 1000.0).round() / 10.0);
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let r = &eval.reporting;
    let mut held = false;
    if !r.ok {
        why.push(format!(
            "min_reporting: {} of {} eligible droplets reported ({}% < {}%): partial data never shrinks a group (wanted {})",
            r.reporting,
            r.eligible,
            pct(share(r.reporting, r.eligible)),
            pct(r.required),
            wish
        ));
        held = true;
    }
    for (what, c) in doubts(eval) {
        let mut line = format!(
            "min_reporting: {what} has a value from {} of {} eligible droplets ({}% < {}%)",
            c.with_value,
            c.eligible,
            pct(share(c.with_value, c.eligible)),
            pct(r.required)
        );
        if c.with_value < c.eligible {
            line.push_str(&format!("; none from {}", c.missing_text()));
        }
        line.push_str(&format!(
            ": partial data never shrinks a group (wanted {wish})"
        ));
        why.push(line);
        held = true;
    }
    if held {
        *want = current;
    }
}

/// What a scale-down rests on whose values do not cover `min_reporting` of the eligible
/// droplets: the conditions of the deciding scale-down policy, the target, and the conditions
/// of each scale-up policy whose verdict they leave open (under `match = "all"` a condition
/// that is false on full data settles it; otherwise every condition must be covered).
fn doubts(eval: &GroupEvaluation) -> Vec<(String, &Coverage)> {
    let mut out = Vec::new();
    let downs: Vec<&PolicyEvaluation> = eval
        .policies
        .iter()
        .filter(|p| p.satisfied && p.scale == Scale::Down)
        .collect();
    if let Some(p) = largest(&downs) {
        for c in p.conditions.iter().filter(|c| !c.coverage.ok) {
            out.push((
                format!("condition {} of scale-down policy {}", c.name, p.name),
                &c.coverage,
            ));
        }
    }
    if let Some(t) = eval.target.as_ref().filter(|t| !t.coverage.ok) {
        out.push(("the target".to_string(), &t.coverage));
    }
    for p in eval
        .policies
        .iter()
        .filter(|p| !p.satisfied && p.scale == Scale::Up)
    {
        let settled = p.match_ == crate::config::Match::All
            && p.conditions.iter().any(|c| c.coverage.ok && !c.satisfied);
        if settled {
            continue;
        }
        for c in p.conditions.iter().filter(|c| !c.coverage.ok) {
            out.push((
                format!(
                    "condition {} of scale-up policy {} (it could have fired)",
                    c.name, p.name
                ),
                &c.coverage,
            ));
        }
    }
    out
}

/// Rule 4: cooldowns per direction from the last scale action, whatever its outcome (§3.6).
fn cooldowns(
    input: &PlanInput<'_>,
    current: u32,
    wish: u32,
    want: &mut u32,
    why: &mut Vec<String>,
) {
    let g = input.group;
    let (rule, cooldown) = if wish > current {
        ("cooldown_up", g.cooldown_up)
    } else if wish < current {
        ("cooldown_down", g.cooldown_down)
    } else {
        return;
    };
    if let Some(c) = cooling(input.history, input.now, cooldown) {
        let dir = match c.last.direction {
            Scale::Up => "up",
            Scale::Down => "down",
        };
        why.push(format!(
            "{rule}: last scale action ({dir}) {} ago < {} (wanted {}, stays {current})",
            text::dur(c.ago),
            text::dur(cooldown),
            wish
        ));
        *want = current;
    }
}

/// A cooldown still running: the last scale action, how long ago it was, how long the
/// cooldown still runs.
#[derive(Debug, Clone, Copy)]
pub struct Cooling<'a> {
    pub last: &'a HistoryEntry,
    pub ago: std::time::Duration,
    pub left: std::time::Duration,
}

/// Whether `cooldown` still runs at `now`, counted from the last scale action: the one rule
/// behind the planner's cooldowns and what `status` shows as "left".
pub fn cooling(
    history: &[HistoryEntry],
    now: DateTime<Utc>,
    cooldown: std::time::Duration,
) -> Option<Cooling<'_>> {
    let last = last_action(history)?;
    let ago = text::since(now, last.at);
    (ago < cooldown).then(|| Cooling {
        last,
        ago,
        left: cooldown - ago,
    })
}

/// The last scale action, by the time its intent was recorded.
pub fn last_action(history: &[HistoryEntry]) -> Option<&HistoryEntry> {
    // On equal times the later entry wins.
    history.iter().rev().max_by_key(|h| h.at)
}

/// Rule 5: no new scale action while an operation is on its way (§3.6).
fn pending(
    ops: &[PendingOp],
    current: u32,
    wish: u32,
    want: &mut u32,
    why: &mut Vec<String>,
) -> bool {
    if wish == current || ops.is_empty() {
        return false;
    }
    let creates = ops.iter().filter(|o| o.kind == PendingKind::Create).count();
    let destroys = ops.len() - creates;
    let mut parts = Vec::new();
    if creates > 0 {
        parts.push(format!(
            "{} created, not yet healthy",
            text::count(creates, "droplet", "droplets")
        ));
    }
    if destroys > 0 {
        parts.push(format!(
            "{} sent, not yet gone",
            text::count(destroys, "destroy", "destroys")
        ));
    }
    why.push(format!(
        "pending: {}: no new scale action until they finish (wanted {}, stays {current})",
        parts.join("; "),
        wish
    ));
    *want = current;
    true
}

/// Rule 9: a create whose outcome is unknown may have made its droplet, which the API does not
/// list yet: until that is settled no further droplet is created in the group, repair
/// included (a duplicate is worse than a short wait).
fn unknown(input: &PlanInput<'_>, current: u32, wish: u32, want: &mut u32, why: &mut Vec<String>) {
    // Said whenever the group wants to grow, even when the create on its way already covers
    // the want: the operator sees why it does not grow yet.
    if *want <= current && wish <= current && current >= input.group.min {
        return;
    }
    let unknown: Vec<String> = input
        .pending
        .iter()
        .filter(|o| o.kind == PendingKind::Create)
        .filter_map(|o| {
            let u = o.unseen.as_ref()?;
            Some(format!(
                "create of {} outcome unknown (missed {} of {} listings, since {})",
                o.name,
                u.listings,
                input.consistency.listings,
                text::dur(text::since(input.now, o.since))
            ))
        })
        .collect();
    if unknown.is_empty() {
        return;
    }
    if *want > current {
        why.push(format!(
            "unknown: {}: no new create until resolved (wanted {}, stays {current})",
            unknown.join("; "),
            *want
        ));
        *want = current;
    } else {
        why.push(format!(
            "unknown: {}: no new create until resolved",
            unknown.join("; ")
        ));
    }
}

/// The hard guard of apply (issue 14.10): how many of a group of `current` droplets one pass
/// may destroy: `max_destroy_share` of them rounded up to a whole droplet (half of 5 is 3, so
/// 5 → 2 passes and 4 → 1 does not), at least one.
pub fn destroy_allowed(current: u32, share: f64) -> u32 {
    ((f64::from(current) * share).ceil() as u32).max(1)
}

/// Rule 6: at most `max_step_up` added and `max_step_down` removed per pass.
fn step_limits(g: &Group, current: u32, want: &mut u32, why: &mut Vec<String>) {
    if *want > current {
        if let Some(step) = g.max_step_up {
            if *want - current > step {
                why.push(format!(
                    "max_step_up: {} wanted (+{}), at most +{step} per pass: {}",
                    *want,
                    *want - current,
                    current + step
                ));
                *want = current + step;
            }
        }
    } else if current - *want > g.max_step_down {
        let step = g.max_step_down;
        why.push(format!(
            "max_step_down: {} wanted (-{}), at most -{step} per pass: {}",
            *want,
            current - *want,
            current - step
        ));
        *want = current - step;
    }
}

/// Rule 7: a group without a template can shrink but not grow (docs/design.md §2).
fn no_template(g: &Group, current: u32, want: &mut u32, why: &mut Vec<String>) {
    if *want > current && g.template.is_none() {
        why.push(format!(
            "no template: group {} has no [group.template], so it cannot grow: nothing is created (wanted {}, stays {current})",
            g.name, *want
        ));
        *want = current;
    }
}

/// Rule 8: back to the bounds regardless of metrics, cooldowns and step limits (§3.5), counting
/// operations already on their way.
fn repair(g: &Group, current: u32, flight: &InFlight, want: &mut u32, why: &mut Vec<String>) {
    if current < g.min {
        let short = g.min - current;
        if g.template.is_none() {
            why.push(format!(
                "no template: the group is {short} below min {} ({current}) but has no [group.template]: repair cannot create droplets",
                g.min
            ));
            return;
        }
        let on_way = flight.creates.min(short);
        let create = short - on_way;
        let goal = current + create;
        let head = format!(
            "repair: {} below min {} ({current})",
            text::count(short as usize, "droplet", "droplets"),
            g.min
        );
        why.push(if create == 0 {
            format!("{head}, already covered by {} on its way (pending): nothing more is created", text::count(on_way as usize, "create", "creates"))
        } else if on_way > 0 {
            format!("{head}: creating {create} regardless of metrics and cooldown, not limited by max_step_up (min is a bound); {} on its way (pending) already counts toward min", text::count(on_way as usize, "create", "creates"))
        } else {
            format!("{head}: creating {create} regardless of metrics and cooldown, not limited by max_step_up (min is a bound)")
        });
        *want = (*want).max(goal);
    } else if current > g.max {
        // Unlike a shortfall, a surplus is repaired at most `max_step_down` a pass: a max set
        // too low (do-scaler's max only capped creation) must not cut a fleet in one pass.
        let over = current - g.max;
        let on_way = (flight.destroys.len() as u32).min(over);
        let remove = (over - on_way).min(g.max_step_down);
        let goal = current - remove;
        let head = format!(
            "repair: {} above max {} ({current})",
            text::count(over as usize, "droplet", "droplets"),
            g.max
        );
        let step = if remove < over - on_way {
            format!(
                ", at most max_step_down {} per pass ({} more to go after this pass)",
                g.max_step_down,
                over - on_way - remove
            )
        } else {
            String::new()
        };
        why.push(if remove == 0 {
            format!("{head}, already covered by {} on its way (pending): nothing more is destroyed", text::count(on_way as usize, "destroy", "destroys"))
        } else if on_way > 0 {
            format!("{head}: destroying {remove} regardless of metrics and cooldown{step}; {} on its way (pending) already counts", text::count(on_way as usize, "destroy", "destroys"))
        } else {
            format!("{head}: destroying {remove} regardless of metrics and cooldown{step}")
        });
        *want = (*want).min(goal);
    }
}
