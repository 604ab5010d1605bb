"""Known optical flow, occlusion and reliable-flow masks for the flow and consistency losses (eqs. 4-5).

PWC-Net's weights cannot be fetched here, so a classical estimator (DIS) stands in by default; `FlowEstimator` is
the one seam a learned estimator plugs into, and RAFT (engine/raft.py) does when the user has its weights. Flow is estimated on the *masked* input (the hole filled by OpenCV's Telea
inpainting) so a composed clip's ground truth never leaks into supervision.
"""
from __future__ import annotations

import zipfile

from dataclasses import dataclass
from typing import Callable, Protocol

import cv2
import numpy as np
import torch

from vinpaint.errors import InputError
from vinpaint.files import atomic_write

from .config import FLOW_OFFSETS
from .parallel import each_frame
from .warp import backward_warp


class FlowEstimator(Protocol):
    """Dense flow from frame a to frame b: uint8 RGB [H,W,3] x2 -> float32 [H,W,2] pixels, a(x) ~ b(x + F(x))."""

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


class DISFlow:
    """OpenCV's Dense Inverse Search: fast on a CPU, no weights, good on the rigid and camera motion we fill from."""

    PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}

    def __init__(self, preset: str = "medium"):
        if preset not in self.PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}")
        self._dis = cv2.DISOpticalFlow_create(self.PRESETS[preset])

    MIN_SIDE = 32
    """OpenCV's DIS refuses small images (8x8, 2x40: "width or height >= 12"), and its ultrafast and fast presets
    crash the process on wide, short ones (160x24, 1000x28: a segmentation fault, OpenCV 5.0). Smaller sides
    are padded to this by repeating the edges, and the flow is cropped back."""

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
        h, w = ga.shape
        pad_y, pad_x = max(0, self.MIN_SIDE - h), max(0, self.MIN_SIDE - w)
        if pad_y or pad_x:
            ga, gb = (cv2.copyMakeBorder(g, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE) for g in (ga, gb))
        return self._dis.calc(ga, gb, None)[:h, :w].astype(np.float32)


def make_estimator(name: str, preset: str = "medium", raft_weights: str = "", raft_iterations: int = 12,
                   notify: Callable[[str], None] | None = None, device: str | torch.device = "cpu") -> FlowEstimator:
    """The configured estimator (FlowConfig's fields). 'raft' without a weights file falls back to DIS and says so
    through `notify` (one line); a file that is not RAFT's raises InputError. `device` runs RAFT there."""
    if name == "dis":
        return DISFlow(preset)
    if name == "raft":
        from .raft import RAFTFlow, load_raft

        net, notice = load_raft(raft_weights)
        if notify:
            notify(notice)
        return DISFlow(preset) if net is None else RAFTFlow(net, raft_iterations, device)
    raise ValueError(f"unknown flow estimator {name!r}; available: dis, raft")


@dataclass
class KnownFlow:
    """Per frame i and offset k (FLOW_OFFSETS): flow F(i,i+k), validity O (occlusion check) and M^f.

    flow [T,K,2,H,W] pixels; occlusion_valid and reliable [T,K,1,H,W] in {0,1}; exists [T,K] (j inside the clip);
    scale [K]: the normaliser the flow head predicts in units of, per interval as the authors' code: the largest
    |component| (dx or dy) of the flows of offsets +t and -t together, so both directions share it.
    """

    flow: np.ndarray
    occlusion_valid: np.ndarray
    reliable: np.ndarray
    exists: np.ndarray
    scale: np.ndarray

    def save(self, path) -> None:
        atomic_write(path, lambda f: np.savez(f, flow=self.flow, occlusion_valid=self.occlusion_valid,
                                              reliable=self.reliable, exists=self.exists, scale=self.scale))

    def fits(self, t_count: int, height: int, width: int) -> bool:
        """Whether every array has the shape compute_known_flow gives a clip of t_count frames at height x width
        (a cache of another clip or size, or a planted file, does not)."""
        k = len(FLOW_OFFSETS)
        want = {"flow": (t_count, k, 2, height, width), "occlusion_valid": (t_count, k, 1, height, width),
                "reliable": (t_count, k, 1, height, width), "exists": (t_count, k)}
        return all(getattr(self, name).shape == shape for name, shape in want.items()) and \
            self.scale.shape[:1] == (k,)

    @classmethod
    def load(cls, path) -> "KnownFlow":
        """Read a cache written by save(): plain arrays only (no pickles); anything else is InputError."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(**{k: z[k] for k in ("flow", "occlusion_valid", "reliable", "exists", "scale")})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"the flow cache {path} is damaged or not vinpaint's ({str(exc)[:80]}); delete it or "
                             "use --restart") from None


def fill_holes_for_flow(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """uint8 RGB [H,W,3], bool [H,W] -> the frame with the hole filled smoothly, so no object (or truth) leaks in."""
    if not hole.any():
        return frame
    return cv2.inpaint(frame, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)


def occlusion_check(f_ij: torch.Tensor, f_ji: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Forward-backward check: [B,2,H,W] x2 -> [B,1,H,W], 1 where exp(-|F_ij + F_ji(x+F_ij)|^2/2) > threshold
    and x + F_ij lands inside frame j."""
    back, inside = backward_warp(f_ji, f_ij, return_valid=True)
    d2 = ((f_ij + back) ** 2).sum(1, keepdim=True)
    return ((torch.exp(-d2 / 2) > threshold).to(f_ij.dtype)) * inside


