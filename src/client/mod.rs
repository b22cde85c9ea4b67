//! The clients that ship in the binary: `framewire stream` ([`stream`], for scripts) and
//! `framewire bench` ([`bench`], the load tool), with the MJPEG splitter ([`mjpeg`]) and what
//! both share ([`common`]: connecting, frame directories, percentiles); `stream`'s sources
//! ([`source`]: JPEG files, stdin, and cameras and videos through ffmpeg) and its retry policy
//! ([`backoff`]).

pub mod backoff;
pub mod bench;
pub mod common;
pub mod mjpeg;
mod output;
pub mod source;
pub mod stream;
