//! Where `framewire stream` gets its frames, and the feed that hands them to the socket thread.
//!
//! - JPEG sources need no help: a directory of JPEGs (name order, `--loop`), one JPEG file
//!   (looped), `-` for MJPEG on stdin.
//! - Camera and video sources run `ffmpeg` (found on `PATH` or given with `--ffmpeg`): an
//!   `rtsp://` or `rtsps://` URL (over TCP by default, `--rtsp-transport`), an `http(s)://` URL
//!   (an MJPEG camera or a video), a V4L2 device (`/dev/video0`) and a video file (by its
//!   extension, [`VIDEO_EXTENSIONS`]: `.mp4`, `.mkv`, …). ffmpeg turns it into MJPEG at `--fps` (and `--size`, `--quality`) on
//!   its stdout, which the [`MjpegSplitter`] cuts into frames. URLs and devices are *live*:
//!   when ffmpeg exits (the camera dropped, the Wi-Fi went) it is started again with the
//!   [`Backoff`], forever by default; a file is not restarted.
//! - A camera that stops sending without closing its connection would block ffmpeg forever.
//!   So a watchdog here restarts ffmpeg (through the same backoff) when no frame came for the
//!   stall timeout ([`stall_timeout`]: `--stall-timeout`, at least three frame periods at
//!   `--fps`), whatever ffmpeg is doing; and ffmpeg gets the I/O timeout its input protocol
//!   understands (`-rw_timeout` for HTTP, `-timeout` for RTSP, `-stimeout` before ffmpeg 5), a
//!   second longer, so that it also ends a hung read by itself.
//! - ffmpeg's stderr is read as it comes into a bounded [`Tail`] (its last few KiB, for the
//!   note when it ends): memory stays flat however much a damaged camera makes it complain.
//! - Every blocking read here (ffmpeg's output, stdin) waits in `poll(2)` beside the feed's stop
//!   descriptor, so stopping the run never waits for a source that sends nothing.
//! - The [`Feed`] between the source thread and the socket thread is bounded: with
//!   `--pace server` it holds only the newest frame (an older one still waiting is dropped
//!   locally and counted), so a live source never queues frames the server would drop anyway;
//!   with `--pace fps` it holds two and the source waits for the socket side.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::annexb::AnnexBSplitter;
use super::backoff::Backoff;
use super::common::jpeg_files;
use super::ffargs::probe_ffmpeg_major;
pub use super::ffargs::{ffmpeg_args, ffmpeg_major, H264Out};
use super::mjpeg::{MjpegError, MjpegSplitter};
use super::reading::{stdin_file, Tail, Watched, TAIL_BYTES};
use crate::wake::{poll, Waker};

/// File name extensions read as videos through ffmpeg (any other file is one JPEG frame).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mkv", "mov", "avi", "webm", "ts", "mts", "m2ts", "flv", "wmv", "mpg", "mpeg", "3gp", "ogv", "h264",
    "264", "h265", "265", "hevc", "mjpeg", "mjpg",
];

/// What a source argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// `-`: MJPEG on stdin.
    Stdin,
    /// A directory of `.jpg` / `.jpeg` files.
    Directory(PathBuf),
    /// One JPEG file, looped.
    Jpeg(PathBuf),
    /// Through ffmpeg: a URL or a device (live: restarted when it ends) or a video file.
    Ffmpeg {
        /// What ffmpeg opens (`-i`).
        input: String,
        /// A URL or a device: restarted when it ends, paced by the server by default.
        live: bool,
        /// An `rtsp(s)://` URL (gets `-rtsp_transport`).
        rtsp: bool,
        /// A V4L2 device (gets `-f v4l2`).
        device: bool,
    },
}

impl SourceKind {
    /// Classify a source argument.
    pub fn of(source: &str) -> SourceKind {
        let lower = source.to_ascii_lowercase();
        let url = ["rtsp://", "rtsps://", "http://", "https://"].iter().any(|p| lower.starts_with(p));
        let device = source.starts_with("/dev/video");
        if source == "-" {
            SourceKind::Stdin
        } else if url || device {
            let rtsp = lower.starts_with("rtsp");
            SourceKind::Ffmpeg { input: source.to_string(), live: true, rtsp, device }
        } else if Path::new(source).is_dir() {
            SourceKind::Directory(source.into())
        } else if VIDEO_EXTENSIONS.iter().any(|e| lower.rsplit_once('.').is_some_and(|(_, x)| x == *e)) {
            SourceKind::Ffmpeg { input: source.to_string(), live: false, rtsp: false, device: false }
        } else {
            // Any other file is sent as one JPEG frame, looped, as before cameras existed (a
            // file that is no JPEG gets the server's `not_jpeg`; a missing one, a read error).
            SourceKind::Jpeg(source.into())
        }
    }

