//! The listener: one acceptor thread, one thread per connection, admission, and graceful
//! shutdown. The plain HTTP endpoints and the checks before the upgrade are in [`http`], the
//! session registry and admission counters in [`registry`], the connection's byte stream in
//! [`conn`], and the `poll(2)` wake-ups every thread sleeps on in [`poll`].
//!
//! Every connection's request head is read first (under `--handshake-timeout`, at most
//! [`MAX_REQUEST_HEAD`] bytes) and judged ([`http`]); only an acceptable upgrade request that
//! finds a free admission permit is upgraded by tungstenite, with its message and frame limits set
//! from `--max-frame-bytes`.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;

use crate::config::{Config, ADMIN_CONNECTIONS};
use crate::memory::Release;
use crate::metrics::Metrics;
use crate::protocol::options::Settings;
use crate::scheduler::Scheduler;
use crate::session::{Session, SessionContext, SessionSnapshot, SessionState};

mod accept;
pub mod conn;
pub mod http;
pub mod registry;

use crate::wake::{poll, Shutdown, Waker};
use conn::ConnStream;
use http::{read_head, reject, serve_page, Verdict};
pub use http::{DEMO_PAGE, ENDPOINT, MAX_REQUEST_HEAD, MAX_REQUEST_HEADERS};
pub use registry::Registry;
use registry::{CountGuard, Counter};

/// Stack size of a connection thread: the session loop is shallow, and 1,000 idle sessions
/// should not reserve 2 MiB of address space each.
const CONN_STACK: usize = 256 * 1024;

/// The scheduler, once the models are loaded: the server binds and answers (`/healthz` 503
/// `starting`, new sessions 503) before it is set.
type SchedulerCell = Arc<OnceLock<Arc<Scheduler>>>;

/// A cheap handle to a running server: its address, its sessions, and its off switch.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shutdown: Arc<Shutdown>,
    registry: Arc<Registry>,
    scheduler: SchedulerCell,
    release: Arc<Release>,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// The admin listener's bound address (`--admin-listen`), if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
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
    /// Hand the scheduler (with its loaded models) to a server bound with
    /// [`Server::bind_starting`]: from now on it admits sessions and `/healthz` says 200. A
    /// second one is refused (returned).
    pub fn set_scheduler(&self, scheduler: Arc<Scheduler>) -> Result<(), Arc<Scheduler>> {
        install_release(&scheduler, &self.registry, &self.release);
        self.scheduler.set(scheduler)
    }
}

/// What every connection thread shares (a [`SessionContext`] once the scheduler is there).
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) scheduler: SchedulerCell,
    pub(crate) shutdown: Arc<Shutdown>,
    pub(crate) metrics: Arc<Metrics>,
    /// Memory back to the system when the last session ends.
    pub(crate) release: Arc<Release>,
}

impl Shared {
    /// The context a session runs with, or `None` while the models are still loading.
    fn session_context(&self) -> Option<SessionContext> {
        Some(SessionContext {
            config: Arc::clone(&self.config),
            scheduler: Arc::clone(self.scheduler.get()?),
            shutdown: Arc::clone(&self.shutdown),
            metrics: Arc::clone(&self.metrics),
        })
    }
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    /// `--listen`: the stream endpoint, the demo page, the probes.
    Public,
    /// `--admin-listen`: the probes and `/sessions` only.
    Admin,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    admin: Option<TcpListener>,
    ctx: Shared,
    registry: Arc<Registry>,
}

impl Server {
    /// Bind `config.listen` and prepare the shared state, with the scheduler ready.
    pub fn bind(config: Config, scheduler: Arc<Scheduler>) -> io::Result<Server> {
        let server = Server::bind_starting(config)?;
        install_release(&scheduler, &server.registry, &server.ctx.release);
        let _ = server.ctx.scheduler.set(scheduler);
        Ok(server)
    }

    /// Bind `config.listen` before the models are loaded: until [`ServerHandle::set_scheduler`],
    /// `/healthz` answers 503 `starting`, upgrades are refused with 503 + `Retry-After`, and
    /// `/metrics`, `/sessions` and `/` are served (what `framewire serve` does, so a load
    /// balancer or Kubernetes sees "starting", not "connection refused").
    pub fn bind_starting(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let admin = config.admin_listen.map(TcpListener::bind).transpose()?;
        if let Some(a) = &admin {
            a.set_nonblocking(true)?;
        }
        let ctx = Shared {
            config: Arc::new(config),
            scheduler: Arc::default(),
            shutdown: Arc::new(Shutdown::new()?),
            metrics: Arc::new(Metrics::new()),
            release: Arc::default(),
        };
        Ok(Server { listener, admin, ctx, registry: Arc::default() })
    }

