//! The retry policy of `framewire stream` for sources and server connections: 1 s, doubling up
//! to 30 s, back to 1 s once the source or the connection has delivered again; at most
//! `--max-retries` attempts in a row without a delivery. A pure type (no clock, no sleep), so
//! every step is unit-tested.

use std::time::Duration;

/// The first wait.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
pub const LONGEST: Duration = Duration::from_secs(30);

/// Consecutive failures and the wait before the next attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    failures: u32,
    max_retries: Option<u32>,
}

impl Backoff {
    /// `max_retries`: attempts allowed in a row without a delivery (`None`: forever).
    pub fn new(max_retries: Option<u32>) -> Backoff {
        Backoff { next: FIRST, failures: 0, max_retries }
    }

    /// Something failed: the wait before retrying, or `None` when no retry is left.
    pub fn failed(&mut self) -> Option<Duration> {
        if self.max_retries.is_some_and(|m| self.failures >= m) {
            return None;
        }
        self.failures += 1;
        let wait = self.next;
        self.next = (self.next * 2).min(LONGEST);
        Some(wait)
    }

    /// The source or connection delivered (a frame, a result): the next failure waits 1 s again
    /// and the retry count starts over.
    pub fn delivered(&mut self) {
        self.next = FIRST;
        self.failures = 0;
    }

    /// Retries made since the last delivery.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_thirty_seconds_and_starts_over_after_a_delivery() {
        let mut b = Backoff::new(None);
        let waits: Vec<u64> = (0..8).map(|_| b.failed().unwrap().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        b.delivered();
        assert_eq!(b.failed(), Some(FIRST));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn max_retries_counts_failures_in_a_row() {
        let mut none = Backoff::new(Some(0));
        assert_eq!(none.failed(), None, "no retry at all");
        let mut two = Backoff::new(Some(2));
        assert!(two.failed().is_some() && two.failed().is_some());
        assert_eq!(two.failed(), None);
        two.delivered();
        assert!(two.failed().is_some(), "a delivery gives the retries back");
    }
}
