//! Work once in a session (#27): the per-frame hint that lets vision skip the crops of settled
//! tracks (`ocr_reuse`), and the answer to a frame the detector skips (`detect_every`), built on
//! the session's own thread from the tracker's prediction; and sending a result, which detected
//! and predicted frames share. The policy itself (which frames, which tracks) is
//! [`crate::policy`]'s; the order of frames is the slot's.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::slot::Mark;
use super::{EndReason, Session};
use crate::analytics::Observation;
use crate::protocol::{FrameResult, ServerMessage, Timings};
use crate::scheduler::{Frame, Job};
use crate::vision::{Analysis, Detection, FrameOptions, OcrScope, PipelineKind};

impl<S: Read + Write + AsRawFd> Session<S> {
    /// Whether the next frame asks for the detector (`detect_every`; every frame without a
    /// tracker). Call once per frame.
    pub(super) fn detects(&mut self) -> bool {
        self.tracker.is_none() || self.cadence.detects()
    }

    /// Frame `index`'s job (the settings it runs with are set when it is submitted).
    pub(super) fn job(&self, index: u64, frame: Frame) -> Job {
        Job { frame_index: index, frame, kind: self.kind, received: self.last_rx, options: Arc::clone(&self.options) }
    }

    /// The per-frame options of a frame that arrived at `received`: the session's, and with
    /// `ocr_reuse` the boxes where its settled tracks will be (their crops are not read).
    pub(super) fn frame_options(&self, received: Instant) -> Arc<FrameOptions> {
        let reuses = self.ocr_reuse && self.kind == PipelineKind::DetectOcr && self.options.ocr == OcrScope::Detections;
        if let (true, Some(tracker)) = (reuses, &self.tracker) {
            let settled = self.reuse.not_to_read(&tracker.peek(), self.at_ms(received));
            if !settled.is_empty() {
                return Arc::new(FrameOptions { settled, ..(*self.options).clone() });
            }
        }
        Arc::clone(&self.options)
    }

    /// `t` in the session clock, ms (events' and readings' times).
    pub(super) fn at_ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Answer a frame the detector skips from the tracker's prediction: every tracked track's
    /// box moved one step along its motion model (clipped to the frame; those above
    /// `min_score`, up to `max_detections`, are shown, `"predicted": true`), the zones, lines
    /// and events run on them as on a detected frame. No decode, no model: microseconds on the
    /// session's thread. Without a tracker (a `configure` turned it off while the frame waited)
    /// there is nothing to predict from: the frame is dropped.
    pub(super) fn answer_predicted(&mut self, mark: Mark) -> Result<(), EndReason> {
        let started = Instant::now();
        let at_ms = self.at_ms(mark.received);
        let Some(tracker) = self.tracker.as_mut() else { return self.drop_frame(mark.index) };
        let (w, h) = (mark.size.0 as f32, mark.size.1 as f32);
        let clip = |b: [f32; 4]| {
            let c = [b[0].clamp(0.0, w), b[1].clamp(0.0, h), b[2].clamp(0.0, w), b[3].clamp(0.0, h)];
            (c[2] > c[0] && c[3] > c[1]).then_some(c)
        };
        let mut moved: Vec<(u64, Detection)> = tracker
            .predict()
            .into_iter()
            .filter_map(|p| {
                let label = self.labels.get(p.class_id).cloned().unwrap_or_else(|| format!("class_{}", p.class_id));
                Some((p.track_id, Detection { label, class_id: p.class_id, score: p.score, bbox: clip(p.bbox)? }))
            })
            .collect();
        moved.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        let seen: Vec<Observation<'_>> = moved
            .iter()
            .map(|(id, d)| Observation { track_id: *id, class_id: d.class_id, label: &d.label, bbox: d.bbox })
            .collect();
        let events = self.analytics.frame(mark.index, at_ms, &seen, &[]);
        drop(seen);
        let min_score = self.options.min_score.unwrap_or(self.ctx.config.min_score);
        moved.retain(|(_, d)| d.score > min_score);
        moved.truncate(self.options.max_detections.unwrap_or(usize::MAX));
        let (ids, detections): (Vec<u64>, Vec<Detection>) = moved.into_iter().unzip();
        let analysis = Analysis {
            width: mark.size.0,
            height: mark.size.1,
            detections: Some(detections),
            texts: self.kind.reads_text().then(Vec::new),
            low_detections: None,
            read: None,
        };
        let mut result = FrameResult::from(analysis);
        let reads_inside = self.options.ocr == OcrScope::Detections;
        for (d, id) in result.detections.iter_mut().flatten().zip(ids) {
            d.set_track(Some(id), tracker.best_reading_scored(id));
            d.text_read = reads_inside.then_some(false);
            d.predicted = true;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let now = Instant::now();
        let timings = Timings {
            queue: ms(started.saturating_duration_since(mark.received)),
            decode: mark.decode_us.map(|us| f64::from(us) / 1000.0),
            predict: Some(ms(now.duration_since(started))),
            total: ms(now.saturating_duration_since(mark.received)),
            ..Timings::default()
        };
        self.send_result(mark.index, result, timings, events)
    }

    /// Send frame `index`'s result (a detected frame's, from `finish`, or a predicted one's).
    pub(super) fn send_result(
        &mut self,
        index: u64,
        result: FrameResult,
        timings: Timings,
        events: Vec<crate::analytics::Event>,
    ) -> Result<(), EndReason> {
        self.window.result(Instant::now());
        self.ctx.metrics.frame_done(&timings);
        self.ctx.metrics.events(&events);
        let (zones, lines) = self.counts();
        let msg = ServerMessage::Result {
            frame_index: index,
            result,
            dropped_frames: self.state.dropped_frames.load(Ordering::Relaxed),
            timings_ms: timings,
            events,
            zones,
            lines,
        };
        self.last_result = Some(index);
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.state.last_processed_ms.store(unix_ms.max(1), Ordering::Relaxed);
        self.results_sent += 1;
        self.send(&msg)
    }
}
