"""Long shots through the daemon: a job of more frames than shot.window trains window by window (engine/shot.py),
its memory is counted for one window, and its frames come back equal to the engine's own inpaint_shot."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from daemon_fixtures import DaemonProcess, pid_alive, synthetic_clip, worker_pid
from vinpaint.engine import make_config
from vinpaint.engine.devices import device_memory
from vinpaint.host_bridge import job_settings
from vinpaint.host_bridge.daemon_config import LimitsConfig
from vinpaint.host_bridge.handlers import Requests
from vinpaint.host_bridge.pool import TrainerPool
from vinpaint.host_bridge.store import JobStore
from vinpaint.protocol import codec

SEED = 5
SHOT = {"loss.perceptual": 0.0, "propagation.enabled": False, "shot.window": 11, "shot.overlap": 3}
"""Windows of 11 frames (the least tiny's batches of 3 at interval 5 need); 27 frames make 3 windows."""


def test_a_long_shots_memory_is_one_windows():
    config = make_config("tiny", "dip-vid-flow", **{"shot.window": 40})
    whole = make_config("tiny", "dip-vid-flow", **{"shot.window": 4000})
    args = (720, 1280, 4, 1)
    assert job_settings.job_memory(config, 4000, *args) == job_settings.job_memory(config, 40, *args)
    assert job_settings.job_memory(whole, 4000, *args)[0] > 50 * job_settings.job_memory(config, 4000, *args)[0]
    assert job_settings.job_memory(config, 30, *args) == job_settings.job_memory(whole, 30, *args), \
        "a clip within one window counts all its frames, as before"


def test_the_device_memory_counts_every_frame_of_one_forward_pass():
    """train.batches_per_step batches of train.batch_size frames go through the network in one forward pass: their
    activations are held together, as one batch of all their frames would be (no more than the schedule has)."""
    args = (720, 1280, 4, 1)

    def memory(frames, **settings):
        return job_settings.job_memory(make_config("tiny", "dip-vid", **settings), frames, *args)

    grouped = memory(40, **{"train.batch_size": 3, "train.batches_per_step": 4})
    assert grouped == memory(40, **{"train.batch_size": 12, "train.batches_per_step": 1})
    assert grouped[1] > memory(40, **{"train.batch_size": 3, "train.batches_per_step": 1})[1]
    # a clip of 4 frames holds 2 batches of 3 per epoch: a group of 64 is a group of 2
    assert memory(4, **{"train.batch_size": 3, "train.batches_per_step": 64}) == \
        memory(4, **{"train.batch_size": 3, "train.batches_per_step": 2})


def _open(requests: Requests, frames: int, window: int):
    body = {"frames": frames, "width": 64, "height": 64, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
            "content_hash": f"{window:064x}",
            "settings": {"preset": "tiny", "variant": "dip-vid-flow", "seed": 0,
                         "overrides": {"shot.window": window, "shot.overlap": 4}}}
    return codec.decode_reply(requests.handle(codec.encode_request("job.open", f"o-{window}", body, ())))


def test_the_daemon_accepts_a_long_shot_that_fits_window_by_window(tmp_path):
    store = JobStore(tmp_path / "store")
    store.open()
    pool = TrainerPool(store, ("cpu",))
    requests = Requests(store, pool, LimitsConfig(reserve_bytes=0), [].append)
    frames = 3000
    window = sum(job_settings.job_memory(make_config("tiny", "dip-vid-flow", **{"shot.window": 50}), 50,
                                         64, 64, 3, 1))
    pool.trainers[0].memory = 2 * window  # room for a window, far from room for the whole shot
    assert device_memory("cpu") > 0
    refused = _open(requests, frames, window=frames)  # one window of the whole shot: the old estimate
    assert refused.status == "error" and refused.error["code"] == "too_large", refused
    accepted = _open(requests, frames, window=50)
    assert accepted.status == "ok" and accepted.body["created"], accepted


@pytest.mark.parametrize("device,message", [("cuda:7", r"^device cuda:7 is not available"),
                                            ("tpu", r"^device 'tpu' is not a device name")])
def test_the_librarys_inpaint_checks_its_device_in_one_sentence(device, message):
    """The CLI and the daemon checked the device; a Python caller of inpaint() got CUDA's 'invalid device
    ordinal' traceback for a GPU the machine does not have."""
    from vinpaint.engine import inpaint, make_config
    from vinpaint.errors import InputError

    holes = np.zeros((3, 32, 32), bool)
    holes[:, 10:20, 10:20] = True
    with pytest.raises(InputError, match=message):
        inpaint(np.zeros((3, 32, 32, 3), np.uint8), holes, make_config("tiny"), device=device)


def test_a_gpu_that_cannot_run_is_a_sentence_and_leaves_no_cuda_in_the_daemon():
    """The daemon asks each GPU's memory at start, in a child process that runs one kernel there: a GPU CUDA
    cannot run on (here one that is not there, or a torch without CUDA) is an InputError naming the device and
    the failure's exception line (Daemon.start makes it a DaemonStartError), and CUDA is never started in the daemon's
    own process (its context would hold GPU memory for the daemon's whole life; not checkable without a GPU)."""
    from vinpaint.errors import InputError

    with pytest.raises(InputError, match=r"^device cuda:99 cannot be used: CUDA failed to start \((.+)\)\.$") as err:
        device_memory("cuda:99")
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_a_gpu_without_kernels_for_this_build_is_a_sentence_before_the_cli_reads_anything(monkeypatch):
    """The CLI runs one kernel on the GPU it will train on (usable_device): a torch build without code for that
    GPU fails only at its first kernel, which would otherwise be a traceback mid-run."""
    import torch

    from vinpaint.engine import devices
    from vinpaint.errors import InputError

    def no_kernel(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device\n"
                           "CUDA kernel errors might be asynchronously reported")

    monkeypatch.setattr(devices, "check_device", lambda name: "cuda:0")  # as on a machine with a GPU
    monkeypatch.setattr(torch, "ones", no_kernel)
    with pytest.raises(InputError, match=r"^device cuda:0 cannot be used: CUDA failed to run \(CUDA error: no kernel "
                                         r"image is available for execution on the device\)\.$"):
        devices.usable_device("cuda")
    monkeypatch.undo()
    assert devices.usable_device("cpu") == "cpu"


_EXPECTED: dict[str, tuple] = {}


def long_clip():
    return synthetic_clip(t=27, h=48, w=48, channels=4, seed=2)


def in_process(tmp_path_factory):
    """inpaint_shot's frames and result for long_clip() in this process (computed once)."""
    from vinpaint.engine.shot import ArraySource, inpaint_shot

    if "shot" not in _EXPECTED:
        frames, masks = long_clip()
        config = make_config("tiny", "dip-vid-flow", **{"train.seed": SEED, **SHOT})
        expected = np.zeros(frames.shape[:3] + (3,), frames.dtype)
        order: list[int] = []

        def emit(index: int, frame: np.ndarray, matte: np.ndarray) -> None:
            order.append(index)
            expected[index] = frame

        shot = inpaint_shot(ArraySource(np.ascontiguousarray(frames[..., :3]), masks), config,
                            tmp_path_factory.mktemp("shot") / "work", emit)
        assert shot.windows == 3 and order == list(range(27))
        _EXPECTED["shot"] = (expected, shot)
    return _EXPECTED["shot"]


@pytest.mark.slow
def test_a_long_shot_over_zeromq_equals_inpaint_shot_in_process(tmp_path, tmp_path_factory):
    from vinpaint.host_bridge.client import Client

    frames, masks = long_clip()
    expected, shot = in_process(tmp_path_factory)
    seen: list[dict] = []
    with DaemonProcess(tmp_path / "store") as daemon, Client(daemon.address) as client:
        got = client.inpaint(frames, masks, preset="tiny", seed=SEED, overrides=SHOT, poll_s=0.2,
                             progress=seen.append)
        job = client.list_jobs()[0]["job"]
        terms, steps, rows = client.history(job)
    assert got.shape == frames.shape and got.dtype == frames.dtype
    assert np.array_equal(got[..., 3], frames[..., 3]), "the source alpha comes back untouched"
    assert np.array_equal(got[..., :3][~masks], frames[..., :3][~masks]), "outside the hole: bit-exact source"
    assert np.array_equal(got[..., :3], expected), "the daemon's shot equals inpaint_shot's in-process"
    assert steps == shot.steps == rows.shape[0] and np.array_equal(rows[:, 1:], shot.history[:, 1:len(terms) + 1])
    windows = sorted({s["phase"] for s in seen})
    assert "window" in windows, windows
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    work = tmp_path / "store" / "jobs" / job / "work"
    assert sorted(p.name for p in work.glob("window_*")) == ["window_0000", "window_0001", "window_0002"]


@pytest.mark.slow
def test_a_daemon_with_ray_trains_a_long_shots_windows_there(tmp_path, tmp_path_factory, monkeypatch):
    ray_util = pytest.importorskip("ray.util")
    from vinpaint.host_bridge.client import Client

    frames, masks = long_clip()
    expected, shot = in_process(tmp_path_factory)
    host = ray_util.get_node_ip_address()  # where `ray start` listens (not always loopback)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_bin = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a private test cluster; the daemon inherits this
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    ray_dir = tempfile.mkdtemp(prefix="vpray")  # short: Ray's socket paths inside must fit AF_UNIX's 107 bytes
    head = subprocess.Popen([*ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={ray_dir}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                socket.create_connection((host, port), timeout=2).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("cannot start a Ray head here")
                time.sleep(1)
        with DaemonProcess(tmp_path / "store", "--ray", f"{host}:{port}") as daemon, \
                Client(daemon.address) as client:
            got = client.inpaint(frames, masks, preset="tiny", seed=SEED, overrides=SHOT, poll_s=0.5)
            job = client.list_jobs()[0]["job"]
    finally:
        head.terminate()  # --block: the head takes its own Ray processes down with it, in time
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # its own session: only the Ray this test started
        except ProcessLookupError:
            pass
        shutil.rmtree(ray_dir, ignore_errors=True)
    job_dir = tmp_path / "store" / "jobs" / job
    assert np.array_equal(got[..., 3], frames[..., 3])
    assert np.array_equal(got[..., :3][~masks], frames[..., :3][~masks]), "outside the hole: bit-exact source"
    assert np.array_equal(got[..., :3], expected), "Ray's windows give inpaint_shot's frames in-process"
    attempts = sorted((job_dir / "work").glob("window_*/attempts.log"))
    trainer = (job_dir / "worker.pid").read_text().strip()
    assert len(attempts) == 3 and all(a.read_text().split()[-1] != trainer for a in attempts), \
        "each window ran in a Ray worker, not in the job's training process"


@pytest.mark.slow
def test_a_cancelled_long_shot_resumes_window_by_window_with_its_first_frames_already_written(tmp_path,
                                                                                             tmp_path_factory):
    from vinpaint.host_bridge.client import Client

    frames, masks = long_clip()
    expected, _ = in_process(tmp_path_factory)
    store = tmp_path / "store"
    with DaemonProcess(store) as daemon, Client(daemon.address) as client:
        job = client.submit(frames, masks, preset="tiny", seed=SEED, overrides=SHOT)
        results = store / "jobs" / job / "results"
        deadline = time.monotonic() + 300
        while not (results / "00000.bin").is_file():  # written when window 1 is done, not at the end
            assert time.monotonic() < deadline and client.status(job)["state"] != "failed"
            time.sleep(0.05)
        assert client.cancel(job)["state"] == "cancelled"
        assert not (results / "complete.json").exists(), "the first window's frames came before the shot's end"
        early = np.frombuffer((results / "00000.bin").read_bytes(), frames.dtype).reshape(frames.shape[1:])
        assert np.array_equal(early[..., :3], expected[0]) and np.array_equal(early[..., 3], frames[0, ..., 3])
        deadline = time.monotonic() + 120
        while (pid := worker_pid(store, job)) is not None and pid_alive(pid):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        client.start(job)
        client.wait(job, poll_s=0.2, timeout_s=600)
        got = client.results(job)
    assert np.array_equal(got[..., :3], expected), "the resumed shot equals inpaint_shot's in-process"
    first = (store / "jobs" / job / "work" / "window_0000" / "attempts.log").read_text().splitlines()
    assert len(first) == 1, "the finished first window was not trained again"


@pytest.mark.parametrize("stream", [False, True], ids=["uploaded", "streamed"])
@pytest.mark.parametrize("case", ["full_frame_in_a_later_window", "empty"])
def test_a_long_shots_whole_mask_is_checked_before_any_window_trains(tmp_path, case, stream):
    """As the command checks a long shot (cli/shots.py): before, the daemon trained window 0, then failed naming
    frame 4 (frame 15's index in its window); an empty mask "finished" with copies of the plate. A streamed job
    starts training before its later masks are here: its windows are checked as they are read."""
    from vinpaint.engine.checks import EMPTY_MASK
    from vinpaint.host_bridge.client import Client, JobFailed

    frames, masks = long_clip()
    masks = masks.copy()
    if case == "empty":
        masks[:] = False
    else:
        masks[15] = True
    with DaemonProcess(tmp_path / "store") as daemon, Client(daemon.address) as client:
        job = client.submit(frames, masks, preset="tiny", seed=SEED, overrides=SHOT, stream=stream)
        with pytest.raises(JobFailed) as failed:
            client.wait(job, poll_s=0.2, timeout_s=300)
    said = str(failed.value)
    if case == "empty":
        assert EMPTY_MASK in said, said
    else:
        assert "the mask covers all of frame 15:" in said, said
    if not stream:
        work = tmp_path / "store" / "jobs" / job / "work"
        assert not list(work.glob("window_*/attempts.log")), "no window trained before the mask was refused"
