"""Body schemas of every v1 message (SPEC.md section 6): one checker per request and per reply.

Checkers return a normalised copy of the body (defaults filled in, ints given for floats turned into floats) or
raise ProtocolError with `bad_request` (`bad_buffer` for buffers) naming the field, so neither the daemon nor the
client ever touches a field whose type it has not checked.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from .codec import DTYPES, ID_RE, Message, ProtocolError

REQUEST_TYPES = ("hello", "job.open", "job.upload", "job.start", "job.status", "job.fetch", "job.history",
                 "job.cancel", "job.delete", "job.list")
STATES = ("uploading", "queued", "training", "done", "failed", "cancelled")
PHASES = ("", "flow", "setup", "train", "generate", "done", "window", "upload")
"""Known phases; a client accepts others (SPEC.md: for display)."""
KINDS = ("frame", "mask", "reference")
"""What `job.upload` stores; "reference" (a clean frame painted by the artist) only for the indices `job.open`
listed in `references`."""
LAYERS = ("frame", "matte")
"""What `job.fetch` returns: the result frame, or the matte of how each hole pixel was filled."""
FEATURES = ("references", "matte", "stream", "partial_results")
"""Optional parts of protocol 1 this codec knows; a daemon lists those it serves in `hello`'s `features`.
"stream": `job.start` with `stream: true` before every item is uploaded; "partial_results": `job.fetch` of a
frame as soon as it is written, in any state."""
CHANNELS = (3, 4)
JOB_RE = re.compile(r"[0-9a-f]{32}")
HASH_RE = re.compile(r"[0-9a-f]{64}")
SETTING_NAME_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_TEXT = 256
MAX_OVERRIDES = 64
MAX_MISSING_LISTED = 1000
HISTORY_POINTS = 2000
"""Rows of a `job.history` reply when the request names none."""
MAX_HISTORY_POINTS = 65535
"""The largest buffer dimension (SPEC.md section 2)."""
SETTINGS_KEYS = ("preset", "variant", "seed", "mask_dilation", "mask_feather", "overrides")


def is_job_id(value: Any) -> bool:
    """True for a well-formed job id (32 lowercase hex): the only strings that may name a job directory."""
    return isinstance(value, str) and JOB_RE.fullmatch(value) is not None


class Fields:
    """Typed access to one map of a message, raising ProtocolError that names the dotted field."""

    def __init__(self, data: dict[str, Any], prefix: str, ctx: dict[str, str], code: str = "bad_request") -> None:
        self.data, self.prefix, self.ctx, self.code = data, prefix, ctx, code

    def fail(self, key: str, what: str) -> ProtocolError:
        path = f"{self.prefix}.{key}"
        return ProtocolError(self.code, f"'{path}' {what}", field=path, **self.ctx)

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return None
        return self.data[key]

    def int(self, key: str, lo: int, hi: int, required: bool = True, default: int | None = None) -> int | None:
        v = self._get(key, required)
        if v is None:
            return default
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(key, f"must be an int, not {_wire_type(v)}")
        if not lo <= v <= hi:
            raise self.fail(key, f"must be from {lo} to {hi}, not {v}")
        return v

    def float(self, key: str, lo: float = -math.inf, hi: float = math.inf, required: bool = True,
              default: float | None = None) -> float | None:
        v = self._get(key, required)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(key, f"must be a float, not {_wire_type(v)}")
        v = float(v)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise self.fail(key, f"must be a finite number from {lo} to {hi}, not {v}")
        return v

    def str(self, key: str, required: bool = True, default: str | None = None, max_len: int = MAX_TEXT,
            choices: tuple[str, ...] = (), pattern: re.Pattern[str] | None = None,
            what: str = "") -> str | None:
        v = self._get(key, required)
        if v is None:
            return default
        if not isinstance(v, str):
            raise self.fail(key, f"must be a str, not {_wire_type(v)}")
        if choices and v not in choices:
            raise self.fail(key, f"must be one of {', '.join(repr(c) for c in choices)}, not {_short(v)}")
        if pattern is not None and not pattern.fullmatch(v):
            raise self.fail(key, f"must be {what}, not {_short(v)}")
        if len(v) > max_len:
            raise self.fail(key, f"must be at most {max_len} chars")
        return v

    def bool(self, key: str, required: bool = True, default: bool | None = None) -> bool | None:
        v = self._get(key, required)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(key, f"must be a bool, not {_wire_type(v)}")
        return v

    def map(self, key: str, required: bool = True) -> dict[str, Any]:
        v = self._get(key, required)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.fail(key, f"must be a map, not {_wire_type(v)}")
        return v

    def int_list(self, key: str, lo: int, hi: int, required: bool = True) -> list[int]:
        v = self._get(key, required)
        if v is None:
            return []
        if not isinstance(v, list) or any(not isinstance(x, int) or isinstance(x, bool) or not lo <= x <= hi
                                          for x in v):
            raise self.fail(key, f"must be an array of ints from {lo} to {hi}")
        return list(v)

    def str_list(self, key: str, required: bool = True) -> list[str]:
        v = self._get(key, required)
        if v is None:
            return []
        if not isinstance(v, list) or any(not isinstance(x, str) for x in v):
            raise self.fail(key, "must be an array of str")
        return list(v)

    def job(self, key: str = "job") -> str:
        return self.str(key, pattern=JOB_RE, what="a job id (32 lowercase hex chars)")  # type: ignore[return-value]

    def hash(self, key: str, required: bool = True) -> str | None:
        return self.str(key, required=required, pattern=HASH_RE, what="a SHA-256 in 64 lowercase hex chars")


def _wire_type(v: Any) -> str:
    from .codec import _wire_type as wt

    return wt(v)


def _short(v: str) -> str:
    return repr(v if len(v) <= 40 else v[:40] + "...")


def _ctx(msg: Message) -> dict[str, str]:
    return {"re": msg.id or msg.re, "type": msg.type}


def _buffers(msg: Message, count: int) -> None:
    if len(msg.specs) != count:
        raise ProtocolError("bad_buffer", f"{msg.type} carries {count} buffer(s), not {len(msg.specs)}",
                            field="buffers", **_ctx(msg))


# --- requests --------------------------------------------------------------------------------------------------

def check_settings(raw: dict[str, Any], ctx: dict[str, str]) -> dict[str, Any]:
    """`job.open`'s settings, strictly: unknown keys are refused so a typo never silently changes a result."""
    f = Fields(raw, "body.settings", ctx)
    for key in raw:
        if key not in SETTINGS_KEYS:
            raise f.fail(key, f"is not a setting; known settings: {', '.join(SETTINGS_KEYS)}")
    out: dict[str, Any] = {
        "preset": f.str("preset", required=False, default="fast", max_len=64),
        "variant": f.str("variant", required=False, default="dip-vid-flow", max_len=64),
        "seed": f.int("seed", 0, INT32_MAX, required=False, default=0),
    }
    for key in ("mask_dilation", "mask_feather"):
        value = f.int(key, 0, 512, required=False)
        if value is not None:
            out[key] = value
    overrides = f.map("overrides", required=False)
    if len(overrides) > MAX_OVERRIDES:
        raise f.fail("overrides", f"has {len(overrides)} entries; at most {MAX_OVERRIDES}")
    clean: dict[str, Any] = {}
    of = Fields(overrides, "body.settings.overrides", ctx)
    for name, value in overrides.items():
        if len(name) > 128 or not SETTING_NAME_RE.fullmatch(name):
            raise of.fail(name[:40], "is not a dotted setting name such as 'train.max_steps'")
        if isinstance(value, float) and not math.isfinite(value):
            raise of.fail(name, "must be finite")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise of.fail(name, f"must be at most {MAX_TEXT} chars")
        if not isinstance(value, (bool, int, float, str)):
            raise of.fail(name, f"must be an int, float, bool or str, not {_wire_type(value)}")
        clean[name] = value
    out["overrides"] = clean
    return out


