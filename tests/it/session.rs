//! The session loop without TCP or a handshake: `WebSocket::from_raw_socket` over a Unix
//! socket pair, so each side is just bytes (the fuzz target `session_bytes` drives the same).

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;

use framewire::protocol::PipelineKind;
use framewire::session::{EndReason, Session, SessionContext, SessionState};
use framewire::wake::{Shutdown, Waker};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::protocol::Msg;
use crate::support::{config, fixture, scheduler};

fn start() -> (WebSocket<UnixStream>, JoinHandle<EndReason>, Arc<Shutdown>) {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    server_end.set_nonblocking(true).unwrap();
    let cfg = config();
    let ws_config = WebSocketConfig {
        max_message_size: Some(cfg.max_frame_bytes),
        max_frame_size: Some(cfg.max_frame_bytes),
        ..WebSocketConfig::default()
    };
    let shutdown = Arc::new(Shutdown::new().unwrap());
    let ctx = SessionContext {
        config: Arc::new(cfg),
        scheduler: scheduler(),
        shutdown: Arc::clone(&shutdown),
        metrics: Arc::default(),
    };
    let ws = WebSocket::from_raw_socket(server_end, Role::Server, Some(ws_config));
    let state = Arc::new(SessionState::new("127.0.0.1:1".parse().unwrap(), PipelineKind::Detect));
    let session = Session::new(ws, ctx, state, Arc::new(Waker::new().unwrap()));
    let thread = std::thread::spawn(move || session.run());
    (WebSocket::from_raw_socket(client_end, Role::Client, None), thread, shutdown)
}

fn next(ws: &mut WebSocket<UnixStream>) -> Msg {
    match ws.read().unwrap() {
        Message::Text(t) => serde_json::from_str(&t).unwrap(),
        m => panic!("{m:?}"),
    }
}

#[test]
fn a_session_over_a_socket_pair_answers_frames_and_ends_on_shutdown() {
    let (mut ws, thread, shutdown) = start();
    assert!(matches!(next(&mut ws), Msg::SessionStarted { .. }));
    ws.send(Message::Binary(fixture("photo_astronaut_640x480.jpg"))).unwrap();
    match next(&mut ws) {
        Msg::Result { frame_index: 0, result, .. } => {
            assert!(result.detections.as_ref().unwrap().iter().any(|d| d.label == "person"), "{result:?}")
        }
        m => panic!("{m:?}"),
    }
    shutdown.trigger();
    match ws.read().unwrap() {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        m => panic!("{m:?}"),
    }
    drop(ws);
    assert_eq!(thread.join().unwrap(), EndReason::Closed(1001));
}

#[test]
fn raw_garbage_instead_of_websocket_frames_ends_only_that_session() {
    use std::io::Write;
    let (mut ws, thread, _shutdown) = start();
    assert!(matches!(next(&mut ws), Msg::SessionStarted { .. }));
    // An unmasked frame with a reserved opcode: a protocol violation.
    ws.get_mut().write_all(&[0x83, 0x05, 1, 2, 3, 4, 5]).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1002),
        r => panic!("{r:?}"),
    }
    drop(ws);
    assert_eq!(thread.join().unwrap(), EndReason::Closed(1002));
}
