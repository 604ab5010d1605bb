"""Where a run's results go and how they are written: the output plan, the result in every form asked for, the
pictures beside it, and the clean-up of what a failed run created."""
from __future__ import annotations

import bisect
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vinpaint.cli.runs import OutputsInProgress
from vinpaint.engine.config import FLOW_OFFSETS, InpaintConfig
from vinpaint.engine.flowviz import color_wheel, flow_magnitude_scale, flows_to_rgb
from vinpaint.engine.result import GENERATED, HISTORY_TERMS, PROPAGATED
from vinpaint.errors import InputError
from vinpaint.media.io import Clip, list_images, read_image_typed
from vinpaint.media.pictures import write_before_after, write_loss_curve
from vinpaint.media.sequences import Pattern, frame_fields, looks_like_pattern, parse_pattern, select_frames
from vinpaint.media.writers import CODECS, INCOMPLETE, MARKER, VIDEO_OUTPUTS, carries_mark, check_no_folder_inside, \
    check_replaceable, is_incomplete_note, is_vinpaint_output, resolve_codec, sequence_sample, staged_outputs, \
    to_uint8, write_image_sequence, write_marked, write_png_sequence, write_video


def _video_named_freely(path: Path) -> bool:
    """A video output whose % or # is part of its name ("take#2.mkv", "clean 100%.mp4"), not a frame field
    (%d, %04d, ##...): such a name is one file. "clean.%04d.mov" is still a pattern, and refused as one."""
    return path.suffix.lower() in VIDEO_OUTPUTS and all(field == "#" for field in frame_fields(path.name))


BESIDE = (".config.json", ".before_after.png", ".loss.png", ".matte")
"""What every run writes beside its first output (the last, a folder); `extras` may add ".generated", ".flows"."""
SIDE_FILES = ((".config.json", "config"), (".before_after.png", "before/after picture"), (".loss.png", "loss curve"),
              (".matte", "matte"), (".generated", "raw generated frames"), (".flows", "flow pictures"))


