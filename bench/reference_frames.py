"""Hole PSNR on a composed real clip with one true frame given as a reference (a painted clean frame) against none.

A background clip from ../shared/data/bg with a real object's masks pasted on (resized to fit), so the truth behind
the hole is known. The same run twice, the second with `references={k: truth[k]}`; the PSNR is over the hole of
every frame but k (frame k's output is the reference itself), and over the frames within 5 of k. Prints numbers;
asserts nothing. Example:
    python bench/reference_frames.py --background vtest --masks blackswan --frames 30 --steps 300
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.composite import dilate_holes
from vinpaint.engine.io import read_clip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--background", default="vtest")
    parser.add_argument("--masks", default="blackswan")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--reference", type=int, default=-1, help="the frame given (default: the middle one)")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--variant", default="dip-vid-flow")
    parser.add_argument("--steps", type=int, default=0, help="override train.max_steps (0: the preset's)")
    parser.add_argument("--static-mask", action="store_true",
                        help="use the reference frame's mask on every frame (a hole no other frame sees behind, "
                             "like a logo or a rig that never moves)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other setting (JSON values), e.g. --set propagation.enabled=false")
    args = parser.parse_args()
    bg_dir, mask_dir = args.data / "bg" / args.background / "frames", args.data / args.masks / "masks"
    if not bg_dir.is_dir() or not mask_dir.is_dir():
        print(f"skipped: {bg_dir} or {mask_dir} is not there")
        return 0
    truth = read_clip(bg_dir).frames[:args.frames]
    h, w = truth.shape[1:3]
    masks = read_clip(mask_dir).frames[:len(truth)]
    holes = np.stack([cv2.resize(m.max(axis=-1), (w, h), interpolation=cv2.INTER_NEAREST) > 127 for m in masks])
    truth = truth[:len(holes)]
    k = args.reference if args.reference >= 0 else len(truth) // 2
    if args.static_mask:
        holes = np.repeat(holes[k:k + 1], len(holes), axis=0)
    overrides = {"train.max_steps": args.steps} if args.steps else {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value

    def psnr(frames: np.ndarray, hole: np.ndarray, which: list[int]) -> float:
        err = ((frames[which].astype(np.float64) - truth[which].astype(np.float64)) / 255.0) ** 2
        return float(10 * np.log10(1.0 / err[hole[which]].mean()))

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
