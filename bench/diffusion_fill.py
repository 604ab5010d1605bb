"""Which per-frame diffusion fills a hole better: OpenCV's Telea or the membrane (engine/diffusion.py)? Prints, per
composed pair, the hole PSNR (per frame / pooled) of each on the bare hole, and with --propagated the engine's
training-free path with each (`fast` with propagation.train_below=1: propagation, the diffusion for the rest, the
steady fill) with its temporal consistency. A benchmark: it prints numbers and asserts nothing (docs/evaluation.md, "Diffusion: the membrane").

    cd bench && OMP_WAIT_POLICY=PASSIVE python3 diffusion_fill.py --pairs vtest:dogs-jump,dogs-jump:blackswan \
        [--propagated]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from composed import DATA, composed_pairs
from vinpaint.engine import inpaint, make_config
from vinpaint.engine.diffusion import METHODS, diffuse
from vinpaint.engine.parallel import each_frame
from vinpaint.evaluation.metrics import hole_psnr, temporal_consistency, video_scores


def _scores(out: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> tuple[float, float]:
    """(hole PSNR averaged over the frames with a hole, pooled over the clip)."""
    per_frame = video_scores(out, truth, holes, whole_frame=False).psnr_hole
    return float(np.nanmean(per_frame)), hole_psnr(out, truth, holes)


def bare(shown: np.ndarray, holes: np.ndarray, method: str) -> np.ndarray:
    """Each frame's hole filled by `method` from the frame alone: what a per-frame fill does."""
    def one(t: int) -> np.ndarray:
        return np.clip(np.rint(diffuse(shown[t], holes[t], method)), 0, 255).astype(np.uint8)
    return np.stack(each_frame(one, range(len(shown))))


def propagated(shown: np.ndarray, holes: np.ndarray, method: str) -> np.ndarray:
    """The engine's result where no model is trained: fast's propagation and steady fill, `method` for the rest."""
    config = make_config("fast", **{"propagation.diffusion": method, "propagation.train_below": 1.0})
    return inpaint(shown, holes, config).frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pairs", default="vtest:dogs-jump,dogs-jump:blackswan")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--propagated", action="store_true", help="also the engine's training-free path")
    args = parser.parse_args()
    for pair, truth, holes, shown in composed_pairs(args.data, args.pairs, args.frames):
        for method in METHODS:
            start = time.perf_counter()
            per, pooled = _scores(bare(shown, holes, method), truth, holes)
            line = f"{pair:30s} {method:9s} bare {per:.2f} / {pooled:.2f} ({time.perf_counter() - start:.1f} s)"
            if args.propagated:
                start = time.perf_counter()
                out = propagated(shown, holes, method)
                per, pooled = _scores(out, truth, holes)
                line += (f" | propagated {per:.2f} / {pooled:.2f}, consistency "
                         f"{temporal_consistency(out, holes)[0]:.2f} ({time.perf_counter() - start:.1f} s)")
            print(line, flush=True)


if __name__ == "__main__":
    main()
