"""RAFT optical flow (Teed & Deng, ECCV 2020), inference only, for users who have a learned estimator's weights.

Laid out module for module as torchvision's `raft_large` and `raft_small`, so their published checkpoints
(raft_large_C_T_SKHT_V2-ff5fadd5.pth, raft_small_C_T_V2-01064c6d.pth, ...) load with strict=True; torchvision
itself is not needed. Nothing is downloaded: the file is found as VGG16's is (engine/perceptual.py), and without
one the caller falls back to DIS with a one-line notice. A file that is there but is not a RAFT checkpoint is an
InputError: the user pointed at it, so silently running without it would hide a mistake.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vinpaint.errors import InputError

from .weights import check_named_file


@dataclass(frozen=True)
class RaftSpec:
    """One published size of the network (the paper's section 3 and its "small" variant)."""

    feature_layers: tuple[int, ...]
    context_layers: tuple[int, ...]
    bottleneck: bool
    """Bottleneck residual blocks (small) or plain ones (large)."""
    context_norm: str
    """'batch' (large) or 'none' (small); the feature encoder always uses instance norm."""
    corr_levels: int
    corr_radius: int
    corr_layers: tuple[int, ...]
    flow_layers: tuple[int, int]
    motion_out: int
    hidden: int
    gru_kernels: tuple[tuple[int, int], ...]
    head_hidden: int
    convex_upsampling: bool


SPECS = {
    "large": RaftSpec((64, 64, 96, 128, 256), (64, 64, 96, 128, 256), False, "batch", 4, 4, (256, 192), (128, 64),
                      128, 128, ((1, 5), (5, 1)), 256, True),
    "small": RaftSpec((32, 32, 64, 96, 128), (32, 32, 64, 96, 160), True, "none", 4, 3, (96,), (64, 32),
                      82, 96, ((3, 3),), 128, False),
}
MIN_SIZE = 128
TORCHVISION_FILES = ("raft_large_C_T_SKHT_V2-ff5fadd5.pth", "raft_large_C_T_V2-1bb1363a.pth",
                     "raft_small_C_T_V2-01064c6d.pth")
"""torchvision's published checkpoints, looked for in the torch hub cache (the first found is used)."""


def _conv(c_in: int, c_out: int, k, stride: int = 1, norm: str = "none", relu: bool = True) -> nn.Sequential:
    """Conv, optional norm, optional ReLU, indexed 0, 1, 2 as torchvision's Conv2dNormActivation (its keys)."""
    pad = (k[0] // 2, k[1] // 2) if isinstance(k, tuple) else k // 2
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, pad)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(c_out))
    elif norm == "instance":
        layers.append(nn.InstanceNorm2d(c_out))
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """Two 3x3 convolutions (large) or a 1x1-3x3-1x1 bottleneck (small), plus a projected shortcut when strided."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, bottleneck: bool):
        super().__init__()
        if bottleneck:
            mid = c_out // 4
            self.convnormrelu1 = _conv(c_in, mid, 1, 1, norm)
            self.convnormrelu2 = _conv(mid, mid, 3, stride, norm)
            self.convnormrelu3 = _conv(mid, c_out, 1, 1, norm)
        else:
            self.convnormrelu1 = _conv(c_in, c_out, 3, stride, norm)
            self.convnormrelu2 = _conv(c_out, c_out, 3, 1, norm)
        self.downsample = _conv(c_in, c_out, 1, stride, norm, relu=False) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convnormrelu2(self.convnormrelu1(x))
        if hasattr(self, "convnormrelu3"):
            y = self.convnormrelu3(y)
        return F.relu(self.downsample(x) + y)


class Encoder(nn.Module):
    """[B,3,H,W] in [-1,1] -> [B,C,H/8,W/8]: a 7x7 stride-2 stem, three pairs of residual blocks, a 1x1 conv."""

    def __init__(self, layers: tuple[int, ...], norm: str, bottleneck: bool):
        super().__init__()
        self.convnormrelu = _conv(3, layers[0], 7, 2, norm)
        for n, stride in enumerate((1, 2, 2), start=1):
            c_in, c_out = layers[n - 1], layers[n]
            setattr(self, f"layer{n}", nn.Sequential(_Residual(c_in, c_out, stride, norm, bottleneck),
                                                     _Residual(c_out, c_out, 1, norm, bottleneck)))
        self.conv = nn.Conv2d(layers[3], layers[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.layer3(self.layer2(self.layer1(self.convnormrelu(x)))))


class CorrelationPyramid:
    """All-pairs correlation of two feature maps (eq. 1: dot products / sqrt(C)), pooled over frame 2's axes into
    `levels` levels; looked up in a (2r+1)^2 square around each pixel's current match (section 3.2)."""

    def __init__(self, f1: torch.Tensor, f2: torch.Tensor, levels: int, radius: int):
        b, c, h, w = f1.shape
        volume = torch.einsum("bci,bcj->bij", f1.flatten(2), f2.flatten(2)) / c ** 0.5
        volume = volume.reshape(b * h * w, 1, h, w)
        self.levels = [volume]
        for _ in range(levels - 1):
            volume = F.avg_pool2d(volume, 2, 2)
            self.levels.append(volume)
        side = torch.linspace(-radius, radius, 2 * radius + 1, device=f1.device, dtype=f1.dtype)  # no copy a lookup
        # channel order as torchvision's: the x offset is the slower index (the checkpoints' motion encoder needs it)
        dx, dy = torch.meshgrid(side, side, indexing="ij")
        self.offsets = torch.stack([dx, dy], -1)[None]  # [1, 2r+1, 2r+1, 2] (x, y)

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """[B,2,h,w] match positions (pixels at 1/8) -> [B, levels*(2r+1)^2, h, w] correlation features."""
        b, _, h, w = coords.shape
        centre = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
        out = []
        for level, volume in enumerate(self.levels):
            at = centre / 2 ** level + self.offsets
            lh, lw = volume.shape[-2:]
            grid = torch.stack([2 * at[..., 0] / max(lw - 1, 1) - 1, 2 * at[..., 1] / max(lh - 1, 1) - 1], -1)
            # grid_sample on the correlation volume itself (warp.py's helper samples images on their own grid)
            out.append(F.grid_sample(volume, grid, mode="bilinear", align_corners=True).view(b, h, w, -1))
        return torch.cat(out, -1).permute(0, 3, 1, 2)


