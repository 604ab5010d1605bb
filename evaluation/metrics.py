"""The paper's metrics (section 4.1): reconstruction PSNR/SSIM, patch-based temporal consistency, and FID.

Images are compared in [0, 1] whatever their dtype. PSNR is capped at `PSNR_CAP_DB` so that a perfect frame
(infinite PSNR) cannot turn a video average into infinity. SSIM is scikit-image's, with the settings of
Wang et al. 2004 (Gaussian window, sigma 1.5, population covariance), rather than a home-made one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from vinpaint.engine.composite import box_around
from vinpaint.errors import InputError

PSNR_CAP_DB = 100.0
"""Upper bound for PSNR: identical images score this instead of infinity."""


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float (0..1) -> float64 in [0, 1]; metrics must not depend on the storage type."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float64)
    raise InputError(f"images must be uint8, uint16 or float, not {a.dtype}.")


def _check_pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> None:
    if a.shape != b.shape:
        raise InputError(f"cannot compare images of shapes {a.shape} and {b.shape}.")
    if mask is not None and mask.shape != a.shape[: mask.ndim]:
        raise InputError(f"the mask's shape {mask.shape} does not match the images' {a.shape}.")


def mse_to_psnr(mse: float) -> float:
    """Mean squared error of [0,1] images -> PSNR in dB, capped at PSNR_CAP_DB."""
    if mse <= 10.0 ** (-PSNR_CAP_DB / 10.0):
        return PSNR_CAP_DB
    return float(-10.0 * np.log10(mse))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR of one frame [H,W,C]; with a bool mask [H,W], only the masked pixels count (NaN if none)."""
    a, b = np.asarray(a), np.asarray(b)
    _check_pair(a, b, mask)
    if mask is None:
        return mse_to_psnr(float(((to_unit(a) - to_unit(b)) ** 2).mean()))
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return float("nan")
    return mse_to_psnr(float(((to_unit(a[m]) - to_unit(b[m])) ** 2).mean()))  # the hole's pixels only in float64


