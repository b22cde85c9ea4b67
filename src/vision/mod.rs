//! The vision pipeline: what happens to one frame, from validated JPEG bytes to a result.
//!
//! A [`Processor`] turns one validated JPEG into an [`Analysis`] (vision's own types at full
//! precision: [`analysis`]; the wire's types and rounding are [`crate::protocol`]'s); [`VisionPipeline`] is the
//! real one: strict decode ([`jpeg`]), then the object detector ([`detect`]) and/or OCR
//! ([`ocr`]: text detector, then the recognizer on each line), linked by position. The networks
//! run behind [`runtime::Model`], so nothing here knows which engine runs them; the
//! OpenCV/pyclipper-exact pieces the OCR reference needs live in [`cv`]. Which thread runs a
//! frame is the [`crate::scheduler`]'s business; how wide it may run is a [`Width`] the scheduler
//! hands to [`Processor::process`] and the pipeline passes down to every stage ([`parallel`]).

use std::time::Instant;

pub use crate::classes::ClassSet;

pub mod analysis;
pub mod cv;
pub mod detect;
pub mod geometry;
pub mod h264;
pub mod image;
pub mod jpeg;
pub mod ocr;
pub mod parallel;
pub mod runtime;
pub mod track;

pub use analysis::{class_id, Analysis, Detection, DetectorInfo, StageTimes, TextLine};
use detect::Detector;
use geometry::area;
use image::RgbImage;
use jpeg::{FrameError, JpegInfo};
use ocr::{detection, recognition, TextDetector, TextQuad, TextRecognizer};
use parallel::Width;
use runtime::{Loaded, ModelError};

/// The per-frame pipelines a session can ask for with `?pipeline=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineKind {
    /// Object detection only.
    Detect,
    /// Text detection and recognition only.
    Ocr,
    /// Object detection and OCR, linked (the design's pipeline).
    DetectOcr,
}

impl PipelineKind {
    /// The name (`?pipeline=`, `--pipeline`, and on the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineKind::Detect => "detect",
            PipelineKind::Ocr => "ocr",
            PipelineKind::DetectOcr => "detect_ocr",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<PipelineKind> {
        PipelineKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every pipeline.
    pub const ALL: [PipelineKind; 3] = [PipelineKind::Detect, PipelineKind::Ocr, PipelineKind::DetectOcr];

    /// Whether the object detector runs.
    pub fn detects(self) -> bool {
        self != PipelineKind::Ocr
    }

    /// Whether OCR runs.
    pub fn reads_text(self) -> bool {
        self != PipelineKind::Detect
    }
}

/// What a processor produced for one frame.
#[derive(Debug, Clone)]
pub struct Processed {
    /// What the frame shows, at full precision (the session turns it into the wire's result).
    pub result: Analysis,
    /// Stage times (ms).
    pub timings: StageTimes,
}

/// A picture decoded before it reached a worker (an H.264 session's), with what decoding it
/// took.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// The picture, full size.
    pub image: RgbImage,
    /// Decoding it (and converting it to RGB), ms: its `timings_ms.decode`.
    pub decode_ms: f64,
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

/// What processing one frame gives.
pub type Outcome = Result<Processed, ProcessError>;

/// Where OCR looks in `detect_ocr` (`?ocr=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OcrScope {
    /// The whole frame (lines are linked to the smallest detection containing them).
    #[default]
    Frame,
    /// Only inside the kept detections (the detect → read pattern: a plate inside its car);
    /// each line is linked to the detection it was found in.
    Detections,
}

impl OcrScope {
    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            OcrScope::Frame => "frame",
            OcrScope::Detections => "detections",
        }
    }
}

/// What a session asked for in its query string, applied to each of its frames; `None` = the
/// server's setting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameOptions {
    /// Lowest detection score reported (`min_score`).
    pub min_score: Option<f32>,
    /// Class ids kept (`classes`, resolved from labels once, each id once).
    pub classes: Option<ClassSet>,
    /// Most detections per frame (`max_detections`; never above the detector's own cap).
    pub max_detections: Option<usize>,
    /// Where OCR looks (`ocr`).
    pub ocr: OcrScope,
    /// With tracking: also find the detections scoring in `(track_low, min_score]`, for the
    /// tracker only ([`Analysis::low_detections`]); they are never reported, linked or read.
    pub track_low: Option<f32>,
    /// With `ocr=detections`: where objects whose text the session already holds are expected
    /// in this frame. A detection of the same class overlapping one of these boxes at an IoU of
    /// at least [`SETTLED_IOU`] (each box taken once, best overlap first) is not read
    /// ([`Analysis::read`] says which were). Set per frame by the session, empty otherwise.
    pub settled: Vec<Settled>,
}

