"""`vinpaint inpaint` and `submit` against a hostile but realistic user, a script and a local attacker: nothing of
the user's is ever replaced, no file vinpaint reads back runs code, environment failures (a full disk, a read-only
folder, a missing GPU, a garbage address) are one sentence and exit 2 with this run's litter removed, a resumed run
never silently uses a model its settings do not describe, and a truncated video says so."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from daemon_fixtures import DaemonProcess
from vinpaint.media.io import read_clip
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import MARKER, is_vinpaint_output, write_png_sequence, write_video
from vinpaint.cli.main import main

SMALL = SampleConfig(frames=12, width=160, height=96, seed=5)
TRAIN = ["--set", "loss.perceptual=0", "--set", "propagation.enabled=false"]
"""Train on every run (propagation would fill this small clip's hole without training)."""
QUICK = ["--preset", "tiny", "--quiet", "--set", "train.max_steps=1", *TRAIN]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile_clip")
    sample = make_sample(SMALL)
    write_video(folder / "clip.mkv", sample.frames, 24)
    write_png_sequence(folder / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    return {"video": folder / "clip.mkv", "masks": folder / "masks", "dir": folder}


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def one_sentence(err: str, pattern: str) -> None:
    """The run ended with exactly one error line, its last (notices such as "perceptual loss off" may precede)."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    assert re.match("vinpaint: error: " + pattern, errors[0]), err


def users_pictures(folder: Path) -> dict[str, bytes]:
    """A user's own folder of frames, written the way another program would (no vinpaint mark)."""
    folder.mkdir(parents=True)
    for i in range(3):
        ok, data = cv2.imencode(".png", np.full((8, 8, 3), 40 * i, np.uint8))
        (folder / f"plate.{1001 + i}.png").write_bytes(data.tobytes())
    (folder / "grade.exr").write_bytes(b"v/1\x01 not really an exr")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# ---- 1. data loss --------------------------------------------------------------------------------------------------

def test_a_users_folder_of_frames_is_never_replaced(clip, tmp_path, capsys):
    mine = users_pictures(tmp_path / "plates")
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "plates", *QUICK)
    assert code == 2
    one_sentence(err, r"output folder \S+plates holds files that vinpaint did not write .*--overwrite")
    assert contents(tmp_path / "plates") == mine
    assert sorted(os.listdir(tmp_path)) == ["plates"]  # nothing beside it either


@pytest.mark.parametrize("name", ["result.mp4", "result.config.json", "result.loss.png", "result.before_after.png"])
def test_a_users_file_where_an_output_goes_is_never_replaced(clip, tmp_path, capsys, name):
    (tmp_path / name).write_bytes(b"the user's own " + name.encode())
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "result.mp4",
                        *QUICK)
    assert code == 2
    one_sentence(err, rf"output \S+{re.escape(name)} exists and was not written by vinpaint; .*--overwrite")
    assert (tmp_path / name).read_bytes() == b"the user's own " + name.encode()
    assert sorted(os.listdir(tmp_path)) == [name]


@pytest.mark.parametrize("case", ["symlink", "inside-workdir", "workdir-inside-output", "mask-is-video",
                                  "output-is-mask"])
def test_outputs_that_would_clobber_something_are_refused(clip, tmp_path, capsys, case):
    precious = tmp_path / "precious.mkv"
    shutil.copy(clip["video"], precious)
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv", *QUICK]
    if case == "symlink":
        (tmp_path / "out.mkv").symlink_to(precious)
        expected = r"output \S+out.mkv is a symbolic link"
    elif case == "inside-workdir":
        args[5] = tmp_path / "out.work" / "result.mkv"
        args += ["--work-dir", tmp_path / "out.work"]
        expected = r"output \S+ and the work directory \S+ overlap"
    elif case == "workdir-inside-output":
        args[5] = tmp_path / "frames"
        args += ["--work-dir", tmp_path / "frames" / "work"]
        expected = r"output \S+frames and the work directory \S+ overlap"
    elif case == "mask-is-video":
        args[3] = clip["video"]
        expected = r"the mask \S+ is the video itself"
    else:
        args[5] = clip["masks"]
        expected = r"output \S+masks is or holds the input"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    code, err = run_cli(capsys, *args)
    assert code == 2
    one_sentence(err, expected)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert precious.read_bytes() == clip["video"].read_bytes()


