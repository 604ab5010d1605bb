"""Reference frames and the matte layer through a real daemon over real ZeroMQ: the optional `references` of
job.open (in the content hash, uploaded as kind "reference"), `job.fetch`'s `layer`, and `vinpaint submit` with
--reference writing OUT.matte, each against the embedded engine's result for the same clip."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from daemon_fixtures import DaemonProcess, synthetic_clip
from vinpaint.host_bridge.client import Client, RequestError
from vinpaint.protocol.content_hash import clip_hash, item_digest

pytestmark = pytest.mark.slow
SEED = 4
QUICK = {"loss.perceptual": 0.0}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    store = tmp_path_factory.mktemp("refjobs") / "store"
    with DaemonProcess(store) as d:
        yield d


def clip_with_truth():
    """A synthetic RGB clip, its holes, and the 'true' background: the clip itself with the hole painted grey-blue
    (what an artist might paint), so a reference differs visibly from what the model would generate."""
    frames, masks = synthetic_clip(t=12, channels=3, seed=1)
    truth = frames.copy()
    truth[masks] = np.array([40, 90, 200], np.uint8)
    return frames, masks, truth


def embedded(frames, masks, references):
    from vinpaint.engine import inpaint, make_config

    config = make_config("tiny", "dip-vid-flow", **{"train.seed": SEED, **QUICK})
    return inpaint(frames, masks, config, references=references)


def test_reference_frames_and_mattes_match_the_embedded_engine(daemon):
    frames, masks, truth = clip_with_truth()
    references = {5: truth[5]}
    with Client(daemon.address) as c:
        assert {"references", "matte"} <= set(c.hello()["features"])
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=QUICK, references=references)
        plain = c.submit(frames, masks, preset="tiny", seed=SEED, overrides=QUICK)
        assert job != plain, "the references are part of the content hash, so of the job id"
        c.wait(job, timeout_s=600)
        got = c.results(job)
        mattes = c.results(job, layer="matte")
        c.wait(plain, timeout_s=600)
        got_plain = c.results(plain)
        with pytest.raises(RequestError) as bad:
            c.request("job.fetch", {"job": job, "index": 0, "layer": "alpha"})
        assert bad.value.code == "bad_request" and bad.value.field == "body.layer"
        kept = daemon.store / "jobs" / job / "results" / "00003.matte.bin"
        kept.rename(kept.with_suffix(".away"))  # as a job finished by a daemon that kept no mattes
        try:
            with pytest.raises(RequestError) as old:
                c.fetch(job, 3, layer="matte")
            assert old.value.code == "internal" and "which wrote no mattes" in str(old.value)
        finally:
            kept.with_suffix(".away").rename(kept)
    want = embedded(frames, masks, references)
    assert np.array_equal(got, want.frames)
    assert mattes.dtype == np.uint8 and mattes.shape == (*masks.shape, 1)
    assert np.array_equal(mattes[..., 0], want.matte)
    assert np.array_equal(got[5], truth[5]), "the painted frame comes back as painted"
    assert not mattes[5].any() and mattes[4].any(), "frame 5 had nothing left to fill; its neighbours did"
    assert set(np.unique(mattes)) <= {0, 1, 2}
    assert np.array_equal(got_plain, embedded(frames, masks, None).frames)
    assert not np.array_equal(got[4][masks[4]], got_plain[4][masks[4]]), "the painting reaches the next frame"


def test_references_are_checked_uploaded_and_hashed(daemon):
    frames, masks, truth = clip_with_truth()
    wire_masks = (masks.astype(np.uint8) * 255)[..., None]
    t, h, w, ch = frames.shape
    fd, md = [item_digest(f) for f in frames], [item_digest(m) for m in wire_masks]
    content = clip_hash(t, h, w, ch, "u1", "u1", fd, md, {2: item_digest(truth[2])})
    assert content != clip_hash(t, h, w, ch, "u1", "u1", fd, md)
    assert clip_hash(t, h, w, ch, "u1", "u1", fd, md, {}) == clip_hash(t, h, w, ch, "u1", "u1", fd, md)
    with Client(daemon.address) as c:
        with pytest.raises(RequestError) as bad:
            c.open_job(frames=t, width=w, height=h, channels=ch, dtype="u1", mask_dtype="u1", content_hash=content,
                       settings={"preset": "tiny"}, references=[12])
        assert bad.value.code == "bad_request" and bad.value.field == "body.references"
        opened = c.open_job(frames=t, width=w, height=h, channels=ch, dtype="u1", mask_dtype="u1",
                            content_hash=content, settings={"preset": "tiny", "seed": SEED, "overrides": QUICK},
                            references=[2])
        job = opened["job"]
        assert opened["have_references"] == []
        for i in range(t):
            c.upload(job, "frame", i, frames[i])
            c.upload(job, "mask", i, wire_masks[i])
        with pytest.raises(RequestError) as incomplete:
            c.start(job)
        assert incomplete.value.code == "incomplete" and incomplete.value.body["missing_references"] == [2]
        assert c.status(job)["missing_references"] == 1
        with pytest.raises(RequestError) as unlisted:
            c.upload(job, "reference", 3, truth[3])
        assert unlisted.value.code == "bad_request" and "not one of the reference frames" in str(unlisted.value)
        with pytest.raises(RequestError) as shape:
            c.upload(job, "reference", 2, truth[2][..., :1])
        assert shape.value.code == "bad_buffer"
        c.upload(job, "reference", 2, truth[1])  # the wrong painting: the hash over the upload catches it
        with pytest.raises(RequestError) as mismatch:
            c.start(job)
        assert mismatch.value.code == "hash_mismatch"
        reply = c.upload(job, "reference", 2, truth[2])
        assert reply["missing_references"] == 0
        assert c.start(job)["state"] in ("queued", "training", "done")
        reopened = c.open_job(frames=t, width=w, height=h, channels=ch, dtype="u1", mask_dtype="u1",
                              content_hash=content, settings={"preset": "tiny", "seed": SEED, "overrides": QUICK},
                              references=[2])
        assert reopened["job"] == job and reopened["have_references"] == [2]
        c.cancel(job)


def test_submit_with_a_reference_writes_the_matte_beside_the_result(daemon, tmp_path):
    from vinpaint.cli.outputs import matte_picture
    from vinpaint.media.io import read_clip
    from vinpaint.media.writers import write_png, write_png_sequence

    frames, masks, truth = clip_with_truth()
    write_png_sequence(tmp_path / "plate", frames, names=[f"plate.{1001 + i}" for i in range(len(frames))])
    write_png_sequence(tmp_path / "roto", (masks * 255).astype(np.uint8))
    write_png(tmp_path / "paint.png", truth[5])
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "submit", tmp_path / "plate", "--mask",
                           tmp_path / "roto", "-o", out, "--wait", "--server", daemon.address, "--preset", "tiny",
                           "--seed", str(SEED), "--set", "loss.perceptual=0", "--reference",
                           f"5={tmp_path / 'paint.png'}", "--quiet"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    want = embedded(frames, masks, {5: truth[5]})
    assert np.array_equal(read_clip(out).frames, want.frames)
    matte = read_clip(tmp_path / "out.matte")
    assert matte.names[0] == "plate.1001"
    assert np.array_equal(matte.frames[..., 0], matte_picture(want.matte))
    bad = subprocess.run([sys.executable, "-m", "vinpaint", "submit", tmp_path / "plate", "--mask",
                          tmp_path / "roto", "-o", tmp_path / "out2", "--server", daemon.address, "--reference",
                          f"12={tmp_path / 'paint.png'}"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "has no frame 12" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "out2").exists()


def test_submit_takes_and_writes_exr_sequences_like_inpaint(daemon, tmp_path):
    """A scripted render through the daemon: an EXR pattern with --frames in, an EXR pattern out with the same
    frame numbers, linear values outside the hole bit for bit, the fill the embedded engine's."""
    from vinpaint.media.io import read_clip
    from vinpaint.media.sequences import parse_pattern
    from vinpaint.media.writers import write_image_sequence

    frames, masks, _ = clip_with_truth()
    linear = ((frames.astype(np.float32) / 255.0) ** 2.2 * 3.0 - 0.1).astype(np.float16).astype(np.float32)
    numbers = list(range(1000, 1000 + len(frames) + 1))
    write_image_sequence(parse_pattern(tmp_path / "plate.%04d.exr"), np.concatenate([linear, linear[-1:]]),
                         numbers, "half")
    write_image_sequence(parse_pattern(tmp_path / "roto.%04d.png"),
                         np.repeat((np.concatenate([masks, masks[-1:]]) * 255).astype(np.uint8)[..., None], 3, 3),
                         numbers)
    last = numbers[-2]
    proc = subprocess.run([sys.executable, "-m", "vinpaint", "submit", tmp_path / "plate.%04d.exr", "--mask",
                           tmp_path / "roto.####.png", "--frames", f"1000-{last}", "-o",
                           tmp_path / "out" / "clean.%04d.exr", "--wait", "--server", daemon.address, "--preset",
                           "tiny", "--seed", str(SEED), "--set", "loss.perceptual=0", "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = read_clip(tmp_path / "out" / "clean.%04d.exr")
    assert out.numbers == numbers[:-1] and out.sample == "half"
    assert np.array_equal(out.frames[~masks], linear[~masks]) and linear[~masks].max() > 1.0
    assert np.array_equal(out.frames, embedded(linear, masks, None).frames.astype(np.float16).astype(np.float32))
    assert (tmp_path / "out" / "clean.matte").is_dir() and (tmp_path / "out" / "clean.config.json").is_file()
