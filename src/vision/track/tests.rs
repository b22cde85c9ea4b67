//! The tracker's unit tests, on synthetic box sequences: crossings, occlusions, jitter, frame
//! gaps, track death, low scores, classes, ids, readings and bounds.

use super::*;

/// A detection of a `w`×`h` box with its top-left corner at (`x`, `y`).
fn det(x: f32, y: f32, w: f32, h: f32, score: f32, class_id: usize) -> TrackInput {
    TrackInput { bbox: [x, y, x + w, y + h], score, class_id }
}

fn tracker() -> Tracker {
    Tracker::new(TrackConfig::default())
}

/// Deterministic noise in `[-1, 1)`.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

#[test]
fn defaults_are_bytetracks() {
    let c = TrackConfig::default();
    assert_eq!((c.track_thresh, c.new_track_thresh, c.match_iou, c.low_thresh), (0.5, 0.6, 0.2, 0.1));
    assert_eq!((c.lost_buffer, c.max_tracks), (30, 256));
    let t = tracker();
    assert!(t.is_empty());
    assert_eq!(t.len(), 0);
    assert_eq!(t.config(), &c);
}

#[test]
fn ids_start_at_one_and_follow_a_moving_object() {
    let mut t = tracker();
    for f in 0..20 {
        let ids = t.update(&[det(10.0 + 8.0 * f as f32, 50.0, 40.0, 80.0, 0.9, 0)]);
        assert_eq!(ids, vec![Some(1)], "frame {f}");
    }
    assert_eq!(t.len(), 1);
    assert!(t.update(&[]).is_empty());
}

#[test]
fn two_objects_crossing_paths_keep_their_ids() {
    let mut t = tracker();
    let (mut id_a, mut id_b) = (None, None);
    for f in 0..40 {
        let a = det(10.0 + 10.0 * f as f32, 100.0, 40.0, 80.0, 0.9, 0);
        let b = det(410.0 - 10.0 * f as f32, 120.0, 40.0, 80.0, 0.8, 0);
        // Input order flips every frame, so it cannot carry the identity.
        let (ia, ib) = if f % 2 == 0 {
            let ids = t.update(&[a, b]);
            (ids[0], ids[1])
        } else {
            let ids = t.update(&[b, a]);
            (ids[1], ids[0])
        };
        assert!(ia.is_some() && ib.is_some() && ia != ib, "frame {f}");
        if f == 0 {
            (id_a, id_b) = (ia, ib);
        }
        assert_eq!((ia, ib), (id_a, id_b), "frame {f}: the ids swapped or changed");
    }
    assert_eq!(t.len(), 2);
}

#[test]
fn an_occluded_object_comes_back_with_its_id() {
    let mut t = tracker();
    let at = |f: i32| det(100.0 + 6.0 * f as f32, 200.0, 50.0, 100.0, 0.9, 0);
    for f in 0..10 {
        assert_eq!(t.update(&[at(f)]), vec![Some(1)]);
    }
    for _ in 10..16 {
        assert!(t.update(&[]).is_empty());
        assert_eq!(t.len(), 1, "lost, not removed");
    }
    for f in 16..24 {
        assert_eq!(t.update(&[at(f)]), vec![Some(1)], "frame {f}");
    }
}

#[test]
fn jittering_detections_keep_one_id() {
    let mut t = tracker();
    let mut rng = Lcg(7);
    for f in 0..100 {
        let (dx, dy, dw, dh) = (4.0 * rng.next(), 4.0 * rng.next(), 3.0 * rng.next(), 3.0 * rng.next());
        let score = 0.7 + 0.2 * rng.next();
        assert_eq!(t.update(&[det(300.0 + dx, 200.0 + dy, 60.0 + dw, 120.0 + dh, score, 2)]), vec![Some(1)], "{f}");
    }
    assert_eq!(t.len(), 1);
}

#[test]
fn frame_gaps_keep_the_id() {
    let mut t = tracker();
    // 5 px per frame: seen every frame, then every 3rd-4th, then 6-frame gaps around a single
    // step (a prediction that now overshoots).
    let at = |frame: i32| det(50.0 + 5.0 * frame as f32, 100.0, 60.0, 120.0, 0.9, 0);
    let mut frames: Vec<i32> = (0..10).collect();
    frames.extend((12..40).step_by(4));
    frames.extend([42, 48, 49, 55]);
    for f in frames {
        assert_eq!(t.update(&[at(f)]), vec![Some(1)], "frame {f}");
    }
}

