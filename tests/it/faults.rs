//! The fault matrix: the promises hold whatever the API, the droplets or the disk do.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

const SECRET: &str = "dop_v1_test0secret0ffffffffffffffffffffffffffffffffffffffffffffffff";

fn ids(sim: &Sim) -> Vec<u64> {
    droplets(&ok(&["--config", sim.cfg(), "scrape", "--output", "json"]).json())
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn api_429_storm_is_retried_and_the_pass_completes() {
    let sim = Sim::start(&["--droplets", "450", "--seed", "21"]);
    sim.put(
        "/_sim/faults",
        json!({"api_status": 429, "api_fail_every": 2}),
    );
    let n0 = sim.requests().len();
    let r = run_env(
        &["--config", sim.cfg(), "scrape", "--output", "json"],
        &[("RUST_LOG", "debug"), ("DIGITALOCEAN_TOKEN", SECRET)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(droplets(&r.json()).len(), 450);
    assert!(
        r.stderr.contains("429"),
        "the retry is logged: {}",
        r.stderr
    );
    assert!(!r.all().contains(SECRET));
    let lists = sim.requests()[n0..]
        .iter()
        .filter(|q| q["path"] == "/v2/droplets")
        .count();
    assert!(lists >= 4, "{lists}");
}

#[test]
fn api_500_on_every_request_fails_cleanly_within_a_bound() {
    let sim = Sim::start(&["--droplets", "3"]);
    ok(&["--config", sim.cfg(), "scrape"]);
    let before = read(&sim.path("state.json"));
    sim.put("/_sim/faults", json!({"api_status": 503}));
    let r = run(&["--config", sim.cfg(), "scrape"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("503"), "{}", r.stderr);
    assert!(r.wall < Duration::from_secs(40), "{:?}", r.wall);
    assert_eq!(
        read(&sim.path("state.json")),
        before,
        "a failed listing must not change the state"
    );
}

#[test]
fn malformed_and_truncated_api_bodies_are_clear_errors() {
    let sim = Sim::start(&["--droplets", "3"]);
    for fault in ["api_malformed", "api_truncated"] {
        sim.put("/_sim/faults", json!({fault: true}));
        let r = run(&["--config", sim.cfg(), "scrape"]);
        assert_eq!(r.code, 1, "{fault}: {}", r.all());
        assert!(r.stderr.contains("/v2/droplets"), "{fault}: {}", r.stderr);
    }
}

#[test]
fn droplets_misbehaving_are_named_and_bounded() {
    let sim = Sim::start(&["--droplets", "8", "--seed", "4"]);
    let ids = ids(&sim);
    sim.put(
        "/_sim/faults",
        json!({"droplets_garbage": [ids[0]], "droplets_trickle": [ids[1]], "droplets_huge": [ids[2]],
               "droplets_redirect": [ids[3]], "droplets_linklocal": [ids[4]], "droplets_timeout": [ids[5]]}),
    );
    let cfg = sim.config_with(&format!("min = 1\nmax = 10\n[group.metrics]\nport = {}\ntimeout = \"1500ms\"\nmax_body = \"1MB\"", sim.metrics_port()), "");
    let n0 = sim.requests().len();
    let r = ok(&["--config", &cfg, "scrape", "--output", "json"]);
    assert!(r.wall < Duration::from_secs(6), "{:?}", r.wall);
    let ds = droplets(&r.json());
    let err = |id: u64| {
        ds.iter().find(|d| d["id"].as_u64() == Some(id)).unwrap()["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(err(ids[0]).contains("exposition"), "{}", err(ids[0]));
    assert!(err(ids[1]).contains("timed out"), "{}", err(ids[1]));
    assert!(err(ids[2]).contains("limit"), "{}", err(ids[2]));
    assert!(err(ids[3]).contains("redirect"), "{}", err(ids[3]));
    assert!(err(ids[4]).contains("link-local"), "{}", err(ids[4]));
    assert!(err(ids[5]).contains("timed out"), "{}", err(ids[5]));
    assert!(ds.iter().filter(|d| d["error"].is_null()).count() == 2);
    assert!(
        !sim.requests()[n0..]
            .iter()
            .any(|q| q["path"] == "/_sim/redirected"),
        "a redirect was followed"
    );
}

#[test]
fn a_corrupt_or_newer_state_is_named_and_kept() {
    let sim = Sim::start(&["--droplets", "2"]);
    let state = sim.path("state.json");
    for bad in [
        "{\"version\": 1, \"groups\": {",
        "{\"version\": 99, \"groups\": {}}",
    ] {
        std::fs::write(&state, bad).unwrap();
        let r = run(&["--config", sim.cfg(), "scrape"]);
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains("state.json") && r.stderr.contains("move it aside"),
            "{}",
            r.stderr
        );
        assert_eq!(read(&state), bad);
    }
}

#[test]
fn a_read_only_state_directory_keeps_the_previous_state() {
    if unsafe_is_root() {
        // root writes into a read-only directory anyway: check the refusal of a state
        // directory that is not there instead.
        let sim = Sim::start(&["--droplets", "2"]);
        let cfg = sim.config_with("min = 1\nmax = 3", "");
        let text = read(std::path::Path::new(&cfg)).replace(
            &sim.path("state.json").display().to_string(),
            "/nonexistent-dir/state.json",
        );
        std::fs::write(&cfg, text).unwrap();
        let r = run(&["--config", &cfg, "scrape"]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(r.stderr.contains("/nonexistent-dir"), "{}", r.stderr);
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&["--droplets", "2"]);
    let d = tempfile::tempdir().unwrap();
    let cfg = sim.config_with("min = 1\nmax = 3", "");
    let text = read(std::path::Path::new(&cfg)).replace(
        &sim.path("state.json").display().to_string(),
        &d.path().join("state.json").display().to_string(),
    );
    std::fs::write(&cfg, text).unwrap();
    ok(&["--config", &cfg, "scrape"]);
    let before = read(&d.path().join("state.json"));
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let r = run(&["--config", &cfg, "scrape"]);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(r.code, 1);
    assert_eq!(read(&d.path().join("state.json")), before);
}

fn unsafe_is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || read(std::path::Path::new("/proc/self/status"))
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn the_token_never_shows() {
    let sim = Sim::start(&["--droplets", "3", "--activate-ms", "200"]);
    let cfg = sim.config_with(&format!(
        "min = 1\nmax = 5\nwarmup = \"0s\"\ncooldown_up = \"0s\"\n[group.template]\nname = \"t-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.health_check]\nports = [{p}]\ninterval = \"100ms\"\nmax_tries = 50\n[group.metrics]\nport = {p}\n[[group.policy]]\nname = \"always\"\nscale = \"up\"\nconditions = [ {{ name = \"l\", expr = \"node_load1\", function = \"min\", op = \">=\", threshold = 0 }} ]",
        p = sim.metrics_port()
    ), "");
    let env = [("DIGITALOCEAN_TOKEN", SECRET), ("RUST_LOG", "trace")];
    let mut outputs = Vec::new();
    for args in [
        vec!["run", "--dry-run", "--output", "json"],
        vec!["run"],
        vec!["status"],
        vec!["check"],
    ] {
        let mut a = vec!["--config", cfg.as_str()];
        a.extend(args);
        outputs.push(run_env(&a, &env).all());
    }
    // and with the API refusing (errors carry no token either)
    sim.put("/_sim/faults", json!({"api_status": 500}));
    outputs.push(run_env(&["--config", &cfg, "scrape"], &env).all());
    outputs.push(sim.log());
    outputs.push(read(&sim.path("state.json")));
    outputs.push(serde_json::to_string(&sim.requests()).unwrap());
    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(SECRET), "the token appears in output {i}");
        assert!(
            !o.contains("test0secret"),
            "part of the token appears in output {i}"
        );
    }
}

#[test]
fn a_failing_before_create_hook_cancels_the_create() {
    let sim = Sim::start(&["--droplets", "2", "--activate-ms", "200"]);
    let dir = sim.dir.path();
    let seen = dir.join("hook-stdin.json");
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > {}\necho 'not today' >&2\nexit 7\n",
            seen.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = sim.config_with(&format!(
        "min = 1\nmax = 5\nwarmup = \"0s\"\ncooldown_up = \"0s\"\n[group.template]\nname = \"h-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.metrics]\nport = {p}\n[[group.policy]]\nname = \"always\"\nscale = \"up\"\nconditions = [ {{ name = \"l\", expr = \"node_load1\", function = \"min\", op = \">=\", threshold = 0 }} ]\n[[group.hook]]\non = \"before_create\"\ncommand = [\"{s}\", \"{{group}}\"]\ntimeout = \"5s\"",
        p = sim.metrics_port(),
        s = script.display()
    ), "");
    let n0 = sim.requests().len();
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("not today") && r.all().contains("cancelled"),
        "{}",
        r.all()
    );
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    let ev: serde_json::Value = serde_json::from_str(&read(&seen)).unwrap();
    assert_eq!(ev["event"], "before_create");
}

#[test]
fn create_errors_and_never_active_droplets_are_reported_not_duplicated() {
    let sim = Sim::start(&["--droplets", "2", "--activate-ms", "200"]);
    let cfg = sim.config_with(&format!(
        "min = 1\nmax = 5\nwarmup = \"0s\"\ncooldown_up = \"0s\"\nmax_step_up = 1\n[group.template]\nname = \"e-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.health_check]\nports = [{p}]\ninterval = \"100ms\"\nmax_tries = 20\n[group.metrics]\nport = {p}\n[[group.policy]]\nname = \"always\"\nscale = \"up\"\nconditions = [ {{ name = \"l\", expr = \"node_load1\", function = \"min\", op = \">=\", threshold = 0 }} ]",
        p = sim.metrics_port()
    ), "");
    sim.put("/_sim/faults", json!({"create_error": true}));
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("disappeared") || r.all().contains("errored"),
        "{}",
        r.all()
    );
    sim.put("/_sim/faults", json!({"never_active": true}));
    let n0 = sim.requests().len();
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("not active"), "{}", r.all());
    // the next pass waits for the pending droplet instead of creating another one
    let r = run(&["--config", &cfg, "run", "--output", "json"]);
    let posts = sim.requests()[n0..]
        .iter()
        .filter(|q| q["method"] == "POST")
        .count();
    assert_eq!(posts, 1, "{}", r.all());
    assert!(r.stdout.contains("pending"), "{}", r.stdout);
}

fn growing_config(sim: &Sim, extra: &str) -> String {
    sim.config_with(&format!(
        "min = 1\nmax = 5\nwarmup = \"0s\"\ncooldown_up = \"0s\"\nmax_step_up = 2\n{extra}\n[group.template]\nname = \"g-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.health_check]\nports = [{p}]\ninterval = \"100ms\"\nmax_tries = 50\n[group.metrics]\nport = {p}\n[[group.policy]]\nname = \"always\"\nscale = \"up\"\nstep = 2\nconditions = [ {{ name = \"l\", expr = \"node_load1\", function = \"min\", op = \">=\", threshold = 0 }} ]",
        p = sim.metrics_port()
    ), "")
}

fn names_unique(sim: &Sim, cfg: &str) -> usize {
    let ds = droplets(&ok(&["--config", cfg, "scrape", "--output", "json"]).json());
    let names: std::collections::BTreeSet<_> = ds
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), ds.len(), "duplicate names: {ds:?}");
    let _ = sim;
    ds.len()
}

