"""Jobs that really train, through a real daemon subprocess: results, concurrency, and the fault cases.

Every clip is tiny (12 frames of 64x64) and uses the engine's `tiny` preset, so each training is a few steps.
"""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from daemon_fixtures import DaemonProcess, pid_alive, real_clip, synthetic_clip, worker_pid
from vinpaint.engine.config import make_config
from vinpaint.host_bridge.client import Client, RequestError, JobFailed

pytestmark = pytest.mark.slow
SEED = 3
QUICK = {"loss.perceptual": 0.0}
"""No perceptual term: spares each training process building a VGG16 that has no weights here anyway."""
TRAINED = {**QUICK, "propagation.enabled": False}
"""For tests about training itself: propagation alone fills these small clips' holes with no training at all."""


def clip_rgb():
    """A crop of a real clip when the shared data is there, else the synthetic one (RGB uint8)."""
    try:
        return real_clip("tennis", t=12, size=64)
    except pytest.skip.Exception:
        frames, masks = synthetic_clip(channels=3)
        return frames, masks


_EMBEDDED: dict[bytes, np.ndarray] = {}


def embedded(frames, masks):
    """The embedded engine's result for the same clip, seed and settings (computed once per clip)."""
    from vinpaint.engine import inpaint, make_config
    from vinpaint.protocol.content_hash import item_digest

    key = item_digest(frames) + item_digest(masks.astype(np.uint8))
    if key not in _EMBEDDED:
        config = make_config("tiny", "dip-vid-flow", **{"train.seed": SEED, **QUICK})
        _EMBEDDED[key] = inpaint(np.ascontiguousarray(frames[..., :3]), masks, config).frames
    return _EMBEDDED[key]


def wait_for(client: Client, job: str, pred, timeout_s: float = 300.0, poll_s: float = 0.1) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.status(job)
        if pred(status):
            return status
        if status["state"] in ("failed",) and not pred(status):
            raise AssertionError(f"job failed: {status.get('error')}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last status {status}")
        time.sleep(poll_s)


def training_at(step: int):
    return lambda s: s["state"] == "training" and s["phase"] == "train" and s["step"] >= step


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    store = tmp_path_factory.mktemp("jobs") / "store"
    with DaemonProcess(store) as d:
        yield d


def test_two_clients_at_once_get_the_embedded_engines_result(shared_daemon):
    frames, masks = clip_rgb()
    results: dict[str, np.ndarray] = {}
    seen: dict[str, list[dict]] = {"a": [], "b": []}
    latencies: list[float] = []
    errors: list[BaseException] = []
    training_done = threading.Event()

    def submit(name: str) -> None:
        try:
            with Client(shared_daemon.address) as c:
                results[name] = c.inpaint(frames, masks, preset="tiny", seed=SEED, overrides=QUICK, poll_s=0.2,
                                          progress=seen[name].append)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    def watch() -> None:
        with Client(shared_daemon.address) as c:
            while not training_done.is_set():
                for job in c.list_jobs():
                    t0 = time.perf_counter()
                    status = c.status(job["job"])
                    if status["state"] == "training":
                        latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)

    threads = [threading.Thread(target=submit, args=(n,)) for n in ("a", "b")]
    watcher = threading.Thread(target=watch)
    for t in threads + [watcher]:
        t.start()
    for t in threads:
        t.join(600)
    training_done.set()
    watcher.join(60)
    assert not errors, errors
    a, b = results["a"], results["b"]
    assert a.shape == frames.shape and a.dtype == frames.dtype
    assert np.array_equal(a, b), "both clients get the same job's frames"
    assert np.array_equal(a[~masks], frames[~masks]), "pixels outside the hole come back untouched"
    assert np.array_equal(a, embedded(frames, masks)), "the daemon's result equals the embedded engine's"
    for name in "ab":
        states = [s["state"] for s in seen[name]]
        assert states[-1] == "done"
        progress = [s["progress"] for s in seen[name]]
        assert progress == sorted(progress) and progress[-1] == 1.0
    train_status = [s for s in seen["a"] + seen["b"] if s["phase"] == "train" and s["state"] == "training"]
    assert train_status and any(s.get("eta_s") is not None for s in train_status)
    assert any(s["losses"] for s in train_status)
    with Client(shared_daemon.address) as c:
        assert len(c.list_jobs()) == 1, "the same shot from two clients is one job"
    if latencies:
        print(f"\nstatus round trip while training: median {1000 * np.median(latencies):.2f} ms, "
              f"max {1000 * max(latencies):.2f} ms over {len(latencies)} requests")


