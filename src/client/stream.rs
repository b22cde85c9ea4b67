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
//! One thread talks to each socket (a blocking tungstenite socket cannot be shared between a
//! reader and a writer thread): it sends when the pace allows and reads with a short timeout in
//! between. A second thread reads the source into the bounded [`Feed`].

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

use super::backoff::Backoff;
use super::common::{connect, session_url, ConnectError, Ws};
use super::output::{event_line, human_line, Out};
pub use super::output::{Report, Summary};
use super::source::{self, Feed, FfmpegOptions, SourceError, SourceKind, SourceSpec, Taken};
use crate::protocol::control::MAX_CONTROL_BYTES;
use crate::protocol::PipelineKind;

/// How `framewire stream` prints what the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Each server message as one JSON line on stdout, verbatim.
    Json,
    /// One compact line per result on stdout, a progress line and a summary on stderr.
    Human,
}

/// When `framewire stream` sends the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// At most one frame in flight; the newest frame when the answer comes (older ones are
    /// dropped here). The default for cameras (URLs and devices).
    Server,
    /// At `--fps`, whatever the server does (it drops what it cannot take). The default for
    /// files, directories and stdin.
    Fps,
}

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
    /// Connecting or talking to the server failed (refused, HTTP error before the upgrade, I/O).
    #[error("server: {0}")]
    Server(Box<tungstenite::Error>),
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

impl From<tungstenite::Error> for StreamError {
    fn from(e: tungstenite::Error) -> Self {
        StreamError::Server(Box::new(e))
    }
}

impl From<ConnectError> for StreamError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Ws(e) => StreamError::Server(e),
            ConnectError::NotStarted(m) => StreamError::Protocol(m),
        }
    }
}

fn set_timeout(ws: &mut Ws, wait: Duration) {
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        let _ = tcp.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
    }
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

/// Send `msg` and read until the server's `configured` (printed as JSON output) or its refusal.
fn send_config(ws: &mut Ws, msg: &str, args: &StreamArgs, out: &Out<'_, '_>) -> Result<(), StreamError> {
    ws.send(Message::text(msg))?;
    let until = Instant::now() + Duration::from_secs_f64(args.drain_timeout.max(1.0));
    loop {
        set_timeout(ws, until.saturating_duration_since(Instant::now()));
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(f)) => {
                return Err(StreamError::Protocol(format!("closed before configured: {f:?}")));
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                return Err(StreamError::Protocol("no answer to the configure message".into()));
            }
            Err(e) => return Err(e.into()),
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| StreamError::Protocol(text.to_string()))?;
        match v["type"].as_str() {
            Some("configured") => {
                out.json(&text);
                return Ok(());
            }
            Some("error") => {
                let detail = v["detail"].as_str().unwrap_or_default();
                return Err(StreamError::Refused(format!("{} {detail}", v["error"].as_str().unwrap_or("?"))));
            }
            _ => return Err(StreamError::Protocol(text.to_string())),
        }
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

/// Latencies kept for the summary's p50 (the most recent; a camera may stream for weeks).
const MAX_LATENCIES: usize = 10_000;

/// How one session ended.
enum SessionEnd {
    /// The source ended (or `--count` was reached) and the frames sent were answered.
    Done,
    /// The server closed the session (code, reason) while the source went on.
    Closed(u16, String),
    /// The connection broke.
    Broken(String),
}

/// One source: its source thread, and sessions one after another (reconnecting per the retry
/// policy) until the source ends.
fn run_source(args: &StreamArgs, input: &str, config: Option<&str>, out: &Out<'_, '_>) -> Result<Summary, StreamError> {
    let kind = SourceKind::of(input);
    let pace = args.pace.unwrap_or(if kind.live() { Pace::Server } else { Pace::Fps });
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
        },
        max_retries,
        prefix: out.prefix(),
    };
    let feed = Feed::new(pace == Pace::Server);
    let reader = {
        let (spec, feed) = (spec.clone(), Arc::clone(&feed));
        std::thread::spawn(move || source::run(&spec, &feed))
    };
    let result = sessions(args, config, &feed, pace, max_retries, out);
    feed.stop();
    let _ = reader.join();
    let mut s = result?;
    s.skipped = feed.skipped();
    Ok(s)
}

