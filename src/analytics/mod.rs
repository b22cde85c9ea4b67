//! Zones, lines and track events (#18): what happened in front of the camera, computed from a
//! session's confirmed tracks frame by frame. A pure module in the manner of supervision's
//! `PolygonZone` / `LineZone`: no sockets, no models, no clock (the caller gives each frame's
//! index and arrival time); the session owns one [`Analytics`] and nothing here reaches vision.
//!
//! - A **zone** is a polygon in frame pixels. A track is *in* it when its anchor point
//!   ([`Anchor`]: the box's bottom centre by default, as Frigate does, or its centre) is inside
//!   the polygon; it counts as entered (exited) only after `inertia` observations in a row
//!   inside (outside), so a box that jitters on an edge is not counted twice. Dwell runs from
//!   the frame the entry counted to the frame the exit counted.
//! - A **line** is a segment. A track crosses it when its anchor goes from one side to the other
//!   *across the segment* (not its infinite extension) between two of its observations, however
//!   many frames apart (it was hidden, or frames were dropped): once per crossing. An anchor
//!   exactly on the line is on neither side and counts nothing. Direction: `in` when the anchor
//!   goes from the line's left to its right as seen in the image looking from its first point
//!   to its second (y grows downwards): for a line drawn left to right, moving down the image is
//!   `in`, moving up is `out`.
//! - **Events** of one frame come in this order: for each observed track by increasing id, its
//!   `track_started` (first observation), then its zone events in zone order, then its line
//!   crossings in line order; then `loitering`, zone by zone; then, for each track that ended, its
//!   `zone_exited` for every zone it was in (at its last observation) and its `track_ended`.
//!
//! - A **reconfiguration** keeps what did not change: a zone or line whose definition (and the
//!   anchor) is the same keeps every track's state in it (inside or not, inertia counts, dwell,
//!   visits, loitering told, the last side of a line) and a line its totals; a zone that changed
//!   or went gives each track counted inside it its `zone_exited` (at its last observation, with
//!   its dwell) before the new configuration applies; a changed line starts anew (totals and
//!   every track's side of it), as does every zone and line when the anchor changes.
//!
//! Cost: one frame is O(tracks × (zones × polygon points + lines)); with the bounds here (32
//! zones of at most 64 points, 32 lines) and 100 tracks that is ~2 × 10^5 point tests at worst.
//! A zone's or line's `classes` are resolved to class ids once, when it is configured
//! ([`ClassSet`]): each test of a track against them is one bit test, however many labels the
//! client named. Memory: one small state per live track, zone and line; a track's state goes
//! when it ends.
//!
//! The events, counts and configuration types serialise (serde) to their wire form, which
//! `docs/PROTOCOL.md` documents: the protocol sends them as they are.

pub mod geometry;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::classes::ClassSet;
use geometry::{inside, segments_cross, self_intersects, side, Point};

/// Zones a session may define.
pub const MAX_ZONES: usize = 32;
/// Lines a session may define.
pub const MAX_LINES: usize = 32;
/// Points of a zone's polygon, at most.
pub const MAX_POLYGON_POINTS: usize = 64;
/// Characters of a zone's or line's name, at most.
pub const MAX_NAME_CHARS: usize = 64;
/// A zone's `inertia` when not given: two observations in a row.
pub const DEFAULT_INERTIA: u32 = 2;
/// The largest `inertia` (observations in a row; more would never let a real object count).
pub const MAX_INERTIA: u32 = 1_000;
/// The largest `loiter_s`: a day.
pub const MAX_LOITER_S: f64 = 86_400.0;
/// Coordinates may lie outside the frame (a zone that runs off its edge) but not beyond this
/// many times the largest frame side allowed, either way.
pub const COORD_FACTOR: f64 = 4.0;

/// Which point of a track's box is tested against zones and lines (`bottom_center`, `center`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The middle of the box's bottom edge: where an object stands on the ground (default).
    #[default]
    BottomCenter,
    /// The box's centre.
    Center,
}

impl Anchor {
    /// The anchor point of `bbox` (`[x1, y1, x2, y2]`).
    pub fn of(self, bbox: [f32; 4]) -> Point {
        let [x1, y1, x2, y2] = bbox.map(f64::from);
        match self {
            Anchor::BottomCenter => [(x1 + x2) / 2.0, y2],
            Anchor::Center => [(x1 + x2) / 2.0, (y1 + y2) / 2.0],
        }
    }

