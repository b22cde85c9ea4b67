//! Loopback round trip: a real server on port 0, a real WebSocket client, one 640×480 frame at
//! a time (send, wait for its result), for the `detect` and `detect_ocr` pipelines. Compare with
//! `detect/pipeline_*_640x480` (the same work in process) for the server's own overhead. Per
//! engine (see `support/engines.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use framewire::config::Config;
use framewire::server::Server;
use framewire::vision::runtime::EngineKind;
use tungstenite::Message;

#[path = "support/engines.rs"]
mod engines;

fn bench(c: &mut Criterion) {
    engines::each_engine(c, "e2e", 20, bench_engine);
}

fn bench_engine(g: &mut engines::Group<'_>, suffix: &str, kind: EngineKind) {
    let mut config = Config::defaults("127.0.0.1:0".parse().expect("addr"));
    config.models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    config.engine = kind;
    let scheduler = Arc::new(framewire::build_scheduler(&config).expect("models load"));
    let server = Server::bind(config, scheduler).expect("bind");
    let handle = server.handle().expect("handle");
    let thread = std::thread::spawn(move || server.run());
    let frame = include_bytes!("../tests/fixtures/photo_cat_640x480.jpg").to_vec();
    for pipeline in ["detect", "detect_ocr"] {
        let url = format!("ws://{}/ws/video/stream?pipeline={pipeline}", handle.local_addr());
        let (mut ws, _) = tungstenite::connect(url).expect("connect");
        let _hello = ws.read().expect("session_started");
        g.bench_function(format!("loopback_round_trip_{pipeline}_640x480{suffix}"), |b| {
            b.iter(|| {
                ws.send(Message::Binary(frame.clone())).expect("send");
                match ws.read().expect("result") {
                    Message::Text(t) => assert!(t.starts_with(r#"{"type":"result""#), "{t}"),
                    m => panic!("{m:?}"),
                }
            })
        });
    }
    handle.shutdown();
    let _ = thread.join();
}

criterion_group!(benches, bench);
criterion_main!(benches);
