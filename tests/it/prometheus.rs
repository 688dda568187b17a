//! The Prometheus source (`[group.metrics] source = "prometheus"`) against real engines:
//! Prometheus and VictoriaMetrics (Debian's packages, installed by `.ci/run`) scrape the
//! simulator's fleet, and `evaluate` through them must give the same per-droplet values as
//! the direct scrape. Also: one query per expression per pass whatever the group's size (a
//! recording stub), and Prometheus killed mid-run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::*;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const VICTORIA: &str = "/usr/bin/victoria-metrics";

/// The engine binary, or `None` with a clear skip message (`.ci/run` installs both).
fn engine(path: &str, package: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {path} is not installed (apt-get install {package}; .ci/run installs it): this real-engine test did not run"
        );
        None
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A query engine started by a test; killed when dropped.
struct Engine {
    name: &'static str,
    url: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Engine {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query's result, `None` until the engine answers.
    fn query(&self, q: &str) -> Option<Value> {
        let c = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let r = c
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", q)])
            .send()
            .ok()?;
        let v: Value = r.json().ok()?;
        (v["status"] == "success").then(|| v["data"]["result"].clone())
    }

    /// Waits until every target was scraped at least `n` times.
    fn wait_for_samples(&self, targets: usize, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let q = "count_over_time(node_load1[5m])";
        loop {
            if let Some(Value::Array(rs)) = self.query(q) {
                let enough = rs
                    .iter()
                    .filter(|r| {
                        r["value"][1]
                            .as_str()
                            .and_then(|s| s.parse::<f64>().ok())
                            .is_some_and(|c| c >= f64::from(n))
                    })
                    .count();
                if enough >= targets {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not scrape the {targets} simulated droplets {n} times within 90 s; its log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The simulator's droplets: id and metrics address (`ip:port`).
fn targets(sim: &Sim) -> Vec<(u64, String)> {
    let port = sim.metrics_port();
    sim.get("/_sim/droplets")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "active")
        .map(|d| {
            (
                d["id"].as_u64().unwrap(),
                format!("{}:{port}", d["address"].as_str().unwrap()),
            )
        })
        .collect()
}

/// A scrape configuration (Prometheus' format, which VictoriaMetrics reads too) of one job
/// over the droplets, every second; with `droplet_id` labels when `ids`.
fn scrape_config(targets: &[(u64, String)], ids: bool) -> String {
    let mut s = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: do-agent\n    metrics_path: /\n    static_configs:\n",
    );
    for (id, addr) in targets {
        s.push_str(&format!("      - targets: [\"{addr}\"]\n"));
        if ids {
            s.push_str(&format!(
                "        labels:\n          droplet_id: \"{id}\"\n"
            ));
        }
    }
    s
}

fn start_prometheus(bin: &Path, dir: &Path, targets: &[(u64, String)]) -> Engine {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, scrape_config(targets, true)).unwrap();
    let port = free_port();
    let log = dir.join("prometheus.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("start prometheus");
    Engine {
        name: "Prometheus",
        url: format!("http://127.0.0.1:{port}"),
        child,
        log,
    }
}

fn start_victoria(bin: &Path, dir: &Path, targets: &[(u64, String)]) -> Engine {
    let cfg = dir.join("victoria.yml");
    // No droplet_id label: doscale finds the droplets by `instance` (address:port).
    std::fs::write(&cfg, scrape_config(targets, false)).unwrap();
    let port = free_port();
    let log = dir.join("victoria.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .arg(format!("-promscrape.config={}", cfg.display()))
        .arg(format!(
            "-storageDataPath={}",
            dir.join("victoria-data").display()
        ))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        // Samples are queryable at once (by default the newest 30 s are hidden).
        .arg("-search.latencyOffset=0s")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("start victoria-metrics");
    Engine {
        name: "VictoriaMetrics",
        url: format!("http://127.0.0.1:{port}"),
        child,
        log,
    }
}

/// The expressions of the operations guide's table of useful expressions (the README points
/// there) that config/doscale.toml does not already hold, as one extra policy that never
/// holds.
const DOC_EXPRESSIONS: [&str; 2] = [
    r#"node_load5 / count(node_cpu_seconds_total{mode="idle"})"#,
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
];

/// The simulator's config (config/doscale.toml's policies and target) with the guide's
/// expressions, its own state file and, unless `source` is empty, a `[group.metrics]`
/// source section.
fn config(sim: &Sim, name: &str, source: &str) -> String {
    let text = std::fs::read_to_string(&sim.cfg).unwrap();
    let text = text.replace(
        "state_file = \"state.json\"",
        &format!("state_file = \"state-{name}.json\""),
    );
    assert!(text.contains(&format!("state-{name}.json")));
    // Prometheus' rate divides by the whole range: it is the slope only once the engine holds
    // a range's worth of samples (docs/operations.md). A test of seconds uses a range of
    // seconds; the direct scrape's two passes are 2 s apart, inside it too.
    assert!(text.contains("[5m]"));
    let mut text = text.replace("[5m]", "[10s]");
    text.push_str("\n[[group.policy]]\nname = \"guide\"\nscale = \"up\"\nconditions = [\n");
    for (i, e) in DOC_EXPRESSIONS.iter().enumerate() {
        text.push_str(&format!(
            "  {{ name = \"guide{i}\", expr = '{e}', function = \"mean\", op = \">\", threshold = 1e30 }},\n"
        ));
    }
    text.push_str("]\n");
    if !source.is_empty() {
        text = text.replacen(
            "[group.metrics]\n",
            "[group.metrics]\nsource = \"prometheus\"\n",
            1,
        );
        text.push_str(&format!("\n[group.metrics.prometheus]\n{source}\n"));
    }
    let path = sim.path(&format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// (policy/condition, expression) → droplet id → value, from `evaluate --output json`.
fn per_droplet(eval: &Value) -> BTreeMap<(String, String), BTreeMap<String, Option<f64>>> {
    let mut out = BTreeMap::new();
    for p in eval["groups"][0]["policies"].as_array().unwrap() {
        for c in p["conditions"].as_array().unwrap() {
            let values = c["per_droplet"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(id, v)| (id.clone(), v.as_f64()))
                .collect();
            out.insert(
                (
                    format!(
                        "{}/{}",
                        p["name"].as_str().unwrap(),
                        c["name"].as_str().unwrap()
                    ),
                    c["expr"].as_str().unwrap().to_string(),
                ),
                values,
            );
        }
    }
    out
}

/// A rate over Prometheus' window against one between two scrapes: the sim's load is
/// steady, so both are the counters' slope, up to the counters' 0.01 s resolution over the
/// scrape gap and the engines' extrapolation (docs/operations.md, "Choosing a metric source").
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 0.02 + 0.02 * a.abs().max(b.abs())
}

fn assert_agrees(engine: &str, direct: &Value, via: &Value) {
    let d = per_droplet(direct);
    let v = per_droplet(via);
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        v.keys().collect::<Vec<_>>(),
        "{engine}: other conditions"
    );
    assert!(d.len() >= 10, "{d:?}");
    for (k, dv) in &d {
        let vv = &v[k];
        assert_eq!(
            dv.keys().collect::<Vec<_>>(),
            vv.keys().collect::<Vec<_>>(),
            "{engine}: {k:?}: other droplets"
        );
        let rate = k.1.contains("rate(") || k.1.contains("increase(");
        for (id, a) in dv {
            let a = a.unwrap_or_else(|| panic!("scrape source: {k:?} has no value for {id}"));
            let b = vv[id]
                .unwrap_or_else(|| panic!("{engine}: {k:?} has no value for droplet {id}: {via}"));
            if rate {
                assert!(close(a, b), "{engine}: {k:?} droplet {id}: {a} vs {b}");
            } else {
                assert_eq!(a, b, "{engine}: {k:?} droplet {id}: gauges differ");
            }
        }
    }
    let ta = direct["groups"][0]["target"]["aggregate"].as_f64().unwrap();
    let tb = via["groups"][0]["target"]["aggregate"]
        .as_f64()
        .unwrap_or_else(|| panic!("{engine}: the target has no aggregate: {via}"));
    assert!(close(ta, tb), "{engine}: target {ta} vs {tb}");
}

#[test]
fn prometheus_and_victoriametrics_give_the_values_of_the_direct_scrape() {
    let prom_bin = engine(PROMETHEUS, "prometheus");
    let vm_bin = engine(VICTORIA, "victoria-metrics");
    if prom_bin.is_none() && vm_bin.is_none() {
        return;
    }
    // The initial fleet runs at a settled, constant load (nothing is created here): gauges
    // do not move, counters grow at a steady rate.
    let sim = Sim::start(&["--droplets", "4"]);
    let targets = targets(&sim);
    assert_eq!(targets.len(), 4);
    let prom = prom_bin.map(|b| start_prometheus(&b, sim.dir.path(), &targets));
    let vm = vm_bin.map(|b| start_victoria(&b, sim.dir.path(), &targets));

    let direct = config(&sim, "direct", "");
    ok(&["--config", &direct, "check"]);
    ok(&["--config", &direct, "scrape"]);
    std::thread::sleep(Duration::from_secs(2));
    ok(&["--config", &direct, "scrape"]);
    let direct_eval = ok(&["--config", &direct, "evaluate", "--output", "json"]).json();

    for e in prom.iter().chain(vm.iter()) {
        e.wait_for_samples(targets.len(), 13);
        let label = if e.name == "Prometheus" {
            "droplet_id"
        } else {
            "instance"
        };
        let cfg = config(
            &sim,
            e.name,
            &format!("url = \"{}\"\ndroplet_label = \"{label}\"", e.url),
        );
        ok(&["--config", &cfg, "check"]);
        let scraped = ok(&["--config", &cfg, "scrape", "--output", "json"]).json();
        // The load table's series come from the engine too.
        for d in scraped["groups"][0]["droplets"].as_array().unwrap() {
            assert!(d["error"].is_null(), "{}: {d}", e.name);
            assert!(d["series"]["node_load1"].is_number(), "{}: {d}", e.name);
        }
        let via = ok(&["--config", &cfg, "evaluate", "--output", "json"]).json();
        assert_agrees(e.name, &direct_eval, &via);
    }
}

#[test]
fn prometheus_killed_mid_run_is_no_data_for_every_droplet_and_no_scale_down() {
    let Some(bin) = engine(PROMETHEUS, "prometheus") else {
        return;
    };
    let sim = Sim::start(&["--droplets", "4"]);
    let targets = targets(&sim);
    let mut prom = start_prometheus(&bin, sim.dir.path(), &targets);
    prom.wait_for_samples(targets.len(), 13);
    let cfg = config(&sim, "prom", &format!("url = \"{}\"", prom.url));
    ok(&["--config", &cfg, "scrape"]);
    let eval = ok(&["--config", &cfg, "evaluate", "--output", "json"]).json();
    assert_eq!(eval["groups"][0]["evaluated"], 4, "{eval}");
    // The fleet runs at 30 % CPU against a target of 60 %: with data, the plan shrinks.
    let plan = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    let g = &plan["groups"][0];
    assert!(
        g["desired"].as_u64().unwrap() < g["current"].as_u64().unwrap(),
        "with Prometheus up the plan should scale down: {plan}"
    );

    let _ = prom.child.kill();
    let _ = prom.child.wait();
    // scrape still exits 0: droplets without data are data.
    let r = ok(&["--config", &cfg, "scrape"]);
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("panic"),
        "{}",
        r.stderr
    );
    let eval = ok(&["--config", &cfg, "evaluate", "--output", "json"]).json();
    let g = &eval["groups"][0];
    assert_eq!(g["evaluated"], 0, "{eval}");
    let why = format!("prometheus at {}: connection refused", prom.url);
    for d in g["droplets"].as_array().unwrap() {
        assert_eq!(d["evaluated"], false, "{d}");
        assert!(
            d["reason"].as_str().unwrap().contains(&why),
            "{d} lacks {why:?}"
        );
    }
    for p in g["policies"].as_array().unwrap() {
        for c in p["conditions"].as_array().unwrap() {
            assert!(c["value"].is_null(), "{c}");
            assert_eq!(c["satisfied"], false, "{c}");
        }
    }
    let plan = ok(&["--config", &cfg, "plan", "--output", "json"]).json();
    let g = &plan["groups"][0];
    assert_eq!(g["destroy"].as_array().unwrap().len(), 0, "{plan}");
    assert!(
        g["desired"].as_u64().unwrap() >= g["current"].as_u64().unwrap(),
        "{plan}"
    );
    // `status` counts them.
    let table = ok(&["--config", &cfg, "status"]);
    assert!(
        table.stdout.contains("4 failing scrape"),
        "{}",
        table.stdout
    );
}

/// A loopback stand-in for the query API that records every query and answers each with one
/// series per droplet id of its `droplet_id` matcher.
struct Recorder {
    url: String,
    queries: Arc<Mutex<Vec<(String, String)>>>,
    headers: Arc<Mutex<Vec<String>>>,
}

fn serve_one(
    mut s: TcpStream,
    queries: &Mutex<Vec<(String, String)>>,
    headers: &Mutex<Vec<String>>,
) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        headers.lock().unwrap().push(h.trim().to_string());
    }
    let mut body = vec![0; len];
    let _ = r.read_exact(&mut body);
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("");
    let form = if method == "POST" {
        String::from_utf8_lossy(&body).to_string()
    } else {
        target
            .split_once('?')
            .map(|x| x.1)
            .unwrap_or("")
            .to_string()
    };
    let q = url::form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    queries.lock().unwrap().push((method, q.clone()));
    let ids: Vec<String> = q
        .split_once("droplet_id=~\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(ids, _)| ids.split('|').map(str::to_string).collect())
        .unwrap_or_default();
    let result: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"metric": {"droplet_id": id}, "value": [0, "0.25"]}))
        .collect();
    let answer = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
        .to_string();
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

impl Recorder {
    fn start() -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let queries = Arc::new(Mutex::new(Vec::new()));
        let headers = Arc::new(Mutex::new(Vec::new()));
        let (q, h) = (queries.clone(), headers.clone());
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (q, h) = (q.clone(), h.clone());
                std::thread::spawn(move || serve_one(s, &q, &h));
            }
        });
        Recorder {
            url,
            queries,
            headers,
        }
    }
}

