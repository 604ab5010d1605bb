"""Composed clips with known ground truth, as the paper's Composed dataset (section 4).

A background clip (no object) gets the mask sequence of a real masked clip: the mask is fitted to the working
size (centre crop + resize), trimmed or looped back and forth to the clip length, and optionally mirrored. The
input frames show the source clip's real object inside the hole (or flat grey), so a method that peeks into the
hole is caught; the truth is the untouched background.

Two steps keep it reproducible: `make_manifest` draws every random choice from the seed and writes them all down
(explicit frame indices); `build_clip` turns a manifest entry into pixels with no randomness at all.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vinpaint.errors import InputError
from vinpaint.files import atomic_write_text, first_folder_clash
from vinpaint.evaluation import dataset

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 16 << 20
"""A manifest lists each clip's frame indices, a few KB a clip: anything over 16 MB is refused unread."""


MAX_SIDE = 4096
"""Largest working width or height of a composed set: twice the engine's largest working size (2048), for the
baselines. Every clip is held whole at this size (a 65536x65536 one allocated until the OOM killer came)."""


@dataclass
class ComposeConfig:
    """How to draw a set of composed clips."""

    seed: int = 0
    """All random choices (pairings, segments, mirroring) come from this seed."""
    count: int = 4
    """Number of composed clips."""
    frames: int = 30
    """Frames per clip (fewer when the background clip is shorter)."""
    width: int = 192
    """Working width: clips are made at the size the methods run at, so no method resamples."""
    height: int = 96
    """Working height."""
    mask_folder: str = "masks"
    """Which mask folder of the masked clips to use."""
    fill: str = "object"
    """What the input shows inside the hole: 'object' (the source clip's pixels) or 'grey'."""
    min_hole: float = 0.005
    """Smallest mean hole fraction accepted; segments with less hole are redrawn."""
    backgrounds: list[str] = field(default_factory=list)
    """Background clip names to use (empty: every clean background found). A masked clip's name (e.g. blackswan)
    makes its own frames a background: its object is then part of the truth, and the pasted hole may cover
    something that moves (a dog, a player), which the clean backgrounds never have. It is never given its own
    masks."""
    mask_sources: list[str] = field(default_factory=list)
    """Masked clip names to take masks from (empty: all found)."""

    def validate(self, smallest: int = 16) -> None:
        """Each option named (`vinpaint compose` and `eval`, whose sizes start at `smallest`), before anything is
        read or allocated."""
        if not 1 <= self.count <= MAX_CLIPS:  # 10**8 ran silently for ever (a hunt, 2026-12-03)
            raise InputError(f"--clips must be from 1 to {MAX_CLIPS}, not {self.count}.")
        if not 2 <= self.frames <= MAX_FRAMES:
            raise InputError(f"--frames must be from 2 (a clip is scored frame to frame) to {MAX_FRAMES}, not "
                             f"{self.frames}.")
        if not (smallest <= self.width <= MAX_SIDE and smallest <= self.height <= MAX_SIDE):
            raise InputError(f"--size {self.width}x{self.height} is out of range: width and height must each be "
                             f"from {smallest} to {MAX_SIDE} pixels.")
        if self.seed < 0:
            raise InputError(f"--seed must be 0 or more, not {self.seed}.")
        if self.fill not in ("object", "grey"):
            raise InputError(f"fill must be 'object' or 'grey', not {self.fill!r}.")


@dataclass
class ComposedClip:
    """One composed clip at working size: input frames uint8 [T,H,W,3], hole bool [T,H,W], truth uint8."""

    name: str
    frames: np.ndarray
    masks: np.ndarray
    truth: np.ndarray


