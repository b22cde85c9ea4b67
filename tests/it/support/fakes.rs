//! Loopback fault injectors for the tests of `framewire stream`, and the harness that runs it as
//! a real process:
//!
//! - [`MjpegCamera`]: an HTTP MJPEG camera (a thread speaking `multipart/x-mixed-replace` over
//!   TCP, as IP cameras do) that can be killed, *frozen* (every connection open now stops
//!   sending but stays open, as a camera whose encoder hung) or made to send *garbage* to its
//!   first connections (endless random bytes);
//! - [`Proxy`]: a TCP proxy in front of a server that can *go silent*: every connection open
//!   then, and every one accepted while silent, stays open and forwards nothing in either
//!   direction (a proxy or a NAT that stopped forwarding: no reset, nothing), until it
//!   *speaks* again for new connections;
//! - [`Stream`]: `framewire stream ARGS` with its stdout and stderr collected as they come.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether `tool` runs; a missing one fails the test under `FRAMEWIRE_REQUIRE_CAMERAS=1`.
pub fn have(tool: &str, args: &[&str]) -> bool {
    let ok =
        Command::new(tool).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    let required = std::env::var_os("FRAMEWIRE_REQUIRE_CAMERAS").is_some_and(|v| v == "1");
    assert!(ok || !required, "FRAMEWIRE_REQUIRE_CAMERAS=1 but `{tool}` does not run");
    if !ok {
        eprintln!("note: no {tool}: the camera test is skipped");
    }
    ok
}

