"""Uploads that went wrong before (a hunt of 2026-12-03): a wrong item another client put into an `uploading` job,
which made every honest submit of the clip fail with hash_mismatch for good, and a frame on a slow link, which the
daemon's ZeroMQ heartbeat cut off after about 24 s. A real `vinpaint serve` on loopback, real msgpack over real
ZeroMQ; each test failed before the change it guards."""
from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import zmq

from daemon_fixtures import BRIEF_TRAINING, DaemonProcess, synthetic_clip
from vinpaint.host_bridge.client import Client, wire_clip
from vinpaint.protocol import codec
from vinpaint.protocol.content_hash import clip_hash, item_digest

TRAINED = BRIEF_TRAINING


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("uploads") / "store") as d:
        yield d


class Raw:
    """A bare DEALER: requests exactly as given (no digest unless asked)."""

    def __init__(self, address: str, ctx: zmq.Context) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)

    def __call__(self, type_: str, body: dict, arrays=(), timeout_s: float = 60.0) -> codec.Message:
        self.sock.send_multipart(codec.encode_request(type_, uuid.uuid4().hex[:12], body, arrays))
        assert self.sock.poll(int(timeout_s * 1000)), f"no reply to {type_} in {timeout_s} s"
        return codec.decode_reply(self.sock.recv_multipart())


def clip(seed: int, t: int = 6, h: int = 48, w: int = 64):
    frames, masks = synthetic_clip(t, h, w, 3, np.uint8, seed)
    return wire_clip(frames, masks)


def open_body(frames: np.ndarray, masks: np.ndarray, settings: dict) -> dict:
    t, h, w, c = frames.shape
    content = clip_hash(t, h, w, c, "u1", "u1", [item_digest(f) for f in frames], [item_digest(m) for m in masks])
    return {"frames": t, "width": w, "height": h, "channels": c, "dtype": "u1", "mask_dtype": "u1",
            "content_hash": content, "settings": settings}


def test_a_wrong_item_of_an_uploading_job_is_replaced_by_the_right_one(daemon):
    """Before: an upload of an item already held was written again whatever it held (`stored` true); now the same
    data is acknowledged (`stored` false) and only a different one replaces it, so a client may re-send every item
    it found held to repair a job cheaply. Once started, held items stay as they are."""
    frames, masks = clip(seed=31)
    ctx = zmq.Context()
    raw = Raw(daemon.address, ctx)
    try:
        job = raw("job.open", open_body(frames, masks, {"overrides": TRAINED})).body["job"]
        wrong = frames[2].copy()
        wrong[0, 0, 0] ^= 1
        put = raw("job.upload", {"job": job, "kind": "frame", "index": 2}, [wrong])
        assert put.status == "ok" and put.body["stored"] is True
        for i in range(len(frames)):
            for kind, items in (("frame", frames), ("mask", masks)):
                if (kind, i) != ("frame", 2):
                    raw("job.upload", {"job": job, "kind": kind, "index": i}, [items[i]])
        refused = raw("job.start", {"job": job})
        assert refused.error["code"] == "hash_mismatch", refused.error
        assert "re-upload" in refused.error["message"]

        same = raw("job.upload", {"job": job, "kind": "mask", "index": 2}, [masks[2]])
        assert same.status == "ok" and same.body["stored"] is False, same.body  # the same data: nothing replaced
        fixed = raw("job.upload", {"job": job, "kind": "frame", "index": 2, "digest": item_digest(frames[2]).hex()},
                    [frames[2]])
        assert fixed.status == "ok" and fixed.body["stored"] is True, fixed.body
        assert fixed.body["missing_frames"] == 0
        started = raw("job.start", {"job": job})
        assert started.status == "ok" and started.body["state"] in ("queued", "training", "done"), started.error

        late = raw("job.upload", {"job": job, "kind": "frame", "index": 2}, [wrong])  # started: kept as it is
        assert late.status == "ok" and late.body["stored"] is False
        assert raw("job.delete", {"job": job}).status == "ok"
    finally:
        raw.sock.close(0)
        ctx.term()


def test_submit_repairs_a_job_another_client_uploaded_a_wrong_frame_into(daemon):
    """Before: Client.submit trusted `have_frames`, never re-sent frame 2, and failed with hash_mismatch on every
    try, for good (tmp/hunt_daemon/t14_poison.py). Now it re-sends the items that were held once and starts."""
    frames, masks = clip(seed=32)
    ctx = zmq.Context()
    raw = Raw(daemon.address, ctx)
    try:
        settings = {"preset": "fast", "variant": "dip-vid-flow", "seed": 0, "overrides": TRAINED}
        job = raw("job.open", open_body(frames, masks, settings)).body["job"]
        wrong = frames[2].copy()
        wrong[0, 0, 0] ^= 1
        assert raw("job.upload", {"job": job, "kind": "frame", "index": 2}, [wrong]).body["stored"] is True
        with Client(daemon.address) as client:
            assert client.submit(frames, masks, overrides=TRAINED) == job
            assert client.status(job)["state"] in ("queued", "training", "done")
            client.delete(job)
    finally:
        raw.sock.close(0)
        ctx.term()


