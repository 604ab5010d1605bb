"""Golden vectors: fixed byte-exact messages with their meaning, shared by the Python and the C++ codec tests.

`python -m vinpaint.protocol.golden_vectors --check` verifies the files in protocol/golden/ are what this module
builds (they must never change for protocol v1); `--write` creates them (only when adding vectors).
Each vector is a multipart message stored as one file per frame: `<name>.<frame>.bin`; `vectors.json` says what
each one means, or which error code a receiver must answer for an invalid one.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from vinpaint.files import atomic_write_bytes

from .codec import PROTOCOL_VERSION, encode_reply, encode_request, wire_array
from .content_hash import clip_hash, item_digest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

T0 = 1700000000.5
"""A fixed time stamp (a non-integral float, so JSON readers cannot confuse it with an int)."""


@dataclass
class Vector:
    """One multipart message and what it means."""

    name: str
    direction: str  # "request" (client -> daemon) or "reply" (daemon -> client)
    frames: list[bytes]
    note: str
    valid: bool = True
    expect: dict[str, Any] = field(default_factory=dict)  # for invalid vectors: {"code": ..., "field"?: ...}
    arrays: list[np.ndarray] = field(default_factory=list)


def example_clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The worked content-hash example: T=2 frames of u1 RGBA 2x3, f4 masks [2,3,1]."""
    frames = [np.arange(24, dtype=np.uint8).reshape(2, 3, 4) + np.uint8(100 * t) for t in range(2)]
    masks = [np.zeros((2, 3, 1), dtype=np.float32) for _ in range(2)]
    masks[0][0, 1, 0] = 1.0
    masks[1][1, 2, 0] = 0.75
    return frames, masks


def example_hash() -> str:
    frames, masks = example_clip()
    return clip_hash(2, 2, 3, 4, "u1", "f4", [item_digest(f) for f in frames], [item_digest(m) for m in masks])


def example_reference() -> np.ndarray:
    """The worked example's painted clean frame 1: u1 RGBA [2,3,4], like a frame."""
    return (np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * np.uint8(7) + np.uint8(3))


def example_hash_with_reference() -> str:
    """The example clip with frame 1 painted clean (SPEC.md section 5, reference frames)."""
    frames, masks = example_clip()
    return clip_hash(2, 2, 3, 4, "u1", "f4", [item_digest(f) for f in frames], [item_digest(m) for m in masks],
                     {1: item_digest(example_reference())})


def _frames(parts: list[Any]) -> list[bytes]:
    return [bytes(p) for p in parts]


