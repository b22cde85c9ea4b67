//! One session per WebSocket connection: its counters, its latest-frame-wins slot, and the loop
//! that runs on the connection's own thread.
//!
//! The loop sleeps in `poll(2)` on three fds: the socket, the session's [`Waker`] (a pool thread
//! finished its frame) and the server's [`Shutdown`] pipe. So it keeps reading while inference
//! runs (the client is never back-pressured by not reading), writes a result within microseconds
//! of it being ready, and costs no CPU while idle. The socket is non-blocking: tungstenite keeps
//! partial messages in its buffer, and only this thread ever touches the socket.
//!
//! Backpressure: at most one frame in flight per session. A frame arriving meanwhile waits in a
//! slot of depth one; a newer frame replaces it, and the replaced one is dropped, counted and
//! reported (`frame_dropped`). When the in-flight frame finishes, the slot's frame is submitted,
//! so the newest frame is always processed and results go out in `frame_index` order.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::config::{Config, OnInvalid};
use crate::jpeg::{self, FrameError};
use crate::metrics::Metrics;
use crate::pipeline::{Done, Engine, Job, ProcessError};
use crate::protocol::{close, ErrorCode, Limits, PipelineKind, ServerMessage, PROTOCOL_VERSION};
use crate::wake::{poll, Shutdown, Waker};

/// Most messages read in one turn of the loop before results get a chance to be written.
const READS_PER_TURN: usize = 64;
/// How long a closing session waits for the client's close reply before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Backpressure state of a session, as `GET /sessions` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BackpressureState {
    /// No frame dropped in the last second.
    Normal = 0,
    /// Frames were dropped in the last second.
    Dropping = 1,
    /// A `slow_down` was sent in the last second.
    SlowDown = 2,
}

impl BackpressureState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressureState::Normal => "normal",
            BackpressureState::Dropping => "dropping",
            BackpressureState::SlowDown => "slow_down",
        }
    }
}

/// A session's counters, readable from other threads (atomics: no lock on the frame path).
#[derive(Debug)]
pub struct SessionState {
    /// UUID v4.
    pub session_id: uuid::Uuid,
    /// The client's address.
    pub peer: SocketAddr,
    /// The session's pipeline.
    pub pipeline: PipelineKind,
    /// Binary messages received so far (= the next frame's index).
    frame_index: AtomicU64,
    /// Frames dropped so far.
    dropped_frames: AtomicU64,
    /// Unix time in ms of the last result, 0 = none yet.
    last_processed_ms: AtomicU64,
    /// A [`BackpressureState`] as u8.
    backpressure: AtomicU8,
}

/// A point-in-time copy of a session's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// UUID v4.
    pub session_id: uuid::Uuid,
    /// Client address.
    pub peer: SocketAddr,
    /// The session's pipeline.
    pub pipeline: PipelineKind,
    /// Binary messages received so far.
    pub frame_index: u64,
    /// Frames dropped so far.
    pub dropped_frames: u64,
    /// Unix ms of the last result, if any.
    pub last_processed_timestamp: Option<u64>,
    /// `normal`, `dropping` or `slow_down`.
    pub backpressure_state: &'static str,
}

impl SessionState {
    /// A fresh session for `peer`, running `pipeline`.
    pub fn new(peer: SocketAddr, pipeline: PipelineKind) -> SessionState {
        SessionState {
            session_id: uuid::Uuid::new_v4(),
            peer,
            pipeline,
            frame_index: AtomicU64::new(0),
            dropped_frames: AtomicU64::new(0),
            last_processed_ms: AtomicU64::new(0),
            backpressure: AtomicU8::new(0),
        }
    }

