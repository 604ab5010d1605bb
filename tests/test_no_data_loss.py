"""Bad input never loses a user's files: cases found by attacking `vinpaint inpaint` and `vinpaint serve` beyond
tests/test_hostile_cli.py's table. Each test uses real files and, for the daemon, a real `vinpaint serve`
process; each failed before the fix it guards (docs/cli.md and docs/daemon.md, "Under bad input and faults")."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vinpaint.cli.main import main
from vinpaint.files import temp_sibling
from vinpaint.host_bridge.store import STORE_MARK, JobRecord, JobStore
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import write_png_sequence, write_video

SMALL = SampleConfig(frames=12, width=160, height=96, seed=5)
QUICK = ["--preset", "tiny", "--quiet", "--set", "train.max_steps=1", "--set", "loss.perceptual=0",
         "--set", "propagation.enabled=false"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("no_loss_clip")
    sample = make_sample(SMALL)
    write_video(folder / "clip.mkv", sample.frames, 24)
    write_png_sequence(folder / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    return {"video": folder / "clip.mkv", "masks": folder / "masks", "frames": sample.frames}


def plates(folder: Path, frames: np.ndarray) -> dict[str, str]:
    """A user's own frame folder (0000.png ..., as another program writes it) -> {name: digest}."""
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return digests(folder)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, args, pattern: str) -> None:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert re.search(r"^vinpaint: error: " + pattern, err, re.M), err


# ---- the command line ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["pattern-on-the-frames", "video-inside", "folder-inside", "through-a-link",
                                  "work-dir-inside"])
def test_nothing_is_written_inside_an_input_folder_even_with_overwrite(clip, tmp_path, capsys, case):
    """Before: `-o plates/%04d.png --overwrite` replaced the user's own frames with the result, and an output or
    work directory inside an input folder added files that the next run reads as frames."""
    mine = plates(tmp_path / "plates", clip["frames"])
    args = ["inpaint", tmp_path / "plates", "--mask", clip["masks"], "-o", tmp_path / "plates" / "%04d.png",
            "--overwrite", *QUICK]
    expected = r"output \S+ is inside the input folder \S+plates, whose every image is read as a frame"
    if case == "video-inside":
        args[5] = tmp_path / "plates" / "clean.mkv"
    elif case == "folder-inside":
        args[5] = tmp_path / "plates" / ".." / "plates" / "clean"
    elif case == "through-a-link":
        (tmp_path / "link").symlink_to(tmp_path / "plates")
        args[1] = tmp_path / "link"
        expected = expected.replace("plates", "link")
    elif case == "work-dir-inside":
        args[5] = tmp_path / "clean.mkv"
        args += ["--work-dir", tmp_path / "plates" / "work"]
        expected = r"the work directory \S+ is inside the input folder \S+plates; give another --work-dir"
    refused(capsys, args, expected)
    assert digests(tmp_path / "plates") == mine
    assert sorted(os.listdir(tmp_path)) == sorted(["plates"] + (["link"] if case == "through-a-link" else []))


@pytest.mark.parametrize("second", ["res.matte/%05d.png", "res.matte/v.mkv", "res/%05d.png", "res/sub"])
def test_one_output_inside_another_that_is_replaced_whole_is_refused(clip, tmp_path, capsys, second):
    """Before: `-o res.mkv -o res.matte/%05d.png` trained, then stopped on its own frames ('holds files that
    vinpaint did not write'); with --overwrite the matte folder replaced the frames just written."""
    first = "res.mkv" if second.startswith("res.matte") else "res"
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / first, "-o",
                     tmp_path / second, "--overwrite", *QUICK],
            rf"output \S+{re.escape(second)} lies inside the output folder \S+{second.split('/')[0]}, which is "
            "replaced whole")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", [".", "..", ""])
def test_an_output_that_names_no_folder_of_its_own_is_one_sentence(clip, tmp_path, capsys, monkeypatch, name):
    """Before: a traceback (`PosixPath('.') has an empty name`)."""
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path / "here")
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", name, "--overwrite", *QUICK],
            rf"output '{re.escape(name)}' names no file or folder of its own")
    assert (tmp_path / "here" / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["here"] and os.listdir(tmp_path / "here") == ["notes.txt"]


def test_a_name_too_long_for_the_file_system_is_refused_before_training(clip, tmp_path, capsys):
    """Before: the run trained, then failed writing `OUT.config.json` (258 bytes)."""
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / ("x" * 246 + ".mkv"),
                     *QUICK], r"cannot write \S+config.json: the name x+\.\.\. is 258 bytes long and this file "
                              r"system allows 255")
    assert os.listdir(tmp_path) == []


def test_a_temporary_name_beside_a_long_name_still_fits():
    """Before: `.NAME.RANDOM.partial.mkv` of a 240-byte NAME was too long, so such an output could never be
    written (its temporary file failed after the training)."""
    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    for name, suffix in (("a" * 240 + ".mkv", ".mkv"), ("é" * 120 + ".exr", ".exr"), ("b" * 250, "")):
        for as_folder in (False, True):
            temp = temp_sibling(folder / name, suffix, folder=as_folder)
            try:
                assert temp.parent == folder and len(os.fsencode(temp.name)) <= 255
                assert temp.name.startswith("." + name[:20]) and temp.name.endswith(".partial" + suffix)
            finally:
                temp.rmdir() if as_folder else temp.unlink()


@pytest.mark.slow
def test_an_output_whose_name_is_near_the_limit_is_written(clip, tmp_path, capsys):
    out = tmp_path / ("x" * 236 + ".mkv")  # beside it: x*236 + ".before_after.png" is 253 bytes
    code = main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK]])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0 and not [p for p in os.listdir(tmp_path) if ".partial" in p]


# ---- the daemon's store --------------------------------------------------------------------------------------------

def serve(store: Path, seconds: float = 60.0) -> subprocess.CompletedProcess:
    """`vinpaint serve` on `store`, expected to stop at start (a refused store)."""
    return subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                           str(store), "--device", "cpu"], capture_output=True, text=True, timeout=seconds,
                          env=dict(os.environ, OMP_NUM_THREADS="2"), stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("case", ["trash", "daemon.json", "photos"])
def test_a_users_folder_as_the_store_is_refused_and_kept(tmp_path, case):
    """Before: the daemon took any folder as its store; at start it emptied STORE/trash/ (a user's folder named
    `trash` lost everything in it) and replaced STORE/daemon.json."""
    store = tmp_path / "mine"
    (store / "trash" / "holiday").mkdir(parents=True) if case == "trash" else (store / "photos").mkdir(parents=True)
    (store / "trash" / "holiday" / "beach.jpg" if case == "trash" else store / "photos" / "beach.jpg") \
        .write_bytes(b"\xff\xd8 the user's photo")
    if case == "daemon.json":
        (store / "daemon.json").write_text('{"my": "settings"}')
    before = digests(store)
    done = serve(store)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"^vinpaint: error: the store \S+mine holds files that vinpaint did not put there "
                     rf"\(e\.g\. \S+; it has no {re.escape(STORE_MARK)}\); give a new or empty folder as --store$",
                     done.stderr.strip(), re.M), done.stderr
    assert digests(store) == before and sorted(p.name for p in store.iterdir()) == sorted(
        {"trash": ["trash"], "daemon.json": ["photos", "daemon.json"], "photos": ["photos"]}[case])


