//! The access-unit check on real streams (`tests/fixtures/h264/`, made by libx264 from the
//! repository's frames: `make_h264_fixtures.sh` there) and on each bad input #28 names.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/h264").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A stream cut into access units at its access unit delimiters (type 9).
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut starts: Vec<usize> = (0..stream.len().saturating_sub(4))
        .filter(|&i| stream[i..i + 4] == [0, 0, 1, 0x09] && !(i > 0 && stream[i - 1] == 0))
        .collect();
    starts.extend(
        (1..stream.len().saturating_sub(4)).filter(|&i| stream[i - 1..i + 4] == [0, 0, 0, 1, 0x09]).map(|i| i - 1),
    );
    starts.sort_unstable();
    starts.dedup();
    starts.iter().enumerate().map(|(k, &s)| stream[s..*starts.get(k + 1).unwrap_or(&stream.len())].to_vec()).collect()
}

fn limits() -> Limits {
    Limits { max_pixels: 40_000_000, max_side: 16_384, max_decoder_bytes: 256 << 20 }
}

#[test]
fn a_camera_like_stream_passes_picture_by_picture() {
    let aus = access_units(&fixture("baseline_320x240.h264"));
    assert_eq!(aus.len(), 8);
    let mut s = Stream::new();
    let got: Vec<Checked> = aus.iter().map(|au| s.check(au, &limits()).unwrap()).collect();
    for (i, c) in got.iter().enumerate() {
        let idr = i % 4 == 0;
        assert_eq!(*c, Checked::Picture(Picture { size: (320, 240), idr, slices: 1 }), "access unit {i}");
    }
    // Main profile (CABAC), coded 640×368 and cropped to 640×360.
    let aus = access_units(&fixture("main_640x360.h264"));
    let mut s = Stream::new();
    let first = s.check(&aus[0], &limits()).unwrap();
    assert!(matches!(first, Checked::Picture(Picture { size: (640, 360), idr: true, .. })), "{first:?}");
    assert!(aus[1..].iter().all(|au| matches!(s.check(au, &limits()), Ok(Checked::Picture(_)))));
}

#[test]
fn a_client_joining_mid_stream_waits_for_the_next_idr() {
    let aus = access_units(&fixture("baseline_320x240.h264"));
    let mut s = Stream::new();
    // The parameter sets only come with the IDR pictures (libx264 repeats them there): the
    // P-pictures before one refer to a PPS this stream never got. Before the first IDR that is
    // a client joining mid-stream: skipped; after it, a broken stream.
    assert_eq!(s.check(&aus[1], &limits()), Ok(Checked::BeforeKeyframe));
    // With the parameter sets known but no IDR yet: skipped, not refused.
    let mut s = Stream::new();
    let sets: Vec<u8> = aus[0].clone();
    let nals = nal::split(&sets).unwrap();
    let only_sets: Vec<u8> = nals
        .iter()
        .filter(|n| matches!(n.kind, 7 | 8))
        .flat_map(|n| {
            let mut v = vec![0, 0, 0, 1, n.ref_idc << 5 | n.kind];
            v.extend_from_slice(n.payload);
            v
        })
        .collect();
    assert_eq!(s.check(&only_sets, &limits()), Ok(Checked::NoPicture));
    assert_eq!(s.check(&aus[1], &limits()), Ok(Checked::BeforeKeyframe));
    assert!(!s.keyframe_seen());
    assert!(matches!(s.check(&aus[4], &limits()), Ok(Checked::Picture(Picture { idr: true, .. }))));
    assert!(matches!(s.check(&aus[5], &limits()), Ok(Checked::Picture(Picture { idr: false, .. }))));
}

#[test]
fn what_the_decoder_cannot_do_is_unsupported_and_says_which() {
    for (file, why) in [
        ("high444_64x64.h264", "4:4:4 chroma"),
        ("high10_64x64.h264", "bit depth over 8"),
        ("interlaced_64x64.h264", "interlaced coding"),
    ] {
        let au = &access_units(&fixture(file))[0];
        assert_eq!(Stream::new().check(au, &limits()), Err(VideoError::Unsupported(why)), "{file}");
    }
}

