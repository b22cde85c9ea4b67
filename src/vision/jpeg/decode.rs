//! The strict decode of a validated frame: mozjpeg (libjpeg-turbo) with an error manager that
//! turns every corrupt-data warning into an error, inside `catch_unwind` (libjpeg reports errors
//! by unwinding out of the C code), so no decoder failure takes a worker thread down.

use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};

use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error, JERR_FILE_READ, JWRN_JFIF_MAJOR, JWRN_JPEG_EOF};

use super::markers::{Markers, APP14, EOI, SOS};
use super::{FrameError, JpegInfo};
use crate::vision::image::RgbImage;

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
/// CMYK/YCCK converted). `info` must come from [`super::validate`] on the same `data`; the decoder's own
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

/// Whether the header carries an Adobe APP14 segment (whose CMYK data is stored inverted).
fn has_adobe_marker(data: &[u8]) -> bool {
    for seg in Markers::new(data).map_while(Result::ok) {
        if seg.marker == APP14 && seg.body.starts_with(b"Adobe") {
            return true;
        }
        if matches!(seg.marker, SOS | EOI) {
            break;
        }
    }
    false
}
