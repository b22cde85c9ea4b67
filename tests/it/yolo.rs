//! The detectors users bring: the two real Ultralytics exports in `tests/fixtures/yolo/`
//! (random weights, real graphs and metadata; see the README there) load on every engine, are
//! read with the right layout (YOLOv8 `[1,84,8400]` with NMS, YOLO26 end-to-end `[1,300,6]`
//! without), labelled with their own `names`, and give the detections `make_yolo_goldens.py`
//! computes the Ultralytics way with onnxruntime in Python.

use std::collections::HashMap;
use std::path::PathBuf;

use framewire::vision::detect::{Detector, DetectorOptions};
use framewire::vision::jpeg::{decode_rgb, validate, Limits};
use framewire::vision::runtime::{EngineKind, Runtime};

use crate::support::{config_on, engines, fixture};

#[derive(serde::Deserialize)]
struct Golden {
    class_id: usize,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

fn yolo(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yolo").join(name)
}

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn runtime(engine: EngineKind) -> Runtime {
    match engine {
        EngineKind::Tract => Runtime::tract(1),
        EngineKind::OnnxRuntime => {
            Runtime::onnxruntime(config_on(engine).onnxruntime_lib.as_deref(), 1).expect("ONNX Runtime")
        }
    }
}

fn near(a: &[f32; 4], b: &[f32; 4], px: f32) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= px)
}

/// Ours against the golden at the server's default `--min-score` 0.5. Detections within 0.05 of
/// the threshold may fall either side of it (our letterbox resize is float bilinear, OpenCV's is
/// fixed point: the inputs differ by a grey level here and there), so only the confident ones
/// are held to account: each must be found on the other side, same class, box within 3 px,
/// score within 0.02.
fn compare(engine: EngineKind, model: &str) {
    let goldens: HashMap<String, HashMap<String, Vec<Golden>>> =
        serde_json::from_slice(&fixture("yolo/goldens.json")).expect("goldens");
    let detector = Detector::load_yolo(&runtime(engine), &yolo(model), &models()).expect("loads");
    assert_eq!(detector.labels().len(), 80);
    assert_eq!(detector.labels()[0], "person", "names come from the export's metadata");
    for (frame, want) in &goldens[model] {
        let bytes = fixture(frame);
        let info = validate(&bytes, &Limits::default()).expect("valid");
        let img = decode_rgb(&bytes, &info, 1).expect("decodes");
        let got = detector.detect(&img, 0.5).expect("runs");
        let case = format!("{model} on {frame} ({engine:?})");
        for g in want.iter().filter(|g| g.score >= 0.55) {
            let m = got.iter().find(|d| d.class_id == g.class_id && near(&d.bbox, &g.bbox, 3.0));
            let m = m.unwrap_or_else(|| panic!("{case}: golden {} {:?} {} not found", g.class_id, g.bbox, g.score));
            assert!((m.score - g.score).abs() <= 0.02, "{case}: score {} vs {}", m.score, g.score);
            assert_eq!(m.label, detector.labels()[g.class_id]);
        }
        for d in got.iter().filter(|d| d.score >= 0.55) {
            assert!(
                want.iter().any(|g| g.class_id == d.class_id && near(&d.bbox, &g.bbox, 3.0)),
                "{case}: extra detection {d:?}"
            );
        }
        assert!(got.len() <= 300);
    }
}

#[test]
fn a_yolov8_export_gives_what_ultralytics_gives() {
    for engine in engines() {
        compare(engine, "yolov8n_op17_cal.onnx");
    }
}

#[test]
fn a_yolo26_end_to_end_export_is_read_as_final_detections() {
    for engine in engines() {
        compare(engine, "yolo26n_op17_end2end_cal.onnx");
    }
}

#[test]
fn labels_file_overrides_the_export_names_and_limits_apply() {
    let dir = std::env::temp_dir().join(format!("fw-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("labels.txt");
    std::fs::write(&file, (0..80).map(|i| format!("thing{i}\n")).collect::<String>()).unwrap();
    let options = DetectorOptions { labels: Some(file), nms_iou: None, max_detections: Some(3) };
    let d = Detector::load_yolo_with(&Runtime::tract(1), &yolo("yolov8n_op17_cal.onnx"), &models(), &options).unwrap();
    assert_eq!(d.labels()[0], "thing0");
    let bytes = fixture("photo_astronaut_640x480.jpg");
    let info = validate(&bytes, &Limits::default()).unwrap();
    let got = d.detect(&decode_rgb(&bytes, &info, 1).unwrap(), 0.5).unwrap();
    assert_eq!(got.len(), 3, "--max-detections caps the frame");
    assert!(got.iter().all(|d| d.label.starts_with("thing")));
    // A file with another number of names than the model's classes is refused, naming both.
    std::fs::write(dir.join("short.txt"), (0..79).map(|i| format!("thing{i}\n")).collect::<String>()).unwrap();
    let short = DetectorOptions { labels: Some(dir.join("short.txt")), ..DetectorOptions::default() };
    let e =
        Detector::load_yolo_with(&Runtime::tract(1), &yolo("yolov8n_op17_cal.onnx"), &models(), &short).unwrap_err();
    assert!(e.to_string().contains("79 classes, the model has 80"), "{e}");
    let e = Detector::load_ssd_with(&Runtime::tract(1), &models(), &short).unwrap_err();
    assert!(e.to_string().contains("79 classes, the model has 80"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_model_that_is_not_a_detector_export_is_refused_with_its_shapes() {
    // The shipped text detector is an ONNX model with one output of another layout.
    let e = Detector::load_yolo(&Runtime::tract(1), &models().join("ppocrv6_tiny_det.onnx"), &models()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("ppocrv6_tiny_det.onnx"), "{msg}");
    assert!(msg.contains("[1, 1, 640, 640]"), "its output shape: {msg}");
    assert!(msg.contains("[1,N,5+C]") && msg.contains("[1,4+C,N]") && msg.contains("[1,N,6]"), "the layouts: {msg}");
}
