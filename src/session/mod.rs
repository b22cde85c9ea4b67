//! One session per WebSocket connection: the loop that runs on the connection's own thread, its
//! counters ([`state`]) and its latest-frame-wins slot ([`slot`]).
//!
//! The loop sleeps in `poll(2)` on three fds: the socket, the session's [`Waker`] (a pool thread
//! finished its frame) and the server's [`Shutdown`] pipe. So it keeps reading while inference
//! runs (the client is never back-pressured by not reading), writes a result within microseconds
//! of it being ready, and costs no CPU while idle. The socket is non-blocking: tungstenite keeps
//! partial messages in its buffer, and only this thread ever touches the socket.
//!
//! Backpressure is [`slot::Slot`]'s policy (one frame in flight, one waiting, the newest wins;
//! with `detect_every`, the frames to be predicted waiting in order); this loop only reports what
//! it decides (`frame_dropped`, `slow_down`). The frames the detector skips are answered on this
//! thread from the tracker's prediction, and settled tracks' crops are left unread (`work`).
//!
//! Control messages (`configure`, `end_of_stream`, parsed by [`crate::protocol::control`]) are
//! ordered with the frames: one waits (at most [`MAX_PENDING_CONTROL`] of them) until every
//! frame received before it is answered, then applies, so a `configure` takes effect from the
//! next frame a worker takes and `end_of_stream` comes after the results of the frames before
//! it. The session owns its tracker and its [`Analytics`] (zones, lines, track events); each
//! result feeds the analytics the confirmed tracks it saw and the tracks the tracker removed.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::analytics::{Analytics, LineCount, Named, ZoneCount};
use crate::config::{Config, OnInvalid};
use crate::metrics::Metrics;
use crate::protocol::control::Control;
use crate::protocol::options::Settings;
use crate::protocol::{
    close, ended, ConfigEcho, DetectorInfo, ErrorCode, FrameResult, Limits, PipelineKind, ServerMessage, Timings,
    PROTOCOL_VERSION,
};
use crate::scheduler::{FinishedFrame, Frame, Job, Scheduler, Ticket};
use crate::vision::h264::Codec;
use crate::vision::jpeg::{self, FrameError};
use crate::vision::track::Tracker;
use crate::vision::{FrameOptions, ProcessError};
use crate::wake::{poll, Shutdown, Waker};

mod control;
pub mod slot;
pub mod state;
pub mod tracking;
mod video;
mod work;

use crate::policy::{Cadence, DetectEvery, Reuse};
use slot::{Budget, Entry, Mark, Offer, RateWindow, Slot};
pub use state::{BackpressureState, SessionSnapshot, SessionState};

/// Most messages read in one turn of the loop before results get a chance to be written.
const READS_PER_TURN: usize = 64;
/// How long a closing session waits for the client's close reply before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Control messages that may wait for the frames before them; one more is `rate_limited`.
pub const MAX_PENDING_CONTROL: usize = 8;

/// Everything a session needs from the server.
#[derive(Clone)]
pub struct SessionContext {
    /// Frozen configuration.
    pub config: Arc<Config>,
    /// The shared scheduler.
    pub scheduler: Arc<Scheduler>,
    /// The server's shutdown signal.
    pub shutdown: Arc<Shutdown>,
    /// Server-wide counters (`GET /metrics`).
    pub metrics: Arc<Metrics>,
}

