//! STUB
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YoloLayout {
    V5 { anchors: usize, classes: usize },
    V8 { anchors: usize, classes: usize },
}
pub fn layout_from_shape(_s: &[usize]) -> Option<YoloLayout> {
    todo!()
}
pub fn decode(_o: &[f32], _l: YoloLayout, _t: f32) -> Vec<crate::nms::Candidate> {
    todo!()
}