@dataclass
class OutputPlan:
    """The outputs of one run. The first target names the run: `<stem>.config.json`, `<stem>.work/` ..."""

    targets: list[tuple[Path, str]]
    """(path, codec): a video, a folder with codec "png", or a frame pattern with codec "sequence"."""
    numbers: list[int] = field(default_factory=list)
    """The clip's frame numbers, which frame-pattern outputs keep (set by check())."""
    said_reading: bool = field(default=False, repr=False)
    """The line about reading large existing outputs is printed once a run (later checks hit the cache)."""

    @classmethod
    def from_args(cls, outputs: list[str], codec: str) -> "OutputPlan":
        if codec != "auto" and codec not in CODECS:
            raise InputError(f"unknown codec '{codec}'; choose one of auto, {', '.join(CODECS)}.")
        targets = []
        for name in outputs:
            path = Path(os.path.expanduser(name))
            if path.name in ("", ".", ".."):
                raise InputError(f"output '{name}' names no file or folder of its own (it is empty, the current "
                                 "folder, a parent or the root); give the result a name, e.g. clean.mkv or clean/.")
            if not os.path.lexists(path) and looks_like_pattern(name) and not _video_named_freely(path):
                parse_pattern(name)  # a malformed pattern is refused here, before anything is read
                targets.append((path, "sequence"))
                continue
            kind = "png" if path.is_dir() else resolve_codec(path, codec)
            targets.append((path, kind))
        return cls(targets)

    def pattern(self, path: Path) -> Pattern:
        return parse_pattern(str(path))

    def check(self, clip: Clip, inputs: list[Path], workdir: Path | None = None, overwrite: bool = False,
              extras: tuple[str, ...] = (), restart: bool = False) -> None:
        """Checks that need the source: codec against frame size, no output on top of an input or of the work
        directory, and nothing replaced that vinpaint did not write (check_outputs)."""
        self.numbers = clip.frame_numbers
        for path, kind in self.targets:
            if kind == "sequence":
                sequence_sample(self.pattern(path).extension, clip.frames.dtype, clip.sample)
            elif clip.frames.dtype.kind == "f":
                raise InputError(f"the source has float samples, which {'PNG' if kind == 'png' else 'a video'} "
                                 f"output {path} cannot hold without clipping values above 1 and below 0; write a "
                                 "frame pattern such as clean.%04d.exr.")
            elif kind != "png":
                resolve_codec(path, kind, clip.size)
        written = [path for path, _ in self.paths(extras)]
        for source in list(inputs):  # a frame pattern's inputs are its files
            if not os.path.lexists(source) and looks_like_pattern(str(source)):
                inputs = inputs + [parse_pattern(str(source)).path(n) for n in self.numbers]
        folders = [source for source in inputs if os.path.isdir(source)]  # every image in them is read
        held = InputIndex(inputs)
        for path in written:
            source = held.at_or_under(path)
            if source is not None:
                raise InputError(f"output {path} is or holds the input {source}; write the result elsewhere.")
            for folder in folders:
                if same_or_inside(path, folder):
                    raise InputError(f"output {path} is inside the input folder {folder}, whose every image is "
                                     "read as a frame; write the result elsewhere.")
            if workdir is not None and (same_or_inside(path, workdir) or same_or_inside(workdir, path)):
                raise InputError(f"output {path} and the work directory {workdir} overlap; replacing one would "
                                 "delete the other, so give them separate places.")
        for folder in sorted({path.parent for path in written} | ({Path(workdir).parent} if workdir else set())):
            other = enclosing_workdir(folder)
            if other is not None and not (workdir is not None and same_or_inside(other, workdir)):
                output = next((f"output {p}" for p in written if p.parent == folder), None)
                raise InputError(f"{output or f'the work directory {workdir}'} lies inside the work directory {other} "
                                 "of another run, whose files its --restart deletes; "
                                 + ("write it elsewhere." if output else "give another --work-dir."))
        placed = [(f"output {p}", p, "write it elsewhere.") for p in written]
        if workdir is not None:
            placed.append((f"the work directory {workdir}", Path(workdir), "give another --work-dir."))
        for what, where, instead in placed:
            store = enclosing_store(where)  # the store's own folder too (--work-dir STORE)
            if store is not None:
                raise InputError(f"{what} lies inside the store {store} of a vinpaint daemon, whose folders are the "
                                 f"daemon's own (a job's results replaced there are lost to it); {instead}")
        for folder in sorted({path.parent for path in written} | ({Path(workdir).parent} if workdir else set())):
            other = enclosing_output_folder(folder)
            if other is not None:
                output = next((f"output {p}" for p in written if p.parent == folder), None)
                raise InputError(f"{output or f'the work directory {workdir}'} lies inside the output folder {other} "
                                 "of another run, which that run replaces whole when it writes again; "
                                 + ("write it elsewhere." if output else "give another --work-dir."))
        for path in written:  # an output is put in place by a rename, which a mount point refuses (EBUSY)
            if os.path.ismount(path):
                raise InputError(f"output {path} is a mount point, which cannot be replaced; write into a folder "
                                 f"inside it (e.g. {path / 'clean'}).")
        sides = {self.beside(suffix): what for suffix, what in SIDE_FILES if suffix in (*BESIDE, *extras)}
        for path, kind in self.targets:
            for side, what in sides.items():  # two writes into one place: the last one wins, without a word
                if kind != "sequence" and same_or_inside(path, side) and same_or_inside(side, path):
                    raise InputError(f"output {path} is where this run writes its {what} ({side}, beside the "
                                     f"first output {self.targets[0][0]}); give the output another name.")
        replaced_whole = [path for path, folder in self.paths(extras) if folder]
        for path, kind in self.targets:
            where = self.pattern(path).folder if kind == "sequence" else path
            for folder in replaced_whole:
                if folder != path and same_or_inside(where, folder):
                    raise InputError(f"output {path} lies inside the output folder {folder}, which is replaced "
                                     "whole; give them separate places.")
        if workdir is not None:
            source = held.at_or_under(workdir)  # one look-up, not one per frame file of a long pattern
            if source is not None:
                raise InputError(f"the input {source} lies inside the work directory {workdir}, whose files "
                                 "vinpaint replaces and removes; move it out, or give another --work-dir.")
            for folder in folders:
                if same_or_inside(workdir, folder):
                    raise InputError(f"the work directory {workdir} is inside the input folder {folder}; give "
                                     "another --work-dir.")
        self.check_outputs(overwrite, extras)
        for path in [p for p, kind in self.targets if kind == "png"] + [self.beside(".matte")]:
            if path.is_dir() and not path.is_symlink():  # replaced whole: said before training, not after it
                check_no_folder_inside(path)
        if workdir is not None and not overwrite:
            self.check_side_files_owner(workdir, restart)

    def paths(self, extras: tuple[str, ...] = ()) -> list[tuple[Path, bool]]:
        """Everything a run writes beside its work directory: (path, is a folder). `extras`: ".generated",
        ".flows" when asked for."""
        out = []
        for path, kind in self.targets:
            if kind == "sequence":
                out += [(self.pattern(path).path(n), False) for n in self.numbers]
            else:
                out.append((path, kind == "png"))
        out += [(self.beside(s), False) for s in BESIDE[:3]]
        return out + [(self.beside(s), True) for s in BESIDE[3:] + tuple(extras)]

    def check_outputs(self, overwrite: bool = False, extras: tuple[str, ...] = ()) -> None:
        """Refuse (one sentence) before any work, and again before writing, to replace what vinpaint did not write."""
        paths = self.paths(extras)
        if not overwrite and not self.said_reading and (self.numbers or all(k != "sequence" for _, k in self.targets)):
            self.said_reading = True
            size = existing_bytes(paths)
            if size >= READ_ALOUD_BYTES:  # a 1000-frame 4K EXR sequence: half a minute from the page cache
                print(f"vinpaint: reading the {size / 1e9:.1f} GB of outputs already there, to be sure that vinpaint "
                      "wrote them and nothing changed them since (--overwrite replaces them unread)", file=sys.stderr)
        for path, folder in paths:
            check_replaceable(path, folder=folder, overwrite=overwrite)

    def check_writable(self, extras: tuple[str, ...] = (), workdir: Path | None = None) -> None:
        """Every output (and the work directory) can be created: said before any training (check_writable)."""
        check_writable([path for path, _ in self.paths(extras)], workdir)

    def check_side_files_owner(self, workdir: Path, restart: bool = False) -> None:
        """<stem>.config.json, .matte/ ... are shared by every output of that stem: where another run's output of
        the stem (clean.mkv beside a new clean.mp4, or the folder clean/) is there, they are its record, and this
        run would leave it beside another run's config and matte. With the default work directory <stem>.work the
        run's fingerprint already refuses another run; with another one, the side config must be the one saved in
        that work directory. With `restart` the work directory's run is thrown away, so neither holds: this is
        another run (before, session 34: `-o cl.mp4 --seed 7 --restart` left cl.mkv beside seed 7's config)."""
        side = self.beside(".config.json")
        if not os.path.lexists(side):
            return
        if not restart:
            if same_or_inside(workdir, self.default_workdir):
                return
            try:
                if InpaintConfig.load(side).same_run_as(InpaintConfig.load(Path(workdir) / "config.json")):
                    return  # this work directory's run wrote them
            except (OSError, ValueError, TypeError, KeyError, AttributeError, InputError):
                pass
        mine = {os.path.abspath(path) for path, _ in self.targets}
        for name in ("", *VIDEO_OUTPUTS):  # "": the folder of PNGs
            other = self.beside(name)
            # written by vinpaint, changed since or not: its marker (a folder) or its mark (a video)
            ours = (other / MARKER).is_file() if other.is_dir() else carries_mark(other)
            if os.path.abspath(other) not in mine and os.path.lexists(other) and ours:
                raise InputError(f"{self.beside('.config.json')} and the other files beside it belong to the output "
                                 f"{other}, written by another run; give this output another name, or add "
                                 "--overwrite to replace them.")

    @property
    def stem(self) -> Path:
        first, kind = self.targets[0]
        if kind == "sequence":
            return self.pattern(first).base
        return first if kind == "png" else first.with_suffix("")

    def beside(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)

    @property
    def default_workdir(self) -> Path:
        return self.beside(".work")

    @property
    def incomplete_note(self) -> Path:
        """There only while the outputs are put in place, or after a run was killed then (staged_outputs)."""
        return self.beside(INCOMPLETE)


