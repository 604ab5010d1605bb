"""Reading clips and masks from disk: video files through PyAV, folders of images, a single image as a static mask.

Everything a user can get wrong at the file level (a missing path, an unreadable file, a mask whose frame count or
size differs from the video's) is raised here as `InputError` with one sentence, before any training starts.
Array-level checks (empty mask, too few frames for the flow intervals ...) belong to `inpaint()`.
"""
from __future__ import annotations

import itertools
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import av.sidedata.sidedata
import cv2
import numpy as np
from av.video.reformatter import Colorspace

from vinpaint.errors import InputError
from vinpaint.engine.devices import host_memory
from vinpaint.media.imagefiles import OIIO_READS, read_image_file
from vinpaint.media.sequences import Pattern, looks_like_pattern, parse_pattern, select_frames

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".mxf", ".ts", ".wmv", ".flv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".dpx")
UNSPECIFIED = 2
"""FFmpeg's code for a colour matrix a stream does not name (AVCOL_SPC_UNSPECIFIED)."""
DEFAULT_FPS = Fraction(25)
"""Frame rate assumed for a folder of images, which carries none."""


@dataclass
class Clip:
    """Frames read from one source, with what the writers need to give them back in the same shape."""

    frames: np.ndarray
    """[T,H,W,3] RGB, uint8, uint16 (16-bit sources stay 16-bit) or float32 (EXR, float TIFF: linear values as
    they are, above 1 and below 0 included)."""
    fps: Fraction
    """Frames per second of the source (DEFAULT_FPS for an image folder)."""
    source: Path
    kind: str
    """"video" or "images"."""
    names: list[str] = field(default_factory=list)
    """File stems of an image folder, so a PNG output can keep the source's numbering; empty for a video."""
    notices: list[str] = field(default_factory=list)
    """What the reader noticed and the user should know (a video that ended before the frames it declares)."""
    numbers: list[int] = field(default_factory=list)
    """The clip's own frame numbers (1001, 1002 ... for a frame pattern); empty: 0, 1, 2 ..."""
    pattern: Pattern | None = None
    """The frame pattern the clip was read from (`plate.%04d.exr`), or None."""
    sample: str = ""
    """The files' sample type: uint8, uint16, half or float ("" for a video: its frames' dtype says it)."""
    turn: int = 0
    """Quarter turns (np.rot90's k) a video's display matrix asked for and the reader applied; 0 for images."""

    @property
    def frame_numbers(self) -> list[int]:
        """The clip's own frame numbers: the pattern's, else 0-based indices."""
        return list(self.numbers) if self.numbers else list(range(self.frames.shape[0]))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order people say it in."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def _natural_key(name: str) -> list:
    """Sort frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder in natural order, hidden files left out."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def check_frame_names(folder: Path, files: list[Path]) -> None:
    """A folder's frames are written back under their own names (plates/a.jpg -> clean/a.png): two files whose
    names differ only in the extension would be written to one file, one result lost without a word."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise InputError(f"folder {folder} holds {seen[path.stem].name} and {path.name}, two frames of one name: "
                             "the outputs are named after the frames, so one would overwrite the other; keep one of "
                             "them there.")
        seen[path.stem] = path


def read_image(path: Path) -> np.ndarray:
    """One image file -> [H,W,3] RGB (uint8, uint16, or float32 from EXR and float TIFF); grey is replicated and
    alpha dropped."""
    return read_image_typed(path)[0]


