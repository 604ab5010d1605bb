"""The trainer pool: one training process per device, fed from the job store's queue.

It owns process supervision and nothing else: start a worker (worker.py) for the oldest queued job on each idle
device, read its events (events.py), move the job through its states as the process reports and exits, and stop
processes politely (SIGTERM, a checkpoint, then SIGKILL after the grace time). No socket: the daemon calls
`read(trainer)` when a trainer's pipe is readable and `reap()`, `schedule()` and `flush_progress()` after every
poll, and a test can do the same.
"""
from __future__ import annotations

import enum
import fcntl
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vinpaint.engine import InpaintConfig
from vinpaint.engine.devices import host_memory
from vinpaint.files import open_regular
from vinpaint.protocol.codec import DTYPES

from . import events as ev
from . import job_settings
from .logs import PerMinute
from .store import Job, JobStore, is_disk_full, is_out_of_files
from .worker import EXIT_DONE, EXIT_FAILED, EXIT_STOPPED

log = logging.getLogger("vinpaint.daemon")

SAVE_FAILURE_REPEAT_S = 60.0
"""How often a job record that keeps failing to be written (a full disk) is logged again."""
PHASE_SPAN = {"flow": (0.0, 0.05), "setup": (0.05, 0.05), "train": (0.05, 0.95), "generate": (0.95, 1.0),
              "done": (1.0, 1.0), "window": (0.0, 1.0)}
"""Share of the whole job each engine phase covers, for one `progress` number."""
RAY_SETTLE_S = 30.0
"""How long a deleted job's windows on a Ray cluster are given to stop (they took about 1.5 s here)."""


class TrainerState(enum.Enum):
    IDLE = "idle"
    """No process: the device takes the next queued job."""
    TRAINING = "training"
    """A process trains `job_id`."""
    STOPPING = "stopping"
    """SIGTERM was sent (cancel, delete, shutdown, yield; or an orphan adopted at start); the process is writing its
    checkpoint."""


class Orphan:
    """A training process of a daemon that was killed (kill -9, a crash): its own session, so it outlives the daemon,
    and it stops only at its next look at the stop flag (a flow phase never looks). Found at start holding its job's
    worker.lock (recover), it is no child of this daemon: it is watched through a pidfd (its pid cannot be reused
    while the pidfd is open) and the lock, behind the part of subprocess.Popen that the pool uses. It has exited
    once the process is gone and the lock is free (what it forked may hold the lock too, and dies with its
    process group)."""

    def __init__(self, pid: int, pidfd: int, lock_fd: int) -> None:
        self.pid, self._pidfd, self._lock_fd = pid, pidfd, lock_fd
        self.returncode: int | None = None

    def _gone(self) -> bool:
        """The process has exited (a pidfd is readable from then on, also while its new parent has not reaped it)."""
        ready = select.poll()
        ready.register(self._pidfd, select.POLLIN)
        return bool(ready.poll(0))

    def poll(self) -> int | None:
        if self.returncode is None and self._gone() and not lock_held(self._lock_fd):
            self.returncode = EXIT_STOPPED  # its status goes to its new parent: as if it had stopped
            os.close(self._pidfd)
            os.close(self._lock_fd)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"training process {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and not self._gone():
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        """SIGKILL to it and to its process group (its session's: what it started)."""
        if self.returncode is not None or (self._gone() and not lock_held(self._lock_fd)):
            return
        try:  # it lives, or what it started holds the lock: its group's id is not free to be reused, so this
            os.killpg(self.pid, signal.SIGKILL)  # reaches only its own
        except OSError:
            pass
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except OSError:
            pass