    /// Copy the counters.
    pub fn snapshot(&self) -> SessionSnapshot {
        let last = self.last_processed_ms.load(Ordering::Relaxed);
        let bp = match self.backpressure.load(Ordering::Relaxed) {
            1 => BackpressureState::Dropping,
            2 => BackpressureState::SlowDown,
            _ => BackpressureState::Normal,
        };
        SessionSnapshot {
            session_id: self.session_id,
            peer: self.peer,
            pipeline: self.pipeline,
            frame_index: self.frame_index.load(Ordering::Relaxed),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
            last_processed_timestamp: (last != 0).then_some(last),
            backpressure_state: bp.as_str(),
        }
    }
}

/// Everything a session needs from the server.
#[derive(Clone)]
pub struct SessionContext {
    /// Frozen configuration.
    pub config: Arc<Config>,
    /// The shared pool.
    pub engine: Arc<Engine>,
    /// The server's shutdown signal.
    pub shutdown: Arc<Shutdown>,
    /// Server-wide counters (`GET /metrics`).
    pub metrics: Arc<Metrics>,
}

/// The sliding one-second window behind `slow_down`.
#[derive(Debug)]
struct RateWindow {
    start: Instant,
    received: u32,
    dropped: u32,
    results: u32,
    /// Results in the previous full window (the suggested fps).
    last_results: u32,
    last_slow_down: Option<Instant>,
    last_drop: Option<Instant>,
}

impl RateWindow {
    fn new(now: Instant) -> RateWindow {
        RateWindow {
            start: now,
            received: 0,
            dropped: 0,
            results: 0,
            last_results: 0,
            last_slow_down: None,
            last_drop: None,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.start) >= Duration::from_secs(1) {
            self.last_results = self.results;
            self.start = now;
            self.received = 0;
            self.dropped = 0;
            self.results = 0;
        }
    }

    /// After a drop: whether a `slow_down` is due (more than half of this window's frames
    /// dropped, none sent in the last second), and the fps to suggest.
    fn slow_down_due(&mut self, now: Instant) -> Option<u32> {
        let quiet = self.last_slow_down.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if quiet && self.dropped * 2 > self.received {
            self.last_slow_down = Some(now);
            Some(self.last_results.max(self.results).max(1))
        } else {
            None
        }
    }

    fn state(&self, now: Instant) -> BackpressureState {
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1));
        if recent(self.last_slow_down) {
            BackpressureState::SlowDown
        } else if recent(self.last_drop) {
            BackpressureState::Dropping
        } else {
            BackpressureState::Normal
        }
    }
}

/// How the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Still running.
    Open,
    /// Close with this code once the in-flight frame is answered.
    CloseWhenIdle(u16, &'static str),
    /// Close frame sent: wait for the client's reply (or the linger deadline).
    Closing(Instant),
}

/// A connection's session. `S` is the byte stream under the WebSocket (a TCP stream in the
/// server, an in-memory stream in tests).
pub struct Session<S: Read + Write> {
    ws: WebSocket<S>,
    ctx: SessionContext,
    state: Arc<SessionState>,
    kind: PipelineKind,
    waker: Arc<Waker>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    in_flight: Option<u64>,
    slot: Option<Job>,
    window: RateWindow,
    last_rx: Instant,
    ending: Ending,
    /// The socket's read side is unusable (after an oversized message): only drain raw bytes.
    raw_drain: bool,
    want_write: bool,
    /// The close code this side sent, if any.
    closed_with: Option<u16>,
    results_sent: u64,
    invalid_frames: u64,
    internal_errors: u64,
}

/// Why a session ended, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client closed or disconnected.
    ClientGone,
    /// The server closed it (idle, invalid frame, shutdown, …) with this code.
    Closed(u16),
    /// The client did not read its results and the write buffer filled up.
    WriteBufferFull,
    /// A socket error.
    Io,
}

impl<S: Read + Write + AsRawFd> Session<S> {
    /// A session over an already upgraded WebSocket.
    pub fn new(
        ws: WebSocket<S>,
        ctx: SessionContext,
        state: Arc<SessionState>,
        kind: PipelineKind,
    ) -> io::Result<Session<S>> {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let now = Instant::now();
        Ok(Session {
            ws,
            ctx,
            state,
            kind,
            waker: Arc::new(Waker::new()?),
            done_tx,
            done_rx,
            in_flight: None,
            slot: None,
            window: RateWindow::new(now),
            last_rx: now,
            ending: Ending::Open,
            raw_drain: false,
            want_write: false,
            closed_with: None,
            results_sent: 0,
            invalid_frames: 0,
            internal_errors: 0,
        })
    }

