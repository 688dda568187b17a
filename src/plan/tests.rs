//! Unit tests for each rule of the planner, and the acceptance scenario of issue C.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::config::Match;
use crate::model::{HistoryDroplet, PendingKind, Scale};
use crate::policy::{
    ConditionEvaluation, Coverage, DropletStatus, PolicyEvaluation, Reporting, TargetEvaluation,
};

pub(super) const TEMPLATE: &str =
    "[group.template]\nname = \"web-{n}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n";

pub(super) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

/// A group `web` from TOML lines (`min`, `max` and any other keys, then tables).
pub(super) fn group(body: &str) -> Group {
    let text = format!("[[group]]\nname = \"web\"\ntag = \"web\"\n{body}");
    crate::config::parse(Path::new("/t.toml"), &text, &Default::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .groups
        .remove(0)
}

pub(super) fn droplet(id: u64, status: &str) -> ScrapedDroplet {
    ScrapedDroplet {
        id,
        name: format!("web-{id}").into(),
        status: status.into(),
        // Higher ids are newer.
        created_at: now() - Duration::hours(100) + Duration::minutes(id as i64),
        address: None,
        error: None,
        protected: false,
        series: Default::default(),
    }
}

pub(super) fn active(n: u64) -> Vec<ScrapedDroplet> {
    (1..=n).map(|i| droplet(i, "active")).collect()
}

pub(super) fn policy(
    name: &str,
    scale: Scale,
    step: u32,
    satisfied: bool,
    value: Option<f64>,
    op: &str,
    threshold: f64,
) -> PolicyEvaluation {
    PolicyEvaluation {
        name: name.into(),
        scale,
        step,
        match_: Match::All,
        satisfied,
        conditions: vec![ConditionEvaluation {
            name: "cpu".into(),
            expr: "cpu".into(),
            function: "mean".into(),
            value,
            op: op.into(),
            threshold,
            satisfied,
            per_droplet: Default::default(),
            no_data: if value.is_none() {
                Some("no droplet evaluated".into())
            } else {
                None
            },
            coverage: full(),
        }],
    }
}

pub(super) fn hot(step: u32, on: bool) -> PolicyEvaluation {
    policy(
        "hot",
        Scale::Up,
        step,
        on,
        Some(if on { 0.91 } else { 0.21 }),
        ">",
        0.8,
    )
}

pub(super) fn cold(step: u32, on: bool) -> PolicyEvaluation {
    policy(
        "cold",
        Scale::Down,
        step,
        on,
        Some(if on { 0.12 } else { 0.55 }),
        "<",
        0.3,
    )
}

pub(super) fn target(recommended: u32, aggregate: Option<f64>) -> TargetEvaluation {
    TargetEvaluation {
        value: 0.6,
        function: "mean".into(),
        aggregate,
        ready: 3,
        recommended,
        reason: "test".into(),
        coverage: full(),
    }
}

/// Every eligible droplet has a value.
pub(super) fn full() -> Coverage {
    Coverage {
        eligible: 3,
        with_value: 3,
        ok: true,
        missing: vec![],
    }
}

pub(super) fn eval(members: &[ScrapedDroplet], policies: Vec<PolicyEvaluation>) -> GroupEvaluation {
    let live = members.iter().filter(|d| is_live(d)).count();
    GroupEvaluation {
        name: "web".into(),
        at: now(),
        size: live as u32,
        evaluated: live,
        droplets: members
            .iter()
            .map(|d| DropletStatus {
                id: d.id,
                name: d.name.clone(),
                status: d.status.clone(),
                evaluated: true,
                reason: None,
                load1: None,
            })
            .collect(),
        reporting: Reporting {
            eligible: live,
            reporting: live,
            required: 1.0,
            ok: true,
        },
        policies,
        target: None,
    }
}

pub(super) fn history(ago_secs: i64, direction: Scale, outcome: &str) -> HistoryEntry {
    HistoryEntry {
        at: now() - Duration::seconds(ago_secs),
        direction,
        droplets: vec![],
        reason: "test".into(),
        outcome: outcome.into(),
        finished_at: None,
    }
}

pub(super) fn pending_op(kind: PendingKind, name: &str, id: Option<u64>) -> PendingOp {
    PendingOp {
        kind,
        name: name.into(),
        id,
        since: now() - Duration::seconds(30),
        stage: "requested".into(),
        unseen: None,
    }
}

/// Everything a plan is made from, owned.
pub(super) struct Fx {
    pub group: Group,
    pub eval: GroupEvaluation,
    pub members: Vec<ScrapedDroplet>,
    pub history: Vec<HistoryEntry>,
    pub pending: Vec<PendingOp>,
    pub recs: Vec<Recommendation>,
    pub paused: Option<Paused>,
    pub manual: Option<ManualSize>,
    pub rand: u64,
}

impl Fx {
    pub fn new(body: &str, members: Vec<ScrapedDroplet>, policies: Vec<PolicyEvaluation>) -> Fx {
        Fx {
            group: group(body),
            eval: eval(&members, policies),
            members,
            history: vec![],
            pending: vec![],
            recs: vec![],
            paused: None,
            manual: None,
            rand: 1,
        }
    }

    pub fn input(&self) -> PlanInput<'_> {
        PlanInput {
            group: &self.group,
            eval: &self.eval,
            members: &self.members,
            history: &self.history,
            pending: &self.pending,
            recommendations: &self.recs,
            operator: Operator {
                paused: self.paused.as_ref(),
                manual: self.manual.as_ref(),
            },
            consistency: Default::default(),
            now: now(),
            rand: self.rand,
        }
    }

    pub fn plan(&self) -> GroupPlan {
        plan_group(&self.input())
    }
}

