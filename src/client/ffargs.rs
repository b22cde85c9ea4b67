//! The ffmpeg command line of `framewire stream`'s camera and video sources: MJPEG out (the
//! JPEG sessions), or H.264 access units out (`--codec h264`): the source's own H.264 stream
//! copied as it is (`-c:v copy`), or anything else encoded with libx264 for low latency (no
//! B-frames, `zerolatency`), either way in Annex B with a delimiter before each access unit
//! (`h264_metadata=aud=insert`) so [`super::annexb`] can cut it.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::source::{FfmpegOptions, SourceKind};
use crate::wake::poll;

/// The most ffmpeg's `-version` may take (a program that never answers is not waited for).
const VERSION_DEADLINE: Duration = Duration::from_secs(5);

/// How `--codec h264` gets H.264 out of ffmpeg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Out {
    /// The source's own stream, not re-encoded (an H.264 camera or file): tried first.
    Copy,
    /// Encoded with libx264 (`veryfast`, `zerolatency`, constrained baseline, an IDR every
    /// two seconds): the source is not H.264, or copying it gave nothing.
    Encode,
}

/// ffmpeg's major version from its `-version` text (`ffmpeg version 5.1.6-0+deb12u1 …`,
/// `ffmpeg version n7.0 …`); `None` for a build that says none (a git snapshot: recent).
pub fn ffmpeg_major(version_text: &str) -> Option<u32> {
    let v = version_text.split_whitespace().skip_while(|w| *w != "version").nth(1)?;
    v.trim_start_matches('n').split(['.', '-']).next()?.parse().ok()
}

/// Ask `program -version` (stdout read at most 4 KiB, within [`VERSION_DEADLINE`]); `None` if
/// it does not run or say.
pub(super) fn probe_ffmpeg_major(program: &Path) -> Option<u32> {
    let mut child = Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let until = Instant::now() + VERSION_DEADLINE;
    let mut text = Vec::new();
    let mut chunk = [0u8; 1024];
    while text.len() < 4096 {
        let left = until.saturating_duration_since(Instant::now());
        let ready = poll(&[(out.as_raw_fd(), false)], Some(left)).ok()?;
        if !ready[0].readable {
            break;
        }
        match out.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    ffmpeg_major(&String::from_utf8_lossy(&text))
}

/// ffmpeg's arguments for `input`; `major` is ffmpeg's major version when known (the RTSP
/// timeout's flag changed name in 5: before it, `-timeout` meant "listen").
pub fn ffmpeg_args(kind: &SourceKind, o: &FfmpegOptions, major: Option<u32>) -> Vec<String> {
    let SourceKind::Ffmpeg { input, live, rtsp, device } = kind else { return Vec::new() };
    let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"].map(String::from).to_vec();
    if *live && o.fps > 0.0 {
        // For `fps=`, a live source's frames are stamped with their arrival time: an HTTP MJPEG
        // camera's carry none (ffmpeg then assumes 25 fps, and `fps=5` of a 10 fps camera gave
        // 2). With `--fps 0` every frame passes as it comes (two arrivals in one clock tick
        // would otherwise make equal stamps, which the encoder refuses).
        a.extend(["-use_wallclock_as_timestamps".into(), "1".into()]);
    }
    // A second longer than the watchdog's, so the watchdog (which says why) comes first.
    let micros = (o.stall + Duration::from_secs(1)).as_micros().to_string();
    let lower = input.to_ascii_lowercase();
    if *rtsp {
        a.extend(["-rtsp_transport".into(), o.rtsp_transport.clone()]);
        let flag = if major.is_some_and(|m| m < 5) { "-stimeout" } else { "-timeout" };
        a.extend([flag.into(), micros]);
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        a.extend(["-rw_timeout".into(), micros]);
    }
    if *device {
        a.extend(["-f".into(), "v4l2".into()]);
    }
    a.extend(["-i".into(), input.clone(), "-an".into()]);
    let mut filters = Vec::new();
    // A copied stream's pictures go through untouched: no rate or size filter.
    let copy = o.h264 == Some(H264Out::Copy);
    if o.fps > 0.0 && !copy {
        filters.push(format!("fps={}", o.fps));
    } else if !copy {
        // Every frame the source has, none duplicated or dropped to make a constant rate
        // (`-vsync 0`: understood by ffmpeg 4 to 7).
        a.extend(["-vsync".into(), "0".into()]);
    }
    if let (Some((w, h)), false) = (o.size, copy) {
        filters.push(format!("scale={w}:{h}"));
    }
    if !filters.is_empty() {
        a.extend(["-vf".into(), filters.join(",")]);
    }
    match o.h264 {
        None => a.extend(["-q:v".into(), o.quality.to_string(), "-f".into(), "mjpeg".into(), "-".into()]),
        Some(out) => a.extend(h264_output(out, o.fps)),
    }
    a
}

/// The output half of an H.264 command: copied, or encoded at `fps` (0: the source's rate).
fn h264_output(out: H264Out, fps: f64) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if out == H264Out::Encode {
        // An IDR every two seconds: a session that joins (or a decoder that was reset) waits at
        // most that long for a picture.
        let gop = if fps > 0.0 { (2.0 * fps).ceil().max(1.0) as u32 } else { 50 };
        a.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-profile:v",
                "baseline",
                "-pix_fmt",
                "yuv420p",
                "-bf",
                "0",
            ]
            .map(String::from),
        );
        a.extend(["-g".into(), gop.to_string()]);
    } else {
        a.extend(["-c:v".into(), "copy".into()]);
    }
    a.extend(["-bsf:v", "h264_metadata=aud=insert", "-flush_packets", "1", "-f", "h264", "-"].map(String::from));
    a
}
