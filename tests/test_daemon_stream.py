"""Streaming uploads and early results (protocol features "stream" and "partial_results"), against a real daemon
on loopback, real msgpack over real ZeroMQ: a long shot's first window trains while the rest of the clip uploads,
each frame is served as soon as it is written, a window that never gets its frames fails the job with one
sentence, and a done shot's window folders are cleaned up."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from daemon_fixtures import DaemonProcess, synthetic_clip
from vinpaint.engine import make_config
from vinpaint.host_bridge import job_settings
from vinpaint.host_bridge.client import Client, RequestError
from vinpaint.host_bridge.daemon_config import LimitsConfig
from vinpaint.host_bridge.handlers import Requests
from vinpaint.host_bridge.pool import TrainerPool
from vinpaint.host_bridge.store import JobRecord, JobStore
from vinpaint.protocol import codec
from vinpaint.protocol.content_hash import clip_hash, item_digest

SEED = 4
SHOT = {"loss.perceptual": 0.0, "propagation.enabled": False, "shot.window": 11, "shot.overlap": 3,
        "train.max_steps": 3}
"""Windows of 11 frames, 3 steps each: 19 frames make 2 windows (0-10 and 8-18)."""
FIRST = 11
"""Frames of the first window."""


def clip():
    frames, masks = synthetic_clip(t=19, h=48, w=56, channels=4, seed=1)
    return frames, masks[..., None].astype(np.uint8) * np.uint8(255)


def open_clip(client: Client, frames, masks, content_hash: str | None = None) -> dict:
    t, h, w, c = frames.shape
    digests = ([item_digest(f) for f in frames], [item_digest(m) for m in masks])
    content = content_hash or clip_hash(t, h, w, c, "u1", "u1", *digests, {})
    return client.open_job(frames=t, width=w, height=h, channels=c, dtype="u1", mask_dtype="u1",
                           content_hash=content, settings={"preset": "tiny", "seed": SEED, "overrides": SHOT})


def upload(client: Client, job: str, frames, masks, indices) -> dict:
    reply = {}
    for i in indices:
        client.upload(job, "frame", i, frames[i])
        reply = client.upload(job, "mask", i, masks[i])
    return reply


def wait_for(client: Client, job: str, done, timeout_s: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.status(job)
        if done(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("stream") / "store") as d:
        yield d


def test_the_step_limit_counts_each_windows_schedule(tmp_path):
    config = make_config("tiny", "dip-vid-flow", **{"shot.window": 11, "shot.overlap": 3, "train.max_steps": 20})
    assert job_settings.planned_steps(config, 27) == 3 * 20, "3 windows, each cut at train.max_steps"
    assert config.planned_steps(27) == 20, "the whole clip as one schedule counts one window's worth"
    uncut = make_config("tiny", "dip-vid-flow", **{"shot.window": 11, "shot.overlap": 3, "train.max_steps": 0})
    assert job_settings.planned_steps(uncut, 27) == 3 * uncut.planned_steps(11) < uncut.planned_steps(27), \
        "uncut, a window's schedule is its own frames' batches: fewer than the whole clip's"
    store = JobStore(tmp_path / "store")
    store.open()
    pool = TrainerPool(store, ("cpu",))
    pool.trainers[0].memory = 1 << 40  # the memory check is not what this test is about
    requests = Requests(store, pool, LimitsConfig(reserve_bytes=0, max_train_steps=50), [].append)

    def open_(frames: int):
        body = {"frames": frames, "width": 32, "height": 32, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
                "content_hash": f"{frames:064x}", "settings": {"preset": "tiny", "overrides": {
                    "shot.window": 11, "shot.overlap": 3, "train.max_steps": 20}}}
        return codec.decode_reply(requests.handle(codec.encode_request("job.open", f"o{frames}", body, ())))

    refused = open_(27)
    assert refused.status == "error" and refused.error["code"] == "too_large", refused
    assert "60 training steps (3 windows)" in refused.error["message"]
    accepted = open_(19)  # 2 windows: 40 steps
    assert accepted.status == "ok" and accepted.body["windows"] == 2, accepted


def test_the_streaming_flag_survives_a_restart(tmp_path):
    store = JobStore(tmp_path / "store")
    store.open()
    record = JobRecord(job="a" * 32, content_hash="b" * 64, frames=2, width=4, height=4, channels=3, dtype="u1",
                       mask_dtype="u1", settings={}, config={})
    job = store.create(record)
    job.record.stream = True
    job.save()
    again = JobStore(tmp_path / "store")
    again.open()
    assert again.get("a" * 32).record.stream is True
    assert json.loads((job.root / "job.json").read_text())["stream"] is True


@pytest.mark.slow
def test_a_long_shot_trains_its_first_window_while_the_rest_uploads(daemon, tmp_path):
    frames, masks = clip()
    seen: dict = {}
    with Client(daemon.address) as client, Client(daemon.address) as watcher:
        assert {"stream", "partial_results"} <= set(client.hello()["features"])

        def on_upload(n: int, total: int) -> None:
            if n != 2 * FIRST:
                return
            job = watcher.list_jobs()[0]["job"]  # the first window's items are in, the rest still to come
            seen["written"] = wait_for(watcher, job, lambda s: s["state"] == "failed" or (
                s["phase"] == "upload" and "frames 8-18" in s["message"]))  # window 2 waits for its items
            seen["frame0"] = watcher.fetch(job, 0)
            seen["matte0"] = watcher.fetch(job, 0, "matte")
            with pytest.raises(RequestError) as late:
                watcher.fetch(job, 18)
            seen["late"] = late.value

        job = client.submit(frames, masks[..., 0] > 0, preset="tiny", seed=SEED, overrides=SHOT,
                            on_upload=on_upload)
        status = client.wait(job, poll_s=0.1, timeout_s=300)
        got = client.results(job)
    written = seen["written"]
    assert written["state"] == "training" and written["missing_frames"] == 19 - FIRST, written
    assert written["message"] == f"waiting for frames 8-18 ({2 * (19 - FIRST)} items still to upload)", written
    assert written["frames_done"] == 8, "frames 0-7 are the first window's alone: written before the second trains"
    assert seen["late"].code == "not_ready" and "is not written yet" in str(seen["late"])
    assert np.array_equal(seen["frame0"], got[0]), "the early frame is the final one"
    assert seen["matte0"].shape == (48, 56, 1)
    assert np.array_equal(got[..., 3], frames[..., 3]), "alpha passes through"
    hole = masks[..., 0] > 0
    assert np.array_equal(got[..., :3][~hole], frames[..., :3][~hole]), "outside the hole: bit-exact source"
    assert status["frames_done"] == 19
    windows = sorted((daemon.store / "jobs" / job / "work").glob("window_*"))
    assert [w.name for w in windows] == ["window_0000", "window_0001"]
    for w in windows:  # done: each window keeps its record and log, not its arrays and checkpoint
        names = {p.name for p in w.iterdir()}
        assert "done.json" in names and not names & {"frames.npy", "hole.npy", "matte.npy", "checkpoint.pt"}, names


@pytest.mark.slow
def test_an_upload_after_a_streaming_start_needs_its_digest_and_a_wrong_clip_fails(daemon):
    frames, masks = clip()
    wrong = masks.copy()
    wrong[-1] = 0  # the job's content hash is of a clip whose last mask is empty
    t, h, w, c = frames.shape
    content = clip_hash(t, h, w, c, "u1", "u1", [item_digest(f) for f in frames], [item_digest(m) for m in wrong],
                        {})
    with Client(daemon.address) as client:
        opened = open_clip(client, frames, masks, content)
        job = opened["job"]
        assert opened["windows"] == 2
        with pytest.raises(RequestError) as early:
            client.start(job)
        assert early.value.code == "incomplete"
        started, _ = client.request("job.start", {"job": job, "stream": True})
        assert started["state"] == "queued" and started["stream"] is True
        with pytest.raises(RequestError) as bare:
            client.request("job.upload", {"job": job, "kind": "frame", "index": 0}, [frames[0]])
        assert bare.value.code == "bad_request" and bare.value.field == "body.digest"
        upload(client, job, frames, masks, range(FIRST))
        wait_for(client, job, lambda s: s["frames_done"] > 0)
        assert client.fetch(job, 0).shape == (48, 56, 4), "checked item by item, served before the clip is"
        upload(client, job, frames, masks, range(FIRST, t - 1))
        client.upload(job, "frame", t - 1, frames[t - 1])
        with pytest.raises(RequestError) as last:
            client.upload(job, "mask", t - 1, masks[t - 1])
        assert last.value.code == "hash_mismatch"
        status = client.status(job)
        assert status["state"] == "failed" and status["missing_masks"] == 0
        assert status["error"].startswith("the uploaded items do not hash to the job's content_hash; ")
        with pytest.raises(RequestError) as served:
            client.fetch(job, 0)
        assert served.value.code == "not_ready" and "serves nothing" in str(served.value)
        with pytest.raises(RequestError) as again:
            client.start(job)
        assert again.value.code == "hash_mismatch", "a start never trains a clip of another hash"
        assert (daemon.store / "jobs" / job / "work" / "window_0000" / "done.json").is_file(), \
            "its finished window stays on disk"


@pytest.mark.slow
def test_a_window_whose_frames_never_come_fails_the_job_and_resumes_later(tmp_path):
    frames, masks = clip()
    with DaemonProcess(tmp_path / "store", "--stream-wait", "2") as daemon, Client(daemon.address) as client:
        job = open_clip(client, frames, masks)["job"]
        client.request("job.start", {"job": job, "stream": True})
        upload(client, job, frames, masks, range(FIRST))
        failed = wait_for(client, job, lambda s: s["state"] in ("failed", "done"))
        assert failed["state"] == "failed"
        assert failed["error"] == "frames 8-18 were not uploaded within 2 s; upload them and start the job again"
        assert client.fetch(job, 0).shape == (48, 56, 4), "the finished window's frames are kept and served"
        work = daemon.store / "jobs" / job / "work"
        assert (work / "window_0000" / "done.json").is_file()
        again = client.submit(frames, masks[..., 0] > 0, preset="tiny", seed=SEED, overrides=SHOT)  # the rest
        assert again == job
        client.wait(job, poll_s=0.1, timeout_s=300)
        assert client.results(job).shape == frames.shape
    attempts = (work / "window_0000" / "attempts.log").read_text().splitlines()
    assert len(attempts) == 1, "the first window was not trained again"


@pytest.mark.slow
def test_a_one_window_job_waits_for_its_whole_clip_and_stops_at_once_when_cancelled(daemon):
    frames, masks = clip()
    frames, masks = frames[:FIRST], masks[:FIRST]
    with Client(daemon.address) as client:
        opened = open_clip(client, frames, masks)
        job = opened["job"]
        assert opened["windows"] == 1
        client.request("job.start", {"job": job, "stream": True})
        upload(client, job, frames, masks, range(FIRST - 1))
        waiting = wait_for(client, job, lambda s: s["phase"] == "upload" and s["state"] == "training")
        assert waiting["message"] == f"waiting for frames 0-{FIRST - 1} (2 items still to upload)", waiting
        assert client.cancel(job)["state"] == "cancelled"
        log = daemon.store / "jobs" / job / "log"
        deadline = time.monotonic() + 120
        while "training stopped on request" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
    assert "training stopped on request (exit 3)" in log.read_text(), \
        "the waiting trainer saw SIGTERM and stopped by itself (exit 3), not killed after the grace time"


@pytest.mark.slow
def test_a_restarted_daemon_still_takes_the_uploads_of_a_streaming_job(tmp_path):
    frames, masks = clip()
    store = tmp_path / "store"
    with DaemonProcess(store) as daemon, Client(daemon.address) as client:
        job = open_clip(client, frames, masks)["job"]
        client.request("job.start", {"job": job, "stream": True})
        upload(client, job, frames, masks, range(2))
        wait_for(client, job, lambda s: s["phase"] == "upload" and s["state"] == "training")
    assert daemon.proc.returncode == 0, "SIGTERM: the waiting trainer stopped and the daemon exited cleanly"
    with DaemonProcess(store) as daemon, Client(daemon.address) as client:
        status = client.status(job)
        assert status["state"] in ("queued", "training") and status["missing_frames"] == 17, status
        assert client.upload(job, "frame", 2, frames[2])["stored"] is True, "still streaming after the restart"
        client.delete(job)