def reliable_flow_mask(known_i: torch.Tensor, known_j: torch.Tensor, f_ij: torch.Tensor) -> torch.Tensor:
    """M^f(i,j) = 1 - (hole_i OR hole_j warped by F(i,j)): [B,1,H,W] known masks (1 = known) -> [B,1,H,W] in {0,1}.

    As the authors' code: hole_j is warped bilinearly with zeros outside frame j and any trace of it counts, so a
    pixel whose known flow leaves the frame is *reliable* (outside M^f's complement, the consistency term's region)
    unless it is in hole_i; the flow loss still skips it, through the occlusion check's in-bounds test."""
    warped = backward_warp(1.0 - known_j, f_ij, mode="bilinear")
    return known_i * (warped <= 1e-6).to(known_i.dtype)


def compute_known_flow(frames: np.ndarray, holes: np.ndarray, estimator: FlowEstimator,
                       occlusion_threshold: float = 0.5,
                       progress: Callable[[int, int], None] | None = None) -> KnownFlow:
    """uint8 [T,H,W,3] working-resolution frames, bool [T,H,W] holes -> KnownFlow for every FLOW_OFFSET."""
    t_count, h, w, _ = frames.shape
    filled = each_frame(lambda i: fill_holes_for_flow(frames[i], holes[i]), range(t_count))
    k = len(FLOW_OFFSETS)
    flow = np.zeros((t_count, k, 2, h, w), np.float32)
    exists = np.zeros((t_count, k), bool)
    pairs = [(i, ki) for i in range(t_count) for ki, off in enumerate(FLOW_OFFSETS) if 0 <= i + off < t_count]
    neighbours = [(i, ki) for i, ki in pairs if abs(FLOW_OFFSETS[ki]) == 1]  # these find the cuts
    done = shown = 0

    def estimate(i: int, ki: int) -> None:
        nonlocal done, shown
        flow[i, ki] = estimator(filled[i], filled[i + FLOW_OFFSETS[ki]]).transpose(2, 0, 1)
        exists[i, ki] = True
        done += 1
        if progress:
            progress(done, len(pairs))
            shown = done

    for i, ki in neighbours:
        estimate(i, ki)
    shot = clip_shots(filled, holes, flow)
    for i, ki in pairs:  # no flow or consistency term across a cut: the other frame shows another scene
        if shot[i] != shot[i + FLOW_OFFSETS[ki]]:
            done += not exists[i, ki]  # nothing to estimate across a cut: counted, so the bar ends at len(pairs)
            exists[i, ki] = False
            flow[i, ki] = 0.0
        elif not exists[i, ki]:
            estimate(i, ki)
    if progress and shown != done:
        progress(done, len(pairs))  # pairs skipped last: their count not yet shown

    known = torch.from_numpy(~holes).float()[:, None]
    occ = np.zeros((t_count, k, 1, h, w), np.float32)
    rel = np.zeros((t_count, k, 1, h, w), np.float32)
    for ki, off in enumerate(FLOW_OFFSETS):
        back_ki = FLOW_OFFSETS.index(-off)
        idx = [i for i in range(t_count) if exists[i, ki]]
        if not idx:
            continue
        jdx = [i + off for i in idx]
        f_ij = torch.from_numpy(flow[idx, ki])
        f_ji = torch.from_numpy(flow[jdx, back_ki])
        occ[idx, ki] = occlusion_check(f_ij, f_ji, occlusion_threshold).numpy()
        rel[idx, ki] = reliable_flow_mask(known[idx], known[jdx], f_ij).numpy()
    rel[~exists] = 1.0  # eq. 5 weighs by 1 - M^f: nothing of a pair across a cut

    return KnownFlow(flow, occ, rel, exists, flow_scales(flow, exists))


def clip_shots(frames: np.ndarray, holes: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The shot each frame belongs to, int [T] counting from 0: a new one after each neighbouring pair that does
    not show the same scene (engine/propagate.py same_scene), from frames uint8 [T,H,W,3] with their holes
    filled, holes bool [T,H,W] and compute_known_flow's flow [T,K,2,H,W] (offsets +1 and -1 used)."""
    from .propagate import plate_px, same_scene  # propagate needs this module: imported when called

    ahead, back = FLOW_OFFSETS.index(1), FLOW_OFFSETS.index(-1)
    tolerance = float(plate_px(4, holes.shape[2]))  # the chains' forward-backward tolerance, in these pixels
    cuts = [not same_scene(frames[i], frames[i + 1], holes[i], holes[i + 1], flow[i, ahead].transpose(1, 2, 0),
                           flow[i + 1, back].transpose(1, 2, 0), tolerance, seed=i)
            for i in range(len(frames) - 1)]
    return np.concatenate([[0], np.cumsum(cuts)]).astype(np.int64)


def flow_scales(flow: np.ndarray, exists: np.ndarray) -> np.ndarray:
    """flow [T,K,2,H,W] pixels, exists [T,K] -> [K] normalisers: per interval t, the largest |dx| or |dy| over the
    flows of both offsets +t and -t (the authors' flow_value_max), at least 1 pixel (a still clip has none)."""
    scale = np.ones(len(FLOW_OFFSETS), np.float32)
    for ki, off in enumerate(FLOW_OFFSETS):
        both = [kk for kk in (ki, FLOW_OFFSETS.index(-off)) if exists[:, kk].any()]
        if both:
            scale[ki] = max(max(float(np.abs(flow[exists[:, kk], kk]).max()) for kk in both), 1.0)
    return scale
