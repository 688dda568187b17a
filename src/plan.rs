//! Planning (pure): from the evaluation, the config and the history in state, the desired
//! size and the concrete changes, with every rule that moved the recommendation.
//!
//! STUB: the data types are the contract; `plan_group` is replaced by the real one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Group;
use crate::policy::GroupEvaluation;
use crate::state::{HistoryEntry, PendingOp, Recommendation, ScrapedDroplet};

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
    pub now: DateTime<Utc>,
    /// Randomness for `{rand}` in names.
    pub rand: u64,
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

pub fn plan_group(input: &PlanInput<'_>) -> GroupPlan {
    let mut based_on: Vec<u64> = input.members.iter().map(|d| d.id).collect();
    based_on.sort_unstable();
    GroupPlan {
        name: input.group.name.clone(),
        at: input.now,
        current: input.members.len() as u32,
        desired: input.members.len() as u32,
        recommended: input.members.len() as u32,
        create: vec![],
        destroy: vec![],
        reasons: vec![],
        based_on,
        recommendation: None,
    }
}
