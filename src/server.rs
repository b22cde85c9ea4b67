//! The listener: one acceptor thread, one thread per connection, the plain HTTP endpoints, the
//! checks that happen before the WebSocket upgrade, and graceful shutdown.
//!
//! Every connection's request head is read first (under `--handshake-timeout`, at most
//! [`MAX_REQUEST_HEAD`] bytes) and parsed with `httparse`. `GET /healthz`, `/metrics`,
//! `/sessions` and `/` (the demo page) are answered on the spot and the connection closed; any
//! other path gets 404, another method 405. On the stream endpoint a bad query gets 400, a plain
//! HTTP request 426, and a server at `--max-sessions` (or draining) 503 with `Retry-After`. Only
//! then does tungstenite perform the upgrade, with its message and frame limits set from
//! `--max-frame-bytes`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tungstenite::protocol::WebSocketConfig;

use crate::config::Config;
use crate::metrics::{self, Metrics};
use crate::pipeline::Engine;
use crate::protocol::{PipelineKind, SessionInfo};
use crate::session::{ConnStream, Session, SessionContext, SessionSnapshot, SessionState};
use crate::wake::{poll, Shutdown};

/// The WebSocket endpoint.
pub const ENDPOINT: &str = "/ws/video/stream";
/// Largest HTTP request head accepted before the upgrade, in bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The demo page served at `GET /` (plain HTML + JS, embedded in the binary).
pub const DEMO_PAGE: &str = include_str!("demo/index.html");
/// Stack size of a connection thread: the session loop is shallow, and 1,000 idle sessions
/// should not reserve 2 MiB of address space each.
const CONN_STACK: usize = 256 * 1024;

/// Live sessions, by id: the lock is taken only when a session starts or ends.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<uuid::Uuid, Arc<SessionState>>>,
    /// Sessions admitted (handshake passed the limit check), including ones still upgrading.
    admitted: AtomicUsize,
    /// Connection threads alive (any phase).
    connections: AtomicUsize,
}

impl Registry {
    /// Snapshots of every live session.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        self.sessions.lock().values().map(|s| s.snapshot()).collect()
    }

    /// Connection threads alive.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Sessions admitted (upgrading or running).
    fn admitted(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }
}

/// The engine, once the models are loaded: the server binds and answers (`/healthz` 503
/// `starting`, new sessions 503) before it is set.
type EngineSlot = Arc<OnceLock<Arc<Engine>>>;

/// A cheap handle to a running server: its address, its sessions, and its off switch.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Arc<Shutdown>,
    registry: Arc<Registry>,
    engine: EngineSlot,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Start a graceful shutdown (what SIGINT/SIGTERM do).
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }
    /// Whether a shutdown has started (by [`ServerHandle::shutdown`] or a signal).
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }
    /// Live sessions.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        self.registry.sessions()
    }
    /// Connection threads alive.
    pub fn connections(&self) -> usize {
        self.registry.connections()
    }
    /// Hand the loaded engine to a server bound with [`Server::bind_starting`]: from now on it
    /// admits sessions and `/healthz` says 200. A second engine is refused (returned).
    pub fn set_engine(&self, engine: Arc<Engine>) -> Result<(), Arc<Engine>> {
        self.engine.set(engine)
    }
}

/// What every connection thread shares (a [`SessionContext`] once the engine is there).
#[derive(Clone)]
struct Shared {
    config: Arc<Config>,
    engine: EngineSlot,
    shutdown: Arc<Shutdown>,
    metrics: Arc<Metrics>,
}

impl Shared {
    /// The context a session runs with, or `None` while the models are still loading.
    fn session_context(&self) -> Option<SessionContext> {
        Some(SessionContext {
            config: Arc::clone(&self.config),
            engine: Arc::clone(self.engine.get()?),
            shutdown: Arc::clone(&self.shutdown),
            metrics: Arc::clone(&self.metrics),
        })
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    ctx: Shared,
    registry: Arc<Registry>,
}

impl Server {
    /// Bind `config.listen` and prepare the shared state, with the engine ready.
    pub fn bind(config: Config, engine: Arc<Engine>) -> io::Result<Server> {
        let server = Server::bind_starting(config)?;
        let _ = server.ctx.engine.set(engine);
        Ok(server)
    }

    /// Bind `config.listen` before the models are loaded: until [`ServerHandle::set_engine`],
    /// `/healthz` answers 503 `starting`, upgrades are refused with 503 + `Retry-After`, and
    /// `/metrics`, `/sessions` and `/` are served (what `framewire serve` does, so a load
    /// balancer or Kubernetes sees "starting", not "connection refused").
    pub fn bind_starting(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let ctx = Shared {
            config: Arc::new(config),
            engine: Arc::default(),
            shutdown: Arc::new(Shutdown::new()?),
            metrics: Arc::new(Metrics::new()),
        };
        Ok(Server { listener, ctx, registry: Arc::default() })
    }

