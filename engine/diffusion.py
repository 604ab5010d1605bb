"""Per-frame diffusion: hole pixels filled from the pixels around them in the same frame, for what no frame shows
and the model does not fill (and as the third candidate of propagation's fusion, near the hole's edge).

Two methods. OpenCV's Telea, the classical per-frame fill a compositor compares the node with. And the membrane:
the smoothest surface through the known pixels around the hole (Laplace's equation, each hole pixel the mean of its
four neighbours), solved coarse to fine. Telea carries the edge's texture inward along the distance to it and
leaves streaks; the membrane's smooth fill is nearer the truth on average deeper in. On the 17 composed clips of
docs/evaluation.md, per frame on the bare hole, the membrane scored above Telea on every one, by 0.04 to 1.95 dB
(0.74 on average), in less than Telea's time ("Diffusion: the membrane").

And the membrane mixed with the biharmonic fill ('membrane+biharmonic'), which carries the edge's gradient inward
where the membrane levels off: alone it gained 1-2 dB on smooth shading (a road, a car) and lost 3 on foliage, so
the mix is weighted per clip by least squares on known pixels around grown holes (`clip_diffusion`, a Blend);
docs/evaluation.md, "The biharmonic fill, blended per clip"."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .composite import box_around, display_u8

METHODS = ("telea", "membrane", "membrane+biharmonic")

BIHARMONIC_WIDTH = 480
"""The biharmonic fill is a sparse solve whose cost grows faster than the hole: wider frames are solved at this
width and the fill brought up (it is smooth: little is lost), so a 4K plate costs about what a 480-wide one does."""

BIHARMONIC_UNKNOWNS = 30000
"""And a clip whose largest hole has more pixels than this at that width is solved smaller, its largest hole at
about this many (Blend.solve_scale): on a 40-frame 480x360 clip with a 35 % hole the biharmonic solves took several
times the membrane run's whole time (docs/evaluation.md, "The biharmonic fill: its precision and its cost")."""

MEMBRANE_ALONE = 0.95
"""A fitted membrane share above this is taken as 1: the biharmonic fill's last few percent of weight changed no
composed clip by more than 0.03 dB and cost a sparse solve per fill."""


@dataclass(frozen=True)
class Blend:
    """'membrane+biharmonic' resolved for one clip: the membrane's weight in the mix, fitted on its known pixels."""

    membrane_share: float
    solve_scale: float = 1.0
    """The biharmonic fill solved at this fraction of its size (below BIHARMONIC_WIDTH's), one for the whole clip,
    so the share is fitted on the fill the run makes: grown holes solved smaller than the clip's own holes gave
    other shares (tennis:schoolgirls 0.64 -> 0.98) and lost 0.2 dB on running_car:schoolgirls."""

SWEEPS = 24
"""Jacobi sweeps on each level after the coarser level's solution is brought up. An approximation, and a cheap one:
on a 10 %-of-the-frame hole at 480 wide it took 24 ms and lay 2.1 levels of 255 (RMS; 8.7 at most) from the
converged solution, far below the fill's own error against the truth (25-30); 96 sweeps took 83 ms for 0.8."""

_NEIGHBOURS = np.array([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]], np.float32)


