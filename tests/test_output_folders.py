"""A user's files and finished work in and around outputs, found by a hostile review (2026-12-01): an output folder
of PNGs is replaced whole, so it is replaced only while it holds nothing but what vinpaint wrote there; nothing is
written inside one; outputs are put in place together; and damaged work files are one sentence. Real files, the
real CLI; each test failed before the change it guards."""
from __future__ import annotations

import hashlib
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

from vinpaint.cli.main import main
from vinpaint.media.io import read_clip
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import MARKER, write_png_sequence, write_video

SMALL = SampleConfig(frames=6, width=64, height=48, seed=3)
QUICK = ["--preset", "tiny", "--quiet", "--set", "train.max_steps=1", "--set", "loss.perceptual=0",
         "--set", "propagation.enabled=false"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("output_folders_clip")
    sample = make_sample(SMALL)
    write_video(folder / "clip.mkv", sample.frames, 24)
    write_png_sequence(folder / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    return {"video": folder / "clip.mkv", "masks": folder / "masks", "frames": sample.frames,
            "holes": sample.masks}


def refused(capsys, args, pattern: str) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert re.search(r"^vinpaint: error: " + pattern, err, re.M), err
    return err


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def inpaint(clip, out: Path, *extra) -> int:
    return main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK, *extra]])


@pytest.mark.parametrize("change", ["a note", "a retouched frame", "a matte note"])
def test_an_output_folder_holding_what_vinpaint_did_not_write_is_kept(clip, tmp_path, capsys, change):
    """Before: a re-run replaced the marked folder whole, and a user's notes.txt, a frame retouched in another
    program (it loses vinpaint's mark) and a note in the matte folder went with it, without a word."""
    out = tmp_path / "out"
    assert inpaint(clip, out) == 0
    capsys.readouterr()
    if change == "a note":
        (out / "notes.txt").write_text("the client wants frame 3 warmer\n")
    elif change == "a retouched frame":
        first = sorted(out.glob("*.png"))[0]
        picture = cv2.imread(str(first))
        picture[0, 0] = (0, 255, 0)
        cv2.imwrite(str(first), picture)  # as any other program writes it: no vinpaint mark
    else:
        (tmp_path / "out.matte" / "keep.txt").write_text("mine\n")
    before = {**digests(out), **{f"matte/{k}": v for k, v in digests(tmp_path / "out.matte").items()}}
    where = "out.matte" if change == "a matte note" else "out"
    named = {"a note": r"notes\.txt", "a retouched frame": r"00000\.png", "a matte note": r"keep\.txt"}[change]
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK, "--feather", "1"],
            rf"output folder \S+{where} was written by vinpaint but now holds what vinpaint did not write there "
            rf"\({named}: ")
    assert {**digests(out), **{f"matte/{k}": v for k, v in digests(tmp_path / "out.matte").items()}} == before
    assert inpaint(clip, out, "--feather", "1", "--overwrite") == 0  # asked for: replaced whole
    assert (out / MARKER).is_file() and not (out / "notes.txt").exists()


def test_an_untouched_output_folder_is_still_replaced(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert inpaint(clip, out) == 0
    first, folder = digests(out), os.stat(out).st_ino
    assert inpaint(clip, out, "--feather", "1") == 0
    assert digests(out).keys() == first.keys() and os.stat(out).st_ino != folder  # a new folder swapped in


def test_nothing_is_written_inside_another_runs_output_folder(clip, tmp_path, capsys):
    """Before: `-o clean/v2.mkv` was accepted inside the folder output `clean`, and the next run of `-o clean`
    replaced the folder with v2.mkv, its matte and its work directory (checkpoint included) inside."""
    assert inpaint(clip, tmp_path / "clean") == 0
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "clean" / "v2.mkv",
                     *QUICK], r"output \S+v2\.mkv lies inside the output folder \S+clean of another run, which "
                              r"that run replaces whole")
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "v3.mkv",
                     "--work-dir", tmp_path / "clean" / "work", *QUICK],
            r"the work directory \S+work lies inside the output folder \S+clean of another run")
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == \
        sorted([MARKER] + [f"{i:05d}.png" for i in range(SMALL.frames)])


