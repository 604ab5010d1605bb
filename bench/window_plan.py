"""A/B of a shot's window plan through the command's own path (inpaint_shot) on composed clips longer than a window:
hole PSNR and wall time per arm, next to Telea (docs/evaluation.md, "One window for a DAVIS clip").

    cd bench && OMP_WAIT_POLICY=PASSIVE python3 window_plan.py schoolgirls:tennis,tennis:schoolgirls \
        '{"w60": {"shot.window": 60}, "w100": {"shot.window": 100}}'

Each arm is `fast` training-free (propagation.train_below=1: what a CPU runs) plus the arm's settings.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from composed import composed_pairs
from vinpaint.engine import make_config
from vinpaint.engine.shot import ArraySource, inpaint_shot
from vinpaint.evaluation.baselines import opencv_inpaint
from vinpaint.evaluation.metrics import psnr, video_scores

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", help="background:masks,... (bench/composed.py)")
    parser.add_argument("arms", help='JSON: {"name": {"setting": value, ...}, ...}')
    parser.add_argument("--frames", type=int, default=200, help="at most this many frames of each clip")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    arms = json.loads(args.arms)
    for pair, truth, holes, shown in composed_pairs(args.data, args.pairs, args.frames):
        telea = video_scores(opencv_inpaint(shown, holes, "telea").frames, truth, holes,
                             whole_frame=False).means()["psnr_hole"]
        print(f"{pair}: {len(truth)} frames {truth.shape[2]}x{truth.shape[1]}, Telea {telea:.2f} dB", flush=True)
        for name, settings in arms.items():
            config = make_config("fast", **{"propagation.train_below": 1.0, **settings})
            out = np.empty_like(shown)

            def emit(index: int, frame: np.ndarray, matte: np.ndarray) -> None:
                out[index] = frame

            wall = time.monotonic()
            with tempfile.TemporaryDirectory() as workdir:
                result = inpaint_shot(ArraySource(shown, holes), config, workdir, emit)
            wall = time.monotonic() - wall
            score = video_scores(out, truth, holes, whole_frame=False).means()["psnr_hole"]
            print(f"  {name:10s} {result.windows} window(s): hole PSNR {score:.2f} / {psnr(out, truth, holes):.2f} "
                  f"pooled ({score - telea:+.2f} against Telea), {wall:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