def test_resending_a_finished_shot_finds_it_without_uploading_or_training(shared_daemon):
    frames, masks = clip_rgb()
    with Client(shared_daemon.address) as c:
        uploads: list[int] = []
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=QUICK,
                       on_upload=lambda n, total: uploads.append(n))
        status = c.status(job)
        if status["state"] != "done":
            pytest.skip("needs the previous test's finished job")
        assert uploads == [] and status["state"] == "done"
        assert np.array_equal(c.results(job), embedded(frames, masks))
        terms, steps, rows = c.history(job)
        assert terms[:2] == ["total", "recon"] and rows.shape == (steps, len(terms) + 1) and steps == status["step"]
        assert np.array_equal(rows[:, 0], np.arange(1, steps + 1)), "one row per step, in order"
        assert np.all(rows[:, 1] > 0) and np.all(rows[:, terms.index("perceptual") + 1] == 0), "switched off: 0"
        terms, steps2, binned = c.history(job, points=2)
        assert steps2 == steps and binned.shape == (2, len(terms) + 1) and binned[-1, 0] == steps
        kept = shared_daemon.store / "jobs" / job / "results" / "history.f4"
        kept.rename(kept.with_suffix(".away"))  # as a job finished by a daemon that kept no history
        try:
            with pytest.raises(RequestError) as refused:
                c.history(job)
            assert refused.value.code == "not_ready" and "kept no loss history" in str(refused.value)
        finally:
            kept.with_suffix(".away").rename(kept)


def test_submit_command_writes_outputs_like_inpaint(shared_daemon, tmp_path):
    import cv2

    frames, masks = clip_rgb()
    src, msk = tmp_path / "frames", tmp_path / "masks"
    src.mkdir()
    msk.mkdir()
    for i in range(len(frames)):
        cv2.imwrite(str(src / f"{i:05d}.png"), frames[i][..., ::-1])
        cv2.imwrite(str(msk / f"{i:05d}.png"), masks[i].astype(np.uint8) * 255)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "submit", str(src), "--mask", str(msk), "-o", str(out),
                           "--wait", "--server", shared_daemon.address, "--preset", "tiny", "--seed", str(SEED),
                           "--set", "loss.perceptual=0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    written = sorted(out.glob("*.png"))
    assert len(written) == len(frames)
    got = np.stack([cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1] for p in written])
    assert np.array_equal(got, embedded(frames, masks))
    config = json.loads((tmp_path / "out.config.json").read_text())
    assert config["preset"] == "tiny" and config["train"]["seed"] == SEED and config["loss"]["perceptual"] == 0
    assert config["train"]["fit_seconds"] == 0 and config["train"]["max_steps"] == make_config("tiny").train.max_steps
    assert (tmp_path / "out.before_after.png").is_file()
    assert (tmp_path / "out.loss.png").stat().st_size > 1000 and "loss curve" in proc.stdout


