"""Running the methods: one training run per (clip, method), evaluated at every stop point along the way.

Stop points are equal budgets (seconds on a clock) and the method's own schedule (a step count). A video variant
trains once, is paused at each stop point (`should_stop` makes the engine write a checkpoint), and a copy of
that checkpoint is finished in its own work directory with `train.max_steps` set to the step reached, which only
generates. The engine's batch order depends on the seed alone, so a run paused and resumed takes exactly the
steps an uninterrupted one would: one run gives the whole PSNR-versus-time curve. DIP trains a fresh network per
frame and cannot be resumed longer, so each DIP budget is its own run, with iterations per frame calibrated to it.

Budget clock: 'cpu' is this process's CPU seconds (run with one torch thread, it equals wall seconds on an idle
core, and is not inflated by other jobs sharing the machine); 'wall' is plain elapsed time.
"""
from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vinpaint import engine
from vinpaint.engine.api import clip_digest
from vinpaint.engine.config import STEPS_ALONE
from vinpaint.errors import InputError, OtherRunError, TrainingCancelled
from vinpaint.files import atomic_write_text
from vinpaint.evaluation.config import EvalConfig, MethodSpec, folder_name

LONG_EPOCHS = 1000.0
"""Epochs of a budgeted run: far more than any budget reaches, so the clock, not the schedule, stops it."""


@dataclass(frozen=True)
class StopPoint:
    """Where a method is evaluated: after `budget` clock seconds, or after `steps` (its own schedule)."""

    label: str
    budget: float = 0.0
    steps: int = 0

    @property
    def dirname(self) -> str:
        if self.label == "own":
            return "own"
        return f"b{int(round(self.budget))}" if self.budget > 0 else f"s{self.steps}"


@dataclass
class Snapshot:
    """One evaluated output: where it lies on disk and what it cost."""

    clip: str
    method: str
    schedule: str
    workdir: str
    clock_seconds: float
    """Budget clock consumed by training (flow estimation included) up to this snapshot."""
    wall_seconds: float
    cpu_seconds: float
    steps: int
    note: str = ""


@dataclass
class EngineJob:
    """Everything a worker process needs to train one method on one clip (picklable)."""

    clip: str
    frames: np.ndarray
    masks: np.ndarray
    method: MethodSpec
    points: list[StopPoint]
    root: str
    preset: str
    overrides: dict = field(default_factory=dict)
    clock: str = "cpu"
    threads: int = 1
    seed: int = 0
    device: str | None = None
    """Where the engine trains (None: the first GPU, else the CPU)."""


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_clock(kind: str):
    return cpu_seconds if kind == "cpu" else time.monotonic


def own_config(job: EngineJob):
    """The method's own schedule at the clip's size: the preset's epochs and step cap, no wall-clock cap.

    DIP ignores the preset's step cap: the engine applies `train.max_steps` to DIP's frame-by-frame schedule as a
    whole, so a cap below frames x dip_iterations leaves the last frames untrained (reported to the engine)."""
    h, w = job.frames.shape[1:3]
    over = {"resolution.work_width": int(w), "resolution.work_height": int(h), "train.seed": job.seed,
            **STEPS_ALONE, "train.checkpoint_every_s": 86400.0,
            "propagation.enabled": False, "propagation.self_check": False,
            "resolution.crop_to_hole": False}  # the paper's variants alone: whole frame, no propagation, and the
    # model's own fill (fast's self-check would hand a weak model's hole to Telea, and the rows would compare
    # nothing); a method's own overrides below turn any of them on by name
    if job.method.variant == "dip":
        over["train.max_steps"] = 0
    over.update(job.overrides)
    over.update(dict(job.method.overrides))
    return engine.make_config(job.preset, job.method.variant, **over)


def check_job(job: EngineJob) -> None:
    """Refuse a job the engine would refuse, before any training starts: an evaluation that trains for half an
    hour and then stops on a clip too short for one method loses the time, even if not the finished runs."""
    config = own_config(job)
    try:
        engine.validate(job.frames, job.masks, config)
    except InputError as err:
        raise InputError(f"{job.method.label} cannot run on {job.clip}: {err}") from None
    fitted = config.fitted(len(job.frames))[1]
    if fitted:  # the product trains a short clip on shorter batches; a row of a table must be the method it names
        raise InputError(f"{job.method.label} cannot run on {job.clip} as the method it names: {fitted}; give "
                         "more frames (--real-frames, the composed clips' --frames)")


def schedule_steps(t_count: int, config) -> int:
    """Steps a config runs with no clock: its schedule, cut short by `train.max_steps`."""
    return config.planned_steps(t_count)