def lock_held(fd: int) -> bool:
    """Whether another open file of worker.lock holds it (a training process); `fd` itself never keeps it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _lock_holders(fd: int) -> list[int]:
    """The pids /proc/locks names as holding a flock on the file of `fd`, matched by device and inode (an inode
    number alone repeats across file systems); each is checked afterwards (_trainer_args)."""
    st = os.fstat(fd)
    here = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = []
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return pids
    for line in lines:
        parts = line.split()  # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->" after "1:"
        if len(parts) >= 6 and parts[1] == "FLOCK":
            try:
                major, minor, inode = parts[5].split(":")  # the device's numbers in hex, the inode in decimal
                if (int(major, 16), int(minor, 16), int(inode)) == here:
                    pids.append(int(parts[4]))
            except ValueError:
                continue
    return pids


def _trainer_args(pid: int, job_root: Path) -> list[str] | None:
    """The command line of `pid` if it is a training process (worker.py) of the job folder `job_root` itself,
    else None: a trainer of a job of the same id in another store (the same clip and settings) is not this job's."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return None
    if "vinpaint.host_bridge.worker" not in args[:-1]:
        return None
    folder = args[args.index("vinpaint.host_bridge.worker") + 1]
    try:  # a relative folder is the process's own working directory's
        same = os.path.samefile(os.path.join(f"/proc/{pid}/cwd", folder), job_root)
    except OSError:
        return None
    return args if same else None


