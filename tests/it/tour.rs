//! The README's simulator tour ("Try it against the simulator"), run as written: the shell block
//! is taken from README.md itself, so the tour cannot drift from what the binary does. Only the
//! binary's path and the tour's folder are replaced (the folder by one that does not exist yet,
//! inside a temporary directory); `cargo build --release` is left to cargo test.

use std::process::Command;

use crate::common::*;

/// The first ```sh block after the heading.
fn readme_block(heading: &str) -> String {
    let readme = read(&std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/README.md"
    )));
    let after = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no heading {heading:?}"))
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, b)| b.split_once("\n```"))
        .unwrap_or_else(|| panic!("no ```sh block under {heading:?}"))
        .0;
    block.to_string()
}

#[test]
fn the_readme_simulator_tour_shows_a_policy_firing_and_a_plan() {
    let block = readme_block("## Try it against the simulator");
    assert!(
        block.contains("/tmp/sim/sim.toml") && block.contains("./target/release/doscale"),
        "the tour changed shape; adapt this test:\n{block}"
    );
    let dir = tempfile::tempdir().unwrap();
    let tour_dir = dir.path().join("tour"); // does not exist: sim --config-out creates it
    let bin = env!("CARGO_BIN_EXE_doscale");
    let script: Vec<String> = block
        .lines()
        .filter(|l| l.trim() != "cargo build --release")
        .map(|l| {
            l.replace("./target/release/doscale", &format!("'{bin}'"))
                .replace("/tmp/sim", tour_dir.to_str().unwrap())
        })
        .collect();
    // Whatever fails, the simulator started in the background does not outlive the tour.
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}\n",
        script.join("\n")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("NO_COLOR", "1")
        .env_remove("DIGITALOCEAN_TOKEN")
        .output()
        .expect("bash runs the tour");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{script}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert!(out.status.success(), "the tour failed: {all}");
    assert!(tour_dir.join("sim.toml").is_file(), "{all}");

    // The dry run showed the create; the plan the tour left (read back offline from the state)
    // creates droplets because a policy fired.
    assert!(stdout.contains("POST /v2/droplets"), "{all}");
    let cfg = tour_dir.join("sim.toml");
    let plan = ok(&[
        "--config",
        cfg.to_str().unwrap(),
        "plan",
        "--output",
        "json",
    ])
    .json();
    let g = &plan["groups"][0];
    let create = g["create"].as_array().unwrap_or_else(|| panic!("{plan}"));
    assert!(
        !create.is_empty(),
        "the plan creates nothing: {plan}\n{all}"
    );
    let reasons = g["reasons"].to_string();
    assert!(
        reasons.contains("policy: mem_avail (+1) satisfied"),
        "no policy fired: {reasons}\n{all}"
    );
}
