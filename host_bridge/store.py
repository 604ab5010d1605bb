"""The job store on disk: one folder per job, written atomically, so a daemon killed at any moment restarts intact.

Layout (see docs/daemon.md):
    <store>/daemon.lock, daemon.json
    <store>/jobs/<job id>/job.json            the record (only the daemon writes it)
                          inputs/frames/<i>.bin + <i>.sha256, inputs/masks/<i>.bin + <i>.sha256
                          work/                the engine's workdir: config, flow, checkpoint, result.npz, log
                          work/window_NNNN/    a long shot's windows; cut to their records once the job is done
                          results/<i>.bin, <i>.matte.bin, results/history.f4, results/complete.json
                          log                  the training process's output
    <store>/trash/                             deleted jobs, removed in the background of the next start
    <store>/unreadable/                        job folders whose job.json could not be read, kept for a person
    <store>/.vinpaint-store                    the store's format; a folder without it is not taken as a store
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vinpaint.files import PARTIAL_NAME, atomic_write_bytes, fsync_dir, open_regular, remove_partials, temp_sibling
from vinpaint.protocol.codec import DTYPES
from vinpaint.protocol.content_hash import clip_hash
from vinpaint.protocol.messages import HASH_RE, MAX_TEXT, STATES, is_job_id

from . import events

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
STORE_MARK = ".vinpaint-store"
STORE_FORMAT = 1
"""The layout above. A later vinpaint that changes it raises this, and this one then refuses its store."""
OWN_ENTRIES = frozenset({"daemon.lock", "daemon.json", "jobs", "trash", "unreadable", STORE_MARK})
KINDS = {"frame": "frames", "mask": "masks", "reference": "references"}
ITEM_NAME = re.compile(r"\d{5}\.(bin|sha256)")
RESULT_NAME = re.compile(r"\d{5}(\.matte)?\.bin|history\.f4|complete\.json")
"""The files of inputs/<kind>/ and of results/: the only targets whose temporaries (vinpaint.files.temp_sibling's
names) the store removes at open."""


class StoreError(Exception):
    """A store operation that cannot be done; `code` is the protocol error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def is_out_of_files(exc: BaseException) -> bool:
    """The process (EMFILE) or the system (ENFILE) has no free file handle: each client connection holds one, so
    this passes once connections close; not a fault of the request or the job."""
    return isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)


def atomic_write_json(path: Path, obj: Any, durable: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode("utf-8"), durable)


@dataclass
class Progress(events.Progress):
    """The latest progress of a job, as `job.status` reports it: the worker's last report and the share done."""

    progress: float = 0.0


