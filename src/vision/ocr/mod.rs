//! OCR: the PP-OCRv6 tiny text detector (DB) and recognizer (CTC) as loaded models, with the
//! pre- and post-processing around each in its own file ([`detection`], [`recognition`]); the
//! OpenCV/pyclipper pieces they need live in [`crate::vision::cv`]. The networks run behind
//! [`Model`], whichever engine that is.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::vision::detect::tensor;
use crate::vision::parallel::Width;
use crate::vision::runtime::{impl_loaded, read_lines, LoadReport, Model, ModelError, Runtime};

pub mod detection;
pub mod recognition;

pub use detection::TextQuad;

/// File names of the OCR models inside `--models`.
pub const OCR_DET_FILE: &str = "ppocrv6_tiny_det.onnx";
/// Recognizer file name.
pub const OCR_REC_FILE: &str = "ppocrv6_tiny_rec.onnx";
/// Recognizer dictionary file name.
pub const OCR_DICT_FILE: &str = "ppocrv6_tiny_dict.txt";

/// The sides a text-detector plan may have on an engine with one plan per shape: an input is
/// zero-padded (the normalised mean colour) on the right and bottom up to the next of these,
/// and the probability map cropped back, so a client cannot make the server build a plan per
/// frame size. 480 and 544 are there so 640×480 and 720p frames (at `--ocr-max-side 960`) are
/// not padded at all; beyond 960, multiples of 320 up to 2048 (`--ocr-max-side`'s bound).
pub const PLAN_SIDES: [usize; 11] = [160, 320, 480, 544, 640, 800, 960, 1280, 1600, 1920, 2048];

/// The plan side for an input side `n` (a multiple of 32, at most 2048).
pub fn plan_side(n: usize) -> usize {
    PLAN_SIDES.iter().copied().find(|&s| s >= n).unwrap_or(n)
}

/// Exact-size text detector plans an engine with a plan per shape builds beyond those it
/// prepared at start-up, for the life of the process. Padding an input to a [`PLAN_SIDES`] size
/// changes the answer near the padded edges (up to 6 px on a 450×300 frame: the network's
/// receptive field sees the padding where the reference sees its border), so a frame is run at
/// its exact size whenever that plan exists or may still be built; past this budget new sizes
/// are padded to the snap grid (at most 121 plans), so clients choosing sizes cannot make the
/// server build without bound. A fleet of cameras has a few sizes: 32 is plenty.
pub const MAX_EXACT_PLANS: usize = 32;

/// The PP-OCRv6 tiny text detector (DB); any input size that is a multiple of 32. An engine
/// with fixed-shape plans runs it at the frame's exact input size while [`MAX_EXACT_PLANS`]
/// allows, else at the [`PLAN_SIDES`] size that covers it (padding the input); the common
/// camera sizes are built at start-up, others once on first use.
pub struct TextDetector {
    model: Box<dyn Model>,
    /// An engine with a plan per shape: exact plans are budgeted, others padded.
    snap: bool,
    /// Exact-size plans that may still be built ([`MAX_EXACT_PLANS`]).
    exact_left: AtomicUsize,
    report: LoadReport,
}

impl std::fmt::Debug for TextDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextDetector").field("report", &self.report).finish()
    }
}

impl TextDetector {
    /// Load the model and prepare it for the given `(width, height)` input sizes.
    pub fn load(runtime: &Runtime, models_dir: &Path, sizes: &[(usize, usize)]) -> Result<TextDetector, ModelError> {
        let path = models_dir.join(OCR_DET_FILE);
        let started = Instant::now();
        let model = runtime.load(&path)?;
        // An engine that takes any shape as it comes needs nothing built ahead.
        let snap = runtime.plans_per_shape();
        for &(w, h) in sizes.iter().filter(|_| snap) {
            model.prepare(&[1, 3, h, w])?;
        }
        let input_shape = sizes.first().map_or(vec![], |&(w, h)| vec![1, 3, h, w]);
        let report = LoadReport { path, input_shape, load_time: started.elapsed(), family: "ppocr-det" };
        Ok(TextDetector { model, snap, exact_left: AtomicUsize::new(MAX_EXACT_PLANS), report })
    }

