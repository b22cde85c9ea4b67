//! A session's counters as other threads see them (`GET /sessions`, the log): atomics written
//! by the session's own thread, read without a lock; and its zone and line counts, behind a
//! lock the session takes once per result and a `/sessions` request once per session.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::analytics::{LineCount, Named, ZoneCount};
use crate::vision::PipelineKind;

/// Backpressure state of a session, as `GET /sessions` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BackpressureState {
    /// No frame dropped in the last second.
    Normal = 0,
    /// Frames were dropped in the last second.
    Dropping = 1,
    /// A `slow_down` was sent in the last second.
    SlowDown = 2,
}

impl BackpressureState {
    /// The state at `now` after the last drop and the last `slow_down` (a second each).
    pub fn at(now: Instant, last_drop: Option<Instant>, last_slow_down: Option<Instant>) -> BackpressureState {
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if recent(last_slow_down) {
            BackpressureState::SlowDown
        } else if recent(last_drop) {
            BackpressureState::Dropping
        } else {
            BackpressureState::Normal
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressureState::Normal => "normal",
            BackpressureState::Dropping => "dropping",
            BackpressureState::SlowDown => "slow_down",
        }
    }
}

/// A session's counters, readable from other threads (atomics: no lock on the frame path).
#[derive(Debug)]
pub struct SessionState {
    /// UUID v4.
    pub session_id: uuid::Uuid,
    /// The client's address.
    pub peer: SocketAddr,
    /// The session's pipeline now (a `configure` may change it), as an index in
    /// [`PipelineKind::ALL`].
    pipeline: AtomicU8,
    /// Binary messages received so far (= the next frame's index).
    pub(super) frame_index: AtomicU64,
    /// Frames dropped so far.
    pub(super) dropped_frames: AtomicU64,
    /// Unix time in ms of the last result, 0 = none yet.
    pub(super) last_processed_ms: AtomicU64,
    /// When the session started: the origin of the two times below.
    created: Instant,
    /// The last drop, in µs after `created`, plus 1 (0: none yet).
    last_drop_us: AtomicU64,
    /// The last `slow_down`, likewise.
    last_slow_down_us: AtomicU64,
    /// Who is in each zone and each line's crossings, as the last result said.
    counts: Mutex<(Named<ZoneCount>, Named<LineCount>)>,
}

/// A point-in-time copy of a session's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSnapshot {
    /// UUID v4.
    pub session_id: uuid::Uuid,
    /// Client address.
    pub peer: SocketAddr,
    /// The session's pipeline.
    pub pipeline: PipelineKind,
    /// Binary messages received so far.
    pub frame_index: u64,
    /// Frames dropped so far.
    pub dropped_frames: u64,
    /// Unix ms of the last result, if any.
    pub last_processed_timestamp: Option<u64>,
    /// `normal`, `dropping` or `slow_down`.
    pub backpressure_state: &'static str,
    /// Who is in each of its zones (none: no zones).
    pub zones: Named<ZoneCount>,
    /// Each of its lines' crossings (none: no lines).
    pub lines: Named<LineCount>,
}

impl SessionState {
    /// A fresh session for `peer`, running `pipeline`, with a new id.
    pub fn new(peer: SocketAddr, pipeline: PipelineKind) -> SessionState {
        SessionState::with_id(uuid::Uuid::new_v4(), peer, pipeline)
    }

    /// As [`SessionState::new`], with the id drawn by the caller (the server names the
    /// connection thread after it before the upgrade).
    pub fn with_id(session_id: uuid::Uuid, peer: SocketAddr, pipeline: PipelineKind) -> SessionState {
        SessionState {
            session_id,
            peer,
            pipeline: AtomicU8::new(pipeline_index(pipeline)),
            frame_index: AtomicU64::new(0),
            dropped_frames: AtomicU64::new(0),
            last_processed_ms: AtomicU64::new(0),
            created: Instant::now(),
            last_drop_us: AtomicU64::new(0),
            last_slow_down_us: AtomicU64::new(0),
            counts: Mutex::default(),
        }
    }

    /// The session's pipeline now.
    pub fn pipeline(&self) -> PipelineKind {
        let i = usize::from(self.pipeline.load(Ordering::Relaxed));
        PipelineKind::ALL.get(i).copied().unwrap_or(PipelineKind::DetectOcr)
    }

    /// A `configure` changed the pipeline.
    pub(super) fn set_pipeline(&self, kind: PipelineKind) {
        self.pipeline.store(pipeline_index(kind), Ordering::Relaxed);
    }

    /// The session's last drop and last `slow_down`, for [`SessionState::snapshot`] to judge
    /// against the time it is read (not the time of the last event: a state read a minute
    /// after the last drop is `normal`).
    pub(super) fn record_backpressure(&self, last_drop: Option<Instant>, last_slow_down: Option<Instant>) {
        let us = |t: Option<Instant>| {
            t.map_or(0, |t| (t.saturating_duration_since(self.created).as_micros() as u64).saturating_add(1))
        };
        self.last_drop_us.store(us(last_drop), Ordering::Relaxed);
        self.last_slow_down_us.store(us(last_slow_down), Ordering::Relaxed);
    }

    /// The zone and line counts the session has now.
    pub(super) fn set_counts(&self, zones: Named<ZoneCount>, lines: Named<LineCount>) {
        *self.counts.lock() = (zones, lines);
    }

    fn instant(&self, us: &AtomicU64) -> Option<Instant> {
        match us.load(Ordering::Relaxed) {
            0 => None,
            v => self.created.checked_add(Duration::from_micros(v - 1)),
        }
    }

    /// Copy the counters; the backpressure state as of now.
    pub fn snapshot(&self) -> SessionSnapshot {
        self.snapshot_at(Instant::now())
    }

    /// [`SessionState::snapshot`] as of `now`.
    pub fn snapshot_at(&self, now: Instant) -> SessionSnapshot {
        let last = self.last_processed_ms.load(Ordering::Relaxed);
        let bp = BackpressureState::at(now, self.instant(&self.last_drop_us), self.instant(&self.last_slow_down_us));
        let (zones, lines) = self.counts.lock().clone();
        SessionSnapshot {
            session_id: self.session_id,
            peer: self.peer,
            pipeline: self.pipeline(),
            frame_index: self.frame_index.load(Ordering::Relaxed),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
            last_processed_timestamp: (last != 0).then_some(last),
            backpressure_state: bp.as_str(),
            zones,
            lines,
        }
    }
}

fn pipeline_index(kind: PipelineKind) -> u8 {
    PipelineKind::ALL.iter().position(|k| *k == kind).map_or(0, |i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backpressure_state_is_judged_when_read_not_when_written() {
        let s = SessionState::new("127.0.0.1:1".parse().unwrap(), PipelineKind::Detect);
        let t = Instant::now();
        s.record_backpressure(Some(t), None);
        assert_eq!(s.snapshot_at(t + Duration::from_millis(500)).backpressure_state, "dropping");
        assert_eq!(s.snapshot_at(t + Duration::from_secs(5)).backpressure_state, "normal", "no longer stale");
        s.record_backpressure(Some(t), Some(t));
        assert_eq!(s.snapshot_at(t).backpressure_state, "slow_down");
        assert_eq!(s.snapshot_at(t + Duration::from_secs(2)).backpressure_state, "normal");
    }
}
