"""The compositor's formats: frame patterns and ranges, OpenEXR (half, float), DPX and TIFF round trips with their
samples untouched, the replace-only-what-vinpaint-wrote rule per frame file, and the CLI end to end on an EXR
sequence with linear values above 1 and below 0."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vinpaint.errors import InputError
from vinpaint.media.imagefiles import read_image_file, write_image_file
from vinpaint.media.io import read_clip, read_inputs
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.sequences import parse_pattern, parse_range
from vinpaint.media.writers import MARK_TEXT, is_vinpaint_output, write_image_sequence


def vinpaint(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "vinpaint", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def hdr_frames(count: int = 3, height: int = 6, width: int = 8, seed: int = 0) -> np.ndarray:
    """Linear float frames with values far above 1 and below 0, exactly representable as half."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(0.5, 4.0, (count, height, width, 3)).astype(np.float16).astype(np.float32)
    frames[0, 0, 0] = [1000.0, -2.5, 65504.0]
    return frames


# ---- patterns and ranges ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,name", [("plate.%04d.exr", "plate.1001.exr"), ("plate.####.exr", "plate.1001.exr"),
                                       ("plate.%d.dpx", "plate.1001.dpx"), ("p_#.tif", "p_1001.tif"),
                                       ("a/b/shot_v2.%06d.png", "shot_v2.001001.png")])
def test_patterns_name_frames_as_compositors_do(text, name):
    pattern = parse_pattern(text)
    assert pattern.name(1001) == name
    assert pattern.number(name) == 1001
    assert pattern.name(12345) == name.replace("1001", "12345").replace("0012345", "012345")


def test_padding_is_exact_and_longer_numbers_are_written_in_full():
    pattern = parse_pattern("plate.%04d.exr")
    assert pattern.number("plate.0012.exr") == 12
    assert pattern.number("plate.012.exr") is None       # not what %04d writes
    assert pattern.number("plate.00012.exr") is None
    assert pattern.number("plate.10000.exr") == 10000
    assert pattern.number("plate.1001.exr.partial") is None
    assert parse_pattern("p.%d.exr").number("p.07.exr") is None


@pytest.mark.parametrize("text,words", [
    ("plate.%04d.%04d.exr", "exactly one frame field"), ("plate.exr", "exactly one frame field"),
    ("plate.%s.exr", "exactly one frame field"), ("plate.%4d.exr", "exactly one frame field"),
    ("plate.%04d.mov", "must end in one of"), ("plate.%04d", "must end in one of"),
    ("sh%ot/plate.%04d.exr", "in its folder"), ("plate%.%04d.exr", "besides its frame field"),
    ("plate.####.#.exr", "exactly one frame field"), ("plate.%012d.exr", "at most 9"),
])
def test_bad_patterns_are_one_sentence(text, words):
    with pytest.raises(InputError, match=words) as info:
        parse_pattern(text)
    assert str(info.value).count(". ") == 0 or "e.g." in str(info.value)


@pytest.mark.parametrize("text,expected", [("1001-1100", (1001, 1100)), (" 7 - 9 ", (7, 9)), ("12", (12, 12))])
def test_ranges(text, expected):
    assert parse_range(text) == expected


@pytest.mark.parametrize("text", ["", "a-b", "10-5", "-5", "1001:1100", "1-2-3", "1.5-3"])
def test_bad_ranges(text):
    with pytest.raises(InputError, match="--frames"):
        parse_range(text)


# ---- round trips --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", ["half", "float"])
def test_exr_round_trip_keeps_linear_values_bit_for_bit(tmp_path, sample):
    frames = hdr_frames()
    if sample == "float":
        frames = frames * np.float32(1.0 + 2 ** -20)  # not representable as half: float must stay float
    written = write_image_sequence(parse_pattern(tmp_path / "hdr.%04d.exr"), frames, [1001, 1002, 1003], sample)
    assert [p.name for p in written] == ["hdr.1001.exr", "hdr.1002.exr", "hdr.1003.exr"]
    clip = read_clip(tmp_path / "hdr.####.exr")
    assert clip.numbers == [1001, 1002, 1003] and clip.sample == sample
    assert clip.frames.dtype == np.float32
    assert np.array_equal(clip.frames, frames)
    assert clip.frames.max() > 1000 and clip.frames.min() < -2
    assert all(is_vinpaint_output(p) for p in written)


