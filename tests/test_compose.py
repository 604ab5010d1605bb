"""Composed clips: mask fitting, looping/trimming, object pasting, reproducibility, layouts and bad input."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from vinpaint.errors import InputError
from vinpaint.evaluation import compose, dataset
from vinpaint.evaluation.compose import ComposeConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    assert dataset.imwrite(path, im)  # through bytes: any folder name


def make_data(root: Path, bg_len=12, src_len=5, w=64, h=32) -> Path:
    """bg/plain: frame i is flat grey level 10*i; obj: a red object whose 8x8 mask moves right 2 px per frame."""
    for i in range(bg_len):
        _png(root / "bg" / "plain" / "frames" / f"{i:05d}.png", np.full((h, w, 3), 10 * i, np.uint8))
    for i in range(src_len):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 200 + i  # "red object", identifiable per frame
        mask = np.zeros((h, w), np.uint8)
        mask[8:16, 8 + 2 * i:16 + 2 * i] = 255
        _png(root / "obj" / "frames" / f"{i:05d}.png", frame)
        _png(root / "obj" / "masks" / f"{i:05d}.png", mask)
    return root


def test_pingpong_loops_back_and_forth():
    assert compose.pingpong(0, 7, 3) == [0, 1, 2, 1, 0, 1, 2]
    assert compose.pingpong(2, 3, 5) == [2, 3, 4]  # trimmed: a window of a longer sequence
    assert compose.pingpong(0, 3, 1) == [0, 0, 0]


def test_fit_centre_crops_then_resizes_masks():
    m = np.zeros((20, 40), bool)  # 2:1 source into a 1:1 target: columns 10..29 survive
    m[:, 10:12] = True            # at the crop's left edge
    m[:, 0:10] = True             # cropped away
    out = dataset.fit(m, 10, 10, mask=True)
    assert out.shape == (10, 10)
    assert out[:, 0].all() and not out[:, 1:].any()  # 2 source columns -> 1 target column, area 1.0


def test_fit_mask_threshold_is_half_coverage():
    m = np.zeros((4, 4), bool)
    m[0:2, 0:2] = True   # full coverage of target pixel (0,0)
    m[2, 2:4] = True     # half coverage of target pixel (1,1) -> kept (>= 0.5)
    m[0, 2] = True       # quarter coverage of (0,1) -> dropped
    assert dataset.fit(m, 2, 2, mask=True).tolist() == [[True, False], [False, True]]


def test_masks_are_looped_when_the_source_is_shorter(tmp_path):
    data = make_data(tmp_path, bg_len=12, src_len=5)
    cfg = ComposeConfig(seed=1, count=1, frames=10, width=64, height=32)
    manifest = compose.make_manifest(data, cfg)
    e = manifest["clips"][0]
    assert len(e["mask_frames"]) == 10 and set(e["mask_frames"]) <= set(range(5))
    steps = np.abs(np.diff(e["mask_frames"]))
    assert (steps == 1).all()  # back and forth, never a jump
    assert e["background_frames"] == list(range(e["background_frames"][0], e["background_frames"][0] + 10))


def test_masks_are_trimmed_when_the_source_is_longer(tmp_path):
    data = make_data(tmp_path, bg_len=6, src_len=12)
    e = compose.make_manifest(data, ComposeConfig(seed=2, count=1, frames=4, width=64, height=32))["clips"][0]
    first = e["mask_frames"][0]
    assert e["mask_frames"] == list(range(first, first + 4)) and first + 4 <= 12


def test_clip_is_shortened_to_the_background(tmp_path):
    data = make_data(tmp_path, bg_len=3, src_len=5)
    e = compose.make_manifest(data, ComposeConfig(count=1, frames=10, width=64, height=32))["clips"][0]
    assert e["background_frames"] == [0, 1, 2]


def test_composed_pixels(tmp_path):
    data = make_data(tmp_path)
    manifest = compose.make_manifest(data, ComposeConfig(seed=0, count=1, frames=6, width=64, height=32))
    e = manifest["clips"][0]
    clip = compose.build_clip(data, manifest, e)
    assert clip.frames.shape == (6, 32, 64, 3) and clip.masks.shape == (6, 32, 64)
    for k in range(6):
        expected = np.zeros((32, 64), bool)
        j = e["mask_frames"][k]
        expected[8:16, 8 + 2 * j:16 + 2 * j] = True
        if e["mirror"]:
            expected = expected[:, ::-1]
        assert (clip.masks[k] == expected).all()
        # truth: the untouched background frame; outside the hole the input equals it bit for bit
        assert (clip.truth[k] == 10 * e["background_frames"][k]).all()
        assert (clip.frames[k][~clip.masks[k]] == clip.truth[k][~clip.masks[k]]).all()
        # inside: the source clip's own object pixels (red level identifies the source frame)
        assert (clip.frames[k][clip.masks[k]][:, 0] == 200 + j).all()


def test_grey_fill(tmp_path):
    data = make_data(tmp_path)
    manifest = compose.make_manifest(data, ComposeConfig(count=1, frames=4, width=64, height=32, fill="grey"))
    clip = compose.build_clip(data, manifest, manifest["clips"][0])
    assert (clip.frames[clip.masks] == 128).all()


def test_same_seed_same_set_and_round_trip(tmp_path):
    data = make_data(tmp_path / "data", bg_len=12, src_len=12)
    cfg = ComposeConfig(seed=7, count=3, frames=5, width=64, height=32)
    m1 = compose.make_manifest(data, cfg)
    assert m1 == compose.make_manifest(data, cfg)
    compose.write_set(data, m1, tmp_path / "set")
    back = compose.read_set(tmp_path / "set")
    again = compose.load_manifest(tmp_path / "set" / "manifest.json")
    assert again == json.loads(json.dumps(m1))
    for clip, entry in zip(back, again["clips"]):
        fresh = compose.build_clip(data, again, entry)
        assert (clip.frames == fresh.frames).all() and (clip.masks == fresh.masks).all()
        assert (clip.truth == fresh.truth).all()
    # the written set is itself a data folder: its clips have frames and masks
    masked, _ = dataset.scan(tmp_path / "set")
    assert sorted(c.name for c in masked) == sorted(e["name"] for e in m1["clips"])


def test_folders_named_in_no_utf8_compose_and_read_back(tmp_path):
    """Latin-1 folder names (surrogate escapes in Python): cv2.imread/imwrite given such a str crashed the whole
    process with SIGSEGV (a hunt, 2026-12-03: `vinpaint compose` and `eval` exited 139, no message)."""
    data = make_data(tmp_path / os.fsdecode(b"d\xe9ta"), bg_len=6, src_len=6)
    manifest = compose.make_manifest(data, ComposeConfig(count=1, frames=3, width=64, height=32))
    out = tmp_path / os.fsdecode(b"s\xe9t")
    compose.write_set(data, manifest, out)
    back = compose.read_set(out)
    fresh = compose.build_clip(data, manifest, manifest["clips"][0])
    assert len(back) == 1 and (back[0].frames == fresh.frames).all() and (back[0].masks == fresh.masks).all()


def test_a_set_written_again_replaces_the_earlier_one_and_a_stopped_one_is_not_read(tmp_path, monkeypatch):
    """A shorter set over a longer one kept the old frames past its length and the old clips, and `eval
    --composed` scored the mix; a set stopped half-way read as complete, and its re-run was refused (a hunt,
    2026-12-03). Now the set is replaced, and a stopped one is refused by read_set until it is written again."""
    data = make_data(tmp_path / "data", bg_len=12, src_len=12)
    out = tmp_path / "set"
    long = compose.make_manifest(data, ComposeConfig(seed=1, count=3, frames=6, width=64, height=32))
    compose.write_set(data, long, out)
    dropped = [e["name"] for e in long["clips"][1:]]
    (out / dropped[1] / "notes.txt").write_text("mine")  # someone's file in a clip the next set drops
    short = compose.make_manifest(data, ComposeConfig(seed=5, count=1, frames=3, width=64, height=32))
    compose.write_set(data, short, out)
    back = compose.read_set(out)
    assert len(back) == 1 and len(back[0].frames) == 3
    assert short["clips"][0]["name"] not in dropped
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", short["clips"][0]["name"], dropped[1]])
    assert [p.name for p in (out / dropped[1]).iterdir()] == ["notes.txt"]  # compose's frames gone, the note kept
    for sub in ("frames", "masks", "truth"):
        assert len(list((out / short["clips"][0]["name"] / sub).iterdir())) == 3

    def stopped(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(compose, "_write_png", stopped)
    with pytest.raises(KeyboardInterrupt):
        compose.write_set(data, short, out)
    assert compose.interrupted_set(out)
    with pytest.raises(InputError, match="stopped while it was written; run the same `vinpaint compose` again"):
        compose.read_set(out)
    monkeypatch.undo()
    compose.write_set(data, short, out)
    assert not compose.interrupted_set(out) and len(compose.read_set(out)[0].frames) == 3


def test_a_masked_clip_is_a_background_with_its_object_in_the_truth(tmp_path):
    data = make_data(tmp_path, bg_len=12, src_len=8)
    for i in range(8):  # a second masked clip, "walker": green level 50+i, its own mask in the lower left
        mask = np.zeros((32, 64), np.uint8)
        mask[20:28, 2:10] = 255
        _png(tmp_path / "walker" / "frames" / f"{i:05d}.png", np.full((32, 64, 3), (0, 50 + i, 0), np.uint8))
        _png(tmp_path / "walker" / "masks" / f"{i:05d}.png", mask)
    cfg = ComposeConfig(seed=3, count=4, frames=5, width=64, height=32, backgrounds=["walker"])
    manifest = compose.make_manifest(data, cfg)
    for e in manifest["clips"]:
        assert e["background"] == "walker" and e["mask_source"] == "obj"  # never its own masks
        clip = compose.build_clip(data, manifest, e)
        for k, j in enumerate(e["background_frames"]):
            assert (clip.truth[k][..., 1] == 50 + j).all()  # walker's own frames, its object included
            assert (clip.frames[k][clip.masks[k]][:, 0] == 200 + e["mask_frames"][k]).all()
    both = compose.make_manifest(data, ComposeConfig(seed=0, count=6, frames=4, width=64, height=32,
                                                     backgrounds=["bg/plain", "obj"]))
    assert {(e["background"], e["mask_source"]) for e in both["clips"]} == {
        ("bg/plain", "obj"), ("bg/plain", "walker"), ("obj", "walker")}
    with pytest.raises(InputError, match="own masks"):
        compose.make_manifest(data, ComposeConfig(count=1, frames=4, width=64, height=32, backgrounds=["obj"],
                                                  mask_sources=["obj"]))
    with pytest.raises(InputError, match="'nowhere'"):
        compose.make_manifest(data, ComposeConfig(count=1, frames=4, width=64, height=32,
                                                  backgrounds=["bg/plain", "nowhere"]))


def test_davis_layout_palette_masks(tmp_path):
    for i in range(3):
        _png(tmp_path / "JPEGImages" / "480p" / "cows" / f"{i:05d}.jpg", np.zeros((16, 16, 3), np.uint8))
        m = np.zeros((16, 16), np.uint8)
        m[4:8, 4:8] = 3  # a palette index, not 255
        _png(tmp_path / "Annotations" / "480p" / "cows" / f"{i:05d}.png", m)
    masked, backgrounds = dataset.scan(tmp_path)
    assert [c.name for c in masked] == ["cows"] and backgrounds == []
    masks = dataset.read_masks(masked[0].masks["masks"])
    assert masks.shape == (3, 16, 16) and masks.sum() == 3 * 16


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        compose.make_manifest(tmp_path / "missing", ComposeConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="background"):
        compose.make_manifest(tmp_path / "empty", ComposeConfig())
    with pytest.raises(InputError, match="fill"):
        ComposeConfig(fill="blue").validate()
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="manifest"):
        compose.load_manifest(bad)
    bad.write_text(json.dumps({"version": 1, "clips": [{"name": "x"}]}))
    with pytest.raises(InputError, match="lacks"):
        compose.load_manifest(bad)
    entry = {"name": "x", "background": "b", "mask_source": "m", "mask_folder": "masks", "mirror": False}
    bad.write_text(json.dumps({"version": 1, "clips": [{**entry, "background_frames": [0] * 10**6,
                                                        "mask_frames": [0] * 10**6}]}))
    with pytest.raises(InputError, match="lists 1000000 frames; a clip has 2 to 5000"):  # minutes and 6 GB a clip
        compose.load_manifest(bad)


def test_real_data_composes(tmp_path):
    if not SHARED.is_dir():
        pytest.skip("the shared real clips (../shared/data) are not on this machine")
    cfg = ComposeConfig(seed=0, count=1, frames=3, width=128, height=64, backgrounds=["bg/tree"],
                        mask_sources=["dogs-jump"])
    manifest = compose.make_manifest(SHARED, cfg)
    clip = compose.build_clip(SHARED, manifest, manifest["clips"][0])
    assert clip.frames.shape == (3, 64, 128, 3)
    assert 0.0 < clip.masks.mean() < 0.5
    assert (clip.frames[~clip.masks] == clip.truth[~clip.masks]).all()
    swan = compose.make_manifest(SHARED, ComposeConfig(seed=0, count=1, frames=3, width=128, height=64,
                                                       backgrounds=["blackswan"], mask_sources=["tennis"]))
    e = swan["clips"][0]
    assert (e["background"], e["mask_source"]) == ("blackswan", "tennis")
    clip = compose.build_clip(SHARED, swan, e)
    assert (clip.truth == dataset.read_frames(SHARED / "blackswan" / "frames", e["background_frames"],
                                              (128, 64))).all()
