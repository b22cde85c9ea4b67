//! The clients that ship in the binary: `framewire stream` ([`stream`], for scripts and
//! cameras) and `framewire bench` ([`bench`], the load tool), with the MJPEG splitter
//! ([`mjpeg`]), the H.264 access unit splitter ([`annexb`], `--codec h264`) and what both share ([`common`]: connecting under deadlines, frame directories,
//! percentiles). `stream`'s parts: its sources ([`source`]: JPEG files, stdin, and cameras and
//! videos through ffmpeg, with a stall watchdog; ffmpeg's command line in `ffargs`), its retry policy ([`backoff`]), its socket
//! under deadlines ([`link`]), its pacing ([`pacer`]), its watched reads and bounded
//! tail ([`reading`]), its accounting of what came back
//! ([`ledger`]) and its printing (`output`).

pub mod annexb;
pub mod backoff;
pub mod bench;
pub mod common;
mod ffargs;
pub mod ledger;
pub mod link;
pub mod mjpeg;
mod output;
pub mod pacer;
pub mod reading;
mod sampler;
pub mod source;
pub mod stream;
