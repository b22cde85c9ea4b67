//! Test helpers: one shared scheduler (the real SSD model, loaded once per test binary), servers
//! on port 0, a blocking WebSocket client that parses every message into the pinned protocol
//! types of `protocol.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use framewire::config::Config;
use framewire::scheduler::Scheduler;
use framewire::server::{Server, ServerHandle};
use framewire::vision::runtime::EngineKind;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::protocol::Msg;

pub mod fakes;

/// The repository's `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The test configuration: defaults, port 0, the repository's models, 2 pool threads, and
/// `detect` as the default pipeline (the plumbing tests need only the detector; OCR tests ask
/// for their pipeline, or use [`Config::defaults`]'s `detect_ocr`).
pub fn config() -> Config {
    let mut c = Config::defaults("127.0.0.1:0".parse().unwrap());
    c.models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    c.threads = 2;
    c.pipeline = framewire::protocol::PipelineKind::Detect;
    c
}

/// The real models on a scheduler (the default engine, tract), built once.
pub fn scheduler() -> Arc<Scheduler> {
    scheduler_on(EngineKind::Tract)
}

/// The engines the fidelity tests run on: tract, and ONNX Runtime when a library is given
/// (`FRAMEWIRE_ONNXRUNTIME_LIB` or `ORT_DYLIB_PATH`). With `FRAMEWIRE_REQUIRE_ONNXRUNTIME=1`
/// (CI) a missing library fails the test instead of leaving ONNX Runtime out.
pub fn engines() -> Vec<EngineKind> {
    let have = std::env::var_os("FRAMEWIRE_ONNXRUNTIME_LIB").is_some() || std::env::var_os("ORT_DYLIB_PATH").is_some();
    let required = std::env::var_os("FRAMEWIRE_REQUIRE_ONNXRUNTIME").is_some_and(|v| v == "1");
    assert!(have || !required, "FRAMEWIRE_REQUIRE_ONNXRUNTIME=1 but no FRAMEWIRE_ONNXRUNTIME_LIB / ORT_DYLIB_PATH");
    if !have {
        eprintln!("note: no ONNX Runtime library given; the engine tests run on tract only");
    }
    let mut v = vec![EngineKind::Tract];
    v.extend(have.then_some(EngineKind::OnnxRuntime));
    v
}

/// The test configuration on `engine`.
pub fn config_on(engine: EngineKind) -> Config {
    Config { engine, onnxruntime_lib: std::env::var_os("FRAMEWIRE_ONNXRUNTIME_LIB").map(PathBuf::from), ..config() }
}

/// The real models on `engine`, built once per engine.
pub fn scheduler_on(engine: EngineKind) -> Arc<Scheduler> {
    static TRACT: OnceLock<Arc<Scheduler>> = OnceLock::new();
    static ORT: OnceLock<Arc<Scheduler>> = OnceLock::new();
    let cell = match engine {
        EngineKind::Tract => &TRACT,
        EngineKind::OnnxRuntime => &ORT,
    };
    let build = || framewire::build_scheduler(&config_on(engine)).unwrap_or_else(|e| panic!("{engine:?}: {e}"));
    cell.get_or_init(|| Arc::new(build())).clone()
}

/// A running server.
pub struct TestServer {
    pub handle: ServerHandle,
    pub thread: Option<JoinHandle<std::io::Result<bool>>>,
}

impl TestServer {
    /// Start a server with `config` on the given scheduler.
    pub fn start_with(config: Config, scheduler: Arc<Scheduler>) -> TestServer {
        Self::run(Server::bind(config, scheduler).expect("bind"))
    }

    /// Run a bound server on its own thread (shut down and joined on drop).
    pub fn run(server: Server) -> TestServer {
        let handle = server.handle().unwrap();
        let thread = Some(std::thread::spawn(move || server.run()));
        TestServer { handle, thread }
    }

    /// A server with the test config and the real model.
    pub fn start() -> TestServer {
        Self::start_with(config(), scheduler())
    }

