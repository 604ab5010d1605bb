"""The engine's one entry point: frames and masks in, inpainted frames out (see docs/CONTRACTS.md)."""
from __future__ import annotations

import gc
import hashlib
import json
import shlex
import shutil
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .composite import composite, dilate_holes, hole_region, resize_frames, resize_holes, to_float
from .checks import validate
from .config import FLOW_OFFSETS, InpaintConfig, SettingError, region_working_size, working_size
from .devices import check_device, resolved_precision
from .result import GENERATED, HISTORY_TERMS, InpaintResult, ProgressEvent
from vinpaint.errors import DamagedWorkFile, InputError, OtherRunError
from .flow import FlowEstimator, KnownFlow, compute_known_flow, make_estimator
from .perceptual import load_vgg16
from .self_check import BandJudge, held_out_band, judge, scored_band
from .stabilise import steady_unseen
from .diffusion import Blend, clip_diffusion
from .propagate import (Propagation, chain_tolerance, check_band_width, clip_flows, clip_light, diffusion_fill,
                        load_propagation, model_needed, plate_px, propagate_clip, save_propagation)
from vinpaint.files import atomic_write, atomic_write_text
from .train import (FIT_TIMED, FIT_WARMUP, FrameTrainer, TrainingData, VideoTrainer, load_checkpoint,
                    make_noise)

