//! Per-session multi-object tracking: ByteTrack's association (Zhang et al., "ByteTrack:
//! Multi-Object Tracking by Associating Every Detection Box", ECCV 2022), as a pure type.
//!
//! The session owns one [`Tracker`] and calls [`Tracker::update`] once per processed frame with
//! that frame's detections; each detection comes back with a track id that stays the same while
//! the object is followed. Nothing here does I/O or knows about time: "a frame" is one call to
//! `update`. The server drops frames under load, so a gap between two calls is simply frames
//! the tracker never saw; one Kalman step ([`kalman`]) then covers whatever motion happened, and
//! the IoU gate is loose enough (see [`TrackConfig::match_iou`]) for several frames' worth of it.
//!
//! One update, as in ByteTrack's `BYTETracker.update`:
//!
//! 1. every track is predicted one step (a lost track's height velocity is zeroed first);
//! 2. detections are split into *high* (`score >= track_thresh`) and *low*
//!    (`low_thresh <= score < track_thresh`); anything else, and any box that is not finite or
//!    has no area, is ignored;
//! 3. first association: high detections against the confirmed tracks, tracked and lost, by the
//!    IoU of the predicted boxes, gated at `IoU >= match_iou`;
//! 4. second association: low detections against the *tracked* (not lost) confirmed tracks left
//!    over, gated at [`LOW_MATCH_IOU`] (ByteTrack's second `match_thresh` of 0.5 on `1 - IoU`):
//!    low detections continue tracks (through occlusion, motion blur) but never start or revive
//!    one;
//! 5. tracked tracks still unmatched become lost;
//! 6. third association: high detections left over against the tentative tracks (born on the
//!    previous update), gated at [`TENTATIVE_MATCH_IOU`] (ByteTrack's 0.7 on `1 - IoU`); a
//!    tentative track that is not matched is removed at once, so a one-frame false positive does
//!    not linger as a lost track. A track gets its id only when it is confirmed (matched on the
//!    update after its birth), so a one-frame false positive never uses up an id, and a
//!    tentative track's detection is reported without one. (Tracks born on the tracker's very
//!    first update are confirmed at birth, as in ByteTrack.)
//! 7. lost tracks missed on more than `lost_buffer` consecutive updates are removed (a removed
//!    confirmed track is reported, with its final reading, by [`Tracker::ended`] until the next
//!    update; [`Tracker::end_all`] ends every track at once);
//! 8. high detections still unmatched with `score >= new_track_thresh` start new tracks,
//!    highest score first, while fewer than `max_tracks` tracks live.
//!
//! Each association is an optimal assignment, as ByteTrack's (`lap.lapjv` with `cost_limit`):
//! it maximises the summed `IoU - gate` over the admissible pairs (same class, `IoU >= gate`),
//! solved by the Hungarian method (shortest augmenting paths with potentials, the same
//! augmentation Jonker-Volgenant uses) on each connected group of overlapping tracks and
//! detections separately, so the usual case (objects apart) costs no more than the IoU table.
//!
//! Differences from ByteTrack, on purpose: tracks are per class (a detection only matches a track
//! of its `class_id`; ByteTrack is class-agnostic); the IoU is not multiplied by the detection
//! score (`fuse_score`); overlapping tracked/lost duplicates are not pruned
//! (`remove_duplicate_stracks`); the number of live tracks is bounded (`max_tracks`); and each
//! track keeps a small tally of text readings (OCR results linked to it), so the session can
//! report the track's most frequent reading rather than one frame's.
//!
//! Garbage in (NaN or infinite boxes or scores, zero-area or swapped boxes) never panics and
//! never creates or moves a track: such a detection is simply given `None`.

pub mod kalman;

use crate::vision::geometry::iou;
mod assign;

use assign::{assign, ASSIGN_EPS};
use kalman::{tlbr_from_state, xyah_from_tlbr, KalmanState, Vec4};

/// The gate of the second association (low-score detections against tracked tracks): ByteTrack
/// uses `match_thresh = 0.5` on the `1 - IoU` cost there, i.e. `IoU >= 0.5`, stricter than the
/// first because a low score is weaker evidence.
pub const LOW_MATCH_IOU: f32 = 0.5;

/// The gate of the third association (leftover high detections against tentative tracks):
/// ByteTrack's `match_thresh = 0.7` on `1 - IoU`, i.e. `IoU >= 0.3`.
pub const TENTATIVE_MATCH_IOU: f32 = 0.3;