@pytest.mark.parametrize("where", ["cwd by its full name", "a parent of cwd", "holding a folder"])
def test_overwrite_never_replaces_the_current_folder_or_one_holding_a_folder(clip, tmp_path, capsys, monkeypatch,
                                                                             where):
    """Before: `-o <the folder the shell stands in, by its full path> --overwrite` replaced it whole (a thesis,
    its subfolders and the shell's own folder gone); `-o .` was refused, the same folder by name was not."""
    home = tmp_path / "sandbox"
    (home / "sub").mkdir(parents=True)
    (home / "thesis.txt").write_text("chapter 1\n")
    before = digests(home)
    target = {"cwd by its full name": home, "a parent of cwd": home, "holding a folder": home}[where]
    monkeypatch.chdir(home if where == "cwd by its full name" else home / "sub" if where == "a parent of cwd"
                      else tmp_path)
    pattern = r"output folder \S+sandbox holds the folder sub/" if where == "holding a folder" else \
        r"output folder \S+sandbox is the current folder or holds it"
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", target, "--overwrite", *QUICK], pattern)
    assert digests(home) == before and (home / "sub").is_dir()


def numbered_folders(tmp_path: Path, clip, frame_numbers, mask_numbers) -> tuple[Path, Path]:
    sample = make_sample(SMALL)
    frames, masks = tmp_path / "plates", tmp_path / "mattes"
    frames.mkdir()
    masks.mkdir()
    for i, n in enumerate(frame_numbers):
        cv2.imwrite(str(frames / f"{n:04d}.png"), cv2.cvtColor(sample.frames[i], cv2.COLOR_RGB2BGR))
    for i, n in enumerate(mask_numbers):
        cv2.imwrite(str(masks / f"m{n:04d}.png"), np.where(sample.masks[i], 255, 0).astype(np.uint8))
    return frames, masks


def test_folders_missing_different_frames_are_refused_not_paired_by_position(clip, tmp_path, capsys):
    """Before: frames without 0003 and masks without 0001 (five files each) were paired by position, so frame 2
    got mask 3's hole and the object stayed half in, without a word."""
    frames, masks = numbered_folders(tmp_path, clip, [0, 1, 2, 4, 5], [0, 2, 3, 4, 5])
    refused(capsys, ["inpaint", frames, "--mask", masks, "-o", tmp_path / "out.mkv", *QUICK],
            r"the mask folder \S+mattes does not number its files as the frames in \S+plates \(it has no mask for "
            r"frame 1 and it has a mask for frame 3, which the frames lack\)")
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.parametrize("long_shot", [False, True])
def test_two_frames_of_one_name_are_refused_before_one_overwrites_the_other(clip, tmp_path, capsys, long_shot):
    """Before: a folder of a.jpg, a.png, b.jpg, b.png ... ran, and the PNG folder output held a.png, b.png ...:
    half the results written over the other half, exit 0."""
    (tmp_path / "plates").mkdir()
    (tmp_path / "mattes").mkdir()
    for i, frame in enumerate(clip["frames"]):
        name = "abc"[i // 2] + (".png" if i % 2 else ".jpg")
        cv2.imwrite(str(tmp_path / "plates" / name), frame[..., ::-1])
        cv2.imwrite(str(tmp_path / "mattes" / f"m{i}.png"), np.where(clip["holes"][i], 255, 0).astype(np.uint8))
    window = ["--set", "shot.window=4", "--set", "shot.overlap=1"] if long_shot else []
    refused(capsys, ["inpaint", tmp_path / "plates", "--mask", tmp_path / "mattes", "-o", tmp_path / "out", *QUICK,
                     *window], r"folder \S+plates holds a.jpg and a.png, two frames of one name: the outputs are "
                               r"named after the frames, so one would overwrite the other; keep one of them there\.$")
    assert not (tmp_path / "out").exists()


def test_masks_counted_from_another_first_number_still_pair_and_a_gap_is_said(clip, tmp_path, capsys):
    frames, masks = numbered_folders(tmp_path, clip, [1, 2, 3, 5, 6], [0, 1, 2, 4, 5])
    assert main([str(a) for a in ["inpaint", frames, "--mask", masks, "-o", tmp_path / "out.mkv",
                                  "--preset", "tiny", "--set", "train.max_steps=1", "--set", "loss.perceptual=0",
                                  "--set", "propagation.enabled=false"]]) == 0
    err = capsys.readouterr().err
    assert re.search(r"\S+plates skips frame number 4: its frames are taken one after another", err), err


def rerun_refused(capsys, clip, tmp_path, pattern: str, *extra) -> None:
    """The run of work_run() again (with `extra` options), refused with one sentence matching `pattern`."""
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "clean.mkv", *QUICK,
                     "--set", "propagation.enabled=true", *extra], pattern)


