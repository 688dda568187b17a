//! The simulator end to end on loopback, with a blocking client from the test's own thread.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;
use crate::do_api::model::{ActionOne, CreateResponse, DropletList};

const TOKEN: &str = "dop_v1_unit0test0token0never0shown";

fn args(droplets: u32) -> SimArgs {
    SimArgs {
        droplets,
        listen: "127.0.0.1:0".into(),
        metrics_port: 0,
        latency_ms: 0,
        activate_ms: 300,
        seed: 42,
        tag: "web".into(),
        config_out: None,
    }
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct T {
    sim: SimHandle,
    c: Client,
}

impl T {
    fn new(a: SimArgs) -> T {
        T {
            sim: start(&a).expect("the simulator starts"),
            c: client(),
        }
    }
    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.sim.api_url)
    }
    fn api(
        &self,
        method: reqwest::Method,
        p: &str,
        body: Option<Value>,
    ) -> reqwest::blocking::Response {
        let mut rb = self.c.request(method, self.url(p)).bearer_auth(TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().unwrap()
    }
    fn get(&self, p: &str) -> Value {
        let r = self.api(reqwest::Method::GET, p, None);
        assert_eq!(r.status(), StatusCode::OK, "GET {p}");
        r.json().unwrap()
    }
    fn put(&self, p: &str, body: Value) -> reqwest::blocking::Response {
        self.c.put(self.url(p)).json(&body).send().unwrap()
    }
    fn list(&self) -> Vec<crate::do_api::model::Droplet> {
        let v = self.get("/v2/droplets?tag_name=web&per_page=200&page=1");
        serde_json::from_value::<DropletList>(v).unwrap().droplets
    }
    fn metrics_url(&self, d: &crate::do_api::model::Droplet) -> String {
        let ip = d.address(crate::model::AddressKind::Private).unwrap();
        format!("http://{ip}:{}/metrics", self.sim.metrics_port)
    }
    fn scrape(&self, url: &str) -> reqwest::Result<reqwest::blocking::Response> {
        self.c.get(url).timeout(Duration::from_secs(2)).send()
    }
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// Mean idle seconds per CPU.
fn idle(s: &prometheus_parse::Scrape) -> f64 {
    let v: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == "node_cpu_seconds_total" && x.labels.get("mode") == Some("idle"))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("idle is a counter"),
        })
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn gauge(s: &prometheus_parse::Scrape, name: &str) -> f64 {
    match s.samples.iter().find(|x| x.metric == name).unwrap().value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("{name} is a gauge"),
    }
}

#[test]
fn lists_450_droplets_over_three_pages() {
    let t = T::new(args(450));
    let mut path = Some("/v2/droplets?tag_name=web&per_page=200&page=1".to_string());
    let mut all = Vec::new();
    let mut pages = 0;
    while let Some(p) = path.take() {
        let r = t.api(reqwest::Method::GET, &p, None);
        assert_eq!(r.status(), StatusCode::OK);
        for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(r.headers().get(h).is_some(), "{h}");
        }
        let v: Value = r.json().unwrap();
        assert_eq!(v["meta"]["total"], 450);
        let list: DropletList = serde_json::from_value(v).unwrap();
        pages += 1;
        all.extend(list.droplets);
        path = list.links.pages.and_then(|p| p.next).map(|n| {
            assert!(n.starts_with(&t.sim.api_url), "{n}");
            n[t.sim.api_url.len()..].to_string()
        });
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 450);
    let mut ids: Vec<u64> = all.iter().map(|d| d.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 450);
    let mut addrs: Vec<String> = all
        .iter()
        .map(|d| d.address(crate::model::AddressKind::Private).unwrap())
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 450);
    assert!(all
        .iter()
        .all(|d| d.status == "active" && d.tags == ["web"]));
    assert_eq!(all[0].name, "web-1");
    let created = chrono::DateTime::parse_from_rfc3339(&all[0].created_at).unwrap();
    assert!(chrono::Utc::now().signed_duration_since(created) > chrono::Duration::hours(23));
    // The last page links back, the first page does not.
    let last = t.get("/v2/droplets?tag_name=web&per_page=200&page=3");
    assert!(last["links"]["pages"]["prev"]
        .as_str()
        .unwrap()
        .contains("page=2"));
    assert!(last["links"]["pages"].get("next").is_none());
    // Default page size.
    let first = t.get("/v2/droplets?tag_name=web");
    assert_eq!(first["droplets"].as_array().unwrap().len(), 20);
    // The log has the three pages and never the token.
    let log: Vec<Value> =
        t.c.get(t.url("/_sim/requests"))
            .send()
            .unwrap()
            .json()
            .unwrap();
    let pages: Vec<&Value> = log.iter().filter(|r| r["path"] == "/v2/droplets").collect();
    assert!(pages.len() >= 3);
    assert_eq!(pages[0]["query"], "tag_name=web&per_page=200&page=1");
    assert_eq!(pages[0]["method"], "GET");
    assert_eq!(pages[0]["status"], 200);
    assert!(!serde_json::to_string(&log).unwrap().contains(TOKEN));
}

