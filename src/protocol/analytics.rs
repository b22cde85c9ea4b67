//! The wire form of a session's analytics ([`crate::analytics`]). Its zones, lines, counts and
//! events serialise to the wire as they are (their serde form is documented beside them and in
//! `docs/PROTOCOL.md`); what is left here is the one rounding: the tracker's ended tracks enter
//! the analytics with their reading's score rounded to 4 decimals, like every score on the wire.

use super::round4;
use crate::analytics::Ended;
use crate::vision::track::EndedTrack;

/// The tracker's removed tracks as the analytics takes them (`text_score` rounded for the
/// wire's `track_ended`).
pub fn ended(tracks: &[EndedTrack]) -> Vec<Ended> {
    tracks
        .iter()
        .map(|t| Ended { track_id: t.track_id, text: t.text.clone(), text_score: t.text_score.map(round4) })
        .collect()
}
