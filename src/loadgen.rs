//! `framewire bench`: the project's own load client, run against a live server.
//!
//! - `closed`: one session, send a frame, wait for its result, repeat (latency per frame);
//! - `open`: S sessions each offered F fps for T seconds, frames sent on schedule whatever the
//!   replies (overload behaviour: drops, latency trend);
//! - `idle`: S sessions opened and held (memory per idle session, given the server's pid).
//!
//! Frames come from a directory of JPEGs, cycled. Latency = send of frame N → its result.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// What went wrong while benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The frame directory could not be read or holds no `.jpg`.
    #[error("no frames in {0}")]
    NoFrames(PathBuf),
    /// Connecting or talking to the server failed.
    #[error("websocket: {0}")]
    Ws(Box<tungstenite::Error>),
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
    /// Server URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws/video/stream")]
    pub url: String,
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
    /// `open`/`idle`: seconds to run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// The server's pid, to report its RSS and thread count.
    #[arg(long)]
    pub pid: Option<u32>,
}

/// Load shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One session, send-wait-send.
    Closed,
    /// S sessions × F fps, on schedule.
    Open,
    /// S sessions held open, nothing sent.
    Idle,
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn load_frames(dir: &Path) -> Result<Vec<Vec<u8>>, BenchError> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| BenchError::NoFrames(dir.into()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg")))
        .collect();
    names.sort();
    let frames: Vec<Vec<u8>> = names.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if frames.is_empty() {
        return Err(BenchError::NoFrames(dir.into()));
    }
    Ok(frames)
}