class MotionEncoder(nn.Module):
    """Correlation features and current flow -> motion features (appendix, fig. 5), the flow appended as is."""

    def __init__(self, spec: RaftSpec):
        super().__init__()
        corr_in = spec.corr_levels * (2 * spec.corr_radius + 1) ** 2
        self.convcorr1 = _conv(corr_in, spec.corr_layers[0], 1)
        self.convcorr2 = _conv(spec.corr_layers[0], spec.corr_layers[1], 3) if len(spec.corr_layers) == 2 \
            else nn.Identity()
        self.convflow1 = _conv(2, spec.flow_layers[0], 7)
        self.convflow2 = _conv(spec.flow_layers[0], spec.flow_layers[1], 3)
        self.conv = _conv(spec.corr_layers[-1] + spec.flow_layers[1], spec.motion_out - 2, 3)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = self.convcorr2(self.convcorr1(corr))
        f = self.convflow2(self.convflow1(flow))
        return torch.cat([self.conv(torch.cat([c, f], 1)), flow], 1)


class ConvGRU(nn.Module):
    """h' = (1-z) h + z tanh(Conv[r h, x]) with z, r = sigmoid(Conv[h, x]) (section 3.3)."""

    def __init__(self, c_in: int, hidden: int, kernel: tuple[int, int]):
        super().__init__()
        pad = (kernel[0] // 2, kernel[1] // 2)
        self.convz = nn.Conv2d(hidden + c_in, hidden, kernel, padding=pad)
        self.convr = nn.Conv2d(hidden + c_in, hidden, kernel, padding=pad)
        self.convq = nn.Conv2d(hidden + c_in, hidden, kernel, padding=pad)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([h, x], 1)
        z, r = torch.sigmoid(self.convz(hx)), torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], 1)))
        return (1 - z) * h + z * q


