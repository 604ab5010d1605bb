"""Fréchet Inception Distance, only when an Inception weights file is on this machine (we never download one).

The file must be a TorchScript Inception network that maps images [N,3,H,W] with values 0..255 to 2048-d
pool features, such as `inception-2015-12-05.pt` from NVIDIA's stylegan2-ada-pytorch metrics (the network
behind the reference TensorFlow FID). Point `--inception PATH` or the VINPAINT_INCEPTION variable at it.
With a few dozen frames per video the covariance is rank deficient, so per-video FID is biased upwards: compare
methods with it, don't compare it with the paper's numbers.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.linalg

from vinpaint.errors import InputError
from vinpaint.evaluation.metrics import to_unit

ENV_VAR = "VINPAINT_INCEPTION"
DEFAULT_PATH = Path.home() / ".cache" / "vinpaint" / "inception-2015-12-05.pt"


def find_inception(path: str | Path | None = None) -> Path | None:
    """The weights file to use: the given path (which must exist), else $VINPAINT_INCEPTION, else the cache path."""
    if path:
        p = Path(path)
        if not p.is_file():
            why = "is not a file (a folder, a pipe or a device)" if os.path.lexists(p) else "does not exist"
            raise InputError(f"the Inception weights file {p} {why}.")
        return p
    env = os.environ.get(ENV_VAR)
    if env and Path(env).is_file():
        return Path(env)
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise InputError("the two feature statistics have different dimensions.")
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(s1.shape[0])  # singular product: nudge both, as the reference FID code does
        covmean = scipy.linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N,D] features -> mean [D] and covariance [D,D] (N-1 normalisation, as the reference FID)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise InputError("FID needs at least two frames.")
    return f.mean(axis=0), np.cov(f, rowvar=False)


class InceptionFeatures:
    """A loaded TorchScript Inception network; `features(frames)` gives [N,2048] for frames [N,H,W,3] in [0,1]."""

    def __init__(self, path: Path, device: str = "cpu", batch: int = 16):
        import torch

        try:
            self.model = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"{path} is not a TorchScript Inception network ({exc.__class__.__name__}).") from exc
        self.device = device
        self.batch = batch

    def features(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        x_all = to_unit(frames).astype(np.float32) * 255.0
        with torch.no_grad():
            for i in range(0, len(x_all), self.batch):
                x = torch.from_numpy(x_all[i:i + self.batch]).permute(0, 3, 1, 2).to(self.device)
                try:
                    f = self.model(x, return_features=True)
                except (RuntimeError, TypeError):
                    f = self.model(x)
                out.append(f.reshape(f.shape[0], -1).cpu().numpy())
        return np.concatenate(out, axis=0)

    def video_fid(self, output: np.ndarray, truth: np.ndarray) -> float:
        """FID between a video's frames and its ground-truth frames."""
        return frechet_distance(*feature_stats(self.features(output)), *feature_stats(self.features(truth)))
