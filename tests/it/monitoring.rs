//! The DigitalOcean monitoring source (`[group.metrics] source = "digitalocean"`) against the
//! simulator's monitoring endpoints: the same values as a scrape of the same fleet, the
//! request budget of a pass, `check`'s cost line, and the contract of the endpoints with
//! DigitalOcean's OpenAPI spec.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::openapi::{errors, spec, validator};

/// A config of the simulator's group on `source`, with its own state file. `group` may end
/// with its own `[group.metrics]`.
fn config(sim: &Sim, name: &str, source: &str, group: &str) -> String {
    let token = sim.conf["api"]["token_file"].as_str().unwrap();
    let metrics = if group.contains("[group.metrics]") {
        String::new()
    } else if source == "digitalocean" {
        "[group.metrics]\nsource = \"digitalocean\"\n".to_string()
    } else {
        format!("[group.metrics]\nport = {}\n", sim.metrics_port())
    };
    let text = format!(
        "state_file = \"{}\"\n[api]\nurl = \"{}\"\ntoken_file = \"{}\"\n[[group]]\nname = \"web\"\ntag = \"{}\"\n{group}\n{metrics}",
        sim.path(&format!("{name}.json")).display(),
        sim.url,
        sim.path(token).display(),
        sim.tag(),
    );
    let path = sim.path(&format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const CONDITIONS: &str = r#"min = 1
max = 10
[[group.policy]]
name = "watch"
scale = "up"
match = "any"
conditions = [
  { name = "load1", expr = "node_load1", function = "mean", op = ">=", threshold = 1000 },
  { name = "load5", expr = "node_load5", function = "mean", op = ">=", threshold = 1000 },
  { name = "load15", expr = "node_load15", function = "mean", op = ">=", threshold = 1000 },
  { name = "mem", expr = "node_memory_MemFree_bytes + node_memory_Cached_bytes", function = "mean", op = "<=", threshold = 0 },
  { name = "avail", expr = "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", function = "mean", op = "<=", threshold = 0 },
  { name = "disk", expr = "sum(node_filesystem_free_bytes) / sum(node_filesystem_size_bytes)", function = "min", op = "<=", threshold = 0 },
  { name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', function = "mean", op = ">=", threshold = 2 },
  { name = "rx", expr = 'rate(node_network_receive_bytes_total{device="eth0"}[5m])', function = "max", op = ">=", threshold = 1e15 },
  { name = "tx", expr = 'sum(rate(node_network_transmit_bytes_total[5m]))', function = "max", op = ">=", threshold = 1e15 },
]
"#;

/// condition → droplet id → value, from `evaluate --output json`.
fn values(cfg: &str) -> BTreeMap<String, BTreeMap<String, Option<f64>>> {
    let e = ok(&["--config", cfg, "evaluate", "--output", "json"]).json();
    let mut out = BTreeMap::new();
    for p in e["groups"][0]["policies"].as_array().unwrap() {
        for c in p["conditions"].as_array().unwrap() {
            let per: BTreeMap<String, Option<f64>> = c["per_droplet"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_f64()))
                .collect();
            out.insert(c["name"].as_str().unwrap().to_string(), per);
        }
    }
    out
}

#[test]
fn the_monitoring_source_reads_what_a_scrape_reads() {
    let sim = Sim::start(&["--droplets", "3", "--seed", "5"]);
    let scrape = config(&sim, "scrape", "scrape", CONDITIONS);
    let monitoring = config(&sim, "monitoring", "digitalocean", CONDITIONS);
    // Two passes of each, about four seconds apart, on a fleet whose load does not change.
    // The first monitoring pass asks for the counters as of the whole second the simulator
    // started in: the simulator serves the initial fleet's counters before its start too.
    ok(&["--config", &monitoring, "scrape"]);
    ok(&["--config", &scrape, "scrape"]);
    std::thread::sleep(Duration::from_secs(4));
    ok(&["--config", &monitoring, "scrape"]);
    ok(&["--config", &scrape, "scrape"]);
    let a = values(&scrape);
    let b = values(&monitoring);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (cond, per) in &a {
        assert_eq!(per.len(), 3, "{cond}: {per:?}");
        for (id, va) in per {
            let va = va.unwrap_or_else(|| panic!("{cond} {id}: no value by scrape"));
            let vb = b[cond][id].unwrap_or_else(|| panic!("{cond} {id}: no value by monitoring"));
            match cond.as_str() {
                // Rates: over the two passes' own intervals (whole seconds for the monitoring
                // API): close, not equal.
                "cpu" | "rx" | "tx" => {
                    let rel = (va - vb).abs() / va.abs().max(1e-9);
                    assert!(rel < 0.02, "{cond} {id}: scrape {va}, monitoring {vb}");
                    assert!(vb > 0.0, "{cond} {id}: {vb}");
                }
                // Gauges: the same numbers.
                _ => assert_eq!(va, vb, "{cond} {id}"),
            }
        }
    }
    // It asked the monitoring endpoints the documented way, and the pages not at all.
    let reqs = sim.requests();
    let mon: Vec<&Value> = reqs
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .starts_with("/v2/monitoring/metrics/droplet/")
        })
        .collect();
    // cpu, load ×3, memory ×4, filesystem ×2, bandwidth inbound public (rx names eth0),
    // outbound public and private (tx sums every device) = 13 per droplet, 3 droplets, 2
    // passes.
    assert_eq!(mon.len(), 13 * 3 * 2);
}