def test_a_store_written_by_a_newer_version_is_refused_and_kept(tmp_path):
    store = tmp_path / "store"
    (store / "jobs" / ("a" * 32)).mkdir(parents=True)
    (store / "jobs" / ("a" * 32) / "job.json").write_text('{"a field": "from the future"}')
    (store / STORE_MARK).write_text('{"store_format": 7}')
    before = digests(store)
    done = serve(store)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "the store " + str(store) + " was written by a newer vinpaint (store format 7; this one reads 1)" \
        in done.stderr
    assert digests(store) == before


def test_a_store_from_before_the_mark_is_still_a_store(tmp_path):
    """A store that an earlier vinpaint made (daemon.lock, daemon.json, jobs/, trash/) starts, and is marked."""
    from daemon_fixtures import DaemonProcess

    store = tmp_path / "store"
    (store / "jobs").mkdir(parents=True)
    (store / "trash" / ("b" * 32 + ".1")).mkdir(parents=True)  # a deleted job on its way out
    (store / "daemon.lock").touch()
    (store / "daemon.json").write_text('{"pid": 1}')
    daemon = DaemonProcess(store).start()
    try:
        assert json.loads((store / STORE_MARK).read_text()) == {"store_format": 1}
        assert os.listdir(store / "trash") == []
    finally:
        assert daemon.terminate() == 0


def record(job: str) -> JobRecord:
    return JobRecord(job=job, content_hash="0" * 64, frames=3, width=8, height=8, channels=3, dtype="u1",
                     mask_dtype="u1", settings={}, config={})


