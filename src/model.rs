//! Every tract call lives here: models are loaded, typed and optimised once at start-up, then
//! shared read-only (`Arc`) by the whole inference pool.
//!
//! Two detector families: the shipped SSD-MobileNetV2-COCO (NHWC `[1,300,300,3]`, outputs
//! `boxes [1,1917,4]` and `scores [1,1917,80]`, see `models/PROVENANCE.md`) and Ultralytics-style
//! YOLO exports a user brings with `--detector` (NCHW input, letterboxed; v5 `[1,N,5+C]` or
//! v8/11 `[1,4+C,N]` output), told apart by their input and output shapes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

use crate::image::RgbImage;
use crate::nms::{nms_classwise, Candidate};
use crate::preprocess::{letterbox_input, ssd_input};
use crate::protocol::Detection;
use crate::yolo::{self, YoloLayout};

/// File name of the shipped detector inside `--models`.
pub const SSD_FILE: &str = "ssd_mobilenet_v2_coco.onnx";
/// File name of the class names inside `--models`.
pub const NAMES_FILE: &str = "coco.names";
/// SSD input side (fixed by the model).
const SSD_SIDE: usize = 300;
/// Class-wise NMS IoU threshold of the SSD decoding (TF OD API exporter, PROVENANCE.md).
pub const SSD_IOU: f32 = 0.6;
/// NMS IoU threshold for YOLO exports (YOLOv5's `detect.py` default).
pub const YOLO_IOU: f32 = 0.45;
/// At most this many detections per frame (TF OD API exporter's top 100).
pub const MAX_DETECTIONS: usize = 100;
/// Input side used when a YOLO export leaves its input size symbolic.
const YOLO_DEFAULT_SIDE: usize = 640;

type Plan = Arc<TypedRunnableModel>;

/// A model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model or names file is not where the configuration says.
    #[error("model file not found: {0} (start from the repository root or pass --models DIR)")]
    Missing(PathBuf),
    /// tract refused the model file (unsupported operator, bad file, shapes that do not unify).
    #[error("cannot load {path}: {why}")]
    Load {
        /// The model file.
        path: PathBuf,
        /// tract's explanation.
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

fn run_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Run(e.to_string())
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Ssd,
    Yolo(YoloLayout),
}

/// What was loaded, for the start-up log.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Model file.
    pub path: PathBuf,
    /// Input shape the plan was built for.
    pub input_shape: Vec<usize>,
    /// Wall time to load, type and optimise.
    pub load_time: Duration,
    /// `ssd` or `yolov5` / `yolov8`.
    pub family: &'static str,
}

/// An object detector, ready to run from any thread.
pub struct Detector {
    plan: Plan,
    kind: Kind,
    /// Model input width and height.
    input_w: usize,
    input_h: usize,
    labels: Vec<String>,
    report: LoadReport,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("report", &self.report).finish()
    }
}

fn read_labels(models_dir: &Path) -> Result<Vec<String>, ModelError> {
    let path = models_dir.join(NAMES_FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| ModelError::Missing(path.clone()))?;
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect())
}

fn load_err(path: &Path) -> impl Fn(TractError) -> ModelError + '_ {
    move |e| ModelError::Load { path: path.to_path_buf(), why: format!("{e:#}") }
}

fn concrete_shape(fact: &TypedFact) -> Option<Vec<usize>> {
    fact.shape.as_concrete().map(|s| s.to_vec())
}

impl Detector {
    /// Load the shipped SSD-MobileNetV2-COCO detector and `coco.names` from `models_dir`.
    pub fn load_ssd(models_dir: &Path) -> Result<Detector, ModelError> {
        let path = models_dir.join(SSD_FILE);
        if !path.is_file() {
            return Err(ModelError::Missing(path));
        }
        let labels = read_labels(models_dir)?;
        let started = Instant::now();
        let shape = [1, SSD_SIDE, SSD_SIDE, 3];
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_path(&path)
            .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
            .and_then(|m| m.into_optimized())
            .map_err(load_err(&path))?;
        let outs: Vec<Option<Vec<usize>>> =
            (0..model.outputs.len()).map(|i| model.output_fact(i).ok().and_then(concrete_shape)).collect();
        let expected = [Some(vec![1, 1917, 4]), Some(vec![1, 1917, 80])];
        if outs != expected {
            return Err(ModelError::Layout {
                path,
                why: format!("outputs {outs:?}, expected boxes and scores {expected:?}"),
            });
        }
        let plan = model.into_runnable().map_err(load_err(&path))?;
        let report = LoadReport { path, input_shape: shape.to_vec(), load_time: started.elapsed(), family: "ssd" };
        Ok(Detector { plan, kind: Kind::Ssd, input_w: SSD_SIDE, input_h: SSD_SIDE, labels, report })
    }

