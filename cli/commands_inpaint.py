"""`vinpaint inpaint`: remove the masked object from a clip and write the result beside the pictures of the run.

Everything that can be checked before training (paths, codecs, mask against video, the engine's own checks) is
checked first, so a mistake costs seconds, not the training. The work directory keeps the flow, checkpoints and the
finished result: running the same command again continues an interrupted run, or re-writes a finished one at once.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vinpaint.engine import PRESETS, VARIANTS, InpaintConfig, ProgressEvent, inpaint, make_config, validate
from vinpaint.engine.devices import check_device
from vinpaint.engine.errors import InputError, TrainingCancelled
from vinpaint.engine.flowviz import color_wheel, flow_magnitude_scale, flows_to_rgb
from vinpaint.engine.io import Clip, read_inputs, read_references
from vinpaint.engine.pictures import write_before_after, write_loss_curve
from vinpaint.engine.sequences import Pattern, looks_like_pattern, parse_pattern, parse_range
from vinpaint.engine.shot_input import count_frames
from vinpaint.commands_shot import add_ray_options, run_shot
from vinpaint.engine.writers import CODECS, check_replaceable, resolve_codec, sequence_sample, to_uint8, \
    write_bytes_atomic, write_image_sequence, write_png, write_png_sequence, write_video



# ---- where things go ----------------------------------------------------------------------------------------------

@dataclass
class OutputPlan:
    """The outputs of one run. The first target names the run: `<stem>.config.json`, `<stem>.work/` ..."""

    targets: list[tuple[Path, str]]
    """(path, codec): a video, a folder with codec "png", or a frame pattern with codec "sequence"."""
    numbers: list[int] = field(default_factory=list)
    """The clip's frame numbers, which frame-pattern outputs keep (set by check())."""

    @classmethod
    def from_args(cls, outputs: list[str], codec: str) -> "OutputPlan":
        if codec != "auto" and codec not in CODECS:
            raise InputError(f"unknown codec '{codec}'; choose one of auto, {', '.join(CODECS)}.")
        targets = []
        for name in outputs:
            path = Path(name).expanduser()
            if not os.path.lexists(path) and looks_like_pattern(name):
                parse_pattern(name)  # a malformed pattern is refused here, before anything is read
                targets.append((path, "sequence"))
                continue
            kind = "png" if path.is_dir() else resolve_codec(path, codec)
            targets.append((path, kind))
        return cls(targets)

    def pattern(self, path: Path) -> Pattern:
        return parse_pattern(str(path))

    def check(self, clip: Clip, inputs: list[Path], workdir: Path | None = None, overwrite: bool = False,
              extras: tuple[str, ...] = ()) -> None:
        """Checks that need the source: codec against frame size, no output on top of an input or of the work
        directory, and nothing replaced that vinpaint did not write (check_outputs)."""
        self.numbers = clip.frame_numbers
        for path, kind in self.targets:
            if kind == "sequence":
                sequence_sample(self.pattern(path).extension, clip.frames.dtype, clip.sample)
            elif clip.frames.dtype.kind == "f":
                raise InputError(f"the source has float samples, which {'PNG' if kind == 'png' else 'a video'} "
                                 f"output {path} cannot hold without clipping values above 1 and below 0; write a "
                                 "frame pattern such as clean.%04d.exr.")
            elif kind != "png":
                resolve_codec(path, kind, clip.size)
        written = [path for path, _ in self.paths(extras)]
        for source in list(inputs):  # a frame pattern's inputs are its files
            if not os.path.lexists(source) and looks_like_pattern(str(source)):
                inputs = inputs + [parse_pattern(str(source)).path(n) for n in self.numbers]
        for path in written:
            for source in inputs:
                if _same_or_inside(source, path):
                    raise InputError(f"output {path} is or holds the input {source}; write the result elsewhere.")
            if workdir is not None and (_same_or_inside(path, workdir) or _same_or_inside(workdir, path)):
                raise InputError(f"output {path} and the work directory {workdir} overlap; replacing one would "
                                 "delete the other, so give them separate places.")
        self.check_outputs(overwrite, extras)

    def paths(self, extras: tuple[str, ...] = ()) -> list[tuple[Path, bool]]:
        """Everything a run writes beside its work directory: (path, is a folder). `extras`: ".generated",
        ".flows" when asked for."""
        out = []
        for path, kind in self.targets:
            if kind == "sequence":
                out += [(self.pattern(path).path(n), False) for n in self.numbers]
            else:
                out.append((path, kind == "png"))
        out += [(self.beside(s), False) for s in (".config.json", ".before_after.png", ".loss.png")]
        return out + [(self.beside(s), True) for s in (".matte",) + tuple(extras)]

    def check_outputs(self, overwrite: bool = False, extras: tuple[str, ...] = ()) -> None:
        """Refuse (one sentence) before any work, and again before writing, to replace what vinpaint did not write."""
        for path, folder in self.paths(extras):
            check_replaceable(path, folder=folder, overwrite=overwrite)

    @property
    def stem(self) -> Path:
        first, kind = self.targets[0]
        if kind == "sequence":
            return self.pattern(first).base
        return first if kind == "png" else first.with_suffix("")

    def beside(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)

    @property
    def default_workdir(self) -> Path:
        return self.beside(".work")


