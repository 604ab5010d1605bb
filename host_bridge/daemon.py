"""The engine daemon: a ROUTER socket, the job store and one training process per device.

One thread owns the socket, the store and the trainers, and polls the socket together with the trainers' event
pipes; training runs in child processes (host_bridge/worker.py), so `job.status` is answered within milliseconds
while a job trains, and no request can block on the engine.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq

from vinpaint import __version__
from vinpaint.protocol import codec, messages
from vinpaint.protocol.codec import DTYPES, Message, ProtocolError
from vinpaint.protocol.content_hash import clip_hash, item_digest

from . import settings as wire_settings
from .auth import ServerAuth, check_bind
from .config import DaemonConfig
from .store import Job, JobRecord, JobStore, StoreError, atomic_write_json, is_disk_full, summarise_history
from .worker import EXIT_DONE, EXIT_FAILED, EXIT_STOPPED

log = logging.getLogger("vinpaint.daemon")

POLL_MS = 100
BURST = 64
"""Requests handled before the trainers' pipes are looked at again."""
PHASE_SPAN = {"flow": (0.0, 0.05), "setup": (0.05, 0.05), "train": (0.05, 0.95), "generate": (0.95, 1.0),
              "done": (1.0, 1.0)}
"""Share of the whole job each engine phase covers, for one `progress` number."""
LOGGED_FAILURES_PER_MINUTE = 10
"""Tracebacks the daemon logs per minute; beyond that it counts them (a client sending bad requests in a loop
must not fill the disk with logs)."""
MAX_LOGGED_TRACEBACK = 2000
"""Characters of one logged traceback (its end: the frames nearest the failure and the exception)."""
PRECHECK_MAX_PIXELS = 1 << 25
"""job.open asks the engine to check a clip's geometry and settings when T*H*W is at most this (it costs T*H*W
bytes); bigger clips are checked when training starts."""


class DaemonError(Exception):
    """The daemon cannot start (address in use, store locked, authentication missing); the text says why."""


class OneLineFormatter(logging.Formatter):
    """Every log record on exactly one line: newlines and other control characters (in a client's string or a
    traceback) are escaped, so nothing a client sends can forge a log line, and a record is cut at 8 KB."""

    MAX = 8192

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
        return text if len(text) <= self.MAX else text[:self.MAX] + f"... ({len(text) - self.MAX} more chars)"


