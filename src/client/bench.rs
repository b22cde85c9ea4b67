//! `framewire bench`: the project's own load client, run against a live server.
//!
//! - `closed`: one session, send a frame, wait for its result, repeat (latency per frame, and
//!   the server's overhead: round trip minus the frame's own decode and model time);
//! - `open`: S sessions each offered F fps for T seconds, frames sent on schedule whatever the
//!   replies (overload behaviour: drops, latency trend, fairness across sessions);
//! - `idle`: S sessions opened and held (memory per idle session, given the server's pid);
//! - `flood`: `--count` cycles of connect → one frame (`--frame`, say a 6.4 MiB JPEG) → reset,
//!   after 20 warm-up cycles of the same: with `--pid`, the server's RSS before and after
//!   (memory a flood of large frames leaves behind).
//!
//! Frames come from a directory of JPEGs, cycled. Latency = send of frame N → its result.
//! Every sent frame is accounted for: answered, reported dropped, reported invalid/failed, or
//! unaccounted (a bug). With `--pid`, the server's RSS and threads are sampled every 100 ms.
//! Every wait on the server has a deadline ([`Timeouts`]: connect, upgrade, answers, writes);
//! one passing fails the run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tungstenite::Message;

use super::common::{self, jpeg_files, session_url, timed_out, ConnectError, Percentiles, Timeouts, Ws};
pub use super::sampler::proc_stats;
use super::sampler::Sampler;
use crate::protocol::PipelineKind;

/// What went wrong while benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The frame directory could not be read or holds no `.jpg`.
    #[error("no frames in {0}")]
    NoFrames(PathBuf),
    /// Connecting or talking to the server failed.
    #[error("websocket: {0}")]
    Ws(Box<tungstenite::Error>),
    /// No session could be opened (refused, a timeout, an HTTP error).
    #[error("connect: {0}")]
    Connect(#[from] ConnectError),
    /// A frame in flight got no answer within `--answer-timeout`.
    #[error("no answer within {} s", .0.as_secs_f64())]
    AnswerTimeout(Duration),
    /// `flood` needs `--frame`.
    #[error("{0}")]
    Usage(String),
    /// The server sent something the protocol does not allow here.
    #[error("unexpected message: {0}")]
    Protocol(String),
}

impl From<tungstenite::Error> for BenchError {
    fn from(e: tungstenite::Error) -> Self {
        BenchError::Ws(Box::new(e))
    }
}

/// `framewire bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// `closed`, `open` or `idle`.
    #[arg(value_enum)]
    pub mode: Mode,
    /// Server URL (the endpoint, without query).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws/video/stream")]
    pub url: String,
    /// Pipeline to ask for; default: the server's default.
    #[arg(long, value_enum)]
    pub pipeline: Option<PipelineKind>,
    /// More session options, as a query string (e.g. `track=true&detect_every=3`).
    #[arg(long)]
    pub query: Option<String>,
    /// Directory of JPEG frames, sent in name order, cycled.
    #[arg(long, default_value = "tests/fixtures/seq")]
    pub frames: PathBuf,
    /// `closed`: frames to send (after 3 warm-up frames).
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// `open`/`idle`: sessions.
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
    /// `open`: frames per second offered by each session.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// `open`: seconds to send; `idle`: seconds to hold the sessions.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// The server's pid, to report its RSS and thread count (start, peak, end).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// `flood`: the frame each cycle sends (e.g. a large JPEG).
    #[arg(long)]
    pub frame: Option<PathBuf>,
    /// Deadlines of every wait on the server.
    #[command(flatten)]
    pub timeouts: Timeouts,
}

/// Load shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One session, send-wait-send.
    Closed,
    /// S sessions × F fps, on schedule.
    Open,
    /// S sessions held open, nothing sent.
    Idle,
    /// S sessions at F fps for T s, each reconnecting after a random 1–5 s lifetime (memory
    /// and thread leaks over long runs with sessions coming and going).
    Soak,
    /// `--count` cycles of connect → one `--frame` → reset, after 20 warm-up cycles (memory
    /// that does not come back after a flood of large frames).
    Flood,
}