class RecurrentBlock(nn.Module):
    """One ConvGRU (small, 3x3) or a separable pair (large, 1x5 then 5x1)."""

    def __init__(self, c_in: int, hidden: int, kernels: tuple[tuple[int, int], ...]):
        super().__init__()
        self.grus = [f"convgru{n}" for n in range(1, len(kernels) + 1)]
        for name, kernel in zip(self.grus, kernels):
            setattr(self, name, ConvGRU(c_in, hidden, kernel))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for name in self.grus:
            h = getattr(self, name)(h, x)
        return h


class FlowHead(nn.Module):
    def __init__(self, hidden: int, head_hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(hidden, head_hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(head_hidden, 2, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(h)))


class UpdateBlock(nn.Module):
    def __init__(self, spec: RaftSpec):
        super().__init__()
        context = spec.context_layers[-1] - spec.hidden
        self.motion_encoder = MotionEncoder(spec)
        self.recurrent_block = RecurrentBlock(spec.motion_out + context, spec.hidden, spec.gru_kernels)
        self.flow_head = FlowHead(spec.hidden, spec.head_hidden)


class MaskPredictor(nn.Module):
    """Hidden state -> convex-combination weights of each 1/8 pixel's 3x3 neighbours for the 8x8 it covers
    (section 3.3, appendix B); 0.25 as in the published weights' training."""

    def __init__(self, hidden: int):
        super().__init__()
        self.convrelu = _conv(hidden, 256, 3)
        self.conv = nn.Conv2d(256, 8 * 8 * 9, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return 0.25 * self.conv(self.convrelu(h))


class RAFT(nn.Module):
    """Two frames [B,3,H,W] in [-1,1], H and W multiples of 8 -> flow [B,2,H,W] in pixels, frame 1 to frame 2."""

    def __init__(self, size: str = "large"):
        super().__init__()
        self.size, self.spec = size, SPECS[size]
        spec = self.spec
        self.feature_encoder = Encoder(spec.feature_layers, "instance", spec.bottleneck)
        self.context_encoder = Encoder(spec.context_layers, spec.context_norm, spec.bottleneck)
        self.update_block = UpdateBlock(spec)
        self.mask_predictor = MaskPredictor(spec.hidden) if spec.convex_upsampling else None

    @torch.inference_mode()
    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iterations: int = 12) -> torch.Tensor:
        b, _, h, w = image1.shape
        if h % 8 or w % 8:
            raise ValueError(f"RAFT needs sizes that are multiples of 8, not {h}x{w}")
        f1, f2 = self.feature_encoder(torch.cat([image1, image2])).chunk(2)
        pyramid = CorrelationPyramid(f1, f2, self.spec.corr_levels, self.spec.corr_radius)
        hidden, context = self.context_encoder(image1).split(
            [self.spec.hidden, self.spec.context_layers[-1] - self.spec.hidden], 1)
        hidden, context = torch.tanh(hidden), F.relu(context)
        ys, xs = torch.meshgrid(torch.arange(h // 8.0), torch.arange(w // 8.0), indexing="ij")
        coords0 = torch.stack([xs, ys])[None].expand(b, -1, -1, -1).to(image1)
        coords1 = coords0.clone()
        block = self.update_block
        for _ in range(iterations):
            flow = coords1 - coords0
            motion = block.motion_encoder(flow, pyramid.lookup(coords1))
            hidden = block.recurrent_block(hidden, torch.cat([context, motion], 1))
            coords1 = coords1 + block.flow_head(hidden)
        return self.upsample(coords1 - coords0, hidden)

    def upsample(self, flow: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """[B,2,h,w] at 1/8 -> [B,2,8h,8w]: convex combination (large) or bilinear (small), values times 8."""
        b, _, h, w = flow.shape
        if self.mask_predictor is None:
            return 8 * F.interpolate(flow, size=(8 * h, 8 * w), mode="bilinear", align_corners=True)
        weights = self.mask_predictor(hidden).view(b, 1, 9, 8, 8, h, w).softmax(2)
        patches = F.unfold(8 * flow, 3, padding=1).view(b, 2, 9, 1, 1, h, w)
        up = (weights * patches).sum(2)  # [B,2,8,8,h,w]
        return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, 8 * h, 8 * w)


class RAFTFlow:
    """A FlowEstimator over RAFT: uint8 RGB [H,W,3] x2 -> float32 [H,W,2] pixels, a(x) ~ b(x + F(x))."""

    def __init__(self, net: RAFT, iterations: int = 12, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        on = next(net.parameters()).device
        # the loaded network is shared (_LOADED): a copy goes to another device, never the shared one itself
        self.net = (net if on == self.device else copy.deepcopy(net).to(self.device)).eval()
        self.iterations = iterations

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        x = torch.from_numpy(np.stack([a, b])).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        # [-1,1], what torchvision's weights were trained on
        # pad by repeating the border, split evenly as RAFT's demo: to multiples of 8, and to at least 128 (the
        # smallest size torchvision's weights are published for; below 64 the pyramid's last level would be empty)
        ph, pw = max(-h % 8, MIN_SIZE - h), max(-w % 8, MIN_SIZE - w)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        flow = self.net(x[:1], x[1:], self.iterations)[0]
        flow = flow[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return flow.permute(1, 2, 0).float().cpu().numpy()


def candidate_paths(configured: str) -> list[Path]:
    """Where weights are looked for, in order: the setting, $VINPAINT_RAFT_WEIGHTS, torch hub's cache."""
    paths = [Path(os.path.expanduser(configured))] if configured else []
    if os.environ.get("VINPAINT_RAFT_WEIGHTS"):
        paths.append(Path(os.path.expanduser(os.environ["VINPAINT_RAFT_WEIGHTS"])))
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    paths += [torch_home / "hub" / "checkpoints" / name for name in TORCHVISION_FILES]
    return paths


def raft_from_state(state, path) -> RAFT:
    """A torchvision state_dict -> RAFT of the size whose keys and shapes it has exactly; else InputError."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"the RAFT weights file {path} holds no state_dict of tensors; give a torchvision "
                         f"raft_large or raft_small checkpoint such as {TORCHVISION_FILES[0]}")
    size = "small" if "mask_predictor.conv.weight" not in state else "large"
    net = RAFT(size)
    mine = net.state_dict()
    problem = next((f"no {k}" for k in mine if k not in state), None) or \
        next((f"an unexpected {k}" for k in state if k not in mine), None) or \
        next((f"{k} of shape {tuple(state[k].shape)}, not {tuple(v.shape)}" for k, v in mine.items()
              if state[k].shape != v.shape), None)
    if problem:
        raise InputError(f"the RAFT weights file {path} is not a torchvision raft_{size} checkpoint ({problem})")
    net.load_state_dict(state, strict=True)
    return net.eval()


_LOADED: dict[tuple, RAFT] = {}
"""The last network loaded, by (file, modification time, size)."""


def load_raft(configured: str) -> tuple[RAFT | None, str]:
    """-> (network or None, one-line notice). No file found: None, and the caller falls back. A file found but
    unreadable or not RAFT's, or the file the setting names missing: InputError (one sentence), the file left
    as it is."""
    check_named_file("flow.raft_weights", configured, f"torchvision RAFT ({TORCHVISION_FILES[0]})")
    for path in candidate_paths(configured):
        try:
            stat = path.stat() if path.is_file() else None
        except OSError:  # a name too long for the file system, or one we may not look at, is simply not there
            stat = None
        if stat is None:
            continue
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _LOADED:  # validation and the run share one load
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is the same one sentence
                raise InputError(f"cannot read the RAFT weights file {path} as a torchvision checkpoint "
                                 f"({exc.__class__.__name__}); give raft_large or raft_small weights") from None
            _LOADED.clear()
            _LOADED[key] = raft_from_state(state, path)
        net = _LOADED[key]
        return net, f"flow: RAFT ({net.size}) weights from {path}"
    return None, (f"flow: no RAFT weights found (set flow.raft_weights or $VINPAINT_RAFT_WEIGHTS to a torchvision "
                  f"{TORCHVISION_FILES[0]}); using DIS")
