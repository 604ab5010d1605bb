"""Quality against seconds on the CPU (issue 12 item 6): Telea, prop-telea and the default engine per clip.

Composed clips (a ../shared/data/bg background at its own resolution with a real object's masks pasted on, the
hole shown flat grey) scored as `vinpaint eval` scores them: hole PSNR and SSIM (per frame, then averaged; and
PSNR pooled over every hole pixel of the clip, as bench/propagation_on_composed.py prints it), the
patch-based temporal consistency in the hole, and the seconds each method took, wall and CPU (process time, all
threads; CPU seconds are the fairer number when other jobs share the cores). The engine runs with its default
preset and a training-time cap so that a clip finishes within the issue's 10 minutes; one clip that trains is
run again with `resolution.crop_to_hole` off under the same cap, to compare the crop with whole-frame training
at equal time. Every output is checked: pixels outside the hole are the input's bit for bit, and the engine's
matte covers exactly the hole. Prints a markdown table; asserts only those two invariants. Example:
    python bench/quality_per_second.py --pairs vtest:tennis,running_car:dogs-jump --frames 40 --out /tmp/q.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.composite import hole_region
from vinpaint.engine.propagate import GENERATED
from vinpaint.evaluation.baselines import opencv_inpaint
from vinpaint.evaluation.metrics import ConsistencyConfig, psnr, temporal_consistency, video_scores

from composed import DATA, composed_pair, enlarged, overrides  # bench/composed.py

CAMERA = {"vtest": "static", "tree": "static", "running_car": "moving"}
"""The backgrounds' camera motion (../shared/data/README.md: median global shift 0.39, 0.11, 6.44 px/frame)."""
DEFAULT_PAIRS = "vtest:tennis,tree:dogs-jump,running_car:tennis,running_car:dogs-jump,vtest:schoolgirls"


def check_output(name: str, out: np.ndarray, shown: np.ndarray, holes: np.ndarray,
                 matte: np.ndarray | None = None) -> None:
    """The product's promises: nothing outside the hole changes, and the matte is the hole."""
    assert out.dtype == shown.dtype and out.shape == shown.shape, f"{name}: output {out.dtype} {out.shape}"
    assert np.array_equal(out[~holes], shown[~holes]), f"{name}: pixels outside the hole changed"
    if matte is not None:
        assert np.array_equal(matte > 0, holes), f"{name}: the matte is not the hole"


def scored(out: np.ndarray, truth: np.ndarray, holes: np.ndarray, consistency: ConsistencyConfig) -> dict:
    s = video_scores(out, truth, holes, whole_frame=False).means()
    cons = temporal_consistency(out, holes, consistency)
    return {"psnr_hole": s["psnr_hole"], "psnr_hole_pooled": psnr(out, truth, holes), "ssim_hole": s["ssim_hole"],
            "cons_psnr": cons[0], "cons_ssim": cons[1]}