/// A box where the session expects an object whose text it already holds (see
/// [`FrameOptions::settled`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settled {
    /// The object's class.
    pub class_id: usize,
    /// `[x1, y1, x2, y2]` in frame pixels.
    pub bbox: [f32; 4],
}

/// A detection is the settled object expected at a box when they overlap at least this much:
/// strict, since reading a crop twice costs time but skipping the wrong one loses a reading.
pub const SETTLED_IOU: f32 = 0.5;

/// Which of `detections` (highest score first) are the objects at `settled`'s boxes: each box
/// is given to the detection of its class it overlaps most (at IoU ≥ [`SETTLED_IOU`]), best
/// pairs first, each detection and box taken once.
pub fn settled_detections(detections: &[Detection], settled: &[Settled]) -> Vec<bool> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, d) in detections.iter().enumerate() {
        for (j, s) in settled.iter().enumerate() {
            let v = geometry::iou(&d.bbox, &s.bbox);
            if s.class_id == d.class_id && v >= SETTLED_IOU {
                pairs.push((v, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut taken, mut used) = (vec![false; detections.len()], vec![false; settled.len()]);
    for (_, i, j) in pairs {
        if !taken[i] && !used[j] {
            (taken[i], used[j]) = (true, true);
        }
    }
    taken
}

/// A text quad and the detection it was found in (OCR inside detections), if any.
type LinkedQuad = (TextQuad, Option<usize>);

/// Most detections OCR reads inside per frame with `ocr=detections` (the highest scores
/// first): each is one text-detector run, so this bounds a frame's work.
pub const MAX_OCR_DETECTIONS: usize = 16;

/// Per-frame work, shared read-only by every frame worker.
pub trait Processor: Send + Sync + 'static {
    /// Decode and analyse one frame that passed [`jpeg::validate`], with the session's pipeline
    /// and options (`opts`), as wide as `width` allows.
    fn process(&self, frame: &[u8], info: &JpegInfo, kind: PipelineKind, opts: &FrameOptions, width: &Width)
        -> Outcome;

    /// Analyse a picture decoded already (an H.264 session's, decoded on its own thread), as
    /// [`Processor::process`] does a JPEG's. Plumbing stand-ins that take JPEG only keep this
    /// default, which answers `internal`.
    fn process_picture(&self, picture: Picture, kind: PipelineKind, opts: &FrameOptions, width: &Width) -> Outcome {
        let _ = (picture, kind, opts, width);
        Err(ProcessError::Internal("this processor takes JPEG frames only".into()))
    }

    /// The detector it runs, for `session_started` and for checking `classes` before an
    /// upgrade (`None`: a stand-in without one).
    fn detector(&self) -> Option<DetectorInfo> {
        None
    }

    /// Engine plans built for its models so far (`framewire_plan_builds`).
    fn plans_built(&self) -> u64 {
        0
    }
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

    /// Detections in the pixels of the frame `img` was decoded from (`frame`: width, height),
    /// as the session's options filter them.
    fn detect(
        &self,
        img: &RgbImage,
        frame: (usize, usize),
        options: &FrameOptions,
        width: &Width,
    ) -> Result<(Vec<Detection>, f64), ProcessError> {
        let (d, ms) = timed(|| -> Result<Vec<Detection>, ProcessError> {
            let min_score = options.min_score.unwrap_or(self.min_score);
            let wanted = detect::Wanted {
                // NMS's outcome for a box depends only on the boxes that outscore it, and the
                // caps keep the best first: the reported detections are exactly those of a run
                // at `min_score`, the low ones come on top.
                min_score: options.track_low.map_or(min_score, |low| low.min(min_score)),
                classes: options.classes.as_ref(),
                max_detections: options.max_detections,
            };
            Ok(self.detector.detect_scaled(img, frame, &wanted, width)?)
        });
        Ok((d?, ms))
    }

    /// Text quads inside each of the first [`MAX_OCR_DETECTIONS`] `detections` to `read` (in
    /// frame pixels), each with the index of the detection it was found in.
    fn find_text_in(
        &self,
        img: &RgbImage,
        detections: &[Detection],
        read: &[bool],
        width: &Width,
    ) -> Result<(Vec<(TextQuad, usize)>, f64), ProcessError> {
        let (r, ms) = timed(|| {
            let first: Vec<(usize, &Detection)> =
                detections.iter().enumerate().filter(|(i, _)| read[*i]).take(MAX_OCR_DETECTIONS).collect();
            let per_detection = width.map(&first, |&(_, d), width| {
                let Some(crop) = img.crop(d.bbox) else { return Ok::<_, ProcessError>(Vec::new()) };
                let (x0, y0) = (d.bbox[0].max(0.0).floor(), d.bbox[1].max(0.0).floor());
                let (quads, _) = self.find_text(&crop, width)?;
                Ok(quads
                    .into_iter()
                    .map(|mut q| {
                        q.points.iter_mut().for_each(|p| *p = [p[0] + x0, p[1] + y0]);
                        q
                    })
                    .collect())
            });
            let mut out = Vec::new();
            for ((i, _), quads) in first.iter().zip(per_detection) {
                out.extend(quads?.into_iter().map(|q| (q, *i)));
            }
            Ok::<_, ProcessError>(merge_detection_lines(out, detections, self.ocr.max_lines))
        });
        Ok((r?, ms))
    }

    fn find_text(&self, img: &RgbImage, width: &Width) -> Result<(Vec<TextQuad>, f64), ProcessError> {
        let (r, ms) = timed(|| -> Result<Vec<TextQuad>, ProcessError> {
            let (w, h) = detection::det_input_size(img.width, img.height, self.ocr.max_side);
            let mut input = vec![0f32; 3 * w * h];
            detection::det_input(img, w, h, &mut input);
            let map = self.text_detector.run(input, w, h, width)?;
            let mut quads = detection::db_postprocess(&map, w, h, img.width, img.height);
            quads.truncate(self.ocr.max_lines);
            Ok(quads)
        });
        Ok((r?, ms))
    }

    /// Recognise each quad; `links[i]` is the `detection` of line `i` (OCR inside detections),
    /// or `None` (linked afterwards by position, or not at all).
    fn read_lines(
        &self,
        img: &RgbImage,
        quads: &[TextQuad],
        links: &[Option<usize>],
        width: &Width,
    ) -> Result<(Vec<TextLine>, f64), ProcessError> {
        let pairs: Vec<(&TextQuad, Option<usize>)> =
            quads.iter().zip(links.iter().copied().chain(std::iter::repeat(None))).collect();
        let (r, ms) = timed(|| {
            width
                .map(&pairs, |&(q, link), width| -> Result<Option<TextLine>, ProcessError> {
                    let (bucket, input) = recognition::rec_input(img, q);
                    let (probs, steps, classes) = self.recognizer.run(input, bucket, width)?;
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
                        score,
                        bbox: [min(xs), min(ys), max(xs), max(ys)],
                        polygon: q.points,
                        detection: link,
                    }))
                })
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.into_iter().flatten().collect::<Vec<_>>())
        });
        Ok((r?, ms))
    }
}

