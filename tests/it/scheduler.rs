//! The scheduler's promises, proven over real sockets with a recording plumbing stand-in (no
//! model: what is under test is which thread runs which frame, and how wide): a frame never
//! starts inside another frame (no nesting, on any thread), a lone frame gets every core and its
//! pieces run side by side, frames that share the machine each get one core, and every session's
//! results come back in order. The real engines under the same scheduler are exercised by the
//! fidelity tests (`server.rs`, `ocr.rs`), which run many sessions at once.

use std::cell::Cell;
use std::sync::Arc;
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
    start: Instant,
    end: Instant,
}

/// Records every frame and holds each for `hold` (so frames overlap when sessions overlap).
struct RecordingPlumbingStandIn {
    hold: Duration,
    seen: Mutex<Vec<Seen>>,
}

impl Processor for RecordingPlumbingStandIn {
    fn process(&self, _: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, frame_width: &Width) -> Outcome {
        let nested = IN_FRAME.replace(true);
        let start = Instant::now();
        let width = frame_width.cores();
        let piece = |_: &Width| {
            std::thread::sleep(self.hold / 2);
            std::thread::current().id()
        };
        let pieces = frame_width.join(piece, piece);
        IN_FRAME.set(nested);
        let seen = Seen { thread: std::thread::current().id(), width, pieces, nested, start, end: Instant::now() };
        self.seen.lock().push(seen);
        Ok(empty_result(info))
    }
}

fn start(hold: Duration) -> (TestServer, Arc<RecordingPlumbingStandIn>) {
    let stand_in = Arc::new(RecordingPlumbingStandIn { hold, seen: Mutex::default() });
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
    let (server, rec) = start(Duration::from_millis(20));
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
    let (server, rec) = start(Duration::from_millis(30));
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
    // With six sessions and two workers, all but the first and last few frames start with
    // others running or waiting: those run narrow, their pieces one after the other on their
    // own worker (the few at the edges may find the machine to themselves).
    let narrow = seen.iter().filter(|s| s.width == 1).count();
    let split = seen.iter().filter(|s| s.pieces.0 != s.pieces.1).count();
    assert!(narrow >= 40, "only {narrow} of 48 frames ran narrow");
    assert!(split <= 8, "{split} of 48 frames split while sharing the machine");
}
