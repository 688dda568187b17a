//! apply_group's flows over [`FakeApi`] and a [`ManualClock`]: no HTTP, no sleeping (each
//! test checks the virtual time it took, and that little real time passed).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::fake::{CreateFault, FakeApi};
use super::*;
use crate::clock::ManualClock;
use crate::do_api::model::CreateResponse;
use crate::model::{ActionOutcome, DropletOutcome, Stage};
use crate::plan::PlannedDestroy;

const C: Consistency = Consistency {
    listings: 2,
    window: Duration::from_secs(60),
};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn group(extra: &str) -> Group {
    let text = format!(
        "[[group]]\nname = \"web\"\ntag = \"web\"\nmin = 1\nmax = 10\n{extra}\n[group.template]\nname = \"web-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.health_check]\nports = [9100]\ninterval = \"10s\"\nmax_tries = 3\n"
    );
    crate::config::parse(Path::new("/t.toml"), &text, &Default::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .groups
        .remove(0)
}

fn plan(create: &[&str], destroy: &[(u64, &str)]) -> GroupPlan {
    GroupPlan {
        name: "web".into(),
        at: t0(),
        current: 2,
        desired: 2 + create.len() as u32 - destroy.len() as u32,
        recommended: 2,
        create: create.iter().map(|s| s.to_string()).collect(),
        destroy: destroy
            .iter()
            .map(|(id, n)| PlannedDestroy {
                id: *id,
                name: n.to_string(),
                why: "newest".into(),
            })
            .collect(),
        reasons: vec!["policy busy: up".into()],
        based_on: vec![],
        recommendation: None,
        applied_at: None,
        paused: false,
        carries_set: None,
    }
}

fn healthy(_: &Droplet, _: Option<&str>, _: &crate::config::HealthCheck) -> Result<(), ProbeError> {
    Ok(())
}

fn refused(_: &Droplet, _: Option<&str>, _: &crate::config::HealthCheck) -> Result<(), ProbeError> {
    Err(ProbeError::Failed("port 9100: connection refused".into()))
}

/// One apply of `plan` with `listing` as the API's listing before it.
struct Pass<'a> {
    api: &'a FakeApi,
    clock: &'a ManualClock,
    probe: &'a dyn HealthProbe,
    group: &'a Group,
}

impl Pass<'_> {
    fn run(&self, plan: &GroupPlan, state: &mut State, dry_run: bool) -> GroupReport {
        let listing = self.api.list_all(&self.group.tag).unwrap();
        self.run_on(plan, state, &listing, dry_run)
    }

    fn run_on(
        &self,
        plan: &GroupPlan,
        state: &mut State,
        listing: &[Droplet],
        dry_run: bool,
    ) -> GroupReport {
        let io = Io {
            api: self.api,
            clock: self.clock,
            probe: self.probe,
        };
        apply_group(
            io,
            self.group,
            plan,
            state,
            &Saver { store: None },
            listing,
            C,
            dry_run,
        )
        .unwrap()
    }
}

fn history(state: &mut State) -> Vec<HistoryEntry> {
    state.group_mut("web").history.clone()
}

use crate::model::HistoryEntry;

fn outcomes(e: &HistoryEntry) -> Vec<Option<DropletOutcome>> {
    e.droplets.iter().map(|d| d.outcome.clone()).collect()
}

#[test]
fn creates_are_waited_for_health_checked_and_recorded_healthy_on_virtual_time() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.activate_after(4);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let started = Instant::now();
    let rep = pass.run(&plan(&["web-1", "web-2"], &[]), &mut state, false);
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(rep.created, vec![1001, 1002]);
    assert_eq!(api.mutations(), vec!["POST web-1,web-2"]);
    assert_eq!(rep.requests.len(), 1);
    assert!(rep.pending.is_empty());
    let h = history(&mut state);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].outcome, ActionOutcome::Done);
    assert_eq!(h[0].at, t0());
    assert_eq!(outcomes(&h[0]), vec![Some(DropletOutcome::Healthy); 2]);
    assert_eq!(h[0].droplets[0].id, Some(1001));
    // Three polls 500 ms apart on the virtual clock, and no real sleeping.
    assert_eq!(clock.now() - t0(), chrono::Duration::milliseconds(1500));
    assert_eq!(h[0].finished_at, Some(clock.now()));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn the_health_check_makes_rounds_interval_apart_on_the_clock() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    let tries = AtomicU32::new(0);
    let third_time_lucky = |_: &Droplet, addr: Option<&str>, _: &crate::config::HealthCheck| {
        assert_eq!(addr, Some("10.0.3.233"));
        if tries.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(ProbeError::Failed("port 9100: refused".into()))
        } else {
            Ok(())
        }
    };
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &third_time_lucky,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert_eq!(rep.created, vec![1001], "{:?}", rep.errors);
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert_eq!(clock.now() - t0(), chrono::Duration::seconds(20));
}

