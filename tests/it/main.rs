//! The one integration-test binary: real servers on port 0, real tungstenite clients over
//! loopback, real JPEG frames and the shipped model.

mod analytics;
mod cameras;
mod cli;
mod cv;
mod faults;
mod fuzz_replay;
mod hostile;
mod http;
mod ocr;
mod ocr_reference;
mod protocol;
mod scheduler;
mod server;
mod session;
mod support;
mod tracking;
mod video;
mod work_once;
mod yolo;
