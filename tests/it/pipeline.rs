//! evaluate → plan → apply against the simulator: growth, dry run, cooldown, shrink to min,
//! max, protected droplets, a killed apply.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

const CPU: &str = r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#;

fn rules(sim: &Sim, extra: &str) -> String {
    let port = sim.metrics_port();
    let tag = sim.tag();
    format!(
        r#"min = 2
max = 8
cooldown_up = "1h"
cooldown_down = "0s"
max_step_up = 2
max_step_down = 5
warmup = "0s"
protect_tag = "keep-me"
{extra}
[group.template]
name = "it-{{n}}"
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
conditions = [ {{ name = "cpu", expr = '{CPU}', function = "mean", op = ">", threshold = 0.8 }} ]
[[group.policy]]
name = "cold"
scale = "down"
step = 5
conditions = [ {{ name = "cpu", expr = '{CPU}', function = "mean", op = "<", threshold = 0.3 }} ]
[group.metrics]
port = {port}
"#
    )
}

fn cycle(sim: &Sim, cfg: &str, demand: f64) -> serde_json::Value {
    sim.put("/_sim/load", json!({"demand": demand}));
    std::thread::sleep(Duration::from_millis(300));
    ok(&["--config", cfg, "scrape"]);
    std::thread::sleep(Duration::from_millis(1500));
    ok(&["--config", cfg, "scrape"]);
    ok(&["--config", cfg, "evaluate"]);
    let p = ok(&["--config", cfg, "plan", "--output", "json"]).json();
    p["groups"][0].clone()
}

#[test]
fn grows_under_load_holds_in_cooldown_and_shrinks_to_min() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "11", "--activate-ms", "400"]);
    let cfg = sim.config_with(&rules(&sim, ""), "");
    ok(&["--config", &cfg, "check"]);
    let p = cycle(&sim, &cfg, 2.85);
    assert_eq!(
        (p["current"].as_u64(), p["desired"].as_u64()),
        (Some(3), Some(5)),
        "{p}"
    );
    assert_eq!(p["create"].as_array().unwrap().len(), 2);

    // a dry run sends nothing that mutates and leaves the state alone
    let state = sim.path("state.json");
    let before = std::fs::read(&state).unwrap();
    let n0 = sim.requests().len();
    let dry = ok(&["--config", &cfg, "apply", "--dry-run", "--output", "json"]).json();
    let shown = dry["groups"][0]["requests"].as_array().unwrap().clone();
    assert!(
        shown
            .iter()
            .any(|r| r["method"] == "POST" && r["body"]["names"].as_array().unwrap().len() == 2),
        "{dry}"
    );
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    assert_eq!(std::fs::read(&state).unwrap(), before);
    // the detailed exit code says the plan changes something
    let r = run(&["--config", &cfg, "plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 3, "{}", r.all());

    let r = ok(&["--config", &cfg, "apply", "--output", "json"]);
    assert_eq!(
        r.json()["groups"][0]["created"].as_array().unwrap().len(),
        2,
        "{}",
        r.stdout
    );
    let posts: Vec<_> = mutating(&sim.requests()[n0..])
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    let grown = droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json());
    assert_eq!(grown.len(), 5);
    assert!(
        grown
            .iter()
            .all(|d| d["status"] == "active" && d["error"].is_null()),
        "{grown:?}"
    );
    // a second apply of the same plan is refused
    let r = run(&["--config", &cfg, "apply"]);
    assert_ne!(r.code, 0);

    let p = cycle(&sim, &cfg, 4.75);
    let why = p["reasons"].to_string();
    assert_eq!(p["desired"], 5, "{p}");
    assert!(why.contains("cooldown_up"), "{why}");

    let p = cycle(&sim, &cfg, 0.5);
    assert_eq!(p["desired"], 2, "{p}");
    assert_eq!(p["destroy"].as_array().unwrap().len(), 3);
    ok(&["--config", &cfg, "apply"]);
    assert_eq!(
        droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json()).len(),
        2
    );
    let p = cycle(&sim, &cfg, 0.2);
    assert_eq!(p["desired"], 2);
    assert!(p["destroy"].as_array().unwrap().is_empty());

    // history and status tell the story
    let st = ok(&["--config", &cfg, "status", "--output", "json"]).json();
    let hist = st["groups"][0]["history"].as_array().unwrap();
    assert!(
        hist.iter()
            .any(|h| h["direction"] == "up" && h["outcome"] == "done"),
        "{st}"
    );
    assert!(
        hist.iter()
            .any(|h| h["direction"] == "down" && h["outcome"] == "done"),
        "{st}"
    );
}

