//! The wire form of a session's analytics ([`crate::analytics`]): zones and lines as
//! `session_started` and `configured` echo them, the counts in results and `end_of_stream`,
//! and the events. Names keep the configuration's order on the wire ([`Named`]); the one
//! rounding here is `text_score`'s, to 4 decimals like every score.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::round4;
use crate::analytics;

/// A zone as configured, every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneEcho {
    /// Its name.
    pub name: String,
    /// Its polygon, frame pixels.
    pub polygon: Vec<[f64; 2]>,
    /// The labels it counts (absent: every label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Observations in a row before an entry or exit counts.
    pub inertia: u32,
    /// Dwell in seconds after which `loitering` is sent (absent: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loiter_s: Option<f64>,
}

/// A line as configured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineEcho {
    /// Its name.
    pub name: String,
    /// Its start and end, frame pixels.
    pub points: [[f64; 2]; 2],
    /// The labels it counts (absent: every label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// Zone and line configuration for the wire.
pub fn echo_spec(spec: &analytics::Spec) -> (Vec<ZoneEcho>, Vec<LineEcho>, &'static str) {
    let zones = spec
        .zones
        .iter()
        .map(|z| ZoneEcho {
            name: z.name.clone(),
            polygon: z.polygon.clone(),
            classes: z.classes.clone(),
            inertia: z.inertia,
            loiter_s: z.loiter_s,
        })
        .collect();
    let lines = spec
        .lines
        .iter()
        .map(|l| LineEcho { name: l.name.clone(), points: l.points, classes: l.classes.clone() })
        .collect();
    (zones, lines, spec.anchor.as_str())
}

/// Named values serialised as one JSON object whose keys keep the configuration's order:
/// `{"bay":{…},"door":{…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Named<T>(pub Vec<(String, T)>);

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Who is in a zone now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneCount {
    /// Tracks counted inside.
    pub count: u64,
    /// The same by label (labels with nobody inside are absent).
    pub by_label: BTreeMap<String, u64>,
}

/// A line's crossings since the session began.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LineCount {
    /// Crossings `in` (from the line's left to its right, looking from its first point).
    #[serde(rename = "in")]
    pub r#in: u64,
    /// Crossings `out`.
    pub out: u64,
}

/// How long a track stayed in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DwellTime {
    /// Frame indices from the counted entry to the counted exit.
    pub dwell_frames: u64,
    /// Milliseconds between those frames' arrivals (the server's monotonic clock).
    pub dwell_ms: u64,
}

/// What a frame changed, tagged by `type` (see `docs/PROTOCOL.md`, Events).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A track was confirmed (its first frame with an id).
    TrackStarted {
        /// The track.
        track_id: u64,
        /// Its label.
        label: String,
        /// The frame.
        frame_index: u64,
    },
    /// A track counted as entered a zone (after the zone's `inertia`).
    ZoneEntered {
        /// The zone.
        zone: String,
        /// The track.
        track_id: u64,
        /// Its label.
        label: String,
        /// The frame the entry counted.
        frame_index: u64,
    },
    /// A track counted as left a zone, or ended inside it.
    ZoneExited {
        /// The zone.
        zone: String,
        /// The track.
        track_id: u64,
        /// Its label.
        label: String,
        /// The frame the exit counted (for an ended track: its last observation).
        frame_index: u64,
        /// This visit's dwell.
        #[serde(flatten)]
        dwell: DwellTime,
    },
    /// A track crossed a line.
    LineCrossed {
        /// The line.
        line: String,
        /// `in` or `out`.
        direction: &'static str,
        /// The track.
        track_id: u64,
        /// Its label.
        label: String,
        /// The frame it was seen on the other side.
        frame_index: u64,
    },
    /// A track's dwell in a zone passed the zone's `loiter_s` (once a visit).
    Loitering {
        /// The zone.
        zone: String,
        /// The track.
        track_id: u64,
        /// Its label.
        label: String,
        /// The frame.
        frame_index: u64,
        /// Its dwell so far, ms.
        dwell_ms: u64,
    },
    /// A track was removed (lost longer than `--track-buffer`, or ended by `end_of_stream`).
    TrackEnded {
        /// The track.
        track_id: u64,
        /// Its label.
        label: String,
        /// Its first frame with an id.
        first_frame_index: u64,
        /// The last frame it was seen in.
        last_frame_index: u64,
        /// Frames it was seen in.
        frames: u64,
        /// Its final reading (`track_text`); absent without one.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// That reading's best confidence, 4 decimals; absent without one.
        #[serde(skip_serializing_if = "Option::is_none")]
        text_score: Option<f32>,
        /// Its total dwell in each zone it entered.
        zones: Named<DwellTime>,
        /// The direction of its last crossing of each line it crossed.
        lines: Named<&'static str>,
    },
}

impl From<analytics::Dwell> for DwellTime {
    fn from(d: analytics::Dwell) -> DwellTime {
        DwellTime { dwell_frames: d.frames, dwell_ms: d.ms }
    }
}

impl From<analytics::Event> for Event {
    fn from(e: analytics::Event) -> Event {
        use analytics::Event as A;
        match e {
            A::TrackStarted { track_id, label, frame_index } => Event::TrackStarted { track_id, label, frame_index },
            A::ZoneEntered { zone, track_id, label, frame_index } => {
                Event::ZoneEntered { zone, track_id, label, frame_index }
            }
            A::ZoneExited { zone, track_id, label, frame_index, dwell } => {
                Event::ZoneExited { zone, track_id, label, frame_index, dwell: dwell.into() }
            }
            A::LineCrossed { line, direction, track_id, label, frame_index } => {
                Event::LineCrossed { line, direction: direction.as_str(), track_id, label, frame_index }
            }
            A::Loitering { zone, track_id, label, frame_index, dwell_ms } => {
                Event::Loitering { zone, track_id, label, frame_index, dwell_ms }
            }
            A::TrackEnded {
                track_id,
                label,
                first_frame_index,
                last_frame_index,
                frames,
                text,
                text_score,
                zones,
                lines,
            } => Event::TrackEnded {
                track_id,
                label,
                first_frame_index,
                last_frame_index,
                frames,
                text,
                text_score: text_score.map(round4),
                zones: Named(zones.into_iter().map(|(n, d)| (n, d.into())).collect()),
                lines: Named(lines.into_iter().map(|(n, d)| (n, d.as_str())).collect()),
            },
        }
    }
}

/// The wire's zone counts of `a`.
pub fn zone_counts(a: &analytics::Analytics) -> Named<ZoneCount> {
    Named(
        a.zone_counts()
            .into_iter()
            .map(|(n, c)| (n.to_owned(), ZoneCount { count: c.count, by_label: c.by_label }))
            .collect(),
    )
}

/// The wire's line counts of `a`.
pub fn line_counts(a: &analytics::Analytics) -> Named<LineCount> {
    Named(a.line_counts().into_iter().map(|(n, c)| (n.to_owned(), LineCount { r#in: c.r#in, out: c.out })).collect())
}
