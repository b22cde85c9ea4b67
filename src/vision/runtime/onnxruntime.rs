//! The ONNX Runtime engine (`--engine onnxruntime`): every `ort` call lives here.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`): from `--onnxruntime-lib`, else
//! `ORT_DYLIB_PATH`, else the loader's search path (`libonnxruntime.so`). Nothing is linked at
//! build time, so a tract-only user needs nothing. Shapes are dynamic: no plan per input size.
//!
//! Each model is one session, run by every frame worker at once (ONNX Runtime's `Run` is thread-
//! safe; `ort` takes `&mut self` for the sake of other execution providers, so the call goes
//! through the C API here, see [`Shared::run`]). One session means the weights and the graph-
//! optimised copies ONNX Runtime makes of them are in memory once, whatever `--threads` (#19.10:
//! one session per worker had RSS grow ~70 MiB a worker, 922 MiB at 8 threads). With more than one
//! thread a model is loaded twice at start-up, *wide* (an intra-op pool of every core) and *narrow*
//! (the calling thread only); the start-up measurement ([`super::width`]) keeps the one that ran a
//! lone frame faster and drops the other ([`Model::settle_width`]). The wide session's pool is
//! shared by every run: a run under load splits its operators over pool threads that are idle and
//! runs the rest itself (ONNX Runtime revokes the pieces no pool thread has started, so a run never
//! waits for a busy pool). Spinning is off everywhere: an idle intra-op thread that spins burns the
//! core the next model needs. Memory: the sessions keep ONNX Runtime's default CPU arena (turning
//! it off cost ~10 % throughput in #19 and ~40 % in #29, with glibc's allocator then under
//! every activation), but not its memory patterns (planned and kept per input shape: ~50 MiB
//! with the text detector's varying sizes, and measured no faster); see docs/PERFORMANCE.md for
//! the RSS figures.

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};

use ndarray::ArrayD;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{DynValue, TensorRef};
use ort::AsPointer;
use parking_lot::{Mutex, RwLock};

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
            // Memory patterns are planned per input shape and kept: with the text detector's
            // varying sizes they cost ~50 MiB of RSS and measured no faster (#29.7).
            .with_memory_pattern(false)
            .map_err(|e| err(&e))?
            .commit_from_file(path)
            .map_err(|e| err(&e))
    }

    /// Load `path`: with more than one thread a wide session (an intra-op pool of every core) and a
    /// narrow one (the calling thread only), until the start-up measurement keeps one
    /// ([`Model::settle_width`]); with one thread the narrow one only.
    pub fn load(&self, path: &Path) -> Result<OrtModel, ModelError> {
        let narrow = Shared::new(self.session(path, 1)?, path)?;
        let wide = if self.threads > 1 { Some(Shared::new(self.session(path, self.threads)?, path)?) } else { None };
        let declared = narrow
            .session
            .inputs()
            .first()
            .and_then(|i| i.dtype().tensor_shape().map(|s| s.iter().map(|&d| usize::try_from(d).ok()).collect()))
            .unwrap_or_default();
        Ok(OrtModel { path: path.to_path_buf(), wide: RwLock::new(wide), narrow: RwLock::new(Some(narrow)), declared })
    }
}

/// A network loaded into ONNX Runtime: after start-up one session, run by every thread at once.
pub struct OrtModel {
    path: PathBuf,
    /// The session with an intra-op pool of every core (more than one thread).
    wide: RwLock<Option<Shared>>,
    /// The session that runs on the calling thread only.
    narrow: RwLock<Option<Shared>>,
    declared: Vec<Option<usize>>,
}

/// One ONNX Runtime session that every thread runs at once (see the module docs).
struct Shared {
    session: Session,
    inputs: Vec<CString>,
    outputs: Vec<CString>,
}

impl Shared {
    fn new(session: Session, path: &Path) -> Result<Shared, ModelError> {
        let names = |outlets: &[ort::value::Outlet]| {
            outlets.iter().map(|o| CString::new(o.name())).collect::<Result<Vec<_>, _>>().map_err(|e| {
                ModelError::Load { path: path.to_path_buf(), why: format!("an input or output name: {e}") }
            })
        };
        let (inputs, outputs) = (names(session.inputs())?, names(session.outputs())?);
        if inputs.len() != 1 {
            let why = format!("{} inputs; framewire feeds a model exactly one", inputs.len());
            return Err(ModelError::Load { path: path.to_path_buf(), why });
        }
        Ok(Shared { session, inputs, outputs })
    }