    /// A handle for tests, tools and signal handlers.
    pub fn handle(&self) -> io::Result<ServerHandle> {
        Ok(ServerHandle {
            addr: self.listener.local_addr()?,
            admin_addr: self.admin.as_ref().map(TcpListener::local_addr).transpose()?,
            shutdown: Arc::clone(&self.ctx.shutdown),
            registry: Arc::clone(&self.registry),
            scheduler: Arc::clone(&self.ctx.scheduler),
            release: Arc::clone(&self.ctx.release),
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
        let afd = self.admin.as_ref().map_or(-1, |a| a.as_raw_fd());
        let mut st = AcceptState::default();
        loop {
            let (fds, timeout) = st.poll_set(lfd, afd, None);
            let ready = poll(&[(fds[0], false), (sfd, false), (fds[1], false)], timeout)?;
            if ready[1].readable {
                break;
            }
            if ready[0].readable {
                self.accept_all(Port::Public, &mut st);
            }
            if ready[2].readable {
                self.accept_all(Port::Admin, &mut st);
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
            let (fds, timeout) = st.poll_set(lfd, afd, Some(wait));
            let ready = poll(&[(fds[0], false), (fds[1], false)], timeout)?;
            if ready[0].readable {
                self.accept_all(Port::Public, &mut st);
            }
            if ready[1].readable {
                self.accept_all(Port::Admin, &mut st);
            }
        }
        drop(self.listener);
        let left = self.registry.admitted();
        if left > 0 {
            log::warn!("shutdown grace over with {left} session(s) still open");
        }
        Ok(left == 0)
    }

    fn accept_all(&self, port: Port, st: &mut AcceptState) {
        let listener = match (port, &self.admin) {
            (Port::Admin, Some(admin)) => admin,
            _ => &self.listener,
        };
        loop {
            let (tcp, peer) = match listener.accept() {
                Ok(c) => {
                    st.backoff(port).succeeded();
                    c
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors on the admin port: give up a spare so the probe is answered.
                Err(e) if port == Port::Admin && accept::out_of_fds(&e) && st.reserve.release_one() => continue,
                Err(e) => {
                    // EMFILE and friends: leave this listener out of poll(2) for a while
                    // instead of spinning (see `accept`).
                    st.backoff(port).failed(Instant::now(), &e);
                    return;
                }
            };
            // Each connection thread is bounded by the handshake timeout until admitted; cap
            // how many may exist at once so a connect flood cannot exhaust threads.
            // The admin port has its own small budget: a flood on the public port cannot fail
            // the probes, and one on the admin port cannot take public connections.
            let (cap, counter) = match port {
                Port::Public => {
                    (self.ctx.config.max_sessions.saturating_mul(2).saturating_add(64), Counter::Connections)
                }
                Port::Admin => (ADMIN_CONNECTIONS, Counter::AdminConnections),
            };
            if self.registry.count(counter) >= cap {
                drop(tcp);
                continue;
            }
            let guard = self.registry.count_in(counter);
            let ctx = self.ctx.clone();
            let registry = Arc::clone(&self.registry);
            // The id is drawn now so the thread carries it (`fw-` + its first 8 hex digits, in
            // `top -H` and panic messages); it becomes the session's id if the upgrade succeeds.
            let id = uuid::Uuid::new_v4();
            let name = format!("fw-{}", &id.simple().to_string()[..8]);
            let spawned = std::thread::Builder::new().name(name).stack_size(CONN_STACK).spawn(move || {
                let _guard = guard;
                connection(tcp, peer, port, id, ctx, registry);
            });
            if let Err(e) = spawned {
                log::warn!("cannot spawn a connection thread: {e}");
            }
        }
    }
}

/// The acceptor's state across turns: each listener's backoff and the admin port's spare
/// descriptors.
struct AcceptState {
    public: accept::Backoff,
    admin: accept::Backoff,
    reserve: accept::Reserve,
}

impl Default for AcceptState {
    fn default() -> AcceptState {
        AcceptState {
            public: accept::Backoff::new("public"),
            admin: accept::Backoff::new("admin"),
            reserve: accept::Reserve::default(),
        }
    }
}

impl AcceptState {
    fn backoff(&mut self, port: Port) -> &mut accept::Backoff {
        match port {
            Port::Public => &mut self.public,
            Port::Admin => &mut self.admin,
        }
    }

    /// The listener fds to poll now (-1: paused, which poll(2) ignores) and the timeout: `wait`
    /// or the end of the first pause, whichever comes first. Takes spare descriptors back first.
    fn poll_set(&mut self, lfd: RawFd, afd: RawFd, wait: Option<Duration>) -> ([RawFd; 2], Option<Duration>) {
        self.reserve.refill();
        let now = Instant::now();
        let fds = [if self.public.paused(now) { -1 } else { lfd }, if self.admin.paused(now) { -1 } else { afd }];
        let resume = [self.public.wake_at(now), self.admin.wake_at(now)].into_iter().flatten().min();
        let timeout = match (wait, resume.map(|t| t.duration_since(now))) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (fds, timeout)
    }
}

fn connection(tcp: TcpStream, peer: SocketAddr, port: Port, id: uuid::Uuid, ctx: Shared, registry: Arc<Registry>) {
    let cfg = &ctx.config;
    if tcp.set_nodelay(true).and_then(|_| tcp.set_nonblocking(false)).is_err() {
        return;
    }
    let mut stream = ConnStream::new(tcp, Vec::new(), Some(Instant::now() + cfg.handshake_timeout));
    let mut head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(0) => return,
        Err(code) => return reject(&mut stream, &ctx.metrics, code, "request head too large or too slow\n"),
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            let why = format!("more than {MAX_REQUEST_HEADERS} request headers\n");
            return reject(&mut stream, &ctx.metrics, 431, &why);
        }
        _ => return reject(&mut stream, &ctx.metrics, 400, "malformed HTTP request\n"),
    }
    let asked = match http::judge_on(&req, port, cfg) {
        Verdict::Upgrade(asked) => asked,
        Verdict::Page(page, head) => return serve_page(&mut stream, &ctx, &registry, page, head),
        Verdict::Reject(code, body) => return reject(&mut stream, &ctx.metrics, code, &body),
    };
    if ctx.shutdown.is_triggered() {
        return reject(&mut stream, &ctx.metrics, 503, "shutting down\n");
    }
    let Some(session_ctx) = ctx.session_context() else {
        return reject(&mut stream, &ctx.metrics, 503, "starting: models are loading, retry later\n");
    };
    // The query's options on the server's defaults, resolved as a `configure` would be.
    let labels = || session_ctx.scheduler.detector().map(|d| d.classes).unwrap_or_default();
    let settings = match Settings::new(cfg.pipeline, cfg.track).apply(&asked, labels) {
        Ok(s) => s,
        Err(why) => return reject(&mut stream, &ctx.metrics, 400, &format!("{why}\n")),
    };
    // The session's own descriptor (the eventfd its frames' results wake it with) is made
    // before the upgrade: without it the client gets a 503 it can retry, not a 101 and a close.
    let waker = match Waker::new() {
        Ok(w) => Arc::new(w),
        Err(e) => {
            log::warn!("cannot make a session's wake-up fd for {peer}: {e}");
            return reject(&mut stream, &ctx.metrics, 503, "out of resources, retry later\n");
        }
    };
    // Admission: take a permit or refuse with 503 before upgrading.
    let admitted = registry.admit();
    let permit = CountGuard(Arc::clone(&registry), Counter::Admitted);
    if admitted >= cfg.max_sessions {
        // Given back before the refusal is written and drained (up to 250 ms): a refused
        // connection must not hold a slot the next client could have.
        drop(permit);
        return reject(&mut stream, &ctx.metrics, 503, "session limit reached, retry later\n");
    }
    // tungstenite parses the request head again from these bytes. Whatever the client sent
    // after the head (frames in the same TCP segment) is not part of the handshake (tungstenite
    // refuses "junk after the request"): it is replayed to the session after the upgrade.
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").map_or(head.len(), |p| p + 4);
    let early = head.split_off(end);
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
    if !early.is_empty() {
        ws.get_mut().replay(early);
    }
    let state = Arc::new(SessionState::with_id(id, peer, settings.kind));
    ctx.metrics.session_started();
    // Out of the list and its permit released in one step when this guard drops, whatever path
    // the thread takes (a panic too): /sessions, /healthz and admission agree.
    let _listed = registry.list(Arc::clone(&state), permit);
    let frames = Arc::clone(&session_ctx.scheduler);
    Session::new(ws, session_ctx, state, waker).with_settings(settings).run();
    // The last session (this one, still admitted: a shutdown waits for it) hands the free memory
    // back before it leaves.
    release_if_alone(&registry, &ctx.release, frames.frames_finished(), 1);
}

/// No session left but `us` (the last one is ending, or the frame a gone session left running
/// just finished): the free memory the frames used goes back to the system (`crate::memory`).
fn release_if_alone(registry: &Registry, release: &Release, frames_finished: u64, us: usize) {
    if registry.admitted() == us && release.last_session_ended(frames_finished) {
        log::debug!("no session left: free memory handed back to the system");
    }
}

/// After a frame whose session was gone, the scheduler's worker checks too.
fn install_release(scheduler: &Scheduler, registry: &Arc<Registry>, release: &Arc<Release>) {
    let (registry, release) = (Arc::clone(registry), Arc::clone(release));
    scheduler.after_orphan(Box::new(move |finished| release_if_alone(&registry, &release, finished, 0)));
}
