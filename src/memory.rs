//! How the server's memory comes back to the system (glibc's allocator), so a server left alone
//! for weeks does not keep what a burst of large frames once needed (#29.7).
//!
//! Two causes, two answers:
//!
//! - **glibc's moving threshold.** Blocks from `M_MMAP_THRESHOLD` up are memory of their own,
//!   returned when freed. glibc starts it at 128 KiB and raises it to the largest such block
//!   freed (up to 32 MiB), its trim threshold to twice that: after one large frame, the next
//!   ones' buffers (a message being read, a decoded picture) come from heaps, which fragment
//!   and keep them. A flood of 6.4 MiB frames whose connections were reset before the frames
//!   reached the models left RSS 120–330 MiB up for good. [`tune`] fixes both thresholds:
//!   frame-sized blocks then always come and go as memory of their own, while the engine's
//!   per-frame tensors below the threshold stay on the heaps, where they are reused (see
//!   `config::MMAP_THRESHOLD_TRACT` for why the line is where it is).
//! - **The heaps' high water.** A frame that does reach the models leaves free pages inside the
//!   heaps once it is done: the working set of its largest stages (a text detector at its
//!   largest input, ~100 MiB with tract), kept for the next such frame. That is right while
//!   sessions stream, and useless once none is left. So when the last session ends and a frame
//!   was processed since the last time, [`Release::last_session_ended`] hands the free pages
//!   back (`malloc_trim`, a few milliseconds on the thread of the session that ended; nothing
//!   waits for it). A server that streams never pays it; a server whose clients all left goes
//!   back to its idle size.
//!
//! A leaf: it uses nothing of the crate.

use std::sync::atomic::{AtomicU64, Ordering};

/// Fix glibc's mmap threshold at `mmap_threshold` bytes and its trim threshold at
/// `trim_threshold` (`None`: leave glibc's own, moving thresholds). Call once, before the
/// models load.
pub fn tune(mmap_threshold: Option<usize>, trim_threshold: usize) {
    #[cfg(target_env = "gnu")]
    if let Some(bytes) = mmap_threshold {
        let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        // SAFETY: `mallopt` only sets an allocator parameter; a rejected value is ignored.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, clamp(bytes));
            libc::mallopt(libc::M_TRIM_THRESHOLD, clamp(trim_threshold));
        }
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = (mmap_threshold, trim_threshold);
}

/// Hand every free page of glibc's heaps back to the system.
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `malloc_trim` only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When the heaps' free pages go back (see the module docs).
#[derive(Debug, Default)]
pub struct Release {
    /// Frames processed when memory was last handed back.
    at: AtomicU64,
}

impl Release {
    /// The last live session ended with `frames_done` frames processed since start-up: hand
    /// the free pages back if a frame was processed since the last time. Returns whether it did.
    pub fn last_session_ended(&self, frames_done: u64) -> bool {
        self.last_session_ended_with(frames_done, trim)
    }

    fn last_session_ended_with(&self, frames_done: u64, trim: impl FnOnce()) -> bool {
        let before = self.at.load(Ordering::Acquire);
        if frames_done <= before {
            return false;
        }
        // Two sessions ending at once: one trims.
        if self.at.compare_exchange(before, frames_done, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        trim();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_goes_back_once_after_frames_were_processed() {
        let r = Release::default();
        let count = std::cell::Cell::new(0);
        let trim = || count.set(count.get() + 1);
        assert!(!r.last_session_ended_with(0, trim), "nothing processed: nothing to hand back");
        assert!(r.last_session_ended_with(3, trim));
        // Sessions that come and go without a frame processed (a flood whose frames never
        // reached the models) cost nothing.
        for _ in 0..100 {
            assert!(!r.last_session_ended_with(3, trim));
        }
        assert!(r.last_session_ended_with(4, trim));
        assert_eq!(count.get(), 2);
        assert!(!r.last_session_ended(4), "the real trim, not due");
    }
}