READ_ALOUD_BYTES = 2 * 10**9
"""Existing outputs this large are said to be read before a run replaces them (about 1 GB/s here: seconds)."""


def existing_bytes(paths: list[tuple[Path, bool]]) -> int:
    """The bytes of the regular files at `paths` (path, is a folder), a folder's files included."""
    total = 0
    for path, folder in paths:
        try:
            if folder and path.is_dir() and not path.is_symlink():
                total += sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(path)
                             if e.is_file(follow_symlinks=False))
            elif not folder and path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


class InputIndex:
    """same_or_inside(input, path) against every input at once: a shot of N frame files in and N out is checked
    in N look-ups, not N*N (2 x 600 frames took 30 s that way, 10,000 would take hours)."""

    def __init__(self, inputs: list[Path]) -> None:
        self.by_real: dict[str, Path] = {}
        self.by_id: dict[tuple[int, int], Path] = {}
        for source in inputs:
            self.by_real.setdefault(os.path.realpath(source), source)
            try:
                st = os.stat(source)
            except OSError:
                continue
            self.by_id.setdefault((st.st_dev, st.st_ino), source)
        self.reals = sorted(self.by_real)

    def at_or_under(self, path: Path) -> Path | None:
        """The first input that `path` is, or holds (after links; hard links and bind mounts too), else None."""
        real = os.path.realpath(path)
        if real in self.by_real:
            return self.by_real[real]
        prefix = real if real.endswith(os.sep) else real + os.sep
        i = bisect.bisect_left(self.reals, prefix)
        if i < len(self.reals) and self.reals[i].startswith(prefix):
            return self.by_real[self.reals[i]]
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self.by_id.get((st.st_dev, st.st_ino))