def test_a_job_whose_record_cannot_be_read_is_set_aside_never_deleted(tmp_path):
    """Before: the store skipped a job with a damaged job.json at start, and when a client opened the same job
    again its folder (finished results included) went to the trash and was deleted."""
    job = "c" * 32
    store = JobStore(tmp_path / "store")
    store.open()
    made = store.create(record(job))
    (made.root / "results" / "00000.bin").write_bytes(b"a finished frame")
    (made.root / "job.json").write_text('{"job": "cccc')  # cut short
    again = JobStore(tmp_path / "store")
    notes = again.open()
    assert len(notes) == 1 and "unreadable job.json" in notes[0] and "kept" in notes[0]
    fresh = again.create(record(job))
    assert fresh.root == made.root and json.loads((fresh.root / "job.json").read_text())["job"] == job
    kept = list((tmp_path / "store" / "unreadable").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith(job + ".")
    assert (kept[0] / "results" / "00000.bin").read_bytes() == b"a finished frame"
    assert (kept[0] / "job.json").read_text() == '{"job": "cccc'


# ---- masks ---------------------------------------------------------------------------------------------------------

def test_a_mask_whose_matte_is_in_its_alpha_channel_is_read_by_its_alpha(clip, tmp_path):
    """Before: alpha was dropped, so a roto export with black RGB and the matte in alpha was 'the mask is empty'.
    An RGBA mask with an opaque alpha is still read by its colour."""
    from vinpaint.media.io import read_masks
    from vinpaint.media.shot_input import ShotFiles

    white = read_masks(clip["masks"], SMALL.frames, (SMALL.width, SMALL.height))
    assert white.any()

    def read_both_ways(masks: Path) -> None:
        assert np.array_equal(read_masks(masks, SMALL.frames, (SMALL.width, SMALL.height)), white), masks
        files = ShotFiles(clip["video"], masks)  # a long shot reads its masks window by window
        try:
            assert np.array_equal(files.window(2, 9)[1], white[2:9]), masks
        finally:
            files.close()

    for name, colour, alpha in (("alpha-only", 0, None), ("white-under-alpha", 255, None), ("opaque", None, 255)):
        (tmp_path / name).mkdir()
        for i, hole in enumerate(white):
            matte = np.where(hole, 255, 0).astype(np.uint8)
            rgba = np.empty(hole.shape + (4,), np.uint8)
            rgba[..., :3] = matte[..., None] if colour is None else colour
            rgba[..., 3] = matte if alpha is None else alpha
            cv2.imwrite(str(tmp_path / name / f"{i:04d}.png"), rgba)
        read_both_ways(tmp_path / name)
    single = read_masks(tmp_path / "alpha-only" / "0004.png", SMALL.frames, (SMALL.width, SMALL.height))
    assert np.array_equal(single[7], white[4])
    # the same in EXR frames, one EXR and an RGBA video (before, 2026-12-02: each "the mask is empty")
    oiio = pytest.importorskip("OpenImageIO")
    (tmp_path / "exr").mkdir()
    for i, hole in enumerate(white):
        rgba = np.zeros(hole.shape + (4,), np.float32)
        rgba[..., 3] = hole
        spec = oiio.ImageSpec(hole.shape[1], hole.shape[0], 4, "half")
        spec.channelnames = ("R", "G", "B", "A")
        out = oiio.ImageOutput.create(str(tmp_path / "exr" / f"m.{i:04d}.exr"))
        out.open(str(tmp_path / "exr" / f"m.{i:04d}.exr"), spec)
        out.write_image(rgba)
        out.close()
    with av.open(str(tmp_path / "alpha.mov"), "w") as out:
        stream = out.add_stream("png", rate=24)
        stream.width, stream.height, stream.pix_fmt = SMALL.width, SMALL.height, "rgba"
        for hole in white:
            rgba = np.zeros(hole.shape + (4,), np.uint8)
            rgba[..., 3] = np.where(hole, 255, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    for masks in (tmp_path / "exr", tmp_path / "exr" / "m.%04d.exr", tmp_path / "alpha.mov"):
        read_both_ways(masks)
    single = read_masks(tmp_path / "exr" / "m.0004.exr", SMALL.frames, (SMALL.width, SMALL.height))
    assert np.array_equal(single[7], white[4])


def test_an_exr_is_its_display_window_whatever_its_data_window(tmp_path):
    """Before: an EXR's data window was read as the picture: a roto shape written with its data window moved
    (x=5, y=3) was read 5 and 3 pixels off, an autocropped one was 'the mask is 17x17 but the video is 64x48', and
    an overscan plate was read at its overscan size."""
    oiio = pytest.importorskip("OpenImageIO")
    from vinpaint.media.io import read_image

    def exr(name, pixels, data, full=(0, 0, 64, 48)):
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 3, "float")
        spec.x, spec.y = data
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = full
        out = oiio.ImageOutput.create(str(tmp_path / name))
        out.open(str(tmp_path / name), spec)
        out.write_image(pixels)
        out.close()
        return read_image(tmp_path / name)

    rng = np.random.default_rng(0)
    shape = rng.random((17, 17, 3)).astype(np.float32) + 0.1
    placed = exr("autocrop.exr", shape, (12, 16))
    assert placed.shape == (48, 64, 3) and np.array_equal(placed[16:33, 12:29], shape)
    assert placed.sum() == pytest.approx(shape.sum())  # black (zero) where the file has no data
    moved = rng.random((48, 64, 3)).astype(np.float32)
    assert np.array_equal(exr("moved.exr", moved, (5, 3))[3:, 5:], moved[:-3, :-5])
    overscan = rng.random((56, 72, 3)).astype(np.float32)
    assert np.array_equal(exr("overscan.exr", overscan, (-4, -4)), overscan[4:52, 4:68])
    # an RGBA mask with its matte in RGB and an opaque alpha, its data window moved: read by its colour (the
    # black around the data is not a see-through alpha)
    from vinpaint.media.io import read_masks
    rgba = np.zeros((48, 64, 4), np.float32)
    rgba[10:20, 10:20, :3], rgba[..., 3] = 1.0, 1.0
    spec = oiio.ImageSpec(64, 48, 4, "float")
    spec.channelnames = ("R", "G", "B", "A")
    spec.x, spec.y = 5, 3
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 64, 48
    out = oiio.ImageOutput.create(str(tmp_path / "rgbmatte.exr"))
    out.open(str(tmp_path / "rgbmatte.exr"), spec)
    out.write_image(rgba)
    out.close()
    hole = read_masks(tmp_path / "rgbmatte.exr", 2, (64, 48))[0]
    assert hole.sum() == 100 and hole[13:23, 15:25].all()


def test_a_vp9_mask_whose_matte_is_in_its_alpha_is_named_not_called_empty(clip, tmp_path, capsys):
    """A WebM's VP9 alpha (alpha_mode 1, as browsers and roto tools export it) is not read by FFmpeg's own VP9
    decoder: the black picture read as the mask said "the mask is empty"."""
    from vinpaint.media.io import read_inputs

    def webm(name: str, in_picture: bool, tagged: bool = False) -> Path:
        with av.open(str(tmp_path / name), "w") as container:
            stream = container.add_stream("libvpx-vp9", rate=24)
            stream.width, stream.height, stream.pix_fmt = SMALL.width, SMALL.height, "yuva420p"
            if tagged:  # a remux copies the stream's tags: the demuxer then says ALPHA_MODE
                stream.metadata["alpha_mode"] = "1"
            for t in range(SMALL.frames):
                matte = np.zeros((SMALL.height, SMALL.width, 4), np.uint8)
                if in_picture:
                    matte[..., 3] = 255
                    matte[20:40, 30 + t:60 + t, :3] = 255
                else:
                    matte[20:40, 30 + t:60 + t, 3] = 255
                container.mux(stream.encode(av.VideoFrame.from_ndarray(matte, format="rgba")))
            container.mux(stream.encode(None))
        return tmp_path / name

    for mask in (webm("roto.webm", False), webm("tagged.webm", False, tagged=True)):
        refused(capsys, ["inpaint", clip["video"], "--mask", mask, "-o", tmp_path / "out.mkv", *QUICK],
                rf"mask video \S+{mask.name} keeps its matte in VP9's alpha channel, which this FFmpeg's VP9 decoder "
                r"does not read; export the mask as a PNG sequence")
    holes = read_inputs(clip["video"], webm("drawn.webm", True))[1]  # drawn in the picture, opaque alpha: read
    assert holes[0, 25, 40] and not holes[0, 5, 5]


def test_a_mask_video_at_another_frame_rate_is_said(clip, tmp_path):
    from vinpaint.media.io import read_inputs

    matte = np.repeat(np.where(read_inputs(clip["video"], clip["masks"])[1], 255, 0).astype(np.uint8)[..., None],
                      3, axis=3)
    write_video(tmp_path / "mask30.mkv", matte, 30)
    write_video(tmp_path / "mask24.mkv", matte, 24)
    assert read_inputs(clip["video"], tmp_path / "mask24.mkv")[0].notices == []
    notices = read_inputs(clip["video"], tmp_path / "mask30.mkv")[0].notices
    assert notices == [f"the mask {tmp_path / 'mask30.mkv'} runs at 30 fps and the video at 24; they have the same "
                       "number of frames, so mask frame N is used for video frame N"]
    from vinpaint.media.shot_input import ShotFiles  # a long shot's reader says it too (it did not)

    assert ShotFiles(clip["video"], tmp_path / "mask30.mkv").clip.notices == notices
    assert ShotFiles(clip["video"], tmp_path / "mask24.mkv").clip.notices == []


# ---- a long shot's work directory ----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("damage", ["frames.npy", "history.npy", "hole.npy"])
def test_a_damaged_window_result_is_made_again_from_its_checkpoint(tmp_path, capsys, damage):
    """Before: a finished window whose result or loss history was cut short (a copy, a full disk) stopped the
    next run with a numpy traceback. Now that window runs again from its own checkpoint and the shot comes out
    the same."""
    from vinpaint.media.io import read_clip

    sample = make_sample(SampleConfig(frames=26, width=96, height=64, seed=5))
    write_video(tmp_path / "clip.mkv", sample.frames, 24)
    write_png_sequence(tmp_path / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    args = [str(a) for a in ["inpaint", tmp_path / "clip.mkv", "--mask", tmp_path / "masks", "-o",
                             tmp_path / "out.mkv", *QUICK, "--set", "shot.window=14", "--set", "shot.overlap=4",
                             "--keep-work"]]
    assert main(args) == 0, capsys.readouterr().err
    first = read_clip(tmp_path / "out.mkv").frames
    damaged = tmp_path / "out.work" / "window_0001" / damage
    damaged.write_bytes(damaged.read_bytes()[:60])
    assert main(args) == 0, capsys.readouterr().err
    assert np.array_equal(read_clip(tmp_path / "out.mkv").frames, first)
    assert (tmp_path / "out.work" / "window_0001" / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_a_window_result_replaced_by_another_valid_array_is_made_again(tmp_path, capsys):
    """Before: a finished window's frames.npy replaced by a whole array of another dtype (uint16) or content (zeros
    of the same shape and dtype) was joined without question: the frames came out mixed 8/16-bit and wrong outside
    the hole, with no word. Now done.json records each saved array's shape, dtype and SHA-256; a mismatch is said
    in one line and the window runs again from its checkpoint, and the shot comes out bit for bit the same. A
    done.json from before it recorded them is still reused."""
    sample = make_sample(SampleConfig(frames=16, width=96, height=64, seed=5))
    write_png_sequence(tmp_path / "plate", sample.frames)
    write_png_sequence(tmp_path / "roto", np.where(sample.masks, 255, 0).astype(np.uint8))
    args = [str(a) for a in ["inpaint", tmp_path / "plate", "--mask", tmp_path / "roto", "-o", tmp_path / "clean",
                             *QUICK, "--set", "shot.window=6", "--set", "shot.overlap=2", "--set",
                             "train.intervals=[1]", "--keep-work"]]

    def frames() -> list[np.ndarray]:
        return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / "clean").glob("*.png"))]

    assert main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    first = frames()
    assert len(first) == 16 and all(f.dtype == np.uint8 for f in first)
    work = tmp_path / "clean.work"
    old = work / "window_0000" / "done.json"  # as an older version wrote it: no "arrays"
    old.write_text(json.dumps({k: v for k, v in json.loads(old.read_text()).items() if k != "arrays"}) + "\n")
    target = work / "window_0001" / "frames.npy"
    damages = {"dtype": lambda a: a.astype(np.uint16) * 257, "zeros": np.zeros_like}
    for runs, (kind, damage) in enumerate(damages.items(), start=2):
        np.save(target, damage(np.load(target)))
        assert main(args) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        assert "(1 computed in this run)" in out, (kind, out)
        notice = [line for line in err.splitlines() if line.startswith("window 2/")]
        assert len(notice) == 1 and "frames.npy" in notice[0] and "from its checkpoint" in notice[0], (kind, err)
        again = frames()
        assert len(again) == 16 and all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(again, first))
        assert len((work / "window_0001" / "attempts.log").read_text().splitlines()) == runs
        assert len((work / "window_0000" / "attempts.log").read_text().splitlines()) == 1  # reused throughout
    assert "arrays" not in json.loads(old.read_text())


