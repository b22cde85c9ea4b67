//! `framewire stream`: the command-line client for scripts. It streams JPEG frames to a server
//! at a chosen rate and pipeline and prints what comes back.
//!
//! Sources: a directory of JPEGs (name order; `--loop` cycles it), one JPEG file (looped), or
//! `-` for an MJPEG byte stream on stdin (concatenated JPEGs, as `ffmpeg -f mjpeg -` or a
//! camera's MJPEG pipe give), split into frames by [`MjpegSplitter`].
//! Output: every server message as one JSON line on stdout (`--output json`, the default, for
//! machines), or a compact line per result plus a progress line on stderr (`--output human`).
//! The exit status is 0 only if every frame sent was answered, dropped or refused as the
//! protocol says, no `error` message arrived and the session ended normally.
//!
//! `--config FILE.json` sends the file as a `configure` message before the first frame (its
//! `"type"` may be left out) and waits for `configured`: an `invalid_config` answer ends the
//! run with the server's `"<field>: <why>"`. After the last frame it sends `end_of_stream` and
//! prints the answer (live tracks ended, final counts). With `--output human` each event is a
//! line of its own.
//!
//! One thread talks to the socket (a blocking tungstenite socket cannot be shared between a
//! reader and a writer thread): it sends on schedule and reads with a short timeout in between.
//! A second thread reads the source into a channel of depth 2, so a slow pipe never stalls the
//! socket.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

use super::common::{connect, jpeg_files, session_url, ConnectError, Ws};
use super::mjpeg::{MjpegError, MjpegSplitter};
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

/// `framewire stream` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// What to send: a directory of `.jpg`/`.jpeg` files (name order), one JPEG file (looped),
    /// or `-` for an MJPEG byte stream (concatenated JPEGs) on stdin.
    pub source: PathBuf,
    /// Server endpoint.
    #[arg(long, env = "FRAMEWIRE_URL", default_value = "ws://127.0.0.1:8080/ws/video/stream")]
    pub url: String,
    /// Frames per second to send. 0 = each frame as soon as the source has it (live pipes).
    #[arg(long, default_value_t = 10.0)]
    pub fps: f64,
    /// Pipeline to ask for; default: the server's default (`detect_ocr`).
    #[arg(long, value_enum)]
    pub pipeline: Option<PipelineKind>,
    /// Stop after this many frames. Default: a directory once (forever with `--loop`), a single
    /// file forever, stdin until it ends.
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
}

