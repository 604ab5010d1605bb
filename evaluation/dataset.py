"""Finding and reading clips in a folder laid out like ../shared/data (or DAVIS), for evaluation only.

Layouts understood:
- ours: `<name>/frames/*.png` with optional mask folders `<name>/masks*/`; background clips (no object) in
  `bg/<name>/frames/`; a top-level clip with no mask folder also counts as a background.
- DAVIS: `JPEGImages/<res>/<name>/*.jpg` with `Annotations/<res>/<name>/*.png` (any non-zero label is the hole).
Masks: any non-zero pixel is hole, so both 0/255 masks and DAVIS palette masks work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vinpaint.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ClipSource:
    """A clip on disk: its frame folder and its mask folders by name ("masks", "masks_dogs", ...)."""

    name: str
    frames: Path
    masks: dict[str, Path] = field(default_factory=dict)


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder in name order (frame order)."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return files


def scan(root: Path) -> tuple[list[ClipSource], list[ClipSource]]:
    """(masked clips, background clips) found under root, each sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"the data folder {root} is a file, not a folder." if root.exists() else
                         f"the data folder {root} does not exist.")
    masked: list[ClipSource] = []
    backgrounds: list[ClipSource] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if (d / "frames").is_dir():
            masks = {m.name: m for m in sorted(d.iterdir()) if m.is_dir() and m.name.startswith("masks")}
            (masked if masks else backgrounds).append(ClipSource(d.name, d / "frames", masks))
    bg = root / "bg"
    if bg.is_dir():
        for d in sorted(p for p in bg.iterdir() if (p / "frames").is_dir()):
            backgrounds.append(ClipSource(f"bg/{d.name}", d / "frames"))
    jpeg, ann = root / "JPEGImages", root / "Annotations"
    if jpeg.is_dir() and ann.is_dir():
        for res in sorted(p for p in jpeg.iterdir() if p.is_dir())[:1]:
            for d in sorted(p for p in res.iterdir() if p.is_dir()):
                a = ann / res.name / d.name
                if a.is_dir():
                    masked.append(ClipSource(d.name, d, {"masks": a}))
    return masked, backgrounds


def find_clip(root: Path, name: str) -> ClipSource:
    """The clip called `name` under root (masked or background)."""
    masked, backgrounds = scan(root)
    for c in masked + backgrounds:
        if c.name == name:
            return c
    raise InputError(f"no clip called {name!r} under {root}.")


def _imread(path: Path) -> np.ndarray | None:
    """cv2.imread through bytes: given a path that is no UTF-8 (surrogate escapes), imread crashed the process
    (SIGSEGV, OpenCV 4.14 and 5.1)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None


def imwrite(path: Path, image: np.ndarray) -> bool:
    """cv2.imwrite through bytes, for the same reason; False when it cannot be encoded or written."""
    ok, buf = cv2.imencode(Path(path).suffix or ".png", image)
    if not ok:
        return False
    try:
        Path(path).write_bytes(buf.tobytes())
    except OSError:
        return False
    return True


def read_image(path: Path) -> np.ndarray:
    """One frame as uint8 RGB [H,W,3] (16-bit files are reduced to 8 bits)."""
    im = _imread(path)
    if im is None:
        raise InputError(f"{path} is not a readable image.")
    if im.dtype == np.uint16:
        im = (im.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if im.ndim == 2:
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2RGB)
    elif im.shape[2] == 4:
        im = cv2.cvtColor(im, cv2.COLOR_BGRA2RGB)
    else:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    return im


def read_mask(path: Path) -> np.ndarray:
    """One mask as bool [H,W]: any non-zero pixel is hole."""
    im = _imread(path)
    if im is None:
        raise InputError(f"{path} is not a readable mask image.")
    if im.ndim == 3:
        im = im.max(axis=2)
    return im > 0


def fit(image: np.ndarray, width: int, height: int, *, mask: bool = False) -> np.ndarray:
    """Centre-crop to the target aspect, then resize (area for frames; area + threshold 0.5 for masks)."""
    h, w = image.shape[:2]
    if w * height > h * width:  # too wide: crop the sides
        cw = max(1, round(h * width / height))
        x0 = (w - cw) // 2
        image = image[:, x0:x0 + cw]
    else:
        ch = max(1, round(w * height / width))
        y0 = (h - ch) // 2
        image = image[y0:y0 + ch]
    if mask:
        m = cv2.resize(image.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
        return m >= 0.5
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def read_frames(folder: Path, indices: list[int] | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames [T,H,W,3] uint8 of a folder (the given indices, in that order), optionally fitted to (W, H)."""
    files = list_images(Path(folder))
    idx = range(len(files)) if indices is None else indices
    if not idx:  # np.stack of nothing is a ValueError: a caller asked for no frames (e.g. --real-frames 0)
        raise InputError(f"no frames asked of {folder}.")
    out = []
    for i in idx:
        if not 0 <= i < len(files):
            raise InputError(f"{folder} has {len(files)} frames; frame {i} does not exist.")
        im = read_image(files[i])
        out.append(fit(im, *size) if size else im)
    if len({o.shape for o in out}) > 1:
        raise InputError(f"the frames in {folder} differ in size.")
    return np.stack(out)


def read_masks(folder: Path, indices: list[int] | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Masks [T,H,W] bool of a folder (the given indices), optionally fitted to (W, H)."""
    files = list_images(Path(folder))
    idx = range(len(files)) if indices is None else indices
    if not idx:
        raise InputError(f"no masks asked of {folder}.")
    out = []
    for i in idx:
        if not 0 <= i < len(files):
            raise InputError(f"{folder} has {len(files)} masks; mask {i} does not exist.")
        m = read_mask(files[i])
        out.append(fit(m, *size, mask=True) if size else m)
    if len({o.shape for o in out}) > 1:
        raise InputError(f"the masks in {folder} differ in size.")
    return np.stack(out)


def frame_count(folder: Path) -> int:
    return len(list_images(Path(folder)))
