"""The four losses of eq. 2, as pure functions returning a scalar.

Each squared norm is averaged over all elements of the batch (masked-out elements count as zero), so the paper's
weights (1, 0.1, 1, 0.01) balance terms of comparable scale whatever the frame size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .warp import backward_warp, pixel_grid


def reconstruction_loss(generated: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Eq. 3, ||M_i (I^_i - I_i)||^2: [B,3,H,W], [B,3,H,W], [B,1,H,W] (1 = known) -> scalar."""
    return ((known * (generated - target)) ** 2).mean()


def flow_loss(generated_flow: torch.Tensor, known_flow: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 4, ||O M^f (F^ - F)||^2: [B,2,H,W] (normalised units) x2, weight O*M^f [B,1,H,W] -> scalar."""
    return ((weight * (generated_flow - known_flow)) ** 2).mean()


def gather_warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """backward_warp(image, flow, return_valid=True) written with 1-D index_select: the same bilinear samples, zero
    outside the frame, and the same gradients, but a backward (index_add) that CUDA runs deterministically where
    grid_sample's backward adds with atomics. [B,C,H,W], [B,2,H,W] pixels -> [B,C,H,W], [B,1,H,W] in-bounds."""
    b, c, h, w = image.shape
    coords = pixel_grid(h, w, image.device, flow.dtype) + flow
    x, y = coords[:, 0], coords[:, 1]
    # a NaN coordinate (a diverging step's flow) becomes an index past the frame, not INT64_MIN: the index_add of
    # the backward checks its range on CUDA (a device-side assert that ends the process, checkpoint unwritten);
    # its weights stay NaN, so the loss is non-finite and the step is rolled back as on grid_sample's path
    x0 = torch.nan_to_num(torch.floor(x.detach()), nan=-2.0)
    y0 = torch.nan_to_num(torch.floor(y.detach()), nan=-2.0)
    fx, fy = x - x0, y - y0
    flat = image.reshape(-1)
    base = (torch.arange(b, device=image.device) * (c * h * w)).view(b, 1, 1, 1) + \
        (torch.arange(c, device=image.device) * (h * w)).view(1, c, 1, 1)
    out = image.new_zeros(image.shape)
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                           (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = ((xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)).to(image.dtype)
        offset = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long()[:, None]
        samples = flat.index_select(0, (base + offset).reshape(-1)).view(b, c, h, w)
        out = out + samples * (weight * inside)[:, None]
    valid = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))[:, None].to(image.dtype)
    return out, valid


def consistency_loss(frame_i: torch.Tensor, frame_j: torch.Tensor, flow_ij_px: torch.Tensor,
                     reliable: torch.Tensor, source: torch.Tensor | None = None,
                     deterministic_warp: bool = False) -> torch.Tensor:
    """Eq. 5, ||(1 - M^f)(I^_j(F^_ij) - I^_i)||^2, frame i detached (as the authors do) so the signal flows
    into frame j and the flow: [B,3,H,W] x2, flow in pixels [B,2,H,W], M^f [B,1,H,W] -> scalar.
    Samples that land outside frame j carry no information and are left out. `source` [B,1,H,W], when given,
    further limits the term to pixels where it is 1 (e.g. where frame i is known). `deterministic_warp` samples
    with gather_warp (same values; a backward CUDA runs deterministically)."""
    warped, inside = gather_warp(frame_j, flow_ij_px) if deterministic_warp else \
        backward_warp(frame_j, flow_ij_px, return_valid=True)
    weight = (1.0 - reliable) * inside
    if source is not None:
        weight = weight * source
    return ((weight * (warped - frame_i.detach())) ** 2).mean()


def perceptual_loss(features_generated: list[torch.Tensor], features_target: list[torch.Tensor],
                    known_per_layer: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 6, sum_k ||psi_k(M_i)(phi_k(I^_i) - phi_k(I_i))||^2 over the VGG16 layers -> scalar."""
    total = features_generated[0].new_zeros(())
    for fg, ft, m in zip(features_generated, features_target, known_per_layer):
        total = total + ((m * (fg - ft)) ** 2).mean()
    return total


def known_mask_for_features(known: torch.Tensor, radius: int, stride: int) -> torch.Tensor:
    """psi_k(M): [B,1,H,W] known mask -> [B,1,H/stride,W/stride], 1 only where a feature's receptive field
    (radius pixels around it) holds no hole pixel, so the loss never compares features that saw the hole."""
    hole = 1.0 - known
    if radius > 0:
        hole = F.max_pool2d(hole, 2 * radius + 1, stride=1, padding=radius)
    if stride > 1:
        hole = F.max_pool2d(hole, stride, stride=stride)
    return 1.0 - hole
