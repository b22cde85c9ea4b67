//! STUB
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub class_id: usize,
    pub score: f32,
    pub bbox: [f32; 4],
}
pub fn nms_classwise(_c: Vec<Candidate>, _t: f32, _m: usize) -> Vec<Candidate> {
    todo!()
}
