//! Latest-frame-wins, as a pure type: the session's one frame in flight and one frame waiting,
//! and the one-second window that decides `slow_down`. No socket, no clock of its own (the
//! window is handed `now`), so every transition is unit-tested here.
//!
//! The policy: at most one frame in flight per session. A frame arriving meanwhile waits in a
//! slot of depth one; a newer frame replaces it, and the replaced one is dropped (the session
//! counts and reports it as `frame_dropped`). When the in-flight frame finishes, the waiting
//! frame (if any) goes in flight, so the newest frame is always processed and results go out in
//! `frame_index` order.

use std::time::{Duration, Instant};

use super::state::BackpressureState;

/// What [`Slot::offer`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<F> {
    /// Nothing was in flight: the frame is in flight now; hand it to the scheduler.
    Submit(F),
    /// A frame is in flight: this one waits (the slot was empty).
    Queued,
    /// A frame is in flight: this one waits, and replaced the waiting frame, returned here to be
    /// dropped.
    Replaced(F),
}

/// One frame in flight, at most one waiting.
#[derive(Debug)]
pub struct Slot<F> {
    busy: bool,
    waiting: Option<F>,
}

impl<F> Default for Slot<F> {
    fn default() -> Self {
        Slot { busy: false, waiting: None }
    }
}

impl<F> Slot<F> {
    /// An idle slot.
    pub fn new() -> Slot<F> {
        Slot::default()
    }

    /// A frame arrived.
    pub fn offer(&mut self, frame: F) -> Offer<F> {
        if !self.busy {
            self.busy = true;
            return Offer::Submit(frame);
        }
        match self.waiting.replace(frame) {
            Some(old) => Offer::Replaced(old),
            None => Offer::Queued,
        }
    }

    /// The in-flight frame finished: the waiting frame, if any, is in flight now (submit it);
    /// `None` leaves the slot idle.
    pub fn finished(&mut self) -> Option<F> {
        let next = self.waiting.take();
        self.busy = next.is_some();
        next
    }

    /// Take the waiting frame out (the session is closing: it will never run).
    pub fn take_waiting(&mut self) -> Option<F> {
        self.waiting.take()
    }

    /// Whether a frame is in flight.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// The waiting frame, if any.
    pub fn waiting(&self) -> Option<&F> {
        self.waiting.as_ref()
    }
}

/// A token bucket: `rate` messages a second with a burst of as many (`--max-control-rate`).
#[derive(Debug, Clone)]
pub struct Budget {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Budget {
    /// A full bucket at `now`.
    pub fn new(rate: u32, now: Instant) -> Budget {
        let rate = f64::from(rate.max(1));
        Budget { rate, tokens: rate, last: now }
    }

    /// Spend one token at `now`: false when none is left (the message is refused).
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Frames a window must have seen before its drop rate is judged: one drop out of the first
/// frame or two of a window says nothing about the client's rate.
pub const MIN_JUDGED_FRAMES: u32 = 4;

/// The one-second windows behind `slow_down` and `backpressure_state`. A `slow_down` is due
/// when more than half of a window's frames were dropped, judged once the window holds at least
/// [`MIN_JUDGED_FRAMES`], or when the previous full window was judged so; at most one a second.
#[derive(Debug)]
pub struct RateWindow {
    start: Instant,
    received: u32,
    dropped: u32,
    results: u32,
    /// Results in the previous full window (the suggested fps).
    last_results: u32,
    /// The previous full window dropped more than half of at least [`MIN_JUDGED_FRAMES`].
    last_overloaded: bool,
    last_slow_down: Option<Instant>,
    last_drop: Option<Instant>,
}

impl RateWindow {
    /// A window starting at `now`.
    pub fn new(now: Instant) -> RateWindow {
        RateWindow {
            start: now,
            received: 0,
            dropped: 0,
            results: 0,
            last_results: 0,
            last_overloaded: false,
            last_slow_down: None,
            last_drop: None,
        }
    }

    /// Start a new window if a second has passed.
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.start) >= Duration::from_secs(1) {
            self.last_results = self.results;
            self.last_overloaded = self.overloaded();
            self.start = now;
            self.received = 0;
            self.dropped = 0;
            self.results = 0;
        }
    }

    /// A frame arrived.
    pub fn received(&mut self, now: Instant) {
        self.roll(now);
        self.received += 1;
    }

    /// A result went out.
    pub fn result(&mut self, now: Instant) {
        self.roll(now);
        self.results += 1;
    }

    /// A frame was dropped: whether a `slow_down` is due (more than half of this window's
    /// frames dropped, none sent in the last second), and the fps to suggest.
    pub fn dropped(&mut self, now: Instant) -> Option<u32> {
        self.roll(now);
        self.dropped += 1;
        self.last_drop = Some(now);
        self.slow_down_due(now)
    }

    /// More than half of at least [`MIN_JUDGED_FRAMES`] dropped in this window so far.
    fn overloaded(&self) -> bool {
        self.received >= MIN_JUDGED_FRAMES && self.dropped * 2 > self.received
    }

    fn slow_down_due(&mut self, now: Instant) -> Option<u32> {
        let quiet = self.last_slow_down.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if quiet && (self.overloaded() || self.last_overloaded) {
            self.last_slow_down = Some(now);
            Some(self.last_results.max(self.results).max(1))
        } else {
            None
        }
    }

