"""One check for a GPU machine, in at most about 5 minutes: the engine tests on the device, the training step of
every variant under every speed setting (s/step, peak GPU MB), and hole PSNR against seconds of training. Prints
one table (markdown) at the end and writes it, with the raw rows as JSON, to --out.

    bash bench/gpu_check.sh                       # on the GPU machine (installs nothing; see gpu_check.sh)
    python3 bench/gpu_check.py --device cpu --quick   # the same plumbing on a CPU, small and short

Run it from the repository root. It needs torch, numpy, opencv and pytest; PyAV and pyzmq are not needed (a
stand-in for PyAV is put on the path when it is missing, since the procedural sample clip imports the writers).
Numbers are printed, never asserted: a failing test shows in the table as failed, and the script goes on.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SPEED_ARMS = [
    ("default", {}),
    ("nondeterministic", {"train.deterministic": False}),
    ("tf32", {"train.precision": "tf32"}),
    ("bf16", {"train.precision": "bf16"}),
    ("channels_last+bf16", {"train.channels_last": True, "train.precision": "bf16"}),
    ("graph", {"train.capture": "graph"}),
    ("graph+tf32", {"train.capture": "graph", "train.precision": "tf32"}),
    ("graph+bf16", {"train.capture": "graph", "train.precision": "bf16"}),
    ("4 batches/step", {"train.batches_per_step": 4}),
    ("graph+bf16+4 b/s", {"train.capture": "graph", "train.precision": "bf16", "train.batches_per_step": 4}),
]
"""Speed settings timed side by side on each variant (bench/step_ab.py); compile is added by --compile."""

MODEL_VARIANTS = [
    ("dip-vid-flow+perceptual", "dip-vid-flow", {"loss.perceptual": 0.01}),
    ("dip-vid-flow", "dip-vid-flow", {"loss.perceptual": 0.0}),
    ("dip-vid", "dip-vid", {"loss.perceptual": 0.0}),
    ("dip-vid-3dcn", "dip-vid-3dcn", {"loss.perceptual": 0.0}),
]


AV_STAND_IN = {
    "__init__.py": "class FFmpegError(Exception):\n    pass\n\n\n"
                   "def open(*args, **kwargs):\n    raise FFmpegError('PyAV is not installed on this machine')\n",
    "logging.py": "ERROR = 16\n",
    "sidedata/__init__.py": "",
    "sidedata/sidedata.py": "",
    "video/__init__.py": "",
    "video/reformatter.py": "class Colorspace:\n    ITU709 = 1\n\n\nclass ColorRange:\n    MPEG = 1\n",
}
"""Every name vinpaint's modules take from PyAV when they are imported: a machine without PyAV still imports them
(video files are then refused when opened), so the engine's rows run."""


def stand_in_av(folder: Path) -> Path:
    """Writes the stand-in package under `folder` (put it on PYTHONPATH) and returns the folder."""
    for name, text in AV_STAND_IN.items():
        path = folder / "av" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def _env(device: str) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VINPAINT_TEST_DEVICE": device, "PYTHONWARNINGS": "ignore"}
    try:
        import av  # noqa: F401
    except ImportError:
        stub = stand_in_av(Path(tempfile.gettempdir()) / "vinpaint_stub_av")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), str(stub)]))
    return env


