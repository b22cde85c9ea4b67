//! How wide a frame may run: the cores its independent pieces and its model runs may use.
//!
//! The scheduler grants each frame a [`Width`] when a worker takes it: all the cores while the
//! frame is alone, one core as soon as others run or wait. The frame's pipeline passes it
//! explicitly to each stage ([`Width::join`], [`Width::map`]) and model run, where the grant is
//! re-checked against the live load ([`Gauge`], [`Width::cores`]), so a frame that started alone
//! narrows down at its next split or model run after a second frame starts (a model run
//! already under way finishes as wide as it began). Nothing here is per-thread state.
//!
//! The pieces a frame splits off run on a fixed set of helper threads ([`Helpers`], cores − 1 of
//! them, started with the scheduler): no thread is spawned per frame. The frame's own thread
//! (a frame worker, never a helper) runs its first piece and then blocks until the others are
//! done; it never picks up queued work, and a helper only ever runs pieces, each with a narrow
//! context, so a piece never splits again and never waits for another: frames never nest (that
//! nesting, in a shared rayon pool whose waiting workers steal, ran frames newest-first and
//! re-entered tract's thread-local scratch).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The fixed helper threads a scheduler's lone frames split their pieces over: a private rayon
/// pool entered only through [`rayon::ThreadPool::in_place_scope`] from threads that are not
/// its workers, so the caller blocks instead of stealing (see the module docs).
#[derive(Debug)]
pub struct Helpers {
    pool: rayon::ThreadPool,
}

impl Helpers {
    /// `cores - 1` helper threads (at least one), named `fw-frame-helper-N`.
    pub fn new(cores: usize) -> io::Result<Arc<Helpers>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores.saturating_sub(1).max(1))
            .thread_name(|i| format!("fw-frame-helper-{i}"))
            .build()
            .map_err(io::Error::other)?;
        Ok(Arc::new(Helpers { pool }))
    }
}

/// The scheduler's live load, shared by its workers, and the helpers its frames split over.
#[derive(Debug, Default)]
pub struct Gauge {
    /// Frames being processed now.
    pub running: AtomicUsize,
    /// Frames handed to the scheduler and not yet started.
    pub queued: AtomicUsize,
    /// Where split pieces run; without helpers a frame's pieces run one after the other on its
    /// own thread (its model runs may still go wide).
    helpers: Option<Arc<Helpers>>,
}

impl Gauge {
    /// An idle gauge whose frames split their pieces over `helpers`, if given.
    pub fn new(helpers: Option<Arc<Helpers>>) -> Gauge {
        Gauge { helpers, ..Gauge::default() }
    }

    /// One frame running and none waiting (a lone frame outside a scheduler's queue: start-up
    /// measurements, benches, tools), splitting over `helpers` if given.
    pub fn lone(helpers: Option<Arc<Helpers>>) -> Gauge {
        Gauge { running: AtomicUsize::new(1), queued: AtomicUsize::new(0), helpers }
    }

    /// Whether a frame that is running sees no other frame running or waiting.
    fn alone(&self) -> bool {
        self.running.load(Ordering::Relaxed) <= 1 && self.queued.load(Ordering::Relaxed) == 0
    }
}

/// How wide one frame may run: the frame's execution context, handed to it by the scheduler
/// and passed explicitly down the pipeline to every stage, split and model run.
///
/// A grant of `cores` holds while the [`Gauge`] says the frame is alone; otherwise (and for a
/// [`Width::narrow`] context) the frame runs on one core. Pieces a frame splits off get a narrow
/// context: their frame already uses the cores they stand for.
#[derive(Debug, Clone, Default)]
pub struct Width {
    cores: usize,
    gauge: Option<Arc<Gauge>>,
}

impl Width {
    /// One core, whatever the load (a helper thread, a tool or a bench outside the scheduler).
    pub fn narrow() -> Width {
        Width::default()
    }

    /// Up to `cores` cores while `gauge` says the frame is alone.
    pub fn granted(cores: usize, gauge: Arc<Gauge>) -> Width {
        Width { cores, gauge: Some(gauge) }
    }

    /// Cores the frame may use now: its grant while it is alone, else 1.
    pub fn cores(&self) -> usize {
        match &self.gauge {
            Some(gauge) if self.cores > 1 && gauge.alone() => self.cores,
            _ => 1,
        }
    }

