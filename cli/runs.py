"""Running the engine from a terminal: the progress bar, Ctrl-C as a checkpoint, the work directory and its lock,
and what is printed before and after a run."""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from vinpaint.engine import InpaintConfig, ProgressEvent
from vinpaint.engine.workfiles import foreign_entries, remove_left_behind
from vinpaint.errors import InputError, OtherRunError, TrainingCancelled
from vinpaint.files import PARTIAL_NAME, remove_partials
from vinpaint.stopping import away_from_the_terminal, stop_signals
from vinpaint.media.io import Clip
from vinpaint.media.writers import is_incomplete_note


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


class _SecondCtrlCQuits:
    """While inside: the first Ctrl-C (or SIGTERM: a render farm stopping the job, a shutdown) sets `requested`
    and calls `_first`; a second quits at once (KeyboardInterrupt). The handlers before are put back on leaving.
    Only the main thread can install signal handlers; elsewhere nothing changes."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._interrupt) for sig in stop_signals()}
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in (self._previous or {}).items():
            signal.signal(sig, previous)

    def _interrupt(self, signum, frame) -> None:
        if signum == signal.SIGHUP:
            away_from_the_terminal()
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._first()

    def _first(self) -> None:
        raise NotImplementedError


def warn_notices(clip: Clip) -> None:
    """What the reader noticed about the inputs (Clip.notices), one warning line each."""
    for notice in clip.notices:
        print(f"vinpaint: warning: {notice}", file=sys.stderr, flush=True)


class StopRequest(_SecondCtrlCQuits):
    """The first Ctrl-C asks the engine to checkpoint and stop after the current step; a second one quits at once."""

    def __init__(self, bar: ProgressBar, pause_after: int | None = None):
        super().__init__()
        self.bar, self.pause_after = bar, pause_after

    def _first(self) -> None:
        self.bar.write("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)")

    def raise_if_requested(self, kept: str) -> None:
        """After work that no step could stop (flow, propagation, a run without a model): a Ctrl-C asked during it
        stops before the outputs are written, `kept` saying what stays for the next run."""
        if self.requested:
            raise TrainingCancelled(f"stopped before the outputs were written ({kept})")

    def __call__(self) -> bool:
        if self.pause_after is not None and self.bar.first_step is not None:
            if self.bar.last_step - self.bar.first_step >= self.pause_after:
                return True
        return self.requested


def to_continue(args: argparse.Namespace) -> str:
    """How to continue a stopped run: the same command again, less its --restart (which would discard the
    checkpoint just saved and stop at the same place again)."""
    return "run the same command without --restart to continue" if getattr(args, "restart", False) else \
        "run the same command again to continue"


LOCK = ".lock"
"""The file in a work directory that a running `vinpaint inpaint` holds locked (flock)."""


def other_run(workdir: Path, what: str, elsewhere: str, exc: OtherRunError | None = None) -> InputError:
    """The sentence for OtherRunError: `workdir` holds a run of other `what`; give `elsewhere`, or --restart. With
    the settings that differ (OtherRunError.differences, a few), how to continue that run instead."""
    differences = exc.differences if exc is not None else ()
    if exc is not None and exc.damaged:
        return InputError(f"the work directory {workdir} has a damaged run.json (its record of which clip and "
                          f"settings it holds), so vinpaint cannot tell whether its checkpoint is this run's; give "
                          f"another {elsewhere}, or add --restart to start over in it (its checkpoint is then "
                          "discarded)")
    if differences and len(differences) <= 4:
        given = " ".join(f"--set {d}" for d in differences)
        return InputError(f"the work directory {workdir} holds a run of other settings ({', '.join(differences)} "
                          f"there); add {given} to continue it, give another {elsewhere}, or add --restart to start "
                          "over in it (its checkpoint is then discarded)")
    return InputError(f"the work directory {workdir} holds a run of other {what}; give another {elsewhere}, or add "
                      "--restart to start over in it (its checkpoint is then discarded)")


def _run_entries(workdir: Path) -> list[Path]:
    """A work directory's entries but its lock and what a kill left half-written (those say nothing of whose it is)."""
    return [p for p in workdir.iterdir() if p.name != LOCK and not PARTIAL_NAME.fullmatch(p.name)]