#[test]
fn pictures_over_the_limits_are_refused_before_decoding() {
    let au = &access_units(&fixture("main_640x360.h264"))[0];
    let small = Limits { max_pixels: 640 * 360, ..limits() };
    assert_eq!(
        Stream::new().check(au, &small),
        Err(VideoError::TooManyPixels("more pixels than --max-pixels")),
        "the coded 640×368 counts, not the cropped picture"
    );
    let tight = Limits { max_decoder_bytes: 640 * 368 * 3 / 2, ..limits() };
    let e = Stream::new().check(au, &tight).unwrap_err();
    assert_eq!(e.code(), "too_many_pixels");
    // An SPS claiming 16384×16384: pic_width_in_mbs_minus1 = pic_height_in_map_units_minus1 =
    // 1023, baseline, frame_mbs_only.
    let mut w = BitWriter::default();
    w.u(66, 8);
    w.u(0, 16);
    w.ue(0); // sps id
    w.ue(0); // log2_max_frame_num_minus4
    w.ue(2); // poc type 2
    w.ue(1); // max_num_ref_frames
    w.u(0, 1);
    w.ue(1023);
    w.ue(1023);
    w.u(1, 1); // frame_mbs_only
    w.u(1, 1); // direct_8x8
    w.u(0, 1); // no cropping
    w.u(0, 1); // no VUI
    w.u(1, 1); // rbsp stop bit
    let mut au = vec![0, 0, 0, 1, 0x67];
    au.extend(w.finish());
    assert_eq!(nal::split(&au).unwrap().len(), 1);
    assert_eq!(params::sps(&au[5..]).unwrap().size, (16_384, 16_384));
    assert_eq!(
        Stream::new().check(&au, &limits()),
        Err(VideoError::TooManyPixels("more pixels than --max-pixels")),
        "16384×16384 is over 40 MP"
    );
}

#[test]
fn every_bad_input_gets_its_code() {
    let aus = access_units(&fixture("baseline_320x240.h264"));
    let idr = &aus[0];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random bytes", (0..400u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1).collect(), "not_h264"),
        ("a JPEG", include_bytes!("../../../tests/fixtures/jpeg/baseline_420.jpg").to_vec(), "not_h264"),
        ("no start code", idr[4..].to_vec(), "not_h264"),
        ("an empty message", vec![], "not_h264"),
        ("the SPS cut short", idr[..idr.iter().position(|&b| b == 0x67).unwrap() + 3].to_vec(), "truncated"),
        (
            "a forbidden bit",
            {
                let mut v = idr.clone();
                v[4] |= 0x80;
                v
            },
            "corrupt",
        ),
    ];
    for (what, au, code) in cases {
        assert_eq!(Stream::new().check(&au, &limits()).map_err(|e| e.code()), Err(code), "{what}");
    }
    // A slice of a PPS never sent: the IDR's slice alone.
    let nals = nal::split(idr).unwrap();
    let slice = nals.iter().find(|n| n.kind == 5).unwrap();
    let mut au = vec![0, 0, 0, 1, slice.ref_idc << 5 | 5];
    au.extend_from_slice(slice.payload);
    assert_eq!(Stream::new().check(&au, &limits()), Err(VideoError::Corrupt("a slice of a PPS never sent")));
    // An access unit cut in half: its parameter sets and slice header are whole, so the check
    // passes it; what is missing is for the decoder to find (it is the decoder's `corrupt`).
    let half = &idr[..idr.len() / 2];
    assert!(matches!(Stream::new().check(half, &limits()), Ok(Checked::Picture(Picture { idr: true, .. }))));
    // A refused access unit changes nothing: the stream still has no parameter sets.
    let mut s = Stream::new();
    let mut bad = idr.clone();
    bad.extend_from_slice(&[0, 0, 1, 0x74, 0x80]); // type 20 (MVC), after a good SPS and PPS
    assert_eq!(s.check(&bad, &limits()), Err(VideoError::Unsupported("SVC or MVC")));
    assert_eq!(s.check(&au, &limits()), Err(VideoError::Corrupt("a slice of a PPS never sent")));
}

/// Writes fields as H.264 does (for hand-made parameter sets).
#[derive(Default)]
struct BitWriter {
    bits: Vec<bool>,
}

impl BitWriter {
    fn u(&mut self, v: u32, n: u32) {
        (0..n).rev().for_each(|i| self.bits.push(v >> i & 1 == 1));
    }

    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        (0..len - 1).for_each(|_| self.bits.push(false));
        (0..len).rev().for_each(|i| self.bits.push(x >> i & 1 == 1));
    }

    /// The bytes, with emulation prevention (`00 00 0x` → `00 00 03 0x` for x ≤ 3).
    fn finish(mut self) -> Vec<u8> {
        while !self.bits.len().is_multiple_of(8) {
            self.bits.push(false);
        }
        let raw: Vec<u8> = self.bits.chunks(8).map(|c| c.iter().fold(0u8, |b, &bit| b << 1 | u8::from(bit))).collect();
        let mut out = Vec::with_capacity(raw.len() + 4);
        for b in raw {
            if out.len() >= 2 && out[out.len() - 2..] == [0, 0] && b <= 3 {
                out.push(3);
            }
            out.push(b);
        }
        out
    }
}