/// Server process figures, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcFigures {
    /// RSS at start, KiB.
    pub rss_start_kib: u64,
    /// Highest RSS seen, KiB.
    pub rss_peak_kib: u64,
    /// RSS at the end (sessions still open for `idle`), KiB.
    pub rss_end_kib: u64,
    /// Threads at start.
    pub threads_start: u64,
    /// Most threads seen.
    pub threads_peak: u64,
    /// Threads at the end.
    pub threads_end: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The load shape.
    pub mode: Option<Mode>,
    /// Sessions used.
    pub sessions: usize,
    /// Frames sent.
    pub sent: u64,
    /// Results received.
    pub results: u64,
    /// `frame_dropped` messages received.
    pub dropped_reported: u64,
    /// Error messages received (invalid or internal).
    pub errors: u64,
    /// Sent frames neither answered, reported dropped nor failed (must be 0).
    pub unaccounted: i64,
    /// `slow_down` messages received.
    pub slow_downs: u64,
    /// Results of frames the detector ran on (`timings_ms.detect` present).
    pub detector_runs: u64,
    /// Results of frames answered from the tracker's prediction (`timings_ms.predict`).
    pub predicted: u64,
    /// Text detection and recognition per result, mean ms (0 where OCR did not run).
    pub ocr_ms_per_result: f64,
    /// Results per second over the run.
    pub results_per_s: f64,
    /// Send → result latency.
    pub latency_ms: Percentiles,
    /// Latency of the first third of each session's results.
    pub first_third_ms: Percentiles,
    /// Latency of the last third.
    pub last_third_ms: Percentiles,
    /// `closed`: round trip minus the frame's decode and model times (server + loopback).
    pub overhead_ms: Option<Percentiles>,
    /// `open`: results per session, and min/max of that.
    pub per_session_results: Vec<u64>,
    /// `open`: fewest / most results of a session (1.0 = perfectly fair).
    pub fairness: Option<f64>,
    /// With `--pid`.
    pub server: Option<ProcFigures>,
    /// `idle`: (peak RSS while held − RSS start) / sessions, KiB.
    pub kib_per_idle_session: Option<f64>,
    /// `soak`: server RSS after the first tenth of the run (post warm-up), KiB.
    pub rss_after_warm_up_kib: Option<u64>,
    /// `soak`: sessions opened in all.
    pub sessions_opened: u64,
    /// `flood` with `--pid`: the server's RSS after the warm-up cycles, settled, KiB.
    pub rss_before_flood_kib: Option<u64>,
    /// `flood` with `--pid`: its RSS after the flood, settled (2 s), KiB.
    pub rss_after_flood_kib: Option<u64>,
    /// Sessions the server closed before the run ended, as `"code reason"` (e.g. `"1001
    /// going_away"` when the server shuts down): the run stopped early for those sessions.
    pub closed_by_server: Vec<String>,
}

/// `closed`: frames sent first and left out of the figures (plan caches, page faults).
const WARM_UP: usize = 3;

fn load_frames(dir: &Path) -> Result<Vec<Vec<u8>>, BenchError> {
    let names = jpeg_files(dir).map_err(|_| BenchError::NoFrames(dir.into()))?;
    let frames: Vec<Vec<u8>> = names.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if frames.is_empty() {
        return Err(BenchError::NoFrames(dir.into()));
    }
    Ok(frames)
}

fn url(args: &BenchArgs) -> String {
    let url = session_url(&args.url, args.pipeline);
    match args.query.as_deref().filter(|q| !q.is_empty()) {
        Some(q) => format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' }),
        None => url,
    }
}

fn connect(url: &str, t: &Timeouts) -> Result<Ws, BenchError> {
    Ok(common::connect(url, t)?.0)
}

/// One result, as a tally keeps it.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// Send → result, ms.
    latency: f64,
    /// Its decode and model time, ms (the two detectors' overlap counted once).
    work: f64,
    /// Its OCR time (text detection and recognition), ms.
    ocr: f64,
    /// The detector ran on it.
    detected: bool,
    /// It was answered from the tracker's prediction.
    predicted: bool,
}

