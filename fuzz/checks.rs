//! The checks of the fuzz targets, one per target: what each asserts of an input beyond "never
//! panics". Shared by the fuzz targets (`fuzz/fuzz_targets/<target>.rs`) and by
//! `tests/it/props.rs`, which replays every file of `fuzz/regressions/` with them in CI.
#![allow(dead_code)] // each fuzz target uses one of them

pub fn exposition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = doscale::exposition::parse(text, &doscale::exposition::KeepAll) {
        for key in p.series.keys() {
            assert!(
                doscale::series::parse(key).is_some(),
                "unparsable key {key:?}"
            );
        }
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count() as u64;
        assert_eq!(
            p.series.len() as u64 + p.bad_lines,
            lines,
            "kept + reported"
        );
        assert!(p.series.len() as u64 <= p.samples);
    }
}

pub fn expr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match doscale::expr::parse(text) {
        Ok(e) => {
            let mut series = doscale::series::SeriesMap::new();
            series.insert("node_load1".into(), 1.5);
            series.insert(
                r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#.into(),
                10.0,
            );
            let cur = doscale::expr::Sample {
                at_ms: 10_000,
                series: &series,
            };
            let prev = doscale::expr::Sample {
                at_ms: 5_000,
                series: &series,
            };
            let _ = e.eval(cur, Some(prev));
            let _ = e.eval(cur, None);
        }
        Err(err) => assert!(err.offset() <= text.len(), "{err}"),
    }
}

pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = doscale::config::parse(std::path::Path::new("/fuzz/doscale.toml"), text) {
        assert!(e.line <= text.lines().count() + 1, "{e}");
    }
}

pub fn state(data: &[u8]) {
    if let Ok(state) = doscale::state::parse(data) {
        let bytes = serde_json::to_vec(&state).unwrap();
        let again = doscale::state::parse(&bytes).unwrap();
        // Equal, or (a kept NaN value is not equal to itself) equal as text.
        assert!(
            again == state || format!("{again:?}") == format!("{state:?}"),
            "{again:?}\n!=\n{state:?}"
        );
    }
}