def _save_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def _finish_snapshot(job: EngineJob, train_cfg, train_wd: Path, point: StopPoint, step: int, spent: dict) -> Snapshot:
    """Copy the paused run's checkpoint into the point's folder and let the engine generate from it."""
    snap_wd = Path(job.root) / point.dirname
    snap_wd.mkdir(parents=True, exist_ok=True)
    if not (snap_wd / "result.npz").is_file():
        engine.branch_workdir(train_wd, snap_wd)
        engine.inpaint(job.frames, job.masks, train_cfg.replace(**{"train.max_steps": max(step, 1)}), workdir=snap_wd,
                       device=job.device)
    snap = Snapshot(job.clip, job.method.label, point.label, str(snap_wd), spent["used"], spent["wall"],
                    spent["cpu"], step)
    _save_json(snap_wd / "snapshot.json", asdict(snap))
    return snap


def _load_snapshot(folder: Path) -> Snapshot | None:
    path = folder / "snapshot.json"
    if path.is_file() and (folder / "result.npz").is_file():
        return Snapshot(**json.loads(path.read_text()))
    return None


def run_video_chain(job: EngineJob) -> list[Snapshot]:
    """DIP-Vid, DIP-Vid-3DCN, DIP-Vid-Flow: one training run, paused at every stop point."""
    root = Path(job.root)
    root.mkdir(parents=True, exist_ok=True)
    own = own_config(job)
    t_count = job.frames.shape[0]
    points = [StopPoint(p.label, p.budget, schedule_steps(t_count, own) if p.label == "own" else p.steps)
              for p in job.points]
    beyond_own = any(p.label != "own" for p in points)  # budgets (or step counts) may outlast the own schedule
    train_cfg = own.replace(**{"train.epochs": max(own.train.epochs, LONG_EPOCHS), "train.max_steps": 0}) \
        if beyond_own else own
    train_wd = root / "train"
    clock = make_clock(job.clock)
    state_file = root / "clock.json"
    spent = json.loads(state_file.read_text()) if state_file.is_file() else {"used": 0.0, "wall": 0.0, "cpu": 0.0,
                                                                                 "step": 0}
    done: list[Snapshot] = []
    pending = []
    for p in points:
        snap = _load_snapshot(root / p.dirname)
        (done.append(snap) if snap else pending.append(p))
    step = [int(spent["step"])]

    def reached(p: StopPoint, used: float) -> bool:
        return (p.budget > 0 and used >= p.budget) or (p.steps > 0 and step[0] >= p.steps)

    while pending:
        c0, w0, p0 = clock(), time.monotonic(), cpu_seconds()
        base = spent["used"]

        def progress(ev) -> None:
            if ev.phase == "train":
                step[0] = ev.step

        finished = False
        try:
            engine.inpaint(job.frames, job.masks, train_cfg, workdir=train_wd, progress=progress, device=job.device,
                    should_stop=lambda: any(reached(p, base + clock() - c0) for p in pending))
            finished = True
        except TrainingCancelled:
            pass
        spent = {"used": base + clock() - c0, "wall": spent["wall"] + time.monotonic() - w0,
                 "cpu": spent["cpu"] + cpu_seconds() - p0, "step": engine.reached_step(train_wd)}
        step[0] = spent["step"]
        _save_json(state_file, spent)
        hit = [p for p in pending if finished or reached(p, spent["used"])]
        if not hit:
            raise InputError(f"training {job.method.label} on {job.clip} stopped before any stop point.")
        for p in hit:
            snap = _finish_snapshot(job, train_cfg, train_wd, p, step[0], spent)
            if finished and p.budget > 0 and spent["used"] < p.budget:
                snap.note = "schedule finished before the budget"
            done.append(snap)
        pending = [p for p in pending if p not in hit]
    return done


def run_dip(job: EngineJob) -> list[Snapshot]:
    """DIP: a fresh run per stop point; for a budget, iterations per frame are calibrated on a few steps."""
    root = Path(job.root)
    own = own_config(job)
    t_count = job.frames.shape[0]
    clock = make_clock(job.clock)
    out = []
    per_step: float | None = None
    for p in job.points:
        folder = root / p.dirname
        snap = _load_snapshot(folder)
        if snap:
            out.append(snap)
            continue
        cfg = own
        if p.budget > 0:
            if per_step is None:
                per_step = _calibrate_dip(job, own, clock)
            iters = max(1, int(p.budget / (t_count * per_step)))
            cfg = own.replace(**{"train.dip_iterations": iters})  # the last iteration is always a snapshot
        c0, w0, p0 = clock(), time.monotonic(), cpu_seconds()
        res = engine.inpaint(job.frames, job.masks, cfg, workdir=folder, device=job.device)
        snap = Snapshot(job.clip, job.method.label, p.label, str(folder), clock() - c0, time.monotonic() - w0,
                        cpu_seconds() - p0, res.steps, f"{cfg.train.dip_iterations} iterations per frame")
        _save_json(folder / "snapshot.json", asdict(snap))
        out.append(snap)
    return out