/// One session's tally.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    dropped: u64,
    errors: u64,
    slow_downs: u64,
    /// Every result, in arrival order.
    results: Vec<Answer>,
    /// The server closed the session early: `"code reason"`.
    closed_by_server: Option<String>,
}

/// `"code reason"` of a close frame the server sent.
fn close_text(f: Option<tungstenite::protocol::CloseFrame>) -> String {
    f.map_or_else(|| "1005 (no code)".to_string(), |f| format!("{} {}", u16::from(f.code), f.reason))
}

impl Tally {
    /// Handle one server message; `sent_at[i]` is when frame i was sent.
    fn on_text(&mut self, text: &str, sent_at: &[Instant]) -> Result<(), BenchError> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|_| BenchError::Protocol(text.into()))?;
        let idx = v["frame_index"].as_u64();
        match v["type"].as_str() {
            Some("result") => {
                let i = idx.ok_or_else(|| BenchError::Protocol(text.into()))?;
                let lat = sent_at.get(i as usize).map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1000.0);
                let tm = &v["timings_ms"];
                let work: f64 = ["decode", "detect", "ocr_detect", "ocr_recognize"]
                    .iter()
                    .filter_map(|k| tm[*k].as_f64())
                    .sum::<f64>();
                // In detect_ocr the two detectors overlap: count the longer one only.
                let overlap = match (tm["detect"].as_f64(), tm["ocr_detect"].as_f64()) {
                    (Some(a), Some(b)) => a.min(b),
                    _ => 0.0,
                };
                self.results.push(Answer {
                    latency: lat,
                    work: work - overlap,
                    ocr: ["ocr_detect", "ocr_recognize"].iter().filter_map(|k| tm[*k].as_f64()).sum(),
                    detected: tm["detect"].is_number(),
                    predicted: tm["predict"].is_number(),
                });
            }
            Some("frame_dropped") => self.dropped += 1,
            Some("slow_down") => self.slow_downs += 1,
            Some("error") if idx.is_some() => self.errors += 1,
            _ => return Err(BenchError::Protocol(text.into())),
        }
        Ok(())
    }

    fn settled(&self) -> bool {
        self.results.len() as u64 + self.dropped + self.errors >= self.sent
    }
}

fn progress(quiet: bool, line: &str) {
    if !quiet {
        eprint!("\r{line}\x1b[K");
        let _ = std::io::stderr().flush();
    }
}