def read_image_typed(path: Path, matte: bool = False, dropped: list[str] | None = None) -> tuple[np.ndarray, str]:
    """One image file -> ([H,W,3] RGB, sample type: uint8, uint16, half or float). `matte`: a mask, whose alpha
    channel, where it has one that is not opaque everywhere, is the matte (roto tools often write black RGB).
    Otherwise such an alpha is dropped, and the file's name appended to `dropped` so the user can be told."""
    path = Path(path)
    check_regular(path, "image")
    if path.suffix.lower() in OIIO_READS:
        return read_image_file(path, dropped, matte)
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode, unlike imread, copes with any path encoding
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot read image {path}: the file is empty, damaged or not an image.")
    if image.dtype == np.float32 and path.suffix.lower() in (".tif", ".tiff"):  # float TIFF: through OpenImageIO,
        return read_image_file(path, dropped, matte)  # which checks NaN and infinity
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"image {path} has {image.dtype} samples; only 8-bit and 16-bit images, float TIFF and "
                         "EXR are supported.")
    if image.ndim == 3 and image.shape[2] == 4 and image[:, :, 3].min() < np.iinfo(image.dtype).max:
        if matte:
            return np.repeat(image[:, :, 3:], 3, axis=2), str(image.dtype)
        if dropped is not None:
            dropped.append(path.name)
    return _rgb(image), str(image.dtype)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def file_numbers(files: list[Path]) -> list[int] | None:
    """The frame number each file's name carries (its last run of digits: shot_0012.png -> 12), or None when a
    name has none or two names share one (then the files are paired by position)."""
    numbers = []
    for path in files:
        digits = re.findall(r"\d+", path.stem)
        if not digits:
            return None
        numbers.append(int(digits[-1]))
    return numbers if len(set(numbers)) == len(numbers) else None


def _skipped(numbers: list[int]) -> tuple[int, list[int]]:
    """(how many, the first five) frame numbers missing between the first and the last of a sorted list, where
    the names count frames one by one (most steps are 1); names that step otherwise (timestamps, every other
    number) skip nothing. Counted, not listed: nanosecond names would list billions."""
    steps = [b - a for a, b in zip(numbers, numbers[1:])]
    if not steps or sum(step == 1 for step in steps) * 2 <= len(steps):
        return 0, []
    first = list(itertools.islice((n for a, b in zip(numbers, numbers[1:]) for n in range(a + 1, b)), 5))
    return sum(step - 1 for step in steps if step > 1), first