@dataclass
class JobRecord:
    """What job.json holds: identity, geometry, settings, state."""

    job: str
    content_hash: str
    frames: int
    width: int
    height: int
    channels: int
    dtype: str
    mask_dtype: str
    settings: dict[str, Any]
    """The settings as the client sent them (normalised)."""
    config: dict[str, Any]
    """The resolved engine config (InpaintConfig.to_dict()); the job id hashes it."""
    name: str = ""
    state: str = "uploading"
    created: float = 0.0
    updated: float = 0.0
    queued_at: float = 0.0
    """FIFO key: when job.start queued it (kept across restarts, so an interrupted job goes first)."""
    error: str = ""
    progress: Progress = field(default_factory=Progress)
    references: list[int] = field(default_factory=list)
    """Frame indices that get a painted clean frame (job.open's optional `references`), ascending."""
    seeded_from: str = ""
    """The finished job whose uploads and work directory this one started from (host_bridge/siblings.py): the same
    clip and training, another budget or composition; "" when none."""
    stream: bool = False
    """Started with `job.start`'s `stream` before every item was uploaded: uploads go on after the start and the
    training process waits for each window's items (worker.py). Kept here so a restarted daemon keeps it."""

    def to_dict(self) -> dict[str, Any]:
        return {**getattr(self, "_unknown", {}), **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobRecord":
        """ValueError for a record whose fields have the wrong types (a hand-edited or damaged job.json): its job
        is skipped at start, not a traceback that stops the daemon or a sort that fails every 100 ms."""
        data = dict(data)
        data["progress"] = Progress(**data.get("progress", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in names})
        record._unknown = {k: v for k, v in data.items() if k not in names}  # a later version's fields, written
        record._check_types()  # back with the record, so this daemon's saves do not strip them
        return record

    def _check_types(self) -> None:
        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        wrong = [name for name, ok in (
            ("job", isinstance(self.job, str)), ("content_hash", isinstance(self.content_hash, str)),
            *((n, isinstance(getattr(self, n), int) and not isinstance(getattr(self, n), bool)
               and getattr(self, n) > 0) for n in ("frames", "width", "height", "channels")),
            ("dtype", self.dtype in DTYPES), ("mask_dtype", self.mask_dtype in DTYPES),
            ("settings", isinstance(self.settings, dict)), ("config", isinstance(self.config, dict)),
            ("name", isinstance(self.name, str)), ("state", isinstance(self.state, str)),
            *((n, number(getattr(self, n))) for n in ("created", "updated", "queued_at")),
            ("error", isinstance(self.error, str)), ("seeded_from", isinstance(self.seeded_from, str)),
            ("stream", isinstance(self.stream, bool)),
            ("references", isinstance(self.references, list) and all(
                isinstance(i, int) and not isinstance(i, bool) for i in self.references)),
            *((f"progress.{n}", number(getattr(self.progress, n)))
              for n in ("progress", "step", "total", "elapsed_s")),
            ("progress.eta_s", self.progress.eta_s is None or number(self.progress.eta_s)),
            ("progress.phase", isinstance(self.progress.phase, str)),
            ("progress.message", isinstance(self.progress.message, str)),
            ("progress.losses", isinstance(self.progress.losses, dict) and all(
                number(v) for v in self.progress.losses.values()))) if not ok]
        if wrong:
            raise ValueError(f"its field {wrong[0]} has a value of the wrong type")
        # and in the ranges replies carry (before: a state "paused" or a 300-character name broke job.list for the
        # whole store; frames 10**9 held the daemon's start for minutes, growing to 18 GB)
        wrong = [name for name, ok in (
            ("frames", self.frames <= MAX_RECORD_FRAMES), ("width", self.width <= MAX_RECORD_SIDE),
            ("height", self.height <= MAX_RECORD_SIDE), ("channels", self.channels in (3, 4)),
            ("content_hash", HASH_RE.fullmatch(self.content_hash) is not None),
            ("name", len(self.name) <= MAX_TEXT), ("state", self.state in STATES),
            ("references", self.references == sorted(set(self.references))
             and all(0 <= i < self.frames for i in self.references)),
            ("progress.phase", len(self.progress.phase) <= MAX_PHASE),
            *((f"progress.{n}", abs(getattr(self.progress, n)) < 2**62) for n in ("step", "total"))) if not ok]
        if wrong:
            raise ValueError(f"its field {wrong[0]} has a value out of range")

    def item_bytes(self, kind: str) -> int:
        channels = 1 if kind == "mask" else self.channels
        dtype = self.mask_dtype if kind == "mask" else self.dtype
        return self.height * self.width * channels * DTYPES[dtype].itemsize

    def item_shape(self, kind: str) -> tuple[int, int, int]:
        """A frame's and a reference's shape, or a mask's."""
        return (self.height, self.width, 1 if kind == "mask" else self.channels)

    def indices(self, kind: str) -> list[int]:
        """The indices a job holds items of this kind at: every frame, or the listed references."""
        return list(self.references) if kind == "reference" else list(range(self.frames))


MAX_PHASE = 64
"""job.status's phase, at most (protocol/messages.py)."""
MAX_RECORD_FRAMES = 1_000_000
MAX_RECORD_SIDE = 1 << 16
"""Bounds of a job record's geometry, far above any daemon's limits (10,000 frames, 8192 pixels by default): a
damaged job.json past them is set aside, not loaded."""


class Job:
    """One job folder plus what is known about it in memory (which items are present)."""

    def __init__(self, root: Path, record: JobRecord) -> None:
        self.root = root
        self.record = record
        self.have: dict[str, set[int]] = {kind: set() for kind in KINDS}
        self.digests: dict[str, dict[int, bytes]] = {kind: {} for kind in KINDS}
        self.dirty_progress = False
        self.last_flush = 0.0
        self.save_failure_said = -math.inf
        """When the daemon last logged that this record could not be written (monotonic seconds)."""
        self._hash_state: str | None = None
        self._frames_done = 0

    @property
    def id(self) -> str:
        return self.record.job

    def item_path(self, kind: str, index: int, suffix: str = ".bin") -> Path:
        return self.root / "inputs" / KINDS[kind] / f"{index:05d}{suffix}"

    def result_path(self, index: int, layer: str = "frame") -> Path:
        """Result frame `index`, or its matte (layer "matte": uint8 [H,W,1])."""
        return self.root / "results" / (f"{index:05d}.bin" if layer == "frame" else f"{index:05d}.{layer}.bin")

    @property
    def complete_marker(self) -> Path:
        return self.root / "results" / "complete.json"

    @property
    def history_path(self) -> Path:
        return self.root / "results" / "history.f4"

    def read_history(self) -> tuple[list[str], np.ndarray] | None:
        """(terms, rows [S, 1+len(terms)] float32) of a finished job, or None when its daemon kept none."""
        try:
            with open_regular(self.complete_marker, "r", encoding="utf-8") as handle:  # not a pipe put there
                terms = json.loads(handle.read())["history_terms"]
            with open_regular(self.history_path) as handle:
                rows = np.fromfile(handle, dtype="<f4")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(terms, list) or not terms or rows.size % (len(terms) + 1):
            return None
        return [str(t) for t in terms], rows.reshape(-1, len(terms) + 1)

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def log_path(self) -> Path:
        return self.root / "log"

    def missing(self, kind: str) -> list[int]:
        have = self.have[kind]
        return [i for i in self.record.indices(kind) if i not in have]

    def complete_inputs(self) -> bool:
        """Every frame, mask and reference is uploaded."""
        return all(len(self.have[kind]) == len(self.record.indices(kind)) for kind in KINDS)

    def hash_state(self) -> str:
        """"pending" while items are missing, else "ok" or "mismatch": whether the uploaded items' digests hash to
        the job's content_hash (SPEC.md section 5). Kept until an item changes."""
        if not self.complete_inputs():
            return "pending"
        if self._hash_state is None:
            rec = self.record
            got = clip_hash(rec.frames, rec.height, rec.width, rec.channels, rec.dtype, rec.mask_dtype,
                            [self.digests["frame"][i] for i in range(rec.frames)],
                            [self.digests["mask"][i] for i in range(rec.frames)],
                            {i: self.digests["reference"][i] for i in rec.references})
            self._hash_state = "ok" if got == rec.content_hash else "mismatch"
        return self._hash_state

    def frames_done(self) -> int:
        """Result frames on disk (frame and matte). The trainer writes them in index order (worker.py), so this
        counts on from the last answer with one stat per call."""
        if self.results_complete():
            return self.record.frames
        while self._frames_done < self.record.frames and \
                self.result_path(self._frames_done, "matte").is_file():
            self._frames_done += 1
        return self._frames_done

    def prune_windows(self) -> int:
        """A done long shot's bulky window files (each window's result at source resolution, checkpoint, flow and
        propagation caches: hundreds of MB a window at 1080p) removed once results/complete.json
        vouches for every result frame; each window keeps its record, attempts, loss history, log and settings
        (engine/shot.py tidy). Only for a done job: a stopped shot resumes from them. Returns the bytes freed."""
        if self.record.state != "done" or not self.results_complete():
            return 0
        from vinpaint.engine.shot import tidy

        try:
            return tidy(self.workdir)
        except OSError:
            return 0  # a file that cannot go now costs disk, never the job

    def scan_items(self) -> None:
        """Rebuild `have` from disk: an item counts when its data has the right size and its digest is readable."""
        for kind in KINDS:
            self.have[kind].clear()
            self.digests[kind].clear()
            folder = self.root / "inputs" / KINDS[kind]
            if not folder.is_dir():
                continue
            size = self.record.item_bytes(kind)
            for digest_file in folder.glob("*.sha256"):
                stem = digest_file.stem
                if not (stem.isdigit() and len(stem) == 5) or not digest_file.is_file():
                    continue  # a pipe or a folder planted there would hang or fail the read
                index = int(stem)
                data = digest_file.with_suffix(".bin")
                try:
                    text = digest_file.read_text().strip()
                    ok = index in self.record.indices(kind) and data.stat().st_size == size and len(text) == 64
                    digest = bytes.fromhex(text) if ok else b""
                except (OSError, ValueError):
                    continue
                if ok:
                    self.have[kind].add(index)
                    self.digests[kind][index] = digest
        self._hash_state = None

    def forget_removed_items(self) -> int:
        """Items whose data file is gone (removed by hand while the daemon ran) count as missing again, so a client
        sends them once more; returns how many. A stat per held item: cheap next to reading them."""
        gone = 0
        for kind in KINDS:
            for index in [i for i in self.have[kind] if not self.item_path(kind, i).is_file()]:
                self.have[kind].discard(index)
                self.digests[kind].pop(index, None)
                gone += 1
        if gone:
            self._hash_state = None
        return gone

    def take_items(self, other: "Job") -> None:
        """`have` and the digests of a job whose items were just linked into this one's folders (siblings.py)."""
        for kind in KINDS:
            self.have[kind] = set(other.have[kind])
            self.digests[kind] = dict(other.digests[kind])
        self._hash_state = None

    def store_item(self, kind: str, index: int, data: memoryview, digest: bytes) -> None:
        """Write one input atomically: digest removed first, so a crash in between leaves the item missing."""
        sidecar = self.item_path(kind, index, ".sha256")
        self.have[kind].discard(index)
        self.digests[kind].pop(index, None)
        self._hash_state = None
        try:
            sidecar.unlink()
        except FileNotFoundError:
            pass
        atomic_write_bytes(self.item_path(kind, index), data)
        atomic_write_bytes(sidecar, (digest.hex() + "\n").encode("ascii"))
        self.have[kind].add(index)
        self.digests[kind][index] = digest

    def save(self, durable: bool = True) -> None:
        self.record.updated = time.time()
        atomic_write_json(self.root / "job.json", self.record.to_dict(), durable)
        self.dirty_progress = False
        self.last_flush = time.monotonic()

    def results_complete(self) -> bool:
        return self.complete_marker.is_file()

    def results_missing(self, mattes: bool = True) -> int:
        """The first result frame (or matte) of a finished job that is not on disk whole (removed or cut short
        after it finished), or -1 when every one is."""
        frame_bytes, matte_bytes = self.record.item_bytes("frame"), self.record.height * self.record.width
        layers = (("frame", frame_bytes), ("matte", matte_bytes)) if mattes else (("frame", frame_bytes),)
        for index in range(self.record.frames):
            for layer, size in layers:
                try:
                    if self.result_path(index, layer).stat().st_size != size:
                        return index
                except OSError:
                    return index
        return -1

    def results_taken_back(self) -> None:
        """A finished job whose results are not all there any more is queued to write them again: from its work
        directory's cached result where that is kept (seconds), else trained again."""
        self.complete_marker.unlink(missing_ok=True)
        self._frames_done = 0

    def append_log(self, line: str) -> None:
        try:
            with open_regular(self.log_path, "a", encoding="utf-8") as f:  # a pipe put there must not hold us
                f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line.rstrip() + "\n")
        except OSError:
            pass  # the log is a courtesy; a full disk must not break serving