fn has(p: &GroupPlan, rule: &str) -> bool {
    p.reasons.iter().any(|r| r.starts_with(&format!("{rule}:")))
}

fn reason<'a>(p: &'a GroupPlan, rule: &str) -> &'a str {
    p.reasons
        .iter()
        .find(|r| r.starts_with(&format!("{rule}:")))
        .unwrap_or_else(|| panic!("no {rule} reason in {:#?}", p.reasons))
}

fn ids(p: &GroupPlan) -> Vec<u64> {
    p.destroy.iter().map(|d| d.id).collect()
}

fn check_consistent(p: &GroupPlan) {
    assert_eq!(
        p.desired + p.destroy.len() as u32,
        p.current + p.create.len() as u32,
        "{p:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// The acceptance scenario (c-plan-apply.py).

fn acceptance(max: u32, cooldown_up: &str) -> String {
    format!(
        "min = 2\nmax = {max}\ncooldown_up = \"{cooldown_up}\"\ncooldown_down = \"0s\"\nmax_step_up = 2\nmax_step_down = 5\nwarmup = \"0s\"\n\
         [group.template]\nname = \"acceptance-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\ntags = [\"web\"]\n"
    )
}

#[test]
fn acceptance_hot_at_three_grows_to_five_with_two_names() {
    let f = Fx::new(
        &acceptance(8, "1h"),
        active(3),
        vec![hot(2, true), cold(5, false)],
    );
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.recommended), (3, 5, 5));
    assert_eq!(p.create, vec!["acceptance-1", "acceptance-2"]);
    assert!(p.destroy.is_empty());
    assert!(p.changes());
    check_consistent(&p);
}

#[test]
fn acceptance_hot_again_inside_cooldown_up_stays() {
    let mut f = Fx::new(
        &acceptance(8, "1h"),
        active(5),
        vec![hot(2, true), cold(5, false)],
    );
    f.history.push(history(252, Scale::Up, "done"));
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.recommended), (5, 5, 7));
    assert!(p.create.is_empty() && !p.changes());
    assert_eq!(
        reason(&p, "cooldown_up"),
        "cooldown_up: last scale action (up) 4m12s ago < 1h (wanted 7, stays 5)"
    );
}

#[test]
fn acceptance_cold_at_five_shrinks_to_min_two() {
    let mut f = Fx::new(
        &acceptance(8, "1h"),
        active(5),
        vec![hot(2, false), cold(5, true)],
    );
    f.history.push(history(600, Scale::Up, "done"));
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.recommended), (5, 2, 0));
    // Newest first: ids 5, 4, 3.
    assert_eq!(ids(&p), vec![5, 4, 3]);
    assert!(p.destroy[0].why.starts_with("newest"), "{:?}", p.destroy[0]);
    assert_eq!(reason(&p, "min"), "min: 0 raised to min 2");
    check_consistent(&p);
}

#[test]
fn acceptance_cold_at_min_destroys_nothing() {
    let f = Fx::new(
        &acceptance(8, "1h"),
        active(2),
        vec![hot(2, false), cold(5, true)],
    );
    let p = f.plan();
    assert_eq!((p.current, p.desired), (2, 2));
    assert!(p.destroy.is_empty());
    assert_eq!(reason(&p, "min"), "min: already at min 2 (recommended 0)");
}

