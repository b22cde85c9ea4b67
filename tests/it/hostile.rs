//! Hostile and broken clients: none of them takes the server or another session down, and
//! every resource they held is given back.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use framewire::config::OnInvalid;

use crate::protocol::Msg;
use crate::support::{config, fixture, scheduler, TestServer};

/// A masked client frame header (mask key 0, so the payload goes out as is).
fn frame_header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut h = vec![(u8::from(fin) << 7) | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xFFFF => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// A connected, upgraded raw TCP client (past `session_started`), for byte-level misbehaviour.
fn raw_session(server: &TestServer) -> TcpStream {
    let c = server.client();
    // A second fd on the same socket outlives the client (the socket closes with the last fd).
    c.tcp().try_clone().unwrap()
}

/// Read a raw server→client stream until EOF: the text messages and the close code.
fn read_all(mut s: TcpStream) -> (Vec<Msg>, Option<u16>) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let (mut msgs, mut close, mut i) = (Vec::new(), None, 0);
    while i + 2 <= buf.len() {
        let op = buf[i] & 0x0F;
        let (mut len, mut at) = (u64::from(buf[i + 1] & 0x7F), i + 2);
        if len == 126 {
            len = u64::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
            at += 2;
        } else if len == 127 {
            len = u64::from_be_bytes(buf[at..at + 8].try_into().unwrap());
            at += 8;
        }
        let end = at + len as usize;
        if end > buf.len() {
            break;
        }
        match op {
            1 => msgs.push(serde_json::from_slice(&buf[at..end]).unwrap()),
            8 if len >= 2 => close = Some(u16::from_be_bytes([buf[at], buf[at + 1]])),
            _ => {}
        }
        i = end;
    }
    (msgs, close)
}