/// Distinct text readings kept per track; beyond it the least seen is evicted.
pub const MAX_READINGS: usize = 16;

/// Tracker parameters. The defaults are ByteTrack's (`track_thresh 0.5`, `match_thresh 0.8`,
/// `track_buffer 30` at 30 fps) plus a memory bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackConfig {
    /// A detection with `score >= track_thresh` is *high*: it takes part in the first
    /// association and may start a track. Default 0.5 (ByteTrack's `track_thresh`).
    pub track_thresh: f32,
    /// An unmatched high detection starts a new track only if `score >= new_track_thresh`.
    /// Default 0.6 (ByteTrack's `det_thresh = track_thresh + 0.1`): a little above
    /// `track_thresh`, so a borderline detection can continue a track but not start one.
    pub new_track_thresh: f32,
    /// The smallest IoU (of a track's predicted box and a detection) at which the two may be
    /// matched in the first association: a pair matches only if `IoU >= match_iou`. Default
    /// 0.2. This is an IoU, not ByteTrack's cost: ByteTrack's `match_thresh = 0.8` is a limit
    /// on the cost `1 - IoU`, which is the same gate. Loose on purpose: it is what lets a track
    /// survive a dropped frame or a prediction that lags a sudden move.
    pub match_iou: f32,
    /// Detections with `low_thresh <= score < track_thresh` are *low*: they may only continue a
    /// tracked track (second association). Below `low_thresh` a detection is ignored. Default
    /// 0.1 (ByteTrack's fixed low bound).
    pub low_thresh: f32,
    /// A lost track survives this many consecutive updates without a match (and can be found
    /// again during them), and is removed on the next miss. Default 30 (ByteTrack's
    /// `track_buffer`: one second at 30 fps; counted in updates, so longer in wall time when
    /// the server drops frames).
    pub lost_buffer: u32,
    /// The most tracks (tentative, tracked and lost) alive at once. When it is reached, new
    /// tracks are refused (their detections get `None`) until some die; existing tracks are
    /// never evicted for a newcomer. Default 256: above the SSD's 100 detections a frame and far
    /// above what a camera scene shows (a YOLO export may report up to 300), so in practice only
    /// a flood of spurious objects reaches it; it bounds a session's memory and per-update work.
    pub max_tracks: usize,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            track_thresh: 0.5,
            new_track_thresh: 0.6,
            match_iou: 0.2,
            low_thresh: 0.1,
            lost_buffer: 30,
            max_tracks: 256,
        }
    }
}

/// One detection given to the tracker: box in pixels `[x1, y1, x2, y2]`, score, class id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackInput {
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [f32; 4],
    /// Detector score.
    pub score: f32,
    /// Class id: a detection only matches a track of the same class.
    pub class_id: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackState {
    /// Born on the previous update, not yet matched again.
    Tentative,
    /// Matched on the latest update.
    Tracked,
    /// Missed on the latest `misses` updates.
    Lost,
}

#[derive(Debug, Clone)]
struct Reading {
    text: String,
    count: u32,
    max_confidence: f32,
}

#[derive(Debug, Clone)]
struct Track {
    /// Given when the track is confirmed (`None` while tentative).
    id: Option<u64>,
    class_id: usize,
    kf: KalmanState,
    state: TrackState,
    /// Consecutive updates without a match.
    misses: u32,
    /// The score of the detection it was last matched to (what a predicted box reports).
    score: f32,
    /// In insertion order (ties in eviction go to the oldest, in `best_reading` to the first).
    readings: Vec<Reading>,
}

/// A per-session ByteTrack tracker; see the module documentation.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackConfig,
    /// In creation order, hence by increasing id.
    tracks: Vec<Track>,
    next_id: u64,
    updates: u64,
    /// The confirmed tracks the latest update removed (cleared by the next one: bounded by
    /// `max_tracks`).
    ended: Vec<EndedTrack>,
}

/// Where a track is on a frame the detector did not run on: its motion model's box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predicted {
    /// Its id.
    pub track_id: u64,
    /// Its class.
    pub class_id: usize,
    /// The score of the detection it was last matched to.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in pixels, as predicted (not clipped; may be empty or swapped when
    /// the motion model shrinks a box to nothing).
    pub bbox: [f32; 4],
}

/// A confirmed track that was removed, with its final reading: what a session needs to say the
/// track ended.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedTrack {
    /// Its id.
    pub track_id: u64,
    /// Its class.
    pub class_id: usize,
    /// Its best reading ([`Tracker::best_reading`]) at the end, if any.
    pub text: Option<String>,
    /// That reading's best recognition confidence.
    pub text_score: Option<f32>,
}