#[test]
fn a_refused_create_is_failed_and_nothing_stays_pending() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.fail_creates(&[CreateFault::Status(422)]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert_eq!(
        rep.errors,
        vec!["creating web-1: DigitalOcean API POST /v2/droplets: HTTP 422"]
    );
    assert!(state.group_mut("web").pending.is_empty());
    let h = history(&mut state);
    assert_eq!(h[0].outcome, ActionOutcome::Failed);
    assert!(
        matches!(&outcomes(&h[0])[0], Some(DropletOutcome::Failed(w)) if w.contains("HTTP 422"))
    );
    // Looked for by name once, never sent again.
    assert_eq!(api.mutations(), vec!["POST web-1"]);
}

#[test]
fn a_timed_out_create_that_was_made_is_found_by_name_and_never_sent_twice() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.fail_creates(&[CreateFault::TimeoutMade]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert_eq!(rep.created, vec![1001]);
    assert_eq!(
        rep.errors,
        vec!["creating web-1: DigitalOcean API POST /v2/droplets: timed out"]
    );
    assert_eq!(api.mutations(), vec!["POST web-1"]);
    assert_eq!(history(&mut state)[0].outcome, ActionOutcome::Done);
}

#[test]
fn a_create_of_unknown_outcome_stays_pending_until_the_consistency_window_settles_it() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.fail_creates(&[CreateFault::TimeoutNotMade]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert!(
        rep.errors[0].contains("the outcome of web-1 is unknown"),
        "{:?}",
        rep.errors
    );
    assert_eq!(
        rep.pending,
        vec!["create web-1 (outcome unknown: missed 1 of 2 listings)"]
    );
    let p = state.group_mut("web").pending[0].clone();
    assert_eq!((p.stage, p.unseen.unwrap().listings), (Stage::Unknown, 1));
    // The next passes: missed again within the window, then past it.
    clock.advance(Duration::from_secs(30));
    let rep = pass.run(&plan(&[], &[]), &mut state, false);
    assert_eq!(
        rep.pending,
        vec!["create web-1 (outcome unknown: missed 2 of 2 listings)"]
    );
    clock.advance(Duration::from_secs(31));
    let rep = pass.run(&plan(&[], &[]), &mut state, false);
    assert!(rep.pending.is_empty());
    let h = history(&mut state);
    assert!(
        matches!(&outcomes(&h[0])[0], Some(DropletOutcome::NotCreated(w)) if w.starts_with("not listed in 2 listings over 1m"))
    );
    assert_eq!(api.mutations(), vec!["POST web-1"]);
}

#[test]
fn a_create_error_with_a_failing_listing_stays_pending_unknown() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let listing = api.list_all("web").unwrap();
    api.fail_creates(&[CreateFault::Status(500)]);
    api.fail_listings(1);
    let rep = pass.run_on(&plan(&["web-1"], &[]), &mut state, &listing, false);
    assert!(
        rep.errors[0].contains("HTTP 500; the outcome of web-1 is unknown"),
        "{:?}",
        rep.errors
    );
    let p = state.group_mut("web").pending[0].clone();
    assert_eq!((p.stage, p.unseen), (Stage::Unknown, None));
}

#[test]
fn a_droplet_never_active_stays_pending_after_the_budget_without_real_waiting() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.activate_after(u32::MAX);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let started = Instant::now();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert_eq!(
        rep.errors,
        vec!["droplet web-1 (1001) is not active after 30s: still pending, the next pass looks again"]
    );
    assert_eq!(rep.pending, vec!["create web-1 (requested)"]);
    assert!(clock.now() - t0() >= chrono::Duration::seconds(30));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_droplet_whose_create_action_errors_is_reported_gone() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.fail_creates(&[CreateFault::ActionErrors]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert_eq!(
        rep.errors,
        vec!["droplet web-1 (1001) disappeared before turning active: its create action probably errored"]
    );
    assert!(rep.pending.is_empty());
    assert_eq!(history(&mut state)[0].outcome, ActionOutcome::Failed);
}