#[test]
fn acceptance_hot_with_max_three_grows_to_max_then_holds() {
    let f = Fx::new(
        &acceptance(3, "0s"),
        active(2),
        vec![hot(2, true), cold(5, false)],
    );
    let p = f.plan();
    assert_eq!((p.desired, p.create.len()), (3, 1));
    assert_eq!(reason(&p, "max"), "max: 4 capped at max 3");

    let mut f = Fx::new(
        &acceptance(3, "0s"),
        active(3),
        vec![hot(2, true), cold(5, false)],
    );
    f.history.push(history(5, Scale::Up, "done"));
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert!(p.create.is_empty());
    assert_eq!(reason(&p, "max"), "max: already at max 3 (recommended 5)");
}

// ---------------------------------------------------------------------------------------
// Rule 0: the raw recommendation.

const PLAIN: &str =
    "min = 0\nmax = 20\ncooldown_up = \"0s\"\ncooldown_down = \"0s\"\nmax_step_down = 20\n";

fn plain() -> String {
    format!("{PLAIN}{TEMPLATE}")
}

#[test]
fn plan_largest_up_step_wins() {
    let f = Fx::new(
        &plain(),
        active(3),
        vec![
            hot(1, true),
            policy("mem", Scale::Up, 3, true, Some(1.0), "<=", 2.0),
        ],
    );
    let p = f.plan();
    assert_eq!((p.recommended, p.desired), (6, 6));
    assert!(
        reason(&p, "largest step").contains("mem (+3)"),
        "{:?}",
        p.reasons
    );
}

#[test]
fn plan_scale_up_beats_scale_down() {
    let f = Fx::new(&plain(), active(3), vec![hot(1, true), cold(2, true)]);
    let p = f.plan();
    assert_eq!(p.recommended, 4);
    assert!(reason(&p, "scale-up beats scale-down").contains("cold (-2)"));
}

#[test]
fn plan_largest_down_step_wins() {
    let f = Fx::new(
        &plain(),
        active(5),
        vec![
            cold(1, true),
            policy("idle", Scale::Down, 3, true, Some(0.0), "==", 0.0),
        ],
    );
    let p = f.plan();
    assert_eq!((p.recommended, p.desired), (2, 2));
    assert!(has(&p, "largest step"));
}

#[test]
fn plan_no_policy_satisfied_explains_every_verdict() {
    let f = Fx::new(&plain(), active(3), vec![hot(2, false), cold(1, false)]);
    let p = f.plan();
    assert_eq!((p.recommended, p.desired), (3, 3));
    assert!(!p.changes());
    assert_eq!(
        p.reasons,
        vec!["no policy satisfied: hot (cpu 0.21 > 0.8 false); cold (cpu 0.55 < 0.3 false)"]
    );
}

#[test]
fn plan_policy_lines_when_some_policy_fires() {
    let f = Fx::new(&plain(), active(3), vec![hot(2, true), cold(1, false)]);
    let p = f.plan();
    assert!(
        p.reasons
            .contains(&"policy: hot (+2) satisfied (all of cpu 0.91 > 0.8 true)".to_string()),
        "{:#?}",
        p.reasons
    );
    assert!(p
        .reasons
        .contains(&"policy: cold (-1) not satisfied (all of cpu 0.55 < 0.3 false)".to_string()));
}

#[test]
fn plan_no_data_condition_is_shown() {
    let f = Fx::new(
        &plain(),
        active(3),
        vec![policy("hot", Scale::Up, 1, false, None, ">", 0.8)],
    );
    let p = f.plan();
    assert!(
        p.reasons[0].contains("cpu no data (no droplet evaluated) false"),
        "{:?}",
        p.reasons
    );
}

#[test]
fn plan_no_policies_no_target_says_so() {
    let f = Fx::new(&plain(), active(3), vec![]);
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert!(
        p.reasons[0].starts_with("no policy or target"),
        "{:?}",
        p.reasons
    );
}

#[test]
fn plan_target_alone_decides_even_downward() {
    let mut f = Fx::new(&plain(), active(5), vec![hot(1, false)]);
    f.eval.target = Some(target(3, Some(0.3)));
    let p = f.plan();
    assert_eq!((p.recommended, p.desired), (3, 3));
    assert_eq!(
        p.recommendation,
        Some(Recommendation {
            at: now(),
            desired: 3
        })
    );
    assert!(has(&p, "target"));
}

#[test]
fn plan_target_and_scale_down_the_larger_wins() {
    let mut f = Fx::new(&plain(), active(5), vec![cold(3, true)]);
    f.eval.target = Some(target(4, Some(0.5)));
    let p = f.plan();
    assert_eq!(p.recommended, 4);
    assert!(
        p.reasons.iter().any(|r| r.contains("the larger (4) wins")),
        "{:#?}",
        p.reasons
    );
}