def configure_logging(quiet: bool = False) -> None:
    """The daemon's log on stderr, one line per record (OneLineFormatter)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s vinpaint-daemon %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)


class FailureLog:
    """Logs unexpected failures with a short traceback, at most `per_minute` a minute; the rest are counted and
    reported in one line when the minute is over."""

    def __init__(self, per_minute: int = LOGGED_FAILURES_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self.window = 0.0
        self.logged = 0
        self.suppressed = 0

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        if now - self.window >= 60.0:
            if self.suppressed:
                log.error("%d more failures in the last minute were not logged", self.suppressed)
            self.window, self.logged, self.suppressed = now, 0, 0
        if self.logged >= self.per_minute:
            self.suppressed += 1
            return
        self.logged += 1
        trace = traceback.format_exc()
        log.error("%s: %s", what, trace if len(trace) <= MAX_LOGGED_TRACEBACK else
                  "..." + trace[-MAX_LOGGED_TRACEBACK:])


@dataclass
class Trainer:
    """A device slot and the training process running on it, if any."""

    device: str
    job_id: str = ""
    proc: subprocess.Popen | None = None
    fd: int = -1
    buffer: bytes = b""
    reason: str = ""
    """Why the daemon stopped it: "cancel", "delete", "shutdown" (empty: it was not stopped)."""
    stop_sent: float = 0.0
    trash: Path | None = None
    last_error: str = ""
    memory: int = 0
    """Bytes of memory of the device (RAM for cpu), for refusing at job.open a job that cannot fit."""

    @property
    def busy(self) -> bool:
        return self.proc is not None


def default_devices() -> tuple[str, ...]:
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # no torch build with CUDA: train on the CPU
        count = 0
    return tuple(f"cuda:{i}" for i in range(count)) or ("cpu",)


class Daemon:
    """Owns the socket, the job store and the trainers; `serve()` runs until stop() or SIGTERM."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.limits = config.limits
        self.store = JobStore(config.store)
        self.trainers = [Trainer(d) for d in (config.devices or default_devices())]
        self.context: zmq.Context | None = None
        self.socket: zmq.Socket | None = None
        self.auth: ServerAuth | None = None
        self.endpoint = ""
        self._lock_fd = -1
        self._stopping = 0.0
        self._stop_now = False
        self._ctx: dict[str, str] = {}
        self.failure = FailureLog()
        self.handlers: dict[str, Callable[[Message, dict[str, Any]], list[Any]]] = {
            "hello": self.on_hello, "job.open": self.on_open, "job.upload": self.on_upload,
            "job.start": self.on_start, "job.status": self.on_status, "job.fetch": self.on_fetch,
            "job.history": self.on_history, "job.cancel": self.on_cancel, "job.delete": self.on_delete,
            "job.list": self.on_list,
        }

    # --- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Check the devices and the address, lock and load the store, recover interrupted jobs, bind; returns
        the endpoint."""
        self._check_devices()
        check_bind(self.config.bind, self.config.auth)
        self.config.store.mkdir(parents=True, exist_ok=True)
        self._lock_store()
        for note in self.store.open():
            log.warning(note)
        self.store.empty_trash()
        self._recover()
        self.context = zmq.Context()
        try:
            self.auth = ServerAuth(self.context, self.config.auth)
            sock = self.context.socket(zmq.ROUTER)
            sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 64)
            sock.setsockopt(zmq.SNDHWM, 64)
            sock.setsockopt(zmq.HEARTBEAT_IVL, 5000)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 20000)
            self.auth.apply(sock)
            self.socket = sock
            sock.bind(self.config.bind)
        except zmq.ZMQError as exc:
            self.close()
            raise DaemonError(f"cannot listen on {self.config.bind}: {exc}") from None
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        atomic_write_json(self.config.store / "daemon.json",
                          {"endpoint": self.endpoint, "pid": os.getpid(), "started": time.time(),
                           "version": __version__, "protocol": codec.PROTOCOL_VERSION})
        return self.endpoint

    def _check_devices(self) -> None:
        """A device this machine cannot train on stops the daemon at start, not every job later."""
        from vinpaint.engine import InputError
        from vinpaint.engine.devices import check_device, device_memory

        for t in self.trainers:
            try:
                t.device = check_device(t.device)
                t.memory = device_memory(t.device)
            except InputError as exc:
                raise DaemonError(str(exc).rstrip(".")) from None
        names = [t.device for t in self.trainers]
        if len(set(names)) != len(names):
            raise DaemonError(f"a device is named twice ({', '.join(names)}); give each --device once")

    def _lock_store(self) -> None:
        path = self.config.store / "daemon.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = ""
            try:
                other = f" (pid {json.loads((self.config.store / 'daemon.json').read_text())['pid']})"
            except (OSError, ValueError, KeyError):
                pass
            raise DaemonError(f"another daemon{other} is using the store {self.config.store}") from None
        self._lock_fd = fd

    def _recover(self) -> None:
        """After a restart: finished work stays finished, interrupted training goes back to the queue."""
        for job in self.store.jobs.values():
            rec = job.record
            if rec.state in ("queued", "training") and job.results_complete():
                self._finish(job)
            elif rec.state == "training":
                rec.state = "queued"
                rec.progress.message = "interrupted; resumes from its last checkpoint"
                job.save()
                job.append_log("daemon restarted: training interrupted, queued again")

    def stop(self) -> None:
        """Ask serve() to return: trainers checkpoint first (a second call kills them)."""
        if self._stopping:
            self._stop_now = True
        else:
            self._stopping = time.monotonic()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self.stop())

    def serve(self) -> None:
        """The loop: requests, trainer events, exits, the queue; then a clean shutdown."""
        assert self.socket is not None
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        registered: set[int] = set()
        try:
            while True:
                for t in self.trainers:
                    if t.fd >= 0 and t.fd not in registered:
                        poller.register(t.fd, zmq.POLLIN)
                        registered.add(t.fd)
                live = {t.fd for t in self.trainers if t.fd >= 0}
                for fd in registered - live:
                    poller.unregister(fd)
                registered &= live
                try:
                    ready = dict(poller.poll(POLL_MS))
                except zmq.ZMQError as exc:
                    if exc.errno == zmq.EINTR:
                        continue
                    raise
                if self.socket in ready:
                    self._drain_socket()
                for t in self.trainers:
                    if t.fd >= 0 and t.fd in ready:
                        self._guard(self._read_events, t)
                self._guard(self._reap)
                if self._stopping:
                    if self._shutdown_step():
                        break
                else:
                    self._guard(self._schedule)
                self._guard(self._flush_progress)
        finally:
            self.close()

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Housekeeping that fails (a bug, a vanished file) is logged; the daemon keeps serving."""
        try:
            fn(*args)
        except Exception:
            self.failure("housekeeping failed")

    def _shutdown_step(self) -> bool:
        """Stop every trainer (SIGTERM, then SIGKILL after the grace time); True once none is left."""
        grace_over = time.monotonic() - self._stopping > self.config.stop_grace_s
        for t in self.trainers:
            if not t.busy:
                continue
            if not t.stop_sent:
                self._signal(t, "shutdown")
            elif grace_over or self._stop_now:
                self._kill(t)
        return not any(t.busy for t in self.trainers)

    def close(self) -> None:
        for t in self.trainers:
            if t.busy:
                self._kill(t)
                t.proc.wait()  # type: ignore[union-attr]
                self._reap()
        for job in self.store.jobs.values():
            if job.dirty_progress:
                self._save(job, durable=False)
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        if self.context is not None:
            self.context.term()
            self.context = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # --- requests ---------------------------------------------------------------------------------------------

    def _drain_socket(self) -> None:
        assert self.socket is not None
        for _ in range(BURST):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue  # only an identity: nothing to answer
            reply = self.handle(frames[1:])
            try:
                self.socket.send_multipart([frames[0]] + reply, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                log.warning("a reply was dropped: the client is not reading (its queue is full)")
            except zmq.ZMQError as exc:
                log.warning("a reply could not be sent: %s", exc)

    def handle(self, frames: list[Any]) -> list[Any]:
        """One request's frames -> its reply's frames. Never raises: every failure becomes an error reply."""
        self._ctx = {"re": "", "type": "error"}
        try:
            msg = codec.decode_request(frames, self.limits.max_header_bytes)
            self._ctx = {"re": msg.id, "type": msg.type}
            body = messages.check_request(msg)
            return self.handlers[msg.type](msg, body)
        except ProtocolError as exc:
            return codec.encode_error(exc)
        except StoreError as exc:
            return codec.encode_error(self.error(exc.code, str(exc)))
        except OSError as exc:
            if is_disk_full(exc):
                return codec.encode_error(self.error(
                    "storage_full", f"the daemon's disk is full ({os.strerror(exc.errno)}); free space and resend"))
            self.failure("request failed")
            return codec.encode_error(self.error("internal", f"the daemon could not do this: {exc}"))
        except Exception as exc:  # a bug must cost one request, never the daemon
            self.failure("request failed")
            return codec.encode_error(self.error("internal", f"internal error in the daemon: {type(exc).__name__}"))

    def error(self, code: str, message: str, field: str | None = None, body: dict | None = None) -> ProtocolError:
        return ProtocolError(code, message, field=field, body=body, **self._ctx)

    def reply(self, body: dict[str, Any], arrays: tuple[np.ndarray, ...] = ()) -> list[Any]:
        return codec.encode_reply(self._ctx["type"], self._ctx["re"], body, arrays)

    def on_hello(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        from vinpaint.engine import PRESETS, VARIANTS

        if body["client"]:
            log.info("hello from %r", body["client"][:256])
        lim = self.limits
        return self.reply({
            "protocol": codec.PROTOCOL_VERSION, "server": f"vinpaint {__version__}",
            "devices": [t.device for t in self.trainers], "presets": list(PRESETS), "variants": list(VARIANTS),
            "limits": {"max_message_bytes": lim.max_message_bytes, "max_header_bytes": lim.max_header_bytes,
                       "max_frames": lim.max_frames, "max_width": lim.max_width, "max_height": lim.max_height},
            "features": list(messages.FEATURES)})

    def on_open(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        lim = self.limits
        for key, most in (("frames", lim.max_frames), ("width", lim.max_width), ("height", lim.max_height)):
            if body[key] > most:
                raise self.error("too_large", f"{key} {body[key]} is over this daemon's limit of {most}",
                                 field=f"body.{key}")
        config = wire_settings.resolve(body["settings"], self._ctx)
        self._check_cost(body, config)
        jid = wire_settings.job_id(body["content_hash"], config)
        geometry = ("frames", "width", "height", "channels", "dtype", "mask_dtype", "content_hash")
        job = self.store.jobs.get(jid)
        created = job is None
        if job is not None:
            differs = [k for k in geometry + ("references",) if getattr(job.record, k) != body[k]]
            if differs:
                raise self.error("conflict", f"job {jid} exists with another {differs[0]}; the content hash must "
                                 "cover the clip it describes", field=f"body.{differs[0]}")
        else:
            if len(self.store.jobs) >= lim.max_jobs:
                raise self.error("busy", f"the store holds {len(self.store.jobs)} jobs, its limit; delete "
                                 "finished jobs (job.delete) and try again")
            self._precheck(body, config)
            record = JobRecord(job=jid, content_hash=body["content_hash"], frames=body["frames"],
                               width=body["width"], height=body["height"], channels=body["channels"],
                               dtype=body["dtype"], mask_dtype=body["mask_dtype"], settings=body["settings"],
                               config=config.to_dict(), name=body["name"], references=body["references"])
            self._check_space(record)
            self._check_memory(body, config)
            job = self.store.create(record)
            job.append_log(f"opened: {record.frames} frames {record.width}x{record.height}x{record.channels} "
                           f"{record.dtype}, preset {config.preset}, variant {config.variant}")
        reply = {"job": jid, "created": created, "state": job.record.state,
                 "have_frames": sorted(job.have["frame"]), "have_masks": sorted(job.have["mask"])}
        if job.record.references:
            reply["have_references"] = sorted(job.have["reference"])
        return self.reply(reply)

    def _check_cost(self, body: dict[str, Any], config) -> None:
        """Refuse a job that would train for ever (or plan a schedule too long to build), before it is stored."""
        from vinpaint.engine import InputError

        lim, t = self.limits, body["frames"]
        try:
            config.check_clip(t)
        except InputError as exc:
            raise self.error("bad_request", f"the engine cannot train this clip: {exc}",
                             field="body.settings") from None
        steps = config.planned_steps(t)
        if steps > lim.max_train_steps:
            raise self.error("too_large", f"the job plans {steps} training steps, over this daemon's limit of "
                             f"{lim.max_train_steps}; set train.max_steps or fewer train.epochs",
                             field="body.settings")

    def _check_memory(self, body: dict[str, Any], config) -> None:
        """Refuse a job that cannot fit in any device's memory (host_bridge.settings.job_memory's estimate)."""
        from vinpaint.engine import InputError
        from vinpaint.engine.devices import host_memory

        try:
            host, device = wire_settings.job_memory(config, body["frames"], body["height"], body["width"],
                                                    body["channels"], DTYPES[body["dtype"]].itemsize)
        except InputError as exc:
            raise self.error("bad_request", f"the engine cannot train this clip: {exc}", field="body") from None

        ram = host_memory()
        fits = [tr for tr in self.trainers if (host + device <= tr.memory if tr.device == "cpu"
                                              else host <= ram and device <= tr.memory)]
        if not fits:
            biggest = max(self.trainers, key=lambda tr: tr.memory)
            raise self.error("too_large", f"the job needs about {(host + device) / 2**30:.1f} GiB of memory "
                             f"({host / 2**30:.1f} GiB for the clip, {device / 2**30:.1f} GiB for training) but "
                             f"the largest device here ({biggest.device}) has {biggest.memory / 2**30:.1f} GiB; "
                             "use fewer frames, a smaller resolution.work_width or a smaller train.batch_size",
                             field="body")

    def _precheck(self, body: dict[str, Any], config) -> None:
        """Let the engine refuse a clip it could never train (too few frames for the batch, ...) right away."""
        from vinpaint.engine import InputError, validate

        t, h, w = body["frames"], body["height"], body["width"]
        if t * h * w > PRECHECK_MAX_PIXELS or h * w < 2:
            return
        frames = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (t, h, w, 3))
        one = np.zeros((1, h, w), bool)
        one[0, 0, 0] = True
        try:
            validate(frames, np.broadcast_to(one, (t, h, w)), config)
        except InputError as exc:
            raise self.error("bad_request", f"the engine cannot train this clip: {exc}", field="body") from None

    def _check_space(self, record: JobRecord) -> None:
        need = record.frames * (2 * record.item_bytes("frame") + 2 * record.item_bytes("mask")) + \
            len(record.references) * record.item_bytes("frame")  # inputs, results, mattes, references
        free = self.store.free_bytes() - self.limits.reserve_bytes
        if need > free:
            raise self.error("storage_full", f"the job needs {need / 1e9:.2f} GB for its inputs and results but "
                             f"the daemon's disk has {max(free, 0) / 1e9:.2f} GB to spare")

    def on_upload(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec, kind, index = job.record, body["kind"], body["index"]
        if index >= rec.frames:
            raise self.error("bad_request", f"'body.index' must be from 0 to {rec.frames - 1}, not {index}",
                             field="body.index")
        if kind == "reference" and index not in rec.references:
            listed = ", ".join(map(str, rec.references)) or "none"
            raise self.error("bad_request", f"frame {index} is not one of the reference frames job.open listed "
                             f"({listed})", field="body.index")
        spec = msg.specs[0]
        want_dtype = rec.mask_dtype if kind == "mask" else rec.dtype
        want_shape = rec.item_shape(kind)
        if spec.dtype != want_dtype or spec.shape != want_shape:
            raise self.error("bad_buffer", f"this job's {kind}s are {want_dtype} {list(want_shape)}, not "
                             f"{spec.dtype} {list(spec.shape)}", field="buffers[0]")
        if rec.state != "uploading":
            if index not in job.have[kind]:
                raise self.error("conflict", f"job {rec.job} is {rec.state} and takes no more uploads")
            return self._upload_reply(job, kind, index, stored=False)
        data = msg.buffers[0]
        if spec.dtype == "f4" and not np.isfinite(np.frombuffer(data, np.float32)).all():
            raise self.error("bad_buffer", f"{kind} {index} has NaN or infinite values", field="buffers[0]")
        digest = item_digest(data)
        if body["digest"] is not None and body["digest"] != digest.hex():
            raise self.error("hash_mismatch", f"{kind} {index} does not match its digest (corrupted on the way?); "
                             "resend it", field="body.digest")
        job.store_item(kind, index, data, digest)
        return self._upload_reply(job, kind, index, stored=True)

    def _upload_reply(self, job: Job, kind: str, index: int, stored: bool) -> list[Any]:
        reply = {"job": job.id, "kind": kind, "index": index, "stored": stored,
                 "missing_frames": len(job.missing("frame")), "missing_masks": len(job.missing("mask"))}
        if job.record.references:
            reply["missing_references"] = len(job.missing("reference"))
        return self.reply(reply)

    def on_start(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec = job.record
        if rec.state == "uploading":
            missing_f, missing_m = job.missing("frame"), job.missing("mask")
            missing_r = job.missing("reference")
            if missing_f or missing_m or missing_r:
                details = {"missing_frames": missing_f[:messages.MAX_MISSING_LISTED],
                           "missing_masks": missing_m[:messages.MAX_MISSING_LISTED]}
                refs = ""
                if missing_r:
                    details["missing_references"] = missing_r[:messages.MAX_MISSING_LISTED]
                    refs = f" and {len(missing_r)} reference frame(s)"
                raise self.error("incomplete", f"{len(missing_f)} frame(s) and {len(missing_m)} mask(s){refs} are "
                                 "not uploaded yet", body=details)
            got = clip_hash(rec.frames, rec.height, rec.width, rec.channels, rec.dtype, rec.mask_dtype,
                            [job.digests["frame"][i] for i in range(rec.frames)],
                            [job.digests["mask"][i] for i in range(rec.frames)],
                            {i: job.digests["reference"][i] for i in rec.references})
            if got != rec.content_hash:
                raise self.error("hash_mismatch", "the uploaded frames and masks do not hash to the job's "
                                 "content_hash; re-upload them (or open the job with the right hash)")
        if rec.state in ("uploading", "failed", "cancelled"):
            if sum(1 for j in self.store.jobs.values() if j.record.state == "queued") >= self.limits.max_queued:
                raise self.error("busy", f"{self.limits.max_queued} jobs are queued already; try again later")
            rec.state, rec.queued_at, rec.error = "queued", time.time(), ""
            rec.progress.message = "queued"
            self._save(job)
            job.append_log("queued")
        return self.reply({"job": job.id, "state": rec.state, "position": self._position(job)})

    def _queue(self) -> list[Job]:
        return sorted((j for j in self.store.jobs.values() if j.record.state == "queued"),
                      key=lambda j: (j.record.queued_at, j.id))

    def _position(self, job: Job) -> int | None:
        if job.record.state != "queued":
            return None
        return next(i for i, j in enumerate(self._queue()) if j is job)

    def on_status(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec, p = job.record, job.record.progress
        return self.reply({
            "job": job.id, "state": rec.state, "progress": float(min(max(p.progress, 0.0), 1.0)),
            "phase": p.phase, "step": max(int(p.step), 0), "total": max(int(p.total), 0),
            "elapsed_s": max(float(p.elapsed_s), 0.0),
            "eta_s": None if p.eta_s is None or rec.state != "training" else max(float(p.eta_s), 0.0),
            "losses": dict(p.losses), "message": p.message[:4096],
            "error": rec.error[:4096] if rec.state == "failed" else None, "position": self._position(job),
            "frames": rec.frames, "width": rec.width, "height": rec.height, "channels": rec.channels,
            "dtype": rec.dtype, "mask_dtype": rec.mask_dtype, "missing_frames": len(job.missing("frame")),
            "missing_masks": len(job.missing("mask")),
            "missing_references": len(job.missing("reference")) if rec.references else None,
            "name": rec.name, "created": rec.created,
            "updated": rec.updated})

    def on_fetch(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec, index = job.record, body["index"]
        if index >= rec.frames:
            raise self.error("bad_request", f"'body.index' must be from 0 to {rec.frames - 1}, not {index}",
                             field="body.index")
        self._require_done(rec)
        layer = body["layer"]
        path = job.result_path(index, layer)
        shape = rec.item_shape("frame") if layer == "frame" else (rec.height, rec.width, 1)
        try:
            data = np.fromfile(path, dtype=DTYPES[rec.dtype] if layer == "frame" else np.uint8)
        except OSError:
            data = np.empty(0)
        if data.size != int(np.prod(shape)):
            what = "result frame" if layer == "frame" else "matte"
            raise self.error("internal", f"{what} {index} of job {rec.job} is missing from the store (a job "
                             "finished by an older daemon has no mattes); start the job again to regenerate it")
        reply = {"job": job.id, "index": index}
        if layer != "frame":
            reply["layer"] = layer
        return self.reply(reply, (data.reshape(shape),))

    def _require_done(self, rec: JobRecord) -> None:
        """`not_ready` naming the job's state (and the reason when it failed) unless it is done."""
        if rec.state != "done":
            why = f": {rec.error}" if rec.state == "failed" and rec.error else ""
            raise self.error("not_ready", f"job {rec.job} is {rec.state}, not done{why}")

    def on_history(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec = job.record
        self._require_done(rec)
        kept = job.read_history()
        if kept is None:
            raise self.error("not_ready", f"job {rec.job} was finished by an older daemon that kept no loss history")
        terms, rows = kept
        return self.reply({"job": job.id, "terms": terms, "steps": int(rows.shape[0])},
                          (summarise_history(rows, body["points"]),))

    def on_cancel(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec = job.record
        if rec.state in ("queued", "training"):
            trainer = self._trainer_of(job.id)
            if trainer is not None:
                self._signal(trainer, "cancel")
            rec.state = "cancelled"
            rec.progress.message = "cancelled; start it again to resume from its checkpoint"
            self._save(job)
            job.append_log("cancelled")
        return self.reply({"job": job.id, "state": rec.state})

    def on_delete(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        trainer = self._trainer_of(job.id)
        if trainer is not None:
            self._signal(trainer, "delete")
            trainer.trash = self.store.delete(job.id, remove_now=False)
        else:
            self.store.delete(job.id)
        return self.reply({"job": job.id, "deleted": True})

    def on_list(self, msg: Message, body: dict[str, Any]) -> list[Any]:
        jobs = sorted(self.store.jobs.values(), key=lambda j: (j.record.created, j.id))
        return self.reply({"jobs": [
            {"job": j.id, "state": j.record.state, "name": j.record.name,
             "progress": float(min(max(j.record.progress.progress, 0.0), 1.0)), "frames": j.record.frames,
             "width": j.record.width, "height": j.record.height, "created": j.record.created,
             "updated": j.record.updated} for j in jobs]})

    # --- training ---------------------------------------------------------------------------------------------

    def _trainer_of(self, job_id: str) -> Trainer | None:
        return next((t for t in self.trainers if t.busy and t.job_id == job_id), None)

    def _schedule(self) -> None:
        """FIFO: each idle device takes the oldest queued job."""
        for trainer in self.trainers:
            if trainer.busy:
                continue
            queue = [j for j in self._queue() if self._trainer_of(j.id) is None]
            if not queue:
                return
            job = queue[0]
            if job.results_complete():
                self._finish(job)
                continue
            self._spawn(trainer, job)

    def _spawn(self, trainer: Trainer, job: Job) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            logf = open(job.log_path, "ab")
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            self._fail(job, f"cannot write the job's log: {exc}")
            return
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vinpaint.host_bridge.worker", str(job.root), "--device", trainer.device,
                 "--progress-fd", str(write_fd), "--parent", str(os.getpid())],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            self._fail(job, f"cannot start the training process: {exc}")
            return
        finally:
            os.close(write_fd)
            logf.close()
        trainer.job_id, trainer.proc, trainer.fd = job.id, proc, read_fd
        trainer.buffer, trainer.reason, trainer.stop_sent, trainer.trash, trainer.last_error = b"", "", 0.0, None, ""
        job.record.state = "training"
        # The phase and step of the last run are stale until the new process reports; "" says "not started yet".
        job.record.progress.phase, job.record.progress.step, job.record.progress.eta_s = "", 0, None
        job.record.progress.message = f"starting on {trainer.device}"
        self._save(job)
        job.append_log(f"training started on {trainer.device} (pid {proc.pid})")
        try:
            (job.root / "worker.pid").write_text(f"{proc.pid}\n")
        except OSError:
            pass

    def _read_events(self, trainer: Trainer) -> None:
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
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "error":
                trainer.last_error = str(event.get("message", ""))[:1000]
            elif event.get("event") == "progress" and job is not None and job.record.state == "training":
                self._apply_progress(job, event)

    def _apply_progress(self, job: Job, event: dict[str, Any]) -> None:
        p = job.record.progress
        phase = str(event.get("phase", ""))[:64]
        step, total = _num(event.get("step"), int), _num(event.get("total"), int)
        lo, hi = PHASE_SPAN.get(phase, (p.progress, p.progress))
        frac = step / total if total > 0 else 0.0
        # never backwards: an engine may report a phase again (flow for propagation, then for training)
        p.progress = max(p.progress, 0.0, min(1.0, lo + (hi - lo) * min(frac, 1.0)))
        p.phase, p.step, p.total = phase, max(step, 0), max(total, 0)
        p.elapsed_s = max(_num(event.get("elapsed_s"), float), 0.0)
        eta = event.get("eta_s")
        p.eta_s = _num(eta, float) if eta is not None else None
        losses = event.get("losses")
        if isinstance(losses, dict) and losses:
            p.losses = {str(k)[:64]: float(v) for k, v in losses.items()
                        if isinstance(v, (int, float)) and np.isfinite(v)}
        p.message = str(event.get("message", ""))[:1000]
        job.dirty_progress = True

    def _signal(self, trainer: Trainer, reason: str) -> None:
        trainer.reason = trainer.reason or reason
        if trainer.proc is not None and not trainer.stop_sent:
            trainer.stop_sent = time.monotonic()
            try:
                trainer.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _kill(self, trainer: Trainer) -> None:
        if trainer.proc is not None and trainer.proc.poll() is None:
            try:
                trainer.proc.kill()
            except ProcessLookupError:
                pass

    def _reap(self) -> None:
        for t in self.trainers:
            if t.proc is None:
                continue
            if t.reason and t.stop_sent and time.monotonic() - t.stop_sent > self.config.stop_grace_s:
                self._kill(t)  # it had its chance to checkpoint
            code = t.proc.poll()
            if code is None:
                continue
            if t.fd >= 0:
                self._read_events(t)  # the last events (done / error) before the pipe closed
                if t.fd >= 0:
                    os.close(t.fd)
                    t.fd = -1
            self._exited(t, code)
            t.proc, t.job_id, t.reason, t.stop_sent = None, "", "", 0.0
            if t.trash is not None:
                import shutil

                shutil.rmtree(t.trash, ignore_errors=True)
                t.trash = None

    def _exited(self, t: Trainer, code: int) -> None:
        job = self.store.jobs.get(t.job_id)
        if job is None:
            return  # deleted while it trained
        rec = job.record
        if code == EXIT_DONE and job.results_complete():
            self._finish(job)
        elif t.reason == "cancel" or rec.state == "cancelled":
            job.append_log(f"training stopped on request (exit {code})")
        elif rec.state != "training":
            pass  # started again or otherwise moved on while it was stopping
        elif t.reason == "shutdown" or code == EXIT_STOPPED:
            rec.state = "queued"
            rec.progress.message = "interrupted; resumes from its last checkpoint"
            self._save(job)
            job.append_log(f"training interrupted (exit {code}); queued again")
        elif code == EXIT_FAILED:
            self._fail(job, t.last_error or "training failed (see the job's log)")
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            self._fail(job, f"the training process was killed by {name}{hint}")
        else:
            self._fail(job, t.last_error or f"the training process exited with status {code} (see the job's log)")

    def _finish(self, job: Job) -> None:
        rec = job.record
        rec.state, rec.error = "done", ""
        rec.progress.progress, rec.progress.phase, rec.progress.eta_s = 1.0, "done", None
        rec.progress.message = "done"
        self._save(job)
        job.append_log("done")

    def _fail(self, job: Job, reason: str) -> None:
        job.record.state, job.record.error = "failed", reason
        job.record.progress.message = "failed"
        self._save(job)
        job.append_log(f"failed: {reason}")

    def _save(self, job: Job, durable: bool = True) -> None:
        """Write a job record; a full disk is logged and retried later, never fatal to the daemon."""
        try:
            job.save(durable)
        except OSError as exc:
            job.dirty_progress = True
            log.error("cannot write the record of job %s: %s", job.id, exc)

    def _flush_progress(self) -> None:
        now = time.monotonic()
        for job in self.store.jobs.values():
            if job.dirty_progress and now - job.last_flush >= self.config.progress_flush_s:
                self._save(job, durable=False)


def _num(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return kind(0)
    return kind(value)
