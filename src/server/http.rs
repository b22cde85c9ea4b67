//! The plain HTTP side of the port, before any WebSocket upgrade: the request-head read (under
//! `--handshake-timeout`, at most [`MAX_REQUEST_HEAD`] bytes, parsed with `httparse`), the
//! verdict on it, and the answers. `GET /healthz`, `/metrics`, `/sessions` and `/` (the demo
//! page) are answered on the spot and the connection closed; any other path gets 404, another
//! method 405. On the stream endpoint a bad query gets 400, a plain HTTP request 426, and a
//! server at `--max-sessions` (or draining) 503 with `Retry-After`.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::conn::ConnStream;
use super::registry::Registry;
use super::{Port, Shared};
use crate::config::Config;
use crate::metrics::{self, Metrics};
use crate::protocol::options::{Asked, Raw};
use crate::protocol::SessionInfo;

/// The WebSocket endpoint.
pub const ENDPOINT: &str = "/ws/video/stream";
/// Largest HTTP request head accepted before the upgrade, in bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Most request header lines accepted (more: 431). 64: browsers send ~15, and proxies on the way
/// (load balancer, CDN, auth sidecar) add their own `X-Forwarded-*`, tracing and auth headers;
/// 32 was seen to be too few behind some of them. The head's byte cap bounds the cost anyway.
pub const MAX_REQUEST_HEADERS: usize = 64;
/// The demo page served at `GET /` (plain HTML + JS, embedded in the binary).
pub const DEMO_PAGE: &str = include_str!("demo/index.html");
/// Replaced in [`DEMO_PAGE`] by `true` or `false` (`--demo-remote-ws`): whether the page's
/// `?ws=` may point at another host than the page's.
const DEMO_REMOTE_WS_FLAG: &str = "/*FRAMEWIRE_DEMO_REMOTE_WS*/false";

/// The plain HTTP endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
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
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Upgrade, with what the query asked for.
    Upgrade(Asked),
    /// Answer a plain HTTP endpoint (`true`: a HEAD request, headers only).
    Page(Page, bool),
    /// Refuse with this status and body.
    Reject(u16, String),
}

/// Accepted query parameters, for error messages.
const ACCEPTED: &str = "accepted, each at most once: pipeline=detect|ocr|detect_ocr, track=true|false, \
                        min_score=0..1, classes=label,label,…, max_detections=1..10000, ocr=frame|detections, \
                        ocr_reuse=true|false, detect_every=1..30|auto";

/// The query's options, checked one by one as a `configure` message's are ([`Asked::take`]);
/// an unknown parameter, a repeat or a bad value is refused with a message saying what is
/// accepted. What they mean for this server (labels, `ocr=detections`) is judged after.
fn check_query(query: &str) -> Result<Asked, String> {
    let mut q = Asked::default();
    let bad = |what: &str| Err(format!("{what} ({ACCEPTED})\n"));
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, v)) = pair.split_once('=') else { return bad(&format!("`{pair}` has no value")) };
        if seen.contains(&key) {
            return bad(&format!("`{key}` given twice"));
        }
        match q.take(key, Raw::Query(v)) {
            Ok(true) => seen.push(key),
            Ok(false) => return bad(&format!("unknown query parameter `{key}`")),
            Err(e) => return bad(&e.to_string()),
        }
    }
    Ok(q)
}

/// What a request for `path` gets on `port`, before anything else is judged: the admin port
/// serves only the probes and `/sessions`; with an admin port, `/sessions` (client addresses)
/// leaves the public port; without `--demo` there is no demo page.
fn not_on_port(path: &str, port: Port, cfg: &Config) -> bool {
    match port {
        Port::Admin => !matches!(path, "/healthz" | "/metrics" | "/sessions"),
        Port::Public => {
            (path == "/sessions" && cfg.admin_listen.is_some()) || (matches!(path, "/" | "/index.html") && !cfg.demo)
        }
    }
}

/// [`judge`], for a request that came in on `port`.
pub(crate) fn judge_on(req: &httparse::Request<'_, '_>, port: Port, cfg: &Config) -> Verdict {
    let target = req.path.unwrap_or("");
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if not_on_port(path, port, cfg) {
        return Verdict::Reject(404, "not found on this port\n".into());
    }
    judge(req)
}