/// Lines found inside detections (each with its detection's index), as one frame's lines: a
/// line found in two overlapping detections (its hulls' IoU at least [`SAME_LINE_IOU`]) is kept
/// once, linked to the smaller detection (as [`link_texts`] links); then reading order over the
/// whole frame, then the first `max_lines`.
pub fn merge_detection_lines(
    found: Vec<(TextQuad, usize)>,
    detections: &[Detection],
    max_lines: usize,
) -> Vec<(TextQuad, usize)> {
    let hull = |q: &TextQuad| {
        let xs = q.points.map(|p| p[0]);
        let ys = q.points.map(|p| p[1]);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        [min(xs), min(ys), max(xs), max(ys)]
    };
    let size = |i: usize| detections.get(i).map_or(f32::INFINITY, |d| area(&d.bbox));
    let mut kept: Vec<(TextQuad, usize)> = Vec::with_capacity(found.len());
    for (q, i) in found {
        let h = hull(&q);
        match kept.iter_mut().find(|(k, _)| geometry::iou(&hull(k), &h) >= SAME_LINE_IOU) {
            Some(k) if size(i) < size(k.1) => *k = (q, i),
            Some(_) => {}
            None => kept.push((q, i)),
        }
    }
    detection::reading_order(&mut kept, |(q, _)| q.points[0]);
    kept.truncate(max_lines);
    kept
}

