"""vinpaint's mark with a digest: "written by vinpaint; sha256=HEX", so that "ours" means ours and unchanged since.

The bare mark is metadata, and other tools carry metadata over when they save a file again (GIMP and ImageMagick
keep a PNG's Comment, oiiotool an EXR's Software, ffmpeg a video's comment): a frame painted over in one of them
still looked like ours, and the next run replaced the fix. HEX is the SHA-256 of the file's bytes as vinpaint wrote
them, so any other program's save (which rewrites the bytes) breaks it:

- a PNG: of the file without its tEXt mark chunk (`mark_png`, `png_state`);
- a saved config (JSON): of the text with HEX as zeros, in its last member (`mark_json`, `sealed_state`);
- anything else (EXR, TIFF, DPX, videos): of the file with HEX as zeros. The file is written with PLACEHOLDER in
  its metadata (the Software attribute, the container comment), stored verbatim in every such format, and `seal`
  writes HEX over the zeros in place (`sealed_state` checks it).

Checking reads the file's bytes once, streamed (no decoding, no mapping), and a file unchanged since it was checked
(same inode, size and times) is not read again in this process.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import zlib
from pathlib import Path

from vinpaint.files import open_regular

MARK_TEXT = "written by vinpaint"
"""The mark: a video's container comment (and its stream's encoder tag), a PNG's tEXt Comment, a frame file's
Software attribute; followed by DIGEST_FIELD and the digest everywhere but in the encoder tag."""
DIGEST_FIELD = "; sha256="
PLACEHOLDER = MARK_TEXT + DIGEST_FIELD + "0" * 64
"""What a file to be sealed carries until `seal` writes its digest over the zeros."""

OURS, FOREIGN, CHANGED, UNSEALED = "ours", "foreign", "changed", "unsealed"
"""A file's state: vinpaint's and unchanged; without the mark; with the mark but changed since (another program
saved it, keeping the mark); with the bare mark of a vinpaint before the digest (it cannot show it is unchanged)."""

_PREFIX = (MARK_TEXT + DIGEST_FIELD).encode("ascii")
_ZEROS = b"0" * 64
_HEX = re.compile(rb"[0-9a-f]{64}")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHUNK_START = b"tEXtComment\0" + MARK_TEXT.encode("ascii")
_PNG_AFTER_IHDR = 33  # 8 signature + 25 IHDR


def mark_png(data: bytes) -> bytes:
    """PNG bytes -> the same file with the tEXt chunk "Comment: written by vinpaint; sha256=..." right after IHDR,
    the digest over the file without that chunk. A mark already there is replaced (so marking twice is harmless)."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return data
    found = _png_chunk(data)
    if found is not None:
        data = data[:found[0]] + data[found[1]:]
    body = b"Comment\0" + _PREFIX + hashlib.sha256(data).hexdigest().encode("ascii")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return data[:_PNG_AFTER_IHDR] + chunk + data[_PNG_AFTER_IHDR:]


MARK_MEMBER = "written_by"
"""The member of a saved config's JSON object (`<stem>.config.json`) that holds the mark and its digest."""


def mark_json(data: bytes) -> bytes:
    """A JSON object's text -> the same with a last member MARK_MEMBER: the mark and the SHA-256 of the text with
    the digest as zeros, which `sealed_state` checks. Before, any JSON object with a config's three keys counted
    as ours: a config edited by hand, or saved there during a run, was replaced without a word (a hunt found it)."""
    text = data.rstrip()
    if not text.startswith(b"{") or not text.endswith(b"}"):
        return data
    body = text[:-1].rstrip()
    marked = body + (b"," if body != b"{" else b"") + f'\n  "{MARK_MEMBER}": "{PLACEHOLDER}"\n}}\n'.encode("ascii")
    return sealed_bytes(marked)


def sealed_bytes(data: bytes) -> bytes:
    """`data` holding PLACEHOLDER, with its digest written over it, in memory: what `seal` makes of such a file,
    so it can be renamed into place whole (a kill between a rename and `seal` left a file that read as changed)."""
    return data.replace(_PREFIX + _ZEROS, _PREFIX + hashlib.sha256(data).hexdigest().encode("ascii"))


def _png_chunk(head: bytes) -> tuple[int, int, bytes] | None:
    """(start, end, text) of the tEXt chunk holding vinpaint's mark within a PNG's first bytes, or None (mark_png
    puts it right after IHDR; a program that moves it elsewhere has saved the file again)."""
    at = head.find(_PNG_CHUNK_START)
    if at < 4:
        return None
    (length,) = struct.unpack(">I", head[at - 4:at])
    end = at + 4 + length + 4
    if end > len(head):
        return None
    return at - 4, end, bytes(head[at + 12:at + 4 + length])  # text after "tEXt" and "Comment\0"


