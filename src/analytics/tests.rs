//! The analytics over hand-made tracks: crossings, inertia, dwell, loitering, ends, event order
//! and every refusal of a bad configuration. No model, no socket.

use super::*;

fn zone(name: &str, polygon: &[Point]) -> ZoneSpec {
    ZoneSpec { name: name.into(), polygon: polygon.to_vec(), classes: None, inertia: DEFAULT_INERTIA, loiter_s: None }
}

fn line(name: &str, a: Point, b: Point) -> LineSpec {
    LineSpec { name: name.into(), points: [a, b], classes: None }
}

/// The test's labels: their class ids are their places here.
const LABELS: [&str; 5] = ["person", "car", "cat", "dog", "truck"];

fn class_of(label: &str) -> Option<usize> {
    LABELS.iter().position(|l| *l == label)
}

fn analytics(spec: Spec) -> Analytics {
    Analytics::new(spec, &class_of)
}

/// A 20×20 box whose bottom centre (the default anchor) is at `(x, y)`.
fn at(track_id: u64, label: &'static str, x: f32, y: f32) -> Observation<'static> {
    let class_id = class_of(label).expect("a test label");
    Observation { track_id, class_id, label, bbox: [x - 10.0, y - 20.0, x + 10.0, y] }
}

/// Frame `i` arrives at `i * 33` ms.
fn step(a: &mut Analytics, i: u64, seen: &[Observation<'static>]) -> Vec<Event> {
    a.frame(i, i * 33, seen, &[])
}

fn crossings(events: &[Event]) -> Vec<(u64, Direction)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LineCrossed { frame_index, direction, .. } => Some((*frame_index, *direction)),
            _ => None,
        })
        .collect()
}

fn gate() -> Analytics {
    // A horizontal line from (100, 200) to (300, 200), drawn left to right.
    analytics(Spec { lines: vec![line("gate", [100.0, 200.0], [300.0, 200.0])], ..Spec::default() })
}

