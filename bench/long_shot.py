"""Long shots (issue 14): is memory flat in the shot's length, can the join between windows be seen, and how many
shots an hour do one and two Ray workers get through on this machine.

    python bench/long_shot.py [--lengths 200 2000] [--size 160x96] [--skip-memory] [--skip-join] [--skip-ray]
                              [--cluster]

Memory: a clip of each length is rendered (media/sample.py: a panning scene and a ball to remove) and written as
lossless video files, then `vinpaint inpaint` runs on them in a fresh process (tiny preset, 2 steps per window,
propagation off so every window trains) and that process's peak RSS is read from the kernel (wait4). The whole
shot at once (shot.window above its length) is measured beside it for the shorter clip.
Join: a 200-frame clip with `fast` at 60 steps per window (propagation on, then off), in windows and as one
window; the temporal error (how far the change between two consecutive output frames is from the true
background's change, inside the hole) of frame pairs touching an overlap against the others, plus PSNR in the hole;
a temporal slice through the first join (propagation off) is saved to docs/images/long_shot_join_slice.png.
Ray: the same 4-window shot (tiny, 20 steps, propagation off) with 1 and 2 local Ray workers, wall time per shot
(Ray's start-up not counted, it is printed apart) and shots per hour.
Cluster (--cluster, on its own): the user's path end to end. `ray start --head` starts a Ray cluster of this one
machine (its own processes, as on a head node), then `vinpaint inpaint ... --ray 127.0.0.1:PORT --ray-cpus 1`
sends the same 4-window shot to it as a command, next to the same command without Ray; both outputs are read
back and compared. Nothing here asserts a number.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"


def render(folder: Path, frames: int, size: tuple[int, int]) -> None:
    """The sample clip and its mask as FFV1 videos (done in a child so its memory is not the run's)."""
    code = ("import sys, numpy as np; from pathlib import Path; "
            "from vinpaint.media.sample import SampleConfig, make_sample; "
            "from vinpaint.media.writers import write_video; "
            f"s = make_sample(SampleConfig(frames={frames}, width={size[0]}, height={size[1]}, seed=1)); "
            "f = Path(sys.argv[1]); write_video(f / 'clip.mkv', s.frames, 25); "
            "write_video(f / 'mask.mkv', np.repeat((s.masks * 255).astype(np.uint8)[..., None], 3, axis=3), 25)")
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True)