#[test]
fn fifty_droplets_stay_within_the_request_budget_and_nothing_is_destroyed_on_it() {
    let sim = Sim::start(&["--droplets", "50", "--seed", "9"]);
    let group = "min = 1\nmax = 60\nwarmup = \"0s\"\ncooldown_down = \"0s\"\nmax_step_down = 10\nmax_destroy_share = 1.0\n\
[[group.policy]]\nname = \"shrink\"\nscale = \"down\"\nstep = 10\n\
conditions = [ { name = \"idle\", expr = \"node_load1\", function = \"max\", op = \">=\", threshold = 0 } ]\n\
[group.metrics]\nsource = \"digitalocean\"\n[group.metrics.digitalocean]\nbudget_per_minute = 30\n";
    let cfg = config(&sim, "budget", "digitalocean", group);
    // check says what a pass costs.
    let c = ok(&["--config", &cfg, "check"]).stdout;
    assert!(
        c.contains("1 requests per droplet per pass (load_1)")
            && c.contains("50 droplets = 51 (over budget_per_minute = 30: 29 fit)"),
        "{c}"
    );
    let n0 = sim.requests().len();
    let s = ok(&["--config", &cfg, "scrape", "--output", "json"]).json();
    let reqs = &sim.requests()[n0..];
    assert!(
        reqs.len() <= 30,
        "{} requests for a budget of 30",
        reqs.len()
    );
    let ds = droplets(&s);
    assert_eq!(ds.len(), 50);
    let short: Vec<&Value> = ds.iter().filter(|d| d["error"].is_string()).collect();
    assert_eq!(short.len(), 50 - 29, "{s}");
    for d in &short {
        let e = d["error"].as_str().unwrap();
        assert!(e.starts_with("no data: request budget exhausted"), "{e}");
    }
    // Every droplet would satisfy the shrink policy; the ones without data forbid it.
    ok(&["--config", &cfg, "evaluate"]);
    let plan = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    let g = &plan["groups"][0];
    assert!(
        g["destroy"].as_array().is_none_or(|d| d.is_empty()),
        "{plan}"
    );
    assert_eq!(g["desired"], json!(50), "{plan}");

    // The hour: the headers say how much of it the token used (every request the simulator
    // saw so far); budget_per_hour is never passed.
    let hourly = std::fs::read_to_string(&cfg).unwrap().replace(
        "budget_per_minute = 30",
        "budget_per_minute = 250\nbudget_per_hour = 60",
    );
    std::fs::write(&cfg, hourly).unwrap();
    let before = sim.requests().len();
    let s = ok(&["--config", &cfg, "scrape", "--output", "json"]).json();
    let after = sim.requests().len();
    // Unless the API's hour turned meanwhile, the token never goes past 60 requests.
    let same_hour = chrono::Utc::now().timestamp() % 3600 > 30;
    if same_hour {
        assert!(after <= 60, "{after} requests in the hour, budget 60");
        let errs: Vec<String> = droplets(&s)
            .iter()
            .filter_map(|d| d["error"].as_str().map(String::from))
            .collect();
        assert!(
            !errs.is_empty() && errs[0].contains("budget_per_hour = 60"),
            "{errs:?}"
        );
    }
    assert!(after > before, "the listing at least");
}

