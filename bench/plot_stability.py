"""Plot the curves of bench/stability_curve.py runs: hole PSNR against step, one line per JSON file.
    python bench/plot_stability.py OUT.png RUN.json...
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    out, runs = Path(sys.argv[1]), [json.loads(Path(p).read_text()) for p in sys.argv[2:]]
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=110)
    for run in runs:
        lines = [(run["label"], run["curve"], run, "-")]
        if run.get("curve_last_weights"):
            lines.insert(0, (run["label"] + ", scored from its last weights", run["curve_last_weights"],
                             run["last_weights"], "--"))
        for label, points, stats, style in lines:
            points = [(s, p) for s, p in points if s % run["every"] == 0]
            steps, psnr = zip(*points)
            half = [p for s, p in points if s > max(steps) // 2]
            jump = max(abs(b - a) for a, b in zip(half, half[1:]))
            ax.plot(steps, psnr, style, marker=".", label=f"{label} (2nd half: largest jump {jump:.2f} dB, "
                                                          f"std {np.std(half):.2f} dB)")
    first = runs[0]
    ax.set_title(f"hole PSNR every {first['every']} steps: {first['background']} + {first['masks']} masks, "
                 f"{first['frames']} frames at {first['size']}", fontsize=9)
    ax.set_xlabel("training step")
    ax.set_ylabel("hole PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
