//! Unit tests of the operator's hand in the planner (issue 13, point 9): the members apply
//! changed after the scrape, a paused group, a size set by hand.

use chrono::Duration;

use super::tests::{active, cold, history, hot, now, pending_op, Fx, TEMPLATE};
use super::*;
use crate::model::HistoryDroplet;

fn body(extra: &str) -> String {
    format!("min = 2\nmax = 8\ncooldown_up = \"1h\"\ncooldown_down = \"1h\"\nmax_step_up = 1\nmax_step_down = 1\n{extra}{TEMPLATE}")
}

fn reason<'a>(p: &'a GroupPlan, rule: &str) -> &'a str {
    p.reasons
        .iter()
        .find(|r| r.starts_with(&format!("{rule}:")))
        .unwrap_or_else(|| panic!("no {rule} reason in {:#?}", p.reasons))
}

/// A scale action recorded `ago` seconds before `now()` (the scrape is at `now()`; negative:
/// after it), with each droplet's id and outcome.
fn action(ago: i64, direction: Scale, droplets: &[(u64, &str, Option<&str>)]) -> HistoryEntry {
    HistoryEntry {
        at: now() - Duration::seconds(ago),
        direction,
        droplets: droplets
            .iter()
            .map(|&(id, name, outcome)| HistoryDroplet {
                id: Some(id),
                name: name.into(),
                outcome: outcome.map(Into::into),
            })
            .collect(),
        reason: "test".into(),
        outcome: "done".into(),
        finished_at: None,
    }
}

fn paused() -> Paused {
    Paused {
        since: now() - Duration::minutes(5),
        by: Some("alice".into()),
    }
}

fn set(n: u32) -> ManualSize {
    ManualSize {
        desired: n,
        at: now() - Duration::minutes(1),
        by: Some("bob".into()),
    }
}

#[test]
fn members_count_what_apply_created_and_destroyed_after_the_scrape() {
    let scrape = active(3);
    let history = vec![
        // Before the scrape: the scrape already shows its result.
        action(60, Scale::Up, &[(3, "web-3", Some("healthy"))]),
        // After it: two created (one healthy, one on its way), one failed, one destroyed.
        action(
            -5,
            Scale::Up,
            &[
                (11, "web-11", Some("healthy")),
                (12, "web-12", None),
                (13, "web-13", Some("failed: the droplet disappeared")),
            ],
        ),
        action(-4, Scale::Down, &[(1, "web-1", Some("destroyed"))]),
        // A destroy sent, not yet seen through: still a member.
        action(-3, Scale::Down, &[(2, "web-2", None)]),
    ];
    let m = Members::of(&scrape, now(), &history);
    assert_eq!(m.count(), 4);
    let ids: Vec<u64> = m.all().iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![2, 3, 11, 12]);
    let (created, destroyed) = m.changed_since_scrape().unwrap();
    assert_eq!(created, vec!["web-11", "web-12"]);
    assert_eq!(destroyed, vec!["web-1"]);
    // Nothing after the scrape: the scrape is the word.
    let m = Members::of(&scrape, now(), &history[..1]);
    assert_eq!(m.count(), 3);
    assert!(m.changed_since_scrape().is_none());
}

#[test]
fn a_plan_after_apply_without_a_new_scrape_counts_the_new_droplets_and_holds() {
    let mut f = Fx::new(&body(""), active(3), vec![hot(2, true)]);
    f.history.push(action(
        -5,
        Scale::Up,
        &[
            (11, "web-11", Some("healthy")),
            (12, "web-12", Some("healthy")),
        ],
    ));
    let p = f.plan();
    assert_eq!((p.current, p.desired), (5, 5), "{p:#?}");
    assert!(!p.changes());
    let r = reason(&p, "scrape");
    assert!(
        r.contains("created web-11, web-12") && r.contains("doscale scrape"),
        "{r}"
    );
}

