//! The scheduler: which thread runs which frame, and how wide.
//!
//! [`Scheduler`] owns a fixed number of frame workers (plain threads, `--threads`, default one
//! per core) shared by all sessions, fed by one FIFO queue. A session never has more than one
//! frame queued or running (its latest-frame-wins slot), so the queue holds at most one frame
//! per live session and a busy session cannot starve the others: each session's next frame
//! queues behind every frame already waiting. A frame's outcome goes back to its session as a
//! [`FinishedFrame`] on the session's channel, with a wake-up of its poll loop.
//!
//! Width, per frame and by load (a [`Width`] handed to the frame, [`crate::vision::parallel`]): a frame that is alone (no other
//! frame running or waiting) may use every core: its two detectors side by side, its text lines
//! spread, and a lone model's matrix products split (tract; ONNX Runtime's one session per
//! model spreads over whichever of its pool threads are idle, see its engine); as soon as
//! another frame runs or waits, each frame asks for one core, which gives the most frames per
//! second. A frame's pieces run on a fixed set of `threads - 1` helper
//! threads ([`Helpers`]) while its worker blocks; workers are not helpers and helpers run only
//! narrow pieces, so no thread ever picks up another frame's work while it waits: frames never
//! nest.
//!
//! A frame whose session is gone (the client disconnected) leaves the queue count at once and is
//! discarded, undecoded, when a worker reaches it ([`Scheduler::cancel`]). One already running
//! finishes, and its worker then calls the server's hook ([`Scheduler::after_orphan`]: memory may
//! go back to the system if no session is left, see `crate::memory`).

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::RwLock;

use crate::vision::jpeg::JpegInfo;
use crate::vision::parallel::{Gauge, Helpers, Width};
use crate::vision::{DetectorInfo, FrameOptions, Picture, PipelineKind, ProcessError, Processed, Processor};
use crate::wake::Waker;

/// What a worker is handed: a JPEG to decode, or a picture its session decoded (H.264).
#[derive(Debug)]
pub enum Frame {
    /// A JPEG that passed the header check.
    Jpeg {
        /// The bytes (owned: the connection thread moved them here, no copy).
        bytes: Vec<u8>,
        /// What the header check found.
        info: JpegInfo,
    },
    /// A picture decoded on its session's thread (every access unit is decoded there, in
    /// order; only the newest picture waits for a worker).
    Picture(Picture),
}

/// One frame waiting for, or handed to, a worker.
#[derive(Debug)]
pub struct Job {
    /// The frame's index in its session.
    pub frame_index: u64,
    /// Its bytes or picture.
    pub frame: Frame,
    /// The session's pipeline.
    pub kind: PipelineKind,
    /// When the frame's last byte arrived.
    pub received: Instant,
    /// The session's per-frame options.
    pub options: Arc<FrameOptions>,
}

/// A submitted frame, shared by its session and the scheduler: the queue holds only this
/// ticket, and the ticket holds the job (its bytes) until a worker takes it or its session
/// cancels it ([`Scheduler::cancel`]). So a frame whose session is gone gives its bytes back at
/// once, not when a worker reaches its place in the queue, and is never decoded.
#[derive(Debug)]
pub struct Ticket {
    state: AtomicU8,
    job: parking_lot::Mutex<Option<Job>>,
}

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const CANCELLED: u8 = 2;

impl Ticket {
    fn new(job: Job) -> Ticket {
        Ticket { state: AtomicU8::new(QUEUED), job: parking_lot::Mutex::new(Some(job)) }
    }

    /// A worker takes the frame: `None` if it was cancelled first.
    fn start(&self) -> Option<Job> {
        self.state.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).ok()?;
        self.job.lock().take()
    }

    /// The session gave up on the frame: true if it had not started yet (its bytes are freed
    /// now).
    fn cancel(&self) -> bool {
        let cancelled = self.state.compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if cancelled {
            drop(self.job.lock().take());
        }
        cancelled
    }

    /// Whether the ticket still holds its frame's bytes (queued, not started or cancelled).
    pub fn holds_frame(&self) -> bool {
        self.job.lock().is_some()
    }
}

/// A finished frame, sent back to its connection thread.
#[derive(Debug)]
pub struct FinishedFrame {
    /// The frame's index in its session.
    pub frame_index: u64,
    /// When the frame arrived.
    pub received: Instant,
    /// When a worker took it.
    pub started: Instant,
    /// When it finished.
    pub finished: Instant,
    /// What came out.
    pub outcome: Result<Processed, ProcessError>,
}

/// A frame the scheduler could not queue: its workers are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the frame workers are gone")]
pub struct NotQueued;

/// A queue entry: a ticket (a few dozen bytes, whatever the frame's size) and where its
/// outcome goes. Each live session has at most one entry whose ticket holds a frame; entries of
/// cancelled frames hold none and are skipped when reached.
struct Work {
    ticket: Arc<Ticket>,
    done: Sender<FinishedFrame>,
    waker: Arc<Waker>,
}

