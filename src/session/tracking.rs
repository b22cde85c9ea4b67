//! Tracking in a session: its [`Tracker`] sees each result's detections in `frame_index` order
//! (frames dropped under load are simply never seen) and annotates the result before it is sent:
//! `track_id` on each tracked detection and on the lines linked to one, and `track_text`, the
//! track's best reading so far (its linked lines' text seen most often over its life).
//!
//! The tracker sees every detection down to `--track-low-thresh` (0.1): the reported ones (above
//! the session's `min_score`) and, from [`Analysis::low_detections`], those between, which feed
//! ByteTrack's second, low-score association and are never sent to the client.

use crate::analytics::Observation;
use crate::policy::Reuse;
use crate::protocol::FrameResult;
use crate::vision::track::{TrackInput, Tracker};
use crate::vision::Analysis;

/// Run `tracker` on `analysis`'s detections (full precision), then turn the analysis into the
/// wire's result with `track_id` and `track_text` filled in. In between, `observe` is handed
/// the tracker and the confirmed tracks seen in this frame (every detection a confirmed track
/// took, low ones included, borrowing the analysis's labels): the session's analytics. A result
/// without detections (the `ocr` pipeline) leaves the tracker alone (`observe` sees none).
///
/// With `ocr=detections` ([`Analysis::read`]) each tracked detection says whether its crop was
/// read (`text_read`); with `reuse` (the session's reading state, and the frame's arrival in ms)
/// each read track's reading is recorded there (agreeing when one of its lines is its consensus
/// after this frame), and the tracks that ended are forgotten.
pub fn annotate(
    tracker: &mut Tracker,
    analysis: Analysis,
    reuse: Option<(&mut Reuse, u64)>,
    observe: impl FnOnce(&Tracker, &[Observation<'_>]),
) -> FrameResult {
    let Some(found) = analysis.detections.as_ref() else {
        observe(tracker, &[]);
        return FrameResult::from(analysis);
    };
    // The reported detections first (their ids go on the wire), then the low ones the client
    // never sees.
    let all = || found.iter().chain(analysis.low_detections.iter().flatten());
    let inputs: Vec<TrackInput> =
        all().map(|d| TrackInput { bbox: d.bbox, score: d.score, class_id: d.class_id }).collect();
    let mut ids = tracker.update(&inputs);
    let seen: Vec<Observation<'_>> = all()
        .zip(&ids)
        .filter_map(|(d, id)| {
            Some(Observation { track_id: (*id)?, class_id: d.class_id, label: &d.label, bbox: d.bbox })
        })
        .collect();
    observe(tracker, &seen);
    drop(seen);
    ids.truncate(found.len());
    let line_ids: Vec<Option<u64>> = analysis
        .texts
        .iter()
        .flatten()
        .map(|line| {
            let id = line.detection.and_then(|i| ids.get(i).copied().flatten());
            if let Some(id) = id {
                tracker.add_reading(id, &line.text, line.score);
            }
            id
        })
        .collect();
    let read = analysis.read.as_deref();
    let text_read: Vec<Option<bool>> =
        (0..ids.len()).map(|i| read.map(|r| r.get(i).copied().unwrap_or(false))).collect();
    if let Some((reuse, at_ms)) = reuse {
        for e in tracker.ended() {
            reuse.forget(e.track_id);
        }
        for (i, (d, id)) in found.iter().zip(&ids).enumerate() {
            let (Some(id), Some(true)) = (*id, text_read[i]) else { continue };
            let best = tracker.best_reading(id);
            let mut lines = analysis.texts.iter().flatten().filter(|l| l.detection == Some(i));
            let agrees = best.is_some_and(|b| lines.any(|l| l.text == b));
            reuse.read(id, &d.bbox, at_ms, agrees);
        }
    }
    let mut result = FrameResult::from(analysis);
    for ((d, id), read) in result.detections.iter_mut().flatten().zip(ids).zip(text_read) {
        d.set_track(id, id.and_then(|id| tracker.best_reading_scored(id)));
        d.text_read = id.and(read);
    }
    for (line, id) in result.texts.iter_mut().flatten().zip(line_ids) {
        line.track_id = id;
    }
    result
}

/// The confirmed tracks `annotate`'s `observe` saw, by id (for the tests).
#[cfg(test)]
fn annotate_ids(tracker: &mut Tracker, analysis: Analysis) -> (FrameResult, Vec<u64>) {
    let mut ids = Vec::new();
    let r = annotate(tracker, analysis, None, |_, seen| ids = seen.iter().map(|o| o.track_id).collect());
    (r, ids)
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
                read: None,
            };
            // The one misreading that ties on count is the less confident one.
            if let Some(t) = a.texts.as_mut() {
                t[0].score = if i == 1 { 0.6 } else { 0.9 };
            }
            let (r, seen) = annotate_ids(&mut t, a);
            assert_eq!(seen.len(), usize::from(r.detections.as_ref().unwrap()[0].track_id.is_some()));
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
        let (r, seen) = annotate_ids(&mut t, a);
        assert_eq!(r.texts.unwrap()[0].track_id, None);
        assert!(seen.is_empty());
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
                read: None,
            };
            let (r, seen) = annotate_ids(&mut t, a);
            let wire = r.detections.unwrap();
            assert_eq!(wire.len(), usize::from(!hidden), "low detections never reach the wire");
            if i > 0 {
                assert_eq!(seen, vec![1], "frame {i}: seen, low or not");
            }
            ids.extend(wire.iter().map(|d| d.track_id));
        }
        assert_eq!(ids, vec![Some(1); 4], "one id before and after the low-score stretch");
    }
}

