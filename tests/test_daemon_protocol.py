"""The daemon over real sockets, without training: refusals, uploads, resumable uploads, fuzzing, auth, binding.

One real `vinpaint serve` subprocess (module scope) on a loopback port answers everything here.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon_fixtures import DaemonProcess, synthetic_clip
from vinpaint.host_bridge.client import Client, RequestError, DaemonUnavailable, client_config, wire_clip
from vinpaint.protocol import codec
from vinpaint.protocol.content_hash import clip_hash, item_digest

GOLDEN = Path(codec.__file__).resolve().parent / "golden"
MAX_MB = 1


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    store = tmp_path_factory.mktemp("daemon") / "store"
    with DaemonProcess(store, "--max-message-mb", str(MAX_MB)) as d:
        yield d


@pytest.fixture()
def client(daemon):
    with Client(daemon.address, config=client_config(daemon.address, timeout_s=20.0)) as c:
        yield c


class Raw:
    """A bare DEALER for sending arbitrary frames."""

    def __init__(self, address: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)

    def ask(self, frames, timeout_s: float = 20.0) -> codec.Message | None:
        self.sock.send_multipart(frames)
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        return codec.decode_reply(self.sock.recv_multipart())

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture()
def raw(daemon):
    r = Raw(daemon.address)
    yield r
    r.close()


def open_clip(client: Client, frames, masks, **settings):
    frames, wmasks = wire_clip(frames, masks)
    t, h, w, c = frames.shape
    dt = codec.wire_array(frames[:1])[0].dtype
    mdt = codec.wire_array(wmasks[:1])[0].dtype
    chash = clip_hash(t, h, w, c, dt, mdt, [item_digest(f) for f in frames], [item_digest(m) for m in wmasks])
    opened = client.open_job(frames=t, width=w, height=h, channels=c, dtype=dt, mask_dtype=mdt,
                             content_hash=chash, settings={"preset": "tiny", **settings})
    return opened, frames, wmasks


def expect_error(code: str, fn, *args, **kw) -> RequestError:
    with pytest.raises(RequestError) as info:
        fn(*args, **kw)
    assert info.value.code == code, str(info.value)
    return info.value


def test_hello_reports_protocol_and_limits(client):
    hello = client.hello()
    assert hello["protocol"] == codec.PROTOCOL_VERSION
    assert hello["limits"]["max_message_bytes"] == MAX_MB * 1024 * 1024
    assert "tiny" in hello["presets"] and "dip-vid-flow" in hello["variants"] and hello["devices"] == ["cpu"]


def test_version_mismatch_is_refused_clearly(raw):
    reply = raw.ask([msgpack.packb({"v": 2, "type": "job.list", "id": "v2-1", "body": {}})])
    assert reply.status == "error" and reply.re == "v2-1"
    assert reply.error["code"] == "version_mismatch"
    assert "version 2" in reply.error["message"] and "version 1" in reply.error["message"]
    assert reply.body == {"supported": [1]}


@pytest.mark.parametrize("vec", [v for v in json.loads((GOLDEN / "vectors.json").read_text())["vectors"]
                                 if not v["valid"] and v["direction"] == "request"], ids=lambda v: v["name"])
def test_daemon_answers_golden_invalid_requests_with_their_codes(raw, vec):
    reply = raw.ask([(GOLDEN / f).read_bytes() for f in vec["files"]])
    assert reply is not None and reply.status == "error"
    assert reply.error["code"] == vec["expect_error"]["code"]
    if "field" in vec["expect_error"]:
        assert reply.error["field"] == vec["expect_error"]["field"]


def test_golden_status_request_for_an_unknown_job_is_not_found(raw):
    reply = raw.ask([(GOLDEN / "job_status_request.0.bin").read_bytes()])
    assert (reply.re, reply.error["code"]) == ("c-6", "not_found")


def test_open_upload_any_order_then_reopen_lists_what_is_held(client):
    frames, masks = synthetic_clip(seed=1)
    opened, wf, wm = open_clip(client, frames, masks, seed=11)
    job = opened["job"]
    assert opened["created"] and opened["state"] == "uploading" and opened["have_frames"] == []
    for i in (7, 2, 9):
        r = client.upload(job, "frame", i, wf[i])
        assert r["stored"]
    client.upload(job, "mask", 4, wm[4])
    client.upload(job, "mask", 4, wm[4])  # idempotent
    again, _, _ = open_clip(client, frames, masks, seed=11)
    assert again["job"] == job and not again["created"]
    assert again["have_frames"] == [2, 7, 9] and again["have_masks"] == [4]
    other, _, _ = open_clip(client, frames, masks, seed=12)
    assert other["job"] != job  # settings are part of the job's identity
    status = client.status(job)
    assert status["missing_frames"] == 9 and status["missing_masks"] == 11 and status["state"] == "uploading"
    err = expect_error("incomplete", client.start, job)
    assert 0 in err.body["missing_frames"] and 4 not in err.body["missing_masks"]
    expect_error("not_ready", client.fetch, job, 0)


def test_upload_refusals(client):
    frames, masks = synthetic_clip(seed=2, dtype=np.float32)
    opened, wf, wm = open_clip(client, frames, masks)
    job = opened["job"]
    expect_error("bad_request", client.upload, job, "frame", 12, wf[0])
    expect_error("bad_buffer", client.upload, job, "frame", 0, wf[0][..., :3])  # 3 channels, the job has 4
    expect_error("bad_buffer", client.upload, job, "frame", 0, wf[0].astype(np.uint16))
    expect_error("bad_buffer", client.upload, job, "mask", 0, wf[0])
    nan = wf[0].copy()
    nan[1, 2, 0] = np.nan
    expect_error("bad_buffer", client.upload, job, "frame", 0, nan)
    digest = item_digest(wf[1]).hex()
    err = expect_error("hash_mismatch", client.request, "job.upload",
                       {"job": job, "kind": "frame", "index": 0, "digest": digest}, [wf[0]])
    assert err.field == "body.digest"
    expect_error("not_found", client.upload, "f" * 32, "frame", 0, wf[0])
    assert client.status(job)["missing_frames"] == 12  # nothing refused was stored


def test_start_verifies_the_content_hash(client):
    frames, masks = synthetic_clip(seed=3)
    opened, wf, wm = open_clip(client, frames, masks)
    job = opened["job"]
    for i in range(12):
        client.upload(job, "frame", i, wf[(i + 1) % 12])  # every frame in the wrong slot
        client.upload(job, "mask", i, wm[i])
    expect_error("hash_mismatch", client.start, job)
    assert client.status(job)["state"] == "uploading"
    client.delete(job)
    expect_error("not_found", client.status, job)


def test_open_refusals(client):
    frames, masks = synthetic_clip(t=4)
    open_clip(client, frames, masks)  # too few frames for the preset's batches: trained on those that fit, not refused
    frames, masks = synthetic_clip()
    err = expect_error("bad_request", open_clip, client, frames, masks, overrides={"loss.vgg_weights": "/etc/x"})
    assert err.field == "body.settings.overrides.loss.vgg_weights"
    expect_error("bad_request", open_clip, client, frames, masks, overrides={"train.nope": 1})
    expect_error("bad_request", open_clip, client, frames, masks, overrides={"train.max_steps": "ten"})
    expect_error("bad_request", open_clip, client, frames, masks, variant="dip-vid-fl0w")
    body = {"frames": 10**5, "width": 64, "height": 64, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
            "content_hash": "0" * 64}
    assert expect_error("too_large", client.request, "job.open", body).field == "body.frames"
    body = {**body, "frames": 10000, "width": 8192, "height": 8192, "channels": 4, "dtype": "f4"}
    err = expect_error("too_large", client.request, "job.open", body)  # a 1 GiB frame over this daemon's 1 MiB
    assert "one frame is 1024.0 MiB, more than the 1 MiB this daemon takes in one message" in str(err)


def test_open_of_a_clip_larger_than_the_disk_is_refused(tmp_path):
    with DaemonProcess(tmp_path / "store", "--max-message-mb", "2048") as d, Client(d.address) as c:
        body = {"frames": 10000, "width": 8192, "height": 8192, "channels": 4, "dtype": "f4", "mask_dtype": "u1",
                "content_hash": "0" * 64}
        err = expect_error("storage_full", c.request, "job.open", body)  # 10000 x 1 GiB frames: not on this disk
        assert re.search(r"the job needs [\d.]+ GB for its inputs and results, but the daemon's disk has [\d.]+ [GM]B "
                         r"free, of which it keeps 536\.9 MB in reserve", str(err)), str(err)


def test_path_traversal_is_impossible(client, raw, daemon):
    for bad in ("../../etc/passwd", "..", "/" + "a" * 31, "A" * 32, "0" * 31 + "/", "%2e%2e" + "0" * 26):
        reply = raw.ask(codec.encode_request("job.status", "pt", {"job": bad}))
        assert reply.error["code"] == "bad_request" and reply.error["field"] == "body.job"
    frames, masks = synthetic_clip(seed=4)
    opened, _, _ = open_clip(client, frames, masks)
    name = "../../../../tmp/escape"
    client.request("job.open", {**_open_body(frames, masks), "name": name})
    assert all(p.parent.name == "jobs" for p in (daemon.store / "jobs").iterdir())
    assert not Path("/tmp/escape").exists()


def _open_body(frames, masks):
    wf, wm = wire_clip(frames, masks)
    t, h, w, c = wf.shape
    return {"frames": t, "width": w, "height": h, "channels": c, "dtype": "u1", "mask_dtype": "u1",
            "content_hash": clip_hash(t, h, w, c, "u1", "u1", [item_digest(f) for f in wf],
                                      [item_digest(m) for m in wm]), "settings": {"preset": "tiny"}}


def test_client_that_disconnects_mid_upload_resumes_on_a_new_connection(daemon):
    frames, masks = synthetic_clip(seed=5)
    first = Client(daemon.address)
    opened, wf, wm = open_clip(first, frames, masks)
    job = opened["job"]
    for i in range(5):
        first.upload(job, "frame", i, wf[i])
    # a half-sent upload: header announces a buffer, the socket dies before anything else is read
    first.socket.send_multipart(codec.encode_request("job.upload", "cut", {"job": job, "kind": "frame",
                                                                           "index": 5}, [wf[5]])[:1])
    first.close()
    with Client(daemon.address) as second:
        again, _, _ = open_clip(second, frames, masks)
        assert again["job"] == job and again["have_frames"] == [0, 1, 2, 3, 4]
        for i in range(12):
            if i not in again["have_frames"]:
                second.upload(job, "frame", i, wf[i])
            second.upload(job, "mask", i, wm[i])
        status = second.status(job)
        assert status["missing_frames"] == status["missing_masks"] == 0
        second.delete(job)


def test_oversize_frames_drop_the_peer_and_the_daemon_keeps_serving(daemon, raw):
    big = np.zeros((1024, 1025, 1), np.uint8)  # just over ZMQ_MAXMSGSIZE (1 MiB)
    reply = raw.ask(codec.encode_request("job.upload", "big", {"job": "0" * 32, "kind": "frame", "index": 0},
                                         [big]), timeout_s=3)
    assert reply is None  # libzmq closed the connection; no reply by design (SPEC.md section 1)
    with Client(daemon.address) as c:
        assert c.hello()["protocol"] == 1
    huge_header = [msgpack.packb({"v": 1, "type": "hello", "id": "h", "pad": "x" * 100_000})]
    other = Raw(daemon.address)
    try:
        answer = other.ask(huge_header)
        assert answer.error["code"] == "too_large" and answer.error["field"] == "header"
    finally:
        other.close()


FUZZ_TYPES = ["hello", "job.open", "job.upload", "job.start", "job.status", "job.fetch", "job.cancel",
              "job.delete", "job.list", "nope"]
values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=12)
                      | st.binary(max_size=12),
                      lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=6), ch, max_size=4),
                      max_leaves=12)
body_keys = st.sampled_from(["job", "kind", "index", "frames", "width", "height", "channels", "dtype", "mask_dtype",
                             "content_hash", "settings", "digest", "name", "client"])


def _fuzz_frames(draw_kind, header, extra):
    if draw_kind == 0:
        try:
            return [msgpack.packb(header, use_bin_type=True), *extra]
        except (OverflowError, ValueError, TypeError):
            return [b"\xc1", *extra]
    blob = msgpack.packb(header, use_bin_type=True, default=str) if draw_kind == 1 else b"".join(extra)
    return [blob[: max(len(blob) // 2, 1)], *extra]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(kind=st.integers(0, 2), v=st.sampled_from([1, 1, 1, 2, None, "1"]), type_=st.sampled_from(FUZZ_TYPES),
       body=st.dictionaries(body_keys, values, max_size=5) | values,
       buffers=st.none() | st.lists(st.fixed_dictionaries({"dtype": st.sampled_from(["u1", "u2", "f4", "x"]),
                                                           "shape": st.lists(st.integers(0, 4), max_size=4)}),
                                    max_size=2),
       extra=st.lists(st.binary(max_size=64), max_size=3))
def test_fuzz_thousands_of_malformed_messages_then_a_valid_request(raw, kind, v, type_, body, buffers, extra):
    header = {"v": v, "type": type_, "id": "fz", "body": body}
    if buffers is not None:
        header["buffers"] = buffers
    reply = raw.ask(_fuzz_frames(kind, header, extra), timeout_s=20)
    assert reply is not None, "every message under the size limit gets a reply"
    if reply.status == "error":
        assert reply.error["code"] in {"malformed", "version_mismatch", "unknown_type", "bad_request", "bad_buffer",
                                       "too_large", "not_found", "conflict", "incomplete", "hash_mismatch",
                                       "not_ready", "storage_full", "busy"}, reply.error


@pytest.fixture(scope="module")
def fuzz_job(daemon):
    """An open job (12 frames of 64x64 RGBA u1, u1 masks) for the fuzzer to aim valid ids at."""
    with Client(daemon.address) as c:
        frames, masks = synthetic_clip(seed=31)
        opened, _, _ = open_clip(c, frames, masks)
        return opened["job"]


deep_types = st.sampled_from(["job.open", "job.upload", "job.start", "job.status", "job.fetch", "job.cancel",
                              "job.list", "hello"])
shapes = st.sampled_from([[64, 64, 4], [64, 64, 1], [64, 64, 3], [1], [64, 64], [2, 2, 2, 2]])
dtypes = st.sampled_from(["u1", "u2", "f4"])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_plausible_messages_aimed_at_a_real_job(raw, fuzz_job, data):
    """Right envelope, right job id, fields and buffers that are almost right: the deep paths of every handler."""
    type_ = data.draw(deep_types)
    pick = lambda good, bad: data.draw(st.one_of(st.just(good), bad))  # noqa: E731
    body = {
        "job": pick(fuzz_job, st.sampled_from(["0" * 32, fuzz_job[:-1], fuzz_job.upper(), 7])),
        "kind": pick("frame", st.sampled_from(["mask", "alpha", 1, None])),
        "index": pick(0, st.integers(-3, 20) | st.floats() | st.text(max_size=2)),
        "digest": data.draw(st.none() | st.sampled_from(["0" * 64, "x"])),
        "frames": pick(12, st.integers(-1, 10**6)), "width": pick(64, st.integers(-1, 10**5)),
        "height": pick(64, st.integers(-1, 10**5)), "channels": pick(4, st.integers(0, 6)),
        "dtype": pick("u1", st.sampled_from(["u2", "f4", "f8", ""])),
        "mask_dtype": pick("u1", st.sampled_from(["u2", "f4", "i4"])),
        "content_hash": pick("0" * 64, st.text(max_size=3)),
        "settings": data.draw(st.fixed_dictionaries({}, optional={
            "preset": st.sampled_from(["tiny", "fast", "paper", "huge", 3]),
            "variant": st.sampled_from(["dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow", "x"]),
            "seed": st.integers(-1, 2**32), "mask_dilation": st.integers(-1, 600),
            "overrides": st.dictionaries(st.sampled_from(["train.max_steps", "train.learning_rate", "mask.feather",
                                                          "loss.vgg_weights", "network.kind", "train.intervals",
                                                          "nope", ""]),
                                         st.integers(-5, 5) | st.floats() | st.booleans() | st.text(max_size=4),
                                         max_size=3)})),
    }
    body = {k: v for k, v in body.items() if data.draw(st.booleans()) or k == "job"}
    specs = data.draw(st.lists(st.fixed_dictionaries({"dtype": dtypes, "shape": shapes}), max_size=2))
    frames = [msgpack.packb({"v": 1, "type": type_, "id": "deep", "body": body, "buffers": specs})]
    for spec in specs:
        n = int(np.prod(spec["shape"])) * {"u1": 1, "u2": 2, "f4": 4}[spec["dtype"]]
        n += data.draw(st.sampled_from([0, 0, 0, -1, 1]))
        fill = data.draw(st.sampled_from([b"\x00", b"\xff", b"\x7f"]))
        frames.append(fill * max(n, 0))
    reply = raw.ask(frames, timeout_s=20)
    assert reply is not None
    assert reply.status == "ok" or reply.error["code"] != "internal", reply.error


def test_daemon_still_answers_after_the_fuzzing(client, daemon):
    assert client.hello()["protocol"] == 1
    assert isinstance(client.list_jobs(), list)
    assert "request failed" not in daemon.log(), "no request may end in an internal error"
    assert daemon.proc.poll() is None


def test_second_daemon_on_the_same_store_is_refused(daemon):
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                           str(daemon.store)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "another daemon" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("endpoint,local", [
    ("tcp://127.0.0.1:5581", True), ("tcp://127.3.4.5:1", True), ("tcp://localhost:5581", True),
    ("tcp://[::1]:5581", True), ("ipc:///tmp/vinpaint.sock", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5581", False), ("tcp://*:5581", False), ("tcp://192.168.1.7:5581", False),
    ("tcp://[::]:5581", False), ("tcp://eth0:5581", False), ("tcp://lo:5581", False),
    ("tcp://example.com:5581", False), ("tcp://127.0.0.1.evil.com:1", False), ("udp://127.0.0.1:1", False),
    ("127.0.0.1:5581", False)])
def test_loopback_detection(endpoint, local):
    from vinpaint.host_bridge.auth import is_local_endpoint

    assert is_local_endpoint(endpoint) is local


@pytest.mark.parametrize("bind", ["tcp://0.0.0.0:*", "tcp://[::]:5581"])
def test_non_loopback_bind_without_auth_is_refused(tmp_path, bind):
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", bind, "--store",
                           str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "refusing to listen" in proc.stderr and "authentication" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,says", [
    (["--bind", "tcp://127.0.0.1:99999"], "tcp://127.0.0.1:99999 has no valid port"),  # ZeroMQ listened on 34463
    (["--bind", "tcp://127.0.0.1:-1"], "tcp://127.0.0.1:-1 has no valid port"),  # and on 65535
    (["--max-jobs", "0"], "--max-jobs must be from 1"),  # every job was then refused as over the limit
    (["--max-message-mb", "100000000"], "--max-message-mb must be from 1 to 4096"),
    (["--bind", "inproc://x"], "inproc://x reaches only threads inside the daemon's own process")])  # unreachable
def test_a_port_zeromq_would_wrap_and_limits_that_refuse_everything_are_one_sentence(tmp_path, args, says):
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--store", str(tmp_path / "s"),
                           "--device", "cpu", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()


def test_a_second_daemon_is_refused_even_when_the_lock_file_was_removed_by_hand(tmp_path):
    """Before (a hunt found it): a second daemon started on the store, took the first's live trainer for a
    stopped daemon's and killed it, and both wrote the same job records."""
    with DaemonProcess(tmp_path / "store") as first:
        (tmp_path / "store" / "daemon.lock").unlink()
        proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                               str(tmp_path / "store"), "--device", "cpu"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"another daemon (pid {first.proc.pid}) is using the store" in proc.stderr, proc.stderr
        assert "its lock file daemon.lock was removed" in proc.stderr
        with Client(first.address) as client:
            assert client.hello()["features"]  # the first serves on
    with DaemonProcess(tmp_path / "store") as again:  # once it stopped, the store is free again
        assert again.address