    /// Run `a` and `b`, side by side on a helper thread when the frame may use two cores now
    /// (each piece then gets a narrow context), else one after the other on this thread (each
    /// with this context).
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&Width) -> RA + Send,
        B: FnOnce(&Width) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        let Some(helpers) = self.helpers().filter(|_| self.cores() >= 2) else {
            return (a(self), b(self));
        };
        let mut rb = None;
        let slot = &mut rb;
        // A panic in either piece reaches this thread once both are done (the scheduler's
        // guard catches it as the frame's panic).
        let ra = helpers.pool.in_place_scope(|s| {
            s.spawn(move |_| *slot = Some(b(&Width::narrow())));
            a(&Width::narrow())
        });
        match rb {
            Some(rb) => (ra, rb),
            None => unreachable!("the scope returns only once `b` has run"),
        }
    }

    /// `items.iter().map(f)`, in order, spread over up to [`Width::cores`] threads (each chunk
    /// then runs with a narrow context; unsplit, `f` gets this one).
    pub fn map<T, R, F>(&self, items: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T, &Width) -> R + Sync,
    {
        let n = self.cores().min(items.len());
        let Some(helpers) = self.helpers().filter(|_| n >= 2) else {
            return items.iter().map(|x| f(x, self)).collect();
        };
        let chunk = items.len().div_ceil(n);
        let f = &f;
        let run = move |part: &[T]| part.iter().map(|x| f(x, &Width::narrow())).collect::<Vec<R>>();
        let mut parts = items.chunks(chunk);
        let first = parts.next().unwrap_or(&[]);
        let mut rest: Vec<Option<Vec<R>>> = parts.clone().map(|_| None).collect();
        let mine = helpers.pool.in_place_scope(|s| {
            for (part, slot) in parts.zip(rest.iter_mut()) {
                s.spawn(move |_| *slot = Some(run(part)));
            }
            run(first)
        });
        let mut out = mine;
        for part in rest {
            match part {
                Some(v) => out.extend(v),
                None => unreachable!("the scope returns only once every chunk has run"),
            }
        }
        out
    }

    /// The helpers this frame's pieces may split over.
    fn helpers(&self) -> Option<&Helpers> {
        self.gauge.as_ref().and_then(|g| g.helpers.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::thread::ThreadId;

    fn me() -> ThreadId {
        std::thread::current().id()
    }

    #[test]
    fn a_narrow_context_runs_everything_on_this_thread() {
        let w = Width::narrow();
        assert_eq!(w.cores(), 1);
        let (a, b) = w.join(|_| me(), |_| me());
        assert_eq!((a, b), (me(), me()));
        assert!(w.map(&[1, 2, 3], |_, _| me()).iter().all(|&t| t == me()));
    }

    #[test]
    fn a_lone_frame_spreads_and_narrows_when_others_come() {
        let gauge = Arc::new(Gauge::lone(Some(Helpers::new(2).expect("helpers"))));
        let w = Width::granted(2, Arc::clone(&gauge));
        assert_eq!(w.cores(), 2);
        let (a, b) = w.join(|w| (me(), w.cores()), |w| (me(), w.cores()));
        assert_ne!(a.0, b.0, "b ran on a helper");
        assert_eq!((a.1, b.1), (1, 1), "the pieces of a split frame run narrow");
        let ids = w.map(&[0, 1, 2, 3, 4], |&i, w| (i, me(), w.cores()));
        assert_eq!(ids.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4], "order kept");
        assert_ne!(ids[0].1, ids[4].1, "spread over two threads");
        assert!(ids.iter().all(|x| x.2 == 1), "the chunks of a split map run narrow");
        gauge.queued.store(1, Ordering::Relaxed);
        assert_eq!(w.cores(), 1, "another frame waits: narrow");
        let (a, b) = w.join(|_| me(), |_| me());
        assert_eq!((a, b), (me(), me()));
    }

    #[test]
    fn a_panic_in_a_piece_reaches_the_caller() {
        let gauge = Arc::new(Gauge::lone(Some(Helpers::new(2).expect("helpers"))));
        let w = Width::granted(2, gauge);
        let r = catch_unwind(AssertUnwindSafe(|| w.join(|_| 1, |_| -> i32 { panic!("piece") })));
        assert!(r.is_err());
        let r =
            catch_unwind(AssertUnwindSafe(|| w.map(&[1, 2, 3, 4], |&x, _| if x == 4 { panic!("chunk") } else { x })));
        assert!(r.is_err());
        assert_eq!(w.join(|_| 1, |_| 2), (1, 2), "the helpers survive a piece's panic");
    }

    #[test]
    fn pieces_run_on_a_fixed_set_of_helper_threads_not_one_spawned_per_split() {
        let gauge = Arc::new(Gauge::lone(Some(Helpers::new(2).expect("helpers"))));
        let w = Width::granted(2, gauge);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let (a, b) = w.join(|_| me(), |_| me());
            assert_eq!(a, me(), "the frame's own thread runs its first piece");
            seen.insert(b);
            for t in w.map(&[0, 1, 2, 3], |_, _| me()) {
                if t != me() {
                    seen.insert(t);
                }
            }
        }
        // Thread ids are never reused: a thread spawned per split would give ~100 ids here.
        assert_eq!(seen.len(), 1, "one helper for two cores, used by every split: {seen:?}");
    }

    #[test]
    fn without_helpers_a_wide_frame_runs_its_pieces_in_turn() {
        let w = Width::granted(2, Arc::new(Gauge::lone(None)));
        assert_eq!(w.cores(), 2, "its model runs may still go wide");
        assert_eq!(w.join(|_| me(), |_| me()), (me(), me()));
    }
}
