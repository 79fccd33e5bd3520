//! Riding out transient faults (design.md §2: exit 2 only after the retries).
//!
//! A fault of kind [`ErrorKind::Transient`] — the source's connection lost, a connect refused or
//! unanswered, the server shutting down — is tried again after a pause that doubles each time:
//! 0.5, 1, 2, 4, 8 and 16 s, 31.5 s in all, so a source restarted in 10 to 20 s (a maintenance
//! restart) is ridden out and one that stays away ends the run within a minute. Any other kind
//! fails at once: retrying a wrong project or impossible data only repeats the failure.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::{Error, ErrorKind, Result};

/// Retries after the first failure, each after a pause twice as long as the one before.
pub(crate) const RETRIES: u32 = 6;

/// The first pause.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// The retries of one unit of work (a chunk, the planning): start a new one for the next unit.
#[derive(Debug)]
pub(crate) struct Backoff {
    retries: u32,
    limit: u32,
    pause: Duration,
    started: Instant,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::with(FIRST_PAUSE, RETRIES)
    }

    fn with(first_pause: Duration, limit: u32) -> Backoff {
        Backoff {
            retries: 0,
            limit,
            pause: first_pause,
            started: Instant::now(),
        }
    }

    /// After a failed attempt at `what`: `Ok(true)` once the next pause has passed and the work
    /// should be tried again (a warning says so first); `Ok(false)` when it should not (the fault
    /// is not transient, or the retries are used up: see [`Backoff::give_up`]);
    /// `Err(Error::Paused)` when Ctrl-C or SIGTERM came while waiting.
    pub async fn wait(
        &mut self,
        error: &Error,
        what: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool> {
        if error.kind() != ErrorKind::Transient || self.retries >= self.limit {
            return Ok(false);
        }
        let pause = self.pause;
        self.retries += 1;
        self.pause *= 2;
        tracing::warn!(
            retry = self.retries,
            of = self.limit,
            pause_ms = pause.as_millis() as u64,
            "{what}: {error}; trying again after a pause"
        );
        if *stop.borrow() {
            return Err(Error::Paused);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => Ok(true),
            // A closed channel (the run is ending) also ends the wait.
            _ = stop.wait_for(|stop| *stop) => Err(Error::Paused),
        }
    }

    /// The error that ends the run: a transient fault that outlasted the retries says so, with
    /// `what` failed and `advice`; any other error is returned as it is (it says what to do).
    pub fn give_up(&self, error: Error, what: &str, advice: &str) -> Error {
        if error.kind() != ErrorKind::Transient {
            return error;
        }
        Error::Transient(format!(
            "{what}: {error}; still failing after {} retries over {} s; {advice}",
            self.retries,
            self.started.elapsed().as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Error {
        Error::Transient("connection lost".into())
    }

    #[test]
    fn the_pauses_outlast_a_source_restarted_in_30_s() {
        let total: Duration = (0..RETRIES).map(|i| FIRST_PAUSE * 2u32.pow(i)).sum();
        assert_eq!(total, Duration::from_millis(31_500));
    }

    #[tokio::test]
    async fn transient_faults_are_retried_until_the_limit_with_doubling_pauses() {
        let (_tx, mut stop) = watch::channel(false);
        let mut backoff = Backoff::with(Duration::from_millis(1), RETRIES);
        let started = Instant::now();
        let mut retries = 0;
        while backoff.wait(&lost(), "reading", &mut stop).await.unwrap() {
            retries += 1;
        }
        assert_eq!(retries, RETRIES);
        assert!(
            started.elapsed() >= Duration::from_millis(63),
            "1 + 2 + ... + 32 ms"
        );
        let error = backoff.give_up(lost(), "reading chunk 3", "rerun later");
        assert_eq!(error.kind(), ErrorKind::Transient);
        assert!(
            error
                .to_string()
                .starts_with("reading chunk 3: connection lost; still failing after 6 retries"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn other_faults_fail_at_once_and_keep_their_message() {
        let (_tx, mut stop) = watch::channel(false);
        let mut backoff = Backoff::new();
        let definite = Error::Definite("table t no longer exists".into());
        assert!(!backoff.wait(&definite, "reading", &mut stop).await.unwrap());
        assert_eq!(
            backoff.give_up(definite, "reading", "rerun").to_string(),
            "table t no longer exists"
        );
    }

    #[tokio::test]
    async fn a_pause_ends_the_wait() {
        let (tx, mut stop) = watch::channel(false);
        let mut backoff = Backoff::with(Duration::from_secs(3600), RETRIES);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send_replace(true);
        });
        assert!(matches!(
            backoff.wait(&lost(), "reading", &mut stop).await,
            Err(Error::Paused)
        ));
    }
}