#[test]
fn a_droplet_serves_do_agent_metrics() {
    let t = T::new(args(3));
    let ds = t.list();
    assert_eq!(ds.len(), 3);
    let r = t.scrape(&t.metrics_url(&ds[0])).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().unwrap();
    let s = parse(&text);
    let cpus: std::collections::BTreeSet<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == "node_cpu_seconds_total")
        .map(|x| x.labels.get("cpu").unwrap().to_string())
        .collect();
    assert_eq!(cpus.len(), 2);
    for m in [
        "node_load1",
        "node_load5",
        "node_load15",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
    ] {
        assert!(s.samples.iter().any(|x| x.metric == m), "{m}");
    }
    assert!(text.contains("# TYPE node_cpu_seconds_total counter"));
    assert!(text.contains("sonar_build_info{revision=\"bc91446\",version=\"3.18.14\"} 1"));
    // Default demand 0.3 × N: load1 ≈ 0.3 × 2 vCPUs.
    let load1 = gauge(&s, "node_load1");
    assert!((load1 - 0.6).abs() < 0.05, "load1 {load1}");
    // Any path, and keep-alive: a second request on the same client works.
    let again =
        t.c.get(t.metrics_url(&ds[0]).replace("/metrics", "/"))
            .send()
            .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[test]
fn utilization_follows_the_demand() {
    let t = T::new(args(4));
    let ds = t.list();
    let url = t.metrics_url(&ds[1]);
    let r = t.put("/_sim/load", json!({"demand": 3.0}));
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().unwrap();
    assert_eq!(v["demand"], 3.0);
    assert_eq!(v["droplets"].as_array().unwrap().len(), 4);
    let a = parse(&t.scrape(&url).unwrap().text().unwrap());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    let b = parse(&t.scrape(&url).unwrap().text().unwrap());
    let dt = t0.elapsed().as_secs_f64();
    let u = 1.0 - (idle(&b) - idle(&a)) / dt;
    assert!((u - 0.75).abs() < 0.03, "u = {u}, want 0.75");
    let mem_busy = gauge(&b, "node_memory_MemAvailable_bytes");
    t.sim.set_demand(0.4);
    let c = parse(&t.scrape(&url).unwrap().text().unwrap());
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let d = parse(&t.scrape(&url).unwrap().text().unwrap());
    let u = 1.0 - (idle(&d) - idle(&c)) / t1.elapsed().as_secs_f64();
    assert!((u - 0.1).abs() < 0.03, "u = {u}, want 0.1");
    assert!(gauge(&d, "node_memory_MemAvailable_bytes") > mem_busy);
    // Counters never go back.
    for (x, y) in a.samples.iter().zip(d.samples.iter()) {
        if let (prometheus_parse::Value::Counter(x), prometheus_parse::Value::Counter(y)) =
            (&x.value, &y.value)
        {
            assert!(y >= x);
        }
    }
}

