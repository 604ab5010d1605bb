"""`vinpaint inpaint` on a shot longer than `shot.window` frames: read, train and write it a window at a time
(engine/shot.py), here one window after another or on Ray with --ray. The same checks as a short clip come first,
and the outputs appear whole at the end, as for a short clip."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from vinpaint.cli.arguments import input_paths
from vinpaint.cli.outputs import Litter, extras, loss_history, matte_picture, raw_generated, \
    write_flow_pictures
from vinpaint.cli.runs import (OutputLock, OutputsInProgress, ProgressBar, StopRequest, WorkdirLock, check_workdir,
                               clear_workdir, to_continue, warn_notices)
from vinpaint.engine import validate
from vinpaint.engine.checks import EMPTY_MASK, check_holes
from vinpaint.engine.config import InpaintConfig
from vinpaint.engine.shot import DEFAULT_CLUSTER_CPUS, SerialRunner, check_claim, check_windows, inpaint_shot, tidy
from vinpaint.errors import InputError, TrainingCancelled
from vinpaint.media.io import _to_hole, read_references
from vinpaint.media.pictures import pick_frames, write_before_after, write_loss_curve
from vinpaint.media.shot_input import ShotFiles
from vinpaint.media.writers import MARK_TEXT, MARKER, WINDOWS_MARK, PatternSink, PngFolderSink, VideoSink, \
    is_vinpaint_output, stage, staged_outputs, write_marked, write_png_sequence


RAY_ADDRESS = re.compile(r"(auto|local|ray://\S+|\[[0-9a-fA-F:.]+\]:\d+|[\w.-]+:\d+)")
"""What `ray.init(address=...)` takes: auto, local, ray://HOST:PORT, HOST:PORT (an IPv6 host in brackets)."""


def place_ray_flag(argv: list[str]) -> list[str]:
    """`--ray` takes an optional ADDRESS, so argparse would swallow the VIDEO of `vinpaint inpaint --ray clip.mp4
    ...` as one. A word after a bare `--ray` that is not a Ray address is the next argument: `--ray` becomes
    `--ray=` (a local Ray), and the word stays where it was."""
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word == "--":
            break
        following = out[i + 1]
        if word == "--ray" and not following.startswith("-") and not RAY_ADDRESS.fullmatch(following):
            out[i] = "--ray="
    return out


def add_shot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-work", action="store_true",
                        help="a long shot: keep every window's result and checkpoint in the work directory once the "
                             "outputs are written (by default only each window's record, log and loss history stay, "
                             "which frees about the size of the output, more with checkpoints)")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="train a long shot's windows as Ray tasks, several at once: --ray alone starts a local "
                             "Ray for the job (one window per GPU, or --ray-workers processes on a CPU); --ray "
                             "ADDRESS uses that Ray cluster, whose nodes must share the work directory. Needs "
                             "pip install 'vinpaint[ray]'")
    parser.add_argument("--ray-workers", type=int, default=None, metavar="N",
                        help="windows trained at once with --ray (default: the GPUs, or half the CPU cores)")
    parser.add_argument("--ray-cpus", type=int, default=None, metavar="N",
                        help="CPU cores each window asks for on a Ray cluster without GPUs (default: "
                             f"{DEFAULT_CLUSTER_CPUS})")


def check_ray_device(args: argparse.Namespace) -> None:
    """Ray, not the command, places a long shot's windows on GPUs: a GPU index it would not honour is refused
    before anything loads (the device check itself loads torch)."""
    if args.ray is not None and args.device and args.device.startswith("cuda:"):
        index = args.device.partition(":")[2]
        raise InputError(f"--ray gives each window a GPU that Ray assigns, so --device {args.device} cannot choose "
                         f"one; to keep Ray on that GPU, run with CUDA_VISIBLE_DEVICES={index} and --device cuda.")


def check_ray_options(args: argparse.Namespace) -> None:
    """--ray-workers and --ray-cpus, whatever the clip's length: before (2026-12-03) a clip of one window took them
    without --ray, or 0, in silence."""
    for option, value in (("--ray-workers", args.ray_workers), ("--ray-cpus", args.ray_cpus)):
        if args.ray is None and value is not None:
            raise InputError(f"{option} needs --ray.")
        if value is not None and value < 1:
            raise InputError(f"{option} must be at least 1, not {value}.")
    if args.ray_cpus is not None and not args.ray:
        raise InputError("--ray-cpus is for a Ray cluster (--ray ADDRESS); a local Ray gives each window "
                         "the cores divided by --ray-workers.")


