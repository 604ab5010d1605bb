"""From working-resolution generations back to source frames: only hole pixels change."""
from __future__ import annotations

import cv2
import numpy as np

from .parallel import each_frame
from .result import GENERATED


def dilate_holes(holes: np.ndarray, radius: int) -> np.ndarray:
    """bool [T,H,W] -> bool [T,H,W] grown by `radius` pixels (a disc)."""
    if radius <= 0:
        return holes
    return np.stack(each_frame(lambda t: grown(holes[t], radius), range(len(holes))))


def grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """bool [H,W] -> bool [H,W] grown by a disc of `radius` pixels (OpenCV's elliptic structuring element),
    dilated on the mask's bounding box plus the radius only. The same pixels as the whole frame's dilation, whose
    cost grows with the disc's area at every pixel: on a 4K plate the self-check's 96-pixel band took seconds a
    frame where the hole is a small part of it."""
    mask = np.asarray(mask, bool)
    if radius <= 0 or not mask.any():
        return mask.copy()
    y0, y1, x0, x1 = box_around(mask, radius)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out = np.zeros(mask.shape, bool)
    out[y0:y1, x0:x1] = cv2.dilate(mask[y0:y1, x0:x1].astype(np.uint8), kernel) > 0
    return out


def box_around(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """bool [H,W] with at least one pixel set -> (y0, y1, x0, x1): its bounding box grown by `margin` pixels on
    each side, within the frame."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
            max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin))


def fill_weight(hole: np.ndarray, feather: int) -> np.ndarray:
    """bool [H,W] -> float32 [H,W]: 1 deep in the hole, ramping to 0 at its edge over `feather` pixels, 0 outside.

    The ramp lies inside the hole, so every pixel outside it keeps exactly its source value."""
    if feather <= 0:
        return hole.astype(np.float32)
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(inside / float(feather + 1), 0.0, 1.0).astype(np.float32) * hole


def to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float frames -> float32 in [0,1], always a new array (scaled in place: a second temporary
    of a 40-frame 4K clip would be 4 GB more)."""
    out = frames.astype(np.float32)
    if frames.dtype == np.uint8:
        out /= 255.0
    elif frames.dtype == np.uint16:
        out /= 65535.0
    return out


def display_u8(frames: np.ndarray) -> np.ndarray:
    """Frames of any dtype as 8-bit pictures for flow: linear-light float32 through a display curve (or dark plates
    give weak flow), 16-bit scaled down."""
    if frames.dtype == np.float32:
        return (np.clip(frames, 0.0, 1.0) ** (1 / 2.2) * 255).round().astype(np.uint8)
    return frames if frames.dtype == np.uint8 else (to_float(frames) * 255).round().astype(np.uint8)


def from_float(frames: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 in [0,1] -> `dtype`, rounding to nearest for integer types."""
    if dtype == np.uint8:
        return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(np.rint(frames * 65535.0), 0, 65535).astype(np.uint16)
    return frames.astype(dtype)


Region = tuple[int, int, int, int]
"""(y0, y1, x0, x1): the part of the frame a model was trained on (engine/api.py hole_region)."""


def hole_region(holes: np.ndarray, margin: float, min_pad: int = 32, max_share: float = 0.6) -> Region | None:
    """bool [T,H,W] -> the box around the hole's union over the clip, grown by `margin` times its larger side (at
    least `min_pad` px) on each side; None when there is no hole or the box is most of the frame anyway."""
    union = holes.any(axis=0)
    if not union.any():
        return None
    height, width = union.shape
    y0, y1, x0, x1 = box_around(union)
    pad = max(min_pad, int(round(margin * max(y1 - y0, x1 - x0))))
    y0, y1, x0, x1 = max(0, y0 - pad), min(height, y1 + pad), max(0, x0 - pad), min(width, x1 + pad)
    if (y1 - y0) * (x1 - x0) > max_share * height * width:
        return None
    return y0, y1, x0, x1


def composite(source: np.ndarray, generated: np.ndarray | None, holes: np.ndarray, feather: int = 0,
              propagation=None, seam: int = 3, region: Region | None = None, model_share: float = 1.0,
              diffusion: str = "telea") -> tuple[np.ndarray, np.ndarray]:
    """Source [T,H,W,3] any dtype, generated float [T,h,w,3] (or None when propagation reached every hole pixel),
    holes bool [T,H,W], optional engine.propagate.Propagation -> ([T,H,W,3] in the source dtype, uint8 matte [T,H,W]).

    The fill is the generation upsampled (bicubic) to the source size, with propagated real pixels over it exactly
    (the seam ramps the generation in from per-frame `diffusion` on the generated side, engine/diffusion.py); it is
    blended in only where the hole is. The matte says which hole pixels were propagated and which generated.
    With a `region`, the generation covers that box of the frame only (every hole pixel it fills lies inside).
    `model_share` below 1 mixes that diffusion (from the real and propagated pixels around) into the generated
    part by that weight: the self-check's blend."""
    from .diffusion import diffuse
    from .propagate import blend_frame, with_propagated

    out = source.copy()
    t_count, h, w = holes.shape
    matte = np.zeros(holes.shape, np.uint8)

    def fill_frame(i: int) -> None:
        if not holes[i].any():
            return
        fill = upsampled(generated[i], (h, w), region) if generated is not None else np.zeros((h, w, 3), np.float32)
        unseen = holes[i] & ~propagation.reached[i] if propagation is not None else holes[i]
        seam_needed = propagation is not None and seam > 0 and (holes[i] & propagation.reached[i]).any()
        diffused = None  # diffusion from the real and propagated pixels: the blend's other part, the seam's start
        if generated is not None and unseen.any() and (model_share < 1.0 or seam_needed):
            diffused = diffuse(with_propagated(source[i], propagation, i), unseen, diffusion)
            if model_share < 1.0:
                fill = model_share * fill + (1.0 - model_share) * diffused
        if propagation is not None:
            fill, matte[i] = blend_frame(fill, propagation.colours[i], propagation.reached[i], holes[i], seam,
                                         diffused)
        else:
            matte[i][holes[i]] = GENERATED
        alpha = fill_weight(holes[i], feather)[..., None]
        ys, xs = np.nonzero(holes[i])
        src = to_float(source[i][ys, xs])
        blended = alpha[ys, xs] * fill[ys, xs] + (1.0 - alpha[ys, xs]) * src
        out[i][ys, xs] = from_float(blended, source.dtype)

    each_frame(fill_frame, range(t_count))
    return out, matte


def upsampled(generated: np.ndarray, size: tuple[int, int], region: Region | None = None) -> np.ndarray:
    """One generated frame float [h,w,3] -> float32 [H,W,3] (size = (H, W)), bicubic and clipped to [0,1]; with a
    `region`, the generation covers that box only (zero elsewhere). What composite and the self-check both see."""
    height, width = size
    if region is None:
        return np.clip(cv2.resize(generated, (width, height), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    y0, y1, x0, x1 = region
    fill = np.zeros((height, width, 3), np.float32)
    fill[y0:y1, x0:x1] = np.clip(cv2.resize(generated, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    return fill


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float [T,H,W,3] -> float [T,h,w,3] with area averaging (size = (w, h))."""
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def resize_holes(holes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool [T,H,W] -> bool [T,h,w]: a working pixel is a hole if any source pixel under it is (never shrinks)."""
    return np.stack([cv2.resize(h.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0 for h in holes])