/// How the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Still running.
    Open,
    /// Close with this code as soon as no frame is in flight (after its result is sent).
    CloseWhenNoneInFlight(u16, &'static str),
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
    done_tx: Sender<FinishedFrame>,
    done_rx: Receiver<FinishedFrame>,
    slot: Slot<Job>,
    /// The session's tracker, when tracking is on.
    tracker: Option<Tracker>,
    /// Which frames ask for the detector (`detect_every`).
    cadence: Cadence,
    /// `ocr_reuse`.
    ocr_reuse: bool,
    /// An H.264 session's stream state and decoder (`None`: a JPEG session).
    video: Option<video::Video>,
    /// The tracks' reading state (`ocr_reuse`, with tracking and `ocr=detections`).
    reuse: Reuse,
    /// The detector's class names (a predicted box's label).
    labels: Vec<String>,
    /// The id the next tracker starts from (tracking turned off and on again never reuses an
    /// id within the session).
    next_track_id: u64,
    /// Zones, lines and track events over the tracker's tracks (an empty spec without
    /// tracking).
    analytics: Analytics,
    /// `GET /sessions` was given zone or line counts (so it must be told when they go).
    counts_shown: bool,
    /// The session clock's origin: events' times are frames' arrivals after it.
    started: Instant,
    /// Control messages waiting for the frames received before them (their count then).
    pending: VecDeque<(u64, Control)>,
    /// `--max-control-rate`.
    budget: Budget,
    /// The last frame answered with a result.
    last_result: Option<u64>,
    /// The query's per-frame options, shared with every job.
    options: Arc<FrameOptions>,
    /// The ticket of the frame in flight: cancelled when the session ends, so a frame still
    /// queued is discarded undecoded.
    ticket: Option<Arc<Ticket>>,
    window: RateWindow,
    last_rx: Instant,
    /// When the socket last had bytes for us (partial messages included).
    last_byte_rx: Instant,
    /// When the first bytes after the last complete message arrived: the message in progress
    /// must be whole by `--message-timeout` after this.
    message_started: Option<Instant>,
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
    /// A session over an already upgraded WebSocket, woken by `waker` (made before the upgrade,
    /// so a server out of descriptors refuses with 503 instead of upgrading), with the server's
    /// default settings.
    pub fn new(ws: WebSocket<S>, ctx: SessionContext, state: Arc<SessionState>, waker: Arc<Waker>) -> Session<S> {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let now = Instant::now();
        let budget = Budget::new(ctx.config.max_control_rate, now);
        let defaults = Settings::new(ctx.config.pipeline, ctx.config.track);
        let (max_predicted, reuse) = (ctx.config.max_predicted_waiting, ctx.config.reuse);
        let labels = ctx.scheduler.detector().map(|d| d.classes).unwrap_or_default();
        let session = Session {
            ws,
            ctx,
            state,
            kind: defaults.kind,
            waker,
            done_tx,
            done_rx,
            slot: Slot::new(max_predicted),
            tracker: None,
            cadence: Cadence::new(DetectEvery::default()),
            ocr_reuse: true,
            video: None,
            reuse: Reuse::new(reuse),
            labels,
            next_track_id: 1,
            analytics: Analytics::default(),
            counts_shown: false,
            started: now,
            pending: VecDeque::new(),
            budget,
            last_result: None,
            options: Arc::default(),
            ticket: None,
            window: RateWindow::new(now),
            last_rx: now,
            last_byte_rx: now,
            message_started: None,
            ending: Ending::Open,
            raw_drain: false,
            want_write: false,
            closed_with: None,
            results_sent: 0,
            invalid_frames: 0,
            internal_errors: 0,
        };
        session.with_settings(defaults)
    }

    /// Run with `settings` (the query's options resolved onto the server's defaults).
    pub fn with_settings(mut self, settings: Settings) -> Session<S> {
        self.set_settings(settings);
        self
    }

    /// The settings in force.
    fn settings(&self) -> Settings {
        Settings {
            kind: self.kind,
            track: self.tracker.is_some(),
            frame: (*self.options).clone(),
            ocr_reuse: self.ocr_reuse,
            detect_every: self.cadence.every(),
            codec: if self.video.is_some() { Codec::H264 } else { Codec::Jpeg },
        }
    }

    /// Make `s` the settings in force from the next frame a worker takes. Tracking switched off
    /// ends the live tracks: their events are returned.
    fn set_settings(&mut self, s: Settings) -> Vec<crate::analytics::Event> {
        self.kind = s.kind;
        self.state.set_pipeline(s.kind);
        let mut events = Vec::new();
        if s.detect_every != self.cadence.every() {
            self.cadence = Cadence::new(s.detect_every);
        }
        if !s.ocr_reuse {
            self.reuse = Reuse::new(self.ctx.config.reuse);
        }
        self.ocr_reuse = s.ocr_reuse;
        // Set by the query only (a `configure` cannot name it): fixed for the session.
        if s.codec == Codec::H264 && self.video.is_none() {
            self.video = Some(video::Video::new(&self.ctx.config));
        }
        match (s.track, self.tracker.take()) {
            (false, Some(mut tracker)) => {
                self.next_track_id = tracker.next_id();
                events = self.analytics.end(&ended(&tracker.end_all()));
                self.reuse = Reuse::new(self.ctx.config.reuse);
            }
            (true, None) => self.tracker = Some(Tracker::starting_at(self.ctx.config.tracking, self.next_track_id)),
            (_, kept) => self.tracker = kept,
        }
        let mut frame = s.frame;
        // With a tracker, the frames' detections go down to its low bound (for it alone).
        frame.track_low = self.tracker.as_ref().map(|t| t.config().low_thresh);
        if *self.options != frame {
            self.options = Arc::new(frame);
        }
        events
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
        let detector = self.ctx.scheduler.detector().map(DetectorInfo::from);
        let hello = ServerMessage::SessionStarted {
            session_id: self.state.session_id.to_string(),
            protocol: PROTOCOL_VERSION,
            pipeline: self.kind.as_str(),
            codec: self.settings().codec.as_str(),
            limits,
            config: self.echo_config(&detector),
            detector,
        };
        if let Err(r) = self.send(&hello) {
            return r;
        }
        let sock = self.ws.get_ref().as_raw_fd();
        let wake = self.waker.as_raw_fd();
        let shut = self.ctx.shutdown.as_raw_fd();
        let mut shutting_down = false;
        // Bytes may already sit in tungstenite's buffer where poll(2) cannot see them: frames
        // that came in the same TCP segment as the upgrade request, or what is left when a
        // read turn stops at its cap. Read them before sleeping.
        let mut buffered = true;
        loop {
            let now = Instant::now();
            let message_deadline = self.message_started.map(|t| t + self.ctx.config.message_timeout);
            let timeout = match self.ending {
                _ if buffered => Some(Duration::ZERO),
                Ending::Closing(deadline) => Some(deadline.saturating_duration_since(now)),
                _ if self.slot.busy() => message_deadline.map(|d| d.saturating_duration_since(now)),
                _ => {
                    let idle = self.last_byte() + self.ctx.config.idle_timeout;
                    Some(message_deadline.map_or(idle, |m| m.min(idle)).saturating_duration_since(now))
                }
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
                // Bytes arrived (or the end): the idle timer restarts on any byte, and a message
                // in progress is timed from its first bytes (`on_message` ends it).
                let now = Instant::now();
                self.last_byte_rx = now;
                self.message_started.get_or_insert(now);
            }
            if ready[0].readable || buffered {
                match self.read_messages() {
                    Ok(more) => buffered = more,
                    Err(r) => return r,
                }
            }
            if self.want_write && ready[0].writable {
                if let Err(r) = self.flush() {
                    return r;
                }
            }
            let now = Instant::now();
            match self.ending {
                Ending::Open if self.message_started.is_some_and(|t| now >= t + self.ctx.config.message_timeout) => {
                    self.message_started = None;
                    self.request_close(close::POLICY, "message_timeout");
                }
                Ending::Open if !self.slot.busy() && now >= self.last_byte() + self.ctx.config.idle_timeout => {
                    self.request_close(close::NORMAL, "idle_timeout");
                }
                Ending::Closing(deadline) if now >= deadline => return self.end_reason(),
                _ => {}
            }
            if let Ending::CloseWhenNoneInFlight(code, reason) = self.ending {
                if !self.slot.busy() {
                    if let Err(r) = self.send_close(code, reason) {
                        return r;
                    }
                }
            }
        }
    }

    /// The configuration in force, as `session_started` and `configured` echo it.
    fn echo_config(&self, detector: &Option<DetectorInfo>) -> ConfigEcho {
        let options = self.settings().echo(detector.as_ref(), self.ctx.config.min_score);
        ConfigEcho::new(options, self.tracker.is_some(), self.analytics.spec())
    }

    /// The zone and line counts now, as a result carries them (absent without zones, lines);
    /// `GET /sessions` is given the same.
    fn counts(&mut self) -> (Option<Named<ZoneCount>>, Option<Named<LineCount>>) {
        let spec = self.analytics.spec();
        let zones = (!spec.zones.is_empty()).then(|| self.analytics.zone_counts());
        let lines = (!spec.lines.is_empty()).then(|| self.analytics.line_counts());
        // A session without zones or lines takes no lock per result (once emptied, it stays so).
        let shown = zones.is_some() || lines.is_some();
        if shown || self.counts_shown {
            self.state.set_counts(zones.clone().unwrap_or_default(), lines.clone().unwrap_or_default());
            self.counts_shown = shown;
        }
        (zones, lines)
    }

    /// When the client last sent anything: a byte, or a whole message.
    fn last_byte(&self) -> Instant {
        self.last_byte_rx.max(self.last_rx)
    }

    fn end_reason(&self) -> EndReason {
        self.closed_with.map_or(EndReason::ClientGone, EndReason::Closed)
    }

    /// Read every message available now, up to [`READS_PER_TURN`]; `Ok(true)` when the turn
    /// stopped at that cap (more may be buffered: read again before sleeping).
    fn read_messages(&mut self) -> Result<bool, EndReason> {
        if self.raw_drain {
            return self.drain_raw();
        }
        for _ in 0..READS_PER_TURN {
            match self.ws.read() {
                Ok(msg) => self.on_message(msg)?,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                    return Err(self.end_reason());
                }
                Err(tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. })) => {
                    // The payload was not read: the stream cannot be parsed any further.
                    self.last_rx = Instant::now();
                    let index = self.next_index();
                    self.invalid_frames += 1;
                    self.ctx.metrics.frame_invalid(FrameError::TooLarge.code());
                    self.send(&invalid_frame(index, FrameError::TooLarge.code()))?;
                    self.raw_drain = true;
                    self.request_close(close::TOO_BIG, "too_large");
                    return Ok(true);
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
                    return Ok(true);
                }
                Err(_) => return Err(EndReason::Io),
            }
        }
        Ok(true)
    }

    /// Discard raw bytes from a stream that can no longer be parsed, until EOF or would-block
    /// (`Ok(true)`: stopped at the cap, more may be there).
    fn drain_raw(&mut self) -> Result<bool, EndReason> {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..READS_PER_TURN {
            match self.ws.get_mut().read(&mut buf) {
                Ok(0) => return Err(self.end_reason()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(self.end_reason()),
            }
        }
        Ok(true)
    }

    fn next_index(&mut self) -> u64 {
        self.window.received(Instant::now());
        self.ctx.metrics.frame_received();
        self.state.frame_index.fetch_add(1, Ordering::Relaxed)
    }

    fn on_message(&mut self, msg: Message) -> Result<(), EndReason> {
        self.last_rx = Instant::now();
        self.message_started = None;
        match msg {
            Message::Binary(bytes) => self.on_frame(bytes),
            Message::Text(text) => self.on_text(&text),
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
            Ending::CloseWhenNoneInFlight(..) => return self.drop_frame(index),
            // Our close frame is out: nothing more can be sent.
            Ending::Closing(_) => return Ok(()),
        }
        if self.video.is_some() {
            return self.on_access_unit(index, bytes);
        }
        let info = match jpeg::validate(&bytes, &jpeg::Limits::from(&*self.ctx.config)) {
            Ok(info) => info,
            Err(e) => return self.on_invalid(index, e.code()),
        };
        let mark = Mark { index, received: self.last_rx, size: (info.width, info.height), decode_us: None };
        // A frame the tracker predicts (`detect_every`) keeps only its mark: its bytes go now,
        // undecoded.
        let job = self.detects().then(|| self.job(index, Frame::Jpeg { bytes, info }));
        self.offer(Entry { mark, job })
    }

    /// Latest-frame-wins: `entry` to the slot; submitted, answered, queued, or an older frame
    /// dropped for it.
    fn offer(&mut self, entry: Entry<Job>) -> Result<(), EndReason> {
        match self.slot.offer(entry, self.cadence.every().keeps_replaced()) {
            Offer::Now(Entry { job: Some(job), .. }) => self.submit(job)?,
            Offer::Now(Entry { mark, job: None }) => self.answer_predicted(mark)?,
            Offer::Queued => {}
            Offer::Dropped(old) => self.drop_frame(old.mark.index)?,
        }
        Ok(())
    }

    /// Answer frame `index` `invalid_frame` with `reason` (a [`FrameError`] or
    /// [`crate::vision::h264::VideoError`] code).
    fn on_invalid(&mut self, index: u64, reason: &'static str) -> Result<(), EndReason> {
        self.invalid_frames += 1;
        self.ctx.metrics.frame_invalid(reason);
        self.send(&invalid_frame(index, reason))?;
        if self.ctx.config.on_invalid == OnInvalid::Close {
            let code = if reason == FrameError::TooLarge.code() { close::TOO_BIG } else { close::INVALID_PAYLOAD };
            self.request_close(code, reason);
        }
        Ok(())
    }

    /// Hand `job` to the scheduler. If it cannot be queued (no worker will ever take it), the
    /// frame is answered with `internal` at once and the slot moves on, so the session never
    /// waits for a result that will not come.
    fn submit(&mut self, mut job: Job) -> Result<(), EndReason> {
        // The configuration in force when a worker is handed the frame (a `configure` that
        // came after the frame but before its turn applies to it).
        job.kind = self.kind;
        job.options = self.frame_options(job.received);
        let index = job.frame_index;
        if let Ok(ticket) = self.ctx.scheduler.submit(job, self.done_tx.clone(), Arc::clone(&self.waker)) {
            self.ticket = Some(ticket);
            return Ok(());
        }
        self.internal_errors += 1;
        self.ctx.metrics.inference_error();
        log::error!("session {} frame {index}: the frame workers are gone", self.state.session_id);
        self.send(&ServerMessage::Error { error: ErrorCode::Internal, frame_index: Some(index), detail: None })?;
        self.advance()
    }

    fn drop_frame(&mut self, index: u64) -> Result<(), EndReason> {
        let now = Instant::now();
        let dropped = self.state.dropped_frames.fetch_add(1, Ordering::Relaxed) + 1;
        self.ctx.metrics.frame_dropped();
        let slow_down = self.window.dropped(now);
        self.send(&ServerMessage::FrameDropped { frame_index: index, dropped_frames: dropped })?;
        if let Some(fps) = slow_down {
            self.send(&ServerMessage::SlowDown { dropped_frames: dropped, suggested_fps: fps })?;
        }
        let (drop, slow) = self.window.last_events();
        self.state.record_backpressure(drop, slow);
        Ok(())
    }

    /// A pool job finished: send its outcome, then start the waiting frame if any.
    fn finish(&mut self, done: FinishedFrame) -> Result<(), EndReason> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        match done.outcome {
            Ok(p) => {
                // Vision's full-precision result becomes the wire's here (rounded once, in
                // `protocol`); the tracker works on the exact boxes.
                let at_ms = self.at_ms(done.received);
                let (result, events) = match self.tracker.as_mut() {
                    Some(tracker) => {
                        let (analytics, mut events) = (&mut self.analytics, Vec::new());
                        let reuse = self.ocr_reuse.then_some((&mut self.reuse, at_ms));
                        let result = tracking::annotate(tracker, p.result, reuse, |tracker, seen| {
                            events = analytics.frame(done.frame_index, at_ms, seen, &ended(tracker.ended()));
                        });
                        (result, events)
                    }
                    None => (FrameResult::from(p.result), Vec::new()),
                };
                // An H.264 picture was decoded on this thread before it queued.
                let decoded_here = if self.video.is_some() { p.timings.decode } else { 0.0 };
                let queue = (ms(done.started.duration_since(done.received)) - decoded_here).max(0.0);
                let timings = Timings::new(&p.timings, queue, ms(done.finished.duration_since(done.received)));
                self.send_result(done.frame_index, result, timings, events)?;
            }
            Err(ProcessError::Invalid(e)) => self.on_invalid(done.frame_index, e.code())?,
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
        let (drop, slow) = self.window.last_events();
        self.state.record_backpressure(drop, slow);
        if self.ending != Ending::Open {
            self.pending.clear();
            for waiting in self.slot.take_waiting() {
                self.drop_frame(waiting.mark.index)?;
            }
        }
        self.advance()
    }

    /// Ask to close with `code` once the in-flight frame (if any) is answered. The waiting
    /// frame, if any, is dropped (and reported) since it will never run.
    fn request_close(&mut self, code: u16, reason: &'static str) {
        if self.ending == Ending::Open {
            self.ending = Ending::CloseWhenNoneInFlight(code, reason);
        }
    }

    fn send_close(&mut self, code: u16, reason: &'static str) -> Result<(), EndReason> {
        for waiting in self.slot.take_waiting() {
            self.drop_frame(waiting.mark.index)?;
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

impl<S: Read + Write> Drop for Session<S> {
    fn drop(&mut self) {
        if let (Some(ticket), true) = (&self.ticket, self.slot.busy()) {
            self.ctx.scheduler.cancel(ticket);
        }
    }
}

fn invalid_frame(index: u64, reason: &'static str) -> ServerMessage {
    ServerMessage::Error { error: ErrorCode::InvalidFrame, frame_index: Some(index), detail: Some(reason.into()) }
}
