//! The runtime seam: the one place that knows which engine runs a network.
//!
//! The vision code (pre- and post-processing, NMS, DB, CTC) sees a network only as a [`Model`]:
//! the input shape its file declares, the output shapes for a given input, and `run`. Each engine
//! implements it in its own module: [`tract`] (the embedded default, pure Rust) and
//! [`onnxruntime`] (ONNX Runtime loaded at run time, the fast engine a user opts into). Nothing
//! outside this folder names an engine's types. How many cores a run may use is its frame's
//! [`Width`], passed to [`Model::run`] (the scheduler grants it per frame).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ndarray::ArrayD;

use crate::vision::parallel::Width;

pub mod onnxruntime;
pub mod tract;
pub mod width;

pub use width::WidthChoice;

/// A model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model or names file is not where the configuration says.
    #[error("model file not found: {0} (start from the repository root or pass --models DIR)")]
    Missing(PathBuf),
    /// The engine refused the model file (unsupported operator, bad file, shapes that do not
    /// unify).
    #[error("cannot load {path}: {why}")]
    Load {
        /// The model file.
        path: PathBuf,
        /// The engine's explanation.
        why: String,
    },
    /// The model loads but its inputs or outputs are not a layout this server decodes.
    #[error("unsupported model layout in {path}: {why}")]
    Layout {
        /// The model file.
        path: PathBuf,
        /// What was found.
        why: String,
    },
    /// Running the model on a frame failed (an internal error for that frame only).
    #[error("inference failed: {0}")]
    Run(String),
}

/// A `Run` error from anything printable.
pub(crate) fn run_err(e: impl fmt::Display) -> ModelError {
    ModelError::Run(e.to_string())
}

/// One loaded network, ready to run from any thread. Inputs and outputs are f32 tensors.
pub trait Model: Send + Sync {
    /// The file it was loaded from.
    fn path(&self) -> &Path;
    /// The first input's shape as the file declares it; `None` for a symbolic dimension.
    fn declared_input(&self) -> Vec<Option<usize>>;
    /// Get ready for inputs of `shape` (an engine with fixed-shape plans builds one) and return
    /// the output shapes for it.
    fn prepare(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, ModelError>;
    /// Run on one input, as wide as `width` allows now; the outputs in the model's order.
    fn run(&self, input: ArrayD<f32>, width: &Width) -> Result<Vec<ArrayD<f32>>, ModelError>;
    /// The value of the file's metadata entry `key` (ONNX `metadata_props`), if any.
    fn metadata(&self, key: &str) -> Option<String>;
    /// Plans built for this model so far (an engine with a plan per input shape; else 0).
    fn plans_built(&self) -> u64 {
        0
    }

    /// Whether a run on `shape` needs no plan built first (an engine without plans: always).
    fn has_plan(&self, _shape: &[usize]) -> bool {
        true
    }

    /// Time runs on `shape` narrow and with `cores` cores, and from now on run wide only if
    /// that was faster ([`width`]); `None` when nothing was measured (one core, or a model that
    /// does not choose).
    fn choose_width(&self, _shape: &[usize], _cores: usize) -> Result<Option<WidthChoice>, ModelError> {
        Ok(None)
    }

    /// From now on this model runs `wide` (or narrow) only: an engine that loaded it once per
    /// width drops the copy it will not use. Called once, after [`Model::choose_width`].
    fn settle_width(&self, _wide: bool) {}
}

impl fmt::Debug for dyn Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model").field("path", &self.path()).finish()
    }
}

/// Which engine runs the models (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// tract: pure Rust, embedded, nothing to install (the default).
    Tract,
    /// ONNX Runtime, loaded from a shared library at start-up (`--onnxruntime-lib`).
    OnnxRuntime,
}

impl EngineKind {
    /// Every engine.
    pub const ALL: [EngineKind; 2] = [EngineKind::Tract, EngineKind::OnnxRuntime];

