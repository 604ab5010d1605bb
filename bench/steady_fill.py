"""The steady fill (propagation.steady_radius) on composed clips: one `fast` training per clip, then its output
composed with several radii, each scored as `vinpaint eval` scores it (hole PSNR per frame and pooled, hole SSIM,
the patch-based temporal consistency in the hole). A benchmark: it prints numbers and asserts only the product's
promises (pixels outside the hole bit-exact, the matte is the hole).

    python bench/steady_fill.py --pairs vtest:blackswan,running_car:tennis --radii 0,3,5,10
    python bench/steady_fill.py --pairs vtest:rect,tree:frozen        # still masks: a box, or frame 0's object
    python bench/steady_fill.py --pairs vtest:rect --radii 5 --still-radii 0,10,20,40   # still tracks followed on
    python bench/steady_fill.py --cost --radii 5 --still-radii 0,20     # CPU time a frame on a still 4K logo

A pair is background:masks as in bench/composed.py, where masks may be rect (a still box in the lower right, as a
logo) or frozen (schoolgirls' first mask on every frame). Each clip's training is kept in --workdirs, so a
second call only composes again.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vinpaint.engine import inpaint, make_config  # noqa: E402
from vinpaint.engine.api import _compose  # noqa: E402  (the engine's own composition, radius by radius)
from vinpaint.engine.flow import make_estimator  # noqa: E402
from vinpaint.engine.propagate import NeighbourFlows, load_propagation  # noqa: E402
from vinpaint.engine.stabilise import steady_unseen  # noqa: E402
from vinpaint.evaluation.metrics import ConsistencyConfig  # noqa: E402

from composed import DATA, composed_pair  # noqa: E402  (bench/composed.py)
from quality_per_second import check_output, scored  # noqa: E402


def cost_at_4k(radii: list[tuple[int, int]], frames: int) -> None:
    """CPU seconds a frame of the steady fill alone on a still 16-bit 4K plate with an 860x480 unseen box (a
    logo), its flows at a quarter of the size as propagation keeps them, near zero with 0.03 px of noise."""
    t_count, h, w = frames, 2160, 3840
    rng = np.random.default_rng(0)
    plate = rng.integers(0, 65535, (t_count, h, w, 3), dtype=np.uint16)
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 1500:1980, 2800:3660] = True
    forward = rng.normal(0.0, 0.03, (t_count - 1, h // 4, w // 4, 2)).astype(np.float16)
    flows = NeighbourFlows(forward, -forward, 0.25, 0.25)
    print("| radius | still radius | frames | CPU s a frame | wall s a frame |")
    print("|---|---|---|---|---|")
    for radius, still in radii:
        cpu, wall = time.process_time(), time.monotonic()
        steady_unseen(plate, unseen, flows, radius, 4.0, still)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        print(f"| {radius} | {still} | {t_count} | {cpu / t_count:.2f} | {wall / t_count:.2f} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="vtest:blackswan,running_car:tennis,vtest:rect")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--radii", default="0,5,10")
    parser.add_argument("--still-radii", default="0",
                        help="propagation.steady_still_radius values, each tried with every radius")
    parser.add_argument("--workdirs", type=Path, default=Path("/tmp/vinpaint-steady-fill"))
    parser.add_argument("--out", type=Path, help="also append one JSON line per (clip, radius) here")
    parser.add_argument("--cost", action="store_true",
                        help="time the steady fill alone on a synthetic still 4K logo instead (--frames of them)")
    args = parser.parse_args()
    radii = [(int(r), int(still)) for r in args.radii.split(",") for still in args.still_radii.split(",")]
    if args.cost:
        cost_at_4k(radii, args.frames)
        return 0
    consistency = ConsistencyConfig()
    print("| clip | radius | still radius | unseen | model share | hole PSNR (per frame / pooled) | hole SSIM "
          "| consistency | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pair in args.pairs.split(","):
        clip = composed_pair(DATA, pair, args.frames)
        if clip is None:
            print(f"| {pair} | skipped: ../shared/data is not here |")
            continue
        truth, holes, shown = clip
        base = make_config("fast", **{"propagation.steady_radius": 0, "propagation.steady_still_radius": 0})
        work = args.workdirs / pair.replace(":", "_")
        if not (work / "result.npz").is_file():
            inpaint(shown, holes, base, workdir=work)
        propagation = load_propagation(work / "propagation.npz")
        with np.load(work / "result.npz", allow_pickle=False) as z:
            trained = "region" in z.files
            generated = z["generated"] if trained else None
            region = tuple(int(v) for v in z["region"]) if trained and z["region"].size == 4 else None
            share = float(z["model_share"]) if "model_share" in z.files else 0.0
        estimator = make_estimator(base.flow.estimator, base.flow.dis_preset, base.flow.raft_weights,
                                   base.flow.raft_iterations, lambda line: None, "cpu")
        unseen = float((holes & ~propagation.reached).sum() / holes.sum())
        for radius, still in radii:
            config = base.replace(**{"propagation.steady_radius": radius, "propagation.steady_still_radius": still})
            start = time.monotonic()
            out, matte = _compose(shown, holes, config, propagation, estimator, generated, region, share)
            seconds = time.monotonic() - start
            check_output(f"{pair} radius {radius}/{still}", out, shown, holes, matte)
            s = scored(out, truth, holes, consistency)
            row = {"pair": pair, "radius": radius, "still_radius": still, "unseen": unseen,
                   "model_share": share if trained else 0.0, "compose_s": seconds, **s}
            print(f"| {pair} | {radius} | {still} | {unseen:.2f} | {row['model_share']:.2f} | {s['psnr_hole']:.2f} / "
                  f"{s['psnr_hole_pooled']:.2f} | {s['ssim_hole']:.3f} | {s['cons_psnr']:.2f} | {seconds:.1f} |",
                  flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
