"""A killed daemon's training process, and a streaming job that waits for its uploads, against a real daemon on
loopback (real msgpack over real ZeroMQ, real training processes): neither may keep a job from its device or
outlive its job's deletion.

A training process has its own session, so a kill -9 of the daemon does not reach it; it stops at its next look at
the stop flag, which a long flow phase never takes. Here it is held with SIGSTOP, which stands for such a phase
for as long as the test needs: it is alive, holds the job's worker.lock and does not react to SIGTERM.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from daemon_fixtures import DaemonProcess, pid_alive, synthetic_clip, worker_pid
from vinpaint.host_bridge.client import Client
from vinpaint.protocol.content_hash import clip_hash, item_digest

pytestmark = pytest.mark.slow
TRAINED = {"loss.perceptual": 0.0, "propagation.enabled": False}
"""Propagation alone fills these small clips' holes with no training at all."""


def clip(seed: int, t: int = 6):
    frames, masks = synthetic_clip(t=t, h=48, w=56, channels=3, seed=seed)
    return frames, masks.astype(bool)


def wait_for(client: Client, job: str, done, timeout_s: float, failed_ok: bool = False) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.status(job)
        if done(status):
            return status
        assert failed_ok or status["state"] != "failed", status.get("error")
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def held_orphan(store: Path, steps: int) -> tuple[str, int, tuple]:
    """A job trained by a daemon killed with kill -9 while its training process, held with SIGSTOP, still holds
    the job's worker.lock; returns the job, that process's pid and the clip."""
    frames, masks = clip(seed=21)
    daemon = DaemonProcess(store).start()
    try:
        with Client(daemon.address) as client:
            job = client.submit(frames, masks, preset="tiny", seed=1, overrides={**TRAINED, "train.max_steps": steps})
            # a phase is reported only once the process holds worker.lock
            wait_for(client, job, lambda s: s["state"] == "training" and s["phase"] != "", 180)
        pid = worker_pid(store, job)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
    finally:
        daemon.kill()
    assert pid_alive(pid), "the training process outlived the daemon's kill -9 (its own session)"
    return job, pid, (frames, masks)


def end(pid: int) -> None:
    """The test's own held process, if a failed check left it behind."""
    if pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def test_deleting_a_job_kills_the_killed_daemons_training_process_first(tmp_path):
    """Before (2026-12-03): the restarted daemon did not know the process (no child of its own), so job.delete
    answered `deleted` while it lived; it then wrote its checkpoint, flow cache and result frames into jobs/<id>/,
    and into the same clip opened again, which served them with nothing uploaded."""
    store = tmp_path / "store"
    job, pid, _ = held_orphan(store, steps=100000)
    try:
        with DaemonProcess(store) as daemon, Client(daemon.address) as client:
            assert client.status(job)["state"] == "queued"
            assert client.delete(job)["deleted"] is True
            assert not pid_alive(pid), "killed and waited for before the reply"
            assert not (store / "jobs" / job).exists()
            log = daemon.log()
        assert f"training process {pid} still runs" in log
    finally:
        end(pid)


def test_a_restarted_daemon_waits_for_the_killed_daemons_training_process_then_resumes_the_job(tmp_path):
    """The process is taken into its device's slot as stopping: asked again to stop (SIGTERM, and SIGCONT), and
    the job trains again once it has exited. Before (2026-12-03): a second training process of the job started at
    once, waited LOCK_WAIT_S (120 s) for the lock the first one held, and failed the job."""
    store = tmp_path / "store"
    job, pid, (frames, masks) = held_orphan(store, steps=40)
    try:
        with DaemonProcess(store) as daemon, Client(daemon.address) as client:
            waiting = client.status(job)
            done = wait_for(client, job, lambda s: s["state"] == "done", 100)
            assert waiting["state"] == "queued" and f"(pid {pid})" in waiting["message"], waiting
            assert done["frames_done"] == frames.shape[0]
            assert not pid_alive(pid)
            assert client.results(job).shape == frames.shape
        log = (store / "jobs" / job / "log").read_text()
        assert f"the stopped daemon's training process (pid {pid}) has exited" in log
        assert log.index("has exited") < log.rindex("training started on"), "one process at a time"
    finally:
        end(pid)


