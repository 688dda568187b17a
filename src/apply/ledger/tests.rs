//! One test per outcome the ledger records: each fails if its rule changes.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

const C: Consistency = Consistency {
    listings: 3,
    window: Duration::from_secs(60),
};

/// A group with the intent to create `n` recorded at t(0).
fn creating(n: &[&str]) -> GroupState {
    let mut gs = GroupState::default();
    intend_create(&mut gs, &names(n), "plan: 1 → 3", t(0));
    gs
}

fn destroying(id: u64, name: &str) -> GroupState {
    let mut gs = GroupState::default();
    intend_destroy(&mut gs, id, name, "plan: 3 → 2", t(0));
    gs
}

fn pending<'a>(gs: &'a GroupState, name: &str) -> Option<&'a PendingOp> {
    gs.pending.iter().find(|p| p.name == name)
}

fn outcome_of(gs: &GroupState, name: &str) -> Option<DropletOutcome> {
    gs.history
        .iter()
        .rev()
        .flat_map(|e| &e.droplets)
        .find(|d| d.name == name)
        .and_then(|d| d.outcome.clone())
}

fn last(gs: &GroupState) -> &HistoryEntry {
    gs.history.last().unwrap()
}

#[test]
fn intent_to_create_records_a_pending_entry_and_one_pending_create_per_name() {
    let gs = creating(&["w-1", "w-2"]);
    assert_eq!(gs.history.len(), 1);
    let e = last(&gs);
    assert_eq!(
        (e.at, e.direction, e.outcome.clone(), e.finished_at),
        (t(0), Scale::Up, ActionOutcome::Pending, None)
    );
    assert_eq!(e.reason, "plan: 1 → 3");
    assert!(e
        .droplets
        .iter()
        .all(|d| d.id.is_none() && d.outcome.is_none()));
    assert_eq!(gs.pending.len(), 2);
    for (p, n) in gs.pending.iter().zip(["w-1", "w-2"]) {
        assert_eq!(
            (
                p.kind.clone(),
                p.name.as_str(),
                p.id,
                p.since,
                p.stage.clone()
            ),
            (PendingKind::Create, n, None, t(0), Stage::Intent)
        );
    }
}

#[test]
fn intent_to_destroy_records_a_pending_entry_and_a_pending_destroy() {
    let gs = destroying(7, "w-7");
    let e = last(&gs);
    assert_eq!(
        (e.direction, e.outcome.clone()),
        (Scale::Down, ActionOutcome::Pending)
    );
    assert_eq!(e.droplets[0].id, Some(7));
    let p = &gs.pending[0];
    assert_eq!(
        (p.kind.clone(), p.id, p.stage.clone(), p.since),
        (PendingKind::Destroy, Some(7), Stage::Intent, t(0))
    );
}

#[test]
fn cancelled_by_a_hook_records_a_finished_entry_and_nothing_pending() {
    let mut gs = GroupState::default();
    cancelled(
        &mut gs,
        Scale::Down,
        &[(Some(7), "w-7".into())],
        "plan: 3 → 2",
        "hook said no",
        t(5),
    );
    assert!(gs.pending.is_empty());
    let e = last(&gs);
    assert_eq!(e.outcome, ActionOutcome::Cancelled("hook said no".into()));
    assert_eq!(e.finished_at, Some(t(5)));
    assert_eq!(
        e.droplets[0].outcome,
        Some(DropletOutcome::Cancelled("hook said no".into()))
    );
    assert_eq!(e.droplets[0].id, Some(7));
}

#[test]
fn created_records_the_id_and_stage_requested() {
    let mut gs = creating(&["w-1", "w-2"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-2".into(),
            id: 42,
        },
        t(1),
    );
    let p = pending(&gs, "w-2").unwrap();
    assert_eq!((p.id, p.stage.clone()), (Some(42), Stage::Requested));
    assert_eq!(pending(&gs, "w-1").unwrap().stage, Stage::Intent);
    assert_eq!(last(&gs).droplets[1].id, Some(42));
    assert_eq!(last(&gs).outcome, ActionOutcome::Pending);
}