/// Two lines found in two detections are one line when their hulls overlap this much.
pub const SAME_LINE_IOU: f32 = 0.5;

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

impl VisionPipeline {
    /// Everything after the decode: `img` shows the frame `size` (smaller when decoded at a
    /// DCT scale).
    fn analyse(
        &self,
        img: &RgbImage,
        size: (usize, usize),
        mut timings: StageTimes,
        kind: PipelineKind,
        opts: &FrameOptions,
        w: &Width,
    ) -> Outcome {
        let inside = kind == PipelineKind::DetectOcr && opts.ocr == OcrScope::Detections;
        let (detections, quads) = match kind {
            PipelineKind::Detect => (Some(self.detect(img, size, opts, w)?), None),
            PipelineKind::Ocr => (None, Some(self.find_text(img, w)?)),
            // OCR inside the detections: the detector first, then the text detector per crop.
            PipelineKind::DetectOcr if inside => (Some(self.detect(img, size, opts, w)?), None),
            PipelineKind::DetectOcr => {
                // The two detectors are independent: side by side while the frame may use two
                // cores, one after the other when the server is busy.
                let (d, q) = w.join(|w| self.detect(img, size, opts, w), |w| self.find_text(img, w));
                (Some(d?), Some(q?))
            }
        };
        let min_score = opts.min_score.unwrap_or(self.min_score);
        let mut low_detections = None;
        let detections = detections.map(|(mut d, ms)| {
            timings.detect = Some(ms);
            if opts.track_low.is_some() {
                // Highest score first: the reported ones, then those for the tracker only.
                let split = d.iter().position(|d| d.score <= min_score).unwrap_or(d.len());
                low_detections = Some(d.split_off(split));
            }
            d
        });
        let mut read = None;
        let quads: Option<(Vec<LinkedQuad>, Option<f64>)> = match (quads, &detections) {
            (Some((q, ms)), _) => Some((q.into_iter().map(|q| (q, None)).collect(), Some(ms))),
            (None, Some(d)) if inside => {
                // The session's settled objects are not read; the rest, up to the cap, are.
                let settled = settled_detections(d, &opts.settled);
                let mut wanted: Vec<bool> = settled.iter().map(|s| !s).collect();
                let mut left = MAX_OCR_DETECTIONS;
                for r in wanted.iter_mut() {
                    *r = *r && left > 0;
                    left -= usize::from(*r);
                }
                let any = wanted.iter().any(|r| *r);
                let (q, ms) = if any { self.find_text_in(img, d, &wanted, w)? } else { (Vec::new(), 0.0) };
                read = Some(wanted);
                // Stages that did not run are absent.
                Some((q.into_iter().map(|(q, i)| (q, Some(i))).collect(), any.then_some(ms)))
            }
            (None, _) => None,
        };
        let texts = match quads {
            Some((quads, ms)) => {
                timings.ocr_detect = ms;
                let (only, links): (Vec<TextQuad>, Vec<Option<usize>>) = quads.into_iter().unzip();
                let (mut lines, ms) = self.read_lines(img, &only, &links, w)?;
                timings.ocr_recognize = timings.ocr_detect.is_some().then_some(ms);
                if let (Some(d), false) = (&detections, inside) {
                    link_texts(&mut lines, d);
                }
                Some(lines)
            }
            None => None,
        };
        let (width, height) = (size.0 as u32, size.1 as u32);
        let result = Analysis { width, height, detections, texts, low_detections, read };
        Ok(Processed { result, timings })
    }
}