def _read_image_folder(folder: Path, matte: bool = False) -> Clip:
    files = list_images(folder)
    if not files:
        raise InputError(f"folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    if not matte:
        check_frame_names(folder, files)
    frames, sample, notices = _read_files(folder, files, matte)
    count, first = _skipped(sorted(file_numbers(files) or []))
    if count:
        notices.append(f"{folder} skips frame number{'s' if count > 1 else ''} {', '.join(map(str, first))}"
                       f"{f' ... ({count} in all)' if count > len(first) else ''}: its frames are taken one after "
                       "another, as if none were missing")
    return Clip(frames, DEFAULT_FPS, folder, "images", [p.stem for p in files], sample=sample, notices=notices)


ALPHA_DROPPED = ("vinpaint fills and writes RGB only, so that alpha is not in the output (merge the source's alpha "
                 "back in the compositor)")


def _read_files(source: Path, files: list[Path], matte: bool = False) -> tuple[np.ndarray, str, list[str]]:
    """Image files that must all match -> ([T,H,W,3], their sample type, notices for the user)."""
    frames, samples, dropped = [], [], []
    budget = clip_memory_budget()
    for path in files:
        image, sample = read_image_typed(path, matte, dropped)
        _check_size_so_far(source, len(frames) + 1, image.nbytes, budget)
        if frames and (image.shape != frames[0].shape or sample != samples[0]):
            raise InputError(f"image {path.name} in {path.parent} is {_describe(image, sample)} but {files[0].name} "
                             f"is {_describe(frames[0], samples[0])}; every frame must match.")
        frames.append(image)
        samples.append(sample)
    return np.stack(frames), samples[0], image_alpha_notices(source, dropped, len(files))


def image_alpha_notices(source: Path, dropped: list[str], count: int) -> list[str]:
    """The notice for image files of `source` whose alpha read_image_typed dropped (`dropped`, of `count` read)."""
    if not dropped:
        return []
    which = dropped[0] if len(dropped) == 1 else f"{len(dropped)} of the {count} frames, from {dropped[0]},"
    return [f"{which} in {source} {'has' if len(dropped) == 1 else 'have'} an alpha channel that is not opaque "
            f"everywhere; {ALPHA_DROPPED}"]


def video_alpha_notices(path: Path, stream) -> list[str]:
    """The notice for a video stream whose pixel format has an alpha channel, which decoding to RGB drops."""
    if unread_alpha(stream):
        return [f"video {path} has an alpha channel (VP9's, which FFmpeg's own decoder does not read); "
                f"{ALPHA_DROPPED}"]
    fmt = stream.codec_context.format if stream.codec_context is not None else None
    if fmt is None or not any(c.is_alpha for c in fmt.components):
        return []
    return [f"video {path} has an alpha channel ({fmt.name}); {ALPHA_DROPPED}"]


def unread_alpha(stream) -> bool:
    """A WebM whose VP9 carries its alpha beside the picture (alpha_mode 1, or ALPHA_MODE as a tag after a remux):
    FFmpeg's native VP9 decoder, the one PyAV opens, returns the picture without it."""
    return any(key.lower() == "alpha_mode" and str(value) == "1" for key, value in stream.metadata.items())


def check_alpha_read(path: Path, stream, pictures) -> None:
    """A mask video whose matte is in VP9's alpha decodes to a blank picture, which read as the mask said "the mask
    is empty": said as it is. A VP9 mask drawn in the picture itself (opaque alpha) is read as before."""
    if unread_alpha(stream) and all(p.min() == p.max() for p in pictures):
        raise InputError(f"mask video {path} keeps its matte in VP9's alpha channel, which this FFmpeg's VP9 "
                         "decoder does not read; export the mask as a PNG sequence, or as ProRes 4444 or QuickTime "
                         "Animation with alpha.")


def _read_pattern(pattern: Pattern, frame_range: tuple[int, int] | None, matte: bool = False) -> Clip:
    numbers = select_frames(pattern, frame_range)
    frames, sample, notices = _read_files(Path(pattern.text), [pattern.path(n) for n in numbers], matte)
    return Clip(frames, DEFAULT_FPS, Path(pattern.text), "images", [pattern.stem(n) for n in numbers],
                numbers=numbers, pattern=pattern, sample=sample, notices=notices)


def _describe(image: np.ndarray, sample: str = "") -> str:
    depth = {"half": "half-float", "float": "float", "uint8": "8-bit", "uint16": "16-bit"}.get(
        sample, f"{8 * image.dtype.itemsize}-bit")
    return f"{image.shape[1]}x{image.shape[0]} {depth}"


def decoded_format(path: Path, stream, matte: bool = False) -> str:
    """The RGB format a video stream is decoded to: 16 bits a channel where the stream has more than 8; RGBA for
    a mask (`matte`) whose pixels carry alpha (matte_of). A stream whose codec FFmpeg could not set up (a file
    cut inside its index) is one sentence, not an AttributeError."""
    if stream.codec_context is None:
        raise InputError(f"cannot open video {path}: its video stream has no usable codec (is the file damaged or "
                         "truncated?).")
    fmt = stream.codec_context.format
    deep = fmt is not None and max((c.bits for c in fmt.components), default=8) > 8
    if matte and fmt is not None and any(c.is_alpha for c in fmt.components):
        return "rgba64le" if deep else "rgba"
    return "rgb48le" if deep else "rgb24"


def matte_of(picture: np.ndarray) -> np.ndarray:
    """A decoded mask frame -> [H,W,3]: an RGBA frame by its alpha where that is not opaque everywhere (roto
    tools write black RGB), as mask images are read (read_image_typed); RGB as it is."""
    if picture.shape[2] != 4:
        return picture
    if picture[:, :, 3].min() < np.iinfo(picture.dtype).max:
        return np.ascontiguousarray(np.repeat(picture[:, :, 3:], 3, axis=2))
    return np.ascontiguousarray(picture[:, :, :3])


@contextmanager
def ffmpeg_errors():
    """FFmpeg's error messages while the block runs, as (source, text): a codec's or a demuxer's name. Damage
    inside a frame (a codec's CRC mismatch) decodes without an exception, and PyAV passes on no message unless
    asked; asked at error level only, so a normal file costs nothing."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    messages: list[tuple[str, str]] = []
    try:
        with av.logging.Capture(False) as captured:  # False: the decoder's own threads too
            yield messages
    finally:
        av.logging.set_level(previous)
        messages += [(name, text.strip()) for level, name, text in captured
                     if level <= av.logging.ERROR and text.strip()]


def _read_video_file(path: Path, matte: bool = False) -> Clip:
    """The decoder's own reports of damage (not the demuxer's: a file cut short is said by the frame count)
    become a notice."""
    with ffmpeg_errors() as damage:
        clip, codec = _decode_video_file(path, matte)
    said = [f"{name}: {text}" for name, text in damage if name == codec]
    if said:
        clip.notices.append(f"video {path}: FFmpeg reported damage while decoding it ({'; '.join(said[:2])[:300]}); "
                            "frames near there may hold garbage: look at the outputs, or export the plate again")
    return clip


def _decode_video_file(path: Path, matte: bool) -> tuple[Clip, str]:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot open video {path}: {_reason(exc)}.") from None
    with container:
        if not container.streams.video:
            raise InputError(f"file {path} has no video stream.")
        stream = container.streams.video[0]
        target = decoded_format(path, stream, matte)
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
        declared = _declared_frames(container, stream, rate)
        audio = len(container.streams.audio)
        frames, times, turn, flipped = [], [], 0, False
        try:
            budget = clip_memory_budget()
            for frame in container.decode(stream):
                if not frames:
                    turn, flipped = display_turn(frame)
                    coded = (frame.width, frame.height)
                check_same_size(path, coded, frame, len(frames))
                frames.append(matte_of(upright(frame, target, turn)))
                if frame.pts is not None and frame.time_base is not None:
                    times.append(float(frame.pts * frame.time_base))
                _check_size_so_far(path, len(frames), frames[0].nbytes, budget)
        except (av.FFmpegError, OSError) as exc:
            if not frames:
                raise InputError(f"cannot decode video {path}: {_reason(exc)}.") from None
            raise InputError(f"video {path} is damaged after frame {len(frames)}: {_reason(exc)}.") from None
    if not frames:
        raise InputError(f"video {path} holds no frames.")
    if matte:
        check_alpha_read(path, stream, frames)
    notices = video_notices(path, audio, stream, rate, times, turn, frames[0].shape, flipped)
    if declared and len(frames) < declared and len(frames) < declared - _hidden_frames(path):
        notices.append(f"video {path} declares {declared} frames but only {len(frames)} could be read (is the file "
                       f"truncated or still being written?); using those {len(frames)}")
    return Clip(np.stack(frames), Fraction(rate), path, "video", notices=notices, turn=turn), \
        stream.codec_context.name


def check_same_size(path: Path, first: tuple[int, int], frame, index: int) -> None:
    """A stream that changes size on the way (two exports joined, a broadcast capture): one sentence, not the
    traceback of stacking frames of two sizes. `first`: the first frame's (width, height) as coded."""
    if (frame.width, frame.height) != first:
        raise InputError(f"video {path} changes size at frame {index + 1} ({first[0]}x{first[1]} to "
                         f"{frame.width}x{frame.height}); export it at one size.")


