"""`vinpaint inpaint`: remove the masked object from a clip and write the result beside the pictures of the run.

Everything that can be checked before training (paths, codecs, mask against video, the engine's own checks) is
checked first, so a mistake costs seconds, not the training. The work directory keeps the flow, checkpoints and the
finished result: running the same command again continues an interrupted run, or re-writes a finished one at once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from vinpaint.cli.arguments import (DEFAULT_VARIANT, add_clip_arguments, add_engine_options, build_config,
                                    check_pause, input_paths, parse_fps, parse_references, parse_setting)
from vinpaint.cli.outputs import Litter, OutputPlan, check_mask_is_not_the_video, extras, write_outputs
from vinpaint.cli.runs import (OutputLock, WorkdirLock, check_workdir, clear_workdir, describe_run, other_run, report,
                               run_engine, to_continue, warn_notices)
from vinpaint.cli.shots import add_shot_options, check_ray_device, check_ray_options, run_shot
from vinpaint.engine import VARIANTS, validate
from vinpaint.engine.devices import check_device, usable_device
from vinpaint.engine.shot import recorded_run
from vinpaint.errors import InputError, OtherRunError, TrainingCancelled
from vinpaint.media.io import read_inputs, read_references
from vinpaint.media.sequences import parse_range
from vinpaint.media.shot_input import frame_geometry


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inpaint", help="remove the masked object from a video",
        description="Remove the masked object from a video by training the paper's model on that video alone. "
                    "OUT with an extension (.mp4 .mkv .mov .avi) is a video at the source frame rate; OUT without "
                    "one is a folder that gets a PNG sequence (16-bit if the source is). Beside the first output: "
                    "OUT.config.json, OUT.before_after.png, OUT.loss.png and the work directory OUT.work/. "
                    "Ctrl-C stops with a checkpoint; the same command again continues. A shot longer than "
                    "shot.window frames is trained window by window (docs/long_shots.md), several at once with "
                    "--ray.")
    add_clip_arguments(parser)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default=None,
                        help=f"the paper's ablation variant; dip-vid-flow is the method (default: {DEFAULT_VARIANT})")
    parser.add_argument("--config", default=None, metavar="JSON",
                        help="start from a saved config (e.g. an earlier OUT.config.json) instead of preset/variant")
    parser.add_argument("--fps", default=None,
                        help="frame rate of the output video, e.g. 24 or 30000/1001 (default: the source video's; "
                             "25 for a folder of images)")
    parser.add_argument("--invert-mask", action="store_true", help="black = remove instead of white")
    parser.add_argument("--dilate", type=int, default=None, metavar="PX",
                        help="grow the mask by this many pixels before filling (default: the preset's, 0)")
    parser.add_argument("--feather", type=int, default=None, metavar="PX",
                        help="blend the fill into the source over this many pixels inside the hole (default: 0)")
    parser.add_argument("--save-generated", action="store_true",
                        help="also write the raw generated frames (working resolution) to OUT.generated/")
    parser.add_argument("--save-flows", action="store_true",
                        help="also write the generated flows as colour pictures to OUT.flows/ (dip-vid-flow only)")
    parser.add_argument("--check", action="store_true",
                        help="check the inputs, settings, outputs and device as a run would, print the plan, and "
                             "stop there: nothing is written")
    add_engine_options(parser)
    add_shot_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = OutputPlan.from_args(args.output, args.codec)
    check_pause(args.pause_after)
    config = build_config(args)
    if args.save_flows and not config.uses_flow:
        raise InputError(f"--save-flows needs a variant with a flow head (dip-vid-flow), not {config.variant}.")
    fps = parse_fps(args.fps) if args.fps is not None else None
    check_mask_is_not_the_video(args.mask, args.video)
    check_ray_options(args)
    frame_range = parse_range(args.frames) if args.frames is not None else None
    painted = parse_references(args.reference)
    geometry = frame_geometry(args.video, frame_range)
    count = geometry[0] if geometry is not None else None
    if geometry is not None:
        config = fit_window(config, args, geometry, args.work_dir or plan.default_workdir)
    long_shot = count is not None and count > config.shot.window
    if long_shot:
        check_ray_device(args)
        device = check_device(args.device) if args.ray is not None else usable_device(args.device)  # Ray's: there
        return run_shot(args, plan, config, device, frame_range, painted, fps)
    # A device asked for is checked before anything is read. The default fails only where CUDA is broken, and finding
    # out whether a GPU is there loads torch (seconds), so it waits until the inputs are read and checked: bad input
    # is said at once.
    device = usable_device(args.device) if args.device else None
    if args.ray is not None:
        print(f"vinpaint: the clip fits one window (shot.window {config.shot.window}); training it here, not on Ray",
              file=sys.stderr)
    clip, masks = read_inputs(args.video, args.mask, invert=args.invert_mask, frame_range=frame_range)
    references = read_references(painted, clip)
    warn_notices(clip)
    if fps is not None:
        clip.fps = fps
    workdir = args.work_dir or plan.default_workdir
    plan.check(clip, input_paths(args, painted), workdir, args.overwrite,
               extras(args.save_generated, args.save_flows), args.restart)
    check_workdir(workdir)
    plan.check_writable(extras(args.save_generated, args.save_flows), workdir)
    validate(clip.frames, masks, config)
    config.check_clip(clip.frames.shape[0])
    device = device or usable_device(None)
    if args.check:
        if not args.restart:  # the run's own refusal of another run's work directory, reading only
            from vinpaint.engine.api import check_workdir_run
            try:
                check_workdir_run(clip.frames, masks, config, workdir, device=device, references=references)
            except OtherRunError as exc:
                raise other_run(workdir, "frames or settings", "--work-dir", exc) from None
        describe_run(clip, masks, config, workdir, args.quiet)
        print(f"check passed: {config.planned_steps(clip.frames.shape[0])} training steps on {device}; nothing "
              "was written")
        return 0
    created = not os.path.lexists(workdir)
    outputs = [path for path, _ in plan.paths(extras(args.save_generated, args.save_flows))]
    with Litter(workdir, outputs, created, keep_everything=True, note=plan.incomplete_note) as litter, \
            OutputLock(plan, extras(args.save_generated, args.save_flows)), WorkdirLock(workdir):
        litter.keep_everything = False  # from here on, what is new is this run's own
        if args.restart:
            clear_workdir(workdir)
        describe_run(clip, masks, config, workdir, args.quiet)
        started = time.monotonic()
        try:
            result = run_engine(clip.frames, masks, config, workdir, args.quiet, args.pause_after, device,
                                references)
        except TrainingCancelled as exc:
            print(f"vinpaint: {exc} in {workdir}; {to_continue(args)}.", file=sys.stderr)
            return 130
        except OtherRunError as exc:
            raise other_run(workdir, "frames or settings", "--work-dir", exc) from None
        written = write_outputs(plan, clip, result, args.save_generated, args.save_flows, overwrite=args.overwrite,
                                restart=args.restart)
    report(written, result, time.monotonic() - started)
    return 0


SHOT_SETTINGS = ("shot.window", "shot.overlap", "shot.window_megapixels")


def fit_window(config, args: argparse.Namespace, geometry: tuple[int, int, int], workdir: Path):
    """shot.window for this plate (InpaintConfig.for_frame_size), said when it lowers a window the user set. A
    work directory cut into windows by an earlier run keeps its cut where the user set none of SHOT_SETTINGS, so
    a shot interrupted under another default (fast's 60 frames before 2026-12-02) continues window by window
    instead of being refused as another run."""
    count, height, width = geometry
    given = args.config is not None or any(parse_setting(item)[0] in SHOT_SETTINGS for item in args.set or [])
    kept = None if given or args.restart else _earlier_cut(config, workdir, count)
    if kept is not None:
        print(f"vinpaint: continuing the work directory's windows of {kept.shot.window} frames sharing "
              f"{kept.shot.overlap} (shot.window, shot.overlap; --restart cuts the shot afresh)", file=sys.stderr)
        return kept
    fitted = config.for_frame_size(height, width)
    if given and fitted.shot.window < config.shot.window:
        print(f"vinpaint: shot.window {config.shot.window} lowered to {fitted.shot.window} frames for this "
              f"{width}x{height} plate (shot.window_megapixels {config.shot.window_megapixels:g}; 0 lifts the bound)",
              file=sys.stderr)
    return fitted


def _earlier_cut(config, workdir: Path, count: int):
    """`config` with the windows a shot of `count` frames was cut into in `workdir` (engine/shot.py recorded_run),
    where they differ from its own and still cut the shot; else None."""
    plan = (recorded_run(workdir) or {}).get("shot")
    if not isinstance(plan, dict) or plan.get("frames") != count or \
            (plan.get("window"), plan.get("overlap")) == (config.shot.window, config.shot.overlap):
        return None
    try:
        kept = config.replace(**{"shot.window": int(plan["window"]), "shot.overlap": int(plan["overlap"])})
        kept.check()
    except (KeyError, TypeError, ValueError, OverflowError, InputError):
        return None
    return kept if kept.shot.window < count else None  # a window holding the whole shot is no cut to continue