/// What went wrong while streaming.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The source could not be read (missing path, empty directory, unreadable file).
    #[error("cannot read frames from {path}: {why}")]
    Source {
        /// The source given.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The MJPEG stream on stdin broke (a frame over the size limit, or no JPEG structure).
    #[error("MJPEG stream: {0}")]
    Mjpeg(#[from] MjpegError),
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

/// What a stream run saw, printed as the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Frames sent.
    pub sent: u64,
    /// Results received.
    pub results: u64,
    /// Frames the server reported dropped.
    pub dropped: u64,
    /// `error` messages received (invalid frames, internal errors, unsupported messages).
    pub errors: u64,
    /// Events received (in results and in the end-of-stream answer).
    pub events: u64,
    /// The server's close code and reason, if it closed the session.
    pub closed_by_server: Option<(u16, String)>,
    /// Median latency (send → result), ms.
    pub p50_ms: f64,
}

impl Summary {
    /// True when the run should exit 0: everything accounted for, no errors, normal close.
    pub fn ok(&self) -> bool {
        self.errors == 0
            && self.results + self.dropped == self.sent
            && self.closed_by_server.as_ref().is_none_or(|(code, _)| *code == 1000)
    }

    /// One line for stderr.
    pub fn line(&self) -> String {
        let close = match &self.closed_by_server {
            Some((code, reason)) => format!(", server closed {code} {reason}"),
            None => String::new(),
        };
        let events = if self.events > 0 { format!(" events {}", self.events) } else { String::new() };
        format!(
            "sent {} results {} dropped {} errors {}{events} p50 {:.1} ms{close}",
            self.sent, self.results, self.dropped, self.errors, self.p50_ms
        )
    }
}

/// Frames from the source, in order, into `tx` (blocking when the socket side is behind).
fn read_source(args: &StreamArgs, tx: crossbeam_channel::Sender<Result<Vec<u8>, StreamError>>) {
    let limit = args.count.unwrap_or(u64::MAX);
    let src_err = |why: String| StreamError::Source { path: args.source.clone(), why };
    let mut sent = 0u64;
    if args.source.as_os_str() == "-" {
        let mut split = MjpegSplitter::new(io::stdin().lock(), args.max_frame_bytes);
        while sent < limit {
            match split.next_frame() {
                Ok(Some(f)) => {
                    if tx.send(Ok(f)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            }
            sent += 1;
        }
        return;
    }
    let files = if args.source.is_dir() {
        match jpeg_files(&args.source) {
            Ok(v) => v,
            Err(e) => {
                let _ = tx.send(Err(src_err(e.to_string())));
                return;
            }
        }
    } else {
        vec![args.source.clone()]
    };
    if files.is_empty() {
        let _ = tx.send(Err(src_err("no .jpg or .jpeg files".into())));
        return;
    }
    let cycle = !args.source.is_dir() || args.looped;
    let mut cache: Vec<Option<Vec<u8>>> = vec![None; files.len()];
    let mut i = 0usize;
    while sent < limit && (cycle || i < files.len()) {
        let k = i % files.len();
        let bytes = match &cache[k] {
            Some(b) => b.clone(),
            None => match std::fs::read(&files[k]) {
                Ok(b) => {
                    // Keep a looped single file (or a small set) in memory.
                    if files.len() <= 64 {
                        cache[k] = Some(b.clone());
                    }
                    b
                }
                Err(e) => {
                    let _ = tx.send(Err(StreamError::Source { path: files[k].clone(), why: e.to_string() }));
                    return;
                }
            },
        };
        if tx.send(Ok(bytes)).is_err() {
            return;
        }
        sent += 1;
        i += 1;
    }
}

fn set_timeout(ws: &mut Ws, wait: Duration) {
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        let _ = tcp.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
    }
}

/// A compact view of one result message.
fn human_line(v: &serde_json::Value, latency_ms: f64) -> String {
    let mut parts = Vec::new();
    for d in v["result"]["detections"].as_array().into_iter().flatten() {
        parts.push(format!("{} {:.2}", d["label"].as_str().unwrap_or("?"), d["score"].as_f64().unwrap_or(0.0)));
    }
    for t in v["result"]["texts"].as_array().into_iter().flatten() {
        parts.push(format!("{:?}", t["text"].as_str().unwrap_or("")));
    }
    let idx = v["frame_index"].as_u64().unwrap_or(0);
    format!("#{idx:<5} {latency_ms:7.1} ms  {}", if parts.is_empty() { "-".into() } else { parts.join(", ") })
}

/// One event as a line: `#frame type names…`.
fn event_line(e: &serde_json::Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("");
    let n = |k: &str| e[k].as_u64().map_or_else(String::new, |v| v.to_string());
    let who = format!("{} #{}", s("label"), n("track_id"));
    let at = |k: &str| format!("#{:<5}", n(k));
    match s("type") {
        "track_started" => format!("{} track_started {who}", at("frame_index")),
        "zone_entered" => format!("{} zone_entered {} {who}", at("frame_index"), s("zone")),
        "zone_exited" => {
            format!("{} zone_exited {} {who} after {} ms", at("frame_index"), s("zone"), n("dwell_ms"))
        }
        "line_crossed" => format!("{} line_crossed {} {} {who}", at("frame_index"), s("line"), s("direction")),
        "loitering" => format!("{} loitering {} {who} {} ms", at("frame_index"), s("zone"), n("dwell_ms")),
        "track_ended" => {
            let text = e["text"].as_str().map_or_else(String::new, |t| format!(" text {t:?}"));
            format!("{} track_ended {who} frames {}{text}", at("last_frame_index"), n("frames"))
        }
        other => format!("event {other}"),
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
fn send_config(ws: &mut Ws, msg: String, args: &StreamArgs, out: &mut dyn Write) -> Result<(), StreamError> {
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
                if args.output == Output::Json {
                    let _ = writeln!(out, "{text}");
                }
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

/// Stream `args.source` to the server, writing output lines to `out`; returns the summary.
pub fn run(args: &StreamArgs, out: &mut dyn Write) -> Result<Summary, StreamError> {
    let config = args.config.as_deref().map(configure_message).transpose()?;
    let (mut ws, hello) = connect(&session_url(&args.url, args.pipeline))?;
    if args.output == Output::Json {
        let _ = writeln!(out, "{hello}");
    }
    if let Some(msg) = config {
        send_config(&mut ws, msg, args, out)?;
    }
    let (tx, rx) = crossbeam_channel::bounded(2);
    let src_args = args.clone();
    let reader = std::thread::spawn(move || read_source(&src_args, tx));
    let result = session_loop(args, &mut ws, &rx, out);
    drop(rx);
    let _ = reader.join();
    result
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
    rx: &Receiver<Result<Vec<u8>, StreamError>>,
    out: &mut dyn Write,
) -> Result<Summary, StreamError> {
    let period = if args.fps > 0.0 { Duration::from_secs_f64(1.0 / args.fps) } else { Duration::ZERO };
    let mut s = Summary::default();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut latencies: Vec<f64> = Vec::new();
    let mut next = Instant::now();
    let mut drain_until: Option<Instant> = None;
    let mut source_error = None;
    let mut last_progress = Instant::now();
    // With `--config`: `end_of_stream` goes out once every frame is settled, and the run ends
    // with its answer.
    let mut eos = if args.config.is_some() { Eos::Due } else { Eos::Off };
    loop {
        let now = Instant::now();
        if drain_until.is_none() && now >= next {
            match rx.try_recv() {
                Ok(Ok(frame)) => {
                    ws.send(Message::Binary(frame))?;
                    sent_at.push(Instant::now());
                    s.sent += 1;
                    // Behind schedule (slow source): restart the schedule instead of bursting.
                    next = if next + period < now { now + period } else { next + period };
                    // No `continue`: read what came back before the next send, so a fast source
                    // (`--fps 0`) never leaves the results unread and the server's write buffer
                    // never fills.
                }
                Ok(Err(e)) => {
                    source_error = Some(e);
                    drain_until = Some(now + Duration::from_secs_f64(args.drain_timeout));
                }
                Err(TryRecvError::Disconnected) => {
                    drain_until = Some(now + Duration::from_secs_f64(args.drain_timeout));
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        let settled = s.results + s.dropped + s.errors >= s.sent;
        if let Some(until) = drain_until {
            if settled && eos == Eos::Due {
                ws.send(Message::text(r#"{"type":"end_of_stream"}"#))?;
                eos = Eos::Sent;
            }
            if (settled && eos != Eos::Sent) || now >= until {
                break;
            }
        }
        let wait = match drain_until {
            Some(until) => until.saturating_duration_since(now).min(Duration::from_millis(50)),
            None if now < next => next - now,
            None => Duration::from_millis(2),
        };
        set_timeout(ws, wait);
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(frame)) => {
                s.closed_by_server =
                    Some(frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.into())));
                break;
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                continue
            }
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => return Err(e.into()),
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| StreamError::Protocol(text.to_string()))?;
        let latency = v["frame_index"]
            .as_u64()
            .and_then(|i| sent_at.get(i as usize))
            .map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1000.0);
        let events = v["events"].as_array().map_or(&[][..], Vec::as_slice);
        s.events += events.len() as u64;
        match v["type"].as_str() {
            Some("result") => {
                s.results += 1;
                latencies.push(latency);
            }
            Some("frame_dropped") => s.dropped += 1,
            Some("error") => s.errors += 1,
            Some("slow_down") | Some("configured") => {}
            Some("end_of_stream") => eos = Eos::Answered,
            _ => return Err(StreamError::Protocol(text.to_string())),
        }
        match args.output {
            Output::Json => {
                let _ = writeln!(out, "{text}");
            }
            Output::Human => {
                match v["type"].as_str() {
                    Some("result") => {
                        let _ = writeln!(out, "{}", human_line(&v, latency));
                    }
                    Some("error") => eprintln!("\r\x1b[Kerror: {text}"),
                    _ => {}
                }
                for e in events {
                    let _ = writeln!(out, "{}", event_line(e));
                }
                if v["type"] == "end_of_stream" {
                    let _ = writeln!(out, "end_of_stream zones {} lines {}", v["zones"], v["lines"]);
                }
                if last_progress.elapsed() >= Duration::from_millis(250) {
                    last_progress = Instant::now();
                    eprint!("\r{}\x1b[K", s.line());
                }
            }
        }
    }
    if s.closed_by_server.is_none() {
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
    latencies.sort_by(f64::total_cmp);
    s.p50_ms = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    match source_error {
        Some(e) => Err(e),
        None => Ok(s),
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