def work_run(clip, tmp_path) -> Path:
    assert inpaint(clip, tmp_path / "clean.mkv", "--set", "propagation.enabled=true") == 0
    return tmp_path / "clean.work"


def test_a_checkpoint_of_another_model_is_one_sentence_and_kept(clip, tmp_path, capsys):
    """Before: a checkpoint of another network (copied in by hand) was a RuntimeError traceback."""
    work = work_run(clip, tmp_path)
    state = torch.load(work / "checkpoint.pt", weights_only=True)
    state["model"] = {name: torch.zeros(3) for name in state["model"]}
    torch.save(state, work / "checkpoint.pt")
    before = (work / "checkpoint.pt").read_bytes()
    (work / "result.npz").unlink()
    rerun_refused(capsys, clip, tmp_path, r"the checkpoint \S+checkpoint\.pt does not fit this run's model \(",
                  "--set", "train.max_steps=2")
    assert (work / "checkpoint.pt").read_bytes() == before


@pytest.mark.parametrize("damage", ["empty history row", "no elapsed"])
def test_a_checkpoint_missing_its_parts_is_one_sentence(clip, tmp_path, capsys, damage):
    work = work_run(clip, tmp_path)
    state = torch.load(work / "checkpoint.pt", weights_only=True)
    if damage == "empty history row":
        state["history"] = [[]]
    else:
        state["elapsed"] = "soon"
    torch.save(state, work / "checkpoint.pt")
    (work / "result.npz").unlink()
    rerun_refused(capsys, clip, tmp_path, r"the checkpoint \S+checkpoint\.pt is not a vinpaint checkpoint \(",
                  "--set", "train.max_steps=2")


def test_a_cached_result_with_a_damaged_history_leaves_the_outputs_as_they_were(clip, tmp_path, capsys):
    """Before: a 1-D loss history in result.npz failed (IndexError) after the video and matte were rewritten."""
    work = work_run(clip, tmp_path)
    with np.load(work / "result.npz") as z:
        arrays = dict(z)
    arrays["history"] = np.arange(5, dtype=np.float32)
    np.savez(work / "result.npz", **arrays)
    video = (tmp_path / "clean.mkv").read_bytes()
    rerun_refused(capsys, clip, tmp_path,
                  r"the cached result \S+result\.npz is damaged or not vinpaint's \(a loss history of shape \(5,\)\)",
                  "--feather", "2")
    assert (tmp_path / "clean.mkv").read_bytes() == video