    /// The name as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Anchor::BottomCenter => "bottom_center",
            Anchor::Center => "center",
        }
    }
}

/// A zone as configured (and as `session_started` / `configured` echo it, every default filled
/// in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneSpec {
    /// Unique among the zones, 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// 3 to [`MAX_POLYGON_POINTS`] points, not crossing itself, frame pixels.
    pub polygon: Vec<Point>,
    /// Only tracks of these labels; `None` (absent on the wire): every label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Observations in a row inside (outside) before an entry (exit) counts.
    pub inertia: u32,
    /// Dwell in seconds after which a `loitering` event is sent, once per visit (absent: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loiter_s: Option<f64>,
}

/// A counting line as configured (and echoed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineSpec {
    /// Unique among the lines, 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Its start and end, apart, frame pixels.
    pub points: [Point; 2],
    /// Only tracks of these labels; `None` (absent on the wire): every label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// A session's zones, lines and anchor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spec {
    /// At most [`MAX_ZONES`].
    pub zones: Vec<ZoneSpec>,
    /// At most [`MAX_LINES`].
    pub lines: Vec<LineSpec>,
    /// For every zone and line.
    pub anchor: Anchor,
}

/// Why a configuration was refused: the field (as the wire names it, e.g. `zones[1].polygon`)
/// and why, shown to the client as `"<field>: <why>"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct SpecError {
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

fn refuse<T>(field: String, why: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError { field, why: why.into() })
}

impl Spec {
    /// Check every bound and rule of the zones and lines: counts, names, points (finite, within
    /// ±[`COORD_FACTOR`] × `max_side`), polygons (3 to 64 points, not crossing themselves),
    /// lines (two distinct points), `classes` (labels the detector gives: `is_label`), `inertia`
    /// and `loiter_s`. The first problem found is the answer.
    pub fn validate(&self, is_label: impl Fn(&str) -> bool, max_side: u32) -> Result<(), SpecError> {
        let limit = COORD_FACTOR * f64::from(max_side);
        let point_ok = |p: &Point| p.iter().all(|c| c.is_finite() && c.abs() <= limit);
        let points_why = format!("coordinates must be finite and within ±{limit} px");
        if self.zones.len() > MAX_ZONES {
            return refuse("zones".into(), format!("at most {MAX_ZONES} zones"));
        }
        if self.lines.len() > MAX_LINES {
            return refuse("lines".into(), format!("at most {MAX_LINES} lines"));
        }
        let names = self.zones.iter().map(|z| (&z.name, "zones")).chain(self.lines.iter().map(|l| (&l.name, "lines")));
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for (i, (name, kind)) in names.enumerate() {
            let at = if kind == "zones" { i } else { i - self.zones.len() };
            let field = format!("{kind}[{at}].name");
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_NAME_CHARS {
                return refuse(field, format!("1 to {MAX_NAME_CHARS} characters"));
            }
            if name.chars().any(char::is_control) {
                return refuse(field, "no control characters");
            }
            if !seen.insert((kind, name.as_str())) {
                return refuse(field, format!("the name {name:?} is used twice"));
            }
        }
        let classes_ok = |classes: &Option<Vec<String>>, field: String| match classes {
            Some(c) if c.is_empty() => refuse(field, "an empty list matches nothing: leave it out for every label"),
            Some(c) => match c.iter().find(|l| !is_label(l)) {
                Some(l) => refuse(field, format!("unknown label {l:?}")),
                None => Ok(()),
            },
            None => Ok(()),
        };
        for (i, z) in self.zones.iter().enumerate() {
            let field = |f: &str| format!("zones[{i}].{f}");
            if z.polygon.len() < 3 || z.polygon.len() > MAX_POLYGON_POINTS {
                return refuse(field("polygon"), format!("3 to {MAX_POLYGON_POINTS} points"));
            }
            if !z.polygon.iter().all(point_ok) {
                return refuse(field("polygon"), points_why.clone());
            }
            if self_intersects(&z.polygon) {
                return refuse(field("polygon"), "the polygon crosses or touches itself");
            }
            if polygon_area2(&z.polygon) == 0.0 {
                return refuse(field("polygon"), "the polygon has no area");
            }
            if z.inertia == 0 || z.inertia > MAX_INERTIA {
                return refuse(field("inertia"), format!("1 to {MAX_INERTIA} frames"));
            }
            if let Some(s) = z.loiter_s {
                if !(s.is_finite() && s > 0.0 && s <= MAX_LOITER_S) {
                    return refuse(field("loiter_s"), format!("more than 0 and at most {MAX_LOITER_S} seconds"));
                }
            }
            classes_ok(&z.classes, field("classes"))?;
        }
        for (i, l) in self.lines.iter().enumerate() {
            let field = |f: &str| format!("lines[{i}].{f}");
            if !l.points.iter().all(point_ok) {
                return refuse(field("points"), points_why.clone());
            }
            if l.points[0] == l.points[1] {
                return refuse(field("points"), "the line has zero length");
            }
            classes_ok(&l.classes, field("classes"))?;
        }
        Ok(())
    }
}

