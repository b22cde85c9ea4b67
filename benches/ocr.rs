//! The OCR stages alone: text detection (preprocess + DB model + post-process) on a 640×480 and
//! a 1280×720 frame, and recognition of one line (crop + recognizer + CTC). Per engine (see
//! `support/engines.rs`), one core each.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::vision::jpeg::{decode_rgb, validate, Limits};
use framewire::vision::ocr::detection::{db_postprocess, det_input, det_input_size};
use framewire::vision::ocr::recognition::{ctc_greedy, rec_input};
use framewire::vision::ocr::{TextDetector, TextRecognizer};
use framewire::vision::parallel::Width;
use framewire::vision::runtime::EngineKind;

#[path = "support/engines.rs"]
mod engines;

fn bench(c: &mut Criterion) {
    engines::each_engine(c, "ocr", 20, bench_engine);
}

fn bench_engine(g: &mut engines::Group<'_>, suffix: &str, kind: EngineKind) {
    let runtime = engines::runtime(kind, 1);
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let limits = Limits::default();
    let frames: [(&str, &[u8]); 2] = [
        ("640x480", include_bytes!("../tests/fixtures/text_label_640x480.jpg")),
        ("1280x720", include_bytes!("../tests/fixtures/text_garage_sign_on_motorcycle_1280x720.jpg")),
    ];
    // The input-size lever: 1280×720 at the default longest side 960 (→ 960×544) and at 640.
    let sizes: Vec<(usize, usize)> =
        vec![det_input_size(640, 480, 960), det_input_size(1280, 720, 960), det_input_size(1280, 720, 640)];
    let detector = TextDetector::load(&runtime, &models, &sizes).expect("text detector");
    let recognizer = TextRecognizer::load(&runtime, &models).expect("recognizer");
    let batched = TextRecognizer::load_batched(&runtime, &models, 4).expect("recognizer");
    for (name, bytes) in frames {
        let info = validate(bytes, &limits).expect("fixture validates");
        let img = decode_rgb(bytes, &info, 1).expect("fixture decodes");
        let max_sides: &[usize] = if name == "640x480" { &[960] } else { &[960, 640] };
        for &max_side in max_sides {
            let (w, h) = det_input_size(img.width, img.height, max_side);
            let bench_name = if max_side == 960 {
                format!("text_detect_{name}{suffix}")
            } else {
                format!("text_detect_{name}_max_side_{max_side}{suffix}")
            };
            g.bench_function(bench_name, |b| {
                b.iter(|| {
                    let mut input = vec![0f32; 3 * w * h];
                    det_input(black_box(&img), w, h, &mut input);
                    let map = detector.run(input, w, h, &Width::narrow()).expect("run");
                    db_postprocess(&map, w, h, img.width, img.height)
                })
            });
        }
        let (w, h) = det_input_size(img.width, img.height, 960);
        if name == "640x480" {
            let mut input = vec![0f32; 3 * w * h];
            det_input(&img, w, h, &mut input);
            let quads =
                db_postprocess(&detector.run(input, w, h, &Width::narrow()).expect("run"), w, h, img.width, img.height);
            let line = quads.first().expect("a text line").clone();
            g.bench_function(format!("recognize_one_line{suffix}"), |b| {
                b.iter(|| {
                    let (width, input) = rec_input(black_box(&img), &line);
                    let (probs, steps, classes) = recognizer.run(input, width, &Width::narrow()).expect("run");
                    ctc_greedy(&probs, steps, classes, recognizer.dict())
                })
            });
            // The batching lever: four lines in one run of a batch-4 plan against four runs.
            let (width, one) = rec_input(&img, &line);
            g.bench_function(format!("recognize_4_lines_batch_1{suffix}"), |b| {
                b.iter(|| {
                    (0..4)
                        .map(|_| recognizer.run(black_box(one.clone()), width, &Width::narrow()).expect("run").1)
                        .sum::<usize>()
                })
            });
            g.bench_function(format!("recognize_4_lines_batch_4{suffix}"), |b| {
                b.iter(|| batched.run(black_box(one.repeat(4)), width, &Width::narrow()).expect("run").1)
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