def test_a_propagation_cache_of_another_clip_is_made_again(clip, tmp_path, capsys):
    """Before: a propagation.npz of a 5-frame clip in a 6-frame run's work directory was an IndexError."""
    work = work_run(clip, tmp_path)
    first = read_clip(tmp_path / "clean.mkv").frames
    with np.load(work / "propagation.npz") as z:
        arrays = dict(z)
    assert [int(v) for v in arrays["shape"]] == [SMALL.frames, SMALL.height, SMALL.width]
    other = tmp_path / "other"
    small = make_sample(SampleConfig(frames=5, width=64, height=48, seed=3))
    other.mkdir()
    write_video(other / "clip.mkv", small.frames, 24)
    write_png_sequence(other / "masks", np.where(small.masks, 255, 0).astype(np.uint8))
    assert main([str(a) for a in ["inpaint", other / "clip.mkv", "--mask", other / "masks", "-o",
                                  other / "o.mkv", *QUICK, "--set", "propagation.enabled=true"]]) == 0
    shutil.copyfile(other / "o.work" / "propagation.npz", work / "propagation.npz")
    (work / "result.npz").unlink()
    (tmp_path / "clean.mkv").unlink()
    assert inpaint(clip, tmp_path / "clean.mkv", "--set", "propagation.enabled=true") == 0
    np.testing.assert_array_equal(read_clip(tmp_path / "clean.mkv").frames, first)
    with np.load(work / "propagation.npz") as z:
        assert [int(v) for v in z["shape"]] == [SMALL.frames, SMALL.height, SMALL.width]


def test_a_damaged_run_record_says_so(clip, tmp_path, capsys):
    """Before: a damaged run.json read as "holds a run of other frames or settings"."""
    work = work_run(clip, tmp_path)
    (work / "run.json").write_text("{not json")
    rerun_refused(capsys, clip, tmp_path,
                  r"the work directory \S+clean\.work has a damaged run\.json \(its record of which clip and settings "
                  r"it holds\), so vinpaint cannot tell whether its checkpoint is this run's")
    assert (work / "checkpoint.pt").is_file()


def test_demo_refuses_a_users_folder_where_its_sample_goes_before_writing_any_of_it(tmp_path, capsys):
    """Before: the demo wrote sample/frames, then stopped on the user's sample/masks, leaving half a sample that
    its next run took for another demo's."""
    (tmp_path / "sample" / "masks").mkdir(parents=True)
    (tmp_path / "sample" / "masks" / "keep.txt").write_text("mine\n")
    refused(capsys, ["demo", "-o", tmp_path, "--frames", "4", "--preset", "tiny", "--quiet"],
            r"\S+sample/masks holds files that vinpaint did not write; the demo writes its sample clip there, so "
            r"give another -o")
    assert sorted(p.name for p in (tmp_path / "sample").iterdir()) == ["masks"]
    assert (tmp_path / "sample" / "masks" / "keep.txt").read_text() == "mine\n"