#[test]
fn found_after_an_error_clears_the_misses_and_records_the_id() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::NotListed { name: "w-1".into() },
        t(1),
    );
    assert!(pending(&gs, "w-1").unwrap().unseen.is_some());
    create_outcome(
        &mut gs,
        CreateOutcome::FoundAfterError {
            name: "w-1".into(),
            id: 9,
        },
        t(2),
    );
    let p = pending(&gs, "w-1").unwrap();
    assert_eq!(
        (p.id, p.stage.clone(), p.unseen.clone()),
        (Some(9), Stage::Requested, None)
    );
    assert_eq!(last(&gs).droplets[0].id, Some(9));
}

#[test]
fn refused_drops_the_pending_create_and_fails_the_entry() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Refused {
            name: "w-1".into(),
            why: "HTTP 422".into(),
        },
        t(3),
    );
    assert!(gs.pending.is_empty());
    assert_eq!(
        outcome_of(&gs, "w-1"),
        Some(DropletOutcome::Failed("HTTP 422".into()))
    );
    assert_eq!(last(&gs).outcome, ActionOutcome::Failed);
    assert_eq!(last(&gs).finished_at, Some(t(3)));
}

#[test]
fn not_listed_after_an_error_counts_a_miss_and_never_settles_at_once() {
    let mut gs = creating(&["w-1"]);
    // More misses than the window asks for, far apart: right after a request they only count.
    for s in [1, 100, 200, 300] {
        create_outcome(
            &mut gs,
            CreateOutcome::NotListed { name: "w-1".into() },
            t(s),
        );
    }
    let p = pending(&gs, "w-1").unwrap();
    assert_eq!(p.stage, Stage::Unknown);
    assert_eq!(
        p.unseen,
        Some(Unseen {
            listings: 4,
            first: t(1),
            last: t(300)
        })
    );
    assert_eq!(outcome_of(&gs, "w-1"), None);
}

#[test]
fn listing_failed_after_an_error_keeps_it_pending_with_an_unknown_outcome() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::ListingFailed { name: "w-1".into() },
        t(1),
    );
    let p = pending(&gs, "w-1").unwrap();
    assert_eq!(
        (p.stage.clone(), p.id, p.unseen.clone()),
        (Stage::Unknown, None, None)
    );
    assert_eq!(last(&gs).outcome, ActionOutcome::Pending);
}

#[test]
fn vanished_before_active_drops_it_and_fails_the_droplet() {
    let mut gs = creating(&["w-1", "w-2"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 1,
        },
        t(1),
    );
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-2".into(),
            id: 2,
        },
        t(1),
    );
    create_outcome(&mut gs, CreateOutcome::Vanished { id: 1 }, t(4));
    assert!(pending(&gs, "w-1").is_none());
    assert!(pending(&gs, "w-2").is_some());
    assert!(
        matches!(outcome_of(&gs, "w-1"), Some(DropletOutcome::Failed(w)) if w.contains("disappeared before turning active"))
    );
    // One droplet still on its way: the entry is not finished.
    assert_eq!(last(&gs).outcome, ActionOutcome::Pending);
    assert_eq!(last(&gs).finished_at, None);
}

#[test]
fn active_moves_the_stage_on_by_id() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 1,
        },
        t(1),
    );
    create_outcome(&mut gs, CreateOutcome::Active { id: 1 }, t(2));
    assert_eq!(pending(&gs, "w-1").unwrap().stage, Stage::Active);
    assert_eq!(outcome_of(&gs, "w-1"), None);
}

