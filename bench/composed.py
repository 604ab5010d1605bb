"""What the composed-clip benchmarks share: a real background at its own resolution with a real object's masks
pasted on (so the truth behind the hole is known), and engine overrides from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vinpaint.media.io import read_clip

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""The shared real clips (read from there, never copied into the repository)."""


def composed(data: Path, background: str, masks: str, frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """bg/<background>'s first `frames` frames and <masks>/masks (or <masks> itself when it names a mask folder,
    e.g. dogs-jump/masks_person) resized onto them -> (truth uint8 [T,H,W,3], holes bool [T,H,W]); None when
    either folder is absent (the caller skips politely). A background that is not in bg/ may be a masked
    sequence's own frames (e.g. blackswan): its object is then part of the truth, which adds cameras and scenes
    that the three clean backgrounds lack (a pan over water, a tennis court) at the cost of a moving object that
    the pasted hole may cover."""
    bg_dir = data / "bg" / background / "frames"
    if not bg_dir.is_dir():
        bg_dir = data / background / "frames"
    mask_dir = data / masks / ("" if "/" in masks else "masks")
    if not bg_dir.is_dir() or not mask_dir.is_dir():
        return None
    truth = read_clip(bg_dir).frames[:frames]
    h, w = truth.shape[1:3]
    raw = read_clip(mask_dir).frames[:len(truth)]
    holes = np.stack([cv2.resize(m.max(axis=-1), (w, h), interpolation=cv2.INTER_NEAREST) > 127 for m in raw])
    return truth[:len(holes)], holes



STILL_MASKS = ("rect", "frozen")
"""Masks that never move: 'rect', a logo-sized box in the lower right (3.6 % of the frame); 'frozen',
schoolgirls' first mask on every frame. On a still camera no frame ever shows what is behind them."""


def composed_pair(data: Path, pair: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """"background:masks" -> (truth, holes, shown: the truth with the hole grey, all a method may see); None when
    the shared clips are absent (the caller skips politely). masks may also be one of STILL_MASKS."""
    background, masks = pair.split(":")
    clip = composed(data, background, "schoolgirls" if masks in STILL_MASKS else masks, frames)
    if clip is None:
        return None
    truth, holes = clip
    if masks in STILL_MASKS:
        t_count, h, w = holes.shape
        still = holes[0].copy()
        if masks == "rect":
            still[:] = False
            still[int(h * .72):int(h * .9), int(w * .7):int(w * .9)] = True
        holes = np.broadcast_to(still, holes.shape).copy()
    return truth, holes, _shown(truth, holes)


def _shown(truth: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """What a method may see: the truth with the hole grey (the truth never reaches any method)."""
    shown = truth.copy()
    shown[holes] = 128
    return shown


def enlarged(clip: tuple[np.ndarray, np.ndarray, np.ndarray], scale: float):
    """A composed_pair clip enlarged by `scale`: the truth bicubic, the hole nearest, shown grey in the hole."""
    if scale == 1.0:
        return clip
    truth, holes, _ = clip
    h, w = round(truth.shape[1] * scale), round(truth.shape[2] * scale)
    truth = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in truth])
    holes = np.stack([cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0 for m in holes])
    return truth, holes, _shown(truth, holes)

def composed_pairs(data: Path, pairs: str, frames: int):
    """"a:b,c:d" -> (pair, truth, holes, shown) for each pair whose clips are there; says which are skipped."""
    for pair in filter(None, pairs.split(",")):
        clip = composed_pair(data, pair, frames)
        if clip is None:
            print(f"skipped {pair}: not in {data}")
            continue
        yield (pair, *clip)


def overrides(steps: int, items: list[str]) -> dict:
    """--steps N and --set KEY=VALUE (JSON values, else the text) -> dotted engine overrides."""
    out: dict = {"train.max_steps": steps} if steps else {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def add_clip_arguments(parser, frames: int) -> None:
    """The options every composed-clip benchmark takes: the data, the pair, its length, the engine's settings."""
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--background", default="vtest")
    parser.add_argument("--masks", default="blackswan")
    parser.add_argument("--frames", type=int, default=frames)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--variant", default="dip-vid-flow")
    parser.add_argument("--steps", type=int, default=0, help="override train.max_steps (0: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other setting (JSON values), e.g. --set propagation.enabled=false")


def load(args) -> tuple[np.ndarray, np.ndarray] | None:
    """The pair the options name, or None after saying it is skipped."""
    clip = composed(args.data, args.background, args.masks, args.frames)
    if clip is None:
        print(f"skipped: {args.background} or {args.masks} is not in {args.data}")
    return clip
