"""Crash-safe writes: a reader sees the old file or the new one, never half of either.

The one implementation for the whole product (results, configs, checkpoints, the job store, golden vectors), kept
in the root package (no torch, no zmq) so every part shares it. One permission rule: a file or folder written here
gets what a plain open() or mkdir() would have given it (0666 / 0777 less the umask), so `OUT.config.json` and a
work directory's `config.json` are alike, and a user who wants them private sets a umask.

A temporary name is `.NAME.RANDOM.partial[.ext]` beside the target (cli/main.py turns it back into NAME in error
messages); the extension is kept so writers that go by it (FFmpeg's muxers) see the real one.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK
FOLDER_MODE = 0o777 & ~UMASK


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (POSIX needs the directory itself synced)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # platforms without directory handles
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_sibling(path: Path, suffix: str = "", folder: bool = False) -> Path:
    """A fresh temporary file (or folder) beside `path`, with the permissions of the one rule above."""
    path = Path(path)
    prefix = f".{_shortened(path.name, len(os.fsencode(suffix)) + 20)}."  # 20: '.', '.', 8 random, '.partial'
    if folder:
        name = tempfile.mkdtemp(prefix=prefix, suffix=f".partial{suffix}", dir=path.parent)
        os.chmod(name, FOLDER_MODE)
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".partial{suffix}", dir=path.parent)
        os.close(fd)
        os.chmod(name, FILE_MODE)
    return Path(name)


PARTIAL_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.partial(\..*)?")
"""temp_sibling's names (tempfile's 8 random characters): what a write cut short by a kill leaves."""


def remove_partials(folder: Path, targets: set[str] | None = None) -> int:
    """Removes the temporaries a killed run left in `folder` (all, or those of the names in `targets`); returns
    how many. Only under a lock that keeps any other writer of those names away (the work directory's, the
    outputs'): a kill -9 leaves them for ever otherwise, up to gigabytes of flow cache or video."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for entry in entries:
        match = PARTIAL_NAME.fullmatch(entry.name)
        if match is None or (targets is not None and match["target"] not in targets):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            pass  # not ours to fight over: it stays, as before
    return removed


def _shortened(name: str, reserved: int, limit: int = 255) -> str:
    """`name` cut (at a character boundary) so that it and `reserved` more bytes fit one file name: a target whose
    name is near the limit still gets a temporary sibling."""
    data = os.fsencode(name)
    if len(data) + reserved <= limit:
        return name
    return data[:max(limit - reserved, 1)].decode("utf-8", "ignore") or "x"


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing entries of one file system in one step (Linux's renameat2 with RENAME_EXCHANGE), so a
    folder is replaced with no moment at which neither the old nor the new one is there. False where the system
    or the file system cannot; the caller then renames twice."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(b))


def naming(exc: BaseException, path: Path) -> BaseException:
    """An OSError that names no file (a write() that hits a full disk) -> the same error naming `path`, so the
    user is told which output could not be written."""
    if isinstance(exc, OSError) and not exc.filename and exc.errno:
        named = OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
        named.__cause__ = exc
        return named
    return exc


@contextlib.contextmanager
def replacing(path: Path, suffix: str = "", durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write into; on a clean exit it is fsynced and renamed over `path`,
    on any failure removed. `suffix` is added to the temporary name (an extension FFmpeg picks a muxer by)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_sibling(path, suffix)
    try:
        yield temp
        commit(temp, path, durable)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        named = naming(exc, path)
        if named is not exc:
            raise named from exc
        raise


def commit(temp: Path, path: Path, durable: bool = True) -> None:
    """A finished temporary file becomes `path`: fsynced, renamed over it, the rename made durable."""
    if durable:
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(temp, path)
    if durable:
        fsync_dir(Path(path).parent)


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], object], durable: bool = True) -> None:
    """Write through `write(fileobj)` into a temporary file beside `path`, fsync it, then rename over `path`."""
    with replacing(path, durable=durable) as temp, open(temp, "wb") as raw:
        f = _Recording(raw)
        try:
            write(f)  # type: ignore[arg-type]
            f.flush()
        except Exception:
            if f.failure is not None:  # e.g. torch.save turns a full disk into an obscure RuntimeError
                raise f.failure from None
            raise


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


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def first_folder_clash(items: list, folder: Callable[[object], str]) -> tuple | None:
    """The first two of `items` whose folder names (`folder(item)`) are one folder on a case-blind disk ->
    (earlier, later), else None: two clips or methods given one folder would each move the other's runs aside."""
    seen: dict[str, object] = {}
    for item in items:
        key = folder(item).casefold()
        if key in seen:
            return seen[key], item
        seen[key] = item
    return None


_OPEN_FLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND}


def open_regular(path: Path, mode: str = "rb", **kwargs):
    """open(path, mode) ("r", "w" or "a", text or binary) for a regular file only: OSError for a named pipe, a
    device or a folder there, found without waiting. Opening a pipe blocks until its other end opens: one put in a
    daemon's job folder (its log, a result) froze the whole daemon, and SIGTERM with it (a hunt found it)."""
    fd = os.open(path, _OPEN_FLAGS[mode[0]] | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
