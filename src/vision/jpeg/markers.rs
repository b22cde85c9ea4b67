//! The one JPEG marker walk (ITU T.81 §B.1), shared by the validator, the Adobe check and the
//! MJPEG splitter, so all three agree on where a segment, a scan and a file end.
//!
//! [`Markers`] yields each marker segment after SOI in order: its code, its body (empty for
//! standalone markers) and where it ends. After an SOS header it first skips the scan's
//! entropy-coded data (stuffed `FF 00` bytes and restart markers belong to it) up to the next
//! real marker. It never allocates and never reads past the slice: running out of bytes is
//! [`FrameError::Truncated`], anything that is not a marker where one must be is
//! [`FrameError::Corrupt`]. The walk ends after EOI.

use super::FrameError;

/// Start of image.
pub const SOI: u8 = 0xD8;
/// End of image.
pub const EOI: u8 = 0xD9;
/// Start of scan.
pub const SOS: u8 = 0xDA;
/// Temporary (standalone).
pub const TEM: u8 = 0x01;
/// Adobe application segment.
pub const APP14: u8 = 0xEE;

/// One marker segment; standalone markers have an empty body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The marker code (the byte after `FF`).
    pub marker: u8,
    /// The segment's payload after its length field.
    pub body: &'a [u8],
    /// Offset just past the segment (for SOS: past its header, where the scan data begins).
    pub end: usize,
}

/// Where a walk stands between two segments: resume a walk of a longer slice with the same
/// prefix from here ([`Markers::resume`]) without walking the prefix again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pos: usize,
    in_scan: bool,
}

/// The marker segments of a JPEG, after its SOI (see the module doc).
#[derive(Debug, Clone)]
pub struct Markers<'a> {
    data: &'a [u8],
    at: Checkpoint,
    done: bool,
}

impl<'a> Markers<'a> {
    /// Walk `data`, which must start with SOI (the caller checks it; the walk starts at byte 2).
    pub fn new(data: &'a [u8]) -> Markers<'a> {
        Markers { data, at: Checkpoint { pos: 2, in_scan: false }, done: false }
    }

    /// Continue a walk of `data` from `at`, a checkpoint of a walk over a prefix of `data`.
    pub fn resume(data: &'a [u8], at: Checkpoint) -> Markers<'a> {
        Markers { data, at, done: false }
    }

    /// Where the walk stands: just past the last segment yielded.
    pub fn checkpoint(&self) -> Checkpoint {
        self.at
    }

    /// Skip entropy-coded data from `pos` to the `FF` of the next marker that is neither a
    /// stuffed zero nor a restart marker.
    fn skip_scan(&self, mut pos: usize) -> Result<usize, FrameError> {
        let d = self.data;
        loop {
            let ff = pos + d.get(pos..).and_then(|s| s.iter().position(|&b| b == 0xFF)).ok_or(FrameError::Truncated)?;
            let mut p = ff + 1;
            while d.get(p) == Some(&0xFF) {
                p += 1;
            }
            match d.get(p) {
                None => return Err(FrameError::Truncated),
                Some(0x00 | 0xD0..=0xD7) => pos = p + 1,
                Some(_) => return Ok(ff),
            }
        }
    }

    fn read(&mut self) -> Result<Segment<'a>, FrameError> {
        let d = self.data;
        let pos = if self.at.in_scan { self.skip_scan(self.at.pos)? } else { self.at.pos };
        match d.get(pos) {
            None => return Err(FrameError::Truncated),
            Some(0xFF) => {}
            Some(_) => return Err(FrameError::Corrupt),
        }
        // Any number of 0xFF fill bytes may precede the marker code.
        let mut p = pos + 1;
        while d.get(p) == Some(&0xFF) {
            p += 1;
        }
        let marker = *d.get(p).ok_or(FrameError::Truncated)?;
        let after = p + 1;
        if marker == 0x00 {
            return Err(FrameError::Corrupt);
        }
        let seg = if matches!(marker, TEM | 0xD0..=0xD7 | SOI | EOI) {
            Segment { marker, body: &[], end: after }
        } else {
            let len_bytes = d.get(after..after + 2).ok_or(FrameError::Truncated)?;
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            if len < 2 {
                return Err(FrameError::Corrupt);
            }
            let end = after + len;
            let body = d.get(after + 2..end).ok_or(FrameError::Truncated)?;
            Segment { marker, body, end }
        };
        self.at = Checkpoint { pos: seg.end, in_scan: marker == SOS };
        Ok(seg)
    }
}

impl<'a> Iterator for Markers<'a> {
    type Item = Result<Segment<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.read();
        // Stop after EOI or the first error: nothing after either is a segment of this file.
        self.done = !matches!(r, Ok(Segment { marker, .. }) if marker != EOI);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(data: &[u8]) -> Vec<Result<u8, FrameError>> {
        Markers::new(data).map(|r| r.map(|s| s.marker)).collect()
    }

    #[test]
    fn walks_segments_scans_and_stops_after_eoi() {
        // SOI, COM "hi", SOS (1 comp), scan with a stuffed FF00 and RST0, EOI, trailing junk.
        let data = [
            0xFF, SOI, 0xFF, 0xFE, 0, 4, b'h', b'i', 0xFF, SOS, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0xFF, 0x00, 0x34, 0xFF,
            0xD0, 0x56, 0xFF, 0xFF, EOI, 0xAB,
        ];
        assert_eq!(codes(&data), vec![Ok(0xFE), Ok(SOS), Ok(EOI)]);
        let segs: Vec<Segment> = Markers::new(&data).map(|r| r.unwrap()).collect();
        assert_eq!(segs[0].body, b"hi");
        assert_eq!(segs[1].end, 18, "SOS ends at its header");
        assert_eq!(segs[2].end, data.len() - 1, "EOI after fill bytes");
    }

    #[test]
    fn truncation_and_corruption_are_told_apart() {
        assert_eq!(codes(&[0xFF, SOI]), vec![Err(FrameError::Truncated)]);
        assert_eq!(codes(&[0xFF, SOI, 0xFF, 0xFE, 0, 9, 1]), vec![Err(FrameError::Truncated)]);
        assert_eq!(codes(&[0xFF, SOI, 0x12]), vec![Err(FrameError::Corrupt)]);
        assert_eq!(codes(&[0xFF, SOI, 0xFF, 0x00]), vec![Err(FrameError::Corrupt)]);
        assert_eq!(codes(&[0xFF, SOI, 0xFF, 0xFE, 0, 1]), vec![Err(FrameError::Corrupt)], "length < 2");
        // A scan that never reaches a marker is truncated, even ending in FF.
        let scan = [0xFF, SOI, 0xFF, SOS, 0, 2, 0x11, 0xFF];
        assert_eq!(codes(&scan), vec![Ok(SOS), Err(FrameError::Truncated)]);
    }

    #[test]
    fn a_walk_resumes_from_its_checkpoint() {
        let full = [0xFF, SOI, 0xFF, 0xFE, 0, 2, 0xFF, SOS, 0, 2, 0x11, 0x22, 0xFF, EOI];
        let mut part = Markers::new(&full[..8]);
        assert_eq!(part.next().map(|r| r.map(|s| s.marker)), Some(Ok(0xFE)));
        let at = part.checkpoint();
        assert_eq!(part.next(), Some(Err(FrameError::Truncated)));
        let rest: Vec<_> = Markers::resume(&full, at).map(|r| r.map(|s| s.marker)).collect();
        assert_eq!(rest, vec![Ok(SOS), Ok(EOI)]);
    }
}