def _same_or_inside(inner: Path, outer: Path) -> bool:
    """True when `inner` is `outer` or lies inside it, after following links (so a link cannot hide an input)."""
    a, b = Path(os.path.realpath(inner)), Path(os.path.realpath(outer))
    if a == b or b in a.parents:
        return True
    try:
        return os.path.samefile(inner, outer)  # hard links and bind mounts
    except OSError:
        return False


def parse_fps(text: str) -> Fraction:
    """'24', '29.97' or '30000/1001' -> a frame rate from 1/1000 to 1000 fps; InputError otherwise."""
    try:
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError, TypeError):
        raise InputError(f"--fps takes a frame rate such as 24, 29.97 or 30000/1001, not '{text}'.") from None
    if not Fraction(1, 1000) <= fps <= 1000:
        raise InputError(f"--fps must be positive and at most 1000, not {text}.")
    return fps.limit_denominator(1_000_000)


# ---- the config -----------------------------------------------------------------------------------------------------

def parse_setting(text: str) -> tuple[str, Any]:
    """'train.max_steps=10' -> ('train.max_steps', 10); values are JSON where they parse, text otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--set takes KEY=VALUE (e.g. train.max_seconds=300), not '{text}'.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


MAX_CONFIG_BYTES = 1 << 20
"""A saved config is a few KB; `--config` refuses anything over 1 MB."""


def build_config(args: argparse.Namespace) -> InpaintConfig:
    """Preset and variant (or a saved config.json), then the named options, then --set overrides."""
    if args.config:
        try:
            with open(args.config, "rb") as handle:  # bounded: --config /dev/zero must not fill the memory
                text = handle.read(MAX_CONFIG_BYTES + 1)
            if len(text) > MAX_CONFIG_BYTES:
                raise ValueError(f"it is over {MAX_CONFIG_BYTES // 1024} KB, too big to be a config")
            data = json.loads(text.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("it is not a JSON object")
            config = InpaintConfig.from_dict(data)
        except (OSError, ValueError, TypeError, AttributeError, RecursionError, InputError) as exc:
            raise InputError(f"cannot use {args.config} as a config: {str(exc).rstrip('.')}.") from None
    else:
        config = make_config(args.preset, args.variant)
    overrides: dict[str, Any] = {}
    for key, value in (("train.seed", args.seed), ("mask.dilation", args.dilate), ("mask.feather", args.feather),
                       ("resolution.work_width", args.work_width)):
        if value is not None:
            overrides[key] = value
    overrides.update(parse_setting(item) for item in args.set or [])
    return config.replace(**overrides) if overrides else config  # the engine's one check: type and range


# ---- running the engine with a progress bar and Ctrl-C --------------------------------------------------------------

class ProgressBar:
    """ProgressEvents -> one tqdm bar per phase on stderr, with the engine's ETA and the current losses."""

    LABELS = {"flow": "optical flow", "train": "training"}
    """Phases drawn as bars; the others ("setup", "generate", "done") are one-line notices."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar, self.phase = enabled, None, None
        self.first_step: int | None = None
        self.last_step = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.phase == "train":
            self.first_step = event.step - 1 if self.first_step is None else self.first_step
            self.last_step = event.step
        if event.phase not in self.LABELS:
            self.close()
            if event.message and event.message != "done":
                self.write(event.message)
            return
        if event.phase != self.phase or self.bar is None:
            self._open(event)
        if self.bar is not None:
            self.bar.total = max(event.total, event.step)
            self.bar.update(max(event.step - self.bar.n, 0))
            parts = [f"eta {_clock(event.eta_s)}"] if event.eta_s is not None else []
            parts += [f"{k}={v:.4g}" for k, v in sorted(event.losses.items())]
            self.bar.set_postfix_str(" ".join(parts), refresh=False)

    def _open(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        self.close()
        self.phase = event.phase
        if self.enabled:
            self.bar = tqdm(total=event.total, initial=event.step, desc=self.LABELS[event.phase], unit="step",
                            file=sys.stderr, dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 5.0,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def write(self, text: str) -> None:
        """Notices are printed even when quiet: they say something about the result (e.g. a loss switched off)."""
        if self.bar is not None:
            self.bar.clear()
        print(text, file=sys.stderr, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.phase = None, None


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class StopRequest:
    """The first Ctrl-C asks the engine to checkpoint and stop after the current step; a second one quits at once."""

    def __init__(self, bar: ProgressBar, pause_after: int | None = None):
        self.bar, self.pause_after = bar, pause_after
        self.requested = False
        self._previous = None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a render farm stopping the job, a shutdown) is a Ctrl-C: checkpoint, then stop
            self._previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in (self._previous or {}).items():
            signal.signal(sig, previous)

    def _interrupt(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.bar.write("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)")

    def __call__(self) -> bool:
        if self.pause_after is not None and self.bar.first_step is not None:
            if self.bar.last_step - self.bar.first_step >= self.pause_after:
                return True
        return self.requested


LOCK = ".lock"
"""The file in a work directory that a running `vinpaint inpaint` holds locked (flock)."""


def clear_workdir(workdir: Path) -> None:
    """--restart: empty a work directory (keeping its lock), refusing one that vinpaint did not make."""
    if not workdir.exists():
        return
    entries = [p for p in workdir.iterdir() if p.name != LOCK] if workdir.is_dir() else None
    if entries is None or (entries and not (workdir / "run.json").is_file()):
        raise InputError(f"{workdir} is not a vinpaint work directory (no run.json); not deleting it.")
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_workdir(workdir: Path) -> None:
    """A work directory is vinpaint's own: new, empty, or holding run.json. A user's folder given as --work-dir is
    refused before anything is written into it (its config.json or log.txt would be replaced)."""
    if not os.path.lexists(workdir):
        return
    if not workdir.is_dir():
        raise InputError(f"the work directory {workdir} is not a folder; give another --work-dir.")
    if not (workdir / "run.json").is_file() and any(p.name != LOCK for p in workdir.iterdir()):
        raise InputError(f"the work directory {workdir} holds files that vinpaint did not put there (it has no "
                         "run.json); give a new or empty folder as --work-dir.")


def check_writable(paths: list[Path]) -> None:
    """Every path can be created: its nearest existing folder is a folder we may write in, on a writable file
    system. Checked before training, so a read-only or mistyped output costs seconds, not the training."""
    for path in paths:
        parent = Path(os.path.abspath(path)).parent
        while not os.path.lexists(parent) and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(f"cannot write {path}: {parent} is a file, not a folder.")
        if os.access(parent, os.W_OK | os.X_OK):
            continue
        try:
            read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        if read_only:
            raise InputError(f"cannot write {path}: the file system is read-only; write the result elsewhere (-o).")
        raise InputError(f"cannot write {path}: no permission to write in {parent}.")


class WorkdirLock:
    """Holds the work directory's LOCK for one run: a second run on the same work directory (the same -o twice at
    once) is refused with a sentence instead of the two overwriting each other's checkpoints."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.fd = -1

    def __enter__(self) -> "WorkdirLock":
        import fcntl

        if self.workdir.exists() and not self.workdir.is_dir():
            raise InputError(f"the work directory {self.workdir} is a file; give another --work-dir.")
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.workdir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"another vinpaint run is using the work directory {self.workdir}; wait for it to "
                             "finish, or give another -o or --work-dir.") from None
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def check_pause(pause_after: int | None) -> None:
    if pause_after is not None and pause_after < 1:
        raise InputError(f"--pause-after must be at least 1 step, not {pause_after}.")


