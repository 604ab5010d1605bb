"""Typed configuration of an evaluation run: which clips, which methods, which schedules, which metrics.

A *profile* (tiny / cpu / gpu) fills every field with sizes that fit a machine; flags override single fields.
The resolved config is written beside the results, so a table can always be traced to what produced it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from vinpaint.engine.config import FLOW_REMEDY, InpaintConfig, make_config
from vinpaint.errors import InputError
from vinpaint.files import first_folder_clash
from vinpaint.evaluation.compose import ComposeConfig
from vinpaint.evaluation.metrics import ConsistencyConfig

ENGINE_VARIANTS = ("dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow")
BASELINE_METHODS = ("telea", "ns", "prop-telea")


def _flow_row(label: str, settings: dict[str, Any]) -> str:
    return f"{label}=dip-vid-flow:" + ";".join(f"{key}={value}" for key, value in settings.items())


PAPER_FLOW_ROW = _flow_row("dip-vid-flow-paper",
                           {key: InpaintConfig().get(key) for key in FLOW_REMEDY})
"""DIP-Vid-Flow with eq. 5 as printed (the engine's defaults), beside the `fast` preset's remedy."""
REMEDY_FLOW_ROW = _flow_row("dip-vid-flow-remedy", FLOW_REMEDY)
"""The `fast` preset's flow-term settings on the paper's schedule: does the remedy still matter late?"""
PROPAGATION_ROW = "dip-vid-flow+propagation=dip-vid-flow:propagation.enabled=true"
"""DIP-Vid-Flow with flow-guided propagation of real pixels (engine/propagate.py): the product's default."""

DEFAULT_ENGINE_ROW = ("default-engine=dip-vid-flow:propagation.enabled=true;"
                      "resolution.crop_to_hole=true;propagation.self_check=true")
"""The product as a user runs it with the profile's preset: propagation, then the model (on the crop around what
is left) only for what no frame sees; beside prop-telea (the same propagation, Telea for the rest, no training)."""

PAPER_ORDER = ("dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow")
"""Table 1's ordering, worst to best."""

MAX_BUDGET_S = 7 * 24 * 3600.0
"""Longest budget, a week: a budget also names its run's folder (1e308 made a name too long, inf none at all)."""


MAX_THREADS = 4096
"""torch CPU threads at most: a machine's cores, with room (10**11 overflowed inside torch)."""

@dataclass(frozen=True)
class MethodSpec:
    """A row of the table: an engine variant with optional dotted overrides, or an OpenCV baseline."""

    label: str
    kind: str
    """'engine' or 'baseline'."""
    variant: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def parse(text: str) -> "MethodSpec":
        """'dip-vid', 'telea', or 'LABEL=VARIANT:key=value;key=value' (values in JSON, e.g. train.intervals=[1])."""
        label, _, rest = text.partition("=") if "=" in text.split(":", 1)[0] else (text, "", text)
        variant, _, opts = rest.partition(":")
        variant = variant.strip()
        label = label.strip() or variant
        if variant in BASELINE_METHODS:
            if opts:
                raise InputError(f"the baseline {variant} takes no overrides.")
            return MethodSpec(label, "baseline", variant)
        if variant not in ENGINE_VARIANTS:
            raise InputError(f"unknown method {variant!r}; choose from "
                             f"{', '.join(ENGINE_VARIANTS + BASELINE_METHODS)}.")
        overrides = []
        for item in filter(None, (o.strip() for o in opts.split(";"))):
            key, eq, value = item.partition("=")
            if not eq:
                raise InputError(f"override {item!r} of method {label} is not key=value.")
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            overrides.append((key.strip(), tuple(parsed) if isinstance(parsed, list) else parsed))
        return MethodSpec(label, "engine", variant, tuple(overrides))


def split_methods(text: str) -> list[str]:
    """A comma-separated method list; commas inside [...] (JSON lists such as train.intervals=[1,3]) do not split."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [x.strip() for x in parts + [cur] if x.strip()]


def folder_name(label: str) -> str:
    """The folder a method's runs go in (runs/<clip>/<folder>) and its pictures are named by."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)[:80]


def check_label_folders(labels: list[str]) -> None:
    """Each label names a folder of its own. Before, `a b` and `a_b` both ran in runs/<clip>/a_b, each moving the
    other's runs aside, and the table gave one's numbers to both; `..` ran in runs/ itself."""
    for label in labels:
        folder = folder_name(label)
        if folder in ("", ".", ".."):
            raise InputError(f"the method label {label!r} names no folder of its own (its runs would go in "
                             f"runs/<clip>/{folder}); give it a label with a letter or digit.")
    clash = first_folder_clash(labels, folder_name)
    if clash is not None:
        other, label = clash
        folder = folder_name(label)
        why = ("they differ only in case, and a case-blind disk keeps one" if folder_name(other) != folder else
               "characters other than letters, digits, '-', '_' and '.' become '_', and a label is cut at 80")
        raise InputError(f"the method labels {other!r} and {label!r} would share one folder of runs "
                         f"(runs/<clip>/{folder}: {why}); give them labels that differ there.")


@dataclass
class EvalConfig:
    """Everything that decides an evaluation's numbers."""

    profile: str = "cpu"
    """Named defaults: 'tiny' (tests, seconds), 'cpu' (2 cores, under 30 minutes), 'gpu' (paper size)."""
    preset: str = "fast"
    """Engine preset giving each method its own schedule (steps); see engine/config.py."""
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    methods: list[str] = field(default_factory=lambda: list(ENGINE_VARIANTS + BASELINE_METHODS))
    own_schedule: bool = True
    """Evaluate each method at the end of its own schedule (the preset's epochs and updates per batch)."""
    budgets: list[float] = field(default_factory=list)
    """Equal budgets in seconds: every method is stopped there and evaluated (one training run, snapshots)."""
    clock: str = "auto"
    """Budget clock: 'cpu' = process CPU seconds / torch threads (fair when other jobs share the cores), 'wall',
    or 'auto': 'cpu' when the runs train on the CPU, 'wall' on a GPU (whose work the CPU clock does not see)."""
    device: str = ""
    """Where the engine methods train: 'cpu', 'cuda', 'cuda:N' ('': the first GPU, else the CPU)."""
    dip_budgets: bool = True
    """Also run DIP at each budget (a fresh run per budget: its per-frame schedule cannot be resumed longer)."""
    real_clips: list[str] = field(default_factory=list)
    """Masked clips with no ground truth (e.g. tennis): consistency metric and pictures only."""
    real_frames: int = 22
    """Frames taken from the start of each real clip."""
    real_methods: list[str] = field(default_factory=list)
    """Labels of the methods run on the real clips, a filter on `methods` (empty: every method)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Dotted engine overrides for every engine method (e.g. {"loss.vgg_weights": "random"})."""
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    baseline_radius: int = 5
    """cv2.inpaint neighbourhood radius in pixels."""
    inception: str = ""
    """TorchScript Inception file for FID ('' looks in $VINPAINT_INCEPTION and the cache; none: FID skipped)."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    pictures: bool = True
    seed: int = 0
    """Engine seed (noise, initialisation, batch order)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, default=list)

    def method_specs(self) -> list[MethodSpec]:
        specs = [MethodSpec.parse(m) for m in self.methods]
        labels = [s.label for s in specs]
        twice = [label for i, label in enumerate(labels) if label in labels[:i]]
        if twice:
            raise InputError(f"two methods share the label {twice[0]!r}; name them with LABEL=VARIANT:...")
        check_label_folders(labels)
        return specs

    def real_specs(self) -> list[MethodSpec]:
        """The methods run on the real clips."""
        specs = self.method_specs()
        return [s for s in specs if s.label in self.real_methods] if self.real_methods else specs

    def validate(self) -> None:
        """Refuse here what would fail (or never end) mid-run; a message names the flag that sets the field, so a
        config file gets the same checks."""
        self.compose.validate(smallest=64)
        for spec in self.method_specs():  # before the set is composed and config.json written, not at the first run
            if spec.kind == "engine":
                try:
                    make_config(self.preset, spec.variant, **{**self.overrides, **dict(spec.overrides)})
                except InputError as err:
                    where = "--set" if not spec.overrides else f"--set or method {spec.label}'s overrides"
                    raise InputError(f"{where}: {err}") from None
        if self.clock not in ("auto", "cpu", "wall"):
            raise InputError(f"clock must be 'auto', 'cpu' or 'wall', not {self.clock!r}.")
        for b in self.budgets:  # NaN passed `b <= 0` and then never stopped a run
            number = isinstance(b, (int, float)) and not isinstance(b, bool)
            if not number or not 0 < b <= MAX_BUDGET_S:
                raise InputError(f"--budgets must be seconds above 0 and at most {MAX_BUDGET_S:.0f} (7 days), "
                                 f"not {format(b, 'g') if number else repr(b)}.")
        seconds = [int(round(b)) for b in self.budgets]  # a budget's run folder is named by its whole seconds
        for i, b in enumerate(self.budgets):
            if seconds[i] in seconds[:i]:
                other = self.budgets[seconds.index(seconds[i])]
                raise InputError(f"--budgets {other:g} and {b:g} round to the same whole second, which "
                                 "names a budget's run folder; give budgets at least a second apart.")
        if self.real_frames < 2:
            raise InputError(f"--real-frames must be at least 2 (a real clip is scored frame to frame), not "
                             f"{self.real_frames}.")
        if not 0 <= self.threads <= MAX_THREADS:  # 10**11 was torch's OverflowError (a hunt, 2026-12-03)
            raise InputError(f"--threads must be from 0 (torch's choice) to {MAX_THREADS}, not {self.threads}.")
        if not self.own_schedule and not self.budgets:
            raise InputError("nothing to evaluate: no own schedule and no budgets.")
        if self.compose.width % 64 or self.compose.height % 64:
            raise InputError(f"the working size {self.compose.width}x{self.compose.height} must be multiples of 64 "
                             "(the engine's encoder halves it six times).")


    def resolved(self) -> EvalConfig:
        """The config as it will run, saved beside the results: the device checked and named, the clock chosen
        for it, and one torch thread per run where the CPU clock counts (the docs' fair-budget setting).

        Loads torch (for the default device), so it runs when the evaluation starts, not when arguments parse."""
        from vinpaint.engine.devices import check_device

        device = check_device(self.device or None)
        on_gpu = device != "cpu"
        if self.clock == "cpu" and on_gpu:
            raise InputError(f"the cpu clock counts this process's CPU seconds, not the work {device} does; use "
                             "--clock wall (or auto) to budget a GPU evaluation.")
        clock = ("wall" if on_gpu else "cpu") if self.clock == "auto" else self.clock
        threads = self.threads or (1 if clock == "cpu" else 0)
        return dataclasses.replace(self, device=device, clock=clock, threads=threads)


