"""vinpaint's mark means ours *and unchanged since vinpaint wrote it* (media/marks.py). The bare mark was metadata,
which other programs carry over when they save a file again: GIMP and ImageMagick keep a PNG's Comment, oiiotool an
EXR's Software attribute, a tool copying every tag a video's comment and encoder tag. A frame painted over in one of
them still looked like ours, and a re-run with the same -o replaced the fix without a word. The defect tests below
(painted over, resaved, remuxed, an older vinpaint's bare mark) each failed before the digest; the rest pin that
vinpaint still replaces its own untouched outputs without --overwrite."""
from __future__ import annotations

import re
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from test_output_folders import QUICK, clip, digests, inpaint, refused  # noqa: F401 (clip: a fixture)
from vinpaint.cli.main import main
from vinpaint.errors import InputError
from vinpaint.media.sequences import parse_pattern
from vinpaint.media.writers import MARKER, VideoSink, check_replaceable, encode_png, is_vinpaint_output, \
    write_image_sequence, write_png_sequence, write_video

CHANGED = "carries vinpaint's mark but changed since vinpaint wrote it"


def frames(count: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 24, 32, 3), dtype=np.uint8)


# ---- the way other programs save a file again, keeping vinpaint's mark ---------------------------------------------

def text_chunks(data: bytes) -> list[bytes]:
    """Every tEXt chunk of a PNG, whole (length, type, data, CRC)."""
    chunks, at = [], 8
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        if data[at + 4:at + 8] == b"tEXt":
            chunks.append(data[at:at + 12 + length])
        at += 12 + length
    return chunks


def painted_over_png(path: Path) -> None:
    """A PNG saved again by GIMP or ImageMagick after a retouch: new pixels, newly compressed, its Comment (here:
    every tEXt chunk, vinpaint's mark among them) kept."""
    kept = text_chunks(path.read_bytes())
    assert kept, "the frame carries no tEXt mark to keep"
    picture = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    picture[: picture.shape[0] // 2, : picture.shape[1] // 2] = 17  # the fix painted in
    data = cv2.imencode(".png", picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    path.write_bytes(data[:33] + b"".join(kept) + data[33:])


def resaved_by_oiio(path: Path) -> None:
    """An EXR saved again as oiiotool does: every attribute of the spec kept (Software among them), new pixels."""
    oiio = pytest.importorskip("OpenImageIO")
    source = oiio.ImageInput.open(str(path))
    spec = source.spec()
    pixels = np.array(source.read_image(0, 0, 0, spec.nchannels, "float"))
    source.close()
    pixels[:4, :4] = 0.25
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(pixels), out.geterror()
    out.close()


def retouched_video(ours: Path, to: Path, change: bool = True, title: str = "") -> None:
    """Our video made again by a tool that copies every tag, the container's and the stream's (vinpaint's comment
    and encoder tag with them): re-encoded with changed pictures, or (`change` False) its packets copied as they
    are, a title added (`ffmpeg -i ours -c copy -metadata title=... to`)."""
    with av.open(str(ours)) as source, av.open(str(to), "w", format=source.format.name.split(",")[0]) as out:
        out.metadata.update(source.metadata)
        if title:
            out.metadata["title"] = title
        video = source.streams.video[0]
        if change:
            stream = out.add_stream(video.codec_context.name, rate=24)
            stream.width, stream.height, stream.pix_fmt = video.width, video.height, video.codec_context.pix_fmt
            stream.metadata.update(video.metadata)
            for i, frame in enumerate(source.decode(video=0)):
                picture = frame.to_ndarray(format="rgb24")
                picture[:8, :8] = 200
                new = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=stream.pix_fmt)
                new.pts = i
                out.mux(stream.encode(new))
            out.mux(stream.encode(None))
        else:
            stream = out.add_stream_from_template(video)
            stream.metadata.update(video.metadata)
            for packet in source.demux(video):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)


# ---- the defect: painted over, kept as ours ------------------------------------------------------------------------

def test_a_png_folder_with_a_frame_painted_over_is_kept_whole(clip, tmp_path, capsys):
    """The compositor paints a fix into frame 2 of our output in GIMP (which keeps the Comment), then runs the same
    command again: refused before anything is read, trained or written, naming the frame; --overwrite replaces it."""
    out = tmp_path / "clean"
    assert main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK]]) == 0
    painted_over_png(out / "00002.png")
    before = digests(out)
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, "--work-dir", tmp_path / "w",
                     *QUICK, "--feather", "1"],
            rf"output folder \S+clean was written by vinpaint, but its frame 00002\.png changed since \(edited in "
            r"another program\?")
    assert digests(out) == before and not (tmp_path / "w").exists()
    assert main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK,
                                  "--overwrite"]]) == 0
    assert (out / MARKER).is_file() and digests(out) != before
    # and vinpaint's own untouched output is replaced again without --overwrite
    assert main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK]]) == 0