    /// At most `n` exact-size plans from now on (tests; the server's is [`MAX_EXACT_PLANS`]).
    pub fn with_exact_budget(self, n: usize) -> TextDetector {
        self.exact_left.store(n, Ordering::Relaxed);
        self
    }

    /// Whether a `w × h` input runs at its exact size: always on an engine without plans; on
    /// one with plans, when the plan exists or the budget allows building it.
    fn exact(&self, w: usize, h: usize) -> bool {
        !self.snap
            || self.model.has_plan(&[1, 3, h, w])
            || self.exact_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }

    /// Run on a `[1,3,h,w]` input, as wide as `width` allows; returns the `h×w` text
    /// probability map.
    pub fn run(&self, input: Vec<f32>, w: usize, h: usize, width: &Width) -> Result<Vec<f32>, ModelError> {
        let (pw, ph) = if self.exact(w, h) { (w, h) } else { (plan_side(w), plan_side(h)) };
        let input = if (pw, ph) == (w, h) { input } else { pad(&input, (w, h), (pw, ph)) };
        let outputs = self.model.run(tensor(&[1, 3, ph, pw], input)?, width)?;
        let map = outputs.into_iter().next().map(into_vec).unwrap_or_default();
        if map.len() != pw * ph {
            return Err(ModelError::Run(format!("text map of {} values for {pw}x{ph}", map.len())));
        }
        if (pw, ph) == (w, h) {
            return Ok(map);
        }
        Ok(map.chunks_exact(pw).take(h).flat_map(|row| row[..w].iter().copied()).collect())
    }
}

/// A tensor's values in row-major order, without a copy when it owns exactly them (collecting
/// through ndarray's element iterator cost ~8 % of an ONNX Runtime frame, perf).
fn into_vec(t: ndarray::ArrayD<f32>) -> Vec<f32> {
    if !t.is_standard_layout() {
        return t.iter().copied().collect();
    }
    // Standard layout: the elements are contiguous from the offset; the buffer is taken, not
    // copied, when they fill it (the usual case for a model's output).
    let n = t.len();
    let (v, offset) = t.into_raw_vec_and_offset();
    let offset = offset.unwrap_or(0);
    if offset == 0 && v.len() == n {
        v
    } else {
        v.get(offset..offset + n).map(<[f32]>::to_vec).unwrap_or_default()
    }
}

/// `input` (`[3, h, w]`, planar) zero-padded on the right and bottom to `[3, ph, pw]`.
fn pad(input: &[f32], (w, h): (usize, usize), (pw, ph): (usize, usize)) -> Vec<f32> {
    let mut out = vec![0f32; 3 * pw * ph];
    for (c, plane) in input.chunks_exact(w * h).enumerate().take(3) {
        for (y, row) in plane.chunks_exact(w).enumerate() {
            let at = c * pw * ph + y * pw;
            out[at..at + w].copy_from_slice(row);
        }
    }
    out
}

/// The PP-OCRv6 tiny recognizer (CTC), prepared for each width bucket, and its dictionary.
pub struct TextRecognizer {
    model: Box<dyn Model>,
    /// Lines per run (1 in the server).
    batch: usize,
    dict: Vec<String>,
    report: LoadReport,
}

impl std::fmt::Debug for TextRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRecognizer").field("report", &self.report).finish()
    }
}

impl TextRecognizer {
    /// Load the model and dictionary, prepare it for each of [`recognition::REC_BUCKETS`].
    pub fn load(runtime: &Runtime, models_dir: &Path) -> Result<TextRecognizer, ModelError> {
        TextRecognizer::load_batched(runtime, models_dir, 1)
    }