#[cfg(test)]
mod reuse_tests {
    use super::*;
    use crate::policy::ReuseConfig;
    use crate::vision::track::TrackConfig;
    use crate::vision::{Detection, TextLine};

    #[test]
    fn read_crops_feed_the_reading_state_and_each_tracked_detection_says_whether_it_was_read() {
        let mut t = Tracker::new(TrackConfig::default());
        let mut reuse = Reuse::new(ReuseConfig::default());
        let car = |i: u64| Detection {
            label: "car".into(),
            class_id: 2,
            score: 0.9,
            bbox: [10.0 + i as f32, 10.0, 110.0 + i as f32, 60.0],
        };
        let plate = |text: &str| TextLine {
            text: text.into(),
            score: 0.9,
            bbox: [0.0; 4],
            polygon: [[0.0; 2]; 4],
            detection: Some(0),
        };
        for i in 0..3u64 {
            let a = Analysis {
                width: 640,
                height: 480,
                detections: Some(vec![car(i)]),
                texts: Some(vec![plate("KX 705")]),
                low_detections: None,
                read: Some(vec![true]),
            };
            let r = annotate(&mut t, a, Some((&mut reuse, 40 * i)), |_, _| {});
            assert_eq!(r.detections.unwrap()[0].text_read, Some(true));
        }
        let next = t.peek();
        assert!(reuse.settled(&next[0], 120), "three agreeing readings: settled");
        // A frame where the crop was not read: carried, and the state is untouched.
        let a = Analysis {
            width: 640,
            height: 480,
            detections: Some(vec![car(3)]),
            texts: Some(vec![]),
            low_detections: None,
            read: Some(vec![false]),
        };
        let r = annotate(&mut t, a, Some((&mut reuse, 160)), |_, _| {});
        let d = &r.detections.unwrap()[0];
        assert_eq!((d.text_read, d.track_text.as_deref()), (Some(false), Some("KX 705")));
        assert!(reuse.settled(&t.peek()[0], 200));
        // The track ends (no more detections): its state is forgotten.
        for _ in 0..=TrackConfig::default().lost_buffer {
            let a = Analysis {
                width: 640,
                height: 480,
                detections: Some(vec![]),
                read: Some(vec![]),
                ..Analysis::default()
            };
            annotate(&mut t, a, Some((&mut reuse, 240)), |_, _| {});
        }
        assert!(reuse.is_empty());
    }
}
