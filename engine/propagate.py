"""Flow-guided propagation: carry real, sharp pixels into the hole from the frames where the background is seen.

Beyond the paper. The generator fills the hole with a plausible but soft image; wherever the camera or the object
moved, some other frame shows the true background. Here the flow is completed inside the hole (smoothly, from the
flow around it, or from the generator's own flow head), each hole pixel follows it frame by frame, forward and
backward in time, until it lands on a pixel that is known, and that pixel is copied at the source's own resolution.
Every step of a chain must pass a forward-backward check, so a chain stops where the completed flows disagree
(occlusions, the object's own motion). Only pixels that no chain reaches keep the generated fill.

All arrays are NumPy at source resolution; nothing here needs torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .flow import FlowEstimator, fill_holes_for_flow
from .composite import display_u8, grown, resize_frames, resize_holes, to_float
from .exposure import Exposure, clip_exposure
from .diffusion import Blend, clip_diffusion, depth_grow, diffuse, grown_hole, hole_depth, sampled_frames
from .parallel import each_frame, side_by_side
from vinpaint.errors import InputError
from vinpaint.files import atomic_write
from .result import GENERATED, PROPAGATED



@dataclass
class Propagation:
    """What propagation found: colours where a chain reached a known pixel, and how far it travelled."""

    colours: np.ndarray
    """float32 [T,H,W,3] in [0,1]: the propagated colour (meaningful only where `reached`)."""
    reached: np.ndarray
    """bool [T,H,W]: hole pixels that got a real pixel from another frame."""
    distance: np.ndarray
    """int16 [T,H,W]: frames between a reached pixel and the frame it was copied from (0 elsewhere)."""
    hidden_band: np.ndarray | None = None
    """bool [T,H,W] or None: with the self-check, the part of its held-out band that no other frame shows either
    (`hidden_band`); None: not computed (no self-check, too little unseen to train a model on, or a cache from
    before it existed)."""
    flows: "NeighbourFlows | None" = None
    """The completed neighbour flows the chains followed, kept in memory for the steady fill (engine/stabilise.py);
    not cached (None after a load: they are estimated again, with the same result)."""
    exposure: Exposure | None = None
    """How the light changes across the clip in the frames' own values (engine/exposure.py), which the steady fill
    needs as well; None where it is even or not corrected. Not cached: estimated again with the flows."""


def complete_flow(flow: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Fill a flow field where it is unknown by pull-push interpolation: [H,W,2], bool [H,W] -> [H,W,2].

    Smooth, so camera motion and slow rigid motion continue across the hole; a hole's own (object) motion is
    exactly what must not be kept, which is why the flow inside it is discarded rather than trusted."""
    return pull_push(flow, unknown)


def pull_push(field: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """A field [H,W,C] filled where it is unknown (bool [H,W]) from the known values around, smoothly: each level
    halves the size with area averaging (pull), then the gaps take the coarser level's values (push)."""
    if not unknown.any():
        return field
    known = (~unknown).astype(np.float32)
    if known.sum() == 0:
        return np.zeros_like(field)
    channels = field.shape[2]
    levels = [(field * known[..., None], known)]
    while min(levels[-1][1].shape) > 4 and levels[-1][1].min() == 0:
        value, weight = levels[-1]
        h, w = weight.shape
        size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
        value = cv2.resize(value, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], channels)
        weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
        levels.append((value, weight))
    value, weight = levels[-1]
    filled = value / np.maximum(weight, 1e-6)[..., None]
    if (weight <= 0).any():  # a coarsest level with gaps: their mean is the best guess
        filled[weight <= 0] = filled[weight > 0].mean(axis=0) if (weight > 0).any() else 0.0
    for value, weight in reversed(levels[:-1]):
        h, w = weight.shape
        up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, channels)
        mean = value / np.maximum(weight, 1e-6)[..., None]
        alpha = np.clip(weight, 0.0, 1.0)[..., None]
        filled = alpha * mean + (1.0 - alpha) * up
    out = field.copy()
    out[unknown] = filled[unknown]
    return out


