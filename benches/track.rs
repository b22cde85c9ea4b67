//! The per-frame cost of the tracker: one `Tracker::update` with 1, 10 and 100 objects moving
//! steadily (each on its own, as a real scene mostly is), after a warm-up that confirms every
//! track, so the measured frames are the steady state the session pays on every frame.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
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

criterion_group!(benches, bench);
criterion_main!(benches);