/// Run the benchmark described by `args` and return its report.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let sampler = Sampler::start(args.pid);
    let started = Instant::now();
    let (mut warm_rss, mut opened) = (None, 0);
    let mut flood_rss = (None, None);
    let (tallies, sessions) = match args.mode {
        Mode::Closed => (vec![closed(args, &load_frames(&args.frames)?)?], 1),
        Mode::Open => (open(args, &load_frames(&args.frames)?)?, args.sessions),
        Mode::Idle => {
            let held = idle(args)?;
            (Vec::new(), held)
        }
        Mode::Soak => (soak(args, &load_frames(&args.frames)?, &mut warm_rss, &mut opened)?, args.sessions),
        Mode::Flood => {
            let path = args.frame.as_ref().ok_or_else(|| BenchError::Usage("flood needs --frame FILE".into()))?;
            let frame = std::fs::read(path).map_err(|_| BenchError::NoFrames(path.clone()))?;
            flood_rss = flood(args, &frame)?;
            (Vec::new(), 1)
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if !args.json {
        eprintln!();
    }
    let mut r = Report { mode: Some(args.mode), sessions, ..Report::default() };
    let (mut all, mut first, mut last, mut overhead) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in &tallies {
        r.sent += t.sent;
        r.results += t.results.len() as u64;
        r.dropped_reported += t.dropped;
        r.errors += t.errors;
        r.slow_downs += t.slow_downs;
        r.detector_runs += t.results.iter().filter(|a| a.detected).count() as u64;
        r.predicted += t.results.iter().filter(|a| a.predicted).count() as u64;
        r.ocr_ms_per_result += t.results.iter().map(|a| a.ocr).sum::<f64>();
        let third = t.results.len() / 3;
        first.extend(t.results[..third].iter().map(|a| a.latency));
        last.extend(t.results[t.results.len() - third..].iter().map(|a| a.latency));
        all.extend(t.results.iter().map(|a| a.latency));
        overhead.extend(t.results.iter().map(|a| a.latency - a.work));
        r.per_session_results.push(t.results.len() as u64);
        r.closed_by_server.extend(t.closed_by_server.clone());
    }
    r.unaccounted = r.sent as i64 - (r.results + r.dropped_reported + r.errors) as i64;
    r.results_per_s = r.results as f64 / secs;
    r.ocr_ms_per_result /= r.results.max(1) as f64;
    r.latency_ms = Percentiles::of(all);
    r.first_third_ms = Percentiles::of(first);
    r.last_third_ms = Percentiles::of(last);
    if args.mode == Mode::Closed {
        r.overhead_ms = Some(Percentiles::of(overhead));
    }
    r.rss_after_warm_up_kib = warm_rss;
    (r.rss_before_flood_kib, r.rss_after_flood_kib) = flood_rss;
    r.sessions_opened = opened;
    if matches!(args.mode, Mode::Open | Mode::Soak) {
        let (lo, hi) = (r.per_session_results.iter().min(), r.per_session_results.iter().max());
        r.fairness = lo.zip(hi).map(|(lo, hi)| *lo as f64 / (*hi).max(1) as f64);
    }
    r.server = sampler.map(Sampler::finish);
    if args.mode == Mode::Idle {
        // Peak: sampled while the sessions are held (they close before the end sample).
        r.kib_per_idle_session =
            r.server.map(|s| (s.rss_peak_kib as f64 - s.rss_start_kib as f64) / sessions.max(1) as f64);
    }
    Ok(r)
}

fn closed(args: &BenchArgs, frames: &[Vec<u8>]) -> Result<Tally, BenchError> {
    let mut ws = connect(&url(args), &args.timeouts)?;
    ws.get_mut().set_read_timeout(Some(args.timeouts.answer)).map_err(tungstenite::Error::Io)?;
    let mut t = Tally::default();
    let mut sent_at = Vec::with_capacity(args.count + WARM_UP);
    'frames: for i in 0..args.count + WARM_UP {
        ws.send(Message::Binary(frames[i % frames.len()].clone()))?;
        sent_at.push(Instant::now());
        t.sent += 1;
        while !t.settled() {
            let msg = match ws.read() {
                Err(e) if timed_out(&e) => return Err(BenchError::AnswerTimeout(args.timeouts.answer)),
                m => m?,
            };
            match msg {
                Message::Text(text) => t.on_text(&text, &sent_at)?,
                Message::Close(f) => {
                    t.closed_by_server = Some(close_text(f));
                    break 'frames;
                }
                _ => {}
            }
        }
        if i >= WARM_UP && !args.json {
            let p = Percentiles::of(t.results.iter().skip(WARM_UP).map(|a| a.latency).collect());
            progress(false, &format!("closed: {}/{} frames, p50 {:.1} ms", i + 1 - WARM_UP, args.count, p.p50));
        }
    }
    // Warm-up frames count as sent and answered, not in the latency figures.
    let warm: Vec<_> = t.results.drain(..WARM_UP.min(t.results.len())).collect();
    t.sent -= warm.len() as u64;
    Ok(t)
}