#[test]
fn healthy_and_listed_is_done() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 1,
        },
        t(1),
    );
    create_outcome(
        &mut gs,
        CreateOutcome::Healthy {
            id: 1,
            name: "w-1".into(),
            listed: true,
        },
        t(9),
    );
    assert!(gs.pending.is_empty());
    assert_eq!(outcome_of(&gs, "w-1"), Some(DropletOutcome::Healthy));
    assert_eq!(last(&gs).outcome, ActionOutcome::Done);
    assert_eq!(last(&gs).finished_at, Some(t(9)));
}

#[test]
fn healthy_but_known_only_by_id_stays_pending_until_listed() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 1,
        },
        t(1),
    );
    create_outcome(
        &mut gs,
        CreateOutcome::Healthy {
            id: 1,
            name: "w-1".into(),
            listed: false,
        },
        t(9),
    );
    assert_eq!(pending(&gs, "w-1").unwrap().stage, Stage::Healthy);
    assert_eq!(outcome_of(&gs, "w-1"), Some(DropletOutcome::Healthy));
    assert_eq!(last(&gs).outcome, ActionOutcome::Done);
}

#[test]
fn unhealthy_drops_it_and_one_of_two_failing_makes_the_entry_partial() {
    let mut gs = creating(&["w-1", "w-2"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 1,
        },
        t(1),
    );
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-2".into(),
            id: 2,
        },
        t(1),
    );
    create_outcome(
        &mut gs,
        CreateOutcome::Unhealthy {
            id: 1,
            name: "w-1".into(),
            why: "3 tries: port 80: refused".into(),
        },
        t(5),
    );
    assert!(pending(&gs, "w-1").is_none());
    assert_eq!(
        outcome_of(&gs, "w-1"),
        Some(DropletOutcome::Unhealthy(
            "3 tries: port 80: refused".into()
        ))
    );
    create_outcome(
        &mut gs,
        CreateOutcome::Healthy {
            id: 2,
            name: "w-2".into(),
            listed: true,
        },
        t(6),
    );
    assert_eq!(last(&gs).outcome, ActionOutcome::Partial);
    assert_eq!(last(&gs).finished_at, Some(t(6)));
}

#[test]
fn destroyed_drops_the_pending_destroy_and_finishes_the_entry() {
    let mut gs = destroying(7, "w-7");
    destroy_outcome(&mut gs, 7, DestroyOutcome::Destroyed, t(2));
    assert!(gs.pending.is_empty());
    assert_eq!(outcome_of(&gs, "w-7"), Some(DropletOutcome::Destroyed));
    assert_eq!(last(&gs).outcome, ActionOutcome::Done);
    assert_eq!(last(&gs).finished_at, Some(t(2)));
}

#[test]
fn already_gone_is_a_success_of_its_own() {
    let mut gs = destroying(7, "w-7");
    destroy_outcome(&mut gs, 7, DestroyOutcome::AlreadyGone, t(2));
    assert!(gs.pending.is_empty());
    assert_eq!(outcome_of(&gs, "w-7"), Some(DropletOutcome::AlreadyGone));
    assert_eq!(last(&gs).outcome, ActionOutcome::Done);
}

#[test]
fn destroy_failed_stays_pending_as_requested() {
    let mut gs = destroying(7, "w-7");
    destroy_outcome(&mut gs, 7, DestroyOutcome::Failed, t(2));
    assert_eq!(gs.pending[0].stage, Stage::Requested);
    assert_eq!(outcome_of(&gs, "w-7"), None);
    assert_eq!(last(&gs).outcome, ActionOutcome::Pending);
}

#[test]
fn destroy_no_longer_listed_by_a_later_pass_is_destroyed() {
    let mut gs = destroying(7, "w-7");
    destroy_outcome(&mut gs, 7, DestroyOutcome::NoLongerListed, t(60));
    assert!(gs.pending.is_empty());
    assert_eq!(outcome_of(&gs, "w-7"), Some(DropletOutcome::Destroyed));
}

