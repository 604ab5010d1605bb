"""Which per-frame diffusion fills a hole better: OpenCV's Telea or the membrane (engine/diffusion.py)? Prints, per
composed pair, the hole PSNR (per frame / pooled) of each on the bare hole, and with --propagated the engine's
training-free path with each (`fast` with propagation.train_below=1: propagation, the diffusion for the rest, the
steady fill) with its temporal consistency. A benchmark: it prints numbers and asserts nothing (docs/evaluation.md, "Diffusion: the membrane").

    cd bench && OMP_WAIT_POLICY=PASSIVE python3 diffusion_fill.py --pairs vtest:dogs-jump,dogs-jump:blackswan \
        [--propagated] [--biharmonic]

--biharmonic adds a study the engine does not use yet (docs/evaluation.md, "A lead: the biharmonic fill"):
scikit-image's biharmonic fill on the bare hole, and a blend of it with the membrane whose weight is fitted per
clip by least squares on known pixels, where six frames' holes are grown as diffusion_error_by_depth grows them.
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


def biharmonic(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """scikit-image's biharmonic fill (smooth to the second derivative: it carries the edge's gradient inward where
    the membrane levels off), float32 on the frame's 0-255 scale."""
    from skimage.restoration import inpaint_biharmonic

    return (inpaint_biharmonic(frame.astype(np.float64) / 255.0, hole, channel_axis=-1) * 255.0).astype(np.float32)


def membrane_share(shown: np.ndarray, holes: np.ndarray, frames_used: int = 6) -> float:
    """The membrane's least-squares weight against the biharmonic fill (0-1), on the known pixels that six frames'
    holes cover once grown by as much as they are deep (at most 64 px), as diffusion_error_by_depth grows them."""
    import cv2

    from vinpaint.engine.propagate import hole_depth

    num = den = 0.0
    for t in np.unique(np.linspace(0, len(holes) - 1, frames_used).round().astype(int)):
        if not holes[t].any():
            continue
        grow = int(np.clip(np.ceil(hole_depth(holes[t]).max()), 4, 64))
        away = cv2.distanceTransform((~holes[t]).astype(np.uint8), cv2.DIST_L2, 3)
        grown, known = away <= grow, (away > 1.5) & (away <= grow)
        truth = shown[t][known].astype(np.float64)
        m, b = diffuse(shown[t], grown, "membrane")[known], biharmonic(shown[t], grown)[known]
        num += float(((truth - b) * (m - b)).sum())
        den += float(((m - b) ** 2).sum())
    return float(np.clip(num / max(den, 1e-9), 0.0, 1.0))


def biharmonic_study(pair: str, truth: np.ndarray, holes: np.ndarray, shown: np.ndarray) -> str:
    """One line: the biharmonic fill and the calibrated blend on the bare hole, per frame / pooled."""
    start = time.perf_counter()
    share = membrane_share(shown, holes)
    fills = each_frame(lambda t: (diffuse(shown[t], holes[t], "membrane"), biharmonic(shown[t], holes[t])),
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
        if args.biharmonic:
            print(biharmonic_study(pair, truth, holes, shown), flush=True)


if __name__ == "__main__":
    main()
