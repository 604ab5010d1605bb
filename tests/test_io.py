"""Reading and writing clips, masks and pictures: round trips, the file-level checks, and the pictures' content."""
from __future__ import annotations

import hashlib
import io
import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
from av.video.reformatter import Colorspace
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vinpaint.errors import InputError
from vinpaint.engine.flowviz import color_wheel, flow_to_rgb, flows_to_rgb
from vinpaint.media.io import read_clip, read_image, read_inputs, read_masks
from vinpaint.media.shot_input import FrameStream
from vinpaint.media.pictures import before_after_strip, loss_curve_png, pick_frames
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import (
    encode_png, resolve_codec, to_uint8, write_png, write_png_sequence, write_video,
)

DATA = Path(os.environ.get("VINPAINT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def noise_clip(frames=5, height=36, width=52, dtype=np.uint8, seed=0) -> np.ndarray:
    """Random pixels: the worst case for a codec, so only a lossless one can give them back exactly."""
    top = 65536 if dtype == np.uint16 else 256
    return np.random.default_rng(seed).integers(0, top, (frames, height, width, 3), dtype=dtype)


def smooth_clip(frames=6, height=48, width=64) -> np.ndarray:
    """Gradients that move: what a lossy codec is good at."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = [np.stack([xs / width, ys / height, 0.5 + 0.4 * np.sin((xs + 3 * t) / 9.0)], -1) for t in range(frames)]
    return to_uint8(np.stack(out))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- video ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,codec", [("out.mkv", "auto"), ("out.avi", "ffv1"), ("out.mp4", "x264rgb"),
                                        ("out.mov", "x264rgb")])
def test_lossless_video_round_trip_is_bit_exact(tmp_path, name, codec):
    frames = noise_clip()
    used = write_video(tmp_path / name, frames, Fraction(30000, 1001), codec)
    clip = read_clip(tmp_path / name)
    assert used in ("ffv1", "x264rgb")
    assert clip.kind == "video" and clip.frames.dtype == np.uint8
    np.testing.assert_array_equal(clip.frames, frames)
    assert clip.fps == Fraction(30000, 1001)
    assert leftovers(tmp_path) == []


def test_sixteen_bit_video_stays_sixteen_bit_with_ffv1(tmp_path):
    frames = noise_clip(dtype=np.uint16)
    write_video(tmp_path / "deep.mkv", frames, 24)
    clip = read_clip(tmp_path / "deep.mkv")
    assert clip.frames.dtype == np.uint16
    np.testing.assert_array_equal(clip.frames, frames)


def test_ten_bit_video_reads_as_sixteen_bit(tmp_path):
    """A ProRes 10-bit master must not be cut to 8 bits on the way in."""
    with av.open(str(tmp_path / "master.mov"), "w") as container:
        stream = container.add_stream("prores_ks", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv422p10le"
        for level in (10000, 30000, 50000):
            frame = np.full((48, 64, 3), level, np.uint16)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb48le")))
        container.mux(stream.encode(None))
    clip = read_clip(tmp_path / "master.mov")
    assert clip.frames.dtype == np.uint16 and clip.frames.shape == (3, 48, 64, 3)
    assert np.abs(clip.frames[:, 20, 30].astype(int) - np.array([[10000], [30000], [50000]])).max() < 200


@pytest.mark.parametrize("codec", ["x264-420", "x264-444"])
def test_high_quality_video_is_close_and_keeps_the_frame_rate(tmp_path, codec):
    frames = smooth_clip()
    write_video(tmp_path / "hq.mp4", frames, 25, codec)
    clip = read_clip(tmp_path / "hq.mp4")
    assert clip.frames.shape == frames.shape and clip.fps == 25
    mse = np.mean((clip.frames.astype(float) - frames) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) > 35
    with av.open(str(tmp_path / "hq.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"


@pytest.mark.parametrize("codec", ["x264-420", "x264-444"])
def test_the_same_frames_give_the_same_h264_video(tmp_path, codec):
    """x264's macroblock-tree rate control made another file, with other pixels, for the same frames run to run at
    some widths (this clip: four encodes, four files); a re-render must be the same video (an .mp4: the same
    bytes; Matroska would store a random segment id)."""
    frames = make_sample(SampleConfig(frames=30, width=320, height=192, seed=1)).frames
    digests = set()
    for i in range(3):
        write_video(tmp_path / f"{i}.mp4", frames, 24, codec)
        digests.add(hashlib.sha256((tmp_path / f"{i}.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_h264_outputs_are_converted_and_tagged_as_bt709(tmp_path):
    """Untagged, players decode HD H.264 as BT.709 and the colours shift everywhere, the pixels kept outside the
    hole included (before, 2026-12-01: converted with BT.601 and left untagged: (220,160,30) played as
    (225,158,23))."""
    flat = np.broadcast_to(np.array([220, 160, 30], np.uint8), (3, 48, 64, 3)).copy()
    write_video(tmp_path / "hd.mp4", flat, 25, "x264-420")
    with av.open(str(tmp_path / "hd.mp4")) as container:
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc) == (1, 1, 1)  # BT.709
        frame = next(container.decode(video=0))
        as_709 = frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709).to_ndarray()
    assert np.abs(as_709.astype(int) - flat[0]).max() <= 3
    assert np.abs(read_clip(tmp_path / "hd.mp4").frames.astype(int) - flat).max() <= 3


def _encoded(path: Path, frames: np.ndarray, times_ms: list[int] | None = None, audio: bool = False) -> None:
    """frames -> an H.264 .mp4 at 25 fps (or at the given times), with a silent AAC track when `audio`."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        stream.options = {"crf": "0"}
        if times_ms is not None:
            stream.time_base = Fraction(1, 1000)
        sound = container.add_stream("aac", rate=44100) if audio else None
        for i, image in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times_ms is not None:
                picture.pts, picture.time_base = times_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(picture))
        if sound is not None:
            silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            silence.sample_rate, silence.pts = 44100, 0
            container.mux(sound.encode(silence))
            container.mux(sound.encode(None))
        container.mux(stream.encode(None))


def test_a_phone_video_stored_turned_is_read_as_players_show_it(tmp_path):
    """A display matrix asking players for a quarter turn clockwise (what phones write instead of turning the
    pixels): the frames come out turned, so a mask drawn on the picture people see fits (before, 2026-12-01: read
    sideways and written sideways, without a word)."""
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    frames[:, :8, :8] = (255, 0, 0)  # the stored picture's top-left corner
    _encoded(tmp_path / "phone.mp4", frames)
    data = bytearray((tmp_path / "phone.mp4").read_bytes())
    matrix = data.find(b"tkhd") + 8 + 20 + 8 + 8  # the version-0 track header's 3x3 matrix
    data[matrix:matrix + 36] = struct.pack(">9I", 0, 0x10000, 0, (-0x10000) & 0xFFFFFFFF, 0, 0, 0, 0, 0x40000000)
    (tmp_path / "phone.mp4").write_bytes(bytes(data))
    clip = read_clip(tmp_path / "phone.mp4")
    assert clip.frames.shape == (3, 64, 48, 3)
    assert clip.frames[0, :8, -8:, 0].min() > 200 and clip.frames[0, :8, :8, 0].max() < 50  # now top-right
    assert any("turn it 90 degrees clockwise" in n and "48x64" in n for n in clip.notices), clip.notices
    streamed = FrameStream(tmp_path / "phone.mp4")  # the long-shot reader turns it the same way
    assert np.array_equal(streamed.read(0, 3), clip.frames) and streamed.clip.notices == clip.notices
    # A mirroring matrix is no rotation (PyAV reports a horizontal flip as -180 degrees): read as stored, and said.
    data[matrix:matrix + 36] = struct.pack(">9I", (-0x10000) & 0xFFFFFFFF, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    (tmp_path / "phone.mp4").write_bytes(bytes(data))
    clip = read_clip(tmp_path / "phone.mp4")
    assert clip.frames.shape == (3, 48, 64, 3) and clip.frames[0, :8, :8, 0].min() > 200
    assert any("asks players to mirror it" in n for n in clip.notices), clip.notices


def test_a_video_that_changes_size_on_the_way_is_one_sentence(tmp_path):
    """Two MPEG-TS exports joined (96x64, then 96x72): stacking the frames was a traceback, in the whole-clip
    reader and in the long-shot one (after its first window had trained)."""
    rng = np.random.default_rng(0)
    parts = []
    for height in (64, 72):
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 96, height, "yuv420p"
            for _ in range(6):
                picture = av.VideoFrame.from_ndarray(rng.integers(0, 255, (height, 96, 3), np.uint8), format="rgb24")
                container.mux(stream.encode(picture))
            container.mux(stream.encode(None))
        parts.append(buffer.getvalue())
    (tmp_path / "joined.ts").write_bytes(b"".join(parts))
    says = r"video \S+joined.ts changes size at frame 7 \(96x64 to 96x72\); export it at one size"
    with pytest.raises(InputError, match=says):
        read_clip(tmp_path / "joined.ts")
    stream = FrameStream(tmp_path / "joined.ts")
    assert stream.read(0, 6).shape == (6, 64, 96, 3)
    with pytest.raises(InputError, match=says):
        stream.read(4, 10)


def test_the_long_shot_reader_counts_the_frames_players_show(tmp_path):
    """It counted packets: a trimmed MP4 (an edit list hides 4 of its 24 coded frames) was 24 frames long, so a
    20-frame mask was refused and a 24-frame one trained, shifted by 4; a stream cut mid-GOP the same."""
    base = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (64, 200, 3), np.uint8), (9, 9), 3)
    with av.open(str(tmp_path / "trimmed.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 96, 64, "yuv420p", {"bf": "0"}
        stream.codec_context.time_base = Fraction(1, 25)
        for i in range(24):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, 2 * i:2 * i + 96]), format="rgb24")
            picture.pts, picture.time_base = i - 4, Fraction(1, 25)  # the first four before time 0: trimmed
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 96, 64, "yuv420p", {"g": "12"}
        for i in range(40):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i:i + 96]), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    data = buffer.getvalue()
    (tmp_path / "cut.ts").write_bytes(data[len(data) // 2 // 188 * 188:])  # from a TS packet mid-GOP
    # MPEG-4 Part 2 cut mid-GOP: its decoder gives a frame for the packets before the first key frame too
    context = av.CodecContext.create("mpeg4", "w")
    context.width, context.height, context.pix_fmt = 96, 64, "yuv420p"
    context.time_base, context.framerate, context.gop_size = Fraction(1, 24), Fraction(24), 6
    packets = []
    for i in range(24):
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, 2 * i:2 * i + 96]), format="rgb24")
        picture = picture.reformat(format="yuv420p")
        picture.pts = i
        packets += context.encode(picture)
    packets += context.encode(None)
    with av.open(str(tmp_path / "cut.avi"), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for packet in packets[3:]:
            packet.stream = stream
            container.mux(packet)
    for name, whole_length in (("trimmed.mp4", 24), ("cut.ts", 40), ("cut.avi", 24)):
        whole, streamed = read_clip(tmp_path / name), FrameStream(tmp_path / name)
        assert streamed.count == whole.frames.shape[0] < whole_length, name
        assert np.array_equal(streamed.read(0, streamed.count), whole.frames), name
    assert not any("truncated" in n for n in read_clip(tmp_path / "trimmed.mp4").notices)  # trimmed, not cut short


def test_an_untagged_hd_video_is_read_as_players_show_it(tmp_path):
    """An HD H.264 stream that names no colour matrix is BT.709 to players; read so, a plate written back
    (tagged BT.709) shows the colours the source showed (before, 2026-12-01: read as BT.601, 9 levels off)."""
    flat = np.broadcast_to(np.array([220, 160, 30], np.uint8), (2, 720, 1280, 3)).copy()
    with av.open(str(tmp_path / "hd.mp4"), "w") as container:  # as FFmpeg writes it by default: BT.601, no tags
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for image in flat:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))

    def shown(path):  # as an HD player decodes it
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709).to_ndarray()[360, 640].astype(int)

    clip = read_clip(tmp_path / "hd.mp4")
    assert np.abs(clip.frames[0, 360, 640].astype(int) - shown(tmp_path / "hd.mp4")).max() <= 1
    write_video(tmp_path / "out.mp4", clip.frames, 25, "x264-420")
    assert np.abs(shown(tmp_path / "out.mp4") - shown(tmp_path / "hd.mp4")).max() <= 2


