//! `framewire stream`'s connection to the server while a session runs, with a deadline on
//! every wait ([`Timeouts`]): a write may block at most `--write-timeout`; with frames in flight
//! a message must come within `--answer-timeout`; with nothing in flight the link is pinged after
//! `--ping-interval` of silence and must answer within as long again. A link that dies without a
//! reset sends nothing and TCP never notices: these deadlines are how the client does, so it can
//! close the socket and connect again ([`LinkFault`]).
//!
//! One thread owns the socket (a blocking tungstenite socket cannot be read and written from two
//! threads): it sends when its pacing allows and reads with a timeout in between.

use std::time::{Duration, Instant};

use tungstenite::Message;

use super::common::{connect, timed_out, ConnectError, Timeouts, Ws};

/// Why the link is taken for dead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkFault {
    /// Frames were in flight and nothing came for `--answer-timeout`.
    #[error("no message for {} s with {} frame(s) in flight: the link is dead", .0.as_secs_f64(), .1)]
    AnswerTimeout(Duration, usize),
    /// Idle, a ping went out and nothing came back within `--ping-interval`.
    #[error("no pong within {} s of a ping: the link is dead", .0.as_secs_f64())]
    PongTimeout(Duration),
    /// A write blocked for `--write-timeout` (the server stopped reading or the link carrying).
    #[error("a write blocked for {} s: the link is dead", .0.as_secs_f64())]
    WriteTimeout(Duration),
    /// The connection broke (reset, closed without a close frame, I/O error).
    #[error("{0}")]
    Broken(String),
}

/// What one read brought.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A text message (every protocol message is one).
    Text(String),
    /// The server's close frame: code and reason.
    Closed(u16, String),
    /// Nothing within the wait (or a ping, pong or binary message, which need no answer here).
    Nothing,
}

/// An open session's socket and its deadlines.
pub struct Link {
    ws: Ws,
    t: Timeouts,
    /// When the server last sent anything (or the session opened).
    last_rx: Instant,
    /// Since when frames have been in flight without a break.
    awaiting_since: Option<Instant>,
    /// When the outstanding ping went out.
    ping_sent: Option<Instant>,
}

impl Link {
    /// Connect and read `session_started` under `t` (see [`connect`]); returns the link and the
    /// greeting's text.
    pub fn open(url: &str, t: &Timeouts) -> Result<(Link, String), ConnectError> {
        let (ws, hello) = connect(url, t)?;
        let now = Instant::now();
        Ok((Link { ws, t: *t, last_rx: now, awaiting_since: None, ping_sent: None }, hello))
    }

    /// Send one message; a write that blocks for `--write-timeout` is a dead link.
    pub fn send(&mut self, msg: Message) -> Result<(), LinkFault> {
        match self.ws.send(msg) {
            Ok(()) => Ok(()),
            Err(e) if timed_out(&e) => Err(LinkFault::WriteTimeout(self.t.write)),
            Err(e) => Err(LinkFault::Broken(e.to_string())),
        }
    }

    /// Wait at most `wait` for a message, `in_flight` frames being unanswered, and keep the
    /// deadlines: `Err` when the link is dead.
    pub fn recv(&mut self, wait: Duration, in_flight: usize) -> Result<Incoming, LinkFault> {
        let now = Instant::now();
        // When the link is taken for dead if nothing comes (`None`: idle, no ping out yet), and
        // when to look again.
        let dead_at = if in_flight > 0 {
            self.ping_sent = None;
            let since = *self.awaiting_since.get_or_insert(now);
            Some(since.max(self.last_rx) + self.t.answer)
        } else {
            self.awaiting_since = None;
            if self.ping_sent.is_none() && now >= self.last_rx + self.t.ping {
                self.send(Message::Ping(Vec::new()))?;
                self.ping_sent = Some(now);
            }
            self.ping_sent.map(|sent| sent + self.t.ping)
        };
        let next = dead_at.unwrap_or(self.last_rx + self.t.ping);
        let left = next.saturating_duration_since(now);
        if dead_at.is_some() && left.is_zero() {
            return Err(self.fault(in_flight));
        }
        let _ = self.ws.get_mut().set_read_timeout(Some(wait.min(left).max(Duration::from_millis(1))));
        match self.ws.read() {
            Ok(m) => {
                self.last_rx = Instant::now();
                self.ping_sent = None;
                Ok(match m {
                    Message::Text(t) => Incoming::Text(t.to_string()),
                    Message::Close(f) => {
                        let (code, reason) = f.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.into()));
                        Incoming::Closed(code, reason)
                    }
                    _ => Incoming::Nothing,
                })
            }
            Err(e) if timed_out(&e) => match dead_at {
                Some(at) if Instant::now() >= at => Err(self.fault(in_flight)),
                _ => Ok(Incoming::Nothing),
            },
            Err(tungstenite::Error::ConnectionClosed) => Err(LinkFault::Broken("closed".into())),
            Err(e) => Err(LinkFault::Broken(e.to_string())),
        }
    }

    fn fault(&self, in_flight: usize) -> LinkFault {
        match in_flight {
            0 => LinkFault::PongTimeout(self.t.ping),
            n => LinkFault::AnswerTimeout(self.t.answer, n),
        }
    }

    /// Close cleanly: send a close frame and read until the server's reply (at most 2 s).
    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let until = Instant::now() + Duration::from_secs(2);
        while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            let _ = self.ws.get_mut().set_read_timeout(Some(left.min(Duration::from_millis(100))));
            match self.ws.read() {
                Ok(_) => {}
                Err(e) if timed_out(&e) => {}
                Err(_) => break,
            }
        }
    }
}
