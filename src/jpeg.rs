//! STUB (replaced by the real module).
use crate::image::RgbImage;
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub progressive: bool,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("x")]
    NotJpeg,
    #[error("x")]
    Truncated,
    #[error("x")]
    Corrupt,
    #[error("x")]
    TooLarge,
    #[error("x")]
    TooManyPixels,
    #[error("x")]
    Unsupported,
}
impl FrameError {
    pub fn code(&self) -> &'static str {
        "x"
    }
}
pub fn validate(_data: &[u8], _limits: &Limits) -> Result<JpegInfo, FrameError> {
    todo!()
}
pub fn decode_rgb(_data: &[u8], _info: &JpegInfo, _s: u8) -> Result<RgbImage, FrameError> {
    todo!()
}
