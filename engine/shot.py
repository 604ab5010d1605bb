"""Long shots: a clip longer than `shot.window` frames is cut into overlapping windows, each trained as its own
internal-learning run (api.inpaint), and the windows' results are cross-faded inside the hole where they overlap.

Why windows: the model learns one clip; a 2,000-frame plate as one clip would need the whole shot in memory and a
schedule hundreds of times longer. A window is what one run can hold, and windows are independent, so they can run
on several GPUs at once (engine/shot_ray.py). Each window keeps its own folder in the work directory
(`window_0003/`: the run's checkpoint, and its result at source resolution), so an interrupted shot resumes window
by window and a finished window is never trained again.

Not to be confused with engine/windows.py: the centred windows of N frames one trained model generates from.
"""
from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from .config import InpaintConfig
from .result import GENERATED
from vinpaint.errors import InputError, OtherRunError
from vinpaint.files import atomic_write, atomic_write_text

DONE = "done.json"
"""Written last in a window's folder: the window is finished and its result may be joined."""
DEFAULT_CLUSTER_CPUS = 4
"""Cores a window asks for on a Ray cluster without GPUs: the fast preset's step gains little beyond 4 threads."""
ATTEMPTS = "attempts.log"
"""One line per time a window was started (time, host, process): shows retries and proves nothing re-ran."""
RESULT_ARRAYS = ("frames.npy", "hole.npy", "matte.npy")
"""A finished window's result at source resolution, what the join reads."""
EXTRAS = ("generated.npy", "flows.npy")
"""Kept only when asked (WindowJob.keep_extras): the raw generation and the generated flows at working size."""
KEPT_BY_TIDY = frozenset({"done.json", ATTEMPTS, "history.npy", "log.txt", "config.json", "run.json"})
"""What tidy() leaves of a window: its record, attempts, loss history, log and settings (a few kB)."""


@dataclass(frozen=True)
class Window:
    """Frames start..stop-1 of the shot, trained as one run."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"window_{self.index:04d}"

    def __len__(self) -> int:
        return self.stop - self.start


def plan_windows(t_count: int, window: int, overlap: int) -> list[Window]:
    """Frames of a shot -> windows of `window` frames spread evenly from the first frame to the last, neighbours
    sharing at least `overlap` frames. A shot of at most `window` frames is one window of all of it."""
    if t_count <= window:
        return [Window(0, 0, t_count)]
    if overlap >= window:
        raise InputError(f"setting shot.overlap ({overlap}) must be smaller than shot.window ({window}): windows "
                         "that share all their frames never move on")
    count = math.ceil((t_count - overlap) / (window - overlap))
    starts = [i * (t_count - window) // (count - 1) for i in range(count)]  # whole numbers: the last is exact
    return [Window(i, start, start + window) for i, start in enumerate(starts)]


def join_weights(frame: int, windows: list[Window]) -> list[tuple[Window, float]]:
    """The windows holding `frame` with their share of it: each window's weight rises linearly from its first frame
    and falls to its last, normalised, so across two windows' overlap the later one fades in linearly (its share at
    overlap frame k of L is (k+1)/(L+1)) and a frame held by one window is that window's alone."""
    holding = [w for w in windows if w.start <= frame < w.stop]
    if not holding:
        raise ValueError(f"frame {frame} is in no window")
    raw = [(w, float(min(frame - w.start + 1, w.stop - frame))) for w in holding]
    if len(raw) == 1:
        return [(raw[0][0], 1.0)]
    total = sum(r for _, r in raw)
    return [(w, r / total) for w, r in raw]


def check_windows(config: InpaintConfig, t_count: int) -> list[Window]:
    """The shot's windows, with one sentence when a window is too short for the settings' batches."""
    windows = plan_windows(t_count, config.shot.window, config.shot.overlap)
    if len(windows) > 1 and config.shot.window < config.batch_span:
        n, step = config.train.batch_size, max(config.train.intervals) if config.uses_flow else 1
        raise InputError(f"setting shot.window is {config.shot.window} frames but batches of {n} frames at "
                         f"interval {step} need at least {config.batch_span}; raise shot.window")
    return windows


# ---- one window --------------------------------------------------------------------------------------------------

