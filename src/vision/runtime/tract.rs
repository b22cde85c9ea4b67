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
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ndarray::ArrayD;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use super::{run_err, Model, ModelError};
use crate::vision::parallel::Width;

/// Most plan cache entries per model (one plan per input shape). Sized to what the text
/// detector can ask for: at most `ocr::MAX_EXACT_PLANS` (32) exact sizes, then sides snapped to
/// one of at most 11 values up to `--ocr-max-side`'s largest allowed 2048 (`ocr::plan_side`),
/// so at most 121 padded shapes; the other models use a handful.
/// Beyond it the least recently used entry is evicted (and rebuilt if asked for again), so an
/// unusual shape costs one build, never one build per frame.
pub const MAX_PLANS: usize = 160;

type Plan = Arc<TypedRunnableModel>;

/// A plan cache entry: built once by the first caller (others asking for the same shape wait
/// for that build, and only they), and when it was last used.
struct Entry {
    plan: Arc<OnceLock<Result<Plan, String>>>,
    last_used: u64,
}

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
    /// The plan cache. Its lock is held only to look an entry up or add one, never while a plan
    /// is built: a build holds its own entry's cell (single flight per shape), so a caller of a
    /// built plan, or of another shape, never waits behind it.
    plans: parking_lot::Mutex<HashMap<Vec<usize>, Entry>>,
    /// Plan cache capacity ([`MAX_PLANS`]).
    capacity: usize,
    /// Lookups so far (the LRU clock).
    ticks: AtomicU64,
    /// Tests: a build of this shape waits for this gate first.
    #[cfg(test)]
    gate: parking_lot::Mutex<Option<(Vec<usize>, crossbeam_channel::Receiver<()>)>>,
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
            plans: parking_lot::Mutex::new(HashMap::new()),
            capacity: MAX_PLANS,
            ticks: AtomicU64::new(0),
            #[cfg(test)]
            gate: parking_lot::Mutex::new(None),
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

    /// A smaller plan cache (tests).
    pub fn with_plan_capacity(mut self, capacity: usize) -> TractModel {
        self.capacity = capacity.max(1);
        self
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan, ModelError> {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let cell = {
            let mut plans = self.plans.lock();
            let cell = match plans.get_mut(shape) {
                Some(e) => {
                    e.last_used = tick;
                    Arc::clone(&e.plan)
                }
                None => {
                    if plans.len() >= self.capacity {
                        // Evict the least recently used entry; a caller still holding its cell
                        // (building or running it) keeps it alive until done.
                        let oldest = plans.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            plans.remove(&k);
                        }
                    }
                    let cell = Arc::new(OnceLock::new());
                    plans.insert(shape.to_vec(), Entry { plan: Arc::clone(&cell), last_used: tick });
                    cell
                }
            };
            cell
        };
        let built = cell.get_or_init(|| {
            #[cfg(test)]
            self.wait_at_gate(shape);
            let started = Instant::now();
            let plan = self.build(shape).map_err(|e| e.to_string());
            self.builds.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "built tract plan {shape:?} for {} in {:.2} s",
                self.path.display(),
                started.elapsed().as_secs_f64()
            );
            plan
        });
        built.clone().map_err(|why| ModelError::Load { path: self.path.clone(), why })
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

    fn has_plan(&self, shape: &[usize]) -> bool {
        self.plans.lock().get(shape).is_some_and(|e| e.plan.get().is_some_and(Result::is_ok))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text_detector() -> TractModel {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ppocrv6_tiny_det.onnx");
        TractModel::load(&path, None).expect("the shipped text detector loads")
    }

    impl TractModel {
        /// Whether the cache holds `shape`, and whether its plan is built.
        fn cached(&self, shape: &[usize]) -> Option<bool> {
            self.plans.lock().get(shape).map(|e| e.plan.get().is_some())
        }
    }

    #[test]
    fn the_plan_cache_evicts_the_least_recently_used_and_builds_each_shape_once() {
        let m = text_detector().with_plan_capacity(3);
        let s = |h: usize, w: usize| [1, 3, h, w];
        for shape in [s(32, 32), s(32, 64), s(64, 32)] {
            m.prepare(&shape).expect("plan");
        }
        assert_eq!(m.plans_built(), 3);
        m.prepare(&s(32, 32)).expect("plan");
        assert_eq!(m.plans_built(), 3, "cached");
        m.prepare(&s(64, 64)).expect("plan"); // full: evicts (32, 64), the least recently used
        assert_eq!(m.plans_built(), 4);
        assert_eq!(m.cached(&s(32, 64)), None);
        for shape in [s(32, 32), s(64, 32), s(64, 64)] {
            m.prepare(&shape).expect("plan");
        }
        assert_eq!(m.plans_built(), 4, "the recent ones stay");
        m.prepare(&s(32, 64)).expect("plan");
        assert_eq!(m.plans_built(), 5, "an evicted shape is built again, once");
    }

    impl TractModel {
        pub(super) fn wait_at_gate(&self, shape: &[usize]) {
            let gate = self.gate.lock().as_ref().filter(|(s, _)| s == shape).map(|(_, g)| g.clone());
            if let Some(g) = gate {
                let _ = g.recv();
            }
        }
    }

    #[test]
    fn a_plan_being_built_blocks_no_other_shape() {
        let m = Arc::new(text_detector());
        let (open, gate) = crossbeam_channel::bounded::<()>(0);
        let big = [1, 3, 960, 960];
        *m.gate.lock() = Some((big.to_vec(), gate));
        let builder = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || m.prepare(&big).map(|_| ()))
        };
        // The big plan's build has begun (its entry exists) and is held at the gate ...
        let t = Instant::now();
        while m.cached(&big).is_none() && t.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::yield_now();
        }
        assert_eq!(m.cached(&big), Some(false));
        // ... and another shape is built meanwhile (with one model-wide build lock it would
        // wait for the big one, which waits for the gate: the receive below would time out).
        let (done_tx, done) = crossbeam_channel::bounded(1);
        {
            let m = Arc::clone(&m);
            std::thread::spawn(move || done_tx.send(m.prepare(&[1, 3, 64, 64]).map(|_| ())));
        }
        let other = done.recv_timeout(std::time::Duration::from_secs(120)).expect("another shape is not blocked");
        other.expect("plan");
        assert_eq!(m.cached(&big), Some(false), "the big one is still held");
        drop(open); // release the gate
        builder.join().expect("builder thread").expect("big plan");
        m.prepare(&big).expect("plan");
        assert_eq!(m.plans_built(), 2, "each shape built once");
    }
}
