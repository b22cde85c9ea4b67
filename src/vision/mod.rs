//! The vision pipeline: what happens to one frame, from validated JPEG bytes to a result.
//!
//! A [`Processor`] turns one validated JPEG into a [`FrameResult`]; [`VisionPipeline`] is the
//! real one: strict decode ([`jpeg`]), then the object detector ([`detect`]) and/or OCR
//! ([`ocr`]: text detector, then the recognizer on each line), linked by position. The networks
//! run behind [`runtime::Model`], so nothing here knows which engine runs them; the
//! OpenCV/pyclipper-exact pieces the OCR reference needs live in [`cv`]. Which thread runs a
//! frame is the [`crate::scheduler`]'s business.

use std::time::Instant;

use crate::protocol::{Detection, FrameResult, PipelineKind, TextLine, Timings};

pub mod cv;
pub mod detect;
pub mod image;
pub mod jpeg;
pub mod ocr;
pub mod parallel;
pub mod runtime;
pub mod track;

use detect::Detector;
use image::RgbImage;
use jpeg::{FrameError, JpegInfo};
use ocr::{detection, recognition, TextDetector, TextQuad, TextRecognizer};
use runtime::ModelError;

/// What a processor produced for one frame.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The result to send.
    pub result: FrameResult,
    /// Stage times (ms); `queue` and `total` are filled in by the session.
    pub timings: Timings,
}

/// Why a frame produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProcessError {
    /// The frame passed the header check but failed the strict decode: the client sent a
    /// broken frame (reported as `invalid_frame` with the reason code).
    #[error("invalid frame: {0}")]
    Invalid(#[from] FrameError),
    /// A stage failed on this frame (a model error or a panic): reported as `internal`; the
    /// session goes on. The text is for the server log only, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ModelError> for ProcessError {
    fn from(e: ModelError) -> Self {
        ProcessError::Internal(e.to_string())
    }
}

/// Per-frame work, shared read-only by every pool thread.
pub trait Processor: Send + Sync + 'static {
    /// Decode and analyse one frame that passed [`jpeg::validate`], with the session's pipeline.
    fn process(&self, frame: &[u8], info: &JpegInfo, kind: PipelineKind) -> Result<Processed, ProcessError>;
}

/// OCR settings.
#[derive(Debug, Clone, Copy)]
pub struct OcrSettings {
    /// Longest side of the text detector's input (the frame is shrunk to fit, never enlarged).
    pub max_side: usize,
    /// Most text lines recognised per frame (the first ones in reading order).
    pub max_lines: usize,
}

/// How the pipeline runs (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Detections at or below this score are not reported.
    pub min_score: f32,
    /// OCR settings.
    pub ocr: OcrSettings,
    /// `detect` decodes at the smallest DCT scale covering the detector's input.
    pub scaled_decode: bool,
}

/// The vision pipeline: strict decode, then the object detector and/or OCR (text detector,
/// then the recognizer on each line), linked by position.
#[derive(Debug)]
pub struct VisionPipeline {
    detector: Detector,
    text_detector: TextDetector,
    recognizer: TextRecognizer,
    min_score: f32,
    ocr: OcrSettings,
    scaled_decode: bool,
}

/// Lines whose recognition confidence is below this are dropped (PaddleOCR's `drop_score`).
pub const MIN_TEXT_SCORE: f32 = 0.5;

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, ms_since(t))
}

impl VisionPipeline {
    /// A pipeline of these models, run as `settings` say.
    pub fn new(
        detector: Detector,
        text_detector: TextDetector,
        recognizer: TextRecognizer,
        settings: Settings,
    ) -> VisionPipeline {
        let Settings { min_score, ocr, scaled_decode } = settings;
        VisionPipeline { detector, text_detector, recognizer, min_score, ocr, scaled_decode }
    }

    /// Detections in the pixels of the frame `img` was decoded from (`frame`: width, height).
    fn detect(&self, img: &RgbImage, frame: (usize, usize)) -> Result<(Vec<Detection>, f64), ProcessError> {
        let (d, ms) = timed(|| self.detector.detect_scaled(img, frame, self.min_score));
        Ok((d?, ms))
    }

