"""Writing results: a video at the source frame rate with a chosen codec, PNG folders and frame patterns, whole or
frame by frame (the sinks, which a long shot fills a window at a time). All writes are atomic.

A video goes to a temporary name in the same folder and is renamed into place when complete; a PNG sequence is
built in a temporary folder and swapped in. An interrupted or failed write leaves the previous output (or nothing).

Everything written here is marked as vinpaint's: a folder holds a `.vinpaint-output` file, a video carries the
container comment "written by vinpaint; sha256=..." (and its stream the encoder tag "written by vinpaint"), a PNG a
tEXt chunk saying the same, a frame file its Software attribute; the digest (media/marks.py) shows the file is
unchanged since. `check_replaceable` lets a run replace only such outputs (or anything, with --overwrite), so a
user's own files, and ours that a user changed since, are never replaced.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from vinpaint.errors import InputError
from vinpaint.files import atomic_write_bytes, commit, exchange, fsync_dir, naming, temp_sibling
from vinpaint.media.imagefiles import is_marked, write_image_file
from vinpaint.media.marks import CHANGED, DIGEST_FIELD, FOREIGN, MARK_TEXT, OURS, PLACEHOLDER, UNSEALED, mark_json, \
    mark_png, png_state, seal, sealed_state
from vinpaint.media.sequences import Pattern


@dataclass(frozen=True)
class VideoCodec:
    """One `--codec` choice: which FFmpeg encoder, pixel format and options, and which containers take it."""

    encoder: str
    pix_fmt: str
    pix_fmt_16: str | None
    """Pixel format for a 16-bit source; None means the video is written at 8 bits."""
    options: tuple[tuple[str, str], ...]
    lossless: bool
    containers: tuple[str, ...]
    summary: str


DETERMINISTIC_X264 = ("x264-params", "mbtree=0")
"""x264's macroblock-tree rate control gave another file, with other pixels, run to run for some frame widths (320
wide: four encodes, four results; 352 and 384: the same), threads or not: the same frames must give the same video.
Off, the files are about 13 % larger at crf 16 (and 0.1-0.6 dB closer to the frames)."""
CODECS: dict[str, VideoCodec] = {
    "ffv1": VideoCodec("ffv1", "bgr0", "gbrp16le", (("level", "3"), ("slicecrc", "1")), True,
                       (".mkv", ".avi"), "lossless FFV1 RGB, keeps 16-bit sources at 16 bits"),
    "x264rgb": VideoCodec("libx264rgb", "rgb24", None, (("crf", "0"), ("preset", "medium")), True,
                          (".mkv", ".mp4", ".mov"), "lossless H.264 in RGB (crf 0)"),
    "x264-444": VideoCodec("libx264", "yuv444p", None, (("crf", "16"), ("preset", "slow"), DETERMINISTIC_X264),
                           False, (".mkv", ".mp4", ".mov"), "high-quality H.264, full-resolution colour (crf 16)"),
    "x264-420": VideoCodec("libx264", "yuv420p", None, (("crf", "16"), ("preset", "slow"), DETERMINISTIC_X264),
                           False, (".mkv", ".mp4", ".mov"), "high-quality H.264 that every player opens (crf 16)"),
}
DEFAULT_CODEC = {".mkv": "ffv1", ".avi": "ffv1", ".mp4": "x264-420", ".mov": "x264-444"}
"""`--codec auto`: lossless where the container is made for it, widely playable H.264 otherwise."""
VIDEO_OUTPUTS = tuple(DEFAULT_CODEC)
BT709 = 1
"""FFmpeg's code for BT.709 as a colour matrix, primaries and transfer (AVCOL_SPC/PRI/TRC_BT709)."""
MARKER = ".vinpaint-output"
"""The file in every folder vinpaint writes; only a folder holding it (or an empty one) is ever replaced."""