#[test]
fn an_unhealthy_droplet_is_destroyed_only_with_on_unhealthy_destroy() {
    for (extra, deletes) in [
        ("", vec![]),
        ("on_unhealthy = \"destroy\"", vec!["DELETE 1001"]),
    ] {
        let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(extra));
        let pass = Pass {
            api: &api,
            clock: &clock,
            probe: &refused,
            group: &g,
        };
        let mut state = State::default();
        let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
        assert_eq!(
            rep.errors[0],
            "droplet web-1 (1001) is unhealthy: 3 tries: port 9100: connection refused"
        );
        let mut want = vec!["POST web-1"];
        want.extend(deletes.iter().copied());
        assert_eq!(api.mutations(), want, "{extra}");
        let h = history(&mut state);
        assert!(matches!(
            &outcomes(&h[0])[0],
            Some(DropletOutcome::Unhealthy(_))
        ));
        assert_eq!(h.len(), 1 + deletes.len());
        assert_eq!(rep.destroyed.len(), deletes.len());
        // Two waits between three tries.
        assert_eq!(clock.now() - t0(), chrono::Duration::seconds(20));
    }
}

#[test]
fn a_destroy_is_recorded_destroyed_or_already_gone() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    let a = api.add("web-1", "active", &["web"]);
    let b = api.add("web-2", "active", &["web"]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let listing = api.list_all("web").unwrap();
    api.remove(b);
    let rep = pass.run_on(
        &plan(&[], &[(a, "web-1"), (b, "web-2")]),
        &mut state,
        &listing,
        false,
    );
    assert_eq!(rep.destroyed, vec![a, b]);
    let h = history(&mut state);
    assert_eq!(outcomes(&h[0]), vec![Some(DropletOutcome::Destroyed)]);
    assert_eq!(outcomes(&h[1]), vec![Some(DropletOutcome::AlreadyGone)]);
    assert!(state.group_mut("web").pending.is_empty());
    assert_eq!(h[0].reason, "plan: 2 → 0: policy busy: up (newest)");
}

#[test]
fn a_failed_destroy_stays_pending_and_the_next_pass_sends_it_again() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    let a = api.add("web-1", "active", &["web"]);
    api.fail_deletes(&[503]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&[], &[(a, "web-1")]), &mut state, false);
    assert_eq!(
        rep.errors,
        vec!["destroying web-1 (1001): DigitalOcean API DELETE /v2/droplets/1001: HTTP 503"]
    );
    assert_eq!(rep.pending, vec!["destroy web-1 (requested)"]);
    let rep = pass.run(&plan(&[], &[]), &mut state, false);
    assert!(rep.errors.is_empty());
    assert_eq!(rep.destroyed, vec![a]);
    assert_eq!(api.mutations(), vec!["DELETE 1001", "DELETE 1001"]);
    assert_eq!(history(&mut state)[0].outcome, ActionOutcome::Done);
}

#[test]
fn a_pending_destroy_of_a_droplet_protected_since_is_not_sent_again() {
    let (api, clock, g) = (
        FakeApi::new(),
        ManualClock::new(t0()),
        group("protect_tag = \"keep\""),
    );
    let a = api.add("web-1", "active", &["web", "keep"]);
    let mut state = State::default();
    ledger::intend_destroy(state.group_mut("web"), a, "web-1", "plan", t0());
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let rep = pass.run(&plan(&[], &[]), &mut state, false);
    assert_eq!(
        rep.errors,
        vec!["droplet 1001 carries the protect tag keep: not destroyed"]
    );
    assert!(api.mutations().is_empty());
    assert!(matches!(
        &outcomes(&history(&mut state)[0])[0],
        Some(DropletOutcome::NotDestroyed(_))
    ));
}

#[test]
fn a_create_recorded_by_a_killed_run_is_found_by_name_and_finished() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    let id = api.add("web-1", "active", &["web"]);
    let mut state = State::default();
    ledger::intend_create(state.group_mut("web"), &["web-1".into()], "plan", t0());
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let rep = pass.run(&plan(&[], &[]), &mut state, false);
    assert_eq!(rep.created, vec![id]);
    assert!(api.mutations().is_empty());
    assert_eq!(history(&mut state)[0].droplets[0].id, Some(id));
}

#[test]
fn a_healthy_droplet_known_only_by_id_waits_for_a_listing() {
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    api.list_lag(10);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let mut state = State::default();
    let rep = pass.run(&plan(&["web-1"], &[]), &mut state, false);
    assert_eq!(rep.created, vec![1001]);
    assert_eq!(rep.pending, vec!["create web-1 (healthy)"]);
    // Listed at last: done with, nothing sent again.
    api.list_lag(0);
    let listing = api.droplets();
    let rep = pass.run_on(&plan(&[], &[]), &mut state, &listing, false);
    assert!(rep.pending.is_empty());
    assert_eq!(api.mutations(), vec!["POST web-1"]);
}

