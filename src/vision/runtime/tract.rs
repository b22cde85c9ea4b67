//! The tract engine (pure Rust, embedded, the default): every tract call lives here.
//!
//! tract optimises a network for one concrete input shape (a "plan"; a symbolic shape runs ~3×
//! slower), so a [`TractModel`] keeps the parsed model and builds one plan per input shape it is
//! asked for, at start-up through [`Model::prepare`] or on first use; the plans are shared
//! read-only by every frame worker.
//!
//! A run whose frame is alone ([`Width::cores`] > 1) splits its matrix products over a
//! private rayon pool (tract-linalg's `multithread-mm` executor). That is safe by construction:
//! the width is granted only on the scheduler's frame workers, which are plain threads (a thread
//! waiting for its chunks never runs anything else), and the pool's threads run only matrix
//! chunks, which hold tract's thread-local scratch just for the chunk and wait on nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ndarray::ArrayD;
use parking_lot::RwLock;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use super::{run_err, Model, ModelError};
use crate::vision::parallel::Width;

/// Most plan cache entries per model (one plan per input shape); shapes beyond get a one-off plan. Callers
/// keep the shapes they ask for to a small set (the text detector snaps its sizes), so in
/// practice every plan is built once.
pub const MAX_PLANS: usize = 64;

type Plan = Arc<TypedRunnableModel>;

/// tract, with the executor a lone frame's runs split their matrix products over.
#[derive(Debug, Clone)]
pub struct TractEngine {
    executor: Option<Executor>,
}

impl TractEngine {
    /// For models that may use up to `threads` cores (1: never split).
    pub fn new(threads: usize) -> TractEngine {
        let executor = (threads > 1).then(|| Executor::multithread_with_name(threads, "fw-tract-mm"));
        TractEngine { executor }
    }

    /// Parse `path` (no plan is built yet).
    pub fn load(&self, path: &Path) -> Result<TractModel, ModelError> {
        TractModel::load(path, self.executor.clone())
    }
}

/// A network parsed by tract, with its plans.
pub struct TractModel {
    path: PathBuf,
    model: InferenceModel,
    plans: RwLock<HashMap<Vec<usize>, Plan>>,
    /// Held while a plan is built: two misses of one shape build it once (single flight).
    building: parking_lot::Mutex<()>,
    /// Plans built so far.
    builds: AtomicU64,
    executor: Option<Executor>,
}

fn load_err(path: &Path) -> impl Fn(TractError) -> ModelError + '_ {
    move |e| ModelError::Load { path: path.to_path_buf(), why: format!("{e:#}") }
}

impl TractModel {
    /// Parse `path` (no plan is built yet); a lone frame's runs split over `executor`.
    pub fn load(path: &Path, executor: Option<Executor>) -> Result<TractModel, ModelError> {
        // The PP-OCR exports carry symbolic value_info that clashes with concrete input facts.
        let model = tract_onnx::onnx().with_ignore_value_info(true).model_for_path(path).map_err(load_err(path))?;
        Ok(TractModel {
            path: path.to_path_buf(),
            model,
            plans: RwLock::new(HashMap::new()),
            building: parking_lot::Mutex::new(()),
            builds: AtomicU64::new(0),
            executor,
        })
    }

    fn build(&self, shape: &[usize]) -> Result<Plan, ModelError> {
        self.model
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(load_err(&self.path))
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan, ModelError> {
        if let Some(p) = self.plans.read().get(shape) {
            return Ok(Arc::clone(p));
        }
        let _building = self.building.lock();
        // Another caller may have built it while this one waited.
        if let Some(p) = self.plans.read().get(shape) {
            return Ok(Arc::clone(p));
        }
        let started = Instant::now();
        let plan = self.build(shape)?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        let mut plans = self.plans.write();
        if plans.len() < MAX_PLANS {
            plans.insert(shape.to_vec(), Arc::clone(&plan));
            log::debug!(
                "built tract plan {shape:?} for {} in {:.2} s",
                self.path.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(plan)
    }
}

impl Model for TractModel {
    fn path(&self) -> &Path {
        &self.path
    }

    fn declared_input(&self) -> Vec<Option<usize>> {
        match self.model.input_fact(0) {
            Ok(f) if !f.shape.is_open() => {
                f.shape.dims().map(|d| d.concretize().and_then(|d| d.to_usize().ok())).collect()
            }
            _ => Vec::new(),
        }
    }

    fn prepare(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, ModelError> {
        let plan = self.plan(shape)?;
        let model = plan.model();
        (0..model.outputs.len())
            .map(|i| {
                let fact = model.output_fact(i).map_err(load_err(&self.path))?;
                fact.shape.as_concrete().map(|s| s.to_vec()).ok_or_else(|| ModelError::Layout {
                    path: self.path.clone(),
                    why: format!("output {i} has no concrete shape for input {shape:?}"),
                })
            })
            .collect()
    }

    fn plans_built(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn metadata(&self, key: &str) -> Option<String> {
        let t = self.model.properties.get(&format!("onnx.metadata_props.{key}"))?;
        t.to_plain_array_view::<String>().ok()?.iter().next().cloned()
    }

    fn run(&self, input: ArrayD<f32>, width: &Width) -> Result<Vec<ArrayD<f32>>, ModelError> {
        let plan = self.plan(input.shape())?;
        let input = tvec!(input.into_tensor().into());
        let outputs = match self.executor.as_ref().filter(|_| width.cores() > 1) {
            Some(pool) => multithread_tract_scope(pool.clone(), || plan.run(input)),
            None => plan.run(input),
        }
        .map_err(run_err)?;
        outputs.iter().map(|t| Ok(t.to_plain_array_view::<f32>().map_err(run_err)?.to_owned())).collect()
    }
}