@pytest.mark.slow
def test_a_users_file_that_appears_while_the_run_trains_is_kept(clip, tmp_path):
    """Before: the run, finding at the end a file of the user's where its output goes, refused to replace it (one
    sentence) and then removed it with its own litter, since it had not been there when the run started."""
    command = [sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask", str(clip["masks"]),
               "-o", str(tmp_path / "res.mkv"), *QUICK[:4], "train.max_steps=150", *QUICK[5:]]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"), stdin=subprocess.DEVNULL)
    first = run.stderr.readline()  # "perceptual loss off", printed as training is set up
    (tmp_path / "res.mkv").write_bytes(b"the user's own video")
    (tmp_path / "res.config.json").write_text('{"mine": true}')
    err = first + run.stderr.read()
    assert run.wait(300) == 2, err
    assert "output " + str(tmp_path / "res.mkv") + " exists and was not written by vinpaint" in err
    assert (tmp_path / "res.mkv").read_bytes() == b"the user's own video"
    assert (tmp_path / "res.config.json").read_text() == '{"mine": true}'
    assert (tmp_path / "res.work" / "result.npz").is_file()  # the finished training is kept too


def regraded(ours: Path, to: Path, encoder: str, pix_fmt: str) -> None:
    """`ffmpeg -i ours -vf eq=... to`, as ffmpeg does it: the container's tags copied (our comment with them), the
    pictures changed and encoded again, the stream tagged with the encoder that made it."""
    with av.open(str(ours)) as source, av.open(str(to), "w") as out:
        out.metadata.update(source.metadata)
        stream = out.add_stream(encoder, rate=24)
        stream.width, stream.height, stream.pix_fmt = source.streams.video[0].width, source.streams.video[0].height, \
            pix_fmt
        stream.metadata["encoder"] = f"Lavc {encoder}"
        for i, frame in enumerate(source.decode(video=0)):
            graded = np.clip(frame.to_ndarray(format="rgb24").astype(int) + 40, 0, 255).astype(np.uint8)
            picture = av.VideoFrame.from_ndarray(graded, format="rgb24").reformat(format=pix_fmt)
            picture.pts = i
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))


@pytest.mark.parametrize("suffix,encoder,pix_fmt", [(".mov", "libx264", "yuv444p"), (".mkv", "libx264", "yuv420p"),
                                                    (".avi", "mpeg4", "yuv420p")])
def test_a_video_made_from_our_output_by_another_tool_is_not_replaced(clip, tmp_path, capsys, suffix, encoder,
                                                                      pix_fmt):
    """Before (session 34): ffmpeg grading our e.mkv into graded.mov copied the comment "written by vinpaint", and
    `-o graded.mov` then replaced the grade without --overwrite."""
    ours = tmp_path / f"e{suffix}"
    assert main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(ours), *QUICK]) == 0
    capsys.readouterr()
    graded = tmp_path / f"graded{suffix}"
    regraded(ours, graded, encoder, pix_fmt)
    before = graded.read_bytes()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", graded, "--work-dir", tmp_path / "w",
                     *QUICK], rf"output \S+graded\{suffix} exists and was not written by vinpaint")
    assert graded.read_bytes() == before
    # our own output is still ours to replace
    assert main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(ours), *QUICK]) == 0


# ---- replacing a finished output -----------------------------------------------------------------------------------

def test_a_png_folder_output_is_replaced_in_one_step(tmp_path):
    """Before: an earlier PNG folder was renamed aside, then the new one renamed in, so a kill between the two left
    no output at its path (the previous one hidden in `.NAME.XXXX.old/`). Now the two are exchanged at once
    (renameat2), and a link given with --overwrite is replaced, not written through."""
    from vinpaint.files import exchange

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two").write_text("b")
    assert exchange(tmp_path / "a", tmp_path / "b")
    assert os.listdir(tmp_path / "a") == ["two"] and os.listdir(tmp_path / "b") == ["one"]

    frames = np.zeros((2, 8, 8, 3), np.uint8)
    write_png_sequence(tmp_path / "out", frames)
    inode = (tmp_path / "out").stat().st_ino
    write_png_sequence(tmp_path / "out", frames + 9)
    assert (tmp_path / "out").stat().st_ino != inode and sorted(os.listdir(tmp_path)) == ["a", "b", "out"]
    mine = plates(tmp_path / "theirs", frames)
    (tmp_path / "link").symlink_to(tmp_path / "theirs")
    write_png_sequence(tmp_path / "link", frames, overwrite=True)
    assert not (tmp_path / "link").is_symlink() and digests(tmp_path / "theirs") == mine
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "link", "out", "theirs"]


# ---- vinpaint eval and compose -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["eval", "compose"])
def test_eval_and_compose_never_write_into_a_users_folder_or_the_data(tmp_path, capsys, command):
    """Before: `vinpaint eval -o thesis` replaced the user's thesis/config.json and results.md (and compose wrote
    its clips and manifest.json into any folder, the data folder included)."""
    data = tmp_path / "data"
    (data / "bg").mkdir(parents=True)
    (data / "bg" / "notes.txt").write_text("data")
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "config.json").write_text('{"my": "settings"}')
    (thesis / "results.md").write_text("# my results")
    before = digests(tmp_path)
    extra = ["--profile", "tiny"] if command == "eval" else ["--clips", "1", "--frames", "8"]
    refused(capsys, [command, "--data", data, "-o", thesis, *extra],
            rf"output folder \S+thesis holds files that an earlier `vinpaint {command}` did not write")
    refused(capsys, [command, "--data", data, "-o", data / "out", *extra],
            r"output \S+out and the data folder \S+data overlap")
    refused(capsys, [command, "--data", data, "-o", tmp_path, *extra], r"output \S+ and the data folder \S+ overlap")
    assert digests(tmp_path) == before


def test_an_earlier_evaluation_or_set_is_recognised(tmp_path):
    from vinpaint.cli.commands_compose import earlier_set
    from vinpaint.cli.commands_eval import earlier_evaluation
    from vinpaint.evaluation.compose import MANIFEST_VERSION
    from vinpaint.evaluation.config import EvalConfig

    (tmp_path / "config.json").write_text(EvalConfig().to_json())
    assert earlier_evaluation(tmp_path) and not earlier_set(tmp_path)
    (tmp_path / "config.json").write_text('{"budgets": [], "mine": 1}')
    assert not earlier_evaluation(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"version": MANIFEST_VERSION, "clips": []}))
    assert earlier_set(tmp_path)


def test_bench_never_replaces_a_users_bench_md(tmp_path, capsys):
    """Before: `vinpaint bench -o notes` timed every variant, then replaced notes/bench.md."""
    (tmp_path / "bench.md").write_text("# my own numbers")
    refused(capsys, ["bench", "--size", "128x64", "--frames", "12", "--steps", "1", "--warmup", "0", "--variants",
                     "dip", "--preset", "tiny", "-o", tmp_path],
            r"output \S+bench.md exists and was not written by vinpaint bench")
    assert (tmp_path / "bench.md").read_text() == "# my own numbers" and os.listdir(tmp_path) == ["bench.md"]


