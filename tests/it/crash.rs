//! Crash consistency: `apply` killed at each step (DOSCALE_FAILPOINT aborts the process there,
//! as a SIGKILL would), then ordinary passes: the group converges, no droplet is created
//! twice, the history is complete and the state valid.

use std::collections::BTreeSet;

use crate::common::*;

fn config(sim: &Sim, policy: &str, extra: &str) -> String {
    let port = sim.metrics_port();
    let tag = sim.tag();
    sim.config_with(
        &format!(
            r#"min = 2
max = 5
cooldown_up = "0s"
cooldown_down = "0s"
warmup = "0s"
max_step_up = 2
max_step_down = 3
{extra}
[group.template]
name = "crash-{{n}}"
region = "nyc3"
size = "s-1vcpu-1gb"
image = "ubuntu-24-04-x64"
tags = ["{tag}"]
[group.health_check]
ports = [{port}]
timeout = "1s"
interval = "100ms"
max_tries = 60
[group.metrics]
port = {port}
[[group.policy]]
name = "always"
scale = "{policy}"
step = 3
conditions = [ {{ name = "l", expr = "node_load1", function = "min", op = ">=", threshold = 0 }} ]
"#
        ),
        "",
    )
}

fn listed(cfg: &str) -> Vec<serde_json::Value> {
    droplets(&ok(&["--config", cfg, "scrape", "--output", "json"]).json())
}

/// Kills apply at `point`, then runs passes until the group stops changing.
fn crash_then_converge(point: &str, policy: &str, start: u32, want: usize, seed: &str) {
    let sim = Sim::start(&[
        "--droplets",
        &start.to_string(),
        "--seed",
        seed,
        "--activate-ms",
        "300",
    ]);
    let cfg = config(&sim, policy, "");
    let before: BTreeSet<u64> = listed(&cfg)
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    ok(&["--config", &cfg, "evaluate"]);
    ok(&["--config", &cfg, "plan"]);
    let r = run_env(
        &["--config", &cfg, "apply"],
        &[("DOSCALE_FAILPOINT", point)],
    );
    assert_ne!(r.code, 0, "{point}: apply was not stopped: {}", r.all());
    assert!(r.stderr.contains(point), "{point}: {}", r.stderr);
    // the state the crash left is valid
    let state: serde_json::Value = serde_json::from_str(&read(&sim.path("state.json"))).unwrap();
    assert_eq!(state["version"], 1);
    for i in 0..4 {
        let r = run(&["--config", &cfg, "run"]);
        assert_eq!(r.code, 0, "{point}: pass {i} after the crash: {}", r.all());
    }
    let after = listed(&cfg);
    assert_eq!(after.len(), want, "{point}: {after:?}");
    assert!(
        after
            .iter()
            .all(|d| d["status"] == "active" && d["error"].is_null()),
        "{point}: {after:?}"
    );
    let names: BTreeSet<&str> = after.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), after.len(), "{point}: duplicate names");
    // every name was requested once at most
    let mut posted = Vec::new();
    for q in sim.requests() {
        if q["method"] == "POST" && q["path"] == "/v2/droplets" {
            posted.extend(
                q["body"]["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string()),
            );
        }
    }
    let unique: BTreeSet<&String> = posted.iter().collect();
    assert_eq!(
        unique.len(),
        posted.len(),
        "{point}: a name was requested twice: {posted:?}"
    );
    // history: every created or destroyed droplet is there, nothing is left pending
    let state: serde_json::Value = serde_json::from_str(&read(&sim.path("state.json"))).unwrap();
    let g = &state["groups"]["web"];
    assert!(
        g["pending"].as_array().unwrap().is_empty(),
        "{point}: {}",
        g["pending"]
    );
    let hist = g["history"].to_string();
    let now: BTreeSet<u64> = after.iter().map(|d| d["id"].as_u64().unwrap()).collect();
    for id in now.difference(&before).chain(before.difference(&now)) {
        assert!(
            hist.contains(&id.to_string()),
            "{point}: history lacks {id}: {hist}"
        );
    }
    for e in g["history"].as_array().unwrap() {
        assert_ne!(
            e["outcome"], "pending",
            "{point}: an entry was never finished: {e}"
        );
    }
}

#[test]
fn killed_while_creating_then_converges() {
    for (i, point) in [
        "after-create-intent",
        "after-create-request",
        "waiting-for-active",
        "health-check",
    ]
    .iter()
    .enumerate()
    {
        crash_then_converge(point, "up", 3, 5, &(30 + i).to_string());
    }
}

#[test]
fn killed_while_destroying_then_converges() {
    for (i, point) in ["after-destroy-intent", "after-destroy-request"]
        .iter()
        .enumerate()
    {
        crash_then_converge(point, "down", 5, 2, &(40 + i).to_string());
    }
}
