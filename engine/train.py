"""Training by the paper's curriculum (section 3.2, appendix C), with checkpoints and roll-back on divergence.

A run is a fixed list of steps decided by the seed alone (the batch schedule), so a run interrupted at step k and
resumed from its checkpoint takes exactly the steps an uninterrupted one would have taken.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import averaging
from .config import InpaintConfig
from .devices import resolved_precision
from vinpaint.errors import (CheckpointAhead, DamagedWorkFile, InputError, TrainingCancelled, device_fault,
                             out_of_memory)
from .flow import KnownFlow
from .losses import consistency_loss, flow_loss, known_mask_for_features, perceptual_loss, reconstruction_loss
from .config import FLOW_OFFSETS
from .result import HISTORY_TERMS, ProgressEvent
from .network import Generator
from .perceptual import TAPS, VGG16Features
from .windows import centred_windows
from vinpaint.files import atomic_write



@dataclass
class Batch:
    """Frames start, start+t, ..., start+(N-1)t; `direction` +1/-1 picks the forward or backward flow (0: none)."""

    start: int
    interval: int
    direction: int

    def indices(self, n: int) -> list[int]:
        return [self.start + k * self.interval for k in range(n)]


@dataclass
class TrainingData:
    """Working-resolution tensors: frames [T,3,h,w] in [0,1], known [T,1,h,w] (1 = known), noise [T,1,h,w]."""

    frames: torch.Tensor
    known: torch.Tensor
    noise: torch.Tensor
    flow: KnownFlow | None = None


def perceptual_term(vgg: VGG16Features, image: torch.Tensor, target: torch.Tensor,
                    known: torch.Tensor) -> torch.Tensor:
    """Eq. 6 for a batch: VGG16 features of generated and target frames, compared only where unseen by the hole."""
    masks = [known_mask_for_features(known, TAPS[k][1], TAPS[k][2]) for k in sorted(TAPS)]
    with torch.no_grad():
        features_target = vgg(target)
    return perceptual_loss(vgg(image), features_target, masks)


def make_noise(t_count: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Appendix B: one channel per frame, uniform in [0, 0.1], drawn once from the seed and then fixed."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.rand((t_count, 1, h, w), generator=gen) * 0.1


def batch_schedule(t_count: int, config: InpaintConfig) -> list[Batch]:
    """Every batch of the run in order; see TrainConfig for what an epoch is."""
    n, tc = config.train.batch_size, config.train
    intervals = tc.intervals if config.uses_flow else (1,)
    windows = [(s, t) for t in intervals for s in range(t_count - (n - 1) * t)]
    if not windows:
        raise InputError(f"the clip has {t_count} frames, fewer than one batch of {n} needs")
    whole, part = int(math.floor(tc.epochs)), tc.epochs - math.floor(tc.epochs)
    batches: list[Batch] = []
    for epoch in range(whole + (1 if part > 0 else 0)):
        rng = np.random.default_rng([int(tc.seed), epoch])
        order = rng.permutation(len(windows))
        dirs = rng.choice([1, -1], size=len(windows)) if config.uses_flow else np.zeros(len(windows), int)
        count = len(windows) if epoch < whole else max(1, int(round(part * len(windows))))
        batches += [Batch(windows[o][0], windows[o][1], int(d)) for o, d in zip(order[:count], dirs[:count])]
    return batches


FIT_WARMUP, FIT_TIMED = 3, 10
"""train.fit_seconds times steps FIT_WARMUP .. FIT_WARMUP + FIT_TIMED of a run (the first build kernels and
caches) and fits the step count at the end of them."""


class _Run:
    """Bookkeeping shared by both trainers: clock, budget, progress, checkpoints, cancellation."""

    def __init__(self, config: InpaintConfig, workdir: Path | None, total: int,
                 progress: Callable[[ProgressEvent], None] | None, should_stop: Callable[[], bool] | None):
        self.config, self.workdir, self.total = config, workdir, total
        self.progress, self.should_stop = progress, should_stop
        self.elapsed_before = 0.0
        self.started = time.monotonic()
        self.last_checkpoint = time.monotonic()
        self.history: list[list[float]] = []  # [step, *HISTORY_TERMS]
        self.rollbacks = 0
        self.max_steps = config.train.max_steps
        """train.max_steps, or the count train.fit_seconds fitted it to (kept in the checkpoint)."""
        self.fitted = config.train.fit_seconds <= 0  # nothing to fit, or fitted already
        self.fit_line: str | None = None
        self.too_few = False
        """train.fit_min_steps: the fit left fewer steps than that, so training stopped where it was timed and the
        caller fills without a model; never kept in a checkpoint, so a later run with other settings times again."""
        self.outside_s = 0.0
        """Seconds of the run spent outside training, counted against train.fit_seconds: the stages before it
        (measured) and after it (estimated); set by the caller before training."""

    @property
    def planned(self) -> int:
        """Steps this run will take: the schedule, cut short by max_steps (as fitted)."""
        m = self.max_steps
        return min(self.total, m) if m > 0 else self.total

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    @property
    def checkpoint_path(self) -> Path | None:
        return self.workdir / "checkpoint.pt" if self.workdir else None

    def load(self) -> dict | None:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return None
        state = load_checkpoint(path)
        try:
            elapsed, history = float(state["elapsed"]), [[float(v) for v in row] for row in state["history"]]
            rollbacks = int(state.get("rollbacks", 0))
            if not all(history):
                raise ValueError("an empty loss history row")
        except (KeyError, TypeError, ValueError) as exc:
            raise DamagedWorkFile(f"the checkpoint {path} is not a vinpaint checkpoint ({str(exc)[:80]}); delete it "
                                  "or use --restart", path) from None
        self.elapsed_before, self.history, self.rollbacks = elapsed, history, rollbacks
        if not self.fitted and "fitted_steps" in state:  # a resumed run keeps the count it was fitted to
            self.max_steps, self.fitted = int(state["fitted_steps"]), True
        self.started = time.monotonic()
        trained = int(self.history[-1][0]) if self.history else 0  # the last step that trained
        if trained > self.planned:
            raise CheckpointAhead(f"the checkpoint in {self.workdir} has trained {trained} steps, more than the "
                             f"{self.planned} these settings plan (train.max_steps); its model would not match the "
                             f"saved config: raise train.max_steps to at least {trained}, or --restart")
        return state

    def save(self, state: dict) -> None:
        if self.checkpoint_path is None:
            return
        state = {**state, "elapsed": self.elapsed, "history": self.history, "rollbacks": self.rollbacks}
        if self.config.train.fit_seconds > 0 and self.fitted and not self.too_few:
            state["fitted_steps"] = self.max_steps
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f))
        self.last_checkpoint = time.monotonic()

    def due(self) -> bool:
        return self.workdir is not None and time.monotonic() - self.last_checkpoint >= self.config.train.checkpoint_every_s

    def out_of_budget(self, step: int) -> bool:
        tc = self.config.train
        return (self.max_steps > 0 and step >= self.max_steps) or \
            (tc.max_seconds > 0 and self.elapsed >= tc.max_seconds)

    def fit(self, step: int, seconds_per_step: float) -> None:
        """train.fit_seconds: the steps left that fit in the seconds left, at the rate just timed; lowers the step
        count once (never raises it) and says so."""
        tc, planned = self.config.train, self.planned
        left = tc.fit_seconds - self.outside_s - self.elapsed
        fitted = step + max(0, int(left / max(seconds_per_step, 1e-9)))
        self.fitted = True
        if fitted >= planned:
            return
        outside = f"{self.outside_s:.0f} s outside training (flow, propagation, composition), " \
            if self.outside_s >= 1 else ""
        head = f"train.fit_seconds {tc.fit_seconds:g}: {outside}{seconds_per_step:.2f} s a training step on this machine"
        if fitted < tc.fit_min_steps:
            self.max_steps, self.too_few = step, True
            self.fit_line = (f"{head}, so only {fitted} of {planned} steps would fit, fewer than train.fit_min_steps "
                             f"{tc.fit_min_steps}: no model is trained, what no frame sees is filled from the pixels "
                             "around it (train.fit_min_steps=0 trains anyway)")
            return
        self.max_steps = fitted
        self.fit_line = (f"{head}, so {fitted} steps of {planned} (the saved config has "
                         f"train.max_steps={fitted} and train.fit_seconds=0, which repeat this run on any machine)")

    def stop_requested(self) -> bool:
        return bool(self.should_stop and self.should_stop())

    def report(self, step: int, losses: dict[str, float]) -> None:
        self.history.append([float(step)] + [losses.get(k, 0.0) for k in HISTORY_TERMS])
        if self.progress is None:
            return
        total = self.planned
        tc = self.config.train
        eta = None
        if step > 0:
            eta = max(total - step, 0) * self.elapsed / step
            if tc.max_seconds > 0:
                eta = min(eta, max(tc.max_seconds - self.elapsed, 0.0))
        self.progress(ProgressEvent("train", step, total, self.elapsed, eta, losses))


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by _Run.save, read with weights_only=True: plain tensors, numbers, strings and lists,
    never code. Anything else (a planted pickle, a damaged file) is InputError with one sentence."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ... for these
        kind = "holds objects other than tensors and numbers (loading it could run code)" \
            if "weights_only" in str(exc) or "Unsupported global" in str(exc) else "is damaged"
        raise DamagedWorkFile(f"the checkpoint {path} {kind}; it was not loaded. Delete it or use --restart",
                              path) from None
    if not isinstance(state, dict) or "elapsed" not in state or "history" not in state:
        raise DamagedWorkFile(f"the checkpoint {path} is not a vinpaint checkpoint; delete it or use --restart", path)
    return state


@contextlib.contextmanager
def _fitting(path: Path | None):
    """A checkpoint's model and optimizer loaded into this run's: one that does not fit (a hand-copied checkpoint
    of another network, a key missing) is InputError naming it, not a traceback. Its run is keyed by the
    settings, so only a file put there by hand gets here."""
    try:
        yield
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        if out_of_memory(exc) or device_fault(exc):  # the device, not the checkpoint: the checkpoint kept
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DamagedWorkFile(f"the checkpoint {path} does not fit this run's model ({first[:120]}); delete it or "
                              "use --restart", path) from None


OPTIMIZER_FLAGS = ("fused", "capturable", "foreach", "differentiable")
"""Settings of an optimizer's param groups that choose its implementation, not its arithmetic's inputs."""


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """optimizer.load_state_dict(saved), keeping the implementation the optimizer was made with.

    load_state_dict takes every param-group setting from the saved state, these flags included, so a checkpoint
    written on a CPU (no fused, no capturable) and resumed on CUDA would train unfused, and its graph capture
    would fail (Adam must be capturable inside a CUDA graph). The flags are the ones built here; the saved state
    is loaded as if written with them (Adam's step count goes to the parameters' device when fused or
    capturable)."""
    built = optimizer.param_groups
    groups = saved.get("param_groups", [])
    if len(groups) == len(built):
        groups = [{**group, **{k: mine[k] for k in OPTIMIZER_FLAGS if k in mine}}
                  for group, mine in zip(groups, built)]
        saved = {**saved, "param_groups": groups}
    optimizer.load_state_dict(saved)


class _State:
    """In-place snapshots of a model and its Adam state: restoring copies into the same tensors, so a captured
    CUDA graph (which holds their addresses) stays valid across roll-backs."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.tensors = list(model.state_dict().values())  # parameters and BatchNorm buffers, sharing storage

    def snapshot(self) -> dict:
        opt = {}
        for p in self.tensors_params():
            st = self.optimizer.state.get(p, {})
            opt[p] = {k: v.detach().clone() for k, v in st.items() if torch.is_tensor(v)}
        return {"model": [t.detach().clone() for t in self.tensors], "optimizer": opt}

    def tensors_params(self):
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    @torch.no_grad()
    def restore(self, snap: dict) -> None:
        for t, saved in zip(self.tensors, snap["model"]):
            t.copy_(saved)
        for p, saved in snap["optimizer"].items():
            st = self.optimizer.state.get(p)
            if not st:
                continue
            for k, v in st.items():
                if torch.is_tensor(v):
                    # a snapshot from before the first step holds no Adam state: zero moments and step 0 are
                    # what Adam starts from, so zeroing in place equals starting afresh
                    v.copy_(saved[k]) if k in saved else v.zero_()


