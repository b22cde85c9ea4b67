//! What one `framewire stream` source sent and what came back: the frames in flight, each
//! answered once (a result, a drop or an error naming it) or lost when its session ends without
//! answering it; the latencies for the p50; the summary's counters. No socket, no printing, no
//! clock of its own (times are passed in): unit-tested.
//!
//! A server message is read into a [`Reply`] here. A `type` this client does not know (a newer
//! server's) is skipped and counted, never fatal: a server upgraded before its camera clients
//! must not stop them.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::output::Summary;

/// Latencies kept for the summary's p50 (the most recent; a camera may stream for weeks).
const MAX_LATENCIES: usize = 10_000;

/// A server message, as the stream client reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A frame's result, and its latency (send → result, ms).
    Result(f64),
    /// A frame the server dropped (latest frame wins).
    Dropped,
    /// An `error` message (for a frame or not).
    Error,
    /// `configured`: a `configure` was applied.
    Configured,
    /// The answer to `end_of_stream`.
    EndOfStream,
    /// `slow_down` or `session_started` (nothing to account for).
    Note,
    /// A `type` this client does not know, or an answer for no frame in flight: skipped
    /// (counted in `unknown`).
    Unknown(String),
}

/// One source's accounting across its sessions.
#[derive(Debug, Default)]
pub struct Ledger {
    /// This session's frames not answered yet: index → send time.
    in_flight: HashMap<u64, Instant>,
    /// This session's next frame index.
    next_index: u64,
    latencies: VecDeque<f64>,
    /// The counters so far.
    pub summary: Summary,
}

impl Ledger {
    /// A new session: frame indices start at 0 again.
    pub fn session_opened(&mut self) {
        self.in_flight.clear();
        self.next_index = 0;
        self.summary.closed_by_server = None;
    }

    /// A frame went out at `at`.
    pub fn sent(&mut self, at: Instant) {
        self.in_flight.insert(self.next_index, at);
        self.next_index += 1;
        self.summary.sent += 1;
    }

    /// Frames sent in this session and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The session ended: the frames it did not answer are lost (sent, never answered: they
    /// are not sent again).
    pub fn session_ended(&mut self) {
        self.summary.lost += self.in_flight.len() as u64;
        self.in_flight.clear();
    }

    /// Account for one server message `v` (parsed JSON) that came at `now`. A result, drop or
    /// error counts only when it answers a frame in flight (once); one naming no such frame
    /// is skipped and counted in `unknown`, as is a `type` this client does not know.
    pub fn take(&mut self, v: &serde_json::Value, now: Instant) -> Reply {
        self.summary.events += v["events"].as_array().map_or(0, |e| e.len() as u64);
        let kind = v["type"].as_str().unwrap_or_default();
        // Only these answer a frame (another type may carry a `frame_index` too).
        let answers = matches!(kind, "result" | "frame_dropped" | "error" | "keyframe_request" | "frame_skipped");
        let sent = v["frame_index"].as_u64().filter(|_| answers).and_then(|i| self.in_flight.remove(&i));
        let latency = sent.map(|t| now.saturating_duration_since(t).as_secs_f64() * 1000.0);
        let s = &mut self.summary;
        match kind {
            "result" | "frame_dropped" | "keyframe_request" | "frame_skipped" if sent.is_none() => {
                s.unknown += 1;
                Reply::Unknown(format!("{kind} for no frame in flight"))
            }
            "result" => {
                s.results += 1;
                let l = latency.unwrap_or(0.0);
                if self.latencies.len() == MAX_LATENCIES {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(l);
                Reply::Result(l)
            }
            "frame_dropped" => {
                s.dropped += 1;
                Reply::Dropped
            }
            "error" => {
                s.errors += 1;
                Reply::Error
            }
            // An H.264 session's access unit that had nothing to decode yet (or at all).
            "keyframe_request" | "frame_skipped" => {
                s.not_decoded += 1;
                Reply::Note
            }
            "configured" => Reply::Configured,
            "end_of_stream" => Reply::EndOfStream,
            "slow_down" | "session_started" => Reply::Note,
            other => {
                s.unknown += 1;
                Reply::Unknown(other.to_string())
            }
        }
    }

    /// The median of the kept latencies (0 with none).
    pub fn p50(&self) -> f64 {
        let mut sorted = Vec::from(self.latencies.clone());
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn every_frame_is_answered_once_or_lost_once() {
        let mut l = Ledger::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            l.sent(t0);
        }
        let later = t0 + Duration::from_millis(40);
        assert_eq!(l.take(&msg(r#"{"type":"result","frame_index":0}"#), later), Reply::Result(40.0));
        assert_eq!(l.take(&msg(r#"{"type":"frame_dropped","frame_index":1}"#), later), Reply::Dropped);
        // A second answer for frame 0 answers nothing: skipped, not counted twice.
        let again = l.take(&msg(r#"{"type":"result","frame_index":0}"#), later);
        assert_eq!(again, Reply::Unknown("result for no frame in flight".into()));
        assert_eq!(l.take(&msg(r#"{"type":"error","frame_index":2,"error":"internal"}"#), later), Reply::Error);
        assert_eq!(l.in_flight(), 1);
        l.session_ended();
        let s = &l.summary;
        assert_eq!((s.sent, s.results, s.dropped, s.errors, s.lost, s.unknown), (4, 1, 1, 1, 1, 1));
        // The next session numbers its frames from 0 again.
        l.session_opened();
        l.sent(later);
        assert_eq!(l.take(&msg(r#"{"type":"result","frame_index":0}"#), later), Reply::Result(0.0));
        assert_eq!(l.p50(), 40.0);
    }

    #[test]
    fn a_type_this_client_does_not_know_is_skipped_and_counted() {
        let mut l = Ledger::default();
        l.sent(Instant::now());
        let r = l.take(&msg(r#"{"type":"zone_report","frame_index":0,"events":[{"type":"x"}]}"#), Instant::now());
        assert_eq!(r, Reply::Unknown("zone_report".into()));
        assert_eq!(l.in_flight(), 1, "it answers no frame, whatever its frame_index");
        assert_eq!(l.take(&msg(r#"{"no_type":1}"#), Instant::now()), Reply::Unknown(String::new()));
        assert_eq!((l.summary.unknown, l.summary.events, l.summary.sent), (2, 1, 1));
    }
}
