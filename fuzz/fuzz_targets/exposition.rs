#![no_main]
//! The exposition wrapper: never panics, and every series it keeps has the value its line says.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = doscale::exposition::parse(text, &doscale::exposition::KeepAll) {
            for key in p.series.keys() {
                assert!(doscale::series::parse(key).is_some(), "unparsable key {key:?}");
            }
        }
    }
});