    /// Run until the session ends; returns why.
    pub fn run(mut self) -> EndReason {
        let started = Instant::now();
        let sid = self.state.session_id;
        log::info!("session {sid} start peer={} pipeline={}", self.state.peer, self.kind.as_str());
        let reason = self.run_inner();
        let s = self.state.snapshot();
        log::info!(
            "session {sid} end reason={reason:?} duration_s={:.1} frames={} results={} dropped={} invalid={} internal_errors={}",
            started.elapsed().as_secs_f64(),
            s.frame_index,
            self.results_sent,
            s.dropped_frames,
            self.invalid_frames,
            self.internal_errors
        );
        reason
    }

    fn run_inner(&mut self) -> EndReason {
        let limits =
            Limits { max_frame_bytes: self.ctx.config.max_frame_bytes, max_pixels: self.ctx.config.max_pixels };
        let hello = ServerMessage::SessionStarted {
            session_id: self.state.session_id.to_string(),
            protocol: PROTOCOL_VERSION,
            pipeline: self.kind.as_str(),
            limits,
        };
        if let Err(r) = self.send(&hello) {
            return r;
        }
        let sock = self.ws.get_ref().as_raw_fd();
        let wake = self.waker.as_raw_fd();
        let shut = self.ctx.shutdown.as_raw_fd();
        let mut shutting_down = false;
        loop {
            let now = Instant::now();
            let timeout = match self.ending {
                Ending::Closing(deadline) => Some(deadline.saturating_duration_since(now)),
                _ if self.in_flight.is_some() => None,
                _ => Some((self.last_rx + self.ctx.config.idle_timeout).saturating_duration_since(now)),
            };
            // Once shutdown has begun its fd stays readable: stop polling it.
            let fds = [(sock, self.want_write), (wake, false), (if shutting_down { -1 } else { shut }, false)];
            let ready = match poll(&fds, timeout) {
                Ok(r) => r,
                Err(_) => return EndReason::Io,
            };
            if ready[1].readable {
                self.waker.drain();
                while let Ok(done) = self.done_rx.try_recv() {
                    if let Err(r) = self.finish(done) {
                        return r;
                    }
                }
            }
            if ready[2].readable && !shutting_down {
                shutting_down = true;
                self.request_close(close::GOING_AWAY, "shutdown");
            }
            if ready[0].readable {
                if let Err(r) = self.read_messages() {
                    return r;
                }
            }
            if self.want_write && ready[0].writable {
                if let Err(r) = self.flush() {
                    return r;
                }
            }
            let now = Instant::now();
            match self.ending {
                Ending::Open if self.in_flight.is_none() && now >= self.last_rx + self.ctx.config.idle_timeout => {
                    self.request_close(close::NORMAL, "idle_timeout");
                }
                Ending::Closing(deadline) if now >= deadline => return self.end_reason(),
                _ => {}
            }
            if let Ending::CloseWhenIdle(code, reason) = self.ending {
                if self.in_flight.is_none() {
                    if let Err(r) = self.send_close(code, reason) {
                        return r;
                    }
                }
            }
        }
    }

    fn end_reason(&self) -> EndReason {
        self.closed_with.map_or(EndReason::ClientGone, EndReason::Closed)
    }

