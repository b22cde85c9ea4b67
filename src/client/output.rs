//! How `framewire stream` prints: one writer shared by every source's thread (a whole line at a
//! time), a source's name around its JSON lines or before its human ones, notes on stderr, and
//! the compact human lines of a result and of an event, the progress line, and the run's
//! summary ([`Summary`], one per source in a [`Report`]).

use std::io::Write;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How `framewire stream` prints what the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Each server message as one JSON line on stdout, verbatim.
    Json,
    /// One compact line per result on stdout, a progress line and a summary on stderr.
    Human,
}

/// Where a source's lines go: stdout (shared by every source's thread, a line at a time) with
/// the source's name, and notes to stderr.
pub(super) struct Out<'a, 'w> {
    pub(super) sink: &'a Mutex<&'w mut (dyn Write + Send)>,
    pub(super) name: Option<String>,
    pub(super) output: Output,
}

impl Out<'_, '_> {
    /// A server message (JSON text) as the output wants it.
    pub(super) fn json(&self, text: &str) {
        if self.output != Output::Json {
            return;
        }
        let mut w = self.sink.lock();
        let _ = match &self.name {
            Some(n) => writeln!(w, "{{\"source\":{},\"message\":{text}}}", serde_json::Value::from(n.as_str())),
            None => writeln!(w, "{text}"),
        };
    }

    /// A human line (`--output human` only).
    pub(super) fn human(&self, line: &str) {
        if self.output != Output::Human {
            return;
        }
        let mut w = self.sink.lock();
        let _ = writeln!(w, "{}{line}", self.prefix());
    }

    /// A note on stderr.
    pub(super) fn note(&self, what: &str) {
        eprintln!("\r\x1b[Kframewire stream: {}{what}", self.prefix());
    }

    pub(super) fn prefix(&self) -> String {
        self.name.as_ref().map_or_else(String::new, |n| format!("[{n}] "))
    }

    /// A server message `v` (its JSON `text`), as the output wants it: the JSON line, or the
    /// human lines of a result (with its `latency`), an error, each event and the end of the
    /// stream.
    pub(super) fn message(&self, text: &str, v: &serde_json::Value, latency: Option<f64>) {
        self.json(text);
        if self.output != Output::Human {
            return;
        }
        match v["type"].as_str() {
            Some("result") => self.human(&human_line(v, latency.unwrap_or(f64::NAN))),
            Some("error") => self.note(&format!("error: {text}")),
            _ => {}
        }
        for e in v["events"].as_array().into_iter().flatten() {
            self.human(&event_line(e));
        }
        if v["type"] == "end_of_stream" {
            self.human(&format!("end_of_stream zones {} lines {}", v["zones"], v["lines"]));
        }
    }

    /// The progress line on stderr (`--output human`), at most every 250 ms (`last`).
    pub(super) fn progress(&self, last: &mut Instant, summary: &Summary) {
        if self.output == Output::Human && last.elapsed() >= Duration::from_millis(250) {
            *last = Instant::now();
            eprint!("\r{}{}\x1b[K", self.prefix(), summary.line());
        }
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

/// What a stream run saw, printed as the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Frames sent.
    pub sent: u64,
    /// Results received.
    pub results: u64,
    /// Frames the server reported dropped.
    pub dropped: u64,
    /// Frames dropped here before sending (`--pace server`: a newer one came first).
    pub skipped: u64,
    /// `--codec h264`: access units the server answered `keyframe_request` (no keyframe to
    /// decode from yet) or `frame_skipped` (no picture in them).
    pub not_decoded: u64,
    /// Frames sent to a session that ended before answering them (the server went away).
    pub lost: u64,
    /// Sessions opened again after the first (the server closed or went away).
    pub reconnects: u64,
    /// `error` messages received (invalid frames, internal errors, unsupported messages).
    pub errors: u64,
    /// Events received (in results and in the end-of-stream answer).
    pub events: u64,
    /// Messages skipped: a `type` this client does not know (a newer server's), or an answer
    /// for no frame in flight.
    pub unknown: u64,
    /// Connections not made within `--connect-timeout`.
    pub connect_timeouts: u64,
    /// Servers that took the connection but did not upgrade and greet within
    /// `--handshake-timeout`.
    pub handshake_timeouts: u64,
    /// Sessions with frames in flight and no message for `--answer-timeout`.
    pub answer_timeouts: u64,
    /// Idle sessions whose ping got no pong within `--ping-interval`.
    pub pong_timeouts: u64,
    /// Writes that blocked for `--write-timeout`.
    pub write_timeouts: u64,
    /// Camera restarts because no frame came for `--stall-timeout`.
    pub stalls: u64,
    /// The server's close code and reason, if it closed the last session.
    pub closed_by_server: Option<(u16, String)>,
    /// Median latency (send → result) of the last 10,000 results, ms.
    pub p50_ms: f64,
}

impl Summary {
    /// True when the run should exit 0: everything accounted for, no errors, normal close.
    pub fn ok(&self) -> bool {
        self.errors == 0
            && self.results + self.dropped + self.not_decoded + self.lost == self.sent
            && self.closed_by_server.as_ref().is_none_or(|(code, _)| *code == 1000)
    }

    /// One line for stderr.
    pub fn line(&self) -> String {
        let close = match &self.closed_by_server {
            Some((code, reason)) => format!(", server closed {code} {reason}"),
            None => String::new(),
        };
        let opt = |n: u64, what: &str| if n > 0 { format!(" {what} {n}") } else { String::new() };
        let faults: String = [
            (self.unknown, "unknown"),
            (self.connect_timeouts, "connect_timeouts"),
            (self.handshake_timeouts, "handshake_timeouts"),
            (self.answer_timeouts, "answer_timeouts"),
            (self.pong_timeouts, "pong_timeouts"),
            (self.write_timeouts, "write_timeouts"),
            (self.stalls, "stalls"),
        ]
        .iter()
        .map(|&(n, what)| opt(n, what))
        .collect();
        format!(
            "sent {} results {} dropped {}{}{}{}{} errors {}{}{faults} p50 {:.1} ms{close}",
            self.sent,
            self.results,
            self.dropped,
            opt(self.skipped, "skipped"),
            opt(self.not_decoded, "not_decoded"),
            opt(self.lost, "lost"),
            opt(self.reconnects, "reconnects"),
            self.errors,
            opt(self.events, "events"),
            self.p50_ms
        )
    }
}

/// What a whole run saw: one summary per source (named with `--source`).
#[derive(Debug, Default)]
pub struct Report {
    /// Each source's name (if named) and summary.
    pub sources: Vec<(Option<String>, Summary)>,
}

impl Report {
    /// Every source ended cleanly.
    pub fn ok(&self) -> bool {
        self.sources.iter().all(|(_, s)| s.ok())
    }

    /// The summary lines for stderr.
    pub fn lines(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|(n, s)| match n {
                Some(n) => format!("[{n}] {}", s.line()),
                None => s.line(),
            })
            .collect()
    }
}
