"""The daemon's answers: one method per request type of protocol/SPEC.md, each given the request's context.

`Requests.handle(frames)` decodes one request, checks it against the spec, calls its handler and encodes the
reply; every failure becomes an error reply (a bug costs one request, never the daemon). A handler reads and
changes the job store and asks the trainer pool to stop a process; it never waits on training.
"""
from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from vinpaint import __version__, engine
from vinpaint.engine import PRESETS, VARIANTS, InputError
from vinpaint.engine.devices import host_memory
from vinpaint.engine.shot import check_windows
from vinpaint.files import open_regular
from vinpaint.protocol import codec, messages
from vinpaint.protocol.codec import DTYPES, Message, ProtocolError
from vinpaint.protocol.content_hash import item_digest

from . import job_settings, siblings
from .daemon_config import LimitsConfig
from .logs import HelloLog, PerMinute
from .pool import TrainerPool, fits
from .store import Job, JobRecord, JobStore, StoreError, is_disk_full, is_out_of_files, summarise_history

log = logging.getLogger("vinpaint.daemon")

STREAM_UPLOAD_STATES = ("queued", "training", "failed", "cancelled")
"""The states in which a job started with `stream` takes the items it still lacks."""
REPAIR_STATES = ("uploading", "failed", "cancelled", "done")
"""The states in which no trainer reads a job's inputs: an input removed by hand is looked for at job.open and
job.start, counted missing again, and taken when a client sends it (before, a started job refused it for good)."""
HASH_MISMATCH = "the uploaded items do not hash to the job's content_hash"
HASH_FIX = "delete the job (job.delete) and upload the clip again, or open it with the right hash"
PRECHECK_MAX_PIXELS = 1 << 25
"""job.open asks the engine to check a clip's geometry and settings when T*H*W is at most this (it costs T*H*W
bytes); bigger clips are checked when training starts."""


@dataclass(frozen=True)
class RequestContext:
    """Which request a reply or an error answers."""

    re: str = ""
    type: str = "error"

    @property
    def ids(self) -> dict[str, str]:
        return {"re": self.re, "type": self.type}

    def error(self, code: str, message: str, field: str | None = None, body: dict | None = None) -> ProtocolError:
        return ProtocolError(code, message, field=field, body=body, re=self.re, type=self.type)

    def reply(self, body: dict[str, Any], arrays: tuple[np.ndarray, ...] = ()) -> list[Any]:
        return codec.encode_reply(self.type, self.re, body, arrays)


Handler = Callable[[RequestContext, Message, dict[str, Any]], list[Any]]