    /// Read every message available now (up to [`READS_PER_TURN`]).
    fn read_messages(&mut self) -> Result<(), EndReason> {
        if self.raw_drain {
            return self.drain_raw();
        }
        for _ in 0..READS_PER_TURN {
            match self.ws.read() {
                Ok(msg) => self.on_message(msg)?,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                    return Err(self.end_reason());
                }
                Err(tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. })) => {
                    // The payload was not read: the stream cannot be parsed any further.
                    self.last_rx = Instant::now();
                    let index = self.next_index();
                    self.invalid_frames += 1;
                    self.ctx.metrics.frame_invalid(FrameError::TooLarge);
                    self.send(&invalid_frame(index, FrameError::TooLarge))?;
                    self.raw_drain = true;
                    self.request_close(close::TOO_BIG, "too_large");
                    return Ok(());
                }
                // The client vanished without a close frame: nobody is left to tell.
                Err(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                    return Err(self.end_reason());
                }
                Err(tungstenite::Error::Protocol(_))
                | Err(tungstenite::Error::Capacity(_))
                | Err(tungstenite::Error::Utf8) => {
                    self.raw_drain = true;
                    self.request_close(close::PROTOCOL_ERROR, "protocol_error");
                    return Ok(());
                }
                Err(_) => return Err(EndReason::Io),
            }
        }
        Ok(())
    }

    /// Discard raw bytes from a stream that can no longer be parsed, until EOF or would-block.
    fn drain_raw(&mut self) -> Result<(), EndReason> {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..READS_PER_TURN {
            match self.ws.get_mut().read(&mut buf) {
                Ok(0) => return Err(self.end_reason()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(self.end_reason()),
            }
        }
        Ok(())
    }

    fn next_index(&mut self) -> u64 {
        self.window.roll(Instant::now());
        self.window.received += 1;
        self.ctx.metrics.frame_received();
        self.state.frame_index.fetch_add(1, Ordering::Relaxed)
    }

    fn on_message(&mut self, msg: Message) -> Result<(), EndReason> {
        self.last_rx = Instant::now();
        match msg {
            Message::Binary(bytes) => self.on_frame(bytes),
            Message::Text(_) => {
                if self.ending == Ending::Open {
                    self.send(&ServerMessage::Error {
                        error: ErrorCode::UnsupportedMessage,
                        frame_index: None,
                        detail: None,
                    })?;
                    self.request_close(close::UNSUPPORTED, "unsupported_message");
                }
                Ok(())
            }
            // tungstenite queues the pong itself; it goes out with the next flush.
            Message::Ping(_) => self.flush(),
            Message::Pong(_) | Message::Frame(_) => Ok(()),
            // tungstenite queued the close reply; the next read flushes it and reports the
            // connection closed.
            Message::Close(_) => self.flush(),
        }
    }

    fn on_frame(&mut self, bytes: Vec<u8>) -> Result<(), EndReason> {
        let index = self.next_index();
        match self.ending {
            Ending::Open => {}
            // Waiting for the in-flight frame before closing: this one will never run.
            Ending::CloseWhenIdle(..) => return self.drop_frame(index),
            // Our close frame is out: nothing more can be sent.
            Ending::Closing(_) => return Ok(()),
        }
        let limits = jpeg::Limits {
            max_bytes: self.ctx.config.max_frame_bytes,
            max_pixels: self.ctx.config.max_pixels,
            max_side: self.ctx.config.max_side,
        };
        let info = match jpeg::validate(&bytes, &limits) {
            Ok(info) => info,
            Err(e) => return self.on_invalid(index, e),
        };
        let job = Job { frame_index: index, bytes, info, kind: self.kind, received: self.last_rx };
        if self.in_flight.is_none() {
            self.submit(job);
        } else if let Some(old) = self.slot.replace(job) {
            self.drop_frame(old.frame_index)?;
        }
        Ok(())
    }

    fn on_invalid(&mut self, index: u64, e: FrameError) -> Result<(), EndReason> {
        self.invalid_frames += 1;
        self.ctx.metrics.frame_invalid(e);
        self.send(&invalid_frame(index, e))?;
        if self.ctx.config.on_invalid == OnInvalid::Close {
            let code = if e == FrameError::TooLarge { close::TOO_BIG } else { close::INVALID_PAYLOAD };
            self.request_close(code, e.code());
        }
        Ok(())
    }

    fn submit(&mut self, job: Job) {
        self.in_flight = Some(job.frame_index);
        self.ctx.engine.submit(job, self.done_tx.clone(), Arc::clone(&self.waker));
    }

    fn drop_frame(&mut self, index: u64) -> Result<(), EndReason> {
        let now = Instant::now();
        let dropped = self.state.dropped_frames.fetch_add(1, Ordering::Relaxed) + 1;
        self.ctx.metrics.frame_dropped();
        self.window.roll(now);
        self.window.dropped += 1;
        self.window.last_drop = Some(now);
        self.send(&ServerMessage::FrameDropped { frame_index: index, dropped_frames: dropped })?;
        if let Some(fps) = self.window.slow_down_due(now) {
            self.send(&ServerMessage::SlowDown { dropped_frames: dropped, suggested_fps: fps })?;
        }
        self.state.backpressure.store(self.window.state(now) as u8, Ordering::Relaxed);
        Ok(())
    }

    /// A pool job finished: send its outcome, then start the waiting frame if any.
    fn finish(&mut self, done: Done) -> Result<(), EndReason> {
        self.in_flight = None;
        let now = Instant::now();
        self.window.roll(now);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        match done.outcome {
            Ok(p) => {
                self.window.results += 1;
                let mut timings = p.timings;
                timings.queue = ms(done.started.duration_since(done.received));
                timings.total = ms(done.finished.duration_since(done.received));
                self.ctx.metrics.frame_done(&timings);
                let msg = ServerMessage::Result {
                    frame_index: done.frame_index,
                    result: p.result,
                    dropped_frames: self.state.dropped_frames.load(Ordering::Relaxed),
                    timings_ms: timings,
                };
                let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                self.state.last_processed_ms.store(unix_ms.max(1), Ordering::Relaxed);
                self.results_sent += 1;
                self.send(&msg)?;
            }
            Err(ProcessError::Invalid(e)) => self.on_invalid(done.frame_index, e)?,
            Err(ProcessError::Internal(why)) => {
                self.internal_errors += 1;
                self.ctx.metrics.inference_error();
                log::warn!("session {} frame {}: {why}", self.state.session_id, done.frame_index);
                self.send(&ServerMessage::Error {
                    error: ErrorCode::Internal,
                    frame_index: Some(done.frame_index),
                    detail: None,
                })?;
            }
        }
        self.state.backpressure.store(self.window.state(now) as u8, Ordering::Relaxed);
        if let Some(next) = self.slot.take() {
            if self.ending == Ending::Open {
                self.submit(next);
            } else {
                self.drop_frame(next.frame_index)?;
            }
        }
        Ok(())
    }

    /// Ask to close with `code` once the in-flight frame (if any) is answered. The waiting
    /// frame, if any, is dropped (and reported) since it will never run.
    fn request_close(&mut self, code: u16, reason: &'static str) {
        if self.ending == Ending::Open {
            self.ending = Ending::CloseWhenIdle(code, reason);
        }
    }

    fn send_close(&mut self, code: u16, reason: &'static str) -> Result<(), EndReason> {
        if let Some(job) = self.slot.take() {
            self.drop_frame(job.frame_index)?;
        }
        self.ending = Ending::Closing(Instant::now() + CLOSE_LINGER);
        self.closed_with = Some(code);
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        match self.ws.close(Some(frame)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => self.want_write = true,
            Err(_) => return Err(EndReason::Closed(code)),
        }
        self.flush()
    }

    /// Queue one message and try to write it out; a would-block leaves it buffered (bounded
    /// by `--max-write-buffer`) and the loop polls for writability.
    fn send(&mut self, msg: &ServerMessage) -> Result<(), EndReason> {
        match self.ws.write(Message::Text(msg.to_json())) {
            Ok(()) => self.flush(),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(tungstenite::Error::WriteBufferFull(_)) => Err(EndReason::WriteBufferFull),
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                Err(EndReason::ClientGone)
            }
            // Writing after our close frame (e.g. a result racing a shutdown): not an error.
            Err(tungstenite::Error::Protocol(_)) => Ok(()),
            Err(_) => Err(EndReason::Io),
        }
    }

    fn flush(&mut self) -> Result<(), EndReason> {
        match self.ws.flush() {
            Ok(()) => {
                self.want_write = false;
                Ok(())
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                Err(self.end_reason())
            }
            Err(_) => Err(EndReason::Io),
        }
    }
}