    /// A camera (URL or device): paced by the server and restarted forever by default.
    pub fn live(&self) -> bool {
        matches!(self, SourceKind::Ffmpeg { live: true, .. })
    }
}

/// How ffmpeg is asked to produce frames.
#[derive(Debug, Clone, PartialEq)]
pub struct FfmpegOptions {
    /// The program (`--ffmpeg`, default `ffmpeg` on `PATH`).
    pub program: PathBuf,
    /// Frames per second out (`--fps`; 0: every frame the source has).
    pub fps: f64,
    /// `--size WxH`: scaled to this size.
    pub size: Option<(u32, u32)>,
    /// `--quality`: ffmpeg's MJPEG `-q:v`, 2 (best) to 31.
    pub quality: u8,
    /// `--rtsp-transport`: `tcp` or `udp`.
    pub rtsp_transport: String,
    /// No frame for this long and the watchdog restarts ffmpeg ([`stall_timeout`]); ffmpeg's
    /// own I/O timeout is a second longer.
    pub stall: Duration,
    /// `--codec h264`: H.264 access units out instead of MJPEG, the source's own stream
    /// copied or encoded ([`H264Out`]); `None`: MJPEG.
    pub h264: Option<H264Out>,
}

/// The stall timeout for `--stall-timeout` and `--fps`: the flag, but at least three frame
/// periods, so a slow `--fps` (a frame every 5 s, say) is never taken for a stall.
pub fn stall_timeout(flag: Duration, fps: f64) -> Duration {
    if fps > 0.0 && fps.is_finite() {
        flag.max(Duration::from_secs_f64((3.0 / fps).min(86_400.0)))
    } else {
        flag
    }
}

/// Why a source gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read.
    #[error("cannot read frames from {path}: {why}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The MJPEG stream broke (a frame over the size limit, or no JPEG structure).
    #[error("MJPEG stream: {0}")]
    Mjpeg(String),
    /// ffmpeg's H.264 output broke (an access unit over the size limit, no delimiters).
    #[error("H.264 stream: {0}")]
    H264(String),
    /// ffmpeg is not installed (or not where `--ffmpeg` says).
    #[error(
        "cannot run {0}: not found; install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg) or give its path with --ffmpeg"
    )]
    NoFfmpeg(String),
    /// ffmpeg ended and no retry is left (`--max-retries`): what it said last.
    #[error("source {input}: {why}")]
    Failed {
        /// The source.
        input: String,
        /// ffmpeg's exit and its last error line.
        why: String,
    },
}

impl From<MjpegError> for SourceError {
    fn from(e: MjpegError) -> Self {
        SourceError::Mjpeg(e.to_string())
    }
}

/// What [`Feed::take`] found.
#[derive(Debug)]
pub enum Taken {
    /// A frame to send.
    Frame(Vec<u8>),
    /// Nothing yet.
    Empty,
    /// The source ended (for good): `Err` if it failed.
    Ended(Result<(), SourceError>),
}

#[derive(Debug, Default)]
struct FeedState {
    frames: VecDeque<Vec<u8>>,
    skipped: u64,
    produced: u64,
    stalls: u64,
    ended: Option<Result<(), SourceError>>,
    stopped: bool,
}

/// The bounded hand-over from a source thread to the socket thread (see the module docs).
#[derive(Debug)]
pub struct Feed {
    state: Mutex<FeedState>,
    /// A frame was taken: room for the source.
    space: Condvar,
    /// A frame (or the end) came: something for the socket thread.
    ready: Condvar,
    /// Keep only the newest frame (`--pace server`); else hold up to two and make the source
    /// wait.
    latest_wins: bool,
    /// The running ffmpeg, to kill when the consumer stops.
    child: Mutex<Option<Child>>,
    stop: AtomicBool,
    /// Readable once stopped: the source's blocking reads wait in `poll(2)` beside it.
    stop_fd: Option<Waker>,
}

