//! How wide a frame may run: the cores its independent pieces and its model runs may use.
//!
//! The scheduler grants each frame a [`Width`] when a worker takes it: all the cores while the
//! frame is alone, one core as soon as others run or wait. The frame's pipeline passes it
//! explicitly to each stage ([`Width::join`], [`Width::map`]) and model run, where the grant is
//! re-checked against the live load ([`Gauge`], [`Width::cores`]), so a frame that started alone
//! narrows down at its next split or model run after a second frame starts (a model run
//! already under way finishes as wide as it began). Nothing here is per-thread state.
//!
//! The pieces of a frame run on scoped threads of this frame only, never on a shared
//! work-stealing pool: a thread waiting for its frame's pieces never picks up another frame's
//! work, so frames never nest (that nesting, in rayon, ran frames newest-first and re-entered
//! tract's thread-local scratch). Helper threads get width 1: their frame already uses the
//! cores they stand for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The scheduler's live load, shared by its workers.
#[derive(Debug, Default)]
pub struct Gauge {
    /// Frames being processed now.
    pub running: AtomicUsize,
    /// Frames handed to the scheduler and not yet started.
    pub queued: AtomicUsize,
}

impl Gauge {
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
        if self.cores() < 2 {
            return (a(self), b(self));
        }
        let narrow = Width::narrow();
        // `b` goes to the helper through a cell, so it can still run here if no thread is had.
        let b = std::sync::Mutex::new(Some(b));
        let take_b = || b.lock().ok().and_then(|mut b| b.take());
        std::thread::scope(|s| {
            let helper = std::thread::Builder::new()
                .name("fw-frame-helper".into())
                .spawn_scoped(s, || take_b().map(|b| b(&Width::narrow())));
            let ra = a(&narrow);
            let rb = match helper {
                Ok(h) => match h.join() {
                    Ok(rb) => rb,
                    // A panic in `b` is the frame's panic: the scheduler's guard catches it.
                    Err(p) => std::panic::resume_unwind(p),
                },
                Err(_) => None,
            };
            match rb.or_else(|| take_b().map(|b| b(&narrow))) {
                Some(rb) => (ra, rb),
                None => unreachable!("`b` runs exactly once, on the helper or here"),
            }
        })
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
        if n < 2 {
            return items.iter().map(|x| f(x, self)).collect();
        }
        let chunk = items.len().div_ceil(n);
        let f = &f;
        let narrow = Width::narrow();
        std::thread::scope(|s| {
            let mut parts = items.chunks(chunk);
            let first = parts.next().unwrap_or(&[]);
            let helpers: Vec<_> = parts
                .map(|part| {
                    let run = move || {
                        let narrow = Width::narrow();
                        part.iter().map(|x| f(x, &narrow)).collect::<Vec<R>>()
                    };
                    (part, std::thread::Builder::new().name("fw-frame-helper".into()).spawn_scoped(s, run))
                })
                .collect();
            let mut out: Vec<R> = first.iter().map(|x| f(x, &narrow)).collect();
            for (part, h) in helpers {
                match h {
                    Ok(h) => match h.join() {
                        Ok(v) => out.extend(v),
                        Err(p) => std::panic::resume_unwind(p),
                    },
                    Err(_) => out.extend(part.iter().map(|x| f(x, &narrow))),
                }
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let gauge = Arc::new(Gauge::default());
        gauge.running.store(1, Ordering::Relaxed);
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
        let gauge = Arc::new(Gauge::default());
        gauge.running.store(1, Ordering::Relaxed);
        let w = Width::granted(2, gauge);
        let r = std::panic::catch_unwind(|| w.join(|_| 1, |_| -> i32 { panic!("piece") }));
        assert!(r.is_err());
    }
}
