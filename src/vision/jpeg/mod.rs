//! JPEG frame admission: validate a client's bytes ([`validate`]), then decode them strictly to
//! RGB ([`decode_rgb`]); both walk the file with the one marker iterator in [`markers`].
//!
//! Every frame a client sends is untrusted. [`validate`] walks the marker segments in pure Rust,
//! without decoding and without any allocation proportional to the image, and refuses anything
//! oversized, truncated, malformed or in a coding process we do not decode (lossless,
//! hierarchical, arithmetic, 12-bit) *before* a single pixel buffer exists: a 1 KB file that
//! claims to be 65500×65500 is refused at its SOF segment, in microseconds.
//!
//! [`decode_rgb`] then decodes with mozjpeg (libjpeg-turbo) under a strict error manager: libjpeg
//! normally *warns* about corrupt entropy data or a premature end of file and carries on, filling
//! the rest of the image with grey; here every such warning aborts the decode, so a damaged frame
//! is reported to the client instead of being run through the models. libjpeg errors unwind (as
//! Rust panics without the panic hook) out of the C code and are caught at the [`decode_rgb`]
//! boundary, so no decoder failure can take a worker thread down.
//!
//! Decisions worth knowing about:
//! * height 0 in the SOF (the height is deferred to a DNL marker) is [`FrameError::Unsupported`]:
//!   it is legal JPEG, but libjpeg does not implement DNL.
//! * an EOI before any scan is [`FrameError::Corrupt`]: the stream ended properly, it just never
//!   contained an image, so re-sending the same bytes cannot help.
//! * 4-component (CMYK / YCCK, e.g. Adobe) files are accepted: libjpeg cannot convert them to RGB,
//!   so they are decoded as CMYK and converted here (naive `(1-C)(1-K)` conversion, honouring the
//!   Adobe inverted-CMYK convention).

/// Largest side a frame may declare, in pixels (libjpeg-style hard cap; not configurable).
pub const MAX_SIDE: u32 = 16_384;
/// Default largest encoded frame (`--max-frame-bytes`): 8 MiB. A 4K camera JPEG is 1–3 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Default largest `width × height` (`--max-pixels`): 40 MP.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// Default most scans of a progressive frame (`--max-scans`): 32. Cameras, browsers and
/// libjpeg's standard progressions write at most about a dozen scans; a legal progression allows
/// ~900 per component, each a pass over the whole image, so a small file could cost many times
/// a normal decode.
pub const DEFAULT_MAX_SCANS: u32 = 32;

pub mod decode;
pub mod markers;
pub mod validate;

pub use decode::decode_rgb;
pub use validate::validate;

/// Limits checked before any decode.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum size of the encoded frame in bytes.
    pub max_bytes: usize,
    /// Maximum `width * height` claimed by the frame header.
    pub max_pixels: u64,
    /// Maximum width and maximum height, each.
    pub max_side: u32,
    /// Maximum scans of a progressive frame.
    pub max_scans: u32,
}

impl Default for Limits {
    /// The defaults ([`DEFAULT_MAX_FRAME_BYTES`], [`DEFAULT_MAX_PIXELS`], [`MAX_SIDE`],
    /// [`DEFAULT_MAX_SCANS`]), which are also `framewire serve`'s with no flags.
    fn default() -> Limits {
        Limits {
            max_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_side: MAX_SIDE,
            max_scans: DEFAULT_MAX_SCANS,
        }
    }
}

/// What the header walk learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Image width in pixels (> 0).
    pub width: u32,
    /// Image height in pixels (> 0).
    pub height: u32,
    /// Colour components in the frame: 1 (grey), 3 (YCbCr / RGB) or 4 (CMYK / YCCK).
    pub components: u8,
    /// Progressive (SOF2) rather than sequential (SOF0 / SOF1) coding.
    pub progressive: bool,
}

/// Why a frame was refused. Each variant's doc says what it means to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The payload is not a JPEG at all (no SOI marker): the client sent the wrong kind of data
    /// (PNG, raw pixels, text, an empty message...).
    #[error("frame is not a JPEG")]
    NotJpeg,
    /// The JPEG ends before its image data is complete: the client's encoder or transport cut the
    /// frame short. Sending the whole frame would work.
    #[error("JPEG frame is truncated")]
    Truncated,
    /// The JPEG is structurally invalid or its compressed data is damaged: the client's encoder
    /// produced a broken frame. Re-sending the same bytes will fail again.
    #[error("JPEG frame is corrupt")]
    Corrupt,
    /// The encoded frame is larger than the server accepts in bytes: compress harder or send a
    /// smaller image.
    #[error("JPEG frame exceeds the size limit")]
    TooLarge,
    /// The frame's declared dimensions exceed the server's pixel-count or side-length limit:
    /// downscale before sending.
    #[error("JPEG frame has too many pixels")]
    TooManyPixels,
    /// A valid JPEG in a flavour the server does not decode (lossless, hierarchical, arithmetic
    /// coding, 12-bit samples, height deferred to DNL, a progressive frame with more scans than
    /// `--max-scans`): re-encode as baseline or progressive 8-bit Huffman JPEG.
    #[error("unsupported JPEG variant")]
    Unsupported,
}

