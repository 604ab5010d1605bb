"""The trainer pool without a socket: real training processes started, read, stopped and reaped by calling the
pool the way the daemon's loop does. And the worker-event schema both sides share."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import vinpaint.engine
from vinpaint.engine import make_config
from vinpaint.host_bridge import events, job_settings, worker
from vinpaint.host_bridge.pool import TrainerPool, TrainerState
from vinpaint.host_bridge.store import JobRecord, JobStore
from vinpaint.protocol.content_hash import item_digest

T, H, W = 6, 64, 96


def _queued_job(store: JobStore, steps: int):
    rng = np.random.default_rng(3)
    config = make_config("tiny", "dip-vid", **{"train.max_steps": steps, "propagation.enabled": False})
    record = JobRecord(job="ab" * 16, content_hash="cd" * 32, frames=T, width=W, height=H, channels=3, dtype="u1",
                       mask_dtype="u1", settings={}, config=config.to_dict(), name="pool test")
    job = store.create(record)
    for i in range(T):
        frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        mask = np.zeros((H, W), np.uint8)
        mask[20:40, 30:60] = 255
        for kind, item in (("frame", frame), ("mask", mask)):
            data = memoryview(np.ascontiguousarray(item)).cast("B")
            job.store_item(kind, i, data, item_digest(data))
    job.record.state, job.record.queued_at = "queued", time.time()
    job.save()
    return job


def _run_until(pool: TrainerPool, done, timeout: float = 240.0) -> None:
    """What Daemon.serve does each round, minus the socket."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the training process did not finish in time"
        for t in pool.trainers:
            if t.fd >= 0:
                pool.read(t)
        pool.reap()
        pool.flush_progress()
        time.sleep(0.05)


@pytest.fixture
def store(tmp_path) -> JobStore:
    s = JobStore(tmp_path / "store")
    s.open()
    return s


@pytest.mark.slow
def test_a_queued_job_trains_to_done_without_a_socket(store):
    job = _queued_job(store, steps=2)
    pool = TrainerPool(store, ("cpu",), stop_grace_s=30.0, progress_flush_s=0.0)
    trainer = pool.trainers[0]
    assert trainer.state is TrainerState.IDLE
    pool.schedule()
    assert trainer.state is TrainerState.TRAINING and trainer.job_id == job.id
    assert job.record.state == "training"
    _run_until(pool, lambda: trainer.state is TrainerState.IDLE)
    assert job.record.state == "done", job.record.error
    assert job.results_complete()
    assert job.record.progress.progress == 1.0
    assert np.fromfile(job.result_path(0), np.uint8).size == H * W * 3
    assert "done" in job.log_path.read_text()
    pool.schedule()  # nothing queued: the device stays idle
    assert trainer.state is TrainerState.IDLE


@pytest.mark.slow
def test_cancel_stops_the_process_and_keeps_the_job_cancelled(store):
    job = _queued_job(store, steps=100000)
    pool = TrainerPool(store, ("cpu",), stop_grace_s=60.0, progress_flush_s=0.0)
    trainer = pool.trainers[0]
    pool.schedule()
    _run_until(pool, lambda: job.record.progress.phase == "train")  # the process reports, through its events
    assert job.record.progress.total > 0
    pool.stop(trainer, "cancel")
    job.record.state = "cancelled"  # as the job.cancel handler does
    assert trainer.state is TrainerState.STOPPING
    _run_until(pool, lambda: trainer.state is TrainerState.IDLE)
    assert job.record.state == "cancelled"
    assert not job.results_complete()
    assert "training stopped on request" in job.log_path.read_text()
    assert (job.workdir / "checkpoint.pt").is_file()  # SIGTERM made it checkpoint first


def _job_memory(job) -> tuple[int, int]:
    rec = job.record
    return job_settings.job_memory(vinpaint.engine.InpaintConfig.from_dict(rec.config), rec.frames, rec.height,
                                   rec.width, rec.channels, 1)


def test_a_job_waits_for_a_device_it_fits_on_instead_of_the_first_idle_one(store):
    """job.open accepts a job that fits any device; with GPUs of different sizes it goes to one it fits on."""
    job = _queued_job(store, steps=2)
    host, device = _job_memory(job)
    pool = TrainerPool(store, ("cpu", "cpu"), stop_grace_s=30.0, progress_flush_s=0.0)
    small, big = pool.trainers
    small.memory, big.memory = host + device - 1, host + device
    try:
        pool.schedule()
        assert small.state is TrainerState.IDLE
        assert big.state is TrainerState.TRAINING and big.job_id == job.id
    finally:
        pool.kill(big)
        _run_until(pool, lambda: not any(t.busy for t in pool.trainers))


def test_a_job_that_fits_no_device_is_still_tried_on_the_first_idle_one(store):
    """(Accepted before a restart with other devices, say: the estimate is within a factor of about 2.)"""
    job = _queued_job(store, steps=2)
    host, device = _job_memory(job)
    pool = TrainerPool(store, ("cpu", "cpu"), stop_grace_s=30.0, progress_flush_s=0.0)
    for t in pool.trainers:
        t.memory = (host + device) // 2
    try:
        pool.schedule()
        assert pool.trainers[0].job_id == job.id and pool.trainers[1].state is TrainerState.IDLE
    finally:
        pool.kill(pool.trainers[0])
        _run_until(pool, lambda: not any(t.busy for t in pool.trainers))