fn sessions(
    args: &StreamArgs,
    config: Option<&str>,
    feed: &Feed,
    pace: Pace,
    max_retries: Option<u32>,
    out: &Out<'_, '_>,
) -> Result<Summary, StreamError> {
    let url = session_url(&args.url, args.pipeline);
    let mut s = Summary::default();
    let mut latencies: VecDeque<f64> = VecDeque::new();
    let mut backoff = Backoff::new(max_retries);
    let mut opened = 0u64;
    loop {
        let attempt = connect(&url).map_err(StreamError::from).and_then(|(mut ws, hello)| {
            out.json(&hello);
            if let Some(msg) = config {
                send_config(&mut ws, msg, args, out)?;
            }
            Ok(ws)
        });
        let mut ws = match attempt {
            Ok(ws) => ws,
            // The configuration itself is refused: retrying cannot help.
            Err(e @ StreamError::Refused(_)) => return Err(e),
            Err(e) => match backoff.failed() {
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
            },
        };
        if opened > 0 {
            s.reconnects += 1;
            out.note(&format!(
                "reconnected to {url}: a new session{}",
                if config.is_some() { " (configuration sent again; tracks start anew)" } else { "" }
            ));
        }
        opened += 1;
        s.closed_by_server = None;
        let before = s.results;
        let end = session_loop(args, &mut ws, feed, pace, out, &mut s, &mut latencies)?;
        if s.results > before {
            backoff.delivered();
        }
        match end {
            SessionEnd::Done => break,
            // A bad frame: not sent again; a new session at once goes on with the next frame
            // (after a backoff only when the session had delivered nothing).
            SessionEnd::Closed(1007, reason) if s.results > before && max_retries != Some(0) => {
                out.note(&format!("the server refused a frame ({reason}, close 1007); going on with the next"));
                continue;
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
            SessionEnd::Broken(why) => match backoff.failed() {
                Some(wait) => {
                    out.note(&format!("connection lost ({why}); reconnecting in {} s", wait.as_secs()));
                    std::thread::sleep(wait);
                }
                None => return Err(StreamError::Protocol(format!("connection lost: {why}"))),
            },
        }
    }
    let mut sorted = Vec::from(latencies);
    sorted.sort_by(f64::total_cmp);
    s.p50_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    Ok(s)
}

/// Where `end_of_stream` stands in a `--config` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eos {
    /// No `--config`: not sent.
    Off,
    /// To send once every frame is settled.
    Due,
    /// Sent; waiting for the answer.
    Sent,
    /// Answered.
    Answered,
}

