//! H.264 access units (`?codec=h264` sessions): checked before a decoder sees a byte (the JPEG
//! rule, for video), then decoded in order by the session's [`decode::Decoder`].
//!
//! A client's access unit is untrusted. [`Stream::check`] walks it in pure Rust, without
//! decoding and without allocating in proportion to the picture: the Annex B start codes and
//! NAL headers ([`nal`]), and, read bit by bit ([`bits`]), every SPS (profile, chroma format,
//! bit depth, interlacing, size after cropping, reference frames), every PPS's ids and the first
//! fields of every slice header ([`params`]). It refuses, with the same stable codes as a JPEG:
//!
//! - `not_h264`: not Annex B (no start code first: a JPEG, random bytes);
//! - `truncated`: a parameter set or slice header that ends before its fields;
//! - `corrupt`: a set forbidden bit, an empty NAL unit, a field outside its range, a PPS of an
//!   SPS never sent, a slice of a PPS never sent or starting past its picture's end;
//! - `unsupported`, saying which: what the decoder cannot do (4:0:0, 4:2:2 or 4:4:4 chroma, bit
//!   depths over 8, interlaced coding, data partitioning, SVC, MVC, auxiliary pictures);
//! - `too_many_pixels`: a picture over the limits, or reference pictures that would hold more
//!   than [`Limits::max_decoder_bytes`].
//!
//! Parameter sets are the stream's state ([`Stream`]): kept by id across access units (as a
//! decoder keeps them), taken only from an access unit that passes whole, so a refused one
//! changes nothing. An access unit before the stream's first IDR picture is
//! [`Checked::BeforeKeyframe`]: a client that joins mid-stream waits for the next one.

pub mod bits;
pub mod decode;
pub mod nal;
pub mod params;

use nal::SplitError;
use params::{ParamError, Sps};

/// Why an access unit is refused; [`VideoError::code`] is the wire's reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    /// Not an H.264 Annex B access unit at all (no start code first): the client sent the
    /// wrong kind of data (a JPEG, raw bytes) on an `h264` session.
    #[error("not an H.264 access unit")]
    NotH264,
    /// A parameter set or slice header ends before its fields: the access unit was cut short.
    #[error("H.264 access unit is truncated")]
    Truncated,
    /// Structurally invalid (the reason says what): re-sending it will fail again.
    #[error("H.264 access unit is corrupt: {0}")]
    Corrupt(&'static str),
    /// Valid H.264 that the decoder cannot decode (the reason says which feature): re-encode
    /// as 8-bit 4:2:0 progressive (baseline, main or high profile).
    #[error("unsupported H.264: {0}")]
    Unsupported(&'static str),
    /// The picture exceeds the server's pixel or side limits, or its reference pictures the
    /// decoder memory limit: send smaller pictures or fewer reference frames.
    #[error("H.264 picture too large: {0}")]
    TooManyPixels(&'static str),
}

impl VideoError {
    /// Stable machine-readable code for the wire (the JPEG codes, and `not_h264`).
    pub fn code(&self) -> &'static str {
        match self {
            VideoError::NotH264 => "not_h264",
            VideoError::Truncated => "truncated",
            VideoError::Corrupt(_) => "corrupt",
            VideoError::Unsupported(_) => "unsupported",
            VideoError::TooManyPixels(_) => "too_many_pixels",
        }
    }
}

impl From<ParamError> for VideoError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Truncated => VideoError::Truncated,
            ParamError::Corrupt(why) => VideoError::Corrupt(why),
        }
    }
}

impl From<SplitError> for VideoError {
    fn from(e: SplitError) -> Self {
        match e {
            SplitError::NoStartCode => VideoError::NotH264,
            SplitError::Empty => VideoError::Corrupt("an empty NAL unit"),
            SplitError::ForbiddenBit => VideoError::Corrupt("a NAL unit with its forbidden bit set"),
        }
    }
}

/// `--max-decoder-bytes`'s default: 32 MiB (1080p with up to 9 reference frames).
pub const DEFAULT_MAX_DECODER_BYTES: u64 = 32 << 20;

/// What a session's binary messages are (`?codec=`): fixed for the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Codec {
    /// One JPEG per message (the default).
    #[default]
    Jpeg,
    /// One H.264 access unit per message, Annex B.
    H264,
}

impl Codec {
    /// The query string's and `session_started`'s name.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Jpeg => "jpeg",
            Codec::H264 => "h264",
        }
    }
}

/// Limits checked before any decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decoded `width × height` (the coded size, before cropping): `--max-pixels`.
    pub max_pixels: u64,
    /// Largest side, each.
    pub max_side: u32,
    /// Largest decoder memory a stream may need: `(max_num_ref_frames + 1)` pictures of its
    /// coded size at 1.5 bytes a pixel (8-bit 4:2:0).
    pub max_decoder_bytes: u64,
}

impl Limits {
    /// The decoder memory an SPS needs (see [`Limits::max_decoder_bytes`]).
    pub fn decoder_bytes(sps: &Sps) -> u64 {
        let picture = u64::from(sps.coded.0) * u64::from(sps.coded.1) * 3 / 2;
        (u64::from(sps.max_num_ref_frames) + 1) * picture
    }

