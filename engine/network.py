"""The generator of Appendix A: an encoder-decoder with 1x1 skip convolutions, in 2D or 3D.

One class covers both: the 3D network (A.2) is the 2D one with every convolution given a temporal extent (3 in the
encoder and decoder, 1 in the skips) and no temporal striding, so a window of N frames goes in and N come out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

FLOW_OFFSETS: tuple[int, ...] = (1, -1, 3, -3, 5, -5)
"""Frame offsets j - i of the 6 flow maps in the flow head, in channel order (2 channels each: dx, dy)."""


@dataclass
class NetworkConfig:
    """Architecture of the generator (Appendix A). Defaults are the paper's."""

    kind: str = "2d"
    """'2d' (DIP, DIP-Vid, DIP-Vid-Flow) or '3d' (DIP-Vid-3DCN)."""
    encoder_channels: tuple[int, ...] = (16, 32, 64, 128, 128, 128)
    """Channels of each encoder block (two convolutions each); the decoder mirrors them."""
    encoder_kernel: int = 5
    decoder_kernel: int = 3
    skip_channels: int = 4
    """Channels of the 1x1 skip convolution from each encoder block's input to the matching decoder block."""
    temporal_kernel: int = 3
    """3D only: temporal extent of encoder and decoder kernels (skips use 1)."""
    flow_head: bool = True
    """Add the 12-channel flow branch (DIP-Vid-Flow); without it the network only generates images."""
    head_kernel: int = 1
    """Kernel of the final image/flow convolutions; the paper gives only their channel counts."""
    flow_init: str = "lecun"
    """'lecun' (like every other layer) or 'zero': the flow head starts by predicting no motion. LeCun-initialised,
    it starts with flows of about one normaliser (the clip's largest motion) in random directions, and until the
    flow loss has pulled them in, the consistency term warps each frame with them (docs/evaluation.md)."""

    @property
    def downsampling(self) -> int:
        return 2 ** len(self.encoder_channels)


class _Blocks:
    """Dimension-specific building blocks, so the 2D and 3D networks share one definition."""

    def __init__(self, config: NetworkConfig):
        self.three_d = config.kind == "3d"
        self.conv_cls = nn.Conv3d if self.three_d else nn.Conv2d
        self.norm_cls = nn.BatchNorm3d if self.three_d else nn.BatchNorm2d
        self.temporal = config.temporal_kernel

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, temporal: bool = True) -> nn.Module:
        if self.three_d:
            kt = self.temporal if temporal else 1
            return nn.Conv3d(c_in, c_out, (kt, k, k), stride=(1, stride, stride), padding=(kt // 2, k // 2, k // 2))
        return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)

    def unit(self, c_in: int, c_out: int, k: int, stride: int = 1, temporal: bool = True) -> nn.Sequential:
        return nn.Sequential(self.conv(c_in, c_out, k, stride, temporal), self.norm_cls(c_out), nn.LeakyReLU(0.2))

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        scale = (1, 2, 2) if self.three_d else 2
        return F.interpolate(x, scale_factor=scale, mode="nearest")


class Generator(nn.Module):
    """Noise [B,1,H,W] -> (image [B,3,H,W] in (0,1), flow [B,12,H,W] or None); 3D: [1,1,N,H,W] -> [1,3,N,H,W]."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        if config.kind not in ("2d", "3d"):
            raise ValueError(f"network kind must be '2d' or '3d', not {config.kind!r}")
        if config.flow_init not in ("lecun", "zero"):
            raise ValueError(f"network flow_init must be 'lecun' or 'zero', not {config.flow_init!r}")
        self.config = config
        self._blocks = _Blocks(config)
        b = self._blocks
        chans = list(config.encoder_channels)
        ke, kd, s = config.encoder_kernel, config.decoder_kernel, config.skip_channels

        self.encoder = nn.ModuleList()
        self.skips = nn.ModuleList()
        c_in = 1
        for c in chans:
            self.skips.append(b.unit(c_in, s, 1, temporal=False))
            self.encoder.append(nn.Sequential(b.unit(c_in, c, ke, stride=2), b.unit(c, c, ke)))
            c_in = c

        self.decoder = nn.ModuleList()
        for c in reversed(chans):
            self.decoder.append(nn.Sequential(b.unit(c_in + s, c, kd), b.unit(c, c, kd)))
            c_in = c

        self.image_head = b.conv(c_in, 3, config.head_kernel)
        self.flow_head = b.conv(c_in, 2 * len(FLOW_OFFSETS), config.head_kernel) if config.flow_head else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """LeCun normal initialisation (the paper's reference [29]): N(0, 1/fan_in), zero bias."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(fan_in))
                nn.init.zeros_(m.bias)
        if self.flow_head is not None and self.config.flow_init == "zero":
            nn.init.zeros_(self.flow_head.weight)

    def forward(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        skips = []
        x = noise
        for skip, block in zip(self.skips, self.encoder):
            skips.append(skip(x))
            x = block(x)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = self._blocks.upsample(x)
            x = block(torch.cat([x, skip], dim=1))
        image = torch.sigmoid(self.image_head(x))
        flow = self.flow_head(x) if self.flow_head is not None else None
        return image, flow


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