@dataclass
class NeighbourFlows:
    """Completed flows between neighbouring frames, kept at the size they were estimated at (float16), so a long
    4K shot does not hold four float32 planes per frame at source resolution."""

    forward: np.ndarray
    """float16 [T-1,h,w,2]: frame t to t+1, in estimation pixels."""
    backward: np.ndarray
    """float16 [T-1,h,w,2]: frame t+1 to t."""
    scale_x: float
    scale_y: float
    """Estimation size over source size."""
    linked: np.ndarray | None = None
    """bool [T-1]: whether frames k and k+1 show the same scene (same_scene); no step of any copy, light
    measurement or steady-fill track crosses a pair that does not (a cut). None: every pair does."""

    def links(self, k: int) -> bool:
        """Whether anything may be carried between frames k and k+1."""
        return self.linked is None or bool(self.linked[k])

    def at(self, direction: int, k: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flow between frames k and k+1 (direction +1: forward, -1: backward) at source coordinates (N,) -> [N,2]
        in source pixels."""
        field = (self.forward if direction > 0 else self.backward)[k]
        flow = _sample(field, *_on_map(x, y, self.scale_x, self.scale_y, field.shape)).astype(np.float32)
        flow[:, 0] /= self.scale_x
        flow[:, 1] /= self.scale_y
        return flow

    def checked_step(self, direction: int, k: int, x: np.ndarray, y: np.ndarray, tolerance: float,
                     size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points (N,) of frame k (direction +1) or k+1 (-1) carried to the other frame -> (x, y, ok): ok where they
        land inside a source of `size` (h, w) and the flow back brings them within `tolerance` px of where they
        started (the forward-backward check every copy, and the light's measurement, rely on)."""
        h, w = size
        f = self.at(direction, k, np.asarray(x, np.float32), np.asarray(y, np.float32))
        qx, qy = x + f[:, 0], y + f[:, 1]
        ok = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        back = self.at(-direction, k, qx, qy)
        ok &= np.hypot(f[:, 0] + back[:, 0], f[:, 1] + back[:, 1]) <= tolerance
        return qx, qy, ok & self.links(k)


SAME_SCENE_CORRELATION = 0.75
"""The least correlation along a pair's checked flow, of grey values or of their detail, for its frames to count
as one scene. Measured (docs/evaluation.md, "Cuts inside a clip") on every pair of 27 composed and hard clips
(grain, flicker, zoom, three times the motion, JPEG 25, motion blur) and a synthetic half-flickering frame: the
larger of the two at least 0.965; across a cut both at most 0.62."""


def same_scene(a: np.ndarray, b: np.ndarray, unknown_a: np.ndarray, unknown_b: np.ndarray, forward: np.ndarray,
               backward: np.ndarray, tolerance: float, samples: int = 4000, seed: int = 0) -> bool:
    """Whether frames a and b (uint8 [h,w,3], holes bool [h,w], flows float [h,w,2] both ways, all at the flow's
    size) show the same scene: a's known pixels and b's where the forward-backward checked flow carries them must
    correlate, in grey values (free of a change of gain: flicker, a fade) or in their detail (grey minus its blur:
    free of a light that changes unevenly). Across a cut the flow still pairs pixels up, and a tenth of them may
    pass the check in flat regions, so the check alone does not tell. Where under 3 % of the sampled known pixels
    pass it, no motion links the frames either; a pair too flat or with too little known to tell counts as one
    scene, as before this check."""
    h, w = unknown_a.shape
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(0, h, samples), rng.integers(0, w, samples)
    known = ~unknown_a[ys, xs]
    pair = NeighbourFlows(forward[None], backward[None], 1.0, 1.0)
    qx, qy, ok = pair.checked_step(+1, 0, xs[known].astype(np.float32), ys[known].astype(np.float32), tolerance,
                                   (h, w))
    qx, qy = np.clip(qx[ok], 0, w - 1), np.clip(qy[ok], 0, h - 1)
    ys, xs = ys[known][ok], xs[known][ok]
    landed = _corners_known(unknown_b, qx, qy)
    if landed.sum() < max(20, 0.03 * known.sum()):  # the flow found almost no consistent motion
        return bool(known.sum() < 500)  # too little known to tell: one scene; else no motion links them
    ys, xs, qx, qy = ys[landed], xs[landed], qx[landed], qy[landed]
    grey = _agree(a[ys, xs].astype(np.float32).mean(axis=-1), _sample(b, qx, qy).astype(np.float32).mean(axis=-1))
    if grey:
        return True
    detail = _agree(_detail(a)[ys, xs], _sample(_detail(b)[..., None], qx, qy)[:, 0])  # blurs both: only here
    return bool(detail) or (grey is None and detail is None)


def _agree(here: np.ndarray, there: np.ndarray) -> bool | None:
    """Whether two samples (N,) correlate by SAME_SCENE_CORRELATION; None where either is too flat to tell."""
    if here.std() < 1.0 or there.std() < 1.0:
        return None
    return bool(np.corrcoef(here, there)[0, 1] >= SAME_SCENE_CORRELATION)


def _detail(frame: np.ndarray) -> np.ndarray:
    """A frame's detail: its grey values minus their Gaussian blur of 4 px, float32 [h,w]."""
    grey = frame.astype(np.float32).mean(axis=-1)
    return grey - cv2.GaussianBlur(grey, (0, 0), 4.0)


def neighbour_flows(frames: np.ndarray, holes: np.ndarray, estimator: FlowEstimator, max_width: int = 960,
                    band: int = 4, progress: Callable[[int, int], None] | None = None,
                    masked: bool = True, tolerance: float = 4.0) -> NeighbourFlows:
    """Completed flows between neighbouring frames: frames uint8 [T,H,W,3], holes bool [T,H,W].

    Flow is estimated on frames whose hole is filled smoothly (`masked`; False: on the frames as given, object
    and all), then discarded inside the hole and a `band` of pixels around it (where the estimate is worst) and
    completed from outside. Frames wider than `max_width` are estimated at a reduced size. Each pair is checked
    for a cut (same_scene, with the forward-backward `tolerance` in source px)."""
    t_count, height, width = holes.shape
    scale = min(1.0, max_width / float(width))
    size = (max(8, int(round(width * scale))), max(8, int(round(height * scale))))

    def prepared(i: int) -> tuple[np.ndarray, np.ndarray]:
        filled = fill_holes_for_flow(frames[i], holes[i]) if masked else frames[i]
        hole = grown(holes[i], band).astype(np.uint8)
        if size != (width, height):
            filled = cv2.resize(filled, size, interpolation=cv2.INTER_AREA)
            hole = cv2.resize(hole, size, interpolation=cv2.INTER_AREA) > 0
        return filled, hole > 0

    small, unknown = (list(x) for x in zip(*each_frame(prepared, range(t_count)))) if t_count else ([], [])
    forward = np.zeros((max(t_count - 1, 0), size[1], size[0], 2), np.float16)
    backward = np.zeros_like(forward)
    linked = np.ones(max(t_count - 1, 0), bool)
    for i in range(t_count - 1):
        ahead, back = estimator(small[i], small[i + 1]), estimator(small[i + 1], small[i])
        linked[i] = same_scene(small[i], small[i + 1], unknown[i], unknown[i + 1], ahead, back,
                               tolerance * scale, seed=i)
        forward[i] = complete_flow(ahead, unknown[i])
        backward[i] = complete_flow(back, unknown[i + 1])
        if progress:
            progress(i + 1, t_count - 1)
    return NeighbourFlows(forward, backward, size[0] / float(width), size[1] / float(height), linked)


PLATE_WIDTH = 480
"""The plate width (px) for which propagation's distances in pixels are given: the forward-backward tolerance, the
band of discarded flow around the hole, the self-check's held-out band, the seam, the steady fill's still
threshold, and calibrate_distance's band and ring (every clip they were measured on is at most this wide). On a
wider plate they grow in proportion (plate_scale), since the same motion, the same flow error and the same
structure span more pixels there."""


def plate_scale(width: int) -> float:
    """How much propagation's pixel distances grow on a plate `width` px wide: 1 up to PLATE_WIDTH."""
    return max(1.0, width / PLATE_WIDTH)


def chain_tolerance(settings, width: int) -> float:
    """The forward-backward tolerance (source px) of a step along the flow on a plate `width` px wide, for a
    PropagationConfig: the chains, the held-out band and the steady fill all check their steps with it."""
    return settings.tolerance * plate_scale(width)


def plate_px(px: int, width: int) -> int:
    """A distance of `px` pixels on a PLATE_WIDTH-wide plate, in whole source pixels of one `width` px wide."""
    return int(round(px * plate_scale(width)))


def check_band_width(settings, width: int) -> int:
    """The self-check's held-out band (source px) on a plate `width` px wide, for a PropagationConfig: the band
    hidden from training and the part of it no other frame shows (hidden_band) must be the same band."""
    return plate_px(settings.check_band, width)


def at_flow_size(frames: np.ndarray, holes: np.ndarray, flows: NeighbourFlows
                 ) -> tuple[np.ndarray, np.ndarray, NeighbourFlows]:
    """Frames, holes and flows at the size the flow was estimated at (the frames as they are up to 960 wide): the
    calibrations run there, with their band and ring in that plate's pixels. On a wider plate their full-size
    Telea fills cost minutes (1920x1440: 47 s of 40 frames, 4K about four times that) for a choice of whole frames
    that the smaller plate makes the same way (docs/evaluation.md, "Frames side by side")."""
    h, w = flows.forward.shape[1:3] if len(flows.forward) else holes.shape[1:]
    if (h, w) == holes.shape[1:]:
        return frames, holes, flows
    return (resize_frames(frames, (w, h)), resize_holes(holes, (w, h)),
            NeighbourFlows(flows.forward, flows.backward, 1.0, 1.0, flows.linked))


def calibrate_distance(frames: np.ndarray, holes: np.ndarray, flows: NeighbourFlows, band: int = 4, ring: int = 8,
                       per_frame: int = 1500, seed: int = 0, diffusion: "str | Blend" = "telea",
                       exposure: Exposure | None = None) -> tuple[int, dict[int, float]]:
    """How far in time copying pays on this clip: (largest distance whose copies beat diffusion, 0 for any;
    the copies' RMS error by distance).

    Known pixels in a ring just outside the hole stand in for it: each is carried d frames along the completed
    flow and compared with its true value, and `diffusion` (engine/diffusion.py) is scored on the same pixels
    with the ring added to the hole. A scene that changes (walking people, drifting flow) makes far copies worse
    than diffusion; a still or rigid one does not. Nothing here is tuned to a clip: the clip answers for itself.

    The band and ring are pixels of a PLATE_WIDTH-wide plate and grow with a wider one. Diffusion's error grows
    with depth into the hole and a copy's does not, so a ring of fixed pixels sits ever shallower in the same hole
    as the plate grows, flatters diffusion and cuts copies short: vtest + dogs-jump enlarged 4x to 1920 wide
    stopped copies at 2 frames instead of 8 (docs/evaluation.md, "Larger plates")."""
    t_count = holes.shape[0]
    samples = _ring_samples(holes, band, ring, per_frame, seed)
    if not samples:
        return 0, {}

    def diffusion_error(n: int) -> np.ndarray:
        t, grown, ys, xs = samples[n]
        filled = diffuse(frames[t], grown.astype(bool), diffusion)
        return ((filled[ys, xs] - frames[t][ys, xs]) / 255.0) ** 2

    diffusion_err = each_frame(diffusion_error, range(len(samples)))
    diffusion = float(np.sqrt(np.concatenate(diffusion_err).mean()))
    errors: dict[int, float] = {}
    distance = 1
    while distance < t_count:
        err = _ring_copy_errors(frames, holes, flows, samples, distance, (exposure,))
        if err is None:
            break
        errors[distance] = err[0]
        if errors[distance] > diffusion:
            return max(distance // 2, 1), errors | {0: diffusion}
        distance *= 2
    return 0, errors | {0: diffusion}


def ring_completed(holes: np.ndarray, flows: NeighbourFlows, band: int = 4, ring: int = 8) -> NeighbourFlows:
    """The flows (at their own size, as `holes`) with calibrate_distance's ring, and a pixel more, completed from
    outside as the hole is (clip_flows): the ring then stands in for the hole's copies with the hole's kind of
    flow, not with the estimate that the hole never gets."""
    w = holes.shape[2]
    reach = plate_px(band, w) + plate_px(ring, w) + 1
    forward, backward = np.empty_like(flows.forward), np.empty_like(flows.backward)

    def complete(k: int) -> None:
        forward[k] = complete_flow(flows.forward[k].astype(np.float32), grown(holes[k], reach))
        backward[k] = complete_flow(flows.backward[k].astype(np.float32), grown(holes[k + 1], reach))

    each_frame(complete, range(len(flows.forward)))
    return NeighbourFlows(forward, backward, flows.scale_x, flows.scale_y, flows.linked)


def _ring_samples(holes: np.ndarray, band: int, ring: int, per_frame: int, seed: int) -> list[tuple]:
    """calibrate_distance's known pixels: up to `per_frame` of each frame's ring (band and ring in pixels of a
    PLATE_WIDTH-wide plate) -> [(t, the hole grown by the ring uint8 [H,W], ys, xs)], drawn in frame order from one
    seeded stream, so the same on any thread count."""
    w = holes.shape[2]
    rng = np.random.default_rng(seed)
    kernels = _ring_kernels(plate_px(band, w), plate_px(ring, w))
    samples = []
    for t in range(holes.shape[0]):
        grown, ys, xs = _ring(holes[t].astype(np.uint8), kernels)
        if not len(ys):
            continue
        pick = rng.choice(len(ys), min(per_frame, len(ys)), replace=False)
        samples.append((t, grown, ys[pick], xs[pick]))
    return samples


def _ring_copy_errors(frames: np.ndarray, holes: np.ndarray, flows: NeighbourFlows, samples: list[tuple],
                      distance: int, exposures: tuple[Exposure | None, ...] = (None,)) -> list[float] | None:
    """RMS errors (0-1) of the ring's known pixels carried `distance` frames along the flow, both ways, against
    their true values, one per entry of `exposures` (None: as copied; an Exposure: in each frame's light), from one
    walk along the flow; None when none could be carried."""
    t_count, h, w = holes.shape
    err: list[list[np.ndarray]] = [[] for _ in exposures]
    for t, _, ys, xs in samples:
        for step in (+1, -1):
            if not 0 <= t + step * distance < t_count:
                continue
            x, y, ok = xs.astype(np.float32), ys.astype(np.float32), np.ones(len(xs), bool)
            for i in range(distance):
                k = t + step * i if step > 0 else t - i - 1
                if not flows.links(k):  # a walk stops at a cut: nothing of it is measured
                    ok[:] = False
                    break
                f = flows.at(step, k, x, y)
                x, y = x + f[:, 0], y + f[:, 1]
                ok &= (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
                x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
            target = t + step * distance
            ok &= _corners_known(holes[target], x, y)
            if ok.any():
                copied, true = _sample(frames[target], x[ok], y[ok]), frames[t][ys[ok], xs[ok]]
                for errors, exposure in zip(err, exposures):
                    lit = copied if exposure is None else exposure.relit(copied, target, t)
                    errors.append(((lit - true) / 255.0) ** 2)
    return [float(np.sqrt(np.concatenate(e).mean())) for e in err] if err[0] else None


def light_pays(frames: np.ndarray, holes: np.ndarray, flows: NeighbourFlows, exposure: Exposure, band: int = 4,
               ring: int = 8, per_frame: int = 1500, seed: int = 0) -> tuple[bool, float, float]:
    """Whether copies in each frame's light match the known ring around the hole better than copies as they are
    -> (pays, mean squared error (0-1) in light, as they are), over copies of 1, 2, 4 and 8 frames (those the
    clip has; 8-bit frames at the flow's size, as calibrate_distance). A measured drift of light that copies do
    not bear out (a moving camera's vignetting, the sky growing as it tilts) is then left alone: on running_car +
    blackswan the measured 5 % drift made 16-frame copies 2 % worse."""
    samples = _ring_samples(holes, band, ring, per_frame, seed)
    lit = plain = 0.0
    measured = 0
    for distance in (1, 2, 4, 8):
        if distance >= holes.shape[0]:
            break
        both = _ring_copy_errors(frames, holes, flows, samples, distance, (exposure, None))
        if both is None:
            break
        on, off = both
        lit, plain, measured = lit + on ** 2, plain + off ** 2, measured + 1
    if not measured:
        return False, float("nan"), float("nan")
    return lit < plain, lit / measured, plain / measured


LOCAL_RANGE = 4.0
"""How far the local copy error may lie from the clip's mean, either way (a factor on the squared error)."""


@dataclass
class LocalCopyError:
    """Where on each frame copying is harder than on the clip as a whole: the squared error of one-frame copies on
    the known ring around the hole, over its mean on the whole clip, spread smoothly over the frame (pull_push) and
    kept at the flow's size. A calibration by distance alone is one number for the whole clip; dogs running past
    one side of the hole or a still wall on the other are not, and the hole pixels near each are weighted by what
    copying did there (docs/evaluation.md, "Copy errors where they were measured")."""

    ratio: np.ndarray
    """float16 [T,h,w]: local over mean squared copy error, within [1/LOCAL_RANGE, LOCAL_RANGE]."""
    scale_x: float
    scale_y: float
    """Map size over source size."""

    def at(self, t: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The ratio at source coordinates (N,) of frame t -> (N,) float32."""
        field = self.ratio[t]
        return _sample(field[..., None], *_on_map(x, y, self.scale_x, self.scale_y, field.shape))[:, 0].astype(
            np.float32)


def local_copy_error(frames: np.ndarray, holes: np.ndarray, flows: NeighbourFlows, band: int = 4, ring: int = 8,
                     scale: tuple[float, float] = (1.0, 1.0), exposure: Exposure | None = None
                     ) -> LocalCopyError | None:
    """The LocalCopyError of a clip at the flow's size (at_flow_size): every known pixel of calibrate_distance's
    ring copied one frame along the flow, both ways; `scale` is that size over the source's (x, y). None when no
    ring pixel could be copied."""
    t_count, h, w = holes.shape
    kernels = _ring_kernels(plate_px(band, w), plate_px(ring, w))

    def copied(t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, ys, xs = _ring(holes[t].astype(np.uint8), kernels)
        total, count = np.zeros(len(ys), np.float32), np.zeros(len(ys), np.float32)
        for step in (+1, -1):
            n = t + step
            if not len(ys) or not 0 <= n < t_count or not flows.links(t if step > 0 else t - 1):
                continue
            f = flows.at(step, t if step > 0 else t - 1, xs.astype(np.float32), ys.astype(np.float32))
            x, y = np.clip(xs + f[:, 0], 0, w - 1), np.clip(ys + f[:, 1], 0, h - 1)
            ok = _corners_known(holes[n], x, y)
            copied = _sample(frames[n], x, y)
            if exposure is not None:
                copied = exposure.relit(copied, n, t)
            err2 = (((copied - frames[t][ys, xs]) / 255.0) ** 2).mean(axis=-1)
            total += np.where(ok, err2, 0.0)
            count += ok
        good = count > 0
        return ys[good], xs[good], total[good] / count[good]

    rings = each_frame(copied, range(t_count))
    if not any(len(e) for _, _, e in rings):
        return None
    mean = max(float(np.concatenate([e for _, _, e in rings]).mean()), 1e-8)
    ratio = np.ones((t_count, h, w), np.float16)

    def spread(t: int) -> None:
        ys, xs, err2 = rings[t]
        if len(ys):
            field, unknown = np.zeros((h, w, 1), np.float32), np.ones((h, w), bool)
            field[ys, xs, 0], unknown[ys, xs] = err2 / mean, False
            ratio[t] = np.clip(pull_push(field, unknown)[..., 0], 1 / LOCAL_RANGE, LOCAL_RANGE)

    each_frame(spread, range(t_count))
    return LocalCopyError(ratio, *scale)


def _on_map(x: np.ndarray, y: np.ndarray, scale_x: float, scale_y: float, shape: tuple[int, ...]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates (N,) -> coordinates on a map of `shape` (h, w, ...) that is `scale` times the source's
    size (pixel centres aligned), clipped to it."""
    h, w = shape[:2]
    return (np.clip((x + 0.5) * scale_x - 0.5, 0, w - 1), np.clip((y + 0.5) * scale_y - 0.5, 0, h - 1))


def _ring_kernels(band: int, ring: int) -> tuple[np.ndarray, np.ndarray]:
    """The dilations that bound the calibration's ring: `band` px and `band + ring` px around the hole."""
    return tuple(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 3, 2 * r + 3)) for r in (band, band + ring))


def _ring(hole: np.ndarray, kernels: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 hole [H,W] -> (the hole grown by band + ring, and the ring's known pixels ys, xs): the known pixels
    that calibrate_distance and local_copy_error stand in for the hole with."""
    inner, outer = kernels
    grown = cv2.dilate(hole, outer)
    ys, xs = np.nonzero(grown & ~cv2.dilate(hole, inner) & ~hole)
    return grown, ys, xs


def _bilinear(shape: tuple[int, ...], x: np.ndarray, y: np.ndarray):
    """The four neighbours (rows, cols) of float coordinates (N,) on a map of `shape` and their weights [N,1]."""
    h, w = shape[:2]
    x0 = np.clip(np.floor(x).astype(np.int64), 0, w - 1)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return ((y0, x0), (y0, x1), (y1, x0), (y1, x1)), ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy)


def _corners_known(hole: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """bool (N,): all four pixels a bilinear sample at (x, y) mixes lie outside the hole, so what the calibration
    measures never depends on what the input shows inside it (before, 2026-12-01: only the nearest pixel was
    checked, and an audit saw the fill change with the hole's content)."""
    corners, _ = _bilinear(hole.shape, x, y)
    return ~(hole[corners[0]] | hole[corners[1]] | hole[corners[2]] | hole[corners[3]])


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of image [H,W,C] at float coordinates (N,) -> [N,C] (coordinates must be in bounds)."""
    corners, weights = _bilinear(image.shape, x, y)
    return sum(wt * image[c] for c, wt in zip(corners, weights))


def _sample_known(frame: np.ndarray, hole: np.ndarray, x: np.ndarray, y: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of one frame (any dtype) with its hole pixels weighted 0 -> (colour sum float [N,3], weight
    [N,1]): _sample of frame x knownness and of knownness, from the four corners alone, so no frame of the clip
    is ever converted to float whole (a 40-frame 4K clip in float32 is 4 GB)."""
    corners, weights = _bilinear(hole.shape, x, y)
    known = [(~hole[c]).astype(np.float32)[:, None] for c in corners]
    value = sum(wt * (to_float(frame[c]) * k) for c, wt, k in zip(corners, weights, known))
    return value, sum(wt * k for wt, k in zip(weights, known))


class _HolePixels:
    """Each frame's hole pixels in row-major order (np.nonzero), and where a pixel of the frame sits in that order:
    propagation keeps its per-pixel state on these alone, a few per cent of a plate (issue 12: on a 40-frame 4K
    clip the full-frame maps of both directions took the run to the machine's 24 GB)."""

    def __init__(self, holes: np.ndarray):
        self.holes = holes
        self.where = [np.nonzero(h) for h in holes]

    def count(self, t: int) -> int:
        return len(self.where[t][0])

    def slots(self, t: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Positions in frame t's order of the pixels (ys, xs), -1 for a pixel outside its hole."""
        index = np.full(self.holes.shape[1:], -1, np.int32)
        index[self.where[t]] = np.arange(self.count(t))
        return index[ys, xs]

    def dense(self, t: int, values: np.ndarray, fill=0) -> np.ndarray:
        """Frame t's per-hole-pixel values as a full [H,W,...] map, `fill` elsewhere."""
        out = np.full(self.holes.shape[1:] + values.shape[1:], fill, values.dtype)
        out[self.where[t]] = values
        return out


def _sources(pixels: _HolePixels, flows: NeighbourFlows, order: range, step: int, tolerance: float,
             max_distance: int, positions: bool = True
             ) -> tuple[list[np.ndarray], list[np.ndarray] | None, list[np.ndarray] | None]:
    """One direction of propagation, geometry only. For each frame t in `order`, hole pixels follow the flow to
    frame t+step and take that frame's known pixel, or the source that frame's own hole pixel was given (a chain).
    -> per frame, on its hole pixels (_HolePixels order): source frame int32, -1 where nothing reached; source x, y
    float32, or None without `positions` (which frame a chain reaches does not depend on them). A known pixel is
    its own source."""
    holes = pixels.holes
    t_count, h, w = holes.shape
    src_t = [np.full(pixels.count(t), -1, np.int32) for t in range(t_count)]
    src_x = [xs.astype(np.float32) for _, xs in pixels.where] if positions else None
    src_y = [ys.astype(np.float32) for ys, _ in pixels.where] if positions else None
    for t in order:
        n = t + step
        if not (0 <= n < t_count) or not pixels.count(t):
            continue
        k = t if step > 0 else t - 1  # flows are stored between t and t+1
        ys, xs = pixels.where[t]
        qx, qy, ok = flows.checked_step(step, k, xs, ys, tolerance, (h, w))
        (idx,) = np.nonzero(ok)
        qx, qy = qx[ok], qy[ok]
        rx = np.clip(np.rint(qx).astype(np.int64), 0, w - 1)
        ry = np.clip(np.rint(qy).astype(np.int64), 0, h - 1)
        # a known pixel of frame n is its own source; a hole pixel's is where its own chain ended
        slot = pixels.slots(n, ry, rx)
        landed = _at_landing(src_t[n], slot, np.full(len(slot), n))
        good = landed >= 0
        if max_distance > 0:
            good &= np.abs(landed - t) <= max_distance
        idx, rx, ry, qx, qy, landed, slot = idx[good], rx[good], ry[good], qx[good], qy[good], landed[good], slot[good]
        src_t[t][idx] = landed
        if positions:
            src_x[t][idx] = _at_landing(src_x[n], slot, rx) + (qx - rx)
            src_y[t][idx] = _at_landing(src_y[n], slot, ry) + (qy - ry)
    return src_t, src_x, src_y


def _at_landing(values: np.ndarray, slot: np.ndarray, elsewhere: np.ndarray) -> np.ndarray:
    """Per-hole-pixel `values` of the frame a chain stepped to, where it landed in that frame's hole (slot >= 0,
    _HolePixels.slots), and `elsewhere` where it landed on a known pixel (slot -1)."""
    in_hole = slot >= 0
    if not in_hole.any():
        return elsewhere
    return np.where(in_hole, values[np.maximum(slot, 0)], elsewhere)


@dataclass
class _Direction:
    """One direction's chains on the hole pixels (_HolePixels order): colour float32 [N,3], reached bool [N],
    frames travelled int16 [N]."""

    colours: list[np.ndarray]
    reached: list[np.ndarray]
    distance: list[np.ndarray]


def _chain(frames: np.ndarray, pixels: _HolePixels, flows: NeighbourFlows, order: range, step: int,
           tolerance: float, max_distance: int, exposure: Exposure | None = None) -> _Direction:
    """One direction of propagation: the chains' sources (_sources), then the colours sampled there (in frame t's
    light, with an `exposure`)."""
    holes = pixels.holes
    t_count, h, w = holes.shape
    src_t, src_x, src_y = _sources(pixels, flows, order, step, tolerance, max_distance)
    out = _Direction([np.zeros((pixels.count(t), 3), np.float32) for t in range(t_count)],
                     [np.zeros(pixels.count(t), bool) for t in range(t_count)],
                     [np.zeros(pixels.count(t), np.int16) for t in range(t_count)])
    for t in range(t_count):
        (which,) = np.nonzero(src_t[t] >= 0)
        if not len(which):
            continue
        origin = src_t[t][which]
        for s in np.unique(origin):
            pick = which[origin == s]
            px = np.clip(src_x[t][pick], 0, w - 1)
            py = np.clip(src_y[t][pick], 0, h - 1)
            # weighted by knownness, so a sample next to the source frame's own hole never mixes hole content in
            value, weight = _sample_known(frames[s], holes[s], px, py)
            usable = weight[:, 0] > 1e-3
            chosen = pick[usable]
            colour = value[usable] / weight[usable]
            out.colours[t][chosen] = colour if exposure is None else exposure.relit(colour, int(s), t)
            out.reached[t][chosen] = True
            out.distance[t][chosen] = abs(int(s) - t)
    return out


@dataclass
class Fusion:
    """How wrong each fill of a hole pixel is on this clip, measured on known pixels around the hole: the RMS
    error (0-1 scale) of a copy by how many frames it travelled, and of per-frame diffusion by how deep the
    pixel lies in its frame's hole. Candidates are averaged with weights 1/error^2, the least-squares blend of
    independent estimates: two copies from either side of a frame average out a background that changes on its
    own (foliage, passers-by), and near the hole's edge, where diffusion is nearly exact, it joins in; deep in the
    hole its error is large and the copies are kept almost as they are."""

    copy_rms: dict[int, float]
    """Frames travelled -> RMS error of copies (calibrate_distance); at least one distance above 0."""
    depths: np.ndarray
    """float (K,): depth in pixels from the nearest known pixel at which `diffusion_rms` was measured."""
    diffusion_rms: np.ndarray | None
    """float (K,): RMS error of per-frame diffusion at those depths; None: copies only."""
    local: LocalCopyError | None = None
    """Where copying is harder or easier than the clip's mean (propagation.local_errors); None: the same everywhere."""
    diffusion: "str | Blend" = "telea"
    """The per-frame diffusion that joins the copies (engine/diffusion.py), the one `diffusion_rms` measured."""

    def copy_weight(self, distance: np.ndarray) -> np.ndarray:
        known = sorted(d for d in self.copy_rms if d > 0)
        rms = np.interp(np.log2(np.maximum(distance, 1)), np.log2(known), [self.copy_rms[d] for d in known])
        return (1.0 / np.maximum(rms, 1e-4) ** 2).astype(np.float32)

    def diffusion_weight(self, depth: np.ndarray) -> np.ndarray:
        rms = np.interp(depth, self.depths, self.diffusion_rms)
        return (1.0 / np.maximum(rms, 1e-4) ** 2).astype(np.float32)


def diffusion_error_by_depth(frames: np.ndarray, holes: np.ndarray, frames_used: int = 6, per_frame: int = 3000,
                             seed: int = 0, diffusion: "str | Blend" = "telea") -> tuple[np.ndarray, np.ndarray]:
    """How wrong per-frame diffusion is by depth on this clip: (depths, RMS errors 0-1).

    Each sampled frame's hole is grown by as much as the clip's hole is deep (engine/diffusion.py depth_grow) and
    `diffusion` fills the grown hole; the known pixels it covered are scored against their true values, binned by
    their depth in the grown hole. Deep pixels are the ones diffusion gets wrong, and how wrong depends on the
    clip's texture."""
    t_count = holes.shape[0]
    rng = np.random.default_rng(seed)
    picked = sampled_frames(t_count, frames_used)
    grow = depth_grow(max(float(hole_depth(holes[t]).max()) for t in picked))
    edges = [0.0] + [float(2 ** k) for k in range(1, 7) if 2 ** k < grow] + [float(grow) + 1.0]
    sums, counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    samples = []
    for t in picked:  # the samples in frame order, one seeded stream: the same on any thread count
        grown, known = grown_hole(holes[t], grow)
        ys, xs = np.nonzero(known)
        if not len(ys):
            continue
        pick = rng.choice(len(ys), min(per_frame, len(ys)), replace=False)
        samples.append((t, grown, ys[pick], xs[pick]))

    def scored(sample) -> tuple[np.ndarray, np.ndarray]:
        t, grown, ys, xs = sample
        filled = diffuse(frames[t], grown, diffusion)
        err2 = (((filled[ys, xs] - frames[t][ys, xs]) / 255.0) ** 2).mean(axis=-1)
        return np.clip(np.searchsorted(edges, hole_depth(grown)[ys, xs], side="right") - 1, 0, len(sums) - 1), err2

    for where, err2 in each_frame(lambda n: scored(samples[n]), range(len(samples))):
        np.add.at(sums, where, err2)
        np.add.at(counts, where, 1)
    centres = np.array([(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])])
    filled_bins = counts > 0
    if not filled_bins.any():
        return centres[:1], np.ones(1)  # nothing to measure on: diffusion gets no weight worth having
    return centres[filled_bins], np.sqrt(sums[filled_bins] / counts[filled_bins])


def propagate(frames: np.ndarray, holes: np.ndarray, flows: NeighbourFlows, tolerance: float = 1.0,
              max_distance: int = 0, fusion: Fusion | None = None, exposure: Exposure | None = None) -> Propagation:
    """Real pixels for the hole from both directions in time.

    frames [T,H,W,3] uint8, uint16 or float32 in [0,1] (converted where sampled), holes bool [T,H,W], flows from
    `neighbour_flows`. Without `fusion` the nearer source frame wins and a tie averages; with it, both copies (and
    per-frame diffusion, when the fusion has its error) are blended by their measured errors (Fusion). With an
    `exposure` (engine/exposure.py), every copy is scaled into the light of the frame it fills."""
    t_count = holes.shape[0]
    pixels = _HolePixels(holes)
    later, earlier = side_by_side(
        lambda: _chain(frames, pixels, flows, range(t_count - 1, -1, -1), +1, tolerance, max_distance, exposure),
        lambda: _chain(frames, pixels, flows, range(t_count), -1, tolerance, max_distance, exposure))
    colours = np.zeros(holes.shape + (3,), np.float32)
    reached = np.zeros(holes.shape, bool)
    distance = np.zeros(holes.shape, np.int16)

    def combine(t: int) -> None:
        r_later, r_earlier = later.reached[t], earlier.reached[t]
        d_later, d_earlier = later.distance[t], earlier.distance[t]
        c_later, c_earlier = later.colours[t], earlier.colours[t]
        anywhere = r_later | r_earlier
        take_later = r_later & (~r_earlier | (d_later < d_earlier))
        where = pixels.where[t]
        reached[t][where] = anywhere
        distance[t][where] = np.where(take_later, d_later, d_earlier)
        if fusion is None:
            chosen = np.where(take_later[:, None], c_later, c_earlier)
            tie = r_later & r_earlier & (d_later == d_earlier)
            chosen[tie] = 0.5 * (c_later[tie] + c_earlier[tie])
            colours[t][where] = chosen
            return
        if not anywhere.any():
            return
        (sel,) = np.nonzero(anywhere)
        ys, xs = where[0][sel], where[1][sel]
        w_later = np.where(r_later[sel], fusion.copy_weight(d_later[sel]), 0.0)
        w_earlier = np.where(r_earlier[sel], fusion.copy_weight(d_earlier[sel]), 0.0)
        if fusion.local is not None:
            harder = fusion.local.at(t, xs.astype(np.float32), ys.astype(np.float32))
            w_later, w_earlier = w_later / harder, w_earlier / harder
        total = (w_later[:, None] * c_later[sel] + w_earlier[:, None] * c_earlier[sel])
        weight = w_later + w_earlier
        if fusion.diffusion_rms is not None:
            w_diffusion = fusion.diffusion_weight(hole_depth(holes[t])[ys, xs])
            total += w_diffusion[:, None] * diffuse(to_float(frames[t]), holes[t], fusion.diffusion)[ys, xs]
            weight = weight + w_diffusion
        colours[t][ys, xs] = total / weight[:, None]

    each_frame(combine, range(t_count))
    return Propagation(colours, reached, distance)


def model_needed(holes: np.ndarray, reached: np.ndarray, train_below: float) -> bool:
    """Whether a model is trained for what no frame sees: only when more of the hole is left unreached than the
    share `train_below` (PropagationConfig); less is filled by diffusion from the real pixels around it."""
    return int((holes & ~reached).sum()) > train_below * holes.sum()


def ring_around(unseen: np.ndarray, width: int) -> np.ndarray:
    """bool [T,H,W] -> the pixels within `width` of `unseen` in each frame, `unseen` itself included."""
    return np.stack(each_frame(lambda t: grown(unseen[t], width), range(len(unseen))))


def hidden_band(holes: np.ndarray, reached: np.ndarray, flows: NeighbourFlows, width: int, tolerance: float,
                max_distance: int) -> np.ndarray:
    """The self-check's honest test region: known pixels within `width` of what no frame sees (`holes` but not
    `reached`) that no chain reaches when that whole band is hidden as well, i.e. whose background no other frame
    shows within the copies' reach. A band pixel some other frame does show is learned by the model from there
    (the flow terms tie the frames together), which the unseen hole never is: on a moving-camera clip the whole
    band scored the model 0.7 dB above diffusion, this part 2.8 dB below it, and the unseen hole 3.1 dB below
    (docs/evaluation.md, "bf16 on the CPU, and an honest held-out band")."""
    unseen = holes & ~reached
    band = ring_around(unseen, width) & ~unseen
    hidden = unseen | band
    t_count = holes.shape[0]
    pixels = _HolePixels(hidden)
    later, earlier = side_by_side(
        lambda: _sources(pixels, flows, range(t_count - 1, -1, -1), +1, tolerance, max_distance, positions=False)[0],
        lambda: _sources(pixels, flows, range(t_count), -1, tolerance, max_distance, positions=False)[0])
    shown = np.stack([pixels.dense(t, (later[t] >= 0) | (earlier[t] >= 0), False) for t in range(t_count)])
    return band & ~shown


def propagate_clip(frames: np.ndarray, holes: np.ndarray, settings, estimator: FlowEstimator, seed: int = 0,
                   progress: Callable[[int, int, str], None] | None = None,
                   log: Callable[[str], None] | None = None, masked: bool = True, diffusion=None) -> Propagation:
    """The whole stage on one clip: neighbour flows, how far copies may travel, the chains.

    frames [T,H,W,3] uint8, uint16 or float32 (linear light: flow sees it through a display curve, or dark plates
    give weak flow), holes bool [T,H,W], settings an engine.config.PropagationConfig. progress(i, n, message).
    `masked`: flow on Telea-filled frames (True) or on the frames as given (see neighbour_flows). `diffusion`:
    settings.diffusion already resolved for this clip (engine/diffusion.py clip_diffusion); None resolves it here."""
    say = progress or (lambda i, n, message: None)
    frames_u8 = display_u8(frames)
    if diffusion is None:
        diffusion = clip_diffusion(settings.diffusion, frames_u8, holes)
    flows = clip_flows(frames_u8, holes, settings, estimator, masked,
                       progress=lambda i, n: say(i, n, "estimating flow for propagation"))
    cuts = np.flatnonzero(~flows.linked) if flows.linked is not None else []
    if log and len(cuts):
        log(f"propagation: {len(cuts)} of {len(flows.linked)} neighbouring frame pairs show different scenes (a cut "
            f"after frame {', '.join(str(k) for k in cuts[:8])}{' ...' if len(cuts) > 8 else ''}): nothing is "
            "carried across them")
    max_distance, pairs = settings.max_distance, holes.shape[0] - 1  # the flow count, kept while the stage ends
    tolerance = chain_tolerance(settings, holes.shape[2])
    errors: dict[int, float] | None = None  # the copies' errors by distance, once measured
    lit_u8, lit = clip_light(frames, holes, settings, flows, seed, frames_u8, log)
    measured = (max_distance == 0 and settings.calibrate) or settings.fusion != "nearest"
    small = at_flow_size(frames_u8, holes, flows) if measured else None  # the calibrations' frames, holes, flows
    calibration = small
    if small is not None and settings.calibrate_completed:
        calibration = (small[0], small[1], ring_completed(small[1], small[2], settings.band))
    if max_distance == 0 and settings.calibrate:
        say(pairs, pairs, "measuring how far copies hold")
        max_distance, errors = calibrate_distance(*calibration, settings.band, seed=seed, diffusion=diffusion,
                                                  exposure=lit_u8)
        if log:
            log("propagation: copies' RMS error (8-bit) by distance " +
                ", ".join(f"{d}: {e * 255:.1f}" for d, e in errors.items() if d) +
                f"; diffusion {errors.get(0, float('nan')) * 255:.1f}; max distance {max_distance or 'none'}")
    fusion = None
    if settings.fusion != "nearest":
        if errors is None:  # a fixed max_distance skipped the calibration; the weights still need its errors
            _, errors = calibrate_distance(*calibration, settings.band, seed=seed, diffusion=diffusion,
                                           exposure=lit_u8)
        fusion = _fusion(frames_u8, holes, errors, settings.fusion == "copies+diffusion", seed, log, diffusion)
        if fusion is not None and settings.local_errors:
            fusion.local = local_copy_error(*small, settings.band, scale=(flows.scale_x, flows.scale_y),
                                            exposure=lit_u8)
    del small, calibration
    say(pairs, pairs, "propagating real pixels")
    result = propagate(frames, holes, flows, tolerance, max_distance, fusion, lit)
    if settings.self_check and model_needed(holes, result.reached, settings.train_below):
        result.hidden_band = hidden_band(holes, result.reached, flows, check_band_width(settings, holes.shape[2]),
                                         tolerance, max_distance)
    result.flows, result.exposure = flows, lit
    return result


def clip_light(frames: np.ndarray, holes: np.ndarray, settings, flows: NeighbourFlows, seed: int = 0,
               frames_u8: np.ndarray | None = None, log: Callable[[str], None] | None = None
               ) -> tuple[Exposure | None, Exposure | None]:
    """A PropagationConfig's exposure for frames of any dtype -> (as the 8-bit calibrations see it, in the frames'
    own values for the copies and the steady fill); both None where the light is even, where copies in each
    frame's light would not match the ring around the hole better (light_pays), or with `settings.exposure` off.
    Measured on the 8-bit pictures (`frames_u8`, display_u8 of the frames when not given), where the threshold
    applies, and again on a deeper plate's own values."""
    if not settings.exposure:
        return None, None
    frames_u8 = display_u8(frames) if frames_u8 is None else frames_u8
    tolerance = chain_tolerance(settings, holes.shape[2])
    lit_u8 = clip_exposure(frames_u8, holes, flows, tolerance, seed=seed)
    if lit_u8 is None:
        return None, None
    pays, in_light, as_they_are = light_pays(*at_flow_size(frames_u8, holes, flows), lit_u8, settings.band,
                                             seed=seed)
    if log:
        log(f"propagation: the light changes by up to {(np.exp(lit_u8.spread()) - 1) * 100:.0f} % across the clip; "
            f"copies in each frame's light are {np.sqrt(in_light) * 255:.1f} levels RMS off the ring around the "
            f"hole, as they are {np.sqrt(as_they_are) * 255:.1f}: " +
            ("scaled into each frame's light" if pays else "left as they are"))
    if not pays:
        return None, None
    if frames_u8 is frames:
        return lit_u8, lit_u8
    return lit_u8, clip_exposure(frames, holes, flows, tolerance, seed=seed, spread=0.0)


def clip_flows(frames: np.ndarray, holes: np.ndarray, settings, estimator: FlowEstimator, masked: bool = True,
               progress: Callable[[int, int], None] | None = None) -> NeighbourFlows:
    """The completed neighbour flows propagation follows, for frames of any dtype and a PropagationConfig: what
    propagate_clip keeps in Propagation.flows, and what the steady fill estimates again after a cache load."""
    return neighbour_flows(display_u8(frames), holes, estimator, settings.max_width,
                           plate_px(settings.band, holes.shape[2]), progress=progress, masked=masked,
                           tolerance=chain_tolerance(settings, holes.shape[2]))


def _fusion(frames_u8: np.ndarray, holes: np.ndarray, copy_errors: dict[int, float], with_diffusion: bool,
            seed: int, log: Callable[[str], None] | None, diffusion: "str | Blend" = "telea") -> Fusion | None:
    """The Fusion for measured copy errors, with diffusion's own measured when it joins; None (the nearer copy
    wins) when no copy could be measured."""
    if not any(d > 0 for d in copy_errors):
        return None
    if not with_diffusion:
        return Fusion(copy_errors, np.zeros(1), None)
    depths, rms = diffusion_error_by_depth(frames_u8, holes, seed=seed, diffusion=diffusion)
    if log:
        log("propagation: diffusion's RMS error (8-bit) by depth " +
            ", ".join(f"{d:.0f} px: {e * 255:.1f}" for d, e in zip(depths, rms)))
    return Fusion(copy_errors, depths, rms, diffusion=diffusion)


def blend_frame(fill: np.ndarray, colours: np.ndarray, reached: np.ndarray, hole: np.ndarray, seam: int = 3,
                diffused: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Propagated pixels over one frame's fill, with a soft seam where they meet generated ones.

    fill and colours float32 [H,W,3], reached and hole bool [H,W], optional `diffused` float32 [H,W,3] (the frame
    with its unseen pixels diffused from the propagated ones, engine/diffusion.py) -> (the blend, uint8 matte
    [H,W]: 0 outside the hole, PROPAGATED or GENERATED inside). Propagated pixels are real and kept exactly: the
    seam lies on the generated side, which ramps from `diffused` next to them to the fill `seam` pixels away, so a
    poor generation is never pulled into real pixels (issue 12: a 3-px seam on the propagated side cost
    running_car + tennis 2.5 dB on its propagated pixels). Only hole pixels change."""
    out = fill.copy()
    matte = np.zeros(hole.shape, np.uint8)
    reached = reached & hole
    matte[hole] = GENERATED
    matte[reached] = PROPAGATED
    if not reached.any():
        return out, matte
    out[reached] = colours[reached]
    unseen = hole & ~reached
    if seam > 0 and diffused is not None and unseen.any():
        away = cv2.distanceTransform((~reached).astype(np.uint8), cv2.DIST_L2, 3)
        alpha = np.clip(away / float(seam + 1), 0.0, 1.0)[..., None]
        ys, xs = np.nonzero(unseen)
        out[ys, xs] = alpha[ys, xs] * fill[ys, xs] + (1 - alpha[ys, xs]) * diffused[ys, xs]
    return out, matte


def with_propagated(frame: np.ndarray, propagation: Propagation | None, t: int) -> np.ndarray:
    """One source frame (any dtype) -> float32 [H,W,3] with frame t's propagated pixels in its hole."""
    frame = to_float(frame).copy()
    if propagation is not None:
        frame[propagation.reached[t]] = propagation.colours[t][propagation.reached[t]]
    return frame


def diffusion_fill(frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None, radius: int = 5,
                   diffusion: "str | Blend" = "telea") -> np.ndarray:
    """Source-resolution fill: propagated pixels, and per-frame `diffusion` (engine/diffusion.py) from the real
    pixels around whatever is left (the whole hole without propagation). frames [T,H,W,3] any dtype -> float32."""
    out = np.zeros(frames.shape, np.float32)

    def fill(t: int) -> None:
        left = holes[t] & ~propagation.reached[t] if propagation is not None else holes[t]
        out[t] = diffuse(with_propagated(frames[t], propagation, t), left, diffusion, radius)

    each_frame(fill, range(frames.shape[0]))
    return out


def save_propagation(path, propagation: Propagation) -> None:
    """Only the reached pixels are stored: plain arrays, no pickles."""
    reached = propagation.reached
    extra = {} if propagation.hidden_band is None else {"hidden_band": np.packbits(propagation.hidden_band)}
    atomic_write(path, lambda f: np.savez(
        f, shape=np.asarray(reached.shape, np.int64), reached=np.packbits(reached),
        colours=propagation.colours[reached], distance=propagation.distance[reached], **extra))


def load_propagation(path) -> Propagation:
    """A cache written by save_propagation: plain arrays only; a damaged or planted file is InputError."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            shape = tuple(int(v) for v in z["shape"])
            def mask(key: str) -> np.ndarray:
                return np.unpackbits(z[key], count=int(np.prod(shape))).reshape(shape).astype(bool)

            reached = mask("reached")
            colours = np.zeros(shape + (3,), np.float32)
            distance = np.zeros(shape, np.int16)
            colours[reached] = z["colours"]
            distance[reached] = z["distance"]
            hidden = mask("hidden_band") if "hidden_band" in z.files else None
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"the propagation cache {path} is damaged or not vinpaint's ({str(exc)[:80]}); delete it "
                         "or use --restart") from None
    return Propagation(colours, reached, distance, hidden)
