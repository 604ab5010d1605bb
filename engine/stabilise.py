"""Temporal smoothing of the fill where no frame sees the background.

What no frame shows is filled frame by frame (the model's generation, blended with diffusion by the self-check),
so it shimmers where the real pixels around it stand still: on a locked-off shot with a logo removed, the patch
flickers while the plate does not, which an artist sees at once. Here each such pixel becomes the average of its own
fill and the fills of the same scene point in the frames around it, followed along the completed neighbour flows
with propagation's forward-backward check, and only through pixels that are unseen there too. A still region then
stays still, and on a moving camera the fill moves with the plate. A track that stays within a pixel of where it
started (a still region on a locked-off shot) is followed further, up to `still_radius` frames: there a short
window left the patch breathing while the plate stood still, and a longer one blurs nothing, since nothing moves.
Measured in docs/evaluation.md ("A steady fill for what no frame sees", "Still regions: a longer track").

All arrays are NumPy at source resolution; nothing here needs torch.
"""
from __future__ import annotations

import cv2
import numpy as np

from .composite import from_float, to_float
from .exposure import Exposure
from .propagate import NeighbourFlows, plate_scale


_ROW = 4096
"""Points per row of the maps handed to cv2.remap, whose output must stay under 32767 pixels a side."""

STILL_PX = 1.0
"""How far a track may drift from where it started and still count as still, for `still_radius`, in pixels of a
480-wide plate (more on a wider one: engine/propagate.py plate_scale). The completed flow inside a still hole
measured 0.02-0.06 px at the median (vtest, tree); a pixel's drift blurs less than the sampling does."""


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of image [H,W,C] at float coordinates (N,) inside it -> [N,C] in the image's dtype; OpenCV's
    remap, which at 4K is several times faster than indexing with NumPy. An integer image gives samples rounded to
    its own steps (half a level at most, before they are averaged), a float image exact ones."""
    n = x.size
    if n == 0:
        return np.zeros((0, image.shape[2] if image.ndim == 3 else 1), image.dtype)
    rows = -(-n // _ROW)
    map_x, map_y = np.zeros(rows * _ROW, np.float32), np.zeros(rows * _ROW, np.float32)
    map_x[:n], map_y[:n] = x, y
    out = cv2.remap(image, map_x.reshape(rows, _ROW), map_y.reshape(rows, _ROW), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * _ROW, -1)[:n]



def _flow_at(flows: NeighbourFlows, direction: int, k: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NeighbourFlows.at, by remap: the flow between frames k and k+1 at source coordinates -> [N,2] source px.
    Only the box of the field the points lie in is made float32 (remap takes no float16): a still logo's box is a
    small part of a frame, and converting whole fields was a tenth of the time at 4K."""
    field = (flows.forward if direction > 0 else flows.backward)[k]
    h, w = field.shape[:2]
    sx = np.clip((x + 0.5) * flows.scale_x - 0.5, 0, w - 1)
    sy = np.clip((y + 0.5) * flows.scale_y - 0.5, 0, h - 1)
    x_lo, y_lo = int(sx.min()), int(sy.min())
    part = field[y_lo:int(sy.max()) + 2, x_lo:int(sx.max()) + 2].astype(np.float32)
    flow = _bilinear(part, sx - x_lo, sy - y_lo)
    flow[:, 0] /= flows.scale_x
    flow[:, 1] /= flows.scale_y
    return flow