def diffuse(frame: np.ndarray, left: np.ndarray, method: "str | Blend" = "telea", radius: int = 5) -> np.ndarray:
    """frame [H,W,3] uint8 or float32 -> float32 [H,W,3] on the same scale (0-255 or as given), its `left` pixels
    (bool [H,W]) filled from the pixels around them. Telea runs on 8-bit frames as they are and on float ones at
    16 bits (its float path is not exact; HDR values are scaled); the membrane and the biharmonic fill work in
    float32 either way. 'membrane+biharmonic' unresolved (no Blend) is the membrane alone."""
    if isinstance(method, Blend):
        out = membrane(frame, left)
        if method.membrane_share < 1.0 and left.any():
            share = np.float32(method.membrane_share)
            out[left] = share * out[left] + (1 - share) * biharmonic(frame, left, method.solve_scale)[left]
        return out
    if method not in METHODS:
        raise ValueError(f"unknown diffusion {method!r}; choose one of {', '.join(METHODS)}")
    if method in ("membrane", "membrane+biharmonic"):
        return membrane(frame, left)
    if frame.dtype == np.uint8:
        if not left.any():
            return frame.astype(np.float32)
        return cv2.inpaint(frame, left.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA).astype(np.float32)
    out = frame.astype(np.float32, copy=True)
    if left.any():
        mask = left.astype(np.uint8) * 255
        scale = max(1.0, float(out.max()))
        fixed = np.clip(np.rint(out / scale * 65535.0), 0, 65535).astype(np.uint16)
        fixed = np.stack([cv2.inpaint(np.ascontiguousarray(fixed[..., c]), mask, radius, cv2.INPAINT_TELEA)
                          for c in range(3)], axis=-1)
        out[left] = fixed[left].astype(np.float32) / 65535.0 * scale
    return out


def membrane(field: np.ndarray, unknown: np.ndarray, sweeps: int = SWEEPS) -> np.ndarray:
    """[H,W,C] of any dtype -> float32 [H,W,C] with the `unknown` pixels (bool [H,W]) on the membrane through the
    known ones, solved on the hole's bounding box only (where the hole meets the frame's edge, the edge is free)."""
    out = field.astype(np.float32, copy=True)
    if not unknown.any():
        return out
    if unknown.all():
        out[:] = 0.0  # nothing to fill from
        return out
    y0, y1, x0, x1 = box_around(unknown, 1)
    out[y0:y1, x0:x1] = _solved(out[y0:y1, x0:x1], unknown[y0:y1, x0:x1], sweeps)
    return out


def _solved(field: np.ndarray, unknown: np.ndarray, sweeps: int) -> np.ndarray:
    """One level: the unknown pixels start from the solution on a grid half the size (known pixels area-averaged
    onto it, a coarse pixel known where any of its pixels is), then Jacobi sweeps correct the detail."""
    h, w, channels = field.shape
    known = (~unknown).astype(np.float32)
    if max(h, w) <= 8:
        field[unknown] = (field * known[..., None]).sum(axis=(0, 1)) / known.sum()
        return _relaxed(field, unknown, 4 * sweeps)
    size = ((w + 1) // 2, (h + 1) // 2)
    value = cv2.resize(field * known[..., None], size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
    weight = cv2.resize(known, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0])
    coarse = value / np.maximum(weight, 1e-6)[..., None]
    coarse = _solved(coarse, weight <= 0.0, sweeps)
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, channels)
    np.copyto(field, up, where=unknown[..., None])
    return _relaxed(field, unknown, sweeps)


def _relaxed(field: np.ndarray, unknown: np.ndarray, sweeps: int) -> np.ndarray:
    """Jacobi sweeps of Laplace's equation on the unknown pixels; the frame's edge reflects (no flux across it)."""
    where = np.broadcast_to(unknown[..., None], field.shape)
    for _ in range(sweeps):
        mean = cv2.filter2D(field, -1, _NEIGHBOURS, borderType=cv2.BORDER_REPLICATE).reshape(field.shape)
        np.copyto(field, mean, where=where)
    return field