def parse_references(items: list[str] | None) -> dict[int, str]:
    """['1001=paint.exr', ...] -> {1001: 'paint.exr'}; InputError for anything else, or a frame given twice."""
    references: dict[int, str] = {}
    for item in items or []:
        frame, sep, image = str(item).partition("=")
        if not sep or not frame.strip().isdigit() or not frame.strip().isascii() or not image:
            raise InputError(f"--reference takes FRAME=IMAGE (e.g. --reference 1001=paint.1001.exr), not '{item}'.")
        number = int(frame.strip())
        if number in references:
            raise InputError(f"--reference gives frame {number} twice; give one painting per frame.")
        references[number] = image
    return references


def run_engine(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig, workdir: Path, quiet: bool = False,
               pause_after: int | None = None, device: str | None = None,
               references: dict[int, np.ndarray] | None = None):
    """inpaint() with a progress bar and Ctrl-C handling; TrainingCancelled carries where to continue from."""
    bar = ProgressBar(enabled=not quiet)
    try:
        with StopRequest(bar, pause_after) as stop:
            return inpaint(frames, masks, config, workdir=workdir, progress=bar, should_stop=stop, device=device,
                           references=references or None)
    finally:
        bar.close()


# ---- writing ----------------------------------------------------------------------------------------------------

