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

fn group_of<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {v}"))
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