def hole_psnr(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR in dB pooled over the hole pixels of a whole clip: [T,H,W,C] vs [T,H,W,C] (same dtype) with bool
    [T,H,W]. One mean squared error over all of them, uncapped (inf when equal): the single number the demo, the
    benchmarks and the end-to-end tests report, where `video_scores` gives the paper's per-frame mean."""
    a, b = np.asarray(result), np.asarray(truth)
    _check_pair(a, b, hole)
    diff = to_unit(a[hole]) - to_unit(b[hole])  # a 4K clip in float64 would be 8 GB per copy
    if diff.size == 0:
        raise ValueError("the hole is empty")
    mse = float(np.mean(diff ** 2))
    return float("inf") if mse == 0 else float(-10.0 * np.log10(mse))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM of one frame [H,W,C] (scikit-image); with a mask [H,W], the SSIM map averaged over masked pixels."""
    from skimage.metrics import structural_similarity  # SciPy underneath: loaded by the first score, not the CLI

    a, b = np.asarray(a), np.asarray(b)
    _check_pair(a, b, mask)
    channel_axis = -1 if a.ndim == 3 else None
    if min(a.shape[:2]) < 2 * SSIM_REACH + 1:  # scikit-image's Gaussian window (sigma 1.5) is 11 pixels wide
        raise InputError(f"images of {a.shape[1]}x{a.shape[0]} pixels are too small for SSIM "
                         f"({2 * SSIM_REACH + 1} at least).")
    kwargs = dict(data_range=1.0, channel_axis=channel_axis, gaussian_weights=True, sigma=1.5,
                  use_sample_covariance=False)
    if mask is None:
        return float(structural_similarity(to_unit(a), to_unit(b), **kwargs))
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return float("nan")
    box = _within_reach(m)
    _, smap = structural_similarity(to_unit(a[box]), to_unit(b[box]), full=True, **kwargs)
    if smap.ndim == 3:
        smap = smap.mean(axis=2)
    return float(smap[m[box]].mean())


SSIM_REACH = 5
"""Pixels either side that one SSIM value depends on: the radius of scikit-image's Gaussian window at sigma 1.5
(truncated at 3.5 sigma), 11 pixels across."""


def _within_reach(mask: np.ndarray) -> tuple[slice, slice]:
    """The mask's bounding box grown by SSIM_REACH: the SSIM map inside it is the whole frame's on every masked
    pixel, at a fraction of the cost when the hole is small in a large frame (a 4K plate)."""
    y0, y1, x0, x1 = box_around(mask, SSIM_REACH)
    span = 2 * SSIM_REACH + 1
    box = []
    for lo, hi, size in ((y0, y1, mask.shape[0]), (x0, x1, mask.shape[1])):
        if hi - lo < span:  # scikit-image wants the whole window inside the image: widen (or take it all)
            lo, hi = max(0, min(lo, size - span)), min(size, max(hi, span))
        box.append(slice(lo, hi))
    return box[0], box[1]


@dataclass
class FrameScores:
    """Per-frame scores of one video against its truth; arrays of length T (NaN where a frame has no hole)."""

    psnr: np.ndarray
    ssim: np.ndarray
    psnr_hole: np.ndarray
    ssim_hole: np.ndarray

    def means(self) -> dict[str, float]:
        """Per-video averages of the per-frame values, as the paper accumulates them."""
        return {name: _nanmean(getattr(self, name)) for name in ("psnr", "ssim", "psnr_hole", "ssim_hole")}


def _nanmean(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def video_scores(output: np.ndarray, truth: np.ndarray, hole: np.ndarray, whole_frame: bool = True) -> FrameScores:
    """Reconstruction accuracy of a video [T,H,W,3] against its truth: full frame and inside the hole [T,H,W].
    whole_frame=False leaves the full-frame scores NaN, for a benchmark that reads only the hole's on large plates
    (a full-frame SSIM of a 4K frame takes seconds)."""
    if output.shape != truth.shape or output.ndim != 4:
        raise InputError(f"output {output.shape} and truth {truth.shape} must both be [T,H,W,3] of one shape.")
    if hole.shape != output.shape[:3]:
        raise InputError(f"the hole's shape {hole.shape} does not match the video's {output.shape[:3]}.")
    t = output.shape[0]
    scores = FrameScores(*(np.full(t, np.nan) for _ in range(4)))
    for i in range(t):
        if whole_frame:
            scores.psnr[i] = psnr(output[i], truth[i])
            scores.ssim[i] = ssim(output[i], truth[i])
        scores.psnr_hole[i] = psnr(output[i], truth[i], hole[i])
        scores.ssim_hole[i] = ssim(output[i], truth[i], hole[i])
    return scores


@dataclass
class ConsistencyConfig:
    """Temporal consistency after Gupta et al. 2017, as the paper's section 4.1 uses it."""

    patch: int = 50
    """Side of the square patches, in pixels (clamped to the frame when the frame is smaller)."""
    radius: int = 20
    """The best match at t+1 is searched within +-radius pixels of the patch's position at t."""
    patches_per_frame: int = 20
    """Patches sampled per frame, centred on hole pixels; fewer when the hole is smaller."""
    seed: int = 0
    """Seed of the patch sampling, so the metric is reproducible."""


def temporal_consistency(video: np.ndarray, hole: np.ndarray,
                         config: ConsistencyConfig | None = None) -> tuple[float, float]:
    """Mean PSNR and SSIM between hole patches at t and their best PSNR match within +-radius px at t+1.

    Patches are centred on hole pixels of frame t (sampled with a fixed seed) and shifted to lie inside the frame.
    The SSIM version scores the same best-PSNR match with SSIM (a second search by SSIM would be 1681 SSIM calls
    per patch). Returns (NaN, NaN) when no frame before the last has a hole.
    """
    cfg = config or ConsistencyConfig()
    video = np.asarray(video)
    if video.ndim != 4 or hole.shape != video.shape[:3]:
        raise InputError(f"the video must be [T,H,W,3] with a hole [T,H,W]; got {video.shape} and {hole.shape}.")
    # frames converted as the patches ask for them, the last two kept: a whole 40-frame 4K clip at once was 12 GB
    v = functools.lru_cache(maxsize=2)(lambda i: to_unit(video[i]).astype(np.float32))
    t, h, w = hole.shape
    p = min(cfg.patch, h, w)
    rng = np.random.default_rng(cfg.seed)
    psnrs: list[float] = []
    ssims: list[float] = []
    for i in range(t - 1):
        ys, xs = np.nonzero(hole[i])
        if ys.size == 0:
            continue
        pick = rng.choice(ys.size, size=min(cfg.patches_per_frame, ys.size), replace=False)
        for k in pick:
            y0 = int(np.clip(ys[k] - p // 2, 0, h - p))
            x0 = int(np.clip(xs[k] - p // 2, 0, w - p))
            ref = v(i)[y0:y0 + p, x0:x0 + p]
            sy0, sy1 = max(0, y0 - cfg.radius), min(h, y0 + p + cfg.radius)
            sx0, sx1 = max(0, x0 - cfg.radius), min(w, x0 + p + cfg.radius)
            area = v(i + 1)[sy0:sy1, sx0:sx1]
            sq = cv2.matchTemplate(area, ref, cv2.TM_SQDIFF)
            by, bx = np.unravel_index(int(np.argmin(sq)), sq.shape)
            match = area[by:by + p, bx:bx + p]
            psnrs.append(mse_to_psnr(float(((match.astype(np.float64) - ref) ** 2).mean())))
            ssims.append(ssim(ref, match) if p >= 2 * SSIM_REACH + 1 else float("nan"))
    if not psnrs:
        return float("nan"), float("nan")
    return float(np.mean(psnrs)), _nanmean(np.asarray(ssims))