    /// Load a user's Ultralytics YOLO export; class names come from `models_dir/coco.names`
    /// when the model has 80 classes, else `class_<id>`.
    pub fn load_yolo(path: &Path, models_dir: &Path) -> Result<Detector, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Missing(path.to_path_buf()));
        }
        let started = Instant::now();
        let inference = tract_onnx::onnx().with_ignore_value_info(true).model_for_path(path).map_err(load_err(path))?;
        let declared =
            inference.input_fact(0).ok().and_then(|f| f.shape.as_concrete_finite().ok().flatten()).map(|s| s.to_vec());
        let shape = match declared {
            Some(s) if s.len() == 4 && s[0] == 1 && s[1] == 3 && s[2] > 0 && s[3] > 0 => s,
            Some(s) => {
                return Err(ModelError::Layout { path: path.into(), why: format!("input {s:?}, expected [1,3,H,W]") })
            }
            None => vec![1, 3, YOLO_DEFAULT_SIDE, YOLO_DEFAULT_SIDE],
        };
        let model = inference
            .with_input_fact(0, f32::fact(&shape).into())
            .and_then(|m| m.into_optimized())
            .map_err(load_err(path))?;
        let out = model.output_fact(0).ok().and_then(concrete_shape).unwrap_or_default();
        let layout = yolo::layout_from_shape(&out).ok_or_else(|| ModelError::Layout {
            path: path.into(),
            why: format!("output {out:?} is neither [1,N,5+C] nor [1,4+C,N]"),
        })?;
        let classes = match layout {
            YoloLayout::V5 { classes, .. } | YoloLayout::V8 { classes, .. } => classes,
        };
        let coco = read_labels(models_dir).unwrap_or_default();
        let labels = if classes == coco.len() { coco } else { (0..classes).map(|c| format!("class_{c}")).collect() };
        let plan = model.into_runnable().map_err(load_err(path))?;
        let family = if matches!(layout, YoloLayout::V5 { .. }) { "yolov5" } else { "yolov8" };
        let report = LoadReport { path: path.into(), input_shape: shape.clone(), load_time: started.elapsed(), family };
        Ok(Detector { plan, kind: Kind::Yolo(layout), input_w: shape[3], input_h: shape[2], labels, report })
    }

    /// What was loaded and how long it took.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The largest DCT-domain downscale (1, 2, 4 or 8, for [`crate::jpeg::decode_rgb`]) that
    /// still gives this detector at least its input resolution from a `width × height` frame:
    /// the model then samples a smaller image without losing detail it would have used.
    /// SSD stretches the frame to its square input, so both scaled sides must reach it; a YOLO
    /// letterbox scales by the tighter side, so one scaled side reaching its input is enough.
    pub fn decode_scale(&self, width: usize, height: usize) -> u8 {
        let stretch = matches!(self.kind, Kind::Ssd);
        decode_scale_for(stretch, (self.input_w, self.input_h), (width, height))
    }

    /// Detect objects in `img`; boxes in `img` pixels, highest score first, scores > `min_score`.
    pub fn detect(&self, img: &RgbImage, min_score: f32) -> Result<Vec<Detection>, ModelError> {
        self.detect_scaled(img, (img.width, img.height), min_score)
    }

    /// As [`Detector::detect`], with boxes in the pixels of a `frame` (width, height) that `img`
    /// is a downscaled decode of (see [`Detector::decode_scale`]).
    pub fn detect_scaled(
        &self,
        img: &RgbImage,
        frame: (usize, usize),
        min_score: f32,
    ) -> Result<Vec<Detection>, ModelError> {
        let (w, h) = (self.input_w, self.input_h);
        let mut buf = vec![0f32; w * h * 3];
        let (fw, fh) = (frame.0 as f32, frame.1 as f32);
        match self.kind {
            Kind::Ssd => {
                ssd_input(img, w, h, &mut buf);
                let input = Tensor::from_shape(&[1, h, w, 3], &buf).map_err(run_err)?;
                let outputs = self.plan.run(tvec!(input.into())).map_err(run_err)?;
                let boxes = outputs[0].to_plain_array_view::<f32>().map_err(run_err)?;
                let scores = outputs[1].to_plain_array_view::<f32>().map_err(run_err)?;
                let boxes = boxes.as_slice().ok_or_else(|| run_err("boxes not contiguous"))?;
                let scores = scores.as_slice().ok_or_else(|| run_err("scores not contiguous"))?;
                let classes = self.labels.len().min(80);
                let cands = ssd_candidates(boxes, scores, 80, classes, min_score);
                let kept = nms_classwise(cands, SSD_IOU, MAX_DETECTIONS);
                Ok(kept
                    .into_iter()
                    .map(|c| {
                        let b = c.bbox;
                        self.detection(c, [b[0] * fw, b[1] * fh, b[2] * fw, b[3] * fh])
                    })
                    .collect())
            }
            Kind::Yolo(layout) => {
                let lb = letterbox_input(img, w, h, &mut buf);
                let input = Tensor::from_shape(&[1, 3, h, w], &buf).map_err(run_err)?;
                let outputs = self.plan.run(tvec!(input.into())).map_err(run_err)?;
                let out = outputs[0].to_plain_array_view::<f32>().map_err(run_err)?;
                let out = out.as_slice().ok_or_else(|| run_err("output not contiguous"))?;
                let cands = yolo::decode(out, layout, min_score);
                let kept = nms_classwise(cands, YOLO_IOU, MAX_DETECTIONS);
                Ok(kept
                    .into_iter()
                    .map(|c| {
                        let b = lb.unmap(c.bbox, img.width, img.height);
                        let (sx, sy) = (fw / img.width as f32, fh / img.height as f32);
                        self.detection(c, [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy])
                    })
                    .collect())
            }
        }
    }

    fn detection(&self, c: Candidate, bbox: [f32; 4]) -> Detection {
        let label = self.labels.get(c.class_id).cloned().unwrap_or_else(|| format!("class_{}", c.class_id));
        let round1 = |v: f32| (v * 10.0).round() / 10.0;
        Detection {
            label,
            class_id: c.class_id,
            score: (c.score * 10_000.0).round() / 10_000.0,
            bbox: [round1(bbox[0]), round1(bbox[1]), round1(bbox[2]), round1(bbox[3])],
        }
    }
}