def _calibrate_dip(job: EngineJob, own, clock, steps: int = 10) -> float:
    """Clock seconds per DIP iteration on this clip (median of a few steps after warm-up)."""
    stamps: list[float] = []
    engine.inpaint(job.frames, job.masks, own.replace(**{"train.max_steps": steps}), device=job.device,
                   progress=lambda ev: stamps.append(clock()) if ev.phase == "train" else None)
    deltas = np.diff(stamps[2:]) if len(stamps) > 3 else np.diff(stamps)
    value = float(np.median(deltas)) if len(deltas) else 0.05
    return value if math.isfinite(value) and value > 0 else 0.05


def run_engine_job(job: EngineJob) -> list[Snapshot]:
    """Entry point of a worker process."""
    import torch

    previous = torch.get_num_threads()  # run inline (--jobs 1), the caller's process keeps its own setting
    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        _claim_root(Path(job.root), own_config(job).to_json(), job.method.label, clip_key(job.frames, job.masks))
        return run_dip(job) if job.method.variant == "dip" else run_video_chain(job)
    except OtherRunError as exc:  # the engine's advice names a --work-dir, which eval has not
        if exc.damaged:  # a damaged run.json: said as the engine says it
            raise
        raise OtherRunError(f"{job.root} holds runs of {job.method.label} on other frames of {job.clip} (an "
                            "earlier evaluation into this folder, of another set or real clip); give a new -o, or "
                            "move that folder aside to run it again") from None
    finally:
        torch.set_num_threads(previous)


def clip_key(frames: np.ndarray, masks: np.ndarray) -> str:
    """Content hash of the frames and holes a method's runs were made from."""
    return clip_digest(frames, masks).hexdigest()


def _claim_root(root: Path, settings: str, label: str, clip: str | None = None) -> None:
    """A method's folder is reused only for the settings and the frames it was run with: runs found there with
    other settings (another engine version's defaults, an edited row) or of other frames (a real clip's other
    --real-frames) are moved aside, never scored as this method's. A folder that recorded no frames (written
    before they were recorded) keeps its runs: the engine's own fingerprint still guards each of them."""
    record, frames = root / "settings.json", root / "frames.sha256"
    if root.is_dir() and any(root.iterdir()):
        same_settings = record.is_file() and record.read_text() == settings
        same_frames = clip is None or not frames.is_file() or frames.read_text().strip() == clip
        if same_settings and same_frames:
            if clip is not None and not frames.is_file():
                atomic_write_text(frames, clip + "\n")
            return
        aside = root.with_name(f"{root.name}.before-{time.strftime('%Y%m%d-%H%M%S')}")
        root.rename(aside)
        what = "other settings" if not same_settings else "other frames"
        print(f"{label}: {root} holds runs with {what}; moved to {aside.name}, running again", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, settings)
    if clip is not None:
        atomic_write_text(frames, clip + "\n")


def make_jobs(cfg: EvalConfig, clip: str, frames: np.ndarray, masks: np.ndarray, root: Path,
              own: bool | None = None, budgets: list[float] | None = None,
              specs: list[MethodSpec] | None = None) -> list[EngineJob]:
    """Jobs for every engine method of `specs` (the config's methods by default) on one clip."""
    own = cfg.own_schedule if own is None else own
    budgets = cfg.budgets if budgets is None else budgets
    jobs = []
    for spec in cfg.method_specs() if specs is None else specs:
        if spec.kind != "engine":
            continue
        points = [StopPoint("own")] if own else []
        if spec.variant != "dip" or cfg.dip_budgets:
            points += [StopPoint(f"budget {b:g}s", float(b)) for b in sorted(budgets)]
        if points:
            jobs.append(EngineJob(clip, frames, masks, spec, points, str(root / clip / _safe(spec.label)),
                                  cfg.preset, dict(cfg.overrides), cfg.clock, cfg.threads, cfg.seed,
                                  cfg.device or None))
    return jobs


def _safe(name: str) -> str:
    return folder_name(name)


def run_jobs(jobs: list[EngineJob], workers: int, echo=print) -> list[Snapshot]:
    """Run jobs inline (workers <= 1) or in `workers` processes; slowest methods first."""
    cost = {"dip-vid-3dcn": 0, "dip-vid-flow": 1, "dip": 2, "dip-vid": 3}
    jobs = sorted(jobs, key=lambda j: cost.get(j.method.variant, 9))
    out: list[Snapshot] = []
    if workers <= 1:
        for j in jobs:
            echo(f"training {j.method.label} on {j.clip} ({', '.join(p.label for p in j.points)})")
            out += run_engine_job(j)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(run_engine_job, j): j for j in jobs}
        for fut, j in futures.items():
            snaps = fut.result()
            echo(f"done: {j.method.label} on {j.clip}: " +
                 ", ".join(f"{s.schedule} ({s.steps} steps, {s.clock_seconds:.0f} s)" for s in snaps))
            out += snaps
    except BaseException:
        # Stopped (Ctrl-C, SIGTERM) or failed: the queued jobs are dropped and the ones under way stopped. Before
        # (2026-12-03) leaving the pool waited for every queued job, so a stop ran the rest of the evaluation.
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True)
    return out
