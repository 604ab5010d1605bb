"""Frame-pattern names as compositors write them (`plate.%04d.exr`, `plate.####.exr`) and frame ranges (`1001-1100`).

A pattern names one file per frame number: `%04d` and `####` mean the number padded to 4 digits (a longer number is
written in full, as Nuke and Natron do), `%d` and a single `#` mean the number unpadded. The frame field must be in
the file name, once. Anything else with a `%` or `#` in the file name is refused with one sentence.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vinpaint.errors import InputError

SEQUENCE_EXTENSIONS = (".exr", ".dpx", ".tif", ".tiff", ".png")
"""What a pattern may name, for reading and writing alike."""
MAX_PADDING = 9
MAX_RANGE = 100_000
"""Most frames one range may span (engine.io.MAX_FRAMES)."""
_FIELD = re.compile(r"%(0(\d+))?d|#+")


@dataclass(frozen=True)
class Pattern:
    """`folder/prefix<number>suffix`, the number padded to `padding` digits (0: unpadded)."""

    folder: Path
    prefix: str
    padding: int
    suffix: str
    text: str
    """The pattern as the user wrote it, for messages."""

    def name(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.padding}d}{self.suffix}" if self.padding else \
            f"{self.prefix}{number}{self.suffix}"

    def path(self, number: int) -> Path:
        return self.folder / self.name(number)

    def stem(self, number: int) -> str:
        """The file name without its extension (a PNG matte folder keeps the frame numbers this way)."""
        return self.name(number)[: -len(self.extension)] if self.extension else self.name(number)

    @property
    def extension(self) -> str:
        return _extension(self.suffix)

    @property
    def base(self) -> Path:
        """The pattern without its frame field and extension (`out/clean.%04d.exr` -> `out/clean`): where the
        files beside an output (config, work directory) are named from."""
        head = self.prefix.rstrip("._-") or "frames"
        return self.folder / head

    def number(self, filename: str) -> int | None:
        """The frame number of a file name this pattern makes, else None."""
        if not (filename.startswith(self.prefix) and filename.endswith(self.suffix)):
            return None
        digits = filename[len(self.prefix): len(filename) - len(self.suffix)]
        if not digits.isascii() or not digits.isdigit():
            return None
        number = int(digits)
        return number if self.name(number) == filename else None  # "0012" is frame 12 only at padding 4

    def numbers_on_disk(self) -> list[int]:
        """The frame numbers whose files exist, sorted."""
        if not self.folder.is_dir():
            return []
        found = (self.number(entry.name) for entry in self.folder.iterdir())
        return sorted(n for n in found if n is not None)


def _extension(suffix: str) -> str:
    """'.exr' or '_v2.exr' -> '.exr'; '' without a dot."""
    return "." + suffix.rsplit(".", 1)[1].lower() if "." in suffix else ""


def frame_fields(name: str) -> list[str]:
    """The frame fields a file name holds, as written: '%04d', '%d', '####', '#'."""
    return [field.group(0) for field in _FIELD.finditer(name)]


def looks_like_pattern(text: str) -> bool:
    """True when the file name part of `text` holds a `%` or `#`: it is meant as a frame pattern."""
    name = Path(str(text)).name
    return "%" in name or "#" in name


def parse_pattern(text: str | Path) -> Pattern:
    """'plate.%04d.exr' or 'plate.####.exr' -> Pattern; InputError (one sentence) for anything malformed."""
    text = str(text)
    path = Path(os.path.expanduser(text))  # Path's raises for ~unknown-user
    name = path.name
    fields = list(_FIELD.finditer(name))
    example = "plate.%04d.exr or plate.####.exr"
    if "%" in str(path.parent) or "#" in str(path.parent):
        raise InputError(f"frame pattern '{text}' has a % or # in its folder; the frame number goes in the file "
                         f"name only, e.g. {example}.")
    if len(fields) != 1:
        raise InputError(f"frame pattern '{text}' must have exactly one frame field (%04d, %d or ####), e.g. "
                         f"{example}.")
    field = fields[0]
    rest = name[: field.start()] + name[field.end():]
    if "%" in rest or "#" in rest:
        raise InputError(f"frame pattern '{text}' has a % or # besides its frame field; the only fields are "
                         f"%0Nd, %d and #### (e.g. {example}).")
    if field.group(0).startswith("%"):
        padding = int(field.group(2)) if field.group(1) else 0
    else:
        padding = len(field.group(0)) if len(field.group(0)) > 1 else 0
    if padding > MAX_PADDING:
        raise InputError(f"frame pattern '{text}' pads frame numbers to {padding} digits; at most {MAX_PADDING}.")
    prefix, suffix = name[: field.start()], name[field.end():]
    extension = _extension(suffix)
    if extension not in SEQUENCE_EXTENSIONS:
        raise InputError(f"frame pattern '{text}' must end in one of {', '.join(SEQUENCE_EXTENSIONS)}, e.g. "
                         f"{example}.")
    return Pattern(path.parent, prefix, padding, suffix, text)


def parse_range(text: str) -> tuple[int, int]:
    """'1001-1100' -> (1001, 1100), both included; a single '1001' is one frame. InputError otherwise."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*(?:-\s*(\d{1,9})\s*)?", str(text))
    if not match:
        raise InputError(f"--frames takes FIRST-LAST in the clip's frame numbers, e.g. 1001-1100, not '{text}'.")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise InputError(f"--frames {text} ends before it starts; give FIRST-LAST with FIRST <= LAST.")
    return first, last


def select_frames(pattern: Pattern, frame_range: tuple[int, int] | None = None) -> list[int]:
    """The frame numbers of a pattern to read: every one in `frame_range` (each must exist), or all those on disk
    (which must run without gaps). InputError names what is missing."""
    on_disk = pattern.numbers_on_disk()
    if frame_range is not None:
        if frame_range[1] - frame_range[0] >= MAX_RANGE:
            raise InputError(f"--frames {frame_range[0]}-{frame_range[1]} spans more than {MAX_RANGE} frames; cut "
                             "the shot into shorter ranges.")
        wanted = list(range(frame_range[0], frame_range[1] + 1))
        have = set(on_disk)
        missing = [n for n in wanted if n not in have]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise InputError(f"frame {missing[0]}{more} of frames {frame_range[0]}-{frame_range[1]} is missing: "
                             f"no file {pattern.path(missing[0])}.")
        return wanted
    if not on_disk:
        raise InputError(f"no files match the frame pattern {pattern.text} (looked for "
                         f"{pattern.path(1001 if pattern.padding >= 4 else 1).name} and the like in "
                         f"{pattern.folder}).")
    for previous, current in zip(on_disk, on_disk[1:]):
        if current != previous + 1:
            raise InputError(f"the frames of {pattern.text} jump from {previous} to {current}; fill the gap or "
                             f"pick a range without one with --frames (e.g. --frames {on_disk[0]}-{previous}).")
    return on_disk
