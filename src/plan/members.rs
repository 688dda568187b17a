//! The group's members as they stand — the one count `plan`, `status` and the metrics
//! textfile share.
//!
//! The latest scrape lists the group; `apply` may have changed it since (a manual `apply`
//! not followed by a `scrape`). Its history says what: droplets created after the scrape
//! (their id known, not failed) join, droplets destroyed after it leave. Without this,
//! `status` said "size 10 … desired 12" right after apply had created the 2 droplets, and a
//! new `plan` counted 10 as well.

use chrono::{DateTime, Utc};

use crate::model::{DropletOutcome, HistoryEntry, Scale, ScrapedDroplet};

/// A droplet that counts toward the group's size (docs/design.md §3.1): `new` or `active`.
pub fn is_live(d: &ScrapedDroplet) -> bool {
    is_live_status(&d.status)
}

/// The one rule behind [`is_live`], for a droplet status as the API gives it: `new` or
/// `active` counts toward the size (and may be destroyed); `off` and `archive` do not.
pub fn is_live_status(status: &str) -> bool {
    status == "new" || status == "active"
}

/// The members now: those of the scrape, and the changes apply made after it.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    /// New/active droplets of the scrape, each id once, without those destroyed since.
    listed: Vec<&'a ScrapedDroplet>,
    /// Droplets apply created after the scrape (not scraped: name, id and intent time only;
    /// `active` once healthy, `new` while on their way).
    created: Vec<ScrapedDroplet>,
    /// Names of the members apply destroyed after the scrape.
    destroyed: Vec<String>,
}

impl<'a> Members<'a> {
    /// `scrape`: the latest scrape's droplets, taken at `scraped_at`; `history`: the group's
    /// scale actions.
    pub fn of(
        scrape: &'a [ScrapedDroplet],
        scraped_at: DateTime<Utc>,
        history: &[HistoryEntry],
    ) -> Members<'a> {
        let mut seen = std::collections::BTreeSet::new();
        let mut listed: Vec<&ScrapedDroplet> = scrape
            .iter()
            .filter(|d| is_live(d) && seen.insert(d.id))
            .collect();
        let mut created: Vec<ScrapedDroplet> = Vec::new();
        let mut destroyed = Vec::new();
        for e in history.iter().filter(|e| e.at > scraped_at) {
            for d in &e.droplets {
                let Some(id) = d.id else { continue };
                let outcome = d.outcome.as_ref();
                match e.direction {
                    Scale::Up => {
                        // Still on its way, healthy, or unhealthy but kept: it exists.
                        let exists = matches!(
                            outcome,
                            None | Some(DropletOutcome::Healthy | DropletOutcome::Unhealthy(_))
                        );
                        if exists && !seen.contains(&id) && !created.iter().any(|c| c.id == id) {
                            created.push(ScrapedDroplet {
                                id,
                                name: d.name.as_str().into(),
                                status: if outcome == Some(&DropletOutcome::Healthy) {
                                    "active".into()
                                } else {
                                    "new".into()
                                },
                                created_at: e.at,
                                address: None,
                                error: None,
                                protected: false,
                                series: Default::default(),
                            });
                        }
                    }
                    Scale::Down => {
                        if matches!(
                            outcome,
                            Some(DropletOutcome::Destroyed | DropletOutcome::AlreadyGone)
                        ) {
                            let before = listed.len() + created.len();
                            listed.retain(|m| m.id != id);
                            created.retain(|m| m.id != id);
                            if listed.len() + created.len() < before {
                                destroyed.push(d.name.clone());
                            }
                        }
                    }
                }
            }
        }
        Members {
            listed,
            created,
            destroyed,
        }
    }

    /// How many droplets the group has now.
    pub fn count(&self) -> u32 {
        (self.listed.len() + self.created.len()) as u32
    }

    /// Every member: the scrape's, then those created since.
    pub fn all(&self) -> Vec<&ScrapedDroplet> {
        self.listed
            .iter()
            .copied()
            .chain(self.created.iter())
            .collect()
    }

    /// Names created / destroyed by apply after the scrape (empty when the scrape is the
    /// latest word).
    pub fn changed_since_scrape(&self) -> Option<(Vec<&str>, Vec<&str>)> {
        if self.created.is_empty() && self.destroyed.is_empty() {
            return None;
        }
        Some((
            self.created.iter().map(|d| d.name.as_str()).collect(),
            self.destroyed.iter().map(String::as_str).collect(),
        ))
    }
}