@pytest.mark.parametrize("extension", [".tif", ".dpx"])
def test_16_bit_tiff_and_dpx_round_trip(tmp_path, extension):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 65536, (2, 5, 7, 3), dtype=np.uint16)
    write_image_sequence(parse_pattern(tmp_path / f"deep.%04d{extension}"), frames, [1, 2])
    clip = read_clip(tmp_path / f"deep.%04d{extension}")
    assert clip.frames.dtype == np.uint16 and clip.sample == "uint16"
    assert np.array_equal(clip.frames, frames)


def test_float_tiff_round_trip(tmp_path):
    frames = hdr_frames(2)
    write_image_sequence(parse_pattern(tmp_path / "f.#.tif"), frames, [5, 6])
    clip = read_clip(tmp_path / "f.#.tif")
    assert clip.sample == "float" and np.array_equal(clip.frames, frames)


def test_ten_bit_dpx_reads_as_16_bit(tmp_path):
    import OpenImageIO as oiio

    path = tmp_path / "ten.0001.dpx"
    out = oiio.ImageOutput.create(str(path))
    spec = oiio.ImageSpec(4, 3, 3, "uint16")
    spec.attribute("oiio:BitsPerSample", 10)
    assert out.open(str(path), spec)
    out.write_image(np.full((3, 4, 3), 1023 * 64, np.uint16))  # 10-bit white
    out.close()
    image, sample = read_image_file(path)
    assert sample == "uint16" and image.dtype == np.uint16 and int(image.min()) == 65535


def test_floats_cannot_go_where_they_would_be_clipped(tmp_path):
    with pytest.raises(InputError, match="cannot hold without clipping"):
        write_image_sequence(parse_pattern(tmp_path / "x.%04d.dpx"), hdr_frames(1), [1])
    assert list(tmp_path.iterdir()) == []


# ---- reading sequences --------------------------------------------------------------------------------------------

def test_frames_picks_a_range_and_gaps_are_refused(tmp_path):
    frames = hdr_frames(5)
    write_image_sequence(parse_pattern(tmp_path / "p.%04d.exr"), frames, [1000, 1001, 1002, 1003, 1005])
    clip = read_clip(tmp_path / "p.%04d.exr", (1001, 1003))
    assert clip.numbers == [1001, 1002, 1003] and np.array_equal(clip.frames, frames[1:4])
    assert clip.names == ["p.1001", "p.1002", "p.1003"]
    with pytest.raises(InputError, match="jump from 1003 to 1005"):
        read_clip(tmp_path / "p.%04d.exr")
    with pytest.raises(InputError, match="frame 1004 .*is missing"):
        read_clip(tmp_path / "p.%04d.exr", (1003, 1005))
    with pytest.raises(InputError, match="no files match"):
        read_clip(tmp_path / "q.%04d.exr")
    with pytest.raises(InputError, match="frame pattern"):
        read_clip(tmp_path / "p.1000.exr", (1, 2))


def test_half_and_float_frames_do_not_mix(tmp_path):
    write_image_file(tmp_path / "m.1.exr", hdr_frames(1)[0], "half", MARK_TEXT)
    write_image_file(tmp_path / "m.2.exr", hdr_frames(1)[0], "float", MARK_TEXT)
    with pytest.raises(InputError, match="m.2.exr .* float but m.1.exr is .* half-float"):
        read_clip(tmp_path / "m.#.exr")


def test_nan_and_damaged_files_are_refused(tmp_path):
    frame = hdr_frames(1)[0]
    frame[2, 3, 1] = np.nan
    write_image_file(tmp_path / "n.1.exr", frame, "float", MARK_TEXT)
    with pytest.raises(InputError, match="1 pixels that are NaN or infinite"):
        read_clip(tmp_path / "n.#.exr")
    (tmp_path / "d.1.exr").write_bytes(b"not an exr at all")
    with pytest.raises(InputError, match="cannot read image .*d.1.exr"):
        read_clip(tmp_path / "d.#.exr")


def test_a_mask_pattern_is_read_at_the_clips_frame_numbers(tmp_path):
    frames = hdr_frames(4)
    pattern = parse_pattern(tmp_path / "plate.%04d.exr")
    write_image_sequence(pattern, frames, [100, 101, 102, 103])
    mattes = np.zeros((5, 6, 8, 3), np.float32)
    for i in range(5):
        mattes[i, 1:3, i:i + 2] = 1.0
    write_image_sequence(parse_pattern(tmp_path / "matte.%04d.exr"), mattes, [100, 101, 102, 103, 104])
    clip, masks = read_inputs(tmp_path / "plate.%04d.exr", tmp_path / "matte.####.exr", frame_range=(101, 103))
    assert clip.numbers == [101, 102, 103]
    assert np.array_equal(masks, mattes[1:4, :, :, 0] > 0.5)


