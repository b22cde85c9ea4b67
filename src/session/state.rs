//! A session's counters as other threads see them (`GET /sessions`, the log): atomics written
//! by the session's own thread, read without a lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

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
    /// The session's pipeline.
    pub pipeline: PipelineKind,
    /// Binary messages received so far (= the next frame's index).
    pub(super) frame_index: AtomicU64,
    /// Frames dropped so far.
    pub(super) dropped_frames: AtomicU64,
    /// Unix time in ms of the last result, 0 = none yet.
    pub(super) last_processed_ms: AtomicU64,
    /// A [`BackpressureState`] as u8.
    pub(super) backpressure: AtomicU8,
}

/// A point-in-time copy of a session's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            pipeline,
            frame_index: AtomicU64::new(0),
            dropped_frames: AtomicU64::new(0),
            last_processed_ms: AtomicU64::new(0),
            backpressure: AtomicU8::new(0),
        }
    }

    /// Copy the counters.
    pub fn snapshot(&self) -> SessionSnapshot {
        let last = self.last_processed_ms.load(Ordering::Relaxed);
        let bp = match self.backpressure.load(Ordering::Relaxed) {
            1 => BackpressureState::Dropping,
            2 => BackpressureState::SlowDown,
            _ => BackpressureState::Normal,
        };
        SessionSnapshot {
            session_id: self.session_id,
            peer: self.peer,
            pipeline: self.pipeline,
            frame_index: self.frame_index.load(Ordering::Relaxed),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
            last_processed_timestamp: (last != 0).then_some(last),
            backpressure_state: bp.as_str(),
        }
    }
}
