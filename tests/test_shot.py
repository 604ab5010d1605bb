"""Long shots (engine/shot.py): windows planned over the whole shot, joined invisibly inside the hole and exactly
outside it, resumed window by window, and the same frames whether the windows run here or on Ray, even when a Ray
worker is killed mid-window."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vinpaint.engine import InputError, inpaint, make_config
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import MARKER
from vinpaint.engine.shot import ATTEMPTS, DONE, ArraySource, SerialRunner, Window, inpaint_shot, join_weights, \
    plan_windows
from vinpaint.cli.main import main


@given(st.integers(1, 400), st.integers(2, 80), st.integers(0, 79))
@settings(max_examples=300, deadline=None)
def test_windows_cover_the_shot_evenly(t_count, window, overlap):
    if overlap >= window and t_count > window:
        with pytest.raises(InputError, match="shot.overlap"):
            plan_windows(t_count, window, overlap)
        return
    windows = plan_windows(t_count, window, overlap)
    if t_count <= window:
        assert windows == [Window(0, 0, t_count)]
        return
    assert windows[0].start == 0 and windows[-1].stop == t_count
    assert all(len(w) == window for w in windows)
    for a, b in zip(windows, windows[1:]):
        assert a.start < b.start and b.start <= a.stop - overlap, (a, b)  # every neighbour shares >= overlap
    assert len(windows) == -(-(t_count - overlap) // (window - overlap))  # no more windows than needed


def test_join_fades_linearly_across_an_overlap():
    windows = plan_windows(30, 14, 4)  # [0,14) [8,22) [16,30): overlaps of 6
    assert [(w.start, w.stop) for w in windows] == [(0, 14), (8, 22), (16, 30)]
    assert join_weights(3, windows) == [(windows[0], 1.0)]
    for k, frame in enumerate(range(8, 14)):
        shares = dict((w.index, s) for w, s in join_weights(frame, windows))
        assert shares[1] == pytest.approx((k + 1) / 7) and shares[0] == pytest.approx(1 - (k + 1) / 7)
    for frame in range(30):
        assert sum(s for _, s in join_weights(frame, windows)) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def shot():
    return make_sample(SampleConfig(frames=30, width=160, height=96, seed=1))


def _config(**extra):
    values = {"propagation.enabled": False, "train.max_steps": 4, "shot.window": 14, "shot.overlap": 4}
    values.update(extra)
    return make_config("tiny", "dip-vid-flow", **values)


def _run(shot, config, workdir: Path, runner=None) -> tuple[np.ndarray, np.ndarray, object]:
    frames, mattes = {}, {}

    def emit(index, frame, matte):
        assert index == len(frames)  # in order, each frame once
        frames[index], mattes[index] = frame, matte
    result = inpaint_shot(ArraySource(shot.frames, shot.masks), config, workdir, emit,
                          runner=runner or SerialRunner(threads=1))
    return np.stack([frames[i] for i in range(len(frames))]), np.stack([mattes[i] for i in range(len(mattes))]), \
        result


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_a_clip_shorter_than_a_window_is_todays_result(shot, tmp_path, one_thread):
    config = _config(**{"shot.window": 100})
    frames, _, result = _run(make_sample(SampleConfig(frames=12, width=160, height=96, seed=1)), config,
                             tmp_path / "shot")
    short = make_sample(SampleConfig(frames=12, width=160, height=96, seed=1))
    today = inpaint(short.frames, short.masks, config, workdir=tmp_path / "today")
    assert result.windows == 1 and np.array_equal(frames, today.frames)


@pytest.mark.slow
def test_the_join_is_exact_outside_the_hole_and_a_cross_fade_inside(shot, tmp_path, one_thread):
    frames, _, result = _run(shot, _config(), tmp_path / "work")
    assert result.windows == 3 and result.trained == 3
    hole = shot.masks.astype(bool)
    assert np.array_equal(frames[~hole], shot.frames[~hole])
    first = np.load(tmp_path / "work/window_0000/frames.npy")
    second = np.load(tmp_path / "work/window_0001/frames.npy")
    for k, t in enumerate(range(8, 14)):
        share = (k + 1) / 7
        expected = np.rint((1 - share) * first[t][hole[t]].astype(np.float64) +
                           share * second[t - 8][hole[t]].astype(np.float64))
        assert np.array_equal(frames[t][hole[t]], expected.astype(np.uint8)), t
    assert not np.array_equal(first[13][hole[13]], second[5][hole[13]])  # the windows differ: the fade is real
    assert np.array_equal(frames[3], first[3]) and np.array_equal(frames[15], second[7])


@pytest.mark.slow
def test_an_interrupted_shot_resumes_window_by_window(shot, tmp_path, one_thread):
    work = tmp_path / "work"
    frames, _, _ = _run(shot, _config(), work)
    done = {i: (work / f"window_{i:04d}" / DONE).stat().st_mtime_ns for i in range(3)}
    (work / "window_0001" / DONE).unlink()  # as if the shot stopped while window 1 trained
    again, _, result = _run(shot, _config(), work)
    assert result.trained == 1 and np.array_equal(again, frames)
    lines = {i: (work / f"window_{i:04d}" / ATTEMPTS).read_text().splitlines() for i in range(3)}
    assert [len(lines[i]) for i in range(3)] == [1, 2, 1]
    assert (work / "window_0000" / DONE).stat().st_mtime_ns == done[0]
    assert (work / "window_0002" / DONE).stat().st_mtime_ns == done[2]
    with pytest.raises(InputError, match="holds another run"):
        _run(shot, _config(**{"shot.window": 16}), work)



@pytest.mark.slow
def test_a_finished_shot_is_steadied_again_from_its_windows_training(shot, tmp_path, one_thread):
    """The steady fill's settings are not in a window's key: another value composes each window again from the
    training cached in its folder, as a fresh run with that value would, and trains nothing."""
    still = np.repeat(shot.frames[:1], len(shot.frames), axis=0)  # a locked-off plate ...
    hole = np.broadcast_to(shot.masks[:1], shot.masks.shape).copy()  # ... and a hole that never moves
    locked = type(shot)(**{**shot.__dict__, "frames": still, "masks": hole})
    steady = {"propagation.enabled": True, "propagation.steady_radius": 2}
    work = tmp_path / "work"
    first, _, _ = _run(locked, _config(**steady), work)
    checkpoint = (work / "window_0000" / "checkpoint.pt").stat().st_mtime_ns
    other = {**steady, "propagation.steady_still_radius": 14}
    again, _, _ = _run(locked, _config(**other), work)
    fresh, _, _ = _run(locked, _config(**other), tmp_path / "fresh")
    assert (work / "window_0000" / "checkpoint.pt").stat().st_mtime_ns == checkpoint  # not trained again
    assert np.array_equal(again, fresh) and not np.array_equal(again, first)
    assert np.array_equal(again[~hole], still[~hole])

# ---- Ray ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_with_two_workers_gives_the_serial_frames(shot, tmp_path, local_ray, one_thread):
    from vinpaint.engine.shot_ray import RayRunner

    serial, serial_matte, _ = _run(shot, _config(), tmp_path / "serial")
    runner = RayRunner(device="cpu", threads=1)
    assert runner.capacity == 2
    spread, spread_matte, result = _run(shot, _config(), tmp_path / "ray", runner)
    assert result.trained == 3
    assert np.array_equal(serial, spread) and np.array_equal(serial_matte, spread_matte)


@pytest.mark.slow
@pytest.mark.parametrize("nodes,threads,expected", [
    ([(16, 1)], None, (16, 16)), ([(16, 4)], None, (4, 4)), ([(2, 4)], None, (1, 1)), ([(16, 2)], 3, (8, 3)),
    ([(16, 0), (8, 1), (8, 1)], None, (8, 8)), ([(32, 2), (8, 4)], None, (2, 2)), ([(4, 0)], None, (1, 1))])
def test_a_gpu_window_takes_its_share_of_the_cores(nodes, threads, expected):
    """Ray sets a task's OMP_NUM_THREADS to its CPUs; a GPU window asked for one, so its flow, propagation and
    composition ran on one thread on a 16-core GPU machine. Each GPU now gets the cores a GPU of the leanest GPU
    node has (--threads wins): a CPU-only head node's cores are not counted, or no GPU node could run a window."""
    from vinpaint.engine.shot_ray import gpu_task

    options, used = gpu_task(nodes, threads)
    assert options == {"num_gpus": 1, "num_cpus": expected[0]} and used == expected[1]