#[test]
fn destroy_not_resent_is_not_destroyed_and_fails_the_entry() {
    let mut gs = destroying(7, "w-7");
    destroy_outcome(
        &mut gs,
        7,
        DestroyOutcome::NotResent {
            why: "protected".into(),
        },
        t(60),
    );
    assert!(gs.pending.is_empty());
    assert_eq!(
        outcome_of(&gs, "w-7"),
        Some(DropletOutcome::NotDestroyed("protected".into()))
    );
    assert_eq!(last(&gs).outcome, ActionOutcome::Failed);
}

#[test]
fn a_destroy_outcome_touches_only_its_own_droplet() {
    let mut gs = destroying(7, "w-7");
    intend_destroy(&mut gs, 8, "w-8", "plan", t(1));
    destroy_outcome(&mut gs, 8, DestroyOutcome::Destroyed, t(2));
    assert_eq!(gs.pending.len(), 1);
    assert_eq!(gs.pending[0].id, Some(7));
    assert_eq!(outcome_of(&gs, "w-7"), None);
}

// Later passes (reconcile).

fn op(gs: &GroupState, name: &str) -> PendingOp {
    pending(gs, name).unwrap().clone()
}

#[test]
fn reconcile_found_by_name_records_the_id_and_waits() {
    let mut gs = creating(&["w-1"]);
    let p = op(&gs, "w-1");
    let v = reconcile_create(
        &mut gs,
        &p,
        Seen::Listed {
            id: 5,
            active: false,
        },
        t(30),
        C,
    );
    assert_eq!(v, Verdict::Pending);
    let p = pending(&gs, "w-1").unwrap();
    assert_eq!((p.id, p.stage.clone()), (Some(5), Stage::Requested));
    assert_eq!(last(&gs).droplets[0].id, Some(5));
}

#[test]
fn reconcile_looked_up_active_moves_to_active() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 5,
        },
        t(1),
    );
    let p = op(&gs, "w-1");
    let v = reconcile_create(
        &mut gs,
        &p,
        Seen::LookedUp {
            id: 5,
            active: true,
        },
        t(30),
        C,
    );
    assert_eq!(v, Verdict::Pending);
    assert_eq!(pending(&gs, "w-1").unwrap().stage, Stage::Active);
}

#[test]
fn reconcile_never_active_past_the_give_up_age_is_given_up() {
    let give_up = PENDING_GIVE_UP.as_secs() as i64;
    let mut gs = creating(&["w-1"]);
    let p = op(&gs, "w-1");
    // At the limit: still waited for.
    let v = reconcile_create(
        &mut gs,
        &p,
        Seen::Listed {
            id: 5,
            active: false,
        },
        t(give_up),
        C,
    );
    assert_eq!(v, Verdict::Pending);
    let p = op(&gs, "w-1");
    let v = reconcile_create(
        &mut gs,
        &p,
        Seen::Listed {
            id: 5,
            active: false,
        },
        t(give_up + 1),
        C,
    );
    assert_eq!(v, Verdict::NeverActive { id: 5 });
    assert!(gs.pending.is_empty());
    assert_eq!(
        outcome_of(&gs, "w-1"),
        Some(DropletOutcome::Failed("never became active".into()))
    );
    // Active, however old: kept.
    let mut gs = creating(&["w-2"]);
    let p = op(&gs, "w-2");
    let v = reconcile_create(
        &mut gs,
        &p,
        Seen::Listed {
            id: 6,
            active: true,
        },
        t(give_up * 2),
        C,
    );
    assert_eq!(v, Verdict::Pending);
}

#[test]
fn reconcile_gone_by_id_fails_the_droplet() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 5,
        },
        t(1),
    );
    let p = op(&gs, "w-1");
    let v = reconcile_create(&mut gs, &p, Seen::Gone, t(30), C);
    assert_eq!(v, Verdict::Closed);
    assert!(gs.pending.is_empty());
    assert_eq!(
        outcome_of(&gs, "w-1"),
        Some(DropletOutcome::Failed("the droplet disappeared".into()))
    );
}

