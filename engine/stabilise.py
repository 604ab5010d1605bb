"""Temporal smoothing of the fill where no frame sees the background.

What no frame shows is filled frame by frame (the model's generation, blended with diffusion by the self-check),
so it shimmers where the real pixels around it stand still: on a locked-off shot with a logo removed, the patch
flickers while the plate does not, which an artist sees at once. Here each such pixel becomes the average of its own
fill and the fills of the same scene point in the frames around it, followed along the completed neighbour flows
with propagation's forward-backward check, and only through pixels that are unseen there too. A still region then
stays still, and on a moving camera the fill moves with the plate. Measured in docs/evaluation.md ("A steady fill
for what no frame sees").

All arrays are NumPy at source resolution; nothing here needs torch.
"""
from __future__ import annotations

import cv2
import numpy as np

from .composite import from_float, to_float
from .propagate import NeighbourFlows


_ROW = 4096
"""Points per row of the maps handed to cv2.remap, whose output must stay under 32767 pixels a side."""


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
    """NeighbourFlows.at, by remap: the flow between frames k and k+1 at source coordinates -> [N,2] source px."""
    field = (flows.forward if direction > 0 else flows.backward)[k].astype(np.float32)
    h, w = field.shape[:2]
    sx = np.clip((x + 0.5) * flows.scale_x - 0.5, 0, w - 1)
    sy = np.clip((y + 0.5) * flows.scale_y - 0.5, 0, h - 1)
    flow = _bilinear(field, sx, sy)
    flow[:, 0] /= flows.scale_x
    flow[:, 1] /= flows.scale_y
    return flow


def _follow(unseen: np.ndarray, flows: NeighbourFlows, t: int, xs: np.ndarray, ys: np.ndarray, step: int,
            radius: int, tolerance: float):
    """The places frame t's unseen pixels (xs, ys) move to in the `radius` frames after (step +1) or before (-1) it:
    yields (frame, indices into xs/ys still followed, x, y), each step checked forward-backward and kept only where
    it lands on an unseen pixel."""
    t_count, h, w = unseen.shape
    alive = np.arange(xs.size)
    px, py = xs.astype(np.float32), ys.astype(np.float32)
    here = t
    for _ in range(radius):
        there = here + step
        if not 0 <= there < t_count or not alive.size:
            return
        k = here if step > 0 else here - 1  # flows are stored between k and k+1
        f = _flow_at(flows, step, k, px, py)
        qx, qy = px + f[:, 0], py + f[:, 1]
        ok = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        back = _flow_at(flows, -step, k, np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1))
        ok &= np.hypot(f[:, 0] + back[:, 0], f[:, 1] + back[:, 1]) <= tolerance
        rx = np.clip(np.rint(qx).astype(np.int64), 0, w - 1)
        ry = np.clip(np.rint(qy).astype(np.int64), 0, h - 1)
        ok &= unseen[there][ry, rx]
        alive, px, py = alive[ok], qx[ok], qy[ok]
        if alive.size:
            yield there, alive, px, py
        here = there


def steady_unseen(frames: np.ndarray, unseen: np.ndarray, flows: NeighbourFlows, radius: int,
                  tolerance: float = 4.0) -> np.ndarray:
    """frames [T,H,W,3] (the composited output, any dtype), unseen bool [T,H,W] (hole pixels no frame shows) ->
    a copy where each unseen pixel is the equal-weight mean of its fill and its track's fills up to `radius`
    frames either side. Every other pixel is returned bit for bit. radius 0 returns the frames unchanged."""
    if radius <= 0 or not unseen.any():
        return frames
    out = frames.copy()
    for t in range(frames.shape[0]):
        ys, xs = np.nonzero(unseen[t])
        if not ys.size:
            continue
        total = to_float(frames[t][ys, xs])
        count = np.ones(ys.size, np.float32)
        for step in (+1, -1):
            for there, alive, px, py in _follow(unseen, flows, t, xs, ys, step, radius, tolerance):
                total[alive] += to_float(_bilinear(frames[there], px, py))
                count[alive] += 1.0
        mean = total / count[:, None]
        out[t][ys, xs] = from_float(mean, frames.dtype)
    return out

