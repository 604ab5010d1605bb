"""The reference codec on its own: round trips, every refusal path, and hypothesis fuzzing of the decoder."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vinpaint.protocol import codec, messages
from vinpaint.protocol.codec import ProtocolError
from vinpaint.protocol.content_hash import clip_hash, item_digest

JOB = "0123456789abcdef0123456789abcdef"
HASH = "ab" * 32


def pack(h) -> bytes:
    return msgpack.packb(h, use_bin_type=True)


def req(body, type_="job.status", extra=None, frames=()):
    header = {"v": 1, "type": type_, "id": "t-1", "body": body, **(extra or {})}
    return [pack(header), *frames]


def refused(frames, reply=False) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        msg = codec.decode_reply(frames) if reply else codec.decode_request(frames)
        messages.check_reply(msg) if reply else messages.check_request(msg)
    return info.value


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5, 7, 3), (4, 4, 1), (9,)])
def test_buffers_round_trip_bit_exact(dtype, shape):
    arr = (np.random.default_rng(1).random(shape) * 200).astype(dtype)
    frames = [bytes(f) for f in codec.encode_request("job.upload", "x", {"job": JOB}, [arr])]
    msg = codec.decode_request(frames)
    out = msg.array(0)
    assert out.dtype == arr.dtype and out.shape == arr.shape and np.array_equal(out, arr)
    assert len(frames[1]) == arr.nbytes


def test_big_endian_and_strided_arrays_go_out_little_endian_and_contiguous():
    arr = np.arange(24, dtype=">u2").reshape(2, 3, 4)[:, ::-1]
    frames = [bytes(f) for f in codec.encode_request("job.upload", "x", {}, [arr])]
    assert frames[1] == np.ascontiguousarray(arr, dtype="<u2").tobytes()
    assert np.array_equal(codec.decode_request(frames).array(0), arr)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int8, bool])
def test_unsupported_dtypes_cannot_be_sent(dtype):
    with pytest.raises(ProtocolError) as info:
        codec.encode_request("job.upload", "x", {}, [np.zeros((2, 2, 3), dtype)])
    assert info.value.code == "bad_buffer"


def test_nil_means_absent_and_unknown_fields_are_ignored():
    msg = codec.decode_request(req({"job": JOB, "future": [1, 2]}, extra={"trace": "abc", "buffers": None}))
    assert messages.check_request(msg) == {"job": JOB}
    msg = codec.decode_request(req({"job": JOB, "kind": "frame", "index": 0, "digest": None}, "job.upload",
                                   {"buffers": [{"dtype": "u1", "shape": [1]}]}, [b"\0"]))
    assert messages.check_request(msg)["digest"] is None


@pytest.mark.parametrize("frames,code,field", [
    ([], "malformed", "header"),
    ([b""], "malformed", "header"),
    ([b"\xc1"], "malformed", "header"),  # never-used msgpack byte
    ([pack({"v": 1.0, "type": "hello", "id": "a"})], "malformed", "v"),
    ([pack({"v": True, "type": "hello", "id": "a"})], "malformed", "v"),
    ([pack({"v": 1, "type": 7, "id": "a"})], "malformed", "type"),
    ([pack({"v": 1, "type": "", "id": "a"})], "malformed", "type"),
    ([pack({"v": 1, "type": "hello", "id": ""})], "malformed", "id"),
    ([pack({"v": 1, "type": "hello", "id": "x" * 65})], "malformed", "id"),
    ([pack({"v": 1, "type": "hello", "id": "a", "body": []})], "malformed", "body"),
    ([pack({"v": 1, "type": "hello", "id": "a", "buffers": {}})], "malformed", "buffers"),
    ([pack({"v": 1, "type": "hello", "id": "a", "buffers": [{"dtype": "u1", "shape": [0]}]}), b""],
     "bad_buffer", "buffers[0].shape"),
    ([pack({"v": 1, "type": "hello", "id": "a", "buffers": [{"dtype": "u1", "shape": [1, 1, 1, 1, 1]}]}), b"\0"],
     "bad_buffer", "buffers[0].shape"),
    ([pack({"v": 1, "type": "hello", "id": "a", "buffers": [{"dtype": "u1", "shape": [True]}]}), b"\0"],
     "bad_buffer", "buffers[0].shape"),
    ([pack({"v": 1, "type": "hello", "id": "a", "buffers": [1]}), b"\0"], "bad_buffer", "buffers[0]"),
    ([pack({"v": 1, "type": "hello", "id": "a", "buffers": [{"dtype": "u1", "shape": [1]}] * 5})] + [b"\0"] * 5,
     "too_large", "buffers"),
    ([pack({"v": 1, "type": "hello", "id": "a", "body": {1: 2}})], "malformed", "header"),
    ([msgpack.packb({"v": 1, "type": "hello", "id": "a", "x": msgpack.ExtType(1, b"z")})], "malformed", "header"),
    ([pack({"v": 1, "type": "hello", "id": "a", "pad": "x" * 70000})], "too_large", "header"),
    ([pack({"v": 99, "what": "ever"})], "version_mismatch", "v"),
    ([pack({"v": -1})], "version_mismatch", "v"),
])
def test_envelope_refusals(frames, code, field):
    err = refused(frames)
    assert (err.code, err.field) == (code, field)
    assert err.message and len(err.message) < 300 and "Traceback" not in err.message


def test_version_is_checked_before_everything_else():
    err = refused([pack({"v": 2, "type": 5, "id": None, "body": "nonsense", "buffers": 3}), b"junk"])
    assert err.code == "version_mismatch" and "version 2" in err.message and "version 1" in err.message


@pytest.mark.parametrize("type_,body,field", [
    ("job.status", {}, "body.job"),
    ("job.status", {"job": JOB.upper()}, "body.job"),
    ("job.status", {"job": "../" + JOB[3:]}, "body.job"),
    ("job.status", {"job": JOB + "0"}, "body.job"),
    ("job.fetch", {"job": JOB, "index": -1}, "body.index"),
    ("job.fetch", {"job": JOB, "index": 1.0}, "body.index"),
    ("job.fetch", {"job": JOB, "index": 2**40}, "body.index"),
    ("job.open", {"frames": 0, "width": 1, "height": 1, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH}, "body.frames"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 2, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH}, "body.channels"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 3, "dtype": "f8", "mask_dtype": "u1",
                  "content_hash": HASH}, "body.dtype"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH[:-1]}, "body.content_hash"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH, "settings": {"seed": -1}}, "body.settings.seed"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH, "settings": {"overrides": {"train.lr": float("nan")}}},
     "body.settings.overrides.train.lr"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH, "settings": {"overrides": {"../x": 1}}},
     "body.settings.overrides.../x"),
    ("job.open", {"frames": 2, "width": 1, "height": 1, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                  "content_hash": HASH, "name": "n" * 257}, "body.name"),
    ("hello", {"client": 5}, "body.client"),
    ("job.history", {"job": JOB, "points": 1}, "body.points"),
    ("job.history", {"job": JOB, "points": 65536}, "body.points"),
    ("job.history", {"job": JOB, "points": 2.5}, "body.points"),
])
def test_body_refusals_name_the_field(type_, body, field):
    err = refused(req(body, type_))
    assert (err.code, err.field) == ("bad_request", field)
    assert field in err.message


def test_unknown_type_and_wrong_buffer_counts():
    assert refused(req({}, "job.explode")).code == "unknown_type"
    err = refused(req({"job": JOB}, extra={"buffers": [{"dtype": "u1", "shape": [1]}]}, frames=[b"\0"]))
    assert err.code == "bad_buffer"
    assert refused(req({"job": JOB, "kind": "frame", "index": 0}, "job.upload")).code == "bad_buffer"


def test_error_replies_answer_the_request_they_refuse():
    err = refused(req({"job": "nope"}))
    assert (err.re, err.type) == ("t-1", "job.status")
    reply = codec.decode_reply(codec.encode_error(err))
    assert reply.status == "error" and reply.re == "t-1" and reply.error["code"] == "bad_request"
    assert reply.error["field"] == "body.job"


def test_history_request_default_and_reply_buffer_shape():
    assert messages.check_request(codec.decode_request(req({"job": JOB}, "job.history"))) == \
        {"job": JOB, "points": messages.HISTORY_POINTS}
    rows = np.zeros((3, 3), np.float32)
    good = codec.encode_reply("job.history", "t-1", {"job": JOB, "terms": ["total", "recon"], "steps": 3}, [rows])
    assert messages.check_reply(codec.decode_reply(good))["terms"] == ["total", "recon"]
    for bad in (np.zeros((3, 2), np.float32), np.zeros((3, 3), np.uint16), np.zeros(9, np.float32)):
        frames = codec.encode_reply("job.history", "t-1", {"job": JOB, "terms": ["total", "recon"], "steps": 3},
                                    [bad])
        assert refused(frames, True).code == "bad_buffer"


def test_reply_checks():
    assert refused([pack({"v": 1, "type": "hello", "re": "a", "status": "maybe", "body": {}})], True).code \
        == "malformed"
    assert refused([pack({"v": 1, "type": "hello", "re": "a", "status": "error", "body": {}})], True).code \
        == "malformed"
    assert refused([pack({"v": 1, "type": "job.start", "re": "a", "status": "ok", "body": {"job": JOB}})],
                   True).field == "body.state"


def test_content_hash_depends_on_order_geometry_and_every_byte():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    masks = [np.zeros((2, 2, 1), np.uint8) for _ in range(3)]
    fd, md = [item_digest(f) for f in frames], [item_digest(m) for m in masks]
    base = clip_hash(3, 2, 2, 3, "u1", "u1", fd, md)
    assert len(base) == 64 and base == base.lower()
    assert clip_hash(3, 2, 2, 3, "u1", "u1", fd[::-1], md) != base
    assert clip_hash(3, 2, 2, 3, "u1", "u2", fd, md) != base
    assert clip_hash(3, 2, 2, 3, "u1", "u1", md, fd) != base
    flipped = masks[1].copy()
    flipped[0, 0, 0] = 1
    assert clip_hash(3, 2, 2, 3, "u1", "u1", fd, [md[0], item_digest(flipped), md[2]]) != base


# --- fuzzing: whatever arrives, the decoder answers with a ProtocolError or a valid message ---------------------

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64 - 1) | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20)
FIELDS = ["v", "type", "id", "body", "buffers", "job", "index", "kind", "settings", "frames", "dtype", "shape"]
header_like = st.fixed_dictionaries({}, optional={
    "v": st.sampled_from([1, 1, 1, 2, 0, -1, "1", 1.0, None]),
    "type": st.sampled_from(messages.REQUEST_TYPES + ("", "x", "job.")) | st.text(max_size=5),
    "id": st.sampled_from(["a", "c-1", "", "../", "x" * 70]) | st.text(max_size=5),
    "body": st.dictionaries(st.sampled_from(FIELDS), msgpack_values, max_size=6) | msgpack_values,
    "buffers": st.lists(st.fixed_dictionaries({}, optional={"dtype": st.sampled_from(["u1", "u2", "f4", "f8", 1]),
                                                           "shape": st.lists(st.integers(-1, 5), max_size=5)}),
                        max_size=3) | msgpack_values,
})


def _pack_any(obj) -> bytes:
    try:
        return msgpack.packb(obj, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return b"\xc1"


def _decode_all_the_way(frames) -> None:
    try:
        msg = codec.decode_request(frames)
        messages.check_request(msg)
    except ProtocolError as exc:
        assert exc.code in {"malformed", "version_mismatch", "unknown_type", "bad_request", "bad_buffer",
                            "too_large"}
        assert isinstance(exc.message, str) and exc.message
        reply = codec.decode_reply(codec.encode_error(exc))  # its error reply is always well-formed
        assert reply.error["code"] == exc.code


@settings(max_examples=450, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_like, st.lists(st.binary(max_size=40), max_size=3))
def test_fuzz_structured_headers(header, extra):
    _decode_all_the_way([_pack_any(header), *extra])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.lists(st.binary(max_size=10), max_size=2))
def test_fuzz_random_bytes(data, extra):
    _decode_all_the_way([data, *extra])


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_fuzz_truncated_and_bit_flipped_valid_messages(data):
    frames = [bytes(f) for f in codec.encode_request(
        "job.upload", "c-9", {"job": JOB, "kind": "mask", "index": 3, "digest": HASH},
        [np.zeros((3, 4, 1), np.float32)])]
    which = data.draw(st.integers(0, len(frames) - 1))
    blob = bytearray(frames[which])
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    elif blob:
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] ^= data.draw(st.integers(1, 255))
    frames[which] = bytes(blob)
    _decode_all_the_way(frames)
