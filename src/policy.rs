//! Work once (#27): which of a session's frames go to the models and which objects' text is
//! read again. Session state beside the tracker (the session owns a [`Cadence`] and a [`Reuse`]
//! next to its `Tracker`), as pure types: no socket, no clock of its own (times are the frames'
//! arrivals in the session clock, in ms), so every rule is unit-tested here. It sits above
//! vision and under the protocol (which parses its options), the configuration (which fills
//! [`ReuseConfig`]) and the session. Vision stays per frame and knows nothing of this: it is
//! handed the boxes of objects not to read ([`crate::vision::Settled`]), and the session
//! answers the frames that need no model itself, from the tracker's motion model.
//!
//! - [`Cadence`] (`detect_every`): with `N`, the detector runs on every Nth frame the session
//!   takes, the tracker predicts the frames between; with `auto`, every frame asks for the
//!   detector and the latest-frame-wins slot (`session::slot`) turns the frames that came
//!   while the detector was busy into predicted ones instead of dropping them.
//! - [`Reuse`] (`ocr_reuse`, with tracking and `ocr=detections`): a track's crop is read on
//!   every frame until its reading has settled ([`ReuseConfig::settle`] agreeing readings in a
//!   row), then not again until its box has grown by [`ReuseConfig::growth`] since its last
//!   reading (it came closer: a better reading is possible) or [`ReuseConfig::reread_after_ms`]
//!   has passed. A reading that disagrees unsettles the track (read on every frame again).

use std::collections::HashMap;

use crate::vision::track::Predicted;
use crate::vision::Settled;

/// The largest `detect_every`: one detector run a second at 30 fps.
pub const MAX_DETECT_EVERY: u32 = 30;

/// How often the detector runs (`detect_every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectEvery {
    /// On every Nth frame (1: every frame, the default), N within [1, [`MAX_DETECT_EVERY`]].
    Every(u32),
    /// As often as the cores allow: every frame asks; the frames that come while the session's
    /// detector run is busy are answered by prediction once it is done.
    Auto,
}

impl Default for DetectEvery {
    fn default() -> Self {
        DetectEvery::Every(1)
    }
}

impl DetectEvery {
    /// `1` (every frame): today's behaviour, tracking or not.
    pub fn is_every_frame(self) -> bool {
        self == DetectEvery::Every(1)
    }

    /// A frame replaced in the latest-frame-wins slot is predicted instead of dropped.
    pub fn keeps_replaced(self) -> bool {
        self == DetectEvery::Auto
    }
}

impl std::fmt::Display for DetectEvery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectEvery::Every(n) => write!(f, "{n}"),
            DetectEvery::Auto => f.write_str("auto"),
        }
    }
}

impl serde::Serialize for DetectEvery {
    /// A number, or `"auto"`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DetectEvery::Every(n) => s.serialize_u32(*n),
            DetectEvery::Auto => s.serialize_str("auto"),
        }
    }
}

/// Which frames ask for the detector under `detect_every=N`: the first the session takes
/// after the cadence (re)starts, then every Nth.
#[derive(Debug, Clone)]
pub struct Cadence {
    every: DetectEvery,
    taken: u64,
}

impl Cadence {
    /// A cadence starting now (its first frame asks for the detector).
    pub fn new(every: DetectEvery) -> Cadence {
        Cadence { every, taken: 0 }
    }

    /// The setting.
    pub fn every(&self) -> DetectEvery {
        self.every
    }

    /// A valid frame arrived: whether it asks for the detector (`false`: the tracker predicts
    /// it).
    pub fn detects(&mut self) -> bool {
        let n = match self.every {
            DetectEvery::Auto => return true,
            DetectEvery::Every(n) => u64::from(n.max(1)),
        };
        let detect = self.taken.is_multiple_of(n);
        self.taken += 1;
        detect
    }
}

/// When a settled reading is read again. Defaults: 3 agreeing readings, ×1.25, 10 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReuseConfig {
    /// Readings in a row that must agree with the track's consensus (its `track_text`) before
    /// it is not read again (`--ocr-settle-readings`, default 3: one misread among them starts
    /// the count again).
    pub settle: u32,
    /// A settled track is read again once its box's linear size (√area) is this many times
    /// what it was at its last reading (`--ocr-reread-growth`, default 1.25: it came closer).
    pub growth: f32,
    /// A settled track is read again once this long (ms, by the frames' arrival) has passed
    /// since its last reading (`--ocr-reread-after`, default 10 s: a plate changed under a
    /// stopped car, a reading that was wrong all along).
    pub reread_after_ms: u64,
}

impl Default for ReuseConfig {
    fn default() -> Self {
        ReuseConfig { settle: 3, growth: 1.25, reread_after_ms: 10_000 }
    }
}

/// One track's reading state.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ReadState {
    /// Readings in a row that agreed with the consensus.
    agreeing: u32,
    /// The box's √area at the last reading.
    size: f32,
    /// The last reading's frame arrival, ms in the session clock.
    at_ms: u64,
}

/// The reading state of a session's tracks (at most one entry per live track: the session
/// forgets ended tracks).
#[derive(Debug, Clone, Default)]
pub struct Reuse {
    config: ReuseConfig,
    tracks: HashMap<u64, ReadState>,
}

