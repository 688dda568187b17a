#![no_main]
//! The `api` fuzz target: the checks are in fuzz/checks.rs (shared with tests/it/props.rs).
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::api(data));
