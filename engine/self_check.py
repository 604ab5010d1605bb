"""Beyond the paper: the trained model or per-frame diffusion (engine/diffusion.py: Telea, or the membrane in
`fast`) for what no frame sees, chosen per clip from evidence.

A band of pixels the model would have learned as known, next to what it must generate, is held out of training
(treated as hole for the model only). After training, the model's generation (upsampled as composite does) and
diffusion (run with the band added to the hole) both predict that band, and the better one fills the unseen
rest of the clip, or, with `blend`, the two are mixed by the least-squares weight fitted on the band: two fills
with different errors average to a better one (on tree + blackswan the band scored the model 20.41 dB and
diffusion 20.85). The band is known, so the final composite keeps it exactly as it was (issue 12).

The scores count only the band pixels that no other frame shows within the copies' reach once the whole band is
hidden (engine/propagate.py hidden_band): on a moving camera neighbouring frames show much of the band, the flow
terms teach the model those pixels from there, and the whole band scored the model far better than the unseen
hole, which no frame shows, turned out (docs/evaluation.md, "bf16 on the CPU, and an honest held-out
band")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .composite import Region, upsampled
from .parallel import each_frame
from .diffusion import Blend, diffuse
from .propagate import Propagation, ring_around, with_propagated


SNAP = 0.02
"""A model share within this of 0 or 1 is that end: the fill then needs only one of the two."""


@dataclass(frozen=True)
class Verdict:
    """Hole-style PSNR of each candidate on the held-out band, pooled over the clip, and per-frame wins."""

    model_psnr: float
    diffusion_psnr: float
    pixels: int
    frames_diffusion_wins: int
    frames: int
    margin_db: float = 0.0
    """dB the model must be ahead by to be chosen (propagation.check_margin); with a blend, how much worse than on
    the band its error is taken to be deeper in the hole."""
    model_share: float | None = None
    """With a blend: the model's weight in the fill of what no frame sees (0: diffusion alone, 1: the model alone)."""
    blend_psnr: float | None = None
    """With a blend: the band's PSNR of the blend at `model_share`."""

    @property
    def share(self) -> float:
        """The model's weight in the fill: the blend's, or 0/1 by the choice (a tie goes to diffusion, the cheaper
        and smoother fill)."""
        if self.model_share is not None:
            return self.model_share
        return 0.0 if not self.model_psnr > self.diffusion_psnr + self.margin_db else 1.0

    @property
    def use_diffusion(self) -> bool:
        return self.share == 0.0

    def line(self) -> str:
        scores = (f"self-check on {self.pixels} held-out known pixels: model {self.model_psnr:.2f} dB, diffusion "
                  f"{self.diffusion_psnr:.2f} dB (diffusion better in {self.frames_diffusion_wins} of {self.frames} "
                  "frames")
        if self.model_share is None:
            margin = f", the model needs {self.margin_db:g} dB more" if self.margin_db else ""
            return f"{scores}{margin}): {'diffusion' if self.use_diffusion else 'the model'} fills what no frame sees"
        fill = {0.0: "diffusion", 1.0: "the model"}.get(self.share, f"{self.share:.2f} model, "
                                                                   f"{1 - self.share:.2f} diffusion")
        return (f"{scores}); blend {self.blend_psnr:.2f} dB with the model's error taken {self.margin_db:g} dB "
                f"worse deeper in: {fill} fills what no frame sees")


def blend_share(smm: float, sdd: float, smd: float, margin_db: float) -> float:
    """The least-squares weight of the model in a blend with diffusion, from the band's error sums (model², diffusion²,
    model x diffusion), the model's errors scaled as if `margin_db` worse; snapped to 0 or 1 within SNAP."""
    k = 10.0 ** (margin_db / 20.0)  # error scale
    denominator = k * k * smm + sdd - 2.0 * k * smd
    share = (sdd - k * smd) / denominator if denominator > 0 else 0.0
    share = float(np.clip(share, 0.0, 1.0))
    return 0.0 if share < SNAP else 1.0 if share > 1.0 - SNAP else share