fn session_loop(
    args: &StreamArgs,
    ws: &mut Ws,
    feed: &Feed,
    pace: Pace,
    out: &Out<'_, '_>,
    s: &mut Summary,
    latencies: &mut VecDeque<f64>,
) -> Result<SessionEnd, StreamError> {
    let period =
        if args.fps > 0.0 && pace == Pace::Fps { Duration::from_secs_f64(1.0 / args.fps) } else { Duration::ZERO };
    // This session's frames not answered yet: index → send time (bounded by what the server
    // holds: each frame sent gets one answer), and the next frame's index.
    let mut in_flight: HashMap<u64, Instant> = HashMap::new();
    let mut next_index = 0u64;
    let mut next = Instant::now();
    let mut drain_until: Option<Instant> = None;
    let mut source_error = None;
    let mut last_progress = Instant::now();
    let limit = if pace == Pace::Server { args.count.unwrap_or(u64::MAX) } else { u64::MAX };
    // With `--config`: `end_of_stream` goes out once every frame is settled, and the run ends
    // with its answer.
    let mut eos = if args.config.is_some() { Eos::Due } else { Eos::Off };
    let end = loop {
        let now = Instant::now();
        let may_send = match pace {
            Pace::Fps => now >= next,
            Pace::Server => in_flight.is_empty(),
        };
        if drain_until.is_none() && s.sent >= limit {
            drain_until = Some(now + Duration::from_secs_f64(args.drain_timeout));
        }
        if drain_until.is_none() && may_send {
            match feed.take() {
                Taken::Frame(frame) => {
                    if let Err(e) = ws.send(Message::Binary(frame)) {
                        break SessionEnd::Broken(e.to_string());
                    }
                    in_flight.insert(next_index, Instant::now());
                    next_index += 1;
                    s.sent += 1;
                    // Behind schedule (slow source): restart the schedule instead of bursting.
                    next = if next + period < now { now + period } else { next + period };
                    // No `continue`: read what came back before the next send, so a fast source
                    // (`--fps 0`) never leaves the results unread and the server's write buffer
                    // never fills.
                }
                Taken::Ended(r) => {
                    if let Err(e) = r {
                        source_error = Some(e);
                    }
                    drain_until = Some(now + Duration::from_secs_f64(args.drain_timeout));
                }
                Taken::Empty => {}
            }
        }
        let settled = in_flight.is_empty();
        if let Some(until) = drain_until {
            if settled && eos == Eos::Due {
                if let Err(e) = ws.send(Message::text(r#"{"type":"end_of_stream"}"#)) {
                    break SessionEnd::Broken(e.to_string());
                }
                eos = Eos::Sent;
            }
            if (settled && eos != Eos::Sent) || now >= until {
                break SessionEnd::Done;
            }
        }
        let wait = match drain_until {
            Some(until) => until.saturating_duration_since(now).min(Duration::from_millis(50)),
            None if pace == Pace::Fps && now < next => next - now,
            None if pace == Pace::Server && !settled => Duration::from_millis(50),
            None => Duration::from_millis(2),
        };
        set_timeout(ws, wait);
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.into()));
                s.closed_by_server = Some((code, reason.clone()));
                if drain_until.is_some() && settled {
                    break SessionEnd::Done;
                }
                break SessionEnd::Closed(code, reason);
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                continue
            }
            Err(tungstenite::Error::ConnectionClosed) => break SessionEnd::Broken("closed".into()),
            Err(e) => break SessionEnd::Broken(e.to_string()),
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| StreamError::Protocol(text.to_string()))?;
        // A result, a drop or a frame's error answers that frame.
        let answered = match v["type"].as_str() {
            Some("result" | "frame_dropped" | "error") => v["frame_index"].as_u64().and_then(|i| in_flight.remove(&i)),
            _ => None,
        };
        let latency = answered.map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1000.0);
        let events = v["events"].as_array().map_or(&[][..], Vec::as_slice);
        s.events += events.len() as u64;
        match v["type"].as_str() {
            Some("result") => {
                s.results += 1;
                if latencies.len() == MAX_LATENCIES {
                    latencies.pop_front();
                }
                latencies.push_back(latency);
            }
            Some("frame_dropped") => s.dropped += 1,
            Some("error") => s.errors += 1,
            Some("slow_down") | Some("configured") => {}
            Some("end_of_stream") => eos = Eos::Answered,
            _ => return Err(StreamError::Protocol(text.to_string())),
        }
        out.json(&text);
        if args.output == Output::Human {
            match v["type"].as_str() {
                Some("result") => out.human(&human_line(&v, latency)),
                Some("error") => out.note(&format!("error: {text}")),
                _ => {}
            }
            for e in events {
                out.human(&event_line(e));
            }
            if v["type"] == "end_of_stream" {
                out.human(&format!("end_of_stream zones {} lines {}", v["zones"], v["lines"]));
            }
            if last_progress.elapsed() >= Duration::from_millis(250) {
                last_progress = Instant::now();
                let mut line = s.clone();
                line.skipped = feed.skipped();
                eprint!("\r{}{}\x1b[K", out.prefix(), line.line());
            }
        }
    };
    if !matches!(end, SessionEnd::Done) {
        s.lost += in_flight.len() as u64;
    }
    if matches!(end, SessionEnd::Done) && s.closed_by_server.is_none() {
        let _ = ws.close(None);
        // Read until the server's close reply (or a short timeout), so the close is clean.
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            set_timeout(ws, Duration::from_millis(100));
            match ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
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
    fn summary_ok_needs_every_frame_accounted_for() {
        let mut s = Summary { sent: 3, results: 2, dropped: 1, ..Summary::default() };
        assert!(s.ok());
        s.closed_by_server = Some((1007, "corrupt".into()));
        assert!(!s.ok());
        let s = Summary { sent: 3, results: 2, ..Summary::default() };
        assert!(!s.ok());
    }
}
