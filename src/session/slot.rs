//! Latest-frame-wins, as a pure type: the session's one frame in flight and the frames waiting
//! for it, and the one-second window that decides `slow_down`. No socket, no clock of its own
//! (the window is handed `now`), so every transition is unit-tested here.
//!
//! The policy: at most one frame in flight per session. A frame that needs the models
//! (an [`Entry`] with its job) arriving meanwhile waits, and at most one such frame waits: a
//! newer one replaces it, and the replaced one is dropped (the session counts and reports it as
//! `frame_dropped`), or, with `detect_every=auto`, keeps only its index and arrival time and is
//! answered from the tracker's prediction. Frames that need no model (`detect_every`, an
//! [`Entry`] without a job) wait in arrival order too, at most `max_predicted` of them (past
//! that, the oldest is dropped). When the in-flight frame finishes, the waiting frames are
//! taken in order ([`Slot::take_next`]): each predicted one is answered at once, and the one with its
//! job goes in flight; so the newest frame is always processed and results go out in
//! `frame_index` order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::state::BackpressureState;

/// A frame's place in the session: its index, arrival and size (what a predicted frame keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Its `frame_index`.
    pub index: u64,
    /// When its last byte arrived.
    pub received: Instant,
    /// Its width and height, from the JPEG header or the H.264 SPS.
    pub size: (u32, u32),
    /// An H.264 picture's decode on the session's thread, µs (a predicted picture is decoded
    /// too: the pictures after it refer to it).
    pub decode_us: Option<u32>,
}

/// A frame for the slot: with its job (it needs the models) or without (the tracker predicts
/// it).
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<F> {
    /// Which frame.
    pub mark: Mark,
    /// The work for the models, if it needs them.
    pub job: Option<F>,
}

/// What [`Slot::offer`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<F> {
    /// Nothing was in flight or waiting: submit its job now, or (no job) answer it now.
    Now(Entry<F>),
    /// It waits.
    Queued,
    /// It waits, and this earlier frame had to go (replaced, or one predicted frame too many):
    /// report it dropped.
    Dropped(Entry<F>),
}

/// One frame in flight; waiting, frames without a job in arrival order and at most one with.
#[derive(Debug)]
pub struct Slot<F> {
    busy: bool,
    waiting: VecDeque<Entry<F>>,
    max_predicted: usize,
}

impl<F> Default for Slot<F> {
    fn default() -> Self {
        Slot::new(0)
    }
}

impl<F> Slot<F> {
    /// An idle slot where at most `max_predicted` frames without a job may wait.
    pub fn new(max_predicted: usize) -> Slot<F> {
        Slot { busy: false, waiting: VecDeque::new(), max_predicted }
    }

    /// A frame arrived. `keep_replaced`: a waiting job it replaces is not dropped but waits on
    /// without its job (`detect_every=auto`).
    pub fn offer(&mut self, entry: Entry<F>, keep_replaced: bool) -> Offer<F> {
        if !self.busy && self.waiting.is_empty() {
            self.busy = entry.job.is_some();
            return Offer::Now(entry);
        }
        let mut dropped = None;
        if entry.job.is_some() {
            if let Some(at) = self.waiting.iter().position(|e| e.job.is_some()) {
                if keep_replaced {
                    self.waiting[at].job = None;
                } else {
                    dropped = self.waiting.remove(at);
                }
            }
        }
        self.waiting.push_back(entry);
        let predicted = self.waiting.iter().filter(|e| e.job.is_none()).count();
        if predicted > self.max_predicted {
            if let Some(at) = self.waiting.iter().position(|e| e.job.is_none()) {
                dropped = self.waiting.remove(at);
            }
        }
        dropped.map_or(Offer::Queued, Offer::Dropped)
    }

    /// The in-flight frame finished: take the waiting frames with [`Slot::take_next`].
    pub fn finished(&mut self) {
        self.busy = false;
    }

    /// The oldest waiting frame, while none is in flight: one without a job is to be answered
    /// now (call again for the next), one with a job is in flight now (submit it). `None`
    /// while a frame is in flight or when none waits.
    pub fn take_next(&mut self) -> Option<Entry<F>> {
        if self.busy {
            return None;
        }
        let e = self.waiting.pop_front()?;
        self.busy = e.job.is_some();
        Some(e)
    }

    /// Take every waiting frame out (the session is closing: they will never be answered).
    pub fn take_waiting(&mut self) -> Vec<Entry<F>> {
        self.waiting.drain(..).collect()
    }

    /// Whether a frame is in flight.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// The index of the oldest waiting frame, if any.
    pub fn first_waiting(&self) -> Option<u64> {
        self.waiting.front().map(|e| e.mark.index)
    }

    /// Frames waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
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

    thread_local! {
        /// One arrival time for every frame of a test (so entries compare equal).
        static T0: Instant = Instant::now();
    }

