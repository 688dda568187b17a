//! Time as an argument: every stage asks a [`Clock`] for `now` and sleeps through it, so the
//! same pipeline runs on the wall clock (the commands) and on a virtual clock (`backtest`,
//! tests) without a second copy of any rule.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The time of a pass and the waits within it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Waits `d`: the wall clock sleeps, a virtual clock moves on by `d`.
    fn sleep(&self, d: Duration);
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A virtual clock: stands still until set or advanced; `sleep` advances it at once.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        ManualClock { now: Mutex::new(t) }
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.lock() = t;
    }

    pub fn advance(&self, d: Duration) {
        let mut now = self.lock();
        *now += chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding the lock cannot leave a time half-written.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        c.sleep(Duration::from_secs(90));
        assert_eq!(c.now(), t0 + chrono::Duration::seconds(90));
        c.set(t0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), t0 + chrono::Duration::milliseconds(1500));
    }
}