    /// A handle for tests, tools and signal handlers.
    pub fn handle(&self) -> io::Result<ServerHandle> {
        Ok(ServerHandle {
            addr: self.listener.local_addr()?,
            shutdown: Arc::clone(&self.ctx.shutdown),
            registry: Arc::clone(&self.registry),
            engine: Arc::clone(&self.ctx.engine),
        })
    }

    /// The write end of the shutdown pipe (for `signal-hook`).
    pub fn shutdown_write_fd(&self) -> std::os::fd::RawFd {
        self.ctx.shutdown.write_fd()
    }

    /// Accept connections until shutdown, then give sessions `--shutdown-grace` to finish.
    /// While draining, the listener stays open so `/healthz` answers 503 and new sessions are
    /// refused with 503 (a load balancer sees the instance leave, instead of connection errors).
    /// Returns true when every session ended within the grace period.
    pub fn run(self) -> io::Result<bool> {
        let lfd = self.listener.as_raw_fd();
        let sfd = self.ctx.shutdown.as_raw_fd();
        loop {
            let ready = poll(&[(lfd, false), (sfd, false)], None)?;
            if ready[1].readable {
                break;
            }
            if ready[0].readable {
                self.accept_all();
            }
        }
        let deadline = Instant::now() + self.ctx.config.shutdown_grace;
        log::info!("shutting down: {} session(s) open", self.registry.admitted());
        while self.registry.admitted() > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = (deadline - now).min(Duration::from_millis(10));
            if poll(&[(lfd, false)], Some(wait))?[0].readable {
                self.accept_all();
            }
        }
        drop(self.listener);
        let left = self.registry.admitted();
        if left > 0 {
            log::warn!("shutdown grace over with {left} session(s) still open");
        }
        Ok(left == 0)
    }

    fn accept_all(&self) {
        loop {
            let (tcp, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(5));
                    return;
                }
            };
            // Each connection thread is bounded by the handshake timeout until admitted; cap
            // how many may exist at once so a connect flood cannot exhaust threads.
            let cap = self.ctx.config.max_sessions.saturating_mul(2).saturating_add(64);
            if self.registry.connections.load(Ordering::SeqCst) >= cap {
                drop(tcp);
                continue;
            }
            self.registry.connections.fetch_add(1, Ordering::SeqCst);
            let guard = CountGuard(Arc::clone(&self.registry), Counter::Connections);
            let ctx = self.ctx.clone();
            let registry = Arc::clone(&self.registry);
            let spawned = std::thread::Builder::new().name("fw-conn".into()).stack_size(CONN_STACK).spawn(move || {
                let _guard = guard;
                connection(tcp, peer, ctx, registry);
            });
            if let Err(e) = spawned {
                log::warn!("cannot spawn a connection thread: {e}");
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Counter {
    Connections,
    Admitted,
}

/// Decrements its counter when dropped, whatever path the thread takes.
struct CountGuard(Arc<Registry>, Counter);

impl Drop for CountGuard {
    fn drop(&mut self) {
        let c = match self.1 {
            Counter::Connections => &self.0.connections,
            Counter::Admitted => &self.0.admitted,
        };
        c.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The plain HTTP endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    /// `GET /healthz`: 200 `ok` while sessions are accepted, else 503.
    Health,
    /// `GET /metrics`: Prometheus / OpenMetrics text.
    Metrics,
    /// `GET /sessions`: JSON array of [`SessionInfo`].
    Sessions,
    /// `GET /`: the demo page.
    Demo,
}

/// The verdict on a request head.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Upgrade, with the pipeline the query asked for (if any).
    Upgrade(Option<PipelineKind>),
    /// Answer a plain HTTP endpoint (`true`: a HEAD request, headers only).
    Page(Page, bool),
    Reject(u16, &'static str),
}

/// The query may hold `pipeline=detect|ocr|detect_ocr` once; anything else is refused.
fn check_query(query: &str) -> Result<Option<PipelineKind>, &'static str> {
    let mut pipeline = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pipeline", v)) if pipeline.is_none() => {
                pipeline = Some(PipelineKind::parse(v).ok_or("unknown pipeline (detect, ocr or detect_ocr)\n")?);
            }
            _ => return Err("unknown or repeated query parameter (accepted: pipeline=detect|ocr|detect_ocr)\n"),
        }
    }
    Ok(pipeline)
}