    /// Frame `index`, with its job or not.
    fn e(index: u64, job: bool) -> Entry<u64> {
        let mark = Mark { index, received: T0.with(|t| *t), size: (640, 480), decode_us: None };
        Entry { mark, job: job.then_some(index) }
    }

    fn jobs(s: &mut Slot<u64>) -> Vec<(u64, bool)> {
        std::iter::from_fn(|| s.take_next()).map(|e| (e.mark.index, e.job.is_some())).collect()
    }

    #[test]
    fn an_idle_slot_submits_at_once() {
        let mut s = Slot::new(4);
        assert!(!s.busy());
        assert_eq!(s.offer(e(0, true), false), Offer::Now(e(0, true)));
        assert!(s.busy());
        let mut s = Slot::new(4);
        assert_eq!(s.offer(e(0, false), false), Offer::Now(e(0, false)), "a predicted frame is answered now");
        assert!(!s.busy(), "and nothing is in flight");
    }

    #[test]
    fn a_frame_arriving_while_busy_waits_and_the_next_replaces_it() {
        let mut s = Slot::new(4);
        assert_eq!(s.offer(e(0, true), false), Offer::Now(e(0, true)));
        assert_eq!(s.offer(e(1, true), false), Offer::Queued);
        assert_eq!(s.offer(e(2, true), false), Offer::Dropped(e(1, true)));
        assert_eq!(s.offer(e(3, true), false), Offer::Dropped(e(2, true)));
        assert!(s.busy());
        assert_eq!(s.waiting(), 1);
    }

    #[test]
    fn finishing_puts_the_newest_waiting_frame_in_flight() {
        let mut s = Slot::new(4);
        s.offer(e(0, true), false);
        s.offer(e(1, true), false);
        s.offer(e(2, true), false);
        assert_eq!(s.take_next(), None, "frame 0 is in flight");
        s.finished();
        assert_eq!(s.take_next(), Some(e(2, true)));
        assert!(s.busy(), "frame 2 is in flight now");
        assert_eq!(s.offer(e(3, true), false), Offer::Queued);
        s.finished();
        assert_eq!(s.take_next(), Some(e(3, true)));
        s.finished();
        assert_eq!(s.take_next(), None);
        assert!(!s.busy());
        assert_eq!(s.offer(e(4, true), false), Offer::Now(e(4, true)), "idle again");
    }

    #[test]
    fn predicted_frames_wait_in_order_and_are_answered_before_the_next_job() {
        // detect_every=3: 0 in flight; 1, 2 predicted; 3 needs the detector; 4, 5 predicted;
        // 6 replaces 3 (dropped, as today); 7 predicted.
        let mut s = Slot::new(8);
        s.offer(e(0, true), false);
        for (i, job) in [(1, false), (2, false), (3, true), (4, false), (5, false)] {
            assert_eq!(s.offer(e(i, job), false), Offer::Queued);
        }
        assert_eq!(s.offer(e(6, true), false), Offer::Dropped(e(3, true)));
        s.offer(e(7, false), false);
        assert_eq!(s.first_waiting(), Some(1));
        s.finished();
        assert_eq!(jobs(&mut s), [(1, false), (2, false), (4, false), (5, false), (6, true)], "then 6 in flight");
        assert_eq!(s.first_waiting(), Some(7), "7 waits for 6");
        s.finished();
        assert_eq!(jobs(&mut s), [(7, false)]);
        assert!(!s.busy());
    }

    #[test]
    fn with_auto_a_replaced_frame_waits_on_without_its_job_and_the_bound_drops_the_oldest() {
        let mut s = Slot::new(2);
        s.offer(e(0, true), true);
        assert_eq!(s.offer(e(1, true), true), Offer::Queued);
        assert_eq!(s.offer(e(2, true), true), Offer::Queued, "1 keeps its place, without its bytes");
        assert_eq!(s.offer(e(3, true), true), Offer::Queued);
        assert_eq!(s.offer(e(4, true), true), Offer::Dropped(e(1, false)), "a third predicted frame: the oldest goes");
        s.finished();
        assert_eq!(jobs(&mut s), [(2, false), (3, false), (4, true)], "the newest goes to the detector");
    }

    #[test]
    fn a_closing_session_takes_the_waiting_frames_out() {
        let mut s = Slot::new(4);
        s.offer(e(0, true), false);
        s.offer(e(1, false), false);
        s.offer(e(2, true), false);
        let out: Vec<u64> = s.take_waiting().into_iter().map(|e| e.mark.index).collect();
        assert_eq!(out, [1, 2]);
        assert!(s.take_waiting().is_empty());
        assert!(s.busy(), "frame 0 is still in flight");
        s.finished();
        assert_eq!(s.take_next(), None);
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