#[test]
fn api_errors_during_apply_never_duplicate_or_overshoot() {
    let sim = Sim::start(&["--droplets", "2", "--seed", "17", "--activate-ms", "200"]);
    let cfg = growing_config(&sim, "");
    // A create answered with a 500 may have been made: its outcome stays unknown until two
    // listings at least 1 s apart missed it.
    let text = read(std::path::Path::new(&cfg)).replace(
        "[api]\n",
        "[api]\nconsistency_window = \"1s\"\nconsistency_listings = 2\n",
    );
    std::fs::write(&cfg, text).unwrap();
    ok(&["--config", &cfg, "scrape"]);
    // every second API request fails with 500 from here on: listing and polling are
    // retried, a create is never retried blindly
    sim.put(
        "/_sim/faults",
        json!({"api_status": 500, "api_fail_every": 2}),
    );
    for _ in 0..4 {
        let _ = run(&["--config", &cfg, "run"]);
    }
    sim.put("/_sim/faults", json!({}));
    for _ in 0..6 {
        let r = run(&["--config", &cfg, "run"]);
        assert!(r.code == 0 || r.code == 1, "{}", r.all());
        assert!(names_unique(&sim, &cfg) <= 5);
        std::thread::sleep(Duration::from_millis(300));
    }
    let n = names_unique(&sim, &cfg);
    assert!(n <= 5, "above max: {n}");
    assert_eq!(
        n, 5,
        "the group did not converge to max once the API recovered"
    );
}

