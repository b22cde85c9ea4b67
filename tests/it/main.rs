//! The one integration-test binary: real servers on port 0, real tungstenite clients over
//! loopback, real JPEG frames and the shipped model.

mod cli;
mod fuzz_replay;
mod hostile;
mod http;
mod ocr;
mod protocol;
mod server;
mod session;
mod support;
