//! Command line and configuration: every limit the server enforces, with its default and reason.
//!
//! `clap` parses the flags of `framewire serve` (each with a `FRAMEWIRE_*` environment fallback)
//! into [`ServeArgs`]; [`ServeArgs::validate`] checks them once and freezes them into a [`Config`]
//! that the rest of the server reads and never changes. The layers below keep their own limit
//! types with their own defaults (the JPEG validator's [`Limits`], the tracker's
//! [`TrackConfig`], the detector's [`DetectorOptions`]); this module only fills them. The
//! subcommands themselves are in [`crate::cli`], the clients' flags beside each client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::logging::LogFormat;
use crate::vision::detect::DetectorOptions;
pub use crate::vision::h264::DEFAULT_MAX_DECODER_BYTES;
use crate::vision::jpeg::Limits;
pub use crate::vision::jpeg::{DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SCANS, MAX_SIDE};

/// `--mmap-threshold auto` with tract: 8 MiB. tract allocates each operator's output and
/// scratch through the process's allocator, up to ~8 MiB at the common frame sizes: those must
/// stay on glibc's heaps, where they are reused (at 4 MiB a `detect_ocr` frame took ~40 % longer).
pub const MMAP_THRESHOLD_TRACT: usize = 8 << 20;
/// `--mmap-threshold auto` with ONNX Runtime: 4 MiB. ONNX Runtime keeps its activations in its
/// own arena, so only framewire's own frame buffers are concerned (speed within noise at 2, 4 and
/// glibc's own; a flood left RSS +216 MiB at 8 MiB, +6 to +14 MiB at 4).
pub const MMAP_THRESHOLD_ONNXRUNTIME: usize = 4 << 20;
/// `--trim-threshold`'s default: 64 MiB (what glibc's own moving threshold reaches; a lower one
/// hands back and faults in again the heap's top on every frame: tract's large frames took
/// ~25 % longer at 128 KiB).
pub const DEFAULT_TRIM_THRESHOLD: usize = 64 << 20;

/// `--mmap-threshold`: where glibc's allocator draws the line between heap blocks and blocks of
/// their own (see the flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmapThreshold {
    /// The engine's: [`MMAP_THRESHOLD_TRACT`] or [`MMAP_THRESHOLD_ONNXRUNTIME`].
    Auto,
    /// glibc's own, moving threshold (what framewire did before #29).
    Glibc,
    /// This many bytes.
    Bytes(usize),
}

impl MmapThreshold {
    /// The fixed threshold for `engine`, or `None` for glibc's own.
    pub fn bytes(self, engine: EngineKind) -> Option<usize> {
        match (self, engine) {
            (MmapThreshold::Glibc, _) => None,
            (MmapThreshold::Bytes(n), _) => Some(n),
            (MmapThreshold::Auto, EngineKind::Tract) => Some(MMAP_THRESHOLD_TRACT),
            (MmapThreshold::Auto, EngineKind::OnnxRuntime) => Some(MMAP_THRESHOLD_ONNXRUNTIME),
        }
    }
}

fn parse_mmap_threshold(v: &str) -> Result<MmapThreshold, String> {
    match v {
        "auto" => Ok(MmapThreshold::Auto),
        "glibc" => Ok(MmapThreshold::Glibc),
        n => match n.parse::<usize>() {
            Ok(n) if (64 << 10..=32 << 20).contains(&n) => Ok(MmapThreshold::Bytes(n)),
            _ => Err(format!("`{v}`: auto, glibc, or a number of bytes within [65536, 33554432]")),
        },
    }
}
use crate::policy::ReuseConfig;
use crate::vision::runtime::EngineKind;
use crate::vision::track::TrackConfig;
use crate::vision::PipelineKind;

