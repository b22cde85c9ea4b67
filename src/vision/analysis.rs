//! What vision computes for one frame, in its own types and at full precision.
//!
//! The pipeline returns an [`Analysis`]; [`crate::protocol`] turns it into the wire's
//! `FrameResult` (`From` impls there), and that is the only place that rounds (boxes to 0.1 px,
//! scores to 4 decimals). So OCR crops, the tracker and any analytics work on the exact boxes the
//! models gave, and a wire-format choice cannot change what a later stage sees.

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Class name (the detector's labels; `class_N` for an id without one).
    pub label: String,
    /// Class id.
    pub class_id: usize,
    /// Confidence in 0..1.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in frame pixels, clipped to the frame.
    pub bbox: [f32; 4],
}

/// One recognised line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// The text (CTC greedy decode).
    pub text: String,
    /// Recognition confidence in 0..1.
    pub score: f32,
    /// Axis-aligned hull `[x1, y1, x2, y2]` of `polygon`, frame pixels.
    pub bbox: [f32; 4],
    /// The line's quadrilateral, clockwise from top-left, frame pixels.
    pub polygon: [[f32; 2]; 4],
    /// Index in the frame's detections of the detection the line belongs to, if any.
    pub detection: Option<usize>,
}

/// What the pipeline found in one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Frame width in pixels (from the JPEG).
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Detections, highest score first (pipelines with a detector only).
    pub detections: Option<Vec<Detection>>,
    /// Text lines (pipelines with OCR only).
    pub texts: Option<Vec<TextLine>>,
    /// With tracking: the detections scoring between the tracker's low bound and `min_score`,
    /// highest first. The tracker sees them (ByteTrack's low-score association); the client
    /// never does.
    pub low_detections: Option<Vec<Detection>>,
    /// With `ocr=detections`: for each of `detections`, whether its crop was read in this frame
    /// (not: the session's settled object, see [`super::FrameOptions::settled`], or beyond
    /// [`super::MAX_OCR_DETECTIONS`]).
    pub read: Option<Vec<bool>>,
}

/// Per-stage times of one frame, in milliseconds; stages the pipeline did not run are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// JPEG decode.
    pub decode: f64,
    /// Detector: preprocessing, model and post-processing.
    pub detect: Option<f64>,
    /// Text detector: preprocessing, model and DB post-processing.
    pub ocr_detect: Option<f64>,
    /// Recognition of every line.
    pub ocr_recognize: Option<f64>,
}

/// Which detector runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorInfo {
    /// `ssd`, `yolov5`, `yolov8` or `yolo-end2end`.
    pub family: &'static str,
    /// Model input `[width, height]`.
    pub input: [usize; 2],
    /// Class names by class id.
    pub classes: Vec<String>,
    /// Most detections a frame gets.
    pub max_detections: usize,
}

/// The class id of `label`: its line in the detector's names, or, for an id the names do not
/// cover (an export without names), the `class_N` the detections of that id are labelled with.
pub fn class_id(known: &[String], label: &str) -> Option<usize> {
    if let Some(i) = known.iter().position(|k| k == label) {
        return Some(i);
    }
    let n: usize = label.strip_prefix("class_")?.parse().ok()?;
    // Digits only (no sign, no leading zeros), within the ids an export can give (see
    // `yolo::decode`), and not an id that has a name of its own.
    let canonical = n.to_string() == label["class_".len()..];
    (canonical && n >= known.len() && n < 1_000_000).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::class_id;

    #[test]
    fn nameless_ids_are_asked_for_as_they_are_labelled() {
        let known = vec!["cat".to_string(), "dog".to_string()];
        assert_eq!(class_id(&known, "dog"), Some(1));
        assert_eq!(class_id(&known, "class_2"), Some(2), "an id beyond the names");
        assert_eq!(class_id(&[], "class_0"), Some(0), "an export without names");
        assert_eq!(class_id(&known, "class_1"), None, "id 1 is called dog");
        for bad in ["class_", "class_+3", "class_03", "class_-1", "class_x", "class_99999999999", "unicorn"] {
            assert_eq!(class_id(&known, bad), None, "{bad}");
        }
    }
}
