//! Command line and configuration: every limit the server enforces, with its default and reason.
//!
//! `clap` parses flags (each with a `FRAMEWIRE_*` environment fallback) into [`ServeArgs`];
//! [`ServeArgs::validate`] checks them once and freezes them into a [`Config`] that the rest of
//! the server reads and never changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::protocol::PipelineKind;

/// Largest side a frame may declare, in pixels (libjpeg-style hard cap; not configurable).
pub const MAX_SIDE: u32 = 16_384;

/// `framewire`: real-time video inference over WebSocket.
#[derive(Debug, Parser)]
#[command(name = "framewire", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the WebSocket inference server.
    Serve(ServeArgs),
    /// Load-test a running server (closed loop, open loop, idle sessions).
    Bench(crate::loadgen::BenchArgs),
    /// Stream JPEG frames (a directory, one looped file, or MJPEG on stdin) to a server and
    /// print the results.
    Stream(crate::stream::StreamArgs),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `[2026-11-30T21:38:09Z INFO  framewire::session] session … end …` (env_logger's own).
    Text,
    /// One JSON object per line: `{"ts":"…","level":"INFO","target":"…","msg":"…"}`, for log
    /// shippers (Loki, Elasticsearch, CloudWatch).
    Json,
}

/// What the server does after a frame fails validation or decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnInvalid {
    /// Report the error, then close the session with 1007 (the protocol's default).
    Close,
    /// Report the error and keep the session open.
    Continue,
}