/// Connections the admin listener (`--admin-listen`) serves at once; more are closed at once.
/// Probes and scrapes are short and few: 16 is plenty, and bounds what a flood there can hold.
pub const ADMIN_CONNECTIONS: usize = 16;

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

    /// A second address for `/healthz`, `/metrics` and `/sessions` only, with its own small
    /// connection budget ([`ADMIN_CONNECTIONS`]), so a flood on the public port cannot fail the
    /// probes. When set, `/sessions` (it lists client addresses) is no longer served on the
    /// public port. Default: none (everything on `--listen`).
    #[arg(long, env = "FRAMEWIRE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Serve the demo page at `GET /`. Default `true`.
    #[arg(long, env = "FRAMEWIRE_DEMO", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo: bool,

    /// Let the demo page's `?ws=` parameter send the visitor's camera to a WebSocket on another
    /// host than the page's. Default `false`: a link could otherwise stream a visitor's camera
    /// to a stranger's server.
    #[arg(long, env = "FRAMEWIRE_DEMO_REMOTE_WS", default_value_t = false, action = clap::ArgAction::Set)]
    pub demo_remote_ws: bool,

    /// Directory with the shipped models (`ssd_mobilenet_v2_coco.onnx`, `coco.names`).
    /// Default: `models` (the repository's folder, found when started from the repo root).
    #[arg(long, env = "FRAMEWIRE_MODELS", default_value = "models")]
    pub models: PathBuf,

    /// A user-supplied Ultralytics YOLO ONNX export (v5 `[1,N,5+C]` or v8/11 `[1,4+C,N]`)
    /// used instead of the shipped SSD detector. Class names: `coco.names` when C = 80.
    #[arg(long, env = "FRAMEWIRE_DETECTOR")]
    pub detector: Option<PathBuf>,

    /// The engine that runs the models: `tract` (pure Rust, embedded, nothing to install) or
    /// `onnxruntime` (ONNX Runtime from a shared library: ~2–3× faster on x86; see
    /// `--onnxruntime-lib`). Default `tract`.
    #[arg(long, env = "FRAMEWIRE_ENGINE", value_enum, default_value_t = EngineKind::Tract)]
    pub engine: EngineKind,

    /// The ONNX Runtime shared library for `--engine onnxruntime` (for example
    /// `onnxruntime/capi/libonnxruntime.so.1.32.0` from the `onnxruntime` PyPI wheel). Default:
    /// `ORT_DYLIB_PATH`, else `libonnxruntime.so` from the loader's search path.
    #[arg(long, env = "FRAMEWIRE_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,

    /// Class names for the detector, one a line (line N = class id N), instead of the export's
    /// own `names` metadata (or `coco.names` for the shipped SSD).
    #[arg(long, env = "FRAMEWIRE_LABELS")]
    pub labels: Option<PathBuf>,

    /// Class-wise NMS IoU threshold. Default: 0.7 for a YOLO export (Ultralytics' predict
    /// default), 0.6 for the shipped SSD (its exporter's). End-to-end exports run no NMS.
    #[arg(long, env = "FRAMEWIRE_NMS_IOU")]
    pub nms_iou: Option<f32>,

    /// Most detections per frame. Default: 300 for a YOLO export (Ultralytics' `max_det`), 100
    /// for the shipped SSD.
    #[arg(long, env = "FRAMEWIRE_MAX_DETECTIONS")]
    pub max_detections: Option<usize>,

    /// Frame workers (each frame runs on one; a frame that is alone also uses the idle cores).
    /// Default 0 = number of CPU cores.
    #[arg(long, env = "FRAMEWIRE_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Largest accepted frame (one WebSocket message), in bytes. Default 8 MiB: a 4K
    /// camera JPEG is 1–3 MiB; anything bigger is refused before it is buffered whole.
    #[arg(long, env = "FRAMEWIRE_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Largest accepted frame area, in pixels (width × height, from the JPEG header).
    /// Default 40 000 000 (40 MP): bounds decode memory to ~120 MB per frame in flight.
    #[arg(long, env = "FRAMEWIRE_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,

    /// Most scans a progressive frame may have; more is refused as `unsupported` from the
    /// header walk, before decoding. Default 32 (cameras and browsers write about a dozen at
    /// most). A progressive frame's decode cost is bounded by max-pixels × max-scans.
    #[arg(long, env = "FRAMEWIRE_MAX_SCANS", default_value_t = DEFAULT_MAX_SCANS)]
    pub max_scans: u32,

    /// Largest H.264 decoder memory a `?codec=h264` session may ask for, in bytes: its reference
    /// pictures, `(max_num_ref_frames + 1) × width × height × 1.5` from the stream's SPS,
    /// checked before decoding (more is refused as `too_many_pixels`). Default 32 MiB: 1080p
    /// with up to 9 reference frames (cameras and browsers use 1 to 4); 4K with 1.
    #[arg(long, env = "FRAMEWIRE_MAX_DECODER_BYTES", default_value_t = DEFAULT_MAX_DECODER_BYTES)]
    pub max_decoder_bytes: u64,

    /// Most control messages (`configure`, `end_of_stream`) a session may send a second, with a
    /// burst of as many; more are answered `rate_limited` and ignored (the session goes on).
    /// Default 20: a person drawing zones sends a few a second; parsing and checking one
    /// (up to 64 KiB, 32 zones of 64 points) costs up to ~1 ms, so this bounds a session's
    /// control work to ~2 % of a core.
    #[arg(long, env = "FRAMEWIRE_MAX_CONTROL_RATE", default_value_t = 20)]
    pub max_control_rate: u32,

    /// Most concurrent sessions; more get HTTP 503 with `Retry-After`. Default 256.
    #[arg(long, env = "FRAMEWIRE_MAX_SESSIONS", default_value_t = 256)]
    pub max_sessions: usize,

    /// Close a session that sent no byte for this many seconds while no frame of it is in
    /// flight (close 1000 `idle_timeout`). Bytes of a message still arriving count, so a large
    /// frame over a slow uplink is not cut off. Default 60 s.
    #[arg(long, env = "FRAMEWIRE_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,

    /// A message (a frame) must arrive whole within this many seconds of its first bytes, or
    /// the session is closed (1008 `message_timeout`): a client trickling bytes cannot hold a
    /// session and its buffer. Default 30 s (an 8 MiB frame then needs about 2.3 Mbit/s; camera
    /// frames of 50-500 KiB need 15-140 kbit/s).
    #[arg(long, env = "FRAMEWIRE_MESSAGE_TIMEOUT", default_value_t = 30.0)]
    pub message_timeout: f64,

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

    /// Allocations of at least this many bytes (a large frame's message, its decoded picture,
    /// the models' tensors at large sizes) get memory of their own from the system and give it
    /// back when freed (glibc's `M_MMAP_THRESHOLD`, fixed). glibc's own threshold rises to the
    /// largest block freed, so after one large frame the later ones came from heaps it never
    /// returned (a flood of 6.4 MiB frames left RSS 120–330 MiB up). `auto` (default): 8 MiB
    /// with tract, 4 MiB with ONNX Runtime; `glibc`: glibc's own; or a number of bytes.
    #[arg(long, env = "FRAMEWIRE_MMAP_THRESHOLD", default_value = "auto", value_parser = parse_mmap_threshold)]
    pub mmap_threshold: MmapThreshold,

    /// With a fixed `--mmap-threshold`: free memory at the top of a heap is handed back once it
    /// exceeds this many bytes (glibc's `M_TRIM_THRESHOLD`). Default 64 MiB (lower hands back
    /// and faults in the same pages on every frame).
    #[arg(long, env = "FRAMEWIRE_TRIM_THRESHOLD", default_value_t = DEFAULT_TRIM_THRESHOLD)]
    pub trim_threshold: usize,

    /// Track objects across frames in sessions that do not choose with `?track=`: detections
    /// get a `track_id` (ByteTrack). Default `false`.
    #[arg(long, env = "FRAMEWIRE_TRACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub track: bool,

    /// Tracking: a detection at or above this score takes part in the first association and
    /// may start a track. Default 0.5 (ByteTrack's `track_thresh`).
    #[arg(long, env = "FRAMEWIRE_TRACK_THRESH", default_value_t = 0.5)]
    pub track_thresh: f32,

    /// Tracking: an unmatched detection starts a new track only at or above this score.
    /// Default 0.6 (ByteTrack's `track_thresh + 0.1`).
    #[arg(long, env = "FRAMEWIRE_TRACK_NEW_THRESH", default_value_t = 0.6)]
    pub track_new_thresh: f32,

    /// Tracking: the smallest IoU of a track's predicted box and a detection that may match.
    /// Default 0.2 (ByteTrack's `match_thresh` 0.8 on `1 - IoU`).
    #[arg(long, env = "FRAMEWIRE_TRACK_MATCH_IOU", default_value_t = 0.2)]
    pub track_match_iou: f32,

    /// Tracking: the tracker sees every detection down to this score (ByteTrack's second,
    /// low-score association continues tracks through occlusion and blur with them), while the
    /// client still sees only those above `--min-score` / `?min_score=`. Default 0.1
    /// (ByteTrack's low bound); at most `--track-thresh`.
    #[arg(long, env = "FRAMEWIRE_TRACK_LOW_THRESH", default_value_t = 0.1)]
    pub track_low_thresh: f32,

    /// Tracking: processed frames a lost track is kept (and can be found again) before it is
    /// removed. Default 30 (ByteTrack's `track_buffer`).
    #[arg(long, env = "FRAMEWIRE_TRACK_BUFFER", default_value_t = 30)]
    pub track_buffer: u32,

    /// Work once (`ocr_reuse`): readings in a row that must agree with a track's consensus
    /// before its crop is not read again. Default 3 (one misread among them starts the count
    /// again).
    #[arg(long, env = "FRAMEWIRE_OCR_SETTLE_READINGS", default_value_t = 3)]
    pub ocr_settle_readings: u32,

    /// Work once: a settled track is read again once its box's linear size (√area) is this
    /// many times what it was at its last reading (it came closer). Default 1.25.
    #[arg(long, env = "FRAMEWIRE_OCR_REREAD_GROWTH", default_value_t = 1.25)]
    pub ocr_reread_growth: f32,

    /// Work once: a settled track is read again once this many seconds have passed since its
    /// last reading (by the frames' arrival). Default 10.
    #[arg(long, env = "FRAMEWIRE_OCR_REREAD_AFTER", default_value_t = 10.0)]
    pub ocr_reread_after: f64,

    /// `detect_every`: frames of a session that may wait, without their bytes, for the frame
    /// in the models, to be answered from the tracker's prediction when it is done; past it the
    /// oldest is dropped (`frame_dropped`). Default 64 (two seconds at 30 fps; a few dozen bytes
    /// each).
    #[arg(long, env = "FRAMEWIRE_MAX_PREDICTED_WAITING", default_value_t = 64)]
    pub max_predicted_waiting: usize,

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
    /// See [`ServeArgs::admin_listen`].
    pub admin_listen: Option<SocketAddr>,
    /// See [`ServeArgs::demo`].
    pub demo: bool,
    /// See [`ServeArgs::demo_remote_ws`].
    pub demo_remote_ws: bool,
    /// See [`ServeArgs::models`].
    pub models: PathBuf,
    /// See [`ServeArgs::detector`].
    pub detector: Option<PathBuf>,
    /// See [`ServeArgs::labels`], [`ServeArgs::nms_iou`], [`ServeArgs::max_detections`].
    pub detector_options: DetectorOptions,
    /// See [`ServeArgs::engine`].
    pub engine: EngineKind,
    /// See [`ServeArgs::onnxruntime_lib`].
    pub onnxruntime_lib: Option<PathBuf>,
    /// Frame workers (≥ 1, already resolved from 0 = cores).
    pub threads: usize,
    /// See [`ServeArgs::max_frame_bytes`].
    pub max_frame_bytes: usize,
    /// See [`ServeArgs::max_pixels`].
    pub max_pixels: u64,
    /// See [`MAX_SIDE`].
    pub max_side: u32,
    /// See [`ServeArgs::max_scans`].
    pub max_scans: u32,
    /// See [`ServeArgs::max_decoder_bytes`].
    pub max_decoder_bytes: u64,
    /// See [`ServeArgs::max_sessions`].
    pub max_sessions: usize,
    /// See [`ServeArgs::max_control_rate`].
    pub max_control_rate: u32,
    /// See [`ServeArgs::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`ServeArgs::message_timeout`].
    pub message_timeout: Duration,
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
    /// See [`ServeArgs::mmap_threshold`].
    pub mmap_threshold: MmapThreshold,
    /// See [`ServeArgs::trim_threshold`].
    pub trim_threshold: usize,
    /// See [`ServeArgs::pipeline`].
    pub pipeline: PipelineKind,
    /// See [`ServeArgs::ocr_max_side`].
    pub ocr_max_side: usize,
    /// See [`ServeArgs::ocr_max_lines`].
    pub ocr_max_lines: usize,
    /// See [`ServeArgs::scaled_decode`].
    pub scaled_decode: bool,
    /// See [`ServeArgs::track`].
    pub track: bool,
    /// The tracker's parameters (`--track-*`).
    pub tracking: TrackConfig,
    /// When a settled reading is read again (`--ocr-settle-readings`, `--ocr-reread-*`).
    pub reuse: ReuseConfig,
    /// See [`ServeArgs::max_predicted_waiting`].
    pub max_predicted_waiting: usize,
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
        if !(1 << 20..=1 << 34).contains(&self.max_decoder_bytes) {
            return bad("max-decoder-bytes", "must be between 1 MiB and 16 GiB");
        }
        if !(1..=10_000).contains(&self.max_scans) {
            return bad("max-scans", "must be between 1 and 10000");
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
        for (flag, v) in [
            ("track-thresh", self.track_thresh),
            ("track-new-thresh", self.track_new_thresh),
            ("track-match-iou", self.track_match_iou),
            ("track-low-thresh", self.track_low_thresh),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return bad(flag, "must be within (0, 1]");
            }
        }
        if self.track_low_thresh > self.track_thresh {
            return bad("track-low-thresh", "must be at most --track-thresh");
        }
        if self.nms_iou.is_some_and(|v| !(v.is_finite() && v > 0.0 && v <= 1.0)) {
            return bad("nms-iou", "must be within (0, 1]");
        }
        if self.max_detections.is_some_and(|v| !(1..=10_000).contains(&v)) {
            return bad("max-detections", "must be between 1 and 10000");
        }
        if !(1..=10_000).contains(&self.track_buffer) {
            return bad("track-buffer", "must be between 1 and 10000 frames");
        }
        if !(1..=100).contains(&self.ocr_settle_readings) {
            return bad("ocr-settle-readings", "must be between 1 and 100");
        }
        if !(self.ocr_reread_growth.is_finite() && (1.0..=10.0).contains(&self.ocr_reread_growth)) {
            return bad("ocr-reread-growth", "must be within [1, 10]");
        }
        if !(1..=10_000).contains(&self.max_predicted_waiting) {
            return bad("max-predicted-waiting", "must be between 1 and 10000");
        }
        if !(1..=10_000).contains(&self.max_control_rate) {
            return bad("max-control-rate", "must be between 1 and 10000 a second");
        }
        if !(128 << 10..=1 << 30).contains(&self.trim_threshold) {
            return bad("trim-threshold", "must be within [128 KiB, 1 GiB]");
        }
        if self.max_write_buffer < 64 * 1024 {
            return bad("max-write-buffer", "must be at least 64 KiB");
        }
        let threads =
            if self.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { self.threads };
        Ok(Config {
            listen: self.listen,
            admin_listen: self.admin_listen,
            demo: self.demo,
            demo_remote_ws: self.demo_remote_ws,
            models: self.models.clone(),
            detector: self.detector.clone(),
            detector_options: DetectorOptions {
                labels: self.labels.clone(),
                nms_iou: self.nms_iou,
                max_detections: self.max_detections,
            },
            engine: self.engine,
            onnxruntime_lib: self.onnxruntime_lib.clone(),
            threads,
            max_frame_bytes: self.max_frame_bytes,
            max_pixels: self.max_pixels,
            max_side: MAX_SIDE,
            max_scans: self.max_scans,
            max_decoder_bytes: self.max_decoder_bytes,
            max_sessions: self.max_sessions,
            max_control_rate: self.max_control_rate,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            message_timeout: seconds("message-timeout", self.message_timeout)?,
            handshake_timeout: seconds("handshake-timeout", self.handshake_timeout)?,
            min_score: self.min_score,
            on_invalid: self.on_invalid,
            shutdown_grace: seconds("shutdown-grace", self.shutdown_grace)?,
            max_write_buffer: self.max_write_buffer,
            mmap_threshold: self.mmap_threshold,
            trim_threshold: self.trim_threshold,
            pipeline: self.pipeline,
            ocr_max_side: self.ocr_max_side,
            ocr_max_lines: self.ocr_max_lines,
            scaled_decode: self.scaled_decode,
            track: self.track,
            tracking: TrackConfig {
                track_thresh: self.track_thresh,
                new_track_thresh: self.track_new_thresh,
                match_iou: self.track_match_iou,
                low_thresh: self.track_low_thresh,
                lost_buffer: self.track_buffer,
                ..TrackConfig::default()
            },
            reuse: ReuseConfig {
                settle: self.ocr_settle_readings,
                growth: self.ocr_reread_growth,
                reread_after_ms: seconds("ocr-reread-after", self.ocr_reread_after)?.as_millis() as u64,
            },
            max_predicted_waiting: self.max_predicted_waiting,
        })
    }
}

