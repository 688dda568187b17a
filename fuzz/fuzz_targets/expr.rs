#![no_main]
//! The expression parser: never panics; what parses evaluates without panicking.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(e) = doscale::expr::parse(text) {
            let mut series = doscale::series::SeriesMap::new();
            series.insert("node_load1".into(), 1.5);
            series.insert(r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#.into(), 10.0);
            let cur = doscale::expr::Sample { at_ms: 10_000, series: &series };
            let _ = e.eval(cur, Some(doscale::expr::Sample { at_ms: 5_000, series: &series }));
        } else if let Err(err) = doscale::expr::parse(text) {
            assert!(err.offset() <= text.len());
        }
    }
});
