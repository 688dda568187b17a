//! Which droplets a scale-down destroys (docs/design.md §3.7): never a protected one, never one
//! outside the group (only `new`/`active` members are candidates), never one whose destroy is
//! already on its way; droplets whose scrape failed go first, then by `remove`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::config::Remove;
use crate::model::ScrapedDroplet;
use crate::policy::GroupEvaluation;

use super::{text, PlannedDestroy};

/// Why fewer droplets than wanted could be chosen.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Held {
    pub protected: usize,
    pub in_flight: usize,
}

/// A scrape failure that says something about the droplet: an `active` droplet that did not
/// answer. A `new` droplet is not scraped at all, whatever its `error` says.
pub(super) fn scrape_failed(d: &ScrapedDroplet) -> Option<&str> {
    if d.status == "active" {
        d.error.as_deref()
    } else {
        None
    }
}

/// Up to `n` droplets from `live` (the new/active members), in destroy order.
pub(super) fn choose(
    live: &[&ScrapedDroplet],
    in_flight: &BTreeSet<u64>,
    remove: Remove,
    eval: &GroupEvaluation,
    n: usize,
) -> (Vec<PlannedDestroy>, Held) {
    // `load1` from the evaluation, or from the scrape itself (the stored evaluation leaves the
    // per-droplet list out to stay small).
    let mut load: BTreeMap<u64, f64> = eval
        .droplets
        .iter()
        .filter_map(|d| d.load1.filter(|v| v.is_finite()).map(|v| (d.id, v)))
        .collect();
    for d in live {
        if let Some(v) = d.series.get(super::LOAD1).filter(|v| v.is_finite()) {
            load.entry(d.id).or_insert(*v);
        }
    }
    let mut held = Held::default();
    let mut cands: Vec<&ScrapedDroplet> = Vec::new();
    for d in live {
        if d.protected {
            held.protected += 1;
        } else if in_flight.contains(&d.id) {
            held.in_flight += 1;
        } else {
            cands.push(d);
        }
    }
    let by_remove = |a: &ScrapedDroplet, b: &ScrapedDroplet| -> Ordering {
        match remove {
            Remove::Newest => b.created_at.cmp(&a.created_at),
            Remove::Oldest => a.created_at.cmp(&b.created_at),
            Remove::LeastLoaded => match (load.get(&a.id), load.get(&b.id)) {
                (Some(x), Some(y)) => x.total_cmp(y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
            // Equal load: the newest goes (it has done the least work so far).
            .then_with(|| b.created_at.cmp(&a.created_at)),
        }
    };
    cands.sort_by(|a, b| {
        scrape_failed(b)
            .is_some()
            .cmp(&scrape_failed(a).is_some())
            .then_with(|| by_remove(a, b))
            .then_with(|| a.id.cmp(&b.id))
    });
    let chosen = cands
        .into_iter()
        .take(n)
        .map(|d| {
            let created = d
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let why = match scrape_failed(d) {
                Some(e) => format!("scrape failed: {e}"),
                None => match remove {
                    Remove::Newest => format!("newest (created {created})"),
                    Remove::Oldest => format!("oldest (created {created})"),
                    Remove::LeastLoaded => match load.get(&d.id) {
                        Some(v) => format!("least loaded (load1 {})", text::num(*v)),
                        None => "least loaded (no load1 value: chosen after those with one)".into(),
                    },
                },
            };
            PlannedDestroy {
                id: d.id,
                name: d.name.to_string(),
                why,
            }
        })
        .collect();
    (chosen, held)
}
