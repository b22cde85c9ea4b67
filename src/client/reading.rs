//! Reading a source's bytes without waiting for ever, and keeping a child's complaints without
//! growing: [`Watched`] reads a descriptor in `poll(2)` beside a stop descriptor and a
//! deadline (the camera watchdog's), [`stdin_file`] is standard input for it, and [`Tail`] keeps
//! the last few KiB of a stream (ffmpeg's stderr) however much comes.

use std::cell::Cell;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::wake::poll;

/// Bytes of ffmpeg's stderr kept (its last lines, for the note when it ends).
pub const TAIL_BYTES: usize = 4096;

/// The last bytes of a stream (a child's stderr), kept as they come: at most `cap` bytes
/// however much is written.
#[derive(Debug, Clone)]
pub struct Tail {
    buf: Vec<u8>,
    cap: usize,
}

impl Tail {
    /// An empty tail of at most `cap` bytes.
    pub fn new(cap: usize) -> Tail {
        Tail { buf: Vec::with_capacity(cap), cap }
    }

    /// Keep the last `cap` bytes of what was kept and `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(self.cap)..];
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..over);
        self.buf.extend_from_slice(bytes);
    }

    /// Read `r` to its end into a tail of `cap` bytes.
    pub fn read(mut r: impl Read, cap: usize) -> Tail {
        let mut t = Tail::new(cap);
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => return t,
                Ok(n) => t.push(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return t,
            }
        }
    }

    /// The last non-empty line, trimmed.
    pub fn last_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
    }

    /// Bytes held (at most `cap`), and the buffer's capacity.
    pub fn held(&self) -> (usize, usize) {
        (self.buf.len(), self.buf.capacity())
    }
}

/// A blocking read of `fd` (`inner`'s descriptor) that waits in `poll(2)` beside a stop
/// descriptor (`stop_fd`, readable once `stopped` is set: then the stream ends) and, as a
/// watchdog, until `deadline` (past it: a `TimedOut` error).
pub struct Watched<'a, R> {
    /// What is read.
    pub inner: R,
    /// Its descriptor.
    pub fd: RawFd,
    /// Readable once stopped (-1: none).
    pub stop_fd: RawFd,
    /// Set when the reader must stop.
    pub stopped: &'a AtomicBool,
    /// No data by then: `TimedOut` (moved on by the reader's owner, e.g. at each frame).
    pub deadline: Option<&'a Cell<Instant>>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return Ok(0);
            }
            let left = self.deadline.map(|d| d.get().saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no frame"));
            }
            let ready = poll(&[(self.fd, false), (self.stop_fd, false)], left)?;
            if ready[0].readable {
                return self.inner.read(buf);
            }
        }
    }
}

/// Standard input as a file that is not closed when dropped (fd 0 is the process's), read
/// without std's buffer (a buffer could hold bytes `poll(2)` does not see).
pub fn stdin_file() -> ManuallyDrop<std::fs::File> {
    // SAFETY: fd 0 is open for the process's life; ManuallyDrop never closes it.
    ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_of_megabytes_of_complaints_holds_a_few_kib() {
        // 16 MiB of ffmpeg-like lines through a reader, then the last one.
        struct Complaints(usize);
        impl Read for Complaints {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    let last = b"[mjpeg @ 0x55] last line\n";
                    let n = last.len().min(buf.len());
                    buf[..n].copy_from_slice(&last[..n]);
                    self.0 = usize::MAX;
                    return Ok(n);
                }
                if self.0 == usize::MAX {
                    return Ok(0);
                }
                let line = b"[mjpeg @ 0x55] error count: 3 (damaged frame)\n";
                let n = (buf.len() / line.len()).max(1).min(self.0.div_ceil(line.len()));
                for i in 0..n {
                    buf[i * line.len()..(i + 1) * line.len()].copy_from_slice(line);
                }
                self.0 = self.0.saturating_sub(n * line.len());
                Ok(n * line.len())
            }
        }
        let t = Tail::read(Complaints(16 << 20), TAIL_BYTES);
        let (held, capacity) = t.held();
        assert!(held <= TAIL_BYTES && capacity <= 2 * TAIL_BYTES, "{held} bytes held in {capacity}");
        assert_eq!(t.last_line(), "[mjpeg @ 0x55] last line");
        let mut t = Tail::new(8);
        t.push(b"0123456789");
        t.push(b"ab");
        assert_eq!(t.last_line(), "456789ab");
    }
}