fn open(args: &BenchArgs, frames: &[Vec<u8>]) -> Result<Vec<Tally>, BenchError> {
    let url = url(args);
    let done = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..args.sessions)
        .map(|s| {
            let (url, frames, fps, secs, done, t) =
                (url.clone(), frames.to_vec(), args.fps, args.seconds, Arc::clone(&done), args.timeouts);
            std::thread::spawn(move || open_session(s, &url, &t, &frames, fps, secs, &done))
        })
        .collect();
    let start = Instant::now();
    while !handles.iter().all(|h| h.is_finished()) {
        if !args.json {
            let el = start.elapsed().as_secs_f64().min(args.seconds);
            progress(false, &format!("open: {el:.0}/{:.0} s, {} results", args.seconds, done.load(Ordering::Relaxed)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    handles.into_iter().map(|h| h.join().map_err(|_| BenchError::Protocol("session thread panicked".into()))?).collect()
}

fn open_session(
    s: usize,
    url: &str,
    timeouts: &Timeouts,
    frames: &[Vec<u8>],
    fps: f64,
    secs: f64,
    done: &AtomicU64,
) -> Result<Tally, BenchError> {
    let mut ws = connect(url, timeouts)?;
    let period = Duration::from_secs_f64(1.0 / fps.max(0.001));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut t = Tally::default();
    // Stagger sessions within one period so they do not all send at the same instant.
    let mut next = start + period.mul_f64((s as f64 * 0.37) % 1.0);
    loop {
        let now = Instant::now();
        if now >= next && now < end {
            ws.send(Message::Binary(frames[sent_at.len() % frames.len()].clone()))?;
            sent_at.push(Instant::now());
            t.sent += 1;
            next += period;
            continue;
        }
        if (now >= end && t.settled()) || now >= end + Duration::from_secs(10) {
            break;
        }
        let wait = if now < end { next.saturating_duration_since(now) } else { Duration::from_millis(50) };
        let _ = ws.get_mut().set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match ws.read() {
            Ok(Message::Text(text)) => {
                let before = t.results.len();
                t.on_text(&text, &sent_at)?;
                done.fetch_add((t.results.len() - before) as u64, Ordering::Relaxed);
            }
            Ok(Message::Close(f)) => {
                t.closed_by_server = Some(close_text(f));
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(t)
}

fn soak(
    args: &BenchArgs,
    frames: &[Vec<u8>],
    warm_rss: &mut Option<u64>,
    opened: &mut u64,
) -> Result<Vec<Tally>, BenchError> {
    let url = url(args);
    let end = Instant::now() + Duration::from_secs_f64(args.seconds);
    let warm_at = Instant::now() + Duration::from_secs_f64(args.seconds / 10.0);
    let count = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..args.sessions)
        .map(|s| {
            let (url, frames, fps, count, t) =
                (url.clone(), frames.to_vec(), args.fps, Arc::clone(&count), args.timeouts);
            std::thread::spawn(move || -> Result<Tally, BenchError> {
                let mut total = Tally::default();
                // A small deterministic generator for lifetimes: sessions differ, runs repeat.
                let mut seed = 0x9E37_79B9_u64.wrapping_mul(s as u64 + 1);
                while Instant::now() < end {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let life = (1.0 + (seed % 4000) as f64 / 1000.0)
                        .min(end.saturating_duration_since(Instant::now()).as_secs_f64());
                    let done = AtomicU64::new(0);
                    let t = open_session(s, &url, &t, &frames, fps, life, &done)?;
                    count.fetch_add(1, Ordering::Relaxed);
                    total.sent += t.sent;
                    total.dropped += t.dropped;
                    total.errors += t.errors;
                    total.slow_downs += t.slow_downs;
                    total.results.extend(t.results);
                    if t.closed_by_server.is_some() {
                        total.closed_by_server = t.closed_by_server;
                        break;
                    }
                }
                Ok(total)
            })
        })
        .collect();
    while !handles.iter().all(|h| h.is_finished()) {
        if warm_rss.is_none() && Instant::now() >= warm_at {
            *warm_rss = args.pid.and_then(proc_stats).map(|(rss, _)| rss);
        }
        if !args.json {
            let left = end.saturating_duration_since(Instant::now()).as_secs();
            let rss = args
                .pid
                .and_then(proc_stats)
                .map_or(String::new(), |(r, t)| format!(", server rss {r} KiB threads {t}"));
            progress(false, &format!("soak: {left} s left, {} sessions done{rss}", count.load(Ordering::Relaxed)));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    *opened = count.load(Ordering::Relaxed);
    handles.into_iter().map(|h| h.join().map_err(|_| BenchError::Protocol("session thread panicked".into()))?).collect()
}

fn idle(args: &BenchArgs) -> Result<usize, BenchError> {
    let url = url(args);
    let mut held = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        held.push(connect(&url, &args.timeouts)?);
        if !args.json && i % 50 == 49 {
            progress(false, &format!("idle: {} sessions open", i + 1));
        }
    }
    std::thread::sleep(Duration::from_secs_f64(args.seconds.clamp(0.0, 3600.0)));
    Ok(held.len())
}

/// Warm-up cycles of `flood` before its RSS is read.
const FLOOD_WARM_UP: usize = 20;

/// `flood`: the server's RSS (KiB, with `--pid`) after the warm-up and after the flood, each
/// read once the server has settled (2 s). Every cycle resets at once after sending, warm-up
/// and flood alike (a client that vanishes mid-frame); whether the server got to decode a frame
/// first is up to the race.
fn flood(args: &BenchArgs, frame: &[u8]) -> Result<(Option<u64>, Option<u64>), BenchError> {
    let url = url(args);
    let cycle = || -> Result<(), BenchError> {
        let mut ws = connect(&url, &args.timeouts)?;
        ws.send(Message::Binary(frame.to_vec()))?;
        // Reset, not close: SO_LINGER 0 makes the close an RST, as a client that vanished.
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: setsockopt reads `linger` (valid for its size) on the socket's own fd.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(ws.get_ref()),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        Ok(())
    };
    let rss = |settle: Duration| {
        std::thread::sleep(settle);
        args.pid.and_then(proc_stats).map(|(rss, _)| rss)
    };
    for _ in 0..FLOOD_WARM_UP {
        cycle()?;
    }
    let before = rss(Duration::from_secs(2));
    for i in 0..args.count {
        cycle()?;
        if !args.json && i % 20 == 19 {
            progress(false, &format!("flood: {}/{} cycles", i + 1, args.count));
        }
    }
    Ok((before, rss(Duration::from_secs(2))))
}

fn line(label: &str, p: &Percentiles) -> String {
    format!("{label}: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms", p.n, p.p50, p.p90, p.p99, p.max)
}

impl Report {
    /// The human-readable report.
    pub fn human(&self) -> String {
        let mut out = Vec::new();
        if !matches!(self.mode, Some(Mode::Idle | Mode::Flood)) {
            out.push(line("latency (send → result)", &self.latency_ms));
            out.push(line("  first third", &self.first_third_ms));
            out.push(line("  last third", &self.last_third_ms));
            if let Some(o) = &self.overhead_ms {
                out.push(line("overhead (round trip − decode − model)", o));
            }
            out.push(format!(
                "sent={} results={} dropped={} errors={} unaccounted={} slow_downs={} results/s={:.2}",
                self.sent,
                self.results,
                self.dropped_reported,
                self.errors,
                self.unaccounted,
                self.slow_downs,
                self.results_per_s
            ));
            out.push(format!(
                "detector runs={} predicted={} ocr ms/result={:.2}",
                self.detector_runs, self.predicted, self.ocr_ms_per_result
            ));
        }
        if let Some(f) = self.fairness {
            out.push(format!("per-session results={:?} fairness(min/max)={f:.2}", self.per_session_results));
        }
        if let Some(s) = &self.server {
            out.push(format!(
                "server rss KiB start={} peak={} end={}; threads start={} peak={} end={}",
                s.rss_start_kib, s.rss_peak_kib, s.rss_end_kib, s.threads_start, s.threads_peak, s.threads_end
            ));
        }
        if let (Some(w), Some(s)) = (self.rss_after_warm_up_kib, &self.server) {
            out.push(format!(
                "soak: {} sessions opened; rss after warm-up {w} KiB, end {} KiB ({:+.1} %)",
                self.sessions_opened,
                s.rss_end_kib,
                (s.rss_end_kib as f64 - w as f64) * 100.0 / w.max(1) as f64
            ));
        }
        if let (Some(b), Some(a)) = (self.rss_before_flood_kib, self.rss_after_flood_kib) {
            out.push(format!(
                "flood: server rss before {} MiB, after {} MiB ({:+.1} MiB)",
                b / 1024,
                a / 1024,
                (a as f64 - b as f64) / 1024.0
            ));
        }
        if let Some(k) = self.kib_per_idle_session {
            out.push(format!("{} idle sessions: {k:.1} KiB each", self.sessions));
        }
        if !self.closed_by_server.is_empty() {
            out.push(format!(
                "the server closed {} session(s) before the end: {}",
                self.closed_by_server.len(),
                self.closed_by_server.join(", ")
            ));
        }
        out.join("\n")
    }
}
