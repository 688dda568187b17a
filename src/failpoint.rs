//! Crash points for the crash-consistency tests: when `DOSCALE_FAILPOINT` names a point, the
//! process aborts there at once (no destructors, no state written — as a SIGKILL would), so a
//! test can stop `apply` at each step and check that the next run reconciles. Unset in
//! production; a point that is not reached does nothing.

use std::sync::OnceLock;

static POINT: OnceLock<Option<String>> = OnceLock::new();

/// The named points, in the order apply passes them.
pub const POINTS: [&str; 6] = [
    "after-create-intent",
    "after-create-request",
    "waiting-for-active",
    "health-check",
    "after-destroy-intent",
    "after-destroy-request",
];

/// Aborts the process if `DOSCALE_FAILPOINT` is `name`.
pub fn hit(name: &str) {
    let p = POINT.get_or_init(|| {
        std::env::var("DOSCALE_FAILPOINT")
            .ok()
            .filter(|s| !s.is_empty())
    });
    if p.as_deref() == Some(name) {
        crate::logging::eprint(
            crate::logging::CRIT,
            &format!("doscale: failpoint {name} reached: aborting"),
        );
        std::process::abort();
    }
}
