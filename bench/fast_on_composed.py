"""Hole PSNR and wall time of a preset on one composed real clip, next to OpenCV's Telea fill.

A background clip from ../shared/data/bg with a real object's masks pasted on (resized to fit), so the truth
behind the hole is known. Prints numbers; asserts nothing. Example:
    python bench/fast_on_composed.py --background vtest --masks blackswan --frames 40 --preset fast
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.evaluation.metrics import hole_psnr
from composed import add_clip_arguments, load, overrides  # bench/composed.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_clip_arguments(parser, frames=40)
    args = parser.parse_args()
    clip = load(args)
    if clip is None:
        return 0
    truth, holes = clip
    h, w = truth.shape[1:3]
    settings = overrides(args.steps, args.set)
    config = make_config(args.preset, args.variant, **settings)
    started = time.monotonic()
    result = inpaint(truth, holes, config)  # the engine greys the hole out itself: the truth never reaches training
    wall = time.monotonic() - started
    hole = result.hole

    def psnr(frames: np.ndarray) -> float:
        return hole_psnr(frames, truth, hole)

    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA) for f, m in zip(truth, hole)])
    print(f"{args.background} + {args.masks} masks, {len(truth)} frames {w}x{h}, {args.preset}/{args.variant}: "
          f"{result.steps} steps, {wall:.0f} s wall ({result.seconds:.0f} s training), "
          f"hole PSNR {psnr(result.frames):.2f} dB; Telea {psnr(telea):.2f} dB"
          + (f"; settings {overrides}" if overrides else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