    /// Whether the decoder can decode what `sps` describes, within these limits.
    fn admit(&self, sps: &Sps) -> Result<(), VideoError> {
        match sps.chroma_format_idc {
            1 => {}
            0 => return Err(VideoError::Unsupported("4:0:0 (monochrome) chroma")),
            2 => return Err(VideoError::Unsupported("4:2:2 chroma")),
            _ => return Err(VideoError::Unsupported("4:4:4 chroma")),
        }
        if sps.bit_depth != (8, 8) {
            return Err(VideoError::Unsupported("bit depth over 8"));
        }
        if !sps.frame_mbs_only {
            return Err(VideoError::Unsupported("interlaced coding"));
        }
        let (w, h) = sps.coded;
        if w > self.max_side || h > self.max_side {
            return Err(VideoError::TooManyPixels("a side over the largest allowed"));
        }
        if u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(VideoError::TooManyPixels("more pixels than --max-pixels"));
        }
        if Limits::decoder_bytes(sps) > self.max_decoder_bytes {
            return Err(VideoError::TooManyPixels("reference pictures over the decoder memory limit"));
        }
        Ok(())
    }
}

/// One picture's access unit that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    /// Its size after cropping.
    pub size: (u32, u32),
    /// An IDR picture (a keyframe: decodable on its own).
    pub idr: bool,
    /// Its slices.
    pub slices: usize,
}

/// What [`Stream::check`] found in an access unit that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A picture to decode.
    Picture(Picture),
    /// A picture before the stream's first IDR: its references were never sent, so it cannot be
    /// decoded; skip it (its parameter sets are kept).
    BeforeKeyframe,
    /// No slice at all (parameter sets, SEI, delimiters only): nothing to decode.
    NoPicture,
}

/// A stream's state across access units: its parameter sets by id, and whether an IDR picture
/// came yet. A few hundred bytes, whatever the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    sps: [Option<Sps>; 32],
    /// Each PPS's SPS id.
    pps: [Option<u8>; 256],
    keyframe_seen: bool,
}

impl Default for Stream {
    fn default() -> Self {
        Stream { sps: [None; 32], pps: [None; 256], keyframe_seen: false }
    }
}

impl Stream {
    /// A new stream: no parameter sets, no keyframe yet.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Check one access unit against the stream's parameter sets and `limits`; on success the
    /// stream keeps its parameter sets (and that a keyframe came). On error nothing changes.
    pub fn check(&mut self, au: &[u8], limits: &Limits) -> Result<Checked, VideoError> {
        let nals = nal::split(au)?;
        let (mut sps, mut pps) = (self.sps, self.pps);
        let (mut picture, mut idr, mut slices, mut orphan) = (None, false, 0usize, false);
        for n in &nals {
            match n.kind {
                7 => {
                    let s = params::sps(n.payload)?;
                    limits.admit(&s)?;
                    // A new SPS under an id in use invalidates the PPSs that named it only if it
                    // changed; keeping them is what decoders do for an identical resend.
                    sps[usize::from(s.id)] = Some(s);
                }
                8 => {
                    let (p, s) = params::pps_ids(n.payload)?;
                    if sps[usize::from(s)].is_none() {
                        return Err(VideoError::Corrupt("a PPS of an SPS never sent"));
                    }
                    pps[usize::from(p)] = Some(s);
                }
                1 | 5 => {
                    let (first_mb, _slice_type, p) = params::slice_start(n.payload)?;
                    let Some(s) = pps[usize::from(p)].and_then(|s| sps[usize::from(s)]) else {
                        // Before the first IDR this is a client that joined mid-stream (its
                        // encoder sends the parameter sets with the next IDR): skipped, not
                        // refused. After it, the stream is broken.
                        if self.keyframe_seen || n.kind == 5 {
                            return Err(VideoError::Corrupt("a slice of a PPS never sent"));
                        }
                        orphan = true;
                        continue;
                    };
                    let mbs = u64::from(s.coded.0 / 16) * u64::from(s.coded.1 / 16);
                    if u64::from(first_mb) >= mbs {
                        return Err(VideoError::Corrupt("a slice starting past its picture's end"));
                    }
                    if picture.is_some_and(|size| size != s.size) {
                        return Err(VideoError::Corrupt("slices of two picture sizes in one access unit"));
                    }
                    picture = Some(s.size);
                    idr |= n.kind == 5;
                    slices += 1;
                }
                2..=4 => return Err(VideoError::Unsupported("data partitioning (extended profile)")),
                14 | 15 | 20 => return Err(VideoError::Unsupported("SVC or MVC")),
                13 | 19 => return Err(VideoError::Unsupported("auxiliary pictures")),
                // SEI, delimiters, end of sequence or stream, filler; reserved and unspecified
                // types, which a decoder ignores.
                _ => {}
            }
        }
        if orphan {
            // A picture of parameter sets not sent yet, before any IDR (an IDR in the same
            // access unit would have refused it): nothing of it is kept.
            return Ok(Checked::BeforeKeyframe);
        }
        self.sps = sps;
        self.pps = pps;
        let Some(size) = picture else { return Ok(Checked::NoPicture) };
        self.keyframe_seen |= idr;
        if !self.keyframe_seen {
            return Ok(Checked::BeforeKeyframe);
        }
        Ok(Checked::Picture(Picture { size, idr, slices }))
    }

    /// The decoder lost its references (it refused an access unit and was reset): pictures are
    /// [`Checked::BeforeKeyframe`] again until the next IDR. Parameter sets are kept.
    pub fn restart(&mut self) {
        self.keyframe_seen = false;
    }

    /// Whether an IDR picture has come (pictures before it are [`Checked::BeforeKeyframe`]).
    pub fn keyframe_seen(&self) -> bool {
        self.keyframe_seen
    }
}

#[cfg(test)]
mod tests;