#[test]
fn a_dry_run_sends_nothing_changes_nothing_and_shows_the_real_runs_requests() {
    let g = group("");
    let setup = || {
        let api = FakeApi::new();
        let a = api.add("web-1", "active", &["web"]);
        api.add("web-2", "active", &["web"]);
        let mut state = State::default();
        ledger::intend_create(state.group_mut("web"), &["web-0".into()], "plan", t0());
        (api, a, state)
    };
    let (api, a, mut state) = setup();
    let clock = ManualClock::new(t0());
    let before = state.clone();
    let p = plan(&["web-3", "web-4"], &[(a, "web-1"), (99, "web-9")]);
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &refused,
        group: &g,
    };
    let dry = pass.run(&p, &mut state, true);
    assert_eq!(state, before);
    assert!(api.mutations().is_empty());
    assert_eq!(dry.pending, vec!["create web-0 (intent)"]);
    assert!(dry.created.is_empty() && dry.destroyed.is_empty());
    assert_eq!(
        dry.errors,
        vec!["droplet 99 is no longer listed with tag web: not destroyed"]
    );
    let shown: Vec<String> = dry
        .requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.body))
        .collect();
    assert_eq!(
        shown,
        vec![
            r#"POST /v2/droplets {"image":"ubuntu-24-04-x64","names":["web-3","web-4"],"region":"nyc3","size":"s-1vcpu-1gb","tags":["web"]}"#,
            "DELETE /v2/droplets/1001 null",
        ]
    );
    assert_eq!(clock.now(), t0());
    // The real run sends exactly these.
    let (api, _, mut state) = setup();
    let pass = Pass {
        api: &api,
        clock: &clock,
        probe: &healthy,
        group: &g,
    };
    let real = pass.run(&p, &mut state, false);
    assert_eq!(real.requests, dry.requests);
    assert_eq!(api.mutations(), vec!["POST web-3,web-4", "DELETE 1001"]);
}

/// An API that, at each request, reads the state file as a crash right then would leave it.
struct Witness<'a> {
    api: &'a FakeApi,
    path: &'a Path,
    seen: std::sync::Mutex<Vec<Vec<(String, Stage)>>>,
}

impl Witness<'_> {
    fn look(&self) {
        let s = crate::state::load_file(self.path, crate::state::Reading::ALL).unwrap();
        let ops = s
            .groups
            .get("web")
            .map(|g| {
                g.pending
                    .iter()
                    .map(|p| (p.name.clone(), p.stage.clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.seen.lock().unwrap().push(ops);
    }
}

impl DoApi for Witness<'_> {
    fn list_by_tag(
        &self,
        tag: &str,
        on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> Result<(), ApiError> {
        self.api.list_by_tag(tag, on_page)
    }
    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError> {
        self.api.get_droplet(id)
    }
    fn create(&self, req: &CreateRequest) -> Result<CreateResponse, ApiError> {
        self.look();
        self.api.create(req)
    }
    fn delete(&self, id: u64) -> Result<Deleted, ApiError> {
        self.look();
        self.api.delete(id)
    }
    fn get_action(&self, id: u64) -> Result<crate::do_api::model::Action, ApiError> {
        self.api.get_action(id)
    }
}

#[test]
fn every_intent_is_saved_before_its_request_and_every_outcome_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = Store::open(&path, None).unwrap();
    let (api, clock, g) = (FakeApi::new(), ManualClock::new(t0()), group(""));
    let a = api.add("web-1", "active", &["web"]);
    let listing = api.list_all("web").unwrap();
    let witness = Witness {
        api: &api,
        path: &path,
        seen: Default::default(),
    };
    let mut state = store.load().unwrap();
    let io = Io {
        api: &witness,
        clock: &clock,
        probe: &healthy,
    };
    let rep = apply_group(
        io,
        &g,
        &plan(&["web-2"], &[(a, "web-1")]),
        &mut state,
        &Saver {
            store: Some(&store),
        },
        &listing,
        C,
        false,
    )
    .unwrap();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(
        *witness.seen.lock().unwrap(),
        vec![
            vec![("web-2".to_string(), Stage::Intent)],
            vec![("web-1".to_string(), Stage::Intent)],
        ]
    );
    let saved = crate::state::load_file(&path, crate::state::Reading::ALL).unwrap();
    assert_eq!(saved.groups["web"].history, state.group_mut("web").history);
    assert!(saved.groups["web"].pending.is_empty());
}
