"""Frames in other light: composed clips whose brightness changes from frame to frame, filled by the engine with
and without `propagation.exposure`, and by OpenCV's Telea (docs/evaluation.md, "Frames in other light").

Each clip is a ../shared/data background with a real object's masks, then relit per frame (the truth too, so
the score asks for the fill in each frame's own light):
  flicker  every frame's gain drawn from 0.75-1.25 (a flickering lamp or shutter)
  ramp     the gain rising evenly to 1.35 over the clip (auto-exposure opening up)
  colour   each channel's gain drawn from 0.85-1.15 per frame (white balance wandering)
Hole PSNR per frame then averaged / pooled, and the patch-based temporal consistency in the hole. The engine
runs `fast` training-free (`propagation.train_below` 1: the copies and the fill of what no frame sees are what
the light touches). Asserts only that pixels outside the hole are the input's. Example:
    python bench/light_changes.py --frames 40
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.evaluation.baselines import opencv_inpaint
from vinpaint.evaluation.metrics import ConsistencyConfig, psnr, temporal_consistency, video_scores

from composed import DATA, _shown, composed  # bench/composed.py

CLIPS = {"flicker": ("vtest", "dogs-jump"), "ramp": ("vtest", "dogs-jump"), "colour": ("running_car", "tennis")}


def relit(truth: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    t_count = len(truth)
    if kind == "flicker":
        gain = rng.uniform(0.75, 1.25, (t_count, 1, 1, 1))
    elif kind == "ramp":
        gain = np.linspace(1.0, 1.35, t_count)[:, None, None, None]
    else:
        gain = rng.uniform(0.85, 1.15, (t_count, 1, 1, 3))
    return np.clip(truth.astype(np.float32) * gain.astype(np.float32), 0, 255).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--kinds", default="flicker,ramp,colour")
    args = parser.parse_args()
    print("| clip | hole | Telea | engine, exposure off | engine, exposure on | consistency Telea / off / on |")
    print("|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        background, masks = CLIPS[kind]
        clip = composed(Path(args.data), background, masks, args.frames)
        if clip is None:
            print(f"skipped {kind}: {background} or {masks} is not in {args.data}")
            continue
        truth, holes = clip
        truth = relit(truth, kind, np.random.default_rng(0))
        shown = _shown(truth, holes)
        outs = {"telea": opencv_inpaint(shown, holes, "telea").frames}
        seconds = {}
        for name, on in (("off", False), ("on", True)):
            start = time.monotonic()
            config = make_config("fast", **{"propagation.train_below": 1.0, "propagation.exposure": on})
            outs[name] = inpaint(shown, holes, config).frames
            seconds[name] = time.monotonic() - start
        cells = []
        for name, out in outs.items():
            assert np.array_equal(out[~holes], shown[~holes]), f"{kind} {name}: pixels outside the hole changed"
            per_frame = video_scores(out, truth, holes, whole_frame=False).means()["psnr_hole"]
            cells.append(f"{per_frame:.2f} / {psnr(out, truth, holes):.2f}" +
                         (f" ({seconds[name]:.0f} s)" if name in seconds else ""))
        consistency = " / ".join(f"{temporal_consistency(out, holes, ConsistencyConfig())[0]:.2f}"
                                 for out in outs.values())
        print(f"| {kind}: {background} + {masks} | {holes.mean() * 100:.1f} % | " + " | ".join(cells) +
              f" | {consistency} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