def test_sound_and_uneven_frame_times_are_said_to_be_lost(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
    _encoded(tmp_path / "plain.mp4", frames)
    assert read_clip(tmp_path / "plain.mp4").notices == []
    _encoded(tmp_path / "talk.mp4", frames, audio=True)
    assert read_clip(tmp_path / "talk.mp4").notices == [
        f"video {tmp_path / 'talk.mp4'} has 1 audio track: the outputs carry the picture only (put the sound back "
        "in your editor)"]
    _encoded(tmp_path / "vfr.mp4", frames, times_ms=[0, 40, 80, 1000, 3000])
    notices = read_clip(tmp_path / "vfr.mp4").notices
    assert len(notices) == 1 and "variable frame rate (frames 0.04 s to 2 s apart)" in notices[0], notices
    assert FrameStream(tmp_path / "vfr.mp4").clip.notices == notices
    _encoded(tmp_path / "jitter.mp4", frames, times_ms=[0, 41, 79, 121, 160])  # a phone's jitter is not variable
    assert read_clip(tmp_path / "jitter.mp4").notices == []


def test_sixteen_bit_frames_written_to_an_eight_bit_codec_are_rounded(tmp_path):
    frames = np.full((3, 16, 16, 3), 257 * 200, np.uint16)
    write_video(tmp_path / "eight.mp4", frames, 25, "x264rgb")
    assert np.array_equal(read_clip(tmp_path / "eight.mp4").frames, np.full((3, 16, 16, 3), 200, np.uint8))


def test_output_checks_before_any_work(tmp_path):
    assert resolve_codec(tmp_path / "frames") == "png"
    assert resolve_codec(tmp_path / "a.MKV") == "ffv1"
    assert resolve_codec(tmp_path / "a.mp4") == "x264-420"
    with pytest.raises(InputError, match=r"cannot write '\.gif' files"):
        resolve_codec(tmp_path / "a.gif")
    with pytest.raises(InputError, match="codec ffv1 cannot go in a .mp4 file"):
        resolve_codec(tmp_path / "a.mp4", "ffv1")
    with pytest.raises(InputError, match="unknown codec 'h265'"):
        resolve_codec(tmp_path / "a.mkv", "h265")
    with pytest.raises(InputError, match="needs an even width and height but the video is 51x37"):
        resolve_codec(tmp_path / "a.mp4", "auto", (51, 37))
    assert resolve_codec(tmp_path / "a.mp4", "x264-444", (51, 37)) == "x264-444"


def test_a_failed_video_write_leaves_nothing(tmp_path):
    with pytest.raises(InputError):
        write_video(tmp_path / "odd.mp4", noise_clip(width=51), 25, "x264-420")
    assert list(tmp_path.iterdir()) == []


def test_a_video_replaces_the_old_one_whole(tmp_path):
    write_video(tmp_path / "v.mkv", noise_clip(seed=1), 25)
    write_video(tmp_path / "v.mkv", noise_clip(seed=2), 25)
    np.testing.assert_array_equal(read_clip(tmp_path / "v.mkv").frames, noise_clip(seed=2))
    assert [p.name for p in tmp_path.iterdir()] == ["v.mkv"]
    assert (tmp_path / "v.mkv").stat().st_mode & 0o044  # readable by others, as a plain write would be


# ---- image folders ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_sequence_round_trip(tmp_path, dtype):
    frames = noise_clip(frames=3, dtype=dtype)
    written = write_png_sequence(tmp_path / "seq", frames)
    assert [p.name for p in written] == ["00000.png", "00001.png", "00002.png"]
    clip = read_clip(tmp_path / "seq")
    assert clip.kind == "images" and clip.frames.dtype == dtype
    np.testing.assert_array_equal(clip.frames, frames)
    assert clip.names == ["00000", "00001", "00002"]
    assert leftovers(tmp_path) == []


def test_png_sequence_keeps_names_and_replaces_the_folder(tmp_path):
    write_png_sequence(tmp_path / "seq", noise_clip(frames=4))
    write_png_sequence(tmp_path / "seq", noise_clip(frames=2), names=["shot_1001", "shot_1002"])
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [".vinpaint-output", "shot_1001.png",
                                                                    "shot_1002.png"]
    assert leftovers(tmp_path) == []


def test_a_failed_png_sequence_leaves_the_old_one(tmp_path):
    write_png_sequence(tmp_path / "seq", noise_clip(frames=2))
    with pytest.raises(ValueError):
        write_png_sequence(tmp_path / "seq", np.zeros((2, 8, 8, 3), np.float64))
    assert len(read_clip(tmp_path / "seq").frames) == 2
    assert leftovers(tmp_path) == []


def test_a_png_sequence_never_replaces_a_folder_of_other_things(tmp_path):
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="holds files that vinpaint did not write"):
        write_png_sequence(tmp_path / "seq", noise_clip(frames=1))
    assert (tmp_path / "seq" / "thesis.tex").read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_folder_order_is_natural_and_ignores_other_files(tmp_path):
    frames = noise_clip(frames=3)
    for name, frame in zip(["f2", "f10", "f1"], [frames[1], frames[2], frames[0]]):
        write_png(tmp_path / f"{name}.png", frame)
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / ".hidden.png").write_bytes(b"")
    clip = read_clip(tmp_path)
    assert clip.names == ["f1", "f2", "f10"]
    np.testing.assert_array_equal(clip.frames, frames)
    assert clip.fps == 25


