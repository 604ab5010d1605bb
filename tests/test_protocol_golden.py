"""Golden vectors: the bytes on disk are what the codec builds, and each decodes to its documented meaning."""
from __future__ import annotations

import json
import re
from pathlib import Path

import msgpack
import numpy as np
import pytest

from vinpaint.protocol import codec, golden_vectors, messages
from vinpaint.protocol.codec import ProtocolError
from vinpaint.protocol.content_hash import clip_hash, item_digest

GOLDEN = Path(golden_vectors.__file__).resolve().parent / "golden"
SPEC = Path(golden_vectors.__file__).resolve().parent / "SPEC.md"
DESCRIPTION = json.loads((GOLDEN / "vectors.json").read_text())
VECTORS = {v["name"]: v for v in DESCRIPTION["vectors"]}


def frames_of(vec: dict) -> list[bytes]:
    return [(GOLDEN / name).read_bytes() for name in vec["files"]]


def decode(vec: dict) -> codec.Message:
    if vec["direction"] == "request":
        msg = codec.decode_request(frames_of(vec))
        messages.check_request(msg)
    else:
        msg = codec.decode_reply(frames_of(vec))
        messages.check_reply(msg)
    return msg


def test_files_on_disk_are_exactly_what_the_generator_builds():
    expected = golden_vectors.expected_files()
    on_disk = {p.name for p in GOLDEN.iterdir() if p.suffix in (".bin", ".json")}
    assert on_disk == set(expected)
    for name, data in expected.items():
        assert (GOLDEN / name).read_bytes() == data, name


def test_spec_version_equals_codec_version():
    title = SPEC.read_text().splitlines()[0]
    assert re.fullmatch(r"# vinpaint wire protocol, version (\d+)", title)
    assert int(title.rsplit(" ", 1)[1]) == codec.PROTOCOL_VERSION == DESCRIPTION["protocol"]


def test_every_error_code_of_the_spec_is_documented_once():
    text = SPEC.read_text()
    table = text.split("## 7. Error codes", 1)[1].split("##", 1)[0]
    codes = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.M)
    assert len(codes) == len(set(codes))
    used = {v["expect_error"]["code"] for v in DESCRIPTION["vectors"] if not v["valid"]}
    assert used <= set(codes)


def test_every_message_type_has_request_and_reply_vectors():
    for t in messages.REQUEST_TYPES:
        names = [n for n, v in VECTORS.items() if v["valid"] and v["header"]["type"] == t]
        dirs = {VECTORS[n]["direction"] for n in names}
        assert dirs == {"request", "reply"}, t


@pytest.mark.parametrize("name", [n for n, v in VECTORS.items() if v["valid"]])
def test_valid_vector_decodes_to_its_meaning(name):
    vec = VECTORS[name]
    msg = decode(vec)
    header = vec["header"]
    assert msg.type == header["type"] and msg.body == header["body"]
    if vec["direction"] == "request":
        assert msg.id == header["id"]
    else:
        assert msg.re == header["re"] and msg.status == header["status"]
        assert msg.error == header.get("error")
    assert len(msg.buffers) == len(vec["buffers"])
    for i, b in enumerate(vec["buffers"]):
        arr = msg.array(i)
        assert arr.dtype == codec.DTYPES[b["dtype"]] and list(arr.shape) == b["shape"]
        assert arr.ravel().tolist() == b["values"]
    # JSON numbers with a fraction are float64 on the wire, the others ints
    raw = msgpack.unpackb(frames_of(vec)[0], raw=False)
    assert raw == header
    _same_types(raw, header)


def _same_types(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same_types(a[k], b[k])
    elif isinstance(a, list):
        for x, y in zip(a, b):
            _same_types(x, y)


@pytest.mark.parametrize("name", [n for n, v in VECTORS.items() if not v["valid"]])
def test_invalid_vector_is_refused_with_its_code(name):
    vec = VECTORS[name]
    with pytest.raises(ProtocolError) as info:
        decode(vec)
    assert info.value.code == vec["expect_error"]["code"]
    if "field" in vec["expect_error"]:
        assert info.value.field == vec["expect_error"]["field"]


def test_version_mismatch_names_both_versions_and_answers_the_request():
    with pytest.raises(ProtocolError) as info:
        decode(VECTORS["bad_version_request"])
    err = info.value
    assert "2" in err.message and "1" in err.message and err.re == "c-11" and err.type == "job.status"
    reply = [bytes(f) for f in codec.encode_error(err)]
    assert reply == frames_of(VECTORS["error_version_mismatch_reply"])


def test_content_hash_example_is_reproducible_from_the_json_alone():
    ex = DESCRIPTION["content_hash"]
    digests = []
    for item in ex["frames"] + ex["masks"]:
        arr = np.array(item["values"], dtype=codec.DTYPES[item["dtype"]]).reshape(item["shape"])
        digests.append(item_digest(arr))
    assert [d.hex() for d in digests] == ex["frame_sha256"] + ex["mask_sha256"]
    assert clip_hash(2, 2, 3, 4, "u1", "f4", digests[:2], digests[2:]) == ex["content_hash"]
    assert VECTORS["job_open_request"]["header"]["body"]["content_hash"] == ex["content_hash"]