def find_orphan(job: Job) -> tuple[Orphan, str] | None:
    """The training process (and its device) of a killed daemon that still holds `job`'s worker.lock, if any. The
    pid of the lock's holder (/proc/locks, else worker.pid) counts only with a training process's command line for
    this job, read after its pidfd is open: a process that took over a dead trainer's pid is never touched."""
    if not hasattr(os, "pidfd_open"):
        return None  # not Linux: no PR_SET_PDEATHSIG either
    try:
        fd = os.open(job.root / "worker.lock", os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return None  # no training process ever ran here
    if not lock_held(fd):
        os.close(fd)
        return None
    candidates = _lock_holders(fd)
    try:
        with open_regular(job.root / "worker.pid", "r") as handle:  # not a pipe put there
            candidates.append(int(handle.read()))
    except (OSError, ValueError):
        pass
    for pid in dict.fromkeys(candidates):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        args = _trainer_args(pid, job.root)
        if args is not None:
            device = args[args.index("--device") + 1] if "--device" in args[:-1] else ""
            return Orphan(pid, pidfd, fd), device
        os.close(pidfd)
    os.close(fd)
    log.warning("job %s: its worker.lock is held by a process that is not one of its training processes (pids %s); "
                "a training process of the job waits for it to be released", job.id, sorted(set(candidates)) or "?")
    return None


@dataclass
class Trainer:
    """A device slot and the training process running on it, if any."""

    device: str
    state: TrainerState = TrainerState.IDLE
    job_id: str = ""
    proc: subprocess.Popen | Orphan | None = None
    fd: int = -1
    buffer: bytes = b""
    reason: str = ""
    """Why the daemon stopped it: "cancel", "delete", "shutdown", "yield" (a streaming job waiting for its uploads
    gave the device to a job that can train now), "orphan" (adopted at start); empty: it was not stopped."""
    adopted: bool = False
    """The process is a killed daemon's training process found at start (Orphan), not this daemon's child."""
    yield_to: str = ""
    """With reason "yield": the job it stops for, which takes no other trainer's device meanwhile (make_room)."""
    stop_sent: float = 0.0
    trash: Path | None = None
    deleted: str = ""
    """The id of a deleted job whose process had not exited when its folder went to the trash (see end_deleted)."""
    last_error: str = ""
    memory: int = 0
    """Bytes of memory of the device (RAM for cpu), for refusing at job.open a job that cannot fit."""

    @property
    def busy(self) -> bool:
        return self.state is not TrainerState.IDLE


def fits(trainer: Trainer, host: int, device: int, ram: int) -> bool:
    """Whether a job of estimated peak memory (host, device) bytes (job_settings.job_memory) fits on `trainer`'s
    device: on the CPU both together in its memory, on a GPU the device part in the GPU's and the host part in
    the machine's RAM (`ram`)."""
    return host + device <= trainer.memory if trainer.device == "cpu" else host <= ram and device <= trainer.memory


def default_devices() -> tuple[str, ...]:
    try:
        import torch

        # device_count alone counts GPUs through NVML, also where CUDA cannot start (a driver older than the build)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # no torch build with CUDA: train on the CPU
        count = 0
    return tuple(f"cuda:{i}" for i in range(count)) or ("cpu",)


class TrainerPool:
    """The devices' trainers and the jobs' training states (queued -> training -> done / failed / queued again)."""

    def __init__(self, store: JobStore, devices: tuple[str, ...], stop_grace_s: float = 60.0,
                 progress_flush_s: float = 2.0, ray: str | None = None, stream_wait_s: float = 600.0,
                 ray_cpus: int | None = None) -> None:
        self.store = store
        self.ray = ray
        """A Ray cluster's address: long shots' windows go there (worker.py --ray)."""
        self.ray_cpus = ray_cpus
        """Cores each window asks for there when the cluster has no GPUs; None: the engine's default."""
        self.stream_wait_s = stream_wait_s
        """How long a streaming job's training waits for a window's items (worker.py --stream-wait)."""
        self.trainers = [Trainer(d) for d in devices]
        self.stop_grace_s = stop_grace_s
        self.progress_flush_s = progress_flush_s
        self._settling: dict[str, float] = {}
        """Deleted jobs whose windows ran on a Ray cluster, by id: until when (monotonic) their tasks may still be
        stopping. Ray's workers are no children of the killed process (each has its own process group) and stop
        when their owner dies, within seconds; a write of theirs in that time can make jobs/<id>/ again."""
        self._windows: dict[str, list] = {}
        """A streaming job's windows (job_settings.windows) from the first one not known to be done, by job id, while
        it is queued or trains."""
        self._needs: dict[str, tuple[int, int] | None] = {}
        """Each queued job's memory estimate, (host, device) bytes, by job id (None: none could be made); an entry
        goes when its job starts or leaves the queue."""
        self._out_of_files_said = PerMinute(1, lambda n: log.warning("%d more jobs waited to train: out of open "
                                                                   "files", n))

    # --- the queue --------------------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: finished work stays finished, interrupted training goes back to the queue. A training
        process of the killed daemon that still runs (its own session: a kill -9 does not reach it) is adopted into
        its device's slot, as stopping: it is asked again to stop, killed after the grace time (or at once by
        job.delete), and its job trains again only once it has exited."""
        for job in self.store.jobs.values():
            rec = job.record
            orphan = self._adopt(job)
            if rec.state == "done" and job.results_missing(mattes=False) >= 0 and job.complete_inputs():
                job.results_taken_back()  # removed or cut short since: written again (mattes: said at fetch)
                rec.state, rec.queued_at = "queued", time.time()
                rec.progress.message = "results missing since it finished: queued to write them again"
                self._save_at_start(job)
                job.append_log("daemon restarted: result frames missing, queued to write them again")
            elif rec.state == "done":
                job.prune_windows()  # a daemon stopped between a shot's end and its clean-up
            elif rec.state in ("queued", "training") and job.results_complete():
                self.finish(job)
            elif rec.state == "training":
                rec.state = "queued"
                rec.progress.message = "interrupted; resumes from its last checkpoint"
                self._save_at_start(job)
                job.append_log("daemon restarted: training interrupted, queued again")
            if orphan is not None and rec.state == "queued":
                rec.progress.message = f"interrupted; waits for the stopped daemon's training process (pid " \
                    f"{orphan.pid}) to stop, then resumes from its last checkpoint"

    def _adopt(self, job: Job) -> Orphan | None:
        """The killed daemon's training process of `job`, if one still holds its worker.lock: taken into the slot
        of its device (else any idle one: it holds a device), or, with no slot left, killed and waited for."""
        found = find_orphan(job)
        if found is None:
            return None
        orphan, device = found
        trainer = next((t for t in self.trainers if not t.busy and t.device == device), None) or \
            next((t for t in self.trainers if not t.busy), None)
        if trainer is None:
            orphan.kill()
            try:
                orphan.wait(10.0)
            except subprocess.TimeoutExpired:
                log.warning("job %s: the stopped daemon's training process %d outlived SIGKILL", job.id, orphan.pid)
            job.append_log(f"daemon restarted: killed the stopped daemon's training process (pid {orphan.pid})")
            return None
        trainer.state, trainer.job_id, trainer.proc, trainer.fd, trainer.buffer = \
            TrainerState.STOPPING, job.id, orphan, -1, b""
        trainer.reason, trainer.stop_sent, trainer.adopted, trainer.trash, trainer.deleted, trainer.last_error = \
            "orphan", time.monotonic(), True, None, "", ""
        for sig in (signal.SIGTERM, signal.SIGCONT):  # it had SIGTERM when the daemon died (PR_SET_PDEATHSIG)
            try:
                orphan.send_signal(sig)
            except OSError:
                pass
        job.append_log(f"daemon restarted: the stopped daemon's training process (pid {orphan.pid}) still runs; "
                       f"asked to stop (killed after {self.stop_grace_s:g} s), the job trains again once it has")
        log.warning("job %s: the stopped daemon's training process %d still runs on %s; asked to stop", job.id,
                    orphan.pid, device or "?")
        return orphan

    def _save_at_start(self, job: Job) -> None:
        """A record saved while the daemon starts: a full disk must not keep it from serving finished jobs (the
        state in memory is right; it is saved again at the job's next change)."""
        try:
            job.save()
        except OSError as exc:
            if not is_disk_full(exc):
                raise

    def queue(self) -> list[Job]:
        return sorted((j for j in self.store.jobs.values() if j.record.state == "queued"),
                      key=lambda j: (j.record.queued_at, j.id))

    def position(self, job: Job) -> int | None:
        if job.record.state != "queued":
            return None
        return next(i for i, j in enumerate(self.queue()) if j is job)

    def trainer_of(self, job_id: str) -> Trainer | None:
        return next((t for t in self.trainers if t.busy and t.job_id == job_id), None)

    # --- starting ---------------------------------------------------------------------------------------------

    def schedule(self) -> None:
        """FIFO: each idle device takes the oldest queued job that fits in its memory. job.open accepts a job that
        fits any device; on devices of different sizes one that fits only the bigger waits for it, instead of
        running out of memory on a smaller one that happens to be idle. A streaming job whose next window's items
        are not all uploaded yet (ready()) takes a device only when no job that can train now fits it, and gives
        it back to such a job (make_room): before (2026-12-03) one started with nothing uploaded held the only
        device for --stream-wait (600 s) while complete jobs waited."""
        waiting = {j.id for j in self.queue()}
        for job_id in [k for k in self._needs if k not in waiting]:  # cancelled or deleted while queued
            del self._needs[job_id]
        for job_id in [k for k in self._windows if k not in waiting and self.trainer_of(k) is None]:
            del self._windows[job_id]
        for trainer in self.trainers:
            if trainer.busy:
                continue
            queue = [j for j in self.queue() if self.trainer_of(j.id) is None]
            if not queue:
                return
            fitting = [j for j in queue if self.may_take(trainer, j)]
            job = next((j for j in fitting if self.ready(j)), None) or next(iter(fitting), None)
            if job is None:
                continue
            if job.results_complete():
                self.finish(job)
                continue
            self.spawn(trainer, job)
        self.make_room()

    def ready(self, job: Job) -> bool:
        """Whether `job` can train as soon as it starts: every job but a streaming one whose next window (the first
        without its done.json; a one-window job's whole clip) still lacks items the worker would wait for."""
        rec = job.record
        if not rec.stream or job.complete_inputs():
            return True
        if job.id not in self._windows:
            try:
                config = InpaintConfig.from_dict(rec.config)
                self._windows[job.id] = list(job_settings.windows(config, rec.frames))
            except Exception:  # noqa: BLE001 - a record the engine cannot read fails in its worker, with the reason
                self._windows[job.id] = []
        windows = self._windows[job.id]
        while windows and (len(windows) > 1 or windows[0].index > 0) and \
                (job.workdir / windows[0].name / "done.json").is_file():
            windows.pop(0)  # a long shot's finished windows (never a one-window job's): their records are kept
        if not windows:
            return True
        have, references = job.have, set(rec.references)
        return all(i in have["frame"] and i in have["mask"] and (i not in references or i in have["reference"])
                   for i in range(windows[0].start, windows[0].stop))

    def make_room(self) -> None:
        """A streaming job's trainer waiting for uploads (its job not ready()) is asked to stop (SIGTERM, reason
        "yield": it leaves its wait at once, keeping its finished windows) when a queued job that is ready fits its
        device; that job takes the device as it exits, and the streaming job, queued again, trains on when its
        items are here and a device is free."""
        waiting = [(t, job) for t in self.trainers if t.state is TrainerState.TRAINING and
                   (job := self.store.jobs.get(t.job_id)) is not None and job.record.state == "training" and
                   not self.ready(job)]
        if not waiting:
            return
        # a job some trainer already stops for is not asked for again: once per pass, one ready job stopped every
        # waiting trainer, since it has no trainer of its own until the stopping one exits (a review found)
        promised = {t.yield_to for t in self.trainers if t.state is TrainerState.STOPPING and t.reason == "yield"}
        ready = [j for j in self.queue() if self.trainer_of(j.id) is None and j.id not in promised and self.ready(j)]
        for trainer, job in waiting:
            if not ready:
                return
            taker = next((j for j in ready if self.may_take(trainer, j)), None)
            if taker is None:
                continue
            ready.remove(taker)
            job.append_log(f"waiting for uploads: gives {trainer.device} to job {taker.id}, which can train now")
            self.stop(trainer, "yield")
            trainer.yield_to = taker.id

    def may_take(self, trainer: Trainer, job: Job) -> bool:
        """Whether `trainer` may train `job`: it fits there by job_settings.job_memory's estimate, or it fits on no
        device here (the estimate is within a factor of about 2, and a job accepted before a restart on other
        devices should still be tried). A device of unknown memory (0) takes any job."""
        need = self._need(job)
        if need is None or trainer.memory <= 0:
            return True
        ram = host_memory()
        if fits(trainer, *need, ram):
            return True
        return not any(t.memory <= 0 or fits(t, *need, ram) for t in self.trainers)

    def _need(self, job: Job) -> tuple[int, int] | None:
        if job.id not in self._needs:
            rec = job.record
            try:
                config = InpaintConfig.from_dict(rec.config)
                need: tuple[int, int] | None = job_settings.job_memory(
                    config, rec.frames, rec.height, rec.width, rec.channels, DTYPES[rec.dtype].itemsize)
            except Exception:  # noqa: BLE001 - a record the engine cannot read fails in its worker, with the reason
                need = None
            self._needs[job.id] = need
        return self._needs[job.id]

    def spawn(self, trainer: Trainer, job: Job) -> None:
        """Start `job`'s training process on `trainer`. Out of file handles (client connections hold them), the
        job stays queued and the next pass tries again: before (2026-12-03) a traceback every 100 ms."""
        self._needs.pop(job.id, None)  # kept only while the job waits
        try:
            read_fd, write_fd = os.pipe()
        except OSError as exc:
            if is_out_of_files(exc):
                self._out_of_files(job, exc)
                return
            raise
        os.set_blocking(read_fd, False)
        try:
            logf = open_regular(job.log_path, "ab")
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            if is_out_of_files(exc):
                self._out_of_files(job, exc)
            else:
                self.fail(job, f"cannot write the job's log: {exc}")
            return
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vinpaint.host_bridge.worker", str(job.root), "--device", trainer.device,
                 "--progress-fd", str(write_fd), "--parent", str(os.getpid()),
                 "--stream-wait", repr(float(self.stream_wait_s)),
                 *(["--ray", self.ray] if self.ray is not None else []),
                 *(["--ray-cpus", str(self.ray_cpus)] if self.ray is not None and self.ray_cpus else [])],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            if is_out_of_files(exc):
                self._out_of_files(job, exc)
            else:
                self.fail(job, f"cannot start the training process: {exc}")
            return
        finally:
            os.close(write_fd)
            logf.close()
        trainer.state, trainer.job_id, trainer.proc, trainer.fd = TrainerState.TRAINING, job.id, proc, read_fd
        trainer.buffer, trainer.reason, trainer.stop_sent, trainer.trash, trainer.last_error = b"", "", 0.0, None, ""
        trainer.deleted = ""
        job.record.state = "training"
        # The phase and step of the last run are stale until the new process reports; "" says "not started yet".
        job.record.progress.phase, job.record.progress.step, job.record.progress.eta_s = "", 0, None
        job.record.progress.message = f"starting on {trainer.device}"
        self.save(job)
        job.append_log(f"training started on {trainer.device} (pid {proc.pid})")
        try:
            with open_regular(job.root / "worker.pid", "w") as handle:
                handle.write(f"{proc.pid}\n")
        except OSError:
            pass

    def _out_of_files(self, job: Job, exc: OSError) -> None:
        """The job waits in the queue; said in the log once a minute (logs.PerMinute, as the requests' own)."""
        if self._out_of_files_said.allows():
            log.warning("job %s waits to train: the daemon is out of open files (%s); it starts once client "
                        "connections close", job.id, exc.strerror)

    def read(self, trainer: Trainer) -> None:
        """Everything the trainer's process has written to its pipe so far."""
        while True:
            try:
                chunk = os.read(trainer.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                os.close(trainer.fd)
                trainer.fd = -1
                break
            trainer.buffer += chunk
        *lines, trainer.buffer = trainer.buffer.split(b"\n")
        job = self.store.jobs.get(trainer.job_id)
        for line in lines:
            event = ev.decode(line)
            if isinstance(event, ev.Failed):
                trainer.last_error = event.message
            elif isinstance(event, ev.Progress) and job is not None and job.record.state == "training":
                self._apply_progress(job, event)

    def _apply_progress(self, job: Job, event: ev.Progress) -> None:
        p = job.record.progress
        lo, hi = PHASE_SPAN.get(event.phase, (p.progress, p.progress))
        frac = event.step / event.total if event.total > 0 else 0.0
        # never backwards: an engine may report a phase again (flow for propagation, then for training)
        p.progress = max(p.progress, 0.0, min(1.0, lo + (hi - lo) * min(frac, 1.0)))
        p.phase, p.step, p.total = event.phase, event.step, event.total
        p.elapsed_s, p.eta_s = event.elapsed_s, event.eta_s
        if event.losses:
            p.losses = event.losses
        p.message = event.message
        job.dirty_progress = True

    # --- stopping ---------------------------------------------------------------------------------------------

    def stop(self, trainer: Trainer, reason: str) -> None:
        """Ask the process to checkpoint and exit (SIGTERM); `reason` is cancel, delete or shutdown."""
        trainer.reason = trainer.reason or reason
        if trainer.proc is not None and not trainer.stop_sent:
            trainer.state, trainer.stop_sent = TrainerState.STOPPING, time.monotonic()
            try:
                trainer.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def end_deleted(self, trainer: Trainer, wait_s: float = 5.0) -> bool:
        """Kill the training process of a job just deleted (its folder already in the trash) and what it started
        (its session), and wait for it: the job keeps nothing, so no checkpoint is worth writing, and a process
        left running wrote into a new jobs/<id>/ after the move, or into a job opened again under that id (a
        stray folder, a stale checkpoint, a new job marked done with nothing uploaded). True once it has exited
        (reaped); False if it outlived `wait_s` (stuck in the kernel): it is then cut off from the id, and
        `deleted` names it (job.open of that id waits) until it exits."""
        trainer.reason = "delete"
        proc = trainer.proc
        if proc is None:
            return True
        if isinstance(proc, Orphan):
            proc.kill()  # a killed daemon's: through its pidfd, and its process group
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session), children with it
            except OSError:
                self.kill(trainer)
        if self.ray is not None:
            self._settling[trainer.job_id] = time.monotonic() + RAY_SETTLE_S
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            trainer.state, trainer.stop_sent = TrainerState.STOPPING, trainer.stop_sent or time.monotonic()
            trainer.deleted, trainer.job_id = trainer.job_id, ""
            return False
        self.reap()
        return True

    def deleting(self, job_id: str) -> bool:
        """Whether a deleted job of this id may still write into jobs/<id>/ (its process stuck, or its Ray tasks
        stopping): job.open of the id waits until it may not."""
        return any(t.busy and t.deleted == job_id for t in self.trainers) or \
            self._settling.get(job_id, 0.0) > time.monotonic()

    def kill(self, trainer: Trainer) -> None:
        if trainer.proc is not None and trainer.proc.poll() is None:
            try:
                trainer.proc.kill()
            except ProcessLookupError:
                pass

    def shutdown_step(self, since: float, now: bool = False) -> bool:
        """Stop every trainer (SIGTERM, then SIGKILL once the grace time since `since` is over, or at once with
        `now`); True once none is left."""
        grace_over = time.monotonic() - since > self.stop_grace_s
        for t in self.trainers:
            if not t.busy:
                continue
            if not t.stop_sent:
                self.stop(t, "shutdown")
            elif grace_over or now:
                self.kill(t)
        return not any(t.busy for t in self.trainers)

    def close(self) -> None:
        """Kill what still runs and keep every job's last progress."""
        for t in self.trainers:
            if t.busy:
                self.kill(t)
                try:  # bounded: an adopted orphan counts as exited only once its lock is free too (a review found)
                    t.proc.wait(timeout=10.0)  # type: ignore[union-attr]
                except subprocess.TimeoutExpired:
                    log.warning("training process %s of job %s did not exit within 10 s of SIGKILL", t.proc.pid,
                                t.job_id)
                    continue
                self.reap()
        for job in self.store.jobs.values():
            if job.dirty_progress:
                self.save(job, durable=False)

    # --- exits ------------------------------------------------------------------------------------------------

    def reap(self) -> None:
        now = time.monotonic()
        for job_id in [j for j, until in self._settling.items() if until <= now]:
            del self._settling[job_id]
            if job_id not in self.store.jobs:  # what its Ray tasks wrote while they stopped
                shutil.rmtree(self.store.jobs_dir / job_id, ignore_errors=True)
        for t in self.trainers:
            if t.proc is None:
                continue
            if t.reason and t.stop_sent and time.monotonic() - t.stop_sent > self.stop_grace_s:
                self.kill(t)  # it had its chance to checkpoint
            code = t.proc.poll()
            if code is None:
                continue
            if t.fd >= 0:
                self.read(t)  # the last events (done / error) before the pipe closed
                if t.fd >= 0:
                    os.close(t.fd)
                    t.fd = -1
            self._exited(t, code)
            gone = t.deleted or (t.job_id if t.reason == "delete" else "")
            if gone and gone not in self.store.jobs:  # what it wrote after its folder went to the trash
                shutil.rmtree(self.store.jobs_dir / gone, ignore_errors=True)
            t.state, t.proc, t.job_id, t.reason, t.stop_sent, t.deleted = TrainerState.IDLE, None, "", "", 0.0, ""
            t.adopted, t.yield_to = False, ""
            if t.trash is not None:
                shutil.rmtree(t.trash, ignore_errors=True)
                t.trash = None

    def _exited(self, t: Trainer, code: int) -> None:
        job = self.store.jobs.get(t.job_id)
        if job is None or t.reason == "delete":
            return  # deleted while it trained
        rec = job.record
        if t.adopted:  # a killed daemon's; recover() queued its job, or a request moved it on since
            job.append_log(f"the stopped daemon's training process (pid {t.proc.pid if t.proc else '?'}) has exited")
            if rec.state in ("queued", "training") and job.results_complete() and \
                    not (rec.stream and job.hash_state() == "mismatch"):
                self.finish(job)
            elif rec.state == "queued":
                rec.progress.message = "interrupted; resumes from its last checkpoint"
                self.save(job)
            return
        if code == EXIT_DONE and job.results_complete() and not (rec.stream and job.hash_state() == "mismatch"):
            self.finish(job)
        elif t.reason == "cancel" or rec.state == "cancelled":
            job.append_log(f"training stopped on request (exit {code})")
        elif rec.state != "training":
            pass  # started again or otherwise moved on while it was stopping
        elif t.reason == "yield" and code in (EXIT_STOPPED, -signal.SIGTERM, -signal.SIGKILL):  # SIGTERM: before
            # its handler was in place
            rec.state = "queued"
            rec.progress.message = "queued; gave its device to a job that could train, while it waits for its uploads"
            self.save(job)
            job.append_log(f"training stopped while it waited for uploads (exit {code}); queued again")
        elif t.reason == "shutdown" or code == EXIT_STOPPED:
            rec.state = "queued"
            rec.progress.message = "interrupted; resumes from its last checkpoint"
            self.save(job)
            job.append_log(f"training interrupted (exit {code}); queued again")
        elif code == EXIT_FAILED:
            self.fail(job, t.last_error or "training failed (see the job's log)")
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            self.fail(job, f"the training process was killed by {name}{hint}")
        else:
            self.fail(job, t.last_error or f"the training process exited with status {code} (see the job's log)")

    # --- job records ------------------------------------------------------------------------------------------

    def finish(self, job: Job) -> None:
        rec = job.record
        rec.state, rec.error = "done", ""
        rec.progress.progress, rec.progress.phase, rec.progress.eta_s = 1.0, "done", None
        rec.progress.message = "done"
        self.save(job)
        job.append_log("done")
        freed = job.prune_windows()
        if freed:
            job.append_log(f"removed the windows' work files ({freed / 1e6:.0f} MB): every result frame is written")

    def fail(self, job: Job, reason: str) -> None:
        job.record.state, job.record.error = "failed", reason
        job.record.progress.message = "failed"
        self.save(job)
        job.append_log(f"failed: {reason}")

    def save(self, job: Job, durable: bool = True) -> None:
        """Write a job record; a full disk is logged and retried later, never fatal to the daemon."""
        try:
            job.save(durable)
            job.save_failure_said = -math.inf  # the next failure is said at once
        except OSError as exc:
            now = time.monotonic()
            job.dirty_progress = True
            job.last_flush = now  # retried after the flush period, not on every turn of the loop (10 a second)
            if now - job.save_failure_said >= SAVE_FAILURE_REPEAT_S:
                job.save_failure_said = now
                log.error("cannot write the record of job %s: %s (retried every %g s; said again once a minute "
                          "while it fails)", job.id, exc, self.progress_flush_s)

    def flush_progress(self) -> None:
        now = time.monotonic()
        for job in self.store.jobs.values():
            if job.dirty_progress and now - job.last_flush >= self.progress_flush_s:
                self.save(job, durable=False)