def test_submit_wait_checks_that_its_outputs_can_be_written_before_contacting_the_daemon(tmp_path):
    """Before: `submit --wait -o afile/x.mkv` uploaded and trained the job, then said "File exists: afile". The
    check comes before the daemon is asked anything (here no daemon listens, and the message is about the output)."""
    import cv2

    frames, masks = synthetic_clip(channels=3)
    for name, data in (("f", frames), ("m", masks.astype(np.uint8)[..., None].repeat(3, -1) * 255)):
        (tmp_path / name).mkdir()
        for i in range(len(data)):
            cv2.imwrite(str(tmp_path / name / f"{i:05d}.png"), data[i])
    (tmp_path / "afile").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "submit", str(tmp_path / "f"), "--mask",
                           str(tmp_path / "m"), "-o", str(tmp_path / "afile" / "x.mkv"), "--wait", "--server",
                           "tcp://127.0.0.1:9", "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"vinpaint: error: cannot write {tmp_path / 'afile' / 'x.mkv'}: {tmp_path / 'afile'} is a file, not a " \
           "folder." in proc.stderr, proc.stderr
    assert (tmp_path / "afile").read_text() == "mine"


def test_submit_command_reports_an_absent_daemon_without_a_traceback(tmp_path):
    frames, masks = synthetic_clip(channels=3)
    import cv2

    for name, data in (("f", frames), ("m", masks.astype(np.uint8)[..., None].repeat(3, -1) * 255)):
        (tmp_path / name).mkdir()
        for i in range(len(data)):
            cv2.imwrite(str(tmp_path / name / f"{i:05d}.png"), data[i])
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "submit", str(tmp_path / "f"), "--mask",
                           str(tmp_path / "m"), "-o", str(tmp_path / "o"), "--server", "tcp://127.0.0.1:9",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    # a refused connection is told after one timeout of patience (10 s), not after three
    assert proc.returncode == 2 and "no vinpaint daemon at tcp://127.0.0.1:9: the connection was refused" in \
        proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 25


def test_only_a_refused_connection_counts_as_nothing_listening(tmp_path):
    from vinpaint.host_bridge.client import nothing_listens

    import socket

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        port = listening.getsockname()[1]
        assert nothing_listens(f"tcp://127.0.0.1:{port}", 0.5) is None
    assert nothing_listens(f"tcp://127.0.0.1:{port}", 0.5) == "the connection was refused"
    assert nothing_listens(f"ipc://{tmp_path}/absent.sock", 0.5).endswith("does not exist")
    assert nothing_listens("ipc://@an-abstract-socket", 0.5) == ""  # no file to look for: unclear, waits as before
    # a name the resolver says does not exist is said at once (before: 30 s, then "no reply"); a resolver that
    # cannot answer now (no network: EAI_AGAIN) is unclear, and waits as before
    try:
        socket.getaddrinfo("no-such-host.invalid", 5581)
        unknown = False
    except socket.gaierror as exc:
        unknown = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
    said = nothing_listens("tcp://no-such-host.invalid:5581", 0.5)
    if unknown:
        assert said.startswith("the host name 'no-such-host.invalid' does not resolve ("), said
    else:
        assert said == "", said


def test_a_daemon_that_never_answers_is_reported_after_the_timeouts(tmp_path):
    """Something accepts the connection but never answers (a hung daemon, another service): the retries run out
    and the message says so."""
    from vinpaint.host_bridge.client import Client, DaemonUnavailable
    from vinpaint.host_bridge.daemon_config import ClientConfig

    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with Client(config=ClientConfig(address=address, timeout_s=0.5, retries=1)) as client:
            with pytest.raises(DaemonUnavailable, match="no reply from the vinpaint daemon .* after 2 tries"):
                client.hello()


