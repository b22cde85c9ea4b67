//! The one integration-test binary: real servers on port 0, real tungstenite clients over
//! loopback, real JPEG frames and the shipped model.

mod cli;
mod hostile;
mod ocr;
mod protocol;
mod server;
mod session;
mod support;