def resolve_codec(path: Path, codec: str = "auto", size: tuple[int, int] | None = None) -> str:
    """Check an output path and codec before any work starts; returns the codec name actually used.

    A path with no extension is a folder for a PNG sequence (returns "png").
    """
    suffix = path.suffix.lower()
    if not suffix:
        return "png"
    if suffix not in DEFAULT_CODEC:
        raise InputError(f"cannot write '{suffix}' files; name the output .mp4, .mkv, .mov, .avi "
                         f"or give a folder name (no extension) for a PNG sequence.")
    name = DEFAULT_CODEC[suffix] if codec == "auto" else codec
    if name not in CODECS:
        raise InputError(f"unknown codec '{codec}'; choose one of auto, {', '.join(CODECS)}.")
    if suffix not in CODECS[name].containers:
        raise InputError(f"codec {name} cannot go in a {suffix} file; use {' or '.join(CODECS[name].containers)}.")
    if size is not None and CODECS[name].pix_fmt == "yuv420p" and (size[0] % 2 or size[1] % 2):
        raise InputError(f"codec {name} needs an even width and height but the video is {size[0]}x{size[1]}; "
                         + ("use --codec x264-444 or ffv1." if suffix == ".mkv" and codec != "auto" else
                            "use --codec x264-444 or a .mkv output."))
    if size is not None:
        check_encodable(name, size)
    return name


def check_encodable(name: str, size: tuple[int, int]) -> None:
    """The encoder opened once at the frame size, before any work: FFV1 refuses a 1-pixel-wide video and every
    codec a huge one, and found only at the end, after training, that was a traceback."""
    spec = CODECS[name]
    context = av.CodecContext.create(spec.encoder, "w")
    context.width, context.height, context.pix_fmt = size[0], size[1], spec.pix_fmt
    context.time_base = Fraction(1, 24)
    context.options = dict(spec.options)
    try:
        context.open()
    except av.FFmpegError:
        raise InputError(f"codec {name} cannot encode a {size[0]}x{size[1]} video (FFmpeg refuses that size); "
                         "write a PNG folder or a frame pattern (clean.%04d.png), or another --codec.") from None


def write_marked(path: Path, data: bytes) -> None:
    """A whole file, atomically (vinpaint.files); a PNG gets vinpaint's mark. Inside staged_outputs() it is put
    in place with the others at the end."""
    staged = _staged.get()
    data = mark_json(bytes(data)) if Path(path).suffix.lower() == ".json" else mark_png(bytes(data))
    if staged is None:
        atomic_write_bytes(Path(path), data)
    else:
        staged.append(FileSink(Path(path), data))


