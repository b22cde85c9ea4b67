//! framewire: a native real-time video inference server.
//!
//! A client opens a WebSocket to `/ws/video/stream` and sends JPEG frames as binary messages;
//! each frame is validated ([`jpeg`]), decoded, run through the detector and OCR ([`model`],
//! [`ocr_post`]) on a shared pool ([`pipeline`]) and answered with a JSON result ([`protocol`]) by its session
//! ([`session`]). The [`server`] accepts connections and answers the plain HTTP endpoints
//! (health, [`metrics`], sessions, the demo page); [`config`] holds every limit. [`loadgen`]
//! (`framewire bench`) and [`stream`] (`framewire stream`) are the clients. `main.rs`
//! is only the command line on top of this library, so tests, benches and fuzz targets reach
//! everything here.

pub mod config;
pub mod image;
pub mod jpeg;
pub mod loadgen;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod nms;
pub mod ocr_post;
pub mod pipeline;
pub mod preprocess;
pub mod protocol;
pub mod server;
pub mod session;
pub mod stream;
pub mod wake;
pub mod yolo;

use std::sync::Arc;

/// Text detector input sizes whose plans are built at start-up: a 640×480 frame, and 720p /
/// 1080p frames shrunk to the default `--ocr-max-side` of 960. Other sizes are built on first use.
const TEXT_DET_PRESET_SIZES: [(usize, usize); 2] = [(640, 480), (960, 544)];

fn log_load(r: &model::LoadReport) {
    log::info!(
        "loaded {} model {} input={:?} in {:.2} s",
        r.family,
        r.path.display(),
        r.input_shape,
        r.load_time.as_secs_f64()
    );
}

/// Load every model and build the pool: what `framewire serve` runs.
pub fn build_engine(config: &config::Config) -> Result<pipeline::Engine, StartError> {
    let detector = match &config.detector {
        Some(path) => model::Detector::load_yolo(path, &config.models)?,
        None => model::Detector::load_ssd(&config.models)?,
    };
    log_load(detector.report());
    let sizes: Vec<(usize, usize)> =
        TEXT_DET_PRESET_SIZES.iter().map(|&(w, h)| ocr_post::det_input_size(w, h, config.ocr_max_side)).collect();
    let text_detector = model::TextDetector::load(&config.models, &sizes)?;
    log_load(text_detector.report());
    let recognizer = model::TextRecognizer::load(&config.models)?;
    log_load(recognizer.report());
    let ocr = pipeline::OcrSettings { max_side: config.ocr_max_side, max_lines: config.ocr_max_lines };
    let settings = pipeline::Settings { min_score: config.min_score, ocr, scaled_decode: config.scaled_decode };
    let processor = Arc::new(pipeline::VisionPipeline::new(detector, text_detector, recognizer, settings));
    let engine = pipeline::Engine::new(config.threads, processor)?;
    log::info!(
        "inference pool: {} thread(s), scaled decode for detect {}",
        engine.threads(),
        if config.scaled_decode { "on" } else { "off" }
    );
    Ok(engine)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] model::ModelError),
    /// The inference pool could not be built.
    #[error("cannot build the inference pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}
