"""`vinpaint inpaint` and `vinpaint demo` from the outside: bad input is one sentence and exit 2 with nothing
written; a tiny-preset run writes every output, keeps the source's pixels outside the hole, continues after an
interruption, and gives the same frames as an uninterrupted run with the same seed."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vinpaint.engine import InpaintConfig
from vinpaint.engine.composite import dilate_holes
from vinpaint.media.io import read_clip, read_image
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import write_png, write_png_sequence, write_video
from vinpaint.cli.main import main

SMALL = SampleConfig(frames=12, width=160, height=96, seed=5)
"""12 frames: the tiny preset's batches of 3 at interval 5 need 11."""


def vinpaint(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "vinpaint", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> dict[str, Path]:
    """The small sample as a lossless video with a PNG mask folder, plus a few broken variants."""
    folder = tmp_path_factory.mktemp("clip")
    sample = make_sample(SMALL)
    write_video(folder / "clip.mkv", sample.frames, 24)
    masks = np.where(sample.masks, 255, 0).astype(np.uint8)
    write_png_sequence(folder / "masks", masks)
    write_png_sequence(folder / "masks_short", masks[:9])
    write_png_sequence(folder / "masks_small", masks[:, :80, :120])
    write_png_sequence(folder / "masks_empty", np.zeros_like(masks))
    write_png_sequence(folder / "masks_full", np.full_like(masks, 255))
    write_png(folder / "static.png", masks[3])
    write_video(folder / "short.mkv", sample.frames[:5], 24)
    return {"dir": folder, "video": folder / "clip.mkv", "masks": folder / "masks", "frames": sample.frames,
            "holes": sample.masks}


def outputs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- bad input: one sentence, exit 2, nothing written ---------------------------------------------------------------

def test_missing_video_as_a_user_sees_it(clip_files, tmp_path):
    done = vinpaint("inpaint", tmp_path / "nope.mp4", "--mask", clip_files["masks"], "-o", tmp_path / "out.mkv")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"vinpaint: error: input {tmp_path / 'nope.mp4'} does not exist."]
    assert outputs_in(tmp_path) == []


