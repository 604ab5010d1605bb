"""VGG16 features for the perceptual loss (eq. 6): relu1_2, relu2_2, relu3_3.

Nothing is downloaded: weights come from a local torchvision-format file (`features.N.weight` keys). Without one
the term is switched off with a one-line notice.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from vinpaint.errors import InputError

from .weights import check_named_file

# torchvision's vgg16().features up to relu3_3, with the same indices so its state_dict loads as is.
_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256]
TAPS = {3: ("relu1_2", 2, 1), 8: ("relu2_2", 6, 2), 15: ("relu3_3", 18, 4)}
"""features index -> (name, receptive-field radius in pixels, stride)."""
TORCHVISION_FILE = "vgg16-397923af.pth"
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


INPUTS = ("imagenet", "bgr01")
"""What the network is fed (loss.vgg_input): 'imagenet', RGB normalised by ImageNet's mean and deviation (what
torchvision's weights were trained on); 'bgr01', the channels reversed to BGR and left in [0, 1] with no
normalisation (the authors' code). The second gives features of a much smaller scale, so eq. 6 at the same weight
is a weaker term."""


class VGG16Features(nn.Module):
    """[B,3,H,W] RGB in [0,1] -> [relu1_2, relu2_2, relu3_3] features. Frozen."""

    def __init__(self, input_mode: str = "imagenet"):
        super().__init__()
        if input_mode not in INPUTS:
            raise ValueError(f"VGG16 input must be one of {', '.join(INPUTS)}, not {input_mode!r}")
        self.input_mode = input_mode
        layers: list[nn.Module] = []
        c_in = 3
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.input_mode == "bgr01":
            x = x.flip(1)  # the authors' code: BGR in [0, 1]
        else:
            x = (x - self.mean) / self.std  # torchvision weights were trained on normalised RGB
        out = []
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx in TAPS:
                out.append(x)
        return out


def candidate_paths(configured: str) -> list[Path]:
    paths = []
    if configured:
        paths.append(Path(os.path.expanduser(configured)))
    if os.environ.get("VINPAINT_VGG16_WEIGHTS"):
        paths.append(Path(os.path.expanduser(os.environ["VINPAINT_VGG16_WEIGHTS"])))
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    paths.append(torch_home / "hub" / "checkpoints" / TORCHVISION_FILE)
    return paths


_LOADED: dict[tuple, dict] = {}
"""The features of the last file loaded, by (file, modification time, size): validation (engine/checks.py) and the
run share one read of a 528 MB file."""


def _load_into(net: VGG16Features, path: Path) -> str | None:
    """Loads a torchvision VGG16 file's features into `net`; what is wrong with the file, or None."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    wanted = _LOADED.get(key)
    if wanted is None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same one sentence
            return f"cannot be read as VGG16 weights ({exc.__class__.__name__})"
        if not isinstance(state, dict):  # a tensor, a list ...: a file of torch's, not a state dict
            return f"is not a torchvision VGG16 file (it holds a {type(state).__name__}, not a state dict)"
        wanted = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    missing = [k for k in net.state_dict() if k.startswith("features.") and k not in wanted]
    if missing:
        return f"is not a torchvision VGG16 file (no {missing[0]})"
    try:
        net.load_state_dict({**net.state_dict(), **wanted})
    except (RuntimeError, TypeError, AttributeError) as exc:  # shapes of another network, not tensors
        first = str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else type(exc).__name__
        return f"is not a torchvision VGG16 file ({first[:160]})"
    _LOADED.clear()
    _LOADED[key] = wanted  # load_state_dict copies: the network moved to a device leaves these on the CPU
    return None


def load_vgg16(configured: str, seed: int = 0, input_mode: str = "imagenet") -> tuple[VGG16Features | None, str]:
    """-> (network or None, one-line notice). 'random' gives seeded random weights (for tests). `input_mode`:
    see INPUTS."""
    net = VGG16Features(input_mode)
    if configured == "random":
        gen = torch.Generator().manual_seed(seed)
        for p in net.features.parameters():
            p.data = torch.randn(p.shape, generator=gen) * 0.05
        return net.eval(), "perceptual loss: VGG16 with RANDOM weights (testing only)"
    check_named_file("loss.vgg_weights", configured, f"torchvision VGG16 ({TORCHVISION_FILE})")
    for path in candidate_paths(configured):
        if path.is_file():
            problem = _load_into(net, path)
            if problem and configured:  # the file the setting names: the run would not be the one asked for
                raise InputError(f"loss.vgg_weights names {path}, which {problem}; give a torchvision "
                                 f"{TORCHVISION_FILE}, or set loss.perceptual=0")
            if problem:
                return None, f"perceptual loss off: {path} {problem}"
            return net.eval(), f"perceptual loss: VGG16 weights from {path}"
    return None, ("perceptual loss off: no VGG16 weights found (set loss.vgg_weights or $VINPAINT_VGG16_WEIGHTS "
                  f"to a torchvision {TORCHVISION_FILE})")