/// Frames a `--pace fps` feed holds before the source waits.
const FPS_DEPTH: usize = 2;

impl Feed {
    /// An empty feed.
    pub fn new(latest_wins: bool) -> Arc<Feed> {
        Arc::new(Feed {
            state: Mutex::new(FeedState::default()),
            space: Condvar::new(),
            ready: Condvar::new(),
            latest_wins,
            child: Mutex::new(None),
            stop: AtomicBool::new(false),
            // Without it (out of descriptors) a stop still kills ffmpeg; only a stdin source
            // could then keep the run waiting.
            stop_fd: Waker::new().ok(),
        })
    }

    /// The source produced a frame; false once the consumer stopped (the source should end).
    pub fn push(&self, frame: Vec<u8>) -> bool {
        let mut s = self.state.lock();
        if self.latest_wins {
            if s.frames.pop_front().is_some() {
                s.skipped += 1;
            }
        } else {
            while s.frames.len() >= FPS_DEPTH && !s.stopped {
                self.space.wait(&mut s);
            }
        }
        if s.stopped {
            return false;
        }
        s.frames.push_back(frame);
        s.produced += 1;
        self.ready.notify_all();
        true
    }

    /// The source ended for good.
    pub fn end(&self, r: Result<(), SourceError>) {
        self.state.lock().ended = Some(r);
        self.ready.notify_all();
    }

    /// The next frame, if any.
    pub fn take(&self) -> Taken {
        self.wait_take(Duration::ZERO)
    }

    /// The next frame, waiting at most `wait` for one (or for the end).
    pub fn wait_take(&self, wait: Duration) -> Taken {
        let mut s = self.state.lock();
        if s.frames.is_empty() && s.ended.is_none() && !wait.is_zero() {
            let _ = self.ready.wait_for(&mut s, wait);
        }
        if let Some(f) = s.frames.pop_front() {
            self.space.notify_all();
            return Taken::Frame(f);
        }
        match &s.ended {
            Some(r) => Taken::Ended(r.clone()),
            None => Taken::Empty,
        }
    }

    /// The source was restarted because no frame came for the stall timeout.
    fn stalled(&self) {
        self.state.lock().stalls += 1;
    }

    /// Restarts for a stall so far.
    pub fn stalls(&self) -> u64 {
        self.state.lock().stalls
    }

    /// Frames dropped here (replaced by a newer one before they could be sent).
    pub fn skipped(&self) -> u64 {
        self.state.lock().skipped
    }

    /// Frames the source produced.
    pub fn produced(&self) -> u64 {
        self.state.lock().produced
    }

    /// The consumer is done: frames still held count as skipped; the source thread and its
    /// ffmpeg are stopped.
    pub fn stop(&self) {
        {
            let mut s = self.state.lock();
            s.stopped = true;
            let left = s.frames.len() as u64;
            s.frames.clear();
            s.skipped += left;
        }
        self.stop.store(true, Ordering::SeqCst);
        self.space.notify_all();
        if let Some(w) = &self.stop_fd {
            w.wake();
        }
        if let Some(child) = self.child.lock().as_mut() {
            let _ = child.kill();
        }
    }

    /// Readable once stopped (-1 without one).
    fn stop_fd(&self) -> RawFd {
        self.stop_fd.as_ref().map_or(-1, |w| w.as_raw_fd())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleep `d` unless stopped first; false when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() {
            if self.stopped() {
                return false;
            }
            let s = left.min(step);
            std::thread::sleep(s);
            left -= s;
        }
        !self.stopped()
    }
}

/// What a source thread needs.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// What to read.
    pub kind: SourceKind,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Cycle a directory.
    pub looped: bool,
    /// Largest MJPEG frame.
    pub max_frame_bytes: usize,
    /// For ffmpeg sources.
    pub ffmpeg: FfmpegOptions,
    /// Restarts of an ffmpeg source in a row without a frame (`None`: forever).
    pub max_retries: Option<u32>,
    /// `[name] ` for the notes on stderr, or empty.
    pub prefix: String,
}

