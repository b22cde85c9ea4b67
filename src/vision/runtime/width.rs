//! Whether a model runs wide at all on this machine: measured at start-up, not assumed.
//!
//! A lone frame may use every core ([`Width`]), and each engine then splits a model run over
//! them (tract's matrix products, ONNX Runtime's wide session). Whether that is faster depends
//! on the model and the CPU: on one 2-vCPU Intel machine a wide tract `detect` frame was slower
//! than a narrow one in one run of two, where an AMD machine ran it in half the time. So each
//! model is timed both ways once at start-up ([`Model::choose_width`]) and runs wide only where
//! that was clearly faster (by [`WIDE_MARGIN`]); the choice is logged.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ndarray::ArrayD;

use super::{Model, ModelError};
use crate::vision::parallel::{Gauge, Width};

/// Wide must be at least this much faster (median of the timed runs) to be chosen.
pub const WIDE_MARGIN: f64 = 0.95;
/// Timed runs per width (after one warm-up each), alternating narrow and wide.
const RUNS: usize = 5;

/// What the start-up measurement found for one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WidthChoice {
    /// Median time of a run on one core, ms.
    pub narrow_ms: f64,
    /// Median time of a run with every core, ms.
    pub wide_ms: f64,
    /// Whether the model runs wide from now on.
    pub wide: bool,
}

/// A model whose runs go wide only if the measurement said so (until measured: as asked).
pub struct Measured {
    inner: Box<dyn Model>,
    wide: AtomicBool,
}

impl Measured {
    /// `inner`, running as wide as each run's [`Width`] allows until [`Model::choose_width`].
    pub fn new(inner: Box<dyn Model>) -> Measured {
        Measured { inner, wide: AtomicBool::new(true) }
    }
}

/// The median times (ms) of [`RUNS`] runs on one core and on `wide`, alternating so that any
/// drift of the machine (another process, frequency) falls on both alike.
fn median_ms(model: &dyn Model, shape: &[usize], wide: &Width) -> Result<(f64, f64), ModelError> {
    let (mut narrow_ms, mut wide_ms) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    let narrow = Width::narrow();
    for _ in 0..RUNS {
        for (width, times) in [(&narrow, &mut narrow_ms), (wide, &mut wide_ms)] {
            let input = ArrayD::<f32>::zeros(shape);
            let t = Instant::now();
            model.run(input, width)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[RUNS / 2]
    };
    Ok((median(narrow_ms), median(wide_ms)))
}

impl Model for Measured {
    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn declared_input(&self) -> Vec<Option<usize>> {
        self.inner.declared_input()
    }

    fn prepare(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, ModelError> {
        self.inner.prepare(shape)
    }

    fn run(&self, input: ArrayD<f32>, width: &Width) -> Result<Vec<ArrayD<f32>>, ModelError> {
        if self.wide.load(Ordering::Relaxed) {
            self.inner.run(input, width)
        } else {
            self.inner.run(input, &Width::narrow())
        }
    }

    fn metadata(&self, key: &str) -> Option<String> {
        self.inner.metadata(key)
    }

    fn plans_built(&self) -> u64 {
        self.inner.plans_built()
    }

    fn has_plan(&self, shape: &[usize]) -> bool {
        self.inner.has_plan(shape)
    }

    fn settle_width(&self, wide: bool) {
        self.wide.store(wide, Ordering::Relaxed);
        self.inner.settle_width(wide);
    }

    fn choose_width(&self, shape: &[usize], cores: usize) -> Result<Option<WidthChoice>, ModelError> {
        if cores < 2 {
            return Ok(None);
        }
        let gauge = Arc::new(Gauge::lone(None));
        let (narrow, wide) = (Width::narrow(), Width::granted(cores, gauge));
        // One warm-up each (plans, arenas, thread pools), then alternate so drift hits both.
        self.inner.run(ArrayD::zeros(shape), &narrow)?;
        self.inner.run(ArrayD::zeros(shape), &wide)?;
        let (narrow_ms, wide_ms) = median_ms(&*self.inner, shape, &wide)?;
        let choice = WidthChoice { narrow_ms, wide_ms, wide: wide_ms < narrow_ms * WIDE_MARGIN };
        self.wide.store(choice.wide, Ordering::Relaxed);
        self.inner.settle_width(choice.wide);
        Ok(Some(choice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A model stand-in (not a network) that takes `narrow` or `wide` to run and counts the
    /// runs it was given more than one core for.
    struct TimedModelStandIn {
        narrow: Duration,
        wide: Duration,
        wide_runs: Arc<AtomicUsize>,
    }

    impl Model for TimedModelStandIn {
        fn path(&self) -> &Path {
            Path::new("stand-in")
        }
        fn declared_input(&self) -> Vec<Option<usize>> {
            vec![Some(1)]
        }
        fn prepare(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, ModelError> {
            Ok(vec![shape.to_vec()])
        }
        fn run(&self, input: ArrayD<f32>, width: &Width) -> Result<Vec<ArrayD<f32>>, ModelError> {
            let wide = width.cores() > 1;
            self.wide_runs.fetch_add(usize::from(wide), Ordering::Relaxed);
            std::thread::sleep(if wide { self.wide } else { self.narrow });
            Ok(vec![input])
        }
        fn metadata(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn measured(narrow_ms: u64, wide_ms: u64) -> (Measured, Width, Arc<AtomicUsize>) {
        let wide_runs = Arc::new(AtomicUsize::new(0));
        let inner = TimedModelStandIn {
            narrow: Duration::from_millis(narrow_ms),
            wide: Duration::from_millis(wide_ms),
            wide_runs: Arc::clone(&wide_runs),
        };
        let gauge = Arc::new(Gauge::lone(None));
        (Measured::new(Box::new(inner)), Width::granted(2, gauge), wide_runs)
    }

    #[test]
    fn a_model_that_is_slower_wide_runs_narrow_with_timed_model_stand_in() {
        // The stand-in's two speeds differ fivefold (10 vs 50 ms of sleep): far above any
        // scheduling noise; nothing here asserts on how long anything took.
        let (m, wide, runs) = measured(10, 50);
        let c = m.choose_width(&[1], 2).expect("measured").expect("two cores");
        assert!(!c.wide, "{c:?}");
        let before = runs.load(Ordering::Relaxed);
        m.run(ArrayD::zeros(&[1][..]), &wide).expect("runs");
        assert_eq!(runs.load(Ordering::Relaxed), before, "a wide frame runs this model narrow");
        let (m, wide, runs) = measured(50, 10);
        let c = m.choose_width(&[1], 2).expect("measured").expect("two cores");
        assert!(c.wide, "{c:?}");
        let before = runs.load(Ordering::Relaxed);
        m.run(ArrayD::zeros(&[1][..]), &wide).expect("runs");
        assert_eq!(runs.load(Ordering::Relaxed), before + 1, "and a faster-wide one wide");
        assert_eq!(m.choose_width(&[1], 1).expect("measured"), None, "one core: nothing to choose");
    }
}
