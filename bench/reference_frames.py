"""Hole PSNR on a composed real clip with one true frame given as a reference (a painted clean frame) against none.

A background clip from ../shared/data/bg with a real object's masks pasted on (resized to fit), so the truth behind
the hole is known. The same run twice, the second with `references={k: truth[k]}`; the PSNR is over the hole of
every frame but k (frame k's output is the reference itself), and over the frames within 5 of k. Prints numbers;
asserts nothing. Example:
    python bench/reference_frames.py --background vtest --masks blackswan --frames 30 --steps 300
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.composite import dilate_holes
from vinpaint.evaluation.metrics import hole_psnr
from composed import add_clip_arguments, load  # bench/composed.py
from composed import overrides as settings_from


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_clip_arguments(parser, frames=30)
    parser.add_argument("--reference", type=int, default=-1, help="the frame given (default: the middle one)")
    parser.add_argument("--static-mask", action="store_true",
                        help="use the reference frame's mask on every frame (a hole no other frame sees behind, "
                             "like a logo or a rig that never moves)")
    args = parser.parse_args()
    clip = load(args)
    if clip is None:
        return 0
    truth, holes = clip
    h, w = truth.shape[1:3]
    k = args.reference if args.reference >= 0 else len(truth) // 2
    if args.static_mask:
        holes = np.repeat(holes[k:k + 1], len(holes), axis=0)
    overrides = settings_from(args.steps, args.set)

    def psnr(frames: np.ndarray, hole: np.ndarray, which: list[int]) -> float:
        return hole_psnr(frames[which], truth[which], hole[which])

    others = [t for t in range(len(truth)) if t != k]
    near = [t for t in others if abs(t - k) <= 5]
    print(f"{args.background} + {args.masks} masks, {len(truth)} frames {w}x{h}, {args.preset}/{args.variant}, "
          f"reference frame {k}" + (", its mask on every frame" if args.static_mask else "") +
          (f", settings {overrides}" if overrides else ""), flush=True)
    for label, references in (("no reference", None), (f"frame {k} given", {k: truth[k]})):
        config = make_config(args.preset, args.variant, **overrides)
        started = time.monotonic()
        result = inpaint(truth, holes, config, references=references)  # the truth never reaches training elsewhere
        wall = time.monotonic() - started
        hole = dilate_holes(holes, config.mask.dilation)  # the same pixels in both runs (the reference's too)
        propagated = float((result.matte[others] == 1).sum()) / max(int(hole[others].sum()), 1) \
            if result.matte is not None else 0.0
        print(f"  {label:>16}: hole PSNR {psnr(result.frames, hole, others):.2f} dB on the other {len(others)} "
              f"frames, {psnr(result.frames, hole, near):.2f} dB within 5 frames of {k}; {propagated:.0%} of their "
              f"hole propagated from other frames; {result.steps} steps, {wall:.0f} s wall", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