def summarise_history(rows: np.ndarray, points: int) -> np.ndarray:
    """At most `points` rows: all of them, or the means of `points` consecutive runs, each stamped with its last
    step (SPEC.md `job.history`). Never empty: a buffer dimension is at least 1."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.shape[0] == 0:
        return np.zeros((1, rows.shape[1]), np.float32)
    if rows.shape[0] <= points:
        return np.ascontiguousarray(rows)
    edges = np.linspace(0, rows.shape[0], points + 1).round().astype(int)
    out = np.add.reduceat(rows.astype(np.float64), edges[:-1], axis=0) / np.diff(edges)[:, None]
    out[:, 0] = rows[edges[1:] - 1, 0]
    return out.astype(np.float32)


def _remove_partials_of(folder: Path, target: Callable[[str], Any]) -> int:
    """remove_partials for the temporaries in `folder` whose target name passes `target`."""
    try:
        names = {m["target"] for e in folder.iterdir() if (m := PARTIAL_NAME.fullmatch(e.name))}
    except OSError:
        return 0
    targets = {name for name in names if target(name)}
    return remove_partials(folder, targets) if targets else 0


def _remove_results_partials(job_root: Path) -> int:
    """results/ is written by the job's training process: its temporaries go only while no such process holds
    worker.lock (an orphan of a killed daemon may still be writing), and the lock is held meanwhile."""
    lock = job_root / "worker.lock"
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        fd = -1  # no training process ever ran here
    except OSError:
        return 0
    try:
        if fd >= 0:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _remove_partials_of(job_root / "results", RESULT_NAME.fullmatch)
    except OSError:  # BlockingIOError: a training process holds it
        return 0
    finally:
        if fd >= 0:
            os.close(fd)


def check_store_folder(root: Path) -> None:
    """A store folder is vinpaint's before anything in it is written or emptied: new, empty, marked with a format
    this version reads, or a store of a version before the mark (nothing but the entries of OWN_ENTRIES). A user's
    folder given as --store is refused: its `trash/` would be emptied and its `daemon.json` replaced."""
    root = Path(root)
    for above in Path(os.path.realpath(root)).parents:
        if (above / STORE_MARK).is_file():
            raise StoreError("store", f"the store {root} lies inside the store {above} of another daemon, whose "
                             "jobs/ and trash/ that daemon manages (it empties its trash/ at start); give a folder "
                             "outside it as --store")
    if not os.path.lexists(root):
        return
    if not root.is_dir():
        raise StoreError("store", f"the store {root} is a file, not a folder; give a folder as --store")
    mark = root / STORE_MARK
    if mark.is_file():
        try:
            found = json.loads(mark.read_text(encoding="utf-8"))["store_format"]
        except (OSError, ValueError, KeyError, TypeError):
            raise StoreError("store", f"the store's mark {mark} is damaged; if {root} is a vinpaint store, "
                             f"write {{\"store_format\": {STORE_FORMAT}}} into it") from None
        if not isinstance(found, int) or found > STORE_FORMAT:
            raise StoreError("store", f"the store {root} was written by a newer vinpaint (store format {found}; "
                             f"this one reads {STORE_FORMAT}); run that version, or give another --store")
        return
    names = {p.name for p in root.iterdir()}
    strangers = sorted(names - OWN_ENTRIES) or ([] if not names or "daemon.lock" in names else sorted(names))
    if strangers:
        raise StoreError("store", f"the store {root} holds files that vinpaint did not put there (e.g. "
                         f"{strangers[0]}; it has no {STORE_MARK}); give a new or empty folder as --store")


def mark_store_folder(root: Path) -> None:
    """Write the store's mark (once it is ours: checked and locked)."""
    mark = Path(root) / STORE_MARK
    if not mark.is_file():
        atomic_write_json(mark, {"store_format": STORE_FORMAT})


