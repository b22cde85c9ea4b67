"""Generate the seed corpora of the `validate_jpeg` and `decode` fuzz targets (outputs are
committed; re-run from the repository root: `python3 fuzz/seeds/make_jpeg_seeds.py`).

Real frames: the fixtures under tests/fixtures (those under 100 KB) and every variant in
tests/fixtures/jpeg. Broken frames: hand-made damage to tests/fixtures/jpeg/baseline_420.jpg
(truncations, bad segment lengths, bad dimensions, wrong markers) and non-JPEG payloads.
"""
import glob, os, shutil, struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
TARGETS = ["validate_jpeg", "decode"]


def segments(d):
    """(marker, offset of 0xFF, offset past the segment) up to and including the first SOS."""
    i, out = 2, []
    while True:
        m = d[i + 1]
        n = struct.unpack(">H", d[i + 2:i + 4])[0]
        out.append((m, i, i + 2 + n))
        if m == 0xDA:
            return out
        i += 2 + n


def first(segs, *markers):
    return next(s for s in segs if s[0] in markers)


base = open(os.path.join(FIX, "jpeg", "baseline_420.jpg"), "rb").read()
prog = open(os.path.join(FIX, "jpeg", "progressive.jpg"), "rb").read()
segs = segments(base)
sof_m, sof, sof_end = first(segs, 0xC0)
_, sos, sos_end = first(segs, 0xDA)
app = segs[0]


def patch(d, off, new):
    return d[:off] + bytes(new) + d[off + len(new):]


def sof_dims(h, w):
    return patch(base, sof + 5, struct.pack(">HH", h, w))


broken = {
    "empty": b"",
    "soi_only": base[:2],
    "trunc_in_app0": base[:app[1] + 6],
    "trunc_in_sof": base[:sof + 8],
    "trunc_at_sos_header_end": base[:sos_end],
    "trunc_mid_scan": base[:(sos_end + len(base)) // 2],
    "trunc_no_eoi": base[:-2],
    "seg_len_0": patch(base, app[1] + 2, [0, 0]),
    "seg_len_1": patch(base, app[1] + 2, [0, 1]),
    "seg_len_ffff": patch(base, app[1] + 2, [0xFF, 0xFF]),
    "sof_len_short": patch(base, sof + 2, [0, 8]),
    "sof_zero_width": sof_dims(120, 0),
    "sof_zero_height_dnl": sof_dims(0, 160),
    "sof_65500x65500": sof_dims(65500, 65500),
    "sof_side_16385": sof_dims(1, 16385),
    "sof_dims_disagree_with_scan": sof_dims(240, 320),
    "sof_precision_12": patch(base, sof + 4, [12]),
    "sof3_lossless": patch(base, sof + 1, [0xC3]),
    "sof9_arithmetic": patch(base, sof + 1, [0xC9]),
    "sof_5_components": patch(base, sof + 9, [5]),
    "sos_unknown_component": patch(base, sos + 5, [9]),
    "sos_before_sof": base[:sof] + base[sof_end:],
    "eoi_before_sos": base[:sos] + b"\xff\xd9",
    "double_soi": base[:2] + base,
    "marker_ff00_in_header": base[:sof] + b"\xff\x00" + base[sof:],
    "entropy_flipped": bytes(b ^ 0x55 if sos_end + 40 <= i < sos_end + 80 else b for i, b in enumerate(base)),
    "entropy_zeroed": base[:sos_end] + bytes(len(base) - sos_end - 2) + b"\xff\xd9",
    "progressive_trunc_scan2": prog[:len(prog) * 2 // 3],
    "png_header": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00",
    "gif_header": b"GIF89a\x10\x00\x10\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,",
    "text": b"hello, this is not a frame",
}

for t in TARGETS:
    out = os.path.join(ROOT, "fuzz", "seeds", t)
    os.makedirs(out, exist_ok=True)
    for f in sorted(glob.glob(os.path.join(FIX, "*.jpg")) + glob.glob(os.path.join(FIX, "jpeg", "*.jpg"))):
        if os.path.getsize(f) < 100_000:
            prefix = "variant_" if os.path.basename(os.path.dirname(f)) == "jpeg" else "frame_"
            shutil.copyfile(f, os.path.join(out, prefix + os.path.basename(f)))
            os.chmod(os.path.join(out, prefix + os.path.basename(f)), 0o644)
    for name, data in broken.items():
        open(os.path.join(out, f"broken_{name}.jpg"), "wb").write(data)
