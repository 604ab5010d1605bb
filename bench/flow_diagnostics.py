"""Why (and when) do the flow terms pay off? Train variants on one composed clip and watch them step by step.

For each method, one training run is paused at the given step counts (evaluation.runner; a paused run equals an
uninterrupted one of that length). At each pause it records the hole PSNR, the CPU seconds spent, and for flow
variants how good the *generated* flow is inside the hole, against a reference flow estimated on the ground-truth
background (which the method never sees). A research benchmark: it prints and plots, it asserts nothing.

    python bench/flow_diagnostics.py --data ../shared/data -o /tmp/flowdiag \
        --background bg/vtest --mask-source dogs-jump --steps 50,100,200,400 \
        --methods dip-vid,dip-vid-flow,"t1=dip-vid-flow:train.intervals=[1]"
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    from vinpaint.evaluation import compose, metrics
    from vinpaint.evaluation.config import MethodSpec, split_methods
    from vinpaint.evaluation.runner import EngineJob, StopPoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--background", default="bg/vtest")
    p.add_argument("--mask-source", default="dogs-jump")
    p.add_argument("--frames", type=int, default=22)
    p.add_argument("--size", default="128x64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="fast")
    p.add_argument("--steps", default="50,100,200,400")
    p.add_argument("--methods", default="dip-vid,dip-vid-flow")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="engine KEY=VALUE for every method")
    a = p.parse_args(argv)

    w, h = (int(v) for v in a.size.lower().split("x"))
    out = a.output
    out.mkdir(parents=True, exist_ok=True)
    cfg = compose.ComposeConfig(seed=a.seed, count=1, frames=a.frames, width=w, height=h,
                                backgrounds=[a.background], mask_sources=[a.mask_source])
    manifest = compose.make_manifest(a.data, cfg)
    clip = compose.build_clip(a.data, manifest, manifest["clips"][0])
    steps = sorted(int(s) for s in a.steps.split(","))
    overrides = {}
    for item in a.set:
        k, _, v = item.partition("=")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    specs = [MethodSpec.parse(m) for m in split_methods(a.methods)]
    jobs = [EngineJob(clip.name, clip.frames, clip.masks, s, [StopPoint(f"step {n}", 0.0, n) for n in steps],
                      str(out / "runs" / s.label.replace("/", "_")), a.preset, overrides, "cpu", 1, 0)
            for s in specs]
    snaps = _run(jobs, a.jobs)

    ref = _reference_flow(clip.truth)
    rows = []
    for s in snaps:
        z = np.load(Path(s.workdir) / "result.npz")
        gen = z["generated"]
        comp = np.where(clip.masks[..., None], gen, clip.frames.astype(np.float32) / 255.0)
        sc = metrics.video_scores(comp, clip.truth, clip.masks).means()
        raw = metrics.video_scores(gen, clip.truth, clip.masks).means()
        row = {"method": s.method, "steps": s.steps, "cpu_s": s.clock_seconds, "psnr_hole": sc["psnr_hole"],
               "psnr_raw": raw["psnr"], "cons": metrics.temporal_consistency(comp, clip.masks)[0]}
        if z["flows"].size:
            f = z["flows"][:-1, 0]  # generated F(i, i+1), pixels [T-1,h,w,2]
            hole = clip.masks[:-1]
            err = np.sqrt(((f - ref) ** 2).sum(-1))
            row.update(epe_hole=float(err[hole].mean()), epe_known=float(err[~hole].mean()),
                       mag_hole=float(np.sqrt((f ** 2).sum(-1))[hole].mean()),
                       ref_mag_hole=float(np.sqrt((ref ** 2).sum(-1))[hole].mean()))
        rows.append(row)
    rows.sort(key=lambda r: (r["method"], r["steps"]))
    lines = [f"# Flow diagnostics: {clip.name}, {a.frames} frames at {w}x{h}, preset {a.preset}, overrides "
             f"{overrides or 'none'}", "",
             "| method | steps | CPU s | PSNR hole | PSNR raw full | consistency | flow EPE in hole (px) | "
             "EPE outside | mean flow in hole: generated / reference |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fl = (f"{r['epe_hole']:.2f} | {r['epe_known']:.2f} | {r['mag_hole']:.2f} / {r['ref_mag_hole']:.2f}"
              if "epe_hole" in r else "– | – | –")
        lines.append(f"| {r['method']} | {r['steps']} | {r['cpu_s']:.0f} | {r['psnr_hole']:.2f} | "
                     f"{r['psnr_raw']:.2f} | {r['cons']:.2f} | {fl} |")
    text = "\n".join(lines) + "\n"
    (out / "flow_diagnostics.md").write_text(text)
    (out / "flow_diagnostics.json").write_text(json.dumps(rows, indent=1))
    _plot(rows, out / "flow_diagnostics.png", clip.name)
    print(text)
    return 0


def _job(job):
    """Worker entry (a fresh process per method)."""
    from vinpaint.evaluation.runner import run_engine_job

    return run_engine_job(job)


def _run(jobs, workers: int):
    """Like runner.run_jobs, printing each method as it finishes. An experiment on the engine is a method with
    overrides (e.g. 'known=dip-vid-flow:loss.consistency_from=known'), never a patch."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [(pool.submit(_job, j), j) for j in jobs]
        for fut, j in futures:
            snaps = fut.result()
            print(f"done: {j.method.label}: " + ", ".join(f"{s.steps} steps {s.clock_seconds:.0f} s" for s in snaps),
                  flush=True)
            out += snaps
    return out


def _reference_flow(truth: np.ndarray) -> np.ndarray:
    """DIS flow F(i,i+1) on the true background: [T-1,h,w,2] pixels (a reference, never given to a method)."""
    from vinpaint.engine.flow import DISFlow

    est = DISFlow("medium")
    return np.stack([est(truth[i], truth[i + 1]) for i in range(len(truth) - 1)])


def _plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for m in sorted({r["method"] for r in rows}):
        rs = [r for r in rows if r["method"] == m]
        axes[0].plot([r["steps"] for r in rs], [r["psnr_hole"] for r in rs], marker="o", label=m)
        axes[1].plot([r["cpu_s"] for r in rs], [r["psnr_hole"] for r in rs], marker="o", label=m)
    axes[0].set_xlabel("training steps")
    axes[1].set_xlabel("CPU seconds (1 thread)")
    for ax in axes:
        ax.set_ylabel("PSNR in the hole (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