/// See [`Detector::decode_scale`]: `stretch` for a model that stretches the frame to its input
/// (both sides must be covered), else letterboxed (one side is enough).
fn decode_scale_for(stretch: bool, input: (usize, usize), frame: (usize, usize)) -> u8 {
    [8u8, 4, 2]
        .into_iter()
        .find(|&d| {
            let (w, h) = (frame.0.div_ceil(usize::from(d)), frame.1.div_ceil(usize::from(d)));
            let (cover_w, cover_h) = (w >= input.0, h >= input.1);
            if stretch {
                cover_w && cover_h
            } else {
                cover_w || cover_h
            }
        })
        .unwrap_or(1)
}

/// SSD decoding before NMS: every (anchor, class) with a score above `min_score` becomes a
/// candidate, box clipped to [0, 1] (normalised coordinates). One anchor may yield several
/// classes, as in the TF OD API exporter.
fn ssd_candidates(boxes: &[f32], scores: &[f32], stride: usize, classes: usize, min_score: f32) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (b, s) in boxes.chunks_exact(4).zip(scores.chunks_exact(stride)) {
        for (class_id, &score) in s.iter().take(classes).enumerate() {
            if score > min_score {
                let c = |v: f32| v.clamp(0.0, 1.0);
                out.push(Candidate { class_id, score, bbox: [c(b[0]), c(b[1]), c(b[2]), c(b[3])] });
            }
        }
    }
    out
}

/// File names of the OCR models inside `--models`.
pub const OCR_DET_FILE: &str = "ppocrv6_tiny_det.onnx";
/// Recognizer file name.
pub const OCR_REC_FILE: &str = "ppocrv6_tiny_rec.onnx";
/// Recognizer dictionary file name.
pub const OCR_DICT_FILE: &str = "ppocrv6_tiny_dict.txt";
/// Recognizer input widths: a plan each, built at start-up (a symbolic width runs ~3× slower).
pub const REC_BUCKETS: [usize; 4] = [320, 640, 960, 1280];
/// Recognizer input height (fixed by the model).
pub const REC_HEIGHT: usize = 48;
/// Most text-detector plans kept (one per input size); sizes beyond get a one-off plan.
pub const MAX_TEXT_DET_PLANS: usize = 32;