#[test]
fn a_paused_group_changes_nothing_and_says_how_to_resume() {
    let mut f = Fx::new(&body(""), active(3), vec![hot(2, true)]);
    f.paused = Some(paused());
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.recommended), (3, 3, 5));
    assert!(!p.changes() && p.paused);
    assert_eq!(
        p.reasons[0],
        "paused: since 2025-06-15T15:01:40Z by alice, `doscale resume web` to resume: nothing is changed (wanted 4, stays 3)"
    );
    // Not even the bounds are repaired.
    let mut f = Fx::new(&body(""), active(1), vec![cold(1, false)]);
    f.paused = Some(paused());
    let p = f.plan();
    assert_eq!((p.current, p.desired), (1, 1));
    assert!(p.create.is_empty());
    // Nor is a size set by hand carried out (and so not consumed).
    let mut f = Fx::new(&body(""), active(3), vec![]);
    f.paused = Some(paused());
    f.manual = Some(set(6));
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert_eq!(p.carries_set, None);
}

#[test]
fn a_size_set_by_hand_is_not_held_by_cooldowns_or_step_limits() {
    // Cold policy, inside both cooldowns, max_step_up 1: set 6 still creates 3 at once.
    let mut f = Fx::new(&body(""), active(3), vec![cold(1, true)]);
    f.history.push(history(60, Scale::Down, "done"));
    f.manual = Some(set(6));
    let p = f.plan();
    assert_eq!((p.current, p.desired, p.recommended), (3, 6, 2), "{p:#?}");
    assert_eq!(p.create, vec!["web-4", "web-5", "web-6"]);
    assert!(
        p.reasons[0].starts_with("set: desired 6 by `doscale set` at 2025-06-15T15:05:40Z by bob"),
        "{:?}",
        p.reasons
    );
    assert!(!p.reasons.iter().any(|r| r.starts_with("cooldown")));
    assert!(!p.reasons.iter().any(|r| r.starts_with("max_step_up")));
    assert_eq!(p.carries_set, Some(set(6).at));

    // Down, on partial data and through max_step_down 1: 5 → 2 at once.
    let mut f = Fx::new(&body(""), active(5), vec![hot(1, true)]);
    f.eval.reporting.ok = false;
    f.eval.reporting.reporting = 3;
    f.manual = Some(set(2));
    let p = f.plan();
    assert_eq!((p.current, p.desired), (5, 2), "{p:#?}");
    assert_eq!(p.destroy.len(), 3);
    assert!(!p.reasons.iter().any(|r| r.starts_with("min_reporting")));
}

#[test]
fn a_size_set_by_hand_waits_for_pending_operations_and_is_not_consumed_meanwhile() {
    let mut f = Fx::new(&body(""), active(3), vec![]);
    f.pending
        .push(pending_op(PendingKind::Create, "web-9", Some(9)));
    f.manual = Some(set(6));
    let p = f.plan();
    assert_eq!((p.current, p.desired), (3, 3));
    assert!(reason(&p, "pending").contains("wanted 6"), "{p:#?}");
    assert_eq!(p.carries_set, None);
}

#[test]
fn a_size_set_by_hand_stays_within_bounds_changed_since() {
    // Set to 8 under max 8; the config now says max 5.
    let mut f = Fx::new(&body("").replace("max = 8", "max = 5"), active(3), vec![]);
    f.manual = Some(set(8));
    let p = f.plan();
    assert_eq!(p.desired, 5, "{p:#?}");
    assert!(reason(&p, "max").contains("capped at max 5"));
    // Equal to the current size: nothing to do, and the request is carried out (consumed).
    let mut f = Fx::new(&body(""), active(3), vec![hot(2, true)]);
    f.manual = Some(set(3));
    let p = f.plan();
    assert_eq!(p.desired, 3);
    assert!(!p.changes());
    assert_eq!(p.carries_set, Some(set(3).at));
}