impl From<&Config> for Limits {
    fn from(c: &Config) -> Limits {
        Limits { max_bytes: c.max_frame_bytes, max_pixels: c.max_pixels, max_side: c.max_side, max_scans: c.max_scans }
    }
}

impl From<&Config> for crate::vision::h264::Limits {
    fn from(c: &Config) -> crate::vision::h264::Limits {
        crate::vision::h264::Limits {
            max_pixels: c.max_pixels,
            max_side: c.max_side,
            max_decoder_bytes: c.max_decoder_bytes,
        }
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
        let mut a = ServeArgs::parse_flags(&[]);
        a.listen = listen;
        a
    }

    /// `framewire serve FLAGS…` parsed on its own (no environment is read for a flag given here).
    fn parse_flags(flags: &[&str]) -> ServeArgs {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        <Only as clap::Parser>::parse_from(std::iter::once("framewire").chain(flags.iter().copied())).args
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
        assert_eq!(c.message_timeout, Duration::from_secs(30));
        assert_eq!(c.handshake_timeout, Duration::from_secs(5));
        assert_eq!(c.on_invalid, OnInvalid::Close);
        assert_eq!(c.pipeline, PipelineKind::DetectOcr);
        assert_eq!(c.ocr_max_side, 960);
        assert!(c.scaled_decode);
        assert!(c.threads >= 1);
        assert_eq!(c.reuse, ReuseConfig { settle: 3, growth: 1.25, reread_after_ms: 10_000 });
        assert_eq!(c.reuse, ReuseConfig::default(), "the flags' defaults are the policy's");
        assert_eq!(c.max_predicted_waiting, 64);
        for flags in [
            &["--ocr-settle-readings", "0"][..],
            &["--ocr-reread-growth", "0.9"],
            &["--ocr-reread-after", "0"],
            &["--max-predicted-waiting", "0"],
        ] {
            assert!(ServeArgs::parse_flags(flags).validate().is_err(), "{flags:?}");
        }
    }

