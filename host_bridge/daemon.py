"""The engine daemon: a ROUTER socket, the job store and one training process per device.

One thread owns the socket and polls it together with the trainers' event pipes. Requests are answered by
handlers.py, training processes are supervised by pool.py; this module only starts, serves and closes. Training
runs in child processes (worker.py), so `job.status` is answered within milliseconds while a job trains.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import resource
import shutil
import signal
import socket
import stat
import time
from typing import Any, Callable

import zmq

from vinpaint import __version__
from vinpaint.engine import InputError
from vinpaint.engine.devices import check_device, device_memory
from vinpaint.errors import VinpaintError
from vinpaint.files import open_regular
from vinpaint.protocol import codec

from .auth import ServerAuth, check_bind
from .daemon_config import DaemonConfig
from .handlers import Requests
from .logs import FailureLog
from .pool import TrainerPool, default_devices
from .store import JobStore, StoreError, atomic_write_json, check_store_folder, is_disk_full, mark_store_folder

log = logging.getLogger("vinpaint.daemon")

POLL_MS = 100
BURST = 64
"""Requests handled before the trainers' pipes are looked at again."""
FRAME_REPLY_BYTES = 1 << 20
"""Replies at least this big (a frame: job.fetch) are tracked until libzmq has handed them to the kernel."""
UNSENT_FRAME_REPLIES = 2
"""Such replies a connection may have waiting in the daemon (it does not read them) before its next one answers
`busy` instead. A client waits for each reply, so it has at most one; the 64 replies ZMQ_SNDHWM keeps (SPEC.md
section 1) each held a frame: six connections that fetched 4 MiB frames and never read pinned 1.5 GB
(2026-12-03)."""

DEAD_PEER_OPTIONS = (
    (zmq.TCP_KEEPALIVE, 1), (zmq.TCP_KEEPALIVE_IDLE, 30), (zmq.TCP_KEEPALIVE_INTVL, 10),
    (zmq.TCP_KEEPALIVE_CNT, 6), (zmq.TCP_MAXRT, 90_000))
"""How the daemon notices a client machine that went away without closing its connections (crashed, unplugged,
a VPN that dropped): each connection holds a file handle and, mid-upload, up to a frame of memory. TCP keepalive
probes a connection that has carried nothing for 30 s, every 10 s, and drops it after 6 unanswered probes (90 s
of silence); TCP_MAXRT (TCP_USER_TIMEOUT on Linux) drops one whose sent data has gone unacknowledged for 90 s
(a reply to a peer that vanished). Both are answered by the peer's kernel, so a slow but live link passes however
long a frame takes. Until 2026-12-03 this was ZeroMQ's heartbeat (ZMQ_HEARTBEAT_IVL 5 s, _TIMEOUT 20 s), whose
timer only a whole message resets, and a client cannot answer a PING behind a frame it is still sending: every
frame taking over about 24 s to arrive was cut off with no reply (a 37.7 MB frame at 1 MB/s; a 133 MB 4K float
frame below 44 Mbit/s). A fetch was not: the daemon's PING, and its timer, wait behind the frame it sends (a 4.2
MB fetch at 0.1 MB/s arrived whole after 41.6 s under the heartbeat)."""


def check_ipc_free(endpoint: str) -> None:
    """An ipc:// address another program listens on is refused: ZeroMQ would replace its socket file, so clients
    reached this daemon instead (a job of the other's store "not found"), and the other none at all, once this
    one stopped (a hunt found it). TCP refuses a port in use by itself. A socket file no one listens on (a killed
    daemon's) is taken over, as before."""
    scheme, _, path = endpoint.partition("://")
    if scheme != "ipc":
        return
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return  # ZeroMQ says what is wrong with a file there
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return
    finally:
        probe.close()
    raise DaemonStartError(f"cannot listen on {endpoint}: another program (a vinpaint daemon?) listens there; stop "
                           "it, or give another --bind")


class DaemonStartError(VinpaintError):
    """The daemon cannot start (address in use, store locked, authentication missing); the text says why."""


def _reach(address: str) -> None:
    """A HOST:PORT Ray address nobody answers on is refused in seconds; Ray itself retries it for minutes."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise DaemonStartError(f"cannot reach the Ray cluster at {address}: "
                               f"{exc.strerror or type(exc).__name__}") from None


def raise_open_files_limit() -> None:
    """Every client connection holds a file handle: at the soft limit of 1024 many systems (and systemd) give, 1100
    idle connections left none for an upload, a record or a training process (2026-12-03). A process may raise
    its soft limit to its hard one; the daemon does so at start and logs it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20  # Linux refuses "unlimited" (fs.nr_open)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open-file limit from %d to %d (%s): about %d client connections fit",
                    soft, want, exc, soft)
        return
    log.info("raised the open-file limit (RLIMIT_NOFILE) from %d to %d: each client connection holds one", soft,
             want)


