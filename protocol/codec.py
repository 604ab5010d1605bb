"""The reference codec of protocol v1 (SPEC.md): multipart frames <-> validated messages.

Frame 0 is a msgpack map (the envelope); frames 1.. are raw little-endian pixel buffers described by the header's
`buffers`. Decoding checks everything the envelope promises (types, sizes, byte lengths) so the layers above only
ever see well-formed messages; the body of each type is checked by `messages.py`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
"""The version this codec speaks; SPEC.md's title says the same (a test holds them equal)."""

DTYPES: dict[str, np.dtype] = {"u1": np.dtype("<u1"), "u2": np.dtype("<u2"), "f4": np.dtype("<f4")}
"""Wire dtype names -> numpy dtypes (always little-endian)."""

MAX_HEADER_BYTES = 64 * 1024
"""Largest request header (frame 0)."""
MAX_REPLY_HEADER_BYTES = 16 * 1024 * 1024
"""Largest reply header a client accepts (a long job.list)."""
MAX_BUFFERS = 4
"""Most pixel frames one message may carry (v1 uses at most one)."""
MAX_PARTS = 1 + MAX_BUFFERS
"""Most ZeroMQ parts one request may have: its header and MAX_BUFFERS buffers."""
MAX_DIM = 65535
"""Largest entry of a buffer shape."""
MAX_DEPTH = 16
"""Deepest nesting of arrays and maps a header may have (v1's deepest is 4: body.settings.overrides.<name>); a
deeper one is `malformed` before anything walks it."""
MAX_ID_LEN = 64
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
STATUSES = ("ok", "error")


class ProtocolError(Exception):
    """A message that breaks the spec. `code` is one of SPEC.md section 7; `re`/`type` say what it answered."""

    def __init__(self, code: str, message: str, *, field: str | None = None, body: dict | None = None,
                 re: str = "", type: str = "error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.body = body or {}
        self.re = re
        self.type = type

    def to_error(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            err["field"] = self.field
        return err


@dataclass(frozen=True)
class BufferSpec:
    """One entry of the header's `buffers`: what a pixel frame holds."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize

    def to_wire(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass
class Message:
    """A decoded request or reply. `buffers` are zero-copy views of frames 1..n, matching `specs`."""

    type: str
    body: dict[str, Any]
    id: str = ""
    re: str = ""
    status: str = ""
    error: dict[str, Any] | None = None
    specs: list[BufferSpec] = field(default_factory=list)
    buffers: list[memoryview] = field(default_factory=list)
    v: int = PROTOCOL_VERSION

    @property
    def is_reply(self) -> bool:
        return bool(self.status)

    def array(self, i: int = 0) -> np.ndarray:
        """Buffer i as a read-only numpy array of its declared dtype and shape (no copy)."""
        spec = self.specs[i]
        arr = np.frombuffer(self.buffers[i], dtype=DTYPES[spec.dtype]).reshape(spec.shape)
        return arr


# --- encoding --------------------------------------------------------------------------------------------------

def wire_array(arr: np.ndarray) -> tuple[BufferSpec, memoryview]:
    """A numpy array as (descriptor, little-endian C-order bytes) ready to send; copies only when it must."""
    arr = np.asarray(arr)
    name = _dtype_name(arr.dtype)
    if name is None:
        raise ProtocolError("bad_buffer", f"arrays of dtype {arr.dtype} cannot be sent; use uint8, uint16 or float32")
    if not 1 <= arr.ndim <= 4 or any(not 1 <= d <= MAX_DIM for d in arr.shape):
        raise ProtocolError("bad_buffer", f"array shape {arr.shape} cannot be sent (1-4 dims, each 1..{MAX_DIM})")
    arr = np.ascontiguousarray(arr, dtype=DTYPES[name])
    return BufferSpec(name, tuple(int(d) for d in arr.shape)), memoryview(arr).cast("B")


def _dtype_name(dt: np.dtype) -> str | None:
    for name, want in DTYPES.items():
        if dt.kind == want.kind and dt.itemsize == want.itemsize:
            return name
    return None


def _pack(header: dict[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


def encode_request(type: str, id: str, body: dict[str, Any] | None = None,
                   arrays: Sequence[np.ndarray] = ()) -> list[Any]:
    """Frames for a request: [header, buffer...]. Field order follows SPEC.md (so golden bytes reproduce)."""
    header: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": type, "id": id, "body": dict(body or {})}
    return _with_buffers(header, arrays)


def encode_reply(type: str, re: str, body: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = (),
                 error: dict[str, Any] | None = None) -> list[Any]:
    """Frames for a reply; `error` given means status "error"."""
    header: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": type, "re": re,
                              "status": "error" if error else "ok"}
    if error:
        header["error"] = dict(error)
    header["body"] = dict(body or {})
    return _with_buffers(header, arrays)


def encode_error(exc: ProtocolError) -> list[Any]:
    """The error reply for a ProtocolError raised while handling a request."""
    return encode_reply(exc.type or "error", exc.re, exc.body, error=exc.to_error())


def _with_buffers(header: dict[str, Any], arrays: Sequence[np.ndarray]) -> list[Any]:
    frames: list[Any] = []
    if arrays:
        specs = []
        for arr in arrays:
            spec, data = wire_array(arr)
            specs.append(spec.to_wire())
            frames.append(data)
        header["buffers"] = specs
    return [_pack(_drop_none(header))] + frames


def _drop_none(obj: Any) -> Any:
    """Senders omit fields without a value (SPEC.md section 3)."""
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_drop_none(v) for v in obj]
    return obj


# --- decoding --------------------------------------------------------------------------------------------------

def unpack_header(data: bytes | memoryview, max_bytes: int) -> dict[str, Any]:
    """Frame 0 -> a dict with str keys and nils dropped; ProtocolError('malformed' | 'too_large') otherwise."""
    size = len(data)
    if size > max_bytes:
        raise ProtocolError("too_large", f"the header is {size} bytes; at most {max_bytes} are accepted",
                            field="header")
    try:
        obj = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, use_list=True,
                              max_bin_len=0, max_ext_len=0, max_str_len=size, max_array_len=size,
                              max_map_len=size, ext_hook=_refuse_ext)
    except msgpack.ExtraData:
        raise ProtocolError("malformed", "the header has bytes after its msgpack map", field="header") from None
    except Exception as exc:  # the unpacker raises several types for broken input; all mean the same here
        raise ProtocolError("malformed", f"the header is not valid msgpack ({_why(exc)})", field="header") from None
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"the header is a msgpack {_wire_type(obj)}, not a map", field="header")
    if _too_deep(obj):
        raise ProtocolError("malformed", f"the header nests arrays and maps more than {MAX_DEPTH} deep",
                            field="header")
    if _find_bin(obj):
        raise ProtocolError("malformed", "the header contains binary data or a non-str map key; only str, int, "
                            "float, bool, array and map are allowed", field="header")
    return _drop_none(obj)


def _too_deep(obj: Any) -> bool:
    """True when arrays and maps nest deeper than MAX_DEPTH (checked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        cur, depth = stack.pop()
        if isinstance(cur, (dict, list)):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in (cur.values() if isinstance(cur, dict) else cur))
    return False


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} is not allowed")


def _find_bin(obj: Any) -> bool:
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, (bytes, bytearray)):
            return True
        if isinstance(cur, dict):
            if any(not isinstance(k, str) for k in cur):
                return True
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


