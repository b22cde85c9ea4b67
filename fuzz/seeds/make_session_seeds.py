"""Generate the seed corpus of the `session_bytes` fuzz target: realistic client byte streams
(WebSocket frames as a client sends them: masked, after the handshake). Outputs are committed;
re-run from the repository root: `python3 fuzz/seeds/make_session_seeds.py`.
"""
import os, random, struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fuzz", "seeds", "session_bytes")
JPEG = open(os.path.join(ROOT, "tests", "fixtures", "jpeg", "baseline_420.jpg"), "rb").read()
GRAY = open(os.path.join(ROOT, "tests", "fixtures", "jpeg", "gray.jpg"), "rb").read()
MASK = b"\x37\xfa\x21\x3d"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode, payload, fin=True, masked=True, rsv=0, length=None):
    """One frame; `length` overrides the declared payload length (the payload is sent as is)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    m = 0x80 if masked else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 1 << 16:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def close(code=1000, reason=b"bye"):
    return frame(CLOSE, struct.pack(">H", code) + reason)


seeds = {
    "binary_jpeg_then_close": frame(BINARY, JPEG) + close(),
    "binary_jpeg_then_eof": frame(BINARY, JPEG),
    "three_jpegs_back_to_back": frame(BINARY, JPEG) + frame(BINARY, GRAY) + frame(BINARY, JPEG) + close(),
    "invalid_then_valid_jpeg": frame(BINARY, b"not a jpeg") + frame(BINARY, JPEG) + close(),
    "truncated_jpeg_message": frame(BINARY, JPEG[: len(JPEG) // 2]) + close(),
    "text_frame": frame(TEXT, b'{"type":"hello"}') + close(),
    "text_invalid_utf8": frame(TEXT, b"\xff\xfe\xfd"),
    "ping_then_close": frame(PING, b"are you there") + close(),
    "pong_unsolicited": frame(PONG, b"x") + close(),
    "close_only": close(),
    "close_empty": frame(CLOSE, b""),
    "close_one_byte": frame(CLOSE, b"\x03"),
    "close_bad_code": close(999, b""),
    "fragmented_binary_with_ping": frame(BINARY, JPEG[:1000], fin=False)
    + frame(PING, b"p")
    + frame(CONT, JPEG[1000:3000], fin=False)
    + frame(CONT, JPEG[3000:])
    + close(),
    "fragmented_text": frame(TEXT, b"hel", fin=False) + frame(CONT, b"lo") + close(),
    "continuation_without_start": frame(CONT, b"orphan"),
    "fragmented_control": frame(PING, b"p", fin=False),
    "control_too_long": frame(PING, b"x" * 130),
    "oversize_len_header_64bit": frame(BINARY, b"", length=1 << 40),
    "oversize_message_70000": frame(BINARY, JPEG, length=70000),
    "declared_len_longer_than_sent": frame(BINARY, JPEG[:100], length=5000),
    "unmasked_binary": frame(BINARY, JPEG[:64], masked=False),
    "reserved_opcode": frame(0x3, b"\x01\x02"),
    "rsv_bits_set": frame(BINARY, JPEG[:64], rsv=0b100),
    "http_request_instead_of_frames": b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
    "garbage": bytes(random.Random(7).randrange(256) for _ in range(512)),
    "empty": b"",
    # Work once (#27): the frames the tracker predicts, waiting in order behind the one in flight.
    "configure_auto_then_a_burst": frame(TEXT, b'{"type":"configure","track":true,"detect_every":"auto"}')
    + b"".join(frame(BINARY, JPEG) for _ in range(5))
    + close(),
    "configure_every_2_then_tracking_off": frame(TEXT, b'{"type":"configure","track":true,"detect_every":2,"ocr_reuse":false}')
    + b"".join(frame(BINARY, JPEG) for _ in range(4))
    + frame(TEXT, b'{"type":"configure","track":false}')
    + frame(TEXT, b'{"type":"configure","track":false,"detect_every":1}')
    + frame(BINARY, GRAY)
    + frame(BINARY, JPEG)
    + frame(TEXT, b'{"type":"end_of_stream"}')
    + close(),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    open(os.path.join(OUT, name + ".bin"), "wb").write(data)