def peak_rss_mb(args: list[str]) -> tuple[float, float, int]:
    """Run `vinpaint ARGS` in a fresh process -> (its peak RSS in MB, its wall seconds, its exit code)."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "vinpaint", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "2"})
    _, status, usage = os.wait4(proc.pid, 0)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(stderr[-2000:], file=sys.stderr)
    return usage.ru_maxrss / 1024, time.monotonic() - start, code


def memory(lengths: list[int], size: tuple[int, int]) -> None:
    print(f"peak memory of `vinpaint inpaint` (tiny, 2 steps per window, window 100, overlap 10, {size[0]}x{size[1]})")
    common = ["--preset", "tiny", "--quiet", "--set", "train.max_steps=2", "--set", "propagation.enabled=false",
              "--device", "cpu"]
    results = {}
    for count in lengths:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            render(folder, count, size)
            inputs = [str(folder / "clip.mkv"), "-m", str(folder / "mask.mkv")]
            rss, wall, code = peak_rss_mb(["inpaint", *inputs, "-o", str(folder / "out.mkv"), *common])
            results[count] = rss
            print(f"  {count:5d} frames in windows: peak RSS {rss:7.0f} MB, {wall:6.0f} s, exit {code}")
            if count == min(lengths):
                rss, wall, code = peak_rss_mb(["inpaint", *inputs, "-o", str(folder / "whole.mkv"), *common,
                                               "--set", f"shot.window={count}"])
                print(f"  {count:5d} frames as one clip: peak RSS {rss:7.0f} MB, {wall:6.0f} s, exit {code}")
    if len(results) > 1:
        low, high = results[min(results)], results[max(results)]
        print(f"  {max(results)} against {min(results)} frames: {100 * (high / low - 1):+.1f}% peak memory")


def join(size: tuple[int, int], propagation: bool) -> None:
    """The same 200 frames in windows and as one window: temporal error and PSNR at the frames that touch an overlap
    against the others, for both, so the join's own cost is told apart from those frames being harder."""
    import torch

    from vinpaint.engine import make_config
    from vinpaint.media.sample import SampleConfig, make_sample
    from vinpaint.engine.shot import ArraySource, SerialRunner, inpaint_shot, plan_windows

    torch.set_num_threads(2)
    count = 200
    sample = make_sample(SampleConfig(frames=count, width=size[0], height=size[1], seed=1))
    outputs = {}
    for name, window in (("windows", 0), ("one window", count)):
        extra = {"shot.window": window} if window else {}
        config = make_config("fast", "dip-vid-flow", **{"train.max_steps": 60, "propagation.enabled": propagation},
                             **extra)
        out = np.zeros_like(sample.frames)
        start = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            inpaint_shot(ArraySource(sample.frames, sample.masks), config, Path(tmp),
                         lambda i, f, m: out.__setitem__(i, f), runner=SerialRunner())
        outputs[name] = out
        if not window:
            windows = plan_windows(count, config.shot.window, config.shot.overlap)
            print(f"join: 200 frames, fast preset at 60 steps per window, propagation {'on' if propagation else 'off'}"
                  f", {len(windows)} windows "
                  f"({', '.join(f'{w.start}-{w.stop - 1}' for w in windows)}), {time.monotonic() - start:.0f} s")
    shared = set()
    for a, b in zip(windows, windows[1:]):
        shared |= set(range(b.start, a.stop))
    for name, out in outputs.items():
        errors, psnrs = _scores(out, sample.background, sample.masks.astype(bool), shared)
        print(f"  {name:10s}: temporal error in the hole {np.mean(errors['join']):.2f} / 255 at the "
              f"{len(errors['join'])} frame pairs touching an overlap, {np.mean(errors['interior']):.2f} at the other "
              f"{len(errors['interior'])}; PSNR in the hole {np.mean(psnrs['join']):.2f} dB / "
              f"{np.mean(psnrs['interior']):.2f} dB")
    if not propagation:  # the model's own fill: what a join between two trained windows looks like
        save_slice(outputs["windows"], outputs["one window"], sample.background, sample.masks.astype(bool),
                   windows)


def _scores(out: np.ndarray, truth: np.ndarray, hole: np.ndarray, shared: set[int]):
    """Temporal error of each frame pair (how far the change between two consecutive output frames is from the
    true background's change, mean over the hole of either) and hole PSNR of each frame, split into join/interior."""
    from vinpaint.evaluation.metrics import psnr

    got, real = out.astype(np.float64), truth.astype(np.float64)
    errors: dict[str, list[float]] = {"join": [], "interior": []}
    psnrs: dict[str, list[float]] = {"join": [], "interior": []}
    for t in range(len(out) - 1):
        region = hole[t] | hole[t + 1]
        if region.any():
            error = np.abs((got[t + 1] - got[t]) - (real[t + 1] - real[t]))[region].mean()
            errors["join" if t in shared or t + 1 in shared else "interior"].append(float(error))
    for t in range(len(out)):
        if hole[t].any():
            psnrs["join" if t in shared else "interior"].append(psnr(out[t], truth[t], hole[t]))
    return errors, psnrs