/// `setsockopt(SOL_SOCKET, name, value)`, asserting success.
fn set_option<T>(s: &TcpStream, name: libc::c_int, value: T) {
    // SAFETY: a valid fd, and `value` is the option's C type, passed with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            name,
            (&value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt {name}");
}

fn too_large(index: u64) -> Msg {
    Msg::Error { error: "invalid_frame".into(), frame_index: Some(index), detail: Some("too_large".into()) }
}

#[test]
fn a_64_mib_message_is_refused_from_its_header() {
    let server = TestServer::start();
    let mut s = raw_session(&server);
    s.write_all(&frame_header(0x2, true, 64 << 20)).unwrap();
    s.write_all(&[0u8; 4096]).unwrap();
    let (msgs, close) = read_all(s);
    assert_eq!(msgs, vec![too_large(0)]);
    assert_eq!(close, Some(1009));
    let mut other = server.client();
    assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
}

#[test]
fn an_oversized_fragmented_message_is_refused() {
    let mut cfg = config();
    cfg.max_frame_bytes = 256 * 1024;
    let server = TestServer::start_with(cfg, scheduler());
    let mut s = raw_session(&server);
    // Two fragments of 200 KiB: each under the frame limit, together over the message limit.
    let part = vec![0xAAu8; 200 * 1024];
    s.write_all(&frame_header(0x2, false, part.len() as u64)).unwrap();
    s.write_all(&part).unwrap();
    s.write_all(&frame_header(0x0, true, part.len() as u64)).unwrap();
    let _ = s.write_all(&part);
    let (msgs, close) = read_all(s);
    assert_eq!(msgs, vec![too_large(0)]);
    assert_eq!(close, Some(1009));
}

#[test]
fn random_bytes_instead_of_a_handshake_get_400_and_free_the_thread() {
    let server = TestServer::start();
    let mut s = TcpStream::connect(server.handle.local_addr()).unwrap();
    let mut x: u32 = 0x1234_5678;
    let junk: Vec<u8> = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .chain(*b"\r\n\r\n")
        .collect();
    s.write_all(&junk).unwrap();
    let mut out = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 400"), "{:?}", String::from_utf8_lossy(&out));
    server.wait_until("the connection thread to end", |h| h.connections() == 0);
    let mut other = server.client();
    assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
}

#[test]
fn a_tcp_reset_mid_frame_ends_only_that_session() {
    let server = TestServer::start();
    let mut keep = server.client();
    let mut s = raw_session(&server);
    let frame = fixture("photo_cat_640x480.jpg");
    s.write_all(&frame_header(0x2, true, frame.len() as u64)).unwrap();
    s.write_all(&frame[..frame.len() / 2]).unwrap();
    // SO_LINGER 0: close sends a RST instead of a FIN.
    set_option(&s, libc::SO_LINGER, libc::linger { l_onoff: 1, l_linger: 0 });
    drop(s);
    server.wait_until("the reset session to go", |h| h.sessions().len() == 1);
    assert!(matches!(keep.round_trip(&frame), Msg::Result { .. }));
}

/// A client that sends frames as fast as it can and never reads its results: once the server's
/// bounded write buffer is full that session is dropped; another session is served meanwhile.
#[test]
fn a_client_that_never_reads_is_dropped_when_its_write_buffer_fills() {
    let mut cfg = config();
    cfg.max_write_buffer = 64 * 1024;
    cfg.on_invalid = OnInvalid::Continue;
    let server = TestServer::start_with(cfg, scheduler());
    let mut s = raw_session(&server);
    // Shrink our receive buffer so the server's side fills sooner.
    set_option(&s, libc::SO_RCVBUF, 4096 as libc::c_int);
    // A 40-byte frame that passes the header check (8×8, 3 components) and fails the decode:
    // every one produces an `invalid_frame` or `frame_dropped` message, nothing is read back.
    let mut tiny = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x08, 0x00, 0x08, 0x03];
    tiny.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    tiny.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 0x03, 1, 0x00, 2, 0x11, 3, 0x11, 0x00, 0x3F, 0x00, 1, 2, 3, 4]);
    let mut msg = frame_header(0x2, true, tiny.len() as u64);
    msg.extend_from_slice(&tiny);
    let batch: Vec<u8> = msg.iter().copied().cycle().take(msg.len() * 1000).collect();
    // Short write timeouts: keep flooding (without breaking the framing) for as long as the
    // session lives, however slowly a loaded machine lets the server read.
    s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut off = 0usize;
    let mut other = server.client();
    let mut last_check = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(300);
    while server.handle.sessions().len() > 1 {
        assert!(Instant::now() < deadline, "the flooding session was never dropped");
        match s.write(&batch[off..]) {
            Ok(n) => off += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            // The server dropped the session and closed the socket.
            Err(_) => break,
        }
        if off == batch.len() {
            off = 0;
        }
        // Another session is answered while this one floods: every 2 s by the clock, whether or
        // not a batch got through (how fast the flood goes depends on what else the machine is
        // running; a CI run once went past the idle timeout between two whole batches).
        if last_check.elapsed() > Duration::from_secs(2) {
            assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
            last_check = Instant::now();
        }
    }
    server.wait_until("the flooding session to be dropped", |h| h.sessions().len() == 1);
    let _ = s.shutdown(Shutdown::Both);
    assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
}

/// Read server→client frames from a raw stream until `want` says enough (or 20 s pass): returns
/// (opcode, payload) pairs.
fn read_frames(s: &mut TcpStream, want: impl Fn(&[(u8, Vec<u8>)]) -> bool) -> Vec<(u8, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut buf, mut frames) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 16 * 1024];
    while !want(&frames) && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
        loop {
            if buf.len() < 2 {
                break;
            }
            let op = buf[0] & 0x0F;
            let (mut len, mut at) = (usize::from(buf[1] & 0x7F), 2);
            if len == 126 {
                if buf.len() < 4 {
                    break;
                }
                len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                at = 4;
            }
            if buf.len() < at + len {
                break;
            }
            frames.push((op, buf[at..at + len].to_vec()));
            buf.drain(..at + len);
        }
    }
    frames
}

