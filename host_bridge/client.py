"""The Python client of the daemon: what a pipeline script, a render-farm wrapper and `vinpaint submit` use.

    with Client("tcp://127.0.0.1:5581") as client:
        result = client.inpaint(frames, masks, preset="fast", seed=0)

Every request is resent on a fresh socket after a timeout (the Lazy Pirate pattern; every v1 request is safe to
resend), and uploads skip what the daemon already holds, so a dropped connection or a restarted daemon costs a
retry, not the upload.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import zmq

from vinpaint.errors import InputError, VinpaintError
from vinpaint.protocol import codec, messages
from vinpaint.protocol.codec import DTYPES, ProtocolError
from vinpaint.protocol.content_hash import clip_hash, item_digest

from .auth import apply_client
from .daemon_config import ClientConfig

TERMINAL = ("done", "failed", "cancelled")


class RequestError(VinpaintError):
    """A request to the daemon did not succeed: refused (`code` is the protocol error code, SPEC.md section 7),
    unanswered (DaemonUnavailable) or its job ended without a result (JobFailed)."""

    def __init__(self, code: str, message: str, field: str | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.field, self.body = code, field, body or {}


class DaemonUnavailable(RequestError):
    """No reply in time: the daemon is not running, not reachable, or refused our key."""

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)


class JobFailed(RequestError):
    """The job ended `failed` or `cancelled` instead of `done`."""


def nothing_listens(address: str, patience_s: float = 3.0) -> str | None:
    """Why nothing listens at a tcp:// or ipc:// address, or None once a plain connection is accepted there; ""
    when that cannot be told (another transport, a name that does not resolve, a connection that hangs)."""
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    deadline = time.monotonic() + patience_s
    while True:
        try:
            if scheme == "ipc" and rest.startswith("@"):
                return ""  # a Linux abstract socket: no file to look for, and ZeroMQ's naming of it is its own
            if scheme == "ipc":
                family, where = socket.AF_UNIX, rest
            elif scheme == "tcp" and port.isdigit():
                family, where = None, (host.strip("[]"), int(port))
            else:
                return ""
            if family is None:
                probe = socket.create_connection(where, timeout=1.0)
            else:
                probe = socket.socket(family, socket.SOCK_STREAM)
                probe.settimeout(1.0)
                probe.connect(where)
            probe.close()
            return None
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            why = "the connection was refused" if isinstance(exc, ConnectionRefusedError) else \
                f"{rest} does not exist"
        except socket.gaierror as exc:  # before, 2026-12-03: three request timeouts (30 s), then "no reply"
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return f"the host name {host.strip('[]')!r} does not resolve ({exc.strerror})"
            return ""  # a resolver that failed for now (EAI_AGAIN ...): cannot be told
        except OSError:
            return ""
        if time.monotonic() >= deadline:
            return why
        time.sleep(0.25)


class Client:
    """One DEALER connection to a daemon; not thread-safe (use one per thread)."""

    def __init__(self, address: str | None = None, *, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig()
        if address is not None:
            self.config.address = address
        self.context = zmq.Context()
        self.socket: zmq.Socket | None = None
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-{time.monotonic_ns() % 0xFFFFFF:x}"
        self._features: set[str] | None = None
        self._geometry: dict[str, tuple[int, int]] = {}  # job -> (pixels, bytes per pixel), for fetch timeouts
        self._listening = False  # a connection was accepted once: no more probes
        self._connect()

    def _connect(self) -> None:
        check_address(self.config.address)
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            apply_client(sock, self.config.server_public_key, self.config.client_secret_key)
            sock.connect(self.config.address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise InputError(f"cannot connect to {self.config.address!r}: {exc}.") from None
        except BaseException:
            sock.close(0)
            raise
        self.socket = sock

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None
        self.context.term()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- one request ------------------------------------------------------------------------------------------

    def request(self, type_: str, body: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = (),
                timeout_s: float | None = None) -> tuple[dict[str, Any], codec.Message]:
        """Send one request and return (checked reply body, reply). Raises RequestError for an error reply."""
        if self.context.closed:  # was zmq's "Operation not supported" (a socket dropped after a timeout is remade)
            raise InputError("this Client is closed; make a new one")
        rid = f"{self._prefix}-{next(self._ids)}"
        frames = codec.encode_request(type_, rid, body, arrays)
        if timeout_s is None:
            nbytes = sum(len(f) for f in frames[1:])
            timeout_s = self.config.timeout_s if not arrays else self.config.transfer_timeout_s + nbytes / 10e6
        for attempt in range(self.config.retries + 1):
            self._check_listening()
            if self.socket is None:
                self._connect()
            try:
                self.socket.send_multipart(frames, zmq.NOBLOCK, copy=False)  # type: ignore[union-attr]
            except zmq.Again:
                pass  # the outgoing queue is full: wait below, then retry on a fresh socket
            reply = self._wait_for(rid, timeout_s)
            if reply is not None:
                return self._check(reply), reply
            self.socket.close(linger=0)  # type: ignore[union-attr]
            self.socket = None  # a late reply must not be read as the answer to a later request
        raise DaemonUnavailable(
            f"no reply from the vinpaint daemon at {self.config.address} after {self.config.retries + 1} tries of "
            f"{timeout_s:.0f} s; is `vinpaint serve` running there (and, with CurveZMQ, is this client's key "
            f"allowed)?")

    def _check_listening(self) -> None:
        """Fail at once where nothing listens at the address: ZeroMQ retries a refused connection silently, so
        `vinpaint submit` with no daemon took three timeouts (31 s) to say so. Only a refusal that lasts a whole
        request timeout (10 s: a daemon just starting loads torch, its store, maybe CUDA) counts; an unclear answer
        waits as before."""
        if self._listening:
            return
        refused = nothing_listens(self.config.address, self.config.timeout_s)
        if refused:
            raise DaemonUnavailable(f"no vinpaint daemon at {self.config.address}: {refused}; start one with "
                                    f"`vinpaint serve`, or give the address it prints")
        self._listening = refused is None

    def _wait_for(self, rid: str, timeout_s: float) -> codec.Message | None:
        deadline = time.monotonic() + timeout_s
        assert self.socket is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(int(left * 1000) + 1, zmq.POLLIN):
                return None
            frames = self.socket.recv_multipart(copy=False)
            try:
                msg = codec.decode_reply(frames)
            except ProtocolError as exc:
                if exc.code == "version_mismatch":
                    raise RequestError("version_mismatch", exc.message, "v") from None
                raise RequestError("malformed", f"the daemon sent a broken reply: {exc.message}") from None
            if msg.re == rid or (msg.re == "" and msg.status == "error"):
                return msg
            # a late reply to a request that timed out earlier: not ours to answer now

    def _check(self, msg: codec.Message) -> dict[str, Any]:
        if msg.status == "error":
            err = msg.error or {}
            raise RequestError(str(err.get("code", "internal")), str(err.get("message", "unknown error")),
                              err.get("field"), msg.body)
        try:
            return messages.check_reply(msg)
        except ProtocolError as exc:
            raise RequestError("malformed", f"the daemon sent a broken reply: {exc.message}") from None

    # --- the messages -----------------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return self.request("hello", {"client": f"vinpaint-python pid {os.getpid()}"})[0]

    def open_job(self, *, frames: int, width: int, height: int, channels: int, dtype: str, mask_dtype: str,
                 content_hash: str, settings: dict[str, Any] | None = None, name: str = "",
                 references: Sequence[int] = ()) -> dict[str, Any]:
        body = {"frames": frames, "width": width, "height": height, "channels": channels, "dtype": dtype,
                "mask_dtype": mask_dtype, "content_hash": content_hash, "settings": settings or {}}
        if name:  # a label: a file name that is no UTF-8 (surrogate escapes) travels with ? in their place
            body["name"] = name.encode("utf-8", "replace").decode("utf-8")
        if references:  # optional: a clip without reference frames opens exactly as before
            body["references"] = sorted(int(i) for i in references)
        return self.request("job.open", body)[0]

    def upload(self, job: str, kind: str, index: int, array: np.ndarray,
               digest: bytes | None = None) -> dict[str, Any]:
        """Store one frame [H,W,C] or mask [H,W,1]; `digest` (its SHA-256, if already known) lets the daemon
        catch corruption on the way."""
        if digest is None:
            digest = item_digest(array)
        return self.request("job.upload", {"job": job, "kind": kind, "index": index, "digest": digest.hex()},
                            [array])[0]

    def start(self, job: str, stream: bool = False) -> dict[str, Any]:
        """Queue the job. `stream` (daemon feature "stream"): before every item is uploaded, so its windows
        train as their items arrive; the uploads that follow must carry their digests (upload() sends them)."""
        body: dict[str, Any] = {"job": job}
        if stream:
            body["stream"] = True
        return self.request("job.start", body)[0]

    def features(self) -> set[str]:
        """The optional protocol additions the daemon serves (`hello`'s `features`), asked once."""
        if self._features is None:
            self._features = set(self.hello().get("features") or ())
        return self._features

    def status(self, job: str) -> dict[str, Any]:
        return self.request("job.status", {"job": job})[0]

    def fetch(self, job: str, index: int, layer: str = "frame") -> np.ndarray:
        """Result frame `index` [H,W,C] in the source dtype, or with layer="matte" its matte: uint8 [H,W,1], 0
        outside the hole, 1 propagated from another frame, 2 generated."""
        body: dict[str, Any] = {"job": job, "index": index}
        if layer != "frame":
            body["layer"] = layer
        _, msg = self.request("job.fetch", body, timeout_s=self._fetch_timeout(job, layer))
        return msg.array(0).copy()

    def _fetch_timeout(self, job: str, layer: str) -> float | None:
        """The request timeout plus 1 s per 10 MB of the frame, as uploads have (a 133 MB 4K float frame on a
        slow link failed as "no reply" in the 10 s of a control request); the job's geometry asked once."""
        geometry = self._geometry.get(job)
        if geometry is None:
            st = self.status(job)
            item = DTYPES[st["dtype"]].itemsize if st.get("dtype") in DTYPES else 4
            geometry = self._geometry[job] = (st["width"] * st["height"], st["channels"] * item)
        pixels, per_pixel = geometry
        nbytes = pixels * (1 if layer != "frame" else per_pixel)
        return self.config.timeout_s + nbytes / 10e6

    def history(self, job: str, points: int | None = None) -> tuple[list[str], int, np.ndarray]:
        """(terms, steps recorded, rows [R, 1+len(terms)]) of a finished job's loss history; column 0 is the step.
        At most `points` rows (the daemon's default when None): long runs come back as means of equal runs."""
        body: dict[str, Any] = {"job": job}
        if points is not None:
            body["points"] = int(points)
        reply, msg = self.request("job.history", body)
        return reply["terms"], reply["steps"], msg.array(0).copy()

    def cancel(self, job: str) -> dict[str, Any]:
        return self.request("job.cancel", {"job": job})[0]

    def delete(self, job: str) -> dict[str, Any]:
        return self.request("job.delete", {"job": job})[0]

    def list_jobs(self) -> list[dict[str, Any]]:
        return self.request("job.list", {})[0]["jobs"]

    # --- whole clips ------------------------------------------------------------------------------------------

    def submit(self, frames: np.ndarray, masks: np.ndarray, *, preset: str = "fast", variant: str = "dip-vid-flow",
               seed: int = 0, mask_dilation: int | None = None, mask_feather: int | None = None,
               overrides: dict[str, Any] | None = None, name: str = "",
               on_upload: Callable[[int, int], None] | None = None,
               references: dict[int, np.ndarray] | None = None, stream: bool | None = None) -> str:
        """Open the job for this clip, upload what the daemon lacks, start it; returns the job id. `references`:
        {frame index: a clean frame painted by the artist, shaped and typed like the frames}. A long shot (the
        open reply's `windows` > 1, on a daemon with feature "stream") is started before its upload, which then
        goes in index order, so its first window trains while the rest arrives; `stream=False` starts it only
        after the whole upload (`True` asks for streaming even for one window, where it only queues early)."""
        frames, wire_masks = wire_clip(frames, masks)
        refs = wire_references(references or {}, frames)
        t, h, w, c = frames.shape
        dtype, mask_dtype = codec.wire_array(frames[:1])[0].dtype, codec.wire_array(wire_masks[:1])[0].dtype
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):  # 1.5 was sent as 1, without a word
            raise InputError(f"seed must be a whole number, not {seed!r}")
        settings: dict[str, Any] = {"preset": preset, "variant": variant, "seed": int(seed)}
        if mask_dilation is not None:
            settings["mask_dilation"] = int(mask_dilation)
        if mask_feather is not None:
            settings["mask_feather"] = int(mask_feather)
        if overrides:  # a list setting travels as its JSON text (protocol 1 carries scalars; SPEC.md)
            settings["overrides"] = {k: json.dumps(list(v)) if isinstance(v, (list, tuple)) else v
                                     for k, v in overrides.items()}
        try:  # the daemon's own check, before any hashing or sending (an override msgpack cannot carry was a
            messages.check_settings(settings, {})  # TypeError deep in the codec)
        except ProtocolError as exc:
            raise InputError(exc.message) from None
        digests = {"frame": [item_digest(f) for f in frames], "mask": [item_digest(m) for m in wire_masks],
                   "reference": {i: item_digest(r) for i, r in refs.items()}}
        content = clip_hash(t, h, w, c, dtype, mask_dtype, digests["frame"], digests["mask"], digests["reference"])
        opened = self.open_job(frames=t, width=w, height=h, channels=c, dtype=dtype, mask_dtype=mask_dtype,
                               content_hash=content, settings=settings, name=name, references=sorted(refs))
        job = opened["job"]
        have = {"frame": set(opened["have_frames"]), "mask": set(opened["have_masks"]),
                "reference": set(opened.get("have_references") or [])}
        # Frame i, mask i, reference i, in index order. Only an `uploading` job, or one started with `stream`
        # whose upload was cut short (a client that died), lacks any.
        todo = [(k, i) for i in range(t) for k in ("frame", "mask", "reference")
                if i not in have[k] and (k != "reference" or i in refs)]
        items = {"frame": frames, "mask": wire_masks, "reference": refs}
        wanted = (opened.get("windows") or 1) > 1 if stream is None else stream
        if todo and wanted and "stream" in self.features():
            self.start(job, stream=True)
        for n, (kind, i) in enumerate(todo, 1):
            self.upload(job, kind, i, items[kind][i], digests[kind][i])
            if on_upload is not None:
                on_upload(n, len(todo))
        try:
            self.start(job)
        except RequestError as exc:
            held = [(k, i) for k in ("frame", "mask", "reference") for i in sorted(have[k])
                    if k != "reference" or i in refs]
            if exc.code != "hash_mismatch" or not held or opened["state"] != "uploading":
                raise
            # An item the daemon held at open is not this clip's (another client uploaded a wrong one, without a
            # digest): every held item once more, the daemon replaces those that differ (SPEC.md, job.upload).
            for kind, i in held:
                self.upload(job, kind, i, items[kind][i], digests[kind][i])
            self.start(job)
        return job

    def wait(self, job: str, progress: Callable[[dict[str, Any]], None] | None = None, poll_s: float = 0.5,
             timeout_s: float | None = None) -> dict[str, Any]:
        """Poll job.status until done; JobFailed when it fails or is cancelled. Returns the last status."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.status(job)
            if progress is not None:
                progress(status)
            if status["state"] == "done":
                return status
            if status["state"] in ("failed", "cancelled"):
                reason = status.get("error") or status["message"]
                raise JobFailed(status["state"], f"job {job} {status['state']}: {reason}")
            if deadline is not None and time.monotonic() > deadline:
                raise RequestError("timeout", f"job {job} is still {status['state']} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def results(self, job: str, frames: int | None = None, layer: str = "frame") -> np.ndarray:
        """Every result frame of a finished job, stacked [T,H,W,C] in the source dtype (layer="matte": the
        mattes, uint8 [T,H,W,1]). Before the job is done, fetch() gets each frame already written (daemon feature
        "partial_results"; `frames_done` in status)."""
        count = frames if frames is not None else self.status(job)["frames"]
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise InputError(f"results: frames must be a whole number of at least 1, not {count!r}")
        return np.stack([self.fetch(job, i, layer) for i in range(count)])

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, *, progress: Callable[[dict[str, Any]], None] | None
                = None, poll_s: float = 0.5, timeout_s: float | None = None, **settings: Any) -> np.ndarray:
        """The daemon's version of vinpaint.engine.inpaint: same frames back (alpha passed through), same seed,
        same result. `settings`: preset, variant, seed, mask_dilation, mask_feather, overrides, name."""
        job = self.submit(frames, masks, **settings)
        self.wait(job, progress, poll_s, timeout_s)
        return self.results(job, len(frames))


def wire_references(references: dict[int, np.ndarray], frames: np.ndarray) -> dict[int, np.ndarray]:
    """Reference frames checked against the clip's wire frames: {index: [H,W,C] in the frames' dtype}."""
    out = {}
    for index, image in sorted(references.items()):
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < len(frames):
            raise InputError(f"reference frame {index!r} is not a frame of the clip (0 to {len(frames) - 1})")
        image = np.asarray(image)
        if image.shape != frames.shape[1:] or image.dtype != frames.dtype:
            raise InputError(f"the reference for frame {index} is {image.dtype} {list(image.shape)} but the clip's "
                             f"frames are {frames.dtype} {list(frames.shape[1:])}")
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise InputError(f"the reference for frame {index} contains NaN or infinite values")
        out[int(index)] = np.ascontiguousarray(image)
    return out


def wire_clip(frames: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a clip the way the engine would and shape it for the wire: frames [T,H,W,3|4], masks [T,H,W,1]."""
    frames = np.asarray(frames)
    masks = np.asarray(masks)
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
        raise InputError(f"frames must be an array [T,H,W,3] (RGB) or [T,H,W,4] (RGBA), got shape {frames.shape}")
    if 0 in frames.shape:
        raise InputError(f"the clip is empty: frames of shape {frames.shape}")
    if codec._dtype_name(frames.dtype) is None:
        raise InputError(f"frames must be uint8, uint16 or float32, not {frames.dtype}")
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3 or masks.shape != frames.shape[:3]:
        raise InputError(f"masks must be an array [T,H,W] matching the frames {frames.shape[:3]}, got {masks.shape}")
    if masks.dtype == bool:
        masks = masks.astype(np.uint8) * np.uint8(255)
    elif codec._dtype_name(masks.dtype) is None:
        raise InputError(f"masks must be bool, uint8, uint16 or float32, not {masks.dtype}")
    if frames.dtype.kind == "f" and not np.isfinite(frames).all():
        raise InputError("frames contain NaN or infinite values")
    return frames, masks[..., None]