# ---- replacing only what vinpaint wrote ---------------------------------------------------------------------------

def test_a_users_frame_is_never_replaced(tmp_path):
    frames = hdr_frames(2)
    user = tmp_path / "c.0002.exr"
    import OpenImageIO as oiio

    out = oiio.ImageOutput.create(str(user))
    out.open(str(user), oiio.ImageSpec(8, 6, 3, "half"))
    out.write_image(np.zeros((6, 8, 3), np.float16))
    out.close()
    before = user.read_bytes()
    with pytest.raises(InputError, match="not written by vinpaint"):
        write_image_sequence(parse_pattern(tmp_path / "c.%04d.exr"), frames, [1, 2])
    assert user.read_bytes() == before and not (tmp_path / "c.0001.exr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.0002.exr"]  # no temporary file left
    write_image_sequence(parse_pattern(tmp_path / "c.%04d.exr"), frames, [1, 2], overwrite=True)
    assert np.array_equal(read_clip(tmp_path / "c.%04d.exr").frames, frames)
    write_image_sequence(parse_pattern(tmp_path / "c.%04d.exr"), frames * 2, [1, 2])  # now vinpaint's: replaced
    assert np.array_equal(read_clip(tmp_path / "c.%04d.exr").frames, frames * 2)


# ---- the command line ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (["plate.%04d.%04d.exr", "--mask", "m.png", "-o", "out.mkv"], "exactly one frame field"),
    (["plate.%04d.exr", "--mask", "m.png", "-o", "clean.%04d.mov"], "must end in one of"),
    (["plate.%04d.exr", "--mask", "m.png", "-o", "out", "--frames", "20-10"], "ends before it starts"),
    (["plate.%04d.exr", "--mask", "m.png", "-o", "out"], "no files match"),
])
def test_cli_bad_patterns_are_one_sentence_and_exit_2(tmp_path, args, words):
    result = subprocess.run([sys.executable, "-m", "vinpaint", "inpaint", *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_inpaints_an_exr_sequence_and_keeps_linear_values_outside_the_hole(tmp_path):
    sample = make_sample(SampleConfig(frames=14, width=128, height=64, seed=2))
    linear = (sample.frames.astype(np.float32) / 255.0) ** 2.2 * 4.0 - 0.25  # values above 1 and below 0
    linear = linear.astype(np.float16).astype(np.float32)
    numbers = list(range(1000, 1014))
    write_image_sequence(parse_pattern(tmp_path / "plate.%04d.exr"), linear, numbers, "half")
    write_image_sequence(parse_pattern(tmp_path / "roto.####.exr"),
                         np.repeat(sample.masks[..., None], 3, axis=3).astype(np.float32), numbers)
    result = vinpaint("inpaint", tmp_path / "plate.%04d.exr", "--mask", tmp_path / "roto.####.exr",
                      "--frames", "1001-1012", "-o", tmp_path / "out" / "clean.%04d.exr", "--preset", "tiny",
                      "--quiet")
    assert result.returncode == 0, result.stderr
    out = read_clip(tmp_path / "out" / "clean.%04d.exr")
    assert out.numbers == list(range(1001, 1013)) and out.sample == "half"
    source, holes = linear[1:13], sample.masks[1:13]
    assert np.array_equal(out.frames[~holes], source[~holes])  # bit for bit, values above 1 and below 0 included
    assert source[~holes].max() > 1.0 and source[~holes].min() < 0.0
    assert not np.array_equal(out.frames[holes], source[holes])
    assert np.isfinite(out.frames).all()
    assert sorted(p.name for p in (tmp_path / "out" / "clean.matte").glob("*.png"))[0] == "plate.1001.png"
    assert (tmp_path / "out" / "clean.config.json").is_file() and (tmp_path / "out" / "clean.work").is_dir()
    # the same command again re-writes vinpaint's own frames from the stored result; a float source into PNG is refused
    again = vinpaint("inpaint", tmp_path / "plate.%04d.exr", "--mask", tmp_path / "roto.####.exr",
                     "--frames", "1001-1012", "-o", tmp_path / "out" / "clean.%04d.exr", "--preset", "tiny", "--quiet")
    assert again.returncode == 0, again.stderr
    png = vinpaint("inpaint", tmp_path / "plate.%04d.exr", "--mask", tmp_path / "roto.####.exr",
                   "--frames", "1001-1012", "-o", tmp_path / "png_out", "--preset", "tiny", "--quiet")
    assert png.returncode == 2 and "without clipping" in png.stderr and not (tmp_path / "png_out").exists()


# ---- reference frames on the command line -------------------------------------------------------------------------

@pytest.mark.parametrize("reference,words", [
    ("1005", "takes FRAME=IMAGE"), ("x=paint.png", "takes FRAME=IMAGE"), ("=paint.png", "takes FRAME=IMAGE"),
    ("2000=paint.png", "has no frame 2000 (its frames are 1000 to 1011)"),
    ("1005=missing.png", "does not exist"), ("1005=small.png", "paint it at the clip's size"),
    ("1005=deep.tif", "save the painting at the clip's bit depth"),
    ("1005=patch.png", "flatten the painting over the plate first"),  # before: its transparent black was the plate
])
def test_cli_bad_references_are_one_sentence_and_exit_2(tmp_path, reference, words):
    from vinpaint.media.writers import write_png, write_png_sequence

    sample = make_sample(SampleConfig(frames=12, width=64, height=48, seed=1))
    write_image_sequence(parse_pattern(tmp_path / "plate.%04d.png"), sample.frames, list(range(1000, 1012)))
    write_png_sequence(tmp_path / "roto", sample.masks.astype(np.uint8) * 255)
    write_png(tmp_path / "paint.png", sample.frames[5])
    write_png(tmp_path / "small.png", sample.frames[5][:20])
    patch = np.dstack([sample.frames[5], np.zeros(sample.frames[5].shape[:2], np.uint8)])
    patch[10:30, 10:30, 3] = 255  # a painted patch, transparent elsewhere
    cv2.imwrite(str(tmp_path / "patch.png"), cv2.cvtColor(patch, cv2.COLOR_RGBA2BGRA))
    write_image_sequence(parse_pattern(tmp_path / "deep.%d.tif"), sample.frames[:1].astype(np.float32) / 255, [1])
    (tmp_path / "deep.1.tif").rename(tmp_path / "deep.tif")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = vinpaint("inpaint", tmp_path / "plate.%04d.png", "--mask", tmp_path / "roto", "-o", tmp_path / "out",
                      "--preset", "tiny", "--reference", reference.replace("paint", str(tmp_path / "paint"))
                      .replace("small", str(tmp_path / "small")).replace("deep", str(tmp_path / "deep"))
                      .replace("patch", str(tmp_path / "patch"))
                      .replace("missing", str(tmp_path / "missing")), timeout=120)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.slow
def test_cli_reference_frame_is_used_and_carried(tmp_path):
    from vinpaint.engine import inpaint, make_config
    from vinpaint.media.writers import write_png_sequence

    sample = make_sample(SampleConfig(frames=12, width=128, height=64, seed=3))
    numbers = list(range(1000, 1012))
    write_image_sequence(parse_pattern(tmp_path / "plate.%04d.png"), sample.frames, numbers)
    write_png_sequence(tmp_path / "roto", sample.masks.astype(np.uint8) * 255)
    paint = sample.frames[5].copy()
    paint[sample.masks[5]] = [40, 90, 200]
    write_image_sequence(parse_pattern(tmp_path / "paint.%04d.png"), paint[None], [1005])
    common = ["--mask", tmp_path / "roto", "--preset", "tiny", "--seed", "2", "--set", "loss.perceptual=0", "--quiet"]
    result = vinpaint("inpaint", tmp_path / "plate.%04d.png", "-o", tmp_path / "out" / "clean.%04d.png",
                      "--reference", f"1005={tmp_path / 'paint.1005.png'}", *common)
    assert result.returncode == 0, result.stderr
    out = read_clip(tmp_path / "out" / "clean.%04d.png")
    assert out.numbers == numbers
    assert np.array_equal(out.frames[5], paint), "the painted frame is the result there"
    config = make_config("tiny", "dip-vid-flow", **{"train.seed": 2, "loss.perceptual": 0.0})
    want = inpaint(sample.frames, sample.masks, config, references={5: paint})
    assert np.array_equal(out.frames, want.frames)
    plain = inpaint(sample.frames, sample.masks, config)
    assert not np.array_equal(want.frames[4], plain.frames[4]), "the painting reaches the next frame"
