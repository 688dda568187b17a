use super::*;
use crate::config::{self, Op};
use crate::series::SeriesMap;
use chrono::TimeZone;
use std::path::Path;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn group(extra: &str) -> Group {
    let text = format!("[[group]]\nname = \"web\"\ntag = \"web\"\nmin = 1\nmax = 10\n{extra}");
    config::parse(Path::new("/etc/doscale/t.toml"), &text, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .groups
        .remove(0)
}

fn series(items: &[(&str, f64)]) -> SeriesMap {
    items.iter().map(|(k, v)| ((*k).into(), *v)).collect()
}

/// An active droplet created a day before `t0`, scraped fine.
fn active(id: u64, items: &[(&str, f64)]) -> ScrapedDroplet {
    ScrapedDroplet {
        id,
        name: format!("web-{id}").into(),
        status: "active".into(),
        created_at: t0() - chrono::Duration::days(1),
        address: Some(format!("10.0.0.{id}").into()),
        error: None,
        protected: false,
        series: series(items),
    }
}

fn scrape(at: DateTime<Utc>, droplets: Vec<ScrapedDroplet>) -> Scrape {
    Scrape {
        at,
        droplets,
        bad_lines: 0,
        bad_line_example: None,
    }
}

const LOAD_POLICY: &str = r#"
[[group.policy]]
name = "hot"
scale = "up"
match = "all"
conditions = [
  { name = "load1", expr = "node_load1", function = "mean", op = ">=", threshold = 2 },
  { name = "load5", expr = "node_load5", function = "max", op = ">", threshold = 1 },
]
[[group.policy]]
name = "either"
scale = "down"
match = "any"
conditions = [
  { name = "load1", expr = "node_load1", function = "min", op = "<", threshold = 0.5 },
  { name = "load5", expr = "node_load5", function = "p50", op = "<", threshold = 0.5 },
]
"#;

#[test]
fn who_is_evaluated_and_why_not() {
    let g = group("warmup = \"5m\"\n");
    let mut young = active(2, &[("node_load1", 1.0)]);
    young.created_at = t0() - chrono::Duration::seconds(133);
    let mut failed = active(3, &[]);
    failed.error = Some("connection refused".into());
    let mut new = active(4, &[]);
    new.status = "new".into();
    let mut off = active(5, &[("node_load1", 9.0)]);
    off.status = "off".into();
    let ok = active(1, &[("node_load1", 1.25)]);
    let cur = scrape(t0(), vec![ok, young, failed, new, off]);
    let e = evaluate_group(&g, &cur, None, t0());
    assert_eq!(e.size, 4, "new and active count toward size");
    assert_eq!(e.evaluated, 1);
    let why: Vec<(u64, bool, Option<&str>)> = e
        .droplets
        .iter()
        .map(|d| (d.id, d.evaluated, d.reason.as_deref()))
        .collect();
    assert_eq!(
        why,
        vec![
            (1, true, None),
            (2, false, Some("in warmup: 2m13s of 5m")),
            (3, false, Some("scrape failed: connection refused")),
            (4, false, Some("new")),
            (5, false, Some("status off")),
        ]
    );
    assert_eq!(e.droplets[0].load1, Some(1.25));
    assert_eq!(e.droplets[3].load1, None);
    // Eligible: active and out of warmup (1 and 3); reporting: of those, scraped (1).
    assert_eq!(
        e.reporting,
        Reporting {
            eligible: 2,
            reporting: 1,
            required: 1.0,
            ok: false
        }
    );
    let half = evaluate_group(&group("min_reporting = 0.5\n"), &cur, None, t0());
    assert!(half.reporting.ok);
    // Nobody eligible: not ok.
    let none = evaluate_group(&g, &scrape(t0(), vec![]), None, t0());
    assert_eq!(
        none.reporting,
        Reporting {
            eligible: 0,
            reporting: 0,
            required: 1.0,
            ok: false
        }
    );
    assert_eq!((none.size, none.evaluated), (0, 0));
}

#[test]
fn conditions_per_droplet_and_over_the_group() {
    let g = group(LOAD_POLICY);
    let cur = scrape(
        t0(),
        vec![
            active(1, &[("node_load1", 3.0), ("node_load5", 0.25)]),
            active(2, &[("node_load1", 2.0), ("node_load5", 1.5)]),
            active(3, &[("node_load5", 0.5)]), // no node_load1
        ],
    );
    let e = evaluate_group(&g, &cur, None, t0());
    let hot = &e.policies[0];
    assert_eq!(
        (hot.name.as_str(), hot.scale, hot.step, hot.match_),
        ("hot", Scale::Up, 1, Match::All)
    );
    let load1 = &hot.conditions[0];
    assert_eq!(
        load1.value,
        Some(2.5),
        "mean over the droplets that have a value"
    );
    assert!(load1.satisfied);
    assert_eq!(load1.function, "mean");
    assert_eq!((load1.op.as_str(), load1.threshold), (">=", 2.0));
    assert_eq!(load1.expr, "node_load1");
    assert_eq!(
        *load1.per_droplet,
        crate::policy::PerDroplet::from_iter([(1, Some(3.0)), (2, Some(2.0)), (3, None)])
    );
    let why = load1.no_data.as_deref().unwrap();
    assert_eq!(
        why,
        "1 of 3 droplets have no value: no series matches `node_load1` (3 web-3)"
    );
    assert_eq!(hot.conditions[1].value, Some(1.5));
    assert!(hot.conditions[1].satisfied);
    assert!(hot.satisfied);
    let either = &e.policies[1];
    assert_eq!(either.conditions[0].value, Some(2.0));
    assert!(!either.conditions[0].satisfied);
    assert_eq!(either.conditions[1].value, Some(0.5));
    assert!(!either.conditions[1].satisfied);
    assert!(!either.satisfied);
}

#[test]
fn no_data_is_never_satisfied() {
    let g = group(&LOAD_POLICY.replace("\"<\", threshold = 0.5", "\"!=\", threshold = 7"));
    // Nobody evaluated at all.
    let mut d = active(1, &[("node_load1", 1.0)]);
    d.error = Some("timeout".into());
    let e = evaluate_group(&g, &scrape(t0(), vec![d]), None, t0());
    for p in &e.policies {
        assert!(!p.satisfied);
        for c in &p.conditions {
            assert_eq!(c.value, None);
            assert!(!c.satisfied, "{} {} with no data", c.op, c.threshold);
            assert!(c
                .no_data
                .as_deref()
                .unwrap()
                .contains("no droplet to evaluate"));
            assert!(c.per_droplet.is_empty());
        }
    }
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(
        json["policies"][0]["conditions"][0]["value"],
        serde_json::Value::Null
    );
    assert_eq!(json["policies"][0]["match"], "all");
}

#[test]
fn rates_match_the_previous_scrape_by_droplet_id() {
    let g = group(
        r#"[[group.policy]]
name = "cpu"
scale = "up"
conditions = [ { name = "busy", expr = '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', function = "max", op = ">", threshold = 0.8 } ]
"#,
    );
    let idle = |id: u64, a: f64, b: f64| {
        active(
            id,
            &[
                (r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#, a),
                (r#"node_cpu_seconds_total{cpu="1",mode="idle"}"#, b),
            ],
        )
    };
    let prev = scrape(
        t0(),
        vec![
            idle(1, 100.0, 100.0),
            idle(2, 100.0, 100.0),
            idle(9, 0.0, 0.0),
        ],
    );
    let later = t0() + chrono::Duration::seconds(10);
    // 1: 20% busy; 2: 90% busy; 3: new in this scrape (no previous one).
    let cur = scrape(
        later,
        vec![
            idle(1, 108.0, 108.0),
            idle(2, 101.0, 101.0),
            idle(3, 5.0, 5.0),
        ],
    );
    let e = evaluate_group(&g, &cur, Some(&prev), later);
    let c = &e.policies[0].conditions[0];
    assert!((c.per_droplet.get(&1).copied().flatten().unwrap() - 0.2).abs() < 1e-9);
    assert!((c.per_droplet.get(&2).copied().flatten().unwrap() - 0.9).abs() < 1e-9);
    assert_eq!(c.per_droplet.get(&3), Some(&None));
    assert!(
        c.no_data
            .as_deref()
            .unwrap()
            .contains("no previous scrape within 5m (3 web-3)"),
        "{:?}",
        c.no_data
    );
    assert!((c.value.unwrap() - 0.9).abs() < 1e-9);
    assert!(e.policies[0].satisfied);
    // A previous scrape that failed for a droplet does not serve its rates.
    let mut prev2 = prev.clone();
    prev2.droplets[0].error = Some("refused".into());
    let e2 = evaluate_group(&g, &cur, Some(&prev2), later);
    assert_eq!(
        e2.policies[0].conditions[0].per_droplet.get(&1),
        Some(&None)
    );
    // Without any previous scrape: no data, not zero.
    let e3 = evaluate_group(&g, &cur, None, later);
    assert_eq!(e3.policies[0].conditions[0].value, None);
    assert!(!e3.policies[0].satisfied);
}

#[test]
fn group_functions() {
    let v = [4.0, 1.0, 3.0, 2.0];
    assert_eq!(aggregate(Function::Min, &v), Some(1.0));
    assert_eq!(aggregate(Function::Max, &v), Some(4.0));
    assert_eq!(aggregate(Function::Sum, &v), Some(10.0));
    assert_eq!(aggregate(Function::Mean, &v), Some(2.5));
    assert_eq!(aggregate(Function::Median, &v), Some(2.5));
    assert_eq!(aggregate(Function::Median, &[5.0, 1.0, 3.0]), Some(3.0));
    // numpy.percentile's linear interpolation.
    assert_eq!(aggregate(Function::Percentile(25.0), &v), Some(1.75));
    assert_eq!(aggregate(Function::Percentile(50.0), &v), Some(2.5));
    assert_eq!(aggregate(Function::Percentile(0.0), &v), Some(1.0));
    assert_eq!(aggregate(Function::Percentile(100.0), &v), Some(4.0));
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    assert!((aggregate(Function::Percentile(90.0), &ten).unwrap() - 9.1).abs() < 1e-12);
    assert!((aggregate(Function::Percentile(99.0), &ten).unwrap() - 9.91).abs() < 1e-12);
    assert_eq!(aggregate(Function::Percentile(90.0), &[7.0]), Some(7.0));
    for f in [
        Function::Min,
        Function::Max,
        Function::Sum,
        Function::Mean,
        Function::Median,
        Function::Percentile(90.0),
    ] {
        assert_eq!(aggregate(f, &[]), None);
    }
}

fn target_group(value: f64, tolerance: f64) -> Group {
    group(&format!(
        "[group.target]\nexpr = \"node_load1\"\nfunction = \"mean\"\nvalue = {value:?}\ntolerance = {tolerance:?}\n"
    ))
}

fn loads(loads: &[f64]) -> Vec<ScrapedDroplet> {
    loads
        .iter()
        .enumerate()
        .map(|(i, l)| active(i as u64 + 1, &[("node_load1", *l)]))
        .collect()
}

#[test]
fn target_tracking() {
    let g = target_group(0.6, 0.1);
    let rec = |ds: Vec<ScrapedDroplet>| {
        evaluate_group(&g, &scrape(t0(), ds), None, t0())
            .target
            .unwrap()
    };
    // 4 droplets at 0.9 against 0.6: ceil(4 × 1.5) = 6.
    let up = rec(loads(&[0.9, 0.9, 0.9, 0.9]));
    assert_eq!((up.ready, up.recommended), (4, 6));
    assert!((up.aggregate.unwrap() - 0.9).abs() < 1e-12);
    assert_eq!(up.value, 0.6);
    assert_eq!(up.function, "mean");
    assert_eq!(up.reason, "ceil(4 × 0.9 / 0.6) = 6");
    // 4 at 0.3: ceil(4 × 0.5) = 2.
    assert_eq!(rec(loads(&[0.3, 0.3, 0.3, 0.3])).recommended, 2);
    // Inside the band: the current size.
    let within = rec(loads(&[0.62, 0.64, 0.6, 0.58]));
    assert_eq!(within.recommended, 4);
    assert!(
        within.reason.starts_with("within tolerance"),
        "{}",
        within.reason
    );
    // Idle droplets: never below 1 while the group has members.
    assert_eq!(rec(loads(&[0.0, 0.0])).recommended, 1);
    // No data: the current size, and the reason says why.
    let mut ds = loads(&[0.9, 0.9]);
    ds.iter_mut().for_each(|d| d.series.clear());
    let none = rec(ds);
    assert_eq!((none.aggregate, none.recommended), (None, 2));
    assert!(
        none.reason
            .starts_with("no data: keeping the current size 2"),
        "{}",
        none.reason
    );
    assert!(
        none.reason.contains("no series matches `node_load1`"),
        "{}",
        none.reason
    );
}

#[test]
fn target_tracking_does_not_move_against_the_measurement() {
    let g = target_group(0.6, 0.1);
    // 10 members, 6 of them in warmup; the 4 evaluated run at 0.9 (above the target):
    // ceil(4 × 1.5) = 6 would shrink a group under load. Keep 10.
    let mut ds = loads(&[0.9; 10]);
    for d in ds.iter_mut().skip(4) {
        d.created_at = t0();
    }
    let t = evaluate_group(&g, &scrape(t0(), ds), None, t0())
        .target
        .unwrap();
    assert_eq!((t.ready, t.recommended), (4, 10));
    assert!(
        t.reason.contains("6 of 10 droplets are not evaluated yet"),
        "{}",
        t.reason
    );
}

#[test]
fn load1_is_reported_per_droplet() {
    let g = group("");
    let e = evaluate_group(&g, &scrape(t0(), loads(&[0.5, 1.5])), None, t0());
    assert_eq!(
        e.droplets.iter().map(|d| d.load1).collect::<Vec<_>>(),
        vec![Some(0.5), Some(1.5)]
    );
    assert!(e.policies.is_empty() && e.target.is_none());
    assert_eq!(e.at, t0());
    assert_eq!(e.name, "web");
}

// ---------------------------------------------------------------------------------------
// do-scaler's policies.

const EXAMPLE: &str = include_str!("../../config/do-scaler-policies.toml");

fn example() -> Group {
    config::parse(
        Path::new("config/do-scaler-policies.toml"),
        EXAMPLE,
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .groups
    .remove(0)
}

#[test]
fn the_do_scaler_example_loads() {
    let g = example();
    assert_eq!(
        (g.name.as_str(), g.tag.as_str(), g.min, g.max),
        ("web", "web", 2, 8)
    );
    let shape: Vec<(&str, Scale, usize)> = g
        .policies
        .iter()
        .map(|p| (p.name.as_str(), p.scale, p.conditions.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("loadavg", Scale::Up, 3),
            ("mem_avail", Scale::Up, 1),
            ("down", Scale::Down, 4)
        ]
    );
    let mem = &g.policies[1].conditions[0];
    assert_eq!(
        mem.expr.text(),
        "node_memory_MemFree_bytes + node_memory_Cached_bytes"
    );
    assert_eq!(
        (mem.function, mem.op, mem.threshold),
        (Function::Mean, Op::Le, 2068099072.0)
    );
    assert_eq!(g.policies[2].conditions[0].function, Function::Min);
    assert_eq!(g.policies[2].conditions[1].function, Function::Max);
}

/// do-scaler's decision, re-implemented from its `policy.py`: per droplet, reduce the samples
/// with the reducer (left to right); across droplets apply the function (Python's
/// `statistics`); compare with the operator against the threshold; `all`/`any` over conditions.
mod do_scaler {
    pub struct Cond {
        pub samples: &'static [&'static str],
        pub reducer: char,
        pub function: &'static str,
        pub operator: &'static str,
        pub threshold: &'static str,
    }

    pub fn policies() -> Vec<(&'static str, &'static str, Vec<Cond>)> {
        let load = |name: &'static str, function, operator, threshold| Cond {
            samples: match name {
                "load1" => &["node_load1"],
                "load5" => &["node_load5"],
                _ => &["node_load15"],
            },
            reducer: '+',
            function,
            operator,
            threshold,
        };
        const MEM: &[&str] = &["node_memory_MemFree_bytes", "node_memory_Cached_bytes"];
        vec![
            (
                "loadavg",
                "all",
                vec![
                    load("load1", "mean", ">=", "2"),
                    load("load5", "mean", ">=", "2"),
                    load("load15", "mean", ">=", "2"),
                ],
            ),
            (
                "mem_avail",
                "all",
                vec![Cond {
                    samples: MEM,
                    reducer: '+',
                    function: "mean",
                    operator: "<=",
                    threshold: "2068099072.0",
                }],
            ),
            (
                "down",
                "all",
                vec![
                    Cond {
                        samples: MEM,
                        reducer: '+',
                        function: "min",
                        operator: ">=",
                        threshold: "3102148608.0",
                    },
                    load("load1", "max", "<=", "0.5"),
                    load("load5", "max", "<=", "0.5"),
                    load("load15", "max", "<=", "0.5"),
                ],
            ),
        ]
    }

    fn reduce(reducer: char, samples: &[f64]) -> f64 {
        samples[1..].iter().fold(samples[0], |a, b| match reducer {
            '+' => a + b,
            '-' => a - b,
            '*' => a * b,
            _ => a / b,
        })
    }

    fn function(name: &str, values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        match name {
            "min" => v[0],
            "max" => v[v.len() - 1],
            "mean" => v.iter().sum::<f64>() / v.len() as f64,
            _ => {
                let n = v.len();
                if n % 2 == 1 {
                    v[n / 2]
                } else {
                    (v[n / 2 - 1] + v[n / 2]) / 2.0
                }
            }
        }
    }

    fn compare(op: &str, x: f64, y: f64) -> bool {
        match op {
            "<" => x < y,
            "<=" => x <= y,
            ">" => x > y,
            ">=" => x >= y,
            _ => x == y,
        }
    }

    /// `droplets[i][name]` is droplet i's sample `name`.
    pub fn satisfied(
        m: &str,
        conds: &[Cond],
        droplets: &[std::collections::BTreeMap<&str, f64>],
    ) -> bool {
        let results = conds.iter().map(|c| {
            let values: Vec<f64> = droplets
                .iter()
                .map(|d| {
                    reduce(
                        c.reducer,
                        &c.samples.iter().map(|s| d[s]).collect::<Vec<_>>(),
                    )
                })
                .collect();
            compare(
                c.operator,
                function(c.function, &values),
                c.threshold.parse().unwrap(),
            )
        });
        let results: Vec<bool> = results.collect();
        if m == "all" {
            results.iter().all(|r| *r)
        } else {
            results.iter().any(|r| *r)
        }
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Map;

    /// A droplet's five samples on grids where sums and means are exact in f64 (so the
    /// comparison with do-scaler's arithmetic is exact, thresholds included): loads in
    /// quarters from 0 to 4, memory in whole MiB up to 4 GiB.
    fn droplet() -> impl Strategy<Value = [f64; 5]> {
        let load = (0u32..=16).prop_map(|q| q as f64 / 4.0);
        let mib = (0u64..=4096).prop_map(|m| (m * 1_048_576) as f64);
        (load.clone(), load.clone(), load, mib.clone(), mib)
            .prop_map(|(a, b, c, d, e)| [a, b, c, d, e])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn verdicts_equal_do_scalers(fleet in proptest::collection::vec(droplet(), 1..12)) {
            const NAMES: [&str; 5] = ["node_load1", "node_load5", "node_load15", "node_memory_MemFree_bytes", "node_memory_Cached_bytes"];
            let g = example();
            let scraped: Vec<ScrapedDroplet> = fleet
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let items: Vec<(&str, f64)> = NAMES.iter().copied().zip(v.iter().copied()).collect();
                    active(i as u64 + 1, &items)
                })
                .collect();
            let e = evaluate_group(&g, &scrape(t0(), scraped), None, t0());
            let samples: Vec<Map<&str, f64>> = fleet.iter().map(|v| NAMES.iter().copied().zip(v.iter().copied()).collect()).collect();
            for (name, m, conds) in do_scaler::policies() {
                let ours = e.policies.iter().find(|p| p.name == name).unwrap();
                prop_assert_eq!(ours.satisfied, do_scaler::satisfied(m, &conds, &samples), "policy {}", name);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Partial data never shrinks a group (issue 14.1): 4 droplets, one busy; the busy one gives no
// value for the condition in one way or another, and the other three alone would say "shrink
// by 3". Evaluated and planned as `doscale evaluate` and `doscale plan` do.

fn partial_group(expr: &str) -> Group {
    group(
        &r#"warmup = "0s"
cooldown_down = "0s"
max_step_down = 3
[[group.policy]]
name = "busy"
scale = "up"
conditions = [ { name = "work", expr = "EXPR", function = "mean", op = ">=", threshold = 0.75 } ]
[[group.policy]]
name = "idle"
scale = "down"
step = 3
conditions = [ { name = "work", expr = "EXPR", function = "mean", op = "<", threshold = 0.5 } ]
[group.template]
name = "web-{n}"
region = "nyc3"
size = "s-1vcpu-1gb"
image = "ubuntu-24-04-x64"
"#
        .replace("EXPR", expr),
    )
}

/// Three idle droplets at 0.1 and the busy one (id 4) with `busy` as its series.
fn three_idle_and(busy: &[(&str, f64)]) -> Vec<ScrapedDroplet> {
    let mut ds = loads(&[0.1, 0.1, 0.1]);
    ds.push(active(4, busy));
    ds
}

fn plan_of(g: &Group, cur: &Scrape, prev: Option<&Scrape>) -> crate::plan::GroupPlan {
    let at = cur.at;
    // The planner reads the stored evaluation, which is the summary.
    let e = evaluate_group(g, cur, prev, at).summary();
    crate::plan::plan_group(&crate::plan::PlanInput {
        group: g,
        eval: &e,
        members: &cur.droplets,
        history: &[],
        pending: &[],
        recommendations: &[],
        now: at,
        rand: 1,
        operator: Default::default(),
        consistency: Default::default(),
    })
}

/// The plan holds the group and a `min_reporting` reason names the busy droplet.
fn assert_held(p: &crate::plan::GroupPlan) {
    assert!(
        p.destroy.is_empty() && p.desired == 4,
        "partial data shrank the group: {:#?}",
        p
    );
    assert!(
        p.reasons
            .iter()
            .any(|r| r.starts_with("min_reporting:") && r.contains("4 web-4")),
        "no min_reporting reason naming 4 web-4: {:#?}",
        p.reasons
    );
}

#[test]
fn partial_data_full_data_grows() {
    let g = partial_group("node_load1");
    let p = plan_of(
        &g,
        &scrape(t0(), three_idle_and(&[("node_load1", 3.6)])),
        None,
    );
    assert_eq!((p.current, p.desired), (4, 5), "{:#?}", p.reasons);
}

#[test]
fn partial_data_scrape_failed_never_shrinks() {
    let g = partial_group("node_load1");
    let mut ds = three_idle_and(&[]);
    ds[3].error = Some("HTTP 500 Internal Server Error".into());
    assert_held(&plan_of(&g, &scrape(t0(), ds), None));
}

#[test]
fn partial_data_nan_never_shrinks() {
    let g = partial_group("node_load1");
    let ds = three_idle_and(&[("node_load1", f64::NAN)]);
    assert_held(&plan_of(&g, &scrape(t0(), ds), None));
}

#[test]
fn partial_data_pos_inf_never_shrinks() {
    let g = partial_group("node_load1");
    let ds = three_idle_and(&[("node_load1", f64::INFINITY)]);
    assert_held(&plan_of(&g, &scrape(t0(), ds), None));
}

#[test]
fn partial_data_neg_inf_never_shrinks() {
    let g = partial_group("node_load1");
    let ds = three_idle_and(&[("node_load1", f64::NEG_INFINITY)]);
    assert_held(&plan_of(&g, &scrape(t0(), ds), None));
}

#[test]
fn partial_data_series_missing_never_shrinks() {
    let g = partial_group("node_load1");
    let ds = three_idle_and(&[("node_load5", 3.6)]);
    assert_held(&plan_of(&g, &scrape(t0(), ds), None));
}

#[test]
fn partial_data_no_previous_scrape_for_rate_never_shrinks() {
    // The busy droplet failed the previous scrape and answers again: its rate has nothing to
    // compare with.
    let g = partial_group("rate(work_seconds_total[5m])");
    let work = |id: u64, v: f64| active(id, &[("work_seconds_total", v)]);
    let mut before = vec![work(1, 100.0), work(2, 100.0), work(3, 100.0), work(4, 0.0)];
    before[3].error = Some("HTTP 500 Internal Server Error".into());
    before[3].series.clear();
    let later = t0() + chrono::Duration::seconds(10);
    let now = vec![
        work(1, 101.0),
        work(2, 101.0),
        work(3, 101.0),
        work(4, 36.0),
    ];
    let prev = scrape(t0(), before);
    assert_held(&plan_of(&g, &scrape(later, now.clone()), Some(&prev)));
    // With the previous scrape whole, the same numbers grow the group.
    let mut whole = prev.clone();
    whole.droplets[3] = work(4, 0.0);
    let p = plan_of(&g, &scrape(later, now), Some(&whole));
    assert_eq!(p.desired, 5, "{:#?}", p.reasons);
}

#[test]
fn partial_data_an_up_policy_on_another_expression_holds_a_scale_down() {
    // The scale-down reads load1, which the busy droplet has; the scale-up reads a rate, which
    // it lacks (no previous scrape). The up policy could have fired: no shrink.
    let g = group(
        r#"warmup = "0s"
cooldown_down = "0s"
max_step_down = 3
[[group.policy]]
name = "busy"
scale = "up"
conditions = [ { name = "work", expr = "rate(work_seconds_total[5m])", function = "mean", op = ">=", threshold = 0.75 } ]
[[group.policy]]
name = "idle"
scale = "down"
step = 3
conditions = [ { name = "load", expr = "node_load1", function = "min", op = "<", threshold = 0.5 } ]
"#,
    );
    let d = |id: u64, work: f64| active(id, &[("work_seconds_total", work), ("node_load1", 0.1)]);
    let later = t0() + chrono::Duration::seconds(10);
    let prev = scrape(t0(), vec![d(1, 100.0), d(2, 100.0), d(3, 100.0)]);
    let cur = scrape(
        later,
        vec![d(1, 101.0), d(2, 101.0), d(3, 101.0), d(4, 36.0)],
    );
    let p = plan_of(&g, &cur, Some(&prev));
    assert_eq!(p.desired, 4, "{:#?}", p.reasons);
    assert!(
        p.reasons.iter().any(|r| r.starts_with(
            "min_reporting: condition work of scale-up policy busy (it could have fired) has a value from 3 of 4"
        ) && r.contains("none from 4 web-4")),
        "{:#?}",
        p.reasons
    );
    // An up policy settled on full data (match = all, one condition false everywhere) leaves
    // no doubt: the scale-down goes ahead.
    let settled = group(&format!(
        "{}{}",
        r#"warmup = "0s"
cooldown_down = "0s"
max_step_down = 3
[[group.policy]]
name = "busy"
scale = "up"
conditions = [
  { name = "work", expr = "rate(work_seconds_total[5m])", function = "mean", op = ">=", threshold = 0.75 },
  { name = "load", expr = "node_load1", function = "max", op = ">", threshold = 2 },
]
"#,
        r#"[[group.policy]]
name = "idle"
scale = "down"
step = 3
conditions = [ { name = "load", expr = "node_load1", function = "min", op = "<", threshold = 0.5 } ]
"#
    ));
    let p = plan_of(&settled, &cur, Some(&prev));
    assert_eq!(p.desired, 1, "{:#?}", p.reasons);
}

#[test]
fn coverage_counts_values_per_condition_and_names_the_missing() {
    let g = partial_group("node_load1");
    let mut ds = loads(&[0.1, 0.2]);
    ds.push(active(3, &[("node_load1", f64::NAN)]));
    ds.push(active(4, &[("node_load1", f64::INFINITY)]));
    ds.push(active(5, &[("node_load1", f64::NEG_INFINITY)]));
    ds.push(active(6, &[("node_load5", 1.0)]));
    let mut failed = active(7, &[]);
    failed.error = Some("connection refused".into());
    ds.push(failed);
    ds.push(active(8, &[("node_load1", f64::NAN)]));
    let mut new = active(9, &[]);
    new.status = "new".into();
    ds.push(new);
    let e = evaluate_group(&g, &scrape(t0(), ds), None, t0());
    let c = &e.policies[0].conditions[0].coverage;
    // New: not eligible. Scraped but without a finite value: eligible, no value.
    assert_eq!((c.eligible, c.with_value, c.ok), (8, 2, false));
    assert_eq!(
        c.missing.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![7, 3, 4, 5, 6],
        "failed scrapes first, then in listing order, at most {}",
        Coverage::NAMED
    );
    assert_eq!(c.missing[0].why, "scrape failed: connection refused");
    let text = c.missing_text();
    assert!(
        text.starts_with("7 web-7 (scrape failed: connection refused), 3 web-3 ("),
        "{text}"
    );
    assert!(
        text.contains("6 web-6 (no series matches `node_load1`)"),
        "{text}"
    );
    assert!(text.ends_with(" and 1 more"), "{text}");
    // Both conditions read the same expression: the same coverage.
    assert_eq!(&e.policies[1].conditions[0].coverage, c);
    // The group-level count only knows the scrape: 7 of 8 scraped.
    assert_eq!((e.reporting.eligible, e.reporting.reporting), (8, 7));
    // min_reporting = 0.25: 2 of 8 is enough.
    let low = group(&format!("min_reporting = 0.25\n{}", "warmup = \"0s\"\n[[group.policy]]\nname = \"p\"\nscale = \"down\"\nconditions = [ { name = \"l\", expr = \"node_load1\", function = \"mean\", op = \"<\", threshold = 1 } ]\n"));
    let mut ds = loads(&[0.1, 0.2]);
    ds.extend((3..=8).map(|id| active(id, &[])));
    let e = evaluate_group(&low, &scrape(t0(), ds), None, t0());
    assert!(e.policies[0].conditions[0].coverage.ok);
    // In the stored summary and in JSON.
    let json = serde_json::to_value(e.summary()).unwrap();
    assert_eq!(
        json["policies"][0]["conditions"][0]["coverage"]["with_value"],
        2
    );
}

#[test]
fn coverage_of_an_evaluation_stored_before_it_existed_is_not_ok() {
    let c: ConditionEvaluation = serde_json::from_value(serde_json::json!({
        "name": "c", "expr": "x", "function": "mean", "value": 0.1, "op": "<",
        "threshold": 1.0, "satisfied": true, "per_droplet": {}
    }))
    .unwrap();
    assert!(!c.coverage.ok);
}

#[test]
fn target_below_the_current_size_needs_min_reporting() {
    let g = target_group(0.6, 0.1);
    // Three at 0.3 and one without a value: ceil(3 × 0.5) = 2 would shrink on partial data.
    let mut ds = loads(&[0.3, 0.3, 0.3]);
    ds.push(active(4, &[("node_load1", f64::NAN)]));
    let t = evaluate_group(&g, &scrape(t0(), ds.clone()), None, t0())
        .target
        .unwrap();
    assert_eq!(t.recommended, 4, "{}", t.reason);
    assert!(
        t.reason.starts_with("ceil(4 × 0.3 / 0.6) = 2, but only 3 of 4 eligible droplets have a value (min_reporting 100%; none from 4 web-4 (the value is NaN"),
        "{}",
        t.reason
    );
    assert_eq!((t.coverage.eligible, t.coverage.with_value), (4, 3));
    // A recommendation above the current size on partial data stands (scale-up is allowed).
    let mut hot = loads(&[0.9, 0.9, 0.9]);
    hot.push(active(4, &[]));
    let t = evaluate_group(&g, &scrape(t0(), hot), None, t0())
        .target
        .unwrap();
    assert_eq!(t.recommended, 6, "ceil(4 × 0.9 / 0.6): {}", t.reason);
    // With min_reporting = 0.75, 3 of 4 is enough.
    let g = group(
        "min_reporting = 0.75\n[group.target]\nexpr = \"node_load1\"\nfunction = \"mean\"\nvalue = 0.6\n",
    );
    let t = evaluate_group(&g, &scrape(t0(), ds), None, t0())
        .target
        .unwrap();
    assert_eq!(t.recommended, 2, "{}", t.reason);
}

// ---------------------------------------------------------------------------------------
// Speed.

/// 5000 droplets, 4 conditions (one a rate over 4 cpus). Run in release for the figure:
/// `cargo test --release --lib policy::tests::five_thousand -- --ignored --nocapture`.
#[test]
#[ignore]
fn five_thousand_droplets() {
    let g = group(
        r#"[[group.policy]]
name = "p"
scale = "up"
conditions = [
  { name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', function = "mean", op = ">", threshold = 0.8 },
  { name = "mem", expr = "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", function = "min", op = "<", threshold = 0.1 },
  { name = "load", expr = "node_load1", function = "p90", op = ">", threshold = 2 },
  { name = "rx", expr = 'rate(node_network_receive_bytes_total{device="eth0"}[5m])', function = "max", op = ">", threshold = 1e8 },
]
"#,
    );
    let wanted: Vec<&crate::expr::Expr> =
        g.policies[0].conditions.iter().map(|c| &c.expr).collect();
    let make = |at: DateTime<Utc>, k: f64| {
        let ds = (0..5000u64)
            .map(|id| {
                let mut items: Vec<(String, f64)> = vec![
                    ("node_load1".into(), (id % 7) as f64 * k),
                    ("node_memory_MemAvailable_bytes".into(), 1e9 + id as f64),
                    ("node_memory_MemTotal_bytes".into(), 4e9),
                    (
                        r#"node_network_receive_bytes_total{device="eth0"}"#.into(),
                        1e6 * k + id as f64,
                    ),
                    (
                        r#"node_network_receive_bytes_total{device="eth1"}"#.into(),
                        1e6 * k,
                    ),
                ];
                for cpu in 0..4 {
                    for mode in ["idle", "user", "system"] {
                        items.push((
                            format!("node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}}"),
                            1000.0 * k + cpu as f64,
                        ));
                    }
                }
                // The scrape keeps only the series some expression wants.
                let refs: Vec<(&str, f64)> = items
                    .iter()
                    .filter(|(k, _)| {
                        let (name, labels) = crate::series::parse(k).unwrap();
                        let labels: Vec<(&str, &str)> = labels
                            .iter()
                            .map(|(a, b)| (a.as_str(), b.as_str()))
                            .collect();
                        wanted.iter().any(|e| e.wants(name, &labels))
                    })
                    .map(|(a, b)| (a.as_str(), *b))
                    .collect();
                active(id + 1, &refs)
            })
            .collect();
        scrape(at, ds)
    };
    let prev = make(t0(), 1.0);
    let later = t0() + chrono::Duration::seconds(60);
    let cur = make(later, 1.01);
    let _ = evaluate_group(&g, &cur, Some(&prev), later);
    let runs = 10;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        let e = evaluate_group(&g, &cur, Some(&prev), later);
        assert_eq!(e.evaluated, 5000);
        assert!(e.policies[0].conditions.iter().all(|c| c.value.is_some()));
    }
    let each = started.elapsed() / runs;
    eprintln!("evaluate_group: 5000 droplets × 4 conditions in {each:?}");
    assert!(
        each < std::time::Duration::from_millis(if cfg!(debug_assertions) { 2000 } else { 20 })
    );
}