def _why(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:120]


def _wire_type(obj: Any) -> str:
    if isinstance(obj, bool):
        return "bool"
    if isinstance(obj, int):
        return "int"
    if isinstance(obj, float):
        return "float"
    if isinstance(obj, str):
        return "str"
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, dict):
        return "map"
    if obj is None:
        return "nil"
    return type(obj).__name__


def decode_request(frames: Sequence[bytes | memoryview | Any], max_header_bytes: int = MAX_HEADER_BYTES,
                   parts: int | None = None) -> Message:
    """Validate a request's envelope and buffers (SPEC.md section 4 steps 1-4); the body is checked later.
    `parts`: the message's part count where the caller kept only its first MAX_PARTS (the daemon drops the rest
    as it receives them). The count is checked before any buffer is looked at: a message of millions of empty
    parts costs one view, not one each."""
    if not frames:
        raise ProtocolError("malformed", "the message has no frames", field="header")
    header = unpack_header(_view(frames[0]), max_header_bytes)
    _check_version(header)
    type_ = header.get("type")
    id_ = header.get("id")
    re_ = id_ if isinstance(id_, str) and ID_RE.fullmatch(id_) else ""
    tname = type_ if isinstance(type_, str) and 0 < len(type_) <= 64 else "error"
    ctx = {"re": re_, "type": tname}
    count = max(len(frames), parts or 0)
    if count > MAX_PARTS:
        raise ProtocolError("too_large", f"the message has {count} parts; at most {MAX_PARTS} are accepted (a "
                            f"header and up to {MAX_BUFFERS} buffers)", field="buffers", **ctx)
    if not isinstance(type_, str) or not type_ or len(type_) > 64:
        raise ProtocolError("malformed", "the header's 'type' must be a str of 1 to 64 chars", field="type", **ctx)
    if not isinstance(id_, str) or not ID_RE.fullmatch(id_):
        raise ProtocolError("malformed", "the header's 'id' must be a str of 1 to 64 chars from A-Z a-z 0-9 . _ : -",
                            field="id", **ctx)
    body = header.get("body", {})
    if not isinstance(body, dict):
        raise ProtocolError("malformed", f"the header's 'body' must be a map, not a {_wire_type(body)}",
                            field="body", **ctx)
    specs = _decode_specs(header, ctx)
    buffers = _match_buffers(specs, [_view(f) for f in frames[1:]], ctx)
    return Message(type=type_, body=body, id=id_, specs=specs, buffers=buffers)