def test_cancel_sigterm_and_kill9_resume_from_checkpoints_and_deliver_every_frame(tmp_path):
    """The fault sequence on one job: cancel -> start; SIGTERM -> restart; kill -9 of the daemon alone (its trainer
    checkpoints and exits by itself) -> restart; kill -9 of daemon and trainer together -> restart -> done."""
    frames, masks = synthetic_clip(channels=4, dtype=np.uint16, seed=7)
    store = tmp_path / "store"
    settings = dict(preset="tiny", seed=SEED, overrides={"train.max_steps": 12, **TRAINED})
    ckpt = store / "jobs"

    d = DaemonProcess(store).start()
    try:
        with Client(d.address) as c:
            job = c.submit(frames, masks, **settings)
            ckpt = store / "jobs" / job / "work" / "checkpoint.pt"
            wait_for(c, job, training_at(2))
            assert c.cancel(job)["state"] == "cancelled"
            _wait_dead(worker_pid(store, job))
            assert c.status(job)["state"] == "cancelled" and ckpt.is_file()
            assert c.start(job)["state"] in ("queued", "training")
            first = wait_for(c, job, training_at(1))
            assert first["step"] >= 2, "resumed from the cancel's checkpoint, not from step 0"
            wait_for(c, job, training_at(4))
        assert d.terminate(180) == 0, d.log()  # SIGTERM: checkpoint, then a clean exit
        assert not pid_alive(worker_pid(store, job))
        record = json.loads((store / "jobs" / job / "job.json").read_text())
        assert record["state"] == "queued" and ckpt.is_file()
    finally:
        d.kill()

    for phase, (at_least, kill_trainer) in enumerate(((4, False), (6, True))):
        d = DaemonProcess(store).start()
        try:
            with Client(d.address) as c:
                first = wait_for(c, job, training_at(1))
                assert first["step"] >= at_least, f"phase {phase}: resumed from the checkpoint"
                wait_for(c, job, training_at(at_least + 2))
            pid = worker_pid(store, job)
            d.kill()  # kill -9 the daemon
            if kill_trainer:
                os.kill(pid, signal.SIGKILL)  # ... and its trainer: nothing gets to clean up
            _wait_dead(pid)  # an orphaned trainer checkpoints and exits on its own (PR_SET_PDEATHSIG)
        finally:
            d.kill()

    d = DaemonProcess(store).start()
    try:
        with Client(d.address) as c:
            first = wait_for(c, job, lambda s: s["state"] in ("training", "done") and s["step"] >= 1)
            assert first["state"] == "done" or first["step"] >= 7, "resumed after kill -9 from a checkpoint"
            c.wait(job, poll_s=0.2, timeout_s=600)
            out = c.results(job)
    finally:
        d.terminate(120)
    assert out.shape == frames.shape and out.dtype == np.uint16
    assert np.array_equal(out[..., 3], frames[..., 3]), "alpha passes through untouched"
    assert np.array_equal(out[~masks], frames[~masks])
    assert not np.array_equal(out[masks][:, :3], frames[masks][:, :3]), "the hole was filled"


def _wait_dead(pid: int | None, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pid is not None and pid_alive(pid):
        assert time.monotonic() < deadline, f"training process {pid} still alive"
        time.sleep(0.1)


def test_crashed_training_fails_the_job_with_its_reason_and_the_daemon_keeps_serving(tmp_path):
    frames, masks = synthetic_clip(channels=3, seed=9)
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides={"train.max_steps": 40, **TRAINED})
        wait_for(c, job, training_at(1))
        os.kill(worker_pid(d.store, job), signal.SIGKILL)  # what the kernel's OOM killer does
        status = wait_for(c, job, lambda s: s["state"] == "failed", poll_s=0.1)
        assert "SIGKILL" in status["error"]
        with pytest.raises(JobFailed, match="SIGKILL"):
            c.wait(job)
        with pytest.raises(RequestError) as info:
            c.fetch(job, 0)
        assert info.value.code == "not_ready" and "SIGKILL" in str(info.value)
        assert c.hello()["protocol"] == 1
        assert c.start(job)["state"] in ("queued", "training"), "a failed job can be started again"
        c.delete(job)
        with pytest.raises(RequestError):
            c.status(job)


