//! The operator's hand on the autoscaler (issue 13, point 9): a `status` that counts what
//! `apply` did, acting on one group (`--group`), pausing a group, setting its size by hand.

use std::time::Duration;

use crate::common::*;

const CPU: &str = r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#;

/// Rules of the group `web` on the simulator: always hot (+2) unless `hot` is false.
fn rules(sim: &Sim, hot: bool) -> String {
    let port = sim.metrics_port();
    let tag = sim.tag();
    let threshold = if hot { -1.0 } else { 2.0 };
    format!(
        r#"min = 2
max = 8
cooldown_up = "1h"
cooldown_down = "1h"
max_step_up = 2
max_step_down = 1
warmup = "0s"
[group.template]
name = "op-{{n}}"
region = "nyc3"
size = "s-1vcpu-1gb"
image = "ubuntu-24-04-x64"
tags = ["{tag}"]
[group.health_check]
ports = [{port}]
timeout = "2s"
interval = "200ms"
max_tries = 50
[[group.policy]]
name = "hot"
scale = "up"
step = 2
conditions = [ {{ name = "cpu", expr = '{CPU}', function = "mean", op = ">", threshold = {threshold} }} ]
[group.metrics]
port = {port}
"#
    )
}

fn pass(cfg: &str) {
    ok(&["--config", cfg, "scrape"]);
    std::thread::sleep(Duration::from_millis(400));
    ok(&["--config", cfg, "scrape"]);
    ok(&["--config", cfg, "evaluate"]);
}

#[test]
fn status_counts_what_apply_created_as_plan_does() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "21", "--activate-ms", "300"]);
    let cfg = sim.config_with(&rules(&sim, true), "");
    pass(&cfg);
    let p = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    assert_eq!(p["groups"][0]["desired"], 5, "{p}");
    let r = ok(&["--config", &cfg, "apply", "--output", "json"]);
    assert_eq!(
        r.json()["groups"][0]["created"].as_array().unwrap().len(),
        2
    );

    // No scrape since the apply: status and plan both count the 2 created droplets.
    let st = ok(&["--config", &cfg, "status", "--output", "json"]).json();
    let p = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    assert_eq!(st["groups"][0]["size"], 5, "{st}");
    assert_eq!(p["groups"][0]["current"], 5, "{p}");
    // ... and the plan changes nothing on metrics that did not see them.
    assert_eq!(p["groups"][0]["desired"], 5, "{p}");
    assert!(
        p["groups"][0]["create"].as_array().unwrap().is_empty(),
        "{p}"
    );
    let text = ok(&["--config", &cfg, "status"]).stdout;
    assert!(text.contains("size 5 "), "{text}");
}

/// `web` on the simulator and `db`, a group without droplets (its tag is not the simulator's).
fn two_groups(sim: &Sim, hot: bool) -> String {
    let port = sim.metrics_port();
    sim.config_with(
        &format!(
            "{}\n[[group]]\nname = \"db\"\ntag = \"db\"\nmin = 0\nmax = 2\n[group.metrics]\nport = {port}\n",
            rules(sim, hot)
        ),
        "",
    )
}

fn state_group(sim: &Sim, name: &str) -> serde_json::Value {
    let text = read(&sim.path("state.json"));
    if text.is_empty() {
        return serde_json::Value::Null;
    }
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    s["groups"][name].clone()
}