@contextlib.contextmanager
def device_settings(tc, device: torch.device):
    """The process-wide switches a run wants (determinism, TF32), set for the run and handed back afterwards."""
    cudnn = torch.backends.cudnn
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             cudnn.deterministic, cudnn.benchmark)
    tf32 = _tf32()
    try:
        if device.type == "cuda":
            # "auto" as the trainer resolves it (api.inpaint resolves it first; a trainer built directly does not)
            _set_tf32(resolved_precision(tc.precision, device.type)[0] == "tf32")
            cudnn.deterministic, cudnn.benchmark = tc.deterministic, not tc.deterministic
            if tc.deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                # warn_only: an op without a deterministic kernel warns instead of failing a user's run; the
                # determinism tests on CUDA (bench/gpu_check.py) are what proves the step is deterministic
                torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        cudnn.deterministic, cudnn.benchmark = saved[2:]
        if tf32 is not None:
            _set_tf32(*tf32)


def _tf32() -> tuple[bool, bool] | None:
    """cuDNN's and cuBLAS's TF32 switches; None where the process set them through torch's newer
    `fp32_precision` settings, whose mix with these switches torch (2.9+) refuses to read."""
    try:
        return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    except RuntimeError:
        return None


def _set_tf32(cudnn_on: bool, matmul_on: bool | None = None) -> None:
    """Both TF32 switches (matmul's as cuDNN's unless given); left as they are where torch refuses (_tf32)."""
    try:
        torch.backends.cudnn.allow_tf32 = cudnn_on
        torch.backends.cuda.matmul.allow_tf32 = cudnn_on if matmul_on is None else matmul_on
    except RuntimeError:
        pass


