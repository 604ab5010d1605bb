"""`vinpaint inpaint` on a shot longer than `shot.window` frames: read, train and write it a window at a time
(engine/shot.py), here one window after another or on Ray with --ray. The same checks as a short clip come first,
and the outputs appear whole at the end, as for a short clip."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from vinpaint.cli.outputs import Litter, check_writable, extras, loss_history, matte_picture
from vinpaint.cli.runs import ProgressBar, StopRequest, WorkdirLock, check_workdir, clear_workdir
from vinpaint.engine import validate
from vinpaint.engine.config import InpaintConfig
from vinpaint.engine.shot import SerialRunner, check_windows, inpaint_shot
from vinpaint.errors import InputError, TrainingCancelled
from vinpaint.media.io import read_references
from vinpaint.media.pictures import pick_frames, write_before_after, write_loss_curve
from vinpaint.media.shot_input import ShotFiles
from vinpaint.media.writers import PatternSink, PngFolderSink, VideoSink


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="train a long shot's windows as Ray tasks, several at once: --ray alone starts a local "
                             "Ray for the job (one window per GPU, or --ray-workers processes on a CPU); --ray "
                             "ADDRESS uses that Ray cluster, whose nodes must share the work directory. Needs "
                             "pip install 'vinpaint[ray]'")
    parser.add_argument("--ray-workers", type=int, default=None, metavar="N",
                        help="windows trained at once with --ray (default: the GPUs, or half the CPU cores)")


def run_shot(args: argparse.Namespace, plan, config: InpaintConfig, device: str, frame_range, painted: dict,
             fps) -> int:
    if args.save_generated or args.save_flows:
        raise InputError(f"--save-generated and --save-flows keep whole-clip arrays, which a shot longer than "
                         f"shot.window ({config.shot.window} frames) does not hold; leave them out.")
    if args.ray is None and args.ray_workers is not None:
        raise InputError("--ray-workers needs --ray.")
    files = ShotFiles(args.video, args.mask, invert=args.invert_mask, frame_range=frame_range)
    clip = files.clip
    if fps is not None:
        clip.fps = fps
    references = read_references(painted, clip)
    windows = check_windows(config, files.count)
    workdir = args.work_dir or plan.default_workdir
    plan.check(clip, [Path(args.video), Path(args.mask), *map(Path, painted.values())], workdir, args.overwrite)
    check_workdir(workdir)
    check_writable([path for path, _ in plan.paths()] + [workdir])
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
        print(f"check passed: {len(windows)} windows of up to {steps} training steps each on "
              f"{'Ray' if args.ray is not None else device}; nothing was written")
        return 0
    created = not os.path.lexists(workdir)
    outputs = [path for path, _ in plan.paths()]
    bar = ProgressBar(enabled=not args.quiet)
    with Litter(workdir, outputs, created, keep_everything=True) as litter, WorkdirLock(workdir):
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
                                      keep=keep, announce=bar.write)
        except TrainingCancelled as exc:
            for sink in sinks:
                sink.abort()
            print(f"vinpaint: {exc} in {workdir}; run the same command again to continue.", file=sys.stderr)
            return 130
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        finally:
            bar.close()
            files.close()
        plan.check_outputs(args.overwrite, extras(False, False))
        for sink in sinks:
            sink.commit()
        written = {f"frames ({kind}, {path.name})": path for path, kind in plan.targets}
        written["matte (white: propagated from other frames, grey: generated)"] = plan.beside(".matte")
        index = sorted(result.samples)
        written["before/after"] = write_before_after(
            plan.beside(".before_after.png"), np.stack([result.samples[i][0] for i in index]),
            np.stack([result.samples[i][1] for i in index]), np.stack([result.samples[i][2] for i in index]))
        written["loss curve"] = write_loss_curve(plan.beside(".loss.png"), loss_history(result.history),
                                                 f"{config.variant} ({config.preset}), {result.windows} windows")
        written["config"] = plan.beside(".config.json")
        config.save(written["config"])
    print(f"done: {result.windows} windows ({result.trained} trained in this run), {result.steps} training steps, "
          f"{result.seconds:.0f} s of training, {time.monotonic() - started:.0f} s in this run")
    for what, path in written.items():
        print(f"  {what}: {path}")
    return 0


def _runner(args, device: str, stop, bar):
    if args.ray is None:
        return SerialRunner(device, progress=bar, should_stop=stop, announce=bar.write)
    from vinpaint.engine.shot_ray import RayRunner

    runner = RayRunner(args.ray or None, args.ray_workers, device if args.device else None, should_stop=stop)
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
