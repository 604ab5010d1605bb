"""The paper's method as a library: arrays in, arrays out, no sockets, no files beyond an optional work directory.

Only the settings are imported eagerly: the daemon's request thread and the client check settings without
loading torch or OpenCV. `inpaint` and the trainer's types load the heavy side on first use (`validate` stays light).
"""
from vinpaint.errors import InputError, TrainingCancelled, VinpaintError

from .config import PRESETS, VARIANTS, InpaintConfig, make_config, working_size
from .result import InpaintResult, ProgressEvent

_HEAVY = {"inpaint": "api", "validate": "checks", "reached_step": "api", "branch_workdir": "api"}


def __getattr__(name: str):
    if name in _HEAVY:
        import importlib

        return getattr(importlib.import_module(f".{_HEAVY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["inpaint", "validate", "reached_step", "branch_workdir", "working_size", "InpaintResult", "InpaintConfig", "make_config", "PRESETS",
           "VARIANTS", "ProgressEvent", "InputError", "TrainingCancelled", "VinpaintError"]