def loss_history(history: np.ndarray, terms=None) -> list[tuple[int, dict[str, float]]]:
    """A history [S, 1+K] (step, then the K `terms`; the engine's HISTORY_TERMS by default) ->
    [(step, {loss: value})], leaving out terms that were never used."""
    from vinpaint.engine.train import HISTORY_TERMS

    terms = tuple(terms or HISTORY_TERMS)
    used = [i for i in range(1, len(terms) + 1) if history.size and np.any(history[:, i] != 0)]
    return [(int(row[0]), {terms[i - 1]: float(row[i]) for i in used}) for row in history]


def write_outputs(plan: OutputPlan, clip: Clip, result, save_generated: bool = False, save_flows: bool = False,
                  truth: np.ndarray | None = None, overwrite: bool = False) -> dict[str, Path]:
    """The result in every requested form, then config, before/after strip and loss curve beside the first.
    Checks again first that nothing there is a user's (a file may have appeared while training ran)."""
    plan.check_outputs(overwrite, extras(save_generated, save_flows and result.flows is not None))
    written = write_frames(plan, clip, result.frames, overwrite)
    if save_generated:
        generated = np.clip(result.generated, 0.0, 1.0)
        raw = (generated * 65535 + 0.5).astype(np.uint16) if clip.frames.dtype == np.uint16 else to_uint8(generated)
        written["raw generated frames"] = plan.beside(".generated")
        write_png_sequence(written["raw generated frames"], raw, names=clip.names or None, overwrite=overwrite)
    if save_flows and result.flows is not None:
        written["flow pictures"] = write_flow_pictures(plan.beside(".flows"), result.flows, overwrite)
    if result.matte is not None:
        written["matte (white: propagated from other frames, grey: generated)"] = plan.beside(".matte")
        write_png_sequence(plan.beside(".matte"), matte_picture(result.matte), names=clip.names or None,
                           overwrite=overwrite)
    written["before/after"] = write_before_after(plan.beside(".before_after.png"), clip.frames, result.hole,
                                                 result.frames, truth)
    written["loss curve"] = write_loss_curve(plan.beside(".loss.png"), loss_history(result.history),
                                             f"{result.config.variant} ({result.config.preset}), {result.steps} steps")
    written["config"] = plan.beside(".config.json")
    write_bytes_atomic(written["config"], (result.config.to_json() + "\n").encode("utf-8"))
    return written