/// Twice the polygon's area (shoelace), unsigned.
fn polygon_area2(p: &[Point]) -> f64 {
    let n = p.len();
    (0..n).map(|i| p[i][0] * p[(i + 1) % n][1] - p[(i + 1) % n][0] * p[i][1]).sum::<f64>().abs()
}

/// Which way a track crossed a line (see the module docs): `in` or `out` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the line's left to its right (for a line drawn left to right: downwards).
    In,
    /// From its right to its left.
    Out,
}

impl Direction {
    /// The name as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A confirmed track seen in this frame.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The tracker's id.
    pub track_id: u64,
    /// The track's class id (what zones' and lines' `classes` are tested against).
    pub class_id: usize,
    /// The track's label (its class's name).
    pub label: &'a str,
    /// Its box in this frame, frame pixels.
    pub bbox: [f32; 4],
}

/// A track the tracker removed (lost for too long, or ended by the client), with its final
/// reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The tracker's id.
    pub track_id: u64,
    /// Its consensus text, if it had any reading.
    pub text: Option<String>,
    /// That text's best recognition confidence.
    pub text_score: Option<f32>,
}

/// How long a track stayed in a zone (`dwell_frames`, `dwell_ms` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Dwell {
    /// Frame indices from the entry to the exit.
    #[serde(rename = "dwell_frames")]
    pub frames: u64,
    /// Milliseconds from the entry's frame arrival to the exit's (the server's monotonic clock).
    #[serde(rename = "dwell_ms")]
    pub ms: u64,
}

/// Named values, serialised as one JSON object whose keys keep the configuration's order:
/// `{"bay":{…},"door":{…}}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Named<T>(pub Vec<(String, T)>);

impl<T> Named<T> {
    /// Nothing named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// What a frame changed (see the module docs for the order), tagged by `type` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A confirmed track was seen for the first time.
    TrackStarted { track_id: u64, label: String, frame_index: u64 },
    /// A track counted as entered a zone.
    ZoneEntered { zone: String, track_id: u64, label: String, frame_index: u64 },
    /// A track counted as left a zone, or ended inside it, or the zone changed or went.
    ZoneExited {
        zone: String,
        track_id: u64,
        label: String,
        frame_index: u64,
        #[serde(flatten)]
        dwell: Dwell,
    },
    /// A track crossed a line.
    LineCrossed { line: String, direction: Direction, track_id: u64, label: String, frame_index: u64 },
    /// A track's dwell in a zone passed the zone's `loiter_s` (once a visit).
    Loitering { zone: String, track_id: u64, label: String, frame_index: u64, dwell_ms: u64 },
    /// A track ended: its life, its reading (absent without one), its total dwell per zone it
    /// was in and the last direction it crossed each line it crossed (both in configuration
    /// order).
    TrackEnded {
        track_id: u64,
        label: String,
        first_frame_index: u64,
        last_frame_index: u64,
        frames: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text_score: Option<f32>,
        zones: Named<Dwell>,
        lines: Named<Direction>,
    },
}

