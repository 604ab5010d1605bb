"""Beyond the paper: the trained model or Telea diffusion for what no frame sees, chosen per clip from evidence.

A band of pixels the model would have learned as known, next to what it must generate, is held out of training
(treated as hole for the model only). After training, the model's generation (upsampled as composite does) and
Telea diffusion (run with the band added to the hole) both predict that band, and the better one fills the unseen
rest of the clip. The band is known, so the final composite keeps it exactly as it was (issue 12)."""
from __future__ import annotations

from dataclasses import dataclass

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
    margin_db: float = 0.0
    """dB the model must be ahead by to be chosen (propagation.check_margin)."""

    @property
    def use_diffusion(self) -> bool:
        """Diffusion unless the model is ahead by more than the margin; a tie goes to diffusion, the cheaper and
        smoother fill."""
        return not self.model_psnr > self.diffusion_psnr + self.margin_db

    def line(self) -> str:
        choice = "diffusion" if self.use_diffusion else "the model"
        margin = f", the model needs {self.margin_db:g} dB more" if self.margin_db else ""
        return (f"self-check on {self.pixels} held-out known pixels: model {self.model_psnr:.2f} dB, diffusion "
                f"{self.diffusion_psnr:.2f} dB (diffusion better in {self.frames_diffusion_wins} of {self.frames} "
                f"frames{margin}): {choice} fills what no frame sees")


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

    def verdict(self, generated: np.ndarray, margin_db: float = 0.0) -> Verdict | None:
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
        return Verdict(_psnr(model_sse, count), _psnr(diffusion_sse, count), pixels, wins, len(self.frames),
                       margin_db)


def judge(frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None, generated: np.ndarray,
          region: Region | None, band: np.ndarray, radius: int = 5, margin_db: float = 0.0) -> Verdict | None:
    """Source frames [T,H,W,3] any dtype, the hole and propagation, the generation float [T,h,w,3] (trained with
    `band` held out) -> the Verdict, or None when the band is empty. The truth on the band is what training would
    have seen there: the source pixel, or the propagated one."""
    return BandJudge(frames, holes, propagation, region, band, radius).verdict(generated, margin_db)