#[test]
fn a_track_dies_after_lost_buffer_and_a_newcomer_gets_a_new_id() {
    let mut t = tracker();
    let here = det(100.0, 100.0, 50.0, 100.0, 0.9, 0);
    for _ in 0..5 {
        assert_eq!(t.update(&[here]), vec![Some(1)]);
    }
    // Absent for exactly lost_buffer updates: still found again.
    for _ in 0..30 {
        t.update(&[]);
    }
    assert_eq!(t.len(), 1);
    assert_eq!(t.update(&[here]), vec![Some(1)]);
    // Absent for one more: gone, and the same place gets a new id.
    for _ in 0..31 {
        t.update(&[]);
    }
    assert!(t.is_empty());
    assert_eq!(t.update(&[here]), vec![None], "tentative: no id until confirmed");
    assert_eq!(t.update(&[here]), vec![Some(2)]);
    assert_eq!(t.update(&[here]), vec![Some(2)]);
}

#[test]
fn low_score_detections_continue_a_track_but_never_start_one() {
    let mut t = tracker();
    // Alone, a low detection starts nothing.
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.3, 0)]), vec![None]);
    assert!(t.is_empty());
    let at = |f: i32, s: f32| det(100.0 + 3.0 * f as f32, 100.0, 50.0, 100.0, s, 0);
    for f in 0..5 {
        // Born after the tracker's first update: confirmed (and named) on its second frame.
        assert_eq!(t.update(&[at(f, 0.9)]), vec![if f == 0 { None } else { Some(1) }]);
    }
    // Occlusion lowers the score: the track goes on.
    for f in 5..15 {
        assert_eq!(t.update(&[at(f, 0.3), det(600.0, 400.0, 50.0, 100.0, 0.3, 0)]), vec![Some(1), None]);
    }
    assert_eq!(t.len(), 1);
    // Below low_thresh: ignored, the track is lost ...
    assert_eq!(t.update(&[at(15, 0.05)]), vec![None]);
    // ... and a low detection does not revive a lost track, but a high one does.
    assert_eq!(t.update(&[at(16, 0.3)]), vec![None]);
    assert_eq!(t.update(&[at(17, 0.9)]), vec![Some(1)]);
    assert_eq!(t.len(), 1);
}

#[test]
fn a_high_score_below_new_track_thresh_continues_but_does_not_start() {
    let mut t = tracker();
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.55, 0)]), vec![None]);
    assert!(t.is_empty());
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.65, 0)]), vec![None], "started, tentative");
    assert_eq!(t.update(&[det(2.0, 0.0, 50.0, 100.0, 0.55, 0)]), vec![Some(1)], "continued: confirmed");
    assert_eq!(t.update(&[det(4.0, 0.0, 50.0, 100.0, 0.55, 0)]), vec![Some(1)]);
}

#[test]
fn a_different_class_never_takes_over_an_id() {
    let mut t = tracker();
    let here = |class| det(100.0, 100.0, 50.0, 100.0, 0.9, class);
    for _ in 0..5 {
        assert_eq!(t.update(&[here(0)]), vec![Some(1)]);
    }
    // Same place, other class: a new track; the class-0 one is lost, not taken over.
    for i in 0..5 {
        assert_eq!(t.update(&[here(1)]), vec![if i == 0 { None } else { Some(2) }]);
    }
    assert_eq!(t.len(), 2);
    // Both at once, in either order.
    assert_eq!(t.update(&[here(1), here(0)]), vec![Some(2), Some(1)]);
    assert_eq!(t.update(&[here(0), here(1)]), vec![Some(1), Some(2)]);
}

#[test]
fn ids_are_never_reused() {
    let mut t = Tracker::new(TrackConfig { lost_buffer: 2, ..TrackConfig::default() });
    let mut seen = Vec::new();
    for round in 0..20 {
        let d = det(10.0 * round as f32, 0.0, 50.0, 100.0, 0.9, round % 3);
        for i in 0..3 {
            let ids = t.update(&[d]);
            // Confirmed at birth on the tracker's first update only; later on its second frame.
            assert_eq!(ids[0].is_none(), round > 0 && i == 0, "round {round} frame {i}");
            let Some(id) = ids[0] else { continue };
            if seen.last() != Some(&id) {
                assert!(!seen.contains(&id), "id {id} reused");
                seen.push(id);
            }
        }
        for _ in 0..3 {
            t.update(&[]);
        }
        assert!(t.is_empty());
    }
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>());
}

