"""What the training process tells the daemon: one typed event per JSON line on a pipe.

The worker (worker.py) encodes, the trainer pool (pool.py) decodes; both use these classes, so a field is named
once. Decoding trusts nothing: a line that is not one of these events is dropped, and every number is made
finite and every text short before the daemon keeps it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Union

from vinpaint.engine.result import ProgressEvent

MAX_TEXT = 1000
MAX_PHASE = 64


Progress = ProgressEvent
"""The engine's own progress report, sent as it is."""


@dataclass
class Failed:
    """Training failed; `kind` is input, upload (a streaming job's items did not arrive in time), memory,
    disk_full or crash, `message` one sentence for the user."""

    kind: str = "crash"
    message: str = ""


@dataclass
class Done:
    """The results are written (complete.json last)."""


@dataclass
class Stopped:
    """Training stopped on request; its checkpoint is kept."""


WorkerEvent = Union[Progress, Failed, Done, Stopped]
_NAMES: dict[type, str] = {Progress: "progress", Failed: "error", Done: "done", Stopped: "stopped"}
_TYPES = {name: kind for kind, name in _NAMES.items()}


def encode(event: WorkerEvent) -> str:
    """An event -> one JSON line (with its newline)."""
    return json.dumps({"event": _NAMES[type(event)], **asdict(event)}, default=_plain) + "\n"


def decode(line: bytes | str) -> WorkerEvent | None:
    """One line -> its event, cleaned; None for anything that is not an event."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") not in _TYPES:
        return None
    kind = _TYPES[data["event"]]
    if kind is Progress:
        eta = data.get("eta_s")
        losses = data.get("losses")
        return Progress(
            phase=_text(data.get("phase"), MAX_PHASE), step=max(_number(data.get("step"), int), 0),
            total=max(_number(data.get("total"), int), 0), elapsed_s=max(_number(data.get("elapsed_s"), float), 0.0),
            eta_s=None if eta is None else _number(eta, float),
            losses={str(k)[:MAX_PHASE]: _number(v, float) for k, v in losses.items() if _finite(v)}
            if isinstance(losses, dict) else {},
            message=_text(data.get("message"), MAX_TEXT))
    if kind is Failed:
        return Failed(kind=_text(data.get("kind"), MAX_PHASE) or "crash", message=_text(data.get("message"), MAX_TEXT))
    return kind()


def _plain(value: Any) -> Any:
    """numpy scalars (a loss read back from the device) as the Python numbers JSON takes."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be sent as an event field")


def _finite(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _number(value: Any, kind: type) -> Any:
    return kind(value) if _finite(value) else kind(0)


def _text(value: Any, most: int) -> str:
    return ("" if value is None else str(value))[:most]