    #[test]
    fn the_mmap_threshold_is_the_engines_unless_given() {
        let c = Config::defaults("127.0.0.1:0".parse().unwrap());
        assert_eq!((c.mmap_threshold, c.trim_threshold), (MmapThreshold::Auto, 64 << 20));
        assert_eq!(MmapThreshold::Auto.bytes(EngineKind::Tract), Some(8 << 20));
        assert_eq!(MmapThreshold::Auto.bytes(EngineKind::OnnxRuntime), Some(4 << 20));
        assert_eq!(MmapThreshold::Glibc.bytes(EngineKind::Tract), None);
        assert_eq!(parse_mmap_threshold("2097152"), Ok(MmapThreshold::Bytes(2 << 20)));
        for bad in ["0", "1024", "68719476736", "big"] {
            assert!(parse_mmap_threshold(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pipeline_names_match_the_wire_names() {
        for name in ["detect", "ocr", "detect_ocr"] {
            let a = ServeArgs::parse_flags(&["--pipeline", name]);
            assert_eq!(a.pipeline.as_str(), name);
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_name() {
        let a = ServeArgs::parse_flags(&["--min-score", "1.5"]);
        let e = a.validate().unwrap_err().to_string();
        assert!(e.contains("--min-score"), "{e}");
        let a = ServeArgs::parse_flags(&["--idle-timeout", "0"]);
        assert!(a.validate().unwrap_err().to_string().contains("--idle-timeout"));
    }
}
