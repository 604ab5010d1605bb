"""Typed configuration: one dataclass per concern, presets and variants as named entries, JSON round trips.

A variant (the paper's ablation, section 4.1) says *what* is trained; a preset says *how long and how big*. Both
are plain functions that edit a default config, so a variant is never a copy of the model code.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .network import NetworkConfig


@dataclass
class ResolutionConfig:
    """Where the model works. Output always goes back to the source resolution."""

    work_width: int = 384
    """Working width in pixels (a multiple of 64: the encoder halves the size six times)."""
    work_height: int = 0
    """Working height; 0 keeps the source aspect, rounded to a multiple of 64 (384x192 for 16:9 at 384)."""


@dataclass
class MaskConfig:
    """How the user's hole mask is turned into the hole that gets filled."""

    dilation: int = 0
    """Grow the hole by this many source pixels before anything else (covers soft roto edges and shadows)."""
    feather: int = 0
    """Blend the fill into the source over this many pixels *inside* the hole; outside it stays untouched."""


@dataclass
class FlowConfig:
    """The known flow F(i,j) that supervises the flow head (eq. 4) and the reliable-flow masks."""

    estimator: str = "dis"
    """'dis' (OpenCV DIS, classical) stands in for PWC-Net, whose weights cannot be downloaded here."""
    dis_preset: str = "medium"
    """OpenCV DIS preset: 'ultrafast', 'fast' or 'medium'."""
    occlusion_threshold: float = 0.5
    """A pixel's flow is valid when exp(-|F_ij + F_ji(x+F_ij)|^2 / 2) exceeds this (forward-backward check)."""


@dataclass
class LossConfig:
    """Weights of eq. 2 and the perceptual network."""

    reconstruction: float = 1.0
    flow: float = 0.1
    consistency: float = 1.0
    perceptual: float = 0.01
    consistency_from: str = "all"
    """Where eq. 5 compares: 'all' (the paper: wherever frame i or the warped frame j is hole) or 'known' (only
    where frame i is known, so the term carries real content into holes and never pulls one frame's fill toward
    another frame's still-unformed fill)."""
    consistency_moves_flow: bool = True
    """Let eq. 5's gradient reach the generated flow (the paper). False: the flow in the hole is shaped only by the
    network's prior and the flow loss around it, and cannot bend toward whatever makes two fills agree."""
    consistency_warmup: int = 0
    """Steps over which the consistency weight ramps linearly from 0 to `consistency` (0: full weight at once);
    gives the flow head time to learn from the known flow before its flows warp the frames."""
    vgg_weights: str = ""
    """Path to torchvision-format VGG16 weights; empty looks in $VINPAINT_VGG16_WEIGHTS and the torch hub cache.
    'random' uses random weights (tests only). When none is found the perceptual term is switched off."""


@dataclass
class TrainConfig:
    """The curriculum of section 3.2 / appendix C.

    An *epoch* is one pass over every batch window of the clip: for each interval t the variant uses and every start
    s such that frames s, s+t, ..., s+(N-1)t exist, one batch, visited in a seeded random order; the flow variant
    draws the direction (forward or backward flow) of each batch at random. Each batch gets `updates_per_batch`
    Adam steps. (The authors' code counts a pass as 50 batches instead; see the README.)
    """

    batch_size: int = 5
    """N: frames per batch."""
    updates_per_batch: int = 100
    """M: Adam steps on one batch before moving on."""
    epochs: float = 20.0
    """E: passes over all windows; fractions allowed (a CPU preset trains a part of one pass)."""
    intervals: tuple[int, ...] = (1, 3, 5)
    """Frame intervals t a batch may use (the flow variant); image-only variants use t=1."""
    learning_rate: float = 0.01
    seed: int = 0
    max_seconds: float = 0.0
    """Stop training after this much wall time (0: no limit) and generate from the model as it is."""
    max_steps: int = 0
    """Stop after this many steps in total (0: no limit); for smoke tests."""
    checkpoint_every_s: float = 30.0
    divergence_factor: float = 5.0
    """A step whose loss exceeds this multiple of the recent average (or is not finite) is rolled back (C.1)."""
    dip_iterations: int = 5000
    """DIP only: iterations per frame (C.1)."""
    dip_snapshot_every: int = 100
    """DIP only: how often the best-loss snapshot is considered (C.1)."""


