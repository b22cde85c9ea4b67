//! Splitting an MJPEG byte stream (concatenated JPEG files, as `ffmpeg -f mjpeg -` or a camera's
//! MJPEG pipe give) into frames, with the same marker walk the server's validator uses
//! ([`crate::vision::jpeg::markers`]): segment lengths are skipped, entropy-coded data is
//! scanned for the next real marker, and a frame ends at EOI. Bytes between frames are skipped.
//! Progressive files (several scans) work. Every frame is bounded by a byte limit.

use std::io::{self, Read};

use crate::vision::jpeg::markers::{Checkpoint, Markers, EOI, SOI};
use crate::vision::jpeg::FrameError;

/// Why the stream could not be split.
#[derive(Debug, thiserror::Error)]
pub enum MjpegError {
    /// Reading the stream failed.
    #[error("read: {0}")]
    Io(#[from] io::Error),
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// A frame has no valid JPEG structure (a marker was expected).
    #[error("expected a JPEG marker")]
    Corrupt,
    /// A frame is larger than the limit.
    #[error("a frame is larger than {0} bytes")]
    TooLarge(usize),
}

/// Read size per refill.
const CHUNK: usize = 64 * 1024;

/// Splits an MJPEG stream into frames (see the module doc).
pub struct MjpegSplitter<R> {
    reader: R,
    max: usize,
    /// Bytes read and not yet returned; a frame being assembled starts at 0 once SOI is found.
    buf: Vec<u8>,
    eof: bool,
}

impl<R: Read> MjpegSplitter<R> {
    /// Split `reader`, refusing frames over `max` bytes.
    pub fn new(reader: R, max: usize) -> Self {
        MjpegSplitter { reader, max, buf: Vec::new(), eof: false }
    }

    /// Read up to one more chunk; false at the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Drop everything before the next SOI (`FF D8`); false when the stream ends first.
    fn find_soi(&mut self) -> io::Result<bool> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == [0xFF, SOI]) {
                self.buf.drain(..i);
                return Ok(true);
            }
            // Keep a trailing FF: it may be the first half of the SOI.
            let keep = usize::from(self.buf.last() == Some(&0xFF));
            let cut = self.buf.len() - keep;
            self.buf.drain(..cut);
            if !self.refill()? {
                return Ok(false);
            }
        }
    }

    /// The next frame, or `None` at a clean end of stream.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, MjpegError> {
        if !self.find_soi()? {
            return Ok(None);
        }
        let mut at: Option<Checkpoint> = None;
        loop {
            let data = &self.buf[..self.buf.len().min(self.max)];
            let mut walk = match at {
                Some(c) => Markers::resume(data, c),
                None => Markers::new(data),
            };
            let outcome = loop {
                match walk.next() {
                    Some(Ok(seg)) if seg.marker == EOI => break Ok(seg.end),
                    Some(Ok(_)) => at = Some(walk.checkpoint()),
                    Some(Err(e)) => break Err(e),
                    None => break Err(FrameError::Truncated),
                }
            };
            match outcome {
                Ok(end) => return Ok(Some(self.buf.drain(..end).collect())),
                Err(FrameError::Truncated) if self.buf.len() >= self.max => return Err(MjpegError::TooLarge(self.max)),
                Err(FrameError::Truncated) => {
                    if !self.refill()? {
                        return Err(MjpegError::Truncated);
                    }
                }
                Err(_) => return Err(MjpegError::Corrupt),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn three_frames() -> (Vec<Vec<u8>>, Vec<u8>) {
        let files: Vec<Vec<u8>> =
            ["baseline_420", "progressive", "restart"].iter().map(|n| fixture(&format!("jpeg/{n}.jpg"))).collect();
        let mut stream = b"junk".to_vec();
        for f in &files {
            stream.extend_from_slice(f);
            stream.extend_from_slice(b"\r\n--boundary\r\n");
        }
        (files, stream)
    }

    fn check_frames(split: &mut MjpegSplitter<impl Read>, files: &[Vec<u8>]) {
        // Files may carry bytes after EOI: compare up to EOI.
        for f in files {
            let got = split.next_frame().unwrap().unwrap();
            assert_eq!(got[..], f[..got.len()]);
            assert_eq!(&got[got.len() - 2..], &[0xFF, 0xD9]);
        }
        assert!(split.next_frame().unwrap().is_none());
    }

    #[test]
    fn mjpeg_splitter_finds_each_frame_and_skips_junk_between() {
        let (files, stream) = three_frames();
        check_frames(&mut MjpegSplitter::new(&stream[..], 1 << 20), &files);
    }

    /// A reader that hands out one byte per read: frames straddle every refill.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else { return Ok(0) };
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn mjpeg_splitter_resumes_across_short_reads() {
        let (files, stream) = three_frames();
        check_frames(&mut MjpegSplitter::new(Trickle(&stream), 1 << 20), &files);
    }

    #[test]
    fn mjpeg_splitter_bounds_a_frame_without_end() {
        let mut stream = fixture("jpeg/baseline_420.jpg");
        stream.truncate(stream.len() - 2);
        stream.extend(std::iter::repeat_n(0u8, 4096));
        let mut split = MjpegSplitter::new(&stream[..], 2048);
        assert!(matches!(split.next_frame(), Err(MjpegError::TooLarge(2048))));
        let mut split = MjpegSplitter::new(&stream[..], 1 << 20);
        assert!(matches!(split.next_frame(), Err(MjpegError::Truncated)), "ends inside a frame");
    }
}