impl Event {
    /// Every `type` an event may have.
    pub const KINDS: [&'static str; 6] =
        ["track_started", "zone_entered", "zone_exited", "line_crossed", "loitering", "track_ended"];

    /// Its `type` on the wire.
    pub fn kind(&self) -> &'static str {
        let i = match self {
            Event::TrackStarted { .. } => 0,
            Event::ZoneEntered { .. } => 1,
            Event::ZoneExited { .. } => 2,
            Event::LineCrossed { .. } => 3,
            Event::Loitering { .. } => 4,
            Event::TrackEnded { .. } => 5,
        };
        Event::KINDS[i]
    }
}

/// Who is in a zone now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ZoneCount {
    /// Tracks counted inside.
    pub count: u64,
    /// The same by label (labels with nobody inside are absent).
    pub by_label: BTreeMap<String, u64>,
}

/// Crossings of a line since it was configured as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LineCount {
    /// Crossings `in` (from the line's left to its right, looking from its first point).
    #[serde(rename = "in")]
    pub r#in: u64,
    /// Crossings `out`.
    pub out: u64,
}

/// One track in one zone.
#[derive(Debug, Clone, Default)]
struct InZone {
    /// Counted inside.
    inside: bool,
    /// Observations in a row on the other side of `inside`.
    streak: u32,
    /// Frame index and arrival time of the counted entry.
    since: (u64, u64),
    /// `loitering` sent for this visit.
    loitered: bool,
    /// Over all visits.
    total: Dwell,
    visited: bool,
}

impl InZone {
    /// Leave the zone at this frame: the visit's dwell, added to the total.
    fn leave(&mut self, frame_index: u64, at_ms: u64) -> Dwell {
        self.inside = false;
        let dwell = Dwell { frames: frame_index.saturating_sub(self.since.0), ms: at_ms.saturating_sub(self.since.1) };
        self.total.frames += dwell.frames;
        self.total.ms += dwell.ms;
        dwell
    }
}

/// One track and one line.
#[derive(Debug, Clone, Default)]
struct AtLine {
    /// The last observed anchor that was off the line, and its side.
    last: Option<(Point, i8)>,
    /// The direction of its last crossing.
    crossed: Option<Direction>,
}

#[derive(Debug, Clone)]
struct TrackState {
    label: String,
    class_id: usize,
    first: u64,
    last: (u64, u64),
    frames: u64,
    zones: Vec<InZone>,
    lines: Vec<AtLine>,
}

/// A session's zones and lines and what its tracks did in them.
#[derive(Debug, Clone, Default)]
pub struct Analytics {
    spec: Spec,
    /// Each zone's `classes` as class ids (`None`: every class), in the spec's order.
    zone_classes: Vec<Option<ClassSet>>,
    /// Each line's, likewise.
    line_classes: Vec<Option<ClassSet>>,
    tracks: HashMap<u64, TrackState>,
    totals: Vec<LineCount>,
}

/// Whether a track of `class_id` counts for a zone or line restricted to `classes`.
fn allowed(classes: &Option<ClassSet>, class_id: usize) -> bool {
    classes.as_ref().is_none_or(|c| c.contains(class_id))
}

/// `classes` resolved to ids with `class_of` (labels it does not know match nothing).
fn resolve(classes: &Option<Vec<String>>, class_of: &dyn Fn(&str) -> Option<usize>) -> Option<ClassSet> {
    classes.as_ref().map(|c| c.iter().filter_map(|l| class_of(l)).collect())
}

impl Analytics {
    /// Analytics over `spec` (validated by the caller with [`Spec::validate`]), its labels
    /// resolved to class ids with `class_of`.
    pub fn new(spec: Spec, class_of: &dyn Fn(&str) -> Option<usize>) -> Analytics {
        let mut a = Analytics::default();
        a.reconfigure(spec, class_of);
        a
    }