@dataclass
class InpaintConfig:
    """Everything that decides a result. Saved beside every run; reloading it reproduces the run."""

    preset: str = "fast"
    variant: str = "dip-vid-flow"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def uses_flow(self) -> bool:
        return self.network.flow_head

    def check(self) -> None:
        """Raise InputError naming the first setting that cannot work (typed, so a typo never becomes a traceback)."""
        n, r, m, f, lc, tc = self.network, self.resolution, self.mask, self.flow, self.loss, self.train
        choices = [("network.kind", n.kind, ("2d", "3d")), ("network.flow_init", n.flow_init, ("lecun", "zero")),
                   ("flow.estimator", f.estimator, ("dis",)),
                   ("flow.dis_preset", f.dis_preset, ("ultrafast", "fast", "medium")),
                   ("loss.consistency_from", lc.consistency_from, ("all", "known")),
                   ("loss.consistency_moves_flow", lc.consistency_moves_flow, (True, False))]
        for name, value, allowed in choices:
            if value not in allowed or type(value) is not type(allowed[0]):
                raise InputError(f"setting {name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
        at_least = [("resolution.work_width", r.work_width, 1), ("resolution.work_height", r.work_height, 0),
                    ("mask.dilation", m.dilation, 0), ("mask.feather", m.feather, 0),
                    ("loss.consistency_warmup", lc.consistency_warmup, 0), ("train.batch_size", tc.batch_size, 1),
                    ("train.updates_per_batch", tc.updates_per_batch, 1), ("train.max_steps", tc.max_steps, 0),
                    ("train.dip_iterations", tc.dip_iterations, 1), ("train.dip_snapshot_every", tc.dip_snapshot_every, 1),
                    ("train.seed", tc.seed, 0)]
        for name, value, low in at_least:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError(f"setting {name} must be a whole number of at least {low}, not {value!r}")
        non_negative = [("loss.reconstruction", lc.reconstruction), ("loss.flow", lc.flow),
                        ("loss.consistency", lc.consistency), ("loss.perceptual", lc.perceptual),
                        ("train.max_seconds", tc.max_seconds), ("train.checkpoint_every_s", tc.checkpoint_every_s),
                        ("flow.occlusion_threshold", f.occlusion_threshold)]
        positive = [("train.epochs", tc.epochs), ("train.learning_rate", tc.learning_rate),
                    ("train.divergence_factor", tc.divergence_factor)]
        for name, value, strict in [(a, b, False) for a, b in non_negative] + [(a, b, True) for a, b in positive]:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (strict and value == 0):
                raise InputError(f"setting {name} must be a {'positive' if strict else 'non-negative'} number, "
                                 f"not {value!r}")
        if not tc.intervals or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 1
                                       for t in tc.intervals):
            raise InputError(f"setting train.intervals must be a list of whole numbers of at least 1, "
                             f"not {list(tc.intervals)!r}")
        if any(t not in (1, 3, 5) for t in tc.intervals):
            raise InputError("setting train.intervals may only hold 1, 3 and 5: the flow head generates flows at "
                             "offsets ±1, ±3 and ±5")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InpaintConfig":
        config = _from_dict(cls, data)
        config.check()
        return config

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        from vinpaint.storage import atomic_write_text

        atomic_write_text(Path(path), self.to_json() + "\n")

    def get(self, key: str) -> Any:
        """A field by dotted name, e.g. get("train.max_steps")."""
        node: Any = self
        for part in key.split("."):
            if not hasattr(node, part):
                raise InputError(f"unknown setting '{key}'")
            node = getattr(node, part)
        return node

    def replace(self, **dotted: Any) -> "InpaintConfig":
        """A copy with fields set by dotted name, e.g. replace(**{"train.max_steps": 10})."""
        data = self.to_dict()
        for key, value in dotted.items():
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                if p not in node or not isinstance(node[p], dict):
                    raise InputError(f"unknown setting '{key}'")
                node = node[p]
            if leaf not in node:
                raise InputError(f"unknown setting '{key}'")
            node[leaf] = value
        return InpaintConfig.from_dict(data)