fn judge(req: &httparse::Request<'_, '_>) -> Verdict {
    let target = req.path.unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != ENDPOINT {
        let page = match path {
            "/healthz" => Page::Health,
            "/metrics" => Page::Metrics,
            "/sessions" => Page::Sessions,
            "/" | "/index.html" => Page::Demo,
            _ => return Verdict::Reject(404, "not found: the endpoint is /ws/video/stream\n"),
        };
        return match req.method {
            Some("GET") => Verdict::Page(page, false),
            Some("HEAD") => Verdict::Page(page, true),
            _ => Verdict::Reject(405, "method not allowed: use GET or HEAD\n"),
        };
    }
    let pipeline = match check_query(query) {
        Ok(p) => p,
        Err(why) => return Verdict::Reject(400, why),
    };
    let upgrade = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade") && String::from_utf8_lossy(h.value).eq_ignore_ascii_case("websocket")
    });
    if !upgrade {
        return Verdict::Reject(426, "this endpoint needs a WebSocket upgrade\n");
    }
    Verdict::Upgrade(pipeline)
}

fn status_text(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Time allowed to write a refusal (the handshake deadline may already be over).
const REJECT_WRITE_TIME: Duration = Duration::from_secs(1);

/// Write one plain HTTP response (without the body for HEAD) and count it; the connection
/// closes after it.
fn respond(stream: &mut ConnStream, metrics: &Metrics, code: u16, content_type: &str, body: &[u8], head_only: bool) {
    metrics.http_response(code);
    stream.set_deadline(Some(Instant::now() + REJECT_WRITE_TIME));
    let extra = match code {
        503 => "Retry-After: 1\r\n",
        426 => "Upgrade: websocket\r\n",
        405 => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n",
        status_text(code),
        body.len()
    );
    let body = if head_only { &[][..] } else { body };
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body));
}

/// A plain-text refusal.
fn reject(stream: &mut ConnStream, metrics: &Metrics, code: u16, body: &str) {
    respond(stream, metrics, code, "text/plain; charset=utf-8", body.as_bytes(), false);
}

/// Answer one of the plain HTTP endpoints.
fn serve_page(stream: &mut ConnStream, ctx: &Shared, registry: &Registry, page: Page, head: bool) {
    let m = &ctx.metrics;
    match page {
        Page::Health => {
            let (code, body) = if ctx.shutdown.is_triggered() {
                (503, "draining\n")
            } else if ctx.engine.get().is_none() {
                (503, "starting\n")
            } else if registry.admitted() >= ctx.config.max_sessions {
                (503, "full\n")
            } else {
                (200, "ok\n")
            };
            respond(stream, m, code, "text/plain; charset=utf-8", body.as_bytes(), head);
        }
        Page::Metrics => {
            let queued = ctx.engine.get().map_or(0, |e| e.queued());
            let text = m.render(registry.sessions.lock().len(), queued);
            respond(stream, m, 200, metrics::CONTENT_TYPE, text.as_bytes(), head);
        }
        Page::Sessions => {
            let list: Vec<SessionInfo> = registry
                .sessions()
                .into_iter()
                .map(|s| SessionInfo {
                    session_id: s.session_id.to_string(),
                    frame_index: s.frame_index,
                    dropped_frames: s.dropped_frames,
                    last_processed_timestamp: s.last_processed_timestamp,
                    backpressure_state: s.backpressure_state,
                    pipeline: s.pipeline.as_str(),
                    peer: s.peer.to_string(),
                })
                .collect();
            let body = serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec());
            respond(stream, m, 200, "application/json", &body, head);
        }
        Page::Demo => respond(stream, m, 200, "text/html; charset=utf-8", DEMO_PAGE.as_bytes(), head),
    }
}

/// Read the request head (up to `\r\n\r\n`) under the handshake deadline.
fn read_head(stream: &mut ConnStream) -> Result<Vec<u8>, u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(0),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(408),
            Err(_) => return Err(0),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(buf);
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(431);
        }
    }
}

