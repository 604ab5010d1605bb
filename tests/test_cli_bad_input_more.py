"""More bad input to `vinpaint inpaint` and `compose`, from the 2026-12-03 hunt: each is one sentence, exit 2, before
any training, and nothing of the user's is touched. Before, each passed --check (or hung) and failed or wrote the
wrong thing later."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vinpaint.cli.main import main
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import write_png_sequence

from test_hostile_cli import one_sentence  # tests/ is on the path, as for daemon_fixtures

QUICK = ["--preset", "tiny", "--quiet", "--set", "train.max_steps=1"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """8 frames of 64x48 (a clip of one window), and 20 frames (a long shot with shot.window=12) with masks empty
    everywhere and with frame 15 covered whole."""
    folder = tmp_path_factory.mktemp("bad_input_clip")
    sample = make_sample(SampleConfig(frames=20, width=64, height=48, seed=5))
    masks = np.where(sample.masks, 255, 0).astype(np.uint8)
    write_png_sequence(folder / "frames", sample.frames[:8])
    write_png_sequence(folder / "masks", masks[:8])
    write_png_sequence(folder / "long", sample.frames)
    write_png_sequence(folder / "long_empty", np.zeros_like(masks))
    full_late = masks.copy()
    full_late[15] = 255
    write_png_sequence(folder / "long_full_late", full_late)
    return {"dir": folder, "frames": folder / "frames", "masks": folder / "masks", "long": folder / "long"}


def run_cli(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_an_output_on_the_first_outputs_matte_folder_is_refused(clip, tmp_path, capsys):
    """`-o e.mkv` writes its matte to e.matte/; `-o e.mkv -o e.matte` then wrote the frames and the matte into that
    one folder, exit 0, saying the frames were there (before, 2026-12-03)."""
    code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", tmp_path / "e.mkv", *QUICK)
    assert code == 0, err
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", tmp_path / "e.mkv",
                        "-o", tmp_path / "e.matte", *QUICK)
    assert code == 2
    one_sentence(err, rf"output \S+e\.matte is where this run writes its matte \(\S+e\.matte, beside the first "
                      rf"output \S+e\.mkv\); give the output another name\.$")
    assert snapshot(tmp_path) == before
    # the optional folders too, where asked for
    (tmp_path / "f.flows").mkdir()
    code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", tmp_path / "f.mkv",
                        "-o", tmp_path / "f.flows", "--save-flows", "--check", *QUICK)
    assert code == 2
    one_sentence(err, r"output \S+f\.flows is where this run writes its flow pictures")


def _mount_tmpfs(folder: Path) -> bool:
    folder.mkdir()
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_a_mount_point_as_an_output_is_refused_before_training(clip, tmp_path, capsys):
    """An empty mount point as a PNG folder output passed --check and failed after the training with "Device or
    resource busy" (a folder output is put in place by a rename), and so did every run after (before,
    2026-12-03)."""
    mount = tmp_path / "mnt"
    if not _mount_tmpfs(mount):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", mount, "--check",
                            *QUICK)
        assert code == 2
        one_sentence(err, rf"output {re.escape(str(mount))} is a mount point, which cannot be replaced; write into "
                          r"a folder inside it \(e\.g\. \S+mnt/clean\)\.$")
        assert os.listdir(mount) == []
        code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", mount / "clean",
                            "--check", *QUICK)
        assert code == 0, err  # a folder inside it is fine
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, timeout=30)


@pytest.mark.parametrize("kind", ["pipe", "huge"])
def test_compose_refuses_a_manifest_it_cannot_read_whole(tmp_path, kind):
    """`compose --manifest` read the file whole: a named pipe hung for ever, /dev/zero filled the memory."""
    manifest = tmp_path / "manifest.json"
    if kind == "pipe":
        os.mkfifo(manifest)
    else:
        with open(manifest, "wb") as handle:  # sparse: 17 MB of zeros that take no room
            handle.truncate(17 << 20)
    done = subprocess.run([sys.executable, "-m", "vinpaint", "compose", "--data", str(tmp_path), "-o",
                           str(tmp_path / "out"), "--manifest", str(manifest)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    says = "it is not a regular file" if kind == "pipe" else "it is over 16 MB, too big to be a manifest"
    one_sentence(done.stderr, rf"cannot read the manifest \S+manifest\.json: {says}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change,says", [
    ({"background_frames": 3}, "has background_frames of the wrong kind"),
    ({"mask_frames": [0, "1"]}, "has mask_frames of the wrong kind"),
    ({"mirror": "no"}, "has mirror of the wrong kind"),
    (None, "holds no readable settings"),
])
def test_compose_refuses_a_hand_written_manifest_of_the_wrong_kinds(tmp_path, change, says):
    """A frame list that is a number, or no "config": a TypeError and a KeyError traceback (a review found)."""
    import json

    entry = {"name": "a", "background": "vtest", "background_frames": [0, 1], "mask_source": "tennis",
             "mask_folder": "masks", "mask_frames": [0, 1], "mirror": False}
    manifest = {"version": 1, "config": {}, "clips": [entry]}
    if change is None:
        del manifest["config"]
    else:
        entry.update(change)
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    done = subprocess.run([sys.executable, "-m", "vinpaint", "compose", "--data", str(tmp_path), "-o",
                           str(tmp_path / "out"), "--manifest", str(tmp_path / "m.json")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    one_sentence(done.stderr, ".*" + re.escape(says))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setting", ["loss.vgg_weights", "flow.raft_weights"])
def test_a_weights_file_under_an_unknown_users_home_is_one_sentence(clip, tmp_path, capsys, setting):
    """`~0/vgg.pth` (no user "0"): pathlib's expanduser raised RuntimeError, a traceback (the settings fuzzer found
    it, 2026-12-03). Taken as the shell takes it: a path that starts with `~0`, which is not there."""
    code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", tmp_path / "x.mkv",
                        "--check", *QUICK, "--set", f"{setting}=~nosuchuser34/w.pth",
                        *(["--set", "flow.estimator=raft"] if setting.startswith("flow") else []))
    assert code == 2, err
    one_sentence(err, r".*~nosuchuser34/w\.pth")


def test_the_set_that_continues_another_run_is_taken_by_set(clip, tmp_path, capsys):
    """The advice said `--set train.intervals=1,3`, which --set refuses ("must be a list ... not '1,3'")."""
    args = ["inpaint", clip["frames"], "--mask", clip["masks"], "-o", tmp_path / "s.mkv", *QUICK]
    code, err = run_cli(capsys, *args, "--set", "train.intervals=[1,3]")
    assert code == 0, err
    code, err = run_cli(capsys, *args, "--set", "train.intervals=[1]", "--check")
    assert code == 2
    advice = re.search(r"; add (--set .+) to continue it, give another --work-dir", err)
    assert advice, err
    given = shlex.split(advice.group(1))  # as the shell passes it back
    assert given == ["--set", "train.intervals=[1,3]"], err
    code, err = run_cli(capsys, *args, "--set", "train.intervals=[1]", *given, "--check")
    assert code == 0, err


def test_the_video_frames_as_the_mask_are_refused(clip, tmp_path, capsys):
    """A mask folder that is the frames folder read as a 73 % hole, exit 0 (before, 2026-12-03)."""
    for mask in (clip["frames"], clip["dir"] / "." / "frames"):
        code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", mask, "-o", tmp_path / "x.mkv", "--check",
                            *QUICK)
        assert code == 2
        one_sentence(err, r"the mask \S+frames is the video's own frames \(\S+frames\); give the mask's own folder")
    # a frame pattern, spelled another way
    code, err = run_cli(capsys, "inpaint", clip["frames"] / "%05d.png", "--mask", clip["frames"] / "#####.png",
                        "-o", tmp_path / "x.mkv", "--check", *QUICK)
    assert code == 2
    one_sentence(err, r"the mask \S+#####\.png is the video's own frames")
    assert os.listdir(tmp_path) == []


def test_submit_refuses_the_video_frames_as_the_mask_before_the_daemon_is_asked(clip, tmp_path, capsys):
    """`vinpaint submit` read them as a mask (the check was the inpaint command's alone): said before any
    connection, here to an address where no daemon listens."""
    code, err = run_cli(capsys, "submit", clip["frames"], "--mask", clip["frames"], "-o", tmp_path / "x.mkv",
                        "--server", "tcp://127.0.0.1:9")
    assert code == 2
    one_sentence(err, r"the mask \S+frames is the video's own frames")
    assert os.listdir(tmp_path) == []


def test_plates_whose_alpha_marks_the_object_are_their_own_mask(clip, tmp_path, capsys):
    """RGBA plates whose alpha is the matte, given as their own mask: the mask reader takes that alpha (a review
    found `same_frames` refused them)."""
    import cv2

    plates = tmp_path / "plates"
    plates.mkdir()
    sample = make_sample(SampleConfig(frames=8, width=64, height=48, seed=5))
    for i, (frame, hole) in enumerate(zip(sample.frames, sample.masks)):
        alpha = np.where(hole, 0, 255).astype(np.uint8)  # transparent where the object is
        cv2.imwrite(str(plates / f"{i:05d}.png"), np.dstack([frame[..., ::-1], alpha]))
    code, err = run_cli(capsys, "inpaint", plates, "--mask", plates, "--invert-mask", "-o", tmp_path / "x.mkv",
                        "--check", *QUICK)
    assert code == 0, err


@pytest.mark.parametrize("option,says", [(["--ray-workers", "0"], "--ray-workers needs --ray"),
                                         (["--ray-cpus", "2"], "--ray-cpus needs --ray"),
                                         (["--ray", "--ray-workers", "0"], "--ray-workers must be at least 1")])
def test_ray_options_without_ray_are_refused_for_a_clip_of_one_window(clip, tmp_path, capsys, option, says):
    """A long shot refused them; a clip of one window took them in silence."""
    code, err = run_cli(capsys, "inpaint", clip["frames"], "--mask", clip["masks"], "-o", tmp_path / "x.mkv",
                        "--check", *option, *QUICK)
    assert code == 2
    one_sentence(err, re.escape(says))


@pytest.mark.parametrize("mask,says", [("long_empty", r"the mask is empty: no frame marks anything"),
                                       ("long_full_late", r"the mask covers all of frame 15: nothing is left")])
def test_a_long_shots_mask_is_checked_whole_before_training(clip, tmp_path, capsys, mask, says):
    """Only the first window was checked: an empty mask wrote a copy of the plate with exit 0, and a full frame 15
    failed after window 0 trained, naming "frame 7" (its index in the second window)."""
    code, err = run_cli(capsys, "inpaint", clip["long"], "--mask", clip["dir"] / mask, "-o", tmp_path / "x.mkv",
                        "--set", "shot.window=12", "--set", "shot.overlap=4", *QUICK)
    assert code == 2
    one_sentence(err, says)
    assert os.listdir(tmp_path) == []
