//! Strict JPEG decode to RGB (mozjpeg), the first stage on the pool: full size, and the
//! DCT-domain 1/2 scale `detect` uses for 1280×720 and 1920×1080 frames (`--scaled-decode`).
//! And an H.264 session's decode (OpenH264, on the session's thread) at 640×480 and 1920×1080:
//! an IDR picture, and a P-picture, converted to RGB or not (a picture the tracker predicts is
//! not).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::vision::h264::decode::{Decoder, Output};
use framewire::vision::h264::{self, Checked, Stream};
use framewire::vision::jpeg::{decode_rgb, validate, Limits};

/// A stream cut at its access unit delimiters.
fn access_units(s: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = (0..s.len().saturating_sub(5)).filter(|&i| s[i..i + 5] == [0, 0, 0, 1, 0x09]).collect();
    starts.iter().enumerate().map(|(k, &a)| &s[a..*starts.get(k + 1).unwrap_or(&s.len())]).collect()
}

/// Decoding a P-picture needs the pictures before it, and OpenH264's decoder cannot be cloned:
/// each iteration makes a decoder and decodes the stream's IDR (`idr_rgb`), or the IDR and the
/// P-picture after it (`idr_p_*`); a P-picture's cost is the difference (PERFORMANCE.md).
fn bench_h264(c: &mut Criterion) {
    let limits = h264::Limits { max_pixels: 40_000_000, max_side: 16_384, max_decoder_bytes: 256 << 20 };
    let streams: [(&str, &[u8]); 2] = [
        ("640x480", include_bytes!("../tests/fixtures/h264/plates_640x480.h264")),
        ("1920x1080", include_bytes!("../tests/fixtures/h264/plates_1920x1080.h264")),
    ];
    for (name, bytes) in streams {
        let aus = access_units(bytes);
        let mut stream = Stream::new();
        let pictures: Vec<_> = aus
            .iter()
            .map(|au| match stream.check(au, &limits) {
                Ok(Checked::Picture(p)) => p,
                other => panic!("{name}: {other:?}"),
            })
            .collect();
        for (what, upto, rgb) in [("idr_rgb", 1, true), ("idr_p_rgb", 2, true), ("idr_p_yuv_only", 2, false)] {
            c.bench_function(&format!("h264/{name}_{what}"), |b| {
                b.iter(|| {
                    let mut d = Decoder::new();
                    for (au, p) in aus.iter().zip(&pictures).take(upto) {
                        let out = d.decode(black_box(au), p, rgb).expect("decodes");
                        assert!(!matches!(out, Output::Held));
                    }
                })
            });
        }
    }
}

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

criterion_group!(benches, bench, bench_h264);
criterion_main!(benches);
