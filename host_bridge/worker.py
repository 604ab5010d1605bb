"""The training process: one job folder in, result frames out. Started by the daemon, one per device.

Training runs in its own process so that a crash (segfault, out of memory) fails one job instead of the daemon,
cancelling is a signal instead of a cooperative thread dance, and the daemon's socket never waits on the GIL.
SIGTERM (from the daemon, or from the kernel when the daemon dies: PR_SET_PDEATHSIG) makes the engine write a
checkpoint at the next step and exit, so the job resumes where it stopped.

Events (events.py) go to the daemon as JSON lines on the file descriptor given by --progress-fd.
Exit status: 0 done, 3 stopped (checkpoint kept), 4 failed (reason sent as an "error" event first).
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from vinpaint.engine import InpaintConfig, InputError, TrainingCancelled
from vinpaint.engine.checks import EMPTY_MASK, check_holes
from vinpaint.engine.result import GENERATED, HISTORY_TERMS
from vinpaint.engine.workfiles import remove_left_behind
from vinpaint.errors import CheckpointAhead, DamagedWorkFile, OtherRunError, out_of_memory
from vinpaint.files import atomic_write_bytes
from vinpaint.host_bridge import events as ev
from vinpaint.host_bridge.store import atomic_write_json, is_disk_full
from vinpaint.openmp import deterministic_cublas, prefer_sleeping_threads
from vinpaint.protocol.codec import DTYPES

EXIT_DONE, EXIT_STOPPED, EXIT_FAILED = 0, 3, 4
MASK_HOLE_MIN = {"u1": 128, "u2": 32768}
"""A mask pixel is a hole above half of full scale (SPEC.md section 5); f4 uses > 0.5."""
LOCK_WAIT_S = 120.0
STOP = {"flag": False}
"""Set by SIGTERM; installed before torch is imported so an early stop request is never lost."""


def _on_term(signum, frame) -> None:  # noqa: ARG001
    STOP["flag"] = True


class Events:
    """JSON lines to the daemon; a closed pipe means the daemon is gone, which asks training to stop."""

    def __init__(self, fd: int) -> None:
        self.file = os.fdopen(fd, "w", buffering=1, encoding="utf-8") if fd >= 0 else None
        self.broken = False

    def send(self, event: ev.WorkerEvent) -> None:
        if self.file is None or self.broken:
            return
        try:
            self.file.write(ev.encode(event))
        except (BrokenPipeError, OSError):
            self.broken = True


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the daemon dies (Linux), so an orphan checkpoints and exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _lock(job_dir: Path) -> int:
    """Hold the job's worker.lock so an orphan of a killed daemon and its successor never train the same job."""
    fd = os.open(job_dir / "worker.lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError("another training process still holds this job") from None
            time.sleep(0.2)


def read_item(job_dir: Path, record: dict[str, Any], index: int) -> tuple[np.ndarray, np.ndarray]:
    """One uploaded frame [H,W,C] in the job's dtype and its hole, bool [H,W]."""
    h, w, c = record["height"], record["width"], record["channels"]
    frame = np.fromfile(job_dir / "inputs" / "frames" / f"{index:05d}.bin",
                        dtype=DTYPES[record["dtype"]]).reshape(h, w, c)
    return frame, read_hole(job_dir, record, index)


def read_hole(job_dir: Path, record: dict[str, Any], index: int) -> np.ndarray:
    """One uploaded mask as its hole, bool [H,W]."""
    mdt = record["mask_dtype"]
    mask = np.fromfile(job_dir / "inputs" / "masks" / f"{index:05d}.bin",
                       dtype=DTYPES[mdt]).reshape(record["height"], record["width"])
    return mask > 0.5 if mdt == "f4" else mask >= MASK_HOLE_MIN[mdt]


def check_shot_holes(job_dir: Path, record: dict[str, Any], config: InpaintConfig) -> None:
    """A long shot's whole mask before any window trains, as the command checks its own (cli/shots.py): one empty
    everywhere, or covering a whole frame (drawn or grown by mask.dilation), is refused naming the shot's frame.
    Without it the daemon trained the windows before such a frame and then named its index in its window; an
    empty mask "finished" with copies of the plate. Reads one mask at a time; a streaming job's masks are not all
    here yet, so each of its windows is checked as it is read (StoreSource)."""
    drawn = False
    for index in range(int(record["frames"])):
        hole = read_hole(job_dir, record, index)
        check_holes(hole[None], config.mask.dilation, index)
        drawn = drawn or bool(hole.any())
    if not drawn:
        raise InputError(EMPTY_MASK)


def load_inputs(job_dir: Path, record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """frames [T,H,W,C] in the job's dtype and holes bool [T,H,W] from the uploaded items."""
    t, h, w, c = record["frames"], record["height"], record["width"], record["channels"]
    frames = np.empty((t, h, w, c), dtype=DTYPES[record["dtype"]])
    holes = np.empty((t, h, w), dtype=bool)
    for i in range(t):
        frames[i], holes[i] = read_item(job_dir, record, i)
    return frames, holes


class UploadTimeout(Exception):
    """A streaming job's window did not get its items in time; the text says which frames and what to do."""


class Uploads:
    """A streaming job's items as the daemon stores them (`job.start` with `stream`): `wait(start, stop)` returns
    once every frame, mask and reference of frames start..stop-1 is on disk, reporting phase "upload" meanwhile.
    An item counts once its digest file is there (the daemon writes it after the data, store.py). The files are
    looked at every POLL_S seconds, and a stop request (SIGTERM) is seen as quickly."""

    POLL_S = 0.5

    def __init__(self, job_dir: Path, record: dict[str, Any], events: Events, should_stop, wait_s: float) -> None:
        self.job_dir, self.record, self.events = job_dir, record, events
        self.should_stop, self.wait_s = should_stop, wait_s
        self.streaming = bool(record.get("stream"))
        self.seen: set[tuple[str, int]] = set()

    def here(self, kind: str, index: int) -> bool:
        if (kind, index) not in self.seen and (self.job_dir / "inputs" / f"{kind}s" / f"{index:05d}.sha256").is_file():
            self.seen.add((kind, index))
        return (kind, index) in self.seen

    def wait(self, start: int, stop: int) -> None:
        if not self.streaming:
            return  # every item was uploaded before the start
        references = set(self.record.get("references") or [])
        needed = [(kind, i) for i in range(start, stop) for kind in ("frame", "mask")] + \
            [("reference", i) for i in range(start, stop) if i in references]
        deadline = time.monotonic() + self.wait_s
        said = -1
        while True:
            missing = sum(1 for kind, i in needed if not self.here(kind, i))
            if not missing:
                return
            if self.should_stop():
                raise TrainingCancelled("stopped while waiting for uploads")
            if time.monotonic() > deadline:
                raise UploadTimeout(f"frames {start}-{stop - 1} were not uploaded within {self.wait_s:g} s; upload "
                                    "them and start the job again")
            if missing != said:
                self.events.send(ev.Progress(phase="upload", step=len(needed) - missing, total=len(needed),
                                             message=f"waiting for frames {start}-{stop - 1} ({missing} items "
                                                     "still to upload)"))
                said = missing
            time.sleep(self.POLL_S)


class StoreSource:
    """A long shot's uploaded items read a window at a time (engine/shot.py ShotSource), so the training process
    never holds more than the windows in flight; a streaming job's window is read once its items are uploaded."""

    def __init__(self, job_dir: Path, record: dict[str, Any], uploads: Uploads, dilation: int) -> None:
        self.job_dir, self.record, self.count, self.uploads = job_dir, record, int(record["frames"]), uploads
        self.dilation, self.drawn = dilation, False

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        self.uploads.wait(start, stop)
        items = [read_item(self.job_dir, self.record, i) for i in range(start, stop)]
        holes = np.stack([hole for _, hole in items])
        if self.uploads.streaming:  # an uploaded job's whole mask was checked before training (check_shot_holes)
            check_holes(holes, self.dilation, start)  # names the shot's frame, not the window's
            self.drawn = self.drawn or bool(holes.any())
        return np.stack([np.ascontiguousarray(f[..., :3]) for f, _ in items]), holes


def read_reference(job_dir: Path, record: dict[str, Any], index: int) -> np.ndarray:
    """One uploaded painted clean frame [H,W,3] (its alpha, if any, dropped)."""
    h, w, c = record["height"], record["width"], record["channels"]
    return np.fromfile(job_dir / "inputs" / "references" / f"{index:05d}.bin",
                       dtype=DTYPES[record["dtype"]]).reshape(h, w, c)[..., :3].copy()


def load_references(job_dir: Path, record: dict[str, Any]) -> dict[int, np.ndarray]:
    """{frame index: painted clean frame [H,W,3]} from the uploaded references."""
    return {int(i): read_reference(job_dir, record, int(i)) for i in record.get("references") or []}


class StoreReferences(Mapping):
    """A long shot's reference frames as inpaint_shot asks for each window's: only those uploaded so far are
    listed (a streaming job's later ones may still be on their way; Uploads.wait has waited for the window's
    own), each read from the store once."""

    def __init__(self, job_dir: Path, record: dict[str, Any], uploads: Uploads) -> None:
        self.job_dir, self.record, self.uploads = job_dir, record, uploads
        self.indices = [int(i) for i in record.get("references") or []]
        self.loaded: dict[int, np.ndarray] = {}

    def __iter__(self) -> Iterator[int]:
        return iter([i for i in self.indices if not self.uploads.streaming or self.uploads.here("reference", i)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self.indices:
            raise KeyError(index)
        if index not in self.loaded:
            self.loaded[index] = read_reference(self.job_dir, self.record, index)
        return self.loaded[index]


def write_frame(job_dir: Path, index: int, source: np.ndarray, rgb: np.ndarray, matte: np.ndarray) -> None:
    """One result frame with the source alpha passed through untouched, and its matte (uint8 [H,W]: 0 outside the
    hole, 1 propagated, 2 generated) beside it, each written atomically."""
    out_dir = job_dir / "results"
    out = source.copy()
    out[..., :3] = rgb
    atomic_write_bytes(out_dir / f"{index:05d}.bin", memoryview(np.ascontiguousarray(out)).cast("B"))
    atomic_write_bytes(out_dir / f"{index:05d}.matte.bin", np.ascontiguousarray(matte, dtype=np.uint8).tobytes())


def write_finish(job_dir: Path, count: int, history: np.ndarray, terms: tuple[str, ...]) -> None:
    """The loss history for `job.history`, then complete.json last, so it vouches for everything before it."""
    out_dir = job_dir / "results"
    rows = np.ascontiguousarray(np.asarray(history, dtype="<f4").reshape(-1, len(terms) + 1))
    atomic_write_bytes(out_dir / "history.f4", rows.tobytes())  # may be empty: a clip filled without training
    atomic_write_json(out_dir / "complete.json", {"frames": int(count), "finished": time.time(),
                                                  "history_terms": list(terms)})


def write_results(job_dir: Path, frames: np.ndarray, rgb: np.ndarray, history: np.ndarray,
                  terms: tuple[str, ...], matte: np.ndarray | None = None) -> None:
    """A whole clip's results (write_frame for each), the history, complete.json last."""
    for i in range(frames.shape[0]):
        layer = matte[i] if matte is not None else np.zeros(frames.shape[1:3], np.uint8)
        write_frame(job_dir, i, frames[i], rgb[i], layer)
    write_finish(job_dir, frames.shape[0], history, terms)


class ShotProgress:
    """A long shot's progress for the daemon: windows finished, plus the share trained of the window in hand, as
    one count of 1000 per window (phase "window"), so the job's progress never runs ahead of the shot."""

    def __init__(self, events: Events, count: int) -> None:
        self.events, self.count, self.done = events, count, 0

    def say(self, text: str, within: float = 0.0, losses: dict | None = None, elapsed: float = 0.0) -> None:
        step = int(1000 * (min(self.done, self.count) + min(max(within, 0.0), 1.0)))
        self.events.send(ev.Progress(phase="window", step=min(step, 1000 * self.count), total=1000 * self.count,
                                     elapsed_s=elapsed, losses=losses or {}, message=text))

    def within(self, event: ev.Progress) -> None:
        """The engine's own progress inside the window being trained (serial runs only)."""
        frac = event.step / event.total if event.phase == "train" and event.total > 0 else 0.0
        self.say(f"window {self.done + 1}/{self.count}: {event.phase} {event.message}".strip(), frac,
                 event.losses, event.elapsed_s)

    def finished(self, window, record: dict, reused: bool) -> None:
        """inpaint_shot's window_done: a window reused from an earlier run counts as finished too (inpaint_shot
        says so itself)."""
        self.done += 1
        if not reused:
            self.say(f"window {window.index + 1}/{self.count} done: {record['steps']} steps")


def run_long_shot(job_dir: Path, record: dict[str, Any], config: InpaintConfig, device: str, events: Events,
                  should_stop, ray_address: str | None, uploads: Uploads, ray_cpus: int | None = None) -> None:
    """A job longer than shot.window: trained window by window (engine/shot.py), each window kept in its own
    folder under work/ (so a stopped job resumes window by window), every result frame written as soon as the
    windows holding it are done."""
    from vinpaint.engine.shot import SerialRunner, check_windows, inpaint_shot

    count = len(check_windows(config, record["frames"]))
    if not uploads.streaming:
        check_shot_holes(job_dir, record, config)
    shot = ShotProgress(events, count)
    if ray_address is not None:
        from vinpaint.engine.shot_ray import RayRunner

        runner = RayRunner(ray_address or None, device=device, should_stop=should_stop,
                           **({"cpus_per_window": ray_cpus} if ray_cpus else {}))
        shot.say(f"Ray: {runner.capacity} windows at once on {runner.device}")
    else:
        runner = SerialRunner(device, progress=shot.within, should_stop=should_stop)

    def emit(index: int, rgb: np.ndarray, matte: np.ndarray) -> None:
        source, _ = read_item(job_dir, record, index)
        write_frame(job_dir, index, source, rgb, matte)

    references = StoreReferences(job_dir, record, uploads) if record.get("references") else None
    source = StoreSource(job_dir, record, uploads, config.mask.dilation)
    result = inpaint_shot(source, config, job_dir / "work", emit, runner=runner, references=references,
                          announce=shot.say, window_done=shot.finished)
    if uploads.streaming and not source.drawn:  # its masks empty to the last (its windows trained nothing)
        raise InputError(EMPTY_MASK)
    events.send(ev.Progress(phase="done", step=result.steps, total=result.steps, elapsed_s=float(result.seconds),
                            eta_s=0.0, message=f"{result.windows} windows done"))
    write_finish(job_dir, record["frames"], result.history, HISTORY_TERMS)


def _retrained_if_refused(job_dir: Path, record: dict[str, Any], events: Events, attempt: Callable[[], Any]) -> Any:
    """attempt(); a job whose work directory the engine does not take for this run starts over in an empty one:
    one seeded from a sibling (host_bridge/siblings.py) that differs after all (a checkpoint further than this
    job plans; another device's 'auto' precision continues, engine/api.py _held_precision), or a job resumed by a daemon of another version. A job's work
    directory is its own, so nothing of anyone else's is lost."""
    try:
        return attempt()
    except DamagedWorkFile as exc:  # kept for a person to look at; the job trains again without it
        aside = Path(exc.path).with_name(f"{Path(exc.path).name}.damaged.{time.time_ns()}")
        os.replace(exc.path, aside)
        events.send(ev.Progress(phase="setup", message=f"{Path(exc.path).name} in the job's work directory is damaged "
                                                       f"(set aside as {aside.name}): training again"))
        return attempt()
    except (OtherRunError, CheckpointAhead):
        pass
    whose = f"job {record['seeded_from']}" if record.get("seeded_from") else "an earlier run"
    events.send(ev.Progress(phase="setup", message=f"the work of {whose} does not fit this run: starting from "
                                                   "the beginning"))
    shutil.rmtree(job_dir / "work")
    (job_dir / "work").mkdir()
    return attempt()


def run(job_dir: Path, device: str, events: Events, parent: int, ray_address: str | None = None,
        stream_wait_s: float = 600.0, ray_cpus: int | None = None) -> int:
    from vinpaint.engine import inpaint  # torch and OpenCV: loaded once the signals are in place

    def should_stop() -> bool:
        return STOP["flag"] or events.broken or os.getppid() != parent

    try:
        lock = _lock(job_dir)
        # a killed trainer's half-written checkpoint or cache: this process holds the job now (on Ray, a window's
        # task of the killed trainer may still be writing its own folder: those are left)
        remove_left_behind(job_dir / "work", windows=ray_address is None)
        record = json.loads((job_dir / "job.json").read_text())
        config = InpaintConfig.from_dict(record["config"])
        uploads = Uploads(job_dir, record, events, should_stop, stream_wait_s)
        if record["frames"] > config.shot.window:
            _retrained_if_refused(job_dir, record, events, lambda: run_long_shot(
                job_dir, record, config, device, events, should_stop, ray_address, uploads, ray_cpus))
            events.send(ev.Done())
            os.close(lock)
            return EXIT_DONE
        uploads.wait(0, record["frames"])  # one window: nothing trains before the whole clip is here
        events.send(ev.Progress(phase="setup", message="loading frames"))
        frames, holes = load_inputs(job_dir, record)
        if should_stop():
            return EXIT_STOPPED
        rgb = np.ascontiguousarray(frames[..., :3])
        references = load_references(job_dir, record)
        result = _retrained_if_refused(job_dir, record, events, lambda: inpaint(
            rgb, holes, config, workdir=job_dir / "work", progress=events.send, should_stop=should_stop,
            device=device, references=references or None))
        events.send(ev.Progress(phase="done", step=result.steps, total=result.steps, elapsed_s=float(result.seconds),
                                eta_s=0.0, message="writing result frames"))
        matte = result.matte if result.matte is not None else result.hole.astype(np.uint8) * np.uint8(GENERATED)
        write_results(job_dir, frames, result.frames, result.history, HISTORY_TERMS, matte)
        events.send(ev.Done())
        os.close(lock)
        return EXIT_DONE
    except TrainingCancelled:
        events.send(ev.Stopped())
        return EXIT_STOPPED
    except InputError as exc:
        events.send(ev.Failed("input", str(exc)))
        return EXIT_FAILED
    except UploadTimeout as exc:
        events.send(ev.Failed("upload", str(exc)))
        return EXIT_FAILED
    except BaseException as exc:  # a crash of one job must come back as its reason, never kill the daemon
        if out_of_memory(exc):
            detail = "" if isinstance(exc, MemoryError) else (str(exc).strip().splitlines() or [""])[0]
            events.send(ev.Failed("memory", f"the training process ran out of memory on {device}"
                                            f"{': ' + detail if detail else ''}"[:500]))
            return EXIT_FAILED
        traceback.print_exc(file=sys.stderr)
        if is_disk_full(exc):
            msg = f"out of disk space on the daemon ({os.strerror(exc.errno)})"  # type: ignore[attr-defined]
            events.send(ev.Failed("disk_full", msg))
        else:
            events.send(ev.Failed("crash", f"training crashed: {type(exc).__name__}: {exc}"[:500]))
        return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vinpaint training process (started by the daemon)")
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--progress-fd", type=int, default=-1)
    parser.add_argument("--parent", type=int, default=0, help="the daemon's pid")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="train a long shot's windows as tasks on this Ray cluster")
    parser.add_argument("--ray-cpus", type=int, default=None, metavar="N",
                        help="cores each window asks for on a Ray cluster without GPUs")
    parser.add_argument("--stream-wait", type=float, default=600.0, metavar="S",
                        help="seconds a streaming job waits for the items of its next window")
    args = parser.parse_args(argv)
    deterministic_cublas()
    prefer_sleeping_threads()  # before run() imports torch
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the daemon's terminal: the daemon decides
    _die_with_parent()
    parent = args.parent or os.getppid()
    events = Events(args.progress_fd)
    if os.getppid() != parent:
        return EXIT_STOPPED
    code = run(args.job_dir, args.device, events, parent, args.ray, args.stream_wait, args.ray_cpus)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(EXIT_STOPPED)