def video_notices(path: Path, audio: int, stream, rate, times: list[float], turn: int,
                  shape: tuple[int, ...], flipped: bool = False) -> list[str]:
    """What a video holds that the outputs do not keep as it is: an alpha channel, a display rotation (applied),
    a mirroring display matrix (not applied), sound, uneven frame times."""
    notices = video_alpha_notices(path, stream)
    if flipped:
        notices.append(f"video {path} asks players to mirror it (its display matrix): vinpaint reads it as stored, "
                       "unmirrored; draw the mask on that picture")
    if turn:
        notices.append(f"video {path} asks players to turn it {TURN_WORDS[turn]} (its display matrix): read turned so, "
                       f"{shape[1]}x{shape[0]}, as players show it; the mask is drawn on that picture, and the outputs "
                       "are written upright")
    if audio:
        notices.append(f"video {path} has {audio} audio track{'s' if audio > 1 else ''}: the outputs carry the "
                       "picture only (put the sound back in your editor)")
    if uneven := uneven_timing(times, rate):
        notices.append(f"video {path} has a variable frame rate ({uneven}): the outputs play every frame at "
                       f"{float(rate):g} fps, so their timing differs from the source's")
    return notices


TURN_WORDS = {1: "90 degrees counter-clockwise", 2: "180 degrees", 3: "90 degrees clockwise"}


def display_turn(frame) -> tuple[int, bool]:
    """(np.rot90's k that shows a decoded frame as players do, whether its display matrix mirrors it). Phones write
    a rotation (counter-clockwise degrees) instead of turning the pixels: it is applied to the nearest quarter
    turn. A mirroring matrix (a negative determinant; PyAV reports a horizontal flip as -180 degrees) is not a
    rotation: such a video is read as stored (turn 0), and video_notices says so."""
    for data in frame.side_data:
        if data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX and len(bytes(data)) >= 20:
            a, b, _, c, d = struct.unpack("<5i", bytes(data)[:20])
            if a * d - b * c < 0:
                return 0, True
            break
    return int(round((frame.rotation or 0) / 90)) % 4, False


