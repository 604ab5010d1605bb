"""Composed clips made hard in ways the 17 composed pairs are not, filled by the engine and by OpenCV's Telea: does
the engine still beat the per-frame fill? (docs/evaluation.md, "Frames in other light").

Each clip is a ../shared/data background with a real object's masks resized onto it (the truth behind the hole is
known), then one thing made hard:
  cut        20 frames of tree, then 20 of running_car (a cut inside the clip)
  flicker    every frame's gain drawn from 0.75-1.25
  ramp       the gain rising evenly to 1.35 (auto-exposure opening up)
  colour     each channel's gain drawn from 0.85-1.15 per frame
  fast       running_car at every third frame (three times the motion)
  shuffled   vtest's frames in random order (no continuity at all)
  grain      tree with Gaussian grain of sigma 12 levels
  short      three frames
  alternate  tree and running_car frame by frame (two shots interleaved)
  zoom       vtest zooming in to 1.5x over the clip
  own        blackswan's own frames, its swan part of the truth
  jitter     vtest shaken by up to 12 px a frame (a hand-held camera), cropped to stay inside the plate
  jpeg       vtest through JPEG at quality 25 (a heavily compressed proxy)
  blur       running_car blurred 9 px along its motion
  logo       a fixed box in vtest's corner, touching the frame's edge (a static camera: no frame sees behind it)
  sign       a fixed box in running_car's middle (a moving camera carries the background through it)
  wire       a thin line drifting across tree (rig or wire removal)
  still-wires two still wires over vtest's square, where people walk behind them (a locked-off wire removal)
  large      dogs-jump's masks grown 24 px on vtest (about a quarter of the frame)
  border     blackswan's masks moved against the left edge of running_car
  gaps       vtest + tennis with the hole in alternate stretches of five frames only
  dissolve   tree cross-dissolving into running_car over ten frames mid-clip
Hole PSNR per frame then averaged / pooled, the patch-based temporal consistency in the hole, wall seconds. The
engine runs `fast`; `--set KEY=VALUE` overrides (JSON values), e.g. --set propagation.train_below=1 for the
training-free path. Asserts only that pixels outside the hole are the input's. Example:
    python bench/hard_clips.py --set propagation.train_below=1 --cases flicker,ramp
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.evaluation.baselines import opencv_inpaint
from vinpaint.evaluation.metrics import ConsistencyConfig, psnr, temporal_consistency, video_scores

from composed import DATA, _shown, composed, overrides  # bench/composed.py
from light_changes import relit  # bench/light_changes.py: the same three changes of light


def _background(data: Path, name: str, frames: int) -> np.ndarray:
    clip = composed(data, name, "schoolgirls", frames)  # schoolgirls' 80 masks: any background's length
    if clip is None:
        raise FileNotFoundError(name)
    return clip[0]


def _masks(data: Path, name: str, frames: int, h: int, w: int) -> np.ndarray:
    clip = composed(data, "vtest", name, frames)
    if clip is None:
        raise FileNotFoundError(name)
    return np.stack([cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0 for m in clip[1]])


def hard_clips(data: Path, frames: int = 40):
    """(name, truth uint8 [T,H,W,3], holes bool [T,H,W]) for each case above."""
    rng = np.random.default_rng(0)
    half = frames // 2
    size = lambda clip: clip.shape[1:3]  # noqa: E731
    tree, car = _background(data, "tree", frames), _background(data, "running_car", frames)
    car_as_tree = np.stack([cv2.resize(f, size(tree)[::-1], interpolation=cv2.INTER_AREA) for f in car])
    vtest = _background(data, "vtest", frames)
    cut = np.concatenate([tree[:half], car_as_tree[:frames - half]])
    yield "cut: tree, then running_car + blackswan", cut, _masks(data, "blackswan", frames, *size(cut))
    flicker = relit(vtest, "flicker", rng)
    yield "flicker: vtest + dogs-jump", flicker, _masks(data, "dogs-jump", frames, *size(vtest))
    ramp = relit(vtest, "ramp", rng)
    yield "ramp: vtest + dogs-jump", ramp, _masks(data, "dogs-jump", frames, *size(vtest))
    colour = relit(car, "colour", rng)
    yield "colour: running_car + tennis", colour, _masks(data, "tennis", frames, *size(car))
    fast = _background(data, "running_car", 3 * frames)[::3]
    yield "fast: running_car / 3 + tennis", fast, _masks(data, "tennis", len(fast), *size(fast))
    shuffled = vtest[rng.permutation(len(vtest))]
    yield "shuffled: vtest + blackswan", shuffled, _masks(data, "blackswan", frames, *size(vtest))
    grain = np.clip(tree + rng.normal(0, 12, tree.shape), 0, 255).astype(np.uint8)
    yield "grain: tree + schoolgirls", grain, _masks(data, "schoolgirls", frames, *size(tree))
    yield "short: vtest + blackswan", vtest[:3], _masks(data, "blackswan", 3, *size(vtest))
    alternate = np.stack([(tree if t % 2 == 0 else car_as_tree)[t] for t in range(frames)])
    yield "alternate: tree and running_car + tennis", alternate, _masks(data, "tennis", frames, *size(tree))
    h, w = size(vtest)
    zoomed = []
    for t, frame in enumerate(vtest):
        s = 1 + 0.5 * t / max(frames - 1, 1)
        ch, cw = int(h / s), int(w / s)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        zoomed.append(cv2.resize(frame[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_CUBIC))
    yield "zoom: vtest + dogs-jump", np.stack(zoomed), _masks(data, "dogs-jump", frames, h, w)
    own = _background(data, "blackswan", frames)
    yield "own: blackswan + tennis", own, _masks(data, "tennis", frames, *size(own))
    shake, m = np.random.default_rng(1).integers(-12, 13, (frames, 2)), 12
    jitter = np.stack([f[m + dy:h - m + dy, m + dx:w - m + dx] for f, (dy, dx) in zip(vtest, shake)])
    yield "jitter: vtest + dogs-jump", jitter, _masks(data, "dogs-jump", frames, *size(jitter))
    jpeg = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 25])[1], cv2.IMREAD_COLOR)
                     for f in vtest])
    yield "jpeg: vtest + dogs-jump", jpeg, _masks(data, "dogs-jump", frames, h, w)
    blur = np.stack([cv2.blur(f, (9, 1)) for f in car])
    yield "blur: running_car + tennis", blur, _masks(data, "tennis", frames, *size(car))
    logo = np.zeros((frames, h, w), bool)
    logo[:, : h // 6, w - w // 4:] = True
    yield "logo: vtest, a fixed box in the corner", vtest, logo
    ch, cw = size(car)
    sign = np.zeros((frames, ch, cw), bool)
    sign[:, ch // 3: ch // 3 + ch // 5, cw // 2 - cw // 10: cw // 2 + cw // 10] = True
    yield "sign: running_car, a fixed box in the middle", car, sign
    th, tw = size(tree)
    wire = np.zeros((frames, th, tw), np.uint8)
    for t in range(frames):
        x = int(tw * (0.2 + 0.4 * t / max(frames - 1, 1)))
        cv2.line(wire[t], (x, 0), (x + tw // 5, th - 1), 1, 3)
    yield "wire: tree, a thin line drifting", tree, wire > 0
    still = np.zeros((h, w), np.uint8)  # two wires of about 4 and 5 px at 320 wide, where people walk
    cv2.line(still, (w // 32, h // 35), (w - w // 16, h - h // 17), 1, max(1, round(4 * w / 320)))
    cv2.line(still, (w * 3 // 16, h - 1), (w * 5 // 8, 0), 1, max(1, round(5 * w / 320)))
    yield "still-wires: vtest, two still wires where people walk", vtest, np.repeat(still[None] > 0, frames, axis=0)
    grown = _masks(data, "dogs-jump", frames, h, w).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (49, 49))
    yield "large: vtest + dogs-jump grown 24 px", vtest, np.stack([cv2.dilate(m, kernel) > 0 for m in grown])
    border = _masks(data, "blackswan", frames, ch, cw)
    left = int(np.nonzero(border.any(axis=(0, 1)))[0].min())
    yield "border: running_car + blackswan at the left edge", car, np.roll(border, -left, axis=2)
    gaps = _masks(data, "tennis", frames, h, w)
    gaps[(np.arange(frames) // 5) % 2 == 1] = False
    yield "gaps: vtest + tennis, the hole in alternate five frames", vtest, gaps
    mix = np.clip((np.arange(frames) - (half - 5)) / 10.0, 0.0, 1.0)[:, None, None, None]  # over frames 15-25
    dissolve = (tree * (1 - mix) + car_as_tree * mix).round().astype(np.uint8)
    yield "dissolve: tree dissolving into running_car + blackswan", dissolve, _masks(data, "blackswan", frames,
                                                                                       *size(tree))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not (args.data / "bg").is_dir():
        print(f"skipped: no composed clips in {args.data}")
        return 0
    wanted = set(filter(None, args.cases.split(",")))
    settings = overrides(0, args.set)
    print("| clip | hole | engine | Telea | engine - Telea (per frame) | consistency engine / Telea | wall |")
    print("|---|---|---|---|---|---|---|")
    for name, truth, holes in hard_clips(args.data, args.frames):
        if wanted and name.split(":")[0] not in wanted:
            continue
        shown = _shown(truth, holes)
        start = time.monotonic()
        engine = inpaint(shown, holes, make_config("fast", **settings)).frames
        wall = time.monotonic() - start
        telea = opencv_inpaint(shown, holes, "telea").frames
        scores = []
        for out in (engine, telea):
            assert np.array_equal(out[~holes], shown[~holes]), f"{name}: pixels outside the hole changed"
            scores.append((video_scores(out, truth, holes, whole_frame=False).means()["psnr_hole"],
                           psnr(out, truth, holes), temporal_consistency(out, holes, ConsistencyConfig())[0]))
        (e, ep, ec), (t, tp, tc) = scores
        print(f"| {name} | {holes.mean() * 100:.1f} % | {e:.2f} / {ep:.2f} | {t:.2f} / {tp:.2f} | {e - t:+.2f} | "
              f"{ec:.2f} / {tc:.2f} | {wall:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