#[test]
fn plan_target_above_step_up_wins() {
    let mut f = Fx::new(&plain(), active(3), vec![hot(1, true)]);
    f.eval.target = Some(target(7, Some(1.4)));
    assert_eq!(f.plan().recommended, 7);
    f.eval.target = Some(target(2, Some(0.4)));
    assert_eq!(f.plan().recommended, 4);
}

#[test]
fn plan_target_without_data_has_no_opinion() {
    let mut f = Fx::new(&plain(), active(5), vec![cold(2, true)]);
    f.eval.target = Some(target(5, None));
    let p = f.plan();
    assert_eq!(p.recommended, 3);
    assert_eq!(p.recommendation, None);
    assert!(reason(&p, "target").contains("no data"));
}

// ---------------------------------------------------------------------------------------
// Rule 1: stabilization.

fn with_target(window: &str) -> String {
    format!("{PLAIN}{TEMPLATE}[group.target]\nexpr = \"cpu_x\"\nvalue = 0.6\nstabilization_down = \"{window}\"\n")
}

#[test]
fn plan_stabilization_holds_to_the_highest_recent_recommendation() {
    let mut f = Fx::new(&with_target("5m"), active(6), vec![]);
    f.eval.target = Some(target(2, Some(0.2)));
    f.recs = vec![
        Recommendation {
            at: now() - Duration::minutes(10),
            desired: 6,
        }, // outside the window
        Recommendation {
            at: now() - Duration::minutes(4),
            desired: 4,
        },
        Recommendation {
            at: now() - Duration::minutes(1),
            desired: 3,
        },
    ];
    let p = f.plan();
    assert_eq!((p.recommended, p.desired), (2, 4));
    assert_eq!(ids(&p), vec![6, 5]);
    assert!(
        reason(&p, "stabilization").contains("last 5m (4, now 2)"),
        "{:?}",
        p.reasons
    );
    assert_eq!(p.recommendation.unwrap().desired, 2);
}

#[test]
fn plan_stabilization_never_raises_above_current() {
    let mut f = Fx::new(&with_target("5m"), active(4), vec![]);
    f.eval.target = Some(target(2, Some(0.2)));
    f.recs = vec![Recommendation {
        at: now() - Duration::minutes(1),
        desired: 9,
    }];
    let p = f.plan();
    assert_eq!(p.desired, 4);
    assert!(has(&p, "stabilization"));
}

#[test]
fn plan_stabilization_zero_window_is_the_current_recommendation() {
    let mut f = Fx::new(&with_target("0s"), active(6), vec![]);
    f.eval.target = Some(target(2, Some(0.2)));
    f.recs = vec![Recommendation {
        at: now() - Duration::minutes(1),
        desired: 6,
    }];
    let p = f.plan();
    assert_eq!(p.desired, 2);
    assert!(!has(&p, "stabilization"));
}

// ---------------------------------------------------------------------------------------
// Rule 2: bounds (see also the acceptance tests).

#[test]
fn plan_bounds_cap_and_raise() {
    let body = format!("min = 2\nmax = 6\nmax_step_down = 9\ncooldown_down = \"0s\"\ncooldown_up = \"0s\"\n{TEMPLATE}");
    let p = Fx::new(&body, active(5), vec![hot(4, true)]).plan();
    assert_eq!((p.recommended, p.desired), (9, 6));
    assert_eq!(reason(&p, "max"), "max: 9 capped at max 6");
    let p = Fx::new(&body, active(4), vec![cold(4, true)]).plan();
    assert_eq!((p.recommended, p.desired), (0, 2));
    assert_eq!(reason(&p, "min"), "min: 0 raised to min 2");
}

// ---------------------------------------------------------------------------------------
// Rule 3: min_reporting.

#[test]
fn plan_min_reporting_blocks_scale_down_only() {
    let mut f = Fx::new(&plain(), active(5), vec![cold(1, true)]);
    f.eval.reporting = Reporting {
        eligible: 5,
        reporting: 3,
        required: 1.0,
        ok: false,
    };
    let p = f.plan();
    assert_eq!(p.desired, 5);
    assert!(p.destroy.is_empty());
    assert_eq!(
        reason(&p, "min_reporting"),
        "min_reporting: 3 of 5 eligible droplets reported (60% < 100%): partial data never shrinks a group (wanted 4)"
    );
    // Scale-up on partial data is allowed.
    f.eval.policies = vec![hot(1, true)];
    let p = f.plan();
    assert_eq!(p.desired, 6);
    assert!(!has(&p, "min_reporting"));
}

// ---------------------------------------------------------------------------------------
// Rule 4: cooldowns.

fn cooled() -> String {
    format!("min = 0\nmax = 20\ncooldown_up = \"3m\"\ncooldown_down = \"10m\"\n{TEMPLATE}")
}

