use std::path::Path;
use std::sync::atomic::AtomicU64;

use super::*;
use crate::clock::ManualClock;
use crate::do_api::model::{Action, CreateRequest, CreateResponse};
use crate::do_api::monitoring::{MetricsData, MetricsResult, Num, Stamp};
use crate::do_api::{ApiError, Deleted};

const GROUP: &str = r#"
[[group]]
name = "web"
tag = "web"
min = 1
max = 60
[group.metrics]
source = "digitalocean"
[group.metrics.digitalocean]
budget_per_minute = 100
[[group.policy]]
name = "up"
scale = "up"
conditions = [
  { name = "load1", expr = "node_load1", function = "mean", op = ">=", threshold = 2 },
  { name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', function = "mean", op = ">=", threshold = 0.8 },
  { name = "mem", expr = "node_memory_MemFree_bytes + node_memory_Cached_bytes", function = "min", op = "<=", threshold = 1e9 },
  { name = "rx", expr = 'rate(node_network_receive_bytes_total{device="eth0"}[5m])', function = "max", op = ">=", threshold = 1e8 },
]
"#;

fn group(text: &str) -> Group {
    crate::config::parse(Path::new("t.toml"), text, &Default::default())
        .unwrap()
        .groups
        .remove(0)
}

fn cfg(g: &Group) -> DoMonitoring {
    match &g.metrics.source {
        Source::DigitalOcean(c) => c.clone(),
        _ => panic!("not digitalocean"),
    }
}

#[test]
fn a_droplet_costs_one_request_per_endpoint_its_expressions_read() {
    let g = group(GROUP);
    let labels: Vec<String> = needs(&g, false).iter().map(Need::label).collect();
    // eth0 only: the selector's device matcher rules out the private interface.
    assert_eq!(
        labels,
        [
            "cpu",
            "load_1",
            "memory_cached",
            "memory_free",
            "bandwidth (public, inbound)"
        ]
    );
    // every endpoint, bandwidth twice per direction (public and private)
    assert_eq!(needs(&g, true).len(), 14);
}

#[test]
fn the_budget_per_minute_bounds_a_pass() {
    let c = DoMonitoring {
        budget_per_minute: 200,
        ..Default::default()
    };
    // 50 droplets at 6 requests: 300 > 199 left after the listing: 33 fit.
    let p = plan(&c, 1, None, 6, 50);
    assert_eq!(p.droplets, 33);
    assert_eq!(p.allowed, 199);
    let short = p.short.unwrap();
    assert!(short.contains("33 of 50 droplets"), "{short}");
    assert!(short.contains("budget_per_minute = 200"), "{short}");
    // Everything fits: no note.
    let p = plan(&c, 1, None, 6, 30);
    assert_eq!((p.droplets, p.short), (30, None));
}

#[test]
fn the_headers_bound_the_hour() {
    let c = DoMonitoring::default();
    let limits = RateLimit {
        limit: 5000,
        remaining: 1010,
        reset: None,
    };
    // 3990 used of budget_per_hour 4000: 10 left, one droplet of 6.
    let p = plan(&c, 1, Some(limits), 6, 50);
    assert_eq!((p.allowed, p.droplets), (10, 1));
    assert!(p.short.unwrap().contains("3990 of budget_per_hour = 4000"));
    // At the budget: nothing.
    let spent = RateLimit {
        remaining: 900,
        ..limits
    };
    assert_eq!(plan(&c, 1, Some(spent), 6, 50).droplets, 0);
    // A lower limit than the budget (another account plan) is the bound.
    let small = RateLimit {
        limit: 100,
        remaining: 100,
        reset: None,
    };
    assert_eq!(plan(&c, 1, Some(small), 10, 50).droplets, 10);
}

/// One series of a response: its labels and (time, value) samples.
type Series<'a> = (Vec<(&'a str, &'a str)>, Vec<(f64, f64)>);

fn body(results: Vec<Series<'_>>) -> Metrics {
    Metrics {
        status: "success".into(),
        data: MetricsData {
            result_type: "matrix".into(),
            result: results
                .into_iter()
                .map(|(labels, values)| MetricsResult {
                    metric: labels
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    values: values
                        .into_iter()
                        .map(|(t, v)| (Stamp(t), Num(v)))
                        .collect(),
                })
                .collect(),
        },
    }
}

fn need(family: &str, interface: Option<&'static str>) -> Need {
    Need {
        mapped: crate::config::digitalocean::mapped(family).unwrap(),
        interface,
    }
}

#[test]
fn cpu_seconds_are_shared_among_the_cpus_as_a_counter() {
    let b = body(vec![
        (
            vec![("host_id", "1"), ("mode", "idle")],
            vec![(120.0, 100.0), (60.0, 50.0)],
        ),
        (vec![("host_id", "1"), ("mode", "user")], vec![(120.0, 8.0)]),
    ]);
    let got = map(&need("node_cpu_seconds_total", None), &b, 0.0, 2).unwrap();
    assert_eq!(
        got,
        [
            (
                r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#.to_string(),
                50.0
            ),
            (
                r#"node_cpu_seconds_total{cpu="1",mode="idle"}"#.to_string(),
                50.0
            ),
            (
                r#"node_cpu_seconds_total{cpu="0",mode="user"}"#.to_string(),
                4.0
            ),
            (
                r#"node_cpu_seconds_total{cpu="1",mode="user"}"#.to_string(),
                4.0
            ),
        ]
    );
}

#[test]
fn gauges_take_the_latest_sample_and_filesystems_keep_their_labels() {
    let b = body(vec![(
        vec![("host_id", "1")],
        vec![(60.0, 1.5), (180.0, 2.5), (120.0, 9.0)],
    )]);
    assert_eq!(
        map(&need("node_load1", None), &b, 0.0, 1).unwrap(),
        [("node_load1".to_string(), 2.5)]
    );
    let b = body(vec![(
        vec![
            ("device", "/dev/vda1"),
            ("fstype", "ext4"),
            ("host_id", "1"),
            ("mountpoint", "/"),
        ],
        vec![(60.0, 25832407040.0)],
    )]);
    assert_eq!(
        map(&need("node_filesystem_free_bytes", None), &b, 0.0, 1).unwrap(),
        [(
            r#"node_filesystem_free_bytes{device="/dev/vda1",fstype="ext4",mountpoint="/"}"#
                .to_string(),
            25832407040.0
        )]
    );
    // No samples: nothing (the caller says "no data"), never a zero.
    let empty = body(vec![(vec![("host_id", "1")], vec![])]);
    assert!(map(&need("node_load1", None), &empty, 0.0, 1)
        .unwrap()
        .is_empty());
    let mut failed = body(vec![]);
    failed.status = "error".into();
    assert!(map(&need("node_load1", None), &failed, 0.0, 1).is_err());
}

#[test]
fn bandwidth_is_integrated_since_the_hour_began() {
    // 8 Mbps = 1e6 bytes a second; samples before the hour do not count.
    let b = body(vec![(
        vec![("direction", "inbound"), ("interface", "public")],
        vec![(3500.0, 80.0), (3600.0, 8.0), (3660.0, 8.0), (3690.0, 16.0)],
    )]);
    let got = map(
        &need("node_network_receive_bytes_total", Some("public")),
        &b,
        3600.0,
        1,
    )
    .unwrap();
    assert_eq!(
        got,
        [(
            r#"node_network_receive_bytes_total{device="eth0"}"#.to_string(),
            60e6 + 60e6
        )]
    );
    let got = map(
        &need("node_network_transmit_bytes_total", Some("private")),
        &b,
        3600.0,
        1,
    )
    .unwrap();
    assert_eq!(
        got[0].0,
        r#"node_network_transmit_bytes_total{device="eth1"}"#
    );
}

/// An API with `n` active droplets that answers every monitoring request with one sample,
/// counting them.
struct Fake {
    n: u64,
    requests: AtomicU64,
    limits: Option<RateLimit>,
}

impl DoApi for Fake {
    fn list_by_tag(
        &self,
        tag: &str,
        on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> std::result::Result<(), ApiError> {
        on_page(
            (1..=self.n)
                .map(|id| Droplet {
                    id,
                    name: format!("{tag}-{id}"),
                    status: "active".into(),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    tags: vec![tag.into()],
                    networks: Default::default(),
                    vcpus: Some(2),
                })
                .collect(),
        );
        Ok(())
    }
    fn get_droplet(&self, _: u64) -> std::result::Result<Option<Droplet>, ApiError> {
        unreachable!()
    }
    fn create(&self, _: &CreateRequest) -> std::result::Result<CreateResponse, ApiError> {
        unreachable!()
    }
    fn delete(&self, _: u64) -> std::result::Result<Deleted, ApiError> {
        unreachable!()
    }
    fn get_action(&self, _: u64) -> std::result::Result<Action, ApiError> {
        unreachable!()
    }
    fn droplet_metric(&self, q: &MetricQuery) -> std::result::Result<Metrics, ApiError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let labels = match q.endpoint {
            "cpu" => vec![("host_id", "1"), ("mode", "idle")],
            _ => vec![("host_id", "1")],
        };
        Ok(body(vec![(
            labels,
            vec![(q.end as f64 - 60.0, 1.0), (q.end as f64, 2.0)],
        )]))
    }
    fn rate_limit(&self) -> Option<RateLimit> {
        self.limits
    }
}

#[test]
fn a_fifty_droplet_pass_stays_within_the_budget_and_says_so() {
    let g = group(GROUP);
    // 5 requests a droplet, 100 a pass, 1 for the listing: 19 droplets fit.
    let api = Fake {
        n: 50,
        requests: AtomicU64::new(0),
        limits: None,
    };
    let clock = ManualClock::new("2026-12-03T07:00:30Z".parse().unwrap());
    let s = DoMonitoringSource
        .scrape(&api, &g, false, None, &clock)
        .unwrap();
    assert_eq!(api.requests.load(Ordering::SeqCst), 19 * 5);
    assert_eq!(s.droplets.len(), 50);
    let ok = s.droplets.iter().filter(|d| d.error.is_none()).count();
    assert_eq!(ok, 19);
    for d in s.droplets.iter().filter(|d| d.error.is_some()) {
        let e = d.error.as_deref().unwrap();
        assert!(e.starts_with("no data: request budget exhausted"), "{e}");
        assert!(d.series.is_empty());
    }
    let d = s.droplets.iter().find(|d| d.error.is_none()).unwrap();
    assert_eq!(d.series.len(), 2 + 1 + 1 + 1 + 1, "{:?}", d.series);
    // The hour's headers say 4000 are used: nothing is asked.
    let api = Fake {
        n: 50,
        requests: AtomicU64::new(0),
        limits: Some(RateLimit {
            limit: 5000,
            remaining: 1000,
            reset: None,
        }),
    };
    let s = DoMonitoringSource
        .scrape(&api, &g, false, None, &clock)
        .unwrap();
    assert_eq!(api.requests.load(Ordering::SeqCst), 0);
    assert!(s.droplets.iter().all(|d| d
        .error
        .as_deref()
        .is_some_and(|e| e.contains("budget_per_hour = 4000"))));
}

#[test]
fn a_condition_on_a_series_the_api_lacks_is_a_config_error() {
    let text = GROUP.replace(
        "node_load1\", function",
        "sum(node_disk_read_bytes_total)\", function",
    );
    let e = crate::config::parse(Path::new("t.toml"), &text, &Default::default()).unwrap_err();
    assert_eq!(e.key, "group[web].policy[up].conditions[load1].expr");
    assert!(
        e.msg.contains(
            "`node_disk_read_bytes_total` is not served by the DigitalOcean monitoring API"
        ),
        "{}",
        e.msg
    );
    // The same condition on the scrape source is fine.
    let scrape = text
        .replace("source = \"digitalocean\"", "source = \"scrape\"")
        .replace(
            "[group.metrics.digitalocean]\nbudget_per_minute = 100\n",
            "",
        );
    crate::config::parse(Path::new("t.toml"), &scrape, &Default::default()).unwrap();
    // The sub-table without the source is refused, not ignored.
    let orphan = GROUP.replace("source = \"digitalocean\"\n", "");
    let e = crate::config::parse(Path::new("t.toml"), &orphan, &Default::default()).unwrap_err();
    assert_eq!(e.key, "group[web].metrics.digitalocean");
}

#[test]
fn check_says_what_a_pass_costs() {
    let g = group(GROUP);
    let line = cost_line(&g, &cfg(&g));
    assert!(
        line.contains("5 requests per droplet per pass (cpu, load_1, memory_cached, memory_free, bandwidth (public, inbound))"),
        "{line}"
    );
    assert!(
        line.contains("50 droplets = 251 (over budget_per_minute = 100: 19 fit)"),
        "{line}"
    );
    assert!(
        line.contains("10 droplets = 51,") || line.contains("10 droplets = 51;"),
        "{line}"
    );
}