def test_frame_count_mismatch_as_a_user_sees_it(clip_files, tmp_path):
    done = vinpaint("inpaint", clip_files["video"], "--mask", clip_files["dir"] / "masks_short",
                    "-o", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(r"vinpaint: error: the mask \S+ has 9 frames but the video has 12; give one mask per "
                        r"frame, or a single image for a static mask\.\n", done.stderr)
    assert outputs_in(tmp_path) == []


def test_empty_mask_as_a_user_sees_it(clip_files, tmp_path):
    done = vinpaint("inpaint", clip_files["video"], "--mask", clip_files["dir"] / "masks_empty",
                    "-o", tmp_path / "out.mp4", "--preset", "tiny")
    assert done.returncode == 2
    assert done.stderr.startswith("vinpaint: error: the mask is empty") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and outputs_in(tmp_path) == []


@pytest.mark.parametrize("mask", ["masks_empty", "masks_full"])
def test_submit_refuses_a_mask_with_nothing_to_learn_before_any_upload(clip_files, tmp_path, mask):
    """As `inpaint` does, before the daemon is asked (none listens here). Before (a hunt, 2026-12-03): the clip was
    uploaded and queued, and the job failed on the daemon."""
    done = vinpaint("submit", clip_files["video"], "--mask", clip_files["dir"] / mask, "-o", tmp_path / "out.mkv",
                    "--server", "tcp://127.0.0.1:9", "--wait")
    assert done.returncode == 2, done.stderr
    says = "the mask is empty" if mask == "masks_empty" else "the mask covers all of frame 0"
    assert done.stderr.startswith(f"vinpaint: error: {says}") and done.stderr.count("\n") == 1, done.stderr
    assert outputs_in(tmp_path) == []


@pytest.mark.parametrize("mask,extra,expected", [
    ("masks_small", [], r"the mask \S+ is 120x80 but the video is 160x96"),
    ("masks_full", [], r"the mask covers all of frame 0"),
    ("masks_empty", ["--invert-mask"], r"the mask covers all of frame 0"),  # black = remove: all of it
    ("masks", ["--work-width", "32"], r"setting resolution.work_width must be a multiple of 64 from 64 to 2048, not 32"),
    ("masks", ["--codec", "ffv1", "-o", "{tmp}/also.mp4"], r"codec ffv1 cannot go in a \.mp4 file"),
    ("masks", ["-o", "{tmp}/out.gif"], r"cannot write '\.gif' files"),
    ("masks", ["--set", "train.nope=1"], r"unknown setting 'train.nope'"),
    ("masks", ["--set", "train.max_steps=lots"], r"setting train.max_steps must be a whole number from 0 to 100000000, not 'lots'"),
    ("masks", ["--set", "train.intervals=[1, 2.5]"], r"setting train.intervals must be a list of 1 to 3 whole numbers taken from 1, 3, 5, not \[1, 2.5\]"),
    ("masks", ["--set", "train"], r"--set takes KEY=VALUE"),
    ("masks", ["--config", "{tmp}/../nothing.json"], r"cannot use \S+nothing.json as a config"),
    ("masks", ["--variant", "dip-vid", "--save-flows"], r"--save-flows needs a variant with a flow head"),
    ("masks", ["--fps", "0"], r"--fps must be positive"),
    ("masks", ["--fps", "1/0"], r"--fps takes a frame rate such as 24, 29.97 or 30000/1001, not '1/0'"),
    ("masks", ["--device", "cuda:99"], r"device cuda:99 is not available"),
    ("masks", ["--set", "train.learning_rate=NaN"], r"setting train.learning_rate must be a finite number above 0 .*, not NaN"),
    ("masks", ["--set", "mask.dilation=100000"], r"setting mask.dilation must be a whole number from 0 to 512, not 100000"),
    ("masks", ["--pause-after", "0"], r"--pause-after must be at least 1 step"),
    ("masks", ["--config", "{tmp}/../nothing.json", "--preset", "fast"], r"--config and --preset both choose"),
    ("masks", ["--config", "{tmp}/../nothing.json", "--variant", "dip"], r"--config and --variant both choose"),
    ("masks", ["--dilate", "-1"], r"setting mask.dilation must be a whole number from 0 to 512, not -1"),
    # grown, the hole would cover a whole frame (before: exit 0 with every pixel of every frame made up)
    ("masks", ["--dilate", "200"], r"the mask grown by mask.dilation = 200 pixels \(--dilate\) covers all of frame 0"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(clip_files, tmp_path, capsys, mask, extra, expected):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    preset = [] if "--config" in extra else ["--preset", "tiny"]  # a saved config holds its own preset
    code = main(["inpaint", str(clip_files["video"]), "--mask", str(clip_files["dir"] / mask),
                 "-o", str(tmp_path / "out"), *preset, "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert re.match("vinpaint: error: " + expected, err), err
    assert err.count("\n") == 1
    assert outputs_in(tmp_path) == []


def test_too_few_frames_for_the_flow_intervals_trains_on_the_intervals_that_fit(clip_files, tmp_path, capsys):
    code = main(["inpaint", str(clip_files["dir"] / "short.mkv"), "--mask", str(clip_files["dir"] / "static.png"),
                 "-o", str(tmp_path / "out.mkv"), "--preset", "tiny", "--quiet"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "the clip has 5 frames, too few for batches of 3 at interval 5: training on batches of 3 at " \
        "interval 1" in said.out + said.err
    assert read_clip(tmp_path / "out.mkv").frames.shape[0] == 5
    saved = json.loads((tmp_path / "out.config.json").read_text())  # what ran is saved
    assert saved["train"]["intervals"] == [1] and saved["train"]["batch_size"] == 3


def test_output_may_not_overwrite_the_input(clip_files, capsys):
    code = main(["inpaint", str(clip_files["video"]), "--mask", str(clip_files["masks"]),
                 "-o", str(clip_files["video"]), "--preset", "tiny"])
    assert code == 2 and "is or holds the input" in capsys.readouterr().err
    code = main(["inpaint", str(clip_files["video"]), "--mask", str(clip_files["masks"]),
                 "-o", str(clip_files["dir"]), "--preset", "tiny"])
    assert code == 2 and "is or holds the input" in capsys.readouterr().err


def test_a_folder_with_other_things_in_it_is_never_replaced(clip_files, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code = main(["inpaint", str(clip_files["video"]), "--mask", str(clip_files["masks"]),
                 "-o", str(tmp_path / "mine"), "--preset", "tiny"])
    assert code == 2 and "holds files that vinpaint did not write" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ---- a real run with the tiny preset -------------------------------------------------------------------------------

def check_outside_hole(result: np.ndarray, source: np.ndarray, holes: np.ndarray, dilation: int = 0) -> None:
    keep = ~dilate_holes(holes, dilation)
    np.testing.assert_array_equal(result[keep], source[keep])
    assert not np.array_equal(result, source)  # and the hole did change


@pytest.mark.slow
def test_a_run_stopped_with_restart_in_its_command_says_to_continue_without_it(clip_files, tmp_path):
    """Before: "run the same command again to continue", and the same command's --restart discarded the checkpoint
    it had just saved, stopping at the same step on every try."""
    common = [clip_files["video"], "--mask", clip_files["masks"], "--preset", "tiny", "--seed", "3",
              "--set", "propagation.enabled=false", "-o", tmp_path / "out.mkv"]
    first = vinpaint("inpaint", *common, "--restart", "--pause-after", "1")
    assert first.returncode == 130, first.stderr
    assert "run the same command without --restart to continue" in first.stderr
    second = vinpaint("inpaint", *common)
    assert second.returncode == 0, second.stderr
    assert "(continuing the run found there)" in second.stdout


@pytest.mark.slow
def test_interrupted_run_continues_and_matches_an_uninterrupted_one(clip_files, tmp_path, capsys):
    common = [clip_files["video"], "--mask", clip_files["masks"], "--preset", "tiny", "--seed", "3",
              "--set", "propagation.enabled=false"]  # training is what resumes (propagation fills this clip)
    first = vinpaint("inpaint", *common, "-o", tmp_path / "out.mkv", "-o", tmp_path / "out", "--pause-after", "2")
    assert first.returncode == 130, first.stderr
    assert re.search(r"training stopped at step 2 of \d+; checkpoint saved", first.stderr)
    assert "run the same command again to continue" in first.stderr
    assert f"work directory: {tmp_path / 'out.work'}" in first.stdout
    assert (tmp_path / "out.work" / "checkpoint.pt").is_file()
    assert outputs_in(tmp_path) == ["out.work"]               # nothing half-written beside it

    second = vinpaint("inpaint", *common, "-o", tmp_path / "out.mkv", "-o", tmp_path / "out")
    assert second.returncode == 0, second.stderr
    assert "(continuing the run found there)" in second.stdout
    assert "done: 6 training steps" in second.stdout
    assert '"seed": 3' in second.stdout                        # the resolved config is printed
    assert outputs_in(tmp_path) == ["out", "out.before_after.png", "out.config.json", "out.loss.png",
                                    "out.matte", "out.mkv", "out.work"]
    matte = read_clip(tmp_path / "out.matte").frames[..., 0]  # white: propagated, grey: generated, black: source
    assert np.array_equal(matte > 0, clip_files["holes"]) and set(np.unique(matte)) <= {0, 128, 255}
    video = read_clip(tmp_path / "out.mkv")
    assert video.fps == 24 and video.frames.shape == clip_files["frames"].shape
    check_outside_hole(video.frames, clip_files["frames"], clip_files["holes"])
    np.testing.assert_array_equal(read_clip(tmp_path / "out").frames, video.frames)  # lossless both ways
    config = InpaintConfig.from_dict(json.loads((tmp_path / "out.config.json").read_text()))
    assert config.preset == "tiny" and config.train.seed == 3

    # in this process: the two runs above were the command as a user starts it
    common = [str(item) for item in common]
    capsys.readouterr()
    assert main(["inpaint", *common, "-o", str(tmp_path / "straight.mkv"), "--quiet"]) == 0
    assert "continuing" not in capsys.readouterr().out
    np.testing.assert_array_equal(read_clip(tmp_path / "straight.mkv").frames, video.frames)

    assert main(["inpaint", *common, "-o", str(tmp_path / "out.mkv"), "--codec", "x264rgb", "--quiet"]) == 0
    assert "finished earlier; reusing its result" in capsys.readouterr().err
    np.testing.assert_array_equal(read_clip(tmp_path / "out.mkv").frames, video.frames)


@pytest.mark.slow
def test_changed_settings_need_restart(clip_files, tmp_path, capsys):
    args = ["inpaint", str(clip_files["video"]), "--mask", str(clip_files["masks"]), "-o", str(tmp_path / "r.mkv"),
            "--preset", "tiny", "--quiet", "--set", "train.max_steps=1"]
    assert main(args) == 0
    capsys.readouterr()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "r.work").iterdir())
    assert main(args + ["--seed", "9", "--check"]) == 2  # before: "check passed", then the run refused
    checked = capsys.readouterr().err
    assert "holds a run of other settings (train.seed=" in checked
    assert main(args + ["--seed", "9", "--check", "--restart"]) == 0
    capsys.readouterr()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "r.work").iterdir()) == before
    assert main(args + ["--seed", "9"]) == 2
    err = capsys.readouterr().err
    assert err == checked
    # the setting that differs is named, with how to continue that run
    advice = re.search(r"holds a run of other settings \(train\.seed=(\d+) there\); add (--set train\.seed=\d+) to "
                       r"continue it, give another --work-dir, or add --restart", err)
    assert advice and advice.group(2) == f"--set train.seed={advice.group(1)}", err
    assert main(args + ["--seed", "9", *advice.group(2).split()]) == 0
    assert "finished earlier; reusing its result" in capsys.readouterr().err
    assert main(args + ["--seed", "9", "--restart"]) == 0


@pytest.mark.slow
def test_ctrl_c_stops_with_a_checkpoint(clip_files, tmp_path):
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip_files["video"]), "--mask",
               str(clip_files["masks"]), "-o", str(tmp_path / "out.mkv"), "--preset", "tiny",
               "--set", "train.max_steps=0",  # the whole tiny schedule: long enough to interrupt
               "--set", "propagation.enabled=false"]  # propagation alone would fill this clip's hole
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = ""
    deadline = time.monotonic() + 240
    while "training" not in seen and time.monotonic() < deadline and process.poll() is None:
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 130, seen + err
    assert re.search(r"training stopped at step \d+ of 36; checkpoint saved", err)
    assert (tmp_path / "out.work" / "checkpoint.pt").is_file() and not (tmp_path / "out.mkv").exists()


@pytest.mark.slow
def test_sixteen_bit_frames_static_mask_and_extras(clip_files, tmp_path):
    deep = clip_files["frames"].astype(np.uint16) * 257 + 3
    write_png_sequence(tmp_path / "deep", deep, names=[f"shot.{1001 + i}" for i in range(len(deep))])
    static = clip_files["dir"] / "static.png"
    code = main(["inpaint", str(tmp_path / "deep"), "--mask", str(static), "-o", str(tmp_path / "res"),
                 "--preset", "tiny", "--dilate", "2", "--feather", "2", "--save-generated", "--save-flows",
                 "--quiet"])
    assert code == 0
    result = read_clip(tmp_path / "res")
    assert result.frames.dtype == np.uint16 and result.names[0] == "shot.1001"
    holes = np.broadcast_to(read_image(static)[None, ..., 0] > 127, deep.shape[:3])
    check_outside_hole(result.frames, deep, holes, dilation=2)
    generated = read_clip(tmp_path / "res.generated")
    assert generated.frames.dtype == np.uint16 and generated.frames.shape == (12, 64, 128, 3)
    flows = sorted(p.name for p in (tmp_path / "res.flows").iterdir() if p.name != ".vinpaint-output")
    assert "wheel.png" in flows and "shot.1001_+1.png" not in flows and "00000_+1.png" in flows
    assert len(flows) == 12 * 6 + 1


def test_a_clip_shorter_than_the_batches_is_inpainted_with_a_notice(tmp_path, capsys):
    code = main(["demo", "-o", str(tmp_path / "demo"), "--frames", "8", "--preset", "tiny", "--quiet"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "the clip has 8 frames, too few for batches of 3 at interval 5" in said.out + said.err
    assert read_clip(tmp_path / "demo" / "result").frames.shape[0] == 8


@pytest.mark.slow
def test_demo_reports_hole_psnr(tmp_path):
    done = vinpaint("demo", "-o", tmp_path / "demo", "--preset", "tiny", "--frames", "12", "--quiet")
    assert done.returncode == 0, done.stderr
    psnr = re.search(r"hole PSNR against the true background: ([\d.]+) dB .* Telea fill of the same hole: "
                     r"([\d.]+) dB", done.stdout)
    assert psnr and 5 < float(psnr.group(1)) < 60 and 5 < float(psnr.group(2)) < 60
    assert outputs_in(tmp_path / "demo") == ["result", "result.before_after.png", "result.config.json",
                                             "result.loss.png", "result.matte", "result.mp4", "result.work",
                                             "sample"]
    assert read_clip(tmp_path / "demo" / "result.mp4").frames.shape == (12, 180, 320, 3)

    # Another sample in the same folder (other --frames or --seed) is refused before the earlier one is touched:
    # its results beside it were made from it.
    kept = {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file() and ".work" not in str(p)}
    for other in (["--frames", "13"], ["--frames", "12", "--seed", "3"]):
        again = vinpaint("demo", "-o", tmp_path / "demo", "--preset", "tiny", "--quiet", *other)
        assert again.returncode == 2, again.stderr
        assert f"{tmp_path / 'demo' / 'sample'} holds the sample clip of another demo run (other --frames or " \
               "--seed); add --restart to replace it and start over, or give another -o." in again.stderr
        assert {p: p.read_bytes() for p in kept} == kept