def enclosing_workdir(folder: Path) -> Path | None:
    """The vinpaint work directory (a folder whose run.json holds a run's fingerprint, or a long shot's plan) that
    `folder` is or lies inside, if any."""
    for candidate in (Path(os.path.realpath(folder)), *Path(os.path.realpath(folder)).parents):
        try:
            saved = json.loads((candidate / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and ("fingerprint" in saved or "shot" in saved):  # a run's, or a long shot's
            return candidate
    return None


def enclosing_store(folder: Path) -> Path | None:
    """The daemon store (a folder holding its mark) that `folder` is or lies inside, if any."""
    from vinpaint.host_bridge.store import STORE_MARK

    for candidate in (Path(os.path.realpath(folder)), *Path(os.path.realpath(folder)).parents):
        try:
            if (candidate / STORE_MARK).is_file():
                return candidate
        except OSError:  # a name too long for the file system (said by its own check), or one we may not look at
            continue
    return None


def check_outside_store(out: Path) -> None:
    """An output folder of eval, compose or bench is no daemon's store, nor inside one: the daemon deletes a job's
    folder with everything in it, and empties its trash/ at start (2026-12-03: `compose -o STORE/jobs/J/mine`
    was deleted with job J)."""
    store = enclosing_store(out)
    if store is not None:
        raise InputError(f"output {out} lies inside the store {store} of a vinpaint daemon, whose folders are the "
                         "daemon's own (it deletes them with their jobs); write it elsewhere.")


def enclosing_output_folder(folder: Path) -> Path | None:
    """The output folder of PNGs (it holds vinpaint's MARKER) that `folder` is or lies inside, if any."""
    for candidate in (Path(os.path.realpath(folder)), *Path(os.path.realpath(folder)).parents):
        if (candidate / MARKER).is_file():
            return candidate
    return None


def check_mask_is_not_the_video(mask: str | Path, video: str | Path) -> None:
    """InputError where the mask is the video file itself, or the video's own frames (same_frames): read as a mask,
    every bright pixel of the plate would be a hole (`vinpaint inpaint` and `vinpaint submit` alike)."""
    mask, video = Path(mask), Path(video)
    if same_or_inside(mask, video) and mask.is_file():
        raise InputError(f"the mask {mask} is the video itself; give the mask's own file or folder.")
    if same_frames(mask, video):
        raise InputError(f"the mask {mask} is the video's own frames ({video}); give the mask's own folder or frame "
                         "pattern.")


def same_frames(mask: Path, video: Path) -> bool:
    """The mask names the video's own folder of frames, or its frame pattern (in any spelling: links, %04d or
    ####), and those frames carry no matte in their alpha (RGBA plates whose alpha marks the object are a mask:
    the mask reader takes such an alpha as the matte; a review found them refused)."""
    if mask.is_dir() and video.is_dir():
        if not (same_or_inside(mask, video) and same_or_inside(video, mask)):
            return False
        files = list_images(mask)
    else:
        patterns = [not os.path.lexists(p) and looks_like_pattern(str(p)) for p in (mask, video)]
        if not all(patterns):
            return False
        try:
            first, second = (parse_pattern(str(p)) for p in (mask, video))
            numbers = select_frames(first)
        except InputError:
            return False  # malformed or empty: its own reader says so
        if os.path.realpath(first.path(0)) != os.path.realpath(second.path(0)):
            return False
        files = [first.path(n) for n in numbers[:1]]
    dropped: list[str] = []
    try:
        if files:
            read_image_typed(files[0], dropped=dropped)  # names the file when its alpha is not opaque everywhere
    except InputError:
        return False  # unreadable: the frame reader says so
    return not dropped


def same_or_inside(inner: Path, outer: Path) -> bool:
    """True when `inner` is `outer` or lies inside it, after following links (so a link cannot hide an input)."""
    a, b = Path(os.path.realpath(inner)), Path(os.path.realpath(outer))
    if a == b or b in a.parents:
        return True
    try:
        return os.path.samefile(inner, outer)  # hard links and bind mounts
    except OSError:
        return False


def check_result_folder(out: Path, data: Path, earlier: Callable[[Path], bool], command: str) -> None:
    """`vinpaint eval` and `compose` write fixed names (config.json, results.md, manifest.json ...) into OUT: it
    must be new, empty, or the folder of an earlier run of the same command (`earlier(out)`), and apart from the
    data it reads."""
    if os.path.lexists(out) and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder.")
    check_outside_store(out)
    if same_or_inside(out, data) or same_or_inside(data, out):
        raise InputError(f"output {out} and the data folder {data} overlap; write the results elsewhere.")
    if out.is_dir() and any(out.iterdir()) and not earlier(out):
        raise InputError(f"output folder {out} holds files that an earlier `vinpaint {command}` did not write; "
                         f"give a new or empty folder, or an earlier `vinpaint {command}` folder to continue it.")


def check_writable(paths: list[Path], workdir: Path | None = None) -> None:
    """Every path (and the work directory) can be created: its nearest existing folder is a folder we may write
    in, on a writable file system. Checked before training, so a read-only or mistyped output costs seconds, not
    the training."""
    for path in [*paths, *([workdir] if workdir is not None else [])]:
        parent = Path(os.path.abspath(path)).parent
        while not os.path.lexists(parent) and parent != parent.parent:
            parent = parent.parent
        check_name_length(Path(os.path.abspath(path)), parent)
        if not parent.is_dir():
            raise InputError(f"cannot write {path}: {parent} is a file, not a folder.")
        if os.access(parent, os.W_OK | os.X_OK):
            continue
        try:
            read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        if read_only and path == workdir:
            raise InputError(f"cannot write the work directory {path}: the file system is read-only; give "
                             "another --work-dir.")
        if read_only:
            raise InputError(f"cannot write {path}: the file system is read-only; write the result elsewhere (-o).")
        raise InputError(f"cannot write {path}: no permission to write in {parent}.")


def check_name_length(path: Path, existing: Path) -> None:
    """Each name still to be made on the way from `existing` to `path` fits the file system (a name too long would
    otherwise fail only when the result is written, after the training)."""
    try:
        longest, whole = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        longest, whole = 255, 4096
    if len(os.fsencode(path)) >= whole:
        raise InputError(f"cannot write {path}: the path is {len(os.fsencode(path))} bytes long and this system "
                         f"allows {whole - 1}; give a shorter one.")
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > longest:
            raise InputError(f"cannot write {path}: the name {part[:40]}... is {len(os.fsencode(part))} bytes long "
                             f"and this file system allows {longest}; give a shorter name.")


def loss_history(history: np.ndarray, terms=None) -> list[tuple[int, dict[str, float]]]:
    """A history [S, 1+K] (step, then the K `terms`; the engine's HISTORY_TERMS by default) ->
    [(step, {loss: value})], leaving out terms that were never used."""
    terms = tuple(terms or HISTORY_TERMS)
    used = [i for i in range(1, len(terms) + 1) if history.size and np.any(history[:, i] != 0)]
    return [(int(row[0]), {terms[i - 1]: float(row[i]) for i in used}) for row in history]


def curve_title(variant: str, preset: str, steps: int, where: str = "") -> str:
    """The loss curve's title. A run that trained no model has an empty curve, and its title says why."""
    what = f"{steps} steps" if steps > 0 else "no model trained: the fill is real pixels and diffusion"
    return f"{variant} ({preset}), {what}" + (f", on {where}" if where else "")


def write_outputs(plan: OutputPlan, clip: Clip, result, save_generated: bool = False, save_flows: bool = False,
                  truth: np.ndarray | None = None, overwrite: bool = False, restart: bool = False) -> dict[str, Path]:
    """The result in every requested form, then config, before/after strip and loss curve beside the first.
    Checks again first that nothing there is a user's (a file may have appeared while training ran). A first
    Ctrl-C meanwhile waits for the last of them (OutputsInProgress), so they all come from one run. `restart`:
    the command had --restart, so the advice to run it again says without it."""
    with OutputsInProgress(restart=restart), staged_outputs(plan.incomplete_note):
        return _write_outputs(plan, clip, result, save_generated, save_flows, truth, overwrite)


def _write_outputs(plan: OutputPlan, clip: Clip, result, save_generated: bool, save_flows: bool,
                   truth: np.ndarray | None, overwrite: bool) -> dict[str, Path]:
    plan.check_outputs(overwrite, extras(save_generated, save_flows and result.flows is not None))
    written = write_frames(plan, clip, result.frames, overwrite)
    if save_generated:
        raw = raw_generated(result.generated, clip.frames.dtype)
        written["raw generated frames"] = plan.beside(".generated")
        write_png_sequence(written["raw generated frames"], raw, names=clip.names or None, overwrite=overwrite)
    if save_flows and result.flows is not None:
        written["flow pictures"] = write_flow_pictures(plan.beside(".flows"), result.flows, overwrite)
    if result.matte is not None:
        written["matte (white: propagated from other frames, grey: generated)"] = plan.beside(".matte")
        write_png_sequence(plan.beside(".matte"), matte_picture(result.matte), names=clip.names or None,
                           overwrite=overwrite)
    written["before/after"] = write_before_after(plan.beside(".before_after.png"), clip.frames, result.hole,
                                                 result.frames, truth)
    written["loss curve"] = write_loss_curve(plan.beside(".loss.png"), loss_history(result.history),
                                             curve_title(result.config.variant, result.config.preset, result.steps))
    written["config"] = plan.beside(".config.json")
    write_marked(written["config"], (result.config.to_json() + "\n").encode())  # staged with the others
    return written


def raw_generated(generated: np.ndarray, source_dtype: np.dtype) -> np.ndarray:
    """The network's float output as pictures in the source's depth: 16-bit for a 16-bit source, else 8-bit."""
    generated = np.clip(generated, 0.0, 1.0)
    return (generated * 65535 + 0.5).astype(np.uint16) if source_dtype == np.uint16 else to_uint8(generated)


def write_frames(plan: OutputPlan, clip: Clip, frames: np.ndarray, overwrite: bool = False) -> dict[str, Path]:
    """The result frames to every target of the plan: videos, PNG folders and frame patterns (which keep the
    clip's frame numbers). Returns {what: where}."""
    written: dict[str, Path] = {}
    for path, kind in plan.targets:
        if kind == "png":
            write_png_sequence(path, frames, names=clip.names or None, overwrite=overwrite)
            written[f"frames ({'16' if frames.dtype == np.uint16 else '8'}-bit PNG)"] = path
        elif kind == "sequence":
            pattern = plan.pattern(path)
            files = write_image_sequence(pattern, frames, clip.frame_numbers, clip.sample, overwrite)
            sample = sequence_sample(pattern.extension, frames.dtype, clip.sample)
            written[f"frames ({sample} {pattern.extension[1:].upper()}, {files[0].name} to {files[-1].name})"] = path
        else:
            write_video(path, frames, clip.fps, kind)
            written[f"video ({kind}, {float(clip.fps):g} fps)"] = path
    return written


def matte_picture(matte: np.ndarray) -> np.ndarray:
    """uint8 [T,H,W] engine matte -> grey PNG values: 0 source, 128 generated, 255 propagated from another frame."""
    picture = np.zeros(matte.shape, np.uint8)
    picture[matte == GENERATED] = 128
    picture[matte == PROPAGATED] = 255
    return picture


def extras(save_generated: bool, save_flows: bool) -> tuple[str, ...]:
    """The optional folders beside the first output a run writes."""
    return tuple(name for name, wanted in ((".generated", save_generated), (".flows", save_flows)) if wanted)


def write_flow_pictures(folder: Path, flows: np.ndarray, overwrite: bool = False, first: int = 0) -> Path:
    """[T,K,h,w,2] generated flows -> folder/<frame>_<offset>.png (frames numbered from `first`), one colour scale
    per offset, plus wheel.png."""
    frames, offsets = flows.shape[:2]
    pictures, names = [], []
    for k in range(offsets):
        scale = flow_magnitude_scale(flows[:, k])
        pictures.append(flows_to_rgb(flows[:, k], scale))
        names += [f"{t:05d}_{FLOW_OFFSETS[k]:+d}" for t in range(first, first + frames)]
    stacked = np.stack(pictures, axis=1).reshape(-1, *pictures[0].shape[1:])
    write_png_sequence(folder, [*stacked, color_wheel(128)], names=names + ["wheel"], overwrite=overwrite)
    return folder


class Litter:
    """Removes what this run created when it fails (a full disk, a bad checkpoint, a crash): outputs that were not
    there before and carry vinpaint's mark (a file of the user's that appeared meanwhile is kept), and the work
    directory when this run made it and it holds no checkpoint, result or cache worth keeping (the known flow and
    the propagation take minutes on a long clip; a run that quits at once keeps them for the next).
    A work directory from an earlier run, and any checkpoint, are always kept."""

    KEEP = ("checkpoint.pt", "result.npz", "flow.npz", "propagation.npz")

    def __init__(self, workdir: Path, outputs: list[Path], created: bool | None = None,
                 keep_everything: bool = False, note: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.had_workdir = os.path.lexists(self.workdir) if created is None else not created
        self.new_outputs = [Path(p) for p in outputs if not os.path.lexists(p)]
        self.note = note if note is not None and len(self.new_outputs) == len(outputs) and \
            not is_incomplete_note(note) else None
        """staged_outputs' note, when every output is new and no earlier run left one (it lists that run's
        outputs too): what it would list is removed here on a failure."""
        self.keep_everything = keep_everything
        """True until this run holds the work directory: a run refused by the lock touches nothing."""

    def __enter__(self) -> "Litter":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None or self.keep_everything:
            return
        for path in self.new_outputs:
            if path.is_symlink() or not is_vinpaint_output(path):
                continue  # it appeared while the run went on, and is not ours (often the very file that failed it)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                path.unlink(missing_ok=True)
        if self.note is not None and is_incomplete_note(self.note):
            self.note.unlink(missing_ok=True)  # it listed only outputs of this run, now gone
        if not self.had_workdir and self.workdir.is_dir() and \
                not any((self.workdir / name).exists() for name in self.KEEP) and \
                not any(next(self.workdir.glob(f"window_*/{name}"), None) for name in (*self.KEEP, "done.json")):
            # (a long shot's windows: started, cached or finished)
            shutil.rmtree(self.workdir, ignore_errors=True)
