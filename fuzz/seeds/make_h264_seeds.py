"""Generate the seed corpora of the `validate_h264` and `decode_h264` fuzz targets (the same seeds) from the H.264 test streams
(`tests/fixtures/h264/`, made by libx264: `make_h264_fixtures.sh` there). Each seed is a short
stream: access units joined by the body's separator `FF FF FF FE`. Outputs are committed;
re-run from the repository root: `python3 fuzz/seeds/make_h264_seeds.py`.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "tests", "fixtures", "h264")
OUTS = [os.path.join(ROOT, "fuzz", "seeds", t) for t in ("validate_h264", "decode_h264")]
SEP = b"\xff\xff\xff\xfe"


def access_units(stream):
    """The stream cut at its access unit delimiters (NAL type 9 after a start code)."""
    starts = []
    i = 0
    while True:
        i = stream.find(b"\x00\x00\x01\x09", i)
        if i < 0:
            break
        starts.append(i - 1 if i > 0 and stream[i - 1] == 0 else i)
        i += 4
    return [stream[s:e] for s, e in zip(starts, starts[1:] + [len(stream)])]


def main():
    seeds = {}
    for name in sorted(os.listdir(SRC)):
        # The plates streams (the wire tests' and the bench's) are big: the small ones cover
        # the same syntax.
        if not name.endswith(".h264") or name.startswith("plates_"):
            continue
        aus = access_units(open(os.path.join(SRC, name), "rb").read())
        base = name[: -len(".h264")]
        seeds[f"{base}_first"] = aus[0]
        seeds[f"{base}_first_two"] = SEP.join(aus[:2])
    aus = access_units(open(os.path.join(SRC, "baseline_320x240.h264"), "rb").read())
    seeds["baseline_320x240_p_before_idr"] = SEP.join([aus[1], aus[0], aus[1]])
    seeds["baseline_320x240_cut_in_half"] = aus[0][: len(aus[0]) // 2]
    seeds["baseline_320x240_all"] = SEP.join(aus)
    for out in OUTS:
        os.makedirs(out, exist_ok=True)
        for name, data in seeds.items():
            open(os.path.join(out, name + ".bin"), "wb").write(data)


if __name__ == "__main__":
    main()
