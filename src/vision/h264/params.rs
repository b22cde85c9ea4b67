//! The parameter sets and slice headers an access unit's check needs (ITU-T H.264 §7.3.2.1.1
//! SPS, §7.3.2.2 PPS, §7.3.3 the first fields of a slice header): what the picture is (profile,
//! chroma format, bit depth, size after cropping, reference frames) and which parameter sets a
//! slice refers to. The VUI and the rest of the PPS are not read: nothing there bounds memory
//! or decides whether the decoder can decode.

use super::bits::{BitError, Bits};

/// What an SPS says (the fields the check uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    /// `seq_parameter_set_id` (0 to 31).
    pub id: u8,
    /// `profile_idc` (66 baseline, 77 main, 100 high, …).
    pub profile_idc: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma and chroma bit depths.
    pub bit_depth: (u8, u8),
    /// `frame_mbs_only_flag`: false for interlaced (field or MBAFF) coding.
    pub frame_mbs_only: bool,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// Decoded size in macroblocks × 16: `(width, height)` before cropping.
    pub coded: (u32, u32),
    /// The picture's size after the cropping window.
    pub size: (u32, u32),
}

/// Why a parameter set or slice header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// It ends before its fields do.
    Truncated,
    /// A field outside its range (the standard's), or sizes that make no sense.
    Corrupt(&'static str),
}

impl From<BitError> for ParamError {
    fn from(e: BitError) -> Self {
        match e {
            BitError::Exhausted => ParamError::Truncated,
            BitError::TooLong => ParamError::Corrupt("an Exp-Golomb code over 32 bits"),
        }
    }
}

impl From<super::bits::Exhausted> for ParamError {
    fn from(_: super::bits::Exhausted) -> Self {
        ParamError::Truncated
    }
}

/// `ue(v)` no larger than `max`.
fn ue_max(b: &mut Bits<'_>, max: u32, what: &'static str) -> Result<u32, ParamError> {
    let v = b.ue()?;
    if v > max {
        return Err(ParamError::Corrupt(what));
    }
    Ok(v)
}

/// Skip a `scaling_list` of `size` coefficients (§7.3.2.1.1.1).
fn skip_scaling_list(b: &mut Bits<'_>, size: usize) -> Result<(), ParamError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = b.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(ParamError::Corrupt("delta_scale outside [-128, 127]"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// The profiles whose SPS carries the chroma format, bit depths and scaling matrices.
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Parse an SPS payload (after the NAL header byte).
pub fn sps(payload: &[u8]) -> Result<Sps, ParamError> {
    let mut b = Bits::new(payload);
    let profile_idc = b.u(8)? as u8;
    let _constraints_and_level = b.u(16)?;
    let id = ue_max(&mut b, 31, "seq_parameter_set_id over 31")? as u8;
    let (mut chroma_format_idc, mut bit_depth) = (1u8, (8u8, 8u8));
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = ue_max(&mut b, 3, "chroma_format_idc over 3")? as u8;
        if chroma_format_idc == 3 {
            let _separate_colour_plane = b.bit()?;
        }
        let luma = ue_max(&mut b, 6, "bit_depth_luma_minus8 over 6")? as u8;
        let chroma = ue_max(&mut b, 6, "bit_depth_chroma_minus8 over 6")? as u8;
        bit_depth = (8 + luma, 8 + chroma);
        let _qpprime_y_zero_transform_bypass = b.bit()?;
        if b.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num_minus4 = ue_max(&mut b, 12, "log2_max_frame_num_minus4 over 12")?;
    match ue_max(&mut b, 2, "pic_order_cnt_type over 2")? {
        0 => drop(ue_max(&mut b, 12, "log2_max_pic_order_cnt_lsb_minus4 over 12")?),
        1 => {
            let _delta_pic_order_always_zero = b.bit()?;
            let _offset_for_non_ref_pic = b.se()?;
            let _offset_for_top_to_bottom_field = b.se()?;
            let cycle = ue_max(&mut b, 255, "num_ref_frames_in_pic_order_cnt_cycle over 255")?;
            for _ in 0..cycle {
                let _offset_for_ref_frame = b.se()?;
            }
        }
        _ => {}
    }
    let max_num_ref_frames = ue_max(&mut b, 16, "max_num_ref_frames over 16")?;
    let _gaps_in_frame_num_allowed = b.bit()?;
    // Up to 16384 / 16 = 1024 macroblocks a side are read; more is refused by the caller's
    // limits, but the arithmetic below must not overflow before that.
    let width_mbs = ue_max(&mut b, 1 << 16, "pic_width_in_mbs_minus1 over 65536")? + 1;
    let height_map_units = ue_max(&mut b, 1 << 16, "pic_height_in_map_units_minus1 over 65536")? + 1;
    let frame_mbs_only = b.bit()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = b.bit()?;
    }
    let _direct_8x8_inference = b.bit()?;
    let coded = (width_mbs * 16, height_map_units * 16 * if frame_mbs_only { 1 } else { 2 });
    let mut size = coded;
    if b.bit()? {
        // Crop units (Table 6-1 and (7-19) to (7-22)): 4:2:0 crops 2 × 2 samples a step.
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let unit_y = sub_h * if frame_mbs_only { 1 } else { 2 };
        let offsets = [b.ue()?, b.ue()?, b.ue()?, b.ue()?].map(u64::from);
        let crop_w = (offsets[0] + offsets[1]) * sub_w;
        let crop_h = (offsets[2] + offsets[3]) * unit_y;
        if crop_w >= u64::from(coded.0) || crop_h >= u64::from(coded.1) {
            return Err(ParamError::Corrupt("a cropping window that leaves no picture"));
        }
        size = (coded.0 - crop_w as u32, coded.1 - crop_h as u32);
    }
    Ok(Sps { id, profile_idc, chroma_format_idc, bit_depth, frame_mbs_only, max_num_ref_frames, coded, size })
}

/// Parse a PPS payload's ids: `(pic_parameter_set_id, seq_parameter_set_id)`.
pub fn pps_ids(payload: &[u8]) -> Result<(u8, u8), ParamError> {
    let mut b = Bits::new(payload);
    let pps = ue_max(&mut b, 255, "pic_parameter_set_id over 255")? as u8;
    let sps = ue_max(&mut b, 31, "seq_parameter_set_id over 31")? as u8;
    Ok((pps, sps))
}

/// Parse a slice header's first fields: `(first_mb_in_slice, slice_type, pic_parameter_set_id)`.
pub fn slice_start(payload: &[u8]) -> Result<(u32, u8, u8), ParamError> {
    let mut b = Bits::new(payload);
    let first_mb = b.ue()?;
    let slice_type = ue_max(&mut b, 9, "slice_type over 9")? as u8;
    let pps = ue_max(&mut b, 255, "pic_parameter_set_id over 255")? as u8;
    Ok((first_mb, slice_type, pps))
}