@pytest.mark.slow
def test_vinpaint_replaces_its_own_outputs_and_overwrite_replaces_a_users(clip, tmp_path, capsys):
    out = tmp_path / "résultat ✓ 1"  # a unicode path with spaces, as a PNG folder
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, "-o", tmp_path / "clip.mkv", *QUICK]
    assert run_cli(capsys, *args)[0] == 0
    assert (out / MARKER).is_file() and is_vinpaint_output(tmp_path / "clip.mkv")
    assert is_vinpaint_output(tmp_path / "résultat ✓ 1.loss.png")
    assert is_vinpaint_output(tmp_path / "résultat ✓ 1.config.json")
    (out / "00000.png").unlink()  # a run again replaces what vinpaint wrote, whole
    assert run_cli(capsys, *args)[0] == 0 and (out / "00000.png").is_file()

    mine = users_pictures(tmp_path / "theirs")
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "theirs",
                        "--overwrite", *QUICK)
    assert code == 0, err
    assert not set(mine) & set(os.listdir(tmp_path / "theirs"))
    assert len(read_clip(tmp_path / "theirs").frames) == SMALL.frames


@pytest.mark.slow
def test_submit_never_replaces_a_users_folder(clip, tmp_path):
    mine = users_pictures(tmp_path / "plates")
    with DaemonProcess(tmp_path / "store") as daemon:
        done = subprocess.run([sys.executable, "-m", "vinpaint", "submit", str(clip["video"]), "--mask",
                               str(clip["masks"]), "-o", str(tmp_path / "plates"), "--wait", "--server",
                               daemon.address, "--preset", "tiny", "--quiet", "--set", "train.max_steps=1", *TRAIN],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2
        assert re.fullmatch(r"vinpaint: error: output folder \S+plates holds files that vinpaint did not write[^\n]*\n",
                            done.stderr), done.stderr
        assert list((tmp_path / "store" / "jobs").glob("*")) == []  # refused before anything was uploaded
        done = subprocess.run([sys.executable, "-m", "vinpaint", "submit", str(clip["video"]), "--mask",
                               str(clip["masks"]), "-o", str(tmp_path / "plates"), "--wait", "--server",
                               daemon.address, "--preset", "tiny", "--quiet", "--set", "train.max_steps=1", *TRAIN,
                               "--overwrite"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "plates" / MARKER).is_file() and not set(mine) & set(os.listdir(tmp_path / "plates"))


# ---- 2. no code from files -------------------------------------------------------------------------------------------

class Planted:
    """What an attacker pickles into a checkpoint: unpickling it would create a file (it could run anything)."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self):
        return (Path.touch, (self.proof,))


@pytest.mark.slow
def test_a_planted_checkpoint_is_refused_and_never_runs(clip, tmp_path, capsys):
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv", "--preset", "tiny",
            "--quiet", *TRAIN]
    assert run_cli(capsys, *args, "--pause-after", "1")[0] == 130
    checkpoint = tmp_path / "out.work" / "checkpoint.pt"
    proof = tmp_path / "the code ran"
    torch.save({"elapsed": 0.0, "history": [], "model": Planted(proof)}, checkpoint)
    planted = checkpoint.read_bytes()
    code, err = run_cli(capsys, *args)
    assert code == 2
    one_sentence(err, r"the checkpoint \S+checkpoint.pt holds objects other than tensors and numbers \(loading it "
                      r"could run code\); it was not loaded")
    assert not proof.exists()
    assert checkpoint.read_bytes() == planted  # an earlier run's checkpoint is never deleted
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["planted", "truncated", "other size"])
def test_a_damaged_or_planted_flow_cache_is_estimated_again_and_never_run(clip, tmp_path, capsys, damage):
    """The known flow is a cache: one that is planted (a pickle, never loaded), cut short (a zip that does not
    open: a traceback before) or of another clip's size is estimated again, and the checkpoint is kept."""
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv", "--preset", "tiny",
            "--quiet", *TRAIN]
    assert run_cli(capsys, *args, "--pause-after", "1")[0] == 130
    cache = tmp_path / "out.work" / "flow.npz"
    good = cache.read_bytes()
    if damage == "planted":
        (tmp_path / "out.work" / "checkpoint.pt").unlink()
        with open(cache, "wb") as handle:
            np.savez(handle, flow=np.array([Planted(tmp_path / "ran")], dtype=object))
    elif damage == "truncated":
        cache.write_bytes(good[:len(good) // 3])
    else:
        with np.load(cache) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["flow"] = arrays["flow"][:, :, :, :8, :8]
        with open(cache, "wb") as handle:
            np.savez(handle, **arrays)
    code, err = run_cli(capsys, *args)
    assert code == 0 and "Traceback" not in err, err
    assert cache.read_bytes() == good  # estimated again, to the same bits
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("damage", ["fewer frames", "smaller frames", "not finite"])
def test_a_cached_result_of_the_wrong_shape_or_not_finite_is_one_sentence(clip, tmp_path, capsys, damage):
    """A result.npz that opens but does not fit the clip was composited into the hole: an IndexError, or wrong
    pixels with exit 0. Now it is refused like a damaged one, with the way out."""
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv", *QUICK]
    assert run_cli(capsys, *args)[0] == 0
    result = tmp_path / "out.work" / "result.npz"
    with np.load(result) as z:
        arrays = {k: z[k] for k in z.files}
    generated = arrays["generated"]
    arrays["generated"] = generated[:5] if damage == "fewer frames" else generated[:, ::2, ::2] \
        if damage == "smaller frames" else np.full_like(generated, np.nan)
    with open(result, "wb") as handle:
        np.savez(handle, **arrays)
    before = (tmp_path / "out.mkv").read_bytes()
    code, err = run_cli(capsys, *args)
    assert code == 2
    one_sentence(err, r"the cached result \S+result.npz is damaged or not vinpaint's")
    assert (tmp_path / "out.mkv").read_bytes() == before  # the earlier output is kept


@pytest.mark.slow
def test_a_planted_result_is_refused_and_a_damaged_propagation_cache_recomputed(clip, tmp_path, capsys):
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv", "--preset", "tiny",
            "--quiet", "--set", "loss.perceptual=0", "--set", "train.max_steps=1"]
    assert run_cli(capsys, *args, "--set", "propagation.enabled=false")[0] == 0
    with open(tmp_path / "out.work" / "result.npz", "wb") as handle:  # the budget matches: it would be reused
        np.savez(handle, budget=np.array("[1, 0.0]"), generated=np.array([Planted(tmp_path / "ran")], dtype=object))
    code, err = run_cli(capsys, *args, "--set", "propagation.enabled=false")
    assert code == 2
    one_sentence(err, r"the cached result \S+result.npz is damaged or not vinpaint's")
    shutil.rmtree(tmp_path / "out.work")
    (tmp_path / "out.work").mkdir()
    assert run_cli(capsys, *args, "--overwrite")[0] == 0  # with propagation: its cache is written
    cache = tmp_path / "out.work" / "propagation.npz"
    assert cache.is_file()
    cache.write_bytes(cache.read_bytes()[:100])  # damaged: a cache, so it is recomputed, never trusted
    (tmp_path / "out.work" / "result.npz").unlink()
    code, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert "Traceback" not in err and len(cache.read_bytes()) > 100
    assert not (tmp_path / "ran").exists()


def test_no_file_is_read_back_with_pickle():
    """The whole repository: every torch.load is weights_only=True, no pickle module, no allow_pickle=True."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in root.rglob("*.py"):
        if any(part in ("tests", ".git", "build", ".venv", "site-packages") or part.endswith(".egg-info")
               for part in path.relative_to(root).parts):  # ours only: not a virtual environment kept here
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for line_no, line in enumerate(text.splitlines(), 1):
            if re.search(r"torch\.load\(", line) and "weights_only=True" not in line:
                offenders.append(f"{path}:{line_no}")
            if re.search(r"\b(import pickle|pickle\.loads?|allow_pickle=True|weights_only=False)", line):
                offenders.append(f"{path}:{line_no}")
    assert offenders == []


# ---- 3. the environment: one sentence, exit 2, no litter ---------------------------------------------------------

def _can_mount() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs unshare and mount (a user namespace or root)")


def in_small_filesystem(folder: Path, size: str, command: list[str], read_only: bool = False
                        ) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `command` with a fresh tmpfs of `size` mounted on `folder` (private to the command), then list what is
    left in it."""
    folder.mkdir(parents=True, exist_ok=True)
    ro = f" && mount -o remount,ro {folder}" if read_only else ""
    script = (f"mount -t tmpfs -o size={size} tmpfs {folder}{ro} && \"$@\"; code=$?; "
              f"echo; echo '--left--'; ls -A {folder}; exit $code")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *command], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    left = done.stdout.rpartition("--left--\n")[2].split()
    return done, left


@needs_mount
@pytest.mark.slow
@pytest.mark.parametrize("restart", [False, True])
def test_a_full_disk_while_writing_is_one_sentence_and_leaves_no_partial_output(clip, tmp_path, restart):
    """With --restart, "run the same command again" would throw away the training kept (a hunt found it)."""
    small = tmp_path / "small"
    work = tmp_path / "work"
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(small / "out"), "-o", str(small / "out.mkv"), "--work-dir", str(work), *QUICK,
               *(["--restart"] if restart else [])]
    done, left = in_small_filesystem(small, "48k", command)
    assert done.returncode == 2, done.stderr
    again = r"without --restart \(which would train again\)" if restart else "again"
    one_sentence(done.stderr, rf"the disk is full \(no space left\) while writing {small}/out\S*; free some space "
                              rf"and run the same command {again}\.$")
    assert left == []  # no half-written folder, temporary file or sidecar
    assert (work / "result.npz").is_file()  # the training is kept: the same command again only writes


