"""The generator of Appendix A: an encoder-decoder with 1x1 skip convolutions, in 2D or 3D.

One class covers both: the 3D network (A.2) is the 2D one with every convolution given a temporal extent
(`temporal_kernel` in the encoder and decoder, 1 in the skips) and no temporal striding, so a window of N frames goes
in and N come out. The authors' code uses a temporal extent of 1 (the default); 3 is a choice of ours.

Two decoders (`decoder`): 'authors' is the authors' code's layout, BatchNorm over the skip concatenation, a 3x3 and a
1x1 convolution per level, reflection padding everywhere and PyTorch's default initialisation (3.07M parameters for
DIP-Vid-Flow); 'vinpaint' is ours, two 3x3 convolutions per level, no BatchNorm after the concatenation, zero padding
and LeCun-normal initialisation (3.51M). docs/evaluation.md, "Decoder A/B", compares them.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from .config import FLOW_OFFSETS, NetworkConfig


def _pad_rows(n: int, p: int, reflect: bool, device: torch.device) -> torch.Tensor:
    """The source row of each of the n + 2p rows of a padded axis: reflected (the edge not repeated), or
    clamped to the edge (replicated)."""
    i = torch.arange(-p, n + p, device=device)
    if reflect:
        return (n - 1) - ((n - 1) - i.abs()).abs()
    return i.clamp(0, n - 1)


def gather_pad(x: torch.Tensor, p: int, reflect: bool) -> torch.Tensor:
    """F.pad(x, (p, p, p, p), mode="reflect" or "replicate") over the last two axes, as one gather of the
    flattened plane. Its gradient is an index_add, which torch makes deterministic on CUDA under
    use_deterministic_algorithms, where reflection_pad2d's CUDA backward (atomic adds) has no deterministic
    version. On a CPU the values and the gradient are F.pad's to the last bit (the same sums, in the same order),
    and the memory order is F.pad's too."""
    h, w = x.shape[-2:]
    rows, cols = _pad_rows(h, p, reflect, x.device), _pad_rows(w, p, reflect, x.device)
    index = (rows[:, None] * w + cols[None, :]).flatten()
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # channels last in, channels last out, as F.pad: gather whole pixels of the [B,H,W,C] view
        b, c = x.shape[:2]
        out = x.permute(0, 2, 3, 1).reshape(b, h * w, c).index_select(1, index)
        return out.view(b, h + 2 * p, w + 2 * p, c).permute(0, 3, 1, 2)
    lead = x.shape[:-2]
    return x.reshape(*lead, h * w).index_select(-1, index).view(*lead, h + 2 * p, w + 2 * p)


def pad_spatial(x: torch.Tensor, p: int, reflect: bool) -> torch.Tensor:
    """Reflection (or replication) padding by p over the last two axes of [B,C,H,W] or [B,C,T,H,W]. F.pad's own
    kernels, except on a GPU under use_deterministic_algorithms (train.deterministic), where gather_pad gives the
    same values with a deterministic gradient. (On a CPU F.pad's backward is deterministic, and faster.)"""
    if x.device.type != "cpu" and torch.are_deterministic_algorithms_enabled():
        return gather_pad(x, p, reflect)
    mode = "reflect" if reflect else "replicate"
    if x.dim() == 5:
        b, c, t, h, w = x.shape
        return F.pad(x.reshape(b, c * t, h, w), (p, p, p, p), mode=mode).view(b, c, t, h + 2 * p, w + 2 * p)
    return F.pad(x, (p, p, p, p), mode=mode)


def gather_pad_time(x: torch.Tensor, p: int) -> torch.Tensor:
    """F.pad(x, (0, 0, 0, 0, p, p), mode="replicate") of [B,C,T,H,W] as an index_select over time: deterministic
    on CUDA under use_deterministic_algorithms, where replication_pad3d's backward (atomic adds) is not. On a CPU
    the values and the gradient are F.pad's to the last bit."""
    return x.index_select(2, _pad_rows(x.shape[2], p, False, x.device))


def pad_temporal(x: torch.Tensor, p: int) -> torch.Tensor:
    """Replication padding by p over the time axis of [B,C,T,H,W]: F.pad, or gather_pad_time on a GPU under
    train.deterministic (as pad_spatial)."""
    if x.device.type != "cpu" and torch.are_deterministic_algorithms_enabled():
        return gather_pad_time(x, p)
    return F.pad(x, (0, 0, 0, 0, p, p), mode="replicate")


class _ReflectPad(nn.Module):
    """The authors' padding: reflection in space (replication where a map is too small to reflect, which only the
    deepest level of a small working size hits) and replication in time. [B,C,H,W] or [B,C,T,H,W]."""

    def __init__(self, k: int, kt: int = 0):
        super().__init__()
        self.p, self.pt = k // 2, kt // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        if p:
            h, w = x.shape[-2:]
            x = pad_spatial(x, p, reflect=p < h and p < w)
        if self.pt:
            x = pad_temporal(x, self.pt)
        return x


class _Blocks:
    """Dimension-specific building blocks, so the 2D and 3D networks share one definition."""

    def __init__(self, config: NetworkConfig):
        self.three_d = config.kind == "3d"
        self.conv_cls = nn.Conv3d if self.three_d else nn.Conv2d
        self.norm_cls = nn.BatchNorm3d if self.three_d else nn.BatchNorm2d
        self.temporal = config.temporal_kernel
        self.reflect = config.decoder == "authors"

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, temporal: bool = True) -> nn.Module:
        kt = self.temporal if temporal and self.three_d else 1
        if self.reflect and (k > 1 or kt > 1):
            conv = nn.Conv3d(c_in, c_out, (kt, k, k), stride=(1, stride, stride)) if self.three_d else \
                nn.Conv2d(c_in, c_out, k, stride=stride)
            return nn.Sequential(_ReflectPad(k, kt if self.three_d else 0), conv)
        if self.three_d:
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
        if config.decoder not in ("authors", "vinpaint"):
            raise ValueError(f"network decoder must be 'authors' or 'vinpaint', not {config.decoder!r}")
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
            if config.decoder == "authors":
                self.decoder.append(nn.Sequential(b.norm_cls(c_in + s), b.unit(c_in + s, c, kd), b.unit(c, c, 1)))
            else:
                self.decoder.append(nn.Sequential(b.unit(c_in + s, c, kd), b.unit(c, c, kd)))
            c_in = c

        self.image_head = b.conv(c_in, 3, config.head_kernel)
        self.flow_head = b.conv(c_in, 2 * len(FLOW_OFFSETS), config.head_kernel) if config.flow_head else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """'vinpaint': LeCun normal initialisation (the paper's reference [29]): N(0, 1/fan_in), zero bias.
        'authors': PyTorch's default initialisation, which the layers already have."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)) and self.config.decoder != "authors":
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(fan_in))
                nn.init.zeros_(m.bias)
        if self.flow_head is not None and self.config.flow_init == "zero":
            head = self.flow_head[-1] if isinstance(self.flow_head, nn.Sequential) else self.flow_head
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        skips = []
        x = noise
        for skip, block in zip(self.skips, self.encoder):
            skips.append(skip(x))
            x = block(x)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = self._blocks.upsample(x)
            x = block(torch.cat([x, skip], dim=1))
        # The heads in fp32 even under autocast: a bf16 image carries 8 bits (536 distinct values in a 384x192
        # frame), off by a level in 8-bit output and banded in 16-bit and float plates; the heads are a
        # fraction of the step.
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            image = torch.sigmoid(self.image_head(x))
            flow = self.flow_head(x) if self.flow_head is not None else None
        return image, flow


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