pub(crate) fn judge(req: &httparse::Request<'_, '_>) -> Verdict {
    let target = req.path.unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != ENDPOINT {
        let page = match path {
            "/healthz" => Page::Health,
            "/metrics" => Page::Metrics,
            "/sessions" => Page::Sessions,
            "/" | "/index.html" => Page::Demo,
            _ => return Verdict::Reject(404, "not found: the endpoint is /ws/video/stream\n".into()),
        };
        return match req.method {
            Some("GET") => Verdict::Page(page, false),
            Some("HEAD") => Verdict::Page(page, true),
            _ => Verdict::Reject(405, "method not allowed: use GET or HEAD\n".into()),
        };
    }
    let asked = match check_query(query) {
        Ok(q) => q,
        Err(why) => return Verdict::Reject(400, why),
    };
    let upgrade = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade") && String::from_utf8_lossy(h.value).eq_ignore_ascii_case("websocket")
    });
    if !upgrade {
        return Verdict::Reject(426, "this endpoint needs a WebSocket upgrade\n".into());
    }
    // The rest of RFC 6455 §4.1-4.2's handshake, each with its own answer (tungstenite would
    // only drop the connection).
    if req.method != Some("GET") {
        return Verdict::Reject(405, "method not allowed: a WebSocket upgrade is a GET\n".into());
    }
    if req.version != Some(1) {
        return Verdict::Reject(400, "a WebSocket upgrade needs HTTP/1.1\n".into());
    }
    let header = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let connection_upgrade = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .any(|h| String::from_utf8_lossy(h.value).split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if !connection_upgrade {
        return Verdict::Reject(400, "a WebSocket upgrade needs `Connection: Upgrade`\n".into());
    }
    if header("sec-websocket-version").map(|v| v.trim_ascii()) != Some(b"13".as_slice()) {
        return Verdict::Reject(426, "unsupported WebSocket version: this server speaks 13\n".into());
    }
    if header("sec-websocket-key").is_none_or(|k| k.trim_ascii().is_empty()) {
        return Verdict::Reject(400, "a WebSocket upgrade needs a `Sec-WebSocket-Key`\n".into());
    }
    Verdict::Upgrade(asked)
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
pub(crate) fn respond(
    stream: &mut ConnStream,
    metrics: &Metrics,
    code: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) {
    metrics.http_response(code);
    stream.set_deadline(Some(Instant::now() + REJECT_WRITE_TIME));
    let extra = match code {
        503 => "Retry-After: 1\r\n",
        // RFC 6455 §4.4: a version the server does not speak is answered with the ones it does.
        426 => "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
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
    stream.finish_and_drain();
}

/// A plain-text refusal.
pub(crate) fn reject(stream: &mut ConnStream, metrics: &Metrics, code: u16, body: &str) {
    respond(stream, metrics, code, "text/plain; charset=utf-8", body.as_bytes(), false);
}

/// Answer one of the plain HTTP endpoints.
pub(crate) fn serve_page(stream: &mut ConnStream, ctx: &Shared, registry: &Registry, page: Page, head: bool) {
    let m = &ctx.metrics;
    match page {
        Page::Health => {
            let (code, body) = if ctx.shutdown.is_triggered() {
                (503, "draining\n")
            } else if ctx.scheduler.get().is_none() {
                (503, "starting\n")
            } else if registry.admitted() >= ctx.config.max_sessions {
                (503, "full\n")
            } else {
                (200, "ok\n")
            };
            respond(stream, m, code, "text/plain; charset=utf-8", body.as_bytes(), head);
        }
        Page::Metrics => {
            let (queued, builds) = ctx.scheduler.get().map_or((0, 0), |e| (e.queued(), e.plans_built()));
            let text = m.render(registry.live(), queued, builds);
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
                    zones: s.zones,
                    lines: s.lines,
                })
                .collect();
            let body = serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec());
            respond(stream, m, 200, "application/json", &body, head);
        }
        Page::Demo => {
            let allow = if ctx.config.demo_remote_ws { "true" } else { "false" };
            let page = DEMO_PAGE.replace(DEMO_REMOTE_WS_FLAG, allow);
            respond(stream, m, 200, "text/html; charset=utf-8", page.as_bytes(), head)
        }
    }
}

/// Read the request head (up to `\r\n\r\n`) under the handshake deadline.
pub(crate) fn read_head(stream: &mut ConnStream) -> Result<Vec<u8>, u16> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::PipelineKind;

    fn verdict(head: &str) -> Verdict {
        let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        req.parse(head.as_bytes()).unwrap();
        judge(&req)
    }

    #[test]
    fn requests_are_judged_before_the_upgrade() {
        let up = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
        let asked = |pipeline, track| Verdict::Upgrade(Asked { pipeline, track, ..Asked::default() });
        assert_eq!(verdict(&format!("GET /ws/video/stream HTTP/1.1\r\n{up}")), asked(None, None));
        assert_eq!(
            verdict(&format!("GET /ws/video/stream?pipeline=detect HTTP/1.1\r\n{up}")),
            asked(Some(PipelineKind::Detect), None)
        );
        assert_eq!(
            verdict(&format!("GET /ws/video/stream?pipeline=ocr&track=true HTTP/1.1\r\n{up}")),
            asked(Some(PipelineKind::Ocr), Some(true))
        );
        assert_eq!(verdict(&format!("GET /ws/video/stream?track=false HTTP/1.1\r\n{up}")), asked(None, Some(false)));
        assert!(matches!(
            verdict(&format!("GET /ws/video/stream?track=yes HTTP/1.1\r\n{up}")),
            Verdict::Reject(400, _)
        ));
        assert!(matches!(
            verdict(&format!("GET /ws/video/stream?track=true&track=true HTTP/1.1\r\n{up}")),
            Verdict::Reject(400, _)
        ));
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