fn invalid_frame(index: u64, e: FrameError) -> ServerMessage {
    ServerMessage::Error { error: ErrorCode::InvalidFrame, frame_index: Some(index), detail: Some(e.code()) }
}

/// The TCP stream under a server session: `TcpStream` with an optional I/O deadline (used
/// during the handshake) and bytes already read by the HTTP pre-parse.
#[derive(Debug)]
pub struct ConnStream {
    tcp: TcpStream,
    prefix: Vec<u8>,
    pos: usize,
    deadline: Option<Instant>,
}

impl ConnStream {
    /// Wrap `tcp`; `prefix` is replayed before the socket's own bytes.
    pub fn new(tcp: TcpStream, prefix: Vec<u8>, deadline: Option<Instant>) -> ConnStream {
        ConnStream { tcp, prefix, pos: 0, deadline }
    }

    /// Replay `bytes` before the socket's next bytes (the request head read by the pre-parse).
    pub fn replay(&mut self, bytes: Vec<u8>) {
        self.prefix = bytes;
        self.pos = 0;
    }

    /// Replace the I/O deadline.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Remove the deadline and switch the socket to non-blocking (session mode).
    pub fn into_session_mode(&mut self) -> io::Result<()> {
        self.deadline = None;
        self.tcp.set_read_timeout(None)?;
        self.tcp.set_write_timeout(None)?;
        self.tcp.set_nonblocking(true)
    }

