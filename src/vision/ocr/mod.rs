//! OCR: the PP-OCRv6 tiny text detector (DB) and recognizer (CTC) as loaded models, with the
//! pre- and post-processing around each in its own file ([`detection`], [`recognition`]); the
//! OpenCV/pyclipper pieces they need live in [`crate::vision::cv`]. The networks run behind
//! [`Model`], whichever engine that is.

use std::path::Path;
use std::time::Instant;

use crate::vision::detect::tensor;
use crate::vision::runtime::{read_lines, LoadReport, Model, ModelError, Runtime};

pub mod detection;
pub mod recognition;

pub use detection::TextQuad;

/// File names of the OCR models inside `--models`.
pub const OCR_DET_FILE: &str = "ppocrv6_tiny_det.onnx";
/// Recognizer file name.
pub const OCR_REC_FILE: &str = "ppocrv6_tiny_rec.onnx";
/// Recognizer dictionary file name.
pub const OCR_DICT_FILE: &str = "ppocrv6_tiny_dict.txt";

/// The PP-OCRv6 tiny text detector (DB); any input size that is a multiple of 32. An engine
/// with fixed-shape plans builds the common camera sizes at start-up, others on first use.
pub struct TextDetector {
    model: Box<dyn Model>,
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
        for &(w, h) in sizes.iter().filter(|_| runtime.plans_per_shape()) {
            model.prepare(&[1, 3, h, w])?;
        }
        let input_shape = sizes.first().map_or(vec![], |&(w, h)| vec![1, 3, h, w]);
        let report = LoadReport { path, input_shape, load_time: started.elapsed(), family: "ppocr-det" };
        Ok(TextDetector { model, report })
    }

    /// What was loaded and how long it took.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Run on a `[1,3,h,w]` input; returns the `h×w` text probability map.
    pub fn run(&self, input: Vec<f32>, w: usize, h: usize) -> Result<Vec<f32>, ModelError> {
        let outputs = self.model.run(tensor(&[1, 3, h, w], input)?)?;
        let map = outputs.into_iter().next().map(|t| t.into_iter().collect::<Vec<f32>>()).unwrap_or_default();
        if map.len() != w * h {
            return Err(ModelError::Run(format!("text map of {} values for {w}x{h}", map.len())));
        }
        Ok(map)
    }
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

    /// What was loaded and how long it took.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The dictionary (index 0 of the model's classes is the CTC blank, not in here).
    pub fn dict(&self) -> &[String] {
        &self.dict
    }

    /// Run on a `[batch,3,48,width]` input (`width` one of [`recognition::REC_BUCKETS`]);
    /// returns the `[batch·T, C]` softmax matrix with `batch·T` and `C`.
    pub fn run(&self, input: Vec<f32>, width: usize) -> Result<(Vec<f32>, usize, usize), ModelError> {
        if !recognition::REC_BUCKETS.contains(&width) {
            return Err(ModelError::Run(format!("no recognizer bucket for width {width}")));
        }
        let outputs = self.model.run(tensor(&[self.batch, 3, recognition::REC_HEIGHT, width], input)?)?;
        let out: Vec<f32> = outputs.into_iter().next().map(|t| t.into_iter().collect()).unwrap_or_default();
        let classes = self.dict.len() + 2;
        if !out.len().is_multiple_of(classes) {
            return Err(ModelError::Run(format!("recognizer output of {} values", out.len())));
        }
        let steps = out.len() / classes;
        Ok((out, steps, classes))
    }
}
