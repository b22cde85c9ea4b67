//! The per-frame cost of the tracker: one `Tracker::update` with 1, 10 and 100 objects moving
//! steadily (each on its own, as a real scene mostly is), after a warm-up that confirms every
//! track, so the measured frames are the steady state the session pays on every frame. And the
//! cost of a session's analytics on top (`analytics/frame_*`): one `Analytics::frame` with the
//! largest configuration allowed (32 zones of 64 points, 32 lines) over 1, 10 and 100 tracks.
//! And a frame the detector skips (`detect_every`, `track/predict_*`): `Tracker::predict` over
//! 1, 10 and 100 tracked objects, the model-free part of answering such a frame.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framewire::analytics::{Analytics, LineSpec, Observation, Spec, ZoneSpec};
use framewire::vision::track::{TrackConfig, TrackInput, Tracker};

/// Frame `f` of `n` objects on a 10-wide grid, each 40×60 px, moving 2 px right and 1 px down
/// per frame, in four classes.
fn frame(n: usize, f: usize) -> Vec<TrackInput> {
    (0..n)
        .map(|i| {
            let (x, y) = ((i % 10) as f32 * 120.0 + 2.0 * f as f32, (i / 10) as f32 * 100.0 + f as f32);
            TrackInput { bbox: [x, y, x + 40.0, y + 60.0], score: 0.9, class_id: i % 4 }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for n in [1, 10, 100] {
        // A cycle of frames long enough not to repeat within a sample; the tracker restarts
        // (outside the timing) when the objects would leave a 4K frame.
        let frames: Vec<Vec<TrackInput>> = (0..1000).map(|f| frame(n, f)).collect();
        c.bench_function(&format!("track/update_{n}"), |b| {
            let mut tracker = Tracker::new(TrackConfig::default());
            let mut f = 0;
            b.iter(|| {
                if f == frames.len() {
                    tracker = Tracker::new(TrackConfig::default());
                    f = 0;
                }
                let ids = tracker.update(black_box(&frames[f]));
                f += 1;
                ids
            })
        });
    }
}

/// A frame the detector skipped: every track moves one step (`Tracker::predict`), after the
/// tracks were confirmed and their speeds learnt; the tracker is reset (outside the timing)
/// every 1,000 steps so the boxes stay on a 4K frame.
fn bench_predict(c: &mut Criterion) {
    for n in [1, 10, 100] {
        let warm = |t: &mut Tracker| (0..10).for_each(|f| drop(t.update(&frame(n, f))));
        c.bench_function(&format!("track/predict_{n}"), |b| {
            let mut tracker = Tracker::new(TrackConfig::default());
            warm(&mut tracker);
            let mut steps = 0;
            b.iter(|| {
                if steps == 1000 {
                    tracker = Tracker::new(TrackConfig::default());
                    warm(&mut tracker);
                    steps = 0;
                }
                steps += 1;
                tracker.predict()
            })
        });
    }
}

/// The largest configuration: 32 zones, each a 64-gon of radius 90 px on an 8 × 4 grid over
/// 1920 × 1080, and 32 lines, 8 × 4 vertical segments of 100 px between them.
fn largest_spec() -> Spec {
    let zones = (0..32)
        .map(|i| {
            let (cx, cy) = (120.0 + 240.0 * (i % 8) as f64, 135.0 + 270.0 * (i / 8) as f64);
            let polygon = (0..64)
                .map(|k| {
                    let a = k as f64 * std::f64::consts::TAU / 64.0;
                    [cx + 90.0 * a.cos(), cy + 90.0 * a.sin()]
                })
                .collect();
            ZoneSpec { name: format!("zone{i}"), polygon, classes: None, inertia: 2, loiter_s: Some(30.0) }
        })
        .collect();
    let lines = (0..32)
        .map(|i| {
            let (x, y) = (240.0 * (i % 8) as f64, 85.0 + 270.0 * (i / 8) as f64);
            LineSpec { name: format!("line{i}"), points: [[x, y], [x, y + 100.0]], classes: None }
        })
        .collect();
    Spec { zones, lines, ..Spec::default() }
}

/// The largest configuration with every zone and line restricted to `names` (a client's
/// `classes`, up to 1,000 names).
fn largest_spec_with(names: &[String]) -> Spec {
    let mut spec = largest_spec();
    spec.zones.iter_mut().for_each(|z| z.classes = Some(names.to_vec()));
    spec.lines.iter_mut().for_each(|l| l.classes = Some(names.to_vec()));
    spec
}

fn bench_analytics(c: &mut Criterion) {
    let labels = ["person", "car", "truck", "bicycle"];
    let class_of = |l: &str| labels.iter().position(|k| *k == l);
    // 1,000 names (the most a `classes` list takes) in the worst order for a list: "person" 996
    // times, then the frame's four labels once each (every track counts).
    let thousand: Vec<String> = std::iter::repeat_n(labels[0], 996).chain(labels).map(String::from).collect();
    let cases = [(1, None), (10, None), (100, None), (100, Some(&thousand))];
    for (n, names) in cases {
        let frames: Vec<Vec<TrackInput>> = (0..1000).map(|f| frame(n, f)).collect();
        let spec = || names.map_or_else(largest_spec, |names| largest_spec_with(names));
        let name = match names {
            None => format!("analytics/frame_32z_32l_{n}"),
            Some(names) => format!("analytics/frame_32z_32l_{n}_classes_{}", names.len()),
        };
        c.bench_function(&name, |b| {
            let mut analytics = Analytics::new(spec(), &class_of);
            let mut f = 0;
            b.iter(|| {
                if f == frames.len() {
                    analytics = Analytics::new(spec(), &class_of);
                    f = 0;
                }
                let seen: Vec<Observation<'_>> = frames[f]
                    .iter()
                    .enumerate()
                    .map(|(i, d)| Observation {
                        track_id: i as u64 + 1,
                        class_id: d.class_id,
                        label: labels[d.class_id],
                        bbox: d.bbox,
                    })
                    .collect();
                let events = analytics.frame(f as u64, f as u64 * 33, black_box(&seen), &[]);
                f += 1;
                events
            })
        });
    }
}

criterion_group!(benches, bench, bench_predict, bench_analytics);
criterion_main!(benches);
