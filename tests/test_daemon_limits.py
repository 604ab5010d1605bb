"""What one local client's connections and messages may cost the daemon, and what a kill -9 leaves in its store
(a hunt of 2026-12-03): a message of a million empty parts, idle connections that use up the file handles, replies
a client never reads, and half-written temporaries. A real `vinpaint serve` on loopback, real msgpack over real
ZeroMQ; each test failed before the change it guards."""
from __future__ import annotations

import fcntl
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from daemon_fixtures import BRIEF_TRAINING, DaemonProcess, synthetic_clip
from vinpaint.files import temp_sibling
from vinpaint.host_bridge.client import Client, RequestError, client_config, wire_clip
from vinpaint.protocol import codec
from vinpaint.protocol.content_hash import clip_hash, item_digest

TRAINED = BRIEF_TRAINING


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("limits") / "store") as d:
        yield d


def connect(address: str, ctx: zmq.Context) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def answer(sock: zmq.Socket, timeout_s: float = 60.0) -> codec.Message:
    assert sock.poll(int(timeout_s * 1000)), "the daemon did not answer"
    return codec.decode_reply(sock.recv_multipart())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """The daemon's largest resident size while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.base = rss_mb(pid)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grown(self) -> float:
        return self.peak - self.base


def open_clip(client: Client, frames: np.ndarray, masks: np.ndarray,
              overrides: dict | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    frames, wmasks = wire_clip(frames, masks)
    t, h, w, c = frames.shape
    dt, mdt = codec.wire_array(frames[:1])[0].dtype, codec.wire_array(wmasks[:1])[0].dtype
    chash = clip_hash(t, h, w, c, dt, mdt, [item_digest(f) for f in frames], [item_digest(m) for m in wmasks])
    opened = client.open_job(frames=t, width=w, height=h, channels=c, dtype=dt, mask_dtype=mdt,
                             content_hash=chash, settings={"preset": "tiny", "overrides": overrides or {}})
    return opened["job"], frames, wmasks


# --- many parts ---------------------------------------------------------------------------------------------------

def test_a_message_of_many_empty_parts_is_too_large_and_costs_about_its_size(daemon):
    """Before: the daemon received all 500,000 parts as Python objects and made a view of each before counting
    them (a million parts: +659 MB and 6 s of its only thread), then answered `bad_buffer`. Now about 31 MB
    (libzmq's own 64 bytes a part); 130 MB with the count checked first but every part still received whole."""
    ctx = zmq.Context()
    try:
        hog, other = connect(daemon.address, ctx), connect(daemon.address, ctx)
        header = codec.encode_request("hello", "many", {})[0]
        with PeakRss(daemon.proc.pid) as rss:
            hog.send_multipart([header] + [b""] * 500_000)
            reply = answer(hog)
            time.sleep(0.2)
        assert reply.status == "error" and reply.error["code"] == "too_large", reply.error
        assert reply.re == "many" and reply.error["field"] == "buffers"
        assert "500001 parts; at most 5" in reply.error["message"]
        assert rss.grown < 80, f"the daemon grew {rss.grown:.0f} MB for a 1 MB message"
        other.send_multipart(codec.encode_request("hello", "after", {}))
        assert answer(other, 20).status == "ok"
    finally:
        ctx.destroy(0)


def test_a_request_of_more_parts_than_buffers_allowed_is_too_large_naming_the_limit(daemon):
    """Header, 1 buffer described, 5 sent: before `bad_buffer` ("describes 1 buffer(s) but 5 pixel frame(s)")."""
    ctx = zmq.Context()
    try:
        sock = connect(daemon.address, ctx)
        frames = codec.encode_request("hello", "six", {}, [np.zeros(4, np.uint8)])
        sock.send_multipart([bytes(f) for f in frames] + [b"\0" * 4] * 4)
        reply = answer(sock, 20)
        assert reply.error["code"] == "too_large" and reply.re == "six" and reply.type == "hello", reply.error
        assert "6 parts; at most 5 are accepted (a header and up to 4 buffers)" in reply.error["message"]
        sock.send_multipart(frames[:1] + [b""] * 4)  # 5 parts: within the limit, so the buffers' own check
        assert answer(sock, 20).error["code"] == "bad_buffer"
    finally:
        ctx.destroy(0)


# --- replies a client never reads ---------------------------------------------------------------------------------

def test_replies_a_client_never_reads_pin_a_few_frames_and_a_reading_client_is_served(daemon):
    """Before: each of the 64 replies per connection that ZMQ_SNDHWM keeps held its frame: two connections that
    fetched a 4 MiB frame 40 times each and never read pinned 311 MB of the daemon's memory. Now the third frame
    reply a connection has not taken answers `busy`, and every request still gets its reply."""
    frames, masks = synthetic_clip(t=2, h=512, w=512, channels=4, dtype=np.float32, seed=4)
    with Client(daemon.address, config=client_config(daemon.address, timeout_s=20.0)) as client:
        job, wframes, _ = open_clip(client, frames, masks)
        results = daemon.store / "jobs" / job / "results"
        wframes[0].tofile(results / "00000.bin")  # served at once (feature partial_results), no training needed
        ctx = zmq.Context()
        try:
            idle = []
            for _ in range(2):
                sock = ctx.socket(zmq.DEALER)
                sock.setsockopt(zmq.RCVHWM, 1)
                sock.setsockopt(zmq.RCVBUF, 4096)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(daemon.address)
                idle.append(sock)
            time.sleep(0.5)
            base = rss_mb(daemon.proc.pid)
            for sock in idle:
                for k in range(40):
                    sock.send_multipart(codec.encode_request("job.fetch", f"f{k}", {"job": job, "index": 0}))
            np.testing.assert_array_equal(client.fetch(job, 0), wframes[0])  # after all 80 of theirs
            time.sleep(2.0)
            grown = rss_mb(daemon.proc.pid) - base
            assert grown < 130, f"80 unread replies of 4 MiB pinned {grown:.0f} MB"
            np.testing.assert_array_equal(client.fetch(job, 0), wframes[0])
            replies = [answer(idle[0], 20) for _ in range(40)]
            assert [m.re for m in replies] == [f"f{k}" for k in range(40)]
            codes = [m.error["code"] if m.error else "ok" for m in replies]
            assert codes[:2] == ["ok", "ok"] and set(codes) == {"ok", "busy"}, codes
            assert "not read yet" in next(m for m in replies if m.error).error["message"]
        finally:
            ctx.destroy(0)


# --- file handles -------------------------------------------------------------------------------------------------

def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard) if hard.isdigit() else resource.RLIM_INFINITY
    raise AssertionError("no open-file limit")


