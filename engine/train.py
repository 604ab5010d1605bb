"""Training by the paper's curriculum (section 3.2, appendix C), with checkpoints and roll-back on divergence.

A run is a fixed list of steps decided by the seed alone (the batch schedule), so a run interrupted at step k and
resumed from its checkpoint takes exactly the steps an uninterrupted one would have taken.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .config import InpaintConfig
from .errors import InputError, TrainingCancelled
from .flow import KnownFlow
from .losses import consistency_loss, flow_loss, known_mask_for_features, perceptual_loss, reconstruction_loss
from .network import FLOW_OFFSETS, Generator
from .perceptual import TAPS, VGG16Features
from vinpaint.storage import atomic_write

HISTORY_TERMS = ("total", "recon", "flow", "consistency", "perceptual")
"""Columns 1.. of the loss history (column 0 is the step); a term the settings switch off stays 0."""


@dataclass
class ProgressEvent:
    """What long work reports: the CLI draws a bar from it, the daemon forwards it over the wire."""

    phase: str
    step: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    message: str = ""


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

    @property
    def planned(self) -> int:
        """Steps this run will take: the schedule, cut short by max_steps."""
        m = self.config.train.max_steps
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
        self.elapsed_before = float(state["elapsed"])
        self.history = state["history"]
        self.rollbacks = int(state.get("rollbacks", 0))
        self.started = time.monotonic()
        trained = int(self.history[-1][0]) if self.history else 0  # the last step that trained
        if trained > self.planned:
            raise InputError(f"the checkpoint in {self.workdir} has trained {trained} steps, more than the "
                             f"{self.planned} these settings plan (train.max_steps); its model would not match the "
                             f"saved config: raise train.max_steps to at least {trained}, or --restart")
        return state

    def save(self, state: dict) -> None:
        if self.checkpoint_path is None:
            return
        state = {**state, "elapsed": self.elapsed, "history": self.history, "rollbacks": self.rollbacks}
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f))
        self.last_checkpoint = time.monotonic()

    def due(self) -> bool:
        return self.workdir is not None and time.monotonic() - self.last_checkpoint >= self.config.train.checkpoint_every_s

    def out_of_budget(self, step: int) -> bool:
        tc = self.config.train
        return (tc.max_steps > 0 and step >= tc.max_steps) or (tc.max_seconds > 0 and self.elapsed >= tc.max_seconds)

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
        raise InputError(f"the checkpoint {path} {kind}; it was not loaded. Delete it or use --restart") from None
    if not isinstance(state, dict) or "elapsed" not in state or "history" not in state:
        raise InputError(f"the checkpoint {path} is not a vinpaint checkpoint; delete it or use --restart")
    return state


def _snapshot(model, optimizer) -> dict:
    return {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}


class VideoTrainer:
    """DIP-Vid, DIP-Vid-3DCN and DIP-Vid-Flow: one network over the whole clip, batch after batch, M updates each."""

    def __init__(self, config: InpaintConfig, data: TrainingData, vgg: VGG16Features | None, device: torch.device,
                 workdir: Path | None = None, progress=None, should_stop=None):
        self.config, self.data, self.vgg, self.device = config, data, vgg, device
        self.n = config.train.batch_size
        self.schedule = batch_schedule(data.frames.shape[0], config)
        self.total = len(self.schedule) * config.train.updates_per_batch
        self.run_state = _Run(config, workdir, self.total, progress, should_stop)
        torch.manual_seed(config.train.seed)
        self.model = Generator(config.network).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.learning_rate)
        if data.flow is not None:
            self.flow_scale = torch.from_numpy(data.flow.scale).to(device)

    # -- one step ------------------------------------------------------------------------------------------------
    def _forward(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        noise = self.data.noise[idx].to(self.device)
        if self.config.network.kind == "3d":
            image, flow = self.model(noise.permute(1, 0, 2, 3)[None])
            image = image[0].permute(1, 0, 2, 3)
            flow = flow[0].permute(1, 0, 2, 3) if flow is not None else None
            return image, flow
        return self.model(noise)

    def losses(self, batch: Batch, step: int = -1) -> dict[str, torch.Tensor]:
        """The terms of eq. 2 and their weighted sum ("total") for one batch at `step` (-1: after any warm-up)."""
        lc, d = self.config.loss, self.data
        ramp = 1.0 if step < 0 or lc.consistency_warmup <= 0 else min(1.0, (step + 1) / lc.consistency_warmup)
        idx = batch.indices(self.n)
        image, flow = self._forward(idx)
        target = d.frames[idx].to(self.device)
        known = d.known[idx].to(self.device)
        out = {"recon": reconstruction_loss(image, target, known)}
        if self.vgg is not None and lc.perceptual > 0:
            out["perceptual"] = perceptual_term(self.vgg, image, target, known)
        if flow is not None and d.flow is not None and batch.direction != 0:
            offset = batch.direction * batch.interval
            ki = FLOW_OFFSETS.index(offset)
            kf = d.flow
            exists = torch.from_numpy(kf.exists[idx, ki].astype(np.float32)).to(self.device).view(-1, 1, 1, 1)
            rel = torch.from_numpy(kf.reliable[idx, ki]).to(self.device)
            occ = torch.from_numpy(kf.occlusion_valid[idx, ki]).to(self.device)
            known_flow = torch.from_numpy(kf.flow[idx, ki]).to(self.device) / self.flow_scale[ki]
            pred = flow[:, 2 * ki:2 * ki + 2]
            out["flow"] = flow_loss(pred, known_flow, occ * rel * exists)
            a = list(range(self.n - 1)) if batch.direction > 0 else list(range(1, self.n))
            b = [k + batch.direction for k in a]
            flow_px = pred[a] * self.flow_scale[ki]
            if not lc.consistency_moves_flow:
                flow_px = flow_px.detach()
            source = known[a] if lc.consistency_from == "known" else None
            out["consistency"] = consistency_loss(image[a], image[b], flow_px, rel[a], source)
        weights = {"recon": lc.reconstruction, "flow": lc.flow, "consistency": lc.consistency * ramp,
                   "perceptual": lc.perceptual}
        out["total"] = sum(weights[k] * v for k, v in out.items())
        return out

    # -- the loop ------------------------------------------------------------------------------------------------
    def train(self) -> None:
        rs, tc = self.run_state, self.config.train
        m = tc.updates_per_batch
        step = 0
        state = rs.load()
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            step = int(state["step"])
        self.model.train()
        good = _snapshot(self.model, self.optimizer)
        batch_start_loss = None
        while step < self.total and not rs.out_of_budget(step):
            if rs.stop_requested():
                self._checkpoint(step)
                raise TrainingCancelled(f"training stopped at step {step} of {rs.planned}; checkpoint saved")
            batch = self.schedule[step // m]
            if step % m == 0:
                good = _snapshot(self.model, self.optimizer)
                batch_start_loss = None
            losses = self.losses(batch, step)
            total = losses["total"]
            value = float(total.detach())
            if batch_start_loss is None and math.isfinite(value):
                batch_start_loss = value
            if not math.isfinite(value) or (batch_start_loss and value > tc.divergence_factor * batch_start_loss):
                # C.1: DIP-style training can blow up; return to the state at the start of this batch, move on.
                self.model.load_state_dict(good["model"])
                self.optimizer.load_state_dict(good["optimizer"])
                rs.rollbacks += 1
                step = (step // m + 1) * m
                continue
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            step += 1
            rs.report(step, {k: float(v.detach()) for k, v in losses.items()})
            if rs.due():
                self._checkpoint(step)
        self._checkpoint(step)
        self.steps = step

    def _checkpoint(self, step: int) -> None:
        self.run_state.save({"kind": "video", "step": step, "model": self.model.state_dict(),
                             "optimizer": self.optimizer.state_dict()})

    @torch.no_grad()
    def generate(self) -> tuple[np.ndarray, np.ndarray | None]:
        """-> images [T,h,w,3] and flows [T,6,h,w,2] (pixels), over windows of N consecutive frames.

        BatchNorm stays in batch-statistics mode, as during training, so a window looks like a training batch."""
        t_count = self.data.frames.shape[0]
        n = min(self.n, t_count)
        images = torch.zeros_like(self.data.frames)
        flows = None
        self.model.train()
        for start in list(range(0, t_count - n + 1, n)) + ([t_count - n] if t_count % n else []):
            idx = list(range(start, start + n))
            image, flow = self._forward(idx)
            images[idx] = image.cpu()
            if flow is not None:
                if flows is None:
                    flows = torch.zeros((t_count, len(FLOW_OFFSETS), 2) + images.shape[2:])
                flows[idx] = flow.cpu().view(n, len(FLOW_OFFSETS), 2, *flow.shape[2:]) * \
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

    def _fresh(self, frame: int):
        torch.manual_seed(self.config.train.seed * 100003 + frame)
        model = Generator(self.config.network).to(self.device)
        return model, torch.optim.Adam(model.parameters(), lr=self.config.train.learning_rate)

    def _frame_loss(self, model, frame: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lc = self.config.loss
        image, _ = model(self.data.noise[[frame]].to(self.device))
        target = self.data.frames[[frame]].to(self.device)
        known = self.data.known[[frame]].to(self.device)
        out = {"recon": reconstruction_loss(image, target, known)}
        if self.vgg is not None and lc.perceptual > 0:
            out["perceptual"] = perceptual_term(self.vgg, image, target, known)
        out["total"] = lc.reconstruction * out["recon"] + lc.perceptual * out.get("perceptual", 0.0)
        return image, out

    def train(self) -> None:
        rs, tc = self.run_state, self.config.train
        frame, it, best = 0, 0, math.inf
        best_image = None
        model, optimizer = self._fresh(0)
        state = rs.load()
        if state is not None:
            frame, it, best = int(state["frame"]), int(state["iteration"]), float(state["best"])
            self.images = state["images"]
            best_image = state["best_image"]
            if frame < self.t_count:
                model, optimizer = self._fresh(frame)
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
        per_frame_budget = tc.max_seconds / self.t_count if tc.max_seconds > 0 else 0.0
        while frame < self.t_count:
            step = frame * self.iters + it
            if rs.stop_requested():
                self._checkpoint(frame, it, best, best_image, model, optimizer)
                raise TrainingCancelled(f"training stopped at step {step} of {rs.planned}; checkpoint saved")
            over_time = per_frame_budget > 0 and rs.elapsed >= per_frame_budget * (frame + 1)
            over_steps = tc.max_steps > 0 and step >= tc.max_steps
            if it >= self.iters or over_time or over_steps:
                if best_image is None:  # budget ran out before the first snapshot: keep what there is
                    with torch.no_grad():
                        best_image = self._frame_loss(model, frame)[0].detach().cpu()
                self.images[frame] = best_image[0]
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
        self._checkpoint(frame, it, best, best_image, None, None)
        self.steps = min(self.total, tc.max_steps) if tc.max_steps > 0 else self.total

    def _checkpoint(self, frame, it, best, best_image, model, optimizer) -> None:
        self.run_state.save({"kind": "frame", "frame": frame, "iteration": it, "best": best,
                             "best_image": best_image, "images": self.images,
                             "model": model.state_dict() if model is not None else None,
                             "optimizer": optimizer.state_dict() if optimizer is not None else None})

    def generate(self) -> tuple[np.ndarray, None]:
        return self.images.permute(0, 2, 3, 1).numpy(), None
