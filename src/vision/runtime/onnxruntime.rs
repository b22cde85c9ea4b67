//! The ONNX Runtime engine (`--engine onnxruntime`): every `ort` call lives here.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`): from `--onnxruntime-lib`, else
//! `ORT_DYLIB_PATH`, else the loader's search path (`libonnxruntime.so`). Nothing is linked at
//! build time, so a tract-only user needs nothing. Shapes are dynamic: no plan per input size.
//!
//! An ORT session runs one call at a time (`Session::run` takes `&mut self`), so each model is
//! loaded as several sessions: one *wide* session with an intra-op pool of every core, for a
//! frame that is alone ([`Width::cores`] > 1), and *narrow* single-threaded
//! sessions, one per thread that may run models at once, for frames that share the machine.
//! Spinning is off everywhere: an idle intra-op thread that spins burns the core the next model
//! needs. Memory: the sessions keep ONNX Runtime's default CPU arena (turning it off cost ~10 %
//! throughput here and did not lower the peak); see docs/PERFORMANCE.md for the RSS figures.

use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use parking_lot::Mutex;

use super::{run_err, Model, ModelError};
use crate::vision::parallel::Width;

/// Where to get a library, for error messages.
pub const WHERE_TO_GET: &str = "get one from the `onnxruntime` PyPI wheel (`pip download onnxruntime==1.32.0 \
     --no-deps`, then unzip `onnxruntime/capi/libonnxruntime.so.*` from it) or from an ONNX Runtime release \
     archive (`lib/libonnxruntime.so`), and pass its path with --onnxruntime-lib or ORT_DYLIB_PATH";

/// The loaded library and its environment.
pub struct OrtEngine {
    env: Environment,
    library: PathBuf,
    threads: usize,
}

impl std::fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtEngine").field("library", &self.library).field("threads", &self.threads).finish()
    }
}

/// Why ONNX Runtime could not be started.
#[derive(Debug, thiserror::Error)]
pub enum OrtStartError {
    /// The library is missing, not ONNX Runtime, or too old for this build.
    #[error("cannot load ONNX Runtime from {path}: {why}; {WHERE_TO_GET}")]
    Library {
        /// The path tried.
        path: PathBuf,
        /// The loader's words.
        why: String,
    },
    /// The library loaded but its environment could not be created.
    #[error("ONNX Runtime environment: {0}")]
    Environment(String),
}

impl OrtEngine {
    /// Load the library (`lib`, else `ORT_DYLIB_PATH`, else `libonnxruntime.so` from the loader's
    /// search path) for models that may use up to `threads` cores.
    pub fn start(lib: Option<&Path>, threads: usize) -> Result<OrtEngine, OrtStartError> {
        let library = lib
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"));
        // ONNX Runtime allows one library and one environment per process: the first start makes
        // them, later ones (tests, benches building several servers) share them.
        static ENV: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);
        let mut current = ENV.lock();
        if let Some((loaded, env)) = current.as_ref() {
            if *loaded != library {
                let why = format!("{} is already loaded in this process", loaded.display());
                return Err(OrtStartError::Library { path: library, why });
            }
            return Ok(OrtEngine { env: env.clone(), library, threads: threads.max(1) });
        }
        let builder = ort::init_from(&library)
            .map_err(|e| OrtStartError::Library { path: library.clone(), why: e.to_string() })?;
        let env = builder
            .with_name("framewire")
            .with_telemetry(false)
            .build()
            .map_err(|e| OrtStartError::Environment(e.to_string()))?;
        *current = Some((library.clone(), env.clone()));
        Ok(OrtEngine { env, library, threads: threads.max(1) })
    }

    /// The library path and ONNX Runtime's build string (version, commit), for the start-up log.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.library.display(), ort::info().trim())
    }

    fn session(&self, path: &Path, threads: usize) -> Result<Session, ModelError> {
        let err = |e: &dyn std::fmt::Display| ModelError::Load { path: path.to_path_buf(), why: e.to_string() };
        Session::builder(&self.env)
            .map_err(|e| err(&e))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| err(&e))?
            .with_intra_threads(threads)
            .map_err(|e| err(&e))?
            .with_intra_op_spinning(false)
            .map_err(|e| err(&e))?
            .with_inter_op_spinning(false)
            .map_err(|e| err(&e))?
            .commit_from_file(path)
            .map_err(|e| err(&e))
    }

    /// Load `path`: a wide session and one narrow session per frame worker (a lone frame's
    /// helper finds the other worker's idle; in the rare overlap a caller waits for a session).
    pub fn load(&self, path: &Path) -> Result<OrtModel, ModelError> {
        let wide = if self.threads > 1 { Some(Mutex::new(self.session(path, self.threads)?)) } else { None };
        let narrow = (0..self.threads).map(|_| self.session(path, 1).map(Mutex::new)).collect::<Result<Vec<_>, _>>()?;
        let declared = narrow[0]
            .lock()
            .inputs()
            .first()
            .and_then(|i| i.dtype().tensor_shape().map(|s| s.iter().map(|&d| usize::try_from(d).ok()).collect()))
            .unwrap_or_default();
        Ok(OrtModel { path: path.to_path_buf(), wide, narrow, declared })
    }
}

/// A network loaded into ONNX Runtime sessions.
pub struct OrtModel {
    path: PathBuf,
    wide: Option<Mutex<Session>>,
    narrow: Vec<Mutex<Session>>,
    declared: Vec<Option<usize>>,
}

fn run_on(session: &mut Session, input: &ArrayD<f32>) -> Result<Vec<ArrayD<f32>>, ModelError> {
    let tensor = TensorRef::from_array_view(input.view()).map_err(run_err)?;
    let outputs = session.run(ort::inputs![tensor]).map_err(run_err)?;
    outputs.values().map(|v| Ok(v.try_extract_array::<f32>().map_err(run_err)?.to_owned())).collect()
}

impl Model for OrtModel {
    fn path(&self) -> &Path {
        &self.path
    }

    fn declared_input(&self) -> Vec<Option<usize>> {
        self.declared.clone()
    }

    fn prepare(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, ModelError> {
        // Nothing to build: run zeros once to learn the output shapes (and warm the session).
        let zeros = ArrayD::<f32>::zeros(shape);
        Ok(self.run(zeros, &Width::narrow())?.iter().map(|o| o.shape().to_vec()).collect())
    }

    fn metadata(&self, key: &str) -> Option<String> {
        let session = self.narrow.first()?.lock();
        let meta = session.metadata().ok()?;
        meta.custom(key)
    }

    fn run(&self, input: ArrayD<f32>, width: &Width) -> Result<Vec<ArrayD<f32>>, ModelError> {
        if let Some(wide) = self.wide.as_ref().filter(|_| width.cores() > 1) {
            if let Some(mut s) = wide.try_lock() {
                return run_on(&mut s, &input);
            }
        }
        for s in &self.narrow {
            if let Some(mut s) = s.try_lock() {
                return run_on(&mut s, &input);
            }
        }
        // More callers than sessions (not expected): wait for the first.
        run_on(&mut self.narrow[0].lock(), &input)
    }
}