impl Track {
    /// The reading seen most often, ties to the higher best confidence, then the earlier.
    fn best(&self) -> Option<&Reading> {
        let mut best: Option<&Reading> = None;
        for r in &self.readings {
            if best.is_none_or(|b| (r.count, r.max_confidence) > (b.count, b.max_confidence)) {
                best = Some(r);
            }
        }
        best
    }

    /// Where it is, if it is confirmed, tracked (matched on the latest update) and its state
    /// finite.
    fn predicted(&self) -> Option<Predicted> {
        self.predicted_at(&self.kf)
    }

    /// [`Track::predicted`] with its motion model in state `kf`.
    fn predicted_at(&self, kf: &KalmanState) -> Option<Predicted> {
        let track_id = self.id.filter(|_| self.state == TrackState::Tracked && kf.is_finite())?;
        Some(Predicted { track_id, class_id: self.class_id, score: self.score, bbox: tlbr_from_state(&kf.mean) })
    }

    /// Its end, if it was confirmed (a tentative track never had an id to end).
    fn ended(&self) -> Option<EndedTrack> {
        let best = self.best();
        Some(EndedTrack {
            track_id: self.id?,
            class_id: self.class_id,
            text: best.map(|r| r.text.clone()),
            text_score: best.map(|r| r.max_confidence),
        })
    }
}

/// Which track (index into `tracks`) each detection was matched to, and back.
struct Matches {
    track_of: Vec<Option<usize>>,
    det_of: Vec<Option<usize>>,
}

impl Tracker {
    /// An empty tracker; the first track will get id 1.
    pub fn new(config: TrackConfig) -> Tracker {
        Tracker::starting_at(config, 1)
    }

    /// An empty tracker whose first confirmed track gets id `first_id` (at least 1): a session
    /// that turns tracking off and on again goes on from [`Tracker::next_id`] of the tracker it
    /// dropped, so an id is never reused within the session.
    pub fn starting_at(config: TrackConfig, first_id: u64) -> Tracker {
        Tracker { config, tracks: Vec::new(), next_id: first_id.max(1), updates: 0, ended: Vec::new() }
    }

    /// The id the next confirmed track will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// One processed frame: returns, for each input detection (same order), the id of the
    /// confirmed track it was assigned, or `None` (a detection that is invalid, below
    /// `low_thresh`, low and matched to nothing, high and unmatched but below
    /// `new_track_thresh` or refused by `max_tracks`, or one that just started a tentative
    /// track). Ids start at 1, go to confirmed tracks only, in the order they are confirmed,
    /// are unique within the tracker and never reused.
    pub fn update(&mut self, detections: &[TrackInput]) -> Vec<Option<u64>> {
        let cfg = self.config;
        self.updates += 1;
        self.ended.clear();
        for t in &mut self.tracks {
            if t.state == TrackState::Lost {
                t.kf.mean[7] = 0.0;
            }
            t.kf.predict();
        }
        // Unreachable for boxes that passed the checks, but a track whose state went non-finite
        // could never match again: drop it rather than carry it.
        for t in self.tracks.iter().filter(|t| !t.kf.is_finite()) {
            self.ended.extend(t.ended());
        }
        self.tracks.retain(|t| t.kf.is_finite());
        let boxes: Vec<[f32; 4]> = self.tracks.iter().map(|t| tlbr_from_state(&t.kf.mean)).collect();

        let measurements: Vec<Option<Vec4>> = detections.iter().map(measurement).collect();
        let (mut high, mut low) = (Vec::new(), Vec::new());
        for (i, d) in detections.iter().enumerate() {
            if measurements[i].is_none() {
                continue;
            }
            if d.score >= cfg.track_thresh {
                high.push(i);
            } else if d.score >= cfg.low_thresh {
                low.push(i);
            }
        }

        let mut m = Matches { track_of: vec![None; detections.len()], det_of: vec![None; self.tracks.len()] };
        let state = |ti: usize| self.tracks[ti].state;
        let confirmed: Vec<usize> = (0..self.tracks.len()).filter(|&ti| state(ti) != TrackState::Tentative).collect();
        self.associate(&mut m, &boxes, detections, &confirmed, &high, cfg.match_iou);
        let tracked_left: Vec<usize> =
            (0..self.tracks.len()).filter(|&ti| state(ti) == TrackState::Tracked && m.det_of[ti].is_none()).collect();
        self.associate(&mut m, &boxes, detections, &tracked_left, &low, LOW_MATCH_IOU);
        let tentative: Vec<usize> = (0..self.tracks.len()).filter(|&ti| state(ti) == TrackState::Tentative).collect();
        let high_left: Vec<usize> = high.iter().copied().filter(|&di| m.track_of[di].is_none()).collect();
        self.associate(&mut m, &boxes, detections, &tentative, &high_left, TENTATIVE_MATCH_IOU);

        let mut out = vec![None; detections.len()];
        let mut keep = vec![true; self.tracks.len()];
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            match m.det_of[ti] {
                Some(di) => {
                    if let Some(z) = measurements[di] {
                        if !t.kf.update(z) {
                            t.kf = KalmanState::initiate(z);
                        }
                    }
                    t.state = TrackState::Tracked;
                    t.misses = 0;
                    t.score = detections[di].score;
                    if t.id.is_none() {
                        // Confirmed now: its id is the next one (if the ids ran out, it stays
                        // unnamed; unreachable at 2^64).
                        t.id = self.next_id.checked_add(1).map(|next| std::mem::replace(&mut self.next_id, next));
                    }
                    out[di] = t.id;
                }
                None => {
                    t.misses = t.misses.saturating_add(1);
                    match t.state {
                        TrackState::Tentative => keep[ti] = false,
                        TrackState::Tracked | TrackState::Lost => {
                            t.state = TrackState::Lost;
                            keep[ti] = t.misses <= cfg.lost_buffer;
                        }
                    }
                }
            }
        }
        for (t, _) in self.tracks.iter().zip(&keep).filter(|(_, &k)| !k) {
            self.ended.extend(t.ended());
        }
        let mut keep = keep.into_iter();
        self.tracks.retain(|_| keep.next().unwrap_or(true));