def test_demo_refuses_a_users_folder_of_frames_as_its_output(tmp_path, capsys):
    """Before: `demo -o plates` wrote sample/, result.mp4, result/ ... among the user's frames, and the folder was
    no longer readable as a clip ("result.before_after.png is 1292x548 but 00000.png is 64x48")."""
    (tmp_path / "plates").mkdir()
    for i in range(3):  # a user's frames (write_png_sequence would mark the folder as vinpaint's)
        cv2.imwrite(str(tmp_path / "plates" / f"{i:05d}.png"), np.zeros((48, 64, 3), np.uint8))
    before = digests(tmp_path)
    refused(capsys, ["demo", "-o", tmp_path / "plates", "--frames", "4", "--preset", "tiny", "--quiet"],
            r"output folder \S+plates holds 00000.png and 2 more, which the demo did not write; the demo writes its "
            r"sample clip and results into -o, so give a new or empty folder, or an earlier demo's\.$")
    assert digests(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["plates"]
    refused(capsys, ["demo", "-o", tmp_path / "new", "--frames", "20000"], r"the sample needs 2 to 10000 frames")
    # an earlier demo's OUT, its --work-dir inside it, is the demo's own: run again
    again = ["demo", "-o", tmp_path / "d", "--work-dir", tmp_path / "d" / "mywork", "--frames", "4", "--preset",
             "tiny", "--quiet", "--steps", "1"]
    assert main([str(a) for a in again]) == 0 and main([str(a) for a in again]) == 0
    # a daemon's store, as OUT or as --work-dir: refused before the sample is written
    from vinpaint.host_bridge.store import mark_store_folder
    (tmp_path / "store").mkdir()
    mark_store_folder(tmp_path / "store")
    for extra in (["-o", tmp_path / "store" / "jobs" / "x"], ["-o", tmp_path / "e", "--work-dir", tmp_path / "store"]):
        refused(capsys, ["demo", *extra, "--frames", "4", "--preset", "tiny", "--quiet"],
                r"the (output folder|work directory) \S+ lies inside the store \S+store of a vinpaint daemon")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [".vinpaint-store"]
    assert not (tmp_path / "e").exists()


def test_two_demos_into_one_folder_at_once_are_refused(tmp_path, capsys):
    """The demo took neither the outputs' lock nor the work directory's: a second demo into the same folder at
    once rewrote the sample and the outputs under the first."""
    from vinpaint.cli.outputs import OutputPlan
    from vinpaint.cli.runs import OutputLock

    out = tmp_path / "demo"
    with OutputLock(OutputPlan.from_args([str(out / "result.mp4"), str(out / "result")], "auto")):
        refused(capsys, ["demo", "-o", out, "--frames", "4", "--preset", "tiny", "--quiet"],
                rf"another vinpaint run is writing {re.escape(str(out / 'result.mp4'))} "
                r"\(or files beside, inside or around it\)")
    assert not (out / "sample").exists()
    assert main([str(a) for a in ["demo", "-o", out, "--frames", "4", "--preset", "tiny", "--quiet", "--steps",
                                  "1"]]) == 0


def test_an_output_inside_a_daemon_store_is_refused(clip, tmp_path, capsys):
    """Before: `-o STORE/jobs/<id>/results --overwrite` replaced a finished job's results with a PNG folder (the
    daemon rebuilt them from its cache only when the job was asked for again)."""
    from vinpaint.host_bridge.store import JobStore, mark_store_folder

    store = JobStore(tmp_path / "store")
    store.open()
    mark_store_folder(store.root)  # as `vinpaint serve` does at start
    (tmp_path / "store" / "jobs" / "ab" / "results").mkdir(parents=True)
    before = digests(tmp_path)
    for args in (["-o", tmp_path / "store" / "jobs" / "ab" / "results", "--overwrite"],
                 ["-o", tmp_path / "clean.mkv", "--work-dir", tmp_path / "store" / "w"]):
        refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], *QUICK, *args],
                r".* lies inside the store \S+store of a vinpaint daemon, whose folders are the daemon's own")
    assert digests(tmp_path) == before


@pytest.mark.parametrize("command", ["compose", "eval", "bench"])
def test_eval_compose_and_bench_refuse_an_output_inside_a_daemon_store(tmp_path, capsys, command):
    """Before: `compose -o STORE/jobs/<id>/mine` succeeded, and deleting job <id> deleted mine/ with it; an output
    in STORE/trash/ was emptied at the daemon's next start."""
    from vinpaint.host_bridge.store import mark_store_folder

    (tmp_path / "store" / "jobs" / "ab").mkdir(parents=True)
    mark_store_folder(tmp_path / "store")
    (tmp_path / "data").mkdir()
    out = tmp_path / "store" / "jobs" / "ab" / "mine"
    args = {"compose": ["compose", "--data", tmp_path / "data", "-o", out],
            "eval": ["eval", "--data", tmp_path / "data", "-o", out],
            "bench": ["bench", "--size", "64x64", "--frames", "4", "--steps", "1", "--variants", "dip-vid",
                      "--preset", "tiny", "-o", out]}[command]
    before = digests(tmp_path)
    refused(capsys, args, r"output \S+mine lies inside the store \S+store of a vinpaint daemon, whose folders are the "
                          r"daemon's own \(it deletes them with their jobs\); write it elsewhere\.$")
    assert digests(tmp_path) == before and not out.exists()


