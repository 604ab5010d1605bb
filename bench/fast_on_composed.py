"""Hole PSNR and wall time of a preset on one composed real clip, next to OpenCV's Telea fill.

A background clip from ../shared/data/bg with a real object's masks pasted on (resized to fit), so the truth
behind the hole is known. Prints numbers; asserts nothing. Example:
    python bench/fast_on_composed.py --background vtest --masks blackswan --frames 40 --preset fast
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.io import read_clip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--background", default="vtest")
    parser.add_argument("--masks", default="blackswan")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--variant", default="dip-vid-flow")
    parser.add_argument("--steps", type=int, default=0, help="override train.max_steps (0: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other setting (JSON values), e.g. --set train.precision=bf16")
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
    overrides = {"train.max_steps": args.steps} if args.steps else {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    config = make_config(args.preset, args.variant, **overrides)
    started = time.monotonic()
    result = inpaint(truth, holes, config)  # the engine greys the hole out itself: the truth never reaches training
    wall = time.monotonic() - started
    hole = result.hole

    def psnr(frames: np.ndarray) -> float:
        err = ((frames.astype(np.float64) - truth.astype(np.float64)) / 255.0) ** 2
        return float(10 * np.log10(1.0 / err[hole].mean()))

    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA) for f, m in zip(truth, hole)])
    print(f"{args.background} + {args.masks} masks, {len(truth)} frames {w}x{h}, {args.preset}/{args.variant}: "
          f"{result.steps} steps, {wall:.0f} s wall ({result.seconds:.0f} s training), "
          f"hole PSNR {psnr(result.frames):.2f} dB; Telea {psnr(telea):.2f} dB"
          + (f"; settings {overrides}" if overrides else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
