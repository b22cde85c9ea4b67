//! Object detection: the detector families, their input preprocessing, output decoding and NMS.
//!
//! Two families: the shipped SSD-MobileNetV2-COCO (NHWC `[1,300,300,3]`, outputs
//! `boxes [1,1917,4]` and `scores [1,1917,80]`, see `models/PROVENANCE.md`; decoded in [`ssd`])
//! and Ultralytics-style YOLO exports a user brings with `--detector` (NCHW input, letterboxed;
//! v5 `[1,N,5+C]` or v8/11 `[1,4+C,N]` output; decoded in [`yolo`]), told apart by their input
//! and output shapes. The network itself runs behind [`Model`]: this module never knows which
//! engine runs it.

use std::path::Path;
use std::time::Instant;

use ndarray::ArrayD;

use crate::classes::ClassSet;

use crate::vision::analysis::{Detection, DetectorInfo};
use crate::vision::image::RgbImage;
use crate::vision::parallel::Width;
use crate::vision::runtime::{impl_loaded, read_lines, run_err, LoadReport, Model, ModelError, Runtime};

pub mod nms;
pub mod preprocess;
pub mod ssd;
pub mod yolo;

use nms::{nms_classwise, Candidate};
use preprocess::{letterbox_input, ssd_input};
use yolo::YoloLayout;

/// File name of the shipped detector inside `--models`.
pub const SSD_FILE: &str = "ssd_mobilenet_v2_coco.onnx";
/// File name of the class names inside `--models`.
pub const NAMES_FILE: &str = "coco.names";
/// NMS IoU threshold for YOLO exports: Ultralytics' `model.predict()` default.
pub const YOLO_IOU: f32 = 0.7;
/// At most this many detections per frame from a YOLO export: Ultralytics' `max_det` default.
pub const YOLO_MAX_DETECTIONS: usize = 300;
/// At most this many detections per frame from the SSD (TF OD API exporter's top 100).
pub const MAX_DETECTIONS: usize = 100;

/// How a detector decodes, from the configuration; `None` = the family's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorOptions {
    /// `--labels FILE`: class names, one a line, instead of the export's own.
    pub labels: Option<std::path::PathBuf>,
    /// `--nms-iou`: class-wise NMS IoU threshold (SSD 0.6, YOLO 0.7).
    pub nms_iou: Option<f32>,
    /// `--max-detections`: most detections per frame (SSD 100, YOLO 300).
    pub max_detections: Option<usize>,
}
/// Input side used when a YOLO export leaves its input size symbolic.
const YOLO_DEFAULT_SIDE: usize = 640;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Ssd,
    Yolo(YoloLayout),
}

/// An object detector, ready to run from any thread.
pub struct Detector {
    model: Box<dyn Model>,
    kind: Kind,
    nms_iou: f32,
    max_detections: usize,
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

fn layout_err(path: &Path, why: String) -> ModelError {
    ModelError::Layout { path: path.to_path_buf(), why }
}

impl Detector {
    /// Load the shipped SSD-MobileNetV2-COCO detector and `coco.names` from `models_dir`.
    pub fn load_ssd(runtime: &Runtime, models_dir: &Path) -> Result<Detector, ModelError> {
        Detector::load_ssd_with(runtime, models_dir, &DetectorOptions::default())
    }

    /// As [`Detector::load_ssd`], decoding as `options` say.
    pub fn load_ssd_with(
        runtime: &Runtime,
        models_dir: &Path,
        options: &DetectorOptions,
    ) -> Result<Detector, ModelError> {
        let path = models_dir.join(SSD_FILE);
        let started = Instant::now();
        let model = runtime.load(&path)?;
        let labels = match &options.labels {
            Some(file) => labels_for(file, Some(ssd::CLASSES))?,
            None => read_lines(&models_dir.join(NAMES_FILE))?,
        };
        let shape = [1, ssd::SIDE, ssd::SIDE, 3];
        let outs = model.prepare(&shape)?;
        if !outs.iter().map(Vec::as_slice).eq(ssd::OUTPUTS.iter().map(|s| &s[..])) {
            return Err(layout_err(&path, format!("outputs {outs:?}, expected boxes and scores {:?}", ssd::OUTPUTS)));
        }
        let report = LoadReport { path, input_shape: shape.to_vec(), load_time: started.elapsed(), family: "ssd" };
        Ok(Detector {
            model,
            kind: Kind::Ssd,
            nms_iou: options.nms_iou.unwrap_or(ssd::IOU),
            max_detections: options.max_detections.unwrap_or(MAX_DETECTIONS),
            input_w: ssd::SIDE,
            input_h: ssd::SIDE,
            labels,
            report,
        })
    }

