//! Splitting an H.264 Annex B byte stream (ffmpeg's `-f h264` on a pipe, with an access unit
//! delimiter inserted before every access unit by `-bsf:v h264_metadata=aud=insert`) into
//! access units, one per WebSocket message (`framewire stream --codec h264`).
//!
//! An access unit ends where the next one's delimiter starts. Waiting for that delimiter would
//! hold every picture back by one frame period, so an access unit is also complete when the
//! pipe goes quiet after it ([`AU_IDLE`]): ffmpeg (`-flush_packets 1`) writes each packet at
//! once, so a pause inside one does not happen in practice. Each access unit is bounded by a
//! byte limit, like an MJPEG frame.

use std::io::{self, Read};
use std::time::Duration;

/// How long the pipe must stay quiet after an access unit's last byte for it to be sent
/// without waiting for the next delimiter.
pub const AU_IDLE: Duration = Duration::from_millis(3);

/// Why the stream could not be split.
#[derive(Debug, thiserror::Error)]
pub enum AnnexBError {
    /// Reading the stream failed.
    #[error("read: {0}")]
    Io(#[from] io::Error),
    /// An access unit is larger than the limit.
    #[error("an access unit is larger than {0} bytes")]
    TooLarge(usize),
    /// The stream does not start with an access unit delimiter (not what ffmpeg was asked
    /// for).
    #[error("not an H.264 stream with access unit delimiters")]
    NotAnnexB,
}

const CHUNK: usize = 64 * 1024;

/// Where the search for the next access unit's delimiter starts: past the current one's
/// (`00 00 00 01 09 xx` or `00 00 01 09 xx`: a delimiter has a payload byte).
const PAST_DELIMITER: usize = 5;

/// Where the access unit delimiter `00 00 00 01 09` (or `00 00 01 09`) whose 3-byte start code
/// is at or after `from` starts (its leading zero byte included, from 1 on).
fn next_delimiter(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 4 <= buf.len() {
        if buf[i..i + 3] == [0, 0, 1] && buf[i + 3] & 0x1f == 9 {
            return Some(if i > 0 && buf[i - 1] == 0 { i - 1 } else { i });
        }
        i += 1;
    }
    None
}

/// Whether `buf` starts with an access unit delimiter.
fn starts_with_delimiter(buf: &[u8]) -> bool {
    let at = if buf.starts_with(&[0]) { 1 } else { 0 };
    buf.get(at..at + 4).is_some_and(|b| b[..3] == [0, 0, 1] && b[3] & 0x1f == 9)
}

/// Splits an Annex B stream into access units (see the module doc).
pub struct AnnexBSplitter<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a delimiter (past the first).
    searched: usize,
    eof: bool,
    /// Whether the pipe stays quiet for `d` (true: nothing more to read for now).
    quiet: Box<dyn FnMut(Duration) -> bool + Send>,
}

impl<R: Read> AnnexBSplitter<R> {
    /// Split `reader`, refusing access units over `max` bytes; `quiet(d)` says whether no byte
    /// comes within `d` (`|_| false`: only the next delimiter ends an access unit).
    pub fn new(reader: R, max: usize, quiet: Box<dyn FnMut(Duration) -> bool + Send>) -> Self {
        AnnexBSplitter { reader, max, buf: Vec::new(), searched: PAST_DELIMITER, eof: false, quiet }
    }

    fn refill(&mut self) -> io::Result<()> {
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => {
                    self.buf.truncate(old + n);
                    self.eof = n == 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }

    /// The next access unit (from its delimiter on), or `None` at the end of the stream.
    pub fn next_au(&mut self) -> Result<Option<Vec<u8>>, AnnexBError> {
        loop {
            if self.buf.len() >= PAST_DELIMITER && !starts_with_delimiter(&self.buf) {
                return Err(AnnexBError::NotAnnexB);
            }
            if let Some(end) = next_delimiter(&self.buf, self.searched) {
                let rest = self.buf.split_off(end);
                self.searched = PAST_DELIMITER;
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            self.searched = self.buf.len().saturating_sub(4).max(PAST_DELIMITER);
            if self.buf.len() > self.max {
                return Err(AnnexBError::TooLarge(self.max));
            }
            let whole = self.buf.len() > PAST_DELIMITER;
            if self.eof || (whole && (self.quiet)(AU_IDLE)) {
                self.searched = PAST_DELIMITER;
                return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
            }
            self.refill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(kind: u8, len: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, kind];
        v.extend((0..len).map(|i| (i % 200 + 20) as u8));
        v
    }

    #[test]
    fn access_units_are_cut_at_their_delimiters_across_short_reads() {
        let aus = [au(0x65, 3000), au(0x41, 70_000), au(0x41, 10)];
        let stream: Vec<u8> = aus.concat();
        // Seven bytes at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut s = AnnexBSplitter::new(Trickle(&stream), 1 << 20, Box::new(|_| false));
        let mut got = Vec::new();
        while let Some(a) = s.next_au().unwrap() {
            got.push(a);
        }
        assert_eq!(got, aus);
        // ffmpeg writes each access unit at once: when the pipe goes quiet after one, it is
        // sent without waiting for the next one's delimiter.
        struct PerWrite(Vec<Vec<u8>>, std::sync::Arc<std::sync::atomic::AtomicUsize>);
        impl Read for PerWrite {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if self.0.is_empty() {
                    return Ok(0);
                }
                let a = self.0.remove(0);
                buf[..a.len()].copy_from_slice(&a);
                Ok(a.len())
            }
        }
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let small = vec![au(0x65, 300), au(0x41, 30)];
        let mut s = AnnexBSplitter::new(PerWrite(small.clone(), reads.clone()), 1 << 20, Box::new(|_| true));
        assert_eq!(s.next_au().unwrap().as_ref(), Some(&small[0]));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1, "sent before the next one was read");
        assert_eq!(s.next_au().unwrap().as_ref(), Some(&small[1]));
        assert_eq!(s.next_au().unwrap(), None);
        let mut s = AnnexBSplitter::new(&stream[..], 1 << 20, Box::new(|_| false));
        assert_eq!(s.next_au().unwrap().as_deref(), Some(&aus[0][..]));
    }

    #[test]
    fn an_unbounded_access_unit_and_a_stream_without_delimiters_are_refused() {
        let big = au(0x65, 100_000);
        let mut s = AnnexBSplitter::new(&big[..], 50_000, Box::new(|_| false));
        assert!(matches!(s.next_au(), Err(AnnexBError::TooLarge(50_000))));
        let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 16, 0, 0];
        let mut s = AnnexBSplitter::new(&jpeg[..], 50_000, Box::new(|_| false));
        assert!(matches!(s.next_au(), Err(AnnexBError::NotAnnexB)));
    }
}
