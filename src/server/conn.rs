//! The byte stream under a server connection: a `TcpStream` with an optional I/O deadline (the
//! handshake's) that first replays the request head the HTTP pre-check already read.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

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

/// How long a refused connection is drained after its answer, at most.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_millis(250);
/// Most bytes drained from a refused connection.
const DRAIN_BYTES: usize = 256 * 1024;

impl ConnStream {
    /// After a final answer: shut down the write side (the client reads the answer, then EOF),
    /// then read and discard what the client still sends, briefly and boundedly, before the
    /// socket is closed. Closing with unread bytes in the receive buffer makes the kernel send a
    /// reset, which can destroy the answer before the client reads it.
    pub fn finish_and_drain(&mut self) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + DRAIN_TIME;
        let mut buf = [0u8; 8192];
        let mut drained = 0;
        while drained < DRAIN_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.tcp.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
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
