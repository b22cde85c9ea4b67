//! The scheduler's promises, proven over real sockets with a recording plumbing stand-in (no
//! model: what is under test is which thread runs which frame, and how wide): a frame never
//! starts inside another frame (no nesting, on any thread), a lone frame gets every core and its
//! pieces run side by side, frames that share the machine each get one core, and every session's
//! results come back in order. The real engines under the same scheduler are exercised by the
//! fidelity tests (`server.rs`, `ocr.rs`), which run many sessions at once.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use framewire::protocol::PipelineKind;
use framewire::scheduler::Scheduler;
use framewire::vision::jpeg::JpegInfo;
use framewire::vision::parallel::Width;
use framewire::vision::{FrameOptions, Outcome, Processor};
use parking_lot::Mutex;

use crate::protocol::Msg;
use crate::support::{config, empty_result, fixture, TestServer};

thread_local! {
    /// Set while this thread is inside a frame.
    static IN_FRAME: Cell<bool> = const { Cell::new(false) };
}

/// What one frame saw.
#[derive(Debug, Clone)]
struct Seen {
    thread: ThreadId,
    /// `width.cores()` when it started.
    width: usize,
    /// Threads its two pieces ran on.
    pieces: (ThreadId, ThreadId),
    /// Whether it started on a thread that was already inside a frame.
    nested: bool,
    /// Its span, recorded while the worker counts it as running: `start` just before `width`
    /// was read, `read` just after, `end` before it returned.
    start: Instant,
    read: Instant,
    end: Instant,
}

/// Records every frame and holds each for `hold` (so frames overlap when sessions overlap).
/// With `meet`, the first two frames wait for each other after reading their width, so the
/// second surely starts while the first runs.
struct RecordingPlumbingStandIn {
    hold: Duration,
    seen: Mutex<Vec<Seen>>,
    meet: Option<(AtomicUsize, Barrier)>,
}

impl Processor for RecordingPlumbingStandIn {
    fn process(&self, _: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, frame_width: &Width) -> Outcome {
        let nested = IN_FRAME.replace(true);
        let start = Instant::now();
        let width = frame_width.cores();
        let read = Instant::now();
        if let Some((entered, barrier)) = &self.meet {
            if entered.fetch_add(1, Ordering::SeqCst) < 2 {
                barrier.wait();
            }
        }
        let piece = |_: &Width| {
            std::thread::sleep(self.hold / 2);
            std::thread::current().id()
        };
        let pieces = frame_width.join(piece, piece);
        IN_FRAME.set(nested);
        let seen =
            Seen { thread: std::thread::current().id(), width, pieces, nested, start, read, end: Instant::now() };
        self.seen.lock().push(seen);
        Ok(empty_result(info))
    }
}

fn start(hold: Duration, meet: bool) -> (TestServer, Arc<RecordingPlumbingStandIn>) {
    let meet = meet.then(|| (AtomicUsize::new(0), Barrier::new(2)));
    let stand_in = Arc::new(RecordingPlumbingStandIn { hold, seen: Mutex::default(), meet });
    let processor: Arc<dyn Processor> = stand_in.clone();
    let scheduler = Arc::new(Scheduler::new(2, processor).expect("workers"));
    (TestServer::start_with(config(), scheduler), stand_in)
}

fn result_index(m: Msg) -> Option<u64> {
    match m {
        Msg::Result { frame_index, .. } => Some(frame_index),
        _ => None,
    }
}

#[test]
fn a_lone_frame_gets_every_core_and_its_pieces_run_side_by_side_with_recording_plumbing_stand_in() {
    let (server, rec) = start(Duration::from_millis(20), false);
    let mut c = server.client();
    let frame = fixture("photo_cat_640x480.jpg");
    for i in 0..5 {
        assert_eq!(result_index(c.round_trip(&frame)), Some(i));
    }
    let seen = rec.seen.lock().clone();
    assert_eq!(seen.len(), 5);
    for s in &seen {
        assert_eq!(s.width, 2, "a frame alone on a 2-worker scheduler may use both cores: {s:?}");
        assert_ne!(s.pieces.0, s.pieces.1, "its two pieces ran on two threads: {s:?}");
        assert_eq!(s.pieces.0, s.thread, "the first piece runs on the frame's own worker");
        assert!(!s.nested);
    }
}

#[test]
fn frames_never_nest_and_share_the_cores_one_each_under_load_with_recording_plumbing_stand_in() {
    let (server, rec) = start(Duration::from_millis(30), true);
    let frame = fixture("photo_cat_640x480.jpg");
    // Six sessions, each sending as fast as its results come (closed loop): the queue is never
    // empty, so every frame shares the machine.
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let mut c = server.client();
            let frame = frame.clone();
            std::thread::spawn(move || (0..8).map(|i| (i, result_index(c.round_trip(&frame)))).collect::<Vec<_>>())
        })
        .collect();
    for h in clients {
        for (i, got) in h.join().expect("client thread") {
            assert_eq!(got, Some(i), "each session's results come back in order");
        }
    }
    let seen = rec.seen.lock().clone();
    assert_eq!(seen.len(), 48);
    assert!(seen.iter().all(|s| !s.nested), "a frame started inside another frame");
    // No thread ever ran two frames at once: per worker, the frames' spans do not overlap.
    let mut by_thread: std::collections::HashMap<ThreadId, Vec<&Seen>> = Default::default();
    for s in &seen {
        by_thread.entry(s.thread).or_default().push(s);
    }
    assert_eq!(by_thread.len(), 2, "two workers ran the frames");
    for spans in by_thread.values_mut() {
        spans.sort_by_key(|s| s.start);
        for w in spans.windows(2) {
            assert!(w[0].end <= w[1].start, "frames overlapped on one worker: {:?} {:?}", w[0], w[1]);
        }
    }
    // Whatever the load did: a frame that read its width while another frame was surely
    // running (that frame's span covers the read) ran narrow, its pieces one after the other
    // on its own worker. The first two frames meet, so at least one frame is such a frame.
    let shared: Vec<&Seen> = seen
        .iter()
        .filter(|f| seen.iter().any(|g| g.thread != f.thread && g.start < f.start && f.read < g.end))
        .collect();
    assert!(!shared.is_empty(), "the two frames that met overlapped");
    for f in shared {
        assert_eq!(f.width, 1, "a frame that started beside another got more than one core: {f:?}");
    }
    // And one whose whole span another frame covers never split (its join re-checks the load).
    let covered =
        seen.iter().filter(|f| seen.iter().any(|g| g.thread != f.thread && g.start < f.start && f.end < g.end));
    for f in covered {
        assert_eq!(f.pieces, (f.thread, f.thread), "a frame sharing the machine split: {f:?}");
    }
}