def _run(cmd: list[str], env: dict, timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out + f"\n(timed out after {timeout:.0f} s)", time.monotonic() - started


def run_tests(device: str, quick: bool, timeout: float) -> dict:
    files = ["tests/test_train_speed.py"] if quick else \
        ["tests/test_engine_e2e.py", "tests/test_train_speed.py", "tests/test_engine_units.py"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow", *files]
    if quick:
        cmd += ["-k", "reading_losses or late_read_back or gather_warp or graph_capture"]
    code, out, seconds = _run(cmd, _env(device), timeout)
    summary = next((line for line in reversed(out.splitlines()) if " passed" in line or " failed" in line
                    or " error" in line), out.strip().splitlines()[-1] if out.strip() else "no output")
    failed = [line for line in out.splitlines() if line.startswith("FAILED") or line.startswith("ERROR")]
    return {"returncode": code, "summary": summary.strip("= "), "failed": failed, "seconds": seconds,
            "tail": out[-3000:] if code else ""}


def run_step_bench(device: str, quick: bool, compile_too: bool, timeout: float) -> list[dict]:
    size, frames = ("128x64", 21) if quick else ("384x192", 25)
    rounds, steps, warmup = (2, 1, 1) if quick else (3, 10, 3)
    arms = SPEED_ARMS + ([("compile", {"train.capture": "compile"})] if compile_too else [])
    if quick:
        arms = [a for a in arms if a[0] in ("default", "bf16", "graph", "4 batches/step")]
    if not bf16_units(device):  # a GPU before Ampere emulates bf16 (or fails): one such arm lost the variant's row
        arms = [a for a in arms if a[1].get("train.precision") != "bf16"]
    rows = []
    # the heaviest and the lightest variant: a step-bench process (torch, CUDA, ten trainers, graph captures) needs
    # about half a minute, and a variant cut off by its timeout gives no row at all
    variants = [MODEL_VARIANTS[0], MODEL_VARIANTS[2]] if not quick else MODEL_VARIANTS[1:3]
    deadline = time.monotonic() + timeout  # the whole step bench: each variant gets its share of what is left
    for done, (label, variant, base) in enumerate(variants):
        each = max(10.0 if quick else 40.0, (deadline - time.monotonic()) / (len(variants) - done))
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out_json = f.name
        cmd = [sys.executable, str(ROOT / "bench" / "step_ab.py"), "--device", device, "--size", size, "--frames",
               str(frames), "--variant", variant, "--preset", "tiny" if quick else "paper",
               "--rounds", str(rounds), "--steps", str(steps), "--warmup", str(warmup), "--json", out_json]
        for key, value in {**base, "propagation.enabled": False}.items():
            cmd += ["--set", f"{key}={json.dumps(value)}"]
        for name, settings in arms:
            cmd += ["--arm", name.replace(":", "") + ":" + ",".join(f"{k}={json.dumps(v)}" for k, v in
                                                                    settings.items())]
        code, out, seconds = _run(cmd, _env(device), each)
        if code != 0:
            rows.append({"variant": label, "arm": "(all)", "error": out.strip().splitlines()[-1] if out else "?"})
            continue
        for row in json.loads(Path(out_json).read_text())["rows"]:
            per_step = row["settings"].get("train.batches_per_step", 1)
            rows.append({"variant": label, "arm": row["arm"], "s_per_step": row["s_per_step"],
                         "s_per_batch": row["s_per_step"] / per_step, "ratio": row["wall_ratio"],
                         "peak_gpu_mb": row.get("peak_gpu_mb"), "notices": row["notices"]})
    return rows


def run_dip(device: str, quick: bool, timeout: float) -> dict:
    """DIP (batch 1, a network per frame) through `vinpaint bench`'s worker: s/step and peak memory."""
    cfg = {"width": 128 if quick else 384, "height": 64 if quick else 192, "frames": 3, "steps": 3 if quick else 20,
           "warmup": 1 if quick else 3, "variants": ["dip"], "preset": "tiny" if quick else "paper",
           "vgg_weights": "random", "device": device, "threads": 0, "overrides": {"loss.perceptual": 0.0},
           "label": "dip (batch 1)"}
    cmd = [sys.executable, "-m", "vinpaint.evaluation.bench", "--worker", "dip", "--config", json.dumps(cfg)]
    code, out, _ = _run(cmd, _env(device), timeout)
    if code != 0:
        return {"variant": "dip (batch 1)", "arm": "default", "error": out.strip().splitlines()[-1] if out else "?"}
    row = json.loads(out.strip().splitlines()[-1])
    return {"variant": "dip (batch 1)", "arm": "default", "s_per_step": row["seconds_per_step"],
            "s_per_batch": row["seconds_per_step"], "ratio": 1.0, "peak_gpu_mb": row.get("peak_gpu_mb"),
            "notices": []}


QUALITY_ARMS = [("default", {}), ("graph+bf16", {"train.capture": "graph", "train.precision": "bf16"}),
                ("graph+bf16+4 b/s", {"train.capture": "graph", "train.precision": "bf16",
                                      "train.batches_per_step": 4})]


def run_quality(device: str, quick: bool, seconds: float, timeout: float) -> list[dict]:
    """Hole PSNR of dip-vid-flow on the procedural sample (its true background is known) after `seconds` of
    training, per speed setting: what the speed buys in quality per second."""
    code = f"""
import json, sys, numpy as np
from vinpaint.engine import inpaint, make_config
from vinpaint.media.sample import SampleConfig, make_sample
quick, seconds, device = {quick!r}, {seconds!r}, {device!r}
arms = {(QUALITY_ARMS[:2] if quick else QUALITY_ARMS) if bf16_units(device) else QUALITY_ARMS[:1]!r}
w, h = (128, 64) if quick else (384, 192)
s = make_sample(SampleConfig(frames=25, width=w, height=h))
rows = []
for name, settings in arms:
    config = make_config("tiny" if quick else "fast", "dip-vid-flow", **{{
        "resolution.work_width": w, "resolution.work_height": h, "loss.perceptual": 0.0,
        "propagation.enabled": False, "propagation.self_check": False, "train.fit_seconds": 0.0,
        "train.max_steps": 0, "train.epochs": 1000.0, "train.max_seconds": seconds, **settings}})
    r = inpaint(s.frames, s.masks, config, device=device)
    hole = r.hole
    err = ((r.frames.astype(np.float64) - s.background.astype(np.float64)) / 255.0) ** 2
    print("ROW " + json.dumps({{"arm": name, "seconds": r.seconds, "steps": r.steps,
                               "hole_psnr": float(10 * np.log10(1.0 / err[hole].mean()))}}), flush=True)
"""
    rc, out, _ = _run([sys.executable, "-c", code], _env(device), timeout)
    rows = [json.loads(line[4:]) for line in out.splitlines() if line.startswith("ROW ")]  # the arms that finished
    if rc != 0:
        rows.append({"arm": "(the rest)", "error": out.strip().splitlines()[-1] if out.strip() else "?"})
    return rows


def bf16_units(device: str) -> bool:
    """Whether the device multiplies bf16 natively: a CUDA GPU of compute capability 8.0 (Ampere) or later; a CPU is
    left to the engine's own choice (the quick plumbing check runs its bf16 arm)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return True
    return torch.cuda.get_device_capability(torch.device(device).index or 0)[0] >= 8


def environment(device: str) -> str:
    import torch

    line = f"torch {torch.__version__}"
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.device(device).index or 0)
        line += f", {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, " \
                f"cuDNN {torch.backends.cudnn.version()}"
    else:
        line += f", CPU, {torch.get_num_threads()} threads"
    return line


def table(env_line: str, tests: dict, steps: list[dict], quality: list[dict], args, wall: float) -> str:
    lines = [f"# GPU check ({args.device}{', quick' if args.quick else ''}): {env_line}", "",
             f"Engine tests (test_train_speed on {args.device}, the others on the engine's default device, cuda:0 "
             f"where there is a GPU): {tests['summary']} ({tests['seconds']:.0f} s)"]
    lines += [f"- {f}" for f in tests["failed"]]
    lines += ["", "| variant | setting | s/step | s/batch | vs default | peak GPU MB |", "|---|---|---|---|---|---|"]
    for r in steps:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['arm']} | failed: {r['error'][:80]} | | | |")
            continue
        mb = f"{r['peak_gpu_mb']:.0f}" if r.get("peak_gpu_mb") is not None else "-"
        note = " (fell back: " + r["notices"][0][:60] + ")" if r.get("notices") else ""
        lines.append(f"| {r['variant']} | {r['arm']}{note} | {r['s_per_step']:.4f} | {r['s_per_batch']:.4f} | "
                     f"{r['ratio']:.2f} | {mb} |")
    lines += ["", f"Hole PSNR of dip-vid-flow on the procedural sample after {args.quality_seconds:g} s of training:",
              "", "| setting | seconds | steps | hole PSNR dB |", "|---|---|---|---|"]
    for r in quality:
        if "error" in r:
            lines.append(f"| {r['arm']} | failed: {r['error'][:80]} | | |")
        else:
            lines.append(f"| {r['arm']} | {r['seconds']:.1f} | {r['steps']} | {r['hole_psnr']:.2f} |")
    lines += ["", f"Whole check: {wall:.0f} s. s/batch is s/step divided by the batches one step trains; peak GPU MB "
              "is the allocator's peak while that setting ran (the data of every setting stays resident)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes and few steps (a CPU check of the plumbing)")
    p.add_argument("--compile", action="store_true", help="also time train.capture=compile (slow to build)")
    p.add_argument("--quality-seconds", type=float, default=None, help="training seconds per quality run")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--budget", type=float, default=300.0, help="seconds the whole check aims to stay within")
    p.add_argument("--out", default=os.environ.get("OUT", "") or str(ROOT / "out" / "gpu_check"))
    args = p.parse_args(argv)
    if args.quality_seconds is None:
        args.quality_seconds = 3.0 if args.quick else 20.0
    started = time.monotonic()
    env_line = environment(args.device)
    print(env_line, flush=True)
    tests = {"summary": "skipped", "failed": [], "seconds": 0.0} if args.skip_tests else \
        run_tests(args.device, args.quick, 600 if args.quick else 120)
    print("tests:", tests["summary"], flush=True)
    if tests.get("tail"):
        print(tests["tail"], flush=True)
    def left(share: float, cap: float) -> float:  # seconds for a section: its cap, within what the budget has left
        return max(10.0, min(cap, (args.budget - (time.monotonic() - started)) * share))

    steps = run_step_bench(args.device, args.quick, args.compile, 900 if args.quick else left(0.2, 75))
    steps.append(run_dip(args.device, args.quick, 600 if args.quick else left(0.2, 45)))
    print(f"step benchmark: {len(steps)} rows", flush=True)
    quality = run_quality(args.device, args.quick, args.quality_seconds, 900 if args.quick else left(1.0, 150))
    text = table(env_line, tests, steps, quality, args, time.monotonic() - started)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.md").write_text(text)
    (out / "gpu_check.json").write_text(json.dumps({"env": env_line, "tests": tests, "steps": steps,
                                                    "quality": quality, "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