/// √area of a box (0 for an empty or swapped one).
fn size(b: &[f32; 4]) -> f32 {
    ((b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)).sqrt()
}

impl Reuse {
    /// No track read yet.
    pub fn new(config: ReuseConfig) -> Reuse {
        Reuse { config, tracks: HashMap::new() }
    }

    /// Whether `p` (a track where the next frame will find it) needs no reading on a frame
    /// that arrived at `at_ms`: settled, not grown by the growth factor since its last reading,
    /// and read less than the re-read time ago.
    pub fn settled(&self, p: &Predicted, at_ms: u64) -> bool {
        let Some(s) = self.tracks.get(&p.track_id) else { return false };
        let c = &self.config;
        s.agreeing >= c.settle.max(1)
            && size(&p.bbox) < s.size * c.growth
            && at_ms.saturating_sub(s.at_ms) < c.reread_after_ms
    }

    /// The boxes, among `next` (the tracks where the next frame will find them), of the tracks
    /// that frame need not read.
    pub fn not_to_read(&self, next: &[Predicted], at_ms: u64) -> Vec<Settled> {
        next.iter().filter(|p| self.settled(p, at_ms)).map(|p| Settled { class_id: p.class_id, bbox: p.bbox }).collect()
    }

    /// Track `track_id`'s crop (box `bbox`) was read on a frame that arrived at `at_ms`;
    /// `agrees`: one of the lines read there is the track's consensus reading.
    pub fn read(&mut self, track_id: u64, bbox: &[f32; 4], at_ms: u64, agrees: bool) {
        let s = self.tracks.entry(track_id).or_insert(ReadState { agreeing: 0, size: 0.0, at_ms });
        s.agreeing = if agrees { s.agreeing.saturating_add(1) } else { 0 };
        s.size = size(bbox);
        s.at_ms = at_ms;
    }

    /// The track ended: its state goes.
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }

    /// Tracks with a reading state (live tracks read at least once).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no track has a reading state.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_frame_asks_for_the_detector_and_auto_every_frame() {
        let mut c = Cadence::new(DetectEvery::Every(3));
        let asks: Vec<bool> = (0..7).map(|_| c.detects()).collect();
        assert_eq!(asks, [true, false, false, true, false, false, true]);
        let mut one = Cadence::new(DetectEvery::default());
        assert!((0..5).all(|_| one.detects()), "1: every frame");
        let mut auto = Cadence::new(DetectEvery::Auto);
        assert!((0..5).all(|_| auto.detects()), "auto: every frame asks; the slot predicts the ones that wait");
        assert!(DetectEvery::Auto.keeps_replaced() && !DetectEvery::Every(3).keeps_replaced());
        assert_eq!(serde_json::to_string(&[DetectEvery::Every(3), DetectEvery::Auto]).unwrap(), r#"[3,"auto"]"#);
    }

    fn at(track_id: u64, side: f32) -> Predicted {
        Predicted { track_id, class_id: 2, score: 0.9, bbox: [10.0, 10.0, 10.0 + side, 10.0 + side] }
    }

    #[test]
    fn a_reading_settles_after_agreeing_readings_in_a_row() {
        let mut r = Reuse::new(ReuseConfig::default());
        assert!(!r.settled(&at(1, 100.0), 0), "never read: read it");
        r.read(1, &at(1, 100.0).bbox, 0, true);
        r.read(1, &at(1, 100.0).bbox, 40, false);
        r.read(1, &at(1, 100.0).bbox, 80, true);
        r.read(1, &at(1, 100.0).bbox, 120, true);
        assert!(!r.settled(&at(1, 100.0), 160), "a misread started the count again: 2 in a row");
        r.read(1, &at(1, 100.0).bbox, 160, true);
        assert!(r.settled(&at(1, 100.0), 200), "3 in a row");
        assert_eq!(
            r.not_to_read(&[at(1, 100.0), at(2, 100.0)], 200),
            [Settled { class_id: 2, bbox: at(1, 100.0).bbox }]
        );
        // A disagreeing reading unsettles it.
        r.read(1, &at(1, 100.0).bbox, 240, false);
        assert!(!r.settled(&at(1, 100.0), 280));
    }

    #[test]
    fn a_settled_track_is_read_again_when_it_grew_or_after_the_reread_time() {
        let c = ReuseConfig { settle: 2, growth: 1.25, reread_after_ms: 1000 };
        let mut r = Reuse::new(c);
        r.read(7, &at(7, 100.0).bbox, 0, true);
        r.read(7, &at(7, 100.0).bbox, 40, true);
        assert!(r.settled(&at(7, 124.0), 80), "×1.24: not yet");
        assert!(!r.settled(&at(7, 125.0), 80), "×1.25: it came closer, read it again");
        assert!(r.settled(&at(7, 60.0), 80), "smaller (going away): no better reading there");
        assert!(r.settled(&at(7, 100.0), 1039));
        assert!(!r.settled(&at(7, 100.0), 1040), "1 s after the last reading: read it again");
        // Read again at the new size, agreeing: settled at that size.
        r.read(7, &at(7, 125.0).bbox, 80, true);
        assert!(r.settled(&at(7, 150.0), 120) && !r.settled(&at(7, 157.0), 120));
        r.forget(7);
        assert!(r.is_empty() && !r.settled(&at(7, 100.0), 120), "an ended track is forgotten");
    }
}