@needs_mount
@pytest.mark.slow
def test_a_full_disk_while_training_removes_the_new_work_directory(clip, tmp_path):
    small = tmp_path / "small"
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(small / "out.mkv"), *QUICK]
    done, left = in_small_filesystem(small, "24k", command)  # the flow cache does not fit
    assert done.returncode == 2, done.stderr
    one_sentence(done.stderr, r"the disk is full \(no space left\) while writing \S+; free some space and run the "
                              r"same command again\.$")
    assert left == []


@needs_mount
def test_a_read_only_work_directory_names_the_work_directory(clip, tmp_path):
    """The advice was "write the result elsewhere (-o)" while -o was elsewhere already: the work directory is
    what could not be written."""
    ro = tmp_path / "ro"
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(tmp_path / "out.mkv"), "--work-dir", str(ro / "out.work"), *QUICK]
    done, left = in_small_filesystem(ro, "1m", command, read_only=True)
    assert done.returncode == 2, done.stderr
    one_sentence(done.stderr, rf"cannot write the work directory {ro}/out.work: the file system is read-only; give "
                              r"another --work-dir\.$")
    assert left == [] and not (tmp_path / "out.mkv").exists()


@needs_mount
def test_a_read_only_output_folder_is_one_sentence(clip, tmp_path):
    ro = tmp_path / "ro"
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(ro / "out.mkv"), *QUICK]
    done, left = in_small_filesystem(ro, "1m", command, read_only=True)
    assert done.returncode == 2, done.stderr
    one_sentence(done.stderr, rf"cannot write {ro}/\S+: the file system is read-only; write the result elsewhere "
                              r"\(-o\)\.$")
    assert left == []