def pingpong(start: int, count: int, length: int) -> list[int]:
    """`count` indices from `start` over a sequence of `length`, bouncing at the ends instead of jumping back."""
    if length < 1:
        raise InputError("cannot loop over an empty sequence.")
    if length == 1:
        return [0] * count
    period = 2 * (length - 1)
    out = []
    for i in range(count):
        k = (start + i) % period
        out.append(k if k < length else period - k)
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def make_manifest(data: Path, config: ComposeConfig) -> dict:
    """Draw `config.count` composed clips from the clips under `data`; every choice is written down."""
    config.validate()
    every_masked, backgrounds = dataset.scan(Path(data))
    masked = [c for c in every_masked if config.mask_folder in c.masks]
    if config.mask_sources:
        unknown = [n for n in config.mask_sources if n not in {c.name for c in every_masked}]
        if unknown:
            raise InputError(f"no masked clip called {', '.join(map(repr, unknown))} under {data} for "
                             f"--mask-sources; there are {', '.join(c.name for c in every_masked) or 'none'}.")
        masked = [c for c in masked if c.name in config.mask_sources]
    if config.backgrounds:
        known = {c.name for c in backgrounds + every_masked}
        unknown = [n for n in config.backgrounds if n not in known]
        if unknown:
            raise InputError(f"no clip called {', '.join(map(repr, unknown))} under {data} to use as a background "
                             f"(clean backgrounds are named bg/<name>; a masked clip by its own name).")
        backgrounds = [c for c in backgrounds + every_masked if c.name in config.backgrounds]
    if not backgrounds:
        raise InputError(f"no background clips found under {data} (expected bg/<name>/frames/).")
    if not masked:
        raise InputError(f"no clips with a {config.mask_folder!r} mask folder found under {data}.")
    rng = np.random.default_rng(config.seed)
    pairs = [(b, m) for b in backgrounds for m in masked if b.name != m.name]
    if not pairs:
        raise InputError("every background is also the only mask source: a clip is never given its own masks.")
    order = rng.permutation(len(pairs))
    clips = []
    for n in range(config.count):
        bg, src = pairs[int(order[n % len(pairs)])]
        bg_len = dataset.frame_count(bg.frames)
        src_len = dataset.frame_count(src.masks[config.mask_folder])
        t = min(config.frames, bg_len)
        if t < 2:
            raise InputError(f"the background {bg.name} has fewer than two frames.")
        for _attempt in range(20):
            bg_start = int(rng.integers(0, bg_len - t + 1))
            mask_start = int(rng.integers(0, max(1, src_len - t + 1)))
            flip = bool(rng.random() < 0.5)
            entry = {
                "name": f"{n:02d}_{_safe(bg.name.removeprefix('bg/'))}_{_safe(src.name)}",
                "background": bg.name,
                "background_frames": list(range(bg_start, bg_start + t)),
                "mask_source": src.name,
                "mask_folder": config.mask_folder,
                "mask_frames": pingpong(mask_start, t, src_len),
                "mirror": flip,
            }
            hole = _entry_masks(Path(data), entry, config.width, config.height)
            if hole.mean() >= config.min_hole:
                break
        else:
            raise InputError(f"the masks of {src.name} leave almost no hole at {config.width}x{config.height}.")
        entry["hole_fraction"] = round(float(hole.mean()), 5)
        clips.append(entry)
    return {"version": MANIFEST_VERSION, "config": asdict(config), "clips": clips}


def _entry_masks(data: Path, entry: dict, width: int, height: int) -> np.ndarray:
    src = dataset.find_clip(data, entry["mask_source"])
    if entry["mask_folder"] not in src.masks:
        raise InputError(f"{entry['mask_source']} has no mask folder {entry['mask_folder']!r}.")
    m = dataset.read_masks(src.masks[entry["mask_folder"]], entry["mask_frames"], (width, height))
    return m[:, :, ::-1].copy() if entry["mirror"] else m


def build_clip(data: Path, manifest: dict, entry: dict) -> ComposedClip:
    """Pixels of one manifest entry; deterministic (no randomness left)."""
    cfg = manifest["config"]
    w, h = int(cfg["width"]), int(cfg["height"])
    data = Path(data)
    truth = dataset.read_frames(dataset.find_clip(data, entry["background"]).frames, entry["background_frames"], (w, h))
    masks = _entry_masks(data, entry, w, h)
    frames = truth.copy()
    if cfg.get("fill", "object") == "object":
        src = dataset.find_clip(data, entry["mask_source"])
        obj = dataset.read_frames(src.frames, entry["mask_frames"], (w, h))
        if entry["mirror"]:
            obj = obj[:, :, ::-1]
        frames[masks] = obj[masks]
    else:
        frames[masks] = 128
    return ComposedClip(entry["name"], frames, masks, truth)


