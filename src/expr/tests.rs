use super::*;
use crate::series::{self, SeriesMap};

fn map(items: &[(&str, f64)]) -> SeriesMap {
    items.iter().map(|(k, v)| ((*k).into(), *v)).collect()
}

fn at(ms: i64, s: &SeriesMap) -> Sample<'_> {
    Sample {
        at_ms: ms,
        series: s,
    }
}

fn ev(expr: &str, s: &SeriesMap) -> Result<f64, NoData> {
    parse(expr)
        .unwrap_or_else(|e| panic!("{e}"))
        .eval(at(0, s), None)
}

/// A do-agent fixture as a droplet's series map.
fn fixture(name: &str) -> SeriesMap {
    let path = format!(
        "{}/tests/fixtures/do-agent/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = SeriesMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (k, v) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series::parse(k).unwrap();
        let key = series::key(name, labels.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        out.insert(key.into(), v.parse().unwrap());
    }
    out
}

#[test]
fn accepts_the_supported_subset() {
    for text in [
        "node_load1",
        "2",
        "-node_load1",
        "node_memory_MemFree_bytes + node_memory_Cached_bytes",
        "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        "(node_load1 + node_load5) / 2 * 100 - 1",
        r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#,
        r#"sum(increase(node_network_receive_bytes_total[10m]))"#,
        r#"rate(node_network_receive_bytes_total{device="eth0"}[5m])"#,
        r#"node_filesystem_free_bytes{mountpoint="/"} / node_filesystem_size_bytes{mountpoint="/"}"#,
        r#"count(node_cpu_seconds_total{mode="idle"})"#,
        r#"max(node_disk_read_bytes_total{device=~"vd.*", device!~"vdb"})"#,
        r#"node_cpu_seconds_total{cpu="0", mode="user"}"#,
        r#"{__name__="node_load1"}"#,
        "SUM(node_load1)",
        "node_load1 # a comment",
    ] {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

/// Each bad input: the expression, a part of the message, and the offset of the offending part.
#[test]
fn refuses_what_it_does_not_evaluate_naming_it() {
    let cases: &[(&str, &str, usize)] = &[
        ("node_load1 + * 2", "unexpected `*`", 13),
        ("node_load1 node_load5", "unexpected `node_load5`", 11),
        ("(node_load1 + 2", "never closed", 0),
        ("node_load1 +", "ends too early", 12),
        ("", "empty", 0),
        (
            "irate(node_cpu_seconds_total[5m])",
            "function `irate` is not supported: use rate or increase",
            0,
        ),
        ("2 * abs(node_load1)", "function `abs` is not supported", 4),
        ("node_load1 offset 5m", "`offset` is not supported", 11),
        (
            "node_load1 @ 1700000000",
            "`@` modifier is not supported",
            11,
        ),
        ("sum by (cpu) (node_load1)", "`by` is not supported", 4),
        (
            "sum(node_load1) without (cpu)",
            "`without` is not supported",
            16,
        ),
        (
            "max_over_time(node_load1[5m:1m])",
            "function `max_over_time`",
            0,
        ),
        ("rate(node_load1[5m:1m])", "subqueries", 18),
        ("node_load1[5m:1m]", "subqueries", 13),
        ("node_load1 > 2", "comparison operator `>`", 11),
        ("node_load1 == bool 2", "comparison operator `==`", 11),
        ("node_load1 and node_load5", "set operator `and`", 11),
        (
            "node_load1 ^ 2",
            "operator `^` is not supported: use + - * /",
            11,
        ),
        ("node_load1 % 2", "operator `%`", 11),
        (
            "node_load1[5m]",
            "only allowed inside rate(...) or increase(...)",
            10,
        ),
        (
            "node_load1 + node_load5[5m]",
            "not a valid PromQL expression",
            0,
        ),
        (
            r#"1 - rate(node_cpu_seconds_total{mode="idle"}[5m])"#,
            "avg(rate(",
            9,
        ),
        (r#""text""#, "string literals", 0),
        (
            "topk(3, node_load1)",
            "aggregation `topk` is not supported",
            0,
        ),
        ("stddev(node_load1)", "aggregation `stddev`", 0),
        (
            "node_load1 + on(x) node_load5",
            "vector matching modifiers",
            13,
        ),
        (
            r#"node_load1{a="1" or b="2"}"#,
            "`or` between label matchers",
            0,
        ),
        (r#"{job="x"}"#, "must name one metric", 0),
        (r#"{__name__=~"node_.*"}"#, "must name one metric", 0),
        (r#"node_load1{a=~"("}"#, "not a valid PromQL expression", 0),
        // Several series per droplet outside an aggregation.
        (
            r#"node_cpu_seconds_total{mode="idle"}"#,
            "pin cpu with `=`",
            0,
        ),
        (
            r#"1 - rate(node_cpu_seconds_total{mode="idle"}[5m])"#,
            "wrap it in sum/avg/min/max/count",
            9,
        ),
        (
            "node_load1 + node_disk_read_bytes_total",
            "one per device",
            13,
        ),
        (
            r#"node_network_receive_bytes_total{device=~"eth0"}"#,
            "pin device",
            0,
        ),
        (
            r#"node_filesystem_free_bytes{fstype="ext4"}"#,
            "pin device, mountpoint",
            0,
        ),
        ("sonar_process_cpu_time_seconds", "one per pid, process", 0),
    ];
    for (text, want, offset) in cases {
        let e = parse(text).expect_err(text);
        assert!(e.msg.contains(want), "{text}: {e}");
        assert_eq!(e.offset(), *offset, "{text}: offset of {e}");
        assert!(
            e.to_string().contains(&format!("`{text}`")),
            "the message quotes the expression: {e}"
        );
    }
}

#[test]
fn selectors_and_matchers() {
    let s = map(&[
        ("node_load1", 1.5),
        ("node_load15", 0.5),
        (r#"m{dev="eth0"}"#, 1.0),
        (r#"m{dev="eth1"}"#, 2.0),
        (r#"m{dev="lo"}"#, 4.0),
        (r#"m{dev="lo",extra="x"}"#, 8.0),
    ]);
    assert_eq!(ev("node_load1", &s), Ok(1.5));
    assert_eq!(ev("node_load15", &s), Ok(0.5));
    assert_eq!(ev(r#"m{dev="eth1"}"#, &s), Ok(2.0));
    assert_eq!(ev(r#"sum(m{dev=~"eth.*"})"#, &s), Ok(3.0));
    // Fully anchored, alternations included.
    assert_eq!(ev(r#"sum(m{dev=~"eth0|lo"})"#, &s), Ok(13.0));
    assert_eq!(
        ev(r#"sum(m{dev=~"th"})"#, &s).unwrap_err().0,
        r#"no series matches `m{dev=~"th"}`"#
    );
    assert_eq!(ev(r#"sum(m{dev!~"eth.*"})"#, &s), Ok(12.0));
    assert_eq!(ev(r#"sum(m{dev!="lo"})"#, &s), Ok(3.0));
    // An absent label reads as "".
    assert_eq!(ev(r#"sum(m{extra=""})"#, &s), Ok(7.0));
    assert_eq!(ev(r#"m{extra="x"}"#, &s), Ok(8.0));
    assert_eq!(ev("count(m)", &s), Ok(4.0));
    assert_eq!(ev("avg(m)", &s), Ok(3.75));
    assert_eq!(ev("min(m)", &s), Ok(1.0));
    assert_eq!(ev("max(m)", &s), Ok(8.0));
    assert_eq!(ev("-max(m) + 10", &s), Ok(2.0));
    assert_eq!(ev(r#"{__name__="node_load1"}"#, &s), Ok(1.5));
    let e = ev("m", &s).unwrap_err().0;
    assert_eq!(e, "`m` matches 4 series; wrap it in sum/avg/min/max/count");
    assert_eq!(
        ev("node_load5", &s).unwrap_err().0,
        "no series matches `node_load5`"
    );
}

#[test]
fn escaped_label_values() {
    let key = series::key("m", [("path", "a,b=\"c\"}\\")]);
    let s: SeriesMap = [
        (key.into(), 3.0),
        (series::key("m", [("path", "plain")]).into(), 4.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(ev(r#"m{path="a,b=\"c\"}\\"}"#, &s), Ok(3.0));
    assert_eq!(ev(r#"m{path="plain"}"#, &s), Ok(4.0));
    assert_eq!(ev(r#"m{path='pl\x61in'}"#, &s), Ok(4.0));
    // `"p\\w+"` is the regex `p\w+` once unescaped, as in Prometheus.
    assert_eq!(ev(r#"m{path=~"p\\w+"}"#, &s), Ok(4.0));
    assert_eq!(
        ev(r#"m{path=~"p\\d+"}"#, &s).unwrap_err().0,
        r#"no series matches `m{path=~"p\\d+"}`"#
    );
    assert_eq!(ev(r#"m{path=~"pl\x61\\w+"}"#, &s), Ok(4.0));
    assert_eq!(ev(r#"m{path=~`pl.+`}"#, &s), Ok(4.0));
}

#[test]
fn unescapes_like_promql() {
    assert_eq!(
        unescape(r#"a\"b\\c\n\x41\u00e9\101"#, '"').unwrap(),
        "a\"b\\c\nAé A".replace(' ', "")
    );
    assert_eq!(unescape(r"a\b", '`').unwrap(), r"a\b");
    assert!(unescape(r"\q", '"').is_err());
}

#[test]
fn arithmetic_and_vector_matching() {
    let s = map(&[
        ("free", 1.0),
        ("cached", 2.0),
        (r#"rx{device="eth0"}"#, 10.0),
        (r#"rx{device="eth1"}"#, 20.0),
        (r#"tx{device="eth0"}"#, 1.0),
        (r#"tx{device="eth1"}"#, 2.0),
        (r#"tx{device="eth2"}"#, 3.0),
    ]);
    assert_eq!(ev("free + cached", &s), Ok(3.0));
    assert_eq!(ev("free - cached", &s), Ok(-1.0));
    assert_eq!(ev("free * cached * 4", &s), Ok(8.0));
    assert_eq!(ev("cached / free / 4", &s), Ok(0.5));
    assert_eq!(ev("1 + 2 * 3", &s), Ok(7.0));
    assert_eq!(ev("(1 + 2) * 3", &s), Ok(9.0));
    // Element-wise on identical label sets, then aggregated.
    assert_eq!(ev("sum(rx + tx)", &s), Ok(33.0));
    assert_eq!(ev("sum(rx / tx)", &s), Ok(20.0));
    assert_eq!(ev("count(tx * 2)", &s), Ok(3.0));
    // An aggregate has no labels: it matches a series without labels.
    assert_eq!(ev("sum(rx) / free", &s), Ok(30.0));
    let e = ev(r#"rx{device="eth0"} + free"#, &s).unwrap_err().0;
    assert!(
        e.contains("no series on both sides with the same labels"),
        "{e}"
    );
    // Division by zero is no data, not infinity.
    assert!(ev("free / 0", &s)
        .unwrap_err()
        .0
        .contains("division by zero"));
    assert!(ev("(free - free) / (free - free)", &s).is_err());
}

#[test]
fn non_finite_series_are_no_data_even_under_min_and_max() {
    // min/max of IEEE floats skip a NaN and max skips a -Inf: one broken series must not be
    // hidden behind the others (issue 14.1: NaN and ±Inf are not values).
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let s = map(&[
            (r#"m{i="0"}"#, 1.0),
            (r#"m{i="1"}"#, bad),
            (r#"m{i="2"}"#, 3.0),
        ]);
        for e in ["min(m)", "max(m)", "sum(m)", "avg(m)", "max(m) - min(m)"] {
            let err = ev(e, &s).expect_err(&format!("{e} with {bad}"));
            assert!(
                err.0.contains("not a finite number"),
                "{e} with {bad}: {err}"
            );
        }
        assert!(
            ev("min(m)", &s).unwrap_err().0.contains("`m`"),
            "names the selector"
        );
        // count counts series, whatever their values.
        assert_eq!(ev("count(m)", &s), Ok(3.0));
        // A lone series.
        let one = map(&[("g", bad)]);
        assert!(ev("g", &one).is_err());
        assert!(ev("g * 0", &one).is_err());
    }
}

#[test]
fn rate_and_increase_use_the_previous_scrape() {
    let prev = map(&[
        (r#"c{cpu="0",mode="idle"}"#, 100.0),
        (r#"c{cpu="1",mode="idle"}"#, 200.0),
        (r#"c{cpu="0",mode="user"}"#, 50.0),
        ("bytes", 1000.0),
    ]);
    let cur = map(&[
        (r#"c{cpu="0",mode="idle"}"#, 106.0),
        (r#"c{cpu="1",mode="idle"}"#, 209.0),
        (r#"c{cpu="2",mode="idle"}"#, 5.0), // not in the previous scrape: dropped
        (r#"c{cpu="0",mode="user"}"#, 53.0),
        ("bytes", 400.0), // reset: counts from zero
    ]);
    let e = |t: &str, gap_ms: i64| {
        parse(t)
            .unwrap()
            .eval(at(100_000 + gap_ms, &cur), Some(at(100_000, &prev)))
    };
    assert_eq!(e(r#"avg(rate(c{mode="idle"}[5m]))"#, 10_000), Ok(0.75));
    assert_eq!(e(r#"1 - avg(rate(c{mode="idle"}[5m]))"#, 10_000), Ok(0.25));
    assert_eq!(e(r#"sum(increase(c{mode="idle"}[5m]))"#, 10_000), Ok(15.0));
    assert_eq!(e(r#"rate(c{cpu="0",mode="user"}[1m])"#, 10_000), Ok(0.3));
    assert_eq!(e("increase(bytes[5m])", 10_000), Ok(400.0));
    assert_eq!(e("rate(bytes[5m])", 10_000), Ok(40.0));
    // The range is the longest gap allowed between the two scrapes.
    assert_eq!(e("rate(bytes[5m])", 300_000), Ok(400.0 / 300.0));
    let too_old = e("rate(bytes[5m])", 301_000).unwrap_err().0;
    assert!(
        too_old.starts_with("no previous scrape within 5m"),
        "{too_old}"
    );
    assert!(e("rate(bytes[5m])", 0).is_err());
    // No previous scrape: no data, never zero.
    let none = parse("rate(bytes[5m])").unwrap().eval(at(0, &cur), None);
    assert_eq!(none, Err(NoData("no previous scrape within 5m".into())));
    // Several series left unaggregated.
    let many = e(r#"rate(c{mode="idle"}[5m]) * 2"#, 10_000).unwrap_err().0;
    assert!(
        many.contains("matches 2 series; wrap it in sum/avg/min/max/count"),
        "{many}"
    );
    // Only in the current scrape.
    let p2 = map(&[("other", 1.0)]);
    let r = parse("rate(bytes[5m])")
        .unwrap()
        .eval(at(10_000, &cur), Some(at(0, &p2)));
    assert!(r.unwrap_err().0.contains("not in the previous scrape"));
}

#[test]
fn names_and_wants() {
    let x =
        parse(r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) + node_load1"#).unwrap();
    assert_eq!(
        x.metric_names().iter().collect::<Vec<_>>(),
        vec!["node_cpu_seconds_total", "node_load1"]
    );
    assert!(x.wants("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")]));
    assert!(!x.wants("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]));
    assert!(x.wants("node_load1", &[]));
    assert!(!x.wants("node_load5", &[]));
    let r = parse(r#"sum(node_disk_read_bytes_total{device=~"vd.*"})"#).unwrap();
    assert!(r.wants("node_disk_read_bytes_total", &[("device", "vda")]));
    assert!(!r.wants("node_disk_read_bytes_total", &[("device", "sda")]));
    assert_eq!(
        x.text(),
        r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) + node_load1"#
    );
}

#[test]
fn on_the_do_agent_fixtures() {
    let s = fixture("droplet-4vcpu.prom");
    let mem = ev(
        "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        &s,
    )
    .unwrap();
    assert!((mem - 6.014066688e9 / 8.334569472e9).abs() < 1e-12);
    assert_eq!(
        ev(r#"count(node_cpu_seconds_total{mode="idle"})"#, &s),
        Ok(4.0)
    );
    assert_eq!(ev("node_load1", &s), Ok(1.52));
    // The operator's guide's "load per CPU".
    let per_cpu = ev(
        r#"node_load5 / count(node_cpu_seconds_total{mode="idle"})"#,
        &s,
    );
    assert_eq!(per_cpu, Ok(1.17 / 4.0));
    let fs = ev(
        r#"node_filesystem_free_bytes{mountpoint="/"} / node_filesystem_size_bytes{mountpoint="/"}"#,
        &s,
    );
    assert!((fs.unwrap() - 1.41345431552e11 / 1.65898727424e11).abs() < 1e-12);
    assert_eq!(
        ev(r#"node_network_receive_bytes_total{device="eth1"}"#, &s),
        Ok(4.56789012e8)
    );
    // A later scrape of the same droplet: every idle counter 8 s further over 10 s.
    let later: SeriesMap = s
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if k.contains("mode=\"idle\"") {
                    v + 8.0
                } else {
                    v + 2.0
                },
            )
        })
        .collect();
    let cpu = parse(r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#).unwrap();
    let busy = cpu.eval(at(10_000, &later), Some(at(0, &s))).unwrap();
    assert!((busy - 0.2).abs() < 1e-9, "{busy}");
    let p = fixture("droplet-2vcpu-with-processes.prom");
    assert!(ev("sum(sonar_process_resident_memory_bytes)", &p).unwrap() > 0.0);
}

#[test]
fn label_value_reads_keys_in_place() {
    let k = r#"{a="1",bb="x\"y",c="",d="z"}"#;
    assert_eq!(label_value(k, "a").as_deref(), Some("1"));
    assert_eq!(label_value(k, "bb").as_deref(), Some("x\"y"));
    assert_eq!(label_value(k, "c").as_deref(), Some(""));
    assert_eq!(label_value(k, "d").as_deref(), Some("z"));
    assert_eq!(label_value(k, "e"), None);
    assert_eq!(label_value("", "a"), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the text, parsing never panics, and an error's offset lies inside it.
        #[test]
        fn parse_never_panics(text in "[a-z_{}()\\[\\]=~!\"+*/ ,0-9.-]{0,40}") {
            if let Err(e) = parse(&text) {
                prop_assert!(e.offset <= text.len());
                prop_assert!(e.to_string().contains(&text));
            }
        }

        /// `sum/avg/min/max/count` agree with a plain computation over the matched series.
        #[test]
        fn aggregations_agree(vals in proptest::collection::vec(-1e6f64..1e6, 1..20)) {
            let s: SeriesMap = vals.iter().enumerate().map(|(i, v)| (format!("m{{i=\"{i}\"}}").into(), *v)).collect();
            let sum: f64 = s.values().sum();
            prop_assert_eq!(ev("sum(m)", &s).unwrap(), sum);
            prop_assert_eq!(ev("count(m)", &s).unwrap(), vals.len() as f64);
            prop_assert_eq!(ev("min(m)", &s).unwrap(), vals.iter().copied().fold(f64::INFINITY, f64::min));
            prop_assert_eq!(ev("max(m)", &s).unwrap(), vals.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            prop_assert_eq!(ev("avg(m)", &s).unwrap(), sum / vals.len() as f64);
        }
    }
}

#[test]
fn only_counters_under_rate_are_wanted_from_the_previous_scrape() {
    let e =
        parse(r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) + node_load1"#).unwrap();
    assert!(e.wants_previous("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")]));
    assert!(!e.wants_previous("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]));
    assert!(!e.wants_previous("node_load1", &[]));
    assert!(e.wants("node_load1", &[]));
}

/// promql-parser 0.5 panics on a unit-less duration that no `Duration` holds; found by the
/// `expr` fuzz target (fuzz/regressions/expr-*-seconds-overflow). These are refused instead.
#[test]
fn refuses_unit_less_durations_out_of_range() {
    for (text, at) in [
        ("x[1e20]", 2),
        ("x offset 1e20", 9),
        ("x offset -1e20", 10),
        ("x[5m:1e20]", 5),
        ("rate(x[Inf])", 7),
        ("x offset NaN", 9),
        ("a offset 1e20n[99999999999999999999]", 15),
        // a leading 0 with an 8 or 9 is decimal, not octal (found by fuzzing too)
        ("pu_d[0999999999999999999999999]", 5),
        ("x offset 09e30", 9),
    ] {
        let e = parse(text).expect_err(text);
        assert!(e.to_string().contains("out of range"), "{text}: {e}");
        assert_eq!(e.offset(), at, "{text}: {e}");
    }
    // Representable ones still reach the parser, which judges them as before.
    let e = parse("x offset 1e3").expect_err("offset is refused");
    assert!(e.to_string().contains("offset"), "{e}");
    parse("rate(x[5m])").unwrap();
}
