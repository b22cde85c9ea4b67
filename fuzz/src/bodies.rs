//! The bodies of the fuzz targets, in one file shared by two builds: each cargo-fuzz target in
//! `fuzz/fuzz_targets/` includes it with `#[path]`, and so does the stable replay test
//! `tests/it/fuzz_replay.rs`, which runs every seed and every past crash through the very same
//! functions in `cargo test` (no nightly, no libFuzzer). It uses only crates `framewire` itself
//! depends on, so both builds can compile it.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use framewire::config::{Config, OnInvalid};
use framewire::protocol::PipelineKind;
use framewire::scheduler::Scheduler;
use framewire::session::{Session, SessionContext, SessionState};
use framewire::vision::jpeg::{decode_rgb, validate, JpegInfo, Limits};
use framewire::vision::parallel::Width;
use framewire::vision::{Analysis, FrameOptions, Outcome, Processed, Processor, StageTimes};
use framewire::wake::{Shutdown, Waker};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::WebSocket;

/// The server's default limits (`framewire serve` with no flags).
fn limits() -> Limits {
    Limits::default()
}

/// `validate_jpeg`: arbitrary bytes through the header walk never panic; whatever it admits
/// decodes to exactly the announced size, or is refused by the decoder.
pub fn validate_jpeg(data: &[u8]) {
    if let Ok(info) = validate(data, &limits()) {
        if let Ok(img) = decode_rgb(data, &info, 1) {
            assert_eq!((img.width, img.height), (info.width as usize, info.height as usize));
            assert_eq!(img.data.len(), img.width * img.height * 3);
        }
    }
}

/// `decode`: frames the header walk admits go through the strict decoder at every scale: Ok or
/// Err, never a panic or an abort, and an Ok image has the documented scaled size.
pub fn decode(data: &[u8]) {
    let Ok(info) = validate(data, &limits()) else { return };
    for denom in [1u8, 2, 4, 8] {
        if let Ok(img) = decode_rgb(data, &info, denom) {
            let d = u32::from(denom);
            assert_eq!((img.width, img.height), (info.width.div_ceil(d) as usize, info.height.div_ceil(d) as usize));
            assert_eq!(img.data.len(), img.width * img.height * 3);
        }
    }
}