    fn find_text(&self, img: &RgbImage) -> Result<(Vec<TextQuad>, f64), ProcessError> {
        let (r, ms) = timed(|| -> Result<Vec<TextQuad>, ProcessError> {
            let (w, h) = detection::det_input_size(img.width, img.height, self.ocr.max_side);
            let mut input = vec![0f32; 3 * w * h];
            detection::det_input(img, w, h, &mut input);
            let map = self.text_detector.run(input, w, h)?;
            let mut quads = detection::db_postprocess(&map, w, h, img.width, img.height);
            quads.truncate(self.ocr.max_lines);
            Ok(quads)
        });
        Ok((r?, ms))
    }

    fn read_lines(&self, img: &RgbImage, quads: &[TextQuad]) -> Result<(Vec<TextLine>, f64), ProcessError> {
        let (r, ms) = timed(|| {
            parallel::map(quads, |q| -> Result<Option<TextLine>, ProcessError> {
                let (width, input) = recognition::rec_input(img, q);
                let (probs, steps, classes) = self.recognizer.run(input, width)?;
                let (text, score) = recognition::ctc_greedy(&probs, steps, classes, self.recognizer.dict());
                if text.trim().is_empty() || score.is_nan() || score < MIN_TEXT_SCORE {
                    return Ok(None);
                }
                let xs = q.points.map(|p| p[0]);
                let ys = q.points.map(|p| p[1]);
                let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
                let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
                Ok(Some(TextLine {
                    text,
                    score: (score * 10_000.0).round() / 10_000.0,
                    bbox: [min(xs), min(ys), max(xs), max(ys)],
                    polygon: q.points,
                    detection: None,
                    track_id: None,
                }))
            })
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect::<Vec<_>>())
        });
        Ok((r?, ms))
    }
}

/// The detect → OCR link: for each line, the index of the smallest detection box that contains
/// the line's centre.
pub fn link_texts(texts: &mut [TextLine], detections: &[Detection]) {
    for t in texts {
        let (cx, cy) = ((t.bbox[0] + t.bbox[2]) / 2.0, (t.bbox[1] + t.bbox[3]) / 2.0);
        t.detection = detections
            .iter()
            .enumerate()
            .filter(|(_, d)| d.bbox[0] <= cx && cx <= d.bbox[2] && d.bbox[1] <= cy && cy <= d.bbox[3])
            .min_by(|(_, a), (_, b)| area(&a.bbox).total_cmp(&area(&b.bbox)))
            .map(|(i, _)| i);
    }
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

impl Processor for VisionPipeline {
    fn process(&self, frame: &[u8], info: &JpegInfo, kind: PipelineKind) -> Result<Processed, ProcessError> {
        let size = (info.width as usize, info.height as usize);
        // `detect` alone needs no more pixels than the detector's input: decode straight to the
        // smallest DCT-domain scale that still covers it (OCR reads small text at full size).
        let scale = match kind {
            PipelineKind::Detect if self.scaled_decode => self.detector.decode_scale(size.0, size.1),
            _ => 1,
        };
        let (img, decode) = timed(|| jpeg::decode_rgb(frame, info, scale));
        let img = img?;
        let mut timings = Timings { decode, ..Timings::default() };
        let (detections, quads) = match kind {
            PipelineKind::Detect => (Some(self.detect(&img, size)?), None),
            PipelineKind::Ocr => (None, Some(self.find_text(&img)?)),
            PipelineKind::DetectOcr => {
                // The two detectors are independent: side by side while the frame may use two
                // cores, one after the other when the server is busy.
                let (d, q) = parallel::join(|| self.detect(&img, size), || self.find_text(&img));
                (Some(d?), Some(q?))
            }
        };
        let detections = detections.map(|(d, ms)| {
            timings.detect = Some(ms);
            d
        });
        let texts = match quads {
            Some((quads, ms)) => {
                timings.ocr_detect = Some(ms);
                let (mut lines, ms) = self.read_lines(&img, &quads)?;
                timings.ocr_recognize = Some(ms);
                if let Some(d) = &detections {
                    link_texts(&mut lines, d);
                }
                Some(lines)
            }
            None => None,
        };
        let result = FrameResult { width: info.width, height: info.height, detections, texts };
        Ok(Processed { result, timings })
    }
}
