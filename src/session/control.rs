//! A session's control messages (`configure`, `end_of_stream`): taken in their turn among the
//! frames (a message waits until every frame received before it is answered), checked against
//! the configuration in force, applied, answered. Parsing is `protocol::control`'s; the
//! zones' and lines' rules are `analytics::Spec::validate`'s.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{EndReason, Ending, Session, MAX_PENDING_CONTROL};
use crate::analytics::{Ended, Spec, SpecError};
use crate::protocol::control::{self, Configure, Control, ControlError};
use crate::protocol::{close, line_counts, zone_counts, DetectorInfo, ErrorCode, Event, PipelineKind, ServerMessage};
use crate::vision::track::{EndedTrack, Tracker};
use crate::vision::{class_id, OcrScope};

impl<S: Read + Write + AsRawFd> Session<S> {
    /// A text message: a control message (rate-limited, then parsed, then applied in its turn
    /// among the frames), or protocol v1's `unsupported_message` and close 1003.
    pub(super) fn on_text(&mut self, text: &str) -> Result<(), EndReason> {
        if self.ending != Ending::Open {
            return Ok(());
        }
        let unsupported = |s: &mut Self| {
            s.send(&ServerMessage::Error { error: ErrorCode::UnsupportedMessage, frame_index: None, detail: None })?;
            s.request_close(close::UNSUPPORTED, "unsupported_message");
            Ok(())
        };
        // Anything that does not even start like a JSON object is refused before it costs a
        // token or a parse.
        if !text.trim_start().starts_with('{') {
            return unsupported(self);
        }
        let error =
            |error, detail: String| ServerMessage::Error { error, frame_index: None, detail: Some(detail.into()) };
        if !self.budget.take(Instant::now()) {
            return self.send(&ServerMessage::Error { error: ErrorCode::RateLimited, frame_index: None, detail: None });
        }
        let control = match control::parse(text) {
            Ok(c) => c,
            Err(ControlError::NotControl) => return unsupported(self),
            Err(ControlError::Malformed(why)) => return self.send(&error(ErrorCode::InvalidMessage, why)),
            Err(ControlError::Config(e)) => return self.send(&error(ErrorCode::InvalidConfig, e.to_string())),
        };
        if !self.slot.busy() {
            return self.apply(control);
        }
        if self.pending.len() >= MAX_PENDING_CONTROL {
            let why = format!("more than {MAX_PENDING_CONTROL} control messages wait for frames in flight");
            return self.send(&error(ErrorCode::RateLimited, why));
        }
        self.pending.push_back((self.state.frame_index.load(Ordering::Relaxed), control));
        Ok(())
    }

    /// Apply a control message whose turn has come.
    fn apply(&mut self, control: Control) -> Result<(), EndReason> {
        match control {
            Control::EndOfStream => self.end_of_stream(),
            Control::Configure(c) => match self.reconfigure(c) {
                Ok(events) => {
                    let detector = self.ctx.scheduler.detector().map(DetectorInfo::from);
                    let msg = ServerMessage::Configured {
                        pipeline: self.kind.as_str(),
                        config: self.echo_config(&detector),
                        events: events.into_iter().map(Event::from).collect(),
                    };
                    self.send(&msg)
                }
                Err(e) => self.send(&ServerMessage::Error {
                    error: ErrorCode::InvalidConfig,
                    frame_index: None,
                    detail: Some(e.to_string().into()),
                }),
            },
        }
    }

    /// Check `c` merged onto the configuration in force, then make it the configuration (the
    /// old one stays on error). Returns the events of tracks it ended (tracking switched off).
    fn reconfigure(&mut self, c: Configure) -> Result<Vec<crate::analytics::Event>, SpecError> {
        let refuse = |field: &str, why: &str| Err(SpecError { field: field.into(), why: why.into() });
        let known = self.ctx.scheduler.detector().map(|d| d.classes).unwrap_or_default();
        let kind = c.pipeline.unwrap_or(self.kind);
        let track = c.track.unwrap_or(self.tracker.is_some());
        let mut o = (*self.options).clone();
        o.min_score = c.min_score.or(o.min_score);
        o.max_detections = c.max_detections.or(o.max_detections);
        o.ocr = c.ocr.unwrap_or(o.ocr);
        if let Some(classes) = c.classes {
            o.classes = match classes {
                None => None,
                Some(labels) => Some(
                    labels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            class_id(&known, l).ok_or_else(|| SpecError {
                                field: format!("classes[{i}]"),
                                why: format!("unknown label {l:?} for this detector"),
                            })
                        })
                        .collect::<Result<_, _>>()?,
                ),
            };
        }
        if o.ocr == OcrScope::Detections && kind != PipelineKind::DetectOcr {
            return refuse("ocr", "\"detections\" needs pipeline detect_ocr");
        }
        let current = self.analytics.spec();
        let spec = Spec {
            zones: c.zones.unwrap_or_else(|| current.zones.clone()),
            lines: c.lines.unwrap_or_else(|| current.lines.clone()),
            anchor: c.anchor.unwrap_or(current.anchor),
        };
        let field = if !spec.zones.is_empty() { "zones" } else { "lines" };
        if !(spec.zones.is_empty() && spec.lines.is_empty()) {
            if !track {
                return refuse(field, "zones and lines need tracking (\"track\": true)");
            }
            if !kind.detects() {
                return refuse(field, "zones and lines need detections (pipeline detect or detect_ocr)");
            }
        }
        spec.validate(|l| class_id(&known, l).is_some(), self.ctx.config.max_side)?;
        // Valid: apply.
        let mut events = Vec::new();
        if !track {
            if let Some(mut tracker) = self.tracker.take() {
                events = self.analytics.end(&ended(&tracker.end_all()));
            }
        } else if self.tracker.is_none() {
            self.tracker = Some(Tracker::new(self.ctx.config.tracking));
        }
        if spec != *self.analytics.spec() {
            self.analytics.reconfigure(spec);
        }
        self.kind = kind;
        self.state.set_pipeline(kind);
        self.options = Arc::new(o);
        self.tracker_sees_low_scores();
        Ok(events)
    }

    /// `end_of_stream`: end every live track, then answer with their events and the counts.
    fn end_of_stream(&mut self) -> Result<(), EndReason> {
        let gone = self.tracker.as_mut().map(|t| t.end_all()).unwrap_or_default();
        let events = self.analytics.end(&ended(&gone));
        let msg = ServerMessage::EndOfStream {
            frame_index: self.last_result,
            events: events.into_iter().map(Event::from).collect(),
            zones: zone_counts(&self.analytics),
            lines: line_counts(&self.analytics),
        };
        self.send(&msg)
    }

    /// The in-flight frame was answered: apply the control messages whose frames are all
    /// answered, then start the waiting frame, if any.
    pub(super) fn advance(&mut self) -> Result<(), EndReason> {
        while let Some(&(mark, _)) = self.pending.front() {
            if self.slot.waiting().is_some_and(|j| j.frame_index < mark) {
                break;
            }
            if let Some((_, control)) = self.pending.pop_front() {
                self.apply(control)?;
            }
        }
        match self.slot.finished() {
            Some(next) => self.submit(next),
            None => Ok(()),
        }
    }
}

/// The tracker's removed tracks as the analytics takes them.
pub(super) fn ended(tracks: &[EndedTrack]) -> Vec<Ended> {
    tracks.iter().map(|t| Ended { track_id: t.track_id, text: t.text.clone(), text_score: t.text_score }).collect()
}