def test_make_keys_never_replaces_a_key_pair_in_use(tmp_path):
    """Before: `vinpaint serve --make-keys keys` a second time replaced the server's secret key and the client
    keys, so every client holding the old public halves was locked out, and the old secret was gone."""
    command = [sys.executable, "-m", "vinpaint", "serve", "--make-keys", str(tmp_path / "keys")]
    assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    before = digests(tmp_path / "keys")
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
    assert re.match(r"vinpaint: error: \S+keys/server.key exists; keys are never replaced", again.stderr)
    assert digests(tmp_path / "keys") == before
    (tmp_path / "afile").write_text("mine")  # before: "File exists: afile"
    on_file = subprocess.run(command[:-1] + [str(tmp_path / "afile")], capture_output=True, text=True, timeout=120)
    assert on_file.returncode == 2 and on_file.stderr == f"vinpaint: error: {tmp_path / 'afile'} is a file; " \
        "--make-keys writes its keys into a folder: give a new one\n", on_file.stderr
    assert (tmp_path / "afile").read_text() == "mine"
    # a folder of the user's with its own clients/client.key (or a link there): before, shutil.copy replaced it
    mine = tmp_path / "mine"
    (mine / "clients").mkdir(parents=True)
    (mine / "clients" / "client.key").write_text("a public key of mine")
    in_list = subprocess.run(command[:-1] + [str(mine)], capture_output=True, text=True, timeout=120)
    assert in_list.returncode == 2 and in_list.stderr.startswith(
        f"vinpaint: error: {mine / 'clients' / 'client.key'} exists; keys are never replaced"), in_list.stderr
    assert os.listdir(mine) == ["clients"] and (mine / "clients" / "client.key").read_text() == "a public key of mine"


@pytest.mark.slow
def test_an_input_inside_the_work_directory_is_refused(clip, tmp_path, capsys):
    """Before: with the input kept in an earlier run's work directory, --restart emptied that directory, the input
    with it."""
    args = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "r.mkv", *QUICK, "--set",
            "train.max_steps=3", "--pause-after", "1"]
    assert main([str(a) for a in args]) == 130
    shutil.copy(clip["video"], tmp_path / "r.work" / "shot.mkv")
    before = digests(tmp_path)
    args[1] = tmp_path / "r.work" / "shot.mkv"
    refused(capsys, [*args[:-2], "--restart"], r"the input \S+shot.mkv lies inside the work directory \S+r.work")
    assert digests(tmp_path) == before


def test_an_output_or_work_directory_inside_another_runs_work_directory_is_refused(clip, tmp_path, capsys):
    """Before: another run's outputs written into an earlier run's work directory were deleted, with their own work
    directory and checkpoint, by that earlier run's --restart. Now they cannot be put there; and a work directory
    that holds some (written before this check) is not emptied by --restart."""
    first = ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "r.mkv", *QUICK]
    assert main([str(a) for a in first]) == 0
    capsys.readouterr()
    before = digests(tmp_path)
    other = ["inpaint", clip["video"], "--mask", clip["masks"], *QUICK, "--seed", "4"]
    refused(capsys, [*other, "-o", tmp_path / "r.work" / "x.mkv"],
            r"output \S+x.mkv lies inside the work directory \S+r.work of another run, whose files its --restart "
            r"deletes; write it elsewhere\.$")
    refused(capsys, [*other, "-o", tmp_path / "y.mkv", "--work-dir", tmp_path / "r.work" / "w"],
            r"the work directory \S+w lies inside the work directory \S+r.work of another run, whose files its "
            r"--restart deletes; give another --work-dir\.$")
    assert digests(tmp_path) == before
    (tmp_path / "r.work" / "x.config.json").write_text((tmp_path / "r.config.json").read_text())
    before = digests(tmp_path)
    refused(capsys, [*first, "--restart"], r"the work directory \S+r.work holds another run's outputs "
                                           r"\(x.config.json \.\.\.\), which --restart would delete; move them out first\.$")
    assert digests(tmp_path) == before
    (tmp_path / "r.work" / "x.config.json").unlink()
    (tmp_path / "r.work" / "notes.txt").write_text("the client's notes")
    before = digests(tmp_path)
    refused(capsys, [*first, "--restart"], r"the work directory \S+r.work holds notes.txt, which vinpaint did not "
                                           r"write and --restart would delete; move it out first\.$")
    assert digests(tmp_path) == before


def test_restart_deletes_only_what_vinpaint_wrote(tmp_path):
    """Before: --restart emptied OUT.work whatever it held, a user's file saved there with it."""
    from vinpaint.engine.workfiles import foreign_entries
    ours = ["run.json", "config.json", "log.txt", "checkpoint.pt", "flow.npz", "result.npz", "propagation.npz",
            ".result.npz.k2j4h1x9.partial", "checkpoint.pt.damaged.1764660000000000000", "window_0000/done.json",
            "window_0000/frames.npy", "window_0000/history.npy", "window_0000/attempts.log", "window_0001/run.json"]
    for name in ours:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert foreign_entries(tmp_path) == []
    for name in ("notes.txt", "window_0000/plate.exr", "renders/a.png", "window_12/done.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"mine")
    assert [p.relative_to(tmp_path).as_posix() for p in foreign_entries(tmp_path)] == \
        ["notes.txt", "renders", "window_0000/plate.exr", "window_12"]


def test_a_long_shots_work_directory_counts_as_one(tmp_path):
    """A long shot's run.json holds its plan, not a fingerprint (its windows' hold those): outputs inside it are
    refused as inside any run's (a review found them accepted)."""
    from vinpaint.cli.outputs import enclosing_workdir

    shot = tmp_path / "shot.work"
    (shot / "window_0000").mkdir(parents=True)
    (shot / "run.json").write_text(json.dumps({"shot": {"frames": 300, "window": 100}}))
    (shot / "window_0000" / "run.json").write_text(json.dumps({"fingerprint": "ab" * 32}))
    assert enclosing_workdir(shot) == shot.resolve() and enclosing_workdir(shot / "sub") == shot.resolve()
    assert enclosing_workdir(shot / "window_0000") == (shot / "window_0000").resolve()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "run.json").write_text(json.dumps({"name": "a user's own run.json"}))
    assert enclosing_workdir(tmp_path / "mine") is None and enclosing_workdir(tmp_path) is None


def test_an_output_of_the_same_name_with_another_extension_keeps_the_first_ones_side_files(clip, tmp_path, capsys):
    """Before: clean.mp4 written (with its own --work-dir) beside an earlier run's clean.mkv replaced clean.config.json
    and clean.matte/, so clean.mkv sat beside another run's settings and matte."""
    run = ["inpaint", clip["video"], "--mask", clip["masks"], *QUICK]
    assert main([str(a) for a in [*run, "-o", tmp_path / "clean.mkv", "--seed", "1"]]) == 0
    capsys.readouterr()
    before = digests(tmp_path)
    refused(capsys, [*run, "-o", tmp_path / "clean.mp4", "--seed", "2", "--work-dir", tmp_path / "w2"],
            r"\S+clean.config.json and the other files beside it belong to the output \S+clean.mkv, written by "
            r"another run; give this output another name, or add --overwrite to replace them\.$")
    assert digests(tmp_path) == before
    assert main([str(a) for a in [*run, "-o", tmp_path / "clean.mkv", "--seed", "1"]]) == 0  # its own again: fine
    # A run with its own work directory that wrote two outputs may write one of them again.
    two = ["-o", tmp_path / "b.mkv", "-o", tmp_path / "b", "--work-dir", tmp_path / "w"]
    assert main([str(a) for a in [*run, *two]]) == 0
    assert main([str(a) for a in [*run, "-o", tmp_path / "b.mkv", "--work-dir", tmp_path / "w"]]) == 0
    # ... and with a fitted step count, whose record (as ran) differs from the work directory's config after a
    # rerun: still the same run (a review found it refused).
    fitted = [*run, "--set", "train.fit_seconds=300", "--work-dir", tmp_path / "wf"]
    for out in ("f.mp4", "f.mkv", "f"):
        assert main([str(a) for a in [*fitted, "-o", tmp_path / out]]) == 0, capsys.readouterr().err