#[test]
fn plan_cooldown_up_after_any_action() {
    let mut f = Fx::new(&cooled(), active(3), vec![hot(1, true)]);
    f.history.push(history(120, Scale::Down, "done"));
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert_eq!(
        reason(&p, "cooldown_up"),
        "cooldown_up: last scale action (down) 2m ago < 3m (wanted 4, stays 3)"
    );
    f.history[0].at = now() - Duration::seconds(180);
    assert_eq!(f.plan().desired, 4);
}

#[test]
fn plan_cooldown_down_counts_failed_actions_too() {
    let mut f = Fx::new(&cooled(), active(3), vec![cold(1, true)]);
    f.history
        .push(history(300, Scale::Up, "failed: create errored"));
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert!(
        reason(&p, "cooldown_down").contains("(up) 5m ago < 10m"),
        "{:?}",
        p.reasons
    );
    f.history[0].at = now() - Duration::seconds(601);
    assert_eq!(f.plan().desired, 2);
}

#[test]
fn plan_cooldown_uses_the_latest_action_by_time_not_position() {
    let mut f = Fx::new(&cooled(), active(3), vec![cold(1, true)]);
    f.history = vec![
        history(60, Scale::Up, "done"),
        history(3600, Scale::Down, "done"),
    ];
    assert!(has(&f.plan(), "cooldown_down"));
}

#[test]
fn plan_cooldown_future_entry_counts_as_just_now() {
    let mut f = Fx::new(&cooled(), active(3), vec![hot(1, true)]);
    f.history.push(history(-60, Scale::Up, "done"));
    assert!(reason(&f.plan(), "cooldown_up").contains("0s ago"));
}

// ---------------------------------------------------------------------------------------
// Rule 5: pending.

#[test]
fn plan_pending_blocks_new_scale_actions() {
    let mut f = Fx::new(&plain(), active(3), vec![hot(1, true)]);
    f.pending = vec![
        pending_op(PendingKind::Create, "web-7", None),
        pending_op(PendingKind::Create, "web-8", None),
    ];
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert_eq!(
        reason(&p, "pending"),
        "pending: 2 droplets created, not yet healthy: no new scale action until they finish (wanted 4, stays 3)"
    );
    // Nothing wanted: nothing to explain.
    f.eval.policies = vec![hot(1, false)];
    assert!(!has(&f.plan(), "pending"));
}

#[test]
fn plan_pending_destroy_blocks_scale_down() {
    let mut f = Fx::new(&plain(), active(3), vec![cold(1, true)]);
    f.pending = vec![pending_op(PendingKind::Destroy, "web-1", Some(1))];
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert!(reason(&p, "pending").contains("1 destroy sent, not yet gone"));
}

// ---------------------------------------------------------------------------------------
// Rule 6: step limits.

#[test]
fn plan_max_step_up_and_down() {
    let body = format!("min = 0\nmax = 20\ncooldown_up = \"0s\"\ncooldown_down = \"0s\"\nmax_step_up = 2\nmax_step_down = 1\n{TEMPLATE}");
    let p = Fx::new(&body, active(3), vec![hot(5, true)]).plan();
    assert_eq!((p.desired, p.create.len()), (5, 2));
    assert_eq!(
        reason(&p, "max_step_up"),
        "max_step_up: 8 wanted (+5), at most +2 per pass: 5"
    );
    let p = Fx::new(&body, active(6), vec![cold(4, true)]).plan();
    assert_eq!((p.desired, p.destroy.len()), (5, 1));
    assert_eq!(
        reason(&p, "max_step_down"),
        "max_step_down: 2 wanted (-4), at most -1 per pass: 5"
    );
}

#[test]
fn plan_max_step_up_defaults_to_no_limit() {
    let p = Fx::new(&plain(), active(1), vec![hot(10, true)]).plan();
    assert_eq!(p.desired, 11);
    assert!(!has(&p, "max_step_up"));
}

// ---------------------------------------------------------------------------------------
// Rule 7: no template.

#[test]
fn plan_no_template_cannot_grow_but_can_shrink() {
    let p = Fx::new(PLAIN, active(3), vec![hot(2, true)]).plan();
    assert_eq!(p.desired, 3);
    assert!(p.create.is_empty());
    assert!(reason(&p, "no template").contains("cannot grow"));
    let p = Fx::new(PLAIN, active(3), vec![cold(2, true)]).plan();
    assert_eq!((p.desired, p.destroy.len()), (1, 2));
}

// ---------------------------------------------------------------------------------------
// Rule 8: repair.

fn strict() -> String {
    format!("min = 3\nmax = 5\ncooldown_up = \"1h\"\ncooldown_down = \"1h\"\nmax_step_up = 1\nmax_step_down = 1\n{TEMPLATE}")
}