def _from_dict(cls, data: dict[str, Any]):
    kwargs = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            raise InputError(f"unknown setting '{key}' in {cls.__name__}")
        sub = _nested_type(cls, key)
        if sub is not None and isinstance(value, dict):
            value = _from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _nested_type(cls, name: str):
    default = {f.name: f for f in dataclasses.fields(cls)}[name]
    if default.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        made = default.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(made):
            return type(made)
    return None


# --- variants: what is trained (section 4.1) -------------------------------------------------------------------

def _dip(c: InpaintConfig) -> None:
    c.network.kind, c.network.flow_head = "2d", False


def _dip_vid(c: InpaintConfig) -> None:
    c.network.kind, c.network.flow_head = "2d", False
    c.train.intervals = (1,)


def _dip_vid_3dcn(c: InpaintConfig) -> None:
    c.network.kind, c.network.flow_head = "3d", False
    c.train.intervals = (1,)


def _dip_vid_flow(c: InpaintConfig) -> None:
    c.network.kind, c.network.flow_head = "2d", True


VARIANTS = {
    "dip": _dip,
    "dip-vid": _dip_vid,
    "dip-vid-3dcn": _dip_vid_3dcn,
    "dip-vid-flow": _dip_vid_flow,
}
"""The paper's ablation variants; 'dip-vid-flow' is the method."""


# --- presets: how big and how long -----------------------------------------------------------------------------

def _paper(c: InpaintConfig) -> None:
    """Appendix B-C exactly: 384 wide (384x192 for 16:9), N=5, M=100, E=20, DIP 5000 iterations per frame."""
    c.resolution.work_width = 384
    c.train.batch_size, c.train.updates_per_batch, c.train.epochs = 5, 100, 20.0
    c.train.dip_iterations = 5000


FLOW_REMEDY: dict[str, Any] = {"network.flow_init": "zero", "loss.consistency_warmup": 300,
                               "loss.consistency_from": "known"}
"""The `fast` preset's flow-term settings. At a few thousand steps the paper's eq. 5 costs hole PSNR
(docs/evaluation.md, "Findings"): start the flow head at no motion, let it learn from the known flow for 300
steps before its flows warp frames, and compare only against known pixels of frame i. The defaults are eq. 5 as
printed."""


def _fast(c: InpaintConfig) -> None:
    """A CPU user's default: a few minutes on 2 cores for a 30-60 frame clip at 192 wide.

    A step count, not a clock, bounds it, so the same seed gives the same frames on any machine."""
    c.resolution.work_width = 192
    c.flow.dis_preset = "medium"
    c.train.batch_size, c.train.updates_per_batch, c.train.epochs = 5, 10, 2.0
    c.train.max_steps = 1500
    c.train.max_seconds = 0.0
    c.train.dip_iterations = 300
    for key, value in FLOW_REMEDY.items():
        section, name = key.split(".")
        setattr(getattr(c, section), name, value)


def _tiny(c: InpaintConfig) -> None:
    """Smoke tests only: 128 wide, a handful of steps; proves the wiring, not the quality."""
    c.resolution.work_width = 128
    c.network.encoder_channels = (8, 8, 16, 16, 16, 16)
    c.flow.dis_preset = "ultrafast"
    c.train.batch_size, c.train.updates_per_batch, c.train.epochs = 3, 2, 1.0
    c.train.max_steps = 6
    c.train.dip_iterations = 4
    c.train.dip_snapshot_every = 2
    c.train.checkpoint_every_s = 0.0


PRESETS = {"paper": _paper, "fast": _fast, "tiny": _tiny}


def make_config(preset: str = "fast", variant: str = "dip-vid-flow", **dotted: Any) -> InpaintConfig:
    """The config for a preset and variant, with optional dotted overrides (e.g. **{'train.seed': 3})."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    if variant not in VARIANTS:
        raise InputError(f"unknown variant '{variant}'; choose one of {', '.join(VARIANTS)}")
    config = InpaintConfig(preset=preset, variant=variant)
    PRESETS[preset](config)
    VARIANTS[variant](config)
    config = config.replace(**dotted) if dotted else config
    config.check()
    return config