impl FrameError {
    /// Stable machine-readable code for the wire protocol.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::NotJpeg => "not_jpeg",
            FrameError::Truncated => "truncated",
            FrameError::Corrupt => "corrupt",
            FrameError::TooLarge => "too_large",
            FrameError::TooManyPixels => "too_many_pixels",
            FrameError::Unsupported => "unsupported",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::image::RgbImage;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jpeg/", $name, ".jpg")).as_slice()
        };
    }

    fn test_limits() -> Limits {
        Limits { max_bytes: 4 << 20, ..Limits::default() }
    }

    const BASELINE: &[u8] = fixture!("baseline_420");

    fn check(data: &[u8], components: u8, progressive: bool) -> RgbImage {
        let info = validate(data, &test_limits()).expect("validate");
        assert_eq!(info, JpegInfo { width: 160, height: 120, components, progressive });
        let img = decode_rgb(data, &info, 1).expect("decode");
        assert_eq!((img.width, img.height, img.data.len()), (160, 120, 160 * 120 * 3));
        img
    }

    fn mean(img: &RgbImage) -> [f64; 3] {
        let mut sum = [0f64; 3];
        for px in img.data.chunks_exact(3) {
            for c in 0..3 {
                sum[c] += f64::from(px[c]);
            }
        }
        sum.map(|s| s / (img.width * img.height) as f64)
    }

    #[test]
    fn variants_validate_and_decode() {
        let reference = mean(&check(BASELINE, 3, false));
        for data in [
            fixture!("yuv444"),
            fixture!("yuv422"),
            fixture!("restart"),
            fixture!("meta"),
            fixture!("mjpeg_nodht"),
            fixture!("cmyk"),
        ] {
            let m = mean(&check(data, if data == fixture!("cmyk") { 4 } else { 3 }, false));
            for c in 0..3 {
                assert!((m[c] - reference[c]).abs() < 12.0, "{m:?} vs {reference:?}");
            }
        }
        let m = mean(&check(fixture!("progressive"), 3, true));
        assert!((m[0] - reference[0]).abs() < 3.0);
    }

    /// `progressive` with its last scan (SOS header and data) repeated until it has `scans`.
    pub(crate) fn with_scans(scans: usize) -> Vec<u8> {
        let data = fixture!("progressive");
        let segs: Vec<_> = markers::Markers::new(data).map(|s| s.unwrap()).collect();
        let sos: Vec<usize> =
            segs.iter().enumerate().filter(|(_, s)| s.marker == markers::SOS).map(|(i, _)| i).collect();
        let last = *sos.last().unwrap();
        let start = segs[last - 1].end;
        let eoi = segs.last().unwrap().end - 2;
        let mut out = data[..eoi].to_vec();
        for _ in sos.len()..scans {
            out.extend_from_slice(&data[start..eoi]);
        }
        out.extend_from_slice(&[0xFF, markers::EOI]);
        out
    }

    #[test]
    fn progressive_frames_with_too_many_scans_are_refused_from_the_header() {
        let have = markers::Markers::new(fixture!("progressive")).filter(|s| s.unwrap().marker == markers::SOS).count();
        assert!((2..=32).contains(&have), "the fixture has {have} scans");
        let limits = Limits { max_scans: 32, ..Limits::default() };
        assert!(validate(&with_scans(32), &limits).is_ok(), "32 scans are allowed");
        assert_eq!(validate(&with_scans(33), &limits), Err(FrameError::Unsupported));
        assert_eq!(validate(&with_scans(900), &limits), Err(FrameError::Unsupported));
        let tight = Limits { max_scans: have as u32 - 1, ..Limits::default() };
        assert_eq!(validate(fixture!("progressive"), &tight), Err(FrameError::Unsupported));
        // Baseline frames are not walked past their first scan.
        assert!(validate(BASELINE, &Limits { max_scans: 1, ..Limits::default() }).is_ok());
    }

    #[test]
    fn gray_is_replicated() {
        let img = check(fixture!("gray"), 1, false);
        assert!(img.data.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        assert!(img.data.iter().any(|&v| v != img.data[0]));
    }

    #[test]
    fn scaled_sizes() {
        for data in [BASELINE, fixture!("progressive"), fixture!("gray"), fixture!("cmyk")] {
            let info = validate(data, &test_limits()).unwrap();
            for (denom, w, h) in [(1, 160, 120), (2, 80, 60), (4, 40, 30), (8, 20, 15)] {
                let img = decode_rgb(data, &info, denom).unwrap();
                assert_eq!((img.width, img.height, img.data.len()), (w, h, w * h * 3));
            }
        }
        // Odd sizes round up.
        let mut odd = BASELINE.to_vec();
        let sof = odd.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        odd[sof + 5..sof + 9].copy_from_slice(&[0, 117, 0, 157]); // 157×117
        let info = validate(&odd, &test_limits()).unwrap();
        assert_eq!((info.width, info.height), (157, 117));
        let img = decode_rgb(&odd, &info, 8).unwrap();
        assert_eq!((img.width, img.height), (20, 15));
        let img = decode_rgb(&odd, &info, 4).unwrap();
        assert_eq!((img.width, img.height), (40, 30));
        assert_eq!(decode_rgb(BASELINE, &info, 3), Err(FrameError::Unsupported));
    }

    #[test]
    fn not_jpeg() {
        for data in [&b""[..], b"\xFF", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"GIF89a\x01\0\x01\0", b"\xFF\xD9"] {
            assert_eq!(validate(data, &test_limits()), Err(FrameError::NotJpeg));
        }
    }

    #[test]
    fn too_large_checked_first() {
        let limits = Limits { max_bytes: 100, ..test_limits() };
        assert_eq!(validate(BASELINE, &limits), Err(FrameError::TooLarge));
        assert_eq!(validate(&[0u8; 101], &limits), Err(FrameError::TooLarge));
        assert_eq!(
            validate(BASELINE, &Limits { max_bytes: BASELINE.len(), ..test_limits() }).map(|i| i.width),
            Ok(160)
        );
    }

    /// A minimal header: SOI, DQT-less SOF0 with `sof` body, SOS for component 1, one data byte.
    fn header(sof_marker: u8, sof: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, sof_marker];
        v.extend_from_slice(&((sof.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(sof);
        v.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12]);
        v
    }

    fn sof(precision: u8, height: u16, width: u16, comps: &[[u8; 3]]) -> Vec<u8> {
        let mut v = vec![precision];
        v.extend_from_slice(&height.to_be_bytes());
        v.extend_from_slice(&width.to_be_bytes());
        v.push(comps.len() as u8);
        comps.iter().for_each(|c| v.extend_from_slice(c));
        v
    }

    const GRAY: &[[u8; 3]] = &[[1, 0x11, 0]];
    const YCC: &[[u8; 3]] = &[[1, 0x22, 0], [2, 0x11, 1], [3, 0x11, 1]];

    #[test]
    fn hand_made_headers() {
        let ok = header(0xC0, &sof(8, 16, 16, GRAY));
        assert_eq!(
            validate(&ok, &test_limits()),
            Ok(JpegInfo { width: 16, height: 16, components: 1, progressive: false })
        );
        assert_eq!(validate(&header(0xC1, &sof(8, 16, 16, YCC)), &test_limits()).map(|i| i.components), Ok(3));
        let huge = header(0xC0, &sof(8, 65500, 65500, YCC));
        assert!(huge.len() < 64);
        assert_eq!(validate(&huge, &test_limits()), Err(FrameError::TooManyPixels));
        let wide = header(0xC0, &sof(8, 1, 20000, GRAY)); // few pixels, side too long
        assert_eq!(validate(&wide, &test_limits()), Err(FrameError::TooManyPixels));
        let cases: &[(Vec<u8>, FrameError)] = &[
            (header(0xC0, &sof(8, 16, 0, GRAY)), FrameError::Corrupt),
            (header(0xC0, &sof(8, 0, 16, GRAY)), FrameError::Unsupported), // DNL
            (header(0xC0, &sof(8, 16, 16, &[])), FrameError::Corrupt),
            (header(0xC0, &sof(8, 16, 16, &[[1, 0x11, 0], [2, 0x11, 0]])), FrameError::Corrupt),
            (header(0xC0, &sof(8, 16, 16, &[[1, 0x51, 0]])), FrameError::Corrupt), // H = 5
            (header(0xC0, &sof(8, 16, 16, &[[1, 0x10, 0]])), FrameError::Corrupt), // V = 0
            (header(0xC0, &sof(12, 16, 16, GRAY)), FrameError::Unsupported),
            (header(0xC3, &sof(8, 16, 16, GRAY)), FrameError::Unsupported), // lossless
            (header(0xC9, &sof(8, 16, 16, GRAY)), FrameError::Unsupported), // arithmetic
            (header(0xC5, &sof(8, 16, 16, GRAY)), FrameError::Unsupported), // hierarchical
            (header(0xC2, &sof(8, 16, 16, GRAY))[..10].to_vec(), FrameError::Truncated),
        ];
        for (data, want) in cases {
            assert_eq!(validate(data, &test_limits()), Err(*want), "{data:02X?}");
        }
        // SOF length inconsistent with its component count.
        let mut bad_len = ok.clone();
        bad_len[5] += 3;
        bad_len.splice(6 + 9..6 + 9, [0, 0, 0]);
        assert_eq!(validate(&bad_len, &test_limits()), Err(FrameError::Corrupt));
        // SOS problems: missing SOF, bad component count, unknown component, no data after it.
        let sos_only = [0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12];
        assert_eq!(validate(&sos_only, &test_limits()), Err(FrameError::Corrupt));
        let mut bad = ok.clone();
        let sos = bad.len() - 11;
        bad[sos + 4] = 0;
        assert_eq!(validate(&bad, &test_limits()), Err(FrameError::Corrupt));
        let mut bad = ok.clone();
        bad[sos + 5] = 9;
        assert_eq!(validate(&bad, &test_limits()), Err(FrameError::Corrupt));
        assert_eq!(validate(&ok[..ok.len() - 1], &test_limits()), Err(FrameError::Truncated));
        // EOI before any scan, fill bytes, standalone markers.
        assert_eq!(validate(b"\xFF\xD8\xFF\xD9", &test_limits()), Err(FrameError::Corrupt));
        let mut filled = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0x01, 0xFF, 0xFE, 0, 4, b'h', b'i'];
        filled.extend_from_slice(&ok[2..]);
        assert_eq!(validate(&filled, &test_limits()), validate(&ok, &test_limits()));
    }

    #[test]
    fn truncated_and_garbage_headers() {
        assert_eq!(validate(b"\xFF\xD8", &test_limits()), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8\xFF", &test_limits()), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8\xFF\xE0\x00", &test_limits()), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8hello, world", &test_limits()), Err(FrameError::Corrupt));
        assert_eq!(validate(b"\xFF\xD8\xFF\x00\x00\x04", &test_limits()), Err(FrameError::Corrupt));
        assert_eq!(validate(b"\xFF\xD8\xFF\xE0\x00\x01", &test_limits()), Err(FrameError::Corrupt)); // length < 2
        assert_eq!(validate(b"\xFF\xD8\xFF\xE0\x01\x00JFIF\0", &test_limits()), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8\xFF\xD8", &test_limits()), Err(FrameError::Corrupt));
        // Every cut inside the header of a real file is Truncated.
        let sos = BASELINE.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        for cut in 2..sos + 14 {
            assert_eq!(validate(&BASELINE[..cut], &test_limits()), Err(FrameError::Truncated), "cut at {cut}");
        }
    }

    #[test]
    fn truncated_scan_fails_decode() {
        for data in [BASELINE, fixture!("progressive"), fixture!("restart"), fixture!("gray")] {
            for cut in [data.len() / 2, data.len() * 3 / 4, data.len() - 2] {
                let info = validate(&data[..cut], &test_limits()).expect("header intact");
                assert_eq!(decode_rgb(&data[..cut], &info, 1), Err(FrameError::Truncated), "cut at {cut}");
            }
        }
    }

    #[test]
    fn corrupt_entropy_data_fails_decode() {
        let info = validate(BASELINE, &test_limits()).unwrap();
        let sos = BASELINE.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let scan = sos + 14..BASELINE.len() - 2;
        // Deterministic search: the first byte in the scan whose inversion the strict decoder
        // rejects (most flips only change pixels, which no decoder can detect).
        let mut failures = 0;
        for i in scan.clone().step_by(7) {
            if BASELINE[i] == 0xFF || BASELINE[i - 1] == 0xFF {
                continue;
            }
            let mut bad = BASELINE.to_vec();
            bad[i] = !bad[i];
            if bad[i] == 0xFF {
                continue;
            }
            match decode_rgb(&bad, &info, 1) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e, FrameError::Corrupt, "flip at {i}");
                    failures += 1;
                }
            }
        }
        assert!(failures > 0);
        // A stray marker inside the entropy data.
        let mut bad = BASELINE.to_vec();
        bad[scan.start + 100] = 0xFF;
        bad[scan.start + 101] = 0xD3;
        assert_eq!(decode_rgb(&bad, &info, 1), Err(FrameError::Corrupt));
    }

    #[test]
    fn decode_rejects_mismatched_info() {
        let info = JpegInfo { width: 16, height: 16, components: 3, progressive: false };
        assert_eq!(decode_rgb(BASELINE, &info, 1), Err(FrameError::Corrupt));
        assert_eq!(decode_rgb(b"", &info, 1), Err(FrameError::Corrupt));
        assert_eq!(decode_rgb(b"\xFF\xD8", &info, 1), Err(FrameError::Truncated));
    }

    #[test]
    fn codes() {
        assert_eq!(FrameError::TooManyPixels.code(), "too_many_pixels");
        assert_eq!(FrameError::NotJpeg.code(), "not_jpeg");
    }
}
