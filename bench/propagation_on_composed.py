"""The product's default (propagation + crop + the model) against the per-frame fill, on composed real clips.

A background clip from ../shared/data/bg at its own resolution with a real object's masks pasted on (resized to
fit), so the truth behind the hole is known; the hole shows flat grey. For each (background, masks) pair prints
hole PSNR of OpenCV Telea frame by frame, of propagation with Telea for the unseen rest (no training), and of
the engine with the given preset, with its CPU and wall seconds; and the same on the part no frame sees. Prints
numbers; asserts nothing. Example:
    python bench/propagation_on_composed.py --pairs tree:blackswan,running_car:dogs-jump --frames 25 --steps 600
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


from vinpaint.engine import inpaint, make_config
from vinpaint.engine.result import GENERATED
from vinpaint.evaluation.baselines import opencv_inpaint
from vinpaint.evaluation.metrics import psnr

from composed import DATA, composed_pairs, overrides  # bench/composed.py

ALL_PAIRS = [f"{bg}:{m}" for bg in ("vtest", "tree", "running_car")
             for m in ("tennis", "blackswan", "schoolgirls", "dogs-jump")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pairs", default=",".join(ALL_PAIRS), help="background:masks,... (default: all 12)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--steps", type=int, default=0, help="override train.max_steps (0: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="engine override")
    parser.add_argument("--no-engine", action="store_true", help="only the two training-free fills")
    args = parser.parse_args()
    settings = overrides(args.steps, args.set)
    for pair, truth, holes, shown in composed_pairs(args.data, args.pairs, args.frames):
        started = time.monotonic()
        telea = opencv_inpaint(shown, holes, "telea")
        prop = opencv_inpaint(shown, holes, "prop-telea")
        prop_s = time.monotonic() - started - telea.seconds
        line = (f"{pair.replace(':', '+')} {len(truth)} frames {truth.shape[2]}x{truth.shape[1]}, hole "
                f"{holes.mean():.1%}: hole PSNR telea {psnr(telea.frames, truth, holes):.2f}, prop-telea "
                f"{psnr(prop.frames, truth, holes):.2f} ({prop_s:.0f} s)")
        if not args.no_engine:
            config = make_config(args.preset, **settings)
            cpu, wall = time.process_time(), time.monotonic()
            result = inpaint(shown, holes, config)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            unseen = result.matte == GENERATED
            line += (f", {args.preset} {psnr(result.frames, truth, holes):.2f} ({result.steps} steps, {cpu:.0f} "
                     f"CPU s, {wall:.0f} s wall)")
            if unseen.any():
                line += (f"; unseen {unseen.sum() / holes.sum():.0%} of the hole: {args.preset} "
                         f"{psnr(result.frames, truth, unseen):.2f}, prop-telea {psnr(prop.frames, truth, unseen):.2f}")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