    /// As [`TextRecognizer::load`], prepared for `batch` lines per run (the recogniser-batching
    /// lever; the server runs batch 1, see `docs/PERFORMANCE.md`).
    pub fn load_batched(runtime: &Runtime, models_dir: &Path, batch: usize) -> Result<TextRecognizer, ModelError> {
        let path = models_dir.join(OCR_REC_FILE);
        let dict = read_lines(&models_dir.join(OCR_DICT_FILE))?;
        let started = Instant::now();
        let model = runtime.load(&path)?;
        for w in recognition::REC_BUCKETS.iter().filter(|_| runtime.plans_per_shape()) {
            model.prepare(&[batch, 3, recognition::REC_HEIGHT, *w])?;
        }
        let report = LoadReport {
            path,
            input_shape: vec![batch, 3, recognition::REC_HEIGHT, recognition::REC_BUCKETS[0]],
            load_time: started.elapsed(),
            family: "ppocr-rec",
        };
        Ok(TextRecognizer { model, batch, dict, report })
    }

    /// The dictionary (index 0 of the model's classes is the CTC blank, not in here).
    pub fn dict(&self) -> &[String] {
        &self.dict
    }

    /// Run on a `[batch,3,48,bucket]` input (`bucket` one of [`recognition::REC_BUCKETS`]);
    /// returns the `[batch·T, C]` softmax matrix with `batch·T` and `C`.
    pub fn run(&self, input: Vec<f32>, bucket: usize, width: &Width) -> Result<(Vec<f32>, usize, usize), ModelError> {
        if !recognition::REC_BUCKETS.contains(&bucket) {
            return Err(ModelError::Run(format!("no recognizer bucket for width {bucket}")));
        }
        let shape = [self.batch, 3, recognition::REC_HEIGHT, bucket];
        let outputs = self.model.run(tensor(&shape, input)?, width)?;
        let out: Vec<f32> = outputs.into_iter().next().map(into_vec).unwrap_or_default();
        let classes = self.dict.len() + 2;
        if !out.len().is_multiple_of(classes) {
            return Err(ModelError::Run(format!("recognizer output of {} values", out.len())));
        }
        let steps = out.len() / classes;
        Ok((out, steps, classes))
    }
}

impl_loaded!(TextDetector, TextRecognizer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::runtime::Loaded;

    #[test]
    fn sizes_snap_up_to_a_small_fixed_set() {
        assert_eq!((plan_side(640), plan_side(480)), (640, 480), "VGA is not padded");
        assert_eq!((plan_side(960), plan_side(544)), (960, 544), "720p at max side 960 is not padded");
        assert_eq!((plan_side(832), plan_side(608)), (960, 640));
        assert_eq!(plan_side(32), 160);
        assert_eq!(plan_side(2048), 2048);
        let sides: std::collections::BTreeSet<usize> = (1..=64).map(|k| plan_side(32 * k)).collect();
        assert!(sides.len() <= 11, "{sides:?}");
    }

    #[test]
    fn padding_keeps_each_plane_in_its_corner() {
        let input: Vec<f32> = (0..3 * 2 * 2).map(|v| v as f32 + 1.0).collect();
        let out = pad(&input, (2, 2), (3, 3));
        assert_eq!(
            out,
            vec![
                1., 2., 0., 3., 4., 0., 0., 0., 0., 5., 6., 0., 7., 8., 0., 0., 0., 0., 9., 10., 0., 11., 12., 0., 0.,
                0., 0.
            ]
        );
    }

    #[test]
    fn exact_sizes_until_the_budget_then_the_snap_grid() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let d = TextDetector::load(&Runtime::tract(1), &models, &[]).expect("loads").with_exact_budget(1);
        let run = |w: usize, h: usize| d.run(vec![0.0; 3 * w * h], w, h, &Width::narrow()).expect("runs").len();
        assert_eq!(run(448, 288), 448 * 288, "the map is always the input's size");
        assert_eq!(d.plans_built(), 1, "exact: its own plan");
        assert_eq!(run(416, 288), 416 * 288);
        assert_eq!(d.plans_built(), 2, "budget spent: padded to 480x320, built once");
        assert_eq!(run(416, 256), 416 * 256);
        assert_eq!(d.plans_built(), 2, "another size on the same grid point: no build");
        run(448, 288);
        assert_eq!(d.plans_built(), 2, "an exact plan that exists is used");
    }
}