#[test]
fn never_above_max_and_never_a_protected_droplet() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "5", "--activate-ms", "300"]);
    let ds = droplets(&ok(&["--config", sim.cfg(), "scrape", "--output", "json"]).json());
    let protected = ds[2]["id"].as_u64().unwrap();
    sim.put(
        &format!("/_sim/droplets/{protected}/tags"),
        json!([sim.tag(), "keep-me"]),
    );
    let cfg = sim.config_with(
        &rules(&sim, "")
            .replace("max = 8", "max = 3")
            .replace("min = 2", "min = 1")
            .replace("cooldown_up = \"1h\"", "cooldown_up = \"0s\"")
            .replace("max_step_down = 5", "max_step_down = 10"),
        "",
    );
    let p = cycle(&sim, &cfg, 2.9);
    assert_eq!(p["desired"], 3);
    assert!(p["create"].as_array().unwrap().is_empty());
    assert!(p["reasons"].to_string().contains("max"), "{p}");
    let p = cycle(&sim, &cfg, 0.1);
    let destroyed: Vec<u64> = p["destroy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert!(!destroyed.contains(&protected), "{p}");
    ok(&["--config", &cfg, "apply"]);
    let left = droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json());
    assert!(left.iter().any(|d| d["id"].as_u64() == Some(protected)));
    assert!(!left.is_empty());
}

#[test]
fn apply_refuses_a_stale_plan_and_names_the_way_forward() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "9"]);
    let cfg = sim.config_with(&rules(&sim, ""), "");
    let r = run(&["--config", &cfg, "apply"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("doscale plan"), "{}", r.stderr);
    cycle(&sim, &cfg, 1.5);
    // a droplet deleted by hand between plan and apply
    let ds = droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json());
    ok(&["--config", &cfg, "evaluate"]);
    ok(&["--config", &cfg, "plan"]);
    sim.delete(&format!("/_sim/droplets/{}", ds[0]["id"]));
    let n0 = sim.requests().len();
    let r = run(&["--config", &cfg, "apply"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("changed since the plan") && r.stderr.contains("doscale plan"),
        "{}",
        r.stderr
    );
    assert!(mutating(&sim.requests()[n0..]).is_empty());
}

#[test]
fn a_killed_apply_is_reconciled_without_duplicates() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "13", "--activate-ms", "2500"]);
    let cfg = sim.config_with(
        &rules(&sim, "").replace("threshold = 0.8", "threshold = -1"),
        "",
    );
    ok(&["--config", &cfg, "scrape"]);
    std::thread::sleep(Duration::from_millis(500));
    ok(&["--config", &cfg, "scrape"]);
    ok(&["--config", &cfg, "evaluate"]);
    ok(&["--config", &cfg, "plan"]);
    let n0 = sim.requests().len();
    let mut child = cmd()
        .args(["--config", &cfg, "apply"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !sim.requests()[n0..].iter().any(|r| r["method"] == "POST") {
        assert!(std::time::Instant::now() < deadline, "no create request");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..3 {
        let r = run(&["--config", &cfg, "run"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let posts = sim.requests()[n0..]
        .iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(posts, 1);
    let ds = droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json());
    let mut names: Vec<_> = ds
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(ds.iter().all(|d| d["status"] == "active"));
    let state = read(&sim.path("state.json"));
    for d in &ds {
        if d["name"].as_str().unwrap().starts_with("it-") {
            assert!(
                state.contains(&d["id"].to_string()),
                "history lacks {}",
                d["id"]
            );
        }
    }
}