def upright(frame, target: str, turn: int) -> np.ndarray:
    """A decoded frame as RGB the way players show it: turned by `turn` quarter turns (display_turn), and an HD
    frame whose stream names no colour matrix converted as BT.709, as players take it (FFmpeg's conversion would
    take BT.601), so a plate read and written back, tagged BT.709, looks the same."""
    if frame.colorspace == UNSPECIFIED and frame.height >= 720:
        picture = frame.reformat(format=target, src_colorspace=Colorspace.ITU709).to_ndarray()
    else:
        picture = frame.to_ndarray(format=target)
    return np.ascontiguousarray(np.rot90(picture, turn)) if turn else picture


def uneven_timing(times: list[float], rate) -> str:
    """A few words on how unevenly a video's frames are spaced, or "" when they keep to one rate (within half a
    frame's time, so rounded timestamps and a phone's jitter are not "variable")."""
    if len(times) < 3 or not rate:
        return ""
    gaps = np.diff(np.sort(np.asarray(times)))
    step = 1 / float(rate)
    if np.all(np.abs(gaps - step) <= step / 2):
        return ""
    return f"frames {gaps.min():.3g} s to {gaps.max():.3g} s apart"


MAX_FRAMES = 100_000
"""Most frames one clip may have (an hour at 25 fps); a longer one is refused before it fills memory."""


def clip_memory_budget() -> int:
    """Bytes a clip's frames may take when read: a quarter of the machine's memory (training needs the rest)."""
    return host_memory() // 4


def _check_size_so_far(path: Path, count: int, frame_bytes: int, budget: int) -> None:
    if count > MAX_FRAMES:
        raise InputError(f"{path} has more than {MAX_FRAMES} frames; cut it into shots first.")
    if count * frame_bytes > budget:
        raise InputError(f"{path} needs more than {budget / 2**30:.1f} GiB of memory at {count} frames, a quarter "
                         "of this machine's; cut it into shorter shots first.")


DROPS_BEFORE_KEY = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
"""Codecs whose FFmpeg decoder gives no frame for the packets before the first key frame of a stream cut mid-GOP
(MPEG-4 Part 2, WMV and FLV's decoders give them all)."""


def shown_packets(packets, codec: str = "") -> list[tuple]:
    """(pts, time_base) of the packets that decode to a frame players show: not those an edit list hides (a trimmed
    phone clip: 24 coded, 20 shown) nor, for a `codec` of DROPS_BEFORE_KEY, those before the first key frame (a
    stream cut mid-GOP). Counted from every packet, the long shot paired its masks with frames shifted by those it
    never got."""
    kept, keyed = [], codec not in DROPS_BEFORE_KEY
    for packet in packets:
        keyed = keyed or packet.is_keyframe
        if packet.size and keyed and not packet.is_discard:
            kept.append((packet.pts, packet.time_base))
    return kept


