//! Throttling (OMS's "Set throttling"): `max_rows_per_second` and `max_bytes_per_second` on the
//! project, for full and incremental sync alike. Every writer of a run shares one [`Throttle`]:
//! a batch takes its rows (as read from the source) and its messages' payload bytes before they
//! go to Kafka, and waits when the run is ahead of its allowance.
//!
//! Each limit is a virtual clock (GCRA, the token bucket without tokens): taking `n` units moves
//! the clock `n / rate` seconds on; a taker waits until the clock is no further ahead of now than
//! the burst allowance. Over any span the run sends at most `rate × (span + burst)`, so the
//! long-run rate holds within a fraction of a percent whatever the batch size; a batch larger
//! than the burst simply waits longer afterwards.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What may go out at once before the rate applies: a little slack for batches that arrive
/// together, far too little to move a long-run average.
const BURST: Duration = Duration::from_millis(100);

/// One limit: units per second, and the virtual time its allowance is used up to.
#[derive(Debug)]
struct Limit {
    per_second: f64,
    clock: Mutex<Option<Instant>>,
}

impl Limit {
    fn new(per_second: u64) -> Limit {
        Limit {
            per_second: per_second.max(1) as f64,
            clock: Mutex::new(None),
        }
    }

    /// Takes `units`; how long to wait before they may go.
    fn take(&self, units: u64, now: Instant) -> Duration {
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        // A clock behind now (the run was idle) starts from now: idle time is not saved up.
        let start = clock.map_or(now, |c| c.max(now));
        let end = start + Duration::from_secs_f64(units as f64 / self.per_second);
        *clock = Some(end);
        end.saturating_duration_since(now + BURST)
    }
}

/// The run's limits.
#[derive(Debug, Default)]
pub struct Throttle {
    rows: Option<Limit>,
    bytes: Option<Limit>,
    /// Ctrl-C / SIGTERM: a wait ends at once, so a pause is not held up by a low limit.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Throttle {
    pub fn new(
        max_rows_per_second: Option<u64>,
        max_bytes_per_second: Option<u64>,
        stop: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Throttle {
        Throttle {
            rows: max_rows_per_second.map(Limit::new),
            bytes: max_bytes_per_second.map(Limit::new),
            stop,
        }
    }

    pub fn is_off(&self) -> bool {
        self.rows.is_none() && self.bytes.is_none()
    }

    /// Takes `rows` read from the source; returns how long it waited.
    pub async fn rows(&self, rows: u64) -> Duration {
        self.wait(self.rows.as_ref(), rows).await
    }

    /// Takes `bytes` of payload about to be sent; returns how long it waited.
    pub async fn bytes(&self, bytes: u64) -> Duration {
        self.wait(self.bytes.as_ref(), bytes).await
    }

    async fn wait(&self, limit: Option<&Limit>, units: u64) -> Duration {
        let Some(limit) = limit else {
            return Duration::ZERO;
        };
        if units == 0 {
            return Duration::ZERO;
        }
        let pause = limit.take(units, Instant::now());
        if pause.is_zero() {
            return pause;
        }
        match self.stop.clone() {
            Some(mut stop) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stop| *stop) => {}
                }
            }
            None => tokio::time::sleep(pause).await,
        }
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_by_units_over_rate_and_idle_time_is_not_saved() {
        let limit = Limit::new(1000);
        let t0 = Instant::now();
        // 50 rows at 1000/s: 50 ms, inside the burst.
        assert_eq!(limit.take(50, t0), Duration::ZERO);
        // 1000 more: the clock is 1.05 s ahead; wait all but the burst.
        assert_eq!(limit.take(1000, t0), Duration::from_millis(950));
        // Long after (idle): no allowance saved up beyond the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(limit.take(100, later), Duration::ZERO);
        assert_eq!(limit.take(1000, later), Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn a_limit_holds_the_rate_within_a_few_percent() {
        let throttle = Throttle::new(Some(20_000), None, None);
        let started = Instant::now();
        // 10,000 rows in batches of 700: 0.5 s at 20,000/s.
        let mut sent = 0;
        while sent < 10_000 {
            throttle.rows(700).await;
            sent += 700;
        }
        let rate = f64::from(sent) / started.elapsed().as_secs_f64();
        assert!(
            rate <= 20_000.0 * 1.05 * (1.0 + BURST.as_secs_f64() / 0.5),
            "{rate}"
        );
        assert!(rate >= 20_000.0 * 0.8, "{rate}");
        assert!(Throttle::default().is_off());
    }
}
