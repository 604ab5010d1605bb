"""Backward warping in pixel units: the one place grid_sample is called."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_grid(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """-> [1,2,H,W] pixel coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype),
                            indexing="ij")
    return torch.stack([xs, ys])[None]


def backward_warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear",
                  return_valid: bool = False):
    """Sample `image` at x + flow(x): [B,C,H,W], [B,2,H,W] (pixels, x then y) -> [B,C,H,W] (and [B,1,H,W] in-bounds).

    With flow F(i->j), warping frame j gives frame i's estimate. align_corners=True so pixel centres map exactly.
    """
    b, _, h, w = image.shape
    coords = pixel_grid(h, w, image.device, image.dtype) + flow
    gx = 2.0 * coords[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * coords[:, 1] / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    warped = F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=True)
    if not return_valid:
        return warped
    valid = ((coords[:, 0] >= 0) & (coords[:, 0] <= w - 1) & (coords[:, 1] >= 0) & (coords[:, 1] <= h - 1))
    return warped, valid[:, None].to(image.dtype)
