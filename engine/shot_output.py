"""Writing a long shot frame by frame as its windows finish, with engine/writers.py's guarantees: a video is
encoded into a temporary file kept open across windows, PNG frames go into a temporary folder, frame-pattern files
under temporary names; all of it is moved into place only when the last frame is written (`commit`), after the same
check_replaceable checks, so a failed shot replaces nothing and a user's file is never replaced."""
from __future__ import annotations

import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .sequences import Pattern
from .writers import CODECS, MARK_TEXT, MARKER, _UMASK, _fsync_dir, _muxer, _Naming, _replace_folder, \
    _temp_sibling, check_replaceable, encode_png, sequence_sample, to_uint8
from .imagefiles import write_image_file


class VideoSink:
    """A video encoded as frames arrive; `commit` renames it into place."""

    def __init__(self, path: Path, codec: str, size: tuple[int, int], fps: Fraction, deep_source: bool,
                 overwrite: bool = False):
        self.path, self.overwrite = Path(path), overwrite
        check_replaceable(self.path, overwrite=overwrite)
        spec = CODECS[codec]
        self.deep = deep_source and spec.pix_fmt_16 is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = _temp_sibling(self.path, self.path.suffix)
        self.container = av.open(str(self.temp), mode="w", format=_muxer(self.path))
        self.container.metadata["comment"] = MARK_TEXT
        self.stream = self.container.add_stream(spec.encoder, rate=Fraction(fps).limit_denominator(1_000_000))
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = spec.pix_fmt_16 if self.deep else spec.pix_fmt
        self.stream.options = dict(spec.options)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        data = frame if self.deep else to_uint8(frame)
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format="rgb48le" if self.deep else "rgb24")
        picture.pts = self.count
        self.count += 1
        with _Naming(self.path):
            self.container.mux(self.stream.encode(picture))

    def commit(self) -> None:
        with _Naming(self.path):
            self.container.mux(self.stream.encode(None))
            self.container.close()
            with open(self.temp, "rb") as handle:
                os.fsync(handle.fileno())
        check_replaceable(self.path, overwrite=self.overwrite)  # again: a file may have appeared meanwhile
        os.replace(self.temp, self.path)
        _fsync_dir(self.path.parent)

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
        check_replaceable(self.folder, folder=True, overwrite=overwrite)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.temp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.", suffix=".partial", dir=self.folder.parent))
        os.chmod(self.temp, 0o777 & ~_UMASK)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        name = self.names[self.count] if self.names else f"{self.count:05d}"
        with _Naming(self.folder / f"{name}.png"):
            (self.temp / f"{name}.png").write_bytes(encode_png(np.ascontiguousarray(frame)))
        self.count += 1

    def commit(self) -> None:
        (self.temp / MARKER).write_text(f"{MARK_TEXT}; the next run that writes here replaces this folder whole\n")
        _replace_folder(self.temp, self.folder, self.overwrite)

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
        temp = _temp_sibling(target, self.pattern.extension)
        self.temps.append(temp)
        with _Naming(target):
            if self.pattern.extension == ".png":
                temp.write_bytes(encode_png(np.ascontiguousarray(frame)))
            else:
                write_image_file(temp, np.ascontiguousarray(frame), self.sample, MARK_TEXT, format_path=target)

    def commit(self) -> None:
        for temp in self.temps:
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        for target in self.targets:
            check_replaceable(target, overwrite=self.overwrite)
        for temp, target in zip(self.temps, self.targets):
            os.replace(temp, target)
        _fsync_dir(self.pattern.folder)

    def abort(self) -> None:
        for temp in self.temps:
            temp.unlink(missing_ok=True)