def clear_workdir(workdir: Path) -> None:
    """--restart: empty a work directory (keeping its lock), refusing one that vinpaint did not make."""
    if not workdir.exists():
        return
    entries = _run_entries(workdir) if workdir.is_dir() else None
    if entries is None or (entries and not (workdir / "run.json").is_file()):
        raise InputError(f"{workdir} is not a vinpaint work directory (no run.json); not deleting it.")
    outputs = sorted(e.name for e in entries if e.name.endswith(".config.json"))  # an output's side file
    if outputs:  # written there before outputs inside a work directory were refused
        raise InputError(f"the work directory {workdir} holds another run's outputs ({outputs[0]} ...), which "
                         "--restart would delete; move them out first.")
    foreign = foreign_entries(workdir, ignore=frozenset({LOCK}))
    if foreign:
        more, them = (f" and {len(foreign) - 1} more", "them") if len(foreign) > 1 else ("", "it")
        raise InputError(f"the work directory {workdir} holds {foreign[0].relative_to(workdir)}{more}, which "
                         f"vinpaint did not write and --restart would delete; move {them} out first.")
    # run.json last: a restart stopped half-way leaves a folder that still says it is vinpaint's (before
    # 2026-12-02 it could be left without it, and every later run refused the folder as a user's)
    for entry in sorted(entries, key=lambda e: e.name == "run.json"):
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
    if not (workdir / "run.json").is_file() and _run_entries(workdir):
        raise InputError(f"the work directory {workdir} holds files that vinpaint did not put there (it has no "
                         "run.json); give a new or empty folder as --work-dir.")


def _locked(path: Path, mode: int, refusal: str, shared: bool = False) -> int:
    """An open descriptor of `path` (made if need be, readable by all whatever the umask, so another user's run
    can take the same lock) holding its flock, exclusive or `shared`; InputError(refusal) when another process
    holds it in a way that excludes ours."""
    fd = os.open(path, mode | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o644)
    except OSError:
        pass
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(refusal) from None
    return fd


class WorkdirLock:
    """Holds the work directory's LOCK for one run: a second run on the same work directory (the same -o twice at
    once) is refused with a sentence instead of the two overwriting each other's checkpoints."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.fd = -1

    def __enter__(self) -> "WorkdirLock":
        if self.workdir.exists() and not self.workdir.is_dir():
            raise InputError(f"the work directory {self.workdir} is a file; give another --work-dir.")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.fd = _locked(self.workdir / LOCK, os.O_RDWR, f"another vinpaint run is using the work directory "
                          f"{self.workdir}; wait for it to finish, or give another -o or --work-dir.")
        remove_left_behind(self.workdir)  # a kill's half-written caches and checkpoints: nobody else writes here now
        return self

    def __exit__(self, *exc) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lock_folder(shared: Path = Path("/tmp/vinpaint-locks")) -> Path:
    """Where output locks live: one folder in /tmp for every user and every TMPDIR (a farm job's own TMPDIR, another
    user writing the same output), sticky like /tmp; a folder of this user's own where that one is not usable (a
    link, a file, or another user's folder that is not open to all: never followed or changed)."""
    try:
        try:
            os.mkdir(shared)
            os.chmod(shared, 0o1777)  # made here: a real folder of ours (mkdir never follows a link)
        except FileExistsError:
            pass
        info = os.lstat(shared)
        if stat.S_ISDIR(info.st_mode) and (info.st_mode & 0o1777) == 0o1777:
            return shared
    except OSError:
        pass
    return _own_lock_folder()


def _own_lock_folder() -> Path:
    own = Path(tempfile.gettempdir()) / f"vinpaint-locks-{os.getuid()}"
    own.mkdir(mode=0o700, exist_ok=True)
    return own


SIDE_FILES_KEY = "\0side files"
"""Added to a run's stem to name the lock on the files beside its outputs (no path holds a NUL)."""


