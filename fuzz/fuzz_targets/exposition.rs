#![no_main]
//! The exposition wrapper: never panics; every series it keeps has a well-formed key; every
//! sample-or-garbage line is either kept or reported (kept + reported = such lines).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
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
});
