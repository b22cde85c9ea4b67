//! An H.264 session's access units (`?codec=h264`): each is checked ([`h264::Stream::check`])
//! and, if it holds a picture, decoded here on the session's own thread, in order, whatever
//! happens to the picture next: inter pictures need every picture before them. Only then does
//! latest-frame-wins apply, to the decoded pictures: the one that asks for the models is
//! converted to RGB and offered to the slot like a JPEG frame's job (a newer picture replaces
//! it while it waits: `frame_dropped`); one the tracker predicts (`detect_every`) keeps only
//! its mark.
//!
//! Decoding here, not on a frame worker, keeps the one ordered decode per stream off the shared
//! workers: a session's decode costs its own thread's time (a few ms a picture at 640×480), so
//! it never delays another session's frames by more than that thread's share of a core.
//!
//! What a client is told: a refused access unit is `invalid_frame` with the check's code (the
//! decoder never sees it); one before the stream's first IDR, or after the decoder was reset,
//! is answered `keyframe_request`; one without a picture `frame_skipped`. An access unit the
//! decoder itself refuses is `invalid_frame` `corrupt`, and the decoder starts again at the next
//! IDR.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::slot::{Entry, Mark};
use super::{EndReason, Session};
use crate::config::Config;
use crate::protocol::{ErrorCode, ServerMessage};
use crate::scheduler::Frame;
use crate::vision::h264::decode::{DecodeError, Decoder, Output};
use crate::vision::h264::{self, Checked};
use crate::vision::Picture;

/// An H.264 session's stream state (parameter sets, whether a keyframe came) and decoder.
#[derive(Debug)]
pub struct Video {
    stream: h264::Stream,
    decoder: Decoder,
    limits: h264::Limits,
}

impl Video {
    /// A stream that has sent nothing yet, within the server's limits.
    pub fn new(config: &Config) -> Video {
        Video { stream: h264::Stream::new(), decoder: Decoder::new(), limits: h264::Limits::from(config) }
    }
}

impl<S: Read + Write + AsRawFd> Session<S> {
    /// Access unit `index` arrived on an H.264 session.
    pub(super) fn on_access_unit(&mut self, index: u64, au: Vec<u8>) -> Result<(), EndReason> {
        let Some(video) = self.video.as_mut() else { return Ok(()) };
        let picture = match video.stream.check(&au, &video.limits) {
            Ok(Checked::Picture(p)) => p,
            Ok(Checked::BeforeKeyframe) => {
                self.ctx.metrics.frame_not_decoded();
                return self.send(&ServerMessage::KeyframeRequest { frame_index: index });
            }
            Ok(Checked::NoPicture) => return self.skipped(index),
            Err(e) => {
                log::debug!("session {} access unit {index}: {e}", self.state.session_id);
                return self.on_invalid(index, e.code());
            }
        };
        let detects = self.detects();
        let Some(video) = self.video.as_mut() else { return Ok(()) };
        let started = Instant::now();
        let decoded = video.decoder.decode(&au, &picture, detects);
        let decode_ms = started.elapsed().as_secs_f64() * 1000.0;
        drop(au);
        let mark = Mark {
            index,
            received: self.last_rx,
            size: picture.size,
            decode_us: Some((decode_ms * 1000.0).min(f64::from(u32::MAX)) as u32),
        };
        let job = match decoded {
            Ok(Output::Rgb(image)) => Some(self.job(index, Frame::Picture(Picture { image, decode_ms }))),
            Ok(Output::Decoded) => None,
            Ok(Output::Held) => return self.skipped(index),
            Err(e) => {
                video.stream.restart();
                let sid = self.state.session_id;
                return match e {
                    DecodeError::Refused(_) => {
                        log::debug!("session {sid} access unit {index}: {e}; decoding resumes at the next IDR");
                        self.on_invalid(index, h264::VideoError::Corrupt("refused by the decoder").code())
                    }
                    DecodeError::Panicked | DecodeError::WrongSize { .. } => {
                        log::warn!("session {sid} access unit {index}: {e}; decoding resumes at the next IDR");
                        self.internal_errors += 1;
                        self.ctx.metrics.inference_error();
                        self.send(&ServerMessage::Error {
                            error: ErrorCode::Internal,
                            frame_index: Some(index),
                            detail: None,
                        })
                    }
                };
            }
        };
        self.offer(Entry { mark, job })
    }

    /// Access unit `index` held no picture: `frame_skipped`.
    fn skipped(&mut self, index: u64) -> Result<(), EndReason> {
        self.ctx.metrics.frame_not_decoded();
        self.send(&ServerMessage::FrameSkipped { frame_index: index, reason: "no_picture" })
    }
}