class Requests:
    """The ten request handlers over one job store and one trainer pool."""

    def __init__(self, store: JobStore, pool: TrainerPool, limits: LimitsConfig,
                 failure: Callable[[str], None]) -> None:
        self.store, self.pool, self.limits, self.failure = store, pool, limits, failure
        self.hellos = HelloLog()
        self.out_of_files = PerMinute(1, lambda n: log.warning("%d more requests answered busy: out of open files", n))
        self.handlers: dict[str, Handler] = {
            "hello": self.on_hello, "job.open": self.on_open, "job.upload": self.on_upload,
            "job.start": self.on_start, "job.status": self.on_status, "job.fetch": self.on_fetch,
            "job.history": self.on_history, "job.cancel": self.on_cancel, "job.delete": self.on_delete,
            "job.list": self.on_list,
        }

    def handle(self, frames: list[Any], parts: int | None = None) -> list[Any]:
        """One request's frames -> its reply's frames. Never raises: every failure becomes an error reply.
        `parts`: the request's part count where the daemon kept only its first frames (codec.decode_request)."""
        ctx = RequestContext()
        try:
            msg = codec.decode_request(frames, self.limits.max_header_bytes, parts)
            ctx = RequestContext(msg.id, msg.type)
            body = messages.check_request(msg)
            if msg.type != "hello":
                self.store.check_present()
            return self.handlers[msg.type](ctx, msg, body)
        except ProtocolError as exc:
            return codec.encode_error(exc)
        except StoreError as exc:
            return codec.encode_error(ctx.error(exc.code, str(exc)))
        except OSError as exc:
            if is_disk_full(exc):
                return codec.encode_error(ctx.error(
                    "storage_full", f"the daemon's disk is full ({os.strerror(exc.errno)}); free space and resend"))
            if is_out_of_files(exc):  # connections hold the handles: `busy`, not a traceback per request
                if self.out_of_files.allows():
                    log.warning("out of open files (%s, soft limit %d): requests answer busy until client "
                                "connections close", os.strerror(exc.errno),
                                resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                return codec.encode_error(ctx.error(
                    "busy", f"the daemon has run out of open files ({os.strerror(exc.errno)}: too many client "
                    "connections); try again when some have closed"))
            self.failure("request failed")
            return codec.encode_error(ctx.error("internal", f"the daemon could not do this: {exc}"))
        except Exception as exc:  # a bug must cost one request, never the daemon
            self.failure("request failed")
            return codec.encode_error(ctx.error("internal", f"internal error in the daemon: {type(exc).__name__}"))

    def on_hello(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        if body["client"]:
            self.hellos(body["client"][:256])
        lim = self.limits
        return ctx.reply({
            "protocol": codec.PROTOCOL_VERSION, "server": f"vinpaint {__version__}",
            "devices": [t.device for t in self.pool.trainers], "presets": list(PRESETS), "variants": list(VARIANTS),
            "limits": {"max_message_bytes": lim.max_message_bytes, "max_header_bytes": lim.max_header_bytes,
                       "max_frames": lim.max_frames, "max_width": lim.max_width, "max_height": lim.max_height},
            "features": list(messages.FEATURES)})

    def on_open(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        lim = self.limits
        for key, most in (("frames", lim.max_frames), ("width", lim.max_width), ("height", lim.max_height)):
            if body[key] > most:
                raise ctx.error("too_large", f"{key} {body[key]} is over this daemon's limit of {most}",
                                 field=f"body.{key}")
        frame_bytes = body["height"] * body["width"] * body["channels"] * DTYPES[body["dtype"]].itemsize
        if frame_bytes > lim.max_message_bytes:  # each upload carries one frame (ZeroMQ's limit is per part)
            raise ctx.error("too_large", f"one frame is {frame_bytes / 2**20:.1f} MiB, more than the "
                             f"{lim.max_message_bytes / 2**20:.0f} MiB this daemon takes in one message (its "
                             "--max-message-mb); start it with a larger one, or send smaller frames", field="body")
        config = job_settings.resolve(body["settings"], ctx.ids).for_frame_size(body["height"], body["width"])
        windows = self._check_cost(ctx, body, config)
        jid = job_settings.job_id(body["content_hash"], config)
        geometry = ("frames", "width", "height", "channels", "dtype", "mask_dtype", "content_hash")
        job = self.store.jobs.get(jid)
        created = job is None
        if job is not None:
            differs = [k for k in geometry + ("references",) if getattr(job.record, k) != body[k]]
            if differs:
                raise ctx.error("conflict", f"job {jid} exists with another {differs[0]}; the content hash must "
                                 "cover the clip it describes", field=f"body.{differs[0]}")
        else:
            if self.pool.deleting(jid):
                raise ctx.error("busy", f"job {jid} was deleted and its training has not stopped yet; try again "
                                 "in a few seconds")
            if len(self.store.jobs) >= lim.max_jobs:
                raise ctx.error("busy", f"the store holds {len(self.store.jobs)} jobs, its limit; delete "
                                 "finished jobs (job.delete) and try again")
            self._precheck(ctx, body, config)
            record = JobRecord(job=jid, content_hash=body["content_hash"], frames=body["frames"],
                               width=body["width"], height=body["height"], channels=body["channels"],
                               dtype=body["dtype"], mask_dtype=body["mask_dtype"], settings=body["settings"],
                               config=config.to_dict(), name=body["name"], references=body["references"])
            self._check_space(ctx, record)
            self._check_memory(ctx, body, config)
            job = self.store.create(record)
            job.append_log(f"opened: {record.frames} frames {record.width}x{record.height}x{record.channels} "
                           f"{record.dtype}, preset {config.preset}, variant {config.variant}")
            sibling = siblings.seed(list(self.store.jobs.values()), job, config,
                                    busy=lambda job_id: self.pool.trainer_of(job_id) is not None)
            if sibling is not None:
                record.seeded_from = sibling.id
                self.pool.save(job)
                job.append_log(f"the same clip and training as job {sibling.id} ({sibling.record.state}): its "
                               "uploads and work directory taken over, so only what differs runs")
        if not created:
            self._forget_removed(job)
        reply = {"job": jid, "created": created, "state": job.record.state,
                 "have_frames": sorted(job.have["frame"]), "have_masks": sorted(job.have["mask"])}
        if job.record.references:
            reply["have_references"] = sorted(job.have["reference"])
        reply["windows"] = windows  # feature "stream": a client streams its uploads when there is more than one
        return ctx.reply(reply)

    def _check_cost(self, ctx: RequestContext, body: dict[str, Any], config) -> int:
        """Refuse a job that would train for ever (or plan a schedule too long to build), before it is stored;
        returns the number of windows it trains in. A long shot's steps are counted as the training process
        will run them: each window's own schedule, summed (job_settings.planned_steps)."""
        lim, t = self.limits, body["frames"]
        try:
            config.check_clip(job_settings.trained_frames(config, t))  # a long shot plans each window alone
            windows = len(job_settings.windows(config, t))
            steps = job_settings.planned_steps(config, t)
        except InputError as exc:
            raise ctx.error("bad_request", f"the engine cannot train this clip: {exc}",
                             field="body.settings") from None
        if steps > lim.max_train_steps:
            per = f" ({windows} windows)" if windows > 1 else ""
            raise ctx.error("too_large", f"the job plans {steps} training steps{per}, over this daemon's limit of "
                             f"{lim.max_train_steps}; set train.max_steps or fewer train.epochs",
                             field="body.settings")
        return windows

    def _check_memory(self, ctx: RequestContext, body: dict[str, Any], config) -> None:
        """Refuse a job that cannot fit in any device's memory (host_bridge.job_settings.job_memory's estimate)."""
        try:
            host, device = job_settings.job_memory(config, body["frames"], body["height"], body["width"],
                                                    body["channels"], DTYPES[body["dtype"]].itemsize)
        except InputError as exc:
            raise ctx.error("bad_request", f"the engine cannot train this clip: {exc}", field="body") from None

        ram = host_memory()
        if not any(fits(tr, host, device, ram) for tr in self.pool.trainers):
            biggest = max(self.pool.trainers, key=lambda tr: tr.memory)
            raise ctx.error("too_large", f"the job needs about {(host + device) / 2**30:.1f} GiB of memory "
                             f"({host / 2**30:.1f} GiB for the clip, {device / 2**30:.1f} GiB for training) but "
                             f"the largest device here ({biggest.device}) has {biggest.memory / 2**30:.1f} GiB; "
                             "use fewer frames, a smaller resolution.work_width or a smaller train.batch_size",
                             field="body")

    def _precheck(self, ctx: RequestContext, body: dict[str, Any], config) -> None:
        """Let the engine refuse a clip it could never train (too few frames for the batch, windows of a long shot
        too short for its batches, ...) right away, before the client uploads it."""
        t, h, w = body["frames"], body["height"], body["width"]
        try:
            check_windows(config, t)
        except InputError as exc:
            raise ctx.error("bad_request", f"the engine cannot train this clip: {exc}", field="body.settings") \
                from None
        if t * h * w > PRECHECK_MAX_PIXELS or h * w < 2:
            return
        frames = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (t, h, w, 3))
        one = np.zeros((1, h, w), bool)
        one[0, 0, 0] = True
        try:
            engine.validate(frames, np.broadcast_to(one, (t, h, w)), config)  # loads torch on first use
        except InputError as exc:
            raise ctx.error("bad_request", f"the engine cannot train this clip: {exc}", field="body") from None

    def _check_space(self, ctx: RequestContext, record: JobRecord) -> None:
        need = record.frames * (2 * record.item_bytes("frame") + 2 * record.item_bytes("mask")) + \
            len(record.references) * record.item_bytes("frame")  # inputs, results, mattes, references
        disk = self.store.free_bytes()
        free = disk - self.limits.reserve_bytes
        if need > free:
            raise ctx.error("storage_full", f"the job needs {_size(need)} for its inputs and results, but the "
                             f"daemon's disk has {_size(disk)} free, of which it keeps "
                             f"{_size(self.limits.reserve_bytes)} in reserve (the work directory needs more "
                             "again); free space on the daemon's disk")

    def on_upload(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec, kind, index = job.record, body["kind"], body["index"]
        if index >= rec.frames:
            raise ctx.error("bad_request", f"'body.index' must be from 0 to {rec.frames - 1}, not {index}",
                             field="body.index")
        if kind == "reference" and index not in rec.references:
            listed = ", ".join(map(str, rec.references)) or "none"
            raise ctx.error("bad_request", f"frame {index} is not one of the reference frames job.open listed "
                             f"({listed})", field="body.index")
        spec = msg.specs[0]
        want_dtype = rec.mask_dtype if kind == "mask" else rec.dtype
        want_shape = rec.item_shape(kind)
        if spec.dtype != want_dtype or spec.shape != want_shape:
            raise ctx.error("bad_buffer", f"this job's {kind}s are {want_dtype} {list(want_shape)}, not "
                             f"{spec.dtype} {list(spec.shape)}", field="buffers[0]")
        streaming = rec.stream and rec.state in STREAM_UPLOAD_STATES
        if rec.state != "uploading":  # started: what it holds is kept (a streaming job's was checked by digest)
            if index in job.have[kind]:
                return self._upload_reply(ctx, job, kind, index, stored=False)
            if not streaming and rec.state not in REPAIR_STATES:
                raise ctx.error("conflict", f"job {rec.job} is {rec.state} and takes no more uploads")
            if body["digest"] is None:
                raise ctx.error("bad_request", "'body.digest' is required for an upload after a streaming start: "
                                 "each item is checked on its own before the whole clip can be", field="body.digest")
        data = msg.buffers[0]
        if spec.dtype == "f4" and not np.isfinite(np.frombuffer(data, np.float32)).all():
            raise ctx.error("bad_buffer", f"{kind} {index} has NaN or infinite values", field="buffers[0]")
        digest = item_digest(data)
        if body["digest"] is not None and body["digest"] != digest.hex():
            raise ctx.error("hash_mismatch", f"{kind} {index} does not match its digest (corrupted on the way?); "
                             "resend it", field="body.digest")
        if index in job.have[kind] and job.digests[kind].get(index) == digest:
            # `uploading`: the same item again (a client repairing a job whose hash did not match re-sends every
            # item it found held): nothing to replace. A different one replaces it (SPEC.md, job.upload).
            return self._upload_reply(ctx, job, kind, index, stored=False)
        job.store_item(kind, index, data, digest)
        if streaming and job.hash_state() == "mismatch":  # the last missing item: the clip can be checked now
            self._fail_hash(job)
            raise ctx.error("hash_mismatch", f"{HASH_MISMATCH}; {HASH_FIX}")
        return self._upload_reply(ctx, job, kind, index, stored=True)

    def _fail_hash(self, job: Job) -> None:
        """A streaming job whose last item completed a clip of another content hash: its training stops and it
        becomes failed; what its windows made stays on disk and is never served (on_fetch)."""
        trainer = self.pool.trainer_of(job.id)
        if trainer is not None:
            self.pool.stop(trainer, "hash")
        self.pool.fail(job, f"{HASH_MISMATCH}; {HASH_FIX}")

    def _upload_reply(self, ctx: RequestContext, job: Job, kind: str, index: int, stored: bool) -> list[Any]:
        reply = {"job": job.id, "kind": kind, "index": index, "stored": stored,
                 "missing_frames": len(job.missing("frame")), "missing_masks": len(job.missing("mask"))}
        if job.record.references:
            reply["missing_references"] = len(job.missing("reference"))
        return ctx.reply(reply)

    def on_start(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec = job.record
        stream = False
        self._forget_removed(job)
        missing = job.results_missing() if rec.state == "done" else -1
        if missing >= 0 and not job.complete_inputs():  # its inputs too: the client must send them first
            self._incomplete(ctx, job)
        if missing >= 0 and job.hash_state() == "mismatch":  # an input sent again is not the clip's: nothing moves
            raise ctx.error("hash_mismatch", f"{HASH_MISMATCH}; {HASH_FIX}")
        if missing >= 0:  # removed or cut short after it finished: written again
            self._check_queue(ctx)
            job.results_taken_back()
            rec.state = "cancelled"  # queued below as a cancelled job is: its work directory is kept
            job.append_log(f"result {missing} is missing: queued to write the results again")
        if rec.state in ("uploading", "failed", "cancelled"):
            if not job.complete_inputs():
                if not body["stream"] and (rec.state == "uploading" or rec.stream):
                    self._incomplete(ctx, job)
                stream = True  # feature "stream": train each window as its items arrive
            elif job.hash_state() == "mismatch":  # a started job's too: an input sent again must be the clip's
                raise ctx.error("hash_mismatch", f"{HASH_MISMATCH}; " + (
                    "re-upload them (or open the job with the right hash)" if rec.state == "uploading"
                    else HASH_FIX))
            self._check_queue(ctx)
            rec.state, rec.queued_at, rec.error = "queued", time.time(), ""
            rec.stream = rec.stream or stream
            rec.progress.message = "queued; training starts as the first window's items arrive" if stream \
                else "queued"
            self.pool.save(job)
            job.append_log("queued (streaming: items still to upload)" if stream else "queued")
        reply = {"job": job.id, "state": rec.state, "position": self.pool.position(job)}
        if body["stream"] and rec.stream:
            reply["stream"] = True
        return ctx.reply(reply)

    def _forget_removed(self, job: Job) -> None:
        if job.record.state in REPAIR_STATES and (gone := job.forget_removed_items()):
            job.append_log(f"{gone} input item(s) removed from the store since they were uploaded: counted "
                           "missing, to be sent again")

    def _check_queue(self, ctx: RequestContext) -> None:
        if sum(1 for j in self.store.jobs.values() if j.record.state == "queued") >= self.limits.max_queued:
            raise ctx.error("busy", f"{self.limits.max_queued} jobs are queued already; try again later")

    def _incomplete(self, ctx: RequestContext, job: Job) -> None:
        """`incomplete`, listing what is missing."""
        missing_f, missing_m, missing_r = job.missing("frame"), job.missing("mask"), job.missing("reference")
        details = {"missing_frames": missing_f[:messages.MAX_MISSING_LISTED],
                   "missing_masks": missing_m[:messages.MAX_MISSING_LISTED]}
        refs = ""
        if missing_r:
            details["missing_references"] = missing_r[:messages.MAX_MISSING_LISTED]
            refs = f" and {len(missing_r)} reference frame(s)"
        raise ctx.error("incomplete", f"{len(missing_f)} frame(s) and {len(missing_m)} mask(s){refs} are not "
                         "uploaded yet", body=details)

    def on_status(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec, p = job.record, job.record.progress
        return ctx.reply({
            "job": job.id, "state": rec.state, "progress": float(min(max(p.progress, 0.0), 1.0)),
            "phase": p.phase, "step": max(int(p.step), 0), "total": max(int(p.total), 0),
            "elapsed_s": max(float(p.elapsed_s), 0.0),
            "eta_s": None if p.eta_s is None or rec.state != "training" else max(float(p.eta_s), 0.0),
            "losses": dict(p.losses), "message": (p.message + self._ahead(job))[:4096],
            "error": rec.error[:4096] if rec.state == "failed" else None, "position": self.pool.position(job),
            "frames": rec.frames, "width": rec.width, "height": rec.height, "channels": rec.channels,
            "dtype": rec.dtype, "mask_dtype": rec.mask_dtype, "missing_frames": len(job.missing("frame")),
            "missing_masks": len(job.missing("mask")),
            "missing_references": len(job.missing("reference")) if rec.references else None,
            "frames_done": job.frames_done(), "name": rec.name, "created": rec.created,
            "updated": rec.updated})

    def on_fetch(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        """Feature "partial_results": a frame is served as soon as it is on disk, in any state (a long shot writes
        each frame once the windows holding it are done), except for a job whose uploads failed their hash."""
        job = self.store.get(body["job"])
        rec, index = job.record, body["index"]
        if index >= rec.frames:
            raise ctx.error("bad_request", f"'body.index' must be from 0 to {rec.frames - 1}, not {index}",
                             field="body.index")
        layer = body["layer"]
        what = "result frame" if layer == "frame" else "matte"
        if rec.stream and job.hash_state() == "mismatch":  # others were checked whole before they started
            raise ctx.error("not_ready", f"job {rec.job} serves nothing: {HASH_MISMATCH}")
        path = job.result_path(index, layer)
        shape = rec.item_shape("frame") if layer == "frame" else (rec.height, rec.width, 1)
        try:
            with open_regular(path) as handle:  # a named pipe put there must not hold the daemon
                data = np.fromfile(handle, dtype=DTYPES[rec.dtype] if layer == "frame" else np.uint8)
        except OSError:
            data = np.empty(0)
        if data.size != int(np.prod(shape)):
            if rec.state != "done":
                raise ctx.error("not_ready", f"{what} {index} of job {rec.job} is not written yet: the job is "
                                 f"{rec.state}{self._how_far(job)}")
            raise ctx.error("internal", f"{what} {index} of job {rec.job} is missing from the store (removed "
                             "after it finished, or a job finished by an older daemon, which wrote no mattes); start "
                             "the job again (job.start, or the same submit) to write its results again")
        reply = {"job": job.id, "index": index}
        if layer != "frame":
            reply["layer"] = layer
        return ctx.reply(reply, (data.reshape(shape),))

    def _ahead(self, job: Job) -> str:
        """For a queued job: how far the jobs training now have got, so a client waiting on it sees the daemon
        move while its own job cannot (the node's batch render gives up on a job that shows no progress)."""
        if job.record.state != "queued":
            return ""
        running = []
        for trainer in self.pool.trainers:
            other = self.store.jobs.get(trainer.job_id) if trainer.busy else None
            if other is not None and other is not job:
                q = other.record.progress
                running.append(f"{trainer.device} at {q.phase or 'start'} {max(int(q.step), 0)}/{max(int(q.total), 0)}")
        return f"; training now: {', '.join(running)}" if running else ""

    def _how_far(self, job: Job) -> str:
        """The end of a not_ready sentence: the failure, or the progress and frames written so far."""
        rec, p = job.record, job.record.progress
        if rec.state == "failed" and rec.error:
            return f" ({rec.error})"
        done = f"{job.frames_done()} of {rec.frames} frames written"
        if rec.state in ("queued", "training") and p.message:
            return f" ({p.message}; {done})"
        return f" ({done})"

    def _require_done(self, ctx: RequestContext, rec: JobRecord) -> None:
        """`not_ready` naming the job's state (and the reason when it failed) unless it is done."""
        if rec.state != "done":
            why = f": {rec.error}" if rec.state == "failed" and rec.error else ""
            raise ctx.error("not_ready", f"job {rec.job} is {rec.state}, not done{why}")

    def on_history(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec = job.record
        self._require_done(ctx, rec)
        kept = job.read_history()
        if kept is None:
            raise ctx.error("not_ready", f"job {rec.job} was finished by an older daemon that kept no loss history")
        terms, rows = kept
        return ctx.reply({"job": job.id, "terms": terms, "steps": int(rows.shape[0])},
                          (summarise_history(rows, body["points"]),))

    def on_cancel(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        rec = job.record
        if rec.state in ("queued", "training"):
            trainer = self.pool.trainer_of(job.id)
            if trainer is not None:
                self.pool.stop(trainer, "cancel")
            rec.state = "cancelled"
            rec.progress.message = "cancelled; start it again to resume from its checkpoint"
            self.pool.save(job)
            job.append_log("cancelled")
        return ctx.reply({"job": job.id, "state": rec.state})

    def on_delete(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        job = self.store.get(body["job"])
        trainer = self.pool.trainer_of(job.id)
        trash = self.store.delete(job.id, remove_now=trainer is None)  # raises before anything is stopped
        if trainer is not None:
            trainer.trash = trash  # removed when its process has exited
            self.pool.end_deleted(trainer)
        return ctx.reply({"job": job.id, "deleted": True})

    def on_list(self, ctx: RequestContext, msg: Message, body: dict[str, Any]) -> list[Any]:
        jobs = sorted(self.store.jobs.values(), key=lambda j: (j.record.created, j.id))
        return ctx.reply({"jobs": [
            {"job": j.id, "state": j.record.state, "name": j.record.name,
             "progress": float(min(max(j.record.progress.progress, 0.0), 1.0)), "frames": j.record.frames,
             "width": j.record.width, "height": j.record.height, "created": j.record.created,
             "updated": j.record.updated} for j in jobs]})


def _size(nbytes: int) -> str:
    """Bytes in words a person reads: MB below a gigabyte (a small job on a nearly full disk said "0.00 GB")."""
    return f"{nbytes / 1e9:.2f} GB" if abs(nbytes) >= 1e9 else f"{max(nbytes, 0) / 1e6:.1f} MB"
