"""Beyond the paper: the trained model or Telea diffusion for what no frame sees, chosen per clip from evidence.

A band of pixels the model would have learned as known, next to what it must generate, is held out of training
(treated as hole for the model only). After training, the model's generation (upsampled as composite does) and
Telea diffusion (run with the band added to the hole) both predict that band, and the better one fills the unseen
rest of the clip. The band is known, so the final composite keeps it exactly as it was (issue 12)."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .composite import Region, upsampled
from .propagate import Propagation, diffuse_frame, with_propagated


@dataclass(frozen=True)
class Verdict:
    """Hole-style PSNR of each candidate on the held-out band, pooled over the clip, and per-frame wins."""

    model_psnr: float
    diffusion_psnr: float
    pixels: int
    frames_diffusion_wins: int
    frames: int

    @property
    def use_diffusion(self) -> bool:
        """The argmax of the two scores; a tie goes to diffusion, the cheaper and smoother fill."""
        return self.diffusion_psnr >= self.model_psnr

    def line(self) -> str:
        choice = "diffusion" if self.use_diffusion else "the model"
        return (f"self-check on {self.pixels} held-out known pixels: model {self.model_psnr:.2f} dB, diffusion "
                f"{self.diffusion_psnr:.2f} dB (diffusion better in {self.frames_diffusion_wins} of {self.frames} "
                f"frames): {choice} fills what no frame sees")


def held_out_band(holes: np.ndarray, propagation: Propagation | None, train_holes: np.ndarray, width: int
                  ) -> np.ndarray:
    """bool [T,H,W] x3 -> bool [T,H,W]: pixels known to training (outside `train_holes`) within `width` source
    pixels of the part of the hole no frame sees; empty where nothing is unseen."""
    unseen = holes & ~propagation.reached if propagation is not None else holes
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    near = np.stack([cv2.dilate(u.astype(np.uint8), kernel) > 0 if u.any() else u for u in unseen])
    return near & ~train_holes


def _psnr(sse: float, count: int) -> float:
    return float(10.0 * np.log10(count / sse)) if sse > 0 else float("inf")


class BandJudge:
    """The self-check's scorer, built once per run: the band's truth and diffusion's error on it are fixed, so
    scoring a generation (after training, or while it trains) costs only the model's side."""

    def __init__(self, frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None,
                 region: Region | None, band: np.ndarray, radius: int = 5):
        self.size, self.region = holes.shape[1:], region
        self.frames: list[tuple[int, np.ndarray, np.ndarray, float]] = []  # (t, band, truth on it, diffusion SSE)
        for t in range(holes.shape[0]):
            if not band[t].any():
                continue
            truth = with_propagated(frames[t], propagation, t)
            unseen = holes[t] & ~propagation.reached[t] if propagation is not None else holes[t]
            want = truth[band[t]]
            diffused = diffuse_frame(truth, unseen | band[t], radius)[band[t]]
            self.frames.append((t, band[t], want, float(((diffused - want) ** 2).sum())))

    def verdict(self, generated: np.ndarray) -> Verdict | None:
        """The generation float [T,h,w,3] (trained with the band held out) -> the Verdict; None for an empty band."""
        if not self.frames:
            return None
        model_sse = diffusion_sse = 0.0
        pixels = wins = 0
        for t, band, want, d in self.frames:
            model = upsampled(generated[t], self.size, self.region)[band]
            m = float(((model - want) ** 2).sum())
            model_sse, diffusion_sse = model_sse + m, diffusion_sse + d
            pixels, wins = pixels + int(band.sum()), wins + int(d <= m)
        count = pixels * 3
        return Verdict(_psnr(model_sse, count), _psnr(diffusion_sse, count), pixels, wins, len(self.frames))


def judge(frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None, generated: np.ndarray,
          region: Region | None, band: np.ndarray, radius: int = 5) -> Verdict | None:
    """Source frames [T,H,W,3] any dtype, the hole and propagation, the generation float [T,h,w,3] (trained with
    `band` held out) -> the Verdict, or None when the band is empty. The truth on the band is what training would
    have seen there: the source pixel, or the propagated one."""
    return BandJudge(frames, holes, propagation, region, band, radius).verdict(generated)


EXACT_DB = 100.0
"""A score for an exact fill (infinite PSNR), so that gaps to it are numbers."""


@dataclass
class CatchUp:
    """Whether a model still in training can catch up with diffusion on the held-out band (propagation.check_every).

    Why: where diffusion fills the unseen hole better, every training step after that is clear is wasted time,
    since the output will be diffusion's whatever the model becomes (on the moving-camera clips it trailed by
    3-6 dB, docs/evaluation.md). The model's gap is followed from check to check; training stops once it trails
    by more than `margin_db` and, closing at the rate of its last two checks (optimistic: the curve flattens),
    it would still trail at the last planned step."""

    planned: int
    margin_db: float
    trace: list[tuple[int, float, float]] = field(default_factory=list)
    """(step, model dB, diffusion dB) at every check so far."""

    def hopeless(self, step: int, verdict: Verdict) -> bool:
        self.trace.append((step, verdict.model_psnr, verdict.diffusion_psnr))
        if len(self.trace) < 2 or step >= self.planned:
            return False
        (s0, m0, d0), (s1, m1, d1) = [(s, min(m, EXACT_DB), min(d, EXACT_DB)) for s, m, d in self.trace[-2:]]
        gap_before, gap = d0 - m0, d1 - m1
        if not gap > self.margin_db:
            return False
        closing = max(gap_before - gap, 0.0) / max(s1 - s0, 1)
        return gap - closing * (self.planned - step) > 0.0

    def line(self) -> str:
        step, model, diffusion = self.trace[-1]
        return (f"self-check at step {step}: the model trails diffusion by {diffusion - model:.2f} dB on the held-out "
                f"band ({model:.2f} vs {diffusion:.2f}) and would not catch up by step {self.planned}; training "
                "stops here and diffusion fills what no frame sees")
