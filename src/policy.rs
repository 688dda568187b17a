//! Policy evaluation (pure): who is evaluated (DESIGN.md §3.1–3.3), every condition per
//! droplet and over the group, each policy's verdict, the `min_reporting` rule and the
//! target-tracking recommendation.
//!
//! STUB: the data types are the contract; `evaluate_group` is replaced by the real one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Group, Match, Scale};
use crate::state::Scrape;

/// The evaluation of one group (stored in state, printed by `evaluate --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupEvaluation {
    pub name: String,
    /// Time of the scrape this evaluates.
    pub at: DateTime<Utc>,
    /// Droplets that count toward the group's size (`new` and `active`).
    pub size: u32,
    /// Droplets evaluated: active, out of warmup, scraped successfully.
    pub evaluated: usize,
    /// Every member, with why it was or was not evaluated.
    pub droplets: Vec<DropletStatus>,
    pub reporting: Reporting,
    pub policies: Vec<PolicyEvaluation>,
    pub target: Option<TargetEvaluation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropletStatus {
    pub id: u64,
    pub name: String,
    pub status: String,
    /// Active, out of warmup and scraped successfully.
    pub evaluated: bool,
    /// Why not evaluated: `new`, `warmup (2m of 5m)`, the scrape error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `node_load1` when scraped (for `remove = "least_loaded"` and the table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
}

/// The `min_reporting` rule: a scale-down needs this share of the eligible droplets (active,
/// out of warmup) to have reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reporting {
    pub eligible: usize,
    pub reporting: usize,
    pub required: f64,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyEvaluation {
    pub name: String,
    pub scale: Scale,
    pub step: u32,
    #[serde(rename = "match")]
    pub match_: Match,
    /// The conditions hold (by `match`). `min_reporting` is applied by the planner.
    pub satisfied: bool,
    pub conditions: Vec<ConditionEvaluation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionEvaluation {
    pub name: String,
    pub expr: String,
    pub function: String,
    /// The group aggregate; `null` = no data (never satisfied).
    pub value: Option<f64>,
    pub op: String,
    pub threshold: f64,
    pub satisfied: bool,
    /// Droplet id → its value (`null`: no data for that droplet).
    pub per_droplet: BTreeMap<String, Option<f64>>,
    /// Why there is no value, or why some droplets have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetEvaluation {
    /// The configured target value.
    pub value: f64,
    pub function: String,
    /// The group aggregate, `null` = no data (no recommendation change).
    pub aggregate: Option<f64>,
    /// Droplets the recommendation scales from (evaluated ones).
    pub ready: usize,
    /// Recommended size: `ceil(ready × aggregate / value)`, or the current size inside the
    /// tolerance band or without data.
    pub recommended: u32,
    pub reason: String,
}

/// Evaluates one group on its latest scrape (`cur`) and the one before (`prev`, for rates).
/// `now` decides warmup.
pub fn evaluate_group(
    group: &Group,
    cur: &Scrape,
    _prev: Option<&Scrape>,
    _now: DateTime<Utc>,
) -> GroupEvaluation {
    GroupEvaluation {
        name: group.name.clone(),
        at: cur.at,
        size: 0,
        evaluated: 0,
        droplets: vec![],
        reporting: Reporting {
            eligible: 0,
            reporting: 0,
            required: group.min_reporting,
            ok: false,
        },
        policies: vec![],
        target: None,
    }
}