    /// The configuration in force.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Take a new configuration from the next frame on (see the module docs: what did not
    /// change is kept). Tracks keep their life (start, frames, reading). Returns the
    /// `zone_exited` of every track counted inside a zone that changed or went, track by
    /// increasing id, zone by zone in the old configuration's order.
    pub fn reconfigure(&mut self, spec: Spec, class_of: &dyn Fn(&str) -> Option<usize>) -> Vec<Event> {
        let same_anchor = spec.anchor == self.spec.anchor;
        // Where each new zone and line was in the old configuration, if it is unchanged.
        let was = |old: &[ZoneSpec], z: &ZoneSpec| old.iter().position(|o| o == z).filter(|_| same_anchor);
        let zone_from: Vec<Option<usize>> = spec.zones.iter().map(|z| was(&self.spec.zones, z)).collect();
        let line_from: Vec<Option<usize>> =
            spec.lines.iter().map(|l| self.spec.lines.iter().position(|o| o == l).filter(|_| same_anchor)).collect();
        let mut events = Vec::new();
        let mut ids: Vec<u64> = self.tracks.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(t) = self.tracks.get_mut(&id) else { continue };
            let (last, last_ms) = t.last;
            for (i, (z, st)) in self.spec.zones.iter().zip(&mut t.zones).enumerate() {
                if st.inside && !zone_from.contains(&Some(i)) {
                    let dwell = st.leave(last, last_ms);
                    let (zone, label) = (z.name.clone(), t.label.clone());
                    events.push(Event::ZoneExited { zone, track_id: id, label, frame_index: last, dwell });
                }
            }
            t.zones = zone_from.iter().map(|f| f.map_or_else(InZone::default, |i| t.zones[i].clone())).collect();
            t.lines = line_from.iter().map(|f| f.map_or_else(AtLine::default, |i| t.lines[i].clone())).collect();
        }
        self.totals = line_from.iter().map(|f| f.map_or_else(LineCount::default, |i| self.totals[i])).collect();
        self.zone_classes = spec.zones.iter().map(|z| resolve(&z.classes, class_of)).collect();
        self.line_classes = spec.lines.iter().map(|l| resolve(&l.classes, class_of)).collect();
        self.spec = spec;
        events
    }

    /// One processed frame (`frame_index`, arrived `at_ms` on the session's monotonic clock):
    /// the confirmed tracks seen in it and the tracks that ended with it. Returns the frame's
    /// events in order.
    pub fn frame(&mut self, frame_index: u64, at_ms: u64, observed: &[Observation<'_>], ended: &[Ended]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut seen: Vec<&Observation<'_>> = observed.iter().collect();
        seen.sort_by_key(|o| o.track_id);
        seen.dedup_by_key(|o| o.track_id);
        for o in seen {
            self.observe(o, frame_index, at_ms, &mut events);
        }
        self.loiter(frame_index, at_ms, &mut events);
        events.extend(self.end(ended));
        events
    }

    fn observe(&mut self, o: &Observation<'_>, frame_index: u64, at_ms: u64, events: &mut Vec<Event>) {
        let (nz, nl) = (self.spec.zones.len(), self.spec.lines.len());
        let t = self.tracks.entry(o.track_id).or_insert_with(|| {
            events.push(Event::TrackStarted { track_id: o.track_id, label: o.label.to_owned(), frame_index });
            TrackState {
                label: o.label.to_owned(),
                class_id: o.class_id,
                first: frame_index,
                last: (frame_index, at_ms),
                frames: 0,
                zones: vec![InZone::default(); nz],
                lines: vec![AtLine::default(); nl],
            }
        });
        t.last = (frame_index, at_ms);
        t.frames += 1;
        let p = self.spec.anchor.of(o.bbox);
        if !p.iter().all(|c| c.is_finite()) {
            return;
        }
        let label = &t.label;
        for ((z, st), classes) in self.spec.zones.iter().zip(&mut t.zones).zip(&self.zone_classes) {
            if !allowed(classes, t.class_id) {
                continue;
            }
            if inside(&z.polygon, p) == st.inside {
                st.streak = 0;
                continue;
            }
            st.streak += 1;
            if st.streak < z.inertia {
                continue;
            }
            st.streak = 0;
            st.inside = !st.inside;
            let (zone, track_id, label) = (z.name.clone(), o.track_id, label.clone());
            if st.inside {
                st.since = (frame_index, at_ms);
                st.loitered = false;
                st.visited = true;
                events.push(Event::ZoneEntered { zone, track_id, label, frame_index });
            } else {
                let dwell = st.leave(frame_index, at_ms);
                events.push(Event::ZoneExited { zone, track_id, label, frame_index, dwell });
            }
        }
        let lines = self.spec.lines.iter().zip(&mut t.lines).zip(&mut self.totals).zip(&self.line_classes);
        for (((l, st), total), classes) in lines {
            if !allowed(classes, t.class_id) {
                continue;
            }
            let [a, b] = l.points;
            let s = side(a, b, p);
            if s == 0 {
                continue;
            }
            if let Some((q, was)) = st.last {
                if was != s && segments_cross(a, b, q, p) {
                    let direction = if s > 0 { Direction::In } else { Direction::Out };
                    match direction {
                        Direction::In => total.r#in += 1,
                        Direction::Out => total.out += 1,
                    }
                    st.crossed = Some(direction);
                    let (line, track_id, label) = (l.name.clone(), o.track_id, label.clone());
                    events.push(Event::LineCrossed { line, direction, track_id, label, frame_index });
                }
            }
            st.last = Some((p, s));
        }
    }

    fn loiter(&mut self, frame_index: u64, at_ms: u64, events: &mut Vec<Event>) {
        for (zi, z) in self.spec.zones.iter().enumerate() {
            let Some(limit) = z.loiter_s else { continue };
            let limit_ms = (limit * 1000.0).ceil() as u64;
            let mut due: Vec<(u64, u64, &str)> = Vec::new();
            for (&id, t) in &mut self.tracks {
                let st = &mut t.zones[zi];
                let dwell_ms = at_ms.saturating_sub(st.since.1);
                if st.inside && !st.loitered && dwell_ms >= limit_ms {
                    st.loitered = true;
                    due.push((id, dwell_ms, &t.label));
                }
            }
            due.sort_by_key(|d| d.0);
            for (track_id, dwell_ms, label) in due {
                let (zone, label) = (z.name.clone(), label.to_owned());
                events.push(Event::Loitering { zone, track_id, label, frame_index, dwell_ms });
            }
        }
    }

    /// End these tracks (the tracker removed them, or the stream ended): each one's
    /// `zone_exited` for every zone it is in (at its last observation), then its `track_ended`.
    /// Unknown ids (a track never observed) are skipped.
    pub fn end(&mut self, ended: &[Ended]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut ended: Vec<&Ended> = ended.iter().collect();
        ended.sort_by_key(|e| e.track_id);
        for e in ended {
            let Some(mut t) = self.tracks.remove(&e.track_id) else { continue };
            let (last, last_ms) = t.last;
            for (z, st) in self.spec.zones.iter().zip(&mut t.zones) {
                if st.inside {
                    let dwell = st.leave(last, last_ms);
                    let (zone, track_id, label) = (z.name.clone(), e.track_id, t.label.clone());
                    events.push(Event::ZoneExited { zone, track_id, label, frame_index: last, dwell });
                }
            }
            let zones = self.spec.zones.iter().zip(&t.zones).filter(|(_, s)| s.visited);
            let lines = self.spec.lines.iter().zip(&t.lines);
            events.push(Event::TrackEnded {
                track_id: e.track_id,
                first_frame_index: t.first,
                last_frame_index: last,
                frames: t.frames,
                text: e.text.clone(),
                text_score: e.text_score,
                zones: Named(zones.map(|(z, s)| (z.name.clone(), s.total)).collect()),
                lines: Named(lines.filter_map(|(l, s)| Some((l.name.clone(), s.crossed?))).collect()),
                label: t.label,
            });
        }
        events
    }

    /// Who is in each zone now (configuration order).
    pub fn zone_counts(&self) -> Named<ZoneCount> {
        let mut out: Vec<(String, ZoneCount)> =
            self.spec.zones.iter().map(|z| (z.name.clone(), ZoneCount::default())).collect();
        for t in self.tracks.values() {
            for ((_, c), st) in out.iter_mut().zip(&t.zones) {
                if st.inside {
                    c.count += 1;
                    *c.by_label.entry(t.label.clone()).or_default() += 1;
                }
            }
        }
        Named(out)
    }

    /// Each line's crossings since it was configured as it is (configuration order).
    pub fn line_counts(&self) -> Named<LineCount> {
        Named(self.spec.lines.iter().map(|l| l.name.clone()).zip(self.totals.iter().copied()).collect())
    }

    /// Live tracks known here.
    pub fn tracks(&self) -> usize {
        self.tracks.len()
    }
}
