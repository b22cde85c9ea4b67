//! What the acceptor does when `accept(2)` fails, above all when the process is out of file
//! descriptors (`EMFILE`/`ENFILE`): the pending connection stays in the kernel's backlog, so
//! the listener stays readable and a naive loop spins, logging hundreds of lines a second.
//!
//! Each listener gets a [`Backoff`]: after a failure it is left out of `poll(2)` for a pause
//! that doubles from 10 ms to 1 s (back to 10 ms after an accept succeeds), and the failure is
//! logged at most once a second, with how many there were. The other listener keeps being
//! served meanwhile. The admin port also has a small [`Reserve`] of spare descriptors: when it
//! runs out, one spare is given up so the probe can still be accepted and answered.

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

/// First pause after a failed accept.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// At most one log line per listener in this time.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// Spare descriptors kept for the admin port's probes.
pub(crate) const RESERVED_FDS: usize = 2;

/// One listener's accept failures.
#[derive(Debug)]
pub(crate) struct Backoff {
    name: &'static str,
    until: Option<Instant>,
    pause: Duration,
    /// Failures not logged yet.
    unlogged: u64,
    last_log: Option<Instant>,
}

impl Backoff {
    pub(crate) fn new(name: &'static str) -> Backoff {
        Backoff { name, until: None, pause: FIRST_PAUSE, unlogged: 0, last_log: None }
    }

    /// Whether the listener is left out of `poll(2)` now.
    pub(crate) fn paused(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// When the pause ends, if one is running.
    pub(crate) fn wake_at(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|&u| now < u)
    }

    /// An accept failed: pause (longer each time in a row) and log if a second has passed.
    /// Returns whether it logged.
    pub(crate) fn failed(&mut self, now: Instant, e: &io::Error) -> bool {
        self.unlogged += 1;
        self.until = Some(now + self.pause);
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        if self.last_log.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return false;
        }
        log::warn!(
            "accept on the {} port failed: {e} ({} time(s) since the last report); pausing it for {} ms",
            self.name,
            self.unlogged,
            pause.as_millis()
        );
        self.unlogged = 0;
        self.last_log = Some(now);
        true
    }

    /// An accept succeeded: the next failure pauses briefly again.
    pub(crate) fn succeeded(&mut self) {
        self.until = None;
        self.pause = FIRST_PAUSE;
    }
}

/// Whether `e` means the process (or the system) is out of file descriptors.
pub(crate) fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Spare descriptors (`/dev/null`), given up one at a time so a probe can be accepted when the
/// process is out of them, and taken again when descriptors are free.
#[derive(Debug, Default)]
pub(crate) struct Reserve(Vec<File>);

impl Reserve {
    /// Take spares up to [`RESERVED_FDS`] (as many as can be had now).
    pub(crate) fn refill(&mut self) {
        while self.0.len() < RESERVED_FDS {
            match File::open("/dev/null") {
                Ok(f) => self.0.push(f),
                Err(_) => break,
            }
        }
    }

    /// Give one spare up; false if none is left.
    pub(crate) fn release_one(&mut self) -> bool {
        self.0.pop().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_pause_longer_and_log_at_most_once_a_second() {
        let mut b = Backoff::new("public");
        let t0 = Instant::now();
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(out_of_fds(&e));
        assert!(b.failed(t0, &e), "the first failure is logged");
        assert!(b.paused(t0) && !b.paused(t0 + FIRST_PAUSE));
        let mut logged = 0;
        let mut t = t0;
        for _ in 0..200 {
            t += Duration::from_millis(5);
            logged += usize::from(b.failed(t, &e));
        }
        // 200 failures over one second: at most one more line.
        assert!(logged <= 1, "{logged}");
        assert_eq!(b.wake_at(t), Some(t + MAX_PAUSE), "the pause grew to its cap");
        b.succeeded();
        assert!(!b.paused(t));
        b.failed(t, &e);
        assert_eq!(b.wake_at(t), Some(t + FIRST_PAUSE), "and starts small again");
    }
}
