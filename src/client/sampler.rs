//! The server process as `framewire bench` watches it (`--pid`): its RSS and thread count from
//! `/proc/PID/status`, sampled every 100 ms on a thread of their own while a run goes on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::bench::ProcFigures;

/// RSS in KiB and thread count of `pid`, from `/proc`.
pub fn proc_stats(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

/// Samples a process's RSS and threads every 100 ms until stopped.
pub(super) struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<(AtomicU64, AtomicU64)>,
    thread: Option<std::thread::JoinHandle<()>>,
    pid: u32,
    start: (u64, u64),
}

impl Sampler {
    pub(super) fn start(pid: Option<u32>) -> Option<Sampler> {
        let pid = pid?;
        let start = proc_stats(pid)?;
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new((AtomicU64::new(start.0), AtomicU64::new(start.1)));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some((rss, th)) = proc_stats(pid) {
                    p.0.fetch_max(rss, Ordering::Relaxed);
                    p.1.fetch_max(th, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Some(Sampler { stop, peak, thread: Some(thread), pid, start })
    }

    pub(super) fn finish(mut self) -> ProcFigures {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let end = proc_stats(self.pid).unwrap_or_default();
        ProcFigures {
            rss_start_kib: self.start.0,
            rss_peak_kib: self.peak.0.load(Ordering::Relaxed).max(end.0),
            rss_end_kib: end.0,
            threads_start: self.start.1,
            threads_peak: self.peak.1.load(Ordering::Relaxed).max(end.1),
            threads_end: end.1,
        }
    }
}