def _hello(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {"client": f.str("client", required=False, default="")}


def _open(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {
        "frames": f.int("frames", 1, INT32_MAX),
        "width": f.int("width", 1, INT32_MAX),
        "height": f.int("height", 1, INT32_MAX),
        "channels": f.int("channels", 3, 4),
        "dtype": f.str("dtype", choices=tuple(DTYPES)),
        "mask_dtype": f.str("mask_dtype", choices=tuple(DTYPES)),
        "content_hash": f.hash("content_hash"),
        "settings": check_settings(f.map("settings", required=False), f.ctx),
        "name": f.str("name", required=False, default=""),
        "references": _references(f),
    }


def _references(f: Fields) -> list[int]:
    """`job.open`'s optional `references`: the frame indices that get a painted clean frame, ascending, each once,
    each below `frames`."""
    frames = f.data.get("frames")
    refs = f.int_list("references", 0, INT32_MAX, required=False)
    if any(b <= a for a, b in zip(refs, refs[1:])):
        raise f.fail("references", "must be ascending frame indices, each listed once")
    if refs and isinstance(frames, int) and refs[-1] >= frames:
        raise f.fail("references", f"must be frame indices from 0 to {frames - 1}, not {refs[-1]}")
    return refs


def _upload(msg: Message, f: Fields) -> dict[str, Any]:
    body = {"job": f.job(), "kind": f.str("kind", choices=KINDS), "index": f.int("index", 0, INT32_MAX),
            "digest": f.hash("digest", required=False)}
    _buffers(msg, 1)
    return body


def _job_only(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {"job": f.job()}


def _start(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {"job": f.job(), "stream": f.bool("stream", required=False, default=False)}


def _fetch(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {"job": f.job(), "index": f.int("index", 0, INT32_MAX),
            "layer": f.str("layer", required=False, default="frame", choices=LAYERS)}


def _history(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {"job": f.job(), "points": f.int("points", 2, MAX_HISTORY_POINTS, required=False, default=HISTORY_POINTS)}


def _list(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 0)
    return {}


REQUESTS: dict[str, Callable[[Message, Fields], dict[str, Any]]] = {
    "hello": _hello, "job.open": _open, "job.upload": _upload, "job.start": _start, "job.status": _job_only,
    "job.fetch": _fetch, "job.history": _history, "job.cancel": _job_only, "job.delete": _job_only,
    "job.list": _list,
}


def check_request(msg: Message) -> dict[str, Any]:
    """The normalised body of a decoded request (SPEC.md section 4 steps 5-6)."""
    checker = REQUESTS.get(msg.type)
    if checker is None:
        raise ProtocolError("unknown_type", f"unknown message type {_short(msg.type)}; this daemon knows "
                            f"{', '.join(REQUEST_TYPES)}", field="type", **_ctx(msg))
    return checker(msg, Fields(msg.body, "body", _ctx(msg)))


# --- replies (what a client checks before believing a daemon) --------------------------------------------------

def _r_hello(msg: Message, f: Fields) -> dict[str, Any]:
    limits = Fields(f.map("limits"), "body.limits", f.ctx)
    return {
        "protocol": f.int("protocol", 0, INT32_MAX),
        "server": f.str("server"),
        "devices": f.str_list("devices"),
        "presets": f.str_list("presets"),
        "variants": f.str_list("variants"),
        "limits": {k: limits.int(k, 0, INT64_MAX) for k in
                   ("max_message_bytes", "max_header_bytes", "max_frames", "max_width", "max_height")},
        "features": f.str_list("features", required=False),
    }


def _r_open(msg: Message, f: Fields) -> dict[str, Any]:
    return {"job": f.job(), "created": f.bool("created"), "state": f.str("state", choices=STATES),
            "have_frames": f.int_list("have_frames", 0, INT32_MAX),
            "have_masks": f.int_list("have_masks", 0, INT32_MAX),
            "have_references": f.int_list("have_references", 0, INT32_MAX, required=False),
            "windows": f.int("windows", 1, INT32_MAX, required=False)}


def _r_upload(msg: Message, f: Fields) -> dict[str, Any]:
    return {"job": f.job(), "kind": f.str("kind", choices=KINDS), "index": f.int("index", 0, INT32_MAX),
            "stored": f.bool("stored"), "missing_frames": f.int("missing_frames", 0, INT32_MAX),
            "missing_masks": f.int("missing_masks", 0, INT32_MAX),
            "missing_references": f.int("missing_references", 0, INT32_MAX, required=False, default=0)}


def _r_start(msg: Message, f: Fields) -> dict[str, Any]:
    return {"job": f.job(), "state": f.str("state", choices=STATES),
            "position": f.int("position", 0, INT32_MAX, required=False),
            "stream": f.bool("stream", required=False, default=False)}


def _r_status(msg: Message, f: Fields) -> dict[str, Any]:
    losses_raw = f.map("losses")
    lf = Fields(losses_raw, "body.losses", f.ctx)
    return {
        "job": f.job(), "state": f.str("state", choices=STATES), "progress": f.float("progress", 0.0, 1.0),
        "phase": f.str("phase", max_len=64), "step": f.int("step", 0, INT64_MAX),
        "total": f.int("total", 0, INT64_MAX), "elapsed_s": f.float("elapsed_s", 0.0),
        "eta_s": f.float("eta_s", 0.0, required=False), "losses": {k: lf.float(k) for k in losses_raw},
        "message": f.str("message", max_len=4096), "error": f.str("error", required=False, max_len=4096),
        "position": f.int("position", 0, INT32_MAX, required=False),
        "frames": f.int("frames", 1, INT32_MAX), "width": f.int("width", 1, INT32_MAX),
        "height": f.int("height", 1, INT32_MAX), "channels": f.int("channels", 3, 4),
        "dtype": f.str("dtype", choices=tuple(DTYPES)), "mask_dtype": f.str("mask_dtype", choices=tuple(DTYPES)),
        "missing_frames": f.int("missing_frames", 0, INT32_MAX),
        "missing_masks": f.int("missing_masks", 0, INT32_MAX),
        "missing_references": f.int("missing_references", 0, INT32_MAX, required=False, default=0),
        "frames_done": f.int("frames_done", 0, INT32_MAX, required=False),
        "name": f.str("name"), "created": f.float("created"), "updated": f.float("updated"),
    }


def _r_fetch(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 1)
    return {"job": f.job(), "index": f.int("index", 0, INT32_MAX),
            "layer": f.str("layer", required=False, default="frame", choices=LAYERS)}


def _r_history(msg: Message, f: Fields) -> dict[str, Any]:
    _buffers(msg, 1)
    terms = f.str_list("terms")
    spec = msg.specs[0]
    if spec.dtype != "f4" or len(spec.shape) != 2 or spec.shape[1] != len(terms) + 1:
        raise ProtocolError("bad_buffer", f"a job.history buffer must be f4 [rows, {len(terms) + 1}] (step and "
                            f"one column per term), not {spec.dtype} {list(spec.shape)}", field="buffers",
                            **_ctx(msg))
    return {"job": f.job(), "terms": terms, "steps": f.int("steps", 0, INT64_MAX)}


def _r_cancel(msg: Message, f: Fields) -> dict[str, Any]:
    return {"job": f.job(), "state": f.str("state", choices=STATES)}


def _r_delete(msg: Message, f: Fields) -> dict[str, Any]:
    return {"job": f.job(), "deleted": f.bool("deleted")}


def _r_list(msg: Message, f: Fields) -> dict[str, Any]:
    raw = f._get("jobs", True)
    if not isinstance(raw, list):
        raise f.fail("jobs", "must be an array of maps")
    jobs = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise f.fail(f"jobs[{i}]", "must be a map")
        g = Fields(item, f"body.jobs[{i}]", f.ctx)
        jobs.append({"job": g.job(), "state": g.str("state", choices=STATES), "name": g.str("name"),
                     "progress": g.float("progress", 0.0, 1.0), "frames": g.int("frames", 1, INT32_MAX),
                     "width": g.int("width", 1, INT32_MAX), "height": g.int("height", 1, INT32_MAX),
                     "created": g.float("created"), "updated": g.float("updated")})
    return {"jobs": jobs}


REPLIES: dict[str, Callable[[Message, Fields], dict[str, Any]]] = {
    "hello": _r_hello, "job.open": _r_open, "job.upload": _r_upload, "job.start": _r_start,
    "job.status": _r_status, "job.fetch": _r_fetch, "job.history": _r_history, "job.cancel": _r_cancel,
    "job.delete": _r_delete, "job.list": _r_list,
}


def check_reply(msg: Message) -> dict[str, Any]:
    """The normalised body of an "ok" reply; error replies are returned as their body unchanged."""
    if msg.status == "error":
        return dict(msg.body)
    checker = REPLIES.get(msg.type)
    if checker is None:
        raise ProtocolError("malformed", f"a reply of unknown type {_short(msg.type)}", field="type")
    return checker(msg, Fields(msg.body, "body", {"re": msg.re, "type": msg.type}, code="malformed"))


__all__ = ["REQUEST_TYPES", "STATES", "PHASES", "KINDS", "LAYERS", "FEATURES", "JOB_RE", "HASH_RE", "ID_RE", "Fields", "check_request",
           "check_reply", "check_settings", "is_job_id"]
