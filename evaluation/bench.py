"""Benchmark: seconds per training step and peak memory of each variant at a given working size.

A benchmark prints numbers; it never asserts on them. Each variant runs in its own process so its peak memory
(RSS on a CPU, allocator peak on a GPU) is its own. The clip is the engine's procedural sample, so the benchmark
needs no data files. The perceptual loss uses random VGG16 weights unless real ones are given: same compute.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vinpaint.errors import InputError
from vinpaint.files import atomic_write_text
from vinpaint.evaluation.config import MAX_THREADS
from vinpaint.engine import inpaint, make_config, validate as check_inputs
from vinpaint.engine.config import LIMITS, STEPS_ALONE
from vinpaint.media.sample import SampleConfig, make_sample

ALL_VARIANTS = ["dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow"]
MAX_FRAMES = 200
"""Longest benchmark clip: a step's time hardly depends on the clip beyond one batch, and the procedural clip is
rendered whole, in every worker."""


@dataclass
class BenchConfig:
    """What to measure."""

    width: int = 384
    """Working width (the paper's 384x192)."""
    height: int = 192
    frames: int = 25
    """Clip length: 21 frames at least, for the flow variant's interval-5 batches."""
    steps: int = 12
    """Timed training steps per variant (after the warm-up)."""
    warmup: int = 3
    """Untimed first steps (allocator and thread-pool warm-up)."""
    variants: list[str] = field(default_factory=lambda: list(ALL_VARIANTS))
    preset: str = "paper"
    vgg_weights: str = "random"
    """'random' times the perceptual loss with random weights; '' uses real weights when present, else skips it."""
    device: str = ""
    """'' picks CUDA when present, else CPU."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    overrides: dict = field(default_factory=dict)
    """Engine settings on top of the preset, e.g. {"train.precision": "bf16", "loss.perceptual": 0}
    (train.readback_every is set to 1 whatever they say: each step is timed by its own read-back)."""
    label: str = ""
    """Names the row when overrides are given (default: the variant)."""

    def validate(self) -> None:
        """Refuse, naming the option, what a worker would otherwise fail on (or time as NaN) after torch loaded."""
        if not self.variants:
            raise InputError(f"--variants names no variant; choose from {', '.join(ALL_VARIANTS)}.")
        unknown = [v for v in self.variants if v not in ALL_VARIANTS]
        if unknown:
            raise InputError(f"unknown variant {unknown[0]!r}; choose from {', '.join(ALL_VARIANTS)}.")
        if self.steps < 1:
            raise InputError(f"--steps must be at least 1 (the benchmark needs at least one timed step), "
                             f"not {self.steps}.")
        if self.warmup < 0:
            raise InputError(f"--warmup must be 0 or more, not {self.warmup}.")
        if not 2 <= self.frames <= MAX_FRAMES:
            raise InputError(f"--frames must be from 2 to {MAX_FRAMES}, not {self.frames}.")
        width, height = LIMITS["resolution.work_width"], LIMITS["resolution.work_height"]
        if any(v % 64 or not 64 <= v <= min(width.hi, height.hi) for v in (self.width, self.height)):
            raise InputError(f"--size {self.width}x{self.height} is not an engine working size: width and height "
                             f"must be multiples of 64 from 64 to {min(width.hi, height.hi)}.")
        if not 0 <= self.threads <= MAX_THREADS:  # 10**11 was torch's OverflowError (a hunt, 2026-12-03)
            raise InputError(f"--threads must be from 0 (torch's choice) to {MAX_THREADS}, not {self.threads}.")
        from vinpaint.engine.devices import check_device

        check_device(self.device or None)
        if self.warmup == 0 and self.steps < 2:  # the clock starts when a step ends: one step alone is NaN s/step
            raise InputError("--steps must be at least 2 with --warmup 0 (the end of the first step starts the "
                             "clock), not 1.")
        sample = make_sample(SampleConfig(frames=2, width=self.width, height=self.height))
        for v in self.variants:  # what the engine refuses (dip below 128x64, a --vgg-weights file...)
            try:
                check_inputs(sample.frames, sample.masks, engine_config(v, self))
            except InputError as err:
                raise InputError(f"--variants {v} cannot be benchmarked with these settings: {err}") from None


def cpu_seconds() -> float:
    """CPU time of this process, all threads, user + system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(variant: str, cfg: BenchConfig) -> dict:
    """Train one variant for warmup+steps steps in this process; return its timings and peak memory. The torch
    thread count is the caller's again afterwards."""
    import torch

    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _measure(variant, cfg)
    finally:
        torch.set_num_threads(previous)


def engine_config(variant: str, cfg: BenchConfig):
    """The engine settings one variant is timed with (also checked before any worker starts)."""
    config = make_config(cfg.preset, variant, **{
        "resolution.work_width": cfg.width, "resolution.work_height": cfg.height,
        "train.max_steps": cfg.warmup + cfg.steps, **STEPS_ALONE,
        "train.checkpoint_every_s": 86400.0, "loss.vgg_weights": cfg.vgg_weights,
        # training steps at this size are what is timed: propagation could leave none, a crop would shrink them
        "propagation.enabled": False, "propagation.self_check": False, "resolution.crop_to_hole": False})
    if cfg.overrides:
        config = config.replace(**cfg.overrides)
    # The losses of every step are read back at once (one device sync per step), so each step's progress event
    # comes when that step has run. At the trainer's default on CUDA (every 20 steps) a short benchmark's steps
    # all came back in one burst at the end, with no two read-backs to time between: NaN s/step.
    return config.replace(**{"train.readback_every": 1})


def _measure(variant: str, cfg: BenchConfig) -> dict:
    import torch

    sample = make_sample(SampleConfig(frames=cfg.frames, width=cfg.width, height=cfg.height))
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if device.startswith("cuda"):
        torch.cuda.init()  # an explicit index (cuda:1) is not initialised by the reset itself, which then fails
        torch.cuda.reset_peak_memory_stats(device)  # the run's device: without one, torch reads cuda:0
    config = engine_config(variant, cfg)
    times: list[tuple[int, float]] = []
    flow_s = [0.0]

    def progress(ev) -> None:
        if ev.phase == "train":
            times.append((ev.step, time.perf_counter(), cpu_seconds()))
        elif ev.phase == "flow":
            flow_s[0] = ev.elapsed_s

    start = time.perf_counter()
    result = inpaint(sample.frames, sample.masks, config, progress=progress, device=device)
    wall = time.perf_counter() - start
    # Time from the last event of one burst (the read-back that ended it) to the last of another, and divide by
    # the steps between; with a read-back every step, each event is its own burst.
    ends = [e for i, e in enumerate(times) if i + 1 == len(times) or times[i + 1][1] - e[1] > 1e-3]
    ends = [e for e in ends if e[0] >= cfg.warmup] or ends[-1:]
    n = ends[-1][0] - ends[0][0]
    per_step = (ends[-1][1] - ends[0][1]) / n if n > 0 else float("nan")
    cpu_per_step = (ends[-1][2] - ends[0][2]) / n if n > 0 else float("nan")
    out = {
        "variant": variant, "label": cfg.label or variant, "overrides": cfg.overrides, "device": device,
        "threads": torch.get_num_threads(),
        "size": f"{cfg.width}x{cfg.height}", "frames": cfg.frames,
        "batch": 1 if variant == "dip" else config.train.batch_size,
        "seconds_per_step": per_step, "cpu_seconds_per_step": cpu_per_step, "flow_seconds": flow_s[0],
        "wall_seconds": wall, "steps": result.steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "rss_before_mb": rss_before, "notices": result.notices,
    }
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_all(cfg: BenchConfig, echo=print) -> list[dict]:
    """Each variant in a fresh process (so peak memory is per variant); returns the rows."""
    cfg.validate()  # every option, before the first worker process (each loads torch)
    rows = []
    for v in cfg.variants:
        cmd = [sys.executable, "-m", "vinpaint.evaluation.bench", "--worker", v, "--config", json.dumps(asdict(cfg))]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"benchmarking {v} failed: {tail}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        echo(format_row(row))
    return rows


def format_row(r: dict) -> str:
    gpu = f", peak GPU {r['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in r else ""
    return (f"{r.get('label', r['variant']):<13} {r['size']} batch {r['batch']}: {r['seconds_per_step']:.3f} s/step on {r['device']} "
            f"({r['threads']} threads; {r['cpu_seconds_per_step']:.3f} CPU-s/step), flow estimation "
            f"{r['flow_seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
            f"(before training {r['rss_before_mb']:.0f} MB){gpu}")


def write_markdown(rows: list[dict], cfg: BenchConfig, path: Path) -> None:
    """A small table beside the JSON, with the settings in its header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, markdown(rows, cfg))  # whole or not at all, never a user's file half-replaced


def markdown(rows: list[dict], cfg: BenchConfig, footer: str = "") -> str:
    """The table's text; `footer`, a last line (the writer's mark)."""
    lines = [f"# Training-step benchmark ({cfg.width}x{cfg.height}, {cfg.frames} frames, preset {cfg.preset}, "
             f"perceptual VGG: {cfg.vgg_weights or 'real or off'})", "",
             "| variant | batch | s/step | CPU-s/step | steps/min | flow s | peak RSS MB | peak GPU MB | device |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.get('label', r['variant'])} | {r['batch']} | {r['seconds_per_step']:.3f} | "
                     f"{r['cpu_seconds_per_step']:.3f} | {60 / r['seconds_per_step']:.0f} | "
                     f"{r['flow_seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                     f"{format(r['peak_gpu_mb'], '.0f') if 'peak_gpu_mb' in r else '-'} | "  # none on a CPU, not nan
                     f"{r['device']} ({r['threads']} thr) |")
    lines += ["", "DIP steps are single-frame iterations (a fresh network per frame); the others are batches of N "
              "frames. Numbers from one machine; nothing here is asserted."] + ([footer] if footer else [])
    return "\n".join(lines) + "\n"


def _worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--config", required=True)
    a = p.parse_args(argv)
    cfg = BenchConfig(**json.loads(a.config))
    try:
        row = measure(a.worker, cfg)
    except InputError as err:  # the parent shows the last line: the sentence, not "vinpaint.errors.InputError: "
        print(err, file=sys.stderr)
        return 2
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
