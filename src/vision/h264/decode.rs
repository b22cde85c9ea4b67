//! The H.264 decoder behind `?codec=h264` sessions: Cisco's OpenH264 (C++, built from the
//! `openh264` crate's bundled source), one per session, fed only access units that passed
//! [`super::Stream::check`], in order.
//!
//! How OpenH264 fails, and what this wrapper does about each:
//!
//! - **Error codes.** `DecodeFrameNoDelay` returns a `DECODING_STATE` bit set (bitstream error,
//!   reference lost, no parameter sets, out of memory, …); the crate turns any non-zero state
//!   into an `Err`. OpenH264 is built without C++ exceptions in its decode path: nothing throws
//!   across the FFI. A failed access unit leaves the decoder's references unusable, so the
//!   decoder is dropped and made anew on the next keyframe ([`Decoder::decode`] returns
//!   [`DecodeError::Refused`]; the session then waits for an IDR and asks for one).
//! - **Panics in the Rust wrapper** (a picture whose planes do not match its size, say): caught
//!   with `catch_unwind`, the decoder dropped the same way, [`DecodeError::Panicked`].
//! - **`assert` in the C++.** OpenH264 asserts on its own bookkeeping (its memory accounting
//!   when a decoder is freed); `cc` builds C++ without `NDEBUG`, so an assert would abort the
//!   process. The repository's `.cargo/config.toml` builds it with `-DNDEBUG`; the fuzz target
//!   through the decoder (`fuzz/fuzz_targets/decode_h264.rs`) runs it on hostile streams.
//! - **Memory errors** cannot be caught by anything in process: the check before the decoder
//!   refuses what it does not support or is too large, and the fuzz target looks for the rest.
//!
//! The decoded picture is converted to interleaved RGB (BT.601, limited range: what libx264,
//! browsers' encoders and cameras write) once, only for pictures that go to the models.

use std::panic::{catch_unwind, AssertUnwindSafe};

use openh264::decoder::{DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::Picture;
use crate::vision::image::RgbImage;

/// Why the decoder gave no picture for an access unit that passed the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// OpenH264 refused the access unit (its error state, for the log): the stream is broken
    /// past what the check can see. The decoder was reset: decoding resumes at the next IDR.
    #[error("the decoder refused the access unit: {0}")]
    Refused(String),
    /// The decoder or its wrapper panicked; the decoder was reset. A bug to report, answered
    /// `internal`.
    #[error("the decoder panicked")]
    Panicked,
    /// The decoded picture's size is not the one its SPS announced (the decoder was reset).
    #[error("decoded {got:?}, expected {expected:?}")]
    WrongSize {
        /// What the decoder gave.
        got: (usize, usize),
        /// What the SPS said.
        expected: (u32, u32),
    },
}

/// What one access unit gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The decoder held the picture back (it gives none for this access unit).
    Held,
    /// A picture was decoded and not converted (the models do not need it: a frame the
    /// tracker predicts).
    Decoded,
    /// A picture, as interleaved RGB for the models.
    Rgb(RgbImage),
}

/// One session's decoder; made at the first picture (a session that never sends one costs
/// nothing) and after every reset.
#[derive(Default)]
pub struct Decoder {
    inner: Option<openh264::decoder::Decoder>,
    /// Decoders made so far (the first, then one per reset).
    made: u64,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("live", &self.inner.is_some()).field("made", &self.made).finish()
    }
}

impl Decoder {
    /// A decoder; OpenH264's is made when the first picture comes.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decode one access unit that [`super::Stream::check`] passed as `picture`, converted to
    /// RGB when `rgb`. On error the decoder is reset: the caller must wait for the next IDR
    /// ([`super::Stream::restart`]).
    pub fn decode(&mut self, au: &[u8], picture: &Picture, rgb: bool) -> Result<Output, DecodeError> {
        if self.inner.is_none() {
            let config = DecoderConfig::new().flush_after_decode(Flush::Flush);
            let made = catch_unwind(|| openh264::decoder::Decoder::with_api_config(OpenH264API::from_source(), config));
            match made {
                Ok(Ok(d)) => self.inner = Some(d),
                Ok(Err(e)) => return Err(DecodeError::Refused(e.to_string())),
                Err(_) => return Err(DecodeError::Panicked),
            }
            self.made += 1;
        }
        let Some(inner) = self.inner.as_mut() else { return Err(DecodeError::Panicked) };
        let outcome = catch_unwind(AssertUnwindSafe(|| match inner.decode(au) {
            Ok(Some(yuv)) => {
                let got = yuv.dimensions();
                let (w, h) = (picture.size.0 as usize, picture.size.1 as usize);
                let (ys, us, vs) = yuv.strides();
                let planes_fit = ys >= w
                    && us >= w.div_ceil(2)
                    && vs == us
                    && yuv.y().len() >= ys * h
                    && yuv.u().len() >= us * (h / 2);
                if got != (w, h) || !planes_fit {
                    return Err(DecodeError::WrongSize { got, expected: picture.size });
                }
                if !rgb {
                    return Ok(Output::Decoded);
                }
                let mut data = vec![0u8; w * h * 3];
                yuv.write_rgb8(&mut data);
                Ok(Output::Rgb(RgbImage { width: w, height: h, data }))
            }
            Ok(None) => Ok(Output::Held),
            Err(e) => Err(DecodeError::Refused(e.to_string())),
        }));
        let outcome = outcome.unwrap_or(Err(DecodeError::Panicked));
        if outcome.is_err() {
            self.reset();
        }
        outcome
    }

    /// Drop the decoder (its references are unusable); the next picture makes a new one.
    pub fn reset(&mut self) {
        let inner = self.inner.take();
        // Freeing runs OpenH264's teardown: never let a panic out of it.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
    }

    /// Decoders made so far (1 + resets, once a picture came).
    pub fn made(&self) -> u64 {
        self.made
    }
}