def encode_png(image: np.ndarray) -> bytes:
    """[H,W,3] RGB or [H,W] grey, uint8 or uint16 -> PNG bytes (16-bit stays 16-bit)."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16 samples, got {image.dtype}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError("PNG encoding failed")
    return mark_png(buf.tobytes())


def write_png(path: Path, image: np.ndarray) -> None:
    """One PNG, atomically."""
    write_marked(Path(path), encode_png(image))


def write_png_sequence(folder: Path, frames: np.ndarray, names: list[str] | None = None,
                       overwrite: bool = False) -> list[Path]:
    """[T,H,W,3] frames -> folder/00000.png ... (or the given stems) and the MARKER file, replacing the folder as
    a whole: an existing folder only when vinpaint wrote it or it is empty (anything, with `overwrite`)."""
    folder = Path(folder)
    names = list(names) if names else [f"{i:05d}" for i in range(len(frames))]
    if len(names) != len(frames):
        raise ValueError(f"{len(names)} names for {len(frames)} frames")
    _fill(PngFolderSink(folder, names, overwrite), frames)
    return [folder / f"{name}.png" for name in names]


def check_replaceable(path: Path, folder: bool = False, overwrite: bool = False) -> None:
    """Refuse, with one sentence, to replace anything at `path` that vinpaint did not write (see MARKER), unless
    `overwrite`. `folder`: the output is a folder of PNGs (else a file). Links are never written through."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        if overwrite:
            return  # the link itself is replaced; what it points to is left alone
        raise InputError(f"output {path} is a symbolic link; vinpaint replaces outputs whole and would replace the "
                         "link, not write through it; give the real path, or add --overwrite to replace the link.")
    if folder and not path.is_dir():
        raise InputError(f"output {path} is a file, so it cannot become a folder of PNGs.")
    if not folder and path.is_dir():
        raise InputError(f"output {path} is a folder, so it cannot become a file; give a file name.")
    if folder:
        _check_never_replaced(path)
    if overwrite or is_vinpaint_output(path):
        return
    if folder and (path / MARKER).is_file():
        name, state = next(_foreign(path))
        if state == CHANGED:
            raise InputError(f"output folder {path} was written by vinpaint, but its frame {name} changed since "
                             "(edited in another program? it kept vinpaint's mark, not vinpaint's pixels); vinpaint "
                             "replaces an output folder whole, so give a new or empty folder, or add --overwrite to "
                             "replace it whole.")
        if state == UNSEALED:
            raise InputError(f"output folder {path} was written by an older vinpaint, whose frames ({name} ...) "
                             "cannot show that they are unchanged since; give a new or empty folder, or, once "
                             "no frame there holds work of yours (a retouch would be replaced too), add "
                             "--overwrite to replace it whole.")
        raise InputError(f"output folder {path} was written by vinpaint but now holds what vinpaint did not write "
                         f"there ({name}: a file of another program, or a frame changed since); vinpaint replaces "
                         "an output folder whole, so give a new or empty folder, or add --overwrite to replace it "
                         "whole.")
    if folder:
        raise InputError(f"output folder {path} holds files that vinpaint did not write (it has no {MARKER} "
                         "file); give a new or empty folder, or add --overwrite to replace it whole.")
    state = mark_state(path)
    if state == CHANGED:
        raise InputError(f"output {path} carries vinpaint's mark but changed since vinpaint wrote it (edited or "
                         "saved again in another program?); give another name, or add --overwrite to replace it.")
    if state == UNSEALED:
        raise InputError(f"output {path} was written by an older vinpaint, whose mark cannot show that it is "
                         "unchanged since; give another name, or add --overwrite to replace it.")
    raise InputError(f"output {path} exists and was not written by vinpaint; give another name, or add "
                     "--overwrite to replace it.")


def _check_never_replaced(folder: Path) -> None:
    """Folders no output replaces, even with --overwrite: the current folder or one holding it (`-o .` by its
    full name) and the home folder."""
    real = os.path.realpath(folder)
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:
        here = ""
    if here and (here == real or here.startswith(real.rstrip(os.sep) + os.sep)):
        raise InputError(f"output folder {folder} is the current folder or holds it; vinpaint replaces an output "
                         "folder whole, so give a new folder for the result (e.g. clean/).")
    if real == os.path.realpath(os.path.expanduser("~")):
        raise InputError(f"output folder {folder} is the home folder; give a new folder for the result.")


def check_no_folder_inside(folder: Path) -> None:
    """A folder of PNGs about to be replaced whole holds no folder of someone else's, even with --overwrite:
    vinpaint writes none in one but a long shot's per-window folders (_window_folders), so any other folder
    there is someone's work."""
    try:
        inner = next((e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)
                      and not _window_of_ours(Path(folder), e.name)), None)
    except OSError:
        inner = None
    if inner is not None:
        raise InputError(f"output folder {folder} holds the folder {inner}/, which vinpaint did not write, and "
                         "vinpaint replaces an output folder whole, even with --overwrite; give a new or empty "
                         "folder.")


SYSTEM_FILES = (".DS_Store", "Thumbs.db", "desktop.ini", ".directory")
"""Files a file browser adds to a folder it shows (and macOS's `._NAME` beside each file on a network share): not
a user's work, so they do not keep an output folder from being replaced."""

WINDOWS_MARK = "a folder per window"
"""In the MARKER of a long shot's extras folder (.generated, .flows): it holds one marked folder per window."""


def foreign_entries(folder: Path):
    """The names in an output folder that vinpaint did not write there, sorted: anything but its MARKER, PNGs
    carrying its mark unchanged (a frame retouched in another program loses the mark, or keeps it and no longer
    matches its digest), a long shot's per-window folders (_window_of_ours), and a file browser's SYSTEM_FILES.
    One is enough to keep the folder."""
    return (name for name, _ in _foreign(folder))


