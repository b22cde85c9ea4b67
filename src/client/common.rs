//! What both clients (`framewire stream` and `framewire bench`) share: the socket type, the
//! session URL, the deadlines of every step of talking to a server ([`Timeouts`]) and the
//! connect-and-greet step under them, the frame directory listing and the percentiles.
//!
//! Every blocking wait on a server has a deadline: a link that dies without a reset (a Wi-Fi
//! drop, a NAT mapping that expired, a host that lost power) sends nothing, so TCP alone would
//! never notice it, and a client without deadlines would wait forever.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

use crate::protocol::PipelineKind;

/// A client's WebSocket (plain TCP: this build has no TLS; put a TLS-terminating proxy in front
/// of a `wss://` server, or run the client beside it).
pub type Ws = WebSocket<TcpStream>;

/// `SECS` as a duration: a positive number of seconds, at most a day.
pub fn seconds(v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{v}`: a number of seconds, more than 0 and at most 86400")),
    }
}

/// How long each step of talking to a server may take. The defaults are far above what a
/// healthy server and link need (see each), so reaching one means the server or the link is
/// gone: the client then closes the socket and connects again (`stream`) or fails (`bench`).
#[derive(Debug, Clone, Copy, PartialEq, clap::Args)]
pub struct Timeouts {
    /// Seconds to open the TCP connection to the server (loopback and LANs take milliseconds;
    /// 10 s covers a slow mobile link).
    #[arg(long = "connect-timeout", value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub connect: Duration,
    /// Seconds from the TCP connection to the server's `session_started`: the upgrade and the
    /// greeting (a server answers in milliseconds; one still loading its models answers 503 at
    /// once).
    #[arg(long = "handshake-timeout", value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub handshake: Duration,
    /// Seconds with a frame in flight and no message from the server: the link is dead. A
    /// healthy server answers every frame (a result, `frame_dropped` or an error) within its
    /// queue wait plus one pipeline run: under a second per frame on the slowest engine, tens
    /// of seconds only for a server with hundreds of sessions per core.
    #[arg(long = "answer-timeout", value_name = "SECS", default_value = "30", value_parser = seconds)]
    pub answer: Duration,
    /// Seconds of silence, with nothing in flight (a paused camera), before the client pings;
    /// the server's pong (or any message) must come within as long again, else the link is
    /// dead. The pings also keep the session from the server's `--idle-timeout`.
    #[arg(long = "ping-interval", value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub ping: Duration,
    /// Seconds a write to the socket may block (the server stopped reading, or the link
    /// stopped carrying): the link is dead.
    #[arg(long = "write-timeout", value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let s = Duration::from_secs;
        Timeouts { connect: s(10), handshake: s(10), answer: s(30), ping: s(10), write: s(10) }
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a `ws://` URL this client can reach.
    #[error("{0}")]
    Url(String),
    /// No TCP connection (refused, unreachable, no such host).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// No TCP connection within `--connect-timeout`.
    #[error("no TCP connection within {} s", .0.as_secs_f64())]
    ConnectTimeout(Duration),
    /// The server took the connection but did not upgrade and greet within
    /// `--handshake-timeout` (a server or proxy that accepts and then says nothing).
    #[error("no answer to the upgrade within {} s", .0.as_secs_f64())]
    HandshakeTimeout(Duration),
    /// The upgrade failed (an HTTP error before it, I/O).
    #[error("{0}")]
    Ws(Box<tungstenite::Error>),
    /// The server's first message was not `session_started`.
    #[error("expected session_started, got: {0}")]
    NotStarted(String),
}

impl From<tungstenite::Error> for ConnectError {
    fn from(e: tungstenite::Error) -> Self {
        ConnectError::Ws(Box::new(e))
    }
}

/// The stream endpoint `url` with `?pipeline=` when one is chosen.
pub fn session_url(url: &str, pipeline: Option<PipelineKind>) -> String {
    match pipeline {
        Some(p) => format!("{url}?pipeline={}", p.as_str()),
        None => url.to_string(),
    }
}

/// Whether an I/O error is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` ran out).
pub fn timed_out(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Open a session: connect (within `t.connect`), upgrade and read the `session_started`
/// message (within `t.handshake`), which is returned. The socket keeps `t.write` as its write
/// timeout. Host names are resolved by the system's resolver, which has deadlines of its own.
pub fn connect(url: &str, t: &Timeouts) -> Result<(Ws, String), ConnectError> {
    let request = url.into_client_request()?;
    let uri = request.uri();
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(ConnectError::Url(format!(
                "{url}: wss:// needs TLS, which this client does not have (use ws://, e.g. beside a TLS proxy)"
            )))
        }
        _ => return Err(ConnectError::Url(format!("{url}: not a ws:// URL"))),
    }
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(80);
    let mut last = None;
    let mut tcp = None;
    for addr in (host.as_str(), port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, t.connect) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                last = Some(ConnectError::ConnectTimeout(t.connect))
            }
            Err(e) => last = Some(ConnectError::Io(e)),
        }
    }
    let Some(tcp) = tcp else {
        return Err(last.unwrap_or_else(|| ConnectError::Url(format!("{url}: {host} has no address"))));
    };
    let _ = tcp.set_nodelay(true);
    tcp.set_write_timeout(Some(t.write))?;
    let deadline = Instant::now() + t.handshake;
    let left = || deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
    let timeout = ConnectError::HandshakeTimeout(t.handshake);
    tcp.set_read_timeout(Some(t.handshake))?;
    let mut round = tungstenite::client::client(request, tcp);
    let mut ws = loop {
        match round {
            Ok((ws, _)) => break ws,
            Err(HandshakeError::Interrupted(mut mid)) => {
                let Some(left) = left() else { return Err(timeout) };
                mid.get_mut().get_mut().set_read_timeout(Some(left))?;
                round = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(e.into()),
        }
    };
    loop {
        let Some(left) = left() else { return Err(timeout) };
        ws.get_mut().set_read_timeout(Some(left))?;
        match ws.read() {
            Ok(Message::Text(t)) if t.contains("\"session_started\"") => return Ok((ws, t.to_string())),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(m) => return Err(ConnectError::NotStarted(m.to_string())),
            Err(e) if timed_out(&e) => return Err(timeout),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The `.jpg` / `.jpeg` files of `dir`, in name order.
pub fn jpeg_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg")))
        .collect();
    v.sort();
    Ok(v)
}

/// Latency percentiles in ms.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of the finite samples in `v` (nearest rank); NaN when there are none.
    pub fn of(mut v: Vec<f64>) -> Percentiles {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        let at = |p: f64| if v.is_empty() { f64::NAN } else { v[((v.len() - 1) as f64 * p).round() as usize] };
        Percentiles {
            n: v.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank_and_skip_nan() {
        let p = Percentiles::of((1..=100).map(f64::from).chain([f64::NAN]).collect());
        assert_eq!((p.n, p.p50, p.p90, p.p99, p.max), (100, 51.0, 90.0, 99.0, 100.0));
        assert!(Percentiles::of(vec![]).p50.is_nan());
    }
}