#[test]
fn plan_repair_below_min_ignores_metrics_cooldown_and_step() {
    let mut f = Fx::new(&strict(), active(1), vec![cold(1, true)]);
    f.history.push(history(10, Scale::Down, "done"));
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.create.len()), (1, 3, 2));
    assert!(reason(&p, "repair")
        .contains("creating 2 regardless of metrics and cooldown, not limited by max_step_up"));
    assert_eq!(
        reason(&p, "min"),
        "min: the group is below min 3 (1): no scale-down"
    );
    assert!(p.destroy.is_empty());
}

#[test]
fn plan_repair_counts_pending_creates() {
    let mut f = Fx::new(&strict(), active(1), vec![]);
    f.pending = vec![pending_op(PendingKind::Create, "web-9", None)];
    let p = f.plan();
    assert_eq!((p.desired, p.create.len()), (2, 1));
    assert!(
        reason(&p, "repair").contains("1 create on its way (pending) already counts"),
        "{:?}",
        p.reasons
    );
    // The pending name is taken.
    assert!(!p.create.contains(&"web-9".to_string()));
    // A pending create whose droplet is already listed counts once, as a member.
    let mut f = Fx::new(
        &strict(),
        vec![droplet(1, "active"), droplet(2, "new")],
        vec![],
    );
    f.pending = vec![pending_op(PendingKind::Create, "web-2", Some(2))];
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.create.len()), (2, 3, 1));
    // Fully covered: nothing more.
    let mut f = Fx::new(&strict(), active(1), vec![]);
    f.pending = vec![
        pending_op(PendingKind::Create, "web-8", None),
        pending_op(PendingKind::Create, "web-9", None),
    ];
    let p = f.plan();
    assert_eq!((p.desired, p.create.len()), (1, 0));
    assert!(reason(&p, "repair").contains("already covered"));
}

// ---------------------------------------------------------------------------------------
// Rule 9: a create whose outcome is unknown blocks every create, repair included.

#[test]
fn plan_unknown_create_outcome_blocks_creates_until_resolved() {
    let mut f = Fx::new(&strict(), active(1), vec![hot(1, true)]);
    let mut op = pending_op(PendingKind::Create, "web-7", None);
    op.since = now() - Duration::seconds(40);
    op.unseen = Some(crate::model::Unseen {
        listings: 1,
        first: now() - Duration::seconds(5),
        last: now() - Duration::seconds(5),
    });
    f.pending = vec![op];
    let p = f.plan();
    assert_eq!(
        (p.current, p.desired, p.create.len()),
        (1, 1, 0),
        "{:?}",
        p.reasons
    );
    assert_eq!(
        reason(&p, "unknown"),
        "unknown: create of web-7 outcome unknown (missed 1 of 3 listings, since 40s): no new create until resolved (wanted 2, stays 1)"
    );
    // Not yet looked for (no listing missed it): it counts as on its way, repair goes on.
    f.pending[0].unseen = None;
    let p = f.plan();
    assert_eq!((p.desired, p.create.len()), (2, 1));
    assert!(!has(&p, "unknown"));
    // A scale-down is not held by it (the pending rule holds it, as any pending operation).
    let mut f = Fx::new(&strict(), active(5), vec![cold(1, true)]);
    f.pending = vec![pending_op(PendingKind::Create, "web-7", None)];
    f.pending[0].unseen = Some(crate::model::Unseen {
        listings: 2,
        first: now(),
        last: now(),
    });
    assert!(!has(&f.plan(), "unknown"));
}

#[test]
fn plan_repair_below_min_allows_growth_beyond_min_by_the_rules() {
    let body = format!("min = 3\nmax = 10\ncooldown_up = \"0s\"\n{TEMPLATE}");
    let p = Fx::new(&body, active(1), vec![hot(4, true)]).plan();
    assert_eq!(p.desired, 5);
}

#[test]
fn plan_repair_without_template_says_it_cannot() {
    let p = Fx::new("min = 3\nmax = 5\n", active(1), vec![]).plan();
    assert_eq!((p.desired, p.create.len()), (1, 0));
    assert!(reason(&p, "no template").contains("repair cannot create"));
}

