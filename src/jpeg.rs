//! JPEG frame admission: validate a client's bytes, then decode them strictly to RGB.
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

use crate::image::RgbImage;
use mozjpeg::{ColorSpace, Decompress};
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};

/// Limits checked before any decode.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum size of the encoded frame in bytes.
    pub max_bytes: usize,
    /// Maximum `width * height` claimed by the frame header.
    pub max_pixels: u64,
    /// Maximum width and maximum height, each.
    pub max_side: u32,
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
    /// coding, 12-bit samples, height deferred to DNL): re-encode as baseline or progressive
    /// 8-bit Huffman JPEG.
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

// Marker codes (ITU T.81 table B.1), second byte after 0xFF.
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const TEM: u8 = 0x01;
const APP14: u8 = 0xEE;

/// One marker of the header: standalone markers have an empty body.
struct Segment<'a> {
    marker: u8,
    body: &'a [u8],
    /// Offset just past the segment.
    end: usize,
}

/// Reads the marker at `pos` (after optional fill bytes) and its segment.
fn read_segment(data: &[u8], pos: usize) -> Result<Segment<'_>, FrameError> {
    match data.get(pos) {
        None => return Err(FrameError::Truncated),
        Some(0xFF) => {}
        Some(_) => return Err(FrameError::Corrupt),
    }
    // Any number of 0xFF fill bytes may precede the marker code.
    let mut p = pos + 1;
    while data.get(p) == Some(&0xFF) {
        p += 1;
    }
    let marker = *data.get(p).ok_or(FrameError::Truncated)?;
    let after = p + 1;
    let standalone = matches!(marker, TEM | 0xD0..=0xD7 | SOI | EOI);
    if marker == 0x00 {
        return Err(FrameError::Corrupt);
    }
    if standalone {
        return Ok(Segment { marker, body: &[], end: after });
    }
    let len_bytes = data.get(after..after + 2).ok_or(FrameError::Truncated)?;
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    if len < 2 {
        return Err(FrameError::Corrupt);
    }
    let end = after + len;
    let body = data.get(after + 2..end).ok_or(FrameError::Truncated)?;
    Ok(Segment { marker, body, end })
}

/// A component of the frame header: identifier only (what SOS refers to).
type ComponentIds = [u8; 4];

/// Parses an SOF0/1/2 body, applying the limits as soon as the dimensions are known.
fn parse_sof(body: &[u8], progressive: bool, limits: &Limits) -> Result<(JpegInfo, ComponentIds), FrameError> {
    let [precision, h0, h1, w0, w1, count, comps @ ..] = body else {
        return Err(FrameError::Corrupt);
    };
    if *precision != 8 {
        return Err(FrameError::Unsupported);
    }
    let height = u32::from(u16::from_be_bytes([*h0, *h1]));
    let width = u32::from(u16::from_be_bytes([*w0, *w1]));
    if height == 0 {
        // Height deferred to a DNL marker: legal, but libjpeg does not implement it.
        return Err(FrameError::Unsupported);
    }
    if width == 0 {
        return Err(FrameError::Corrupt);
    }
    if width > limits.max_side || height > limits.max_side || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(FrameError::TooManyPixels);
    }
    if !matches!(count, 1 | 3 | 4) || comps.len() != 3 * usize::from(*count) {
        return Err(FrameError::Corrupt);
    }
    let mut ids = [0u8; 4];
    for (i, comp) in comps.chunks_exact(3).enumerate() {
        let (h, v, tq) = (comp[1] >> 4, comp[1] & 0x0F, comp[2]);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 || ids[..i].contains(&comp[0]) {
            return Err(FrameError::Corrupt);
        }
        ids[i] = comp[0];
    }
    Ok((JpegInfo { width, height, components: *count, progressive }, ids))
}

/// Checks an SOS header against the frame's components.
fn check_sos(body: &[u8], frame: &JpegInfo, ids: &ComponentIds) -> Result<(), FrameError> {
    let Some((&count, rest)) = body.split_first() else {
        return Err(FrameError::Corrupt);
    };
    let n = usize::from(count);
    if !(1..=4).contains(&count) || count > frame.components || rest.len() != 2 * n + 3 {
        return Err(FrameError::Corrupt);
    }
    let frame_ids = &ids[..usize::from(frame.components)];
    if rest[..2 * n].chunks_exact(2).any(|c| !frame_ids.contains(&c[0])) {
        return Err(FrameError::Corrupt);
    }
    Ok(())
}