#[test]
fn a_one_frame_false_positive_does_not_linger() {
    let mut t = tracker();
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0)]), vec![Some(1)]);
    // Born after the first update: tentative (no id yet), removed when not seen again.
    let ids = t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0), det(500.0, 0.0, 50.0, 100.0, 0.9, 0)]);
    assert_eq!(ids, vec![Some(1), None], "a tentative track has no id");
    assert_eq!(t.len(), 2);
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0)]), vec![Some(1)]);
    assert_eq!(t.len(), 1, "the one-frame false positive is gone");
    // A tentative track seen again is confirmed, gets the next id (the false positive used
    // none up), and then survives a miss.
    let ids = t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0), det(300.0, 0.0, 50.0, 100.0, 0.9, 0)]);
    assert_eq!(ids, vec![Some(1), None]);
    let ids = t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0), det(301.0, 0.0, 50.0, 100.0, 0.9, 0)]);
    assert_eq!(ids, vec![Some(1), Some(2)], "confirmed on its second frame, with id 2");
    t.update(&[]);
    assert_eq!(t.len(), 2);
    assert_eq!(
        t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0), det(302.0, 0.0, 50.0, 100.0, 0.9, 0)]),
        vec![Some(1), Some(2)]
    );
}

#[test]
fn max_tracks_refuses_newcomers_and_keeps_the_strongest() {
    let mut t = Tracker::new(TrackConfig { max_tracks: 3, ..TrackConfig::default() });
    let dets: Vec<TrackInput> = [0.7, 0.9, 0.65, 0.8, 0.95]
        .iter()
        .enumerate()
        .map(|(i, &s)| det(100.0 * i as f32, 0.0, 50.0, 50.0, s, 0))
        .collect();
    let ids = t.update(&dets);
    assert_eq!(ids, vec![None, Some(2), None, Some(3), Some(1)]);
    assert_eq!(t.len(), 3);
    let ids = t.update(&dets);
    assert_eq!(ids, vec![None, Some(2), None, Some(3), Some(1)]);
    // Room again once a track dies.
    let mut t = Tracker::new(TrackConfig { max_tracks: 1, lost_buffer: 0, ..TrackConfig::default() });
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 50.0, 0.9, 0), det(500.0, 0.0, 50.0, 50.0, 0.8, 0)]), [Some(1), None]);
    assert_eq!(t.update(&[det(500.0, 0.0, 50.0, 50.0, 0.8, 0)]), [None]);
    assert_eq!(t.update(&[det(500.0, 0.0, 50.0, 50.0, 0.8, 0)]), [Some(2)]);
    let mut t = Tracker::new(TrackConfig { max_tracks: 0, ..TrackConfig::default() });
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 50.0, 0.9, 0)]), [None]);
}

#[test]
fn garbage_never_panics_nor_creates_or_moves_tracks() {
    let mut t = tracker();
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let garbage = [
        TrackInput { bbox: [nan, 0.0, 10.0, 10.0], score: 0.9, class_id: 0 },
        TrackInput { bbox: [0.0, 0.0, inf, 10.0], score: 0.9, class_id: 0 },
        TrackInput { bbox: [-f32::MAX, -f32::MAX, f32::MAX, f32::MAX], score: 0.9, class_id: 0 },
        TrackInput { bbox: [0.0, 0.0, 10.0, 10.0], score: nan, class_id: 0 },
        TrackInput { bbox: [0.0, 0.0, 10.0, 10.0], score: inf, class_id: 0 },
        TrackInput { bbox: [5.0, 5.0, 5.0, 10.0], score: 0.9, class_id: 0 },
        TrackInput { bbox: [10.0, 10.0, 0.0, 0.0], score: 0.9, class_id: 0 },
        TrackInput { bbox: [0.0, 0.0, 10.0, 10.0], score: 0.9, class_id: usize::MAX },
    ];
    let ids = t.update(&garbage);
    assert_eq!(&ids[..7], &[None; 7]);
    assert_eq!(ids[7], Some(1), "a huge class id is just a class");
    assert_eq!(t.len(), 1);
    let here = det(100.0, 100.0, 50.0, 100.0, 0.9, 0);
    for i in 0..3 {
        let mut input = garbage.to_vec();
        input.push(TrackInput { bbox: [100.0, 100.0, 150.0, nan], score: 0.9, class_id: 0 });
        input.push(here);
        let ids = t.update(&input);
        assert_eq!(ids[..7], [None; 7]);
        assert_eq!((ids[7], ids[8], ids[9]), (Some(1), None, if i == 0 { None } else { Some(2) }));
    }
    assert_eq!(t.len(), 2);
    // Nonsense configuration does not panic either.
    let mut t = Tracker::new(TrackConfig {
        track_thresh: nan,
        new_track_thresh: nan,
        match_iou: nan,
        low_thresh: nan,
        ..TrackConfig::default()
    });
    assert_eq!(t.update(&[here]), [None]);
}