#[test]
fn plan_repair_above_max_ignores_cooldown_and_min_reporting_not_max_step_down() {
    let mut f = Fx::new(&strict(), active(8), vec![hot(1, true)]);
    f.history.push(history(10, Scale::Up, "done"));
    f.eval.reporting.ok = false;
    // max_step_down = 1: one a pass, whatever the surplus (issue 14.10).
    let p = f.plan();
    assert_eq!((p.desired, ids(&p)), (7, vec![8]), "{:?}", p.reasons);
    assert_eq!(
        reason(&p, "repair"),
        "repair: 3 droplets above max 5 (8): destroying 1 regardless of metrics and cooldown, at most max_step_down 1 per pass (2 more to go after this pass)"
    );
    assert_eq!(
        reason(&p, "max"),
        "max: the group is above max 5 (8): no scale-up"
    );
    // A step as large as the surplus repairs it in one pass.
    f.group = group(&strict().replace("max_step_down = 1", "max_step_down = 3"));
    let p = f.plan();
    assert_eq!((p.desired, ids(&p)), (5, vec![8, 7, 6]));
    assert_eq!(
        reason(&p, "repair"),
        "repair: 3 droplets above max 5 (8): destroying 3 regardless of metrics and cooldown"
    );
    assert!(!has(&p, "guard"), "3 of 8 is within half: {:?}", p.reasons);
}

/// Issue 14.10: a do-scaler fleet of 200 whose imported config says max = 8 loses one
/// droplet a pass with the default max_step_down, not 192 at once.
#[test]
fn plan_migration_trap_a_fleet_far_above_max_shrinks_by_the_step() {
    let body = format!("min = 1\nmax = 8\n{TEMPLATE}");
    let p = Fx::new(&body, active(200), vec![]).plan();
    assert_eq!((p.current, p.desired, p.destroy.len()), (200, 199, 1));
    assert!(
        reason(&p, "repair").contains("191 more to go"),
        "{:?}",
        p.reasons
    );
    assert!(!has(&p, "guard"));
}

#[test]
fn plan_guard_marks_a_plan_destroying_more_than_max_destroy_share() {
    // max_step_down 10 lets repair take 6 of 8: more than half.
    let body = format!("min = 0\nmax = 2\nmax_step_down = 10\n{TEMPLATE}");
    let p = Fx::new(&body, active(8), vec![]).plan();
    assert_eq!(p.destroy.len(), 6);
    assert_eq!(
        reason(&p, "guard"),
        "guard: 6 of 8 droplets to destroy in one pass is more than max_destroy_share 50% allows (4): apply refuses this plan unless --force"
    );
    // A share that allows it: no mark.
    let body =
        format!("min = 0\nmax = 2\nmax_step_down = 10\nmax_destroy_share = 0.75\n{TEMPLATE}");
    let p = Fx::new(&body, active(8), vec![]).plan();
    assert_eq!(p.destroy.len(), 6);
    assert!(!has(&p, "guard"), "{:?}", p.reasons);
}

#[test]
fn destroy_allowed_rounds_up_to_a_whole_droplet() {
    use super::destroy_allowed;
    assert_eq!(destroy_allowed(0, 0.5), 1);
    assert_eq!(destroy_allowed(1, 0.5), 1);
    assert_eq!(destroy_allowed(2, 0.5), 1);
    assert_eq!(destroy_allowed(3, 0.5), 2);
    assert_eq!(destroy_allowed(4, 0.5), 2);
    assert_eq!(destroy_allowed(5, 0.5), 3);
    assert_eq!(destroy_allowed(200, 0.5), 100);
    assert_eq!(destroy_allowed(201, 0.5), 101);
    assert_eq!(destroy_allowed(3, 1.0), 3);
    assert_eq!(destroy_allowed(10, 0.01), 1);
}

#[test]
fn plan_repair_above_max_counts_pending_destroys() {
    let mut f = Fx::new(&strict(), active(7), vec![]);
    f.pending = vec![pending_op(PendingKind::Destroy, "web-7", Some(7))];
    let p = f.plan();
    // 2 over, 1 already on its way: one more, and never the one already going.
    assert_eq!((p.desired, ids(&p)), (6, vec![6]));
    check_consistent(&p);
}

#[test]
fn plan_repair_above_max_limited_by_protected() {
    let mut members = active(7);
    for d in members.iter_mut().skip(1) {
        d.protected = true;
    }
    let mut f = Fx::new(
        &format!(
            "{}protect_tag = \"keep\"\n",
            "min = 3\nmax = 5\nmax_step_down = 2\n"
        ),
        members,
        vec![],
    );
    f.group = group("min = 3\nmax = 5\nmax_step_down = 2\nprotect_tag = \"keep\"\n");
    let p = f.plan();
    assert_eq!((p.desired, ids(&p)), (6, vec![1]));
    assert_eq!(
        reason(&p, "protected"),
        "protected: only 1 of the 2 droplets to remove may be destroyed (6 carry the protect tag \"keep\"): desired 6 instead of 5"
    );
}

// ---------------------------------------------------------------------------------------
// Which droplets go.