def save_slice(windows_out: np.ndarray, whole_out: np.ndarray, truth: np.ndarray, hole: np.ndarray,
               windows) -> None:
    """x-t slices (one image row through the hole, time downwards) around the first join: in windows, as one
    window, and the true background; red ticks mark the first and last frame the two windows share."""
    from vinpaint.media.writers import write_png

    first, second = windows[0], windows[1]
    t0, t1 = max(0, second.start - 20), min(len(truth), first.stop + 20)
    ys = np.nonzero(hole[second.start:first.stop].any(axis=(0, 2)))[0]
    y = int(ys[len(ys) // 2])
    marks = np.zeros((t1 - t0, 6, 3), np.uint8)
    for t in (second.start, first.stop - 1):
        marks[t - t0] = (255, 0, 0)
    gap = np.full((t1 - t0, 4, 3), 255, np.uint8)
    parts = [marks]
    for frames in (windows_out, whole_out, truth):
        parts += [frames[t0:t1, y], gap]
    picture = np.concatenate(parts[:-1], axis=1)
    picture = np.repeat(np.repeat(picture, 3, axis=0), 3, axis=1)
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / "long_shot_join_slice.png"
    write_png(path, picture)
    print(f"  temporal slice at row {y}, frames {t0}-{t1 - 1} (windows | one window | truth): "
          f"{path.relative_to(ROOT)}")


def ray_throughput(size: tuple[int, int]) -> None:
    import ray

    from vinpaint.engine import make_config
    from vinpaint.media.sample import SampleConfig, make_sample
    from vinpaint.engine.shot import ArraySource, inpaint_shot
    from vinpaint.engine.shot_ray import RayRunner

    sample = make_sample(SampleConfig(frames=40, width=size[0], height=size[1], seed=1))
    config = make_config("tiny", "dip-vid-flow", **{"train.max_steps": 20, "propagation.enabled": False,
                                                   "shot.window": 16, "shot.overlap": 8})
    print("Ray: one shot of 40 frames in 4 windows (tiny, 20 steps per window, propagation off)")
    for workers in (1, 2):
        start = time.monotonic()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        started = time.monotonic() - start
        walls = []
        for _ in range(2):
            with tempfile.TemporaryDirectory() as tmp:
                begin = time.monotonic()
                inpaint_shot(ArraySource(sample.frames, sample.masks), config, Path(tmp), lambda *a: None,
                             runner=RayRunner(device="cpu", threads=max(1, 2 // workers)))
                walls.append(time.monotonic() - begin)
        ray.shutdown()
        wall = min(walls)
        print(f"  {workers} worker{'s' if workers > 1 else ''}: {wall:.1f} s per shot (best of 2; Ray start-up "
              f"{started:.1f} s), {3600 / wall:.0f} shots per hour")


def cluster(size: tuple[int, int]) -> None:
    from vinpaint.media.io import read_clip

    port = 6391
    common = ["--preset", "tiny", "--quiet", "--set", "train.max_steps=20", "--set", "propagation.enabled=false",
              "--set", "shot.window=16", "--set", "shot.overlap=8"]
    print("cluster: `ray start --head` on this machine (2 CPUs), then the command with --ray 127.0.0.1:PORT")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        render(folder, 40, size)
        inputs = [str(folder / "clip.mkv"), "-m", str(folder / "mask.mkv")]
        # `ray start` turns token authentication on (Ray 2.59+); a client must then ask for it
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
        begin = time.monotonic()
        subprocess.run(["ray", "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                        "--disable-usage-stats"], check=True, stdout=subprocess.DEVNULL, env=env)
        print(f"  ray start --head: {time.monotonic() - begin:.1f} s")
        try:
            runs = {}
            for name, extra in (("serial", []), ("cluster", ["--ray", f"127.0.0.1:{port}", "--ray-cpus", "1"])):
                begin = time.monotonic()
                # one torch thread in both, as the cluster's 1-core windows: float sums then agree bit for bit
                code = subprocess.run([sys.executable, "-m", "vinpaint", "inpaint", *inputs, "-o",
                                       str(folder / f"{name}.mkv"), *common, *extra], env={**env, "OMP_NUM_THREADS": "1"},
                                      stdout=subprocess.DEVNULL).returncode
                runs[name] = read_clip(folder / f"{name}.mkv").frames if code == 0 else None
                print(f"  {name:8s}: {time.monotonic() - begin:5.1f} s for the command, exit {code}")
        finally:
            subprocess.run(["ray", "stop", "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if all(v is not None for v in runs.values()):
        diff = np.abs(runs["serial"].astype(int) - runs["cluster"].astype(int))
        print(f"  outputs: {runs['cluster'].shape[0]} frames each; largest difference {diff.max()} /255, "
              f"{100 * np.mean(diff > 0):.2f}% of values differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--size", default="160x96")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-join", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--cluster", action="store_true", help="only the cluster run (needs the ray command)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    if args.cluster:
        return cluster(size)
    if not args.skip_memory:
        memory(args.lengths, size)
    if not args.skip_join:
        join(size, propagation=True)
        join(size, propagation=False)
    if not args.skip_ray:
        ray_throughput(size)


if __name__ == "__main__":
    main()
