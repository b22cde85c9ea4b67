//! Wake-up file descriptors and `poll(2)`, the lowest layer of the server: a connection thread
//! sleeps in `poll(2)` on its socket and still reacts within microseconds when its frame's result
//! is ready (a frame worker wakes its [`Waker`]) or the server shuts down ([`Shutdown`]), without
//! busy-polling an idle connection. The acceptor, the sessions and the scheduler all use it; it
//! uses nothing of theirs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A per-session eventfd: workers [`Waker::wake`] it, the connection thread polls it.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A new non-blocking eventfd.
    pub fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the returned fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        Ok(Waker { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Make the fd readable (idempotent until [`Waker::drain`]).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own fd. A full counter (EAGAIN) still
        // leaves the fd readable, so the result can be ignored.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Reset the fd to not readable.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking fd.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The server-wide shutdown signal: a pipe whose read end becomes readable for good once
/// anyone (a signal handler through `signal-hook`, or [`Shutdown::trigger`]) writes to it.
#[derive(Debug)]
pub struct Shutdown {
    read: OwnedFd,
    write: OwnedFd,
}

impl Shutdown {
    /// A new, untriggered shutdown pipe.
    pub fn new() -> io::Result<Shutdown> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two valid descriptors on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds are fresh and owned only here.
        unsafe { Ok(Shutdown { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) }) }
    }

    /// Start the shutdown (idempotent).
    pub fn trigger(&self) {
        // SAFETY: one byte from a valid buffer to our own fd; a full pipe is still readable.
        unsafe { libc::write(self.write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        matches!(poll(&[(self.read.as_raw_fd(), false)], Some(Duration::ZERO)), Ok(r) if r[0].readable)
    }

    /// The write end, for `signal_hook::low_level::pipe::register_raw`.
    pub fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }
}

impl AsRawFd for Shutdown {
    fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}

/// Readiness of one polled fd.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    /// Readable (or hung up / in error: a read will tell).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
}

/// `poll(2)` on up to 4 fds: `(fd, want_write)`; always asks for readability. `None` waits
/// forever. Returns one [`Ready`] per fd, all false on timeout. EINTR counts as a timeout.
pub fn poll(fds: &[(RawFd, bool)], timeout: Option<Duration>) -> io::Result<[Ready; 4]> {
    let mut p = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 4];
    let n = fds.len().min(4);
    for (slot, &(fd, want_write)) in p.iter_mut().zip(fds.iter()) {
        slot.fd = fd;
        slot.events = libc::POLLIN | if want_write { libc::POLLOUT } else { 0 };
    }
    let ms = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as libc::c_int + i32::from(d.subsec_nanos() % 1_000_000 != 0),
    };
    // SAFETY: p holds n initialised pollfd structs.
    let r = unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, ms) };
    let mut out = [Ready::default(); 4];
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(out) } else { Err(e) };
    }
    for (o, q) in out.iter_mut().zip(p.iter()).take(n) {
        o.readable = q.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
        o.writable = q.revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waker_is_readable_after_wake_until_drained() {
        let w = Waker::new().unwrap();
        let fd = w.as_raw_fd();
        assert!(!poll(&[(fd, false)], Some(Duration::ZERO)).unwrap()[0].readable);
        w.wake();
        w.wake();
        assert!(poll(&[(fd, false)], Some(Duration::ZERO)).unwrap()[0].readable);
        w.drain();
        assert!(!poll(&[(fd, false)], Some(Duration::ZERO)).unwrap()[0].readable);
    }

    #[test]
    fn shutdown_stays_triggered() {
        let s = Shutdown::new().unwrap();
        assert!(!s.is_triggered());
        s.trigger();
        assert!(s.is_triggered());
        assert!(s.is_triggered());
    }
}