    /// A server with the test config and the real models on `engine`.
    pub fn start_on(engine: EngineKind) -> TestServer {
        Self::start_with(config_on(engine), scheduler_on(engine))
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.handle.local_addr())
    }

    /// Connect to the endpoint and read `session_started`.
    pub fn client(&self) -> Client {
        self.client_at("/ws/video/stream")
    }

    pub fn client_at(&self, path: &str) -> Client {
        let (ws, _) = tungstenite::connect(self.url(path)).expect("connect");
        let mut c = Client { ws };
        c.set_timeout(Duration::from_secs(30));
        match c.next() {
            Msg::SessionStarted { .. } => c,
            m => panic!("expected session_started, got {m:?}"),
        }
    }

    /// Wait (up to 30 s: the test machines are shared) until `cond` holds.
    pub fn wait_until(&self, what: &str, cond: impl Fn(&ServerHandle) -> bool) {
        let t = Instant::now();
        while !cond(&self.handle) {
            assert!(t.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking client.
pub struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

/// What the next read produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a test helper: one value at a time
pub enum Event {
    Msg(Msg),
    Close(Option<(u16, String)>),
    Pong,
}

impl Client {
    pub fn tcp(&self) -> &TcpStream {
        match self.ws.get_ref() {
            MaybeTlsStream::Plain(s) => s,
            _ => unreachable!(),
        }
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.tcp().set_read_timeout(Some(d)).unwrap();
    }

    pub fn send_frame(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(bytes.to_vec())).expect("send frame");
    }

    /// Send a text message (a control message, or not).
    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send text");
    }

    /// Send a text message and read the next message (its answer when no frame is in flight).
    pub fn control(&mut self, text: &str) -> Msg {
        self.send_text(text);
        self.next()
    }

    /// The next event (message, close with code and reason, or pong).
    pub fn event(&mut self) -> Event {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let m: Msg = serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"));
                    return Event::Msg(m);
                }
                Ok(Message::Close(f)) => return Event::Close(f.map(|f| (u16::from(f.code), f.reason.to_string()))),
                Ok(Message::Pong(_)) => return Event::Pong,
                Ok(Message::Ping(_)) | Ok(Message::Frame(_)) => continue,
                Ok(Message::Binary(b)) => panic!("unexpected binary message of {} bytes", b.len()),
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The next protocol message (panics on close).
    pub fn next(&mut self) -> Msg {
        match self.event() {
            Event::Msg(m) => m,
            e => panic!("expected a message, got {e:?}"),
        }
    }

    /// Read until a close frame; returns its code and reason, and the messages before it.
    pub fn until_close(&mut self) -> (u16, String, Vec<Msg>) {
        let mut msgs = Vec::new();
        loop {
            match self.event() {
                Event::Msg(m) => msgs.push(m),
                Event::Close(Some((code, reason))) => return (code, reason, msgs),
                Event::Close(None) => return (1005, String::new(), msgs),
                Event::Pong => {}
            }
        }
    }

    /// Send one frame and wait for its result (skipping nothing else).
    pub fn round_trip(&mut self, bytes: &[u8]) -> Msg {
        self.send_frame(bytes);
        self.next()
    }
}

/// Send a raw HTTP request; returns the status code and the whole response (or the head of a
/// 101).
pub fn http_status(server: &TestServer, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(server.handle.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    // Read to the end (refusals close the connection), or just the head of a 101.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = s.read(&mut chunk) {
        raw.extend_from_slice(&chunk[..n]);
        if raw.starts_with(b"HTTP/1.1 101") && raw.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let out = String::from_utf8_lossy(&raw).into_owned();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

/// A WebSocket upgrade request for `target`.
pub fn upgrade_request(target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// `/ws/video/stream?{query}` is refused before the upgrade with 400 and a body saying `why`.
pub fn assert_query_refused(server: &TestServer, query: &str, why: &str) {
    let (code, text) = http_status(server, &upgrade_request(&format!("/ws/video/stream?{query}")));
    assert_eq!(code, 400, "{query}");
    assert!(text.contains(why), "{query}: {text}");
}

/// What the plumbing stand-ins answer an admitted frame with: an empty `detect` result of the
/// frame's size (no model involved).
pub fn empty_result(info: &framewire::vision::jpeg::JpegInfo) -> framewire::vision::Processed {
    let result = framewire::vision::Analysis {
        width: info.width,
        height: info.height,
        detections: Some(vec![]),
        texts: None,
        low_detections: None,
        read: None,
    };
    framewire::vision::Processed { result, timings: framewire::vision::StageTimes::default() }
}
