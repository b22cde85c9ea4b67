//! Strict JPEG decode to RGB (mozjpeg), the first stage on the pool: full size, and the
//! DCT-domain 1/2 scale `detect` uses for 1280×720 and 1920×1080 frames (`--scaled-decode`).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::vision::jpeg::{decode_rgb, validate, Limits};

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let frames: [(&str, &[u8]); 3] = [
        ("640x480", include_bytes!("../tests/fixtures/photo_cat_640x480.jpg")),
        ("1280x720", include_bytes!("../tests/fixtures/photo_motorcycle_1280x720.jpg")),
        ("1920x1080", include_bytes!("../tests/fixtures/photo_cat_pillarbox_1920x1080.jpg")),
    ];
    for (name, bytes) in frames {
        let info = validate(bytes, &limits).expect("fixture validates");
        c.bench_function(&format!("decode/{name}"), |b| b.iter(|| decode_rgb(black_box(bytes), &info, 1)));
        if name != "640x480" {
            c.bench_function(&format!("decode/{name}_scale_1_2"), |b| {
                b.iter(|| decode_rgb(black_box(bytes), &info, 2))
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