impl Processor for VisionPipeline {
    fn process(&self, frame: &[u8], info: &JpegInfo, kind: PipelineKind, opts: &FrameOptions, w: &Width) -> Outcome {
        let size = (info.width as usize, info.height as usize);
        // `detect` alone needs no more pixels than the detector's input: decode straight to the
        // smallest DCT-domain scale that still covers it (OCR reads small text at full size).
        let scale = match kind {
            PipelineKind::Detect if self.scaled_decode => self.detector.decode_scale(size.0, size.1),
            _ => 1,
        };
        let (img, decode) = timed(|| jpeg::decode_rgb(frame, info, scale));
        self.analyse(&img?, size, StageTimes { decode, ..StageTimes::default() }, kind, opts, w)
    }

    fn process_picture(&self, picture: Picture, kind: PipelineKind, opts: &FrameOptions, w: &Width) -> Outcome {
        let size = (picture.image.width, picture.image.height);
        let timings = StageTimes { decode: picture.decode_ms, ..StageTimes::default() };
        self.analyse(&picture.image, size, timings, kind, opts, w)
    }

    fn detector(&self) -> Option<DetectorInfo> {
        Some(self.detector.info())
    }

    fn plans_built(&self) -> u64 {
        self.detector.plans_built() + self.text_detector.plans_built() + self.recognizer.plans_built()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4]) -> Detection {
        Detection { label: "x".into(), class_id: 0, score: 0.9, bbox }
    }

    fn line(bbox: [f32; 4]) -> TextLine {
        TextLine { text: "T".into(), score: 0.9, bbox, polygon: [[0.0; 2]; 4], detection: None }
    }

    #[test]
    fn a_line_links_to_the_smallest_detection_containing_its_centre() {
        let dets = [det([0.0, 0.0, 100.0, 100.0]), det([10.0, 10.0, 50.0, 50.0]), det([200.0, 0.0, 300.0, 50.0])];
        let mut lines = [
            line([20.0, 20.0, 40.0, 30.0]),   // centre (30, 25): inside 0 and 1, 1 is smaller
            line([60.0, 60.0, 90.0, 70.0]),   // inside 0 only
            line([150.0, 0.0, 190.0, 10.0]),  // inside none
            line([190.0, 10.0, 230.0, 20.0]), // centre (210, 15): inside 2
            line([95.0, 0.0, 105.0, 10.0]),   // centre (100, 5): on 0's edge counts
        ];
        link_texts(&mut lines, &dets);
        let links: Vec<Option<usize>> = lines.iter().map(|l| l.detection).collect();
        assert_eq!(links, vec![Some(1), Some(0), None, Some(2), Some(0)]);
        link_texts(&mut lines, &[]);
        assert!(lines.iter().all(|l| l.detection.is_none()));
    }

    fn quad(x: f32, y: f32) -> TextQuad {
        TextQuad { points: [[x, y], [x + 40.0, y], [x + 40.0, y + 10.0], [x, y + 10.0]], score: 0.9 }
    }

    #[test]
    fn lines_in_overlapping_detections_are_kept_once_in_reading_order() {
        // A car (0) and the plate region inside it (1) both find "the same" line; another line
        // lies in the car only, above it.
        let dets = [det([0.0, 0.0, 200.0, 200.0]), det([90.0, 140.0, 160.0, 170.0])];
        let found = vec![(quad(100.0, 150.0), 0), (quad(20.0, 20.0), 0), (quad(101.0, 150.0), 1)];
        let merged = merge_detection_lines(found, &dets, 64);
        let got: Vec<([f32; 2], usize)> = merged.iter().map(|(q, i)| (q.points[0], *i)).collect();
        assert_eq!(got, vec![([20.0, 20.0], 0), ([101.0, 150.0], 1)], "once, linked to the smaller, top first");
        // Same line (within 10 px): left to right; then the cap.
        let found = vec![(quad(300.0, 52.0), 0), (quad(10.0, 50.0), 0), (quad(10.0, 90.0), 0)];
        let merged = merge_detection_lines(found, &dets, 2);
        let xs: Vec<[f32; 2]> = merged.iter().map(|(q, _)| q.points[0]).collect();
        assert_eq!(xs, vec![[10.0, 50.0], [300.0, 52.0]]);
    }
}