def apply_references(frames: np.ndarray, holes: np.ndarray, references: dict[int, np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Painted clean frames into the clip: (frames with the paintings inside their holes, holes without them).
    InputError names a reference that does not fit the clip."""
    frames, holes = frames.copy(), holes.copy()
    for index, image in sorted(references.items()):
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < len(frames):
            raise InputError(f"reference frame {index!r} is not a frame of the clip (0 to {len(frames) - 1})")
        image = np.asarray(image)
        if image.shape != frames.shape[1:]:
            raise InputError(f"the reference for frame {index} is {image.shape[1]}x{image.shape[0]} with "
                             f"{image.shape[2] if image.ndim == 3 else 1} channels but the clip's frames are "
                             f"{frames.shape[2]}x{frames.shape[1]} RGB")
        if image.dtype != frames.dtype:
            raise InputError(f"the reference for frame {index} is {image.dtype} but the clip is {frames.dtype}; "
                             "give it the clip's bit depth")
        frames[index][holes[index]] = image[holes[index]]
        holes[index] = False
    return frames, holes


def fingerprint(frames: np.ndarray, holes: np.ndarray, config: InpaintConfig, with_feather: bool = False) -> str:
    """Content hash of the clip and of every setting that decides the result, except how long to train and how the
    result is composed (InpaintConfig.training_identity): a run may be continued with a larger budget, or its
    finished result steadied or feathered again (composition runs on every call, after the cached stages), in the
    same work directory. `with_feather`: the key of work directories made before the feather left it (they are
    accepted)."""
    digest = hashlib.sha256(json.dumps(config.training_identity(with_feather), sort_keys=True).encode())
    return clip_digest(frames, holes, digest).hexdigest()


def clip_digest(frames: np.ndarray, holes: np.ndarray, digest=None):
    """`digest` (a new SHA-256 when None) updated with the clip's shape, dtype, frames and holes."""
    digest = hashlib.sha256() if digest is None else digest
    digest.update(str((frames.shape, str(frames.dtype))).encode())
    digest.update(np.ascontiguousarray(frames).tobytes())
    digest.update(np.packbits(holes).tobytes())
    return digest


class _Workdir:
    """A run's folder: config.json, run.json (fingerprint), flow.npz, checkpoint.pt, result.npz, log.txt."""

    def __init__(self, path: Path | None, key: str, earlier_key: Callable[[], str] | None = None,
                 config: InpaintConfig | None = None):
        """`earlier_key()`: the same run's key as an earlier version of vinpaint wrote it (asked only on a
        mismatch: it hashes the frames again); such a work directory is taken over, its run.json rewritten.
        `config`: this run's, compared on a mismatch with the one saved there to name the settings that differ."""
        self.path = Path(path) if path is not None else None
        self.key = key
        if self.path is None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if _run_to_record(self.path, key, earlier_key, config):
            atomic_write_text(self.path / "run.json", json.dumps({"fingerprint": key}) + "\n")

    def file(self, name: str) -> Path | None:
        return self.path / name if self.path is not None else None

    def log(self, line: str) -> None:
        if self.path is not None:
            with open(self.path / "log.txt", "a", encoding="utf-8") as f:
                f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")


def _run_to_record(path: Path, key: str, earlier_key: Callable[[], str] | None,
                   config: InpaintConfig | None) -> bool:
    """Raises OtherRunError where the work directory `path` holds another run (reading only); True where its
    run.json is to be written: there is none yet, or an earlier version's key for this same run."""
    run = path / "run.json"
    if not run.is_file():
        return True
    try:
        recorded = json.loads(run.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError, RecursionError):
        raise OtherRunError(f"the work directory {path} has a damaged run.json (its record of which clip and "
                            "settings it holds), so its run cannot be told from another; choose another work "
                            "directory or delete that one", damaged=True) from None
    if recorded == key:
        return False
    if earlier_key is not None and recorded == earlier_key():
        return True
    differences = _saved_differences(path / "config.json", config)
    what = f"other settings ({_listed(differences)} there)" if differences else "other frames or settings"
    raise OtherRunError(f"the work directory {path} holds a run of {what}; choose another work directory or delete "
                        "that one", differences)


def _saved_differences(saved: Path, config: InpaintConfig | None) -> tuple[str, ...]:
    """The training settings of the config saved at `saved` that differ from `config`, as "name=value" (empty
    when there is no config to compare or the saved one cannot be read: then the frames are what may differ)."""
    if config is None:
        return ()
    try:
        earlier = InpaintConfig.load(saved)
    except (OSError, ValueError, TypeError, KeyError, SettingError):
        return ()
    # quoted for the shell where it must be (a list's brackets are a glob there)
    return tuple(shlex.quote(f"{name}={_setting_text(value)}")
                 for name, value, _ in config.identity_differences(earlier))


def _listed(differences: tuple[str, ...], most: int = 4) -> str:
    more = len(differences) - most
    return ", ".join(differences[:most]) + (f" and {more} more" if more > 0 else "")


def _setting_text(value) -> str:
    """A setting's value as --set takes it (cli/arguments.py parse_setting): JSON, so a list reads back as one
    ([1,3]; "1,3" was refused as text); text as it is, unless it would read back as JSON of another kind."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))


RESUMABLE = ("checkpoint.pt", "flow.npz")
"""What a run in a work directory has reached: its checkpoint and its cached known flow."""


def reached_step(workdir: Path | str) -> int:
    """The training step a work directory's checkpoint has reached (0 when it holds none)."""
    path = Path(workdir) / "checkpoint.pt"
    return int(load_checkpoint(path)["step"]) if path.is_file() else 0


def branch_workdir(source: Path | str, target: Path | str) -> None:
    """Let a run in `target` start where the run in `source` stands (its checkpoint and cached flow), e.g. to
    generate from a paused run with `train.max_steps` at the step it reached while the original trains on."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in RESUMABLE:
        if (Path(source) / name).is_file():
            shutil.copyfile(Path(source) / name, target / name)


def generated_size(height: int, width: int, region: tuple | None, config: InpaintConfig) -> tuple[int, int]:
    """(h, w) the model generates at: the whole frame's working size, or the hole region's."""
    if region is None:
        return working_size(height, width, config)
    y0, y1, x0, x1 = region
    return region_working_size(y1 - y0, x1 - x0, config)


def _check_generated(generated: np.ndarray, shape: tuple[int, int, int], region: tuple | None,
                     config: InpaintConfig) -> None:
    """Raise ValueError unless a cached result's frames are finite and of the size this clip and config generate:
    a file of another size was composited into the hole (wrong pixels, or an IndexError), NaN into black."""
    t_count, height, width = shape
    y0, y1, x0, x1 = region if region is not None else (0, height, 0, width)
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise ValueError(f"its region {region} is not inside the {width}x{height} frames")
    h, w = generated_size(height, width, region, config)
    if generated.shape != (t_count, h, w, 3):
        raise ValueError(f"its frames are {generated.shape}, this run generates {(t_count, h, w, 3)}")
    if not np.isfinite(generated).all():
        raise ValueError("its frames hold values that are not finite")


def _prepared(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig,
              references: dict[int, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, InpaintConfig, str | None]:
    """What inpaint() trains on, and with which settings: the config fitted to the clip (with its notice), the
    inputs checked, the holes grown and the artist's painted frames applied."""
    fit_notice = None
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        config, fit_notice = config.fitted(frames.shape[0])
    validate(frames, masks, config)
    holes = dilate_holes(masks.astype(bool), config.mask.dilation)
    if references:
        frames, holes = apply_references(frames, holes, references)
    return frames, holes, config, fit_notice


def _device(device: str | None) -> torch.device:
    """A library caller's device too is checked in one sentence (cuda:7 on a one-GPU machine was CUDA's
    "invalid device ordinal" traceback)."""
    return torch.device(check_device(device) if device else "cuda" if torch.cuda.is_available() else "cpu")


def check_workdir_run(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig, workdir: Path | str, *,
                      device: str | None = None, references: dict[int, np.ndarray] | None = None) -> None:
    """Raises OtherRunError where inpaint() with these arguments would refuse the run held in `workdir`; reads
    only (`vinpaint inpaint --check`)."""
    frames, holes, config, _ = _prepared(frames, masks, config, references)
    if not holes.any() or not Path(workdir).is_dir():
        return
    config, _ = _resolve_precision(config, _device(device), (Path(workdir), frames, holes))
    _run_to_record(Path(workdir), fingerprint(frames, holes, config),
                   lambda: fingerprint(frames, holes, config, with_feather=True), config)


def _stored_budget(path: Path) -> str | None:
    """The training budget a cached result was made with; another budget continues from the checkpoint."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["budget"]) if "budget" in z.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def inpaint(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig, *, workdir: Path | str | None = None,
            progress: Callable[[ProgressEvent], None] | None = None,
            should_stop: Callable[[], bool] | None = None, device: str | None = None,
            references: dict[int, np.ndarray] | None = None) -> InpaintResult:
    """Train the paper's model on this clip and fill its holes. See docs/CONTRACTS.md for the contract.

    `references` maps a frame index to a clean frame the artist painted (same shape and dtype as the frame): its
    pixels are taken as known inside that frame's hole, so training and propagation carry them through the shot,
    and that frame's output is the painting itself."""
    run_started = time.monotonic()
    frames, holes, config, fit_notice = _prepared(frames, masks, config, references)
    emit = progress or (lambda event: None)
    if fit_notice:
        emit(ProgressEvent("setup", message=fit_notice))
    if not holes.any():  # every masked frame was painted by the artist: nothing is left to fill
        matte = np.zeros(holes.shape, np.uint8)
        emit(ProgressEvent("done", 0, 0, 0.0, 0.0, message="every hole was painted in a reference frame"))
        h, w = working_size(frames.shape[1], frames.shape[2], config)
        return InpaintResult(frames, resize_frames(to_float(frames), (w, h)), holes, None, config, 0.0, 0,
                             matte=matte)
    dev = _device(device)
    if dev.type == "cuda" and dev.index is not None:  # else libraries' own allocations (cuBLAS handles) go to cuda:0
        torch.cuda.set_device(dev)
    config, precision_notice = _resolve_precision(config, dev, (Path(workdir), frames, holes) if workdir else None)
    key = fingerprint(frames, holes, config)
    wd = _Workdir(Path(workdir) if workdir is not None else None, key,
                  lambda: fingerprint(frames, holes, config, with_feather=True), config)
    if wd.path is not None:
        config.save(wd.path / "config.json")
    if precision_notice:
        wd.log(precision_notice)
        emit(ProgressEvent("setup", message=precision_notice))

    flow_notices: list[str] = []
    estimator = make_estimator(config.flow.estimator, config.flow.dis_preset, config.flow.raft_weights,
                               config.flow.raft_iterations, flow_notices.append, dev)
    for notice in flow_notices:
        wd.log(notice)
        emit(ProgressEvent("setup", message=notice))
    # the per-frame diffusion resolved for this clip once: a blend's weight is fitted on the clip's known pixels
    diffusion = clip_diffusion(config.propagation.diffusion, frames, holes) \
        if config.propagation.enabled else config.propagation.diffusion
    if isinstance(diffusion, Blend):
        wd.log(f"diffusion: the membrane's share against the biharmonic fill, fitted on known pixels: "
               f"{diffusion.membrane_share:.2f}" + (f" (biharmonic solved at {diffusion.solve_scale:.2f} of its "
                                                    "size)" if diffusion.solve_scale < 1 else ""))
    propagation = _propagation(frames, holes, config, wd, emit, estimator, diffusion)

    result_file = wd.file("result.npz")
    tc = config.train
    # a fit's minimum joins the budget only where it is set, so results cached before it existed are still reused
    fit = [tc.fit_seconds] + ([tc.fit_min_steps] if tc.fit_min_steps else []) if tc.fit_seconds > 0 else []
    budget = json.dumps([tc.max_steps, tc.max_seconds] + fit)
    if result_file is not None and result_file.is_file() and _stored_budget(result_file) == budget:
        try:  # plain arrays only (allow_pickle=False); a damaged or planted file is one sentence
            with np.load(result_file, allow_pickle=False) as z:
                generated, history = z["generated"], z["history"]
                if history.size and (history.ndim != 2 or history.shape[1] != 1 + len(HISTORY_TERMS)):
                    raise ValueError(f"a loss history of shape {history.shape}")
                flows = z["flows"] if z["flows"].size else None
                seconds, steps = float(z["seconds"]), int(z["steps"])
                share = float(z["model_share"]) if "model_share" in z.files else \
                    0.0 if "diffusion" in z.files and bool(z["diffusion"]) else 1.0
                region = tuple(int(v) for v in z["region"]) if "region" in z.files and z["region"].size == 4 \
                    else None
            if share > 0.0:  # a result whose share is 0 (no model, or the self-check gave it none) is not read
                _check_generated(generated, holes.shape, region, config)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise DamagedWorkFile(f"the cached result {result_file} is damaged or not vinpaint's ({str(exc)[:80]}); "
                                  "delete it or use --restart", result_file) from None
        emit(ProgressEvent("done", steps, steps, seconds, 0.0, message="finished earlier; reusing its result"))
        out, matte = _compose(frames, holes, config, propagation, estimator, generated, region, share,
                              diffusion=diffusion)
        return InpaintResult(out, generated, holes, flows, config.as_ran(steps), seconds, steps, history,
                             matte=matte)

    t_count, height, width = holes.shape
    h, w = whole = working_size(height, width, config)
    notices: list[str] = list(flow_notices) + ([fit_notice] if fit_notice else [])
    if fit_notice:
        wd.log(fit_notice)

    def without_model(notice: str, announced: bool = False) -> InpaintResult:
        """What no frame sees filled by diffusion from the real pixels around it, steadied; no model. `announced`:
        the notice already went out as progress (the trainer's fit line), so the end says only "done"."""
        ran = config.as_ran(0)
        notices.append(notice)
        wd.log(notice)
        out, matte = _compose(frames, holes, config, propagation, estimator, diffusion=diffusion)
        generated = resize_frames(to_float(out), whole[::-1])  # the whole frame's
        history = np.zeros((0, 6), np.float32)
        if result_file is not None:
            atomic_write(result_file, lambda f: np.savez(
                f, generated=generated, flows=np.zeros(0, np.float32), history=history, seconds=0.0, steps=0,
                budget=budget, diffusion=True))
        emit(ProgressEvent("done", 0, 0, 0.0, 0.0, message="done" if announced else notice))
        if wd.path is not None and ran is not config:
            ran.save(wd.path / "config.json")
        return InpaintResult(out, generated, holes, None, ran, 0.0, 0, history, notices, matte)

    left = int((holes & ~propagation.reached).sum()) if propagation is not None else int(holes.sum())
    if propagation is not None and not model_needed(holes, propagation.reached, config.propagation.train_below):
        # (Nearly) every hole pixel was seen in another frame: the few left are filled by diffusion from the real
        # pixels around them, and no model is trained.
        return without_model("every hole pixel was propagated from another frame; no training needed" if not left
                             else f"{left / holes.sum():.2%} of the hole is seen by no frame, below "
                                  "propagation.train_below: filled from the real pixels around it, no training needed")

    propagated = propagation is not None and config.propagation.before_training
    # propagated pixels are real: the model learns them as known and generates only what no frame sees
    train_holes = holes & ~propagation.reached if propagated else holes
    band = held_out_band(holes, propagation, train_holes, check_band_width(config.propagation, holes.shape[2])) \
        if config.propagation.self_check else None
    if band is not None:
        train_holes = train_holes | band  # hidden from the model only; the composite keeps these known pixels
    region = hole_region(train_holes, config.resolution.crop_margin) if config.resolution.crop_to_hole else None
    y0, y1, x0, x1 = region if region is not None else (0, height, 0, width)
    if region is not None:
        h, w = generated_size(height, width, region, config)
        wd.log(f"training on the region x {x0}-{x1}, y {y0}-{y1} around the hole, at {w}x{h}")
    # only the region is converted to float: a whole 40-frame 4K clip is 4 GB a copy
    source = to_float(frames[:, y0:y1, x0:x1])
    train_holes = train_holes[:, y0:y1, x0:x1]
    if propagated:
        reached = propagation.reached[:, y0:y1, x0:x1]
        source[reached] = propagation.colours[:, y0:y1, x0:x1][reached]
    work = resize_frames(source, (w, h))
    work_holes = resize_holes(train_holes, (w, h))
    work[work_holes] = 0.5  # the hole's content is unknown to training: the truth (or the object) never leaks in
    del source

    vgg, notice = (None, "perceptual loss off: weight 0") if config.loss.perceptual <= 0 else \
        load_vgg16(config.loss.vgg_weights, config.train.seed, config.loss.vgg_input)
    notices.append(notice)
    wd.log(notice)
    emit(ProgressEvent("setup", message=notice))
    if vgg is not None:
        vgg = vgg.to(dev)

    probe_started = time.monotonic()
    too_few = _fit_before_flow(config, work, work_holes, vgg, dev, wd, probe_started - run_started, should_stop) \
        if propagation is not None else None
    if too_few is not None:
        return without_model(too_few)
    run_started += time.monotonic() - probe_started  # the probe's seconds are not the run's: the trainer times again

    known_flow = None
    if config.uses_flow:
        flow_file = wd.file("flow.npz")
        if flow_file is not None and flow_file.is_file():
            try:  # a cache: a damaged one, or one of another size, is estimated again, never trusted
                known_flow = KnownFlow.load(flow_file)
                if not known_flow.fits(t_count, h, w):
                    known_flow = None
            except InputError:
                known_flow = None
        if known_flow is None:
            start = time.monotonic()
            frames_u8 = (np.clip(work, 0, 1) * 255).round().astype(np.uint8)
            known_flow = compute_known_flow(
                frames_u8, work_holes, estimator, config.flow.occlusion_threshold,
                progress=lambda i, n: emit(ProgressEvent("flow", i, n, time.monotonic() - start,
                                                         message="estimating optical flow")))
            if flow_file is not None:
                known_flow.save(flow_file)

    data = _training_data(work, work_holes, config.train.seed, known_flow)
    trainer_cls = FrameTrainer if config.variant == "dip" else VideoTrainer
    # train.fit_min_steps falls back on propagation's fill; without propagation the model is all there is
    trainer_config = config if propagation is not None else config.replace(**{"train.fit_min_steps": 0})
    trainer = trainer_cls(trainer_config, data, vgg, dev, wd.path, emit, should_stop)
    wd.log(f"training {config.variant} ({config.preset}) on {t_count} frames at {w}x{h}, {trainer.run_state.planned} "
           f"steps")
    scored = None
    if band is not None:
        scored, line = scored_band(band, propagation)
        if line:
            wd.log(line)
    if scored is not None and config.propagation.check_every > 0 and isinstance(trainer, VideoTrainer):
        _check_while_training(trainer, BandJudge(frames, holes, propagation, region, scored,
                                                 diffusion=diffusion), config, wd)
    if config.train.fit_seconds > 0:
        trainer.run_state.outside_s = outside_training(time.monotonic() - run_started)
    trainer.train()
    if trainer.run_state.too_few:  # a repeat of this run needs no fit and no model: the same pixels at once
        return without_model(trainer.run_state.fit_line, announced=True)
    if trainer.run_state.fit_line:
        notices.append(trainer.run_state.fit_line)
        wd.log(trainer.run_state.fit_line)
    emit(ProgressEvent("generate", 0, t_count, trainer.run_state.elapsed, message="generating frames"))
    generated, flows = trainer.generate()
    seconds, steps = trainer.run_state.elapsed, trainer.steps
    history = np.asarray(trainer.run_state.history, np.float32).reshape(-1, 6)
    share = _self_check(frames, holes, propagation, generated, region, scored, wd, emit, notices,
                        config.propagation.check_margin, config.propagation.check_blend, diffusion)
    if result_file is not None:
        atomic_write(result_file, lambda f: np.savez(
            f, generated=generated, flows=flows if flows is not None else np.zeros(0, np.float32),
            history=history, seconds=seconds, steps=steps, budget=budget,
            region=np.asarray(region if region is not None else (), np.int64), diffusion=share == 0.0,
            model_share=share))
    wd.log(f"finished: {steps} steps in {seconds:.1f} s, {trainer.run_state.rollbacks} roll-backs")
    out, matte = _compose(frames, holes, config, propagation, estimator, generated, region, share,
                          diffusion=diffusion)
    emit(ProgressEvent("done", steps, steps, seconds, 0.0, message="done"))
    ran = config.as_ran(steps)
    if wd.path is not None and ran is not config:
        ran.save(wd.path / "config.json")
    return InpaintResult(out, generated, holes, flows, ran, seconds, steps, history, notices, matte)


def _training_data(work: np.ndarray, work_holes: np.ndarray, seed: int, known_flow: KnownFlow | None) -> TrainingData:
    """float [T,h,w,3] working frames and bool [T,h,w] holes -> what a trainer learns from, with its fixed noise."""
    t_count, h, w = work_holes.shape
    return TrainingData(torch.from_numpy(work).permute(0, 3, 1, 2).contiguous(),
                        torch.from_numpy(~work_holes).float()[:, None], make_noise(t_count, h, w, seed), known_flow)


def _fit_before_flow(config: InpaintConfig, work: np.ndarray, work_holes: np.ndarray, vgg, dev: torch.device,
                     wd, before_s: float, should_stop: Callable[[], bool] | None = None) -> str | None:
    """train.fit_seconds on a CPU, decided before the known flow where no model can fit: a throwaway trainer on
    zero flow (the same step, the same cost) times FIT_TIMED steps after FIT_WARMUP, and if even without the known
    flow's own seconds fewer than train.fit_min_steps steps fit, the run trains no model and the known flow is
    never estimated (before, 2026-12-02: estimated, then the trainer's own timing gave the same answer; 10-20 %
    of a `fast` run on a 2-core CPU). -> the fit line when no model is trained, else None, and training goes on
    as before, timing itself again. Not on a GPU (a model fits there), not for a run with a checkpoint or a
    cached flow (they go on as they were), not for DIP (no flow)."""
    tc = config.train
    if dev.type != "cpu" or tc.fit_seconds <= 0 or tc.fit_min_steps <= 0 or not config.uses_flow or \
            config.variant == "dip" or (wd.path is not None and ((wd.path / "checkpoint.pt").exists() or
                                                               (wd.path / "flow.npz").exists())):
        return None
    t_count, h, w = work_holes.shape
    exists = np.array([[0 <= i + off < t_count for off in FLOW_OFFSETS] for i in range(t_count)])
    k = len(FLOW_OFFSETS)
    still = KnownFlow(np.zeros((t_count, k, 2, h, w), np.float32), np.ones((t_count, k, 1, h, w), np.float32),
                      np.zeros((t_count, k, 1, h, w), np.float32), exists, np.ones(k, np.float32))
    data = _training_data(work, work_holes, tc.seed, still)
    probe = VideoTrainer(config, data, vgg, dev)
    try:
        probe.bench_steps(0, FIT_WARMUP)
        if should_stop is not None and should_stop():
            return None  # a stop asked for: the run goes on to where it can stop (the trainer's first step)
        started = time.monotonic()
        probe.bench_steps(FIT_WARMUP, FIT_TIMED)
        per_step = (time.monotonic() - started) / FIT_TIMED
        probe.run_state.outside_s = outside_training(before_s)
        # as the trainer's own timing counts them: its elapsed seconds hold the steps it timed
        probe.run_state.fit(FIT_WARMUP + FIT_TIMED, per_step)
        return probe.run_state.fit_line if probe.run_state.too_few else None
    finally:  # the trainer refers to itself (its loss function): freed now, not at some later collection
        probe._loss_fn = None
        del probe, data, still
        gc.collect()


AFTER_PER_BEFORE = 0.5
"""The stages after training (generation, the self-check, composition at the plate's size) took 0.37-0.54 of the
time of those before it (flow, propagation) on a 1920x1440 and a 480x360 plate (docs/evaluation.md, "The whole run
fitted"): train.fit_seconds counts them as half of it."""


def outside_training(before_s: float) -> float:
    """Seconds of a run outside training, for train.fit_seconds: those before it, measured, and those after it,
    estimated from them (AFTER_PER_BEFORE)."""
    return before_s * (1.0 + AFTER_PER_BEFORE)


def _gpu_without_bf16(dev: torch.device) -> str | None:
    """'7.5' for a GPU before Ampere (no bf16 units: torch would emulate bf16 slowly or fail mid-run), else None."""
    if dev.type != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(dev)
    return f"{major}.{minor}" if major < 8 else None


def _resolve_precision(config: InpaintConfig, dev: torch.device,
                       held: tuple[Path, np.ndarray, np.ndarray] | None = None) -> tuple[InpaintConfig, str | None]:
    """train.precision 'auto' made concrete for this device before anything is hashed or saved, so the work
    directory's config.json says what actually ran. bf16 asked for on a GPU without bf16 units (before Ampere) is
    refused here, before any work. `held`: (work directory, frames, holes); a run there that 'auto' resolved
    otherwise on another kind of device (a daemon's job requeued from its GPU to its CPU) continues at its own
    precision where this device can run it: the precision decides the arithmetic, not what is learnt, and taken
    as another run its checkpoint and caches would be thrown away."""
    if config.train.precision == "bf16" and (capability := _gpu_without_bf16(dev)):
        raise InputError(f"train.precision bf16 needs a GPU with bf16 units (compute capability 8.0, Ampere, or "
                         f"newer); {dev} has {capability}: use tf32 or fp32.")
    if config.train.precision != "auto":
        return config, None
    precision, channels_last = resolved_precision("auto", dev.type)
    resolved = config.replace(**{"train.precision": precision,
                                 "train.channels_last": channels_last or config.train.channels_last})
    held_run = _held_precision(config, resolved, dev, *held) if held is not None else None
    if held_run is not None:
        earlier = held_run.train
        return held_run, (f"train.precision auto: {earlier.precision}"
                          f"{' with channels-last' if earlier.channels_last else ''}, as the run in the work "
                          f"directory trained on another device (auto would be {precision} on {dev}); it continues "
                          "from there")
    why = "this CPU has bf16 matrix units" if precision == "bf16" else \
        "no bf16 matrix units on this CPU" if dev.type == "cpu" else f"TensorFloat-32 convolutions on {dev.type}"
    layout = " with channels-last" if channels_last else ""
    return resolved, f"train.precision auto: {precision}{layout} ({why})"


def _held_precision(asked: InpaintConfig, resolved: InpaintConfig, dev: torch.device, workdir: Path,
                    frames: np.ndarray, holes: np.ndarray) -> InpaintConfig | None:
    """`asked` at the precision and memory order of the run held in `workdir`, where that run is this one but for
    them (its fingerprint matches) and this device can run it; None otherwise (nothing held, the same precision,
    another run: the usual checks decide)."""
    try:
        recorded = json.loads((workdir / "run.json").read_text()).get("fingerprint")
        earlier = InpaintConfig.load(workdir / "config.json").train
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, SettingError):
        return None
    same = (earlier.precision, earlier.channels_last) == (resolved.train.precision, resolved.train.channels_last)
    if same or earlier.precision == "auto" or recorded == fingerprint(frames, holes, resolved):
        return None
    if earlier.precision == "bf16" and _gpu_without_bf16(dev):
        return None
    held = asked.replace(**{"train.precision": earlier.precision, "train.channels_last": earlier.channels_last})
    return held if recorded == fingerprint(frames, holes, held) else None


def _compose(frames: np.ndarray, holes: np.ndarray, config: InpaintConfig, propagation: Propagation | None,
             estimator: FlowEstimator, generated: np.ndarray | None = None, region=None, share: float = 1.0, *,
             diffusion: "str | Blend") -> tuple[np.ndarray, np.ndarray]:
    """The output frames and matte: propagated pixels, and for what no frame sees the model's `generation` (its
    `share`, the rest per-frame diffusion: the self-check's blend) or, without one, that diffusion at the source's
    resolution, made steady along the flow (propagation.steady_radius). Diffusion is already continuous with the
    propagated pixels it grows from, so it needs no seam (composite's seam would diffuse every frame a second
    time)."""
    if generated is None or share <= 0.0:
        out, matte = composite(frames, diffusion_fill(frames, holes, propagation, diffusion=diffusion),
                               holes, config.mask.feather, propagation, seam=0)
    else:
        out, matte = composite(frames, generated, holes, config.mask.feather, propagation,
                               plate_px(config.propagation.seam, holes.shape[2]), region, share,
                               diffusion)
    return _steady(frames, holes, out, matte, config, propagation, estimator), matte


def _steady(frames: np.ndarray, holes: np.ndarray, out: np.ndarray, matte: np.ndarray, config: InpaintConfig,
            propagation: Propagation | None, estimator: FlowEstimator) -> np.ndarray:
    """The fill of what no frame sees averaged along the completed flow (engine/stabilise.py). Propagation's own
    flows are used; after its cache was loaded they are estimated again the same way, so a reused run gives the
    same frames."""
    pc = config.propagation
    unseen = matte == GENERATED
    if pc.steady_radius <= 0 or propagation is None or not unseen.any():
        return out
    if propagation.flows is None:
        propagation.flows = clip_flows(frames, holes, pc, estimator)
        propagation.exposure = clip_light(frames, holes, pc, propagation.flows, config.train.seed)[1]
    return steady_unseen(out, unseen, propagation.flows, pc.steady_radius, chain_tolerance(pc, out.shape[2]),
                         pc.steady_still_radius, propagation.exposure)


def _propagation(frames: np.ndarray, holes: np.ndarray, config: InpaintConfig, wd: "_Workdir",
                 emit: Callable[[ProgressEvent], None], estimator: FlowEstimator, diffusion: "str | Blend"
                 ) -> Propagation | None:
    """Real pixels for the hole from other frames (engine/propagate.py), cached in the work directory."""
    pc = config.propagation
    if not pc.enabled or holes.shape[0] < 2:
        return None
    cache = wd.file("propagation.npz")
    if cache is not None and cache.is_file():
        try:
            cached = load_propagation(cache)
            if cached.reached.shape == holes.shape:  # else another clip's, put there by hand
                return cached
        except (OSError, ValueError, KeyError, InputError):
            pass  # a damaged cache is recomputed, never trusted
    start = time.monotonic()
    result = propagate_clip(
        frames, holes, pc, estimator, config.train.seed,
        progress=lambda i, n, message: emit(ProgressEvent("flow", i, n, time.monotonic() - start, message=message)),
        log=wd.log, diffusion=diffusion)
    share = float(result.reached.sum()) / max(int(holes.sum()), 1)
    wd.log(f"propagation: {share:.1%} of the hole from other frames in {time.monotonic() - start:.1f} s")
    if cache is not None:
        save_propagation(cache, result)
    return result


def _check_while_training(trainer: VideoTrainer, scorer: BandJudge, config: InpaintConfig, wd: "_Workdir") -> None:
    """Log the self-check's scores every `propagation.check_every` steps: the curve that shows whether more
    steps would change the choice (docs/evaluation.md). Training is never stopped by it."""

    def check(step: int) -> None:
        verdict = scorer.verdict(trainer.generate_midway(), config.propagation.check_margin)
        if verdict is not None:
            wd.log(f"self-check at step {step}: model {verdict.model_psnr:.2f} dB, diffusion "
                   f"{verdict.diffusion_psnr:.2f} dB on the held-out band")

    trainer.on_check, trainer.check_every = check, config.propagation.check_every


def _self_check(frames: np.ndarray, holes: np.ndarray, propagation: Propagation | None, generated: np.ndarray,
                region, band: np.ndarray | None, wd: "_Workdir", emit: Callable[[ProgressEvent], None],
                notices: list[str], margin_db: float = 0.0, blend: bool = False,
                diffusion: "str | Blend" = "telea") -> float:
    """The model's share in the fill of what no frame sees (0: per-frame `diffusion` alone; engine/self_check.py);
    logged."""
    if band is None:
        return 1.0
    verdict = judge(frames, holes, propagation, generated, region, band, margin_db=margin_db, blend=blend,
                    diffusion=diffusion)
    line = verdict.line() if verdict is not None else "self-check skipped: no known pixels next to the unseen hole"
    notices.append(line)
    wd.log(line)
    emit(ProgressEvent("generate", message=line))
    return verdict.share if verdict is not None else 1.0