def profile(name: str) -> EvalConfig:
    """Defaults for a machine class; every field can still be overridden."""
    if name == "tiny":
        return EvalConfig(
            profile="tiny", preset="tiny",
            compose=ComposeConfig(count=1, frames=11, width=128, height=64),
            methods=["dip-vid", "dip-vid-flow", "telea"], budgets=[], real_clips=[],
            consistency=ConsistencyConfig(patch=32, radius=8, patches_per_frame=3), pictures=True)
    if name == "cpu":
        return EvalConfig(
            profile="cpu", preset="fast",
            compose=ComposeConfig(count=2, frames=21, width=128, height=64),
            methods=list(ENGINE_VARIANTS) + [PAPER_FLOW_ROW, PROPAGATION_ROW, DEFAULT_ENGINE_ROW] +
            list(BASELINE_METHODS),
            budgets=[60.0, 120.0], real_clips=["tennis"], real_frames=21,
            real_methods=list(ENGINE_VARIANTS) + list(BASELINE_METHODS), threads=1)
    if name == "gpu":
        return EvalConfig(
            profile="gpu", preset="paper",
            compose=ComposeConfig(count=10, frames=60, width=384, height=192),
            methods=list(ENGINE_VARIANTS) + [REMEDY_FLOW_ROW, PROPAGATION_ROW] + list(BASELINE_METHODS),
            budgets=[], real_clips=["tennis", "dogs-jump"], real_frames=60)
    raise InputError(f"unknown profile {name!r}; choose tiny, cpu or gpu.")


def from_dict(data: dict[str, Any]) -> EvalConfig:
    """Inverse of to_dict (for re-running from a written config.json)."""
    cfg = EvalConfig()
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    for key, value in data.items():
        if key not in names:
            raise InputError(f"unknown evaluation setting {key!r}.")
        if key == "compose":
            value = ComposeConfig(**value)
        elif key == "consistency":
            value = ConsistencyConfig(**value)
        setattr(cfg, key, value)
    return cfg
