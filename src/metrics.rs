//! Server-wide counters and latency histograms, exposed at `GET /metrics` in the Prometheus /
//! OpenMetrics text format through `prometheus-client` (not hand-formatted).
//!
//! Every name starts with `framewire_`. Sessions, the pool and the HTTP front record into one
//! shared [`Metrics`]; the gauges that mirror live state (open sessions, pool queue depth) are
//! read at scrape time, so nothing has to keep them in step. Plain counters are atomic adds;
//! a labelled series (reason, stage) takes a shared read lock for the lookup, never a write
//! lock once the series exists.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::protocol::{Event, Timings};
use crate::vision::jpeg::FrameError;

/// The `reason` label of `framewire_frames_invalid_total`: a `FrameError` code, or `not_h264`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `not_jpeg`, `truncated`, `corrupt`, `too_large`, `too_many_pixels` or `unsupported`.
    pub reason: &'static str,
}

/// The `stage` label of `framewire_stage_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// `queue`, `decode`, `detect`, `ocr_detect`, `ocr_recognize`, `predict` or `total` (as in
    /// `timings_ms`).
    pub stage: &'static str,
}

/// The `status` label of `framewire_http_responses_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// HTTP status code sent instead of (or before) an upgrade.
    pub status: String,
}

/// The `type` label of `framewire_events_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// `track_started`, `zone_entered`, `zone_exited`, `line_crossed`, `loitering` or
    /// `track_ended`.
    pub r#type: &'static str,
}

/// The `outcome` label of `framewire_control_messages_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// One of [`CONTROL_OUTCOMES`].
    pub outcome: &'static str,
}

/// What a text message from a client came to: `configured` and `end_of_stream` (applied),
/// `invalid_config`, `invalid_message`, `rate_limited` (refused, the session goes on) and
/// `unsupported` (not a control message: close 1003).
pub const CONTROL_OUTCOMES: [&str; 6] =
    ["configured", "end_of_stream", "invalid_config", "invalid_message", "rate_limited", "unsupported"];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Stage latency buckets: 1 ms to ~4 s, doubling.
fn stage_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    sessions_open: Gauge,
    sessions_total: Counter,
    frames_received: Counter,
    frames_processed: Counter,
    frames_dropped: Counter,
    frames_predicted: Counter,
    frames_not_decoded: Counter,
    frames_invalid: Family<ReasonLabel, Counter>,
    results_sent: Counter,
    inference_errors: Counter,
    pool_queue_depth: Gauge,
    plan_builds: Counter,
    stage_seconds: HistogramFamily<StageLabel>,
    http_responses: Family<StatusLabel, Counter>,
    events: Family<EventLabel, Counter>,
    control_messages: Family<OutcomeLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Every invalid-frame reason, pre-created so each series exists (at 0) from the start.
const REASONS: [FrameError; 6] = [
    FrameError::NotJpeg,
    FrameError::Truncated,
    FrameError::Corrupt,
    FrameError::TooLarge,
    FrameError::TooManyPixels,
    FrameError::Unsupported,
];

impl Metrics {
    /// A fresh set, registered under the `framewire` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("framewire");
        let m = Metrics {
            registry: Registry::default(),
            sessions_open: Gauge::default(),
            sessions_total: Counter::default(),
            frames_received: Counter::default(),
            frames_processed: Counter::default(),
            frames_dropped: Counter::default(),
            frames_predicted: Counter::default(),
            frames_not_decoded: Counter::default(),
            frames_invalid: Family::default(),
            results_sent: Counter::default(),
            inference_errors: Counter::default(),
            pool_queue_depth: Gauge::default(),
            plan_builds: Counter::default(),
            stage_seconds: Family::new_with_constructor(stage_histogram),
            http_responses: Family::default(),
            events: Family::default(),
            control_messages: Family::default(),
        };
        for e in REASONS {
            let _ = m.frames_invalid.get_or_create(&ReasonLabel { reason: e.code() });
        }
        // An H.264 session's own code (the others are the JPEG ones).
        let _ = m.frames_invalid.get_or_create(&ReasonLabel { reason: "not_h264" });
        for r#type in Event::KINDS {
            let _ = m.events.get_or_create(&EventLabel { r#type });
        }
        for outcome in CONTROL_OUTCOMES {
            let _ = m.control_messages.get_or_create(&OutcomeLabel { outcome });
        }
        // Names are prefixed `framewire_`; counters get `_total`.
        let counters = [
            ("sessions", "WebSocket sessions started since start-up", &m.sessions_total),
            ("frames_received", "Binary messages (frames) received", &m.frames_received),
            ("frames_processed", "Frames the pipeline finished (a result or an internal error)", &m.frames_processed),
            ("frames_dropped", "Frames replaced by a newer one before they ran (latest frame wins)", &m.frames_dropped),
            (
                "frames_predicted",
                "Frames answered from the tracker's prediction, without a model (detect_every)",
                &m.frames_predicted,
            ),
            (
                "frames_not_decoded",
                "H.264 access units answered keyframe_request (no keyframe to decode from yet) or frame_skipped (no picture)",
                &m.frames_not_decoded,
            ),
            ("results_sent", "Result messages sent", &m.results_sent),
            (
                "inference_errors",
                "Frames answered with an `internal` error (a stage failed or panicked)",
                &m.inference_errors,
            ),
        ];
        for (name, help, c) in counters {
            registry.register(name, help, c.clone());
        }
        let plans = "Engine plans built since start-up (tract: one per model input shape)";
        registry.register("plan_builds", plans, m.plan_builds.clone());
        let gauges = [
            ("sessions_open", "WebSocket sessions open now", &m.sessions_open),
            ("pool_queue_depth", "Frames handed to the scheduler and not yet started", &m.pool_queue_depth),
        ];
        for (name, help, g) in gauges {
            registry.register(name, help, g.clone());
        }
        registry.register("frames_invalid", "Frames refused, by reason code", m.frames_invalid.clone());
        let stages = "Per-frame time of each pipeline stage, as in the result's timings_ms";
        registry.register("stage_seconds", stages, m.stage_seconds.clone());
        let http = "Plain HTTP answers (health, metrics, refusals before an upgrade), by status";
        registry.register("http_responses", http, m.http_responses.clone());
        registry.register(
            "events",
            "Track events sent (in results, configured and end_of_stream), by type",
            m.events.clone(),
        );
        let control = "Text messages from clients, by what they came to (see CONTROL_OUTCOMES)";
        registry.register("control_messages", control, m.control_messages.clone());
        Metrics { registry, ..m }
    }