/// The shared frame workers and the processor they run.
/// What a worker calls after finishing a frame whose session was gone, given the frames
/// finished so far ([`Scheduler::after_orphan`]).
pub type OrphanHook = Box<dyn Fn(u64) + Send + Sync>;

/// What the workers count and call, shared with the scheduler.
#[derive(Default)]
struct Finished {
    /// Frames finished since start-up (answered or not).
    count: AtomicU64,
    hook: RwLock<Option<OrphanHook>>,
}

pub struct Scheduler {
    tx: Option<Sender<Work>>,
    workers: Vec<JoinHandle<()>>,
    gauge: Arc<Gauge>,
    finished: Arc<Finished>,
    /// What [`Scheduler::process_now`] runs under: a lone frame with the workers' helpers.
    lone: Arc<Gauge>,
    threads: usize,
    processor: Arc<dyn Processor>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("threads", &self.threads).finish()
    }
}

impl Scheduler {
    /// `threads` frame workers (at least 1) running `processor`.
    pub fn new(threads: usize, processor: Arc<dyn Processor>) -> io::Result<Scheduler> {
        let threads = threads.max(1);
        // Unbounded in type. It holds at most one frame per live session (its latest-frame slot
        // submits one at a time); the entries cancelled frames leave behind hold no frame (a
        // ticket, a few dozen bytes) and are skipped when reached.
        let (tx, rx) = crossbeam_channel::unbounded::<Work>();
        // One worker never splits a frame: no helpers then.
        let helpers = if threads > 1 { Some(Helpers::new(threads)?) } else { None };
        let gauge = Arc::new(Gauge::new(helpers.clone()));
        let lone = Arc::new(Gauge::lone(helpers));
        let finished = Arc::new(Finished::default());
        let workers = (0..threads)
            .map(|i| {
                let (rx, gauge, processor) = (rx.clone(), Arc::clone(&gauge), Arc::clone(&processor));
                let finished = Arc::clone(&finished);
                std::thread::Builder::new()
                    .name(format!("fw-frame-{i}"))
                    .spawn(move || worker(rx, gauge, processor, threads, &finished))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Scheduler { tx: Some(tx), workers, gauge, finished, lone, threads, processor })
    }

    /// Frames the workers finished since start-up (answered, or for a session gone meanwhile).
    pub fn frames_finished(&self) -> u64 {
        self.finished.count.load(Ordering::Acquire)
    }

    /// From now on, after a frame whose session was gone before it finished, its worker calls
    /// `hook` with [`Scheduler::frames_finished`] (replacing any earlier hook).
    pub fn after_orphan(&self, hook: OrphanHook) {
        *self.finished.hook.write() = Some(hook);
    }

    /// Frame workers.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Frames handed to the scheduler and not yet started (the queue depth).
    pub fn queued(&self) -> usize {
        self.gauge.queued.load(Ordering::Relaxed)
    }

    /// The detector the processor runs (see [`Processor::detector`]).
    pub fn detector(&self) -> Option<DetectorInfo> {
        self.processor.detector()
    }

    /// Engine plans built for the processor's models so far.
    pub fn plans_built(&self) -> u64 {
        self.processor.plans_built()
    }

    /// Frames being processed now.
    pub fn running(&self) -> usize {
        self.gauge.running.load(Ordering::Relaxed)
    }

    /// Queue `job` (FIFO); its [`FinishedFrame`] goes to `done`, then `waker` is woken. A panic
    /// in a stage costs this frame an `internal` error, never the process.
    ///
    /// Returns the frame's ticket (for [`Scheduler::cancel`]). `Err(NotQueued)` when no worker
    /// can take it any more (they are gone): nothing will answer the frame, so the caller must;
    /// the frame is dropped and the queue count is exactly as before.
    pub fn submit(&self, job: Job, done: Sender<FinishedFrame>, waker: Arc<Waker>) -> Result<Arc<Ticket>, NotQueued> {
        let ticket = Arc::new(Ticket::new(job));
        self.gauge.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.as_ref().map(|tx| tx.send(Work { ticket: Arc::clone(&ticket), done, waker }));
        if matches!(sent, Some(Ok(()))) {
            return Ok(ticket);
        }
        self.cancel(&ticket);
        Err(NotQueued)
    }

    /// The session of a submitted frame is gone: if no worker took the frame yet, it leaves
    /// the queue count and its bytes are freed at once; its queue entry is skipped when reached.
    pub fn cancel(&self, ticket: &Ticket) {
        if ticket.cancel() {
            self.gauge.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Run the processor on the calling thread as a lone frame and wait for it (benches and
    /// tools: the in-process pipeline time, with the width a lone frame gets in the server).
    pub fn process_now(&self, frame: &[u8], info: &JpegInfo, kind: PipelineKind) -> Result<Processed, ProcessError> {
        let options = FrameOptions::default();
        let width = Width::granted(self.threads, Arc::clone(&self.lone));
        self.processor.process(frame, info, kind, &options, &width)
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A frame worker: take the oldest frame, run it as wide as the load allows, send it back.
fn worker(rx: Receiver<Work>, gauge: Arc<Gauge>, processor: Arc<dyn Processor>, threads: usize, finished: &Finished) {
    for Work { ticket, done, waker } in rx.iter() {
        let Some(job) = ticket.start() else {
            // Cancelled (its session is gone): already out of the queue count, bytes freed.
            continue;
        };
        gauge.running.fetch_add(1, Ordering::Relaxed);
        gauge.queued.fetch_sub(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let width = Width::granted(threads, Arc::clone(&gauge));
            match job.frame {
                Frame::Jpeg { bytes, info } => processor.process(&bytes, &info, job.kind, &job.options, &width),
                Frame::Picture(p) => processor.process_picture(p, job.kind, &job.options, &width),
            }
        }))
        .unwrap_or_else(|_| Err(ProcessError::Internal("a pipeline stage panicked".into())));
        gauge.running.fetch_sub(1, Ordering::Relaxed);
        let d = FinishedFrame {
            frame_index: job.frame_index,
            received: job.received,
            started,
            finished: Instant::now(),
            outcome,
        };
        let count = finished.count.fetch_add(1, Ordering::AcqRel) + 1;
        // The session may be gone (client disconnected mid-inference): no one to answer then.
        if done.send(d).is_ok() {
            waker.wake();
        } else if let Some(hook) = finished.hook.read().as_ref() {
            hook(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::parallel::Width;
    use crate::vision::{Analysis, Outcome, StageTimes};

    struct EmptyPlumbingStandIn;

    impl Processor for EmptyPlumbingStandIn {
        fn process(&self, _: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, _: &Width) -> Outcome {
            let result = Analysis { width: info.width, height: info.height, ..Analysis::default() };
            Ok(Processed { result, timings: StageTimes::default() })
        }
    }

    fn job() -> Job {
        Job {
            frame_index: 0,
            frame: Frame::Jpeg {
                bytes: vec![0; 16],
                info: JpegInfo { width: 1, height: 1, components: 3, progressive: false },
            },
            kind: PipelineKind::Detect,
            received: Instant::now(),
            options: Arc::default(),
        }
    }

    #[test]
    fn a_failed_submit_says_so_and_leaves_the_counts_exact_with_empty_plumbing_stand_in() {
        let mut s = Scheduler::new(1, Arc::new(EmptyPlumbingStandIn)).expect("workers");
        drop(s.tx.take()); // the workers are gone
        let (done, results) = crossbeam_channel::unbounded();
        let waker = Arc::new(Waker::new().expect("eventfd"));
        assert_eq!(s.submit(job(), done, waker).err(), Some(NotQueued));
        assert_eq!(s.queued(), 0);
        assert!(results.try_recv().is_err(), "nothing will answer it: the caller must");
    }

    /// Holds every frame until the gate opens.
    struct GatedPlumbingStandIn(crossbeam_channel::Receiver<()>);

    impl Processor for GatedPlumbingStandIn {
        fn process(&self, _: &[u8], info: &JpegInfo, k: PipelineKind, o: &FrameOptions, w: &Width) -> Outcome {
            let _ = self.0.recv();
            EmptyPlumbingStandIn.process(&[], info, k, o, w)
        }
    }

    #[test]
    fn a_cancelled_frame_gives_its_bytes_back_at_once_with_gated_plumbing_stand_in() {
        let (open, gate) = crossbeam_channel::unbounded();
        let s = Scheduler::new(1, Arc::new(GatedPlumbingStandIn(gate))).expect("workers");
        let (done, results) = crossbeam_channel::unbounded();
        let waker = Arc::new(Waker::new().expect("eventfd"));
        let busy = s.submit(job(), done.clone(), Arc::clone(&waker)).expect("queued");
        // The one worker holds the first frame; the next ones wait in the queue.
        let t = Instant::now();
        while busy.holds_frame() && t.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::yield_now();
        }
        assert!(!busy.holds_frame(), "the worker took the first frame");
        let waiting: Vec<Arc<Ticket>> =
            (0..100).map(|_| s.submit(job(), done.clone(), Arc::clone(&waker)).expect("queued")).collect();
        assert_eq!(s.queued(), 100);
        assert!(waiting.iter().all(|t| t.holds_frame()));
        for t in &waiting {
            s.cancel(t); // their sessions are gone
        }
        assert_eq!(s.queued(), 0);
        assert!(waiting.iter().all(|t| !t.holds_frame()), "bytes freed at cancel, not when reached");
        s.cancel(&busy); // started: nothing to cancel
        drop(open);
        assert!(results.recv().is_ok(), "the running frame is answered");
        assert!(results.try_recv().is_err(), "the cancelled ones never run");
    }
}