def _cpu_allocation_fails(*args, **kwargs):
    import torch

    torch.empty(2**50)  # 4 PiB: torch's CPU allocator fails (a RuntimeError, not torch.OutOfMemoryError)


def _gpu_runs_out(*args, **kwargs):
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 1 has a total capacity "
                                 "of 79.19 GiB of which 1.20 GiB is free.\nIf reserved but unallocated ...")


def _host_runs_out(*args, **kwargs):
    raise MemoryError()


def _bug(*args, **kwargs):
    raise RuntimeError("index 7 is out of bounds")


@pytest.mark.parametrize("engine,kind,says", [
    (_gpu_runs_out, "memory", "ran out of memory on cpu: CUDA out of memory. Tried to allocate 20.00 GiB"),
    (_cpu_allocation_fails, "memory", "ran out of memory on cpu: [enforce fail"),
    (_host_runs_out, "memory", "the training process ran out of memory on cpu"),
    (_bug, "crash", "training crashed: RuntimeError: index 7 is out of bounds"),
])
def test_running_out_of_memory_fails_the_job_as_memory_not_as_a_crash(store, monkeypatch, engine, kind, says):
    """The training process's own error handling (worker.run) around an engine that runs out of memory: a GPU's
    torch.OutOfMemoryError is a RuntimeError, and came back as a crash with a traceback."""
    job = _queued_job(store, steps=2)
    monkeypatch.setattr(vinpaint.engine, "inpaint", engine)  # what worker.run trains with
    read_fd, write_fd = os.pipe()
    sent = worker.Events(write_fd)
    try:
        code = worker.run(job.root, "cpu", sent, os.getppid())
    finally:
        sent.file.close()
    with os.fdopen(read_fd, "rb") as pipe:
        failed = [e for e in map(events.decode, pipe.read().splitlines()) if isinstance(e, events.Failed)]
    assert code == worker.EXIT_FAILED
    assert len(failed) == 1 and failed[0].kind == kind, failed
    assert says in failed[0].message, failed[0].message


def test_worker_events_round_trip_through_one_line_each():
    sent = [events.Progress(phase="train", step=3, total=10, elapsed_s=1.5, eta_s=4.0, losses={"total": 0.25},
                            message="step 3"),
            events.Failed("input", "the mask is empty"), events.Done(), events.Stopped()]
    for event in sent:
        line = events.encode(event)
        assert line.endswith("\n") and line.count("\n") == 1
        assert events.decode(line.encode()) == event


@pytest.mark.parametrize("line", [b"", b"not json", b"[1, 2]", b'{"event": "launch"}', b'{"phase": "train"}',
                                  b'"progress"'])
def test_a_line_that_is_no_event_is_dropped(line):
    assert events.decode(line) is None


def test_hostile_fields_of_an_event_are_cleaned():
    got = events.decode(b'{"event": "progress", "phase": "' + b"p" * 500 + b'", "step": -5, "total": 1e400, '
                        b'"elapsed_s": "soon", "eta_s": NaN, "losses": {"total": Infinity, "recon": 0.5, "x": true, '
                        b'"big": ' + b"9" * 400 + b'}, "message": null}')
    assert isinstance(got, events.Progress)
    assert len(got.phase) == events.MAX_PHASE
    assert (got.step, got.total, got.elapsed_s, got.eta_s) == (0, 0, 0.0, 0.0)
    assert got.losses == {"recon": 0.5}
    assert got.message == ""
    failed = events.decode(b'{"event": "error", "message": "' + b"m" * 5000 + b'"}')
    assert isinstance(failed, events.Failed) and failed.kind == "crash" and len(failed.message) == events.MAX_TEXT


def test_one_ready_job_stops_one_waiting_streaming_trainer_not_every_one():
    """make_room, pass after pass, with two streaming trainers waiting for uploads and one queued job ready to
    train: before (a review, 2026-12-03) each pass stopped another trainer for the same job, since it has no
    trainer of its own until the stopping one exits. The processes are stand-ins: only the choice is under test."""
    from types import SimpleNamespace

    from vinpaint.host_bridge.pool import Trainer

    signals = []
    streaming = {name: SimpleNamespace(id=name, record=SimpleNamespace(state="training"), append_log=lambda m: None)
                 for name in ("s1", "s2")}
    ready = SimpleNamespace(id="r", record=SimpleNamespace(state="queued"))
    pool = TrainerPool.__new__(TrainerPool)
    pool.store = SimpleNamespace(jobs={**streaming, "r": ready})
    pool.trainers = [Trainer(device=f"cuda:{i}", state=TrainerState.TRAINING, job_id=name) for i, name in
                     enumerate(streaming)]
    for t in pool.trainers:
        t.proc = SimpleNamespace(pid=1, send_signal=signals.append)
    pool.queue = lambda: [ready]
    pool.ready = lambda job: job is ready
    pool.may_take = lambda trainer, job: True
    for _ in range(3):
        pool.make_room()
    assert [t.state for t in pool.trainers] == [TrainerState.STOPPING, TrainerState.TRAINING]
    assert pool.trainers[0].yield_to == "r" and len(signals) == 1