def _can_mount() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_mount(), reason="needs unshare and mount (a user namespace or root)")
def test_a_disk_that_fills_while_a_run_writes_again_leaves_the_earlier_outputs_whole(clip, tmp_path):
    """Before: with room for the new video but not for the new PNG folder, the video was replaced and the run
    stopped, leaving it beside the earlier run's PNG folder, matte and config (the helper's full-disk case). Now
    every output is written under a temporary name and put in place only once all are (staged_outputs)."""
    small, work = tmp_path / "small", tmp_path / "work"
    small.mkdir()
    run = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
           "-o", str(small / "out.mkv"), "-o", str(small / "out"), "--work-dir", str(work), *QUICK]
    listing = f"cd {small} && find . -type f ! -name fill | sort | xargs sha256sum"
    script = (f"mount -t tmpfs -o size=1m tmpfs {small} && \"$@\" && echo '--before--' && {listing} && "
              "echo '--then--' && "
              # room for the new video (the first output) and a little more, not for the PNG folder after it
              f"free=$(( $(du -k {small}/out.mkv | cut -f1) + 3 )) && "
              f"dd if=/dev/zero of={small}/fill bs=1k count=$(( $(df -k --output=avail {small} | tail -1) - $free ))"
              f" 2>/dev/null; \"$@\" --feather 2; echo \"--code $?--\"; {listing}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *run], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    before, _, after = done.stdout.partition("--before--")[2].partition("--then--")
    code = re.search(r"--code (\d+)--", after)
    assert before.strip() and code, done.stdout + done.stderr
    assert code.group(1) == "2" and "the disk is full (no space left) while writing" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert after.split(code.group(0))[1].split() == before.split()  # every output as it was, nothing left over


# ---- a second review of the change above (2026-12-01) ------------------------------------------------------------

def test_a_note_in_a_folder_output_does_not_hand_its_side_files_to_another_run(clip, tmp_path, capsys):
    """The first version of the rule above took a folder output holding a note for not vinpaint's, so another run
    of the same stem (clean.mkv beside the folder clean) replaced clean's config, matte and pictures."""
    assert inpaint(clip, tmp_path / "clean") == 0
    (tmp_path / "clean" / "notes.txt").write_text("mine\n")
    config = (tmp_path / "clean.config.json").read_bytes()
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "clean.mkv", "--work-dir",
                     tmp_path / "w2", *QUICK, "--feather", "1"],
            r"\S+clean\.config\.json and the other files beside it belong to the output \S+clean, written by another "
            r"run")
    assert (tmp_path / "clean.config.json").read_bytes() == config


def test_a_file_browsers_own_files_do_not_keep_an_output_folder(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert inpaint(clip, out) == 0
    for name in (".DS_Store", "Thumbs.db", "._00000.png"):
        (out / name).write_bytes(b"\0\1")
    assert inpaint(clip, out, "--feather", "1") == 0
    assert not (out / ".DS_Store").exists()


def test_frames_named_by_timestamp_are_no_skipped_frames(clip, tmp_path, capsys):
    """The first notice listed every number between two names: nanosecond timestamps made it build lists of
    millions (gigabytes, then "out of memory")."""
    sample = make_sample(SMALL)
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for i in range(SMALL.frames):
        stamp = 1_699_999_999_000_000_000 + i * 33_366_667
        cv2.imwrite(str(frames / f"{stamp}.png"), cv2.cvtColor(sample.frames[i], cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks / f"{stamp}.png"), np.where(sample.masks[i], 255, 0).astype(np.uint8))
    assert main([str(a) for a in ["inpaint", frames, "--mask", masks, "-o", tmp_path / "o.mkv", *QUICK,
                                  "--check"]]) == 0
    assert "skips frame" not in capsys.readouterr().err


def test_outputs_put_in_place_together_leave_no_mix_when_one_is_refused_at_the_end(tmp_path):
    """The first version put outputs in place one by one at the end and did not remove the refused one's
    temporary folder: a file of the user's appearing in the folder output meanwhile left the new video beside the
    old folder, and a temporary folder behind."""
    from vinpaint.errors import InputError
    from vinpaint.media.writers import staged_outputs, write_marked

    frames = make_sample(SMALL).frames
    write_video(tmp_path / "clean.mkv", frames, 24)
    write_png_sequence(tmp_path / "clean", frames)
    before = digests(tmp_path)
    with pytest.raises(InputError, match=r"now holds what vinpaint did not write there \(notes\.txt"):
        with staged_outputs():
            write_video(tmp_path / "clean.mkv", frames[::-1].copy(), 24)
            write_png_sequence(tmp_path / "clean", frames[::-1].copy())
            write_marked(tmp_path / "clean.config.json", b"{}\n")
            (tmp_path / "clean" / "notes.txt").write_text("mine\n")  # appears before they are put in place
    after = digests(tmp_path)
    assert after.pop("clean/notes.txt") and after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "clean.mkv"]  # no temporary file left


