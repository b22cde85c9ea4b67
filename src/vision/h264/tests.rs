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
    // P-pictures before one refer to a PPS this stream never got.
    assert_eq!(s.check(&aus[1], &limits()), Err(VideoError::Corrupt("a slice of a PPS never sent")));
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
    assert_eq!(s.check(&aus[1], &limits()), Err(VideoError::Corrupt("a slice of a PPS never sent")));
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
