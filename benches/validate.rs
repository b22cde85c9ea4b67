//! The header check every frame goes through before anything else: a real 640×480 frame, and
//! a decompression-bomb header that must be refused in microseconds.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::vision::jpeg::{validate, Limits};

const FRAME: &[u8] = include_bytes!("../tests/fixtures/photo_cat_640x480.jpg");

fn limits() -> Limits {
    Limits::default()
}

fn bench(c: &mut Criterion) {
    let mut bomb = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xDC, 0xFF, 0xDC, 0x03];
    bomb.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    bomb.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 0x03, 1, 0x00, 2, 0x11, 3, 0x11, 0x00, 0x3F, 0x00, 1, 2, 3, 4]);
    c.bench_function("validate/640x480", |b| b.iter(|| validate(black_box(FRAME), &limits())));
    c.bench_function("validate/bomb_header", |b| b.iter(|| validate(black_box(&bomb), &limits())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