/// Read `spec`'s frames into `feed` until the source ends or the feed is stopped.
pub fn run(spec: &SourceSpec, feed: &Feed) {
    let r = match &spec.kind {
        SourceKind::Stdin => {
            let file = stdin_file();
            let r = Watched { inner: &*file, fd: 0, stop_fd: feed.stop_fd(), stopped: &feed.stop, deadline: None };
            mjpeg(r, spec, feed, &mut 0, &mut || {})
        }
        SourceKind::Directory(dir) => match jpeg_files(dir) {
            Ok(files) if files.is_empty() => {
                Err(SourceError::Read { path: dir.clone(), why: "no .jpg or .jpeg files".into() })
            }
            Ok(files) => files_loop(&files, spec.looped, spec, feed),
            Err(e) => Err(SourceError::Read { path: dir.clone(), why: e.to_string() }),
        },
        SourceKind::Jpeg(path) => files_loop(std::slice::from_ref(path), true, spec, feed),
        SourceKind::Ffmpeg { .. } => ffmpeg(spec, feed),
    };
    feed.end(r);
}

fn files_loop(files: &[PathBuf], cycle: bool, spec: &SourceSpec, feed: &Feed) -> Result<(), SourceError> {
    let limit = spec.count.unwrap_or(u64::MAX);
    let mut cache: Vec<Option<Vec<u8>>> = vec![None; files.len()];
    let (mut i, mut sent) = (0usize, 0u64);
    while sent < limit && (cycle || i < files.len()) {
        let k = i % files.len();
        let bytes = match &cache[k] {
            Some(b) => b.clone(),
            None => {
                let b = std::fs::read(&files[k])
                    .map_err(|e| SourceError::Read { path: files[k].clone(), why: e.to_string() })?;
                // Keep a looped single file (or a small set) in memory.
                if files.len() <= 64 {
                    cache[k] = Some(b.clone());
                }
                b
            }
        };
        if !feed.push(bytes) {
            return Ok(());
        }
        sent += 1;
        i += 1;
    }
    Ok(())
}

/// Frames from `next` (a splitter's) into the feed until it ends, `--count` or a stop; `sent`
/// counts frames against `--count`; `on_frame` runs after each frame.
fn pump(
    mut next: impl FnMut() -> Result<Option<Vec<u8>>, SourceError>,
    spec: &SourceSpec,
    feed: &Feed,
    sent: &mut u64,
    on_frame: &mut dyn FnMut(),
) -> Result<(), SourceError> {
    let limit = spec.count.unwrap_or(u64::MAX);
    while *sent < limit {
        let Some(frame) = next()? else { return Ok(()) };
        if !feed.push(frame) {
            return Ok(());
        }
        *sent += 1;
        on_frame();
    }
    Ok(())
}

/// Split an MJPEG stream into the feed (see [`pump`]).
fn mjpeg(
    r: impl Read,
    spec: &SourceSpec,
    feed: &Feed,
    sent: &mut u64,
    on_frame: &mut dyn FnMut(),
) -> Result<(), SourceError> {
    let mut split = MjpegSplitter::new(r, spec.max_frame_bytes);
    pump(|| Ok(split.next_frame()?), spec, feed, sent, on_frame)
}

/// Split ffmpeg's H.264 output (`fd` is its pipe) into access units into the feed (see
/// [`pump`]).
fn annexb(
    r: impl Read,
    fd: RawFd,
    spec: &SourceSpec,
    feed: &Feed,
    sent: &mut u64,
    on_frame: &mut dyn FnMut(),
) -> Result<(), SourceError> {
    // Quiet: nothing more to read within `d` (an error counts as quiet: the read says why).
    let quiet = Box::new(move |d: Duration| poll(&[(fd, false)], Some(d)).map_or(true, |r| !r[0].readable));
    let mut split = AnnexBSplitter::new(r, spec.max_frame_bytes, quiet);
    pump(|| split.next_au().map_err(|e| SourceError::H264(e.to_string())), spec, feed, sent, on_frame)
}