#[test]
fn best_reading_is_the_majority_ties_to_the_higher_confidence() {
    let mut t = tracker();
    let id = t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0)])[0].unwrap();
    assert_eq!(t.best_reading(id), None);
    t.add_reading(id, "AB12", 0.6);
    t.add_reading(id, "A812", 0.99);
    assert_eq!(t.best_reading(id), Some("A812"), "1-1 tie: higher confidence");
    t.add_reading(id, "AB12", 0.7);
    assert_eq!(t.best_reading(id), Some("AB12"), "2-1: majority beats confidence");
    t.add_reading(id, "A812", 0.5);
    assert_eq!(t.best_reading(id), Some("A812"), "2-2 tie: max confidence 0.99 > 0.7");
    // Ignored: unknown track, empty text, non-finite confidence.
    t.add_reading(id + 1, "X", 0.9);
    t.add_reading(id, "  ", 0.9);
    t.add_reading(id, "AB12", f32::NAN);
    assert_eq!(t.best_reading(id), Some("A812"));
    assert_eq!(t.best_reading(id + 1), None);
    assert_eq!(t.best_reading(0), None);
    // Readings die with the track.
    for _ in 0..31 {
        t.update(&[]);
    }
    assert!(t.is_empty());
    assert_eq!(t.best_reading(id), None);
}

#[test]
fn readings_are_bounded_and_evict_the_least_seen() {
    let mut t = tracker();
    let id = t.update(&[det(0.0, 0.0, 50.0, 100.0, 0.9, 0)])[0].unwrap();
    for _ in 0..5 {
        t.add_reading(id, "PLATE", 0.8);
    }
    t.add_reading(id, "OFTEN", 0.1);
    t.add_reading(id, "OFTEN", 0.1);
    for i in 0..100 {
        t.add_reading(id, &format!("noise{i}"), 0.99);
    }
    let readings = &t.track(id).unwrap().readings;
    assert_eq!(readings.len(), MAX_READINGS);
    assert!(readings.iter().any(|r| r.text == "PLATE" && r.count == 5));
    assert!(readings.iter().any(|r| r.text == "OFTEN" && r.count == 2));
    assert!(readings.iter().any(|r| r.text == "noise99"));
    assert_eq!(t.best_reading(id), Some("PLATE"));
}

#[test]
fn many_objects_keep_their_ids() {
    let mut t = tracker();
    let n = 100;
    let at = |i: usize, f: usize| {
        let (gx, gy) = ((i % 10) as f32, (i / 10) as f32);
        det(gx * 100.0 + 2.0 * f as f32, gy * 100.0 + f as f32, 40.0, 60.0, 0.9, i % 4)
    };
    let first = t.update(&(0..n).map(|i| at(i, 0)).collect::<Vec<_>>());
    for f in 1..30 {
        assert_eq!(t.update(&(0..n).map(|i| at(i, f)).collect::<Vec<_>>()), first);
    }
    assert_eq!(t.len(), n);
}

#[test]
fn a_removed_track_is_reported_once_with_its_final_reading() {
    let mut t = tracker();
    let here = det(100.0, 100.0, 50.0, 100.0, 0.9, 3);
    for _ in 0..3 {
        assert_eq!(t.update(&[here]), vec![Some(1)]);
    }
    t.add_reading(1, "KX 705", 0.8);
    t.add_reading(1, "KX 705", 0.97);
    t.add_reading(1, "KX 7O5", 0.99);
    for i in 0..30 {
        t.update(&[]);
        assert!(t.ended().is_empty(), "still lost, not ended, after {} misses", i + 1);
    }
    // The 31st miss is one more than lost_buffer (30): removed.
    t.update(&[]);
    let want = EndedTrack { track_id: 1, class_id: 3, text: Some("KX 705".into()), text_score: Some(0.97) };
    assert_eq!(t.ended(), [want]);
    t.update(&[]);
    assert!(t.ended().is_empty(), "reported by one update only");
}