    /// Load a user's Ultralytics YOLO export with the family's defaults.
    pub fn load_yolo(runtime: &Runtime, path: &Path, models_dir: &Path) -> Result<Detector, ModelError> {
        Detector::load_yolo_with(runtime, path, models_dir, &DetectorOptions::default())
    }

    /// Load a user's Ultralytics YOLO export. Its layout comes from its metadata and shapes
    /// ([`yolo::layout_for`]); its class names from `options.labels`, else its own `names`
    /// metadata, else `models_dir/coco.names` when it has 80 classes, else `class_<id>`.
    pub fn load_yolo_with(
        runtime: &Runtime,
        path: &Path,
        models_dir: &Path,
        options: &DetectorOptions,
    ) -> Result<Detector, ModelError> {
        let started = Instant::now();
        let hint = |e: ModelError| match e {
            ModelError::Load { path, why } => ModelError::Load {
                path,
                why: format!(
                    "{why} (the engine cannot run this graph: re-export with `nms=False`, or try the other \
                     `--engine`)"
                ),
            },
            e => e,
        };
        let model = runtime.load(path).map_err(hint)?;
        let meta = yolo::ExportMeta::read(|k| model.metadata(k));
        let declared = model.declared_input();
        let shape = match declared.iter().copied().collect::<Option<Vec<usize>>>() {
            Some(s) if s.len() == 4 && s[0] == 1 && s[1] == 3 && s[2] > 0 && s[3] > 0 => s,
            Some(s) => return Err(layout_err(path, format!("input {s:?}, expected [1,3,H,W]"))),
            None => vec![1, 3, YOLO_DEFAULT_SIDE, YOLO_DEFAULT_SIDE],
        };
        let outs = model.prepare(&shape).map_err(hint)?;
        let out = outs.first().cloned().unwrap_or_default();
        let layout = yolo::layout_for(&out, &meta).map_err(|why| layout_err(path, why))?;
        let labels = match (&options.labels, meta.names, layout.classes()) {
            (Some(file), _, classes) => labels_for(file, classes)?,
            (None, Some(names), Some(c)) if names.len() != c => {
                return Err(layout_err(
                    path,
                    format!("its `names` metadata has {} classes, its output {c}", names.len()),
                ));
            }
            (None, Some(names), _) => names,
            (None, None, Some(c)) => {
                let coco = read_lines(&models_dir.join(NAMES_FILE)).unwrap_or_default();
                if c == coco.len() {
                    coco
                } else {
                    (0..c).map(|i| format!("class_{i}")).collect()
                }
            }
            (None, None, None) => Vec::new(),
        };
        let report = LoadReport {
            path: path.into(),
            input_shape: shape.clone(),
            load_time: started.elapsed(),
            family: layout.family(),
        };
        Ok(Detector {
            model,
            kind: Kind::Yolo(layout),
            nms_iou: options.nms_iou.unwrap_or(YOLO_IOU),
            max_detections: options.max_detections.unwrap_or(YOLO_MAX_DETECTIONS),
            input_w: shape[3],
            input_h: shape[2],
            labels,
            report,
        })
    }

    /// The class names, by class id.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Most detections a frame gets (`--max-detections`, else the family's default).
    pub fn max_detections(&self) -> usize {
        self.max_detections
    }

    /// What `session_started` says about this detector.
    pub fn info(&self) -> DetectorInfo {
        DetectorInfo {
            family: self.report.family,
            input: [self.input_w, self.input_h],
            classes: self.labels.clone(),
            max_detections: self.max_detections,
        }
    }

    /// The largest DCT-domain downscale (1, 2, 4 or 8, for [`crate::vision::jpeg::decode_rgb`])
    /// that still gives this detector at least its input resolution from a `width × height`
    /// frame: the model then samples a smaller image without losing detail it would have used.
    /// SSD stretches the frame to its square input, so both scaled sides must reach it; a YOLO
    /// letterbox scales by the tighter side, so one scaled side reaching its input is enough.
    pub fn decode_scale(&self, width: usize, height: usize) -> u8 {
        let stretch = matches!(self.kind, Kind::Ssd);
        decode_scale_for(stretch, (self.input_w, self.input_h), (width, height))
    }