def run_engine(shown: np.ndarray, holes: np.ndarray, settings: dict) -> tuple[dict, np.ndarray]:
    config = make_config("fast", **settings)
    cpu, wall = time.process_time(), time.monotonic()
    result = inpaint(shown, holes, config)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    unseen = result.matte == GENERATED  # = the hole left to train on (the crop's box is drawn around it)
    region = hole_region(unseen, config.resolution.crop_margin)
    return ({"wall_s": wall, "cpu_s": cpu, "steps": result.steps, "trained": result.steps > 0,
             "unseen": float(unseen.sum() / holes.sum()), "matte": result.matte,
             "crop_region": list(region) if region is not None else None,
             "notices": [n for n in result.notices if "perceptual" not in n]}, result.frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="background:masks,...")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="enlarge each composed clip by this factor (bicubic; the hole nearest) first: how the "
                             "time grows with a plate's size (4 makes vtest 1920x1440)")
    parser.add_argument("--train-seconds", type=float, default=480.0,
                        help="the engine's training cap (train.max_seconds, wall); propagation, flow and "
                             "generation come on top, so 480 keeps a clip within 10 minutes on a loaded machine")
    parser.add_argument("--crop-off", default="auto",
                        help="pair rerun with resolution.crop_to_hole=false ('auto': the first pair that trained "
                             "on a box the crop uses, else --crop-fallback; 'none': skip)")
    parser.add_argument("--crop-fallback", default="vtest:dogs-jump/masks_person",
                        help="pair for the crop comparison when no pair above trained on a cropped box; run with "
                             "propagation.train_below=0 in both arms, so that it trains")
    parser.add_argument("--crop-arms", choices=("both", "on", "off"), default="both",
                        help="which arms of the crop comparison to run (two processes side by side share the "
                             "machine's load equally: --pairs '' --crop-off PAIR --crop-arms on, and off)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="engine override")
    parser.add_argument("--baselines", default="telea,prop-telea",
                        help="the per-frame fills run beside the engine (comma-separated; '' for none: an A/B of "
                             "engine settings needs them once, not once per arm)")
    parser.add_argument("--out", type=Path, help="also append one JSON line per (clip, method) here")
    parser.add_argument("--summarise", type=Path, metavar="JSONL",
                        help="print the markdown tables of a file written by --out, and run nothing")
    args = parser.parse_args()
    if args.summarise:
        print("\n".join(summary([json.loads(line) for line in args.summarise.read_text().splitlines() if line])))
        return 0
    settings = {"train.max_seconds": args.train_seconds, **overrides(0, args.set)}
    consistency = ConsistencyConfig()
    clips: dict[str, tuple] = {}

    def report(row: dict) -> None:
        row = {k: v for k, v in row.items() if k != "matte"}
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")

    trained_pair = None
    for pair in filter(None, args.pairs.split(",")):
        clip = composed_pair(args.data, pair, args.frames)
        if clip is None:
            print(f"skipped {pair}: not in {args.data}")
            continue
        truth, holes, shown = clips[pair] = enlarged(clip, args.scale)
        background = pair.split(":")[0]
        base = {"pair": pair, "camera": CAMERA.get(background, "?"), "frames": len(truth),
                "size": f"{truth.shape[2]}x{truth.shape[1]}", "hole": float(holes.mean())}
        report({**base, "method": "truth (reference)", **{k: v for k, v in scored(truth, truth, holes,
                                                                                 consistency).items()
                                                          if k.startswith("cons")}})
        for method in filter(None, args.baselines.split(",")):
            fill = opencv_inpaint(shown, holes, method)
            check_output(f"{pair} {method}", fill.frames, shown, holes)
            report({**base, "method": method, "wall_s": fill.seconds, "cpu_s": fill.cpu_seconds, "steps": 0,
                    **scored(fill.frames, truth, holes, consistency)})
        info, frames = run_engine(shown, holes, settings)
        check_output(f"{pair} fast", frames, shown, holes, info["matte"])
        report({**base, "method": "fast (default engine)", **info, **scored(frames, truth, holes, consistency)})
        if info["trained"] and info["crop_region"] is not None and trained_pair is None:
            trained_pair = pair
    if args.crop_off != "none":
        crop_ab(args, clips, settings, consistency, report, trained_pair)
    return 0


def _f(value, digits: int = 2) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def summary(rows: list[dict], target_db: float = 3.0, minutes: float = 10.0) -> list[str]:
    """Markdown: every method per clip with its seconds, then the issue's target clip by clip."""
    out = ["| clip | camera | hole | method | hole PSNR (per frame / pooled) | hole SSIM | consistency PSNR/SSIM | "
           "vs Telea | CPU s | wall s | steps | unseen |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    telea = {r["pair"]: r for r in rows if r["method"] == "telea"}
    for r in rows:
        ref = telea.get(r["pair"])
        gain = r["psnr_hole"] - ref["psnr_hole"] if ref and "psnr_hole" in r else float("nan")
        out.append(f"| {r['pair']} | {r.get('camera', '?')} | {r.get('hole', float('nan')):.1%} | {r['method']} | "
                   f"{_f(r.get('psnr_hole'))} / {_f(r.get('psnr_hole_pooled'))} | {_f(r.get('ssim_hole'), 3)} | {_f(r.get('cons_psnr'))} / "
                   f"{_f(r.get('cons_ssim'), 3)} | {'' if gain != gain else f'{gain:+.2f}'} | "
                   f"{_f(r.get('cpu_s'), 1)} | {_f(r.get('wall_s'), 1)} | {r.get('steps', '')} | "
                   f"{'' if 'unseen' not in r else format(r['unseen'], '.1%')} |")
    out += ["", f"| clip | Telea, per frame / pooled | default engine | gain (target +{target_db:g} dB) | consistency: engine vs Telea |"
            f" end to end within {minutes:g} min | trained |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = telea.get(r["pair"])
        if r["method"] != "fast (default engine)" or ref is None:
            continue
        gain = r["psnr_hole"] - ref["psnr_hole"]
        pooled = r["psnr_hole_pooled"] - ref["psnr_hole_pooled"]
        cons = r["cons_psnr"] - ref["cons_psnr"]
        out.append(f"| {r['pair']} | {ref['psnr_hole']:.2f} / {ref['psnr_hole_pooled']:.2f} | {r['psnr_hole']:.2f} "
                   f"/ {r['psnr_hole_pooled']:.2f} | {gain:+.2f} / {pooled:+.2f} "
                   f"({'met' if min(gain, pooled) >= target_db else 'not met'}) | {r['cons_psnr']:.2f} vs {ref['cons_psnr']:.2f} "
                   f"({'no worse' if cons >= 0 else 'worse'}) | {r['wall_s'] / 60:.1f} min "
                   f"({'yes' if r['wall_s'] <= minutes * 60 else 'no'}) | {'yes' if r['trained'] else 'no'} |")
    return out


def crop_ab(args, clips: dict, settings: dict, consistency: ConsistencyConfig, report, trained_pair) -> None:
    """The crop against whole-frame training under the same training-time cap, on one clip that trains."""
    target, extra = (trained_pair, {}) if args.crop_off == "auto" and trained_pair else \
        (args.crop_fallback if args.crop_off == "auto" else args.crop_off, {"propagation.train_below": 0.0})
    if target not in clips:
        clip = composed_pair(args.data, target, args.frames)
        if clip is None:
            print(f"skipped the crop comparison: {target} is not in {args.data}")
            return
        clips[target] = clip
    truth, holes, shown = clips[target]
    arms = ([("fast, crop_to_hole on", {})] if extra or target != trained_pair else []) + \
        [("fast, crop_to_hole off", {"resolution.crop_to_hole": False})]
    arms = [a for a in arms if args.crop_arms in ("both", a[0].rsplit(" ", 1)[1])]
    for name, arm in arms:
        info, frames = run_engine(shown, holes, {**settings, **extra, **arm})
        check_output(f"{target} {name}", frames, shown, holes, info["matte"])
        report({"pair": target, "camera": CAMERA.get(target.split(":")[0], "?"), "hole": float(holes.mean()),
                "method": name, "overrides": {**extra, **arm}, **info, **scored(frames, truth, holes, consistency)})


if __name__ == "__main__":
    raise SystemExit(main())
