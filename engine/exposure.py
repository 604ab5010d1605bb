"""Exposure that changes from frame to frame: a copy from another frame must arrive in this frame's light.

Propagation copies real pixels across frames. Where the light changes between them (a flickering lamp or
shutter, a camera's auto-exposure, a cloud over the sun), a copied pixel keeps the brightness of the frame it
came from, and the hole shows as a lighter or darker patch. On vtest + dogs-jump with every frame's gain drawn
from 0.75-1.25, the copies beat per-frame Telea by 0.92 dB instead of the 4.3 dB of the unflickered clip
(docs/evaluation.md, "Frames in other light").

Each frame's brightness is measured against its neighbour's on the known pixels that the completed flow links
(forward-backward checked, none near saturation): the median of the log ratio per channel, chained over the
clip. A clip whose brightness stays within EXPOSURE_SPREAD is left exactly as it was.

All arrays are NumPy; nothing here needs torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXPOSURE_SPREAD = 0.02
"""The least spread of a clip's log brightness (about 2 %) that is corrected. Below it the measurement's own noise
(about 0.1 % per pair of frames) would decide, and an evenly lit clip keeps exactly the copies it had."""

PER_PAIR = 20000
"""Pixels drawn per pair of neighbouring frames and direction (those in the hole are dropped)."""

USABLE = (0.04, 0.96)
"""Values (0-1) that count: clipped shadows and highlights do not scale with the light."""


@dataclass
class Exposure:
    """Each frame's brightness relative to the clip's first: log gain per channel."""

    log_gain: np.ndarray
    """float32 [T,3]."""

    def relit(self, colours: np.ndarray, source, target: int) -> np.ndarray:
        """Colours [N,3] copied from frame(s) `source` (an int or int array [N]) as they would look in frame
        `target`."""
        return colours * np.exp(self.log_gain[target] - self.log_gain[source]).astype(np.float32)

    def spread(self) -> float:
        return float((self.log_gain.max(axis=0) - self.log_gain.min(axis=0)).max())


def clip_exposure(frames: np.ndarray, holes: np.ndarray, flows, tolerance: float = 1.0, per_pair: int = PER_PAIR,
                  seed: int = 0, spread: float = EXPOSURE_SPREAD) -> Exposure | None:
    """The clip's Exposure, or None when its light is even (its spread below `spread`) or nothing could be
    measured. frames [T,H,W,3] any dtype, holes bool [T,H,W], flows an engine.propagate.NeighbourFlows (any size:
    it is sampled at the frames' coordinates)."""
    t_count = holes.shape[0]
    if t_count < 2:
        return None
    rng = np.random.default_rng(seed)
    steps = np.zeros((t_count - 1, 3), np.float32)
    for k in range(t_count - 1):
        # each way once: a pixel's own value against a bilinear sample of the other frame's is biased by how much
        # more noise the unsmoothed side keeps (grain of 12 levels: about 0.5 % a frame, 20 % over 40 frames);
        # measured both ways, the bias is the same and the change of light flips sign
        later = _log_ratio(frames, holes, flows, k, +1, tolerance, per_pair, rng)
        earlier = _log_ratio(frames, holes, flows, k, -1, tolerance, per_pair, rng)
        both = ~np.isnan(later) & ~np.isnan(earlier)
        steps[k] = np.where(both, (later - earlier) / 2, np.nan_to_num(later) - np.nan_to_num(earlier))
    exposure = Exposure(np.concatenate([np.zeros((1, 3), np.float32), np.cumsum(steps, axis=0)]))
    return exposure if exposure.spread() >= spread and exposure.spread() > 0 else None


def _log_ratio(frames: np.ndarray, holes: np.ndarray, flows, k: int, direction: int, tolerance: float,
               per_pair: int, rng: np.random.Generator) -> np.ndarray:
    """The median per channel of log(other frame / this frame) over known pixels of frame k (direction +1) or k+1
    (direction -1) that the flow links, forward-backward checked, to known pixels of the other; NaN where fewer
    than 100 pixels could be measured."""
    from .propagate import _corners_known, _sample  # one bilinear sampler for the whole stage

    here, there = (k, k + 1) if direction > 0 else (k + 1, k)
    h, w = holes.shape[1:]
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(frames.dtype, 1.0)
    out = np.full(3, np.nan, np.float32)
    ys, xs = rng.integers(0, h, per_pair), rng.integers(0, w, per_pair)  # not np.nonzero: 0.3 s a 4K frame
    known = ~holes[here][ys, xs]
    ys, xs = ys[known], xs[known]
    qx, qy, ok = flows.checked_step(direction, k, xs.astype(np.float32), ys.astype(np.float32), tolerance, (h, w))
    qx, qy = np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1)
    ok &= _corners_known(holes[there], qx, qy)
    if ok.sum() < 100:
        return out
    a = frames[here][ys[ok], xs[ok]].astype(np.float32) / full
    b = _sample(frames[there], qx[ok], qy[ok]).astype(np.float32) / full
    for c in range(3):
        usable = (a[:, c] > USABLE[0]) & (a[:, c] < USABLE[1]) & (b[:, c] > USABLE[0]) & (b[:, c] < USABLE[1])
        if usable.sum() >= 100:
            out[c] = np.median(np.log(b[usable, c]) - np.log(a[usable, c]))
    return out
