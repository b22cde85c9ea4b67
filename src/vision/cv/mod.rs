//! Ports of the OpenCV and pyclipper routines the OCR reference runs, one file each.
//!
//! Why ports and not approximations: the reference pipeline (`ocr_ref.py`, PaddleOCR
//! conventions) truncates and rounds box corners in several places (`astype(int)`,
//! `floor`/`ceil`, `np.round`), so a box that is off by a float ulp can move by a whole pixel.
//! Each port follows its original's arithmetic (fixed point, f32 where OpenCV uses f32) and is
//! pinned by golden vectors that `tests/fixtures/cv/make_goldens.py` writes with cv2 and
//! pyclipper (`tests/it/cv.rs`).

use std::cmp::Ordering;

use crate::vision::image::RgbImage;

pub mod clipper;
pub mod contours;
pub mod fill_poly;
pub mod min_area_rect;
pub mod resize;
pub mod warp;

/// Total order on f32 for sorting (NaN last, -0 == +0 like Python's comparison).
pub fn fcmp(a: f32, b: f32) -> Ordering {
    (a + 0.0).total_cmp(&(b + 0.0))
}

pub fn image_ok(img: &RgbImage) -> bool {
    img.width > 0
        && img.height > 0
        && img.width.checked_mul(img.height).and_then(|n| n.checked_mul(3)).is_some_and(|n| n <= img.data.len())
}