#[test]
fn plan_destroy_failed_first_then_by_remove() {
    let mut members = active(5);
    members[1].error = Some("connection refused".into());
    let f = Fx::new(&plain(), members.clone(), vec![cold(2, true)]);
    let p = f.plan();
    assert_eq!(ids(&p), vec![2, 5]);
    assert_eq!(p.destroy[0].why, "scrape failed: connection refused");

    let body = format!("{PLAIN}remove = \"oldest\"\n");
    let p = Fx::new(&body, members, vec![cold(2, true)]).plan();
    assert_eq!(ids(&p), vec![2, 1]);
    assert!(p.destroy[1].why.starts_with("oldest (created "));
}

#[test]
fn plan_destroy_least_loaded_with_missing_values_last() {
    let body = format!("{PLAIN}remove = \"least_loaded\"\n");
    let mut f = Fx::new(&body, active(4), vec![cold(3, true)]);
    let loads = [Some(0.9), None, Some(0.1), Some(0.5)];
    for (d, l) in f.eval.droplets.iter_mut().zip(loads) {
        d.load1 = l;
    }
    let p = f.plan();
    assert_eq!(ids(&p), vec![3, 4, 1]);
    assert_eq!(p.destroy[0].why, "least loaded (load1 0.1)");
}

#[test]
fn plan_new_droplet_with_error_is_not_a_scrape_failure() {
    let mut members = active(3);
    members.push(droplet(4, "new"));
    members[3].error = Some("not scraped: new".into());
    members[0].error = Some("timeout".into());
    let p = Fx::new(&plain(), members, vec![cold(1, true)]).plan();
    assert_eq!(ids(&p), vec![1]);
}

#[test]
fn plan_never_destroys_protected_or_non_members() {
    let mut members = active(4);
    members[3].protected = true;
    members.push(droplet(9, "off"));
    members.push(droplet(10, "archive"));
    let f = Fx::new(&plain(), members, vec![cold(3, true)]);
    let p = f.plan();
    assert_eq!(p.current, 4);
    assert_eq!(ids(&p), vec![3, 2, 1]);
    assert_eq!(p.based_on, vec![1, 2, 3, 4, 9, 10]);
    let f = Fx::new(&plain(), f.members.clone(), vec![cold(4, true)]);
    let p = f.plan();
    assert_eq!((p.desired, ids(&p)), (1, vec![3, 2, 1]));
    assert!(has(&p, "protected"));
    check_consistent(&p);
}

// ---------------------------------------------------------------------------------------
// Names.

#[test]
fn plan_names_avoid_members_pending_and_history() {
    // Below min 5: repair creates even while an operation is pending.
    let body = format!("min = 5\nmax = 20\n{TEMPLATE}");
    let mut f = Fx::new(&body, vec![droplet(1, "active"), droplet(3, "off")], vec![]);
    f.pending = vec![pending_op(PendingKind::Destroy, "web-2", Some(2))];
    f.history.push(HistoryEntry {
        droplets: vec![HistoryDroplet {
            id: Some(4),
            name: "web-4".into(),
            outcome: None,
        }],
        ..history(7200, Scale::Down, "done")
    });
    // A scale-down took web-4 away; the seed's `count + 1` would reuse a name.
    let p = f.plan();
    assert_eq!(p.create, vec!["web-5", "web-6", "web-7", "web-8"]);
}

#[test]
fn plan_is_deterministic_and_rand_names_differ() {
    let body = format!("{PLAIN}[group.template]\nname = \"{{group}}-{{rand}}\"\nregion = \"r\"\nsize = \"s\"\nimage = 1\n");
    let mut f = Fx::new(&body, active(2), vec![hot(3, true)]);
    f.rand = 0xdead_beef;
    let a = f.plan();
    assert_eq!(a, f.plan());
    assert_eq!(a.create.len(), 3);
    let set: BTreeSet<_> = a.create.iter().collect();
    assert_eq!(set.len(), 3);
    assert!(
        a.create
            .iter()
            .all(|n| is_hostname(n) && n.starts_with("web-")),
        "{:?}",
        a.create
    );
}

#[test]
fn plan_names_every_hold_not_only_the_first() {
    let mut f = Fx::new(&acceptance(8, "1h"), active(5), vec![hot(2, true)]);
    f.history.push(history(252, Scale::Up, "done"));
    f.pending = vec![pending_op(PendingKind::Create, "web-9", None)];
    let p = f.plan();
    assert_eq!(p.desired, 5);
    assert!(
        has(&p, "cooldown_up") && has(&p, "pending"),
        "{:#?}",
        p.reasons
    );
    assert!(!has(&p, "max_step_up"));
}