def test_a_second_daemon_on_an_ipc_address_in_use_is_refused_and_the_first_keeps_it(tmp_path):
    """ZeroMQ replaces an ipc:// socket file: a second daemon (another store) took the address over, so clients
    reached it instead, and the first none at all once it stopped (a hunt found it). TCP refused already."""
    address = f"ipc://{tmp_path}/vinpaint.sock"
    with DaemonProcess(tmp_path / "a", bind=address) as first:
        proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", address, "--store",
                               str(tmp_path / "b"), "--device", "cpu"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"cannot listen on {address}: another program (a vinpaint daemon?) listens there" in proc.stderr
        assert not (tmp_path / "b").exists()  # refused before its store was made
        with Client(first.address) as client:
            assert client.hello()["features"]  # still answering
    with DaemonProcess(tmp_path / "c", bind=address) as again:  # a stopped daemon's address is free again
        assert again.address == address


def test_curve_auth_lets_allowed_clients_in_and_keeps_others_out(tmp_path):
    keys = tmp_path / "keys"
    subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--make-keys", str(keys)], check=True,
                   capture_output=True, timeout=120)
    other = tmp_path / "other"
    from vinpaint.host_bridge.auth import make_keys

    make_keys(other)  # a key pair the daemon has never heard of
    with DaemonProcess(tmp_path / "store", "--curve-secret", str(keys / "server.key_secret"), "--curve-allow",
                       str(keys / "clients"), bind="tcp://0.0.0.0:*") as d:
        port = d.address.rsplit(":", 1)[1]
        address = f"tcp://127.0.0.1:{port}"
        ok = client_config(address, keys / "server.key", keys / "client.key_secret")
        with Client(config=ok) as c:
            assert c.hello()["protocol"] == 1
        for cfg in (client_config(address, keys / "server.key", other / "client.key_secret", timeout_s=1.5,
                                  retries=0),
                    client_config(address, timeout_s=1.5, retries=0)):
            with Client(config=cfg) as c:
                with pytest.raises(DaemonUnavailable):
                    c.hello()