/// `validate_h264`: arbitrary bytes as H.264 access units (split at each `AU` separator
/// `0xFF 0xFF 0xFF 0xFE`, so one input is a short stream with state between its units) through
/// the access-unit check: never a panic; a picture it admits is within the limits and has a
/// slice; a refused unit leaves the stream's parameter sets as they were.
pub fn validate_h264(data: &[u8]) {
    use framewire::vision::h264::{Checked, Limits as VideoLimits, Stream};
    let limits = VideoLimits { max_pixels: 40_000_000, max_side: 16_384, max_decoder_bytes: 256 << 20 };
    let mut stream = Stream::new();
    let mut rest = data;
    loop {
        let cut = rest.windows(4).position(|w| w == [0xFF, 0xFF, 0xFF, 0xFE]);
        let (au, next) = match cut {
            Some(i) => (&rest[..i], Some(&rest[i + 4..])),
            None => (rest, None),
        };
        let before = stream.clone();
        match stream.check(au, &limits) {
            Ok(Checked::Picture(p)) => {
                assert!(p.slices >= 1);
                assert!(p.size.0 >= 1 && p.size.1 >= 1 && p.size.0 <= 16_384 && p.size.1 <= 16_384);
                assert!(u64::from(p.size.0) * u64::from(p.size.1) <= limits.max_pixels);
            }
            Ok(_) => {}
            Err(e) => {
                assert!(!e.code().is_empty());
                assert_eq!(stream, before, "a refused access unit changed the stream");
            }
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
}

/// The same stream of access units (as [`validate_h264`] cuts them) through the check and, for
/// each picture it admits, OpenH264 (`decode_h264`): never a panic or a crash; a picture the
/// decoder gives has the size its SPS announced; after the decoder refuses one, pictures wait
/// for the next IDR (as a session's do).
pub fn decode_h264(data: &[u8]) {
    use framewire::vision::h264::decode::{Decoder, Output};
    use framewire::vision::h264::{Checked, Limits as VideoLimits, Stream};
    // Small pictures only: the fuzzer's time goes into the bitstream, not into big frames.
    let limits = VideoLimits { max_pixels: 512 * 512, max_side: 1024, max_decoder_bytes: 8 << 20 };
    let (mut stream, mut decoder) = (Stream::new(), Decoder::new());
    for (i, au) in cut(data).into_iter().enumerate() {
        let Ok(Checked::Picture(p)) = stream.check(au, &limits) else { continue };
        match decoder.decode(au, &p, i % 2 == 0) {
            Ok(Output::Rgb(img)) => {
                assert_eq!((img.width as u32, img.height as u32), p.size);
                assert_eq!(img.data.len(), img.width * img.height * 3);
            }
            Ok(_) => {}
            Err(_) => stream.restart(),
        }
    }
}

/// `data` cut at each `0xFF 0xFF 0xFF 0xFE` (the fuzz inputs' access unit separator).
fn cut(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(4).position(|w| w == [0xFF, 0xFF, 0xFF, 0xFE]) {
        out.push(&rest[..i]);
        rest = &rest[i + 4..];
    }
    out.push(rest);
    out
}

/// Answers every admitted frame with an empty result: the session's plumbing without a model
/// (fuzzing the socket handling, not the network).
struct EmptyResultPlumbingStandIn;

impl Processor for EmptyResultPlumbingStandIn {
    fn process(&self, _: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, _: &Width) -> Outcome {
        let result = Analysis {
            width: info.width,
            height: info.height,
            detections: Some(vec![]),
            texts: None,
            low_detections: None,
            read: None,
        };
        Ok(Processed { result, timings: StageTimes::default() })
    }
}

/// Built once: a 1-thread scheduler, 64 KiB frames, 200 ms idle timeout, sessions stay open after
/// an invalid frame (more of the state machine is reachable).
fn context() -> SessionContext {
    static CTX: OnceLock<SessionContext> = OnceLock::new();
    CTX.get_or_init(|| {
        // libFuzzer's C `main` leaves SIGPIPE fatal; the Rust runtime (cargo test) ignores it.
        // SAFETY: a plain syscall that changes one signal disposition.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let mut config = Config::defaults("127.0.0.1:0".parse().expect("literal address"));
        config.max_frame_bytes = 64 * 1024;
        config.idle_timeout = Duration::from_millis(200);
        config.on_invalid = OnInvalid::Continue;
        let scheduler = Scheduler::new(1, Arc::new(EmptyResultPlumbingStandIn)).expect("1-thread pool");
        SessionContext {
            config: Arc::new(config),
            scheduler: Arc::new(scheduler),
            shutdown: Arc::new(Shutdown::new().expect("shutdown pipe")),
            metrics: Arc::default(),
        }
    })
    .clone()
}

/// `session_bytes`: `data` is a client's raw byte stream (after the handshake) into a server
/// `Session` over a socket pair (no TCP, no handshake, no model). Once the client stops sending,
/// the session ends without panicking.
pub fn session_bytes(data: &[u8]) {
    let ctx = context();
    let (server_end, mut client) = UnixStream::pair().expect("socketpair");
    server_end.set_nonblocking(true).expect("nonblocking");
    let max = Some(ctx.config.max_frame_bytes);
    let ws_config = WebSocketConfig { max_message_size: max, max_frame_size: max, ..WebSocketConfig::default() };
    let ws = WebSocket::from_raw_socket(server_end, Role::Server, Some(ws_config));
    let state = Arc::new(SessionState::new("127.0.0.1:1".parse().expect("literal address"), PipelineKind::Detect));
    let session = Session::new(ws, ctx, state, Arc::new(Waker::new().expect("eventfd")));
    let server = std::thread::spawn(move || session.run());
    let mut reader = client.try_clone().expect("dup");
    let drain = std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    // The server may end (and close its end) before it has read everything: not an error.
    let _ = client.write_all(data);
    let _ = client.shutdown(std::net::Shutdown::Write);
    server.join().expect("session thread panicked");
    let _ = drain.join().expect("drain thread panicked");
}