def _hidden_frames(path: Path) -> int:
    """Packets the container counts that players do not show (shown_packets): a trimmed clip's frames are not
    missing ones."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            packets = [p for p in container.demux(stream) if p.size]
            return len(packets) - len(shown_packets(packets, stream.codec_context.name))
    except (av.FFmpegError, OSError, IndexError):
        return 0


def _declared_frames(container, stream, rate) -> int:
    """The frame count a video's container promises: its own count (mp4, mov, avi), else its duration times the
    rate (mkv), less one frame for rounding; 0 when it says nothing."""
    if stream.frames:
        return int(stream.frames)
    seconds = None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000
    if not seconds or not rate:
        return 0
    return max(int(seconds * float(rate) + 0.5) - 1, 0)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.rstrip(".").split(": '")[0]


def read_clip(path: str | Path, frame_range: tuple[int, int] | None = None, matte: bool = False) -> Clip:
    """A video file, a folder of images or a frame pattern (`plate.%04d.exr`, `plate.####.exr`; `frame_range`:
    first and last frame number, both included) -> Clip. Raises InputError naming the problem. `matte`: masks
    (see read_image_typed)."""
    path = Path(path)
    if not path.exists() and looks_like_pattern(str(path)):
        return _read_pattern(parse_pattern(path), frame_range, matte)
    if frame_range is not None:
        raise InputError(f"--frames picks frames of a frame pattern (plate.%04d.exr, plate.####.exr), and {path} "
                         "is not one; give the frames as a pattern.")
    if not path.exists():
        raise InputError(f"input {path} does not exist.")
    if path.is_dir():
        return _read_image_folder(path, matte)
    check_regular(path, "input")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError(f"input {path} is a single image; give a video file or a folder of frames.")
    return _read_video_file(path, matte)


def check_regular(path: Path, what: str) -> None:
    """A source is a regular file: opening a named pipe would wait for a writer for ever, and a device (/dev/zero)
    never ends."""
    if not Path(path).is_file():
        raise InputError(f"{what} {path} is not a regular file (a pipe, socket or device); give a file.")


LABEL_LIMIT = 16
"""A mask whose values all lie below this is a label mask (0/1, or instance ids): any non-zero value removes."""


def _to_hole(image: np.ndarray, invert: bool) -> np.ndarray:
    """[...,3] mask image(s) -> bool hole: above half scale in any channel (white, or a coloured label) removes.

    Label masks, whose every value is below LABEL_LIMIT (0/1 masks look black), count any non-zero value instead.
    """
    level = image.max(axis=-1)
    if image.dtype.kind == "f":  # float mattes (EXR): above half removes
        hole = level > 0.5
        return ~hole if invert else hole
    if level.max(initial=0) < LABEL_LIMIT:
        hole = level > 0
    else:
        hole = level > (127 if image.dtype == np.uint8 else 32767)
    return ~hole if invert else hole


def read_masks(path: str | Path, frame_count: int, size: tuple[int, int], invert: bool = False,
               numbers: list[int] | None = None) -> np.ndarray:
    """A mask video, folder of images, frame pattern, or one image (static mask) -> bool [T,H,W], True = hole.

    White (any channel above half scale) means remove; `invert` swaps that. An image with an alpha channel that
    is not opaque everywhere is read by its alpha. `frame_count` and `size`
    ((width, height)) are the video's, checked here so a mismatch is reported with both numbers. A frame pattern
    is read at the clip's frame `numbers` (0 ... T-1 when None).
    """
    path = Path(path)
    if not path.exists() and looks_like_pattern(str(path)):
        clip = read_clip(path, (numbers[0], numbers[-1]) if numbers else None, matte=True)
    elif not path.exists():
        raise InputError(f"mask {path} does not exist.")
    elif not path.is_dir() and not path.is_file():
        check_regular(path, "mask")
    elif path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        image = read_image_typed(path, matte=True)[0]
        _check_size(image.shape[1], image.shape[0], size, path)
        return np.broadcast_to(_to_hole(image, invert), (frame_count, *image.shape[:2])).copy()
    else:
        clip = read_clip(path, matte=True)
    _check_count(clip.frames.shape[0], frame_count, path)
    _check_size(*clip.size, size, path)
    return _to_hole(clip.frames, invert)


def _check_count(count: int, frame_count: int, path: Path) -> None:
    if count != frame_count:
        raise InputError(f"the mask {path} has {count} frames but the video has {frame_count}; give one mask "
                         f"per frame, or a single image for a static mask.")


def _check_size(width: int, height: int, size: tuple[int, int], path: Path) -> None:
    if (width, height) != tuple(size):
        raise InputError(f"the mask {path} is {width}x{height} but the video is {size[0]}x{size[1]}; "
                         f"they must be the same size.")


def read_references(specs: dict[int, str | Path], clip: Clip) -> dict[int, np.ndarray]:
    """{frame number: image file} -> {0-based index: clean frame} for engine.inpaint(references=...).

    Frame numbers are the clip's own (1001 ... for a frame pattern; 0-based indices for a video or folder). An
    8-bit painting for a 16-bit clip is scaled up; any other difference in size or depth is InputError."""
    numbers = clip.frame_numbers
    index_of = {n: i for i, n in enumerate(numbers)}
    references: dict[int, np.ndarray] = {}
    for number, path in sorted(specs.items()):
        if number not in index_of:
            where = f"{numbers[0]} to {numbers[-1]}"
            raise InputError(f"--reference {number}={path}: the clip has no frame {number} (its frames are {where}"
                             f"{'' if clip.numbers else ', counted from 0'}).")
        path = Path(path)
        if not path.is_file():
            raise InputError(f"--reference {number}={path}: {path} " +
                             ("is a folder, not an image." if path.is_dir() else
                              "is not a regular file (a pipe, socket or device)." if path.exists() else
                              "does not exist."))
        translucent: list[str] = []
        image, sample = read_image_typed(path, dropped=translucent)
        if translucent:  # its transparent part's colour (often black) would be taken as the clean plate
            raise InputError(f"--reference {number}={path}: the image has an alpha channel that is not opaque "
                             "everywhere, but a reference is taken whole (every hole pixel of that frame from its "
                             "colour); flatten the painting over the plate first.")
        if image.shape != clip.frames.shape[1:]:
            raise InputError(f"--reference {number}={path}: the image is {image.shape[1]}x{image.shape[0]} but the "
                             f"clip is {clip.size[0]}x{clip.size[1]}; paint it at the clip's size.")
        if image.dtype == np.uint8 and clip.frames.dtype == np.uint16:
            image = image.astype(np.uint16) * 257
        if image.dtype != clip.frames.dtype:
            raise InputError(f"--reference {number}={path}: the image is {_describe(image, sample).split()[-1]} but "
                             f"the clip is {_describe(clip.frames[0], clip.sample).split()[-1]}; save the painting "
                             "at the clip's bit depth.")
        references[index_of[number]] = image
    return references


def read_inputs(video: str | Path, mask: str | Path, invert: bool = False,
                frame_range: tuple[int, int] | None = None) -> tuple[Clip, np.ndarray]:
    """Read a clip and its masks together, checked against each other. A mask pattern is read at the clip's frame
    numbers."""
    clip = read_clip(video, frame_range)
    if clip.kind == "images" and not clip.numbers and Path(mask).is_dir():
        check_same_numbers(Path(video), Path(mask))
    try:
        masks = read_masks(mask, clip.frames.shape[0], clip.size, invert=invert, numbers=clip.numbers or None)
    except InputError as exc:
        if clip.turn and "must be the same size" in str(exc):
            raise InputError(f"{str(exc).rstrip('.')}: video {clip.source} asks players to turn it "
                             f"{TURN_WORDS[clip.turn]}, and is read as players show it, so draw the mask on that "
                             "picture.") from None
        raise
    clip.notices += mask_rate_notices(mask, clip, _video_rate(Path(mask)) if clip.kind == "video" else None)
    return clip, masks


def mask_rate_notices(mask: str | Path, clip: Clip, rate: Fraction | None) -> list[str]:
    """A mask video at another `rate` than the video's (None: not a video): paired frame by frame all the same,
    and said."""
    if clip.kind != "video" or rate is None or rate == clip.fps:
        return []
    return [f"the mask {mask} runs at {float(rate):g} fps and the video at {float(clip.fps):g}; they have the same "
            "number of frames, so mask frame N is used for video frame N"]


def check_same_numbers(frames: Path, masks: Path) -> None:
    """A folder of frames and a folder of masks are paired by position; where both number their files and the
    numbers differ (each missing another frame), position would pair a frame with another frame's mask."""
    mine, theirs = file_numbers(list_images(frames)), file_numbers(list_images(masks))
    if mine is None or theirs is None or len(mine) != len(theirs) or \
            len({b - a for a, b in zip(mine, theirs)}) == 1:
        return  # a count that differs is said by read_masks; masks counted from 0 for frames from 1 pair alike
    lacking, extra = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
    if not lacking and not extra:
        return  # the same numbers, their names sorted otherwise: not a missing frame
    said = [f"it has no mask for frame {lacking[0]}" if lacking else "",
            f"it has a mask for frame {extra[0]}, which the frames lack" if extra else ""]
    raise InputError(f"the mask folder {masks} does not number its files as the frames in {frames} ("
                     f"{' and '.join(w for w in said if w)}); give one mask per frame, numbered as the frames.")


def _video_rate(path: Path) -> Fraction | None:
    """The frame rate of a mask video (None for images), to say when it differs from the clip's."""
    if not path.is_file() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return Fraction(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
    except (av.FFmpegError, OSError, IndexError, ValueError, ZeroDivisionError):
        return None
