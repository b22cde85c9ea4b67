//! `framewire stream`: the command-line client for scripts and cameras. It streams frames to a
//! server at a chosen rate and pipeline and prints what comes back.
//!
//! Sources ([`super::source`]): a directory of JPEGs (name order; `--loop` cycles it), one JPEG
//! file (looped), `-` for an MJPEG byte stream on stdin; and through ffmpeg an RTSP or HTTP
//! camera, a V4L2 device or a video file. `--source NAME=URL` (repeatable) runs several, each
//! its own session and its own ffmpeg, on its own thread; their output lines carry the name.
//! Output: every server message as one JSON line on stdout (`--output json`, the default, for
//! machines; with named sources `{"source":NAME,"message":…}`), or a compact line per result and
//! per event plus a progress line on stderr (`--output human`; a `[NAME] ` prefix).
//!
//! Pacing: `--pace fps` sends at `--fps`; `--pace server` (the default for cameras) keeps at most
//! one frame in flight and, when its answer comes, sends the newest frame the source produced;
//! older ones are dropped here and counted (`skipped` in the summary), so a thin uplink carries
//! only frames the server will process.
//!
//! Retries ([`super::backoff`]: 1 s doubling to 30 s, back to 1 s after a delivery, at most
//! `--max-retries` in a row; forever by default for cameras, none for files): a camera whose
//! ffmpeg exits is started again; a server that closes the session or cannot be reached is
//! connected to again and sent the `--config` again (a new session: tracks start anew). A
//! close for a bad frame (1007) is not retried blindly: it is logged and the session starts
//! again at once with the next frame.
//!
//! The exit status is 0 only if every frame sent was answered, dropped or lost in a reconnect,
//! no `error` message arrived and the last session ended normally.
//!
//! `--config FILE.json` sends the file as a `configure` message before the first frame (its
//! `"type"` may be left out) and waits for `configured`: an `invalid_config` answer ends the
//! run with the server's `"<field>: <why>"`. After the last frame it sends `end_of_stream` and
//! prints the answer (live tracks ended, final counts).
//!
//! Deadlines ([`Timeouts`], [`super::link`]): connecting, the upgrade, every answer while a
//! frame is in flight, a pong while idle and every write have one, so a link that dies without
//! a reset (a Wi-Fi drop, an expired NAT mapping, a host that lost power) is noticed and the
//! client connects again with the backoff; each is a line on stderr and a counter in the
//! summary. A message of a `type` this client does not know is skipped (one note, counted).
//!
//! The parts: [`super::pacer`] decides when to send, [`super::link::Link`] does the socket I/O under
//! its deadlines, [`super::ledger::Ledger`] reads and accounts for each server message, and
//! [`super::output`] prints. One thread talks to each socket (a blocking tungstenite socket
//! cannot be shared between a reader and a writer thread). A second thread reads the source
//! into the bounded [`Feed`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tungstenite::Message;

use super::backoff::Backoff;
use super::common::{seconds, session_url, ConnectError, Timeouts};
use super::ledger::{Ledger, Reply};
use super::link::{Incoming, Link, LinkFault};
use super::output::Out;
pub use super::output::Output;
pub use super::output::{Report, Summary};
pub use super::pacer::Pace;
use super::pacer::{Eos, Pacer, Step, TURN};
use super::source::{self, stall_timeout, Feed, FfmpegOptions, SourceError, SourceKind, SourceSpec, Taken};
use crate::protocol::control::MAX_CONTROL_BYTES;
use crate::protocol::PipelineKind;