/// 100 pings in one TCP write get 100 pongs: a read turn that stops at its cap goes on with
/// what is already buffered instead of sleeping on a socket that has nothing new.
#[test]
fn a_hundred_pings_in_one_write_get_a_hundred_pongs() {
    let server = TestServer::start();
    let mut s = raw_session(&server);
    let mut burst = Vec::new();
    for i in 0..100u8 {
        burst.extend(frame_header(0x9, true, 1));
        burst.push(i);
    }
    s.write_all(&burst).unwrap();
    let pongs = |f: &[(u8, Vec<u8>)]| f.iter().filter(|(op, _)| *op == 0xA).count();
    let frames = read_frames(&mut s, |f| pongs(f) >= 100);
    assert_eq!(pongs(&frames), 100);
    let payloads: Vec<u8> = frames.iter().filter(|(op, _)| *op == 0xA).map(|(_, p)| p[0]).collect();
    assert_eq!(payloads, (0..100).collect::<Vec<u8>>(), "in order");
}

/// Frames that arrive in the same TCP write as the upgrade request are answered (they sit in
/// tungstenite's buffer, where poll(2) cannot see them).
#[test]
fn frames_sent_with_the_upgrade_request_are_answered() {
    let server = TestServer::start();
    let mut s = TcpStream::connect(server.handle.local_addr()).unwrap();
    let jpeg = fixture("photo_cat_640x480.jpg");
    let mut bytes = crate::support::upgrade_request("/ws/video/stream?pipeline=detect").into_bytes();
    for _ in 0..2 {
        bytes.extend(frame_header(0x2, true, jpeg.len() as u64));
        bytes.extend_from_slice(&jpeg);
    }
    s.write_all(&bytes).unwrap();
    // The 101 head, then session_started, then per frame a result (or the first one dropped).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let texts = |f: &[(u8, Vec<u8>)]| -> Vec<Msg> {
        f.iter().filter(|(op, _)| *op == 1).map(|(_, p)| serde_json::from_slice(p).unwrap()).collect()
    };
    let answered = |m: &[Msg]| m.iter().any(|m| matches!(m, Msg::Result { frame_index: 1, .. }));
    let frames = read_frames(&mut s, |f| answered(&texts(f)));
    let msgs = texts(&frames);
    assert!(matches!(msgs.first(), Some(Msg::SessionStarted { .. })), "{msgs:?}");
    assert!(answered(&msgs), "the second frame was never answered: {msgs:?}");
}

/// `tests/fixtures/jpeg/progressive.jpg` with its last scan repeated until it has `scans`.
fn scan_bomb(scans: usize) -> Vec<u8> {
    use framewire::vision::jpeg::markers::{Markers, EOI, SOS};
    let data = fixture("jpeg/progressive.jpg");
    let segs: Vec<_> = Markers::new(&data).map(|s| s.unwrap()).collect();
    let last = segs.iter().rposition(|s| s.marker == SOS).unwrap();
    let (start, eoi) = (segs[last - 1].end, segs.last().unwrap().end - 2);
    let have = segs.iter().filter(|s| s.marker == SOS).count();
    let mut out = data[..eoi].to_vec();
    for _ in have..scans {
        out.extend_from_slice(&data[start..eoi]);
    }
    out.extend_from_slice(&[0xFF, EOI]);
    out
}

/// A progressive frame with more scans than `--max-scans` is refused as `unsupported` from the
/// header walk; the session goes on (with `--on-invalid continue`) and answers a good frame.
#[test]
fn a_progressive_scan_bomb_is_refused_before_decoding() {
    let cfg = framewire::config::Config { on_invalid: OnInvalid::Continue, ..config() };
    let server = TestServer::start_with(cfg, scheduler());
    let mut c = server.client();
    match c.round_trip(&scan_bomb(900)) {
        Msg::Error { error, detail, frame_index } => {
            assert_eq!(
                (error.as_str(), detail.as_deref(), frame_index),
                ("invalid_frame", Some("unsupported"), Some(0))
            );
        }
        m => panic!("{m:?}"),
    }
    // (A repeated refinement scan is not a valid progression: it only serves to count.)
    assert!(matches!(c.round_trip(&fixture("jpeg/progressive.jpg")), Msg::Result { frame_index: 1, .. }));
}