def held_out_band(holes: np.ndarray, propagation: Propagation | None, train_holes: np.ndarray, width: int
                  ) -> np.ndarray:
    """bool [T,H,W] x3 -> bool [T,H,W]: pixels known to training (outside `train_holes`) within `width` source
    pixels of the part of the hole no frame sees; empty where nothing is unseen."""
    unseen = holes & ~propagation.reached if propagation is not None else holes
    return ring_around(unseen, width) & ~train_holes


MIN_HIDDEN = 1000
"""Fewest pixels of the hidden part of the band (Propagation.hidden_band) the self-check scores on; with fewer,
it scores on the whole band, as it did before that part was known."""


def scored_band(band: np.ndarray, propagation: Propagation | None) -> tuple[np.ndarray, str | None]:
    """The part of the held-out band the self-check scores, and a line for the log: the pixels no other frame
    shows either (Propagation.hidden_band), which test the model as the unseen hole does; the whole band where
    that part was not computed (no propagation, an older cache) or is smaller than MIN_HIDDEN."""
    hidden = propagation.hidden_band if propagation is not None else None
    if hidden is None:
        return band, None
    honest = band & hidden
    count, total = int(honest.sum()), int(band.sum())
    if count < MIN_HIDDEN:
        return band, (f"self-check: only {count} of {total} held-out pixels are shown by no other frame; scoring "
                      "on the whole band")
    return honest, (f"self-check: scoring on the {count} of {total} held-out pixels ({count / max(total, 1):.0%}) "
                    "that no other frame shows within the copies' reach")


def _psnr(sse: float, count: int) -> float:
    return float(10.0 * np.log10(count / sse)) if sse > 0 else float("inf")


class BandJudge:
    """The self-check's scorer, built once per run: the band's truth and diffusion's error on it are fixed, so
    scoring a generation (after training, or while it trains) costs only the model's side."""

    def __init__(self, frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None,
                 region: Region | None, band: np.ndarray, radius: int = 5, diffusion: "str | Blend" = "telea"):
        self.size, self.region = holes.shape[1:], region

        def scored(t: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
            truth = with_propagated(frames[t], propagation, t)
            unseen = holes[t] & ~propagation.reached[t] if propagation is not None else holes[t]
            want = truth[band[t]]
            diffused = diffuse(truth, unseen | band[t], diffusion, radius)[band[t]]
            return t, band[t], want, diffused - want

        self.frames: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = \
            each_frame(scored, [t for t in range(holes.shape[0]) if band[t].any()])  # (t, band, truth, its error)

    def verdict(self, generated: np.ndarray, margin_db: float = 0.0, blend: bool = False) -> Verdict | None:
        """The generation float [T,h,w,3] (trained with the band held out) -> the Verdict; None for an empty band.
        `blend`: fit the model's share of a blend with diffusion (blend_share) instead of choosing one."""
        if not self.frames:
            return None
        smm = sdd = smd = 0.0
        pixels = wins = 0
        for t, band, want, e_d in self.frames:
            e_m = upsampled(generated[t], self.size, self.region)[band] - want
            m, d = float((e_m ** 2).sum()), float((e_d ** 2).sum())
            smm, sdd, smd = smm + m, sdd + d, smd + float((e_m * e_d).sum())
            pixels, wins = pixels + int(band.sum()), wins + int(d <= m)
        count = pixels * 3
        share = blended = None
        if blend:
            share = blend_share(smm, sdd, smd, margin_db)
            blended = _psnr(share * share * smm + (1 - share) ** 2 * sdd + 2 * share * (1 - share) * smd, count)
        return Verdict(_psnr(smm, count), _psnr(sdd, count), pixels, wins, len(self.frames), margin_db, share,
                       blended)


def judge(frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None, generated: np.ndarray,
          region: Region | None, band: np.ndarray, radius: int = 5, margin_db: float = 0.0,
          blend: bool = False, diffusion: "str | Blend" = "telea") -> Verdict | None:
    """Source frames [T,H,W,3] any dtype, the hole and propagation, the generation float [T,h,w,3] (trained with
    `band` held out) -> the Verdict, or None when the band is empty. The truth on the band is what training would
    have seen there: the source pixel, or the propagated one."""
    return BandJudge(frames, holes, propagation, region, band, radius, diffusion).verdict(generated, margin_db,
                                                                                            blend)
