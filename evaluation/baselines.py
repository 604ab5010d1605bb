"""Classical baselines a user could pick instead: OpenCV's frame-wise inpainting (Telea 2004, Navier-Stokes 2001).

They see each frame alone, so they have no temporal consistency by construction; they cost milliseconds, which
is what the internal-learning variants have to beat.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from vinpaint.errors import InputError
from vinpaint.engine.composite import composite, dilate_holes
from vinpaint.engine.config import PropagationConfig
from vinpaint.engine.flow import DISFlow
from vinpaint.engine.propagate import propagate_clip

BASELINES = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS, "prop-telea": cv2.INPAINT_TELEA}
"""Baseline name -> OpenCV flag. 'prop-telea' first propagates real pixels from other frames along completed
flow (the engine's propagation stage as `fast` runs it, PROP_TELEA) and lets Telea fill only what no frame sees:
the propagation stage's worth without any training."""

PROP_TELEA = PropagationConfig(local_errors=True, calibrate_completed=True, exposure=True,
                               diffusion="membrane+biharmonic")
"""prop-telea's propagation: the settings of `fast` that decide the propagated pixels (the rest of fast's only
matter to a trained model or to the steady fill, which this baseline has neither of)."""


@dataclass
class BaselineResult:
    """Same shape as the engine's result where it matters: composited frames uint8, the hole used, seconds."""

    frames: np.ndarray
    hole: np.ndarray
    seconds: float
    """Wall seconds."""
    cpu_seconds: float = 0.0
    """CPU seconds of this process (all its threads): what the fill cost when other jobs share the cores."""


def dilate(masks: np.ndarray, pixels: int) -> np.ndarray:
    """Grow bool masks [T,H,W] by `pixels` exactly as the engine does before filling (its disc), so a baseline
    fills the engine's hole (before, 2026-12-01: a square, a larger hole than the engine's)."""
    if pixels <= 0:
        return masks.copy()
    return dilate_holes(masks.astype(bool), pixels)


def opencv_inpaint(frames: np.ndarray, masks: np.ndarray, method: str = "telea", radius: int = 5,
                   dilation: int = 0) -> BaselineResult:
    """Fill each frame [T,H,W,3] uint8 inside masks [T,H,W] with cv2.inpaint; pixels outside are untouched."""
    if method not in BASELINES:
        raise InputError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}.")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise InputError(f"baseline frames must be uint8 [T,H,W,3], not {frames.dtype} {frames.shape}.")
    if masks.shape != frames.shape[:3]:
        raise InputError(f"the masks' shape {masks.shape} does not match the frames' {frames.shape[:3]}.")
    start, cpu_start = time.perf_counter(), time.process_time()
    hole = dilate(masks.astype(bool), dilation)
    out, left = frames.copy(), hole
    if method == "prop-telea":
        out, left = _propagated(frames, hole)
    for i in range(len(frames)):
        if left[i].any():
            filled = cv2.inpaint(out[i], left[i].astype(np.uint8) * 255, radius, BASELINES[method])
            out[i][left[i]] = filled[left[i]]
    return BaselineResult(out, hole, time.perf_counter() - start, time.process_time() - cpu_start)


def _propagated(frames: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames with the engine's propagated pixels in the hole, and the part of the hole no frame sees."""
    result = propagate_clip(frames, hole, PROP_TELEA, DISFlow("medium"))
    out, _ = composite(frames, None, hole, 0, result, seam=0)
    return out, hole & ~result.reached