fn connect(url: &str) -> Result<Ws, BenchError> {
    let (mut ws, _) = tungstenite::connect(url)?;
    match ws.read()? {
        Message::Text(t) if t.contains("\"session_started\"") => Ok(ws),
        m => Err(BenchError::Protocol(m.to_string())),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// RSS in KiB and thread count of `pid`, from `/proc`.
pub fn proc_stats(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

fn print_latencies(label: &str, lat: &mut [f64]) {
    lat.sort_by(f64::total_cmp);
    println!(
        "{label}: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
        lat.len(),
        percentile(lat, 0.5),
        percentile(lat, 0.9),
        percentile(lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}

fn is_result(t: &str) -> bool {
    t.starts_with("{\"type\":\"result\"")
}

/// Run the benchmark described by `args`, printing its report.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    let frames = load_frames(&args.frames)?;
    match args.mode {
        Mode::Closed => closed(args, &frames),
        Mode::Open => open(args, &frames),
        Mode::Idle => idle(args),
    }
}

fn closed(args: &BenchArgs, frames: &[Vec<u8>]) -> Result<(), BenchError> {
    let mut ws = connect(&args.url)?;
    let mut lat = Vec::with_capacity(args.count);
    let mut server_total = Vec::with_capacity(args.count);
    // Round trip minus the pipeline's own work (decode + detect) of the same frame: what the
    // server and the loopback add.
    let mut overhead = Vec::with_capacity(args.count);
    let started = Instant::now();
    for i in 0..args.count + 3 {
        let t = Instant::now();
        ws.send(Message::Binary(frames[i % frames.len()].clone()))?;
        loop {
            match ws.read()? {
                Message::Text(txt) if is_result(&txt) => {
                    if i >= 3 {
                        let rtt = t.elapsed().as_secs_f64() * 1000.0;
                        lat.push(rtt);
                        let v: serde_json::Value = serde_json::from_str(&txt).unwrap_or_default();
                        let tm = &v["timings_ms"];
                        let ms = |k: &str| tm[k].as_f64().unwrap_or(f64::NAN);
                        server_total.push(ms("total"));
                        overhead.push(rtt - ms("decode") - ms("detect"));
                    }
                    break;
                }
                Message::Text(txt) => return Err(BenchError::Protocol(txt)),
                _ => {}
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    print_latencies("closed-loop round trip", &mut lat);
    print_latencies("server-side total (arrival → result ready)", &mut server_total);
    print_latencies("overhead (round trip − decode − detect)", &mut overhead);
    println!("results/s: {:.2}", (args.count + 3) as f64 / secs);
    if let Some((rss, threads)) = args.pid.and_then(proc_stats) {
        println!("server rss={rss} KiB threads={threads}");
    }
    Ok(())
}

fn open(args: &BenchArgs, frames: &[Vec<u8>]) -> Result<(), BenchError> {
    let handles: Vec<_> = (0..args.sessions)
        .map(|s| {
            let (url, frames, fps, secs) = (args.url.clone(), frames.to_vec(), args.fps, args.seconds);
            std::thread::spawn(move || open_session(s, &url, &frames, fps, secs))
        })
        .collect();
    let mut all = Vec::new();
    let (mut sent, mut results, mut dropped, mut first, mut last) = (0, 0, 0, Vec::new(), Vec::new());
    let mut per_session = Vec::new();
    for h in handles {
        let r = h.join().map_err(|_| BenchError::Protocol("session thread panicked".into()))??;
        sent += r.sent;
        results += r.latencies.len();
        dropped += r.dropped;
        let third = r.latencies.len() / 3;
        first.extend_from_slice(&r.latencies[..third]);
        last.extend_from_slice(&r.latencies[r.latencies.len() - third..]);
        per_session.push(r.latencies.len());
        all.extend(r.latencies);
    }
    print_latencies("open-loop latency", &mut all);
    print_latencies("first third", &mut first);
    print_latencies("last third", &mut last);
    println!(
        "sent={sent} results={results} dropped={dropped} unaccounted={} results/s={:.2} per-session results={per_session:?}",
        sent as i64 - results as i64 - dropped as i64,
        results as f64 / args.seconds
    );
    if let Some((rss, threads)) = args.pid.and_then(proc_stats) {
        println!("server rss={rss} KiB threads={threads}");
    }
    Ok(())
}

struct OpenReport {
    sent: usize,
    dropped: usize,
    latencies: Vec<f64>,
}

fn open_session(s: usize, url: &str, frames: &[Vec<u8>], fps: f64, secs: f64) -> Result<OpenReport, BenchError> {
    let mut ws = connect(url)?;
    let period = Duration::from_secs_f64(1.0 / fps.max(0.001));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut sent_at: Vec<Instant> = Vec::new();
    let (mut dropped, mut latencies) = (0, Vec::new());
    let mut next = start + period.mul_f64((s as f64 * 0.37) % 1.0);
    loop {
        let now = Instant::now();
        if now >= next && now < end {
            ws.send(Message::Binary(frames[sent_at.len() % frames.len()].clone()))?;
            sent_at.push(Instant::now());
            next += period;
            continue;
        }
        if now >= end && latencies.len() + dropped >= sent_at.len() {
            break;
        }
        if now >= end + Duration::from_secs(10) {
            break;
        }
        let wait = if now < end { next.saturating_duration_since(now) } else { Duration::from_millis(50) };
        if let MaybeTlsStream::Plain(t) = ws.get_mut() {
            let _ = t.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                let idx = v["frame_index"].as_u64().unwrap_or(0) as usize;
                match v["type"].as_str() {
                    Some("result") => {
                        latencies.push(sent_at.get(idx).map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1000.0))
                    }
                    Some("frame_dropped") => dropped += 1,
                    Some("slow_down") => {}
                    _ => return Err(BenchError::Protocol(t)),
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(OpenReport { sent: sent_at.len(), dropped, latencies })
}

fn idle(args: &BenchArgs) -> Result<(), BenchError> {
    let before = args.pid.and_then(proc_stats);
    let mut held = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        held.push(connect(&args.url)?);
    }
    std::thread::sleep(Duration::from_secs_f64(args.seconds.min(30.0)));
    let during = args.pid.and_then(proc_stats);
    println!("idle sessions held: {}", held.len());
    if let (Some((r0, t0)), Some((r1, t1))) = (before, during) {
        println!(
            "server rss {r0} → {r1} KiB, threads {t0} → {t1}: {:.1} KiB per idle session",
            (r1 as f64 - r0 as f64) / held.len().max(1) as f64
        );
    }
    Ok(())
}
