//! Tracking in a session: its [`Tracker`] sees each result's detections in `frame_index` order
//! (frames dropped under load are simply never seen) and annotates the result before it is sent:
//! `track_id` on each tracked detection and on the lines linked to one, and `track_text`, the
//! track's best reading so far (its linked lines' text seen most often over its life).
//!
//! The tracker sees every detection down to `--track-low-thresh` (0.1): the reported ones (above
//! the session's `min_score`) and, from [`Analysis::low_detections`], those between, which feed
//! ByteTrack's second, low-score association and are never sent to the client.

use crate::protocol::FrameResult;
use crate::vision::track::{TrackInput, Tracker};
use crate::vision::Analysis;

/// Run `tracker` on `analysis`'s detections (full precision) and annotate `result`, the wire's
/// copy of the same analysis (same detections and lines, in the same order).
pub fn annotate(tracker: &mut Tracker, analysis: &Analysis, result: &mut FrameResult) {
    let (Some(found), Some(detections)) = (analysis.detections.as_ref(), result.detections.as_mut()) else { return };
    // The reported detections first (their ids go on the wire), then the low ones the client
    // never sees.
    let low = analysis.low_detections.iter().flatten();
    let inputs: Vec<TrackInput> =
        found.iter().chain(low).map(|d| TrackInput { bbox: d.bbox, score: d.score, class_id: d.class_id }).collect();
    for (d, id) in detections.iter_mut().zip(tracker.update(&inputs)) {
        d.track_id = id;
    }
    let lines = analysis.texts.iter().flatten().zip(result.texts.iter_mut().flatten());
    for (seen, line) in lines {
        line.track_id = seen.detection.and_then(|i| detections.get(i)).and_then(|d| d.track_id);
        if let Some(id) = line.track_id {
            tracker.add_reading(id, &seen.text, seen.score);
        }
    }
    for d in detections.iter_mut() {
        d.track_text = d.track_id.and_then(|id| tracker.best_reading(id)).map(String::from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::track::TrackConfig;
    use crate::vision::{Detection, TextLine};

    fn det(x: f32) -> Detection {
        Detection { label: "car".into(), class_id: 2, score: 0.9, bbox: [x, 10.0, x + 100.0, 60.0] }
    }

    fn line(text: &str, detection: Option<usize>) -> TextLine {
        TextLine { text: text.into(), score: 0.9, bbox: [0.0; 4], polygon: [[0.0; 2]; 4], detection }
    }

    #[test]
    fn ids_and_the_best_reading_follow_the_object() {
        let mut t = Tracker::new(TrackConfig::default());
        let mut readings = ["AB 123", "AB 128", "AB 123", "A8 123"].into_iter();
        let mut id = None;
        for i in 0..4 {
            let text = readings.next().unwrap_or_default();
            let mut a = Analysis {
                width: 640,
                height: 480,
                detections: Some(vec![det(10.0 + 5.0 * i as f32)]),
                texts: Some(vec![line(text, Some(0)), line("FREE", None)]),
                low_detections: None,
            };
            // The one misreading that ties on count is the less confident one.
            if let Some(t) = a.texts.as_mut() {
                t[0].score = if i == 1 { 0.6 } else { 0.9 };
            }
            let mut r = FrameResult::from(&a);
            annotate(&mut t, &a, &mut r);
            let (d, texts) = (&r.detections.as_ref().unwrap()[0], r.texts.as_ref().unwrap());
            assert!(d.track_id.is_some());
            id = id.or(d.track_id);
            assert_eq!(d.track_id, id, "one id for the whole sequence");
            assert_eq!(texts[0].track_id, id, "a linked line carries its detection's track");
            assert_eq!(texts[1].track_id, None, "an unlinked line carries none");
            assert_eq!(d.track_text.as_deref(), Some("AB 123"), "frame {i}: the most frequent reading");
        }
    }

    #[test]
    fn results_without_detections_are_left_alone() {
        let mut t = Tracker::new(TrackConfig::default());
        let a = Analysis { texts: Some(vec![line("X", None)]), ..Analysis::default() };
        let mut r = FrameResult::from(&a);
        annotate(&mut t, &a, &mut r);
        assert_eq!(r.texts.unwrap()[0].track_id, None);
        assert!(t.is_empty());
    }

    #[test]
    fn the_tracker_sees_the_low_detections_the_client_does_not() {
        // lost_buffer 2: four frames in which the car is seen only at a low score (the client
        // gets no detection) would kill its track without them; with them it goes on.
        let mut t = Tracker::new(TrackConfig { lost_buffer: 2, ..TrackConfig::default() });
        let mut ids = Vec::new();
        for i in 0..8 {
            let mut car = det(10.0 + 5.0 * i as f32);
            let hidden = (2..6).contains(&i);
            if hidden {
                car.score = 0.3;
            }
            let a = Analysis {
                width: 640,
                height: 480,
                detections: Some(if hidden { vec![] } else { vec![car.clone()] }),
                low_detections: Some(if hidden { vec![car] } else { vec![] }),
                texts: None,
            };
            let mut r = FrameResult::from(&a);
            annotate(&mut t, &a, &mut r);
            let wire = r.detections.unwrap();
            assert_eq!(wire.len(), usize::from(!hidden), "low detections never reach the wire");
            ids.extend(wire.iter().map(|d| d.track_id));
        }
        assert_eq!(ids, vec![Some(1); 4], "one id before and after the low-score stretch");
    }
}