def test_a_restart_beside_another_output_of_the_stem_keeps_its_side_files(clip, tmp_path, capsys):
    """Before (session 34): `-o cl.mkv`, then `-o cl.mp4 --seed 7 --restart` (as the refusal of the shared work
    directory advised) threw cl.work's run away and wrote seed 7's config and matte beside seed 0's cl.mkv."""
    run = ["inpaint", clip["video"], "--mask", clip["masks"], *QUICK]
    assert main([str(a) for a in [*run, "-o", tmp_path / "cl.mkv"]]) == 0
    capsys.readouterr()
    before = digests(tmp_path)
    refused(capsys, [*run, "-o", tmp_path / "cl.mp4", "--seed", "7", "--restart"],
            r"\S+cl.config.json and the other files beside it belong to the output \S+cl.mkv, written by another run")
    assert digests(tmp_path) == before
    assert main([str(a) for a in [*run, "-o", tmp_path / "cl.mkv", "--seed", "7", "--restart"]]) == 0  # its own


# ---- sources that are not files ------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["video", "mask", "config", "reference"])
def test_a_named_pipe_given_as_a_source_is_one_sentence_not_a_hang(clip, tmp_path, which):
    """Before: `vinpaint inpaint pipe.mkv ...` waited for a writer for ever, deaf to SIGTERM (FFmpeg's open), and a
    pipe as --config waited until killed."""
    pipe = tmp_path / {"video": "pipe.mkv", "mask": "pipe.png", "config": "pipe.json", "reference": "p.png"}[which]
    os.mkfifo(pipe)
    args = [str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "out.mkv"), *QUICK]
    if which == "video":
        args[0] = str(pipe)
    elif which == "mask":
        args[2] = str(pipe)
    elif which == "config":  # a saved config holds its own preset: --preset beside it is refused first
        args = [a for a in args if a not in ("--preset", "tiny")] + ["--config", str(pipe)]
    else:
        args += ["--reference", f"3={pipe}"]
    done = subprocess.run([sys.executable, "-m", "vinpaint", "inpaint", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    says = {"video": rf"input {re.escape(str(pipe))} is not a regular file \(a pipe, socket or device\)",
            "mask": rf"mask {re.escape(str(pipe))} is not a regular file",
            "config": rf"cannot use {re.escape(str(pipe))} as a config: it is a named pipe, not a file",
            "reference": rf"--reference 3={re.escape(str(pipe))}: \S+ is not a regular file"}[which]
    assert re.search(r"^vinpaint: error: " + says, done.stderr, re.M), done.stderr
    assert sorted(os.listdir(tmp_path)) == [pipe.name]


def test_fields_of_a_later_version_in_a_job_record_survive_this_daemons_saves(tmp_path):
    """Before: job.json's fields this version does not know were dropped the first time it saved the record (every
    progress update), so a later version lost what it had stored there."""
    job = "d" * 32
    store = JobStore(tmp_path / "store")
    store.open()
    made = store.create(record(job))
    saved = json.loads((made.root / "job.json").read_text())
    (made.root / "job.json").write_text(json.dumps({**saved, "colour_space": {"name": "ACEScg"}}))
    again = JobStore(tmp_path / "store")
    assert again.open() == []
    again.get(job).record.state = "queued"
    again.get(job).save()
    written = json.loads((made.root / "job.json").read_text())
    assert written["colour_space"] == {"name": "ACEScg"} and written["state"] == "queued"


def test_the_input_index_finds_an_input_as_every_spelling_of_it(tmp_path):
    """InputIndex answers same_or_inside(input, path) for all inputs at once (a long frame sequence in and out was
    checked pair by pair: 2 x 600 frames took 30 s); it must find the same inputs."""
    from vinpaint.cli.outputs import InputIndex, same_or_inside

    (tmp_path / "plates").mkdir()
    frames = [tmp_path / "plates" / f"p.{n}.exr" for n in range(1001, 1004)]
    for f in frames:
        f.write_bytes(b"frame")
    os.link(frames[1], tmp_path / "hard.exr")
    (tmp_path / "link").symlink_to(tmp_path / "plates")
    index = InputIndex([tmp_path / "clip.mkv", *frames])  # the first does not exist
    for path, expected in ((frames[0], frames[0]), (tmp_path / "link" / "p.1003.exr", frames[2]),
                           (tmp_path / "nope" / ".." / "plates" / "p.1001.exr", frames[0]),
                           (tmp_path / "plates", frames[0]), (tmp_path / "link", frames[0]), (tmp_path, tmp_path / "clip.mkv"),
                           (tmp_path / "hard.exr", frames[1]), (tmp_path / "plates" / "p.1004.exr", None),
                           (tmp_path / "plat", None), (tmp_path / "clip.mkv", tmp_path / "clip.mkv")):
        assert index.at_or_under(path) == expected, path
        assert any(same_or_inside(f, path) for f in [tmp_path / "clip.mkv", *frames]) == (expected is not None)


@pytest.mark.parametrize("cache", ["flow.npz", "propagation.npz", "window_0001/flow.npz"])
def test_a_failed_run_keeps_its_cached_flow_and_propagation(tmp_path, cache):
    """Before: a run that failed (or was quit at once) before its first checkpoint deleted the work directory it
    had made, with the known flow and the propagation it had cached: minutes of work on a long clip."""
    from vinpaint.cli.outputs import Litter

    workdir = tmp_path / "out.work"
    with pytest.raises(KeyboardInterrupt):
        with Litter(workdir, [tmp_path / "out.mkv"]):
            (workdir / cache).parent.mkdir(parents=True)
            (workdir / cache).write_bytes(b"cached")
            raise KeyboardInterrupt
    assert (workdir / cache).read_bytes() == b"cached"
    with pytest.raises(RuntimeError):  # with nothing worth keeping, the directory it made is still cleared away
        with Litter(tmp_path / "other.work", []):
            (tmp_path / "other.work").mkdir()
            (tmp_path / "other.work" / "log.txt").write_text("started")
            raise RuntimeError("disk full")
    assert not (tmp_path / "other.work").exists()


# ---- what a kill leaves behind ---------------------------------------------------------------------------------------

def test_what_a_killed_run_left_half_written_is_removed_by_the_next_run(clip, tmp_path, capsys):
    """A kill -9 leaves temp_sibling's temporaries: a half-written flow cache or checkpoint in the work directory,
    a half-written video or PNG folder beside the outputs. Before, no later run removed them (a 100-frame plate's
    flow cache is gigabytes). Now the run that holds the locks removes those of its own names; a temporary of
    another name is left alone."""
    out = tmp_path / "out"
    out.mkdir()
    work = out / "clean.work"
    work.mkdir()
    stale = [temp_sibling(work / "flow.npz", ".npz"), temp_sibling(work / "checkpoint.pt"),
             temp_sibling(out / "clean.mkv", ".mkv"), temp_sibling(out / "frames", folder=True),
             temp_sibling(out / "clean.config.json")]
    other = temp_sibling(out / "another.mkv", ".mkv")  # another output's: maybe being written now
    assert main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(out / "clean.mkv"),
                 "-o", str(out / "frames"), *QUICK]) == 0
    assert [p.name for p in stale if os.path.lexists(p)] == []
    assert other.exists()
    capsys.readouterr()