    /// A session was admitted and upgraded.
    pub fn session_started(&self) {
        self.sessions_total.inc();
    }

    /// A binary message arrived.
    pub fn frame_received(&self) {
        self.frames_received.inc();
    }

    /// A waiting frame was replaced (or abandoned at close) before it ran.
    pub fn frame_dropped(&self) {
        self.frames_dropped.inc();
    }

    /// An H.264 access unit had nothing to decode yet (`keyframe_request`) or no picture
    /// (`frame_skipped`).
    pub fn frame_not_decoded(&self) {
        self.frames_not_decoded.inc();
    }

    /// A frame was refused.
    pub fn frame_invalid(&self, reason: &'static str) {
        self.frames_invalid.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A frame was answered with a result: by the pipeline, or from the tracker's prediction
    /// (`t.predict` set); `t` are its timings in ms.
    pub fn frame_done(&self, t: &Timings) {
        if t.predict.is_some() {
            self.frames_predicted.inc();
        } else {
            self.frames_processed.inc();
        }
        self.results_sent.inc();
        let stages = [
            ("queue", Some(t.queue)),
            ("decode", t.decode),
            ("predict", t.predict),
            ("detect", t.detect),
            ("ocr_detect", t.ocr_detect),
            ("ocr_recognize", t.ocr_recognize),
            ("total", Some(t.total)),
        ];
        for (stage, ms) in stages {
            if let Some(ms) = ms {
                self.stage_seconds.get_or_create(&StageLabel { stage }).observe(ms / 1000.0);
            }
        }
    }

    /// The pipeline failed on a frame (`internal`).
    pub fn inference_error(&self) {
        self.frames_processed.inc();
        self.inference_errors.inc();
    }

    /// Events went out.
    pub fn events(&self, events: &[Event]) {
        for e in events {
            self.events.get_or_create(&EventLabel { r#type: e.kind() }).inc();
        }
    }

    /// A text message came to `outcome` (one of [`CONTROL_OUTCOMES`]).
    pub fn control_message(&self, outcome: &'static str) {
        self.control_messages.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A plain HTTP response went out.
    pub fn http_response(&self, status: u16) {
        self.http_responses.get_or_create(&StatusLabel { status: status.to_string() }).inc();
    }

    /// The exposition text, with the live gauges set first.
    pub fn render(&self, sessions_open: usize, pool_queue_depth: usize, plan_builds: u64) -> String {
        // A counter: only ever moves up to the models' own count.
        let counted = self.plan_builds.get();
        if plan_builds > counted {
            self.plan_builds.inc_by(plan_builds - counted);
        }
        self.sessions_open.set(i64::try_from(sessions_open).unwrap_or(i64::MAX));
        self.pool_queue_depth.set(i64::try_from(pool_queue_depth).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_the_prefix() {
        let m = Metrics::new();
        m.session_started();
        m.frame_received();
        m.frame_invalid(FrameError::Corrupt.code());
        m.frame_done(&Timings { queue: 1.0, decode: Some(2.0), detect: Some(40.0), total: 45.0, ..Timings::default() });
        m.events(&[Event::TrackStarted { track_id: 1, label: "car".into(), frame_index: 0 }]);
        m.control_message("configured");
        let text = m.render(3, 1, 2);
        for line in [
            "framewire_sessions_open 3",
            "framewire_sessions_total 1",
            "framewire_frames_received_total 1",
            "framewire_frames_processed_total 1",
            "framewire_results_sent_total 1",
            "framewire_frames_invalid_total{reason=\"corrupt\"} 1",
            "framewire_frames_invalid_total{reason=\"not_jpeg\"} 0",
            "framewire_pool_queue_depth 1",
            "framewire_stage_seconds_count{stage=\"detect\"} 1",
            "framewire_events_total{type=\"track_started\"} 1",
            "framewire_events_total{type=\"line_crossed\"} 0",
            "framewire_control_messages_total{outcome=\"configured\"} 1",
            "framewire_control_messages_total{outcome=\"rate_limited\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("stage=\"ocr_detect\""), "a stage that never ran has no series");
        assert!(text.ends_with("# EOF\n"));
    }
}
