//! A session's control messages (`configure`, `end_of_stream`): taken in their turn among the
//! frames (a message waits until every frame received before it is answered), checked against
//! the configuration in force, applied, answered. Parsing is `protocol::control`'s; the
//! zones' and lines' rules are `analytics::Spec::validate`'s.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::slot::Entry;
use super::{EndReason, Ending, Session, MAX_PENDING_CONTROL};
use crate::analytics::{Event, Spec, SpecError};
use crate::policy::Reuse;
use crate::protocol::control::{self, Configure, Control, ControlError};
use crate::protocol::{close, ended, DetectorInfo, ErrorCode, ServerMessage};
use crate::vision::class_id;

impl<S: Read + Write + AsRawFd> Session<S> {
    /// A text message: a control message (rate-limited, then parsed, then applied in its turn
    /// among the frames), or protocol v1's `unsupported_message` and close 1003.
    pub(super) fn on_text(&mut self, text: &str) -> Result<(), EndReason> {
        if self.ending != Ending::Open {
            return Ok(());
        }
        let unsupported = |s: &mut Self| {
            s.ctx.metrics.control_message("unsupported");
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
            self.ctx.metrics.control_message("rate_limited");
            return self.send(&ServerMessage::Error { error: ErrorCode::RateLimited, frame_index: None, detail: None });
        }
        let control = match control::parse(text) {
            Ok(c) => c,
            Err(ControlError::NotControl) => return unsupported(self),
            Err(ControlError::Malformed(why)) => {
                self.ctx.metrics.control_message("invalid_message");
                return self.send(&error(ErrorCode::InvalidMessage, why));
            }
            Err(ControlError::Config(e)) => {
                self.ctx.metrics.control_message("invalid_config");
                return self.send(&error(ErrorCode::InvalidConfig, e.to_string()));
            }
        };
        if !self.slot.busy() {
            return self.apply(control);
        }
        if self.pending.len() >= MAX_PENDING_CONTROL {
            let why = format!("more than {MAX_PENDING_CONTROL} control messages wait for frames in flight");
            self.ctx.metrics.control_message("rate_limited");
            return self.send(&error(ErrorCode::RateLimited, why));
        }
        self.pending.push_back((self.state.frame_index.load(Ordering::Relaxed), control));
        Ok(())
    }

    /// Apply a control message whose turn has come.
    fn apply(&mut self, control: Control) -> Result<(), EndReason> {
        match control {
            Control::EndOfStream => {
                self.ctx.metrics.control_message("end_of_stream");
                self.end_of_stream()
            }
            Control::Configure(c) => match self.reconfigure(c) {
                Ok(events) => {
                    self.ctx.metrics.control_message("configured");
                    self.ctx.metrics.events(&events);
                    let _ = self.counts();
                    let detector = self.ctx.scheduler.detector().map(DetectorInfo::from);
                    let msg = ServerMessage::Configured {
                        pipeline: self.kind.as_str(),
                        config: self.echo_config(&detector),
                        events,
                    };
                    self.send(&msg)
                }
                Err(e) => {
                    self.ctx.metrics.control_message("invalid_config");
                    self.send(&ServerMessage::Error {
                        error: ErrorCode::InvalidConfig,
                        frame_index: None,
                        detail: Some(e.to_string().into()),
                    })
                }
            },
        }
    }

    /// Check `c` merged onto the configuration in force, then make it the configuration (the
    /// old one stays on error). Returns the events of tracks it ended (tracking switched off)
    /// and of tracks inside zones that changed or went.
    fn reconfigure(&mut self, c: Configure) -> Result<Vec<Event>, SpecError> {
        let refuse = |field: &str, why: &str| Err(SpecError { field: field.into(), why: why.into() });
        let labels = self.ctx.scheduler.detector().map(|d| d.classes).unwrap_or_default();
        let class_of = |l: &str| class_id(&labels, l);
        let settings = self.settings().apply(&c.options, || labels.clone())?;
        let current = self.analytics.spec();
        let spec = Spec {
            zones: c.zones.unwrap_or_else(|| current.zones.clone()),
            lines: c.lines.unwrap_or_else(|| current.lines.clone()),
            anchor: c.anchor.unwrap_or(current.anchor),
        };
        let field = if !spec.zones.is_empty() { "zones" } else { "lines" };
        if !(spec.zones.is_empty() && spec.lines.is_empty()) {
            if !settings.track {
                return refuse(field, "zones and lines need tracking (\"track\": true)");
            }
            if !settings.kind.detects() {
                return refuse(field, "zones and lines need detections (pipeline detect or detect_ocr)");
            }
        }
        spec.validate(|l| class_of(l).is_some(), self.ctx.config.max_side)?;
        // Valid: apply (tracks ended by tracking going off first, with the zones they were in).
        let mut events = self.set_settings(settings);
        if spec != *self.analytics.spec() {
            events.extend(self.analytics.reconfigure(spec, &class_of));
        }
        Ok(events)
    }

    /// `end_of_stream`: end every live track, then answer with their events and the counts.
    fn end_of_stream(&mut self) -> Result<(), EndReason> {
        let gone = self.tracker.as_mut().map(|t| t.end_all()).unwrap_or_default();
        // Their reading states go with them (ids are never reused: they would only pile up).
        self.reuse = Reuse::new(self.ctx.config.reuse);
        let events = self.analytics.end(&ended(&gone));
        self.ctx.metrics.events(&events);
        let _ = self.counts();
        let msg = ServerMessage::EndOfStream {
            frame_index: self.last_result,
            events,
            zones: self.analytics.zone_counts(),
            lines: self.analytics.line_counts(),
        };
        self.send(&msg)
    }

    /// The in-flight frame was answered: take the waiting frames in order, applying each
    /// control message once every frame received before it is answered: a predicted frame is
    /// answered at once, a frame for the models is submitted (and the rest wait for it).
    pub(super) fn advance(&mut self) -> Result<(), EndReason> {
        self.slot.finished();
        loop {
            while let Some(&(mark, _)) = self.pending.front() {
                if self.slot.first_waiting().is_some_and(|i| i < mark) {
                    break;
                }
                if let Some((_, control)) = self.pending.pop_front() {
                    self.apply(control)?;
                }
            }
            match self.slot.take_next() {
                Some(Entry { job: Some(job), .. }) => return self.submit(job),
                Some(Entry { mark, job: None }) => self.answer_predicted(mark)?,
                None => return Ok(()),
            }
        }
    }
}