def test_a_killed_ray_worker_is_retried_and_nothing_else_reruns(shot, tmp_path, local_ray, one_thread):
    from vinpaint.engine.shot_ray import RayRunner

    work = tmp_path / "work"
    config = _config(**{"train.max_steps": 40})
    killed: list[int] = []

    def kill_window_1():
        log = work / "window_0001" / ATTEMPTS
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if log.is_file() and log.read_text().strip():
                pid = int(log.read_text().split()[-1])
                if not (work / "window_0001" / DONE).exists():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_window_1)
    killer.start()
    frames, _, result = _run(shot, config, work, RayRunner(device="cpu", threads=1))
    killer.join()
    assert killed, "window 1 finished before it could be killed"
    lines = {i: (work / f"window_{i:04d}" / ATTEMPTS).read_text().splitlines() for i in range(3)}
    assert [len(lines[i]) for i in range(3)] == [1, 2, 1]
    assert int(lines[1][1].split()[-1]) != killed[0]  # the retry ran in another process
    serial, _, _ = _run(shot, config, tmp_path / "serial")
    assert np.array_equal(frames, serial)


# ---- the command --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shot_files(shot, tmp_path_factory):
    from vinpaint.media.writers import write_png, write_png_sequence, write_video

    folder = tmp_path_factory.mktemp("shot")
    write_video(folder / "clip.mkv", shot.frames, 25)
    write_png_sequence(folder / "masks", (shot.masks * 255).astype(np.uint8))
    write_png_sequence(folder / "frames", shot.frames)
    write_png(folder / "mask.png", (shot.masks[0] * 255).astype(np.uint8))
    write_png(folder / "small.png", np.zeros((20, 30), np.uint8))
    return folder