#[test]
fn reconcile_unseen_is_given_up_only_after_enough_listings_over_the_window() {
    let mut gs = creating(&["w-1"]);
    let step = |gs: &mut GroupState, s: i64| {
        let p = op(gs, "w-1");
        reconcile_create(gs, &p, Seen::NotListed, t(s), C)
    };
    // Three listings within the window: not enough time.
    assert_eq!(step(&mut gs, 10), Verdict::Unknown);
    assert_eq!(step(&mut gs, 20), Verdict::Unknown);
    assert_eq!(step(&mut gs, 30), Verdict::Unknown);
    assert_eq!(
        pending(&gs, "w-1")
            .unwrap()
            .unseen
            .as_ref()
            .unwrap()
            .listings,
        3
    );
    // The window has passed, but that is the fourth listing: settles now.
    assert_eq!(step(&mut gs, 70), Verdict::Closed);
    assert!(gs.pending.is_empty());
    assert!(
        matches!(outcome_of(&gs, "w-1"), Some(DropletOutcome::NotCreated(w)) if w.starts_with("not listed in 3 listings over 1m"))
    );
    assert_eq!(last(&gs).outcome, ActionOutcome::Failed);
}

#[test]
fn reconcile_unseen_over_the_window_in_too_few_listings_is_not_given_up() {
    let mut gs = creating(&["w-1"]);
    for s in [0, 500] {
        let p = op(&gs, "w-1");
        assert_eq!(
            reconcile_create(&mut gs, &p, Seen::NotListed, t(s), C),
            Verdict::Unknown
        );
    }
    assert!(pending(&gs, "w-1").is_some());
}

#[test]
fn settled_needs_both_the_listings_and_the_span() {
    let u = |listings, span| Unseen {
        listings,
        first: t(0),
        last: t(span),
    };
    assert!(settled(&u(3, 60), C));
    assert!(!settled(&u(2, 600), C));
    assert!(!settled(&u(9, 59), C));
}

#[test]
fn reconcile_healthy_waits_only_to_be_listed() {
    let healthy = || {
        let mut gs = creating(&["w-1"]);
        create_outcome(
            &mut gs,
            CreateOutcome::Created {
                name: "w-1".into(),
                id: 5,
            },
            t(1),
        );
        create_outcome(
            &mut gs,
            CreateOutcome::Healthy {
                id: 5,
                name: "w-1".into(),
                listed: false,
            },
            t(2),
        );
        gs
    };
    for (seen, verdict, left) in [
        (
            Seen::Listed {
                id: 5,
                active: true,
            },
            Verdict::Closed,
            0,
        ),
        (Seen::Gone, Verdict::Closed, 0),
        (
            Seen::LookedUp {
                id: 5,
                active: true,
            },
            Verdict::Pending,
            1,
        ),
        (Seen::NotListed, Verdict::Pending, 1),
    ] {
        let mut gs = healthy();
        let p = op(&gs, "w-1");
        assert_eq!(
            reconcile_create(&mut gs, &p, seen, t(60), C),
            verdict,
            "{seen:?}"
        );
        assert_eq!(gs.pending.len(), left, "{seen:?}");
        // Its outcome was recorded when it passed: a later pass changes nothing of it.
        assert_eq!(
            outcome_of(&gs, "w-1"),
            Some(DropletOutcome::Healthy),
            "{seen:?}"
        );
        assert_eq!(last(&gs).finished_at, Some(t(2)));
    }
}

#[test]
fn pending_name_falls_back_to_the_id() {
    let mut gs = creating(&["w-1"]);
    create_outcome(
        &mut gs,
        CreateOutcome::Created {
            name: "w-1".into(),
            id: 5,
        },
        t(1),
    );
    assert_eq!(pending_name(&gs, 5), "w-1");
    assert_eq!(pending_name(&gs, 6), "6");
}