class OutputLock:
    """Holds a lock for each output of one run, so that two runs writing the same output at once (with their
    own --work-dir, which WorkdirLock cannot see) are refused with a sentence instead of both saying they wrote
    it while their files replace each other's. Under it, what a killed run left half-written beside these
    outputs is removed. The locks live in /tmp (lock_folder: no file in the user's folders), so a run on another
    machine writing the same outputs of a shared disk at the same time is not seen: its temporaries may be taken
    for a killed run's, and it fails at its end with the file named (its work directory keeps the result, so
    the same command again writes it)."""

    def __init__(self, plan, extras: tuple[str, ...] = ()) -> None:
        # one lock a target (a video, a PNG folder, a frame pattern) and one for the side files: not one a frame.
        # The side files' lock is keyed apart from the folder of the same name (shot.mp4's stem is `shot`, which a
        # run writing shot/v2.mp4 locks as a folder above it: a review found the two refused each other)
        targets = {os.path.realpath(path) for path, _ in plan.targets}
        self.paths = sorted(targets | {os.path.realpath(plan.stem) + SIDE_FILES_KEY})
        # and every folder above them, shared: a run writing a PNG folder holds it exclusively, so it and a run
        # writing inside it (a frame pattern there, whose frames the folder's swap would take) exclude each other,
        # while runs writing side by side in one folder do not (before, session 34: `-o res` and
        # `-o res/%05d.png` at once both said they wrote their frames, and one's replaced the other's)
        self.above = sorted({str(folder) for path in targets | {os.path.realpath(plan.stem)}
                             for folder in Path(path).parents} - targets)
        self.named = plan.targets[0][0]  # what a refusal names: the first output, as the user gave it
        self.written = [path for path, _ in plan.paths(extras)]
        self.note = plan.incomplete_note
        self.fds: list[int] = []

    def __enter__(self) -> "OutputLock":
        folder = lock_folder()
        refusal = f"another vinpaint run is writing {self.named} (or files beside, inside or around it); wait for it " \
            "to finish, or give another -o."
        try:
            for path, shared in [(path, False) for path in self.paths] + [(path, True) for path in self.above]:
                name = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
                try:  # read only: another user's lock file locks too
                    self.fds.append(_locked(folder / name, os.O_RDONLY, refusal, shared))
                except PermissionError:  # another user's, closed to us (made by an older vinpaint): our own then
                    self.fds.append(_locked(_own_lock_folder() / name, os.O_RDONLY, refusal, shared))
        except BaseException:
            self.__exit__()
            raise
        by_folder: dict[Path, set[str]] = {}
        for path in self.written:
            by_folder.setdefault(Path(path).parent, set()).add(Path(path).name)
        for parent, names in by_folder.items():
            remove_partials(parent, names)
        if is_incomplete_note(self.note):
            print(f"vinpaint: warning: an earlier run was stopped while it put its outputs in place: {self.named} "
                  f"and the files beside it may be two runs' until this run writes them all again ({self.note}).",
                  file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def inpaint(*args, **kwargs):
    """vinpaint.engine.inpaint, loaded (with torch) on the first run: a command that stops at a bad argument or
    file answers in a fraction of a second, not after the seconds torch takes to load."""
    from vinpaint.engine import inpaint as engine_inpaint

    return engine_inpaint(*args, **kwargs)


def run_engine(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig, workdir: Path, quiet: bool = False,
               pause_after: int | None = None, device: str | None = None,
               references: dict[int, np.ndarray] | None = None):
    """inpaint() with a progress bar and Ctrl-C handling; TrainingCancelled carries where to continue from."""
    bar = ProgressBar(enabled=not quiet)
    try:
        with StopRequest(bar, pause_after) as stop:
            result = inpaint(frames, masks, config, workdir=workdir, progress=bar, should_stop=stop, device=device,
                             references=references or None)
            stop.raise_if_requested("the result is kept")
            return result
    finally:
        bar.close()


class OutputsInProgress(_SecondCtrlCQuits):
    """While the outputs are written, a first Ctrl-C (or SIGTERM) waits for them: they are replaced one after
    another, and stopping between two left some from this run and some from the last (a PNG folder of this run
    beside a video and config of the one before). A second quits at once and says the outputs may be mixed."""

    def __init__(self, say: Callable[[str], None] | None = None, restart: bool = False):
        super().__init__()
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.again = "without --restart (which would train again)" if restart else "again"

    def __exit__(self, kind, exc, tb) -> None:
        super().__exit__(kind, exc, tb)
        if kind is KeyboardInterrupt:
            self.say("vinpaint: warning: stopped while writing the outputs: they may be a mix of this run's and an "
                     f"earlier one's; run the same command {self.again} to write them all (its result is kept)")

    def _first(self) -> None:
        self.say("\nfinishing the outputs first, so that they all come from this run (Ctrl-C again to quit at once)")


def hole_share(masks: np.ndarray, dilation: int) -> str:
    """The share of the pixels the engine fills: the mask as grown by --dilate, the drawn one beside it."""
    drawn = 100 * float(masks.astype(bool).mean())
    if dilation <= 0:
        return f"hole {drawn:.1f}% of the pixels"
    from vinpaint.engine.composite import dilate_holes

    sample = masks[np.unique(np.linspace(0, len(masks) - 1, min(len(masks), 12)).round().astype(int))]
    grown = 100 * float(dilate_holes(sample.astype(bool), dilation).mean())  # 12 frames: a share, not a census
    return f"hole {grown:.1f}% of the pixels ({drawn:.1f}% as drawn, grown by {dilation} px)"


def describe_run(clip: Clip, masks: np.ndarray, config: InpaintConfig, workdir: Path, quiet: bool) -> None:
    width, height = clip.size
    depth = {"half": "half-float", "float": "float"}.get(clip.sample) or \
        f"{16 if clip.frames.dtype == np.uint16 else 8}-bit"
    numbers = f", frames {clip.numbers[0]}-{clip.numbers[-1]}" if clip.numbers else ""
    print(f"input: {clip.source} ({clip.frames.shape[0]} frames{numbers}, {width}x{height}, {depth}, "
          f"{float(clip.fps):g} fps); {hole_share(masks, config.mask.dilation)}")
    if not quiet:
        print("config: " + config.to_json().replace("\n", "\n  "))
    resumed = (workdir / "checkpoint.pt").exists() or (workdir / "result.npz").exists()
    print(f"work directory: {workdir}" + (" (continuing the run found there)" if resumed else ""), flush=True)


def report(written: dict[str, Path], result, seconds: float) -> None:
    print(f"done: {result.steps} training steps, {result.seconds:.0f} s of training, {seconds:.0f} s in this run")
    for what, path in written.items():
        print(f"  {what}: {path}")


