"""How far above Telea can a fill get when part of the hole is never seen? (issue 12, the CPU target)

Propagation can at best copy the true background into the hole's *seen* part (pixels some other frame shows);
what no frame shows must be invented. This prints, per composed clip, the hole PSNR of:
- Telea on every frame (the per-frame baseline);
- prop-telea: the engine's propagation (its default settings, DIS flow), the unseen rest filled by Telea;
- a bound: propagation made perfect (the seen part exactly the truth) and the unseen part filled by Telea from
  that perfect surround;
- the same bound with the unseen part 3 dB better than that Telea fill (its squared error halved).
If the bound is below Telea + 3 dB, the target needs a fill of what no frame shows that beats Telea there, whatever
propagation does. The last column says how right the real pixels propagation copies are: hole PSNR on the seen part
only, for prop-telea and for Telea (a background that moves on its own, people walking behind the object, makes
copied pixels wrong however good the flow). Unseen is what the engine's propagation reaches from no frame. PSNR per frame, then
averaged (frames whose hole is all seen count 60 dB), and pooled over the clip. Asserts nothing.

    python bench/unseen_bound.py --pairs vtest:schoolgirls,vtest:tennis --frames 40
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vinpaint.engine.config import PropagationConfig
from vinpaint.engine.flow import DISFlow
from vinpaint.engine.propagate import propagate_clip
from vinpaint.evaluation.baselines import opencv_inpaint
from vinpaint.evaluation.metrics import to_unit

from composed import DATA, composed_pairs  # bench/composed.py
from quality_per_second import DEFAULT_PAIRS  # bench/quality_per_second.py

CAP_DB = 60.0


def _psnr_from_errors(err2: np.ndarray, holes: np.ndarray) -> tuple[float, float]:
    """Squared errors [T,H,W] (0 outside what counts) over each frame's hole -> (per-frame mean, pooled)."""
    frames = []
    for e, h in zip(err2, holes):
        if h.any():
            mse = float(e[h].mean())
            frames.append(CAP_DB if mse <= 10 ** (-CAP_DB / 10) else -10 * np.log10(mse))
    pooled = float(err2[holes].mean())
    return float(np.mean(frames)), (CAP_DB if pooled <= 10 ** (-CAP_DB / 10) else float(-10 * np.log10(pooled)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pairs", default=DEFAULT_PAIRS)
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    print("| clip | unseen | Telea | prop-telea | bound: seen exact, unseen by Telea from it | "
          "bound, unseen 3 dB better | Telea + 3 dB | seen part: prop-telea / Telea (pooled) |")
    print("|---|---|---|---|---|---|---|---|")
    for pair, truth, holes, shown in composed_pairs(args.data, args.pairs, args.frames):
        unit = to_unit(truth)
        telea = to_unit(opencv_inpaint(shown, holes, "telea").frames)
        prop = to_unit(opencv_inpaint(shown, holes, "prop-telea").frames)
        unseen = holes & ~propagate_clip(shown, holes, PropagationConfig(), DISFlow("medium")).reached
        seen = holes & ~unseen
        telea_err = ((telea - unit) ** 2).mean(axis=-1)
        around_truth = truth.copy()
        around_truth[unseen] = 128
        oracle = to_unit(opencv_inpaint(around_truth, unseen, "telea").frames)
        oracle_err = ((oracle - unit) ** 2).mean(axis=-1)
        prop_err = ((prop - unit) ** 2).mean(axis=-1)
        rows = {"telea": _psnr_from_errors(telea_err, holes),
                "prop": _psnr_from_errors(prop_err, holes),
                "bound": _psnr_from_errors(oracle_err, holes),
                "bound3": _psnr_from_errors(oracle_err / 2, holes)}
        cell = {k: f"{v[0]:.2f} / {v[1]:.2f}" for k, v in rows.items()}
        print(f"| {pair} | {unseen.sum() / holes.sum():.0%} | {cell['telea']} | {cell['prop']} | {cell['bound']} | "
              f"{cell['bound3']} | {rows['telea'][0] + 3:.2f} / {rows['telea'][1] + 3:.2f} | "
              f"{_psnr_from_errors(prop_err, seen)[1]:.2f} / {_psnr_from_errors(telea_err, seen)[1]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
