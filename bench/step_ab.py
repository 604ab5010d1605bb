"""Seconds per training step of several settings ("arms") side by side in one process, interleaved round by round
(A B C, A B C, ...) so that a shared machine's drift hits every arm alike. Prints, per arm, the median wall and
CPU seconds per step and its ratio to the first arm (median and range over the rounds). A benchmark: it prints
numbers and asserts nothing.

    python bench/step_ab.py --set loss.perceptual=0 --arm fp32: --arm bf16:train.precision=bf16

An arm is NAME:key=value,key=value with engine settings, plus two process switches applied only while that arm
runs: torch.threads=N and torch.flush_denormal=true; and torch.adam=loop|foreach|fused picks Adam's
implementation. Every arm trains its own model from the same seed on the
same clip (the engine's procedural sample; its flow from DIS 'ultrafast': the flow's values do not change a
step's cost).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: CPU seconds count work, not spin


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_arm(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        settings[key.strip()] = _value(value.strip())
    return name, settings


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_data(width: int, height: int, frames: int, uses_flow: bool):
    import numpy as np
    import torch

    from vinpaint.engine.composite import resize_frames, resize_holes, to_float
    from vinpaint.engine.flow import compute_known_flow, make_estimator
    from vinpaint.media.sample import SampleConfig, make_sample
    from vinpaint.engine.train import TrainingData, make_noise

    sample = make_sample(SampleConfig(frames=frames, width=width, height=height))
    work = resize_frames(to_float(sample.frames), (width, height))
    holes = resize_holes(sample.masks.astype(bool), (width, height))
    work[holes] = 0.5
    flow = compute_known_flow((work * 255).round().astype(np.uint8), holes, make_estimator("dis", "ultrafast"),
                              0.5) if uses_flow else None
    return TrainingData(torch.from_numpy(work).permute(0, 3, 1, 2).contiguous(),
                        torch.from_numpy(~holes).float()[:, None], make_noise(frames, height, width, 0), flow)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="384x192")
    p.add_argument("--frames", type=int, default=21)
    p.add_argument("--preset", default="paper")
    p.add_argument("--variant", default="dip-vid-flow")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every arm")
    p.add_argument("--arm", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per arm per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per arm first")
    p.add_argument("--device", default="cpu")
    p.add_argument("--vgg-weights", default="random")
    p.add_argument("--json", help="also write the rows here")
    a = p.parse_args(argv)

    import torch

    from vinpaint.engine import make_config
    from vinpaint.engine.perceptual import load_vgg16
    from vinpaint.engine.train import VideoTrainer

    width, height = (int(v) for v in a.size.lower().split("x"))
    common = dict(parse_arm(":" + ",".join(a.set))[1])
    arms = [parse_arm(x) for x in (a.arm or ["default:"])]
    device = torch.device(a.device)
    default_threads = torch.get_num_threads()
    data = None
    trainers = []
    for name, settings in arms:
        engine = {k: v for k, v in {**common, **settings}.items() if not k.startswith("torch.")}
        config = make_config(a.preset, a.variant, **{"resolution.work_width": width,
                                                     "resolution.work_height": height,
                                                     "loss.vgg_weights": a.vgg_weights, "train.max_steps": 0,
                                                     **engine})
        if data is None:
            data = build_data(width, height, a.frames, config.uses_flow)
        vgg = None
        if config.loss.perceptual > 0:
            vgg, _ = load_vgg16(config.loss.vgg_weights, config.train.seed)
            vgg = vgg.to(device) if vgg is not None else None
        trainer = VideoTrainer(config, data, vgg, device)
        if "torch.adam" in settings:  # an optimizer implementation to compare: foreach, fused or loop
            from vinpaint.engine.train import _State

            kind = settings["torch.adam"]
            flags = {"foreach": kind == "foreach", "fused": kind == "fused" or None}
            trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=config.train.learning_rate, **flags)
            trainer.state = _State(trainer.model, trainer.optimizer)
        trainers.append(trainer)

    def switches(settings: dict) -> None:
        torch.set_num_threads(int(settings.get("torch.threads", default_threads)))
        torch.set_flush_denormal(bool(settings.get("torch.flush_denormal", False)))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    position = [0] * len(arms)
    for i, (name, settings) in enumerate(arms):
        switches(settings)
        trainers[i].bench_steps(0, a.warmup)
        position[i] = a.warmup
    wall: list[list[float]] = [[] for _ in arms]
    cpu: list[list[float]] = [[] for _ in arms]
    peak = [0.0] * len(arms)
    for _ in range(a.rounds):
        for i, (name, settings) in enumerate(arms):
            switches(settings)
            sync()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t0, c0 = time.perf_counter(), cpu_seconds()
            trainers[i].bench_steps(position[i], a.steps)
            sync()
            if device.type == "cuda":
                peak[i] = max(peak[i], torch.cuda.max_memory_allocated(device) / 2**20)
            wall[i].append((time.perf_counter() - t0) / a.steps)
            cpu[i].append((cpu_seconds() - c0) / a.steps)
            position[i] += a.steps
    switches({})

    rows = []
    print(f"{a.variant} {width}x{height}, preset {a.preset}, {a.device}, {default_threads} threads by default; "
          f"{a.rounds} rounds x {a.steps} steps per arm after {a.warmup} warm-up steps; common: {common or '-'}")
    print(f"{'arm':<14} {'s/step':>8} {'CPU-s/step':>11} {'wall ratio (range)':>24} {'CPU ratio (range)':>24}")
    for i, (name, settings) in enumerate(arms):
        wr = [w / b for w, b in zip(wall[i], wall[0])]
        cr = [c / b for c, b in zip(cpu[i], cpu[0])]
        row = {"arm": name, "settings": settings, "s_per_step": statistics.median(wall[i]),
               "cpu_s_per_step": statistics.median(cpu[i]), "wall_ratio": statistics.median(wr),
               "wall_ratio_range": [min(wr), max(wr)], "cpu_ratio": statistics.median(cr),
               "cpu_ratio_range": [min(cr), max(cr)], "wall_rounds": wall[i], "cpu_rounds": cpu[i],
               "notices": trainers[i].notices}
        if device.type == "cuda":
            row["peak_gpu_mb"] = peak[i]  # the allocator's peak during this arm's steps (all arms' data resident)
        rows.append(row)
        print(f"{name:<14} {row['s_per_step']:8.3f} {row['cpu_s_per_step']:11.3f} "
              f"{row['wall_ratio']:9.2f} ({min(wr):.2f}-{max(wr):.2f}) {'':>5}"
              f"{row['cpu_ratio']:9.2f} ({min(cr):.2f}-{max(cr):.2f})")
        for notice in trainers[i].notices:
            print(f"  {name}: {notice}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