    /// One run on the calling thread (and the session's intra-op pool), concurrently with any
    /// other thread's run of the same session.
    fn run(&self, input: &ArrayD<f32>) -> Result<Vec<ArrayD<f32>>, ModelError> {
        let tensor = TensorRef::from_array_view(input.view()).map_err(run_err)?;
        let input_names: Vec<*const c_char> = self.inputs.iter().map(|n| n.as_ptr()).collect();
        let output_names: Vec<*const c_char> = self.outputs.iter().map(|n| n.as_ptr()).collect();
        let inputs = [tensor.ptr()];
        let mut outputs: Vec<*mut ort::sys::OrtValue> = vec![ptr::null_mut(); output_names.len()];
        // SAFETY: `Run` is called through the C API on `&self`, never through a `&mut Session`,
        // so no Rust reference is aliased. ONNX Runtime documents `InferenceSession::Run` as safe
        // to call from several threads at once on one session (its own fix for the TensorRT EP,
        // microsoft/onnxruntime#19301, starts from "InferenceSession::Run() is guaranteed to be
        // thread-safe"; Python servers share one `InferenceSession` across their pools). `ort`
        // takes `&mut self` because some execution providers' allocators are not thread-safe;
        // these sessions use only the CPU provider, whose arena locks. Every call passes its own
        // input value (alive until `Run` returns: `tensor` is dropped after this block), its own
        // output array of `outputs.len()` slots, no run options and no I/O binding; the name
        // arrays hold `inputs.len()` / `outputs.len()` C strings owned by `self`.
        let status = unsafe {
            (ort::api().Run)(
                self.session.ptr().cast_mut(),
                ptr::null(),
                input_names.as_ptr(),
                inputs.as_ptr(),
                inputs.len(),
                output_names.as_ptr(),
                output_names.len(),
                outputs.as_mut_ptr(),
            )
        };
        // Own whatever came back before looking at the status, so nothing leaks on an error.
        let values: Vec<Option<DynValue>> = outputs
            .iter()
            .map(|&p| {
                // SAFETY: a non-null slot is a tensor `Run` allocated with this session's
                // allocator and handed to us; it is taken over exactly once, here.
                NonNull::new(p).map(|p| unsafe { DynValue::from_ptr(p, Some(self.session.allocator())) })
            })
            .collect();
        // SAFETY: `status` is what `Run` returned.
        unsafe { ort::Error::result_from_status(status) }.map_err(run_err)?;
        values
            .into_iter()
            .map(|v| match v {
                Some(v) => Ok(v.try_extract_array::<f32>().map_err(run_err)?.to_owned()),
                None => Err(run_err("ONNX Runtime returned no value for an output")),
            })
            .collect()
    }
}

impl OrtModel {
    /// Run on the session `width` asks for, else on the one there is.
    fn run_on(&self, input: &ArrayD<f32>, wide: bool) -> Result<Vec<ArrayD<f32>>, ModelError> {
        let order = if wide { [&self.wide, &self.narrow] } else { [&self.narrow, &self.wide] };
        for slot in order {
            if let Some(s) = slot.read().as_ref() {
                return s.run(input);
            }
        }
        Err(run_err("the model has no session left"))
    }
}

impl Model for OrtModel {
    fn path(&self) -> &Path {
        &self.path
    }

    fn declared_input(&self) -> Vec<Option<usize>> {
        self.declared.clone()
    }

    fn prepare(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, ModelError> {
        // Nothing to build: run zeros once on every session (warm-up) to learn the output shapes.
        let zeros = ArrayD::<f32>::zeros(shape);
        let mut shapes = Vec::new();
        for slot in [&self.narrow, &self.wide] {
            if let Some(s) = slot.read().as_ref() {
                shapes = s.run(&zeros)?.iter().map(|o| o.shape().to_vec()).collect();
            }
        }
        Ok(shapes)
    }

    fn metadata(&self, key: &str) -> Option<String> {
        for slot in [&self.narrow, &self.wide] {
            if let Some(s) = slot.read().as_ref() {
                return s.session.metadata().ok()?.custom(key);
            }
        }
        None
    }

    fn run(&self, input: ArrayD<f32>, width: &Width) -> Result<Vec<ArrayD<f32>>, ModelError> {
        self.run_on(&input, width.cores() > 1)
    }

    fn settle_width(&self, wide: bool) {
        // Drop the session of the width not chosen, if both are there (never the last one).
        let (keep, other) = if wide { (&self.wide, &self.narrow) } else { (&self.narrow, &self.wide) };
        if keep.read().is_some() {
            other.write().take();
        }
    }
}
