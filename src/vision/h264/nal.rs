//! An access unit in Annex B byte-stream form (ITU-T H.264 Annex B: each NAL unit after a
//! `00 00 01` or `00 00 00 01` start code), split into its NAL units without copying.

/// One NAL unit: its header's fields and its payload (after the header byte, emulation
/// prevention still in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nal<'a> {
    /// `nal_ref_idc` (0 to 3).
    pub ref_idc: u8,
    /// `nal_unit_type` (0 to 31).
    pub kind: u8,
    /// The bytes after the header.
    pub payload: &'a [u8],
}

/// Why an access unit cannot be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// It does not start with a start code: not Annex B at all.
    NoStartCode,
    /// A start code with nothing after it (an empty NAL unit), or trailing zeros only.
    Empty,
    /// A NAL unit whose `forbidden_zero_bit` is set.
    ForbiddenBit,
}

/// The start codes' positions: (where the code starts, where its NAL unit starts).
fn start_codes(au: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            // A four-byte code's leading zero belongs to the code, not the previous unit.
            let from = if i > 0 && au[i - 1] == 0 { i - 1 } else { i };
            out.push((from, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Split `au` into its NAL units, in order. It must start with a start code (leading zero bytes
/// before the first are allowed, as `zero_byte`s); trailing zeros of a unit
/// (`trailing_zero_8bits`) are not part of it.
pub fn split(au: &[u8]) -> Result<Vec<Nal<'_>>, SplitError> {
    let codes = start_codes(au);
    let Some(&(first, _)) = codes.first() else { return Err(SplitError::NoStartCode) };
    if au[..first].iter().any(|&b| b != 0) {
        return Err(SplitError::NoStartCode);
    }
    let mut out = Vec::with_capacity(codes.len());
    for (k, &(_, begin)) in codes.iter().enumerate() {
        let end = codes.get(k + 1).map_or(au.len(), |c| c.0);
        let mut unit = &au[begin..end];
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        let [header, payload @ ..] = unit else { return Err(SplitError::Empty) };
        if header & 0x80 != 0 {
            return Err(SplitError::ForbiddenBit);
        }
        out.push(Nal { ref_idc: header >> 5 & 3, kind: header & 0x1f, payload });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_and_four_byte_start_codes_split_into_units() {
        let au = [0, 0, 0, 1, 0x67, 0xAA, 0, 0, 1, 0x68, 0xBB, 0, 0, 0, 1, 0x65, 0xCC, 0xDD, 0];
        let nals = split(&au).unwrap();
        let kinds: Vec<(u8, u8, &[u8])> = nals.iter().map(|n| (n.kind, n.ref_idc, n.payload)).collect();
        assert_eq!(kinds, [(7, 3, &[0xAA][..]), (8, 3, &[0xBB][..]), (5, 3, &[0xCC, 0xDD][..])]);
    }

    #[test]
    fn what_is_not_annex_b_is_refused() {
        assert_eq!(split(&[0xFF, 0xD8, 0xFF, 0xE0]), Err(SplitError::NoStartCode), "a JPEG");
        assert_eq!(split(&[]), Err(SplitError::NoStartCode));
        assert_eq!(split(&[0x65, 0, 0, 1, 0x65]), Err(SplitError::NoStartCode), "bytes before the first code");
        assert_eq!(split(&[0, 0, 1]), Err(SplitError::Empty));
        assert_eq!(split(&[0, 0, 1, 0, 0, 1, 0x65]), Err(SplitError::Empty));
        assert_eq!(split(&[0, 0, 1, 0xE5, 1]), Err(SplitError::ForbiddenBit));
    }
}
