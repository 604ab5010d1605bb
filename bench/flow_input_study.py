"""Issue 12 item 5: should propagation's flow be estimated on the masked frames or on the frames the user gave?

In real object removal the object is visible in the input and moves with the hole. The engine estimates flow on
frames whose hole is filled by Telea, then throws the flow away inside the hole (and a 4-px band) and completes it
from around (engine/propagate.py: neighbour_flows, complete_flow). The authors estimated on the unmasked frames.
Here a real DAVIS object (its own pixels where its mask is 255) is pasted onto a real background clip, moving with
its mask, so the frames show a real object moving with the hole and the clean background is known. Reference
flow: the same estimator on the clean background. Compared, between neighbouring frames (both directions), by
end-point error inside the hole and in a 4-px band just outside it:

  masked        flow on the Telea-filled frames, completed in hole + band (what the engine does)
  unmasked      flow on the frames with the object, as is
  unmasked+c    flow on the frames with the object, completed in hole + band the same way
  unmasked+cW   the same with a wider band (--wide, 12 px): does discarding more of the object's motion rescue it?

and by hole PSNR of prop-telea (propagation, Telea for what no frame sees) with each flow input. Prints a table,
asserts nothing. Example (about 2 CPU minutes on the 6 clips):
    python bench/flow_input_study.py --frames 24
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from vinpaint.engine.composite import composite
from vinpaint.engine.config import PropagationConfig
from vinpaint.engine.flow import make_estimator
from vinpaint.media.io import read_clip
from vinpaint.engine.propagate import NeighbourFlows, calibrate_distance, neighbour_flows, propagate, \
    propagate_clip
from vinpaint.evaluation.metrics import psnr

from composed import DATA, composed  # bench/composed.py

INPUTS = ("masked", "unmasked", "unmasked+c", "unmasked+cW")


def with_object(data: Path, background: str, seq: str, frames: int):
    """(clean background, frames with the object pasted where its mask is, holes) or None when data is absent."""
    clip = composed(data, background, seq, frames)
    obj_dir = data / seq / "frames"
    if clip is None or not obj_dir.is_dir():
        return None
    truth, holes = clip
    h, w = truth.shape[1:3]
    obj = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                    for f in read_clip(obj_dir).frames[:len(truth)]])
    return truth, np.where(holes[..., None], obj, truth), holes


def ring(hole: np.ndarray, width: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel).astype(bool) & ~hole


def raw_flows(frames: np.ndarray, estimator) -> NeighbourFlows:
    """Neighbour flows estimated on the frames as given, not completed anywhere."""
    pairs = range(len(frames) - 1)
    forward = np.stack([estimator(frames[i], frames[i + 1]) for i in pairs]).astype(np.float16)
    backward = np.stack([estimator(frames[i + 1], frames[i]) for i in pairs]).astype(np.float16)
    return NeighbourFlows(forward, backward, 1.0, 1.0)


def epe(flows: NeighbourFlows, reference: NeighbourFlows, holes: np.ndarray, band: int) -> tuple[float, float]:
    """Mean end-point error (pixels) against the reference over every neighbour pair, both directions: inside the
    hole of the frame the flow starts from, and in a `band`-px ring just outside it."""
    inside, outside = [], []
    for field, ref, starts in ((flows.forward, reference.forward, holes[:-1]),
                               (flows.backward, reference.backward, holes[1:])):
        err = np.linalg.norm(field.astype(np.float32) - ref.astype(np.float32), axis=-1)
        for e, hole in zip(err, starts):
            inside.append(e[hole])
            outside.append(e[ring(hole, band)])
    return float(np.concatenate(inside).mean()), float(np.concatenate(outside).mean())


def prop_telea(shown: np.ndarray, holes: np.ndarray, truth: np.ndarray, settings: PropagationConfig,
               estimator, source: str, wide: int) -> tuple[float, float]:
    """Hole PSNR (dB) of propagation + Telea for the rest, and the share of the hole propagation reached."""
    if source == "unmasked":  # no completion: the chains follow the estimate as is (propagate_clip's other steps)
        flows = raw_flows(shown, estimator)
        distance = settings.max_distance or calibrate_distance(shown, holes, flows, settings.band)[0]
        result = propagate(shown.astype(np.float32) / 255.0, holes, flows, settings.tolerance, distance)
    elif source == "unmasked+cW":
        result = propagate_clip(shown, holes, replace(settings, band=wide), estimator, masked=False)
    else:
        result = propagate_clip(shown, holes, settings, estimator, masked=source == "masked")
    out, _ = composite(shown, None, holes, 0, result, seam=0)
    left = holes & ~result.reached
    for i in range(len(out)):
        if left[i].any():
            filled = cv2.inpaint(out[i], left[i].astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
            out[i][left[i]] = filled[left[i]]
    width = out.shape[2]  # every frame stacked into one tall image: one PSNR over all hole pixels
    score = psnr(out.reshape(-1, width, 3), truth.reshape(-1, width, 3), holes.reshape(-1, width))
    return score, float(result.reached.sum() / holes.sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backgrounds", default="vtest,tree,running_car")
    parser.add_argument("--objects", default="tennis,blackswan")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--estimator", default="dis", choices=("dis", "raft"))
    parser.add_argument("--raft-weights", default="", help="a torchvision RAFT checkpoint (with --estimator raft)")
    parser.add_argument("--wide", type=int, default=12, help="the wider band of unmasked+cW (px)")
    parser.add_argument("--no-propagation", action="store_true", help="only the flow errors")
    args = parser.parse_args()
    settings = PropagationConfig()
    estimator = make_estimator(args.estimator, "medium", args.raft_weights, 12, print)
    print(f"estimator {args.estimator}, {args.frames} frames, band {settings.band} px; EPE in pixels against the "
          "same estimator on the clean background; PSNR in the hole (dB), reached = share propagated")
    head = f"{'clip':<22}{'hole%':>6}{'|ref|':>6}" + "".join(f"{n + ' hole':>17}{'band':>7}" for n in INPUTS)
    if not args.no_propagation:
        head += "".join(f"{'PSNR ' + n:>18}{'reach':>6}" for n in INPUTS)
    print(head + f"{'cpu s':>7}")
    for background in args.backgrounds.split(","):
        for seq in args.objects.split(","):
            clip = with_object(args.data, background, seq, args.frames)
            if clip is None:
                print(f"skipped: bg/{background} or {seq} is not in {args.data}")
                continue
            cpu = time.process_time()
            truth, shown, holes = clip
            reference = raw_flows(truth, estimator)
            flows = {"masked": neighbour_flows(shown, holes, estimator, band=settings.band),
                     "unmasked": raw_flows(shown, estimator),
                     "unmasked+c": neighbour_flows(shown, holes, estimator, band=settings.band, masked=False),
                     "unmasked+cW": neighbour_flows(shown, holes, estimator, band=args.wide, masked=False)}
            motion = float(np.linalg.norm(reference.forward.astype(np.float32), axis=-1)[holes[:-1]].mean())
            row = f"{background + ':' + seq:<22}{100 * holes.mean():>6.1f}{motion:>6.2f}"
            for name in INPUTS:
                inside, outside = epe(flows[name], reference, holes, settings.band)
                row += f"{inside:>17.2f}{outside:>7.2f}"
            if not args.no_propagation:
                for name in INPUTS:
                    score, reached = prop_telea(shown, holes, truth, settings, estimator, name, args.wide)
                    row += f"{score:>18.2f}{reached:>6.0%}"
            print(row + f"{time.process_time() - cpu:>7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
