//! The foundation: config errors, scrape over pages, failures named in bounded time, state
//! file, lock.

use std::time::Duration;

use crate::common::*;

#[test]
fn scrape_lists_every_page_and_keeps_a_small_state() {
    let sim = Sim::start(&["--droplets", "450", "--seed", "7"]);
    let r = ok(&["--config", sim.cfg(), "scrape", "--output", "json"]);
    let ds = droplets(&r.json());
    assert_eq!(ds.len(), 450);
    assert!(ds
        .iter()
        .all(|d| d["error"].is_null() && !d["series"].as_object().unwrap().is_empty()));
    let cpu_idle = ds[0]["series"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("node_cpu_seconds_total"))
        .count();
    assert!(cpu_idle > 0 && ds[0]["series"]["node_load1"].is_number());
    let pages: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["path"].as_str().unwrap().trim_end_matches('/') == "/v2/droplets"
        })
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages
        .iter()
        .all(|p| p["query"].as_str().unwrap_or("").contains("per_page=200")));
    let state_path = sim.path("state.json");
    let state: serde_json::Value = serde_json::from_str(&read(&state_path)).unwrap();
    assert_eq!(state["version"], 1);
    let per = std::fs::metadata(&state_path).unwrap().len() / 450;
    assert!(per < 1024, "state is {per} bytes per droplet");
    // the table names every droplet
    let t = ok(&["--config", sim.cfg(), "scrape"]);
    assert!(
        t.stdout.contains("load1") && t.stdout.contains("CPU %"),
        "{}",
        t.stdout
    );
}

#[test]
fn failing_droplets_are_named_and_cost_at_most_the_timeout() {
    let sim = Sim::start(&["--droplets", "6", "--seed", "3"]);
    let ds = droplets(&ok(&["--config", sim.cfg(), "scrape", "--output", "json"]).json());
    let ids: Vec<u64> = ds.iter().map(|d| d["id"].as_u64().unwrap()).collect();
    sim.put("/_sim/faults", serde_json::json!({"droplets_refuse": [ids[0]], "droplets_timeout": [ids[1]], "droplets_garbage": [ids[2]]}));
    let cfg = sim.config_with(
        "min = 1\nmax = 10\n[group.metrics]\ntimeout = \"1s\"\nport = PORT"
            .replace("PORT", &sim.metrics_port().to_string())
            .as_str(),
        "",
    );
    let r = ok(&["--config", &cfg, "scrape", "--output", "json"]);
    assert!(r.wall < Duration::from_secs(5), "took {:?}", r.wall);
    let errs: std::collections::BTreeMap<u64, String> = droplets(&r.json())
        .iter()
        .filter(|d| !d["error"].is_null())
        .map(|d| {
            (
                d["id"].as_u64().unwrap(),
                d["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(errs.keys().copied().collect::<Vec<_>>(), {
        let mut v = ids[..3].to_vec();
        v.sort();
        v
    });
    assert!(errs[&ids[0]].contains("refused"), "{}", errs[&ids[0]]);
    assert!(errs[&ids[1]].contains("timed out"), "{}", errs[&ids[1]]);
    assert!(errs[&ids[2]].contains("exposition"), "{}", errs[&ids[2]]);
}

#[test]
fn config_errors_name_file_line_column_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\nnonsense_key = 3\n", "nonsense_key", 6),
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\ncooldown_up = \"3 weeks-ish\"\n", "cooldown_up", 6),
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 3\nmax = 2\n", "max", 5),
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n[group.metrics]\naddress = \"carrier-pigeon\"\n", "metrics.address", 7),
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\nremove = \"random\"\n", "remove", 6),
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\n", "max", 1),
        ("[api]\nurl = \"http://api.example.com\"\n[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n", "api.url", 2),
        ("[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n[[group.policy]]\nname = \"p\"\nscale = \"sideways\"\nconditions = []\n", "scale", 8),
    ];
    for (i, (text, key, line)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let r = run(&["--config", p.to_str().unwrap(), "check"]);
        assert_eq!(r.code, 2, "case {i}: {}", r.all());
        let want = format!("bad{i}.toml:{line}:");
        assert!(
            r.stderr.contains(&want),
            "case {i}: want {want} in {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(key),
            "case {i}: want key {key} in {}",
            r.stderr
        );
    }
    // missing file
    let r = run(&["--config", "/nonexistent/doscale.toml", "check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent/doscale.toml"));
    // the example configuration passes
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/config/doscale.toml");
    let r = run(&["--config", ex, "check"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn a_second_concurrent_run_fails_fast_naming_the_lock() {
    let sim = Sim::start(&["--droplets", "5", "--latency-ms", "2500"]);
    let mut first = cmd()
        .args(["--config", sim.cfg(), "scrape"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let r = run(&["--config", sim.cfg(), "scrape"]);
    first.wait().unwrap();
    assert_ne!(r.code, 0);
    assert!(r.wall < Duration::from_secs(2), "{:?}", r.wall);
    assert!(
        r.stderr.contains("locked") && r.stderr.contains("pid"),
        "{}",
        r.stderr
    );
    // --wait waits instead
    let mut first = cmd()
        .args(["--config", sim.cfg(), "scrape"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let r = run(&["--config", sim.cfg(), "--wait-for", "30s", "scrape"]);
    first.wait().unwrap();
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn no_token_is_a_clear_error_and_check_only_warns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, format!("state_file = \"{}/s.json\"\n[api]\nurl = \"http://127.0.0.1:9\"\n[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n", dir.path().display())).unwrap();
    let r = run(&["--config", p.to_str().unwrap(), "scrape"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("DIGITALOCEAN_TOKEN"), "{}", r.stderr);
    let r = run(&["--config", p.to_str().unwrap(), "check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("token"), "{}", r.stderr);
}

#[test]
fn help_version_and_completions() {
    let r = ok(&["--version"]);
    assert!(r.stdout.starts_with("doscale "));
    let r = ok(&["--help"]);
    for s in [
        "scrape",
        "evaluate",
        "plan",
        "apply",
        "run",
        "demo",
        "sim",
        "check",
        "status",
        "import-seed",
        "completions",
    ] {
        assert!(r.stdout.contains(s), "--help lacks {s}");
    }
    let r = ok(&["completions", "bash"]);
    assert!(r.stdout.contains("evaluate"));
    let r = run(&["scrape", "--output", "yaml"]);
    assert_eq!(r.code, 2);
}

#[test]
fn a_token_file_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "dop_v1_notreal\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[api]\ntoken_file = \"{}\"\n[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n",
            token.display()
        ),
    )
    .unwrap();
    let r = ok(&["--config", p.to_str().unwrap(), "check"]);
    assert!(r.stderr.contains("readable by every user"), "{}", r.stderr);
    assert!(!r.all().contains("dop_v1_notreal"));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = ok(&["--config", p.to_str().unwrap(), "check"]);
    assert!(!r.stderr.contains("readable by every user"), "{}", r.stderr);
}