fn load_onnx(path: &Path) -> Result<InferenceModel, ModelError> {
    if !path.is_file() {
        return Err(ModelError::Missing(path.to_path_buf()));
    }
    // The PP-OCR exports carry symbolic value_info that clashes with concrete input facts.
    tract_onnx::onnx().with_ignore_value_info(true).model_for_path(path).map_err(load_err(path))
}

fn plan_for(model: &InferenceModel, path: &Path, shape: [usize; 4]) -> Result<Plan, ModelError> {
    model
        .clone()
        .with_input_fact(0, f32::fact(shape).into())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(load_err(path))
}

fn run_single(plan: &Plan, shape: [usize; 4], data: Vec<f32>) -> Result<Vec<f32>, ModelError> {
    let input = tract_ndarray::Array4::from_shape_vec(shape, data).map_err(run_err)?.into_tensor();
    let outputs = plan.run(tvec!(input.into())).map_err(run_err)?;
    let view = outputs[0].to_plain_array_view::<f32>().map_err(run_err)?;
    Ok(view.iter().copied().collect())
}

/// The PP-OCRv6 tiny text detector (DB): one optimised plan per input size (multiples of 32),
/// the common camera sizes built at start-up, others on first use (cached, bounded).
pub struct TextDetector {
    path: PathBuf,
    model: InferenceModel,
    plans: parking_lot::RwLock<std::collections::HashMap<(usize, usize), Plan>>,
    report: LoadReport,
}

impl std::fmt::Debug for TextDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextDetector").field("report", &self.report).finish()
    }
}

impl TextDetector {
    /// Load the model and build plans for the given `(width, height)` input sizes.
    pub fn load(models_dir: &Path, sizes: &[(usize, usize)]) -> Result<TextDetector, ModelError> {
        let path = models_dir.join(OCR_DET_FILE);
        let started = Instant::now();
        let model = load_onnx(&path)?;
        let mut plans = std::collections::HashMap::new();
        for &(w, h) in sizes {
            plans.insert((w, h), plan_for(&model, &path, [1, 3, h, w])?);
        }
        let input_shape = sizes.first().map_or(vec![], |&(w, h)| vec![1, 3, h, w]);
        let report = LoadReport { path: path.clone(), input_shape, load_time: started.elapsed(), family: "ppocr-det" };
        Ok(TextDetector { path, model, plans: parking_lot::RwLock::new(plans), report })
    }

    /// What was loaded and how long it took.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    fn plan(&self, w: usize, h: usize) -> Result<Plan, ModelError> {
        if let Some(p) = self.plans.read().get(&(w, h)) {
            return Ok(Arc::clone(p));
        }
        let started = Instant::now();
        let plan = plan_for(&self.model, &self.path, [1, 3, h, w])?;
        let mut plans = self.plans.write();
        if plans.len() < MAX_TEXT_DET_PLANS {
            plans.insert((w, h), Arc::clone(&plan));
            log::info!("built text detector plan {w}x{h} in {:.2} s", started.elapsed().as_secs_f64());
        }
        Ok(plan)
    }

    /// Run on a `[1,3,h,w]` input; returns the `h×w` text probability map.
    pub fn run(&self, input: Vec<f32>, w: usize, h: usize) -> Result<Vec<f32>, ModelError> {
        let plan = self.plan(w, h)?;
        let map = run_single(&plan, [1, 3, h, w], input)?;
        if map.len() != w * h {
            return Err(ModelError::Run(format!("text map of {} values for {w}x{h}", map.len())));
        }
        Ok(map)
    }
}

/// The PP-OCRv6 tiny recognizer (CTC), a plan per width bucket, and its dictionary.
pub struct TextRecognizer {
    plans: Vec<(usize, Plan)>,
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
    /// Load the model and dictionary, build a plan for each of [`REC_BUCKETS`].
    pub fn load(models_dir: &Path) -> Result<TextRecognizer, ModelError> {
        TextRecognizer::load_batched(models_dir, 1)
    }