def write_frames(plan: OutputPlan, clip: Clip, frames: np.ndarray, overwrite: bool = False) -> dict[str, Path]:
    """The result frames to every target of the plan: videos, PNG folders and frame patterns (which keep the
    clip's frame numbers). Returns {what: where}."""
    written: dict[str, Path] = {}
    for path, kind in plan.targets:
        if kind == "png":
            write_png_sequence(path, frames, names=clip.names or None, overwrite=overwrite)
            written[f"frames ({'16' if frames.dtype == np.uint16 else '8'}-bit PNG)"] = path
        elif kind == "sequence":
            pattern = plan.pattern(path)
            files = write_image_sequence(pattern, frames, clip.frame_numbers, clip.sample, overwrite)
            sample = sequence_sample(pattern.extension, frames.dtype, clip.sample)
            written[f"frames ({sample} {pattern.extension[1:].upper()}, {files[0].name} to {files[-1].name})"] = path
        else:
            write_video(path, frames, clip.fps, kind)
            written[f"video ({kind}, {float(clip.fps):g} fps)"] = path
    return written


def matte_picture(matte: np.ndarray) -> np.ndarray:
    """uint8 [T,H,W] engine matte -> grey PNG values: 0 source, 128 generated, 255 propagated from another frame."""
    from vinpaint.engine.propagate import GENERATED, PROPAGATED

    picture = np.zeros(matte.shape, np.uint8)
    picture[matte == GENERATED] = 128
    picture[matte == PROPAGATED] = 255
    return picture


def extras(save_generated: bool, save_flows: bool) -> tuple[str, ...]:
    """The optional folders beside the first output a run writes."""
    return tuple(name for name, wanted in ((".generated", save_generated), (".flows", save_flows)) if wanted)


def write_flow_pictures(folder: Path, flows: np.ndarray, overwrite: bool = False) -> Path:
    """[T,K,h,w,2] generated flows -> folder/<frame>_<offset>.png, one colour scale per offset, plus wheel.png."""
    from vinpaint.engine.network import FLOW_OFFSETS

    frames, offsets = flows.shape[:2]
    pictures, names = [], []
    for k in range(offsets):
        scale = flow_magnitude_scale(flows[:, k])
        pictures.append(flows_to_rgb(flows[:, k], scale))
        names += [f"{t:05d}_{FLOW_OFFSETS[k]:+d}" for t in range(frames)]
    stacked = np.stack(pictures, axis=1).reshape(-1, *pictures[0].shape[1:])
    write_png_sequence(folder, stacked, names=names, overwrite=overwrite)
    write_png(folder / "wheel.png", color_wheel(128))
    return folder


# ---- the command --------------------------------------------------------------------------------------------------

def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with `vinpaint demo`."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast",
                        help="how long and how big: tiny (smoke test), fast (CPU, minutes), paper (the paper's "
                             "schedule, hours on a GPU) (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives the same result")
    parser.add_argument("--work-width", type=int, default=None, metavar="PX",
                        help="working width of the network, a multiple of 64 (default: the preset's)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override any config field by dotted name, e.g. train.max_seconds=300 (repeatable)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if present)")
    parser.add_argument("--codec", default="auto", choices=["auto", *CODECS],
                        help="video codec: auto (ffv1 for .mkv/.avi, x264-420 for .mp4, x264-444 for .mov), "
                             "ffv1 and x264rgb are lossless (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where flow, checkpoints and the finished result are kept (default: OUT.work beside "
                             "the first output, with OUT's extension dropped)")
    parser.add_argument("--restart", action="store_true",
                        help="throw away what the work directory holds (flow, checkpoints, result) and start over; "
                             "needed after changing settings, since a work directory belongs to one run")
    parser.add_argument("--pause-after", type=int, default=None, metavar="STEPS",
                        help="stop after this many training steps in this session, keeping a checkpoint; the "
                             "same command continues later")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that vinpaint did not write (without it, only outputs that vinpaint "
                             "wrote, or empty folders, are replaced, and anything else stops the run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no config print-out")


