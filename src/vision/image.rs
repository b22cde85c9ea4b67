//! Decoded frames as they travel from the JPEG decoder to the models.
//!
//! One owned, interleaved 8-bit RGB buffer: the decoder writes it once and every preprocessing
//! step reads it, so no stage needs its own copy of the frame.

/// An 8-bit RGB image, row-major, interleaved (`R,G,B,R,G,B,...`), no row padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels (> 0).
    pub width: usize,
    /// Height in pixels (> 0).
    pub height: usize,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// The pixel at (`x`, `y`) as `[r, g, b]`. Panics when out of bounds (callers index inside
    /// the image they were given).
    #[inline]
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}