def test_a_folder_holding_only_a_killed_runs_first_record_is_taken_as_vinpaints(clip, tmp_path, capsys):
    """Killed while it wrote its first run.json, a run left only the lock and that temporary: every later run
    refused the folder as a user's ("holds files that vinpaint did not put there")."""
    work = tmp_path / "clip.work"
    work.mkdir()
    (work / ".lock").touch()
    temp_sibling(work / "run.json")
    assert main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "clip.mkv"),
                 *QUICK]) == 0
    assert (work / "run.json").is_file()
    capsys.readouterr()


def test_a_restart_stopped_half_way_leaves_a_folder_the_next_run_accepts(clip, tmp_path, capsys, monkeypatch):
    """--restart empties the work directory; stopped (Ctrl-C, a kill) after it had deleted run.json but not the
    rest, it left a folder every later run refused, with or without --restart. run.json now goes last."""
    from vinpaint.cli import runs

    args = ["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "clip.mkv"), *QUICK]
    assert main(args) == 0
    work = tmp_path / "clip.work"
    real_unlink, deleted = Path.unlink, []
    entries = [p for p in work.iterdir() if p.name != ".lock"]
    assert len(entries) >= 3 and all(p.is_file() for p in entries), entries

    def stopped_before_the_last(self, *a, **k):  # the latest moment a stop can come
        if len(deleted) == len(entries) - 1:
            raise KeyboardInterrupt
        deleted.append(self.name)
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", stopped_before_the_last)
    with pytest.raises(KeyboardInterrupt):
        runs.clear_workdir(work)
    monkeypatch.undo()
    assert [p.name for p in work.iterdir() if p.name != ".lock"] == ["run.json"], deleted
    capsys.readouterr()
    assert main(args + ["--overwrite"]) == 0
    assert main(args + ["--overwrite", "--restart", "--set", "train.seed=3"]) == 0


KILLED_AFTER_ONE_RENAME = """
import os, signal, sys
from vinpaint.media import writers
real_commit = writers.commit
def renamed_then_killed(*args, **kwargs):
    real_commit(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
writers.commit = renamed_then_killed
from vinpaint.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_between_its_final_renames_says_so_until_one_puts_them_all_in_place(clip, tmp_path, capsys):
    """The outputs are put in place by one rename each; a kill -9 between two left a new video beside the earlier
    run's PNG folder and config, and nothing said so. A note beside them now says it, the next run warns, and
    the run that writes them all removes the note."""
    out = tmp_path / "out"
    args = ["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(out / "clean.mkv"),
            "-o", str(out / "frames"), *QUICK]
    assert main(args) == 0
    note = out / "clean.incomplete.txt"
    assert not note.exists()
    again = [*args, "--overwrite", "--set", "train.seed=3"]
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_ONE_RENAME, *again, "--restart"],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    text = note.read_text()
    assert "stopped while it put these outputs in place" in text
    for name in ("clean.mkv", "frames", "clean.config.json", "clean.matte"):
        assert str(out / name) in text, text
    assert json.loads((out / "clean.config.json").read_text())["train"]["seed"] != 3  # the earlier run's still
    capsys.readouterr()
    assert main(again) == 0
    err = capsys.readouterr().err
    assert f"an earlier run was stopped while it put its outputs in place: {out / 'clean.mkv'}" in err, err
    assert not note.exists()
    assert json.loads((out / "clean.config.json").read_text())["train"]["seed"] == 3
    assert main(again) == 0
    assert "stopped while it put" not in capsys.readouterr().err


def test_a_rename_that_fails_leaves_the_note_only_beside_an_earlier_runs_outputs(tmp_path, monkeypatch):
    """A rename that fails (a full disk) keeps the note: outputs of two runs may be there. On a first run every
    output renamed in is new and removed with the failure, and the note listed nothing left: it goes too."""
    from vinpaint.cli.outputs import Litter
    from vinpaint.media import writers

    real_commit, calls = writers.FileSink.commit, []

    def second_fails(self):
        calls.append(self.path)
        if len(calls) % 2 == 0:
            raise OSError(28, "No space left on device")
        real_commit(self)

    monkeypatch.setattr(writers.FileSink, "commit", second_fails)
    note, outputs = tmp_path / "clean.incomplete.txt", [tmp_path / "clean.config.json", tmp_path / "clean.loss.png"]

    def run() -> None:
        with pytest.raises(OSError):
            with Litter(tmp_path / "clean.work", outputs, note=note), writers.staged_outputs(note):
                writers.write_marked(outputs[0], json.dumps({"preset": 1, "variant": 1, "train": 1}).encode())
                writers.write_marked(outputs[1], writers.encode_png(np.zeros((4, 4), np.uint8)))

    run()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the first run's own output and its note: gone
    monkeypatch.undo()
    writers.write_marked(outputs[0], json.dumps({"preset": 0, "variant": 0, "train": 0}).encode())  # an earlier run's
    writers.write_marked(outputs[1], writers.encode_png(np.zeros((4, 4), np.uint8)))
    monkeypatch.setattr(writers.FileSink, "commit", second_fails)
    run()
    assert note.is_file() and "clean.loss.png" in note.read_text()  # a new config beside the earlier run's picture


def test_a_run_writing_fewer_outputs_keeps_an_earlier_killed_runs_note_for_the_rest(tmp_path, monkeypatch):
    """A run killed between its renames left the note listing a video and a sequence; a later run writing only
    the video removed the note, and the half-replaced sequence of two runs was said nowhere (a hunt found it).
    The note now keeps the earlier run's outputs until a run writes them; a failed run of new outputs too."""
    from vinpaint.cli.outputs import Litter
    from vinpaint.media import writers

    note = tmp_path / "a.incomplete.txt"
    video, frame = tmp_path / "a.config.json", tmp_path / "c.0001.png"
    picture = writers.encode_png(np.zeros((4, 4), np.uint8))
    real_commit = writers.FileSink.commit

    def fails_at(name):
        def commit(self):
            if self.path.name == name:
                raise OSError(28, "No space left on device")
            real_commit(self)
        return commit

    def write(paths) -> None:
        with writers.staged_outputs(note):
            for path in paths:
                writers.write_marked(path, picture if path.suffix == ".png" else b'{"preset": 0}')

    write([video, frame])
    monkeypatch.setattr(writers.FileSink, "commit", fails_at(frame.name))
    with pytest.raises(OSError):
        write([video, frame])  # the video renamed, the frame not: the note lists both
    monkeypatch.undo()
    assert str(video) in note.read_text() and str(frame) in note.read_text()
    write([video])
    assert note.is_file(), "a run that wrote only the video removed the note about the frame"
    assert str(frame) in note.read_text() and str(video) not in note.read_text()
    other = tmp_path / "b.loss.png"
    monkeypatch.setattr(writers.FileSink, "commit", fails_at(other.name))
    with pytest.raises(OSError):
        with Litter(tmp_path / "b.work", [other], note=note), writers.staged_outputs(note):
            writers.write_marked(other, picture)
    monkeypatch.undo()
    assert str(frame) in note.read_text(), "a failed run of new outputs removed an earlier run's note"
    write([video, frame, other])  # every output either run listed
    assert not note.exists()
    # the same outputs spelled another way (from their folder): the note named them as typed, so it was never
    # removed (a review found it); a pattern counts by its first file, whatever its frame count
    monkeypatch.setattr(writers.FileSink, "commit", fails_at(frame.name))
    with pytest.raises(OSError):
        write([video, frame])
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    with writers.staged_outputs(Path(note.name)):
        for path in (Path(video.name), Path(frame.name)):
            writers.write_marked(path, picture if path.suffix == ".png" else b'{"preset": 0}')
    assert not note.exists()


def test_an_output_folder_named_in_latin_1_gets_its_outputs(clip, tmp_path, capsys):
    """A folder name that is not UTF-8 (an old zip's, an SMB share's): the note written while the outputs are put
    in place could not encode it, so a finished run ended in a traceback with its outputs left half-way under
    temporary names."""
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    done = subprocess.run([sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask",
                           str(clip["masks"]), "-o", str(folder / "clean.mkv"), "-o", str(folder / "frames"), *QUICK],
                          capture_output=True, timeout=300, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")[-3000:]
    names = sorted(p.name for p in folder.iterdir())
    assert "clean.mkv" in names and "frames" in names and not any(n.endswith(".partial") for n in names), names
    assert "clean.incomplete.txt" not in names
    assert b"caf\xe9" in done.stdout  # printed as it is on disk, as ls prints it


def test_a_video_size_the_encoder_refuses_is_said_before_training(tmp_path, capsys):
    """FFV1 refuses a 1-pixel-wide video: found when the result was encoded, after training, it was a traceback."""
    frames = np.random.default_rng(0).integers(0, 255, (8, 64, 1, 3), dtype=np.uint8)
    masks = np.zeros((8, 64, 1), np.uint8)
    masks[:, 20:30] = 255
    write_png_sequence(tmp_path / "frames", frames)
    write_png_sequence(tmp_path / "masks", masks)
    refused(capsys, ["inpaint", tmp_path / "frames", "--mask", tmp_path / "masks", "-o", tmp_path / "thin.mkv",
                     *QUICK],
            r"codec ffv1 cannot encode a 1x64 video \(FFmpeg refuses that size\); write a PNG folder or a frame "
            r"pattern")
    assert not (tmp_path / "thin.work").exists() and not (tmp_path / "thin.mkv").exists()


def test_two_runs_writing_the_same_output_with_their_own_work_directories_are_refused(clip, tmp_path, capsys):
    """Each run locked only its work directory: two runs of one output with their own --work-dir both said they
    wrote it, their files replacing each other's. The outputs are locked too (here, a run holding them)."""
    from vinpaint.cli.outputs import OutputPlan
    from vinpaint.cli.runs import OutputLock

    out = tmp_path / "shared.mkv"
    with OutputLock(OutputPlan.from_args([str(tmp_path / "frames"), str(out)], "auto")):
        refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, "--work-dir",
                         tmp_path / "mine.work", *QUICK],
                rf"another vinpaint run is writing {re.escape(str(out))} \(or files beside, inside or around it\); "
                r"wait for it to finish")
    assert not out.exists()
    assert main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(out), "--work-dir",
                 str(tmp_path / "mine.work"), *QUICK]) == 0  # released: the run goes ahead