/// Pure-Rust header walk, no decode, no allocation proportional to the image: checks size, SOI,
/// every segment up to and including the first SOS header, the SOF against `limits`, and that
/// entropy-coded data follows the SOS header. Later scans (progressive) are not walked; damage
/// there is caught by [`decode_rgb`].
pub fn validate(data: &[u8], limits: &Limits) -> Result<JpegInfo, FrameError> {
    if data.len() > limits.max_bytes {
        return Err(FrameError::TooLarge);
    }
    if !data.starts_with(&[0xFF, SOI]) {
        return Err(FrameError::NotJpeg);
    }
    let mut pos = 2;
    let mut frame: Option<(JpegInfo, ComponentIds)> = None;
    loop {
        let seg = read_segment(data, pos)?;
        match seg.marker {
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(FrameError::Corrupt);
                }
                frame = Some(parse_sof(seg.body, seg.marker == 0xC2, limits)?);
            }
            // Lossless, hierarchical (incl. DHP/EXP), arithmetic-coded SOFs; JPG reserved.
            0xC3 | 0xC5..=0xC8 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDE | 0xDF => return Err(FrameError::Unsupported),
            SOS => {
                let (info, ids) = frame.as_ref().ok_or(FrameError::Corrupt)?;
                check_sos(seg.body, info, ids)?;
                if seg.end >= data.len() {
                    return Err(FrameError::Truncated);
                }
                return Ok(*info);
            }
            SOI | EOI => return Err(FrameError::Corrupt),
            // DHT, DAC, RSTn, DQT, DNL, DRI, APPn, COM, TEM.
            0xC4 | 0xCC | 0xD0..=0xD7 | 0xDB..=0xDD | 0xE0..=0xEF | 0xFE | TEM => {}
            _ => return Err(FrameError::Corrupt),
        }
        pos = seg.end;
    }
}

/// Whether the header carries an Adobe APP14 segment (whose CMYK data is stored inverted).
fn has_adobe_marker(data: &[u8]) -> bool {
    let mut pos = 2;
    while let Ok(seg) = read_segment(data, pos) {
        if seg.marker == APP14 && seg.body.starts_with(b"Adobe") {
            return true;
        }
        if matches!(seg.marker, SOS | EOI) {
            break;
        }
        pos = seg.end;
    }
    false
}

// ---- strict libjpeg error manager ----------------------------------------------------------

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error, JERR_FILE_READ, JWRN_JFIF_MAJOR, JWRN_JPEG_EOF};

/// Unwind payload carrying the classified failure.
struct DecodeFailure(FrameError);

/// The message code of the error or warning being reported on `cinfo`.
fn message_code(cinfo: &jpeg_common_struct) -> c_int {
    // SAFETY: libjpeg sets `err` to our error manager before any callback can run; a null
    // pointer is handled by `as_ref`.
    unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code)
}

fn classify(code: c_int) -> FrameError {
    match code {
        // Our in-memory source only fails a read at end of data.
        c if c == JWRN_JPEG_EOF as c_int || c == JERR_FILE_READ as c_int => FrameError::Truncated,
        _ => FrameError::Corrupt,
    }
}

/// `error_exit`: unwind out of libjpeg (without running the panic hook).
unsafe extern "C-unwind" fn strict_error_exit(cinfo: &mut jpeg_common_struct) {
    panic::resume_unwind(Box::new(DecodeFailure(classify(message_code(cinfo)))));
}

/// `emit_message`: warnings (`level < 0`) about damaged data are fatal (libjpeg would only
/// count them and go on, handing us a partly grey frame); trace messages are ignored. The one
/// exception is "unknown JFIF revision", which concerns metadata only.
unsafe extern "C-unwind" fn strict_emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    let code = message_code(cinfo);
    if level < 0 && code != JWRN_JFIF_MAJOR as c_int {
        panic::resume_unwind(Box::new(DecodeFailure(classify(code))));
    }
}

fn strict_decompress(data: &[u8]) -> std::io::Result<Decompress<&[u8]>> {
    // SAFETY: `jpeg_error_mgr` is a plain C struct (pointers, ints, optional fns): all-zero is
    // a valid value, and `jpeg_std_error` initialises it in place before use.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a valid, exclusively borrowed error manager.
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(strict_error_exit);
    err.emit_message = Some(strict_emit_message);
    Decompress::with_err(err).from_mem(data)
}