def test_a_job_deleted_while_it_trains_leaves_nothing_and_opens_again_empty(shared_daemon):
    """Before: job.delete only asked the training process to stop, which then wrote its checkpoint into a new
    jobs/<id>/ (a stray folder every start warned about), and the same clip opened again at once was marked done
    by the old process's exit, with nothing uploaded, refusing every upload after."""
    frames, masks = synthetic_clip(channels=3, seed=31)
    store = shared_daemon.store
    with Client(shared_daemon.address) as c:
        opened = []
        open_job = c.open_job
        c.open_job = lambda **body: opened.append(body) or open_job(**body)  # kept to open the same job again
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides={"train.max_steps": 400, **TRAINED})
        wait_for(c, job, training_at(1))
        pid = worker_pid(store, job)
        assert c.delete(job)["deleted"] is True
        assert pid is not None and not pid_alive(pid), "the process has exited when job.delete answers"
        assert not (store / "jobs" / job).exists() and list((store / "trash").iterdir()) == []
        again = open_job(**opened[0])
        assert (again["job"], again["created"], again["state"], again["have_frames"]) == (job, True, "uploading", [])
        time.sleep(1.0)
        status = c.status(job)
        assert (status["state"], status["missing_frames"], status.get("frames_done", 0)) == \
            ("uploading", len(frames), 0), status
        assert sorted(p.name for p in (store / "jobs" / job).rglob("*") if p.is_file()) == ["job.json", "log"]
        assert c.upload(job, "frame", 0, frames[0])["stored"] is True
        c.delete(job)


def test_disk_full_refuses_uploads_and_fails_training_with_the_reason(tmp_path):
    limit = 1 << 20  # RLIMIT_FSIZE: writes past 1 MiB fail with EFBIG, as a full disk fails with ENOSPC

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with DaemonProcess(tmp_path / "store", preexec_fn=small_files) as d, Client(d.address) as c:
        big, big_masks = synthetic_clip(t=12, h=300, w=300, channels=4, dtype=np.float32)  # 1.4 MB per frame
        with pytest.raises(RequestError) as info:
            c.submit(big, big_masks, preset="tiny")
        assert info.value.code == "storage_full"
        assert c.hello()["protocol"] == 1
        frames, masks = synthetic_clip(channels=3, seed=4)
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=QUICK)
        status = wait_for(c, job, lambda s: s["state"] in ("failed", "done"), poll_s=0.2)
        assert status["state"] == "failed" and "space" in status["error"], status
        assert c.hello()["protocol"] == 1 and d.proc.poll() is None


def test_a_clip_the_engine_refuses_fails_with_the_engines_reason(tmp_path):
    frames, masks = synthetic_clip(channels=3, seed=5)
    masks[:] = False  # nothing to remove: only the engine can tell (the daemon never reads the pixels)
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        with pytest.raises(JobFailed, match="mask is empty"):
            c.inpaint(frames, masks, preset="tiny", overrides=QUICK, poll_s=0.2, timeout_s=300)
        assert c.hello()["protocol"] == 1


@pytest.mark.parametrize("steps,points,expect", [
    (0, 5, [[0, 0]]),
    (3, 5, [[1, 10], [2, 20], [3, 30]]),
    (5, 2, [[2, 15], [5, 40]]),
    (6, 3, [[2, 15], [4, 35], [6, 55]]),
])
def test_a_long_history_comes_back_as_means_of_equal_runs(steps, points, expect):
    from vinpaint.host_bridge.store import summarise_history

    rows = np.array([[i, 10 * i] for i in range(1, steps + 1)], np.float32).reshape(-1, 2)
    assert summarise_history(rows, points).tolist() == expect