        let mut fresh: Vec<usize> = high
            .into_iter()
            .filter(|&di| m.track_of[di].is_none() && detections[di].score >= cfg.new_track_thresh)
            .collect();
        // Highest score first (stable: equal scores in input order), so the bound refuses the
        // weakest.
        fresh.sort_by(|&a, &b| detections[b].score.total_cmp(&detections[a].score));
        let first = self.updates == 1;
        let state = if first { TrackState::Tracked } else { TrackState::Tentative };
        for di in fresh {
            if self.tracks.len() >= cfg.max_tracks {
                break;
            }
            let Some(z) = measurements[di] else { continue };
            // Confirmed at birth only on the first update; otherwise named when confirmed.
            let id = if first {
                let Some(next) = self.next_id.checked_add(1) else { continue };
                Some(std::mem::replace(&mut self.next_id, next))
            } else {
                None
            };
            let class_id = detections[di].class_id;
            self.tracks.push(Track {
                id,
                class_id,
                kf: KalmanState::initiate(z),
                state,
                misses: 0,
                score: detections[di].score,
                readings: Vec::new(),
            });
            out[di] = id;
        }
        out
    }

    /// A frame the detector skipped: every track moves one step along its motion model, as
    /// [`Tracker::update`] moves it before matching, and nothing is matched, missed or removed
    /// ([`Tracker::ended`] is empty after it). Returns where the tracks the latest update
    /// matched (confirmed and tracked) are now, in creation order; lost and tentative tracks
    /// move but are not reported, so a prediction never invents or revives a track.
    pub fn predict(&mut self) -> Vec<Predicted> {
        self.ended.clear();
        for t in &mut self.tracks {
            if t.state == TrackState::Lost {
                t.kf.mean[7] = 0.0;
            }
            t.kf.predict();
        }
        self.tracks.iter().filter_map(Track::predicted).collect()
    }

    /// Where the tracks the latest update matched will be on the next frame, without moving
    /// them (what [`Tracker::predict`] or the next update's first step will give).
    pub fn peek(&self) -> Vec<Predicted> {
        self.tracks
            .iter()
            .filter_map(|t| {
                // Only the motion model moves (a lost track, which `predicted_at` leaves out
                // anyway, would have its height velocity zeroed first).
                let mut kf = t.kf.clone();
                kf.predict();
                t.predicted_at(&kf)
            })
            .collect()
    }

    /// Match the still-unmatched `rows` (track indices) and `cols` (detection indices) by an
    /// optimal assignment over the pairs of the same class with `IoU >= gate` (and `IoU > 0`).
    fn associate(
        &self,
        m: &mut Matches,
        boxes: &[[f32; 4]],
        dets: &[TrackInput],
        rows: &[usize],
        cols: &[usize],
        gate: f32,
    ) {
        let rows: Vec<usize> = rows.iter().copied().filter(|&ti| m.det_of[ti].is_none()).collect();
        let cols: Vec<usize> = cols.iter().copied().filter(|&di| m.track_of[di].is_none()).collect();
        let pairs = assign(rows.len(), cols.len(), |r, c| {
            let (ti, di) = (rows[r], cols[c]);
            if self.tracks[ti].class_id != dets[di].class_id {
                return None;
            }
            let v = iou(&boxes[ti], &dets[di].bbox);
            (v > 0.0 && v >= gate).then(|| f64::from(v) - f64::from(gate) + ASSIGN_EPS)
        });
        for (r, c) in pairs {
            m.det_of[rows[r]] = Some(cols[c]);
            m.track_of[cols[c]] = Some(rows[r]);
        }
    }

    fn track(&self, track_id: u64) -> Option<&Track> {
        // Ids are given at confirmation, so not in creation order: a scan (at most
        // `max_tracks`).
        self.tracks.iter().find(|t| t.id == Some(track_id))
    }

    /// Record a text reading for a live track (`text`, recognition `confidence`). Ignored for an
    /// unknown or dead track, an empty (or all-whitespace) text, or a non-finite confidence. At
    /// most [`MAX_READINGS`] distinct texts are kept per track: a new one beyond that evicts the
    /// least seen (fewest readings, then lowest best confidence, then the oldest). The length of
    /// each text is the recognizer's to bound.
    pub fn add_reading(&mut self, track_id: u64, text: &str, confidence: f32) {
        if text.trim().is_empty() || !confidence.is_finite() {
            return;
        }
        let Some(track) = self.tracks.iter_mut().find(|t| t.id == Some(track_id)) else { return };
        let readings = &mut track.readings;
        if let Some(r) = readings.iter_mut().find(|r| r.text == text) {
            r.count = r.count.saturating_add(1);
            r.max_confidence = r.max_confidence.max(confidence);
            return;
        }
        if readings.len() >= MAX_READINGS {
            let least = readings
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| a.count.cmp(&b.count).then(a.max_confidence.total_cmp(&b.max_confidence)))
                .map(|(i, _)| i);
            if let Some(i) = least {
                readings.remove(i);
            }
        }
        readings.push(Reading { text: text.to_owned(), count: 1, max_confidence: confidence });
    }

    /// The track's best reading so far: the text seen most often over the track's life, ties to
    /// the higher best confidence (then to the earlier text). `None` for an unknown or dead
    /// track, or one with no reading.
    pub fn best_reading(&self, track_id: u64) -> Option<&str> {
        self.best_reading_scored(track_id).map(|(text, _)| text)
    }

    /// [`Tracker::best_reading`] with that reading's best recognition confidence.
    pub fn best_reading_scored(&self, track_id: u64) -> Option<(&str, f32)> {
        self.track(track_id)?.best().map(|r| (r.text.as_str(), r.max_confidence))
    }

    /// The confirmed tracks the latest [`Tracker::update`] removed (lost for more than
    /// `lost_buffer` updates), in creation order, with their final readings.
    pub fn ended(&self) -> &[EndedTrack] {
        &self.ended
    }

    /// End every live track now (the client ended the stream): the confirmed ones come back
    /// in creation order with their final readings; tentative ones just go. Ids are never
    /// reused: the next track gets the next id.
    pub fn end_all(&mut self) -> Vec<EndedTrack> {
        self.ended.clear();
        self.tracks.drain(..).filter_map(|t| t.ended()).collect()
    }

    /// Live tracks (tentative, tracked and lost).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no track is alive.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// The configuration this tracker runs with.
    pub fn config(&self) -> &TrackConfig {
        &self.config
    }
}

/// The detection's Kalman measurement, or `None` if it cannot be tracked: a non-finite score or
/// coordinate, a zero-area or swapped box, or one whose area overflows `f32`.
fn measurement(d: &TrackInput) -> Option<Vec4> {
    let [x1, y1, x2, y2] = d.bbox;
    let area = (x2 - x1) * (y2 - y1);
    if !(d.score.is_finite() && area.is_finite() && area > 0.0 && x2 > x1 && y2 > y1) {
        return None;
    }
    xyah_from_tlbr(&d.bbox)
}

#[cfg(test)]
mod tests;
