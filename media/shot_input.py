"""Reading a long shot a window at a time: a video is decoded forward once, keeping only the frames the current
and next windows share; an image folder or frame pattern reads only the window's files. Nothing holds the shot.

The checks are media/io.py's (same sentences): files that do not match, a mask of another size or length."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vinpaint.errors import InputError
from .io import DEFAULT_FPS, IMAGE_EXTENSIONS, Clip, _check_count, _check_size, _describe, _reason, _to_hole, \
    check_alpha_read, check_frame_names, check_regular, check_same_numbers, check_same_size, decoded_format, \
    display_turn, image_alpha_notices, list_images, mask_rate_notices, matte_of, read_image_typed, shown_packets, \
    upright, video_notices
from .sequences import looks_like_pattern, parse_pattern, select_frames


class FrameStream:
    """One source's frames by index, read in increasing order. `clip` describes it as engine.io.Clip does, with
    `clip.frames` a read-only stand-in of the right shape and type that holds only the first frame."""

    def __init__(self, path: str | Path, frame_range: tuple[int, int] | None = None, matte: bool = False):
        self.matte = matte
        """Masks: an alpha channel is the matte (io.read_image_typed)."""
        path = Path(path)
        self.files: list[Path] = []
        self.container = None
        self.decoded = 0
        self.turn, self.flipped = 0, False
        """np.rot90's k for the video's display rotation and whether it mirrors (io.display_turn), known from its
        first frame."""
        self.buffer: dict[int, np.ndarray] = {}
        names: list[str] = []
        numbers: list[int] = []
        pattern = None
        if not path.exists() and looks_like_pattern(str(path)):
            pattern = parse_pattern(path)
            numbers = select_frames(pattern, frame_range)
            self.files = [pattern.path(n) for n in numbers]
            names = [pattern.stem(n) for n in numbers]
            source = Path(pattern.text)
        elif frame_range is not None:
            raise InputError(f"--frames picks frames of a frame pattern (plate.%04d.exr, plate.####.exr), and "
                             f"{path} is not one; give the frames as a pattern.")
        elif not path.exists():
            raise InputError(f"input {path} does not exist.")
        elif path.is_dir():
            self.files = list_images(path)
            if not self.files:
                raise InputError(f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
            if not matte:
                check_frame_names(path, self.files)
            names, source = [p.stem for p in self.files], path
        else:
            check_regular(path, "input")
            source = path
        self.path = source
        dropped: list[str] = []  # the first frame's alpha, when it is dropped (read_image_typed)
        notices: list[str] = []
        if self.files:
            first, self.sample = read_image_typed(self.files[0], self.matte, dropped)
            self.count, fps, kind = len(self.files), DEFAULT_FPS, "images"
        else:
            first, fps, self.count, notices = self._probe_video(path)
            self.sample, kind = "", "video"
        self.first = first
        notices = [] if self.matte else image_alpha_notices(source, dropped, 1) + notices
        self.clip = Clip(np.broadcast_to(first, (self.count, *first.shape)), Fraction(fps), source, kind, names,
                         numbers=numbers, pattern=pattern, sample=self.sample, notices=notices, turn=self.turn)

    def _probe_video(self, path: Path) -> tuple[np.ndarray, Fraction, int, list[str]]:
        """The first frame, the rate, the frame count from the packets (a fast pass: only the first frame is
        decoded) and the notices for the user."""
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise InputError(f"file {path} has no video stream.")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
                packets = shown_packets(container.demux(stream), stream.codec_context.name)
                count = len(packets)
                times = [float(pts * base) for pts, base in packets if pts is not None and base is not None]
                audio = len(container.streams.audio)
            self.video = path
            first = self.read(0, 1)[0]
            if self.matte:  # the first frame only: a blank one is what the VP9 decoder gives for every frame
                check_alpha_read(path, stream, [first])
            notices = video_notices(path, audio, stream, rate, times, self.turn, first.shape, self.flipped)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot open video {path}: {_reason(exc)}.") from None
        if count == 0:
            raise InputError(f"video {path} holds no frames.")
        return first, rate, count, notices

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames start..stop-1 as [n,H,W,3]; frames before `start` are forgotten, so call with rising starts."""
        if self.files:
            images = []
            for path in self.files[start:stop]:
                image, sample = read_image_typed(path, self.matte)
                if image.shape != self.first.shape or sample != self.sample:
                    raise InputError(f"image {path.name} in {path.parent} is {_describe(image, sample)} but "
                                     f"{self.files[0].name} is {_describe(self.first, self.sample)}; every frame "
                                     "must match.")
                images.append(image)
            return np.stack(images)
        return self._read_video(start, stop)

    def _read_video(self, start: int, stop: int) -> np.ndarray:
        if self.container is None or start < min(self.buffer, default=self.decoded):
            self.close()
            self.container = av.open(str(self.video))
            stream = self.container.streams.video[0]
            self.target = decoded_format(self.video, stream, self.matte)
            self.frames_iter = self.container.decode(stream)
            self.decoded, self.buffer = 0, {}
        for index in [i for i in self.buffer if i < start]:
            del self.buffer[index]
        try:
            while self.decoded < stop:
                frame = next(self.frames_iter, None)
                if frame is None:
                    raise InputError(f"video {self.video} ended after {self.decoded} frames but its packets "
                                     f"promised {stop}; is it truncated or still being written?")
                if self.decoded == 0:
                    self.turn, self.flipped = display_turn(frame)
                    self.coded = (frame.width, frame.height)
                check_same_size(self.video, self.coded, frame, self.decoded)
                if self.decoded >= start:
                    self.buffer[self.decoded] = matte_of(upright(frame, self.target, self.turn))
                self.decoded += 1
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"video {self.video} is damaged after frame {self.decoded}: {_reason(exc)}.") from None
        return np.stack([self.buffer[i] for i in range(start, stop)])

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class ShotFiles:
    """A shot's frames and masks from files, a window at a time (engine/shot.py's ShotSource)."""

    def __init__(self, video: str | Path, mask: str | Path, invert: bool = False,
                 frame_range: tuple[int, int] | None = None):
        self.frames = FrameStream(video, frame_range)
        self.clip = self.frames.clip
        self.count = self.frames.count
        self.invert = invert
        mask = Path(mask)
        self.static = None
        self.masks = None
        if not mask.exists() and looks_like_pattern(str(mask)):
            numbers = self.clip.numbers
            self.masks = FrameStream(mask, (numbers[0], numbers[-1]) if numbers else None, matte=True)
        elif not mask.exists():
            raise InputError(f"mask {mask} does not exist.")
        elif not mask.is_dir() and not mask.is_file():
            check_regular(mask, "mask")
        elif mask.is_file() and mask.suffix.lower() in IMAGE_EXTENSIONS:
            image = read_image_typed(mask, matte=True)[0]
            _check_size(image.shape[1], image.shape[0], self.clip.size, mask)
            self.static = _to_hole(image, invert)
        else:
            if mask.is_dir() and Path(video).is_dir() and not self.clip.numbers:
                check_same_numbers(Path(video), mask)
            self.masks = FrameStream(mask, matte=True)
        if self.masks is not None:
            _check_count(self.masks.count, self.count, mask)
            _check_size(*self.masks.clip.size, self.clip.size, mask)
            rate = self.masks.clip.fps if self.masks.clip.kind == "video" else None  # probed already: not reopened
            self.clip.notices += mask_rate_notices(mask, self.clip, rate)  # as read_inputs says it of a whole clip

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        frames = self.frames.read(start, stop)
        if self.static is not None:
            return frames, np.broadcast_to(self.static, (stop - start, *self.static.shape)).copy()
        return frames, _to_hole(self.masks.read(start, stop), self.invert)

    def close(self) -> None:
        self.frames.close()
        if self.masks is not None:
            self.masks.close()


def count_frames(video: str | Path, frame_range: tuple[int, int] | None = None) -> int | None:
    """How many frames a source holds, without reading them; None when it cannot tell (the ordinary reader then
    says why)."""
    geometry = frame_geometry(video, frame_range)
    return geometry[0] if geometry is not None else None


def frame_geometry(video: str | Path, frame_range: tuple[int, int] | None = None) -> tuple[int, int, int] | None:
    """(frames, height, width) of a source from its first frame alone; None when it cannot tell (the ordinary
    reader then says why)."""
    try:
        stream = FrameStream(video, frame_range)
    except InputError:
        return None
    stream.close()
    return stream.count, int(stream.first.shape[0]), int(stream.first.shape[1])