    /// The name, as `--engine` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Tract => "tract",
            EngineKind::OnnxRuntime => "onnxruntime",
        }
    }
}

/// The engine that runs every model of a server, ready to load models.
#[derive(Debug)]
pub enum Runtime {
    /// tract; a lone frame's matrix products are split over this executor (more than one core).
    Tract(tract::TractEngine),
    /// ONNX Runtime.
    OnnxRuntime(onnxruntime::OrtEngine),
}

impl Runtime {
    /// tract for models that may use up to `threads` cores.
    pub fn tract(threads: usize) -> Runtime {
        Runtime::Tract(tract::TractEngine::new(threads))
    }

    /// ONNX Runtime from `lib` (see [`onnxruntime::OrtEngine::start`]) for up to `threads` cores.
    pub fn onnxruntime(lib: Option<&Path>, threads: usize) -> Result<Runtime, onnxruntime::OrtStartError> {
        Ok(Runtime::OnnxRuntime(onnxruntime::OrtEngine::start(lib, threads)?))
    }

    /// Load the network in `path`.
    pub fn load(&self, path: &Path) -> Result<Box<dyn Model>, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Missing(path.to_path_buf()));
        }
        let model: Box<dyn Model> = match self {
            Runtime::Tract(t) => Box::new(t.load(path)?),
            Runtime::OnnxRuntime(o) => Box::new(o.load(path)?),
        };
        Ok(Box::new(width::Measured::new(model)))
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        match self {
            Runtime::Tract(_) => EngineKind::Tract,
            Runtime::OnnxRuntime(_) => EngineKind::OnnxRuntime,
        }
    }

    /// Whether the engine needs a prepared plan per input shape (tract) or takes any shape as
    /// it comes (ONNX Runtime).
    pub fn plans_per_shape(&self) -> bool {
        matches!(self, Runtime::Tract(_))
    }

    /// The engine, and for ONNX Runtime the library and its version, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Runtime::Tract(_) => "tract (embedded)".to_string(),
            Runtime::OnnxRuntime(o) => format!("onnxruntime {}", o.describe()),
        }
    }
}

/// What was loaded, for the start-up log.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Model file.
    pub path: PathBuf,
    /// Input shape the model was prepared for.
    pub input_shape: Vec<usize>,
    /// Wall time to load and prepare.
    pub load_time: Duration,
    /// `ssd`, `yolov5`, `yolov8`, `ppocr-det` or `ppocr-rec`.
    pub family: &'static str,
}

/// A model of the pipeline as loaded (the detector, the text detector, the recognizer): what
/// start-up and `/metrics` ask of each, answered once here.
pub trait Loaded {
    /// The model.
    fn model(&self) -> &dyn Model;

    /// What was loaded and how long it took.
    fn report(&self) -> &LoadReport;

    /// Plans its engine built for it so far.
    fn plans_built(&self) -> u64 {
        self.model().plans_built()
    }

    /// Time a run on its start-up input narrow and with `cores` cores; from now on it runs wide
    /// only where that was faster (see [`width`]).
    fn choose_width(&self, cores: usize) -> Result<Option<WidthChoice>, ModelError> {
        self.model().choose_width(&self.report().input_shape, cores)
    }
}

/// [`Loaded`] for pipeline types that hold their `model: Box<dyn Model>` and `report:
/// LoadReport` as fields.
macro_rules! impl_loaded {
    ($($t:ty),+) => {$(
        impl $crate::vision::runtime::Loaded for $t {
            fn model(&self) -> &dyn $crate::vision::runtime::Model {
                &*self.model
            }

            fn report(&self) -> &$crate::vision::runtime::LoadReport {
                &self.report
            }
        }
    )+};
}
pub(crate) use impl_loaded;

/// Read a names file: one label a line.
pub(crate) fn read_lines(path: &Path) -> Result<Vec<String>, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|_| ModelError::Missing(path.to_path_buf()))?;
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect())
}
