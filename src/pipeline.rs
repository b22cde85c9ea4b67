//! The per-frame work and the pool that runs it.
//!
//! A [`Processor`] turns one validated JPEG into a [`FrameResult`]; [`Engine`] owns the one
//! fixed-size rayon pool shared by all sessions. Jobs enter the pool's FIFO injector queue and a
//! session never has more than one job queued or running, so a busy session cannot starve the
//! others: each session's next frame queues behind every frame already waiting.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::jpeg::{self, FrameError, JpegInfo};
use crate::model::Detector;
use crate::protocol::FrameResult;
use crate::wake::Waker;

/// What a processor produced for one frame.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The result to send.
    pub result: FrameResult,
    /// JPEG decode time, ms.
    pub decode_ms: f64,
    /// Detection time (pre-processing, model, post-processing), ms.
    pub detect_ms: f64,
}

/// Why a frame produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProcessError {
    /// The frame passed the header check but failed the strict decode: the client sent a
    /// broken frame (reported as `invalid_frame` with the reason code).
    #[error("invalid frame: {0}")]
    Invalid(#[from] FrameError),
    /// A stage failed on this frame (a model error or a panic): reported as `internal`; the
    /// session goes on. The text is for the server log only, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Per-frame work, shared read-only by every pool thread.
pub trait Processor: Send + Sync + 'static {
    /// The pipeline name announced in `session_started`.
    fn name(&self) -> &'static str;
    /// Decode and analyse one frame that passed [`jpeg::validate`].
    fn process(&self, frame: &[u8], info: &JpegInfo) -> Result<Processed, ProcessError>;
}

/// The `detect` pipeline: strict decode, then the object detector.
#[derive(Debug)]
pub struct DetectPipeline {
    detector: Detector,
    min_score: f32,
}

impl DetectPipeline {
    /// A pipeline reporting detections scoring above `min_score`.
    pub fn new(detector: Detector, min_score: f32) -> DetectPipeline {
        DetectPipeline { detector, min_score }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

impl Processor for DetectPipeline {
    fn name(&self) -> &'static str {
        "detect"
    }

    fn process(&self, frame: &[u8], info: &JpegInfo) -> Result<Processed, ProcessError> {
        let t0 = Instant::now();
        let img = jpeg::decode_rgb(frame, info, 1)?;
        let decode_ms = ms_since(t0);
        let t1 = Instant::now();
        let detections =
            self.detector.detect(&img, self.min_score).map_err(|e| ProcessError::Internal(e.to_string()))?;
        let detect_ms = ms_since(t1);
        Ok(Processed {
            result: FrameResult { width: info.width, height: info.height, detections },
            decode_ms,
            detect_ms,
        })
    }
}

/// One frame waiting for, or handed to, the pool.
#[derive(Debug)]
pub struct Job {
    /// The frame's index in its session.
    pub frame_index: u64,
    /// The JPEG bytes (owned: the connection thread moved them here, no copy).
    pub bytes: Vec<u8>,
    /// What the header check found.
    pub info: JpegInfo,
    /// When the frame's last byte arrived.
    pub received: Instant,
}

/// A finished job, sent back to its connection thread.
#[derive(Debug)]
pub struct Done {
    /// The frame's index in its session.
    pub frame_index: u64,
    /// When the frame arrived.
    pub received: Instant,
    /// When a pool thread took it.
    pub started: Instant,
    /// When it finished.
    pub finished: Instant,
    /// What came out.
    pub outcome: Result<Processed, ProcessError>,
}

/// The shared inference pool and the processor it runs.
pub struct Engine {
    pool: rayon::ThreadPool,
    processor: Arc<dyn Processor>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("threads", &self.pool.current_num_threads()).finish()
    }
}

impl Engine {
    /// A pool of `threads` threads running `processor`.
    pub fn new(threads: usize, processor: Arc<dyn Processor>) -> Result<Engine, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("fw-infer-{i}"))
            // Jobs catch their own panics; this handler only keeps a panic that escapes them
            // (there should be none) from aborting the process.
            .panic_handler(|_| log::error!("a pool job panicked outside its frame guard"))
            .build()?;
        Ok(Engine { pool, processor })
    }

    /// Pool size.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The processor's pipeline name.
    pub fn pipeline_name(&self) -> &'static str {
        self.processor.name()
    }

    /// Run `job` on the pool (FIFO); send its [`Done`] on `done` and wake `waker`. A panic in a
    /// stage costs this frame an `internal` error, never the process.
    pub fn submit(&self, job: Job, done: Sender<Done>, waker: Arc<Waker>) {
        let processor = Arc::clone(&self.processor);
        self.pool.spawn_fifo(move || {
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| processor.process(&job.bytes, &job.info)))
                .unwrap_or_else(|_| Err(ProcessError::Internal("a pipeline stage panicked".into())));
            drop(job.bytes);
            let d = Done {
                frame_index: job.frame_index,
                received: job.received,
                started,
                finished: Instant::now(),
                outcome,
            };
            // The session may be gone (client disconnected mid-inference): nothing to do then.
            if done.send(d).is_ok() {
                waker.wake();
            }
        });
    }

    /// Run the processor on this thread (benches and tools: the in-process pipeline time).
    pub fn process_now(&self, frame: &[u8], info: &JpegInfo) -> Result<Processed, ProcessError> {
        self.processor.process(frame, info)
    }
}
