//! Tracking over the wire (`?track=true`), on real frames: `tests/fixtures/track/` has a cat
//! and an astronaut crossing a real background (`make_track_frames.py` there), with the cat
//! hidden in two frames. Frames are sent one at a time (closed loop), so every frame is seen
//! whatever the machine's speed; a second session sends every other frame (the gaps a busy
//! server's drops make).

use std::collections::HashMap;

use crate::protocol::{Detection, Msg};
use crate::support::{fixture, TestServer};

fn frames() -> Vec<Vec<u8>> {
    (0..14).map(|i| fixture(&format!("track/{i:03}.jpg"))).collect()
}

fn detections(m: Msg) -> Vec<Detection> {
    match m {
        Msg::Result { result, .. } => result.detections.expect("detections"),
        m => panic!("expected a result, got {m:?}"),
    }
}

/// The track ids a label got over the frames (frame index, id); detections no track took
/// (below `--track-new-thresh`, or a spurious one-frame box) have none.
fn ids_of(all: &[Vec<Detection>], label: &str) -> Vec<(usize, u64)> {
    all.iter()
        .enumerate()
        .flat_map(|(i, d)| d.iter().filter(|d| d.label == label).filter_map(move |d| Some((i, d.track_id?))))
        .collect()
}

#[test]
fn objects_keep_their_ids_across_frames_and_gaps() {
    let server = TestServer::start();
    let frames = frames();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect&track=true");
    let all: Vec<Vec<Detection>> = frames.iter().map(|f| detections(c.round_trip(f))).collect();
    // The astronaut is found in every frame and keeps one id all along.
    let person = ids_of(&all, "person");
    let seen: Vec<Vec<(&str, f32, Option<u64>)>> =
        all.iter().map(|d| d.iter().map(|d| (d.label.as_str(), d.score, d.track_id)).collect()).collect();
    assert!(person.len() >= 12, "{seen:?}");
    let mut per_frame: HashMap<usize, Vec<u64>> = HashMap::new();
    for (i, id) in &person {
        per_frame.entry(*i).or_default().push(*id);
    }
    let main_id = person[0].1;
    assert!(per_frame.values().all(|ids| ids.contains(&main_id)), "{seen:?}");
    // The cat, once clearly seen after its occlusion, keeps one id to the end, never another
    // object's.
    let cat: Vec<u64> = ids_of(&all, "cat").into_iter().filter(|(i, _)| *i >= 9).map(|(_, id)| id).collect();
    assert!(cat.len() >= 4 && cat.iter().all(|&id| id == cat[0]), "cat ids from frame 9: {cat:?} in {seen:?}");
    assert_ne!(cat[0], main_id);
    // Ids are never reused: every id seen is unique to one label.
    let mut owner: HashMap<u64, &str> = HashMap::new();
    for d in all.iter().flatten() {
        let Some(id) = d.track_id else { continue };
        assert_eq!(*owner.entry(id).or_insert(&d.label), d.label.as_str(), "id {id} changed label");
    }

    // Every other frame (as drops would leave it): the astronaut still keeps one id.
    let mut c = server.client_at("/ws/video/stream?pipeline=detect&track=true");
    let sparse: Vec<Vec<Detection>> = frames.iter().step_by(2).map(|f| detections(c.round_trip(f))).collect();
    let person = ids_of(&sparse, "person");
    assert!(person.len() >= 6 && person.iter().all(|&(_, id)| id == person[0].1), "{person:?}");
    assert_eq!(person[0].1, 1, "ids are per session: the new session starts at 1");
}

#[test]
fn without_tracking_there_are_no_track_ids() {
    let server = TestServer::start();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    let d = detections(c.round_trip(&fixture("track/000.jpg")));
    assert!(!d.is_empty() && d.iter().all(|d| d.track_id.is_none() && d.track_text.is_none()));
    let (code, _) =
        crate::support::http_status(&server, &crate::support::upgrade_request("/ws/video/stream?track=maybe"));
    assert_eq!(code, 400, "a bad track value is refused before the upgrade");
}

#[test]
fn session_started_says_whether_tracking_is_on() {
    let server = TestServer::start();
    for (query, want) in [("?track=true", true), ("?track=false", false), ("", false)] {
        let (mut ws, _) = tungstenite::connect(server.url(&format!("/ws/video/stream{query}"))).unwrap();
        let tungstenite::Message::Text(t) = ws.read().unwrap() else { panic!() };
        match serde_json::from_str::<Msg>(&t).unwrap() {
            Msg::SessionStarted { track, .. } => assert_eq!(track, want, "{query}"),
            m => panic!("{m:?}"),
        }
    }
}

#[test]
fn tracking_reports_exactly_the_detections_an_untracked_session_does() {
    // The tracker also sees the detections between --track-low-thresh and min_score; the
    // client sees none of them: the same boxes, labels and scores as without tracking.
    let server = TestServer::start();
    let frames = frames();
    let mut tracked = server.client_at("/ws/video/stream?pipeline=detect&track=true&min_score=0.5");
    let mut plain = server.client_at("/ws/video/stream?pipeline=detect&min_score=0.5");
    for f in &frames {
        let key = |d: &Detection| (d.label.clone(), d.score.to_bits(), d.bbox.map(f32::to_bits));
        let a: Vec<_> = detections(tracked.round_trip(f)).iter().map(key).collect();
        let b: Vec<_> = detections(plain.round_trip(f)).iter().map(key).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|(_, s, _)| f32::from_bits(*s) >= 0.5), "above min_score (0.5 after rounding)");
    }
}