def test_out_of_memory_while_loading_a_checkpoint_is_said_as_memory_and_the_checkpoint_kept(clip, tmp_path, capsys,
                                                                                           monkeypatch):
    """The first version said "the checkpoint does not fit this run's model ... delete it" for a GPU running out of
    memory while the optimizer state moved there: following that advice threw finished training away."""
    from vinpaint.engine import train

    work = work_run(clip, tmp_path)
    before = (work / "checkpoint.pt").read_bytes()
    (work / "result.npz").unlink()

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train, "load_optimizer_state", no_memory)  # as a full GPU fails there
    rerun_refused(capsys, clip, tmp_path,
                  r"the device ran out of memory \(CUDA out of memory", "--set", "train.max_steps=2")
    assert (work / "checkpoint.pt").read_bytes() == before


def test_a_gpu_fault_while_loading_a_checkpoint_is_said_as_the_gpus_and_the_checkpoint_kept(clip, tmp_path, capsys,
                                                                                           monkeypatch):
    """A CUDA error (torch.AcceleratorError, a RuntimeError) while the checkpoint moved to the device was taken as a
    damaged checkpoint: set aside by the daemon, and "delete it" advised here."""
    from vinpaint.engine import train

    work = work_run(clip, tmp_path)
    before = (work / "checkpoint.pt").read_bytes()
    (work / "result.npz").unlink()

    def fault(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(train, "load_optimizer_state", fault)  # as a failing GPU fails there
    rerun_refused(capsys, clip, tmp_path, r"the GPU failed \(CUDA error: an illegal memory access was encountered\); "
                  r"checkpoints are kept: check the device \(nvidia-smi\), then run the same command again to continue",
                  "--set", "train.max_steps=2")
    assert (work / "checkpoint.pt").read_bytes() == before
    assert not list(work.glob("*.damaged.*"))


def test_a_long_shot_checks_frame_numbers_and_its_extras_before_training(clip, tmp_path, capsys):
    frames, masks = numbered_folders(tmp_path, clip, [0, 1, 2, 4, 5], [0, 2, 3, 4, 5])
    refused(capsys, ["inpaint", frames, "--mask", masks, "-o", tmp_path / "out.mkv", *QUICK, "--set",
                     "train.intervals=[1]", "--set", "shot.window=4", "--set", "shot.overlap=1", "--check"],
            r"the mask folder \S+mattes does not number its files as the frames in \S+plates")
    (tmp_path / "out.generated").mkdir()
    (tmp_path / "out.generated" / "mine.txt").write_text("mine\n")
    (tmp_path / "ok").mkdir()
    frames, masks = numbered_folders(tmp_path / "ok", clip, range(6), range(6))
    refused(capsys, ["inpaint", frames, "--mask", masks, "-o", tmp_path / "out.mkv", *QUICK, "--set",
                     "train.intervals=[1]", "--set", "shot.window=4", "--set", "shot.overlap=1", "--save-generated"],
            r"output folder \S+out\.generated holds files that vinpaint did not write")
    assert not (tmp_path / "out.work").exists()  # refused before training


# ---- a third review (2026-12-01) ---------------------------------------------------------------------------------

@pytest.mark.parametrize("inside", ["a finished output moved in", "a browser's name as a folder"])
def test_a_folder_inside_an_output_folder_keeps_it_unless_it_is_a_long_shots_window(clip, tmp_path, capsys, inside):
    """The second version took any folder carrying vinpaint's marker inside an output folder (`take1/`, a
    finished output moved into `clean/`) for its own, and skipped `.DS_Store`-named folders: `-o clean` then
    deleted them without --overwrite. Only a long shot's window_NNNN folders, in its marked extras folder, are."""
    out = tmp_path / "clean"
    assert inpaint(clip, out) == 0
    if inside == "a finished output moved in":
        assert inpaint(clip, tmp_path / "take1", "--feather", "1") == 0
        (tmp_path / "take1").rename(out / "take1")
    else:
        (out / ".DS_Store").mkdir()
        (out / ".DS_Store" / "lut.cube").write_text("mine\n")
    before = digests(out)
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK, "--feather", "2"],
            r"output folder \S+clean was written by vinpaint but now holds what vinpaint did not write there")
    assert digests(out) == before


