//! framewire: a native real-time video inference server.
//!
//! A client opens a WebSocket to `/ws/video/stream` and sends JPEG frames as binary messages;
//! each frame is validated ([`jpeg`]), decoded, run through the detector ([`model`]) on a shared
//! pool ([`pipeline`]) and answered with a JSON result ([`protocol`]) by its session
//! ([`session`]). The [`server`] accepts connections; [`config`] holds every limit. `main.rs`
//! is only the command line on top of this library, so tests, benches and fuzz targets reach
//! everything here.

pub mod config;
pub mod image;
pub mod jpeg;
pub mod loadgen;
pub mod model;
pub mod nms;
pub mod pipeline;
pub mod preprocess;
pub mod protocol;
pub mod server;
pub mod session;
pub mod wake;
pub mod yolo;

use std::sync::Arc;

/// Load the configured detector and build the `detect` pool: what `framewire serve` runs.
pub fn build_engine(config: &config::Config) -> Result<pipeline::Engine, StartError> {
    let detector = match &config.detector {
        Some(path) => model::Detector::load_yolo(path, &config.models)?,
        None => model::Detector::load_ssd(&config.models)?,
    };
    let r = detector.report();
    log::info!(
        "loaded {} detector {} input={:?} in {:.2} s",
        r.family,
        r.path.display(),
        r.input_shape,
        r.load_time.as_secs_f64()
    );
    let processor = Arc::new(pipeline::DetectPipeline::new(detector, config.min_score));
    let engine = pipeline::Engine::new(config.threads, processor)?;
    log::info!("inference pool: {} thread(s)", engine.threads());
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
