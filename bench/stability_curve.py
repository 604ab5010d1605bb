"""Hole PSNR every K training steps on a small composed clip: how stable is the output from step to step?

A background clip from ../shared/data/bg gets a real object's masks (resized to the working size), the hole is
greyed out as the engine does, and one VideoTrainer is trained; every `--every` steps the frames are generated as
the engine would generate them at that point and scored in the hole against the untouched background. No
propagation: this measures the generator alone. Prints one JSON line per run; asserts nothing. Example:
    python bench/stability_curve.py --background vtest --masks blackswan --frames 20 --steps 600 --every 25 \
        --set train.ema_decay=0 --label before --out /tmp/before.json
CPU note: at 128x64 and 20 frames a step takes about 0.1-0.3 s on 2 shared cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vinpaint.engine import make_config
from vinpaint.engine.composite import resize_frames, resize_holes, to_float
from vinpaint.engine.flow import compute_known_flow, make_estimator
from vinpaint.media.io import read_clip
from vinpaint.engine.train import TrainingData, VideoTrainer, make_noise
from vinpaint.evaluation.metrics import hole_psnr


def composed(data: Path, background: str, masks: str, frames: int, w: int, h: int):
    """-> truth float32 [T,h,w,3] in [0,1], hole bool [T,h,w] at the working size."""
    truth = read_clip(data / "bg" / background / "frames").frames[:frames]
    mask = read_clip(data / masks / "masks").frames[:len(truth)]
    truth = truth[:len(mask)]
    return resize_frames(to_float(truth), (w, h)), resize_holes(mask.max(axis=-1) > 127, (w, h))


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--background", default="vtest")
    parser.add_argument("--masks", default="blackswan")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--variant", default="dip-vid-flow")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dense", default="", metavar="FROM:TO",
                        help="also score every step in this range (step-to-step jumps, batch by batch)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.data / "bg" / args.background).is_dir() or not (args.data / args.masks).is_dir():
        print(f"skipped: {args.data} has no {args.background} or {args.masks}")
        return 0
    overrides = {"resolution.work_width": args.width, "resolution.work_height": args.height,
                 "train.max_steps": args.steps, "train.checkpoint_every_s": 0.0, "propagation.enabled": False}
    overrides.update({k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)})
    config = make_config(args.preset, args.variant, **overrides)
    config.train.epochs = max(config.train.epochs, 1000.0)  # never run out of schedule before --steps
    truth, hole = composed(args.data, args.background, args.masks, args.frames, args.width, args.height)
    work = truth.copy()
    work[hole] = 0.5
    known_flow = None
    if config.uses_flow:
        u8 = (np.clip(work, 0, 1) * 255).round().astype(np.uint8)
        known_flow = compute_known_flow(u8, hole, make_estimator(config.flow.estimator, config.flow.dis_preset),
                                        config.flow.occlusion_threshold)
    t = len(truth)
    data = TrainingData(torch.from_numpy(work).permute(0, 3, 1, 2).contiguous(),
                        torch.from_numpy(~hole).float()[:, None], make_noise(t, args.height, args.width,
                                                                              config.train.seed), known_flow)
    curve: list[tuple[int, float]] = []
    raw: list[tuple[int, float]] = []  # with train.ema_decay: the same run scored from its last weights
    holder: dict = {}
    dense = tuple(int(x) for x in args.dense.split(":")) if args.dense else (0, -1)

    def score(last_weights: bool = False) -> float:
        trainer = holder["trainer"]
        average = trainer.average
        if last_weights:
            trainer.average = None
        try:
            generated, _ = trainer.generate()
        finally:
            trainer.average = average
        return hole_psnr(generated, truth, hole)

    def progress(event) -> None:
        wanted = event.step % args.every == 0 or dense[0] <= event.step <= dense[1]
        if event.phase == "train" and wanted and event.step not in dict(curve):
            curve.append((event.step, score()))
            if holder["trainer"].average is not None:
                raw.append((event.step, score(last_weights=True)))
            print(f"step {event.step}: hole PSNR {curve[-1][1]:.2f} dB" +
                  (f" (last weights {raw[-1][1]:.2f})" if raw else ""), file=sys.stderr, flush=True)

    started = time.monotonic()
    trainer = VideoTrainer(config, data, None, torch.device("cpu"), None, progress, None)
    holder["trainer"] = trainer
    trainer.train()
    final = score()

    def stats(points):
        points = [(s, p) for s, p in points if s % args.every == 0 and s > args.steps // 2]  # the second half
        jumps = [abs(b[1] - a[1]) for a, b in zip(points, points[1:])]
        half = [p for s, p in points]
        return {"max_jump": max(jumps) if jumps else 0.0, "mean_jump": float(np.mean(jumps)) if jumps else 0.0,
                "std_second_half": float(np.std(half)) if half else 0.0,
                "mean_second_half": float(np.mean(half)) if half else 0.0}

    row = {"label": args.label, "background": args.background, "masks": args.masks, "frames": t,
           "size": f"{args.width}x{args.height}", "steps": trainer.steps, "every": args.every,
           "overrides": {k: v for k, v in overrides.items()}, "curve": curve, "final": final, **stats(curve),
           "curve_last_weights": raw, "last_weights": stats(raw) if raw else None,
           "wall_s": round(time.monotonic() - started, 1)}
    line = json.dumps(row)
    print(line)
    if args.out:
        args.out.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