#[test]
fn a_condition_the_monitoring_api_cannot_serve_is_a_config_error() {
    let sim = Sim::start(&["--droplets", "1"]);
    let group = "min = 1\nmax = 2\n[[group.policy]]\nname = \"io\"\nscale = \"up\"\n\
conditions = [ { name = \"reads\", expr = \"sum(rate(node_disk_read_bytes_total[5m]))\", function = \"max\", op = \">=\", threshold = 1 } ]\n";
    let cfg = config(&sim, "bad", "digitalocean", group);
    let r = run(&["--config", &cfg, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("`group[web].policy[io].conditions[reads].expr`")
            && r.stderr.contains(
                "`node_disk_read_bytes_total` is not served by the DigitalOcean monitoring API"
            ),
        "{}",
        r.stderr
    );
}

/// The spec's parameters of a path's GET, resolved: name → (required, allowed words).
fn parameters(spec: &Value, path: &str) -> BTreeMap<String, (bool, Option<Vec<String>>)> {
    let op = &spec["paths"][path]["get"];
    assert!(op.is_object(), "{path} is not in the spec");
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = match p["$ref"].as_str() {
                Some(r) => &spec["components"]["parameters"][r.rsplit('/').next().unwrap()],
                None => p,
            };
            assert_eq!(p["in"], "query", "{path}: {p}");
            let words = p["schema"]["enum"]
                .as_array()
                .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect());
            (
                p["name"].as_str().unwrap().to_string(),
                (p["required"] == json!(true), words),
            )
        })
        .collect()
}

#[test]
fn monitoring_requests_and_responses_follow_the_openapi_spec() {
    let spec = spec();
    let metrics = validator(&spec, "metrics");
    let sim = Sim::start(&["--droplets", "2", "--seed", "3"]);
    let cfg = config(&sim, "contract", "digitalocean", CONDITIONS);
    ok(&["--config", &cfg, "scrape"]);
    let reqs = sim.requests();
    let mon: Vec<&Value> = reqs
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/v2/monitoring/"))
        .collect();
    assert!(!mon.is_empty());
    let mut endpoints = std::collections::BTreeSet::new();
    for r in &mon {
        let path = r["path"].as_str().unwrap();
        endpoints.insert(path.to_string());
        assert_eq!(r["method"], "GET");
        let params = parameters(&spec, path);
        let query: BTreeMap<String, String> = r["query"]
            .as_str()
            .unwrap()
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        for (name, (required, words)) in &params {
            match query.get(name) {
                None => assert!(!required, "{path}: required {name} missing: {query:?}"),
                Some(v) => {
                    if let Some(w) = words {
                        assert!(w.contains(v), "{path}: {name}={v} not one of {w:?}");
                    }
                }
            }
        }
        for name in query.keys() {
            assert!(
                params.contains_key(name),
                "{path}: {name} is not a parameter of the spec"
            );
        }
        // host_id, start and end: the droplet id and whole Unix seconds, start before end
        let start: i64 = query["start"].parse().unwrap();
        let end: i64 = query["end"].parse().unwrap();
        assert!(start < end && end > 1_700_000_000, "{query:?}");
        query["host_id"].parse::<u64>().unwrap();
        assert_eq!(r["status"], 200, "{r}");
    }
    assert_eq!(endpoints.len(), 11, "{endpoints:?}");

    // What the simulator answers is the spec's `metrics`, with the rate-limit headers; and
    // the check can fail.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let id = droplets(&ok(&["--config", &cfg, "scrape", "--output", "json"]).json())[0]["id"]
        .as_u64()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    for e in &endpoints {
        let extra = if e.ends_with("bandwidth") {
            "&interface=public&direction=outbound"
        } else {
            ""
        };
        let resp = client
            .get(format!(
                "{}{e}?host_id={id}{extra}&start={}&end={now}",
                sim.url,
                now - 300
            ))
            .bearer_auth("t")
            .send()
            .unwrap();
        for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(resp.headers().contains_key(h), "{e}: no {h}");
        }
        let body: Value = resp.json().unwrap();
        let errs = errors(&metrics, &body);
        assert!(errs.is_empty(), "{e}: {body}: {errs:?}");
        assert!(!body["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .is_empty());
        // doscale reads it
        serde_json::from_value::<doscale::do_api::monitoring::Metrics>(body).unwrap();
    }
    let mut bad = json!({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, {"x": 1}]]}]}});
    assert!(!errors(&metrics, &bad).is_empty());
    bad["data"] = json!({"result": []});
    assert!(!errors(&metrics, &bad).is_empty());

    // The spec's own examples are read by doscale's client.
    for ex in [
        "droplet_cpu",
        "droplet_filesystem",
        "inbound_private_droplet_bandwidth",
        "outbound_public_droplet_bandwidth",
    ] {
        let v = spec["components"]["examples"][ex]["value"].clone();
        assert!(v.is_object(), "{ex}");
        assert!(errors(&metrics, &v).is_empty(), "{ex}");
        let m: doscale::do_api::monitoring::Metrics = serde_json::from_value(v).unwrap();
        assert!(!m.data.result.is_empty(), "{ex}");
    }

    // A request without its required parameters is refused by the simulator, as the spec
    // makes them required.
    let r = client
        .get(format!(
            "{}/v2/monitoring/metrics/droplet/bandwidth?host_id={id}&start=1&end=2",
            sim.url
        ))
        .bearer_auth("t")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