/// Flags of `framewire serve`. Each has an environment fallback named in its help.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Default 127.0.0.1:8080 (loopback: expose it deliberately).
    #[arg(long, env = "FRAMEWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory with the shipped models (`ssd_mobilenet_v2_coco.onnx`, `coco.names`).
    /// Default: `models` (the repository's folder, found when started from the repo root).
    #[arg(long, env = "FRAMEWIRE_MODELS", default_value = "models")]
    pub models: PathBuf,

    /// A user-supplied Ultralytics YOLO ONNX export (v5 `[1,N,5+C]` or v8/11 `[1,4+C,N]`)
    /// used instead of the shipped SSD detector. Class names: `coco.names` when C = 80.
    #[arg(long, env = "FRAMEWIRE_DETECTOR")]
    pub detector: Option<PathBuf>,

    /// Inference pool size in threads. Default 0 = number of CPU cores.
    #[arg(long, env = "FRAMEWIRE_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Largest accepted frame (one WebSocket message), in bytes. Default 8 MiB: a 4K
    /// camera JPEG is 1–3 MiB; anything bigger is refused before it is buffered whole.
    #[arg(long, env = "FRAMEWIRE_MAX_FRAME_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest accepted frame area, in pixels (width × height, from the JPEG header).
    /// Default 40 000 000 (40 MP): bounds decode memory to ~120 MB per frame in flight.
    #[arg(long, env = "FRAMEWIRE_MAX_PIXELS", default_value_t = 40_000_000)]
    pub max_pixels: u64,

    /// Most concurrent sessions; more get HTTP 503 with `Retry-After`. Default 256.
    #[arg(long, env = "FRAMEWIRE_MAX_SESSIONS", default_value_t = 256)]
    pub max_sessions: usize,

    /// Close a session that sent nothing for this many seconds (close 1000 `idle_timeout`).
    /// Default 60 s.
    #[arg(long, env = "FRAMEWIRE_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,

    /// Time a client has to complete the WebSocket handshake, in seconds. Default 5 s
    /// (a slow or silent client cannot hold a thread longer).
    #[arg(long, env = "FRAMEWIRE_HANDSHAKE_TIMEOUT", default_value_t = 5.0)]
    pub handshake_timeout: f64,

    /// Minimum detection score (0..1) reported. Default 0.5.
    #[arg(long, env = "FRAMEWIRE_MIN_SCORE", default_value_t = 0.5)]
    pub min_score: f32,

    /// What to do after an invalid frame. Default `close` (error, then close 1007).
    #[arg(long, env = "FRAMEWIRE_ON_INVALID", value_enum, default_value_t = OnInvalid::Close)]
    pub on_invalid: OnInvalid,

    /// On SIGINT/SIGTERM, how long to let in-flight frames finish, in seconds. Default 5 s.
    #[arg(long, env = "FRAMEWIRE_SHUTDOWN_GRACE", default_value_t = 5.0)]
    pub shutdown_grace: f64,

    /// Pipeline of sessions that do not ask for one with `?pipeline=`: `detect`, `ocr` or
    /// `detect_ocr`. Default `detect_ocr` (object detection, then OCR, linked).
    #[arg(long, env = "FRAMEWIRE_PIPELINE", value_enum, default_value_t = PipelineKind::DetectOcr)]
    pub pipeline: PipelineKind,

    /// Longest side of the text detector's input, in pixels (multiple of 32, 64..=2048). Larger
    /// frames are shrunk to fit (never enlarged). Default 960, as in the reference.
    #[arg(long, env = "FRAMEWIRE_OCR_MAX_SIDE", default_value_t = 960)]
    pub ocr_max_side: usize,

    /// Most text lines recognised per frame (the first in reading order). Default 64: bounds
    /// the recognizer's work on a frame full of text.
    #[arg(long, env = "FRAMEWIRE_OCR_MAX_LINES", default_value_t = 64)]
    pub ocr_max_lines: usize,

    /// For `detect` sessions, decode each JPEG straight to the smallest DCT-domain scale (1/2,
    /// 1/4, 1/8) that still covers the detector's input (e.g. a 1920×1080 frame decodes at
    /// 960×540 for the 300×300 SSD): less decode and resize work, same detections within the
    /// fidelity test's bounds. `false` feeds the detector full-size pixels exactly as the
    /// reference pipeline does. Default `true`. OCR always decodes at full size.
    #[arg(long, env = "FRAMEWIRE_SCALED_DECODE", default_value_t = true, action = clap::ArgAction::Set)]
    pub scaled_decode: bool,

    /// Most bytes of results buffered for a client that does not read them, in bytes; past
    /// it the session is closed. Default 1 MiB (hundreds of results).
    #[arg(long, env = "FRAMEWIRE_MAX_WRITE_BUFFER", default_value_t = 1024 * 1024)]
    pub max_write_buffer: usize,

    /// Log line format: `text` or `json`. Default `text`. Verbosity follows `RUST_LOG`
    /// (default `info`: start-up, one line per session start and end, warnings).
    #[arg(long, env = "FRAMEWIRE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag is outside the range the server can honour; the message names it.
    #[error("invalid --{flag}: {why}")]
    Invalid {
        /// The flag's name without dashes.
        flag: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// The validated, frozen server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// See [`ServeArgs::listen`].
    pub listen: SocketAddr,
    /// See [`ServeArgs::models`].
    pub models: PathBuf,
    /// See [`ServeArgs::detector`].
    pub detector: Option<PathBuf>,
    /// Inference pool threads (≥ 1, already resolved from 0 = cores).
    pub threads: usize,
    /// See [`ServeArgs::max_frame_bytes`].
    pub max_frame_bytes: usize,
    /// See [`ServeArgs::max_pixels`].
    pub max_pixels: u64,
    /// See [`MAX_SIDE`].
    pub max_side: u32,
    /// See [`ServeArgs::max_sessions`].
    pub max_sessions: usize,
    /// See [`ServeArgs::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`ServeArgs::handshake_timeout`].
    pub handshake_timeout: Duration,
    /// See [`ServeArgs::min_score`].
    pub min_score: f32,
    /// See [`ServeArgs::on_invalid`].
    pub on_invalid: OnInvalid,
    /// See [`ServeArgs::shutdown_grace`].
    pub shutdown_grace: Duration,
    /// See [`ServeArgs::max_write_buffer`].
    pub max_write_buffer: usize,
    /// See [`ServeArgs::pipeline`].
    pub pipeline: PipelineKind,
    /// See [`ServeArgs::ocr_max_side`].
    pub ocr_max_side: usize,
    /// See [`ServeArgs::ocr_max_lines`].
    pub ocr_max_lines: usize,
    /// See [`ServeArgs::scaled_decode`].
    pub scaled_decode: bool,
}

fn seconds(flag: &'static str, v: f64) -> Result<Duration, ConfigError> {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(ConfigError::Invalid { flag, why: format!("{v} is not in (0, 86400] seconds") });
    }
    Ok(Duration::from_secs_f64(v))
}