#[test]
fn a_slow_api_is_waited_for_or_cut_off_cleanly() {
    let sim = Sim::start(&["--droplets", "3"]);
    sim.put("/_sim/faults", json!({"api_latency_ms": 700}));
    let r = ok(&["--config", sim.cfg(), "scrape", "--output", "json"]);
    assert_eq!(droplets(&r.json()).len(), 3);
    // an API slower than [api] timeout: each try is cut off, retried, then the pass fails
    let cfg = sim.config_with("min = 1\nmax = 3", "");
    let text = read(std::path::Path::new(&cfg)).replace("[api]\n", "[api]\ntimeout = \"300ms\"\n");
    std::fs::write(&cfg, text).unwrap();
    let r = run(&["--config", &cfg, "scrape"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(r.wall < Duration::from_secs(20), "{:?}", r.wall);
}

#[test]
fn a_droplet_losing_the_group_tag_mid_pass_is_never_destroyed() {
    let sim = Sim::start(&["--droplets", "4", "--seed", "23"]);
    let cfg = sim.config_with(
        &format!("min = 1\nmax = 5\nwarmup = \"0s\"\ncooldown_down = \"0s\"\nmax_step_down = 3\nmax_destroy_share = 1.0\n[group.metrics]\nport = {}\n[[group.policy]]\nname = \"shrink\"\nscale = \"down\"\nstep = 3\nconditions = [ {{ name = \"l\", expr = \"node_load1\", function = \"min\", op = \">=\", threshold = 0 }} ]", sim.metrics_port()),
        "",
    );
    ok(&["--config", &cfg, "scrape"]);
    ok(&["--config", &cfg, "evaluate"]);
    let plan = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    let victim = plan["groups"][0]["destroy"][0]["id"]
        .as_u64()
        .expect("a destroy planned");
    sim.put(
        &format!("/_sim/droplets/{victim}/tags"),
        json!(["someone-else"]),
    );
    let n0 = sim.requests().len();
    let r = run(&["--config", &cfg, "apply"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("changed since the plan"), "{}", r.stderr);
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    // and a fresh pass leaves it alone: it is no longer in the group
    ok(&["--config", &cfg, "run"]);
    let all = sim.get("/_sim/droplets");
    assert!(
        all.to_string().contains(&victim.to_string()),
        "the untagged droplet was destroyed"
    );
}

#[test]
fn a_full_disk_leaves_the_previous_state_intact() {
    let sim = Sim::start(&["--droplets", "30"]);
    ok(&["--config", sim.cfg(), "scrape"]);
    let state = sim.path("state.json");
    let before = read(&state);
    assert!(before.len() > 4096);
    // a file size limit of 4 KiB makes every write past it fail (EFBIG), as a full disk does
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 4; exec \"{BIN}\" --config \"{}\" scrape",
            sim.cfg()
        ))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("state file") && stderr.contains("intact"),
        "{stderr}"
    );
    assert_eq!(read(&state), before);
    let leftovers: Vec<_> = std::fs::read_dir(sim.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "a temporary file was left behind");
}