def load_manifest(path: Path) -> dict:
    """Read and check a manifest written by `write_set` (or by hand)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe would wait for a writer for ever, /dev/zero never end
            raise InputError(f"cannot read the manifest {path}: it is not a regular file (a pipe or a device).")
        with open(path, "rb") as handle:
            text = handle.read(MAX_MANIFEST_BYTES + 1)
        if len(text) > MAX_MANIFEST_BYTES:
            raise InputError(f"cannot read the manifest {path}: it is over {MAX_MANIFEST_BYTES >> 20} MB, too big "
                             "to be a manifest.")
        manifest = json.loads(text.decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, or not UTF-8
        raise InputError(f"{path} is not a readable manifest ({exc.__class__.__name__}).") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION or \
            not isinstance(manifest.get("clips"), list) or not all(isinstance(e, dict) for e in manifest["clips"]):
        raise InputError(f"{path} is not a version-{MANIFEST_VERSION} composed-clip manifest.")
    kinds = {"name": str, "background": str, "mask_source": str, "mask_folder": str, "mirror": bool,
             "background_frames": list, "mask_frames": list}
    for e in manifest["clips"]:
        missing = set(kinds) - set(e)
        if missing:
            raise InputError(f"manifest entry {e.get('name', '?')} lacks {', '.join(sorted(missing))}.")
        wrong = [key for key, kind in kinds.items() if not isinstance(e[key], kind)] + \
            [key for key in ("background_frames", "mask_frames")  # bool is an int, not a frame index
             if isinstance(e[key], list) and not all(type(n) is int and n >= 0 for n in e[key])]
        if wrong:  # a hand-written manifest: a TypeError or KeyError deep in the reader before (a review found)
            raise InputError(f"manifest entry {e['name']!s:.80} has {', '.join(sorted(set(wrong)))} of the wrong "
                             "kind (names are text, frame lists whole numbers from 0, mirror true or false).")
        if len(e["background_frames"]) != len(e["mask_frames"]):
            raise InputError(f"manifest entry {e['name']} has unequal background and mask frame lists.")
        if not 2 <= len(e["background_frames"]) <= MAX_FRAMES:  # 10**6 entries took minutes and 6 GB a clip
            raise InputError(f"manifest entry {e['name']!s:.80} lists {len(e['background_frames'])} frames; a "
                             f"clip has 2 to {MAX_FRAMES}.")
    if len(manifest["clips"]) > MAX_CLIPS:
        raise InputError(f"the manifest {path} lists {len(manifest['clips'])} clips; a set has at most {MAX_CLIPS}.")
    for e in manifest["clips"]:
        check_clip_name(e["name"], path)
    clash = first_folder_clash([e["name"] for e in manifest["clips"]], str)
    if clash is not None:
        other, name = clash
        twice = f"the clip {other!r} twice" if other == name else f"two clips {other!r} and {name!r}"
        raise InputError(f"the manifest {path} names {twice}, which would share one folder (one folder on a "
                         "case-blind disk too); give each clip its own name.")
    return manifest


MAX_CLIPS = 1000
MAX_FRAMES = 5000
"""A composed set's bounds: far above any evaluation (DAVIS clips are 50-100 frames), far below what never ends."""

MAX_NAME_BYTES = 255
"""A clip's name is a folder name (the set's, and runs/<name>/, pictures/<name>/ of an evaluation): NAME_MAX."""


def check_clip_name(name: str, manifest: Path) -> None:
    """A clip's name is one plain folder name: `out / name` stays inside OUT. Before, a hand-written manifest's
    `../victim` or `/abs/path` made compose write, and eval rename, folders outside OUT."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeError:  # a lone surrogate (\ud800 in JSON): no file name
        size = MAX_NAME_BYTES + 1
    plain = (name not in ("", ".", "..") and not any(ch in name for ch in "/\\\0")
             and not any(ord(ch) < 32 for ch in name) and size <= MAX_NAME_BYTES and name.casefold() != "manifest.json")
    if not plain:
        raise InputError(f"the manifest {manifest} names a clip {name[:80]!r}, which is not one plain folder name "
                         f"(no / or \\, not . or .., not empty, no control characters, at most {MAX_NAME_BYTES} "
                         "bytes, not manifest.json); rename it there.")


def _write_png(path: Path, image: np.ndarray) -> None:
    im = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not dataset.imwrite(path, im):
        raise InputError(f"cannot write {path}.")


IN_PROGRESS = ".compose-in-progress"
"""Beside the clips while a set is written, gone once its manifest is: a set killed half-way (a signal, a full disk)
is known as compose's own, so the same command writes it again, and nothing reads it as a set (before, 2026-12-03:
the re-run was refused as a folder of someone else's files, and a clip of 2 of its 60 frames read as complete)."""