/// Strict decode to RGB with mozjpeg inside `catch_unwind` (grayscale replicated to 3 channels,
/// CMYK/YCCK converted). `info` must come from [`validate`] on the same `data`; the decoder's own
/// header parse must agree with it, so the limits checked there bound every allocation here.
///
/// `scale_denom` in {1, 2, 4, 8} selects a DCT-domain downscale by that factor; the returned
/// image has the scaled size `ceil(width / scale_denom) × ceil(height / scale_denom)`. Any other
/// `scale_denom` is a caller bug and yields [`FrameError::Unsupported`].
pub fn decode_rgb(data: &[u8], info: &JpegInfo, scale_denom: u8) -> Result<RgbImage, FrameError> {
    let numerator = match scale_denom {
        1 => 8,
        2 => 4,
        4 => 2,
        8 => 1,
        _ => return Err(FrameError::Unsupported),
    };
    match panic::catch_unwind(AssertUnwindSafe(|| decode_inner(data, info, numerator, scale_denom))) {
        Ok(result) => result,
        Err(payload) => Err(payload.downcast_ref::<DecodeFailure>().map_or(FrameError::Corrupt, |f| f.0)),
    }
}

fn decode_inner(data: &[u8], info: &JpegInfo, numerator: u8, denom: u8) -> Result<RgbImage, FrameError> {
    let mut dec = strict_decompress(data).map_err(|_| FrameError::Corrupt)?;
    if dec.size() != (info.width as usize, info.height as usize) {
        return Err(FrameError::Corrupt);
    }
    let cmyk = matches!(dec.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
    dec.scale(numerator);
    let mut started =
        if cmyk { dec.to_colorspace(ColorSpace::JCS_CMYK) } else { dec.rgb() }.map_err(|_| FrameError::Corrupt)?;
    let (width, height) = (started.width(), started.height());
    let denom = u32::from(denom);
    if (width, height) != (info.width.div_ceil(denom) as usize, info.height.div_ceil(denom) as usize) {
        return Err(FrameError::Corrupt);
    }
    let pixels = width * height;
    let rgb = if cmyk {
        let cmyk: Vec<[u8; 4]> = started.read_scanlines().map_err(|_| FrameError::Corrupt)?;
        if cmyk.len() != pixels {
            return Err(FrameError::Corrupt);
        }
        cmyk_to_rgb(&cmyk, has_adobe_marker(data))
    } else {
        started.read_scanlines::<u8>().map_err(|_| FrameError::Corrupt)?
    };
    if rgb.len() != pixels * 3 {
        return Err(FrameError::Corrupt);
    }
    started.finish().map_err(|_| FrameError::Corrupt)?;
    Ok(RgbImage { width, height, data: rgb })
}

/// Naive CMYK → RGB: `R = (1 - C)(1 - K)`. Adobe files store the components inverted
/// (`255 - C`), which is then directly the `(1 - C)` factor.
fn cmyk_to_rgb(cmyk: &[[u8; 4]], adobe_inverted: bool) -> Vec<u8> {
    let mul = |a: u8, b: u8| ((u32::from(a) * u32::from(b) + 127) / 255) as u8;
    let mut out = Vec::with_capacity(cmyk.len() * 3);
    for &px in cmyk {
        let [c, m, y, k] = if adobe_inverted { px } else { px.map(|v| 255 - v) };
        out.extend_from_slice(&[mul(c, k), mul(m, k), mul(y, k)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jpeg/", $name, ".jpg")).as_slice()
        };
    }

    const LIMITS: Limits = Limits { max_bytes: 4 << 20, max_pixels: 40_000_000, max_side: 16384 };

    const BASELINE: &[u8] = fixture!("baseline_420");

    fn check(data: &[u8], components: u8, progressive: bool) -> RgbImage {
        let info = validate(data, &LIMITS).expect("validate");
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

    #[test]
    fn gray_is_replicated() {
        let img = check(fixture!("gray"), 1, false);
        assert!(img.data.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        assert!(img.data.iter().any(|&v| v != img.data[0]));
    }

    #[test]
    fn scaled_sizes() {
        for data in [BASELINE, fixture!("progressive"), fixture!("gray"), fixture!("cmyk")] {
            let info = validate(data, &LIMITS).unwrap();
            for (denom, w, h) in [(1, 160, 120), (2, 80, 60), (4, 40, 30), (8, 20, 15)] {
                let img = decode_rgb(data, &info, denom).unwrap();
                assert_eq!((img.width, img.height, img.data.len()), (w, h, w * h * 3));
            }
        }
        // Odd sizes round up.
        let mut odd = BASELINE.to_vec();
        let sof = odd.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        odd[sof + 5..sof + 9].copy_from_slice(&[0, 117, 0, 157]); // 157×117
        let info = validate(&odd, &LIMITS).unwrap();
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
            assert_eq!(validate(data, &LIMITS), Err(FrameError::NotJpeg));
        }
    }

    #[test]
    fn too_large_checked_first() {
        let limits = Limits { max_bytes: 100, ..LIMITS };
        assert_eq!(validate(BASELINE, &limits), Err(FrameError::TooLarge));
        assert_eq!(validate(&[0u8; 101], &limits), Err(FrameError::TooLarge));
        assert_eq!(validate(BASELINE, &Limits { max_bytes: BASELINE.len(), ..LIMITS }).map(|i| i.width), Ok(160));
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
        assert_eq!(validate(&ok, &LIMITS), Ok(JpegInfo { width: 16, height: 16, components: 1, progressive: false }));
        assert_eq!(validate(&header(0xC1, &sof(8, 16, 16, YCC)), &LIMITS).map(|i| i.components), Ok(3));
        let huge = header(0xC0, &sof(8, 65500, 65500, YCC));
        assert!(huge.len() < 64);
        assert_eq!(validate(&huge, &LIMITS), Err(FrameError::TooManyPixels));
        let wide = header(0xC0, &sof(8, 1, 20000, GRAY)); // few pixels, side too long
        assert_eq!(validate(&wide, &LIMITS), Err(FrameError::TooManyPixels));
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
            assert_eq!(validate(data, &LIMITS), Err(*want), "{data:02X?}");
        }
        // SOF length inconsistent with its component count.
        let mut bad_len = ok.clone();
        bad_len[5] += 3;
        bad_len.splice(6 + 9..6 + 9, [0, 0, 0]);
        assert_eq!(validate(&bad_len, &LIMITS), Err(FrameError::Corrupt));
        // SOS problems: missing SOF, bad component count, unknown component, no data after it.
        let sos_only = [0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12];
        assert_eq!(validate(&sos_only, &LIMITS), Err(FrameError::Corrupt));
        let mut bad = ok.clone();
        let sos = bad.len() - 11;
        bad[sos + 4] = 0;
        assert_eq!(validate(&bad, &LIMITS), Err(FrameError::Corrupt));
        let mut bad = ok.clone();
        bad[sos + 5] = 9;
        assert_eq!(validate(&bad, &LIMITS), Err(FrameError::Corrupt));
        assert_eq!(validate(&ok[..ok.len() - 1], &LIMITS), Err(FrameError::Truncated));
        // EOI before any scan, fill bytes, standalone markers.
        assert_eq!(validate(b"\xFF\xD8\xFF\xD9", &LIMITS), Err(FrameError::Corrupt));
        let mut filled = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0x01, 0xFF, 0xFE, 0, 4, b'h', b'i'];
        filled.extend_from_slice(&ok[2..]);
        assert_eq!(validate(&filled, &LIMITS), validate(&ok, &LIMITS));
    }

    #[test]
    fn truncated_and_garbage_headers() {
        assert_eq!(validate(b"\xFF\xD8", &LIMITS), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8\xFF", &LIMITS), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8\xFF\xE0\x00", &LIMITS), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8hello, world", &LIMITS), Err(FrameError::Corrupt));
        assert_eq!(validate(b"\xFF\xD8\xFF\x00\x00\x04", &LIMITS), Err(FrameError::Corrupt));
        assert_eq!(validate(b"\xFF\xD8\xFF\xE0\x00\x01", &LIMITS), Err(FrameError::Corrupt)); // length < 2
        assert_eq!(validate(b"\xFF\xD8\xFF\xE0\x01\x00JFIF\0", &LIMITS), Err(FrameError::Truncated));
        assert_eq!(validate(b"\xFF\xD8\xFF\xD8", &LIMITS), Err(FrameError::Corrupt));
        // Every cut inside the header of a real file is Truncated.
        let sos = BASELINE.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        for cut in 2..sos + 14 {
            assert_eq!(validate(&BASELINE[..cut], &LIMITS), Err(FrameError::Truncated), "cut at {cut}");
        }
    }

    #[test]
    fn truncated_scan_fails_decode() {
        for data in [BASELINE, fixture!("progressive"), fixture!("restart"), fixture!("gray")] {
            for cut in [data.len() / 2, data.len() * 3 / 4, data.len() - 2] {
                let info = validate(&data[..cut], &LIMITS).expect("header intact");
                assert_eq!(decode_rgb(&data[..cut], &info, 1), Err(FrameError::Truncated), "cut at {cut}");
            }
        }
    }

    #[test]
    fn corrupt_entropy_data_fails_decode() {
        let info = validate(BASELINE, &LIMITS).unwrap();
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