/// Clients that connect, send one frame and leave, over and over: their frames are dropped
/// from the queue count when they go (and discarded undecoded), so the queue never holds more
/// than one frame per live session and a live session keeps being answered.
#[test]
fn frames_of_sessions_that_are_gone_leave_the_queue() {
    let server = TestServer::start();
    let frame = fixture("photo_cat_640x480.jpg");
    let mut live = server.client_at("/ws/video/stream?pipeline=detect");
    assert!(matches!(live.round_trip(&frame), Msg::Result { .. }));
    let queue_depth = || {
        let (_, body) = crate::support::http_status(&server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        body.lines()
            .find_map(|l| l.strip_prefix("framewire_pool_queue_depth "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("queue depth metric")
    };
    for _ in 0..60 {
        let mut c = server.client_at("/ws/video/stream?pipeline=detect");
        c.send_frame(&frame);
        let _ = c.ws.close(None);
        let _ = c.ws.flush();
    }
    // Once their threads are gone, only live sessions may hold a queued frame.
    server.wait_until("the leavers' sessions to end", |h| h.sessions().len() == 1);
    let depth = queue_depth();
    assert!(depth <= 1.0, "queue depth {depth} with one live session");
    assert!(matches!(live.round_trip(&frame), Msg::Result { .. }), "the live session is still answered");
}

/// Send `frame` as one binary message over `s`, in `pieces` writes `gap` apart (a slow uplink);
/// only the first `upto` pieces when given (a trickle that never completes). Write errors are
/// ignored: the server may close first.
fn trickle(s: &mut TcpStream, frame: &[u8], pieces: usize, gap: Duration, upto: Option<usize>) {
    let mut bytes = frame_header(2, true, frame.len() as u64);
    bytes.extend_from_slice(frame);
    for (i, piece) in bytes.chunks(bytes.len().div_ceil(pieces)).enumerate() {
        if upto.is_some_and(|n| i >= n) {
            break;
        }
        if i > 0 {
            std::thread::sleep(gap);
        }
        if s.write_all(piece).is_err() {
            return;
        }
    }
}

#[test]
fn a_frame_arriving_slowly_is_not_cut_off_by_the_idle_timer() {
    // Idle 1 s; the frame takes ~3 s to arrive, a piece every 300 ms: the idle timer counts
    // bytes, not whole messages, so it is answered (then the idle timer closes the session).
    let cfg = framewire::config::Config {
        idle_timeout: Duration::from_secs(1),
        message_timeout: Duration::from_secs(20),
        ..config()
    };
    let server = TestServer::start_with(cfg, scheduler());
    let mut s = raw_session(&server);
    trickle(&mut s, &fixture("photo_cat_640x480.jpg"), 10, Duration::from_millis(300), None);
    let (msgs, close) = read_all(s);
    assert!(matches!(msgs.first(), Some(Msg::Result { frame_index: 0, .. })), "{msgs:?}");
    assert_eq!(close, Some(1000), "then idle");
}

#[test]
fn a_trickling_client_is_closed_at_the_message_timeout() {
    // Bytes every 300 ms (the idle timer of 1 s never fires), but the message never completes:
    // closed with 1008 `message_timeout` at 2 s; another session goes on.
    let cfg = framewire::config::Config {
        idle_timeout: Duration::from_secs(1),
        message_timeout: Duration::from_secs(2),
        ..config()
    };
    let server = TestServer::start_with(cfg, scheduler());
    let mut s = raw_session(&server);
    let t = Instant::now();
    trickle(&mut s, &fixture("photo_cat_640x480.jpg"), 200, Duration::from_millis(300), Some(14));
    let (msgs, close) = read_all(s);
    assert!(msgs.is_empty(), "{msgs:?}");
    assert_eq!(close, Some(1008));
    assert!(t.elapsed() >= Duration::from_secs(2), "not before the message timeout");
    let mut other = server.client();
    assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
}