def test_a_garbage_daemon_address_is_one_sentence(clip, tmp_path, capsys):
    for address in ("garbage://x", "tcp://127.0.0.1:99999", "tcp://", ""):
        code, err = run_cli(capsys, "submit", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "o.mkv",
                            "--server", address, "--quiet")
        assert code == 2
        one_sentence(err, r"'[^']*' is not a daemon address; use tcp://HOST:PORT")
    assert os.listdir(tmp_path) == []


def test_a_missing_gpu_is_one_sentence_naming_the_device(clip, tmp_path, capsys):
    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "o.mkv",
                        "--device", device, *QUICK)
    assert code == 2
    one_sentence(err, rf"device {device} is not available")
    assert os.listdir(tmp_path) == []



def _cpu_allocator_fails(*args, **kwargs):
    torch.empty(2**50)  # 4 PiB: torch's CPU allocator fails with a plain RuntimeError


def _gpu_runs_out(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB.\nIf reserved but unallocated ...")


def _cudnn_runs_out(*args, **kwargs):
    raise RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")  # cuDNN's workspace: not torch's allocator


@pytest.mark.parametrize("engine,says", [(_cpu_allocator_fails, "out of memory; use fewer frames"),
                                         (_gpu_runs_out, r"the device ran out of memory \(CUDA out of memory"),
                                         (_cudnn_runs_out, r"the device ran out of memory \(cuDNN error")])
def test_running_out_of_memory_is_one_sentence(clip, tmp_path, capsys, monkeypatch, engine, says):
    """The engine running out of memory, as torch says it on a CPU (a RuntimeError that came back as a traceback)
    and on a GPU: the same rule as the daemon's worker (vinpaint.errors.out_of_memory)."""
    monkeypatch.setattr("vinpaint.cli.runs.inpaint", engine)
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "o.mkv", *QUICK)
    assert code == 2
    one_sentence(err, says)
    assert not (tmp_path / "o.mkv").exists()