def run_shot(args: argparse.Namespace, plan, config: InpaintConfig, device: str, frame_range, painted: dict,
             fps) -> int:
    check_ray_options(args)
    files = ShotFiles(args.video, args.mask, invert=args.invert_mask, frame_range=frame_range)
    clip = files.clip
    warn_notices(clip)
    if fps is not None:
        clip.fps = fps
    references = read_references(painted, clip)
    windows = check_windows(config, files.count)
    workdir = args.work_dir or plan.default_workdir
    wanted = extras(args.save_generated, args.save_flows)
    plan.check(clip, input_paths(args, painted), workdir, args.overwrite, wanted,  # extras too: before training
               args.restart)
    check_workdir(workdir)
    plan.check_writable(wanted, workdir)
    check_shot_masks(files, config)
    first_frames, first_masks = files.window(windows[0].start, windows[0].stop)
    if first_masks.any():
        validate(first_frames, first_masks, config)
    config.check_clip(len(windows[0]))
    del first_frames, first_masks
    width, height = clip.size
    steps = config.planned_steps(len(windows[0]))
    print(f"input: {clip.source} ({files.count} frames, {width}x{height}, {float(clip.fps):g} fps): a long shot, "
          f"{len(windows)} windows of {config.shot.window} frames sharing at least {config.shot.overlap}")
    if not args.quiet:
        print("config: " + config.to_json().replace("\n", "\n  "))
    if args.check:
        if not args.restart:
            check_claim(workdir, config, files.count)  # the run's own refusal of another shot's work directory
        print(f"check passed: {len(windows)} windows of up to {steps} training steps each on "
              f"{'Ray' if args.ray is not None else device}; nothing was written")
        return 0
    created = not os.path.lexists(workdir)
    outputs = [path for path, _ in plan.paths(wanted)]
    bar = ProgressBar(enabled=not args.quiet)
    with Litter(workdir, outputs, created, keep_everything=True, note=plan.incomplete_note) as litter, \
            OutputLock(plan, wanted), WorkdirLock(workdir):
        litter.keep_everything = False
        if args.restart:
            clear_workdir(workdir)
        print(f"work directory: {workdir}", flush=True)
        started = time.monotonic()
        sinks = []
        try:
            with StopRequest(bar, args.pause_after) as stop:
                runner = _runner(args, device, stop, bar)
                sinks = _open_sinks(plan, clip, args.overwrite)
                matte_sink = PngFolderSink(plan.beside(".matte"), clip.names, args.overwrite)
                sinks.append(matte_sink)
                def emit(index: int, frame: np.ndarray, matte: np.ndarray) -> None:
                    for sink in sinks[:-1]:
                        sink.write(frame)
                    matte_sink.write(matte_picture(matte))

                keep = tuple(pick_frames(files.count, 4))
                result = inpaint_shot(files, config, workdir, emit, runner=runner, references=references,
                                      keep=keep, announce=bar.write, keep_extras=bool(wanted))
                stop.raise_if_requested("every window's result is kept")  # asked after the last window could stop
        except TrainingCancelled as exc:
            for sink in sinks:
                sink.abort()
            print(f"vinpaint: {exc} in {workdir}; {to_continue(args)}.", file=sys.stderr)
            return 130
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        finally:
            bar.close()
            files.close()
        with OutputsInProgress(restart=args.restart), staged_outputs(plan.incomplete_note):  # in place together
            for i, sink in enumerate(sinks):
                try:
                    stage(sink)
                except BaseException:  # those not staged yet are this run's temporary files too
                    for rest in sinks[i + 1:]:
                        rest.abort()
                    raise
            plan.check_outputs(args.overwrite, wanted)
            written = {f"frames ({kind}, {path.name})": path for path, kind in plan.targets}
            written.update(_write_extras(plan, clip, workdir, args, bar.write))
            written["matte (white: propagated from other frames, grey: generated)"] = plan.beside(".matte")
            index = sorted(result.samples)
            written["before/after"] = write_before_after(
                plan.beside(".before_after.png"), np.stack([result.samples[i][0] for i in index]),
                np.stack([result.samples[i][1] for i in index]), np.stack([result.samples[i][2] for i in index]))
            written["loss curve"] = write_loss_curve(plan.beside(".loss.png"), loss_history(result.history),
                                                     f"{config.variant} ({config.preset}), {result.windows} windows")
            written["config"] = plan.beside(".config.json")
            write_marked(written["config"], (config.to_json() + "\n").encode())
    if not args.keep_work:
        freed = tidy(workdir)
        print(f"work directory: each window's result and checkpoint removed ({freed / 2**20:.0f} MB); "
              "--keep-work keeps them")
    print(f"done: {result.windows} windows ({result.trained} computed in this run), {result.steps} training steps, "
          f"{result.seconds:.0f} s of training, {time.monotonic() - started:.0f} s in this run")
    for what, path in written.items():
        print(f"  {what}: {path}")
    return 0


