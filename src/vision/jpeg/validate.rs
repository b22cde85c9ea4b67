//! The pure-Rust header check every frame passes before anything is decoded: size, SOI, each
//! segment up to the first scan, the frame header against the [`Limits`] (dimensions, pixels),
//! and the coding process (only 8-bit Huffman baseline, extended and progressive pass).

use super::markers::{Markers, EOI, SOI, SOS, TEM};
use super::{FrameError, JpegInfo, Limits};

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
/// entropy-coded data follows the SOS header. Then the rest of the file is walked only to count
/// its scans against `limits.max_scans` (a progressive frame's decode cost grows with its scans);
/// damage there is not judged here but by [`super::decode_rgb`], which reads it anyway.
pub fn validate(data: &[u8], limits: &Limits) -> Result<JpegInfo, FrameError> {
    if data.len() > limits.max_bytes {
        return Err(FrameError::TooLarge);
    }
    if !data.starts_with(&[0xFF, SOI]) {
        return Err(FrameError::NotJpeg);
    }
    let mut frame: Option<(JpegInfo, ComponentIds)> = None;
    for seg in Markers::new(data) {
        let seg = seg?;
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
                let info = *info;
                if info.progressive && count_scans(data, limits.max_scans) > limits.max_scans {
                    return Err(FrameError::Unsupported);
                }
                return Ok(info);
            }
            SOI | EOI => return Err(FrameError::Corrupt),
            // DHT, DAC, RSTn, DQT, DNL, DRI, APPn, COM, TEM.
            0xC4 | 0xCC | 0xD0..=0xD7 | 0xDB..=0xDD | 0xE0..=0xEF | 0xFE | TEM => {}
            _ => return Err(FrameError::Corrupt),
        }
    }
    // The walk ends only at EOI (refused above) or an error (returned above).
    Err(FrameError::Truncated)
}

/// Scans in the file, counting up to `max + 1` (enough to refuse), up to EOI or the first damage.
fn count_scans(data: &[u8], max: u32) -> u32 {
    let n = Markers::new(data).map_while(Result::ok).filter(|s| s.marker == SOS).take(max as usize + 1).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}
