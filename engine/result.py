"""What the engine hands back: the result of `inpaint()` and the meaning of its history columns and matte values.

Light (numpy only), so the command line, the daemon and evaluation can read results without loading torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import InpaintConfig

@dataclass
class ProgressEvent:
    """What long work reports: the CLI draws a bar from it, the daemon forwards it over the wire."""

    phase: str = ""
    """flow, setup, train, generate or done."""
    step: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    message: str = ""


HISTORY_TERMS = ("total", "recon", "flow", "consistency", "perceptual")
"""Columns 1.. of the loss history (column 0 is the step); a term the settings switch off stays 0."""
PROPAGATED, GENERATED = 1, 2
"""Matte values inside the hole (0 is outside it): which pixels came from another frame, which from the model."""


@dataclass
class InpaintResult:
    frames: np.ndarray
    """[T,H,W,3] in the input dtype; outside `hole` bit-identical to the input."""
    generated: np.ndarray
    """float32 [T,h,w,3]: the raw network output at working resolution (the paper's metrics use these)."""
    hole: np.ndarray
    """bool [T,H,W]: the dilated hole that was filled."""
    flows: np.ndarray | None
    """float32 [T,6,h,w,2] generated flows in working pixels (offsets config.FLOW_OFFSETS), or None."""
    config: InpaintConfig
    seconds: float
    steps: int
    history: np.ndarray = field(default_factory=lambda: np.zeros((0, 1 + len(HISTORY_TERMS)), np.float32))
    """[S,6]: the step, then the HISTORY_TERMS losses of every training step."""
    notices: list[str] = field(default_factory=list)
    matte: np.ndarray | None = None
    """uint8 [T,H,W]: 0 outside the hole, 1 where real pixels were propagated from another frame, 2 where the
    model generated them (PROPAGATED / GENERATED)."""
