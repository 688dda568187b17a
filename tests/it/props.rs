//! Property tests for the untrusted inputs (the same ones the fuzz targets in fuzz/ exercise):
//! the exposition wrapper, the expression parser, the config loader and the state loader
//! never panic, and what they accept is right. Crashes found by fuzzing are pinned in
//! `fuzz_regressions`.

use std::path::Path;

use doscale::exposition::{parse, KeepAll};
use proptest::prelude::*;

#[path = "../../fuzz/checks.rs"]
mod fuzz_checks;

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,8}",
        Just("a,b".to_string()),
        Just("x=y".to_string()),
        Just("}".to_string()),
        Just("q\\\"uote".to_string()),
        Just("back\\\\slash".to_string()),
        Just("new\\nline".to_string()),
    ]
}

fn line() -> impl Strategy<Value = (String, String, f64)> {
    (
        "[a-z_][a-z0-9_:]{0,12}",
        proptest::collection::vec(("[a-z_][a-z0-9_]{0,6}", label_value()), 0..3),
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            Just(0.0),
            Just(1e300)
        ],
    )
        .prop_map(|(name, labels, v)| {
            let mut seen = std::collections::BTreeSet::new();
            let labels: Vec<_> = labels
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect();
            let ls = if labels.is_empty() {
                String::new()
            } else {
                format!(
                    "{{{}}}",
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            (name.clone(), format!("{name}{ls} {v:?}"), v)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the lines, every kept series has exactly the value of its line (never a
    /// mangled one), and kept + reported = sample lines.
    #[test]
    fn exposition_never_lets_a_wrong_value_through(lines in proptest::collection::vec(line(), 1..12)) {
        let text: String = lines.iter().map(|(_, l, _)| format!("{l}\n")).collect();
        if let Ok(p) = parse(&text, &KeepAll) {
            for (key, v) in &p.series {
                let name = doscale::series::name_of(key);
                let from_lines: Vec<f64> = lines.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| *v).collect();
                prop_assert!(from_lines.iter().any(|x| x.to_bits() == v.to_bits()), "{key} = {v} not in {from_lines:?}");
            }
            prop_assert_eq!(p.series.len() as u64 + p.bad_lines, lines.len() as u64);
        }
    }

    #[test]
    fn exposition_never_panics(text in "\\PC{0,400}") {
        let _ = parse(&text, &KeepAll);
    }

    #[test]
    fn expression_parser_never_panics(text in "[a-z_(){}\\[\\]=~!\"+*/ 0-9.,-]{0,60}") {
        match doscale::expr::parse(&text) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.offset() <= text.len()),
        }
    }

    #[test]
    fn config_loader_never_panics(text in "(\\[\\[group\\]\\]\n|name = \"w\"\n|tag = \"w\"\n|min = [0-9]\n|max = [0-9]\n|cooldown_up = \"[0-9a-z ]{0,4}\"\n|\\[group.metrics\\]\nport = [0-9]{1,6}\n|bogus = 1\n){0,10}") {
        if let Err(e) = doscale::config::parse(Path::new("/p/c.toml"), &text, &Default::default()) {
            prop_assert!(e.line <= text.lines().count() + 1, "{}", e);
        }
    }

    #[test]
    fn state_loader_never_panics(text in "\\PC{0,200}") {
        let _ = doscale::state::parse(text.as_bytes());
    }

    #[test]
    fn state_round_trips(n in 0usize..5, v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        let mut s = doscale::state::State::new();
        for i in 0..n {
            s.group_mut(&format!("g{i}")).recommendations.push(doscale::model::Recommendation { at: chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(), desired: i as u32 });
            let mut series = doscale::series::SeriesMap::new();
            series.insert("node_load1".into(), v);
            s.group_mut(&format!("g{i}")).push_scrape(doscale::model::Scrape { at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(), droplets: vec![doscale::model::ScrapedDroplet { id: i as u64, name: "d".into(), status: "active".into(), created_at: chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap(), address: Some("10.0.0.1".into()), error: None, protected: false, series }], bad_lines: 0, bad_line_example: None });
        }
        let bytes = serde_json::to_vec(&s).unwrap();
        prop_assert_eq!(doscale::state::parse(&bytes).unwrap(), s);
    }
}

/// A header value as an API could send it: numbers of every size and sign, words, dates.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        any::<i128>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| format!("{v}{v}{v}")),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("NaN".to_string()),
        Just("1e20".to_string()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_string()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_string()),
        "\\PC{0,20}",
    ]
}

