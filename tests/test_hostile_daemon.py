"""The daemon against a hostile local client, over real ZeroMQ to a real `vinpaint serve` on loopback: deep
headers are `malformed` and cost a few bytes of log, a client's string cannot forge a log line, job.open's
overrides meet the engine's own ranges, a job that cannot fit in memory or would train for ever is refused at
open, and a device the machine cannot use stops the daemon at start."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from daemon_fixtures import DaemonProcess
from vinpaint.engine.config import setting_fields
from vinpaint.host_bridge.client import Client, RequestError, client_config
from vinpaint.protocol import codec


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    store = tmp_path_factory.mktemp("hostile") / "store"
    with DaemonProcess(store) as d:
        yield d


@pytest.fixture()
def client(daemon):
    with Client(daemon.address, config=client_config(daemon.address, timeout_s=20.0)) as c:
        yield c


def ask(address: str, frames: list[bytes], timeout_s: float = 20.0) -> codec.Message:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(address)
        sock.send_multipart(frames)
        assert sock.poll(int(timeout_s * 1000)), "the daemon did not answer"
        return codec.decode_reply(sock.recv_multipart())
    finally:
        sock.close(0)
        ctx.term()


def nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def log_size(daemon) -> int:
    return daemon.stderr_path.stat().st_size


def test_deep_headers_are_malformed_and_cost_almost_no_log(daemon):
    before = log_size(daemon)
    header = msgpack.packb({"v": 1, "type": "hello", "id": "deep", "body": {"client": nested(500)}})
    assert len(header) < 600  # the 542-byte header
    for _ in range(28):
        reply = ask(daemon.address, [header])
        assert reply.status == "error" and reply.error["code"] == "malformed", reply.error
        assert "more than 16 deep" in reply.error["message"]
    # msgpack's own stack limit: 60000 levels of fixarray in one frame
    flat = b"\x84\xa1v\x01\xa4type\xa5hello\xa2id\xa1x\xa4body\x81\xa6client" + b"\x91" * 60000 + b"\x01"
    reply = ask(daemon.address, [flat])
    assert reply.error["code"] == "malformed"
    grown = log_size(daemon) - before
    assert grown < 2000, f"28 bad requests wrote {grown} bytes of log"  # was 3 MB
    assert "Traceback" not in daemon.log()


def test_a_client_string_cannot_forge_a_log_line(daemon, client):
    forged = "FORGED vinpaint-daemon ERROR the store was deleted"
    reply = ask(daemon.address, [codec.encode_request("hello", "h1", {"client": f"me\n{forged}\r\n"})[0]])
    assert reply.status == "ok"
    client.hello()  # a later request: its log line comes after, so the record above is complete
    lines = daemon.stderr_path.read_text(errors="replace").splitlines()
    assert not any(line.startswith("FORGED") for line in lines)
    assert any("hello from 'me\\n" + forged in line for line in lines)


def test_hellos_in_a_loop_cost_almost_no_log(daemon):
    """Before: every hello logged its client name; 20,000 hellos from one client wrote 52 MB in 8 s."""
    with zmq.Context() as ctx, ctx.socket(zmq.DEALER) as sock:
        sock.connect(daemon.address)
        before = log_size(daemon)
        for i in range(1000):
            name = "loop" if i % 2 else f"name {i} " + "\x01" * 200  # one name again and again, and new ones
            sock.send_multipart(codec.encode_request("hello", f"h{i}", {"client": name}))
            if i % 10 == 9:  # read as they come (the daemon drops replies past 64 queued): a flood is another test's
                for _ in range(10):
                    assert sock.poll(10000), "a hello went unanswered"
                    assert codec.decode_reply(sock.recv_multipart()).status == "ok"
        grown = log_size(daemon) - before
    assert grown < 20000, f"1000 hellos wrote {grown} bytes of log"


@pytest.mark.parametrize("name,value,says", [
    ("mask.dilation", 100000, "mask.dilation must be a whole number from 0 to 512, not 100000"),
    ("resolution.work_width", 65536, "resolution.work_width must be a multiple of 64 from 64 to 2048"),
    ("train.updates_per_batch", 10**12, "train.updates_per_batch must be a whole number from 1 to 100000"),
    ("network.skip_channels", 0, "network.skip_channels must be a whole number from 1 to 256, not 0"),
    ("train.learning_rate", 1e300, "train.learning_rate must be a finite number above 0 and at most 1e+06"),
    ("train.epochs", True, "train.epochs must be a finite number"),
])
def test_overrides_meet_the_same_ranges_as_the_command_line(client, name, value, says):
    with pytest.raises(RequestError) as info:
        client.open_job(frames=12, width=64, height=64, channels=3, dtype="u1", mask_dtype="u1",
                        content_hash="0" * 64, settings={"preset": "tiny", "overrides": {name: value}})
    assert info.value.code == "bad_request" and info.value.field == f"body.settings.overrides.{name}"
    assert says in str(info.value)
    assert client.list_jobs() == []  # nothing stored


def test_a_job_that_cannot_fit_in_memory_is_refused_at_open(client):
    with pytest.raises(RequestError) as info:
        # a few KB of frames, but 64 frames a batch at 2048x2048: over 500 GiB of activations, more than any device
        client.open_job(frames=64, width=64, height=64, channels=4, dtype="u1", mask_dtype="u1",
                        content_hash="1" * 64, settings={"preset": "fast", "variant": "dip-vid", "overrides": {
                            "resolution.work_width": 2048, "resolution.work_height": 2048, "train.batch_size": 64,
                            "train.max_steps": 10, "shot.window": 64}})  # one window (its batches fit it)
    assert info.value.code == "too_large"
    assert re.search(r"needs about [\d.]+ GiB of memory .* the largest device here \(cpu\) has [\d.]+ GiB",
                     str(info.value)), str(info.value)
    assert client.list_jobs() == []


def test_a_job_that_would_hold_the_device_for_ever_is_refused_at_open(client):
    with pytest.raises(RequestError) as info:  # each value in range, together about 10^9 steps
        client.open_job(frames=12, width=64, height=64, channels=3, dtype="u1", mask_dtype="u1",
                        content_hash="2" * 64, settings={"preset": "tiny", "overrides": {
                            "train.epochs": 1000.0, "train.updates_per_batch": 100000, "train.max_steps": 0}})
    assert info.value.code == "too_large" and "training steps, over this daemon's limit" in str(info.value)
    with pytest.raises(RequestError) as info:  # a schedule too long to plan: refused before it is built
        client.open_job(frames=12, width=64, height=64, channels=3, dtype="u1", mask_dtype="u1",
                        content_hash="3" * 64, settings={"preset": "tiny", "overrides": {"train.epochs": 99999.0}})
    assert info.value.code == "bad_request" and "batches" in str(info.value)
    assert client.list_jobs() == []


@pytest.mark.parametrize("device,says", [
    ("cuda:99", r"device cuda:99 is not available"),
    ("potato", r"device 'potato' is not a device name"),
    ("meta", r"device 'meta' is not supported"),
])
def test_a_device_the_machine_cannot_use_stops_the_daemon_at_start(tmp_path, device, says):
    done = subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                           str(tmp_path / "store"), "--device", device], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(f"vinpaint: error: {says}[^\n]*\n", done.stderr), done.stderr
    assert "listening" not in done.stdout


DAEMON_FUZZ_CASES = 300


@settings(max_examples=DAEMON_FUZZ_CASES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_every_override_over_the_wire(daemon, data):
    """Every engine setting, hostile scalar values, alone or three at once: `job.open` answers ok or a named
    refusal, never `internal`, and never stores a job whose settings fall outside their ranges."""
    names = data.draw(st.lists(st.sampled_from(sorted(setting_fields())), min_size=1, max_size=3, unique=True))
    values = st.one_of(st.integers(-(2**63), 2**64 - 1), st.sampled_from([0, -1, 1, 2**31, 10**12, 65536, 512, 513]),
                       st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                       st.text(max_size=300), st.sampled_from(["", "2d", "zero", "known", "\n", "../x"]))
    overrides = {name: data.draw(values) for name in names}
    body = {"frames": 12, "width": 64, "height": 64, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
            "content_hash": data.draw(st.sampled_from(["4", "5", "6"])) * 64,
            "settings": {"preset": data.draw(st.sampled_from(["tiny", "fast", "paper"])), "overrides": overrides}}
    reply = ask(daemon.address, [codec.encode_request("job.open", "fz", body)[0]])
    event(reply.error["code"] if reply.status == "error" else "ok")
    if reply.status == "error":
        assert reply.error["code"] in ("bad_request", "too_large"), reply.error
        assert "\n" not in reply.error["message"]
        return
    job = reply.body["job"]
    config = json.loads((daemon.store / "jobs" / job / "job.json").read_text())["config"]
    from vinpaint.engine import InpaintConfig

    InpaintConfig.from_dict(config)  # what was stored passes the engine's own check
    assert ask(daemon.address, [codec.encode_request("job.delete", "fd", {"job": job})[0]]).status == "ok"