pub fn have_ffmpeg() -> bool {
    have("ffmpeg", &["-version"])
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn bind_retrying(port: u16) -> TcpListener {
    let t = Instant::now();
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(e) if t.elapsed() > Duration::from_secs(10) => panic!("bind {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// What a camera does, shared with its connection threads.
#[derive(Default)]
struct CameraState {
    stop: AtomicBool,
    served: AtomicUsize,
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Connections numbered below this are frozen.
    frozen_below: AtomicUsize,
    /// Connections numbered below this get garbage.
    garbage_below: AtomicUsize,
}

/// An HTTP MJPEG camera on a port of its own (see the module docs).
pub struct MjpegCamera {
    pub port: u16,
    state: Arc<CameraState>,
    thread: Option<JoinHandle<()>>,
}

impl MjpegCamera {
    /// Every client gets `frame` at `fps` (0: as fast as it can write), `total` of them then a
    /// clean end (with a `Content-Length`), or forever.
    pub fn start(port: u16, frame: Vec<u8>, fps: f64, total: Option<usize>) -> MjpegCamera {
        MjpegCamera::start_with_garbage(port, frame, fps, total, 0)
    }

    /// As [`MjpegCamera::start`], its first `garbage` connections answered with endless random
    /// bytes after the HTTP head.
    pub fn start_with_garbage(
        port: u16,
        frame: Vec<u8>,
        fps: f64,
        total: Option<usize>,
        garbage: usize,
    ) -> MjpegCamera {
        let listener = bind_retrying(port);
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(CameraState::default());
        state.garbage_below.store(garbage, Ordering::SeqCst);
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let mut clients = Vec::new();
            while !st.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let (st, frame) = (Arc::clone(&st), frame.clone());
                        let n = st.accepted.fetch_add(1, Ordering::SeqCst);
                        clients.push(std::thread::spawn(move || serve(c, n, &frame, fps, total, &st)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for c in clients {
                let _ = c.join();
            }
        });
        MjpegCamera { port, state, thread: Some(thread) }
    }

    /// Frames written to clients so far.
    pub fn served(&self) -> usize {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Connections taken so far.
    pub fn connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/video.mjpg", self.port)
    }

    /// Every connection open now stops sending, and stays open; later ones are served.
    pub fn freeze(&self) {
        self.state.frozen_below.store(self.connections(), Ordering::SeqCst);
    }

    /// The camera goes away: its listener and every connection closed.
    pub fn kill(mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MjpegCamera {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut c: TcpStream, n: usize, frame: &[u8], fps: f64, total: Option<usize>, st: &CameraState) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 4096];
    let _ = c.read(&mut head);
    let part = |f: &[u8]| {
        let mut p = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", f.len()).into_bytes();
        p.extend_from_slice(f);
        p.extend_from_slice(b"\r\n");
        p
    };
    let one = part(frame);
    let length = total.map_or(String::new(), |n| format!("Content-Length: {}\r\n", n * one.len()));
    let head = format!("HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n{length}\r\n");
    if c.write_all(head.as_bytes()).is_err() {
        return;
    }
    let stopped = || st.stop.load(Ordering::SeqCst);
    if n < st.garbage_below.load(Ordering::SeqCst) {
        // Endless noise (a small xorshift), 64 KiB at a time.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut chunk = vec![0u8; 64 * 1024];
        while !stopped() {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if c.write_all(&chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    let mut sent = 0;
    while !stopped() && total.is_none_or(|t| sent < t) {
        if n < st.frozen_below.load(Ordering::SeqCst) {
            // Frozen: the connection stays open and nothing more comes.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if c.write_all(&one).is_err() {
            return;
        }
        sent += 1;
        st.served.fetch_add(1, Ordering::SeqCst);
        if fps > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(1.0 / fps));
        }
    }
    let _ = c.shutdown(std::net::Shutdown::Both);
}

/// What a proxy does, shared with its connection threads.
#[derive(Default)]
struct ProxyState {
    stop: AtomicBool,
    silent: AtomicBool,
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Connections numbered below this forward nothing more.
    frozen_below: AtomicUsize,
}

/// A TCP proxy on a port of its own in front of `upstream` (see the module docs).
pub struct Proxy {
    pub port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ProxyState::default());
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            while !st.stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let n = st.accepted.fetch_add(1, Ordering::SeqCst);
                if st.silent.load(Ordering::SeqCst) {
                    // Taken and never forwarded: held open until the proxy goes away.
                    st.frozen_below.fetch_max(n + 1, Ordering::SeqCst);
                }
                let st = Arc::clone(&st);
                std::thread::spawn(move || connection(client, upstream, n, &st));
            }
        });
        Proxy { port, state }
    }

    /// The stream endpoint through the proxy.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/video/stream", self.port)
    }

    /// Every connection open now, and every one accepted from now on, forwards nothing more in
    /// either direction; their sockets stay open.
    pub fn go_silent(&self) {
        self.state.silent.store(true, Ordering::SeqCst);
        self.state.frozen_below.fetch_max(self.state.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// New connections are forwarded again (the silent ones stay silent).
    pub fn speak(&self) {
        self.state.silent.store(false, Ordering::SeqCst);
    }

    /// Connections taken so far.
    pub fn connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn connection(client: TcpStream, upstream: SocketAddr, n: usize, st: &Arc<ProxyState>) {
    let frozen = move |st: &ProxyState| n < st.frozen_below.load(Ordering::SeqCst);
    let hold = |st: &ProxyState| {
        while !st.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    if frozen(st) {
        return hold(st);
    }
    let Ok(server) = TcpStream::connect(upstream) else { return };
    let pump = move |mut from: TcpStream, mut to: TcpStream, st: Arc<ProxyState>| {
        let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if st.stop.load(Ordering::SeqCst) {
                return;
            }
            if frozen(&st) {
                // Stop reading and writing, keep both sockets: the peers' writes pile up in
                // the kernels' buffers and their reads get nothing.
                return hold(&st);
            }
            match from.read(&mut buf) {
                Ok(0) => {
                    let _ = to.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(k) => {
                    if to.write_all(&buf[..k]).is_err() {
                        return;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let st2 = Arc::clone(st);
    let up = std::thread::spawn(move || pump(c2, s2, st2));
    pump(server, client, Arc::clone(st));
    let _ = up.join();
}

/// `framewire stream ARGS` started, stdout and stderr collected by threads (stderr lines also
/// kept as they come, so a test can wait for a note).
pub struct Stream {
    child: Child,
    out: Option<JoinHandle<Vec<String>>>,
    pub err: Arc<parking_lot::Mutex<Vec<String>>>,
    err_thread: Option<JoinHandle<()>>,
    pub results: Arc<AtomicUsize>,
}

pub fn stream(args: &[&str]) -> Stream {
    stream_with_stdin(args, Stdio::null()).0
}

/// `framewire stream` of `cam` to the server at `url`: `count` frames at 5 fps, `detect`, and
/// the `extra` flags.
pub fn stream_camera(cam: &MjpegCamera, url: &str, count: u32, extra: &[&str]) -> Stream {
    let (cam, count) = (cam.url(), count.to_string());
    let mut args = vec![cam.as_str(), "--count", &count, "--fps", "5", "--pipeline", "detect", "--url", url];
    args.extend_from_slice(extra);
    stream(&args)
}

/// [`stream`] with its standard input from `stdin` (the pipe's write end is returned for
/// `Stdio::piped()`).
pub fn stream_with_stdin(args: &[&str], stdin: Stdio) -> (Stream, Option<std::process::ChildStdin>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_framewire"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("stream")
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = child.stdin.take();
    let results = Arc::new(AtomicUsize::new(0));
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let counted = Arc::clone(&results);
    let out = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if l.contains(r#""type":"result""#) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            lines.push(l);
        }
        lines
    });
    let err = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let e2 = Arc::clone(&err);
    let err_thread = std::thread::spawn(move || {
        // The progress line ends with \r, not \n: split on both.
        let mut buf = Vec::new();
        let mut r = BufReader::new(stderr);
        let mut byte = [0u8; 1];
        while r.read(&mut byte).is_ok_and(|n| n == 1) {
            if byte[0] == b'\n' || byte[0] == b'\r' {
                if !buf.is_empty() {
                    e2.lock().push(String::from_utf8_lossy(&buf).into_owned());
                }
                buf.clear();
            } else {
                buf.push(byte[0]);
            }
        }
        if !buf.is_empty() {
            e2.lock().push(String::from_utf8_lossy(&buf).into_owned());
        }
    });
    (Stream { child, out: Some(out), err, err_thread: Some(err_thread), results }, input)
}

impl Stream {
    /// Wait (at most `within`) until `cond` holds.
    pub fn wait_for_within(&self, what: &str, within: Duration, cond: impl Fn(&Stream) -> bool) {
        let t = Instant::now();
        while !cond(self) {
            assert!(t.elapsed() < within, "timed out waiting for {what}; stderr: {:?}", self.err.lock());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait (at most a minute: the machines are shared) until `cond` holds.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&Stream) -> bool) {
        self.wait_for_within(what, Duration::from_secs(60), cond)
    }

    pub fn stderr_has(&self, s: &str) -> bool {
        self.err.lock().iter().any(|l| l.contains(s))
    }

    pub fn results(&self) -> usize {
        self.results.load(Ordering::SeqCst)
    }

    /// Wait for the exit (at most a minute): success, stdout lines, stderr lines.
    pub fn finish(mut self) -> (bool, Vec<String>, Vec<String>) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("framewire stream did not end; stderr: {:?}", self.err.lock());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = self.out.take().map(|t| t.join().unwrap()).unwrap_or_default();
        if let Some(t) = self.err_thread.take() {
            let _ = t.join();
        }
        let err = self.err.lock().clone();
        (status.success(), out, err)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The summary line's `name N` figure (0 when absent: the summary leaves out zero counters).
pub fn figure(err: &[String], name: &str) -> u64 {
    let line = err.iter().rev().find(|l| l.starts_with("sent ") || l.contains("] sent ")).expect("a summary line");
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)?.parse().ok()).unwrap_or(0)
}