def test_a_saved_config_edited_after_the_run_is_not_replaced(clip, tmp_path, capsys):
    """Any JSON object with a config's keys counted as ours: a compositor's edit to clean.config.json (a learning
    rate to try) was replaced by the next run without a word (a hunt found it). Its mark carries a digest now;
    the run reloads and compares it as before (its --config, the side files' owner)."""
    out, config = tmp_path / "clean.mkv", tmp_path / "clean.config.json"
    assert inpaint(clip, out) == 0
    from vinpaint.media.writers import OURS, mark_state

    assert mark_state(config) == OURS and '"written_by": "written by vinpaint; sha256=' in config.read_text()
    assert inpaint(clip, out) == 0  # untouched: replaced without --overwrite, as before
    edited = config.read_text().replace('"learning_rate": ', '"learning_rate": 0.5, "was": ', 1)
    config.write_text(edited)
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK],
            rf"output \S+clean\.config\.json {CHANGED} \(edited or saved again in another program\?\)")
    assert config.read_text() == edited
    config.write_text('{"preset": "fast", "variant": "dip-vid", "train": {}}')  # the keys alone are not the mark
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", out, *QUICK],
            r"output \S+clean\.config\.json was written by an older vinpaint")
    assert inpaint(clip, out, "--overwrite") == 0 and mark_state(config) == OURS
    assert main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", tmp_path / "again.mkv",
                                  "--config", config, "--quiet"]]) == 0  # a marked config loads as a config


@pytest.mark.parametrize("extension", [".png", ".exr", ".tif", ".dpx"])
def test_a_frame_file_saved_again_keeping_the_mark_is_not_replaced(tmp_path, extension):
    """A frame pattern's file retouched and saved again with vinpaint's mark kept (a PNG's tEXt chunk, an EXR's,
    TIFF's or DPX's Software attribute): the run refuses, naming it, and writes nothing."""
    if extension != ".png":
        pytest.importorskip("OpenImageIO")
    pattern = parse_pattern(str(tmp_path / f"c.%04d{extension}"))
    write_image_sequence(pattern, frames(), [1, 2, 3])
    edited = tmp_path / f"c.0002{extension}"
    (painted_over_png if extension == ".png" else resaved_by_oiio)(edited)
    before = digests(tmp_path)
    with pytest.raises(InputError, match=rf"output \S+c\.0002\{extension} {CHANGED} \(edited or saved again"):
        write_image_sequence(pattern, frames(seed=1), [1, 2, 3])
    assert digests(tmp_path) == before  # no frame replaced, no temporary file left
    write_image_sequence(pattern, frames(seed=1), [1, 2, 3], overwrite=True)  # asked for
    assert is_vinpaint_output(edited)


def test_a_video_retouched_by_a_tool_that_copies_every_tag_is_not_replaced(clip, tmp_path, capsys):
    """Session 34 caught a re-encode by its own encoder tag; a tool that copies the stream's tags too (and so
    vinpaint's encoder tag) made a video that still looked like ours, and `-o` replaced it."""
    ours = tmp_path / "e.mkv"
    assert main([str(a) for a in ["inpaint", clip["video"], "--mask", clip["masks"], "-o", ours, *QUICK]]) == 0
    retouched_video(ours, tmp_path / "retouched.mkv")
    (tmp_path / "retouched.mkv").replace(ours)
    before = ours.read_bytes()
    capsys.readouterr()
    refused(capsys, ["inpaint", clip["video"], "--mask", clip["masks"], "-o", ours, *QUICK, "--feather", "1"],
            rf"output \S+e\.mkv {CHANGED}")
    assert ours.read_bytes() == before


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".mov", ".avi"])
@pytest.mark.parametrize("change", [True, False], ids=["re-encoded", "remuxed with a title"])
def test_a_video_made_again_with_our_tags_is_not_ours(tmp_path, suffix, change):
    ours = tmp_path / f"e{suffix}"
    write_video(ours, frames(4), 24)
    check_replaceable(ours)  # ours, untouched
    retouched_video(ours, tmp_path / f"again{suffix}", change=change, title="client cut v2")
    with pytest.raises(InputError, match=rf"{CHANGED}"):
        check_replaceable(tmp_path / f"again{suffix}")
    check_replaceable(tmp_path / f"again{suffix}", overwrite=True)


