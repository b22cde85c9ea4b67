//! The detection stage alone (preprocess + SSD-MobileNetV2 + NMS) on a decoded frame, plus the
//! whole in-process pipeline (decode + models, as a lone frame on a 2-worker scheduler, as in the
//! server) per pipeline, and `detect` on a 1920×1080 frame with the `scaled_decode` lever
//! (DCT-domain downscaled decode) off and on; the detection stage at `min_score` 0 (every
//! candidate in play) against the default 0.5, and at `min_score` 0 with a `classes` list of
//! 1,000 names. Per engine (see `support/engines.rs`).

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::protocol::PipelineKind;
use framewire::vision::detect::{Detector, Wanted};
use framewire::vision::jpeg::{decode_rgb, validate, Limits};
use framewire::vision::parallel::Width;
use framewire::vision::runtime::EngineKind;
use framewire::vision::{class_id, ClassSet};

#[path = "support/engines.rs"]
mod engines;

fn bench(c: &mut Criterion) {
    engines::each_engine(c, "detect", 10, bench_engine);
}

fn bench_engine(g: &mut engines::Group<'_>, suffix: &str, kind: EngineKind) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let detector = Detector::load_ssd(&engines::runtime(kind, 1), &models).expect("model");
    let bytes: &[u8] = include_bytes!("../tests/fixtures/photo_cat_640x480.jpg");
    let big: &[u8] = include_bytes!("../tests/fixtures/photo_cat_pillarbox_1920x1080.jpg");
    let limits = Limits::default();
    let info = validate(bytes, &limits).expect("fixture validates");
    let big_info = validate(big, &limits).expect("fixture validates");
    let img = decode_rgb(bytes, &info, 1).expect("fixture decodes");
    g.bench_function(format!("ssd_640x480{suffix}"), |b| b.iter(|| detector.detect(black_box(&img), 0.5)));
    // The same frame with every candidate in play (a client's `min_score=0`): NMS is bounded by
    // MAX_NMS_CANDIDATES and the per-class stop, so this stays close to the line above.
    g.bench_function(format!("ssd_640x480_min_score_0{suffix}"), |b| b.iter(|| detector.detect(black_box(&img), 0.0)));
    // And with a client's `classes` of 1,000 names (the most a list takes), in the worst order
    // for a list: "person" 920 times, then every label once (every class is kept, so NMS does
    // the default's work and only the filter's cost differs). Resolved once to a set of 80 ids,
    // each candidate's test is one bit test.
    let labels = detector.labels().to_vec();
    let names: Vec<&String> = std::iter::repeat_n(&labels[0], 920).chain(labels.iter()).collect();
    let classes: ClassSet = names.iter().filter_map(|l| class_id(&labels, l)).collect();
    let wanted = Wanted { min_score: 0.0, classes: Some(&classes), max_detections: None };
    let frame = (img.width, img.height);
    g.bench_function(format!("ssd_640x480_min_score_0_classes_1000{suffix}"), |b| {
        b.iter(|| detector.detect_scaled(black_box(&img), frame, &wanted, &Width::narrow()))
    });
    drop(detector);
    for scaled in [false, true] {
        let mut config = framewire::config::Config::defaults("127.0.0.1:0".parse().expect("addr"));
        config.models = models.clone();
        config.threads = 2;
        config.scaled_decode = scaled;
        config.engine = kind;
        let scheduler = framewire::build_scheduler(&config).expect("models load");
        if scaled {
            // 640×480 frames are never scaled (240 < 300): one set of these is enough.
            for pipeline in [PipelineKind::Detect, PipelineKind::Ocr, PipelineKind::DetectOcr] {
                let name = format!("pipeline_{}_640x480{suffix}", pipeline.as_str());
                g.bench_function(&name, |b| b.iter(|| scheduler.process_now(black_box(bytes), &info, pipeline)));
            }
        }
        let name = format!("pipeline_detect_1920x1080_scaled_decode_{scaled}{suffix}");
        g.bench_function(&name, |b| b.iter(|| scheduler.process_now(black_box(big), &big_info, PipelineKind::Detect)));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