# ---- 6. quiet wrong results ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_resuming_with_fewer_steps_than_the_checkpoint_is_refused(clip, tmp_path, capsys):
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv", "--preset", "tiny",
            "--quiet", *TRAIN]
    assert run_cli(capsys, *args, "--set", "train.max_steps=5", "--pause-after", "3")[0] == 130
    code, err = run_cli(capsys, *args, "--set", "train.max_steps=2")
    assert code == 2
    one_sentence(err, r"the checkpoint in \S+ has trained 3 steps, more than the 2 these settings plan")
    assert not (tmp_path / "out.mkv").exists() and (tmp_path / "out.work" / "checkpoint.pt").is_file()
    code, err = run_cli(capsys, *args, "--set", "train.max_steps=5")  # its own budget continues, as before
    assert code == 0, err


def test_a_truncated_video_says_so(clip, tmp_path, capsys):
    data = clip["video"].read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:int(len(data) * 0.6)])
    code = main(["inpaint", str(tmp_path / "cut.mkv"), "--mask", str(clip["dir"] / "masks" / "00003.png"),
                 "-o", str(tmp_path / "o.mkv"), "--preset", "tiny", "--variant", "dip-vid", "--quiet", "--check"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert re.fullmatch(r"vinpaint: warning: video \S+cut.mkv declares 11 frames but only \d+ could be read \(is the "
                        r"file truncated or still being written\?\); using those \d+\n", err), err
    assert sorted(os.listdir(tmp_path)) == ["cut.mkv"]


@pytest.mark.slow
def test_two_runs_on_the_same_output_at_once(clip, tmp_path):
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(tmp_path / "out.mkv"), "--preset", "tiny", "--quiet", *TRAIN, "--set", "train.max_steps=0"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = __import__("time").monotonic() + 120
        while not (tmp_path / "out.work" / "run.json").exists() and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.2)
        second = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert re.fullmatch(rf"vinpaint: error: another vinpaint run is writing {re.escape(str(tmp_path))}/out\.mkv "
                            r"\(or files beside, inside or around it\); wait for it to finish, or give another "
                            r"-o\.\n", second.stderr), \
            second.stderr
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert is_vinpaint_output(tmp_path / "out.mkv")


# ---- more of the hostile pass ---------------------------------------------------------------------------------------

def test_a_users_folder_as_the_work_directory_is_refused(clip, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{\"my\": \"settings\"}")
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv",
                        "--work-dir", tmp_path / "mine", *QUICK)
    assert code == 2
    one_sentence(err, r"the work directory \S+mine holds files that vinpaint did not put there")
    assert contents(tmp_path / "mine") == {"config.json": b"{\"my\": \"settings\"}"}
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_a_config_that_never_ends_is_refused(clip, tmp_path, capsys):
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv",
                        "--config", "/dev/zero", "--check")
    assert code == 2
    one_sentence(err, r"cannot use /dev/zero as a config: it is over 1024 KB")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv",
                        "--config", deep, "--check")
    assert code == 2
    one_sentence(err, r"cannot use \S+deep.json as a config")


def test_an_output_under_a_file_is_refused_before_training(clip, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o",
                        tmp_path / "afile" / "out.mkv", *QUICK)
    assert code == 2
    one_sentence(err, r"cannot write \S+out.mkv: \S+afile is a file, not a folder")
    assert sorted(os.listdir(tmp_path)) == ["afile"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "nohup"])