fn connection(tcp: TcpStream, peer: SocketAddr, ctx: Shared, registry: Arc<Registry>) {
    let cfg = &ctx.config;
    if tcp.set_nodelay(true).and_then(|_| tcp.set_nonblocking(false)).is_err() {
        return;
    }
    let mut stream = ConnStream::new(tcp, Vec::new(), Some(Instant::now() + cfg.handshake_timeout));
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(0) => return,
        Err(code) => return reject(&mut stream, &ctx.metrics, code, "request head too large or too slow\n"),
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return reject(&mut stream, &ctx.metrics, 400, "malformed HTTP request\n"),
    }
    let kind = match judge(&req) {
        Verdict::Upgrade(kind) => kind.unwrap_or(cfg.pipeline),
        Verdict::Page(page, head) => return serve_page(&mut stream, &ctx, &registry, page, head),
        Verdict::Reject(code, body) => return reject(&mut stream, &ctx.metrics, code, body),
    };
    if ctx.shutdown.is_triggered() {
        return reject(&mut stream, &ctx.metrics, 503, "shutting down\n");
    }
    let Some(session_ctx) = ctx.session_context() else {
        return reject(&mut stream, &ctx.metrics, 503, "starting: models are loading, retry later\n");
    };
    // Admission: reserve a session slot or refuse with 503 before upgrading.
    let admitted = registry.admitted.fetch_add(1, Ordering::SeqCst);
    let _slot = CountGuard(Arc::clone(&registry), Counter::Admitted);
    if admitted >= cfg.max_sessions {
        return reject(&mut stream, &ctx.metrics, 503, "session limit reached, retry later\n");
    }
    // tungstenite parses the request head again from these bytes.
    stream.replay(head);
    let ws_config = WebSocketConfig {
        max_message_size: Some(cfg.max_frame_bytes),
        max_frame_size: Some(cfg.max_frame_bytes),
        write_buffer_size: 0,
        max_write_buffer_size: cfg.max_write_buffer,
        ..WebSocketConfig::default()
    };
    let mut ws = match tungstenite::accept_with_config(stream, Some(ws_config)) {
        Ok(ws) => ws,
        Err(e) => {
            log::debug!("handshake with {peer} failed: {e}");
            return;
        }
    };
    if ws.get_mut().into_session_mode().is_err() {
        return;
    }
    let state = Arc::new(SessionState::new(peer, kind));
    ctx.metrics.session_started();
    registry.sessions.lock().insert(state.session_id, Arc::clone(&state));
    let id = state.session_id;
    match Session::new(ws, session_ctx, state, kind) {
        Ok(session) => {
            session.run();
        }
        Err(e) => log::warn!("cannot start session for {peer}: {e}"),
    }
    registry.sessions.lock().remove(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(head: &str) -> Verdict {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        req.parse(head.as_bytes()).unwrap();
        judge(&req)
    }

    #[test]
    fn requests_are_judged_before_the_upgrade() {
        let up = "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(verdict(&format!("GET /ws/video/stream HTTP/1.1\r\n{up}")), Verdict::Upgrade(None));
        assert_eq!(
            verdict(&format!("GET /ws/video/stream?pipeline=detect HTTP/1.1\r\n{up}")),
            Verdict::Upgrade(Some(PipelineKind::Detect))
        );
        assert_eq!(
            verdict(&format!("GET /ws/video/stream?pipeline=ocr HTTP/1.1\r\n{up}")),
            Verdict::Upgrade(Some(PipelineKind::Ocr))
        );
        assert!(matches!(
            verdict(&format!("GET /ws/video/stream?pipeline=ocr&pipeline=ocr HTTP/1.1\r\n{up}")),
            Verdict::Reject(400, _)
        ));
        assert!(matches!(verdict(&format!("GET /other HTTP/1.1\r\n{up}")), Verdict::Reject(404, _)));
        assert_eq!(verdict("GET /healthz HTTP/1.1\r\n\r\n"), Verdict::Page(Page::Health, false));
        assert_eq!(verdict("GET /metrics HTTP/1.1\r\n\r\n"), Verdict::Page(Page::Metrics, false));
        assert_eq!(verdict("GET /sessions HTTP/1.1\r\n\r\n"), Verdict::Page(Page::Sessions, false));
        assert_eq!(verdict("GET / HTTP/1.1\r\n\r\n"), Verdict::Page(Page::Demo, false));
        assert_eq!(verdict("HEAD /healthz HTTP/1.1\r\n\r\n"), Verdict::Page(Page::Health, true));
        assert!(matches!(verdict("POST /metrics HTTP/1.1\r\n\r\n"), Verdict::Reject(405, _)));
        assert!(matches!(
            verdict(&format!("GET /ws/video/stream?pipeline=x HTTP/1.1\r\n{up}")),
            Verdict::Reject(400, _)
        ));
        assert!(matches!(verdict(&format!("GET /ws/video/stream?fps=3 HTTP/1.1\r\n{up}")), Verdict::Reject(400, _)));
        assert!(matches!(verdict("GET /ws/video/stream HTTP/1.1\r\n\r\n"), Verdict::Reject(426, _)));
    }
}