/// Run ffmpeg, restarting a live source when it ends or stalls (with the backoff), until
/// `--count` frames, a stop, or no retry left.
fn ffmpeg(spec: &SourceSpec, feed: &Feed) -> Result<(), SourceError> {
    let SourceKind::Ffmpeg { input, live, .. } = &spec.kind else { return Ok(()) };
    let program = spec.ffmpeg.program.display().to_string();
    let mut backoff = Backoff::new(if *live { spec.max_retries } else { Some(spec.max_retries.unwrap_or(0)) });
    let major = probe_ffmpeg_major(&spec.ffmpeg.program);
    let stall = spec.ffmpeg.stall;
    let mut sent = 0u64;
    let mut restarted = false;
    // `--codec h264`: the source's own stream first, encoded if copying it gives nothing.
    let mut h264 = spec.ffmpeg.h264;
    loop {
        let options = FfmpegOptions { h264, ..spec.ffmpeg.clone() };
        let mut child = match Command::new(&spec.ffmpeg.program)
            .args(ffmpeg_args(&spec.kind, &options, major))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SourceError::NoFfmpeg(program)),
            Err(e) => {
                return Err(SourceError::Failed { input: input.clone(), why: format!("cannot run {program}: {e}") })
            }
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(SourceError::Failed { input: input.clone(), why: "no pipe to ffmpeg".into() });
        };
        // ffmpeg's complaints, read as they come into a bounded tail, for the note when it ends.
        let (tail_tx, tail_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = tail_tx.send(Tail::read(stderr, TAIL_BYTES).last_line());
        });
        *feed.child.lock() = Some(child);
        if feed.stopped() {
            if let Some(c) = feed.child.lock().as_mut() {
                let _ = c.kill();
            }
        }
        // The watchdog: no frame by this time (ffmpeg's start, then each frame, + the stall
        // timeout) and ffmpeg is taken for stalled.
        let deadline = Cell::new(Instant::now() + stall);
        let fd = stdout.as_raw_fd();
        let reader =
            Watched { inner: stdout, fd, stop_fd: feed.stop_fd(), stopped: &feed.stop, deadline: Some(&deadline) };
        let before = sent;
        let mut on_frame = || {
            deadline.set(Instant::now() + stall);
            // The source delivers: the next failure waits 1 s again.
            backoff.delivered();
            if restarted {
                restarted = false;
                eprintln!("\r\x1b[Kframewire stream: {}source {input} is back", spec.prefix);
            }
        };
        let split = match h264 {
            Some(_) => annexb(reader, fd, spec, feed, &mut sent, &mut on_frame),
            None => mjpeg(reader, spec, feed, &mut sent, &mut on_frame),
        };
        let stalled = Instant::now() >= deadline.get();
        let status = feed.child.lock().take().map(|mut c| {
            let _ = c.kill();
            c.wait()
        });
        // Its stderr closes with it (a program that left a child holding it open is not
        // waited for).
        let last = tail_rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
        if feed.stopped() || spec.count.is_some_and(|n| sent >= n) {
            return Ok(());
        }
        if h264 == Some(H264Out::Copy) && sent == before {
            // Not an H.264 source (ffmpeg refuses to copy it into an H.264 stream), or one that
            // gave nothing: encode it instead, at once.
            h264 = Some(H264Out::Encode);
            eprintln!(
                "\r\x1b[Kframewire stream: {}source {input}: not copied as H.264 ({last}); encoding it",
                spec.prefix
            );
            continue;
        }
        let why = match (&split, status) {
            _ if stalled => format!("no frame for {} s (--stall-timeout)", stall.as_secs_f64()),
            (Err(e), _) => e.to_string(),
            (Ok(()), Some(Ok(s))) if s.success() => "the stream ended".to_string(),
            (Ok(()), Some(Ok(s))) => format!("ffmpeg exited with {s}"),
            (Ok(()), _) => "ffmpeg ended".to_string(),
        };
        if stalled {
            feed.stalled();
        }
        let clean = split.is_ok() && why == "the stream ended";
        let why = if last.is_empty() { why } else { format!("{why}: {last}") };
        if !live && clean {
            return Ok(()); // a file played to its end
        }
        match backoff.failed() {
            Some(wait) => {
                eprintln!(
                    "\r\x1b[Kframewire stream: {}source {input}: {why}; restarting in {} s (attempt {})",
                    spec.prefix,
                    wait.as_secs(),
                    backoff.failures()
                );
                restarted = true;
                if !feed.sleep(wait) {
                    return Ok(());
                }
            }
            // A camera stream that ended cleanly with no retry left: done, not failed.
            None if clean => return Ok(()),
            None => return Err(SourceError::Failed { input: input.clone(), why }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> FfmpegOptions {
        FfmpegOptions {
            program: "ffmpeg".into(),
            fps: 5.0,
            size: Some((640, 360)),
            quality: 5,
            rtsp_transport: "tcp".into(),
            stall: Duration::from_secs(10),
            h264: None,
        }
    }

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(SourceKind::of("-"), SourceKind::Stdin);
        assert!(matches!(SourceKind::of("tests/fixtures/seq"), SourceKind::Directory(_)));
        assert!(matches!(SourceKind::of("tests/fixtures/photo_cat_640x480.jpg"), SourceKind::Jpeg(_)));
        assert!(matches!(SourceKind::of("nowhere.jpg"), SourceKind::Jpeg(_)));
        let rtsp = SourceKind::of("rtsp://10.0.0.5/stream1");
        assert!(rtsp.live() && matches!(rtsp, SourceKind::Ffmpeg { rtsp: true, device: false, .. }));
        assert!(SourceKind::of("HTTP://cam.local/mjpeg").live());
        assert!(matches!(SourceKind::of("/dev/video0"), SourceKind::Ffmpeg { live: true, device: true, .. }));
        // A video file: through ffmpeg, not live; any other file is a JPEG frame as before.
        let video = SourceKind::of("clips/Gate.MP4");
        assert!(matches!(video, SourceKind::Ffmpeg { live: false, .. }) && !video.live());
        assert!(matches!(SourceKind::of("README.md"), SourceKind::Jpeg(_)));
    }

    #[test]
    fn ffmpeg_is_asked_for_mjpeg_at_the_rate_and_size() {
        let a = ffmpeg_args(&SourceKind::of("rtsp://cam/1"), &opts(), Some(5)).join(" ");
        assert_eq!(
            a,
            "-hide_banner -nostdin -loglevel error -use_wallclock_as_timestamps 1 -rtsp_transport tcp \
             -timeout 11000000 -i rtsp://cam/1 -an -vf fps=5,scale=640:360 -q:v 5 -f mjpeg -"
        );
        let o = FfmpegOptions { fps: 0.0, size: None, ..opts() };
        let a = ffmpeg_args(&SourceKind::of("/dev/video2"), &o, Some(6)).join(" ");
        assert_eq!(a, "-hide_banner -nostdin -loglevel error -f v4l2 -i /dev/video2 -an -vsync 0 -q:v 5 -f mjpeg -");
    }

    #[test]
    fn ffmpeg_gets_the_io_timeout_its_input_protocol_understands() {
        let args = |src: &str, major| ffmpeg_args(&SourceKind::of(src), &opts(), major).join(" ");
        assert!(args("http://cam/video.mjpg", Some(5)).contains("-rw_timeout 11000000 -i http://cam/video.mjpg"));
        assert!(args("HTTPS://cam/v", None).contains("-rw_timeout 11000000 -i HTTPS://cam/v"));
        // Before ffmpeg 5, RTSP's `-timeout` meant "listen": its socket timeout was -stimeout.
        assert!(args("rtsp://cam/1", Some(4)).contains("-stimeout 11000000 -i"));
        assert!(args("rtsps://cam/1", None).contains("-timeout 11000000 -i"));
        assert!(!args("clip.mp4", Some(6)).contains("timeout"), "a file needs none, and keeps its own timestamps");
        for (text, major) in [
            ("ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024", Some(5)),
            ("ffmpeg version n7.0.2 Copyright", Some(7)),
            ("ffmpeg version 4.4.2-0ubuntu0.22.04.1", Some(4)),
            ("ffmpeg version N-113345-g1b2c3d4 Copyright", None),
            ("", None),
        ] {
            assert_eq!(ffmpeg_major(text), major, "{text}");
        }
    }

    #[test]
    fn the_stall_timeout_is_at_least_three_frame_periods() {
        let ten = Duration::from_secs(10);
        assert_eq!(stall_timeout(ten, 10.0), ten);
        assert_eq!(stall_timeout(ten, 0.1), Duration::from_secs(30));
        assert_eq!(stall_timeout(ten, 0.0), ten, "--fps 0: every frame the source has");
    }

    #[test]
    fn a_latest_wins_feed_keeps_the_newest_and_counts_the_rest() {
        let f = Feed::new(true);
        for i in 0..5u8 {
            assert!(f.push(vec![i]));
        }
        assert!(matches!(f.take(), Taken::Frame(v) if v == [4]));
        assert!(matches!(f.take(), Taken::Empty));
        assert_eq!((f.produced(), f.skipped()), (5, 4));
        f.push(vec![9]);
        f.stop();
        assert_eq!(f.skipped(), 5, "the frame left unsent counts too");
        assert!(!f.push(vec![10]), "a stopped feed takes nothing");
    }
}
