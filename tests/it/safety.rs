//! Safety under partial data and doubt (issue 14): a create whose outcome is unknown is never
//! made twice, droplets found after a failed create are health-checked, hooks do not see the
//! token, a renamed group does not orphan its pending operations.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

/// A group held at `size` (min = max) by repair, created droplets named `s-{n}`; `api` lines go
/// into `[api]` (timeout, consistency window).
pub fn held_config(sim: &Sim, size: u32, api: &str) -> String {
    let p = sim.metrics_port();
    let tag = sim.tag();
    let cfg = sim.config_with(
        &format!(
            r#"min = {size}
max = {size}
warmup = "0s"
cooldown_up = "0s"
cooldown_down = "0s"
[group.template]
name = "s-{{n}}"
region = "nyc3"
size = "s-1vcpu-1gb"
image = "ubuntu-24-04-x64"
tags = ["{tag}"]
[group.health_check]
ports = [{p}]
timeout = "1s"
interval = "100ms"
max_tries = 30
[group.metrics]
port = {p}
"#
        ),
        "",
    );
    let text = read(Path::new(&cfg)).replace("[api]\n", &format!("[api]\n{api}\n"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// Names in every `POST /v2/droplets` the simulator received, in order.
pub fn posted_names(sim: &Sim) -> Vec<String> {
    let mut out = Vec::new();
    for q in sim.requests() {
        if q["method"] == "POST" && q["path"] == "/v2/droplets" {
            if let Some(ns) = q["body"]["names"].as_array() {
                out.extend(
                    ns.iter()
                        .map(|n| n.as_str().unwrap_or_default().to_string()),
                );
            } else if let Some(n) = q["body"]["name"].as_str() {
                out.push(n.to_string());
            }
        }
    }
    out
}

/// The simulator's droplets carrying `tag` (whatever the API lists): id and name.
pub fn fleet(sim: &Sim, tag: &str) -> Vec<(u64, String)> {
    sim.get("/_sim/droplets")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["tags"].as_array().unwrap().iter().any(|t| t == tag))
        .map(|d| {
            (
                d["id"].as_u64().unwrap(),
                d["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn state(sim: &Sim) -> serde_json::Value {
    serde_json::from_str(&read(&sim.path("state.json"))).unwrap()
}

/// Issue 14.2: a create that timed out made its droplet, which the API lists only later. One
/// listing without it is not proof it does not exist: the create stays pending, nothing more
/// is created, and the droplet is taken up once listed.
#[test]
fn a_timed_out_create_the_api_lists_late_is_never_made_twice() {
    let sim = Sim::start(&["--droplets", "2", "--seed", "61", "--activate-ms", "200"]);
    let cfg = held_config(
        &sim,
        3,
        "timeout = \"400ms\"\nconsistency_window = \"6s\"\nconsistency_listings = 2",
    );
    let tag = sim.tag();
    sim.put(
        "/_sim/faults",
        json!({"create_latency_ms": 1000, "list_lag_ms": 2500}),
    );
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("outcome of s-1 is unknown"), "{}", r.all());
    // While the API does not list it, passes keep waiting instead of creating again.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1800) {
        let r = run(&["--config", &cfg, "run"]);
        assert!(r.code == 0 || r.code == 1, "{}", r.all());
        assert!(fleet(&sim, &tag).len() <= 3, "{:?}", fleet(&sim, &tag));
    }
    let r = ok(&["--config", &cfg, "plan"]);
    assert!(
        r.stdout.contains("create of s-1 outcome unknown (missed"),
        "{}",
        r.stdout
    );
    // Once listed, it is found, waited for and health-checked.
    std::thread::sleep(Duration::from_millis(800));
    for _ in 0..3 {
        let _ = run(&["--config", &cfg, "run"]);
    }
    assert_eq!(posted_names(&sim), vec!["s-1".to_string()]);
    assert_eq!(fleet(&sim, &tag).len(), 3);
    let st = state(&sim);
    let g = &st["groups"]["web"];
    assert!(g["pending"].as_array().unwrap().is_empty(), "{g}");
    assert!(
        g["history"].to_string().contains("\"healthy\""),
        "{}",
        g["history"]
    );
}

/// Issue 14.2: a create that never happened is given up only after enough listings over the
/// consistency window missed it, then repair creates under a new name.
#[test]
fn a_create_that_never_happened_is_given_up_after_the_consistency_window() {
    let sim = Sim::start(&["--droplets", "2", "--seed", "62", "--activate-ms", "200"]);
    let cfg = held_config(
        &sim,
        3,
        "consistency_window = \"2s\"\nconsistency_listings = 3",
    );
    let tag = sim.tag();
    ok(&["--config", &cfg, "scrape"]);
    ok(&["--config", &cfg, "evaluate"]);
    ok(&["--config", &cfg, "plan"]);
    // Killed after recording the intent, before the request.
    let r = run_env(
        &["--config", &cfg, "apply"],
        &[("DOSCALE_FAILPOINT", "after-create-intent")],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    // The next passes miss it in their listings: unknown, nothing created, for the window.
    let t0 = Instant::now();
    let mut passes = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        let r = run(&["--config", &cfg, "run"]);
        assert_eq!(r.code, 0, "{}", r.all());
        passes += 1;
    }
    assert!(passes >= 3, "{passes}");
    assert!(posted_names(&sim).is_empty(), "{:?}", posted_names(&sim));
    std::thread::sleep(Duration::from_millis(700));
    for _ in 0..3 {
        let _ = run(&["--config", &cfg, "run"]);
    }
    assert_eq!(posted_names(&sim), vec!["s-2".to_string()]);
    assert_eq!(fleet(&sim, &tag).len(), 3);
    let h = state(&sim)["groups"]["web"]["history"].to_string();
    assert!(
        h.contains("not created: not listed in 3 listings over 2s"),
        "{h}"
    );
}

/// Issue 14.9b: after a create error whose re-list fails too, the droplets the create made
/// are not written off as failed: the next pass finds them and health-checks them.
#[test]
fn droplets_made_by_a_failed_create_are_found_and_health_checked() {
    let sim = Sim::start(&["--droplets", "2", "--seed", "63", "--activate-ms", "200"]);
    let cfg = held_config(&sim, 3, "timeout = \"800ms\"");
    let tag = sim.tag();
    ok(&["--config", &cfg, "scrape"]);
    ok(&["--config", &cfg, "evaluate"]);
    ok(&["--config", &cfg, "plan"]);
    sim.put("/_sim/faults", json!({"create_latency_ms": 3000}));
    let n0 = sim.requests().len();
    let child = cmd()
        .args(["--config", &cfg, "apply"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The POST is in (and the droplet made): from now on the API fails, so the create times
    // out and the re-list by tag and name fails as well.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sim.requests()[n0..].iter().any(|q| q["method"] == "POST") {
        assert!(Instant::now() < deadline, "no create request");
        std::thread::sleep(Duration::from_millis(10));
    }
    sim.put(
        "/_sim/faults",
        json!({"api_status": 403, "create_latency_ms": 3000}),
    );
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("outcome of s-1 is unknown"), "{all}");
    sim.put("/_sim/faults", json!({}));
    assert_eq!(fleet(&sim, &tag).len(), 3);
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let st = state(&sim);
    let g = &st["groups"]["web"];
    assert!(g["pending"].as_array().unwrap().is_empty(), "{g}");
    let entry = g["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["droplets"][0]["name"] == "s-1")
        .unwrap_or_else(|| panic!("{}", g["history"]));
    assert_eq!(entry["droplets"][0]["outcome"], "healthy", "{entry}");
    assert!(entry["droplets"][0]["id"].is_u64(), "{entry}");
    assert_eq!(posted_names(&sim), vec!["s-1".to_string()]);
}

/// Issue 14.8: hooks get a minimal environment: never the token, never the systemd credential
/// directory, only the documented variables.
#[test]
fn hooks_never_see_the_token_or_the_credentials_directory() {
    let sim = Sim::start(&["--droplets", "1", "--seed", "64", "--activate-ms", "200"]);
    let dir = sim.dir.path();
    let dump = dir.join("hook-env.txt");
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nenv > {}\nexit 0\n", dump.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = held_config(&sim, 2, "");
    let text = read(Path::new(&cfg)).replace(
        "[group.health_check]",
        &format!(
            "[[group.hook]]\non = \"before_create\"\ncommand = [\"{}\"]\n[group.health_check]",
            script.display()
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    // A credentials directory holding the token, as systemd would set it.
    let creds = dir.join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("digitalocean-token"), "dop_v1_fromcredentials").unwrap();
    let r = run_env(
        &["--config", &cfg, "run"],
        &[
            ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()),
            ("DIGITALOCEAN_TOKEN", "dop_v1_fromtheenvironment"),
            ("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_accesstoken"),
            ("SOME_OTHER_SECRET", "hunter2"),
            ("LANG", "C.UTF-8"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let env = read(&dump);
    assert!(!env.is_empty(), "the hook did not run: {}", r.all());
    for bad in [
        "CREDENTIALS_DIRECTORY",
        "DIGITALOCEAN_TOKEN",
        "DIGITALOCEAN_ACCESS_TOKEN",
        "SOME_OTHER_SECRET",
        "dop_v1_",
        "hunter2",
    ] {
        assert!(
            !env.contains(bad),
            "{bad} in the hook's environment:\n{env}"
        );
    }
    let names: BTreeSet<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(names.contains("PATH"), "{env}");
    assert!(env.contains("LANG=C.UTF-8"), "{env}");
    assert!(env.contains("DOSCALE_EVENT=before_create"), "{env}");
    assert!(env.contains("DOSCALE_GROUP=web"), "{env}");
    let allowed = |k: &str| {
        matches!(
            k,
            "PATH"
                | "HOME"
                | "USER"
                | "LOGNAME"
                | "LANG"
                | "LANGUAGE"
                | "TZ"
                | "TMPDIR"
                | "PWD"
                | "SHLVL"
                | "_"
                | "OLDPWD"
        ) || k.starts_with("LC_")
            || k.starts_with("DOSCALE_")
    };
    for k in &names {
        assert!(
            allowed(k),
            "undocumented variable {k} in the hook's environment:\n{env}"
        );
    }
}

/// Issue 14.9c: a group renamed in the configuration while operations are pending is refused
/// (exit 2, naming the old group and the way out); `doscale rename-group` carries its state
/// over; a renamed group without pending operations is only warned about.
#[test]
fn a_renamed_group_with_pending_operations_is_refused_until_carried_over() {
    let sim = Sim::start(&["--droplets", "2", "--seed", "65", "--activate-ms", "200"]);
    let cfg = held_config(&sim, 3, "");
    ok(&["--config", &cfg, "scrape"]);
    ok(&["--config", &cfg, "evaluate"]);
    ok(&["--config", &cfg, "plan"]);
    let r = run_env(
        &["--config", &cfg, "apply"],
        &[("DOSCALE_FAILPOINT", "after-create-request")],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    // The group is renamed in the configuration.
    let renamed = read(Path::new(&cfg)).replace("name = \"web\"", "name = \"front\"");
    std::fs::write(&cfg, &renamed).unwrap();
    let n0 = sim.requests().len();
    for cmd in [&["run"][..], &["plan"], &["apply"]] {
        let mut args = vec!["--config", &cfg];
        args.extend_from_slice(cmd);
        let r = run(&args);
        assert_eq!(r.code, 2, "{cmd:?}: {}", r.all());
        assert!(
            r.stderr.contains("group \"web\"")
                && r.stderr.contains("doscale rename-group web NEW")
                && r.stderr.contains("create s-1"),
            "{cmd:?}: {}",
            r.stderr
        );
    }
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    // Carried over: the pending create is finished under the new name, nothing is made twice.
    let r = run(&["--config", &cfg, "rename-group", "nope", "front"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("holds no group \"nope\""), "{}", r.stderr);
    let r = ok(&["--config", &cfg, "rename-group", "web", "front"]);
    assert!(r.stdout.contains("1 pending operation ("), "{}", r.stdout);
    ok(&["--config", &cfg, "run"]);
    let st = state(&sim);
    assert!(st["groups"].get("web").is_none(), "{}", st["groups"]);
    let g = &st["groups"]["front"];
    assert!(g["pending"].as_array().unwrap().is_empty(), "{g}");
    assert!(g["history"].to_string().contains("\"healthy\""), "{g}");
    assert_eq!(posted_names(&sim), vec!["s-1".to_string()]);
    // Renamed again, nothing pending: a warning that the history is not carried over.
    let again = read(Path::new(&cfg)).replace("name = \"front\"", "name = \"back\"");
    std::fs::write(&cfg, &again).unwrap();
    let r = ok(&["--config", &cfg, "run"]);
    assert!(
        r.stderr.contains("history of group \"front\"")
            && r.stderr.contains("not carried over")
            && r.stderr.contains("doscale rename-group front NEW"),
        "{}",
        r.stderr
    );
}

/// A group of the simulator's droplets with bounds `min`/`max`, `max_step_down` and the
/// guard's share left at its default unless `extra` says otherwise; nothing in the policies.
fn bounded_config(sim: &Sim, min: u32, max: u32, extra: &str) -> String {
    sim.config_with(
        &format!(
            "min = {min}\nmax = {max}\nwarmup = \"0s\"\ncooldown_up = \"0s\"\ncooldown_down = \"0s\"\n{extra}\n"
        ),
        "",
    )
}

fn deletes(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|q| q["method"] == "DELETE")
        .count()
}

/// Issue 14.10: a fleet far above `max` (a do-scaler fleet whose imported max only capped
/// creation) loses `max_step_down` droplets a pass, not the whole surplus at once.
#[test]
fn a_fleet_far_above_max_shrinks_by_max_step_down_a_pass() {
    let sim = Sim::start(&["--droplets", "20", "--seed", "140"]);
    let tag = sim.tag();
    let cfg = bounded_config(&sim, 1, 8, "");
    let r = ok(&["--config", &cfg, "run"]);
    assert_eq!(fleet(&sim, &tag).len(), 19, "{}", r.all());
    let r = ok(&["--config", &cfg, "plan"]);
    assert!(
        r.stdout
            .contains("at most max_step_down 1 per pass (10 more to go after this pass)"),
        "{}",
        r.stdout
    );
}

/// Issue 14.10: a plan that destroys more than `max_destroy_share` of the group is refused by
/// apply (nothing sent, exit 1, the way out named) unless `--force`; `plan` marks it.
#[test]
fn apply_refuses_a_plan_destroying_more_than_max_destroy_share_unless_forced() {
    let sim = Sim::start(&["--droplets", "8", "--seed", "141"]);
    let tag = sim.tag();
    let cfg = bounded_config(&sim, 0, 2, "max_step_down = 10");
    ok(&["--config", &cfg, "scrape"]);
    ok(&["--config", &cfg, "evaluate"]);
    let r = ok(&["--config", &cfg, "plan"]);
    assert!(
        r.stdout.contains("guard: 6 of 8 droplets to destroy in one pass is more than max_destroy_share 50% allows (4)"),
        "{}",
        r.stdout
    );
    for dry in [true, false] {
        let mut args = vec!["--config", cfg.as_str(), "apply"];
        if dry {
            args.push("--dry-run");
        }
        let r = run(&args);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("the plan destroys 6 of 8 droplets, more than max_destroy_share 50% allows in one pass (4): nothing was sent")
                && r.stderr.contains("doscale apply --force"),
            "{}",
            r.stderr
        );
        assert_eq!(deletes(&sim), 0);
        assert_eq!(fleet(&sim, &tag).len(), 8);
    }
    // `run` holds to the same guard.
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(deletes(&sim), 0);
    // The operator who checked the plan forces it.
    let r = ok(&["--config", &cfg, "apply", "--force"]);
    assert_eq!(deletes(&sim), 6, "{}", r.all());
    assert_eq!(fleet(&sim, &tag).len(), 2);
}

#[test]
fn max_destroy_share_out_of_range_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for v in ["0", "0.0", "1.5", "-0.1", "nan"] {
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            format!(
                "[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\nmax_destroy_share = {v}\n"
            ),
        )
        .unwrap();
        let r = run(&["--config", p.to_str().unwrap(), "check"]);
        assert_eq!(r.code, 2, "{v}: {}", r.all());
        assert!(
            r.stderr.contains("max_destroy_share")
                && r.stderr.contains("a share above 0.0 and up to 1.0"),
            "{v}: {}",
            r.stderr
        );
    }
}

/// Issue 14.10: import-seed says, in the file and on stderr, that do-scaler's max only capped
/// creation.
#[test]
fn import_seed_warns_that_do_scalers_max_only_capped_creation() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/do-scaler/conf.d/web.cfg.example"
    );
    let args = ["import-seed", example];
    let r = ok(&args);
    assert!(
        r.stderr
            .contains("do-scaler used max only to stop creating"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("# do-scaler used max only to stop creating"),
        "{}",
        r.stdout
    );
}