ADDRESS_RE = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})|ipc://[^\x00-\x1f]{1,200}")


def check_address(address: str) -> str:
    """A daemon address as the user gave it, or InputError with one sentence (before any socket is made)."""
    match = ADDRESS_RE.fullmatch(address or "")
    if match is None or (match.group(2) is not None and not 1 <= int(match.group(2)) <= 65535):
        shown = address if len(address) <= 80 else address[:77] + "..."
        raise InputError(f"{shown!r} is not a daemon address; use tcp://HOST:PORT (e.g. tcp://127.0.0.1:5581) or "
                         "ipc:///path/to/socket.")
    return address


def client_config(address: str | None, server_key: Path | None = None, client_key: Path | None = None,
                  **kw: Any) -> ClientConfig:
    """A ClientConfig from command-line style arguments."""
    if client_key is not None and server_key is None:  # CURVE needs both: alone it would be ignored without a word
        raise InputError(f"--client-key {client_key} needs --server-key (the daemon's public key): a client key "
                         "alone is not used, and an encrypted daemon would not answer")
    cfg = ClientConfig(**kw)
    if address:
        cfg.address = address
    cfg.server_public_key, cfg.client_secret_key = server_key, client_key
    return cfg


__all__ = ["Client", "RequestError", "DaemonUnavailable", "JobFailed", "wire_clip", "client_config", "DTYPES"]