@pytest.mark.parametrize("held,given", [("res", "res/%05d.png"), ("res/%05d.png", "res"),
                                        ("res", "res/sub/out.mkv")])
def test_a_run_writing_inside_a_folder_another_run_writes_is_refused(clip, tmp_path, capsys, held, given):
    """Before (session 34): `-o res/%05d.png` and `-o res` at once locked different names, both said they wrote
    their frames, and the folder's swap took the other run's frames (and its config and matte went inside)."""
    from vinpaint.cli.outputs import OutputPlan
    from vinpaint.cli.runs import OutputLock

    with OutputLock(OutputPlan.from_args([str(tmp_path / held)], "auto")):
        refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / given, "--work-dir",
                         tmp_path / "mine.work", *QUICK], r"another vinpaint run is writing ")
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("held,given", [(["res/a.%04d.png", "res/a"], "res/b.%04d.png"),
                                        (["shot.mp4"], "shot/b.%04d.png")])
def test_runs_writing_side_by_side_go_ahead(clip, tmp_path, held, given):
    """Two patterns in one folder; and a video beside a folder of its stem's name (shot.mp4 and shot/...), whose
    side files' lock was once taken for that folder's (a review found them refused)."""
    from vinpaint.cli.outputs import OutputPlan
    from vinpaint.cli.runs import OutputLock

    with OutputLock(OutputPlan.from_args([str(tmp_path / path) for path in held], "auto")):
        assert main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / given),
                     "--work-dir", str(tmp_path / "b.work"), *QUICK]) == 0
    assert len(list((tmp_path / given).parent.glob("b.[0-9]*.png"))) == len(clip["frames"])


def test_a_named_pipe_beside_the_output_is_refused_not_waited_on(clip, tmp_path):
    """Looking for vinpaint's mark in a side file opened it: a named pipe there blocked the command for ever."""
    os.mkfifo(tmp_path / "out.config.json")
    done = subprocess.run([sys.executable, "-m", "vinpaint", "inpaint", str(clip["video"]), "--mask",
                           str(clip["masks"]), "-o", str(tmp_path / "out.mkv"), *QUICK],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"output {tmp_path / 'out.config.json'} exists and was not written by vinpaint" in done.stderr


def test_the_shared_lock_folder_is_never_a_link_followed_or_a_folder_changed(tmp_path):
    """A link planted where the shared lock folder goes made a run chmod its target 1777 (another user's private
    folder, where links in /tmp are followed). Now a link, a file, or a folder not open to all is left as it is and
    this user's own folder is used."""
    from vinpaint.cli.runs import lock_folder

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private)
    (tmp_path / "file").write_text("x")
    (tmp_path / "closed").mkdir(mode=0o755)
    for planted in ("link", "file", "closed"):
        used = lock_folder(tmp_path / planted)
        assert used != tmp_path / planted and used.name == f"vinpaint-locks-{os.getuid()}", planted
    assert (private.stat().st_mode & 0o7777) == 0o700 and ((tmp_path / "closed").stat().st_mode & 0o7777) == 0o755
    made = lock_folder(tmp_path / "new")
    assert made == tmp_path / "new" and (made.stat().st_mode & 0o7777) == 0o1777


def test_an_odd_run_record_is_one_sentence_not_a_traceback(clip, tmp_path, capsys):
    """fit_window reads a work directory's run.json to continue its cut: a window of 1e999 (inf) or a record nested
    thousands deep raised OverflowError / RecursionError."""
    for text in ('{"shot": {"frames": 12, "window": 1e999, "overlap": 4}}', "[" * 5000 + "]" * 5000):
        work = tmp_path / "clip.work"
        work.mkdir(exist_ok=True)
        (work / "run.json").write_text(text)
        code = main(["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "clip.mkv"),
                     "--check", *QUICK])
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, err