    /// Detect objects in `img`; boxes in `img` pixels, highest score first, scores > `min_score`.
    /// On one core ([`Width::narrow`]), as any caller outside the scheduler.
    pub fn detect(&self, img: &RgbImage, min_score: f32) -> Result<Vec<Detection>, ModelError> {
        let wanted = Wanted { min_score, ..Wanted::default() };
        self.detect_scaled(img, (img.width, img.height), &wanted, &Width::narrow())
    }

    /// As [`Detector::detect`], with boxes in the pixels of a `frame` (width, height) that `img`
    /// is a downscaled decode of (see [`Detector::decode_scale`]), the detections `wanted`, as
    /// wide as `width` allows.
    pub fn detect_scaled(
        &self,
        img: &RgbImage,
        frame: (usize, usize),
        wanted: &Wanted<'_>,
        width: &Width,
    ) -> Result<Vec<Detection>, ModelError> {
        let min_score = wanted.min_score;
        let max_detections = wanted.max_detections.map_or(self.max_detections, |n| n.min(self.max_detections));
        // The class filter comes before NMS and every cap: `classes=car` on a crowded frame
        // still finds the cars that 100 other objects outscore.
        let keep = |mut cands: Vec<Candidate>| {
            if let Some(classes) = wanted.classes {
                cands.retain(|c| classes.contains(c.class_id));
            }
            cands
        };
        let (w, h) = (self.input_w, self.input_h);
        let mut buf = vec![0f32; w * h * 3];
        let (fw, fh) = (frame.0 as f32, frame.1 as f32);
        match self.kind {
            Kind::Ssd => {
                ssd_input(img, w, h, &mut buf);
                let outputs = self.model.run(tensor(&[1, h, w, 3], buf)?, width)?;
                let [boxes, scores] = outputs.as_slice() else {
                    return Err(run_err(format!("{} outputs, expected boxes and scores", outputs.len())));
                };
                let boxes = boxes.as_slice().ok_or_else(|| run_err("boxes not contiguous"))?;
                let scores = scores.as_slice().ok_or_else(|| run_err("scores not contiguous"))?;
                let classes = self.labels.len().min(ssd::CLASSES);
                let cands = keep(ssd::candidates(boxes, scores, ssd::CLASSES, classes, min_score));
                let kept = nms_classwise(cands, self.nms_iou, max_detections);
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
                let outputs = self.model.run(tensor(&[1, 3, h, w], buf)?, width)?;
                let out = outputs.first().ok_or_else(|| run_err("no output"))?;
                let out = out.as_slice().ok_or_else(|| run_err("output not contiguous"))?;
                let cands = keep(yolo::decode(out, layout, min_score));
                let kept = match layout {
                    // Final rows: no NMS to run, only the cap (NaN-free by `decode`).
                    YoloLayout::EndToEnd { .. } => {
                        let mut c = cands;
                        c.sort_by(|a, b| b.score.total_cmp(&a.score));
                        c.truncate(max_detections);
                        c
                    }
                    _ => nms_classwise(cands, self.nms_iou, max_detections),
                };
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
        Detection { label, class_id: c.class_id, score: c.score, bbox }
    }
}

/// The class names in `file` (`--labels`), one a line, refused when the model's class count is
/// known (`classes`) and the file names a different number: a shifted or truncated file would
/// otherwise label every detection wrongly without a word. (An end-to-end export does not say
/// how many classes it has: any count is taken, and ids beyond it are `class_N`.)
fn labels_for(file: &Path, classes: Option<usize>) -> Result<Vec<String>, ModelError> {
    let labels = read_lines(file)?;
    match classes {
        Some(c) if labels.len() != c => Err(layout_err(
            file,
            format!("--labels names {} classes, the model has {c} (one name a line, line N = class N)", labels.len()),
        )),
        _ => Ok(labels),
    }
}

/// Which detections a frame wants (a session's options, resolved): applied inside the detector,
/// the class filter before NMS and every cap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted<'a> {
    /// Only detections scoring strictly above this.
    pub min_score: f32,
    /// Only these class ids (`None`: every class).
    pub classes: Option<&'a ClassSet>,
    /// At most this many (never above the detector's own cap; `None`: its cap).
    pub max_detections: Option<usize>,
}

/// A model input tensor of `shape` from `data` (its length must match).
pub(crate) fn tensor(shape: &[usize], data: Vec<f32>) -> Result<ArrayD<f32>, ModelError> {
    ArrayD::from_shape_vec(shape, data).map_err(run_err)
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

impl_loaded!(Detector);

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = Detector::load_ssd(&Runtime::tract(1), Path::new("/nonexistent-dir")).unwrap_err();
        assert!(matches!(e, ModelError::Missing(_)), "{e}");
    }
}
