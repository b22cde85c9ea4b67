//! End-to-end pin of the OCR geometry against the Python reference: the server's text quads on
//! the four text frames, and on the same frames resized to sizes off the text detector's snap
//! grid (`tests/fixtures/offgrid/`: where tract pads its input to a planned size), must be the
//! reference's (`ocr_ref.py`, onnxruntime + cv2 + pyclipper), on every engine.
//!
//! Why: `tests/it/cv.rs` proves each OpenCV / pyclipper port exact in isolation; this proves
//! the whole chain (JPEG decode, resize, DB post-process, unclip, min-area rect, rounding) lands
//! on the reference's boxes. The vectors are `tests/fixtures/ocr_reference_quads.json`, written by
//! `tests/fixtures/make_ocr_reference.py` (pinned versions and command in its docstring); it
//! keeps only the lines the server reports (the reference script prints low-confidence lines
//! too; the server drops them like PaddleOCR's `drop_score`).
//!
//! Tolerance: every corner within 1 px in x and in y. The server decodes the JPEG with its own
//! decoder and runs the detector on tract, the reference uses Pillow and onnxruntime, so the
//! probability map can differ in the last bits, and a corner that lands on a rounding boundary
//! may move by one pixel; anything more is a real divergence.

use framewire::protocol::PipelineKind;
use framewire::vision::jpeg::{validate, Limits};
use serde_json::Value;

use crate::support::{engines, fixture, scheduler_on};

struct RefLine {
    text: String,
    quad: [[f32; 2]; 4],
}

fn reference() -> Vec<(String, Vec<RefLine>)> {
    let v: Value = serde_json::from_slice(&fixture("ocr_reference_quads.json")).expect("ocr_reference_quads.json");
    let frames = v["frames"].as_object().expect("frames");
    assert_eq!(frames.len(), 8, "the four text frames and their four off-grid resizes");
    frames
        .iter()
        .map(|(name, lines)| {
            let lines = lines
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| {
                    let q = l["quad"].as_array().expect("quad");
                    assert_eq!(q.len(), 4, "{name}: quad of 4 corners");
                    let c = |i: usize, j: usize| q[i][j].as_f64().expect("coordinate") as f32;
                    RefLine {
                        text: l["text"].as_str().expect("text").to_string(),
                        quad: [0, 1, 2, 3].map(|i| [c(i, 0), c(i, 1)]),
                    }
                })
                .collect();
            (name.clone(), lines)
        })
        .collect()
}

fn within_1px(a: &[[f32; 2]; 4], b: &[[f32; 2]; 4]) -> bool {
    a.iter().zip(b).all(|(p, q)| (p[0] - q[0]).abs() <= 1.0 && (p[1] - q[1]).abs() <= 1.0)
}

/// Largest corner coordinate difference, for the failure messages.
fn max_dev(a: &[[f32; 2]; 4], b: &[[f32; 2]; 4]) -> f32 {
    a.iter().zip(b).flat_map(|(p, q)| [(p[0] - q[0]).abs(), (p[1] - q[1]).abs()]).fold(0.0, f32::max)
}

#[test]
fn ocr_quads_match_the_python_reference_within_1px() {
    let mut bad = Vec::new();
    for engine in engines() {
        bad.extend(differences(engine));
    }
    assert!(bad.is_empty(), "OCR quads differ from the Python reference:\n  {}", bad.join("\n  "));
}

/// What `engine` answers differently from the reference, one line per difference.
fn differences(engine: framewire::vision::runtime::EngineKind) -> Vec<String> {
    let sched = scheduler_on(engine);
    let mut bad = Vec::new();
    for (name, want) in reference() {
        let name_on = format!("{name} ({})", engine.as_str());
        let name = name.as_str();
        let bytes = fixture(name);
        let info = validate(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: invalid JPEG: {e:?}"));
        let r =
            sched.process_now(&bytes, &info, PipelineKind::Ocr).unwrap_or_else(|e| panic!("{name}: OCR failed: {e:?}"));
        let texts = r.result.texts.unwrap_or_else(|| panic!("{name}: no texts in an OCR result"));
        let ours: Vec<(&str, [[f32; 2]; 4])> = texts.iter().map(|t| (t.text.as_str(), t.polygon)).collect();
        if ours.len() != want.len() {
            bad.push(format!("{name_on}: {} lines, the reference has {}: ours {ours:?}", ours.len(), want.len()));
        }
        // One-to-one: each reference quad claims the first unused quad of ours within 1 px.
        let mut used = vec![false; ours.len()];
        for w in &want {
            match (0..ours.len()).find(|&i| !used[i] && within_1px(&ours[i].1, &w.quad)) {
                Some(i) => {
                    used[i] = true;
                    // Shown with --nocapture: how far from exact each line is (0 = identical).
                    eprintln!("{name_on}: {:?}: corners off by at most {} px", w.text, max_dev(&ours[i].1, &w.quad));
                }
                None => {
                    let nearest = ours
                        .iter()
                        .map(|o| (max_dev(&o.1, &w.quad), o))
                        .min_by(|a, b| a.0.total_cmp(&b.0))
                        .map(|(d, o)| format!("nearest {:?} {:?} (off by {d} px)", o.0, o.1))
                        .unwrap_or_else(|| "no quads at all".into());
                    bad.push(format!(
                        "{name_on}: reference {:?} {:?} not matched within 1 px; {nearest}",
                        w.text, w.quad
                    ));
                }
            }
        }
    }
    bad
}