impl ServeArgs {
    /// Check every value once and freeze the result.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let bad = |flag, why: &str| Err(ConfigError::Invalid { flag, why: why.to_string() });
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > 1 << 30 {
            return bad("max-frame-bytes", "must be between 1 KiB and 1 GiB");
        }
        if self.max_pixels == 0 || self.max_pixels > u64::from(MAX_SIDE) * u64::from(MAX_SIDE) {
            return bad("max-pixels", "must be between 1 and 16384×16384");
        }
        if self.max_sessions == 0 || self.max_sessions > 100_000 {
            return bad("max-sessions", "must be between 1 and 100000");
        }
        if !(self.min_score.is_finite() && (0.0..=1.0).contains(&self.min_score)) {
            return bad("min-score", "must be within [0, 1]");
        }
        if self.threads > 1024 {
            return bad("threads", "must be at most 1024");
        }
        if !(64..=2048).contains(&self.ocr_max_side) || !self.ocr_max_side.is_multiple_of(32) {
            return bad("ocr-max-side", "must be a multiple of 32 within [64, 2048]");
        }
        if !(1..=1000).contains(&self.ocr_max_lines) {
            return bad("ocr-max-lines", "must be within [1, 1000]");
        }
        if self.max_write_buffer < 64 * 1024 {
            return bad("max-write-buffer", "must be at least 64 KiB");
        }
        let threads =
            if self.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { self.threads };
        Ok(Config {
            listen: self.listen,
            models: self.models.clone(),
            detector: self.detector.clone(),
            threads,
            max_frame_bytes: self.max_frame_bytes,
            max_pixels: self.max_pixels,
            max_side: MAX_SIDE,
            max_sessions: self.max_sessions,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            handshake_timeout: seconds("handshake-timeout", self.handshake_timeout)?,
            min_score: self.min_score,
            on_invalid: self.on_invalid,
            shutdown_grace: seconds("shutdown-grace", self.shutdown_grace)?,
            max_write_buffer: self.max_write_buffer,
            pipeline: self.pipeline,
            ocr_max_side: self.ocr_max_side,
            ocr_max_lines: self.ocr_max_lines,
            scaled_decode: self.scaled_decode,
        })
    }
}

impl Config {
    /// The defaults of `framewire serve` with no flags and no environment (for tests and
    /// embedding), listening on `listen`.
    pub fn defaults(listen: SocketAddr) -> Config {
        let args = ServeArgs::parse_from_defaults(listen);
        // The defaults are valid by construction; tested in `tests`.
        match args.validate() {
            Ok(c) => c,
            Err(e) => unreachable!("default configuration is invalid: {e}"),
        }
    }
}

impl ServeArgs {
    fn parse_from_defaults(listen: SocketAddr) -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut a = Only::parse_from(["framewire"]).args;
        a.listen = listen;
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::defaults("127.0.0.1:0".parse().unwrap());
        assert_eq!(c.max_frame_bytes, 8 * 1024 * 1024);
        assert_eq!(c.max_pixels, 40_000_000);
        assert_eq!(c.max_sessions, 256);
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.handshake_timeout, Duration::from_secs(5));
        assert_eq!(c.on_invalid, OnInvalid::Close);
        assert_eq!(c.pipeline, PipelineKind::DetectOcr);
        assert_eq!(c.ocr_max_side, 960);
        assert!(c.scaled_decode);
        assert!(c.threads >= 1);
    }

    #[test]
    fn pipeline_names_match_the_wire_names() {
        for name in ["detect", "ocr", "detect_ocr"] {
            let cli = Cli::parse_from(["framewire", "serve", "--pipeline", name]);
            let Command::Serve(a) = cli.command else { panic!() };
            assert_eq!(a.pipeline.as_str(), name);
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_name() {
        let cli = Cli::parse_from(["framewire", "serve", "--min-score", "1.5"]);
        let Command::Serve(a) = cli.command else { panic!() };
        let e = a.validate().unwrap_err().to_string();
        assert!(e.contains("--min-score"), "{e}");
        let cli = Cli::parse_from(["framewire", "serve", "--idle-timeout", "0"]);
        let Command::Serve(a) = cli.command else { panic!() };
        assert!(a.validate().unwrap_err().to_string().contains("--idle-timeout"));
    }
}
