//! STUB
use crate::image::RgbImage;
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}
impl Letterbox {
    pub fn unmap(&self, _b: [f32; 4], _w: usize, _h: usize) -> [f32; 4] {
        todo!()
    }
}
pub fn ssd_input(_img: &RgbImage, _w: usize, _h: usize, _out: &mut [f32]) {
    todo!()
}
pub fn letterbox_input(_img: &RgbImage, _w: usize, _h: usize, _out: &mut [f32]) -> Letterbox {
    todo!()
}