    /// The state `GET /sessions` reports at `now`.
    pub fn state(&self, now: Instant) -> BackpressureState {
        BackpressureState::at(now, self.last_drop, self.last_slow_down)
    }

    /// The last drop and the last `slow_down` (for [`super::SessionState::record_backpressure`]).
    pub fn last_events(&self) -> (Option<Instant>, Option<Instant>) {
        (self.last_drop, self.last_slow_down)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_budget_allows_a_burst_then_the_rate() {
        let t = Instant::now();
        let mut b = Budget::new(4, t);
        assert_eq!((0..6).map(|_| b.take(t)).collect::<Vec<_>>(), [true, true, true, true, false, false]);
        assert!(b.take(t + Duration::from_millis(250)), "a quarter second gives one back");
        assert!(!b.take(t + Duration::from_millis(260)));
        let later = t + Duration::from_secs(60);
        assert_eq!((0..5).filter(|_| b.take(later)).count(), 4, "an idle minute refills the burst, no more");
    }

    use super::*;

    #[test]
    fn an_idle_slot_submits_at_once() {
        let mut s = Slot::new();
        assert!(!s.busy());
        assert_eq!(s.offer(0), Offer::Submit(0));
        assert!(s.busy());
    }

    #[test]
    fn a_frame_arriving_while_busy_waits_and_the_next_replaces_it() {
        let mut s = Slot::new();
        assert_eq!(s.offer(0), Offer::Submit(0));
        assert_eq!(s.offer(1), Offer::Queued);
        assert_eq!(s.offer(2), Offer::Replaced(1));
        assert_eq!(s.offer(3), Offer::Replaced(2));
        assert!(s.busy());
    }

    #[test]
    fn finishing_puts_the_newest_waiting_frame_in_flight() {
        let mut s = Slot::new();
        s.offer(0);
        s.offer(1);
        s.offer(2);
        assert_eq!(s.finished(), Some(2));
        assert!(s.busy(), "frame 2 is in flight now");
        assert_eq!(s.offer(3), Offer::Queued);
        assert_eq!(s.finished(), Some(3));
        assert_eq!(s.finished(), None);
        assert!(!s.busy());
        assert_eq!(s.offer(4), Offer::Submit(4), "idle again");
    }

    #[test]
    fn a_closing_session_takes_the_waiting_frame_out() {
        let mut s = Slot::new();
        s.offer(0);
        s.offer(1);
        assert_eq!(s.take_waiting(), Some(1));
        assert_eq!(s.take_waiting(), None);
        assert!(s.busy(), "frame 0 is still in flight");
        assert_eq!(s.finished(), None);
        assert!(!s.busy());
    }

    #[test]
    fn slow_down_needs_more_than_half_of_the_window_dropped_and_waits_a_second() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(t0);
        // 3 received, 1 dropped: not more than half.
        w.received = 3;
        w.dropped = 1;
        assert_eq!(w.slow_down_due(t0), None);
        // 2 of 3: more than half, but too few frames to judge.
        w.dropped = 2;
        assert_eq!(w.slow_down_due(t0), None);
        w.received = 5;
        w.dropped = 3;
        w.results = 4;
        assert_eq!(w.slow_down_due(t0), Some(4));
        // At most once a second, even if still dropping.
        w.dropped = 3;
        assert_eq!(w.slow_down_due(t0 + Duration::from_millis(500)), None);
        assert_eq!(w.state(t0 + Duration::from_millis(500)), BackpressureState::SlowDown);
        // The next window starts from zero, but the overloaded one before it still counts: its
        // first drop may bring the next slow_down (a second after the last).
        let t1 = t0 + Duration::from_millis(1500);
        w.roll(t1);
        assert_eq!((w.received, w.dropped, w.results, w.last_results), (0, 0, 0, 4));
        w.received = 1;
        w.dropped = 1;
        assert_eq!(w.slow_down_due(t1), Some(4));
        // After a calm window, a single early drop (1 of 1) is not judged at all.
        let t2 = t1 + Duration::from_millis(1100);
        w.received = 20;
        w.dropped = 1;
        w.roll(t2);
        w.received = 1;
        w.dropped = 1;
        assert_eq!(w.slow_down_due(t2 + Duration::from_millis(10)), None);
        assert_eq!(w.state(t2 + Duration::from_secs(2)), BackpressureState::Normal);
    }

    #[test]
    fn one_drop_at_the_start_of_a_window_is_not_a_slow_down() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(t0);
        w.received(t0);
        w.received(t0);
        assert_eq!(w.dropped(t0), None, "1 of 2 (was: 'more than half' of the frames seen so far)");
        assert_eq!(w.state(t0), BackpressureState::Dropping);
    }

    #[test]
    fn the_window_counts_through_its_methods() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(t0);
        // Frames 0, 1, 2 arrive; 0 runs, 2 replaces 1.
        (0..3).for_each(|_| w.received(t0));
        assert_eq!(w.dropped(t0), None, "1 of 3 dropped");
        w.received(t0);
        assert_eq!(w.dropped(t0), None, "2 of 4 is not more than half");
        w.result(t0);
        w.received(t0);
        assert_eq!(w.dropped(t0), Some(1), "3 of 5: slow down, suggesting this window's one result");
        assert_eq!(w.state(t0), BackpressureState::SlowDown);
        let later = t0 + Duration::from_millis(1200);
        assert_eq!(w.state(later), BackpressureState::Normal);
    }
}