#[test]
fn moving_down_across_a_line_drawn_left_to_right_is_in_and_up_is_out() {
    let mut a = gate();
    let mut all = Vec::new();
    for (i, y) in [150.0, 180.0, 220.0, 260.0, 210.0, 190.0].into_iter().enumerate() {
        all.extend(step(&mut a, i as u64, &[at(1, "car", 200.0, y)]));
    }
    assert_eq!(crossings(&all), vec![(2, Direction::In), (5, Direction::Out)]);
    assert_eq!(a.line_counts(), Named(vec![("gate".into(), LineCount { r#in: 1, out: 1 })]));
}

#[test]
fn passing_beside_the_segment_crosses_nothing() {
    let mut a = gate();
    let mut all = Vec::new();
    for (i, y) in [150.0, 250.0, 150.0].into_iter().enumerate() {
        // x = 350: beyond the line's end, across its infinite extension only.
        all.extend(step(&mut a, i as u64, &[at(1, "car", 350.0, y)]));
    }
    assert!(crossings(&all).is_empty(), "{all:?}");
}

#[test]
fn standing_on_the_line_counts_nothing_and_stepping_off_to_the_other_side_counts_once() {
    let mut a = gate();
    let mut all = Vec::new();
    let ys = [150.0, 200.0, 200.0, 200.0, 150.0, 200.0, 200.0, 250.0];
    for (i, y) in ys.into_iter().enumerate() {
        all.extend(step(&mut a, i as u64, &[at(1, "car", 200.0, y)]));
    }
    // Back to the side it came from (frame 4): nothing; then across, by way of the line: once.
    assert_eq!(crossings(&all), vec![(7, Direction::In)]);
}

#[test]
fn a_track_hidden_while_it_crosses_is_counted_when_it_comes_back_on_the_other_side() {
    let mut a = gate();
    let mut all = step(&mut a, 0, &[at(1, "car", 200.0, 150.0)]);
    for i in 1..6 {
        all.extend(step(&mut a, i, &[]));
    }
    all.extend(step(&mut a, 6, &[at(1, "car", 210.0, 260.0)]));
    assert_eq!(crossings(&all), vec![(6, Direction::In)]);
}

fn bay() -> Analytics {
    let square = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]];
    analytics(Spec { zones: vec![zone("bay", &square)], ..Spec::default() })
}

fn zone_events(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ZoneEntered { frame_index, .. } => Some(format!("entered@{frame_index}")),
            Event::ZoneExited { frame_index, dwell, .. } => {
                Some(format!("exited@{frame_index} {}f {}ms", dwell.frames, dwell.ms))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_box_jittering_on_an_edge_is_not_counted_twice() {
    let mut a = bay();
    let mut all = Vec::new();
    // In, out, in, out... one frame each: with inertia 2 never counted.
    for i in 0..10u64 {
        let x = if i % 2 == 0 { 305.0 } else { 295.0 };
        all.extend(step(&mut a, i, &[at(1, "car", x, 200.0)]));
    }
    assert!(zone_events(&all).is_empty(), "{all:?}");
    assert_eq!(a.zone_counts().0[0].1.count, 0);
}

#[test]
fn entering_and_leaving_a_zone_counts_after_inertia_with_its_dwell() {
    let mut a = bay();
    let mut all = Vec::new();
    let xs = [50.0, 150.0, 160.0, 170.0, 180.0, 350.0, 360.0, 370.0];
    for (i, x) in xs.into_iter().enumerate() {
        all.extend(step(&mut a, i as u64, &[at(1, "car", x, 200.0)]));
        if i == 3 {
            let (name, count) = &a.zone_counts().0[0];
            assert_eq!((name.as_str(), count.count, count.by_label.get("car")), ("bay", 1, Some(&1)));
        }
    }
    // Inside from frame 1, counted at frame 2; outside from frame 5, counted at 6.
    assert_eq!(zone_events(&all), vec!["entered@2".to_string(), "exited@6 4f 132ms".to_string()]);
    assert_eq!(a.zone_counts().0[0].1.count, 0);
}

#[test]
fn loitering_is_sent_once_a_visit_when_the_dwell_passes_loiter_s() {
    let mut a = bay();
    let mut spec = a.spec().clone();
    spec.zones[0].loiter_s = Some(1.0);
    a.reconfigure(spec, &class_of);
    let mut loiter = Vec::new();
    for i in 0..100u64 {
        for e in step(&mut a, i, &[at(7, "person", 200.0, 200.0)]) {
            if let Event::Loitering { frame_index, dwell_ms, .. } = e {
                loiter.push((frame_index, dwell_ms));
            }
        }
    }
    // Entered at frame 1 (33 ms); 1000 ms later is frame 32 (1056 ms), 1023 ms of dwell.
    assert_eq!(loiter, vec![(32, 1023)]);
}

#[test]
fn a_track_that_ends_inside_a_zone_exits_it_then_ends_with_its_story() {
    let square = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]];
    let spec = Spec {
        zones: vec![zone("bay", &square)],
        lines: vec![line("gate", [0.0, 150.0], [400.0, 150.0])],
        ..Spec::default()
    };
    let mut a = analytics(spec);
    let mut all = Vec::new();
    for (i, y) in [120.0, 140.0, 160.0, 200.0, 220.0].into_iter().enumerate() {
        all.extend(step(&mut a, i as u64, &[at(4, "car", 200.0, y)]));
    }
    let ended = Ended { track_id: 4, text: Some("KX 705".into()), text_score: Some(0.97) };
    let last = a.frame(5, 165, &[], &[ended]);
    let dwell = Dwell { frames: 3, ms: 99 };
    assert_eq!(
        last,
        vec![
            Event::ZoneExited { zone: "bay".into(), track_id: 4, label: "car".into(), frame_index: 4, dwell },
            Event::TrackEnded {
                track_id: 4,
                label: "car".into(),
                first_frame_index: 0,
                last_frame_index: 4,
                frames: 5,
                text: Some("KX 705".into()),
                text_score: Some(0.97),
                zones: Named(vec![("bay".into(), dwell)]),
                lines: Named(vec![("gate".into(), Direction::In)]),
            },
        ]
    );
    assert_eq!(a.tracks(), 0);
    assert_eq!(a.zone_counts().0[0].1.count, 0);
    assert_eq!(a.line_counts().0[0].1.r#in, 1, "totals outlive the track");
}

#[test]
fn a_frames_events_come_track_by_track_then_loitering_then_ends() {
    let square = [[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]];
    let mut z = zone("door", &square);
    z.inertia = 1;
    z.loiter_s = Some(0.001);
    let spec = Spec { zones: vec![z], lines: vec![line("gate", [0.0, 60.0], [100.0, 60.0])], ..Spec::default() };
    let mut a = analytics(spec);
    step(&mut a, 0, &[at(2, "person", 50.0, 50.0), at(9, "dog", 150.0, 50.0)]);
    let ended = Ended { track_id: 9, text: None, text_score: None };
    let events = a.frame(1, 33, &[at(3, "cat", 50.0, 50.0), at(2, "person", 50.0, 70.0)], &[ended]);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::TrackStarted { track_id, .. } => format!("started {track_id}"),
            Event::ZoneEntered { track_id, .. } => format!("entered {track_id}"),
            Event::ZoneExited { track_id, .. } => format!("exited {track_id}"),
            Event::LineCrossed { track_id, .. } => format!("crossed {track_id}"),
            Event::Loitering { track_id, .. } => format!("loitering {track_id}"),
            Event::TrackEnded { track_id, .. } => format!("ended {track_id}"),
        })
        .collect();
    // Track 2 (entered at frame 0) crosses; track 3 starts and enters; track 2 has now dwelt
    // 33 ms (loitering; track 3 has dwelt 0 ms); track 9 ends, never having been inside.
    assert_eq!(kinds, ["crossed 2", "started 3", "entered 3", "loitering 2", "ended 9"]);
}

#[test]
fn classes_restrict_a_zone_and_a_line_to_their_labels() {
    let square = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]];
    let mut z = zone("bay", &square);
    z.classes = Some(vec!["car".into()]);
    let mut l = line("gate", [0.0, 150.0], [400.0, 150.0]);
    l.classes = Some(vec!["car".into()]);
    let mut a = analytics(Spec { zones: vec![z], lines: vec![l], ..Spec::default() });
    for (i, y) in [120.0, 200.0, 210.0].into_iter().enumerate() {
        step(&mut a, i as u64, &[at(1, "car", 200.0, y), at(2, "person", 150.0, y)]);
    }
    let counts = &a.zone_counts().0[0].1;
    assert_eq!((counts.count, counts.by_label.get("person")), (1, None));
    assert_eq!(a.line_counts().0[0].1.r#in, 1);
}

#[test]
fn the_center_anchor_is_the_boxs_centre() {
    let mut a = gate();
    let mut spec = a.spec().clone();
    spec.anchor = Anchor::Center;
    a.reconfigure(spec, &class_of);
    // The bottom centre goes 205 → 215 (below the line both times), the centre 195 → 205
    // (across it): a crossing with the centre anchor only.
    let mut all = step(&mut a, 0, &[at(1, "car", 200.0, 205.0)]);
    all.extend(step(&mut a, 1, &[at(1, "car", 200.0, 215.0)]));
    assert_eq!(crossings(&all), vec![(1, Direction::In)]);
    let mut b = gate();
    let mut all = step(&mut b, 0, &[at(1, "car", 200.0, 205.0)]);
    all.extend(step(&mut b, 1, &[at(1, "car", 200.0, 215.0)]));
    assert!(crossings(&all).is_empty(), "the default anchor stayed below");
    assert_eq!(Anchor::Center.of([0.0, 0.0, 10.0, 20.0]), [5.0, 10.0]);
    assert_eq!(Anchor::BottomCenter.of([0.0, 0.0, 10.0, 20.0]), [5.0, 20.0]);
}

#[test]
fn reconfiguring_keeps_the_totals_of_a_line_that_did_not_change() {
    let mut a = gate();
    for (i, y) in [150.0, 250.0].into_iter().enumerate() {
        step(&mut a, i as u64, &[at(1, "car", 200.0, y)]);
    }
    let mut spec = a.spec().clone();
    spec.lines.push(line("exit", [0.0, 0.0], [10.0, 0.0]));
    a.reconfigure(spec.clone(), &class_of);
    let counts = vec![("gate".into(), LineCount { r#in: 1, out: 0 }), ("exit".into(), LineCount::default())];
    assert_eq!(a.line_counts(), Named(counts));
    spec.lines[0].points[1] = [310.0, 200.0];
    a.reconfigure(spec, &class_of);
    assert_eq!(a.line_counts().0[0].1, LineCount::default(), "a moved line starts from zero");
}

/// `bay` with a track standing inside it (counted at frame 1), then a configure: the
/// configuration `change` makes of `bay`'s, applied after frame 3.
fn reconfigured_after_standing_in_the_bay(change: impl Fn(&mut Spec)) -> (Analytics, Vec<Event>) {
    let mut a = bay();
    for i in 0..4 {
        step(&mut a, i, &[at(1, "car", 200.0, 200.0)]);
    }
    let mut spec = a.spec().clone();
    change(&mut spec);
    let events = a.reconfigure(spec, &class_of);
    (a, events)
}

#[test]
fn adding_a_zone_leaves_a_track_in_an_unchanged_zone_where_it_was() {
    let elsewhere = [[400.0, 100.0], [500.0, 100.0], [500.0, 200.0], [400.0, 200.0]];
    let (mut a, events) = reconfigured_after_standing_in_the_bay(|s| s.zones.push(zone("door", &elsewhere)));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(a.zone_counts().0[0].1.count, 1, "bay's count did not move");
    let mut all = Vec::new();
    for i in 4..8 {
        all.extend(step(&mut a, i, &[at(1, "car", 200.0, 200.0)]));
    }
    assert!(zone_events(&all).is_empty(), "no second entry: {all:?}");
    all.extend(step(&mut a, 8, &[at(1, "car", 350.0, 200.0)]));
    all.extend(step(&mut a, 9, &[at(1, "car", 350.0, 200.0)]));
    // The dwell runs from the entry before the configure (frame 1).
    assert_eq!(zone_events(&all), vec!["exited@9 8f 264ms".to_string()]);
}

#[test]
fn an_unchanged_zone_keeps_the_inertia_count_and_the_loitering_told() {
    let square = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]];
    let mut z = zone("bay", &square);
    z.inertia = 3;
    z.loiter_s = Some(0.05);
    let mut a = analytics(Spec { zones: vec![z], ..Spec::default() });
    let mut all = Vec::new();
    // Two observations inside (inertia 3: not counted yet), then a configure that adds a line.
    for i in 0..2 {
        all.extend(step(&mut a, i, &[at(1, "car", 200.0, 200.0)]));
    }
    let mut spec = a.spec().clone();
    spec.lines.push(line("gate", [0.0, 400.0], [10.0, 400.0]));
    assert!(a.reconfigure(spec.clone(), &class_of).is_empty());
    all.extend(step(&mut a, 2, &[at(1, "car", 200.0, 200.0)]));
    assert_eq!(zone_events(&all), vec!["entered@2".to_string()], "the third in a row counts");
    for i in 3..6 {
        all.extend(step(&mut a, i, &[at(1, "car", 200.0, 200.0)]));
    }
    let told = |all: &[Event]| all.iter().filter(|e| matches!(e, Event::Loitering { .. })).count();
    assert_eq!(told(&all), 1);
    spec.lines.push(line("exit", [0.0, 450.0], [10.0, 450.0]));
    assert!(a.reconfigure(spec, &class_of).is_empty());
    for i in 6..9 {
        all.extend(step(&mut a, i, &[at(1, "car", 200.0, 200.0)]));
    }
    assert_eq!(told(&all), 1, "loitering is told once a visit, configure or not");
}

#[test]
fn a_changed_or_removed_zone_lets_each_track_inside_exit_first() {
    // Moved: the track inside exits (its dwell so far), then counts as entering the new zone
    // after inertia, as if the zone had just been drawn.
    let (mut a, events) = reconfigured_after_standing_in_the_bay(|s| s.zones[0].polygon[2] = [310.0, 300.0]);
    assert_eq!(zone_events(&events), vec!["exited@3 2f 66ms".to_string()]);
    assert_eq!(a.zone_counts().0[0].1.count, 0);
    let mut all = Vec::new();
    for i in 4..6 {
        all.extend(step(&mut a, i, &[at(1, "car", 200.0, 200.0)]));
    }
    assert_eq!(zone_events(&all), vec!["entered@5".to_string()]);
    // Removed: the exit, and nothing of the zone is left.
    let (a, events) = reconfigured_after_standing_in_the_bay(|s| s.zones.clear());
    assert_eq!(zone_events(&events), vec!["exited@3 2f 66ms".to_string()]);
    assert!(a.zone_counts().0.is_empty());
    // Renamed, restricted to other classes, another inertia: each a changed zone.
    for change in [
        &(|s: &mut Spec| s.zones[0].name = "lot".into()) as &dyn Fn(&mut Spec),
        &|s: &mut Spec| s.zones[0].classes = Some(vec!["truck".into()]),
        &|s: &mut Spec| s.zones[0].inertia = 5,
        &|s: &mut Spec| s.anchor = Anchor::Center,
    ] {
        let (_, events) = reconfigured_after_standing_in_the_bay(change);
        assert_eq!(zone_events(&events).len(), 1, "{events:?}");
    }
}

#[test]
fn an_unchanged_line_counts_a_crossing_that_spans_the_configure_and_a_changed_one_starts_anew() {
    let above = |a: &mut Analytics, i| step(a, i, &[at(1, "car", 200.0, 150.0)]);
    let below = |a: &mut Analytics, i| step(a, i, &[at(1, "car", 200.0, 250.0)]);
    // Unchanged (a zone added beside it): the side before the configure still counts.
    let mut a = gate();
    above(&mut a, 0);
    let mut spec = a.spec().clone();
    spec.zones.push(zone("far", &[[500.0, 500.0], [600.0, 500.0], [600.0, 600.0]]));
    a.reconfigure(spec, &class_of);
    assert_eq!(crossings(&below(&mut a, 1)), vec![(1, Direction::In)]);
    assert_eq!(a.line_counts().0[0].1.r#in, 1);
    // Changed (its classes): every track's side starts anew, and its totals.
    let mut spec = a.spec().clone();
    spec.lines[0].classes = Some(vec!["car".into(), "truck".into()]);
    a.reconfigure(spec, &class_of);
    assert_eq!(a.line_counts().0[0].1, LineCount::default());
    assert!(crossings(&above(&mut a, 2)).is_empty(), "the side before the configure is forgotten");
    assert_eq!(crossings(&below(&mut a, 3)), vec![(3, Direction::In)]);
}

#[test]
fn classes_are_tested_by_id_whatever_their_names_repeat() {
    let square = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]];
    let mut z = zone("bay", &square);
    // 1,000 names, two classes: the set holds two ids.
    z.classes = Some((0..1000).map(|i| if i % 2 == 0 { "car" } else { "truck" }.to_string()).collect());
    let mut a = analytics(Spec { zones: vec![z], ..Spec::default() });
    for i in 0..3 {
        step(&mut a, i, &[at(1, "car", 200.0, 200.0), at(2, "person", 200.0, 200.0), at(3, "truck", 200.0, 200.0)]);
    }
    let c = &a.zone_counts().0[0].1;
    assert_eq!((c.count, c.by_label.get("car"), c.by_label.get("truck")), (2, Some(&1), Some(&1)));
}

fn labels() -> Vec<String> {
    ["person", "car"].map(String::from).to_vec()
}

fn refused(spec: Spec) -> String {
    spec.validate(|l| labels().iter().any(|k| k == l), 16_384).expect_err("refused").to_string()
}

#[test]
fn every_bad_configuration_is_refused_with_its_field() {
    let square = vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
    let good = Spec {
        zones: vec![zone("bay", &square)],
        lines: vec![line("gate", [0.0, 0.0], [5.0, 5.0])],
        ..Spec::default()
    };
    assert_eq!(good.validate(|l| labels().iter().any(|k| k == l), 16_384), Ok(()));
    let with_zone = |f: &dyn Fn(&mut ZoneSpec)| {
        let mut s = good.clone();
        f(&mut s.zones[0]);
        refused(s)
    };
    let with_line = |f: &dyn Fn(&mut LineSpec)| {
        let mut s = good.clone();
        f(&mut s.lines[0]);
        refused(s)
    };
    assert_eq!(with_zone(&|z| z.polygon.truncate(2)), "zones[0].polygon: 3 to 64 points");
    assert_eq!(with_zone(&|z| z.polygon = vec![[0.0, 0.0]; 65]), "zones[0].polygon: 3 to 64 points");
    assert_eq!(with_zone(&|z| z.polygon.swap(1, 2)), "zones[0].polygon: the polygon crosses or touches itself");
    assert_eq!(
        with_zone(&|z| z.polygon = vec![[0.0, 0.0], [5.0, 5.0], [10.0, 10.0]]),
        "zones[0].polygon: the polygon crosses or touches itself"
    );
    assert!(with_zone(&|z| z.polygon[0][0] = f64::NAN).starts_with("zones[0].polygon: coordinates must be finite"));
    assert!(with_zone(&|z| z.polygon[0][1] = 70_000.0).contains("within ±65536 px"));
    assert_eq!(with_zone(&|z| z.inertia = 0), "zones[0].inertia: 1 to 1000 frames");
    assert!(with_zone(&|z| z.loiter_s = Some(-1.0)).starts_with("zones[0].loiter_s:"));
    assert!(with_zone(&|z| z.loiter_s = Some(f64::INFINITY)).starts_with("zones[0].loiter_s:"));
    assert_eq!(with_zone(&|z| z.classes = Some(vec!["unicorn".into()])), "zones[0].classes: unknown label \"unicorn\"");
    assert!(with_zone(&|z| z.classes = Some(vec![])).starts_with("zones[0].classes: an empty list"));
    assert_eq!(with_zone(&|z| z.name = "x".repeat(65)), "zones[0].name: 1 to 64 characters");
    assert_eq!(with_zone(&|z| z.name = String::new()), "zones[0].name: 1 to 64 characters");
    assert_eq!(with_zone(&|z| z.name = "a\nb".into()), "zones[0].name: no control characters");
    assert_eq!(with_line(&|l| l.points[1] = l.points[0]), "lines[0].points: the line has zero length");
    assert!(with_line(&|l| l.points[0][0] = f64::INFINITY).starts_with("lines[0].points: coordinates"));
    assert_eq!(with_line(&|l| l.classes = Some(vec!["cat".into()])), "lines[0].classes: unknown label \"cat\"");
    let mut twice = good.clone();
    twice.zones.push(twice.zones[0].clone());
    assert_eq!(refused(twice), "zones[1].name: the name \"bay\" is used twice");
    let mut twice = good.clone();
    twice.lines.push(twice.lines[0].clone());
    assert_eq!(refused(twice), "lines[1].name: the name \"gate\" is used twice");
    let mut same_name = good.clone();
    same_name.lines[0].name = "bay".into();
    assert_eq!(
        same_name.validate(|l| labels().iter().any(|k| k == l), 16_384),
        Ok(()),
        "a zone and a line may share a name"
    );
    let mut many = good.clone();
    many.zones = (0..33).map(|i| zone(&format!("z{i}"), &square)).collect();
    assert_eq!(refused(many), "zones: at most 32 zones");
    let mut many = good.clone();
    many.lines = (0..33).map(|i| line(&format!("l{i}"), [0.0, 0.0], [1.0, 1.0])).collect();
    assert_eq!(refused(many), "lines: at most 32 lines");
}

#[test]
fn garbage_boxes_never_panic_and_never_count() {
    let mut a = gate();
    let nan = Observation { track_id: 1, class_id: 1, label: "car", bbox: [f32::NAN, 0.0, 1.0, f32::INFINITY] };
    for i in 0..3 {
        assert!(crossings(&step(&mut a, i, &[nan, nan])).is_empty());
    }
    assert_eq!(a.tracks(), 1, "one track, however often it is listed");
}