class SlowLink:
    """A TCP proxy on loopback that forwards client -> daemon at `rate` bytes/s (daemon -> client at full speed),
    like a slow VPN."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target, self.rate = target_port, rate
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.closed: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(near, far, self.rate, "client->daemon"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(far, near, 0.0, "daemon->client"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, rate: float, tag: str) -> None:
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        self.closed.append(tag)
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


def test_an_upload_slower_than_the_old_heartbeat_completes(daemon):
    """A 6.2 MB frame at 0.2 MB/s takes about 31 s to arrive. Before: the daemon's ZeroMQ heartbeat (a PING every
    5 s, the connection dropped 20 s later unless a whole message came back) cut it off after about 24 s, with no
    reply and nothing stored, since the client cannot answer a PING behind the frame it is sending."""
    t, h, w = 6, 1080, 1920
    frames = np.random.default_rng(0).integers(0, 256, (t, h, w, 3), np.uint8)
    masks = np.zeros((t, h, w, 1), np.uint8)
    masks[:, 100:200, 100:200] = 255
    link = SlowLink(int(daemon.address.rsplit(":", 1)[1]), rate=0.2e6)
    ctx = zmq.Context()
    raw = Raw(f"tcp://127.0.0.1:{link.port}", ctx)
    try:
        opened = raw("job.open", open_body(frames, masks, {"overrides": TRAINED}))
        assert opened.status == "ok", opened.error
        job = opened.body["job"]
        began = time.monotonic()
        put = raw("job.upload", {"job": job, "kind": "frame", "index": 0}, [frames[0]], timeout_s=60)
        took = time.monotonic() - began
        assert put.status == "ok" and put.body["stored"] is True, (put.error, link.closed)
        assert took > 26, f"the link was not slow enough to test anything ({took:.1f} s)"
        assert link.closed == [], link.closed
        assert raw("job.delete", {"job": job}).status == "ok"
    finally:
        raw.sock.close(0)
        ctx.term()
        link.close()


def _connection_fd(pid: int, daemon_port: int, client_port: int) -> int | None:
    """The daemon's file descriptor of its end of one loopback TCP connection (found by the socket's inode)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local, remote = cols[1], cols[2]
        if local == f"0100007F:{daemon_port:04X}" and remote == f"0100007F:{client_port:04X}":
            inode = cols[9]
    if inode is None:
        return None
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                return int(fd)
        except OSError:
            continue
    return None


def test_the_daemon_checks_its_connections_with_tcp_keepalive(daemon):
    """A dead peer is still noticed, by TCP itself: the daemon's end of a client connection has keepalive after
    30 s of silence, every 10 s, 6 probes, and a 90 s limit on unacknowledged data (TCP_USER_TIMEOUT). Read from
    the daemon's own socket (pidfd_getfd; the daemon is this test's child)."""
    ctx = zmq.Context()
    raw = Raw(daemon.address, ctx)
    try:
        assert raw("hello", {}).status == "ok"
        daemon_port = int(daemon.address.rsplit(":", 1)[1])
        pid = daemon.proc.pid
        ports = [int(l.split()[2].split(":")[1], 16) for l in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if l.split()[1] == f"0100007F:{daemon_port:04X}" and l.split()[3] == "01"]
        assert ports, "no established connection to the daemon"
        libc = ctypes.CDLL(None, use_errno=True)
        pidfd = os.pidfd_open(pid)
        try:
            seen = []
            for port in ports:
                fd = _connection_fd(pid, daemon_port, port)
                if fd is None:
                    continue
                mine_fd = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
                if mine_fd < 0:
                    pytest.skip(f"pidfd_getfd refused: {os.strerror(ctypes.get_errno())}")
                with socket.socket(fileno=mine_fd) as s:
                    seen.append((s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                                 s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                                 s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                                 s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                                 s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)))
                    s.detach()
                    os.close(mine_fd)
        finally:
            os.close(pidfd)
        assert seen, "the daemon's end of the connection was not found"
        assert all(opts == (1, 30, 10, 6, 90_000) for opts in seen), seen
    finally:
        raw.sock.close(0)
        ctx.term()


def test_a_job_name_that_is_no_utf8_is_sent_with_its_undecodable_bytes_replaced(daemon):
    """`vinpaint submit` names a job after its video's file name; a Latin-1 name (surrogate escapes in Python)
    made msgpack raise UnicodeEncodeError, a traceback before anything was sent (a hunt, 2026-12-03)."""
    frames, masks = clip(seed=31, t=3)
    body = open_body(frames, masks, {"preset": "tiny"})
    del body["settings"]
    with Client(daemon.address) as c:
        opened = c.open_job(**body, settings={"preset": "tiny"}, name=os.fsdecode(b"pl\xe9te.mov"))
        listed = {j["job"]: j["name"] for j in c.list_jobs()}
        assert listed[opened["job"]] == "pl?te.mov"
        c.delete(opened["job"])


def test_client_misuse_is_one_sentence():
    """An empty clip, results of 0 frames, a call after close(): tracebacks from numpy and ZeroMQ before (a hunt,
    2026-12-03)."""
    from vinpaint.errors import InputError

    with pytest.raises(InputError, match=r"the clip is empty: frames of shape \(0, 8, 8, 3\)"):
        wire_clip(np.zeros((0, 8, 8, 3), np.uint8), np.zeros((0, 8, 8), np.uint8))
    client = Client("tcp://127.0.0.1:9")
    with pytest.raises(InputError, match="frames must be a whole number of at least 1, not 0"):
        client.results("a" * 32, 0)
    frames, masks = clip(seed=3, t=3)
    with pytest.raises(InputError, match="seed must be a whole number, not 1.5"):  # was sent as 1
        client.submit(frames, masks, seed=1.5)
    with pytest.raises(InputError, match=r"'body.settings.overrides.train.max_steps' must be an int, float, bool or "
                                         r"str, not object$"):  # a TypeError in the codec
        client.submit(frames, masks, overrides={"train.max_steps": object()})
    client.close()
    with pytest.raises(InputError, match="this Client is closed; make a new one"):
        client.status("a" * 32)
