//! The detection stage alone (preprocess + SSD-MobileNetV2 in tract + NMS) on a decoded frame,
//! plus the whole in-process pipeline (decode + models, on a 2-thread pool as in the server)
//! per pipeline, and `detect` on a 1920×1080 frame with the `scaled_decode` lever (DCT-domain
//! downscaled decode) off and on.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::jpeg::{decode_rgb, validate, Limits};
use framewire::model::Detector;
use framewire::protocol::PipelineKind;

fn bench(c: &mut Criterion) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let detector = Detector::load_ssd(&models).expect("model");
    let bytes: &[u8] = include_bytes!("../tests/fixtures/photo_cat_640x480.jpg");
    let big: &[u8] = include_bytes!("../tests/fixtures/photo_cat_pillarbox_1920x1080.jpg");
    let limits = Limits { max_bytes: 8 << 20, max_pixels: 40_000_000, max_side: 16_384 };
    let info = validate(bytes, &limits).expect("fixture validates");
    let big_info = validate(big, &limits).expect("fixture validates");
    let img = decode_rgb(bytes, &info, 1).expect("fixture decodes");
    let mut g = c.benchmark_group("detect");
    g.sample_size(10);
    g.bench_function("ssd_640x480", |b| b.iter(|| detector.detect(black_box(&img), 0.5)));
    drop(detector);
    for scaled in [false, true] {
        let mut config = framewire::config::Config::defaults("127.0.0.1:0".parse().expect("addr"));
        config.models = models.clone();
        config.threads = 2;
        config.scaled_decode = scaled;
        let engine = framewire::build_engine(&config).expect("engine");
        if scaled {
            // 640×480 frames are never scaled (240 < 300): one set of these is enough.
            for kind in [PipelineKind::Detect, PipelineKind::Ocr, PipelineKind::DetectOcr] {
                let name = format!("pipeline_{}_640x480", kind.as_str());
                g.bench_function(&name, |b| b.iter(|| engine.process_now(black_box(bytes), &info, kind)));
            }
        }
        let name = format!("pipeline_detect_1920x1080_scaled_decode_{scaled}");
        g.bench_function(&name, |b| b.iter(|| engine.process_now(black_box(big), &big_info, PipelineKind::Detect)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