/// A droplet listing page: honest, or with next links anywhere, duplicates, any total.
fn list_body() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(0u64..6, 0..6),
        prop_oneof![
            Just(None),
            (1u64..5).prop_map(|p| Some(format!("https://api.example.test/v2/droplets?page={p}&per_page=200&tag_name=web"))),
            (1u64..5).prop_map(|p| Some(format!("/v2/droplets?page={p}&tag_name=web"))),
            Just(Some("https://evil.example/v2/droplets?page=2&tag_name=web".to_string())),
            Just(Some("http://api.example.test/v2/droplets?page=2&tag_name=web".to_string())),
            Just(Some("/v2/droplets?page=2&tag_name=db".to_string())),
            "\\PC{0,30}".prop_map(Some),
        ],
        prop_oneof![Just(None), (0u64..20).prop_map(Some), Just(Some(u64::MAX))],
    )
        .prop_map(|(ids, next, total)| {
            let droplets: Vec<_> = ids
                .iter()
                .map(|id| serde_json::json!({"id": id, "name": format!("d{id}"), "status": "active", "created_at": "2026-01-01T00:00:00Z"}))
                .collect();
            let mut v = serde_json::json!({"droplets": droplets, "links": {"pages": {"next": next}}});
            if let Some(t) = total {
                v["meta"] = serde_json::json!({"total": t});
            }
            v.to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The fuzz target `api`'s checks over generated responses: bounded waits whatever the
    /// headers say, no panic on any body, listings that end and never leave the API.
    #[test]
    fn api_responses_never_panic(
        headers in proptest::collection::vec(header_value(), 1..3),
        bodies in proptest::collection::vec(list_body(), 1..5),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut data = Vec::new();
        for h in &headers {
            data.extend_from_slice(h.as_bytes());
            data.push(0);
        }
        for b in &bodies {
            data.extend_from_slice(b.as_bytes());
            data.push(0);
        }
        fuzz_checks::api(&data);
        // the bodies alone, as the pages of one listing
        fuzz_checks::api(bodies.join("\0").as_bytes());
        fuzz_checks::api(&raw);
    }
}

/// Inputs that once crashed or misled a parser (from fuzzing and review), kept forever.
#[test]
fn fuzz_regressions() {
    for text in [
        "a{b=\"\\",
        "a{",
        "a{b=\"c\"",
        "a 1 2 3",
        "{} 1",
        "a{,} 1",
        "\u{feff}a 1",
    ] {
        let _ = parse(text, &KeepAll);
    }
    for e in [
        "",
        "(",
        "rate(",
        "sum(",
        "a{b=~\"(\"}",
        "1/0",
        "--1",
        "a offset 5m",
    ] {
        let _ = doscale::expr::parse(e);
    }
    // Every file in fuzz/regressions/ (named `<target>-<what>`) is replayed with the checks
    // of its fuzz target (fuzz/checks.rs), not only "does not panic".
    // Findings not fixed yet are listed in OPEN_FINDINGS: they are replayed too, and a panic
    // of theirs is reported instead of failing the test. Remove a name once its fix lands.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions");
    let mut replayed = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let check: fn(&[u8]) = match name.split('-').next().unwrap_or_default() {
                "exposition" => fuzz_checks::exposition,
                "expr" => fuzz_checks::expr,
                "config" => fuzz_checks::config,
                "state" => fuzz_checks::state,
                "api" => fuzz_checks::api,
                _ => continue,
            };
            replayed += 1;
            if OPEN_FINDINGS.contains(&name.as_str()) {
                match std::panic::catch_unwind(|| check(&data)) {
                    Err(_) => eprintln!("fuzz/regressions/{name}: still open (panics, see above)"),
                    Ok(()) => eprintln!(
                        "fuzz/regressions/{name}: passes now: remove it from OPEN_FINDINGS"
                    ),
                }
            } else {
                check(&data);
            }
        }
    }
    eprintln!("replayed {replayed} file(s) of fuzz/regressions");
}

/// Files of fuzz/regressions/ whose bug is known and not fixed yet (see fuzz/README.md,
/// "Findings"). Each still panics; they are replayed without failing the test.
const OPEN_FINDINGS: &[&str] = &[
    // none open: the two promql-parser duration overflows (expr-*-seconds-overflow) are
    // refused by src/expr.rs before the text reaches the parser.
];