def test_a_streaming_job_waiting_for_its_uploads_gives_the_device_to_a_complete_job(tmp_path):
    """A one-window job started with `stream` and nothing uploaded takes the only device while no other job waits,
    gives it back when a complete job is queued, and trains once its clip is uploaded. Before (2026-12-03): it
    held the device for --stream-wait (600 s by default) while complete jobs waited."""
    streamed, streamed_masks = clip(seed=31)
    t, h, w, c = streamed.shape
    wire_masks = streamed_masks.astype(np.uint8)[..., None] * np.uint8(255)
    with DaemonProcess(tmp_path / "store", "--stream-wait", "300") as daemon, Client(daemon.address) as client:
        content = clip_hash(t, h, w, c, "u1", "u1", [item_digest(f) for f in streamed],
                            [item_digest(m) for m in wire_masks], {})
        opened = client.open_job(frames=t, width=w, height=h, channels=c, dtype="u1", mask_dtype="u1",
                                 content_hash=content, settings={"preset": "tiny", "seed": 1, "overrides": {
                                     **TRAINED, "train.max_steps": 3}})
        waiting = opened["job"]
        assert opened["windows"] == 1
        client.request("job.start", {"job": waiting, "stream": True})
        wait_for(client, waiting, lambda s: s["state"] == "training" and s["phase"] == "upload", 180)

        frames, masks = clip(seed=32)
        started = time.monotonic()
        complete = client.submit(frames, masks, preset="tiny", seed=1, overrides={**TRAINED, "train.max_steps": 3})
        wait_for(client, complete, lambda s: s["state"] == "done", 150)
        assert time.monotonic() - started < 150, "it did not wait for the streaming job's --stream-wait"
        status = client.status(waiting)
        assert status["state"] in ("queued", "training") and status["missing_frames"] == t, status

        for i in range(t):  # the rest of the streaming job's clip: it trains as documented
            client.upload(waiting, "frame", i, streamed[i], item_digest(streamed[i]))
            client.upload(waiting, "mask", i, wire_masks[i], item_digest(wire_masks[i]))
        wait_for(client, waiting, lambda s: s["state"] == "done", 240)
        assert client.results(waiting).shape == streamed.shape
        log = (daemon.store / "jobs" / waiting / "log").read_text()
    assert f"gives cpu to job {complete}" in log


def test_a_process_is_a_jobs_trainer_only_for_that_jobs_own_folder(tmp_path):
    """Before, any worker command line whose arguments had a folder named like the job id passed: the trainer of
    the same clip and settings in another store (the same job id) would have been adopted and stopped."""
    import subprocess
    import sys

    from vinpaint.host_bridge.pool import _lock_holders, _trainer_args

    job_id = "0" * 32
    ours, theirs = tmp_path / "a" / "jobs" / job_id, tmp_path / "b" / "jobs" / job_id
    for folder in (ours, theirs):
        folder.mkdir(parents=True)
    (ours / "worker.lock").touch()
    holder = ("import fcntl, os, sys, time; fd = os.open('worker.lock', os.O_RDWR); "
              "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB) if sys.argv[3] == 'lock' else None; "
              "print('held', flush=True); time.sleep(60)")
    procs = {name: subprocess.Popen([sys.executable, "-c", holder, "vinpaint.host_bridge.worker", str(arg), lock],
                                    cwd=ours, stdout=subprocess.PIPE, text=True)
             for name, arg, lock in (("absolute", ours, "lock"), ("relative", ".", "-"),
                                     ("other_store", theirs, "-"))}
    try:
        for proc in procs.values():
            assert proc.stdout.readline().strip() == "held"
        assert _trainer_args(procs["absolute"].pid, ours) is not None
        assert _trainer_args(procs["relative"].pid, ours) is not None, "a relative folder is its working directory's"
        assert _trainer_args(procs["other_store"].pid, ours) is None, "a job of the same id in another store"
        fd = os.open(ours / "worker.lock", os.O_RDWR)
        try:
            holders = _lock_holders(fd)
        finally:
            os.close(fd)
        assert procs["absolute"].pid in holders, holders  # matched by device and inode
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