def test_the_daemon_raises_its_open_file_limit_to_the_hard_one_at_start(tmp_path):
    """Each client connection holds a handle; before, the daemon kept the soft limit it was given (1024 under
    systemd), so about 1000 idle connections used them all."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard open-file limit here is {hard}: nothing to raise to")

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    with DaemonProcess(tmp_path / "store", preexec_fn=low) as d:
        soft, got_hard = open_files_limit(d.proc.pid)
        assert soft == (hard if hard != resource.RLIM_INFINITY else 1 << 20) and got_hard == hard
        assert f"raised the open-file limit (RLIMIT_NOFILE) from 256 to {soft}" in d.log()


def use_up_file_handles(d: DaemonProcess, ctx: zmq.Context, limit: int) -> list[zmq.Socket]:
    """Idle connections until the daemon holds `limit` handles (ZeroMQ accepts them until it has none left)."""
    hogs = [connect(d.address, ctx) for _ in range(limit)]
    deadline = time.monotonic() + 60
    while open_handles(d) < limit - 1:
        assert time.monotonic() < deadline, f"the daemon holds {open_handles(d)} handles"
        time.sleep(0.2)
    return hogs


def open_handles(d: DaemonProcess) -> int:
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


def close_all(d: DaemonProcess, hogs: list[zmq.Socket], limit: int) -> None:
    for hog in hogs:
        hog.close(0)
    deadline = time.monotonic() + 30
    while open_handles(d) > limit // 2:
        assert time.monotonic() < deadline, f"the daemon still holds {open_handles(d)} handles"
        time.sleep(0.2)


def test_out_of_file_handles_uploads_answer_busy_and_a_job_waits_until_connections_close(tmp_path):
    """Before: uploads answered `internal` ("[Errno 24] Too many open files") and a job.start's training process
    failed to start with a traceback every 100 ms ("housekeeping failed"), each of which failed to log."""
    limit = 200

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))  # hard too: nothing to raise to

    frames, masks = synthetic_clip(t=2, h=32, w=32, channels=3, seed=5)
    with DaemonProcess(tmp_path / "store", preexec_fn=low) as d, \
            Client(d.address, config=client_config(d.address, timeout_s=20.0)) as client:
        job, wframes, wmasks = open_clip(client, frames, masks, TRAINED)
        for kind, index, item in (("frame", 0, wframes[0]), ("mask", 0, wmasks[0]), ("mask", 1, wmasks[1])):
            client.upload(job, kind, index, item)
        ctx = zmq.Context()
        try:
            hogs = use_up_file_handles(d, ctx, limit)
            with pytest.raises(RequestError) as err:
                client.upload(job, "frame", 1, wframes[1])
            assert err.value.code == "busy" and "run out of open files" in str(err.value), err.value
            close_all(d, hogs, limit)
            assert client.upload(job, "frame", 1, wframes[1])["stored"]

            hogs = use_up_file_handles(d, ctx, limit)
            assert client.start(job)["state"] == "queued"
            time.sleep(1.5)
            assert client.status(job)["state"] == "queued"
            log = d.log()
            assert f"job {job} waits to train: the daemon is out of open files" in log, log[-2000:]
            close_all(d, hogs, limit)
        finally:
            ctx.destroy(0)
        deadline = time.monotonic() + 60
        while client.status(job)["state"] == "queued":
            assert time.monotonic() < deadline, client.status(job)
            time.sleep(0.2)
        log = d.log()
        assert "Logging error" not in log and "housekeeping failed" not in log, log[-2000:]
        assert log.count("requests answer busy") == 1  # once a minute, however many requests


LOG_WITHOUT_HANDLES = """
import logging, os, resource
from vinpaint.host_bridge.logs import configure_logging
configure_logging()
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
logging.getLogger("vinpaint.daemon").error("a traceback\\nits second line")
"""


def test_the_log_escapes_a_record_with_no_file_handle_left():
    """A record with a newline (every traceback) is escaped with the unicode_escape codec; before, that codec was
    imported at the first such record, from a file, so out of handles every traceback was a "Logging error"."""
    done = subprocess.run([sys.executable, "-c", LOG_WITHOUT_HANDLES], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Logging error" not in done.stderr and "ERROR a traceback\\nits second line" in done.stderr, done.stderr


# --- temporaries a kill -9 left -----------------------------------------------------------------------------------

def test_temporaries_a_kill_left_in_the_store_go_at_the_next_start_and_nothing_else(tmp_path):
    """Before: only the work directories' were removed (by the training process); a kill -9 during uploads left
    a frame's size per item in inputs/, and half-made job folders in jobs/, for ever."""
    store = tmp_path / "store"
    frames, masks = synthetic_clip(t=4, h=32, w=32, channels=3, seed=6)
    with DaemonProcess(store) as d, Client(d.address, config=client_config(d.address, timeout_s=20.0)) as client:
        job, wframes, wmasks = open_clip(client, frames, masks)
        for i in range(2):
            client.upload(job, "frame", i, wframes[i])
            client.upload(job, "mask", i, wmasks[i])
        d.kill()
    root = store / "jobs" / job
    gone = [temp_sibling(root / "inputs" / "frames" / "00002.bin"),
            temp_sibling(root / "inputs" / "masks" / "00001.sha256"),
            temp_sibling(root / "job.json"),
            temp_sibling(store / "jobs" / ("e" * 32), folder=True),
            temp_sibling(store / "daemon.json")]
    (gone[3] / "job.json").write_text("{}")
    held = [temp_sibling(root / "results" / "00001.bin"),  # written by the training process, which still holds
            temp_sibling(root / "results" / "00000.matte.bin")]  # the job: they stay
    kept = [temp_sibling(root / "inputs" / "frames" / "notes.txt"),  # not a name the store writes
            root / "inputs" / "frames" / "00003.bin.partial",  # not a temporary's name
            temp_sibling(store / "jobs" / "holiday.jpg"),
            store / "jobs" / ("f" * 32) / "inputs" / "frames" / ".00000.bin.abcd1234.partial"]  # unreadable job
    kept[1].write_bytes(b"x")
    kept[3].parent.mkdir(parents=True)
    kept[3].write_bytes(b"x")
    lock = os.open(root / "worker.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        with DaemonProcess(store) as d, Client(d.address, config=client_config(d.address, timeout_s=20.0)) as c:
            opened, _, _ = open_clip(c, frames, masks)
            assert opened == job
            status = c.status(job)
            assert (status["missing_frames"], status["missing_masks"]) == (2, 2)
            assert "removed 5 temporary file(s)" in d.log(), d.log()
    finally:
        os.close(lock)
    assert [p for p in gone if p.exists()] == []
    assert [p for p in kept + held if not p.exists()] == []
    with DaemonProcess(store) as d:  # no training process holds the job now
        pass
    assert "removed 2 temporary file(s)" in d.log()
    assert [p for p in held if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