def add_clip_arguments(parser) -> None:
    """VIDEO, --mask and --output, the same for `inpaint` and `submit`."""
    parser.add_argument("video", help="a video file, a folder of frames, or a frame pattern such as plate.%%04d.exr "
                                      "or plate.####.exr (EXR, DPX, TIFF, PNG)")
    parser.add_argument("--mask", "-m", required=True,
                        help="a mask video, a folder of mask images, a frame pattern (read at the clip's frame "
                             "numbers), or one image for a static mask; white = remove")
    parser.add_argument("--output", "-o", action="append", required=True, metavar="OUT",
                        help="result video (.mp4 .mkv .mov .avi), folder for PNGs, or a frame pattern such as "
                             "clean.%%04d.exr (.exr .dpx .tif .png; keeps the clip's frame numbers); repeatable")
    parser.add_argument("--reference", action="append", default=None, metavar="FRAME=IMAGE",
                        help="a clean frame painted by hand: its pixels are taken as known inside that frame's hole "
                             "and carried through the shot; FRAME is the clip's own frame number for a frame "
                             "pattern (1001), the 0-based index for a video or folder (repeatable)")
    parser.add_argument("--frames", default=None, metavar="FIRST-LAST",
                        help="with a frame-pattern input: the first and last frame number to use, e.g. 1001-1100 "
                             "(default: every frame found, which must run without gaps)")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inpaint", help="remove the masked object from a video",
        description="Remove the masked object from a video by training the paper's model on that video alone. "
                    "OUT with an extension (.mp4 .mkv .mov .avi) is a video at the source frame rate; OUT without "
                    "one is a folder that gets a PNG sequence (16-bit if the source is). Beside the first output: "
                    "OUT.config.json, OUT.before_after.png, OUT.loss.png and the work directory OUT.work/. "
                    "Ctrl-C stops with a checkpoint; the same command again continues. A shot longer than "
                    "shot.window frames is trained window by window (docs/long_shots.md), several at once with "
                    "--ray.")
    add_clip_arguments(parser)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="dip-vid-flow",
                        help="the paper's ablation variant; dip-vid-flow is the method (default: %(default)s)")
    parser.add_argument("--config", default=None, metavar="JSON",
                        help="start from a saved config (e.g. an earlier OUT.config.json) instead of preset/variant")
    parser.add_argument("--fps", default=None,
                        help="frame rate of the output video, e.g. 24 or 30000/1001 (default: the source video's; "
                             "25 for a folder of images)")
    parser.add_argument("--invert-mask", action="store_true", help="black = remove instead of white")
    parser.add_argument("--dilate", type=int, default=None, metavar="PX",
                        help="grow the mask by this many pixels before filling (default: the preset's, 0)")
    parser.add_argument("--feather", type=int, default=None, metavar="PX",
                        help="blend the fill into the source over this many pixels inside the hole (default: 0)")
    parser.add_argument("--save-generated", action="store_true",
                        help="also write the raw generated frames (working resolution) to OUT.generated/")
    parser.add_argument("--save-flows", action="store_true",
                        help="also write the generated flows as colour pictures to OUT.flows/ (dip-vid-flow only)")
    parser.add_argument("--check", action="store_true",
                        help="check the inputs, settings, outputs and device as a run would, print the plan, and "
                             "stop there: nothing is written")
    add_engine_options(parser)
    add_ray_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = OutputPlan.from_args(args.output, args.codec)
    check_pause(args.pause_after)
    config = build_config(args)
    if args.save_flows and not config.uses_flow:
        raise InputError(f"--save-flows needs a variant with a flow head (dip-vid-flow), not {config.variant}.")
    fps = parse_fps(args.fps) if args.fps is not None else None
    device = check_device(args.device)
    if _same_or_inside(Path(args.mask), Path(args.video)) and Path(args.mask).is_file():
        raise InputError(f"the mask {args.mask} is the video itself; give the mask's own file or folder.")
    frame_range = parse_range(args.frames) if args.frames is not None else None
    painted = parse_references(args.reference)
    count = count_frames(args.video, frame_range)
    if count is not None and count > config.shot.window:
        return run_shot(args, plan, config, device, frame_range, painted, fps)
    if args.ray is not None:
        print(f"vinpaint: the clip fits one window (shot.window {config.shot.window}); training it here, not on Ray",
              file=sys.stderr)
    clip, masks = read_inputs(args.video, args.mask, invert=args.invert_mask, frame_range=frame_range)
    references = read_references(painted, clip)
    for notice in getattr(clip, "notices", ()):
        print(f"vinpaint: warning: {notice}", file=sys.stderr, flush=True)
    if fps is not None:
        clip.fps = fps
    workdir = args.work_dir or plan.default_workdir
    plan.check(clip, [Path(args.video), Path(args.mask), *map(Path, painted.values())], workdir, args.overwrite,
               extras(args.save_generated, args.save_flows))
    check_workdir(workdir)
    check_writable([path for path, _ in plan.paths(extras(args.save_generated, args.save_flows))] + [workdir])
    validate(clip.frames, masks, config)
    config.check_clip(clip.frames.shape[0])
    if args.check:
        describe_run(clip, masks, config, workdir, args.quiet)
        print(f"check passed: {config.planned_steps(clip.frames.shape[0])} training steps on {device}; nothing "
              "was written")
        return 0
    created = not os.path.lexists(workdir)
    outputs = [path for path, _ in plan.paths(extras(args.save_generated, args.save_flows))]
    with Litter(workdir, outputs, created, keep_everything=True) as litter, WorkdirLock(workdir):
        litter.keep_everything = False  # from here on, what is new is this run's own
        if args.restart:
            clear_workdir(workdir)
        describe_run(clip, masks, config, workdir, args.quiet)
        started = time.monotonic()
        try:
            result = run_engine(clip.frames, masks, config, workdir, args.quiet, args.pause_after, device,
                                references)
        except TrainingCancelled as exc:
            print(f"vinpaint: {exc} in {workdir}; run the same command again to continue.", file=sys.stderr)
            return 130
        written = write_outputs(plan, clip, result, args.save_generated, args.save_flows, overwrite=args.overwrite)
    report(written, result, time.monotonic() - started)
    return 0