def test_grey_and_alpha_images_become_rgb(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    (tmp_path / "g.png").write_bytes(encode_png(grey))
    assert np.array_equal(read_image(tmp_path / "g.png"), np.repeat(grey[..., None], 3, 2))
    rgba = np.dstack([noise_clip(1, 8, 8)[0], np.zeros((8, 8), np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])


def test_a_translucent_alpha_on_the_frames_is_said_to_be_dropped(tmp_path):
    """vinpaint fills RGB; an alpha that carries something (not opaque everywhere) is not in the output, and the
    user is told so rather than finding out in the comp. An opaque alpha loses nothing and says nothing."""
    frames = noise_clip(3, 8, 8)
    for folder, alpha in (("opaque", 255), ("translucent", 128)):
        (tmp_path / folder).mkdir()
        for t, frame in enumerate(frames):
            a = np.full((8, 8), 255 if t != 1 else alpha, np.uint8)
            cv2.imwrite(str(tmp_path / folder / f"f{t}.png"), cv2.cvtColor(np.dstack([frame, a]), cv2.COLOR_RGBA2BGRA))
    opaque, translucent = read_clip(tmp_path / "opaque"), read_clip(tmp_path / "translucent")
    assert np.array_equal(translucent.frames, frames) and np.array_equal(opaque.frames, frames)
    assert opaque.notices == []
    assert len(translucent.notices) == 1 and "f1.png" in translucent.notices[0]
    assert "alpha channel that is not opaque everywhere" in translucent.notices[0]
    path = tmp_path / "a.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuva420p"
        for frame in noise_clip(2, 16, 16):
            rgba = np.dstack([frame, np.full((16, 16), 100, np.uint8)])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    video = read_clip(path)
    assert video.frames.shape == (2, 16, 16, 3)
    assert any("has an alpha channel (yuva420p)" in notice for notice in video.notices), video.notices


def test_a_translucent_alpha_in_an_exr_is_said_to_be_dropped(tmp_path):
    pytest.importorskip("OpenImageIO")
    from vinpaint.media.imagefiles import read_image_file
    import OpenImageIO as oiio

    pixels = np.random.default_rng(1).random((6, 7, 4)).astype(np.float32)
    spec = oiio.ImageSpec(7, 6, 4, "float")
    spec.channelnames = ("R", "G", "B", "A")
    out = oiio.ImageOutput.create(str(tmp_path / "a.exr"))
    out.open(str(tmp_path / "a.exr"), spec)
    out.write_image(pixels)
    out.close()
    dropped: list[str] = []
    rgb, sample = read_image_file(tmp_path / "a.exr", dropped)
    assert sample == "float" and np.allclose(rgb, pixels[..., :3]) and dropped == ["a.exr"]


def test_an_exr_with_layers_is_read_from_its_main_layer(tmp_path):
    """Every channel's layer was cut off its name: a file of albedo.RGB and beauty.RGB was read as the albedo pass
    without a word, and a matte layer's A as the frame's alpha."""
    pytest.importorskip("OpenImageIO")
    from vinpaint.media.imagefiles import read_image_file
    import OpenImageIO as oiio

    def exr(name, channels, pixels):
        spec = oiio.ImageSpec(7, 6, len(channels), "float")
        spec.channelnames = tuple(channels)
        out = oiio.ImageOutput.create(str(tmp_path / name))
        out.open(str(tmp_path / name), spec)
        out.write_image(np.ascontiguousarray(pixels, np.float32))
        out.close()
        return tmp_path / name

    rng = np.random.default_rng(2)
    pixels = rng.random((6, 7, 7)).astype(np.float32)
    dropped: list[str] = []
    main = exr("main.exr", ["albedo.R", "albedo.G", "albedo.B", "R", "G", "B", "matte.A"], pixels)
    rgb, _ = read_image_file(main, dropped)
    assert np.array_equal(rgb, pixels[..., 3:6]) and dropped == []  # the matte layer's A is no alpha of the frame
    only = exr("only.exr", ["beauty.R", "beauty.G", "beauty.B", "depth.Z"], pixels[..., :4])
    assert np.array_equal(read_image_file(only, dropped)[0], pixels[..., :3])
    both = exr("both.exr", ["albedo.R", "albedo.G", "albedo.B", "beauty.R", "beauty.G", "beauty.B"], pixels[..., :6])
    assert np.array_equal(read_image_file(both, dropped)[0], pixels[..., 3:6])  # the pass named as the picture
    blender = exr("blender.exr", ["ViewLayer.AO.R", "ViewLayer.AO.G", "ViewLayer.AO.B", "ViewLayer.Combined.R",
                                  "ViewLayer.Combined.G", "ViewLayer.Combined.B", "ViewLayer.Depth.Z"], pixels)
    assert np.array_equal(read_image_file(blender, dropped)[0], pixels[..., 3:6])
    passes = exr("passes.exr", ["albedo.R", "albedo.G", "albedo.B", "diffuse.R", "diffuse.G", "diffuse.B"],
                 pixels[..., :6])
    with pytest.raises(InputError, match=r"holds no unnamed R, G, B channels but the layers albedo, diffuse; "):
        read_image_file(passes, dropped)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([np.uint8, np.uint16]), st.integers(0, 2 ** 31))
def test_png_bytes_round_trip_any_size(height, width, dtype, seed):
    image = noise_clip(1, height, width, dtype, seed)[0]
    decoded = cv2.imdecode(np.frombuffer(encode_png(image), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), image)


def test_to_uint8_rounds_to_nearest():
    assert to_uint8(np.array([0, 128, 32767, 32768, 65535], np.uint16)).tolist() == [0, 0, 127, 128, 255]
    assert to_uint8(np.array([-1.0, 0.5, 2.0], np.float32)).tolist() == [0, 128, 255]


# ---- masks --------------------------------------------------------------------------------------------------------

def mask_frames(count=4, height=36, width=52) -> np.ndarray:
    masks = np.zeros((count, height, width), bool)
    for t in range(count):
        masks[t, 10:20, 5 + 5 * t: 15 + 5 * t] = True
    return masks


def as_images(masks: np.ndarray) -> np.ndarray:
    return np.where(masks, 255, 0).astype(np.uint8)


def test_mask_folder_white_is_hole_and_invert_swaps(tmp_path):
    masks = mask_frames()
    write_png_sequence(tmp_path / "m", as_images(masks))
    np.testing.assert_array_equal(read_masks(tmp_path / "m", 4, (52, 36)), masks)
    np.testing.assert_array_equal(read_masks(tmp_path / "m", 4, (52, 36), invert=True), ~masks)


def test_static_mask_image_is_broadcast_to_every_frame(tmp_path):
    static = mask_frames(1)[0]
    write_png(tmp_path / "m.png", as_images(static))
    masks = read_masks(tmp_path / "m.png", 7, (52, 36))
    assert masks.shape == (7, 36, 52) and masks.flags.writeable
    assert all(np.array_equal(m, static) for m in masks)
    assert not read_masks(tmp_path / "m.png", 7, (52, 36), invert=True)[:, static].any()


def test_mask_as_lossy_video_survives_thresholding(tmp_path):
    masks = mask_frames(count=6, height=48, width=64)
    write_video(tmp_path / "m.mp4", np.repeat(as_images(masks)[..., None], 3, 3), 25, "x264-420")
    got = read_masks(tmp_path / "m.mp4", 6, (64, 48))
    assert np.mean(got != masks) < 0.01


def test_coloured_label_masks_count_as_holes(tmp_path):
    labels = np.zeros((1, 8, 8, 3), np.uint8)
    labels[0, :4, :4] = (128, 0, 0)   # the first colour of the DAVIS palette
    write_png_sequence(tmp_path / "m", labels)
    assert read_masks(tmp_path / "m", 1, (8, 8))[0].sum() == 16


def test_label_masks_with_small_values_count_any_non_zero(tmp_path):
    masks = mask_frames(3)
    write_png_sequence(tmp_path / "ones", masks.astype(np.uint8))           # 0/1 masks: black to the eye
    np.testing.assert_array_equal(read_masks(tmp_path / "ones", 3, (52, 36)), masks)
    ids = masks.astype(np.uint8) * np.array([1, 2, 3], np.uint8)[:, None, None]  # instance ids
    write_png_sequence(tmp_path / "ids", ids)
    np.testing.assert_array_equal(read_masks(tmp_path / "ids", 3, (52, 36)), masks)
    grey = np.where(masks, 100, 20).astype(np.uint8)                         # a dim mask is still a threshold
    write_png_sequence(tmp_path / "grey", grey)
    assert not read_masks(tmp_path / "grey", 3, (52, 36)).any()


def test_sixteen_bit_masks(tmp_path):
    masks = mask_frames(2)
    write_png_sequence(tmp_path / "m", (masks * 65535).astype(np.uint16))
    np.testing.assert_array_equal(read_masks(tmp_path / "m", 2, (52, 36)), masks)


# ---- file-level problems: one sentence each -----------------------------------------------------------------------

def test_frame_count_mismatch_names_both_numbers(tmp_path):
    write_png_sequence(tmp_path / "v", noise_clip(frames=5))
    write_png_sequence(tmp_path / "m", as_images(mask_frames(3)))
    with pytest.raises(InputError, match=r"has 3 frames but the video has 5"):
        read_inputs(tmp_path / "v", tmp_path / "m")


def test_size_mismatch_names_both_sizes(tmp_path):
    write_png_sequence(tmp_path / "v", noise_clip(frames=4))
    write_png_sequence(tmp_path / "m", as_images(mask_frames(4, 30, 40)))
    with pytest.raises(InputError, match=r"is 40x30 but the video is 52x36"):
        read_inputs(tmp_path / "v", tmp_path / "m")
    write_png(tmp_path / "static.png", as_images(mask_frames(1, 30, 52)[0]))
    with pytest.raises(InputError, match=r"is 52x30 but the video is 52x36"):
        read_inputs(tmp_path / "v", tmp_path / "static.png")


def broken_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "0.png").write_bytes(b"\x89PNG junk")
    return folder


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "nothing.mp4", r"input .*nothing\.mp4 does not exist"),
    (lambda p: (p / "bad.mp4").write_bytes(b"this is not a video" * 50) and p / "bad.mp4", r"cannot open video"),
    (lambda p: (p / "empty.mkv").write_bytes(b"") or p / "empty.mkv", r"cannot open video"),
    (lambda p: (p / "empty").mkdir() or p / "empty", r"holds no images"),
    (lambda p: write_png(p / "one.png", noise_clip(1)[0]) or p / "one.png", r"is a single image"),
    (lambda p: broken_folder(p / "broken"), r"cannot read image .*0\.png: the file is empty, damaged"),
])
def test_unusable_inputs_are_one_sentence(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as caught:
        read_clip(make(tmp_path))
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_mixed_frame_sizes_in_a_folder(tmp_path):
    write_png(tmp_path / "0.png", noise_clip(1)[0])
    write_png(tmp_path / "1.png", noise_clip(1, 20, 20)[0])
    with pytest.raises(InputError, match="is 20x20 8-bit but 0.png is 52x36 8-bit"):
        read_clip(tmp_path)


def test_missing_mask(tmp_path):
    with pytest.raises(InputError, match=r"mask .* does not exist"):
        read_masks(tmp_path / "m.png", 3, (8, 8))


@pytest.mark.skipif(not (DATA / "tennis" / "masks").is_dir(), reason="shared real clips not present")
def test_real_clip_and_masks_read_together():
    clip, masks = read_inputs(DATA / "tennis" / "frames", DATA / "tennis" / "masks")
    assert clip.frames.shape == (70, 240, 432, 3) and clip.frames.dtype == np.uint8
    assert masks.shape == (70, 240, 432) and 0.01 < masks.mean() < 0.2


# ---- flow colours and pictures ------------------------------------------------------------------------------------

def test_flow_colours_follow_the_wheel():
    flow = np.zeros((3, 4, 2), np.float32)
    flow[0, 0] = (2, 0)     # right: red
    flow[0, 1] = (-2, 0)    # left: cyan
    flow[0, 2] = (0, 4)     # down, beyond the scale: drawn darker
    flow[0, 3] = (np.nan, 1)
    rgb = flow_to_rgb(flow, max_magnitude=2.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 4, 3)
    assert rgb[1, 1].tolist() == [255, 255, 255]             # still: white
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [0, 255, 255]
    assert rgb[0, 2].max() < 200
    assert np.array_equal(flow_to_rgb(flow * 3.0)[0, 0], flow_to_rgb(flow)[0, 0])  # own scale by default


def test_flow_colours_share_one_scale_across_frames():
    flows = np.zeros((2, 2, 2, 2), np.float32)
    flows[0, 0, 0] = (1, 0)
    flows[1, 0, 0] = (4, 0)
    rgb = flows_to_rgb(flows)
    assert rgb[1, 0, 0].tolist() == [255, 0, 0] and rgb[0, 0, 0, 1] > 150  # the slow one is paler
    assert color_wheel(33).shape == (33, 33, 3)


def test_before_after_strip_shows_the_hole_and_the_result():
    frames = np.full((5, 20, 30, 3), 100, np.uint8)
    hole = np.zeros((5, 20, 30), bool)
    hole[:, 12:18, 20:28] = True
    result = np.full_like(frames, 200)
    strip = before_after_strip(frames, hole, result, count=3)
    assert strip.shape == (20 * 2 + 4, 30 * 3 + 4 * 2, 3)
    assert strip[15, 24, 0] > strip[15, 24, 1]                # tinted red in the hole
    assert strip[15, 2].tolist() == [100, 100, 100]            # untouched outside it
    assert strip[24 + 15, 25].tolist() == [200, 200, 200]     # the result row
    assert before_after_strip(frames, hole, result, frames, count=2).shape[0] == 20 * 3 + 4 * 2
    assert pick_frames(44, 4) == [0, 14, 29, 43] and pick_frames(2, 4) == [0, 1]


def test_loss_curve_is_a_png():
    history = [(step, {"recon": 1.0 / (step + 1), "flow": 0.3}) for step in range(0, 100, 10)]
    for data in (loss_curve_png(history), loss_curve_png([])):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (400, 700, 3)
    assert io.BytesIO(loss_curve_png(history)).read(4) == b"\x89PNG"