/// `framewire stream` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// What to send: a directory of `.jpg`/`.jpeg` files (name order), one JPEG file (looped),
    /// `-` for an MJPEG byte stream on stdin, or through ffmpeg an `rtsp://` / `http(s)://`
    /// camera, a V4L2 device (`/dev/video0`) or a video file.
    pub source: Option<String>,
    /// A named source, `NAME=URL` (repeatable instead of SOURCE): each runs its own session and
    /// its own ffmpeg; output lines carry the name.
    #[arg(long = "source", value_name = "NAME=URL")]
    pub sources: Vec<String>,
    /// Server endpoint.
    #[arg(long, env = "FRAMEWIRE_URL", default_value = "ws://127.0.0.1:8080/ws/video/stream")]
    pub url: String,
    /// Frames per second: the rate sent with `--pace fps` (0 = as fast as the source gives them),
    /// and the rate ffmpeg produces for camera and video sources.
    #[arg(long, default_value_t = 10.0)]
    pub fps: f64,
    /// When to send: `server` (one frame in flight, the newest) or `fps`. Default: `server` for
    /// cameras, `fps` for the rest.
    #[arg(long, value_enum)]
    pub pace: Option<Pace>,
    /// Pipeline to ask for; default: the server's default (`detect_ocr`).
    #[arg(long, value_enum)]
    pub pipeline: Option<PipelineKind>,
    /// Stop after this many frames sent. Default: a directory once (forever with `--loop`), a
    /// single file and a camera forever, stdin and a video until they end.
    #[arg(long)]
    pub count: Option<u64>,
    /// Cycle a directory's frames instead of sending them once.
    #[arg(long = "loop")]
    pub looped: bool,
    /// `json` (every server message, one per line) or `human`.
    #[arg(long, value_enum, default_value_t = Output::Json)]
    pub output: Output,
    /// Largest frame read from an MJPEG stream, in bytes (default 8 MiB, the server's default
    /// `--max-frame-bytes`): a stream with no end marker cannot grow memory without bound.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_frame_bytes: usize,
    /// Seconds to wait for outstanding results after the last frame is sent.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// A JSON file sent as a `configure` message before the first frame (options, `zones`,
    /// `lines`, `anchor`; see docs/PROTOCOL.md); `end_of_stream` is sent after the last frame.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ffmpeg program for camera and video sources (default: `ffmpeg` on `PATH`).
    #[arg(long, default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
    /// Scale camera and video frames to `WxH` (ffmpeg's scale filter).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// JPEG quality of camera and video frames: ffmpeg's `-q:v`, 2 (best, biggest) to 31.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(2..=31))]
    pub quality: u8,
    /// RTSP transport: `tcp` (default: works through NAT and loses no packets) or `udp`.
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
    pub rtsp_transport: String,
    /// Restarts of a source, and reconnects to the server, in a row without a delivery, before
    /// giving up. Default: forever for cameras, none for files, directories and stdin.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Seconds without a frame from a camera or video before its ffmpeg is restarted (and
    /// ffmpeg's own I/O timeout); at least three frame periods at `--fps`.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub stall_timeout: Duration,
    /// What to send: `jpeg` (a JPEG per frame), or `h264` (cameras and videos only: one H.264
    /// access unit per message, `?codec=h264`; an H.264 source is copied as it is, anything
    /// else encoded with libx264; every access unit is sent, paced by the source).
    #[arg(long, default_value = "jpeg", value_parser = ["jpeg", "h264"])]
    pub codec: String,
    /// Deadlines of the link to the server.
    #[command(flatten)]
    pub timeouts: Timeouts,
}