def _foreign(folder: Path):
    """(name, state) for each of foreign_entries: the PNG's mark state (CHANGED, UNSEALED), else FOREIGN."""
    for name in sorted(os.listdir(folder)):
        path = Path(folder) / name
        if path.is_dir() and not path.is_symlink():
            if not _window_of_ours(Path(folder), name):
                yield name, FOREIGN
        elif path.is_symlink() or not path.is_file():
            yield name, FOREIGN
        elif name in SYSTEM_FILES or name.startswith("._") or name == MARKER:
            continue
        elif not name.lower().endswith(".png"):
            yield name, FOREIGN
        else:
            state = png_state(path)
            if state != OURS:
                yield name, state


def _window_of_ours(folder: Path, name: str) -> bool:
    """`name` is a window's folder vinpaint wrote, unchanged, inside a long shot's extras folder (its MARKER says
    WINDOWS_MARK): the only folders vinpaint writes inside an output folder."""
    if not re.fullmatch(r"window_\d{4}", name):
        return False
    try:
        if WINDOWS_MARK not in (folder / MARKER).read_text(encoding="utf-8", errors="replace"):
            return False
    except OSError:
        return False
    inner = folder / name
    return (inner / MARKER).is_file() and next(foreign_entries(inner), None) is None


def is_vinpaint_output(path: Path) -> bool:
    """True when vinpaint wrote `path` and it is unchanged since (its mark and digest are there), or it is an
    empty folder: safe to replace. A folder is vinpaint's when it holds the MARKER and nothing else but such PNGs
    (foreign_entries)."""
    path = Path(path)
    try:
        if path.is_dir():
            if not any(path.iterdir()):
                return True
            return (path / MARKER).is_file() and next(foreign_entries(path), None) is None
    except OSError:
        return False
    return mark_state(path) == OURS


def carries_mark(path: Path) -> bool:
    """True when the file at `path` carries vinpaint's mark, changed since or not: a run's output, as the record
    beside it knows it (cli/outputs.py's side files), even where it may no longer be replaced."""
    return mark_state(path) != FOREIGN


def mark_state(path: Path) -> str:
    """OURS, FOREIGN, CHANGED or UNSEALED (media/marks.py) for the file at `path`; FOREIGN for what is not a
    regular file (a named pipe or a device: opening it to look for the mark would wait for ever)."""
    path = Path(path)
    try:
        if not path.is_file():
            return FOREIGN
        suffix = path.suffix.lower()
        if suffix == ".png":
            return png_state(path)
        if suffix == ".json":  # a saved config: sealed by mark_json; one of an older vinpaint had the keys only
            state = sealed_state(path)
            if state != FOREIGN:
                return state
            data = json.loads(path.read_text(encoding="utf-8"))
            return UNSEALED if isinstance(data, dict) and {"preset", "variant", "train"} <= set(data) else FOREIGN
        if suffix in IMAGE_FILE_OUTPUTS:
            state = sealed_state(path)
            return UNSEALED if state == FOREIGN and is_marked(path, MARK_TEXT) else state
        if suffix in DEFAULT_CODEC:
            return _video_state(path, suffix)
    except (OSError, ValueError, UnicodeDecodeError, av.FFmpegError):
        return FOREIGN
    return FOREIGN


def _video_state(path: Path, suffix: str) -> str:
    """The container's comment is the mark, and so is its one video stream's encoder tag where the container keeps
    stream tags (mkv, mp4, mov): a tool that re-encodes our video copies the comment but writes its own encoder
    tag (ffmpeg grading e.mkv into graded.mov carried "written by vinpaint" over, and a run then replaced the
    user's grade; session 34). AVI keeps no stream tags: there the video must be in a codec we write to AVI. A
    tool that keeps both (a stream copy with new metadata, a re-encode copying every tag) is caught by the digest
    in the comment: its bytes are not the ones vinpaint wrote."""
    def tags(metadata) -> dict:
        return {k.lower(): v for k, v in metadata.items()}

    with av.open(str(path)) as container:
        comment = str(tags(container.metadata).get("comment", ""))
        if not comment.startswith(MARK_TEXT) or len(container.streams) != 1:
            return FOREIGN
        (stream,) = container.streams
        if stream.type != "video":
            return FOREIGN
        if suffix == ".avi":
            if stream.codec_context.name not in {c.encoder for c in CODECS.values() if ".avi" in c.containers}:
                return FOREIGN
        elif tags(stream.metadata).get("encoder") != MARK_TEXT:
            return FOREIGN
    if comment == MARK_TEXT:
        return UNSEALED
    return sealed_state(path) if comment.startswith(MARK_TEXT + DIGEST_FIELD) else FOREIGN