def test_errors_that_name_a_file_or_setting_cross_a_process_boundary_whole():
    """A long shot's windows on Ray come back pickled: the first DamagedWorkFile could not be rebuilt (a
    traceback in the CLI, and a daemon job failed instead of setting the file aside)."""
    import pickle

    from vinpaint.engine.config import SettingError
    from vinpaint.errors import DamagedWorkFile, OtherRunError

    damaged = pickle.loads(pickle.dumps(DamagedWorkFile("the checkpoint x is damaged", "/w/checkpoint.pt")))
    assert (str(damaged), damaged.path) == ("the checkpoint x is damaged.", "/w/checkpoint.pt")  # a sentence
    other = pickle.loads(pickle.dumps(OtherRunError("other", ("train.seed=0",), True)))
    assert (other.differences, other.damaged) == (("train.seed=0",), True)
    setting = pickle.loads(pickle.dumps(SettingError("train.seed", "must be an integer")))
    assert (setting.name, str(setting)) == ("train.seed", "must be an integer")


@pytest.mark.parametrize("name", ["take#2.mkv", "clean 100%.mp4"])
def test_a_video_output_may_have_a_percent_or_hash_in_its_name(clip, tmp_path, capsys, name):
    """Only image files are written per frame: a video named with % or # is one file of that name (before,
    2026-12-02: read as a frame pattern and refused)."""
    out = tmp_path / name
    assert inpaint(clip, out) == 0
    written = read_clip(out)
    assert written.frames.shape == clip["frames"].shape
    assert [p.name for p in tmp_path.iterdir() if p.suffix == out.suffix] == [name]


def test_large_existing_outputs_are_said_to_be_read_once_and_not_with_overwrite(tmp_path, capsys, monkeypatch):
    """Reading an earlier run's outputs through can take minutes on a long 4K sequence: the run says so, once."""
    from vinpaint.cli import outputs
    frames = np.random.default_rng(0).integers(0, 255, (3, 16, 24, 3), dtype=np.uint8)
    write_png_sequence(tmp_path / "clean", frames)
    size = sum(p.stat().st_size for p in (tmp_path / "clean").iterdir())
    monkeypatch.setattr(outputs, "READ_ALOUD_BYTES", size)
    plan = outputs.OutputPlan.from_args([str(tmp_path / "clean")], "auto")
    plan.check_outputs(overwrite=True)
    assert "reading" not in capsys.readouterr().err
    plan.check_outputs()
    plan.check_outputs()
    err = capsys.readouterr().err
    assert err.count(f"vinpaint: reading the {size / 1e9:.1f} GB of outputs already there") == 1, err
    monkeypatch.setattr(outputs, "READ_ALOUD_BYTES", size + 1)
    quiet = outputs.OutputPlan.from_args([str(tmp_path / "clean")], "auto")
    quiet.check_outputs()
    assert capsys.readouterr().err == ""
