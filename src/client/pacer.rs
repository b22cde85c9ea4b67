//! When one `framewire stream` session sends ([`Pacer`]): `--pace` and `--fps`, `--count` (with
//! `--pace server`, frames sent in the run), the drain once the source ended or the count was
//! reached (`--drain-timeout`), and `end_of_stream` (with `--config`) once every frame is
//! settled. Pure: no socket, the clock passed in; unit-tested.

use std::time::{Duration, Instant};

/// When `framewire stream` sends the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// At most one frame in flight; the newest frame when the answer comes (older ones are
    /// dropped here). The default for cameras (URLs and devices).
    Server,
    /// At `--fps`, whatever the server does (it drops what it cannot take). The default for
    /// files, directories and stdin.
    Fps,
}

/// Where `end_of_stream` stands in a `--config` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eos {
    /// No `--config`: not sent.
    Off,
    /// To send once every frame is settled.
    Due,
    /// Sent; waiting for the answer.
    Sent,
    /// Answered.
    Answered,
}

/// What a session does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send the next frame, if the source has one.
    Send,
    /// Send `end_of_stream`.
    EndOfStream,
    /// Nothing to send: read for at most this long.
    Wait(Duration),
    /// The session is done.
    Done,
}

/// Longest read while waiting (the loop then looks at the feed and its deadlines again).
pub const TURN: Duration = Duration::from_millis(50);

/// When one session sends: `--pace` and `--fps`, `--count` (with `--pace server`, frames sent
/// in the run), the drain once the source ended or the count was reached, and `end_of_stream`
/// (with `--config`) once every frame is settled. Pure: the clock is passed in.
#[derive(Debug)]
pub struct Pacer {
    pace: Pace,
    period: Duration,
    next: Instant,
    limit: u64,
    drain: Duration,
    drain_until: Option<Instant>,
    /// Where `end_of_stream` stands (the session sets it `Answered`).
    pub eos: Eos,
}

impl Pacer {
    /// A session's pacing: `pace` at `fps` (0: as fast as frames come), `count` (frames to
    /// send in the run, with `--pace server`), `drain` (`--drain-timeout`, seconds) and whether
    /// `end_of_stream` is due at the end (`--config`).
    pub fn new(pace: Pace, fps: f64, count: Option<u64>, drain: f64, end_of_stream: bool, now: Instant) -> Pacer {
        Pacer {
            pace,
            period: if fps > 0.0 && pace == Pace::Fps { Duration::from_secs_f64(1.0 / fps) } else { Duration::ZERO },
            next: now,
            limit: if pace == Pace::Server { count.unwrap_or(u64::MAX) } else { u64::MAX },
            drain: Duration::from_secs_f64(drain.clamp(0.0, 86_400.0)),
            drain_until: None,
            eos: if end_of_stream { Eos::Due } else { Eos::Off },
        }
    }

    /// What to do at `now`, with `in_flight` frames unanswered and `sent` sent in the run.
    pub fn step(&mut self, now: Instant, in_flight: usize, sent: u64) -> Step {
        if self.drain_until.is_none() && sent >= self.limit {
            self.drain_until = Some(now + self.drain);
        }
        if let Some(until) = self.drain_until {
            let settled = in_flight == 0;
            if settled && self.eos == Eos::Due {
                self.eos = Eos::Sent;
                return Step::EndOfStream;
            }
            if (settled && self.eos != Eos::Sent) || now >= until {
                return Step::Done;
            }
            return Step::Wait(until.saturating_duration_since(now).min(TURN));
        }
        match self.pace {
            Pace::Fps if now < self.next => Step::Wait(self.next - now),
            Pace::Server if in_flight > 0 => Step::Wait(TURN),
            _ => Step::Send,
        }
    }

    /// A frame went out at `now`.
    pub fn sent(&mut self, now: Instant) {
        // Behind schedule (slow source): restart the schedule instead of bursting.
        self.next = if self.next + self.period < now { now + self.period } else { self.next + self.period };
    }

    /// The source ended: drain.
    pub fn source_ended(&mut self, now: Instant) {
        self.drain_until.get_or_insert(now + self.drain);
    }

    /// Draining: nothing more will be sent.
    pub fn draining(&self) -> bool {
        self.drain_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_fps_sends_on_schedule_and_catches_up_without_bursting() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(Pace::Fps, 10.0, None, 10.0, false, t);
        assert_eq!(p.step(t, 0, 0), Step::Send);
        p.sent(t);
        assert_eq!(p.step(t + ms(40), 1, 1), Step::Wait(ms(60)), "the next frame is due at 100 ms");
        assert_eq!(p.step(t + ms(100), 5, 1), Step::Send, "frames in flight do not hold --pace fps back");
        // A source 500 ms late: one frame now, the next a period later (no burst of 5).
        p.sent(t + ms(600));
        assert_eq!(p.step(t + ms(650), 0, 2), Step::Wait(ms(50)));
    }

    #[test]
    fn pace_server_keeps_one_frame_in_flight_and_count_drains_then_ends_the_stream() {
        let t = Instant::now();
        let mut p = Pacer::new(Pace::Server, 10.0, Some(2), 10.0, true, t);
        assert_eq!(p.step(t, 0, 0), Step::Send);
        assert_eq!(p.step(t, 1, 1), Step::Wait(TURN), "one frame in flight");
        assert_eq!(p.step(t, 0, 1), Step::Send);
        // Count reached: drain until settled, then end_of_stream, then done once answered.
        assert!(matches!(p.step(t, 1, 2), Step::Wait(_)));
        assert!(p.draining());
        assert_eq!(p.step(t, 0, 2), Step::EndOfStream);
        assert!(matches!(p.step(t, 0, 2), Step::Wait(_)), "waits for the answer");
        p.eos = Eos::Answered;
        assert_eq!(p.step(t, 0, 2), Step::Done);
        // The drain has a deadline: --drain-timeout.
        let mut p = Pacer::new(Pace::Server, 10.0, None, 1.0, false, t);
        p.source_ended(t);
        assert!(matches!(p.step(t, 1, 0), Step::Wait(_)));
        assert_eq!(p.step(t + Duration::from_secs(1), 1, 0), Step::Done, "unanswered frames are not waited for");
    }
}
