//! How wide a frame may run: the cores its independent pieces and its model runs may use.
//!
//! The scheduler grants each frame a width when a worker takes it ([`with_width`]): all the
//! cores while the frame is alone, one core as soon as others run or wait. The grant is
//! re-checked against the live load ([`Gauge`]) at every [`join`], [`map`] and model run
//! ([`width`]), so a frame that started alone narrows down the moment a second one starts.
//!
//! The pieces of a frame run on scoped threads of this frame only, never on a shared
//! work-stealing pool: a thread waiting for its frame's pieces never picks up another frame's
//! work, so frames never nest (that nesting, in rayon, ran frames newest-first and re-entered
//! tract's thread-local scratch). Helper threads get width 1: their frame already uses the
//! cores they stand for.

use std::cell::RefCell;
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

#[derive(Debug, Clone, Default)]
struct Grant {
    cores: usize,
    gauge: Option<Arc<Gauge>>,
}

thread_local! {
    static GRANT: RefCell<Grant> = RefCell::default();
}

/// Puts the previous grant back when dropped, also when the frame panics.
struct Restore(Option<Grant>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            GRANT.set(g);
        }
    }
}

fn granted<R>(grant: Grant, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(Some(GRANT.replace(grant)));
    f()
}

/// Run `f` (one frame) with up to `cores` cores while `gauge` says the frame is alone.
pub fn with_width<R>(cores: usize, gauge: Arc<Gauge>, f: impl FnOnce() -> R) -> R {
    granted(Grant { cores, gauge: Some(gauge) }, f)
}

/// Run `f` with width 1 (a helper thread, or any thread the scheduler did not grant cores).
fn narrow<R>(f: impl FnOnce() -> R) -> R {
    granted(Grant::default(), f)
}

/// Cores the current thread may use now: its grant while its frame is alone, else 1.
pub fn width() -> usize {
    GRANT.with_borrow(|g| match &g.gauge {
        Some(gauge) if g.cores > 1 && gauge.alone() => g.cores,
        _ => 1,
    })
}

/// Run `a` and `b`, side by side on a helper thread when this frame may use two cores, else
/// one after the other on this thread.
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if width() < 2 {
        return (a(), b());
    }
    // `b` goes to the helper through a slot, so it can still run here if no thread is had.
    let b = std::sync::Mutex::new(Some(b));
    let take_b = || b.lock().ok().and_then(|mut b| b.take());
    std::thread::scope(|s| {
        let helper =
            std::thread::Builder::new().name("fw-frame-helper".into()).spawn_scoped(s, || take_b().map(|b| narrow(b)));
        let ra = narrow(a);
        let rb = match helper {
            Ok(h) => match h.join() {
                Ok(rb) => rb,
                // A panic in `b` is the frame's panic: the scheduler's guard catches it.
                Err(p) => std::panic::resume_unwind(p),
            },
            Err(_) => None,
        };
        match rb.or_else(|| take_b().map(|b| b())) {
            Some(rb) => (ra, rb),
            None => unreachable!("`b` runs exactly once, on the helper or here"),
        }
    })
}

/// `items.iter().map(f)`, in order, spread over up to [`width`] threads.
pub fn map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let n = width().min(items.len());
    if n < 2 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(n);
    let f = &f;
    std::thread::scope(|s| {
        let mut parts = items.chunks(chunk);
        let first = parts.next().unwrap_or(&[]);
        let helpers: Vec<_> = parts
            .map(|part| {
                let run = move || narrow(|| part.iter().map(f).collect::<Vec<R>>());
                (part, std::thread::Builder::new().name("fw-frame-helper".into()).spawn_scoped(s, run))
            })
            .collect();
        let mut out: Vec<R> = narrow(|| first.iter().map(f).collect());
        for (part, h) in helpers {
            match h {
                Ok(h) => match h.join() {
                    Ok(v) => out.extend(v),
                    Err(p) => std::panic::resume_unwind(p),
                },
                Err(_) => out.extend(part.iter().map(f)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::ThreadId;

    fn me() -> ThreadId {
        std::thread::current().id()
    }

    #[test]
    fn without_a_grant_everything_runs_on_this_thread() {
        assert_eq!(width(), 1);
        let (a, b) = join(me, me);
        assert_eq!((a, b), (me(), me()));
        assert!(map(&[1, 2, 3], |_| me()).iter().all(|&t| t == me()));
    }

    #[test]
    fn a_lone_frame_spreads_and_narrows_when_others_come() {
        let gauge = Arc::new(Gauge::default());
        gauge.running.store(1, Ordering::Relaxed);
        with_width(2, Arc::clone(&gauge), || {
            assert_eq!(width(), 2);
            let (a, b) = join(|| (me(), width()), || (me(), width()));
            assert_ne!(a.0, b.0, "b ran on a helper");
            assert_eq!((a.1, b.1), (1, 1), "the pieces of a split frame run narrow");
            let ids = map(&[0, 1, 2, 3, 4], |&i| (i, me()));
            assert_eq!(ids.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4], "order kept");
            assert_ne!(ids[0].1, ids[4].1, "spread over two threads");
            gauge.queued.store(1, Ordering::Relaxed);
            assert_eq!(width(), 1, "another frame waits: narrow");
            let (a, b) = join(me, me);
            assert_eq!((a, b), (me(), me()));
        });
        assert_eq!(width(), 1, "the grant ends with the frame");
    }

    #[test]
    fn a_panic_in_a_piece_reaches_the_caller() {
        let gauge = Arc::new(Gauge::default());
        gauge.running.store(1, Ordering::Relaxed);
        let r = std::panic::catch_unwind(|| with_width(2, gauge, || join(|| 1, || panic!("piece"))));
        assert!(r.is_err());
        assert_eq!(width(), 1, "the grant was put back");
    }
}
