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

impl RgbImage {
    /// The pixels inside `[x0, y0, x1, y1]` (frame pixels, clamped to the image, corners
    /// floored / ceiled), or `None` if nothing is left or a coordinate is not finite.
    pub fn crop(&self, b: [f32; 4]) -> Option<RgbImage> {
        if !b.iter().all(|v| v.is_finite()) || self.data.len() < self.width * self.height * 3 {
            return None;
        }
        let clamp = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi);
        let (x0, y0) = (clamp(b[0].floor(), self.width), clamp(b[1].floor(), self.height));
        let (x1, y1) = (clamp(b[2].ceil(), self.width), clamp(b[3].ceil(), self.height));
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let (w, h) = (x1 - x0, y1 - y0);
        let mut data = Vec::with_capacity(w * h * 3);
        for y in y0..y1 {
            let row = (y * self.width + x0) * 3;
            data.extend_from_slice(&self.data[row..row + w * 3]);
        }
        Some(RgbImage { width: w, height: h, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_are_clamped_and_never_empty() {
        let img = RgbImage { width: 4, height: 3, data: (0..36).collect() };
        let c = img.crop([1.0, 1.0, 3.0, 3.0]).unwrap();
        assert_eq!((c.width, c.height), (2, 2));
        assert_eq!(c.pixel(0, 0), img.pixel(1, 1));
        let c = img.crop([-5.0, -5.0, 100.0, 2.5]).unwrap();
        assert_eq!((c.width, c.height), (4, 3));
        assert!(img.crop([2.0, 2.0, 2.0, 3.0]).is_none());
        assert!(img.crop([f32::NAN, 0.0, 1.0, 1.0]).is_none());
        assert!(img.crop([5.0, 0.0, 9.0, 1.0]).is_none());
    }
}