def png_state(path: Path) -> str:
    """OURS, FOREIGN, CHANGED or UNSEALED for the PNG at `path`, from its bytes."""
    return _cached(Path(path), _png_state)


_PNG_HEAD = 4096
"""Where a PNG's mark is looked for: mark_png puts it at byte 33."""


def _png_state(handle) -> str:
    head = handle.read(_PNG_HEAD)
    found = _png_chunk(head)
    if found is None:
        return FOREIGN
    start, end, text = found
    if text == MARK_TEXT.encode("ascii"):
        return UNSEALED
    digest = text[len(_PREFIX):]
    if not text.startswith(_PREFIX) or not _HEX.fullmatch(digest):
        return CHANGED
    hasher = hashlib.sha256(head[:start])
    hasher.update(head[end:])
    while chunk := handle.read(_CHUNK):
        hasher.update(chunk)
    return OURS if hasher.hexdigest().encode("ascii") == digest else CHANGED


def seal(path: Path) -> None:
    """Write the digest of the file at `path` over its PLACEHOLDER (every copy of it), in place; the caller
    syncs. ValueError when the file holds none (its writer did not put it in)."""
    placeholder = PLACEHOLDER.encode("ascii")
    hasher, marks, tail, offset = hashlib.sha256(), [], b"", 0
    with open(path, "r+b") as handle:
        while chunk := handle.read(1 << 20):  # streamed: a video may be larger than memory
            hasher.update(chunk)
            seen = tail + chunk  # a placeholder across two chunks too; `tail` is too short to hold a whole one
            at = seen.find(placeholder)
            while at >= 0:
                marks.append(offset - len(tail) + at)
                at = seen.find(placeholder, at + len(placeholder))
            tail, offset = seen[-(len(placeholder) - 1):], offset + len(chunk)
        if not marks:
            raise ValueError(f"{path} holds no {PLACEHOLDER!r} to seal")
        digest = hasher.hexdigest().encode("ascii")
        for at in marks:
            os.pwrite(handle.fileno(), digest, at + len(_PREFIX))


def sealed_state(path: Path) -> str:
    """OURS or CHANGED for a file `seal` sealed (it holds the mark with a digest); FOREIGN when it holds none
    (the caller tells a bare mark, UNSEALED, by the file's own metadata)."""
    return _cached(Path(path), _sealed_state)


def _sealed_state(handle) -> str:
    """One streamed pass: the first mark names the digest, and the file is hashed with that digest read as zeros
    wherever it follows the mark (a file may hold it twice, .mov). Read, not mapped: a file cut short by another
    program while it is checked ends the read early, where a mapped file killed the process (SIGBUS)."""
    span = len(_PREFIX) + 64
    hasher, pending, digest = hashlib.sha256(), b"", None
    while True:
        chunk = handle.read(_CHUNK)
        data = pending + chunk
        if digest is None:
            at = data.find(_PREFIX)
            if at >= 0 and (len(data) - at >= span or not chunk):
                digest = bytes(data[at + len(_PREFIX):at + span])
                if not _HEX.fullmatch(digest):
                    return CHANGED
        if digest is not None:
            data = data.replace(_PREFIX + digest, _PREFIX + _ZEROS)
        if not chunk:
            if digest is None:
                return FOREIGN
            hasher.update(data)
            return OURS if hasher.hexdigest().encode("ascii") == digest else CHANGED
        keep = span - 1  # a mark may begin in these bytes and end in the next chunk
        hasher.update(data[:-keep])
        pending = data[-keep:]


_CHUNK = 1 << 20


_checked: dict[tuple, str] = {}
"""(what, path, device, inode, size, mtime, ctime) -> state: a run checks its outputs before training, again
before writing, and once more before each rename; a file saved again in between has another ctime (and inode,
for a program that saves by renaming), so it is read again."""


def _cached(path: Path, judge) -> str:
    """judge(the open file) for the regular file at `path`, read once while it stays unchanged. Opened without
    waiting (a named pipe put there since the caller looked would block for ever) and judged only if regular."""
    try:
        handle = open_regular(path)
    except OSError:
        return FOREIGN
    with handle:
        st = os.fstat(handle.fileno())
        if st.st_size == 0:
            return FOREIGN
        key = (judge.__name__, os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
               st.st_ctime_ns)
        if key in _checked:
            return _checked[key]
        state = judge(handle)
    if len(_checked) > 100_000:  # a daemon's long life: bounded
        _checked.clear()
    _checked[key] = state
    return state
