//! Reading an H.264 NAL unit's payload bit by bit, as its syntax is written (ITU-T H.264 §7.2):
//! fixed-width fields `u(n)`, Exp-Golomb `ue(v)` / `se(v)`, with the emulation-prevention bytes
//! (`00 00 03`) skipped on the fly, so the raw byte sequence payload is never copied.
//!
//! Every read is bounded: running past the end is [`Exhausted`], and an Exp-Golomb code longer
//! than 32 bits (a value over 2³² − 2, which no field the walk reads may take) is [`TooLong`].

/// The payload ended in the middle of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

/// A field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitError {
    /// The payload ended first.
    Exhausted,
    /// An Exp-Golomb code of more than 32 leading zeros.
    TooLong,
}

impl From<Exhausted> for BitError {
    fn from(_: Exhausted) -> Self {
        BitError::Exhausted
    }
}

/// A cursor over a NAL unit's payload (after its one-byte header).
#[derive(Debug, Clone)]
pub struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Zero bytes seen in a row (for emulation prevention).
    zeros: u8,
    /// The current byte and how many of its bits are left.
    byte: u8,
    left: u8,
}

impl<'a> Bits<'a> {
    /// A reader at the start of `payload`.
    pub fn new(payload: &'a [u8]) -> Bits<'a> {
        Bits { data: payload, pos: 0, zeros: 0, byte: 0, left: 0 }
    }

    fn load(&mut self) -> Result<(), Exhausted> {
        loop {
            let b = *self.data.get(self.pos).ok_or(Exhausted)?;
            self.pos += 1;
            // `00 00 03`: the 03 is not part of the payload.
            if self.zeros >= 2 && b == 3 {
                self.zeros = 0;
                continue;
            }
            self.zeros = if b == 0 { self.zeros.saturating_add(1) } else { 0 };
            self.byte = b;
            self.left = 8;
            return Ok(());
        }
    }

    /// One bit.
    pub fn bit(&mut self) -> Result<bool, Exhausted> {
        if self.left == 0 {
            self.load()?;
        }
        self.left -= 1;
        Ok(self.byte >> self.left & 1 == 1)
    }

    /// `u(n)`, `n` ≤ 32.
    pub fn u(&mut self, n: u32) -> Result<u32, Exhausted> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v << 1 | u32::from(self.bit()?);
        }
        Ok(v)
    }

    /// `ue(v)`: unsigned Exp-Golomb.
    pub fn ue(&mut self) -> Result<u32, BitError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitError::TooLong);
            }
        }
        let rest = self.u(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// `se(v)`: signed Exp-Golomb.
    pub fn se(&mut self) -> Result<i64, BitError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_read_as_written() {
        // 1 | 010 | 011 | 00100 | 00101 → ue 0, 1, 2, 3, 4; then se of 010 (=1) and 011 (=-1),
        // and a last 0.
        let mut b = Bits::new(&[0b1010_0110, 0b0100_0010, 0b1010_0110]);
        let ue: Vec<u32> = (0..5).map(|_| b.ue().unwrap()).collect();
        assert_eq!(ue, [0, 1, 2, 3, 4]);
        assert_eq!((b.se().unwrap(), b.se().unwrap()), (1, -1));
        assert_eq!(b.bit(), Ok(false), "the last bit");
        assert_eq!(b.bit(), Err(Exhausted));
    }

    #[test]
    fn emulation_prevention_bytes_are_skipped_and_long_codes_refused() {
        // 00 00 03 01: the payload is 00 00 01.
        let mut b = Bits::new(&[0, 0, 3, 1]);
        assert_eq!(b.u(24).unwrap(), 1);
        assert_eq!(Bits::new(&[0; 8]).ue(), Err(BitError::TooLong));
        assert_eq!(Bits::new(&[0, 0]).ue(), Err(BitError::Exhausted));
    }
}