def test_windows_read_from_files_are_the_whole_clips_frames(shot, shot_files):
    from vinpaint.media.io import read_inputs
    from vinpaint.media.shot_input import ShotFiles, count_frames

    for video, mask in (("clip.mkv", "masks"), ("frames", "masks"), ("clip.mkv", "mask.png")):
        clip, masks = read_inputs(shot_files / video, shot_files / mask)
        files = ShotFiles(shot_files / video, shot_files / mask)
        assert files.count == count_frames(shot_files / video) == 30 and files.clip.size == clip.size
        for start, stop in ((0, 14), (8, 22), (16, 30), (3, 9)):  # overlapping, then back to an earlier frame
            frames, holes = files.window(start, stop)
            assert np.array_equal(frames, clip.frames[start:stop]) and np.array_equal(holes, masks[start:stop])
        files.close()
    with pytest.raises(InputError, match="30x20 but the video is 160x96"):
        ShotFiles(shot_files / "clip.mkv", shot_files / "small.png")


@pytest.mark.parametrize("preset,height,width,window", [
    ("fast", 270, 480, 100), ("fast", 1080, 1920, 100), ("fast", 2160, 3840, 60), ("fast", 2160, 4096, 56),
    ("fast", 4320, 7680, 21), ("paper", 2160, 3840, 100)])
def test_a_windows_frames_follow_the_plates_size(preset, height, width, window):
    """`fast` holds a DAVIS-length clip in one window and a large plate in fewer frames (shot.window_megapixels),
    never fewer than its batches need (5 frames at interval 5: 21); `paper` keeps its 100."""
    config = make_config(preset).for_frame_size(height, width)
    assert config.shot.window == window
    assert config.for_frame_size(height, width).shot.window == window  # fixed once: saved, it runs the same
    saved = make_config(preset).to_dict()
    del saved["shot"]["window_megapixels"]  # a config saved before the setting: no bound, as it ran then
    from vinpaint.engine.config import InpaintConfig
    assert InpaintConfig.from_dict(saved).for_frame_size(height, width).shot.window == make_config(preset).shot.window