IMAGE_FILE_OUTPUTS = (".exr", ".dpx", ".tif", ".tiff")
"""Frame files written through OpenImageIO, marked (with the digest, media/marks.py) in their Software attribute."""


def sequence_sample(extension: str, dtype: np.dtype, source_sample: str = "") -> str:
    """The sample type a frame pattern output gets: EXR keeps a half or float source as it was (8-bit sources
    become half, 16-bit ones float), TIFF, DPX and PNG keep the bit depth. InputError for float frames into a
    format that would clip them."""
    extension = extension.lower()
    floating = np.dtype(dtype).kind == "f"
    if extension == ".exr":
        if floating:
            return "half" if source_sample == "half" else "float"
        return "half" if np.dtype(dtype) == np.uint8 else "float"
    if floating and extension in (".tif", ".tiff"):
        return "float"
    if floating:
        raise InputError(f"the source has float samples, which {extension} files cannot hold without clipping "
                         "values above 1 and below 0; write .exr or float .tif frames.")
    return "uint16" if np.dtype(dtype) == np.uint16 else "uint8"


def write_image_sequence(pattern: Pattern, frames: np.ndarray, numbers: list[int], source_sample: str = "",
                         overwrite: bool = False) -> list[Path]:
    """[T,H,W,3] frames -> one file per frame number in `pattern` (`clean.%04d.exr` with 1001 ... gives
    clean.1001.exr ...). Only files vinpaint wrote (or anything, with `overwrite`) are replaced; other files in the
    folder are left alone. Every frame is written under a temporary name first and renamed into place once all are
    complete, so a failed run replaces nothing."""
    if len(numbers) != len(frames):
        raise ValueError(f"{len(numbers)} frame numbers for {len(frames)} frames")
    sink = PatternSink(pattern, numbers, frames.dtype, source_sample, overwrite)
    _fill(sink, frames)
    return sink.targets