def test_outputs_of_a_vinpaint_before_the_digest_need_overwrite(tmp_path):
    """The bare mark cannot show that a file is unchanged, so what an older vinpaint wrote is no longer replaced
    without --overwrite (one sentence says why); its side files stay its own (carries_mark)."""
    body = b"Comment\0written by vinpaint"
    bare = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    plain = cv2.imencode(".png", frames(1)[0])[1].tobytes()
    old = {"f.png": plain[:33] + bare + plain[33:]}
    (tmp_path / "f.png").write_bytes(old["f.png"])
    with av.open(str(tmp_path / "v.mkv"), "w") as out:  # as VideoSink wrote it until the digest
        out.metadata["comment"] = "written by vinpaint"
        stream = out.add_stream("ffv1", rate=24)
        stream.metadata["encoder"] = "written by vinpaint"
        stream.width, stream.height, stream.pix_fmt = 32, 24, "bgr0"
        for i, picture in enumerate(frames(2)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="bgr0")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    names = ["f.png", "v.mkv"]
    try:
        from vinpaint.media.imagefiles import write_image_file

        write_image_file(tmp_path / "x.exr", frames(1)[0], "half", "written by vinpaint")
        names.append("x.exr")
    except ImportError:
        pass
    from vinpaint.media.writers import carries_mark  # here: the module's other tests ran before it existed

    for name in names:
        with pytest.raises(InputError, match=rf"output \S+{re.escape(name)} was written by an older vinpaint, whose "
                                             "mark cannot show that it is unchanged since; .*--overwrite"):
            check_replaceable(tmp_path / name)
        check_replaceable(tmp_path / name, overwrite=True)
        assert carries_mark(tmp_path / name)  # still the output its side files belong to
    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / MARKER).write_text("written by vinpaint\n")
    (folder / "00000.png").write_bytes(old["f.png"])
    with pytest.raises(InputError, match=r"output folder \S+clean was written by an older vinpaint, whose frames "
                                         r"\(00000\.png \.\.\.\) cannot show"):
        check_replaceable(folder, folder=True)


def test_a_frame_painted_over_after_the_first_check_is_caught_by_the_next(tmp_path):
    """A run checks before training and again before it writes; what it checked is remembered (by inode, size and
    times) so the second check costs a stat, yet a frame saved again while the run trained is read again."""
    folder = tmp_path / "clean"
    write_png_sequence(folder, frames())
    check_replaceable(folder, folder=True)
    size = (folder / "00001.png").stat().st_size
    painted_over_png(folder / "00001.png")
    assert (folder / "00001.png").stat().st_size != size  # (the remembered key would differ by its times alone)
    with pytest.raises(InputError, match=r"its frame 00001\.png changed since"):
        check_replaceable(folder, folder=True)


# ---- vinpaint's own untouched outputs are replaced as before -------------------------------------------------------

def test_untouched_outputs_are_replaced_without_overwrite(tmp_path):
    write_png_sequence(tmp_path / "clean", frames())
    write_png_sequence(tmp_path / "clean", frames(seed=1))
    for extension in (".png", ".exr", ".tif", ".dpx"):
        if extension != ".png":
            try:
                import OpenImageIO  # noqa: F401
            except ImportError:
                continue
        pattern = parse_pattern(str(tmp_path / f"p.%04d{extension}"))
        write_image_sequence(pattern, frames(2), [7, 8])
        write_image_sequence(pattern, frames(2, seed=1), [7, 8])
        assert all(is_vinpaint_output(pattern.path(n)) for n in (7, 8))
    for suffix in (".mkv", ".mp4", ".mov", ".avi"):
        write_video(tmp_path / f"v{suffix}", frames(4), 24)
        assert is_vinpaint_output(tmp_path / f"v{suffix}")
        sink = VideoSink(tmp_path / f"v{suffix}", "ffv1" if suffix in (".mkv", ".avi") else "x264-444", (32, 24),
                         Fraction(24), False)  # refuses here what is not ours
        for picture in frames(2, seed=1):
            sink.write(picture)
        sink.commit()
        with av.open(str(tmp_path / f"v{suffix}")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 2


def test_a_marked_png_is_an_ordinary_png_and_marking_is_idempotent(tmp_path):
    from vinpaint.media.marks import OURS, mark_png, png_state

    image = frames(1)[0]
    data = encode_png(image)
    assert mark_png(data) == data and len(text_chunks(data)) == 1
    assert text_chunks(data)[0][8:].startswith(b"Comment\0written by vinpaint; sha256=")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded[..., ::-1], image)
    (tmp_path / "a.png").write_bytes(data)
    assert png_state(tmp_path / "a.png") == OURS
    deep = encode_png((frames(1)[0].astype(np.uint16) * 257))
    (tmp_path / "b.png").write_bytes(deep)
    assert png_state(tmp_path / "b.png") == OURS


def test_a_file_cut_short_while_it_is_checked_is_judged_not_a_crash(tmp_path):
    """The check mapped the file (mmap): another program truncating it meanwhile (a render writing the same
    frame again) killed the run with SIGBUS, between two outputs' renames at the final check. Read now, it ends
    early and the file counts as changed."""
    import subprocess
    import sys

    script = r"""
import os, sys, threading, time
from pathlib import Path
from vinpaint.media.marks import PLACEHOLDER, sealed_state
path = Path(sys.argv[1])
for attempt in range(3):
    with open(path, "wb") as f:
        f.write(b"v/1\x01" + PLACEHOLDER.encode()[:-64] + b"a" * 64)
        f.write(b"\x5a" * (96 << 20))
    threading.Timer(0.005, os.truncate, (path, 0)).start()
    print(sealed_state(path), flush=True)
    time.sleep(0.05)
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "clean.0001.exr")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert set(done.stdout.split()) <= {"changed", "foreign"} and len(done.stdout.split()) == 3, done.stdout
