"""When do DIP-Vid-Flow's flow terms pay off? Hole PSNR against training CPU time, for variants and settings.

Trains each method on one composed clip (from a set written by `vinpaint compose`) with one
torch thread, and every `--every` CPU seconds of training generates the clip and scores it against the truth in the
hole (scoring time is not counted). Prints a table of hole PSNR per method and time, the mean of the last three
scores (single scores move by about 0.5 dB between neighbouring points), and the loss terms at the end; asserts
nothing. Several methods run in parallel processes (`--jobs`), each on its own core. Example:

    python bench/flow_payoff.py --composed eval-cpu/composed --clip 00_vtest_dogs-jump --seconds 300 --every 30 \\
        --methods dip-vid,dip-vid-flow,zero=dip-vid-flow:network.flow_init=zero
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def run_method(composed: str, clip: str, label: str, variant: str, overrides: dict, preset: str, seconds: float, every: float,
               seed: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from vinpaint.engine import make_config
    from vinpaint.engine.flow import compute_known_flow, make_estimator
    from vinpaint.engine.train import TrainingData, VideoTrainer, make_noise
    from vinpaint.evaluation.compose import read_set
    from vinpaint.evaluation.metrics import hole_psnr

    chosen = [c for c in read_set(Path(composed)) if c.name == clip]
    frames, holes, truth = chosen[0].frames, chosen[0].masks.astype(bool), chosen[0].truth
    t_count, h, w = holes.shape
    config = make_config(preset, variant, **{"resolution.work_width": w, "resolution.work_height": h,
                                             "loss.perceptual": 0.0, "train.seed": seed, "train.max_steps": 0,
                                             "train.epochs": 1000.0, **overrides})
    work = frames.astype(np.float32) / 255.0
    work[holes] = 0.5
    clock0 = time.process_time()
    known_flow = None
    if config.uses_flow:
        u8 = (work * 255).round().astype(np.uint8)
        known_flow = compute_known_flow(u8, holes, make_estimator(config.flow.estimator, config.flow.dis_preset),
                                        config.flow.occlusion_threshold)
    data = TrainingData(torch.from_numpy(work).permute(0, 3, 1, 2).contiguous(),
                        torch.from_numpy(~holes).float()[:, None], make_noise(t_count, h, w, seed), known_flow)
    trainer = VideoTrainer(config, data, None, torch.device("cpu"))
    truth_f = truth.astype(np.float64) / 255.0
    points: list[tuple[float, int, float]] = []
    excluded = [0.0]
    last = {}

    def score(step: int) -> None:
        t0 = time.process_time()
        images, _ = trainer.generate()
        points.append((t0 - clock0 - excluded[0], step, hole_psnr(images, truth_f, holes)))
        excluded[0] += time.process_time() - t0

    class Stop(Exception):
        pass

    def progress(ev) -> None:
        if ev.phase != "train":
            return
        last.update(ev.losses or {})
        used = time.process_time() - clock0 - excluded[0]
        if used >= every * (len(points) + 1):
            score(ev.step)
            if len(points) * every >= seconds:
                raise Stop

    trainer.run_state.progress = progress
    try:
        trainer.train()
    except Stop:
        pass
    return {"label": label, "points": points, "losses": last}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composed", required=True, type=Path, help="a set written by `vinpaint compose`")
    parser.add_argument("--clip", required=True, help="the name of one clip in that set")
    parser.add_argument("--methods", default="dip-vid,dip-vid-flow")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seconds", type=float, default=300.0, help="training CPU seconds per method")
    parser.add_argument("--every", type=float, default=30.0, help="score every this many CPU seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the curves here")
    args = parser.parse_args()
    if not (args.composed / args.clip / "truth").is_dir():
        print(f"skipped: {args.composed / args.clip} is not a composed clip (no truth/)")
        return 0
    from vinpaint.evaluation.config import MethodSpec, split_methods

    methods = [(m.label, m.variant, dict(m.overrides)) for m in map(MethodSpec.parse, split_methods(args.methods))]
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_method, str(args.composed), args.clip, label, variant, ov, args.preset, args.seconds,
                               args.every, args.seed) for label, variant, ov in methods]
        results = [f.result() for f in futures]
    print(f"{args.clip}: hole PSNR (dB) against training CPU seconds, preset {args.preset}, seed {args.seed}, "
          f"1 torch thread per method, {time.monotonic() - started:.0f} s wall")
    width = max(len(r["label"]) for r in results)
    times = [int(round(args.every * (k + 1))) for k in range(int(args.seconds // args.every))]
    print(" " * width + " | " + " ".join(f"{t:>6}" for t in times) + " | last 3 | steps")
    for r in results:
        cells = " ".join(f"{p[2]:6.2f}" for p in r["points"])
        steps = r["points"][-1][1] if r["points"] else 0
        tail = [p[2] for p in r["points"][-3:]]
        print(f"{r['label']:<{width}} | {cells} | {sum(tail) / max(len(tail), 1):6.2f} | {steps}")
    for r in results:
        terms = ", ".join(f"{k} {v:.4g}" for k, v in sorted(r["losses"].items()))
        print(f"  {r['label']}: last losses: {terms}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