class JobStore:
    """All jobs under one folder; the daemon holds the only instance (daemon.lock)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.trash_dir = self.root / "trash"
        self.unreadable_dir = self.root / "unreadable"
        self.jobs: dict[str, Job] = {}
        self.marked = False
        """The store's mark was there when it opened: from then on its absence means the folder was removed."""

    def open(self) -> list[str]:
        """Create the folders and load every job; returns notes about anything skipped."""
        self.marked = (self.root / STORE_MARK).is_file()
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        notes = []
        for d in sorted(self.jobs_dir.iterdir()):
            if not d.is_dir() or not is_job_id(d.name):
                continue
            try:
                if not (d / "job.json").is_file():  # a pipe there would hang the start
                    raise ValueError("it is missing or not a file")
                record = JobRecord.from_dict(json.loads((d / "job.json").read_text()))
                if record.job != d.name:
                    raise ValueError("its id does not match its folder")
                job = Job(d, record)
                job.scan_items()
            except (OSError, ValueError, TypeError, KeyError) as exc:
                notes.append(f"skipped job folder {d.name}: unreadable job.json ({exc}); kept, and moved to "
                             f"{self.unreadable_dir.name}/ if a client opens the same job again")
                continue
            self.jobs[record.job] = job
        removed = self._remove_temporaries()
        if removed:
            notes.append(f"removed {removed} temporary file(s) a stopped daemon or training process left half-written "
                         "(uploads, records, results)")
        return notes

    def _remove_temporaries(self) -> int:
        """What writes cut short by a kill -9 left (`.NAME.RANDOM.partial`): a job folder being made, each loaded
        job's items, record and results, the store's daemon.json. Never anything else: only temp_sibling's names of
        files the store itself writes. Before (2026-12-03) they stayed for ever, a frame's size each."""
        removed = _remove_partials_of(self.root, lambda name: name in ("daemon.json", STORE_MARK))
        removed += _remove_partials_of(self.jobs_dir, is_job_id)
        for job in self.jobs.values():
            removed += _remove_partials_of(job.root, lambda name: name == "job.json")
            for sub in KINDS.values():
                removed += _remove_partials_of(job.root / "inputs" / sub, ITEM_NAME.fullmatch)
            removed += _remove_results_partials(job.root)
        return removed

    def check_present(self) -> None:
        """Refuse to serve from, or write into, a store folder removed (or replaced) under the running daemon: its
        answers would be stale, and writing would rebuild an unmarked folder that no daemon then starts on."""
        if self.marked and not (self.root / STORE_MARK).is_file():
            raise StoreError("internal", f"the daemon's store {self.root} was removed or replaced while it ran (its "
                             f"{STORE_MARK} is gone); nothing more is read or written there: restart `vinpaint "
                             f"serve` (on a new folder, or on this one once it is restored)")

    def path_for(self, job_id: str) -> Path:
        """The folder of a job id; refuses anything but 32 lowercase hex (no path can escape the store)."""
        if not is_job_id(job_id):
            raise StoreError("bad_request", "a job id is 32 lowercase hex chars")
        return self.jobs_dir / job_id

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id) if is_job_id(job_id) else None
        if job is None:
            raise StoreError("not_found", f"no job {job_id} in this daemon's store")
        return job

    def create(self, record: JobRecord) -> Job:
        root = self.path_for(record.job)
        if os.path.lexists(root):  # a job folder whose job.json could not be read (damaged, or a newer one's):
            self._set_aside(root)  # kept for a person to look at, never deleted
        tmp = temp_sibling(root, folder=True)  # the one permission rule (vinpaint.files)
        try:
            for sub in ("inputs/frames", "inputs/masks", "inputs/references", "work", "results"):
                (tmp / sub).mkdir(parents=True)
            record.created = time.time()
            atomic_write_json(tmp / "job.json", record.to_dict())
            os.rename(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.jobs_dir)
        job = Job(root, record)
        job.record.updated = record.created
        self.jobs[record.job] = job
        return job

    def delete(self, job_id: str, remove_now: bool = True) -> Path:
        """Forget a job and move its folder to the trash (removed now, or later when its trainer has exited). A
        folder that cannot be moved (an unwritable store) leaves the job listed and servable, and the error
        says why."""
        root = self.get(job_id).root
        dest = self.trash_dir / f"{root.name}.{time.time_ns()}"
        os.rename(root, dest)
        del self.jobs[job_id]
        fsync_dir(self.jobs_dir)
        if remove_now:
            shutil.rmtree(dest, ignore_errors=True)
        return dest

    def _set_aside(self, root: Path) -> Path:
        self.unreadable_dir.mkdir(exist_ok=True)
        dest = self.unreadable_dir / f"{root.name}.{time.time_ns()}"
        os.rename(root, dest)
        fsync_dir(self.jobs_dir)
        return dest

    def empty_trash(self) -> None:
        """Remove what delete() moved there (`<job id>.<ns>`), nothing else: a folder put there by anyone else (a
        second daemon's store, started inside this one's trash) is left alone."""
        for d in self.trash_dir.iterdir():
            if re.fullmatch(r"[0-9a-f]{32}\.\d+", d.name) and d.is_dir() and not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
