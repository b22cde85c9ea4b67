//! The clients that ship in the binary: `framewire stream` ([`stream`], for scripts) and
//! `framewire bench` ([`bench`], the load tool), with the MJPEG splitter ([`mjpeg`]) and what
//! both share ([`common`]: connecting, frame directories, percentiles).

pub mod bench;
pub mod common;
pub mod mjpeg;
pub mod stream;
