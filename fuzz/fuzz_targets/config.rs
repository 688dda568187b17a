#![no_main]
//! The config loader: never panics; every error has a position inside the text.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = doscale::config::parse(std::path::Path::new("/fuzz/doscale.toml"), text) {
            assert!(e.line <= text.lines().count() + 1, "{e}");
        }
    }
});