def decode_reply(frames: Sequence[bytes | memoryview | Any],
                 max_header_bytes: int = MAX_REPLY_HEADER_BYTES) -> Message:
    """Validate a reply's envelope and buffers; a reply with status "error" keeps its error map."""
    frames = [_view(f) for f in frames]
    if not frames:
        raise ProtocolError("malformed", "the reply has no frames", field="header")
    header = unpack_header(frames[0], max_header_bytes)
    _check_version(header, reply=True)
    type_, re_, status = header.get("type"), header.get("re"), header.get("status")
    if not isinstance(type_, str) or not type_:
        raise ProtocolError("malformed", "the reply's 'type' must be a non-empty str", field="type")
    if not isinstance(re_, str):
        raise ProtocolError("malformed", "the reply's 're' must be a str", field="re")
    if status not in STATUSES:
        raise ProtocolError("malformed", "the reply's 'status' must be \"ok\" or \"error\"", field="status")
    body = header.get("body", {})
    if not isinstance(body, dict):
        raise ProtocolError("malformed", "the reply's 'body' must be a map", field="body")
    error = header.get("error")
    if status == "error":
        if (not isinstance(error, dict) or not isinstance(error.get("code"), str)
                or not isinstance(error.get("message"), str)):
            raise ProtocolError("malformed", "an error reply needs 'error' with str 'code' and 'message'",
                                field="error")
        if "field" in error and not isinstance(error["field"], str):
            raise ProtocolError("malformed", "the reply's 'error.field' must be a str", field="error.field")
    else:
        error = None
    ctx = {"re": re_, "type": type_}
    specs = _decode_specs(header, ctx)
    buffers = _match_buffers(specs, frames[1:], ctx)
    return Message(type=type_, body=body, re=re_, status=status, error=error, specs=specs, buffers=buffers)


def _view(frame: Any) -> memoryview:
    """Accept bytes, memoryview or a pyzmq Frame (which exposes .buffer)."""
    if isinstance(frame, memoryview):
        return frame.cast("B") if frame.format != "B" or frame.ndim != 1 else frame
    if isinstance(frame, (bytes, bytearray)):
        return memoryview(frame)
    buf = getattr(frame, "buffer", None)
    if buf is not None:
        return _view(buf)
    return memoryview(bytes(frame))


def _check_version(header: dict[str, Any], reply: bool = False) -> None:
    v = header.get("v")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError("malformed", "the header has no int 'v' (protocol version)", field="v")
    if v != PROTOCOL_VERSION:
        re_ = header.get("re" if reply else "id")
        type_ = header.get("type")
        who = "daemon" if reply else "client"
        other = "client" if reply else "daemon"
        raise ProtocolError(
            "version_mismatch",
            f"{who} speaks protocol version {v}; this {other} speaks version {PROTOCOL_VERSION}",
            field="v", body={"supported": [PROTOCOL_VERSION]},
            re=re_ if isinstance(re_, str) and ID_RE.fullmatch(re_) else "",
            type=type_ if isinstance(type_, str) and 0 < len(type_) <= 64 else "error")


def _decode_specs(header: dict[str, Any], ctx: dict[str, str]) -> list[BufferSpec]:
    raw = header.get("buffers", [])
    if not isinstance(raw, list):
        raise ProtocolError("malformed", "the header's 'buffers' must be an array", field="buffers", **ctx)
    if len(raw) > MAX_BUFFERS:
        raise ProtocolError("too_large", f"the header describes {len(raw)} buffers; at most {MAX_BUFFERS} are allowed",
                            field="buffers", **ctx)
    specs = []
    for i, d in enumerate(raw):
        where = f"buffers[{i}]"
        if not isinstance(d, dict):
            raise ProtocolError("bad_buffer", f"{where} must be a map with 'dtype' and 'shape'", field=where, **ctx)
        dtype, shape = d.get("dtype"), d.get("shape")
        if dtype not in DTYPES:
            raise ProtocolError("bad_buffer", f"{where}.dtype must be \"u1\", \"u2\" or \"f4\", not {dtype!r}",
                                field=f"{where}.dtype", **ctx)
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 4
                or any(not _is_int(s) or not 1 <= s <= MAX_DIM for s in shape)):
            raise ProtocolError("bad_buffer", f"{where}.shape must be 1 to 4 ints from 1 to {MAX_DIM}",
                                field=f"{where}.shape", **ctx)
        specs.append(BufferSpec(dtype, tuple(shape)))
    return specs


def _match_buffers(specs: list[BufferSpec], frames: list[memoryview], ctx: dict[str, str]) -> list[memoryview]:
    if len(frames) != len(specs):
        raise ProtocolError("bad_buffer", f"the header describes {len(specs)} buffer(s) but {len(frames)} "
                            f"pixel frame(s) follow it", field="buffers", **ctx)
    for i, (spec, data) in enumerate(zip(specs, frames)):
        if len(data) != spec.nbytes:
            raise ProtocolError("bad_buffer", f"buffer {i} has {len(data)} bytes; dtype {spec.dtype} shape "
                                f"{list(spec.shape)} needs {spec.nbytes}", field=f"buffers[{i}]", **ctx)
    return frames


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