/// A created droplet whose health-check port never answers: reported, recorded as unhealthy in
/// the history, and destroyed only when `on_unhealthy = "destroy"`.
#[test]
fn an_unhealthy_new_droplet_is_reported_and_destroyed_only_when_asked() {
    // a port nothing listens on: bound, then released
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for on_unhealthy in ["keep", "destroy"] {
        let sim = Sim::start(&["--droplets", "1", "--activate-ms", "100"]);
        let cfg = sim.config_with(&format!(
            "min = 1\nmax = 2\nwarmup = \"0s\"\ncooldown_up = \"0s\"\nmax_step_up = 1\non_unhealthy = \"{on_unhealthy}\"\n[group.template]\nname = \"u-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.health_check]\nports = [{closed}]\ninterval = \"100ms\"\ntimeout = \"200ms\"\nmax_tries = 3\n[group.metrics]\nport = {p}\n[[group.policy]]\nname = \"always\"\nscale = \"up\"\nconditions = [ {{ name = \"l\", expr = \"node_load1\", function = \"min\", op = \">=\", threshold = 0 }} ]",
            p = sim.metrics_port()
        ), "");
        let before = ids(&sim);
        let r = run(&["--config", &cfg, "run"]);
        assert_eq!(r.code, 1, "{on_unhealthy}: {}", r.all());
        assert!(r.all().contains("unhealthy"), "{on_unhealthy}: {}", r.all());
        let created: Vec<u64> = ids(&sim)
            .into_iter()
            .filter(|i| !before.contains(i))
            .collect();
        let deletes: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|q| q["method"] == "DELETE")
            .collect();
        if on_unhealthy == "keep" {
            assert_eq!(created.len(), 1, "kept: {}", r.all());
            assert!(deletes.is_empty(), "{deletes:?}");
        } else {
            assert!(created.is_empty(), "not destroyed: {}", r.all());
            assert_eq!(deletes.len(), 1, "{deletes:?}");
            // never the droplet that was there before
            assert!(!deletes[0]["path"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{}", before[0])));
        }
        let st = ok(&["--config", &cfg, "status", "--output", "json"]).stdout;
        assert!(st.contains("unhealthy"), "history: {st}");
    }
}

/// Issue 14.1: a droplet that fails one scrape and recovers has no rate on the next pass (no
/// previous scrape to compare with). It used to drop out of the group's sum while the status
/// line still said "reporting 4/4", and the other three alone shrank the group 4 → 1 where
/// full data said 4 → 5.
#[test]
fn a_droplet_missing_one_scrape_never_shrinks_the_group() {
    let sim = Sim::start(&["--droplets", "4", "--seed", "31"]);
    // 3.2 fully busy droplets' worth of work over 4: each about 80% busy, 3.2 busy CPUs in all.
    sim.put("/_sim/load", json!({"demand": 3.2}));
    let busy = r#"1 - avg(rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))"#;
    let cfg = sim.config_with(
        &format!(
            "min = 1\nmax = 10\nwarmup = \"0s\"\ncooldown_up = \"0s\"\ncooldown_down = \"0s\"\nmax_step_down = 3\n\
             [group.template]\nname = \"g-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n\
             [group.metrics]\nport = {p}\n\
             [[group.policy]]\nname = \"busy\"\nscale = \"up\"\nconditions = [ {{ name = \"cpus\", expr = \"{busy}\", function = \"sum\", op = \">=\", threshold = 3.0 }} ]\n\
             [[group.policy]]\nname = \"idle\"\nscale = \"down\"\nstep = 3\nconditions = [ {{ name = \"cpus\", expr = \"{busy}\", function = \"sum\", op = \"<\", threshold = 3.0 }} ]",
            p = sim.metrics_port()
        ),
        "",
    );
    let pass = || {
        std::thread::sleep(Duration::from_millis(1200));
        ok(&["--config", &cfg, "scrape"]);
        let table = ok(&["--config", &cfg, "evaluate"]).stdout;
        let plan = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
        (table, plan["groups"][0].clone())
    };
    let ids = ids(&sim);
    assert_eq!(ids.len(), 4);
    ok(&["--config", &cfg, "scrape"]);
    // Full data: 3.2 busy CPUs ≥ 3, grow.
    let (_, p) = pass();
    assert_eq!(
        (p["current"].as_u64(), p["desired"].as_u64()),
        (Some(4), Some(5)),
        "{p}"
    );
    // One droplet fails a scrape: 3 of 4 reported, no shrink.
    sim.put("/_sim/faults", json!({"droplets_refuse": [ids[0]]}));
    let (_, p) = pass();
    assert_eq!(p["destroy"].as_array().map(Vec::len), Some(0), "{p}");
    // It recovers: scraped again, but its rate has no previous scrape. The other three alone
    // sum to 2.4 < 3 and would say "shrink by 3".
    sim.put("/_sim/faults", json!({}));
    let (table, p) = pass();
    assert_eq!(p["destroy"].as_array().map(Vec::len), Some(0), "{p}");
    assert_eq!(p["desired"].as_u64(), Some(4), "{p}");
    let why = p["reasons"].to_string();
    assert!(
        why.contains(
            "min_reporting: condition cpus of scale-down policy idle has a value from 3 of 4"
        ) && why.contains(&format!("none from {}", ids[0])),
        "{why}"
    );
    assert!(
        table.contains("reporting 4/4 eligible; values: busy/cpus 3/4, idle/cpus 3/4"),
        "{table}"
    );
    assert!(table.contains("not met by busy/cpus, idle/cpus"), "{table}");
    assert!(
        table.contains(&format!("no value for busy/cpus, idle/cpus: {} ", ids[0])),
        "{table}"
    );
    let n0 = sim.requests().len();
    ok(&["--config", &cfg, "apply"]);
    assert!(mutating(&sim.requests()[n0..]).is_empty());
    // The next pass has full data again: grow.
    let (_, p) = pass();
    assert_eq!(p["desired"].as_u64(), Some(5), "{p}");
}