def test_a_shot_cut_by_an_earlier_default_continues_in_its_windows(shot_files, tmp_path, capsys):
    """`fast` cut shots into 60 frames before 2026-12-02 and 100 since: a work directory cut the old way is
    continued in its own windows (here: 14 frames, where tiny's default is 100), not refused as another run,
    unless the user sets the windows or restarts."""
    base = ["inpaint", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o",
            str(tmp_path / "out.mkv"), "--preset", "tiny", "--quiet", "--set", "propagation.enabled=false",
            "--set", "train.max_steps=2", "--keep-work"]
    assert main(base + ["--set", "shot.window=14", "--set", "shot.overlap=4"]) == 0
    assert "3 computed in this run" in capsys.readouterr().out
    assert main(base + ["--overwrite"]) == 0
    out, err = capsys.readouterr()
    assert "continuing the work directory's windows of 14 frames sharing 4" in err
    assert "0 computed in this run" in out  # every window reused


def test_a_window_the_user_set_is_said_when_the_plate_lowers_it(shot_files, tmp_path, capsys):
    args = ["inpaint", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o", str(tmp_path / "o.mkv"),
            "--preset", "tiny", "--set", "shot.window=20", "--set", "shot.window_megapixels=0.2", "--check"]
    assert main(args) == 0
    assert "shot.window 20 lowered to 13 frames for this 160x96 plate" in capsys.readouterr().err