def build() -> list[Vector]:
    """Every golden vector, in a fixed order."""
    clip_frames, clip_masks = example_clip()
    chash = example_hash()
    job = "3f2a9c0d4b5e6f708192a3b4c5d6e7f8"
    fetched = (np.arange(18, dtype=np.uint16).reshape(2, 3, 3) * np.uint16(3000))
    v: list[Vector] = []

    def req(name: str, type_: str, id_: str, body: dict | None, arrays=(), note: str = "") -> None:
        v.append(Vector(name, "request", _frames(encode_request(type_, id_, body, arrays)), note,
                        arrays=list(arrays)))

    def rep(name: str, type_: str, re_: str, body: dict | None, arrays=(), error=None, note: str = "") -> None:
        v.append(Vector(name, "reply", _frames(encode_reply(type_, re_, body, arrays, error)), note,
                        arrays=list(arrays)))

    # --- valid requests
    req("hello_request", "hello", "c-1", {"client": "vinpaint-ofx 0.1.0 Natron"}, note="first message of a session")
    req("job_open_request", "job.open", "c-2", {
        "frames": 2, "width": 3, "height": 2, "channels": 4, "dtype": "u1", "mask_dtype": "f4",
        "content_hash": chash,
        "settings": {"preset": "tiny", "variant": "dip-vid-flow", "seed": 7, "mask_dilation": 4,
                     "overrides": {"train.max_steps": 100, "train.learning_rate": 0.005}},
        "name": "shot010 comp v3"}, note="opens the example clip of the content_hash section")
    req("job_upload_frame_request", "job.upload", "c-3",
        {"job": job, "kind": "frame", "index": 0, "digest": item_digest(clip_frames[0]).hex()},
        [clip_frames[0]], note="frame 0 of the example clip: u1 RGBA [2,3,4], 24 bytes")
    req("job_upload_mask_request", "job.upload", "c-4", {"job": job, "kind": "mask", "index": 1},
        [clip_masks[1]], note="mask 1 of the example clip: f4 [2,3,1], 24 bytes, no digest")
    req("job_start_request", "job.start", "c-5", {"job": job})
    req("job_status_request", "job.status", "c-6", {"job": job})
    req("job_fetch_request", "job.fetch", "c-7", {"job": job, "index": 1})
    req("job_history_request", "job.history", "c-24", {"job": job, "points": 3},
        note="at most 3 rows of the job's loss history")
    req("job_cancel_request", "job.cancel", "c-8", {"job": job})
    req("job_delete_request", "job.delete", "c-9", {"job": job})
    req("job_list_request", "job.list", "c-10", {})

    # --- valid replies
    rep("hello_reply", "hello", "c-1", {
        "protocol": 1, "server": "vinpaint 0.1.0", "devices": ["cpu"], "presets": ["paper", "fast", "tiny"],
        "variants": ["dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow"],
        "limits": {"max_message_bytes": 268435456, "max_header_bytes": 65536, "max_frames": 10000,
                   "max_width": 8192, "max_height": 8192}})
    rep("job_open_reply_created", "job.open", "c-2",
        {"job": job, "created": True, "state": "uploading", "have_frames": [], "have_masks": []})
    rep("job_open_reply_existing", "job.open", "c-2",
        {"job": job, "created": False, "state": "done", "have_frames": [0, 1], "have_masks": [0, 1]},
        note="re-opening a finished shot: nothing to upload, fetch the results")
    rep("job_upload_reply", "job.upload", "c-3",
        {"job": job, "kind": "frame", "index": 0, "stored": True, "missing_frames": 1, "missing_masks": 2})
    rep("job_start_reply", "job.start", "c-5", {"job": job, "state": "queued", "position": 0})
    rep("job_status_reply_training", "job.status", "c-6", {
        "job": job, "state": "training", "progress": 0.25, "phase": "train", "step": 3, "total": 12,
        "elapsed_s": 3.25, "eta_s": 12.5, "losses": {"total": 0.125, "reconstruction": 0.0625},
        "message": "step 3/12", "frames": 2, "width": 3, "height": 2, "channels": 4, "dtype": "u1",
        "mask_dtype": "f4", "missing_frames": 0, "missing_masks": 0, "name": "shot010 comp v3",
        "created": T0, "updated": T0 + 4.25})
    rep("job_status_reply_failed", "job.status", "c-6", {
        "job": job, "state": "failed", "progress": 0.5, "phase": "train", "step": 6, "total": 12,
        "elapsed_s": 6.5, "losses": {}, "message": "training stopped",
        "error": "no space left on the daemon's disk while writing a checkpoint", "frames": 2, "width": 3,
        "height": 2, "channels": 4, "dtype": "u1", "mask_dtype": "f4", "missing_frames": 0, "missing_masks": 0,
        "name": "", "created": T0, "updated": T0 + 8.5}, note="eta_s and position are absent (omitted, not nil)")
    rep("job_fetch_reply", "job.fetch", "c-7", {"job": job, "index": 1}, [fetched],
        note="a u2 RGB [2,3,3] frame (36 bytes, little-endian)")
    history = np.array([[1, 0.5, 0.25], [3, 0.25, 0.125], [4, 0.125, 0.0625]], dtype=np.float32)
    rep("job_history_reply", "job.history", "c-24", {"job": job, "terms": ["total", "recon"], "steps": 4},
        [history], note="4 steps binned into 3 rows; column 0 is a run's last step, the rest its mean losses")
    rep("job_cancel_reply", "job.cancel", "c-8", {"job": job, "state": "cancelled"})
    rep("job_delete_reply", "job.delete", "c-9", {"job": job, "deleted": True})
    rep("job_list_reply", "job.list", "c-10", {"jobs": [
        {"job": job, "state": "done", "name": "shot010 comp v3", "progress": 1.0, "frames": 2, "width": 3,
         "height": 2, "created": T0, "updated": T0 + 60.5}]},
        note="progress 1.0 is a float64 (0xcb), not an int")
    rep("error_version_mismatch_reply", "job.status", "c-11", {"supported": [1]},
        error={"code": "version_mismatch",
               "message": "client speaks protocol version 2; this daemon speaks version 1", "field": "v"},
        note="the daemon's answer to bad_version_request")
    rep("error_not_found_reply", "job.status", "c-6", {},
        error={"code": "not_found", "message": f"no job {job} in this daemon's store"})
    rep("error_incomplete_reply", "job.start", "c-5", {"missing_frames": [1], "missing_masks": [0, 1]},
        error={"code": "incomplete", "message": "1 frame(s) and 2 mask(s) are not uploaded yet"})
    rep("error_bad_request_reply", "job.fetch", "c-7", {},
        error={"code": "bad_request", "message": "'body.index' must be from 0 to 1, not 5", "field": "body.index"})
    rep("error_unparseable_reply", "error", "", {},
        error={"code": "malformed", "message": "the header is a msgpack array, not a map", "field": "header"},
        note="the answer to a request whose type and id could not be read: type \"error\", re \"\"")

    # --- invalid requests: a receiver must answer exactly these error codes
    def bad(name: str, frames: list[bytes], code: str, note: str, fld: str | None = None,
            direction: str = "request") -> None:
        expect = {"code": code}
        if fld:
            expect["field"] = fld
        v.append(Vector(name, direction, frames, note, valid=False, expect=expect))

    pack = lambda h: msgpack.packb(h, use_bin_type=True)  # noqa: E731
    bad("bad_version_request", [pack({"v": 2, "type": "job.status", "id": "c-11", "body": {"job": job}})],
        "version_mismatch", "v=2: refused before anything else is read; the reply is error_version_mismatch_reply",
        "v")
    hdr = pack({"v": 1, "type": "job.status", "id": "c-12", "body": {"job": job}})
    bad("truncated_header_request", [hdr[:-5]], "malformed", "a job.status header cut 5 bytes short", "header")
    bad("trailing_bytes_request", [hdr + b"\xc0"], "malformed", "a valid header followed by one extra byte (nil)",
        "header")
    bad("header_not_map_request", [pack([1, "job.list", "c-13"])], "malformed", "frame 0 is an array", "header")
    bad("header_with_bin_request",
        [pack({"v": 1, "type": "job.status", "id": "c-14", "body": {"job": job.encode()}})],
        "malformed", "the job id sent as msgpack bin instead of str", "header")
    bad("missing_version_request", [pack({"type": "job.list", "id": "c-15", "body": {}})], "malformed",
        "no 'v'", "v")
    bad("bad_id_request", [pack({"v": 1, "type": "job.list", "id": "../x y", "body": {}})], "malformed",
        "id has chars outside A-Z a-z 0-9 . _ : -", "id")
    bad("unknown_type_request", [pack({"v": 1, "type": "job.explode", "id": "c-16", "body": {}})], "unknown_type",
        "no such message type", "type")
    up = {"v": 1, "type": "job.upload", "id": "c-17", "body": {"job": job, "kind": "frame", "index": 0},
          "buffers": [{"dtype": "u1", "shape": [2, 3, 4]}]}
    bad("buffer_length_mismatch_request", [pack(up), bytes(clip_frames[0].tobytes())[:23]], "bad_buffer",
        "descriptor says 24 bytes, the frame has 23", "buffers[0]")
    bad("missing_buffer_frame_request", [pack(up)], "bad_buffer", "one descriptor, no pixel frame", "buffers")
    bad("extra_frame_request", [pack({"v": 1, "type": "job.status", "id": "c-18", "body": {"job": job}}), b"\0"],
        "bad_buffer", "a pixel frame with no descriptor", "buffers")
    bad("bad_dtype_request", [pack({**up, "buffers": [{"dtype": "f8", "shape": [2, 3, 4]}]}), bytes(192)],
        "bad_buffer", "dtype f8 is not part of v1", "buffers[0].dtype")
    bad("bad_job_id_request", [pack({"v": 1, "type": "job.status", "id": "c-19", "body": {"job": "../../etc"}})],
        "bad_request", "a job id that is not 32 lowercase hex (path traversal attempt)", "body.job")
    bad("upload_without_buffer_request",
        [pack({"v": 1, "type": "job.upload", "id": "c-20", "body": {"job": job, "kind": "mask", "index": 0}})],
        "bad_buffer", "job.upload needs exactly one buffer", "buffers")
    bad("unknown_setting_request", [pack({"v": 1, "type": "job.open", "id": "c-21", "body": {
        "frames": 2, "width": 3, "height": 2, "channels": 4, "dtype": "u1", "mask_dtype": "f4",
        "content_hash": chash, "settings": {"colour": "red"}}})], "bad_request",
        "settings keys are checked strictly", "body.settings.colour")
    bad("wrong_field_type_request", [pack({"v": 1, "type": "job.fetch", "id": "c-22",
                                           "body": {"job": job, "index": "1"}})],
        "bad_request", "index sent as a str", "body.index")
    bad("bool_for_int_request", [pack({"v": 1, "type": "job.fetch", "id": "c-23",
                                       "body": {"job": job, "index": True}})],
        "bad_request", "a bool is not an int", "body.index")
    bad("references_not_ascending_request", [pack({"v": 1, "type": "job.open", "id": "c-27", "body": {
        "frames": 2, "width": 3, "height": 2, "channels": 4, "dtype": "u1", "mask_dtype": "f4",
        "content_hash": chash, "references": [1, 1]}})], "bad_request",
        "each reference frame is listed once, ascending", "body.references")
    bad("bad_layer_request", [pack({"v": 1, "type": "job.fetch", "id": "c-28",
                                    "body": {"job": job, "index": 0, "layer": "alpha"}})],
        "bad_request", "layer is \"frame\" or \"matte\"", "body.layer")
    # --- invalid replies: a client must refuse these
    bad("bad_version_reply", [pack({"v": 2, "type": "hello", "re": "c-1", "status": "ok", "body": {}})],
        "version_mismatch", "a daemon speaking v2: the client reports both versions", "v", direction="reply")
    bad("truncated_fetch_reply", [_frames(encode_reply("job.fetch", "c-7", {"job": job, "index": 1},
                                                      [fetched]))[0], bytes(wire_array(fetched)[1])[:35]],
        "bad_buffer", "the pixel frame is one byte short", "buffers[0]", direction="reply")

    # --- optional parts of version 1 (reference frames, the matte layer): old clients never send them
    reference = example_reference()
    req("job_open_references_request", "job.open", "c-25", {
        "frames": 2, "width": 3, "height": 2, "channels": 4, "dtype": "u1", "mask_dtype": "f4",
        "content_hash": example_hash_with_reference(), "settings": {"preset": "tiny"}, "references": [1]},
        note="the example clip with a painted clean frame 1 (content_hash_references)")
    req("job_upload_reference_request", "job.upload", "c-26",
        {"job": job, "kind": "reference", "index": 1, "digest": item_digest(reference).hex()}, [reference],
        note="the painted frame 1: u1 RGBA [2,3,4] like a frame, 24 bytes")
    rep("job_open_references_reply", "job.open", "c-25",
        {"job": job, "created": True, "state": "uploading", "have_frames": [], "have_masks": [],
         "have_references": []}, note="have_references is present only when the job has references")
    rep("job_upload_reference_reply", "job.upload", "c-26",
        {"job": job, "kind": "reference", "index": 1, "stored": True, "missing_frames": 2, "missing_masks": 2,
         "missing_references": 0})
    req("job_fetch_matte_request", "job.fetch", "c-29", {"job": job, "index": 1, "layer": "matte"})
    matte = np.array([[0, 2, 2], [0, 1, 2]], dtype=np.uint8).reshape(2, 3, 1)
    rep("job_fetch_matte_reply", "job.fetch", "c-29", {"job": job, "index": 1, "layer": "matte"}, [matte],
        note="u1 [2,3,1]: 0 outside the hole, 1 propagated from another frame, 2 generated")
    rep("hello_reply_features", "hello", "c-1", {
        "protocol": 1, "server": "vinpaint 0.1.0", "devices": ["cpu"], "presets": ["paper", "fast", "tiny"],
        "variants": ["dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow"],
        "limits": {"max_message_bytes": 268435456, "max_header_bytes": 65536, "max_frames": 10000,
                   "max_width": 8192, "max_height": 8192}, "features": ["references", "matte"]},
        note="a daemon that serves reference frames and the matte layer")

    # --- streaming uploads and early results (features "stream" and "partial_results")
    rep("hello_reply_stream", "hello", "c-1", {
        "protocol": 1, "server": "vinpaint 0.1.0", "devices": ["cpu"], "presets": ["paper", "fast", "tiny"],
        "variants": ["dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow"],
        "limits": {"max_message_bytes": 268435456, "max_header_bytes": 65536, "max_frames": 10000,
                   "max_width": 8192, "max_height": 8192},
        "features": ["references", "matte", "stream", "partial_results"]},
        note="a daemon that also takes a streaming start and serves frames before the job is done")
    rep("job_open_reply_windows", "job.open", "c-2",
        {"job": job, "created": True, "state": "uploading", "have_frames": [], "have_masks": [], "windows": 3},
        note="a long shot trained in 3 windows: a client starts it with stream before uploading")
    req("job_start_stream_request", "job.start", "c-30", {"job": job, "stream": True},
        note="queue the job before its items are all uploaded")
    rep("job_status_reply_upload", "job.status", "c-6", {
        "job": job, "state": "training", "progress": 0.25, "phase": "upload", "step": 2, "total": 6,
        "elapsed_s": 3.25, "losses": {}, "message": "waiting for frames 8-18 (4 items still to upload)",
        "frames": 19, "width": 3, "height": 2, "channels": 4, "dtype": "u1", "mask_dtype": "f4",
        "missing_frames": 2, "missing_masks": 2, "frames_done": 8, "name": "", "created": T0,
        "updated": T0 + 4.25}, note="the first window is done (frames 0-7 written), the second waits for uploads")
    return v