def _replace_folder(new: Path, folder: Path) -> None:
    """Move `new` to `folder`. An existing folder is swapped with it in one step where the system can (then
    removed); elsewhere it is moved aside first and removed once the swap is done."""
    old = None
    if os.path.lexists(folder):  # checked by the caller (PngFolderSink.check)
        if exchange(new, folder):  # the previous output (or the link given with --overwrite) is now at `new`
            fsync_dir(folder.parent)
            if new.is_symlink():
                new.unlink()
            else:
                shutil.rmtree(new, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(new, folder)
    fsync_dir(folder.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """uint16 or float (0..1) frames -> uint8, rounding to nearest."""
    if frames.dtype == np.uint8:
        return frames
    if frames.dtype == np.uint16:
        return ((frames.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: Fraction | float, codec: str = "auto") -> str:
    """[T,H,W,3] RGB uint8/uint16 -> a video at `fps`, atomically. Returns the codec used. Replaces what is there:
    the caller has checked that it may (OutputPlan.check_outputs).

    16-bit frames stay 16-bit with FFV1; the other codecs write 8 bits.
    """
    path = Path(path)
    height, width = frames.shape[1:3]
    name = resolve_codec(path, codec, (width, height))
    if name == "png":
        raise InputError(f"output {path} has no video extension.")
    _fill(VideoSink(path, name, (width, height), fps, frames.dtype == np.uint16, overwrite=True), frames)
    return name


# --- sinks: a result written frame by frame, moved into place whole -----------------------------------------------

class VideoSink:
    """A video encoded as frames arrive (a long shot's windows, or a whole clip); `commit` renames it into place."""

    def __init__(self, path: Path, codec: str, size: tuple[int, int], fps: Fraction | float, deep_source: bool,
                 overwrite: bool = False):
        self.path, self.overwrite = Path(path), overwrite
        check_replaceable(self.path, overwrite=overwrite)
        spec = CODECS[codec]
        self.deep = deep_source and spec.pix_fmt_16 is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = temp_sibling(self.path, self.path.suffix)
        try:
            # no CRC-32 elements in a Matroska file: seal() writes the digest into its tags after they were summed
            options = {"write_crc32": "0"} if _muxer(self.path) == "matroska" else {}
            self.container = av.open(str(self.temp), mode="w", format=_muxer(self.path), options=options)
            self.container.metadata["comment"] = PLACEHOLDER  # sealed in finish() (media/marks.py)
            self.stream = self.container.add_stream(spec.encoder, rate=Fraction(fps).limit_denominator(1_000_000))
            self.stream.metadata["encoder"] = MARK_TEXT  # the mark a re-encode does not carry over (_video_state)
            self.stream.width, self.stream.height = size
            self.stream.pix_fmt = spec.pix_fmt_16 if self.deep else spec.pix_fmt
            self.stream.options = dict(spec.options)
            self.yuv = self.stream.pix_fmt.startswith("yuv")
            if self.yuv:  # converted with BT.709 and tagged so: untagged, players guess (601 or 709 by size)
                context = self.stream.codec_context
                context.colorspace = context.color_primaries = context.color_trc = BT709
                context.color_range = int(ColorRange.MPEG)
        except OSError as exc:
            self.temp.unlink(missing_ok=True)
            raise naming(exc, self.path) from exc
        except BaseException:
            self.temp.unlink(missing_ok=True)
            raise
        self.count = 0
        self.finished = False

    def write(self, frame: np.ndarray) -> None:
        data = frame if self.deep else to_uint8(frame)
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format="rgb48le" if self.deep else "rgb24")
        if self.yuv:
            picture = picture.reformat(format=self.stream.pix_fmt, dst_colorspace=Colorspace.ITU709,
                                       dst_color_range=ColorRange.MPEG)
        picture.pts = self.count
        self.count += 1
        try:
            self.container.mux(self.stream.encode(picture))
        except OSError as exc:
            raise naming(exc, self.path) from exc
        except av.FFmpegError as exc:  # not an OSError: a size or format the encoder refuses
            raise InputError(f"could not encode {self.path} ({exc}); write a PNG folder or a frame pattern "
                             "instead.") from exc

    def finish(self) -> None:
        """The encoder flushed and the file closed: all that needs disk space, before commit."""
        if self.finished:
            return
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
            seal(self.temp)
            with open(self.temp, "rb") as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            raise naming(exc, self.path) from exc
        self.finished = True

    def check(self) -> None:
        check_replaceable(self.path, overwrite=self.overwrite)  # again: a file may have appeared meanwhile

    def commit(self) -> None:
        self.finish()
        try:
            self.check()
            commit(self.temp, self.path, durable=False)  # synced in finish(); the rename made durable here
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise naming(exc, self.path) from exc

    def abort(self) -> None:
        try:
            self.container.close()
        except (av.FFmpegError, OSError, ValueError):
            pass
        self.temp.unlink(missing_ok=True)


class PngFolderSink:
    """A folder of PNGs built beside the target and swapped in whole by `commit`."""

    def __init__(self, folder: Path, names: list[str], overwrite: bool = False):
        self.folder, self.names, self.overwrite = Path(folder), names, overwrite
        self.check()
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.temp = temp_sibling(self.folder, folder=True)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        name = self.names[self.count] if self.names else f"{self.count:05d}"
        try:
            (self.temp / f"{name}.png").write_bytes(encode_png(np.ascontiguousarray(frame)))
        except OSError as exc:
            raise naming(exc, self.folder / f"{name}.png") from exc
        self.count += 1

    def finish(self) -> None:
        try:
            (self.temp / MARKER).write_text(f"{MARK_TEXT}; the next run that writes here replaces this folder "
                                            "whole\n")
        except OSError as exc:
            raise naming(exc, self.folder / MARKER) from exc

    def check(self) -> None:
        check_replaceable(self.folder, folder=True, overwrite=self.overwrite)
        if self.folder.is_dir() and not self.folder.is_symlink():
            check_no_folder_inside(self.folder)

    def commit(self) -> None:
        if not (self.temp / MARKER).is_file():
            self.finish()
        self.check()  # again: a file may have appeared meanwhile
        _replace_folder(self.temp, self.folder)

    def abort(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


class PatternSink:
    """One file per frame number under a temporary name; `commit` renames them all into place."""

    def __init__(self, pattern: Pattern, numbers: list[int], dtype: np.dtype, source_sample: str = "",
                 overwrite: bool = False):
        self.pattern, self.numbers, self.overwrite = pattern, numbers, overwrite
        self.sample = sequence_sample(pattern.extension, dtype, source_sample)
        self.targets = [pattern.path(n) for n in numbers]
        for target in self.targets:
            check_replaceable(target, overwrite=overwrite)
        pattern.folder.mkdir(parents=True, exist_ok=True)
        self.temps: list[Path] = []

    def write(self, frame: np.ndarray) -> None:
        target = self.targets[len(self.temps)]
        temp = temp_sibling(target, self.pattern.extension)
        self.temps.append(temp)
        try:
            if self.pattern.extension == ".png":
                temp.write_bytes(encode_png(np.ascontiguousarray(frame)))
            else:
                write_image_file(temp, np.ascontiguousarray(frame), self.sample, PLACEHOLDER, format_path=target)
                seal(temp)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            raise naming(exc, target) from exc

    def finish(self) -> None:
        """Every frame is already written and synced by write()."""

    def check(self) -> None:
        for target in self.targets:
            check_replaceable(target, overwrite=self.overwrite)

    def commit(self) -> None:
        for target in self.targets:
            check_replaceable(target, overwrite=self.overwrite)  # again: a file may have appeared meanwhile
        for temp, target in zip(self.temps, self.targets):
            os.replace(temp, target)
        fsync_dir(self.pattern.folder)

    def abort(self) -> None:
        for temp in self.temps:
            temp.unlink(missing_ok=True)


def _fill(sink, frames) -> None:
    """Every frame into `sink`, then commit (inside staged_outputs(): finish, and commit with the others at the
    end); on any failure the sink's temporary files are removed."""
    try:
        for frame in frames:
            sink.write(frame)
    except BaseException:
        sink.abort()
        raise
    stage(sink)


_staged: contextvars.ContextVar[list | None] = contextvars.ContextVar("vinpaint_staged_outputs", default=None)


INCOMPLETE = ".incomplete.txt"
"""Beside the first output while a run puts its outputs in place (staged_outputs' journal)."""
_INCOMPLETE_HEAD = "vinpaint was stopped while it put these outputs in place"


def is_incomplete_note(path: Path) -> bool:
    """True when `path` is the note staged_outputs leaves when a run stops between its renames."""
    try:
        if not Path(path).is_file() or Path(path).is_symlink():
            return False
        with open(path, "rb") as handle:
            return handle.read(len(_INCOMPLETE_HEAD)) == _INCOMPLETE_HEAD.encode()
    except OSError:
        return False


def _shown(sink) -> str:
    """What a staged sink puts in place, as the note lists it: its full path (a pattern's first file)."""
    if isinstance(sink, PatternSink):
        first = os.path.abspath(sink.pattern.folder / sink.pattern.name(sink.numbers[0]))
        return first + f" ... ({len(sink.numbers)} files)"
    return os.path.abspath(sink.folder if isinstance(sink, PngFolderSink) else sink.path)


def _output_of(line: str) -> str:
    """The output a note's line names, as a full path: a line of a note before full paths counts from here."""
    return os.path.abspath(line.split(" ... (", 1)[0])


def _noted(note: Path) -> list[str]:
    """The outputs an earlier run's note lists (its lines, as _shown wrote them); none when there is no note."""
    if not is_incomplete_note(note):
        return []
    try:
        text = Path(note).read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return []
    return [line[2:] for line in text.splitlines() if line.startswith("  ")]


def _write_incomplete_note(note: Path, shown: list[str]) -> None:
    """Written (and synced) before the first rename and removed after the last, so that a kill, a power cut or a
    second Ctrl-C between them leaves a file that says the outputs may be two runs' (renames cannot all happen
    at once). Never over a file of the user's: then there is no note."""
    if os.path.lexists(note) and not is_incomplete_note(note):
        return
    text = (f"{_INCOMPLETE_HEAD} (killed, a power cut, a second Ctrl-C, or a rename that failed), so these may "
            "hold files of two runs (this run's and the one before):\n" +
            "".join(f"  {line}\n" for line in shown) +
            "Run the same command again, without --restart if it had one: it writes them all again (from its work "
            "directory, without training) and removes this file.\n")
    atomic_write_bytes(note, text.encode("utf-8", "surrogateescape"))  # a folder named in Latin-1 as it is on disk


@contextlib.contextmanager
def staged_outputs(note: Path | None = None):
    """The outputs written inside (videos, PNG folders, frame patterns, marked files) are written whole under
    temporary names, and put in place together once every one is: a failure while writing any of them (a full
    disk) leaves the earlier run's outputs as they were, never a mix of two runs' (the new video beside the old
    matte and config). Putting them in place is renames only; `note` (INCOMPLETE beside the first output) is
    there while they happen and says so if they are cut short, until a run puts them all in place."""
    staged: list = []
    token = _staged.set(staged)
    try:
        yield
    except BaseException:
        for sink in staged:
            sink.abort()
        raise
    finally:
        _staged.reset(token)
    mine = [_shown(sink) for sink in staged]
    written = {_output_of(line) for line in mine}  # a pattern by its first file, whatever its frame count
    earlier = [line for line in _noted(Path(note)) if _output_of(line) not in written] if note is not None else []
    try:  # every refusal (a file of the user's that appeared meanwhile), and the note, before the first rename
        for sink in staged:
            sink.check()
        if note is not None and staged:
            _write_incomplete_note(Path(note), earlier + mine)  # an earlier killed run's outputs stay listed
    except BaseException:
        for sink in staged:
            sink.abort()
        raise
    for i, sink in enumerate(staged):
        try:
            sink.commit()
        except BaseException:
            for rest in staged[i:]:
                rest.abort()
            raise  # the note stays: some outputs may be this run's, the others the last one's
    if note is not None and is_incomplete_note(Path(note)):
        if earlier:  # an earlier killed run's outputs this run did not write (before: the note went, and a
            _write_incomplete_note(Path(note), earlier)  # half-replaced sequence of two runs was not said again)
        else:
            Path(note).unlink(missing_ok=True)  # every output it listed is now this run's


def stage(sink) -> None:
    """A sink filled by its caller (a long shot's, window by window): committed now, or inside staged_outputs()
    finished now and put in place with the others."""
    staged = _staged.get()
    try:
        if staged is None:
            sink.commit()
        else:
            sink.finish()
            staged.append(sink)
    except BaseException:
        sink.abort()
        raise


class FileSink:
    """One whole file (a picture, a config) under a temporary name beside `path`; `commit` renames it."""

    def __init__(self, path: Path, data: bytes):
        self.path = Path(path)
        self.existed = os.path.lexists(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = temp_sibling(self.path, self.path.suffix)
        try:
            with open(self.temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException as exc:
            self.temp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise naming(exc, self.path) from exc
            raise

    def finish(self) -> None:
        """Written whole in __init__."""

    def check(self) -> None:
        if not self.existed:  # one that appeared meanwhile (what was there was checked with the outputs before)
            check_replaceable(self.path)

    def commit(self) -> None:
        commit(self.temp, self.path, durable=False)
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        self.temp.unlink(missing_ok=True)


def _muxer(path: Path) -> str:
    return {".mkv": "matroska", ".avi": "avi", ".mp4": "mp4", ".mov": "mov"}[path.suffix.lower()]