def test_sigterm_and_sighup_checkpoint_like_ctrl_c(clip, tmp_path, name):
    """SIGHUP: the terminal closed or the ssh session dropped. Before (2026-12-02) it quit at once: exit 129, no
    checkpoint, temporaries left. Under `nohup` (SIGHUP ignored) the run goes on through a hang-up, and SIGTERM
    stops it."""
    import signal
    import time

    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(tmp_path / "out.mkv"), "--preset", "tiny", *TRAIN, "--set", "train.max_steps=0"]
    nohup = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if name == "nohup" else None
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=nohup)
    seen, deadline = "", time.monotonic() + 240
    while "training" not in seen and time.monotonic() < deadline and process.poll() is None:
        seen += process.stderr.read(1)
    if name == "nohup":  # the hang-up changes nothing: the run finishes
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=240)
        assert process.returncode == 0 and "stopping" not in err, seen + err
        return
    process.send_signal(getattr(signal, name))
    _, err = process.communicate(timeout=240)
    assert process.returncode == 130, seen + err
    assert re.search(r"training stopped at step \d+ of \d+; checkpoint saved", err)
    assert (tmp_path / "out.work" / "checkpoint.pt").is_file()
    assert sorted(os.listdir(tmp_path)) == ["out.work"]  # no partial output, no temporary file


