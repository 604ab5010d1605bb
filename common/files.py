"""Crash-safe writes: a reader sees the old file or the new one, never half of either.

The one implementation for the whole product, kept in the root package (no torch, no zmq) so the engine's work
directory and the daemon's job store share it.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (POSIX needs the directory itself synced)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], object], durable: bool = True) -> None:
    """Write through `write(fileobj)` into a temporary file beside `path`, fsync it, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            f = _Recording(raw)
            try:
                write(f)
            except Exception:
                if f.failure is not None:  # e.g. torch.save turns a full disk into an obscure RuntimeError
                    raise f.failure from None
                raise
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not exc.filename and exc.errno:  # a full disk: say which file
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise
    if durable:
        fsync_dir(path.parent)


class _Recording:
    """A file object that remembers the first OSError its write() raised, so a writer that wraps it in another
    exception type still reports the real cause (the disk is full)."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self._raw = raw
        self.failure: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._raw.write(data)
        except OSError as exc:
            self.failure = self.failure or exc
            raise

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


def atomic_write_bytes(path: Path, data: bytes | memoryview, durable: bool = True) -> None:
    atomic_write(path, lambda f: f.write(data), durable)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