class Litter:
    """Removes what this run created when it fails (a full disk, a bad checkpoint, a crash): outputs that were not
    there before, and the work directory when this run made it and it holds no checkpoint or result worth keeping.
    A work directory from an earlier run, and any checkpoint, are always kept."""

    KEEP = ("checkpoint.pt", "result.npz")

    def __init__(self, workdir: Path, outputs: list[Path], created: bool | None = None,
                 keep_everything: bool = False) -> None:
        self.workdir = Path(workdir)
        self.had_workdir = os.path.lexists(self.workdir) if created is None else not created
        self.new_outputs = [Path(p) for p in outputs if not os.path.lexists(p)]
        self.keep_everything = keep_everything
        """True until this run holds the work directory: a run refused by the lock touches nothing."""

    def __enter__(self) -> "Litter":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None or self.keep_everything:
            return
        for path in self.new_outputs:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                path.unlink(missing_ok=True)
        if not self.had_workdir and self.workdir.is_dir() and \
                not any((self.workdir / name).exists() for name in self.KEEP) and \
                not any(self.workdir.glob("window_*/checkpoint.pt")) and \
                not any(self.workdir.glob("window_*/done.json")):  # a long shot's started or finished windows
            shutil.rmtree(self.workdir, ignore_errors=True)


def describe_run(clip: Clip, masks: np.ndarray, config: InpaintConfig, workdir: Path, quiet: bool) -> None:
    width, height = clip.size
    depth = {"half": "half-float", "float": "float"}.get(clip.sample) or \
        f"{16 if clip.frames.dtype == np.uint16 else 8}-bit"
    numbers = f", frames {clip.numbers[0]}-{clip.numbers[-1]}" if clip.numbers else ""
    print(f"input: {clip.source} ({clip.frames.shape[0]} frames{numbers}, {width}x{height}, {depth}, "
          f"{float(clip.fps):g} fps); hole {100 * masks.mean():.1f}% of the pixels")
    if not quiet:
        print("config: " + config.to_json().replace("\n", "\n  "))
    resumed = (workdir / "checkpoint.pt").exists() or (workdir / "result.npz").exists()
    print(f"work directory: {workdir}" + (" (continuing the run found there)" if resumed else ""), flush=True)


def report(written: dict[str, Path], result, seconds: float) -> None:
    print(f"done: {result.steps} training steps, {result.seconds:.0f} s of training, {seconds:.0f} s in this run")
    for what, path in written.items():
        print(f"  {what}: {path}")
