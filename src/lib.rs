//! framewire: a native real-time video inference server.
//!
//! A client opens a WebSocket to `/ws/video/stream` and sends JPEG frames as binary messages;
//! each frame is answered with a JSON result. The crate's layers, top to bottom (each imports
//! only from the layers under it; `docs/ARCHITECTURE.md` follows one frame through them):
//!
//! - [`cli`] (the subcommands) over [`config`] (every flag of `serve`, frozen into a `Config`);
//! - [`server`]: the acceptor thread, admission, the plain HTTP endpoints (health, metrics,
//!   sessions, the demo page) and the connection's byte stream;
//! - [`session`]: the per-connection loop, its counters, and the latest-frame-wins
//!   [`session::slot`] as a pure type;
//! - [`scheduler`]: the shared frame workers, the job and result types, each frame's width;
//! - [`vision`]: what happens to a frame, in its own full-precision types
//!   ([`vision::analysis`]): [`vision::jpeg`] (validate, decode, the one marker walk),
//!   [`vision::detect`] (SSD, YOLO, NMS), [`vision::ocr`] (text detection + DB, recognition +
//!   CTC), [`vision::cv`] (the OpenCV/pyclipper-exact ports, one file each),
//!   [`vision::runtime`] (the only place that knows which engine runs a network),
//!   [`vision::parallel`] (a frame's [`vision::parallel::Width`]), [`vision::geometry`] and
//!   [`vision::track`] (ByteTrack);
//! - [`wake`]: eventfd wake-ups, the shutdown pipe and `poll(2)`, under server, session,
//!   scheduler and the stream client's source; [`classes`] (a set of class ids) under vision and
//!   the analytics; [`memory`] (how memory goes back to the system) under the server.
//!
//! Beside them: [`protocol`], the wire format, which converts vision's results into wire types
//! (and is the only place that rounds) and parses the client's control messages; [`analytics`],
//! zones, lines and track events over a session's tracks (a pure leaf the session owns one of);
//! [`policy`], work once: which frames a session sends to the models and which objects' text it
//! reads again (pure session state over the tracker's tracks, above vision, under protocol,
//! config and session); [`metrics`] and [`logging`]; [`client`], `framewire
//! stream` and `framewire bench`, which use the protocol and the JPEG framing and nothing of the
//! server's insides.
//!
//! `main.rs` is only the command line on top of this library, so tests, benches and fuzz targets
//! reach everything here.

pub mod analytics;
pub mod classes;
pub mod cli;
pub mod client;
pub mod config;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod policy;
pub mod protocol;
pub mod scheduler;
pub mod server;
pub mod session;
pub mod vision;
pub mod wake;

use std::sync::Arc;

use vision::detect::Detector;
use vision::ocr::{detection, TextDetector, TextRecognizer};
use vision::runtime::onnxruntime::OrtStartError;
use vision::runtime::{EngineKind, LoadReport, Loaded, ModelError, Runtime};

/// Text detector input sizes prepared at start-up: a 640×480 frame, and 720p / 1080p frames
/// shrunk to the default `--ocr-max-side` of 960. Other sizes are prepared on first use.
const TEXT_DET_PRESET_SIZES: [(usize, usize); 2] = [(640, 480), (960, 544)];

fn log_load(r: &LoadReport) {
    log::info!(
        "loaded {} model {} input={:?} in {:.2} s",
        r.family,
        r.path.display(),
        r.input_shape,
        r.load_time.as_secs_f64()
    );
}

/// Load every model and build the scheduler: what `framewire serve` runs.
pub fn build_scheduler(config: &config::Config) -> Result<scheduler::Scheduler, StartError> {
    // glibc gives each thread that allocates under contention its own heap, up to 8 × cores of
    // them, and each keeps what its thread freed: with many frame workers and intra-op threads
    // that grew RSS with `--threads` (#19.10: +18 % at 8 threads against 1, +10 % capped). The
    // frame path makes few, large allocations, so one heap a core costs no measurable speed.
    #[cfg(target_env = "gnu")]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: `mallopt` only sets an allocator parameter; a rejected value is ignored.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
        }
    }
    // Frame-sized blocks as memory of their own, returned when freed (see `memory`).
    memory::tune(config.mmap_threshold.bytes(config.engine), config.trim_threshold);
    let runtime = match config.engine {
        EngineKind::Tract => Runtime::tract(config.threads),
        EngineKind::OnnxRuntime => Runtime::onnxruntime(config.onnxruntime_lib.as_deref(), config.threads)?,
    };
    log::info!("engine: {}", runtime.describe());
    let detector = match &config.detector {
        Some(path) => Detector::load_yolo_with(&runtime, path, &config.models, &config.detector_options)?,
        None => Detector::load_ssd_with(&runtime, &config.models, &config.detector_options)?,
    };
    log_load(detector.report());
    log::info!("detector classes: {}", detector.labels().len());
    let sizes: Vec<(usize, usize)> =
        TEXT_DET_PRESET_SIZES.iter().map(|&(w, h)| detection::det_input_size(w, h, config.ocr_max_side)).collect();
    let text_detector = TextDetector::load(&runtime, &config.models, &sizes)?;
    log_load(text_detector.report());
    let recognizer = TextRecognizer::load(&runtime, &config.models)?;
    log_load(recognizer.report());
    if config.threads > 1 {
        // Going wide must never lose: time each model both ways on this machine (#19.15).
        let choices = [
            (detector.report().family, detector.choose_width(config.threads)?),
            (text_detector.report().family, text_detector.choose_width(config.threads)?),
            (recognizer.report().family, recognizer.choose_width(config.threads)?),
        ];
        for (family, choice) in choices {
            if let Some(c) = choice {
                log::info!(
                    "width: {family} on 1 core {:.1} ms, on {} cores {:.1} ms: runs {} when a frame is alone",
                    c.narrow_ms,
                    config.threads,
                    c.wide_ms,
                    if c.wide { "wide" } else { "narrow" }
                );
            }
        }
    }
    // Loading, warming and measuring the models freed much (an engine that loaded a model once
    // per width dropped the copy it will not use): hand those pages back to the system now, as
    // glibc keeps freed heap memory otherwise.
    #[cfg(target_env = "gnu")]
    // SAFETY: `malloc_trim` only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    let ocr = vision::OcrSettings { max_side: config.ocr_max_side, max_lines: config.ocr_max_lines };
    let settings = vision::Settings { min_score: config.min_score, ocr, scaled_decode: config.scaled_decode };
    let processor = Arc::new(vision::VisionPipeline::new(detector, text_detector, recognizer, settings));
    let scheduler = scheduler::Scheduler::new(config.threads, processor)?;
    log::info!(
        "frame workers: {}, scaled decode for detect {}",
        scheduler.threads(),
        if config.scaled_decode { "on" } else { "off" }
    );
    Ok(scheduler)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The ONNX Runtime library could not be loaded (`--engine onnxruntime`).
    #[error(transparent)]
    Engine(#[from] OrtStartError),
    /// The frame workers could not be started.
    #[error("cannot start the frame workers: {0}")]
    Workers(#[from] std::io::Error),
}