#[test]
fn refuse_timeout_and_garbage_faults() {
    let t = T::new(args(4));
    let ds = t.list();
    let ids: Vec<u64> = ds.iter().map(|d| d.id).collect();
    let r = t.put("/_sim/faults", json!({"droplets_refuse": [ids[0]], "droplets_timeout": [ids[1]], "droplets_garbage": [ids[2]]}));
    assert_eq!(r.status(), StatusCode::OK);
    let f: Value =
        t.c.get(t.url("/_sim/faults"))
            .send()
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(f["droplets_refuse"], json!([ids[0]]));
    // Refused: a connection error, at once.
    let e = t.scrape(&t.metrics_url(&ds[0])).unwrap_err();
    assert!(e.is_connect(), "{e}");
    // Silent: the client's timeout.
    let t0 = Instant::now();
    let e =
        t.c.get(t.metrics_url(&ds[1]))
            .timeout(Duration::from_millis(500))
            .send()
            .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Garbage: 200, not an exposition.
    let r = t.scrape(&t.metrics_url(&ds[2])).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().unwrap();
    assert!(std::str::from_utf8(&body).is_err());
    // The healthy one is fine.
    assert_eq!(
        t.scrape(&t.metrics_url(&ds[3])).unwrap().status(),
        StatusCode::OK
    );
    // Cleared: every droplet answers again.
    assert_eq!(t.put("/_sim/faults", json!({})).status(), StatusCode::OK);
    for d in &ds {
        let r = t.scrape(&t.metrics_url(d)).unwrap();
        assert!(r.text().unwrap().contains("node_load1"));
    }
    // A typo is refused.
    assert_eq!(
        t.put("/_sim/faults", json!({"droplets_refuze": [1]}))
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn trickle_huge_redirect_and_linklocal_faults() {
    let t = T::new(args(4));
    let ds = t.list();
    let ids: Vec<u64> = ds.iter().map(|d| d.id).collect();
    t.sim
        .set_faults(Faults {
            droplets_trickle: vec![ids[0]],
            droplets_huge: vec![ids[1]],
            droplets_redirect: vec![ids[2]],
            droplets_linklocal: vec![ids[3]],
            ..Default::default()
        })
        .unwrap();
    // Trickle: the first bytes arrive slowly.
    let addr = format!(
        "{}:{}",
        ds[0].address(crate::model::AddressKind::Private).unwrap(),
        t.sim.metrics_port
    );
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 64];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(900) {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(_) => {}
        }
    }
    assert!(
        !got.is_empty() && got.len() <= 6,
        "{} bytes in 0.9 s",
        got.len()
    );
    // Huge: 64 MiB announced.
    let r = t.scrape(&t.metrics_url(&ds[1])).unwrap();
    assert!(r.content_length().unwrap() >= 64 * 1024 * 1024);
    drop(r);
    // Redirect: not followed by a client without redirects; followed, it is logged.
    let nofollow = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = nofollow.get(t.metrics_url(&ds[2])).send().unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with("http://127.0.0.1:") && loc.ends_with("/_sim/redirected"),
        "{loc}"
    );
    assert_eq!(
        t.scrape(&t.metrics_url(&ds[2])).unwrap().status(),
        StatusCode::OK
    );
    assert!(t
        .sim
        .requests()
        .iter()
        .any(|r| r["path"] == "/_sim/redirected"));
    // Link-local: the API lists the metadata address as private.
    let listed = t.list();
    let d = listed.iter().find(|d| d.id == ids[3]).unwrap();
    assert_eq!(
        d.address(crate::model::AddressKind::Private).unwrap(),
        "169.254.169.254"
    );
}

