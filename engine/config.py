"""Typed configuration: one dataclass per concern, presets and variants as named entries, JSON round trips.

A variant (the paper's ablation, section 4.1) says *what* is trained; a preset says *how long and how big*. Both
are plain functions that edit a default config, so a variant is never a copy of the model code.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vinpaint.errors import InputError
from vinpaint.files import atomic_write_text


class SettingError(InputError):
    """One setting cannot be used; `name` is its dotted name, so the daemon can point at the field."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name

    def __reduce__(self):  # across processes (Ray) with its name
        return type(self), (self.name, str(self))


# --- what every setting may be: one table, checked in one place ------------------------------------------------

class Limit:
    """The type and sane range of one setting. `clean(name, value)` returns the value normalised (an int given for
    a float becomes a float, a list a tuple) or raises InputError with one sentence naming the setting."""

    what = "a value"

    def clean(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def fail(self, name: str, value: Any) -> SettingError:
        return SettingError(name, f"setting {name} must be {self.what}, not {_show(value)}")


@dataclass(frozen=True)
class Int(Limit):
    lo: int
    hi: int
    step: int = 1
    """The value must be a multiple of this (working sizes: 64)."""
    odd: bool = False
    """Kernel sizes: odd, so a convolution keeps the size."""

    @property
    def what(self) -> str:  # type: ignore[override]
        kind = f"a multiple of {self.step}" if self.step > 1 else "an odd whole number" if self.odd else \
            "a whole number"
        return f"{kind} from {self.lo} to {self.hi}"

    def clean(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi \
                or value % self.step or (self.odd and value % 2 == 0):
            raise self.fail(name, value)
        return int(value)


@dataclass(frozen=True)
class Num(Limit):
    lo: float
    hi: float
    above: bool = False
    """True: the value must be strictly above `lo` (a learning rate of 0 trains nothing)."""

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.above:
            return f"a finite number above {self.lo:g} and at most {self.hi:g}"
        return f"a finite number from {self.lo:g} to {self.hi:g}"

    def clean(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, value)
        try:
            number = float(value)
        except OverflowError:
            raise self.fail(name, value) from None
        if not math.isfinite(number) or not self.lo <= number <= self.hi or (self.above and number == self.lo):
            raise self.fail(name, value)
        return number


@dataclass(frozen=True)
class Flag(Limit):
    what = "true or false"

    def clean(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(name, value)
        return value


@dataclass(frozen=True)
class OneOf(Limit):
    choices: Any
    """A tuple of the allowed strings, or a function returning them (for tables defined further down)."""

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(self.allowed())}"

    def allowed(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def clean(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.allowed():
            raise self.fail(name, value)
        return value


@dataclass(frozen=True)
class Text(Limit):
    max_len: int = 4096

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"text of at most {self.max_len} characters (no control characters)"

    def clean(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.max_len or any(ord(c) < 32 for c in value):
            raise self.fail(name, value)
        return value


@dataclass(frozen=True)
class Ints(Limit):
    lo: int
    hi: int
    min_len: int = 1
    max_len: int = 8
    only: tuple[int, ...] = ()
    """If given, the only values allowed (train.intervals: the flow head's offsets)."""

    @property
    def what(self) -> str:  # type: ignore[override]
        values = f"taken from {', '.join(map(str, self.only))}" if self.only else f"from {self.lo} to {self.hi}"
        return f"a list of {self.min_len} to {self.max_len} whole numbers {values}"

    def clean(self, name: str, value: Any) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)) or not self.min_len <= len(value) <= self.max_len or any(
                isinstance(v, bool) or not isinstance(v, int) or not self.lo <= v <= self.hi
                or (self.only and v not in self.only) for v in value):
            raise self.fail(name, value)
        return tuple(int(v) for v in value)


def _show(value: Any) -> str:
    """A user's value in an error sentence: short, on one line, control characters escaped."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)
    except (TypeError, ValueError):
        text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


MAX_STEPS = 100_000_000
"""Largest step count anywhere in a config (10^8 steps: years on a CPU, months on a GPU)."""
MAX_BATCHES = 1_000_000
"""Most batches one schedule may hold (the list is built up front; this bounds it to about 100 MB)."""

LIMITS: dict[str, Limit] = {
    "preset": OneOf(lambda: tuple(PRESETS)),
    "variant": OneOf(lambda: tuple(VARIANTS)),
    "network.kind": OneOf(("2d", "3d")),
    "network.encoder_channels": Ints(1, 1024, 1, 6),
    "network.encoder_kernel": Int(1, 15, odd=True),
    "network.decoder_kernel": Int(1, 15, odd=True),
    "network.skip_channels": Int(1, 256),
    "network.temporal_kernel": Int(1, 9, odd=True),
    "network.flow_head": Flag(),
    "network.head_kernel": Int(1, 15, odd=True),
    "network.flow_init": OneOf(("lecun", "zero")),
    "network.decoder": OneOf(("authors", "vinpaint")),
    "resolution.work_width": Int(64, 2048, 64),
    "resolution.work_height": Int(0, 2048, 64),
    "mask.dilation": Int(0, 512),
    "mask.feather": Int(0, 512),
    "flow.estimator": OneOf(("dis", "raft")),
    "flow.dis_preset": OneOf(("ultrafast", "fast", "medium")),
    "flow.occlusion_threshold": Num(0.0, 1.0),
    "loss.reconstruction": Num(0.0, 1e6),
    "loss.flow": Num(0.0, 1e6),
    "loss.consistency": Num(0.0, 1e6),
    "loss.perceptual": Num(0.0, 1e6),
    "loss.consistency_from": OneOf(("all", "known")),
    "loss.consistency_moves_flow": Flag(),
    "loss.consistency_warmup": Int(0, MAX_STEPS),
    "loss.vgg_weights": Text(4096),
    "loss.vgg_input": OneOf(("bgr01", "imagenet")),
    "train.batch_size": Int(1, 64),
    "train.updates_per_batch": Int(1, 100_000),
    "train.epochs": Num(0.0, 100_000.0, above=True),
    "train.intervals": Ints(1, 5, 1, 3, only=(1, 3, 5)),
    "train.learning_rate": Num(0.0, 1e6, above=True),
    "train.seed": Int(0, 2**31 - 1),
    "train.max_seconds": Num(0.0, 365 * 86400.0),
    "train.max_steps": Int(0, MAX_STEPS),
    "train.checkpoint_every_s": Num(0.0, 86400.0),
    "train.divergence_factor": Num(0.0, 1e12, above=True),
    "train.dip_iterations": Int(1, 1_000_000),
    "train.dip_snapshot_every": Int(1, 1_000_000),
}
"""Every setting's type and range by dotted name. A dataclass field may instead carry its own in its metadata
(`field(default=..., metadata={"limit": Int(0, 10)})`, see `setting()`). A field with neither is refused by the
test suite (tests/test_hostile_settings.py), so no setting can be added without a range."""


def setting(default: Any, limit: Limit) -> Any:
    """A dataclass field that declares its own range: `size: int = setting(3, Int(1, 9))`."""
    if isinstance(default, (list, tuple, dict)):
        return field(default_factory=lambda: default, metadata={"limit": limit})
    return field(default=default, metadata={"limit": limit})


def setting_fields(cls: type = None, prefix: str = "") -> dict[str, tuple[Any, Limit | None]]:
    """Every leaf setting of a config class by dotted name -> (its default, its declared Limit or None)."""
    cls = cls or InpaintConfig
    out: dict[str, tuple[Any, Limit | None]] = {}
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            out.update(setting_fields(type(value), name + "."))
        else:
            out[name] = (value, f.metadata.get("limit") or LIMITS.get(name))
    return out


def limit_of(name: str) -> Limit | None:
    """The declared Limit of one dotted setting; InputError when there is no such setting."""
    fields_ = setting_fields()
    if name not in fields_:
        raise InputError(f"unknown setting '{name}'")
    return fields_[name][1]


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under a config dataclass's fields (the string after `name: type = default`), read
    from the source, so the help of a setting is the text beside its definition."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (a frozen build): names and ranges still help
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def setting_help(cls: type = None, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Every setting as (dotted name, what values it takes, default, its field's docstring), for `--settings`."""
    cls = cls or InpaintConfig
    docs, instance, out = field_docs(cls), cls(), []
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            out += setting_help(type(value), prefix + f.name + ".")
            continue
        limit = f.metadata.get("limit") or LIMITS.get(prefix + f.name) or _fallback(value)
        out.append((prefix + f.name, limit.what, value, docs.get(f.name, "")))
    return out


def clean_setting(name: str, value: Any) -> Any:
    """One setting by dotted name checked against its declared Limit: the one check the CLI's --set, a config
    file and the daemon's job.open overrides all go through. InputError names the setting and its range."""
    fields_ = setting_fields()
    if name not in fields_:
        raise SettingError(name, f"unknown setting '{name}'")
    default, limit = fields_[name]
    return (limit or _fallback(default)).clean(name, value)


def _fallback(default: Any) -> Limit:
    """Only for a field added without a declared range (the test suite fails on those): its default's type."""
    if isinstance(default, bool):
        return Flag()
    if isinstance(default, int):
        return Int(0, MAX_STEPS)
    if isinstance(default, float):
        return Num(0.0, 1e12)
    if isinstance(default, tuple):
        return Ints(0, 1_000_000, 0, 64)
    return Text(4096)


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
    """Kernel size of the encoder convolutions (A.1: 5x5)."""
    decoder_kernel: int = 3
    """Kernel size of the decoder convolutions (A.1: 3x3)."""
    skip_channels: int = 4
    """Channels of the 1x1 skip convolution from each encoder block's input to the matching decoder block."""
    temporal_kernel: int = 1
    """3D only: temporal extent of encoder and decoder kernels (skips use 1). 1 is the authors' code (their 3D network
    mixes frames only through BatchNorm's statistics); 3 lets each layer see its neighbouring frames."""
    decoder: str = "vinpaint"
    """'authors': BatchNorm over each skip concatenation, then a 3x3 and a 1x1 convolution, reflection padding, PyTorch's
    default initialisation (the authors' code); 'vinpaint': two 3x3 convolutions, zero padding, LeCun-normal init."""
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


@dataclass
class ResolutionConfig:
    """Where the model works. Output always goes back to the source resolution."""

    work_width: int = 384
    """Working width in pixels (a multiple of 64: the encoder halves the size six times)."""
    work_height: int = 0
    """Working height; 0 keeps the source aspect, rounded to a multiple of 64 (384x192 for 16:9 at 384), at most
    four times the width (a tall strip)."""
    crop_to_hole: bool = setting(False, Flag())
    """Train on the region around the hole that is left to generate (its union over the clip plus a margin), at
    up to `work_width` (never enlarged past the next multiple of 64), instead of the whole frame squashed to
    `work_width`: a small hole in a large plate gets near-native detail. Off in `paper` (the paper's whole frame)."""
    crop_margin: float = setting(0.5, Num(0.0, 10.0))
    """Context around the hole's box on each side, as a share of the box's larger side (at least 32 source px)."""


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
    """'dis' (OpenCV DIS, classical, no weights) stands in for PWC-Net. 'raft': RAFT (engine/raft.py) from a local
    torchvision checkpoint (`raft_weights`); with none found, DIS is used and a one-line notice says so. Used for
    both the known flow (eqs. 4-5) and propagation's neighbour flows."""
    dis_preset: str = "medium"
    """OpenCV DIS preset: 'ultrafast', 'fast' or 'medium'."""
    raft_weights: str = setting("", Text(4096))
    """A torchvision raft_large or raft_small checkpoint (.pth). Empty: $VINPAINT_RAFT_WEIGHTS, then torch hub's
    cache. Read with weights_only=True; a file that is not a RAFT checkpoint stops the run with one sentence."""
    raft_iterations: int = setting(12, Int(1, 64))
    """RAFT's recurrent refinements per pair (torchvision's default 12); more is slower and a little finer."""
    occlusion_threshold: float = 0.5
    """A pixel's flow is valid when exp(-|F_ij + F_ji(x+F_ij)|^2 / 2) exceeds this (forward-backward check)."""


@dataclass
class LossConfig:
    """Weights of eq. 2 and the perceptual network."""

    reconstruction: float = 1.0
    """Weight of eq. 3, the image reconstruction loss on known pixels."""
    flow: float = 0.1
    """Weight of eq. 4, the flow generation loss against the known flow."""
    consistency: float = 1.0
    """Weight of eq. 5, the consistency of generated frames warped by the generated flow."""
    perceptual: float = 0.01
    """Weight of eq. 6, the VGG16 perceptual loss on known pixels (0 switches VGG16 off)."""
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
    vgg_input: str = "imagenet"
    """What VGG16 is fed: 'imagenet' (RGB normalised by ImageNet's mean and deviation, as torchvision's weights were
    trained on) or 'bgr01' (BGR in [0, 1], unnormalised: the authors' code). The features, and so eq. 6 at the same
    weight, differ in scale: the issue-12 audit measured about 19x between the two (docs/evaluation.md)."""


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
    """Adam's learning rate, kept to the last step (B)."""
    seed: int = 0
    """Seeds the noise input, the weights and the batch order: the same seed gives the same result."""
    max_seconds: float = 0.0
    """Stop training after this much wall time (0: no limit) and generate from the model as it is."""
    max_steps: int = 0
    """Stop after this many steps in total (0: no limit); for smoke tests."""
    fit_seconds: float = setting(0.0, Num(0.0, 365 * 86400.0))
    """Fit the step count to this machine (0: off; video variants): the first steps are timed and max_steps is
    lowered, never raised, so that the whole run (flow and propagation before training, measured; generation, the
    self-check and composition after it, estimated) takes about this many seconds. Unlike max_seconds the cut is
    made once, early, and logged, and the config saved with the result holds the count chosen (train.max_steps,
    with fit_seconds 0), which repeats the run exactly on any machine. `fast` uses 180: its 1000 steps take about
    35-40 s on a GPU, 220-250 s on a 2-core CPU with bf16 matrix units and 580 s on a 2-core AVX2 one without, where
    a tall crop took 1100 s and a 1920x1440 plate spent 350 s outside training (docs/evaluation.md, "A CPU without
    bf16: the step count fitted to the machine", "The whole run fitted" and "Three minutes for `fast`")."""
    fit_min_steps: int = setting(0, Int(0, MAX_STEPS))
    """With fit_seconds: when fewer steps than this fit, no model is trained at all (0: always train). What no frame
    sees is then filled the way a clip that needs no model is (diffusion from the propagated pixels around it, made
    steady), in seconds instead of minutes. `fast` sets all of its 1000 steps: on a 2-core CPU it fits 263-593, and
    at those counts the self-check gave the model no share on five of seven composed clips and 0.10-0.14 on two
    (+0.09 and +0.10 dB), for about five minutes each; at 750 steps, on three clips where most of the hole is seen
    by no frame, no share on two and 0.11 (+0.07 dB) on one, for about eight minutes each; all 1000 on a bf16 CPU,
    on three such clips, 0.23 (+0.13 dB) on one and none on two, for about four minutes each (docs/evaluation.md,
    "Training where it pays", "750 steps" and "Three minutes for `fast`"). Needs propagation: without it the model is
    all there is and it trains."""
    checkpoint_every_s: float = 30.0
    """Seconds between checkpoints written to the work directory."""
    divergence_factor: float = 5.0
    """A step whose loss exceeds this multiple of the recent average (or is not finite) is rolled back (C.1)."""
    dip_iterations: int = 5000
    """DIP only: iterations per frame (C.1)."""
    dip_snapshot_every: int = 100
    """DIP only: how often the best-loss snapshot is considered (C.1)."""
    ema_decay: float = setting(0.0, Num(0.0, 0.9999))
    """Generate from an exponential moving average of the weights with this decay (engine/averaging.py; 0: from
    the last step's weights, as the authors). 0.99 averages about the last 100 steps: at lr 0.01 the last step's
    weights are a noisy sample and the output jumps by dBs between neighbouring steps (docs/evaluation.md)."""
    batches_per_step: int = setting(1, Int(1, 64))
    """Batches (windows of N frames) trained together by one optimizer step, as one forward pass over their frames,
    to fill a big GPU: each group of this many consecutive batches of the schedule gets M steps, so a run takes
    about 1/this as many steps. 1: the paper's one batch per step."""
    readback_every: int = setting(0, Int(0, 10_000))
    """Steps between reads of the losses from the device; the divergence check, the progress bar and the loss
    history are fed from them, and every batch ends with one. 0: every step on a CPU (a read costs nothing there)
    and every 20 on a GPU (each read stalls the queue of kernels)."""
    deterministic: bool = setting(True, Flag())
    """Same seed, same result, and a resumed run equals an uninterrupted one, on a GPU too: deterministic
    algorithms (cuDNN's deterministic convolutions, a gather-based warp in place of grid_sample's atomic backward).
    Free on a CPU; the README's Speed section says what it costs on a GPU."""
    precision: str = setting("fp32", OneOf(("fp32", "tf32", "bf16", "auto")))
    """'fp32'; 'tf32': TensorFloat-32 matrix units for convolutions on CUDA (fp32 on a CPU); 'bf16': the network
    runs under bfloat16 autocast, weights and losses stay fp32 (pays on a GPU, and on CPUs with AMX); 'auto':
    bf16 with channels-last on a CPU with bf16 matrix units (AMX or AVX512-BF16), where a `fast` step took half
    the fp32 time at the same pooled hole PSNR (docs/evaluation.md, "bf16 on the CPU, and an honest held-out
    band"), tf32 on a CUDA GPU, fp32 anywhere else. A run resolves it once, logs the choice and saves the resolved
    config."""
    channels_last: bool = setting(False, Flag())
    """Activations in channels-last (NHWC) memory order, which cuDNN's and oneDNN's fast kernels prefer."""
    capture: str = setting("none", OneOf(("none", "graph", "compile")))
    """'graph': on CUDA, one training step recorded as a CUDA graph and replayed (no per-kernel launch cost);
    'compile': torch.compile(mode='reduce-overhead'); 'none': eager. Where the choice cannot run (a CPU has no
    CUDA graphs), training runs eagerly and says so once."""


@dataclass
class PropagationConfig:
    """Beyond the paper: real pixels carried into the hole along completed flow from frames that see the background
    (engine/propagate.py). The generator then only fills what no frame sees."""

    enabled: bool = setting(True, Flag())
    """Propagate real pixels into the hole (off in `paper`, which is the paper's method alone)."""
    before_training: bool = setting(True, Flag())
    """Treat propagated pixels as known while training, so the generator learns only what no frame shows."""
    tolerance: float = setting(4.0, Num(0.0, 1000.0, above=True))
    """Forward-backward check of each step of a chain, in pixels of a 480-wide plate (on a wider one it grows in
    proportion: engine/propagate.py plate_scale): a larger value reaches further but admits worse flow (the
    calibrated distance limit keeps long chains of bad flow out). In source pixels, 4 px on a 1920-wide
    plate reached a quarter of what it does at 480 (docs/evaluation.md, "Larger plates")."""
    band: int = setting(4, Int(0, 256))
    """Pixels around the hole whose estimated flow is discarded and completed like the hole's own (of a 480-wide
    plate; more on a wider one, as `tolerance`)."""
    max_width: int = setting(960, Int(64, 8192))
    """Flow for propagation is estimated at most this wide and scaled up (4K plates need no 4K flow)."""
    seam: int = setting(3, Int(0, 256))
    """Width of the soft join between propagated and generated pixels, in pixels of a 480-wide plate (more on a
    wider one, as `tolerance`)."""
    max_distance: int = setting(0, Int(0, 1_000_000))
    """Copy from at most this many frames away (0: no limit, or what `calibrate` finds)."""
    calibrate: bool = setting(True, Flag())
    """With max_distance 0, let the clip choose it: known pixels around the hole are carried along the flow and
    compared with diffusion on the same pixels; copies stop at the distance where they stop winning (a changing
    scene or drifting flow makes far copies worse than a smooth fill)."""
    calibrate_completed: bool = setting(False, Flag())
    """Carry the calibration's known ring (above, and the fusion's errors by distance) along flow completed over
    it as the hole's own is, discarded there and filled from outside: a copy into the hole follows completed flow,
    and the ring's estimated flow flattered it where the hole covers a motion of its own (a static wire over
    walking people: copies that travelled 5-8 frames scored 12.6 dB where Telea scored 18.5, and were trusted).
    Off: the ring's own estimated flow (a config saved before the setting existed). On in `fast`: it turned four
    clip kinds that lost to Telea by up to 1.6 dB into ties or wins, for about 0.1 dB less on average where the
    engine already won by 0.6 dB or more (docs/evaluation.md, "Copies calibrated through completed flow")."""
    fusion: str = setting("copies+diffusion", OneOf(("nearest", "copies", "copies+diffusion")))
    """How a hole pixel's candidates become its colour. 'nearest': the copy from the nearer frame (a tie averages);
    'copies': the copies from both directions in time, weighted by their measured error at the distance each
    travelled; 'copies+diffusion': per-frame diffusion (`diffusion`) joins them, weighted by its measured error at
    the pixel's depth in the hole, so it counts near the edge and hardly at all deep inside (engine/propagate.py
    Fusion; docs/evaluation.md, "Fusing the candidates, and blending the model with diffusion")."""
    diffusion: str = setting("telea", OneOf(("telea", "membrane", "membrane+biharmonic")))
    """The per-frame fill from the pixels around (engine/diffusion.py) wherever one is used: the fusion's third
    candidate, what no frame sees when no model is trained, the self-check's other side and its blend. 'telea':
    OpenCV's Telea, the classical fill (and what a config saved before this setting used); 'membrane': the
    smoothest surface through the pixels around, 0.74 dB above Telea on average on the bare holes of 17 composed
    clips and above it on every one; 0.14 dB through `fast`'s training-free path (docs/evaluation.md, "Diffusion:
    the membrane"); 'membrane+biharmonic': the membrane mixed with the biharmonic fill by a weight fitted on each
    clip's known pixels (engine/diffusion.py clip_diffusion; docs/evaluation.md, "The biharmonic fill, blended per
    clip"). 'membrane+biharmonic' in `fast`."""
    local_errors: bool = setting(False, Flag())
    """With a fusion of copies, weight each copy by how well one-frame copies did on the known ring near that
    pixel, relative to the whole clip (engine/propagate.py LocalCopyError): a copy beside a still wall counts
    for more than one beside running dogs. Off: one error per distance for the whole clip (a config saved before
    the setting existed). On in `fast` (docs/evaluation.md, "Copy errors where they were measured")."""
    exposure: bool = setting(False, Flag())
    """Carry each copied pixel into its frame's light: the brightness of every frame relative to its neighbours is
    measured per channel on the known pixels the flow links, and a copy from another frame is scaled by the ratio
    (engine/exposure.py). A flickering or auto-exposed clip otherwise shows the hole as a lighter or darker patch;
    an evenly lit one (spread under 2 %) is left exactly as it was. Off: copies keep their own frame's light (a
    config saved before the setting existed). On in `fast` (docs/evaluation.md, "Frames in other light")."""
    self_check: bool = setting(False, Flag())
    """After training, choose between the model's fill and diffusion (`diffusion`) for what no frame sees (with or
    without propagation) by scoring both on a band of known pixels held out of training (engine/self_check.py),
    so a poorly trained model never fills worse than diffusion. Scored on the part of the band that no other frame
    shows either (Propagation.hidden_band): a band pixel another frame shows is learned from there, which the
    unseen hole never is. On in `fast`; off in `paper` (the paper's method)."""
    check_band: int = setting(12, Int(1, 64))
    """Width of that held-out band around the part of the hole no frame sees, in pixels of a 480-wide plate (more
    on a wider one, as `tolerance`). Narrow bands lie
    where Telea is at its best and favour it: at 4 px vtest + schoolgirls chose diffusion and lost 0.65 dB to the
    model; at 12 px it chose the model, and the moving-camera clips still chose diffusion (docs/evaluation.md)."""
    check_every: int = setting(0, Int(0, 1_000_000))
    """With `self_check`, also score the model on the band every this many steps while it trains and log the scores
    (0: only at the end). A diagnostic: the curve shows whether more steps would change the choice. Each check
    generates every frame once, about a tenth of that many steps' time; it changes nothing in the run."""
    check_margin: float = setting(1.0, Num(0.0, 100.0))
    """dB by which the model must beat diffusion on the band to fill what no frame sees (with `check_blend`: how much
    worse than on the band its error is taken to be when its share is fitted). The band lies next to
    known pixels, where the model does best; deeper in the hole it did worse: after `fast`'s 1500 steps the model
    won the band by 0.63 and 0.52 dB on two clips and lost the hole to diffusion by 1.71 and 0.34 dB
    (docs/evaluation.md, "The self-check's margin")."""
    check_blend: bool = setting(True, Flag())
    """With `self_check`, fill what no frame sees with a blend of the model and diffusion, the model's share fitted
    by least squares on the band with its error taken `check_margin` dB worse deeper in (False: the better one
    alone, by the margin). Two fills with different errors average to a better one (docs/evaluation.md,
    "Fusing the candidates, and blending the model with diffusion")."""
    train_below: float = setting(0.01, Num(0.0, 1.0))
    """When propagation leaves at most this share of the hole unseen, that rest is filled by diffusion from the
    real pixels around it and no model is trained (0: train whenever a single pixel is left). `fast` uses 0.15:
    on a CPU, at 600 steps, the model's fill of a small unseen rest lost to diffusion from the propagated pixels
    around it (running_car + tennis, 11 % unseen: 20.36 against 23.07 dB), and only won on a large one (tree +
    blackswan, 41 % unseen: 22.46 against 22.06); docs/evaluation.md."""
    steady_radius: int = setting(0, Int(0, 100))
    """Frames either side over which the fill of what no frame sees is averaged along the completed flow
    (engine/stabilise.py), so that it stands still where the plate does instead of shimmering frame to frame
    (0: each frame's own fill, as the paper). Needs propagation's flows: nothing happens with propagation off."""
    steady_still_radius: int = setting(0, Int(0, 1000))
    """With `steady_radius` on, how many frames either side a track that stays within a pixel of where it started is
    followed (below `steady_radius`: no further). A still region on a locked-off shot (a removed logo or rig) then
    averages over most of the shot and stands as still as the plate; a moving track is unaffected. Costs CPU time
    in proportion on still regions only: on vtest with a still box, 20 took the consistency from 48.4 to 53.8 dB
    (Telea 52.1) at the same PSNR (docs/evaluation.md, "Still regions: a longer track")."""


@dataclass
class ShotConfig:
    """Long shots (engine/shot.py): a clip longer than `window` frames is cut into overlapping windows, each its own
    internal-learning run, joined by a cross-fade inside the hole. Memory then depends on the window, not the shot."""

    window: int = setting(100, Int(2, 100_000))
    """Frames per window: one window's frames are what one training run holds and learns from. A clip of at most
    this many frames is one run exactly as without windows."""
    overlap: int = setting(10, Int(0, 10_000))
    """Frames two neighbouring windows share; their results are cross-faded over them so the join cannot be seen."""
    window_megapixels: float = setting(0.0, Num(0.0, 1_000_000.0))
    """Most source pixels one window holds, in millions (frames x height x width; 0: no bound). Memory follows
    them, so a large plate gets fewer frames a window than `window` (never fewer than its batches need): fixed
    once where the plate's size is known (InpaintConfig.for_frame_size) and saved with the run."""


BUDGET_SETTINGS = ("checkpoint_every_s", "max_steps", "max_seconds", "fit_seconds", "fit_min_steps")
"""TrainConfig settings that say how long to train and how often to checkpoint, not what is learnt."""
COMPOSITION_SETTINGS = ("steady_radius", "steady_still_radius")
"""PropagationConfig settings read by composition alone (engine/api.py _steady)."""


@dataclass
class InpaintConfig:
    """Everything that decides a result. Saved beside every run; reloading it reproduces the run."""

    preset: str = "fast"
    """How long and how big: the preset this config started from (PRESETS)."""
    variant: str = "dip-vid-flow"
    """What is trained: the paper's ablation variant (VARIANTS)."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    propagation: PropagationConfig = field(default_factory=PropagationConfig)
    shot: ShotConfig = field(default_factory=ShotConfig)

    @property
    def uses_flow(self) -> bool:
        return self.network.flow_head

    def check(self) -> None:
        """Check every setting against its declared type and range (LIMITS), normalising in place (an int given
        for a float becomes a float, a list a tuple); InputError names the first setting that cannot work."""
        for name, (default, limit) in setting_fields().items():
            *parents, leaf = name.split(".")
            node: Any = self
            for part in parents:
                node = getattr(node, part)
                if not dataclasses.is_dataclass(node):
                    raise InputError(f"setting {part} must be a map of settings, not {_show(node)}")
            setattr(node, leaf, (limit or _fallback(default)).clean(name, getattr(node, leaf)))

    def fitted(self, t_count: int) -> tuple["InpaintConfig", str | None]:
        """These settings for a clip of `t_count` frames, with a notice when they had to change: a clip shorter
        than one batch at the largest interval (21 frames for N=5 at t=5) trains on the intervals that fit, and one
        shorter than a batch on batches of the whole clip. A compositor's 12-frame shot is a job, not an error."""
        n, intervals = self.train.batch_size, self.train.intervals if self.uses_flow else (1,)
        if self.variant == "dip" or t_count < 1 or (n - 1) * max(intervals) + 1 <= t_count:
            return self, None
        fit = tuple(t for t in intervals if (n - 1) * t + 1 <= t_count)
        changes: dict[str, Any] = {"train.intervals": fit} if fit and self.uses_flow else {}
        if not fit:
            changes = {"train.batch_size": t_count, "train.intervals": (1,)} if self.uses_flow else \
                {"train.batch_size": t_count}
        fitted = self.replace(**changes)
        n2, used = fitted.train.batch_size, fitted.train.intervals if self.uses_flow else (1,)
        return fitted, (f"the clip has {t_count} frame{'s' if t_count != 1 else ''}, too few for batches of {n} at "
                        f"interval {max(intervals)}: training on batches of {n2} at "
                        f"interval{'s' if len(used) > 1 else ''} {', '.join(map(str, used))}")

    @property
    def batch_span(self) -> int:
        """Frames one batch spans at the largest interval (21 for 5 frames at interval 5): the fewest a window of a
        long shot may hold. DIP trains frame by frame: 1."""
        if self.variant == "dip":
            return 1
        return (self.train.batch_size - 1) * (max(self.train.intervals) if self.uses_flow else 1) + 1

    def for_frame_size(self, height: int, width: int) -> "InpaintConfig":
        """These settings for a plate of height x width: shot.window lowered to what shot.window_megapixels
        allows at that size, but never below overlap + 1 or one batch at the largest interval (check_windows'
        need). The CLI and the daemon's job.open call it once, so the saved config holds the window that ran."""
        budget = self.shot.window_megapixels
        if budget <= 0 or height * width <= 0:
            return self
        fit = max(int(budget * 1e6 // (height * width)), self.shot.overlap + 1, self.batch_span)
        return self.replace(**{"shot.window": fit}) if fit < self.shot.window else self

    def planned_batches(self, t_count: int) -> int:
        """How many batches the schedule of a clip of `t_count` frames holds (train.batch_schedule's length)."""
        config = self.fitted(t_count)[0]
        n, tc = config.train.batch_size, config.train
        intervals = tc.intervals if config.uses_flow else (1,)
        windows = sum(max(0, t_count - (n - 1) * t) for t in intervals)
        whole, part = int(math.floor(tc.epochs)), tc.epochs - math.floor(tc.epochs)
        return whole * windows + (max(1, int(round(part * windows))) if part > 0 and windows else 0)

    def planned_steps(self, t_count: int) -> int:
        """Training steps a clip of `t_count` frames gets: the schedule, cut short by train.max_steps."""
        tc = self.train
        total = t_count * tc.dip_iterations if self.variant == "dip" else \
            -(-self.planned_batches(t_count) // tc.batches_per_step) * tc.updates_per_batch
        return min(total, tc.max_steps) if tc.max_steps > 0 else total

    def check_clip(self, t_count: int) -> None:
        """Settings that are only too big for a given clip: a schedule of more than MAX_BATCHES batches."""
        if self.variant != "dip" and self.planned_batches(t_count) > MAX_BATCHES:
            raise InputError(f"train.epochs {self.train.epochs:g} gives {self.planned_batches(t_count)} batches for "
                             f"{t_count} frames, more than the {MAX_BATCHES} a run may plan; lower train.epochs")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_identity(self, with_feather: bool = False) -> dict[str, Any]:
        """The settings that decide what a run trains and caches: all of them but its budget and bookkeeping
        (BUDGET_SETTINGS: a larger budget continues a run) and those read by composition alone
        (COMPOSITION_SETTINGS, mask.feather: a finished run is composed again with them). Two configs with the
        same identity share a work directory (engine/api.py fingerprint) and the daemon's finished training
        (host_bridge/siblings.py). `with_feather`: as versions before 2026-11-30 keyed it."""
        settings = self.to_dict()
        for name in BUDGET_SETTINGS:
            settings["train"].pop(name, None)
        for name in COMPOSITION_SETTINGS:
            settings["propagation"].pop(name, None)
        if not with_feather:
            settings["mask"].pop("feather", None)
        settings.pop("shot", None)  # how a long shot is cut decides which frames come here, not what they become
        return settings

    def composition(self) -> list:
        """The values read by composition alone (COMPOSITION_SETTINGS, mask.feather): a stored composed result (a
        long shot's window) made with others is stale."""
        return [getattr(self.propagation, name) for name in COMPOSITION_SETTINGS] + [self.mask.feather]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InpaintConfig":
        # a saved <stem>.config.json's mark and digest (media/marks.py MARK_MEMBER): not a setting
        config = _from_dict(cls, {k: v for k, v in data.items() if k != "written_by"})
        config.check()
        return config

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        atomic_write_text(Path(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> "InpaintConfig":
        """A config saved by save() (a work directory's config.json, an output's .config.json)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def get(self, key: str) -> Any:
        """A setting by dotted name, e.g. get("train.max_steps")."""
        if key not in setting_fields():
            raise SettingError(key, f"unknown setting '{key}'")
        node: Any = self
        for part in key.split("."):
            node = getattr(node, part)
        return node

    def with_overrides(self, dotted: dict[str, Any]) -> "InpaintConfig":
        """A copy with settings changed by dotted name ({"train.max_steps": 10}), each checked against its declared
        type and range (`clean_setting`), then the whole config checked. The one way the command line's --set,
        its named options and the daemon's job.open overrides change a config; SettingError names the setting."""
        data = self.to_dict()
        for key, value in dotted.items():
            *parents, leaf = key.split(".")
            node = data
            cleaned = clean_setting(key, value)
            for part in parents:
                node = node[part]
            node[leaf] = cleaned
        return InpaintConfig.from_dict(data)

    def replace(self, **dotted: Any) -> "InpaintConfig":
        """with_overrides with keywords: replace(**{"train.max_steps": 10})."""
        return self.with_overrides(dotted)

    def as_ran(self, steps: int) -> "InpaintConfig":
        """The settings that repeat a finished run of `steps` training steps on any machine. With train.fit_seconds
        the same settings fit another count on a faster or slower machine, so a trained run's count replaces the
        fit, and a run that trained no model (steps 0: too few steps would fit, train.fit_min_steps, or too little
        was unseen, propagation.train_below) asks for none, which gives its pixels on any machine. Without a fit,
        the config itself."""
        if self.train.fit_seconds <= 0:
            return self
        if steps > 0:
            return self.replace(**{"train.max_steps": int(steps), "train.fit_seconds": 0.0})
        if not self.propagation.enabled:
            return self  # every run without propagation trains; no such run ends with no model
        return self.replace(**{"train.fit_seconds": 0.0, "propagation.train_below": 1.0})

    def identity_differences(self, other: "InpaintConfig") -> list[tuple[str, Any, Any]]:
        """(dotted name, other's value, this one's) for each setting of the training identity on which `other`
        (a work directory's saved config) differs, bar what as_ran rewrites (same_run_as): what to give to
        continue that run."""
        def flat(node: dict, prefix: str = "") -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in node.items():
                out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
            return out

        mine, theirs = flat(self.training_identity()), flat(other.training_identity())
        return [(name, theirs.get(name), mine[name]) for name in sorted(mine)
                if name != "propagation.train_below" and theirs.get(name) != mine[name]]

    def same_run_as(self, other: "InpaintConfig") -> bool:
        """Whether two configs record one run: the same training identity, bar what as_ran rewrites in a finished
        run's record (its budget, and propagation.train_below for a run that trained no model)."""
        mine, theirs = self.training_identity(), other.training_identity()
        for identity in (mine, theirs):
            identity["propagation"].pop("train_below", None)
        return mine == theirs


def _from_dict(cls, data: dict[str, Any]):
    kwargs = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            raise InputError(f"unknown setting '{key}' in {cls.__name__}")
        sub = _nested_type(cls, key)
        if sub is not None:
            if not isinstance(value, dict):
                raise InputError(f"setting '{key}' must be a map of settings, not {_show(value)}")
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


# --- sizes: what the settings make of a clip ----------------------------------------------------------------

TALLEST = 4
"""A working height derived from the aspect is at most this many times the width: a 4x1000 strip made a 64x16000
network input and used 18 GB to train six tiny steps. (Not the 2048 of an explicit `work_height`: a 9:16 portrait
plate at a `work_width` of 1280 keeps its 2304.)"""


def _derived_height(height: int, width: int, w: int) -> int:
    return min(max(64, int(round(height * w / width / 64.0)) * 64), TALLEST * w)


def working_size(height: int, width: int, config: InpaintConfig) -> tuple[int, int]:
    """Source size -> (h, w) the network works at: multiples of 64, aspect kept unless both are given."""
    w = int(config.resolution.work_width)
    if w < 64 or w % 64:
        raise InputError(f"working width {w} is too small or not a multiple of 64 (the encoder halves it 6 times); "
                         "use 64, 128, 192, 256, 320, 384 ...")
    h = int(config.resolution.work_height) or _derived_height(height, width, w)
    if h < 64 or h % 64:
        raise InputError(f"working height {h} is too small or not a multiple of 64")
    return h, w


def region_working_size(height: int, width: int, config: InpaintConfig) -> tuple[int, int]:
    """A crop around the hole -> (h, w) the network works at: up to `work_width`, but never enlarged past the next
    multiple of 64, so a small region is trained at its own detail rather than blown up."""
    cap = int(config.resolution.work_width)
    w = max(64, min(cap, -(-width // 64) * 64))
    h = int(config.resolution.work_height) or _derived_height(height, width, w)
    if config.variant == "dip" and h * w < 2 * 64 * 64:
        w = 128  # BatchNorm needs a bottleneck of at least 2 pixels
    return h, w


# --- variants: what is trained (section 4.1) -------------------------------------------------------------------

def _image_only(c: InpaintConfig) -> None:
    """The baselines of C.1-C.3 are trained with eq. 3 alone (the authors' configs: reconstruction weight 1, the
    flow, consistency and perceptual weights 0): no flow head, so no eqs. 4-5, and no perceptual term either."""
    c.network.flow_head = False
    c.loss.flow = c.loss.consistency = c.loss.perceptual = 0.0


def _dip(c: InpaintConfig) -> None:
    c.network.kind = "2d"
    _image_only(c)


def _dip_vid(c: InpaintConfig) -> None:
    c.network.kind = "2d"
    c.train.intervals = (1,)
    _image_only(c)


def _dip_vid_3dcn(c: InpaintConfig) -> None:
    c.network.kind = "3d"
    c.train.intervals = (1,)
    _image_only(c)


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
    c.propagation.enabled = False  # the paper's method alone; propagation is ours
    # the authors' code where the paper's text leaves a choice open (README, "The method, and where we had to
    # choose"): their decoder, padding and initialisation, VGG16 fed BGR in [0, 1], a 3D temporal extent of 1
    c.network.decoder, c.network.temporal_kernel = "authors", 1
    c.loss.vgg_input = "bgr01"
    c.shot.window, c.shot.overlap = 100, 10  # about the longest DAVIS clip: what the paper trained one model on


FLOW_REMEDY: dict[str, Any] = {"network.flow_init": "zero", "loss.consistency_warmup": 300,
                               "loss.consistency_from": "known"}
"""The `fast` preset's flow-term settings. At a few thousand steps the paper's eq. 5 costs hole PSNR
(docs/evaluation.md, "Findings"): start the flow head at no motion, let it learn from the known flow for 300
steps before its flows warp frames, and compare only against known pixels of frame i. The defaults are eq. 5 as
printed."""


def _fast(c: InpaintConfig) -> None:
    """A CPU user's default: a few minutes on 2 cores for a 30-60 frame clip at 192 wide.

    A step count bounds it, lowered once early where the whole run would take over 3 minutes (train.fit_seconds)
    and saved with the result, so the saved config gives the same frames on any machine of the same kind
    (precision 'auto' trains in bf16 where the CPU has bf16 matrix units, in TF32 on a CUDA GPU, in fp32 elsewhere)."""
    c.resolution.work_width = 192
    c.resolution.crop_to_hole = True
    c.propagation.train_below = 0.15  # see PropagationConfig.train_below
    c.propagation.self_check = True
    c.propagation.local_errors = True
    c.propagation.calibrate_completed = True  # see PropagationConfig.calibrate_completed
    c.propagation.exposure = True
    c.propagation.diffusion = "membrane+biharmonic"  # see PropagationConfig.diffusion
    c.propagation.steady_radius = 5  # the unseen fill averaged over 11 frames along the flow (docs/evaluation.md)
    c.propagation.steady_still_radius = 20  # and over up to 41 where the track stands still
    c.flow.dis_preset = "medium"
    c.train.batch_size, c.train.updates_per_batch, c.train.epochs = 5, 10, 2.0
    c.train.max_steps = 1000  # 1500 gave the same fill on ten composed clips, in 1.5x the time (docs/evaluation.md)
    c.train.max_seconds = 0.0
    c.train.fit_seconds = 180.0  # the whole run; fewer steps where it would take longer, decided once and saved
    c.train.fit_min_steps = 1000  # all of max_steps, or no model (TrainConfig.fit_min_steps)
    c.train.dip_iterations = 300
    c.train.ema_decay = 0.99  # generate from the average of about the last 100 steps (docs/evaluation.md)
    c.train.precision = "auto"  # bf16 + channels-last where the CPU has bf16 matrix units: half the step time
    # A DAVIS-length clip (50-100 frames) is one window: on three composed clips of 66-70 frames, one window
    # scored -0.08 to +0.17 dB against two of 60 in 0.6-0.9x the time (docs/evaluation.md, "One window for
    # a DAVIS clip"). A plate over 1080p gets fewer frames: 500 Mpx is the 60 frames of 4K this preset held.
    c.shot.window, c.shot.overlap, c.shot.window_megapixels = 100, 8, 500.0
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


STEPS_ALONE: dict[str, float] = {"train.max_seconds": 0.0, "train.fit_seconds": 0.0}
"""The overrides under which the step count alone ends training: no wall-clock cap and no step count fitted to the
machine. For runs that ask for a number of steps (eval rows, benchmarks, the demo's --steps), so that they compare
and repeat the same training on any machine."""


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
