"""What the engine refuses, checked without torch: the daemon's request thread asks before it accepts a job, and
the command line before it loads anything heavy."""
from __future__ import annotations

import numpy as np

from vinpaint.errors import InputError

from .config import InpaintConfig, working_size

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)
EMPTY_MASK = "the mask is empty: no frame marks anything to remove (white = remove; see --invert-mask)"


def validate(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig) -> None:
    """Raise InputError naming the first problem with the arrays or settings."""
    config.check()
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be an array [T,H,W,3] of RGB frames, got shape {getattr(frames, 'shape', None)}")
    if frames.dtype not in SUPPORTED_DTYPES:
        raise InputError(f"frames must be uint8, uint16 or float32, not {frames.dtype}")
    if not isinstance(masks, np.ndarray) or masks.ndim != 3:
        raise InputError(f"masks must be an array [T,H,W], got shape {getattr(masks, 'shape', None)}")
    if masks.shape[0] != frames.shape[0]:
        raise InputError(f"the video has {frames.shape[0]} frames but the mask has {masks.shape[0]}")
    if masks.shape[1:] != frames.shape[1:3]:
        raise InputError(f"the video is {frames.shape[2]}x{frames.shape[1]} but the mask is "
                         f"{masks.shape[2]}x{masks.shape[1]}")
    t_count = frames.shape[0]
    config = config.fitted(t_count)[0]  # a short clip trains on shorter batches (a notice, not an error)
    holes = masks.astype(bool)
    if not holes.any():
        raise InputError(EMPTY_MASK)
    check_holes(holes, config.mask.dilation)
    h, w = working_size(frames.shape[1], frames.shape[2], config)
    if config.variant == "dip" and h * w < 2 * 64 * 64:
        raise InputError(f"working size {w}x{h} is too small for per-frame DIP (BatchNorm needs a bottleneck of at "
                         "least 2 pixels): use a working width of 128 or more")
    if config.loss.perceptual > 0 and config.loss.vgg_weights not in ("", "random"):
        from .perceptual import load_vgg16  # torch: only where a file is named

        load_vgg16(config.loss.vgg_weights)  # a file that is not VGG16's is refused before any work
    if config.flow.estimator == "raft":
        from .raft import load_raft  # torch: only where RAFT is asked for

        load_raft(config.flow.raft_weights)  # a weights file that is not RAFT's is refused before any work


def check_holes(holes: np.ndarray, dilation: int, first: int = 0) -> None:
    """Raise InputError where the hole, drawn or grown by `dilation`, covers a whole frame. `first`: the index of
    holes[0] in the shot, so a long shot checked a window at a time names the shot's frame, not the window's."""
    full = np.flatnonzero(holes.reshape(len(holes), -1).all(axis=1))
    if len(full):
        raise InputError(f"the mask covers all of frame {first + int(full[0])}: nothing is left to learn that frame "
                         "from")
    if (covered := covered_once_grown(holes, dilation)) is not None:
        raise InputError(f"the mask grown by mask.dilation = {dilation} pixels (--dilate) covers all of frame "
                         f"{first + covered}: nothing is left to learn that frame from; use a smaller dilation")


def covered_once_grown(holes: np.ndarray, radius: int) -> int | None:
    """The first frame that the hole grown by `radius` (as the engine grows it) covers entirely, or None. Only
    frames whose grown bounding box reaches every edge can be covered, so most clips dilate nothing here."""
    if radius <= 0:
        return None
    import cv2

    from .composite import box_around, grown  # OpenCV, no torch

    for t, hole in enumerate(holes):
        if not hole.any() or box_around(hole, radius) != (0, hole.shape[0], 0, hole.shape[1]):
            continue
        # A pixel farther than radius + 1 from the hole stays known whatever the disc's rounding: one linear-time
        # distance transform settles most frames without the dilation, whose cost grows with the radius.
        far = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).max()
        if far <= radius + 1 and grown(hole, radius).all():
            return t
    return None
