//! The clients that ship in the binary: `framewire stream` ([`stream`], for scripts and
//! cameras) and `framewire bench` ([`bench`], the load tool), with the MJPEG splitter
//! ([`mjpeg`]) and what both share ([`common`]: connecting under deadlines, frame directories,
//! percentiles). `stream`'s parts: its sources ([`source`]: JPEG files, stdin, and cameras and
//! videos through ffmpeg, with a stall watchdog), its retry policy ([`backoff`]), its socket
//! under deadlines ([`link`]), its pacing ([`pacer`]), its watched reads and bounded
//! tail ([`reading`]), its accounting of what came back
//! ([`ledger`]) and its printing (`output`).

pub mod backoff;
pub mod bench;
pub mod common;
pub mod ledger;
pub mod link;
pub mod mjpeg;
mod output;
pub mod pacer;
pub mod reading;
mod sampler;
pub mod source;
pub mod stream;
