"""Which per-frame diffusion fills a hole better: OpenCV's Telea or the membrane (engine/diffusion.py)? Prints, per
composed pair, the hole PSNR (per frame / pooled) of each on the bare hole, and with --propagated the engine's
training-free path with each (`fast` with propagation.train_below=1: propagation, the diffusion for the rest, the
steady fill) with its temporal consistency. A benchmark: it prints numbers and asserts nothing (docs/evaluation.md, "Diffusion: the membrane").

    cd bench && OMP_WAIT_POLICY=PASSIVE python3 diffusion_fill.py --pairs vtest:dogs-jump,dogs-jump:blackswan \
        [--propagated] [--biharmonic]

--biharmonic adds the biharmonic fill alone on the bare hole, and its blend with the membrane at the clip's
share (engine/diffusion.py clip_diffusion, which `membrane+biharmonic` uses; docs/evaluation.md, "The biharmonic
fill, blended per clip").
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from composed import DATA, composed_pairs
from vinpaint.engine import inpaint, make_config
from vinpaint.engine.diffusion import biharmonic, clip_diffusion, diffuse, membrane
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


def biharmonic_study(pair: str, truth: np.ndarray, holes: np.ndarray, shown: np.ndarray) -> str:
    """One line: the biharmonic fill and the calibrated blend on the bare hole, per frame / pooled."""
    start = time.perf_counter()
    blend = clip_diffusion("membrane+biharmonic", shown, holes)  # the share and solve scale the engine would use
    share = blend.membrane_share
    fills = each_frame(lambda t: (membrane(shown[t], holes[t]), biharmonic(shown[t], holes[t], blend.solve_scale)),
                       range(len(shown)))
    as_u8 = lambda frames: np.clip(np.rint(np.stack(frames)), 0, 255).astype(np.uint8)  # noqa: E731
    alone = _scores(as_u8([b for _, b in fills]), truth, holes)
    blend = _scores(as_u8([share * m + (1 - share) * b for m, b in fills]), truth, holes)
    return (f"{pair:30s} biharmonic bare {alone[0]:.2f} / {alone[1]:.2f}; membrane share {share:.2f}, blend "
            f"{blend[0]:.2f} / {blend[1]:.2f} ({time.perf_counter() - start:.1f} s)")


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
    parser.add_argument("--biharmonic", action="store_true",
                        help="also the biharmonic fill and its blend with the membrane, calibrated per clip")
    args = parser.parse_args()
    for pair, truth, holes, shown in composed_pairs(args.data, args.pairs, args.frames):
        for method in ("telea", "membrane"):  # membrane+biharmonic: --biharmonic
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
        if args.biharmonic:
            print(biharmonic_study(pair, truth, holes, shown), flush=True)


if __name__ == "__main__":
    main()