#[test]
fn a_tentative_track_that_goes_is_never_reported() {
    let mut t = tracker();
    t.update(&[]);
    assert_eq!(t.update(&[det(0.0, 0.0, 50.0, 50.0, 0.9, 0)]), vec![None]);
    t.update(&[]);
    assert!(t.is_empty() && t.ended().is_empty());
}

#[test]
fn end_all_ends_the_confirmed_tracks_and_ids_go_on() {
    let mut t = tracker();
    let (a, b) = (det(0.0, 0.0, 50.0, 50.0, 0.9, 0), det(300.0, 0.0, 50.0, 50.0, 0.9, 1));
    assert_eq!(t.update(&[a, b]), vec![Some(1), Some(2)]);
    let c = det(600.0, 0.0, 50.0, 50.0, 0.9, 0);
    assert_eq!(t.update(&[a, b, c]), vec![Some(1), Some(2), None], "c is tentative");
    let ended: Vec<u64> = t.end_all().iter().map(|e| e.track_id).collect();
    assert_eq!(ended, [1, 2]);
    assert!(t.is_empty() && t.ended().is_empty());
    t.update(&[a]);
    assert_eq!(t.update(&[a]), vec![Some(3)], "a new track after the end, with a new id");
}

#[test]
fn predictions_follow_the_motion_between_detector_runs_and_never_invent_a_track() {
    // An object moving 6 px a frame, detected on every third frame only (`detect_every=3`):
    // the frames between are predicted, and the predictions follow it.
    let mut t = tracker();
    let truth = |f: usize| [10.0 + 6.0 * f as f32, 50.0, 50.0 + 6.0 * f as f32, 130.0];
    let mut worst_late = 1.0f32;
    for f in 0..60 {
        if f % 3 == 0 {
            let b = truth(f);
            assert_eq!(t.update(&[det(b[0], b[1], 40.0, 80.0, 0.8, 0)]), vec![Some(1)], "frame {f}");
            assert_eq!(t.peek().len(), 1);
            continue;
        }
        let peeked = t.peek();
        let p = t.predict();
        assert_eq!(p, peeked, "peek is the next step, without taking it");
        let [one] = p.as_slice() else { panic!("frame {f}: {p:?}") };
        assert_eq!((one.track_id, one.class_id, one.score), (1, 0, 0.8), "the track's last score and class");
        assert!(t.ended().is_empty());
        if f > 30 {
            worst_late = worst_late.min(iou(&one.bbox, &truth(f)));
        }
    }
    assert!(worst_late > 0.8, "once the velocity is learnt the predictions stay on the object: {worst_late}");
    // Predicted frames are no misses: the track does not die however many there are.
    let mut t = Tracker::new(TrackConfig { lost_buffer: 1, ..TrackConfig::default() });
    t.update(&[det(0.0, 0.0, 40.0, 80.0, 0.9, 0)]);
    for _ in 0..10 {
        assert_eq!(t.predict().len(), 1);
    }
    assert_eq!(t.update(&[det(0.0, 0.0, 40.0, 80.0, 0.9, 0)]), vec![Some(1)]);
    // A lost track moves but is not reported; a tentative one is not reported either.
    t.update(&[]);
    assert!(t.predict().is_empty(), "lost: not predicted");
    assert_eq!(t.len(), 1);
    let mut t = tracker();
    t.update(&[]);
    t.update(&[det(0.0, 0.0, 40.0, 80.0, 0.9, 0)]);
    assert!(t.predict().is_empty(), "tentative (no id yet): not predicted");
    // A track carried by predictions whose object is gone ends as any other: lost on the next
    // detector run that misses it, removed (and reported ended) after `lost_buffer` more.
    let mut t = Tracker::new(TrackConfig { lost_buffer: 2, ..TrackConfig::default() });
    t.update(&[det(0.0, 0.0, 40.0, 80.0, 0.9, 0)]);
    let mut ended_at = None;
    for run in 1..=5 {
        t.predict();
        t.predict();
        t.update(&[]);
        if !t.ended().is_empty() {
            assert_eq!(t.ended()[0].track_id, 1);
            ended_at = ended_at.or(Some(run));
        }
    }
    assert_eq!(ended_at, Some(3), "missed on runs 1, 2 and 3: removed on the third");
}
