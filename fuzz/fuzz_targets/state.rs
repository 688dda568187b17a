#![no_main]
//! The state loader: never panics; what loads saves and loads again to the same value.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = doscale::state::parse(data) {
        let bytes = serde_json::to_vec(&state).unwrap();
        let again = doscale::state::parse(&bytes).unwrap();
        assert_eq!(again, state);
    }
});