fn parse_size(v: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{v}`: expected WIDTHxHEIGHT, e.g. 640x360, each 16 to 8192");
    let (w, h) = v.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

/// What went wrong while streaming.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The source failed for good (unreadable file, ffmpeg missing, a camera with no retry left).
    #[error("{0}")]
    Source(#[from] SourceError),
    /// Connecting to the server failed (refused, a timeout, an HTTP error before the upgrade).
    #[error("server: {0}")]
    Connect(#[from] ConnectError),
    /// The link to the server died (a deadline passed, or it broke).
    #[error("server: {0}")]
    Link(#[from] LinkFault),
    /// The server sent something that is not a protocol message.
    #[error("unexpected message from the server: {0}")]
    Protocol(String),
    /// The `--config` file could not be read or is not a JSON object of at most 64 KiB.
    #[error("--config {path}: {why}")]
    ConfigFile {
        /// The file given.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The server refused the `--config` file (`invalid_config`): its `"<field>: <why>"`.
    #[error("the server refused the configuration: {0}")]
    Refused(String),
    /// The command line names no source, or a bad `--source`.
    #[error("{0}")]
    Usage(String),
}

/// The `--config` file as a `configure` message: a JSON object of at most
/// [`MAX_CONTROL_BYTES`], `"type":"configure"` added when it has no `type`.
pub fn configure_message(path: &Path) -> Result<String, StreamError> {
    let bad = |why: String| StreamError::ConfigFile { path: path.to_owned(), why };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(map) = v.as_object_mut() else { return Err(bad("not a JSON object".into())) };
    match map.get("type") {
        None => {
            map.insert("type".into(), "configure".into());
        }
        Some(t) if t == "configure" => {}
        Some(_) => return Err(bad("its \"type\", if given, must be \"configure\"".into())),
    }
    let msg = v.to_string();
    if msg.len() > MAX_CONTROL_BYTES {
        return Err(bad(format!("over {MAX_CONTROL_BYTES} bytes")));
    }
    Ok(msg)
}

/// Send `msg` and read until the server's `configured` (printed as JSON output) or its refusal,
/// under the answer deadline; other messages are accounted for and skipped.
fn send_config(link: &mut Link, msg: &str, out: &Out<'_, '_>, ledger: &mut Ledger) -> Result<(), StreamError> {
    link.send(Message::text(msg))?;
    loop {
        let text = match link.recv(Duration::from_millis(100), 1)? {
            Incoming::Text(t) => t,
            Incoming::Closed(code, reason) => {
                return Err(StreamError::Protocol(format!("closed before configured: {code} {reason}")))
            }
            Incoming::Nothing => continue,
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| StreamError::Protocol(text.clone()))?;
        match ledger.take(&v, Instant::now()) {
            Reply::Configured => {
                out.json(&text);
                return Ok(());
            }
            Reply::Error => {
                let detail = v["detail"].as_str().unwrap_or_default();
                return Err(StreamError::Refused(format!("{} {detail}", v["error"].as_str().unwrap_or("?"))));
            }
            Reply::Unknown(kind) => note_unknown(out, ledger, &kind),
            _ => out.json(&text),
        }
    }
}

/// The one note a source gives about skipped messages.
fn note_unknown(out: &Out<'_, '_>, ledger: &Ledger, kind: &str) {
    if ledger.summary.unknown == 1 {
        out.note(&format!(
            "skipped a message ({kind:?}): not one this client knows (a newer server?); \
             such messages are counted in the summary's `unknown`"
        ));
    }
}

/// One source to run: its name and what it reads.
struct Job {
    name: Option<String>,
    input: String,
}

/// The sources the command line names: SOURCE, or each `--source NAME=URL`.
fn jobs(args: &StreamArgs) -> Result<Vec<Job>, StreamError> {
    let usage = |m: String| Err(StreamError::Usage(m));
    match (&args.source, args.sources.is_empty()) {
        (Some(_), false) => return usage("give either SOURCE or --source NAME=URL, not both".into()),
        (None, true) => return usage("no source: give SOURCE or --source NAME=URL".into()),
        (Some(s), true) => return Ok(vec![Job { name: None, input: s.clone() }]),
        (None, false) => {}
    }
    let mut jobs: Vec<Job> = Vec::new();
    for s in &args.sources {
        let Some((name, input)) = s.split_once('=').filter(|(n, i)| !n.is_empty() && !i.is_empty()) else {
            return usage(format!("--source {s}: expected NAME=URL"));
        };
        if jobs.iter().any(|j| j.name.as_deref() == Some(name)) {
            return usage(format!("--source: the name {name} is used twice"));
        }
        jobs.push(Job { name: Some(name.to_string()), input: input.to_string() });
    }
    Ok(jobs)
}

/// Stream every source to the server, writing output lines to `out`; returns each source's
/// summary, or the first source's error.
pub fn run(args: &StreamArgs, out: &mut (dyn Write + Send)) -> Result<Report, StreamError> {
    let config = args.config.as_deref().map(configure_message).transpose()?;
    let jobs = jobs(args)?;
    let sink = Mutex::new(out);
    let results: Vec<(Option<String>, Result<Summary, StreamError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (sink, config) = (&sink, config.as_deref());
                let out = Out { sink, name: job.name.clone(), output: args.output };
                scope.spawn(move || run_source(args, &job.input, config, &out))
            })
            .collect();
        jobs.iter()
            .zip(handles)
            .map(|(j, h)| {
                let r = h.join().unwrap_or_else(|_| Err(StreamError::Protocol("a source thread panicked".into())));
                (j.name.clone(), r)
            })
            .collect()
    });
    let mut report = Report::default();
    let mut first_error = None;
    for (name, r) in results {
        match r {
            Ok(s) => report.sources.push((name, s)),
            Err(e) => {
                let e = match &name {
                    Some(n) => StreamError::Usage(format!("[{n}] {e}")),
                    None => e,
                };
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// How one session ended.
enum SessionEnd {
    /// The source ended (or `--count` was reached) and the frames sent were answered.
    Done,
    /// The server closed the session (code, reason) while the source went on.
    Closed(u16, String),
    /// The link died.
    Dead(LinkFault),
}

/// One source: its source thread, and sessions one after another (reconnecting per the retry
/// policy) until the source ends.
fn run_source(args: &StreamArgs, input: &str, config: Option<&str>, out: &Out<'_, '_>) -> Result<Summary, StreamError> {
    let kind = SourceKind::of(input);
    let h264 = args.codec == "h264";
    if h264 && !matches!(kind, SourceKind::Ffmpeg { .. }) {
        return Err(StreamError::Usage(format!("--codec h264 needs a camera or video source (ffmpeg), not {input}")));
    }
    if h264 && args.pace == Some(Pace::Server) {
        // A decoder needs every access unit: none may be skipped here for a newer one.
        return Err(StreamError::Usage("--codec h264 sends every access unit: --pace server does not apply".into()));
    }
    let pace = args.pace.unwrap_or(if kind.live() && !h264 { Pace::Server } else { Pace::Fps });
    let max_retries = args.max_retries.or(if kind.live() { None } else { Some(0) });
    let spec = SourceSpec {
        kind,
        // With --pace server, `--count` counts frames *sent*: the socket side stops there.
        count: if pace == Pace::Server { None } else { args.count },
        looped: args.looped,
        max_frame_bytes: args.max_frame_bytes,
        ffmpeg: FfmpegOptions {
            program: args.ffmpeg.clone(),
            fps: args.fps,
            size: args.size,
            quality: args.quality,
            rtsp_transport: args.rtsp_transport.clone(),
            stall: stall_timeout(args.stall_timeout, args.fps),
            h264: h264.then_some(source::H264Out::Copy),
        },
        max_retries,
        prefix: out.prefix(),
    };
    let feed = Feed::new(pace == Pace::Server);
    let reader = {
        let (spec, feed) = (spec.clone(), Arc::clone(&feed));
        std::thread::spawn(move || source::run(&spec, &feed))
    };
    // A live H.264 source is sent as it comes (its own rate); a file at --fps.
    let send_fps = if h264 && spec.kind.live() { 0.0 } else { args.fps };
    let result = sessions(args, config, &feed, pace, send_fps, max_retries, out);
    feed.stop();
    let _ = reader.join();
    let mut s = result?;
    s.skipped = feed.skipped();
    s.stalls = feed.stalls();
    Ok(s)
}

/// A 503's `Retry-After` (a server starting, full or draining says when to come back), at
/// least 1 s: the backoff's wait is cut to it.
fn retry_after(e: &StreamError) -> Option<Duration> {
    let StreamError::Connect(ConnectError::Ws(e)) = e else { return None };
    let tungstenite::Error::Http(response) = e.as_ref() else { return None };
    let secs: u64 = response.headers().get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.max(1)))
}

/// Count a dead link or a failed connection in the summary's fault counters.
fn count_fault(s: &mut Summary, e: &StreamError) {
    match e {
        StreamError::Connect(ConnectError::ConnectTimeout(_)) => s.connect_timeouts += 1,
        StreamError::Connect(ConnectError::HandshakeTimeout(_)) => s.handshake_timeouts += 1,
        StreamError::Link(f) => count_link_fault(s, f),
        _ => {}
    }
}

fn count_link_fault(s: &mut Summary, f: &LinkFault) {
    match f {
        LinkFault::AnswerTimeout(..) => s.answer_timeouts += 1,
        LinkFault::PongTimeout(_) => s.pong_timeouts += 1,
        LinkFault::WriteTimeout(_) => s.write_timeouts += 1,
        LinkFault::Broken(_) => {}
    }
}

fn sessions(
    args: &StreamArgs,
    config: Option<&str>,
    feed: &Feed,
    pace: Pace,
    fps: f64,
    max_retries: Option<u32>,
    out: &Out<'_, '_>,
) -> Result<Summary, StreamError> {
    let url = session_url(&args.url, args.pipeline);
    let url = match args.codec.as_str() {
        "h264" if url.contains('?') => format!("{url}&codec=h264"),
        "h264" => format!("{url}?codec=h264"),
        _ => url,
    };
    let mut ledger = Ledger::default();
    let mut backoff = Backoff::new(max_retries);
    let mut opened = 0u64;
    loop {
        ledger.session_opened();
        let attempt = Link::open(&url, &args.timeouts).map_err(StreamError::from).and_then(|(mut link, hello)| {
            out.json(&hello);
            if let Some(msg) = config {
                send_config(&mut link, msg, out, &mut ledger)?;
            }
            Ok(link)
        });
        let mut link = match attempt {
            Ok(link) => link,
            // The configuration itself is refused: retrying cannot help.
            Err(e @ StreamError::Refused(_)) => return Err(e),
            Err(e) => {
                count_fault(&mut ledger.summary, &e);
                match backoff.failed().map(|wait| retry_after(&e).map_or(wait, |r| r.min(wait))) {
                    Some(wait) => {
                        out.note(&format!("cannot reach {url} ({e}); retrying in {} s", wait.as_secs()));
                        std::thread::sleep(wait);
                        continue;
                    }
                    None if opened == 0 => return Err(e),
                    None => {
                        out.note(&format!("cannot reach {url} ({e}); giving up"));
                        break;
                    }
                }
            }
        };
        if opened > 0 {
            ledger.summary.reconnects += 1;
            out.note(&format!(
                "reconnected to {url}: a new session{}",
                if config.is_some() { " (configuration sent again; tracks start anew)" } else { "" }
            ));
        }
        opened += 1;
        let before = ledger.summary.results;
        let end = session_loop(args, &mut link, feed, (pace, fps), out, &mut ledger);
        if ledger.summary.results > before {
            backoff.delivered();
        }
        let end = match end {
            Ok(end) => end,
            Err(e) => {
                ledger.session_ended();
                return Err(e);
            }
        };
        if !matches!(end, SessionEnd::Done) {
            ledger.session_ended();
        }
        match end {
            SessionEnd::Done => break,
            // A bad frame: not sent again; a new session at once goes on with the next frame
            // (after a backoff only when the session had delivered nothing).
            SessionEnd::Closed(1007, reason) if ledger.summary.results > before && max_retries != Some(0) => {
                out.note(&format!("the server refused a frame ({reason}, close 1007); going on with the next"));
            }
            SessionEnd::Closed(code, reason) => match backoff.failed() {
                Some(wait) => {
                    out.note(&format!(
                        "the server closed the session ({code} {reason}); reconnecting in {} s",
                        wait.as_secs()
                    ));
                    std::thread::sleep(wait);
                }
                None => break,
            },
            SessionEnd::Dead(fault) => {
                count_link_fault(&mut ledger.summary, &fault);
                match backoff.failed() {
                    Some(wait) => {
                        out.note(&format!("connection lost ({fault}); reconnecting in {} s", wait.as_secs()));
                        std::thread::sleep(wait);
                    }
                    None => return Err(StreamError::Link(fault)),
                }
            }
        }
    }
    let mut s = ledger.summary.clone();
    s.p50_ms = ledger.p50();
    Ok(s)
}

fn session_loop(
    args: &StreamArgs,
    link: &mut Link,
    feed: &Feed,
    (pace, fps): (Pace, f64),
    out: &Out<'_, '_>,
    ledger: &mut Ledger,
) -> Result<SessionEnd, StreamError> {
    let eos = args.config.is_some();
    let mut pacer = Pacer::new(pace, fps, args.count, args.drain_timeout, eos, Instant::now());
    let mut source_error = None;
    let mut last_progress = Instant::now();
    let end = loop {
        let now = Instant::now();
        let in_flight = ledger.in_flight();
        let step = pacer.step(now, in_flight, ledger.summary.sent);
        let mut wait = match step {
            Step::Done => break SessionEnd::Done,
            Step::Wait(d) => d,
            Step::EndOfStream => {
                if let Err(f) = link.send(Message::text(r#"{"type":"end_of_stream"}"#)) {
                    break SessionEnd::Dead(f);
                }
                TURN
            }
            Step::Send => {
                // Nothing to read while nothing is in flight: sleep on the feed instead.
                let idle = if in_flight == 0 { TURN } else { Duration::ZERO };
                match feed.wait_take(idle) {
                    Taken::Frame(frame) => {
                        if let Err(f) = link.send(Message::Binary(frame)) {
                            break SessionEnd::Dead(f);
                        }
                        ledger.sent(Instant::now());
                        pacer.sent(now);
                    }
                    Taken::Ended(r) => {
                        source_error = r.err();
                        pacer.source_ended(now);
                    }
                    Taken::Empty => {}
                }
                // Read what came back before the next send, so a fast source (`--fps 0`)
                // never leaves the results unread and the server's write buffer never fills.
                Duration::from_millis(if ledger.in_flight() > 0 { 5 } else { 1 })
            }
        };
        if pacer.draining() {
            wait = wait.min(TURN);
        }
        let text = match link.recv(wait, ledger.in_flight()) {
            Ok(Incoming::Text(t)) => t,
            Ok(Incoming::Nothing) => continue,
            Ok(Incoming::Closed(code, reason)) => {
                ledger.summary.closed_by_server = Some((code, reason.clone()));
                if pacer.draining() && ledger.in_flight() == 0 {
                    break SessionEnd::Done;
                }
                break SessionEnd::Closed(code, reason);
            }
            Err(f) => break SessionEnd::Dead(f),
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| StreamError::Protocol(text.clone()))?;
        let reply = ledger.take(&v, Instant::now());
        match &reply {
            Reply::Unknown(kind) => note_unknown(out, ledger, kind),
            Reply::EndOfStream => pacer.eos = Eos::Answered,
            _ => {}
        }
        if !matches!(reply, Reply::Unknown(_)) {
            let latency = match reply {
                Reply::Result(l) => Some(l),
                _ => None,
            };
            out.message(&text, &v, latency);
        }
        ledger.summary.skipped = feed.skipped();
        out.progress(&mut last_progress, &ledger.summary);
    };
    if matches!(end, SessionEnd::Done) && ledger.summary.closed_by_server.is_none() {
        link.close();
    }
    match source_error {
        Some(e) => Err(e.into()),
        None => Ok(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_503_says_when_to_come_back() {
        let http = |status: u16, retry: Option<&str>| {
            let mut r = tungstenite::http::Response::builder().status(status);
            if let Some(v) = retry {
                r = r.header("Retry-After", v);
            }
            let e = tungstenite::Error::Http(r.body(None).unwrap());
            StreamError::Connect(ConnectError::Ws(Box::new(e)))
        };
        assert_eq!(retry_after(&http(503, Some("1"))), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(&http(503, Some("0"))), Some(Duration::from_secs(1)), "at least 1 s");
        assert_eq!(retry_after(&http(503, None)), None);
        assert_eq!(retry_after(&http(503, Some("soon"))), None);
        assert_eq!(retry_after(&StreamError::Protocol("x".into())), None);
    }

    #[test]
    fn summary_ok_needs_every_frame_accounted_for() {
        let mut s = Summary { sent: 3, results: 2, dropped: 1, ..Summary::default() };
        assert!(s.ok());
        s.closed_by_server = Some((1007, "corrupt".into()));
        assert!(!s.ok());
        let s = Summary { sent: 3, results: 2, ..Summary::default() };
        assert!(!s.ok());
    }
}