#[test]
fn group_selects_what_a_command_acts_on_and_leaves_the_others_alone() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "22", "--activate-ms", "300"]);
    let cfg = two_groups(&sim, true);
    // An unknown group is a usage error naming the configured ones.
    for cmd in ["scrape", "evaluate", "plan", "apply", "status", "run"] {
        let r = run(&["--config", &cfg, cmd, "--group", "nope"]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.all());
        assert!(
            r.stderr.contains("\"nope\"") && r.stderr.contains("web, db"),
            "{}",
            r.stderr
        );
    }
    pass(&cfg);
    ok(&["--config", &cfg, "plan"]);
    let web = state_group(&sim, "web");
    // Scrape, evaluate and plan db alone: web's state stays exactly as it was.
    ok(&["--config", &cfg, "scrape", "--group", "db"]);
    ok(&["--config", &cfg, "evaluate", "--group", "db"]);
    let p = ok(&[
        "--config", &cfg, "plan", "--group", "db", "--output", "json",
    ])
    .json();
    assert_eq!(p["groups"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["groups"][0]["name"], "db");
    assert_eq!(state_group(&sim, "web"), web);
    // Apply web alone: only its plan is carried out, db's stays unapplied.
    let db = state_group(&sim, "db");
    let r = ok(&[
        "--config", &cfg, "apply", "--group", "web", "--output", "json",
    ])
    .json();
    assert_eq!(r["groups"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        r["groups"][0]["created"].as_array().unwrap().len(),
        2,
        "{r}"
    );
    assert_eq!(state_group(&sim, "db"), db);
    assert!(state_group(&sim, "db")["plan"]["applied_at"].is_null());
    assert!(!state_group(&sim, "web")["plan"]["applied_at"].is_null());
    // Repeatable; status of one group.
    let st = ok(&[
        "--config", &cfg, "status", "--group", "db", "--output", "json",
    ])
    .json();
    assert_eq!(st["groups"].as_array().unwrap().len(), 1);
    assert_eq!(st["groups"][0]["name"], "db");
    let st = ok(&[
        "--config", &cfg, "status", "--group", "db", "--group", "web", "--output", "json",
    ])
    .json();
    assert_eq!(st["groups"].as_array().unwrap().len(), 2);
    // run on db alone sends nothing for web.
    let n0 = sim.requests().len();
    ok(&["--config", &cfg, "run", "--group", "db"]);
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    assert!(!sim.requests()[n0..]
        .iter()
        .any(|r| r["query"].to_string().contains("web")));
}

#[test]
fn a_paused_group_is_scraped_and_evaluated_but_never_changed() {
    let sim = Sim::start(&["--droplets", "1", "--seed", "23", "--activate-ms", "300"]);
    // One droplet, min 2: below min, and hot.
    let cfg = sim.config_with(&rules(&sim, true), "");
    let n0 = sim.requests().len();
    let r = ok(&["--config", &cfg, "pause", "web"]);
    assert!(r.stdout.contains("doscale resume web"), "{}", r.stdout);
    // No network for pause.
    assert_eq!(sim.requests().len(), n0);
    let r = run(&["--config", &cfg, "pause", "nope"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("web"), "{}", r.stderr);
    let paused = state_group(&sim, "web")["paused"].clone();
    assert!(paused["since"].is_string(), "{paused}");
    // Pausing again keeps the first time.
    ok(&["--config", &cfg, "pause", "web"]);
    assert_eq!(state_group(&sim, "web")["paused"], paused);

    let st = ok(&["--config", &cfg, "status"]).stdout;
    assert!(st.contains("PAUSED"), "{st}");
    let st = ok(&["--config", &cfg, "status", "--output", "json"]).json();
    assert!(st["groups"][0]["paused"]["since"].is_string(), "{st}");

    // A whole pass: scraped, evaluated, planned without a change, nothing sent.
    let n0 = sim.requests().len();
    let r = ok(&["--config", &cfg, "run", "--output", "json"]).json();
    let plan = &r["plan"]["groups"][0];
    assert_eq!(
        (plan["current"].as_u64(), plan["desired"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert!(
        plan["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("paused: since "),
        "{plan}"
    );
    assert!(plan["reasons"][0]
        .as_str()
        .unwrap()
        .contains("`doscale resume web`"));
    assert!(
        r["apply"]["groups"][0]["skipped"]
            .as_str()
            .unwrap()
            .starts_with("paused"),
        "{r}"
    );
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    assert!(!r["scrape"]["groups"][0]["droplets"]
        .as_array()
        .unwrap()
        .is_empty());
    // A plan stored before the pause is not applied either.
    ok(&["--config", &cfg, "resume", "web"]);
    pass(&cfg);
    ok(&["--config", &cfg, "plan"]);
    ok(&["--config", &cfg, "pause", "web"]);
    let n0 = sim.requests().len();
    ok(&["--config", &cfg, "apply"]);
    assert!(mutating(&sim.requests()[n0..]).is_empty());

    let r = ok(&["--config", &cfg, "resume", "web"]);
    assert!(r.stdout.contains("resumed"), "{}", r.stdout);
    assert!(state_group(&sim, "web")["paused"].is_null());
    let n0 = sim.requests().len();
    ok(&["--config", &cfg, "run"]);
    assert!(!mutating(&sim.requests()[n0..]).is_empty());
}

#[test]
fn set_is_a_one_off_size_within_bounds_and_cooldowns_count_from_it() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "24", "--activate-ms", "300"]);
    let cfg = sim.config_with(&rules(&sim, false), "");
    let r = run(&["--config", &cfg, "set", "web", "9"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("min 2") && r.stderr.contains("max 8"),
        "{}",
        r.stderr
    );
    assert!(state_group(&sim, "web")["manual"].is_null());

    pass(&cfg);
    let r = ok(&["--config", &cfg, "set", "web", "6"]);
    assert!(r.stdout.contains("desired size 6"), "{}", r.stdout);
    let st = ok(&["--config", &cfg, "status"]).stdout;
    assert!(st.contains("set: desired 6"), "{st}");
    // max_step_up is 2: the set creates 3 at once.
    let p = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    let g = &p["groups"][0];
    assert_eq!(
        (g["current"].as_u64(), g["desired"].as_u64()),
        (Some(3), Some(6)),
        "{p}"
    );
    assert!(
        g["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("set: desired 6 by `doscale set` at "),
        "{g}"
    );
    ok(&["--config", &cfg, "apply"]);
    // Consumed once applied; a scale action in the history.
    let web = state_group(&sim, "web");
    assert!(web["manual"].is_null(), "{web}");
    let last = web["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"].as_str().unwrap().contains("set: desired 6"),
        "{last}"
    );
    // The policies rule again (now hot: +2), and cooldown_up counts from the set's action.
    let hot = sim.config_with(&rules(&sim, true), "");
    let r = ok(&["--config", &hot, "run", "--dry-run", "--output", "json"]).json();
    let g = &r["plan"]["groups"][0];
    assert_eq!(
        (g["current"].as_u64(), g["desired"].as_u64()),
        (Some(6), Some(6)),
        "{g}"
    );
    assert!(g["reasons"].to_string().contains("cooldown_up"), "{g}");
}