class _Resident:
    """Everything a training step reads, moved to the device once at working resolution: frames, known masks,
    noise, and for the flow variant the known flow in the flow head's units, its loss weight O*M^f*exists, the
    reliable-flow mask and the per-offset scales. Steps gather from these with index tensors, no host copies."""

    def __init__(self, data: TrainingData, device: torch.device):
        self.frames = data.frames.to(device)
        self.known = data.known.to(device)
        self.noise = data.noise.to(device)
        self.t_count = data.frames.shape[0]
        kf = data.flow
        if kf is not None:
            t, k = kf.flow.shape[:2]
            scale = torch.from_numpy(np.asarray(kf.scale, np.float32))
            self.scale = scale.to(device)
            flow_norm = torch.from_numpy(kf.flow) / scale.view(1, k, 1, 1, 1)
            exists = torch.from_numpy(kf.exists.astype(np.float32)).view(t, k, 1, 1, 1)
            weight = torch.from_numpy(kf.occlusion_valid) * torch.from_numpy(kf.reliable) * exists
            self.flow_norm = flow_norm.to(device).flatten(0, 1)                   # [T*K,2,h,w]
            self.flow_weight = weight.to(device).flatten(0, 1)                    # [T*K,1,h,w]
            self.reliable = torch.from_numpy(kf.reliable).to(device).flatten(0, 1)  # [T*K,1,h,w]