def write_set(data: Path, manifest: dict, out: Path) -> list[Path]:
    """Write every clip as `out/<name>/{frames,masks,truth}/00000.png` plus `out/manifest.json`. Over an earlier set
    it replaces that set: frames past a clip's new length and clips the new manifest does not name go (before, a
    shorter set over a longer one left the old frames, and `eval --composed` scored the mix)."""
    out = Path(out)
    for entry in manifest["clips"]:  # before anything is written: each clip's folder lies inside OUT
        check_clip_name(entry["name"], out / "manifest.json")
    out.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_clips(out)
    earlier |= {e["name"] for e in manifest["clips"]}  # kept in the marker: a set stopped before its manifest
    atomic_write_text(out / IN_PROGRESS, json.dumps({"clips": sorted(earlier)}))
    written = []
    for entry in manifest["clips"]:
        clip = build_clip(data, manifest, entry)
        d = out / clip.name
        for sub in ("frames", "masks", "truth"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for i in range(len(clip.frames)):
            _write_png(d / "frames" / f"{i:05d}.png", clip.frames[i])
            _write_png(d / "masks" / f"{i:05d}.png", clip.masks[i].astype(np.uint8) * 255)
            _write_png(d / "truth" / f"{i:05d}.png", clip.truth[i])
        _remove_frames(d, len(clip.frames))
        written.append(d)
    kept = {e["name"].casefold() for e in manifest["clips"]}  # one folder on a case-blind disk
    for name in earlier:
        if name.casefold() not in kept:
            _remove_frames(out / name, 0)
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    (out / IN_PROGRESS).unlink()
    return written


def _remove_frames(folder: Path, first: int) -> None:
    """The frames compose wrote in a clip's folder (NNNNN.png in frames/, masks/, truth/) from index `first` on,
    and, from 0 (a clip the set drops), the folders they leave empty. Anything else someone put there stays, and
    with it its folder."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for sub in ("frames", "masks", "truth"):
        d = folder / sub
        if d.is_symlink() or not d.is_dir():
            continue
        for old in d.glob("[0-9][0-9][0-9][0-9][0-9].png"):
            if int(old.stem) >= first and old.is_file() and not old.is_symlink():
                old.unlink()
        if first == 0:
            try:
                d.rmdir()
            except OSError:  # not empty: another's files
                pass
    if first == 0:
        try:
            folder.rmdir()
        except OSError:
            pass


def _earlier_clips(out: Path) -> set[str]:
    """The clips an earlier set in `out` names, and those a stopped one was writing (IN_PROGRESS)."""
    names: set[str] = set()
    try:
        names |= {e["name"] for e in load_manifest(out / "manifest.json")["clips"]}
    except InputError:
        pass
    try:
        listed = json.loads((out / IN_PROGRESS).read_text())["clips"]
        names |= {n for n in listed if isinstance(n, str) and n and "/" not in n and n not in (".", "..")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return names


def interrupted_set(folder: Path) -> bool:
    return (Path(folder) / IN_PROGRESS).is_file()


def read_set_clip(folder: Path, entry: dict) -> ComposedClip:
    """One clip of a set written by `write_set`, by its manifest entry."""
    d = Path(folder) / entry["name"]
    return ComposedClip(entry["name"], dataset.read_frames(d / "frames"), dataset.read_masks(d / "masks"),
                        dataset.read_frames(d / "truth"))


def read_set(folder: Path) -> list[ComposedClip]:
    """Read back a set written by `write_set` (the folder holds manifest.json and <name>/truth/)."""
    folder = Path(folder)
    if interrupted_set(folder):
        raise InputError(f"the composed set {folder} was stopped while it was written; run the same `vinpaint "
                         "compose` again to finish it.")
    manifest = load_manifest(folder / "manifest.json")
    return [read_set_clip(folder, e) for e in manifest["clips"]]