mod decoding {
    use super::*;
    use crate::vision::h264::decode::{DecodeError, Decoder, Output};
    use crate::vision::jpeg;

    /// Every picture of `file`, decoded in order, as RGB.
    fn decode_all(file: &str) -> Vec<crate::vision::image::RgbImage> {
        let (mut s, mut d) = (Stream::new(), Decoder::new());
        access_units(&fixture(file))
            .iter()
            .map(|au| {
                let Ok(Checked::Picture(p)) = s.check(au, &limits()) else { panic!("{file}: not a picture") };
                match d.decode(au, &p, true) {
                    Ok(Output::Rgb(img)) => img,
                    other => panic!("{file}: {other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn the_pictures_decode_to_their_source_frames() {
        // Constrained baseline (CAVLC) at the plates' own size: each picture against the JPEG
        // frame it was made from, within the codec's loss (crf 23).
        let pictures = decode_all("plates_640x480.h264");
        assert_eq!(pictures.len(), 12);
        for (i, p) in pictures.iter().enumerate() {
            let bytes = std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/plates/{i:03}.jpg")),
            )
            .unwrap();
            let info = jpeg::validate(&bytes, &jpeg::Limits::default()).unwrap();
            let src = jpeg::decode_rgb(&bytes, &info, 1).unwrap();
            assert_eq!((p.width, p.height), (src.width, src.height));
            let diff: u64 = p.data.iter().zip(&src.data).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
            let mean = diff as f64 / p.data.len() as f64;
            assert!(mean < 6.0, "picture {i}: mean abs difference {mean:.2} per channel");
        }
        // Main profile (CABAC), coded 640×368, cropped to 640×360.
        let main = decode_all("main_640x360.h264");
        assert!(main.iter().all(|p| (p.width, p.height) == (640, 360)) && main.len() == 4);
        let hd = decode_all("plates_1920x1080.h264");
        assert!(hd.iter().all(|p| (p.width, p.height) == (1920, 1080)) && hd.len() == 3);
    }

    #[test]
    fn a_refused_access_unit_resets_the_decoder_and_the_next_idr_starts_again() {
        let aus = access_units(&fixture("plates_640x480.h264"));
        let (mut s, mut d) = (Stream::new(), Decoder::new());
        let Ok(Checked::Picture(p)) = s.check(&aus[0], &limits()) else { panic!() };
        // The IDR cut in half: its header passes the check; the decoder refuses it or conceals
        // the rest. Whichever, nothing panics and the stream goes on from the next IDR.
        let half = &aus[0][..aus[0].len() / 2];
        match d.decode(half, &p, true) {
            Err(DecodeError::Refused(_)) => {
                s.restart();
                assert_eq!(d.made(), 1);
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
        // P-pictures after a reset wait for the IDR.
        if !s.keyframe_seen() {
            assert_eq!(s.check(&aus[1], &limits()), Ok(Checked::BeforeKeyframe));
        }
        for au in &aus[6..] {
            let Ok(Checked::Picture(p)) = s.check(au, &limits()) else { panic!() };
            assert!(matches!(d.decode(au, &p, false), Ok(Output::Decoded)), "decoded, not converted");
        }
    }

    /// The resident memory one live decoder holds after its first pictures (the figure in
    /// deploy/README.md's memory formula).
    #[test]
    #[ignore = "a measurement: cargo test --release --lib decoder_memory -- --ignored --nocapture"]
    fn decoder_memory() {
        let rss = || {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
        };
        for file in ["plates_640x480.h264", "plates_1920x1080.h264"] {
            let aus = access_units(&fixture(file));
            let before = rss();
            let mut live = Vec::new();
            for _ in 0..16 {
                let (mut s, mut d) = (Stream::new(), Decoder::new());
                for au in &aus[..3] {
                    let Ok(Checked::Picture(p)) = s.check(au, &limits()) else { panic!() };
                    d.decode(au, &p, false).unwrap();
                }
                live.push(d);
            }
            let per = (rss() - before) / 16;
            println!("{file}: {} KiB resident per live decoder", per / 1024);
        }
    }
}