class Daemon:
    """Owns the socket; `serve()` runs until stop() or SIGTERM."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.store = JobStore(config.store)
        self.pool = TrainerPool(self.store, config.devices or default_devices(), config.stop_grace_s,
                                config.progress_flush_s, config.ray, config.stream_wait_s, ray_cpus=config.ray_cpus)
        self.failure = FailureLog()
        self.requests = Requests(self.store, self.pool, config.limits, self.failure)
        self.context: zmq.Context | None = None
        self.socket: zmq.Socket | None = None
        self.auth: ServerAuth | None = None
        self.endpoint = ""
        self._lock_fd = -1
        self._stopping = 0.0
        self._stop_now = False
        self._unsent: dict[bytes, list[zmq.MessageTracker]] = {}
        """Per peer identity: its frame replies libzmq still holds (UNSENT_FRAME_REPLIES)."""

    def start(self) -> str:
        """Check the devices and the address, lock and load the store, recover interrupted jobs, bind; returns
        the endpoint."""
        raise_open_files_limit()
        self._check_devices()
        self._check_ray()
        check_bind(self.config.bind, self.config.auth)
        check_ipc_free(self.config.bind)
        try:
            check_store_folder(self.config.store)
        except StoreError as exc:
            raise DaemonStartError(str(exc)) from None
        created = not os.path.lexists(self.config.store)
        self.config.store.mkdir(parents=True, exist_ok=True)
        self._lock_store()
        mark_store_folder(self.config.store)
        for note in self.store.open():
            log.warning(note)
        self.store.empty_trash()
        self.pool.recover()
        self.context = zmq.Context()
        try:
            self.auth = ServerAuth(self.context, self.config.auth)
            sock = self.context.socket(zmq.ROUTER)
            sock.setsockopt(zmq.MAXMSGSIZE, self.config.limits.max_message_bytes)
            sock.setsockopt(zmq.LINGER, 0)
            # Messages held per connection before ZeroMQ stops reading it (TCP then slows the sender): clients ask
            # one request at a time, so 8 only bounds a flood (8 x max_message_bytes, not 64 x) while a request
            # is slow to handle.
            sock.setsockopt(zmq.RCVHWM, 8)
            sock.setsockopt(zmq.SNDHWM, 64)
            for option, value in DEAD_PEER_OPTIONS:  # TCP's own checks, not ZeroMQ heartbeats: see the constant
                sock.setsockopt(option, value)
            self.auth.apply(sock)
            self.socket = sock
            sock.bind(self.config.bind)
        except zmq.ZMQError as exc:
            if created:  # a store this start made and never used: not left behind (a port in use, say). Removed
                # while daemon.lock is still held: a daemon that took the lock after close() would lose its store
                shutil.rmtree(self.config.store, ignore_errors=True)
            self.close()
            raise DaemonStartError(f"cannot listen on {self.config.bind}: {exc}") from None
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        try:  # for people and scripts; a full disk must not keep a daemon from serving its finished jobs
            atomic_write_json(self.config.store / "daemon.json",
                              {"endpoint": self.endpoint, "pid": os.getpid(), "started": time.time(),
                               "version": __version__, "protocol": codec.PROTOCOL_VERSION})
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            (self.config.store / "daemon.json").unlink(missing_ok=True)  # an earlier daemon's: not this one's
            log.warning("the store's disk is full: daemon.json not written; finished jobs are served, new uploads "
                        "refused until space is freed")
        return self.endpoint

    def _check_devices(self) -> None:
        """A device this machine cannot train on stops the daemon at start, not every job later."""
        for t in self.pool.trainers:
            try:
                t.device = check_device(t.device)
                t.memory = device_memory(t.device)
            except InputError as exc:
                raise DaemonStartError(str(exc).rstrip(".")) from None
        names = [t.device for t in self.pool.trainers]
        if len(set(names)) != len(names):
            raise DaemonStartError(f"a device is named twice ({', '.join(names)}); give each --device once")

    def _check_ray(self) -> None:
        """A Ray cluster that is missing or unreachable stops the daemon at start, not every long shot later."""
        if self.config.ray is None:
            return
        from vinpaint.engine.shot_ray import RayRunner

        _reach(self.config.ray)
        try:
            RayRunner(self.config.ray or None).close()
        except InputError as exc:
            raise DaemonStartError(str(exc)) from None
        gpus = [t.device for t in self.pool.trainers if t.device.startswith("cuda")]
        if gpus:  # the CLI refuses --device cuda:N with --ray; here short jobs still honour it, so say so once
            log.warning("--ray: long shots' windows run on the GPUs Ray assigns, not on %s (short jobs stay there); "
                        "to keep Ray off a GPU, start Ray's workers with CUDA_VISIBLE_DEVICES", ", ".join(gpus))

    def _lock_store(self) -> None:
        path = self.config.store / "daemon.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self._recorded_pid()
            other = f" (pid {pid})" if pid is not None else ""
            raise DaemonStartError(f"another daemon{other} is using the store {self.config.store}") from None
        try:
            self._check_lock_not_removed()
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def _recorded_pid(self) -> int | None:
        """The pid in the store's daemon.json (the daemon that last started on it), if it can be read."""
        try:
            with open_regular(self.config.store / "daemon.json", "r") as handle:  # not a pipe put there
                return int(json.loads(handle.read())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _check_lock_not_removed(self) -> None:
        """The daemon daemon.json names still holds the store's lock file open after someone removed it: a new
        file is no lock then. Before (a hunt found it), a second daemon started on the store, took the first's
        live trainer for a stopped daemon's and killed it, and both wrote the same job records."""
        pid = self._recorded_pid()
        if pid is None:
            return
        removed = os.path.realpath(self.config.store / "daemon.lock") + " (deleted)"
        try:
            fds = os.listdir(f"/proc/{pid}/fd") if pid != os.getpid() else []
        except OSError:  # gone, or not ours to look at
            return
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == removed:
                    raise DaemonStartError(f"another daemon (pid {pid}) is using the store {self.config.store}, "
                                           "though its lock file daemon.lock was removed; stop that daemon first")
            except OSError:
                continue

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
                trainers = self.pool.trainers
                for t in trainers:
                    if t.fd >= 0 and t.fd not in registered:
                        poller.register(t.fd, zmq.POLLIN)
                        registered.add(t.fd)
                live = {t.fd for t in trainers if t.fd >= 0}
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
                for t in trainers:
                    if t.fd >= 0 and t.fd in ready:
                        self._guard(self.pool.read, t)
                self._guard(self.pool.reap)
                if self._stopping:
                    if self.pool.shutdown_step(self._stopping, self._stop_now):
                        break
                else:
                    self._guard(self.pool.schedule)
                self._guard(self.pool.flush_progress)
        finally:
            self.close()

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Housekeeping that fails (a bug, a vanished file) is logged; the daemon keeps serving."""
        try:
            fn(*args)
        except Exception:
            self.failure("housekeeping failed")

    def _receive(self) -> tuple[list[Any], int]:
        """One message as (its peer's identity and first MAX_PARTS parts, its part count without the identity),
        taken part by part: the parts past the limit are received and dropped, so a message of millions of empty
        parts (6 MB on the wire) costs its size, not a Python object each (2 GB and 20 s before, 2026-12-03).
        zmq.Again when none is waiting."""
        assert self.socket is not None
        sock = self.socket
        kept = [sock.recv(zmq.NOBLOCK, copy=False)]
        count = 0
        while sock.get(zmq.RCVMORE):
            count += 1
            if count <= codec.MAX_PARTS:
                kept.append(sock.recv(copy=False))  # a message's parts arrive together: never blocks
            else:
                sock.recv()  # dropped: bytes, no Frame (an empty part is Python's one empty bytes)
        return kept, count

    def _drain_socket(self) -> None:
        assert self.socket is not None
        for _ in range(BURST):
            try:
                frames, count = self._receive()
            except zmq.Again:
                return
            if len(frames) < 2:
                continue  # only an identity: nothing to answer
            reply = self.requests.handle(frames[1:], count)
            peer = frames[0].bytes  # bytes: a received Frame cannot be sent tracked
            track = sum(len(part) for part in reply[1:]) >= FRAME_REPLY_BYTES
            if track and self._unsent_replies(peer) >= UNSENT_FRAME_REPLIES:
                reply, track = self._unread_error(reply), False
            try:
                tracker = self.socket.send_multipart([peer] + reply, zmq.NOBLOCK, copy=False, track=track)
                if track:
                    self._unsent.setdefault(peer, []).append(tracker)
            except zmq.Again:
                log.warning("a reply was dropped: the client is not reading (its queue is full)")
            except zmq.ZMQError as exc:
                log.warning("a reply could not be sent: %s", exc)

    def _unsent_replies(self, peer: bytes) -> int:
        """How many frame replies to `peer` libzmq still holds; forgets every peer's that went (a peer that
        disconnects has its queue freed)."""
        live = {}
        for other, trackers in self._unsent.items():
            left = [t for t in trackers if not t.done]
            if left:
                live[other] = left
        self._unsent = live
        return len(live.get(peer, ()))

    @staticmethod
    def _unread_error(reply: list[Any]) -> list[Any]:
        """`busy` in place of a frame reply to a connection that has not taken the earlier ones."""
        header = codec.unpack_header(reply[0], codec.MAX_REPLY_HEADER_BYTES)
        return codec.encode_reply(header["type"], header["re"], error={
            "code": "busy", "message": f"{UNSENT_FRAME_REPLIES} earlier replies with a frame to this connection are "
            "not read yet; read them before asking for more frames"})

    def close(self) -> None:
        self.pool.close()
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