def test_a_video_cut_anywhere_is_read_or_one_sentence(tmp_path):
    """Cut at every tenth byte: a file cut inside its index has a stream whose codec FFmpeg could not set up, which
    was an AttributeError (1370-1460 of this 2001-byte file with the PyAV wheel here); any cut is now frames or
    one InputError."""
    import av

    from vinpaint.errors import InputError

    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((96, 160, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data, cut = whole.read_bytes(), tmp_path / "cut.mp4"
    said = set()
    for size in range(200, len(data), 10):
        cut.write_bytes(data[:size])
        try:
            read_clip(cut)
        except InputError as exc:
            said.add(str(exc).split(":")[0].replace(str(cut), "X"))
    assert said, "no cut was refused: the scan did not reach a damaged file"


def test_a_frame_damaged_inside_is_said_never_passed_on_in_silence(tmp_path):
    """Zeroed bytes in the middle of an FFV1 file: before (2026-12-02), a frame decoded from the damaged slice came
    out as garbage with only "declares 8 frames but only 4 could be read". Every damage is now said: refused, or
    read with FFmpeg's own report of it (a slice CRC mismatch); the clean file says nothing."""
    from vinpaint.errors import InputError
    from vinpaint.media.writers import write_video

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8), (5, 5), 0)
    whole = tmp_path / "whole.mkv"
    write_video(whole, np.stack([np.ascontiguousarray(base[:, 2 * i:2 * i + 64]) for i in range(8)]), 24)
    assert read_clip(whole).notices == []
    data, damaged = whole.read_bytes(), tmp_path / "damaged.mkv"
    reported = 0
    for start in range(len(data) // 4, 3 * len(data) // 4, max(1, len(data) // 16)):
        damaged.write_bytes(data[:start] + bytes(500) + data[start + 500:])
        try:
            clip = read_clip(damaged)
        except InputError:
            continue
        frames = read_clip(whole).frames
        if len(clip.frames) != len(frames) or not np.array_equal(clip.frames, frames):
            assert any("FFmpeg reported damage while decoding it" in n or "declares" in n for n in clip.notices)
            reported += any("FFmpeg reported damage" in n for n in clip.notices)
    assert reported, "no damage was reported by FFmpeg: the scan did not reach a damaged frame"


@pytest.mark.slow
def test_ctrl_c_while_no_step_can_stop_keeps_the_earlier_outputs(tmp_path):
    """Ctrl-C during flow and propagation of a run that trains no model: it was acknowledged, then the run went on
    and replaced every output. Now it stops before writing (exit 130, the earlier outputs as they were), keeps the
    result, and the same command again writes it."""
    import signal
    import time

    sample = make_sample(SampleConfig(frames=24, width=320, height=192, seed=3))
    write_video(tmp_path / "clip.mkv", sample.frames, 24)
    write_png_sequence(tmp_path / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(tmp_path / "clip.mkv"), "--mask",
               str(tmp_path / "masks"), "-o", str(tmp_path / "out"), "-o", str(tmp_path / "out.mkv"), "--preset",
               "fast", "--set", "propagation.train_below=1", "--quiet"]
    first = subprocess.run(command + ["--dilate", "3"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    earlier = {p: p.read_bytes() for p in [tmp_path / "out.mkv", tmp_path / "out.config.json",
                                           *sorted((tmp_path / "out").iterdir())]}
    again = command + ["--dilate", "0", "--restart"]
    process = subprocess.Popen(again, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen, deadline = "", time.monotonic() + 240
    while "work directory:" not in seen and time.monotonic() < deadline and process.poll() is None:
        seen += process.stdout.readline()
    time.sleep(0.3)  # inside the run: loading the engine, estimating flow or propagating
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 130, seen + err
    assert "stopped before the outputs were written" in err, err
    assert {p: p.read_bytes() for p in earlier} == earlier  # every earlier output as it was
    last = subprocess.run(again[:-1], capture_output=True, text=True, timeout=600)  # the same run, not restarted
    assert last.returncode == 0, last.stderr
    assert '"dilation": 0' in (tmp_path / "out.config.json").read_text()
    assert (tmp_path / "out.mkv").read_bytes() != earlier[tmp_path / "out.mkv"]


def test_a_first_ctrl_c_while_the_outputs_are_written_waits_for_them(capsys):
    """The outputs are replaced one after another: a first Ctrl-C waits for the last of them, a second quits at
    once and says they may be mixed."""
    import signal

    from vinpaint.cli.runs import OutputsInProgress

    said: list[str] = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in the background
    with OutputsInProgress(said.append) as writing:
        os.kill(os.getpid(), signal.SIGINT)
        assert writing.requested and "finishing the outputs first" in said[-1]
    with pytest.raises(KeyboardInterrupt):
        with OutputsInProgress(said.append):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
    assert "they may be a mix of this run's and an earlier one's" in said[-1]
    assert "run the same command again to write them all" in said[-1]
    with pytest.raises(KeyboardInterrupt):
        with OutputsInProgress(said.append, restart=True):  # "again" would train again, its result discarded
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
    assert "run the same command without --restart (which would train again) to write them all" in said[-1]
    assert signal.getsignal(signal.SIGINT) is before  # put back


def test_a_saved_config_keeps_its_preset_and_a_second_choice_is_refused(clip, tmp_path, capsys):
    from vinpaint.engine.config import make_config
    saved = tmp_path / "saved.config.json"
    config = make_config("tiny", "dip-vid")
    saved.write_text(json.dumps(config.to_dict()))
    code, err = run_cli(capsys, "inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "out.mkv",
                        "--config", saved, "--preset", "paper", "--check")
    assert code == 2  # before: the saved config won and --preset paper was dropped without a word
    one_sentence(err, r"--config and --preset both choose the settings")
    code = main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "out.mkv"),
                 "--config", str(saved), "--check"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "tiny" in said.out and "dip-vid" in said.out
    assert not (tmp_path / "out.mkv").exists()


def test_a_config_giving_a_few_settings_takes_the_rest_from_its_preset():
    """Before: {"preset": "fast"} ran with the settings' bare defaults (8000 steps at 384 wide) while its saved
    config said fast."""
    from vinpaint.cli.arguments import config_from_saved
    from vinpaint.engine.config import InpaintConfig, make_config
    from vinpaint.errors import InputError
    assert config_from_saved({"preset": "fast"}) == make_config("fast")
    assert config_from_saved({"preset": "tiny", "variant": "dip-vid", "train": {"seed": 7}}) == \
        make_config("tiny", "dip-vid").with_overrides({"train.seed": 7})
    assert config_from_saved({"train": {"max_steps": 5}}) == make_config("fast").with_overrides({"train.max_steps": 5})
    full = make_config("paper", "dip").with_overrides({"mask.dilation": 3})
    assert config_from_saved(full.to_dict()) == full  # a saved config as it was saved
    # one saved before a setting existed keeps that setting's default (the behaviour from before it), not fast's
    older = make_config("fast").to_dict()
    del older["propagation"]["steady_still_radius"]
    assert make_config("fast").propagation.steady_still_radius != InpaintConfig().propagation.steady_still_radius
    assert config_from_saved(older) == InpaintConfig.from_dict(older)
    with pytest.raises(InputError, match="bogus"):
        config_from_saved({"preset": "fast", "train": {"bogus": 1}})


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Before: "cannot use ... as a config: Expecting value: line 1 column 1" for a file a Windows editor saved."""
    import argparse

    from vinpaint.cli.arguments import build_config
    from vinpaint.engine.config import make_config
    saved = tmp_path / "bom.json"
    saved.write_bytes(make_config("tiny", "dip-vid").to_json().encode("utf-8-sig"))
    args = argparse.Namespace(config=str(saved), preset=None, variant=None, seed=None, dilate=None, feather=None,
                              work_width=None, set=None)
    assert build_config(args) == make_config("tiny", "dip-vid")