    /// As [`TextRecognizer::load`], with plans that take `batch` lines per run (the
    /// recogniser-batching lever; the server runs batch 1, see the README's lever table).
    pub fn load_batched(models_dir: &Path, batch: usize) -> Result<TextRecognizer, ModelError> {
        let path = models_dir.join(OCR_REC_FILE);
        let dict_path = models_dir.join(OCR_DICT_FILE);
        let text = std::fs::read_to_string(&dict_path).map_err(|_| ModelError::Missing(dict_path.clone()))?;
        let dict: Vec<String> = text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
        let started = Instant::now();
        let model = load_onnx(&path)?;
        let plans = REC_BUCKETS
            .iter()
            .map(|&w| Ok((w, plan_for(&model, &path, [batch, 3, REC_HEIGHT, w])?)))
            .collect::<Result<Vec<_>, ModelError>>()?;
        let report = LoadReport {
            path,
            input_shape: vec![batch, 3, REC_HEIGHT, REC_BUCKETS[0]],
            load_time: started.elapsed(),
            family: "ppocr-rec",
        };
        Ok(TextRecognizer { plans, batch, dict, report })
    }

    /// What was loaded and how long it took.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The dictionary (index 0 of the model's classes is the CTC blank, not in here).
    pub fn dict(&self) -> &[String] {
        &self.dict
    }

    /// Run on a `[batch,3,48,width]` input (`width` one of [`REC_BUCKETS`]); returns the
    /// `[batch·T, C]` softmax matrix with `batch·T` and `C`.
    pub fn run(&self, input: Vec<f32>, width: usize) -> Result<(Vec<f32>, usize, usize), ModelError> {
        let plan = self
            .plans
            .iter()
            .find(|(w, _)| *w == width)
            .map(|(_, p)| p)
            .ok_or_else(|| ModelError::Run(format!("no recognizer plan for width {width}")))?;
        let out = run_single(plan, [self.batch, 3, REC_HEIGHT, width], input)?;
        let classes = self.dict.len() + 2;
        if out.len() % classes != 0 {
            return Err(ModelError::Run(format!("recognizer output of {} values", out.len())));
        }
        let steps = out.len() / classes;
        Ok((out, steps, classes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssd_candidates_keep_every_class_above_threshold_and_clip() {
        let boxes = [-0.1, 0.2, 0.5, 1.2, 0.0, 0.0, 0.1, 0.1];
        let mut scores = vec![0.0f32; 160];
        scores[2] = 0.9; // anchor 0, class 2
        scores[3] = 0.6; // anchor 0, class 3 (same box, second label)
        scores[80 + 5] = 0.5; // anchor 1, class 5: not strictly above 0.5
        let c = ssd_candidates(&boxes, &scores, 80, 80, 0.5);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].class_id, 2);
        assert_eq!(c[0].bbox, [0.0, 0.2, 0.5, 1.0]);
        assert_eq!(c[1].class_id, 3);
    }

    #[test]
    fn decode_scale_never_goes_below_the_model_input() {
        let ssd = |w, h| decode_scale_for(true, (300, 300), (w, h));
        assert_eq!(ssd(640, 480), 1, "480 / 2 < 300");
        assert_eq!(ssd(1280, 720), 2);
        assert_eq!(ssd(1920, 1080), 2, "1080 / 4 < 300");
        assert_eq!(ssd(2560, 1440), 4);
        assert_eq!(ssd(4000, 3000), 8);
        assert_eq!(ssd(2400, 301), 1, "the short side decides");
        assert_eq!(ssd(200, 100), 1, "never enlarged, never below 1");
        assert_eq!(ssd(600, 600), 2, "exactly the input is enough");
        assert_eq!(ssd(599, 600), 2, "ceil(599 / 2) = 300");
        let yolo = |w, h| decode_scale_for(false, (640, 640), (w, h));
        assert_eq!(yolo(1280, 720), 2, "the long side covers 640");
        assert_eq!(yolo(1920, 1080), 2);
        assert_eq!(yolo(640, 480), 1);
        assert_eq!(yolo(5120, 100), 8);
    }

    #[test]
    fn missing_model_is_a_clear_error() {
        let e = Detector::load_ssd(Path::new("/nonexistent-dir")).unwrap_err();
        assert!(matches!(e, ModelError::Missing(_)), "{e}");
    }
}