#[test]
fn create_turns_active_then_delete() {
    let t = T::new(args(2));
    let body = json!({"names": ["web-3", "web-4"], "region": "nyc3", "size": "s-1vcpu-1gb",
                      "image": "ubuntu-24-04-x64", "tags": ["web"], "monitoring": true});
    let r = t.api(reqwest::Method::POST, "/v2/droplets", Some(body.clone()));
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let created: CreateResponse = r.json().unwrap();
    assert_eq!(created.droplets.len(), 2);
    assert_eq!(created.links.actions.len(), 2);
    assert!(created.droplets.iter().all(|d| d.status == "new"));
    let listed = t.list();
    assert_eq!(listed.len(), 4);
    let new_one = listed.iter().find(|d| d.name == "web-3").unwrap().clone();
    assert_eq!(new_one.status, "new");
    let age = chrono::Utc::now()
        .signed_duration_since(chrono::DateTime::parse_from_rfc3339(&new_one.created_at).unwrap());
    assert!(age < chrono::Duration::seconds(10));
    let action_path = format!("/v2/actions/{}", created.links.actions[0].id);
    let a: ActionOne = serde_json::from_value(t.get(&action_path)).unwrap();
    assert_eq!(a.action.status, "in-progress");
    assert_eq!(a.action.resource_id, Some(new_one.id));
    std::thread::sleep(Duration::from_millis(600));
    let d = t.get(&format!("/v2/droplets/{}", new_one.id));
    let d: crate::do_api::model::Droplet = serde_json::from_value(d["droplet"].clone()).unwrap();
    assert_eq!(d.status, "active");
    let a: ActionOne = serde_json::from_value(t.get(&action_path)).unwrap();
    assert_eq!(a.action.status, "completed");
    // A fresh 1-vCPU droplet serves metrics.
    let s = parse(&t.scrape(&t.metrics_url(&d)).unwrap().text().unwrap());
    assert!(s
        .samples
        .iter()
        .filter(|x| x.metric == "node_cpu_seconds_total")
        .all(|x| x.labels.get("cpu") == Some("0")));
    // Single create answers `droplet`.
    let single = json!({"name": "web-5", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", "tags": ["web"]});
    let r = t.api(reqwest::Method::POST, "/v2/droplets", Some(single));
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().unwrap();
    assert_eq!(v["droplet"]["name"], "web-5");
    for k in [
        "memory",
        "vcpus",
        "disk",
        "locked",
        "features",
        "backup_ids",
        "next_backup_window",
        "snapshot_ids",
        "image",
        "volume_ids",
        "size",
        "size_slug",
        "region",
    ] {
        assert!(v["droplet"].get(k).is_some(), "{k}");
    }
    // Bad bodies: 422 with an error body.
    let eleven: Vec<String> = (0..11).map(|i| format!("w-{i}")).collect();
    let r = t.api(
        reqwest::Method::POST,
        "/v2/droplets",
        Some(json!({"names": eleven, "region": "nyc3", "size": "s-1vcpu-1gb", "image": "x"})),
    );
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().unwrap();
    assert_eq!(e["id"], "unprocessable_entity");
    assert!(e["request_id"].is_string());
    let r = t.api(
        reqwest::Method::POST,
        "/v2/droplets",
        Some(json!({"name": "bad_name", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "x"})),
    );
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Delete: 204, gone from the API and the network; again: 404 with an error body.
    let url = t.metrics_url(&d);
    let r = t.api(
        reqwest::Method::DELETE,
        &format!("/v2/droplets/{}", d.id),
        None,
    );
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(t.scrape(&url).unwrap_err().is_connect());
    assert!(t.list().iter().all(|x| x.id != d.id));
    let r = t.api(
        reqwest::Method::DELETE,
        &format!("/v2/droplets/{}", d.id),
        None,
    );
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let e: Value = r.json().unwrap();
    assert_eq!(e["id"], "not_found");
    assert!(e["message"].is_string() && e["request_id"].is_string());
    // The log holds the create body.
    let log = t.sim.requests();
    let post = log.iter().find(|r| r["method"] == "POST").unwrap();
    assert_eq!(post["body"], body);
    assert_eq!(post["status"], 202);
}

#[test]
fn create_error_and_never_active() {
    let t = T::new(args(1));
    let mk = |name: &str| json!({"name": name, "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", "tags": ["web"]});
    t.put("/_sim/faults", json!({"create_error": true}));
    let v: Value = t
        .api(reqwest::Method::POST, "/v2/droplets", Some(mk("web-2")))
        .json()
        .unwrap();
    let doomed = v["droplet"]["id"].as_u64().unwrap();
    let action = v["links"]["actions"][0]["id"].as_u64().unwrap();
    t.put("/_sim/faults", json!({"never_active": true}));
    let v: Value = t
        .api(reqwest::Method::POST, "/v2/droplets", Some(mk("web-3")))
        .json()
        .unwrap();
    let stuck = v["droplet"]["id"].as_u64().unwrap();
    t.put("/_sim/faults", json!({}));
    std::thread::sleep(Duration::from_millis(700));
    let a: ActionOne = serde_json::from_value(t.get(&format!("/v2/actions/{action}"))).unwrap();
    assert_eq!(a.action.status, "errored");
    assert_eq!(
        t.api(
            reqwest::Method::GET,
            &format!("/v2/droplets/{doomed}"),
            None
        )
        .status(),
        StatusCode::NOT_FOUND
    );
    let s = t.get(&format!("/v2/droplets/{stuck}"));
    assert_eq!(s["droplet"]["status"], "new");
    assert_eq!(s["droplet"]["networks"]["v4"], json!([]));
}

#[test]
fn auth_rate_limit_and_api_faults() {
    let t = T::new(args(1));
    let r = t.c.get(t.url("/v2/droplets")).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("ratelimit-remaining").is_some());
    let e: Value = r.json().unwrap();
    assert_eq!(e["id"], "unauthorized");
    assert_eq!(e["message"], "Unable to authenticate you.");
    let r =
        t.c.get(t.url("/v2/droplets"))
            .header("Authorization", "Bearer ")
            .send()
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.api(reqwest::Method::GET, "/v2/nothing", None).status(),
        StatusCode::NOT_FOUND
    );
    // Every second request refused with 429 and retry-after.
    t.put(
        "/_sim/faults",
        json!({"api_status": 429, "api_fail_every": 2}),
    );
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            let r = t.api(reqwest::Method::GET, "/v2/droplets?tag_name=web", None);
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(r.headers()["retry-after"], "1");
            }
            r.status().as_u16()
        })
        .collect();
    assert_eq!(statuses, [200, 429, 200, 429]);
    t.put("/_sim/faults", json!({"api_status": 503}));
    assert_eq!(
        t.api(reqwest::Method::GET, "/v2/droplets", None).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    t.put("/_sim/faults", json!({"api_malformed": true}));
    let r = t.api(reqwest::Method::GET, "/v2/droplets", None);
    assert!(serde_json::from_slice::<Value>(&r.bytes().unwrap()).is_err());
    t.put("/_sim/faults", json!({"api_truncated": true}));
    let r = t.api(reqwest::Method::GET, "/v2/droplets", None);
    let len = r.content_length().unwrap();
    let bytes = r.bytes().unwrap();
    assert_eq!(bytes.len() as u64, len);
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    t.put("/_sim/faults", json!({"api_latency_ms": 300}));
    let t0 = Instant::now();
    t.api(reqwest::Method::GET, "/v2/droplets", None);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    t.put("/_sim/faults", json!({}));
    let statuses: Vec<u64> = t
        .sim
        .requests()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(&statuses[..3], &[401, 401, 404]);
    assert!(!format!("{:?}", t.sim.requests()).contains(TOKEN));
    // Clearing the log.
    assert_eq!(
        t.c.delete(t.url("/_sim/requests")).send().unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert!(t.sim.requests().is_empty());
}

#[test]
fn hand_operations() {
    let t = T::new(args(3));
    let ds = t.list();
    let r = t.put(
        &format!("/_sim/droplets/{}/tags", ds[0].id),
        json!(["other"]),
    );
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(t.list().len(), 2);
    let r =
        t.c.delete(t.url(&format!("/_sim/droplets/{}", ds[1].id)))
            .send()
            .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(t.list().len(), 1);
    assert!(t.scrape(&t.metrics_url(&ds[1])).unwrap_err().is_connect());
    assert!(
        t.sim.requests().iter().all(|r| r["method"] == "GET"),
        "hand operations are not API requests"
    );
    let load: Value = t.c.get(t.url("/_sim/load")).send().unwrap().json().unwrap();
    assert_eq!(load["active"], 2);
}

#[test]
fn latency_is_a_timer_not_a_thread() {
    // 32 requests at once, 500 ms each: a server that slept on its (at most 8) worker
    // threads would need 2 s or more; timers answer them all after about 500 ms.
    let mut a = args(32);
    a.latency_ms = 500;
    let t = T::new(a);
    let t0 = Instant::now();
    let ds = t.list();
    assert!(t0.elapsed() >= Duration::from_millis(500));
    let urls: Vec<String> = ds.iter().map(|d| t.metrics_url(d)).collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(urls.len() + 1));
    let handles: Vec<_> = urls
        .into_iter()
        .map(|u| {
            let (c, barrier) = (t.c.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                c.get(u).send().map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wall = t0.elapsed();
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    assert!(
        wall >= Duration::from_millis(500) && wall < Duration::from_millis(1500),
        "{wall:?} for 32 at once"
    );
}

#[test]
fn written_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.toml");
    let mut a = args(2);
    a.config_out = Some(path.clone());
    let t = T::new(a);
    assert_eq!(t.sim.config_path.as_deref(), Some(path.as_path()));
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = crate::config::parse(&path, &text, &Default::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cfg.api.url, t.sim.api_url);
    assert_eq!(cfg.state_file, dir.path().join("state.json"));
    let token_file = cfg.api.token_file.clone().unwrap();
    assert_eq!(token_file, dir.path().join("sim-token"));
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        SIM_TOKEN
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let g = &cfg.groups[0];
    assert_eq!(
        (g.tag.as_str(), g.metrics.port),
        ("web", t.sim.metrics_port)
    );
    assert_eq!(g.health_check.ports, [t.sim.metrics_port]);
    assert!(text.starts_with("# written by doscale sim"));
    let names: HashMap<_, _> = t
        .sim
        .droplets()
        .into_iter()
        .map(|d| (d.name, d.status))
        .collect();
    assert_eq!(names.len(), 2);
}

/// `--config-out` into a folder that does not exist yet creates it, and the config carries the
/// example's policies and target (config/doscale.toml), so evaluate and plan have something to
/// show.
#[test]
fn written_config_creates_its_folder_and_has_the_example_policies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/sub/sim.toml");
    let mut a = args(2);
    a.config_out = Some(path.clone());
    let t = T::new(a);
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = crate::config::parse(&path, &text, &Default::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(dir.path().join("new/sub/sim-token").is_file());
    let example_path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/doscale.toml"));
    let example = crate::config::parse(
        example_path,
        &std::fs::read_to_string(example_path).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let (ours, theirs) = (&cfg.groups[0], &example.groups[0]);
    assert_eq!(ours.policies.len(), theirs.policies.len());
    assert!(!ours.policies.is_empty());
    for (o, e) in ours.policies.iter().zip(&theirs.policies) {
        assert_eq!(format!("{o:?}"), format!("{e:?}"));
    }
    assert_eq!(format!("{:?}", ours.target), format!("{:?}", theirs.target));
    assert!(ours.target.is_some());
    // Still the simulator's group, not the example's.
    assert_eq!(ours.metrics.port, t.sim.metrics_port);
}

#[test]
fn two_simulators_side_by_side() {
    let a = T::new(args(50));
    let b = T::new(args(50));
    assert_ne!(a.sim.api_url, b.sim.api_url);
    for t in [&a, &b] {
        let ds = t.list();
        assert_eq!(ds.len(), 50);
        assert_eq!(
            t.scrape(&t.metrics_url(&ds[49])).unwrap().status(),
            StatusCode::OK
        );
    }
    a.sim.shutdown();
    let ds = b.list();
    assert_eq!(
        b.scrape(&b.metrics_url(&ds[0])).unwrap().status(),
        StatusCode::OK
    );
}

#[test]
fn an_empty_fleet_grows() {
    let t = T::new(args(0));
    assert!(t.sim.metrics_port > 0);
    assert!(t.list().is_empty());
    let body = json!({"name": "web-1", "region": "nyc3", "size": "s-2vcpu-4gb",
                      "image": "ubuntu-24-04-x64", "tags": ["web"]});
    let r = t.api(reqwest::Method::POST, "/v2/droplets", Some(body));
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    std::thread::sleep(Duration::from_millis(600));
    let ds = t.list();
    assert_eq!(ds[0].status, "active");
    t.sim.set_demand(0.5);
    let text = t.scrape(&t.metrics_url(&ds[0])).unwrap().text().unwrap();
    assert!(text.contains("node_load1"));
    let index: Value = t.c.get(t.url("/_sim")).send().unwrap().json().unwrap();
    assert!(index["endpoints"].is_array());
}