    fn arm(&self, write: bool) -> io::Result<()> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(ErrorKind::TimedOut, "handshake timeout"));
            }
            if write {
                self.tcp.set_write_timeout(Some(left))?;
            } else {
                self.tcp.set_read_timeout(Some(left))?;
            }
        }
        Ok(())
    }

    fn timed(&self, r: io::Result<usize>) -> io::Result<usize> {
        match r {
            // A socket timeout shows as WouldBlock on Linux; during the handshake that means
            // the deadline passed, which must fail the handshake, not pause it.
            Err(e) if self.deadline.is_some() && e.kind() == ErrorKind::WouldBlock => {
                Err(io::Error::new(ErrorKind::TimedOut, "handshake timeout"))
            }
            r => r,
        }
    }
}

impl Read for ConnStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.arm(false)?;
        let r = self.tcp.read(buf);
        self.timed(r)
    }
}

impl Write for ConnStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(true)?;
        let r = self.tcp.write(buf);
        self.timed(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl AsRawFd for ConnStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_down_needs_more_than_half_of_the_window_dropped_and_waits_a_second() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(t0);
        // 3 received, 1 dropped: not more than half.
        w.received = 3;
        w.dropped = 1;
        assert_eq!(w.slow_down_due(t0), None);
        w.dropped = 2;
        w.results = 4;
        assert_eq!(w.slow_down_due(t0), Some(4));
        // At most once a second, even if still dropping.
        w.dropped = 3;
        assert_eq!(w.slow_down_due(t0 + Duration::from_millis(500)), None);
        assert_eq!(w.state(t0 + Duration::from_millis(500)), BackpressureState::SlowDown);
        // A new window starts from zero: a single late drop after a quiet window is not > half.
        let t1 = t0 + Duration::from_millis(1500);
        w.roll(t1);
        assert_eq!((w.received, w.dropped, w.results, w.last_results), (0, 0, 0, 4));
        w.received = 3;
        w.dropped = 1;
        assert_eq!(w.slow_down_due(t1), None);
        assert_eq!(w.state(t1 + Duration::from_secs(2)), BackpressureState::Normal);
    }
}
