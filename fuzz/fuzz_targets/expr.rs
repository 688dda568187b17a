#![no_main]
//! The expression parser: never panics; errors point inside the text; what parses evaluates
//! without panicking, with and without a previous scrape.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
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
});