def _group_tables(groups: list[list[Batch]], n: int, uses_flow: bool, scale: np.ndarray | None,
                  device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Per group of batches (one optimizer step), its index tensors on the device. With G batches of N frames:
    frames [G*N] (frame numbers); for the flow terms also known [G*N] (frame*K + offset, into the flow tables),
    pred [G*N] (row of the generated flow map), a, b [G*(N-1)] (rows of frames i and j of eq. 5), known_a [G*(N-1)]
    and scale_a [G*(N-1)] (the pixel scale of each compared flow)."""
    k = len(FLOW_OFFSETS)
    tables = []
    for group in groups:
        rows: dict[str, list] = {"frames": [], "known": [], "pred": [], "a": [], "b": [], "known_a": [],
                                 "scale_a": []}
        for g, batch in enumerate(group):
            idx = batch.indices(n)
            rows["frames"] += idx
            if uses_flow and batch.direction != 0:
                ki = FLOW_OFFSETS.index(batch.direction * batch.interval)
                rows["known"] += [i * k + ki for i in idx]
                rows["pred"] += [(g * n + j) * k + ki for j in range(n)]
                a = list(range(n - 1)) if batch.direction > 0 else list(range(1, n))
                rows["a"] += [g * n + j for j in a]
                rows["b"] += [g * n + j + batch.direction for j in a]
                rows["known_a"] += [idx[j] * k + ki for j in a]
                rows["scale_a"] += [float(scale[ki])] * len(a)
        table = {"frames": torch.tensor(rows["frames"], dtype=torch.long, device=device)}
        if rows["known"]:
            for name in ("known", "pred", "a", "b", "known_a"):
                table[name] = torch.tensor(rows[name], dtype=torch.long, device=device)
            table["scale_a"] = torch.tensor(rows["scale_a"], dtype=torch.float32, device=device).view(-1, 1, 1, 1)
        tables.append(table)
    return tables


class _Tables:
    """The index tensors of each group, made on the device when the group's first step needs them (a schedule of
    many epochs holds tens of thousands of groups; making them all up front took most of a short run)."""

    def __init__(self, groups, n, uses_flow, scale, device):
        self.groups, self.args, self.made = groups, (n, uses_flow, scale, device), {}

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i not in self.made:
            if len(self.made) > 64:  # only the current group is ever used again
                self.made.clear()
            self.made[i] = _group_tables([self.groups[i]], *self.args)[0]
        return self.made[i]


class VideoTrainer:
    """DIP-Vid, DIP-Vid-3DCN and DIP-Vid-Flow: one network over the whole clip, batch after batch, M updates each.

    The data lives on the device from the start; a step is index tensors in, a vector of losses out, and the
    losses are read back every `train.readback_every` steps (and at the end of every batch), where the divergence
    check of C.1 runs over them in order: a step that diverged rolls the batch back exactly as if it had been
    caught at once (the steps taken after it are discarded with it)."""

    def __init__(self, config: InpaintConfig, data: TrainingData, vgg: VGG16Features | None, device: torch.device,
                 workdir: Path | None = None, progress=None, should_stop=None):
        self.config, self.data, self.vgg, self.device = config, data, vgg, torch.device(device)
        tc = config.train
        self.n = tc.batch_size
        self.schedule = batch_schedule(data.frames.shape[0], config)
        per_step = tc.batches_per_step
        self.groups = [self.schedule[i:i + per_step] for i in range(0, len(self.schedule), per_step)]
        self.total = len(self.groups) * tc.updates_per_batch
        self.run_state = _Run(config, workdir, self.total, progress, should_stop)
        self.notices: list[str] = []
        torch.manual_seed(tc.seed)
        self.model = Generator(config.network).to(self.device)
        precision, auto_channels_last = resolved_precision(tc.precision, self.device.type)
        self.channels_last = tc.channels_last or auto_channels_last
        if self.channels_last:
            fmt = torch.channels_last_3d if config.network.kind == "3d" else torch.channels_last
            self.model = self.model.to(memory_format=fmt)
        cuda = self.device.type == "cuda"
        self.graph_mode = tc.capture == "graph" and cuda
        opt_args = {"fused": True} if cuda else {}
        if self.graph_mode:
            opt_args["capturable"] = True
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.learning_rate, **opt_args)
        self.average = averaging.attach(self.model, self.optimizer, tc.ema_decay)  # in state_dict: before _State
        self.state = _State(self.model, self.optimizer)
        self.res = _Resident(data, self.device)
        self.flow_scale = self.res.scale if data.flow is not None else None
        self.readback_every = tc.readback_every or (20 if cuda else 1)
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        self.deterministic_warp = tc.deterministic and cuda
        self.terms = ["recon"] + (["perceptual"] if vgg is not None and config.loss.perceptual > 0 else []) + \
            (["flow", "consistency"] if config.uses_flow and data.flow is not None else [])
        self._tables = None
        self.on_check: Callable[[int], None] | None = None
        """Called every `check_every` steps while training (the self-check's scores, logged)."""
        self.check_every = 0
        self._loss_fn = self._loss_vector
        self._graph = None
        if tc.capture == "graph" and not cuda:
            self._notice("train.capture=graph needs CUDA; training eagerly")
        cpu_backend = os.environ.get("VINPAINT_CPU_COMPILE_BACKEND", "")
        if tc.capture == "compile" and not cuda and not cpu_backend:
            # reduce-overhead is CUDA graphs; on a CPU inductor takes minutes to build this network for every run
            self._notice("train.capture=compile pays only on CUDA; training eagerly")
        elif tc.capture == "compile":
            # each trainer's bound method is a new guard for the same code: a long shot's ninth window would pass
            # dynamo's recompile limit and train uncompiled without a word, and old graphs would keep old weights
            torch._dynamo.reset()
            try:
                self._loss_fn = torch.compile(self._loss_vector, mode="reduce-overhead", dynamic=False) if cuda \
                    else torch.compile(self._loss_vector, backend=cpu_backend, dynamic=False)
            except Exception as exc:  # noqa: BLE001 - no compiler, unsupported platform
                self._notice(f"train.capture=compile is not available here ({type(exc).__name__}); training eagerly")

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        if self.run_state.progress is not None:
            self.run_state.progress(ProgressEvent("setup", message=message))

    def tables(self) -> "_Tables":
        if self._tables is None:
            scale = self.data.flow.scale if self.data.flow is not None else None
            self._tables = _Tables(self.groups, self.n, self.config.uses_flow, scale, self.device)
        return self._tables

    # -- one step ------------------------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def _forward(self, noise: torch.Tensor, groups: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        """noise [G*N,1,h,w] -> image [G*N,3,h,w], flow [G*N,12,h,w] or None, in fp32."""
        if self.config.network.kind == "3d":
            x = noise.view(groups, -1, *noise.shape[1:]).transpose(1, 2)  # [G,1,N,h,w]
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            with self._autocast():
                image, flow = self.model(x)
            if groups == 1:  # a view, as before: the same memory order, so the same sums to the last bit
                image, flow = image[0].transpose(0, 1), (flow[0].transpose(0, 1) if flow is not None else None)
            else:
                image = image.transpose(1, 2).flatten(0, 1)
                flow = flow.transpose(1, 2).flatten(0, 1) if flow is not None else None
        else:
            if self.channels_last:
                noise = noise.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                image, flow = self.model(noise)
        if self.channels_last:  # the losses index rows: back to NCHW, where index_select is a plain copy
            image, flow = image.contiguous(), (flow.contiguous() if flow is not None else None)
        return image.float(), (flow.float() if flow is not None else None)

    def _loss_vector(self, table: dict[str, torch.Tensor], ramp) -> torch.Tensor:
        """The terms of eq. 2 for one group of batches -> [5]: total, recon, flow, consistency, perceptual."""
        lc, r, n = self.config.loss, self.res, self.n
        frames = table["frames"]
        groups = frames.shape[0] // n
        image, flow = self._forward(r.noise.index_select(0, frames), groups)
        target = r.frames.index_select(0, frames)
        known = r.known.index_select(0, frames)
        out = {"recon": reconstruction_loss(image, target, known)}
        if "perceptual" in self.terms:
            with self._autocast():
                out["perceptual"] = perceptual_term(self.vgg, image, target, known).float()
        if flow is not None and "known" in table:
            h, w = flow.shape[-2:]
            pred = flow.reshape(-1, 2, h, w).index_select(0, table["pred"])
            known_flow = r.flow_norm.index_select(0, table["known"])
            out["flow"] = flow_loss(pred, known_flow, r.flow_weight.index_select(0, table["known"]))
            flow_px = pred.index_select(0, table["a"]) * table["scale_a"]
            if not lc.consistency_moves_flow:
                flow_px = flow_px.detach()
            source = known.index_select(0, table["a"]) if lc.consistency_from == "known" else None
            out["consistency"] = consistency_loss(image.index_select(0, table["a"]),
                                                  image.index_select(0, table["b"]), flow_px,
                                                  r.reliable.index_select(0, table["known_a"]), source,
                                                  deterministic_warp=self.deterministic_warp)
        weights = {"recon": lc.reconstruction, "flow": lc.flow, "consistency": lc.consistency * ramp,
                   "perceptual": lc.perceptual}
        total = sum(weights[k] * v for k, v in out.items())
        zero = total.new_zeros(())
        return torch.stack([total] + [out.get(k, zero) for k in HISTORY_TERMS[1:]])

    def _ramp(self, step: int) -> float:
        lc = self.config.loss
        return 1.0 if step < 0 or lc.consistency_warmup <= 0 else min(1.0, (step + 1) / lc.consistency_warmup)

    def losses(self, batch: Batch, step: int = -1) -> dict[str, torch.Tensor]:
        """The terms of eq. 2 and their weighted sum ("total") for one batch at `step` (-1: after any warm-up)."""
        scale = self.data.flow.scale if self.data.flow is not None else None
        table = _group_tables([[batch]], self.n, self.config.uses_flow, scale, self.device)[0]
        vec = self._loss_vector(table, self._ramp(step))
        return {k: vec[i] for i, k in enumerate(HISTORY_TERMS) if k == "total" or k in self.terms}

    def _step(self, table: dict[str, torch.Tensor], ramp: float) -> torch.Tensor:
        """One optimizer step -> its [5] loss vector, replayed from the CUDA graph when capturing (graph_mode can
        turn off at the first capture, so this is decided per step)."""
        return self._graph_step(table, ramp) if self.graph_mode else self._eager_step(table, ramp)

    def _eager_step(self, table: dict[str, torch.Tensor], ramp: float) -> torch.Tensor:
        compiled = self._loss_fn is not self._loss_vector
        if compiled and self.device.type == "cuda":
            mark = getattr(torch.compiler, "cudagraph_mark_step_begin", None)  # torch >= 2.2
            if mark is not None:
                mark()
        self.optimizer.zero_grad(set_to_none=True)
        try:
            vec = self._loss_fn(table, torch.full((), ramp, device=self.device) if compiled else ramp)
            vec[0].backward()  # torch.compile builds the backward here, at the first call: it can fail here too
        except Exception as exc:  # noqa: BLE001 - torch.compile fails at its first call when it cannot build
            if not compiled or out_of_memory(exc):  # reported as memory, not retried
                raise
            self._notice(f"train.capture=compile failed here ({type(exc).__name__}); training eagerly")
            self._loss_fn = self._loss_vector
            self.optimizer.zero_grad(set_to_none=True)  # whatever a half-run backward left
            vec = self._loss_vector(table, ramp)
            vec[0].backward()
        self.optimizer.step()
        return vec.detach().clone()

    def _graph_step(self, table: dict[str, torch.Tensor], ramp: float) -> torch.Tensor:
        """One step replayed from a CUDA graph captured on the first call (for groups of the usual size)."""
        if self._graph is None:
            try:
                self._capture(table)
            except Exception as exc:  # noqa: BLE001 - capture can fail on a driver or op; eager still works
                if out_of_memory(exc):  # the captured graph's pool is still held: eager would run out too
                    raise
                self._notice(f"train.capture=graph failed ({type(exc).__name__}: {exc}); training eagerly")
                self.graph_mode = False
                torch.cuda.synchronize(self.device)
                return self._eager_step(table, ramp)
        static_table, static_ramp, static_vec = self._graph_io
        if table["frames"].shape != static_table["frames"].shape:
            return self._eager_step(table, ramp)  # a last, smaller group
        for name, tensor in table.items():
            static_table[name].copy_(tensor)
        static_ramp.fill_(ramp)
        with torch.cuda.device(self.device):  # launched on the device it was captured on, whichever is current
            self._graph.replay()
        return static_vec.clone()

    def _capture(self, table: dict[str, torch.Tensor]) -> None:
        """Capture one step into a CUDA graph. The warm-up steps and the capture itself train (or may have, when
        the capture fails part way), so the state from before them is put back whether the capture works or
        raises: a failed capture leaves the trainer as it was, and eager training goes on from there.

        Everything runs on the run's device made current (and the capture on a stream made on it): without that
        torch.cuda.graph captures on the current device, cuda:0, while a worker trains on e.g. cuda:1."""
        static_table = {k: v.clone() for k, v in table.items()}
        static_ramp = torch.zeros((), device=self.device)
        before = self.state.snapshot()

        def body() -> torch.Tensor:
            vec = self._loss_vector(static_table, static_ramp)
            vec[0].backward()
            self.optimizer.step()
            return vec.detach()

        try:
            with torch.cuda.device(self.device):
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    for _ in range(3):  # warm-up steps (allocator, cuDNN plans, Adam's state); undone below
                        self.optimizer.zero_grad(set_to_none=True)
                        body()
                torch.cuda.current_stream(self.device).wait_stream(side)
                self.optimizer.zero_grad(set_to_none=True)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=torch.cuda.Stream(self.device)):
                    static_vec = body()
        finally:
            self.state.restore(before)  # the warm-up and the capture trained: back to the state before them
        self._graph, self._graph_io = graph, (static_table, static_ramp, static_vec)

    def bench_steps(self, first: int, count: int) -> float:
        """Benchmarks only: `count` training steps from schedule step `first` (wrapping around), without the
        bookkeeping (no read-back, check, progress or checkpoint), then one sync. -> the last step's total loss."""
        m, tables = self.config.train.updates_per_batch, self.tables()
        self.model.train()
        with device_settings(self.config.train, self.device):
            for s in range(first, first + count):
                s %= self.total
                vec = self._step(tables[s // m], self._ramp(s))
            return float(vec[0])

    # -- the loop ------------------------------------------------------------------------------------------------
    def train(self) -> None:
        rs = self.run_state
        step = 0
        state = rs.load()
        if state is not None:
            with _fitting(rs.checkpoint_path):
                self.model.load_state_dict(state["model"])
                load_optimizer_state(self.optimizer, state["optimizer"])
                step = int(state["step"])
        self.model.train()
        with device_settings(self.config.train, self.device):
            step = self._loop(step)
        self._checkpoint(step)
        self.steps = step

    def _loop(self, step: int) -> int:
        rs, tc = self.run_state, self.config.train
        m = tc.updates_per_batch
        tables = self.tables()
        self._good = self.state.snapshot()
        self._start_loss: float | None = None
        self._pending: list[torch.Tensor] = []
        start, timer = step, None  # timer: (step, clock) where train.fit_seconds's timing began
        while True:
            if step >= self.total or rs.out_of_budget(step):
                step, rolled_back = self._read_back(step)
                if rolled_back:
                    continue
                return step
            if rs.stop_requested():
                step, _ = self._read_back(step)
                self._checkpoint(step)
                raise TrainingCancelled(f"training stopped at step {step} of {rs.planned}; checkpoint saved")
            if step % m == 0:
                self._good = self.state.snapshot()
                self._start_loss = None
            self._pending.append(self._step(tables[step // m], self._ramp(step)))
            step += 1
            due = rs.due()
            if step % m == 0 or len(self._pending) >= self.readback_every or due:
                step, rolled_back = self._read_back(step)
                if due and not rolled_back:
                    self._checkpoint(step)
            if self.on_check is not None and self.check_every and step % self.check_every == 0 \
                    and step < rs.planned:
                step, rolled_back = self._read_back(step)
                if not rolled_back:
                    self.on_check(step)
            if not rs.fitted:
                step, timer = self._time_for_fit(step, start, timer)

    def _time_for_fit(self, step: int, start: int, timer: tuple[int, float] | None
                      ) -> tuple[int, tuple[int, float] | None]:
        """train.fit_seconds: time FIT_TIMED steps after FIT_WARMUP (the first ones build kernels and caches), each
        end synchronised by a read-back, then fit the step count. -> (step, timer)."""
        if timer is None:
            if step - start < FIT_WARMUP:
                return step, None
            step, _ = self._read_back(step)
            return step, (step, time.monotonic())
        if step - timer[0] < FIT_TIMED:
            return step, timer
        step, rolled_back = self._read_back(step)
        if rolled_back:  # the timed steps were undone: time again
            return step, None
        self.run_state.fit(step, (time.monotonic() - timer[1]) / (step - timer[0]))
        if self.run_state.fit_line:
            self._notice(self.run_state.fit_line)
        return step, timer

    def _read_back(self, step: int) -> tuple[int, bool]:
        """Read the pending steps' losses (one device sync), report them, and apply C.1's divergence check to them
        in order. -> (the step to continue from, whether the batch was rolled back)."""
        if not self._pending:
            return step, False
        rs, tc, m = self.run_state, self.config.train, self.config.train.updates_per_batch
        rows = torch.stack(self._pending).cpu().tolist()
        first = step - len(rows)
        self._pending = []
        for i, row in enumerate(rows):
            taken, value = first + i, row[0]
            if self._start_loss is None and math.isfinite(value):
                self._start_loss = value
            if not math.isfinite(value) or (self._start_loss and value > tc.divergence_factor * self._start_loss):
                # C.1: DIP-style training can blow up; return to the state at the start of this batch, move on.
                self.state.restore(self._good)
                rs.rollbacks += 1
                return (taken // m + 1) * m, True
            losses = {k: row[j] for j, k in enumerate(HISTORY_TERMS) if k == "total" or k in self.terms}
            rs.report(taken + 1, losses)
        return step, False

    def _checkpoint(self, step: int) -> None:
        self.run_state.save({"kind": "video", "step": step, "model": self.model.state_dict(),
                             "optimizer": self.optimizer.state_dict()})

    def generate_midway(self) -> np.ndarray:
        """The frames generate() would give now, while training goes on. A forward in training mode updates
        BatchNorm's running statistics (which nothing here reads); they are put back, so a run that looks midway
        stays, bit for bit, the run that does not."""
        buffers = [b for name, b in self.model.named_buffers() if not name.startswith(averaging.NAME)]
        saved = [b.clone() for b in buffers]
        try:
            return self.generate()[0]
        finally:
            with torch.no_grad():
                for b, s in zip(buffers, saved):
                    b.copy_(s)

    @torch.no_grad()
    def generate(self) -> tuple[np.ndarray, np.ndarray | None]:
        """-> images [T,h,w,3] and flows [T,6,h,w,2] (pixels), each frame from the window of N consecutive frames
        centred on it (engine/windows.py), from the averaged weights when train.ema_decay is set.

        BatchNorm stays in batch-statistics mode, as during training, so a window looks like a training batch."""
        t_count = self.data.frames.shape[0]
        n = min(self.n, t_count)
        images = torch.zeros_like(self.data.frames)
        flows = None
        self.model.train()
        with device_settings(self.config.train, self.device), averaging.applied(self.average):
            for start, keep in centred_windows(t_count, n):
                image, flow = self._forward(self.res.noise[start:start + n])
                rows = [k - start for k in keep]
                images[keep] = image[rows].cpu()
                if flow is not None:
                    if flows is None:
                        flows = torch.zeros((t_count, len(FLOW_OFFSETS), 2) + images.shape[2:])
                    flows[keep] = flow[rows].cpu().view(len(keep), len(FLOW_OFFSETS), 2, *flow.shape[2:]) * \
                        self.flow_scale.cpu().view(1, -1, 1, 1, 1)
        out_flow = flows.permute(0, 1, 3, 4, 2).numpy() if flows is not None else None
        return images.permute(0, 2, 3, 1).numpy(), out_flow


class FrameTrainer:
    """DIP (C.1): a fresh network per frame, `dip_iterations` steps each, keeping the lowest-loss snapshot."""

    def __init__(self, config: InpaintConfig, data: TrainingData, vgg: VGG16Features | None, device: torch.device,
                 workdir: Path | None = None, progress=None, should_stop=None):
        self.config, self.data, self.vgg, self.device = config, data, vgg, device
        self.t_count = data.frames.shape[0]
        self.iters = config.train.dip_iterations
        self.total = self.t_count * self.iters
        self.run_state = _Run(config, workdir, self.total, progress, should_stop)
        self.images = torch.zeros_like(data.frames)
        self.res = _Resident(TrainingData(data.frames, data.known, data.noise), self.device)

    def _fresh(self, frame: int):
        torch.manual_seed(self.config.train.seed * 100003 + frame)
        model = Generator(self.config.network).to(self.device)
        fused = {"fused": True} if self.device.type == "cuda" else {}
        return model, torch.optim.Adam(model.parameters(), lr=self.config.train.learning_rate, **fused)

    def _frame_loss(self, model, frame: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lc = self.config.loss
        image, _ = model(self.res.noise[frame:frame + 1])
        target = self.res.frames[frame:frame + 1]
        known = self.res.known[frame:frame + 1]
        out = {"recon": reconstruction_loss(image, target, known)}
        if self.vgg is not None and lc.perceptual > 0:
            out["perceptual"] = perceptual_term(self.vgg, image, target, known)
        out["total"] = lc.reconstruction * out["recon"] + lc.perceptual * out.get("perceptual", 0.0)
        return image, out

    def train(self) -> None:
        with device_settings(self.config.train, torch.device(self.device)):
            self._train()

    def _train(self) -> None:
        rs, tc = self.run_state, self.config.train
        frame, it, best = 0, 0, math.inf
        best_image = None
        model, optimizer = self._fresh(0)
        state = rs.load()
        if state is not None:
            with _fitting(rs.checkpoint_path):
                frame, it, best = int(state["frame"]), int(state["iteration"]), float(state["best"])
                self.images = state["images"]
                best_image = state["best_image"]
            if frame < self.t_count:
                model, optimizer = self._fresh(frame)
                with _fitting(rs.checkpoint_path):
                    model.load_state_dict(state["model"])
                    load_optimizer_state(optimizer, state["optimizer"])
        per_frame_budget = tc.max_seconds / self.t_count if tc.max_seconds > 0 else 0.0
        while frame < self.t_count:
            step = frame * self.iters + it
            if rs.stop_requested():
                self._checkpoint(frame, it, best, best_image, model, optimizer)
                raise TrainingCancelled(f"training stopped at step {step} of {rs.planned}; checkpoint saved")
            over_time = per_frame_budget > 0 and rs.elapsed >= per_frame_budget * (frame + 1)
            over_steps = tc.max_steps > 0 and step >= tc.max_steps
            if over_steps and it < self.iters:
                # The step budget ends inside this frame: the checkpoint keeps the frame where it stands, so a
                # larger budget trains on from here as a fresh run with it would; the output fills the rest.
                self._checkpoint(frame, it, best, best_image, model, optimizer)
                self._fill_unfinished(frame, best_image, model)
                break
            if it >= self.iters or over_time:
                self.images[frame] = self._kept(model, frame, best_image)
                frame, it, best, best_image = frame + 1, 0, math.inf, None
                if frame < self.t_count:
                    model, optimizer = self._fresh(frame)
                continue
            model.train()
            image, losses = self._frame_loss(model, frame)
            value = float(losses["total"].detach())
            if not math.isfinite(value):
                rs.rollbacks += 1
                it = self.iters  # C.1: a diverged frame keeps its best snapshot so far
                continue
            # C.1 saves every 100 iterations of 5000, the last included; a shorter run keeps its last one too
            snapshot = (it + 1) % tc.dip_snapshot_every == 0 or it + 1 == self.iters
            if snapshot and value < best:
                best, best_image = value, image.detach().cpu()
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            it += 1
            rs.report(step + 1, {k: float(v.detach()) for k, v in losses.items()})
            if rs.due():
                self._checkpoint(frame, it, best, best_image, model, optimizer)
        else:
            self._checkpoint(frame, it, best, best_image, None, None)
        self.steps = min(self.total, tc.max_steps) if tc.max_steps > 0 else self.total

    @torch.no_grad()
    def _kept(self, model, frame: int, best_image) -> torch.Tensor:
        """A frame's output: its best snapshot, or what its network makes now when the budget ran out before the
        first snapshot."""
        if best_image is None:
            best_image = model(self.res.noise[frame:frame + 1])[0].detach().cpu()
        return best_image[0]

    def _fill_unfinished(self, frame: int, best_image, model) -> None:
        """The output of frames the step budget did not finish: this frame's (_kept), and for each later one what a
        fresh network makes of its noise."""
        self.images[frame] = self._kept(model, frame, best_image)
        for t in range(frame + 1, self.t_count):
            self.images[t] = self._kept(self._fresh(t)[0], t, None)

    def _checkpoint(self, frame, it, best, best_image, model, optimizer) -> None:
        self.run_state.save({"kind": "frame", "frame": frame, "iteration": it, "best": best,
                             "best_image": best_image, "images": self.images,
                             "model": model.state_dict() if model is not None else None,
                             "optimizer": optimizer.state_dict() if optimizer is not None else None})

    def generate(self) -> tuple[np.ndarray, None]:
        return self.images.permute(0, 2, 3, 1).numpy(), None