def _follow(unseen: np.ndarray, flows: NeighbourFlows, t: int, xs: np.ndarray, ys: np.ndarray, step: int,
            radius: int, tolerance: float, still_radius: int = 0, still_px: float = STILL_PX):
    """The places frame t's unseen pixels (xs, ys) move to in the `radius` frames after (step +1) or before (-1) it,
    and on up to `still_radius` frames for the tracks that stay within `still_px` of where they started. Yields
    (frame, ok, x, y) per step: ok marks which of the previous step's points go on (each step is checked
    forward-backward and kept only where it lands on an unseen pixel), x and y are where those land."""
    if not xs.size:
        return
    t_count, h, w = unseen.shape
    px, py = xs.astype(np.float32), ys.astype(np.float32)
    x0, y0 = px, py
    here = t
    for taken in range(max(radius, still_radius)):
        there = here + step
        if not 0 <= there < t_count:
            return
        k = here if step > 0 else here - 1  # flows are stored between k and k+1
        if not flows.links(k):  # a cut: the other side shows another scene
            return
        f = _flow_at(flows, step, k, px, py)
        qx, qy = px + f[:, 0], py + f[:, 1]
        ok = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        back = _flow_at(flows, -step, k, np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1))
        ok &= np.square(f[:, 0] + back[:, 0]) + np.square(f[:, 1] + back[:, 1]) <= tolerance ** 2
        at = np.clip(np.rint(qy), 0, h - 1).astype(np.intp) * w + np.clip(np.rint(qx), 0, w - 1).astype(np.intp)
        ok &= unseen[there].ravel().take(at)
        if taken >= radius:
            ok &= np.square(qx - x0) + np.square(qy - y0) <= still_px ** 2
        if not ok.all():  # on a still region nearly every track goes on: no copies then
            qx, qy, x0, y0 = qx[ok], qy[ok], x0[ok], y0[ok]
        if not qx.size:
            return
        yield there, ok, qx, qy
        px, py = qx, qy
        here = there


def _track_sums(frames: np.ndarray, unseen: np.ndarray, flows: NeighbourFlows, t: int, xs: np.ndarray,
                ys: np.ndarray, step: int, radius: int, tolerance: float, still_radius: int, still_px: float,
                exposure: Exposure | None = None):
    """The sums [N,C] float32 and counts (N,) of the fills along frame t's tracks in one direction. Samples are
    summed in the order of the tracks still alive and handed back to their points only when a track ends, so a
    step costs no scatter into all N points."""
    n = xs.size
    total = np.zeros((n, frames.shape[-1] if frames.ndim == 4 else 1), np.float32)
    count = np.zeros(n, np.float32)
    alive, acc, samples = np.arange(n), total.copy(), 0
    for there, ok, px, py in _follow(unseen, flows, t, xs, ys, step, radius, tolerance, still_radius, still_px):
        if not ok.all():
            gone = alive[~ok]
            total[gone] += acc[~ok]
            count[gone] += samples
            alive, acc = alive[ok], acc[ok]
        sample = to_float(_bilinear(frames[there], px, py))
        acc += sample if exposure is None else exposure.relit(sample, there, t)
        samples += 1
    total[alive] += acc
    count[alive] += samples
    return total, count


def steady_unseen(frames: np.ndarray, unseen: np.ndarray, flows: NeighbourFlows, radius: int,
                  tolerance: float = 4.0, still_radius: int = 0, exposure: Exposure | None = None) -> np.ndarray:
    """frames [T,H,W,3] (the composited output, any dtype), unseen bool [T,H,W] (hole pixels no frame shows) ->
    a copy where each unseen pixel is the equal-weight mean of its fill and its track's fills up to `radius`
    frames either side, or `still_radius` where the track stays still. Every other pixel is returned bit for bit.
    radius 0 returns the frames unchanged. With an `exposure` (engine/exposure.py) each track's fills are taken
    in frame t's light: a flickering clip's unseen fill is otherwise averaged across lighter and darker frames
    (vtest + dogs-jump under 0.75-1.25 flicker: 21.50 dB with the fills as they are, 23.07 with no steady fill)."""
    if radius <= 0 or not unseen.any():
        return frames
    out, still_px = frames.copy(), STILL_PX * plate_scale(frames.shape[2])
    for t in range(frames.shape[0]):
        ys, xs = np.nonzero(unseen[t])
        if not ys.size:
            continue
        total = to_float(frames[t][ys, xs])
        count = np.ones(ys.size, np.float32)
        for step in (+1, -1):
            sums, counts = _track_sums(frames, unseen, flows, t, xs, ys, step, radius, tolerance, still_radius,
                                       still_px, exposure)
            total += sums
            count += counts
        out[t][ys, xs] = from_float(total / count[:, None], frames.dtype)
    return out
