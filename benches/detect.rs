//! The detection stage alone (preprocess + SSD-MobileNetV2 in tract + NMS) on a decoded frame,
//! plus the whole in-process pipeline (decode + detect) on one thread.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::jpeg::{decode_rgb, validate, Limits};
use framewire::model::Detector;
use framewire::protocol::PipelineKind;

fn bench(c: &mut Criterion) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let detector = Detector::load_ssd(&models).expect("model");
    let bytes: &[u8] = include_bytes!("../tests/fixtures/photo_cat_640x480.jpg");
    let limits = Limits { max_bytes: 8 << 20, max_pixels: 40_000_000, max_side: 16_384 };
    let info = validate(bytes, &limits).expect("fixture validates");
    let img = decode_rgb(bytes, &info, 1).expect("fixture decodes");
    let mut g = c.benchmark_group("detect");
    g.sample_size(20);
    g.bench_function("ssd_640x480", |b| b.iter(|| detector.detect(black_box(&img), 0.5)));
    drop(detector);
    let mut config = framewire::config::Config::defaults("127.0.0.1:0".parse().expect("addr"));
    config.models = models;
    config.threads = 1;
    let engine = framewire::build_engine(&config).expect("engine");
    for kind in [PipelineKind::Detect, PipelineKind::Ocr, PipelineKind::DetectOcr] {
        let name = format!("pipeline_{}_640x480", kind.as_str());
        g.bench_function(&name, |b| b.iter(|| engine.process_now(black_box(bytes), &info, kind)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
