//! What both clients (`framewire stream` and `framewire bench`) share: the socket type, the
//! session URL, the connect-and-greet step, the frame directory listing and the percentiles.

use std::net::TcpStream;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::protocol::PipelineKind;

/// A client's WebSocket.
pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Connecting or the upgrade failed (refused, HTTP error before the upgrade, I/O).
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

/// Open a session: connect, upgrade, and read the `session_started` message (returned).
pub fn connect(url: &str) -> Result<(Ws, String), ConnectError> {
    let (mut ws, _) = tungstenite::connect(url)?;
    match ws.read()? {
        Message::Text(t) if t.contains("\"session_started\"") => Ok((ws, t.to_string())),
        m => Err(ConnectError::NotStarted(m.to_string())),
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