#[test]
fn a_500_droplet_group_costs_one_query_per_expression_per_pass() {
    let sim = Sim::start(&["--droplets", "500"]);
    let rec = Recorder::start();
    let cfg = config(&sim, "recorded", &format!("url = \"{}\"", rec.url));
    let direct = config(&sim, "direct", "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let conf: toml::Value = text.parse().unwrap();
    let mut exprs: Vec<String> = conf["group"][0]["policy"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["conditions"].as_array().unwrap().clone())
        .map(|c| c["expr"].as_str().unwrap().to_string())
        .chain(std::iter::once(
            conf["group"][0]["target"]["expr"]
                .as_str()
                .unwrap()
                .to_string(),
        ))
        .collect();
    exprs.sort();
    exprs.dedup();
    let conditions: usize = conf["group"][0]["policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["conditions"].as_array().unwrap().len())
        .sum();
    assert!(
        exprs.len() < conditions,
        "shared expressions are queried once"
    );

    let t0 = Instant::now();
    ok(&["--config", &direct, "scrape"]);
    let direct_took = t0.elapsed();
    for pass in 1..=2 {
        let t0 = Instant::now();
        ok(&["--config", &cfg, "scrape"]);
        let took = t0.elapsed();
        assert!(
            took <= direct_took + Duration::from_millis(500),
            "a pass on the Prometheus source took {took:?}, the scrape source {direct_took:?}"
        );
        let queries = rec.queries.lock().unwrap().clone();
        // Each distinct expression once, plus the load table's query.
        assert_eq!(
            queries.len(),
            pass * (exprs.len() + 1),
            "{:?}",
            queries
                .iter()
                .map(|q| &q.1[..q.1.len().min(80)])
                .collect::<Vec<_>>()
        );
        // A 500-droplet matcher is long: sent as a POST form.
        assert!(queries.iter().all(|(m, _)| m == "POST"), "{queries:?}");
    }
    let eval = ok(&["--config", &cfg, "evaluate", "--output", "json"]).json();
    assert_eq!(eval["groups"][0]["evaluated"], 500);
    for values in per_droplet(&eval).values() {
        assert_eq!(values.len(), 500);
        assert!(values.values().all(|v| *v == Some(0.25)), "{values:?}");
    }
}

#[test]
fn prometheus_credentials_are_sent_and_never_shown() {
    let sim = Sim::start(&["--droplets", "3"]);
    let rec = Recorder::start();
    let token = "prom-bearer-0123456789-SECRET";
    let tenant = "tenant-SECRET-42";
    std::fs::write(sim.path("prom-token"), format!("{token}\n")).unwrap();
    let cfg = config(
        &sim,
        "secret",
        &format!(
            "url = \"{}\"\nbearer_token_file = \"prom-token\"\nheaders = {{ X-Scope-OrgID = \"{tenant}\" }}",
            rec.url
        ),
    );
    let mut seen = String::new();
    for args in [
        vec!["check"],
        vec!["scrape", "-vvv"],
        vec!["scrape", "--output", "json"],
        vec!["evaluate", "--output", "json"],
        vec!["status", "-o", "wide"],
    ] {
        let mut a = vec!["--config", cfg.as_str()];
        a.extend(args);
        seen.push_str(&ok(&a).all());
    }
    let h = rec.headers.lock().unwrap().join("\n").to_ascii_lowercase();
    let sent = |s: String| h.contains(&s.to_ascii_lowercase());
    assert!(sent(format!("authorization: Bearer {token}")), "{h}");
    assert!(sent(format!("x-scope-orgid: {tenant}")), "{h}");
    seen.push_str(&std::fs::read_to_string(sim.path("state-secret.json")).unwrap());
    assert!(!seen.contains(token) && !seen.contains(tenant), "{seen}");

    // A credential file that cannot be read: `check` names it, a pass is no data with the
    // reason (never the content).
    std::fs::write(sim.path("prom-token"), "").unwrap();
    let r = run(&["--config", &cfg, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("prom-token: empty"), "{}", r.all());
    ok(&["--config", &cfg, "scrape"]);
    let eval = ok(&["--config", &cfg, "evaluate", "--output", "json"]).json();
    for d in eval["groups"][0]["droplets"].as_array().unwrap() {
        assert!(
            d["reason"].as_str().unwrap().contains("bearer_token_file"),
            "{d}"
        );
    }
}