def check_shot_masks(files: ShotFiles, config: InpaintConfig) -> None:
    """The whole shot's mask before any window trains: one empty everywhere, or covering a whole frame (drawn or
    grown by --dilate), is refused naming the shot's frame. Before (2026-12-03) only the first window was
    checked: an empty mask wrote a copy of the plate with exit 0, a full frame 15 failed after window 0 trained,
    naming "frame 7" (its index in its window). Reads the masks alone, a window's length at a time."""
    if files.static is not None:
        chunks = iter([(0, files.static[None])])
    else:
        step = config.shot.window
        chunks = ((start, _to_hole(files.masks.read(start, min(start + step, files.count)), files.invert))
                  for start in range(0, files.count, step))
    drawn = False
    for start, holes in chunks:
        check_holes(holes, config.mask.dilation, start)
        drawn = drawn or bool(holes.any())
    if files.masks is not None:
        files.masks.close()  # the training reads from the first frame again
    if not drawn:
        raise InputError(EMPTY_MASK)


def _write_extras(plan, clip, workdir: Path, args, say) -> dict[str, Path]:
    """--save-generated / --save-flows of a long shot: one folder per window, since the frames two windows share
    were generated twice (the output cross-fades them). Frames keep their index in the shot."""
    written: dict[str, Path] = {}
    for flag, name, suffix in ((args.save_generated, "generated.npy", ".generated"),
                               (args.save_flows, "flows.npy", ".flows")):
        if not flag:
            continue
        root = plan.beside(suffix)
        windows = sorted(workdir.glob("window_[0-9][0-9][0-9][0-9]"))
        _drop_stale_windows(root, {folder.name for folder in windows})
        # marked as vinpaint's: the next run of this output replaces its windows without --overwrite
        write_marked(root / MARKER, f"{MARK_TEXT}; {WINDOWS_MARK}, each replaced by the next run\n".encode())
        for folder in windows:
            start = json.loads((folder / "done.json").read_text())["start"]
            if not (folder / name).is_file():
                say(f"{folder.name} finished in an earlier run without {suffix[1:]} frames (or had nothing to "
                    f"generate); {root.name}/ has none for it")
                continue
            array = np.load(folder / name)
            if name == "flows.npy":
                write_flow_pictures(root / folder.name, array, args.overwrite, first=start)
            else:
                raw = raw_generated(array, clip.frames.dtype)
                names = [clip.names[start + i] if clip.names else f"{start + i:05d}" for i in range(len(raw))]
                write_png_sequence(root / folder.name, raw, names=names, overwrite=args.overwrite)
        written["raw generated frames (a folder per window)" if name == "generated.npy"
                else "flow pictures (a folder per window)"] = root
    return written


def _drop_stale_windows(root: Path, current: set[str]) -> None:
    """An earlier run of the same output with more windows left folders this run will not write (--overwrite,
    --restart with another shot.window): those vinpaint wrote go, so the folder holds this run's windows only."""
    if not root.is_dir():
        return
    for folder in sorted(root.glob("window_[0-9][0-9][0-9][0-9]")):
        if folder.name not in current and folder.is_dir() and not folder.is_symlink() and is_vinpaint_output(folder):
            shutil.rmtree(folder)


def _runner(args, device: str, stop, bar):
    if args.ray is None:
        return SerialRunner(device, progress=bar, should_stop=stop, announce=bar.write)
    from vinpaint.engine.shot_ray import RayRunner

    runner = RayRunner(args.ray or None, args.ray_workers, device if args.device else None,
                       cpus_per_window=args.ray_cpus or DEFAULT_CLUSTER_CPUS, should_stop=stop)
    bar.write(f"Ray: {runner.capacity} windows at once on {runner.device}")
    return runner


def _open_sinks(plan, clip, overwrite: bool) -> list:
    sinks = []
    try:
        for path, kind in plan.targets:
            if kind == "png":
                sinks.append(PngFolderSink(path, clip.names, overwrite))
            elif kind == "sequence":
                sinks.append(PatternSink(plan.pattern(path), clip.frame_numbers, clip.frames.dtype, clip.sample,
                                         overwrite))
            else:
                sinks.append(VideoSink(path, kind, clip.size, clip.fps, clip.frames.dtype == np.uint16, overwrite))
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return sinks
