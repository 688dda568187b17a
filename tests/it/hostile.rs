//! A hostile or broken API (pagination that never ends or points elsewhere, droplets listed
//! twice), droplets serving pages too big to read in time, and a state directory where
//! someone planted symlinks: each is refused or absorbed, named, and bounded.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

fn list_calls(sim: &Sim, from: usize) -> usize {
    sim.requests()[from..]
        .iter()
        .filter(|q| q["method"] == "GET" && q["path"] == "/v2/droplets")
        .count()
}

#[test]
fn a_next_link_to_itself_stops_the_listing() {
    let sim = Sim::start(&["--droplets", "5"]);
    ok(&["--config", sim.cfg(), "scrape"]);
    let before = read(&sim.path("state.json"));
    sim.put("/_sim/faults", json!({"next_link": "self", "page_size": 2}));
    let n0 = sim.requests().len();
    let r = run(&["--config", sim.cfg(), "scrape"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("links.pages.next") && r.stderr.contains("again"),
        "{}",
        r.stderr
    );
    assert!(r.wall < Duration::from_secs(10), "{:?}", r.wall);
    assert_eq!(list_calls(&sim, n0), 1, "page 1 is never asked for twice");
    assert_eq!(read(&sim.path("state.json")), before, "nothing stored");
}

#[test]
fn endless_pages_beyond_the_total_stop_the_listing() {
    let sim = Sim::start(&["--droplets", "5"]);
    sim.put(
        "/_sim/faults",
        json!({"next_link": "endless", "page_size": 2}),
    );
    let n0 = sim.requests().len();
    let r = run(&["--config", sim.cfg(), "scrape"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("more pages") && r.stderr.contains("total"),
        "{}",
        r.stderr
    );
    // 5 droplets at 2 a page: 3 pages, then the 4th one is refused
    assert!(list_calls(&sim, n0) <= 4, "{}", list_calls(&sim, n0));
}

#[test]
fn a_foreign_next_link_is_refused_and_never_contacted() {
    let sim = Sim::start(&["--droplets", "5"]);
    // Listen where the foreign link points (127.0.0.2, the API's port), to see that nothing
    // ever arrives there.
    let port = sim.conf["api"]["url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse::<u16>()
        .unwrap();
    let trap = std::net::TcpListener::bind(("127.0.0.2", port)).ok();
    if let Some(t) = &trap {
        t.set_nonblocking(true).unwrap();
    }
    sim.put(
        "/_sim/faults",
        json!({"next_link": "foreign", "page_size": 2}),
    );
    let n0 = sim.requests().len();
    let r = run(&["--config", sim.cfg(), "scrape"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("127.0.0.2") && r.stderr.contains("not this API"),
        "{}",
        r.stderr
    );
    assert_eq!(list_calls(&sim, n0), 1);
    if let Some(t) = trap {
        assert!(t.accept().is_err(), "the foreign host was contacted");
    }
}

#[test]
fn pages_smaller_than_asked_are_all_listed() {
    let sim = Sim::start(&["--droplets", "7"]);
    sim.put("/_sim/faults", json!({"page_size": 2}));
    let n0 = sim.requests().len();
    let r = ok(&["--config", sim.cfg(), "scrape", "--output", "json"]);
    let ds = droplets(&r.json());
    assert_eq!(ds.len(), 7);
    assert_eq!(list_calls(&sim, n0), 4);
}

#[test]
fn duplicate_ids_are_collapsed_and_a_group_below_min_is_repaired() {
    let sim = Sim::start(&["--droplets", "2", "--activate-ms", "200"]);
    let cfg = sim.config_with(
        &format!(
            "min = 3\nmax = 5\nwarmup = \"0s\"\n[group.template]\nname = \"d-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\n[group.health_check]\nports = [{p}]\ninterval = \"100ms\"\nmax_tries = 50\n[group.metrics]\nport = {p}",
            p = sim.metrics_port()
        ),
        "",
    );
    sim.put("/_sim/faults", json!({"duplicate_ids": true}));
    let r = run(&["--config", &cfg, "scrape", "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let ds = droplets(&r.json());
    assert_eq!(ds.len(), 2, "each droplet once: {ds:?}");
    let dup = ds[0]["id"].as_u64().unwrap();
    assert!(
        r.stderr.contains("more than once") && r.stderr.contains(&dup.to_string()),
        "the duplicate is named: {}",
        r.stderr
    );
    let n0 = sim.requests().len();
    let r = run(&["--config", &cfg, "run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let posts = sim.requests()[n0..]
        .iter()
        .filter(|q| q["method"] == "POST")
        .count();
    assert_eq!(posts, 1, "one create brings the group to min: {}", r.all());
    sim.delete("/_sim/faults");
    let ds = droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json());
    assert_eq!(ds.len(), 3);
}

fn many_series_config(sim: &Sim, metrics: &str) -> String {
    sim.config_with(
        &format!(
            "min = 1\nmax = 10\n[group.metrics]\nport = {}\n{metrics}",
            sim.metrics_port()
        ),
        "",
    )
}

#[test]
fn a_page_with_too_many_series_is_refused_naming_the_cap() {
    let sim = Sim::start(&["--droplets", "3"]);
    let big = ids_of(&sim)[1];
    sim.put("/_sim/faults", json!({"droplets_many_series": [big]}));
    let cfg = many_series_config(&sim, "");
    let r = ok(&["--config", &cfg, "scrape", "--output", "json"]);
    let ds = droplets(&r.json());
    let d = ds.iter().find(|d| d["id"].as_u64() == Some(big)).unwrap();
    let e = d["error"].as_str().unwrap_or("");
    assert!(e.contains("max_series") && e.contains("20000"), "{e}");
    assert_eq!(ds.iter().filter(|d| d["error"].is_null()).count(), 2);
    assert!(d["series"].as_object().is_none_or(|s| s.is_empty()));
    let size = std::fs::metadata(sim.path("state.json")).unwrap().len();
    assert!(size < 64 * 1024, "the state stays small: {size} bytes");
    // a lower cap, set by the operator, is named too
    let cfg = many_series_config(&sim, "max_series = 50");
    let r = ok(&["--config", &cfg, "scrape", "--output", "json"]);
    let ds = droplets(&r.json());
    let d = ds.iter().find(|d| d["id"].as_u64() == Some(big)).unwrap();
    assert!(d["error"].as_str().unwrap().contains("50"), "{d}");
}

#[test]
fn reading_a_page_counts_inside_the_per_droplet_timeout() {
    let sim = Sim::start(&["--droplets", "2"]);
    let big = ids_of(&sim)[0];
    sim.put("/_sim/faults", json!({"droplets_many_series": [big]}));
    let cfg = many_series_config(
        &sim,
        "timeout = \"300ms\"\nmax_series = 1000000\nmax_body = \"16MB\"",
    );
    let r = ok(&["--config", &cfg, "scrape", "--output", "json"]);
    assert!(r.wall < Duration::from_secs(4), "{:?}", r.wall);
    let ds = droplets(&r.json());
    let d = ds.iter().find(|d| d["id"].as_u64() == Some(big)).unwrap();
    assert!(
        d["error"].as_str().unwrap_or("").contains("timed out"),
        "{d}"
    );
}

fn ids_of(sim: &Sim) -> Vec<u64> {
    droplets(&ok(&["--config", sim.cfg(), "scrape", "--output", "json"]).json())
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn symlinks_planted_in_the_state_directory_are_refused() {
    use std::os::unix::fs::symlink;
    let sim = Sim::start(&["--droplets", "2"]);
    let victim = sim.path("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    // the lock file
    symlink(&victim, sim.path("state.json.lock")).unwrap();
    let r = run(&["--config", sim.cfg(), "scrape"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("state.json.lock") && r.stderr.contains("symbolic link"),
        "{}",
        r.stderr
    );
    assert_eq!(read(&victim), "precious\n");
    std::fs::remove_file(sim.path("state.json.lock")).unwrap();
    // the state file
    symlink(&victim, sim.path("state.json")).unwrap();
    for cmd in ["scrape", "status"] {
        let r = run(&["--config", sim.cfg(), cmd]);
        assert_eq!(r.code, 1, "{cmd}: {}", r.all());
        assert!(
            r.stderr.contains("state.json") && r.stderr.contains("symbolic link"),
            "{cmd}: {}",
            r.stderr
        );
    }
    assert_eq!(read(&victim), "precious\n");
    assert!(std::fs::symlink_metadata(sim.path("state.json"))
        .unwrap()
        .file_type()
        .is_symlink());
}