def biharmonic(field: np.ndarray, unknown: np.ndarray, solve_scale: float = 1.0) -> np.ndarray:
    """[H,W,C] of any dtype -> float32 [H,W,C], the `unknown` pixels on scikit-image's biharmonic fill through the
    known ones (values as given: no rescaling), solved at BIHARMONIC_WIDTH at most and `solve_scale` times that
    (Blend.solve_scale), in float64: in float32 the sparse solve of a 100k-pixel hole lay up to 68 levels off."""
    from skimage.restoration import inpaint_biharmonic

    out = field.astype(np.float32, copy=True)
    if not unknown.any() or unknown.all():
        return membrane(field, unknown)  # nothing, or nothing to fill from: as the membrane does
    h, w = unknown.shape
    scale = min(1.0, BIHARMONIC_WIDTH / w) * solve_scale
    if scale >= 1.0:
        filled = inpaint_biharmonic(out.astype(np.float64), unknown, channel_axis=-1)
    else:  # solved small: a small pixel is unknown where any of its pixels is
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(out, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        small_unknown = cv2.resize(unknown.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        if small_unknown.all():
            return membrane(field, unknown)
        solved = inpaint_biharmonic(small.astype(np.float64), small_unknown, channel_axis=-1).astype(np.float32)
        filled = cv2.resize(solved, (w, h), interpolation=cv2.INTER_LINEAR).reshape(out.shape)
    out[unknown] = filled[unknown]
    return out


def hole_depth(hole: np.ndarray) -> np.ndarray:
    """bool [H,W] -> float32 [H,W]: each hole pixel's distance in pixels to the nearest pixel outside it (0 there)."""
    return cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)


def sampled_frames(t_count: int, frames_used: int) -> np.ndarray:
    """The frames a clip's diffusion is measured on: `frames_used` of them, evenly spread."""
    return np.unique(np.linspace(0, t_count - 1, min(frames_used, t_count)).round().astype(int))


def depth_grow(depth: float) -> int:
    """How far a hole `depth` px deep is grown to measure diffusion on known pixels: as far as it is deep, 4-64 px
    (the error levels off well before 64: 70-82 levels from 12 px on in a 1080p test)."""
    return int(np.clip(np.ceil(depth), 4, 64))


def grown_hole(hole: np.ndarray, grow: int) -> tuple[np.ndarray, np.ndarray]:
    """bool [H,W] -> (the hole grown by `grow` px, the known pixels that covers: more than 1.5 px outside the
    hole, where its own edge's pixels no longer stand in for it)."""
    away = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3)  # a dilation's cost, any size
    return away <= grow, (away > 1.5) & (away <= grow)


def clip_diffusion(method: str, frames: np.ndarray, holes: np.ndarray, frames_used: int = 6) -> "str | Blend":
    """A diffusion name resolved for one clip: 'membrane+biharmonic' becomes a Blend whose membrane share is the
    least-squares weight of the membrane against the biharmonic fill on known pixels: in `frames_used` frames the
    hole is grown by as much as it is deep (depth_grow, as propagate.diffusion_error_by_depth grows it) and both
    fill it; a share above MEMBRANE_ALONE is 1. The solve's size is chosen here too, from the clip's largest hole
    (BIHARMONIC_UNKNOWNS). Other names are returned as they are. frames [T,H,W,3] of any dtype, seen as flow sees
    them (display_u8: only the sampled frames are converted), holes bool [T,H,W]."""
    if method != "membrane+biharmonic":
        return method
    width_scale = min(1.0, BIHARMONIC_WIDTH / holes.shape[2])
    largest = float(holes.sum(axis=(1, 2)).max()) * width_scale ** 2
    solve_scale = min(1.0, float(np.sqrt(BIHARMONIC_UNKNOWNS / largest))) if largest > 0 else 1.0
    num = den = 0.0
    for t in sampled_frames(len(holes), frames_used):
        if not holes[t].any() or holes[t].all():
            continue
        grown, known = grown_hole(holes[t], depth_grow(float(hole_depth(holes[t]).max())))
        if not known.any() or grown.all():
            continue
        frame = display_u8(frames[t])
        truth = frame[known].astype(np.float64)
        smooth = membrane(frame, grown)[known].astype(np.float64)
        bent = biharmonic(frame, grown, solve_scale)[known].astype(np.float64)
        num += float(((truth - bent) * (smooth - bent)).sum())
        den += float(((smooth - bent) ** 2).sum())
    share = float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 1.0
    return Blend(1.0 if share > MEMBRANE_ALONE else share, solve_scale)