@pytest.mark.parametrize("junk", ["garbage\n", "metadata\ncurve\n    public-key = \"short\"\n"])
def test_an_allow_list_with_a_key_that_cannot_be_read_is_refused_at_start(tmp_path, junk):
    """pyzmq drops the whole allow-list when one *.key in it cannot be read (it logged an error and the daemon
    listened with no client able to connect): the daemon refuses to start, naming the file."""
    from vinpaint.host_bridge.auth import make_keys

    keys = make_keys(tmp_path / "keys")
    (keys["clients"] / "stray.key").write_text(junk)
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--store", str(tmp_path / "s"), "--device",
                           "cpu", "--bind", "tcp://0.0.0.0:*", "--curve-secret",
                           str(tmp_path / "keys" / "server.key_secret"), "--curve-allow", str(keys["clients"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "stray.key" in proc.stderr and "every *.key in --curve-allow must be a client's public key" in \
        proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()


def test_make_keys_writes_secrets_for_the_owner_alone_and_refuses_an_empty_folder_name(tmp_path):
    """Secrets are made under umask 077 (pyzmq wrote them 0644 and a chmod followed: a kill in between left a
    secret readable by all); `--make-keys ""` wrote the keys into the current folder (a hunt, 2026-12-03)."""
    from vinpaint.host_bridge.auth import make_keys

    keys = make_keys(tmp_path / "keys")
    for name in ("server", "client"):
        assert oct(keys[f"{name}.key_secret"].stat().st_mode & 0o777) == "0o600"
        assert oct(keys[f"{name}.key"].stat().st_mode & 0o777) == "0o644"
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--make-keys", ""], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path / "keys" / "clients")
    assert proc.returncode == 2 and "--make-keys needs a folder" in proc.stderr, proc.stderr
    assert sorted(os.listdir(tmp_path / "keys" / "clients")) == ["client.key"]


@pytest.mark.parametrize("args,says", [
    (["--stream-wait", "0"], "--stream-wait"), (["--stream-wait", "nan"], "--stream-wait"),
    (["--ray", "127.0.0.1:1", "--ray-cpus", "0"], "--ray-cpus"), (["--ray-cpus", "2"], "--ray-cpus needs --ray")])
def test_serve_refuses_bad_long_shot_options_in_one_sentence(tmp_path, args, says):
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                           str(tmp_path / "s"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