def _jsonable(arr: np.ndarray) -> dict[str, Any]:
    spec, _ = wire_array(arr)
    return {"dtype": spec.dtype, "shape": list(spec.shape), "values": np.asarray(arr).ravel().tolist()}


def describe(vectors: list[Vector]) -> dict[str, Any]:
    """The meaning of every vector, as written to vectors.json."""
    out = []
    for vec in vectors:
        item: dict[str, Any] = {"name": vec.name, "direction": vec.direction,
                                "files": [f"{vec.name}.{i}.bin" for i in range(len(vec.frames))],
                                "sizes": [len(f) for f in vec.frames], "valid": vec.valid}
        if vec.valid:
            item["header"] = msgpack.unpackb(vec.frames[0], raw=False)
            item["buffers"] = [_jsonable(a) for a in vec.arrays]
        else:
            item["expect_error"] = vec.expect
        if vec.note:
            item["note"] = vec.note
        out.append(item)
    frames, masks = example_clip()
    example = {
        "note": "SPEC.md section 5: T=2, H=2, W=3, C=4, dtype u1, mask_dtype f4",
        "geometry_line": "2 2 3 4 u1 f4\n",
        "frames": [_jsonable(f) for f in frames],
        "masks": [_jsonable(m) for m in masks],
        "frame_sha256": [item_digest(f).hex() for f in frames],
        "mask_sha256": [item_digest(m).hex() for m in masks],
        "content_hash": example_hash(),
    }
    reference = example_reference()
    with_reference = {
        "note": "the same clip with a painted clean frame 1: after the mask digests, the line and its digest",
        "references_line": "references 1\n",
        "references": [{"index": 1, **_jsonable(reference)}],
        "reference_sha256": [item_digest(reference).hex()],
        "content_hash": example_hash_with_reference(),
    }
    return {"protocol": PROTOCOL_VERSION, "vectors": out, "content_hash": example,
            "content_hash_references": with_reference}


def expected_files() -> dict[str, bytes]:
    """File name -> exact bytes of everything in protocol/golden/ that this module owns."""
    vectors = build()
    files = {f"{vec.name}.{i}.bin": data for vec in vectors for i, data in enumerate(vec.frames)}
    files["vectors.json"] = (json.dumps(describe(vectors), indent=1, sort_keys=False) + "\n").encode("utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="create the golden files")
    parser.add_argument("--dir", type=Path, default=GOLDEN_DIR)
    args = parser.parse_args(argv)
    files = expected_files()
    if args.write:
        args.dir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write_bytes(args.dir / name, data)
        print(f"wrote {len(files)} files to {args.dir}")
        return 0
    bad = [n for n, d in files.items() if not (args.dir / n).is_file() or (args.dir / n).read_bytes() != d]
    for n in bad:
        print(f"differs: {n}", file=sys.stderr)
    print(f"{len(files) - len(bad)}/{len(files)} golden files match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