@dataclass
class WindowJob:
    """Everything one window's run needs; plain data, so it can travel to another process or machine."""

    window: Window
    frames: np.ndarray
    """[n,H,W,3] source frames of the window."""
    masks: np.ndarray
    """bool [n,H,W]."""
    config: InpaintConfig
    folder: Path
    """The window's own folder in the shot's work directory (shared by every machine that runs windows)."""
    references: dict[int, np.ndarray] = field(default_factory=dict)
    """Painted frames by index within the window."""
    keep_extras: bool = False
    """Also keep the raw generation and the generated flows (EXTRAS), for --save-generated / --save-flows."""

    def key(self, with_feather: bool = False) -> str:
        """What decides this window's result, except how long to train and how it is composed (as api.fingerprint;
        `with_feather`: as an earlier version keyed it)."""
        from .api import fingerprint

        digest = hashlib.sha256(fingerprint(self.frames, self.masks, self.config, with_feather).encode())
        for index, image in sorted(self.references.items()):
            digest.update(str(index).encode())
            digest.update(np.ascontiguousarray(image).tobytes())
        return digest.hexdigest()

    def budget(self) -> list:
        return [self.config.train.max_steps, self.config.train.max_seconds]



def finished(job: WindowJob, damaged: Callable[[str], None] | None = None) -> dict | None:
    """The window's record when it already finished with these frames, settings and budget; None when it must run.
    InputError when its folder holds a run of other frames or settings. `damaged(why)`: called with a few words when
    the window finished but its saved arrays are not whole or not what it saved (it must run again)."""
    try:
        record = json.loads((job.folder / DONE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or (record.get("key") != job.key()
                                        and record.get("key") != job.key(with_feather=True)):  # an earlier version's
        raise OtherRunError(f"the work directory's {job.folder.name} holds a run of other frames or settings; use "
                         "--restart or another work directory")
    if record.get("budget") != job.budget() or not all((job.folder / name).is_file() for name in RESULT_ARRAYS):
        return None  # another budget, or a finished shot whose work directory was tidied: train it again
    if record.get("composition") != job.config.composition():
        return None  # steadied otherwise: inpaint composes it again from the window's cached result
    why = _results_damage(job, record)
    if why is not None:  # damaged (a copy cut short, a disk that filled, a file replaced): run again, from the
        if damaged is not None:  # window's own checkpoint
            damaged(why)
        return None
    return record


SAVED_ARRAYS = (*RESULT_ARRAYS, "history.npy")
"""What done.json's "arrays" describes (shape, dtype, SHA-256 of the data) and finished() verifies."""


def _describe(array: np.ndarray) -> dict:
    """What a saved array must be: its shape, dtype (with byte order) and a digest of its data in C order."""
    return {"shape": list(array.shape), "dtype": array.dtype.str,
            "sha256": hashlib.sha256(np.ascontiguousarray(array)).hexdigest()}


def _kind(described: dict) -> str:
    """'uint8 (6, 96, 160, 3)' for an array's description, however odd the description."""
    try:
        return f"{np.dtype(described.get('dtype'))} {tuple(described.get('shape'))}"
    except (TypeError, ValueError):
        return f"{described.get('dtype')} {described.get('shape')}"


def _results_damage(job: WindowJob, record: dict) -> str | None:
    """None when a finished window's result arrays and loss history load in the window's shape and, for a window
    whose done.json describes them (every version since it did), are the very arrays it saved; else why not."""
    loaded = {}
    for name in SAVED_ARRAYS:
        try:
            loaded[name] = np.load(job.folder / name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return f"its {name} cannot be read (cut short?)"
    frames, hole, matte, history = (loaded[name] for name in SAVED_ARRAYS)
    if not (frames.shape == job.frames.shape and hole.shape == matte.shape == job.frames.shape[:3] and
            history.ndim == 2 and history.shape[1] == 6):
        return "its arrays are not in the window's shape"
    described = record.get("arrays")
    if described is None:
        return None  # finished by a version that did not describe its arrays: the checks above are all there is
    for name in SAVED_ARRAYS:
        want = described.get(name) if isinstance(described, dict) else None
        try:
            have = _describe(loaded[name])
        except (OSError, ValueError):  # a file shorter than its header says
            return f"its {name} cannot be read (cut short?)"
        if not isinstance(want, dict) or have != {key: want.get(key) for key in have}:
            if isinstance(want, dict) and (want.get("dtype"), want.get("shape")) != (have["dtype"], have["shape"]):
                return f"its {name} is {_kind(have)}, not the {_kind(want)} it saved"
            return f"its {name} is not the array it saved (its content changed)"
    return None


def run_window(job: WindowJob, device: str | None = None, threads: int | None = None,
               progress=None, should_stop: Callable[[], bool] | None = None, checked: bool = False) -> dict:
    """Train one window (or continue it from its checkpoint) and keep its result at source resolution in its
    folder. Returns its record. A window that already finished returns at once: a retried task trains nothing
    twice. `checked`: the caller has just found it unfinished (finished() hashes the window's frames and arrays,
    so it is not asked twice in one process)."""
    from .api import inpaint

    record = None if checked else finished(job)
    if record is not None:
        return record
    if threads:  # this window's share of the machine's cores: torch's and OpenCV's (DIS, the frame pool)
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    job.folder.mkdir(parents=True, exist_ok=True)
    with open(job.folder / ATTEMPTS, "a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {socket.gethostname()} {os.getpid()}\n")
    if not job.masks.any():  # the object is out of shot for these frames: nothing to fill, nothing to learn
        empty = np.zeros(job.masks.shape, bool)
        arrays = (job.frames, empty, empty.astype(np.uint8), np.zeros((0, 6), np.float32))
        steps, seconds, notices = 0, 0.0, []
        extras = ()
    else:
        result = inpaint(job.frames, job.masks, job.config, workdir=job.folder, progress=progress,
                         should_stop=should_stop, device=device, references=job.references or None)
        matte = result.matte if result.matte is not None else \
            result.hole.astype(np.uint8) * np.uint8(GENERATED)  # no propagation: every hole pixel generated
        arrays = (result.frames, result.hole, matte, result.history)
        steps, seconds, notices = int(result.steps), float(result.seconds), list(result.notices)
        extras = [(name, array) for name, array in zip(EXTRAS, (result.generated, result.flows))
                  if job.keep_extras and array is not None]
        del result
        gc.collect()  # a run's trainer holds its tensors in reference cycles; in a shot's many runs they pile up
    described = {}
    for name, array in [*zip(SAVED_ARRAYS, arrays), *extras]:
        array = np.ascontiguousarray(array)
        atomic_write(job.folder / name, lambda f, a=array: np.save(f, a))
        if name in SAVED_ARRAYS:
            described[name] = _describe(array)
    record = {"key": job.key(), "budget": job.budget(), "composition": job.config.composition(),
              "start": job.window.start, "stop": job.window.stop,
              "steps": steps, "seconds": seconds, "notices": notices, "arrays": described}
    atomic_write_text(job.folder / DONE, json.dumps(record) + "\n")
    return record


# ---- the shot ----------------------------------------------------------------------------------------------------

class WindowRunner(Protocol):
    """Runs windows: one after another here (SerialRunner) or many at once on Ray (shot_ray.RayRunner)."""

    def submit(self, job: WindowJob) -> None: ...

    def finished(self, block: bool) -> Iterator[tuple[Window, dict]]: ...

    def close(self) -> None: ...


class SerialRunner:
    """Each window trained in this process as it is submitted, with the caller's progress bar and Ctrl-C."""

    def __init__(self, device: str | None = None, progress=None, should_stop=None, threads: int | None = None,
                 announce: Callable[[str], None] | None = None):
        self.device, self.progress, self.should_stop, self.threads = device, progress, should_stop, threads
        self.announce = announce or (lambda text: None)
        self.done: list[tuple[Window, dict]] = []

    def submit(self, job: WindowJob) -> None:
        self.announce(f"window {job.window.index + 1}: frames {job.window.start}-{job.window.stop - 1}")
        self.done.append((job.window, run_window(job, self.device, self.threads, self.progress, self.should_stop,
                                                 checked=True)))  # inpaint_shot asked finished() just before

    def finished(self, block: bool) -> Iterator[tuple[Window, dict]]:
        done, self.done = self.done, []
        yield from done

    def close(self) -> None:
        pass


class ShotSource(Protocol):
    """Where a shot's frames come from a window at a time (media/shot_input.py reads them from files)."""

    count: int

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """-> ([n,H,W,3] frames, bool [n,H,W] masks) of frames start..stop-1, read in increasing order."""
        ...


class ArraySource:
    """A shot already in memory (the library's callers, tests)."""

    def __init__(self, frames: np.ndarray, masks: np.ndarray):
        self.frames, self.masks, self.count = frames, masks, len(frames)

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        return self.frames[start:stop], self.masks[start:stop].astype(bool)


@dataclass
class ShotResult:
    windows: int
    trained: int
    """Windows computed in this run, a model trained or not (the others had finished before)."""
    steps: int
    seconds: float
    """Training time summed over windows (on several workers, more than the wall time)."""
    history: np.ndarray
    """[S,6] every window's loss history one after another, steps counted on across windows."""
    notices: list[str]
    hole_share: float
    samples: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    """A few frames kept for the before/after picture: index -> (source, hole, result)."""


def inpaint_shot(source: ShotSource, config: InpaintConfig, workdir: Path | str,
                 emit: Callable[[int, np.ndarray, np.ndarray], None], *, runner: WindowRunner | None = None,
                 references: dict[int, np.ndarray] | None = None, keep: tuple[int, ...] = (),
                 announce: Callable[[str], None] | None = None,
                 window_done: Callable[[Window, dict, bool], None] | None = None,
                 keep_extras: bool = False) -> ShotResult:
    """Inpaint a shot window by window and call `emit(index, frame, matte)` for every frame in order, as soon as
    the windows holding it are done. Only the windows being read or trained, and their results on disk, are ever
    held, so memory does not grow with the shot. `keep`: frame indices whose source, hole and result come back in
    ShotResult.samples. `window_done(window, record, reused)`: each window as its result is ready, whether it
    finished now or in an earlier run (reused). `keep_extras`: windows trained now also keep EXTRAS in their
    folders."""
    config.check()
    workdir = Path(workdir)
    windows = check_windows(config, source.count)
    _claim(workdir, config, source.count)
    runner = runner or SerialRunner()
    say = announce or (lambda text: None)
    done_hook = window_done or (lambda window, record, reused: None)
    records: dict[int, dict] = {}
    joiner = _Joiner(workdir, windows, emit, keep)
    trained = 0
    kept: dict[int, np.ndarray] = {}
    try:
        for window in windows:
            frames, masks = source.window(window.start, window.stop)
            kept.update({i: frames[i - window.start].copy() for i in keep
                         if window.start <= i < window.stop and i not in kept})
            refs = {i - window.start: image for i, image in (references or {}).items()
                    if window.start <= i < window.stop}
            job = WindowJob(window, frames, masks, config, workdir / window.name, refs, keep_extras)
            record = finished(job, lambda why, i=window.index, folder=job.folder: say(
                f"window {i + 1}/{len(windows)} finished earlier but {why}; running it again"
                f"{' from its checkpoint' if (folder / 'checkpoint.pt').is_file() else ''}"))
            del frames, masks
            if record is not None:
                records[window.index] = record
                done_hook(window, record, True)
                say(f"window {window.index + 1}/{len(windows)} finished earlier; reusing its result")
            else:
                runner.submit(job)
                trained += 1
            del job
            for done, record in runner.finished(block=False):
                records[done.index] = record
                done_hook(done, record, False)
            joiner.advance(records)
        while len(records) < len(windows):
            for done, record in runner.finished(block=True):
                records[done.index] = record
                done_hook(done, record, False)
                say(f"window {done.index + 1}/{len(windows)} done: {record['steps']} steps in "
                    f"{record['seconds']:.0f} s")
            joiner.advance(records)
    finally:
        runner.close()
    joiner.advance(records)
    histories, offset = [], 0
    for window in windows:
        history = np.load(workdir / window.name / "history.npy")
        if history.size:
            history = history.copy()
            history[:, 0] += offset
            offset = int(history[-1, 0])
        histories.append(history.reshape(-1, 6))
    notices = sorted({n for r in records.values() for n in r.get("notices", []) if n})
    return ShotResult(len(windows), trained, sum(r["steps"] for r in records.values()),
                      sum(r["seconds"] for r in records.values()), np.concatenate(histories), notices,
                      joiner.hole_pixels / max(joiner.pixels, 1),
                      {i: (kept[i], hole, out) for i, (hole, out) in joiner.samples.items()})


def tidy(workdir: Path | str) -> int:
    """After a shot's outputs are in place: remove each window's bulky files (its result at source resolution,
    checkpoint, flow and propagation caches), keeping KEPT_BY_TIDY. Returns the bytes freed. The same shot run
    again then trains its windows again, since their results are gone (finished() checks)."""
    freed = 0
    for folder in sorted(Path(workdir).glob("window_[0-9][0-9][0-9][0-9]")):
        for path in folder.iterdir():
            if path.is_file() and not path.is_symlink() and path.name not in KEPT_BY_TIDY:
                freed += path.stat().st_size
                path.unlink()
    return freed


def check_claim(workdir: Path, config: InpaintConfig, t_count: int) -> bool:
    """Raises InputError where `workdir` holds another shot, or one cut into other windows (reading only: the
    command line's --check); True where the shot's run.json is still to be written."""
    if not (Path(workdir) / "run.json").is_file():
        return True
    if recorded_run(workdir) != _plan(config, t_count):
        raise InputError(f"the work directory {workdir} holds another run (other frames, or a shot cut into "
                         "other windows); use --restart or another work directory")
    return False


def recorded_run(workdir: Path | str) -> dict | None:
    """A work directory's run.json as it reads, or None where there is none or it cannot be read (damaged, cut
    short, nested past reading). A shot's holds its plan: {"shot": {"frames", "window", "overlap"}}."""
    try:
        recorded = json.loads((Path(workdir) / "run.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return recorded if isinstance(recorded, dict) else None


def _plan(config: InpaintConfig, t_count: int) -> dict:
    return {"shot": {"frames": t_count, "window": config.shot.window, "overlap": config.shot.overlap}}


def _claim(workdir: Path, config: InpaintConfig, t_count: int) -> None:
    """The shot's own run.json: a work directory holds one shot, cut one way."""
    workdir.mkdir(parents=True, exist_ok=True)
    if check_claim(workdir, config, t_count):
        atomic_write_text(workdir / "run.json", json.dumps(_plan(config, t_count)) + "\n")
    config.save(workdir / "config.json")


class _Joiner:
    """Emits finished frames in order, cross-fading inside the hole where windows overlap; outside the hole every
    window's result is the source itself, so it is taken bit-exact."""

    def __init__(self, workdir: Path, windows: list[Window], emit, keep: tuple[int, ...]):
        self.workdir, self.windows, self.emit, self.keep = workdir, windows, emit, set(keep)
        self.next = 0
        self.count = windows[-1].stop
        self.open: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.samples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.hole_pixels = self.pixels = 0

    def _arrays(self, window: Window):
        if window.index not in self.open:
            folder = self.workdir / window.name
            self.open[window.index] = tuple(np.load(folder / name, mmap_mode="r", allow_pickle=False)
                                            for name in ("frames.npy", "hole.npy", "matte.npy"))
        return self.open[window.index]

    def advance(self, records: dict[int, dict]) -> None:
        while self.next < self.count:
            shares = join_weights(self.next, self.windows)
            if any(w.index not in records for w, _ in shares):
                return
            self._emit_frame(self.next, shares)
            self.next += 1
            for index in [i for i in self.open if self.windows[i].stop <= self.next]:
                del self.open[index]  # closes the memory map

    def _emit_frame(self, t: int, shares: list[tuple[Window, float]]) -> None:
        parts = [(self._arrays(w), t - w.start, share) for w, share in shares]
        (frames, hole, matte), local, _ = max(parts, key=lambda p: p[2])
        out = np.array(frames[local])
        hole_t = np.array(hole[local])
        for (_, other, _), j, _ in parts:
            hole_t |= other[j]
        if len(parts) > 1 and hole_t.any():
            mixed = sum(share * arrays[0][j][hole_t].astype(np.float64) for arrays, j, share in parts)
            if out.dtype.kind != "f":
                mixed = np.clip(np.rint(mixed), 0, np.iinfo(out.dtype).max)
            out[hole_t] = mixed.astype(out.dtype)
        self.hole_pixels += int(hole_t.sum())
        self.pixels += hole_t.size
        if t in self.keep:
            self.samples[t] = (hole_t, out)
        self.emit(t, out, np.array(matte[local]))