def test_one_training_at_a_time_and_a_queued_job_can_be_cancelled(shared_daemon):
    first, first_masks = synthetic_clip(channels=3, seed=21)
    second, second_masks = synthetic_clip(channels=3, seed=22)
    with Client(shared_daemon.address) as c:
        a = c.submit(first, first_masks, preset="tiny", overrides={"train.max_steps": 400, **TRAINED})
        wait_for(c, a, training_at(1))
        b = c.submit(second, second_masks, preset="tiny", overrides=TRAINED)
        status = c.status(b)
        assert status["state"] == "queued" and status["position"] == 0, "one device: the second job waits"
        # the queued job's sentence says how far the job ahead has got, and moves with it
        ahead = re.search(r"; training now: cpu at (\w+) (\d+)/(\d+)$", status["message"])
        assert ahead, status["message"]
        later = wait_for(c, b, lambda s: s["message"] != status["message"], poll_s=0.1)
        assert later["state"] == "queued" and "; training now: cpu at " in later["message"], later
        assert c.status(a)["state"] == "training"
        assert c.cancel(b)["state"] == "cancelled"
        assert c.status(a)["state"] == "training"
        with pytest.raises(RequestError) as refused:
            c.history(a)
        assert refused.value.code == "not_ready" and "training, not done" in str(refused.value)
        assert c.cancel(a)["state"] == "cancelled"
        time.sleep(1.0)
        assert c.status(b)["state"] == "cancelled", "a cancelled job is not picked up by a free device"
        for job in (a, b):
            c.delete(job)


def test_a_new_feather_or_a_larger_budget_takes_over_the_finished_jobs_uploads_and_training(tmp_path):
    """The node's Feather changed (a new job id): the daemon already holds the clip and its training, so nothing is
    uploaded and nothing trains; the frames are those of an engine run with that feather. A larger step budget
    trains on from the finished job's checkpoint instead of from step 1."""
    from vinpaint.engine import inpaint

    frames, masks = clip_rgb()
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        first = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=TRAINED)
        done = c.wait(first, poll_s=0.2)
        trained = done["step"]
        assert done["state"] == "done" and trained > 0
        uploads: list[int] = []
        feathered = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=TRAINED, mask_feather=3,
                             on_upload=lambda n, total: uploads.append(n))
        seen: list[dict] = []
        c.wait(feathered, progress=seen.append, poll_s=0.05)
        assert feathered != first and uploads == []  # before: every frame and mask sent again ...
        assert not [s for s in seen if s["phase"] == "train"]  # ... and trained from step 1
        log = (d.store / "jobs" / feathered / "log").read_text()
        assert f"the same clip and training as job {first}" in log
        config = make_config("tiny", "dip-vid-flow", **{"train.seed": SEED, **TRAINED, "mask.feather": 3})
        fresh = inpaint(np.ascontiguousarray(frames[..., :3]), masks, config).frames
        got = c.results(feathered)
        assert np.array_equal(got, fresh) and not np.array_equal(got, c.results(first))
        longer = c.submit(frames, masks, preset="tiny", seed=SEED,
                          overrides={**TRAINED, "train.max_steps": trained + 3})
        steps: list[int] = []
        c.wait(longer, progress=lambda s: steps.append(s["step"]) if s["phase"] == "train" else None, poll_s=0.05)
        terms, total, rows = c.history(longer)
        _, _, before = c.history(first)
        assert total == trained + 3 and np.array_equal(rows[:trained], before)  # continued, not retrained
        assert not steps or min(steps) > trained
        for job in (first, feathered, longer):  # as if each had been made by another version: not this run
            (d.store / "jobs" / job / "work" / "run.json").write_text('{"fingerprint": "another run"}\n')
        seen.clear()
        other = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=TRAINED, mask_feather=5)
        assert c.wait(other, progress=seen.append, poll_s=0.05)["state"] == "done"  # not failed as another run
        assert any("starting from the beginning" in s.get("message", "") for s in seen) or \
            [s for s in seen if s["phase"] == "train"]
        config = make_config("tiny", "dip-vid-flow", **{"train.seed": SEED, **TRAINED, "mask.feather": 5})
        assert np.array_equal(c.results(other), inpaint(np.ascontiguousarray(frames[..., :3]), masks, config).frames)