def test_the_command_fits_the_window_to_the_plate_and_saves_it(shot_files, tmp_path, capsys):
    """30 frames of 160x96 with 0.2 Mpx a window: 13 frames (0.2e6 / 15360), so the clip is a long shot of three;
    the check says so before anything is read."""
    args = ["inpaint", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o", str(tmp_path / "out.mkv"),
            "--preset", "tiny", "--set", "shot.window_megapixels=0.2", "--set", "shot.overlap=4", "--check"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 windows of 13 frames sharing at least 4" in out, out


@pytest.mark.slow
def test_the_command_writes_a_long_shot_window_by_window(shot, shot_files, tmp_path, one_thread, capsys):
    import torch

    from vinpaint.media.io import read_clip

    torch.set_num_threads(1)  # as _run's windows: float sums depend on how they are split over threads
    args = ["inpaint", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o", str(tmp_path / "out.mkv"),
            "-o", str(tmp_path / "frames"), "--preset", "tiny", "--quiet", "--set", "propagation.enabled=false",
            "--set", "train.max_steps=4", "--set", "shot.window=14", "--set", "shot.overlap=4"]
    assert main(args) == 0
    video, folder = read_clip(tmp_path / "out.mkv").frames, read_clip(tmp_path / "frames").frames
    hole = shot.masks.astype(bool)
    assert video.shape == shot.frames.shape and np.array_equal(video, folder)
    assert np.array_equal(video[~hole], shot.frames[~hole])
    expected, _, _ = _run(shot, _config(), tmp_path / "library")
    assert np.array_equal(video, expected)  # the command's frames are the library's
    assert sorted(p.name for p in (tmp_path / "out.work").iterdir() if p.is_dir()) == \
        ["window_0000", "window_0001", "window_0002"]
    assert len(list((tmp_path / "out.matte").glob("*.png"))) == 30
    # --check refuses as the run would: the work directory holds the shot cut into other windows (before,
    # 2026-12-02: "check passed", then the run refused)
    other = [*args[:-1], "shot.overlap=3"]
    capsys.readouterr()
    assert main([*other, "--check"]) == 2
    assert "holds another run (other frames, or a shot cut into other windows)" in capsys.readouterr().err
    assert main([*other, "--check", "--restart"]) == 0


def test_the_command_refuses_bad_ray_requests_in_one_sentence(shot_files, tmp_path, capsys, monkeypatch):
    common = ["inpaint", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o",
              str(tmp_path / "out.mkv"), "--preset", "tiny", "--set", "shot.window=14"]
    assert main(common + ["--ray-workers", "2"]) == 2
    assert "--ray-workers needs --ray" in capsys.readouterr().err
    assert main(common + ["--set", "shot.overlap=14"]) == 2
    assert "shot.overlap" in capsys.readouterr().err
    assert main(common + ["--set", "shot.window=4", "--set", "shot.overlap=1"]) == 2
    assert "raise shot.window" in capsys.readouterr().err
    assert main(common + ["--ray", "--device", "cuda:1"]) == 2  # Ray, not the command, places windows on GPUs
    err = capsys.readouterr().err
    assert "CUDA_VISIBLE_DEVICES=1" in err and "\n" not in err.strip()
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    assert main(common + ["--ray"]) == 2
    err = capsys.readouterr().err
    assert "vinpaint[ray]" in err and "Traceback" not in err
    assert not (tmp_path / "out.mkv").exists()


def test_a_bare_ray_flag_leaves_the_video_to_the_video_argument():
    from vinpaint.cli.shots import place_ray_flag

    assert place_ray_flag(["inpaint", "--ray", "clip.mp4", "-m", "m"]) == ["inpaint", "--ray=", "clip.mp4", "-m", "m"]
    for address in ("auto", "local", "10.1.2.3:6379", "head-node:6379", "ray://head:10001", "[::1]:6379"):
        assert place_ray_flag(["inpaint", "clip.mp4", "--ray", address]) == ["inpaint", "clip.mp4", "--ray", address]
    assert place_ray_flag(["inpaint", "clip.mp4", "--ray", "--ray-workers", "2"])[2] == "--ray"
    assert place_ray_flag(["inpaint", "--", "--ray", "x"]) == ["inpaint", "--", "--ray", "x"]


def test_ray_before_the_video_reads_the_video(shot_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    args = ["inpaint", "--ray", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o",
            str(tmp_path / "out.mkv"), "--preset", "tiny", "--set", "shot.window=14"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "vinpaint[ray]" in err and "required" not in err  # the clip was read as VIDEO, Ray was then asked for
    assert main(args + ["--ray-cpus", "2"]) == 2
    assert "--ray-cpus is for a Ray cluster" in capsys.readouterr().err


@pytest.mark.slow
def test_a_finished_shot_tidies_its_windows_and_saves_extras_per_window(shot, shot_files, tmp_path, capsys,
                                                                         one_thread):
    from vinpaint.engine.shot import KEPT_BY_TIDY
    from vinpaint.media.io import read_clip

    out = tmp_path / "out.mkv"
    args = ["inpaint", str(shot_files / "clip.mkv"), "-m", str(shot_files / "masks"), "-o", str(out), "--preset",
            "tiny", "--quiet", "--set", "propagation.enabled=false", "--set", "train.max_steps=2", "--set",
            "shot.window=14", "--set", "shot.overlap=4", "--save-generated", "--save-flows"]
    assert main(args) == 0
    assert "3 computed in this run" in capsys.readouterr().out
    windows = sorted((tmp_path / "out.work").glob("window_*"))
    assert len(windows) == 3
    for folder in windows:
        assert {p.name for p in folder.iterdir()} <= KEPT_BY_TIDY and (folder / "done.json").is_file()
    generated = sorted(p.name for p in (tmp_path / "out.generated").iterdir())
    assert generated == [MARKER] + [w.name for w in windows]  # marked: the next run replaces its windows
    assert sorted(p.stem for p in (tmp_path / "out.generated" / "window_0001").glob("*.png")) == \
        [f"{t:05d}" for t in range(8, 22)]  # the window's frames, by their index in the shot
    assert len(list((tmp_path / "out.flows" / "window_0002").glob("000*_+1.png"))) == 14
    first = read_clip(out).frames
    # tidied: the same run again trains every window again, and gives the same frames (no --overwrite needed: every
    # output, the folders of windows too, is vinpaint's)
    assert main(args + ["--keep-work"]) == 0
    assert "3 computed in this run" in capsys.readouterr().out
    assert np.array_equal(read_clip(out).frames, first)
    assert all((folder / "frames.npy").is_file() for folder in windows)  # kept this time
    assert main(args + ["--overwrite"]) == 0
    assert "0 computed in this run" in capsys.readouterr().out  # so this run reused them all
    assert np.array_equal(read_clip(out).frames, first)
    # fewer, longer windows over the same outputs: the extras hold this run's windows only, a user's folder stays
    (tmp_path / "out.generated" / "window_0009").mkdir()
    (tmp_path / "out.generated" / "window_0009" / "notes.txt").write_text("mine")
    longer = [a.replace("shot.window=14", "shot.window=22") for a in args]
    assert main(longer + ["--overwrite", "--restart"]) == 0
    assert "2 computed in this run" in capsys.readouterr().out
    for extra in ("out.generated", "out.flows"):
        assert sorted(p.name for p in (tmp_path / extra).iterdir() if p.name.startswith("window_")) == \
            ["window_0000", "window_0001"] + (["window_0009"] if extra == "out.generated" else [])
